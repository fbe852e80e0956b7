//! Where a model pass's time goes, for measuring only: `HYRANK_RERANK_PROFILE=1` times the
//! reranker's phases (log target `hyrank_rerank_profile`), `HYRANK_EMBED_PROFILE=1` the
//! embedder's (target `hyrank_embed_profile`). Each mark waits for the device to finish the
//! work queued so far and logs the milliseconds since the previous mark, so that a phase's time
//! is its own rather than the next synchronisation's. Waiting removes the overlap of host and
//! device work, so a profiled pass is slower than a plain one; `bench/gpu_run.sh` runs both.
//!
//! Phases nest: a pass's phase (`trained layer`, `encoder`) includes the per-layer phases
//! logged inside it, so sum within one level only. The shared encoder's per-layer phases
//! (candle's path) log under the embedder's target whoever runs them, the reranker's frozen
//! query pass included: with `HYRANK_RERANK_PROFILE` alone that pass is one phase.

use std::sync::OnceLock;
use std::time::Instant;

use candle_core::Device;

use crate::error::Result;

/// Which model's passes are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profiled {
    /// The cross-encoder reranker (`HYRANK_RERANK_PROFILE`).
    Rerank,
    /// The embedder (`HYRANK_EMBED_PROFILE`).
    Embed,
}

impl Profiled {
    fn enabled(self) -> bool {
        static RERANK: OnceLock<bool> = OnceLock::new();
        static EMBED: OnceLock<bool> = OnceLock::new();
        let (cell, variable) = match self {
            Profiled::Rerank => (&RERANK, "HYRANK_RERANK_PROFILE"),
            Profiled::Embed => (&EMBED, "HYRANK_EMBED_PROFILE"),
        };
        *cell.get_or_init(|| std::env::var(variable).as_deref() == Ok("1"))
    }
}

/// The marks of one pass; does nothing unless profiling of its model is on.
pub(crate) struct Phases<'a> {
    device: &'a Device,
    profiled: Profiled,
    last: Option<Instant>,
}

impl<'a> Phases<'a> {
    /// Starts timing after the work already queued on `device`.
    pub(crate) fn start(device: &'a Device, profiled: Profiled) -> Result<Self> {
        if !profiled.enabled() {
            return Ok(Phases { device, profiled, last: None });
        }
        device.synchronize()?;
        Ok(Phases { device, profiled, last: Some(Instant::now()) })
    }

    /// Logs the time since the last mark as `phase`, over `rows` inputs (pairs, texts) of
    /// `tokens` tokens.
    pub(crate) fn mark(&mut self, phase: &'static str, rows: usize, tokens: usize) -> Result<()> {
        if let Some(last) = self.last {
            self.device.synchronize()?;
            let ms = last.elapsed().as_secs_f64() * 1e3;
            match self.profiled {
                Profiled::Rerank => tracing::info!(target: "hyrank_rerank_profile", phase, pairs = rows, tokens, ms),
                Profiled::Embed => tracing::info!(target: "hyrank_embed_profile", phase, texts = rows, tokens, ms),
            }
            self.last = Some(Instant::now());
        }
        Ok(())
    }
}
