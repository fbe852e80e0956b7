//! A bound on how many model reranks run at once, with a bounded wait for a turn.
//!
//! A rerank is the costly stage of a request (a late-interaction rerank of 100 items with a
//! 1,000-character query took 1.84 CPU-seconds on 2 cores), and the HTTP layer bounds only how
//! many engine calls are queued or running (`max_inflight`, 64). Sixty-four such requests ran
//! at once, each at 1/32 of the cores: none finished for about a minute, and every other
//! request waited behind them. Here at most `slots` reranks run; the others wait their turn,
//! and one that cannot start within the wait is refused as overloaded (the client retries)
//! instead of queueing work no one may still want. A request with a rerank budget stops
//! waiting when its budget runs out and is answered without the rerank; one whose client
//! hung up leaves the queue without taking a turn.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::call::Call;
use crate::error::{Error, Result};

/// How long a rerank waits for a turn before it is refused.
pub const RERANK_WAIT: Duration = Duration::from_secs(5);

/// How often a waiting caller looks whether its client has gone.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// At most `slots` holders at once ([`Gate::enter`]).
pub struct Gate {
    slots: usize,
    wait: Duration,
    busy: Mutex<usize>,
    freed: Condvar,
}

/// A turn through a [`Gate`], given back when dropped; [`Turn::free`] where nothing is gated.
pub struct Turn<'a>(Option<&'a Gate>);

impl Turn<'_> {
    /// A turn that holds no gate.
    pub fn free() -> Self {
        Turn(None)
    }
}

impl Gate {
    /// A gate of `slots` turns (at least 1), refusing a caller that waited `wait` for one.
    pub fn new(slots: usize, wait: Duration) -> Self {
        Gate { slots: slots.max(1), wait, busy: Mutex::new(0), freed: Condvar::new() }
    }

    /// Waits for a turn, at most the gate's wait, and not past `until` (the request's rerank
    /// budget), while `call`'s client still waits.
    ///
    /// `Ok(None)`: with `until`, no turn came by it or by the end of the gate's wait; the
    /// caller goes on without the gated work.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when every turn stayed taken for the gate's wait, without `until`;
    /// [`Error::Cancelled`] when the client went away meanwhile.
    pub fn enter(&self, until: Option<Instant>, call: &Call) -> Result<Option<Turn<'_>>> {
        let refused = Instant::now() + self.wait;
        let mut busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *busy >= self.slots {
            call.check()?;
            let now = Instant::now();
            if until.is_some_and(|until| now >= until) {
                return Ok(None);
            }
            if now >= refused {
                // A request with a budget is answered without the rerank, as when its budget
                // runs out: it asked for an answer in time, not for the rerank at any cost.
                return match until {
                    Some(_) => Ok(None),
                    None => Err(Error::Overloaded { queue: "the rerank stage", capacity: self.slots }),
                };
            }
            let end = until.map_or(refused, |until| until.min(refused));
            let nap = end.saturating_duration_since(now).min(CANCEL_POLL);
            busy = self.freed.wait_timeout(busy, nap).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        call.check()?;
        *busy += 1;
        Ok(Some(Turn(Some(self))))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(gate) = self.0 {
            *gate.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
            gate.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_lets_slots_through_and_refuses_after_its_wait() {
        let call = Call::now();
        let gate = Gate::new(2, Duration::from_millis(50));
        let (a, _b) = (gate.enter(None, &call).unwrap(), gate.enter(None, &call).unwrap());
        let start = Instant::now();
        let refused = gate.enter(None, &call).err().expect("a third turn waits, then is refused");
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(matches!(refused, Error::Overloaded { capacity: 2, .. }), "{refused}");
        drop((a, _b));
        // A turn given back wakes a waiting caller at once, not when its wait runs out.
        let gate = Gate::new(1, Duration::from_secs(10));
        let held = gate.enter(None, &call).unwrap();
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                let start = Instant::now();
                gate.enter(None, &Call::now()).map(|turn| turn.map(|_| start.elapsed()))
            });
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
            let waited = waiting.join().unwrap().expect("let in").expect("a turn");
            assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
        });
    }

    #[test]
    fn a_budget_ends_the_wait_without_refusing_and_a_gone_client_leaves_the_queue() {
        let gate = Gate::new(1, Duration::from_secs(10));
        let held = gate.enter(None, &Call::now()).unwrap();
        let start = Instant::now();
        let until = start + Duration::from_millis(30);
        assert!(gate.enter(Some(until), &Call::now()).unwrap().is_none(), "the budget ran out first");
        assert!(start.elapsed() < Duration::from_secs(5));
        // A budget past the gate's wait ends at the wait, answered without the rerank too.
        let short = Gate::new(1, Duration::from_millis(30));
        let taken = short.enter(None, &Call::now()).unwrap();
        assert!(short.enter(Some(start + Duration::from_secs(60)), &Call::now()).unwrap().is_none());
        drop(taken);
        // A budget already spent, with a turn free, still takes the turn: the stage decides.
        drop(held);
        assert!(gate.enter(Some(start), &Call::now()).unwrap().is_some());

        let held = gate.enter(None, &Call::now()).unwrap();
        let (call, guard) = Call::now().cancellable();
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                let start = Instant::now();
                (gate.enter(None, &call).map(|turn| turn.is_some()), start.elapsed())
            });
            std::thread::sleep(Duration::from_millis(50));
            drop(guard);
            let (entered, waited) = waiting.join().unwrap();
            assert!(matches!(entered, Err(Error::Cancelled)), "{entered:?}");
            assert!(waited < Duration::from_secs(5), "left after {waited:?}");
        });
        drop(held);
        assert!(gate.enter(None, &Call::now()).unwrap().is_some(), "the cancelled caller took no turn");
    }
}
