//! What a search tells its caller of the words it read otherwise than typed: "did you mean".
//!
//! Typo tolerance (`super::fuzzy`) reads a word no visible item holds as the catalog's words
//! near it, and BM25 scores them all; a shopper's page still wants one line saying what the
//! query was taken for ("Showing results for *hiking boots*"), and a link to search that
//! instead. Each such word is reported with the catalog's word it was read as: the nearest of
//! those found by comparing the word as typed with the catalog's words (fewest edits, then the
//! most common), and the query with each replaced. A word read only by its stem (a generation
//! built before it kept its words, or an inflection typed with a typo, "slepes") has no word
//! of the catalog to show, only a stem, and is not reported; nor is the word being typed under
//! `bm25.prefix` (it is completed, not corrected).

use super::terms::{Fuzzy, Reading};
use super::{Bm25Params, Fuzziness, LexicalIndex};
use crate::error::Result;

/// A query's words read as other words of the catalog, and the query so read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DidYouMean {
    /// The query with each corrected word replaced by the catalog's word it was read as (the
    /// rest as typed).
    pub query: String,
    /// The corrected words, in the query's order.
    pub words: Vec<Correction>,
}

/// One query word no visible item holds, and the catalog's word it was read as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Correction {
    /// The word as the query has it.
    pub typed: String,
    /// The catalog's word it was read as, folded (lower case, without accents where the
    /// catalog's analysis folds them).
    pub read_as: String,
    /// Edits between the two as compared (folded), a swap of neighbouring letters counting one.
    pub edits: u8,
}

impl LexicalIndex {
    /// What `query` was read as (see the module's docs), or None when BM25 read every word as
    /// typed, typo tolerance is off, or the generation keeps no words.
    ///
    /// # Errors
    /// A failing read of the index's terms or postings; `prefix` on a generation without its
    /// words.
    pub fn did_you_mean(&self, query: &str, params: Bm25Params) -> Result<Option<DidYouMean>> {
        let Some(field) = self.fields.words.filter(|_| params.fuzziness != Fuzziness::Off) else { return Ok(None) };
        let mut found = self.with_visible(params, |visible| {
            let read = self.query_terms(query, params, visible)?;
            // Each span's nearest reading decides (readings come nearest first, and the groups'
            // readings of a word agree on its words: they compare the same folded word). One read
            // by its stem alone has no word to show, and a farther reading's word ("slopes" for
            // "slepes", read as "sleep") is not what the hits were found by.
            let mut spans = std::collections::HashSet::new();
            let mut found: Vec<((usize, usize), Correction)> = Vec::new();
            for (term, _) in &read {
                let Some(Fuzzy { reading: Reading::Typo { .. }, word, .. }) = &term.fuzzy else { continue };
                if !spans.insert(term.span) {
                    continue;
                }
                let (Some((word, edits)), Some(typed)) = (word, query.get(term.span.0..term.span.1)) else { continue };
                // A word the analysis joined from parts ("t-shrit" as "tshrit") is reported by
                // its parts ("shrit" as "shirt"), so the query keeps its hyphen or apostrophe.
                if typed.chars().any(|c| !c.is_alphanumeric() && !unicode_normalization::char::is_combining_mark(c)) {
                    continue;
                }
                // Only rows deleted since the build may hold it (they still count in BM25's
                // statistics until the next build): a word no hit can show is no suggestion.
                if !visible.holds_word(field, word)? {
                    continue;
                }
                let correction = Correction { typed: typed.to_string(), read_as: word.clone(), edits: *edits };
                found.push((term.span, correction));
            }
            Ok(found)
        })?;
        if found.is_empty() {
            return Ok(None);
        }
        // Spans apart, in the query's order (overlapping ones, if an analysis made any: the
        // first).
        found.sort_by_key(|(span, _)| (span.0, std::cmp::Reverse(span.1)));
        let mut corrected = String::with_capacity(query.len());
        let (mut at, mut words) = (0, Vec::new());
        for (span, correction) in found {
            if span.0 < at {
                continue;
            }
            corrected.push_str(&query[at..span.0]);
            corrected.push_str(&cased(&correction.read_as, &correction.typed));
            at = span.1;
            words.push(correction);
        }
        corrected.push_str(&query[at..]);
        Ok(Some(DidYouMean { query: corrected, words }))
    }
}

/// `word` (folded, lower case) written in the case `typed` was: all capitals for a word typed
/// in capitals (two letters or more), a capital first for one typed so, else as it is.
fn cased(word: &str, typed: &str) -> String {
    let letters: Vec<char> = typed.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        return word.to_uppercase();
    }
    let mut chars = word.chars();
    match (letters.first(), chars.next()) {
        (Some(first), Some(head)) if first.is_uppercase() => head.to_uppercase().chain(chars).collect(),
        _ => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexical::{LexicalSettings, Prefix};

    fn catalog() -> (tempfile::TempDir, LexicalIndex) {
        let titles = [("bag", "Sleeping bag"), ("boots", "Hiking boots"), ("pack", "Trekking backpack")];
        super::super::analyzers::tests::titles_index_with(&LexicalSettings::default(), &titles)
    }

    fn query_of(lexical: &LexicalIndex, query: &str, params: Bm25Params) -> Option<String> {
        lexical.did_you_mean(query, params).unwrap().map(|d| d.query)
    }

    #[test]
    fn each_word_read_as_another_is_reported_with_the_query_so_read() {
        let (_dir, lexical) = catalog();
        let auto = Bm25Params::default();
        let found = lexical.did_you_mean("Hikng bots for Trekkng", auto).unwrap().unwrap();
        assert_eq!(found.query, "Hiking bots for Trekking", "\"bots\" is too short to be read otherwise");
        let words: Vec<(&str, &str, u8)> =
            found.words.iter().map(|c| (c.typed.as_str(), c.read_as.as_str(), c.edits)).collect();
        assert_eq!(words, [("Hikng", "hiking", 1), ("Trekkng", "trekking", 1)]);
        assert_eq!(query_of(&lexical, "hiking boots", auto), None, "every word as typed");
        assert_eq!(query_of(&lexical, "hikng", Bm25Params { fuzziness: Fuzziness::Off, ..auto }), None);
        // The word being typed is completed, not corrected; a finished one is corrected.
        let prefix = Bm25Params { prefix: Prefix::Last, ..auto };
        assert_eq!(query_of(&lexical, "sleepng bag", prefix).as_deref(), Some("sleeping bag"));
        assert_eq!(query_of(&lexical, "bag sleepin", prefix), None);
    }

    /// The review's cases (2026-12-07): the nearest reading decides, and one by a stem alone
    /// reports nothing, not a farther reading's word; a word only deleted rows hold is no
    /// suggestion; a word joined from parts is reported by its parts; capitals are kept.
    #[test]
    fn the_nearest_visible_word_is_reported_in_the_case_typed() {
        let titles = [
            ("bag", "Sleeping bag"),
            ("pad", "Sleeping pad"),
            ("map", "Ski slopes map"),
            ("shirt", "Merino t-shirt"),
            ("bright", "Bright lamp"),
            ("light", "Light lamp"),
        ];
        let (_dir, lexical) = super::super::analyzers::tests::titles_index_with(&LexicalSettings::default(), &titles);
        let auto = Bm25Params::default();
        // "slepes" is "sleep" by its stem ("slepe", a swap away) and "slopes" by its letters;
        // the hits are the sleeping bags.
        assert_eq!(lexical.search("slepes bag", 1, None).unwrap()[0].0, 0);
        assert_eq!(query_of(&lexical, "slepes bag", auto), None);
        assert_eq!(query_of(&lexical, "Merino T-shrit", auto).as_deref(), Some("Merino T-shirt"));
        assert_eq!(query_of(&lexical, "HIKNG BLIGHT", auto).as_deref(), Some("HIKNG BRIGHT"));
        let item_at = |row: u32| {
            let (id, title) = titles[row as usize];
            Ok(super::super::analyzers::tests::titled(id, title))
        };
        lexical.hide(std::sync::Arc::new([4].into_iter().collect()), (1, 0), item_at).unwrap();
        assert_eq!(query_of(&lexical, "blight", auto), None, "only a deleted row holds \"bright\"");
    }

    /// Words written live are read as too, and a generation without its words reports
    /// nothing (its typos are read by stems only, which are no words to show).
    #[test]
    fn live_words_count_and_old_generations_report_nothing() {
        let (_dir, mut lexical) = catalog();
        let poles = super::super::analyzers::tests::titled("poles", "Carbon poles");
        lexical.add_live([(3, &poles)]).unwrap();
        assert_eq!(query_of(&lexical, "carbn", Bm25Params::default()).as_deref(), Some("carbon"));
        lexical.fields.words = None;
        assert_eq!(query_of(&lexical, "sleping", Bm25Params::default()), None);
        assert!(!lexical.search("sleping", 3, None).unwrap().is_empty(), "still read by its stem");
    }
}
