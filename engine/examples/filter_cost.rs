//! What a field filter costs a hybrid search: the same queries without a filter and with each
//! given one, reporting the engine's own timings (p50) per stage.
//!
//! `cargo run --release -p hyrank-engine --example filter_cost -- INDEX_DIR QUERIES_FILE FIELD VALUE...`
//! (QUERIES_FILE: one query per line.)
use std::path::PathBuf;

use hyrank_engine::filter::{Condition, Filters};
use hyrank_engine::{EmbedderSettings, Engine, SearchRequest};

fn p50(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (index, queries, field) = (PathBuf::from(&args[1]), std::fs::read_to_string(&args[2]).unwrap(), &args[3]);
    let queries: Vec<&str> = queries.lines().filter(|l| !l.is_empty()).collect();
    let engine = Engine::open(&index, &EmbedderSettings::new(PathBuf::from("models/all-MiniLM-L6-v2"))).unwrap();
    let values = std::iter::once(None).chain(args[4..].iter().map(Some));
    for value in values {
        let filters: Filters =
            value.map(|v| Filters::from([(field.clone(), Condition::Text(v.clone()))])).unwrap_or_default();
        let mut stages: Vec<(&str, Vec<f64>)> =
            ["filter", "embed", "bm25", "dense", "fusion", "total"].iter().map(|s| (*s, Vec::new())).collect();
        let mut hits = 0;
        for round in 0..2 {
            for q in &queries {
                let request = SearchRequest { k: 10, filters: filters.clone(), ..SearchRequest::new(*q) };
                let r = engine.search(&request).unwrap();
                if round == 0 {
                    hits += r.hits.len();
                    continue;
                }
                let t = &r.timings;
                for (stage, values) in &mut stages {
                    values.push(match *stage {
                        "filter" => t.filter_ms,
                        "embed" => t.embed_ms,
                        "fusion" => t.fusion_ms,
                        "total" => t.total_ms,
                        name => t.retrieve_ms.get(name).copied().unwrap_or(f64::NAN),
                    });
                }
            }
        }
        let line: Vec<String> = stages.into_iter().map(|(s, v)| format!("{s} {:.3}", p50(v))).collect();
        println!("{:>14} ({hits} hits): p50 ms {}", value.map_or("no filter", |v| v.as_str()), line.join(", "));
    }
}
