//! `hyrank eval search`: relevance of each retrieval configuration on a BEIR-layout data set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hyrank_engine::lexical::Bm25Overrides;
use hyrank_engine::request::SearchRequest;
use hyrank_engine::Engine;
use serde::Serialize;

pub use super::configs::{Config, PARAMETERS, PRESETS};
use super::metrics::{map_at, mrr_at, ndcg_at, percentile, recall_at};
use super::write_file;
use crate::error::{IndexError, Result};
use crate::judgments::{read_judged, Judged};

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
    /// Hits kept per query (`--depth`): below 100, Recall@100 and MAP@100 count only these
    /// (and below 10, nDCG@10 and MRR@10), as trec_eval counts a run this deep.
    pub depth: usize,
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

/// Refuses settings no run can honour: a depth outside 1..=`MAX_K`, two configurations of one
/// name, a configuration's candidates below the depth, and overrides a configuration's run
/// would ignore (`Config::moot`; `reranks_by_default`: the generation's trained reranker is on
/// by default, so a configuration leaving the rerank to it reranks). [`evaluate`] calls it;
/// `hyrank eval search` calls it before indexing a corpus as well, which can take hours.
pub fn check(settings: &SearchEvalSettings, reranks_by_default: bool) -> Result<()> {
    if settings.depth == 0 || settings.depth > hyrank_engine::request::MAX_K {
        return Err(IndexError::Settings {
            setting: "depth".into(),
            reason: format!("hits kept per query: from 1 to {}, got {}", hyrank_engine::request::MAX_K, settings.depth),
        });
    }
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
    Ok(())
}

/// A query's lines of a TREC run file: `query Q0 doc rank score name`, in the engine's order.
///
/// trec_eval (and pytrec_eval, its binding) ranks a query's documents by the score column,
/// held as a 32-bit float, and breaks equal scores by document id, not by the rank column, so
/// equal scores (RRF's ranks 1 + 2 and 2 + 1, one list's equal BM25 scores) and scores equal
/// once rounded to 32 bits would be re-ordered and scored other than the report scores them.
/// Each score is therefore written as a 32-bit float strictly below the one before it: the
/// score rounded, where that is already below, else one step (`f32::next_down`) below the
/// previous, so a tie moves by units in the last place of an f32 and the order is the engine's.
/// Written exactly (an f32's value as the shortest f64 text), so that reading it as a double
/// and rounding to a float gives that float back.
fn run_lines<'a>(query_id: &str, hits: impl Iterator<Item = (&'a str, f64)>, name: &str) -> String {
    let mut lines = String::new();
    let mut previous = f32::INFINITY;
    for (rank, (id, score)) in hits.enumerate() {
        let rounded = score as f32;
        let score = if rounded < previous { rounded } else { previous.next_down() };
        previous = score;
        lines += &format!("{query_id} Q0 {id} {} {} {name}\n", rank + 1, f64::from(score));
    }
    lines
}

/// The request `config` makes for the query `text`, keeping `k` hits.
fn request(config: &Config, settings: &SearchEvalSettings, text: &str, k: usize) -> SearchRequest {
    SearchRequest {
        k,
        mode: config.mode,
        fusion: config.fusion.clone(),
        weights: config.weights.clone(),
        candidates: Some(config.candidates.unwrap_or(settings.candidates).max(k)),
        rerank: config.rerank.clone(),
        // k1 or b alone keeps the generation's value of the other.
        bm25: (config.bm25 != Bm25Overrides::default()).then_some(config.bm25),
        ..SearchRequest::new(text.to_string())
    }
}

/// Runs the evaluation and writes `report.json`, `report.md`, and per configuration a TREC run
/// file (`<name>.run`) and per-query scores (`<name>.per-query.tsv`).
pub fn evaluate(settings: &SearchEvalSettings, engine: &Engine) -> Result<SearchReport> {
    check(settings, engine.trained_reranker().is_some_and(|r| r.enabled_by_default))?;
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
    // Each configuration tried on one query before any runs: one this generation cannot run
    // (a reranker it lacks) is refused, named, before the others have run and written files.
    if let Some(query) = qrels.keys().next().map(|id| &queries[id]) {
        for config in &settings.configs {
            match engine.search(&request(config, settings, query, settings.depth)) {
                Err(e) if e.kind() == hyrank_engine::ErrorKind::InvalidInput => {
                    return Err(IndexError::Settings {
                        setting: "configs".into(),
                        reason: format!("{:?}: {e}", config.name),
                    })
                }
                result => drop(result?),
            }
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
            let request = request(config, settings, &queries[query_id], k);
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
            if unwritable.is_none() {
                run += &run_lines(query_id, hits.iter().map(|h| (h.id.as_str(), h.score)), &config.name);
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
        depth: settings.depth,
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
        // A run keeps `depth` hits: a metric cut deeper counts only those, and says so.
        let cut = |metric: &str, at: usize| match self.depth < at {
            true => format!("{metric}@{} (of {at})", self.depth),
            false => format!("{metric}@{at}"),
        };
        if self.depth < 100 {
            out += &format!(
                "Each run keeps {} hits per query (--depth): the metrics cut deeper count only those.\n\n",
                self.depth
            );
        }
        let header = [cut("nDCG", 10), cut("Recall", 100), cut("MRR", 10), cut("MAP", 100)];
        let columns: Vec<&str> = ["configuration"]
            .into_iter()
            .chain(header.iter().map(String::as_str))
            .chain(["p50 ms", "p99 ms"])
            .collect();
        out += &super::markdown_table(
            &columns,
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
    fn a_run_file_keeps_the_engine_s_order_through_equal_scores() {
        // RRF's ranks 1 + 2 and 2 + 1 give equal scores; the engine put "b" first by its tie
        // rule, and trec_eval would put "a" first (by id) unless the scores say otherwise.
        let rrf = 1.0 / 61.0 + 1.0 / 62.0;
        let hits = [("b", rrf), ("a", rrf), ("c", rrf), ("d", 0.01), ("e", 0.01 + 1e-12), ("f", 1e-20)];
        let lines = run_lines("q1", hits.into_iter(), "hybrid-rrf");
        // Read as trec_eval reads it: a double, held as a float.
        let written: Vec<(String, f32)> = lines
            .lines()
            .map(|l| {
                let columns: Vec<&str> = l.split(' ').collect();
                assert_eq!((columns[0], columns[1], columns[5]), ("q1", "Q0", "hybrid-rrf"), "{l}");
                (columns[2].to_string(), columns[4].parse::<f64>().unwrap() as f32)
            })
            .collect();
        let ids: Vec<&str> = written.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c", "d", "e", "f"]);
        assert!(written.windows(2).all(|w| w[0].1 > w[1].1), "strictly decreasing as read back: {written:?}");
        // A score already below the one before it is written as it is, to an f32.
        assert_eq!((written[0].1, written[3].1, written[5].1), (rrf as f32, 0.01, 1e-20));
        // A tie moves by units in the last place, never past the next score; "e" (above "d"
        // by less than an f32 tells apart) comes just under it.
        assert!((written[2].1 - rrf as f32).abs() < 1e-8 && written[2].1 > 0.01);
        assert_eq!(written[4].1, 0.01f32.next_down());
    }
}
