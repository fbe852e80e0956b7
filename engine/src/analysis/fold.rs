//! Step 2 and the stemmer as tantivy token filters: what runs after the stop words, from the
//! joined-words revision on (the first revision folds inside the tokenizer).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};

use super::Revision;

/// Whether a nonspacing mark after a letter of `script` is a diacritic to fold away.
fn folds_marks(script: Script) -> bool {
    matches!(script, Script::Latin | Script::Greek | Script::Cyrillic | Script::Arabic | Script::Hebrew)
}

/// Step 2: the nonspacing marks after letters of the scripts where they are accents removed
/// (canonical decomposition first, recomposed after). Under the joined-words revision the
/// Cyrillic breve stays: "й" and "ў" are letters of their own, not "и" and "у" with an accent
/// (Snowball's Russian stemmer needs the "й" of "-ый"), where "ё" is "е" as people type it.
/// Under [`Revision::Alphanumeric`] the dotless "ı" folds to "i" too: it has no
/// decomposition, and keyboards without it type "i". Under [`Revision::FoldedLetters`] so do
/// the other Latin letters that have none, as Lucene's `ASCIIFoldingFilter` folds them
/// ([`folded_letter`]): "łódź" is "lodz", "cœur" "coeur", "straße" "strasse".
pub fn fold_diacritics(text: &str, revision: Revision) -> String {
    // ASCII holds no mark and no "ı", and is its own NFD and NFC form.
    if text.is_ascii() {
        return text.to_string();
    }
    fold_unicode(text, revision)
}

/// [`fold_diacritics`] for any text.
fn fold_unicode(text: &str, revision: Revision) -> String {
    let mut out = String::with_capacity(text.len());
    let mut base = Script::Common;
    for c in text.nfd() {
        if c == 'ı' && revision >= Revision::Alphanumeric {
            base = Script::Latin;
            out.push('i');
            continue;
        }
        if let Some(folded) = folded_letter(c).filter(|_| revision >= Revision::FoldedLetters) {
            base = Script::Latin;
            out.push_str(folded);
            continue;
        }
        if unicode_normalization::char::is_combining_mark(c) {
            let letter = revision >= Revision::Joined && base == Script::Cyrillic && c == '\u{0306}';
            if folds_marks(base) && !letter {
                continue;
            }
        } else {
            base = c.script();
        }
        out.push(c);
    }
    out.nfc().collect()
}

/// What a lower-case Latin letter without a decomposition is typed as on a keyboard without
/// it, as Lucene's `ASCIIFoldingFilter` maps it: letters with a stroke or bar (Polish "ł",
/// Danish and Norwegian "ø", Croatian and Vietnamese "đ", Maltese "ħ", Sami "ŧ"), ligatures
/// written as letters (Danish "æ", French "œ"), German "ß" and Icelandic "ð" and "þ".
/// Capitals are lower-cased in step 1 before this runs. Other letters Lucene folds are
/// left: NFKC in step 1 already rewrites the compatibility ones ("ĳ", "ſ", "ŉ", "ﬁ"), and
/// the rest (African and IPA letters with hooks) are letters of their own in the
/// languages that write them.
fn folded_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ħ' => "h",
        'ŧ' => "t",
        _ => return None,
    })
}

/// How a language's letters are typed on keyboards without them, beyond what
/// [`fold_diacritics`] folds in every language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Spelling {
    /// Only what [`fold_diacritics`] folds.
    #[default]
    Plain,
    /// German, under [`Revision::FoldedLetters`]: "ae", "oe" and "ue" typed for "ä", "ö" and
    /// "ü" fold as those do, to "a", "o" and "u" ([`fold_german_pairs`]), so "oesterreich" and
    /// "groesse" find "Österreich" and "Größe".
    German,
    /// Danish and Norwegian, under [`Revision::Segmented`]: "aa", "ae" and "oe" typed for "å",
    /// "æ" and "ø" fold to "a", "a" and "o" ([`fold_nordic_pairs`]), so "aarhus" finds "Århus"
    /// and "blaabaersyltetoej" finds "blåbærsyltetøj".
    Nordic,
}

impl Spelling {
    /// `text` folded: [`fold_diacritics`], then this spelling's pairs. The pairs fold what
    /// [`fold_diacritics`] gives, so whatever two words it made one stay one.
    pub fn fold(self, text: &str, revision: Revision) -> String {
        let folded = fold_diacritics(text, revision);
        match self {
            Spelling::German if revision >= Revision::FoldedLetters => fold_german_pairs(&folded),
            Spelling::Nordic if revision >= Revision::Segmented => fold_nordic_pairs(&folded),
            _ => folded,
        }
    }
}

/// German "ae", "oe" and "ue" as "a", "o" and "u", by the pair rules of Lucene's
/// `GermanNormalizationFilter`: the "e" goes after "a" or "o", and after a "u" that follows
/// neither a vowel nor "q" ("Feuer", "Quelle" and "Museum" keep theirs; "Poet" and "blue" lose
/// it). Unlike Lucene's, it runs after every accent is folded, so "üe" is "u" and "Noël" is
/// "nol"; index and query run the same steps, so they still meet.
fn fold_german_pairs(text: &str) -> String {
    #[derive(PartialEq)]
    enum State {
        /// After a consonant, or at the start.
        Other,
        /// After a vowel whose following "e" stays.
        Vowel,
        /// After "i", "q" or "y": a "u" here keeps the "e" after it.
        Before,
        /// After "a", "o", or a "u" that can carry an umlaut: a following "e" goes.
        Umlaut,
    }
    let mut out = String::with_capacity(text.len());
    let mut state = State::Other;
    for c in text.chars() {
        state = match c {
            'a' | 'o' => State::Umlaut,
            'u' if state == State::Other => State::Umlaut,
            'u' => State::Vowel,
            'e' if state == State::Umlaut => {
                state = State::Vowel;
                continue;
            }
            'e' => State::Vowel,
            'i' | 'q' | 'y' => State::Before,
            _ => State::Other,
        };
        out.push(c);
    }
    out
}

/// Danish and Norwegian "aa", "ae" and "oe" as "a", "a" and "o", read left to right in what
/// [`fold_diacritics`] gives, where "å" is already "a", "æ" "ae" and "ø" "o": so the letters,
/// the pairs typed for them and the plain vowels typed for them meet ("Århus", "aarhus",
/// "arhus"). These are the pairs Lucene's `NorwegianNormalizationFilter` reads as the letters;
/// its `ScandinavianFoldingFilter` folds so too, and also "ao" and "oo", which ordinary words
/// hold. Like the German rule it merges words that hold a pair of their own ("søen", the lake,
/// with "søn", son); and "øe" typed "oee" stays apart.
fn fold_nordic_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if matches!((c, chars.peek()), ('a', Some('a' | 'e')) | ('o', Some('e'))) {
            chars.next();
        }
    }
    out
}

/// Step 2 as a tantivy token filter (the joined-words revision, no stemming): it runs after
/// the stop words, whose lists are written with their accents (French "à").
#[derive(Debug, Clone, Copy)]
pub struct FoldDiacritics(pub Revision, pub Spelling);

impl tantivy::tokenizer::TokenFilter for FoldDiacritics {
    type Tokenizer<T: Tokenizer> = FoldingTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> FoldingTokenizer<T> {
        FoldingTokenizer { inner: tokenizer, stemmer: None, revision: self.0, spelling: self.1 }
    }
}

/// Step 2 and a Snowball stemmer, as a tantivy token filter (the joined-words revision): each
/// word is indexed as the stem of its folded form, and also as the folded stem of the word as
/// written where the two differ, both at the word's position.
///
/// Neither order alone serves both the stemmer and the people who type without accents.
/// Stemming the folded word meets an unaccented query ("randonnee" and "randonnée" both stem
/// to "randonne"), but blinds the rules that read accents: French "fermé" and "fermée" stem to
/// "ferm" and "ferme", Portuguese "informação" and "informações" apart, Hungarian "házból"
/// keeps its case ending. Folding the stem merges those ("ferm") but not the unaccented
/// query. With both, a query meets an item whenever either order would have.
#[derive(Debug, Clone, Copy)]
pub struct FoldAndStem(pub frostem::Algorithm, pub Revision, pub Spelling);

impl tantivy::tokenizer::TokenFilter for FoldAndStem {
    type Tokenizer<T: Tokenizer> = FoldingTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> FoldingTokenizer<T> {
        FoldingTokenizer { inner: tokenizer, stemmer: Some(self.0), revision: self.1, spelling: self.2 }
    }
}

/// A tokenizer followed by [`FoldDiacritics`] or [`FoldAndStem`].
#[derive(Debug, Clone)]
pub struct FoldingTokenizer<T> {
    inner: T,
    stemmer: Option<frostem::Algorithm>,
    revision: Revision,
    spelling: Spelling,
}

impl<T: Tokenizer> Tokenizer for FoldingTokenizer<T> {
    type TokenStream<'a> = FoldingStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        FoldingStream {
            tail: self.inner.token_stream(text),
            stemmer: self.stemmer.map(frostem::Stemmer::new),
            revision: self.revision,
            spelling: self.spelling,
            current: Token::default(),
            second: None,
        }
    }
}

/// The tokens of [`FoldingTokenizer`].
pub struct FoldingStream<S> {
    tail: S,
    stemmer: Option<frostem::Stemmer>,
    revision: Revision,
    spelling: Spelling,
    current: Token,
    /// The folded stem of the word as written, when it differs: the next token.
    second: Option<Token>,
}

impl<S: TokenStream> TokenStream for FoldingStream<S> {
    fn advance(&mut self) -> bool {
        if let Some(second) = self.second.take() {
            self.current = second;
            return true;
        }
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token();
        let folded = self.spelling.fold(&token.text, self.revision);
        // The token's place, without cloning its text only to replace it.
        let at = |text| Token {
            text,
            offset_from: token.offset_from,
            offset_to: token.offset_to,
            position: token.position,
            position_length: token.position_length,
        };
        self.current = at(folded);
        if let Some(stemmer) = &self.stemmer {
            let of_folded = stemmer.stem(&self.current.text).into_owned();
            // A word without diacritics is its own folded form: the second stem is the first.
            let of_written = if token.text == self.current.text {
                self.spelling.fold(&of_folded, self.revision)
            } else {
                self.spelling.fold(&stemmer.stem(&token.text), self.revision)
            };
            if of_written != of_folded {
                self.second = Some(at(of_written));
            }
            self.current.text = of_folded;
        }
        true
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn german_pairs_fold_as_lucene_s_normalization_does() {
        for (text, folded) in [
            ("oesterreich", "osterreich"),
            ("uebergangszeiten", "ubergangszeiten"),
            ("groesse", "grosse"),
            ("maerchen", "marchen"),
            ("feuer", "feuer"),
            ("quelle", "quelle"),
            ("museum", "museum"),
            ("poet", "pot"),
            ("frieden", "frieden"),
        ] {
            assert_eq!(Spelling::German.fold(text, Revision::FoldedLetters), folded, "{text}");
        }
        // "Größe" as written folds to what "groesse" does.
        assert_eq!(Spelling::German.fold("größe", Revision::FoldedLetters), "grosse");
        assert_eq!(Spelling::German.fold("oesterreich", Revision::Alphanumeric), "oesterreich", "earlier revisions");
        assert_eq!(Spelling::Plain.fold("oesterreich", Revision::FoldedLetters), "oesterreich");
    }

    #[test]
    fn nordic_pairs_fold_as_the_letters_they_stand_for() {
        let fold = |text: &str| Spelling::Nordic.fold(text, Revision::Segmented);
        for (written, typed) in [
            ("århus", "aarhus"),
            ("århus", "arhus"),
            ("blåbærsyltetøj", "blaabaersyltetoej"),
            ("blåbärsyltetöj", "blaabaersyltetoej"),
            ("færøerne", "faeroerne"),
            ("ålborg", "aalborg"),
            ("søren", "soeren"),
            ("søen", "soen"),
            ("jägermeister", "jagermeister"),
        ] {
            assert_eq!(fold(written), fold(typed), "{written} / {typed}");
        }
        // Whatever step 2 alone made one stays one: the pairs fold its output.
        for (a, b) in [("søen", "soen"), ("køer", "koer"), ("københavn", "kobenhavn")] {
            assert_eq!(fold_diacritics(a, Revision::Segmented), fold_diacritics(b, Revision::Segmented));
            assert_eq!(fold(a), fold(b), "{a} / {b}");
        }
        assert_eq!(fold("blåbærsyltetøj"), "blabarsyltetoj");
        assert_eq!(fold("aaa"), "aa", "left to right");
        assert_eq!(fold("zoo"), "zoo", "oo is no pair");
        assert_eq!(Spelling::Nordic.fold("aarhus", Revision::FoldedLetters), "aarhus", "earlier revisions");
        assert_eq!(Spelling::Plain.fold("aarhus", Revision::Segmented), "aarhus", "other languages");
    }

    proptest! {
        /// ASCII's shortcut gives what the general path gives.
        #[test]
        fn ascii_folds_as_any_text_does(text in "[\\x00-\\x7f]{0,40}") {
            for revision in Revision::ALL {
                prop_assert_eq!(fold_diacritics(&text, revision), fold_unicode(&text, revision));
            }
        }
    }
}
