//! The page's wasm: DOM, controls and drawing (see `foolmap_web::page`).

fn main() {
    foolmap_web::page::start();
}
