//! What publishing the live rows costs a put: every put copies `LiveItems` with one more row
//! (readers keep the copy they hold), and the old copy is freed once no reader holds it. Times
//! that copy, one push and the drop at several row counts, and the id map alone against the
//! same ids in a std `HashMap` (what `by_id` was before it became a persistent map), copies
//! and lookups.
//!
//! `cargo run --release -p hyrank-engine --example live_copy`
use std::collections::HashMap;
use std::time::Instant;

use hyrank_engine::item::Item;
use hyrank_engine::live::items::LiveItems;

fn item(id: &str) -> Item {
    Item { id: id.into(), title: format!("item {id}"), text: String::new(), fields: Default::default() }
}

/// Median milliseconds of `reps` runs of `f`.
fn median_ms(reps: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut times: Vec<f64> = (0..reps)
        .map(|r| {
            let start = Instant::now();
            f(r);
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

fn main() {
    for rows in [1_000usize, 10_000, 100_000] {
        let mut live = LiveItems::empty(0);
        // Below the graph's threshold the rows are scanned: no graph insert is timed.
        live.graph_from = usize::MAX;
        let mut std_ids = HashMap::new();
        for i in 0..rows {
            let id = format!("{}", 10_000_000 + i * 7);
            std_ids.insert(id.clone(), i as u32);
            live.push(i as u64 + 1, item(&id), vec![0.0; 384], None, None);
        }
        let reps = 101;
        let whole = median_ms(reps, |r| {
            let mut next = live.clone();
            next.push((rows + r) as u64 + 1, item(&format!("new{r}")), vec![0.0; 384], None, None);
            drop(std::hint::black_box(next));
        });
        let by_id = median_ms(reps, |r| {
            let mut next = live.by_id.clone();
            next.insert(format!("new{r}"), 0);
            drop(std::hint::black_box(next));
        });
        let std_map = median_ms(reps, |r| {
            let mut next = std_ids.clone();
            next.insert(format!("new{r}"), 0);
            drop(std::hint::black_box(next));
        });
        let ids: Vec<&String> = std_ids.keys().collect();
        let per_lookup = |ms: f64| ms * 1e6 / ids.len() as f64;
        let found_imbl = per_lookup(median_ms(11, |_| {
            ids.iter().for_each(|id| assert!(std::hint::black_box(live.by_id.get(id.as_str())).is_some()))
        }));
        let found_std = per_lookup(median_ms(11, |_| {
            ids.iter().for_each(|id| assert!(std::hint::black_box(std_ids.get(id.as_str())).is_some()))
        }));
        println!(
            "{rows:>7} live rows: copy + put + drop {whole:.4} ms; the id map alone {by_id:.4} ms \
             (as a std HashMap: {std_map:.4} ms); a lookup {found_imbl:.0} ns (std: {found_std:.0} ns)"
        );
    }
}
