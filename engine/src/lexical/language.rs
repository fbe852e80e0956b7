//! The languages BM25 reads a catalog in: each one's Snowball stemmer, stop words, elided
//! articles and casing, and how a language is named on the command line.

use tantivy::tokenizer::StopWordFilter;

use crate::analysis::{FoldAndStem, Revision, Spelling, FRENCH_ELISIONS, ITALIAN_ELISIONS};

/// The language BM25 stems in, and whose stop words it drops when asked: the Snowball
/// stemmers and stop-word lists tantivy ships (Lucene's 33 words for English).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Language {
    Arabic,
    Danish,
    Dutch,
    #[default]
    English,
    Finnish,
    French,
    German,
    Greek,
    Hungarian,
    Italian,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Spanish,
    Swedish,
    Tamil,
    Turkish,
}

impl Language {
    /// Every language, in the order above.
    pub const ALL: [Language; 18] = [
        Language::Arabic,
        Language::Danish,
        Language::Dutch,
        Language::English,
        Language::Finnish,
        Language::French,
        Language::German,
        Language::Greek,
        Language::Hungarian,
        Language::Italian,
        Language::Norwegian,
        Language::Portuguese,
        Language::Romanian,
        Language::Russian,
        Language::Spanish,
        Language::Swedish,
        Language::Tamil,
        Language::Turkish,
    ];

    /// The name in settings and manifests (`"french"`).
    pub fn name(self) -> &'static str {
        self.facts().0
    }

    /// ISO 639-1 code, in analyzer names (`"fr"`).
    pub(super) fn code(self) -> &'static str {
        self.facts().1
    }

    /// Name, code, tantivy's language (stop words) and Snowball's algorithm (stems).
    fn facts(self) -> (&'static str, &'static str, tantivy::tokenizer::Language, frostem::Algorithm) {
        use frostem::Algorithm as S;
        use tantivy::tokenizer::Language as T;
        match self {
            Language::Arabic => ("arabic", "ar", T::Arabic, S::Arabic),
            Language::Danish => ("danish", "da", T::Danish, S::Danish),
            Language::Dutch => ("dutch", "nl", T::Dutch, S::Dutch),
            Language::English => ("english", "en", T::English, S::English),
            Language::Finnish => ("finnish", "fi", T::Finnish, S::Finnish),
            Language::French => ("french", "fr", T::French, S::French),
            Language::German => ("german", "de", T::German, S::German),
            Language::Greek => ("greek", "el", T::Greek, S::Greek),
            Language::Hungarian => ("hungarian", "hu", T::Hungarian, S::Hungarian),
            Language::Italian => ("italian", "it", T::Italian, S::Italian),
            Language::Norwegian => ("norwegian", "no", T::Norwegian, S::Norwegian),
            Language::Portuguese => ("portuguese", "pt", T::Portuguese, S::Portuguese),
            Language::Romanian => ("romanian", "ro", T::Romanian, S::Romanian),
            Language::Russian => ("russian", "ru", T::Russian, S::Russian),
            Language::Spanish => ("spanish", "es", T::Spanish, S::Spanish),
            Language::Swedish => ("swedish", "sv", T::Swedish, S::Swedish),
            Language::Tamil => ("tamil", "ta", T::Tamil, S::Tamil),
            Language::Turkish => ("turkish", "tr", T::Turkish, S::Turkish),
        }
    }

    /// Whether tantivy ships a stop-word list for the language (Arabic, Greek, Romanian, Tamil
    /// and Turkish have none).
    pub fn has_stop_words(self) -> bool {
        StopWordFilter::new(self.facts().2).is_some()
    }

    pub(super) fn stop_words(self) -> Option<StopWordFilter> {
        StopWordFilter::new(self.facts().2)
    }

    /// The first revision's English stemmer (tantivy's filter over the same Snowball code).
    pub(super) fn stemmer(self) -> tantivy::tokenizer::Stemmer {
        tantivy::tokenizer::Stemmer::new(self.facts().2)
    }

    /// The articles the language elides before a vowel ("l'", "d'"), which the joined-words
    /// step drops whole.
    pub(super) fn elisions(self) -> &'static [&'static str] {
        match self {
            Language::French => FRENCH_ELISIONS,
            Language::Italian => ITALIAN_ELISIONS,
            _ => &[],
        }
    }

    /// Folding and stems from the joined-words revision on ([`FoldAndStem`]).
    pub(super) fn fold_and_stem(self, revision: Revision) -> FoldAndStem {
        FoldAndStem(self.facts().3, revision, self.spelling())
    }

    /// How the language's letters are typed without them, beyond the folding every language
    /// has: German's umlauts as "ae", "oe", "ue"; Danish and Norwegian "å", "æ", "ø" as "aa",
    /// "ae", "oe".
    pub(super) fn spelling(self) -> Spelling {
        match self {
            Language::German => Spelling::German,
            Language::Danish | Language::Norwegian => Spelling::Nordic,
            _ => Spelling::Plain,
        }
    }

    /// Whether "I" lower-cases to "ı" (the Turkish alphabet's dotless i).
    pub(super) fn dotted_i(self) -> bool {
        self == Language::Turkish
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    /// A name in any case ("German") or its ISO 639-1 code ("de"); an error that says what to
    /// do for a language without a stemmer.
    fn from_str(name: &str) -> Result<Self, String> {
        let asked = name.trim();
        Language::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(asked) || l.code().eq_ignore_ascii_case(asked))
            .ok_or_else(|| {
                let names: Vec<&str> = Language::ALL.iter().map(|l| l.name()).collect();
                format!(
                    "{name:?} is not one of {} (or their two-letter codes). For a language without a \
                     Snowball stemmer (Polish, Czech, Chinese, Japanese, Korean…) keep the default and add \
                     --no-stemming: splitting words, folding accents and pairing CJK characters apply to \
                     every language, and Chinese, Japanese and Korean need no language at all",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_is_named_in_any_case_or_by_its_code_and_one_without_a_stemmer_is_told_what_to_do() {
        for name in ["german", "German", "GERMAN", "de", " DE "] {
            assert_eq!(name.parse::<Language>(), Ok(Language::German), "{name}");
        }
        let error = "polish".parse::<Language>().unwrap_err();
        assert!(error.contains("--no-stemming") && error.contains("english, "), "{error}");
    }
}
