//! Typos compared as typed: a query word no visible item holds, folded but not stemmed, looked
//! up among the catalog's words (the schema's `words` field, `super::schema::Fields::words`,
//! and the live rows' words) within its edits, each word found then read as its stems by
//! `super::fuzzy`. A typo can change how a word stems ("hikng" stems as itself, two edits from
//! "hike", one letter from "hiking"), which comparing stems alone missed.

use std::collections::HashMap;
use std::sync::Arc;

use super::automaton::{Reach, TypoAutomaton};
use super::fuzzy::{ranked, Expansion, Visible};
use crate::error::{Error, Result};

impl Visible<'_> {
    /// The catalog's words (the words field: folded, not stemmed) within `reach` of `typed`,
    /// ordered and counted as [`Visible::expansions`] orders terms; `typed` itself is not
    /// among them. A segment counts a word by its document frequency (rows hidden since the
    /// build included, as for terms); a live row counts while it is visible.
    pub(super) fn word_neighbours(
        &self,
        field: tantivy::schema::Field,
        typed: &str,
        reach: Reach,
    ) -> Result<Arc<Vec<Expansion>>> {
        let key = (typed.to_string(), reach, self.hidden_live_version());
        self.cached(
            |cache| &mut cache.typed_words,
            key,
            || {
                let key = (typed.to_string(), reach);
                let segments = self.segments_cached(
                    |parts| &mut parts.typed_words,
                    key,
                    || self.segment_words(field, typed, reach),
                )?;
                let mut found: HashMap<String, u64> = segments.iter().map(|e| (e.text.clone(), e.n)).collect();
                if self.live.len() > 0 {
                    let automaton = TypoAutomaton::new(typed, reach)?;
                    let hidden = self.hidden(self.segments.len());
                    for (word, docs) in self.live.words_within(&automaton) {
                        if word != typed {
                            let shown = docs.iter().filter(|&&d| hidden.is_none_or(|h| !h.contains(d))).count();
                            // A word the segments' part left out is counted in full.
                            let n = match found.get(word) {
                                Some(&n) => n,
                                None => self.segments_doc_freq(field, "words", word)?,
                            };
                            found.insert(word.to_string(), n + shown as u64);
                        }
                    }
                }
                Ok(ranked(typed, found.into_iter().filter(|w| w.1 > 0), reach))
            },
        )
    }

    /// The words of the generation's segments within `reach` of `typed`, each counted by its
    /// document frequency, in [`ranked`]'s order and number; `typed` itself is not among them.
    ///
    /// # Errors
    /// A failing read of the words' term dictionary.
    fn segment_words(&self, field: tantivy::schema::Field, typed: &str, reach: Reach) -> Result<Vec<Expansion>> {
        use tantivy::termdict::TermStreamer;
        let mut found: HashMap<String, u64> = HashMap::new();
        let automaton = TypoAutomaton::new(typed, reach)?;
        for segment in self.segments {
            let inverted = segment.inverted_index(field)?;
            let mut stream: TermStreamer<'_, _> = inverted
                .terms()
                .search(&automaton)
                .into_stream()
                .map_err(|e| Error::io("reading the index's words", e))?;
            while stream.advance() {
                let Ok(word) = std::str::from_utf8(stream.key()) else { continue };
                *found.entry(word.to_string()).or_default() += u64::from(stream.value().doc_freq);
            }
        }
        found.remove(typed);
        Ok(ranked(typed, found.into_iter().filter(|w| w.1 > 0), reach))
    }
}

impl Visible<'_> {
    /// Up to `most` visible items (neither deleted nor replaced since the build) holding
    /// `word` in the words field `field`: their item indexes, the generation's rows first,
    /// then the live rows'; none if no visible item holds it.
    ///
    /// # Errors
    /// A failing read of the words' postings or of the `idx` column.
    pub(super) fn holders_of_word(&self, field: tantivy::schema::Field, word: &str, most: usize) -> Result<Vec<u32>> {
        use tantivy::DocSet;
        let key = tantivy::Term::from_field_text(field, word);
        let mut rows = Vec::new();
        for (s, segment) in self.segments.iter().enumerate() {
            let read = |e| Error::io(format!("reading the word {word}"), e);
            let inverted = segment.inverted_index(field)?;
            let Some(mut postings) =
                inverted.read_postings(&key, tantivy::schema::IndexRecordOption::Basic).map_err(read)?
            else {
                continue;
            };
            let (hidden, column) = (self.hidden(s), segment.fast_fields().u64(super::schema::IDX)?);
            let mut doc = postings.doc();
            while doc != tantivy::TERMINATED && rows.len() < most {
                if hidden.is_none_or(|h| !h.contains(doc)) {
                    rows.extend(column.first(doc).and_then(|row| u32::try_from(row).ok()));
                }
                doc = postings.advance();
            }
        }
        let hidden = self.hidden(self.segments.len());
        let live = self.live.word(word).iter().filter(|&&doc| hidden.is_none_or(|h| !h.contains(doc)));
        rows.extend(live.filter_map(|&doc| self.live.row(doc)).take(most.saturating_sub(rows.len())));
        Ok(rows)
    }
}

impl super::LexicalIndex {
    /// `word` (as the words field holds it: folded) as `item` writes it, lower-cased: the
    /// first of its searched texts' words that folds to it ("randonnée" for "randonnee"),
    /// read up to that word; none if it writes none whole, or none that lower-cases to as
    /// many characters, unchanged by NFKC ("İ" lower-cases to two; "ﬁ" and full-width
    /// letters are not the word's letters). A whole word is the only token at its bytes: a
    /// part of a word joined by an apostrophe or a period ("women's", "womenʼs"), or a run
    /// of letters beside digits ("iphone" of "iPhone15"), carries the whole word's bytes.
    pub(super) fn written(&self, item: &crate::item::Item, word: &str) -> Option<String> {
        use tantivy::tokenizer::TokenStream;
        use unicode_normalization::UnicodeNormalization;
        let mut analyzer = self.words_analyzer.clone()?;
        // The word's text, if `group` (the tokens at one span, consecutive) is it alone.
        let whole = |text: &str, group: &[tantivy::tokenizer::Token]| -> Option<String> {
            let first = group.first()?;
            let one_place = group.iter().all(|t| t.position == first.position);
            if !one_place || !group.iter().any(|t| t.text == word) {
                return None;
            }
            let written = text.get(first.offset_from..first.offset_to)?;
            let lower = written.to_lowercase();
            let plain = lower.chars().count() == written.chars().count() && lower.nfkc().eq(lower.chars());
            plain.then_some(lower)
        };
        for text in super::schema::texts(&self.fields, item) {
            let mut stream = analyzer.token_stream(&text);
            let mut group: Vec<tantivy::tokenizer::Token> = Vec::new();
            while stream.advance() {
                let token = stream.token();
                let same_bytes =
                    group.first().is_some_and(|g| (g.offset_from, g.offset_to) == (token.offset_from, token.offset_to));
                if !same_bytes {
                    if let Some(found) = whole(&text, &group) {
                        return Some(found);
                    }
                    group.clear();
                }
                group.push(token.clone());
            }
            if let Some(found) = whole(&text, &group) {
                return Some(found);
            }
        }
        None
    }

    /// The words analysis of `word` (one unspaced word): its tokens over all of its bytes,
    /// and the places (distinct positions, in order) they stand at: one for a plain word,
    /// more where the analysis cuts it into parts that all carry its bytes ("hikng's" is
    /// "hikng" then "hikngs"; "hikng2" is "hikng2", "hikng" and "2").
    pub(super) fn whole_word(&self, word: &str) -> (Vec<tantivy::tokenizer::Token>, Vec<usize>) {
        let whole: Vec<tantivy::tokenizer::Token> =
            self.word_tokens(word).into_iter().filter(|t| (t.offset_from, t.offset_to) == (0, word.len())).collect();
        let mut places: Vec<usize> = whole.iter().map(|t| t.position).collect();
        places.dedup();
        (whole, places)
    }

    /// `text`'s tokens as the words field holds words (folded, not stemmed); none in a
    /// generation that keeps no words.
    pub(super) fn word_tokens(&self, text: &str) -> Vec<tantivy::tokenizer::Token> {
        use tantivy::tokenizer::TokenStream;
        let Some(mut analyzer) = self.words_analyzer.clone() else { return Vec::new() };
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().clone());
        }
        tokens
    }

    /// The query's word at `span` as the words field holds words (folded, not stemmed): the
    /// analyzer's token over all of its bytes; where the analysis cuts the word into parts
    /// that all carry its bytes (a word joined by an apostrophe or a period, "hikng's",
    /// "hikng.boots": parts, then the parts written together), the token at `part`'s place
    /// among those the query term's analysis found there, since both analyses cut a word
    /// alike; if the counts differ, the longest token, the first if
    /// several; none if no token spans the word (a word the analysis cuts into parts with
    /// their own bytes, "t-shrit", is looked up by each part's own span).
    pub(super) fn typed_word(&self, text: &str, span: (usize, usize), part: Part) -> Option<String> {
        let (whole, places) = self.whole_word(text.get(span.0..span.1)?);
        let at = (places.len() == part.of).then(|| places[part.nth]);
        // The first of the longest.
        whole.into_iter().filter(|t| at.is_none_or(|at| t.position == at)).fold(None, |best: Option<String>, t| {
            match best {
                Some(best) if best.len() >= t.text.len() => Some(best),
                _ => Some(t.text),
            }
        })
    }
}

/// Which of a word's places (distinct positions at its bytes) a query term is at: the
/// `nth` of `of`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Part {
    pub nth: usize,
    pub of: usize,
}

#[cfg(test)]
mod tests {
    use crate::lexical::{Bm25Params, LexicalIndex};
    use std::sync::Arc;

    /// A typo that changes how a word stems is measured on the word as typed: "hikng" is one
    /// letter from "hiking" but two from its stem "hike", and "sleepng" two from "sleep", so
    /// read by stems alone (a generation built before it kept its words) neither found
    /// anything. Words written live are looked up too.
    #[test]
    fn a_typo_that_changes_the_stem_is_read_from_the_word_typed() {
        let titles = [("bag", "Sleeping bag"), ("boots", "Hiking boots"), ("mug", "Enamel mug")];
        let (_dir, mut lexical) = super::super::analyzers::tests::catalog_of(&titles);
        let ids = |lexical: &LexicalIndex, query: &str| -> Vec<u32> {
            lexical.search(query, 3, None).unwrap().iter().map(|h| h.0).collect()
        };
        assert_eq!(ids(&lexical, "hikng"), [1]);
        assert_eq!(ids(&lexical, "sleepng bag").first(), Some(&0));
        let score = |lexical: &LexicalIndex, query: &str| lexical.score_all(query, Bm25Params::default()).unwrap();
        let (typed, meant) = (score(&lexical, "hikng")[0].1, score(&lexical, "hiking")[0].1);
        assert!((typed - 0.8 * meant).abs() < 1e-5, "1 - 1/5 of the word meant: {typed} against {meant}");
        let tree = lexical.explain_with("hikng", 1, Bm25Params::default()).unwrap().unwrap();
        assert_eq!(tree.children[0].label, "hike (for \"hikng\", read as \"hiking\", 1 edit away), product of");
        let poles = super::super::analyzers::tests::titled("poles", "Trekking poles");
        lexical.add_live([(3, &poles)]).unwrap();
        assert_eq!(ids(&lexical, "trekkng"), [3], "a live item's words");
        lexical.fields.words = None;
        assert!(ids(&lexical, "hikng").is_empty(), "by stems alone, two edits from \"hike\"");
        assert_eq!(ids(&lexical, "sleping"), [0], "a typo one edit from the stem is still read by stems");
    }

    /// The explanation names the catalog word whose edits and boost it shows, the nearest
    /// reading's, which need not be the word a search reports (the review's cases,
    /// 2026-12-07): "bakry" reaches "bakeri" as a stem ("bakri", a letter short) and through
    /// "bakery" equally near, where naming "bakery" beside "bakri" said one edit of two;
    /// "hikingz" reaches "hike" through "hiking" (boost 1 − 1/6) and the rarer "hikings"
    /// (1 − 1/7, the larger, kept), where the label named the more common word beside the
    /// other's boost.
    #[test]
    fn an_explanation_names_the_word_its_figures_are_of() {
        let titles = [("bakery", "Bakery"), ("b1", "Hiking boots"), ("b2", "Hiking boots"), ("b3", "Hikings")];
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&titles);
        let term = |query: &str, item: u32| {
            let tree = lexical.explain_with(query, item, Bm25Params::default()).unwrap().unwrap();
            tree.children[0].clone()
        };
        assert_eq!(term("bakry", 0).label, "bakeri (for \"bakry\", read as \"bakery\", 1 edit away), product of");
        let hike = term("hikingz", 1);
        assert_eq!(hike.label, "hike (for \"hikingz\", read as \"hikings\", 1 edit away), product of");
        let boost = hike.children.iter().find(|c| c.label.starts_with("fuzzy boost")).map(|c| c.value);
        assert_eq!(boost, Some(f64::from(1.0_f32 - 1.0 / 7.0)));
    }

    /// A word joined by an apostrophe or a period is cut into parts that all carry its bytes;
    /// each part is compared as typed by its own letters, not as the parts written together
    /// ("hikngs", two edits from "hiking", for every part), so "hikng's" finds the hiking
    /// boots.
    #[test]
    fn a_part_of_a_word_joined_by_an_apostrophe_or_a_period_is_read_as_typed() {
        let titles = [("bag", "Sleeping bag"), ("boots", "Hiking boots"), ("mug", "Enamel mug")];
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&titles);
        let ids = |query: &str| -> Vec<u32> { lexical.search(query, 3, None).unwrap().iter().map(|h| h.0).collect() };
        assert_eq!(ids("hikng's"), [1]);
        assert_eq!(ids("hikng.boots"), [1]);
        assert_eq!(ids("enamle mug's").first(), Some(&2));
        let tree = lexical.explain_with("hikng's", 1, Bm25Params::default()).unwrap().unwrap();
        assert_eq!(tree.children[0].label, "hike (for \"hikng\", read as \"hiking\", 1 edit away), product of");
    }

    /// A long word's stem keeps the word's first-letter rule: "nountaineering" stems as
    /// "nountain", one letter from "fountain" as from "mountain", and read by the stem's own
    /// length the fountain pen ranked with the boots; "mountaineering" is two typos away.
    #[test]
    fn a_long_word_s_stem_keeps_its_first_letter_rule() {
        let titles = [("boots", "Mountaineering boots"), ("pen", "Fountain pen")];
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&titles);
        let ids = |query: &str| -> Vec<u32> { lexical.search(query, 3, None).unwrap().iter().map(|h| h.0).collect() };
        assert_eq!(ids("nountaineering"), [0]);
        assert_eq!(ids("mountaineerinq"), [0], "a typo elsewhere");
    }

    /// A common stem reached only through a rare word is counted as the stem: "hking" is a
    /// letter from "king" and from "hiking", whose stem "hike" thirty-one items hold, and the
    /// one hiking item's word blended them down to one, so a quilt of kings came first.
    #[test]
    fn a_stem_read_from_a_rare_word_counts_as_common_as_the_stem() {
        let mut titles: Vec<(String, String)> = (0..30).map(|i| (format!("h{i}"), format!("Day hikes {i}"))).collect();
        titles.push(("boots".into(), "Hiking boots".into()));
        titles.push(("quilt".into(), "King size quilt".into()));
        let titles: Vec<(&str, &str)> = titles.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&titles);
        let found: Vec<u32> = lexical.search("hking", 40, None).unwrap().iter().map(|h| h.0).collect();
        assert_eq!(found.first(), Some(&30), "the hiking boots: {found:?}");
        assert_eq!(found.last(), Some(&31), "the quilt, 1 - 1/4, below every hike at 1 - 1/5: {found:?}");
        let score = |query: &str| lexical.score_all(query, Bm25Params::default()).unwrap();
        let of_hike = |scores: Vec<(u32, f32)>| scores.into_iter().find(|s| s.0 == 0).unwrap().1;
        let (typed, meant) = (of_hike(score("hking")), of_hike(score("hiking")));
        assert!(
            (typed - 0.8 * meant).abs() < 1e-5,
            "as common as \"hiking\" reads it, 1 - 1/5: {typed} against {meant}"
        );
    }

    /// The words of live rows are counted by which rows are visible, and cached by the hidden
    /// set they were read with, not its size: a set that shrinks (a failed put) and grows again
    /// to the same size with another row answered from the first set's cache.
    #[test]
    fn live_words_are_cached_by_the_hidden_set_not_its_size() {
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&[("mug", "Enamel mug")]);
        let (poles, lamp) = (
            super::super::analyzers::tests::titled("poles", "Hiking poles"),
            super::super::analyzers::tests::titled("lamp", "Camp lamp"),
        );
        lexical.add_live([(1, &poles), (2, &lamp)]).unwrap();
        let found = || -> Vec<u32> { lexical.search("hikng", 3, None).unwrap().iter().map(|h| h.0).collect() };
        assert_eq!(found(), [1]);
        let hide = |rows: &[u32], version| {
            lexical.hide(Arc::new(rows.iter().copied().collect()), version, |_| unreachable!("live rows only")).unwrap()
        };
        hide(&[1], (1, 0));
        assert!(found().is_empty(), "the poles hidden");
        hide(&[], (1, 1));
        hide(&[2], (2, 1));
        assert_eq!(found(), [1], "the poles visible again, one row hidden as before");
    }
}
