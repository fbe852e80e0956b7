//! Every raw BM25 score of every query of a judged split, for fusion experiments outside the
//! engine (`bench/fusion_norms.py`): one line `query_id \t item_id \t score` per item that
//! matches at least one query term, scored as the generation scores (its analyzer, k1, b and
//! field combination). Queries come from BEIR's `queries.jsonl`, restricted to those judged in
//! `qrels/SPLIT.tsv`.
//!
//! `cargo run --release -p hyrank-engine --example bm25_scores -- INDEX_DIR DATA_DIR SPLIT > OUT.tsv`
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use hyrank_engine::generation::{current, files};
use hyrank_engine::lexical::LexicalIndex;
use hyrank_engine::{EmbedderSettings, Engine};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, data, split] = args.as_slice() else {
        panic!("usage: bm25_scores INDEX_DIR DATA_DIR SPLIT");
    };
    // The engine for the item ids; the lexical index opened apart for `score_all`.
    let engine =
        Engine::open(index.as_ref(), &EmbedderSettings::new(PathBuf::from("models/all-MiniLM-L6-v2"))).unwrap();
    let settings = engine.manifest().lexical;
    let lexical = LexicalIndex::open(&current(index.as_ref()).unwrap().join(files::LEXICAL), settings).unwrap();
    let ids = engine.item_ids();
    let judged: HashSet<String> = std::fs::read_to_string(format!("{data}/qrels/{split}.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next().map(str::to_string))
        .collect();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in std::fs::read_to_string(format!("{data}/queries.jsonl")).unwrap().lines() {
        let query: serde_json::Value = serde_json::from_str(line).unwrap();
        let (id, text) = (query["_id"].as_str().unwrap(), query["text"].as_str().unwrap());
        if !judged.contains(id) {
            continue;
        }
        for (item, score) in lexical.score_all(text, settings.bm25).unwrap() {
            writeln!(out, "{id}\t{}\t{score}", ids[item as usize]).unwrap();
        }
    }
}
