//! End-to-end tests: the real model, tantivy, hnsw_rs, sled and actix, on the shipped fixtures.

mod api;
mod budget;
mod embedding;
mod eval;
mod facets;
mod fuzz;
mod highlight;
mod live;
mod live_items;
mod live_limits;
mod live_races;
mod min_weight;
mod pages;
mod pipeline;
mod reranker;
mod service;
mod ship;
mod similar;
mod sort;
mod swaps;
mod users;

use std::sync::OnceLock;

use hyrank_engine::Engine;

/// The fixture catalog indexed once for the whole binary (indexing embeds 320 items).
pub struct Indexed {
    pub _dir: tempfile::TempDir,
    pub engine: std::sync::Arc<Engine>,
    pub summary_items: usize,
}

/// The floor a `linear_floor` list was measured from, read back from each hit's
/// `(raw score, contribution)` in that list, best first: a hit whose share of the best's
/// contribution is `c` gives `(raw − c·best) / (1 − c)`. Hits at or below the floor
/// (contribution 0) and ties with the best say nothing and are skipped.
pub fn floors_read_back(parts: &[(f64, f64)]) -> Vec<f64> {
    let (best, weight) = parts[0];
    parts
        .iter()
        .map(|&(raw, contribution)| (raw, contribution / weight))
        .filter(|&(raw, share)| raw < best - 1e-3 && share > 0.0)
        .map(|(raw, share)| (raw - share * best) / (1.0 - share))
        .collect()
}

pub fn indexed() -> &'static Indexed {
    static INDEXED: OnceLock<Indexed> = OnceLock::new();
    INDEXED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let summary =
            hyrank_indexer::build(&hyrank_tests::fixture_settings(dir.path().join("index"))).expect("fixtures index");
        let engine = Engine::open(&dir.path().join("index"), &hyrank_tests::embedder_settings()).expect("open");
        Indexed { engine: std::sync::Arc::new(engine), summary_items: summary.manifest.counts.items, _dir: dir }
    })
}
