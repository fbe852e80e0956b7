//! How a request names a fusion: `{"method": "rrf", "k": 60}` and the other methods, read
//! strictly (a key a method does not take is refused), and by name alone where a query string
//! or a flag gives it (`fusion=linear_floor`).

use serde::{Deserialize, Serialize};

/// How to fuse: `{"method": ...}`, with `k` for RRF only; any other key is refused, not
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "method", rename_all = "snake_case", try_from = "FusionRequest")]
pub enum Fusion {
    /// Reciprocal rank fusion (Cormack et al. 2009).
    Rrf {
        /// The rank constant; 60 in the original paper. At most 10⁶.
        // Read by FusionRequest; the default here keeps `k` optional in the OpenAPI schema.
        #[serde(default = "default_rrf_k")]
        #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000000))]
        k: f64,
    },
    /// Weighted sum of min-max normalised scores: `Σ w · (s − min) / (max − min)` over the lists
    /// holding the item (weights are not normalised: two lists at weight 1 score up to 2).
    Linear,
    /// Weighted sum of scores normalised from each retriever's floor, the score of an
    /// item unrelated to the query, to the list's best: `(s − floor) / (max − floor)`, clamped
    /// at 0. BM25's floor is 0 (no query term matches); the dense retriever's is the query's
    /// mean score over the items a request can reach (the generation's rows less deleted and
    /// replaced ones, plus the live rows not replaced or deleted; before the request's filters,
    /// which would otherwise cost a pass over the filtered items per request). CF's: under ALS
    /// the probe's mean score over the generation's warm items (rows deleted live among them
    /// until the next build), under EASE 0 (an item no seed has a weight for); a list without a floor
    /// is min-maxed. Why: the list's
    /// lowest member, min-max's zero, moves with the candidate depth, and on a short list it
    /// sits high and stretches the dense list's narrow band of cosines (docs/EVAL.md, "Fusion
    /// from each retriever's floor"; offered, not the default: it gained on SciFact train,
    /// not on test). Bruch, Gai & Ingber's
    /// theoretical min-max (TOIS 2023) takes the floor as the function's bound, which for a
    /// cosine (−1) is far below any item and squeezes the dense scores instead.
    LinearFloor,
    /// Weighted sum of scores normalised by each list's distribution (mean ∓ 3σ ↦ 0..1),
    /// as Qdrant's DBSF does: unclamped, as there, so a member beyond 3σ of its list's mean
    /// (σ the sample standard deviation) lands outside 0..1.
    Dbsf,
}

fn default_rrf_k() -> f64 {
    60.0
}

/// A request's `fusion` object as written. Fusion is read through it because serde, for an
/// internally tagged enum, ignores keys beside the tag of a variant without fields, so
/// `{"method": "linear", "k": 60}` or a weight put inside `fusion` would have passed silently.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a fusion object such as {\"method\": \"rrf\"}")]
struct FusionRequest {
    #[serde(deserialize_with = "crate::json::name_only")]
    method: FusionMethod,
    // A number when present: `"k": null` is refused as the number it is not, not read as absent.
    #[serde(default, deserialize_with = "crate::json::present")]
    k: Option<f64>,
}

/// A fusion method by name, as `fusion.method` and a query string's `fusion=` give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FusionMethod {
    /// [`Fusion::Rrf`] (k 60 unless a body gives `k`).
    Rrf,
    /// [`Fusion::Linear`].
    Linear,
    /// [`Fusion::LinearFloor`].
    LinearFloor,
    /// [`Fusion::Dbsf`].
    Dbsf,
}

impl TryFrom<FusionRequest> for Fusion {
    type Error = String;

    fn try_from(request: FusionRequest) -> std::result::Result<Self, String> {
        let fusion = match request.method {
            FusionMethod::Rrf => return Ok(Fusion::Rrf { k: request.k.unwrap_or_else(default_rrf_k) }),
            FusionMethod::Linear => Fusion::Linear,
            FusionMethod::LinearFloor => Fusion::LinearFloor,
            FusionMethod::Dbsf => Fusion::Dbsf,
        };
        match request.k {
            Some(_) => Err(format!("k is RRF's rank constant; method {} takes no k", fusion.name())),
            None => Ok(fusion),
        }
    }
}

impl std::str::FromStr for Fusion {
    type Err = String;

    /// A method by the name a request's `fusion.method` takes (`rrf` with k 60, `linear`,
    /// `linear_floor`, `dbsf`): what a query string's `fusion=` and the CLI's `--fusion` read.
    fn from_str(method: &str) -> std::result::Result<Self, String> {
        use serde::de::IntoDeserializer;
        let method = FusionMethod::deserialize(method.into_deserializer())
            .map_err(|e: serde::de::value::Error| e.to_string())?;
        Fusion::try_from(FusionRequest { method, k: None })
    }
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: default_rrf_k() }
    }
}

impl Fusion {
    /// Stable name for breakdowns and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Fusion::Rrf { .. } => "rrf",
            Fusion::Linear => "linear",
            Fusion::LinearFloor => "linear_floor",
            Fusion::Dbsf => "dbsf",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fusion_object_takes_its_method_and_rrf_k_and_nothing_else() {
        let read = |json: &str| serde_json::from_str::<Fusion>(json).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"method": "rrf"}"#), Ok(Fusion::Rrf { k: 60.0 }));
        assert_eq!(read(r#"{"method": "rrf", "k": 20}"#), Ok(Fusion::Rrf { k: 20.0 }));
        assert_eq!(read(r#"{"method": "linear_floor"}"#), Ok(Fusion::LinearFloor));
        for (json, says) in [
            (r#"{"method": "linear", "k": 60}"#, "takes no k"),
            (r#"{"method": "dbsf", "foo": 1}"#, "unknown field `foo`"),
            (r#"{"method": "linear_floor", "weights": {"bm25": 0}}"#, "unknown field `weights`"),
            (r#"{"method": "rrf", "bogus": 1}"#, "unknown field `bogus`"),
            (r#"{"method": "borda"}"#, "unknown variant `borda`"),
            (r#"{"k": 60}"#, "missing field `method`"),
            (r#"{"method": "rrf", "k": null}"#, "invalid type: null"),
            (r#"{"method": "linear", "k": null}"#, "invalid type: null"),
            (r#""rrf""#, "a fusion object such as"),
        ] {
            let error = read(json).unwrap_err();
            assert!(error.contains(says), "{json}: {error}");
        }
        // A method by name reads as the object with that method does.
        assert_eq!("linear_floor".parse::<Fusion>(), Ok(Fusion::LinearFloor));
        assert_eq!("rrf".parse::<Fusion>(), Ok(Fusion::Rrf { k: 60.0 }));
        let unknown = "linear-floor".parse::<Fusion>().unwrap_err();
        assert!(unknown.contains("unknown variant `linear-floor`") && unknown.contains("`dbsf`"), "{unknown}");
        // What is written reads back as itself.
        for fusion in [Fusion::Rrf { k: 20.0 }, Fusion::Linear, Fusion::LinearFloor, Fusion::Dbsf] {
            assert_eq!(serde_json::from_value::<Fusion>(serde_json::to_value(&fusion).unwrap()).unwrap(), fusion);
        }
    }
}
