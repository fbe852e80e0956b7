//! The bounds every request is checked against before the engine sees it, and their checks
//! at start-up.

use super::{bad, positive, SettingsError, SettingsLayer};

/// The longest `body_timeout_secs`: a day.
pub const MAX_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Limits every request is checked against before the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest body in bytes.
    pub max_body_bytes: usize,
    /// Longest a body may take to arrive after its headers, before the time its bytes earn
    /// (a second per KiB, `MIN_BODY_BYTES_PER_SEC` in `middleware.rs`).
    pub body_timeout: std::time::Duration,
    /// Largest k.
    pub max_k: usize,
    /// Largest candidates per retriever.
    pub max_candidates: usize,
    /// Longest query in characters.
    pub max_query_chars: usize,
    /// Deepest rerank.
    pub max_rerank_depth: usize,
    /// Engine calls queued or running at once.
    pub max_inflight: usize,
    /// Events in one write.
    pub max_events: usize,
    /// Item rows written live on top of a generation.
    pub max_live_items: usize,
    /// Records the live log may hold in memory when an event batch is written.
    pub max_live_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            body_timeout: std::time::Duration::from_secs(15),
            max_k: 100,
            max_candidates: 1000,
            max_query_chars: 1000,
            max_rerank_depth: 100,
            max_inflight: 64,
            max_events: 10_000,
            max_live_items: 10_000,
            max_live_events: 5_000_000,
        }
    }
}

impl Limits {
    /// The layer's limits, defaults where it gives none, each checked: at least 1, within the
    /// engine's own bounds, and candidates at least k.
    pub(super) fn from_layer(layer: &SettingsLayer) -> Result<Limits, SettingsError> {
        let defaults = Limits::default();
        let limits = Limits {
            max_body_bytes: positive("max_body_bytes", layer.max_body_bytes, defaults.max_body_bytes)?,
            body_timeout: std::time::Duration::from_secs(positive(
                "body_timeout_secs",
                layer.body_timeout_secs,
                defaults.body_timeout.as_secs() as usize,
            )? as u64),
            max_k: positive("max_k", layer.max_k, defaults.max_k)?,
            max_candidates: positive("max_candidates", layer.max_candidates, defaults.max_candidates)?,
            max_query_chars: positive("max_query_chars", layer.max_query_chars, defaults.max_query_chars)?,
            max_rerank_depth: positive("max_rerank_depth", layer.max_rerank_depth, defaults.max_rerank_depth)?,
            max_inflight: positive("max_inflight", layer.max_inflight, defaults.max_inflight)?,
            max_events: positive("max_events", layer.max_events, defaults.max_events)?,
            max_live_items: positive("max_live_items", layer.max_live_items, defaults.max_live_items)?,
            max_live_events: positive("max_live_events", layer.max_live_events, defaults.max_live_events)?,
        };
        // A deadline is the headers' time plus this: past a day it overflowed the clock and
        // every request, /healthz too, panicked its worker while the process kept its port.
        if limits.body_timeout > MAX_BODY_TIMEOUT {
            return Err(bad(
                "body_timeout_secs",
                format!(
                    "must be at most {} (a day), got {}",
                    MAX_BODY_TIMEOUT.as_secs(),
                    limits.body_timeout.as_secs()
                ),
            ));
        }
        use hyrank_engine::request::{MAX_CANDIDATES, MAX_K, MAX_RERANK};
        if limits.max_k > MAX_K {
            return Err(bad("max_k", format!("the engine serves at most {MAX_K}")));
        }
        if limits.max_candidates > MAX_CANDIDATES {
            return Err(bad("max_candidates", format!("the engine serves at most {MAX_CANDIDATES}")));
        }
        // A request's candidates must be at least its k: a k above max_candidates could never
        // be served.
        if limits.max_candidates < limits.max_k {
            return Err(bad(
                "max_candidates",
                format!("is {} but max_k is {}: candidates must be at least k", limits.max_candidates, limits.max_k),
            ));
        }
        // As k and candidates: a bound the engine would refuse anyway is refused at start, not
        // discovered by the first request that asks for more than the engine's.
        if limits.max_rerank_depth > MAX_RERANK {
            return Err(bad("max_rerank_depth", format!("the engine reranks at most {MAX_RERANK}")));
        }
        Ok(limits)
    }
}
