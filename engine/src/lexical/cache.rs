//! Readings of query words kept between searches: a word's typo expansions
//! (`super::fuzzy`), its neighbours among the catalog's words (`super::typed`), a beginning's
//! completions (`super::prefix`) and how an item writes a word (`super::corrections`).
//!
//! The first three sum what the generation's segments hold and what the live rows hold. The
//! segments never change within a generation (a generation has its own index and so its own
//! cache), so their part is kept across live writes ([`SegmentParts`]); the whole reading
//! is kept while the live rows are those counted, and a write (which adds a row) starts it
//! over. A reading after a write then adds the live rows to the segments' part kept, instead of
//! walking the term dictionaries again (most of a typo's cost, and under a stream of writes,
//! every search's): the live rows' terms or words within reach, each counted with its
//! segments' count, from the part or, where the part left it out, by a lookup of the term.
//! How an item writes a word reads the items themselves, and is read again after a write.
//!
//! A segments' part keeps the first [`MAX_EXPANSIONS`](super::fuzzy::MAX_EXPANSIONS) in the
//! reading's order (for typos the fewest edits, then the most common, then the text; for
//! completions the most common, then the text): counts only grow with live rows, so a term
//! outside them is outranked by all of them unless the live rows hold it, and such a term is
//! counted again in full.

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
    /// The live rows the maps below were read with (all but `segments`, which reads none).
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
    /// A word's expansions among the index's terms, each with the items holding it per
    /// searched field (the fields' order, 0 for a field not looked up), to which the live
    /// rows' holders are added before the most of a field is taken.
    pub words: HashMap<(String, u64, Reach), Arc<Vec<(Expansion, Vec<u64>)>>>,
    /// A beginning's completions among the segments' words and the segments' holders of the
    /// beginning as typed.
    pub beginnings: HashMap<String, Arc<Completions>>,
    /// A word's neighbours among the segments' words (the words field).
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
        // Every `Visible` holds the live rows' read lock, so all those reading the cache at
        // once count the same rows: one that counts others starts it over.
        let live_rows = self.live.len();
        let fresh = |cache: &mut ExpansionCache| {
            if cache.live_rows != live_rows {
                let segments = std::mem::take(&mut cache.segments);
                *cache = ExpansionCache { live_rows, segments, ..ExpansionCache::default() };
            }
            true
        };
        cached_in(self.cache, fresh, map, key, compute)
    }

    /// What `map` of the [`SegmentParts`] holds for `key`, else `compute`'s answer, kept for
    /// the generation's life (at most [`CACHED_WORDS`] keys per map).
    pub(super) fn segments_cached<K: std::hash::Hash + Eq, V>(
        &self,
        map: impl Fn(&mut SegmentParts) -> &mut HashMap<K, Arc<V>>,
        key: K,
        compute: impl FnOnce() -> Result<V>,
    ) -> Result<Arc<V>> {
        cached_in(self.cache, |_| true, |cache| map(&mut cache.segments), key, compute)
    }
}

impl super::LexicalIndex {
    /// What the `written` map holds for `key`, else `compute`'s answer, kept while the cache
    /// is of `live_rows`, the live rows `key` was read with: the items are read after the live
    /// rows' lock is let go (`super::corrections`), and a write meanwhile starts the map over.
    pub(super) fn written_cached(
        &self,
        live_rows: u32,
        key: (String, Option<HiddenVersion>),
        compute: impl FnOnce() -> Result<Option<String>>,
    ) -> Result<Arc<Option<String>>> {
        let of_these_rows = |cache: &mut ExpansionCache| cache.live_rows == live_rows;
        cached_in(&self.expansions, of_these_rows, |cache| &mut cache.written, key, compute)
    }
}

/// What `map` of `cache` holds for `key` where `valid` (which may start the cache over), else
/// `compute`'s answer (the lock let go meanwhile), kept where `valid` still holds.
fn cached_in<K: std::hash::Hash + Eq, V>(
    cache: &std::sync::Mutex<ExpansionCache>,
    valid: impl Fn(&mut ExpansionCache) -> bool,
    map: impl Fn(&mut ExpansionCache) -> &mut HashMap<K, Arc<V>>,
    key: K,
    compute: impl FnOnce() -> Result<V>,
) -> Result<Arc<V>> {
    let lock = || cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    {
        let mut cache = lock();
        if valid(&mut cache) {
            if let Some(found) = map(&mut cache).get(&key) {
                return Ok(Arc::clone(found));
            }
        }
    }
    let found = Arc::new(compute()?);
    let mut cache = lock();
    if valid(&mut cache) {
        keep(map(&mut cache), key, &found);
    }
    Ok(found)
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
    use super::*;
    use crate::item::Item;
    use crate::lexical::{Bm25Params, LexicalIndex, LexicalSettings};

    fn item(id: String, title: &str, text: &str) -> Item {
        Item { id, title: title.into(), text: text.into(), fields: Default::default() }
    }

    /// 76 words one edit from "zorbqx" (ending in "x", so stems are the words): in titles,
    /// "zorb?x" and "zorbq?x" held by two items each, "zor?qx" by one; "zormqx" in two texts
    /// besides and "zorkqx" in one. Each reading's segments' part keeps 50 of the 52 held by two: "zorbzx" and
    /// "zormqx" are left out.
    fn near_words() -> Vec<Item> {
        let letters = || ('a'..='z').filter(|&c| c != 'q');
        let mut titles = Vec::new();
        for c in letters() {
            titles.extend([format!("zorb{c}x"), format!("zorb{c}x"), format!("zor{c}qx")]);
        }
        for c in 'a'..='z' {
            titles.extend([format!("zorbq{c}x"), format!("zorbq{c}x")]);
        }
        let mut items: Vec<Item> = titles.iter().enumerate().map(|(i, t)| item(i.to_string(), t, "")).collect();
        items.extend((0..2).map(|i| item(format!("text{i}"), "", "zormqx")));
        items.push(item("text2".into(), "", "zorkqx"));
        items
    }

    fn index_of(items: &[Item]) -> (tempfile::TempDir, LexicalIndex) {
        let dir = tempfile::tempdir().unwrap();
        let settings = LexicalSettings::default();
        LexicalIndex::build(dir.path(), items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings.clone())
            .unwrap();
        let lexical = LexicalIndex::open(dir.path(), settings).unwrap();
        (dir, lexical)
    }

    /// Each reading of "zorbqx" (its expansions among terms and among words, and the
    /// completions of "zor"), as (text, holders).
    fn readings(lexical: &LexicalIndex) -> [Vec<(String, u64)>; 3] {
        let reach = super::super::automaton::Reach::new(1, 1);
        let field = lexical.fields.words.unwrap();
        lexical
            .with_visible(Bm25Params::default(), |visible| {
                let pairs = |found: &[Expansion]| -> Vec<(String, u64)> {
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

    /// After live writes, a reading built on the segments' part kept from before them is the
    /// one a generation holding the same items as built rows gives: a word the parts left out
    /// that live texts now hold five times comes first (among terms, its title's one holder
    /// and the texts' six are fields apart: the most of a field, not the sum, and the
    /// segments' text counted); another gains a title. The segments' part outlives the writes.
    #[test]
    fn the_segments_part_kept_across_writes_reads_as_a_build_would() {
        let base = near_words();
        let (_dir, lexical) = index_of(&base);
        let before = readings(&lexical);
        assert!(before.iter().all(|r| r.len() == 50) && before[0].iter().all(|w| w.1 == 2), "{before:?}");
        assert!(!before[0].iter().any(|w| w.0 == "zormqx"), "two in one field, the part's 51st: {:?}", before[0]);
        assert_eq!(before[1][0], ("zormqx".to_string(), 3), "the words field is one");
        assert!(!before.iter().flatten().any(|w| w.0 == "zorkqx"));
        let mut live: Vec<Item> = (0..5).map(|i| item(format!("live{i}"), "", "zorkqx")).collect();
        live.push(item("new".into(), "zorbqx zorbqyx zormqx", ""));
        lexical.add_live(live.iter().enumerate().map(|(i, it)| ((base.len() + i) as u32, it))).unwrap();
        assert_eq!(lexical.expansions.lock().unwrap().segments.words.len(), 1, "the segments' part outlives the write");
        let after = readings(&lexical);
        let (_built_dir, built) = index_of(&[base, live].concat());
        assert_eq!(after, readings(&built), "as a build holding the live items reads");
        *lexical.expansions.lock().unwrap() = ExpansionCache::default();
        assert_eq!(after, readings(&lexical), "as read afresh");
        assert_eq!(after[0][0], ("zorkqx".to_string(), 6), "the most of a field: {:?}", after[0]);
        assert_eq!(after[1][0], ("zorkqx".to_string(), 7), "{:?}", after[1]);
        assert_eq!(after[2][..2], [("zorkqx".to_string(), 7), ("zormqx".to_string(), 4)]);
        assert!(after[1].contains(&("zorbqyx".to_string(), 3)), "a word two rows hold, and a live row");
        assert!(!after[..2].iter().flatten().any(|w| w.0 == "zorbqx"), "the word typed is not its own expansion");
    }
}
