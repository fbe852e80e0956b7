//! Pulling: a replica brings the generation `CURRENT` names into its local index, every file
//! checked against the manifest before it is renamed into place.

use std::fs;
use std::path::{Path as LocalPath, PathBuf};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::{check_name, local_path, lock_exclusive, remote, Remote};
use crate::error::{Error, Result};
use crate::generation::build::{point_current, write_synced};
use crate::generation::{
    read_manifest, FileDigest, Manifest, CURRENT, FORMAT_VERSION, GENERATIONS, MANIFEST, MIN_FORMAT_VERSION,
};

/// The file under `generations/` whose OS lock makes pulls into one folder take turns.
const PULL_LOCK: &str = ".pulling.lock";

/// Points `index_dir`'s `CURRENT` back from `pulled`, a generation a pull brought in that would
/// not open, to `to`, the one serving, so that a restart serves `to` rather than failing on
/// `pulled`. Done under the lock pulls take, and only while `CURRENT` still names `pulled` (a
/// pull by another process may have moved it on since) and `to` is still in the folder.
/// Whether `CURRENT` moved.
///
/// # Errors
/// [`Error::Io`] for the lock or the write of `CURRENT`.
pub fn point_back(index_dir: &LocalPath, pulled: &str, to: &str) -> Result<bool> {
    let generations = index_dir.join(GENERATIONS);
    let _lock = lock_exclusive(&generations.join(PULL_LOCK))?;
    let current = fs::read_to_string(index_dir.join(CURRENT)).unwrap_or_default();
    if current.trim() != pulled || !generations.join(to).join(MANIFEST).is_file() {
        return Ok(false);
    }
    point_current(index_dir, to)?;
    Ok(true)
}

impl Remote {
    fn get(&self, relative: &str) -> Result<Vec<u8>> {
        let key = self.key(relative);
        self.runtime
            .block_on(async { self.store.get(&key).await?.bytes().await })
            .map(|b| b.to_vec())
            .map_err(|e| remote(&self.describe(relative), "reading", e))
    }

    /// Streams object `relative` into the file `path` (synced), hashing it on the way: a
    /// download holds one chunk in memory, not the file.
    fn get_to_file(&self, relative: &str, path: &LocalPath) -> Result<FileDigest> {
        use sha2::Digest;
        use std::io::Write;
        let key = self.key(relative);
        let mut file = fs::File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let mut hasher = sha2::Sha256::new();
        let mut bytes = 0u64;
        self.runtime.block_on(async {
            // A file the manifest lists but the store lacks will not appear on a retry: that
            // generation is broken, as a file with the wrong hash is.
            let got = match self.store.get(&key).await {
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(Error::BadIndex {
                        path: self.describe(relative).into(),
                        reason: "listed in the manifest but missing from the store".into(),
                    })
                }
                got => got.map_err(|e| remote(&self.describe(relative), "reading", e))?,
            };
            let mut stream = got.into_stream();
            while let Some(chunk) =
                stream.try_next().await.map_err(|e| remote(&self.describe(relative), "reading", e))?
            {
                hasher.update(&chunk);
                bytes += chunk.len() as u64;
                file.write_all(&chunk).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            }
            Ok::<_, Error>(())
        })?;
        file.sync_all().map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
        Ok(FileDigest { bytes, sha256: FileDigest::hex(&hasher.finalize()) })
    }

    /// Brings the generation `CURRENT` names into the local index `index_dir`, checked, and
    /// points the local `CURRENT` at it; `None` when the local index already serves it.
    ///
    /// # Errors
    /// [`Error::BadIndex`] naming the file when a download does not match the manifest (size or
    /// SHA-256), or the manifest lists no files: the download is removed and the local index
    /// left as it was. [`Error::Remote`] or [`Error::Io`] for a failed read or write.
    pub fn pull(&self, index_dir: &LocalPath) -> Result<Option<PathBuf>> {
        let Some((name, _)) = self.read_current()? else {
            return Err(Error::Remote { context: self.describe(CURRENT), reason: super::NO_CURRENT.into() });
        };
        self.pull_named(index_dir, &name)
    }

    /// [`Remote::pull`] of generation `name`, which the caller read from `CURRENT` (a poller
    /// that refuses a generation must know which one it refused: `CURRENT` can move between
    /// its read and a read inside the pull).
    ///
    /// # Errors
    /// As [`Remote::pull`]; [`Error::InvalidArgument`] for a `name` that is not a generation's.
    pub fn pull_named(&self, index_dir: &LocalPath, name: &str) -> Result<Option<PathBuf>> {
        check_name(name).map_err(|reason| Error::invalid("generation", reason))?;
        let name = name.to_string();
        let generations = index_dir.join(GENERATIONS);
        fs::create_dir_all(&generations).map_err(|e| Error::io(format!("creating {}", generations.display()), e))?;
        // One pull at a time per folder (a server's puller and `hyrank pull`, or two servers
        // in a blue-green handover): held from the check through the rename and CURRENT, so no
        // pull removes or completes another's download. The OS drops it if the process dies.
        let _lock = lock_exclusive(&generations.join(PULL_LOCK))?;
        let local_current = fs::read_to_string(index_dir.join(CURRENT)).ok();
        let target = generations.join(&name);
        if target.join(MANIFEST).is_file() {
            // A folder of that name from an earlier pull is the same generation only if its
            // manifest lists the same files (a name this folder's own builds used is not).
            let local = read_manifest(&target)?;
            let (remote_manifest, _) = self.manifest_bytes(&name)?;
            if local.files != remote_manifest.files {
                return Err(Error::BadIndex {
                    path: target,
                    reason: format!(
                        "holds another generation named {name} than {} does; pull into a folder of its own",
                        self.url
                    ),
                });
            }
            if local_current.as_deref().map(str::trim) == Some(name.as_str()) {
                return Ok(None);
            }
        } else {
            self.download(&name, &generations)?;
        }
        point_current(index_dir, &name)?;
        Ok(Some(target))
    }

    /// Generation `name`'s manifest and its bytes, checked to name `name` and list its files.
    fn manifest_bytes(&self, name: &str) -> Result<(Manifest, Vec<u8>)> {
        let manifest_key = format!("{GENERATIONS}/{name}/{MANIFEST}");
        let bytes = self.get(&manifest_key)?;
        let bad = |reason: String| Error::BadIndex { path: self.describe(&manifest_key).into(), reason };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest: {e}")))?;
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&manifest.format_version) {
            return Err(bad(format!(
                "format version {}, but this build reads versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION}: upgrade the replica first",
                manifest.format_version
            )));
        }
        if manifest.generation != name {
            return Err(bad(format!("names generation {:?}, not {name:?}", manifest.generation)));
        }
        if manifest.files.is_empty() {
            return Err(bad("lists no files, so the download cannot be checked".into()));
        }
        Ok((manifest, bytes))
    }

    /// Downloads generation `name` into `generations/name`, checking every file.
    fn download(&self, name: &str, generations: &LocalPath) -> Result<()> {
        let (manifest, manifest_bytes) = self.manifest_bytes(name)?;
        let manifest_key = format!("{GENERATIONS}/{name}/{MANIFEST}");
        let bad = |reason: String| Error::BadIndex { path: self.describe(&manifest_key).into(), reason };
        let staging = generations.join(format!(".pulling-{name}"));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).map_err(|e| Error::io(format!("creating {}", staging.display()), e))?;
        let fetched = (|| {
            for (relative, digest) in &manifest.files {
                let path = local_path(&staging, relative).map_err(&bad)?;
                let key = format!("{GENERATIONS}/{name}/{relative}");
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
                }
                let got = self.get_to_file(&key, &path)?;
                if &got != digest {
                    return Err(Error::BadIndex {
                        path: self.describe(&key).into(),
                        reason: format!(
                            "does not match the manifest: {} bytes, sha256 {}; the manifest says {} bytes, sha256 {}",
                            got.bytes, got.sha256, digest.bytes, digest.sha256
                        ),
                    });
                }
            }
            write_synced(&staging.join(MANIFEST), &manifest_bytes)?;
            let target = generations.join(name);
            fs::rename(&staging, &target)
                .map_err(|e| Error::io(format!("renaming {} to {}", staging.display(), target.display()), e))
        })();
        if fetched.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        fetched
    }
}
