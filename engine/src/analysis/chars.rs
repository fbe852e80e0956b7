//! Step 1 (NFKC and lower case) and the character classes the tokenizer splits by, each with
//! a shortcut for ASCII, which needs none of Unicode's tables: the tables are a search per
//! character, and most catalog text is ASCII. The shortcuts must give exactly what the general
//! path gives (a generation's terms may never change under it); the tests hold them equal.

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};

use super::{fold_diacritics, Revision};

/// Han, kana or Hangul, including the characters those scripts share (their Unicode script
/// extensions): the prolonged sound mark ー in コーヒー, the iteration mark 々.
pub(crate) fn is_cjk(c: char) -> bool {
    // ASCII first: the script tables are a search per character, and most text is ASCII.
    if c.is_ascii() {
        return false;
    }
    let extension = c.script_extension();
    [Script::Han, Script::Hiragana, Script::Katakana, Script::Hangul].iter().any(|&s| extension.contains_script(s))
        && !is_punctuation_or_invisible(c)
}

/// Whether UAX #29 leaves `c`'s words unmarked: Thai, Lao, Khmer, Myanmar and the Tai
/// scripts, which write no spaces between words (Line_Break = Complex_Context, "SA"). UAX #29
/// gives each such character a segment of its own; step 3 finds their words by dictionary
/// under [`Revision::Segmented`].
pub(super) fn is_complex_context(c: char) -> bool {
    use icu_properties::props::LineBreak;
    // ASCII first: the property table is a search per character.
    !c.is_ascii() && icu_properties::CodePointMapData::<LineBreak>::new().get(c) == LineBreak::ComplexContext
}

/// NFKC and lower case (step 1); under the first revision, diacritics folded too (step 2),
/// which the joined-words revision does after the stop words ([`super::FoldDiacritics`],
/// [`super::FoldAndStem`]).
pub(super) fn normalize(segment: &str, revision: Revision, dotted_i: bool) -> String {
    // Greek final sigma folds to σ, as Lucene's GreekLowerCaseFilter does: "ΚΑΦΕΣ" lower-cases
    // letter by letter to "καφεσ", and must meet "καφές". The Arabic tatweel (kashida) is a
    // stretching stroke inside a word.
    // Under the joined-words revision (the first kept these as they were):
    // - the modifier letters ʼ and ʻ (letters to Unicode, so inside a word whatever follows)
    //   stand for an apostrophe in Ukrainian, Hawaiian and many transliterations: they fold to
    //   one, so that "мʼясо" meets "м'ясо" and "hawaiʻi" meets "hawaii" in step 6;
    // - the soft hyphen, word joiner and zero-width no-break space are invisible (HTML's
    //   `&shy;`) and UAX #29 keeps them inside a word: dropped, so "ex&shy;ample" is "example".
    let joined = revision >= Revision::Joined;
    // Turkish casing: "I" is the capital of "ı" and "İ" of "i"; Unicode's default would give
    // "i" and "i" with a combining dot, which the Turkish stemmer does not read.
    let turkish = dotted_i && revision >= Revision::Alphanumeric;
    // ASCII is its own NFKC form and has no diacritics: lower-casing is all that changes it
    // (the same characters as the general path below gives; a test holds them equal).
    if segment.is_ascii() {
        return segment.chars().map(|c| if c == 'I' && turkish { 'ı' } else { c.to_ascii_lowercase() }).collect();
    }
    normalize_unicode(segment, revision, joined, turkish)
}

/// [`normalize`] for any text.
fn normalize_unicode(segment: &str, revision: Revision, joined: bool, turkish: bool) -> String {
    // Under the segmented revision every decimal digit is written as ASCII's, as Lucene's
    // `DecimalDigitFilter` does: Thai "๒๕๖๗", Arabic-Indic "٢٠٢٤" and Devanagari "२०२४" are
    // the numbers people also type as "2567" and "2024".
    let digits = revision >= Revision::Segmented;
    let ignorables = revision >= Revision::Ignorables;
    let lowered: String = segment
        .nfkc()
        .map(|c| match c {
            'I' if turkish => 'ı',
            'İ' if turkish => 'i',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .filter(|&c| c != '\u{0640}' && !(joined && matches!(c, '\u{00AD}' | '\u{2060}' | '\u{FEFF}')))
        .filter(|&c| !(ignorables && is_dropped_invisible(c)))
        .map(|c| match c {
            'ς' => 'σ',
            '\u{02BC}' | '\u{02BB}' if joined => '\'',
            c if digits && is_decimal_digit(c) => ascii_digit(c),
            c => c,
        })
        .collect();
    match revision {
        Revision::First => fold_diacritics(&lowered, revision),
        Revision::Joined
        | Revision::Alphanumeric
        | Revision::FoldedLetters
        | Revision::Segmented
        | Revision::Ignorables => lowered,
    }
}

/// A default-ignorable code point ([`Revision::Ignorables`]) other than the zero-width space
/// and non-joiner, which the chain reads as separators.
fn is_dropped_invisible(c: char) -> bool {
    use icu_properties::{props::DefaultIgnorableCodePoint, CodePointSetData};
    !matches!(c, '\u{200B}' | '\u{200C}') && CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// The ASCII digit of a decimal digit (Nd) of any script. Unicode encodes each script's
/// decimal digits as whole runs of ten in order from zero, sometimes several runs together
/// (the mathematical digits), so a digit's value is how far it is from the start of its run
/// of digits, modulo 10.
fn ascii_digit(c: char) -> char {
    let mut first = c as u32;
    while first > 0 && char::from_u32(first - 1).is_some_and(is_decimal_digit) {
        first -= 1;
    }
    char::from(b'0' + ((c as u32 - first) % 10) as u8)
}

/// Punctuation (P*), control (Cc) or invisible format (Cf) characters: never part of a term.
pub(super) fn is_punctuation_or_invisible(c: char) -> bool {
    // ASCII first: the category tables are a search per character. ASCII has no Cf.
    if c.is_ascii() {
        return is_punctuation(c) || c.is_ascii_control();
    }
    c.is_punctuation() || c.is_other_control() || c.is_other_format()
}

/// Unicode's punctuation (P*). ASCII's are listed: its other marks ("$", "+", "<", "^", "|",
/// "~"…) are symbols (S*) to Unicode.
pub(super) fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, '!'..='#' | '%'..='*' | ','..='/' | ':' | ';' | '?' | '@' | '['..=']' | '_' | '{' | '}');
    }
    c.is_punctuation()
}

/// Unicode's decimal digits (Nd): in ASCII, "0" to "9".
pub(super) fn is_decimal_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    c.is_number_decimal_digit()
}

/// A word's parts between punctuation or a zero-width non-joiner, except a number's own
/// punctuation ([`in_number`]): "2.5", "1,000" and "٢٫٥" stay whole, as numbers (Lucene's
/// standard tokenizer keeps them so too), where their parts would match unrelated numbers.
pub(super) fn parts(chars: &[char], revision: Revision) -> Vec<&[char]> {
    let mut parts = Vec::new();
    let mut from = 0;
    for (i, &c) in chars.iter().enumerate() {
        let separates =
            c == '\u{200C}' || (!c.is_ascii_alphanumeric() && is_punctuation(c) && !in_number(chars, i, revision));
        if separates {
            parts.push(&chars[from..i]);
            from = i + 1;
        }
    }
    parts.push(&chars[from..]);
    parts.retain(|p| !p.is_empty());
    parts
}

/// Whether `chars[i]` is punctuation inside a number: between two digits of any script, and
/// since [`Revision::Alphanumeric`] only a decimal or thousands separator ("." "," and the
/// Arabic "٫" "٬") between two decimal digits, so that "x86_64" is "x86" and "64".
pub(super) fn in_number(chars: &[char], i: usize, revision: Revision) -> bool {
    let digit = |c: char| match revision {
        Revision::First | Revision::Joined => c.is_numeric(),
        Revision::Alphanumeric | Revision::FoldedLetters | Revision::Segmented | Revision::Ignorables => {
            is_decimal_digit(c)
        }
    };
    let separator = match revision {
        Revision::First | Revision::Joined => is_punctuation(chars[i]),
        Revision::Alphanumeric | Revision::FoldedLetters | Revision::Segmented | Revision::Ignorables => {
            matches!(chars[i], '.' | ',' | '\u{066B}' | '\u{066C}')
        }
    };
    separator && i > 0 && chars.get(i - 1).is_some_and(|&c| digit(c)) && chars.get(i + 1).is_some_and(|&c| digit(c))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// ASCII's shortcut in step 1 gives what the general path gives, under every revision
        /// and casing.
        #[test]
        fn ascii_normalizes_as_any_text_does(segment in "[\\x00-\\x7f]{0,40}") {
            for revision in Revision::ALL {
                for dotted_i in [false, true] {
                    let turkish = dotted_i && revision >= Revision::Alphanumeric;
                    let general = normalize_unicode(&segment, revision, revision >= Revision::Joined, turkish);
                    prop_assert_eq!(normalize(&segment, revision, dotted_i), general);
                }
            }
        }
    }

    /// Under the invisible-marks revision a word typed with the marks right-to-left interfaces
    /// put around it, a joiner or a variation selector is the word; the zero-width space and
    /// non-joiner separate as before; earlier revisions keep the marks (their indexes hold them).
    #[test]
    fn default_ignorables_are_dropped_and_separators_kept() {
        let terms = |text: &str, revision| -> Vec<String> {
            super::super::analyze(text, revision).0.into_iter().map(|t| t.text).collect()
        };
        let marks = ['\u{200E}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{061C}', '\u{200D}'];
        for mark in marks.into_iter().chain(['\u{FE0F}', '\u{034F}', '\u{180E}']) {
            assert_eq!(terms(&format!("tent{mark}"), Revision::Ignorables), ["tent"], "{mark:?}");
            assert_eq!(
                terms(&format!("{mark}tent{mark} stove{mark}"), Revision::Ignorables),
                ["tent", "stove"],
                "{mark:?}"
            );
            assert_eq!(terms(&format!("الجبال{mark}"), Revision::Ignorables), ["الجبال"], "{mark:?}");
        }
        assert_ne!(terms("tent\u{200E}", Revision::Segmented), ["tent"], "earlier revisions keep them");
        for separated in ["می\u{200C}خواهم", "tent\u{200B}stove", "กาแฟ\u{200B}สด"] {
            assert_eq!(terms(separated, Revision::Ignorables), terms(separated, Revision::Segmented), "{separated}");
        }
    }

    /// Every decimal digit of every script reads as its ASCII digit.
    #[test]
    fn decimal_digits_of_every_script_are_ascii_s() {
        for zero in ['0', '٠', '۰', '०', '০', '๐', '໐', '០', '၀', '０', '𝟎', '𝟘'] {
            for value in 0..10u32 {
                let digit = char::from_u32(zero as u32 + value).unwrap();
                assert_eq!(ascii_digit(digit), char::from_digit(value, 10).unwrap(), "{digit:?}");
            }
        }
        assert_eq!(normalize("๒๕๖๗", Revision::Segmented, false), "2567");
        assert_eq!(normalize("٢٠٢٤", Revision::Segmented, false), "2024");
        assert_eq!(normalize("๒๕๖๗", Revision::FoldedLetters, false), "๒๕๖๗", "earlier revisions keep them");
        // What the rule stands on, over the whole table: each run of decimal digits is whole
        // runs of ten.
        let digit = |u: u32| char::from_u32(u).is_some_and(is_decimal_digit);
        let starts = (1..=0x10FFFFu32).filter(|&u| digit(u) && !digit(u - 1));
        for start in starts {
            let length = (start..).take_while(|&u| digit(u)).count();
            assert_eq!(length % 10, 0, "the run of digits at U+{start:04X}");
        }
    }

    /// The character tests' shortcuts for letters and digits agree with the tables.
    #[test]
    fn ascii_letters_and_digits_are_no_punctuation_and_no_cjk() {
        for c in (0u8..128).map(char::from) {
            let slow = c.is_punctuation() || c.is_other_control() || c.is_other_format();
            assert_eq!(is_punctuation_or_invisible(c), slow, "{c:?}");
            assert_eq!(is_punctuation(c), c.is_punctuation(), "{c:?}");
            assert_eq!(is_decimal_digit(c), c.is_number_decimal_digit(), "{c:?}");
            assert!(!is_cjk(c), "{c:?}");
        }
    }
}
