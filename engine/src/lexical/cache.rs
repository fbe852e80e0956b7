//! Readings of query words kept between searches: a word's typo expansions
//! (`super::fuzzy`), its neighbours among the catalog's words (`super::typed`), a beginning's
//! completions (`super::prefix`) and how an item writes a word (`super::corrections`).
//!
//! Each reading sums what the generation's segments hold and what the live rows hold. The
//! segments never change within a generation (a generation has its own index and so its own
//! cache), so their part is kept across live writes ([`SegmentParts`]); the whole reading
//! is kept while the live rows are those counted, and a write (which adds a row) starts it
//! over. A reading after a write then adds the live rows to the segments' part kept, instead of
//! walking the term dictionaries again: most of a typo's cost, and under a stream of writes,
//! every search's.
//!
//! A segments' part keeps the first [`MAX_EXPANSIONS`](super::fuzzy::MAX_EXPANSIONS) of its
//! order, which is the reading's (the fewest edits, then the most common): counts only grow
//! with live rows, so a term outside them is outranked by all of them unless the live rows
//! hold it, and such a term is counted again in full (its segments' count read by term).

use std::collections::HashMap;
use std::sync::Arc;

use super::automaton::Reach;
use super::fuzzy::{Expansion, Visible};
use super::prefix::Completions;
use super::HiddenVersion;
use crate::error::Result;

/// Readings (or their parts) kept per map before that map starts over.
const CACHED_WORDS: usize = 4096;

/// The readings of recent words, so that a word typed again (or read again to highlight and
/// explain the hits of the search that read it) does not walk the term dictionaries and the
/// live rows again. See the module's docs.
#[derive(Debug, Default)]
pub(super) struct ExpansionCache {
    /// The live rows the maps below were read with.
    live_rows: u32,
    /// A word's expansions among the index's terms, keyed by the word, the mask of its fields
    /// and its reach.
    pub words: HashMap<(String, u64, Reach), Arc<Vec<Expansion>>>,
    /// A beginning's completions and the items holding it as typed (`super::prefix`), keyed
    /// by the beginning and the hidden set the live rows were read with
    /// ([`Visible::hidden_live_version`]: a delete changes their counts without adding a row).
    pub beginnings: HashMap<(String, Option<HiddenVersion>), Arc<Completions>>,
    /// A word's neighbours among the catalog's words (folded, not stemmed), keyed by the word,
    /// its reach and the hidden set the live rows were read with.
    pub typed_words: HashMap<(String, Reach, Option<HiddenVersion>), Arc<Vec<Expansion>>>,
    /// A catalog word (folded) as an item holding it writes it (`super::corrections`), keyed
    /// by the word and the hidden set the live rows were read with; none where the items
    /// looked at write it only joined or folded.
    pub written: HashMap<(String, Option<HiddenVersion>), Arc<Option<String>>>,
    /// The segments' parts of the readings above, kept across live writes.
    pub segments: SegmentParts,
}

/// What the generation's segments alone give a reading, with the same keys as
/// [`ExpansionCache`]'s maps less the live rows' hidden set: the first
/// [`MAX_EXPANSIONS`](super::fuzzy::MAX_EXPANSIONS) in the reading's order.
#[derive(Debug, Default)]
pub(super) struct SegmentParts {
    /// Each term with the items holding it per field looked up (the fields' order, 0 for a
    /// field not looked up): what [`Visible::doc_freq`]'s maximum is taken over.
    pub words: HashMap<(String, u64, Reach), Arc<Vec<(Expansion, Vec<u64>)>>>,
    pub beginnings: HashMap<String, Arc<Completions>>,
    pub typed_words: HashMap<(String, Reach), Arc<Vec<Expansion>>>,
}

impl Visible<'_> {
    /// What `map` of the [`ExpansionCache`] holds for `key`, else `compute`'s answer, kept
    /// while the live rows are those counted (at most [`CACHED_WORDS`] keys per map).
    pub(super) fn cached<K: std::hash::Hash + Eq, V>(
        &self,
        map: impl Fn(&mut ExpansionCache) -> &mut HashMap<K, Arc<V>>,
        key: K,
        compute: impl FnOnce() -> Result<V>,
    ) -> Result<Arc<V>> {
        let live_rows = self.live.len();
        let fresh = |cache: &mut ExpansionCache| {
            if cache.live_rows != live_rows {
                let segments = std::mem::take(&mut cache.segments);
                *cache = ExpansionCache { live_rows, segments, ..ExpansionCache::default() };
            }
        };
        {
            let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            fresh(&mut cache);
            if let Some(found) = map(&mut cache).get(&key) {
                return Ok(Arc::clone(found));
            }
        }
        let found = Arc::new(compute()?);
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.live_rows == live_rows {
            keep(map(&mut cache), key, &found);
        }
        Ok(found)
    }

    /// What `map` of the [`SegmentParts`] holds for `key`, else `compute`'s answer, kept for
    /// the generation's life (at most [`CACHED_WORDS`] keys per map).
    pub(super) fn segments_cached<K: std::hash::Hash + Eq, V>(
        &self,
        map: impl Fn(&mut SegmentParts) -> &mut HashMap<K, Arc<V>>,
        key: K,
        compute: impl FnOnce() -> Result<V>,
    ) -> Result<Arc<V>> {
        {
            let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(found) = map(&mut cache.segments).get(&key) {
                return Ok(Arc::clone(found));
            }
        }
        let found = Arc::new(compute()?);
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keep(map(&mut cache.segments), key, &found);
        Ok(found)
    }
}

/// `found` kept in `map` under `key`, the map started over when it holds [`CACHED_WORDS`].
fn keep<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, Arc<V>>, key: K, found: &Arc<V>) {
    if map.len() >= CACHED_WORDS {
        map.clear();
    }
    map.insert(key, Arc::clone(found));
}

#[cfg(test)]
mod tests {
    use super::super::analyzers::tests::{catalog_of, titled};
    use super::*;
    use crate::lexical::{Bm25Params, LexicalIndex};

    /// A catalog of 76 words one edit from "zorbqx" (ending in "x", so stems are the words):
    /// "zorb?x" and "zorbq?x" held by two items each, "zor?qx" by one; each word's
    /// segments' part keeps 50 of the 51 held by two.
    fn near_words() -> (tempfile::TempDir, LexicalIndex) {
        let letters = || ('a'..='z').filter(|&c| c != 'q');
        let mut titles = Vec::new();
        for c in letters() {
            titles.extend([format!("zorb{c}x"), format!("zorb{c}x"), format!("zor{c}qx")]);
        }
        for c in 'a'..='z' {
            titles.extend([format!("zorbq{c}x"), format!("zorbq{c}x")]);
        }
        let catalog: Vec<(String, String)> =
            titles.iter().enumerate().map(|(i, t)| (i.to_string(), t.clone())).collect();
        let refs: Vec<(&str, &str)> = catalog.iter().map(|(id, t)| (id.as_str(), t.as_str())).collect();
        catalog_of(&refs)
    }

    /// Each reading of "zorbqx" (its expansions among terms and among words, and the
    /// completions of "zor"), as (text, holders).
    fn readings(lexical: &LexicalIndex) -> [Vec<(String, u64)>; 3] {
        let reach = Reach::new(1, 1);
        let field = lexical.fields.words.unwrap();
        lexical
            .with_visible(Bm25Params::default(), |visible| {
                let pairs = |found: &[super::super::fuzzy::Expansion]| -> Vec<(String, u64)> {
                    found.iter().map(|e| (e.text.clone(), e.n)).collect()
                };
                Ok([
                    pairs(&visible.expansions(u64::MAX, "zorbqx", reach)?),
                    pairs(&visible.word_neighbours(field, "zorbqx", reach)?),
                    lexical.completions(field, "zor", visible)?.0,
                ])
            })
            .unwrap()
    }

    /// After live writes, a reading built on the segments' part kept before them is the one
    /// read afresh: a word the part left out (one holder in the segments, 50 words with two
    /// ahead of it) that live rows now hold five times over comes first with six, and a word
    /// only live rows hold is found. The segments' part outlives the writes.
    #[test]
    fn the_segments_part_kept_across_writes_reads_as_afresh() {
        let (_dir, lexical) = near_words();
        let before = readings(&lexical);
        assert!(before.iter().all(|r| r.len() == 50 && r.iter().all(|w| w.1 == 2)), "{before:?}");
        assert!(!before[0].iter().any(|w| w.0 == "zorkqx"));
        let mut live: Vec<_> = (0..5).map(|i| titled(&format!("live{i}"), "zorkqx")).collect();
        live.push(titled("new", "zorbqx zorbqyx"));
        lexical.add_live(live.iter().enumerate().map(|(i, item)| (200 + i as u32, item))).unwrap();
        let kept = lexical.expansions.lock().unwrap().segments.words.len();
        assert_eq!(kept, 1, "the segments' part outlives the write");
        let after = readings(&lexical);
        lexical.expansions.lock().unwrap().segments = SegmentParts::default();
        let afresh = readings(&lexical);
        assert_eq!(after, afresh);
        for reading in &after[..2] {
            assert_eq!(reading[0], ("zorkqx".to_string(), 6), "{reading:?}");
            assert!(!reading.iter().any(|w| w.0 == "zorbqx"), "the word typed is not its own expansion");
        }
        assert_eq!(after[2][0], ("zorkqx".to_string(), 6));
        assert!(after[1].contains(&("zorbqyx".to_string(), 3)), "a word the segments hold twice, and a live row once");
    }
}
