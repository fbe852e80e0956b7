//! What the experiment examples share: a generation opened for scoring, and the judged
//! queries of a BEIR split.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use hyrank_engine::generation::{current, files};
use hyrank_engine::lexical::LexicalIndex;
use hyrank_engine::{EmbedderSettings, Engine};

/// The engine (for item ids and the encoder) and the lexical index opened apart (for
/// `score_all` with any parameters), of `index`'s current generation.
pub fn open(index: &Path) -> (Engine, LexicalIndex) {
    let engine = Engine::open(index, &EmbedderSettings::new(PathBuf::from("models/all-MiniLM-L6-v2"))).unwrap();
    let settings = engine.manifest().lexical.clone();
    let lexical = LexicalIndex::open(&current(index).unwrap().join(files::LEXICAL), settings).unwrap();
    (engine, lexical)
}

/// `(id, text)` of every query of `data`'s `queries.jsonl` judged in `qrels/SPLIT.tsv`.
pub fn queries(data: &str, split: &str) -> Vec<(String, String)> {
    let judged: HashSet<String> = std::fs::read_to_string(format!("{data}/qrels/{split}.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for line in std::fs::read_to_string(format!("{data}/queries.jsonl")).unwrap().lines() {
        let query: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = query["_id"].as_str().unwrap().to_string();
        if judged.contains(&id) {
            out.push((id, query["text"].as_str().unwrap().to_string()));
        }
    }
    out
}
