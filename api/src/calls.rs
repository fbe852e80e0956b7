//! Engine work off the HTTP workers: each call counted against its queue's bound
//! (`max_inflight`) while it is queued or running on actix's blocking pool, and cancelled when
//! its client hangs up.

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::StatusCode;
use actix_web::web;
use hyrank_engine::call::CancelOnDrop;
use hyrank_engine::Engine;

use crate::error::ApiError;
use crate::AppState;

/// Which bound a call counts against.
#[derive(Clone, Copy)]
enum Queue {
    /// Reads: searches, recommendations, items, the readiness probe.
    Engine,
    /// Live writes, bounded apart.
    Writes,
}

impl Queue {
    fn counter(self, state: &AppState) -> &AtomicUsize {
        match self {
            Queue::Engine => &state.inner.inflight,
            Queue::Writes => &state.inner.inflight_writes,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Queue::Engine => "engine calls",
            Queue::Writes => "live writes",
        }
    }
}

/// One call counted against its queue's bound until the work itself ends: it travels with the
/// work onto the blocking pool, so a request whose client hung up (its future dropped) is
/// counted for as long as its work still runs.
struct QueueSlot {
    state: AppState,
    queue: Queue,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.queue.counter(&self.state).fetch_sub(1, Ordering::Relaxed);
    }
}

fn overloaded(state: &AppState, what: &str) -> ApiError {
    state.metrics().rejected.inc();
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        format!("{} {what} are already queued or running; retry shortly", state.settings().limits.max_inflight),
    )
}

/// Runs engine work off the HTTP workers, within the queue bound.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Engine) -> hyrank_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    run_counted(state, Queue::Engine, work).await
}

/// [`blocking`] for live writes, within a bound of their own (`max_inflight` too): a flood of
/// costly searches filled the one queue and every write was refused as overloaded until it
/// drained, so a read-side flood stopped ingestion.
pub(crate) async fn blocking_write<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Engine) -> hyrank_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    run_counted(state, Queue::Writes, work).await
}

async fn run_counted<T: Send + 'static>(
    state: &AppState,
    queue: Queue,
    work: impl FnOnce(&Engine) -> hyrank_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let limit = state.settings().limits.max_inflight;
    let counter = queue.counter(state);
    if counter.fetch_add(1, Ordering::Relaxed) >= limit {
        counter.fetch_sub(1, Ordering::Relaxed);
        return Err(overloaded(state, queue.what()));
    }
    let slot = QueueSlot { state: state.clone(), queue };
    let engine = state.engine();
    // The request's span (its id) follows the work onto the blocking pool, so what the engine
    // logs there says which request it was for.
    let span = tracing::Span::current();
    let work = move || {
        let _slot = slot;
        span.in_scope(|| work(&engine))
    };
    web::block(work).await.map_err(panicked)?.map_err(ApiError::from)
}

/// What a request whose work on the blocking pool never returned gets: actix's `web::block`
/// fails only when the closure panicked (a bug, whose message the panic hook printed), not
/// when the pool is busy (work waits its turn), so it is a 500, not a 503 to retry.
pub(crate) fn panicked(_: actix_web::error::BlockingError) -> ApiError {
    // The error's own text ("thread pool is shut down") would mislead.
    tracing::error!("a request's work panicked (the panic hook printed where)");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request failed on a bug; it is logged")
}

/// Cancels a request's engine call when dropped before [`HangUp::answered`] (its client went
/// away: actix drops the request's future), and counts it.
pub(crate) struct HangUp {
    pub(crate) cancel: Option<CancelOnDrop>,
    pub(crate) state: AppState,
    pub(crate) route: &'static str,
}

impl HangUp {
    /// The engine call returned while the client waited.
    pub(crate) fn answered(mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.finished();
        }
    }
}

impl Drop for HangUp {
    fn drop(&mut self) {
        if self.cancel.take().is_some() {
            // Dropping the guard raises the call's flag.
            self.state.metrics().observe_abandoned(self.route);
        }
    }
}
