//! A query's terms, and the numbers among them that count only beside their word's letters.
//!
//! The unicode analyzer indexes a word that runs letters and digits together as the word and
//! as its runs ("pd1": "pd1", "pd", "1"; step 7 of `crate::analysis`), and a word joined by a
//! hyphen as its parts and the parts written together ("covid-19": "covid", "19", "covid19";
//! step 6), so that "PD 1" finds "PD1" and "covid 19" finds "COVID-19". Read the same way, a
//! query "PD1" looked its runs up on their own, and its "1" matched (and highlighted) any item
//! holding a lone "1": a query's number says little without the letters it was written with.
//! Lucene's `WordDelimiterGraphFilter` at query time makes such runs a graph, the word or all
//! of its runs, so that a lone run matches nothing; hyrank keeps the letters alone as a match
//! ("iphone15" still finds an "iPhone 14", below the items that hold "15" too) and makes only
//! the number depend on them: in a query, a number written with letters counts in an item
//! that also holds the word's letters (the word itself, or one of its letter parts).
//!
//! Which tokens are one word is read from the analysis itself, so it holds under every
//! revision and language: the analyzer gives a word's parts and runs the word's byte offsets
//! (a hyphenated compound's written-together term spans its parts), and every filter after it
//! (stop words, folding, stems) keeps them. A number beside a single letter ("p53", "F-16")
//! depends on nothing: the analyzer keeps no one-letter run, so "53" is what lets "p53" meet
//! "TP53".

use tantivy::tokenizer::Token;

/// One query term after analysis.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct QueryTerm {
    /// The term as the index holds it.
    pub text: String,
    /// For a number written with letters, the places (in the same list) of its word's terms
    /// that hold a letter: the number counts in an item only if that item holds one of them.
    /// Empty for every other term.
    pub needs: Vec<usize>,
}

/// Whether an analysed term is a number: decimal digits, with the separators the analyzer
/// keeps inside one ("2.5", "1,000"; it writes every script's digits as ASCII).
fn is_number(term: &str) -> bool {
    term.chars().any(|c| c.is_ascii_digit()) && term.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | ','))
}

/// The query's terms in the analyzer's order, repeats kept, each number written with letters
/// given the terms it needs (see the module's docs).
///
/// `tokens` is the search analyzer's stream. Words are the outermost byte ranges of its tokens:
/// a token lies in the word whose range holds its own; ranges nest (a compound holds its parts)
/// or are apart. O(t log t) for t tokens.
pub(super) fn read(tokens: &[Token]) -> Vec<QueryTerm> {
    let mut terms: Vec<QueryTerm> =
        tokens.iter().map(|t| QueryTerm { text: t.text.clone(), needs: Vec::new() }).collect();
    // By start, the longest first: each word's outermost range comes before what it holds.
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| (tokens[i].offset_from, std::cmp::Reverse(tokens[i].offset_to)));
    let mut word: Vec<usize> = Vec::new();
    let mut word_end = 0;
    for (n, &i) in order.iter().enumerate() {
        if word.is_empty() || tokens[i].offset_from >= word_end {
            depend(&mut terms, &word);
            word.clear();
            word_end = tokens[i].offset_to;
        }
        word.push(i);
        word_end = word_end.max(tokens[i].offset_to);
        if n + 1 == order.len() {
            depend(&mut terms, &word);
        }
    }
    terms
}

/// Gives each number of one word (`word`: places in `terms`) the word's terms that hold a
/// letter, in the query's order, when one of those is two letters or more without a digit: a
/// word whose only letter is a single one ("p53", "F-16") keeps its number free, as the
/// analyzer keeps no one-letter run for an item's "TP53" to meet "p53" by.
fn depend(terms: &mut [QueryTerm], word: &[usize]) {
    let mut lettered: Vec<usize> = word.iter().copied().filter(|&i| !is_number(&terms[i].text)).collect();
    lettered.sort_unstable();
    let letters = |t: &str| !t.chars().any(|c| c.is_ascii_digit()) && t.chars().nth(1).is_some();
    if !lettered.iter().any(|&i| letters(&terms[i].text)) {
        return;
    }
    for &i in word {
        if is_number(&terms[i].text) {
            terms[i].needs.clone_from(&lettered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::UnicodeTokenizer;
    use tantivy::tokenizer::{TokenStream, Tokenizer};

    /// Each term of `query` (the current search analyzer, no stems) with the terms it needs.
    fn needs(query: &str) -> Vec<(String, Vec<String>)> {
        let mut tokenizer = UnicodeTokenizer { search: true, ..UnicodeTokenizer::default() };
        let mut stream = tokenizer.token_stream(query);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().clone());
        }
        let terms = read(&tokens);
        terms.iter().map(|t| (t.text.clone(), t.needs.iter().map(|&i| terms[i].text.clone()).collect())).collect()
    }

    fn free(term: &str) -> (String, Vec<String>) {
        (term.to_string(), Vec::new())
    }

    fn beside(term: &str, letters: &[&str]) -> (String, Vec<String>) {
        (term.to_string(), letters.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_number_written_with_letters_needs_them() {
        assert_eq!(needs("PD1"), [free("pd1"), free("pd"), beside("1", &["pd1", "pd"])]);
        assert_eq!(
            needs("iPhone15 case"),
            [free("iphone15"), free("iphone"), beside("15", &["iphone15", "iphone"]), free("case")]
        );
        assert_eq!(needs("3.5mm"), [free("3.5mm"), beside("3.5", &["3.5mm", "mm"]), free("mm")]);
        // A hyphen joins the number to the word just as well: its parts and the compound.
        assert_eq!(
            needs("COVID-19 vaccine"),
            [free("covid"), beside("19", &["covid", "covid19"]), free("covid19"), free("vaccine")]
        );
        assert_eq!(needs("PD-1"), [free("pd"), beside("1", &["pd", "pd1"]), free("pd1")]);
    }

    #[test]
    fn numbers_standing_alone_or_beside_one_letter_are_free() {
        // Typed apart, the number is a word of its own.
        assert_eq!(needs("pd 1"), [free("pd"), free("1")]);
        assert_eq!(needs("3.5 mm"), [free("3.5"), free("mm")]);
        // No run of two letters: "53" is what lets "p53" meet "TP53".
        assert_eq!(needs("p53"), [free("p53"), free("53")]);
        assert_eq!(needs("F-16"), [free("f"), free("16"), free("f16")]);
        // A range is two numbers, not a word.
        assert_eq!(needs("3-4 persons"), [free("3"), free("4"), free("persons")]);
        assert_eq!(needs("2024"), [free("2024")]);
    }
}
