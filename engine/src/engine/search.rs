//! Search: BM25 and dense for a query, CF for a user, fused; then the rerank stage and, when
//! asked, explanation trees. Without a query or a user, a hybrid search that filters, excludes
//! or sorts browses: every item the conditions allow, unranked (a category page).

use std::sync::Arc;
use std::time::Instant;

use super::stages::{ms, Fused};
use super::Engine;
use crate::call::Call;
use crate::embed::QueryStates;
use crate::error::{Error, Result};
use crate::explain::{Explanation, RetrieverKind};
use crate::request::{check_page, Candidate, Results, SearchRequest, Timings};
use crate::rerank::{self, TrainedReranker};
use crate::retrieve::Retriever;
use crate::store::UserRecord;

/// A search's first stage: what it had, and the fused candidates.
struct FirstStage<'a> {
    query: Option<&'a str>,
    user: Option<UserRecord>,
    fused: Fused,
    /// The query's states after the reranker's query layers, kept from the pass that embedded
    /// it, when it was embedded here and the rerank stage reads them.
    query_states: Option<Arc<QueryStates>>,
    /// The model reads none of the query.
    unread: bool,
    /// The dense list was asked for and left empty, since the model reads none of the query.
    unread_dense: bool,
    /// A CF list was asked for (a user, in a mode with CF) and CF had no opinion.
    no_cf: bool,
}

/// How a search without a query lists a category page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Browse {
    /// A query, or neither a condition nor a sort: no browse.
    No,
    /// No user: every allowed item, unranked ([`Engine::browse`]).
    Plain,
    /// For a user: CF's list for the user, then every other allowed item ([`Engine::browsed`]).
    ForUser,
    /// For a user CF has no list for: as [`Browse::Plain`].
    NoCf,
}

/// Whether `request` browses: a hybrid search with no query (`has_query`: with content) that
/// filters, excludes or sorts. One with none of these is still refused without a user (an
/// empty search box sends such a request; a client wanting every item sorts them), and is the
/// user's CF list with one.
fn browses(request: &SearchRequest, has_query: bool) -> Browse {
    let narrows = !request.filters.is_empty() || !request.exclude.is_empty() || !request.sort.is_empty();
    match (has_query || request.mode != crate::request::Mode::Hybrid || !narrows, request.user.is_some()) {
        (true, _) => Browse::No,
        (false, false) => Browse::Plain,
        (false, true) => Browse::ForUser,
    }
}

/// What a response says when its dense list is empty because the model cannot read the query.
pub(crate) const UNREAD_NOTE: &str = "dense: the embedding model reads none of the query (every word piece of it but \
     punctuation is unknown to its vocabulary: a script it was not trained on, as Thai, Lao, Khmer and Myanmar and \
     most Chinese are to all-MiniLM-L6-v2, or a word over 100 characters, which its tokenizer reads as one unknown \
     piece), so its vector would be the same whatever the query says; the dense list is left empty";

/// What a response says when it was to be reranked and the model cannot read the query.
pub(crate) const UNREAD_RERANK_NOTE: &str = "rerank: not run: the embedding model reads none of the query (every \
     word piece of it but punctuation is unknown to its vocabulary), and the reranker reads the query through that \
     vocabulary, so it would order the hits by the items alone; the fused order stands";

/// What a browse (no query, no user) says of its order.
pub(crate) const BROWSE_NOTE: &str = "browse: no query or user, so nothing ranks the items: these are every item the \
     filters allow, each scored 0, in the order of `sort`, then the catalog's (items written live last)";

/// What a browse for a user CF has no list for says of its order.
pub(crate) const BROWSE_NO_CF_NOTE: &str = "browse: no query, and CF has no list for this user (unknown to this \
     generation, or it has no interactions), so nothing ranks the items: these are every item the filters allow, each \
     scored 0, in the order of `sort`, then the catalog's (items written live last)";

/// What a browse for a user says of its order.
pub(crate) const BROWSE_FOR_USER_NOTE: &str =
    "browse: no query: the items CF ranks for the user come first, then every \
     other item the filters allow, scored 0, in the catalog's order (items written live last); with `sort`, all of \
     them in its order";

/// A query beside `mode: cf` that nothing read: CF's list is the user's alone, and only a
/// reranker reads the query there.
pub(crate) const CF_QUERY_NOTE: &str = "query: not read: mode cf ranks the user's CF list alone, and only a reranker \
     reads the query in this mode (none ran); use mode hybrid to retrieve with it";

impl Engine {
    /// Runs a search arriving now that nothing cancels ([`Engine::search_in`]).
    ///
    /// # Errors
    /// An invalid request (the field named), an unknown user, a reranker the generation lacks,
    /// or a model failure.
    pub fn search(&self, request: &SearchRequest) -> Result<Results> {
        self.search_in(request, &Call::now())
    }

    /// Runs a search for `call`: its rerank budget counts from the call's arrival, and the
    /// work stops where the call's client has gone.
    ///
    /// # Errors
    /// An invalid request (the field named), an unknown user, a reranker the generation lacks,
    /// or a model failure; [`Error::Cancelled`] when the client went away.
    #[tracing::instrument(skip_all, fields(k = request.k, offset = request.offset, mode = ?request.mode))]
    pub fn search_in(&self, request: &SearchRequest, call: &Call) -> Result<Results> {
        call.check()?;
        let start = Instant::now();
        let mut timings = Timings::default();
        // The request's own checks before the rerank plan's, which is made ahead of the first
        // stage so that the query's encoding knows what the reranker can start from.
        let has_query = crate::request::query_text(request.query.as_deref()).is_some();
        let browse = browses(request, has_query);
        // A plain browse runs no retriever: `candidates` is unused rather than refused.
        let asked = request.candidates.filter(|_| browse != Browse::Plain);
        let candidates = check_page(request.page(), asked)?;
        request.weights.check()?;
        self.check_facets(&request.facets)?;
        self.check_sort(&request.sort)?;
        let trained = self.trained.as_ref().map(TrainedReranker::as_trained);
        let plan = if request.sort.is_empty() {
            rerank::search_plan(request.rerank.as_ref(), has_query, trained, &self.late_interaction)?
        } else {
            crate::sort::unranked(request.rerank.as_ref())?
        };
        let query_layers = plan.as_ref().and_then(|plan| plan.reranker.query_layers());
        let first = match browse {
            Browse::Plain => self.browse(request, &mut timings),
            _ => self.search_first_stage(request, candidates, query_layers, plan.is_some(), &mut timings),
        };
        // A category page for a user CF knows nothing of (new to the generation, or a
        // generation without interactions) is the page without CF, not a refusal.
        // (The id was checked before either error; a BM25 setting the generation cannot serve
        // is refused by the browse too.)
        let (first, browse) = match (first, browse) {
            (Err(Error::UnknownUser { .. }), Browse::ForUser) => (self.browse(request, &mut timings), Browse::NoCf),
            (Err(Error::Unavailable { .. }), Browse::ForUser) if self.cf.is_none() => {
                (self.browse(request, &mut timings), Browse::NoCf)
            }
            other => other,
        };
        let FirstStage { query, user, mut fused, query_states, unread, unread_dense, no_cf } = first?;
        if browse == Browse::ForUser {
            let rest = self.browsed(request, &fused.hits, &mut timings)?;
            fused.hits.extend(rest);
        }
        self.sort(&request.sort, request.page(), &mut fused, &mut timings)?;
        // The reranker reads the query through the same vocabulary: one it reads none of would
        // reorder the fused list by the items alone.
        let unread_rerank = unread && plan.is_some();
        let plan = plan.filter(|_| !unread);
        let cf_query_unread = request.mode == crate::request::Mode::Cf && has_query && plan.is_none();
        let rerank = plan.zip(query).map(|(plan, query)| (plan, query, query_states));
        let params = self.bm25_params(request);
        let highlighter =
            query.filter(|_| request.highlight).map(|q| self.lexical.highlighter_with(q, params)).transpose()?;
        let (mut hits, cut) = self.finish(&fused, request.page(), rerank, highlighter.as_ref(), call, &mut timings)?;
        if let Some(highlighter) = &highlighter {
            timings.highlight_ms = highlighter.spent().as_secs_f64() * 1e3;
        }
        let mut unexplained = None;
        if request.explain {
            // A CF tree only where CF ran (bm25 or dense mode with a user has none).
            let cf_user = user.as_ref().filter(|_| fused.ran(RetrieverKind::Cf));
            let history = cf_user.map(|u| self.cf_history(&u.history));
            let seeds = cf_user.map(|u| self.cf_seeds(&u.history)).unwrap_or_default();
            let explainer = history.as_deref().and_then(|h| self.cf_explainer(h, seeds));
            if let (Some(_), None) = (cf_user, &explainer) {
                unexplained = self.unexplained_cf_note();
            }
            let query = query.filter(|_| fused.ran(RetrieverKind::Bm25));
            for hit in &mut hits {
                let index = self.index_of(&hit.id)?;
                if let Some(query) = query {
                    let params = self.bm25_params(request);
                    if let Some(tree) = self.lexical.explain_with(query, index, params)? {
                        let tree = Explanation::node("bm25", tree.value, vec![tree]);
                        hit.explain(tree, RetrieverKind::Bm25, "bm25", candidates);
                    }
                }
                if let Some(explainer) = &explainer {
                    let tree = self.cf_explanation(explainer, index);
                    hit.explain(tree, RetrieverKind::Cf, "cf", candidates);
                }
            }
        }
        // What BM25 read the query's unheld words as (its expansions are cached by now), where
        // its list counted in the hits (a weight of 0 beside a weighted list leaves it out).
        let bm25_counted =
            fused.ran(RetrieverKind::Bm25) && (request.weights.of(RetrieverKind::Bm25) > 0.0 || fused.weightless);
        let mut did_you_mean = match query.filter(|_| bm25_counted) {
            Some(query) => self.lexical.did_you_mean(query, params, |row| self.stored_item_at(row))?,
            None => None,
        };
        // The query read is trimmed; the suggestion keeps the whitespace that ended the query
        // as typed, which says its last word is finished (`bm25_params`), so searching it
        // under `prefix: last` reads that word as the query did.
        if let (Some(suggested), Some(typed)) = (did_you_mean.as_mut(), request.query.as_deref()) {
            suggested.query.push_str(&typed[typed.trim_end().len()..]);
        }
        let facets = self.facets(&request.facets, &fused, &mut timings)?;
        let mut results = self.answer(hits, &fused, (&request.filters, &request.exclude), facets, start, timings);
        results.rerank_cut = cut;
        results.did_you_mean = did_you_mean;
        // Only hybrid mode asks a user's CF list beside a query (bm25 and dense never do).
        let no_interactions =
            request.mode == crate::request::Mode::Hybrid && request.user.is_some() && self.cf.is_none();
        let no_cf_note = match (no_cf, &user) {
            (true, Some(user)) => self.no_cf_note(&user.history, request.mode != crate::request::Mode::Cf),
            _ => String::new(),
        };
        let notes = [
            (browse == Browse::Plain, BROWSE_NOTE),
            (browse == Browse::ForUser, BROWSE_FOR_USER_NOTE),
            (browse == Browse::NoCf, BROWSE_NO_CF_NOTE),
            (unread_dense, UNREAD_NOTE),
            (unread_rerank, UNREAD_RERANK_NOTE),
            (cf_query_unread, CF_QUERY_NOTE),
            (no_cf, no_cf_note.as_str()),
            (no_interactions, super::NO_INTERACTIONS_NOTE),
        ];
        for (at, note) in notes.into_iter().filter(|n| n.0).map(|n| n.1).enumerate() {
            results.notes.insert(at, note.to_string());
        }
        results.notes.extend(cut.map(|cut| cut.note()));
        results.notes.extend(unexplained);
        Ok(results)
    }

    /// A browse's first stage ([`browses`]): every item `request`'s filters and exclusions
    /// allow ([`Engine::browsed`]), each scored 0 with no retriever's part.
    ///
    /// # Errors
    /// A filter on a field no item holds, or of the wrong type.
    fn browse(&self, request: &SearchRequest, timings: &mut Timings) -> Result<FirstStage<'static>> {
        self.lexical.check(self.requested_bm25(request))?;
        let hits = self.browsed(request, &[], timings)?;
        let fused =
            Fused { hits, ranges: crate::combination::ScoreRanges::of(&[]), fusion_name: "browse", weightless: false };
        Ok(FirstStage {
            query: None,
            user: None,
            fused,
            query_states: None,
            unread: false,
            unread_dense: false,
            no_cf: false,
        })
    }

    /// Every item `request`'s filters and exclusions allow (deleted ones never) that `ranked`
    /// does not hold, in row order (the catalog's, then items written live), each scored 0
    /// with no retriever's part. O(items) time and memory per request.
    ///
    /// # Errors
    /// A filter on a field no item holds, or of the wrong type.
    fn browsed(
        &self,
        request: &SearchRequest,
        ranked: &[crate::fusion::FusedHit],
        timings: &mut Timings,
    ) -> Result<Vec<crate::fusion::FusedHit>> {
        // The rows counted before the mask is read: an item replaced live in between is then
        // missing from this answer rather than listed twice (its new row past the count, its
        // old one hidden by the mask).
        let rows = self.total_len() as u32;
        let allow = self.allow(&request.filters, &request.exclude, timings)?;
        let t = Instant::now();
        let listed: std::collections::HashSet<u32> = ranked.iter().map(|h| h.item).collect();
        let hits = (0..rows)
            .filter(|&item| allow.allows(item) && !listed.contains(&item))
            .map(|item| crate::fusion::FusedHit { item, score: 0.0, parts: Vec::new(), abstained: Vec::new() })
            .collect();
        timings.fusion_ms += ms(t);
        Ok(hits)
    }

    /// The top `depth` fused candidates of `request` (rerank settings ignored), with the
    /// features the learned combination reads.
    pub fn candidates(&self, request: &SearchRequest, depth: usize) -> Result<Vec<Candidate>> {
        let candidates = check_page(request.page(), request.candidates)?;
        request.weights.check()?;
        let first = self.search_first_stage(request, candidates, None, false, &mut Timings::default())?;
        self.candidates_of(&first.fused, depth)
    }

    /// The logits the generation's trained search reranker gives `items` (catalog indexes)
    /// for `query`, one per item, in order: raw model output, before the learned combination,
    /// as serving computes them (stored item states included). What a distilled student
    /// learns from (`hyrank train-reranker --distil-weight`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`teacher`) when the generation has no trained search
    /// reranker; an item index out of range; a model failure.
    pub fn trained_logits(&self, query: &str, items: &[u32]) -> Result<Vec<f32>> {
        use crate::rerank::Reranker;
        let trained = self
            .trained
            .as_ref()
            .ok_or_else(|| Error::invalid("teacher", "the generation has no trained search reranker to learn from"))?;
        let contents: Vec<String> =
            items.iter().map(|&i| self.item_at(i).map(|item| item.content())).collect::<Result<_>>()?;
        let texts: Vec<crate::cross::ItemText<'_>> = items
            .iter()
            .zip(&contents)
            .map(|(&index, text)| crate::cross::ItemText { index: Some(index), text })
            .collect();
        trained.score(query, &texts)
    }

    /// BM25's parameters for `request`: the generation's, with the request's changes. A query
    /// that ends in whitespace has no word being typed: its last word is not completed (the
    /// query the engine reads is trimmed, `crate::request::query_text`).
    fn bm25_params(&self, request: &SearchRequest) -> crate::lexical::Bm25Params {
        let mut params = self.requested_bm25(request);
        if request.query.as_deref().is_some_and(|q| q.ends_with(char::is_whitespace)) {
            params.prefix = crate::lexical::Prefix::Off;
        }
        params
    }

    /// The generation's BM25 parameters with `request`'s changes, as asked.
    fn requested_bm25(&self, request: &SearchRequest) -> crate::lexical::Bm25Params {
        let base = self.lexical.settings().bm25;
        request.bm25.map_or(base, |changes| changes.over(base))
    }

    /// Checks (after the caller's `check_page`, which gives `candidates`) a search's retrievers
    /// against what it gives (query, user), encodes the query
    /// (keeping its states after the first `query_layers` layers, for the rerank stage, when
    /// given), then runs the retrievers and fuses their lists. Whether the model reads the
    /// query is asked when the dense list or, with `reranks`, the reranker would read it.
    fn search_first_stage<'a>(
        &self,
        request: &'a SearchRequest,
        candidates: usize,
        query_layers: Option<usize>,
        reranks: bool,
        timings: &mut Timings,
    ) -> Result<FirstStage<'a>> {
        // Checked whatever the mode, so that `explain` never turns a served request into a 400.
        self.lexical.check(self.requested_bm25(request))?;
        let query = crate::request::query_text(request.query.as_deref());
        let kinds = request.mode.retrievers(query.is_some(), request.user.is_some(), self.cf.is_some())?;
        // An id no user can have is refused whether or not CF would look the user up.
        if let Some(id) = request.user.as_deref() {
            super::live::check_user_id(id)?;
        }
        // A generation built without interactions has no CF: cf mode, and a hybrid search for a
        // user without a query, are unavailable (422), and a hybrid search for a user with one
        // answers by content, whoever the user is (it was a 404 for a user no event had named
        // yet, and served once one had).
        if kinds.contains(&RetrieverKind::Cf) {
            self.collaborative()?;
        }
        let live = match request.user.as_deref() {
            Some(id) if self.cf.is_some() => Some(self.live_user(id)?),
            _ => None,
        };
        let allow = self.allow(&request.filters, &request.exclude, timings)?;
        let live_items = self.live_items();
        // A query has no items of its own.
        let mean = self.floor_mean(&request.fusion, &live_items, &[]);
        let bm25 =
            |query: &'a str| Retriever::Bm25 { index: &self.lexical, query, params: Some(self.bm25_params(request)) };
        let dense = kinds.contains(&RetrieverKind::Dense);
        let wants_cf = kinds.contains(&RetrieverKind::Cf);
        // BM25 does not need the query's vector: when both run, it runs beside the encode
        // (timed on its own; the two overlap in `total_ms`).
        let mut early_bm25 = None;
        let encoded = match (dense, query) {
            (true, Some(query)) => {
                let encode = || {
                    let t = Instant::now();
                    (self.runtime.embed_query_keeping(query, query_layers), ms(t))
                };
                let (encoded, took) = if kinds.contains(&RetrieverKind::Bm25) {
                    let (encoded, listed) = self.runtime.encode_beside(encode, || {
                        let t = Instant::now();
                        (bm25(query).retrieve(candidates, &allow), ms(t))
                    });
                    early_bm25 = Some(listed);
                    encoded
                } else {
                    encode()
                };
                timings.embed_ms = took;
                Some(encoded?)
            }
            _ => None,
        };
        // A query the model reads none of would embed to the same vector as any other such
        // query: no dense evidence, so no pass (the encode answers `None`) and an empty dense
        // list (BM25 and CF decide). A rerank without a dense list asks the same question.
        let unread = match (&encoded, query) {
            (Some(encoded), _) => encoded.is_none(),
            (None, Some(query)) if reranks => !self.runtime.reads(query)?,
            _ => false,
        };
        let (vector, query_states) = match encoded.flatten() {
            Some((vector, states)) => (Some(vector), states),
            None => (None, None),
        };
        let cf = match (kinds.contains(&RetrieverKind::Cf), &live) {
            (true, Some(user)) => {
                let cf = self.collaborative()?;
                Some((cf, self.user_vector(cf, user)?))
            }
            _ => None,
        };
        let user = live.map(|l| l.record);
        let seeds = user.as_ref().map(|u| self.cf_seeds(&u.history)).unwrap_or_default();
        let own = user.as_ref().map(|u| self.cf_own(&u.history)).unwrap_or_default();
        let mut retrievers = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let retriever = match kind {
                RetrieverKind::Bm25 => match early_bm25.take() {
                    Some((list, took)) => {
                        timings.retrieve_ms.insert(RetrieverKind::Bm25.name().to_string(), took);
                        Retriever::Ready(list?)
                    }
                    None => bm25(query.unwrap_or_default()),
                },
                RetrieverKind::Dense => Retriever::Dense {
                    index: &self.dense,
                    live: Some(&live_items),
                    vector: vector.as_ref().map(|v| v.as_slice()),
                    mean: mean.as_deref().map(Vec::as_slice),
                },
                RetrieverKind::Cf => {
                    // Mode::retrievers picks CF only with a user, whose factors were read above.
                    let (cf, factors) = cf.as_ref().ok_or_else(|| Error::invalid("user", "cf needs a user"))?;
                    // No factors (ALS on a history it reads nothing in): no CF list, as
                    // recommend; the other retrievers decide.
                    match self.cf_retriever(cf, factors.as_deref(), None, &seeds, &own, request.cold_items) {
                        Some(retriever) => retriever,
                        None => continue,
                    }
                }
            };
            retrievers.push((retriever, request.weights.of(kind)));
        }
        let fused = self.retrieve_and_fuse(&retrievers, candidates, &allow, &request.fusion, timings)?;
        // CF was to rank (a user, in a mode with CF) and had no opinion: no list ran.
        let no_cf = wants_cf && !fused.ran(RetrieverKind::Cf);
        Ok(FirstStage { query, user, fused, query_states, unread, unread_dense: unread && dense, no_cf })
    }
}
