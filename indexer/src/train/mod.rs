//! `hyrank train-reranker`: fine-tunes a cross-encoder from MiniLM on the catalog's own
//! supervision and publishes it as a new generation beside the serving one's indexes.
//!
//! 1. **Supervision.** Judged query–item pairs (a qrels TSV and the queries' texts), a click
//!    log (`query<TAB>item<TAB>clicked`; shown-but-not-clicked items become negatives), or, for
//!    a recommendation reranker, the generation's own interactions: each user's latest items
//!    are held out as positives, the query is the titles of what they saw just before, and the
//!    candidates come from the recommender replayed without the held-out items (an ALS model
//!    trained without them), so that training sees what serving will.
//! 2. **Split.** A seeded shuffle of the queries holds out a validation slice, query by query
//!    by default ([`ValidationSplit::Queries`]). With [`ValidationSplit::Items`], queries that
//!    share a relevant item (directly or through other queries) fall on one side: validation
//!    then asks about items training never saw as relevant, as traffic about new items will,
//!    and a model that only learned the judged items gains nothing there. A user's replays are
//!    always one group.
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

mod epochs;
mod passes;
mod supervision;
mod verdict;

use std::path::{Path, PathBuf};
use std::time::Instant;

use hyrank_engine::cross::states::{ItemStates, ItemStatesBuilder};
use hyrank_engine::cross::{CrossEncoder, CrossEncoderSettings, TrainableVars};
use hyrank_engine::generation::{
    self, files, RecommendContextSettings, RerankerManifest, StageTiming, TrainingRecord, ValidationRecord,
};
use hyrank_engine::RecommendRequest;
use hyrank_engine::{EmbedderSettings, Engine};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::{IndexError, Result};
use crate::progress::Progress;
use epochs::run_epochs;
use passes::{training_groups, validation_queries};
use supervision::{group_by_shared_items, read_supervision, split, Miner};
use verdict::{fit_combination, mean, ndcg_of};

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

/// Which queries may fall on opposite sides of the validation split (step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidationSplit {
    /// Queries linked by a shared relevant item (directly, or through a chain of queries) stay
    /// on one side, so no validation query has an item judged relevant for a training query.
    /// On SciFact, 65% of the test queries have a relevant item that some training query also
    /// has; split by query, validation credits the reranker for remembering those items.
    /// A click log's popular items can chain most queries into one group: a group larger
    /// than the training side may hold is refused.
    Items,
    /// Each query on its own: validation may hold items that training queries were judged
    /// relevant to. Right when serving traffic repeats the judged items (a click log of head
    /// queries), where remembering them is the point.
    Queries,
}

impl ValidationSplit {
    /// The name recorded in the manifest and taken by `--validation-split`.
    pub fn name(self) -> &'static str {
        match self {
            ValidationSplit::Items => "items",
            ValidationSplit::Queries => "queries",
        }
    }
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
    /// Fraction of queries (of users, with replayed interactions) held out for validation.
    pub validation_fraction: f64,
    /// What stays together on one side of the split. Ignored for replayed interactions, whose
    /// groups are users.
    pub validation_split: ValidationSplit,
    /// Use at most this many training queries (a CPU-sized run).
    pub max_train_queries: Option<usize>,
    /// Fused candidates reranked, in validation and by default in search.
    pub depth: usize,
    /// Seed of the split, the sampling and the head's initialisation.
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
    /// Published generations to keep after publishing, the new one included, as
    /// `hyrank index --keep` (0 keeps all).
    pub keep: usize,
    /// Weight α of distillation from the generation's trained search reranker (the teacher):
    /// each group's loss is `(1 − α)·label loss + α·T²·KL(teacher ‖ student)` over the group's
    /// softmax at temperature T (Hinton et al. 2015). 0: no teacher, labels only.
    pub distil_weight: f64,
    /// The distillation temperature T.
    pub distil_temperature: f64,
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
    /// No distillation unless asked for.
    pub const DISTIL_WEIGHT: f64 = 0.0;
    /// Distillation temperature: the teacher's logits as they are.
    pub const DISTIL_TEMPERATURE: f64 = 1.0;
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
            validation_split: ValidationSplit::Queries,
            max_train_queries: None,
            depth: defaults::DEPTH,
            seed: defaults::SEED,
            progress: false,
            keep: crate::pipeline::DEFAULT_KEEP,
            distil_weight: defaults::DISTIL_WEIGHT,
            distil_temperature: defaults::DISTIL_TEMPERATURE,
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
        if !(0.0..=1.0).contains(&self.distil_weight) {
            return bad("distil-weight", "must be between 0 and 1");
        }
        if !(self.distil_temperature.is_finite() && self.distil_temperature > 0.0) {
            return bad("distil-temperature", "must be a finite number above 0");
        }
        if self.distil_weight > 0.0 && matches!(self.supervision, Supervision::Interactions { .. }) {
            return bad(
                "distil-weight",
                "distillation learns from the generation's search reranker; --interactions trains the recommendation reranker",
            );
        }
        if self.depth < 10 || self.depth > hyrank_engine::request::MAX_RERANK {
            return bad("depth", "must be between 10 and the engine's rerank limit (200)");
        }
        Ok(())
    }
}

/// What training produced.
#[derive(Debug)]
pub struct TrainSummary {
    /// The published generation.
    pub dir: PathBuf,
    /// Its reranker entry.
    pub reranker: RerankerManifest,
    /// Generations removed after publishing (see [`TrainSettings::keep`]).
    pub removed_generations: Vec<PathBuf>,
}

/// A progress display for one of the trainer's passes.
fn progress_bar(show: bool, len: usize, what: &str) -> Progress {
    Progress::new(show, len as u64, what, "{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({eta})")
}

/// candle's errors, as the indexer's.
fn candle(e: candle_core::Error) -> IndexError {
    IndexError::Engine(hyrank_engine::Error::from(e))
}

/// Trains, validates and publishes. See the module documentation for the steps.
pub fn train(settings: &TrainSettings) -> Result<TrainSummary> {
    settings.check()?;
    let start = Instant::now();
    let engine = Engine::open(&settings.index_dir, &settings.model)?;
    // 1. Supervision.
    let (mut examples, replay_items) = read_supervision(&settings.supervision, &engine)?;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    // 2. Split.
    // Replayed users are their own groups whatever the setting (the manifest says "users").
    let by_items = settings.validation_split == ValidationSplit::Items && replay_items.is_none();
    if by_items {
        group_by_shared_items(&mut examples);
    }
    let (mut train_examples, validation_examples) = split(examples, settings.validation_fraction, by_items, &mut rng)?;
    if let Some(limit) = settings.max_train_queries {
        train_examples.truncate(limit.max(1));
    }
    let miner = Miner { engine: &engine, replay_items: replay_items.as_ref(), request: RecommendRequest::new("") };
    let (mut model, vars) = CrossEncoder::for_training(engine.embedder(), settings.shape, settings.seed)?;
    tracing::info!(train = train_examples.len(), validation = validation_examples.len(), "reranker supervision read");
    // PreTTR: every item's side through the frozen layers once, stored as serving will read
    // it; training reads the same (dequantized) states.
    if let Some(header) = model.states_header(&engine.manifest().model.sha256, engine.len()) {
        let states = item_states(&engine, &model, header, settings.progress)?;
        tracing::info!("reranker: item states, {:.0} bytes per item", states.bytes_per_item());
        model.attach_states(states)?;
    }
    // The teacher, when distilling: the generation's own trained search reranker.
    let teacher = match (settings.distil_weight > 0.0, &engine.manifest().reranker) {
        (false, _) => None,
        (true, None) => {
            return Err(IndexError::Settings {
                setting: "distil-weight".into(),
                reason: format!(
                    "generation {} has no trained search reranker to distil from; train one first",
                    engine.manifest().generation
                ),
            })
        }
        (true, Some(entry)) => Some(format!(
            "the reranker of generation {} (frozen layers {}, pair tokens {}, item tokens {}), weight {}, temperature {}",
            engine.manifest().generation,
            entry.shape.frozen_layers,
            entry.shape.max_tokens,
            entry.shape.item_tokens.map_or("all (joint)".to_string(), |n| n.to_string()),
            settings.distil_weight,
            settings.distil_temperature
        )),
    };
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
    let states = model.states().map(|states| {
        let file = if context.is_some() { files::RECOMMEND_RERANKER_STATES } else { files::RERANKER_STATES };
        (file.to_string(), states.bytes_per_item())
    });
    let reranker = RerankerManifest {
        file: if context.is_some() { files::RECOMMEND_RERANKER } else { files::RERANKER }.to_string(),
        base_model_sha256: engine.manifest().model.sha256.clone(),
        shape: settings.shape,
        states: states.as_ref().map(|(file, _)| file.clone()),
        states_bytes_per_item: states.map(|(_, bytes)| bytes),
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
            // As the --device flag writes it (`cpu`, `cuda:0`), not candle's Debug (`Cpu`).
            device: match model.device().location() {
                candle_core::DeviceLocation::Cpu => "cpu".to_string(),
                candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
                other => format!("{other:?}").to_lowercase(),
            },
            seconds: start.elapsed().as_secs_f64(),
            seed: settings.seed,
            teacher,
            validation_split: Some(
                if replay_items.is_some() { "users" } else { settings.validation_split.name() }.to_string(),
            ),
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
    let dir = publish_with_reranker(&settings.index_dir, &engine, &model, &vars, &reranker, start)?;
    // The generation trained on is no longer needed here: release its lock so that prune may
    // take it like any other old generation. A failure to tidy up is reported, not fatal.
    drop(model);
    drop(engine);
    let removed_generations = generation::prune(&settings.index_dir, settings.keep).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "removing old generations");
        Vec::new()
    });
    Ok(TrainSummary { dir, reranker, removed_generations })
}

/// Every item's PreTTR states, in catalog order, in batches with progress.
fn item_states(
    engine: &Engine,
    model: &CrossEncoder,
    header: hyrank_engine::cross::states::StatesHeader,
    progress: bool,
) -> Result<ItemStates> {
    let bar = progress_bar(progress, engine.len(), "item states");
    let mut all = ItemStatesBuilder::new(header);
    let indexes: Vec<u32> = (0..engine.len() as u32).collect();
    for chunk in indexes.chunks(64) {
        let contents = chunk
            .iter()
            .map(|&i| engine.item_at(i).map(|item| item.content()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let texts: Vec<&str> = contents.iter().map(String::as_str).collect();
        for item in model.item_states(&texts)? {
            all.push(&item)?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(all.finish()?)
}

/// Copies the serving generation into a new one, adds the reranker and publishes it.
fn publish_with_reranker(
    index_dir: &Path,
    engine: &Engine,
    model: &CrossEncoder,
    vars: &TrainableVars,
    reranker: &RerankerManifest,
    start: Instant,
) -> Result<PathBuf> {
    // Made current only while CURRENT still names the generation trained on: a build that
    // published meanwhile holds newer items, which carrying this one's files would drop.
    generation::build(index_dir, Some(&engine.manifest().generation), |building| {
        building.carry_over(engine.dir())?;
        // The carried files are hard links into the serving generation: replace them, never
        // write through them.
        let replace = |name: &str| {
            let path = building.dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(IndexError::Engine(hyrank_engine::Error::io(format!("replacing {}", path.display()), e)))
                }
                _ => Ok(path),
            }
        };
        CrossEncoder::save(vars, &replace(&reranker.file)?)?;
        let states_file =
            if reranker.context.is_some() { files::RECOMMEND_RERANKER_STATES } else { files::RERANKER_STATES };
        let states_path = replace(states_file)?;
        if let (Some(states), Some(_)) = (model.states(), &reranker.states) {
            states.write(&states_path)?;
        }
        let mut manifest = engine.manifest().clone();
        manifest.generation = building.name.clone();
        // The file list and version 4 describe a shipped copy (a pulled generation); this one
        // is a new local generation, at the version its contents need.
        manifest.files.clear();
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
        // A build from before PreTTR would score its layers as a joint model: it must refuse.
        manifest.format_version = generation::format_version_of(&manifest);
        Ok::<_, IndexError>(manifest)
    })
    .map(|(dir, _)| dir)
}
