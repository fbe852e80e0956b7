//! What a search, a recommendation or a similar-items request gets back: the hits, best
//! first, each with its score's breakdown and, when asked, its explanation trees; the time
//! each stage took; and, for the trainers, the fused candidates with their features.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::combination::Features;
use crate::explain::{Explanation, RetrieverKind, ScoreBreakdown};
use crate::item::FieldValue;

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hit {
    /// Item id.
    pub id: String,
    /// Item title.
    pub title: String,
    /// Item fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldValue>,
    /// Final score (equals `breakdown.final_score`).
    pub score: f64,
    /// How the score was composed.
    pub breakdown: ScoreBreakdown,
    /// Detail trees, when `explain` was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<Explanation>,
    /// The query's words marked in the title, the text and the catalog fields BM25 searches,
    /// when `highlight` was asked for and the query matches one of them (a hit the dense
    /// retriever alone found may match none, and has no highlights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highlights: Option<crate::lexical::Highlights>,
}

impl Hit {
    /// Adds `tree`, what `retriever` (`name` in the trees) holds about this hit, to its
    /// explanations, saying so at its root when the retriever did not list the hit among its
    /// `candidates` ([`crate::explain::Explanation::for_hit`]).
    pub(crate) fn explain(&mut self, tree: Explanation, retriever: RetrieverKind, name: &str, candidates: usize) {
        let tree = Explanation::for_hit(tree, retriever, name, &self.breakdown, candidates);
        self.explanations.push(tree);
    }
}

/// Milliseconds per stage of one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    /// Building the allow mask of the request's filters and exclusions (0 without either).
    #[serde(default)]
    pub filter_ms: f64,
    /// Query encoding.
    pub embed_ms: f64,
    /// Per retriever. A hybrid search may run BM25 while the query is encoded, so the two
    /// can overlap: their sum can exceed `total_ms`.
    pub retrieve_ms: BTreeMap<String, f64>,
    /// Fusion.
    pub fusion_ms: f64,
    /// Rerank: the model's scores and the window's order.
    pub rerank_ms: f64,
    /// Highlighting: the query's terms under each field's analysis, then each hit's fields
    /// marked (0 without `highlight`).
    #[serde(default)]
    pub highlight_ms: f64,
    /// Counting the `facets` over the ranked list (0 without them).
    #[serde(default)]
    pub facets_ms: f64,
    /// Whole request inside the engine.
    pub total_ms: f64,
}

/// Hits and how they were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Results {
    /// Best first: the request's page of the ranked list.
    pub hits: Vec<Hit>,
    /// Hits in the ranked list the page was cut from: each retriever's candidates, fused,
    /// without what the request leaves out (`filters`, `exclude`, deleted items; a
    /// recommendation's seen items, a similar-items request's seed); for a browse (a search
    /// without a query), every item the filters allow. How far `offset` can page.
    pub total: usize,
    /// The generation that answered.
    pub generation: String,
    /// Where the time went.
    pub timings: Timings,
    /// What the request should know about its answer: a filter value no item has (with the
    /// field's close values), which is why a list can be short or empty; a search whose query
    /// the embedding model reads none of, whose dense list is then empty. Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Per field a search's `facets` named, its values over the ranked list's `total` hits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: BTreeMap<String, crate::facets::FacetCounts>,
    /// Present when the rerank budget (`rerank.budget_ms`) ran out before the reranker read
    /// its whole window: the hits past the first `reranked` keep their fused order, below the
    /// reranked ones, and have no rerank score. Such an answer is not cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank_cut: Option<RerankCut>,
    /// For a search whose BM25 read query words no item holds as the catalog's words near
    /// them (typo tolerance): each such word with the word it was read as, and the query with
    /// them replaced ("Showing results for ..."). Absent when every word was read as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did_you_mean: Option<crate::lexical::DidYouMean>,
}

/// How far a rerank its budget cut short got (a response's `rerank_cut`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RerankCut {
    /// Candidates the reranker scored, the first of the fused list: 0 when the budget was
    /// spent before the stage began (by the first stage, or waiting for a rerank turn).
    pub reranked: usize,
    /// Candidates it was to score: the rerank depth, or `k` where larger, and no more than
    /// the fused list holds.
    pub depth: usize,
    /// The budget, in milliseconds from the request's arrival.
    pub budget_ms: u64,
}

impl RerankCut {
    /// What a response's notes say of it. A budget past the wait for a rerank turn
    /// ([`crate::gate::RERANK_WAIT`]) that reranked nothing was cut by that wait.
    pub fn note(&self) -> String {
        let wait = crate::gate::RERANK_WAIT.as_millis();
        let by = if self.reranked == 0 && u128::from(self.budget_ms) > wait {
            format!("the {} s wait for a rerank turn (within its budget of {} ms)", wait / 1000, self.budget_ms)
        } else {
            format!("its budget of {} ms", self.budget_ms)
        };
        format!(
            "rerank: cut short by {by}: {} of {} candidates reranked (the fused list's first); the rest keep their \
             fused order, their scores on the fused scale",
            self.reranked, self.depth
        )
    }
}

/// A fused candidate with the features the learned combination reads (the rerank logit not yet
/// filled in): what the reranker trainer mines negatives from and fits the combination on.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Item id.
    pub id: String,
    /// Title and text, as the reranker reads them.
    pub content: String,
    /// The fused score.
    pub fused_score: f64,
    /// Normalised retriever scores.
    pub features: Features,
}
