//! The page's wasm: DOM, controls and drawing (see `foolmap_web::ui`).

fn main() {
    foolmap_web::ui::start();
}
