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
use live::LiveSegment;

mod live;

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
    /// BM25's k1 and b; absent in manifests from before they were settings (tantivy's fixed
    /// 1.2 and 0.75 then).
    #[serde(default = "Bm25Params::tantivy")]
    pub bm25: Bm25Params,
    /// Drop Lucene's 33 English stop words ("a", "the", "of"…) before stemming (the unicode
    /// analyzer only). Off by default: measured on SciFact, docs/EVAL.md.
    #[serde(default)]
    pub stop_words: bool,
}

impl Default for LexicalSettings {
    fn default() -> Self {
        LexicalSettings {
            title_boost: 1.0,
            stemming: true,
            analyzer: Analyzer::default(),
            bm25: Bm25Params::default(),
            stop_words: false,
        }
    }
}

/// BM25's free parameters (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework:
/// BM25 and Beyond"): k1 saturates term frequency, b scales length normalisation, and
/// [`FieldCombination`] says how the title and the text make one score. A term t in a field of
/// length dl scores `idf(t) · (k1 + 1) · tf / (tf + k1 · (1 − b + b · dl / avgdl))` with
/// `idf = ln(1 + (N − n + 0.5) / (n + 0.5))`, tantivy's and Lucene's form.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bm25Params {
    /// Term-frequency saturation, 0 (presence only) to [`MAX_K1`].
    pub k1: f32,
    /// Length normalisation, 0 (none) to 1 (full).
    pub b: f32,
    /// How fields combine; absent in manifests from before it was a setting (`sum` then).
    #[serde(default = "FieldCombination::legacy")]
    pub fields: FieldCombination,
}

/// How BM25 scores an item with several text fields (its title and its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FieldCombination {
    /// BM25F (Robertson, Zaragoza & Taylor 2004, "Simple BM25 extension to multiple weighted
    /// fields"; Zaragoza et al. 2004, TREC-13): each field's frequency is length-normalised in
    /// its own field, `tf_f / (1 − b + b · dl_f / avgdl_f)`, weighted (the title boost) and
    /// summed, and the sum is saturated once: `idf · (k1 + 1) · tf / (k1 + tf)`, with n the
    /// items holding the term in any field. A term in the title and the text is one term of
    /// one document, as in Lucene over a concatenated field; saturating each field apart
    /// counts it twice.
    Bm25f,
    /// Each field scored as its own BM25 document (its own n, saturation and idf) and the
    /// scores summed: tantivy's multi-field query, and generations built before BM25F.
    Sum,
}

impl FieldCombination {
    /// What a manifest without the field was scored with.
    fn legacy() -> Self {
        FieldCombination::Sum
    }
}

/// A request's changes to the generation's [`Bm25Params`]; what is absent keeps the
/// generation's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Bm25Overrides {
    /// Term-frequency saturation, 0 to [`MAX_K1`].
    #[serde(default)]
    pub k1: Option<f32>,
    /// Length normalisation, 0 to 1.
    #[serde(default)]
    pub b: Option<f32>,
    /// How the title and the text combine.
    #[serde(default)]
    pub fields: Option<FieldCombination>,
}

impl Bm25Overrides {
    /// `base` with these changes.
    pub fn over(&self, base: Bm25Params) -> Bm25Params {
        Bm25Params {
            k1: self.k1.unwrap_or(base.k1),
            b: self.b.unwrap_or(base.b),
            fields: self.fields.unwrap_or(base.fields),
        }
    }
}

impl Bm25Params {
    /// The constants tantivy's own scorer is compiled with (its `bm25.rs`), and Lucene's
    /// defaults: still the default (SciFact train could not tell them from any other setting
    /// by more than 0.001 nDCG@10, docs/EVAL.md).
    pub const TANTIVY: Bm25Params = Bm25Params { k1: 1.2, b: 0.75, fields: FieldCombination::Sum };

    fn tantivy() -> Self {
        Self::TANTIVY
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// k1 negative or not finite, b outside 0..=1.
    pub fn check(&self) -> Result<()> {
        // Past 100 k1 only scales every score (tf saturates nowhere within any real field);
        // the bound keeps idf · (k1 + 1) far from f32's overflow.
        if !(self.k1.is_finite() && (0.0..=MAX_K1).contains(&self.k1)) {
            return Err(Error::invalid("bm25.k1", format!("{} is not a number from 0 to {MAX_K1}", self.k1)));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(Error::invalid("bm25.b", format!("{} is not between 0 and 1", self.b)));
        }
        Ok(())
    }
}

impl Default for Bm25Params {
    fn default() -> Self {
        DEFAULT_BM25
    }
}

/// The largest k1 accepted.
pub const MAX_K1: f32 = 100.0;

/// The default for new generations: Lucene's k1 and b (a grid on SciFact train found nothing
/// better by more than 0.001 nDCG@10), fields combined by BM25F (docs/EVAL.md).
const DEFAULT_BM25: Bm25Params = Bm25Params { k1: 1.2, b: 0.75, fields: FieldCombination::Bm25f };

/// Registers hyrank's analyzers with an index (tantivy keeps only the names in the schema):
/// the unicode tokenizer, then optionally Lucene's English stop words, then optionally the
/// English stemmer (stop words go first, as in Lucene's `EnglishAnalyzer`).
fn register_analyzers(index: &Index) {
    use tantivy::tokenizer::{Language, StopWordFilter, TextAnalyzer};
    let tokenizer = || crate::analysis::UnicodeTokenizer;
    let stem = || tantivy::tokenizer::Stemmer::new(Language::English);
    let stop = || StopWordFilter::new(Language::English).expect("tantivy ships an English list");
    let tokenizers = index.tokenizers();
    tokenizers.register(crate::analysis::NAME, TextAnalyzer::builder(tokenizer()).build());
    tokenizers.register(STEMMED, TextAnalyzer::builder(tokenizer()).filter(stem()).build());
    tokenizers.register(STOPPED, TextAnalyzer::builder(tokenizer()).filter(stop()).build());
    tokenizers.register(STOPPED_STEMMED, TextAnalyzer::builder(tokenizer()).filter(stop()).filter(stem()).build());
}

/// The unicode analyzer with English stemming.
const STEMMED: &str = "hyrank_en";
/// With English stop words.
const STOPPED: &str = "hyrank_stop";
/// With English stop words and stemming.
const STOPPED_STEMMED: &str = "hyrank_en_stop";

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
    /// Items written live since the build ([`LexicalIndex::add_live`]): a tantivy index in
    /// memory beside the generation's, which stays immutable on disk.
    live: std::sync::Mutex<Option<LiveSegment>>,
}

const IDX: &str = "idx";

/// One item's BM25 score and, when explained, its parts.
#[derive(Debug, Clone, Default)]
struct ScoreParts {
    total: f32,
    total_docs: u64,
    terms: Vec<TermPart>,
}

/// One query term's part of a BM25 score (under [`FieldCombination::Sum`], one field's), with
/// what it was computed from.
#[derive(Debug, Clone)]
struct TermPart {
    term: String,
    /// The field under `sum`, where each field is a document of its own.
    field: Option<&'static str>,
    idf: f32,
    n: u64,
    /// The frequency saturated: `tf / (tf + k1 · norm)` under `sum`, `tf / (k1 + tf)` of the
    /// fields' normalised sum under BM25F.
    tf_part: f32,
    score: f32,
    fields: Vec<FieldTf>,
}

/// A term's frequency in one field of one item.
#[derive(Debug, Clone, Copy)]
struct FieldTf {
    field: &'static str,
    boost: f32,
    tf: f32,
    dl: f32,
    avgdl: f32,
}

impl FieldTf {
    /// BM25's length normalisation of this field, `1 − b + b · dl / avgdl`.
    fn norm(&self, b: f32) -> f32 {
        1.0 - b + b * self.dl / self.avgdl
    }
}

fn schema(settings: &LexicalSettings) -> (Schema, Fields) {
    // Stop words exist for the unicode analyzer only; the indexer refuses them with `simple`.
    let analyzer = match (settings.analyzer, settings.stemming, settings.stop_words) {
        (Analyzer::Unicode, true, false) => STEMMED,
        (Analyzer::Unicode, false, false) => crate::analysis::NAME,
        (Analyzer::Unicode, true, true) => STOPPED_STEMMED,
        (Analyzer::Unicode, false, true) => STOPPED,
        (Analyzer::Simple, true, _) => "en_stem",
        (Analyzer::Simple, false, _) => "default",
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
        Ok(LexicalIndex { index, reader, fields, settings, live: std::sync::Mutex::new(None) })
    }

    /// The query's terms after the fields' analysis, in order, repeats kept (each counts, as
    /// a repeated SHOULD clause does).
    fn tokens(&self, text: &str) -> Result<Vec<String>> {
        let mut analyzer = self.index.tokenizer_for_field(self.fields.text)?;
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().text.clone());
        }
        Ok(tokens)
    }

    /// The plain-text query as tantivy clauses, or `None` when no token survives analysis.
    fn query(&self, text: &str) -> Result<Option<BooleanQuery>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for token in self.tokens(text)? {
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
        params.check()?;
        let mut hits: Vec<(u32, f32)> = self
            .score_all(text, params)?
            .into_iter()
            .filter(|(item, _)| allowed.as_ref().is_none_or(|a| a.get(*item as usize).copied().unwrap_or(false)))
            .collect();
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if k < hits.len() {
            hits.select_nth_unstable_by(k, order);
            hits.truncate(k);
        }
        hits.sort_by(order);
        Ok(hits)
    }

    /// tantivy's own BM25 (k1 1.2, b 0.75 fixed), the reference [`LexicalIndex::score_all`] is
    /// held to and the peer it is timed against.
    pub fn search_tantivy(&self, text: &str, k: usize, allowed: Option<Arc<Vec<bool>>>) -> Result<Vec<(u32, f32)>> {
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

    /// tantivy's explanation of `item`'s BM25 score for `text` at its fixed constants, or `None`
    /// if it does not match.
    pub fn explain_tantivy(&self, text: &str, item: u32) -> Result<Option<Explanation>> {
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

    /// Every matching item's BM25 score with `params`, term at a time over the postings (with
    /// frequencies) and the field norms tantivy stored, in no particular order. The same
    /// statistics as tantivy's scorer (N = documents, avgdl = field tokens / N, dl = the
    /// stored, lossily encoded field norm), so with [`FieldCombination::Sum`] at tantivy's
    /// constants the scores agree with its own (a test holds them to 1e-5).
    pub fn score_all(&self, text: &str, params: Bm25Params) -> Result<Vec<(u32, f32)>> {
        Ok(self.term_scores(text, params, None)?.into_iter().map(|(item, parts)| (item, parts.total)).collect())
    }

    /// Per item, the score and each term's part; `only`: one item's (every posting is still
    /// read, for BM25F's n).
    fn term_scores(&self, text: &str, params: Bm25Params, only: Option<u32>) -> Result<Vec<(u32, ScoreParts)>> {
        use std::collections::HashMap;
        use tantivy::postings::Postings;
        use tantivy::DocSet;
        let tokens = self.tokens(text)?;
        // The generation's segment and, with live items, the in-memory one: statistics are
        // those of both together, as if the live items had been in the build.
        let searchers = self.searchers();
        let segments: Vec<&tantivy::SegmentReader> = searchers.iter().flat_map(|s| s.segment_readers()).collect();
        let total_docs: u64 = segments.iter().map(|s| u64::from(s.max_doc())).sum();
        if tokens.is_empty() || total_docs == 0 {
            return Ok(Vec::new());
        }
        let fields = [(self.fields.title, "title", self.settings.title_boost), (self.fields.text, "text", 1.0)];
        let mut avgdl = [0f32; 2];
        for (slot, (field, _, _)) in avgdl.iter_mut().zip(&fields) {
            let mut field_tokens = 0u64;
            for reader in &segments {
                field_tokens += reader.inverted_index(*field)?.total_num_tokens();
            }
            *slot = field_tokens as f32 / total_docs as f32;
        }
        let items = segments.iter().map(|s| s.fast_fields().u64(IDX)).collect::<tantivy::Result<Vec<_>>>()?;
        let idf = |n: u64| (1.0 + ((total_docs - n) as f32 + 0.5) / (n as f32 + 0.5)).ln();
        let mut parts: Vec<HashMap<tantivy::DocId, ScoreParts>> = vec![HashMap::new(); segments.len()];
        // Repeated query terms each count, as a repeated SHOULD clause does.
        for token in &tokens {
            // Per segment, each matching document's frequency in the title and in the text.
            let mut matches: Vec<HashMap<tantivy::DocId, [Option<FieldTf>; 2]>> = vec![HashMap::new(); segments.len()];
            for (s, segment) in segments.iter().enumerate() {
                for (f, (field, name, boost)) in fields.iter().enumerate() {
                    let inverted = segment.inverted_index(*field)?;
                    let norms = segment.get_fieldnorms_reader(*field)?;
                    let postings = inverted
                        .read_postings(&Term::from_field_text(*field, token), IndexRecordOption::WithFreqs)
                        .map_err(|e| Error::io(format!("reading the postings of {name}:{token}"), e))?;
                    let Some(mut postings) = postings else { continue };
                    let mut doc = postings.doc();
                    while doc != tantivy::TERMINATED {
                        matches[s].entry(doc).or_default()[f] = Some(FieldTf {
                            field: name,
                            boost: *boost,
                            tf: postings.term_freq() as f32,
                            dl: norms.fieldnorm(doc) as f32,
                            avgdl: avgdl[f],
                        });
                        doc = postings.advance();
                    }
                }
            }
            let wanted =
                |s: usize, doc: tantivy::DocId| only.is_none() || items[s].first(doc).map(|v| v as u32) == only;
            let explain = only.is_some();
            match params.fields {
                FieldCombination::Sum => {
                    for f in 0..fields.len() {
                        let n: u64 =
                            matches.iter().map(|m| m.values().filter(|tfs| tfs[f].is_some()).count() as u64).sum();
                        let idf = idf(n);
                        for (s, m) in matches.iter().enumerate() {
                            for (&doc, tfs) in m {
                                let Some(field) = tfs[f] else { continue };
                                if !wanted(s, doc) {
                                    continue;
                                }
                                let tf_part = field.tf / (field.tf + params.k1 * field.norm(params.b));
                                let score = field.boost * idf * (1.0 + params.k1) * tf_part;
                                let entry = parts[s].entry(doc).or_default();
                                entry.total += score;
                                if explain {
                                    let (term, field_name) = (token.clone(), Some(field.field));
                                    let fields = vec![field];
                                    entry.terms.push(TermPart {
                                        term,
                                        field: field_name,
                                        idf,
                                        n,
                                        tf_part,
                                        score,
                                        fields,
                                    });
                                }
                            }
                        }
                    }
                }
                FieldCombination::Bm25f => {
                    let n: u64 = matches.iter().map(|m| m.len() as u64).sum();
                    let idf = idf(n);
                    for (s, m) in matches.iter().enumerate() {
                        for (&doc, tfs) in m {
                            if !wanted(s, doc) {
                                continue;
                            }
                            let tf: f32 = tfs.iter().flatten().map(|f| f.boost * f.tf / f.norm(params.b)).sum();
                            let tf_part = tf / (params.k1 + tf);
                            let score = idf * (1.0 + params.k1) * tf_part;
                            let entry = parts[s].entry(doc).or_default();
                            entry.total += score;
                            if explain {
                                let fields = tfs.iter().flatten().copied().collect();
                                entry.terms.push(TermPart {
                                    term: token.clone(),
                                    field: None,
                                    idf,
                                    n,
                                    tf_part,
                                    score,
                                    fields,
                                });
                            }
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (s, segment_parts) in parts.into_iter().enumerate() {
            for (doc, p) in segment_parts {
                let item = items[s].first(doc).ok_or_else(|| Error::BadIndex {
                    path: "lexical".into(),
                    reason: format!("document {doc} has no idx"),
                })?;
                out.push((item as u32, ScoreParts { total_docs, ..p }));
            }
        }
        Ok(out)
    }

    /// The explanation tree of `item`'s BM25 score with `params`, in the shape of tantivy's and
    /// Lucene's: per term (under `sum`, per field and term), (k1 + 1) × idf × the saturated,
    /// length-normalised tf, where under BM25F the tf is the fields' weighted sum, each field
    /// a child; `None` if the item does not match.
    ///
    /// # Errors
    /// Parameters out of range, or a failing index read.
    pub fn explain_with(&self, text: &str, item: u32, params: Bm25Params) -> Result<Option<Explanation>> {
        params.check()?;
        let Some((_, parts)) = self.term_scores(text, params, Some(item))?.into_iter().next() else { return Ok(None) };
        let field_leaves = |f: &FieldTf| {
            vec![
                Explanation::leaf("freq, occurrences of term within document", f64::from(f.tf)),
                Explanation::leaf("k1, term saturation parameter", f64::from(params.k1)),
                Explanation::leaf("b, length normalization parameter", f64::from(params.b)),
                Explanation::leaf("dl, length of field", f64::from(f.dl)),
                Explanation::leaf("avgdl, average length of field", f64::from(f.avgdl)),
            ]
        };
        let children = parts
            .terms
            .iter()
            .map(|t| {
                let idf = Explanation::node(
                    "idf, computed as log(1 + (N - n + 0.5) / (n + 0.5))",
                    f64::from(t.idf),
                    vec![
                        Explanation::leaf("n, number of docs containing this term", t.n as f64),
                        Explanation::leaf("N, total number of docs", parts.total_docs as f64),
                    ],
                );
                match t.field {
                    Some(field) => {
                        let f = &t.fields[0];
                        let tf = Explanation::node(
                            "freq / (freq + k1 * (1 - b + b * dl / avgdl))",
                            f64::from(t.tf_part),
                            field_leaves(f),
                        );
                        let mut factors = vec![Explanation::leaf("(k1 + 1)", f64::from(params.k1 + 1.0)), idf, tf];
                        if f.boost != 1.0 {
                            factors.insert(0, Explanation::leaf("boost", f64::from(f.boost)));
                        }
                        Explanation::node(format!("{field}:{}, product of", t.term), f64::from(t.score), factors)
                    }
                    None => {
                        let per_field: Vec<Explanation> = t
                            .fields
                            .iter()
                            .map(|f| {
                                let mut leaves = field_leaves(f);
                                leaves.remove(1); // k1 applies to the sum, not to a field
                                if f.boost != 1.0 {
                                    leaves.insert(0, Explanation::leaf("boost", f64::from(f.boost)));
                                }
                                Explanation::node(
                                    format!("{}: boost * freq / (1 - b + b * dl / avgdl)", f.field),
                                    f64::from(f.boost * f.tf / f.norm(params.b)),
                                    leaves,
                                )
                            })
                            .collect();
                        let tf_sum: f64 = per_field.iter().map(|e| e.value).sum();
                        let tf = Explanation::node(
                            "tf / (k1 + tf)",
                            f64::from(t.tf_part),
                            vec![
                                Explanation::node("tf, sum over fields of", tf_sum, per_field),
                                Explanation::leaf("k1, term saturation parameter", f64::from(params.k1)),
                            ],
                        );
                        let factors = vec![Explanation::leaf("(k1 + 1)", f64::from(params.k1 + 1.0)), idf, tf];
                        Explanation::node(format!("{}, product of", t.term), f64::from(t.score), factors)
                    }
                }
            })
            .collect();
        let model = match params.fields {
            FieldCombination::Bm25f => "BM25F",
            FieldCombination::Sum => "BM25",
        };
        Ok(Some(Explanation::node(
            format!("{model} (k1 {}, b {}): sum of", params.k1, params.b),
            f64::from(parts.total),
            children,
        )))
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
        for query in ["tent", "light small tent", "stove trail tent tent"] {
            let theirs = lexical.search_tantivy(query, 10, None).unwrap();
            let mut ours = lexical.score_all(query, Bm25Params::TANTIVY).unwrap();
            ours.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(theirs.len(), ours.len(), "{query}");
            for (t, o) in theirs.iter().zip(&ours) {
                assert_eq!(t.0, o.0, "{query}: {theirs:?} vs {ours:?}");
                assert!((t.1 - o.1).abs() <= 1e-5 * t.1.abs().max(1.0), "{query}: {t:?} vs {o:?}");
                let tree = lexical.explain_with(query, t.0, Bm25Params::TANTIVY).unwrap().unwrap();
                let reference = lexical.explain_tantivy(query, t.0).unwrap().unwrap();
                assert!((tree.value - reference.value).abs() <= 1e-5 * reference.value.abs().max(1.0));
            }
        }
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

    #[test]
    fn a_request_changes_only_what_it_names() {
        let base = Bm25Params::default();
        let changes: Bm25Overrides = serde_json::from_str(r#"{"k1": 0.9}"#).unwrap();
        assert_eq!(changes.over(base), Bm25Params { k1: 0.9, ..base });
        let changes: Bm25Overrides = serde_json::from_str(r#"{"fields": "sum"}"#).unwrap();
        assert_eq!(changes.over(base), Bm25Params { fields: FieldCombination::Sum, ..base });
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
