//! `hyrank eval search|recommend`: their flags and the runs.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use hyrank_indexer::eval::recommend::SplitKind;
use hyrank_indexer::{IndexSettings, OnError};

use super::*;

#[derive(Subcommand)]
pub(crate) enum EvalCommand {
    /// Search relevance of each configuration on a BEIR-layout data set (nDCG@10, Recall@100,
    /// MRR@10, MAP@100, latency), with TREC run files and per-query scores.
    Search(EvalSearchArgs),
    /// Recommendation quality on held-out interactions: popularity, CF, content and hybrid,
    /// with Recall@k, nDCG@10, coverage and recall on cold items.
    Recommend(Box<EvalRecommendArgs>),
}

#[derive(Args)]
pub(crate) struct EvalRecommendArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Interactions CSV with a header.
    #[arg(long)]
    pub(crate) interactions: PathBuf,
    #[command(flatten)]
    pub(crate) interaction_columns: InteractionColumns,
    /// How to hold out test interactions.
    #[arg(long, value_enum, default_value_t = SplitKind::Random)]
    pub(crate) split: SplitKind,
    /// Fraction of each user's positives held out (random split).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.2)]
    pub(crate) test_fraction: f64,
    /// Seed of the random split.
    #[arg(long, default_value_t = 42)]
    pub(crate) split_seed: u64,
    /// Positive rule: an interaction is a positive when its weight is at least this.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub(crate) min_weight: f64,
    /// Recommendations per user.
    #[arg(long, default_value_t = 20)]
    pub(crate) k: usize,
    /// Candidates per retriever.
    #[arg(long, default_value_t = 200)]
    pub(crate) candidates: usize,
    /// Hybrid mode: weight of the CF list in fusion.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub(crate) cf_weight: f64,
    /// Hybrid mode: weight of the content list in fusion [default: the API's: the weight
    /// `--cf-model auto` validated, else 0.3 under ALS, 0.1 under EASE].
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) content_weight: Option<f64>,
    /// Hybrid mode: `share` gives CF's weight to content for items without interactions,
    /// `ignore` fuses them plainly (the API's default for recommendations).
    #[arg(long, value_enum, default_value_t = ColdItemsArg::Ignore)]
    pub(crate) cold_items: ColdItemsArg,
    /// Hybrid mode: how the CF and content lists are fused (the API's default for
    /// recommendations is `rrf`, k 60).
    #[arg(long, default_value = "rrf")]
    pub(crate) fusion: hyrank_engine::fusion::Fusion,
    /// Folder for the train file, the train generation, the reports and each mode's per-user
    /// scores (`<split>/<mode>.per-user.tsv`: nDCG@10, Recall@k, ms).
    #[arg(long, value_parser = folder)]
    pub(crate) out: PathBuf,
    /// Score the generation already under --out (built by an earlier run of this split, perhaps
    /// with a reranker trained on it since) instead of rebuilding it; adds the `hybrid+rerank`
    /// mode when it has a recommendation reranker.
    #[arg(long)]
    pub(crate) reuse_index: bool,
    /// Bad catalog or interaction rows: `fail` stops before the split, naming every one;
    /// `skip` leaves them out of the split and the train generation, counted in the report;
    /// `skip-empty` leaves out only items whose title and text are both empty.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    pub(crate) on_error: OnError,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) cf: CfArgs,
}

/// `--candidates` of either evaluation: from 1 to the engine's bound.
fn check_candidates(candidates: usize) -> anyhow::Result<()> {
    let max = hyrank_engine::request::MAX_CANDIDATES;
    anyhow::ensure!((1..=max).contains(&candidates), "--candidates must be from 1 to {max}, got {candidates}");
    Ok(())
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ColdItemsArg {
    Share,
    Ignore,
}

pub(crate) fn eval_recommend(args: EvalRecommendArgs) -> anyhow::Result<()> {
    use hyrank_indexer::eval::recommend::{evaluate, RecommendEvalSettings};
    anyhow::ensure!(args.test_fraction > 0.0 && args.test_fraction < 1.0, "--test-fraction must be between 0 and 1");
    // Checked before the split and the build, which a bad value otherwise came after (`--k
    // 100000` built and scored the popularity baseline first).
    let max_k = hyrank_engine::request::MAX_K;
    anyhow::ensure!((1..=max_k).contains(&args.k), "--k must be from 1 to {max_k}, got {}", args.k);
    check_candidates(args.candidates)?;
    super::shared::check_min_weight(args.min_weight)?;
    if args.candidates < args.k {
        tracing::warn!(
            candidates = args.candidates,
            k = args.k,
            "fewer candidates than --k: each retriever returns k instead"
        );
    }
    let settings = RecommendEvalSettings {
        catalog_format: args.catalog.format()?,
        catalog: args.catalog.catalog.clone(),
        interactions: args.interactions,
        interaction_format: args.interaction_columns.format(),
        split: args.split,
        test_fraction: args.test_fraction,
        seed: args.split_seed,
        min_weight: args.min_weight as f32,
        k: args.k,
        candidates: args.candidates,
        weights: hyrank_engine::request::Weights { bm25: None, dense: args.content_weight, cf: Some(args.cf_weight) },
        cold_items: match args.cold_items {
            ColdItemsArg::Share => hyrank_engine::ColdItems::Share,
            ColdItemsArg::Ignore => hyrank_engine::ColdItems::Ignore,
        },
        fusion: args.fusion,
        embedder: args.model.settings()?,
        cf: args.cf.settings()?,
        out_dir: args.out,
        reuse_index: args.reuse_index,
        on_error: args.on_error,
    };
    let report = evaluate(&settings)?;
    print!("{}", report.markdown());
    Ok(())
}

#[derive(Args)]
pub(crate) struct EvalSearchArgs {
    /// BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.
    #[arg(long, env = "HYRANK_EVAL_DATA", default_value = "../shared/data/scifact")]
    pub(crate) data: PathBuf,
    /// Judgment split to evaluate (tune on train, report on test).
    #[arg(long, default_value = "test")]
    pub(crate) split: String,
    /// Index to evaluate; when it holds no generation, the corpus is indexed into it first.
    #[arg(long, value_parser = folder)]
    pub(crate) index_dir: PathBuf,
    /// Folder for report.json, report.md, run files and per-query scores. This run's files are
    /// replaced; another configuration's run files already there are kept and named in the
    /// report as an earlier run's.
    #[arg(long, value_parser = folder)]
    pub(crate) out: PathBuf,
    /// Comma-separated configurations: default, bm25, dense, hybrid-rrf, hybrid-linear (min-max),
    /// hybrid-linear-floor, hybrid-dbsf, hybrid-rrf-rerank; each may take overrides after '+': bm25=W, dense=W (fusion weights),
    /// k=K (RRF constant), candidates=N, rerank=DEPTH or rerank=off, reranker=trained|late
    /// (default: the generation's trained reranker when it has one), and BM25's k1=K1, b=B,
    /// title_b=B, fields=bm25f|sum, fuzziness=auto|off (typo tolerance) and prefix=last|off (the last word completed, search as you type) for this run. A rerank DEPTH or candidates=N below
    /// --depth runs at --depth (warned): every hit kept is returned, so reranked. Examples:
    /// hybrid-linear+bm25=0.3+dense=0.7, default+rerank=off, bm25+k1=0.9+b=0.4,
    /// default+reranker=trained+rerank=50 with --depth 50
    #[arg(long, value_delimiter = ',', default_value = "default,bm25,dense,hybrid-rrf,hybrid-linear")]
    pub(crate) configs: Vec<String>,
    /// Hits kept per query.
    #[arg(long, default_value_t = 100)]
    pub(crate) depth: usize,
    /// Keep a query's own id among its hits. By default a hit whose id is the query's is
    /// dropped before scoring, as BEIR's evaluation and Pyserini's `--remove-query` do: in
    /// corpora whose queries are also documents (ArguAna, Quora) it is the query itself.
    #[arg(long)]
    pub(crate) keep_identical_ids: bool,
    /// Bad corpus rows when this command indexes the corpus (an index folder without a
    /// generation): `skip-empty` passes over documents whose title and text are both empty
    /// (BEIR's FiQA has some; they are named in the build's summary and, when judged relevant,
    /// count as never retrieved) and fails on any other fault.
    #[arg(long, value_enum, default_value_t = OnError::SkipEmpty)]
    pub(crate) on_error: OnError,
    /// Candidates per retriever before fusion (the `default` configuration keeps the engine's).
    #[arg(long, default_value_t = 1000)]
    pub(crate) candidates: usize,
    /// Number format of the trained reranker's layers: f32, f16 or int8 (8-bit weights and
    /// 8-bit inputs; w8a8 is the same here) on hyrank's CPU kernels; f32, f16 or bf16 on a GPU
    /// (the frozen layers stay at the generation's precision) [default: int8 where the
    /// generation's encoder runs on hyrank's CPU kernels, f16 on a GPU, f32 elsewhere].
    #[arg(long)]
    pub(crate) rerank_precision: Option<String>,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
}

pub(crate) fn eval_search(args: EvalSearchArgs) -> anyhow::Result<()> {
    use hyrank_indexer::eval::search::{check, evaluate, Config, SearchEvalSettings};
    // As a configuration's own `+candidates=0` is refused (below --depth, it is warned).
    check_candidates(args.candidates)?;
    let embedder = args.model.settings()?;
    let configs = args
        .configs
        .iter()
        .map(|spec| Config::parse(spec).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = SearchEvalSettings {
        data_dir: args.data.clone(),
        split: args.split.clone(),
        configs,
        depth: args.depth,
        candidates: args.candidates,
        drop_identical_ids: !args.keep_identical_ids,
        out_dir: args.out.clone(),
    };
    if hyrank_engine::generation::current(&args.index_dir).is_err() {
        // Checked before the corpus is indexed, which can take hours (`evaluate` checks and
        // reads them again: small files, against a long build). A generation built here has
        // no trained reranker, so none reranks by default.
        check(&settings, false)?;
        hyrank_indexer::judgments::read_judged(&args.data, &args.split)?;
        // A generation built here has no trained reranker (the check below, for one that is).
        anyhow::ensure!(
            args.rerank_precision.is_none(),
            "--rerank-precision would have no effect: {} has no generation, and one built here has no trained \
             reranker (index, then hyrank train-reranker adds one)",
            args.index_dir.display()
        );
        eprintln!(
            "no generation in {}: indexing {} first",
            args.index_dir.display(),
            args.data.join("corpus.jsonl").display()
        );
        // BEIR's loader reads id, title and text; a corpus's metadata (nested objects,
        // lists of numbers) is not read as fields, as no search of the evaluation uses them.
        let catalog_format = hyrank_indexer::CatalogFormat { json_fields: false, ..Default::default() };
        let build = IndexSettings {
            on_error: args.on_error,
            catalog_format,
            ..IndexSettings::new(args.data.join("corpus.jsonl"), args.index_dir.clone(), embedder.clone())
        };
        print!("{}", hyrank_indexer::build(&build).context("indexing the corpus")?.render());
    }
    // Every configuration encodes (and reranks) the same queries: with the caches on, later
    // configurations would report latencies without query encoding or reranking.
    let precision_asked = args.rerank_precision.is_some();
    let runtime = hyrank_engine::RuntimeSettings {
        query_cache_entries: 0,
        rerank_cache_entries: 0,
        rerank_precision: args.rerank_precision.map(|p| p.parse()).transpose().context("--rerank-precision")?,
        ..Default::default()
    };
    let engine =
        hyrank_engine::Engine::open_with_runtime(&args.index_dir, &embedder, runtime).context("opening the index")?;
    // A precision for layers the generation has none of would be read and ignored.
    anyhow::ensure!(
        !precision_asked || engine.trained_reranker().is_some(),
        "--rerank-precision would have no effect: the generation at {} has no trained reranker \
         (hyrank train-reranker adds one)",
        args.index_dir.display()
    );
    let report = evaluate(&settings, &engine)?;
    print!("{}", report.markdown());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EvalRecommendArgs,
    }

    /// `eval recommend`'s values are checked before the split and the build: the files named
    /// here do not exist, so an error that is not the value's would say so.
    #[test]
    fn eval_recommend_checks_its_values_before_any_work() {
        let out = tempfile::tempdir().unwrap();
        let run = |more: &[&str]| {
            let argv = ["hyrank", "--catalog", "missing.jsonl", "--interactions", "missing.csv", "--out"]
                .into_iter()
                .chain([out.path().to_str().unwrap()])
                .chain(more.iter().copied());
            eval_recommend(Cli::try_parse_from(argv).unwrap().args).unwrap_err().to_string()
        };
        assert_eq!(run(&["--k", "100000"]), "--k must be from 1 to 1000, got 100000");
        assert_eq!(run(&["--k", "0"]), "--k must be from 1 to 1000, got 0");
        assert_eq!(run(&["--candidates", "0"]), "--candidates must be from 1 to 10000, got 0");
        assert_eq!(
            run(&["--min-weight", "NaN"]),
            "--min-weight must be a weight a row may have, from 1.1754944e-38 to 1000000, got NaN"
        );
        assert!(run(&["--min-weight", "-1"]).ends_with("got -1"));
    }

    /// `eval search --rerank-precision` on a generation without a trained reranker would be
    /// read and ignored: refused, naming the folder. `--candidates 0` is refused first, and
    /// settings no run can honour are refused before an empty folder is indexed.
    #[test]
    fn eval_search_refuses_what_it_cannot_run_before_indexing() {
        #[derive(Parser)]
        struct SearchCli {
            #[command(flatten)]
            args: EvalSearchArgs,
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let (index, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (data, model) = (root.join("fixtures/beir-tiny"), root.join("models/all-MiniLM-L6-v2"));
        let argv = ["hyrank", "--rerank-precision", "int8", "--data", data.to_str().unwrap()]
            .into_iter()
            .chain(["--index-dir", index.path().to_str().unwrap(), "--out", out.path().to_str().unwrap()])
            .chain(["--model-dir", model.to_str().unwrap()]);
        let error = eval_search(SearchCli::try_parse_from(argv).unwrap().args).unwrap_err().to_string();
        assert!(error.starts_with("--rerank-precision would have no effect"), "{error}");
        assert!(hyrank_engine::generation::current(index.path()).is_err(), "refused before indexing the corpus");
        // No candidates is refused before anything is indexed, as `+candidates=0` is.
        let argv = ["hyrank", "--candidates", "0", "--index-dir", "none", "--out", "none"];
        let error = eval_search(SearchCli::try_parse_from(argv).unwrap().args).unwrap_err().to_string();
        assert_eq!(error, "--candidates must be from 1 to 10000, got 0");
        // The run's own settings too: a depth out of range, a name given twice, candidates
        // below the depth, an override the run would ignore.
        for (more, refused) in [
            (["--depth", "0"], "depth"),
            (["--configs", "bm25,bm25"], "\"bm25\" is named twice"),
            (["--configs", "bm25+candidates=10"], "candidates=10 is below --depth 100"),
            (["--configs", "bm25+k=20"], "k would have no effect"),
        ] {
            let argv = ["hyrank", "--data", data.to_str().unwrap(), "--index-dir", index.path().to_str().unwrap()]
                .into_iter()
                .chain(["--out", out.path().to_str().unwrap(), "--model-dir", model.to_str().unwrap()])
                .chain(more);
            let error = eval_search(SearchCli::try_parse_from(argv).unwrap().args).unwrap_err().to_string();
            assert!(error.contains(refused), "{more:?}: {error}");
            assert!(hyrank_engine::generation::current(index.path()).is_err(), "{more:?} refused before indexing");
        }
    }
}
