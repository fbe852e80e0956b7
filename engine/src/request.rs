//! What a caller asks and what it gets back: the search, recommend and similar requests with
//! their options, bounds and defaults, and the hits, timings and candidates that come back.
//!
//! Every default is defined once, in [`defaults`]; serde, the constructors, the CLI flags and
//! the server's `--help` read it from there.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::explain::RetrieverKind;
use crate::filter::Filters;
use crate::fusion::Fusion;

mod recommend;
mod results;
mod similar;

pub use recommend::{ColdItems, RecommendMode, RecommendRequest};
pub use results::{Candidate, Hit, RerankCut, Results, Timings};
pub use similar::SimilarRequest;

/// Limits on request sizes, so that one request cannot monopolise the engine.
pub const MAX_K: usize = 1000;
/// Most candidates a retriever may be asked for.
pub const MAX_CANDIDATES: usize = 10_000;
/// Most items the rerank stage reads for one request.
pub const MAX_RERANK: usize = 200;

/// The default of every request option, defined once.
pub mod defaults {
    use crate::fusion::Fusion;

    /// Hits a request returns.
    pub const K: usize = 10;
    /// Candidates each retriever returns before fusion, when a request gives none and its `k`
    /// is not larger ([`super::candidates_for`]).
    pub const CANDIDATES: usize = 100;
    /// Late-interaction rerank depth when a search does not give one.
    pub const LATE_INTERACTION_DEPTH: usize = 20;
    /// Weight of the late-interaction score in the final score.
    pub const RERANK_WEIGHT: f64 = 1.0;
    /// Recent history items that form a recommendation's content profile.
    pub const RECENT: usize = 20;
    /// Default weight of the content list in recommendations when ALS serves CF (CF weighs
    /// 1). Chosen on MovieLens small on a validation split carved from the training
    /// positives: 0.3 gave Recall@20 0.211, 1.0 gave 0.158, CF alone 0.204 (docs/EVAL.md).
    pub const RECOMMEND_CONTENT_WEIGHT_ALS: f64 = 0.3;
    /// The same when EASE serves CF, a stronger list: there 0.3 cost 0.005 nDCG@10 on the
    /// random validation split, and 0.1 was at or above CF alone on both metrics of both the
    /// random and the leave-last-out validation split (docs/EVAL.md).
    pub const RECOMMEND_CONTENT_WEIGHT_EASE: f64 = 0.1;

    /// The content weight of the family that serves CF: EASE's when `ease`, else ALS's.
    pub fn recommend_content_weight(ease: bool) -> f64 {
        if ease {
            RECOMMEND_CONTENT_WEIGHT_EASE
        } else {
            RECOMMEND_CONTENT_WEIGHT_ALS
        }
    }

    /// Query embeddings an engine keeps unless told otherwise (384 floats each: ~16 MiB).
    pub const QUERY_CACHE_ENTRIES: usize = 10_000;
    /// Trained-reranker logits an engine keeps, by (reranker, query, item) (~100 bytes each
    /// with a short query: ~10 MiB).
    pub const RERANK_CACHE_ENTRIES: usize = 100_000;
    /// The trained reranker layers' number format where they run on hyrank's CPU kernels:
    /// int8. On SciFact, PreTTR top 30, same session (docs/EVAL.md): train split nDCG@10
    /// 0.8149 at f32 and at int8 (4 queries better, 4 worse), p50 217 → 143 ms.
    pub const RERANK_PRECISION: crate::Precision = crate::Precision::Int8;
    /// The trained reranker layers' number format on a GPU: f16. On one H200, SciFact PreTTR
    /// top 100, same run (docs/EVAL.md, 2026-12-04): test nDCG@10 0.7746 at f32 and at f16,
    /// in-process p50 15.9 → 12.4 ms. (A speed choice checked on test, not tuned there.)
    pub const GPU_RERANK_PRECISION: crate::Precision = crate::Precision::F16;

    /// Search fuses linearly by default. Tuned on SciFact's *train* judgments (809 queries;
    /// docs/EVAL.md): linear fusion of min-max-normalised BM25 and dense scores gave nDCG@10
    /// 0.7216–0.7241 for BM25 weights 0.4–0.6 (equal weights: 0.7232 at 100 candidates per
    /// retriever), RRF 0.7124 at k = 60 and 0.7215 at k = 10. Equal weights, because the
    /// spread across 0.4–0.6 is smaller than the noise between candidate depths. Fusion from
    /// the retrievers' floors ([`Fusion::LinearFloor`]) gained 0.0048 on train and 0.0004 on
    /// test, with Recall@100 0.012 lower on test, so it is offered, not the default.
    pub fn search_fusion() -> Fusion {
        Fusion::Linear
    }
}

// serde reads defaults through functions; each returns the one constant above.
fn default_k() -> usize {
    defaults::K
}
fn default_rerank_weight() -> f64 {
    defaults::RERANK_WEIGHT
}
fn default_true() -> bool {
    true
}

/// Which retrievers a search runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// BM25 only.
    Bm25,
    /// Dense ANN only.
    Dense,
    /// Collaborative filtering only (needs a user).
    Cf,
    /// BM25 and dense, plus CF when a user is given.
    #[default]
    Hybrid,
}

impl Mode {
    /// The retrievers a search in this mode runs, given whether it has a (non-empty) query, a
    /// user, and a generation with CF; or why the request cannot be answered as asked.
    pub fn retrievers(self, query: bool, user: bool, has_cf: bool) -> Result<Vec<RetrieverKind>> {
        Ok(match (self, query, user) {
            (Mode::Bm25 | Mode::Dense | Mode::Hybrid, false, false) => {
                return Err(Error::invalid(
                    "query",
                    "a non-empty query is required (or a user, for cf and hybrid; or, to browse without \
                     either, filters, exclude or sort in hybrid mode); punctuation, marks and invisible \
                     characters alone are no query",
                ));
            }
            (Mode::Bm25 | Mode::Dense, false, true) => {
                return Err(Error::invalid("query", "bm25 and dense modes need a non-empty query"));
            }
            (Mode::Cf, _, false) => return Err(Error::invalid("user", "cf mode needs a user")),
            (Mode::Bm25, true, _) => vec![RetrieverKind::Bm25],
            (Mode::Dense, true, _) => vec![RetrieverKind::Dense],
            (Mode::Cf, _, true) => vec![RetrieverKind::Cf],
            (Mode::Hybrid, q, u) => {
                let mut kinds = Vec::new();
                if q {
                    kinds.extend([RetrieverKind::Bm25, RetrieverKind::Dense]);
                }
                // A hybrid search for a user of a generation without CF still answers by content
                // when it has a query; without one, CF is all it asks for, and it gets cf mode's
                // answer (unavailable in this index).
                if u && (has_cf || !q) {
                    kinds.push(RetrieverKind::Cf);
                }
                kinds
            }
        })
    }
}

/// Per-retriever weights for fusion; absent ones are 1. Each from 0 to 10⁶
/// ([`crate::fusion::MAX_WEIGHT`]): weights are relative, and the bound keeps every score finite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// BM25 weight.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000000))]
    pub bm25: Option<f64>,
    /// Dense weight (content, in recommendations).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000000))]
    pub dense: Option<f64>,
    /// CF weight.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000000))]
    pub cf: Option<f64>,
}

impl Weights {
    /// The weight of `kind`'s list: as given, else 1.
    pub fn of(&self, kind: RetrieverKind) -> f64 {
        self.given(kind).unwrap_or(1.0)
    }

    /// Refuses a BM25 weight where no BM25 list can exist (`what`: recommendations, similar
    /// items), rather than reading it and ignoring it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] on `weights.bm25`.
    pub fn refuse_bm25(&self, what: &str) -> Result<()> {
        match self.bm25 {
            Some(_) => Err(Error::invalid("weights.bm25", format!("{what} have no BM25 list (weights: cf, dense)"))),
            None => Ok(()),
        }
    }

    /// Checks every weight given against [`crate::fusion::MAX_WEIGHT`], naming it, whether or
    /// not the request runs its list.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] on `weights.bm25`, `weights.dense` or `weights.cf`.
    pub fn check(&self) -> Result<()> {
        for (name, weight) in [("bm25", self.bm25), ("dense", self.dense), ("cf", self.cf)] {
            if let Some(weight) = weight {
                crate::fusion::check_weight(&format!("weights.{name}"), weight)?;
            }
        }
        Ok(())
    }

    /// The weight of `kind`'s list, when the request gives one.
    pub fn given(&self, kind: RetrieverKind) -> Option<f64> {
        match kind {
            RetrieverKind::Bm25 => self.bm25,
            RetrieverKind::Dense => self.dense,
            RetrieverKind::Cf => self.cf,
        }
    }
}

/// Which reranker a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RerankerKind {
    /// The generation's cross-encoder (`hyrank train-reranker`), combined with the retriever
    /// scores by its learned weights.
    Trained,
    /// MaxSim over MiniLM's token embeddings, untrained for this use; added with `weight`.
    LateInteraction,
}

/// Rerank-stage options of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RerankOptions {
    /// `false` turns reranking off for this search, also where the generation reranks by
    /// default.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Which reranker: the trained one when the generation has it, else late interaction.
    #[serde(default, deserialize_with = "crate::json::optional_name_only")]
    pub reranker: Option<RerankerKind>,
    /// How many fused candidates the reranker reads (`k` when larger; past them the list goes
    /// on in fused order, whatever the page's `offset`): by default the depth the
    /// trained reranker was validated at, else 20.
    #[serde(default, deserialize_with = "crate::json::optional_positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub depth: Option<usize>,
    /// Weight of the late-interaction score in the final score; the trained reranker's
    /// weights are learned and this is ignored.
    #[serde(default = "default_rerank_weight")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000000))]
    pub weight: f64,
    /// Milliseconds from the request's arrival within which the rerank stage works (1 to
    /// 60,000): it waits for a turn no longer, starts no pass it would not finish in time, and
    /// the candidates not reranked by then keep their fused order below the reranked ones (the
    /// response's `rerank_cut` says how many were). The time is the server's, from when it has
    /// read the request, its queueing for the engine included; it may be passed by up to one
    /// pass. Like any `rerank` object, it asks for a rerank (the generation's trained reranker,
    /// else late interaction). By default the server's `rerank_budget_ms`, else none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::optional_positive_count"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 60000))]
    pub budget_ms: Option<usize>,
}

impl RerankOptions {
    /// Rerank the top `depth` with `reranker` (the default one when `None`).
    pub fn top(depth: usize, reranker: Option<RerankerKind>) -> Self {
        RerankOptions { enabled: true, reranker, depth: Some(depth), weight: default_rerank_weight(), budget_ms: None }
    }

    /// The trained reranker at the depth it was validated at.
    pub fn default_trained() -> Self {
        RerankOptions {
            enabled: true,
            reranker: Some(RerankerKind::Trained),
            depth: None,
            weight: default_rerank_weight(),
            budget_ms: None,
        }
    }

    /// No reranking, whatever the generation's default.
    pub fn off() -> Self {
        RerankOptions { enabled: false, reranker: None, depth: None, weight: default_rerank_weight(), budget_ms: None }
    }
}

/// A search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query text. Without one (and without a user), a hybrid search that gives
    /// `filters`, `exclude` or `sort` browses: every item they allow, scored 0, in `sort`'s
    /// order, then the catalog's.
    #[serde(default)]
    pub query: Option<String>,
    /// A user to personalise for (adds the CF retriever in hybrid mode). An integer is read
    /// as its digits (`151` is `"151"`).
    #[serde(default, deserialize_with = "crate::json::optional_id")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::json::Id>))]
    pub user: Option<String>,
    /// Hits to return.
    #[serde(default = "default_k", deserialize_with = "crate::json::positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub k: usize,
    /// Hits to skip: the page from this position (0-based) of the ranked list (`total` hits
    /// long; a page past it is empty). Pages are cuts of one list while `k`, `candidates` and
    /// `rerank.depth` stay the same; to page deeper than the default list, ask for more
    /// `candidates` (a browse lists every item its filters allow: no depth to ask for).
    #[serde(default, deserialize_with = "crate::json::count")]
    pub offset: usize,
    /// Field conditions every hit must meet.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub filters: Filters,
    /// Field conditions no hit may meet: an item meeting any of them is left out, one
    /// lacking the field is not (Elasticsearch's and Qdrant's `must_not`). The same conditions
    /// as `filters`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub exclude: Filters,
    /// Retrievers to run.
    #[serde(default, deserialize_with = "crate::json::name_only")]
    pub mode: Mode,
    /// How to fuse them; linear (min-max normalised, equal weights) unless asked otherwise.
    #[serde(default = "defaults::search_fusion")]
    pub fusion: Fusion,
    /// Per-retriever fusion weights. A weight of a list this request does not run (`cf`
    /// without a user, `dense` in `bm25` mode) is unused, not refused, so one set of weights
    /// serves every mode; `breakdown.retrievers` names the lists that ran.
    #[serde(default)]
    pub weights: Weights,
    /// Candidates each retriever returns before fusion, at least `k` (fewer could not fill
    /// the page, and is refused). Absent: 100, or `k` when larger.
    #[serde(default, deserialize_with = "crate::json::present_positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, nullable = false))]
    pub candidates: Option<usize>,
    /// Rerank the top of the fused list. Absent: the generation's trained reranker when its
    /// manifest enables it by default (its validation gain over the plain hybrid held up),
    /// else none.
    #[serde(default)]
    pub rerank: Option<RerankOptions>,
    /// Fusion of items CF cannot score, when a user is given.
    #[serde(default, deserialize_with = "crate::json::name_only")]
    pub cold_items: ColdItems,
    /// BM25's k1 (0 to 100), b (0 to 1) and field combination for this request; what is
    /// absent keeps the generation's.
    #[serde(default)]
    pub bm25: Option<crate::lexical::Bm25Overrides>,
    /// Add explanation trees (BM25 detail, CF history contributions).
    #[serde(default)]
    pub explain: bool,
    /// Mark the query's words in each hit's title, text and the catalog fields BM25 searches
    /// (`highlights`: HTML-escaped, each matched word inside `<em>` and `</em>`, the text cut
    /// to its best fragment of about 150 bytes, a field's matched values each). Words are
    /// matched as BM25 matches them: after each field's analysis (stems, folded diacritics,
    /// CJK pairs).
    #[serde(default)]
    pub highlight: bool,
    /// Fields to count values of over the ranked list the pages are cut from (`facets` in
    /// the results: each field's most frequent values with their hits, a number field's span),
    /// at most 20, each a field some item holds (a name no item has is refused, as a filter's
    /// is).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub facets: Vec<String>,
    /// Order the ranked list by catalog fields instead of relevance (at most 4 keys, each
    /// `{"field", "order": "asc"|"desc"}`, each field some item holds):
    /// texts case-folded, equal keys in fused order, an item without the field last, a list by
    /// its smallest member ascending and its largest descending. The list is the one `total`
    /// counts (the candidates; for a browse, every item the filters allow); hits keep their
    /// relevance `score`. A sorted list is not reranked (`rerank.enabled: true` is refused).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 4))]
    pub sort: Vec<crate::sort::SortKey>,
}

/// The query text a search runs on: `query` without surrounding whitespace, or `None` when
/// nothing with content is left, so that a query of only whitespace (Unicode Z*), control or
/// format characters (Cc, Cf: zero-width spaces and joiners, the byte-order mark,
/// bidirectional marks, the soft hyphen), punctuation (P*), combining marks with no letter to
/// mark (M*), or characters Unicode says to render as nothing (Default_Ignorable_Code_Point:
/// variation selectors, the combining grapheme joiner, Hangul fillers) is treated exactly like
/// an empty query. Categories from ICU4X's tables (`icu_properties`, the current Unicode).
pub fn query_text(query: Option<&str>) -> Option<&str> {
    use icu_properties::props::{DefaultIgnorableCodePoint, Emoji, GeneralCategory, GeneralCategoryGroup as Group};
    use icu_properties::{CodePointMapData, CodePointSetData};
    let query = query?.trim();
    // Punctuation alone ("!!!", "...", "¿?") is no query either: no analyzer keeps it as a term,
    // and the encoder would embed noise whose nearest items come back looking like answers.
    // Letters, digits and symbols (C++, €, emoji) are content, and so are private-use and
    // unassigned code points (a newer Unicode's letters), which nothing here can judge.
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let category = CodePointMapData::<GeneralCategory>::new();
    let no_content = [Group::Separator, Group::Control, Group::Format, Group::Punctuation, Group::Mark];
    let content = |c: char| {
        !c.is_whitespace() && !ignorable.contains(c) && !no_content.iter().any(|group| group.contains(category.get(c)))
    };
    // Some emoji are punctuation drawn as a picture by what follows them: `#️⃣` (# with the
    // emoji selector and the keycap mark), `‼️`, `〰️`. Bare `#` or `‼` stays punctuation.
    let emoji = CodePointSetData::new::<Emoji>();
    let pictured = |(c, next): (char, Option<char>)| emoji.contains(c) && matches!(next, Some('\u{fe0f}' | '\u{20e3}'));
    let next = query.chars().skip(1).map(Some).chain([None]);
    (query.chars().any(content) || query.chars().zip(next).any(pictured)).then_some(query)
}

impl SearchRequest {
    /// The hits this search returns.
    pub fn page(&self) -> Page {
        Page { offset: self.offset, k: self.k }
    }

    /// A hybrid search for `query` with every other option at its default.
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            query: Some(query.into()),
            user: None,
            k: default_k(),
            offset: 0,
            filters: Filters::new(),
            exclude: Filters::new(),
            mode: Mode::default(),
            fusion: defaults::search_fusion(),
            weights: Weights::default(),
            candidates: None,
            rerank: None,
            cold_items: ColdItems::default(),
            bm25: None,
            explain: false,
            highlight: false,
            facets: Vec::new(),
            sort: Vec::new(),
        }
    }
}

/// The longest rerank budget a request may give, in milliseconds.
pub const MAX_RERANK_BUDGET_MS: usize = 60_000;

/// `budget_ms` as a rerank budget, if a request may give it.
pub fn check_rerank_budget(budget_ms: Option<usize>) -> Result<Option<std::time::Duration>> {
    match budget_ms {
        Some(ms) if ms == 0 || ms > MAX_RERANK_BUDGET_MS => Err(Error::invalid(
            "rerank.budget_ms",
            format!("must be between 1 and {MAX_RERANK_BUDGET_MS} milliseconds, got {ms}"),
        )),
        budget => Ok(budget.map(|ms| std::time::Duration::from_millis(ms as u64))),
    }
}

/// `depth` if it is a rerank depth a request may ask for.
pub fn check_rerank_depth(depth: usize) -> Result<usize> {
    if depth == 0 || depth > MAX_RERANK {
        return Err(Error::invalid("rerank.depth", format!("must be between 1 and {MAX_RERANK}")));
    }
    Ok(depth)
}

/// Which hits of a request's ranked list come back: `k` of them, from position `offset` on
/// (0-based; Elasticsearch's `from` and `size`, Qdrant's `offset` and `limit`). The list is
/// each retriever's candidates, fused (and its top reranked): it does not depend on `offset`,
/// so pages of one `k` are cuts of one list, [`crate::request::Results::total`] long, and a
/// page past its end is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Hits skipped.
    pub offset: usize,
    /// Hits returned (fewer where the list ends).
    pub k: usize,
}

impl Page {
    /// The position after the page's last hit (saturating: an offset past any list is an empty
    /// page, not an overflow).
    pub fn end(self) -> usize {
        self.offset.saturating_add(self.k)
    }
}

/// The candidates each retriever returns for a request of `k` hits that asks for
/// `candidates`: what it asks, else [`defaults::CANDIDATES`] or `k` when larger, so that a
/// request for many hits without a depth still gets lists that can fill them. Not the page's
/// offset: the list pages are cut from stays the same whichever page is asked.
pub fn candidates_for(k: usize, candidates: Option<usize>) -> usize {
    candidates.unwrap_or(defaults::CANDIDATES.max(k))
}

/// Checks a request's page and per-retriever `candidates` against the bounds, and returns the
/// candidates it runs with ([`candidates_for`]). The offset has no bound: skipping hits costs
/// nothing, and a page past the list is empty.
///
/// # Errors
/// [`Error::InvalidArgument`] on `k` out of 1..=[`MAX_K`], on `candidates` out of
/// 1..=[`MAX_CANDIDATES`] or fewer than `k`: a list shorter than the page leaves it short
/// without a word (Elasticsearch's kNN refuses `num_candidates` below `k` likewise).
pub fn check_page(page: Page, candidates: Option<usize>) -> Result<usize> {
    let k = page.k;
    if k == 0 || k > MAX_K {
        return Err(Error::invalid("k", format!("must be between 1 and {MAX_K}, got {k}")));
    }
    let candidates = candidates_for(k, candidates);
    if candidates == 0 || candidates > MAX_CANDIDATES {
        return Err(Error::invalid("candidates", format!("must be between 1 and {MAX_CANDIDATES}, got {candidates}")));
    }
    if candidates < k {
        return Err(Error::invalid(
            "candidates",
            format!("{candidates} is fewer than k ({k}): each retriever's list must be able to fill the page; ask for at least k, or leave it out"),
        ));
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use RetrieverKind::{Bm25, Cf, Dense};

    fn field_of(result: Result<Vec<RetrieverKind>>) -> String {
        match result {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid-request error, got {other:?}"),
        }
    }

    #[test]
    fn each_mode_runs_the_retrievers_its_inputs_allow() {
        // (mode, query, user, has_cf) → retrievers
        let cases = [
            (Mode::Bm25, true, false, true, vec![Bm25]),
            (Mode::Bm25, true, true, true, vec![Bm25]),
            (Mode::Dense, true, true, false, vec![Dense]),
            (Mode::Cf, false, true, true, vec![Cf]),
            (Mode::Cf, true, true, true, vec![Cf]),
            (Mode::Hybrid, true, false, true, vec![Bm25, Dense]),
            (Mode::Hybrid, true, true, true, vec![Bm25, Dense, Cf]),
            (Mode::Hybrid, true, true, false, vec![Bm25, Dense]),
            (Mode::Hybrid, false, true, true, vec![Cf]),
            // Without CF, content answers a query; a user alone asks CF, which says it is
            // unavailable (as cf mode), rather than an empty 200.
            (Mode::Hybrid, false, true, false, vec![Cf]),
        ];
        for (mode, query, user, has_cf, expected) in cases {
            assert_eq!(
                mode.retrievers(query, user, has_cf).unwrap(),
                expected,
                "{mode:?} q={query} u={user} cf={has_cf}"
            );
        }
    }

    #[test]
    fn a_mode_missing_its_input_names_the_field() {
        assert_eq!(field_of(Mode::Hybrid.retrievers(false, false, true)), "query");
        assert_eq!(field_of(Mode::Bm25.retrievers(false, false, true)), "query");
        assert_eq!(field_of(Mode::Dense.retrievers(false, true, true)), "query");
        assert_eq!(field_of(Mode::Cf.retrievers(true, false, true)), "user");
        assert_eq!(Mode::Cf.retrievers(true, false, true).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn an_integer_id_is_read_as_its_digits_and_a_fraction_is_refused() {
        let recommend = |json: &str| serde_json::from_str::<RecommendRequest>(json).map(|r| r.user);
        assert_eq!(recommend(r#"{"user": 151}"#).unwrap(), "151");
        assert_eq!(recommend(r#"{"user": "151"}"#).unwrap(), "151");
        assert_eq!(recommend(r#"{"user": 18446744073709551615}"#).unwrap(), "18446744073709551615");
        assert_eq!(recommend(r#"{"user": -7}"#).unwrap(), "-7");
        for (json, said) in [
            (r#"{"user": 1.5}"#, "floating point `1.5`, expected an id: a string, or an integer"),
            (r#"{"user": 1e3}"#, "floating point `1000.0`"),
            (r#"{"user": true}"#, "boolean `true`, expected an id"),
            (r#"{"user": null}"#, "expected an id"),
        ] {
            let error = recommend(json).unwrap_err().to_string();
            assert!(error.contains(said), "{json}: {error}");
        }
        let search = |json: &str| serde_json::from_str::<SearchRequest>(json).map(|r| r.user);
        assert_eq!(search(r#"{"query": "q", "user": 7}"#).unwrap().as_deref(), Some("7"));
        assert_eq!(search(r#"{"query": "q", "user": null}"#).unwrap(), None);
        assert_eq!(search(r#"{"query": "q"}"#).unwrap(), None);
        assert!(search(r#"{"query": "q", "user": [7]}"#).unwrap_err().to_string().contains("expected an id"));
        let similar = serde_json::from_str::<SimilarRequest>(r#"{"item": 260}"#).unwrap();
        assert_eq!(similar.item, "260");
    }

    #[test]
    fn bounds_are_checked_with_the_field_named() {
        let first = |k| Page { offset: 0, k };
        let check_k = |k, candidates| check_page(first(k), candidates);
        assert_eq!(check_k(defaults::K, None).unwrap(), defaults::CANDIDATES);
        assert!(check_k(0, Some(10)).is_err());
        assert!(check_k(MAX_K + 1, Some(MAX_K + 1)).is_err());
        assert!(check_k(10, Some(MAX_CANDIDATES + 1)).is_err());
        assert!(check_k(10, Some(0)).is_err());
        // Fewer candidates than k could not fill the page: refused, naming candidates; none
        // given, a k past the default depth raises it.
        let Err(Error::InvalidArgument { field, reason }) = check_k(10, Some(5)) else { panic!("5 < 10 accepted") };
        assert_eq!(field, "candidates");
        assert!(reason.contains("fewer than k (10)"), "{reason}");
        assert_eq!(check_k(10, Some(10)).unwrap(), 10);
        assert_eq!(check_k(500, None).unwrap(), 500);
        assert_eq!(check_k(5, Some(7)).unwrap(), 7);
        assert_eq!(check_rerank_depth(MAX_RERANK).unwrap(), MAX_RERANK);
        assert!(check_rerank_depth(0).is_err());
        assert!(check_rerank_depth(MAX_RERANK + 1).is_err());
    }

    #[test]
    fn the_lists_do_not_depend_on_the_offset() {
        let page = |offset, k| Page { offset, k };
        assert_eq!(check_page(page(0, 10), None).unwrap(), defaults::CANDIDATES);
        assert_eq!(check_page(page(500, 10), None).unwrap(), defaults::CANDIDATES);
        assert_eq!(check_page(page(500, 10), Some(10)).unwrap(), 10);
        assert_eq!(check_page(page(usize::MAX, 10), None).unwrap(), defaults::CANDIDATES);
        assert_eq!(page(usize::MAX, 10).end(), usize::MAX);
        assert!(check_page(page(20, 10), Some(5)).is_err(), "a list shorter than a page");
    }

    #[test]
    fn an_offset_reads_from_every_request_and_defaults_to_the_first_page() {
        let search: SearchRequest = serde_json::from_str(r#"{"query":"tent","offset":20,"k":5}"#).unwrap();
        assert_eq!(search.page(), Page { offset: 20, k: 5 });
        let recommend: RecommendRequest = serde_json::from_str(r#"{"user":"u1","offset":3}"#).unwrap();
        assert_eq!(recommend.page(), Page { offset: 3, k: defaults::K });
        let similar: SimilarRequest = serde_json::from_str(r#"{"item":"i1"}"#).unwrap();
        assert_eq!(similar.page(), Page { offset: 0, k: defaults::K });
        assert!(serde_json::from_str::<SearchRequest>(r#"{"query":"tent","offset":-1}"#).is_err());
    }

    #[test]
    fn a_bare_request_reads_the_same_defaults_as_serde() {
        let parsed: SearchRequest = serde_json::from_str(r#"{"query":"tent"}"#).unwrap();
        assert_eq!(parsed, SearchRequest::new("tent"));
    }

    #[test]
    fn a_query_of_invisible_characters_is_no_query() {
        for empty in ["", "   ", "\u{200b}\u{200d}", "\u{feff}", "\u{7}\u{1b}\t", "\u{00ad}\u{200e}\u{2060}"] {
            assert_eq!(query_text(Some(empty)), None, "{empty:?}");
        }
        // Invisible by Unicode's Default_Ignorable_Code_Point though not Cf (variation
        // selectors, the combining grapheme joiner, Hangul fillers, a Khmer inherent vowel,
        // a Mongolian variation selector), and marks with no letter to mark.
        for invisible in [
            "\u{fe0f}",
            "\u{fe0e}\u{fe00}",
            "!!!\u{34f}",
            "\u{3164}",
            "\u{115f}\u{1160}",
            "\u{ffa0}",
            "\u{17b4}",
            "\u{180b}",
            "\u{e0100}",
            "\u{301}",
            "\u{20dd}",
            " \u{3000}\u{2028} ",
        ] {
            assert_eq!(query_text(Some(invisible)), None, "{invisible:?}");
        }
        // A mark on a letter, an emoji with its presentation selector, and Hangul are content.
        for content in [
            "e\u{301}",
            "❤\u{fe0f}",
            "텐트",
            "\u{e000}",
            "#\u{fe0f}\u{20e3}",
            "#\u{20e3}",
            "‼\u{fe0f}",
            "〰\u{fe0f}",
            "1\u{fe0f}\u{20e3}",
            "👨\u{200d}👩\u{200d}👧",
        ] {
            assert_eq!(query_text(Some(content)), Some(content), "{content:?} has content");
        }
        assert_eq!(query_text(None), None);
        assert_eq!(query_text(Some("  tent\u{200b} ")), Some("tent\u{200b}"), "visible text is kept as typed");
        for punctuation in ["!!!", "...", "¿?", " — ", "\"()\"", "#@&"] {
            assert_eq!(query_text(Some(punctuation)), None, "{punctuation:?} has no content");
        }
        for content in ["C++", "€", "🙂", "#1", "+", "AT&T"] {
            assert_eq!(query_text(Some(content)), Some(content), "{content:?} has content");
        }
        assert_eq!(query_text(Some("帐篷")), Some("帐篷"));
        let parsed: RecommendRequest = serde_json::from_str(r#"{"user":"u1"}"#).unwrap();
        assert_eq!(parsed, RecommendRequest::new("u1"));
        assert_eq!(parsed.cold_items, ColdItems::Ignore);
    }
}
