//! Items written live, as this generation serves them: the log's puts after what the
//! generation folded in become rows after its own ([`crate::live::items`]), searchable by BM25
//! (postings in memory, `lexical/live.rs`), by dense search (an exact scan) and by id. Read from the log
//! once per put, not per request: the write route applies a put before it answers, so the
//! item is found by the next request.

use std::sync::Arc;

use super::Engine;
use crate::error::{Error, Result};
use crate::live::items::LiveItems;
use crate::live::ItemPut;

impl Engine {
    /// The live rows as of the log's last put (none without a log).
    pub(crate) fn live_items(&self) -> Arc<LiveItems> {
        let current = Arc::clone(&self.live_items.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let Some(log) = &self.live else { return current };
        if log.put_version() <= current.version {
            return current;
        }
        // A put is being applied by another thread (the writer, as a rule): this request reads
        // the rows published so far rather than wait for the model and BM25.
        if let Err(std::sync::TryLockError::WouldBlock) = self.live_refresh.try_lock() {
            return current;
        }
        match self.refresh_live_items() {
            Ok(refreshed) => refreshed,
            Err(e) => {
                // A failing model or analyzer: the rows already served keep serving; the error
                // reaches the writer through `Engine::apply_live_items`.
                tracing::error!(error = %e, "applying live items");
                current
            }
        }
    }

    /// Applies the log's puts not yet applied, and returns the rows: what the write route calls
    /// after a put, so that its answer means "searchable now".
    ///
    /// # Errors
    /// The model (an item embedded with other weights is embedded again) or a field's analyzer
    /// missing from the BM25 index failing.
    pub fn apply_live_items(&self) -> Result<usize> {
        Ok(self.refresh_live_items()?.current())
    }

    fn refresh_live_items(&self) -> Result<Arc<LiveItems>> {
        // One refresher at a time; readers keep the published rows meanwhile.
        let _refresh = self.live_refresh.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = Arc::clone(&self.live_items.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let Some(log) = &self.live else { return Ok(current) };
        let after = current.version.max(self.manifest.live_folded_through());
        // The log's version read before its puts: a put logged between the two reads is then
        // among the puts, or above the version this settles on, never marked applied unread.
        let logged = log.put_version();
        let puts = log.item_puts(after);
        let Some(last) = puts.last().map(|(seq, _)| *seq) else {
            // Nothing after what this generation folded in: the version still moves up to the
            // log's, so later lookups take the fast path.
            let settled = logged.max(after);
            if settled > current.version {
                let next = Arc::new(LiveItems { version: settled, ..LiveItems::clone(&current) });
                *self.live_items.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&next);
                return Ok(next);
            }
            return Ok(current);
        };
        let mut next = LiveItems::clone(&current);
        let first_new = next.len();
        for (seq, put) in puts {
            // The id's deletes, to tell whether its row was deleted when the put was made.
            let deletes = log.deletes_of(&put.item.id, self.manifest.live_folded_through());
            self.apply_put(&mut next, &deletes, seq, put)?;
        }
        next.version = last;
        let next = Arc::new(next);
        // Published before BM25 sees the rows: a BM25 hit then always has its row. (Until BM25
        // has them, microseconds, a request that hides the rows they replace finds neither.)
        *self.live_items.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&next);
        let added =
            next.entries[first_new..].iter().enumerate().map(|(i, e)| (next.base + (first_new + i) as u32, &e.item));
        self.lexical.add_live(added)?;
        Ok(next)
    }

    /// Applies one put to `live` if it was made against the row the id names now (or, with an
    /// empty hash, while the id named no visible row): the rule the next build applies too.
    /// `deletes`: the id's deletes logged after the generation's build, in sequence order.
    fn apply_put(&self, live: &mut LiveItems, deletes: &[(u64, String)], seq: u64, put: ItemPut) -> Result<()> {
        let id = put.item.id.clone();
        let previous = live.index_of(&id).or_else(|| self.store.item_index(&id).ok().flatten());
        // Whether a write logged at `at` naming `hash` was made against the row the id names
        // now, or a version of it a field update made ([`Engine::row_versions`]).
        let row_seq = previous.map_or(0, |index| live.get(index).map_or(0, |entry| entry.seq));
        let updates = self.field_updates_of(&id);
        let names_row = |hash: &str, at: u64| -> Result<bool> {
            match previous {
                Some(index) => Ok(self.row_versions(live, index, row_seq, &updates, at)?.0.iter().any(|h| h == hash)),
                None => Ok(false),
            }
        };
        let mut deleted = previous.is_some_and(|index| row_seq == 0 && self.deleted.contains(&index));
        for (d, h) in deletes {
            deleted = deleted || (*d > row_seq && *d < seq && names_row(h, *d)?);
        }
        let applies =
            if previous.is_none() || deleted { put.item_hash.is_empty() } else { names_row(&put.item_hash, seq)? };
        if !applies {
            tracing::warn!(item = %id, seq, "live put made against another row than this generation serves; not applied");
            live.superseded += 1;
            return Ok(());
        }
        let vector = match put.embedding_for(self.embedder(), self.dense.dim()) {
            Some(vector) => vector.to_vec(),
            // Embedded by another model, precision or token limit than this generation's:
            // embedded again, never mixed into one vector space.
            None => self.embedder().embed(&put.item.content())?,
        };
        // The generation's row an id's live rows stand for in CF, which has no factors for them.
        let built = previous.map(|p| live.built_row(p));
        live.push(seq, put.item, vector, previous, built);
        Ok(())
    }

    /// Whether a delete or field update of `id`, logged at `seq` against the row whose
    /// [`crate::live::item_hash`] is `hash`, applies: whether that row is the one the id named
    /// when the write was logged, so that no put of the id logged between the caller's read of
    /// the row and the write replaced it. The rule the engine and the next build apply to the
    /// write; the live rows are brought up to the log first, so every put before `seq` counts.
    ///
    /// # Errors
    /// Reading the log's puts (an embedding) or the store.
    pub fn item_write_applies(&self, id: &str, seq: u64, hash: &str) -> Result<bool> {
        let live = self.refresh_live_items()?;
        // The id's row as of `seq`: its last live row put before it, else its stored row.
        let row = live.entries.iter().enumerate().rev().find(|(_, e)| e.seq < seq && e.item.id == id);
        let (index, row_seq) = match row {
            Some((at, entry)) => (live.base + at as u32, entry.seq),
            None => match self.store.item_index(id)? {
                Some(index) => (index, 0),
                None => return Ok(false),
            },
        };
        let updates = self.field_updates_of(id);
        Ok(self.row_versions(&live, index, row_seq, &updates, seq)?.0.iter().any(|h| h == hash))
    }

    /// Live rows this generation serves on top of its own, replaced ones included (what a
    /// server's `max_live_items` bounds).
    pub fn live_item_rows(&self) -> usize {
        self.live_items().len()
    }

    /// Embeds `item` with the generation's model and logs it as created or replaced, made
    /// against `item_hash` (the hash of the row the id names now, empty for none), then applies
    /// it: when this returns with `true`, BM25, dense search and lookups by id find it. `false`:
    /// logged but not applied, because another write about the id landed between the caller's
    /// read of the row and this one (the next build does not apply it either).
    ///
    /// # Errors
    /// An id [`crate::item::id_problem`] refuses ([`Error::InvalidArgument`]), no live log
    /// attached ([`Error::Unavailable`]), the model, the log's disk, or BM25's analyzers.
    pub fn put_live_item(&self, item: crate::item::Item, item_hash: String) -> Result<(crate::live::Appended, bool)> {
        let log = self.live.as_ref().ok_or_else(|| Error::Unavailable {
            what: "live items".into(),
            reason: "no live log is attached".into(),
        })?;
        if let Some(problem) = crate::item::id_problem(&item.id) {
            return Err(Error::invalid("id", problem));
        }
        let start = std::time::Instant::now();
        let embedding = self.embedder().embed(&item.content())?;
        let encoded = start.elapsed();
        let put = ItemPut {
            put_item: item.id.clone(),
            item_hash,
            item,
            embedding,
            model_sha256: self.embedder().identity().sha256.clone(),
            precision: self.embedder().precision().name().to_string(),
            max_tokens: Some(self.embedder().max_tokens()),
        };
        let appended = log.put_item(put)?;
        let logged = start.elapsed();
        self.apply_live_items()?;
        // Where a put's time goes (docs/EVAL.md, "BM25 after each write"), for
        // HYRANK_LOG=hyrank_engine=debug; BM25's own share is logged by `add_live`.
        tracing::debug!(
            encode_ms = encoded.as_secs_f64() * 1e3,
            log_ms = (logged - encoded).as_secs_f64() * 1e3,
            apply_ms = (start.elapsed() - logged).as_secs_f64() * 1e3,
            "live put"
        );
        // Whether this put made a row, not whether it is still the id's latest: a put that
        // landed after it (and before this look) replaced an applied row, and must not turn
        // it into a reported conflict.
        let applied = self.live_items().holds_put(appended.first_seq);
        Ok((appended, applied))
    }

    /// Items a request can name: the generation's and the live rows (replaced ones included;
    /// masks and lists are this long).
    pub(crate) fn total_len(&self) -> usize {
        self.ids.len() + self.live_items().len()
    }

    /// The id of the row at `index`, stored or live.
    pub(crate) fn id_at(&self, index: u32) -> String {
        match self.ids.get(index as usize) {
            Some(id) => id.clone(),
            None => self.live_items().get(index).map(|e| e.item.id.clone()).unwrap_or_default(),
        }
    }

    /// The embedding of row `index`, stored or live.
    pub(crate) fn vector_at(&self, live: &LiveItems, index: u32) -> Option<Vec<f32>> {
        match self.dense.vector(index) {
            Some(v) => Some(v.to_vec()),
            None => live.get(index).map(|e| e.vector.clone()),
        }
    }
}
