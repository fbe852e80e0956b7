//! An opened generation and the three questions it answers: search, recommend, similar.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::batcher::RerankWorker;
use crate::batcher::{BatcherSettings, QueryBatcher};
use crate::cache::{Cache, CacheStats};
use crate::cf::{self, AlsModel, Factors};
use crate::cross::{CrossEncoder, Features};
use crate::dense::{read_f32_file, write_f32_file, HnswSettings, Metric, VectorIndex};
use crate::embed::{Embedder, EmbedderSettings};
use crate::error::{Error, Result};
use crate::explain::CombinedScore;
use crate::explain::{Explanation, RerankScore, RetrieverKind, ScoreBreakdown};
use crate::filter::{matches_all, Filters};
use crate::fusion::{fuse, FusedHit, Fusion, RankedList, ScoreRange};
use crate::generation::RerankerManifest;
use crate::generation::{self, Manifest};
use crate::item::{FieldValue, Item};
use crate::lexical::LexicalIndex;
use crate::rerank::{LateInteractionReranker, Reranker};
use crate::store::{Interaction, MetaStore, SnapshotStore, UserRecord};

/// Limits on request sizes, so that one request cannot monopolise the engine.
pub const MAX_K: usize = 1000;
/// Most candidates a retriever may be asked for.
pub const MAX_CANDIDATES: usize = 10_000;
/// Most items the rerank stage reads for one request.
pub const MAX_RERANK: usize = 200;

/// File names inside a generation.
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
    /// Rejected input rows.
    pub const REJECTS: &str = "rejects.jsonl";
}

/// Which retrievers a search runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// BM25 only.
    Bm25,
    /// Dense ANN only.
    Dense,
    /// Collaborative filtering only (needs a user).
    Cf,
    /// BM25 and dense, plus CF when a user is given.
    #[default]
    Hybrid,
}

/// Per-retriever weights for fusion; absent ones are 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// BM25 weight.
    pub bm25: Option<f64>,
    /// Dense weight (content, in recommendations).
    pub dense: Option<f64>,
    /// CF weight.
    pub cf: Option<f64>,
}

impl Weights {
    fn of(&self, kind: RetrieverKind) -> f64 {
        self.given(kind).unwrap_or(1.0)
    }

    fn given(&self, kind: RetrieverKind) -> Option<f64> {
        match kind {
            RetrieverKind::Bm25 => self.bm25,
            RetrieverKind::Dense => self.dense,
            RetrieverKind::Cf => self.cf,
        }
    }
}

/// Default weight of the content list in recommendations (CF weighs 1). Chosen on MovieLens on
/// a validation split carved from the training positives: with plain fusion of cold items,
/// content weight 1.0 gave Recall@20 0.158, 0.3 gave 0.211, CF alone 0.204.
pub const RECOMMEND_CONTENT_WEIGHT: f64 = 0.3;

/// Which reranker a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RerankerKind {
    /// The generation's cross-encoder (`hyrank train-reranker`), combined with the retriever
    /// scores by its learned weights.
    Trained,
    /// MaxSim over MiniLM's token embeddings, untrained for this use; added with `weight`.
    LateInteraction,
}

/// Rerank-stage options of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RerankOptions {
    /// `false` turns reranking off for this search, also where the generation reranks by
    /// default.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Which reranker: the trained one when the generation has it, else late interaction.
    #[serde(default)]
    pub reranker: Option<RerankerKind>,
    /// How many fused candidates the reranker reads (at least k): by default the depth the
    /// trained reranker was validated at, else 20.
    #[serde(default)]
    pub depth: Option<usize>,
    /// Weight of the late-interaction score in the final score; the trained reranker's
    /// weights are learned and this is ignored.
    #[serde(default = "default_rerank_weight")]
    pub weight: f64,
}

impl RerankOptions {
    /// Rerank the top `depth` with `reranker` (the default one when `None`).
    pub fn top(depth: usize, reranker: Option<RerankerKind>) -> Self {
        RerankOptions { enabled: true, reranker, depth: Some(depth), weight: default_rerank_weight() }
    }

    /// The trained reranker at the depth it was validated at.
    pub fn default_trained() -> Self {
        RerankOptions {
            enabled: true,
            reranker: Some(RerankerKind::Trained),
            depth: None,
            weight: default_rerank_weight(),
        }
    }

    /// No reranking, whatever the generation's default.
    pub fn off() -> Self {
        RerankOptions { enabled: false, reranker: None, depth: None, weight: default_rerank_weight() }
    }
}

/// Late-interaction rerank depth when a search does not give one.
const DEFAULT_LATE_INTERACTION_DEPTH: usize = 20;

fn default_rerank_weight() -> f64 {
    1.0
}
/// Search fuses linearly by default. Tuned on SciFact's *train* judgments (809 queries;
/// docs/EVAL.md): linear fusion of min-max-normalised BM25 and dense scores gave nDCG@10
/// 0.7216–0.7241 for BM25 weights 0.4–0.6 (equal weights: 0.7232 at 100 candidates per
/// retriever), RRF 0.7124 at k = 60 and 0.7215 at k = 10. Equal weights, because the spread
/// across 0.4–0.6 is smaller than the noise between candidate depths.
fn default_search_fusion() -> Fusion {
    Fusion::Linear
}

fn default_k() -> usize {
    10
}
fn default_candidates() -> usize {
    100
}
fn default_true() -> bool {
    true
}

/// A search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query text.
    #[serde(default)]
    pub query: Option<String>,
    /// A user to personalise for (adds the CF retriever in hybrid mode).
    #[serde(default)]
    pub user: Option<String>,
    /// Hits to return.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Field conditions every hit must meet.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub filters: Filters,
    /// Retrievers to run.
    #[serde(default)]
    pub mode: Mode,
    /// How to fuse them; linear (min-max normalised, equal weights) unless asked otherwise.
    #[serde(default = "default_search_fusion")]
    pub fusion: Fusion,
    /// Per-retriever fusion weights.
    #[serde(default)]
    pub weights: Weights,
    /// Candidates each retriever returns before fusion.
    #[serde(default = "default_candidates")]
    pub candidates: usize,
    /// Rerank the top of the fused list. Absent: the generation's trained reranker when its
    /// manifest enables it by default (its validation gain over the plain hybrid held up),
    /// else none.
    #[serde(default)]
    pub rerank: Option<RerankOptions>,
    /// Fusion of items CF cannot score, when a user is given.
    #[serde(default)]
    pub cold_items: ColdItems,
    /// Add explanation trees (BM25 detail, CF history contributions).
    #[serde(default)]
    pub explain: bool,
}

impl SearchRequest {
    /// A hybrid search for `query` with every other option at its default.
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            query: Some(query.into()),
            user: None,
            k: default_k(),
            filters: Filters::new(),
            mode: Mode::default(),
            fusion: default_search_fusion(),
            weights: Weights::default(),
            candidates: default_candidates(),
            rerank: None,
            cold_items: ColdItems::default(),
            explain: false,
        }
    }
}

/// What fusion does with items CF cannot score (no training interactions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColdItems {
    /// CF abstains and its weight goes to the retrievers that can score the item, so cold
    /// items compete on content alone. Right when content is about as reliable as CF.
    #[default]
    Share,
    /// Plain fusion: a cold item simply gets no CF contribution, so it surfaces only when its
    /// other evidence beats warm items' combined evidence.
    Ignore,
}

/// Which candidate generators a recommendation uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecommendMode {
    /// Collaborative filtering only.
    Cf,
    /// Content only: items near the user's recent history in embedding space.
    Content,
    /// Both, fused.
    #[default]
    Hybrid,
}

/// A recommendation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    /// The user.
    pub user: String,
    /// Items to return.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Leave out items the user already interacted with.
    #[serde(default = "default_true")]
    pub exclude_seen: bool,
    /// Candidate generators.
    #[serde(default)]
    pub mode: RecommendMode,
    /// Fusion of items CF cannot score.
    #[serde(default = "default_recommend_cold_items")]
    pub cold_items: ColdItems,
    /// Field conditions every item must meet.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub filters: Filters,
    /// How to fuse CF and content candidates.
    #[serde(default)]
    pub fusion: Fusion,
    /// `cf` and `dense` (content) weights.
    #[serde(default)]
    pub weights: Weights,
    /// Candidates per retriever.
    #[serde(default = "default_candidates")]
    pub candidates: usize,
    /// How many recent history items form the content profile.
    #[serde(default = "default_recent")]
    pub recent: usize,
    /// Rerank the top of the fused list with the trained recommendation reranker (only
    /// `enabled` and `depth` apply). Absent: reranked when the generation's manifest enables it
    /// by default (its gain on held-out next items held up), else not.
    #[serde(default)]
    pub rerank: Option<RerankOptions>,
    /// Add the history items behind each score.
    #[serde(default)]
    pub explain: bool,
}

impl RecommendRequest {
    /// A hybrid recommendation for `user` with every other option at its default.
    pub fn new(user: impl Into<String>) -> Self {
        RecommendRequest {
            user: user.into(),
            k: default_k(),
            exclude_seen: true,
            mode: RecommendMode::default(),
            cold_items: default_recommend_cold_items(),
            filters: Filters::new(),
            fusion: Fusion::default(),
            weights: Weights::default(),
            candidates: default_candidates(),
            recent: default_recent(),
            rerank: None,
            explain: false,
        }
    }
}

/// Measured on MovieLens (validation split carved from training data): sharing CF's weight with
/// weak content evidence filled the top 20 with cold items and cut Recall@20 from 0.20 to 0.05.
fn default_recommend_cold_items() -> ColdItems {
    ColdItems::Ignore
}

fn default_recent() -> usize {
    20
}

/// A similar-items request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimilarRequest {
    /// The seed item's id.
    pub item: String,
    /// Items to return.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Field conditions.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub filters: Filters,
    /// Fusion of content and CF neighbours.
    #[serde(default)]
    pub fusion: Fusion,
    /// `dense` and `cf` weights.
    #[serde(default)]
    pub weights: Weights,
    /// Candidates per retriever.
    #[serde(default = "default_candidates")]
    pub candidates: usize,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hit {
    /// Item id.
    pub id: String,
    /// Item title.
    pub title: String,
    /// Item fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldValue>,
    /// Final score (equals `breakdown.final_score`).
    pub score: f64,
    /// How the score was composed.
    pub breakdown: ScoreBreakdown,
    /// Detail trees, when `explain` was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<Explanation>,
}

/// Milliseconds per stage of one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    /// Query encoding.
    pub embed_ms: f64,
    /// Per retriever.
    pub retrieve_ms: BTreeMap<String, f64>,
    /// Fusion.
    pub fusion_ms: f64,
    /// Rerank.
    pub rerank_ms: f64,
    /// Whole request inside the engine.
    pub total_ms: f64,
}

/// Hits and how they were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Results {
    /// Best first.
    pub hits: Vec<Hit>,
    /// The generation that answered.
    pub generation: String,
    /// Where the time went.
    pub timings: Timings,
}

/// CF item factors, searchable: the generation's own, or those of a model trained without some
/// interactions (the reranker trainer replays users as they were before their held-out items).
pub struct CfItems {
    index: VectorIndex,
    /// Items without training interactions (all-zero factors): CF abstains on them.
    cold: Arc<Vec<bool>>,
}

impl CfItems {
    fn new(index: VectorIndex) -> Self {
        let cold = Arc::new(index.vectors().chunks_exact(index.dim()).map(|v| v.iter().all(|&x| x == 0.0)).collect());
        CfItems { index, cold }
    }

    /// Indexes item factors for inner-product search.
    pub fn build(factors: &Factors, hnsw: HnswSettings) -> Result<Self> {
        Ok(Self::new(VectorIndex::build(factors.data.clone(), factors.dim, Metric::InnerProduct, hnsw)?))
    }

    /// The top `n` items for user (or item) factors `query`, as CF's ranked list.
    fn search(
        &self,
        query: &[f32],
        n: usize,
        allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
        cold_items: ColdItems,
    ) -> Result<RankedList> {
        let hits = self.index.search(query, n, allow)?;
        let abstaining = (cold_items == ColdItems::Share).then(|| Arc::clone(&self.cold));
        Ok(RankedList { retriever: RetrieverKind::Cf, hits, abstaining })
    }
}

/// Everything CF needs at query time.
struct Collaborative {
    items: CfItems,
    /// User and item factors (the item factors also live in `items`, which owns its copy).
    model: AlsModel,
    /// `YᵀY + λI`, shared by every explanation.
    gram: Vec<f64>,
}

/// A user as the recommender sees them: the stored user, or (for the reranker trainer) a user
/// replayed as of an earlier moment.
pub struct UserView<'a> {
    /// What they interacted with: excluded from recommendations when asked, and the recent
    /// part forms the content profile and the reranker's context.
    pub history: &'a [Interaction],
    /// Items kept out of the candidates besides the history (the trainer hides a user's other
    /// held-out items).
    pub hidden: Option<&'a HashSet<u32>>,
    /// CF factors in the space of `cf_items`; `None`: no CF list.
    pub factors: Option<&'a [f32]>,
    /// The item factors `factors` belong to; `None`: the generation's.
    pub cf_items: Option<&'a CfItems>,
}

/// An opened, immutable generation.
pub struct Engine {
    dir: PathBuf,
    manifest: Manifest,
    embedder: Arc<Embedder>,
    lexical: LexicalIndex,
    dense: VectorIndex,
    cf: Option<Collaborative>,
    store: Box<dyn MetaStore>,
    ids: Vec<String>,
    fields: Vec<BTreeMap<String, FieldValue>>,
    field_names: HashSet<String>,
    reranker: Box<dyn Reranker>,
    /// The generation's trained cross-encoder and how to combine its logit, when it has one.
    trained: Option<TrainedReranker>,
    /// The same for recommendations, reading the user's recent titles as the query.
    recommend_trained: Option<TrainedReranker>,
    /// How rerank workers are set up, once a server asked for them: kept so that a later
    /// generation's rerankers get workers too, even if this one had none to run.
    rerank_worker_settings: Option<BatcherSettings>,
    /// Query text → embedding. Handed on to the next generation by [`Engine::open_next`] and
    /// cleared there, so hit counts accumulate while entries never outlive their generation.
    query_cache: Arc<Cache<String, Arc<Vec<f32>>>>,
    /// The model worker queries go through, when one is set (servers); else the calling thread
    /// encodes (batch jobs, tests).
    query_batcher: Option<Arc<QueryBatcher>>,
}

/// A generation's trained reranker, loaded.
struct TrainedReranker {
    model: Arc<CrossEncoder>,
    manifest: RerankerManifest,
    /// The model worker pairs go through, when one is set.
    worker: Option<Arc<RerankWorker>>,
}

/// A fused candidate with the features the learned combination reads (the rerank logit not yet
/// filled in): what the reranker trainer mines negatives from and fits the combination on.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Item id.
    pub id: String,
    /// Title and text, as the reranker reads them.
    pub content: String,
    /// The fused score.
    pub fused_score: f64,
    /// Normalised retriever scores.
    pub features: Features,
}

/// Each retriever's score range over its own candidate list, for min-max normalisation.
struct ScoreRanges(Vec<(RetrieverKind, ScoreRange)>);

impl ScoreRanges {
    fn of(lists: &[RankedList]) -> Self {
        ScoreRanges(lists.iter().map(|list| (list.retriever, ScoreRange::of(list))).collect())
    }

    /// The hit's retriever scores normalised within each list as linear fusion does; 0 for a
    /// retriever that did not return it.
    fn features(&self, hit: &FusedHit) -> Features {
        let mut features = Features::default();
        for part in &hit.parts {
            let Some((_, range)) = self.0.iter().find(|(kind, _)| *kind == part.retriever) else {
                continue;
            };
            let value = range.normalize(part.raw_score) as f32;
            match part.retriever {
                RetrieverKind::Bm25 => features.bm25 = value,
                RetrieverKind::Dense => features.dense = value,
                RetrieverKind::Cf => features.cf = value,
            }
        }
        features
    }
}

/// What the rerank stage does for one search.
enum RerankPlan<'a> {
    None,
    LateInteraction { depth: usize, weight: f64 },
    Trained { depth: usize, reranker: &'a TrainedReranker },
}

/// The retrievers' fused output for one search.
struct Retrieved<'a> {
    query: Option<&'a str>,
    user: Option<UserRecord>,
    fused: Vec<FusedHit>,
    ranges: ScoreRanges,
    fusion_name: &'static str,
}

/// Query embeddings an engine keeps unless told otherwise (384 floats each: ~16 MiB).
pub const DEFAULT_QUERY_CACHE_ENTRIES: usize = 10_000;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Writes factors as little-endian f32, the layout [`Engine`] reads.
pub fn write_factors(path: &Path, factors: &Factors) -> Result<()> {
    write_f32_file(path, &factors.data)
}

fn check_rerank_depth(depth: usize) -> Result<usize> {
    if depth == 0 || depth > MAX_RERANK {
        return Err(Error::invalid("rerank.depth", format!("must be between 1 and {MAX_RERANK}")));
    }
    Ok(depth)
}

/// Reranked hits, best first (ties by id), cut to `k`. A reranked score is only comparable
/// among hits that were all reranked, which is why `max(depth, k)` hits are reranked.
fn best_first(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    hits.truncate(k);
    hits
}

fn check_k(k: usize, candidates: usize) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(Error::invalid("k", format!("must be between 1 and {MAX_K}, got {k}")));
    }
    if candidates == 0 || candidates > MAX_CANDIDATES {
        return Err(Error::invalid("candidates", format!("must be between 1 and {MAX_CANDIDATES}, got {candidates}")));
    }
    Ok(())
}

impl Engine {
    /// Opens the generation `CURRENT` points at under `index_dir`, loading the model.
    /// Queries are truncated at the token limit the generation's items were embedded with.
    pub fn open(index_dir: &Path, embedder: &EmbedderSettings) -> Result<Self> {
        let manifest = generation::read_manifest(&generation::current(index_dir)?)?;
        let settings = EmbedderSettings { max_tokens: manifest.max_tokens, ..embedder.clone() };
        let embedder = Arc::new(Embedder::load(&settings)?);
        Self::open_with(index_dir, embedder)
    }

    /// Opens the current generation with an already loaded model (shared across generations).
    pub fn open_with(index_dir: &Path, embedder: Arc<Embedder>) -> Result<Self> {
        Self::open_generation(&generation::current(index_dir)?, embedder)
    }

    /// Opens the generation `CURRENT` points at now, if it is not `serving`'s: `Ok(None)` when
    /// nothing new was published. The model is shared with `serving` (the same weights are
    /// required anyway) unless the new generation embedded with another token limit, and so is
    /// the query cache. Any failure leaves `serving` untouched for the caller to keep.
    pub fn open_next(index_dir: &Path, serving: &Engine) -> Result<Option<Engine>> {
        let dir = generation::current(index_dir)?;
        if dir == serving.dir {
            return Ok(None);
        }
        let manifest = generation::read_manifest(&dir)?;
        let embedder = if manifest.max_tokens == serving.embedder.settings().max_tokens {
            Arc::clone(&serving.embedder)
        } else {
            let settings = EmbedderSettings { max_tokens: manifest.max_tokens, ..serving.embedder.settings().clone() };
            Arc::new(Embedder::load(&settings)?)
        };
        let mut next = Self::open_generation(&dir, embedder)?;
        next.query_cache = Arc::clone(&serving.query_cache);
        next.query_cache.clear();
        // The worker encodes with the serving model; keep it only if the model is the same.
        if Arc::ptr_eq(&next.embedder, &serving.embedder) {
            next.query_batcher = serving.query_batcher.clone();
        } else if let Some(old) = &serving.query_batcher {
            let worker = QueryBatcher::spawn(Arc::clone(&next.embedder), old.settings())?;
            worker.continue_from(old.stats());
            next.query_batcher = Some(Arc::new(worker));
        }
        // The new generation's rerankers are their own models: they get their own workers, set
        // up as the serving ones were (also when the serving generation had no reranker yet),
        // counting on from the old workers' totals.
        if let Some(settings) = serving.rerank_worker_settings {
            next.start_rerank_worker(settings)?;
            let pairs = [
                (next.rerank_worker(), serving.rerank_worker()),
                (next.recommend_rerank_worker(), serving.recommend_rerank_worker()),
            ];
            for (new, old) in pairs {
                if let (Some(new), Some(old)) = (new, old) {
                    new.continue_from(old.stats());
                }
            }
        }
        Ok(Some(next))
    }

    /// Opens one generation folder.
    pub fn open_generation(dir: &Path, embedder: Arc<Embedder>) -> Result<Self> {
        let manifest = generation::read_manifest(dir)?;
        let loaded = embedder.identity();
        if manifest.model.sha256 != loaded.sha256 {
            return Err(Error::ModelMismatch {
                index_model: manifest.model.name.clone(),
                index_sha: manifest.model.sha256.clone(),
                loaded_model: loaded.name.clone(),
                loaded_sha: loaded.sha256.clone(),
            });
        }
        let lexical = LexicalIndex::open(&dir.join(files::LEXICAL), manifest.lexical)?;
        let dense = VectorIndex::load(dir, files::DENSE, manifest.model.dim, Metric::Cosine, manifest.hnsw)?;
        let cf = match &manifest.cf {
            Some(settings) => {
                let items =
                    VectorIndex::load(dir, files::CF_ITEMS, settings.factors, Metric::InnerProduct, manifest.hnsw)?;
                let user_factors = Factors {
                    data: read_f32_file(&dir.join(files::CF_USERS), settings.factors)?,
                    dim: settings.factors,
                };
                let item_factors = Factors { data: items.vectors().to_vec(), dim: settings.factors };
                let model = AlsModel { user_factors, item_factors, settings: settings.clone() };
                let gram = cf::item_gramian(&model);
                Some(Collaborative { items: CfItems::new(items), model, gram })
            }
            None => None,
        };
        let store = SnapshotStore::load(&dir.join(files::STORE))?;
        let items = store.items()?;
        if items.len() != manifest.counts.items || items.len() != dense.len() {
            return Err(Error::BadIndex {
                path: dir.to_path_buf(),
                reason: format!(
                    "manifest counts {} items, the store holds {}, the dense index {}",
                    manifest.counts.items,
                    items.len(),
                    dense.len()
                ),
            });
        }
        let mut ids = Vec::with_capacity(items.len());
        let mut fields = Vec::with_capacity(items.len());
        let mut field_names = HashSet::new();
        for (position, (index, item)) in items.into_iter().enumerate() {
            if index as usize != position {
                return Err(Error::BadIndex {
                    path: dir.to_path_buf(),
                    reason: format!("item indexes are not dense at {position}"),
                });
            }
            field_names.extend(item.fields.keys().cloned());
            ids.push(item.id);
            fields.push(item.fields);
        }
        let reranker = Box::new(LateInteractionReranker::new(Arc::clone(&embedder)));
        let load_trained = |entry: &Option<RerankerManifest>| -> Result<Option<TrainedReranker>> {
            let Some(entry) = entry else { return Ok(None) };
            if entry.base_model_sha256 != manifest.model.sha256 {
                return Err(Error::BadIndex {
                    path: dir.to_path_buf(),
                    reason: format!("{} was trained on another base model than the generation's", entry.file),
                });
            }
            let model = CrossEncoder::load(&embedder, &dir.join(&entry.file), entry.shape)?;
            Ok(Some(TrainedReranker { model: Arc::new(model), manifest: entry.clone(), worker: None }))
        };
        let trained = load_trained(&manifest.reranker)?;
        let recommend_trained = load_trained(&manifest.recommend_reranker)?;
        if recommend_trained.as_ref().is_some_and(|t| t.manifest.context.is_none()) {
            return Err(Error::BadIndex {
                path: dir.to_path_buf(),
                reason: "the recommendation reranker's manifest entry has no context settings".into(),
            });
        }
        tracing::info!(
            generation = %manifest.generation,
            items = ids.len(),
            cf = cf.is_some(),
            reranker = trained.as_ref().map(|t| if t.manifest.enabled_by_default { "trained, on by default" } else { "trained, opt-in" }),
            recommend_reranker = recommend_trained.as_ref().map(|t| if t.manifest.enabled_by_default { "trained, on by default" } else { "trained, opt-in" }),
            "generation opened"
        );
        Ok(Engine {
            dir: dir.to_path_buf(),
            manifest,
            embedder,
            lexical,
            dense,
            cf,
            store: Box::new(store),
            ids,
            fields,
            field_names,
            reranker,
            trained,
            recommend_trained,
            rerank_worker_settings: None,
            query_cache: Arc::new(Cache::new(DEFAULT_QUERY_CACHE_ENTRIES)),
            query_batcher: None,
        })
    }

    /// The generation's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The generation's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shared embedding model.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Sets how many query embeddings to keep (0 turns the cache off); drops what it held.
    pub fn set_query_cache_entries(&mut self, entries: usize) {
        self.query_cache = Arc::new(Cache::new(entries));
    }

    /// Hits and misses of the query-embedding cache.
    pub fn query_cache_stats(&self) -> CacheStats {
        self.query_cache.stats()
    }

    /// Sends query encoding through a model worker that batches concurrent queries.
    pub fn set_query_batcher(&mut self, batcher: Arc<QueryBatcher>) {
        self.query_batcher = Some(batcher);
    }

    /// The model worker, if one is set.
    pub fn query_batcher(&self) -> Option<&Arc<QueryBatcher>> {
        self.query_batcher.as_ref()
    }

    /// The query's embedding, from the cache when this generation has seen the text before.
    fn embed_query(&self, query: &str) -> Result<Arc<Vec<f32>>> {
        self.query_cache.get_or_try(query.to_string(), || {
            match &self.query_batcher {
                Some(batcher) => batcher.encode(query),
                None => self.embedder.embed(query),
            }
            .map(Arc::new)
        })
    }

    /// Replaces the rerank stage.
    pub fn set_reranker(&mut self, reranker: Box<dyn Reranker>) {
        self.reranker = reranker;
    }

    /// The item with this id.
    pub fn item(&self, id: &str) -> Result<Item> {
        let index = self.index_of(id)?;
        self.item_at(index)
    }

    fn index_of(&self, id: &str) -> Result<u32> {
        self.store.item_index(id)?.ok_or_else(|| Error::UnknownItem { id: id.to_string() })
    }

    fn item_at(&self, index: u32) -> Result<Item> {
        self.store.item(index)?.ok_or_else(|| Error::BadIndex {
            path: self.dir.clone(),
            reason: format!("item index {index} is missing from the store"),
        })
    }

    /// The user with this id.
    pub fn user(&self, id: &str) -> Result<UserRecord> {
        self.store.user(id)?.ok_or_else(|| Error::UnknownUser { id: id.to_string() })
    }

    /// Every user with their history, ordered by id.
    pub fn users(&self) -> Result<Vec<UserRecord>> {
        self.store.users()
    }

    fn collaborative(&self) -> Result<&Collaborative> {
        self.cf.as_ref().ok_or_else(|| Error::Unavailable {
            what: "collaborative filtering".into(),
            reason: "the generation was built without interactions".into(),
        })
    }

    /// `allowed[i]` for every item, or `None` when there are no filters.
    fn allowed(&self, filters: &Filters) -> Result<Option<Arc<Vec<bool>>>> {
        if filters.is_empty() {
            return Ok(None);
        }
        for (name, condition) in filters {
            if !self.field_names.contains(name) {
                let mut known: Vec<&str> = self.field_names.iter().map(String::as_str).collect();
                known.sort();
                return Err(Error::invalid(
                    format!("filters.{name}"),
                    format!("no item has this field; fields are {known:?}"),
                ));
            }
            if let Some(problem) = condition.problem() {
                return Err(Error::invalid(format!("filters.{name}"), problem));
            }
        }
        Ok(Some(Arc::new(self.fields.iter().map(|f| matches_all(filters, f)).collect())))
    }

    /// A hit whose final score is the fused score plus the rerank contribution, or the learned
    /// combination when there is one.
    fn hit(
        &self,
        fused: &FusedHit,
        fusion: &str,
        rerank: Option<RerankScore>,
        combination: Option<CombinedScore>,
    ) -> Result<Hit> {
        let item = self.item_at(fused.item)?;
        let final_score = match &combination {
            Some(combined) => combined.bias + combined.features.iter().map(|f| f.contribution).sum::<f64>(),
            None => fused.score + rerank.as_ref().map_or(0.0, |r| r.contribution),
        };
        Ok(Hit {
            id: item.id,
            title: item.title,
            fields: item.fields,
            score: final_score,
            breakdown: ScoreBreakdown {
                fusion: fusion.to_string(),
                retrievers: fused.parts.clone(),
                abstained: fused.abstained.clone(),
                fused_score: fused.score,
                rerank,
                combination,
                final_score,
            },
            explanations: Vec::new(),
        })
    }

    fn user_vector<'a>(&self, cf: &'a Collaborative, user: &UserRecord) -> Result<&'a [f32]> {
        let users = &cf.model.user_factors;
        let start = user.index as usize * users.dim;
        users.data.get(start..start + users.dim).ok_or_else(|| Error::BadIndex {
            path: self.dir.clone(),
            reason: format!("user {} has no factors", user.id),
        })
    }

    fn history(user: &UserRecord) -> Vec<(u32, f32)> {
        user.history.iter().map(|i| (i.item, i.weight)).collect()
    }

    /// The CF explanation tree of `item`, from an explainer built once per request.
    fn cf_explanation(&self, explainer: &cf::UserExplainer<'_>, item: u32) -> Explanation {
        explainer.tree(item, 5, |j| self.ids.get(j as usize).cloned().unwrap_or_default())
    }

    /// Checks a search's retrievers against what it gives (query, user), then runs them and
    /// fuses their lists.
    fn retrieve<'a>(&self, request: &'a SearchRequest, timings: &mut Timings) -> Result<Retrieved<'a>> {
        check_k(request.k, request.candidates)?;
        let query = request.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
        let user = request.user.as_deref().map(|id| self.user(id)).transpose()?;
        let retrievers: Vec<RetrieverKind> = match (request.mode, query.is_some(), user.is_some()) {
            (Mode::Bm25 | Mode::Dense | Mode::Hybrid, false, false) => {
                return Err(Error::invalid("query", "a non-empty query is required (or a user, for cf and hybrid)"));
            }
            (Mode::Bm25 | Mode::Dense, false, true) => {
                return Err(Error::invalid("query", "bm25 and dense modes need a non-empty query"));
            }
            (Mode::Cf, _, false) => return Err(Error::invalid("user", "cf mode needs a user")),
            (Mode::Bm25, true, _) => vec![RetrieverKind::Bm25],
            (Mode::Dense, true, _) => vec![RetrieverKind::Dense],
            (Mode::Cf, _, true) => vec![RetrieverKind::Cf],
            (Mode::Hybrid, q, u) => {
                let mut kinds = Vec::new();
                if q {
                    kinds.extend([RetrieverKind::Bm25, RetrieverKind::Dense]);
                }
                if u && self.cf.is_some() {
                    kinds.push(RetrieverKind::Cf);
                }
                kinds
            }
        };
        let allowed = self.allowed(&request.filters)?;
        let allow_fn = allowed.clone().map(|a| move |i: u32| a.get(i as usize).copied().unwrap_or(false));
        let allow_ref: Option<&(dyn Fn(u32) -> bool + Sync)> = allow_fn.as_ref().map(|f| f as _);
        let mut lists = Vec::new();
        for kind in &retrievers {
            let t = Instant::now();
            let list = match kind {
                RetrieverKind::Bm25 => RankedList::new(
                    *kind,
                    self.lexical.search(query.unwrap_or_default(), request.candidates, allowed.clone())?,
                ),
                RetrieverKind::Dense => {
                    let e = Instant::now();
                    let vector = self.embed_query(query.unwrap_or_default())?;
                    timings.embed_ms = ms(e);
                    RankedList::new(*kind, self.dense.search(&vector, request.candidates, allow_ref)?)
                }
                RetrieverKind::Cf => {
                    let cf = self.collaborative()?;
                    let user = user.as_ref().expect("cf runs only with a user");
                    cf.items.search(self.user_vector(cf, user)?, request.candidates, allow_ref, request.cold_items)?
                }
            };
            timings.retrieve_ms.insert(kind.name().to_string(), ms(t));
            lists.push(list);
        }
        let t = Instant::now();
        let weights: Vec<f64> = retrievers.iter().map(|&k| request.weights.of(k)).collect();
        let fused = fuse(&lists, &weights, &request.fusion)?;
        timings.fusion_ms = ms(t);
        let fusion_name = if lists.len() == 1 { "single" } else { request.fusion.name() };
        Ok(Retrieved { query, user, fused, ranges: ScoreRanges::of(&lists), fusion_name })
    }

    /// What the rerank stage does: as asked, or the generation's default.
    fn rerank_plan(&self, request: &SearchRequest, query: Option<&str>) -> Result<RerankPlan<'_>> {
        let options = match &request.rerank {
            None => {
                return Ok(match (&self.trained, query) {
                    (Some(trained), Some(_)) if trained.manifest.enabled_by_default => {
                        RerankPlan::Trained { depth: trained.manifest.depth, reranker: trained }
                    }
                    _ => RerankPlan::None,
                });
            }
            Some(options) if !options.enabled => return Ok(RerankPlan::None),
            Some(options) => options,
        };
        if query.is_none() {
            return Err(Error::invalid("rerank", "reranking needs a query"));
        }
        let kind = options.reranker.unwrap_or(if self.trained.is_some() {
            RerankerKind::Trained
        } else {
            RerankerKind::LateInteraction
        });
        match kind {
            RerankerKind::Trained => {
                let trained = self.trained.as_ref().ok_or_else(|| Error::Unavailable {
                    what: "the trained reranker".into(),
                    reason: "this generation has none; train one with `hyrank train-reranker`".into(),
                })?;
                Ok(RerankPlan::Trained {
                    depth: check_rerank_depth(options.depth.unwrap_or(trained.manifest.depth))?,
                    reranker: trained,
                })
            }
            RerankerKind::LateInteraction => {
                if !options.weight.is_finite() || options.weight < 0.0 {
                    return Err(Error::invalid("rerank.weight", "must be a finite, non-negative number"));
                }
                Ok(RerankPlan::LateInteraction {
                    depth: check_rerank_depth(options.depth.unwrap_or(DEFAULT_LATE_INTERACTION_DEPTH))?,
                    weight: options.weight,
                })
            }
        }
    }

    /// The top `depth` fused candidates of `request` (rerank settings ignored), with the
    /// features the learned combination reads.
    pub fn candidates(&self, request: &SearchRequest, depth: usize) -> Result<Vec<Candidate>> {
        let retrieved = self.retrieve(request, &mut Timings::default())?;
        self.candidates_of(&retrieved, depth)
    }

    fn candidates_of(&self, retrieved: &Retrieved<'_>, depth: usize) -> Result<Vec<Candidate>> {
        retrieved
            .fused
            .iter()
            .take(depth)
            .map(|hit| {
                let item = self.item_at(hit.item)?;
                Ok(Candidate {
                    content: item.content(),
                    id: item.id,
                    fused_score: hit.score,
                    features: retrieved.ranges.features(hit),
                })
            })
            .collect()
    }

    /// Number of items in the generation.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the generation holds no items.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The trained reranker's manifest entry, when the generation has one.
    pub fn trained_reranker(&self) -> Option<&RerankerManifest> {
        self.trained.as_ref().map(|t| &t.manifest)
    }

    /// The trained recommendation reranker's manifest entry, when the generation has one.
    pub fn trained_recommend_reranker(&self) -> Option<&RerankerManifest> {
        self.recommend_trained.as_ref().map(|t| &t.manifest)
    }

    /// Sends trained-reranker scoring through model workers (one per trained reranker) that
    /// batch concurrent requests' pairs; does nothing when the generation has no trained reranker.
    pub fn start_rerank_worker(&mut self, settings: BatcherSettings) -> Result<()> {
        self.rerank_worker_settings = Some(settings);
        for trained in [&mut self.trained, &mut self.recommend_trained].into_iter().flatten() {
            trained.worker = Some(Arc::new(RerankWorker::spawn(Arc::clone(&trained.model), settings)?));
        }
        Ok(())
    }

    /// The search reranker's model worker, if one runs.
    pub fn rerank_worker(&self) -> Option<&Arc<RerankWorker>> {
        self.trained.as_ref().and_then(|t| t.worker.as_ref())
    }

    /// The recommendation reranker's model worker, if one runs.
    pub fn recommend_rerank_worker(&self) -> Option<&Arc<RerankWorker>> {
        self.recommend_trained.as_ref().and_then(|t| t.worker.as_ref())
    }

    /// Reranks `window` with a trained reranker: its logit for each (query, item) pair, combined
    /// with the retriever features by the learned weights. Hits come back in window order.
    fn rerank_trained(
        &self,
        reranker: &TrainedReranker,
        query: &str,
        window: &[&FusedHit],
        ranges: &ScoreRanges,
        fusion_name: &str,
    ) -> Result<Vec<Hit>> {
        let items = window.iter().map(|h| self.item_at(h.item)).collect::<Result<Vec<_>>>()?;
        let contents: Vec<String> = items.iter().map(Item::content).collect();
        let texts: Vec<&str> = contents.iter().map(String::as_str).collect();
        let logits = match &reranker.worker {
            Some(worker) => worker.score(query, &texts)?,
            None => reranker.model.score(query, &texts)?,
        };
        let combination = &reranker.manifest.combination;
        let weight = combination.weights.get("rerank").copied().unwrap_or(0.0);
        window
            .iter()
            .zip(logits)
            .map(|(fused, logit)| {
                let features = Features { rerank: logit, ..ranges.features(fused) };
                let (_, parts) = combination.apply(&features);
                let rerank = RerankScore {
                    reranker: "cross_encoder".to_string(),
                    raw_score: logit,
                    weight,
                    contribution: weight * f64::from(logit),
                };
                let combined = CombinedScore { bias: combination.bias, features: parts };
                self.hit(fused, fusion_name, Some(rerank), Some(combined))
            })
            .collect()
    }

    /// Runs a search.
    #[tracing::instrument(skip_all, fields(k = request.k, mode = ?request.mode))]
    pub fn search(&self, request: &SearchRequest) -> Result<Results> {
        let start = Instant::now();
        let mut timings = Timings::default();
        let Retrieved { query, user, fused, ranges, fusion_name } = self.retrieve(request, &mut timings)?;
        let plan = self.rerank_plan(request, query)?;
        let reranked = !matches!(plan, RerankPlan::None);
        let t = Instant::now();
        let mut hits = match (plan, query) {
            (RerankPlan::LateInteraction { depth, weight }, Some(query)) => {
                let window: Vec<&FusedHit> = fused.iter().take(depth.max(request.k)).collect();
                let items = window.iter().map(|h| self.item_at(h.item)).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Item> = items.iter().collect();
                let scores = self.reranker.score(query, &refs)?;
                window
                    .iter()
                    .zip(scores)
                    .map(|(fused, raw)| {
                        let rerank = RerankScore {
                            reranker: self.reranker.name().to_string(),
                            raw_score: raw,
                            weight,
                            contribution: weight * f64::from(raw),
                        };
                        self.hit(fused, fusion_name, Some(rerank), None)
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            (RerankPlan::Trained { depth, reranker }, Some(query)) => {
                let window: Vec<&FusedHit> = fused.iter().take(depth.max(request.k)).collect();
                self.rerank_trained(reranker, query, &window, &ranges, fusion_name)?
            }
            _ => fused
                .iter()
                .take(request.k)
                .map(|f| self.hit(f, fusion_name, None, None))
                .collect::<Result<Vec<_>>>()?,
        };
        if reranked {
            hits = best_first(hits, request.k);
            timings.rerank_ms = ms(t);
        }
        if request.explain {
            let history = user.as_ref().map(Self::history).unwrap_or_default();
            let explainer = match (&user, &self.cf) {
                (Some(_), Some(cf)) => cf::UserExplainer::new(&cf.model, &cf.gram, &history),
                _ => None,
            };
            for hit in &mut hits {
                let index = self.index_of(&hit.id)?;
                if let Some(query) = query {
                    if let Some(tree) = self.lexical.explain(query, index)? {
                        hit.explanations.push(Explanation::node("bm25", tree.value, vec![tree]));
                    }
                }
                if let Some(explainer) = &explainer {
                    hit.explanations.push(self.cf_explanation(explainer, index));
                }
            }
        }
        timings.total_ms = ms(start);
        Ok(Results { hits, generation: self.manifest.generation.clone(), timings })
    }

    /// Recommends items for a user: CF candidates fused with content candidates near the user's
    /// recent history, so that items nobody has interacted with can still be recommended; then,
    /// when asked or enabled by the generation, the trained recommendation reranker reads the
    /// user's recent titles against each of the top candidates.
    #[tracing::instrument(skip_all, fields(k = request.k))]
    pub fn recommend(&self, request: &RecommendRequest) -> Result<Results> {
        let start = Instant::now();
        let cf = self.collaborative()?;
        let user = self.user(&request.user)?;
        let view = UserView {
            history: &user.history,
            hidden: None,
            factors: Some(self.user_vector(cf, &user)?),
            cf_items: None,
        };
        let mut timings = Timings::default();
        let Retrieved { fused, ranges, fusion_name, .. } = self.recommend_retrieve(&view, request, &mut timings)?;
        let t = Instant::now();
        let mut hits = match self.recommend_rerank_plan(request)? {
            Some((depth, reranker)) => {
                let titles = reranker.manifest.context.map_or(0, |c| c.titles);
                let context = self.recommend_context(view.history, titles)?;
                let window: Vec<&FusedHit> = fused.iter().take(depth.max(request.k)).collect();
                let hits =
                    best_first(self.rerank_trained(reranker, &context, &window, &ranges, fusion_name)?, request.k);
                timings.rerank_ms = ms(t);
                hits
            }
            None => fused
                .iter()
                .take(request.k)
                .map(|f| self.hit(f, fusion_name, None, None))
                .collect::<Result<Vec<_>>>()?,
        };
        if request.explain {
            let history = Self::history(&user);
            let explainer = cf::UserExplainer::new(&cf.model, &cf.gram, &history);
            for hit in &mut hits {
                let item = self.index_of(&hit.id)?;
                if let Some(explainer) = &explainer {
                    hit.explanations.push(self.cf_explanation(explainer, item));
                }
                hit.explanations.push(self.content_explanation(&user.history, item, request.recent));
            }
        }
        timings.total_ms = ms(start);
        Ok(Results { hits, generation: self.manifest.generation.clone(), timings })
    }

    /// The top `depth` fused recommendation candidates for a user view (rerank settings
    /// ignored), with the features the learned combination reads: what the recommendation
    /// reranker trainer mines negatives from and validates on.
    pub fn recommend_candidates(
        &self,
        view: &UserView<'_>,
        request: &RecommendRequest,
        depth: usize,
    ) -> Result<Vec<Candidate>> {
        let retrieved = self.recommend_retrieve(view, request, &mut Timings::default())?;
        self.candidates_of(&retrieved, depth)
    }

    /// The text the recommendation reranker reads as its query: the titles of the user's
    /// `titles` most recent history items, most recent first.
    pub fn recommend_context(&self, history: &[Interaction], titles: usize) -> Result<String> {
        let titles = Self::recent_items(history, titles)
            .into_iter()
            .map(|(item, _)| self.item_at(item).map(|i| i.title))
            .collect::<Result<Vec<_>>>()?;
        Ok(titles.join("; "))
    }

    /// Runs the recommendation retrievers for a user view and fuses their lists.
    fn recommend_retrieve(
        &self,
        view: &UserView<'_>,
        request: &RecommendRequest,
        timings: &mut Timings,
    ) -> Result<Retrieved<'static>> {
        check_k(request.k, request.candidates)?;
        if request.recent == 0 {
            return Err(Error::invalid("recent", "must be at least 1"));
        }
        let cf = self.collaborative()?;
        let cf_items = view.cf_items.unwrap_or(&cf.items);
        let seen: HashSet<u32> = view.history.iter().map(|i| i.item).collect();
        let allowed = self.allowed(&request.filters)?;
        let exclude_seen = request.exclude_seen;
        let allow = |i: u32| {
            view.hidden.is_none_or(|hidden| !hidden.contains(&i))
                && !(exclude_seen && seen.contains(&i))
                && allowed.as_ref().is_none_or(|a| a.get(i as usize).copied().unwrap_or(false))
        };
        let mut lists = Vec::new();
        if let (true, Some(factors)) = (request.mode != RecommendMode::Content, view.factors) {
            let t = Instant::now();
            lists.push(cf_items.search(factors, request.candidates, Some(&allow), request.cold_items)?);
            timings.retrieve_ms.insert("cf".into(), ms(t));
        }
        if request.mode != RecommendMode::Cf {
            let t = Instant::now();
            let content_hits = match self.profile(view.history, request.recent) {
                Some(profile) => self.dense.search(&profile, request.candidates, Some(&allow))?,
                None => Vec::new(),
            };
            lists.push(RankedList::new(RetrieverKind::Dense, content_hits));
            timings.retrieve_ms.insert("dense".into(), ms(t));
        }
        let weights: Vec<f64> = lists
            .iter()
            .map(|l| match l.retriever {
                RetrieverKind::Dense => request.weights.given(RetrieverKind::Dense).unwrap_or(RECOMMEND_CONTENT_WEIGHT),
                kind => request.weights.of(kind),
            })
            .collect();
        let t = Instant::now();
        let fused = fuse(&lists, &weights, &request.fusion)?;
        timings.fusion_ms = ms(t);
        let fusion_name = if lists.len() == 1 { "single" } else { request.fusion.name() };
        Ok(Retrieved { query: None, user: None, fused, ranges: ScoreRanges::of(&lists), fusion_name })
    }

    /// What the rerank stage of a recommendation does: as asked, or the generation's default.
    fn recommend_rerank_plan(&self, request: &RecommendRequest) -> Result<Option<(usize, &TrainedReranker)>> {
        let options = match &request.rerank {
            None => {
                return Ok(self
                    .recommend_trained
                    .as_ref()
                    .filter(|t| t.manifest.enabled_by_default)
                    .map(|t| (t.manifest.depth, t)))
            }
            Some(options) if !options.enabled => return Ok(None),
            Some(options) => options,
        };
        if options.reranker == Some(RerankerKind::LateInteraction) {
            return Err(Error::invalid(
                "rerank.reranker",
                "late_interaction reranks searches only; recommendations use the trained recommendation reranker",
            ));
        }
        let trained = self.recommend_trained.as_ref().ok_or_else(|| Error::Unavailable {
            what: "the trained recommendation reranker".into(),
            reason: "this generation has none; train one with `hyrank train-reranker --interactions`".into(),
        })?;
        Ok(Some((check_rerank_depth(options.depth.unwrap_or(trained.manifest.depth))?, trained)))
    }

    /// The user's most recent history items (by timestamp, then input order).
    fn recent_items(history: &[Interaction], recent: usize) -> Vec<(u32, f32)> {
        let mut history: Vec<(usize, &Interaction)> = history.iter().enumerate().collect();
        history.sort_by_key(|(position, i)| (std::cmp::Reverse(i.timestamp), std::cmp::Reverse(*position)));
        history.into_iter().take(recent).map(|(_, i)| (i.item, i.weight)).collect()
    }

    /// The normalised, weight-averaged embedding of the user's recent items.
    fn profile(&self, history: &[Interaction], recent: usize) -> Option<Vec<f32>> {
        let mut profile = vec![0f32; self.dense.dim()];
        for (item, weight) in Self::recent_items(history, recent) {
            for (p, v) in profile.iter_mut().zip(self.dense.vector(item)?) {
                *p += weight.max(0.0) * v;
            }
        }
        let norm = profile.iter().map(|v| v * v).sum::<f32>().sqrt();
        (norm > 0.0).then(|| profile.into_iter().map(|v| v / norm).collect())
    }

    /// Which recent history items are nearest in content to the recommended item.
    fn content_explanation(&self, history: &[Interaction], item: u32, recent: usize) -> Explanation {
        let target = self.dense.vector(item).unwrap_or_default();
        let mut near: Vec<(u32, f32)> = Self::recent_items(history, recent)
            .into_iter()
            .filter_map(|(j, _)| self.dense.score(target, j).map(|s| (j, s)))
            .collect();
        near.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        near.truncate(3);
        let children = near
            .iter()
            .map(|(j, s)| Explanation::leaf(format!("cosine to history item {}", self.ids[*j as usize]), f64::from(*s)))
            .collect();
        let best = near.first().map_or(0.0, |n| f64::from(n.1));
        Explanation::node("content: nearest recent history items", best, children)
    }

    /// Items similar to a given item, by content and by CF, fused.
    #[tracing::instrument(skip_all, fields(k = request.k))]
    pub fn similar(&self, request: &SimilarRequest) -> Result<Results> {
        let start = Instant::now();
        check_k(request.k, request.candidates)?;
        let seed = self.index_of(&request.item)?;
        let allowed = self.allowed(&request.filters)?;
        let allow = |i: u32| i != seed && allowed.as_ref().is_none_or(|a| a.get(i as usize).copied().unwrap_or(false));
        let mut timings = Timings::default();
        let mut lists = Vec::new();
        let t = Instant::now();
        let vector = self.dense.vector(seed).unwrap_or_default().to_vec();
        lists
            .push(RankedList::new(RetrieverKind::Dense, self.dense.search(&vector, request.candidates, Some(&allow))?));
        timings.retrieve_ms.insert("dense".into(), ms(t));
        if let Some(cf) = &self.cf {
            let t = Instant::now();
            let factors = cf.items.index.vector(seed).unwrap_or_default().to_vec();
            // An item nobody interacted with has (near) zero factors: its CF neighbours are noise.
            if factors.iter().map(|v| v * v).sum::<f32>() > 1e-12 {
                lists.push(cf.items.search(&factors, request.candidates, Some(&allow), ColdItems::Share)?);
            }
            timings.retrieve_ms.insert("cf".into(), ms(t));
        }
        let weights: Vec<f64> = lists.iter().map(|l| request.weights.of(l.retriever)).collect();
        let t = Instant::now();
        let fused = fuse(&lists, &weights, &request.fusion)?;
        timings.fusion_ms = ms(t);
        let fusion_name = if lists.len() == 1 { "single" } else { request.fusion.name() };
        let hits =
            fused.iter().take(request.k).map(|f| self.hit(f, fusion_name, None, None)).collect::<Result<Vec<_>>>()?;
        timings.total_ms = ms(start);
        Ok(Results { hits, generation: self.manifest.generation.clone(), timings })
    }

    /// Item ids by index.
    pub fn item_ids(&self) -> &[String] {
        &self.ids
    }
}
