//! One caller's request as the engine's stages see it: when it arrived (what a rerank budget
//! counts from) and whether the caller still waits for the answer.
//!
//! A client that hangs up does not stop the work it asked for by itself: the HTTP layer drops
//! its side of the request, but the engine call runs on a blocking thread to the end, and a
//! rerank of 100 candidates is seconds of CPU on 2 cores that no one reads. The HTTP layer
//! holds a [`CancelOnDrop`] for each call; when the request is dropped, the flag is set, and
//! the stages check it where stopping is cheap: before the first stage, while waiting for a
//! rerank turn, once the turn is taken, and between rerank passes
//! ([`crate::rerank::score_within`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};

/// A request's arrival and its cancellation flag.
#[derive(Debug, Clone)]
pub struct Call {
    arrived: Instant,
    cancelled: Option<Arc<AtomicBool>>,
}

/// Cancels its [`Call`] when dropped, unless [`CancelOnDrop::finished`] was called first.
#[derive(Debug)]
pub struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl Call {
    /// A call arriving now that nothing cancels (batch jobs, evaluation, tests).
    pub fn now() -> Self {
        Call::arrived_at(Instant::now())
    }

    /// A call that arrived at `arrived`, where the caller's clock started (the HTTP layer
    /// starts it once it has read the request, so that time queued before the engine counts
    /// against a budget).
    pub fn arrived_at(arrived: Instant) -> Self {
        Call { arrived, cancelled: None }
    }

    /// This call, cancelled when the returned guard is dropped.
    pub fn cancellable(mut self) -> (Self, CancelOnDrop) {
        let flag = Arc::new(AtomicBool::new(false));
        self.cancelled = Some(flag.clone());
        (self, CancelOnDrop(Some(flag)))
    }

    /// When the call arrived.
    pub fn arrived(&self) -> Instant {
        self.arrived
    }

    /// Whether a client can cancel it (the HTTP layer's calls), so that its work is worth
    /// handing over in pieces it can stop between.
    pub fn is_cancellable(&self) -> bool {
        self.cancelled.is_some()
    }

    /// Whether the caller has gone.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.as_ref().is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    /// Stops work no one waits for.
    ///
    /// # Errors
    /// [`Error::Cancelled`] once the caller has gone.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

impl CancelOnDrop {
    /// The answer was delivered: dropping the guard cancels nothing.
    pub fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_cancels_its_call_and_a_finished_one_does_not() {
        let (call, guard) = Call::now().cancellable();
        let copy = call.clone();
        assert!(call.check().is_ok());
        drop(guard);
        assert!(call.is_cancelled() && copy.is_cancelled());
        assert!(matches!(call.check(), Err(Error::Cancelled)));

        let (call, guard) = Call::now().cancellable();
        guard.finished();
        assert!(call.check().is_ok());
        assert!(Call::now().check().is_ok(), "a call without a guard is never cancelled");
    }
}
