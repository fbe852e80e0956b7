//! Publishing: a generation's files, then its manifest, then `CURRENT` by compare-and-swap;
//! and retention of old generations in the store.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path as LocalPath;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{
    check_name, chrono_now_minus, claim_note, local_files, lock_exclusive, remote, Published, Remote, Uploaded, CLAIM,
    CURRENT_LOCK, MULTIPART_FROM, PART_BYTES,
};
use crate::error::{Error, Result};
use crate::generation::{read_manifest, FileDigest, CURRENT, GENERATIONS, MANIFEST, SHIPPED_FORMAT_VERSION};

impl Remote {
    /// Uploads the local generation folder `dir` and makes it current: [`Remote::upload`],
    /// then [`Remote::make_current`] (see the module documentation for the order and what a
    /// race gives).
    ///
    /// # Errors
    /// As those two.
    pub fn publish(&self, dir: &LocalPath) -> Result<Published> {
        let uploaded = self.upload(dir)?;
        self.make_current(uploaded)
    }

    /// Claims the generation's name, uploads its files (hashing the exact bytes sent) and then
    /// its manifest, after reading the `CURRENT` version that [`Remote::make_current`] will
    /// compare against.
    ///
    /// # Errors
    /// [`Error::PublishConflict`] when the name is taken; [`Error::BadIndex`] for a folder that
    /// is not a complete generation; [`Error::Io`] or [`Error::Remote`] for a failed read or
    /// upload (`CURRENT` is then as it was).
    pub fn upload(&self, dir: &LocalPath) -> Result<Uploaded> {
        let mut manifest = read_manifest(dir)?;
        let name = manifest.generation.clone();
        check_name(&name).map_err(|reason| Error::BadIndex { path: dir.to_path_buf(), reason })?;
        // The version CURRENT is moved from is read before anything is uploaded: a publish that
        // finishes after another began and finished must not overwrite it unseen.
        let previous = self.read_current()?;
        self.put(
            &self.generation_key(&name, CLAIM),
            claim_note().into_bytes(),
            PutMode::Create,
            &format!("{GENERATIONS}/{name}/{CLAIM}"),
        )
        .map_err(|e| match e {
            Error::PublishConflict(_) => Error::PublishConflict(format!(
                "generation {name} is already published (or being published) at {}; build a new generation to publish",
                self.url
            )),
            e => e,
        })?;
        let mut digests = BTreeMap::new();
        for relative in local_files(dir)? {
            let key = format!("{GENERATIONS}/{name}/{relative}");
            let digest = self.put_file(&dir.join(&relative), &key)?;
            digests.insert(relative, digest);
        }
        let bytes = digests.values().map(|d| d.bytes).sum();
        let files = digests.len();
        manifest.files = digests;
        manifest.format_version = manifest.format_version.max(SHIPPED_FORMAT_VERSION);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|source| Error::Json { context: "encoding manifest".into(), source })?;
        let key = format!("{GENERATIONS}/{name}/{MANIFEST}");
        self.put(&self.key(&key), json, PutMode::Overwrite, &key)?;
        Ok(Uploaded { published: Published { generation: name, previous: None, files, bytes }, previous })
    }

    /// Moves `CURRENT` to an uploaded generation if it still names what it named before the
    /// upload (a conditional put: `If-Match` its ETag, or create-if-absent).
    ///
    /// # Errors
    /// [`Error::PublishConflict`] when `CURRENT` moved meanwhile (the generation stays uploaded,
    /// not current); [`Error::Remote`] for a failed write.
    pub fn make_current(&self, uploaded: Uploaded) -> Result<Published> {
        let Uploaded { mut published, previous } = uploaded;
        let name = published.generation.clone();
        let moved = match &self.local_root {
            Some(root) => self.move_current_locked(root, &name, previous.as_ref().map(|(_, v)| v)),
            None => {
                let mode = match &previous {
                    Some((_, version)) => PutMode::Update(version.clone()),
                    None => PutMode::Create,
                };
                self.put(&self.key(CURRENT), name.clone().into_bytes(), mode, CURRENT)
            }
        };
        moved.map_err(|e| match e {
            Error::PublishConflict(_) => Error::PublishConflict(format!(
                "{CURRENT} at {} moved while generation {name} was uploading (now {}); {name} is uploaded but not current",
                self.url,
                self.current().ok().flatten().unwrap_or_else(|| "unreadable".into())
            )),
            e => e,
        })?;
        published.previous = previous.map(|(n, _)| n);
        Ok(published)
    }

    /// A filesystem store's compare-and-swap of `CURRENT`: under an exclusive lock on
    /// [`CURRENT_LOCK`], `CURRENT` is read again and overwritten (a staged file renamed into
    /// place) only if its version is still `expected` (`None`: it must not exist).
    fn move_current_locked(&self, root: &LocalPath, name: &str, expected: Option<&UpdateVersion>) -> Result<()> {
        let _lock = lock_exclusive(&root.join(CURRENT_LOCK))?;
        let now = self.read_current()?;
        let unchanged = match (now.as_ref().map(|(_, v)| v), expected) {
            (None, None) => true,
            (Some(now), Some(expected)) => now.e_tag.is_some() && now.e_tag == expected.e_tag,
            _ => false,
        };
        if !unchanged {
            return Err(Error::PublishConflict(format!("{} changed under this publisher", self.describe(CURRENT))));
        }
        self.put(&self.key(CURRENT), name.as_bytes().to_vec(), PutMode::Overwrite, CURRENT)
        // The lock is released when `_lock` is dropped, after the rename.
    }

    /// Uploads the file at `path` to `relative`, hashing the bytes as they are sent: a file
    /// under [`MULTIPART_FROM`] in one put, a larger one as a multipart upload read a part at a
    /// time, so memory holds a few parts, not the file.
    fn put_file(&self, path: &LocalPath, relative: &str) -> Result<FileDigest> {
        use sha2::Digest;
        use std::io::Read;
        let read_failed = |e| Error::io(format!("reading {}", path.display()), e);
        let mut file = fs::File::open(path).map_err(read_failed)?;
        let size = file.metadata().map_err(read_failed)?.len();
        if size < MULTIPART_FROM {
            let mut content = Vec::with_capacity(size as usize);
            file.read_to_end(&mut content).map_err(read_failed)?;
            let digest = FileDigest::of(&content);
            self.put(&self.key(relative), content, PutMode::Overwrite, relative)?;
            return Ok(digest);
        }
        let key = self.key(relative);
        let failed = |e| remote(&self.describe(relative), "writing", e);
        let mut hasher = sha2::Sha256::new();
        let mut bytes = 0u64;
        self.runtime.block_on(async {
            let upload = self.store.put_multipart(&key).await.map_err(failed)?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buffer = vec![0u8; PART_BYTES];
            loop {
                let n = match file.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(read_failed(e));
                    }
                };
                hasher.update(&buffer[..n]);
                bytes += n as u64;
                if let Err(e) = writer.wait_for_capacity(4).await {
                    let _ = writer.abort().await;
                    return Err(failed(e));
                }
                writer.write(&buffer[..n]);
            }
            // `finish` aborts the upload itself when a part fails.
            writer.finish().await.map_err(failed)?;
            Ok(())
        })?;
        Ok(FileDigest { bytes, sha256: FileDigest::hex(&hasher.finalize()) })
    }

    fn put(&self, key: &Path, content: Vec<u8>, mode: PutMode, relative: &str) -> Result<()> {
        let options = PutOptions { mode, ..PutOptions::default() };
        let result = self.runtime.block_on(self.store.put_opts(key, PutPayload::from(content), options));
        match result {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Err(Error::PublishConflict(format!("{} changed under this publisher", self.describe(relative))))
            }
            Err(e) => Err(remote(&self.describe(relative), "writing", e)),
        }
    }

    /// Removes generations beyond the newest `keep` (by name) from the storage, never the one
    /// `CURRENT` names and never one with an object written in the last `min_age` (an upload
    /// in progress, or a generation just made current by a publisher this one has not seen);
    /// returns their names. `CURRENT` is read again before each removal, and a generation's
    /// manifest goes first, so a half-removed generation is never complete. A claimed name
    /// without a manifest (a publisher that died) goes the same way once old. `keep` 0 keeps
    /// all.
    ///
    /// # Errors
    /// [`Error::Remote`] for a failed listing or delete.
    pub fn retain(&self, keep: usize, min_age: std::time::Duration) -> Result<Vec<String>> {
        if keep == 0 {
            return Ok(Vec::new());
        }
        let prefix = self.key(GENERATIONS);
        let objects: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(|e| remote(&self.describe(GENERATIONS), "listing", e))?;
        let mut by_generation: BTreeMap<String, Vec<object_store::ObjectMeta>> = BTreeMap::new();
        for object in objects {
            let relative = object.location.as_ref().strip_prefix(prefix.as_ref()).unwrap_or_default();
            if let Some(name) = relative.trim_start_matches('/').split('/').next().filter(|n| !n.is_empty()) {
                by_generation.entry(name.to_string()).or_default().push(object);
            }
        }
        let old = by_generation.len().saturating_sub(keep);
        let recent = chrono_now_minus(min_age);
        let mut removed = Vec::new();
        for (name, mut objects) in by_generation.into_iter().take(old) {
            if objects.iter().any(|o| o.last_modified > recent) || self.current()?.as_deref() == Some(name.as_str()) {
                continue;
            }
            objects.sort_by_key(|o| !o.location.as_ref().ends_with(MANIFEST));
            for object in &objects {
                self.runtime
                    .block_on(self.store.delete(&object.location))
                    .map_err(|e| remote(&format!("{}/{}", self.url, object.location), "removing", e))?;
            }
            removed.push(name);
        }
        Ok(removed)
    }
}
