//! Rows BM25 no longer counts: items deleted, or replaced by a later put, while the server ran.
//!
//! The generation's tantivy index is immutable and the live rows' postings only grow, so a row
//! hidden since the build is still a document in one of them. Left in, it would count in every
//! collection statistic: N, a term's document count n, and a field's average length. Each save
//! of an item would then add a document holding its words, and its score would fall with every
//! save (seven saves of one item took its n for its own rare word from 1 to 8). BM25 reads its
//! statistics over the visible rows instead, as if the generation had been built from them:
//! a hidden row's postings are skipped, and its documents and tokens are taken out of N and
//! the fields' totals.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tantivy::index::SegmentId;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, DocSet, SegmentReader, Term};

use super::live::LiveRows;
use super::LexicalIndex;
use crate::error::{Error, Result};
use crate::item::Item;

/// Which writes a hidden set is as of: the live log's last delete and the last put applied.
/// Both only grow; [`LexicalIndex::hide`] takes a set only if it is at or above the one in
/// place in both ([`covers`]).
pub type HiddenVersion = (u64, u64);

/// Whether a set as of `newer` has every write one as of `older` has: at or above it in both
/// parts. Two versions can each be ahead in one part (one request read the log's deletes after
/// a delete, another its live rows after a put); neither covers the other, and neither set
/// should replace the other.
pub fn covers(newer: HiddenVersion, older: HiddenVersion) -> bool {
    newer.0 >= older.0 && newer.1 >= older.1
}

/// What BM25 leaves out of the index's rows, as the engine last said ([`LexicalIndex::hide`]).
#[derive(Default)]
pub(super) struct Hidden {
    /// The hidden rows, by item index (the engine's set, shared).
    rows: Arc<HashSet<u32>>,
    /// What `rows` is as of (`None` before the first set).
    version: Option<HiddenVersion>,
    /// The rows of `rows` in the order they were first hidden: while the set only grows (a
    /// put or a delete adds rows; only a fold or a failed write takes any away), a segment
    /// already searched looks up only the rows past what it has seen, not all of them again.
    added: Vec<u32>,
    /// Per generation row ever hidden, its tokens in each searched field as tantivy counted
    /// them when it indexed the row (kept when a row is shown again: its content does not
    /// change). A live row's are in its postings.
    tokens: HashMap<u32, Vec<u64>>,
    /// Rows whose item could not be read for their tokens: tried again at each new set.
    unread: HashSet<u32>,
    /// Per segment of the generation, the hidden rows' documents in it as of the first `.1`
    /// rows of `added`.
    segments: HashMap<SegmentId, (Arc<HiddenDocs>, usize)>,
    /// The hidden live rows' documents, as of the live documents' count `.0` (found again when
    /// either the set or the live rows change: both change only on writes).
    live: Option<(u32, Arc<HiddenDocs>)>,
}

/// The hidden rows one segment holds.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct HiddenDocs {
    /// Their documents, a bit each (by document id).
    docs: Vec<u64>,
    /// How many.
    pub count: u64,
    /// Per searched field, their tokens in it.
    pub tokens: Vec<u64>,
    /// Per searched field, how many of them hold it (a field norm above 0).
    pub holding: Vec<u64>,
    /// For the live rows' set, the hidden set it was found from ([`HiddenVersion`]): what
    /// answers depending on which live rows are visible are cached by (`super::fuzzy`). A set
    /// can shrink (a failed put) and grow again to the same count with other rows.
    pub version: Option<HiddenVersion>,
}

impl HiddenDocs {
    /// Whether `doc` is one of them: read for every posting while any row is hidden.
    #[inline]
    pub fn contains(&self, doc: DocId) -> bool {
        self.docs.get(doc as usize / 64).is_some_and(|word| word & (1 << (doc % 64)) != 0)
    }
}

/// How a segment's documents for some hidden rows are found: each row's `idx` term looked up
/// (an FST walk and a postings open), or each document's row read from the `idx` column and
/// looked up in the set. A segment is read whole when it has fewer than this many documents
/// per row sought, as when many rows are hidden at once after a restart. The ratio is an estimate of the two
/// costs (a lookup does far more work than a column read), not measured one against the other;
/// both ways give the same documents (a test holds them to it).
const DOCS_READ_PER_ROW_LOOKUP: usize = 32;

/// Which of the two ways finds a segment's hidden documents (a parameter so that tests can
/// hold them to the same answer).
#[derive(Clone, Copy)]
enum Find {
    /// The cheaper for the segment's size and the rows sought.
    Cheaper,
    #[cfg(test)]
    ByTerm,
    #[cfg(test)]
    ByColumn,
}

impl LexicalIndex {
    /// Makes BM25 read its statistics over the rows not in `rows` (item indexes: deleted, or
    /// replaced by a later put), and skip those rows' postings. `rows` is as of `version`: a
    /// set that is not newer than the one in place in both parts (a request that began before
    /// a write hands one in after the write's) changes nothing, so callers need not order
    /// their calls. `item_at` gives a generation
    /// row's item as it was indexed (for its token counts; a live row's are in its postings),
    /// asked once per row however often it is hidden, without the lock searches take; a
    /// row it cannot give is still skipped and counted out of N, its tokens not out of the
    /// fields' totals (logged once) until a later call reads it. O(rows) when `rows` holds the
    /// last set's rows, plus the work for the rows new to it; a set that drops a row makes
    /// every segment look again.
    ///
    /// # Errors
    /// A field's analyzer missing from the index; nothing changes then.
    pub fn hide(
        &self,
        rows: Arc<HashSet<u32>>,
        version: HiddenVersion,
        item_at: impl Fn(u32) -> Result<Item>,
    ) -> Result<()> {
        let built = self.built();
        loop {
            // What to read, decided under the lock that searches take; the rows' items read and
            // analysed without it (after a restart, thousands of rows), then the result put in.
            let (base, grows, new, retried, to_read, was_unread) = {
                let hidden = self.hidden.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // Only a newer set that covers the one in place goes in (a request made after
                // both of two writes has both).
                if hidden.version.is_some_and(|at| version == at || !covers(version, at)) {
                    return Ok(());
                }
                let grows = hidden.rows.len() <= rows.len() && hidden.rows.iter().all(|row| rows.contains(row));
                let new: Vec<u32> = rows.iter().copied().filter(|row| !grows || !hidden.rows.contains(row)).collect();
                // Rows whose item could not be read before are tried again; each row's tokens
                // are read before anything changes, so a failure leaves the last set's state
                // whole. A live row's tokens are in its postings; only the generation's are read.
                let retried: Vec<u32> = hidden.unread.iter().copied().filter(|row| rows.contains(row)).collect();
                let to_read: HashSet<u32> = new
                    .iter()
                    .chain(&retried)
                    .copied()
                    .filter(|&row| row < built && !hidden.tokens.contains_key(&row))
                    .collect();
                (Arc::clone(&hidden.rows), grows, new, retried, to_read, hidden.unread.clone())
            };
            let mut read = HashMap::new();
            let mut unread = Vec::new();
            for row in to_read {
                match item_at(row) {
                    Ok(item) => {
                        read.insert(row, self.tokens_in_fields(row, &item)?);
                    }
                    Err(e) => {
                        if !was_unread.contains(&row) {
                            tracing::warn!(row, error = %e, "a hidden row's tokens stay in BM25's field lengths");
                        }
                        unread.push(row);
                    }
                }
            }
            let mut hidden = self.hidden.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !Arc::ptr_eq(&hidden.rows, &base) {
                // Another set came in meanwhile: start again from it (or stop, if it is newer).
                continue;
            }
            // A row read at last: the segments counted it without its tokens, so they look again.
            let grows = grows && !retried.iter().any(|row| read.contains_key(row));
            hidden.unread.retain(|row| !read.contains_key(row));
            hidden.unread.extend(unread);
            hidden.tokens.extend(read);
            if grows {
                hidden.added.extend(new);
            } else {
                hidden.segments.clear();
                hidden.added = rows.iter().copied().collect();
            }
            hidden.rows = rows;
            hidden.version = Some(version);
            hidden.live = None;
            return Ok(());
        }
    }

    /// Per searched field, the tokens tantivy indexed for `item` (each value of a list field's,
    /// none past its longest token).
    fn tokens_in_fields(&self, idx: u32, item: &Item) -> Result<Vec<u64>> {
        Ok(self.analyse(idx, item, false)?.iter().map(|field| u64::from(field.tokens)).collect())
    }

    /// The hidden rows each of `segments` (the generation's, which hold the rows below
    /// `built`, its item count) holds, then those of `live` (rows from `built` on): `None` when
    /// no row is hidden. Each row is looked for only where it can be.
    ///
    /// # Errors
    /// A failing index read.
    pub(super) fn hidden_in(
        &self,
        segments: &[&SegmentReader],
        built: u32,
        live: &LiveRows,
    ) -> Result<Option<Vec<Arc<HiddenDocs>>>> {
        self.hidden_in_by(segments, built, live, Find::Cheaper)
    }

    fn hidden_in_by(
        &self,
        segments: &[&SegmentReader],
        built: u32,
        live: &LiveRows,
        find: Find,
    ) -> Result<Option<Vec<Arc<HiddenDocs>>>> {
        let mut guard = self.hidden.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let hidden = &mut *guard;
        if hidden.rows.is_empty() {
            return Ok(None);
        }
        hidden.segments.retain(|id, _| segments.iter().any(|s| s.segment_id() == *id));
        let mut out = Vec::with_capacity(segments.len() + 1);
        for segment in segments {
            let entry = hidden.segments.entry(segment.segment_id());
            let (docs, seen) = entry.or_insert_with(|| (Arc::new(self.no_hidden_docs(segment.max_doc())), 0));
            if *seen < hidden.added.len() {
                let rows: Vec<u32> = hidden.added[*seen..].iter().copied().filter(|&row| row < built).collect();
                if !rows.is_empty() {
                    self.find_hidden(segment, Arc::make_mut(docs), &rows, &hidden.tokens, find)?;
                }
                *seen = hidden.added.len();
            }
            out.push(Arc::clone(docs));
        }
        out.push(match &hidden.live {
            Some((docs, found)) if *docs == live.len() => Arc::clone(found),
            _ => {
                let mut found = self.hidden_live(&hidden.rows, built, live);
                found.version = hidden.version;
                let found = Arc::new(found);
                hidden.live = Some((live.len(), Arc::clone(&found)));
                found
            }
        });
        Ok(Some(out))
    }

    /// The documents of `live` that hold rows of `rows` (O(rows)).
    fn hidden_live(&self, rows: &HashSet<u32>, built: u32, live: &LiveRows) -> HiddenDocs {
        let mut found = self.no_hidden_docs(live.len());
        for doc in rows.iter().filter(|&&row| row >= built).filter_map(|&row| live.doc_of(row)) {
            found.docs[doc as usize / 64] |= 1 << (doc % 64);
            found.count += 1;
            for f in 0..found.tokens.len() {
                let tokens = live.tokens(doc, f);
                found.tokens[f] += u64::from(tokens);
                found.holding[f] += u64::from(tokens > 0);
            }
        }
        found
    }

    fn no_hidden_docs(&self, max_doc: u32) -> HiddenDocs {
        let fields = self.fields.searched.len();
        HiddenDocs {
            docs: vec![0; (max_doc as usize).div_ceil(64)],
            count: 0,
            tokens: vec![0; fields],
            holding: vec![0; fields],
            version: None,
        }
    }

    /// Adds to `found` the documents of `segment` that hold `rows` (rows it may hold, none in
    /// `found` yet).
    fn find_hidden(
        &self,
        segment: &SegmentReader,
        found: &mut HiddenDocs,
        rows: &[u32],
        tokens: &HashMap<u32, Vec<u64>>,
        find: Find,
    ) -> Result<()> {
        let norms = self
            .fields
            .searched
            .iter()
            .map(|s| segment.get_fieldnorms_reader(s.field))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let mut add = |row: u32, doc: DocId| {
            if doc >= segment.max_doc() || found.contains(doc) {
                return;
            }
            found.docs[doc as usize / 64] |= 1 << (doc % 64);
            found.count += 1;
            let tokens = tokens.get(&row).map_or(&[][..], Vec::as_slice);
            for (f, norms) in norms.iter().enumerate() {
                found.tokens[f] += tokens.get(f).copied().unwrap_or(0);
                found.holding[f] += u64::from(norms.fieldnorm_id(doc) > 0);
            }
        };
        let by_column = match find {
            Find::Cheaper => (segment.max_doc() as usize) < rows.len().saturating_mul(DOCS_READ_PER_ROW_LOOKUP),
            #[cfg(test)]
            Find::ByTerm => false,
            #[cfg(test)]
            Find::ByColumn => true,
        };
        if by_column {
            let sought: HashSet<u32> = rows.iter().copied().collect();
            let column = segment.fast_fields().u64(super::schema::IDX)?;
            for doc in 0..segment.max_doc() {
                let Some(row) = column.first(doc).and_then(|v| u32::try_from(v).ok()) else { continue };
                if sought.contains(&row) {
                    add(row, doc);
                }
            }
            return Ok(());
        }
        let by_idx = segment.inverted_index(self.fields.idx)?;
        for &row in rows {
            let term = Term::from_field_u64(self.fields.idx, u64::from(row));
            let postings = by_idx
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(|e| Error::io(format!("finding the document of row {row}"), e))?;
            let Some(postings) = postings else { continue };
            let doc = postings.doc();
            if doc != tantivy::TERMINATED {
                add(row, doc);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::lexical::{Bm25Params, FieldCombination, LexicalSettings, SearchField};

    fn item(id: &str, title: &str, text: &str, brand: Option<&str>) -> Item {
        let fields = brand.map(|b| serde_json::json!({ "brand": b })).unwrap_or(serde_json::json!({}));
        Item { id: id.into(), title: title.into(), text: text.into(), fields: serde_json::from_value(fields).unwrap() }
    }

    /// `items` built into `dir` and opened.
    pub(in crate::lexical) fn open(dir: &Path, settings: &LexicalSettings, items: &[(u32, Item)]) -> LexicalIndex {
        LexicalIndex::build(dir, items.iter().map(|(i, it)| (*i, it)), settings.clone()).unwrap();
        LexicalIndex::open(dir, settings.clone()).unwrap()
    }

    /// Scores by item, rounded to 1e-5 (the same statistics summed in another order).
    pub(in crate::lexical) fn scores(index: &LexicalIndex, query: &str, params: Bm25Params) -> Vec<(u32, i64)> {
        let mut scores: Vec<(u32, i64)> =
            index.score_all(query, params).unwrap().into_iter().map(|(i, s)| (i, (s * 1e5).round() as i64)).collect();
        scores.sort_unstable();
        scores
    }

    /// The hidden documents of every segment, found the way `find` says.
    fn hidden_docs(index: &LexicalIndex, find: Find) -> Vec<HiddenDocs> {
        let searcher = index.reader.searcher();
        let segments: Vec<&tantivy::SegmentReader> = searcher.segment_readers().iter().collect();
        let live = index.live.read().unwrap();
        let found = index.hidden_in_by(&segments, index.built(), &live, find).unwrap().unwrap_or_default();
        // The documents found, whichever set's version they were found as of.
        found.iter().map(|docs| HiddenDocs { version: None, ..(**docs).clone() }).collect()
    }

    /// A set that grows write by write, with live rows added between the sets (the
    /// generation's segment then looks up only the rows new to it), finds what one set given
    /// at once finds, by row lookups or by reading the segment whole; BM25 scores as
    /// a fresh build of the visible rows at every step. A row whose item cannot be read at
    /// first is counted with its tokens once it can be.
    #[test]
    fn a_growing_set_finds_what_the_whole_set_finds_either_way() {
        // Each set handed over is newer than the last.
        let mut at = (1u64..).map(|n| (0, n));
        let settings = LexicalSettings::default();
        let dir = tempfile::tempdir().unwrap();
        let words = ["tent", "stove", "lantern", "kettle", "anorak", "boots"];
        let item_of = |i: u32| {
            let word = words[i as usize % words.len()];
            item(&format!("i{i}"), &format!("{word} {i}"), &format!("A {word} for trails, number {i}."), None)
        };
        let rows: Vec<(u32, Item)> = (0..40).map(|i| (i, item_of(i))).collect();
        let index = open(dir.path(), &settings, &rows);
        let mut all = rows.clone();
        // Row 7's item cannot be read the first time it is asked for.
        let failed_once = std::cell::Cell::new(false);
        let mut hidden = HashSet::new();
        let steps = [vec![3], vec![41, 7], vec![0, 1, 2, 44, 50, 59], vec![20, 21, 22, 23, 24, 25, 26, 27, 58]];
        for (batch, step) in (0u32..).zip(steps) {
            let live: Vec<(u32, Item)> = (40 + batch * 5..45 + batch * 5).map(|i| (i, item_of(i))).collect();
            index.add_live(live.iter().map(|(i, it)| (*i, it))).unwrap();
            all.extend(live);
            let item_at = |row: u32| {
                if row == 7 && !failed_once.replace(true) {
                    return Err(Error::invalid("item", "not readable yet"));
                }
                Ok(all.iter().find(|(i, _)| *i == row).unwrap().1.clone())
            };
            // Live rows not written yet wait for them.
            hidden.extend(step.into_iter().filter(|&row| row < 45 + batch * 5));
            index.hide(Arc::new(hidden.clone()), at.next().unwrap(), item_at).unwrap();
            let grown = hidden_docs(&index, Find::Cheaper);
            assert_eq!(grown.iter().map(|d| d.count).sum::<u64>(), hidden.len() as u64);
            let visible: Vec<(u32, Item)> = all.iter().filter(|(i, _)| !hidden.contains(i)).cloned().collect();
            let fresh_dir = tempfile::tempdir().unwrap();
            let fresh = open(fresh_dir.path(), &settings, &visible);
            let agree = ["tent", "lantern trails", "number 23"]
                .map(|query| scores(&index, query, settings.bm25) == scores(&fresh, query, settings.bm25));
            if batch == 1 {
                // Row 7 could not be read: its tokens still count in the text's average length
                // (the next set, which only grows, reads it and makes the segments look again).
                assert!(agree.contains(&false), "row 7's tokens went uncounted");
                continue;
            }
            assert_eq!(agree, [true; 3], "step {batch}");
            // The same set given afresh (a set that drops a row starts again), found each way.
            for find in [Find::ByTerm, Find::ByColumn] {
                index.hide(Arc::new(HashSet::new()), at.next().unwrap(), item_at).unwrap();
                index.hide(Arc::new(hidden.clone()), at.next().unwrap(), item_at).unwrap();
                assert_eq!(hidden_docs(&index, find), grown, "step {batch}");
            }
        }
    }

    /// Items saved again and again, and deleted, live: BM25 scores what is visible exactly as
    /// a generation built from the visible rows scores it, under both field combinations and
    /// with a catalog field that only some items hold; and the explanation's N and n count
    /// the visible rows. Without hiding, each save lowered the item's own score.
    #[test]
    fn hidden_rows_count_in_no_statistic() {
        // Each set handed over is newer than the last.
        let mut at = (1u64..).map(|n| (0, n));
        let settings =
            LexicalSettings { search_fields: vec![SearchField::new("brand", 2.0)], ..LexicalSettings::default() };
        let built = [
            item("a", "Gorpcore anorak", "A gorpcore anorak for wet trails.", Some("Alpine")),
            item("b", "Rain jacket", "A light jacket for rain.", None),
            item("c", "Down jacket", "A warm jacket, packs small.", Some("Alpine Gorpcore")),
            item("d", "Trail shoes", "Shoes for wet trails and mud.", None),
        ];
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<(u32, Item)> = built.iter().cloned().enumerate().map(|(i, it)| (i as u32, it)).collect();
        let index = open(dir.path(), &settings, &rows);
        // "a" saved seven times (rows 4..=10, each replacing the one before), "c" deleted, and
        // a new item "e" written live (row 11).
        let mut all = rows.clone();
        for save in 0..7 {
            let text = format!("A gorpcore anorak for wet trails, revision {save}.");
            all.push((4 + save, item("a", "Gorpcore anorak", &text, Some("Alpine"))));
        }
        all.push((11, item("e", "Anorak", "A jacket for gorpcore fans.", Some("Alpine"))));
        for batch in [&all[4..6], &all[6..9], &all[9..]] {
            index.add_live(batch.iter().map(|(i, it)| (*i, it))).unwrap();
        }
        let hidden: HashSet<u32> = [0, 2, 4, 5, 6, 7, 8, 9].into_iter().collect();
        let item_at = |row: u32| Ok(all.iter().find(|(i, _)| *i == row).unwrap().1.clone());
        index.hide(Arc::new(hidden.clone()), at.next().unwrap(), item_at).unwrap();

        let visible: Vec<(u32, Item)> = all.iter().filter(|(i, _)| !hidden.contains(i)).cloned().collect();
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = open(fresh_dir.path(), &settings, &visible);
        for fields in [FieldCombination::Sum, FieldCombination::Bm25f] {
            let params = Bm25Params { fields, ..settings.bm25 };
            for query in ["gorpcore", "jacket anorak", "alpine wet trails", "revision 6"] {
                let got = scores(&index, query, params);
                assert_eq!(got, scores(&fresh, query, params), "{query} under {fields:?}");
                assert!(got.iter().all(|(i, _)| !hidden.contains(i)), "{query}: a hidden row scored: {got:?}");
            }
        }
        // Rows 10 and 11 of the four visible ones hold "gorpcore" (in the text; row 2's brand is
        // hidden).
        let explained = index.explain_with("gorpcore", 10, settings.bm25).unwrap().unwrap();
        let mut leaves = Vec::new();
        let mut stack = vec![&explained];
        while let Some(node) = stack.pop() {
            leaves.extend(node.children.iter().filter(|c| c.children.is_empty()).map(|c| (c.label.as_str(), c.value)));
            stack.extend(node.children.iter());
        }
        assert!(leaves.contains(&("N, total number of docs", 4.0)), "{leaves:?}");
        assert!(leaves.contains(&("n, number of docs containing this term", 2.0)), "{leaves:?}");

        // Shown again (a put that failed to apply leaves the set smaller): counted again.
        let fewer: HashSet<u32> = [4, 5, 6, 7, 8, 9].into_iter().collect();
        index.hide(Arc::new(fewer), at.next().unwrap(), item_at).unwrap();
        assert!(scores(&index, "gorpcore", settings.bm25).iter().any(|(i, _)| *i == 2));
        index.hide(Arc::new(HashSet::new()), at.next().unwrap(), item_at).unwrap();
        assert_eq!(scores(&index, "revision", settings.bm25).len(), 7, "every save scores again");
        // A set older than the one in place (from a request that began before the last write
        // and hands its set in after the write's) changes nothing.
        index.hide(Arc::new(hidden.clone()), (0, 1), item_at).unwrap();
        assert_eq!(scores(&index, "revision", settings.bm25).len(), 7, "an older set replaced a newer one");
        // Nor does one ahead in one part and behind in the other; one ahead in both does.
        index.hide(Arc::new(hidden.clone()), (1, 0), item_at).unwrap();
        assert_eq!(scores(&index, "revision", settings.bm25).len(), 7, "a set behind in one part went in");
        index.hide(Arc::new(hidden.clone()), (1, 100), item_at).unwrap();
        assert_eq!(scores(&index, "revision", settings.bm25).len(), 1, "a newer set was refused");
    }
}
