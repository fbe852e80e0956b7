//! Writing generations: the building folder and its lock, publishing by rename, carrying
//! files over from the serving generation, removing dead builds, and pruning old generations
//! that no process holds open.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{current, files, io, Manifest, CURRENT, GENERATIONS, MANIFEST};
use crate::error::{Error, Result};

/// A generation folder being written.
#[derive(Debug)]
pub struct Building {
    /// Where its files go.
    pub dir: PathBuf,
    /// The name it will be published under.
    pub name: String,
    root: PathBuf,
    /// `.building-NAME.lock` beside the folder, locked (an OS advisory lock) for as long as
    /// this build lives: the OS releases it when the process dies, even by `kill -9`, which
    /// is how a later build tells a dead build's folder from a running one's.
    lock: (PathBuf, fs::File),
    /// The generation `CURRENT` named when this build read its input (none: no generation):
    /// publishing makes this one current only while `CURRENT` still names it.
    based_on: Option<String>,
}

/// The lock file of building folder `dir` (`.building-NAME` → `.building-NAME.lock`).
pub(super) fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    dir.with_file_name(name)
}

/// Whether `file` (locked) is still the file at `path`. Lock files are removed when a build
/// ends, so a process that opened one just before another removed it can lock a file no
/// longer in the folder; such a lock protects nothing and must not be trusted.
fn still_at(file: &fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Opens (creating it if needed) a building folder's lock file, for locking.
fn open_lock(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(|| format!("opening {}", path.display())))
}

/// Removes the building folders under `generations` whose build is no longer running (its
/// lock is free: the process that held it died), with their lock files. Returns what it
/// removed. A folder whose lock is held is a build in progress and is left alone.
fn remove_dead_builds(generations: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(generations).map_err(io(|| format!("listing {}", generations.display())))? {
        let entry = entry.map_err(io(|| format!("listing {}", generations.display())))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with(".building-") || name.ends_with(".lock") || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        let lock = lock_path(&dir);
        let file = open_lock(&lock)?;
        match file.try_lock() {
            // Another build replaced the lock file meanwhile: not ours to judge; next time.
            Ok(()) if !still_at(&file, &lock) => {}
            Ok(()) => {
                match fs::remove_dir_all(&dir) {
                    // Published (renamed) between the listing and the lock: nothing to remove.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(format!("removing the dead build {}", dir.display()), e)),
                    Ok(()) => removed.push(dir),
                }
                // Removed while still locked, so no one else can hold a lock on it.
                let _ = fs::remove_file(&lock);
            }
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("locking {}", lock.display()), e)),
        }
    }
    Ok(removed)
}

/// Marks generation folder `dir` as open by this process for as long as the returned file
/// lives: a shared OS lock on `generations/.serving-NAME.lock`, which [`prune`] will not remove
/// a generation under. `None` (logged) when the lock file cannot be made (a read-only index):
/// serving goes on, and such an index is not pruned by anyone either.
pub fn hold_serving(dir: &Path) -> Option<fs::File> {
    let path = serving_lock_path(dir)?;
    let locked = open_lock(&path).and_then(|file| {
        file.lock_shared().map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(file)
    });
    match locked {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!(error = %e, "no serving lock on the generation; a build's pruning cannot see this process");
            None
        }
    }
}

/// `generations/.serving-NAME.lock` for generation folder `generations/NAME`.
fn serving_lock_path(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    Some(dir.with_file_name(format!(".serving-{name}.lock")))
}

/// Removes published generations under `root` beyond the newest `keep`, except the one
/// `CURRENT` names and any a process holds open ([`hold_serving`]); returns what it removed.
/// `keep` 0 keeps everything.
///
/// # Errors
/// [`Error::Io`] listing the folder or removing a generation.
pub fn prune(root: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let current = current(root).ok();
    let published = published(root)?;
    let old = published.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for dir in published.into_iter().take(old) {
        if Some(&dir) == current.as_ref() {
            continue;
        }
        let Some(lock) = serving_lock_path(&dir) else { continue };
        let file = open_lock(&lock)?;
        match file.try_lock() {
            Ok(()) if still_at(&file, &lock) => {
                fs::remove_dir_all(&dir).map_err(io(|| format!("removing the old generation {}", dir.display())))?;
                let _ = fs::remove_file(&lock);
                removed.push(dir);
            }
            // Replaced meanwhile, or held: a process has it open.
            Ok(()) | Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("locking {}", lock.display()), e)),
        }
    }
    Ok(removed)
}

/// The published generation folders under `root` (a manifest, not a `.building` folder),
/// oldest first: names are zero-padded sequence numbers, so their order is their age.
///
/// # Errors
/// [`Error::Io`] when the folder cannot be listed.
pub fn published(root: &Path) -> Result<Vec<PathBuf>> {
    let generations = root.join(GENERATIONS);
    let mut published: Vec<PathBuf> = fs::read_dir(&generations)
        .map_err(io(|| format!("listing {}", generations.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir() && path.join(MANIFEST).is_file())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.')))
        .collect();
    published.sort();
    Ok(published)
}

/// Writes and publishes one generation under `root`: reserves the next name, lets `write` fill
/// the building folder and return the manifest, then publishes it (`Building::publish`). If
/// `write` fails, or the publish fails before the folder is renamed, the building folder is
/// removed and the error returned. (A failure after the rename, while moving `CURRENT`, leaves
/// the complete but unpointed generation in place; `CURRENT` still names the old one.) Every writer of generations (the indexer, the reranker
/// trainer) goes through here. Returns the published folder and its manifest.
pub fn build<E: From<Error>>(
    root: &Path,
    based_on: Option<&str>,
    write: impl FnOnce(&Building) -> Result<Manifest, E>,
) -> Result<(PathBuf, Manifest), E> {
    let mut building = begin(root)?;
    building.based_on = based_on.map(str::to_string);
    let manifest = match write(&building) {
        Ok(manifest) => manifest,
        Err(e) => {
            building.abandon();
            return Err(e);
        }
    };
    let dir = building.dir.clone();
    match building.publish(&manifest) {
        Ok(published) => Ok((published, manifest)),
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            let _ = fs::remove_file(lock_path(&dir));
            Err(E::from(e))
        }
    }
}

/// Reserves the next generation name under `root` and creates its building folder, after
/// removing the folders that builds killed earlier left behind (logged).
pub fn begin(root: &Path) -> Result<Building> {
    let generations = root.join(GENERATIONS);
    fs::create_dir_all(&generations).map_err(io(|| format!("creating {}", generations.display())))?;
    for dead in remove_dead_builds(&generations)? {
        tracing::warn!(folder = %dead.display(), "removed the folder of a build that did not finish");
    }
    let mut highest = 0u64;
    for entry in fs::read_dir(&generations).map_err(io(|| format!("listing {}", generations.display())))? {
        let entry = entry.map_err(io(|| format!("listing {}", generations.display())))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let number = name.strip_prefix(".building-").unwrap_or(&name);
        if let Ok(n) = number.parse::<u64>() {
            highest = highest.max(n);
        }
    }
    let name = format!("{:06}", highest + 1);
    let dir = generations.join(format!(".building-{name}"));
    // The lock first, then the folder: a folder exists only while its lock is held, so a
    // sweeping build never takes a starting build's folder for a dead one's.
    let lock = lock_path(&dir);
    let file = open_lock(&lock)?;
    file.try_lock().map_err(|e| {
        Error::io(
            format!("locking {}", lock.display()),
            std::io::Error::other(format!("{e}; another build took {name}")),
        )
    })?;
    if !still_at(&file, &lock) {
        return Err(Error::io(
            format!("locking {}", lock.display()),
            std::io::Error::other(format!("another build was sweeping {name}; run again")),
        ));
    }
    // create_dir, not create_dir_all: two indexers racing for one name must not share a folder.
    fs::create_dir(&dir).map_err(io(|| format!("creating {}", dir.display())))?;
    let based_on = current_name(root);
    Ok(Building { dir, name, root: root.to_path_buf(), lock: (lock, file), based_on })
}

/// The lock file publishers take in turn under an index folder ([`Building::publish`]).
const PUBLISH_LOCK: &str = ".publish.lock";

impl Building {
    /// Writes the manifest, moves the folder to its final name and points `CURRENT` at it.
    /// Returns the published folder.
    ///
    /// Builds may overlap (two nightly runs, a build beside a reranker's training), each under
    /// its own name; publishers take turns (a lock on `.publish.lock`, held only while `CURRENT`
    /// is read and moved), and a build makes its generation current only while `CURRENT` still
    /// names the generation it read its input from (`based_on`), as a compare-and-swap: one
    /// that another build published over meanwhile would serve older input (a reranker trained
    /// on the generation before a nightly build, published after it, dropped the build's new
    /// items), and one rolled back meanwhile would undo the rollback. Without the turns, two
    /// publishers shared `CURRENT.tmp`, and the older of two could end up current while both
    /// said they were published.
    ///
    /// # Errors
    /// [`Error::PublishConflict`] when `CURRENT` moved while this generation was built (it is
    /// complete and stays in place, not current, until a prune removes it); I/O errors.
    pub fn publish(self, manifest: &Manifest) -> Result<PathBuf> {
        let manifest_path = self.dir.join(MANIFEST);
        let json = serde_json::to_vec_pretty(manifest)
            .map_err(|source| Error::Json { context: "encoding manifest".into(), source })?;
        write_synced(&manifest_path, &json)?;
        same_mode_as(&manifest_path, &self.dir)?;
        let final_dir = self.root.join(GENERATIONS).join(&self.name);
        fs::rename(&self.dir, &final_dir)
            .map_err(io(|| format!("renaming {} to {}", self.dir.display(), final_dir.display())))?;
        let _ = fs::remove_file(&self.lock.0);
        let lock = self.root.join(PUBLISH_LOCK);
        let turn = open_lock(&lock)?;
        turn.lock().map_err(io(|| format!("locking {}", lock.display())))?;
        let serving = current_name(&self.root);
        if serving != self.based_on {
            let named = |name: &Option<String>| name.clone().unwrap_or_else(|| "no generation".to_string());
            return Err(Error::PublishConflict(format!(
                "generation {} is complete ({}) but not made current: it was built from {}, and CURRENT has named {} \
                 since (another build published, or a rollback); CURRENT stays (write {} into it to serve this one, \
                 until a build prunes it)",
                self.name,
                final_dir.display(),
                named(&self.based_on),
                named(&serving),
                self.name
            )));
        }
        point_current(&self.root, &self.name)?;
        Ok(final_dir)
    }

    /// Removes the building folder (after a failure).
    pub fn abandon(self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock.0);
    }
}

/// The name `root`'s `CURRENT` holds, trimmed; none when it is missing, unreadable or empty.
fn current_name(root: &Path) -> Option<String> {
    let text = fs::read_to_string(root.join(CURRENT)).ok()?;
    Some(text.trim().to_string()).filter(|name| !name.is_empty())
}

/// Gives every file under `dir` the permissions of `reference`, a file just made with
/// `File::create` (so under the process's umask). tantivy writes `meta.json` and `.managed.json`
/// through a temporary file, which is made owner-only whatever the umask: a server running as
/// another user in the group the umask shares with (a build user and a service user) could not
/// open the generation. Unix only; elsewhere nothing to do.
fn same_mode_as(reference: &Path, dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            fs::metadata(reference).map_err(io(|| format!("reading {}", reference.display())))?.permissions().mode()
                & 0o777;
        fn walk(dir: &Path, mode: u32) -> Result<()> {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            for entry in fs::read_dir(dir).map_err(io(|| format!("listing {}", dir.display())))? {
                let path = entry.map_err(io(|| format!("listing {}", dir.display())))?.path();
                let meta = fs::symlink_metadata(&path).map_err(io(|| format!("reading {}", path.display())))?;
                if meta.is_dir() {
                    walk(&path, mode)?;
                // A hard link is a published generation's file carried over (`carry_over`):
                // its mode is that generation's, and a chmod here would change it there too.
                } else if meta.is_file() && meta.nlink() == 1 && meta.permissions().mode() & 0o777 != mode {
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                        .map_err(io(|| format!("setting the permissions of {}", path.display())))?;
                }
            }
            Ok(())
        }
        walk(dir, mode)
    }
    #[cfg(not(unix))]
    {
        let _ = (reference, dir);
        Ok(())
    }
}

/// Points `root`'s `CURRENT` at generation `name`: a synced `CURRENT.tmp` renamed over it, so a
/// reader sees the old name or the new one.
pub(super) fn point_current(root: &Path, name: &str) -> Result<()> {
    let pointer_tmp = root.join(format!("{CURRENT}.tmp"));
    write_synced(&pointer_tmp, name.as_bytes())?;
    let pointer = root.join(CURRENT);
    fs::rename(&pointer_tmp, &pointer)
        .map_err(io(|| format!("renaming {} to {}", pointer_tmp.display(), pointer.display())))
}

pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::File::create(path).map_err(io(|| format!("creating {}", path.display())))?;
    file.write_all(bytes).map_err(io(|| format!("writing {}", path.display())))?;
    file.sync_all().map_err(io(|| format!("syncing {}", path.display())))
}

impl Building {
    /// Brings every file of the generation at `from` into this one, except its manifest (the
    /// new generation writes its own): for a generation that adds a file (a trained reranker)
    /// to the indexes of the one before.
    ///
    /// Published generations are never written again, so their files are hard-linked rather
    /// than copied: a new generation costs no disk for a large catalog's vectors and segments.
    /// Two kinds are copied instead. The sled store (`store/`) is opened read-write and sled
    /// may write to its files. Dotfiles are tantivy's lock files, and sharing those would make
    /// two generations' readers contend for one lock. A file that cannot be linked (another
    /// file system, or no hard links there) is copied.
    pub fn carry_over(&self, from: &Path) -> Result<()> {
        carry_tree(from, &self.dir, Some(MANIFEST), false)
    }
}

/// `skip`: a name left out at this level only. `copy_all`: copy, never link.
fn carry_tree(from: &Path, to: &Path, skip: Option<&str>, copy_all: bool) -> Result<()> {
    for entry in fs::read_dir(from).map_err(io(|| format!("listing {}", from.display())))? {
        let entry = entry.map_err(io(|| format!("listing {}", from.display())))?;
        let name = entry.file_name();
        let source = entry.path();
        let target = to.join(&name);
        if skip.is_some_and(|skip| name == skip) {
            continue;
        }
        let file_type = entry.file_type().map_err(io(|| format!("reading {}", source.display())))?;
        if file_type.is_dir() {
            fs::create_dir_all(&target).map_err(io(|| format!("creating {}", target.display())))?;
            carry_tree(&source, &target, None, copy_all || name == files::STORE)?;
            continue;
        }
        let shared = !copy_all && !name.to_string_lossy().starts_with('.');
        if !(shared && fs::hard_link(&source, &target).is_ok()) {
            fs::copy(&source, &target)
                .map_err(io(|| format!("copying {} to {}", source.display(), target.display())))?;
        }
    }
    Ok(())
}
