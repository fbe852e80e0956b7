//! The fields BM25 reads: the title, the text and the catalog fields searched beside them
//! (a brand, tags), each with its analyzer in tantivy's schema; and how an item becomes a
//! document of them.

use std::borrow::Cow;
use std::path::Path;

use tantivy::schema::{Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions};
use tantivy::TantivyDocument;

use super::{analyzers, Analyzer, FieldAnalysis, LexicalSettings};
use crate::analysis::Revision;
use crate::error::{Error, Result};
use crate::item::{FieldValue, Item};

/// The item index's field.
pub(super) const IDX: &str = "idx";

/// What a searched catalog field is called in the schema: prefixed, so that no catalog name
/// meets `title`, `text` or `idx`.
const FIELD_PREFIX: &str = "field.";

/// A catalog field BM25 searches beside the title and the text, with its weight.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchField {
    /// The catalog field: text or a list of strings (each string a value of the field).
    pub name: String,
    /// Multiplier on its matches, as `title_boost` is on the title's (BM25F's field weight).
    pub boost: f32,
    /// The field's own analysis, where it differs from the text's (tags in another language,
    /// names better not stemmed); the unicode analyzer and fields combined by `sum` only, as
    /// for the title. Absent: analysed as the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<FieldAnalysis>,
}

impl SearchField {
    /// `name` at weight `boost`, analysed as the text.
    pub fn new(name: impl Into<String>, boost: f32) -> Self {
        SearchField { name: name.into(), boost, analysis: None }
    }
}

/// One field BM25 scores.
#[derive(Debug, Clone)]
pub(super) struct Searched {
    pub field: Field,
    /// `title`, `text`, or the catalog field's name.
    pub name: String,
    pub boost: f32,
    /// The title: its own b and analysis may apply.
    pub title: bool,
}

/// The schema's fields.
pub(super) struct Fields {
    pub idx: Field,
    /// The title, the text, then the searched catalog fields in the settings' order.
    pub searched: Vec<Searched>,
    /// Every searched field's words, folded as the text's analysis folds them but not stemmed
    /// and no stop word dropped, with document frequencies and no positions: the vocabulary a
    /// word's beginning is completed from (`super::prefix`). Absent in generations built before
    /// 2026-12-07.
    pub words: Option<Field>,
}

impl Fields {
    pub fn title(&self) -> Field {
        self.searched[0].field
    }

    pub fn text(&self) -> Field {
        self.searched[1].field
    }

    /// The searched catalog fields.
    pub(super) fn catalog(&self) -> &[Searched] {
        &self.searched[2..]
    }
}

/// Searched fields indexed by one analyzer: a query is analysed once for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AnalysisGroup {
    /// The group's first field, whose analyzer reads the query.
    pub analyser: Field,
    /// A bit per field of [`Fields::searched`] (at most 32 fields: `MAX_SEARCH_FIELDS` + 2).
    pub fields: u64,
}

/// `fields.searched` grouped by the analyzer `names` gives each, in the order of each group's
/// first field.
pub(super) fn groups(fields: &Fields, names: &[String]) -> Vec<AnalysisGroup> {
    let mut groups: Vec<(usize, AnalysisGroup)> = Vec::new();
    for (f, searched) in fields.searched.iter().enumerate() {
        match groups.iter_mut().find(|(first, _)| names[*first] == names[f]) {
            Some((_, group)) => group.fields |= 1 << f,
            None => groups.push((f, AnalysisGroup { analyser: searched.field, fields: 1 << f })),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// The words field's name in the schema ([`Fields::words`]).
const WORDS: &str = "words";

/// The name of the analyzer `settings` index a field of `analysis` with, under `revision`.
fn analyzer_name(settings: &LexicalSettings, analysis: FieldAnalysis, revision: Revision) -> String {
    // Stop words exist for the unicode analyzer only; the indexer refuses them with `simple`.
    match (settings.analyzer, analysis.stemming) {
        (Analyzer::Unicode, stemming) => {
            analyzers::unicode_name(revision, analysis.language, stemming, analysis.stop_words)
        }
        (Analyzer::Simple, true) => "en_stem".to_string(),
        (Analyzer::Simple, false) => "default".to_string(),
    }
}

/// The analyzer names `settings` give the title, the text and each searched catalog field, in
/// that order, under `revision`.
pub(super) fn analyzer_names(settings: &LexicalSettings, revision: Revision) -> Vec<String> {
    let analyses = [settings.analysis_of(true), settings.analysis_of(false)]
        .into_iter()
        .chain(settings.search_fields.iter().map(|f| settings.field_analysis(f)));
    analyses.map(|analysis| analyzer_name(settings, analysis, revision)).collect()
}

/// The schema of a new index: the title, the text and every searched catalog field, each
/// analysed by its own analysis ([`LexicalSettings::analysis_of`],
/// [`LexicalSettings::field_analysis`]).
pub(super) fn schema(settings: &LexicalSettings, revision: Revision) -> (Schema, Fields) {
    // An index, once built, keeps the names in its schema (`open` reads them there).
    let mut names = analyzer_names(settings, revision).into_iter();
    let mut options = || {
        let name = names.next().expect("a name per field");
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(&name)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let mut builder = Schema::builder();
    let idx = builder.add_u64_field(IDX, NumericOptions::default().set_indexed().set_fast());
    let mut searched = vec![
        Searched {
            field: builder.add_text_field("title", options()),
            name: "title".into(),
            boost: settings.title_boost,
            title: true,
        },
        Searched { field: builder.add_text_field("text", options()), name: "text".into(), boost: 1.0, title: false },
    ];
    for wanted in &settings.search_fields {
        let field = builder.add_text_field(&format!("{FIELD_PREFIX}{}", wanted.name), options());
        searched.push(Searched { field, name: wanted.name.clone(), boost: wanted.boost, title: false });
    }
    // The text's language folds the words (German "ae" for "ä", Turkish casing); a field
    // analysed in another language completes by the text's folding, a known limit.
    let plain = FieldAnalysis { stemming: false, stop_words: false, ..settings.analysis_of(false) };
    let words = builder.add_text_field(
        WORDS,
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(&analyzer_name(settings, plain, revision))
                .set_index_option(IndexRecordOption::Basic),
        ),
    );
    (builder.build(), Fields { idx, searched, words: Some(words) })
}

/// The fields of an index on disk, for `settings`: every searched catalog field the settings
/// name must be in the schema, and the schema must search no other.
///
/// # Errors
/// [`Error::BadIndex`] naming what is missing or extra.
pub(super) fn fields_of(schema: &Schema, settings: &LexicalSettings, dir: &Path) -> Result<Fields> {
    let bad = |reason: String| Error::BadIndex { path: dir.to_path_buf(), reason };
    let field = |name: &str| schema.get_field(name).map_err(|_| bad(format!("lexical index has no field {name:?}")));
    let mut searched = vec![
        Searched { field: field("title")?, name: "title".into(), boost: settings.title_boost, title: true },
        Searched { field: field("text")?, name: "text".into(), boost: 1.0, title: false },
    ];
    for wanted in &settings.search_fields {
        let field = field(&format!("{FIELD_PREFIX}{}", wanted.name))?;
        searched.push(Searched { field, name: wanted.name.clone(), boost: wanted.boost, title: false });
    }
    let in_schema = schema.fields().filter(|(_, entry)| entry.name().starts_with(FIELD_PREFIX)).count();
    if in_schema != settings.search_fields.len() {
        return Err(bad(format!(
            "lexical index searches {in_schema} catalog fields, its settings name {}",
            settings.search_fields.len()
        )));
    }
    Ok(Fields { idx: field(IDX)?, searched, words: schema.get_field(WORDS).ok() })
}

/// `item` (at catalog index `idx`) as a document of `fields`: a list field's strings are each
/// a value of the field, as tantivy indexes a multi-valued field (one length, the sum); a
/// number is indexed as its text (`25`, `25.5`), as [`crate::item::FieldType::coerce`] makes
/// it. Infallible by design: a live item written before its field's type was known must not
/// fall out of BM25.
pub(super) fn document(fields: &Fields, idx: u32, item: &Item) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_u64(fields.idx, u64::from(idx));
    doc.add_text(fields.title(), &item.title);
    doc.add_text(fields.text(), &item.text);
    for searched in fields.catalog() {
        for value in values(item, searched) {
            doc.add_text(searched.field, value);
        }
    }
    if let Some(words) = fields.words {
        for text in texts(fields, item) {
            doc.add_text(words, text);
        }
    }
    doc
}

/// The values of `item`'s catalog field `searched`, as BM25 indexes them: a list's strings one
/// by one, a number as its text.
fn values<'a>(item: &'a Item, searched: &Searched) -> Vec<Cow<'a, str>> {
    match item.fields.get(&searched.name) {
        None => Vec::new(),
        Some(FieldValue::Text(value)) => vec![Cow::Borrowed(value.as_str())],
        Some(FieldValue::List(values)) => values.iter().map(|v| Cow::Borrowed(v.as_str())).collect(),
        Some(FieldValue::Number(n)) => vec![Cow::Owned(format!("{n}"))],
    }
}

/// Every text of `item` BM25 searches (the title, the text, each searched catalog field's
/// values): what [`Fields::words`] holds.
pub(super) fn texts<'a>(fields: &'a Fields, item: &'a Item) -> impl Iterator<Item = Cow<'a, str>> + 'a {
    let own = [Cow::Borrowed(item.title.as_str()), Cow::Borrowed(item.text.as_str())];
    own.into_iter().chain(fields.catalog().iter().flat_map(move |searched| values(item, searched)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexical::{Bm25Params, FieldCombination, LexicalIndex, MAX_SEARCH_FIELDS};

    fn item(id: &str, title: &str, fields: serde_json::Value) -> Item {
        Item {
            id: id.into(),
            title: title.into(),
            text: "Packs small.".into(),
            fields: serde_json::from_value(fields).unwrap(),
        }
    }

    fn searching(fields: &[(&str, f32)]) -> LexicalSettings {
        let search_fields = fields.iter().map(|(name, boost)| SearchField::new(*name, *boost));
        LexicalSettings { search_fields: search_fields.collect(), ..LexicalSettings::default() }
    }

    fn index(dir: &Path, settings: &LexicalSettings, items: &[Item]) -> LexicalIndex {
        LexicalIndex::build(dir, items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings.clone()).unwrap();
        LexicalIndex::open(dir, settings.clone()).unwrap()
    }

    /// A brand and a list of tags are found by BM25 beside the title and the text, under both
    /// field combinations, weighted by their boost, explained by name; live items too.
    #[test]
    fn catalog_fields_are_searched_with_their_weight() {
        let items = [
            item(
                "tent",
                "Cirque 2 bivy",
                serde_json::json!({"brand": "Kestrel", "tags": ["freestanding", "ultralight"]}),
            ),
            item("stove", "Kestrel stove", serde_json::json!({"brand": "Northpeak", "price": 40})),
            item("mug", "Enamel mug", serde_json::json!({})),
        ];
        let settings = searching(&[("brand", 2.0), ("tags", 1.0)]);
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), &settings, &items);
        let ids = |query: &str, params: Bm25Params| -> Vec<u32> {
            lexical.search_with(query, 5, None, params).unwrap().iter().map(|h| h.0).collect()
        };
        for fields in [FieldCombination::Bm25f, FieldCombination::Sum] {
            let params = Bm25Params { fields, ..Bm25Params::default() };
            assert_eq!(ids("ultralight", params), [0], "a tag");
            assert_eq!(ids("freestanding tent", params), [0]);
            assert_eq!(ids("northpeak", params), [1], "a brand");
            assert_eq!(ids("kestrel", params).len(), 2, "in a brand and in a title");
            let tree = lexical.explain_with("kestrel", 0, params).unwrap().unwrap();
            let text = format!("{tree:?}");
            assert!(text.contains("brand"), "{text}");
            let score = lexical.score_all("kestrel", params).unwrap().into_iter().find(|h| h.0 == 0).unwrap().1;
            assert!((tree.value - f64::from(score)).abs() < 1e-5);
        }
        // The weight decides between a brand match and a text match.
        let rivals = [
            item("branded", "Daypack", serde_json::json!({"brand": "Acme"})),
            Item { text: "Acme buckles and straps.".into(), ..item("mention", "Sling", serde_json::json!({})) },
        ];
        for (weight, first) in [(0.1, "mention"), (10.0, "branded")] {
            let weighted = searching(&[("brand", weight)]);
            let dir = tempfile::tempdir().unwrap();
            let lexical = index(dir.path(), &weighted, &rivals);
            let hits = lexical.search("acme", 2, None).unwrap();
            assert_eq!(hits.len(), 2);
            assert_eq!(rivals[hits[0].0 as usize].id, first, "brand weight {weight}");
        }
        // Without the setting the fields are not searched.
        let plain_dir = tempfile::tempdir().unwrap();
        let plain = index(plain_dir.path(), &LexicalSettings::default(), &items);
        assert!(plain.search("ultralight", 5, None).unwrap().is_empty());
        // A live item's fields are searched too.
        let live = item("pack", "Daypack", serde_json::json!({"tags": ["ultralight"]}));
        lexical.add_live([(3, &live)]).unwrap();
        assert_eq!(lexical.search("ultralight", 5, None).unwrap().len(), 2);
    }

    /// A number where a searched field holds text (a live item typed against an older
    /// generation) is indexed as its text, as the catalog's types would turn it, never refused:
    /// refusing would drop the item from BM25 with the write already durable.
    #[test]
    fn a_number_in_a_searched_field_is_indexed_as_its_text() {
        let items = [item("stove", "Stove", serde_json::json!({"model": 40}))];
        let settings = searching(&[("model", 1.0)]);
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), &settings, &items);
        assert_eq!(lexical.search("40", 5, None).unwrap().len(), 1);
        let live = item("lamp", "Lamp", serde_json::json!({"model": 7.5}));
        lexical.add_live([(1, &live)]).unwrap();
        assert_eq!(lexical.search("7.5", 5, None).unwrap().first().map(|h| h.0), Some(1));
    }

    /// A field most items lack is as long as the items holding it make it (Lucene's average),
    /// and where every item holds every field our scores are tantivy's own.
    #[test]
    fn a_sparse_field_averages_over_the_items_that_hold_it() {
        let mut items: Vec<Item> = (0..9).map(|i| item(&format!("plain{i}"), "Mug", serde_json::json!({}))).collect();
        items.push(item("branded", "Mug", serde_json::json!({"brand": "Acme Outdoor"})));
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), &searching(&[("brand", 1.0)]), &items);
        let tree = lexical.explain_with("acme", 9, Bm25Params::default()).unwrap().unwrap();
        let mut avgdl = Vec::new();
        let mut stack = vec![&tree];
        while let Some(node) = stack.pop() {
            if node.label.starts_with("avgdl") {
                avgdl.push(node.value);
            }
            stack.extend(&node.children);
        }
        assert_eq!(avgdl, [2.0], "the brand's two words over the one item holding it: {tree:?}");

        let full: Vec<Item> = [("a", "Acme Outdoor", "light"), ("b", "Northpeak", "light tent"), ("c", "Acme", "tent")]
            .iter()
            .map(|(id, brand, tag)| item(id, "Tent", serde_json::json!({"brand": brand, "tags": [tag, "camp"]})))
            .collect();
        let full_dir = tempfile::tempdir().unwrap();
        let lexical = index(full_dir.path(), &searching(&[("brand", 2.0), ("tags", 1.0)]), &full);
        crate::lexical::agrees_with_tantivy(&lexical, &["acme", "light tent", "acme camp tent"]);
    }

    /// The most fields the settings allow are all searched (a bit per field, 32 with the
    /// title and the text).
    #[test]
    fn the_most_fields_allowed_are_all_searched() {
        let names: Vec<String> = (0..MAX_SEARCH_FIELDS).map(|i| format!("f{i}")).collect();
        let fields = names.iter().map(|n| (n.clone(), serde_json::Value::from(format!("word{n}"))));
        let items = [item("many", "Many", serde_json::Value::Object(fields.collect()))];
        let settings = searching(&names.iter().map(|n| (n.as_str(), 1.0)).collect::<Vec<_>>());
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), &settings, &items);
        let last = format!("wordf{}", MAX_SEARCH_FIELDS - 1);
        for query in ["wordf0", last.as_str(), "many"] {
            assert_eq!(lexical.search(query, 5, None).unwrap().len(), 1, "{query}");
        }
    }

    /// Issue 15's "per field where given", for catalog fields: French tags on an English
    /// catalog meet the query by their French stems, a brand left unstemmed is matched as
    /// written; the query is analysed once per analyzer, each field looks up its own terms
    /// (tantivy's scorer, whose query is built field by field, agrees), live items too, and
    /// settings that do not describe the index, BM25F, stop words a language lacks and the
    /// simple analyzer are refused naming the field.
    #[test]
    fn a_catalog_field_may_have_its_own_analysis() {
        let items = [
            item("horse", "Wooden toy", serde_json::json!({"tags_fr": ["cheval", "jouet"], "brand": "Hobby"})),
            item("pens", "Felt pens", serde_json::json!({"brand": "Marks", "tags_fr": ["stylo"]})),
            item("marker", "Marking pen", serde_json::json!({"brand": "Acme", "tags_fr": ["feutre"]})),
        ];
        let french = FieldAnalysis { language: crate::lexical::Language::French, stemming: true, stop_words: false };
        let unstemmed = FieldAnalysis { stemming: false, ..LexicalSettings::default().analysis_of(false) };
        let sum = Bm25Params { fields: FieldCombination::Sum, ..Bm25Params::default() };
        let settings = LexicalSettings {
            bm25: sum,
            search_fields: vec![
                SearchField { analysis: Some(french), ..SearchField::new("tags_fr", 1.0) },
                SearchField { analysis: Some(unstemmed), ..SearchField::new("brand", 1.0) },
            ],
            ..LexicalSettings::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), &settings, &items);
        let ids = |lexical: &LexicalIndex, query: &str| -> Vec<u32> {
            let mut hits: Vec<u32> = lexical.search(query, 5, None).unwrap().iter().map(|h| h.0).collect();
            hits.sort_unstable();
            hits
        };
        assert_eq!(ids(&lexical, "chevaux"), [0], "French plural, French stem: cheval");
        assert_eq!(ids(&lexical, "marks"), [1, 2], "the brand as written, the title's English stem");
        assert_eq!(ids(&lexical, "mark"), [2], "the brand is unstemmed; the title is English-stemmed");
        // The same catalog with both fields read as the text: the other way round.
        let as_text = LexicalSettings { search_fields: vec![SearchField::new("tags_fr", 1.0)], ..settings.clone() };
        let plain_dir = tempfile::tempdir().unwrap();
        let plain = index(plain_dir.path(), &as_text, &items);
        assert!(ids(&plain, "chevaux").is_empty(), "English leaves chevaux, the tag is cheval");
        let tree = lexical.explain_with("chevaux", 0, sum).unwrap().unwrap();
        let labels: Vec<&str> = tree.children.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["tags_fr:cheval, product of"], "{tree:?}");
        // Every item holds both fields, so tantivy's avgdl (over every item) is ours.
        crate::lexical::agrees_with_tantivy(&lexical, &["chevaux", "marks mark", "wooden jouets feutres"]);
        let live = item("pony", "Pony", serde_json::json!({"tags_fr": ["chevaux"]}));
        lexical.add_live([(3, &live)]).unwrap();
        assert_eq!(ids(&lexical, "cheval"), [0, 3], "a live field is analysed in its own language");

        let field_named = |settings: LexicalSettings| settings.check().unwrap_err().to_string();
        let bm25f = LexicalSettings { bm25: Bm25Params::default(), ..settings.clone() };
        let error = field_named(bm25f);
        assert!(error.contains("search_fields.tags_fr.analysis") && error.contains("by sum"), "{error}");
        let mut no_list = settings.clone();
        no_list.search_fields[1].analysis =
            Some(FieldAnalysis { language: crate::lexical::Language::Turkish, stemming: true, stop_words: true });
        let error = field_named(no_list);
        assert!(error.contains("search_fields.brand.analysis.stop_words") && error.contains("turkish"), "{error}");
        let error = field_named(LexicalSettings { analyzer: Analyzer::Simple, ..settings.clone() });
        assert!(error.contains("search_fields.tags_fr.analysis") && error.contains("unicode analyzer"), "{error}");
        // The text's analysis, given as the field's own: no exception, BM25F allowed.
        let alike = LexicalSettings {
            bm25: Bm25Params::default(),
            search_fields: vec![SearchField {
                analysis: Some(settings.analysis_of(false)),
                ..SearchField::new("tags_fr", 1.0)
            }],
            ..LexicalSettings::default()
        };
        assert!(alike.fields_analysed_alike() && alike.check().is_ok());
        // Settings that do not describe the index are refused when it opens.
        for wrong in
            [as_text, LexicalSettings { search_fields: settings.search_fields[..1].to_vec(), ..settings.clone() }]
        {
            let error = LexicalIndex::open(dir.path(), wrong).err().unwrap().to_string();
            assert!(error.contains("catalog fields") || error.contains("but its schema names"), "{error}");
        }
        let mut swapped = settings.clone();
        swapped.search_fields[0].analysis = Some(unstemmed);
        swapped.search_fields[1].analysis = Some(french);
        let error = LexicalIndex::open(dir.path(), swapped).err().unwrap().to_string();
        let names = "its schema names hyrank6_en_stem, hyrank6_en_stem, hyrank6_fr_stem, hyrank6_en";
        assert!(error.contains("tags_fr, brand with") && error.contains(names), "{error}");
    }

    #[test]
    fn searched_fields_are_checked_and_must_match_the_index() {
        for (fields, expected) in [
            (vec![("brand", 1.0), ("brand", 2.0)], "named twice"),
            (vec![("brand", 0.0)], "not a number above 0 and at most 1000"),
            (vec![("brand", f32::NAN)], "not a number above 0 and at most 1000"),
            (vec![("brand", 1e38)], "weight 100000000000000000000000000000000000000 is not a number above 0"),
            (vec![("", 1.0)], "without a name"),
            (vec![("title", 1.0)], "the item's own field"),
        ] {
            let error = searching(&fields).check().unwrap_err().to_string();
            assert!(error.contains(expected), "{fields:?}: {error}");
        }
        let many: Vec<(String, f32)> = (0..=MAX_SEARCH_FIELDS).map(|i| (format!("f{i}"), 1.0)).collect();
        let many: Vec<(&str, f32)> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        assert!(searching(&many).check().unwrap_err().to_string().contains("at most"));
        let heavy_title = LexicalSettings { title_boost: 1e38, ..LexicalSettings::default() };
        assert!(heavy_title.check().unwrap_err().to_string().starts_with("invalid title_boost"), "a title too");

        // Settings and schema disagree: refused at open, either way round.
        let items = [item("tent", "Tent", serde_json::json!({"brand": "Kestrel"}))];
        let dir = tempfile::tempdir().unwrap();
        index(dir.path(), &searching(&[("brand", 1.0)]), &items);
        let error = LexicalIndex::open(dir.path(), searching(&[("tags", 1.0)])).err().unwrap().to_string();
        assert!(error.contains("field.tags"), "{error}");
        let error = LexicalIndex::open(dir.path(), LexicalSettings::default()).err().unwrap().to_string();
        assert!(error.contains("searches 1 catalog fields"), "{error}");
        // A manifest from before the setting searches none.
        let old: LexicalSettings = serde_json::from_str(r#"{"title_boost": 1.0, "stemming": true}"#).unwrap();
        assert!(old.search_fields.is_empty());
        let written = serde_json::to_value(LexicalSettings::default()).unwrap();
        assert!(written.get("search_fields").is_none(), "not written when empty: {written}");
    }
}
