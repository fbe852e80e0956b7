//! What requests read of the log: a user's events and version, the items deleted, updated and
//! put since a generation's build, and the counts `/metrics` and `GET /v1/index` show.

use super::{batch_hash, now_ms, Appended, EventLog, FieldUpdateAt, ItemPut, LiveStats, Record};
use crate::live::Event;

impl EventLog {
    /// The answer to a retry of batch `id` with `events`, when the batch was written with them
    /// and is on disk: what a front end checks before anything else, so a retry is answered as
    /// the first attempt was even if, say, an item it names was deleted since.
    pub fn known_batch(&self, id: &str, events: &[Event]) -> Option<Appended> {
        let state = self.lock();
        let known = state.batches.get(id)?;
        (known.hash == batch_hash(events) && state.flushed_through >= known.last_seq).then(|| Appended {
            accepted: (known.last_seq - known.first_seq + 1) as usize,
            first_seq: known.first_seq,
            last_seq: known.last_seq,
            replayed: true,
        })
    }

    /// The user's events after `folded_through` (what the generation asking has folded in), in
    /// sequence order.
    pub fn user_events(&self, user: &str, folded_through: u64) -> Vec<Event> {
        let state = self.lock();
        state.by_user.get(user).map_or_else(Vec::new, |positions| {
            positions
                .iter()
                .map(|&p| &state.events[p])
                .filter(|e| e.seq > folded_through)
                .filter_map(|e| e.event().cloned())
                .collect()
        })
    }

    /// The sequence number of the user's last event after `folded_through`, 0 if none: a
    /// version that changes whenever their view does (what response caches key on).
    pub fn user_version(&self, user: &str, folded_through: u64) -> u64 {
        let state = self.lock();
        state
            .by_user
            .get(user)
            .and_then(|positions| positions.last())
            .map(|&p| state.events[p].seq)
            .filter(|&seq| seq > folded_through)
            .unwrap_or(0)
    }

    /// The last deletion's sequence number, 0 if none: a version of which items are hidden
    /// that changes with every delete (what response caches key on).
    pub fn delete_version(&self) -> u64 {
        self.lock().last_delete
    }

    /// The last field update's sequence number, 0 if none: what caches of field values key on.
    pub fn fields_version(&self) -> u64 {
        self.lock().last_fields
    }

    /// The last item put's sequence number, 0 if none: what caches of the live items key on.
    pub fn put_version(&self) -> u64 {
        self.lock().last_put
    }

    /// The item puts after sequence number `after`, in sequence order, with their numbers.
    pub fn item_puts(&self, after: u64) -> Vec<(u64, ItemPut)> {
        let state = self.lock();
        let first = state.puts.partition_point(|&p| state.events[p].seq <= after);
        state.puts[first..]
            .iter()
            .filter_map(|&p| match &state.events[p].record {
                Record::Put(put) => Some((state.events[p].seq, put.as_ref().clone())),
                _ => None,
            })
            .collect()
    }

    /// Each item's field updates after `folded_through`, in sequence order (items with none
    /// left out).
    pub fn field_updates(&self, folded_through: u64) -> Vec<(String, Vec<FieldUpdateAt>)> {
        let state = self.lock();
        state
            .fields
            .iter()
            .map(|(id, updates)| (id.clone(), after(updates, folded_through)))
            .filter(|(_, updates)| !updates.is_empty())
            .collect()
    }

    /// `item`'s field updates after `folded_through`, in sequence order.
    pub fn field_updates_of(&self, item: &str, folded_through: u64) -> Vec<FieldUpdateAt> {
        self.lock().fields.get(item).map(|updates| after(updates, folded_through)).unwrap_or_default()
    }

    /// Every delete after `after` (what the generation asking has folded in, or what the
    /// caller has read already): the item, the delete's sequence number and the hash of the row
    /// it was made against.
    pub fn deleted_items(&self, after: u64) -> Vec<(String, u64, String)> {
        let state = self.lock();
        state
            .deleted
            .iter()
            .flat_map(|(id, deletes)| deletes.iter().map(move |(seq, hash)| (id, *seq, hash)))
            .filter(|(_, seq, _)| *seq > after)
            .map(|(id, seq, hash)| (id.clone(), seq, hash.clone()))
            .collect()
    }

    /// The deletes of `id` after `folded_through`, in sequence order: each one's sequence number
    /// and the hash of the row it was made against.
    pub fn deletes_of(&self, id: &str, folded_through: u64) -> Vec<(u64, String)> {
        let state = self.lock();
        state
            .deleted
            .get(id)
            .map_or_else(Vec::new, |deletes| deletes.iter().filter(|(seq, _)| *seq > folded_through).cloned().collect())
    }

    /// Records held in memory: every event and item write since the generation before the
    /// serving one folded (those the serving one folded are retired at the next fold, see
    /// [`EventLog::fold`]). A count, not a scan: cheap enough to check at every write.
    pub fn records_in_memory(&self) -> usize {
        self.lock().events.len()
    }

    /// Counts for `/metrics` and `GET /v1/index`.
    pub fn stats(&self) -> LiveStats {
        let state = self.lock();
        // Events are in sequence order, so the unfolded ones are a suffix; a user has one if
        // their last event is in it.
        let first = state.events.partition_point(|e| e.seq <= state.folded_through);
        let unfolded = &state.events[first..];
        let users = state
            .by_user
            .values()
            .filter(|p| p.last().is_some_and(|&i| state.events[i].seq > state.folded_through))
            .count();
        let oldest = unfolded.first().map_or(0.0, |e| now_ms().saturating_sub(e.written_ms) as f64 / 1000.0);
        let deleted_items = state
            .deleted
            .values()
            .filter(|deletes| deletes.last().is_some_and(|(seq, _)| *seq > state.folded_through))
            .count();
        let put_items = state.puts.iter().filter(|&&p| state.events[p].seq > state.folded_through).count();
        LiveStats {
            deleted_items,
            events: unfolded.iter().filter(|e| e.event().is_some()).count(),
            users,
            last_seq: state.next_seq - 1,
            folded_through: state.folded_through,
            oldest_unfolded_secs: oldest,
            flushes: state.flushes,
            put_items,
        }
    }
}

/// The updates of `updates` (in sequence order) after sequence number `seq`.
fn after(updates: &[FieldUpdateAt], seq: u64) -> Vec<FieldUpdateAt> {
    updates[updates.partition_point(|u| u.0 <= seq)..].to_vec()
}
