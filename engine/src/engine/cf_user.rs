//! A user's collaborative filtering, shared by search (personalised) and recommend: the ALS
//! factors solved now for live events, the CF retriever, EASE's seeds, the explanation tree,
//! and what a response says when CF has no list.

use super::*;

impl Engine {
    /// The user's ALS factors; `None` when EASE serves (it reads the history instead). A user
    /// with live events gets factors solved now against the generation's fixed item factors
    /// (the exact least-squares step of ALS for one user, what implicit's `recalculate_user`
    /// does), so their events move their recommendations without a rebuild.
    pub(super) fn user_vector<'a>(&self, cf: &'a Collaborative, user: &LiveUser) -> Result<Option<Cow<'a, [f32]>>> {
        let Collaborative::Als { model, gram, .. } = cf else { return Ok(None) };
        if user.live_events > 0 || !user.stored {
            let history = self.cf_history(&user.record.history);
            match cf::als::solve_user(model, gram, &history) {
                Some(factors) => return Ok(Some(Cow::Owned(factors))),
                // Only with λ = 0 and fewer items than factors: the stored factors where the
                // build has them, else no CF list for this user (content still serves).
                None if !user.stored => {
                    tracing::warn!(user = %user.record.id, "ALS normal matrix singular; no CF list for this user");
                    return Ok(None);
                }
                None => tracing::warn!(user = %user.record.id, "ALS normal matrix singular; using the stored factors"),
            }
        }
        let user = &user.record;
        let users = &model.user_factors;
        let start = user.index as usize * users.dim;
        let factors = users.data.get(start..start + users.dim).ok_or_else(|| Error::BadIndex {
            path: self.dir.clone(),
            reason: format!("user {} has no factors", user.id),
        })?;
        Ok(Some(Cow::Borrowed(factors)))
    }

    /// The CF retriever for a user: ALS with the user's factors (or `replay`'s factors in its
    /// item space, for the reranker trainer), EASE with the `seeds` (the user's positive
    /// history items). `None` when the view has no factors to search with, or they are all
    /// zero, or EASE has no seeds ([`no_cf_note`]).
    pub(super) fn cf_retriever<'a>(
        &'a self,
        cf: &'a Collaborative,
        factors: Option<&'a [f32]>,
        replay: Option<&'a CfItems>,
        seeds: &'a [(u32, f32)],
        own: &'a [u32],
        cold_items: crate::request::ColdItems,
    ) -> Option<Retriever<'a>> {
        // No opinion, no list: a history CF reads nothing in (items written live since the
        // build, or items no interaction trained) solves to zero ALS factors, which score every
        // item 0 (a list of ties in catalog order), and gives EASE no seeds.
        let factors = factors.filter(|factors| crate::cf::has_opinion(factors));
        if matches!(cf, Collaborative::Ease(_)) && replay.is_none() && seeds.is_empty() {
            return None;
        }
        match (cf, factors, replay) {
            (_, Some(factors), Some(items)) | (Collaborative::Als { items, .. }, Some(factors), None) => {
                Some(Retriever::Cf { items, factors, cold_items, own })
            }
            (Collaborative::Ease(model), _, None) => Some(Retriever::ItemModel { model, seeds, cold_items }),
            _ => None,
        }
    }

    /// The CF explainer for a user: ALS reads `history` (from [`Engine::cf_history`]), EASE
    /// the `seeds` (from [`Engine::cf_seeds`]). `None` without CF or (ALS) without the user's
    /// normal matrix factors.
    pub(super) fn cf_explainer<'a>(
        &'a self,
        history: &'a [(u32, f32)],
        seeds: Vec<(u32, f32)>,
    ) -> Option<CfExplainer<'a>> {
        match self.cf.as_ref()? {
            Collaborative::Als { model, gram, .. } => {
                cf::UserExplainer::new(model, gram, history).map(CfExplainer::Als)
            }
            Collaborative::Ease(model) => Some(CfExplainer::Ease { model, seeds }),
        }
    }

    /// A history as CF reads it: only the generation's items (live rows have no factors and no
    /// row of item-item weights until a build takes them in), a live row that replaced one of
    /// them read as that row.
    pub(super) fn cf_history(&self, history: &[Interaction]) -> Vec<(u32, f32)> {
        let built = self.ids.len() as u32;
        let live = self.live_items();
        history.iter().map(|i| (live.built_row(i.item), i.weight)).filter(|&(item, _)| item < built).collect()
    }

    /// A history's items as CF reads them ([`Engine::cf_history`]): what a CF
    /// list's floor leaves out ([`crate::retrieve::CfItems::floor`]).
    pub(super) fn cf_own(&self, history: &[Interaction]) -> Vec<u32> {
        // Repeats are left in: `CfItems::floor` counts each item once.
        self.cf_history(history).into_iter().map(|(i, _)| i).collect()
    }

    /// The seeds of EASE's scores for a history: its items with a positive weight among the
    /// generation's (as [`Engine::cf_history`] reads them) that EASE was trained on (an item
    /// no positive trained has no row of weights: no opinion, as ALS's zero factors), each
    /// weighed by recency when the model's settings ask for it ([`cf::seeds`], by its place
    /// among all the positives). Empty when EASE does not serve.
    pub(super) fn cf_seeds(&self, history: &[Interaction]) -> Vec<(u32, f32)> {
        let Some(Collaborative::Ease(model)) = &self.cf else { return Vec::new() };
        let built = self.ids.len() as u32;
        let live = self.live_items();
        let positives = history
            .iter()
            .filter(|i| i.weight > 0.0)
            .map(|i| (live.built_row(i.item), i.timestamp))
            .filter(|&(item, _)| item < built);
        // Weighed first, left out after: an untrained item still takes its place in the
        // history's recency order, so the other seeds weigh what they did (its own row holds
        // no weight, so it scored nothing either way).
        let cold = model.cold();
        let mut seeds = cf::seeds(positives, model.settings().recency_half_life);
        seeds.retain(|&(item, _)| !cold.get(item as usize).copied().unwrap_or(true));
        seeds
    }

    /// The CF explanation tree of `item`, history items named by id and title.
    pub(super) fn cf_explanation(&self, explainer: &CfExplainer<'_>, item: u32) -> Explanation {
        if item as usize >= self.ids.len() {
            return Explanation::leaf("CF: no opinion on an item written live since the build", 0.0);
        }
        // What fusion reports as CF abstaining (under `cold_items: share`) reads so here too,
        // not as a sum of no weights.
        let (cold, abstains) = match &self.cf {
            Some(Collaborative::Ease(model)) => {
                let at = |mask: &Arc<Vec<bool>>| mask.get(item as usize).copied().unwrap_or(false);
                (at(model.cold()), at(model.abstains()))
            }
            Some(Collaborative::Als { items, .. }) => (items.is_cold(item), items.abstains(item)),
            None => (false, false),
        };
        if abstains {
            return Explanation::leaf("CF: no opinion on an item no one interacted with before the build (cold)", 0.0);
        }
        if cold {
            return Explanation::leaf(
                "CF: no positive for this item, only interactions below the build's positive rule (--min-weight)",
                0.0,
            );
        }
        let name = |j: u32| self.item_label(j);
        match explainer {
            CfExplainer::Als(explainer) => explainer.tree(item, 5, name),
            CfExplainer::Ease { model, seeds } => model.tree(seeds, item, 5, name),
        }
    }
}

impl Engine {
    /// What a response says when CF was to rank for a user with `history` and had no opinion
    /// ([`Engine::cf_retriever`]): why, and what decides instead, the other lists (`others`),
    /// or nothing where CF was to rank alone (`mode: "cf"`, which then has no hits). ALS has two
    /// reasons besides a history of items it has no factors for (live rows, items without
    /// interactions: their factors are zero), told apart by solving again (only for such a
    /// response, and only where a history item has factors): normal equations it cannot factor
    /// ([`singular`]), and factors of zero, which weights too small to move them give.
    pub(crate) fn no_cf_note(&self, history: &[Interaction], others: bool) -> String {
        let then = if others { "the other lists decide" } else { "this mode ranks by CF alone, so there are no hits" };
        let untrained = format!(
            "cf: no CF list: the user's history holds no item collaborative filtering was trained on (only items \
             written live since the build, or items without interactions); {then}"
        );
        let Some(Collaborative::Als { model, gram, .. }) = self.cf.as_ref() else { return untrained };
        let mut trained = self.cf_history(history);
        trained.retain(|&(j, _)| cf::has_opinion(model.item_factors.row(j as usize)));
        if trained.is_empty() {
            return untrained;
        }
        match cf::als::solve_user(model, gram, &trained) {
            None => format!("cf: no CF list: {}; {then}", singular(model)),
            Some(_) => {
                let largest = trained.iter().map(|&(_, w)| w).fold(0f32, f32::max);
                format!(
                    "cf: no CF list: the user's ALS factors are zero, as the history's weights (the largest \
                     {largest:e}) are too small to move them; {then}"
                )
            }
        }
    }

    /// What a response with explanations says when CF ranked but its scores cannot be
    /// explained: ALS's normal equations for the user cannot be factored ([`singular`]), and
    /// the scores are the build's factors (the user's, solved by its conjugate gradient).
    pub(crate) fn unexplained_cf_note(&self) -> Option<String> {
        let Some(Collaborative::Als { model, .. }) = self.cf.as_ref() else { return None };
        Some(format!(
            "cf: no explanation of the CF scores: {}; they are the build's factors for the user",
            singular(model)
        ))
    }
}

/// Why ALS has no exact solve for a user. Without regularization, fewer items with factors
/// than factors leave the items' Gramian singular, so no user has a single solution. With it,
/// every user's matrix is positive definite and only arithmetic fails it: item factors blown up
/// by one user's summed weights far above the others' (10¹⁰ beside ones), which a build now
/// refuses (`hyrank index`) but a generation built before may still serve. Either way it is
/// the generation's doing, not this user's history.
fn singular(model: &cf::AlsModel) -> String {
    let with_factors = (0..model.item_factors.rows()).filter(|&j| cf::has_opinion(model.item_factors.row(j))).count();
    let factors = model.settings.factors;
    if model.settings.regularization == 0.0 && with_factors < factors {
        return format!(
            "the user's ALS normal equations are singular: with regularization 0, {with_factors} items with factors \
             for {factors} factors leave them no single solution; build with --regularization above 0"
        );
    }
    "the user's ALS normal equations are numerically singular: the generation's item factors are degenerate (one \
     user's summed weights far above the others' blow them up, which a build now refuses); rebuild it, with such \
     weights scaled down (a log of counts) or a lower --alpha"
        .to_string()
}

/// What a response says when it was asked for a user's CF list on a generation built without
/// interactions (a hybrid search or recommendation for a user, answered by content).
pub(crate) const NO_INTERACTIONS_NOTE: &str =
    "cf: no CF list: this generation was built without interactions; the other lists decide";
