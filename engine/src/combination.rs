//! The learned combination: logistic regression that turns the reranker's logit and the
//! retrievers' normalised scores into a final score, with every feature's part kept for the
//! breakdown (`final = bias + Σ weight × value`, exactly).
//!
//! It lives apart from the model file ([`crate::cross`]) because it is not a model of text: it
//! reads numbers the pipeline already has, is fitted by the trainer, stored in the manifest and
//! applied by the rerank stage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::explain::RetrieverKind;
use crate::fusion::{FusedHit, RankedList, ScoreRange};

/// The features the learned combination reads for one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Features {
    /// The cross-encoder's logit.
    pub rerank: f32,
    /// Each retriever's score min-max normalised over its own candidate list (0 = its worst
    /// candidate, 1 = its best); 0 when the retriever did not return the item.
    pub bm25: f32,
    /// As `bm25`, for the dense retriever.
    pub dense: f32,
    /// As `bm25`, for collaborative filtering.
    pub cf: f32,
}

/// Feature names, in the order [`Features::values`] gives them; the keys of
/// [`Combination::weights`] in every manifest.
pub const FEATURE_NAMES: [&str; 4] = ["rerank", "bm25", "dense", "cf"];

/// The reranker's feature, by name: the one feature the rerank stage fills in itself.
const RERANK: &str = FEATURE_NAMES[0];

impl Features {
    /// The values in [`FEATURE_NAMES`] order.
    pub fn values(&self) -> [f64; 4] {
        [f64::from(self.rerank), f64::from(self.bm25), f64::from(self.dense), f64::from(self.cf)]
    }
}

/// One feature's part in a final score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureContribution {
    /// `rerank`, `bm25`, `dense` or `cf`.
    pub feature: String,
    /// The feature's value for this hit.
    pub value: f64,
    /// Its learned weight.
    pub weight: f64,
    /// `weight × value`.
    pub contribution: f64,
}

/// Logistic regression over [`Features`]: `final = bias + Σ weight × value`, the log-odds that
/// the item is relevant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Combination {
    /// The intercept.
    pub bias: f64,
    /// Weight per feature name.
    pub weights: BTreeMap<String, f64>,
}

impl Combination {
    /// The learned weight of the reranker's logit (0 when the fit left it out).
    pub fn rerank_weight(&self) -> f64 {
        self.weights.get(RERANK).copied().unwrap_or(0.0)
    }

    /// The score and each feature's contribution (features with weight 0 are left out).
    pub fn apply(&self, features: &Features) -> (f64, Vec<FeatureContribution>) {
        let mut total = self.bias;
        let mut parts = Vec::new();
        for (name, value) in FEATURE_NAMES.iter().zip(features.values()) {
            let weight = self.weights.get(*name).copied().unwrap_or(0.0);
            if weight == 0.0 {
                continue;
            }
            let contribution = weight * value;
            total += contribution;
            parts.push(FeatureContribution { feature: name.to_string(), value, weight, contribution });
        }
        (total, parts)
    }

    /// Fits the weights by gradient descent on the log loss, features standardised so one
    /// learning rate suits all, with a small L2 penalty (the fit is over a few thousand
    /// candidates from a few hundred queries). Features that never vary get weight 0.
    pub fn fit(examples: &[(Features, bool)], l2: f64) -> Combination {
        let n = examples.len().max(1) as f64;
        let rows: Vec<[f64; 4]> = examples.iter().map(|(f, _)| f.values()).collect();
        let mut mean = [0.0; 4];
        let mut scale = [0.0; 4];
        for j in 0..4 {
            mean[j] = rows.iter().map(|r| r[j]).sum::<f64>() / n;
            let var = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
            scale[j] = var.sqrt();
        }
        let used: Vec<usize> = (0..4).filter(|&j| scale[j] > 1e-9).collect();
        let mut w = [0.0; 4];
        let mut b = 0.0;
        let rate = 0.5;
        for _ in 0..2000 {
            let mut grad_w = [0.0; 4];
            let mut grad_b = 0.0;
            for (row, (_, label)) in rows.iter().zip(examples) {
                let z = b + used.iter().map(|&j| w[j] * (row[j] - mean[j]) / scale[j]).sum::<f64>();
                let error = 1.0 / (1.0 + (-z).exp()) - if *label { 1.0 } else { 0.0 };
                grad_b += error;
                for &j in &used {
                    grad_w[j] += error * (row[j] - mean[j]) / scale[j];
                }
            }
            b -= rate * grad_b / n;
            for &j in &used {
                w[j] -= rate * (grad_w[j] / n + l2 * w[j]);
            }
        }
        // Back to raw feature units, so that contributions are weight × the value shown.
        let mut weights = BTreeMap::new();
        let mut bias = b;
        for (j, name) in FEATURE_NAMES.iter().enumerate() {
            let raw = if used.contains(&j) { w[j] / scale[j] } else { 0.0 };
            bias -= raw * mean[j];
            weights.insert(name.to_string(), raw);
        }
        Combination { bias, weights }
    }
}

/// Each retriever's score range over its own candidate list, for min-max normalisation: how
/// a fused hit's retriever scores become [`Features`].
pub struct ScoreRanges(Vec<(RetrieverKind, ScoreRange)>);

impl ScoreRanges {
    /// The ranges of the lists fusion read.
    pub fn of(lists: &[RankedList]) -> Self {
        ScoreRanges(lists.iter().map(|list| (list.retriever, ScoreRange::of(list))).collect())
    }

    /// Whether fusion read a list of `kind` (an empty one included).
    pub fn has(&self, kind: RetrieverKind) -> bool {
        self.0.iter().any(|(k, _)| *k == kind)
    }

    /// The hit's retriever scores normalised within each list as linear fusion does; 0 for a
    /// retriever that did not return it. The rerank feature is left at 0 for the caller.
    pub fn features(&self, hit: &FusedHit) -> Features {
        let mut features = Features::default();
        for part in &hit.parts {
            let Some((_, range)) = self.0.iter().find(|(kind, _)| *kind == part.retriever) else {
                continue;
            };
            let value = range.normalize(part.raw_score) as f32;
            match part.retriever {
                RetrieverKind::Bm25 => features.bm25 = value,
                RetrieverKind::Dense => features.dense = value,
                RetrieverKind::Cf => features.cf = value,
            }
        }
        features
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combination_is_an_exact_sum_of_contributions() {
        let combination = Combination {
            bias: -1.5,
            weights: [("rerank", 0.8), ("bm25", 1.2), ("dense", 2.0), ("cf", 0.0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        let features = Features { rerank: 2.0, bm25: 0.5, dense: 0.25, cf: 0.9 };
        let (score, parts) = combination.apply(&features);
        assert_eq!(parts.len(), 3, "a zero weight is left out");
        let sum: f64 = parts.iter().map(|p| p.contribution).sum::<f64>() + combination.bias;
        assert!((score - sum).abs() < 1e-12);
        assert!((score - (-1.5 + 1.6 + 0.6 + 0.5)).abs() < 1e-12);
    }

    #[test]
    fn fitting_finds_the_informative_feature() {
        // Relevance follows the rerank feature; bm25 is noise; cf never varies.
        let mut examples = Vec::new();
        for i in 0..400 {
            let rerank = (i % 20) as f32 / 4.0 - 2.5;
            let noise = ((i * 7919) % 13) as f32 / 13.0;
            examples.push((Features { rerank, bm25: noise, dense: 0.0, cf: 0.3 }, rerank > 0.5));
        }
        let fitted = Combination::fit(&examples, 1e-4);
        let w = &fitted.weights;
        assert!(w["rerank"] > 1.0, "{fitted:?}");
        assert!(w["bm25"].abs() < 0.25 * w["rerank"], "{fitted:?}");
        assert_eq!(w["cf"], 0.0);
        let accuracy = examples.iter().filter(|(f, label)| (fitted.apply(f).0 > 0.0) == *label).count();
        assert!(accuracy >= 390, "accuracy {accuracy}/400");
    }

    #[test]
    fn the_rerank_weight_is_read_by_its_feature_name() {
        let mut combination = Combination { bias: 0.0, weights: BTreeMap::new() };
        assert_eq!(combination.rerank_weight(), 0.0, "absent means left out of the fit");
        combination.weights.insert(FEATURE_NAMES[0].to_string(), 0.75);
        assert_eq!(combination.rerank_weight(), 0.75);
    }
}
