//! The on-disk layout of an index and its generations.
//!
//! ```text
//! <index dir>/
//!   CURRENT                 name of the serving generation; replaced by rename, never edited
//!   generations/
//!     000001/               one complete, immutable generation
//!       manifest.json       written last: a generation without it is not complete
//!       lexical/  store/  dense.*  cf.*  users.vectors  rejects.jsonl
//!     .building-000002/     a generation being written; never opened
//!     .building-000002.lock held (OS advisory lock) by the build writing it
//!     .serving-000001.lock  held shared by every process that has generation 000001 open
//! ```
//!
//! Builds remove older generations beyond the newest few ([`prune`]), never `CURRENT`'s and
//! never one a process still has open (its serving lock is held).
//!
//! A build killed mid-way leaves its `.building-*` folder behind; its lock dies with the
//! process, so the next build removes the folder (and never the folder of a build still
//! running, whose lock is held).
//!
//! Publishing renames the building folder to its final name, then points `CURRENT` at it by
//! writing `CURRENT.tmp` and renaming it over `CURRENT`. Each rename is atomic on POSIX file
//! systems, so a reader sees the old generation or the new one, never a half-written one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bert::Precision;
use crate::cf::{AlsSettings, EaseSettings};
use crate::combination::Combination;
use crate::cross::CrossEncoderSettings;
use crate::dense::HnswSettings;
use crate::embed::ModelIdentity;
use crate::error::{Error, Result};
use crate::lexical::LexicalSettings;

/// Bumped whenever a change makes older generations unreadable, or older builds unable to
/// read a generation correctly. Version 2 marks a generation embedded at a precision other
/// than f32: a build from before precision existed must refuse it rather than encode its
/// queries in f32. Version 3 marks a PreTTR reranker (`shape.item_tokens`): a build from
/// before it would load the trained layers and score them as a joint model, wrongly and
/// silently. A generation is written at the lowest version that reads it correctly, so an f32
/// generation without a PreTTR reranker is still version 1, which every build reads.
pub const FORMAT_VERSION: u32 = 3;

/// The version a PreTTR reranker needs ([`FORMAT_VERSION`]'s version 3).
pub const PRETTR_FORMAT_VERSION: u32 = 3;

/// The oldest version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;

/// The version a generation embedded at `precision` is written as.
pub fn format_version_for(precision: Precision) -> u32 {
    if precision == Precision::F32 {
        MIN_FORMAT_VERSION
    } else {
        2
    }
}

/// What a generation holds and how it was built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Manifest {
    /// Layout version; the engine refuses any other.
    pub format_version: u32,
    /// The generation's folder name.
    pub generation: String,
    /// Seconds since the Unix epoch when publishing began.
    pub built_at_unix: u64,
    /// The embedding model's identity.
    pub model: ModelIdentity,
    /// Token limit used when embedding items.
    pub max_tokens: usize,
    /// Number format the items were embedded in; queries are encoded in the same one. Absent
    /// in manifests written before precision was a setting: those were f32.
    #[serde(default)]
    pub precision: Precision,
    /// Counts.
    pub counts: Counts,
    /// Lexical analysis settings.
    pub lexical: LexicalSettings,
    /// HNSW settings of both vector indexes.
    pub hnsw: HnswSettings,
    /// ALS settings, when interactions were given and ALS serves the CF list.
    pub cf: Option<AlsSettings>,
    /// EASE settings, when EASE serves the CF list instead (`--cf-model ease|auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ease: Option<EaseSettings>,
    /// How the CF model was chosen: every candidate's validation score (`--cf-model auto`), or
    /// why EASE was not fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cf_selection: Option<CfSelection>,
    /// Where the inputs came from.
    pub sources: Sources,
    /// Wall-clock seconds per indexing stage, in order.
    pub stages: Vec<StageTiming>,
    /// The trained search reranker, when `hyrank train-reranker` made this generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reranker: Option<RerankerManifest>,
    /// The trained recommendation reranker (`hyrank train-reranker --interactions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommend_reranker: Option<RerankerManifest>,
    /// The live events this generation folded in (`INDEX_DIR/live/`, see [`crate::live`]);
    /// absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveFold>,
}

impl Manifest {
    /// The last live event this generation counts (0: none): the engine serving it reads only
    /// later ones from the log.
    pub fn live_folded_through(&self) -> u64 {
        self.live.as_ref().map_or(0, |l| l.folded_through)
    }
}

/// What a build took from the live event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveFold {
    /// The sequence number of the last event read: every event up to it is in this
    /// generation's interactions (or among `rejected`).
    pub folded_through: u64,
    /// Events taken in as interactions.
    pub events: usize,
    /// Events refused (their item is not in this catalog), reported in the build's summary.
    pub rejected: usize,
    /// Items deleted live (`DELETE /v1/items/{id}`) whose catalog row is still the one deleted:
    /// the generation holds them, and the engine hides them from every retriever.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    /// Live deletes whose catalog row changed (or left the catalog) since: no longer applied.
    #[serde(default)]
    pub superseded_deletes: usize,
    /// Items whose fields were replaced live (`PUT /v1/items/{id}/fields`) on a catalog row
    /// still the one updated: this generation holds the new fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updated: Vec<String>,
    /// Live field updates whose catalog row changed since: no longer applied.
    #[serde(default)]
    pub superseded_updates: usize,
}

/// How the indexer chose the CF model of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CfSelection {
    /// What was asked: `als`, `ease` or `auto`.
    pub requested: String,
    /// The model that serves, and why it was chosen (or why the request was changed).
    pub reason: String,
    /// Users with validation items (`auto`; 0 otherwise).
    pub validation_users: usize,
    /// Validation interactions held out of the candidates' training (`auto`; 0 otherwise).
    pub validation_interactions: usize,
    /// Every candidate considered, in the order tried.
    pub candidates: Vec<CfCandidate>,
}

/// One CF model considered by `--cf-model auto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CfCandidate {
    /// `als` or `ease`, and its settings.
    pub model: crate::cf::CfModelSettings,
    /// nDCG@10 on the validation items (binary gains, training items excluded); `None` when
    /// the candidate was not fitted.
    pub ndcg_10: Option<f64>,
    /// Recall@20 on the validation items.
    pub recall_20: Option<f64>,
    /// Seconds to fit it on the validation training part.
    pub fit_seconds: f64,
    /// Why it was not fitted (memory bound, time budget), if it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What a recommendation reranker reads as its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecommendContextSettings {
    /// Titles of the user's most recent items, most recent first.
    pub titles: usize,
}

/// A generation's trained reranker: its file, shape, what it learned from, and whether it beat
/// the un-reranked hybrid on held-out judgments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RerankerManifest {
    /// The trained tensors (safetensors), relative to the generation folder.
    pub file: String,
    /// SHA-256 of the base model the trained layers sit on (the generation's model).
    pub base_model_sha256: String,
    /// Layers kept frozen, the token limit, and (PreTTR) the stored item window.
    pub shape: CrossEncoderSettings,
    /// PreTTR's precomputed item states (`shape.item_tokens` set), relative to the generation
    /// folder; see [`crate::cross::states`] for the format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<String>,
    /// Bytes of stored states per item, on average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_bytes_per_item: Option<f64>,
    /// Fused candidates reranked when a search does not say.
    pub depth: usize,
    /// How the logit and the retriever scores make the final score.
    pub combination: Combination,
    /// Requests rerank unless they opt out: true only when the combination's gain over the
    /// hybrid without reranking held up on the validation queries (see `validation`).
    pub enabled_by_default: bool,
    /// What it was trained on and how.
    pub training: TrainingRecord,
    /// nDCG@10 on the validation queries.
    pub validation: ValidationRecord,
    /// For a recommendation reranker: how the user's context is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RecommendContextSettings>,
}

/// How a reranker was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainingRecord {
    /// Supervision files as given.
    pub supervision: Vec<String>,
    /// Queries (or contexts) trained on.
    pub train_queries: usize,
    /// Query–item pairs per epoch (positives and negatives).
    pub train_pairs: usize,
    /// Queries held out for validation.
    pub validation_queries: usize,
    /// Hard negatives per positive, mined from the hybrid retriever.
    pub hard_negatives: usize,
    /// Random negatives per positive.
    pub random_negatives: usize,
    /// Learning rate of the trained transformer layers.
    pub learning_rate: f64,
    /// Learning rate of the new head.
    pub head_learning_rate: f64,
    /// Epochs run (early stopping may end before the limit) and the one kept.
    pub epochs_run: usize,
    /// The epoch whose weights were kept (1-based; 0: training never beat the untrained model).
    pub best_epoch: usize,
    /// Mean training loss per epoch.
    pub epoch_loss: Vec<f64>,
    /// Validation nDCG@10 of the logit alone after each epoch.
    pub epoch_validation: Vec<f64>,
    /// Validation nDCG@10 of the logit alone before training.
    pub initial_validation: f64,
    /// Device it trained on.
    pub device: String,
    /// Wall-clock seconds, mining and validation included.
    pub seconds: f64,
    /// Seed of the split, the sampling and the head's initialisation.
    pub seed: u64,
}

/// Validation nDCG@10 of each way to rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationRecord {
    /// Queries with judgments in the validation slice.
    pub queries: usize,
    /// The hybrid search without reranking.
    pub hybrid_ndcg10: f64,
    /// The rerank logit alone, over the top `depth`.
    pub logit_ndcg10: f64,
    /// The learned combination, over the top `depth` (fitted on these same queries).
    pub combined_ndcg10: f64,
    /// The combination with each query scored by one fitted on the other half of the queries.
    #[serde(default)]
    pub cross_fitted_ndcg10: f64,
    /// 90% paired-bootstrap interval of the cross-fitted gain over the hybrid, per query:
    /// the reranker is enabled by default only when its lower end is above zero.
    #[serde(default)]
    pub gain_interval: [f64; 2],
}

/// Counts recorded in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    /// Items indexed.
    pub items: usize,
    /// Users with at least one interaction.
    pub users: usize,
    /// Distinct (user, item) pairs after summing duplicates.
    pub interactions: usize,
    /// Interaction rows read, before duplicates were summed.
    pub interaction_rows: usize,
    /// Catalog rows rejected (with `--on-error skip`).
    pub rejected_items: usize,
    /// Interaction rows rejected (with `--on-error skip`).
    pub rejected_interactions: usize,
    /// Tokens longer than `analysis::MAX_TOKEN_CHARS` characters in titles and texts, indexed
    /// as consecutive pieces rather than dropped (the `unicode` analyzer).
    #[serde(default)]
    pub long_tokens_split: usize,
}

/// Input files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sources {
    /// Catalog path as given.
    pub catalog: String,
    /// Interactions path as given.
    pub interactions: Option<String>,
}

/// Time spent in one indexing stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageTiming {
    /// Stage name.
    pub stage: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

const CURRENT: &str = "CURRENT";
/// File names inside a generation: the one list of the format's files, read by the engine and
/// written by the indexer and the reranker trainer.
pub mod files {
    /// tantivy folder.
    pub const LEXICAL: &str = "lexical";
    /// sled folder.
    pub const STORE: &str = "store";
    /// Item embeddings and their graph.
    pub const DENSE: &str = "dense";
    /// ALS item factors and their graph.
    pub const CF_ITEMS: &str = "cf_items";
    /// ALS user factors (`users.vectors`).
    pub const CF_USERS: &str = "users.vectors";
    /// The EASE item-item weights, pruned (`cf::ease`).
    pub const EASE: &str = "ease.bin";
    /// Rejected input rows.
    pub const REJECTS: &str = "rejects.jsonl";
    /// The trained search reranker's layers.
    pub const RERANKER: &str = "reranker.safetensors";
    /// The trained recommendation reranker's layers.
    pub const RECOMMEND_RERANKER: &str = "recommend-reranker.safetensors";
    /// The search reranker's precomputed item states (PreTTR).
    pub const RERANKER_STATES: &str = "reranker-states.bin";
    /// The recommendation reranker's precomputed item states (PreTTR).
    pub const RECOMMEND_RERANKER_STATES: &str = "recommend-reranker-states.bin";
}

/// Writes factors as little-endian f32 (`files::CF_USERS`), the layout the engine reads.
pub fn write_factors(path: &Path, factors: &crate::cf::Factors) -> Result<()> {
    crate::dense::write_f32_file(path, &factors.data)
}

const GENERATIONS: &str = "generations";
const MANIFEST: &str = "manifest.json";

fn io(context: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context(), e)
}

/// A generation folder being written.
#[derive(Debug)]
pub struct Building {
    /// Where its files go.
    pub dir: PathBuf,
    /// The name it will be published under.
    pub name: String,
    root: PathBuf,
    /// `.building-NAME.lock` beside the folder, locked (an OS advisory lock) for as long as
    /// this build lives: the OS releases it when the process dies, even by `kill -9`, which
    /// is how a later build tells a dead build's folder from a running one's.
    lock: (PathBuf, fs::File),
}

/// The lock file of building folder `dir` (`.building-NAME` → `.building-NAME.lock`).
fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    dir.with_file_name(name)
}

/// Whether `file` (locked) is still the file at `path`. Lock files are removed when a build
/// ends, so a process that opened one just before another removed it can lock a file no
/// longer in the folder; such a lock protects nothing and must not be trusted.
fn still_at(file: &fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Opens (creating it if needed) a building folder's lock file, for locking.
fn open_lock(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(|| format!("opening {}", path.display())))
}

/// Removes the building folders under `generations` whose build is no longer running (its
/// lock is free: the process that held it died), with their lock files. Returns what it
/// removed. A folder whose lock is held is a build in progress and is left alone.
fn remove_dead_builds(generations: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(generations).map_err(io(|| format!("listing {}", generations.display())))? {
        let entry = entry.map_err(io(|| format!("listing {}", generations.display())))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with(".building-") || name.ends_with(".lock") || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        let lock = lock_path(&dir);
        let file = open_lock(&lock)?;
        match file.try_lock() {
            // Another build replaced the lock file meanwhile: not ours to judge; next time.
            Ok(()) if !still_at(&file, &lock) => {}
            Ok(()) => {
                match fs::remove_dir_all(&dir) {
                    // Published (renamed) between the listing and the lock: nothing to remove.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(format!("removing the dead build {}", dir.display()), e)),
                    Ok(()) => removed.push(dir),
                }
                // Removed while still locked, so no one else can hold a lock on it.
                let _ = fs::remove_file(&lock);
            }
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("locking {}", lock.display()), e)),
        }
    }
    Ok(removed)
}

/// Marks generation folder `dir` as open by this process for as long as the returned file
/// lives: a shared OS lock on `generations/.serving-NAME.lock`, which [`prune`] will not remove
/// a generation under. `None` (logged) when the lock file cannot be made (a read-only index):
/// serving goes on, and such an index is not pruned by anyone either.
pub fn hold_serving(dir: &Path) -> Option<fs::File> {
    let path = serving_lock_path(dir)?;
    let locked = open_lock(&path).and_then(|file| {
        file.lock_shared().map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(file)
    });
    match locked {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!(error = %e, "no serving lock on the generation; a build's pruning cannot see this process");
            None
        }
    }
}

/// `generations/.serving-NAME.lock` for generation folder `generations/NAME`.
fn serving_lock_path(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    Some(dir.with_file_name(format!(".serving-{name}.lock")))
}

/// Removes published generations under `root` beyond the newest `keep`, except the one
/// `CURRENT` names and any a process holds open ([`hold_serving`]); returns what it removed.
/// `keep` 0 keeps everything.
///
/// # Errors
/// [`Error::Io`] listing the folder or removing a generation.
pub fn prune(root: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let generations = root.join(GENERATIONS);
    let current = current(root).ok();
    let mut published: Vec<PathBuf> = fs::read_dir(&generations)
        .map_err(io(|| format!("listing {}", generations.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir() && path.join(MANIFEST).is_file())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.')))
        .collect();
    // Names are zero-padded sequence numbers, so their order is their age.
    published.sort();
    let old = published.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for dir in published.into_iter().take(old) {
        if Some(&dir) == current.as_ref() {
            continue;
        }
        let Some(lock) = serving_lock_path(&dir) else { continue };
        let file = open_lock(&lock)?;
        match file.try_lock() {
            Ok(()) if still_at(&file, &lock) => {
                fs::remove_dir_all(&dir).map_err(io(|| format!("removing the old generation {}", dir.display())))?;
                let _ = fs::remove_file(&lock);
                removed.push(dir);
            }
            // Replaced meanwhile, or held: a process has it open.
            Ok(()) | Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("locking {}", lock.display()), e)),
        }
    }
    Ok(removed)
}

/// Writes and publishes one generation under `root`: reserves the next name, lets `write` fill
/// the building folder and return the manifest, then publishes it (`Building::publish`). If
/// `write` fails, or the publish fails before the folder is renamed, the building folder is
/// removed and the error returned. (A failure after the rename, while moving `CURRENT`, leaves
/// the complete but unpointed generation in place; `CURRENT` still names the old one.) Every writer of generations (the indexer, the reranker
/// trainer) goes through here. Returns the published folder and its manifest.
pub fn build<E: From<Error>>(
    root: &Path,
    write: impl FnOnce(&Building) -> Result<Manifest, E>,
) -> Result<(PathBuf, Manifest), E> {
    let building = begin(root)?;
    let manifest = match write(&building) {
        Ok(manifest) => manifest,
        Err(e) => {
            building.abandon();
            return Err(e);
        }
    };
    let dir = building.dir.clone();
    match building.publish(&manifest) {
        Ok(published) => Ok((published, manifest)),
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            let _ = fs::remove_file(lock_path(&dir));
            Err(E::from(e))
        }
    }
}

/// Reserves the next generation name under `root` and creates its building folder, after
/// removing the folders that builds killed earlier left behind (logged).
pub fn begin(root: &Path) -> Result<Building> {
    let generations = root.join(GENERATIONS);
    fs::create_dir_all(&generations).map_err(io(|| format!("creating {}", generations.display())))?;
    for dead in remove_dead_builds(&generations)? {
        tracing::warn!(folder = %dead.display(), "removed the folder of a build that did not finish");
    }
    let mut highest = 0u64;
    for entry in fs::read_dir(&generations).map_err(io(|| format!("listing {}", generations.display())))? {
        let entry = entry.map_err(io(|| format!("listing {}", generations.display())))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let number = name.strip_prefix(".building-").unwrap_or(&name);
        if let Ok(n) = number.parse::<u64>() {
            highest = highest.max(n);
        }
    }
    let name = format!("{:06}", highest + 1);
    let dir = generations.join(format!(".building-{name}"));
    // The lock first, then the folder: a folder exists only while its lock is held, so a
    // sweeping build never takes a starting build's folder for a dead one's.
    let lock = lock_path(&dir);
    let file = open_lock(&lock)?;
    file.try_lock().map_err(|e| {
        Error::io(
            format!("locking {}", lock.display()),
            std::io::Error::other(format!("{e}; another build took {name}")),
        )
    })?;
    if !still_at(&file, &lock) {
        return Err(Error::io(
            format!("locking {}", lock.display()),
            std::io::Error::other(format!("another build was sweeping {name}; run again")),
        ));
    }
    // create_dir, not create_dir_all: two indexers racing for one name must not share a folder.
    fs::create_dir(&dir).map_err(io(|| format!("creating {}", dir.display())))?;
    Ok(Building { dir, name, root: root.to_path_buf(), lock: (lock, file) })
}

impl Building {
    /// Writes the manifest, moves the folder to its final name and points `CURRENT` at it.
    /// Returns the published folder.
    pub fn publish(self, manifest: &Manifest) -> Result<PathBuf> {
        let manifest_path = self.dir.join(MANIFEST);
        let json = serde_json::to_vec_pretty(manifest)
            .map_err(|source| Error::Json { context: "encoding manifest".into(), source })?;
        write_synced(&manifest_path, &json)?;
        let final_dir = self.root.join(GENERATIONS).join(&self.name);
        fs::rename(&self.dir, &final_dir)
            .map_err(io(|| format!("renaming {} to {}", self.dir.display(), final_dir.display())))?;
        let _ = fs::remove_file(&self.lock.0);
        let pointer_tmp = self.root.join(format!("{CURRENT}.tmp"));
        write_synced(&pointer_tmp, self.name.as_bytes())?;
        let pointer = self.root.join(CURRENT);
        fs::rename(&pointer_tmp, &pointer)
            .map_err(io(|| format!("renaming {} to {}", pointer_tmp.display(), pointer.display())))?;
        Ok(final_dir)
    }

    /// Removes the building folder (after a failure).
    pub fn abandon(self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock.0);
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::File::create(path).map_err(io(|| format!("creating {}", path.display())))?;
    file.write_all(bytes).map_err(io(|| format!("writing {}", path.display())))?;
    file.sync_all().map_err(io(|| format!("syncing {}", path.display())))
}

impl Building {
    /// Brings every file of the generation at `from` into this one, except its manifest (the
    /// new generation writes its own): for a generation that adds a file (a trained reranker)
    /// to the indexes of the one before.
    ///
    /// Published generations are never written again, so their files are hard-linked rather
    /// than copied: a new generation costs no disk for a large catalog's vectors and segments.
    /// Two kinds are copied instead. The sled store (`store/`) is opened read-write and sled
    /// may write to its files. Dotfiles are tantivy's lock files, and sharing those would make
    /// two generations' readers contend for one lock. A file that cannot be linked (another
    /// file system, or no hard links there) is copied.
    pub fn carry_over(&self, from: &Path) -> Result<()> {
        carry_tree(from, &self.dir, Some(MANIFEST), false)
    }
}

/// `skip`: a name left out at this level only. `copy_all`: copy, never link.
fn carry_tree(from: &Path, to: &Path, skip: Option<&str>, copy_all: bool) -> Result<()> {
    for entry in fs::read_dir(from).map_err(io(|| format!("listing {}", from.display())))? {
        let entry = entry.map_err(io(|| format!("listing {}", from.display())))?;
        let name = entry.file_name();
        let source = entry.path();
        let target = to.join(&name);
        if skip.is_some_and(|skip| name == skip) {
            continue;
        }
        let file_type = entry.file_type().map_err(io(|| format!("reading {}", source.display())))?;
        if file_type.is_dir() {
            fs::create_dir_all(&target).map_err(io(|| format!("creating {}", target.display())))?;
            carry_tree(&source, &target, None, copy_all || name == files::STORE)?;
            continue;
        }
        let shared = !copy_all && !name.to_string_lossy().starts_with('.');
        if !(shared && fs::hard_link(&source, &target).is_ok()) {
            fs::copy(&source, &target)
                .map_err(io(|| format!("copying {} to {}", source.display(), target.display())))?;
        }
    }
    Ok(())
}

/// The folder of the generation `CURRENT` points at.
pub fn current(root: &Path) -> Result<PathBuf> {
    let pointer = root.join(CURRENT);
    let name = fs::read_to_string(&pointer).map_err(|e| Error::BadIndex {
        path: root.to_path_buf(),
        reason: format!("no published generation ({}: {e}); run `hyrank index` first", pointer.display()),
    })?;
    let name = name.trim();
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::BadIndex { path: pointer, reason: format!("{name:?} is not a generation name") });
    }
    Ok(root.join(GENERATIONS).join(name))
}

/// Reads and checks a generation's manifest.
pub fn read_manifest(generation: &Path) -> Result<Manifest> {
    let path = generation.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|e| Error::BadIndex {
        path: generation.to_path_buf(),
        reason: format!("incomplete generation ({}: {e})", path.display()),
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::BadIndex { path: path.clone(), reason: format!("manifest is not JSON: {e}") })?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if !version.is_some_and(|v| (u64::from(MIN_FORMAT_VERSION)..=u64::from(FORMAT_VERSION)).contains(&v)) {
        return Err(Error::BadIndex {
            path,
            reason: format!(
                "format version {version:?}, but this build reads versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
            ),
        });
    }
    serde_json::from_value(value).map_err(|e| Error::BadIndex { path, reason: format!("manifest: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str) -> Manifest {
        Manifest {
            live: None,
            format_version: FORMAT_VERSION,
            generation: name.into(),
            built_at_unix: 0,
            model: ModelIdentity { name: "m".into(), sha256: "0".into(), dim: 4 },
            max_tokens: 8,
            precision: Precision::F32,
            counts: Counts::default(),
            lexical: LexicalSettings::default(),
            hnsw: HnswSettings::default(),
            cf: None,
            ease: None,
            cf_selection: None,
            sources: Sources::default(),
            stages: vec![],
            reranker: None,
            recommend_reranker: None,
        }
    }

    #[cfg(unix)]
    #[test]
    fn carrying_over_links_index_files_and_copies_the_store_and_lock_files() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let first = begin(root.path()).unwrap();
        let write = |path: PathBuf, text: &str| {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(first.dir.join("dense.vectors"), "vectors");
        write(first.dir.join("lexical/segment.idx"), "postings");
        write(first.dir.join("lexical/.tantivy-meta.lock"), "");
        write(first.dir.join("store/db"), "rows");
        let old = first.publish(&manifest("000001")).unwrap();

        let second = begin(root.path()).unwrap();
        second.carry_over(&old).unwrap();
        let inode = |dir: &Path, file: &str| fs::metadata(dir.join(file)).unwrap().ino();
        for file in ["dense.vectors", "lexical/segment.idx"] {
            assert_eq!(inode(&old, file), inode(&second.dir, file), "{file} is linked");
        }
        for file in ["store/db", "lexical/.tantivy-meta.lock"] {
            assert_ne!(inode(&old, file), inode(&second.dir, file), "{file} is copied");
        }
        assert_eq!(fs::read_to_string(second.dir.join("store/db")).unwrap(), "rows");
        // The new generation writes its own manifest.
        assert!(!second.dir.join(MANIFEST).exists());
    }

    #[test]
    fn publishing_switches_current_and_numbers_generations() {
        let root = tempfile::tempdir().unwrap();
        assert!(current(root.path()).is_err());
        let first = begin(root.path()).unwrap();
        assert_eq!(first.name, "000001");
        // An unpublished build is never current.
        assert!(current(root.path()).is_err());
        let m = manifest(&first.name);
        let dir = first.publish(&m).unwrap();
        assert_eq!(current(root.path()).unwrap(), dir);
        assert_eq!(read_manifest(&dir).unwrap(), m);
        let second = begin(root.path()).unwrap();
        assert_eq!(second.name, "000002");
        second.abandon();
        assert_eq!(current(root.path()).unwrap(), dir);
    }

    #[test]
    fn pruning_keeps_the_newest_current_and_open_generations() {
        let root = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for _ in 0..6 {
            let building = begin(root.path()).unwrap();
            let m = manifest(&building.name);
            dirs.push(building.publish(&m).unwrap());
        }
        // A server still serves 000002 (a shared lock, as Engine::open takes); CURRENT is
        // rolled back to 000003.
        let serving = hold_serving(&dirs[1]).unwrap();
        std::fs::write(root.path().join(CURRENT), "000003").unwrap();
        let removed = prune(root.path(), 2).unwrap();
        assert_eq!(removed, vec![dirs[0].clone(), dirs[3].clone()]);
        let left: Vec<bool> = dirs.iter().map(|d| d.exists()).collect();
        assert_eq!(left, [false, true, true, false, true, true]);
        // Once the server lets go, 000002 goes too; keep 0 keeps everything.
        drop(serving);
        assert!(prune(root.path(), 0).unwrap().is_empty());
        assert_eq!(prune(root.path(), 2).unwrap(), vec![dirs[1].clone()]);
        assert!(dirs[2].exists(), "CURRENT's generation is never removed");
    }

    /// A building folder whose build died (its lock free) is removed by the next build; one
    /// whose build is alive (its lock held, here by this process's `Building`) is not.
    #[test]
    fn the_next_build_removes_dead_builds_folders_and_keeps_running_ones() {
        let root = tempfile::tempdir().unwrap();
        let generations = root.path().join(GENERATIONS);
        let running = begin(root.path()).unwrap();
        std::fs::write(running.dir.join("dense.vectors"), b"partial").unwrap();
        // A build killed with -9: its folder and lock file stay, the lock itself is gone.
        let dead = generations.join(".building-000007");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("dense.vectors"), b"partial").unwrap();
        std::fs::write(lock_path(&dead), b"").unwrap();
        // An older binary's leftover, with no lock file at all.
        let older = generations.join(".building-000005");
        std::fs::create_dir(&older).unwrap();
        let next = begin(root.path()).unwrap();
        assert!(!dead.exists() && !lock_path(&dead).exists() && !older.exists());
        assert!(running.dir.join("dense.vectors").exists(), "a running build's folder is kept");
        assert_eq!(next.name, "000002", "the dead builds' names are free again");
        next.abandon();
        let dir = running.publish(&manifest("000001")).unwrap();
        let left: Vec<String> =
            std::fs::read_dir(&generations).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert_eq!(left, ["000001"], "no lock file or folder left behind");
        assert!(dir.ends_with("000001"));
    }

    #[test]
    fn another_format_version_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let building = begin(root.path()).unwrap();
        let dir = building.publish(&Manifest { format_version: 99, ..manifest("000001") }).unwrap();
        let err = read_manifest(&dir).unwrap_err();
        assert!(err.to_string().contains("format version"), "{err}");
    }
}
