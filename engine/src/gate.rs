//! A bound on how many model reranks run at once, with a bounded wait for a turn.
//!
//! A rerank is the costly stage of a request (a late-interaction rerank of 100 items with a
//! 1,000-character query took 1.84 CPU-seconds on 2 cores), and the HTTP layer bounds only how
//! many engine calls are queued or running (`max_inflight`, 64). Sixty-four such requests ran
//! at once, each at 1/32 of the cores: none finished for about a minute, and every other
//! request waited behind them. Here at most `slots` reranks run; the others wait their turn,
//! and one that cannot start within the wait is refused as overloaded (the client retries)
//! instead of queueing work no one may still want.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a rerank waits for a turn before it is refused.
pub const RERANK_WAIT: Duration = Duration::from_secs(5);

/// At most `slots` holders at once ([`Gate::enter`]).
pub struct Gate {
    slots: usize,
    wait: Duration,
    busy: Mutex<usize>,
    freed: Condvar,
}

/// A turn through a [`Gate`], given back when dropped.
pub struct Turn<'a>(&'a Gate);

impl Gate {
    /// A gate of `slots` turns (at least 1), refusing a caller that waited `wait` for one.
    pub fn new(slots: usize, wait: Duration) -> Self {
        Gate { slots: slots.max(1), wait, busy: Mutex::new(0), freed: Condvar::new() }
    }

    /// Waits for a turn.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when every turn stayed taken for the gate's wait.
    pub fn enter(&self) -> Result<Turn<'_>> {
        let deadline = Instant::now() + self.wait;
        let mut busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *busy >= self.slots {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Overloaded { queue: "the rerank stage", capacity: self.slots });
            }
            busy = self.freed.wait_timeout(busy, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        *busy += 1;
        Ok(Turn(self))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_lets_slots_through_and_refuses_after_its_wait() {
        let gate = Gate::new(2, Duration::from_millis(50));
        let (a, _b) = (gate.enter().unwrap(), gate.enter().unwrap());
        let start = Instant::now();
        let refused = gate.enter().err().expect("a third turn waits, then is refused");
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(matches!(refused, Error::Overloaded { capacity: 2, .. }), "{refused}");
        drop((a, _b));
        // A turn given back wakes a waiting caller at once, not when its wait runs out.
        let gate = Gate::new(1, Duration::from_secs(10));
        let held = gate.enter().unwrap();
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                let start = Instant::now();
                gate.enter().map(|_| start.elapsed())
            });
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
            let waited = waiting.join().unwrap().expect("let in");
            assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
        });
    }
}
