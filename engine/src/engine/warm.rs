//! A generation's models run once before it serves.
//!
//! A fresh server's first requests paid for cold weights (pages not yet read, buffers not yet
//! grown), and a rerank budget had no pass time to judge by: its first budgeted pass started
//! blind and could run far past the budget (docs/SERVICE.md). Model servers warm up for the
//! same reason (TensorFlow Serving's warm-up requests, Triton's model warm-up). Here each
//! model the generation serves with runs on a few of the catalog's own items, so the first
//! requests find it warm and [`crate::rerank::PassTimes`] holds a pass time for each reranker.

use std::time::Instant;

use super::Engine;
use crate::call::Call;
use crate::cross::ItemText;
use crate::error::Result;
use crate::rerank::Reranker;

/// What [`Engine::warm_up`] ran, with each model's time in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmUp {
    /// The query encode, after a first one not timed.
    pub encode_ms: Option<f64>,
    /// Per reranker ([`Reranker::pass_key`]): the recorded call's time, after a first not timed.
    pub rerank_ms: Vec<(String, f64)>,
    /// Why the rerankers did not run, when they did not.
    pub skipped: Option<String>,
}

/// Words of the first item's title the warm-up reads as its query: a query's length, not a
/// title's.
const QUERY_WORDS: usize = 6;

impl Engine {
    /// Runs the query encoder and each reranker this generation serves with (its trained
    /// search and recommendation rerankers, and late interaction) on its own first items: each
    /// model once untimed on the first pass's worth of items, then once on the next, which
    /// records its pass time as a served rerank does. The reranks take a rerank turn as served
    /// ones do, so a warm-up beside serving traffic waits its turn (at most the turn wait, then
    /// it skips them and says why). Nothing it scores is an answer; the caches keep its
    /// entries as any request's.
    ///
    /// A catalog of fewer than two items warms nothing up.
    ///
    /// # Errors
    /// A model or store failure.
    pub fn warm_up(&self) -> Result<WarmUp> {
        let mut done = WarmUp::default();
        if self.len() < 2 {
            return Ok(done);
        }
        let title = self.item_at(0)?.title;
        let query: String = title.split_whitespace().take(QUERY_WORDS).collect::<Vec<_>>().join(" ");
        let query = if query.is_empty() { "warm up".to_string() } else { query };
        // Two texts, so the second encode is not read from the query cache.
        self.runtime.embed_query(&format!("{query} ?"))?;
        let start = Instant::now();
        self.runtime.embed_query(&query)?;
        done.encode_ms = Some(ms(start));
        let mut rerankers: Vec<&dyn Reranker> = Vec::new();
        rerankers.extend(self.trained.as_ref().map(|t| t as &dyn Reranker));
        rerankers.extend(self.recommend_trained.as_ref().map(|t| t as &dyn Reranker));
        rerankers.push(&self.late_interaction);
        let turn = match self.runtime.rerank_turn(None, &Call::now()) {
            Ok(turn) => turn,
            Err(e) => {
                done.skipped = Some(format!("no rerank turn: {e}"));
                return Ok(done);
            }
        };
        for reranker in rerankers {
            // Two passes' worth of different items: the second's scores are not in the
            // rerank cache, which a pass would be read from untimed.
            let pass = reranker.pass_items().min(self.len() / 2).max(1);
            let contents = (0..2 * pass as u32)
                .map(|index| {
                    let read = reranker.reads_text(index);
                    Ok(if read { Some(self.item_at(index)?.content()) } else { None })
                })
                .collect::<Result<Vec<_>>>()?;
            let items: Vec<ItemText<'_>> = contents
                .iter()
                .enumerate()
                .map(|(index, text)| ItemText { index: Some(index as u32), text: text.as_deref().unwrap_or_default() })
                .collect();
            // The query's states from its encode, as a served search hands them over (a
            // PreTTR reranker then skips its own query pass): a text of its own, since a query
            // the cache holds is not encoded again.
            let query = format!("{query} {}", done.rerank_ms.len() + 1);
            let states = match reranker.query_layers() {
                Some(layers) => self.runtime.embed_query_keeping(&query, Some(layers))?.and_then(|(_, states)| states),
                None => None,
            };
            reranker.score_with(&query, states.as_ref(), &items[..pass])?;
            let start = Instant::now();
            let times = self.runtime.pass_times();
            crate::rerank::score_within(reranker, &query, states.as_ref(), &items[pass..], None, times, &Call::now())?;
            done.rerank_ms.push((reranker.pass_key(), ms(start)));
        }
        drop(turn);
        Ok(done)
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
