//! Text analysis for BM25 in any language a catalog holds: the `hyrank` tokenizer.
//!
//! tantivy's default chain (`SimpleTokenizer`, `RemoveLongFilter(40)`, `LowerCaser`) splits on
//! anything that is not alphanumeric and silently drops tokens over 40 bytes. A run of CJK
//! characters has no spaces, so it became one token: at 14 characters it passed 40 bytes and
//! was not indexed at all, and below that a query for one word of it ("帐篷" in "轻量级帐篷")
//! could never match. This chain, in order:
//!
//! 1. **NFKC normalisation and lower-casing**, which folds width: full-width "ＴＥＮＴ" and
//!    half-width katakana become their ordinary forms (`unicode-normalization`).
//! 2. **Diacritic folding**: the nonspacing marks after Latin, Greek, Cyrillic, Arabic and
//!    Hebrew letters are removed (canonical decomposition first), so "café" matches "cafe"
//!    and "الْجِبَال" matches "الجبال", the way people type. The Arabic tatweel (kashida), a
//!    stretching stroke, goes too. Marks in other scripts are kept: in Devanagari or Thai
//!    they are vowels, and removing them would merge different words. Under the
//!    joined-words revision this step runs after the stop words, beside the stemmer
//!    ([`FoldDiacritics`], [`FoldAndStem`]), and the Cyrillic breve stays ("й" is a letter).
//! 3. **Unicode word segmentation** (UAX #29, `unicode-segmentation`): words, numbers and
//!    runs of CJK characters; punctuation and spaces separate them. Symbols that carry
//!    meaning on their own ("+", "€") are kept as one-character terms ("#" and "&" are
//!    punctuation to Unicode, and go).
//! 4. **CJK bigrams**, as Lucene's `CJKBigramFilter` does: a run of Han, Hiragana, Katakana or
//!    Hangul becomes its overlapping pairs ("轻量级帐篷" → 轻量 量级 级帐 帐篷), so any word of
//!    two characters or more inside a run is found. A lone CJK character stays a unigram.
//! 5. **Over-long tokens are split**, not dropped: a token longer than [`MAX_TOKEN_CHARS`]
//!    characters becomes consecutive pieces of that length (Lucene's `StandardTokenizer` cuts
//!    at 255 the same way). [`long_tokens`] counts them so the indexer can report them.
//! 6. **Joined words** ([`Revision::Joined`]): a word that holds punctuation ("l'avion",
//!    "don’t", "U.S.A", "col·lecció") is indexed as its parts of two characters or more and
//!    as all its parts written together ("avion", "lavion"); punctuation between two digits
//!    stays, as in "2.5" and "1,000". Words joined by a hyphen, or by an accent or backtick
//!    typed for an apostrophe ("T-shirt", "COVID-19", "don´t"), add the whole written
//!    together ("tshirt", "covid19", "dont"), except numbers ("3-4" is a range, not 34).
//!    Soft hyphens and invisible joiners are dropped and a zero-width non-joiner separates
//!    parts (Persian "می‌خواهم" meets "میخواهم"). People type such words all these ways:
//!    "avion" must find "l'avion", "tshirt" must find "T-Shirt", "dont" must find "don’t",
//!    whichever apostrophe the catalog used. Similar to Lucene's `WordDelimiterGraphFilter`
//!    with `catenateAll`, which splits more (at letters beside digits, at case changes).
//! 7. **Letters beside digits** ([`Revision::Alphanumeric`]): a word that runs letters and
//!    digits together ("3.5mm", "500ml", "iPhone15", "USB3", "갤럭시S24") is also indexed as
//!    its runs of digits and its runs of two letters or more ("3.5" "mm", "iphone" "15", "usb"
//!    "3", "갤럭시" "24"), so that "3.5 mm" finds "3.5mm" and "iphone15" finds "iPhone 15".
//!    Lucene's `WordDelimiterGraphFilter` (`splitOnNumerics`) splits at the same places but
//!    keeps one-letter runs and splits "3.5" too; here a number keeps its decimal and
//!    thousands separators, and words past 64 characters or 4 runs (codes, hashes) are not
//!    split. Under this revision only those separators keep a number whole in step 6
//!    ("x86_64" is "x86" and "64").
//!
//! The same revision lower-cases Turkish catalogs the Turkish way ("I" is "ı", "İ" is "i", as
//! Lucene's `TurkishLowerCaseFilter` does), so that the stemmer reads "KİTAPLARI" as
//! "kitapları", and folds "ı" to "i" in step 2 as people type it on other keyboards
//! ("Kadıköy" meets "kadikoy").
//!
//! The folded-letters revision ([`Revision::FoldedLetters`]) also folds in step 2 the Latin
//! letters that have no decomposition, which removing marks cannot reach, as Lucene's
//! `ASCIIFoldingFilter` does: "ß" is "ss", "æ" "ae", "œ" "oe", "ø" "o", "ł" "l", "đ" and "ð"
//! "d", "þ" "th", "ħ" "h", "ŧ" "t". So "lodz" finds "Łódź", "coeur" "cœur", "kobenhavn"
//! "København" and "strasse" "Straße", as people type them on other keyboards. German catalogs
//! also fold "ae", "oe" and "ue" typed for the umlauts, as Lucene's `GermanAnalyzer` does
//! ([`Spelling::German`]): "oesterreich" finds "Österreich".
//!
//! The segmented revision ([`Revision::Segmented`]) finds words where no space marks them.
//! UAX #29 leaves Thai, Lao, Khmer and Myanmar (and the Tai scripts) letter by letter, so a
//! Thai query matched any item holding its letters in any order. Their runs are now cut into
//! words by ICU's dictionaries (`icu_segmenter`, the segmenter ICU4X ships and Lucene's
//! `ICUTokenizer` uses the same data for), in step 3. And in step 4 an indexed run of CJK
//! characters gives each character alone as well as its pairs, so that a query of one
//! character ("鞋", shoes; Korean "책" in "책을") finds the runs that hold it, as
//! Elasticsearch's `cjk_bigram` filter does with `output_unigrams`. Queries keep reading a run
//! as pairs only (the search analyzer, [`UnicodeTokenizer::search`]): a pair is the precise
//! evidence, and its characters alone would match half the catalog. Danish and Norwegian
//! catalogs fold "aa", "ae" and "oe" typed for "å", "æ" and "ø" ([`Spelling::Nordic`]).
//!
//! The invisible-marks revision ([`Revision::Ignorables`]) drops in step 1 the characters
//! Unicode says no text shows (its Default_Ignorable_Code_Point property, `icu_properties`):
//! the left-to-right and right-to-left marks and isolates that right-to-left interfaces put
//! around words, the zero-width joiner, variation selectors. UAX #29 keeps them inside the
//! word before them, so "tent" typed with a trailing mark (U+200E) was the term "tent\u{200e}"
//! and found nothing. NFKC_Casefold, which Lucene's ICU folding applies, drops them the same
//! way. The zero-width space and non-joiner stay: they separate words and parts (steps 3, 6).
//!
//! Stop words and stems are the catalog's language's (`lexical::Language`,
//! `lexical/analyzers.rs`). Under the later revisions: steps 1 and 3 to 7, the stop
//! words (their lists keep accents), then step 2 with the stemmer, which indexes each word's
//! stem both ways, folded then stemmed and stemmed then folded ([`FoldAndStem`]). Under the
//! first revision, English only, after the whole chain.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use unicode_categories::UnicodeCategories;
use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation;

mod chars;
pub(crate) mod fold;
mod scripts;

pub(crate) use chars::is_cjk;
use chars::{in_number, is_decimal_digit, is_punctuation_or_invisible, normalize, parts};
use scripts::{bigrams, is_complex_context_segment, push_words, ZERO_WIDTH_SPACE};

pub use fold::{fold_diacritics, FoldAndStem, FoldDiacritics, FoldingStream, FoldingTokenizer, Spelling};

/// Longest token kept whole, in characters.
pub const MAX_TOKEN_CHARS: usize = 255;

/// Which steps of the chain run. Each revision is registered under names of its own (see
/// `lexical`): tantivy keeps a tokenizer's name in an index's schema, and an index must be
/// read with the analysis it was built with, so generations built before a revision keep it.
/// Later revisions compare greater and run every step the earlier ones do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Revision {
    /// Steps 1 to 5: what generations built before joined words read with.
    First,
    /// Steps 1 to 6: what generations built before letters beside digits read with.
    Joined,
    /// Steps 1 to 7, Turkish casing and "ı" folded: what generations built before folded
    /// letters read with.
    Alphanumeric,
    /// As [`Revision::Alphanumeric`], and step 2 folds the Latin letters that have no
    /// decomposition ("ß", "æ", "œ", "ø", "ł", "đ"…; see [`fold_diacritics`]) and, in German,
    /// the umlauts typed as "ae", "oe", "ue" ([`Spelling::German`]): what generations built
    /// before segmented words read with.
    FoldedLetters,
    /// As [`Revision::FoldedLetters`], and Thai, Lao, Khmer and Myanmar runs cut into words by
    /// dictionary (step 3), CJK characters indexed alone besides their pairs (step 4), and the
    /// Danish and Norwegian pairs ([`Spelling::Nordic`]): what generations built before
    /// invisible marks were dropped read with.
    Segmented,
    /// As [`Revision::Segmented`], and step 1 drops Unicode's default-ignorable code points
    /// (direction marks and isolates, the zero-width joiner, variation selectors…), as
    /// NFKC_Casefold does, except the zero-width space and non-joiner, which separate words and
    /// parts: what new generations are built with.
    #[default]
    Ignorables,
}

impl Revision {
    /// Every revision, oldest first: what an index on disk may have been built with.
    pub const ALL: [Revision; 6] = [
        Revision::First,
        Revision::Joined,
        Revision::Alphanumeric,
        Revision::FoldedLetters,
        Revision::Segmented,
        Revision::Ignorables,
    ];
}

/// The `hyrank` tokenizer (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnicodeTokenizer {
    /// The chain's steps.
    pub revision: Revision,
    /// The language's elided articles (French "l", "d", "qu"…), under the joined-words
    /// revision: "d'une" is then "une" alone, not also "dune" (see [`FRENCH_ELISIONS`]).
    pub elisions: &'static [&'static str],
    /// Lower-case "I" to "ı" and "İ" to "i" (`lexical::Language::Turkish` sets it), under
    /// [`Revision::Alphanumeric`].
    pub dotted_i: bool,
    /// The search analyzer, which reads queries: under [`Revision::Segmented`] a run of CJK
    /// characters is its pairs only, where an item's text also gives each character alone
    /// (step 4). Earlier revisions read queries as items.
    pub search: bool,
}

/// The articles French elides before a vowel, as Lucene's `FrenchAnalyzer` lists them.
pub const FRENCH_ELISIONS: &[&str] =
    &["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"];

/// The articles and prepositions Italian elides before a vowel, as Lucene's
/// `ItalianAnalyzer` lists them.
pub const ITALIAN_ELISIONS: &[&str] = &[
    "c", "l", "all", "dall", "dell", "nell", "sull", "coll", "pell", "gl", "agl", "dagl", "degl", "negl", "sugl", "un",
    "m", "t", "s", "v", "d",
];

/// The tokens of one text, produced eagerly.
pub struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for UnicodeTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream { tokens: analyze_with(text, self).0, next: 0 }
    }
}

/// Words of `text` longer than [`MAX_TOKEN_CHARS`] characters, each indexed as pieces (CJK
/// runs, which become pairs, are not counted; nor are the parts, compounds and runs steps 6 and 7
/// add).
pub fn long_tokens(text: &str) -> usize {
    analyze(text, Revision::default()).1
}

/// Words joined so far by hyphens or other joiners ([`is_joiner`], step 6): where the first
/// began and the last ended, and the parts of all of them written together.
struct Compound {
    from: usize,
    to: usize,
    text: String,
    words: usize,
}

/// The tokens and the count of over-long words split, as an item's text is indexed.
fn analyze(text: &str, revision: Revision) -> (Vec<Token>, usize) {
    analyze_with(text, &UnicodeTokenizer { revision, ..UnicodeTokenizer::default() })
}

/// [`analyze`] with a language's elided articles (step 6) and casing, for items or queries.
fn analyze_with(text: &str, tokenizer: &UnicodeTokenizer) -> (Vec<Token>, usize) {
    let UnicodeTokenizer { revision, elisions, dotted_i, search } = *tokenizer;
    let mut long = 0;
    let mut out = Vec::new();
    let joined = revision >= Revision::Joined;
    let split_digits = revision >= Revision::Alphanumeric;
    let segmented = revision >= Revision::Segmented;
    let mut compound: Option<Compound> = None;
    // The end of a joiner that directly follows the compound: a word starting there extends
    // it.
    let mut joiner_to = None;
    // The run of Thai, Lao, Khmer or Myanmar segments so far (byte range), cut into words
    // when it ends.
    let mut complex: Option<(usize, usize)> = None;
    // A segment's characters, normalized: one buffer for all of them.
    let mut chars: Vec<char> = Vec::new();
    for (start, segment) in text.split_word_bound_indices() {
        let end = start + segment.len();
        // A zero-width space inside a run of Thai, Lao, Khmer or Myanmar belongs to the run.
        let inside_run = segment.chars().eq([ZERO_WIDTH_SPACE]) && complex.is_some_and(|run| run.1 == start);
        if segmented && (inside_run || is_complex_context_segment(segment)) {
            // A run ends any compound, as a word that does not extend it does.
            end_compound(&mut out, &mut compound);
            joiner_to = None;
            match complex.as_mut() {
                Some(run) if run.1 == start => run.1 = end,
                _ => {
                    if let Some(run) = complex.replace((start, end)) {
                        long += push_words(&mut out, text, run, revision, dotted_i);
                    }
                }
            }
            continue;
        }
        if let Some(run) = complex.take() {
            long += push_words(&mut out, text, run, revision, dotted_i);
        }
        if joined && is_joiner(segment) && compound.as_ref().is_some_and(|c| c.to == start) {
            joiner_to = Some(end);
            continue;
        }
        // Spaces and ASCII punctuation, most of a text's segments, are blank as written:
        // they end a compound and a joiner's reach, as any blank segment below does, without
        // being normalized first.
        if segment.is_ascii() && segment.chars().all(|c| c.is_whitespace() || is_punctuation_or_invisible(c)) {
            end_compound(&mut out, &mut compound);
            joiner_to = None;
            continue;
        }
        let normalized = normalize(segment, revision, dotted_i);
        chars.clear();
        chars.extend(normalized.chars());
        let chars = &chars[..];
        let Some(&first) = chars.first() else { continue };
        let blank = chars.iter().all(|c| c.is_whitespace() || is_punctuation_or_invisible(*c));
        let symbol = chars.len() == 1 && !first.is_alphanumeric();
        // UAX #29 gives each ideograph its own segment; runs are gathered in step 4.
        let cjk = chars.iter().all(|&c| is_cjk(c));
        let word = !blank && !symbol && !cjk;
        // "3-4" is a range, not 34: numbers on both sides of a joiner stay apart.
        let extends = word
            && joiner_to == Some(start)
            && !(first.is_numeric() && compound.as_ref().is_some_and(|c| c.text.ends_with(char::is_numeric)));
        if !extends {
            end_compound(&mut out, &mut compound);
        }
        joiner_to = None;
        if blank {
            continue;
        }
        if cjk {
            // Whole, however long: step 4 pairs the run's characters.
            push(&mut out, start, end, normalized);
            continue;
        }
        long += usize::from(chars.len() > MAX_TOKEN_CHARS);
        if !word || !joined {
            push_cut(&mut out, start, end, &chars);
            continue;
        }
        // Step 6: the parts between punctuation (one character alone, the "l" of "l'avion",
        // says nothing), then, if there are several, all of them written together.
        let mut parts = parts(&chars, revision);
        // An elided article ("d'", "l'", "qu'") is no part of the word: "d'une" is "une",
        // where "dune" would meet the dunes.
        let apostrophe = chars.get(parts[0].len()).is_some_and(|c| matches!(c, '\'' | '’'));
        if parts.len() > 1 && apostrophe && elisions.contains(&parts[0].iter().collect::<String>().as_str()) {
            parts.remove(0);
        }
        let together: String = parts.concat().into_iter().collect();
        // Each part, then (step 7) its runs of letters and of digits where it mixes them.
        let push_part = |out: &mut Vec<Token>, part: &[char]| {
            push_cut(out, start, end, part);
            if split_digits {
                for run in alphanumeric_runs(part) {
                    push_cut(out, start, end, run);
                }
            }
        };
        if parts.len() == 1 {
            push_part(&mut out, parts[0]);
        } else {
            for part in parts.iter().filter(|p| p.len() > 1) {
                push_part(&mut out, part);
            }
            push_cut(&mut out, start, end, &together.chars().collect::<Vec<_>>());
        }
        match compound.as_mut() {
            Some(c) if extends => {
                c.text.push_str(&together);
                c.to = end;
                c.words += 1;
            }
            _ => compound = Some(Compound { from: start, to: end, text: together, words: 1 }),
        }
    }
    if let Some(run) = complex {
        long += push_words(&mut out, text, run, revision, dotted_i);
    }
    end_compound(&mut out, &mut compound);
    (bigrams(out, segmented && !search, text), long)
}

/// Ends the words joined so far: written together, they are a term when there were several.
fn end_compound(out: &mut Vec<Token>, compound: &mut Option<Compound>) {
    if let Some(c) = compound.take().filter(|c| c.words > 1) {
        push_cut(out, c.from, c.to, &c.text.chars().collect::<Vec<_>>());
    }
}

/// Pushes a term as the next token.
fn push(out: &mut Vec<Token>, from: usize, to: usize, text: String) {
    let position = out.len();
    out.push(Token { offset_from: from, offset_to: to, position, text, position_length: 1 });
}

/// Pushes a term cut into pieces of at most [`MAX_TOKEN_CHARS`] characters (step 5).
pub(super) fn push_cut(out: &mut Vec<Token>, from: usize, to: usize, chars: &[char]) {
    for piece in chars.chunks(MAX_TOKEN_CHARS) {
        push(out, from, to, piece.iter().collect());
    }
}

/// Longest part, in characters, that step 7 splits: longer ones are codes or hashes
/// ("3f9a0c…"), whose pieces would add only noise, and a 70,000-character "a1a1…" would
/// otherwise add 35,000 terms.
const MAX_SPLIT_CHARS: usize = 64;

/// Most runs a part may have for step 7 to split it ("gtx1080ti" has 3), for the same reason.
const MAX_SPLIT_RUNS: usize = 4;

/// What a character of a part is, for step 7. Letters say whether they are CJK, so that
/// "갤럭시s24" splits at the "s" and its Hangul run is paired by step 4; other scripts are
/// not told apart, since a unit mixes them ("5µm" is NFKC "5μm", a Greek and a Latin letter).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    Digits,
    /// CJK letters (true) or any other.
    Letters(bool),
    Other,
}

/// Step 7: the runs of a part that holds both a decimal digit and a letter, split where
/// digits meet letters or CJK letters meet others: its digit runs, whatever their length ("3"
/// of "usb3" is the model, "53" of "p53" the protein's), and its letter runs of two letters
/// or more ("p" of "p53" says nothing alone). A number's separator belongs to it ("3.5" of
/// "3.5mm"); marks and invisible format characters belong to the run before them. Empty when
/// there is nothing to split, or when the part is past [`MAX_SPLIT_CHARS`] or
/// [`MAX_SPLIT_RUNS`].
fn alphanumeric_runs(part: &[char]) -> Vec<&[char]> {
    // Most words hold no digit: they leave before any run is built.
    if part.len() > MAX_SPLIT_CHARS || !part.iter().any(|&c| is_decimal_digit(c)) {
        return Vec::new();
    }
    // (kind, from, to, letters)
    let mut runs: Vec<(Run, usize, usize, usize)> = Vec::new();
    for (i, &c) in part.iter().enumerate() {
        let kind = if is_decimal_digit(c) || in_number(part, i, Revision::Alphanumeric) {
            Run::Digits
        } else if is_combining_mark(c) || c.is_other_format() {
            match runs.last_mut() {
                Some(last) => {
                    last.2 = i + 1;
                    continue;
                }
                None => Run::Other,
            }
        } else if c.is_alphabetic() {
            Run::Letters(is_cjk(c))
        } else {
            Run::Other
        };
        let letter = usize::from(matches!(kind, Run::Letters(_)));
        match runs.last_mut() {
            Some(last) if last.0 == kind => {
                last.2 = i + 1;
                last.3 += letter;
            }
            _ => runs.push((kind, i, i + 1, letter)),
        }
    }
    let digits = runs.iter().any(|r| r.0 == Run::Digits);
    let letters = runs.iter().any(|r| r.3 > 0);
    if !digits || !letters || runs.len() > MAX_SPLIT_RUNS {
        return Vec::new();
    }
    runs.into_iter().filter(|r| r.0 == Run::Digits || r.3 > 1).map(|r| &part[r.1..r.2]).collect()
}

/// A segment that joins the words on its two sides when it touches both: a hyphen
/// (hyphen-minus, Unicode's hyphen and non-breaking hyphen, the small and full-width
/// hyphen-minus, the minus sign, Hebrew's maqaf), or an acute accent, backtick or prime typed
/// for an apostrophe ("don´t"). Dashes (–, —) separate words rather than join them.
fn is_joiner(segment: &str) -> bool {
    let mut chars = segment.chars();
    matches!(
        (chars.next(), chars.next()),
        (
            Some(
                '-' | '\u{2010}'
                    | '\u{2011}'
                    | '\u{FE63}'
                    | '\u{FF0D}'
                    | '\u{2212}'
                    | '\u{05BE}'
                    | '\u{00B4}'
                    | '`'
                    | '\u{2032}'
            ),
            None
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The terms of `text` under the current revision, diacritics folded, neither stemmed nor
    /// stop words dropped (what the `hyrank5_en` analyzer indexes).
    pub(super) fn terms(text: &str) -> Vec<String> {
        analyze(text, Revision::default())
            .0
            .into_iter()
            .map(|t| fold_diacritics(&t.text, Revision::default()))
            .collect()
    }

    /// The terms a query reads as, under the current revision (the search analyzer).
    pub(super) fn query_terms(text: &str) -> Vec<String> {
        analyze_with(text, &UnicodeTokenizer { search: true, ..Default::default() })
            .0
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn diacritics_and_width_fold_where_they_are_accents() {
        assert_eq!(terms("الْجِبَال"), terms("الجبال"));
        assert_eq!(terms("الجـــبال"), terms("الجبال"), "tatweel");
        assert_eq!(terms("Café Crème"), ["cafe", "creme"]);
        assert_eq!(terms("ＴＥＮＴ ２０２４"), ["tent", "2024"]);
        assert_eq!(terms("Ἀθῆναι"), terms("Αθηναι"));
        assert_eq!(terms("ΚΑΦΕΣ"), terms("καφές"), "final sigma");
        // Devanagari vowel signs are letters of the word, not accents: kept.
        assert_ne!(terms("किताब"), terms("कतब"));
    }

    #[test]
    fn words_joined_by_punctuation_are_indexed_as_parts_and_written_together() {
        assert_eq!(terms("L'avion"), ["avion", "lavion"]);
        // With French's elided articles (the French analyzers), the article goes whole.
        let french = |text: &str| -> Vec<String> {
            analyze_with(text, &UnicodeTokenizer { elisions: FRENCH_ELISIONS, ..Default::default() })
                .0
                .into_iter()
                .map(|t| t.text)
                .collect()
        };
        assert_eq!(french("L'avion d’une île, qu'il"), ["avion", "une", "île", "il"]);
        assert_eq!(french("aujourd'hui"), ["aujourd", "hui", "aujourdhui"], "not an article");
        let italian: Vec<String> =
            analyze_with("dell'acqua l'ago", &UnicodeTokenizer { elisions: ITALIAN_ELISIONS, ..Default::default() })
                .0
                .into_iter()
                .map(|t| t.text)
                .collect();
        assert_eq!(italian, ["acqua", "ago"]);
        assert_eq!(terms("l’avion"), terms("l'avion"), "the typographic apostrophe");
        assert_eq!(terms("don’t"), ["don", "dont"]);
        assert_eq!(terms("мʼясо"), terms("м'ясо"), "the modifier letter apostrophe");
        assert_eq!(terms("м'ясо"), ["ясо", "мясо"]);
        assert_eq!(terms("Hawaiʻi"), ["hawai", "hawaii"], "the ʻokina");
        assert_eq!(terms("U.S.A."), ["usa"]);
        assert_eq!(terms("col·lecció"), ["col", "leccio", "colleccio"]);
        assert_eq!(terms("می\u{200C}خواهم"), ["می", "خواهم", "میخواهم"], "ZWNJ");
        assert_eq!(terms("Ex\u{00AD}ample"), ["example"], "soft hyphen");
        // Between two digits of any script, punctuation belongs to the number.
        assert_eq!(terms("1,000 and 2.5mg"), ["1,000", "and", "2.5mg", "2.5", "mg"]);
        assert_eq!(terms("٢٫٥").len(), 1, "Arabic-Indic digits");
        assert_eq!(terms("T-Shirt"), ["t", "shirt", "tshirt"]);
        assert_eq!(terms("T‑Shirt"), terms("T-Shirt"), "the non-breaking hyphen");
        assert_eq!(terms("COVID-19 test"), ["covid", "19", "covid19", "test"]);
        assert_eq!(terms("A4-size"), ["a4", "4", "size", "a4size"]);
        assert_eq!(terms("state-of-the-art"), ["state", "of", "the", "art", "stateoftheart"]);
        assert_eq!(terms("x-ray's"), ["x", "ray", "rays", "xrays"]);
        for typed in ["don´t", "don`t"] {
            assert_eq!(terms(typed), ["don", "t", "dont"], "{typed}");
        }
        // A hyphen between numbers, with a space beside it, a dash, or a symbol between
        // words joins nothing; nor does a hyphen at either end.
        assert_eq!(terms("3-4 person"), ["3", "4", "person"]);
        assert_eq!(terms("1990-2000"), ["1990", "2000"]);
        assert_eq!(terms("T - shirt"), ["t", "shirt"]);
        assert_eq!(terms("T -shirt"), ["t", "shirt"]);
        assert_eq!(terms("T--shirt"), ["t", "shirt"]);
        assert_eq!(terms("-shirt-"), ["shirt"]);
        assert_eq!(terms("1990–2000"), ["1990", "2000"]);
        assert_eq!(terms("a+b"), ["a", "+", "b"]);
        assert_eq!(query_terms("MSR-テント"), ["msr", "テン", "ント"]);
        // The first revision, which older generations read with, keeps such words whole.
        let first: Vec<String> =
            analyze("l'avion T-shirt мʼясо ex\u{00AD}ample", Revision::First).0.into_iter().map(|t| t.text).collect();
        assert_eq!(first, ["l'avion", "t", "shirt", "мʼясо", "ex\u{00AD}ample"]);
        // The first revision folds the Cyrillic breve, as it always did; the joined one keeps it.
        let (first, _) = analyze("Война", Revision::First);
        assert_eq!(first[0].text, "воина");
        assert_eq!(terms("Война"), ["война"]);
    }

    #[test]
    fn letters_beside_digits_are_also_indexed_apart() {
        assert_eq!(terms("3.5mm jack"), ["3.5mm", "3.5", "mm", "jack"]);
        assert_eq!(terms("iPhone15"), ["iphone15", "iphone", "15"]);
        assert_eq!(terms("USB3 500ml"), ["usb3", "usb", "3", "500ml", "500", "ml"]);
        assert_eq!(terms("٣كغ"), ["3كغ", "3", "كغ"], "Arabic-Indic digits, written as ASCII's");
        assert_eq!(terms("p53 H1N1"), ["p53", "53", "h1n1", "1", "1"], "one letter alone says nothing");
        assert_eq!(terms("USB3-C"), ["usb3", "usb", "3", "c", "usb3c"], "a part's runs, not the compound's");
        // CJK letters meet others: the Hangul word, bigrammed as step 4 does, and the number;
        // other scripts stay together ("µ" is NFKC Greek "μ").
        assert_eq!(query_terms("갤럭시S24"), ["갤럭시s24", "갤럭", "럭시", "24"]);
        assert_eq!(terms("5µm 10kΩ"), ["5μm", "5", "μm", "10kω", "10", "kω"]);
        // A combining mark belongs to its letter: "q̃uiz", not "q", a mark and "uiz".
        assert_eq!(terms("q\u{303}uiz2"), ["quiz2", "quiz", "2"]);
        // Only a decimal or thousands separator keeps a number whole.
        assert_eq!(terms("x86_64"), ["x86", "86", "64", "x8664"]);
        assert_eq!(terms("1'299"), ["299", "1299"]);
        // Nothing added: one kind only, digits that are not decimal ("½" is "1⁄2"), a
        // keycap's marks, a code too long or with too many runs.
        let (code, long) = ("ab1".repeat(30), format!("{}1", "a".repeat(70)));
        for word in ["2024", "1,000", "tent", "½", "1️⃣", "ab12cd34ef", &code, &long] {
            assert_eq!(terms(word).len(), 1, "{word}: {:?}", terms(word));
        }
        let at_cap = format!("{}12", "a".repeat(62));
        assert_eq!(terms(&at_cap), [at_cap.clone(), "a".repeat(62), "12".into()], "64 characters still split");
        let (tokens, _) = analyze(&"a1".repeat(35_000), Revision::default());
        assert_eq!(tokens.len(), 70_000usize.div_ceil(MAX_TOKEN_CHARS), "no run of a 70,000-character code");
    }

    /// What generations built under [`Revision::Joined`] keep reading with: step 7 off, any
    /// punctuation between two digits of any script inside a number.
    #[test]
    fn the_joined_revision_keeps_its_terms() {
        let joined = |text: &str| -> Vec<String> {
            analyze(text, Revision::Joined).0.into_iter().map(|t| fold_diacritics(&t.text, Revision::Joined)).collect()
        };
        let table: &[(&str, &[&str])] = &[
            ("3.5mm iPhone15", &["3.5mm", "iphone15"]),
            ("A4-size", &["a4", "size", "a4size"]),
            ("1,000 and 2.5mg", &["1,000", "and", "2.5mg"]),
            ("x86_64", &["x86_64"]),
            ("ᛮ.ᛯ", &["ᛮ.ᛯ"]), // Runic numbers: letters to UAX #29, numeric (Nl), not decimal
            ("COVID-19", &["covid", "19", "covid19"]),
            ("L'avion", &["avion", "lavion"]),
            ("Kadıköy KIR", &["kadıkoy", "kir"]),
        ];
        for (text, expected) in table {
            assert_eq!(joined(text), *expected, "{text}");
        }
    }

    #[test]
    fn turkish_lower_cases_its_own_i_and_the_dotless_i_folds() {
        let turkish = |text: &str| -> Vec<String> {
            analyze_with(text, &UnicodeTokenizer { dotted_i: true, ..Default::default() })
                .0
                .into_iter()
                .map(|t| t.text)
                .collect()
        };
        assert_eq!(turkish("KİTAPLARI Istanbul"), ["kitapları", "ıstanbul"]);
        assert_eq!(turkish("İI"), ["iı"]);
        let joined: Vec<String> =
            analyze_with("KIR", &UnicodeTokenizer { revision: Revision::Joined, dotted_i: true, ..Default::default() })
                .0
                .into_iter()
                .map(|t| t.text)
                .collect();
        assert_eq!(joined, ["kir"], "earlier revisions lower-case as Unicode does");
        assert_eq!(fold_diacritics("kadıköy", Revision::default()), "kadikoy");
        assert_eq!(fold_diacritics("kadıköy", Revision::Joined), "kadıkoy", "earlier revisions keep it");
    }

    #[test]
    fn latin_letters_without_a_decomposition_fold_as_keyboards_type_them() {
        let table = [
            ("Łódź", "lodz"),
            ("cœur", "coeur"),
            ("ŒUVRE", "oeuvre"),
            ("København", "kobenhavn"),
            ("Straße", "strasse"),
            ("GROẞ", "gross"),
            ("Ærø", "aero"),
            ("Þórsmörk", "thorsmork"),
            ("Đakovo", "dakovo"),
            ("Ħamrun", "hamrun"),
        ];
        for (text, folded) in table {
            assert_eq!(terms(text), [folded], "{text}");
        }
        // Marks after a folded letter are a Latin letter's, and fold too.
        assert_eq!(fold_diacritics("ø\u{0301}", Revision::default()), "o");
        for revision in [Revision::First, Revision::Joined, Revision::Alphanumeric] {
            assert_eq!(fold_diacritics("łódź straße", revision), "łodz straße", "{revision:?} keeps them");
        }
    }

    #[test]
    fn over_long_words_are_counted_once_and_cjk_runs_stay_whole() {
        assert_eq!(long_tokens(&format!("l'{}", "a".repeat(298))), 1);
        assert_eq!(long_tokens(&format!("{}'{}", "a".repeat(300), "b".repeat(300))), 1);
        assert_eq!(long_tokens(&vec!["ab"; 130].join("-")), 0, "a long compound is no long word");
        // A 256-character katakana run is one segment: its 255 pairs, under both revisions.
        let run = "ア".repeat(256);
        for revision in [Revision::First, Revision::Joined, Revision::Alphanumeric] {
            let (tokens, long) = analyze(&run, revision);
            assert_eq!((tokens.len(), long), (255, 0), "{revision:?}");
        }
    }

    #[test]
    fn symbols_stay_punctuation_goes_and_long_tokens_are_split_and_counted() {
        // "#" and "&" are punctuation in Unicode (Po); "+" (Sm) and "€" (Sc) are symbols.
        assert_eq!(terms("C++ & C#: 5€!"), ["c", "+", "+", "c", "5", "€"]);
        assert!(terms("!!! ... ¿?").is_empty());
        let long = "a".repeat(70_000);
        let pieces = terms(&long);
        assert_eq!(pieces.len(), 70_000usize.div_ceil(MAX_TOKEN_CHARS));
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_TOKEN_CHARS));
        assert_eq!(long_tokens(&format!("short {long} words")), 1);
        assert_eq!(long_tokens(&" ".repeat(300)), 0, "a run of spaces is no token");
    }
}
