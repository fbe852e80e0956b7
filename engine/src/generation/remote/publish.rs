//! Publishing: a generation's files, then its manifest, then `CURRENT` by compare-and-swap;
//! and retention of old generations in the store.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path as LocalPath;

use futures::TryStreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{
    check_name, chrono_now_minus, claim_note, local_files, lock_exclusive, remote, Published, Remote, Retained,
    Uploaded, CLAIM, CURRENT_LOCK, MULTIPART_FROM, PART_BYTES, UPLOADS,
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
        let files = local_files(dir)?;
        // The store's own objects in a generation: a file of the same name would be taken for
        // one (retention reads the notes). No build writes such names.
        if let Some(reserved) = files.iter().find(|f| *f == CLAIM || f.starts_with(&format!("{UPLOADS}/"))) {
            return Err(Error::BadIndex {
                path: dir.join(reserved),
                reason: format!("{reserved:?} is a name the generation store keeps for itself; rename or remove it"),
            });
        }
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
            Error::PublishConflict(_) => {
                // A folder's builds are numbered on their own: a new build here only helps if
                // this folder is the one the store's generations came from.
                let current = previous.as_ref().map_or("none yet".to_string(), |(current, _)| current.clone());
                Error::PublishConflict(format!(
                    "generation {name} is already published (or being published) at {} (its CURRENT: {current}). \
                     An index folder numbers its generations on its own, so publish from the folder that published \
                     the store's generations (or from one that pulled its current generation with `hyrank pull`, \
                     then built), or to another prefix",
                    self.url
                ))
            }
            e => e,
        })?;
        let mut digests = BTreeMap::new();
        for relative in files {
            let digest = self.put_file(&dir.join(&relative), &name, &relative)?;
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

    /// Uploads the file at `path` as `relative` in generation `name`, hashing the bytes as they
    /// are sent: a file under [`MULTIPART_FROM`] in one put, a larger one as a multipart upload
    /// read a part at a time, so memory holds a few parts, not the file.
    fn put_file(&self, path: &LocalPath, name: &str, relative: &str) -> Result<FileDigest> {
        use std::io::Read;
        let read_failed = |e| Error::io(format!("reading {}", path.display()), e);
        let mut file = fs::File::open(path).map_err(read_failed)?;
        let size = file.metadata().map_err(read_failed)?.len();
        let in_store = format!("{GENERATIONS}/{name}/{relative}");
        if size < MULTIPART_FROM {
            let mut content = Vec::with_capacity(size as usize);
            file.read_to_end(&mut content).map_err(read_failed)?;
            let digest = FileDigest::of(&content);
            self.put(&self.key(&in_store), content, PutMode::Overwrite, &in_store)?;
            return Ok(digest);
        }
        let mut sent = Sent::default();
        match &self.multipart {
            Some(s3) => self.put_parts(s3.as_ref(), &mut file, path, name, relative, &mut sent)?,
            None => self.put_staged(&mut file, path, &in_store, &mut sent)?,
        }
        use sha2::Digest;
        Ok(FileDigest { bytes: sent.bytes, sha256: FileDigest::hex(&sent.hasher.finalize()) })
    }

    /// A large file to S3 as a multipart upload whose key and id are noted under the
    /// generation's [`UPLOADS`] before the first part and removed after the last, so that if
    /// this process dies in between, [`Remote::retain`] can abort the upload S3 would
    /// otherwise keep (and bill) until a lifecycle rule removes it.
    fn put_parts(
        &self,
        s3: &dyn MultipartStore,
        file: &mut fs::File,
        path: &LocalPath,
        name: &str,
        relative: &str,
        sent: &mut Sent,
    ) -> Result<()> {
        use futures::stream::{FuturesOrdered, StreamExt};
        let in_store = format!("{GENERATIONS}/{name}/{relative}");
        let key = self.key(&in_store);
        let note = format!("{GENERATIONS}/{name}/{UPLOADS}/{relative}");
        let failed = |e| remote(&self.describe(&in_store), "writing", e);
        let id = self.runtime.block_on(s3.create_multipart(&key)).map_err(failed)?;
        let body = serde_json::to_vec(&UploadNote { key: key.to_string(), upload_id: id.clone() })
            .map_err(|source| Error::Json { context: "encoding an upload note".into(), source })?;
        let abort = |e: Error| {
            let _ = self.runtime.block_on(s3.abort_multipart(&key, &id));
            e
        };
        self.put(&self.key(&note), body, PutMode::Overwrite, &note).map_err(abort)?;
        self.runtime
            .block_on(async {
                let mut in_flight = FuturesOrdered::new();
                let mut parts = Vec::new();
                for index in 0.. {
                    let part = read_part(file).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                    if part.is_empty() {
                        break;
                    }
                    sent.add(&part);
                    in_flight.push_back(s3.put_part(&key, &id, index, PutPayload::from(part)));
                    if in_flight.len() >= 4 {
                        parts.extend(in_flight.next().await.transpose().map_err(failed)?);
                    }
                }
                while let Some(part) = in_flight.next().await {
                    parts.push(part.map_err(failed)?);
                }
                s3.complete_multipart(&key, &id, parts).await.map(drop).map_err(failed)
            })
            .map_err(abort)?;
        self.runtime
            .block_on(self.store.delete(&self.key(&note)))
            .map_err(|e| remote(&self.describe(&note), "removing", e))
    }

    /// A large file to a filesystem store: `object_store` stages it in a hidden file beside its
    /// name (`name#N`, which listings skip) and renames it into place at the end.
    fn put_staged(&self, file: &mut fs::File, path: &LocalPath, in_store: &str, sent: &mut Sent) -> Result<()> {
        let key = self.key(in_store);
        let failed = |e| remote(&self.describe(in_store), "writing", e);
        self.runtime.block_on(async {
            let upload = self.store.put_multipart(&key).await.map_err(failed)?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            loop {
                let part = match read_part(file) {
                    Ok(part) if part.is_empty() => break,
                    Ok(part) => part,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(Error::io(format!("reading {}", path.display()), e));
                    }
                };
                sent.add(&part);
                if let Err(e) = writer.wait_for_capacity(4).await {
                    let _ = writer.abort().await;
                    return Err(failed(e));
                }
                writer.write(&part);
            }
            // `finish` aborts the upload itself when a part fails.
            writer.finish().await.map(drop).map_err(failed)
        })
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
    /// without a manifest (a publisher that died) goes the same way once old, with the
    /// multipart upload it left unfinished (aborted on S3, its staging file removed from a
    /// folder). `keep` 0 keeps all. Age is the newest listed object's: a single file uploading
    /// for longer than `min_age` writes no listed object meanwhile, so `min_age` must exceed the
    /// longest file's upload (the command line's 15 minutes: 16 GB at 20 MB/s).
    ///
    /// # Errors
    /// [`Error::Remote`] for a failed listing, delete or abort; [`Error::Io`] when a folder
    /// store's generation folder cannot be removed.
    pub fn retain(&self, keep: usize, min_age: std::time::Duration) -> Result<Retained> {
        let mut retained = Retained::default();
        if keep == 0 {
            return Ok(retained);
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
        for (name, mut objects) in by_generation.into_iter().take(old) {
            if self.current()?.as_deref() == Some(name.as_str()) {
                continue;
            }
            if objects.iter().any(|o| o.last_modified > recent) {
                retained.recent.push(name);
                continue;
            }
            objects.sort_by_key(|o| !o.location.as_ref().ends_with(MANIFEST));
            let mut removing = objects.iter().map(|o| &o.location).peekable();
            // The manifest first, so that a generation half removed is never complete; then
            // unfinished uploads, before the notes that name them.
            if let Some(manifest) = removing.next_if(|l| l.as_ref().ends_with(MANIFEST)) {
                self.delete(manifest)?;
            }
            self.abort_uploads(&name, &objects)?;
            for location in removing {
                self.delete(location)?;
            }
            if let Some(root) = &self.local_root {
                // What listings do not show: the staging file of a large file's unfinished
                // upload, and the folders.
                let folder = root.join(GENERATIONS).join(&name);
                match fs::remove_dir_all(&folder) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(format!("removing {}", folder.display()), e))
                    }
                    _ => {}
                }
            }
            retained.removed.push(name);
        }
        Ok(retained)
    }

    fn delete(&self, location: &Path) -> Result<()> {
        self.runtime
            .block_on(self.store.delete(location))
            .map_err(|e| remote(&format!("{}/{location}", self.url), "removing", e))
    }

    /// Aborts the multipart uploads that generation `name`'s notes under [`UPLOADS`] name: a
    /// publisher's that died mid-upload (one that completed has removed its note; an upload
    /// S3 no longer knows is taken as done). A note that cannot be read, or names a key outside
    /// the generation, is logged and skipped rather than followed: it goes with the
    /// generation's other objects, and retention goes on.
    ///
    /// # Errors
    /// [`Error::Remote`] when S3 refuses an abort for another reason than not knowing the
    /// upload (the note then stays, and the next retention tries again).
    fn abort_uploads(&self, name: &str, objects: &[object_store::ObjectMeta]) -> Result<()> {
        let Some(s3) = &self.multipart else { return Ok(()) };
        let notes = self.generation_key(name, UPLOADS);
        let inside = self.generation_key(name, "");
        for note in objects.iter().filter(|o| o.location.prefix_matches(&notes)) {
            let context = format!("{}/{}", self.url, note.location);
            let read = self
                .runtime
                .block_on(async { self.store.get(&note.location).await?.bytes().await })
                .map_err(|e| e.to_string())
                .and_then(|body| serde_json::from_slice::<UploadNote>(&body).map_err(|e| e.to_string()))
                .and_then(|upload| {
                    // `parse`, not `from`: the note holds the key as stored, which `from` would
                    // encode again (a `%` in it would name another object).
                    let key = Path::parse(&upload.key).map_err(|e| e.to_string())?;
                    if !key.prefix_matches(&inside) || key.prefix_matches(&notes) {
                        return Err(format!("names the object {:?}, outside generation {name}", upload.key));
                    }
                    Ok((key, upload.upload_id))
                });
            let (key, id) = match read {
                Ok(upload) => upload,
                Err(reason) => {
                    tracing::warn!(note = %context, %reason, "skipping an upload note retention cannot follow");
                    continue;
                }
            };
            match self.runtime.block_on(s3.abort_multipart(&key, &id)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote(&context, "aborting the upload noted in", e)),
            }
        }
        Ok(())
    }
}

/// What a large file's upload has sent so far.
#[derive(Default)]
struct Sent {
    hasher: sha2::Sha256,
    bytes: u64,
}

impl Sent {
    fn add(&mut self, part: &[u8]) {
        use sha2::Digest;
        self.hasher.update(part);
        self.bytes += part.len() as u64;
    }
}

/// A multipart upload in progress, as noted under a generation's [`UPLOADS`].
#[derive(serde::Serialize, serde::Deserialize)]
struct UploadNote {
    /// The object's full key.
    key: String,
    upload_id: String,
}

/// The next part of a file: [`PART_BYTES`] bytes, fewer only at its end (S3 needs every part
/// but the last to be at least 5 MiB, so a short read must not end a part); empty at the end.
fn read_part(file: &mut fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut part = Vec::with_capacity(PART_BYTES);
    Read::take(&mut *file, PART_BYTES as u64).read_to_end(&mut part)?;
    Ok(part)
}
