//! BM25 over item titles and texts (tantivy).
//!
//! Queries are plain text, never query syntax: the query is run through the field's own
//! analyzer and each token becomes a SHOULD clause on title (boosted) and on text. A user typing
//! `COVID-19: AND (pre)print?` gets a search for those words, not a syntax error.

use std::path::Path;
use std::sync::Arc;

use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::TokenStream;
use tantivy::{doc, DocAddress, Index, IndexReader, ReloadPolicy, Searcher, Term};

use crate::error::{Error, Result};
use crate::explain::Explanation;
use crate::item::Item;

/// Which tokenizer BM25 analyses titles, texts and queries with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Analyzer {
    /// `analysis.rs`: NFKC and diacritic folding, UAX #29 words, CJK bigrams, over-long tokens
    /// split rather than dropped.
    #[default]
    Unicode,
    /// tantivy's `SimpleTokenizer`: splits on anything not alphanumeric and drops tokens over
    /// 40 bytes. What generations built before the analyzer was a setting use.
    Simple,
}

impl Analyzer {
    /// What a manifest without the field was built with.
    fn legacy() -> Self {
        Analyzer::Simple
    }
}

/// How the lexical index analyses and weights text.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LexicalSettings {
    /// Multiplier on title matches.
    pub title_boost: f32,
    /// English stemming (the Snowball English stemmer after the tokenizer) instead of plain
    /// lower-casing; it changes ASCII words only.
    pub stemming: bool,
    /// The tokenizer.
    #[serde(default = "Analyzer::legacy")]
    pub analyzer: Analyzer,
}

impl Default for LexicalSettings {
    fn default() -> Self {
        LexicalSettings { title_boost: 1.0, stemming: true, analyzer: Analyzer::default() }
    }
}

/// Registers hyrank's analyzers with an index (tantivy keeps only the names in the schema).
fn register_analyzers(index: &Index) {
    use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer};
    index
        .tokenizers()
        .register(crate::analysis::NAME, TextAnalyzer::builder(crate::analysis::UnicodeTokenizer).build());
    index.tokenizers().register(
        STEMMED,
        TextAnalyzer::builder(crate::analysis::UnicodeTokenizer).filter(Stemmer::new(Language::English)).build(),
    );
}

/// The name of the Unicode analyzer with English stemming.
const STEMMED: &str = "hyrank_en";

struct Fields {
    idx: Field,
    title: Field,
    text: Field,
}

/// An opened (or freshly built) BM25 index.
pub struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    settings: LexicalSettings,
}

const IDX: &str = "idx";

fn schema(settings: &LexicalSettings) -> (Schema, Fields) {
    let analyzer = match (settings.analyzer, settings.stemming) {
        (Analyzer::Unicode, true) => STEMMED,
        (Analyzer::Unicode, false) => crate::analysis::NAME,
        (Analyzer::Simple, true) => "en_stem",
        (Analyzer::Simple, false) => "default",
    };
    let text_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(analyzer).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let mut builder = Schema::builder();
    let idx = builder.add_u64_field(IDX, NumericOptions::default().set_indexed().set_fast());
    let title = builder.add_text_field("title", text_options.clone());
    let text = builder.add_text_field("text", text_options);
    (builder.build(), Fields { idx, title, text })
}

impl LexicalIndex {
    /// Indexes `items` (item index, item) into the empty directory `dir`.
    pub fn build<'a>(
        dir: &Path,
        items: impl Iterator<Item = (u32, &'a Item)>,
        settings: LexicalSettings,
    ) -> Result<()> {
        let (schema, fields) = schema(&settings);
        let index = Index::create_in_dir(dir, schema)?;
        register_analyzers(&index);
        let mut writer = index.writer_with_num_threads(1, 100_000_000)?;
        for (idx, item) in items {
            writer.add_document(doc!(
                fields.idx => u64::from(idx),
                fields.title => item.title.as_str(),
                fields.text => item.text.as_str(),
            ))?;
        }
        writer.commit()?;
        // One segment: BM25 statistics are then exactly those of the whole collection, and
        // search touches one segment.
        let segments = index.searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
        }
        writer.wait_merging_threads()?;
        Ok(())
    }

    /// Opens what [`LexicalIndex::build`] wrote.
    pub fn open(dir: &Path, settings: LexicalSettings) -> Result<Self> {
        let index = Index::open_in_dir(dir)?;
        register_analyzers(&index);
        let fields = {
            let schema = index.schema();
            let field = |name: &str| {
                schema.get_field(name).map_err(|_| Error::BadIndex {
                    path: dir.to_path_buf(),
                    reason: format!("lexical index has no field {name:?}"),
                })
            };
            Fields { idx: field(IDX)?, title: field("title")?, text: field("text")? }
        };
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(LexicalIndex { index, reader, fields, settings })
    }

    /// The plain-text query as tantivy clauses, or `None` when no token survives analysis.
    fn query(&self, text: &str) -> Result<Option<BooleanQuery>> {
        let mut analyzer = self.index.tokenizer_for_field(self.fields.text)?;
        let mut stream = analyzer.token_stream(text);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        while stream.advance() {
            let token = stream.token().text.clone();
            let title: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(self.fields.title, &token),
                IndexRecordOption::WithFreqs,
            ));
            let title = if (self.settings.title_boost - 1.0).abs() > f32::EPSILON {
                Box::new(BoostQuery::new(title, self.settings.title_boost))
            } else {
                title
            };
            clauses.push((Occur::Should, title));
            clauses.push((
                Occur::Should,
                Box::new(TermQuery::new(Term::from_field_text(self.fields.text, &token), IndexRecordOption::WithFreqs)),
            ));
        }
        Ok((!clauses.is_empty()).then(|| BooleanQuery::new(clauses)))
    }

    /// Item indexes come from the `idx` fast field (a column read, no document fetch).
    fn item_of(&self, searcher: &Searcher, address: DocAddress) -> Result<u32> {
        let column = searcher.segment_reader(address.segment_ord).fast_fields().u64(IDX)?;
        column.first(address.doc_id).map(|v| v as u32).ok_or_else(|| Error::BadIndex {
            path: "lexical".into(),
            reason: format!("document {address:?} has no idx"),
        })
    }

    /// The `k` best items for `text` among those `allowed` (indexed by item), best first.
    pub fn search(&self, text: &str, k: usize, allowed: Option<Arc<Vec<bool>>>) -> Result<Vec<(u32, f32)>> {
        let Some(query) = self.query(text)? else { return Ok(Vec::new()) };
        if k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(k).order_by_score();
        let found = match allowed {
            Some(allowed) => {
                let keep = move |idx: u64| allowed.get(idx as usize).copied().unwrap_or(false);
                searcher.search(&query, &FilterCollector::new(IDX.to_string(), keep, top))?
            }
            None => searcher.search(&query, &top)?,
        };
        let mut hits = found
            .into_iter()
            .map(|(score, address)| Ok((self.item_of(&searcher, address)?, score)))
            .collect::<Result<Vec<_>>>()?;
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(hits)
    }

    /// tantivy's explanation of `item`'s BM25 score for `text`, or `None` if it does not match.
    pub fn explain(&self, text: &str, item: u32) -> Result<Option<Explanation>> {
        let Some(query) = self.query(text)? else { return Ok(None) };
        let searcher = self.reader.searcher();
        let by_idx = TermQuery::new(Term::from_field_u64(self.fields.idx, u64::from(item)), IndexRecordOption::Basic);
        let Some((_, address)) = searcher.search(&by_idx, &TopDocs::with_limit(1).order_by_score())?.into_iter().next()
        else {
            return Ok(None);
        };
        match query.explain(&searcher, address) {
            Ok(explanation) => Ok(Some(Explanation::from_tantivy(&explanation))),
            // tantivy reports "does not match" as an error; for us it is simply no explanation.
            Err(tantivy::TantivyError::InvalidArgument(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
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
    use super::*;

    fn item(id: &str, title: &str, text: &str) -> Item {
        Item { id: id.into(), title: title.into(), text: text.into(), fields: Default::default() }
    }

    fn index(dir: &Path, settings: LexicalSettings, items: &[Item]) -> LexicalIndex {
        LexicalIndex::build(dir, items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings).unwrap();
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

    #[test]
    fn manifests_without_an_analyzer_read_as_simple() {
        let old: LexicalSettings = serde_json::from_str(r#"{"title_boost": 1.0, "stemming": true}"#).unwrap();
        assert_eq!(old.analyzer, Analyzer::Simple);
        assert_eq!(LexicalSettings::default().analyzer, Analyzer::Unicode);
    }
}
