//! Prometheus metrics: requests and latency per route template and status, the engine's stage
//! latencies, the engine queue, cache lookups, the serving generation, and what each answer
//! says about its own quality without judgments (empty and short lists, retriever agreement).

use std::sync::Mutex;

use hyrank_engine::batcher::BatcherStats;
use hyrank_engine::cache::CacheStats;
use hyrank_engine::cross::QueryPassCounts;
use hyrank_engine::request::{Results, Timings};
use prometheus::{
    register_histogram_vec_with_registry, register_int_counter_vec_with_registry, register_int_counter_with_registry,
    register_int_gauge_vec_with_registry, register_int_gauge_with_registry, Encoder, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
};

/// Agreement buckets: shares of a top 10.
const SHARES: [f64; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// What an answer says about its own quality, without judgments: how full its list is, and
/// how much its retrievers agree. Kept with a cached answer, so that cache hits count too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerQuality {
    /// `empty` (no hit: a zero-result search), `short` (fewer hits than `k` asked, e.g. a
    /// filter few items pass) or `full`.
    pub list: &'static str,
    /// Among the top 10 hits that every retriever could score (none abstained, as CF does on
    /// an item without interactions), the share that more than one retriever returned; `None`
    /// when one retriever ran (a `bm25` or `dense` search) or no such hit is in the top 10.
    /// A drop in a hybrid's agreement is what a broken leg looks like (a wrong model, a stale
    /// index), down to 0 when one leg's items never reach the top 10.
    pub agreement: Option<f64>,
}

impl AnswerQuality {
    /// The quality of `results`, which `k` hits were asked for. Which retrievers ran is read
    /// from the timings (each one that ran is timed), not from the hits.
    pub fn of(results: &Results, k: usize) -> Self {
        let list = match results.hits.len() {
            0 => "empty",
            n if n < k => "short",
            _ => "full",
        };
        let scored: Vec<_> = results.hits.iter().take(10).filter(|h| h.breakdown.abstained.is_empty()).collect();
        let agreement = (results.timings.retrieve_ms.len() >= 2 && !scored.is_empty())
            .then(|| scored.iter().filter(|h| h.breakdown.retrievers.len() >= 2).count() as f64 / scored.len() as f64);
        AnswerQuality { list, agreement }
    }
}

/// Latency buckets in seconds: 0.5 ms to 10 s.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Figures kept by other parts of the server (running totals that only grow, and depths), read
/// when the metrics are exported.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Engine calls queued or running on the blocking pool.
    pub engine_queue: usize,
    /// The engine's query-embedding cache.
    pub query_cache: CacheStats,
    /// The response cache.
    pub response_cache: CacheStats,
    /// The bytes the response cache holds.
    pub response_cache_bytes: usize,
    /// The trained rerankers' logit cache.
    pub rerank_cache: CacheStats,
    /// The query-encoding model worker, when there is one.
    pub model_worker: Option<BatcherStats>,
    /// The trained reranker's model worker, when there is one.
    pub rerank_worker: Option<BatcherStats>,
    /// The trained recommendation reranker's model worker, when there is one.
    pub recommend_rerank_worker: Option<BatcherStats>,
    /// The search reranker's query passes: taken from the query's embedding pass, or run.
    pub rerank_query_passes: QueryPassCounts,
    /// The live event log, when the server has one.
    pub live: Option<hyrank_engine::live::LiveStats>,
}

/// Raises a counter to a running total kept elsewhere; the counter's own value is what was
/// exported before, so the difference is the increment.
fn raise_to(counter: &IntCounterVec, labels: &[&str], total: u64) {
    let counter = counter.with_label_values(labels);
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// Every metric the service exports, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    stage_seconds: HistogramVec,
    queue_depth: IntGauge,
    response_cache_bytes: IntGauge,
    /// Engine calls refused because the queue was full.
    pub rejected: IntCounter,
    cache_lookups: IntCounterVec,
    generation: IntGaugeVec,
    /// When the serving generation was built (seconds since the Unix epoch): an index that
    /// stopped being rebuilt is `time() - this` growing.
    generation_built: IntGauge,
    /// 1 from a generation's refusal until one is swapped in: a refusal is counted once
    /// (`reloads_total{outcome="refused"}`), so an alert on its increase clears while the
    /// server is still on the older one; this does not.
    generation_refused: IntGauge,
    model_queue: IntGaugeVec,
    model_work: IntCounterVec,
    rerank_query_passes: IntCounterVec,
    /// One export at a time raises the counters kept as totals elsewhere.
    exporting: Mutex<()>,
    /// Generation swaps and refusals.
    pub reloads: IntCounterVec,
    /// Live events acknowledged.
    pub live_events: IntCounter,
    /// Latency of one live write (validation, the durable append), by outcome.
    pub live_write_seconds: HistogramVec,
    live_unfolded: IntGauge,
    live_oldest_seconds: prometheus::Gauge,
    live_flushes: IntCounter,
    live_deleted: IntGauge,
    live_put_items: IntGauge,
    /// 1 from a live write that failed on the server's side (5xx: a full disk, a log that
    /// cannot be written) until one succeeds. Reads still serve, so readiness stays 200; this
    /// is what an alert on writes watches.
    live_writes_failing: IntGauge,
    answers: IntCounterVec,
    agreement: HistogramVec,
    rerank_cut: IntCounterVec,
    abandoned: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        // Registration only fails on a duplicate name in this registry, which would be a bug here.
        let expect = "metric names are unique";
        let requests = register_int_counter_vec_with_registry!(
            "hyrank_http_requests_total",
            "HTTP requests by method, route template and status.",
            &["method", "route", "status"],
            registry
        )
        .expect(expect);
        let request_seconds = register_histogram_vec_with_registry!(
            "hyrank_http_request_duration_seconds",
            "HTTP request latency by method, route template and status.",
            &["method", "route", "status"],
            BUCKETS.to_vec(),
            registry
        )
        .expect(expect);
        let stage_seconds = register_histogram_vec_with_registry!(
            "hyrank_stage_duration_seconds",
            "Engine stage latency: the filter mask, query embedding, each retriever, fusion, rerank, highlight, facets, and the whole engine call.",
            &["stage"],
            BUCKETS.to_vec(),
            registry
        )
        .expect(expect);
        let queue_depth = register_int_gauge_with_registry!(
            "hyrank_engine_queue_depth",
            "Engine calls queued for or running on the model pool.",
            registry
        )
        .expect(expect);
        let rejected = register_int_counter_with_registry!(
            "hyrank_engine_rejected_total",
            "Requests refused with 503 because the engine queue was full.",
            registry
        )
        .expect(expect);
        let cache_lookups = register_int_counter_vec_with_registry!(
            "hyrank_cache_lookups_total",
            "Cache lookups by cache (query_embedding, response, rerank_score) and result (hit, miss).",
            &["cache", "result"],
            registry
        )
        .expect(expect);
        let generation = register_int_gauge_vec_with_registry!(
            "hyrank_serving_generation",
            "1 for the generation being served (label), by its number.",
            &["generation"],
            registry
        )
        .expect(expect);
        let generation_built = register_int_gauge_with_registry!(
            "hyrank_serving_generation_built_seconds",
            "When the serving generation was built, in seconds since the Unix epoch.",
            registry
        )
        .expect(expect);
        let response_cache_bytes = register_int_gauge_with_registry!(
            "hyrank_response_cache_bytes",
            "Bytes the cached responses hold (bodies and keys), at most --response-cache-bytes.",
            registry
        )
        .expect(expect);
        let generation_refused = register_int_gauge_with_registry!(
            "hyrank_generation_refused",
            "1 while the latest generation offered (published, or pulled) was refused and none has been swapped in since, nor CURRENT pointed back at the serving one.",
            registry
        )
        .expect(expect);
        let build_info = register_int_gauge_vec_with_registry!(
            "hyrank_build_info",
            "1, labelled with the server's version.",
            &["version"],
            registry
        )
        .expect(expect);
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        // The process's memory, CPU, open files and start time (Linux; nothing elsewhere).
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect(expect);
        let reloads = register_int_counter_vec_with_registry!(
            "hyrank_generation_reloads_total",
            "Generation reload attempts by outcome (swapped, unchanged, refused; failed: a replica's pull broken off, or its source unreadable or without a CURRENT, at every poll).",
            &["outcome"],
            registry
        )
        .expect(expect);
        let model_queue = register_int_gauge_vec_with_registry!(
            "hyrank_model_queue_depth",
            "Requests waiting for a model worker (query_encoder, reranker or recommend_reranker).",
            &["worker"],
            registry
        )
        .expect(expect);
        let model_work = register_int_counter_vec_with_registry!(
            "hyrank_model_work_total",
            "Model worker totals: batches (shared passes), queries (requests served), refused (queue full).",
            &["worker", "what"],
            registry
        )
        .expect(expect);
        let rerank_query_passes = register_int_counter_vec_with_registry!(
            "hyrank_rerank_query_passes_total",
            "The trained search reranker's passes of a query through its frozen layers, by source: embedding (kept from the pass that embedded the query for dense retrieval) or reranker (run again: no dense retrieval, a cached embedding, the query-encoding worker).",
            &["source"],
            registry
        )
        .expect(expect);
        let live_events = register_int_counter_with_registry!(
            "hyrank_live_events_total",
            "Live interaction events acknowledged (durable) by POST /v1/events.",
            registry
        )
        .expect(expect);
        let live_write_seconds = register_histogram_vec_with_registry!(
            "hyrank_live_write_duration_seconds",
            "Latency of one live write (POST /v1/events, PUT and DELETE /v1/items/{id}, PUT /v1/items/{id}/fields), checks and the durable append (fdatasync) included, by outcome.",
            &["outcome"],
            BUCKETS.to_vec(),
            registry
        )
        .expect(expect);
        let live_unfolded = register_int_gauge_with_registry!(
            "hyrank_live_log_events",
            "Live events in the log that the serving generation has not folded in.",
            registry
        )
        .expect(expect);
        let live_oldest_seconds = prometheus::register_gauge_with_registry!(
            "hyrank_live_oldest_unfolded_seconds",
            "Age of the oldest live record (an event or an item write) the serving generation has not folded in (0: none).",
            registry
        )
        .expect(expect);
        let live_flushes = register_int_counter_with_registry!(
            "hyrank_live_flushes_total",
            "Durable flushes (fdatasync) of the live log that succeeded; concurrent writes share one (events_total / flushes_total is the group size).",
            registry
        )
        .expect(expect);
        let live_deleted = register_int_gauge_with_registry!(
            "hyrank_live_deleted_items",
            "Items deleted through the API since the serving generation's build (hidden from every list).",
            registry
        )
        .expect(expect);
        let live_writes_failing = register_int_gauge_with_registry!(
            "hyrank_live_writes_failing",
            "1 from a live write that failed on the server's side (5xx) until one succeeds.",
            registry
        )
        .expect(expect);
        let live_put_items = register_int_gauge_with_registry!(
            "hyrank_live_put_items",
            "Puts (PUT /v1/items/{id}, creations and replacements) since the serving generation's build, one live row each, so an item put twice counts twice (searchable now, folded in by the next build).",
            registry
        )
        .expect(expect);
        let answers = register_int_counter_vec_with_registry!(
            "hyrank_answers_total",
            "Answers of search, recommend and similar by how full their list is: empty (no hit), short (fewer than k) or full; cached answers included.",
            &["list", "route"],
            registry
        )
        .expect(expect);
        let agreement = register_histogram_vec_with_registry!(
            "hyrank_retriever_agreement",
            "Share of an answer's top 10 that more than one retriever returned, for answers drawing on two or more (hybrid search, CF with content); cached answers included.",
            &["route"],
            SHARES.to_vec(),
            registry
        )
        .expect(expect);
        let rerank_cut = register_int_counter_vec_with_registry!(
            "hyrank_rerank_cut_total",
            "Answers of search and recommend whose rerank budget ran out before the reranker read its whole window: served, the rest in fused order, not cached.",
            &["route"],
            registry
        )
        .expect(expect);
        let abandoned = register_int_counter_vec_with_registry!(
            "hyrank_abandoned_total",
            "Requests of search, recommend and similar whose client went away before the answer; their engine work stops at its next check (before the first stage, while waiting for a rerank turn, between rerank passes).",
            &["route"],
            registry
        )
        .expect(expect);
        // Present at 0 from the start, so a rate over them is defined before the first.
        for route in ["search", "recommend", "similar"] {
            abandoned.with_label_values(&[route]);
            if route != "similar" {
                rerank_cut.with_label_values(&[route]);
            }
        }
        Metrics {
            rerank_cut,
            abandoned,
            answers,
            agreement,
            live_put_items,
            live_deleted,
            live_flushes,
            live_events,
            live_write_seconds,
            live_writes_failing,
            live_unfolded,
            live_oldest_seconds,
            model_queue,
            model_work,
            rerank_query_passes,
            exporting: Mutex::new(()),
            registry,
            requests,
            request_seconds,
            stage_seconds,
            queue_depth,
            response_cache_bytes,
            rejected,
            cache_lookups,
            generation,
            generation_built,
            generation_refused,
            reloads,
        }
    }

    /// Counts one finished request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.request_seconds.with_label_values(&labels).observe(seconds);
    }

    /// Records where an engine call spent its time.
    pub fn observe_stages(&self, timings: &Timings) {
        let seconds = |ms: f64| ms / 1000.0;
        if timings.filter_ms > 0.0 {
            self.stage_seconds.with_label_values(&["filter"]).observe(seconds(timings.filter_ms));
        }
        if timings.embed_ms > 0.0 {
            self.stage_seconds.with_label_values(&["embed"]).observe(seconds(timings.embed_ms));
        }
        for (retriever, ms) in &timings.retrieve_ms {
            self.stage_seconds.with_label_values(&[retriever.as_str()]).observe(seconds(*ms));
        }
        self.stage_seconds.with_label_values(&["fusion"]).observe(seconds(timings.fusion_ms));
        if timings.rerank_ms > 0.0 {
            self.stage_seconds.with_label_values(&["rerank"]).observe(seconds(timings.rerank_ms));
        }
        for (stage, ms) in [("highlight", timings.highlight_ms), ("facets", timings.facets_ms)] {
            if ms > 0.0 {
                self.stage_seconds.with_label_values(&[stage]).observe(seconds(ms));
            }
        }
        self.stage_seconds.with_label_values(&["engine_total"]).observe(seconds(timings.total_ms));
    }

    /// Counts one answer of `route` (search, recommend, similar) by its quality.
    pub fn observe_answer(&self, route: &str, quality: AnswerQuality) {
        self.answers.with_label_values(&[quality.list, route]).inc();
        if let Some(share) = quality.agreement {
            self.agreement.with_label_values(&[route]).observe(share);
        }
    }

    /// Counts an answer of `route` whose rerank budget ran out.
    pub fn observe_rerank_cut(&self, route: &str) {
        self.rerank_cut.with_label_values(&[route]).inc();
    }

    /// Counts a request of `route` (search, recommend, similar) whose client went away before
    /// its answer.
    pub fn observe_abandoned(&self, route: &str) {
        self.abandoned.with_label_values(&[route]).inc();
    }

    /// Marks `generation`, built at `built_at_unix`, as the one serving, and clears a refusal.
    pub fn set_generation(&self, generation: &str, built_at_unix: u64) {
        self.generation.reset();
        self.generation.with_label_values(&[generation]).set(1);
        self.generation_built.set(i64::try_from(built_at_unix).unwrap_or(i64::MAX));
        self.generation_refused.set(0);
    }

    /// Clears the refusal mark: `CURRENT` names the serving generation again (a rollback).
    pub fn clear_refused(&self) {
        self.generation_refused.set(0);
    }

    /// Records how a live write ended: `Some(true)` succeeded, `Some(false)` failed on the
    /// server's side, `None` refused as the client's fault (which says nothing of the log).
    pub fn live_write_outcome(&self, succeeded: Option<bool>) {
        if let Some(succeeded) = succeeded {
            self.live_writes_failing.set(i64::from(!succeeded));
        }
    }

    /// Whether the last live write that reached the log failed ([`Metrics::live_write_outcome`]).
    pub fn live_writes_failing(&self) -> bool {
        self.live_writes_failing.get() != 0
    }

    /// Counts a refused generation and marks the server as behind until the next swap.
    pub fn refused(&self) {
        self.reloads.with_label_values(&["refused"]).inc();
        self.generation_refused.set(1);
    }

    /// The registry as Prometheus text, with the figures other parts of the server keep.
    pub fn render(&self, totals: &Totals) -> String {
        {
            let _one_export = self.exporting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.queue_depth.set(totals.engine_queue as i64);
            self.response_cache_bytes.set(totals.response_cache_bytes as i64);
            if let Some(live) = totals.live {
                self.live_unfolded.set(live.events as i64);
                self.live_oldest_seconds.set(live.oldest_unfolded_secs);
                self.live_flushes.inc_by(live.flushes.saturating_sub(self.live_flushes.get()));
                self.live_deleted.set(live.deleted_items as i64);
                self.live_put_items.set(live.put_items as i64);
            }
            let caches = [
                ("query_embedding", totals.query_cache),
                ("response", totals.response_cache),
                ("rerank_score", totals.rerank_cache),
            ];
            for (name, stats) in caches {
                raise_to(&self.cache_lookups, &[name, "hit"], stats.hits);
                raise_to(&self.cache_lookups, &[name, "miss"], stats.misses);
            }
            raise_to(&self.rerank_query_passes, &["embedding"], totals.rerank_query_passes.reused);
            raise_to(&self.rerank_query_passes, &["reranker"], totals.rerank_query_passes.run);
            for (name, worker) in [
                ("query_encoder", totals.model_worker),
                ("reranker", totals.rerank_worker),
                ("recommend_reranker", totals.recommend_rerank_worker),
            ] {
                if let Some(worker) = worker {
                    self.model_queue.with_label_values(&[name]).set(worker.queued as i64);
                    raise_to(&self.model_work, &[name, "batches"], worker.batches);
                    raise_to(&self.model_work, &[name, "queries"], worker.queries);
                    raise_to(&self.model_work, &[name, "refused"], worker.refused);
                }
            }
        }
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for text.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results as JSON: hits given as (retrievers that returned it, retrievers that abstained),
    /// and the retrievers that ran.
    fn results(hits: &[(&[&str], &[&str])], ran: &[&str]) -> Results {
        let hits: Vec<serde_json::Value> = hits
            .iter()
            .enumerate()
            .map(|(i, (returned, abstained))| {
                let retrievers: Vec<serde_json::Value> = returned
                    .iter()
                    .map(|r| serde_json::json!({"retriever": r, "raw_score": 1.0, "rank": 1, "contribution": 0.5}))
                    .collect();
                serde_json::json!({"id": format!("i{i}"), "title": "", "score": 1.0, "breakdown": {
                    "fusion": "linear", "retrievers": retrievers, "abstained": abstained,
                    "fused_score": 1.0, "final_score": 1.0}})
            })
            .collect();
        let retrieve_ms: serde_json::Map<String, serde_json::Value> =
            ran.iter().map(|r| (r.to_string(), 1.0.into())).collect();
        serde_json::from_value(serde_json::json!({"hits": hits, "total": 4, "generation": "000001", "timings": {
            "embed_ms": 0.0, "retrieve_ms": retrieve_ms, "fusion_ms": 0.0, "rerank_ms": 0.0, "total_ms": 1.0}}))
        .unwrap()
    }

    #[test]
    fn answer_quality_reads_lists_and_agreement_among_hits_every_retriever_could_score() {
        let both: &[&str] = &["bm25", "dense"];
        let (bm25, dense): (&[&str], &[&str]) = (&["bm25"], &["dense"]);
        // A hybrid: 1 of 4 found by both.
        let hybrid = results(&[(both, &[]), (bm25, &[]), (dense, &[]), (dense, &[])], both);
        assert_eq!(AnswerQuality::of(&hybrid, 10), AnswerQuality { list: "short", agreement: Some(0.25) });
        assert_eq!(AnswerQuality::of(&hybrid, 4).list, "full");
        // A broken leg: two retrievers ran, none of one's items reached the top: agreement 0.
        let broken = results(&[(bm25, &[]), (bm25, &[])], both);
        assert_eq!(AnswerQuality::of(&broken, 2).agreement, Some(0.0));
        // One retriever ran: no agreement to speak of; nothing found: empty.
        assert_eq!(AnswerQuality::of(&results(&[(bm25, &[])], &["bm25"]), 1).agreement, None);
        assert_eq!(AnswerQuality::of(&results(&[], both), 10), AnswerQuality { list: "empty", agreement: None });
        // Cold items (CF abstained) are no disagreement: agreement over the others, or none.
        let (cf_content, content): (&[&str], &[&str]) = (&["cf", "dense"], &["dense"]);
        let cold = results(&[(content, &["cf"]), (cf_content, &[]), (content, &["cf"])], &["cf", "dense"]);
        assert_eq!(AnswerQuality::of(&cold, 3).agreement, Some(1.0));
        let all_cold = results(&[(content, &["cf"]), (content, &["cf"])], &["cf", "dense"]);
        assert_eq!(AnswerQuality::of(&all_cold, 2).agreement, None);
    }

    #[test]
    fn renders_requests_stages_caches_and_generation() {
        let metrics = Metrics::new();
        metrics.observe_request("POST", "/v1/search", 200, 0.012);
        let mut timings = Timings { embed_ms: 5.0, fusion_ms: 0.1, total_ms: 7.0, ..Timings::default() };
        timings.retrieve_ms.insert("bm25".into(), 0.5);
        metrics.observe_stages(&timings);
        metrics.set_generation("000001", 1_700_000_000);
        metrics.refused();
        metrics.set_generation("000002", 1_700_000_100);
        metrics.render(&Totals { query_cache: CacheStats { hits: 2, misses: 3 }, ..Totals::default() });
        let text = metrics.render(&Totals {
            engine_queue: 3,
            query_cache: CacheStats { hits: 5, misses: 3 },
            response_cache: CacheStats { hits: 0, misses: 1 },
            response_cache_bytes: 4096,
            rerank_cache: CacheStats { hits: 7, misses: 30 },
            model_worker: Some(BatcherStats { queued: 2, batches: 4, queries: 9, refused: 1 }),
            rerank_worker: Some(BatcherStats { queued: 1, batches: 3, queries: 5, refused: 0 }),
            recommend_rerank_worker: None,
            rerank_query_passes: QueryPassCounts { reused: 6, run: 2 },
            live: Some(hyrank_engine::live::LiveStats {
                events: 12,
                users: 2,
                last_seq: 40,
                folded_through: 28,
                oldest_unfolded_secs: 1.5,
                flushes: 9,
                deleted_items: 4,
                put_items: 3,
            }),
        });
        assert!(text.contains("hyrank_live_log_events 12"), "{text}");
        // The serving generation's build time; a refusal is held until the next swap clears it.
        assert!(text.contains("hyrank_serving_generation_built_seconds 1700000100"), "{text}");
        assert!(text.contains("hyrank_generation_refused 0"), "{text}");
        metrics.refused();
        assert!(metrics.render(&Totals::default()).contains("hyrank_generation_refused 1"));
        assert!(text.contains(&format!("hyrank_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))), "{text}");
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes") && text.contains("process_open_fds"), "{text}");
        assert!(text.contains("hyrank_live_oldest_unfolded_seconds 1.5"), "{text}");
        assert!(text.contains("hyrank_live_flushes_total 9"), "{text}");
        assert!(text.contains("hyrank_live_deleted_items 4"), "{text}");
        assert!(text.contains("hyrank_live_put_items 3"), "{text}");
        assert!(text.contains("hyrank_response_cache_bytes 4096"), "{text}");
        assert!(
            text.contains(r#"hyrank_http_requests_total{method="POST",route="/v1/search",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"hyrank_stage_duration_seconds_count{stage="bm25"} 1"#), "{text}");
        assert!(text.contains(r#"hyrank_cache_lookups_total{cache="query_embedding",result="hit"} 5"#), "{text}");
        assert!(text.contains(r#"hyrank_cache_lookups_total{cache="response",result="miss"} 1"#), "{text}");
        assert!(text.contains(r#"hyrank_cache_lookups_total{cache="rerank_score",result="hit"} 7"#), "{text}");
        assert!(text.contains(r#"hyrank_serving_generation{generation="000002"} 1"#), "{text}");
        assert!(text.contains("hyrank_engine_queue_depth 3"), "{text}");
        assert!(text.contains(r#"hyrank_model_work_total{what="queries",worker="query_encoder"} 9"#), "{text}");
        assert!(text.contains(r#"hyrank_model_queue_depth{worker="query_encoder"} 2"#), "{text}");
        assert!(text.contains(r#"hyrank_model_work_total{what="batches",worker="reranker"} 3"#), "{text}");
        assert!(text.contains(r#"hyrank_model_queue_depth{worker="reranker"} 1"#), "{text}");
        assert!(text.contains(r#"hyrank_rerank_query_passes_total{source="embedding"} 6"#), "{text}");
        assert!(text.contains(r#"hyrank_rerank_query_passes_total{source="reranker"} 2"#), "{text}");
        assert!(!text.contains(r#"generation="000001""#), "{text}");
    }
}
