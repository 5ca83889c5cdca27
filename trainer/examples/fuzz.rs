//! `cargo run --release -p foolmap-trainer --example fuzz -- [ITERATIONS_PER_TARGET] [SEED]`:
//! mutation fuzzing of the file parsers (`foolmap_trainer::fuzz`) with an allocator that records
//! the peak of live heap bytes and the largest single allocation. Exits non-zero on any panic or
//! when the peak passes 300 MB. Crashing inputs go to `target/fuzz-crashes/`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use foolmap_trainer::fuzz::{Target, fuzz};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        // SAFETY: same layout as requested.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        grew(new);
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CAP: usize = 300 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(250_000);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let crashes = repo.join("target/fuzz-crashes");
    let mut total = 0;
    let mut bad = false;
    println!(
        "| target | executions | accepted | refused | panics | peak live heap | largest allocation | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for t in Target::ALL {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        LARGEST.store(0, Ordering::Relaxed);
        let t0 = std::time::Instant::now();
        let st = match fuzz(t, &repo, n, seed, &crashes) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: {e:#}", t.id());
                std::process::exit(2);
            }
        };
        let peak = PEAK.load(Ordering::Relaxed);
        println!(
            "| {} | {} | {} | {} | {} | {:.1} MB | {:.1} MB | {:.0} |",
            t.id(),
            st.executions,
            st.accepted,
            st.refused,
            st.panics,
            peak as f64 / 1e6,
            LARGEST.load(Ordering::Relaxed) as f64 / 1e6,
            t0.elapsed().as_secs_f64()
        );
        total += st.executions;
        bad |= st.panics > 0 || peak > CAP;
    }
    println!("total executions: {total}");
    if bad {
        eprintln!("FAILED: a panic, or a peak above {} MB", CAP >> 20);
        std::process::exit(1);
    }
}
