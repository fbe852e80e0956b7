//! Generation swaps without downtime. A new generation is opened beside the serving one (no
//! lock held), then swapped in under a write lock held only for the pointer assignment. Requests
//! already running keep their `Arc` of the old engine, which is dropped, files and all, when the
//! last of them finishes. A generation that fails to open is refused; the old one keeps serving.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::{AppState, Serving};

impl AppState {
    /// What the admin route runs: on a replica ([`AppState::pulling_from`]), pulls the
    /// generation its source's `CURRENT` names (nothing when it is here already; every file
    /// checked), swaps it in and prunes the folder as the puller does; otherwise
    /// [`AppState::reload`]. A download that fails its checks, or a generation that fails to
    /// open, is refused and counted as the puller counts it (and the puller does not fetch it
    /// again); a source that cannot be read is [`ReloadError::Source`], a local folder that
    /// cannot be written [`ReloadError::Local`].
    pub fn refresh(&self) -> Result<ReloadOutcome, ReloadError> {
        let Some(source) = self.inner.source.clone() else { return self.reload() };
        let index_dir = self.inner.index_dir.as_ref().ok_or(ReloadError::Disabled)?;
        let mut refused = self.inner.pulling.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = match source.current() {
            Ok(Some(name)) => name,
            Ok(None) => {
                let reason = hyrank_engine::generation::remote::NO_CURRENT.to_string();
                let e = hyrank_engine::Error::Remote { context: format!("{}'s CURRENT", source.url()), reason };
                return Err(self.pull_failed(e));
            }
            Err(e) => return Err(self.pull_failed(e)),
        };
        match source.pull_named(index_dir, &name) {
            Ok(None) => self.reload(),
            Ok(Some(_)) => self.swap_in_pulled(index_dir, &name, &mut refused),
            Err(e @ hyrank_engine::Error::BadIndex { .. }) => {
                self.refuse_download(&e, source.url(), name, &mut refused);
                Err(ReloadError::Refused(e))
            }
            Err(e) => Err(self.pull_failed(e)),
        }
    }

    /// Counts, logs and records (in `refused`, the `pulling` lock's content) a download that
    /// failed its checks: that generation will not get better, so it is not fetched again
    /// until `CURRENT` names another.
    fn refuse_download(&self, e: &hyrank_engine::Error, source: &str, name: String, refused: &mut Option<String>) {
        self.inner.metrics.refused();
        tracing::error!(error = %e, source, "pulled generation refused; still serving the local one");
        *refused = Some(name);
    }

    /// Counts a pull that the storage or the local disk broke off, and says which.
    fn pull_failed(&self, e: hyrank_engine::Error) -> ReloadError {
        self.inner.metrics.reloads.with_label_values(&["failed"]).inc();
        match e {
            hyrank_engine::Error::Remote { .. } => ReloadError::Source(e),
            e => ReloadError::Local(e),
        }
    }

    /// Swaps in generation `pulled`, which a pull just brought in and pointed `CURRENT` at, and
    /// prunes the folder. Refused (or panicking, a bug), `CURRENT` is pointed back at the
    /// generation serving ([`hyrank_engine::generation::remote::point_back`]: only while it
    /// still names `pulled`) and `pulled` recorded in `refused`: left naming it, a restart
    /// would fail to open it instead of serving the generation that works. Called with the
    /// `pulling` lock held (`refused` is its content), which the watcher also takes, so it does
    /// not open `pulled` again before `CURRENT` moves back.
    fn swap_in_pulled(
        &self,
        index_dir: &std::path::Path,
        pulled: &str,
        refused: &mut Option<String>,
    ) -> Result<ReloadOutcome, ReloadError> {
        let reloaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.reload()));
        let error = match reloaded {
            Ok(Ok(outcome)) => {
                *refused = None;
                if matches!(outcome, ReloadOutcome::Swapped { .. }) {
                    prune_pulled(index_dir);
                }
                return Ok(outcome);
            }
            // reload() logged and counted the refusal.
            Ok(Err(e)) => e,
            Err(_) => {
                self.inner.metrics.refused();
                tracing::error!(generation = pulled, "opening a pulled generation panicked; still serving the old one");
                ReloadError::Refused(hyrank_engine::Error::BadIndex {
                    path: index_dir.join("generations").join(pulled),
                    reason: "opening it panicked (a bug; the panic is logged)".into(),
                })
            }
        };
        let serving = self.engine().manifest().generation.clone();
        match hyrank_engine::generation::remote::point_back(index_dir, pulled, &serving) {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                pulled,
                serving,
                "CURRENT moved on meanwhile, or the serving generation's folder is gone; left as it is"
            ),
            Err(e) => tracing::error!(error = %e, serving, "CURRENT still names the refused generation"),
        }
        *refused = Some(pulled.to_string());
        Err(error)
    }
}

/// A replica keeps its newest [`REPLICA_KEEP`] generations (never one in use).
fn prune_pulled(index_dir: &std::path::Path) {
    if let Err(e) = hyrank_engine::generation::prune(index_dir, REPLICA_KEEP) {
        tracing::warn!(error = %e, "removing old pulled generations");
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// CURRENT still names the serving generation.
    Unchanged {
        /// The serving generation.
        generation: String,
    },
    /// A new generation now serves.
    Swapped {
        /// The generation replaced.
        from: String,
        /// The generation now serving.
        to: String,
    },
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The server was started without an index folder to watch (tests, embedded use).
    #[error("this server was not started on an index folder, so it cannot reload")]
    Disabled,
    /// The published generation could not be opened; the old one keeps serving.
    #[error("the published generation was refused and the serving one kept: {0}")]
    Refused(#[from] hyrank_engine::Error),
    /// A replica's source could not be read, or the download broke off; the old one keeps
    /// serving.
    #[error("the source could not be pulled from; the serving generation kept: {0}")]
    Source(hyrank_engine::Error),
    /// What a replica pulled could not be written into its own index folder (a full disk);
    /// the old one keeps serving.
    #[error("the pulled generation could not be written here; the serving generation kept: {0}")]
    Local(hyrank_engine::Error),
}

impl AppState {
    /// Opens the generation CURRENT names, if new, and swaps it in. Blocking: opening reads
    /// the index files (and may load the model), so call it off the HTTP workers.
    pub fn reload(&self) -> Result<ReloadOutcome, ReloadError> {
        let index_dir = self.inner.index_dir.as_ref().ok_or(ReloadError::Disabled)?;
        let _one_at_a_time = self.inner.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let serving = self.engine();
        let from = serving.manifest().generation.clone();
        let metrics = &self.inner.metrics;
        let next = match hyrank_engine::Engine::open_next(index_dir, &serving) {
            Ok(Some(next)) => next,
            Ok(None) => {
                metrics.reloads.with_label_values(&["unchanged"]).inc();
                // CURRENT names the serving generation: nothing refused is waiting (a rollback
                // after a refusal left the mark set on a healthy server).
                metrics.clear_refused();
                return Ok(ReloadOutcome::Unchanged { generation: from });
            }
            Err(e) => {
                metrics.refused();
                tracing::error!(error = %e, serving = %from, "new generation refused; still serving the old one");
                return Err(e.into());
            }
        };
        // Warm before it serves: its first requests find the models warm and a rerank budget
        // its pass times (the old generation serves meanwhile).
        if self.settings().warm_up {
            warm_up(&next);
        }
        let (to, built_at) = (next.manifest().generation.clone(), next.manifest().built_at_unix);
        let live = next.live().map(|log| (Arc::clone(log), next.manifest().live_folded_through()));
        drop(serving);
        let replaced = {
            let mut slot = self.inner.engine.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *slot, Serving { engine: Arc::new(next), since: SystemTime::now() })
        };
        release_when_unused(replaced.engine);
        // Keys carry the generation, so stale entries could not be served anyway; clearing
        // frees their memory now.
        self.inner.responses.clear();
        // The new generation counts the live events it folded in; the log retires those the
        // previous one folded (requests still running on it keep theirs).
        if let Some((log, through)) = live {
            log.fold(through);
        }
        metrics.set_generation(&to, built_at);
        metrics.reloads.with_label_values(&["swapped"]).inc();
        tracing::info!(from = %from, to = %to, "generation swapped in");
        Ok(ReloadOutcome::Swapped { from, to })
    }
}

/// How long the release of a swapped-out generation waits for the requests still running on it
/// (milliseconds each); past it, memory is trimmed anyway, and the generation is freed with the
/// last of them as before.
const RELEASE_WAIT: Duration = Duration::from_secs(60);

/// Drops the generation swapped out once the last request running on it finishes, then hands
/// the memory it held back to the operating system. Without this the old generation's heap
/// (its store, vectors and caches: ~50 MiB for SciFact) stays resident after every swap, since
/// the allocator is tuned not to trim (`hyrank_engine::embed::release_freed_memory`);
/// `bench/soak.py` measures it. When no request holds it, that happens before the reload
/// answers, so its serving lock is free for the next build's pruning as before; otherwise on a
/// thread of its own, so the reload answers at once.
fn release_when_unused(old: Arc<hyrank_engine::Engine>) {
    // Nothing holds a `Weak` to an engine, so a count of 1 cannot rise again.
    if Arc::strong_count(&old) == 1 {
        drop(old);
        hyrank_engine::embed::release_freed_memory();
        return;
    }
    let spawned = std::thread::Builder::new().name("release-generation".into()).spawn(move || {
        let deadline = std::time::Instant::now() + RELEASE_WAIT;
        while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(old);
        hyrank_engine::embed::release_freed_memory();
    });
    if let Err(e) = spawned {
        // The generation is still dropped with the last request; only the trim is lost.
        tracing::warn!(error = %e, "no thread to release the old generation's memory");
    }
}

/// Checks CURRENT every `every` on a background thread and swaps in what it names. A refused
/// generation (or a missing or unreadable CURRENT) is logged and counted once, not on every
/// check, until CURRENT changes again. The thread ends when it holds the last reference to the
/// state (the server is gone), and never because a reload failed.
pub fn spawn_watcher(state: AppState, every: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("hyrank-generation-watcher".into()).spawn(move || {
        // CURRENT's content when the last reload was refused (`Some(None)`: it could not be read).
        let mut refused: Option<Option<String>> = None;
        loop {
            std::thread::sleep(every);
            if Arc::strong_count(&state.inner) == 1 {
                return;
            }
            // A replica's pull (the puller's, or the admin route's) moves CURRENT and then opens
            // what it names, or points it back: the watcher waits its turn rather than open the
            // pulled generation a second time meanwhile.
            let _turn = match state.inner.pulling.try_lock() {
                Ok(turn) => turn,
                Err(std::sync::TryLockError::Poisoned(turn)) => turn.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => continue,
            };
            let pointer = state.inner.index_dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("CURRENT")).ok());
            if refused.as_ref() == Some(&pointer) {
                continue;
            }
            // A panic past the guarded open (a bug) must not end the watching: every later
            // publish would then be ignored until a restart.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.reload())) {
                Ok(Ok(_)) => refused = None,
                Ok(Err(ReloadError::Disabled)) => return,
                // reload() refuses; it pulls nothing, so it has no source to fail.
                Ok(Err(_)) => refused = Some(pointer),
                Err(_) => {
                    state.inner.metrics.refused();
                    tracing::error!("a reload panicked; still serving the old generation");
                    refused = Some(pointer);
                }
            }
        }
    })
}

/// A replica's puller: every `every`, brings the generation `remote`'s `CURRENT` names into the
/// index folder ([`hyrank_engine::generation::remote::Remote::pull`], every file checked against
/// its manifest), swaps it in, and prunes the folder to its newest [`REPLICA_KEEP`] generations
/// (never one in use). A download that fails its check is counted as a `refused` reload and
/// logged once, and that generation is not downloaded again until `CURRENT` names another; a
/// pull the storage or the disk broke off is counted as `failed` and tried again after 1, 3,
/// 7... up to 63 polls; a storage that cannot be read, or whose `CURRENT` is gone, is counted
/// as `failed` at every poll and logged once until it can be read. The serving generation stays
/// either way. Requests never read the storage: they read the local copy. The thread ends
/// with the server, as [`spawn_watcher`]'s does.
pub fn spawn_puller(
    state: AppState,
    remote: Arc<hyrank_engine::generation::remote::Remote>,
    every: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("hyrank-generation-puller".into()).spawn(move || {
        let mut unreachable = false;
        let mut failing = false;
        let mut failures = 0u32;
        let mut backoff = 0u32;
        loop {
            std::thread::sleep(every);
            if Arc::strong_count(&state.inner) == 1 {
                return;
            }
            let Some(index_dir) = state.inner.index_dir.clone() else { return };
            let name = match remote.current() {
                Ok(Some(name)) => {
                    if unreachable {
                        tracing::info!(source = remote.url(), "object storage readable again");
                    }
                    unreachable = false;
                    name
                }
                // A replica serves a generation from the moment it starts, so a source without a
                // CURRENT is a share not mounted or a bucket emptied, not one yet to publish: a
                // failure like an unreadable one. Counted at every poll (an alert on the rate
                // lasts as long as the fault), logged once until the source answers.
                outcome => {
                    state.inner.metrics.reloads.with_label_values(&["failed"]).inc();
                    if !unreachable {
                        let error = match outcome {
                            Err(e) => e.to_string(),
                            Ok(_) => {
                                format!("{}'s CURRENT: {}", remote.url(), hyrank_engine::generation::remote::NO_CURRENT)
                            }
                        };
                        tracing::error!(
                            error,
                            source = remote.url(),
                            "object storage unreadable; still serving the local generation"
                        );
                        unreachable = true;
                    }
                    continue;
                }
            };
            // After failures, polls are skipped: 1, 3, 7... up to 63 of them, so a storage
            // that keeps failing is not asked for whole generations every few seconds.
            if backoff > 0 {
                backoff -= 1;
                continue;
            }
            // The generation just read, by name: were the pull to read `CURRENT` again, a
            // publish in between would refuse one generation under another's name, and the
            // refused one would be fetched (and counted) again at the next poll. The admin
            // route's pulls share what was refused.
            let mut refused = state.inner.pulling.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if refused.as_ref() == Some(&name) {
                continue;
            }
            // A panic past the guarded open (a bug) must not end the pulling, as it must not
            // end the watcher's watching (the swap catches its own).
            let pulled =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| remote.pull_named(&index_dir, &name)));
            match pulled {
                Ok(Ok(None)) => (failing, failures) = (false, 0),
                Ok(Ok(Some(_))) => {
                    (failing, failures) = (false, 0);
                    // Refused or not, it is counted and logged there.
                    let _ = state.swap_in_pulled(&index_dir, &name, &mut refused);
                }
                // The download failed its checks (a hash, a size, a format version, a name
                // taken locally): that generation will not get better, so it is refused once
                // and not fetched again until CURRENT names another.
                Ok(Err(e @ hyrank_engine::Error::BadIndex { .. })) => {
                    state.refuse_download(&e, remote.url(), name, &mut refused);
                    failing = false;
                }
                // The storage or the disk failed on the way (a dropped connection, a full
                // disk), or the pull panicked: tried again at the next poll, logged once until
                // a pull succeeds.
                failed => {
                    state.inner.metrics.reloads.with_label_values(&["failed"]).inc();
                    failures = (failures + 1).min(6);
                    backoff = (1 << failures) - 1;
                    if !failing {
                        let error = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "the pull panicked".to_string(),
                        };
                        tracing::error!(
                            error,
                            source = remote.url(),
                            "pulling a generation failed; will retry; still serving the local one"
                        );
                        failing = true;
                    }
                }
            }
        }
    })
}

/// Generations a replica keeps in its folder: the serving one and two before it.
pub const REPLICA_KEEP: usize = 3;

/// Runs [`hyrank_engine::Engine::warm_up`] and logs what it ran; a failure is logged, not
/// raised: the generation opened, and a model that fails here fails its requests, each with
/// its own error.
pub fn warm_up(engine: &hyrank_engine::Engine) {
    let generation = engine.manifest().generation.as_str();
    match engine.warm_up() {
        Ok(done) => {
            let passes: Vec<String> = done.rerank_ms.iter().map(|(key, ms)| format!("{key} {ms:.0} ms")).collect();
            tracing::info!(
                generation,
                encode_ms = done.encode_ms.map(|ms| format!("{ms:.1}")),
                rerank = passes.join(", "),
                skipped = done.skipped,
                "models warmed up"
            );
        }
        Err(e) => tracing::warn!(generation, error = %e, "warming the models up failed; serving anyway"),
    }
}
