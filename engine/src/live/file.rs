//! The log's files: `events-NNNNNNNN.jsonl` under `INDEX_DIR/live/`, read whole (the indexer,
//! a server starting), a partial last line cut off, a new file created durably.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{LoggedRecord, LIVE_DIR};
use crate::error::{Error, Result};

const SEGMENT_PREFIX: &str = "events-";
const SEGMENT_SUFFIX: &str = ".jsonl";

/// Every complete event in the log under `index_dir`, in sequence order, for the indexer to
/// fold in; empty when there is no log. Reads without the writer's lock: a line being written
/// now (no newline yet) is not acknowledged and is left for the next build.
///
/// # Errors
/// [`Error::Io`], or [`Error::BadIndex`] naming the file and line of a complete line that is
/// not an event.
pub fn read_events(index_dir: &Path) -> Result<Vec<LoggedRecord>> {
    let dir = index_dir.join(LIVE_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    for (_, path) in segment_files(&dir)? {
        read_segment(&path, PartialLine::Skip, &mut events)?;
    }
    Ok(events)
}

/// Every record a build must fold in, in sequence order: those the generation `previous` (the
/// one `CURRENT` names) carries in its `files::LIVE`, then the log's later ones. Without a
/// previous generation, or one from before carried records, the whole log.
///
/// # Errors
/// As [`read_events`], naming the carried file when it is the one that fails.
pub fn read_history(index_dir: &Path, previous: Option<&Path>) -> Result<Vec<LoggedRecord>> {
    let carried = match previous {
        Some(dir) => {
            let manifest = crate::generation::read_manifest(dir)?;
            manifest.live.filter(|l| l.carried).map(|l| (dir.join(crate::generation::files::LIVE), l.folded_through))
        }
        None => None,
    };
    let Some((path, through)) = carried else { return read_events(index_dir) };
    let mut records = Vec::new();
    read_segment(&path, PartialLine::Refuse, &mut records)?;
    // The build wrote every record it folded, through its last: one that ends short would
    // lose the rest (its log files may be compacted away), so it is refused, not read.
    let last = records.last().map_or(0, |r| r.seq);
    if last > through {
        return Err(Error::BadIndex {
            path,
            reason: format!("holds sequence number {last} past the generation's folded_through {through}"),
        });
    }
    if last < through {
        return Err(Error::BadIndex {
            path,
            reason: format!(
                "ends at sequence number {last}, but the generation folded records through {through}: \
                 the file is damaged or was partly copied, and building from it would lose the writes after {last}"
            ),
        });
    }
    records.extend(read_events(index_dir)?.into_iter().filter(|r| r.seq > through));
    Ok(records)
}

/// Writes `records` as a generation's carried records (`files::LIVE`), puts without their
/// embeddings (a build embeds its catalog itself), and syncs the file.
///
/// # Errors
/// [`Error::Io`].
pub fn write_carried(path: &Path, records: &[LoggedRecord]) -> Result<()> {
    use std::io::Write;
    let file = File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let mut out = std::io::BufWriter::new(file);
    for record in records {
        let line = match &record.record {
            super::Record::Put(put) if !put.embedding.is_empty() => {
                let mut lean = record.clone();
                if let super::Record::Put(put) = &mut lean.record {
                    put.embedding = Vec::new();
                }
                serde_json::to_vec(&lean)
            }
            _ => serde_json::to_vec(record),
        }
        .map_err(|source| Error::Json { context: format!("writing {}", path.display()), source })?;
        out.write_all(&line)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    let file = out.into_inner().map_err(|e| Error::io(format!("writing {}", path.display()), e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(format!("syncing {}", path.display()), e))
}

/// Removes the log files every published generation under `index_dir` has folded in and
/// carries (all of a file's records at or before the smallest `folded_through` among
/// generations with carried records; a generation without them keeps the whole log), never
/// the newest file, which a server may be appending to. Returns the files removed.
///
/// This is how the log restarts empty after a fold: a server starts a new file when a new
/// generation swaps in (`EventLog::fold`), and the build after that one removes the old files
/// once no generation kept for rollback needs them.
///
/// # Errors
/// [`Error::Io`], or a file or manifest that cannot be read.
pub fn compact(index_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = index_dir.join(LIVE_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut needed_after = u64::MAX;
    for generation in crate::generation::published(index_dir)? {
        let manifest = crate::generation::read_manifest(&generation)?;
        let through = manifest.live.filter(|l| l.carried).map_or(0, |l| l.folded_through);
        needed_after = needed_after.min(through);
    }
    let files = segment_files(&dir)?;
    let mut removed = Vec::new();
    for (_, path) in files.iter().take(files.len().saturating_sub(1)) {
        let mut records = Vec::new();
        read_segment(path, PartialLine::Skip, &mut records)?;
        if records.last().is_none_or(|r| r.seq <= needed_after) {
            fs::remove_file(path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            removed.push(path.clone());
        }
    }
    if !removed.is_empty() {
        File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(format!("syncing {}", dir.display()), e))?;
    }
    Ok(removed)
}

pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{number:08}{SEGMENT_SUFFIX}"))
}

/// The log's files, oldest first.
pub(super) fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let listing = fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let mut files = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            files.push((number, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// What [`read_segment`] does with a last line that has no newline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum PartialLine {
    /// A log file the server writes: a crash mid-write, never acknowledged; cut off the file.
    Repair,
    /// A log file read while a server may be writing it: not acknowledged yet; skipped.
    Skip,
    /// A generation's carried records, written whole and synced: damage; refused.
    Refuse,
}

/// Reads one file's complete lines into `out`, a partial last line handled as `partial` says.
pub(super) fn read_segment(path: &Path, partial: PartialLine, out: &mut Vec<LoggedRecord>) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut reader = BufReader::new(file);
    let (mut line, mut complete_bytes, mut number) = (Vec::new(), 0u64, 0usize);
    loop {
        line.clear();
        let read =
            reader.read_until(b'\n', &mut line).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            if partial == PartialLine::Refuse {
                return Err(Error::BadIndex {
                    path: path.to_path_buf(),
                    reason: format!("line {number} is cut short (the file is damaged or was partly copied)"),
                });
            }
            // The tail of a write that never finished: never acknowledged.
            if partial == PartialLine::Repair {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::io(format!("opening {} to repair it", path.display()), e))?;
                file.set_len(complete_bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io(format!("cutting the partial last line off {}", path.display()), e))?;
                tracing::warn!(file = %path.display(), line = number, bytes = read, "cut off a partial last line (a write that never finished)");
            }
            break;
        }
        complete_bytes += read as u64;
        let event: LoggedRecord = serde_json::from_slice(&line).map_err(|e| Error::BadIndex {
            path: path.to_path_buf(),
            reason: format!("line {number} is not a live event: {e}"),
        })?;
        if out.last().is_some_and(|last: &LoggedRecord| last.seq >= event.seq) {
            return Err(Error::BadIndex {
                path: path.to_path_buf(),
                reason: format!("line {number}: sequence number {} does not follow the one before it", event.seq),
            });
        }
        out.push(event);
    }
    Ok(())
}

/// Opens file `number` for appending, creating it, and makes its name durable (the folder
/// synced), so an acknowledged write in it cannot vanish with its directory entry.
pub(super) fn create_segment(dir: &Path, number: u64) -> Result<File> {
    let path = segment_path(dir, number);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(format!("syncing {}", dir.display()), e))?;
    Ok(file)
}
