//! A replica's start: the generation its source's `CURRENT` names is brought in before anything
//! opens (a fresh replica starts from an empty folder), and what the pull brings in is refused
//! at start-up as a running replica's puller refuses it ([`crate::reload::spawn_puller`]).

use std::path::Path;

use hyrank_engine::generation::remote::{point_back, Remote};
use hyrank_engine::Engine;

use crate::AppState;

/// A replica's engine at start-up, and the generation the start-up pull refused, if any
/// (hand it to [`AppState::refused_at_start`] so that the puller does not fetch it again).
pub struct Started {
    /// The engine on the generation that serves.
    pub engine: Engine,
    /// The generation `CURRENT` named at the source, refused: its download failed its checks,
    /// or it checked out and failed to open.
    pub refused: Option<String>,
}

/// Pulls the generation `remote`'s `CURRENT` names into `index_dir`, then opens the index with
/// `open`. Serving what is already here beats not serving:
/// - a pull the storage or the disk broke off is logged, and the local generation opens;
/// - a download that fails its checks is refused, and the local generation opens;
/// - a pulled generation that fails to open is refused, `CURRENT` is pointed back at the one
///   it named before the pull (only while it still names the pulled one and the one before is
///   still here), and that one opens.
///
/// # Errors
/// With no generation here to fall back on, the pull's error (opening the index would advise
/// `hyrank index`, which is not a replica's remedy); otherwise `open`'s error, or an error
/// pointing `CURRENT` back.
pub fn start(index_dir: &Path, remote: &Remote, open: impl Fn() -> anyhow::Result<Engine>) -> anyhow::Result<Started> {
    let here = hyrank_engine::generation::current(index_dir).ok();
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    // The generation read from CURRENT, then pulled by name, so that a refusal names what was
    // refused (CURRENT can move between two reads).
    let mut read = None;
    let pulled = remote.current().and_then(|name| {
        let name = name.ok_or_else(|| hyrank_engine::Error::Remote {
            context: format!("{}'s CURRENT", remote.url()),
            reason: hyrank_engine::generation::remote::NO_CURRENT.into(),
        })?;
        read = Some(name.clone());
        remote.pull_named(index_dir, &name)
    });
    let mut refused = None;
    // The generation served before this pull brought a new one in, and the one pulled.
    let mut before_pull = None;
    match pulled {
        Ok(Some(dir)) => {
            tracing::info!(source = remote.url(), "pulled {}", dir.display());
            before_pull = here.as_deref().and_then(name_of).zip(read);
        }
        Ok(None) => {}
        Err(e) => {
            if hyrank_engine::generation::current(index_dir).is_err() {
                return Err(anyhow::Error::new(e).context(format!(
                    "a replica of {} has no generation to serve: pulling the current one failed, and {} holds none",
                    remote.url(),
                    index_dir.display()
                )));
            }
            if let hyrank_engine::Error::BadIndex { .. } = e {
                refused = read;
                tracing::error!(error = %e, source = remote.url(), "pulled generation refused; serving the local one");
            } else {
                tracing::error!(error = %e, source = remote.url(), "pulling the current generation failed");
            }
        }
    }
    let engine = match (open(), before_pull) {
        (Ok(engine), _) => engine,
        (Err(e), Some((before, pulled))) if point_back(index_dir, &pulled, &before)? => {
            tracing::error!(
                error = format!("{e:#}"),
                serving = before,
                "pulled generation refused; serving the one before it"
            );
            refused = Some(pulled);
            open()?
        }
        (Err(e), _) => return Err(e),
    };
    Ok(Started { engine, refused })
}

impl AppState {
    /// Records generation `name`, refused by a replica's start-up pull ([`start`]): counted as
    /// the puller counts a refusal, and not fetched again until the source's `CURRENT` names
    /// another (the admin route still tries it when asked).
    pub fn refused_at_start(&self, name: String) {
        self.inner.metrics.refused();
        *self.inner.pulling.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(name);
    }
}
