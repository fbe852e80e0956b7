//! The model runtime: one handle that owns how a process runs its embedding model, built once
//! and shared by every generation the process opens.
//!
//! It holds the loaded [`Embedder`], the query-embedding cache, the trained rerankers' logit
//! cache (keyed by generation, so a request finishing on the old generation after a swap
//! cannot leave entries the new one reads) and, in servers, the model
//! worker that batches concurrent query encodings, plus the settings rerank workers are started
//! with (each generation's trained rerankers are its own models, so their workers are per
//! generation, but set up the same way). Callers never wire these one by one: a batch job opens
//! an engine with [`RuntimeSettings::default`], a server with what its settings say, and
//! [`crate::Engine::open_next`] carries the runtime over to the next generation. The shape
//! follows text-embeddings-inference's `core/src/infer.rs`: one `Infer` handle owns tokenizer,
//! queue and backend, and the router never sees a backend.

use std::sync::Arc;

use crate::batcher::{BatcherSettings, QueryBatcher};
use crate::bert::Precision;
use crate::cache::{Cache, CacheStats};
use crate::cross::QueryPasses;
use crate::embed::{Embedder, EmbedderSettings, QueryStates};
use crate::error::Result;
use crate::generation::Manifest;
use crate::request::defaults;

/// Trained-reranker logits by (generation, which reranker, query text, catalog index). The
/// generation is in the key because requests that still hold the old engine finish after a
/// swap (and the cache is cleared): their logits must never be read by the new generation.
pub type RerankCache = Cache<(u64, RerankerSlot, String, u32), f32>;

/// Which of a generation's trained rerankers a cached logit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RerankerSlot {
    /// The search reranker.
    Search,
    /// The recommendation reranker.
    Recommend,
}

/// Whether searches keep the query's states for the reranker (`HYRANK_RERANK_QUERY_STATES`
/// unset or anything but `off`), read once.
fn keep_query_states() -> bool {
    static KEEP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KEEP.get_or_init(|| std::env::var("HYRANK_RERANK_QUERY_STATES").as_deref() != Ok("off"))
}

/// How a process runs its models, besides the weights and device ([`EmbedderSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Query embeddings kept (0 turns the cache off).
    pub query_cache_entries: usize,
    /// Trained-reranker logits kept, by reranker, query and item (0 turns the cache off).
    pub rerank_cache_entries: usize,
    /// Encode queries through a model worker that batches concurrent queries; `None`: the
    /// calling thread encodes (batch jobs, tests, and servers on few cores, where batching was
    /// measured to cost throughput).
    pub query_batcher: Option<BatcherSettings>,
    /// Score trained-reranker pairs through a model worker per reranker, with a bounded queue
    /// (requests past it are refused as overloaded); `None`: on the request's thread.
    pub rerank_workers: Option<BatcherSettings>,
    /// The number format of the trained reranker layers' projections (f32, f16 or int8; w8a8
    /// is int8's format there; see
    /// [`crate::CrossEncoder::load_at`]). A serving choice: nothing stored depends on it.
    /// `None`: [`defaults::RERANK_PRECISION`] where the generation's encoder runs on hyrank's
    /// CPU kernels, [`defaults::GPU_RERANK_PRECISION`] on a GPU, f32 elsewhere (candle's CPU
    /// layers); a precision asked for where it cannot run is refused.
    pub rerank_precision: Option<Precision>,
    /// Model reranks running at once; past it a rerank waits up to [`crate::gate::RERANK_WAIT`]
    /// for a turn, then is refused as overloaded. `None`: no bound (batch jobs, which bound
    /// their own threads).
    pub rerank_slots: Option<usize>,
    /// The rerank budget of a request that names none (`rerank.budget_ms`): time from the
    /// request's arrival after which the rerank stage starts no further pass, and the
    /// candidates not reranked by then keep their fused order. `None`: no budget.
    pub rerank_budget: Option<std::time::Duration>,
}

impl RuntimeSettings {
    /// The number format the trained reranker layers run at beside `embedder`: the one asked
    /// for, else [`defaults::RERANK_PRECISION`] where `embedder` runs on hyrank's CPU kernels,
    /// [`defaults::GPU_RERANK_PRECISION`] on a GPU, else f32.
    pub fn rerank_layers(&self, embedder: &Embedder) -> Precision {
        self.rerank_precision.unwrap_or(if embedder.encoder().on_cpu_kernels() {
            defaults::RERANK_PRECISION
        } else if !embedder.device().is_cpu() {
            defaults::GPU_RERANK_PRECISION
        } else {
            Precision::F32
        })
    }
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            query_cache_entries: defaults::QUERY_CACHE_ENTRIES,
            rerank_cache_entries: defaults::RERANK_CACHE_ENTRIES,
            query_batcher: None,
            rerank_workers: None,
            rerank_precision: None,
            rerank_slots: None,
            rerank_budget: None,
        }
    }
}

/// A query's embedding (384 floats, unit length) and, when kept, its states after the
/// reranker's query layers ([`Runtime::embed_query_keeping`]).
pub type Encoded = (Arc<Vec<f32>>, Option<Arc<QueryStates>>);

/// The embedding model with its cache and worker; see the module docs.
pub struct Runtime {
    embedder: Arc<Embedder>,
    /// Query text → embedding, `None` for a query the model reads none of
    /// ([`Embedder::reads`]). Shared with the runtime of the next generation and cleared
    /// there, so hit counts accumulate while entries never outlive their generation.
    query_cache: Arc<Cache<String, Option<Arc<Vec<f32>>>>>,
    /// Trained-reranker logits, shared and cleared across generations like the query cache.
    rerank_cache: Arc<RerankCache>,
    /// Where the search rerankers' query passes came from, over every generation served.
    query_passes: Arc<QueryPasses>,
    query_batcher: Option<Arc<QueryBatcher>>,
    /// Turns for model reranks ([`RuntimeSettings::rerank_slots`]), shared across generations.
    rerank_gate: Option<Arc<crate::gate::Gate>>,
    /// How long the rerankers' passes take, for rerank budgets; shared across generations.
    pass_times: Arc<crate::rerank::PassTimes>,
    settings: RuntimeSettings,
    /// The precision the operator asked for (`EmbedderSettings::precision`), if any:
    /// generations at another one are refused, at start-up and on every swap.
    pinned: Option<Precision>,
}

impl Runtime {
    /// Loads the model and starts what `settings` asks for.
    ///
    /// # Errors
    /// The model cannot be loaded, or a worker thread cannot start.
    pub fn load(embedder: &EmbedderSettings, settings: RuntimeSettings) -> Result<Self> {
        Self::new(Arc::new(Embedder::load(embedder)?), settings)
    }

    /// A runtime around an already loaded model.
    ///
    /// # Errors
    /// A worker thread cannot start.
    pub fn new(embedder: Arc<Embedder>, settings: RuntimeSettings) -> Result<Self> {
        let query_batcher = match settings.query_batcher {
            Some(batching) => Some(Arc::new(QueryBatcher::spawn(Arc::clone(&embedder), batching)?)),
            None => None,
        };
        Ok(Runtime {
            embedder,
            query_cache: Arc::new(Cache::new(settings.query_cache_entries)),
            rerank_cache: Arc::new(Cache::new(settings.rerank_cache_entries)),
            query_passes: Arc::default(),
            query_batcher,
            rerank_gate: settings
                .rerank_slots
                .map(|slots| Arc::new(crate::gate::Gate::new(slots, crate::gate::RERANK_WAIT))),
            pass_times: Arc::default(),
            settings,
            pinned: None,
        })
    }

    /// This runtime, refusing generations at any precision but `pinned` (`None`: none refused).
    pub(crate) fn pinned_to(self, pinned: Option<Precision>) -> Self {
        Runtime { pinned, ..self }
    }

    /// The runtime for a generation: a new handle on this one's model when the generation
    /// embedded with the same token limit and precision, else on the model loaded again with
    /// its settings (and a worker of its own, counting on from this one's totals). Either way the
    /// query cache is this one's; the caller clears it once the new generation opened
    /// ([`Runtime::clear_caches`]).
    ///
    /// # Errors
    /// The model cannot be loaded again, or a worker thread cannot start.
    pub fn for_generation(&self, manifest: &Manifest) -> Result<Self> {
        let (max_tokens, precision) = (manifest.max_tokens, manifest.precision);
        // A precision the operator pinned holds across swaps: a generation at another one is
        // refused (the serving one stays), as it is at start-up.
        if let Some(pinned) = self.pinned.filter(|&p| p != precision) {
            return Err(crate::Error::PrecisionMismatch { index: precision, requested: pinned });
        }
        if max_tokens == self.embedder.settings().max_tokens && precision == self.embedder.precision() {
            return Ok(Runtime {
                embedder: Arc::clone(&self.embedder),
                query_cache: Arc::clone(&self.query_cache),
                rerank_cache: Arc::clone(&self.rerank_cache),
                query_passes: Arc::clone(&self.query_passes),
                query_batcher: self.query_batcher.clone(),
                rerank_gate: self.rerank_gate.clone(),
                pass_times: Arc::clone(&self.pass_times),
                settings: self.settings,
                pinned: self.pinned,
            });
        }
        let embedder = EmbedderSettings { max_tokens, precision: Some(precision), ..self.embedder.settings().clone() };
        let mut next = Self::new(Arc::new(Embedder::load(&embedder)?), self.settings)?.pinned_to(self.pinned);
        next.query_cache = Arc::clone(&self.query_cache);
        next.rerank_cache = Arc::clone(&self.rerank_cache);
        next.query_passes = Arc::clone(&self.query_passes);
        next.rerank_gate = self.rerank_gate.clone();
        next.pass_times = Arc::clone(&self.pass_times);
        if let (Some(new), Some(old)) = (&next.query_batcher, &self.query_batcher) {
            new.continue_from(old.stats());
        }
        Ok(next)
    }

    /// A turn for a model rerank, waiting for one where the runtime bounds them (a free turn
    /// where it does not); `Ok(None)` when `until` (the request's rerank budget) passed first,
    /// or, with `until`, the gate's wait ([`crate::gate::RERANK_WAIT`]) ended first.
    ///
    /// # Errors
    /// [`crate::Error::Overloaded`] when no turn came within the gate's wait, without `until`;
    /// [`crate::Error::Cancelled`] when `call`'s client went away.
    pub fn rerank_turn(
        &self,
        until: Option<std::time::Instant>,
        call: &crate::call::Call,
    ) -> Result<Option<crate::gate::Turn<'_>>> {
        match &self.rerank_gate {
            Some(gate) => gate.enter(until, call),
            None => call.check().map(|()| Some(crate::gate::Turn::free())),
        }
    }

    /// How long the rerankers' passes take ([`crate::rerank::PassTimes`]).
    pub fn pass_times(&self) -> &crate::rerank::PassTimes {
        &self.pass_times
    }

    /// The rerank budget of a request that names none ([`RuntimeSettings::rerank_budget`]).
    pub fn rerank_budget(&self) -> Option<std::time::Duration> {
        self.settings.rerank_budget
    }

    /// The embedding model.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// What this runtime was started with.
    pub fn settings(&self) -> RuntimeSettings {
        self.settings
    }

    /// The query's embedding (384 floats, unit length), or `None` when the model reads none
    /// of the query ([`Embedder::reads`]): from the cache when this generation has seen the
    /// text before, else through the worker or on this thread.
    ///
    /// # Errors
    /// Tokenization or inference failed, or the worker's queue is full.
    pub fn embed_query(&self, query: &str) -> Result<Option<Arc<Vec<f32>>>> {
        Ok(self.embed_query_keeping(query, None)?.map(|(vector, _)| vector))
    }

    /// Whether the embedding model reads any of `query` ([`Embedder::reads`]); a query the
    /// cache holds is not tokenized again.
    ///
    /// # Errors
    /// Tokenization failing.
    pub fn reads(&self, query: &str) -> Result<bool> {
        match self.query_cache.peek(query) {
            Some(vector) => Ok(vector.is_some()),
            None => {
                let reads = self.embedder.reads(query)?;
                // Not read: what an encode would cache for it, so the next asking does not
                // tokenize again (a read query gets its vector when the dense list needs it).
                if !reads {
                    self.query_cache.put(query.to_string(), None);
                }
                Ok(reads)
            }
        }
    }

    /// [`Runtime::embed_query`], also keeping the query's states after the model's first
    /// `layers` layers when the query is embedded here and now ([`Embedder::embed_with_states`],
    /// for a reranker that starts from them). `None` for the states where the vector came from
    /// the cache or the worker (which batches texts and keeps no states), or `layers` is `None`.
    /// Encoded here, the query is tokenized once for the reading and the pass; through the
    /// worker, twice (the worker tokenizes its batch).
    ///
    /// # Errors
    /// As [`Runtime::embed_query`].
    pub fn embed_query_keeping(&self, query: &str, layers: Option<usize>) -> Result<Option<Encoded>> {
        // HYRANK_RERANK_QUERY_STATES=off: the reranker runs its own query pass, to measure
        // what keeping them saves (bench/gpu_run.sh).
        let layers = layers.filter(|_| keep_query_states());
        let mut states = None;
        let vector = self.query_cache.get_or_try(query.to_string(), || {
            let vector = match &self.query_batcher {
                Some(batcher) => match self.embedder.reads(query)? {
                    true => Some(batcher.encode(query)?),
                    false => None,
                },
                None => {
                    let pieces = self.embedder.pieces(query)?;
                    match self.embedder.reads_pieces(&pieces) {
                        true => {
                            let (vector, kept) = self.embedder.embed_pieces(query, &pieces, layers)?;
                            states = kept.map(Arc::new);
                            Some(vector)
                        }
                        false => None,
                    }
                }
            };
            Ok::<_, crate::Error>(vector.map(Arc::new))
        })?;
        Ok(vector.map(|vector| (vector, states)))
    }

    /// Runs `encode` (an encode through this runtime) and `beside`, `beside` on another of
    /// the pool's threads when one is free (search runs BM25 there, which does not need the
    /// query's vector, while the encode leaves that thread idle between its products), else
    /// after `encode` on the same thread. The thread that waits for `beside` does not become
    /// another pass's helper meanwhile ([`crate::kernels::refusing_helpers`]). In turn where
    /// the encode goes through the model worker: that blocks the calling thread, and a pool
    /// thread blocked on the worker, whose own pass needs the pool, could deadlock it.
    pub(crate) fn encode_beside<A: Send, B: Send>(
        &self,
        encode: impl FnOnce() -> A + Send,
        beside: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        if self.query_batcher.is_some() {
            return (encode(), beside());
        }
        // The scope puts the join on a pool thread, where the refusal must hold.
        rayon::scope(|_| crate::kernels::refusing_helpers(|| rayon::join(encode, beside)))
    }

    /// Drops every cached query embedding and reranker logit (a new generation serves); hit
    /// counts stay.
    pub fn clear_caches(&self) {
        self.query_cache.clear();
        self.rerank_cache.clear();
    }

    /// Hits and misses of the query-embedding cache.
    pub fn query_cache_stats(&self) -> CacheStats {
        self.query_cache.stats()
    }

    /// The trained rerankers' logit cache.
    pub fn rerank_cache(&self) -> &Arc<RerankCache> {
        &self.rerank_cache
    }

    /// The counter the search rerankers count their query passes in: taken from the query's
    /// embedding pass, or run by the reranker ([`Runtime::embed_query_keeping`]).
    pub fn rerank_query_passes(&self) -> &Arc<QueryPasses> {
        &self.query_passes
    }

    /// The query encoder's model worker, if one runs.
    pub fn query_batcher(&self) -> Option<&Arc<QueryBatcher>> {
        self.query_batcher.as_ref()
    }
}
