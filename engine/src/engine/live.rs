//! What the live log adds to a generation between builds: rows hidden by deletes and
//! replacements, fields overlaid by updates, and users' live events merged into their
//! histories. Each is read from the log once per write (cached by the log's versions), not
//! per request. Items written live are `live_items.rs`.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Engine, LiveFields, LiveUser};
use crate::error::{Error, Result};
use crate::live::EventLog;
use crate::store::{Interaction, UserRecord};

impl Engine {
    /// Items deleted live, folded into this generation or written to the log since: no
    /// retriever returns them. A log delete counts only if it was made against the row this
    /// generation stores (a write made against an older generation whose row the catalog has
    /// changed since does not apply, as the next build would not apply it either). Read from
    /// the log once per delete, not per request.
    pub(crate) fn hidden(&self) -> Arc<HashSet<u32>> {
        let live = self.live_items();
        let version = (self.live.as_ref().map_or(0, |log| log.delete_version()), live.version);
        let mut cached = self.hidden_items.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, hidden)) = &*cached {
            if *at == version {
                return Arc::clone(hidden);
            }
        }
        // Rows a live put replaced, and deleted rows: a delete applies to the row its id names
        // now if it was made against that row after the row existed.
        let mut hidden = self.deleted.clone();
        hidden.extend(live.replaced.iter().copied());
        if let Some(log) = &self.live {
            for (id, seq, hash) in log.deleted_items(self.manifest.live_folded_through()) {
                let applies = |&index: &u32| seq > self.row_seq(index) && self.stored_hash_is(index, &hash);
                if let Some(index) = self.index_of(&id).ok().filter(applies) {
                    hidden.insert(index);
                }
            }
        }
        let hidden = Arc::new(hidden);
        *cached = Some((version, Arc::clone(&hidden)));
        hidden
    }

    /// Whether the item's stored row has this [`crate::live::item_hash`].
    fn stored_hash_is(&self, index: u32, hash: &str) -> bool {
        self.stored_item_at(index).is_ok_and(|item| crate::live::item_hash(&item) == hash)
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
                // As for deletes, an update counts only against the row it was made on, made
                // after that row existed.
                let fields: LiveFields = log
                    .field_updates(self.manifest.live_folded_through())
                    .into_iter()
                    .filter_map(|(id, seq, hash, fields)| {
                        let applies = |&index: &u32| seq > self.row_seq(index) && self.stored_hash_is(index, &hash);
                        let index = self.index_of(&id).ok().filter(applies)?;
                        Some((index, fields))
                    })
                    .collect();
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

    pub(crate) fn live_user(&self, id: &str) -> Result<LiveUser> {
        let stored = self.store.user(id)?;
        let events = match &self.live {
            Some(log) => log.user_events(id, self.manifest.live_folded_through()),
            None => Vec::new(),
        };
        let live = self.live_items();
        if events.is_empty() && live.replaced.is_empty() {
            let record = stored.ok_or_else(|| Error::UnknownUser { id: id.to_string() })?;
            return Ok(LiveUser { record, live_events: 0, stored: true });
        }
        let known = stored.is_some();
        let mut record =
            stored.unwrap_or_else(|| UserRecord { id: id.to_string(), index: u32::MAX, history: Vec::new() });
        // A stored history names an item's row as built; a row replaced live is now its latest
        // row (so the new row counts as seen, and its vector forms the profile).
        if !live.replaced.is_empty() {
            for interaction in &mut record.history {
                if live.replaced.contains(&interaction.item) {
                    if let Ok(latest) = self.index_of(&self.id_at(interaction.item)) {
                        interaction.item = latest;
                    }
                }
            }
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
        for event in events {
            // An item a later generation dropped: the event stays in the log (the next build
            // reports it) but cannot be part of this generation's history.
            let Ok(item) = self.index_of(&event.item) else { continue };
            merged += 1;
            match at.get(&item) {
                Some(&position) => {
                    let seen = &mut record.history[position];
                    seen.weight += event.weight;
                    seen.timestamp = seen.timestamp.max(event.timestamp);
                }
                None => {
                    at.insert(item, record.history.len());
                    record.history.push(Interaction { item, weight: event.weight, timestamp: event.timestamp });
                }
            }
        }
        if !known && merged == 0 {
            return Err(Error::UnknownUser { id: id.to_string() });
        }
        Ok(LiveUser { record, live_events: merged, stored: known })
    }
}
