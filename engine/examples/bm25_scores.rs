//! Every raw BM25 score of every query of a judged split, for fusion experiments outside the
//! engine (`bench/fusion_norms.py`): one line `query_id \t item_id \t score` per item that
//! matches at least one query term, scored as the generation scores (its analyzer, k1, b and
//! field combination). Queries come from BEIR's `queries.jsonl`, restricted to those judged in
//! `qrels/SPLIT.tsv`.
//!
//! `cargo run --release -p hyrank-engine --example bm25_scores -- INDEX_DIR DATA_DIR SPLIT > OUT.tsv`
use std::io::{BufWriter, Write};

#[path = "judged/mod.rs"]
mod judged;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, data, split] = args.as_slice() else {
        panic!("usage: bm25_scores INDEX_DIR DATA_DIR SPLIT");
    };
    let (engine, lexical) = judged::open(index.as_ref());
    let settings = engine.manifest().lexical.clone();
    let ids = engine.item_ids();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (id, text) in judged::queries(data, split) {
        for (item, score) in lexical.score_all(&text, settings.bm25).unwrap() {
            writeln!(out, "{id}\t{}\t{score}", ids[item as usize]).unwrap();
        }
    }
}
