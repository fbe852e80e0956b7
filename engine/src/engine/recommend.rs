//! Recommend: CF candidates fused with content candidates near the user's recent history, so
//! that items nobody has interacted with can still be recommended; then, when asked or enabled
//! by the generation, the trained recommendation reranker reads the user's recent titles
//! against each of the top candidates.

use std::collections::HashSet;
use std::time::Instant;

use super::stages::Fused;
use super::Engine;
use crate::call::Call;
use crate::error::{Error, Result};
use crate::explain::{Explanation, RetrieverKind};
use crate::request::{
    candidates_for, check_page, defaults, Candidate, RecommendMode, RecommendRequest, Results, Timings,
};
use crate::rerank::{self, TrainedReranker};
use crate::retrieve::{CfItems, Retriever};
use crate::store::Interaction;

/// A user as the recommender sees them: the stored user, or (for the reranker trainer) a user
/// replayed as of an earlier moment.
pub struct UserView<'a> {
    /// What they interacted with: excluded from recommendations when asked, and the recent
    /// part forms the content profile and the reranker's context.
    pub history: &'a [Interaction],
    /// Items seen below the build's positive rule ([`crate::store::UserRecord::seen`]):
    /// excluded with the history when asked, read for nothing else.
    pub seen: &'a [u32],
    /// Items kept out of the candidates besides the history (the trainer hides a user's other
    /// held-out items).
    pub hidden: Option<&'a HashSet<u32>>,
    /// ALS factors in the space of `cf_items`; `None`: no ALS list (an EASE generation reads
    /// `history` instead).
    pub factors: Option<&'a [f32]>,
    /// The item factors `factors` belong to; `None`: the generation's. When given, the CF list
    /// is ALS over these whatever model the generation serves.
    pub cf_items: Option<&'a CfItems>,
}

impl Engine {
    /// Recommends items for a user.
    ///
    /// # Errors
    /// An invalid request (the field named), an unknown user, a generation without CF, a
    /// reranker the generation lacks, or a model failure.
    pub fn recommend(&self, request: &RecommendRequest) -> Result<Results> {
        self.recommend_in(request, &Call::now())
    }

    /// [`Engine::recommend`] for `call`, as [`Engine::search_in`] runs a search.
    ///
    /// # Errors
    /// As [`Engine::recommend`]; [`Error::Cancelled`] when the client went away.
    #[tracing::instrument(skip_all, fields(k = request.k, offset = request.offset))]
    pub fn recommend_in(&self, request: &RecommendRequest, call: &Call) -> Result<Results> {
        call.check()?;
        let start = Instant::now();
        self.check_facets(&request.facets)?;
        self.check_sort(&request.sort)?;
        // A generation built without interactions has no CF: cf mode is unavailable, and the
        // others recommend by content from the user's live history, as a hybrid search for a
        // user answers by its query.
        if request.mode == RecommendMode::Cf {
            self.collaborative()?;
        }
        let live = self.live_user(&request.user)?;
        let factors = match &self.cf {
            Some(cf) => self.user_vector(cf, &live)?,
            None => None,
        };
        let user = live.record;
        let view = UserView {
            history: &user.history,
            seen: &user.seen,
            hidden: None,
            factors: factors.as_deref(),
            cf_items: None,
        };
        let mut timings = Timings::default();
        let mut fused = self.recommend_first_stage(&view, request, &mut timings)?;
        self.sort(&request.sort, request.page(), &mut fused, &mut timings)?;
        let trained = self.recommend_trained.as_ref().map(TrainedReranker::as_trained);
        let plan = if request.sort.is_empty() {
            rerank::recommend_plan(request.rerank.as_ref(), trained)?
        } else {
            crate::sort::unranked(request.rerank.as_ref())?
        };
        let context = match (&plan, trained.and_then(|t| t.manifest.context)) {
            (Some(_), Some(context)) => Some(self.recommend_context(view.history, context.titles)?),
            (Some(_), None) => Some(String::new()),
            (None, _) => None,
        };
        let (mut hits, cut) = self.finish(
            &fused,
            request.page(),
            plan.zip(context.as_deref()).map(|(p, c)| (p, c, None)),
            None,
            call,
            &mut timings,
        )?;
        let mut unexplained = None;
        if request.explain {
            // Trees only for the lists that ran (content mode has no CF list, cf mode no content).
            let cf_ran = fused.ran(RetrieverKind::Cf);
            let history = if cf_ran { self.cf_history(&user.history) } else { Vec::new() };
            let explainer = if cf_ran { self.cf_explainer(&history, self.cf_seeds(&user.history)) } else { None };
            if cf_ran && explainer.is_none() {
                unexplained = self.unexplained_cf_note();
            }
            let content = fused.ran(RetrieverKind::Dense);
            let candidates = candidates_for(request.k, request.candidates);
            for hit in &mut hits {
                let item = self.index_of(&hit.id)?;
                if let Some(explainer) = &explainer {
                    let tree = self.cf_explanation(explainer, item);
                    hit.explain(tree, RetrieverKind::Cf, "cf", candidates);
                }
                if content {
                    let tree = self.content_explanation(&user.history, item, request.recent);
                    hit.explain(tree, RetrieverKind::Dense, "content", candidates);
                }
            }
        }
        let facets = self.facets(&request.facets, &fused, &mut timings)?;
        let mut results = self.answer(hits, &fused, (&request.filters, &request.exclude), facets, start, timings);
        results.rerank_cut = cut;
        results.notes.extend(cut.map(|cut| cut.note()));
        results.notes.extend(unexplained);
        if request.mode != RecommendMode::Content && !fused.ran(RetrieverKind::Cf) {
            let note = match self.cf.is_some() {
                true => self.no_cf_note(&user.history, request.mode != RecommendMode::Cf),
                false => super::NO_INTERACTIONS_NOTE.to_string(),
            };
            results.notes.insert(0, note);
        }
        Ok(results)
    }

    /// The top `depth` fused recommendation candidates for a user view (rerank settings
    /// ignored), with the features the learned combination reads: what the recommendation
    /// reranker trainer mines negatives from and validates on.
    pub fn recommend_candidates(
        &self,
        view: &UserView<'_>,
        request: &RecommendRequest,
        depth: usize,
    ) -> Result<Vec<Candidate>> {
        let fused = self.recommend_first_stage(view, request, &mut Timings::default())?;
        self.candidates_of(&fused, depth)
    }

    /// The text the recommendation reranker reads as its query: the titles of the user's
    /// `titles` most recent history items, most recent first.
    pub fn recommend_context(&self, history: &[Interaction], titles: usize) -> Result<String> {
        let titles = recent_items(history, titles)
            .into_iter()
            .map(|(item, _)| self.item_at(item).map(|i| i.title))
            .collect::<Result<Vec<_>>>()?;
        Ok(titles.join("; "))
    }

    /// Runs the recommendation retrievers for a user view and fuses their lists. Seen items
    /// (when excluded) and hidden ones are left out of the allow mask, so every retriever skips
    /// them alike.
    fn recommend_first_stage(
        &self,
        view: &UserView<'_>,
        request: &RecommendRequest,
        timings: &mut Timings,
    ) -> Result<Fused> {
        let candidates = check_page(request.page(), request.candidates)?;
        request.weights.check()?;
        if request.recent == 0 {
            return Err(Error::invalid("recent", "must be at least 1"));
        }
        request.weights.refuse_bm25("recommendations")?;
        if request.mode == RecommendMode::Cf {
            self.collaborative()?;
        }
        let seeds = self.cf_seeds(view.history);
        let own = self.cf_own(view.history);
        let seen =
            view.history.iter().map(|i| i.item).chain(view.seen.iter().copied()).filter(|_| request.exclude_seen);
        let hidden = view.hidden.into_iter().flatten().copied();
        let allow =
            self.allow(&request.filters, &request.exclude, timings)?.excluding(self.total_len(), seen.chain(hidden));
        let live_items = self.live_items();
        let history: Vec<u32> = view.history.iter().map(|i| i.item).collect();
        let mean = self.floor_mean(&request.fusion, &live_items, &history);
        // The content profile, when the mode has content; `Some(None)`: the history gives none.
        let profile =
            (request.mode != RecommendMode::Cf).then(|| self.profile(&live_items, view.history, request.recent));
        let mut retrievers = Vec::with_capacity(2);
        if let Some(cf) = self.cf.as_ref().filter(|_| request.mode != RecommendMode::Content) {
            if let Some(retriever) =
                self.cf_retriever(cf, view.factors, view.cf_items, &seeds, &own, request.cold_items)
            {
                retrievers.push((retriever, request.weights.of(RetrieverKind::Cf)));
            }
        }
        if let Some(profile) = &profile {
            // The validated weight is content's share beside CF; alone, content is the list
            // (a validated 0 made every content-mode score 0, the order left to rank ties).
            // Without CF (a generation built without interactions) content is the list in
            // every mode, weighed as in content mode.
            let alone = request.mode == RecommendMode::Content || self.cf.is_none();
            let weight = match request.mode {
                _ if alone => request.weights.of(RetrieverKind::Dense),
                _ => request.weights.given(RetrieverKind::Dense).unwrap_or_else(|| self.recommend_content_weight()),
            };
            retrievers.push((
                Retriever::Dense {
                    index: &self.dense,
                    live: Some(&live_items),
                    vector: profile.as_deref(),
                    mean: mean.as_deref().map(Vec::as_slice),
                },
                weight,
            ));
        }
        self.retrieve_and_fuse(&retrievers, candidates, &allow, &request.fusion, timings)
    }

    /// The content list's weight beside CF when a recommend request gives none (content alone
    /// weighs 1): the one validated when
    /// the generation was built (`cf_selection.content_weight`), else the constant of the
    /// model family that serves CF.
    pub fn recommend_content_weight(&self) -> f64 {
        let validated = self.manifest.cf_selection.as_ref().and_then(|s| s.content_weight);
        let ease = matches!(self.cf, Some(super::Collaborative::Ease(_)));
        validated.unwrap_or_else(|| defaults::recommend_content_weight(ease))
    }

    /// The content profile ([`content_profile`]) of the user's `recent` most recent items.
    fn profile(
        &self,
        live: &crate::live::items::LiveItems,
        history: &[Interaction],
        recent: usize,
    ) -> Option<Vec<f32>> {
        let vectors = recent_items(history, recent)
            .into_iter()
            .map(|(item, weight)| self.vector_at(live, item).map(|v| (weight, v)))
            .collect::<Option<Vec<_>>>()?;
        content_profile(self.dense.dim(), vectors)
    }

    /// The content score of the recommended item as its history items make it: the profile is
    /// `Σ w_j v_j / ‖Σ w_j v_j‖` ([`content_profile`]), so its cosine to the item is the sum of
    /// each recent item's `w_j (v·v_j) / ‖Σ w_j v_j‖`; the three largest shown, the rest summed.
    fn content_explanation(&self, history: &[Interaction], item: u32, recent: usize) -> Explanation {
        let live = self.live_items();
        let target = self.vector_at(&live, item).unwrap_or_default();
        let recent: Vec<(u32, f32, Vec<f32>)> = recent_items(history, recent)
            .into_iter()
            .filter_map(|(j, w)| self.vector_at(&live, j).map(|v| (j, w.max(0.0), v)))
            .collect();
        let mut sum = vec![0f64; self.dense.dim()];
        for (_, w, v) in &recent {
            for (s, x) in sum.iter_mut().zip(v) {
                *s += f64::from(*w) * f64::from(*x);
            }
        }
        let norm = sum.iter().map(|s| s * s).sum::<f64>().sqrt();
        let mut parts: Vec<(u32, f64)> = recent
            .iter()
            .map(|(j, w, v)| {
                let cosine = f64::from(crate::dense::dot(&target, v));
                (*j, if norm > 0.0 { f64::from(*w) * cosine / norm } else { 0.0 })
            })
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let parts = parts
            .into_iter()
            .map(|(j, c)| Explanation::leaf(format!("history item {}", self.item_label(j)), c))
            .collect();
        let label = match recent.len() {
            1 => "content: cosine to the user's most recent history item".to_string(),
            n @ 2..=3 => format!("content: cosine to the profile of {n} recent history items"),
            n => format!("content: cosine to the profile of {n} recent history items (the 3 largest shown)"),
        };
        Explanation::sum_of_top(label, parts, 3, "history items")
    }
}

/// A recommendation's content profile: the normalised sum of `weight · vector` over
/// `(weight, vector)` pairs of `dim` floats, a negative weight counting 0. `None` when the sum
/// is zero (no positive weight): the history gives no profile.
///
/// Summed in f64: the profile does not depend on the weights' scale, and in f32 a history of
/// small weights (an event may weigh down to 1.2 × 10⁻³⁸) summed and squared to zero, leaving
/// such a user no content list.
pub fn content_profile<V: AsRef<[f32]>>(dim: usize, items: impl IntoIterator<Item = (f32, V)>) -> Option<Vec<f32>> {
    let mut profile = vec![0f64; dim];
    for (weight, vector) in items {
        let weight = f64::from(weight.max(0.0));
        for (p, v) in profile.iter_mut().zip(vector.as_ref()) {
            *p += weight * f64::from(*v);
        }
    }
    let norm = profile.iter().map(|v| v * v).sum::<f64>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| profile.into_iter().map(|v| (v / norm) as f32).collect())
}

/// The user's `recent` most recent history items (by timestamp, then input order), with weights.
pub fn recent_items(history: &[Interaction], recent: usize) -> Vec<(u32, f32)> {
    let mut history: Vec<(usize, &Interaction)> = history.iter().enumerate().collect();
    history.sort_by_key(|(position, i)| (std::cmp::Reverse(i.timestamp), std::cmp::Reverse(*position)));
    history.into_iter().take(recent).map(|(_, i)| (i.item, i.weight)).collect()
}

#[cfg(test)]
mod tests {
    use super::content_profile;

    /// The profile does not depend on the weights' scale, down to the smallest weight an event
    /// may carry: in f32 such weights summed and squared to zero, and the user had no profile.
    #[test]
    fn a_profile_of_tiny_weights_is_the_profile_of_their_ratios() {
        let vectors = [vec![0.6f32, 0.8, 0.0], vec![0.0, 0.6, 0.8]];
        let unit = content_profile(3, [(1.0f32, &vectors[0]), (3.0, &vectors[1])]).unwrap();
        for scale in [1.2e-38f32, 1e-30, 1e-20, 1e6] {
            let scaled = content_profile(3, [(scale, &vectors[0]), (3.0 * scale, &vectors[1])]).expect("a profile");
            for (a, b) in scaled.iter().zip(&unit) {
                assert!((a - b).abs() < 1e-6, "{scale:e}: {scaled:?} against {unit:?}");
            }
        }
        assert_eq!(content_profile(3, [(0.0f32, &vectors[0]), (-1.0, &vectors[1])]), None, "no positive weight");
    }
}
