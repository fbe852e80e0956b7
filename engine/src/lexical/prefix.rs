//! Search as you type: the query's last word, while it is still being typed, also read as the
//! beginning of the catalog's words ("hik" finds "hiking boots", "sleeping ba" finds
//! "sleeping bag"), as Meilisearch and Typesense read a query's last word, and Elasticsearch's
//! `match_bool_prefix` its last term.
//!
//! The index holds stems, and a word's beginning is often no beginning of its stem ("hikin"
//! of "hike", the stem of "hiking"), so completions come from a vocabulary of the words
//! themselves: the `words` field of the schema (`super::schema::Fields::words`; folded, not
//! stemmed, with document frequencies and no positions; the live rows keep theirs in memory).
//! The last word's beginning (folded as the catalog folds, e.g. "Hík" is "hik") is looked up
//! there; its completions, at most [`MAX_EXPANSIONS`], the most common first, are read by each
//! field's analysis (stemmed) and stand at the word's position as alternatives, an item
//! scoring the best (as for a word's stems and its typos, `super::terms`). A completion counts
//! as the word would, unscaled, as Elasticsearch's `match_bool_prefix` counts its prefix
//! clause: scaling each by the share of its word typed (`typed / length`, so that "tent" would
//! rank the tents above the tentative) lost 0.005–0.008 nDCG@10 on SciFact train's half- and
//! fifth-typed queries and gained nothing on finished words (docs/EVAL.md). All completions
//! are scored with the document frequency of the most common of them and of the word as typed,
//! as `super::fuzzy` blends a typo's readings: by its own idf a rare completion would outrank
//! the common word most likely meant ("headlamp the" found "Theory" before the headlamps).
//! The typed word's own reading keeps its own frequency. A word being typed that completes is
//! not also read as a typo: it is unfinished ("sleepi" is "sleeping", not "sleep" one edit
//! away). Counts order the completions: a live row counts while visible, a segment's word by
//! its document frequency (rows deleted since the build included, until the next build).
//!
//! A word is being typed when the query does not end in a space and its last character is one
//! of the word's (a query ending "hik." or "hik " reads "hik" as typed). Never completed: a
//! beginning under [`MIN_PREFIX_CHARS`] characters (one letter begins a tenth of a catalog's
//! words), a number ("20" is no beginning of "2024" a shopper means), and CJK text (already
//! read as overlapping pairs of characters, each a term).

use std::collections::HashMap;

use super::fuzzy::Visible;
use super::terms::{self, Fuzzy, QueryTerm, Reading};
use super::MAX_EXPANSIONS;
use crate::error::{Error, Result};

/// Whether BM25 reads the query's last word, while it is being typed, as the beginning of the
/// catalog's words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Prefix {
    /// Every word is read as typed (and as its typos, under `fuzziness`).
    #[default]
    Off,
    /// The last word, unless the query ends in a space or a punctuation mark, is also read as
    /// the catalog's words it begins (from 2 characters; the 50 most common).
    Last,
}

/// The fewest characters a beginning must have to be completed.
pub const MIN_PREFIX_CHARS: usize = 2;

impl super::LexicalIndex {
    /// `tokens` (the query's terms, as [`super::LexicalIndex::query_terms`] reads them) with,
    /// at the last word's position in each analysis group, the stems of the catalog's words
    /// its beginning completes to (see the module's docs).
    ///
    /// # Errors
    /// [`Error::Unavailable`] for a generation built before it kept its words (rebuilding it
    /// adds them); a failing read of the index's terms.
    pub(super) fn complete(
        &self,
        text: &str,
        tokens: Vec<(QueryTerm, u64)>,
        visible: &Visible<'_>,
    ) -> Result<Vec<(QueryTerm, u64)>> {
        let field = self.words_field()?;
        let Some(Beginning { word: last, typed, span }) = self.beginning(text) else { return Ok(tokens) };
        let key = (typed.clone(), visible.hidden_live_version());
        let found = visible.cached(|cache| &mut cache.beginnings, key, || self.completions(field, &typed, visible))?;
        let (completions, typed_n) = (&found.0, found.1);
        if completions.is_empty() {
            return Ok(tokens);
        }
        // As common as the most common reading, the word as typed included: "the" completing
        // to "theory" is scored as common as "the".
        let blended = completions.iter().map(|c| c.1).chain([typed_n]).max().unwrap_or(0);
        let typo =
            |t: &QueryTerm| t.word == last && matches!(t.fuzzy, Some(Fuzzy { reading: Reading::Typo { .. }, .. }));
        let mut out = Vec::with_capacity(tokens.len() + completions.len());
        let mut start = 0;
        for group in &self.groups {
            // The group's reading of the query (the groups' readings follow one another),
            // without the typos the word being typed was read as: it is unfinished, and its
            // completions say what it may become.
            let end = start + tokens[start..].iter().take_while(|t| t.1 == group.fields).count();
            let reading: Vec<(QueryTerm, u64)> = tokens[start..end].iter().filter(|(t, _)| !typo(t)).cloned().collect();
            let (position, insert) = place(&reading, last, span);
            let read: Vec<&str> =
                reading.iter().filter(|(t, _)| t.position == position).map(|(t, _)| t.text.as_str()).collect();
            // Each stem a completion is read as (its terms at its first position: "bm25", not
            // its runs "bm" and "25", which follow with the same offsets), once, in the
            // completions' order.
            let mut stems: Vec<String> = Vec::new();
            for (word, _) in completions {
                let terms = self.terms_of(group.analyser, word)?;
                let Some(first) = terms.first().map(|t| t.position) else { continue };
                for term in terms.iter().filter(|t| t.position == first && !t.dependent) {
                    if !read.contains(&term.text.as_str()) && !stems.contains(&term.text) {
                        stems.push(term.text.clone());
                    }
                }
            }
            out.extend_from_slice(&reading[..insert]);
            out.extend(stems.into_iter().map(|text| {
                let fuzzy = Fuzzy {
                    typed: typed.clone(),
                    reading: Reading::Completion,
                    boost: 1.0,
                    blended_n: blended,
                    word: None,
                    compared: None,
                };
                let (word, fuzzy) = (last, Some(fuzzy));
                (QueryTerm { text, word, lettered: true, dependent: false, position, span, fuzzy }, group.fields)
            }));
            out.extend_from_slice(&reading[insert..]);
            start = end;
        }
        out.extend_from_slice(&tokens[start..]);
        Ok(out)
    }

    /// The field of the catalog's words ([`super::schema::Fields::words`]).
    ///
    /// # Errors
    /// [`Error::Unavailable`] for a generation built before it kept them.
    pub(super) fn words_field(&self) -> Result<tantivy::schema::Field> {
        self.fields.words.ok_or_else(|| Error::Unavailable {
            what: "bm25.prefix".into(),
            reason: "this generation was built before hyrank kept a list of its words (2026-12-07); rebuild it \
                     with `hyrank index` to complete words as they are typed"
                .into(),
        })
    }

    /// The query's last word and its beginning as the words field holds words, if it is being
    /// typed and may be completed (see the module's docs).
    fn beginning(&self, text: &str) -> Option<Beginning> {
        if text.ends_with(char::is_whitespace) {
            return None;
        }
        let (last, (from, word)) = terms::words(text).enumerate().last()?;
        // The longest token that ends where the word does ("t-sh" is read as "tsh", not "sh").
        let mut typed: Option<(usize, String)> = None;
        for token in self.word_tokens(word) {
            if token.offset_to == word.len() && typed.as_ref().is_none_or(|t| token.offset_from < t.0) {
                typed = Some((token.offset_from, token.text));
            }
        }
        let (offset, typed) = typed?;
        let completable = typed.chars().count() >= MIN_PREFIX_CHARS
            && !terms::is_number(&typed)
            && !typed.chars().any(crate::analysis::is_cjk);
        let span = (from + offset, from + word.len());
        completable.then_some(Beginning { word: last as u32, typed, span })
    }

    /// The words of the catalog's visible segments and live rows that begin with `typed`
    /// (itself left out), each with the items holding it, the most common first, at most
    /// [`MAX_EXPANSIONS`]; and the items holding `typed` itself. A segment's count is its
    /// document frequency, rows hidden since the build included (until the next build); a live
    /// row counts while it is visible. The segments' part is kept for the generation's life
    /// (`super::cache`), a word it left out counted in full where a live row holds it.
    pub(super) fn completions(
        &self,
        field: tantivy::schema::Field,
        typed: &str,
        visible: &Visible<'_>,
    ) -> Result<Completions> {
        let segments = visible.segments_cached(
            |parts| &mut parts.beginnings,
            typed.to_string(),
            || segment_completions(field, typed, visible),
        )?;
        let (mut found, mut typed_n): (HashMap<String, u64>, u64) = (segments.0.iter().cloned().collect(), segments.1);
        let hidden = visible.hidden(visible.segments.len());
        for (word, docs) in visible.live.words_beginning(typed) {
            let shown = docs.iter().filter(|&&d| hidden.is_none_or(|h| !h.contains(d))).count() as u64;
            if word == typed {
                typed_n += shown;
                continue;
            }
            let n = match found.get(word) {
                Some(&n) => n,
                None => visible.segments_doc_freq(field, "words", word)?,
            };
            found.insert(word.to_string(), n + shown);
        }
        // A word only rows hidden since the build hold (their counts keep them until the next
        // build) completes to nothing a hit can show, and would take the word's typo reading
        // away (a user's test: "gaiter", its only item deleted, found nothing under `prefix`).
        // The kept part's 50 are all there is to choose from, so fewer may be left.
        let any_hidden = (0..=visible.segments.len()).any(|s| visible.hidden(s).is_some_and(|h| h.count > 0));
        let mut completions = Vec::new();
        for (word, n) in most_common(found.into_iter().filter(|w| w.1 > 0)) {
            if !any_hidden || !visible.holders_of_word(field, &word, 1)?.is_empty() {
                completions.push((word, n));
            }
        }
        Ok((completions, typed_n))
    }
}

/// The words of `visible`'s segments that begin with `typed` (itself left out), each with its
/// document frequency, the most common first, at most [`MAX_EXPANSIONS`]; and the document
/// frequency of `typed` itself.
///
/// # Errors
/// A failing read of the words' term dictionary.
fn segment_completions(field: tantivy::schema::Field, typed: &str, visible: &Visible<'_>) -> Result<Completions> {
    let mut found: HashMap<String, u64> = HashMap::new();
    for segment in visible.segments {
        let inverted = segment.inverted_index(field)?;
        let mut stream = inverted
            .terms()
            .range()
            .ge(typed.as_bytes())
            .into_stream()
            .map_err(|e| Error::io("reading the index's words", e))?;
        while stream.advance() {
            if !stream.key().starts_with(typed.as_bytes()) {
                break;
            }
            let Ok(word) = std::str::from_utf8(stream.key()) else { continue };
            *found.entry(word.to_string()).or_default() += u64::from(stream.value().doc_freq);
        }
    }
    let typed_n = found.remove(typed).unwrap_or(0);
    Ok((most_common(found.into_iter().filter(|w| w.1 > 0)), typed_n))
}

/// `found`, the most common first (then by text), at most [`MAX_EXPANSIONS`].
fn most_common(found: impl Iterator<Item = (String, u64)>) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64)> = found.collect();
    found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    found.truncate(MAX_EXPANSIONS);
    found
}

/// A beginning's completions (each word with the items holding it, the most common first) and
/// the items holding the beginning as typed.
pub(super) type Completions = (Vec<(String, u64)>, u64);

/// The word being typed ([`super::LexicalIndex::complete`]).
struct Beginning {
    /// Its place among the query's words ([`QueryTerm::word`]).
    word: u32,
    /// Its beginning as the words field holds words (folded, not stemmed).
    typed: String,
    /// The bytes of the query that beginning was read from.
    span: (usize, usize),
}

/// Where the completions of the word being typed (`last`, read from the bytes `span`) stand in
/// one group's `reading`: the position of its first term read from those same bytes ("bm2"
/// of "bm2", not its run "bm", which the analyzer gives the word's offsets too), else of its last term that is no dependent number, else (a word
/// the group's analysis drops, as a stop word) a new position after the others; and the index
/// after that position's run, where they go.
fn place(reading: &[(QueryTerm, u64)], last: u32, span: (usize, usize)) -> (u32, usize) {
    let of_word = |t: &QueryTerm| t.word == last && !t.dependent;
    // The first: a word's runs ("bm", "2") keep its offsets and follow it.
    let found = reading.iter().position(|(t, _)| of_word(t) && t.span == span);
    match found.or_else(|| reading.iter().rposition(|(t, _)| of_word(t))) {
        Some(k) => {
            let at = reading[k].0.position;
            // The run of alternatives at that position, wherever k stands in it.
            let first =
                reading[..k].iter().rposition(|(t, _)| !(t.position == at && !t.dependent)).map_or(0, |i| i + 1);
            let run = reading[first..].iter().take_while(|(t, _)| t.position == at && !t.dependent).count();
            (at, first + run)
        }
        None => (reading.iter().map(|(t, _)| t.position + 1).max().unwrap_or(0), reading.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Item;
    use crate::lexical::{Bm25Params, LexicalIndex};
    use std::sync::Arc;

    fn catalog() -> (tempfile::TempDir, LexicalIndex) {
        let titles = [
            ("boots", "Hiking boots"),
            ("bag", "Sleeping bag"),
            ("bar", "Energy bar"),
            ("tent", "Tent"),
            ("tentative", "Tentative plans"),
            ("lamp", "Lamp 12345"),
            ("cafe", "Café crème"),
        ];
        super::super::analyzers::tests::catalog_of(&titles)
    }

    const LAST: Bm25Params = Bm25Params { prefix: Prefix::Last, ..Bm25Params::TANTIVY };

    fn last() -> Bm25Params {
        Bm25Params { prefix: Prefix::Last, ..Bm25Params::default() }
    }

    fn ids(lexical: &LexicalIndex, query: &str, params: Bm25Params) -> Vec<u32> {
        lexical.search_with(query, 5, None, params).unwrap().iter().map(|h| h.0).collect()
    }

    /// The completions of `typed` over what is visible now (the segments' part as cached).
    fn completions_of(lexical: &LexicalIndex, typed: &str) -> Completions {
        let searcher = lexical.reader.searcher();
        let segments: Vec<&tantivy::SegmentReader> = searcher.segment_readers().iter().collect();
        let live = lexical.live.read().unwrap();
        let hidden = lexical.hidden_in(&segments, lexical.built(), &live).unwrap();
        let visible = lexical.visible(&segments, &live, hidden.as_deref());
        lexical.completions(lexical.fields.words.unwrap(), typed, &visible).unwrap()
    }

    /// A word only deleted rows hold is not completed to, and leaves the word's typo reading
    /// in place: "gaiter" (its one item deleted) finds the gaoter pouch, as without `prefix`
    /// (a user's test, 2026-12-07: nothing found).
    #[test]
    fn a_word_only_deleted_rows_hold_is_not_completed() {
        let titles = [("gaiters", "Gaiters"), ("pouch", "Gaoter pouch")];
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&titles);
        assert_eq!(completions_of(&lexical, "gai").0, [("gaiters".to_string(), 1)]);
        let item_at =
            |row: u32| Ok(super::super::analyzers::tests::titled(titles[row as usize].0, titles[row as usize].1));
        lexical.hide(std::sync::Arc::new([0].into_iter().collect()), (0, 1), item_at).unwrap();
        assert!(completions_of(&lexical, "gai").0.is_empty());
        assert_eq!(ids(&lexical, "gaiter", last()), [1]);
        assert_eq!(ids(&lexical, "gaiter", Bm25Params::default()), [1]);
    }

    fn score(lexical: &LexicalIndex, query: &str, item: u32, params: Bm25Params) -> Option<f32> {
        lexical.score_all(query, params).unwrap().into_iter().find(|h| h.0 == item).map(|h| h.1)
    }

    /// A word being typed finds the words it begins, through their stems ("hikin" is no
    /// beginning of "hike"), as the word would; a word followed by a space or a mark, a single
    /// letter and a number are read as typed, and a finished word keeps its own score.
    #[test]
    fn the_last_word_is_completed_while_it_is_typed() {
        let (_dir, lexical) = catalog();
        let off = Bm25Params::default();
        assert_eq!(ids(&lexical, "hik", last()), [0]);
        assert_eq!(ids(&lexical, "hikin", last()), [0], "the stem of hiking is hike");
        assert!(ids(&lexical, "hik", off).is_empty());
        // "hik" scores as "hiking" would (one item holds each: the same idf).
        let (begun, whole) = (score(&lexical, "hik", 0, last()).unwrap(), score(&lexical, "hiking", 0, off).unwrap());
        assert!((begun - whole).abs() < 1e-5, "{begun} is {whole}");
        assert_eq!(ids(&lexical, "sleeping ba", last()), [1, 2], "bag and bar, the sleeping bag first");
        assert_eq!(ids(&lexical, "energy ba", last()), [2, 1]);
        // Nothing completed: every item scores as with the option off.
        for typed in ["hik ", "hik.", "h", "123", "boots hik ", "boots hik."] {
            let scores = |params| {
                let mut all = lexical.score_all(typed, params).unwrap();
                all.sort_by_key(|h| h.0);
                all
            };
            assert_eq!(scores(last()), scores(off), "{typed:?}");
        }
        assert!(score(&lexical, "boots hik", 0, last()) > score(&lexical, "boots hik ", 0, last()), "completed");
        assert!(ids(&lexical, "123", last()).is_empty(), "a number is not completed");
        // A finished word scores as typed; the words it begins match too.
        assert_eq!(ids(&lexical, "tent", last()), [3, 4]);
        assert_eq!(score(&lexical, "tent", 3, last()), score(&lexical, "tent", 3, off));
        // Accents fold as the catalog's do; the tantivy preset's parameters alike.
        assert_eq!(ids(&lexical, "Caf", last()), [6]);
        assert_eq!(ids(&lexical, "crè", LAST), [6]);
        let tree = lexical.explain_with("hik", 0, last()).unwrap().unwrap();
        let text = format!("{tree:?}");
        assert!(text.contains("hike (completing \\\"hik\\\")"), "{text}");
        assert!((tree.value - f64::from(begun)).abs() < 1e-5);
    }

    /// Items written live are completed to as well; a generation built before the words were
    /// kept refuses a prefix and still answers without one.
    #[test]
    fn live_items_are_completed_to_and_old_generations_refuse() {
        let (_dir, mut lexical) = catalog();
        let stove = super::super::analyzers::tests::titled("stove", "Kestrel stove");
        lexical.add_live([(7, &stove)]).unwrap();
        assert_eq!(ids(&lexical, "kest", last()), [7]);
        assert_eq!(ids(&lexical, "stove kes", last()), [7]);
        lexical.fields.words = None;
        let error = lexical.score_all("kest", last()).unwrap_err();
        assert!(matches!(error, Error::Unavailable { .. }), "{error}");
        assert!(matches!(lexical.check(last()), Err(Error::Unavailable { .. })), "refused before any search runs");
        assert!(error.to_string().contains("rebuild"), "{error}");
        assert_eq!(ids(&lexical, "kestrel", Bm25Params::default()), [7]);
    }

    /// Cases a review found: a finished common word ("the") is not outranked by its rare
    /// completions ("theory"); a word with digits completes at its own place ("bm2" to
    /// "bm25", not beside its run "bm"); a word being typed is completed, not read as a typo
    /// ("sleepi" is "sleeping", not "sleep" one edit away at 0.8); a live row replaced since
    /// counts once.
    #[test]
    fn completions_stand_where_the_word_is_and_count_as_it_does() {
        let titles = [
            ("lamp", "The headlamp"),
            ("trail", "Headlamp for the trail"),
            ("book", "Theory"),
            ("mug", "The mug"),
            ("stove", "The stove"),
            ("tent", "The tent"),
            ("bm25", "BM25 explained"),
            ("handbook", "BM handbook"),
            ("bag", "Sleeping bag"),
        ];
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&titles);
        let top2 = |query: &str| ids(&lexical, query, last()).into_iter().take(2).collect::<Vec<_>>();
        assert_eq!(top2("headlamp the"), [0, 1], "the headlamps, not the theory book");
        assert_eq!(ids(&lexical, "bm2", last())[0], 6, "BM25 holds bm25 and bm, the handbook bm only");
        let off = Bm25Params::default();
        let (begun, whole) =
            (score(&lexical, "sleepi", 8, last()).unwrap(), score(&lexical, "sleeping", 8, off).unwrap());
        assert!((begun - whole).abs() < 1e-5, "{begun}: completed as sleeping ({whole}), not a typo of sleep");
        let text = format!("{:?}", lexical.explain_with("sleepi", 8, last()).unwrap().unwrap());
        assert!(text.contains("completing") && !text.contains("edit away"), "{text}");

        let stove = |row: u32| Item {
            id: format!("zephyr-{row}"),
            title: "Zephyrine stove".into(),
            text: String::new(),
            fields: Default::default(),
        };
        let (first, second) = (stove(9), stove(10));
        lexical.add_live([(9, &first)]).unwrap();
        lexical.add_live([(10, &second)]).unwrap();
        lexical.hide(Arc::new([9].into_iter().collect()), (0, 1), |row| Ok(stove(row))).unwrap();
        let (found, _) = completions_of(&lexical, "zep");
        assert_eq!(found, [("zephyrine".to_string(), 1)], "the replaced row no longer counts");
        // Hidden rows (no row added, the cache kept) are found by no completion.
        assert_eq!(ids(&lexical, "zep", last()), [10]);
        lexical.hide(Arc::new([9, 10].into_iter().collect()), (0, 2), |row| Ok(stove(row))).unwrap();
        assert!(ids(&lexical, "zep", last()).is_empty());
        assert_eq!(ids(&lexical, "zeph", last()), Vec::<u32>::new());
    }

    /// The most common completions are kept, at most [`MAX_EXPANSIONS`].
    #[test]
    fn a_short_beginning_keeps_the_most_common_words() {
        let letter = |i: usize| char::from(b'a' + (i % 26) as u8);
        let titles: Vec<(String, String)> =
            (0..60).map(|i| (format!("w{i}"), format!("pa{}{} pamm", letter(i / 26), letter(i)))).collect();
        let titles: Vec<(&str, &str)> = titles.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (_dir, lexical) = super::super::analyzers::tests::catalog_of(&titles);
        let (found, _) = completions_of(&lexical, "pa");
        assert_eq!(found.len(), MAX_EXPANSIONS);
        assert!(found.windows(2).all(|w| w[0].1 >= w[1].1), "the most common first");
        assert_eq!(found[0], ("pamm".to_string(), 60), "held by every title");
    }
}
