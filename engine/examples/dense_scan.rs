//! The figures behind `dense::EXACT_COSINE_MAX_ITEMS` and `unreachable_rows` (docs/EVAL.md,
//! "Exact dense search up to 10,000 items"):
//! * with `GENERATION_DIR`: a generation's dense index searched by exact scan and by its graph,
//!   top 100 for 300 probes (stored vectors with noise added), p50/p99 per query and the
//!   graph's recall of the exact top 10, three rounds; and how many rows its graph cannot reach;
//! * with `--random ROWS DIM M BUILDS`: how many rows random unit vectors' graphs leave
//!   unreachable, over several builds.
//!
//! * with `GENERATION_DIR --grown ROWS`: a catalog of ROWS items made from the generation's
//!   vectors (random rows with noise), searched through its graph for the top 100 and the top
//!   1,000 (an ef of 1,000): what a deeper candidate list costs where the graph is used.
//!
//! * with `GENERATION_DIR --excluding`: searches that leave out the probe's own neighbourhood,
//!   as a recommendation leaves out the user's history (the profile is the mean of the seen
//!   items, so the nearest rows are the ones excluded): the graph's filtered search against an
//!   exact scan, p50/p99 and recall of the exact top 100, for histories of 10 to 500 items.
//!
//! * with `GENERATION_DIR --broad`: filters too broad to scan that refuse many rows (20% to 80%
//!   allowed, at random or as a region of the space): the filtered walk against unfiltered
//!   searches 200 to 800 deep with the refused rows dropped after (docs/EVAL.md).
//!
//! * with `GENERATION_DIR --selective`: searches under filters that allow a random 1% to 50%
//!   of the rows (a field filter), by hnsw_rs's filtered walk and by `search_allowing` (which
//!   scans the allowed rows when there are no more than the exact-scan limit), p50/p99 and
//!   recall of the exact top 100.
//!
//! * with `GENERATION_DIR --walk`: hyrank's walk of the graph (`dense::graph`) against
//!   hnsw_rs's own search of the same graph files, unfiltered and under filters allowing 20%
//!   to 80% of the rows (at random, or a region of the space), at several `ef`: p50/p99 and
//!   recall of the exact top 100 (docs/EVAL.md, "The HNSW walk, ours").
//!
//! * with `GENERATION_DIR --quantized FACTORS`: the generation's ALS item factors (`cf_items`,
//!   FACTORS wide) scanned in f32 and by the quantized scan (`dense::scan`), top 100 for 300
//!   probes (each the sum of 20 random items' factors, as a user's would lean), p50/p99 and
//!   recall of the exact top 100 and top 10.
//!
//! `cargo run --release -p hyrank-engine --example dense_scan -- GENERATION_DIR`
//! `cargo run --release -p hyrank-engine --example dense_scan -- GENERATION_DIR --grown 200000`
//! `cargo run --release -p hyrank-engine --example dense_scan -- --random 2000 8 2 20`
use std::path::PathBuf;
use std::time::Instant;

use hyrank_engine::dense::{HnswSettings, Metric, VectorIndex};
use rand::{Rng, SeedableRng};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    if args.first().map(String::as_str) == Some("--random") {
        let n: Vec<usize> = args[1..5].iter().map(|a| a.parse().expect("ROWS DIM M BUILDS")).collect();
        let (rows, dim, m, builds) = (n[0], n[1], n[2], n[3]);
        let (mut with, mut total) = (0, 0);
        for _ in 0..builds {
            let mut vectors: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>() - 0.5).collect();
            for row in vectors.chunks_mut(dim) {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                row.iter_mut().for_each(|x| *x /= norm);
            }
            let settings = HnswSettings { max_connections: m, ef_construction: 100, ef_search: rows };
            let index = VectorIndex::build(vectors, dim, Metric::Cosine, settings).unwrap().with_exact_limit(0);
            with += usize::from(index.unreachable() > 0);
            total += index.unreachable();
        }
        println!("{rows} rows, {dim}-d, M {m}: {with} of {builds} builds left rows unreachable, {total} rows in all");
        return;
    }
    let dir = PathBuf::from(args.first().expect("usage: dense_scan GENERATION_DIR | --random ROWS DIM M BUILDS"));
    let load = || VectorIndex::load(&dir, "dense", 384, Metric::Cosine, HnswSettings::default()).unwrap();
    if args.get(1).map(String::as_str) == Some("--excluding") {
        let wide = HnswSettings { ef_search: 256, ..HnswSettings::default() };
        let wide = VectorIndex::load(&dir, "dense", 384, Metric::Cosine, wide).unwrap().with_exact_limit(0);
        excluding(&load().with_exact_limit(0), &wide, &mut rng);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--selective") {
        selective(&load(), &mut rng);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--broad") {
        let wide = HnswSettings { ef_search: 256, ..HnswSettings::default() };
        let wide = VectorIndex::load(&dir, "dense", 384, Metric::Cosine, wide).unwrap();
        broad(&load(), &wide, &mut rng);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--quantized") {
        let factors: usize = args.get(2).and_then(|f| f.parse().ok()).expect("--quantized FACTORS");
        let settings = HnswSettings::default();
        quantized(&VectorIndex::load(&dir, "cf_items", factors, Metric::InnerProduct, settings).unwrap(), &mut rng);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--walk") {
        walk(&dir, &load().with_exact_limit(0), &mut rng);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--grown") {
        let rows: usize = args.get(2).and_then(|r| r.parse().ok()).expect("--grown ROWS");
        grown(&load(), rows, &mut rng);
        return;
    }
    let (scan, graph) = (load(), load().with_exact_limit(0));
    println!("{} rows; the graph cannot reach {}", scan.len(), graph.unreachable());
    let probes: Vec<Vec<f32>> = (0..300)
        .map(|_| {
            let row = rng.random_range(0..scan.len() as u32);
            let mut w: Vec<f32> =
                scan.vector(row).unwrap().iter().map(|x| x + 0.1 * (rng.random::<f32>() - 0.5)).collect();
            let norm = w.iter().map(|x| x * x).sum::<f32>().sqrt();
            w.iter_mut().for_each(|x| *x /= norm);
            w
        })
        .collect();
    for round in 0..3 {
        for (name, index) in [("scan", &scan), ("graph", &graph)] {
            let (mut times, mut recalled) = (Vec::new(), 0);
            for probe in &probes {
                let start = Instant::now();
                let hits = index.search(probe, 100, None).unwrap();
                times.push(start.elapsed().as_secs_f64() * 1e3);
                let exact = scan.exact_search(probe, 10, None);
                recalled += exact.iter().filter(|e| hits.iter().take(10).any(|h| h.0 == e.0)).count();
            }
            times.sort_by(f64::total_cmp);
            let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
            let recall = recalled as f64 / (10 * probes.len()) as f64;
            println!("round {round}, {name}: p50 {p50:.3} ms, p99 {p99:.3} ms, recall of the exact top 10 {recall:.4}");
        }
    }
}

/// A unit vector near a random stored row: the row plus uniform noise of width `noise`.
fn near(index: &VectorIndex, noise: f32, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let row = rng.random_range(0..index.len() as u32);
    let mut w: Vec<f32> = index.vector(row).unwrap().iter().map(|x| x + noise * (rng.random::<f32>() - 0.5)).collect();
    let norm = w.iter().map(|x| x * x).sum::<f32>().sqrt();
    w.iter_mut().for_each(|x| *x /= norm);
    w
}

fn grown(seed: &VectorIndex, rows: usize, rng: &mut rand::rngs::StdRng) {
    let dim = seed.dim();
    let vectors: Vec<f32> = (0..rows).flat_map(|_| near(seed, 0.1, rng)).collect();
    let start = Instant::now();
    let index = VectorIndex::build(vectors, dim, Metric::Cosine, HnswSettings::default()).unwrap().with_exact_limit(0);
    println!("{rows} rows built in {:.1} s", start.elapsed().as_secs_f64());
    let probes: Vec<Vec<f32>> = (0..300).map(|_| near(seed, 0.1, rng)).collect();
    for round in 0..3 {
        for k in [100, 1000] {
            let mut times: Vec<f64> = probes
                .iter()
                .map(|probe| {
                    let start = Instant::now();
                    let hits = index.search(probe, k, None).unwrap();
                    assert_eq!(hits.len(), k);
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
            println!("round {round}, top {k}: p50 {p50:.3} ms, p99 {p99:.3} ms");
        }
    }
}

/// Filtered search where the filter removes what lies nearest the probe (see the module docs).
fn excluding(graph: &VectorIndex, wide: &VectorIndex, rng: &mut rand::rngs::StdRng) {
    let scan = graph;
    for seen in [10usize, 100, 200, 300, 400, 500] {
        // A history: a random row's `seen` nearest rows; the profile: their normalised mean.
        let users: Vec<(Vec<f32>, Vec<bool>)> = (0..200)
            .map(|_| {
                let anchor = near(scan, 0.1, rng);
                let history = scan.exact_search(&anchor, seen, None);
                let mut profile = vec![0f32; scan.dim()];
                for (row, _) in &history {
                    profile.iter_mut().zip(scan.vector(*row).unwrap()).for_each(|(p, v)| *p += v);
                }
                let norm = profile.iter().map(|x| x * x).sum::<f32>().sqrt();
                profile.iter_mut().for_each(|x| *x /= norm);
                let mut allowed = vec![true; scan.len()];
                history.iter().for_each(|(row, _)| allowed[*row as usize] = false);
                (profile, allowed)
            })
            .collect();
        for name in ["scan", "graph", "graph-ef256", "told", "post", "post-ef256"] {
            let (mut times, mut recalled) = (Vec::new(), 0);
            for (profile, allowed) in &users {
                let allow = |item: u32| allowed[item as usize];
                let start = Instant::now();
                let hits = match name {
                    "scan" => scan.exact_search(profile, 100, Some(&allow)),
                    "told" => graph.search_allowing(profile, 100, &allow, seen).unwrap(),
                    "post" | "post-ef256" => {
                        let index = if name == "post" { graph } else { wide };
                        let mut hits = index.search(profile, 100 + seen, None).unwrap();
                        hits.retain(|h| allow(h.0));
                        hits.truncate(100);
                        hits
                    }
                    "graph-ef256" => wide.search(profile, 100, Some(&allow)).unwrap(),
                    _ => graph.search(profile, 100, Some(&allow)).unwrap(),
                };
                times.push(start.elapsed().as_secs_f64() * 1e3);
                let exact = scan.exact_search(profile, 100, Some(&allow));
                recalled += exact.iter().filter(|e| hits.iter().any(|h| h.0 == e.0)).count();
            }
            print_top100(&format!("{seen} seen, {name}"), times, recalled, users.len());
        }
    }
}

/// Field-filter-like masks, uncorrelated with the probe (see the module docs).
fn selective(index: &VectorIndex, rng: &mut rand::rngs::StdRng) {
    for fraction in [0.01, 0.05, 0.15, 0.5] {
        let cases: Vec<(Vec<f32>, Vec<bool>, usize)> = (0..100)
            .map(|_| {
                let allowed: Vec<bool> = (0..index.len()).map(|_| rng.random::<f64>() < fraction).collect();
                let refused = allowed.iter().filter(|&&a| !a).count();
                (near(index, 0.1, rng), allowed, refused)
            })
            .collect();
        for name in ["walk", "told"] {
            let (mut times, mut recalled) = (Vec::new(), 0);
            for (probe, allowed, refused) in &cases {
                let allow = |item: u32| allowed[item as usize];
                let start = Instant::now();
                let hits = match name {
                    "walk" => index.search(probe, 100, Some(&allow)).unwrap(),
                    _ => index.search_allowing(probe, 100, &allow, *refused).unwrap(),
                };
                times.push(start.elapsed().as_secs_f64() * 1e3);
                let exact = index.exact_search(probe, 100, Some(&allow));
                recalled += exact.iter().filter(|e| hits.iter().any(|h| h.0 == e.0)).count();
            }
            print_top100(&format!("{fraction} allowed, {name}"), times, recalled, cases.len());
        }
    }
}

/// Filters too broad to scan (more rows than the exact-scan limit) that refuse many rows:
/// the filtered walk against unfiltered searches `depth` deep, refused rows dropped after.
/// `random`: each row allowed with the share's chance; `clustered`: the share of rows nearest
/// a random row (a genre-like region), with probes anywhere (so often outside it).
fn broad(index: &VectorIndex, wide: &VectorIndex, rng: &mut rand::rngs::StdRng) {
    let k = 100;
    for kind in ["random", "clustered"] {
        for share in [0.2, 0.3, 0.45, 0.6, 0.8] {
            let cases: Vec<(Vec<f32>, Vec<bool>)> = (0..100)
                .map(|_| {
                    let allowed: Vec<bool> = if kind == "random" {
                        (0..index.len()).map(|_| rng.random::<f64>() < share).collect()
                    } else {
                        let centre = near(index, 0.1, rng);
                        let mut allowed = vec![false; index.len()];
                        let rows = (share * index.len() as f64) as usize;
                        index
                            .exact_search(&centre, rows, None)
                            .iter()
                            .for_each(|(row, _)| allowed[*row as usize] = true);
                        allowed
                    };
                    (near(index, 0.1, rng), allowed)
                })
                .collect();
            let exact: Vec<Vec<(u32, f32)>> =
                cases.iter().map(|(p, a)| index.exact_search(p, k, Some(&|i: u32| a[i as usize]))).collect();
            let mut line = format!("{kind} {share}:");
            for depth in [0usize, 200, 300, 500, 800] {
                let (mut times, mut recalled, mut short) = (Vec::new(), 0, 0);
                for ((probe, allowed), exact) in cases.iter().zip(&exact) {
                    let allow = |item: u32| allowed[item as usize];
                    let start = Instant::now();
                    let hits = if depth == 0 {
                        index.search(probe, k, Some(&allow)).unwrap()
                    } else {
                        let mut hits = wide.search(probe, depth, None).unwrap();
                        hits.retain(|h| allow(h.0));
                        short += usize::from(hits.len() < k);
                        hits.truncate(k);
                        hits
                    };
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                    recalled += exact.iter().filter(|e| hits.iter().any(|h| h.0 == e.0)).count();
                }
                times.sort_by(f64::total_cmp);
                let label = if depth == 0 { "walk".to_string() } else { format!("{depth} deep") };
                line += &format!(
                    " | {label} p50 {:.2} ms, recall {:.4}, short {short}",
                    times[times.len() / 2],
                    recalled as f64 / (k * cases.len()) as f64
                );
            }
            println!("{line}");
        }
    }
}

/// The f32 scan against the quantized one (module docs).
fn quantized(index: &VectorIndex, rng: &mut rand::rngs::StdRng) {
    let probes: Vec<Vec<f32>> = (0..300)
        .map(|_| {
            let mut probe = vec![0f32; index.dim()];
            for _ in 0..20 {
                let row = index.vector(rng.random_range(0..index.len() as u32)).unwrap();
                probe.iter_mut().zip(row).for_each(|(p, x)| *p += x);
            }
            probe
        })
        .collect();
    let exact: Vec<Vec<(u32, f32)>> = probes.iter().map(|p| index.exact_search(p, 100, None)).collect();
    for round in 0..3 {
        for name in ["f32", "quantized"] {
            let (mut times, mut recalled, mut top10) = (Vec::new(), 0, 0);
            for (probe, exact) in probes.iter().zip(&exact) {
                let start = Instant::now();
                let hits = match name {
                    "f32" => index.exact_search(probe, 100, None),
                    _ => index.scan(probe, 100, None),
                };
                times.push(start.elapsed().as_secs_f64() * 1e3);
                recalled += exact.iter().filter(|e| hits.iter().any(|h| h.0 == e.0)).count();
                top10 += exact[..10].iter().filter(|e| hits[..10].iter().any(|h| h.0 == e.0)).count();
            }
            let top10 = top10 as f64 / (10 * probes.len()) as f64;
            print_top100(
                &format!("round {round}, {} rows, {name} (top-10 recall {top10:.4})", index.len()),
                times,
                recalled,
                probes.len(),
            );
        }
    }
}

/// Our walk against hnsw_rs's search of the same files (module docs).
fn walk(dir: &std::path::Path, ours: &VectorIndex, rng: &mut rand::rngs::StdRng) {
    use hnsw_rs::prelude::{DistL2, Hnsw, HnswIo};
    let mut loader = HnswIo::new(dir, "dense");
    let theirs: Hnsw<f32, DistL2> = loader.load_hnsw().unwrap();
    let k = 100;
    for (kind, share) in [("none", 1.0), ("random", 0.2), ("random", 0.45), ("random", 0.8), ("region", 0.45)] {
        let cases: Vec<(Vec<f32>, Vec<bool>)> = (0..200)
            .map(|_| {
                let allowed: Vec<bool> = match kind {
                    "region" => {
                        let mut allowed = vec![false; ours.len()];
                        let rows = (share * ours.len() as f64) as usize;
                        let centre = near(ours, 0.1, rng);
                        ours.exact_search(&centre, rows, None)
                            .iter()
                            .for_each(|(row, _)| allowed[*row as usize] = true);
                        allowed
                    }
                    _ => (0..ours.len()).map(|_| rng.random::<f64>() < share).collect(),
                };
                (near(ours, 0.1, rng), allowed)
            })
            .collect();
        let exact: Vec<Vec<(u32, f32)>> =
            cases.iter().map(|(p, a)| ours.exact_search(p, k, Some(&|i: u32| a[i as usize]))).collect();
        for ef in [100, 128, 256] {
            for name in ["hnsw_rs", "ours"] {
                let (mut times, mut recalled) = (Vec::new(), 0);
                for ((probe, allowed), exact) in cases.iter().zip(&exact) {
                    let allow = |item: u32| allowed[item as usize];
                    let filter = |id: &usize| allowed[*id];
                    let start = Instant::now();
                    let hits: Vec<u32> = match (name, kind) {
                        ("ours", "none") => ours.walk(probe, k, ef, None).unwrap().into_iter().map(|h| h.0).collect(),
                        ("ours", _) => {
                            ours.walk(probe, k, ef, Some(&allow)).unwrap().into_iter().map(|h| h.0).collect()
                        }
                        (_, "none") => theirs.search(probe, k, ef).iter().map(|n| n.d_id as u32).collect(),
                        _ => theirs.search_filter(probe, k, ef, Some(&filter)).iter().map(|n| n.d_id as u32).collect(),
                    };
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                    recalled += exact.iter().filter(|e| hits.contains(&e.0)).count();
                }
                print_top100(&format!("{kind} {share}, ef {ef}, {name}"), times, recalled, cases.len());
            }
        }
    }
}

/// One line: p50 and p99 of `times` (ms) and the share of the exact top 100 recalled over
/// `probes` searches.
fn print_top100(label: &str, mut times: Vec<f64>, recalled: usize, probes: usize) {
    times.sort_by(f64::total_cmp);
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    let recall = recalled as f64 / (100 * probes) as f64;
    println!("{label}: p50 {p50:.3} ms, p99 {p99:.3} ms, recall of the exact top 100 {recall:.4}");
}
