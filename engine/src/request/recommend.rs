//! A recommendation request: which lists it fuses, what it does with cold items, and its
//! defaults.

use serde::{Deserialize, Serialize};

use super::*;
/// What fusion does with items CF cannot score (no training interactions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColdItems {
    /// CF abstains and its weight goes to the retrievers that can score the item, so cold
    /// items compete on content alone. Right when content is about as reliable as CF.
    #[default]
    Share,
    /// Plain fusion: a cold item simply gets no CF contribution, so it surfaces only when its
    /// other evidence beats warm items' combined evidence.
    Ignore,
}

/// Which candidate generators a recommendation uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecommendMode {
    /// Collaborative filtering only (422 on a generation built without interactions).
    Cf,
    /// Content only: items near the user's recent history in embedding space.
    Content,
    /// Both, fused (content alone on a generation built without interactions, said in a note).
    #[default]
    Hybrid,
}

/// A recommendation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    /// The user. An integer is read as its digits (`151` is `"151"`).
    #[serde(deserialize_with = "crate::json::id")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::json::Id))]
    pub user: String,
    /// Items to return.
    #[serde(default = "default_k", deserialize_with = "crate::json::positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub k: usize,
    /// Items to skip: the page from this position (0-based) of the ranked list, as a
    /// search's `offset`.
    #[serde(default, deserialize_with = "crate::json::count")]
    pub offset: usize,
    /// Leave out items the user already interacted with.
    #[serde(default = "default_true")]
    pub exclude_seen: bool,
    /// Candidate generators.
    #[serde(default, deserialize_with = "crate::json::name_only")]
    pub mode: RecommendMode,
    /// Fusion of items CF cannot score.
    #[serde(default = "default_recommend_cold_items", deserialize_with = "crate::json::name_only")]
    pub cold_items: ColdItems,
    /// Field conditions every item must meet.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub filters: Filters,
    /// Field conditions no item may meet: an item meeting any of them is left out, one
    /// lacking the field is not (Elasticsearch's and Qdrant's `must_not`). The same conditions
    /// as `filters`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub exclude: Filters,
    /// How to fuse CF and content candidates.
    #[serde(default)]
    pub fusion: Fusion,
    /// `cf` (default 1) and `dense` (content) weights; `dense` defaults to the generation's
    /// validated weight (manifest `cf_selection.content_weight`, written by `--cf-model auto`),
    /// else to [`defaults::RECOMMEND_CONTENT_WEIGHT_ALS`] (0.3) when ALS serves CF and
    /// [`defaults::RECOMMEND_CONTENT_WEIGHT_EASE`] (0.1) under EASE: content's share beside CF,
    /// so `mode: content` alone weighs 1 unless given. `bm25` is refused (no BM25 list).
    #[serde(default)]
    pub weights: Weights,
    /// Candidates each retriever returns before fusion, at least `k` (fewer could not fill
    /// the page, and is refused). Absent: 100, or `k` when larger.
    #[serde(default, deserialize_with = "crate::json::present_positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, nullable = false))]
    pub candidates: Option<usize>,
    /// How many recent history items form the content profile.
    #[serde(default = "default_recent", deserialize_with = "crate::json::positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub recent: usize,
    /// Rerank the top of the fused list with the trained recommendation reranker (only
    /// `enabled` and `depth` apply). Absent: reranked when the generation's manifest enables it
    /// by default (its gain on held-out next items held up), else not.
    #[serde(default)]
    pub rerank: Option<RerankOptions>,
    /// Add the history items behind each score.
    #[serde(default)]
    pub explain: bool,
    /// As a search's `facets`, over this ranked list.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub facets: Vec<String>,
    /// As a search's `sort`, over this ranked list.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 4))]
    pub sort: Vec<crate::sort::SortKey>,
}

impl RecommendRequest {
    /// A hybrid recommendation for `user` with every other option at its default.
    pub fn new(user: impl Into<String>) -> Self {
        RecommendRequest {
            user: user.into(),
            k: default_k(),
            offset: 0,
            exclude_seen: true,
            mode: RecommendMode::default(),
            cold_items: default_recommend_cold_items(),
            filters: Filters::new(),
            exclude: Filters::new(),
            fusion: Fusion::default(),
            weights: Weights::default(),
            candidates: None,
            recent: default_recent(),
            rerank: None,
            explain: false,
            facets: Vec::new(),
            sort: Vec::new(),
        }
    }

    /// The items this recommendation returns.
    pub fn page(&self) -> Page {
        Page { offset: self.offset, k: self.k }
    }
}

/// Measured on MovieLens (validation split carved from training data): sharing CF's weight with
/// weak content evidence filled the top 20 with cold items and cut Recall@20 from 0.20 to 0.05.
fn default_recommend_cold_items() -> ColdItems {
    ColdItems::Ignore
}

fn default_recent() -> usize {
    defaults::RECENT
}
