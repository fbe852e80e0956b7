//! Shipping generations through object storage, so that one publisher feeds any number of
//! replicas. Two stores sit behind `object_store`'s `ObjectStore` trait: S3-compatible storage
//! (`s3://bucket/prefix`) and a local or shared filesystem (`file:///path`, e.g. an NFS mount). Generations are immutable, so this needs only file shipping and a
//! pointer that moves atomically; the storage's conditional puts do the rest, with no
//! consensus protocol of ours.
//!
//! Layout under the URL's prefix (`s3://bucket/prefix`), the local layout's names:
//!
//! ```text
//! CURRENT                       the serving generation's name; moved by compare-and-swap
//! generations/000007/.claim     created (if absent) before anything else: one publisher per name
//! generations/000007/<files>    every file of the local folder but its lock files
//! generations/000007/manifest.json
//!                               written after every file, listing each with its size and
//!                               SHA-256 (format version 4): a generation without it is not complete
//! ```
//!
//! [`Remote::publish`]: claim the name, upload the files (hashing the exact bytes sent), then
//! the manifest, then move `CURRENT` with a conditional put against the version read before
//! the upload (`If-Match` its ETag, or create-if-absent). Two publishers racing: one wins, the
//! other gets [`Error::PublishConflict`]. A publisher killed mid-upload leaves `CURRENT` as it
//! was, and a claimed name without a manifest, which [`Remote::retain`] removes later.
//!
//! [`Remote::pull`] (a replica): read `CURRENT`; if the local index already serves that
//! generation, nothing; else download its manifest and files into
//! `generations/.pulling-NAME`, check every size and SHA-256, rename the folder into place and
//! move the local `CURRENT` as a build does. Any mismatch refuses the download and leaves the
//! local index as it was. Serving never reads object storage: requests read the local copy.
//!
//! A filesystem store has no conditional overwrite, so `CURRENT` is compared and moved there
//! under an exclusive OS lock on `.CURRENT.lock` beside it (advisory: every hyrank publisher
//! takes it; on NFS that needs a server with working locks, as NFSv4's are). Its files are
//! written to a temporary name and renamed, with `fsync`, as S3's puts are atomic and durable.
//!
//! S3 settings come from the `AWS_*` environment variables the `object_store` crate reads
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_ALLOW_HTTP`...), then from the options a caller passes; none is ever logged.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path as LocalPath, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::build::{point_current, write_synced};
use super::{
    read_manifest, FileDigest, Manifest, CURRENT, FORMAT_VERSION, GENERATIONS, MANIFEST, MIN_FORMAT_VERSION,
    SHIPPED_FORMAT_VERSION,
};
use crate::error::{Error, Result};

/// Files from this size on are uploaded in parts.
const MULTIPART_FROM: u64 = 32 << 20;

/// A multipart upload's part size (S3 takes 5 MiB to 5 GiB).
const PART_BYTES: usize = 16 << 20;

/// The object a publisher creates first, so that one name has one publisher.
const CLAIM: &str = ".claim";

/// The lock a filesystem store's publishers move `CURRENT` under.
const CURRENT_LOCK: &str = ".CURRENT.lock";

/// A generation store in S3-compatible object storage or a filesystem folder.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    /// A filesystem store's root folder (`None`: S3), where `CURRENT`'s lock lives.
    local_root: Option<PathBuf>,
    /// The key prefix everything lives under (no leading or trailing `/`).
    prefix: String,
    /// The URL as given, for messages.
    url: String,
    runtime: tokio::runtime::Runtime,
}

/// A generation uploaded by [`Remote::upload`], not yet current.
#[derive(Debug, Clone)]
pub struct Uploaded {
    published: Published,
    /// `CURRENT` as read before the upload, and its version.
    previous: Option<(String, UpdateVersion)>,
}

impl Uploaded {
    /// The generation's name.
    pub fn generation(&self) -> &str {
        &self.published.generation
    }
}

/// What [`Remote::publish`] did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The generation's name.
    pub generation: String,
    /// What `CURRENT` named before (`None`: nothing was published there yet).
    pub previous: Option<String>,
    /// Files uploaded, the manifest excluded.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

impl Remote {
    /// Opens `url`: `s3://bucket` or `s3://bucket/prefix` with settings from the environment,
    /// or `file:///absolute/folder`, which must exist.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another scheme, no bucket, or a folder that is relative
    /// or missing; [`Error::Remote`] if the client cannot be built.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &[])
    }

    /// [`Remote::open`], then `options` on top of the environment: `object_store`'s S3 keys
    /// (`aws_endpoint`, `aws_access_key_id`, `aws_allow_http`...). A `file://` URL takes none.
    ///
    /// # Errors
    /// As [`Remote::open`], and an option key the client does not know.
    pub fn open_with(url: &str, options: &[(&str, &str)]) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the object storage client's runtime", e))?;
        if let Some(folder) = url.strip_prefix("file://") {
            let root = PathBuf::from(folder);
            if !root.is_absolute() {
                return Err(Error::invalid(
                    "object storage URL",
                    format!("{url:?} is not a file:///absolute/folder URL"),
                ));
            }
            if let Some((key, _)) = options.first() {
                return Err(Error::invalid(
                    "object storage option",
                    format!("{key:?} applies to s3:// storage, not to the folder {url:?}"),
                ));
            }
            // Not created here: a share that is not mounted must not turn into a local folder
            // that a publisher fills and no replica sees.
            if !root.is_dir() {
                return Err(Error::invalid(
                    "object storage URL",
                    format!("{} is not a folder; create it (or mount the share) first", root.display()),
                ));
            }
            let store = LocalFileSystem::new_with_prefix(&root)
                .map_err(|e| remote(url, "opening the folder", e))?
                .with_fsync(true)
                .with_automatic_cleanup(true);
            return Ok(Remote {
                store: Arc::new(store),
                local_root: Some(root),
                prefix: String::new(),
                url: url.trim_end_matches('/').to_string(),
                runtime,
            });
        }
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            Error::invalid("object storage URL", format!("{url:?} is not an s3://bucket/prefix or file:///folder URL"))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::invalid("object storage URL", format!("{url:?} names no bucket")));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in options {
            let key = key.parse().map_err(|e| {
                Error::invalid("object storage option", format!("unknown object storage option {key:?}: {e}"))
            })?;
            builder = builder.with_config(key, *value);
        }
        let store = builder.build().map_err(|e| remote(url, "configuring the client", e))?;
        Ok(Remote {
            store: Arc::new(store),
            local_root: None,
            prefix: prefix.trim_matches('/').to_string(),
            url: url.trim_end_matches('/').to_string(),
            runtime,
        })
    }

    /// The URL it was opened on.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, relative: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(relative)
        } else {
            Path::from(format!("{}/{relative}", self.prefix))
        }
    }

    fn generation_key(&self, name: &str, file: &str) -> Path {
        self.key(&format!("{GENERATIONS}/{name}/{file}"))
    }

    fn describe(&self, relative: &str) -> String {
        format!("{}/{relative}", self.url)
    }

    /// The generation `CURRENT` names, with the version to compare against when moving it;
    /// `None` if nothing was published yet.
    fn read_current(&self) -> Result<Option<(String, UpdateVersion)>> {
        let key = self.key(CURRENT);
        let got = self.runtime.block_on(async {
            match self.store.get_opts(&key, GetOptions::default()).await {
                Ok(result) => {
                    let version =
                        UpdateVersion { e_tag: result.meta.e_tag.clone(), version: result.meta.version.clone() };
                    Ok(Some((result.bytes().await?, version)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let Some((bytes, version)) = got.map_err(|e| remote(&self.describe(CURRENT), "reading", e))? else {
            return Ok(None);
        };
        let name = String::from_utf8_lossy(&bytes).trim().to_string();
        check_name(&name).map_err(|reason| Error::Remote { context: self.describe(CURRENT), reason })?;
        Ok(Some((name, version)))
    }

    /// The generation `CURRENT` names, if any.
    ///
    /// # Errors
    /// [`Error::Remote`]: the storage cannot be read, or `CURRENT` holds no generation name.
    pub fn current(&self) -> Result<Option<String>> {
        Ok(self.read_current()?.map(|(name, _)| name))
    }

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
            return Err(Error::Remote {
                context: self.describe(CURRENT),
                reason: "nothing is published there yet".into(),
            });
        };
        let generations = index_dir.join(GENERATIONS);
        fs::create_dir_all(&generations).map_err(|e| Error::io(format!("creating {}", generations.display()), e))?;
        // One pull at a time per folder (a server's puller and `hyrank pull`, or two servers
        // in a blue-green handover): held from the check through the rename and CURRENT, so no
        // pull removes or completes another's download. The OS drops it if the process dies.
        let _lock = lock_exclusive(&generations.join(".pulling.lock"))?;
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

/// Opens (creating if needed) and locks `path` exclusively, waiting for another holder; the
/// lock lasts as long as the returned file, and the OS drops it if the process dies.
fn lock_exclusive(path: &LocalPath) -> Result<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    file.lock().map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
    Ok(file)
}

/// Now less `age`, in the storage's timestamps.
fn chrono_now_minus(age: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
}

/// Every file under `dir` but the manifest and lock files, relative, `/`-separated, sorted.
fn local_files(dir: &LocalPath) -> Result<Vec<String>> {
    fn walk(root: &LocalPath, dir: &LocalPath, out: &mut Vec<String>) -> Result<()> {
        for entry in fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))? {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out)?;
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let relative = relative.join("/");
            // tantivy's and sled's lock files: held by whoever has the folder open, meaningless
            // elsewhere.
            if relative == MANIFEST || relative.ends_with(".lock") {
                continue;
            }
            out.push(relative);
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// The local path of a manifest's relative file name, refusing names that would leave the
/// folder (`..`, absolute paths, empty parts).
fn local_path(root: &LocalPath, relative: &str) -> std::result::Result<PathBuf, String> {
    let mut path = root.to_path_buf();
    for part in relative.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
            return Err(format!("lists the file {relative:?}, which is not a path inside a generation"));
        }
        path.push(part);
    }
    Ok(path)
}

/// A generation name as the local layout accepts it.
fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("{name:?} is not a generation name"));
    }
    Ok(())
}

/// Who claimed a name, for whoever finds a claim without a manifest.
fn claim_note() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{{\"host\": {host:?}, \"pid\": {}, \"at_unix\": {at}}}\n", std::process::id())
}

fn remote(context: &str, doing: &str, e: object_store::Error) -> Error {
    Error::Remote { context: format!("{doing} {context}"), reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_cannot_leave_the_generation() {
        let root = LocalPath::new("/idx/generations/.pulling-000001");
        assert_eq!(local_path(root, "lexical/meta.json").unwrap(), root.join("lexical").join("meta.json"));
        for bad in ["../CURRENT", "/etc/passwd", "a//b", "lexical/../../x", "", "a\\b", "./x"] {
            assert!(local_path(root, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lock_files_and_the_manifest_are_not_shipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("lexical")).unwrap();
        for file in ["manifest.json", "dense.vectors", "lexical/meta.json", "lexical/.tantivy-meta.lock", "store/db"] {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file).unwrap();
        }
        assert_eq!(local_files(dir.path()).unwrap(), ["dense.vectors", "lexical/meta.json", "store/db"]);
    }

    #[test]
    fn urls_name_a_bucket_or_an_absolute_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("bucket");
        let err = Remote::open(&format!("file://{}", folder.display())).unwrap_err();
        assert!(err.to_string().contains("create it (or mount the share) first"), "{err}");
        std::fs::create_dir(&folder).unwrap();
        let local = Remote::open(&format!("file://{}/", folder.display())).unwrap();
        assert_eq!(local.key("CURRENT").as_ref(), "CURRENT");
        assert_eq!(local.current().unwrap(), None);
        assert!(Remote::open("file://relative/folder").is_err());
        let err = Remote::open_with(&format!("file://{}", folder.display()), &[("aws_region", "x")]).unwrap_err();
        assert!(err.to_string().contains("applies to s3://"), "{err}");
        assert!(Remote::open("https://example.com/x").is_err());
        assert!(Remote::open("s3://").is_err());
        let remote = Remote::open_with("s3://bucket/some/prefix/", &[("aws_region", "us-east-1")]).unwrap();
        assert_eq!(remote.key("CURRENT").as_ref(), "some/prefix/CURRENT");
        assert!(Remote::open_with("s3://bucket", &[("no_such_option", "1")]).is_err());
    }
}
