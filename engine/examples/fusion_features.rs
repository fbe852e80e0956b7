//! The first stage's candidates for every query of a judged split, with the raw evidence a
//! learned fusion would read (`bench/learned_fusion.py`): the union of BM25's and dense's top
//! 100 (the default's candidates), each with its BM25 score under the generation's settings
//! (0 when no query term matches), its BM25 score with fields summed and with the title's b at
//! 0, its exact cosine to the query vector (every item scored, as the dense retriever does up
//! to 10,000 items), its rank in each full list, the query's word count, and the item's index
//! (its row in the generation's `dense.vectors`). One line per candidate, tab-separated, with a
//! header.
//!
//! `cargo run --release -p hyrank-engine --example fusion_features -- INDEX_DIR DATA_DIR SPLIT > OUT.tsv`
use std::collections::HashMap;
use std::io::{BufWriter, Write};

use hyrank_engine::generation::{current, files};
use hyrank_engine::lexical::{Bm25Params, FieldCombination};

#[path = "judged/mod.rs"]
mod judged;

/// Candidates per retriever: the engine's default.
const CANDIDATES: usize = 100;

/// Items best first, ties by index, with their 1-based ranks.
fn ranks(scores: impl Iterator<Item = (u32, f32)>) -> (Vec<(u32, f32)>, HashMap<u32, usize>) {
    let mut sorted: Vec<(u32, f32)> = scores.collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let rank = sorted.iter().enumerate().map(|(r, h)| (h.0, r + 1)).collect();
    (sorted, rank)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, data, split] = args.as_slice() else {
        panic!("usage: fusion_features INDEX_DIR DATA_DIR SPLIT");
    };
    let (engine, lexical) = judged::open(index.as_ref());
    let settings = engine.manifest().lexical.clone();
    let ids = engine.item_ids();
    let dim = engine.embedder().dim();
    let dir = current(index.as_ref()).unwrap();
    let vectors = hyrank_engine::dense::read_f32_file(&dir.join(format!("{}.vectors", files::DENSE)), dim).unwrap();
    let sum = Bm25Params { fields: FieldCombination::Sum, ..settings.bm25 };
    let flat_title = Bm25Params { title_b: Some(0.0), ..settings.bm25 };
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "query\titem\tbm25\tbm25_sum\tbm25_title_b0\tcosine\tbm25_rank\tdense_rank\tquery_words\titem_index")
        .unwrap();
    for (id, text) in judged::queries(data, split) {
        let text = text.as_str();
        let scores = |params| -> HashMap<u32, f32> { lexical.score_all(text, params).unwrap().into_iter().collect() };
        let (bm25, summed, flat) = (scores(settings.bm25), scores(sum), scores(flat_title));
        let v = engine.embedder().embed(text).unwrap();
        let cosine: Vec<f32> = vectors.chunks_exact(dim).map(|row| hyrank_engine::dense::dot(row, &v)).collect();
        let (by_bm25, bm25_rank) = ranks(bm25.iter().map(|(a, b)| (*a, *b)));
        let (by_dense, dense_rank) = ranks(cosine.iter().enumerate().map(|(i, c)| (i as u32, *c)));
        let mut candidates: Vec<u32> =
            by_bm25.iter().take(CANDIDATES).chain(by_dense.iter().take(CANDIDATES)).map(|h| h.0).collect();
        candidates.sort_unstable();
        candidates.dedup();
        let words = text.split_whitespace().count();
        let get = |m: &HashMap<u32, f32>, c: u32| m.get(&c).copied().unwrap_or(0.0);
        for c in candidates {
            // No BM25 match: past the last rank.
            let b_rank = bm25_rank.get(&c).copied().unwrap_or(ids.len() + 1);
            writeln!(
                out,
                "{id}\t{}\t{}\t{}\t{}\t{}\t{b_rank}\t{}\t{words}\t{c}",
                ids[c as usize],
                get(&bm25, c),
                get(&summed, c),
                get(&flat, c),
                cosine[c as usize],
                dense_rank[&c],
            )
            .unwrap();
        }
    }
}
