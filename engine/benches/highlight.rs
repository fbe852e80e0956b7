//! Highlighting, what `highlight: true` adds to a search: making a query's highlighter, and
//! marking the ten hits a page shows (each hit's title and text read by the field's analyzer).
//!
//! `cargo bench -p hyrank-engine --bench highlight`. The texts are SciFact abstracts when
//! `../shared/data/scifact/corpus.jsonl` is there (or `HYRANK_BENCH_CORPUS` names a BEIR
//! corpus), else the fixture catalog's items; the first 500 are indexed, and each query is
//! highlighted over the ten items BM25 ranks first for it.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hyrank_engine::lexical::{LexicalIndex, LexicalSettings};
use hyrank_engine::Item;

/// SciFact-style claims (the first three are train queries' wording), short and long.
const QUERIES: [&str; 3] = [
    "0-dimensional biomaterials show inductive properties.",
    "Vitamin D deficiency is associated with an increased risk of respiratory infections in children.",
    "ALDH1 expression is associated with poorer prognosis for breast cancer primary tumors.",
];

fn items() -> Vec<Item> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let scifact = root.join("../shared/data/scifact/corpus.jsonl");
    let corpus = std::env::var_os("HYRANK_BENCH_CORPUS").map(PathBuf::from).or(scifact.exists().then_some(scifact));
    let (path, id_key) = match corpus {
        Some(path) => (path, "_id"),
        None => (root.join("fixtures/catalog.jsonl"), "id"),
    };
    read(&path, id_key)
}

fn read(path: &Path, id_key: &str) -> Vec<Item> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let field = |row: &serde_json::Value, key: &str| row[key].as_str().unwrap_or_default().to_string();
    text.lines()
        .take(500)
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            Item {
                id: field(&row, id_key),
                title: field(&row, "title"),
                text: field(&row, "text"),
                fields: Default::default(),
            }
        })
        .collect()
}

fn highlight(c: &mut Criterion) {
    let items = items();
    let dir = tempfile::tempdir().unwrap();
    let settings = LexicalSettings::default();
    LexicalIndex::build(dir.path(), items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings.clone()).unwrap();
    let lexical = LexicalIndex::open(dir.path(), settings).unwrap();

    let mut group = c.benchmark_group("highlight");
    group.sample_size(30);
    for (q, query) in QUERIES.iter().enumerate() {
        let hits: Vec<&Item> =
            lexical.search(query, 10, None).unwrap().iter().map(|&(i, _)| &items[i as usize]).collect();
        group.throughput(Throughput::Elements(hits.len() as u64));
        group.bench_function(format!("query{q}_highlighter"), |b| b.iter(|| lexical.highlighter(query).unwrap()));
        group.bench_function(format!("query{q}_top10"), |b| {
            b.iter(|| {
                let highlighter = lexical.highlighter(query).unwrap();
                hits.iter().map(|item| highlighter.highlight(item)).filter(|h| !h.is_empty()).count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, highlight);
criterion_main!(benches);
