//! Which terms lie within a word's typos: tantivy's Damerau–Levenshtein automata (a swap of
//! two neighbouring letters is one edit), and for a word allowed two typos (nine letters or
//! more) Meilisearch's first-letter rule, a typo on the first letter counts as two
//! ("First-character typo costs 2", Meilisearch's typo tolerance documentation): such a word
//! is compared with the terms that begin with its first letter within two edits, and with
//! the others within one (that one on the first letter, two in all). A word allowed one typo
//! may have it anywhere, as Lucene's fuzzy query (prefix length 0) reads it.
//!
//! Why only from two typos: two edits reach far more terms than one, most of them other
//! words ("onbipolar" is two letters from "bipolar"), and walking a term dictionary (an FST)
//! with them is most of a misspelled query's time; the rule keeps that walk inside one first
//! letter's branch, except for the cheap one-edit walk of the others. Measured on SciFact
//! train (docs/EVAL.md): the rule for every word cost 0.001–0.004 nDCG@10 on typo'd queries;
//! for two-typo words only it cost nothing and saved a quarter of the worst case's time.

use tantivy::query::{DfaWrapper, FuzzyTermQuery};
use tantivy::Term;
use tantivy_fst::Automaton;

use crate::error::Result;

/// How far a comparison reaches: the edits allowed in what is compared (a stem, or a word as
/// typed), and whether a typo on the first letter counts as two, which follows the word as
/// typed (allowed two typos), so that a long word's stem, shorter, keeps its word's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Reach {
    pub edits: u8,
    pub first_letter_counts_two: bool,
}

impl Reach {
    /// `edits` in a word or stem of a word allowed `word_edits` typos.
    pub(super) fn new(edits: u8, word_edits: u8) -> Reach {
        Reach { edits, first_letter_counts_two: word_edits >= 2 }
    }
}

/// The terms within a [`Reach`] of a word, first-letter rule included: a
/// [`tantivy_fst::Automaton`] over the bytes of a term, to walk a term dictionary with, or to
/// test one term with [`TypoAutomaton::accepts`].
pub(super) struct TypoAutomaton {
    /// The first letter's UTF-8 bytes; none where the rule does not apply (one edit).
    first: Vec<u8>,
    /// Within the edits allowed: for terms that begin with `first` (every term if none).
    same: DfaWrapper,
    /// Within one edit fewer: for the other terms (none where one edit is allowed).
    other: Option<DfaWrapper>,
}

/// Where a [`TypoAutomaton`] is in a term: `head` bytes of it agreed with the first letter
/// so far (`Reading`), the first letter read whole (`Same`), or another first letter
/// (`Other`), with the state of each Levenshtein automaton (read only on its branch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TypoState {
    head: Head,
    same: u32,
    other: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    Reading(usize),
    Same,
    Other,
}

impl TypoAutomaton {
    /// The automaton of the terms within `reach` (1 or 2 edits) of `typed`, a folded word or
    /// term.
    ///
    /// # Errors
    /// tantivy's refusal of the edits (above its largest, 2).
    pub(super) fn new(typed: &str, reach: Reach) -> Result<TypoAutomaton> {
        let edits = reach.edits;
        // The automaton reads the text only; the field is a placeholder.
        let dfa = |edits: u8| {
            let field = tantivy::schema::Field::from_field_id(0);
            FuzzyTermQuery::new(Term::from_field_text(field, typed), edits, true).automaton()
        };
        if !reach.first_letter_counts_two {
            return Ok(TypoAutomaton { first: Vec::new(), same: dfa(edits)?, other: None });
        }
        let first = typed.chars().next().map_or_else(Vec::new, |c| c.to_string().into_bytes());
        let other = if edits > 1 { Some(dfa(edits - 1)?) } else { None };
        Ok(TypoAutomaton { first, same: dfa(edits)?, other })
    }

    /// Whether the automaton accepts `term`, read byte by byte (what a walk of a dictionary
    /// or of the live rows' terms, [`accepted_in`], finds it does).
    #[cfg(test)]
    pub(super) fn accepts(&self, term: &str) -> bool {
        let mut state = self.start();
        for &byte in term.as_bytes() {
            state = self.accept(&state, byte);
            if !self.can_match(&state) {
                return false;
            }
        }
        self.is_match(&state)
    }
}

/// The typos between `typed` and `found`, a term the [`TypoAutomaton`] of `typed` for `reach`
/// accepted: their optimal string alignment distance (Damerau's edits, each letter edited at
/// most once, which the automaton measures), one more if their first letters differ where
/// the first-letter rule applies.
pub(super) fn typos(typed: &str, found: &str, reach: Reach) -> usize {
    let first_differs = reach.first_letter_counts_two && typed.chars().next() != found.chars().next();
    strsim::osa_distance(typed, found) + usize::from(first_differs)
}

impl Automaton for TypoAutomaton {
    type State = TypoState;

    fn start(&self) -> TypoState {
        let head = if self.first.is_empty() { Head::Same } else { Head::Reading(0) };
        // `other`'s state is read only where `other` is followed.
        let other = self.other.as_ref().map_or(0, Automaton::start);
        TypoState { head, same: self.same.start(), other }
    }

    fn is_match(&self, state: &TypoState) -> bool {
        match state.head {
            Head::Same => self.same.is_match(&state.same),
            // A term that ends inside the first letter does not begin with it.
            Head::Other | Head::Reading(_) => self.other.as_ref().is_some_and(|o| o.is_match(&state.other)),
        }
    }

    fn can_match(&self, state: &TypoState) -> bool {
        let other = || self.other.as_ref().is_some_and(|o| o.can_match(&state.other));
        match state.head {
            Head::Same => self.same.can_match(&state.same),
            Head::Other => other(),
            Head::Reading(_) => self.same.can_match(&state.same) || other(),
        }
    }

    fn accept(&self, state: &TypoState, byte: u8) -> TypoState {
        let head = match state.head {
            Head::Reading(i) if self.first[i] == byte && i + 1 == self.first.len() => Head::Same,
            Head::Reading(i) if self.first[i] == byte => Head::Reading(i + 1),
            Head::Reading(_) => Head::Other,
            head => head,
        };
        // Each automaton is followed only on the branch it reads.
        let same = if head == Head::Other { state.same } else { self.same.accept(&state.same, byte) };
        let other = match &self.other {
            Some(o) if head != Head::Same => o.accept(&state.other, byte),
            _ => state.other,
        };
        TypoState { head, same, other }
    }
}

/// The keys of `map` (UTF-8 text as bytes) that `automaton` accepts, with their values, in
/// key order. Keys are visited in order and every key that begins with a prefix the automaton
/// cannot go on from is skipped by one seek, as a walk of a term dictionary (an FST) skips
/// its branches: O(p log n) for the p prefixes read, where testing each key costs O(n).
pub(super) fn accepted_in<'m, V, A: Automaton>(
    map: &'m std::collections::BTreeMap<Vec<u8>, V>,
    automaton: &A,
) -> Vec<(&'m str, &'m V)> {
    use std::ops::Bound;
    let mut found = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    let mut inclusive = true;
    loop {
        let bound = if inclusive { Bound::Included(from.as_slice()) } else { Bound::Excluded(from.as_slice()) };
        let Some((key, value)) = map.range::<[u8], _>((bound, Bound::Unbounded)).next() else { break };
        let mut state = automaton.start();
        let mut dead = None;
        for (i, &byte) in key.iter().enumerate() {
            state = automaton.accept(&state, byte);
            if !automaton.can_match(&state) {
                dead = Some(i);
                break;
            }
        }
        match dead {
            None => {
                if automaton.is_match(&state) {
                    if let Ok(text) = std::str::from_utf8(key) {
                        found.push((text, value));
                    }
                }
                (from, inclusive) = (key.clone(), false);
            }
            // Past every key beginning with the bytes read: the least byte string above them.
            Some(i) => {
                let mut next = key[..=i].to_vec();
                while next.last() == Some(&u8::MAX) {
                    next.pop();
                }
                let Some(last) = next.last_mut() else { break };
                *last += 1;
                (from, inclusive) = (next, true);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(edits: u8) -> Reach {
        Reach::new(edits, edits)
    }

    fn accepted(typed: &str, edits: u8, terms: &[&str]) -> Vec<String> {
        let automaton = TypoAutomaton::new(typed, reach(edits)).unwrap();
        terms.iter().filter(|t| automaton.accepts(t)).map(|t| t.to_string()).collect()
    }

    /// A word allowed two typos counts one on its first letter as two: it reads the terms
    /// that begin with another letter at one edit only. A word allowed one typo may have it
    /// anywhere.
    #[test]
    fn a_typo_on_the_first_letter_counts_as_two_where_two_are_allowed() {
        let long =
            ["mountaineer", "fountaineer", "mountianeer", "muontaineer", "fountainee", "ountaineer", "ountainee"];
        assert_eq!(
            accepted("mountaineer", 2, &long),
            ["mountaineer", "fountaineer", "mountianeer", "muontaineer", "ountaineer"],
            "two edits with the first letter, one on it"
        );
        assert_eq!(typos("mountaineer", "fountaineer", reach(2)), 2);
        assert_eq!(typos("mountaineer", "ountaineer", reach(2)), 2);
        assert_eq!(typos("mountaineer", "mountianeer", reach(2)), 1, "a swap is one edit");
        let short = ["tents", "rents", "tent", "ents", "atents", "tetns", "tnets", "tens", "rent"];
        assert_eq!(
            accepted("tents", 1, &short),
            ["tents", "rents", "tent", "ents", "atents", "tetns", "tnets", "tens"]
        );
        assert_eq!(typos("tents", "rents", reach(1)), 1);
    }

    /// A long word's stem keeps the word's rule: "nountain", the stem of "nountaineering",
    /// is allowed one edit, and not on its first letter ("fountain", "mountain").
    #[test]
    fn a_stem_keeps_its_word_s_first_letter_rule() {
        let stem = Reach::new(1, 2);
        let automaton = TypoAutomaton::new("nountain", stem).unwrap();
        let terms = ["fountain", "mountain", "nountains", "nuntain"];
        let found: Vec<&str> = terms.iter().copied().filter(|t| automaton.accepts(t)).collect();
        assert_eq!(found, ["nountains", "nuntain"]);
        assert_eq!(typos("nountain", "nuntain", stem), 1);
    }

    /// The first letter is a character, not a byte: "é" and "è" both begin with 0xC3, and a
    /// word beginning with one is two edits on the first letter from a word beginning with
    /// the other, so only one more edit is allowed.
    #[test]
    fn the_first_letter_is_a_character() {
        let terms = ["éternellemenx", "èternellement", "èternellemenx", "eternellemen"];
        assert_eq!(accepted("éternellement", 2, &terms), ["éternellemenx", "èternellement"]);
        assert_eq!(typos("éternellement", "èternellement", reach(2)), 2);
    }

    /// The automaton accepts what the walk of a term dictionary finds: the same terms, from
    /// an FST built of them.
    #[test]
    fn a_dictionary_walk_finds_what_the_automaton_accepts() {
        use tantivy_fst::{IntoStreamer, Streamer};
        let mut terms = vec!["camping", "campign", "damping", "ampign", "campings", "xcamping", "clamping"];
        terms.sort_unstable();
        let map = tantivy_fst::Map::from_iter(terms.iter().map(|t| (t, 0))).unwrap();
        for edits in [1, 2] {
            let automaton = TypoAutomaton::new("campign", reach(edits)).unwrap();
            let mut stream = map.search(&automaton).into_stream();
            let mut walked = Vec::new();
            while let Some((term, _)) = stream.next() {
                walked.push(String::from_utf8(term.to_vec()).unwrap());
            }
            assert_eq!(walked, accepted("campign", edits, &terms), "{edits} edits");
        }
        assert_eq!(accepted("campign", 1, &terms), ["ampign", "campign", "camping"]);
        assert_eq!(accepted("campign", 2, &terms), ["ampign", "campign", "camping", "campings", "clamping"]);
    }

    proptest::proptest! {
        /// The automaton accepts exactly the terms [`typos`] counts within the reach: their
        /// optimal string alignment distance, one more for another first letter where the
        /// rule applies; over a small alphabet (so that terms come near), a multi-byte letter
        /// among its letters.
        #[test]
        fn the_automaton_accepts_what_typos_counts(
            typed in "[abé]{1,7}",
            term in "[abé]{0,9}",
            edits in 1u8..=2,
            word_edits in 1u8..=2,
        ) {
            let reach = Reach::new(edits, word_edits.max(edits));
            let automaton = TypoAutomaton::new(&typed, reach).unwrap();
            let counted = typos(&typed, &term, reach) <= usize::from(edits);
            proptest::prop_assert_eq!(automaton.accepts(&term), counted, "{} {} {:?}", typed, term, reach);
        }

        /// A walk of sorted keys that skips the prefixes the automaton cannot go on from finds
        /// exactly the keys it accepts, in order.
        #[test]
        fn a_walk_of_sorted_keys_finds_what_the_automaton_accepts(
            typed in "[abé]{1,7}",
            keys in proptest::collection::btree_set("[abéz]{0,9}", 0..60),
            edits in 1u8..=2,
            word_edits in 1u8..=2,
        ) {
            let reach = Reach::new(edits, word_edits.max(edits));
            let automaton = TypoAutomaton::new(&typed, reach).unwrap();
            let map: std::collections::BTreeMap<Vec<u8>, usize> =
                keys.iter().enumerate().map(|(i, k)| (k.as_bytes().to_vec(), i)).collect();
            let walked: Vec<&str> = accepted_in(&map, &automaton).into_iter().map(|(k, _)| k).collect();
            let mut expected: Vec<&str> = keys.iter().map(String::as_str).filter(|k| automaton.accepts(k)).collect();
            expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            proptest::prop_assert_eq!(walked, expected);
        }
    }
}
