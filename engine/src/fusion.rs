//! Fusing ranked lists from several retrievers into one.
//!
//! Every method is a pure function of its input lists. Ties are broken by evidence (how many
//! lists hold the item, its best rank), then by item index, so that results (and golden tests)
//! are deterministic and catalog order decides only between items with the same evidence.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::explain::{RetrieverKind, RetrieverScore};

mod method;

pub use method::{Fusion, FusionMethod};

/// One retriever's candidates, best first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RankedList {
    /// Who produced it.
    pub retriever: RetrieverKind,
    /// `(item index, raw score)`, best first.
    pub hits: Vec<(u32, f32)>,
    /// Items this retriever cannot score at all (`abstaining[item]`), as opposed to scoring
    /// low: CF has no opinion on an item nobody interacted with.
    pub abstaining: Option<Arc<Vec<bool>>>,
    /// The raw score of an item unrelated to the query, where the retriever can say it: BM25's
    /// 0 (no query term in the item), the dense retriever's mean score over the items a
    /// request can reach ([`crate::retrieve::Retriever::Dense`]'s `mean`), ALS's mean score
    /// over the warm items, EASE's 0 (no seed weights the item). `linear_floor` fusion
    /// measures the list from it; the other methods ignore it.
    pub floor: Option<f32>,
}

impl RankedList {
    /// A list with an opinion on every item.
    pub fn new(retriever: RetrieverKind, hits: Vec<(u32, f32)>) -> Self {
        RankedList { retriever, hits, abstaining: None, floor: None }
    }

    /// The list with its retriever's floor ([`RankedList::floor`]).
    pub fn with_floor(self, floor: f32) -> Self {
        RankedList { floor: Some(floor), ..self }
    }

    /// Past the mask's end means an item the list's model never saw (written live since the
    /// build): abstained on, as a cold item is.
    fn abstains_on(&self, item: u32) -> bool {
        self.abstaining.as_ref().is_some_and(|a| a.get(item as usize).copied().unwrap_or(true))
    }
}

/// Keeps the `n` best of `hits` in place, best first, ties by item index: the order of every
/// retriever's list (select, then sort only the kept ones). The memory of the ones dropped is
/// given back: a list kept for later (the content weight's validation keeps one per user)
/// held the capacity of every item scored, 1.5 GB for 5,000 users of a 38k-item catalog.
pub fn keep_best(hits: &mut Vec<(u32, f32)>, n: usize) {
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if n < hits.len() {
        hits.select_nth_unstable_by(n, order);
        hits.truncate(n);
        hits.shrink_to_fit();
    }
    hits.sort_unstable_by(order);
}

/// How a list's raw scores map to a common scale: a linear map that sends `lo` to 0 and `hi`
/// to 1. Min-max takes the list's lowest and highest score; DBSF (distribution-based score
/// fusion, Qdrant 1.11) takes the mean ∓ 3 sample standard deviations, so the scale does not
/// hinge on the two extreme members and the list's last member still counts for something.
///
/// A list with no spread (one member, or every score equal) cannot say which member is better,
/// only that each was retrieved: each member gets 1, what the best of a list gets under
/// min-max. (Qdrant gives 0.5 there; 1 keeps a single exact match, such as the only item that
/// contains a rare word, from ranking under the top of a list that merely ranks everything.)
///
/// From a floor ([`ScoreRange::from_floor`]) the low end is the score of an unrelated item, so
/// the scale says how far above "unrelated" each member is: a member at or below the floor gets
/// 0, and so does every member of a list whose best is no better than the floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    lo: f64,
    hi: f64,
    floored: bool,
}

impl ScoreRange {
    /// The min-max range of `list`'s scores.
    pub fn of(list: &RankedList) -> Self {
        let (lo, hi) = list
            .hits
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, s)| (lo.min(f64::from(s)), hi.max(f64::from(s))));
        ScoreRange { lo, hi, floored: false }
    }

    /// From `list`'s floor to its best score; min-max ([`ScoreRange::of`]) for a list whose
    /// retriever gives no floor.
    pub fn from_floor(list: &RankedList) -> Self {
        match list.floor {
            Some(floor) => ScoreRange { lo: f64::from(floor), hi: ScoreRange::of(list).hi, floored: true },
            None => ScoreRange::of(list),
        }
    }

    /// DBSF's range of `list`'s scores: mean ∓ 3 sample standard deviations.
    pub fn distribution_of(list: &RankedList) -> Self {
        let n = list.hits.len();
        if n < 2 {
            return ScoreRange::of(list);
        }
        let mean = list.hits.iter().map(|&(_, s)| f64::from(s)).sum::<f64>() / n as f64;
        let variance = list.hits.iter().map(|&(_, s)| (f64::from(s) - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let spread = 3.0 * variance.sqrt();
        ScoreRange { lo: mean - spread, hi: mean + spread, floored: false }
    }

    /// The range `fusion` normalises `list` with (min-max for RRF, which ignores it).
    pub fn for_fusion(list: &RankedList, fusion: &Fusion) -> Self {
        match fusion {
            Fusion::Dbsf => ScoreRange::distribution_of(list),
            Fusion::LinearFloor => ScoreRange::from_floor(list),
            Fusion::Rrf { .. } | Fusion::Linear => ScoreRange::of(list),
        }
    }

    /// `raw` mapped so that the range's low end is 0 and its high end 1 (under DBSF a member
    /// past 3 standard deviations lands outside 0..1); 1 when the range has no width. From a
    /// floor: clamped at 0 below it, and 0 when the best is not above the floor.
    pub fn normalize(&self, raw: f32) -> f64 {
        let span = self.hi - self.lo;
        let spread = span > 0.0 && span.is_finite();
        match (self.floored, spread) {
            (false, true) => (f64::from(raw) - self.lo) / span,
            (false, false) => 1.0,
            (true, true) => ((f64::from(raw) - self.lo) / span).max(0.0),
            (true, false) => 0.0,
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

/// The largest weight a list (or the rerank score) may have. Weights are relative, so a
/// ratio of 10⁶ already lets one list decide; the bound keeps every fused score finite, since
/// a normalised contribution is at most about √n (DBSF over n candidates) and a few weighted
/// terms of that size are far from f64's range, where weights near 1e308 overflowed to ∞.
pub const MAX_WEIGHT: f64 = 1.0e6;

/// Checks one weight against [`MAX_WEIGHT`] (fusion's, and the rerank score's beside them).
///
/// # Errors
/// [`Error::InvalidArgument`] on `field` for a weight that is negative, not finite or above
/// the bound.
pub fn check_weight(field: &str, weight: f64) -> Result<()> {
    if (0.0..=MAX_WEIGHT).contains(&weight) {
        return Ok(());
    }
    Err(Error::invalid(
        field,
        format!(
            "{} is not a weight from 0 to {MAX_WEIGHT:e} (weights are relative: at the bound one already decides)",
            shown(weight)
        ),
    ))
}

impl Fusion {
    /// Checks the method's constant: RRF's `k` from 0 to [`MAX_RRF_K`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] on `fusion.k` negative, not finite or above the bound.
    pub fn check(&self) -> Result<()> {
        match self {
            Fusion::Rrf { k } if !(0.0..=MAX_RRF_K).contains(k) => Err(Error::invalid(
                "fusion.k",
                format!("{} is not an RRF constant from 0 to {MAX_RRF_K:e} (60 is the usual one)", shown(*k)),
            )),
            _ => Ok(()),
        }
    }
}

/// The largest RRF constant a request may give. Past it every contribution is about
/// `w / k` whatever the rank, so the constant only erases the lists' order; near f64's
/// range (`1e308`) the contributions were subnormal and every hit tied.
pub const MAX_RRF_K: f64 = 1.0e6;

/// `x` as a person wrote it: plain for everyday sizes (`-1`, `2.5`), in exponent form for
/// very large or small ones (`1e308`), where plain digits would run to hundreds.
pub fn shown(x: f64) -> String {
    if x == 0.0 || (1e-4..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// Fuses `lists` with one weight per list.
///
/// * RRF: `score(d) = Σ_i w_i / (k + rank_i(d))`, ranks 1-based (equal raw scores share the
///   best rank of their group), summed over the lists that hold d.
/// * Linear: `score(d) = Σ_i w_i · (s_i(d) − min_i) / (max_i − min_i)`; a list whose scores are
///   all equal normalises to 1 for each member; a list that misses d adds nothing.
/// * DBSF: as linear, with `μ_i ∓ 3σ_i` in place of `min_i`, `max_i` ([`ScoreRange`]).
/// * Linear from floors: as linear, with list i's floor in place of `min_i` where it has one,
///   and `max(0, ·)` ([`Fusion::LinearFloor`]).
///
/// When a list abstains on an item, the item is scored by the lists that can judge it, scaled
/// by `Σ_all w / Σ_judging w`, so that an item is not ranked down for a signal it cannot have
/// (a new item has no CF score; it should compete on content alone, not lose CF's share).
/// Each contribution in `parts` already includes that scale, so they still sum to the score.
///
/// Returns every candidate, best first. Equal scores are ordered by evidence, never by catalog
/// order while the evidence differs: first the item more lists hold, then the item with the
/// better (smaller) best rank in any list, and only then ascending item index.
///
/// # Errors
/// A weight count that differs from the list count; a weight that is negative, not finite or
/// above [`MAX_WEIGHT`]; an RRF k that is negative, not finite or above [`MAX_RRF_K`].
pub fn fuse(lists: &[RankedList], weights: &[f64], fusion: &Fusion) -> Result<Vec<FusedHit>> {
    if weights.len() != lists.len() {
        return Err(Error::invalid("weights", format!("{} weights for {} retrievers", weights.len(), lists.len())));
    }
    for &weight in weights {
        check_weight("weights", weight)?;
    }
    fusion.check()?;
    let mut fused: HashMap<u32, FusedHit> = HashMap::new();
    for (list, &weight) in lists.iter().zip(weights) {
        let range = ScoreRange::for_fusion(list, fusion);
        // Competition ranking ("1224"): items with equal raw scores share the best rank of
        // their group, so RRF's credit and the tie rule below never depend on the order in
        // which a retriever happened to list equal scores (catalog order).
        let mut rank = 0;
        let mut previous = None;
        for (position, &(item, raw_score)) in list.hits.iter().enumerate() {
            if previous != Some(raw_score) {
                rank = position + 1;
                previous = Some(raw_score);
            }
            let contribution = match fusion {
                Fusion::Rrf { k } => weight / (k + rank as f64),
                Fusion::Linear | Fusion::LinearFloor | Fusion::Dbsf => weight * range.normalize(raw_score),
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
    hits.sort_by(|a, b| {
        let best_rank = |h: &FusedHit| h.parts.iter().map(|p| p.rank).min().unwrap_or(usize::MAX);
        b.score
            .total_cmp(&a.score)
            .then(b.parts.len().cmp(&a.parts.len()))
            .then(best_rank(a).cmp(&best_rank(b)))
            .then(a.item.cmp(&b.item))
    });
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
    fn keep_best_orders_the_kept_and_frees_the_rest() {
        let mut hits: Vec<(u32, f32)> = (0..10_000u32).map(|i| (i, (i % 7) as f32)).collect();
        keep_best(&mut hits, 3);
        assert_eq!(hits, [(6, 6.0), (13, 6.0), (20, 6.0)], "best first, ties by item");
        assert!(hits.capacity() < 100, "capacity {} kept", hits.capacity());
        let mut short = vec![(1, 0.5), (0, 0.5)];
        keep_best(&mut short, 5);
        assert_eq!(short, [(0, 0.5), (1, 0.5)]);
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
                floor: None,
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
        // An item past the mask (written live since the build) is abstained on too.
        let mut lists = lists;
        lists[1] = list(RetrieverKind::Dense, &[(12, 0.8), (1, 0.7)]);
        let hits = fuse(&lists, &[1.0, 1.0], &Fusion::Rrf { k: 60.0 }).unwrap();
        let live = hits.iter().find(|h| h.item == 12).unwrap();
        assert_eq!(live.abstained, vec![RetrieverKind::Cf]);
        assert!((live.score - 2.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn a_single_exact_match_is_not_tied_with_the_top_of_another_list() {
        // Issue 15: only item 7 contains the rare query word, past the embedding window, so
        // BM25 returns it alone and dense ranks it last; item 2 (unrelated) tops dense. Min-max
        // gave both 1.0 and catalog order put 2 first. Every method must put 7 first.
        let lists =
            [list(RetrieverKind::Bm25, &[(7, 12.0)]), list(RetrieverKind::Dense, &[(2, 0.61), (5, 0.5), (7, 0.3)])];
        let floored = [lists[0].clone().with_floor(0.0), lists[1].clone().with_floor(0.2)];
        for fusion in [Fusion::Linear, Fusion::LinearFloor, Fusion::Dbsf, Fusion::Rrf { k: 60.0 }] {
            for lists in [&lists, &floored] {
                let hits = fuse(lists, &[1.0, 1.0], &fusion).unwrap();
                assert_eq!(hits[0].item, 7, "{fusion:?}: {hits:?}");
            }
        }
        // Not in the dense list at all, the evidence is equal (one list, rank 1 each) and the
        // item index decides, as documented.
        let alone = [list(RetrieverKind::Bm25, &[(7, 12.0)]), list(RetrieverKind::Dense, &[(2, 0.61), (5, 0.5)])];
        let hits = fuse(&alone, &[1.0, 1.0], &Fusion::Linear).unwrap();
        assert_eq!(hits.iter().map(|h| h.item).collect::<Vec<_>>(), [2, 7, 5]);
    }

    #[test]
    fn linear_floor_measures_each_list_from_its_floor() {
        let lists = [
            list(RetrieverKind::Bm25, &[(1, 10.0), (2, 5.0)]).with_floor(0.0),
            list(RetrieverKind::Dense, &[(2, 0.5), (3, 0.3), (4, 0.05)]).with_floor(0.1),
        ];
        let hits = fuse(&lists, &[0.5, 0.5], &Fusion::LinearFloor).unwrap();
        let score = |item| hits.iter().find(|h| h.item == item).unwrap().score;
        assert!((score(1) - 0.5).abs() < 1e-9);
        // BM25 5 of 10 from 0; dense at its best.
        assert!((score(2) - (0.25 + 0.5)).abs() < 1e-9);
        // Dense (0.3 − 0.1) / (0.5 − 0.1); min-max would have given (0.3 − 0.05) / 0.45.
        assert!((score(3) - 0.25).abs() < 1e-6);
        // Below the floor counts as the floor: 0, still listed (its rank is evidence).
        assert_eq!((score(4), hits.iter().find(|h| h.item == 4).unwrap().parts.len()), (0.0, 1));
        assert_eq!(hits.iter().map(|h| h.item).collect::<Vec<_>>(), [2, 1, 3, 4]);
        // A list whose best is no better than an unrelated item adds nothing; a single member
        // above its floor gets 1; a list without a floor is min-maxed.
        let nothing = [list(RetrieverKind::Dense, &[(1, 0.1), (2, 0.05)]).with_floor(0.1)];
        assert!(fuse(&nothing, &[1.0], &Fusion::LinearFloor).unwrap().iter().all(|h| h.score == 0.0));
        let single = [list(RetrieverKind::Bm25, &[(7, 3.0)]).with_floor(0.0)];
        assert_eq!(fuse(&single, &[1.0], &Fusion::LinearFloor).unwrap()[0].score, 1.0);
        let plain = [list(RetrieverKind::Cf, &[(1, 4.0), (2, 2.0), (3, 0.0)])];
        let (a, b) =
            (fuse(&plain, &[1.0], &Fusion::LinearFloor).unwrap(), fuse(&plain, &[1.0], &Fusion::Linear).unwrap());
        assert_eq!(a, b);
        // The floor is read by linear_floor only: plain linear measures dense from its lowest
        // member, 0.05, and BM25 from 5.
        let linear = fuse(&lists, &[0.5, 0.5], &Fusion::Linear).unwrap();
        let linear_score = |item| linear.iter().find(|h| h.item == item).unwrap().score;
        assert!((linear_score(3) - 0.5 * 0.25 / 0.45).abs() < 1e-6, "{linear:?}");
        assert!((linear_score(2) - 0.5).abs() < 1e-9, "{linear:?}");
    }

    #[test]
    fn dbsf_maps_three_standard_deviations_around_the_mean() {
        let lists = [list(RetrieverKind::Dense, &[(1, 4.0), (2, 2.0), (3, 0.0)])];
        let hits = fuse(&lists, &[1.0], &Fusion::Dbsf).unwrap();
        // mean 2, sample σ 2: the range is −4..8.
        let expected = [(1, 8.0 / 12.0), (2, 6.0 / 12.0), (3, 4.0 / 12.0)];
        for (hit, (item, score)) in hits.iter().zip(expected) {
            assert_eq!(hit.item, item);
            assert!((hit.score - score).abs() < 1e-12, "{hit:?}");
        }
        let flat = [list(RetrieverKind::Bm25, &[(4, 3.0), (5, 3.0)])];
        for fusion in [Fusion::Linear, Fusion::LinearFloor, Fusion::Dbsf] {
            assert!(fuse(&flat, &[0.5], &fusion).unwrap().iter().all(|h| h.score == 0.5), "{fusion:?}");
        }
        // With a floor, a flat list still has a spread: from the floor to the shared score.
        let floored = [list(RetrieverKind::Bm25, &[(4, 3.0), (5, 3.0)]).with_floor(0.0)];
        assert!(fuse(&floored, &[0.5], &Fusion::LinearFloor).unwrap().iter().all(|h| h.score == 0.5));
        let at_floor = [list(RetrieverKind::Bm25, &[(4, 3.0), (5, 3.0)]).with_floor(3.0)];
        assert!(fuse(&at_floor, &[0.5], &Fusion::LinearFloor).unwrap().iter().all(|h| h.score == 0.0));
    }

    #[test]
    fn wrong_number_of_weights_is_refused() {
        let lists = [list(RetrieverKind::Bm25, &[(1, 1.0)])];
        assert!(fuse(&lists, &[1.0, 1.0], &Fusion::default()).is_err());
        assert!(fuse(&lists, &[-1.0], &Fusion::default()).is_err());
        assert!(fuse(&lists, &[f64::NAN], &Fusion::Linear).is_err());
        let two = [list(RetrieverKind::Bm25, &[(1, 1.0)]), list(RetrieverKind::Dense, &[(1, 1.0)])];
        let error = fuse(&two, &[f64::MAX, 1.0], &Fusion::Linear).unwrap_err();
        assert!(error.to_string().contains("1.7976931348623157e308 is not a weight from 0 to 1e6"), "{error}");
        let fused = fuse(&two, &[MAX_WEIGHT, MAX_WEIGHT], &Fusion::Dbsf).unwrap();
        assert!(fused.iter().all(|hit| hit.score.is_finite()));
        // The RRF constant has a bound too, and numbers read as they were written.
        assert!(fuse(&two, &[1.0, 1.0], &Fusion::Rrf { k: MAX_RRF_K }).is_ok());
        let error = fuse(&two, &[1.0, 1.0], &Fusion::Rrf { k: 1e308 }).unwrap_err().to_string();
        assert!(error.contains("1e308 is not an RRF constant"), "{error}");
        assert_eq!(
            [shown(-1.0), shown(2.5), shown(0.0), shown(1e308), shown(1e-9)],
            ["-1", "2.5", "0", "1e308", "1e-9"]
        );
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
            floors in proptest::collection::vec(proptest::option::of(prop_oneof![
                Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY), -60.0f32..60.0,
            ]), 3),
            from_floor in any::<bool>(),
        ) {
            let kinds = [RetrieverKind::Bm25, RetrieverKind::Dense, RetrieverKind::Cf];
            let lists: Vec<RankedList> = scores.iter().zip(kinds).map(|(s, kind)| {
                let mut hits: Vec<(u32, f32)> = s.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
                hits.sort_by(|a, b| b.1.total_cmp(&a.1));
                RankedList { floor: floors[kind as usize], ..RankedList::new(kind, hits) }
            }).collect();
            let weights = vec![0.5; lists.len()];
            let fusion = if from_floor { Fusion::LinearFloor } else { Fusion::Linear };
            let fused = fuse(&lists, &weights, &fusion).unwrap();
            for hit in &fused {
                prop_assert!(hit.score >= -1e-12 && hit.score <= 0.5 * lists.len() as f64 + 1e-12);
            }
            for pair in fused.windows(2) {
                prop_assert!(pair[0].score >= pair[1].score);
            }
        }

        /// Any lists an API request can produce (single members, equal scores, abstaining CF,
        /// zero and extreme weights), fused by any method: every score finite, parts summing
        /// to it, equal scores ordered by evidence, and relabelling the items changes the
        /// order only among items whose score and evidence are all equal.
        #[test]
        fn every_method_is_finite_ordered_by_evidence_and_independent_of_catalog_order(
            raw in proptest::collection::vec(
                proptest::collection::vec((0u32..30, prop_oneof![Just(1.0f32), -1e6f32..1e6]), 0..12), 1..4),
            weights in proptest::collection::vec(prop_oneof![Just(0.0f64), Just(MAX_WEIGHT), Just(1e300), 0.0f64..10.0], 3),
            cold in proptest::collection::vec(any::<bool>(), 30),
            floors in proptest::collection::vec(proptest::option::of(prop_oneof![
                Just(0.0f32), Just(1.0f32), Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY), -1e6f32..1e6,
            ]), 3),
            method in 0usize..4,
        ) {
            let fusion = [Fusion::Linear, Fusion::LinearFloor, Fusion::Dbsf, Fusion::Rrf { k: 60.0 }][method].clone();
            let kinds = [RetrieverKind::Bm25, RetrieverKind::Dense, RetrieverKind::Cf];
            let build = |relabel: &dyn Fn(u32) -> u32| -> Vec<RankedList> {
                raw.iter().zip(kinds).map(|(hits, kind)| {
                    let mut seen = std::collections::HashSet::new();
                    let mut hits: Vec<(u32, f32)> =
                        hits.iter().filter(|h| seen.insert(h.0)).map(|&(i, s)| (relabel(i), s)).collect();
                    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    let abstaining = (kind == RetrieverKind::Cf).then(|| {
                        let mut mask = vec![false; 1000];
                        for (i, &c) in cold.iter().enumerate() {
                            mask[relabel(i as u32) as usize] = c;
                        }
                        Arc::new(mask)
                    });
                    RankedList { retriever: kind, hits, abstaining, floor: floors[kind as usize] }
                }).collect()
            };
            let lists = build(&|i| i);
            let weights = &weights[..lists.len()];
            let Ok(fused) = fuse(&lists, weights, &fusion) else {
                // Refused only for a weight above the bound.
                prop_assert!(weights.iter().any(|&w| w > MAX_WEIGHT));
                return Ok(());
            };
            prop_assert!(weights.iter().all(|&w| w <= MAX_WEIGHT));
            let key = |h: &FusedHit| (h.score, h.parts.len(), h.parts.iter().map(|p| p.rank).min().unwrap_or(usize::MAX));
            for hit in &fused {
                prop_assert!(hit.score.is_finite(), "{hit:?}");
                let parts: f64 = hit.parts.iter().map(|p| p.contribution).sum();
                prop_assert!((parts - hit.score).abs() <= 1e-9 * hit.score.abs().max(1.0), "{hit:?}");
            }
            for pair in fused.windows(2) {
                let (a, b) = (key(&pair[0]), key(&pair[1]));
                prop_assert!(a.0 > b.0 || (a.0 == b.0 && (a.1 > b.1 || (a.1 == b.1 && (a.2 < b.2 || (a.2 == b.2 && pair[0].item < pair[1].item))))));
            }
            // Reverse the catalog order of the items and fuse again.
            let relabelled = fuse(&build(&|i| 999 - i), weights, &fusion).unwrap();
            prop_assert_eq!(relabelled.len(), fused.len());
            for (position, (a, b)) in fused.iter().zip(&relabelled).enumerate() {
                prop_assert_eq!(key(a), key(b));
                let shared = fused.iter().filter(|h| key(h) == key(a)).count();
                if shared == 1 {
                    prop_assert_eq!(999 - a.item, b.item, "position {}", position);
                }
            }
        }
    }
}
