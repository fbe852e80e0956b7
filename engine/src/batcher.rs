//! Query encoding through one model worker. Requests that arrive together are encoded together:
//! the worker takes the first waiting query, then whatever else is already queued (up to
//! `max_batch`), and runs them as one padded batch. The queue is bounded; when it is full a
//! query is refused at once with [`Error::Overloaded`] instead of waiting without limit.
//!
//! On a GPU this turns many small kernel launches into one; on a CPU it stops concurrent
//! requests from each running their own forward pass over the same few cores.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::embed::Embedder;
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

struct Job {
    text: String,
    reply: mpsc::Sender<Result<Vec<f32>>>,
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    batches: AtomicU64,
    queries: AtomicU64,
    refused: AtomicU64,
}

/// A handle to the model worker; cheap to share. The worker thread ends when the last handle
/// is dropped.
pub struct QueryBatcher {
    jobs: SyncSender<Job>,
    counters: Arc<Counters>,
    settings: BatcherSettings,
}

impl QueryBatcher {
    /// Starts the worker thread, which owns the use of `embedder` for queries.
    pub fn spawn(embedder: Arc<Embedder>, settings: BatcherSettings) -> Result<Self> {
        if settings.max_batch == 0 || settings.queue_capacity == 0 {
            return Err(Error::invalid("batcher", "max_batch and queue_capacity must be at least 1"));
        }
        let (jobs, queue) = mpsc::sync_channel(settings.queue_capacity);
        let counters = Arc::new(Counters::default());
        let worker_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("hyrank-query-encoder".into())
            .spawn(move || work(&embedder, &queue, settings.max_batch, &worker_counters))
            .map_err(|e| Error::io("starting the query encoder thread", e))?;
        Ok(QueryBatcher { jobs, counters, settings })
    }

    /// The query's embedding, computed in a batch with whatever else is waiting.
    pub fn encode(&self, text: &str) -> Result<Vec<f32>> {
        let (reply, answer) = mpsc::channel();
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send(Job { text: text.to_string(), reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Overloaded { queue: "query encoder queue", capacity: self.settings.queue_capacity });
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(stopped());
            }
        }
        answer.recv().map_err(|_| stopped())?
    }

    /// Queue depth and throughput counts.
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

fn stopped() -> Error {
    Error::io("query encoding", std::io::Error::other("the encoder worker stopped"))
}

fn work(embedder: &Embedder, queue: &Receiver<Job>, max_batch: usize, counters: &Counters) {
    // recv() fails only when every handle is gone: then there is nobody left to answer.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        counters.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.queries.fetch_add(batch.len() as u64, Ordering::Relaxed);
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
}
