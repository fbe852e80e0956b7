//! A rerank within a time budget: the window scored pass by pass while the passes fit
//! ([`score_within`]), judged by how long the reranker's passes have taken ([`PassTimes`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Reranker;
use crate::cross::ItemText;
use crate::embed::QueryStates;
use crate::error::Result;

/// How long each reranker's passes take, by [`Reranker::pass_key`], estimated over requests as
/// TCP estimates a round trip (Jacobson and Karels; RFC 6298 §2): a smoothed mean and a
/// smoothed deviation of the passes that ran the model (a pass answered from a cache of scores
/// says nothing of the model's time, and is neither timed nor held to the budget). A budgeted
/// rerank starts a pass only when one of `mean + 2 × deviation` would end in time: under load a
/// pass takes several times what it takes alone, and varies (late interaction on SciFact, 4
/// clients on 2 cores: p99 1.24 s at a 1 s budget with this estimate; docs/SERVICE.md). An
/// estimate that stops a pass shrinks by a tenth, at most once per mean pass time,
/// so one taken under a load that has passed is tried again rather than kept forever, and a
/// burst of requests it stops does not talk it down at once.
#[derive(Debug, Default)]
pub struct PassTimes(std::sync::Mutex<std::collections::HashMap<String, PassTime>>);

/// One reranker's smoothed pass time and deviation, and when it last shrank.
#[derive(Debug, Clone, Copy)]
struct PassTime {
    mean: Duration,
    deviation: Duration,
    shrunk: Instant,
}

impl PassTimes {
    fn times(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, PassTime>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What a pass of the reranker keyed `key` is taken to need (`mean + 2 × deviation`);
    /// `None` before its first.
    pub fn expected(&self, key: &str) -> Option<Duration> {
        self.times().get(key).map(|t| t.mean + t.deviation * 2)
    }

    /// Adds a sample: a pass of `key`'s reranker that took `took` (RFC 6298's gains: 1/8 for
    /// the mean, 1/4 for the deviation).
    pub fn record(&self, key: &str, took: Duration) {
        let mut times = self.times();
        match times.get_mut(key) {
            Some(time) => {
                time.deviation = (time.deviation * 3 + time.mean.abs_diff(took)) / 4;
                time.mean = (time.mean * 7 + took) / 8;
            }
            // RFC 6298 §2.2: the first sample is the mean, half of it the deviation. It may
            // shrink at once (its time since a shrink counts from a mean pass ago).
            None => {
                let shrunk = Instant::now().checked_sub(took).unwrap_or_else(Instant::now);
                let first = PassTime { mean: took, deviation: took / 2, shrunk };
                times.insert(key.to_string(), first);
            }
        }
    }

    /// A pass of `key`'s reranker was not started for its estimate: the estimate shrinks by a
    /// tenth, unless it shrank less than a mean pass time ago.
    fn skipped(&self, key: &str) {
        let mut times = self.times();
        if let Some(time) = times.get_mut(key).filter(|time| time.shrunk.elapsed() >= time.mean) {
            time.mean = time.mean.mul_f64(0.9);
            time.deviation = time.deviation.mul_f64(0.9);
            time.shrunk = Instant::now();
        }
    }
}

/// The time of a whole pass of `full` items, from one of `items` that took `took` (a window's
/// last pass is short).
fn whole_pass(took: Duration, items: usize, full: usize) -> Duration {
    took.mul_f64(full as f64 / items.max(1) as f64)
}

/// The scores of `items` (in their order, the fused list's), or, with `until` (the request's
/// budget), of as many of the first as fit: then they go one pass of the reranker's batch
/// ([`Reranker::pass_items`]) at a time, and a pass that runs the model starts only while one as
/// long as `times` expects would end in time (any, before the first is known); a pass whose
/// scores are all cached just goes. Fewer scores than items means the budget ran out. Nothing
/// starts once `call`'s client has gone. The passes that ran the model are timed into `times`
/// (without a budget, a call none of whose scores were cached, as its passes).
///
/// Without a budget, for a call a client can cancel, the passes go the same way without the
/// time test, so a client that hangs up mid-rerank stops it at the next pass (a hung-up
/// late-interaction rerank of 100 ran its 12 CPU-seconds to the end). Passes repeat per pass
/// the work a reranker does once per call (late interaction encodes the query again, a PreTTR
/// model without the embedder's states runs the query's side again: about a millisecond for
/// a short query), so a call nothing can cancel (batch jobs, evaluation) goes in one.
///
/// # Errors
/// What [`Reranker::score_with`] fails with; [`crate::Error::Cancelled`] when the client went
/// away.
pub fn score_within(
    reranker: &dyn Reranker,
    query: &str,
    states: Option<&Arc<QueryStates>>,
    items: &[ItemText<'_>],
    until: Option<Instant>,
    times: &PassTimes,
    call: &crate::call::Call,
) -> Result<Vec<f32>> {
    call.check()?;
    let (key, per_pass) = (reranker.pass_key(), reranker.pass_items().max(1));
    let full = per_pass.min(items.len());
    // In one call when nothing can stop it (batch jobs, evaluation); else pass by pass, so a
    // client that hangs up mid-rerank stops it at the next pass.
    if until.is_none() && !call.is_cancellable() {
        let cold = !items.iter().any(|item| reranker.holds_scores(query, std::slice::from_ref(item)));
        let started = Instant::now();
        let scores = reranker.score_with(query, states, items)?;
        if cold && !items.is_empty() {
            let passes = u32::try_from(items.len().div_ceil(per_pass)).unwrap_or(u32::MAX);
            times.record(&key, started.elapsed() / passes);
        }
        return Ok(scores);
    }
    let mut scores = Vec::with_capacity(items.len());
    for pass in items.chunks(per_pass) {
        call.check()?;
        if reranker.holds_scores(query, pass) {
            scores.extend(reranker.score_with(query, states, pass)?);
            continue;
        }
        let started = Instant::now();
        // A short last pass is expected to take its share of a whole one.
        let expected = times.expected(&key).map(|whole| whole.mul_f64(pass.len() as f64 / full as f64));
        if let Some(until) = until.filter(|&until| !starts_in_time(started, expected, until)) {
            if started < until {
                times.skipped(&key);
            }
            break;
        }
        scores.extend(reranker.score_with(query, states, pass)?);
        times.record(&key, whole_pass(started.elapsed(), pass.len(), full));
    }
    Ok(scores)
}

/// Whether a pass starting at `now` and taking `expected` (`None`: unknown) ends by `until`.
fn starts_in_time(now: Instant, expected: Option<Duration>, until: Instant) -> bool {
    now < until && expected.is_none_or(|expected| now + expected <= until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Call;
    use crate::error::Error;
    use crate::rerank::tests::Fake;

    /// Scores as [`Fake`] does, taking `pause` per pass.
    struct Slow(Duration);

    impl Reranker for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn score(&self, query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
            std::thread::sleep(self.0);
            Fake("slow").score(query, items)
        }
        fn pass_items(&self) -> usize {
            8
        }
    }

    /// Scores as [`Fake`] does, every score already cached.
    struct Held;

    impl Reranker for Held {
        fn name(&self) -> &str {
            "held"
        }
        fn score(&self, query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
            Fake("held").score(query, items)
        }
        fn pass_items(&self) -> usize {
            8
        }
        fn holds_scores(&self, _query: &str, _items: &[ItemText<'_>]) -> bool {
            true
        }
    }

    #[test]
    fn a_budget_keeps_the_passes_that_fit_and_a_gone_client_stops_them() {
        let texts: Vec<String> = (0..40).map(|n| "x".repeat(n)).collect();
        let items: Vec<ItemText<'_>> = texts.iter().map(|text| ItemText { index: None, text }).collect();
        let later = |ms| Instant::now() + Duration::from_millis(ms);
        let fresh = PassTimes::default;
        let all = score_within(&Fake("f"), "q", None, &items, Some(later(60_000)), &fresh(), &Call::now()).unwrap();
        assert_eq!(all, (0..40).map(|n| n as f32).collect::<Vec<_>>(), "every pass, in the items' order");
        assert_eq!(score_within(&Slow(Duration::ZERO), "q", None, &items, None, &fresh(), &Call::now()).unwrap(), all);
        let spent = score_within(&Fake("f"), "q", None, &items, Some(Instant::now()), &fresh(), &Call::now()).unwrap();
        assert!(spent.is_empty(), "a budget spent before the stage scores nothing");
        // Passes of at least 30 ms within 100: the first starts (nothing is known), and after it
        // the estimate is 60 ms (30 and a deviation of 15), so a second starts at about 30 ms;
        // after it, 52 ms (the deviation 11): no third. One pass where the sleeps ran long.
        let (slow, times) = (Slow(Duration::from_millis(30)), PassTimes::default());
        let scored = score_within(&slow, "q", None, &items, Some(later(100)), &times, &Call::now()).unwrap();
        assert!([8, 16].contains(&scored.len()), "{} scores", scored.len());
        assert_eq!(scored, all[..scored.len()]);
        // A pass known to take 300 ms (and 150 of deviation) does not start with 200 ms left;
        // the estimate shrinks by a tenth, once per mean pass time.
        let known = PassTimes::default();
        known.record("slow", Duration::from_millis(300));
        assert_eq!(known.expected("slow"), Some(Duration::from_millis(600)));
        for _ in 0..2 {
            assert!(score_within(&slow, "q", None, &items, Some(later(200)), &known, &Call::now()).unwrap().is_empty());
        }
        assert_eq!(known.expected("slow"), Some(Duration::from_millis(540)), "shrunk once, not twice");
        // Scores all cached go whatever the budget, and time nothing.
        let held = PassTimes::default();
        assert_eq!(score_within(&Held, "q", None, &items, Some(Instant::now()), &held, &Call::now()).unwrap(), all);
        assert_eq!(held.expected("held"), None);
        // A whole call counts as its passes: 50 ms over 40 items is 5 passes of 10 ms, and half
        // that as the first deviation: 20 ms and what the sleep overran.
        let whole = PassTimes::default();
        score_within(&Slow(Duration::from_millis(50)), "q", None, &items, None, &whole, &Call::now()).unwrap();
        let per_pass = whole.expected("slow").unwrap();
        assert!(per_pass >= Duration::from_millis(20) && per_pass < Duration::from_secs(1), "{per_pass:?}");
        assert_eq!(whole_pass(Duration::from_millis(6), 6, 8), Duration::from_millis(8), "a short last pass");
        let (call, hung_up) = Call::now().cancellable();
        drop(hung_up);
        let stopped = score_within(&Fake("f"), "q", None, &items, None, &fresh(), &call);
        assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
    }

    /// Scores as [`Fake`] does, and hangs its client up during its first pass.
    struct HangsUp {
        hang_up: std::sync::Mutex<Option<crate::call::CancelOnDrop>>,
        passes: std::sync::atomic::AtomicUsize,
    }

    impl Reranker for HangsUp {
        fn name(&self) -> &str {
            "hangs_up"
        }
        fn score(&self, query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
            self.passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(self.hang_up.lock().unwrap().take());
            Fake("hangs_up").score(query, items)
        }
        fn pass_items(&self) -> usize {
            8
        }
    }

    #[test]
    fn a_client_that_hangs_up_mid_rerank_stops_it_at_the_next_pass_budget_or_not() {
        let texts: Vec<String> = (0..40).map(|n| "x".repeat(n)).collect();
        let items: Vec<ItemText<'_>> = texts.iter().map(|text| ItemText { index: None, text }).collect();
        for until in [None, Some(Instant::now() + Duration::from_secs(60))] {
            let (call, hang_up) = Call::now().cancellable();
            let reranker = HangsUp { hang_up: std::sync::Mutex::new(Some(hang_up)), passes: Default::default() };
            let stopped = score_within(&reranker, "q", None, &items, until, &PassTimes::default(), &call);
            assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
            assert_eq!(reranker.passes.into_inner(), 1, "one pass of five ran");
        }
        // A call nothing can cancel goes in one call, as the reranker batches best.
        let reranker = HangsUp { hang_up: std::sync::Mutex::new(None), passes: Default::default() };
        score_within(&reranker, "q", None, &items, None, &PassTimes::default(), &Call::now()).unwrap();
        assert_eq!(reranker.passes.into_inner(), 1);
    }

    #[test]
    fn a_pass_starts_only_while_one_as_long_as_expected_would_end_in_time() {
        let (now, ms) = (Instant::now(), Duration::from_millis);
        assert!(starts_in_time(now, None, now + ms(1)));
        assert!(!starts_in_time(now, None, now), "nothing starts once the budget is spent");
        assert!(starts_in_time(now, Some(ms(10)), now + ms(10)));
        assert!(!starts_in_time(now, Some(ms(11)), now + ms(10)));
    }
}
