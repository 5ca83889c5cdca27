//! The committed table configs and released models of the repository.

use foolmap_trainer::card;
use foolmap_trainer::table;

use crate::common;

#[test]
fn every_committed_table_config_parses_and_passes_its_checks() {
    let dir = common::repo().join("tables");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let t = table::TableConfig::read(&p).unwrap_or_else(|e| panic!("{e:#}"));
            assert!(!t.jobs().is_empty(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn every_committed_result_belongs_to_the_recipe_of_its_committed_table_config() {
    let repo = common::repo();
    for e in std::fs::read_dir(repo.join("tables")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let mut t = table::TableConfig::read(&p).unwrap();
            t.results = repo.join(&t.results);
            t.check_results()
                .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        }
    }
}

#[test]
fn every_released_model_matches_its_card_and_its_index_entry() {
    let dir = common::repo().join("models");
    let index: card::Index =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert!(!index.models.is_empty());
    let mut size = 0;
    for e in &index.models {
        let bytes = std::fs::read(dir.join(&e.file)).unwrap();
        size += bytes.len();
        let c = card::read(&dir.join(&e.card)).unwrap();
        assert_eq!(
            foolmap_trainer::io::hash::sha256_bytes(&bytes),
            c.sha256,
            "{}",
            e.id
        );
        assert_eq!(
            (&c.id, &c.sha256, c.fooling, c.interpreter),
            (&e.id, &e.sha256, e.fooling, e.interpreter)
        );
        card::verify(&dir.join(&e.file), &bytes).unwrap();
        // Passive models are judged by FSR, active ones by the swap correlation: one or the other.
        let active = c.fooling == foolmap::fooling::FoolingType::Active;
        assert_eq!(c.report.fsr.is_none(), active, "{}", e.id);
        assert_eq!(c.report.swap_correlation.is_some(), active, "{}", e.id);
        assert_eq!(
            c.evaluations.report, 1,
            "{}: scored once on the report half",
            e.id
        );
    }
    assert!(
        size < 25 << 20,
        "the release stays under 25 MB ({size} bytes)"
    );
}
