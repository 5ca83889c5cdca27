//! The compute worker's wasm without WebGPU (CPU only; see `foolmap_web::worker`): the page
//! starts it when the browser offers no WebGPU or the CPU backend is chosen.

fn main() {
    foolmap_web::worker::start_worker();
}
