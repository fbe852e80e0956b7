//! Typo tolerance: a query word the index does not hold is looked up as the terms it holds
//! within one or two edits ("sleping" finds "sleeping", "adiddas" finds "adidas").
//!
//! Only a word no visible item's searched fields hold is expanded (Elasticsearch's spelling
//! suggester's `missing` mode, applied to the search itself): a word the catalog holds is
//! taken as typed, so a correctly spelled query ranks as it did, and a typo that is itself a
//! catalog word ("form" for "from") is not caught. How many edits a word may carry follows
//! its length, as Meilisearch's defaults have it (one from 5 characters, two from 9: shorter
//! words have too many neighbours); edits are Levenshtein's with a swap of two neighbouring
//! letters as one (Damerau's; tantivy's Levenshtein automaton with `transposition_cost_one`).
//! A word's expansions stand at its position as alternatives (an item scores the best one,
//! as it does for a word's stems, `super::terms`), each scaled by Lucene's fuzzy boost,
//! `1 − edits / min(length typed, length found)` (`FuzzyTermsEnum`), so a near word counts
//! less than the word would; at most [`MAX_EXPANSIONS`] per word (Lucene's and Elasticsearch's
//! default), the fewest edits first, then the most common.
//!
//! Terms are compared as analysed (stemmed, folded): "sleping" is read as "slepe", one swap
//! from "sleep", the stem of "sleeping". A number is never expanded ("2.5" is not a typo of
//! "2.6").

use tantivy::query::FuzzyTermQuery;
use tantivy::{SegmentReader, Term};

use super::live::LiveRows;
use super::schema::Fields;
use super::terms::Fuzzy;
use super::QueryTerm;
use crate::error::{Error, Result};

/// Whether BM25 looks a query word the index does not hold up as the terms within a few edits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Fuzziness {
    /// Words the index does not hold are read with one edit from 5 characters, two from 9
    /// (as analysed), scaled by `1 − edits / length`.
    #[default]
    Auto,
    /// Words are looked up as typed only (tantivy's and Lucene's plain match).
    Off,
}

/// The most terms one word expands to (Lucene's `FuzzyQuery.defaultMaxExpansions`).
pub const MAX_EXPANSIONS: usize = 50;

impl Fuzziness {
    /// Edits allowed in `term` (as analysed): none below 5 characters or for a number, one
    /// from 5, two from 9 (Meilisearch's `minWordSizeForTypos`).
    pub(super) fn edits(self, term: &QueryTerm) -> u8 {
        let chars = term.text.chars().count();
        match self {
            Fuzziness::Off => 0,
            Fuzziness::Auto if !term.lettered || term.dependent || chars < 5 => 0,
            Fuzziness::Auto if chars < 9 => 1,
            Fuzziness::Auto => 2,
        }
    }
}

/// Lucene's fuzzy boost for a term `edits` away from what was typed.
pub(super) fn boost(edits: u8, typed: &str, found: &str) -> f32 {
    let shorter = typed.chars().count().min(found.chars().count()).max(1);
    (1.0 - f32::from(edits) / shorter as f32).max(0.0)
}

/// A term of the index standing for a query word it does not hold.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Expansion {
    pub text: String,
    pub edits: u8,
    /// Items holding it, over the fields looked up (a row in two fields counts twice: only
    /// an order among the expansions).
    pub df: u64,
}

/// How many items of the generation and the live rows hold `term` in the fields of mask
/// `looked_up` (rows hidden since the build included: a term only deleted items held is
/// taken as held, and not expanded).
pub(super) fn held(
    segments: &[&SegmentReader],
    live: &LiveRows,
    fields: &Fields,
    looked_up: u64,
    term: &str,
) -> Result<u64> {
    let mut n = 0u64;
    for (f, field) in fields.searched.iter().enumerate().filter(|(f, _)| looked_up & (1 << f) != 0) {
        for segment in segments {
            let inverted = segment.inverted_index(field.field)?;
            n += u64::from(
                inverted
                    .doc_freq(&Term::from_field_text(field.field, term))
                    .map_err(|e| Error::io(format!("reading the term {}:{term}", field.name), e))?,
            );
        }
        n += live.postings(f, term).len() as u64;
    }
    Ok(n)
}

/// The index's terms within `edits` of `typed` in the fields of `looked_up`, the fewest edits
/// first, then the most common, at most [`MAX_EXPANSIONS`]; `typed` itself is not among them.
pub(super) fn expansions(
    segments: &[&SegmentReader],
    live: &LiveRows,
    fields: &Fields,
    looked_up: u64,
    typed: &str,
    edits: u8,
) -> Result<Vec<Expansion>> {
    use tantivy::termdict::TermStreamer;
    let mut found: rustc_hash::FxHashMap<String, u64> = rustc_hash::FxHashMap::default();
    // One automaton for every field and segment: it reads the term's text only (building one
    // for two edits is most of an expansion's time).
    let Some(first) = fields.searched.first() else { return Ok(Vec::new()) };
    let automaton = FuzzyTermQuery::new(Term::from_field_text(first.field, typed), edits, true).automaton()?;
    for (f, field) in fields.searched.iter().enumerate().filter(|(f, _)| looked_up & (1 << f) != 0) {
        for segment in segments {
            let inverted = segment.inverted_index(field.field)?;
            let mut stream: TermStreamer<'_, _> = inverted
                .terms()
                .search(&automaton)
                .into_stream()
                .map_err(|e| Error::io(format!("reading the terms of {}", field.name), e))?;
            while stream.advance() {
                let Ok(term) = std::str::from_utf8(stream.key()) else { continue };
                *found.entry(term.to_string()).or_default() += u64::from(stream.value().doc_freq);
            }
        }
        // The live rows' terms, read whole: a few thousand at most between builds.
        for (term, postings) in live.terms(f) {
            if distance(typed, term) <= usize::from(edits) {
                *found.entry(term.to_string()).or_default() += postings as u64;
            }
        }
    }
    found.remove(typed);
    let mut out: Vec<Expansion> = found
        .into_iter()
        .map(|(text, df)| Expansion { edits: distance(typed, &text).clamp(1, usize::from(edits)) as u8, text, df })
        .collect();
    out.sort_by(|a, b| a.edits.cmp(&b.edits).then(b.df.cmp(&a.df)).then_with(|| a.text.cmp(&b.text)));
    out.truncate(MAX_EXPANSIONS);
    Ok(out)
}

/// `tokens` (each query term with the mask of fields it is looked up in, in the analyzer's
/// order) with, after each word no item holds, the terms within its edits as alternatives at
/// its position (see the module's docs).
///
/// # Errors
/// A failing read of the index's terms.
pub(super) fn expand(
    tokens: Vec<(QueryTerm, u64)>,
    fuzziness: Fuzziness,
    segments: &[&SegmentReader],
    live: &LiveRows,
    fields: &Fields,
) -> Result<Vec<(QueryTerm, u64)>> {
    if fuzziness == Fuzziness::Off {
        return Ok(tokens);
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut start = 0;
    while start < tokens.len() {
        // One word's terms: its alternatives stand together, as the scorer reads them.
        let first = &tokens[start];
        let end =
            start + 1 + tokens[start + 1..].iter().take_while(|t| t.1 == first.1 && t.0.same_word(&first.0)).count();
        let word = &tokens[start..end];
        out.extend_from_slice(word);
        let typos = word.iter().any(|(term, _)| fuzziness.edits(term) > 0);
        if !typos
            || word.iter().map(|(term, mask)| held(segments, live, fields, *mask, &term.text)).sum::<Result<u64>>()? > 0
        {
            start = end;
            continue;
        }
        let mut near: Vec<(Expansion, &str)> = Vec::new();
        for (term, mask) in word {
            let edits = fuzziness.edits(term);
            if edits > 0 {
                near.extend(
                    expansions(segments, live, fields, *mask, &term.text, edits)?
                        .into_iter()
                        .map(|e| (e, term.text.as_str())),
                );
            }
        }
        near.sort_by(|a, b| a.0.edits.cmp(&b.0.edits).then(b.0.df.cmp(&a.0.df)).then_with(|| a.0.text.cmp(&b.0.text)));
        let mut seen = std::collections::HashSet::new();
        near.retain(|(e, _)| seen.insert(e.text.clone()));
        near.truncate(MAX_EXPANSIONS);
        for (expansion, typed) in near {
            let (term, mask) = &word[0];
            out.push((
                QueryTerm {
                    fuzzy: Some(Fuzzy {
                        typed: typed.to_string(),
                        edits: expansion.edits,
                        boost: boost(expansion.edits, typed, &expansion.text),
                    }),
                    text: expansion.text,
                    lettered: true,
                    dependent: false,
                    ..term.clone()
                },
                *mask,
            ));
        }
        start = end;
    }
    Ok(out)
}

/// Edits from `a` to `b`, a swap of neighbours counting one (optimal string alignment, what
/// the automaton accepts).
fn distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Item;
    use crate::lexical::{Bm25Params, LexicalIndex, LexicalSettings};

    fn term(text: &str, lettered: bool) -> QueryTerm {
        QueryTerm { text: text.into(), word: 0, lettered, dependent: false, position: 0, fuzzy: None }
    }

    fn catalog() -> (tempfile::TempDir, LexicalIndex) {
        let titles = [
            ("sleeping-bag", "Sleeping bag"),
            ("bag", "Bag"),
            ("stove", "Camp stove"),
            ("serial", "Lamp 12345"),
            ("voucher", "Store voucher"),
        ];
        super::super::analyzers::tests::titles_index_with(&LexicalSettings::default(), &titles)
    }

    /// A word no item holds finds the items holding the words a typo away, below what the
    /// word itself would score; a word the catalog holds, a short word and a number are read
    /// as typed; items written live are found too; the explanation says what was typed.
    #[test]
    fn a_typo_finds_the_word_meant_and_counts_less() {
        let (_dir, lexical) = catalog();
        let auto = Bm25Params::default();
        let off = Bm25Params { fuzziness: Fuzziness::Off, ..auto };
        let top = |query: &str, params| lexical.search_with(query, 3, None, params).unwrap().first().map(|h| h.0);
        assert_eq!(top("sleping bag", auto), Some(0));
        assert_eq!(top("sleping bag", off), Some(1), "as typed, only \"bag\" matches, the shorter title first");
        let score = |query: &str| lexical.score_all(query, auto).unwrap().into_iter().find(|h| h.0 == 0).map(|h| h.1);
        let (typed, meant) = (score("sleping").unwrap(), score("sleeping").unwrap());
        assert!((typed - 0.8 * meant).abs() < 1e-5, "{typed} is 1 - 1/5 of {meant}");
        // "store" is a letter from "stove", but the catalog holds both: each is read as typed.
        let ids = |query: &str| -> Vec<u32> {
            lexical.search_with(query, 3, None, auto).unwrap().iter().map(|h| h.0).collect()
        };
        assert_eq!((ids("stove"), ids("store"), ids("stvoe")), (vec![2], vec![4], vec![2]));
        assert!(lexical.search_with("12346", 3, None, auto).unwrap().is_empty(), "a number is not a typo");
        assert!(lexical.search_with("stvoe", 3, None, off).unwrap().is_empty());
        assert!(ids("cmap").is_empty(), "short words are read as typed");
        let tree = lexical.explain_with("sleping", 0, auto).unwrap().unwrap();
        let term = &tree.children[0];
        assert_eq!(term.label, "sleep (for \"slepe\", 1 edit away), product of");
        assert!(term.children.iter().any(|c| c.label.starts_with("fuzzy boost") && c.value == 0.8_f32 as f64));
        assert!((tree.value - f64::from(typed)).abs() < 1e-5);
        let live = Item {
            id: "poncho".into(),
            title: "Waterproof poncho".into(),
            text: String::new(),
            fields: Default::default(),
        };
        lexical.add_live([(5, &live)]).unwrap();
        assert_eq!(top("waterprof", auto), Some(5), "a live item's words are looked up too");
        assert_eq!(top("watreproff", auto), Some(5), "two edits from 9 characters");
    }

    #[test]
    fn edits_follow_the_length_and_spare_numbers() {
        let auto = Fuzziness::Auto;
        assert_eq!(auto.edits(&term("tent", true)), 0, "short words have too many neighbours");
        assert_eq!(auto.edits(&term("slepe", true)), 1);
        assert_eq!(auto.edits(&term("waterproof", true)), 2);
        assert_eq!(auto.edits(&term("帐篷帐篷帐", true)), 1, "characters, not bytes");
        assert_eq!(auto.edits(&term("123456", false)), 0);
        assert_eq!(Fuzziness::Off.edits(&term("waterproof", true)), 0);
        assert_eq!(boost(1, "slepe", "sleep"), 0.8);
        assert_eq!(boost(2, "waterprof", "waterproof"), 1.0 - 2.0 / 9.0);
        assert_eq!(distance("slepe", "sleep"), 1, "a swap is one edit");
    }
}
