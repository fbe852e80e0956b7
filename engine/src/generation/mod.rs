//! The on-disk layout of an index and its generations.
//!
//! ```text
//! <index dir>/
//!   CURRENT                 name of the serving generation; replaced by rename, never edited
//!   generations/
//!     000001/               one complete, immutable generation
//!       manifest.json       written last: a generation without it is not complete
//!       lexical/  store/  dense.*  cf.*  users.vectors  rejects.jsonl
//!     .building-000002/     a generation being written; never opened
//!     .building-000002.lock held (OS advisory lock) by the build writing it
//!     .serving-000001.lock  held shared by every process that has generation 000001 open
//! ```
//!
//! Builds remove older generations beyond the newest few ([`prune`]), never `CURRENT`'s and
//! never one a process still has open (its serving lock is held).
//!
//! A build killed mid-way leaves its `.building-*` folder behind; its lock dies with the
//! process, so the next build removes the folder (and never the folder of a build still
//! running, whose lock is held).
//!
//! Publishing renames the building folder to its final name, then points `CURRENT` at it by
//! writing `CURRENT.tmp` and renaming it over `CURRENT`. Each rename is atomic on POSIX file
//! systems, so a reader sees the old generation or the new one, never a half-written one.

//!
//! Split by question: [`manifest`] (what a generation records, and reading it back), `build`
//! (writing, publishing and removing generations, and the locks that keep that safe), and this
//! file (the layout's names, and which generation is current).

mod build;
mod manifest;
pub mod remote;

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use build::{begin, build, hold_serving, prune, published, Building};
pub use manifest::*;

/// The file under an index folder naming the serving generation.
pub const CURRENT: &str = "CURRENT";
/// File names inside a generation: the one list of the format's files, read by the engine and
/// written by the indexer and the reranker trainer.
pub mod files {
    /// tantivy folder.
    pub const LEXICAL: &str = "lexical";
    /// sled folder.
    pub const STORE: &str = "store";
    /// Item embeddings and their graph.
    pub const DENSE: &str = "dense";
    /// ALS item factors and their graph.
    pub const CF_ITEMS: &str = "cf_items";
    /// ALS user factors (`users.vectors`).
    pub const CF_USERS: &str = "users.vectors";
    /// The EASE item-item weights, pruned (`cf::ease`).
    pub const EASE: &str = "ease.bin";
    /// Rejected input rows.
    pub const REJECTS: &str = "rejects.jsonl";
    /// The trained search reranker's layers.
    pub const RERANKER: &str = "reranker.safetensors";
    /// The trained recommendation reranker's layers.
    pub const RECOMMEND_RERANKER: &str = "recommend-reranker.safetensors";
    /// The search reranker's precomputed item states (PreTTR).
    pub const RERANKER_STATES: &str = "reranker-states.bin";
    /// The recommendation reranker's precomputed item states (PreTTR).
    pub const RECOMMEND_RERANKER_STATES: &str = "recommend-reranker-states.bin";
    /// Every live-log record the generation folded in (puts without their embeddings), so the
    /// next build reads them here and the log's folded files can be removed
    /// (`live::compact`).
    pub const LIVE: &str = "live.jsonl";
    /// The items only interactions below the build's positive rule (`--min-weight`) name, as
    /// a JSON array of item indexes, ascending; absent when there are none. CF has no positive
    /// for them, yet they are no cold items (`super::read_seen_only`).
    pub const CF_SEEN_ONLY: &str = "cf-seen-only.json";
}

/// Writes [`files::CF_SEEN_ONLY`] into the generation folder `dir`: `items` ascending.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_seen_only(dir: &Path, items: &[u32]) -> Result<()> {
    let path = dir.join(files::CF_SEEN_ONLY);
    let json = serde_json::to_vec(items).expect("a list of numbers encodes");
    std::fs::write(&path, json).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Reads [`files::CF_SEEN_ONLY`] from the generation folder `dir` of `items` items: empty when
/// absent (no positive rule, or every interacted item had a positive; generations from
/// before 2026-12-07).
///
/// # Errors
/// [`Error::BadIndex`] for a file that is not a list of indexes below `items`; a read failure.
pub fn read_seen_only(dir: &Path, items: usize) -> Result<Vec<u32>> {
    let path = dir.join(files::CF_SEEN_ONLY);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let bad = |reason: String| Error::BadIndex { path: path.clone(), reason };
    let list: Vec<u32> = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a list of item indexes: {e}")))?;
    match list.iter().find(|&&item| item as usize >= items) {
        Some(item) => Err(bad(format!("item index {item} is past the generation's {items} items"))),
        None => Ok(list),
    }
}

/// Writes factors as little-endian f32 (`files::CF_USERS`), the layout the engine reads.
pub fn write_factors(path: &Path, factors: &crate::cf::Factors) -> Result<()> {
    crate::dense::write_f32_file(path, &factors.data)
}

const GENERATIONS: &str = "generations";
const MANIFEST: &str = "manifest.json";

fn io(context: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context(), e)
}

/// The folder of the generation `CURRENT` points at.
pub fn current(root: &Path) -> Result<PathBuf> {
    let pointer = root.join(CURRENT);
    let name = fs::read_to_string(&pointer).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::BadIndex {
            path: root.to_path_buf(),
            reason: format!("no published generation ({}: {e}); run `hyrank index` first", pointer.display()),
        },
        // Present and unreadable (a folder, no permission): not a folder never indexed.
        _ => Error::BadIndex { path: pointer.clone(), reason: format!("CURRENT cannot be read ({e})") },
    })?;
    let name = name.trim();
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::BadIndex { path: pointer, reason: format!("{name:?} is not a generation name") });
    }
    Ok(root.join(GENERATIONS).join(name))
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use crate::bert::Precision;
    use crate::dense::HnswSettings;
    use crate::embed::ModelIdentity;
    use crate::lexical::LexicalSettings;

    fn manifest(name: &str) -> Manifest {
        Manifest {
            live: None,
            field_types: Default::default(),
            files: Default::default(),
            format_version: FORMAT_VERSION,
            generation: name.into(),
            built_at_unix: 0,
            model: ModelIdentity { name: "m".into(), sha256: "0".into(), dim: 4 },
            max_tokens: 8,
            precision: Precision::F32,
            counts: Counts::default(),
            lexical: LexicalSettings::default(),
            hnsw: HnswSettings::default(),
            cf: None,
            ease: None,
            cf_selection: None,
            sources: Sources::default(),
            stages: vec![],
            reranker: None,
            recommend_reranker: None,
        }
    }

    /// A manifest read and written again (as publishing does, adding each file's hash) keeps
    /// every number to the last digit: serde_json's default float parser may land one unit in
    /// the last place off (seen: 0.09058950537690767 published as …769), hence its
    /// `float_roundtrip` feature in the workspace.
    #[test]
    fn manifest_numbers_survive_a_read_and_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut written = manifest("000001");
        let seconds = [0.09058950537690767, 0.11472428775828107, 0.47333333333333333, 0.18750492129511306, 1e-300];
        written.stages = seconds.iter().map(|&seconds| StageTiming { stage: "s".into(), seconds }).collect();
        for _ in 0..2 {
            fs::write(dir.path().join(MANIFEST), serde_json::to_vec_pretty(&written).unwrap()).unwrap();
            let read = read_manifest(dir.path()).unwrap();
            let bits = |m: &Manifest| m.stages.iter().map(|s| s.seconds.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&read), bits(&written));
            written = read;
        }
    }

    #[cfg(unix)]
    #[test]
    fn carrying_over_links_index_files_and_copies_the_store_and_lock_files() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let first = begin(root.path()).unwrap();
        let write = |path: PathBuf, text: &str| {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(first.dir.join("dense.vectors"), "vectors");
        write(first.dir.join("lexical/segment.idx"), "postings");
        write(first.dir.join("lexical/.tantivy-meta.lock"), "");
        write(first.dir.join("store/db"), "rows");
        let old = first.publish(&manifest("000001")).unwrap();

        let second = begin(root.path()).unwrap();
        second.carry_over(&old).unwrap();
        let inode = |dir: &Path, file: &str| fs::metadata(dir.join(file)).unwrap().ino();
        for file in ["dense.vectors", "lexical/segment.idx"] {
            assert_eq!(inode(&old, file), inode(&second.dir, file), "{file} is linked");
        }
        for file in ["store/db", "lexical/.tantivy-meta.lock"] {
            assert_ne!(inode(&old, file), inode(&second.dir, file), "{file} is copied");
        }
        assert_eq!(fs::read_to_string(second.dir.join("store/db")).unwrap(), "rows");
        // The new generation writes its own manifest.
        assert!(!second.dir.join(MANIFEST).exists());
    }

    #[test]
    fn publishing_switches_current_and_numbers_generations() {
        let root = tempfile::tempdir().unwrap();
        assert!(current(root.path()).is_err());
        let first = begin(root.path()).unwrap();
        assert_eq!(first.name, "000001");
        // An unpublished build is never current.
        assert!(current(root.path()).is_err());
        let m = manifest(&first.name);
        let dir = first.publish(&m).unwrap();
        assert_eq!(current(root.path()).unwrap(), dir);
        assert_eq!(read_manifest(&dir).unwrap(), m);
        let second = begin(root.path()).unwrap();
        assert_eq!(second.name, "000002");
        second.abandon();
        assert_eq!(current(root.path()).unwrap(), dir);
    }

    /// Two builds overlap: the one that publishes second read its input from a generation
    /// `CURRENT` no longer names, so its generation is complete but not made current, and it
    /// says so, whichever began first (a reranker trained on generation N reserves its name
    /// only when it publishes, after a nightly build made N + 1 current).
    #[test]
    fn a_build_whose_input_current_has_moved_past_is_not_made_current() {
        let root = tempfile::tempdir().unwrap();
        let first = build(root.path(), None, |b| Ok::<_, Error>(manifest(&b.name))).unwrap().0;
        for later_first in [true, false] {
            let serving = current(root.path()).unwrap().file_name().unwrap().to_string_lossy().into_owned();
            let (one, two) = (begin(root.path()).unwrap(), begin(root.path()).unwrap());
            let (winner, loser) = if later_first { (two, one) } else { (one, two) };
            let (won, lost) = (winner.name.clone(), loser.name.clone());
            let won_dir = winner.publish(&manifest(&won)).unwrap();
            let error = loser.publish(&manifest(&lost)).unwrap_err().to_string();
            let said = format!("generation {lost} is complete");
            assert!(
                error.contains(&said) && error.contains(&format!("built from {serving}, and CURRENT has named {won}")),
                "{error}"
            );
            assert_eq!(current(root.path()).unwrap(), won_dir);
            assert!(root.path().join(GENERATIONS).join(&lost).join(MANIFEST).is_file());
        }
        // Told what it read from: a build based on a generation CURRENT no longer names.
        let stale = build(root.path(), Some(first.file_name().unwrap().to_str().unwrap()), |b| {
            Ok::<_, Error>(manifest(&b.name))
        });
        assert!(stale.unwrap_err().to_string().contains("built from 000001"));
        // A build from the current generation publishes as ever, and no CURRENT.tmp is left.
        let now = current(root.path()).unwrap().file_name().unwrap().to_string_lossy().into_owned();
        let next = build(root.path(), Some(&now), |b| Ok::<_, Error>(manifest(&b.name))).unwrap().0;
        assert_eq!(current(root.path()).unwrap(), next);
        assert!(!root.path().join("CURRENT.tmp").exists());
    }

    /// A file a writer made owner-only (tantivy's temporary-file writes) is published with the
    /// permissions the umask gives a created file, as the manifest has them.
    #[cfg(unix)]
    #[test]
    fn a_published_generation_s_files_follow_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let building = begin(root.path()).unwrap();
        std::fs::create_dir(building.dir.join("lexical")).unwrap();
        let managed = building.dir.join("lexical/.managed.json");
        std::fs::write(&managed, b"[]").unwrap();
        std::fs::set_permissions(&managed, std::fs::Permissions::from_mode(0o600)).unwrap();
        let dir = building.publish(&manifest("000001")).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("lexical/.managed.json")), mode(&dir.join(MANIFEST)));
        // A file carried over as a hard link keeps its generation's mode, there and here: a
        // chmod of the link was a chmod of the serving generation's file.
        let carried = dir.join("dense.vectors");
        std::fs::write(&carried, b"vectors").unwrap();
        std::fs::set_permissions(&carried, std::fs::Permissions::from_mode(0o640)).unwrap();
        let next = begin(root.path()).unwrap();
        std::fs::hard_link(&carried, next.dir.join("dense.vectors")).unwrap();
        let next_dir = next.publish(&manifest("000002")).unwrap();
        assert_eq!((mode(&carried), mode(&next_dir.join("dense.vectors"))), (0o640, 0o640));
    }

    #[test]
    fn pruning_keeps_the_newest_current_and_open_generations() {
        let root = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for _ in 0..6 {
            let building = begin(root.path()).unwrap();
            let m = manifest(&building.name);
            dirs.push(building.publish(&m).unwrap());
        }
        // A server still serves 000002 (a shared lock, as Engine::open takes); CURRENT is
        // rolled back to 000003.
        let serving = hold_serving(&dirs[1]).unwrap();
        std::fs::write(root.path().join(CURRENT), "000003").unwrap();
        let removed = prune(root.path(), 2).unwrap();
        assert_eq!(removed, vec![dirs[0].clone(), dirs[3].clone()]);
        let left: Vec<bool> = dirs.iter().map(|d| d.exists()).collect();
        assert_eq!(left, [false, true, true, false, true, true]);
        // Once the server lets go, 000002 goes too; keep 0 keeps everything.
        drop(serving);
        assert!(prune(root.path(), 0).unwrap().is_empty());
        assert_eq!(prune(root.path(), 2).unwrap(), vec![dirs[1].clone()]);
        assert!(dirs[2].exists(), "CURRENT's generation is never removed");
    }

    /// A building folder whose build died (its lock free) is removed by the next build; one
    /// whose build is alive (its lock held, here by this process's `Building`) is not.
    #[test]
    fn the_next_build_removes_dead_builds_folders_and_keeps_running_ones() {
        let root = tempfile::tempdir().unwrap();
        let generations = root.path().join(GENERATIONS);
        let running = begin(root.path()).unwrap();
        std::fs::write(running.dir.join("dense.vectors"), b"partial").unwrap();
        // A build killed with -9: its folder and lock file stay, the lock itself is gone.
        let dead = generations.join(".building-000007");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("dense.vectors"), b"partial").unwrap();
        std::fs::write(lock_path(&dead), b"").unwrap();
        // An older binary's leftover, with no lock file at all.
        let older = generations.join(".building-000005");
        std::fs::create_dir(&older).unwrap();
        let next = begin(root.path()).unwrap();
        assert!(!dead.exists() && !lock_path(&dead).exists() && !older.exists());
        assert!(running.dir.join("dense.vectors").exists(), "a running build's folder is kept");
        assert_eq!(next.name, "000002", "the dead builds' names are free again");
        next.abandon();
        let dir = running.publish(&manifest("000001")).unwrap();
        let left: Vec<String> =
            std::fs::read_dir(&generations).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert_eq!(left, ["000001"], "no lock file or folder left behind");
        assert!(dir.ends_with("000001"));
    }

    #[test]
    fn a_generation_is_written_at_the_lowest_version_that_reads_it_correctly() {
        use crate::lexical::FieldCombination;
        let mut m = manifest("000001");
        m.lexical.bm25.fields = FieldCombination::Sum;
        assert_eq!(format_version_of(&m), 1);
        m.precision = Precision::Int8;
        assert_eq!(format_version_of(&m), 2);
        m.ease = Some(crate::cf::EaseSettings { recency_half_life: 0.0, ..Default::default() });
        assert_eq!(format_version_of(&m), 2, "sessions live in the stored weights");
        m.ease = Some(crate::cf::EaseSettings { recency_half_life: 4.0, ..Default::default() });
        assert_eq!(format_version_of(&m), SCORING_FORMAT_VERSION, "recency is applied at request time");
        m.ease = None;
        m.precision = Precision::Int8;
        m.lexical.bm25.title_b = Some(0.3);
        assert_eq!(format_version_of(&m), PER_FIELD_FORMAT_VERSION, "builds that read 5 and 6 ignore the title's b");
        m.lexical.bm25.title_b = None;
        m.lexical.title_analysis = Some(crate::lexical::FieldAnalysis {
            language: crate::lexical::Language::German,
            stemming: true,
            stop_words: false,
        });
        assert_eq!(format_version_of(&m), PER_FIELD_FORMAT_VERSION, "older builds analyse the title as the text");
        m.lexical.title_analysis = Some(m.lexical.analysis_of(false));
        assert_eq!(format_version_of(&m), 2, "a title analysed as the text reads alike everywhere");
        m.lexical.title_analysis = None;
        m.lexical.search_fields = vec![crate::lexical::SearchField::new("brand", 2.0)];
        assert_eq!(format_version_of(&m), PER_FIELD_FORMAT_VERSION, "older builds would not search the brand");
        m.lexical.search_fields[0].analysis = Some(m.lexical.analysis_of(false));
        assert_eq!(format_version_of(&m), FIELD_ANALYSIS_FORMAT_VERSION, "builds that read 7 would refuse to parse it");
        m.lexical.search_fields.clear();
        m.lexical.bm25.fields = FieldCombination::Bm25f;
        assert_eq!(format_version_of(&m), SCORING_FORMAT_VERSION, "older builds read BM25F as sum");
        m.precision = Precision::W8a8;
        assert_eq!(format_version_of(&m), W8A8_FORMAT_VERSION, "older builds do not know w8a8");
        m.sources.min_weight = Some(4.0);
        assert_eq!(format_version_of(&m), SEEN_FORMAT_VERSION, "older builds recommend low-rated items back");
    }

    #[test]
    fn another_format_version_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let building = begin(root.path()).unwrap();
        let dir = building.publish(&Manifest { format_version: 99, ..manifest("000001") }).unwrap();
        let err = read_manifest(&dir).unwrap_err();
        assert!(err.to_string().contains("format version"), "{err}");
    }
}
