//! The weight of the content list in a generation's hybrid recommendations, chosen on the
//! validation split `--cf-model auto` chose the CF model on.
//!
//! How much content evidence helps depends on the catalog: a strong item model on dense
//! behaviour wants little of it, a sparse catalog with rich text wants more. So instead of one
//! constant fitted on MovieLens, `auto` scores a small grid of weights the way a request is
//! served: for each validation user, the chosen model's CF list (fitted without the validation
//! items, computed in [`ValidationLists::new`] so the fit can be dropped before the final one)
//! and the content list (the generation's dense index searched with the profile of the user's
//! most recent training items) are fused with the API's default fusion and CF weight, training
//! items excluded. The model family's default weight stays unless another weight's paired
//! nDCG@10 gain over it holds up ([`pick`]); the result is the generation's default
//! (`cf_selection.content_weight` in the manifest).

use hyrank_engine::cf::{CfModelSettings, Csr};
use hyrank_engine::dense::VectorIndex;
use hyrank_engine::engine::{content_profile, recent_items};
use hyrank_engine::explain::RetrieverKind;
use hyrank_engine::fusion::{fuse, keep_best, RankedList};
use hyrank_engine::generation::ContentWeightCandidate;
use hyrank_engine::request::{candidates_for, defaults, RecommendRequest};
use hyrank_engine::store::Interaction;
use rayon::prelude::*;

use super::validation::{Scorer, Validation};
use super::Choice;
use crate::error::Result;
use crate::eval::metrics::{bootstrap_interval, ndcg_at, recall_at, Judgments};

/// What the content weight is validated on, kept from the CF model's validation once its fit
/// and split are dropped: per validation user, the CF list, the recent training items that
/// form the content profile, the training items (left out of the content list) and the
/// held-out items.
pub struct ValidationLists {
    users: Vec<ValidationUser>,
}

struct ValidationUser {
    cf: Vec<(u32, f32)>,
    /// `(item, interaction weight)` as [`recent_items`] gives them.
    recent: Vec<(u32, f32)>,
    /// Sorted.
    seen: Vec<u32>,
    held: Vec<u32>,
}

impl std::fmt::Debug for ValidationLists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidationLists").field("users", &self.users.len()).finish_non_exhaustive()
    }
}

impl ValidationLists {
    /// The lists of every validation user of `split` under the fitted `scorer`, as a default
    /// recommend request would get them (its candidate depth and recent-item count).
    pub(super) fn new(split: &Validation, scorer: &Scorer) -> Self {
        let request = RecommendRequest::new("");
        let users = split
            .users
            .par_iter()
            .map(|(u, held)| {
                // As a stored history: by time, ties by item.
                let mut history: Vec<Interaction> = split
                    .train
                    .row_timed(*u)
                    .map(|(item, weight, timestamp)| Interaction { item, weight, timestamp })
                    .collect();
                history.sort_by_key(|i| (i.timestamp, i.item));
                let mut seen: Vec<u32> = history.iter().map(|i| i.item).collect();
                seen.sort_unstable();
                ValidationUser {
                    cf: scorer.list(&split.train, *u, candidates_for(request.k, request.candidates), &seen),
                    recent: recent_items(&history, request.recent),
                    seen,
                    held: held.clone(),
                }
            })
            .collect();
        ValidationLists { users }
    }
}

/// Content weights tried besides the default (CF weighs 1); 0 is CF alone.
pub const CONTENT_WEIGHTS: [f64; 7] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0];

/// Seed of the bootstrap resamples of the gain interval.
const GAIN_SEED: u64 = 42;

/// The default content weight of a model family when nothing was validated.
pub fn family_default(model: &CfModelSettings) -> f64 {
    defaults::recommend_content_weight(matches!(model, CfModelSettings::Ease(_)))
}

/// Scores [`CONTENT_WEIGHTS`] on `choice`'s validation lists and records the weight that
/// serves in its selection; does nothing when the choice was not validated (`als` or `ease`
/// as asked).
///
/// `dense`: the generation's item embeddings and graph, searched as a request searches them.
///
/// The default stays unless another weight's paired nDCG@10 gain over it has its 90%
/// bootstrap interval above zero; among those, the best nDCG@10 (ties to the smaller weight)
/// serves. Every weight's scores are logged and recorded with the choice.
///
/// # Errors
/// A dense search that fails (a probe of the wrong dimension: not with the generation's own
/// vectors), or what fusion refuses, which the fixed grid never triggers.
pub fn tune_content_weight(choice: &mut Choice, dense: &VectorIndex) -> Result<()> {
    let Some(lists) = choice.validated.take() else {
        return Ok(());
    };
    let default = family_default(&choice.model);
    let request = RecommendRequest::new("");
    // Per validation user: the CF and content lists, and the held-out items as judgments.
    let users: Vec<([RankedList; 2], Judgments)> = lists
        .users
        .into_par_iter()
        .map(|user| {
            let content = RankedList::new(
                RetrieverKind::Dense,
                content_list(&user, dense, candidates_for(request.k, request.candidates))?,
            );
            let judged = user.held.iter().map(|i| (i.to_string(), 1)).collect();
            Ok(([RankedList::new(RetrieverKind::Cf, user.cf), content], judged))
        })
        .collect::<Result<_>>()?;
    // Per-user nDCG@10 and Recall@20 at a weight.
    let per_user = |weight: f64| -> Result<Vec<(f64, f64)>> {
        users
            .par_iter()
            .map(|(lists, judged)| {
                let fused = fuse(lists, &[1.0, weight], &request.fusion)?;
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
    // Off the default only for a gain that holds up (the reranker's verdict rule). A few
    // hundred validation users cannot tell weights apart by less than about one user's hit,
    // and there the default, chosen across catalogs and splits, is the safer bet. Each weight
    // is tested at 5% one-sided, so with seven the chance that some weight passes by luck is
    // higher than 5%; the winner must also have the best mean among those that pass.
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

/// The content list a request builds for `user`: the `depth` items of `dense` nearest (cosine)
/// the normalised, weight-summed embedding of the user's recent training items, training
/// items excluded. Empty when the history gives no profile.
fn content_list(user: &ValidationUser, dense: &VectorIndex, depth: usize) -> Result<Vec<(u32, f32)>> {
    let vectors = user.recent.iter().map(|&(item, weight)| dense.vector(item).map(|v| (weight, v)));
    let Some(profile) = vectors.collect::<Option<Vec<_>>>().and_then(|v| content_profile(dense.dim(), v)) else {
        return Ok(Vec::new());
    };
    let unseen = |item: u32| user.seen.binary_search(&item).is_err();
    Ok(dense.search(&profile, depth, Some(&unseen))?)
}

impl Scorer {
    /// The CF list a request gets for user `u` of `train`: the `depth` best items the model
    /// has evidence on (EASE: items some history item has a weight for; ALS: items with
    /// non-zero factors, the engine's test for a cold item), `seen` (sorted) excluded, best
    /// first, ties by item index.
    fn list(&self, train: &Csr, u: usize, depth: usize, seen: &[u32]) -> Vec<(u32, f32)> {
        let unseen = |item: u32| seen.binary_search(&item).is_err();
        match self {
            Scorer::Ease(model) => {
                let history = train.row_timed(u).filter(|&(_, v, _)| v > 0.0).map(|(i, _, t)| (i, t));
                let seeds = hyrank_engine::cf::seeds(history, model.settings().recency_half_life);
                model.top(&seeds, depth, unseen)
            }
            Scorer::Als(model) => {
                let mut scores = vec![0.0; train.cols];
                self.scores(train, u, &mut scores);
                let warm = |item: u32| model.item_factors.row(item as usize).iter().any(|&v| v != 0.0);
                let mut hits: Vec<(u32, f32)> =
                    (0..train.cols as u32).filter(|&i| warm(i) && unseen(i)).map(|i| (i, scores[i as usize])).collect();
                keep_best(&mut hits, depth);
                hits
            }
        }
    }
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

    fn index(vectors: &[Vec<f32>]) -> VectorIndex {
        let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
        let dim = vectors[0].len();
        VectorIndex::build(flat, dim, hyrank_engine::dense::Metric::Cosine, Default::default()).unwrap()
    }

    #[test]
    fn the_lists_read_the_newest_history_and_leave_the_seen_items_out() {
        // One user took items 0, 1, 2 in that order; the time split holds out item 2.
        let matrix = Csr::from_timed(1, 5, &[(0, 0, 1.0, Some(10)), (0, 1, 2.0, Some(20)), (0, 2, 1.0, Some(30))]);
        let split = Validation::split(&matrix, 1, super::super::CfValidation::Time).unwrap();
        let ease = hyrank_engine::cf::EaseSettings { lambda: 1.0, neighbours: 0, ..Default::default() };
        let scorer = Scorer::fit(&split.train, &CfModelSettings::Ease(ease)).unwrap();
        let lists = ValidationLists::new(&split, &scorer);
        let user = &lists.users[0];
        assert_eq!(user.recent, vec![(1, 2.0), (0, 1.0)], "newest first, with their weights");
        assert_eq!(user.seen, vec![0, 1]);
        assert_eq!(user.held, vec![2]);
        assert!(user.cf.iter().all(|(item, _)| *item > 1), "seen items are not in the CF list: {:?}", user.cf);
        // Item 1's vector points at items 3 and 1; item 0's at items 4 and 0. With only the
        // newest item in the profile, item 3 comes first; seen items never come.
        let dense = index(&[vec![0.0, 1.0], vec![1.0, 0.0], vec![0.6, 0.8], vec![1.0, 0.0], vec![0.0, 1.0]]);
        let newest = ValidationUser { recent: vec![(1, 1.0)], ..lists.users.into_iter().next().unwrap() };
        let list = content_list(&newest, &dense, 10).unwrap();
        assert_eq!(list.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 2, 4]);
        let none = ValidationUser { recent: vec![(1, -1.0)], ..newest };
        assert!(content_list(&none, &dense, 10).unwrap().is_empty(), "no positive weight, no profile");
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
        tune_content_weight(&mut choice, &index(&vectors)).unwrap();
        choice
    }

    #[test]
    fn every_weight_is_validated_recorded_and_chosen_by_the_rule() {
        // Each item's vector points at the other community. The CF list already ranks each
        // held-out item first here, so no weight can beat the default: the rule must keep it.
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
