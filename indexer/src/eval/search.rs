//! `hyrank eval search`: relevance of each retrieval configuration on a BEIR-layout data set.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hyrank_engine::fusion::Fusion;
use hyrank_engine::lexical::{Bm25Overrides, FieldCombination};
use hyrank_engine::request::{candidates_for, RerankOptions, RerankerKind, SearchRequest, Weights};
use hyrank_engine::{Engine, Mode};
use serde::Serialize;

use std::collections::BTreeMap;

use super::metrics::{map_at, mrr_at, ndcg_at, percentile, recall_at};
use super::write_file;
use crate::error::{IndexError, Result};
use crate::judgments::{read_judged, Judged};

/// A named retrieval configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name in reports and file names.
    pub name: String,
    mode: Mode,
    fusion: Fusion,
    weights: Weights,
    /// Candidates per retriever; `None` takes the evaluation's `candidates`.
    candidates: Option<usize>,
    rerank: Option<RerankOptions>,
    /// BM25's k1, b and field combination; what is absent keeps the generation's.
    bm25: Bm25Overrides,
}

/// The configurations `--configs` accepts.
pub const PRESETS: [&str; 8] = [
    "default",
    "bm25",
    "dense",
    "hybrid-rrf",
    "hybrid-linear",
    "hybrid-linear-floor",
    "hybrid-dbsf",
    "hybrid-rrf-rerank",
];

/// Parameters a configuration may override after `+`.
pub const PARAMETERS: [&str; 10] =
    ["bm25", "dense", "k", "candidates", "rerank", "reranker", "k1", "b", "title_b", "fields"];

impl Config {
    /// A preset by name: `default` (exactly what a search request with no options gets, its
    /// candidate depth included), `bm25`, `dense`, `hybrid-rrf` (k = 60), `hybrid-linear`
    /// (0.5 / 0.5 over min-max-normalised scores), `hybrid-linear-floor` (0.5 / 0.5, each list
    /// from its floor), `hybrid-dbsf`, `hybrid-rrf-rerank` (the late-interaction reranker over
    /// the top 20).
    pub fn preset(name: &str) -> Option<Config> {
        let config = |mode, fusion, weights, rerank| Config {
            name: name.to_string(),
            mode,
            fusion,
            weights,
            candidates: None,
            rerank,
            bm25: Bm25Overrides::default(),
        };
        let half = Weights { bm25: Some(0.5), dense: Some(0.5), cf: None };
        Some(match name {
            "default" => {
                let request = SearchRequest::new("");
                Config {
                    candidates: Some(candidates_for(request.k, request.candidates)),
                    ..config(request.mode, request.fusion, request.weights, request.rerank)
                }
            }
            "bm25" => config(Mode::Bm25, Fusion::default(), Weights::default(), None),
            "dense" => config(Mode::Dense, Fusion::default(), Weights::default(), None),
            "hybrid-rrf" => config(Mode::Hybrid, Fusion::Rrf { k: 60.0 }, Weights::default(), None),
            "hybrid-linear" => config(Mode::Hybrid, Fusion::Linear, half, None),
            "hybrid-linear-floor" => config(Mode::Hybrid, Fusion::LinearFloor, half, None),
            "hybrid-dbsf" => config(Mode::Hybrid, Fusion::Dbsf, half, None),
            "hybrid-rrf-rerank" => config(
                Mode::Hybrid,
                Fusion::Rrf { k: 60.0 },
                Weights::default(),
                Some(RerankOptions::top(20, Some(RerankerKind::LateInteraction))),
            ),
            _ => return None,
        })
    }

    /// A preset with overrides, e.g. `hybrid-linear+bm25=0.3+dense=0.7+candidates=200` or
    /// `hybrid-rrf+k=20`: fusion weights (`bm25`, `dense`), the RRF constant (`k`), candidates
    /// per retriever (`candidates`), a rerank depth or `off` (`rerank`; the generation's
    /// default reranker unless `reranker=trained|late` says), BM25's `k1`, `b` and `fields`
    /// (`bm25f` or `sum`). The whole spec is the name.
    pub fn parse(spec: &str) -> std::result::Result<Config, String> {
        let mut parts = spec.split('+');
        let preset = parts.next().unwrap_or_default();
        let mut config = Config::preset(preset)
            .ok_or_else(|| format!("unknown configuration {preset:?}; choose from {PRESETS:?}"))?;
        config.name = spec.to_string();
        for part in parts {
            let (key, value) =
                part.split_once('=').ok_or_else(|| format!("{spec:?}: expected key=value after '+', got {part:?}"))?;
            let number = || {
                value
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| format!("{spec:?}: {key} must be a non-negative number, got {value:?}"))
            };
            let count = || {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{spec:?}: {key} must be a positive whole number, got {value:?}"))
            };
            match key {
                "bm25" => config.weights.bm25 = Some(number()?),
                "dense" => config.weights.dense = Some(number()?),
                "k" => match &mut config.fusion {
                    Fusion::Rrf { k } => *k = number()?,
                    Fusion::Linear | Fusion::LinearFloor | Fusion::Dbsf => {
                        return Err(format!("{spec:?}: k applies to RRF fusion only"))
                    }
                },
                "candidates" => config.candidates = Some(count()?),
                "k1" => config.bm25.k1 = Some(number()? as f32),
                "b" => config.bm25.b = Some(number()? as f32),
                "title_b" => config.bm25.title_b = Some(number()? as f32),
                "fields" => {
                    config.bm25.fields = Some(match value {
                        "bm25f" => FieldCombination::Bm25f,
                        "sum" => FieldCombination::Sum,
                        _ => return Err(format!("{spec:?}: fields must be bm25f or sum, got {value:?}")),
                    })
                }
                "rerank" if value == "off" => config.rerank = Some(RerankOptions::off()),
                "rerank" => {
                    let reranker = config.rerank.as_ref().and_then(|r| r.reranker);
                    config.rerank = Some(RerankOptions::top(count()?, reranker));
                }
                "reranker" => {
                    let kind = match value {
                        "trained" => RerankerKind::Trained,
                        "late" => RerankerKind::LateInteraction,
                        _ => return Err(format!("{spec:?}: reranker must be trained or late, got {value:?}")),
                    };
                    let mut options =
                        config.rerank.take().filter(|r| r.enabled).unwrap_or_else(|| RerankOptions::top(0, None));
                    options.reranker = Some(kind);
                    if options.depth == Some(0) {
                        options.depth = None;
                    }
                    config.rerank = Some(options);
                }
                _ => return Err(format!("{spec:?}: unknown parameter {key:?}; choose from {PARAMETERS:?}")),
            }
        }
        // Refused here where a rerank is off by name; where it is left to the generation, once
        // the generation is known ([`Config::moot`] in `evaluate`).
        config.moot(config.rerank.as_ref().is_some_and(|r| !r.enabled))?;
        Ok(config)
    }

    /// The overrides given in the name.
    fn given(&self) -> impl Iterator<Item = &str> {
        self.name.split('+').skip(1).filter_map(|o| o.split_once('=').map(|(key, _)| key.trim()))
    }

    /// Refuses an override that would change nothing, where the run is `unranked` (no
    /// reranker): BM25's parameters change nothing the dense retriever finds, and a single
    /// retriever's list with no reranker is ranked as it is, so no weight or fusion constant
    /// changes it either (the late-interaction reranker adds the fused score, so there they
    /// may).
    ///
    /// # Errors
    /// The name, the override and why, as `--configs` reports it.
    fn moot(&self, unranked: bool) -> std::result::Result<(), String> {
        let moot: &[&str] = match (self.mode, unranked) {
            (Mode::Dense, true) => &["bm25", "dense", "k", "k1", "b", "title_b", "fields"],
            (Mode::Dense, false) => &["k1", "b", "title_b", "fields"],
            (Mode::Bm25, true) => &["bm25", "dense", "k"],
            _ => &[],
        };
        match self.given().find(|key| moot.contains(key)) {
            Some(key) => Err(format!(
                "{:?}: {key} would have no effect: {} ranks one retriever's list{} (the name would claim a setting \
                 the run does not have)",
                self.name,
                self.name.split('+').next().unwrap_or_default(),
                if unranked { " as it is, with no reranker" } else { "" }
            )),
            None => Ok(()),
        }
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct SearchEvalSettings {
    /// Folder with `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.
    pub data_dir: PathBuf,
    /// Judgment split.
    pub split: String,
    /// Configurations to run.
    pub configs: Vec<Config>,
    /// Hits kept per query (the run-file depth; metrics cut at 10 and 100).
    pub depth: usize,
    /// Candidates per retriever before fusion.
    pub candidates: usize,
    /// Drop a hit whose id is its query's before scoring, as BEIR's `EvaluateRetrieval`
    /// (`ignore_identical_ids`) and Pyserini's `--remove-query` do: where queries are also
    /// documents (ArguAna, Quora), the query itself is no answer to it.
    pub drop_identical_ids: bool,
    /// Where reports, run files and per-query scores go.
    pub out_dir: PathBuf,
}

/// One configuration's scores.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    /// Configuration name.
    pub name: String,
    /// Mean nDCG@10.
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    /// Mean Recall@100.
    #[serde(rename = "recall@100")]
    pub recall_100: f64,
    /// Mean MRR@10.
    #[serde(rename = "mrr@10")]
    pub mrr_10: f64,
    /// Mean MAP@100.
    #[serde(rename = "map@100")]
    pub map_100: f64,
    /// Median in-process query latency.
    pub p50_ms: f64,
    /// 99th-percentile in-process query latency.
    pub p99_ms: f64,
    /// nDCG@10 against the first configuration, query by query (absent for the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against_first: Option<super::PairedGain>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    /// Data folder.
    pub data: String,
    /// Split.
    pub split: String,
    /// Generation evaluated.
    pub generation: String,
    /// Queries with judgments in the split, all evaluated.
    pub evaluated_queries: usize,
    /// Queries in queries.jsonl without judgments in this split (skipped).
    pub skipped_without_judgments: usize,
    /// Judged relevant documents the generation does not hold (not in its catalog, or
    /// refused there): they count as relevant and never retrieved, as trec_eval counts them,
    /// so they lower recall and nDCG; a few examples beside the count.
    pub judged_not_indexed: usize,
    /// Up to 5 of them, as `query/doc`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub judged_not_indexed_examples: Vec<String>,
    /// Evaluated queries none of whose judgments is relevant (every grade 0 or below): they
    /// score 0 on every metric and are in every mean, as trec_eval counts them.
    pub without_relevant: usize,
    /// Judgments with a negative grade, read as not relevant (gain 0), as trec_eval reads them.
    pub negative_grades: usize,
    /// Corpus rows the generation did not index (refused or skipped when it was built; its
    /// `rejects.jsonl` says why): a judged one counts as never retrieved.
    pub corpus_rows_not_indexed: usize,
    /// Corpus rows that repeated an earlier row exactly (same `_id`, same title and text),
    /// read once.
    pub corpus_rows_repeated: usize,
    /// Per configuration whose `<name>.run` file was not written, why: a document it
    /// retrieved, or a query it answered, has an id holding whitespace. Its scores and
    /// per-query file are written all the same, and a run file of that name left by an earlier
    /// run is removed, so that nobody takes it for this run's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub run_files_not_written: BTreeMap<String, String>,
    /// The catalog the generation was built from, when it is not this data's `corpus.jsonl`
    /// (compared as canonical paths): its scores then say little about these judgments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built_from_another_catalog: Option<String>,
    /// Per configuration, the evaluated queries it returned no hit for: they score 0 and stay
    /// in the mean (as `trec_eval -c`), where BEIR's mean over pytrec_eval's output leaves them
    /// out.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queries_without_hits: BTreeMap<String, usize>,
    /// Evaluated queries whose id is also a document's in the generation.
    pub queries_in_corpus: usize,
    /// Whether a hit on the query's own id was dropped before scoring (see
    /// [`SearchEvalSettings::drop_identical_ids`]).
    pub identical_ids_dropped: bool,
    /// Per configuration.
    pub configs: Vec<ConfigReport>,
    /// Run and per-query files already in the output folder for configurations this run does
    /// not have: an earlier run's, left in place (the folder may hold a reader's own files)
    /// and named so that nobody takes them for this run's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier_outputs: Vec<String>,
}

/// The `<name>.run` and `<name>.per-query.tsv` files in `dir` whose name is not one of
/// `configs`, sorted.
fn earlier_outputs(dir: &Path, configs: &[Config]) -> Vec<String> {
    let ours: std::collections::HashSet<&str> = configs.iter().map(|c| c.name.as_str()).collect();
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|file| {
            [".run", ".per-query.tsv"]
                .iter()
                .any(|suffix| file.strip_suffix(suffix).is_some_and(|name| !ours.contains(name)))
        })
        .collect();
    found.sort();
    found
}

/// Runs the evaluation and writes `report.json`, `report.md`, and per configuration a TREC run
/// file (`<name>.run`) and per-query scores (`<name>.per-query.tsv`).
pub fn evaluate(settings: &SearchEvalSettings, engine: &Engine) -> Result<SearchReport> {
    // Two configurations of one name would write one run file for two report rows.
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = settings.configs.iter().find(|c| !names.insert(c.name.as_str())) {
        return Err(IndexError::Settings {
            setting: "configs".into(),
            reason: format!("{:?} is named twice; each configuration writes its own run file", twice.name),
        });
    }
    // A configuration leaving the rerank to the generation runs without one where the
    // generation has no reranker on by default: its moot overrides are refused now.
    let reranks_by_default = engine.trained_reranker().is_some_and(|r| r.enabled_by_default);
    for config in &settings.configs {
        config
            .moot(config.rerank.as_ref().map_or(!reranks_by_default, |r| !r.enabled))
            .map_err(|reason| IndexError::Settings { setting: "configs".into(), reason })?;
        // Each list must fill the depth, so fewer candidates would run as the depth's.
        if let Some(asked) = config.candidates.filter(|&n| n < settings.depth) {
            return Err(IndexError::Settings {
                setting: "configs".into(),
                reason: format!(
                    "{:?}: candidates={asked} is below --depth {depth}: each retriever must fill the depth, so the \
                     run would take {depth} (the name would claim a setting the run does not have); write \
                     candidates={depth} or more, or pass --depth {asked}",
                    config.name,
                    depth = settings.depth
                ),
            });
        }
    }
    if settings.depth == 0 || settings.depth > hyrank_engine::request::MAX_K {
        return Err(IndexError::Settings {
            setting: "depth".into(),
            reason: format!("hits kept per query: from 1 to {}, got {}", hyrank_engine::request::MAX_K, settings.depth),
        });
    }
    let Judged { qrels, queries, unjudged_queries: skipped } = read_judged(&settings.data_dir, &settings.split)?;
    let missing: Vec<String> = qrels
        .iter()
        .flat_map(|(query, judged)| judged.iter().filter(|(_, &grade)| grade > 0).map(move |(doc, _)| (query, doc)))
        .filter(|(_, doc)| engine.index_of(doc).is_err())
        .map(|(query, doc)| format!("{query}/{doc}"))
        .collect();
    if !missing.is_empty() {
        let judged = qrels.values().flat_map(|judged| judged.values()).filter(|&&grade| grade > 0).count();
        tracing::warn!(
            count = missing.len(),
            judged,
            examples = ?&missing[..missing.len().min(5)],
            "judged relevant documents the generation does not hold: they count as relevant and never retrieved{}",
            if missing.len() * 2 > judged { " (most of them: is the index built from this data's corpus?)" } else { "" }
        );
    }
    // Each retriever's list must fill the run's depth, so a run whose default candidates
    // (`--candidates`) are fewer runs with the depth's (a name's own are refused above).
    for config in &settings.configs {
        let asked = config.candidates.unwrap_or(settings.candidates);
        if asked < settings.depth {
            tracing::warn!(
                config = %config.name,
                candidates = asked,
                depth = settings.depth,
                "fewer candidates than the run's depth: each retriever returns the depth's instead"
            );
        }
        // The engine reranks max(rerank depth, k), and a run asks for k = --depth: a smaller
        // rerank depth reranks every hit kept (minutes per 100 on a CPU), whatever its name says.
        let rerank_depth = config.rerank.as_ref().filter(|r| r.enabled).and_then(|r| r.depth);
        if let Some(rerank) = rerank_depth.filter(|&d| d < settings.depth) {
            tracing::warn!(
                config = %config.name,
                rerank,
                depth = settings.depth,
                "a rerank depth below the run's depth: every hit the run keeps is reranked (the engine reranks \
                 max(depth, k), and the run asks for k = --depth); pass --depth {rerank} to rerank {rerank}"
            );
        }
    }
    let in_corpus = |query: &str| engine.index_of(query).is_ok();
    let queries_in_corpus = qrels.keys().filter(|q| in_corpus(q)).count();
    let without_relevant = qrels.values().filter(|judged| judged.values().all(|&g| g < 1)).count();
    let negative_grades = qrels.values().flat_map(|judged| judged.values()).filter(|&&g| g < 0).count();
    if without_relevant > 0 {
        tracing::warn!(
            queries = without_relevant,
            "judged queries with no relevant judgment: they score 0 on every metric and are in every mean"
        );
    }
    std::fs::create_dir_all(&settings.out_dir).map_err(|e| {
        IndexError::Engine(hyrank_engine::Error::io(format!("creating {}", settings.out_dir.display()), e))
    })?;
    let earlier = earlier_outputs(&settings.out_dir, &settings.configs);
    if !earlier.is_empty() {
        tracing::warn!(files = ?earlier, "the output folder holds an earlier run's files; they are left in place");
    }
    let mut without_hits = BTreeMap::new();
    let sources = &engine.manifest().sources;
    let built_from = &sources.catalog;
    let corpus = settings.data_dir.join("corpus.jsonl");
    // The path as given is relative to where the build ran: the resolved one, where the
    // manifest has it, tells one file by two paths from two files.
    let built_at = match &sources.catalog_resolved {
        Some(resolved) => std::path::PathBuf::from(resolved),
        None => super::resolved(Path::new(built_from)),
    };
    let built_from_another_catalog = (built_at != super::resolved(&corpus)).then(|| built_from.clone());
    if let Some(other) = &built_from_another_catalog {
        tracing::warn!(generation_catalog = %other, corpus = %corpus.display(), "the generation was built from another catalog");
    }
    // A TREC run file is whitespace-separated: an id holding whitespace cannot be written in
    // one. The scores do not need the files (they are computed here), so the evaluation runs
    // and the report says which files are missing and why. Only ids a line would hold count:
    // a spaced id nobody retrieves spoils no file.
    let spaced = |kind: &str, id: &str| {
        id.contains(char::is_whitespace)
            .then(|| format!("{kind} id {id:?} holds whitespace, which a TREC run file cannot hold"))
    };
    let mut run_files_not_written = BTreeMap::new();
    let mut reports = Vec::new();
    let mut first_ndcg: Option<Vec<f64>> = None;
    for config in &settings.configs {
        let mut ndcg = Vec::with_capacity(qrels.len());
        let mut run = String::new();
        let mut unwritable: Option<String> = None;
        let mut per_query = String::from("query\tndcg@10\trecall@100\tmrr@10\tmap@100\tms\n");
        let mut sums = [0f64; 4];
        let mut latencies = Vec::with_capacity(qrels.len());
        for (query_id, judged) in &qrels {
            // One hit more when the query's own id may take a place, so the run keeps its depth.
            let own = settings.drop_identical_ids && in_corpus(query_id);
            let k = if own { (settings.depth + 1).min(hyrank_engine::request::MAX_K) } else { settings.depth };
            let request = SearchRequest {
                k,
                mode: config.mode,
                fusion: config.fusion.clone(),
                weights: config.weights.clone(),
                candidates: Some(config.candidates.unwrap_or(settings.candidates).max(k)),
                rerank: config.rerank.clone(),
                // k1 or b alone keeps the generation's value of the other.
                bm25: (config.bm25 != Bm25Overrides::default()).then_some(config.bm25),
                ..SearchRequest::new(queries[query_id].clone())
            };
            let start = Instant::now();
            let mut hits = engine.search(&request)?.hits;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            latencies.push(ms);
            if own {
                hits.retain(|hit| hit.id != *query_id);
                hits.truncate(settings.depth);
            }
            if hits.is_empty() {
                *without_hits.entry(config.name.clone()).or_insert(0) += 1;
            }
            let ranked: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
            if unwritable.is_none() && !hits.is_empty() {
                unwritable = spaced("query", query_id).or_else(|| hits.iter().find_map(|h| spaced("document", &h.id)));
            }
            for (rank, hit) in hits.iter().enumerate().filter(|_| unwritable.is_none()) {
                run += &format!("{query_id} Q0 {} {} {:.8} {}\n", hit.id, rank + 1, hit.score, config.name);
            }
            // `+ 0.0` turns a negative zero (an empty sum) into the 0 a reader expects.
            let scores = [
                ndcg_at(&ranked, judged, 10),
                recall_at(&ranked, judged, 100),
                mrr_at(&ranked, judged, 10),
                map_at(&ranked, judged, 100),
            ]
            .map(|v| v + 0.0);
            for (sum, score) in sums.iter_mut().zip(scores) {
                *sum += score;
            }
            ndcg.push(scores[0]);
            per_query += &format!(
                "{query_id}\t{:.6}\t{:.6}\t{:.6}\t{:.6}\t{ms:.2}\n",
                scores[0], scores[1], scores[2], scores[3]
            );
        }
        let run_path = settings.out_dir.join(format!("{}.run", config.name));
        match unwritable {
            None => write_file(&run_path, &run)?,
            Some(reason) => {
                tracing::warn!(config = %config.name, reason = %reason, "no run file written; the scores and per-query file are");
                match std::fs::remove_file(&run_path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        let context = format!("removing an earlier run's {}", run_path.display());
                        return Err(IndexError::Engine(hyrank_engine::Error::io(context, e)));
                    }
                    _ => {}
                }
                run_files_not_written.insert(config.name.clone(), reason);
            }
        }
        write_file(&settings.out_dir.join(format!("{}.per-query.tsv", config.name)), &per_query)?;
        let n = qrels.len().max(1) as f64;
        let report = ConfigReport {
            name: config.name.clone(),
            ndcg_10: sums[0] / n,
            recall_100: sums[1] / n,
            mrr_10: sums[2] / n,
            map_100: sums[3] / n,
            p50_ms: percentile(&latencies, 50.0),
            p99_ms: percentile(&latencies, 99.0),
            against_first: first_ndcg
                .as_ref()
                .map(|first| super::PairedGain::of(&settings.configs[0].name, &ndcg, first)),
        };
        first_ndcg.get_or_insert(ndcg);
        tracing::info!(config = %config.name, ndcg10 = report.ndcg_10, "configuration evaluated");
        eprintln!("{:<20} nDCG@10 {:.4}", config.name, report.ndcg_10);
        reports.push(report);
    }
    let report = SearchReport {
        data: settings.data_dir.display().to_string(),
        split: settings.split.clone(),
        generation: engine.manifest().generation.clone(),
        evaluated_queries: qrels.len(),
        skipped_without_judgments: skipped,
        judged_not_indexed: missing.len(),
        judged_not_indexed_examples: missing.iter().take(5).cloned().collect(),
        without_relevant,
        negative_grades,
        corpus_rows_not_indexed: engine.manifest().counts.rejected_items,
        corpus_rows_repeated: engine.manifest().counts.repeated_items,
        run_files_not_written,
        built_from_another_catalog,
        queries_without_hits: without_hits,
        queries_in_corpus,
        identical_ids_dropped: settings.drop_identical_ids,
        configs: reports,
        earlier_outputs: earlier,
    };
    super::write_reports(&settings.out_dir, &report, &report.markdown())?;
    Ok(report)
}

impl SearchReport {
    /// The report as a markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{} ({} split): {} judged queries evaluated, {} queries without judgments skipped; generation {}.\n\n",
            self.data, self.split, self.evaluated_queries, self.skipped_without_judgments, self.generation
        );
        if let Some(other) = &self.built_from_another_catalog {
            out += &format!(
                "**The generation was built from {other}, not from this data's corpus.jsonl**: its scores say little \
                 about these judgments.\n\n"
            );
        }
        if !self.queries_without_hits.is_empty() {
            let each: Vec<String> = self.queries_without_hits.iter().map(|(c, n)| format!("{c} {n}")).collect();
            out += &format!(
                "Judged queries with no hit ({}): they score 0 and stay in every mean, as `trec_eval -c` counts \
                 them; BEIR's mean over pytrec_eval's output leaves them out.\n\n",
                each.join(", ")
            );
        }
        if self.corpus_rows_not_indexed > 0 {
            out += &format!(
                "{} corpus rows are not in the generation (refused or skipped when it was built; its \
                 rejects.jsonl says why).\n\n",
                self.corpus_rows_not_indexed
            );
        }
        for (config, reason) in &self.run_files_not_written {
            out += &format!("No run file was written for {config}: {reason}. Its scores and per-query file were.\n\n");
        }
        if self.corpus_rows_repeated > 0 {
            out += &format!(
                "{} corpus rows repeated an earlier row exactly and were read once.\n\n",
                self.corpus_rows_repeated
            );
        }
        if self.judged_not_indexed > 0 {
            out += &format!(
                "{} judged relevant documents are not in the generation (e.g. {}): they count as relevant and \
                 never retrieved.\n\n",
                self.judged_not_indexed,
                self.judged_not_indexed_examples.join(", ")
            );
        }
        if self.without_relevant > 0 {
            out += &format!(
                "{} of the judged queries have no relevant judgment (every grade 0 or below): they score 0 on \
                 every metric and are in every mean, as trec_eval counts them.\n\n",
                self.without_relevant
            );
        }
        if self.negative_grades > 0 {
            out += &format!(
                "{} judgments have a negative grade, read as not relevant (gain 0), as trec_eval reads them.\n\n",
                self.negative_grades
            );
        }
        if self.queries_in_corpus > 0 {
            out += &if self.identical_ids_dropped {
                format!(
                    "{} of the judged queries are also documents of the corpus (the same id): each one's own \
                     document is dropped from its hits before scoring, as BEIR does (--keep-identical-ids keeps \
                     it).\n\n",
                    self.queries_in_corpus
                )
            } else {
                format!(
                    "{} of the judged queries are also documents of the corpus (the same id), kept among their \
                     hits (--keep-identical-ids): BEIR's figures drop them.\n\n",
                    self.queries_in_corpus
                )
            };
        }
        out += &super::markdown_table(
            &["configuration", "nDCG@10", "Recall@100", "MRR@10", "MAP@100", "p50 ms", "p99 ms"],
            self.configs.iter().map(|c| {
                let scores = [c.ndcg_10, c.recall_100, c.mrr_10, c.map_100].map(|v| format!("{v:.4}"));
                let latency = [c.p50_ms, c.p99_ms].map(|v| format!("{v:.1}"));
                [vec![c.name.clone()], scores.to_vec(), latency.to_vec()].concat()
            }),
        );
        out += &super::paired_table(
            "configuration",
            "queries",
            self.configs.iter().map(|c| (c.name.as_str(), c.against_first.as_ref())),
        );
        if !self.earlier_outputs.is_empty() {
            out += &format!(
                "\nAlso in this folder, from an earlier run and not this one's: {}.\n",
                self.earlier_outputs.join(", ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_to_the_preset_and_name_the_config() {
        let config = Config::parse("hybrid-linear+bm25=0.3+dense=0.7+candidates=200").unwrap();
        assert_eq!(config.name, "hybrid-linear+bm25=0.3+dense=0.7+candidates=200");
        assert_eq!(config.fusion, Fusion::Linear);
        assert_eq!((config.weights.bm25, config.weights.dense), (Some(0.3), Some(0.7)));
        assert_eq!(config.candidates, Some(200));
        let rrf = Config::parse("hybrid-rrf+k=20+rerank=50").unwrap();
        assert_eq!(rrf.fusion, Fusion::Rrf { k: 20.0 });
        assert_eq!(rrf.rerank.map(|r| r.depth), Some(Some(50)));
        let bm25 = Config::parse("bm25+k1=0.9+b=0.4+title_b=0+fields=sum").unwrap().bm25;
        assert_eq!((bm25.k1, bm25.b, bm25.title_b), (Some(0.9), Some(0.4), Some(0.0)));
        assert_eq!(bm25.fields, Some(FieldCombination::Sum));
        // What a single retriever's list can be changed by: its depth and a reranker.
        let dense = Config::parse("dense+candidates=50+rerank=20").unwrap();
        assert_eq!((dense.candidates, dense.rerank.map(|r| r.depth)), (Some(50), Some(Some(20))));
        // The late-interaction reranker adds the fused score, which a weight and k move.
        let late = Config::parse("bm25+reranker=late+k=10+bm25=2").unwrap();
        assert_eq!((late.fusion, late.weights.bm25), (Fusion::Rrf { k: 10.0 }, Some(2.0)));
    }

    #[test]
    fn the_default_preset_is_what_a_bare_request_gets() {
        let config = Config::parse("default").unwrap();
        let request = SearchRequest::new("q");
        assert_eq!(
            (config.mode, &config.fusion, config.candidates),
            (request.mode, &request.fusion, Some(candidates_for(request.k, request.candidates)))
        );
        assert_eq!(config.candidates, Some(hyrank_engine::request::defaults::CANDIDATES), "not the evaluation's own");
        assert_eq!((config.weights.bm25, config.weights.dense), (request.weights.bm25, request.weights.dense));
    }

    #[test]
    fn rerank_can_be_turned_off_or_pinned_to_a_reranker() {
        let off = Config::parse("default+rerank=off").unwrap();
        assert_eq!(off.rerank, Some(RerankOptions::off()));
        let trained = Config::parse("default+reranker=trained+rerank=50").unwrap().rerank.unwrap();
        assert_eq!((trained.reranker, trained.depth), (Some(RerankerKind::Trained), Some(50)));
        let late = Config::parse("default+rerank=30+reranker=late").unwrap().rerank.unwrap();
        assert_eq!((late.reranker, late.depth), (Some(RerankerKind::LateInteraction), Some(30)));
        let bare = Config::parse("default+reranker=trained").unwrap().rerank.unwrap();
        assert_eq!((bare.enabled, bare.depth), (true, None), "the depth the reranker was validated at");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, expected) in [
            ("hybrid", "unknown configuration \"hybrid\""),
            ("hybrid-linear+k=20", "k applies to RRF fusion only"),
            ("bm25+depth=3", "unknown parameter \"depth\""),
            ("hybrid-linear+bm25", "expected key=value"),
            ("hybrid-linear+bm25=-1", "non-negative number"),
            ("hybrid-rrf+candidates=0", "positive whole number"),
            ("default+reranker=cross", "reranker must be trained or late"),
            ("bm25+dense=0.7+rerank=off", "dense would have no effect: bm25 ranks one retriever's list as it is"),
            ("bm25+rerank=off+k=20", "k would have no effect"),
            ("dense+k1=0.9", "k1 would have no effect: dense ranks one retriever's list (the name"),
            ("dense+fields=sum+rerank=off", "fields would have no effect"),
        ] {
            let error = Config::parse(spec).unwrap_err();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }
}
