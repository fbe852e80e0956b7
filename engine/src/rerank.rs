//! The rerank stage: rescores the top of the fused list with a model that reads the query and
//! each item's text together. Every reranker implements [`Reranker`]; a [`RerankPlan`] says
//! which one a request uses, how deep, and how its score enters the final score.
//!
//! - [`LateInteractionReranker`] runs the full MiniLM transformer over the query and over each
//!   candidate's title and text, and scores by late interaction (ColBERT's MaxSim, Khattab &
//!   Zaharia 2020): each query token takes its best cosine match among the item's contextual
//!   token embeddings, and the score is the mean over query tokens. It is untrained for this
//!   use (MiniLM was trained on pooled vectors), so it is opt-in per request, and its score is
//!   added to the fused score with a request weight.
//! - [`TrainedReranker`] is the generation's cross-encoder ([`crate::cross`]) trained on the
//!   catalog's judgments or clicks; its logit and the retrievers' normalised scores are combined
//!   by the learned weights ([`crate::combination`]).

use std::sync::Arc;
use std::time::Duration;

use crate::batcher::{BatcherSettings, RerankWorker};
use crate::cache::Cache;
use crate::combination::Combination;
use crate::cross::{CrossEncoder, ItemText};
use crate::embed::{Embedder, QueryStates};
use crate::error::{Error, Result};
use crate::generation::RerankerManifest;
use crate::request::{check_rerank_budget, check_rerank_depth, defaults, RerankOptions, RerankerKind};

mod budget;

use crate::runtime::{RerankCache, RerankerSlot};
pub use budget::{score_within, PassTimes};

/// Scores candidates for a query; higher is better.
pub trait Reranker: Send + Sync {
    /// Stable name shown in breakdowns.
    fn name(&self) -> &str;
    /// One score per item (its title and text, and its catalog index), in the items' order.
    fn score(&self, query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>>;
    /// Whether scoring the catalog item at `index` reads its text; when it does not (its side
    /// is precomputed), the caller may pass an empty text and skip reading the item.
    fn reads_text(&self, _index: u32) -> bool {
        true
    }
    /// How many of the embedding model's layers it runs over the query alone first (a PreTTR
    /// cross-encoder's frozen layers): a search that embeds the query anyway keeps their
    /// output from that pass ([`Embedder::embed_with_states`]) and hands it over in
    /// [`Reranker::score_with`]. `None`: it reads nothing of the query's embedding pass.
    fn query_layers(&self) -> Option<usize> {
        None
    }
    /// [`Reranker::score`], given the query's states from the pass that embedded it (see
    /// [`Reranker::query_layers`]); the same scores, with less work where the model uses them.
    fn score_with(&self, query: &str, _states: Option<&Arc<QueryStates>>, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        self.score(query, items)
    }
    /// Items it scores per forward pass (its batch): under a budget the rerank stage hands them
    /// over pass by pass ([`score_within`]), so that the budget or the client's departure stops
    /// it between passes without changing its batches. Default: all at once.
    fn pass_items(&self) -> usize {
        usize::MAX
    }
    /// What its pass times are kept under ([`PassTimes`]): one model's. Default: its name.
    fn pass_key(&self) -> String {
        self.name().to_string()
    }
    /// Whether every one of `items` already has its score for `query` (a cache of scores):
    /// then scoring them runs no model, and the rerank stage asks no turn for it. Default: no.
    fn holds_scores(&self, _query: &str, _items: &[ItemText<'_>]) -> bool {
        false
    }
}

/// How a reranker's score enters the final score.
#[derive(Debug, Clone, Copy)]
pub enum Combine<'a> {
    /// `fused + weight × score` (late interaction).
    Add {
        /// The request's weight.
        weight: f64,
    },
    /// `bias + Σ weight × feature`, the rerank logit one of the features (the trained reranker).
    Learned(&'a Combination),
}

/// What the rerank stage does for one request.
pub struct RerankPlan<'a> {
    /// The model.
    pub reranker: &'a dyn Reranker,
    /// Fused candidates it reads (the stage reads at least `k`).
    pub depth: usize,
    /// How its score enters the final score.
    pub combine: Combine<'a>,
    /// The request's budget (`rerank.budget_ms`), from its arrival; `None`: the runtime's
    /// default ([`crate::Runtime::rerank_budget`]).
    pub budget: Option<Duration>,
}

/// A generation's trained cross-encoder, loaded: the model, its manifest entry (depth,
/// combination, verdict) and, in servers, the model worker its pairs go through.
pub struct TrainedReranker {
    model: Arc<CrossEncoder>,
    manifest: RerankerManifest,
    worker: Option<Arc<RerankWorker>>,
    /// Logits already computed, by (generation, this reranker, query, item); shared with the
    /// runtime.
    cache: Arc<RerankCache>,
    generation: u64,
    slot: RerankerSlot,
}

impl TrainedReranker {
    /// Wraps a loaded model with its manifest entry; scoring runs on the caller's thread until
    /// [`TrainedReranker::start_worker`].
    pub fn new(model: CrossEncoder, manifest: RerankerManifest) -> Self {
        let cache = Arc::new(Cache::new(0));
        TrainedReranker {
            model: Arc::new(model),
            manifest,
            worker: None,
            cache,
            generation: 0,
            slot: RerankerSlot::Search,
        }
    }

    /// Keeps its logits in `cache` (the runtime's) under `generation` (a number that differs
    /// between the generations of one index) and `slot`: a (query, item) pair scored once is
    /// not scored again while the generation serves.
    pub fn cached(self, cache: Arc<RerankCache>, generation: u64, slot: RerankerSlot) -> Self {
        TrainedReranker { cache, generation, slot, ..self }
    }

    /// The logits of `items`, on the worker or on this thread.
    fn compute(&self, query: &str, states: Option<&Arc<QueryStates>>, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        match &self.worker {
            Some(worker) => worker.score(query, states, items),
            None => self.model.score_with(query, states.map(|s| &**s), items),
        }
    }

    /// Its manifest entry.
    pub fn manifest(&self) -> &RerankerManifest {
        &self.manifest
    }

    /// Sends scoring through a model worker that batches concurrent requests' pairs.
    pub fn start_worker(&mut self, settings: BatcherSettings) -> Result<()> {
        self.worker = Some(Arc::new(RerankWorker::spawn(Arc::clone(&self.model), settings)?));
        Ok(())
    }

    /// The model worker, when one runs.
    pub fn worker(&self) -> Option<&Arc<RerankWorker>> {
        self.worker.as_ref()
    }

    /// The model with its manifest entry, as the plans read them.
    pub fn as_trained(&self) -> Trained<'_> {
        Trained { reranker: self, manifest: &self.manifest }
    }
}

/// A trained reranker as a plan reads it: the model and its manifest entry (depth, learned
/// combination, default verdict).
#[derive(Clone, Copy)]
pub struct Trained<'a> {
    /// The model.
    pub reranker: &'a dyn Reranker,
    /// Its manifest entry.
    pub manifest: &'a RerankerManifest,
}

impl<'a> Trained<'a> {
    fn plan(self, depth: usize) -> RerankPlan<'a> {
        RerankPlan {
            reranker: self.reranker,
            depth,
            combine: Combine::Learned(&self.manifest.combination),
            budget: None,
        }
    }
}

impl Reranker for TrainedReranker {
    fn name(&self) -> &str {
        "cross_encoder"
    }

    fn reads_text(&self, index: u32) -> bool {
        !self.model.stores_item(index)
    }

    fn query_layers(&self) -> Option<usize> {
        self.model.query_layers()
    }

    fn pass_items(&self) -> usize {
        self.model.batch_size()
    }

    /// The search and recommendation rerankers are two models, and a generation's is not the
    /// next one's.
    fn pass_key(&self) -> String {
        format!("{}/{:?}/{}", self.name(), self.slot, self.generation)
    }

    fn holds_scores(&self, query: &str, items: &[ItemText<'_>]) -> bool {
        // Peeked, not looked up: the lookups that count hits are `score_with`'s. One key, its
        // item changed: a served rerank asks this of every pass.
        let mut key = (self.generation, self.slot, query.to_string(), 0);
        items.iter().all(|item| {
            item.index.is_some_and(|index| {
                key.3 = index;
                self.cache.peek(&key).is_some()
            })
        })
    }

    fn score(&self, query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        self.score_with(query, None, items)
    }

    /// Cached logits where the pair was scored before; the rest in one pass.
    fn score_with(&self, query: &str, states: Option<&Arc<QueryStates>>, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        let key = |index: u32| (self.generation, self.slot, query.to_string(), index);
        let short =
            || Error::Model { path: self.model.weights_path().to_path_buf(), reason: "fewer logits than pairs".into() };
        let mut scores: Vec<Option<f32>> =
            items.iter().map(|item| item.index.and_then(|index| self.cache.get(&key(index)))).collect();
        let missing: Vec<ItemText<'_>> =
            items.iter().zip(&scores).filter(|(_, score)| score.is_none()).map(|(item, _)| *item).collect();
        if !missing.is_empty() {
            let mut computed = self.compute(query, states, &missing)?.into_iter();
            for (item, score) in items.iter().zip(scores.iter_mut()).filter(|(_, s)| s.is_none()) {
                let value = computed.next().ok_or_else(short)?;
                if let Some(index) = item.index {
                    self.cache.put(key(index), value);
                }
                *score = Some(value);
            }
        }
        scores.into_iter().collect::<Option<Vec<f32>>>().ok_or_else(short)
    }
}

/// The rerank stage of a search: as the request asks, or the generation's default (its trained
/// reranker when the manifest enables it by default and there is a query, else none).
///
/// # Errors
/// Reranking asked for without a query, a trained reranker the generation lacks, a depth out
/// of bounds, or a late-interaction weight that is negative or not finite.
pub fn search_plan<'a>(
    options: Option<&RerankOptions>,
    has_query: bool,
    trained: Option<Trained<'a>>,
    late_interaction: &'a dyn Reranker,
) -> Result<Option<RerankPlan<'a>>> {
    let options = match options {
        None => {
            return Ok(trained
                .filter(|t| t.manifest.enabled_by_default && has_query)
                .map(|t| t.plan(t.manifest.depth)));
        }
        Some(options) if !options.enabled => return Ok(None),
        Some(options) => options,
    };
    if !has_query {
        return Err(Error::invalid("rerank", "reranking needs a query"));
    }
    let kind = options.reranker.unwrap_or(if trained.is_some() {
        RerankerKind::Trained
    } else {
        RerankerKind::LateInteraction
    });
    match kind {
        RerankerKind::Trained => {
            let trained = trained.ok_or_else(|| Error::Unavailable {
                what: "the trained reranker".into(),
                reason: "this generation has none; train one with `hyrank train-reranker`".into(),
            })?;
            let depth = check_rerank_depth(options.depth.unwrap_or(trained.manifest.depth))?;
            Ok(Some(RerankPlan { budget: check_rerank_budget(options.budget_ms)?, ..trained.plan(depth) }))
        }
        RerankerKind::LateInteraction => {
            crate::fusion::check_weight("rerank.weight", options.weight)?;
            Ok(Some(RerankPlan {
                reranker: late_interaction,
                depth: check_rerank_depth(options.depth.unwrap_or(defaults::LATE_INTERACTION_DEPTH))?,
                combine: Combine::Add { weight: options.weight },
                budget: check_rerank_budget(options.budget_ms)?,
            }))
        }
    }
}

/// The rerank stage of a recommendation: as asked, or the generation's default. Only the
/// trained recommendation reranker reranks recommendations.
///
/// # Errors
/// Late interaction asked for, a reranker the generation lacks, or a depth out of bounds.
pub fn recommend_plan<'a>(
    options: Option<&RerankOptions>,
    trained: Option<Trained<'a>>,
) -> Result<Option<RerankPlan<'a>>> {
    let options = match options {
        None => return Ok(trained.filter(|t| t.manifest.enabled_by_default).map(|t| t.plan(t.manifest.depth))),
        Some(options) if !options.enabled => return Ok(None),
        Some(options) => options,
    };
    if options.reranker == Some(RerankerKind::LateInteraction) {
        return Err(Error::invalid(
            "rerank.reranker",
            "late_interaction reranks searches only; recommendations use the trained recommendation reranker",
        ));
    }
    let trained = trained.ok_or_else(|| Error::Unavailable {
        what: "the trained recommendation reranker".into(),
        reason: "this generation has none; train one with `hyrank train-reranker --interactions`".into(),
    })?;
    let depth = check_rerank_depth(options.depth.unwrap_or(trained.manifest.depth))?;
    Ok(Some(RerankPlan { budget: check_rerank_budget(options.budget_ms)?, ..trained.plan(depth) }))
}

/// MaxSim over MiniLM's contextual token embeddings.
pub struct LateInteractionReranker {
    embedder: Arc<Embedder>,
}

impl LateInteractionReranker {
    /// Uses the engine's embedding model.
    pub fn new(embedder: Arc<Embedder>) -> Self {
        LateInteractionReranker { embedder }
    }
}

/// Mean over query tokens of the best cosine with any document token.
pub fn max_sim(query: &[Vec<f32>], document: &[Vec<f32>]) -> f32 {
    if query.is_empty() || document.is_empty() {
        return 0.0;
    }
    let total: f32 = query
        .iter()
        .map(|q| document.iter().map(|d| q.iter().zip(d).map(|(a, b)| a * b).sum::<f32>()).fold(f32::MIN, f32::max))
        .sum();
    total / query.len() as f32
}

impl Reranker for LateInteractionReranker {
    fn name(&self) -> &str {
        "late_interaction_minilm"
    }

    fn pass_items(&self) -> usize {
        self.embedder.batch_size()
    }

    fn score(&self, query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        let query_tokens = self.embedder.token_embeddings(&[query])?.pop().unwrap_or_default();
        let mut scores = Vec::with_capacity(items.len());
        for chunk in items.chunks(self.embedder.batch_size()) {
            let texts: Vec<&str> = chunk.iter().map(|item| item.text).collect();
            for document in self.embedder.token_embeddings(&texts)? {
                scores.push(max_sim(&query_tokens, &document));
            }
        }
        Ok(scores)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cross::CrossEncoderSettings;
    use crate::generation::{TrainingRecord, ValidationRecord};
    use crate::request::MAX_RERANK;

    /// A reranker that scores by text length: enough to tell plans apart.
    pub(crate) struct Fake(pub(crate) &'static str);

    impl Reranker for Fake {
        fn name(&self) -> &str {
            self.0
        }
        fn score(&self, _query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
            Ok(items.iter().map(|t| t.text.len() as f32).collect())
        }
    }

    fn manifest(depth: usize, enabled_by_default: bool) -> RerankerManifest {
        RerankerManifest {
            file: "reranker.safetensors".into(),
            base_model_sha256: "sha".into(),
            shape: CrossEncoderSettings::DEFAULT,
            states: None,
            states_bytes_per_item: None,
            depth,
            combination: Combination { bias: 0.5, weights: Default::default() },
            enabled_by_default,
            training: TrainingRecord {
                supervision: Vec::new(),
                train_queries: 0,
                train_pairs: 0,
                validation_queries: 0,
                hard_negatives: 0,
                random_negatives: 0,
                learning_rate: 0.0,
                head_learning_rate: 0.0,
                epochs_run: 0,
                best_epoch: 0,
                epoch_loss: Vec::new(),
                epoch_validation: Vec::new(),
                initial_validation: 0.0,
                device: "cpu".into(),
                seconds: 0.0,
                seed: 0,
                teacher: None,
                validation_split: None,
            },
            validation: ValidationRecord {
                queries: 0,
                hybrid_ndcg10: 0.0,
                logit_ndcg10: 0.0,
                combined_ndcg10: 0.0,
                cross_fitted_ndcg10: 0.0,
                gain_interval: [0.0, 0.0],
            },
            context: None,
        }
    }

    /// (reranker name, depth, whether the combination is learned) of a plan.
    fn shape(plan: Option<RerankPlan<'_>>) -> Option<(String, usize, bool)> {
        plan.map(|p| (p.reranker.name().to_string(), p.depth, matches!(p.combine, Combine::Learned(_))))
    }

    #[test]
    fn a_bare_search_reranks_only_when_the_manifest_enables_it_and_there_is_a_query() {
        let (model, late) = (Fake("cross_encoder"), Fake("late"));
        let on = manifest(30, true);
        let off = manifest(30, false);
        let trained = |m| Some(Trained { reranker: &model, manifest: m });
        assert_eq!(
            shape(search_plan(None, true, trained(&on), &late).unwrap()),
            Some(("cross_encoder".into(), 30, true))
        );
        assert_eq!(shape(search_plan(None, false, trained(&on), &late).unwrap()), None, "no query, no default rerank");
        assert_eq!(shape(search_plan(None, true, trained(&off), &late).unwrap()), None, "opt-in stays off");
        assert_eq!(shape(search_plan(None, true, None, &late).unwrap()), None);
        let off_request = RerankOptions::off();
        assert_eq!(shape(search_plan(Some(&off_request), true, trained(&on), &late).unwrap()), None);
    }

    #[test]
    fn an_explicit_rerank_picks_the_trained_model_when_there_is_one_else_late_interaction() {
        let (model, late) = (Fake("cross_encoder"), Fake("late"));
        let m = manifest(30, false);
        let any = RerankOptions { depth: None, ..RerankOptions::top(1, None) };
        let trained = Some(Trained { reranker: &model, manifest: &m });
        assert_eq!(
            shape(search_plan(Some(&any), true, trained, &late).unwrap()),
            Some(("cross_encoder".into(), 30, true))
        );
        assert_eq!(
            shape(search_plan(Some(&any), true, None, &late).unwrap()),
            Some(("late".into(), defaults::LATE_INTERACTION_DEPTH, false))
        );
        let deep = RerankOptions::top(50, Some(RerankerKind::LateInteraction));
        assert_eq!(shape(search_plan(Some(&deep), true, trained, &late).unwrap()), Some(("late".into(), 50, false)));
    }

    #[test]
    fn search_plans_refuse_what_cannot_be_done() {
        let late = Fake("late");
        let trained_only = RerankOptions::top(10, Some(RerankerKind::Trained));
        let err = search_plan(Some(&trained_only), true, None, &late).err().unwrap();
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        let any = RerankOptions::top(10, None);
        assert!(search_plan(Some(&any), false, None, &late).is_err(), "reranking needs a query");
        let too_deep = RerankOptions::top(MAX_RERANK + 1, None);
        assert!(search_plan(Some(&too_deep), true, None, &late).is_err());
        for weight in [-1.0, f64::NAN, f64::INFINITY] {
            let bad = RerankOptions { weight, ..RerankOptions::top(10, Some(RerankerKind::LateInteraction)) };
            assert!(search_plan(Some(&bad), true, None, &late).is_err(), "weight {weight}");
        }
    }

    #[test]
    fn recommendations_rerank_only_with_the_trained_recommendation_reranker() {
        let model = Fake("cross_encoder");
        let on = manifest(20, true);
        let trained = Some(Trained { reranker: &model, manifest: &on });
        assert_eq!(shape(recommend_plan(None, trained).unwrap()), Some(("cross_encoder".into(), 20, true)));
        assert_eq!(shape(recommend_plan(None, None).unwrap()), None);
        let deeper = RerankOptions::top(40, None);
        assert_eq!(shape(recommend_plan(Some(&deeper), trained).unwrap()), Some(("cross_encoder".into(), 40, true)));
        let late = RerankOptions::top(10, Some(RerankerKind::LateInteraction));
        assert!(recommend_plan(Some(&late), trained).is_err());
        assert!(matches!(recommend_plan(Some(&deeper), None), Err(Error::Unavailable { .. })));
    }

    #[test]
    fn max_sim_takes_each_query_tokens_best_match() {
        let q = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let d = vec![vec![1.0, 0.0], vec![0.6, 0.8]];
        assert!((max_sim(&q, &d) - (1.0 + 0.8) / 2.0).abs() < 1e-6);
        assert_eq!(max_sim(&q, &[]), 0.0);
    }
}
