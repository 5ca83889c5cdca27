//! The compute worker's wasm: models, maps and live fooling (see `foolmap_web::engine`).

fn main() {
    foolmap_web::engine::start_worker();
}
