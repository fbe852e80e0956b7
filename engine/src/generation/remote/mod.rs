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
//! generations/000007/.uploading/<file>
//!                               S3 only: a multipart upload in progress (its key and upload id),
//!                               written before its first part and removed once it completes, so
//!                               that a killed publisher's parts can be aborted by retention
//! ```
//!
//! [`Remote::publish`]: claim the name, upload the files (hashing the exact bytes sent), then
//! the manifest, then move `CURRENT` with a conditional put against the version read before
//! the upload (`If-Match` its ETag, or create-if-absent). Two publishers racing: one wins, the
//! other gets [`Error::PublishConflict`]. A publisher killed mid-upload leaves `CURRENT` as it
//! was, and a claimed name without a manifest, which [`Remote::retain`] removes later: its
//! objects, and on S3 the unfinished multipart upload its `.uploading/` note names (S3 keeps
//! and bills the parts of an upload nobody completes or aborts, and lists them only through a
//! call `object_store` does not offer); on a filesystem store, the staging file of the
//! unfinished upload, which listings do not show.
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
//! `AWS_ALLOW_HTTP`...), then from the options a caller passes ([`s3_options`]: `hyrank`'s
//! `--s3-*` flags, `hyrank-serve`'s `--source-*` settings); none is ever logged.

use std::fs;
use std::path::{Path as LocalPath, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, UpdateVersion};

use super::{CURRENT, GENERATIONS, MANIFEST};
use crate::error::{Error, Result};

mod publish;
mod pull;

pub use pull::point_back;

/// What is said of a source's `CURRENT` when it is missing, in every message that says so (a
/// replica starting, one polling, one asked to refresh): which cause it is, only the operator
/// knows.
pub const NO_CURRENT: &str =
    "missing (nothing is published there yet, a share is not mounted, or a bucket was emptied)";

/// Files from this size on are uploaded in parts.
const MULTIPART_FROM: u64 = 32 << 20;

/// A multipart upload's part size (S3 takes 5 MiB to 5 GiB).
const PART_BYTES: usize = 16 << 20;

/// The object a publisher creates first, so that one name has one publisher.
const CLAIM: &str = ".claim";

/// The folder of a generation's notes of multipart uploads in progress (S3). Not `.uploads`:
/// SeaweedFS keeps its own uploads under that name and leaves it out of listings.
const UPLOADS: &str = ".uploading";

/// The lock a filesystem store's publishers move `CURRENT` under.
const CURRENT_LOCK: &str = ".CURRENT.lock";

/// A generation store in S3-compatible object storage or a filesystem folder.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    /// The same S3 client's multipart calls (`None`: a filesystem store, which stages a large
    /// file in a hidden file instead).
    multipart: Option<Arc<dyn MultipartStore>>,
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

/// What [`Remote::retain`] did with the generations beyond the ones to keep.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Retained {
    /// Removed, oldest first.
    pub removed: Vec<String>,
    /// Left in place because an object of theirs was written within the minimum age (an
    /// upload in progress, or a publisher's just made current): a later run removes them.
    pub recent: Vec<String>,
}

/// S3 client settings given explicitly, as the `(key, value)` pairs [`Remote::open_with`]
/// takes (`object_store`'s `aws_endpoint`, `aws_region`, `aws_access_key_id`,
/// `aws_secret_access_key`, `aws_allow_http`), leaving out what is not given: the `AWS_*`
/// variable of the same meaning, which the client reads itself, then applies.
pub fn s3_options(
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    allow_http: Option<bool>,
) -> Vec<(&'static str, String)> {
    [
        ("aws_endpoint", endpoint),
        ("aws_region", region),
        ("aws_access_key_id", access_key_id),
        ("aws_secret_access_key", secret_access_key),
        ("aws_allow_http", allow_http.map(|b| b.to_string())),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| (key, v)))
    .collect()
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
                multipart: None,
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
        let store = Arc::new(builder.build().map_err(|e| remote(url, "configuring the client", e))?);
        Ok(Remote {
            store: store.clone(),
            multipart: Some(store),
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

    /// A refused pull's CURRENT goes back to the generation serving, but not over a pull that
    /// moved it on meanwhile, nor to a folder that is gone.
    #[test]
    fn current_is_pointed_back_only_from_the_refused_generation_to_one_still_here() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["000001", "000002"] {
            fs::create_dir_all(dir.path().join(GENERATIONS).join(name)).unwrap();
            fs::write(dir.path().join(GENERATIONS).join(name).join(MANIFEST), "{}").unwrap();
        }
        let current = || fs::read_to_string(dir.path().join(CURRENT)).unwrap();
        fs::write(dir.path().join(CURRENT), "000003").unwrap();
        assert!(!point_back(dir.path(), "000002", "000001").unwrap(), "another pull moved it on");
        assert_eq!(current(), "000003");
        fs::write(dir.path().join(CURRENT), "000002").unwrap();
        assert!(!point_back(dir.path(), "000002", "000009").unwrap(), "no folder to point at");
        assert_eq!(current(), "000002");
        assert!(point_back(dir.path(), "000002", "000001").unwrap());
        assert_eq!(current(), "000001");
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
