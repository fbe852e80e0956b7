//! What a generation records about itself (`manifest.json`): its format version, model,
//! settings, counts, CF choice, rerankers and live fold; and reading it back, checked.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::MANIFEST;
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
/// Version 4 marks a generation shipped through object storage, whose manifest lists every
/// file with its size and SHA-256 ([`Manifest::files`]): a replica checks each file against it
/// before serving, and a build from before it would serve an unchecked download.
/// Version 5 marks scoring settings an older build would read past without a word, and so
/// score differently: BM25F's field combination (`lexical.bm25.fields`, read as `sum` by
/// builds from before it), EASE's recency half-life (`ease.recency_half_life`, applied at
/// request time, not stored in the weights), a validated content weight for
/// recommendations other than the model family's constant (`cf_selection.content_weight`).
/// Version 6 marks a generation embedded at w8a8: a build from before it does not know the
/// precision, and says the generation is newer than it reads instead of failing to parse it.
/// Version 7 marks BM25 settings per field, which builds that read 5 and 6 would read past
/// without a word: the title's own b (`lexical.bm25.title_b`), the title analysed apart from
/// the text (`lexical.title_analysis`; those builds analyse a query once, by the text's
/// analyzer) and catalog fields BM25 searches (`lexical.search_fields`, which they would not
/// search). Version 8 marks a catalog field BM25 searches with its own analysis
/// (`lexical.search_fields[].analysis`): builds that read 7 analyse every catalog field as the
/// text, and say the generation is newer than they read instead of failing to parse it.
/// Version 9 marks a positive rule (`sources.min_weight`) read as builds from 2026-12-07 read
/// it: the rows below it stored as each user's `seen` items, the items only such rows name
/// listed apart (`cf-seen-only.json`), and live events meeting the rule as they are written.
/// Builds that read 8 would recommend a user's low-rated items back, treat those items as
/// cold, and sum live events' weights.
pub const FORMAT_VERSION: u32 = 9;

/// The version a positive rule needs (version 9 above).
pub const SEEN_FORMAT_VERSION: u32 = 9;

/// The version scoring settings older builds would ignore need (version 5 above).
pub const SCORING_FORMAT_VERSION: u32 = 5;

/// The version a shipped generation's manifest is written at (with [`Manifest::files`]).
pub const SHIPPED_FORMAT_VERSION: u32 = 4;

/// The version a PreTTR reranker needs ([`FORMAT_VERSION`]'s version 3).
pub const PRETTR_FORMAT_VERSION: u32 = 3;

/// The oldest version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;

/// The version a generation embedded at w8a8 needs ([`FORMAT_VERSION`]'s version 6).
pub const W8A8_FORMAT_VERSION: u32 = 6;

/// The version BM25 settings per field need ([`FORMAT_VERSION`]'s version 7).
pub const PER_FIELD_FORMAT_VERSION: u32 = 7;

/// The version a catalog field analysed on its own needs ([`FORMAT_VERSION`]'s version 8).
pub const FIELD_ANALYSIS_FORMAT_VERSION: u32 = 8;

/// The version a generation embedded at `precision` is written as.
pub fn format_version_for(precision: Precision) -> u32 {
    match precision {
        Precision::F32 => MIN_FORMAT_VERSION,
        Precision::W8a8 => W8A8_FORMAT_VERSION,
        Precision::F16 | Precision::Bf16 | Precision::Int8 => 2,
    }
}

/// The lowest version that reads `manifest` correctly (see [`FORMAT_VERSION`]): what a
/// generation is written at, so that every build that can serve it does, and no other.
pub fn format_version_of(manifest: &Manifest) -> u32 {
    let mut version = format_version_for(manifest.precision);
    let prettr = [&manifest.reranker, &manifest.recommend_reranker]
        .iter()
        .any(|entry| entry.as_ref().is_some_and(|e| e.shape.item_tokens.is_some()));
    if prettr {
        version = version.max(PRETTR_FORMAT_VERSION);
    }
    if !manifest.files.is_empty() {
        version = version.max(SHIPPED_FORMAT_VERSION);
    }
    let bm25f = manifest.lexical.bm25.fields == crate::lexical::FieldCombination::Bm25f;
    let lexical = &manifest.lexical;
    // A title b equal to b is still written: a request's b then leaves the title's alone.
    if lexical.bm25.title_b.is_some() || !lexical.fields_analysed_alike() || !lexical.search_fields.is_empty() {
        version = version.max(PER_FIELD_FORMAT_VERSION);
    }
    if lexical.search_fields.iter().any(|f| f.analysis.is_some()) {
        version = version.max(FIELD_ANALYSIS_FORMAT_VERSION);
    }
    let recency = manifest.ease.as_ref().is_some_and(|e| e.recency_half_life > 0.0);
    // A validated weight equal to the family's constant scores as older builds do.
    let constant = crate::request::defaults::recommend_content_weight(manifest.ease.is_some());
    let content_weight = manifest.cf_selection.as_ref().and_then(|s| s.content_weight).is_some_and(|w| w != constant);
    if bm25f || recency || content_weight {
        version = version.max(SCORING_FORMAT_VERSION);
    }
    if manifest.sources.min_weight.is_some() {
        version = version.max(SEEN_FORMAT_VERSION);
    }
    version
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
    /// Each field's type over the catalog (declared with `--field-type` or inferred): live
    /// writes are read as it says. Empty in generations from before it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub field_types: std::collections::BTreeMap<String, crate::item::FieldType>,
    /// Every file of the generation but the manifest, by path relative to its folder (`/`
    /// separated), with its size and SHA-256: written by `hyrank publish` over the exact bytes
    /// it uploads, checked by a replica over the bytes it downloads. Empty in generations that
    /// were never shipped.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub files: std::collections::BTreeMap<String, FileDigest>,
}

/// A file's size and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileDigest {
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

impl FileDigest {
    /// The digest of `content`.
    pub fn of(content: &[u8]) -> Self {
        use sha2::Digest;
        FileDigest { bytes: content.len() as u64, sha256: Self::hex(&sha2::Sha256::digest(content)) }
    }

    /// A SHA-256 digest as lower-case hex.
    pub fn hex(digest: &[u8]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
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
    /// Events refused (their item is not in this catalog; under `--no-live-events`, their user
    /// and item are in no row of the interactions file), reported in the build's summary and
    /// its rejects.
    pub rejected: usize,
    /// Items deleted live (`DELETE /v1/items/{id}`) whose catalog row is still the one deleted:
    /// the generation holds them, and the engine hides them from every retriever.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    /// Per item whose row the folded writes changed (or whose catalog row an older build read
    /// otherwise), the hashes ([`crate::live::row_hashes`]: the [`crate::live::item_hash`] and
    /// the typed hash earlier servers logged) of the rows a later write about it may name
    /// besides the row this generation stores: the catalog's row and its versions before each
    /// folded field update, each once, the latest first. A write logged after the build read
    /// the log, by a server serving the generation before, names such a row; the engine
    /// applies it as the next build will.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub row_hashes: std::collections::BTreeMap<String, Vec<String>>,
    /// Per item stored without values live writes gave it (the catalog's field types no longer
    /// take them: `values_left_out`), the [`crate::live::item_hash`] of the row as the writes
    /// made it: the name a write about the item carries ([`crate::Engine::row_name`]), since
    /// every build replays the writes to that row whatever it then leaves out, and a
    /// generation with other types stores it otherwise.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub written_as: std::collections::BTreeMap<String, String>,
    /// Live deletes not applied: made against a row the catalog has changed since (or that
    /// left it), or that an earlier write had replaced.
    #[serde(default)]
    pub superseded_deletes: usize,
    /// Items whose fields were replaced live (`PUT /v1/items/{id}/fields`) on a catalog row
    /// still the one updated: this generation holds the new fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updated: Vec<String>,
    /// Live field updates not applied: made against a row the catalog has changed since, or
    /// that an earlier write had replaced.
    #[serde(default)]
    pub superseded_updates: usize,
    /// Items put live (`PUT /v1/items/{id}`) for ids the catalog lacks, appended to it.
    #[serde(default)]
    pub created: usize,
    /// Catalog rows a live put replaced (the row still the one replaced).
    #[serde(default)]
    pub replaced: usize,
    /// Live puts not applied: made against a row the catalog has changed since, or that an
    /// earlier write had replaced (concurrent puts of one id: those the server answered 409).
    #[serde(default)]
    pub superseded_puts: usize,
    /// Values live writes gave rows that the catalog's field types no longer take (a price of
    /// "ask us" once prices are numbers again): left out of their rows, each listed in the
    /// generation's `rejects.jsonl`.
    #[serde(default)]
    pub values_left_out: usize,
    /// Whether the generation holds every record it folded (`files::LIVE`): the next build
    /// reads them there, and the log's files up to `folded_through` may go. Generations from
    /// before it need the whole log.
    #[serde(default)]
    pub carried: bool,
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
    /// How the validation items were held out (`auto`): `random` (a fifth of each user's
    /// positives) or `time` (each user's latest positive). Empty in older manifests.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub validation: String,
    /// Every candidate considered, in the order tried.
    pub candidates: Vec<CfCandidate>,
    /// The content list's weight in hybrid recommendations (CF weighs 1), validated on the
    /// same split (`auto`): the model family's default unless another weight's nDCG@10 gain
    /// over it held up. The generation's default for a recommend request that gives no `dense`
    /// weight. `None` (not validated, older manifests): the model family's
    /// constant ([`crate::request::defaults::RECOMMEND_CONTENT_WEIGHT_EASE`] or `_ALS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_weight: Option<f64>,
    /// Every content weight tried for it, by weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_weights: Vec<ContentWeightCandidate>,
}

/// One content weight `auto` validated: the chosen CF model's validation fit fused with the
/// content list at this weight, as a recommend request is served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContentWeightCandidate {
    /// The content list's weight (CF 1).
    pub weight: f64,
    /// nDCG@10 on the validation items.
    pub ndcg_10: f64,
    /// Recall@20 on the validation items.
    pub recall_20: f64,
    /// The 5th percentile of the paired nDCG@10 gain over the model family's default weight
    /// (2,000 bootstrap resamples of the validation users): a weight other than the default is
    /// chosen only when this is above zero.
    pub ndcg_10_gain_low: f64,
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
    /// The reranker it was distilled from, and how, when it learned from a teacher's logits
    /// (`hyrank train-reranker --distil-weight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<String>,
    /// What the validation split kept together: `items` (queries sharing a relevant item),
    /// `queries` (each query alone) or `users` (a user's replays). Absent in manifests
    /// written before the setting, whose splits were by query (or by user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_split: Option<String>,
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
    /// Catalog rows rejected (with `--on-error skip` or `skip-empty`).
    pub rejected_items: usize,
    /// Interaction rows rejected (with `--on-error skip` or `skip-empty`).
    pub rejected_interactions: usize,
    /// Catalog rows that repeated an earlier row exactly (same id and content), read once.
    #[serde(default)]
    pub repeated_items: usize,
    /// Tokens longer than `analysis::MAX_TOKEN_CHARS` characters in titles and texts, indexed
    /// as consecutive pieces rather than dropped (the `unicode` analyzer).
    #[serde(default)]
    pub long_tokens_split: usize,
    /// Interaction rows left out as below `Sources::min_weight` (0 without one).
    #[serde(default)]
    pub below_min_weight: usize,
}

/// Input files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sources {
    /// Catalog path as given.
    pub catalog: String,
    /// The catalog's path made absolute, links resolved, when the build read it: what tells
    /// one file reached by two paths from two files (the path as given is relative to where
    /// the build ran). Absent in generations built before 2026-12-06.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_resolved: Option<String>,
    /// Interactions path as given.
    pub interactions: Option<String>,
    /// The positive rule the interactions file was read with (`hyrank index --min-weight`):
    /// rows weighing at least this, one per user and item, each weighing 1. `None`: every row,
    /// with its weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_weight: Option<f32>,
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
