//! What the live log adds to a generation between builds: rows hidden by deletes and
//! replacements, fields overlaid by updates, and users' live events merged into their
//! histories. Each is read from the log once per write (cached by the log's versions), not
//! per request. Items written live are `live_items.rs`.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Engine, LiveFields, LiveUser};
use crate::error::{Error, Result};
use crate::live::items::LiveItems;
use crate::live::EventLog;
use crate::store::{Interaction, UserRecord};

impl Engine {
    /// Items deleted live, folded into this generation or written to the log since: no
    /// retriever returns them. A log delete counts only if it was made against the row this
    /// generation stores (a write made against an older generation whose row the catalog has
    /// changed since does not apply, as the next build would not apply it either). Read from
    /// the log once per delete, not per request.
    pub(crate) fn hidden(&self) -> Arc<HashSet<u32>> {
        self.hidden_at(&self.live_items())
    }

    /// How many items a request can find now: the generation's and the live rows, less the
    /// hidden ones (deleted, or replaced by a later put).
    pub fn visible_len(&self) -> usize {
        let live = self.live_items();
        (self.len() + live.len()).saturating_sub(self.hidden_at(&live).len())
    }

    /// What decides which rows are hidden, as of the live rows `live`: the log's last delete
    /// and the last put applied. The key of every cache derived from [`Engine::hidden`].
    pub(crate) fn hidden_version(&self, live: &LiveItems) -> crate::lexical::HiddenVersion {
        (self.live.as_ref().map_or(0, |log| log.delete_version()), live.version)
    }

    /// [`Engine::hidden`] as of the live rows `live`, a request's snapshot of them. The first
    /// request after a write works the set out (reading the log and the store; the others wait
    /// for it, as they need it) and hands it to BM25 after letting them go: BM25 reads the
    /// newly hidden generation rows' items (thousands after a restart) under no lock that a
    /// search takes, and searches go on with its last statistics meanwhile.
    pub(super) fn hidden_at(&self, live: &LiveItems) -> Arc<HashSet<u32>> {
        let version = self.hidden_version(live);
        let hidden = {
            let mut cached = self.hidden_items.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, (hidden, _))) = &*cached {
                if *at == version {
                    return Arc::clone(hidden);
                }
            }
            // Rows a live put replaced, and deleted rows: a delete applies to the row its id
            // names now if it was made against that row after the row existed. "Now" is the
            // request's snapshot `live` (a fresh look could find a put newer than it, and
            // leave the row it replaced in the request's lists).
            //
            // Each part only grows as the log does, so a set as of an earlier snapshot is a
            // start: live rows are appended and a replaced row stays replaced; and a delete
            // checked against a snapshot that held every put logged before it is settled, since
            // a later put of the id makes a new row the delete does not apply to and replaces
            // the one it hid. So each set keeps the sequence number up to which its deletes are
            // settled, and the next one checks only those after it: checking all 1,000 of a
            // log's deletes again after every put cost each search 1-1.5 ms.
            let folded = self.manifest.live_folded_through();
            let start = cached.as_ref().filter(|(at, _)| crate::lexical::covers(version, *at));
            let (mut hidden, deletes, mut settled) = match (&self.live, start) {
                (None, _) => (self.deleted.clone(), Vec::new(), 0),
                (Some(log), start) => {
                    // Every put the log held when `version`'s deletes were read is in `live`
                    // (the put version read after the delete version): then each of those
                    // deletes had every put before it. Else only those up to `live`'s puts.
                    let settled =
                        if log.put_version() <= live.version { version.0.max(live.version) } else { live.version };
                    match start {
                        None => (self.deleted.clone(), log.deleted_items(folded), settled),
                        Some((_, (hidden, after))) => {
                            (HashSet::clone(hidden), log.deleted_items((*after).max(folded)), settled.max(*after))
                        }
                    }
                }
            };
            hidden.extend(live.replaced.iter().copied());
            for (id, seq, hash) in deletes {
                // A delete whose check failed (the store, not an id no row has) is not settled:
                // the next set checks it again, as every set did before they were carried.
                let unsettled = |e: &Error| !matches!(e, Error::UnknownItem { .. });
                let index = match self.index_in(live, &id) {
                    Ok(index) => index,
                    Err(e) => {
                        if unsettled(&e) {
                            tracing::error!(item = %id, error = %e, "finding a deleted item's row");
                            settled = settled.min(seq - 1);
                        }
                        continue;
                    }
                };
                let row_seq = live.seq_at(index);
                if seq <= row_seq {
                    continue;
                }
                let updates = self.field_updates_of(&id);
                match self.row_versions(live, index, row_seq, &updates, seq) {
                    Ok((hashes, _)) if hashes.contains(&hash) => {
                        hidden.insert(index);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(item = %id, error = %e, "reading a deleted item's row");
                        settled = settled.min(seq - 1);
                    }
                }
            }
            let hidden = Arc::new(hidden);
            // A request on an older snapshot (one that began before a write) does not replace
            // a newer set, nor one ahead of it in either part (BM25 takes the same rule).
            if cached.as_ref().is_some_and(|(at, _)| !crate::lexical::covers(version, *at)) {
                return hidden;
            }
            *cached = Some((version, (Arc::clone(&hidden), settled)));
            hidden
        };
        // BM25's statistics follow: a hidden row counts in none of them. Each generation row's
        // item is read from the store once, the first time it is hidden (a live row's tokens
        // are in BM25's live postings). BM25 ignores a set older than the one it holds, which
        // a request that computed its set before another's may hand in after it.
        if let Err(e) = self.lexical.hide(Arc::clone(&hidden), version, |index| self.stored_item_at(index)) {
            // The rows stay hidden from every list; only BM25's statistics still count them.
            tracing::error!(error = %e, "leaving hidden rows out of BM25's statistics");
        }
        hidden
    }

    /// The dense list's floor vector for a request fused by `fusion` (only `linear_floor` reads
    /// a floor, so only it pays for the mean after a write): the mean embedding of the items
    /// it can reach ([`Engine::dense_mean`]) other than the probe's `own` (a recommendation's
    /// history, a similar request's seed), as CF's floor leaves them out
    /// ([`crate::retrieve::CfItems::floor`]): the floor is what an item unrelated to the probe
    /// scores, and a probe made of its own items scores them high. A score is linear in the
    /// vector, so taking the own items out of the mean takes their scores out of the floor:
    /// (count · mean − Σ own) / (count − own), O(own × dim).
    pub(crate) fn floor_mean(
        &self,
        fusion: &crate::fusion::Fusion,
        live: &LiveItems,
        own: &[u32],
    ) -> Option<Arc<Vec<f32>>> {
        if *fusion != crate::fusion::Fusion::LinearFloor {
            return None;
        }
        let (mean, count) = self.dense_mean(live);
        let hidden = self.hidden_at(live);
        let mut own: Vec<u32> = own.iter().copied().filter(|i| !hidden.contains(i)).collect();
        own.sort_unstable();
        own.dedup();
        let vectors: Vec<&[f32]> = own
            .iter()
            .filter_map(|&i| live.get(i).map(|e| e.vector.as_slice()).or_else(|| self.dense.vector(i)))
            .collect();
        let others = count - vectors.len() as f64;
        if vectors.is_empty() || others < 0.5 {
            return Some(mean);
        }
        let mut sum: Vec<f64> = mean.iter().map(|&m| f64::from(m) * count).collect();
        for vector in vectors {
            sum.iter_mut().zip(vector).for_each(|(s, &x)| *s -= f64::from(x));
        }
        Some(Arc::new(sum.into_iter().map(|s| (s / others) as f32).collect()))
    }

    /// The mean embedding of the items a request can reach before its filters, as of its
    /// snapshot `live` of the live rows: the generation's rows less the hidden ones
    /// ([`Engine::hidden`]), plus the live rows not hidden. Its dot product with a probe is
    /// those items' mean score, the dense list's floor under `linear_floor` fusion
    /// ([`crate::fusion::Fusion::LinearFloor`]), so a write moves the floor as it moves what
    /// can be found. Taken by the first `linear_floor` request after a write (cached with the
    /// log's versions), O((hidden + live rows) × dim), outside the cache's lock.
    /// With it, how many items it is the mean of.
    fn dense_mean(&self, live: &LiveItems) -> (Arc<Vec<f32>>, f64) {
        let version = self.hidden_version(live);
        {
            let cached = self.dense_mean.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, (mean, count))) = &*cached {
                if *at == version {
                    return (Arc::clone(mean), *count);
                }
            }
        }
        let (mean, count) = reachable_mean(&self.dense, live, &self.hidden_at(live));
        let mean = Arc::new(mean);
        let mut cached = self.dense_mean.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A request on an older snapshot does not replace a newer one's mean.
        if cached.as_ref().is_none_or(|(at, _)| crate::lexical::covers(version, *at)) {
            *cached = Some((version, (Arc::clone(&mean), count)));
        }
        (mean, count)
    }

    /// `id`'s field updates logged after this generation's build, in sequence order.
    pub(super) fn field_updates_of(&self, id: &str) -> Vec<crate::live::FieldUpdateAt> {
        self.live.as_ref().map_or_else(Vec::new, |log| log.field_updates_of(id, self.manifest.live_folded_through()))
    }

    /// The name a write about the row at `index` carries ([`crate::live::item_hash`] of the row
    /// served there): for a stored row without values live writes gave it, the row as the
    /// writes made it (`LiveFold::written_as`), which every build's replay makes again whatever
    /// field types it then has, so the write applies on any generation that holds the row.
    ///
    /// # Errors
    /// Reading the stored row.
    pub fn row_name(&self, index: u32) -> Result<String> {
        // Only stored rows are in it; a row put live since is another index.
        match self.written_as.get(&index) {
            Some(name) => Ok(name.clone()),
            None => Ok(crate::live::item_hash(&self.stored_item_at(index)?)),
        }
    }

    /// The rows a write about the item at `index` may name when logged at `seq`, as the next
    /// build's replay has them (`live_fold::replay_item_writes`), and the fields the last field
    /// update among them gave it: the row's own [`crate::live::item_hash`] (a stored row's
    /// versions before the writes its build folded in too, [`Engine::row_hashes`]), then, for
    /// each of the id's field updates logged after the row was (`row_seq`, 0 for a stored row)
    /// and before `seq` that names one of those, the row with its fields. So a write made
    /// against a version a field update produced applies, even on a generation older than the
    /// writer's (`CURRENT` rolled back), where the build that folded that update is not served.
    /// `live`: the live rows the row is read from, where it is one.
    ///
    /// # Errors
    /// Reading a stored row.
    pub(super) fn row_versions(
        &self,
        live: &LiveItems,
        index: u32,
        row_seq: u64,
        updates: &[crate::live::FieldUpdateAt],
        seq: u64,
    ) -> Result<(Vec<String>, Option<std::collections::BTreeMap<String, crate::item::FieldValue>>)> {
        let read = || match live.get(index) {
            Some(entry) => Ok(entry.item.clone()),
            None => self.stored_item_at(index),
        };
        let mut row = None;
        let mut hashes = match live.get(index) {
            None if (index as usize) < self.ids.len() => self.stored_row_hashes(index)?.to_vec(),
            _ => crate::live::row_hashes(row.insert(read()?)),
        };
        let mut fields = None;
        for (_, hash, new) in updates.iter().filter(|u| u.0 > row_seq && u.0 < seq) {
            if hashes.contains(hash) {
                let row = match &mut row {
                    Some(row) => row,
                    None => row.insert(read()?),
                };
                row.fields = new.clone();
                hashes.extend(crate::live::row_hashes(row));
                fields = Some(new.clone());
            }
        }
        Ok((hashes, fields))
    }

    /// The hashes a write may name generation row `index` by: its stored item's, and those
    /// its catalog row was written as ([`Engine::row_versions`]). Read from the store once per
    /// row: every put moves the hidden set's version, and each delete in the log is checked
    /// against its row again (1,000 deletes took 10 ms on every search after a put).
    ///
    /// # Errors
    /// The store failing to give the row.
    fn stored_row_hashes(&self, index: u32) -> Result<Arc<Vec<String>>> {
        let kept =
            self.stored_row_hashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&index).cloned();
        if let Some(hashes) = kept {
            return Ok(hashes);
        }
        let mut hashes = crate::live::row_hashes(&self.stored_item_at(index)?);
        hashes.extend(self.written_as.get(&index).cloned());
        hashes.extend(self.row_hashes.get(&index).into_iter().flatten().cloned());
        let hashes = Arc::new(hashes);
        self.stored_row_hashes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(index, Arc::clone(&hashes));
        Ok(hashes)
    }

    /// Fields replaced live since this generation's build (none without a log), read from the
    /// log once per update, not per request.
    pub(crate) fn live_fields(&self) -> Arc<LiveFields> {
        let Some(log) = &self.live else { return Arc::default() };
        let version = (log.fields_version(), self.live_items().version);
        let mut cached = self.live_fields.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*cached {
            Some((at, fields)) if *at == version => Arc::clone(fields),
            _ => {
                // As for deletes, an update counts only against the row it was made on (or a
                // version of it an earlier update made), made after that row existed; the last
                // that does gives the fields.
                let live = self.live_items();
                let mut fields = LiveFields::new();
                for (id, updates) in log.field_updates(self.manifest.live_folded_through()) {
                    let Ok(index) = self.index_in(&live, &id) else { continue };
                    match self.row_versions(&live, index, live.seq_at(index), &updates, u64::MAX) {
                        Ok((_, Some(latest))) => {
                            fields.insert(index, latest);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(item = %id, error = %e, "reading an updated item's row"),
                    }
                }
                let fields = Arc::new(fields);
                *cached = Some((version, Arc::clone(&fields)));
                fields
            }
        }
    }

    /// Attaches the index's live event log: user lookups then include its events after the
    /// ones this generation folded in. [`Engine::open_next`] carries it to the next generation.
    pub fn attach_live(&mut self, log: Arc<EventLog>) {
        self.live = Some(log);
        // Items written live are embedded (if need be) and indexed now, not by a first request.
        if let Err(e) = self.apply_live_items() {
            tracing::error!(error = %e, "applying the live log's items");
        }
    }

    /// The attached live event log.
    pub fn live(&self) -> Option<&Arc<EventLog>> {
        self.live.as_ref()
    }

    /// A version of what the engine knows of `user` beyond the generation: the sequence
    /// number of their last unfolded live event, 0 if none. Response caches key on it.
    pub fn user_version(&self, user: &str) -> u64 {
        self.live.as_ref().map_or(0, |log| log.user_version(user, self.manifest.live_folded_through()))
    }

    /// `user`'s history as a request sees it: the build's, then their live events.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`user`) for an id no user can have
    /// ([`crate::item::id_problem`]: empty, blank at an end, a control character), as a live
    /// event with it is refused; [`Error::UnknownUser`] when neither the build nor the log
    /// knows them, or knows no positive of theirs (every row below the build's positive rule:
    /// stored for what they saw, with nothing to recommend from); a store failure.
    pub(crate) fn live_user(&self, id: &str) -> Result<LiveUser> {
        check_user_id(id)?;
        let stored = self.store.user(id)?;
        let events = match &self.live {
            Some(log) => log.user_events(id, self.manifest.live_folded_through()),
            None => Vec::new(),
        };
        let live = self.live_items();
        // A user stored with seen items only has no row of factors: not known to CF.
        let known = stored.as_ref().is_some_and(|record| !record.history.is_empty());
        if events.is_empty() && live.replaced.is_empty() {
            let record = stored.filter(|_| known).ok_or_else(|| Error::UnknownUser { id: id.to_string() })?;
            return Ok(LiveUser { record, live_events: 0, stored: true });
        }
        let mut record = stored.unwrap_or_else(|| UserRecord {
            id: id.to_string(),
            index: u32::MAX,
            history: Vec::new(),
            seen: Vec::new(),
        });
        // A stored history names an item's row as built; a row replaced live is now its latest
        // row (so the new row counts as seen, and its vector forms the profile).
        if !live.replaced.is_empty() {
            let latest = |item: &mut u32| {
                if live.replaced.contains(item) {
                    if let Ok(row) = self.index_of(&self.id_at(*item)) {
                        *item = row;
                    }
                }
            };
            record.history.iter_mut().for_each(|interaction| latest(&mut interaction.item));
            record.seen.iter_mut().for_each(latest);
        }
        if events.is_empty() {
            if !known {
                return Err(Error::UnknownUser { id: id.to_string() });
            }
            return Ok(LiveUser { record, live_events: 0, stored: true });
        }
        let mut merged = 0;
        let mut at: std::collections::HashMap<u32, usize> =
            record.history.iter().enumerate().map(|(position, i)| (i.item, position)).collect();
        // The build's positive rule, when it had one (`--min-weight`): the next build reads
        // these events as rows of the interactions file, so a request reads them the same way
        // now. An event below it is seen, not a positive; one at or above it counts once per
        // item, weighing 1. Without the rule every event adds its weight.
        let rule = self.manifest.sources.min_weight;
        let mut seen: std::collections::BTreeSet<u32> = record.seen.iter().copied().collect();
        for event in events {
            // An item a later generation dropped: the event stays in the log (the next build
            // reports it) but cannot be part of this generation's history.
            let Ok(item) = self.index_of(&event.item) else { continue };
            merged += 1;
            if rule.is_some_and(|min| event.weight < min) {
                seen.insert(item);
                continue;
            }
            let weight = if rule.is_some() { 1.0 } else { event.weight };
            match at.get(&item) {
                Some(&position) => {
                    let kept = &mut record.history[position];
                    if rule.is_none() {
                        kept.weight += weight;
                    }
                    kept.timestamp = kept.timestamp.max(event.timestamp);
                }
                None => {
                    at.insert(item, record.history.len());
                    record.history.push(Interaction { item, weight, timestamp: event.timestamp });
                }
            }
        }
        record.seen = seen.into_iter().filter(|item| !at.contains_key(item)).collect();
        // A user with no positive (the build's rows and these events all below the rule) has
        // nothing to recommend from, as after the next build, which stores only what they saw.
        if !known && record.history.is_empty() {
            return Err(Error::UnknownUser { id: id.to_string() });
        }
        Ok(LiveUser { record, live_events: merged, stored: known })
    }
}

/// The mean of the vectors of `index`'s rows and `live`'s rows, leaving out the `hidden` ones:
/// the index's f64 sum, less each hidden stored row, plus each live row not hidden. Zeros when
/// no row is left.
fn reachable_mean(index: &crate::dense::VectorIndex, live: &LiveItems, hidden: &HashSet<u32>) -> (Vec<f32>, f64) {
    let mut rows = index.len() as f64;
    let mut sum = index.sum().to_vec();
    let mut add = |vector: &[f32], sign: f64| {
        sum.iter_mut().zip(vector).for_each(|(s, &x)| *s += sign * f64::from(x));
        rows += sign;
    };
    // A hidden index past the stored rows is a live row, left out below.
    hidden.iter().filter_map(|&row| index.vector(row)).for_each(|vector| add(vector, -1.0));
    for (position, entry) in live.entries.iter().enumerate() {
        if !hidden.contains(&(live.base + position as u32)) {
            add(&entry.vector, 1.0);
        }
    }
    if rows < 0.5 {
        return (vec![0.0; sum.len()], 0.0);
    }
    (sum.into_iter().map(|s| (s / rows) as f32).collect(), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::{HnswSettings, Metric, VectorIndex};
    use crate::live::items::tests::item;

    #[test]
    fn the_reachable_mean_leaves_out_hidden_rows_and_takes_in_live_ones() {
        let stored = vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.6, 0.8];
        let index = VectorIndex::build(stored, 2, Metric::Cosine, HnswSettings::default()).unwrap();
        let mut live = LiveItems::empty(4);
        live.push(1, item("e"), vec![0.8, 0.6], None, None);
        // Replaces stored row 1, which is hidden with it below (as `Engine::hidden` has it).
        live.push(2, item("b"), vec![0.0, -1.0], Some(1), Some(1));
        // Stored row 1 (replaced) and live row 5 (deleted, say) hidden: rows 0, 2, 3 and 4 are
        // left, so x = (1 - 1 + 0.6 + 0.8) / 4 and y = (0 + 0 + 0.8 + 0.6) / 4.
        let (mean, count) = reachable_mean(&index, &live, &HashSet::from([1, 5]));
        assert_eq!(count, 4.0);
        assert!((mean[0] - 0.35).abs() < 1e-6 && (mean[1] - 0.35).abs() < 1e-6, "{mean:?}");
        // Nothing written: the index's own mean, ((1 - 1 + 0.6) / 4, (1 + 0.8) / 4).
        let (built, _) = reachable_mean(&index, &LiveItems::empty(4), &HashSet::new());
        assert!((built[0] - 0.15).abs() < 1e-6 && (built[1] - 0.45).abs() < 1e-6, "{built:?}");
        // Every row hidden: no row is left to average, and the floor is 0.
        let all: HashSet<u32> = (0..6).collect();
        assert!(reachable_mean(&index, &live, &all).0.iter().all(|&m| m == 0.0));
    }
}

/// Refuses an id no user can have ([`crate::item::id_problem`]), as a live event with it is
/// refused: [`Error::InvalidArgument`] (`user`).
pub(crate) fn check_user_id(id: &str) -> Result<()> {
    match crate::item::id_problem(id) {
        Some(problem) => Err(Error::invalid("user", format!("a user id {problem}"))),
        None => Ok(()),
    }
}
