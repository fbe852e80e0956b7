//! Ranking metrics as trec_eval (and so pytrec_eval) defines them.
//!
//! Judgments are graded; a document is relevant when its grade is ≥ 1. Gains are the grades
//! themselves (trec_eval's `ndcg_cut`, not the `2^g − 1` variant), the ideal ordering is built
//! from the judgments alone, and a retrieved document without a judgment has grade 0.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Graded judgments of one query: document id → grade.
pub type Judgments = HashMap<String, i32>;

/// `nDCG@k` with linear gains and log2(rank + 1) discounts.
pub fn ndcg_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, doc)| f64::from(judged.get(doc).copied().unwrap_or(0).max(0)) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, &g)| f64::from(g) / ((i + 2) as f64).log2()).sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

fn relevant_count(judged: &Judgments) -> usize {
    judged.values().filter(|&&g| g >= 1).count()
}

fn is_relevant(judged: &Judgments, doc: &str) -> bool {
    judged.get(doc).is_some_and(|&g| g >= 1)
}

/// Fraction of the relevant documents found in the top `k`.
pub fn recall_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    let relevant = relevant_count(judged);
    if relevant == 0 {
        return 0.0;
    }
    ranked.iter().take(k).filter(|d| is_relevant(judged, d)).count() as f64 / relevant as f64
}

/// Reciprocal rank of the first relevant document within the top `k`, else 0.
pub fn mrr_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    ranked.iter().take(k).position(|d| is_relevant(judged, d)).map_or(0.0, |p| 1.0 / (p + 1) as f64)
}

/// Average precision over the top `k` (trec_eval's `map_cut_k`): the mean, over all relevant
/// documents, of precision at the rank each is found (0 for those not found).
pub fn map_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    let relevant = relevant_count(judged);
    if relevant == 0 {
        return 0.0;
    }
    let mut found = 0usize;
    let mut sum = 0.0;
    for (i, doc) in ranked.iter().take(k).enumerate() {
        if is_relevant(judged, doc) {
            found += 1;
            sum += found as f64 / (i + 1) as f64;
        }
    }
    sum / relevant as f64
}

/// Percentile (nearest rank) of unsorted samples; `p` in [0, 100].
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The 5th and 95th percentiles of the mean of `values` over 2,000 seeded bootstrap resamples
/// (Efron's percentile interval): a 90% interval of a mean, such as a paired gain.
pub fn bootstrap_interval(values: &[f64], seed: u64) -> [f64; 2] {
    if values.is_empty() {
        return [0.0, 0.0];
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0b00_75ad);
    let mut means: Vec<f64> = (0..2000)
        .map(|_| {
            (0..values.len()).map(|_| values[rng.random_range(0..values.len())]).sum::<f64>() / values.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    [means[100], means[1899]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn judged(pairs: &[(&str, i32)]) -> Judgments {
        pairs.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    #[test]
    fn ndcg_by_hand() {
        // Grades: a=3, b=2, c=0 (judged non-relevant), d unjudged, e=1 (not retrieved).
        let j = judged(&[("a", 3), ("b", 2), ("c", 0), ("e", 1)]);
        let ranked = docs(&["d", "a", "c", "b"]);
        let dcg = 3.0 / 3f64.log2() + 2.0 / 5f64.log2();
        let idcg = 3.0 / 2f64.log2() + 2.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((ndcg_at(&ranked, &j, 10) - dcg / idcg).abs() < 1e-12);
        // Cut at 2: only d and a count, and the ideal is cut at 2 too.
        let idcg2 = 3.0 + 2.0 / 3f64.log2();
        assert!((ndcg_at(&ranked, &j, 2) - (3.0 / 3f64.log2()) / idcg2).abs() < 1e-12);
        assert_eq!(ndcg_at(&ranked, &judged(&[("x", 0)]), 10), 0.0);
    }

    #[test]
    fn recall_mrr_map_by_hand() {
        let j = judged(&[("a", 1), ("b", 2), ("c", 1), ("z", 0)]);
        let ranked = docs(&["z", "a", "x", "b"]);
        assert!((recall_at(&ranked, &j, 10) - 2.0 / 3.0).abs() < 1e-12);
        assert!((recall_at(&ranked, &j, 2) - 1.0 / 3.0).abs() < 1e-12);
        assert!((mrr_at(&ranked, &j, 10) - 0.5).abs() < 1e-12);
        assert_eq!(mrr_at(&ranked, &j, 1), 0.0);
        // AP = (1/2 + 2/4) / 3
        assert!((map_at(&ranked, &j, 100) - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        assert!((map_at(&ranked, &j, 2) - 0.5 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 50.0);
        assert_eq!(percentile(&samples, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
    }
}
