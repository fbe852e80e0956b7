//! BM25 scored by hyrank over tantivy's postings and field norms: its parameters (k1, b, how
//! fields combine), what a request may change, the scorer ([`LexicalIndex::score_all`]) and
//! its explanation tree ([`LexicalIndex::explain_with`]).

use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use super::fuzzy::Fuzziness;
use super::prefix::Prefix;
use super::terms::{Fuzzy, Reading};
use super::{LexicalIndex, IDX};
use crate::error::{Error, Result};
use crate::explain::Explanation;

/// BM25's free parameters (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework:
/// BM25 and Beyond"): k1 saturates term frequency, b scales length normalisation, and
/// [`FieldCombination`] says how the title and the text make one score. A term t in a field of
/// length dl scores `idf(t) · (k1 + 1) · tf / (tf + k1 · (1 − b + b · dl / avgdl))` with
/// `idf = ln(1 + (N − n + 0.5) / (n + 0.5))`, tantivy's and Lucene's form. Each field may have
/// its own b (BM25F's b_f): a title's length says less about how much of it is on topic than a
/// body's. k1 is one for the item, as BM25F saturates the fields' sum once.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bm25Params {
    /// Term-frequency saturation, 0 (presence only) to [`MAX_K1`].
    pub k1: f32,
    /// Length normalisation of the text and the catalog fields searched, and of the title
    /// unless `title_b` is given: 0 (none) to 1 (full).
    pub b: f32,
    /// The title's own length normalisation, 0 to 1; absent: `b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_b: Option<f32>,
    /// How fields combine; absent in manifests from before it was a setting (`sum` then).
    #[serde(default = "FieldCombination::legacy")]
    pub fields: FieldCombination,
    /// Whether a query word no item holds is read as the words within a few edits
    /// ([`super::fuzzy`]); absent in manifests from before it was a setting: the default.
    #[serde(default)]
    pub fuzziness: Fuzziness,
    /// Whether the query's last word, while it is being typed, is also read as the words it
    /// begins ([`super::prefix`]); off unless a request asks.
    #[serde(default)]
    pub prefix: Prefix,
}

/// How BM25 scores an item with several text fields (its title, its text and the catalog
/// fields it searches).
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
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub k1: Option<f32>,
    /// Length normalisation of the text (and of the title, unless the generation or the
    /// request gives `title_b`), 0 to 1.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub b: Option<f32>,
    /// The title's own length normalisation, 0 to 1.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub title_b: Option<f32>,
    /// How the title and the text combine.
    #[serde(default, deserialize_with = "crate::json::optional_name_only")]
    pub fields: Option<FieldCombination>,
    /// Typo tolerance: `auto` (a word no item holds is read as the words within one edit
    /// from 5 characters, two from 9) or `off`.
    #[serde(default, deserialize_with = "crate::json::optional_name_only")]
    pub fuzziness: Option<Fuzziness>,
    /// Search as you type: `last` (the query's last word, unless the query ends in a space or
    /// a punctuation mark, also finds the words it begins, from 2 characters; a generation
    /// built before 2026-12-07 refuses it) or `off`.
    #[serde(default, deserialize_with = "crate::json::optional_name_only")]
    pub prefix: Option<Prefix>,
}

impl Bm25Overrides {
    /// `base` with these changes.
    pub fn over(&self, base: Bm25Params) -> Bm25Params {
        Bm25Params {
            k1: self.k1.unwrap_or(base.k1),
            b: self.b.unwrap_or(base.b),
            title_b: self.title_b.or(base.title_b),
            fields: self.fields.unwrap_or(base.fields),
            fuzziness: self.fuzziness.unwrap_or(base.fuzziness),
            prefix: self.prefix.unwrap_or(base.prefix),
        }
    }
}

impl Bm25Params {
    /// The constants tantivy's own scorer is compiled with (its `bm25.rs`), and Lucene's
    /// defaults: still the default (SciFact train could not tell them from any other setting
    /// by more than 0.003 nDCG@10, docs/EVAL.md).
    /// Words are looked up as typed, as tantivy does.
    pub const TANTIVY: Bm25Params = Bm25Params {
        k1: 1.2,
        b: 0.75,
        title_b: None,
        fields: FieldCombination::Sum,
        fuzziness: Fuzziness::Off,
        prefix: Prefix::Off,
    };

    pub(super) fn tantivy() -> Self {
        Self::TANTIVY
    }

    /// The b of the title (`title == true`) or of the text.
    pub fn b_of(&self, title: bool) -> f32 {
        if title {
            self.title_b.unwrap_or(self.b)
        } else {
            self.b
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// k1 negative or not finite, b or title_b outside 0..=1.
    pub fn check(&self) -> Result<()> {
        // Past 100 k1 only scales every score (tf saturates nowhere within any real field);
        // the bound keeps idf · (k1 + 1) far from f32's overflow.
        if !(self.k1.is_finite() && (0.0..=MAX_K1).contains(&self.k1)) {
            return Err(Error::invalid("bm25.k1", format!("{} is not a number from 0 to {MAX_K1}", self.k1)));
        }
        for (name, b) in [("bm25.b", Some(self.b)), ("bm25.title_b", self.title_b)] {
            if let Some(b) = b.filter(|b| !(0.0..=1.0).contains(b)) {
                return Err(Error::invalid(name, format!("{b} is not between 0 and 1")));
            }
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
const DEFAULT_BM25: Bm25Params = Bm25Params {
    k1: 1.2,
    b: 0.75,
    title_b: None,
    fields: FieldCombination::Bm25f,
    fuzziness: Fuzziness::Auto,
    prefix: Prefix::Off,
};

/// One item's BM25 score and, when explained, its parts.
#[derive(Debug, Clone, Default)]
struct ScoreParts {
    total: f32,
    total_docs: u64,
    terms: Vec<TermPart>,
    /// The query's words with a dependent number ([`super::terms`]) one of whose lettered
    /// terms the item holds, a bit each (`word_bit`).
    held: u64,
}

/// One query term's part of a BM25 score (under [`FieldCombination::Sum`], one field's), with
/// what it was computed from.
#[derive(Debug, Clone)]
struct TermPart {
    term: String,
    /// The field under `sum`, where each field is a document of its own.
    field: Option<u8>,
    idf: f32,
    n: u64,
    /// The frequency saturated: `tf / (tf + k1 · norm)` under `sum`, `tf / (k1 + tf)` of the
    /// fields' normalised sum under BM25F.
    tf_part: f32,
    score: f32,
    fields: Vec<FieldTf>,
    /// For a number written after letters ([`super::terms`]), the query's word it counted
    /// beside.
    beside: Option<String>,
    /// For a term standing in for a word no item holds, what was typed ([`super::fuzzy`]).
    fuzzy: Option<Fuzzy>,
}

/// A term's frequency in each field of one item that holds it.
type FieldTfs = smallvec::SmallVec<[FieldTf; 2]>;

/// A term's frequency in one field of one item.
#[derive(Debug, Clone, Copy)]
struct FieldTf {
    /// The field's place in [`super::schema::Fields::searched`].
    field: u8,
    boost: f32,
    /// The field's b.
    b: f32,
    tf: f32,
    dl: f32,
    avgdl: f32,
}

impl FieldTf {
    /// BM25's length normalisation of this field, `1 − b + b · dl / avgdl`.
    fn norm(&self) -> f32 {
        1.0 - self.b + self.b * self.dl / self.avgdl
    }
}

/// How many documents of `segment` hold `field` (a field norm above 0).
pub(super) fn docs_holding(segment: &tantivy::SegmentReader, field: tantivy::schema::Field) -> Result<u64> {
    let norms = segment.get_fieldnorms_reader(field)?;
    Ok((0..segment.max_doc()).filter(|&doc| norms.fieldnorm_id(doc) > 0).count() as u64)
}

impl LexicalIndex {
    /// Checks `params` against their ranges and against this index.
    ///
    /// # Errors
    /// Parameters out of range ([`Bm25Params::check`]), or BM25F asked of an index whose
    /// fields (title, text, catalog fields) were not all analysed alike; [`Error::Unavailable`]
    /// for a prefix asked of a generation built before it kept its words.
    pub fn check(&self, params: Bm25Params) -> Result<()> {
        params.check()?;
        if self.groups.len() > 1 && params.fields == FieldCombination::Bm25f {
            return Err(Error::invalid("bm25.fields", super::analyzers::BM25F_NEEDS_ONE_ANALYSIS));
        }
        if params.prefix == Prefix::Last {
            self.words_field()?;
        }
        Ok(())
    }

    /// Every matching item's BM25 score with `params`, term at a time over the postings (with
    /// frequencies) and the field norms tantivy stored, in no particular order. The same
    /// statistics as tantivy's scorer (N = documents, avgdl = field tokens / N, dl = the
    /// stored, lossily encoded field norm), so with [`FieldCombination::Sum`] at tantivy's
    /// constants the scores agree with its own (a test holds them to 1e-5). Rows hidden since the
    /// build ([`LexicalIndex::hide`]) are neither scored nor counted: the statistics are those
    /// of the visible rows, as a generation built from them would have.
    ///
    /// # Errors
    /// As [`LexicalIndex::check`], or a failing index read.
    pub fn score_all(&self, text: &str, params: Bm25Params) -> Result<Vec<(u32, f32)>> {
        self.check(params)?;
        Ok(self.term_scores(text, params, None)?.into_iter().map(|(item, parts)| (item, parts.total)).collect())
    }

    /// Per item, the score and each term's part; `only`: one item's (every posting is still
    /// read, for BM25F's n).
    fn term_scores(&self, text: &str, params: Bm25Params, only: Option<u32>) -> Result<Vec<(u32, ScoreParts)>> {
        // Document ids are small integers chosen by the index, not by a client, so the maps
        // need no SipHash (DoS-resistant, and 17% of a BM25 search's profile on SciFact), and
        // each map is given room for a term's postings at once instead of regrowing (rehashing
        // was 7–10%): BM25's p50 on SciFact train went from 2.1–2.4 ms to 1.4–1.5 ms.
        use rustc_hash::FxHashMap as HashMap;
        use tantivy::postings::Postings;
        use tantivy::DocSet;
        // Each query term with the fields it is looked up in (a bit per field of
        // `self.fields.searched`): the query analysed once per group of fields that share an
        // analyzer, its terms looked up in that group's fields (every field, when all were
        // analysed alike; with several groups BM25F is refused, it needs one term across
        // fields). Settings allow at most 32 fields (`MAX_SEARCH_FIELDS` + 2): no mask overflows.
        let searched = &self.fields.searched;
        // The generation's segments, then the live rows' postings (source `live_s`):
        // statistics are those of both together, as if the live items had been in the build.
        let searcher = self.reader.searcher();
        let segments: Vec<&tantivy::SegmentReader> = searcher.segment_readers().iter().collect();
        let live = self.live.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let live_s = segments.len();
        // Rows deleted or replaced since the build are left out of every statistic and list.
        // The generation's rows are its segments' documents, idx 0 to its count; live rows follow.
        let built = u32::try_from(searcher.num_docs()).unwrap_or(u32::MAX);
        let hidden = self.hidden_in(&segments, built, &live)?;
        let visible = self.visible(&segments, &live, hidden.as_deref());
        let tokens = self.query_terms(text, params, &visible)?;
        // A number that depends on its word's letters is scored after every other term, when
        // the items holding them are known: each word with such a number gets a bit of
        // `ScoreParts::held` (a mask, not a list per item, which slowed long queries: docs/EVAL.md).
        // Past 64 such words in one query, words share bits, and a number may count beside
        // another's letters.
        let mut word_bit: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
        for (term, _) in tokens.iter().filter(|t| t.0.dependent) {
            let next = word_bit.len() % 64;
            word_bit.entry(term.word).or_insert(1 << next);
        }
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&t| tokens[t].0.dependent);
        let hidden_sum =
            |of: &dyn Fn(&super::hidden::HiddenDocs) -> u64| -> u64 { hidden.iter().flatten().map(|h| of(h)).sum() };
        let total_docs: u64 = (segments.iter().map(|s| u64::from(s.max_doc())).sum::<u64>() + u64::from(live.len()))
            .saturating_sub(hidden_sum(&|h| h.count));
        if tokens.is_empty() || total_docs == 0 {
            return Ok(Vec::new());
        }
        let b: Vec<f32> = searched.iter().map(|f| params.b_of(f.title)).collect();
        // avgdl: the title's and the text's tokens over every item, as tantivy's scorer has it
        // (every item has both, in practice); a catalog field's over the items that hold it, as
        // Lucene has it for every field: a brand one item in ten has would otherwise look ten
        // times longer than average wherever it is present.
        let mut avgdl = vec![0f32; searched.len()];
        for (f, (slot, field)) in avgdl.iter_mut().zip(searched).enumerate() {
            let mut field_tokens = live.total_tokens(f);
            for reader in &segments {
                field_tokens += reader.inverted_index(field.field)?.total_num_tokens();
            }
            field_tokens = field_tokens.saturating_sub(hidden_sum(&|h| h.tokens[f]));
            let docs = match self.field_docs.get(f).copied().flatten() {
                Some(stored) => (stored + live.holding(f)).saturating_sub(hidden_sum(&|h| h.holding[f])),
                None => total_docs,
            };
            *slot = field_tokens as f32 / docs.max(1) as f32;
        }
        let items = segments.iter().map(|s| s.fast_fields().u64(IDX)).collect::<tantivy::Result<Vec<_>>>()?;
        let idf = |n: u64| (1.0 + ((total_docs - n) as f32 + 0.5) / (n as f32 + 0.5)).ln();
        let row = |s: usize, doc: tantivy::DocId| {
            if s == live_s {
                live.row(doc)
            } else {
                items[s].first(doc).and_then(|v| u32::try_from(v).ok())
            }
        };
        let mut parts: Vec<HashMap<tantivy::DocId, ScoreParts>> = vec![HashMap::default(); live_s + 1];
        // One term's part of each item's score, into `parts`.
        let score_term = |t: usize, parts: &mut Vec<HashMap<tantivy::DocId, ScoreParts>>| -> Result<()> {
            let (term, looked_up) = &tokens[t];
            let token = &term.text;
            // Whether the item holds what this term needs: for a dependent number, a lettered
            // term of its word (in any field); nothing for any other term.
            let bit = word_bit.get(&term.word).copied().unwrap_or(0);
            let holds = if term.lettered { bit } else { 0 };
            let beside = |parts: &HashMap<tantivy::DocId, ScoreParts>, doc: &tantivy::DocId| {
                !term.dependent || parts.get(doc).is_some_and(|p| p.held & bit != 0)
            };
            // Per segment, each matching document's frequency in each field that holds the
            // term (most items match in one or two fields: kept inline).
            let mut matches: Vec<HashMap<tantivy::DocId, FieldTfs>> = vec![HashMap::default(); live_s + 1];
            for (s, segment) in segments.iter().enumerate() {
                for (f, field) in searched.iter().enumerate() {
                    if looked_up & (1 << f) == 0 {
                        continue;
                    }
                    let inverted = segment.inverted_index(field.field)?;
                    let norms = segment.get_fieldnorms_reader(field.field)?;
                    let postings = inverted
                        .read_postings(&Term::from_field_text(field.field, token), IndexRecordOption::WithFreqs)
                        .map_err(|e| Error::io(format!("reading the postings of {}:{token}", field.name), e))?;
                    let Some(mut postings) = postings else { continue };
                    // Room for every posting at once, not regrown by doubling as they arrive.
                    matches[s].reserve(postings.size_hint() as usize);
                    let skipped = hidden.as_ref().map(|h| &h[s]);
                    let mut doc = postings.doc();
                    while doc != tantivy::TERMINATED {
                        if skipped.is_some_and(|skipped| skipped.contains(doc)) {
                            doc = postings.advance();
                            continue;
                        }
                        matches[s].entry(doc).or_default().push(FieldTf {
                            field: f as u8,
                            boost: field.boost,
                            b: b[f],
                            tf: postings.term_freq() as f32,
                            dl: norms.fieldnorm(doc) as f32,
                            avgdl: avgdl[f],
                        });
                        doc = postings.advance();
                    }
                }
            }
            for (f, field) in searched.iter().enumerate() {
                if looked_up & (1 << f) == 0 {
                    continue;
                }
                let postings = live.postings(f, token);
                matches[live_s].reserve(postings.len());
                let skipped = hidden.as_ref().map(|h| &h[live_s]);
                for &(doc, tf) in postings {
                    if skipped.is_some_and(|skipped| skipped.contains(doc)) {
                        continue;
                    }
                    matches[live_s].entry(doc).or_default().push(FieldTf {
                        field: f as u8,
                        boost: field.boost,
                        b: b[f],
                        tf: tf as f32,
                        dl: live.norm(doc, f) as f32,
                        avgdl: avgdl[f],
                    });
                }
            }
            let wanted = |s: usize, doc: tantivy::DocId| only.is_none() || row(s, doc) == only;
            let explain = only.is_some();
            let needed = || term.dependent.then(|| super::terms::word(text, term.word).to_string());
            // A term read for a typo: scaled by its boost, and as common as the word's most
            // common reading (`super::fuzzy`), at most the items there are.
            let fuzzy_boost = term.fuzzy.as_ref().map_or(1.0, |f| f.boost);
            let blended = term.fuzzy.as_ref().map_or(0, |f| f.blended_n.min(total_docs));
            if !explain {
                // Room for every item this term matches, under either combination.
                for (parts, m) in parts.iter_mut().zip(&matches) {
                    parts.reserve(m.len());
                }
            }
            match params.fields {
                FieldCombination::Sum => {
                    // Each field is a document of its own: its own n and idf.
                    let mut n = vec![0u64; searched.len()];
                    for tfs in matches.iter().flat_map(|m| m.values()) {
                        for field in tfs {
                            n[usize::from(field.field)] += 1;
                        }
                    }
                    let idfs: Vec<f32> = n.iter().map(|&n| idf(n.max(blended))).collect();
                    for (s, m) in matches.iter().enumerate() {
                        for (&doc, tfs) in m {
                            if !wanted(s, doc) || !beside(&parts[s], &doc) {
                                continue;
                            }
                            let entry = parts[s].entry(doc).or_default();
                            entry.held |= holds;
                            for field in tfs {
                                let f = usize::from(field.field);
                                let tf_part = field.tf / (field.tf + params.k1 * field.norm());
                                let score = fuzzy_boost * field.boost * idfs[f] * (1.0 + params.k1) * tf_part;
                                entry.total += score;
                                if explain {
                                    entry.terms.push(TermPart {
                                        term: token.clone(),
                                        field: Some(field.field),
                                        idf: idfs[f],
                                        n: n[f],
                                        tf_part,
                                        score,
                                        fields: vec![*field],
                                        beside: needed(),
                                        fuzzy: term.fuzzy.clone(),
                                    });
                                }
                            }
                        }
                    }
                }
                FieldCombination::Bm25f => {
                    let n: u64 = matches.iter().map(|m| m.len() as u64).sum::<u64>().max(blended);
                    let idf = idf(n);
                    for (s, m) in matches.iter().enumerate() {
                        for (&doc, tfs) in m {
                            if !wanted(s, doc) || !beside(&parts[s], &doc) {
                                continue;
                            }
                            let tf: f32 = tfs.iter().map(|f| f.boost * f.tf / f.norm()).sum();
                            let tf_part = tf / (params.k1 + tf);
                            let score = fuzzy_boost * idf * (1.0 + params.k1) * tf_part;
                            let entry = parts[s].entry(doc).or_default();
                            entry.held |= holds;
                            entry.total += score;
                            if explain {
                                entry.terms.push(TermPart {
                                    term: token.clone(),
                                    field: None,
                                    idf,
                                    n,
                                    tf_part,
                                    score,
                                    fields: tfs.to_vec(),
                                    beside: needed(),
                                    fuzzy: term.fuzzy.clone(),
                                });
                            }
                        }
                    }
                }
            }
            Ok(())
        };
        // Repeated query terms each count, as a repeated SHOULD clause does. Terms at one
        // position of one analyzer's reading are alternatives for one word (a French
        // "randonnée" is read as "randon" and "randonne"; typed "randonnee", as "randon"): an
        // item scores the best of them, as Lucene's SynonymQuery scores such a stack once, so a
        // word counts once whether or not it was typed with its accents. It counted twice.
        let mut scored = vec![false; tokens.len()];
        for &t in &order {
            if std::mem::replace(&mut scored[t], true) {
                continue;
            }
            let same = |u: usize| {
                let (a, b) = (&tokens[t], &tokens[u]);
                a.1 == b.1 && a.0.same_word(&b.0)
            };
            let alternatives: Vec<usize> = (t + 1..tokens.len()).take_while(|&u| same(u)).collect();
            if alternatives.is_empty() {
                score_term(t, &mut parts)?;
                continue;
            }
            let mut best: Vec<HashMap<tantivy::DocId, ScoreParts>> = vec![HashMap::default(); live_s + 1];
            for u in std::iter::once(t).chain(alternatives) {
                scored[u] = true;
                let mut one: Vec<HashMap<tantivy::DocId, ScoreParts>> = vec![HashMap::default(); live_s + 1];
                score_term(u, &mut one)?;
                for (best, one) in best.iter_mut().zip(one) {
                    for (doc, part) in one {
                        match best.entry(doc) {
                            std::collections::hash_map::Entry::Occupied(kept) if kept.get().total >= part.total => {}
                            std::collections::hash_map::Entry::Occupied(mut kept) => {
                                kept.insert(part);
                            }
                            std::collections::hash_map::Entry::Vacant(slot) => {
                                slot.insert(part);
                            }
                        }
                    }
                }
            }
            for (parts, best) in parts.iter_mut().zip(best) {
                for (doc, part) in best {
                    let entry = parts.entry(doc).or_default();
                    entry.total += part.total;
                    entry.held |= part.held;
                    entry.terms.extend(part.terms);
                }
            }
        }
        let mut out = Vec::new();
        for (s, segment_parts) in parts.into_iter().enumerate() {
            for (doc, p) in segment_parts {
                let item = row(s, doc).ok_or_else(|| Error::BadIndex {
                    path: "lexical".into(),
                    reason: format!("document {doc} has no idx"),
                })?;
                out.push((item, ScoreParts { total_docs, ..p }));
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
        self.check(params)?;
        let Some((_, parts)) = self.term_scores(text, params, Some(item))?.into_iter().next() else { return Ok(None) };
        let name = |f: u8| self.fields.searched[usize::from(f)].name.as_str();
        let field_leaves = |f: &FieldTf| {
            vec![
                Explanation::leaf("freq, occurrences of term within document", f64::from(f.tf)),
                Explanation::leaf("k1, term saturation parameter", f64::from(params.k1)),
                Explanation::leaf("b, length normalization parameter", f64::from(f.b)),
                Explanation::leaf("dl, length of field", f64::from(f.dl)),
                Explanation::leaf("avgdl, average length of field", f64::from(f.avgdl)),
            ]
        };
        // A number counted because the item holds its word's letters says so.
        let beside = |word: &Option<String>| match word {
            None => String::new(),
            Some(word) => format!(" (written after the letters of {word:?}, which the item holds)"),
        };
        // A term read for a word no item holds says what was typed, and scales by its boost.
        let typo = |t: &TermPart| match &t.fuzzy {
            None => (String::new(), None),
            Some(f @ Fuzzy { reading: Reading::Typo { edits }, .. }) => (
                // Reached through a catalog word ("hike" from "hikng" by "hiking"), the edits
                // and the boost are the word's, and the word is named: "hike" is two from
                // "hikng".
                format!(
                    " (for {:?}, {}{edits} edit{} away)",
                    f.typed,
                    match &f.compared {
                        Some(word) if *word != t.term => format!("read as {word:?}, "),
                        _ => String::new(),
                    },
                    if *edits == 1 { "" } else { "s" }
                ),
                Some(Explanation::leaf("fuzzy boost, 1 - edits / min(length typed, length found)", f64::from(f.boost))),
            ),
            Some(f @ Fuzzy { reading: Reading::Completion, .. }) => (format!(" (completing {:?})", f.typed), None),
        };
        let children = parts
            .terms
            .iter()
            .map(|t| {
                let (typed, fuzzy_boost) = typo(t);
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
                        factors.extend(fuzzy_boost);
                        let label = format!("{}:{}{}{typed}, product of", name(field), t.term, beside(&t.beside));
                        Explanation::node(label, f64::from(t.score), factors)
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
                                    format!("{}: boost * freq / (1 - b + b * dl / avgdl)", name(f.field)),
                                    f64::from(f.boost * f.tf / f.norm()),
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
                        let mut factors = vec![Explanation::leaf("(k1 + 1)", f64::from(params.k1 + 1.0)), idf, tf];
                        factors.extend(fuzzy_boost);
                        Explanation::node(
                            format!("{}{}{typed}, product of", t.term, beside(&t.beside)),
                            f64::from(t.score),
                            factors,
                        )
                    }
                }
            })
            .collect();
        let model = match params.fields {
            FieldCombination::Bm25f => "BM25F",
            FieldCombination::Sum => "BM25",
        };
        let title_b = match params.title_b {
            Some(b) if b != params.b => format!(", title b {b}"),
            _ => String::new(),
        };
        Ok(Some(Explanation::node(
            format!("{model} (k1 {}, b {}{title_b}): sum of", params.k1, params.b),
            f64::from(parts.total),
            children,
        )))
    }
}
