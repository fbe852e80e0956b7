//! BM25 over items written live: an in-memory tantivy index beside the generation's, which
//! stays immutable on disk; `term_scores` reads both with statistics over both.

use tantivy::{Index, IndexReader, ReloadPolicy, Searcher};

use super::{analyzers, LexicalIndex};
use crate::error::Result;
use crate::item::Item;

/// The in-memory index of live items, and the searcher of its last commit.
pub(super) struct LiveSegment {
    writer: tantivy::IndexWriter,
    reader: IndexReader,
}

impl LexicalIndex {
    /// Indexes items written live (`(item index, item)`, indexes past the generation's) in an
    /// in-memory tantivy index with the generation's schema and analyzer, and makes them
    /// searchable before returning (one commit per call). From then on BM25 scores stored and
    /// live items together, with collection statistics over both ([`LexicalIndex::score_all`]).
    ///
    /// # Errors
    /// A tantivy failure (the items are then not searchable by BM25; nothing else changes).
    pub fn add_live<'a>(&self, items: impl IntoIterator<Item = (u32, &'a Item)>) -> Result<()> {
        let mut live = self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if live.is_none() {
            // The generation's own schema: its fields, and the analyzer it was built with.
            let index = Index::create_in_ram(self.index.schema());
            analyzers::register(&index);
            // tantivy's smallest arena; live items arrive a few at a time.
            let writer = index.writer_with_num_threads(1, 15_000_000)?;
            let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
            *live = Some(LiveSegment { writer, reader });
        }
        let segment = live.as_mut().expect("created above");
        let mut added = 0;
        for (idx, item) in items {
            segment.writer.add_document(super::schema::document(&self.fields, idx, item))?;
            added += 1;
        }
        if added > 0 {
            let start = std::time::Instant::now();
            segment.writer.commit()?;
            let committed = start.elapsed();
            segment.reader.reload()?;
            tracing::debug!(
                commit_ms = committed.as_secs_f64() * 1e3,
                reload_ms = (start.elapsed() - committed).as_secs_f64() * 1e3,
                "live BM25 commit"
            );
        }
        Ok(())
    }

    /// The generation's searcher, and the live items' when there are any.
    pub(super) fn searchers(&self) -> Vec<Searcher> {
        let mut searchers = vec![self.reader.searcher()];
        let live = self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(segment) = live.as_ref() {
            searchers.push(segment.reader.searcher());
        }
        searchers
    }
}
