//! The pool's other threads kept awake through one transformer pass.
//!
//! A pass forks 25–30 products and attentions per sequence batch, each split over the pool by
//! rayon. Between two of them the pass runs a few microseconds alone (a layer norm, an
//! allocation), and a thread that finds no work spins briefly and then sleeps; the next fork
//! must wake it, and on a virtual machine a sleeping vCPU takes long to wake (a 21-token
//! product that takes 140–180 µs with the second thread spinning took 317–330 µs when it had
//! been asleep: 2-core Xeon VM, 2026-12-02, a throwaway timing loop). So for the length of a
//! pass, the pool's idle threads run a helper that steals work as it appears
//! ([`rayon::yield_now`]) and spins in between, and leaves as soon as the pass ends.
//!
//! The rules that keep helpers from costing other work:
//! - A helper runs only on a thread that is in no pass and no other helper: one that picks a
//!   helper up while it owns a pass (waiting in a join, say) returns at once, so a pass's owner
//!   is never stuck helping another pass.
//! - Helpers are detached ([`rayon::spawn`]): a pass does not wait for its helpers to leave,
//!   and one that stole a long job (another request's whole pass) finishes it on its own time.
//! - A helper executes whatever work the pool has, not only its own pass's, so a request
//!   waiting in the pool is not held back by a spinning helper.
//! - One helper per pass, whatever the pool's size: the configuration measured (2 vCPUs); a
//!   helper per thread on a 16-core pool would keep 15 cores spinning through every query.
//! - A pool of one thread, a pass started outside the pool, and `HYRANK_NO_HELPERS=1` (for
//!   comparisons) spawn none.
//! - A thread waiting for other work of its own ([`refusing_helpers`]) does not become one,
//!   so it is not held until someone else's pass ends.
//!
//! Why a helper cannot wait on its own pass: it is queued before the pass's first fork, and
//! rayon steals the oldest job first, so no thread runs a piece of the pass while the pass's
//! helper is still queued behind it. A helper started later (mid-pass, or from outside the
//! pool) would break that and could spin on top of a fork of its own pass forever.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

thread_local! {
    /// Passes this thread owns or helps, nested.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// Calls of [`refusing_helpers`] this thread is inside, nested.
    static REFUSING: Cell<usize> = const { Cell::new(0) };
}

/// Helpers per pass (see the module's documentation).
const HELPERS: usize = 1;

/// Whether passes spawn helpers: not under `HYRANK_NO_HELPERS=1`.
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| !super::switched_off("HYRANK_NO_HELPERS"))
}

/// Counts the running thread into a pass (or a helper) until dropped, and raises `done`, if
/// given, when it is (a panic included).
struct Inside<'a> {
    done: Option<&'a AtomicBool>,
}

impl<'a> Inside<'a> {
    fn enter(done: Option<&'a AtomicBool>) -> Self {
        DEPTH.set(DEPTH.get() + 1);
        Inside { done }
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get() - 1);
        if let Some(done) = self.done {
            done.store(true, Ordering::Release);
        }
    }
}

/// Runs `pass` on the calling thread with the pool's other threads kept awake to take its
/// forks (see the module's documentation), and returns what it returns.
pub(crate) fn awake<R>(pass: impl FnOnce() -> R) -> R {
    let threads = rayon::current_num_threads();
    let outermost = DEPTH.get() == 0;
    if !outermost || threads == 1 || rayon::current_thread_index().is_none() || !enabled() {
        let _inside = Inside::enter(None);
        return pass();
    }
    let done = Arc::new(AtomicBool::new(false));
    for _ in 0..HELPERS.min(threads - 1) {
        let done = Arc::clone(&done);
        rayon::spawn(move || help(&done));
    }
    let _inside = Inside::enter(Some(&done));
    pass()
}

/// Runs `work` on the calling thread, which meanwhile does not become a helper when it steals
/// one (waiting in a join, say): for a request that waits for its own second half, not for
/// someone else's pass to end.
pub(crate) fn refusing_helpers<R>(work: impl FnOnce() -> R) -> R {
    struct Refusing;
    impl Drop for Refusing {
        fn drop(&mut self) {
            REFUSING.set(REFUSING.get() - 1);
        }
    }
    REFUSING.set(REFUSING.get() + 1);
    let _refusing = Refusing;
    work()
}

/// A helper's loop: steal and run the pool's work until `done`, spinning when there is none.
fn help(done: &AtomicBool) {
    if DEPTH.get() > 0 || REFUSING.get() > 0 {
        return;
    }
    let _inside = Inside::enter(None);
    #[cfg(test)]
    let _live = tests::Live::new();
    let mut idle: u32 = 0;
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            idle = 0;
        } else {
            idle = idle.wrapping_add(1);
            // Let another runnable thread have the core now and then (the pass's owner, if
            // the two share one), without falling asleep.
            if idle % 4096 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    /// Prefix of the test pool's thread names: only its helpers are counted, not those of
    /// passes other tests run at the same time on the global pool.
    const POOL: &str = "awake-test-";

    /// Helpers in their loop now, on the test pool's threads.
    static LIVE: AtomicUsize = AtomicUsize::new(0);

    /// Counts a helper on the test pool while it lives.
    pub(super) struct Live(bool);

    impl Live {
        pub(super) fn new() -> Self {
            let counted = std::thread::current().name().is_some_and(|n| n.starts_with(POOL));
            if counted {
                LIVE.fetch_add(1, Ordering::SeqCst);
            }
            Live(counted)
        }
    }

    impl Drop for Live {
        fn drop(&mut self) {
            if self.0 {
                LIVE.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Waits up to 5 s for `condition`.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        false
    }

    // One test, not several, on the one pool whose helpers `LIVE` counts.
    #[test]
    fn a_pass_has_a_helper_while_it_runs_and_none_after() {
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(2).thread_name(|i| format!("{POOL}{i}")).build().unwrap();
        // During a pass, the other thread is in a helper, and the pass's forks still compute
        // what they would without it.
        let (helped, sum) = pool.install(|| {
            awake(|| (eventually(|| LIVE.load(Ordering::SeqCst) >= 1), (0..1000u64).into_par_iter().sum::<u64>()))
        });
        assert!(helped, "no helper joined the pass");
        assert_eq!(sum, 499_500);
        assert!(eventually(|| LIVE.load(Ordering::SeqCst) == 0), "a helper outlived its pass");
        // Many short passes, then none left behind; the owner's depth is back to zero.
        for _ in 0..300 {
            assert_eq!(pool.install(|| awake(|| (0..64).into_par_iter().map(|x| x * 2).sum::<i32>())), 4032);
        }
        assert!(eventually(|| LIVE.load(Ordering::SeqCst) == 0), "helpers outlived their passes");
        pool.install(|| assert_eq!(DEPTH.get(), 0));
        // A pass that panics still releases its helper.
        let result = pool.install(|| std::panic::catch_unwind(|| awake(|| -> i32 { panic!("in the pass") })));
        assert!(result.is_err());
        assert!(eventually(|| LIVE.load(Ordering::SeqCst) == 0), "a panicking pass kept its helper");
        assert_eq!(pool.install(|| awake(|| 7)), 7);
        // Nested passes and passes outside any pool spawn none, and nest their depth.
        assert_eq!(awake(|| awake(|| DEPTH.get())), 2);
        assert_eq!(DEPTH.get(), 0);
        assert!(eventually(|| LIVE.load(Ordering::SeqCst) == 0));
    }

    #[test]
    fn a_thread_inside_a_pass_or_refusing_does_not_become_a_helper() {
        // Each would spin forever (`done` is never raised) if it did not return at once.
        let done = AtomicBool::new(false);
        refusing_helpers(|| help(&done));
        let _inside = Inside::enter(None);
        help(&done);
    }
}
