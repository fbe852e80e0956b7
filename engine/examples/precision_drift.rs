//! How far a reduced precision's embeddings drift from f32's on a set of texts: the cosine of
//! each text's two vectors, summarised (docs/EVAL.md quotes it for int8 and w8a8).
//!
//! `cargo run --release -p hyrank-engine --example precision_drift -- TEXTS_FILE [PRECISION]`
//! (PRECISION: int8 by default; TEXTS_FILE: one text per line, or JSON lines with `title` and
//! `text`, embedded as "title. text" as the indexer does).
use std::path::PathBuf;

use hyrank_engine::{Embedder, EmbedderSettings, Precision};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).expect("usage: precision_drift TEXTS_FILE [PRECISION]");
    let precision: Precision = args.get(2).map_or("int8", String::as_str).parse().unwrap();
    let texts: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) if v.is_object() => hyrank_engine::Item {
                id: String::new(),
                title: v["title"].as_str().unwrap_or("").to_string(),
                text: v["text"].as_str().unwrap_or("").to_string(),
                fields: Default::default(),
            }
            .content(),
            _ => l.to_string(),
        })
        .collect();
    let embed = |precision| {
        let settings = EmbedderSettings {
            precision: Some(precision),
            ..EmbedderSettings::new(PathBuf::from("models/all-MiniLM-L6-v2"))
        };
        Embedder::load(&settings).unwrap().embed_many(&texts, |_| {}).unwrap()
    };
    let (reference, reduced) = (embed(Precision::F32), embed(precision));
    let mut cosines: Vec<f64> = reference
        .iter()
        .zip(&reduced)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum())
        .collect();
    cosines.sort_by(f64::total_cmp);
    let at = |q: f64| cosines[((cosines.len() - 1) as f64 * q) as usize];
    let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
    println!(
        "{precision} against f32, {} texts: cosine min {:.5}, 1st percentile {:.5}, 10th {:.5}, median {:.5}, mean {:.5}",
        cosines.len(),
        at(0.0),
        at(0.01),
        at(0.1),
        at(0.5),
        mean
    );
}
