//! Model workers: one thread owns a model and serves requests through a bounded queue.
//! Requests that arrive together are run together: the worker takes the first waiting job, then
//! whatever else is already queued (up to `max_batch`), and runs them as one padded batch. When
//! the queue is full a request is refused at once with [`Error::Overloaded`] instead of waiting
//! without limit. [`QueryBatcher`] encodes queries; [`RerankWorker`] scores a trained
//! reranker's pairs.
//!
//! On a GPU this turns many small kernel launches into one; on a CPU it stops concurrent
//! requests from each running their own forward pass over the same few cores.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;

use crate::cross::{CrossEncoder, ItemText};
use crate::embed::{Embedder, QueryStates};
use crate::error::{Error, Result};

/// How the worker batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherSettings {
    /// Most queries per forward pass.
    pub max_batch: usize,
    /// Most queries waiting; beyond it, [`Error::Overloaded`].
    pub queue_capacity: usize,
}

impl Default for BatcherSettings {
    fn default() -> Self {
        BatcherSettings { max_batch: 16, queue_capacity: 256 }
    }
}

/// What the worker has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Queries waiting now.
    pub queued: usize,
    /// Forward passes run.
    pub batches: u64,
    /// Queries encoded.
    pub queries: u64,
    /// Queries refused because the queue was full.
    pub refused: u64,
}

/// A query to encode.
pub struct EncodeJob {
    text: String,
    reply: mpsc::Sender<Result<Vec<f32>>>,
}

/// One request's candidates (catalog index and text) to score against its query.
pub struct RerankJob {
    query: String,
    /// The query's states from the pass that embedded it, when the request kept them.
    states: Option<Arc<QueryStates>>,
    items: Vec<(Option<u32>, String)>,
    reply: mpsc::Sender<Result<Vec<f32>>>,
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    batches: AtomicU64,
    queries: AtomicU64,
    refused: AtomicU64,
}

/// A handle to one model worker thread, fed through a bounded queue: the worker takes the
/// first waiting job, then whatever else is already queued, up to `max_batch`, and runs them
/// together. Cheap to share; the thread ends when the last handle is dropped.
pub struct ModelWorker<J> {
    jobs: SyncSender<J>,
    counters: Arc<Counters>,
    settings: BatcherSettings,
    name: &'static str,
}

/// The query-encoding worker.
pub type QueryBatcher = ModelWorker<EncodeJob>;

/// The trained reranker's worker: the pairs of requests that arrive together are scored in
/// shared forward passes (the cross-encoder cuts them into its own batches). `max_batch` counts
/// requests.
pub type RerankWorker = ModelWorker<RerankJob>;

impl<J: Send + 'static> ModelWorker<J> {
    fn start(
        name: &'static str,
        settings: BatcherSettings,
        mut run: impl FnMut(Vec<J>) + Send + 'static,
    ) -> Result<Self> {
        if settings.max_batch == 0 || settings.queue_capacity == 0 {
            return Err(Error::invalid("batcher", "max_batch and queue_capacity must be at least 1"));
        }
        let (jobs, queue) = mpsc::sync_channel::<J>(settings.queue_capacity);
        let counters = Arc::new(Counters::default());
        let worker_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name(format!("hyrank-{name}"))
            .spawn(move || {
                // recv() fails only when every handle is gone: then nobody is left to answer.
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < settings.max_batch {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    worker_counters.queued.fetch_sub(batch.len(), Ordering::Relaxed);
                    worker_counters.batches.fetch_add(1, Ordering::Relaxed);
                    worker_counters.queries.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    run(batch);
                }
            })
            .map_err(|e| Error::io(format!("starting the {name} thread"), e))?;
        Ok(ModelWorker { jobs, counters, settings, name })
    }

    /// Queues a job, or refuses it at once when the queue is full.
    fn submit(&self, job: J) -> Result<()> {
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(Error::Overloaded { queue: self.name, capacity: self.settings.queue_capacity })
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                Err(stopped(self.name))
            }
        }
    }

    /// Submits a job and waits for its answer.
    fn call<T>(&self, job: impl FnOnce(mpsc::Sender<Result<T>>) -> J) -> Result<T> {
        let (reply, answer) = mpsc::channel();
        self.submit(job(reply))?;
        answer.recv().map_err(|_| stopped(self.name))?
    }

    /// Counts on from the totals of the worker this one replaces (the previous generation's),
    /// so that counts exported as monotonic counters never go back.
    pub fn continue_from(&self, before: BatcherStats) {
        self.counters.batches.fetch_add(before.batches, Ordering::Relaxed);
        self.counters.queries.fetch_add(before.queries, Ordering::Relaxed);
        self.counters.refused.fetch_add(before.refused, Ordering::Relaxed);
    }

    /// Queue depth and throughput counts (for the reranker, `queries` counts requests).
    pub fn stats(&self) -> BatcherStats {
        BatcherStats {
            queued: self.counters.queued.load(Ordering::Relaxed),
            batches: self.counters.batches.load(Ordering::Relaxed),
            queries: self.counters.queries.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> BatcherSettings {
        self.settings
    }
}

fn stopped(name: &str) -> Error {
    Error::io(name.to_string(), std::io::Error::other("the model worker stopped"))
}

impl ModelWorker<EncodeJob> {
    /// Starts the worker thread, which owns the use of `embedder` for queries.
    pub fn spawn(embedder: Arc<Embedder>, settings: BatcherSettings) -> Result<Self> {
        Self::start("query encoder queue", settings, move |batch| encode_batch(&embedder, batch))
    }

    /// The query's embedding, computed in a batch with whatever else is waiting.
    pub fn encode(&self, text: &str) -> Result<Vec<f32>> {
        self.call(|reply| EncodeJob { text: text.to_string(), reply })
    }
}

fn encode_batch(embedder: &Embedder, batch: Vec<EncodeJob>) {
    let texts: Vec<&str> = batch.iter().map(|job| job.text.as_str()).collect();
    match embedder.embed_batch(&texts) {
        Ok(vectors) => {
            for (job, vector) in batch.into_iter().zip(vectors) {
                // A caller that gave up (its request was dropped) is not an error.
                let _ = job.reply.send(Ok(vector));
            }
        }
        Err(e) => {
            let reason = format!("encoding a batch of {} queries: {e}", batch.len());
            for job in batch {
                let path = embedder.settings().model_dir.clone();
                let _ = job.reply.send(Err(Error::Model { path, reason: reason.clone() }));
            }
        }
    }
}

impl ModelWorker<RerankJob> {
    /// Starts the worker thread, which owns the use of `model`.
    pub fn spawn(model: Arc<CrossEncoder>, settings: BatcherSettings) -> Result<Self> {
        Self::start("rerank queue", settings, move |batch| rerank_batch(&model, batch))
    }

    /// One logit per item, scored with whatever else is waiting.
    pub fn score(&self, query: &str, states: Option<&Arc<QueryStates>>, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        self.call(|reply| RerankJob {
            query: query.to_string(),
            states: states.cloned(),
            items: items.iter().map(|t| (t.index, t.text.to_string())).collect(),
            reply,
        })
    }
}

fn rerank_batch(model: &CrossEncoder, batch: Vec<RerankJob>) {
    let pairs: Vec<(&str, ItemText<'_>)> = batch
        .iter()
        .flat_map(|job| {
            job.items.iter().map(|(index, text)| (job.query.as_str(), ItemText { index: *index, text: text.as_str() }))
        })
        .collect();
    let known: Vec<&QueryStates> = batch.iter().filter_map(|job| job.states.as_deref()).collect();
    match model.score_pairs_with(&pairs, &known) {
        Ok(scores) => {
            let mut rest = scores.as_slice();
            for job in &batch {
                let (mine, others) = rest.split_at(job.items.len());
                rest = others;
                let _ = job.reply.send(Ok(mine.to_vec()));
            }
        }
        Err(e) => {
            let reason = format!("reranking {} pairs: {e}", pairs.len());
            for job in &batch {
                let path = model.weights_path().to_path_buf();
                let _ = job.reply.send(Err(Error::Model { path, reason: reason.clone() }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_worker_counts_on_from_its_predecessors_totals() {
        let settings = BatcherSettings { max_batch: 4, queue_capacity: 8 };
        let run = |batch: Vec<mpsc::Sender<()>>| batch.into_iter().for_each(|reply| reply.send(()).unwrap());
        let old = ModelWorker::start("old", settings, run).unwrap();
        for _ in 0..3 {
            let (reply, done) = mpsc::channel();
            old.submit(reply).unwrap();
            done.recv().unwrap();
        }
        let before = old.stats();
        assert_eq!((before.queries, before.queued), (3, 0));
        let new = ModelWorker::start("new", settings, run).unwrap();
        new.continue_from(before);
        let (reply, done) = mpsc::channel();
        new.submit(reply).unwrap();
        done.recv().unwrap();
        let after = new.stats();
        assert_eq!(after.queries, 4);
        assert_eq!(after.batches, before.batches + 1);
        assert_eq!(after.refused, before.refused);
    }
}
