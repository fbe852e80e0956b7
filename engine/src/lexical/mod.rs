//! BM25 over item titles and texts (tantivy).
//!
//! Queries are plain text, never query syntax: each field analyses the query with its own
//! analyzer (the title's and a catalog field's may differ from the text's), and each term is
//! looked up in the fields that analysed it so. A user typing
//! `COVID-19: AND (pre)print?` gets a search for those words, not a syntax error.

use std::sync::Arc;

use tantivy::schema::Field;
use tantivy::tokenizer::{TextAnalyzer, TokenStream};
use tantivy::{DocAddress, Index, IndexReader, Searcher};

use crate::error::{Error, Result};
use live::LiveRows;

mod analyzers;
mod automaton;
mod bm25;
mod cache;
mod corrections;
mod files;
mod fragment;
mod fuzzy;
mod hidden;
mod highlight;
mod language;
mod live;
mod prefix;
mod reference;
#[cfg(test)]
use reference::agrees_with_tantivy;
mod schema;
mod terms;
mod typed;

pub use analyzers::{boost_problem, Analyzer, FieldAnalysis, MAX_BOOST, MAX_SEARCH_FIELDS};
pub use language::Language;

pub use bm25::{Bm25Overrides, Bm25Params, FieldCombination, MAX_K1};
pub use corrections::{Correction, DidYouMean};
pub use fuzzy::{Fuzziness, MAX_EXPANSIONS};
pub(crate) use hidden::{covers, HiddenVersion};
pub use highlight::{Highlighter, Highlights, FRAGMENT_BYTES};
pub use prefix::{Prefix, MIN_PREFIX_CHARS};
pub use schema::SearchField;
use schema::{AnalysisGroup, Fields, IDX};
use terms::QueryTerm;

/// How the lexical index analyses and weights text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LexicalSettings {
    /// Multiplier on title matches.
    pub title_boost: f32,
    /// Stemming in [`LexicalSettings::language`] (Snowball's stemmer) instead of the words as
    /// written.
    pub stemming: bool,
    /// The catalog's language: what the stemmer and the stop words are for. English in
    /// manifests from before it was a setting (English was then the only one).
    #[serde(default)]
    pub language: Language,
    /// The tokenizer.
    #[serde(default = "Analyzer::legacy")]
    pub analyzer: Analyzer,
    /// BM25's k1 and b; absent in manifests from before they were settings (tantivy's fixed
    /// 1.2 and 0.75 then).
    #[serde(default = "Bm25Params::tantivy")]
    pub bm25: Bm25Params,
    /// Drop the language's stop words before stemming (Lucene's 33 for English: "a", "the",
    /// "of"…; the unicode analyzer only, and not every language has a list:
    /// [`Language::has_stop_words`]). Off by default: measured on SciFact, docs/EVAL.md.
    #[serde(default)]
    pub stop_words: bool,
    /// The title's own analysis, where it differs from the text's (the settings above): a
    /// catalog whose titles are in another language than its texts, or are names better not
    /// stemmed. The unicode analyzer only, and fields combined by `sum`: BM25F adds a term's
    /// frequencies across fields, so every field must turn a word into the same term (the rule
    /// of Elasticsearch's `combined_fields`). Absent: the title is analysed as the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_analysis: Option<FieldAnalysis>,
    /// Catalog fields BM25 searches beside the title and the text (a brand, tags), each with
    /// its weight, analysed as the text unless it has its own analysis (the title's rules), and
    /// combined as the title and the text are. Text and list fields only. Absent in manifests
    /// from before the setting: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_fields: Vec<SearchField>,
}

impl Default for LexicalSettings {
    fn default() -> Self {
        LexicalSettings {
            title_boost: 1.0,
            stemming: true,
            language: Language::default(),
            analyzer: Analyzer::default(),
            bm25: Bm25Params::default(),
            stop_words: false,
            title_analysis: None,
            search_fields: Vec::new(),
        }
    }
}

/// An opened (or freshly built) BM25 index.
pub struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    settings: LexicalSettings,
    /// The searched fields grouped by the analyzer they were indexed with (the schema's
    /// names), in the order of their first field: a query is analysed once per group, and
    /// BM25F may combine the fields only when there is one group.
    groups: Vec<AnalysisGroup>,
    /// Per searched field, for catalog fields only: how many of the generation's items hold it
    /// (counted once, at open), for its average length.
    field_docs: Vec<Option<u64>>,
    /// Per searched field, the analyzer queries are read with (`analyzers::search_analyzer`),
    /// looked up once, at open.
    search_analyzers: Vec<TextAnalyzer>,
    /// The words field's analyzer (folds, does not stem), looked up once, at open: what a
    /// word being typed or mistyped is read as among the catalog's words (`prefix`, `typed`).
    words_analyzer: Option<TextAnalyzer>,
    /// Items written live since the build ([`LexicalIndex::add_live`]): postings in memory
    /// beside the generation's index, which stays immutable on disk.
    live: std::sync::RwLock<LiveRows>,
    /// Rows deleted or replaced since the build, which BM25's statistics leave out
    /// ([`LexicalIndex::hide`]).
    hidden: std::sync::Mutex<hidden::Hidden>,
    /// Recent readings of query words (`cache::ExpansionCache`).
    expansions: std::sync::Mutex<cache::ExpansionCache>,
}

impl LexicalIndex {
    /// The query's terms after the text's analysis, in order, repeats kept (each counts, as
    /// a repeated SHOULD clause does).
    #[cfg(test)]
    fn tokens(&self, text: &str) -> Result<Vec<String>> {
        Ok(self.terms_of(self.fields.text(), text)?.into_iter().map(|t| t.text).collect())
    }

    /// The query's terms after `field`'s search analyzer ([`analyzers::search_analyzer`], looked
    /// up at open), as [`LexicalIndex::tokens`], each with its word of the query and whether it
    /// is a number that depends on the word's letters ([`terms::read`]).
    fn terms_of(&self, field: Field, text: &str) -> Result<Vec<QueryTerm>> {
        // Every caller reads a searched field (the title, the text, a group's first field).
        let searched = self.fields.searched.iter().position(|s| s.field == field);
        let searched = searched.ok_or_else(|| Error::invalid("field", "queries are read only into searched fields"))?;
        let mut analyzer = self.search_analyzers[searched].clone();
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().clone());
        }
        Ok(terms::read(text, &tokens))
    }

    /// The generation's item count: its rows are the item indexes below it, live rows follow.
    fn built(&self) -> u32 {
        u32::try_from(self.reader.searcher().num_docs()).unwrap_or(u32::MAX)
    }

    /// Item indexes come from the `idx` fast field (a column read, no document fetch).
    fn item_of(&self, searcher: &Searcher, address: DocAddress) -> Result<u32> {
        let column = searcher.segment_reader(address.segment_ord).fast_fields().u64(IDX)?;
        column.first(address.doc_id).map(|v| v as u32).ok_or_else(|| Error::BadIndex {
            path: "lexical".into(),
            reason: format!("document {address:?} has no idx"),
        })
    }

    /// The `k` best items for `text` among those `allowed` (indexed by item), best first, with
    /// the generation's k1 and b.
    pub fn search(&self, text: &str, k: usize, allowed: Option<Arc<Vec<bool>>>) -> Result<Vec<(u32, f32)>> {
        self.search_with(text, k, allowed, self.settings.bm25)
    }

    /// [`LexicalIndex::search`] with `params` for k1 and b, through [`LexicalIndex::score_all`],
    /// which reads every posting of the query's terms. On SciFact (5,183 abstracts) that took
    /// a p50 of 1.1 ms against 2.3 ms for tantivy's own scorer at its fixed constants
    /// (block-max WAND, [`LexicalIndex::search_tantivy`]), so it serves every request; on far
    /// larger catalogs, where WAND skips most postings, that is to be measured again.
    ///
    /// # Errors
    /// Parameters out of range, or a failing index read.
    pub fn search_with(
        &self,
        text: &str,
        k: usize,
        allowed: Option<Arc<Vec<bool>>>,
        params: Bm25Params,
    ) -> Result<Vec<(u32, f32)>> {
        let mut hits: Vec<(u32, f32)> = self
            .score_all(text, params)?
            .into_iter()
            .filter(|(item, _)| allowed.as_ref().is_none_or(|a| a.get(*item as usize).copied().unwrap_or(false)))
            .collect();
        crate::fusion::keep_best(&mut hits, k);
        Ok(hits)
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &LexicalSettings {
        &self.settings
    }

    /// Documents in the index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tantivy::schema::{NumericOptions, Schema, TextFieldIndexing, TextOptions};

    use super::*;
    use crate::analysis::Revision;
    use crate::explain::Explanation;
    use crate::item::Item;

    fn item(id: &str, title: &str, text: &str) -> Item {
        Item { id: id.into(), title: title.into(), text: text.into(), fields: Default::default() }
    }

    fn index(dir: &Path, settings: LexicalSettings, items: &[Item]) -> LexicalIndex {
        LexicalIndex::build(dir, items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings.clone()).unwrap();
        LexicalIndex::open(dir, settings).unwrap()
    }

    /// Issue 15's failing inputs, each with the right result: found by BM25 under the unicode
    /// analyzer; the last assertion keeps the simple analyzer's old behaviour on record.
    #[test]
    fn cjk_arabic_and_overlong_items_are_found_by_the_words_people_type() {
        let long_run = "超轻量级双人四季登山露营帐篷防水";
        let giant = "x".repeat(70_000);
        let items = [
            item("mug", "Enamel coffee mug", "A mug for camp coffee."),
            item("tent", "轻量级帐篷", "双人"),
            item("run", long_run, ""),
            item("mountains", "الْجِبَال", "رحلة"),
            item("giant", "Giant token", &giant),
            item("cafe", "Café crème", "ＦＵＬＬ width"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let top = |query: &str| lexical.search(query, 3, None).unwrap().first().map(|h| items[h.0 as usize].id.clone());
        assert_eq!(top("帐篷").as_deref(), Some("tent"));
        assert_eq!(top(long_run).as_deref(), Some("run"), "a 16-character CJK run is indexed");
        assert_eq!(top("露营帐篷").as_deref(), Some("run"));
        assert_eq!(top("الجبال").as_deref(), Some("mountains"), "typed without vowel marks");
        assert_eq!(top(&giant).as_deref(), Some("giant"), "a 70,000-character token is indexed");
        assert_eq!(top("cafe creme").as_deref(), Some("cafe"));
        assert_eq!(top("full").as_deref(), Some("cafe"), "full-width letters fold");
        assert!(lexical.search("!!!", 3, None).unwrap().is_empty());

        let old = tempfile::tempdir().unwrap();
        let simple = index(old.path(), LexicalSettings { analyzer: Analyzer::Simple, ..Default::default() }, &items);
        assert!(simple.search("帐篷", 3, None).unwrap().is_empty(), "the simple analyzer cannot split a CJK run");
    }

    /// A word that holds punctuation, and words joined by hyphens, are found by their parts and
    /// by the parts written together, whichever apostrophe either side used; an index built
    /// before joined words keeps its own analysis, for its stored and its live items.
    #[test]
    fn joined_words_are_found_however_people_type_them() {
        let items = [
            item("plane", "L’avion de Paris", "Un vol direct."),
            item("shirt", "Organic T-Shirt", "Cotton, size M."),
            item("usa", "Made in the U.S.A.", "Since 1920"),
            item("mug", "Enamel mug", "Don't drop it."),
        ];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let top = |lexical: &LexicalIndex, query: &str| {
            lexical.search(query, 3, None).unwrap().first().map(|h| items[h.0 as usize].id.clone())
        };
        for (query, id) in [
            ("avion", "plane"),
            ("l'avion", "plane"),
            ("lavion", "plane"),
            ("tshirt", "shirt"),
            ("t-shirt", "shirt"),
            ("shirt", "shirt"),
            ("usa", "usa"),
            ("dont", "mug"),
            ("don’t", "mug"),
        ] {
            assert_eq!(top(&lexical, query).as_deref(), Some(id), "{query}");
        }

        let old = tempfile::tempdir().unwrap();
        // Words as typed: what each revision's analysis finds, not what typo tolerance adds.
        let typed = Bm25Params { fuzziness: Fuzziness::Off, ..Bm25Params::default() };
        let settings = LexicalSettings { bm25: typed, ..LexicalSettings::default() };
        LexicalIndex::build_with(
            old.path(),
            items.iter().enumerate().map(|(i, it)| (i as u32, it)),
            settings.clone(),
            Revision::First,
        )
        .unwrap();
        let old = LexicalIndex::open(old.path(), settings.clone()).unwrap();
        // The names are what generations on disk hold: pinned, not derived.
        let tokenizer =
            |lexical: &LexicalIndex| match lexical.index.schema().get_field_entry(lexical.fields.text()).field_type() {
                tantivy::schema::FieldType::Str(options) => {
                    options.get_indexing_options().unwrap().tokenizer().to_string()
                }
                other => panic!("{other:?}"),
            };
        assert_eq!((tokenizer(&lexical), tokenizer(&old)), ("hyrank6_en_stem".to_string(), "hyrank_en".to_string()));
        // A generation of one item built under `revision`, with its directory.
        let built_with = |revision, title: &str| {
            let dir = tempfile::tempdir().unwrap();
            let one = [item("one", title, "")];
            LexicalIndex::build_with(dir.path(), [(0, &one[0])].into_iter(), settings.clone(), revision).unwrap();
            (LexicalIndex::open(dir.path(), settings.clone()).unwrap(), dir)
        };
        // A generation built before folded letters keeps "Łódź" apart from "lodz".
        let (unfolded, _dir) = built_with(Revision::Alphanumeric, "Łódź");
        assert_eq!(tokenizer(&unfolded), "hyrank3_en_stem");
        assert!(unfolded.search("lodz", 3, None).unwrap().is_empty());
        assert_eq!(unfolded.search("łódź", 3, None).unwrap().len(), 1);
        // A generation built before letters beside digits keeps "3.5mm" whole.
        let (joined, _dir) = built_with(Revision::Joined, "Cable 3.5mm");
        assert_eq!(tokenizer(&joined), "hyrank2_en_stem");
        assert!(joined.search("mm", 3, None).unwrap().is_empty());
        assert_eq!(joined.search("3.5mm", 3, None).unwrap().len(), 1);
        assert_eq!(top(&old, "l’avion").as_deref(), Some("plane"));
        assert_eq!(top(&old, "avion"), None, "the first revision keeps l’avion whole");
        let live = item("boat", "Le bateau", "L’hélicoptère et l’avion");
        old.add_live([(4, &live)]).unwrap();
        let hits = old.search("l’helicoptere", 3, None).unwrap();
        assert_eq!(hits.first().map(|h| h.0), Some(4), "a live item is analysed as the index was built");
        assert!(old.search("helicoptere", 3, None).unwrap().is_empty());

        // An analyzer this build does not know (a newer generation's) is refused at open.
        let newer = tempfile::tempdir().unwrap();
        let mut schema = Schema::builder();
        let options =
            TextOptions::default().set_indexing_options(TextFieldIndexing::default().set_tokenizer("hyrank9_en"));
        schema.add_u64_field(IDX, NumericOptions::default().set_indexed().set_fast());
        schema.add_text_field("title", options.clone());
        schema.add_text_field("text", options);
        Index::create_in_dir(newer.path(), schema.build()).unwrap();
        let error = LexicalIndex::open(newer.path(), settings).err().unwrap().to_string();
        assert!(error.contains("unknown to this build"), "{error}");
    }

    /// A number the query writes after letters ("PD1", "PD-1", "iPhone15", "DDR5-6000") counts
    /// only in items that also hold a lettered term of its word, in any field, in our scorer,
    /// in tantivy's reference query and in the explanation; typed apart, first in its word
    /// ("27-inch") or beside a single letter ("p53"), it counts alone.
    #[test]
    fn a_number_written_after_letters_counts_beside_them() {
        let items = [
            item("pd1", "PD1 inhibitors", "Checkpoint therapy."),
            item("pd-1", "Anti PD-1 antibody", "Checkpoint therapy."),
            item("lone", "Stage 1 trial", "One arm."),
            item("pd", "PD progression", "A trial of 1 drug."),
            item("tp53", "TP53 mutations", "Tumour suppressor."),
            item("iphone14", "iPhone 14 case", "Fits the phone."),
            item("27in", "LG 27 in monitor", "UltraFine display."),
            item("24inch", "Dell 24-inch monitor", "A 24 inch display."),
            item("bank", "6000 mAh power bank", "USB-C."),
        ];
        // The title analysed apart (not stemmed): a number's letters may be in another field's
        // analysis than the number.
        let apart = Bm25Params { fields: FieldCombination::Sum, ..Bm25Params::default() };
        let title = FieldAnalysis { stemming: false, ..LexicalSettings::default().analysis_of(true) };
        for settings in [
            LexicalSettings::default(),
            LexicalSettings { bm25: apart, title_analysis: Some(title), ..LexicalSettings::default() },
        ] {
            let dir = tempfile::tempdir().unwrap();
            let lexical = index(dir.path(), settings.clone(), &items);
            let ids = |query: &str| -> Vec<&str> {
                lexical.search(query, 10, None).unwrap().iter().map(|h| items[h.0 as usize].id.as_str()).collect()
            };
            for query in ["PD1", "pd-1"] {
                let found = ids(query);
                assert!(!found.contains(&"lone"), "{query}: the lone \"1\" does not match: {found:?}");
                assert_eq!(found.len(), 3, "{query}: {found:?}");
            }
            // Typed apart, "1" is a word of its own.
            assert!(ids("pd 1").contains(&"lone"));
            // The letters alone still match, below the items holding the number too.
            assert_eq!(ids("iphone15"), ["iphone14"]);
            assert_eq!(ids("p53"), ["tp53"], "\"53\" lets p53 meet TP53");
            assert_eq!(ids("DDR5-6000"), Vec::<&str>::new(), "6000 belongs to the name");
            // A quantity's number counts whatever its unit is written as.
            let tree = lexical.explain_with("27-inch monitor", 6, settings.bm25).unwrap().unwrap();
            assert!(tree.children.iter().any(|c| c.label.starts_with("27,") || c.label.contains(":27,")), "{tree:?}");
            // "pd" holds "pd" in its title and "1" in its text: the number counts there, and
            // the explanation says so.
            let pd = lexical.explain_with("PD1", 3, settings.bm25).unwrap().unwrap();
            let labels: Vec<&str> = pd.children.iter().map(|c| c.label.as_str()).collect();
            assert_eq!(labels.len(), 2, "{labels:?}");
            assert!(labels[1].contains("1 (written after the letters of \"PD1\", which the item holds)"), "{labels:?}");
            let score = lexical.search("PD1", 10, None).unwrap().into_iter().find(|h| h.0 == 3).unwrap().1;
            assert!((pd.value - f64::from(score)).abs() < 1e-5);
        }
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        agrees_with_tantivy(&lexical, &["PD1", "pd-1 trial", "iphone15 case", "p53", "DDR5-6000 bank", "27-inch"]);
    }

    /// Our scorer at tantivy's constants gives tantivy's scores; other k1 and b change them as
    /// the formula says, and the explanation adds up to the score.
    #[test]
    fn our_bm25_matches_tantivys_at_its_constants_and_follows_k1_and_b() {
        let texts = [
            ("Trail tent", "A light tent for two. Tent poles of aluminium; the tent packs small."),
            ("Camp stove", "A stove for the trail, light and small."),
            ("Tent footprint", "Protects the floor of a tent."),
            (
                "Sleeping bag",
                "Warm to minus five; packs into a stuff sack the size of a small tent bag, tent not included.",
            ),
        ];
        let items: Vec<Item> = texts.iter().enumerate().map(|(i, (t, x))| item(&i.to_string(), t, x)).collect();
        let dir = tempfile::tempdir().unwrap();
        let settings = LexicalSettings { title_boost: 2.0, ..LexicalSettings::default() };
        let lexical = index(dir.path(), settings, &items);
        agrees_with_tantivy(&lexical, &["tent", "light small tent", "stove trail tent tent"]);
        // b = 0: no length normalisation, so the long sleeping-bag text no longer loses to the
        // short footprint on equal "tent" counts in the text... and k1 = 0: presence only.
        let presence = lexical.search_with("tent", 10, None, Bm25Params { k1: 0.0, ..Bm25Params::TANTIVY }).unwrap();
        let text_only: Vec<f32> = presence.iter().filter(|h| h.0 != 0 && h.0 != 2).map(|h| h.1).collect();
        assert!(text_only.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6), "k1 0 ignores frequency: {presence:?}");
        let params = Bm25Params { k1: 0.9, b: 0.4, ..Bm25Params::TANTIVY };
        let hits = lexical.search_with("light small tent", 10, None, params).unwrap();
        for (item, score) in hits {
            let tree = lexical.explain_with("light small tent", item, params).unwrap().unwrap();
            assert!((tree.value - f64::from(score)).abs() < 1e-5, "{tree:?}");
            let parts: f64 = tree.children.iter().map(|c| c.value).sum();
            assert!((parts - tree.value).abs() < 1e-4);
            assert!(tree.label.contains("k1 0.9") && tree.label.contains("b 0.4"));
        }
        assert!(lexical.search_with("tent", 10, None, Bm25Params { k1: -1.0, b: 0.5, ..Bm25Params::TANTIVY }).is_err());
        assert!(
            lexical.search_with("tent", 10, None, Bm25Params { k1: 3e38, b: 1.0, ..Bm25Params::TANTIVY }).is_err(),
            "review: inf/NaN"
        );
        assert!(lexical.search_with("tent", 10, None, Bm25Params { k1: 1.0, b: 1.5, ..Bm25Params::TANTIVY }).is_err());
    }

    /// BM25F is BM25 over one field holding the title and the text, where that is exact:
    /// without length normalisation (b = 0) the fields' frequencies simply add. With b > 0 each
    /// field is normalised in its own field, and a term in both fields saturates once, so it
    /// scores less than the two fields' separate BM25 scores summed.
    #[test]
    fn bm25f_is_one_field_bm25_without_length_normalisation_and_saturates_once() {
        let texts = [
            ("Trail tent", "A light tent for two. Tent poles of aluminium; the tent packs small."),
            ("Camp stove", "A stove for the trail, light and small."),
            ("Tent footprint", "Protects the floor of a tent."),
            ("Sleeping bag", "Warm to minus five; packs small, tent not included."),
            ("Mug", "Enamel."),
        ];
        let two: Vec<Item> = texts.iter().enumerate().map(|(i, (t, x))| item(&i.to_string(), t, x)).collect();
        let one: Vec<Item> =
            texts.iter().enumerate().map(|(i, (t, x))| item(&i.to_string(), "", &format!("{t} {x}"))).collect();
        let (two_dir, one_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let fields = index(two_dir.path(), LexicalSettings::default(), &two);
        let joined = index(one_dir.path(), LexicalSettings::default(), &one);
        let bm25f = Bm25Params { b: 0.0, ..Bm25Params::default() };
        assert_eq!(bm25f.fields, FieldCombination::Bm25f, "the default for new generations");
        let sorted = |mut hits: Vec<(u32, f32)>| {
            hits.sort_by_key(|h| h.0);
            hits
        };
        for query in ["tent", "light small tent", "trail stove tent tent"] {
            let ours = sorted(fields.score_all(query, bm25f).unwrap());
            let reference = sorted(joined.score_all(query, Bm25Params { b: 0.0, ..Bm25Params::TANTIVY }).unwrap());
            assert_eq!(ours.len(), reference.len(), "{query}");
            for (o, r) in ours.iter().zip(&reference) {
                assert_eq!(o.0, r.0);
                assert!((o.1 - r.1).abs() <= 1e-5 * r.1.max(1.0), "{query}: {ours:?} vs {reference:?}");
            }
        }
        // Item 0 has "tent" in its title and its text: once saturated, not twice.
        let params = Bm25Params::default();
        let score = |p: Bm25Params| fields.score_all("tent", p).unwrap().into_iter().find(|h| h.0 == 0).unwrap().1;
        let summed = score(Bm25Params { fields: FieldCombination::Sum, ..params });
        assert!(score(params) < summed, "{} vs {summed}", score(params));
        // The tree adds up to the score, with each field's normalised frequency a child.
        for query in ["tent", "light small tent"] {
            for (item, value) in fields.score_all(query, params).unwrap() {
                let tree = fields.explain_with(query, item, params).unwrap().unwrap();
                assert!((tree.value - f64::from(value)).abs() < 1e-5, "{tree:?}");
                assert!(tree.label.starts_with("BM25F (k1 1.2, b 0.75)"), "{}", tree.label);
                let parts: f64 = tree.children.iter().map(|c| c.value).sum();
                assert!((parts - tree.value).abs() < 1e-4);
                for term in &tree.children {
                    let saturation = &term.children[2];
                    let tf = &saturation.children[0];
                    let from_fields: f64 = tf.children.iter().map(|c| c.value).sum();
                    assert!((from_fields - tf.value).abs() < 1e-6);
                    let expected = tf.value / (1.2 + tf.value);
                    assert!((saturation.value - expected).abs() < 1e-5, "{saturation:?}");
                }
            }
        }
        let both = fields.explain_with("tent", 0, params).unwrap().unwrap();
        let labels: Vec<&str> =
            both.children[0].children[2].children[0].children.iter().map(|c| c.label.as_str()).collect();
        assert!(labels[0].starts_with("title:") && labels[1].starts_with("text:"), "{labels:?}");
    }

    /// The title's own b (BM25F's b_f): at 0 a title's length no longer matters, the text keeps
    /// the item's b, the tree shows each field's b, and a title b equal to b changes nothing.
    #[test]
    fn the_title_has_its_own_length_normalisation() {
        let items = [
            item("short", "Tent", "Poles and pegs."),
            item("long", "Tent for two with a porch and a footprint", "Poles and pegs."),
            item("text", "Stove", "A tent stove."),
            item("other", "Mug", "Enamel."),
        ];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        for fields in [FieldCombination::Bm25f, FieldCombination::Sum] {
            let base = Bm25Params { fields, ..Bm25Params::default() };
            let score = |p: Bm25Params, item: u32| {
                lexical.score_all("tent", p).unwrap().into_iter().find(|h| h.0 == item).unwrap().1
            };
            assert!(score(base, 0) > score(base, 1), "b 0.75: the longer title scores less");
            let flat = Bm25Params { title_b: Some(0.0), ..base };
            assert_eq!(score(flat, 0), score(flat, 1), "title b 0: the title's length does not count");
            assert_eq!(score(flat, 2), score(base, 2), "the text keeps b");
            assert_eq!(score(Bm25Params { title_b: Some(base.b), ..base }, 1), score(base, 1));
            let tree = lexical.explain_with("tent", 1, flat).unwrap().unwrap();
            assert!(tree.label.contains("b 0.75, title b 0)"), "{}", tree.label);
            let b_leaves = |tree: &Explanation| -> Vec<f64> {
                let mut found = Vec::new();
                let mut stack = vec![tree];
                while let Some(node) = stack.pop() {
                    if node.label.starts_with("b, length") {
                        found.push(node.value);
                    }
                    stack.extend(&node.children);
                }
                found
            };
            assert_eq!(b_leaves(&tree), [0.0], "{tree:?}");
            let text_tree = lexical.explain_with("tent", 2, flat).unwrap().unwrap();
            assert_eq!(b_leaves(&text_tree), [0.75]);
            assert!((text_tree.value - f64::from(score(flat, 2))).abs() < 1e-5);
        }
        for b in [-0.1, 1.5, f32::NAN] {
            let error = Bm25Params { title_b: Some(b), ..Bm25Params::default() }.check().unwrap_err().to_string();
            assert!(error.contains("bm25.title_b"), "{error}");
        }
    }

    #[test]
    fn a_request_changes_only_what_it_names() {
        let base = Bm25Params::default();
        let changes: Bm25Overrides = serde_json::from_str(r#"{"k1": 0.9}"#).unwrap();
        assert_eq!(changes.over(base), Bm25Params { k1: 0.9, ..base });
        let changes: Bm25Overrides = serde_json::from_str(r#"{"fields": "sum"}"#).unwrap();
        assert_eq!(changes.over(base), Bm25Params { fields: FieldCombination::Sum, ..base });
        let changes: Bm25Overrides = serde_json::from_str(r#"{"title_b": 0.3}"#).unwrap();
        assert_eq!(changes.over(base), Bm25Params { title_b: Some(0.3), ..base });
        let generation = Bm25Params { title_b: Some(0.2), ..base };
        let changes: Bm25Overrides = serde_json::from_str(r#"{"b": 0.5}"#).unwrap();
        assert_eq!(changes.over(generation), Bm25Params { b: 0.5, ..generation }, "b leaves the title's own b");
        assert!(serde_json::from_str::<Bm25Overrides>(r#"{"k": 0.9}"#).is_err(), "a misspelt key is refused");
        let manifest: Bm25Params = serde_json::from_str(r#"{"k1": 1.2, "b": 0.75}"#).unwrap();
        assert_eq!(manifest.fields, FieldCombination::Sum, "generations before BM25F summed their fields");
    }

    #[test]
    fn stop_words_drop_lucenes_list_before_stemming() {
        let items = [item("a", "The state of the art", "Tents for the trail"), item("b", "Art", "")];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings { stop_words: true, ..Default::default() }, &items);
        assert_eq!(lexical.tokens("The state of the Tents").unwrap(), ["state", "tent"]);
        assert!(lexical.search("the of", 5, None).unwrap().is_empty());
        let plain_dir = tempfile::tempdir().unwrap();
        let plain = index(plain_dir.path(), LexicalSettings::default(), &items);
        assert_eq!(plain.search("the of", 5, None).unwrap().len(), 1);
    }

    #[test]
    fn manifests_without_an_analyzer_read_as_simple() {
        let old: LexicalSettings = serde_json::from_str(r#"{"title_boost": 1.0, "stemming": true}"#).unwrap();
        assert_eq!(old.analyzer, Analyzer::Simple);
        assert_eq!(old.bm25, Bm25Params::TANTIVY);
        assert!(!old.stop_words);
        assert_eq!(LexicalSettings::default().analyzer, Analyzer::Unicode);
    }
}
