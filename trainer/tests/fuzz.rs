//! A short pass of the mutation fuzzer over every parser (the long run is
//! `cargo run --release -p foolmap-trainer --example fuzz`): no input may panic.

use std::path::Path;

use foolmap_trainer::fuzz::{Target, fuzz, mutate, run_one};

#[test]
fn mutated_inputs_never_panic_any_parser() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let crashes = tempfile::tempdir().unwrap();
    for t in Target::ALL {
        let st = fuzz(t, &repo, 300, 7, crashes.path()).unwrap();
        assert_eq!(st.executions, 300);
        assert_eq!(st.panics, 0, "{}: {st:?}", t.id());
        assert!(
            st.refused > 0,
            "{}: no mutation was refused: {st:?}",
            t.id()
        );
    }
}

#[test]
fn the_unmutated_corpus_is_accepted_and_mutation_is_seeded() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    for t in Target::ALL {
        for f in t.corpus(&repo) {
            let bytes = std::fs::read(&f).unwrap();
            let scratch = dir.path().join(if t == Target::Config {
                "c.toml"
            } else {
                "c.bin"
            });
            assert_eq!(run_one(t, &bytes, &scratch), Ok(true), "{}", f.display());
        }
    }
    let mut a = foolmap::params::SplitMix::new(3);
    let mut b = foolmap::params::SplitMix::new(3);
    assert_eq!(
        mutate(b"0123456789abcdef", &mut a),
        mutate(b"0123456789abcdef", &mut b)
    );
}
