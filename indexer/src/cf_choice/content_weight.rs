//! The weight of the content list in a generation's hybrid recommendations, chosen on the
//! validation split `--cf-model auto` chose the CF model on.
//!
//! How much content evidence helps depends on the catalog: a strong item model on dense
//! behaviour wants little of it, a sparse catalog with rich text wants more. So instead of one
//! constant fitted on MovieLens, `auto` scores a small grid of weights the way a request is
//! served: for each validation user, the chosen model's CF list (fitted without the validation
//! items) and the content list (the cosine neighbours of the profile of the user's most recent
//! training items, exact over the catalog) are fused with the API's default fusion and CF
//! weight, training items excluded, and the weight with the best nDCG@10 becomes the
//! generation's default (`cf_selection.content_weight` in the manifest).

use hyrank_engine::cf::{AlsModel, CfModelSettings, Csr};
use hyrank_engine::dense::dot;
use hyrank_engine::explain::RetrieverKind;
use hyrank_engine::fusion::{fuse, RankedList};
use hyrank_engine::generation::ContentWeightCandidate;
use hyrank_engine::request::{defaults, RecommendRequest};
use rayon::prelude::*;

use super::validation::Scorer;
use super::Choice;
use crate::error::Result;
use crate::eval::metrics::{bootstrap_interval, ndcg_at, recall_at, Judgments};

/// Content weights tried besides the default (CF weighs 1); 0 is CF alone.
pub const CONTENT_WEIGHTS: [f64; 7] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0];

/// Seed of the bootstrap resamples of the gain interval.
const GAIN_SEED: u64 = 42;

/// The default content weight of a model family when nothing was validated.
pub fn family_default(model: &CfModelSettings) -> f64 {
    match model {
        CfModelSettings::Ease(_) => defaults::RECOMMEND_CONTENT_WEIGHT_EASE,
        CfModelSettings::Als(_) => defaults::RECOMMEND_CONTENT_WEIGHT_ALS,
    }
}

/// Scores [`CONTENT_WEIGHTS`] on `choice`'s validation split and records the best in its
/// selection; does nothing when the choice was not validated (`als` or `ease` as asked).
///
/// `vectors`: one unit-length embedding per catalog item, in catalog order.
///
/// The default stays unless another weight's paired nDCG@10 gain over it has its 90%
/// bootstrap interval above zero; among those, the best nDCG@10 (ties to the smaller weight)
/// serves. Every weight's scores are logged and recorded with the choice.
///
/// # Errors
/// Only what fusion refuses, which the fixed grid never triggers.
pub fn tune_content_weight(choice: &mut Choice, vectors: &[Vec<f32>]) -> Result<()> {
    let Some(fit) = choice.validated.take() else {
        return Ok(());
    };
    let default = family_default(&choice.model);
    let request = RecommendRequest::new("");
    let depth = request.candidates;
    let cold = cold_items(&fit.split.train);
    // Per validation user: the CF and content lists, and the held-out items as judgments.
    let users: Vec<(RankedList, RankedList, Judgments)> = fit
        .split
        .users
        .par_iter()
        .map(|(u, held)| {
            let cf = RankedList::new(RetrieverKind::Cf, fit.scorer.list(&fit.split.train, *u, depth, &cold));
            let content = RankedList::new(
                RetrieverKind::Dense,
                content_list(&fit.split.train, *u, vectors, depth, request.recent),
            );
            (cf, content, held.iter().map(|i| (i.to_string(), 1)).collect())
        })
        .collect();
    // Per-user nDCG@10 and Recall@20 at each weight of the grid.
    let per_user = |weight: f64| -> Result<Vec<(f64, f64)>> {
        users
            .par_iter()
            .map(|(cf, content, judged)| {
                let fused = fuse(&[cf.clone(), content.clone()], &[1.0, weight], &request.fusion)?;
                let ranked: Vec<String> = fused.iter().take(20).map(|h| h.item.to_string()).collect();
                Ok((ndcg_at(&ranked, judged, 10), recall_at(&ranked, judged, 20)))
            })
            .collect()
    };
    let at_default: Vec<f64> = per_user(default)?.into_iter().map(|s| s.0).collect();
    let n = users.len().max(1) as f64;
    let mut candidates = Vec::with_capacity(CONTENT_WEIGHTS.len() + 1);
    for weight in CONTENT_WEIGHTS.into_iter().chain((!CONTENT_WEIGHTS.contains(&default)).then_some(default)) {
        let scores = per_user(weight)?;
        let gain: Vec<f64> = scores.iter().zip(&at_default).map(|(s, d)| s.0 - d).collect();
        let [gain_low, _] = bootstrap_interval(&gain, GAIN_SEED);
        let candidate = ContentWeightCandidate {
            weight,
            ndcg_10: scores.iter().map(|s| s.0).sum::<f64>() / n,
            recall_20: scores.iter().map(|s| s.1).sum::<f64>() / n,
            ndcg_10_gain_low: gain_low,
        };
        tracing::info!(
            weight,
            ndcg_10 = candidate.ndcg_10,
            recall_20 = candidate.recall_20,
            gain_low,
            "content weight validated"
        );
        candidates.push(candidate);
    }
    candidates.sort_by(|a, b| a.weight.total_cmp(&b.weight));
    // Off the default only for a gain that holds up: the best nDCG@10 among weights whose
    // paired gain over the default has its 90% interval above zero (the reranker's verdict
    // rule). A few hundred validation users cannot tell weights apart by less than about one
    // user's hit, and there the default, chosen across catalogs and splits, is the safer bet.
    choice.selection.content_weight = Some(pick(default, &candidates));
    choice.selection.content_weights = candidates;
    Ok(())
}

/// The weight that serves: the best nDCG@10 among candidates whose gain interval lies above
/// zero (ties to the smaller weight), else `default`.
fn pick(default: f64, candidates: &[ContentWeightCandidate]) -> f64 {
    candidates
        .iter()
        .filter(|c| c.ndcg_10_gain_low > 0.0)
        .max_by(|a, b| a.ndcg_10.total_cmp(&b.ndcg_10).then(b.weight.total_cmp(&a.weight)))
        .map_or(default, |c| c.weight)
}

/// Items with no training interaction: no CF model has evidence on them, so the serving CF
/// list leaves them out.
fn cold_items(train: &Csr) -> Vec<bool> {
    let mut cold = vec![true; train.cols];
    for u in 0..train.rows() {
        for (item, _) in train.row(u) {
            cold[item as usize] = false;
        }
    }
    cold
}

/// The content list a request builds for user `u`: the `depth` items nearest (cosine) the
/// normalised, weight-summed embedding of the `recent` most recent training items (newest by
/// time, ties to the later item, as the engine orders a stored history), training items
/// excluded, ties by item index. Empty when the history gives no profile.
fn content_list(train: &Csr, u: usize, vectors: &[Vec<f32>], depth: usize, recent: usize) -> Vec<(u32, f32)> {
    let mut history: Vec<(u32, f32, Option<i64>)> = train.row_timed(u).collect();
    history.sort_by_key(|&(item, _, time)| (std::cmp::Reverse(time), std::cmp::Reverse(item)));
    let dim = vectors.first().map_or(0, Vec::len);
    let mut profile = vec![0f32; dim];
    for &(item, weight, _) in history.iter().take(recent) {
        for (p, v) in profile.iter_mut().zip(&vectors[item as usize]) {
            *p += weight.max(0.0) * v;
        }
    }
    let norm = dot(&profile, &profile).sqrt();
    if norm <= 0.0 {
        return Vec::new();
    }
    let seen: std::collections::HashSet<u32> = history.iter().map(|h| h.0).collect();
    let mut scored: Vec<(u32, f32)> = vectors
        .iter()
        .enumerate()
        .filter(|(item, _)| !seen.contains(&(*item as u32)))
        .map(|(item, v)| (item as u32, dot(&profile, v) / norm))
        .collect();
    top(&mut scored, depth);
    scored
}

/// Keeps the `n` best of `scored`, best first, ties by item index.
fn top(scored: &mut Vec<(u32, f32)>, n: usize) {
    let by_score = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if n < scored.len() {
        scored.select_nth_unstable_by(n, by_score);
        scored.truncate(n);
    }
    scored.sort_unstable_by(by_score);
}

impl Scorer {
    /// The CF list a request gets for user `u` of `train`: the `depth` best items the model
    /// has evidence on (EASE: items some history item has a weight for; ALS: warm items),
    /// training items excluded, best first, ties by item index.
    pub(super) fn list(&self, train: &Csr, u: usize, depth: usize, cold: &[bool]) -> Vec<(u32, f32)> {
        let seen: std::collections::HashSet<u32> = train.row(u).map(|(i, _)| i).collect();
        match self {
            Scorer::Ease(model) => {
                let history = train.row_timed(u).filter(|&(_, v, _)| v > 0.0).map(|(i, _, t)| (i, t));
                let seeds = hyrank_engine::cf::seeds(history, model.settings().recency_half_life);
                model.top(&seeds, depth, |item| !seen.contains(&item))
            }
            Scorer::Als(model) => {
                let mut scored = als_scores(model, u, cold, &seen);
                top(&mut scored, depth);
                scored
            }
        }
    }
}

fn als_scores(model: &AlsModel, u: usize, cold: &[bool], seen: &std::collections::HashSet<u32>) -> Vec<(u32, f32)> {
    let user = model.user_factors.row(u);
    (0..cold.len())
        .filter(|&item| !cold[item] && !seen.contains(&(item as u32)))
        .map(|item| (item as u32, dot(user, model.item_factors.row(item))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cf_choice::{choose, CfChoiceSettings};
    use hyrank_engine::cf::{AlsSettings, EaseSettings};

    fn candidate(weight: f64, ndcg_10: f64, ndcg_10_gain_low: f64) -> ContentWeightCandidate {
        ContentWeightCandidate { weight, ndcg_10, recall_20: 0.0, ndcg_10_gain_low }
    }

    #[test]
    fn the_default_stays_unless_a_gain_holds_up() {
        let noisy = [candidate(0.0, 0.30, -0.01), candidate(0.1, 0.29, 0.0), candidate(0.3, 0.31, -0.001)];
        assert_eq!(pick(0.1, &noisy), 0.1, "a higher mean whose interval reaches below zero is not enough");
        let held = [
            candidate(0.1, 0.20, 0.0),
            candidate(0.3, 0.25, 0.01),
            candidate(0.5, 0.26, 0.02),
            candidate(1.0, 0.26, 0.015),
            candidate(2.0, 0.30, -0.02),
        ];
        assert_eq!(pick(0.1, &held), 0.5, "the best of those that hold up, ties to the smaller weight");
    }

    #[test]
    fn the_content_list_reads_the_recent_history_and_leaves_it_out() {
        // User 0 saw items 0 (long ago) and 1 (lately); `recent` 1 keeps only item 1, whose
        // vector points at item 3.
        let train = Csr::from_timed(1, 4, &[(0, 0, 1.0, Some(10)), (0, 1, 1.0, Some(20))]);
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        let list = content_list(&train, 0, &vectors, 10, 1);
        assert_eq!(list.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 2]);
        assert!((list[0].1 - 1.0).abs() < 1e-6 && list[1].1.abs() < 1e-6);
        let both = content_list(&train, 0, &vectors, 1, 2);
        assert_eq!(both.len(), 1, "depth respected");
        assert_eq!(both[0].0, 2, "a tie goes to the smaller item index");
        assert!((both[0].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    /// The parent's two communities of users; `content(item)` is the item's vector.
    fn choice_with(content: impl Fn(u32) -> Vec<f32>) -> Choice {
        let matrix = crate::cf_choice::tests::communities();
        let settings = CfChoiceSettings {
            als: AlsSettings { factors: 4, iterations: 5, ..AlsSettings::default() },
            ease: EaseSettings { lambda: 2.0, neighbours: 0, ..EaseSettings::default() },
            ..CfChoiceSettings::default()
        };
        let mut choice = choose(&matrix, &settings).unwrap();
        let vectors: Vec<Vec<f32>> = (0..22).map(content).collect();
        tune_content_weight(&mut choice, &vectors).unwrap();
        choice
    }

    #[test]
    fn every_weight_is_validated_recorded_and_chosen_by_the_rule() {
        // Each item's vector points at the other community: content can only mislead.
        let choice = choice_with(|i| if i < 10 { vec![0.0, 1.0] } else { vec![1.0, 0.0] });
        let s = &choice.selection;
        let default = family_default(&choice.model);
        let weights: Vec<f64> = s.content_weights.iter().map(|c| c.weight).collect();
        let mut expected: Vec<f64> = CONTENT_WEIGHTS.to_vec();
        if !expected.contains(&default) {
            expected.push(default);
        }
        expected.sort_by(f64::total_cmp);
        assert_eq!(weights, expected);
        let at_default = s.content_weights.iter().find(|c| c.weight == default).unwrap();
        assert_eq!(at_default.ndcg_10_gain_low, 0.0, "no gain over itself");
        assert!(s.content_weights.iter().all(|c| c.ndcg_10 <= at_default.ndcg_10 + 1e-12), "{s:?}");
        assert_eq!(s.content_weight, Some(default), "nothing beats the default here: {s:?}");
        assert!(choice.validated.is_none(), "the validation fit is dropped once used");
    }
}
