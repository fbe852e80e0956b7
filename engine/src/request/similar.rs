//! A similar-items request.

use serde::{Deserialize, Serialize};

use super::*;
/// A similar-items request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimilarRequest {
    /// The seed item's id. An integer is read as its digits (`151` is `"151"`).
    #[serde(deserialize_with = "crate::json::id")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::json::Id))]
    pub item: String,
    /// Items to return.
    #[serde(default = "default_k", deserialize_with = "crate::json::positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub k: usize,
    /// Items to skip: the page from this position (0-based) of the ranked list, as a
    /// search's `offset`.
    #[serde(default, deserialize_with = "crate::json::count")]
    pub offset: usize,
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
    /// Fusion of content and CF neighbours.
    #[serde(default)]
    pub fusion: Fusion,
    /// `dense` and `cf` weights.
    #[serde(default)]
    pub weights: Weights,
    /// Candidates each retriever returns before fusion, at least `k` (fewer could not fill
    /// the page, and is refused). Absent: 100, or `k` when larger.
    #[serde(default, deserialize_with = "crate::json::present_positive_count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, nullable = false))]
    pub candidates: Option<usize>,
    /// Fusion of items CF cannot score (written live since the build, or without training
    /// interactions) beside warm ones, as a search's: `share` (CF's weight goes to the content
    /// list for them, so an item written live competes on content alone) or `ignore` (they get
    /// no CF contribution). A seed CF cannot score has no CF list either way.
    #[serde(default, deserialize_with = "crate::json::name_only")]
    pub cold_items: ColdItems,
    /// As a search's `facets`, over this ranked list.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub facets: Vec<String>,
    /// As a search's `sort`, over this ranked list.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 4))]
    pub sort: Vec<crate::sort::SortKey>,
}

impl SimilarRequest {
    /// The items this request returns.
    pub fn page(&self) -> Page {
        Page { offset: self.offset, k: self.k }
    }
}
