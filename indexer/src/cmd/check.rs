//! `hyrank check-model`: its flags and the run.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hyrank_engine::Precision;

use super::*;

#[derive(Args)]
pub(crate) struct CheckModelArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Reference embeddings written by scripts/make_goldens.py.
    #[arg(long, default_value = "fixtures/golden_embeddings.json")]
    pub(crate) golden: PathBuf,
    /// Lowest acceptable cosine to the reference, above 0 and at most 1 [default: 0.999 at
    /// f32, 0.99 at a reduced precision].
    #[arg(long, allow_negative_numbers = true, value_parser = cosine_bound)]
    pub(crate) min_cosine: Option<f32>,
    /// Also time embedding this catalog (JSONL, title + text), reporting items per second.
    #[arg(long)]
    pub(crate) throughput_catalog: Option<PathBuf>,
    /// Also time encoding each line of this file alone (one query per line), as the query
    /// path does, reporting p50 and p99 in milliseconds.
    #[arg(long)]
    pub(crate) latency_queries: Option<PathBuf>,
    /// Throughput runs over the catalog; the median is reported.
    #[arg(long, default_value_t = 1, value_parser = super::index::at_least_one, requires = "throughput_catalog")]
    pub(crate) repeats: usize,
}

/// A cosine a check can be held to: above 0 (a bound at or below it passes anything) and at
/// most 1 (a bound above it fails everything).
fn cosine_bound(text: &str) -> Result<f32, String> {
    match text.trim().parse::<f32>() {
        Ok(bound) if bound > 0.0 && bound <= 1.0 => Ok(bound),
        Ok(bound) => Err(format!("{bound} is not a cosine bound above 0 and at most 1")),
        Err(e) => Err(e.to_string()),
    }
}

/// Compares the model's embeddings with the goldens on the requested device; fails below
/// `min_cosine`. With a catalog, also reports embedding throughput on that device.
pub(crate) fn check_model(args: CheckModelArgs) -> anyhow::Result<()> {
    let settings = args.model.settings()?;
    let device = settings.device;
    let embedder = hyrank_engine::Embedder::load(&settings).context("loading the model")?;
    let precision = embedder.precision();
    let min_cosine = args.min_cosine.unwrap_or(if precision == Precision::F32 { 0.999 } else { 0.99 });
    let text = std::fs::read_to_string(&args.golden).with_context(|| format!("reading {}", args.golden.display()))?;
    let golden: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", args.golden.display()))?;
    let cases = golden["cases"].as_array().context("golden file has no `cases` array")?;
    let texts: Vec<String> = cases.iter().filter_map(|c| c["text"].as_str().map(str::to_string)).collect();
    let got = embedder.embed_many(&texts, |_| {})?;
    let mut worst = f32::INFINITY;
    for (case, vector) in cases.iter().zip(&got) {
        let expected: Vec<f32> = case["embedding"]
            .as_array()
            .context("case without embedding")?
            .iter()
            .filter_map(|v| v.as_f64())
            .map(|v| v as f32)
            .collect();
        let dot: f32 = vector.iter().zip(&expected).map(|(a, b)| a * b).sum();
        let norm: f32 = expected.iter().map(|v| v * v).sum::<f32>().sqrt();
        let cosine = dot / norm;
        worst = worst.min(cosine);
        let preview: String = case["text"].as_str().unwrap_or("").chars().take(40).collect();
        println!("cosine {cosine:.6}  {preview:?}");
    }
    println!("device {device}, {precision}: worst cosine {worst:.6} over {} cases (need >= {min_cosine})", got.len());
    anyhow::ensure!(worst >= min_cosine, "embeddings differ from sentence-transformers");
    if let Some(path) = args.throughput_catalog {
        let catalog = hyrank_indexer::input::read_catalog(&path, &hyrank_indexer::CatalogFormat::default())?;
        let texts: Vec<String> = catalog.items.iter().map(hyrank_engine::Item::content).collect();
        // A rate over nothing (0.0 items/s) would read as a measurement.
        anyhow::ensure!(!texts.is_empty(), "--throughput-catalog {}: holds no items to time", path.display());
        embedder.embed_many(&texts[..texts.len().min(64)], |_| {})?; // warm-up: kernels, allocations
        let mut rates = Vec::new();
        for _ in 0..args.repeats.max(1) {
            let start = std::time::Instant::now();
            embedder.embed_many(&texts, |_| {})?;
            let seconds = start.elapsed().as_secs_f64();
            rates.push(texts.len() as f64 / seconds);
            println!(
                "device {device}, {precision}: embedded {} items in {seconds:.2} s = {:.1} items/s (batch {}, max_tokens {})",
                texts.len(),
                texts.len() as f64 / seconds,
                embedder.batch_size(),
                settings.max_tokens
            );
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "device {device}, {precision}: median {:.1} items/s over {} runs",
            rates[rates.len() / 2],
            rates.len()
        );
    }
    if let Some(path) = args.latency_queries {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let queries: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        anyhow::ensure!(!queries.is_empty(), "{} holds no queries", path.display());
        embedder.embed(queries[0])?; // warm-up
        let mut ms: Vec<f64> = Vec::with_capacity(queries.len());
        for query in &queries {
            let start = std::time::Instant::now();
            embedder.embed(query)?;
            ms.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(f64::total_cmp);
        let at = |p: f64| ms[((p / 100.0) * (ms.len() - 1) as f64).round() as usize];
        println!(
            "device {device}, {precision}: {} queries one at a time: query p50 {:.2} ms, p99 {:.2} ms",
            ms.len(),
            at(50.0),
            at(99.0)
        );
    }
    Ok(())
}
