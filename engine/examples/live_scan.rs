//! What the exact scan of live rows costs a dense query, against the HNSW graph live rows get
//! from `GRAPH_FROM_ROWS` on (here built from the first row, to time both at every size): a generation's embeddings (and, to reach 10,000 rows, a perturbed
//! copy of them) put as live rows, probed by rows' vectors. `GRAPH_FROM_ROWS` is chosen from
//! this.
//!
//! `cargo run --release -p hyrank-engine --example live_scan -- GENERATION_DIR [PROBES]`
use std::path::PathBuf;
use std::time::Instant;

use hyrank_engine::dense::{HnswSettings, Metric, VectorIndex};
use hyrank_engine::item::Item;
use hyrank_engine::live::items::LiveItems;
use hyrank_engine::retrieve::Allow;
use rand::{Rng, SeedableRng};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(&args[1]);
    let probes: usize = args.get(2).map_or(300, |p| p.parse().unwrap());
    let stored = VectorIndex::load(&dir, "dense", 384, Metric::Cosine, HnswSettings::default()).unwrap();
    let dim = stored.dim();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut vectors: Vec<Vec<f32>> = stored.vectors().chunks_exact(dim).map(<[f32]>::to_vec).collect();
    // A perturbed copy: near-duplicates, as new versions of catalog items are.
    let copies: Vec<Vec<f32>> = vectors
        .iter()
        .map(|v| {
            let mut w: Vec<f32> = v.iter().map(|x| x + 0.02 * (rng.random::<f32>() - 0.5)).collect();
            let norm = w.iter().map(|x| x * x).sum::<f32>().sqrt();
            w.iter_mut().for_each(|x| *x /= norm);
            w
        })
        .collect();
    vectors.extend(copies);
    let probe_vectors: Vec<Vec<f32>> = (0..probes).map(|i| vectors[(i * 7919) % vectors.len()].clone()).collect();
    for rows in [1_000usize, 4_096, 8_192, 10_000] {
        let rows = rows.min(vectors.len());
        // Two sets of the same rows: one scanned only (no graph in memory, as below the
        // threshold), one with the graph from the first row; timed one after the other.
        let rows_of = |graph_from: usize| {
            let mut live = LiveItems { graph_from, ..LiveItems::empty(1_000_000) };
            for (i, v) in vectors.iter().take(rows).enumerate() {
                let item = Item {
                    id: format!("live-{i}"),
                    title: String::new(),
                    text: "x".into(),
                    fields: Default::default(),
                };
                live.push(i as u64 + 1, item, v.clone(), None, None);
            }
            live
        };
        let (mut scan, mut served, mut agree) = (Vec::new(), Vec::new(), 0usize);
        let scanned = rows_of(usize::MAX);
        let exact: Vec<Vec<(u32, f32)>> = probe_vectors
            .iter()
            .map(|probe| {
                let t = Instant::now();
                let top = scanned.scan_top(probe, 100, &Allow::all());
                scan.push(t.elapsed().as_secs_f64() * 1000.0);
                top
            })
            .collect();
        drop(scanned);
        let live = rows_of(1);
        for (probe, exact) in probe_vectors.iter().zip(&exact) {
            let t = Instant::now();
            let chosen = live.dense_top(probe, 100, &Allow::all());
            served.push(t.elapsed().as_secs_f64() * 1000.0);
            let top: std::collections::HashSet<u32> = exact.iter().map(|h| h.0).collect();
            agree += chosen.iter().filter(|h| top.contains(&h.0)).count();
        }
        let p50 = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{rows:>6} live rows, top 100 of {probes} probes: exact scan p50 {:.3} ms, graph p50 {:.3} ms, graph recall@100 {:.3}",
            p50(&mut scan),
            p50(&mut served),
            agree as f64 / (probes * 100) as f64
        );
    }
}
