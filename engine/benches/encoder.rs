//! The embedding model on fixed inputs: one short query (the path every search pays), one
//! SciFact-length abstract, and a batch of eight (the indexer's CPU batch); and the
//! cross-encoder scoring one query against 30 abstracts (a rerank of the top 30; its weights
//! are the untrained initial ones, which cost what trained ones cost).
//!
//! `cargo bench -p hyrank-engine --bench encoder`; the pool is rayon's, so
//! `RAYON_NUM_THREADS=1` measures one core. `HYRANK_CPU_KERNELS=candle` runs candle's CPU
//! kernels instead of hyrank's, for the comparison in docs/EVAL.md.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hyrank_engine::cross::states::ItemStates;
use hyrank_engine::cross::{CrossEncoder, CrossEncoderSettings, ItemText};
use hyrank_engine::{DeviceChoice, Embedder, EmbedderSettings, Precision};

/// A SciFact-style claim: 21 tokens with [CLS] and [SEP], the median of the test queries.
const QUERY: &str = "Vitamin D deficiency is associated with an increased risk of respiratory infections in children.";

/// About 240 tokens, the length of a typical SciFact abstract.
fn abstract_text() -> String {
    "Alterations of the architecture of cerebral white matter in the developing human brain can \
     affect cortical development and result in functional disabilities. A line scan diffusion-\
     weighted magnetic resonance imaging sequence with diffusion tensor analysis was applied to \
     measure the apparent diffusion coefficient, to calculate relative anisotropy, and to \
     delineate three-dimensional fiber architecture in cerebral white matter in preterm infants. "
        .repeat(3)
}

fn encoder(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
    let mut settings = EmbedderSettings::new(dir);
    settings.device = DeviceChoice::Cpu;
    let embedder = Embedder::load(&settings).expect("the model (scripts/setup.sh)");
    let text = abstract_text();
    let batch: Vec<&str> = (0..8).map(|_| text.as_str()).collect();

    // `encoder_int8`: the same at `--precision int8` (hyrank's integer kernels unless
    // HYRANK_CPU_KERNELS=candle).
    let int8 = Embedder::load(&EmbedderSettings { precision: Some(Precision::Int8), ..settings.clone() }).unwrap();
    for (name, model) in [("encoder", &embedder), ("encoder_int8", &int8)] {
        let mut group = c.benchmark_group(name);
        group.sample_size(20);
        group.bench_function("query", |b| b.iter(|| model.embed(QUERY).unwrap()));
        if name == "encoder" {
            // What a search tokenizes besides the pass: the reading and the pieces are one
            // tokenization (`Embedder::pieces`), once per uncached query.
            group.bench_function("query_tokenize", |b| b.iter(|| model.pieces(QUERY).unwrap()));
        }
        group.bench_function("abstract", |b| b.iter(|| model.embed(&text).unwrap()));
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function("batch_of_8_abstracts", |b| b.iter(|| model.embed_batch(&batch).unwrap()));
        group.finish();
    }

    // The joint cross-encoder (run 2's shape), and PreTTR shapes scoring from stored item
    // states (what a PreTTR generation serves): one query against the top 30.
    // `_int8`: the trained layers' projections in int8 (`--rerank-precision int8`).
    let i64 = CrossEncoderSettings { item_tokens: Some(64), ..CrossEncoderSettings::DEFAULT };
    let shapes = [
        ("top_30", CrossEncoderSettings::JOINT, Precision::F32),
        ("prettr_f4_i128_top_30", CrossEncoderSettings::DEFAULT, Precision::F32),
        ("prettr_f4_i128_top_30_int8", CrossEncoderSettings::DEFAULT, Precision::Int8),
        ("prettr_f4_i64_top_30", i64, Precision::F32),
        ("prettr_f4_i64_top_30_int8", i64, Precision::Int8),
        (
            "prettr_f5_i128_top_30",
            CrossEncoderSettings { frozen_layers: 5, ..CrossEncoderSettings::DEFAULT },
            Precision::F32,
        ),
    ];
    let mut group = c.benchmark_group("cross_encoder");
    group.sample_size(10);
    for (name, shape, layers) in shapes {
        let (_, vars) = CrossEncoder::for_training(&embedder, shape, 1).unwrap();
        let weights = std::env::temp_dir().join(format!("hyrank-bench-reranker-{}.safetensors", std::process::id()));
        CrossEncoder::save(&vars, &weights).unwrap();
        let mut reranker = CrossEncoder::load_at(&embedder, &weights, shape, layers).unwrap();
        std::fs::remove_file(&weights).ok();
        let texts: Vec<&str> = (0..30).map(|_| text.as_str()).collect();
        if let Some(header) = reranker.states_header("bench", texts.len()) {
            let states = ItemStates::from_items(header, reranker.item_states(&texts).unwrap()).unwrap();
            reranker.attach_states(states).unwrap();
        }
        let candidates: Vec<ItemText<'_>> =
            texts.iter().enumerate().map(|(i, text)| ItemText { index: Some(i as u32), text }).collect();
        group.bench_function(name, |b| b.iter(|| reranker.score(QUERY, &candidates).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
