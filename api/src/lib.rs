//! hyrank's HTTP API. [`configure`] mounts every route on an actix `App`, so that the binary and
//! the tests serve exactly the same application.
#![warn(missing_docs)]

pub mod error;
mod routes;

use std::sync::{Arc, RwLock};

use hyrank_engine::Engine;

pub use error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state: the serving generation. Handlers take a clone of the `Arc` per request, so a
/// later generation swap never disturbs requests already running.
#[derive(Clone)]
pub struct AppState {
    engine: Arc<RwLock<Arc<Engine>>>,
}

impl AppState {
    /// Serves this engine.
    pub fn new(engine: Engine) -> Self {
        AppState { engine: Arc::new(RwLock::new(Arc::new(engine))) }
    }

    /// Serves an engine that is already shared (tests share one across apps).
    pub fn from_arc(engine: Arc<Engine>) -> Self {
        AppState { engine: Arc::new(RwLock::new(engine)) }
    }

    /// The engine serving now.
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Mounts every route, with JSON and query error handlers, on an actix service config.
pub fn configure(state: AppState) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    move |cfg| routes::configure(cfg, state)
}
