//! What search, recommend and similar share: the allow mask of a request's filters, running
//! and fusing the retrievers (timed under each retriever's name), turning fused hits into
//! results, and the rerank window. A fix to filtering, timing or reranking is made here once.

use std::sync::Arc;
use std::time::Instant;

use super::Engine;
use crate::call::Call;
use crate::combination::{Features, ScoreRanges};
use crate::cross::ItemText;
use crate::embed::QueryStates;
use crate::error::{Error, Result};
use crate::explain::{CombinedScore, RerankScore, RetrieverKind, ScoreBreakdown};
use crate::filter::{self, matcher, Filters};
use crate::fusion::{fuse, FusedHit, Fusion};
use crate::lexical::Highlighter;
use crate::request::{Candidate, Hit, Page, RerankCut, Results, Timings};
use crate::rerank::{Combine, RerankPlan};
use crate::retrieve::{Allow, Retriever};

/// The notes a response carries at most, one more saying how many were left out.
const MAX_NOTES: usize = 10;

/// The retrievers' fused output for one request.
pub(super) struct Fused {
    /// Best first.
    pub hits: Vec<FusedHit>,
    /// Each retriever's score range, for the learned combination's features.
    pub ranges: ScoreRanges,
    /// The fusion's name, which the contributions follow even over one list.
    pub fusion_name: &'static str,
    /// Every list that ran weighed 0 ([`WEIGHTLESS_NOTE`]).
    pub weightless: bool,
}

/// What a response says when every list it fused weighed 0: the request is valid, but its
/// order is no ranking.
pub(crate) const WEIGHTLESS_NOTE: &str = "weights: every list that ran weighs 0, so every fused score is 0 and the \
     order is the tie rule's (items more lists hold first, then the better best rank, then catalog order)";

impl Fused {
    /// Whether the request ran a retriever of `kind`: only those get an explanation tree, so
    /// a tree never explains a list the hit's score does not hold.
    pub fn ran(&self, kind: RetrieverKind) -> bool {
        self.ranges.has(kind)
    }
}

/// Milliseconds since `since`.
pub(super) fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// One reranked window entry before it becomes a [`Hit`]: only the best `k` are built, each
/// reading its item from the store once.
struct Reranked<'a> {
    fused: &'a FusedHit,
    score: f64,
    rerank: RerankScore,
    combination: Option<CombinedScore>,
}

/// A hit's final score: the learned combination when there is one, else the fused score plus
/// the rerank contribution.
fn final_score(fused: &FusedHit, rerank: Option<&RerankScore>, combination: Option<&CombinedScore>) -> f64 {
    match combination {
        Some(combined) => combined.bias + combined.features.iter().map(|f| f.contribution).sum::<f64>(),
        None => fused.score + rerank.map_or(0.0, |r| r.contribution),
    }
}

impl Engine {
    /// The items a request's `filters` let through less those meeting any of its `exclude`
    /// conditions, every condition checked against the fields the generation has.
    ///
    /// The mask's time goes in `timings.filter_ms`.
    ///
    /// # Errors
    /// A condition on a field no item has, or a malformed one, naming `filters.<field>` or
    /// `exclude.<field>`.
    pub(super) fn allow(&self, filters: &Filters, exclude: &Filters, timings: &mut Timings) -> Result<Allow> {
        // Deleted items are out of every list, whatever the filters.
        if filters.is_empty() && exclude.is_empty() {
            return Ok(self.unfiltered_allow());
        }
        let t = Instant::now();
        let hidden = self.hidden();
        let allow = self.filter_mask(filters, exclude)?;
        let allow = if hidden.is_empty() { allow } else { allow.excluding(self.total_len(), hidden.iter().copied()) };
        timings.filter_ms = ms(t);
        Ok(allow)
    }

    /// A note for each part of `filters` and of `exclude` ([`filter::atoms`]) that no visible
    /// item meets, stored or written live ([`filter::unmet_note`]). Empty without either.
    pub(super) fn filter_notes(&self, filters: &Filters, exclude: &Filters) -> Vec<String> {
        if filters.is_empty() && exclude.is_empty() {
            return Vec::new();
        }
        let (live, live_items, hidden) = (self.live_fields(), self.live_items(), self.hidden());
        let stored = self.fields.len();
        // An item's own fields as a request sees them: replaced live, or as stored or written.
        let visible = |index: u32| !hidden.contains(&index);
        // Whether a visible item meets `atom` on field `name`, as a request sees its fields.
        let met = |name: &str, atom: &filter::Condition| {
            let mut met = false;
            self.field_index.matching(name, atom, &mut |item| {
                // The first visible item settles it; the rest of the run costs a branch each.
                met = met || (visible(item) && !live.contains_key(&item));
            });
            met || live.iter().any(|(&item, fields)| visible(item) && atom.matches(fields.get(name)))
                || live_items.entries.iter().enumerate().any(|(offset, entry)| {
                    let item = (stored + offset) as u32;
                    visible(item) && !live.contains_key(&item) && atom.matches(entry.item.fields.get(name))
                })
        };
        // Field `name`'s text values written live and visible, which a note can suggest.
        let live_values = |name: &str| {
            let written = live.iter().filter(|(&item, _)| visible(item)).map(|(_, fields)| fields.get(name));
            let put = live_items.entries.iter().enumerate().filter_map(|(offset, entry)| {
                let item = (stored + offset) as u32;
                (visible(item) && !live.contains_key(&item)).then(|| entry.item.fields.get(name))
            });
            let mut values: Vec<String> = written
                .chain(put)
                .flat_map(|value| match value {
                    Some(crate::item::FieldValue::Text(text)) => vec![text.clone()],
                    Some(crate::item::FieldValue::List(texts)) => texts.clone(),
                    _ => Vec::new(),
                })
                .collect();
            values.sort_unstable();
            values.dedup();
            values
        };
        let (mut notes, mut more) = (Vec::new(), 0);
        for (list, conditions) in [("filters", filters), ("exclude", exclude)] {
            for (name, condition) in conditions {
                // Read once per field, and only when a note needs them.
                let mut live_of_field = None;
                for atom in filter::atoms(condition) {
                    if met(name, &atom) {
                        continue;
                    }
                    // A list of thousands of unknown strings is answered with a bounded note.
                    if notes.len() < MAX_NOTES {
                        // A value the generation holds is suggested only while a visible item
                        // holds it (its items may all be deleted, or updated to another).
                        let held = |value: &str| met(name, &filter::Condition::Text(value.to_string()));
                        let live = live_of_field.get_or_insert_with(|| live_values(name));
                        notes.push(filter::unmet_note(&self.field_index, list, name, &atom, live, &held));
                    } else {
                        more += 1;
                    }
                }
            }
        }
        if more > 0 {
            notes.push(format!("and {more} more conditions no item meets"));
        }
        notes
    }

    /// Every item but the deleted ones. The mask is built once per delete (keyed by the log's
    /// last delete), not per request: a request without filters allocated nothing before
    /// deletes existed, and should not start allocating `len` flags for them. Built outside the
    /// cache's lock, which every unfiltered search takes ([`Engine::hidden`] may read the store).
    fn unfiltered_allow(&self) -> Allow {
        let live = self.live_items();
        let version = self.hidden_version(&live);
        {
            let cached = self.hidden_mask.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, mask)) = &*cached {
                if *at == version {
                    return mask.clone();
                }
            }
        }
        let hidden = self.hidden_at(&live);
        let mask = if hidden.is_empty() {
            Allow::all()
        } else {
            Allow::all().excluding(self.total_len(), hidden.iter().copied())
        };
        let mut cached = self.hidden_mask.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A request on an older snapshot does not replace a newer mask (nor one ahead of it in
        // either part).
        if cached.as_ref().is_none_or(|(at, _)| crate::lexical::covers(version, *at)) {
            *cached = Some((version, mask.clone()));
        }
        mask
    }

    fn filter_mask(&self, filters: &Filters, exclude: &Filters) -> Result<Allow> {
        let live = self.live_fields();
        let live_items = self.live_items();
        for (list, conditions) in [("filters", filters), ("exclude", exclude)] {
            for (name, condition) in conditions {
                let field = format!("{list}.{name}");
                if !self.holds_field(name, &live, &live_items) {
                    let reason = self.no_such_field("no item has this field".into(), &live, &live_items);
                    return Err(Error::invalid(field, reason));
                }
                if let Some(problem) = condition.problem() {
                    return Err(Error::invalid(field, problem));
                }
                // Live writes are read as the manifest's types say, so a condition no value of
                // the type matches would answer nothing (or exclude nothing), silently.
                if let Some(problem) = self.manifest.field_types.get(name).and_then(|ty| condition.problem_for(*ty)) {
                    return Err(Error::invalid(field, problem));
                }
            }
        }
        // The stored items from the index; items written live, and fields replaced live, are
        // few and read one by one.
        let (matches, excluded) = (matcher(filters), filter::excluder(exclude));
        let allowed = |fields: &_| matches(fields) && !excluded(fields);
        // No filters: every stored item (`mask` of no condition), less the excluded.
        let mut mask = filter::mask(&self.field_index, filters);
        filter::exclude(&self.field_index, exclude, &mut mask);
        mask.extend(live_items.entries.iter().map(|entry| allowed(&entry.item.fields)));
        for (&index, fields) in live.iter() {
            if let Some(slot) = mask.get_mut(index as usize) {
                *slot = allowed(fields);
            }
        }
        Ok(Allow::mask(mask))
    }

    /// Runs each retriever for `candidates` allowed items (timed in `retrieve_ms` under its
    /// name) and fuses their lists, each with its weight.
    pub(super) fn retrieve_and_fuse(
        &self,
        retrievers: &[(Retriever<'_>, f64)],
        candidates: usize,
        allow: &Allow,
        fusion: &Fusion,
        timings: &mut Timings,
    ) -> Result<Fused> {
        let mut lists = Vec::with_capacity(retrievers.len());
        for (retriever, _) in retrievers {
            let t = Instant::now();
            lists.push(retriever.retrieve(candidates, allow)?);
            // A ready list was timed where it was retrieved.
            if !matches!(retriever, Retriever::Ready(_)) {
                timings.retrieve_ms.insert(retriever.kind().name().to_string(), ms(t));
            }
        }
        let weights: Vec<f64> = retrievers.iter().map(|(_, weight)| *weight).collect();
        let t = Instant::now();
        let hits = fuse(&lists, &weights, fusion)?;
        timings.fusion_ms = ms(t);
        let weightless = !weights.is_empty() && weights.iter().all(|&w| w == 0.0);
        Ok(Fused { hits, ranges: ScoreRanges::of(&lists), fusion_name: fusion.name(), weightless })
    }

    /// The final hits, the `page` of: the fused list, or, with a rerank plan (the text it
    /// reads as the query and that query's states from its embedding pass, when kept), the
    /// fused list with its top `max(depth, k)` reranked, best first, and the rest after them
    /// in fused order, as Elasticsearch's rescore window orders them (the model and the
    /// window's order timed as rerank). The
    /// window does not move with `offset`, so pages of one size are cuts of one list and a
    /// deep page costs no more model work than the first; a page wholly past the window runs
    /// no model. Only the page's hits are built, each highlighted when a `highlighter` is given.
    pub(super) fn finish(
        &self,
        fused: &Fused,
        page: Page,
        rerank: Option<(RerankPlan<'_>, &str, Option<Arc<QueryStates>>)>,
        highlighter: Option<&Highlighter>,
        call: &Call,
        timings: &mut Timings,
    ) -> Result<(Vec<Hit>, Option<RerankCut>)> {
        let plain = |hits: &[FusedHit], skip: usize, take: usize| {
            hits.iter()
                .skip(skip)
                .take(take)
                .map(|f| self.hit(f, fused.fusion_name, None, None, highlighter))
                .collect::<Result<Vec<Hit>>>()
        };
        let Some((plan, query, states)) = rerank else {
            return Ok((plain(&fused.hits, page.offset, page.k)?, None));
        };
        let width = plan.depth.max(page.k).min(fused.hits.len());
        if page.offset >= width {
            return Ok((plain(&fused.hits, page.offset, page.k)?, None));
        }
        let t = Instant::now();
        let window: Vec<&FusedHit> = fused.hits[..width].iter().collect();
        let budget = plan.budget.or_else(|| self.runtime().rerank_budget());
        let until = budget.map(|budget| call.arrived() + budget);
        let mut reranked = self.rerank(&plan, query, states.as_ref(), &window, fused, until, call)?;
        // The budget may have left the window's tail unscored: those keep their fused order,
        // below the reranked ones, as past a window.
        let done = reranked.len();
        let cut = budget.filter(|_| done < width).map(|budget| RerankCut {
            reranked: done,
            depth: width,
            budget_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
        });
        // Best first. Equal final scores keep their fused order (`sort_by` is stable and the
        // window is in fused order), so they follow the fused list's tie rule (more lists, then
        // the better best rank, then catalog order) and a rerank weight of 0 leaves the order
        // as it was. A reranked score is only comparable among hits that were all reranked,
        // which is why a request for more hits than the depth reranks them all.
        reranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        timings.rerank_ms = ms(t);
        let mut hits = reranked
            .into_iter()
            .skip(page.offset)
            .take(page.k)
            .map(|r| self.hit(r.fused, fused.fusion_name, Some(r.rerank), r.combination, highlighter))
            .collect::<Result<Vec<_>>>()?;
        // A page reaching past the reranked hits goes on in fused order.
        let rest: Vec<Hit> = plain(
            &fused.hits[done..],
            page.offset.saturating_sub(done),
            page.end().saturating_sub(done.max(page.offset)),
        )?;
        hits.extend(rest);
        Ok((hits, cut))
    }

    /// Checks the fields a search counts ([`crate::facets::check`]): each must be a field some
    /// item holds, stored or written live, as a filter's must.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`facets`) naming the field and listing the known ones.
    pub(super) fn check_facets(&self, names: &[String]) -> Result<()> {
        crate::facets::check(names)?;
        self.check_fields("facets", names.iter().map(String::as_str))
    }

    /// Checks the keys a request sorts by ([`crate::sort::check`]), each field as a facet's.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`sort`) naming the field and listing the known ones.
    pub(super) fn check_sort(&self, keys: &[crate::sort::SortKey]) -> Result<()> {
        crate::sort::check(keys)?;
        self.check_fields("sort", keys.iter().map(|key| key.field.as_str()))
    }

    /// Each of `names` a field some item holds, or an error about `what` naming the first that
    /// is not and listing the fields there are.
    fn check_fields<'a>(&self, what: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
        let mut names = names.peekable();
        if names.peek().is_none() {
            return Ok(());
        }
        let (live, live_items) = (self.live_fields(), self.live_items());
        match names.find(|name| !self.holds_field(name, &live, &live_items)) {
            Some(name) => {
                let reason = self.no_such_field(format!("no item has a field {name:?}"), &live, &live_items);
                Err(Error::invalid(what, reason))
            }
            None => Ok(()),
        }
    }

    /// The fields of the item at `item` as a request sees them: replaced live, or as stored or
    /// written, read in place.
    ///
    /// # Errors
    /// [`Error::BadIndex`] for an index no item has.
    fn fields_of<'a>(
        &'a self,
        item: u32,
        live: &'a super::LiveFields,
        live_items: &'a crate::live::items::LiveItems,
    ) -> Result<&'a std::collections::BTreeMap<String, crate::item::FieldValue>> {
        let index = item as usize;
        live.get(&item)
            .or_else(|| self.fields.get(index))
            .or_else(|| live_items.entries.get(index.checked_sub(self.fields.len())?).map(|e| &e.item.fields))
            .ok_or_else(|| Error::BadIndex {
                path: self.dir.clone(),
                reason: format!("item index {index} has no fields"),
            })
    }

    /// `f` of the fields of every hit of `fused`, in the list's order ([`Engine::fields_of`]):
    /// what sorts and facets read.
    ///
    /// # Errors
    /// As [`Engine::fields_of`].
    fn with_list_fields<R>(
        &self,
        fused: &Fused,
        f: impl FnOnce(&[&std::collections::BTreeMap<String, crate::item::FieldValue>]) -> R,
    ) -> Result<R> {
        let (live, live_items) = (self.live_fields(), self.live_items());
        let fields =
            fused.hits.iter().map(|hit| self.fields_of(hit.item, &live, &live_items)).collect::<Result<Vec<_>>>()?;
        Ok(f(&fields))
    }

    /// `fused`'s hits in the order of `keys` ([`crate::sort`]), when there are any, up to the
    /// end of `page` (the rest after them, unordered: no page of this request shows them);
    /// the time goes to `fusion_ms`.
    ///
    /// # Errors
    /// As [`Engine::fields_of`].
    pub(super) fn sort(
        &self,
        keys: &[crate::sort::SortKey],
        page: Page,
        fused: &mut Fused,
        timings: &mut Timings,
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let order = self
            .with_list_fields(fused, |fields| crate::sort::order(keys, fields, page.offset.saturating_add(page.k)))?;
        let mut hits: Vec<Option<FusedHit>> = std::mem::take(&mut fused.hits).into_iter().map(Some).collect();
        fused.hits = order.into_iter().filter_map(|i| hits[i].take()).collect();
        timings.fusion_ms += ms(start);
        Ok(())
    }

    /// Whether some item holds the field `name`, stored, replaced live or written live: what
    /// a filter's or a facet's field must be.
    fn holds_field(&self, name: &str, live: &super::LiveFields, live_items: &crate::live::items::LiveItems) -> bool {
        self.field_names.contains(name)
            || live.values().any(|fields| fields.contains_key(name))
            || live_items.entries.iter().any(|e| e.item.fields.contains_key(name))
    }

    /// `said` (that a field is unknown), then the fields there are, or that the items have
    /// none: a catalog of ids, titles and texts only (a BEIR corpus) has nothing to list.
    fn no_such_field(
        &self,
        said: String,
        live: &super::LiveFields,
        live_items: &crate::live::items::LiveItems,
    ) -> String {
        let known = self.known_fields(live, live_items);
        match known.is_empty() {
            true => format!("{said}: this catalog's items have no fields (only id, title and text)"),
            false => format!("{said}; fields are {known:?}"),
        }
    }

    /// Every field name an item holds, stored or written live, in order: what an error about
    /// an unknown field lists.
    fn known_fields<'a>(
        &'a self,
        live: &'a super::LiveFields,
        live_items: &'a crate::live::items::LiveItems,
    ) -> std::collections::BTreeSet<&'a str> {
        let stored = self.field_names.iter().map(String::as_str);
        let replaced = live.values().flat_map(|fields| fields.keys().map(String::as_str));
        let written = live_items.entries.iter().flat_map(|e| e.item.fields.keys().map(String::as_str));
        stored.chain(replaced).chain(written).collect()
    }

    /// The counts of the fields `names` over every hit of `fused`, each hit's fields as a
    /// request sees them (replaced live, or as stored or written), read in place; timed as
    /// `facets_ms`.
    pub(super) fn facets(
        &self,
        names: &[String],
        fused: &Fused,
        timings: &mut Timings,
    ) -> Result<std::collections::BTreeMap<String, crate::facets::FacetCounts>> {
        if names.is_empty() {
            return Ok(Default::default());
        }
        let start = Instant::now();
        let counts = self.with_list_fields(fused, |fields| crate::facets::count(names, fields.iter().copied()))?;
        timings.facets_ms = ms(start);
        Ok(counts)
    }

    /// The answer: `hits`, the request's page of `fused`, with the list's length, the notes on
    /// its `conditions` (filters, exclude), its `facets` and the time since `start`.
    pub(super) fn answer(
        &self,
        hits: Vec<Hit>,
        fused: &Fused,
        conditions: (&Filters, &Filters),
        facets: std::collections::BTreeMap<String, crate::facets::FacetCounts>,
        start: Instant,
        mut timings: Timings,
    ) -> Results {
        // Timed with the rest: a note's suggestions are part of the answer.
        let mut notes = self.filter_notes(conditions.0, conditions.1);
        if fused.weightless {
            notes.insert(0, WEIGHTLESS_NOTE.to_string());
        }
        timings.total_ms = ms(start);
        let generation = self.manifest.generation.clone();
        Results {
            hits,
            total: fused.hits.len(),
            generation,
            timings,
            notes,
            facets,
            rerank_cut: None,
            did_you_mean: None,
        }
    }

    /// Reranks `window`: the plan's reranker scores each (query, item text) pair, and the score
    /// enters the final score as the plan says. Entries come back in window order. An item's
    /// text is read from the store only when the reranker reads it (a PreTTR reranker with
    /// stored states does not).
    /// With `until` (the request's budget) the scored entries are a prefix of the window, as
    /// many as were scored in time ([`crate::rerank::score_within`]), and none when no rerank
    /// turn came in time. Nothing is scored once `call`'s client has gone.
    #[allow(clippy::too_many_arguments)]
    fn rerank<'a>(
        &self,
        plan: &RerankPlan<'_>,
        query: &str,
        states: Option<&Arc<QueryStates>>,
        window: &[&'a FusedHit],
        fused: &Fused,
        until: Option<Instant>,
        call: &Call,
    ) -> Result<Vec<Reranked<'a>>> {
        let contents = window
            .iter()
            .map(|h| {
                if plan.reranker.reads_text(h.item) {
                    self.item_at(h.item).map(|item| Some(item.content()))
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let items: Vec<ItemText<'_>> = window
            .iter()
            .zip(&contents)
            .map(|(h, text)| ItemText { index: Some(h.item), text: text.as_deref().unwrap_or_default() })
            .collect();
        // Every score cached: no model runs, so there is no turn to wait for (a popular query
        // would otherwise queue behind costly reranks only to read its cache); `score_within`
        // serves cached passes whatever the budget.
        let _turn = match plan.reranker.holds_scores(query, &items) {
            true => None,
            false => match self.runtime().rerank_turn(until, call)? {
                Some(turn) => Some(turn),
                None => return Ok(Vec::new()),
            },
        };
        let times = self.runtime().pass_times();
        let scores = crate::rerank::score_within(plan.reranker, query, states, &items, until, times, call)?;
        window
            .iter()
            .zip(scores)
            .map(|(&hit, raw)| {
                let (weight, combination) = match plan.combine {
                    Combine::Add { weight } => (weight, None),
                    Combine::Learned(combination) => {
                        let features = Features { rerank: raw, ..fused.ranges.features(hit) };
                        let (_, parts) = combination.apply(&features);
                        (combination.rerank_weight(), Some(CombinedScore { bias: combination.bias, features: parts }))
                    }
                };
                let rerank = RerankScore {
                    reranker: plan.reranker.name().to_string(),
                    raw_score: raw,
                    weight,
                    contribution: weight * f64::from(raw),
                };
                let score = final_score(hit, Some(&rerank), combination.as_ref());
                Ok(Reranked { fused: hit, score, rerank, combination })
            })
            .collect()
    }

    /// A hit whose final score is the fused score plus the rerank contribution, or the learned
    /// combination when there is one.
    fn hit(
        &self,
        fused: &FusedHit,
        fusion: &str,
        rerank: Option<RerankScore>,
        combination: Option<CombinedScore>,
        highlighter: Option<&Highlighter>,
    ) -> Result<Hit> {
        let item = self.item_at(fused.item)?;
        let final_score = final_score(fused, rerank.as_ref(), combination.as_ref());
        let highlights = highlighter.map(|h| h.highlight(&item)).filter(|h| !h.is_empty());
        Ok(Hit {
            id: item.id,
            title: item.title,
            fields: item.fields,
            score: final_score,
            breakdown: ScoreBreakdown {
                fusion: fusion.to_string(),
                retrievers: fused.parts.clone(),
                abstained: fused.abstained.clone(),
                fused_score: fused.score,
                rerank,
                combination,
                final_score,
            },
            explanations: Vec::new(),
            highlights,
        })
    }

    /// The top `depth` fused candidates with the features the learned combination reads: what
    /// the reranker trainer mines negatives from and fits the combination on.
    pub(super) fn candidates_of(&self, fused: &Fused, depth: usize) -> Result<Vec<Candidate>> {
        fused
            .hits
            .iter()
            .take(depth)
            .map(|hit| {
                let item = self.item_at(hit.item)?;
                Ok(Candidate {
                    content: item.content(),
                    id: item.id,
                    fused_score: hit.score,
                    features: fused.ranges.features(hit),
                })
            })
            .collect()
    }
}
