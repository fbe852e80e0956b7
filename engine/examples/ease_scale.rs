//! EASE's fit time and peak memory at a given number of items, on synthetic interactions
//! (users with 40 items each, drawn with a Zipf-like skew, so every item is warm at these
//! sizes). What `docs/EVAL.md` quotes for the memory bound:
//!
//! ```sh
//! cargo run --release -p hyrank-engine --example ease_scale -- 10000
//! ```
//!
//! Each size in its own process, so the peak (`VmHWM`) is that fit's.

use std::time::Instant;

use hyrank_engine::cf::{ease, Csr, EaseSettings, ItemModel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let items: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let users = items * 5;
    let mut rng = StdRng::seed_from_u64(1);
    let mut triples = Vec::with_capacity(users * 40);
    for u in 0..users as u32 {
        for _ in 0..40 {
            // Inverse-CDF of a 1/x density over 1..=items: popular items are drawn more often.
            let x = (items as f64).powf(rng.random::<f64>());
            triples.push((u, (x as usize - 1).min(items - 1) as u32, 1.0));
        }
    }
    // Every item at least once, so the fit really is items × items.
    triples.extend((0..items as u32).map(|i| (i % users as u32, i, 1.0)));
    let matrix = Csr::from_triples(users, items, &triples);
    let warm = ease::warm_items(&matrix).len();
    let before = peak_mib();
    let start = Instant::now();
    let model = ItemModel::fit(&matrix, &EaseSettings::default()).expect("fit");
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "items {items} (warm {warm}), users {users}, interactions {}: fit {seconds:.1} s, peak {:.0} MiB \
         (before the fit {before:.0} MiB; estimate {:.0} MiB), {} weights kept",
        matrix.values.len(),
        peak_mib(),
        ease::fit_bytes(warm, EaseSettings::default().neighbours) as f64 / 1048576.0,
        model.weights()
    );
}
