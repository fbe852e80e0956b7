//! Fusing ranked lists from several retrievers into one.
//!
//! Both methods are pure functions of their input lists. Ties are broken by item index so that
//! results (and golden tests) are deterministic.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::explain::{RetrieverKind, RetrieverScore};

/// One retriever's candidates, best first.
#[derive(Debug, Clone)]
pub struct RankedList {
    /// Who produced it.
    pub retriever: RetrieverKind,
    /// `(item index, raw score)`, best first.
    pub hits: Vec<(u32, f32)>,
    /// Items this retriever cannot score at all (`abstaining[item]`), as opposed to scoring
    /// low: CF has no opinion on an item nobody interacted with.
    pub abstaining: Option<Arc<Vec<bool>>>,
}

impl RankedList {
    /// A list with an opinion on every item.
    pub fn new(retriever: RetrieverKind, hits: Vec<(u32, f32)>) -> Self {
        RankedList { retriever, hits, abstaining: None }
    }

    fn abstains_on(&self, item: u32) -> bool {
        self.abstaining.as_ref().is_some_and(|a| a.get(item as usize).copied().unwrap_or(false))
    }
}

/// A list's lowest and highest raw score, for min-max normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    lo: f32,
    hi: f32,
}

impl ScoreRange {
    /// The range of `list`'s scores.
    pub fn of(list: &RankedList) -> Self {
        let (lo, hi) =
            list.hits.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &(_, s)| (lo.min(s), hi.max(s)));
        ScoreRange { lo, hi }
    }

    /// `raw` scaled to 0..1 within the range; 1 when every score in the list is equal.
    pub fn normalize(&self, raw: f32) -> f64 {
        let span = f64::from(self.hi) - f64::from(self.lo);
        if span > 0.0 {
            (f64::from(raw) - f64::from(self.lo)) / span
        } else {
            1.0
        }
    }
}

/// How to fuse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fusion {
    /// Reciprocal rank fusion (Cormack et al. 2009).
    Rrf {
        /// The rank constant; 60 in the original paper.
        #[serde(default = "default_rrf_k")]
        k: f64,
    },
    /// Convex combination of min-max normalised scores.
    Linear,
}

fn default_rrf_k() -> f64 {
    60.0
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
        }
    }
}

/// A fused candidate with what each list contributed.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedHit {
    /// Item index.
    pub item: u32,
    /// Sum of contributions.
    pub score: f64,
    /// One entry per list that held the item, in list order.
    pub parts: Vec<RetrieverScore>,
    /// Retrievers that abstained on the item; their weight went to the others.
    pub abstained: Vec<RetrieverKind>,
}

/// Fuses `lists` with one weight per list.
///
/// * RRF: `score(d) = Σ_i w_i / (k + rank_i(d))`, ranks 1-based, summed over the lists that hold d.
/// * Linear: `score(d) = Σ_i w_i · (s_i(d) − min_i) / (max_i − min_i)`; a list whose scores are
///   all equal normalises to 1 for each member; a list that misses d adds nothing.
///
/// When a list abstains on an item, the item is scored by the lists that can judge it, scaled
/// by `Σ_all w / Σ_judging w`, so that an item is not ranked down for a signal it cannot have
/// (a new item has no CF score; it should compete on content alone, not lose CF's share).
/// Each contribution in `parts` already includes that scale, so they still sum to the score.
///
/// Returns every candidate, best first, ties broken by ascending item index.
pub fn fuse(lists: &[RankedList], weights: &[f64], fusion: &Fusion) -> Result<Vec<FusedHit>> {
    if weights.len() != lists.len() {
        return Err(Error::invalid("weights", format!("{} weights for {} retrievers", weights.len(), lists.len())));
    }
    if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
        return Err(Error::invalid("weights", format!("{w} is not a finite, non-negative weight")));
    }
    if let Fusion::Rrf { k } = fusion {
        if !k.is_finite() || *k < 0.0 {
            return Err(Error::invalid("fusion.k", format!("{k} is not a finite, non-negative constant")));
        }
    }
    let mut fused: HashMap<u32, FusedHit> = HashMap::new();
    for (list, &weight) in lists.iter().zip(weights) {
        let range = ScoreRange::of(list);
        for (position, &(item, raw_score)) in list.hits.iter().enumerate() {
            let rank = position + 1;
            let contribution = match fusion {
                Fusion::Rrf { k } => weight / (k + rank as f64),
                Fusion::Linear => weight * range.normalize(raw_score),
            };
            if list.abstains_on(item) {
                continue;
            }
            let entry = fused.entry(item).or_insert_with(|| FusedHit {
                item,
                score: 0.0,
                parts: Vec::new(),
                abstained: Vec::new(),
            });
            // A retriever that lists an item twice is a bug upstream; keep its best rank only.
            if entry.parts.iter().any(|p| p.retriever == list.retriever) {
                continue;
            }
            entry.score += contribution;
            entry.parts.push(RetrieverScore { retriever: list.retriever, raw_score, rank, contribution });
        }
    }
    let total_weight: f64 = weights.iter().sum();
    let mut hits: Vec<FusedHit> = fused.into_values().collect();
    for hit in &mut hits {
        hit.abstained = lists.iter().filter(|l| l.abstains_on(hit.item)).map(|l| l.retriever).collect();
        if hit.abstained.is_empty() {
            continue;
        }
        let judging: f64 = lists.iter().zip(weights).filter(|(l, _)| !l.abstains_on(hit.item)).map(|(_, w)| w).sum();
        if judging > 0.0 {
            let scale = total_weight / judging;
            hit.score = 0.0;
            for part in &mut hit.parts {
                part.contribution *= scale;
                hit.score += part.contribution;
            }
        }
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(retriever: RetrieverKind, hits: &[(u32, f32)]) -> RankedList {
        RankedList::new(retriever, hits.to_vec())
    }

    #[test]
    fn rrf_matches_the_formula() {
        let lists =
            [list(RetrieverKind::Bm25, &[(1, 9.0), (2, 5.0)]), list(RetrieverKind::Dense, &[(2, 0.9), (3, 0.8)])];
        let hits = fuse(&lists, &[1.0, 2.0], &Fusion::Rrf { k: 60.0 }).unwrap();
        let score = |item| hits.iter().find(|h| h.item == item).unwrap().score;
        assert!((score(1) - 1.0 / 61.0).abs() < 1e-12);
        assert!((score(2) - (1.0 / 62.0 + 2.0 / 61.0)).abs() < 1e-12);
        assert!((score(3) - 2.0 / 62.0).abs() < 1e-12);
        assert_eq!(hits[0].item, 2);
    }

    #[test]
    fn linear_normalises_each_list() {
        let lists = [
            list(RetrieverKind::Bm25, &[(1, 10.0), (2, 5.0), (3, 0.0)]),
            list(RetrieverKind::Dense, &[(3, 0.5), (1, 0.25)]),
        ];
        let hits = fuse(&lists, &[0.5, 0.5], &Fusion::Linear).unwrap();
        let score = |item| hits.iter().find(|h| h.item == item).unwrap().score;
        assert!((score(1) - 0.5).abs() < 1e-9);
        assert!((score(2) - 0.25).abs() < 1e-9);
        assert!((score(3) - 0.5).abs() < 1e-9);
        // 1 and 3 tie at 0.5: the lower index wins.
        assert_eq!(hits.iter().map(|h| h.item).collect::<Vec<_>>(), vec![1, 3, 2]);
    }

    #[test]
    fn an_abstaining_retriever_hands_its_weight_to_the_others() {
        // Item 9 is cold: CF cannot score it. At content rank 1 it ties with item 1, which is
        // first in both lists, instead of losing CF's half of the score.
        let cold = Arc::new((0..10).map(|i| i == 9).collect::<Vec<bool>>());
        let lists = [
            RankedList {
                retriever: RetrieverKind::Cf,
                hits: vec![(1, 0.9), (2, 0.5), (9, 0.0)],
                abstaining: Some(cold),
            },
            list(RetrieverKind::Dense, &[(9, 0.8), (1, 0.7)]),
        ];
        let hits = fuse(&lists, &[1.0, 1.0], &Fusion::Rrf { k: 60.0 }).unwrap();
        let cold_hit = hits.iter().find(|h| h.item == 9).unwrap();
        assert_eq!(cold_hit.abstained, vec![RetrieverKind::Cf]);
        assert_eq!(cold_hit.parts.len(), 1, "an abstaining list contributes nothing, even if it lists the item");
        assert!((cold_hit.score - 2.0 / 61.0).abs() < 1e-12);
        assert!((cold_hit.parts[0].contribution - cold_hit.score).abs() < 1e-12);
        let warm = hits.iter().find(|h| h.item == 1).unwrap();
        assert!((warm.score - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-12);
        assert!(warm.abstained.is_empty());
    }

    #[test]
    fn wrong_number_of_weights_is_refused() {
        let lists = [list(RetrieverKind::Bm25, &[(1, 1.0)])];
        assert!(fuse(&lists, &[1.0, 1.0], &Fusion::default()).is_err());
        assert!(fuse(&lists, &[-1.0], &Fusion::default()).is_err());
        assert!(fuse(&lists, &[f64::NAN], &Fusion::Linear).is_err());
    }

    /// The naive reference: score every item by brute force over the lists.
    fn reference_rrf(lists: &[Vec<u32>], k: f64) -> Vec<(u32, f64)> {
        let mut items: Vec<u32> = lists.iter().flatten().copied().collect();
        items.sort();
        items.dedup();
        let mut scored: Vec<(u32, f64)> = items
            .into_iter()
            .map(|item| {
                let score = lists
                    .iter()
                    .filter_map(|l| l.iter().position(|&x| x == item))
                    .map(|p| 1.0 / (k + p as f64 + 1.0))
                    .sum();
                (item, score)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
    }

    proptest! {
        #[test]
        fn rrf_agrees_with_a_brute_force_reference(
            raw in proptest::collection::vec(proptest::collection::btree_set(0u32..40, 0..15), 1..4),
            k in 0.0f64..100.0,
        ) {
            let kinds = [RetrieverKind::Bm25, RetrieverKind::Dense, RetrieverKind::Cf];
            let ordered: Vec<Vec<u32>> = raw.iter().map(|s| s.iter().rev().copied().collect()).collect();
            let lists: Vec<RankedList> = ordered.iter().zip(kinds).map(|(items, kind)| RankedList::new(
                kind,
                items.iter().enumerate().map(|(i, &item)| (item, 100.0 - i as f32)).collect(),
            )).collect();
            let fused = fuse(&lists, &vec![1.0; lists.len()], &Fusion::Rrf { k }).unwrap();
            let expected = reference_rrf(&ordered, k);
            prop_assert_eq!(fused.len(), expected.len());
            for (hit, (item, score)) in fused.iter().zip(&expected) {
                prop_assert_eq!(hit.item, *item);
                prop_assert!((hit.score - score).abs() < 1e-12);
                let parts: f64 = hit.parts.iter().map(|p| p.contribution).sum();
                prop_assert!((parts - hit.score).abs() < 1e-12);
            }
        }

        #[test]
        fn linear_scores_stay_within_the_weight_sum(
            scores in proptest::collection::vec(proptest::collection::vec(-50.0f32..50.0, 1..10), 1..4),
        ) {
            let kinds = [RetrieverKind::Bm25, RetrieverKind::Dense, RetrieverKind::Cf];
            let lists: Vec<RankedList> = scores.iter().zip(kinds).map(|(s, kind)| {
                let mut hits: Vec<(u32, f32)> = s.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
                hits.sort_by(|a, b| b.1.total_cmp(&a.1));
                RankedList::new(kind, hits)
            }).collect();
            let weights = vec![0.5; lists.len()];
            let fused = fuse(&lists, &weights, &Fusion::Linear).unwrap();
            for hit in &fused {
                prop_assert!(hit.score >= -1e-12 && hit.score <= 0.5 * lists.len() as f64 + 1e-12);
            }
            for pair in fused.windows(2) {
                prop_assert!(pair[0].score >= pair[1].score);
            }
        }
    }
}
