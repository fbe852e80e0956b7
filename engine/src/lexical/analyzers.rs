//! The analyzers BM25 reads text with, by name: tantivy keeps only an analyzer's name in an
//! index's schema, so every chain an index on disk may name is registered with every index
//! opened, and a new chain (a new revision of `analysis`, a new language) gets new names.

use tantivy::tokenizer::TextAnalyzer;
use tantivy::Index;

use super::{FieldCombination, Language, LexicalSettings, SearchField};
use crate::analysis::{FoldDiacritics, Revision, UnicodeTokenizer};
use crate::error::{Error, Result};

/// Which tokenizer BM25 analyses titles, texts and queries with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Analyzer {
    /// `analysis`: NFKC and diacritic folding, UAX #29 words, Thai, Lao, Khmer and Myanmar
    /// words by dictionary, CJK bigrams (and characters alone, in items), over-long tokens
    /// split rather than dropped, words joined by punctuation or hyphens indexed as their parts
    /// and written together, letters beside digits indexed apart too; stemming and stop words
    /// (and Turkish casing) in the catalog's [`Language`].
    #[default]
    Unicode,
    /// tantivy's `SimpleTokenizer`: splits on anything not alphanumeric and drops tokens over
    /// 40 bytes; English stems only. What generations built before the analyzer was a setting
    /// use.
    Simple,
}

impl Analyzer {
    /// What a manifest without the field was built with.
    pub(super) fn legacy() -> Self {
        Analyzer::Simple
    }
}

/// How the unicode analyzer reads one field: its language, stems, stop words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldAnalysis {
    /// The field's language (stems, stop words).
    pub language: Language,
    /// Index stems rather than the words as written.
    pub stemming: bool,
    /// Drop the language's stop words.
    pub stop_words: bool,
}

impl LexicalSettings {
    /// How the title (`title == true`) or the text is analysed.
    pub fn analysis_of(&self, title: bool) -> FieldAnalysis {
        let text = FieldAnalysis { language: self.language, stemming: self.stemming, stop_words: self.stop_words };
        match self.title_analysis {
            Some(own) if title => own,
            _ => text,
        }
    }

    /// How a searched catalog field is analysed: its own analysis, else the text's.
    pub fn field_analysis(&self, field: &SearchField) -> FieldAnalysis {
        field.analysis.unwrap_or_else(|| self.analysis_of(false))
    }

    /// Every searched field's analysis with the name its errors go by, in the order BM25
    /// searches them: the text, the title, then the catalog fields.
    fn analyses(&self) -> impl Iterator<Item = (String, FieldAnalysis)> + '_ {
        let own = [("".to_string(), self.analysis_of(false)), ("title_analysis.".to_string(), self.analysis_of(true))];
        let catalog =
            self.search_fields.iter().map(|f| (format!("search_fields.{}.analysis.", f.name), self.field_analysis(f)));
        own.into_iter().chain(catalog)
    }

    /// Whether every searched field (the title, the text and the catalog fields) is analysed
    /// alike, so that a word is one term in all of them.
    pub fn fields_analysed_alike(&self) -> bool {
        let text = self.analysis_of(false);
        self.analyses().all(|(_, analysis)| analysis == text)
    }

    /// Checks that the analysis asked for exists and that BM25 can combine its fields.
    ///
    /// # Errors
    /// Stop words in a language without a list; a title or catalog field analysed on its own
    /// by the simple analyzer, or under BM25F; a searched catalog field named twice, without a
    /// name or `title`/`text`, with a weight outside (0, [`MAX_BOOST`]] (the title's too), or more than
    /// [`MAX_SEARCH_FIELDS`].
    pub fn check(&self) -> Result<()> {
        if self.search_fields.len() > MAX_SEARCH_FIELDS {
            let reason = format!("{} fields; BM25 searches at most {MAX_SEARCH_FIELDS}", self.search_fields.len());
            return Err(Error::invalid("search_fields", reason));
        }
        for (i, wanted) in self.search_fields.iter().enumerate() {
            if wanted.name.is_empty() {
                return Err(Error::invalid("search_fields", "a field without a name"));
            }
            if wanted.name == "title" || wanted.name == "text" {
                let reason = "is the item's own field, searched always; a catalog field may not share its name";
                return Err(Error::invalid(format!("search_fields.{}", wanted.name), reason));
            }
            if self.search_fields[..i].iter().any(|other| other.name == wanted.name) {
                return Err(Error::invalid(format!("search_fields.{}", wanted.name), "named twice"));
            }
            if let Some(problem) = boost_problem(wanted.boost) {
                return Err(Error::invalid(format!("search_fields.{}", wanted.name), problem));
            }
        }
        if let Some(problem) = boost_problem(self.title_boost) {
            return Err(Error::invalid("title_boost", problem));
        }
        let text = self.analysis_of(false);
        for (prefix, analysis) in self.analyses() {
            if analysis.stop_words && !analysis.language.has_stop_words() {
                let reason = format!("there is no stop-word list for {}", analysis.language.name());
                return Err(Error::invalid(format!("{prefix}stop_words"), reason));
            }
            if analysis != text {
                // The setting that asked for it, without the trailing dot.
                let setting = &prefix[..prefix.len() - 1];
                if self.analyzer != Analyzer::Unicode {
                    let reason = "a field analysed on its own needs the unicode analyzer";
                    return Err(Error::invalid(setting, reason));
                }
                if self.bm25.fields == FieldCombination::Bm25f {
                    return Err(Error::invalid(setting, BM25F_NEEDS_ONE_ANALYSIS));
                }
            }
        }
        Ok(())
    }
}

/// The most catalog fields BM25 searches beside the title and the text (each query term
/// carries a bit per field).
pub const MAX_SEARCH_FIELDS: usize = 30;

/// Why BM25F refuses fields analysed apart.
pub(super) const BM25F_NEEDS_ONE_ANALYSIS: &str = "BM25F adds a term's frequencies across the title, \
    the text and the catalog fields searched, so it needs all of them analysed alike; with a \
    field analysed on its own, combine the fields by sum";

/// The name of the unicode analyzer a new index of `revision` is built with.
///
/// The first revision (generations built before joined words) had English only: `hyrank`,
/// `hyrank_en` (stems), `hyrank_stop` (stop words), `hyrank_en_stop`. The joined-words
/// revision always names its language (its elisions, stems and stop words depend on it):
/// `hyrank2_fr`, `hyrank2_fr_stem`, `hyrank2_fr_stop`, `hyrank2_fr_stem_stop`; the
/// letters-beside-digits revision the same with `hyrank3_`, the folded-letters one with
/// `hyrank4_`, the segmented one with `hyrank5_`, the invisible-marks one with `hyrank6_`
/// (and from the segmented one on, its search analyzers, which read queries, with
/// [`SEARCH_SUFFIX`] after that).
pub(super) fn unicode_name(revision: Revision, language: Language, stemming: bool, stop_words: bool) -> String {
    let prefix = match revision {
        Revision::First => {
            return ["hyrank", if stemming { "_en" } else { "" }, if stop_words { "_stop" } else { "" }].concat()
        }
        Revision::Joined => "hyrank2_",
        Revision::Alphanumeric => "hyrank3_",
        Revision::FoldedLetters => "hyrank4_",
        Revision::Segmented => "hyrank5_",
        Revision::Ignorables => "hyrank6_",
    };
    [prefix, language.code(), if stemming { "_stem" } else { "" }, if stop_words { "_stop" } else { "" }].concat()
}

/// Registers every unicode analyzer an index may name (tantivy's own, `default` and
/// `en_stem`, are registered already).
///
/// The first revision: the tokenizer (which folds diacritics itself), then optionally
/// English stop words, then optionally the English stemmer. The joined-words revision, for each
/// language: the tokenizer, optionally the language's stop words (written with their
/// accents), then diacritics folded, and with stemming each word's stem both ways
/// ([`FoldAndStem`]); the letters-beside-digits revision the same, with step 7 and Turkish
/// casing. Stop words go before stems, as in Lucene's analyzers.
pub(super) fn register(index: &Index) {
    let tokenizers = index.tokenizers();
    let first = || TextAnalyzer::builder(UnicodeTokenizer { revision: Revision::First, ..UnicodeTokenizer::default() });
    let english = Language::English;
    let name = |stemming, stop| unicode_name(Revision::First, english, stemming, stop);
    let stop = || english.stop_words().expect("tantivy ships an English list");
    tokenizers.register(&name(false, false), first().build());
    tokenizers.register(&name(true, false), first().filter(english.stemmer()).build());
    tokenizers.register(&name(false, true), first().filter(stop()).build());
    tokenizers.register(&name(true, true), first().filter(stop()).filter(english.stemmer()).build());
    for revision in Revision::ALL.into_iter().filter(|&r| r > Revision::First) {
        // From the segmented revision on, queries are read by search analyzers of their own.
        let searches: &[bool] = if revision >= Revision::Segmented { &[false, true] } else { &[false] };
        for (language, &search) in Language::ALL.into_iter().flat_map(|l| searches.iter().map(move |s| (l, s))) {
            let tokenizer =
                UnicodeTokenizer { revision, elisions: language.elisions(), dotted_i: language.dotted_i(), search };
            let chain = || TextAnalyzer::builder(tokenizer);
            let suffix = if search { SEARCH_SUFFIX } else { "" };
            let name = |stemming, stop| unicode_name(revision, language, stemming, stop) + suffix;
            let (fold, stem) = (FoldDiacritics(revision, language.spelling()), language.fold_and_stem(revision));
            tokenizers.register(&name(false, false), chain().filter(fold).build());
            tokenizers.register(&name(true, false), chain().filter(stem).build());
            if let Some(stop) = language.stop_words() {
                tokenizers.register(&name(false, true), chain().filter(stop.clone()).filter(fold).build());
                tokenizers.register(&name(true, true), chain().filter(stop).filter(stem).build());
            }
        }
    }
}

/// What a search analyzer's name adds to its index analyzer's: `hyrank5_en_stem` indexes
/// items, `hyrank5_en_stem_search` reads queries (Elasticsearch's `search_analyzer`).
pub(super) const SEARCH_SUFFIX: &str = "_search";

/// The analyzer queries of `field` are read with: its search analyzer where its index
/// analyzer has one, else the index analyzer itself.
///
/// # Errors
/// The field's analyzer unknown to this build (a generation opened with one is refused
/// earlier).
pub(super) fn search_analyzer(index: &Index, field: tantivy::schema::Field) -> Result<TextAnalyzer> {
    let schema = index.schema();
    if let tantivy::schema::FieldType::Str(options) = schema.get_field_entry(field).field_type() {
        if let Some(indexing) = options.get_indexing_options() {
            if let Some(search) = index.tokenizers().get(&format!("{}{SEARCH_SUFFIX}", indexing.tokenizer())) {
                return Ok(search);
            }
        }
    }
    Ok(index.tokenizer_for_field(field)?)
}

/// The largest field weight (`title_boost`, a searched field's `^WEIGHT`): a field a thousand
/// times the text already decides every match it holds, and past it a weight could only carry
/// scores toward f32's overflow (a weight of 1e38 made them ∞ or NaN).
pub const MAX_BOOST: f32 = 1000.0;

/// Why `boost` is no field weight, or `None`: it must be above 0 and at most [`MAX_BOOST`].
pub fn boost_problem(boost: f32) -> Option<String> {
    (!(boost > 0.0 && boost <= MAX_BOOST))
        .then(|| format!("weight {boost} is not a number above 0 and at most {MAX_BOOST}"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::item::Item;
    use crate::lexical::{LexicalIndex, LexicalSettings};

    /// The ids of the best three items for `query`, best first, in a catalog of `(id, title)`
    /// indexed under `settings`.
    fn hits(settings: &LexicalSettings, catalog: &[(&str, &str)], query: &str) -> Vec<String> {
        let (_dir, lexical) = titles_index(settings, catalog);
        lexical.search(query, 3, None).unwrap().iter().map(|h| catalog[h.0 as usize].0.to_string()).collect()
    }

    /// An index of `catalog`'s (id, title) items, in order, and the folder it lives in, its
    /// words looked up as typed: these tests hold analysis, `super::super::fuzzy`'s typos.
    fn titles_index(settings: &LexicalSettings, catalog: &[(&str, &str)]) -> (tempfile::TempDir, LexicalIndex) {
        let typed = super::super::Bm25Params { fuzziness: super::super::Fuzziness::Off, ..settings.bm25 };
        titles_index_with(&LexicalSettings { bm25: typed, ..settings.clone() }, catalog)
    }

    /// An item with a title only.
    pub(in crate::lexical) fn titled(id: &str, title: &str) -> Item {
        Item { id: id.into(), title: title.into(), text: String::new(), fields: Default::default() }
    }

    /// [`titles_index_with`] the default settings (typo tolerance on).
    pub(in crate::lexical) fn catalog_of(catalog: &[(&str, &str)]) -> (tempfile::TempDir, LexicalIndex) {
        titles_index_with(&LexicalSettings::default(), catalog)
    }

    /// [`titles_index`] under `settings` as given.
    pub(in crate::lexical) fn titles_index_with(
        settings: &LexicalSettings,
        catalog: &[(&str, &str)],
    ) -> (tempfile::TempDir, LexicalIndex) {
        let items: Vec<Item> = catalog.iter().map(|(id, title)| titled(id, title)).collect();
        let dir = tempfile::tempdir().unwrap();
        LexicalIndex::build(dir.path(), items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings.clone())
            .unwrap();
        let lexical = LexicalIndex::open(dir.path(), settings.clone()).unwrap();
        (dir, lexical)
    }

    /// The id of the best item, as [`hits`].
    fn top(settings: &LexicalSettings, catalog: &[(&str, &str)], query: &str) -> Option<String> {
        hits(&settings, catalog, query).into_iter().next()
    }

    fn in_language(language: Language) -> LexicalSettings {
        LexicalSettings { language, ..Default::default() }
    }

    #[test]
    fn each_language_stems_its_own_words() {
        let boots = [("boots", "Schuhe für den Berg"), ("mug", "Emaille Becher")];
        assert_eq!(top(&in_language(Language::German), &boots, "Schuh").as_deref(), Some("boots"));
        assert_eq!(top(&in_language(Language::English), &boots, "Schuh"), None, "English stems leave schuhe");
        // Russian's adjective ending "-ый" keeps its "й" (step 2 keeps the breve), so the
        // stemmer finds it: "красный" (red) meets "красные"; and "война" (war) does not fold
        // into "воина" (warrior).
        let russian = in_language(Language::Russian);
        let packs = [("red", "Красный рюкзак"), ("tent", "Синяя палатка")];
        assert_eq!(top(&russian, &packs, "красные").as_deref(), Some("red"));
        let books = [("war", "Война и мир"), ("warrior", "Воин света")];
        assert_eq!(top(&russian, &books, "войны").as_deref(), Some("war"));
        assert_eq!(top(&russian, &books, "воины").as_deref(), Some("warrior"));
        // French: a word typed without its accents stems as the word with them, and the
        // masculine meets the feminine though the stemmer reads their accents.
        let french = in_language(Language::French);
        let hikes = [("hike", "Chaussures de randonnée"), ("mug", "Tasse émaillée")];
        assert_eq!(top(&french, &hikes, "randonnee").as_deref(), Some("hike"));
        assert_eq!(top(&french, &hikes, "emaillees").as_deref(), Some("mug"));
        assert_eq!(top(&french, &hikes, "émaillé").as_deref(), Some("mug"));
        // Portuguese: the singular meets the plural ("informação", "informações").
        let books = [("guide", "Guia de informações úteis"), ("map", "Mapa")];
        assert_eq!(top(&in_language(Language::Portuguese), &books, "informação").as_deref(), Some("guide"));
    }

    /// A word read as two stems at one position (its folded stem and the stem of it as
    /// written, where they differ) scores once: typed with or without its accents, the same
    /// scores and order. "randonnée" counted twice (6.14 against "randonnee"'s 3.07), and bags
    /// "de randonnée" passed the shoes the shopper asked for.
    #[test]
    fn a_word_counts_once_whether_typed_with_its_accents_or_not() {
        let french = in_language(Language::French);
        let catalog = [
            ("0", "Sac de randonnée"),
            ("1", "Gourde de randonnée"),
            ("2", "Chaussures de sport"),
            ("3", "Chaussures de randonnée imperméables"),
            ("4", "Tasse émaillée"),
        ];
        let (_dir, lexical) = titles_index(&french, &catalog);
        let scores = |query: &str| {
            let mut found = lexical.score_all(query, super::super::Bm25Params::default()).unwrap();
            found.sort_by_key(|&(item, _)| item);
            found
        };
        for (accented, plain) in [("chaussures randonnée", "chaussures randonnee"), ("émaillée", "emaillee")] {
            let (with, without) = (scores(accented), scores(plain));
            assert_eq!(with.len(), without.len(), "{accented}");
            for (a, b) in with.iter().zip(&without) {
                assert_eq!(a.0, b.0);
                assert!((a.1 - b.1).abs() < 1e-5, "{accented}: item {} scores {} against {}", a.0, a.1, b.1);
            }
        }
        assert_eq!(lexical.search("chaussures randonnée", 1, None).unwrap()[0].0, 3, "the hiking shoes first");
        // tantivy's reference query scores the stack as a disjunction-max: the same scores.
        crate::lexical::agrees_with_tantivy(&lexical, &["randonnée", "chaussures randonnée", "Tasse émaillée sac"]);
    }

    #[test]
    fn letters_beside_digits_meet_the_words_typed_apart() {
        let english = LexicalSettings::default();
        let catalog = [("jack", "Cable 3.5mm"), ("phone", "Case for iPhone 15"), ("usb", "USB3 hub")];
        assert_eq!(top(&english, &catalog, "3.5 mm").as_deref(), Some("jack"));
        assert_eq!(top(&english, &catalog, "iphone15").as_deref(), Some("phone"));
        assert_eq!(top(&english, &catalog, "usb 3").as_deref(), Some("usb"));
        // Turkish: the capitals lower-case the Turkish way, so the stemmer reads the plural
        // ("KİTAPLARI", the books) and "kitap" finds it; so does "kitaplari" typed without "ı".
        let turkish = in_language(Language::Turkish);
        let books = [("books", "ESKİ KİTAPLARI"), ("pen", "Kalem")];
        assert_eq!(top(&turkish, &books, "kitap").as_deref(), Some("books"));
        assert_eq!(top(&turkish, &books, "kitapları").as_deref(), Some("books"));
        assert_eq!(top(&turkish, &books, "kitaplari").as_deref(), Some("books"), "ı folds to i");
        // A Hangul word with a model number meets both typed apart.
        let catalog = [("case", "케이스 24개"), ("galaxy", "갤럭시S24 케이스")];
        assert_eq!(hits(&english, &catalog, "갤럭시"), ["galaxy"]);
        assert_eq!(top(&english, &catalog, "갤럭시 24").as_deref(), Some("galaxy"));
    }

    #[test]
    fn latin_letters_without_a_decomposition_meet_the_words_typed_plainly() {
        let catalog =
            [("city", "Łódź old town"), ("heart", "Cœur de pirate"), ("street", "Straße map"), ("mug", "Mug")];
        let english = LexicalSettings::default();
        for (query, id) in [("lodz", "city"), ("Łódź", "city"), ("coeur", "heart"), ("strasse", "street")] {
            assert_eq!(hits(&english, &catalog, query), [id], "{query}");
        }
        // Stemmed and with stop words, in languages that write these letters.
        let german = LexicalSettings { stop_words: true, ..in_language(Language::German) };
        let maps = [("street", "Die Straßenkarte"), ("mug", "Große Tasse")];
        assert_eq!(top(&german, &maps, "strassenkarten").as_deref(), Some("street"));
        assert_eq!(top(&german, &maps, "grosse").as_deref(), Some("mug"));
        let danish = in_language(Language::Danish);
        let guides = [("cph", "Guide til København og Ærø"), ("mug", "Krus")];
        assert_eq!(top(&danish, &guides, "kobenhavn").as_deref(), Some("cph"));
        assert_eq!(top(&danish, &guides, "aero").as_deref(), Some("cph"));
        let french = in_language(Language::French);
        let books = [("heart", "Les œuvres du cœur"), ("mug", "Tasse")];
        assert_eq!(top(&french, &books, "oeuvre").as_deref(), Some("heart"));
        // German umlauts typed as "oe", "ue", with stems or without; not in other languages.
        let jackets = [("jacket", "Jacke aus Österreich für Übergangszeiten"), ("fire", "Feuer und Größe")];
        for stemming in [true, false] {
            let german = LexicalSettings { stemming, ..in_language(Language::German) };
            for (query, id) in [("oesterreich", "jacket"), ("uebergangszeiten", "jacket"), ("groesse", "fire")] {
                assert_eq!(top(&german, &jackets, query).as_deref(), Some(id), "{query}, stemming {stemming}");
            }
            assert_eq!(top(&german, &jackets, "feuer").as_deref(), Some("fire"));
        }
        assert_eq!(top(&LexicalSettings::default(), &jackets, "oesterreich"), None, "English keeps oe");
    }

    /// The segmented revision: Thai found by its words, not its letters; one CJK character
    /// found inside a run; Danish and Norwegian letters typed as pairs.
    #[test]
    fn words_without_spaces_lone_cjk_characters_and_nordic_pairs_are_found() {
        let english = LexicalSettings::default();
        // "Coffee" finds the coffee shop, not "fashion trousers", which holds its letters.
        let thai = [("cafe", "ร้านกาแฟสด"), ("trousers", "แฟชั่นกางเกง")];
        assert_eq!(hits(&english, &thai, "กาแฟ"), ["cafe"]);
        assert_eq!(hits(&english, &thai, "กางเกง"), ["trousers"]);
        // Digits of any script are the numbers typed in ASCII.
        let sizes = [("tv", "ทีวี ๕๕ นิ้ว"), ("year", "รุ่นปี ๒๕๖๗"), ("mug", "كوب ٣٥٠ مل")];
        for (query, id) in [("55", "tv"), ("2567", "year"), ("350", "mug"), ("٥٥", "tv")] {
            assert_eq!(hits(&english, &sizes, query), [id], "{query}");
        }
        // One character finds the runs holding it; two find only their pair.
        let cjk = [("shoes", "运动鞋"), ("mug", "咖啡杯"), ("book", "책을 읽는 사람"), ("lamp", "조명")];
        assert_eq!(hits(&english, &cjk, "鞋"), ["shoes"]);
        assert_eq!(hits(&english, &cjk, "咖啡"), ["mug"]);
        assert_eq!(hits(&english, &cjk, "책"), ["book"]);
        for language in [Language::Danish, Language::Norwegian] {
            let guides = [("city", "Guide til Århus"), ("jam", "Blåbærsyltetøj"), ("mug", "Krus")];
            assert_eq!(top(&in_language(language), &guides, "aarhus").as_deref(), Some("city"), "{language:?}");
            assert_eq!(top(&in_language(language), &guides, "blaabaersyltetoej").as_deref(), Some("jam"));
        }
        assert_eq!(top(&english, &[("city", "Guide til Århus")], "aarhus"), None, "English keeps aa");
    }

    /// Issue 15's "per field where given": titles in German over English texts, combined by
    /// sum. Each field finds its own stems (live items too) and the tree names each field's
    /// term; BM25F is refused at build and at request, and a title analysed as the text is no
    /// exception to anything.
    #[test]
    fn a_title_may_be_analysed_in_its_own_language() {
        let item = |id: &str, title: &str, text: &str| Item {
            id: id.into(),
            title: title.into(),
            text: text.into(),
            fields: Default::default(),
        };
        let items = [
            item("boots", "Schuhe für den Berg", "Hiking boots for rocky trails."),
            item("mug", "Emaille Becher", "A mug for the camp."),
        ];
        let german = FieldAnalysis { language: Language::German, stemming: true, stop_words: false };
        let sum = super::super::Bm25Params {
            fields: FieldCombination::Sum,
            fuzziness: super::super::Fuzziness::Off,
            ..Default::default()
        };
        let settings = LexicalSettings { bm25: sum, title_analysis: Some(german), ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        LexicalIndex::build(dir.path(), items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings.clone())
            .unwrap();
        let lexical = LexicalIndex::open(dir.path(), settings.clone()).unwrap();
        let top = |query: &str| lexical.search(query, 3, None).unwrap().first().map(|h| h.0);
        assert_eq!(top("Schuh"), Some(0), "the title's German stem");
        assert_eq!(top("trail"), Some(0), "the text's English stem");
        assert_eq!(top("Schuh"), top("schuhe"));
        let tree = lexical.explain_with("Schuh boots", 0, sum).unwrap().unwrap();
        let labels: Vec<&str> = tree.children.iter().map(|c| c.label.as_str()).collect();
        assert!(labels.contains(&"title:schuh, product of") && labels.contains(&"text:boot, product of"), "{labels:?}");
        let score = lexical.score_all("Schuh boots", sum).unwrap().into_iter().find(|h| h.0 == 0).unwrap().1;
        assert!((tree.value - f64::from(score)).abs() < 1e-5);
        // Catalog fields read the query as the text does: "Schuh" (the German stem) is not
        // looked up in a brand, "schuhe" (English leaves it) is.
        let branded =
            LexicalSettings { search_fields: vec![super::super::SearchField::new("brand", 1.0)], ..settings.clone() };
        let brand_dir = tempfile::tempdir().unwrap();
        let catalog = [Item {
            fields: serde_json::from_value(serde_json::json!({"brand": "Schuhe"})).unwrap(),
            ..item("slippers", "Hausschuh", "Warm.")
        }];
        let catalog = catalog.iter().enumerate().map(|(i, it)| (i as u32, it));
        LexicalIndex::build(brand_dir.path(), catalog, branded.clone()).unwrap();
        let branded = LexicalIndex::open(brand_dir.path(), branded).unwrap();
        assert!(branded.search("Schuh", 3, None).unwrap().is_empty(), "the title holds Hausschuh, the brand schuhe");
        assert_eq!(branded.search("schuhe", 3, None).unwrap().len(), 1, "the brand, read as the text");
        // Settings that do not describe the index are refused when it opens.
        for wrong in [
            LexicalSettings { title_analysis: None, ..settings.clone() },
            LexicalSettings { bm25: super::super::Bm25Params::default(), ..settings.clone() },
        ] {
            let error = LexicalIndex::open(dir.path(), wrong).err().unwrap().to_string();
            assert!(error.contains("but its schema names") || error.contains("by sum"), "{error}");
        }
        // tantivy's own scorer, whose query is built field by field, gives the same scores.
        crate::lexical::agrees_with_tantivy(&lexical, &["Schuh boots", "Berg trails", "Emaille mug camp"]);
        let live = item("shoes", "Schuhe aus Leder", "");
        lexical.add_live([(2, &live)]).unwrap();
        assert_eq!(lexical.search("Schuh", 3, None).unwrap().len(), 2, "a live title is analysed in German too");

        let error = lexical.search_with("Schuh", 3, None, super::super::Bm25Params::default()).unwrap_err();
        assert!(error.to_string().contains("bm25.fields") && error.to_string().contains("BM25F"), "{error}");
        let bm25f = LexicalSettings { title_analysis: Some(german), ..Default::default() };
        let elsewhere = tempfile::tempdir().unwrap();
        let error = LexicalIndex::build(elsewhere.path(), std::iter::empty(), bm25f.clone()).unwrap_err().to_string();
        assert!(error.contains("title_analysis") && error.contains("by sum"), "{error}");
        let simple = LexicalSettings { analyzer: Analyzer::Simple, ..settings.clone() };
        assert!(simple.check().unwrap_err().to_string().contains("unicode analyzer"));
        let turkish = FieldAnalysis { language: Language::Turkish, stemming: true, stop_words: true };
        let error = LexicalSettings { title_analysis: Some(turkish), ..settings }.check().unwrap_err().to_string();
        assert!(error.contains("title_analysis.stop_words") && error.contains("turkish"), "{error}");

        // Analysed as the text: BM25F allowed, one analyzer name in the schema.
        let alike = LexicalSettings { title_analysis: Some(LexicalSettings::default().analysis_of(false)), ..bm25f };
        assert!(alike.fields_analysed_alike() && alike.check().is_ok());
        let alike_dir = tempfile::tempdir().unwrap();
        LexicalIndex::build(alike_dir.path(), items.iter().enumerate().map(|(i, it)| (i as u32, it)), alike.clone())
            .unwrap();
        let alike = LexicalIndex::open(alike_dir.path(), alike).unwrap();
        assert_eq!(alike.search("trail", 3, None).unwrap().len(), 1);
        let typed = super::super::Bm25Params { fuzziness: super::super::Fuzziness::Off, ..Default::default() };
        assert!(alike.search_with("Schuh", 3, None, typed).unwrap().is_empty(), "English stems leave schuhe");
        assert_eq!(alike.search("Schuh", 3, None).unwrap().len(), 1, "one edit from schuhe");
    }

    #[test]
    fn french_elisions_go_whole() {
        let french = in_language(Language::French);
        let catalog = [("toy", "Jouet en forme d'os"), ("bag", "Sac à dos")];
        assert_eq!(hits(&french, &catalog, "dos"), ["bag"], "\"d'os\" is not \"dos\"");
        assert_eq!(top(&french, &catalog, "os").as_deref(), Some("toy"));
    }

    #[test]
    fn stop_words_are_the_languages_and_match_as_written() {
        let settings = LexicalSettings { language: Language::French, stop_words: true, ..Default::default() };
        let catalog = [("a", "Le sac à dos"), ("b", "Sac de couchage")];
        assert_eq!(top(&settings, &catalog, "le"), None, "a French stop word");
        assert_eq!(top(&settings, &catalog, "à"), None, "listed with its accent");
        assert_eq!(top(&settings, &catalog, "sac dos").as_deref(), Some("a"));
        assert!(Language::French.has_stop_words() && !Language::Turkish.has_stop_words());
        let turkish = LexicalSettings { language: Language::Turkish, stop_words: true, ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let error = LexicalIndex::build(dir.path(), std::iter::empty(), turkish).unwrap_err().to_string();
        assert!(error.contains("no stop-word list for turkish"), "{error}");
    }

    #[test]
    fn names_are_what_indexes_on_disk_hold() {
        let name = |revision, language, stemming, stop| unicode_name(revision, language, stemming, stop);
        let first: Vec<String> = [(false, false), (true, false), (false, true), (true, true)]
            .map(|(s, w)| name(Revision::First, Language::English, s, w))
            .to_vec();
        assert_eq!(first, ["hyrank", "hyrank_en", "hyrank_stop", "hyrank_en_stop"]);
        assert_eq!(name(Revision::Joined, Language::French, false, false), "hyrank2_fr");
        assert_eq!(name(Revision::Joined, Language::English, true, false), "hyrank2_en_stem");
        assert_eq!(name(Revision::Joined, Language::French, true, true), "hyrank2_fr_stem_stop");
        assert_eq!(name(Revision::Joined, Language::German, false, true), "hyrank2_de_stop");
        assert_eq!(name(Revision::Alphanumeric, Language::English, true, false), "hyrank3_en_stem");
        assert_eq!(name(Revision::Alphanumeric, Language::Turkish, false, false), "hyrank3_tr");
        assert_eq!(name(Revision::FoldedLetters, Language::German, true, true), "hyrank4_de_stem_stop");
        assert_eq!(name(Revision::Segmented, Language::Danish, false, false), "hyrank5_da");
        assert_eq!(name(Revision::Ignorables, Language::Danish, false, false), "hyrank6_da");
        for language in Language::ALL {
            assert_eq!(language.name().parse::<Language>(), Ok(language));
            assert_eq!(serde_json::to_value(language).unwrap(), language.name());
        }
        assert!("klingon".parse::<Language>().unwrap_err().contains("english"));
        // A manifest from before the setting reads as English.
        let old: LexicalSettings = serde_json::from_str(r#"{"title_boost": 1.0, "stemming": true}"#).unwrap();
        assert_eq!(old.language, Language::English);
    }
}
