//! BM25 over items written live: postings of our own, in memory, beside the generation's
//! tantivy index (immutable on disk); `term_scores` reads both with statistics over both.
//!
//! Why not a tantivy index in memory (what this was until 2026-12-06): its writer has a 15 MB
//! minimum budget, which sizes a term table of 2^19 buckets that every commit allocates,
//! zeroes and walks, and each commit starts merges in the background. A put of one item paid
//! 4.4–4.6 ms for that commit on the 2-vCPU Xeon, more than the model's encode of the item
//! (docs/EVAL.md, "Live writes"). The live rows are few (until the next build folds them in)
//! and BM25 only reads their postings with frequencies, their field norms and each field's
//! token total, so a map from term to postings is all it needs.

use std::collections::{BTreeMap, HashMap};

use tantivy::fieldnorm::FieldNormReader;
use tantivy::tokenizer::{TokenStream, MAX_TOKEN_LEN};
use tantivy::DocId;

use super::LexicalIndex;
use crate::error::Result;
use crate::item::Item;

/// The live rows' postings, by document: a live row's document is its place in write order.
/// Analysed exactly as tantivy indexes a document of the generation's schema (the same
/// analyzer per field, tokens over [`MAX_TOKEN_LEN`] bytes left out, a list field's values
/// summed into one length, the length stored through tantivy's one-byte field-norm code),
/// so scores equal those of a generation built with the rows in it (tests hold them to it).
#[derive(Default)]
pub(super) struct LiveRows {
    /// Per document, its row (item index).
    rows: Vec<u32>,
    /// Per document and searched field (`doc * fields + f`), its tokens in the field.
    tokens: Vec<u32>,
    /// The same, as BM25 reads a length: through tantivy's one-byte field-norm code, as its
    /// reader gives it back (exact to 40 tokens, then one of 256 steps).
    norms: Vec<u32>,
    /// Per searched field, each term's postings: (document, frequency), documents ascending.
    /// Terms in order (as bytes), so that a typo's automaton walks them as it walks a term
    /// dictionary, skipping what it cannot reach ([`super::automaton::accepted_in`]).
    postings: Vec<BTreeMap<Vec<u8>, Vec<(DocId, u32)>>>,
    /// Per searched field, the tokens of every document in it.
    total_tokens: Vec<u64>,
    /// Per searched field, the documents holding at least one of its tokens.
    holding: Vec<u64>,
    /// The document of each row.
    doc_of: HashMap<u32, DocId>,
    /// Each word of the searched fields, unstemmed (`super::schema::Fields::words`), with the
    /// documents holding it, ascending: what a word's beginning is completed from
    /// (`super::prefix`), counting only the documents not hidden since. In order, as the
    /// terms are, so that a beginning is one range.
    words: BTreeMap<Vec<u8>, Vec<DocId>>,
}

/// One item's analysis in one searched field.
pub(super) struct FieldTerms {
    /// Tokens indexed (tantivy's field length before its one-byte code).
    pub tokens: u32,
    /// Each term and how often it occurs.
    pub terms: HashMap<String, u32>,
}

impl LiveRows {
    /// Documents written so far.
    pub fn len(&self) -> u32 {
        self.rows.len() as u32
    }

    fn fields(&self) -> usize {
        self.postings.len()
    }

    /// The row (item index) of `doc`.
    pub fn row(&self, doc: DocId) -> Option<u32> {
        self.rows.get(doc as usize).copied()
    }

    /// The document of `row`, if it was written live.
    pub fn doc_of(&self, row: u32) -> Option<DocId> {
        self.doc_of.get(&row).copied()
    }

    /// `doc`'s tokens in searched field `f` (`doc` below [`LiveRows::len`]).
    pub fn tokens(&self, doc: DocId, f: usize) -> u32 {
        self.tokens[doc as usize * self.fields() + f]
    }

    /// `doc`'s length in searched field `f` as BM25 reads it: what tantivy's field-norm reader
    /// would give back for it.
    pub fn norm(&self, doc: DocId, f: usize) -> u32 {
        self.norms[doc as usize * self.fields() + f]
    }

    /// Every document's tokens in searched field `f`.
    pub fn total_tokens(&self, f: usize) -> u64 {
        self.total_tokens.get(f).copied().unwrap_or(0)
    }

    /// The documents holding searched field `f`.
    pub fn holding(&self, f: usize) -> u64 {
        self.holding.get(f).copied().unwrap_or(0)
    }

    /// Each term of searched field `f` that `automaton` accepts, with how many rows hold it,
    /// in byte order.
    pub fn terms_within(&self, f: usize, automaton: &impl tantivy_fst::Automaton) -> Vec<(&str, usize)> {
        let Some(terms) = self.postings.get(f) else { return Vec::new() };
        super::automaton::accepted_in(terms, automaton).into_iter().map(|(term, p)| (term, p.len())).collect()
    }

    /// The postings of `term` in searched field `f`, documents ascending.
    pub fn postings(&self, f: usize, term: &str) -> &[(DocId, u32)] {
        self.postings.get(f).and_then(|terms| terms.get(term.as_bytes())).map_or(&[], Vec::as_slice)
    }

    /// The live documents holding `word` (unstemmed, folded), ascending.
    pub fn word(&self, word: &str) -> &[DocId] {
        self.words.get(word.as_bytes()).map_or(&[], Vec::as_slice)
    }

    /// Each word of the live rows (unstemmed) that `automaton` accepts, with the documents
    /// holding it, in byte order.
    pub fn words_within(&self, automaton: &impl tantivy_fst::Automaton) -> Vec<(&str, &[DocId])> {
        super::automaton::accepted_in(&self.words, automaton)
            .into_iter()
            .map(|(w, docs)| (w, docs.as_slice()))
            .collect()
    }

    /// Each word of the live rows (unstemmed) that begins with `beginning` (itself included),
    /// with the documents holding it, in byte order.
    pub fn words_beginning<'a>(&'a self, beginning: &'a str) -> impl Iterator<Item = (&'a str, &'a [DocId])> + 'a {
        use std::ops::Bound;
        self.words
            .range::<[u8], _>((Bound::Included(beginning.as_bytes()), Bound::Unbounded))
            .take_while(move |(word, _)| word.starts_with(beginning.as_bytes()))
            .filter_map(|(word, docs)| Some((std::str::from_utf8(word).ok()?, docs.as_slice())))
    }

    /// Appends `row`, analysed into `fields` (one per searched field), holding `words`
    /// (distinct).
    fn push(&mut self, row: u32, fields: Vec<FieldTerms>, words: Vec<String>) {
        let doc = self.len();
        for word in words {
            self.words.entry(word.into_bytes()).or_default().push(doc);
        }
        if self.postings.is_empty() {
            self.postings = (0..fields.len()).map(|_| BTreeMap::new()).collect();
            self.total_tokens = vec![0; fields.len()];
            self.holding = vec![0; fields.len()];
        }
        debug_assert!(self.postings.len() == fields.len(), "one analysis per searched field");
        for (f, field) in fields.into_iter().enumerate() {
            self.tokens.push(field.tokens);
            self.norms.push(FieldNormReader::id_to_fieldnorm(FieldNormReader::fieldnorm_to_id(field.tokens)));
            self.total_tokens[f] += u64::from(field.tokens);
            self.holding[f] += u64::from(field.tokens > 0);
            for (term, freq) in field.terms {
                self.postings[f].entry(term.into_bytes()).or_default().push((doc, freq));
            }
        }
        self.rows.push(row);
        self.doc_of.insert(row, doc);
    }
}

impl LexicalIndex {
    /// Indexes items written live (`(item index, item)`, indexes past the generation's) in
    /// memory with the generation's analyzers, and makes them searchable before returning.
    /// From then on BM25 scores stored and live items together, with collection statistics
    /// over both ([`LexicalIndex::score_all`]). Searches see all of one call's items or none.
    ///
    /// # Errors
    /// A searched field whose analyzer the index lacks; nothing is added then.
    pub fn add_live<'a>(&self, items: impl IntoIterator<Item = (u32, &'a Item)>) -> Result<()> {
        let start = std::time::Instant::now();
        // Analysed before the lock, which searches wait on.
        let analysed = items
            .into_iter()
            .map(|(idx, item)| Ok((idx, self.analyse(idx, item, true)?, self.words_of(item))))
            .collect::<Result<Vec<_>>>()?;
        let analysed_in = start.elapsed();
        let mut live = self.live.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = analysed.len();
        for (idx, fields, words) in analysed {
            live.push(idx, fields, words);
        }
        tracing::debug!(
            items = count,
            analyse_ms = analysed_in.as_secs_f64() * 1e3,
            add_ms = (start.elapsed() - analysed_in).as_secs_f64() * 1e3,
            "live BM25 add"
        );
        Ok(())
    }

    /// `item` (at index `idx`) analysed as tantivy indexes it: per searched field, every value
    /// through the field's own analyzer, tokens longer than [`MAX_TOKEN_LEN`] bytes left out
    /// (tantivy drops them too; the shipped analyzers cut words long before that), counted,
    /// and with `terms` counted per term as well.
    ///
    /// # Errors
    /// A searched field whose analyzer the index lacks.
    pub(super) fn analyse(&self, idx: u32, item: &Item, terms: bool) -> Result<Vec<FieldTerms>> {
        let doc = super::schema::document(&self.fields, idx, item);
        let mut fields = Vec::with_capacity(self.fields.searched.len());
        for searched in &self.fields.searched {
            let mut analyzer = self.index.tokenizer_for_field(searched.field)?;
            let mut field = FieldTerms { tokens: 0, terms: HashMap::new() };
            for value in doc.get_all(searched.field) {
                let Some(text) = tantivy::schema::Value::as_str(&value) else { continue };
                let mut stream = analyzer.token_stream(text);
                while stream.advance() {
                    let token = &stream.token().text;
                    if token.len() > MAX_TOKEN_LEN {
                        continue;
                    }
                    field.tokens += 1;
                    if !terms {
                        continue;
                    }
                    match field.terms.get_mut(token.as_str()) {
                        Some(count) => *count += 1,
                        None => {
                            field.terms.insert(token.clone(), 1);
                        }
                    }
                }
            }
            fields.push(field);
        }
        Ok(fields)
    }
}

impl LexicalIndex {
    /// The distinct words of `item`'s searched fields as [`super::schema::Fields::words`]
    /// holds them (through the analyzer read when the index was opened); none for a
    /// generation without that field.
    fn words_of(&self, item: &Item) -> Vec<String> {
        let Some(mut analyzer) = self.words_analyzer.clone() else { return Vec::new() };
        let mut words = std::collections::HashSet::new();
        for text in super::schema::texts(&self.fields, item) {
            let mut stream = analyzer.token_stream(&text);
            while stream.advance() {
                let token = &stream.token().text;
                if token.len() <= MAX_TOKEN_LEN && !words.contains(token.as_str()) {
                    words.insert(token.clone());
                }
            }
        }
        words.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexical::hidden::tests::{open, scores};
    use crate::lexical::{Bm25Params, FieldCombination, LexicalSettings, SearchField};

    fn item(id: &str, title: &str, text: &str, fields: serde_json::Value) -> Item {
        Item { id: id.into(), title: title.into(), text: text.into(), fields: serde_json::from_value(fields).unwrap() }
    }

    /// Items written live score, and explain, exactly as a generation built with them in it:
    /// texts past 40 tokens (where tantivy's stored length turns lossy), a list field's values
    /// summed into one length, a number indexed as its text, a field most items lack, a value
    /// of stop words only, a list of one empty string, a word longer than tantivy takes (the
    /// analysis cuts it into pieces, each counted), repeated words, joined words and CJK text
    /// (their analyzers' own terms), an item with no text; written one at a time and several at
    /// once; with every field analysed alike under both field combinations, and with the title
    /// and a tag field analysed apart (a query term then looked up in some fields only) under
    /// `sum`. A row hidden before it is written is left out once it is.
    #[test]
    fn live_rows_score_as_a_build_holding_them() {
        // Each set handed over is newer than the last.
        let mut at = (1u64..).map(|n| (0, n));
        use crate::lexical::{FieldAnalysis, Language};
        let alike = LexicalSettings {
            search_fields: vec![SearchField::new("tags", 1.5), SearchField::new("model", 1.0)],
            ..LexicalSettings::default()
        };
        let names = FieldAnalysis { language: Language::English, stemming: false, stop_words: false };
        let mut tags = SearchField::new("tags", 1.5);
        tags.analysis = Some(names);
        let apart = LexicalSettings {
            stop_words: true,
            title_analysis: Some(names),
            search_fields: vec![tags, SearchField::new("model", 1.0)],
            bm25: Bm25Params { fields: FieldCombination::Sum, ..Bm25Params::default() },
            ..LexicalSettings::default()
        };
        let long: String = (0..300).map(|i| format!("trail{} ", i % 37)).collect();
        let huge = "x".repeat(MAX_TOKEN_LEN + 10);
        let built: Vec<(u32, Item)> = vec![
            (0, item("a", "Trail tent", "A tent for the trail, trail tested.", serde_json::json!({"tags": ["tent"]}))),
            (1, item("b", "Stove", &long, serde_json::json!({"model": 40}))),
            (2, item("c", "Mug", "Enamel mug 轻量级帐篷", serde_json::json!({}))),
        ];
        let live: Vec<(u32, Item)> = vec![
            (
                3,
                item(
                    "d",
                    "Trail shoes",
                    &format!("{long} shoes shoes"),
                    serde_json::json!({"tags": ["trail", "shoe"]}),
                ),
            ),
            (4, item("e", "Lamp", &format!("A lamp {huge} for the trail"), serde_json::json!({"model": 7.5}))),
            (5, item("f", "帐篷", "", serde_json::json!({"tags": [""]}))),
            (
                6,
                item(
                    "g",
                    "Wi-Fi e-mail tents",
                    "tent tent tent",
                    serde_json::json!({"tags": ["tents", "ultra-light"]}),
                ),
            ),
            (7, item("h", "The", "of the and", serde_json::json!({"tags": ["the", "of"]}))),
            (8, item("i", "Trail tent", "Tents for the trail.", serde_json::json!({"tags": ["tent"]}))),
        ];
        let queries =
            ["trail", "trail7 shoes", "tent", "tents", "帐篷", "7.5", "40", "wifi email", "ultralight", "the mug"];
        for settings in [alike, apart] {
            let dir = tempfile::tempdir().unwrap();
            let index = open(dir.path(), &settings, &built);
            // Row 8 is hidden before it is written (a set handed over while its put applies).
            let hidden: std::collections::HashSet<u32> = [1, 8].into_iter().collect();
            let item_at = |row: u32| Ok(built.iter().chain(&live).find(|(i, _)| *i == row).unwrap().1.clone());
            index.hide(std::sync::Arc::new(hidden.clone()), at.next().unwrap(), item_at).unwrap();
            // A search before the rows are written finds what is hidden among none of them.
            assert!(!scores(&index, "tent", settings.bm25).is_empty());
            index.add_live([(3, &live[0].1)]).unwrap();
            index.add_live(live[1..].iter().map(|(i, it)| (*i, it))).unwrap();
            let visible: Vec<(u32, Item)> =
                built.iter().chain(&live).filter(|(i, _)| !hidden.contains(i)).cloned().collect();
            let fresh_dir = tempfile::tempdir().unwrap();
            let fresh = open(fresh_dir.path(), &settings, &visible);
            let combinations: &[FieldCombination] = if settings.title_analysis.is_some() {
                &[FieldCombination::Sum]
            } else {
                &[FieldCombination::Sum, FieldCombination::Bm25f]
            };
            for &fields in combinations {
                let params = Bm25Params { fields, ..settings.bm25 };
                for query in queries {
                    let got = scores(&index, query, params);
                    assert_eq!(got, scores(&fresh, query, params), "{query} under {fields:?}");
                    for &(row, _) in &got {
                        let explained = |index: &LexicalIndex| index.explain_with(query, row, params).unwrap().unwrap();
                        let (live, fresh) = (explained(&index), explained(&fresh));
                        assert_eq!(format!("{live:?}"), format!("{fresh:?}"), "{query} {row}");
                    }
                }
                let matched = queries.iter().filter(|q| !scores(&index, q, params).is_empty()).count();
                assert!(matched >= queries.len() - 1, "{matched} of the queries match under {fields:?}");
            }
        }
    }
}
