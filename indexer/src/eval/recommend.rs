//! `hyrank eval recommend`: recommendation quality on held-out interactions.
//!
//! Positives are the interactions whose weight meets a threshold (e.g. rating ≥ 4). Each user's
//! positives are split into train and test, either at random (a fixed seed, a test fraction)
//! or by time (the latest positive is the test item). A generation is built from the train
//! positives (binary weights) through the normal pipeline, and every mode is scored against
//! the test items, with the user's train items excluded from the recommendations:
//! popularity (most train positives), CF only, content only, and hybrid.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use hyrank_engine::fusion::Fusion;
use hyrank_engine::generation;
use hyrank_engine::request::{RecommendRequest, RerankOptions, Weights};
use hyrank_engine::{ColdItems, EmbedderSettings, Engine, RecommendMode};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::Serialize;

use super::metrics::{ndcg_at, percentile, Judgments};
use crate::cf_choice::{CfChoiceSettings, CfValidation};
use crate::error::{IndexError, Result};
use crate::input::{read_catalog, read_interactions, CatalogFormat, InteractionFormat};
use crate::pipeline::{IndexSettings, OnError};

/// Where nDCG is cut, whatever the recommendation list's `k`.
const NDCG_CUT: usize = 10;

/// How to hold out test interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitKind {
    /// A seeded random fraction of each user's positives.
    Random,
    /// Each user's latest positive (leave-last-out by timestamp).
    Time,
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct RecommendEvalSettings {
    /// Catalog file and format.
    pub catalog: PathBuf,
    /// How to read it.
    pub catalog_format: CatalogFormat,
    /// Interactions file.
    pub interactions: PathBuf,
    /// How to read it.
    pub interaction_format: InteractionFormat,
    /// Split kind.
    pub split: SplitKind,
    /// Fraction of each user's positives held out (random split).
    pub test_fraction: f64,
    /// Seed of the random split.
    pub seed: u64,
    /// An interaction is a positive when its weight is at least this.
    pub min_weight: f32,
    /// Recommendations per user (Recall@k and coverage@k; nDCG is cut at 10, from a list of
    /// at least 10).
    pub k: usize,
    /// Candidates per retriever.
    pub candidates: usize,
    /// Fusion weights of the hybrid mode (`cf`, `dense`).
    pub weights: Weights,
    /// Fusion of items without training interactions in the hybrid mode.
    pub cold_items: ColdItems,
    /// Fusion of the hybrid mode (the API's default for recommendations: RRF).
    pub fusion: Fusion,
    /// Model.
    pub embedder: EmbedderSettings,
    /// The CF model (ALS, EASE, or chosen by validation on the train split).
    pub cf: CfChoiceSettings,
    /// Where the train file, the generation, the reports and the per-user scores go (under a
    /// folder named for the split).
    pub out_dir: PathBuf,
    /// Evaluate the generation already in `out_dir` (e.g. after `hyrank train-reranker
    /// --interactions` added a reranker to it) instead of rebuilding it; it must have been
    /// built from this split's train file.
    pub reuse_index: bool,
    /// Bad catalog or interaction rows: `Fail` stops before the split, naming every one; `Skip`
    /// leaves them out of the split and the train generation, counted in the report
    /// (`rows_left_out`); `SkipEmpty` leaves out only items whose title and text are empty.
    pub on_error: OnError,
}

/// One mode's scores.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    /// popularity, cf, content or hybrid.
    pub mode: String,
    /// Mean over users of hits@k / test items.
    pub recall: f64,
    /// Mean over users of hits@k / min(k, test items): what benfred/implicit's
    /// `ranking_metrics_at_k` reports as precision, and what many ALS papers call recall@k.
    pub recall_capped: f64,
    /// Mean over users of nDCG@10 with binary gains.
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    /// Distinct items recommended to anyone / catalog size.
    pub coverage: f64,
    /// Cold test items found in their user's top k / all cold test items (micro-averaged).
    pub cold_recall: f64,
    /// Median time per user, in process, while the report's `scoring_threads` users are
    /// scored at once.
    pub p50_ms: f64,
    /// nDCG@10 against the `cf` mode (the collaborative model alone, which the hybrid adds
    /// content to), user by user; absent for `cf` itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against_cf: Option<super::PairedGain>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct RecommendReport {
    /// Split kind.
    pub split: SplitKind,
    /// Seed (random split).
    pub seed: u64,
    /// Held-out fraction (random split).
    pub test_fraction: f64,
    /// Positive threshold.
    pub min_weight: f32,
    /// Cut-off.
    pub k: usize,
    /// Users with at least one test item.
    pub users_evaluated: usize,
    /// Train positives.
    pub train_interactions: usize,
    /// Test positives.
    pub test_interactions: usize,
    /// Test items with no train interaction at all (reachable only through content).
    pub cold_test_interactions: usize,
    /// Catalog size.
    pub items: usize,
    /// Hybrid fusion weights.
    pub weights: Weights,
    /// Hybrid fusion of cold items.
    pub cold_items: ColdItems,
    /// Fusion of the hybrid mode, by name.
    pub fusion: &'static str,
    /// The CF model the train generation serves and how it was chosen (`cf_selection`).
    pub cf_model: Option<hyrank_engine::generation::CfSelection>,
    /// Users scored at once (the rayon pool's threads; `RAYON_NUM_THREADS` sets it).
    pub scoring_threads: usize,
    /// Bad catalog and interaction rows left out under `--on-error skip` (or `skip-empty`).
    pub rows_left_out: usize,
    /// Per mode.
    pub modes: Vec<ModeReport>,
}

fn io_error(context: String, e: impl std::fmt::Display) -> IndexError {
    IndexError::Input { path: PathBuf::from(context), reason: e.to_string() }
}

/// Splits each user's positives; returns (train, test) as (user, item id, timestamp).
type Row = (String, String, Option<i64>);

fn split(
    positives: BTreeMap<String, Vec<(String, Option<i64>)>>,
    settings: &RecommendEvalSettings,
) -> (Vec<Row>, Vec<Row>) {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (user, mut items) in positives {
        let held = match settings.split {
            _ if items.len() < 2 => 0,
            SplitKind::Random => {
                items.sort();
                items.shuffle(&mut rng);
                ((items.len() as f64 * settings.test_fraction).round() as usize).clamp(1, items.len() - 1)
            }
            SplitKind::Time => {
                items.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                // Untimed positives sort first, as the oldest: a user whose latest is untimed
                // has no latest (the one with the largest id was held out), so none is held out.
                usize::from(items.last().is_some_and(|latest| latest.1.is_some()))
            }
        };
        let cut = items.len() - held;
        for (position, (item, time)) in items.into_iter().enumerate() {
            let row = (user.clone(), item, time);
            if position < cut {
                train.push(row)
            } else {
                test.push(row)
            }
        }
    }
    (train, test)
}

fn write_csv(path: &Path, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    let fail = |e: csv::Error| io_error(path.display().to_string(), e);
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    writer.write_record(header).map_err(fail)?;
    for row in rows {
        writer.write_record(&row).map_err(fail)?;
    }
    writer.flush().map_err(|e| io_error(path.display().to_string(), e))
}

/// Beside the train generation: what it was built from ([`build_identity`]), for
/// `--reuse-index` to check.
const BUILT_FROM: &str = "index.built-from";

/// What a train generation is built from, as one line: the SHA-256 of this split's train file
/// (a new split seed, test fraction or minimum weight writes other rows; the row count alone
/// let a seed change through) and the build's settings (the catalog, the CF model and its
/// parameters, the model and its precision and token limit). Query-time settings (fusion, k,
/// weights) are not in it: reusing the generation for them is what `--reuse-index` is for.
fn build_identity(train_path: &Path, index: &IndexSettings) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(train_path).map_err(|e| io_error(train_path.display().to_string(), e))?;
    let embedder = &index.embedder;
    // Paths as the file system resolves them: the same model named relatively from one folder
    // and absolutely from another is the same build.
    use super::resolved;
    let settings = format!(
        "{:?} {:?} {:?} {:?} {:?} {}",
        resolved(&index.catalog),
        index.catalog_format,
        index.cf,
        resolved(&embedder.model_dir),
        embedder.precision,
        embedder.max_tokens
    );
    let hex = |digest: &[u8]| digest.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok(format!("train {} settings {}\n", hex(&Sha256::digest(&bytes)), hex(&Sha256::digest(settings.as_bytes()))))
}

/// A generation may be reused only if it was built from this split's train file with these
/// build settings ([`build_identity`]).
fn check_reusable(index_dir: &Path, train_path: &Path, train_rows: usize, identity: &str) -> Result<()> {
    let refuse = |reason: String| IndexError::Settings { setting: "reuse-index".into(), reason };
    let current = generation::current(index_dir)
        .map_err(|e| refuse(format!("no generation to reuse in {}: {e}", index_dir.display())))?;
    let manifest = generation::read_manifest(&current)?;
    let built_from = manifest.sources.interactions.clone().unwrap_or_default();
    // As resolved paths: `--out` named relatively in one run and absolutely in the next is the
    // same train file.
    let same_file = super::resolved(Path::new(&built_from)) == super::resolved(train_path);
    if !same_file || manifest.counts.interaction_rows != train_rows {
        return Err(refuse(format!(
            "{} was built from {built_from:?} ({} rows), not from this split's {} ({train_rows} rows)",
            current.display(),
            manifest.counts.interaction_rows,
            train_path.display()
        )));
    }
    let recorded = index_dir.with_file_name(BUILT_FROM);
    match std::fs::read_to_string(&recorded) {
        Ok(built) if built == identity => Ok(()),
        Ok(built) => {
            let what = if built.split(' ').nth(1) != identity.split(' ').nth(1) {
                "another split (train.csv's rows differ: a split seed, test fraction or minimum weight changed)"
            } else {
                "other build settings (catalog, CF model or its parameters, model or precision)"
            };
            Err(refuse(format!(
                "{} was built from {what}; run without --reuse-index to build it again",
                current.display()
            )))
        }
        Err(e) => Err(refuse(format!(
            "{} records no build ({}: {e}), so it cannot be checked against this split; run without --reuse-index",
            current.display(),
            recorded.display()
        ))),
    }
}

/// Builds the train generation and scores every mode; writes `train.csv` and `test.csv` (the
/// split, for peers to train and score on exactly the same data), `report.json` and `report.md`.
pub fn evaluate(settings: &RecommendEvalSettings) -> Result<RecommendReport> {
    // What every request of the run would refuse, refused before the train generation is built.
    if settings.k == 0 {
        return Err(IndexError::Settings { setting: "k".into(), reason: "must be at least 1".into() });
    }
    settings.weights.check()?;
    let catalog = read_catalog(&settings.catalog, &settings.catalog_format)?;
    let index: HashMap<&str, u32> =
        catalog.items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
    let mut read = read_interactions(&settings.interactions, &settings.interaction_format, &index, &catalog.rejects)?;
    let mut rejects = catalog.rejects.clone();
    rejects.extend(read.rejects.iter().cloned());
    if settings.on_error.fails_on(&rejects) {
        if settings.on_error == OnError::SkipEmpty {
            rejects.sort_by_key(crate::error::Reject::is_empty_item);
        }
        return Err(IndexError::BadInput { rejects });
    }
    if let Some(first) = rejects.first() {
        tracing::warn!(rows = rejects.len(), first = %first, "bad input rows left out of the split and the train generation");
    }
    // Positives, one per (user, item) with the latest timestamp: the rule `hyrank index
    // --min-weight` serves, from the one place that states it.
    read.keep_positives(settings.min_weight);
    let mut positives: BTreeMap<String, BTreeMap<String, Option<i64>>> = BTreeMap::new();
    for row in &read.rows {
        positives
            .entry(row.user.clone())
            .or_default()
            .insert(catalog.items[row.item as usize].id.clone(), row.timestamp);
    }
    // Every row is in `positives` now; the rows are not held through the build.
    drop(read);
    let positives = positives.into_iter().map(|(u, items)| (u, items.into_iter().collect())).collect();
    let (train, test) = split(positives, settings);
    let untimed = train.iter().filter(|row| row.2.is_none()).count();
    if untimed > 0 && settings.split == SplitKind::Time {
        tracing::warn!(
            positives = untimed,
            "positives without a timestamp: the time split counts them as each user's oldest (kept in train)"
        );
    }
    let split_name = match settings.split {
        SplitKind::Random => "random",
        SplitKind::Time => "time",
    };
    let dir = settings.out_dir.join(split_name);
    std::fs::create_dir_all(&dir).map_err(|e| io_error(dir.display().to_string(), e))?;
    let train_path = dir.join("train.csv");
    let time = |t: &Option<i64>| t.map(|t| t.to_string()).unwrap_or_default();
    write_csv(
        &train_path,
        &["user", "item", "weight", "timestamp"],
        train.iter().map(|(u, i, t)| vec![u.clone(), i.clone(), "1".into(), time(t)]),
    )?;
    write_csv(
        &dir.join("test.csv"),
        &["user", "item", "timestamp"],
        test.iter().map(|(u, i, t)| vec![u.clone(), i.clone(), time(t)]),
    )?;
    let index_dir = dir.join("index");
    if !settings.reuse_index && index_dir.exists() {
        std::fs::remove_dir_all(&index_dir).map_err(|e| io_error(index_dir.display().to_string(), e))?;
    }
    let interaction_format = InteractionFormat {
        user_column: "user".into(),
        item_column: "item".into(),
        weight_column: Some("weight".into()),
        time_column: if train.iter().any(|r| r.2.is_some()) { Some("timestamp".into()) } else { None },
    };
    let index_settings = IndexSettings {
        catalog_format: settings.catalog_format.clone(),
        interactions: Some(train_path.clone()),
        interaction_format,
        cf: CfChoiceSettings {
            // `auto` validates the way this evaluation tests, unless told otherwise, and as `auto`
            // does where some train positive has no time (the time split keeps those in train,
            // as the oldest): by time it could not, and the error named a setting not given.
            validation: match (settings.cf.validation, settings.split) {
                (CfValidation::Auto, SplitKind::Random) => CfValidation::Random,
                (CfValidation::Auto, SplitKind::Time) if untimed == 0 => CfValidation::Time,
                (asked, _) => asked,
            },
            ..settings.cf.clone()
        },
        // The catalog is read again by the build: its bad rows are left out there as here.
        on_error: settings.on_error,
        ..IndexSettings::new(settings.catalog.clone(), index_dir.clone(), settings.embedder.clone())
    };
    let identity = build_identity(&train_path, &index_settings)?;
    let recorded = index_dir.with_file_name(BUILT_FROM);
    if settings.reuse_index {
        check_reusable(&index_dir, &train_path, train.len(), &identity)?;
    } else {
        eprintln!("building the train generation ({} train positives)", train.len());
        // Written after the build: a build that fails leaves none, and no generation to reuse.
        let _ = std::fs::remove_file(&recorded);
        crate::pipeline::build(&index_settings)?;
        std::fs::write(&recorded, &identity).map_err(|e| io_error(recorded.display().to_string(), e))?;
    }
    let engine = Engine::open(&index_dir, &settings.embedder)?;

    let mut train_items: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut popularity: HashMap<&str, usize> = HashMap::new();
    for (user, item, _) in &train {
        train_items.entry(user).or_default().insert(item);
        *popularity.entry(item).or_default() += 1;
    }
    let mut popular: Vec<(&str, usize)> = popularity.iter().map(|(i, c)| (*i, *c)).collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut test_items: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (user, item, _) in &test {
        test_items.entry(user).or_default().push(item);
    }
    let cold_test = test.iter().filter(|(_, item, _)| !popularity.contains_key(item.as_str())).count();

    let mut modes = Vec::new();
    let mut mode_names = vec!["popularity", "cf", "content", "hybrid"];
    if engine.trained_recommend_reranker().is_some() {
        mode_names.push("hybrid+rerank");
    }
    // Each mode's per-user nDCG@10, in user order, for the paired comparisons with cf.
    let mut user_ndcg_of: Vec<Vec<f64>> = Vec::new();
    // nDCG is cut at 10 whatever k is: a list of k < 10 is asked for 10, and the k-deep
    // metrics (recall, coverage, cold recall) read its first k.
    let listed = settings.k.max(NDCG_CUT);
    for mode in mode_names {
        let (mut recall, mut capped, mut ndcg, mut cold_hits) = (0.0, 0.0, 0.0, 0usize);
        let mut user_ndcgs = Vec::with_capacity(test_items.len());
        // One row per user, for paired comparisons of two modes (`bench/paired_bootstrap.py`).
        let mut per_user = format!("user\tndcg@10\trecall@{}\tms\n", settings.k);
        let recommendations = |user: &str| -> Result<Vec<String>> {
            Ok(match mode {
                "popularity" => {
                    let seen = train_items.get(user);
                    popular
                        .iter()
                        .map(|p| p.0)
                        .filter(|i| seen.is_none_or(|s| !s.contains(i)))
                        .take(listed)
                        .map(str::to_string)
                        .collect()
                }
                _ => {
                    let request = RecommendRequest {
                        user: user.to_string(),
                        k: listed,
                        offset: 0,
                        exclude_seen: true,
                        mode: match mode {
                            "cf" => RecommendMode::Cf,
                            "content" => RecommendMode::Content,
                            // hybrid and hybrid+rerank
                            _ => RecommendMode::Hybrid,
                        },
                        filters: Default::default(),
                        exclude: Default::default(),
                        fusion: settings.fusion.clone(),
                        weights: settings.weights.clone(),
                        cold_items: settings.cold_items,
                        candidates: Some(settings.candidates.max(listed)),
                        facets: Vec::new(),
                        sort: Vec::new(),
                        recent: 20,
                        rerank: Some(if mode == "hybrid+rerank" {
                            RerankOptions::default_trained()
                        } else {
                            RerankOptions::off()
                        }),
                        explain: false,
                    };
                    engine.recommend(&request)?.hits.into_iter().map(|h| h.id).collect()
                }
            })
        };
        let mut recommended: HashSet<String> = HashSet::new();
        let mut latencies = Vec::with_capacity(test_items.len());
        // Users are independent, so they are scored on the rayon pool (a 4-million-rating
        // MovieLens has 30,000 of them per mode); the totals below are summed in user order,
        // so the report does not depend on the pool's size.
        let users: Vec<&str> = test_items.keys().copied().collect();
        // Collected whole, then checked in user order: a failure names the first user that
        // failed whatever the pool's size, not whichever thread failed first.
        let lists: Vec<Result<(Vec<String>, f64)>> = users
            .par_iter()
            .map(|user| {
                let start = Instant::now();
                let top = recommendations(user)?;
                Ok((top, start.elapsed().as_secs_f64() * 1000.0))
            })
            .collect();
        let lists = lists.into_iter().collect::<Result<Vec<_>>>()?;
        for ((user, held), (top, ms)) in test_items.iter().zip(lists) {
            latencies.push(ms);
            let judged: Judgments = held.iter().map(|i| (i.to_string(), 1)).collect();
            let user_ndcg = ndcg_at(&top, &judged, NDCG_CUT);
            let top = &top[..top.len().min(settings.k)];
            let hits = top.iter().filter(|i| judged.contains_key(*i)).count();
            let user_recall = hits as f64 / held.len() as f64;
            per_user += &format!("{user}\t{user_ndcg:.6}\t{user_recall:.6}\t{ms:.3}\n");
            user_ndcgs.push(user_ndcg);
            recall += user_recall;
            capped += hits as f64 / held.len().min(settings.k) as f64;
            ndcg += user_ndcg;
            cold_hits += held.iter().filter(|i| !popularity.contains_key(**i) && top.iter().any(|t| t == *i)).count();
            recommended.extend(top.iter().cloned());
        }
        let users = test_items.len().max(1) as f64;
        modes.push(ModeReport {
            mode: mode.to_string(),
            recall: recall / users,
            recall_capped: capped / users,
            ndcg_10: ndcg / users,
            coverage: recommended.len() as f64 / catalog.items.len().max(1) as f64,
            cold_recall: if cold_test > 0 { cold_hits as f64 / cold_test as f64 } else { 0.0 },
            p50_ms: percentile(&latencies, 50.0),
            against_cf: None,
        });
        user_ndcg_of.push(user_ndcgs);
        super::write_file(&dir.join(format!("{mode}.per-user.tsv")), &per_user)?;
        eprintln!("{mode:<11} Recall@{} {:.4}", settings.k, modes.last().map_or(0.0, |m| m.recall));
    }
    if let Some(cf) = modes.iter().position(|m| m.mode == "cf") {
        for (i, mode) in modes.iter_mut().enumerate().filter(|(i, _)| *i != cf) {
            mode.against_cf = Some(super::PairedGain::of("cf", &user_ndcg_of[i], &user_ndcg_of[cf]));
        }
    }
    let report = RecommendReport {
        split: settings.split,
        seed: settings.seed,
        test_fraction: settings.test_fraction,
        min_weight: settings.min_weight,
        k: settings.k,
        users_evaluated: test_items.len(),
        train_interactions: train.len(),
        rows_left_out: rejects.len(),
        test_interactions: test.len(),
        cold_test_interactions: cold_test,
        items: catalog.items.len(),
        weights: settings.weights.clone(),
        cold_items: settings.cold_items,
        fusion: settings.fusion.name(),
        cf_model: engine.manifest().cf_selection.clone(),
        scoring_threads: rayon::current_num_threads(),
        modes,
    };
    super::write_reports(&dir, &report, &report.markdown())?;
    Ok(report)
}

impl RecommendReport {
    /// The report as a markdown table.
    pub fn markdown(&self) -> String {
        let split = match self.split {
            SplitKind::Random => {
                format!("per-user random split, {:.0}% held out, seed {}", self.test_fraction * 100.0, self.seed)
            }
            SplitKind::Time => "per-user leave-last-out by time".to_string(),
        };
        let mut out = format!(
            "{split}; positives have weight ≥ {}; {} users evaluated, {} train / {} test positives ({} test positives on items with no train interaction); {} items; hybrid fused by {}; {} users scored at once.\n\n",
            self.min_weight, self.users_evaluated, self.train_interactions, self.test_interactions, self.cold_test_interactions, self.items, self.fusion, self.scoring_threads
        );
        if self.rows_left_out > 0 {
            out += &format!("{} bad catalog or interaction rows were left out (--on-error).\n\n", self.rows_left_out);
        }
        if let Some(selection) = &self.cf_model {
            out += &format!("CF model: {}.\n\n", selection.reason);
            if let Some(weight) = selection.content_weight {
                out += &format!(
                    "Content weight of the hybrid's default: {weight}, validated on the same split (the model's \
                     default unless another weight's nDCG@10 gain held up).\n\n"
                );
            }
        }
        let k = self.k;
        let header = [
            "mode".to_string(),
            format!("Recall@{k}"),
            format!("capped Recall@{k}"),
            "nDCG@10".to_string(),
            format!("coverage@{k}"),
            format!("cold Recall@{k}"),
            "p50 ms".to_string(),
        ];
        out += &super::markdown_table(
            &header.iter().map(String::as_str).collect::<Vec<_>>(),
            self.modes.iter().map(|m| {
                let scores =
                    [m.recall, m.recall_capped, m.ndcg_10, m.coverage, m.cold_recall].map(|v| format!("{v:.4}"));
                [vec![m.mode.to_string()], scores.to_vec(), vec![format!("{:.1}", m.p50_ms)]].concat()
            }),
        );
        out +=
            &super::paired_table("mode", "users", self.modes.iter().map(|m| (m.mode.as_str(), m.against_cf.as_ref())));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(split: SplitKind) -> RecommendEvalSettings {
        RecommendEvalSettings {
            catalog: PathBuf::new(),
            catalog_format: CatalogFormat::default(),
            interactions: PathBuf::new(),
            interaction_format: InteractionFormat::default(),
            split,
            test_fraction: 0.2,
            seed: 42,
            min_weight: 4.0,
            k: 20,
            candidates: 100,
            weights: Weights::default(),
            cold_items: ColdItems::Ignore,
            fusion: hyrank_engine::fusion::Fusion::default(),
            embedder: EmbedderSettings::new("m"),
            cf: CfChoiceSettings::default(),
            out_dir: PathBuf::new(),
            reuse_index: false,
            on_error: OnError::Fail,
        }
    }

    fn positives() -> BTreeMap<String, Vec<(String, Option<i64>)>> {
        BTreeMap::from([
            ("a".to_string(), (0..10).map(|i| (format!("i{i}"), Some(100 - i))).collect()),
            ("b".to_string(), vec![("x".to_string(), Some(1))]),
            ("c".to_string(), vec![("y".to_string(), Some(5)), ("z".to_string(), Some(9))]),
        ])
    }

    #[test]
    fn random_split_holds_out_the_fraction_seeded_and_keeps_single_positive_users_in_train() {
        let (train, test) = split(positives(), &settings(SplitKind::Random));
        assert_eq!(test.iter().filter(|r| r.0 == "a").count(), 2);
        assert_eq!(test.iter().filter(|r| r.0 == "c").count(), 1, "at least one held out when there are two");
        assert!(test.iter().all(|r| r.0 != "b"));
        assert_eq!(train.len() + test.len(), 13);
        assert_eq!(split(positives(), &settings(SplitKind::Random)).1, test, "same seed, same split");
    }

    #[test]
    fn a_build_is_the_same_whether_its_paths_are_named_relatively_or_absolutely() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train.csv");
        std::fs::write(&train, "user,item,weight,timestamp\nu,a,1,\n").unwrap();
        // Tests run in the crate's folder: `src/../src` and the absolute `src` are one folder.
        let at = |model: PathBuf, catalog: PathBuf| {
            build_identity(&train, &IndexSettings::new(catalog, dir.path().join("index"), EmbedderSettings::new(model)))
                .unwrap()
        };
        let absolute = std::fs::canonicalize("src").unwrap();
        let relative = at("src/../src".into(), "Cargo.toml".into());
        assert_eq!(relative, at(absolute.clone(), std::fs::canonicalize("Cargo.toml").unwrap()));
        assert_ne!(relative, at(absolute.join("eval"), "Cargo.toml".into()), "another model folder is another build");
        std::fs::write(&train, "user,item,weight,timestamp\nu,b,1,\n").unwrap();
        assert_ne!(relative, at("src".into(), "Cargo.toml".into()), "another train file is another build");
    }

    #[test]
    fn time_split_holds_out_each_users_latest_positive() {
        let (_, test) = split(positives(), &settings(SplitKind::Time));
        let held: Vec<(&str, &str)> = test.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
        assert_eq!(held, vec![("a", "i0"), ("c", "z")]);
        // Untimed positives are the oldest: a user's latest timed one is held out, and a user
        // with no timed positive has no latest, so none is (the largest id was).
        let mut untimed = positives();
        untimed.insert("d".into(), vec![("p".into(), None), ("q".into(), Some(3)), ("r".into(), None)]);
        untimed.insert("e".into(), vec![("s".into(), None), ("t".into(), None)]);
        let (train, test) = split(untimed, &settings(SplitKind::Time));
        let held: Vec<(&str, &str)> = test.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
        assert_eq!(held, vec![("a", "i0"), ("c", "z"), ("d", "q")]);
        assert_eq!(train.iter().filter(|r| r.0 == "e").count(), 2);
    }
}
