//! A query's terms, and the numbers among them that count only beside their word's letters.
//!
//! The unicode analyzer indexes a word that runs letters and digits together as the word and
//! as its runs ("pd1": "pd1", "pd", "1"; step 7 of `crate::analysis`), and a word joined by a
//! hyphen as its parts and the parts written together ("covid-19": "covid", "19", "covid19";
//! step 6), so that "PD 1" finds "PD1" and "covid 19" finds "COVID-19". Read the same way, a
//! query "PD1" looked its runs up on their own, and its "1" matched (and highlighted) any item
//! holding a lone "1": a number written after a name says little without the name.
//!
//! So, in a query, a number written after letters in one unspaced word ("PD1", "PD-1",
//! "COVID-19", "iPhone15", "DDR5-6000", "小米13") counts in an item only if the item also holds
//! one of that word's terms with letters (the word, a compound, a letter part), in any field.
//! The letters still count alone ("iphone15" finds an "iPhone 14", below the items holding
//! "15" too). A number that comes first ("27-inch", "3.5mm", "500ml") is a quantity whose unit
//! is written many ways ("27 in", "27″"), and counts alone, as does a number whose word has no
//! run of two letters ("p53", "F-16", "x86_64": the analyzer keeps no one-letter run, and "53"
//! is how "p53" meets "TP53") and one typed apart ("pd 1"). Lucene's `WordDelimiterGraphFilter`
//! at query time requires all of a word's runs, which would also drop the "iPhone 14".
//!
//! A word here is a run of the query's text between spaces, read from each token's byte
//! offsets, which every filter after the tokenizer keeps, so the rule holds under every
//! analysis revision and language, and across fields analysed differently.

use tantivy::tokenizer::Token;

/// One query term after analysis.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct QueryTerm {
    /// The term as the index holds it.
    pub text: String,
    /// The unspaced word of the query it was read from (its place among them).
    pub word: u32,
    /// Whether it holds a letter: for a number of its word, one of the terms it needs.
    pub lettered: bool,
    /// A number written after letters: it counts only in an item that holds a lettered term
    /// of its word.
    pub dependent: bool,
    /// The analyzer's position: terms at one position are alternatives for one word (a word's
    /// stem and the stem of it as written, `crate::analysis::FoldAndStem`), scored as one.
    pub position: u32,
    /// The bytes of the query it was read from (the token's offsets): "bm25" read as "bm25",
    /// "bm" and "25" has three spans.
    pub span: (usize, usize),
    /// For a term the index holds standing in for a query word it does not (`super::fuzzy`):
    /// what was typed and how far this is from it.
    pub fuzzy: Option<Fuzzy>,
}

/// What a term read for a query word stands in for ([`QueryTerm::fuzzy`]): a typo
/// (`super::fuzzy`) or the beginning of a word (`super::prefix`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fuzzy {
    /// The query's term as analysed (for a beginning, folded and not stemmed).
    pub typed: String,
    /// How it was reached from what was typed.
    pub reading: Reading,
    /// The factor on its BM25 score: `super::fuzzy::boost` for a typo, 1 for a completion.
    pub boost: f32,
    /// The document frequency its idf is computed with at least: the most common of its
    /// word's readings' (Lucene's blended frequency).
    pub blended_n: u64,
    /// For a typo compared as typed, the catalog's word it was read from (folded) and its
    /// edits from what was typed: what a search reports its query was read as
    /// (`super::corrections`). None for a stem compared with stems, and for a completion.
    pub word: Option<(String, u8)>,
    /// For a typo, the catalog's word (folded) that `typed` was compared with to reach this
    /// term at the edits and boost it has; none where it was reached as a stem (or is a
    /// completion). `word` is the nearest and most common of all its readings' words, what a
    /// search reports; this one is what the explanation's figures are of.
    pub compared: Option<String>,
}

/// How a [`Fuzzy`] term was reached from what was typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// A word of the index this many edits away.
    Typo { edits: u8 },
    /// The stem of a word of the catalog that begins with what was typed.
    Completion,
}

impl QueryTerm {
    /// Whether `other`, read from the same fields, is an alternative for this term's word: the
    /// same position, neither a number that depends on its word's letters. Such terms score
    /// once, the best of them (`score_all` and tantivy's reference query alike).
    pub(super) fn same_word(&self, other: &QueryTerm) -> bool {
        self.position == other.position && !self.dependent && !other.dependent
    }
}

/// Whether an analysed term is a number: decimal digits, with the separators the analyzer
/// keeps inside one ("2.5", "1,000"; it writes every script's digits as ASCII).
pub(super) fn is_number(term: &str) -> bool {
    term.chars().any(|c| c.is_ascii_digit()) && term.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | ','))
}

/// The terms `tokens` (the search analyzer's stream over `query`) in the analyzer's order,
/// repeats kept, each with its word and whether it depends on the word's letters (see the
/// module's docs). O(t + q) for t tokens and a query of q bytes.
pub(super) fn read(query: &str, tokens: &[Token]) -> Vec<QueryTerm> {
    // The unspaced words ([`words`]): byte ranges, and whether each starts (its first letter
    // or digit) with a letter.
    let words: Vec<(usize, usize, bool)> = words(query)
        .map(|(from, text)| {
            let letter_first = text.chars().find(|c| c.is_alphanumeric()).is_some_and(|c| !c.is_numeric());
            (from, from + text.len(), letter_first)
        })
        .collect();
    let word_of =
        |token: &Token| words.partition_point(|w| w.1 <= token.offset_from).min(words.len().saturating_sub(1));
    let mut terms: Vec<QueryTerm> = tokens
        .iter()
        .map(|t| QueryTerm {
            text: t.text.clone(),
            word: word_of(t) as u32,
            lettered: !is_number(&t.text),
            dependent: false,
            position: t.position as u32,
            span: (t.offset_from, t.offset_to),
            fuzzy: None,
        })
        .collect();
    // A word whose letters make a term of two or more without a digit: its numbers depend on
    // them when it starts with a letter.
    let mut named = vec![false; words.len()];
    for term in &terms {
        let letters = !term.text.chars().any(|c| c.is_ascii_digit()) && term.text.chars().nth(1).is_some();
        if letters {
            named[term.word as usize] = true;
        }
    }
    for term in &mut terms {
        let word = term.word as usize;
        term.dependent = !term.lettered && named[word] && words[word].2;
    }
    terms
}

/// The query's unspaced words, each with its byte offset: what [`QueryTerm::word`] counts.
pub(super) fn words(query: &str) -> impl Iterator<Item = (usize, &str)> {
    query.split_whitespace().map(move |word| (word.as_ptr() as usize - query.as_ptr() as usize, word))
}

/// The query's unspaced word `n` ([`QueryTerm::word`]), as typed.
pub(super) fn word(query: &str, n: u32) -> &str {
    words(query).nth(n as usize).map_or("", |(_, word)| word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::UnicodeTokenizer;
    use tantivy::tokenizer::{TokenStream, Tokenizer};

    /// The numbers of `query` (the current search analyzer, no stems) that depend on their
    /// word's letters, and those that do not.
    fn numbers(query: &str) -> (Vec<String>, Vec<String>) {
        let mut tokenizer = UnicodeTokenizer { search: true, ..UnicodeTokenizer::default() };
        let mut stream = tokenizer.token_stream(query);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().clone());
        }
        let terms = read(query, &tokens);
        let of = |dependent: bool| {
            terms.iter().filter(|t| !t.lettered && t.dependent == dependent).map(|t| t.text.clone()).collect()
        };
        (of(true), of(false))
    }

    fn strings(terms: &[&str]) -> Vec<String> {
        terms.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_number_written_after_a_name_needs_it() {
        for (query, dependent, free) in [
            ("PD1", &["1"][..], &[][..]),
            ("PD-1", &["1"], &[]),
            ("iPhone15 case", &["15"], &[]),
            ("COVID-19 vaccine", &["19"], &[]),
            // Digits on both sides of a hyphen are not joined into one term, but the word
            // is still one name.
            ("DDR5-6000", &["5", "6000"], &[]),
            ("ISO-9001-2015", &["9001", "2015"], &[]),
            // Scripts whose letters UAX #29 cuts from the digits (CJK, Thai) alike.
            ("小米13", &["13"], &[]),
            ("ไอโฟน15", &["15"], &[]),
            ("(PD1)", &["1"], &[]),
        ] {
            assert_eq!(numbers(query), (strings(dependent), strings(free)), "{query}");
        }
    }

    #[test]
    fn quantities_numbers_apart_and_beside_one_letter_are_free() {
        for (query, free) in [
            ("pd 1", &["1"][..]),
            ("27-inch monitor", &["27"]),
            ("3.5mm jack", &["3.5"]),
            ("p53", &["53"]),
            ("F-16", &["16"]),
            ("x86_64", &["86", "64"]),
            ("3-4 persons", &["3", "4"]),
            ("2024-05-01", &["2024", "05", "01"]),
            ("1/2in", &["1", "2"]),
        ] {
            assert_eq!(numbers(query), (vec![], strings(free)), "{query}");
        }
    }
}
