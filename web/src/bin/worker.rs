//! The compute worker's wasm: models, maps and live fooling (see `foolmap_web::worker`).

fn main() {
    foolmap_web::worker::start_worker();
}
