//! `hyrank`: the batch command line.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hyrank_engine::cf::{AlsSettings, EaseSettings};
use hyrank_engine::cross::CrossEncoderSettings;
use hyrank_engine::dense::HnswSettings;
use hyrank_engine::lexical::{Analyzer, Bm25Params, LexicalSettings};
use hyrank_engine::{DeviceChoice, EmbedderSettings, Precision};
use hyrank_indexer::cf_choice::{CfChoiceSettings, CfModelChoice};
use hyrank_indexer::eval::recommend::SplitKind;
use hyrank_indexer::train::defaults;
use hyrank_indexer::{CatalogFormat, CatalogKind, IndexSettings, InteractionFormat, OnError};

/// hyrank: hybrid retrieval and ranking.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Index a catalog (and interactions) into a new generation and publish it.
    Index(Box<IndexArgs>),
    /// Check that the model reproduces sentence-transformers on a device, and time it.
    CheckModel(CheckModelArgs),
    /// Measure relevance on judged data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Fine-tune a cross-encoder reranker from MiniLM on judged queries, clicks, or (for
    /// recommendations) the generation's own interactions; validate it, and publish it in a new
    /// generation beside the current one's indexes.
    TrainReranker(Box<TrainRerankerArgs>),
}

#[derive(Args)]
struct TrainRerankerArgs {
    /// Index folder; its current generation supplies the catalog and the negatives.
    #[arg(long)]
    index_dir: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Judgments: a qrels TSV (`query-id corpus-id score`), with --queries.
    #[arg(long, requires = "queries", conflicts_with = "clicks")]
    qrels: Option<PathBuf>,
    /// Query texts for --qrels: JSON lines with `_id` and `text`.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// A click log: `query<TAB>item<TAB>clicked` (1 or 0) per line.
    #[arg(long, conflicts_with = "interactions")]
    clicks: Option<PathBuf>,
    /// Train a recommendation reranker on the generation's own interactions: each user's latest
    /// items are the positives, the titles of what came just before are the query.
    #[arg(long, conflicts_with_all = ["qrels", "queries"])]
    interactions: bool,
    /// With --interactions: titles of the user's most recent items in the context.
    #[arg(long, default_value_t = defaults::CONTEXT_TITLES)]
    context_titles: usize,
    /// With --interactions: latest items held out per user as positives.
    #[arg(long, default_value_t = defaults::TARGETS_PER_USER)]
    targets_per_user: usize,
    /// Transformer layers kept frozen (from the bottom; MiniLM has 6).
    #[arg(long, default_value_t = CrossEncoderSettings::DEFAULT.frozen_layers)]
    frozen_layers: usize,
    /// Token limit of a query and item together (with --prettr-item-tokens: of each alone).
    #[arg(long, default_value_t = CrossEncoderSettings::DEFAULT.max_tokens)]
    pair_tokens: usize,
    /// PreTTR: the frozen layers read query and item apart, each item's states after them are
    /// stored for its first N tokens (int8, about (384 + 4) × N bytes per item), and only the
    /// trained layers read the pair: a query pays for its own frozen pass and the trained
    /// layers over the pairs. 0: the joint model, whose frozen layers read each pair (no
    /// stored states, about 7× the CPU time per query).
    #[arg(long, value_name = "N", default_value_t = CrossEncoderSettings::DEFAULT.item_tokens.unwrap_or(0))]
    prettr_item_tokens: usize,
    /// Most epochs (validation may stop earlier).
    #[arg(long, default_value_t = defaults::EPOCHS)]
    epochs: usize,
    /// Epochs without a validation gain before stopping.
    #[arg(long, default_value_t = defaults::PATIENCE)]
    patience: usize,
    /// Learning rate of the trained transformer layers.
    #[arg(long, default_value_t = defaults::LEARNING_RATE)]
    learning_rate: f64,
    /// Learning rate of the new head (its weights start at 20 per dimension, so it moves in
    /// larger steps than the layers).
    #[arg(long, default_value_t = defaults::HEAD_LEARNING_RATE)]
    head_learning_rate: f64,
    /// Groups (a positive and its negatives) per optimiser step.
    #[arg(long, default_value_t = defaults::GROUPS_PER_STEP)]
    groups_per_step: usize,
    /// Loss over each group.
    #[arg(long, value_enum, default_value_t = hyrank_indexer::train::Loss::Listwise)]
    loss: hyrank_indexer::train::Loss,
    /// Hard negatives per positive, from the hybrid top --mine-depth.
    #[arg(long, default_value_t = defaults::HARD_NEGATIVES)]
    hard_negatives: usize,
    /// Random negatives per positive.
    #[arg(long, default_value_t = defaults::RANDOM_NEGATIVES)]
    random_negatives: usize,
    /// Depth of the hybrid ranking hard negatives are drawn from.
    #[arg(long, default_value_t = defaults::MINE_DEPTH)]
    mine_depth: usize,
    /// Fraction of queries held out for validation.
    #[arg(long, default_value_t = defaults::VALIDATION_FRACTION)]
    validation_fraction: f64,
    /// Train on at most this many queries (a CPU-sized run).
    #[arg(long)]
    max_train_queries: Option<usize>,
    /// Candidates reranked in validation and, by default, in search.
    #[arg(long, default_value_t = defaults::DEPTH)]
    depth: usize,
    /// Seed of the split, sampling and initialisation.
    #[arg(long, default_value_t = defaults::SEED)]
    seed: u64,
}

fn train_reranker(args: TrainRerankerArgs) -> anyhow::Result<()> {
    use hyrank_indexer::train::{Supervision, TrainSettings};
    let supervision = match (args.qrels, args.queries, args.clicks, args.interactions) {
        (Some(qrels), Some(queries), None, false) => Supervision::Judgments { queries, qrels },
        (None, None, Some(clicks), false) => Supervision::Clicks(clicks),
        (None, None, None, true) => {
            Supervision::Interactions { context_titles: args.context_titles, targets_per_user: args.targets_per_user }
        }
        _ => anyhow::bail!("give one of: --qrels with --queries, --clicks, or --interactions"),
    };
    let mut settings = TrainSettings::new(args.index_dir, args.model.settings()?, supervision);
    settings.shape = CrossEncoderSettings {
        frozen_layers: args.frozen_layers,
        max_tokens: args.pair_tokens,
        item_tokens: Some(args.prettr_item_tokens).filter(|&n| n > 0),
    };
    settings.epochs = args.epochs;
    settings.patience = args.patience;
    settings.learning_rate = args.learning_rate;
    settings.head_learning_rate = args.head_learning_rate;
    settings.groups_per_step = args.groups_per_step;
    settings.loss = args.loss;
    settings.hard_negatives = args.hard_negatives;
    settings.random_negatives = args.random_negatives;
    settings.mine_depth = args.mine_depth;
    settings.validation_fraction = args.validation_fraction;
    settings.max_train_queries = args.max_train_queries;
    settings.depth = args.depth;
    settings.seed = args.seed;
    settings.progress = true;
    let summary = hyrank_indexer::train::train(&settings).context("training the reranker failed")?;
    println!("published {}", summary.dir.display());
    println!("{}", serde_json::to_string_pretty(&summary.reranker)?);
    Ok(())
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Search relevance of each configuration on a BEIR-layout data set (nDCG@10, Recall@100,
    /// MRR@10, MAP@100, latency), with TREC run files and per-query scores.
    Search(EvalSearchArgs),
    /// Recommendation quality on held-out interactions: popularity, CF, content and hybrid,
    /// with Recall@k, nDCG@10, coverage and recall on cold items.
    Recommend(Box<EvalRecommendArgs>),
}

#[derive(Args)]
struct EvalRecommendArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Interactions CSV with a header.
    #[arg(long)]
    interactions: PathBuf,
    #[command(flatten)]
    interaction_columns: InteractionColumns,
    /// How to hold out test interactions.
    #[arg(long, value_enum, default_value_t = SplitKind::Random)]
    split: SplitKind,
    /// Fraction of each user's positives held out (random split).
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Seed of the random split.
    #[arg(long, default_value_t = 42)]
    split_seed: u64,
    /// Positive rule: an interaction is a positive when its weight is at least this.
    #[arg(long, default_value_t = 1.0)]
    min_weight: f32,
    /// Recommendations per user.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// Candidates per retriever.
    #[arg(long, default_value_t = 200)]
    candidates: usize,
    /// Hybrid mode: weight of the CF list in fusion.
    #[arg(long, default_value_t = 1.0)]
    cf_weight: f64,
    /// Hybrid mode: weight of the content list in fusion (the API's default is 0.3).
    #[arg(long, default_value_t = hyrank_engine::request::defaults::RECOMMEND_CONTENT_WEIGHT)]
    content_weight: f64,
    /// Hybrid mode: `share` gives CF's weight to content for items without interactions,
    /// `ignore` fuses them plainly (the API's default for recommendations).
    #[arg(long, value_enum, default_value_t = ColdItemsArg::Ignore)]
    cold_items: ColdItemsArg,
    /// Folder for the train file, the train generation and the reports.
    #[arg(long)]
    out: PathBuf,
    /// Score the generation already under --out (built by an earlier run of this split, perhaps
    /// with a reranker trained on it since) instead of rebuilding it; adds the `hybrid+rerank`
    /// mode when it has a recommendation reranker.
    #[arg(long)]
    reuse_index: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    cf: CfArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AnalyzerArg {
    Unicode,
    Simple,
}

impl From<AnalyzerArg> for Analyzer {
    fn from(arg: AnalyzerArg) -> Self {
        match arg {
            AnalyzerArg::Unicode => Analyzer::Unicode,
            AnalyzerArg::Simple => Analyzer::Simple,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ColdItemsArg {
    Share,
    Ignore,
}

fn eval_recommend(args: EvalRecommendArgs) -> anyhow::Result<()> {
    use hyrank_indexer::eval::recommend::{evaluate, RecommendEvalSettings};
    anyhow::ensure!(args.test_fraction > 0.0 && args.test_fraction < 1.0, "--test-fraction must be between 0 and 1");
    let settings = RecommendEvalSettings {
        catalog_format: args.catalog.format(),
        catalog: args.catalog.catalog.clone(),
        interactions: args.interactions,
        interaction_format: args.interaction_columns.format(),
        split: args.split,
        test_fraction: args.test_fraction,
        seed: args.split_seed,
        min_weight: args.min_weight,
        k: args.k,
        candidates: args.candidates,
        weights: hyrank_engine::request::Weights {
            bm25: None,
            dense: Some(args.content_weight),
            cf: Some(args.cf_weight),
        },
        cold_items: match args.cold_items {
            ColdItemsArg::Share => hyrank_engine::ColdItems::Share,
            ColdItemsArg::Ignore => hyrank_engine::ColdItems::Ignore,
        },
        embedder: args.model.settings()?,
        cf: args.cf.settings()?,
        out_dir: args.out,
        reuse_index: args.reuse_index,
    };
    let report = evaluate(&settings)?;
    print!("{}", report.markdown());
    Ok(())
}

#[derive(Args)]
struct EvalSearchArgs {
    /// BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.
    #[arg(long, env = "HYRANK_EVAL_DATA", default_value = "../shared/data/scifact")]
    data: PathBuf,
    /// Judgment split to evaluate (tune on train, report on test).
    #[arg(long, default_value = "test")]
    split: String,
    /// Index to evaluate; when it holds no generation, the corpus is indexed into it first.
    #[arg(long)]
    index_dir: PathBuf,
    /// Folder for report.json, report.md, run files and per-query scores.
    #[arg(long)]
    out: PathBuf,
    /// Comma-separated configurations: default, bm25, dense, hybrid-rrf, hybrid-linear,
    /// hybrid-rrf-rerank; each may take overrides after '+': bm25=W, dense=W (fusion weights),
    /// k=K (RRF constant), candidates=N, rerank=DEPTH or rerank=off, reranker=trained|late
    /// (default: the generation's trained reranker when it has one). Example:
    /// hybrid-linear+bm25=0.3+dense=0.7, default+rerank=off, default+reranker=trained+rerank=50
    #[arg(long, value_delimiter = ',', default_value = "default,bm25,dense,hybrid-rrf,hybrid-linear")]
    configs: Vec<String>,
    /// Hits kept per query.
    #[arg(long, default_value_t = 100)]
    depth: usize,
    /// Candidates per retriever before fusion (the `default` configuration keeps the engine's).
    #[arg(long, default_value_t = 1000)]
    candidates: usize,
    /// Number format of the trained reranker's layers: f32, f16 or int8, on hyrank's CPU
    /// kernels (the frozen layers stay at the generation's precision) [default: int8 where the
    /// generation's encoder runs on those kernels, f32 elsewhere].
    #[arg(long)]
    rerank_precision: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
}

fn eval_search(args: EvalSearchArgs) -> anyhow::Result<()> {
    use hyrank_indexer::eval::search::{evaluate, Config, SearchEvalSettings};
    let embedder = args.model.settings()?;
    let configs = args
        .configs
        .iter()
        .map(|spec| Config::parse(spec).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if hyrank_engine::generation::current(&args.index_dir).is_err() {
        eprintln!(
            "no generation in {}: indexing {} first",
            args.index_dir.display(),
            args.data.join("corpus.jsonl").display()
        );
        let settings = IndexSettings::new(args.data.join("corpus.jsonl"), args.index_dir.clone(), embedder.clone());
        print!("{}", hyrank_indexer::build(&settings).context("indexing the corpus")?.render());
    }
    // Every configuration encodes (and reranks) the same queries: with the caches on, later
    // configurations would report latencies without query encoding or reranking.
    let runtime = hyrank_engine::RuntimeSettings {
        query_cache_entries: 0,
        rerank_cache_entries: 0,
        rerank_precision: args.rerank_precision.map(|p| p.parse()).transpose().context("--rerank-precision")?,
        ..Default::default()
    };
    let engine =
        hyrank_engine::Engine::open_with_runtime(&args.index_dir, &embedder, runtime).context("opening the index")?;
    let settings = SearchEvalSettings {
        data_dir: args.data,
        split: args.split,
        configs,
        depth: args.depth,
        candidates: args.candidates,
        out_dir: args.out,
    };
    let report = evaluate(&settings, &engine)?;
    print!("{}", report.markdown());
    Ok(())
}

#[derive(Args)]
struct CheckModelArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Reference embeddings written by scripts/make_goldens.py.
    #[arg(long, default_value = "fixtures/golden_embeddings.json")]
    golden: PathBuf,
    /// Lowest acceptable cosine to the reference [default: 0.999 at f32, 0.99 at a reduced
    /// precision].
    #[arg(long)]
    min_cosine: Option<f32>,
    /// Also time embedding this catalog (JSONL, title + text), reporting items per second.
    #[arg(long)]
    throughput_catalog: Option<PathBuf>,
    /// Also time encoding each line of this file alone (one query per line), as the query
    /// path does, reporting p50 and p99 in milliseconds.
    #[arg(long)]
    latency_queries: Option<PathBuf>,
    /// Throughput runs over the catalog; the median is reported.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
}

/// Compares the model's embeddings with the goldens on the requested device; fails below
/// `min_cosine`. With a catalog, also reports embedding throughput on that device.
fn check_model(args: CheckModelArgs) -> anyhow::Result<()> {
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

#[derive(Args)]
struct IndexArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Interactions CSV with a header (user, item, optional weight and timestamp).
    #[arg(long, env = "HYRANK_INTERACTIONS")]
    interactions: Option<PathBuf>,
    #[command(flatten)]
    interaction_columns: InteractionColumns,
    /// Index root: generations are written under it and `CURRENT` points at the newest.
    #[arg(long, env = "HYRANK_INDEX_DIR", default_value = "data/index")]
    index_dir: PathBuf,
    /// What to do with bad rows: `fail` publishes nothing, `skip` writes them to rejects.jsonl.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    on_error: OnError,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    cf: CfArgs,
    /// BM25 tokenizer: `unicode` (NFKC, diacritic folding, UAX #29 words, CJK bigrams,
    /// over-long tokens split and counted) or `simple` (tantivy's: splits on non-alphanumerics,
    /// drops tokens over 40 bytes).
    #[arg(long, value_enum, default_value_t = AnalyzerArg::Unicode)]
    analyzer: AnalyzerArg,
    /// BM25: drop Lucene's 33 English stop words before stemming (unicode analyzer only).
    #[arg(long)]
    stop_words: bool,
    /// BM25's k1 (term-frequency saturation, ≥ 0); requests may override it.
    #[arg(long, default_value_t = Bm25Params::default().k1)]
    bm25_k1: f32,
    /// BM25's b (length normalisation, 0 to 1); requests may override it.
    #[arg(long, default_value_t = Bm25Params::default().b)]
    bm25_b: f32,
    /// BM25: multiplier on title matches.
    #[arg(long, default_value_t = LexicalSettings::default().title_boost)]
    title_boost: f32,
    /// BM25: index words as written (lower-cased) instead of English stems.
    #[arg(long)]
    no_stemming: bool,
    /// HNSW: neighbours per node (M).
    #[arg(long, default_value_t = HnswSettings::default().max_connections)]
    hnsw_m: usize,
    /// HNSW: candidate list size while building.
    #[arg(long, default_value_t = HnswSettings::default().ef_construction)]
    ef_construction: usize,
    /// HNSW: candidate list size while searching (raised to k when smaller).
    #[arg(long, default_value_t = HnswSettings::default().ef_search)]
    ef_search: usize,
}

#[derive(Args)]
struct CatalogArgs {
    /// Catalog: JSON Lines (one item per line: id or _id, title, text, fields) or CSV.
    #[arg(long, env = "HYRANK_CATALOG")]
    catalog: PathBuf,
    /// Catalog format; by default CSV for a .csv file, else JSON Lines.
    #[arg(long, value_enum)]
    catalog_format: Option<CatalogKind>,
    /// CSV catalogs: the id column.
    #[arg(long, default_value = "id")]
    id_column: String,
    /// CSV catalogs: the title column.
    #[arg(long, default_value = "title")]
    title_column: String,
    /// CSV catalogs: text columns, joined in order (repeat the flag). Default: `text`, if present.
    #[arg(long)]
    text_column: Vec<String>,
    /// CSV catalogs: columns stored as filterable fields (repeat the flag).
    #[arg(long)]
    field_column: Vec<String>,
    /// CSV catalogs: split field values on this separator into lists (MovieLens genres: `|`).
    #[arg(long)]
    list_separator: Option<String>,
}

impl CatalogArgs {
    fn format(&self) -> CatalogFormat {
        CatalogFormat {
            kind: self.catalog_format,
            id_column: self.id_column.clone(),
            title_column: self.title_column.clone(),
            text_columns: self.text_column.clone(),
            field_columns: self.field_column.clone(),
            list_separator: self.list_separator.clone(),
        }
    }
}

#[derive(Args)]
struct InteractionColumns {
    /// Interactions: the user column.
    #[arg(long, default_value = "user")]
    user_column: String,
    /// Interactions: the item column.
    #[arg(long, default_value = "item")]
    item_column: String,
    /// Interactions: the weight column (default `weight` if present, else every row weighs 1).
    #[arg(long)]
    weight_column: Option<String>,
    /// Interactions: the integer timestamp column (default `timestamp` if present).
    #[arg(long)]
    time_column: Option<String>,
}

impl InteractionColumns {
    fn format(&self) -> InteractionFormat {
        InteractionFormat {
            user_column: self.user_column.clone(),
            item_column: self.item_column.clone(),
            weight_column: self.weight_column.clone(),
            time_column: self.time_column.clone(),
        }
    }
}

#[derive(Args)]
struct ModelArgs {
    /// Folder with model.safetensors, config.json and tokenizer.json (see scripts/setup.sh).
    #[arg(long, env = "HYRANK_MODEL_DIR", default_value = "models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    /// Device for embeddings: auto, cpu, cuda or cuda:N.
    #[arg(long, env = "HYRANK_DEVICE", default_value = "auto")]
    device: String,
    /// Token limit per item (sentence-transformers uses 256 for this model).
    #[arg(long, default_value_t = hyrank_engine::embed::DEFAULT_MAX_TOKENS)]
    max_tokens: usize,
    /// Items per embedding batch (default: 8 on CPU, 64 on a GPU).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Number format of the transformer: f32; f16 (GPU: f16 throughout; CPU: f16 weights, f32
    /// arithmetic, on hyrank's kernels); bf16 (GPU); int8 (CPU: 8-bit weights and integer
    /// arithmetic on hyrank's kernels; 1.3-1.5x f32's throughput on a 2-core Zen 4, docs/EVAL.md). Indexing: recorded in the
    /// generation (default f32). Serving and evaluating: the generation's by default; another
    /// one is refused.
    #[arg(long, env = "HYRANK_PRECISION")]
    precision: Option<String>,
}

impl ModelArgs {
    fn settings(&self) -> anyhow::Result<EmbedderSettings> {
        let device: DeviceChoice = self.device.parse().context("--device")?;
        anyhow::ensure!(self.batch_size != Some(0), "--batch-size must be at least 1");
        Ok(EmbedderSettings {
            model_dir: self.model_dir.clone(),
            device,
            max_tokens: self.max_tokens,
            batch_size: self.batch_size,
            precision: self.precision.as_deref().map(str::parse).transpose().context("--precision")?,
        })
    }
}

#[derive(Args)]
struct CfArgs {
    /// Which model serves collaborative filtering: `als`, `ease` (refused when its fit would
    /// not fit in memory), or `auto`: each candidate fitted on a validation fifth of every
    /// user's positives, the best by nDCG@10 kept (the comparison goes into the manifest).
    #[arg(long, value_enum, default_value_t = CfModelChoice::default())]
    cf_model: CfModelChoice,
    /// EASE's λ (`auto` also tries 0.25–5 times it).
    #[arg(long, default_value_t = EaseSettings::default().lambda)]
    ease_lambda: f32,
    /// EASE weights kept per item (the largest by magnitude); 0 keeps all items² of them.
    #[arg(long, default_value_t = EaseSettings::default().neighbours)]
    ease_neighbours: usize,
    /// EDLAE's dropout for EASE (0: EASE exactly; `auto` also tries 0.25 and 0.5).
    #[arg(long, default_value_t = EaseSettings::default().dropout)]
    ease_dropout: f32,
    /// Memory EASE's fit may hold, in MiB (default: half of what is available at the start).
    #[arg(long)]
    cf_memory_limit: Option<u64>,
    /// Seconds `--cf-model auto` may spend fitting candidates (one of each family is always
    /// tried).
    #[arg(long, default_value_t = hyrank_indexer::cf_choice::DEFAULT_BUDGET_SECS)]
    cf_budget: u64,
    #[command(flatten)]
    als: AlsArgs,
}

impl CfArgs {
    fn settings(&self) -> anyhow::Result<CfChoiceSettings> {
        anyhow::ensure!(
            self.ease_lambda.is_finite() && self.ease_lambda > 0.0,
            "--ease-lambda must be a finite number above 0"
        );
        anyhow::ensure!((0.0..1.0).contains(&self.ease_dropout), "--ease-dropout must be in [0, 1)");
        Ok(CfChoiceSettings {
            requested: self.cf_model,
            als: self.als.settings(),
            ease: EaseSettings {
                lambda: self.ease_lambda,
                neighbours: self.ease_neighbours,
                dropout: self.ease_dropout,
            },
            memory_limit: self.cf_memory_limit.map(|mib| mib.saturating_mul(1 << 20)),
            budget: std::time::Duration::from_secs(self.cf_budget),
            seed: self.als.seed,
        })
    }
}

#[derive(Args)]
struct AlsArgs {
    /// ALS latent factors.
    #[arg(long, default_value_t = AlsSettings::default().factors)]
    factors: usize,
    /// ALS L2 regularisation.
    #[arg(long, default_value_t = AlsSettings::default().regularization)]
    regularization: f32,
    /// ALS confidence scale (confidence = alpha × weight).
    #[arg(long, default_value_t = AlsSettings::default().alpha)]
    alpha: f32,
    /// ALS iterations.
    #[arg(long, default_value_t = AlsSettings::default().iterations)]
    iterations: usize,
    /// Conjugate-gradient steps per ALS solve.
    #[arg(long, default_value_t = AlsSettings::default().cg_steps)]
    cg_steps: usize,
    /// Seed for ALS initialisation.
    #[arg(long, default_value_t = AlsSettings::default().seed)]
    seed: u64,
}

impl AlsArgs {
    fn settings(&self) -> AlsSettings {
        AlsSettings {
            factors: self.factors,
            regularization: self.regularization,
            alpha: self.alpha,
            iterations: self.iterations,
            cg_steps: self.cg_steps,
            seed: self.seed,
        }
    }
}

impl IndexArgs {
    /// Validates the flags into the pipeline's settings.
    fn into_settings(self) -> anyhow::Result<IndexSettings> {
        anyhow::ensure!(self.hnsw_m >= 2 && self.hnsw_m <= 256, "--hnsw-m must be between 2 and 256");
        anyhow::ensure!(self.title_boost.is_finite() && self.title_boost > 0.0, "--title-boost must be positive");
        Bm25Params { k1: self.bm25_k1, b: self.bm25_b }.check().context("--bm25-k1/--bm25-b")?;
        anyhow::ensure!(
            !(self.stop_words && matches!(self.analyzer, AnalyzerArg::Simple)),
            "--stop-words needs --analyzer unicode"
        );
        Ok(IndexSettings {
            catalog_format: self.catalog.format(),
            catalog: self.catalog.catalog,
            interactions: self.interactions,
            interaction_format: self.interaction_columns.format(),
            index_dir: self.index_dir,
            embedder: self.model.settings()?,
            cf: self.cf.settings()?,
            lexical: LexicalSettings {
                title_boost: self.title_boost,
                stemming: !self.no_stemming,
                analyzer: self.analyzer.into(),
                bm25: Bm25Params { k1: self.bm25_k1, b: self.bm25_b },
                stop_words: self.stop_words,
            },
            hnsw: HnswSettings {
                max_connections: self.hnsw_m,
                ef_construction: self.ef_construction,
                ef_search: self.ef_search,
            },
            on_error: self.on_error,
            progress: true,
        })
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Index(args) => {
            let settings = args.into_settings()?;
            let summary = hyrank_indexer::build(&settings).context("indexing failed")?;
            print!("{}", summary.render());
            Ok(())
        }
        Command::CheckModel(args) => check_model(args),
        Command::Eval(EvalCommand::Search(args)) => eval_search(args),
        Command::Eval(EvalCommand::Recommend(args)) => eval_recommend(*args),
        Command::TrainReranker(args) => train_reranker(*args),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HYRANK_LOG")
                .unwrap_or_else(|_| "warn,hyrank_indexer=info,hnsw_rs=error".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
