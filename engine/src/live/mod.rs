//! Live writes between batch builds: a durable, append-only log of interaction events beside
//! the generations (`INDEX_DIR/live/`), the per-user view of it a request reads, and the fold
//! that retires events once a generation has taken them in.
//!
//! Why a log of plain JSON lines and not sled: the server appends while `hyrank index`, another
//! process, reads the same events to fold them into the next generation, and sled locks its
//! folder to one process. A line is one event (`{"seq":…,"user":…,"item":…,"weight":…}`);
//! a batch is written with one `write` and made durable with `fdatasync` before
//! [`EventLog::append`] returns, so an acknowledged event survives a crash of the process or
//! the machine. A crash mid-write leaves at most a partial last line, never acknowledged:
//! opening the log cuts it off, and readers skip it.
//!
//! Sequence numbers order events across files. Every build takes every record ever written
//! (the catalog team's interactions file does not hold these events, so each generation must
//! take all of them again): those the serving generation carries (`generation::files::LIVE`),
//! then the log's later ones ([`read_history`]). It records the last sequence number it read
//! (`Manifest::live`); the engine serving it reads only later events from the log, so an event
//! is counted either by the generation or by the log, never by both and never by neither. At
//! each swap the server starts a new file ([`EventLog::fold`]), and a build removes the files
//! that every generation left on disk has folded in and carries ([`compact`]): so the log
//! restarts empty after a fold, as soon as no generation kept for rollback needs it.

//!
//! Split by question: [`record`] (what a line records, and how an event is checked),
//! `file` (the log's files: reading, repairing, creating), [`items`] (the rows written live,
//! as a generation serves them), `view` (what requests read of the log), and this file (the
//! log a server writes, and its fold).

mod file;
pub mod items;
mod record;
mod view;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
pub use file::{compact, read_events, read_history, write_carried};
use file::{create_segment, read_segment, segment_files, segment_path};
pub use record::{
    batch_hash, item_hash, row_hashes, typed_item_hash, validate_batch, Appended, BatchTag, Event, FieldUpdate,
    ItemDelete, ItemPut, LiveStats, LoggedRecord, Record, MAX_BATCH_ID_BYTES, MAX_ID_BYTES, MAX_WEIGHT, MIN_WEIGHT,
};

/// A logged field update: its sequence number, the hash of the row it was made against
/// ([`item_hash`]) and the item's new fields.
pub type FieldUpdateAt = (u64, String, std::collections::BTreeMap<String, crate::item::FieldValue>);

/// The log's folder under an index folder.
pub const LIVE_DIR: &str = "live";
const LOCK_FILE: &str = ".lock";

/// The durable event log of one index folder. One server process writes it at a time (an OS
/// lock on `live/.lock`); the indexer reads it with [`read_events`] without the lock.
///
/// Concurrent appends share a flush (group commit): each batch is numbered and queued under
/// the state lock, then whoever holds the file writes every queued batch with one `write` and
/// one `fdatasync`, so N writers waiting on one disk flush pay for one, not N in a row.
pub struct EventLog {
    dir: PathBuf,
    /// Held for the log's lifetime: the OS lock that keeps a second server out.
    _lock: File,
    state: Mutex<State>,
    /// The file appended to; held by the writer flushing a group.
    file: Mutex<Segment>,
}

struct Segment {
    file: File,
    number: u64,
}

/// A numbered batch waiting for its flush.
struct Pending {
    bytes: Vec<u8>,
    events: Vec<LoggedRecord>,
}

/// A client batch id's batch: its sequence numbers and the hash of its events.
#[derive(Debug, Clone)]
struct KnownBatch {
    first_seq: u64,
    last_seq: u64,
    hash: String,
}

struct State {
    next_seq: u64,
    /// Batches numbered but not yet flushed, in sequence order.
    queue: Vec<Pending>,
    /// Every event through this number is flushed (or its flush failed).
    flushed_through: u64,
    /// Batches whose flush failed, by their last sequence number, with the error.
    failed: HashMap<u64, String>,
    flushes: u64,
    /// Set when a failed flush could not be cut back off the file: lines nobody acknowledged
    /// may be on disk, so no more appends until a restart (which replays them).
    poisoned: Option<String>,
    /// Events not yet retired, in sequence order.
    events: Vec<LoggedRecord>,
    /// Positions in `events` per user.
    by_user: HashMap<String, Vec<usize>>,
    /// Deleted item ids with each deletion's sequence number and row hash, in sequence order
    /// (all of them: an id created again after a delete can be deleted again).
    deleted: HashMap<String, Vec<(u64, String)>>,
    /// The last deletion's sequence number (0: none since the server started).
    last_delete: u64,
    /// Each updated item's field updates, in sequence order: the update's sequence number, the
    /// hash of the row it was made against and the fields (all of them: whether one applies
    /// depends on the ones before it, [`crate::Engine`]'s `row_versions`).
    fields: HashMap<String, Vec<FieldUpdateAt>>,
    /// The last field update's sequence number (0: none since the server started).
    last_fields: u64,
    /// Positions in `events` of item puts, in sequence order.
    puts: Vec<usize>,
    /// The last put's sequence number (0: none since the server started).
    last_put: u64,
    /// Every batch id in the log's files, kept after its events fold (retries of a batch are
    /// recognised as long as the file holding it exists).
    batches: HashMap<String, KnownBatch>,
    /// What the serving generation folded in, and what the one before it did.
    folded_through: u64,
    retire_through: u64,
}

impl EventLog {
    /// Opens (creating) the log under `index_dir`, replays it, and cuts off a partial last
    /// line left by a crash mid-write. `folded_through` is what the generation about to serve
    /// folded in (`Manifest::live`), so the events at or before it are not counted again.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be made or another process holds the log;
    /// [`Error::BadIndex`] naming the file and line when a complete line is not an event
    /// (the log is never silently shortened).
    pub fn open(index_dir: &Path, folded_through: u64) -> Result<Self> {
        let dir = index_dir.join(LIVE_DIR);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            // The folder's own entry must survive a crash too.
            File::open(index_dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(format!("syncing {}", index_dir.display()), e))?;
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("opening {}", lock_path.display()), e))?;
        lock.try_lock().map_err(|e| {
            Error::io(
                format!("locking {}", lock_path.display()),
                std::io::Error::other(format!("{e}; another server writes this index's live log")),
            )
        })?;
        let mut events = Vec::new();
        let files = segment_files(&dir)?;
        for (_, path) in &files {
            read_segment(path, file::PartialLine::Repair, &mut events)?;
        }
        let next_seq = events.last().map_or(1, |e| e.seq + 1).max(folded_through + 1);
        // Appends go to the newest file; a fresh log starts file 1.
        let segment = files.last().map_or(1, |f| f.0);
        let file = create_segment(&dir, segment)?;
        let mut state = State {
            next_seq,
            queue: Vec::new(),
            flushed_through: next_seq - 1,
            failed: HashMap::new(),
            flushes: 0,
            poisoned: None,
            events: Vec::new(),
            by_user: HashMap::new(),
            deleted: HashMap::new(),
            last_delete: 0,
            fields: HashMap::new(),
            last_fields: 0,
            puts: Vec::new(),
            last_put: 0,
            batches: HashMap::new(),
            folded_through,
            retire_through: folded_through,
        };
        for event in &events {
            if let Some(tag) = &event.batch {
                state.batches.insert(
                    tag.id.clone(),
                    KnownBatch { first_seq: event.seq, last_seq: tag.last_seq, hash: tag.hash.clone() },
                );
            }
        }
        for event in events.into_iter().filter(|e| e.seq > folded_through) {
            state.push(event);
        }
        Ok(EventLog { dir, _lock: lock, state: Mutex::new(state), file: Mutex::new(Segment { file, number: segment }) })
    }

    /// Appends `events` as one durable write: when this returns `Ok`, every one of them is on
    /// disk (`fdatasync`) and visible to [`EventLog::user_events`]; on `Err`, none is visible.
    /// Events are checked first ([`Event::validate`]); the caller checks that the items exist.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the row (`events[3].weight`), or [`Error::Io`].
    pub fn append(&self, events: Vec<Event>) -> Result<Appended> {
        self.append_batch(events, None)
    }

    /// [`EventLog::append`] with the client's id for the batch: a retry of a batch whose
    /// answer was lost (same id, same events) is answered with the first attempt's sequence
    /// numbers (`replayed`) and written no second time, so a client that retries until it gets
    /// an answer writes each batch exactly once. Ids are remembered while the log file holding
    /// the batch exists (see [`compact`]).
    ///
    /// # Errors
    /// As [`EventLog::append`]; [`Error::InvalidArgument`] on `batch_id` for an id over
    /// [`MAX_BATCH_ID_BYTES`], one [`crate::item::id_problem`] refuses (empty, blank at an end,
    /// a control character) or one already used for other events; [`Error::Overloaded`] while
    /// the id's first attempt is still being written (retry shortly).
    pub fn append_batch(&self, events: Vec<Event>, batch_id: Option<String>) -> Result<Appended> {
        record::validate_batch(&events)?;
        if let Some(id) = &batch_id {
            // The rule every other id follows (no blank at an end, no control character), so a
            // client's "\u0000" or " b " is refused as an item or user id would be; an id written
            // before the rule is still answered as a retry (`EventLog::known_batch`, first).
            if id.len() > MAX_BATCH_ID_BYTES {
                return Err(Error::invalid(
                    "batch_id",
                    format!("must be an id of at most {MAX_BATCH_ID_BYTES} bytes, got {}", id.len()),
                ));
            }
            if let Some(problem) = crate::item::id_problem(id) {
                return Err(Error::invalid("batch_id", format!("a batch id {problem}")));
            }
        }
        let batch = batch_id.map(|id| (id, batch_hash(&events)));
        let now = now_ms();
        let records = events
            .into_iter()
            .map(|mut event| {
                event.timestamp.get_or_insert((now / 1000) as i64);
                Record::Event(event)
            })
            .collect();
        self.append_tagged(records, now, batch)
    }

    /// Records `item`'s new `fields` (replacing all of its fields), durably, as
    /// [`EventLog::append`] does: from the next request on, filters and hits read them.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn update_fields(
        &self,
        item: &str,
        item_hash: String,
        fields: std::collections::BTreeMap<String, crate::item::FieldValue>,
    ) -> Result<Appended> {
        let update = FieldUpdate { update_item: item.to_string(), item_hash, fields };
        self.append_records(vec![Record::Fields(update)], now_ms())
    }

    /// Records `put` (an item created or replaced, with its embedding), durably, as
    /// [`EventLog::append`] does.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn put_item(&self, put: ItemPut) -> Result<Appended> {
        self.append_records(vec![Record::Put(Box::new(put))], now_ms())
    }

    /// Records that `item` (with its row's [`item_hash`]) is deleted, durably, as
    /// [`EventLog::append`] does: from the next request on, no retriever returns it.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn delete_item(&self, item: &str, item_hash: String) -> Result<Appended> {
        self.append_records(vec![Record::Delete(ItemDelete { delete_item: item.to_string(), item_hash })], now_ms())
    }

    /// Numbers `records`, queues them and returns once they are flushed.
    fn append_records(&self, records: Vec<Record>, now: u64) -> Result<Appended> {
        self.append_tagged(records, now, None)
    }

    /// [`EventLog::append_records`] for a batch with the client's id and its events' hash.
    fn append_tagged(&self, records: Vec<Record>, now: u64, batch: Option<(String, String)>) -> Result<Appended> {
        let (first_seq, last_seq) = {
            let mut state = self.lock();
            if let Some(reason) = &state.poisoned {
                return Err(Error::io("appending to the live log", std::io::Error::other(reason.clone())));
            }
            if let Some((id, hash)) = &batch {
                if let Some(known) = state.batches.get(id) {
                    if known.hash != *hash {
                        return Err(Error::invalid("batch_id", format!("{id:?} was already used for other events")));
                    }
                    if state.flushed_through < known.last_seq {
                        return Err(Error::Overloaded { queue: "the first attempt of this batch", capacity: 1 });
                    }
                    return Ok(Appended {
                        accepted: (known.last_seq - known.first_seq + 1) as usize,
                        first_seq: known.first_seq,
                        last_seq: known.last_seq,
                        replayed: true,
                    });
                }
            }
            let first_seq = state.next_seq;
            let count = records.len() as u64;
            let mut logged: Vec<LoggedRecord> = records
                .into_iter()
                .enumerate()
                .map(|(i, record)| LoggedRecord { seq: first_seq + i as u64, written_ms: now, batch: None, record })
                .collect();
            if let Some((id, hash)) = batch {
                let last_seq = first_seq + count - 1;
                state.batches.insert(id.clone(), KnownBatch { first_seq, last_seq, hash: hash.clone() });
                logged[0].batch = Some(BatchTag { id, last_seq, hash });
            }
            let mut bytes = Vec::with_capacity(logged.len() * 96);
            for event in &logged {
                serde_json::to_writer(&mut bytes, event)
                    .map_err(|source| Error::Json { context: "encoding a live event".into(), source })?;
                bytes.push(b'\n');
            }
            let last_seq = first_seq + logged.len() as u64 - 1;
            state.next_seq = last_seq + 1;
            state.queue.push(Pending { bytes, events: logged });
            (first_seq, last_seq)
        };
        self.flush_through(last_seq)?;
        Ok(Appended { accepted: (last_seq - first_seq + 1) as usize, first_seq, last_seq, replayed: false })
    }

    /// Returns once the batch ending at `last_seq` is flushed: by this caller, which then
    /// flushes every batch queued so far, or by another that took it in its group.
    fn flush_through(&self, last_seq: u64) -> Result<()> {
        let mut segment = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let group = {
            let mut state = self.lock();
            if let Some(reason) = state.failed.remove(&last_seq) {
                return Err(Error::io("appending to the live log", std::io::Error::other(reason)));
            }
            if state.flushed_through >= last_seq {
                return Ok(());
            }
            std::mem::take(&mut state.queue)
        };
        let bytes: Vec<u8> = group.iter().flat_map(|p| p.bytes.iter().copied()).collect();
        // Where the group starts, so a failed write can be cut back to it: the next open must
        // not find half a batch, and what it finds complete was never acknowledged.
        let before = segment.file.metadata().map(|m| m.len());
        let written = segment.file.write_all(&bytes).and_then(|()| segment.file.sync_data());
        let mut state = self.lock();
        // A flush counts when it made the group durable (a failed one is cut back below).
        state.flushes += u64::from(written.is_ok());
        let through = group.last().and_then(|p| p.events.last()).map_or(state.flushed_through, |e| e.seq);
        state.flushed_through = state.flushed_through.max(through);
        match written {
            Ok(()) => {
                for event in group.into_iter().flat_map(|p| p.events) {
                    state.push(event);
                }
                Ok(())
            }
            Err(e) => {
                let reason = format!("appending to {}: {e}", self.segment_path(segment.number).display());
                let cut =
                    before.and_then(|length| segment.file.set_len(length).and_then(|()| segment.file.sync_data()));
                if let Err(cut) = cut {
                    tracing::error!(error = %cut, "could not cut a failed write off the live log; refusing writes until a restart");
                    state.poisoned =
                        Some(format!("{reason}; the failed write could not be cut off ({cut}): restart the server"));
                }
                for pending in &group {
                    // Not written: a retry of the batch writes it anew.
                    if let Some(tag) = pending.events.first().and_then(|e| e.batch.as_ref()) {
                        state.batches.remove(&tag.id);
                    }
                    let batch_last = pending.events.last().map_or(0, |e| e.seq);
                    if batch_last != last_seq {
                        state.failed.insert(batch_last, reason.clone());
                    }
                }
                Err(Error::io(format!("appending to {}", self.segment_path(segment.number).display()), e))
            }
        }
    }

    /// Records that a generation folding in the events through `through` now serves. Events
    /// are dropped from memory only through what the *previous* generation folded, so requests
    /// still running on that one keep seeing theirs; the files stay (see the module docs).
    pub fn fold(&self, through: u64) {
        // The file first, as a flush takes them: no group is half written or half published
        // while the events are re-read below.
        let mut segment = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Appends go to a new file from now on, so the folded ones can be removed once no kept
        // generation needs them (`compact`, run by the next build).
        if segment.file.metadata().is_ok_and(|m| m.len() > 0) {
            match create_segment(&self.dir, segment.number + 1) {
                Ok(file) => *segment = Segment { file, number: segment.number + 1 },
                Err(e) => tracing::warn!(error = %e, "starting a new live log file; appending to the old one"),
            }
        }
        let mut state = self.lock();
        if through < state.retire_through {
            self.reread(&mut state, through);
            state.folded_through = through;
            return;
        }
        let retire = state.folded_through.min(through);
        state.folded_through = through;
        state.retire_through = retire;
        if state.queue.is_empty() && state.flushed_through + 1 == state.next_seq {
            state.next_seq = state.next_seq.max(through + 1);
            state.flushed_through = state.next_seq - 1;
        }
        let kept: Vec<LoggedRecord> =
            std::mem::take(&mut state.events).into_iter().filter(|e| e.seq > retire).collect();
        state.by_user.clear();
        state.deleted.clear();
        state.fields.clear();
        state.puts.clear();
        for event in kept {
            state.push(event);
        }
    }

    /// Holds in memory every record after `through`, reading those that have left it back from
    /// the files: for a generation that folded less than what has left memory (a rollback of
    /// `CURRENT`, or a build with --no-live-events on an older log), called before it reads
    /// the log ([`crate::Engine::open_next`]), so that its live rows, deletes and updates are
    /// worked out from every record it lacks, not from those still in memory. The serving
    /// generation, which folded more, reads only later records and is not disturbed.
    pub fn hold_from(&self, through: u64) {
        let mut state = self.lock();
        if through < state.retire_through {
            self.reread(&mut state, through);
        }
    }

    /// Refills the in-memory records from the files, those after `through`.
    fn reread(&self, state: &mut State, through: u64) {
        match read_events(self.dir.parent().unwrap_or(&self.dir)) {
            Ok(events) => {
                state.events.clear();
                state.by_user.clear();
                state.deleted.clear();
                state.fields.clear();
                state.puts.clear();
                for event in events.into_iter().filter(|e| e.seq > through) {
                    state.push(event);
                }
                state.retire_through = through;
            }
            Err(e) => tracing::error!(error = %e, "re-reading the live log for an older generation"),
        }
    }

    /// The folder the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn segment_path(&self, number: u64) -> PathBuf {
        segment_path(&self.dir, number)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn push(&mut self, logged: LoggedRecord) {
        match &logged.record {
            Record::Event(event) => self.by_user.entry(event.user.clone()).or_default().push(self.events.len()),
            Record::Delete(delete) => {
                self.deleted
                    .entry(delete.delete_item.clone())
                    .or_default()
                    .push((logged.seq, delete.item_hash.clone()));
                self.last_delete = self.last_delete.max(logged.seq);
            }
            Record::Put(_) => {
                self.puts.push(self.events.len());
                self.last_put = self.last_put.max(logged.seq);
            }
            Record::Fields(update) => {
                self.fields.entry(update.update_item.clone()).or_default().push((
                    logged.seq,
                    update.item_hash.clone(),
                    update.fields.clone(),
                ));
                self.last_fields = self.last_fields.max(logged.seq);
            }
        }
        self.events.push(logged);
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
