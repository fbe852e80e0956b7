//! Score explanations. Every hit carries a [`ScoreBreakdown`]: what each retriever scored and
//! ranked it, what each contributed through fusion, the rerank contribution, and the final
//! score, which is exactly the sum of the contributions. Deeper detail (tantivy's BM25 tree, the
//! history items behind a CF score) is an [`Explanation`] tree, built only when asked for.

use serde::{Deserialize, Serialize};

use crate::combination::FeatureContribution;

/// One node of an explanation tree: a value, what it is, and what it is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    /// What this value is.
    pub label: String,
    /// The value.
    pub value: f64,
    /// The values it was computed from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub children: Vec<Explanation>,
}

impl Explanation {
    /// A leaf.
    pub fn leaf(label: impl Into<String>, value: f64) -> Self {
        Explanation { label: label.into(), value, children: Vec::new() }
    }

    /// `tree`, what `retriever` (called `name` in the trees: `cf`, `content`) holds about an
    /// item, as that hit's explanation: unchanged when the retriever listed the item (or
    /// abstained on it) in `breakdown`, else under a root saying the item is not in its list
    /// (its top `candidates`, or an item it leaves out, such as a cold one), so that however
    /// the tree reads it took no part in the hit's score (the breakdown has no entry for it).
    /// The root's value is the tree's.
    pub fn for_hit(
        tree: Explanation,
        retriever: RetrieverKind,
        name: &str,
        breakdown: &ScoreBreakdown,
        candidates: usize,
    ) -> Self {
        let listed = breakdown.retrievers.iter().any(|r| r.retriever == retriever);
        if listed || breakdown.abstained.contains(&retriever) {
            return tree;
        }
        let label = format!("{name}: not in its list (its top {candidates}), so no part in this score");
        Explanation::node(label, tree.value, vec![tree])
    }

    /// A node with children.
    pub fn node(label: impl Into<String>, value: f64, children: Vec<Explanation>) -> Self {
        Explanation { label: label.into(), value, children }
    }

    /// A sum of `parts` shown as its `n` largest parts in magnitude, largest first (equal ones
    /// in the order given), and, when more remain, one leaf `"{rest} other {what}"` holding
    /// their sum, so the children always add up to the node's value. By magnitude, not by
    /// value: a part that pulls the score down by more than a shown one lifts it is as much a
    /// reason for the score, and the rest's sum would hide it.
    pub fn sum_of_top(label: impl Into<String>, mut parts: Vec<Explanation>, n: usize, what: &str) -> Self {
        let total: f64 = parts.iter().map(|p| p.value).sum();
        parts.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
        if parts.len() > n {
            let rest: Vec<Explanation> = parts.drain(n..).collect();
            let value = rest.iter().map(|p| p.value).sum();
            parts.push(Explanation::leaf(format!("{} other {what}", rest.len()), value));
        }
        Explanation { label: label.into(), value: total, children: parts }
    }

    /// Converts tantivy's explanation through its JSON form, which is the only public view of
    /// its details.
    pub fn from_tantivy(explanation: &tantivy::query::Explanation) -> Self {
        fn convert(value: &serde_json::Value) -> Explanation {
            let label = value.get("description").and_then(|d| d.as_str()).unwrap_or("").to_string();
            let score = value.get("value").and_then(|v| v.as_f64()).unwrap_or(0.0);
            let mut children: Vec<Explanation> = value
                .get("details")
                .and_then(|d| d.as_array())
                .map(|details| details.iter().map(convert).collect())
                .unwrap_or_default();
            if let Some(context) = value.get("context").and_then(|c| c.as_array()) {
                children.extend(context.iter().filter_map(|c| c.as_str()).map(|c| Explanation::leaf(c, 0.0)));
            }
            Explanation { label, value: score, children }
        }
        match serde_json::to_value(explanation) {
            Ok(json) => convert(&json),
            Err(e) => Explanation::leaf(format!("explanation unavailable: {e}"), 0.0),
        }
    }
}

/// Which candidate generator produced a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetrieverKind {
    /// tantivy BM25 over title and text.
    Bm25,
    /// HNSW over MiniLM item embeddings, cosine similarity.
    Dense,
    /// HNSW over ALS item factors, inner product with the user's factors.
    Cf,
}

impl RetrieverKind {
    /// Stable name used in requests, responses and metrics.
    pub fn name(self) -> &'static str {
        match self {
            RetrieverKind::Bm25 => "bm25",
            RetrieverKind::Dense => "dense",
            RetrieverKind::Cf => "cf",
        }
    }
}

/// What one retriever said about a hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetrieverScore {
    /// The retriever.
    pub retriever: RetrieverKind,
    /// Its own score (BM25 score, cosine, inner product).
    pub raw_score: f32,
    /// 1-based rank in its own list; equal raw scores share their group's best rank.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub rank: usize,
    /// What this entry added to the fused score.
    pub contribution: f64,
}

/// The rerank stage's part in a hit's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RerankScore {
    /// The reranker's name.
    pub reranker: String,
    /// The reranker's own score.
    pub raw_score: f32,
    /// Its weight in the final score.
    pub weight: f64,
    /// `weight × raw_score`.
    pub contribution: f64,
}

/// The learned combination behind a trained reranker's final score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CombinedScore {
    /// The intercept.
    pub bias: f64,
    /// Each feature's value, learned weight and contribution (the rerank logit is one of them).
    pub features: Vec<FeatureContribution>,
}

/// How a hit's final score was composed: `final = Σ retrievers[i].contribution +
/// rerank.contribution`, or, when the trained reranker's learned combination scored it,
/// `final = combination.bias + Σ combination.features[i].contribution` (the retrievers'
/// fusion contributions then show how the hit was found, not how it was ranked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreBreakdown {
    /// The fusion method the contributions follow: `rrf`, `linear`, `linear_floor` or `dbsf`;
    /// `browse` for a search without a query that ran no retriever (every score 0).
    /// One retriever's list keeps its own order, but its contributions are still the
    /// method's (RRF's `1/(k + rank)`, linear's min-max share), so the breakdown names it.
    pub fusion: String,
    /// One entry per retriever that returned this hit.
    pub retrievers: Vec<RetrieverScore>,
    /// Retrievers that could not score this item (e.g. CF on an item without interactions);
    /// their weight was shared among the others, so the contributions above include it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abstained: Vec<RetrieverKind>,
    /// Sum of the retriever contributions.
    pub fused_score: f64,
    /// Present when the hit went through the rerank stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankScore>,
    /// Present when the trained reranker's learned combination made the final score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combination: Option<CombinedScore>,
    /// The score the hit is ranked by.
    pub final_score: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_shows_its_largest_parts_in_magnitude_and_still_adds_up() {
        let parts = [("a", 0.224), ("b", 0.021), ("c", -0.37), ("d", 0.104), ("e", -0.01), ("f", 0.104)]
            .map(|(label, value)| Explanation::leaf(label, value))
            .to_vec();
        let tree = Explanation::sum_of_top("CF score", parts, 3, "history items");
        let shown: Vec<(&str, f64)> = tree.children.iter().map(|c| (c.label.as_str(), c.value)).collect();
        // The negative part outweighs every positive one; d and f tie and keep their order.
        assert_eq!(&shown[..3], [("c", -0.37), ("a", 0.224), ("d", 0.104)]);
        assert_eq!(shown[3].0, "3 other history items");
        assert!((shown[3].1 - (0.021 - 0.01 + 0.104)).abs() < 1e-12);
        let sum: f64 = tree.children.iter().map(|c| c.value).sum();
        assert!((sum - tree.value).abs() < 1e-12 && (tree.value - 0.073).abs() < 1e-12);
    }
}
