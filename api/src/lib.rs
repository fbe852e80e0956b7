//! hyrank's HTTP API. [`configure`] mounts every route on an actix `App`, so that the binary and
//! the tests serve exactly the same application.
//!
//! Modules in the order a request meets them: [`settings`] (what the server was started with),
//! `middleware` (request id, access log, metrics, API keys), `routes` (bounds, the response
//! cache, the engine on the blocking pool), [`error`] (the JSON error body), [`metrics`],
//! [`reload`] (generation swaps), [`openapi`] and the analyst page (`ui`).
#![warn(missing_docs)]

mod body;
mod calls;
pub mod error;
mod inflate;
pub mod metrics;
mod middleware;
pub mod openapi;
pub mod reload;
pub mod replica;
mod routes;
pub mod settings;
mod ui;
mod writes;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use actix_web::web::Bytes;
use hyrank_engine::cache::Cache;
use hyrank_engine::Engine;

pub use error::ApiError;
pub use settings::{CorsOrigins, Limits, Secret, ServiceSettings};

/// Shared state. Handlers take a clone of the serving engine's `Arc` per request, so a swap never
/// disturbs requests already running, and the old generation is released when its last request
/// finishes.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: RwLock<Serving>,
    /// Where new generations are published; `None` disables reloading (tests on a fixed engine).
    index_dir: Option<PathBuf>,
    settings: ServiceSettings,
    /// Serialized responses keyed by route, generation and normalized request, with what
    /// they say about their own quality (counted again on every hit).
    responses: Cache<String, (Bytes, metrics::AnswerQuality)>,
    metrics: metrics::Metrics,
    inflight: AtomicUsize,
    /// Live writes queued or running, bounded apart from the engine calls of reads.
    inflight_writes: AtomicUsize,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// A replica's source ([`AppState::pulling_from`]), which the admin route pulls from.
    source: Option<Arc<hyrank_engine::generation::remote::Remote>>,
    /// The last generation a pull brought in and then refused, which the puller does not
    /// fetch again (the admin route does, when asked). Held through each pull and swap, so
    /// the puller's and the admin route's run one at a time and agree on what was refused.
    pulling: Mutex<Option<String>>,
}

struct Serving {
    engine: Arc<Engine>,
    since: SystemTime,
}

impl AppState {
    /// Serves a shared engine with default settings and no reloading (tests share one engine
    /// across apps).
    pub fn from_arc(engine: Arc<Engine>) -> Self {
        Self::with_settings(engine, None, ServiceSettings::default())
    }

    /// Serves `engine`, reloading from `index_dir` when asked (admin route or watcher).
    pub fn with_settings(engine: Arc<Engine>, index_dir: Option<PathBuf>, settings: ServiceSettings) -> Self {
        let metrics = metrics::Metrics::new();
        metrics.set_generation(&engine.manifest().generation, engine.manifest().built_at_unix);
        AppState {
            inner: Arc::new(Inner {
                engine: RwLock::new(Serving { engine, since: SystemTime::now() }),
                index_dir,
                responses: Cache::with_byte_budget(settings.response_cache_entries, settings.response_cache_bytes),
                settings,
                metrics,
                inflight: AtomicUsize::new(0),
                inflight_writes: AtomicUsize::new(0),
                reloading: Mutex::new(()),
                source: None,
                pulling: Mutex::new(None),
            }),
        }
    }

    /// Makes this a replica of `source`: the admin route pulls what the source's `CURRENT`
    /// names before it reloads ([`AppState::refresh`]), polling or not.
    ///
    /// # Panics
    /// Once the state has been cloned (call it first).
    #[must_use]
    pub fn pulling_from(mut self, source: Arc<hyrank_engine::generation::remote::Remote>) -> Self {
        Arc::get_mut(&mut self.inner).expect("pulling_from before the state is shared").source = Some(source);
        self
    }

    /// The engine serving now.
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.serving().engine)
    }

    fn serving(&self) -> std::sync::RwLockReadGuard<'_, Serving> {
        self.inner.engine.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the serving generation was swapped in.
    pub fn serving_since(&self) -> SystemTime {
        self.serving().since
    }

    /// The settings the service runs with.
    pub fn settings(&self) -> &ServiceSettings {
        &self.inner.settings
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// The metrics as Prometheus text.
    pub fn render_metrics(&self) -> String {
        let engine = self.engine();
        self.inner.metrics.render(&metrics::Totals {
            engine_queue: self.queue_depth(),
            query_cache: engine.runtime().query_cache_stats(),
            rerank_cache: engine.runtime().rerank_cache().stats(),
            response_cache: self.inner.responses.stats(),
            response_cache_bytes: self.inner.responses.bytes(),
            model_worker: engine.runtime().query_batcher().map(|worker| worker.stats()),
            rerank_worker: engine.rerank_worker().map(|worker| worker.stats()),
            recommend_rerank_worker: engine.recommend_rerank_worker().map(|worker| worker.stats()),
            rerank_query_passes: engine.runtime().rerank_query_passes().counts(),
            live: engine.live().map(|log| log.stats()),
        })
    }

    /// Engine calls queued or running now.
    pub fn queue_depth(&self) -> usize {
        self.inner.inflight.load(Ordering::Relaxed)
    }
}

/// `hyrank-serve`'s HTTP server over `state` (an [`AppState`] expression; workers, bounds and
/// addresses are the caller's): every route ([`configure`]), and a client that closes its side
/// of a connection taken as gone. Then the connection ends and the request's future is dropped,
/// which cancels its engine work (a rerank no one would read); actix by default answers a
/// half-closed connection, hyper by default does not, as here. A macro because the server's
/// factory type cannot be named.
#[macro_export]
macro_rules! http_server {
    ($state:expr) => {{
        let state: $crate::AppState = $state;
        actix_web::HttpServer::new(move || actix_web::App::new().configure($crate::configure(state.clone())))
            .h1_allow_half_closed(false)
    }};
}

/// Mounts every route, with JSON and query error handlers, on an actix service config.
pub fn configure(state: AppState) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| routes::configure(cfg, state)
}
