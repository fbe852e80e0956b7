//! What hidden (deleted) items cost a search: the same queries on one generation, without and
//! with its live log attached (whose deletes put a mask on every search).
//!
//! `cargo run --release -p hyrank-engine --example hidden_cost -- INDEX_DIR QUERIES_FILE`
use std::path::PathBuf;
use std::sync::Arc;

use hyrank_engine::live::EventLog;
use hyrank_engine::{EmbedderSettings, Engine, SearchRequest};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (index, queries) = (PathBuf::from(&args[1]), std::fs::read_to_string(&args[2]).unwrap());
    let queries: Vec<&str> = queries.lines().filter(|l| !l.is_empty()).collect();
    let settings = EmbedderSettings::new(PathBuf::from("models/all-MiniLM-L6-v2"));
    let plain = Engine::open(&index, &settings).unwrap();
    let mut hidden = Engine::open(&index, &settings).unwrap();
    let log = EventLog::open(&index, hidden.manifest().live_folded_through()).unwrap();
    println!("{} items hidden", log.stats().deleted_items);
    hidden.attach_live(Arc::new(log));
    for round in 0..2 {
        for (name, engine) in [("no mask", &plain), ("hidden items", &hidden)] {
            let (mut dense, mut bm25, mut total) = (Vec::new(), Vec::new(), Vec::new());
            for q in &queries {
                let r = engine.search(&SearchRequest { k: 10, ..SearchRequest::new(*q) }).unwrap();
                dense.push(r.timings.retrieve_ms["dense"]);
                bm25.push(r.timings.retrieve_ms["bm25"]);
                total.push(r.timings.total_ms);
            }
            let p50 = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "round {round} {name:>12}: dense p50 {:.3} ms, bm25 p50 {:.3} ms, engine total p50 {:.3} ms",
                p50(&mut dense),
                p50(&mut bm25),
                p50(&mut total)
            );
        }
    }
}
