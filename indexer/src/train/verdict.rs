//! Step 6 of training: the learned combination fitted on the validation candidates, and the
//! verdict whether the reranker is on by default (a cross-fitted gain whose paired-bootstrap
//! interval lies above zero).

use super::passes::ValidationQuery;
use crate::eval::metrics::{bootstrap_interval, ndcg_at};
use hyrank_engine::combination::{Combination, Features};

/// nDCG@10 of candidates ordered by `scores` (higher first; ties keep the retrieval order).
pub(super) fn ndcg_of(query: &ValidationQuery, scores: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..query.candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let ranked: Vec<String> = order.iter().map(|&i| query.candidates[i].id.clone()).collect();
    ndcg_at(&ranked, &query.judged, 10)
}

pub(super) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Every candidate's features with its label (judged relevant or not): what the combination is
/// fitted on.
pub(super) fn labelled<'a>(
    queries: impl Iterator<Item = (&'a ValidationQuery, &'a Vec<Features>)>,
) -> Vec<(Features, bool)> {
    queries
        .flat_map(|(query, features)| {
            query.candidates.iter().zip(features).map(|(c, f)| (*f, query.judged.get(&c.id).is_some_and(|&g| g >= 1)))
        })
        .collect()
}

/// Per-query nDCG@10 of the learned combination under 2-fold cross-fitting: queries at even
/// positions are scored by a combination fitted on the odd ones, and the other way round.
pub(super) fn cross_fitted_ndcg(validation: &[ValidationQuery], features: &[Vec<Features>]) -> Vec<f64> {
    let fold = |parity: usize| {
        labelled(validation.iter().zip(features).enumerate().filter(|(i, _)| i % 2 == parity).map(|(_, pair)| pair))
    };
    let fitted = [Combination::fit(&fold(1), 1e-3), Combination::fit(&fold(0), 1e-3)];
    validation
        .iter()
        .zip(features)
        .enumerate()
        .map(|(i, (query, features))| {
            let scores: Vec<f64> = features.iter().map(|f| fitted[i % 2].apply(f).0).collect();
            ndcg_of(query, &scores)
        })
        .collect()
}

/// The learned combination and the enable-by-default verdict.
pub(super) struct Verdict {
    pub(super) combination: Combination,
    /// nDCG@10 of the combination fitted on every validation query.
    pub(super) combined_ndcg: f64,
    /// nDCG@10 with each query scored by a combination fitted on the other half.
    pub(super) cross_fitted_ndcg: f64,
    /// 90% paired-bootstrap interval of the cross-fitted gain over the hybrid.
    pub(super) gain_interval: [f64; 2],
}

impl Verdict {
    /// On by default only when the gain's interval lies above zero.
    pub(super) fn enabled(&self) -> bool {
        self.gain_interval[0] > 0.0
    }
}

/// Fits the combination on the validation candidates with the kept weights' logits, and
/// decides the verdict: each validation query is scored by a combination fitted on the other
/// half (the final one saw every query), and the gain over the hybrid must hold across a paired
/// bootstrap, not just on average: on a few hundred queries a small mean gain is often noise.
pub(super) fn fit_combination(
    validation: &[ValidationQuery],
    logits: &[Vec<f32>],
    hybrid: &[f64],
    seed: u64,
) -> Verdict {
    let per_query: Vec<Vec<Features>> = validation
        .iter()
        .zip(logits)
        .map(|(query, logits)| {
            query.candidates.iter().zip(logits).map(|(c, &l)| Features { rerank: l, ..c.features }).collect()
        })
        .collect();
    let combination = Combination::fit(&labelled(validation.iter().zip(&per_query)), 1e-3);
    let combined_ndcg = mean(validation.iter().zip(&per_query).map(|(query, features)| {
        let scores: Vec<f64> = features.iter().map(|f| combination.apply(f).0).collect();
        ndcg_of(query, &scores)
    }));
    let cross_fitted = cross_fitted_ndcg(validation, &per_query);
    let gain: Vec<f64> = cross_fitted.iter().zip(hybrid).map(|(c, h)| c - h).collect();
    Verdict {
        combination,
        combined_ndcg,
        cross_fitted_ndcg: mean(cross_fitted.iter().copied()),
        gain_interval: bootstrap_interval(&gain, seed),
    }
}

#[cfg(test)]
mod tests {
    use hyrank_engine::request::Candidate;

    use super::*;

    #[test]
    fn ndcg_follows_the_scores_and_keeps_retrieval_order_on_ties() {
        let candidate = |id: &str| Candidate {
            id: id.to_string(),
            content: String::new(),
            fused_score: 0.0,
            features: Features::default(),
        };
        let query = ValidationQuery {
            judged: [("b".to_string(), 1)].into_iter().collect(),
            candidates: vec![candidate("a"), candidate("b")],
            frozen: Vec::new(),
        };
        assert!((ndcg_of(&query, &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((ndcg_of(&query, &[0.0, 0.0]) - 1.0 / 3f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_mean_and_needs_a_consistent_gain() {
        let steady: Vec<f64> = (0..200).map(|i| 0.01 + 0.001 * (i % 5) as f64).collect();
        let [low, high] = bootstrap_interval(&steady, 1);
        assert!(low > 0.0 && low <= 0.012 && high >= 0.012 && high < 0.015, "[{low}, {high}]");
        // The same mean gain carried by a handful of queries among many losses is not trusted.
        let noisy: Vec<f64> = (0..200).map(|i| if i % 10 == 0 { 0.5 } else { -0.0433 }).collect();
        let mean = noisy.iter().sum::<f64>() / 200.0;
        assert!(mean > 0.0);
        let [low, high] = bootstrap_interval(&noisy, 1);
        assert!(low < 0.0 && high > mean, "[{low}, {high}]");
    }
}
