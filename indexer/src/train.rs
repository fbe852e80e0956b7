//! `hyrank train-reranker`: fine-tunes a cross-encoder from MiniLM on the catalog's own
//! supervision and publishes it as a new generation beside the serving one's indexes.
//!
//! 1. **Supervision.** Judged query–item pairs (a qrels TSV and the queries' texts), a click
//!    log (`query<TAB>item<TAB>clicked`; shown-but-not-clicked items become negatives), or, for
//!    a recommendation reranker, the generation's own interactions: each user's latest items
//!    are held out as positives, the query is the titles of what they saw just before, and the
//!    candidates come from the recommender replayed without the held-out items (an ALS model
//!    trained without them), so that training sees what serving will.
//! 2. **Split.** A seeded shuffle of the queries holds out a validation slice.
//! 3. **Negatives.** For each positive: hard negatives sampled from the serving generation's
//!    own hybrid top `mine_depth` (what the reranker will actually face), plus random items.
//! 4. **Frozen pass.** The frozen layers run once over every training and validation pair.
//! 5. **Epochs.** Listwise softmax loss over each group (the positive against its negatives),
//!    AdamW; after each epoch the validation queries are reranked and scored (nDCG@10), the best
//!    weights are kept, and training stops after `patience` epochs without improvement.
//! 6. **Combination.** Logistic regression of relevance on the logit and the retriever scores,
//!    fitted on the validation candidates; the reranker is enabled by default only if the
//!    combination's gain over the plain hybrid holds up: each validation query scored by a
//!    combination fitted on the other half, the gain's 90% paired-bootstrap interval above zero.
//! 7. **Publish.** The generation's files are copied into a new generation with
//!    `reranker.safetensors` and a manifest entry, published atomically like any other.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use hyrank_engine::cf::{self, Csr};
use hyrank_engine::combination::{Combination, Features};
use hyrank_engine::cross::{CrossEncoder, CrossEncoderSettings, FrozenPass, TrainableVars};
use hyrank_engine::engine::UserView;
use hyrank_engine::generation::{
    self, files, RecommendContextSettings, RerankerManifest, StageTiming, TrainingRecord, ValidationRecord,
};
use hyrank_engine::request::{Candidate, SearchRequest};
use hyrank_engine::retrieve::CfItems;
use hyrank_engine::store::Interaction;
use hyrank_engine::RecommendRequest;
use hyrank_engine::{EmbedderSettings, Engine};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::error::{IndexError, Result};
use crate::eval::metrics::{ndcg_at, Judgments};
use crate::judgments::{read_click_log, read_qrels, read_queries};
use crate::progress::Progress;

/// Where the supervision comes from.
#[derive(Debug, Clone)]
pub enum Supervision {
    /// BEIR layout: `queries.jsonl` (`_id`, `text`) and a qrels TSV (`query-id corpus-id score`).
    Judgments {
        /// Query texts.
        queries: PathBuf,
        /// Judgments.
        qrels: PathBuf,
    },
    /// `query<TAB>item<TAB>clicked` (1 or 0), an optional header line.
    Clicks(PathBuf),
    /// The generation's own interactions, for a recommendation reranker: each user's latest
    /// `targets_per_user` items are positives, and the query is the titles of the
    /// `context_titles` items they interacted with just before.
    Interactions {
        /// Titles in the context, most recent first.
        context_titles: usize,
        /// Held-out next items per user.
        targets_per_user: usize,
    },
}

/// Users with fewer items before their first held-out item are not replayed.
const MIN_CONTEXT_ITEMS: usize = 2;

/// The loss over a group of one positive and its negatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Loss {
    /// Softmax cross-entropy with the positive as the target class.
    Listwise,
    /// Binary cross-entropy on every pair.
    Pointwise,
}

/// Everything `train-reranker` needs.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// The index whose current generation is trained on and extended.
    pub index_dir: PathBuf,
    /// The model folder and device (the generation's model).
    pub model: EmbedderSettings,
    /// What to learn from.
    pub supervision: Supervision,
    /// Frozen layers and the pair token limit.
    pub shape: CrossEncoderSettings,
    /// Most epochs.
    pub epochs: usize,
    /// Epochs without a validation gain before stopping.
    pub patience: usize,
    /// Learning rate of the trained transformer layers.
    pub learning_rate: f64,
    /// Learning rate of the new head.
    pub head_learning_rate: f64,
    /// Groups (a positive and its negatives) per optimiser step.
    pub groups_per_step: usize,
    /// Loss.
    pub loss: Loss,
    /// Hard negatives per positive, sampled from the hybrid top `mine_depth`.
    pub hard_negatives: usize,
    /// Random negatives per positive.
    pub random_negatives: usize,
    /// How deep in the hybrid ranking hard negatives are drawn from.
    pub mine_depth: usize,
    /// Fraction of queries held out for validation.
    pub validation_fraction: f64,
    /// Use at most this many training queries (a CPU-sized run).
    pub max_train_queries: Option<usize>,
    /// Fused candidates reranked, in validation and by default in search.
    pub depth: usize,
    /// Seed of the split, the sampling and the head's initialisation.
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
}

/// The defaults of every training setting but the inputs, in one place: [`TrainSettings::new`]
/// and the `train-reranker` flags both read them.
pub mod defaults {
    /// Most epochs.
    pub const EPOCHS: usize = 4;
    /// Epochs without a validation gain before stopping.
    pub const PATIENCE: usize = 1;
    /// Learning rate of the trained transformer layers.
    pub const LEARNING_RATE: f64 = 5e-5;
    /// Learning rate of the new head.
    pub const HEAD_LEARNING_RATE: f64 = 0.02;
    /// Groups per optimiser step.
    pub const GROUPS_PER_STEP: usize = 4;
    /// Hard negatives per positive.
    pub const HARD_NEGATIVES: usize = 7;
    /// Random negatives per positive.
    pub const RANDOM_NEGATIVES: usize = 1;
    /// Depth of the hybrid ranking hard negatives come from.
    pub const MINE_DEPTH: usize = 30;
    /// Fraction of queries held out for validation.
    pub const VALIDATION_FRACTION: f64 = 0.2;
    /// Candidates reranked.
    pub const DEPTH: usize = 50;
    /// Seed.
    pub const SEED: u64 = 42;
    /// With interactions: titles in the context.
    pub const CONTEXT_TITLES: usize = 10;
    /// With interactions: latest items held out per user.
    pub const TARGETS_PER_USER: usize = 1;
}

impl TrainSettings {
    /// Defaults for everything but the inputs.
    pub fn new(index_dir: PathBuf, model: EmbedderSettings, supervision: Supervision) -> Self {
        TrainSettings {
            index_dir,
            model,
            supervision,
            shape: CrossEncoderSettings::DEFAULT,
            epochs: defaults::EPOCHS,
            patience: defaults::PATIENCE,
            learning_rate: defaults::LEARNING_RATE,
            head_learning_rate: defaults::HEAD_LEARNING_RATE,
            groups_per_step: defaults::GROUPS_PER_STEP,
            loss: Loss::Listwise,
            hard_negatives: defaults::HARD_NEGATIVES,
            random_negatives: defaults::RANDOM_NEGATIVES,
            mine_depth: defaults::MINE_DEPTH,
            validation_fraction: defaults::VALIDATION_FRACTION,
            max_train_queries: None,
            depth: defaults::DEPTH,
            seed: defaults::SEED,
            progress: false,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |setting: &str, reason: &str| {
            Err(IndexError::Settings { setting: setting.to_string(), reason: reason.to_string() })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.head_learning_rate > 0.0) {
            return bad("learning-rate", "learning rates must be positive");
        }
        if self.groups_per_step == 0 {
            return bad("groups-per-step", "must be at least 1");
        }
        if self.hard_negatives + self.random_negatives == 0 {
            return bad("hard-negatives", "a group needs at least one negative");
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return bad("validation-fraction", "must be strictly between 0 and 1");
        }
        if let Supervision::Interactions { context_titles, targets_per_user } = self.supervision {
            if context_titles == 0 {
                return bad("context-titles", "the context needs at least one title");
            }
            if targets_per_user == 0 {
                return bad("targets-per-user", "must be at least 1");
            }
        }
        if self.depth < 10 || self.depth > hyrank_engine::request::MAX_RERANK {
            return bad("depth", "must be between 10 and the engine's rerank limit (200)");
        }
        Ok(())
    }
}

/// One query (or context) with what is known about it.
#[derive(Debug, Clone)]
struct Example {
    text: String,
    /// Item id → grade (≥ 1 relevant, 0 judged not relevant).
    judged: Judgments,
    /// Examples of one group (one user's replays) fall on the same side of the split.
    group: usize,
    /// For a replayed user: what the recommender knew just before the held-out item.
    replay: Option<Replay>,
}

/// A user as they were before one held-out item.
#[derive(Debug, Clone)]
struct Replay {
    history: Vec<Interaction>,
    hidden: HashSet<u32>,
    factors: Vec<f32>,
}

/// Replays every user with enough history before their last `targets_per_user` items, with CF
/// factors from an ALS model trained without any held-out item: the candidates and the
/// combination's CF feature then look as they will for a real next item, not for one the
/// model has already fitted.
fn replay_interactions(
    engine: &Engine,
    context_titles: usize,
    targets_per_user: usize,
) -> Result<(Vec<Example>, CfItems)> {
    let als = engine.manifest().cf.clone().ok_or_else(|| IndexError::Settings {
        setting: "interactions".into(),
        reason: "the generation was built without interactions; index with --interactions first".into(),
    })?;
    let users = engine.users()?;
    let mut histories = Vec::with_capacity(users.len());
    let mut triples = Vec::new();
    for user in &users {
        let mut history = user.history.clone();
        // Oldest first; the stored order breaks timestamp ties.
        history.sort_by_key(|i| i.timestamp);
        let held = if history.len() >= MIN_CONTEXT_ITEMS + targets_per_user { targets_per_user } else { 0 };
        let cut = history.len() - held;
        triples.extend(history[..cut].iter().map(|i| (user.index, i.item, i.weight)));
        histories.push((user, history, cut));
    }
    let rows = users.iter().map(|u| u.index as usize + 1).max().unwrap_or(0);
    let model = cf::train(&Csr::from_triples(rows, engine.len(), &triples), &als, |_| {})?;
    let mut examples = Vec::new();
    for (group, (user, history, cut)) in histories.iter().enumerate() {
        for position in *cut..history.len() {
            let prefix = &history[..position];
            let weights: Vec<(u32, f32)> = prefix.iter().map(|i| (i.item, i.weight)).collect();
            let Some(factors) = cf::solve_user_exact(&model, &weights) else {
                tracing::warn!(user = %user.id, "no CF solution for the replayed history; user skipped");
                continue;
            };
            let target = history[position].item;
            examples.push(Example {
                text: engine.recommend_context(prefix, context_titles)?,
                judged: [(engine.item_ids()[target as usize].clone(), 1)].into_iter().collect(),
                group,
                replay: Some(Replay {
                    history: prefix.to_vec(),
                    hidden: history[position + 1..].iter().map(|i| i.item).collect(),
                    factors,
                }),
            });
        }
    }
    if examples.is_empty() {
        return Err(IndexError::Settings {
            setting: "interactions".into(),
            reason: format!(
                "no user has {} items or more, so there is nothing to hold out",
                MIN_CONTEXT_ITEMS + targets_per_user
            ),
        });
    }
    let items = CfItems::build(&model.item_factors, engine.manifest().hnsw)?;
    Ok((examples, items))
}

fn input_error(path: &Path, reason: impl Into<String>) -> IndexError {
    IndexError::Input { path: path.to_path_buf(), reason: reason.into() }
}

/// Reads the supervision into examples, checking every item against the catalog; replayed
/// interactions come with the held-out CF item factors their candidates are retrieved with.
fn read_supervision(supervision: &Supervision, engine: &Engine) -> Result<(Vec<Example>, Option<CfItems>)> {
    let known: HashSet<&str> = engine.item_ids().iter().map(String::as_str).collect();
    let mut examples = Vec::new();
    match supervision {
        Supervision::Judgments { queries, qrels } => {
            let texts = read_queries(queries)?;
            for (query_id, judged) in read_qrels(qrels)? {
                let text = texts.get(&query_id).ok_or_else(|| {
                    input_error(qrels, format!("query-id {query_id:?} has no text in {}", queries.display()))
                })?;
                if let Some(missing) = judged.keys().find(|id| !known.contains(id.as_str())) {
                    return Err(input_error(
                        qrels,
                        format!("query-id {query_id:?}: corpus-id {missing:?} is not in the generation's catalog"),
                    ));
                }
                examples.push(Example { text: text.clone(), judged, group: examples.len(), replay: None });
            }
        }
        Supervision::Clicks(path) => {
            let by_query = read_click_log(path, &known)?;
            examples.extend(by_query.into_iter().enumerate().map(|(group, (text, judged))| Example {
                text,
                judged,
                group,
                replay: None,
            }));
        }
        &Supervision::Interactions { context_titles, targets_per_user } => {
            let (examples, items) = replay_interactions(engine, context_titles, targets_per_user)?;
            return Ok((examples, Some(items)));
        }
    }
    examples.retain(|e| e.judged.values().any(|&g| g >= 1));
    if examples.is_empty() {
        return Err(IndexError::Settings {
            setting: "supervision".into(),
            reason: "no query has a positive (grade ≥ 1 or clicked) item".into(),
        });
    }
    Ok((examples, None))
}

/// One training group: the positive first, then its negatives, through the frozen layers.
struct Group {
    frozen: FrozenPass,
}

/// A validation query: its reranking window, through the frozen layers in batches.
struct ValidationQuery {
    judged: Judgments,
    candidates: Vec<Candidate>,
    frozen: Vec<FrozenPass>,
}

fn progress_bar(show: bool, len: usize, what: &str) -> Progress {
    Progress::new(show, len as u64, what, "{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({eta})")
}

/// nDCG@10 of candidates ordered by `scores` (higher first; ties keep the retrieval order).
fn ndcg_of(query: &ValidationQuery, scores: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..query.candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let ranked: Vec<String> = order.iter().map(|&i| query.candidates[i].id.clone()).collect();
    ndcg_at(&ranked, &query.judged, 10)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The best epoch so far: its validation nDCG@10 (logit alone), its weights and its logits.
struct Kept {
    ndcg: f64,
    epoch: usize,
    weights: Vec<Tensor>,
    logits: Vec<Vec<f32>>,
}

fn logits_of(model: &CrossEncoder, query: &ValidationQuery) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(query.candidates.len());
    for frozen in &query.frozen {
        out.extend(model.logits(frozen).and_then(|t| Ok(t.to_vec1::<f32>()?)).map_err(IndexError::Engine)?);
    }
    Ok(out)
}

/// Every candidate's features with its label (judged relevant or not): what the combination is
/// fitted on.
fn labelled<'a>(queries: impl Iterator<Item = (&'a ValidationQuery, &'a Vec<Features>)>) -> Vec<(Features, bool)> {
    queries
        .flat_map(|(query, features)| {
            query.candidates.iter().zip(features).map(|(c, f)| (*f, query.judged.get(&c.id).is_some_and(|&g| g >= 1)))
        })
        .collect()
}

/// Per-query nDCG@10 of the learned combination under 2-fold cross-fitting: queries at even
/// positions are scored by a combination fitted on the odd ones, and the other way round.
fn cross_fitted_ndcg(validation: &[ValidationQuery], features: &[Vec<Features>]) -> Vec<f64> {
    let fold = |parity: usize| {
        labelled(validation.iter().zip(features).enumerate().filter(|(i, _)| i % 2 == parity).map(|(_, pair)| pair))
    };
    let fitted = [Combination::fit(&fold(1), 1e-3), Combination::fit(&fold(0), 1e-3)];
    validation
        .iter()
        .zip(features)
        .enumerate()
        .map(|(i, (query, features))| {
            let scores: Vec<f64> = features.iter().map(|f| fitted[i % 2].apply(f).0).collect();
            ndcg_of(query, &scores)
        })
        .collect()
}

/// The 5th and 95th percentiles of the mean of `values` over 2,000 seeded bootstrap resamples.
fn bootstrap_interval(values: &[f64], seed: u64) -> [f64; 2] {
    if values.is_empty() {
        return [0.0, 0.0];
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0b00_75ad);
    let mut means: Vec<f64> = (0..2000)
        .map(|_| {
            (0..values.len()).map(|_| values[rng.random_range(0..values.len())]).sum::<f64>() / values.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    [means[100], means[1899]]
}

/// What training produced.
#[derive(Debug)]
pub struct TrainSummary {
    /// The published generation.
    pub dir: PathBuf,
    /// Its reranker entry.
    pub reranker: RerankerManifest,
}

fn candle(e: candle_core::Error) -> IndexError {
    IndexError::Engine(hyrank_engine::Error::from(e))
}

/// Trains, validates and publishes. See the module documentation for the steps.
pub fn train(settings: &TrainSettings) -> Result<TrainSummary> {
    settings.check()?;
    let start = Instant::now();
    let engine = Engine::open(&settings.index_dir, &settings.model)?;
    // 1. Supervision.
    let (examples, replay_items) = read_supervision(&settings.supervision, &engine)?;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    // 2. Split.
    let (mut train_examples, validation_examples) = split(examples, settings.validation_fraction, &mut rng)?;
    if let Some(limit) = settings.max_train_queries {
        train_examples.truncate(limit.max(1));
    }
    let miner = Miner { engine: &engine, replay_items: replay_items.as_ref(), request: RecommendRequest::new("") };
    let (model, vars) = CrossEncoder::for_training(engine.embedder(), settings.shape, settings.seed)?;
    tracing::info!(train = train_examples.len(), validation = validation_examples.len(), "reranker supervision read");
    // 3 and 4. Negatives, and the frozen pass over every pair.
    let (groups, train_pairs) = training_groups(&miner, &model, &train_examples, settings, &mut rng)?;
    let validation = validation_queries(&miner, &model, &validation_examples, settings)?;
    let hybrid_per_query: Vec<f64> = validation
        .iter()
        .map(|q| ndcg_of(q, &q.candidates.iter().map(|c| c.fused_score).collect::<Vec<_>>()))
        .collect();
    let hybrid_ndcg = mean(hybrid_per_query.iter().copied());
    tracing::info!(
        "reranker: {} training groups ({} pairs) from {} queries; {} validation queries, hybrid nDCG@10 {:.4}",
        groups.len(),
        train_pairs,
        train_examples.len(),
        validation.len(),
        hybrid_ndcg
    );
    // 5. Epochs.
    let epochs = run_epochs(&model, &vars, &groups, &validation, settings, &mut rng)?;
    // 6. Combination and verdict.
    let verdict = fit_combination(&validation, &epochs.kept.logits, &hybrid_per_query, settings.seed);
    tracing::info!(
        "reranker: kept epoch {}; validation nDCG@10: hybrid {hybrid_ndcg:.4}, logit {:.4}, combined {:.4} (cross-fitted {:.4}, gain 90% interval [{:+.4}, {:+.4}]) → {}",
        epochs.kept.epoch,
        epochs.kept.ndcg,
        verdict.combined_ndcg,
        verdict.cross_fitted_ndcg,
        verdict.gain_interval[0],
        verdict.gain_interval[1],
        if verdict.enabled() { "enabled by default" } else { "opt-in only (no gain over the hybrid that holds up)" }
    );
    // 7. Publish.
    let supervision = match &settings.supervision {
        Supervision::Judgments { queries, qrels } => vec![queries.display().to_string(), qrels.display().to_string()],
        Supervision::Clicks(path) => vec![path.display().to_string()],
        Supervision::Interactions { .. } => {
            vec![format!("interactions of generation {}", engine.manifest().generation)]
        }
    };
    let context = match settings.supervision {
        Supervision::Interactions { context_titles, .. } => Some(RecommendContextSettings { titles: context_titles }),
        _ => None,
    };
    let enabled = verdict.enabled();
    let reranker = RerankerManifest {
        file: if context.is_some() { files::RECOMMEND_RERANKER } else { files::RERANKER }.to_string(),
        base_model_sha256: engine.manifest().model.sha256.clone(),
        shape: settings.shape,
        depth: settings.depth,
        combination: verdict.combination,
        enabled_by_default: enabled,
        training: TrainingRecord {
            supervision,
            train_queries: train_examples.len(),
            train_pairs,
            validation_queries: validation.len(),
            hard_negatives: settings.hard_negatives,
            random_negatives: settings.random_negatives,
            learning_rate: settings.learning_rate,
            head_learning_rate: settings.head_learning_rate,
            epochs_run: epochs.loss.len(),
            best_epoch: epochs.kept.epoch,
            epoch_loss: epochs.loss,
            epoch_validation: epochs.validation,
            initial_validation: epochs.initial_validation,
            device: format!("{:?}", model.device()),
            seconds: start.elapsed().as_secs_f64(),
            seed: settings.seed,
        },
        validation: ValidationRecord {
            queries: validation.len(),
            hybrid_ndcg10: hybrid_ndcg,
            logit_ndcg10: epochs.kept.ndcg,
            combined_ndcg10: verdict.combined_ndcg,
            cross_fitted_ndcg10: verdict.cross_fitted_ndcg,
            gain_interval: verdict.gain_interval,
        },
        context,
    };
    let dir = publish_with_reranker(&settings.index_dir, &engine, &vars, &reranker, start)?;
    Ok(TrainSummary { dir, reranker })
}

/// Splits the examples into training and validation by group (a user's replays stay
/// together), in a seeded order: `(train, validation)`, the training order shuffled.
fn split(examples: Vec<Example>, validation_fraction: f64, rng: &mut StdRng) -> Result<(Vec<Example>, Vec<Example>)> {
    let mut groups_order: Vec<usize> = examples.iter().map(|e| e.group).collect::<BTreeSet<_>>().into_iter().collect();
    groups_order.shuffle(rng);
    if groups_order.len() < 2 {
        return Err(IndexError::Settings {
            setting: "supervision".into(),
            reason: "at least two queries (or users) with positives are needed (one to train on, one to validate)"
                .into(),
        });
    }
    let validation_count =
        ((groups_order.len() as f64 * validation_fraction).round() as usize).clamp(1, groups_order.len() - 1);
    let rank: BTreeMap<usize, usize> = groups_order.iter().enumerate().map(|(rank, &g)| (g, rank)).collect();
    let mut examples = examples;
    examples.sort_by_key(|e| rank[&e.group]);
    let split_at = examples.iter().take_while(|e| rank[&e.group] < validation_count).count();
    let mut train_examples = examples.split_off(split_at);
    // A user's replays are adjacent after the sort; shuffle the training order across users.
    train_examples.shuffle(rng);
    Ok((train_examples, examples))
}

/// Where candidates come from: the generation's hybrid search for a query, or its
/// recommender replayed for a user (with the item factors of the model trained without the
/// held-out items).
struct Miner<'a> {
    engine: &'a Engine,
    replay_items: Option<&'a CfItems>,
    request: RecommendRequest,
}

impl Miner<'_> {
    fn candidates(&self, example: &Example, depth: usize) -> Result<Vec<Candidate>> {
        Ok(match (&example.replay, self.replay_items) {
            (Some(replay), Some(items)) => {
                let view = UserView {
                    history: &replay.history,
                    hidden: Some(&replay.hidden),
                    factors: Some(&replay.factors),
                    cf_items: Some(items),
                };
                self.engine.recommend_candidates(&view, &self.request, depth)?
            }
            _ => self.engine.candidates(&SearchRequest::new(example.text.clone()), depth)?,
        })
    }
}

/// Each positive with hard negatives from the generation's own ranking and random ones, run
/// through the frozen layers once: the groups every epoch trains on, and the pair count.
fn training_groups(
    miner: &Miner<'_>,
    model: &CrossEncoder,
    train_examples: &[Example],
    settings: &TrainSettings,
    rng: &mut StdRng,
) -> Result<(Vec<Group>, usize)> {
    let engine = miner.engine;
    let items = engine.len() as u32;
    let mut groups = Vec::new();
    let bar = progress_bar(settings.progress, train_examples.len(), "frozen layers");
    let mut train_pairs = 0;
    for example in train_examples {
        let candidates = miner.candidates(example, settings.mine_depth)?;
        let positives: Vec<&String> = example.judged.iter().filter(|(_, &g)| g >= 1).map(|(id, _)| id).collect();
        let is_positive = |id: &str| example.judged.get(id).is_some_and(|&g| g >= 1);
        let mut hard: Vec<&Candidate> = candidates.iter().filter(|c| !is_positive(&c.id)).collect();
        // Judged-not-relevant items (clicks: shown, not clicked) are the surest negatives.
        let explicit: Vec<String> = example.judged.iter().filter(|(_, &g)| g <= 0).map(|(id, _)| id.clone()).collect();
        for positive in positives {
            hard.shuffle(rng);
            let mut negatives: Vec<String> = explicit.iter().take(settings.hard_negatives).cloned().collect();
            for candidate in &hard {
                if negatives.len() >= settings.hard_negatives {
                    break;
                }
                if !negatives.contains(&candidate.id) {
                    negatives.push(candidate.id.clone());
                }
            }
            let mut attempts = 0;
            while negatives.len() < settings.hard_negatives + settings.random_negatives && attempts < 100 {
                attempts += 1;
                let id = engine.item_ids()[rng.random_range(0..items) as usize].clone();
                if !is_positive(&id) && !negatives.contains(&id) {
                    negatives.push(id);
                }
            }
            let mut contents = vec![engine.item(positive)?.content()];
            for id in &negatives {
                contents.push(engine.item(id)?.content());
            }
            let pairs: Vec<(&str, &str)> = contents.iter().map(|c| (example.text.as_str(), c.as_str())).collect();
            train_pairs += pairs.len();
            groups.push(Group { frozen: model.frozen(&pairs)? });
        }
        bar.inc(1);
    }
    bar.finish();
    Ok((groups, train_pairs))
}

/// The validation queries' top `depth` candidates, run through the frozen layers once.
fn validation_queries(
    miner: &Miner<'_>,
    model: &CrossEncoder,
    validation_examples: &[Example],
    settings: &TrainSettings,
) -> Result<Vec<ValidationQuery>> {
    let bar = progress_bar(settings.progress, validation_examples.len(), "validation");
    let mut validation = Vec::new();
    for example in validation_examples {
        let candidates = miner.candidates(example, settings.depth)?;
        let mut frozen = Vec::new();
        for chunk in candidates.chunks(model.batch_size()) {
            let pairs: Vec<(&str, &str)> = chunk.iter().map(|c| (example.text.as_str(), c.content.as_str())).collect();
            frozen.push(model.frozen(&pairs)?);
        }
        validation.push(ValidationQuery { judged: example.judged.clone(), candidates, frozen });
        bar.inc(1);
    }
    bar.finish();
    Ok(validation)
}

/// What the epochs produced: the kept weights' epoch, validation score and logits, and each
/// epoch's loss and validation score.
struct Epochs {
    kept: Kept,
    initial_validation: f64,
    loss: Vec<f64>,
    validation: Vec<f64>,
}

/// Trains the top layers and the head (AdamW, listwise or pointwise loss), validating after
/// each epoch; keeps the best epoch's weights in `vars` (epoch 0, the untrained model, if
/// training never beats it) and stops after `patience` epochs without a gain.
fn run_epochs(
    model: &CrossEncoder,
    vars: &TrainableVars,
    groups: &[Group],
    validation: &[ValidationQuery],
    settings: &TrainSettings,
    rng: &mut StdRng,
) -> Result<Epochs> {
    let (head_vars, layer_vars): (TrainableVars, TrainableVars) =
        vars.iter().cloned().partition(|(name, _)| name.starts_with("rerank_head"));
    let adam = |vars: &TrainableVars, lr: f64| {
        AdamW::new(
            vars.iter().map(|(_, v)| v.clone()).collect(),
            ParamsAdamW { lr, weight_decay: 0.01, ..Default::default() },
        )
        .map_err(candle)
    };
    let mut layer_opt = adam(&layer_vars, settings.learning_rate)?;
    let mut head_opt = adam(&head_vars, settings.head_learning_rate)?;

    // nDCG@10 of the logit alone, and the logits themselves: the kept epoch's logits are what
    // the combination is fitted on, so they are not computed a second time.
    let validate = |model: &CrossEncoder| -> Result<(f64, Vec<Vec<f32>>)> {
        let mut scores = Vec::with_capacity(validation.len());
        let mut all_logits = Vec::with_capacity(validation.len());
        for query in validation {
            let logits = logits_of(model, query)?;
            scores.push(ndcg_of(query, &logits.iter().copied().map(f64::from).collect::<Vec<_>>()));
            all_logits.push(logits);
        }
        Ok((mean(scores.into_iter()), all_logits))
    };
    let snapshot = || -> Result<Vec<Tensor>> {
        vars.iter().map(|(_, v)| v.as_tensor().copy()).collect::<candle_core::Result<Vec<_>>>().map_err(candle)
    };
    let (initial_validation, initial_logits) = validate(model)?;
    tracing::info!("reranker: before training: validation nDCG@10 (logit alone) {initial_validation:.4}");
    let mut best = Kept { ndcg: initial_validation, epoch: 0, weights: snapshot()?, logits: initial_logits };
    let mut epoch_loss = Vec::new();
    let mut epoch_validation = Vec::new();
    let mut order: Vec<usize> = (0..groups.len()).collect();
    for epoch in 1..=settings.epochs {
        order.shuffle(rng);
        let bar = progress_bar(settings.progress, groups.len(), &format!("epoch {epoch}"));
        let (mut total, mut count) = (0.0, 0usize);
        for step in order.chunks(settings.groups_per_step) {
            let mut losses = Vec::with_capacity(step.len());
            for &g in step {
                let logits = model.logits(&groups[g].frozen)?;
                let loss = match settings.loss {
                    Loss::Listwise => {
                        candle_nn::ops::log_softmax(&logits, D::Minus1).and_then(|l| l.get(0)).and_then(|l| l.neg())
                    }
                    Loss::Pointwise => {
                        let n = logits.dim(0).map_err(candle)?;
                        let mut targets = vec![0f32; n];
                        targets[0] = 1.0;
                        Tensor::from_vec(targets, n, logits.device())
                            .and_then(|t| candle_nn::loss::binary_cross_entropy_with_logit(&logits, &t))
                    }
                }
                .map_err(candle)?;
                losses.push(loss);
            }
            let loss = (Tensor::stack(&losses, 0).and_then(|l| l.mean_all())).map_err(candle)?;
            let grads = loss.backward().map_err(candle)?;
            layer_opt.step(&grads).map_err(candle)?;
            head_opt.step(&grads).map_err(candle)?;
            total += f64::from(loss.to_scalar::<f32>().map_err(candle)?) * step.len() as f64;
            count += step.len();
            bar.set_message(format!("loss {:.4}", total / count as f64));
            bar.inc(step.len() as u64);
        }
        bar.finish();
        let loss = total / count.max(1) as f64;
        let (ndcg, logits) = validate(model)?;
        epoch_loss.push(loss);
        epoch_validation.push(ndcg);
        tracing::info!("reranker: epoch {epoch}: loss {loss:.4}, validation nDCG@10 (logit alone) {ndcg:.4}");
        if ndcg > best.ndcg {
            best = Kept { ndcg, epoch, weights: snapshot()?, logits };
        } else if epoch - best.epoch >= settings.patience {
            break;
        }
    }
    for ((_, var), value) in vars.iter().zip(&best.weights) {
        var.set(value).map_err(candle)?;
    }
    Ok(Epochs { kept: best, initial_validation, loss: epoch_loss, validation: epoch_validation })
}

/// The learned combination and the enable-by-default verdict.
struct Verdict {
    combination: Combination,
    /// nDCG@10 of the combination fitted on every validation query.
    combined_ndcg: f64,
    /// nDCG@10 with each query scored by a combination fitted on the other half.
    cross_fitted_ndcg: f64,
    /// 90% paired-bootstrap interval of the cross-fitted gain over the hybrid.
    gain_interval: [f64; 2],
}

impl Verdict {
    /// On by default only when the gain's interval lies above zero.
    fn enabled(&self) -> bool {
        self.gain_interval[0] > 0.0
    }
}

/// Fits the combination on the validation candidates with the kept weights' logits, and
/// decides the verdict: each validation query is scored by a combination fitted on the other
/// half (the final one saw every query), and the gain over the hybrid must hold across a paired
/// bootstrap, not just on average: on a few hundred queries a small mean gain is often noise.
fn fit_combination(validation: &[ValidationQuery], logits: &[Vec<f32>], hybrid: &[f64], seed: u64) -> Verdict {
    let per_query: Vec<Vec<Features>> = validation
        .iter()
        .zip(logits)
        .map(|(query, logits)| {
            query.candidates.iter().zip(logits).map(|(c, &l)| Features { rerank: l, ..c.features }).collect()
        })
        .collect();
    let combination = Combination::fit(&labelled(validation.iter().zip(&per_query)), 1e-3);
    let combined_ndcg = mean(validation.iter().zip(&per_query).map(|(query, features)| {
        let scores: Vec<f64> = features.iter().map(|f| combination.apply(f).0).collect();
        ndcg_of(query, &scores)
    }));
    let cross_fitted = cross_fitted_ndcg(validation, &per_query);
    let gain: Vec<f64> = cross_fitted.iter().zip(hybrid).map(|(c, h)| c - h).collect();
    Verdict {
        combination,
        combined_ndcg,
        cross_fitted_ndcg: mean(cross_fitted.iter().copied()),
        gain_interval: bootstrap_interval(&gain, seed),
    }
}

/// Copies the serving generation into a new one, adds the reranker and publishes it.
fn publish_with_reranker(
    index_dir: &Path,
    engine: &Engine,
    vars: &TrainableVars,
    reranker: &RerankerManifest,
    start: Instant,
) -> Result<PathBuf> {
    generation::build(index_dir, |building| {
        building.carry_over(engine.dir())?;
        CrossEncoder::save(vars, &building.dir.join(&reranker.file))?;
        let mut manifest = engine.manifest().clone();
        manifest.generation = building.name.clone();
        manifest.built_at_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let stage = if reranker.context.is_some() { "train_recommend_reranker" } else { "train_reranker" };
        manifest.stages.retain(|s| s.stage != stage);
        manifest.stages.push(StageTiming { stage: stage.into(), seconds: start.elapsed().as_secs_f64() });
        if reranker.context.is_some() {
            manifest.recommend_reranker = Some(reranker.clone());
        } else {
            manifest.reranker = Some(reranker.clone());
        }
        Ok::<_, IndexError>(manifest)
    })
    .map(|(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_follows_the_scores_and_keeps_retrieval_order_on_ties() {
        let candidate = |id: &str| Candidate {
            id: id.to_string(),
            content: String::new(),
            fused_score: 0.0,
            features: Features::default(),
        };
        let query = ValidationQuery {
            judged: [("b".to_string(), 1)].into_iter().collect(),
            candidates: vec![candidate("a"), candidate("b")],
            frozen: Vec::new(),
        };
        assert!((ndcg_of(&query, &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((ndcg_of(&query, &[0.0, 0.0]) - 1.0 / 3f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_mean_and_needs_a_consistent_gain() {
        let steady: Vec<f64> = (0..200).map(|i| 0.01 + 0.001 * (i % 5) as f64).collect();
        let [low, high] = bootstrap_interval(&steady, 1);
        assert!(low > 0.0 && low <= 0.012 && high >= 0.012 && high < 0.015, "[{low}, {high}]");
        // The same mean gain carried by a handful of queries among many losses is not trusted.
        let noisy: Vec<f64> = (0..200).map(|i| if i % 10 == 0 { 0.5 } else { -0.0433 }).collect();
        let mean = noisy.iter().sum::<f64>() / 200.0;
        assert!(mean > 0.0);
        let [low, high] = bootstrap_interval(&noisy, 1);
        assert!(low < 0.0 && high > mean, "[{low}, {high}]");
    }
}
