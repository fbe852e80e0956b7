//! Where a scoring pass's time goes (`HYRANK_RERANK_PROFILE=1`, for measuring only): each mark
//! waits for the device to finish the work queued so far and logs the milliseconds since the
//! previous mark, so that a phase's time is its own rather than the next synchronisation's.
//! Waiting removes the overlap of host and device work, so a profiled pass is slower than a
//! plain one; `bench/gpu_run.sh` runs both.

use std::sync::OnceLock;
use std::time::Instant;

use candle_core::Device;

use crate::error::Result;

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("HYRANK_RERANK_PROFILE").as_deref() == Ok("1"))
}

/// The marks of one pass; does nothing unless profiling is on.
pub(super) struct Phases<'a> {
    device: &'a Device,
    last: Option<Instant>,
}

impl<'a> Phases<'a> {
    /// Starts timing after the work already queued on `device`.
    pub(super) fn start(device: &'a Device) -> Result<Self> {
        if !enabled() {
            return Ok(Phases { device, last: None });
        }
        device.synchronize()?;
        Ok(Phases { device, last: Some(Instant::now()) })
    }

    /// Logs the time since the last mark as `phase` (target `hyrank_rerank_profile`).
    pub(super) fn mark(&mut self, phase: &'static str, pairs: usize, tokens: usize) -> Result<()> {
        if let Some(last) = self.last {
            self.device.synchronize()?;
            let ms = last.elapsed().as_secs_f64() * 1e3;
            tracing::info!(target: "hyrank_rerank_profile", phase, pairs, tokens, ms);
            self.last = Some(Instant::now());
        }
        Ok(())
    }
}
