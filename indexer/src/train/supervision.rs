//! Step 1 and 2 of training: the supervision read into examples (judged queries, a click log,
//! or users replayed as of just before their held-out items), the seeded split into training
//! and validation, and where each example's candidates come from.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use hyrank_engine::cf::{self, Csr};
use hyrank_engine::engine::UserView;
use hyrank_engine::request::{Candidate, SearchRequest};
use hyrank_engine::retrieve::CfItems;
use hyrank_engine::store::Interaction;
use hyrank_engine::{Engine, RecommendRequest};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{Supervision, MIN_CONTEXT_ITEMS};
use crate::error::{IndexError, Result};
use crate::eval::metrics::Judgments;
use crate::judgments::{read_click_log, read_qrels, read_queries};

/// One query (or context) with what is known about it.
#[derive(Debug, Clone)]
pub(super) struct Example {
    pub(super) text: String,
    /// The judged query's id: its own document, where the corpus holds one under the same id
    /// (ArguAna, Quora), is no candidate for it, as `hyrank eval search` drops it by default.
    pub(super) query_id: Option<String>,
    /// Item id → grade (≥ 1 relevant, 0 judged not relevant).
    pub(super) judged: Judgments,
    /// Examples of one group (one user's replays; queries linked by a shared relevant item)
    /// fall on the same side of the split.
    pub(super) group: usize,
    /// For a replayed user: what the recommender knew just before the held-out item.
    pub(super) replay: Option<Replay>,
}

/// A user as they were before one held-out item.
#[derive(Debug, Clone)]
pub(super) struct Replay {
    pub(super) history: Vec<Interaction>,
    pub(super) hidden: HashSet<u32>,
    pub(super) factors: Vec<f32>,
}

/// Replays every user with enough history before their last `targets_per_user` items, with CF
/// factors from an ALS model trained without any held-out item: the candidates and the
/// combination's CF feature then look as they will for a real next item, not for one the
/// model has already fitted.
pub(super) fn replay_interactions(
    engine: &Engine,
    context_titles: usize,
    targets_per_user: usize,
) -> Result<(Vec<Example>, CfItems)> {
    let manifest = engine.manifest();
    let als = manifest.cf.clone().ok_or_else(|| IndexError::Settings {
        setting: "interactions".into(),
        reason: if manifest.ease.is_some() {
            // The trainer replays users through an ALS model fitted without their held-out
            // items; replaying an EASE generation that way would train the combination on
            // another CF model's scores than the one that serves.
            "the recommendation reranker trainer replays ALS, and this generation serves EASE; index with \
             --cf-model als to train one"
                .into()
        } else {
            "the generation was built without interactions; index with --interactions first".into()
        },
    })?;
    let users = engine.users()?;
    let mut histories = Vec::with_capacity(users.len());
    let mut triples = Vec::new();
    for user in &users {
        let mut history = user.history.clone();
        // Oldest first; the stored order breaks timestamp ties.
        history.sort_by_key(|i| i.timestamp);
        let held = if history.len() >= MIN_CONTEXT_ITEMS + targets_per_user { targets_per_user } else { 0 };
        let cut = history.len() - held;
        triples.extend(history[..cut].iter().map(|i| (user.index, i.item, i.weight)));
        histories.push((user, history, cut));
    }
    let rows = users.iter().map(|u| u.index as usize + 1).max().unwrap_or(0);
    let model = cf::train(&Csr::from_triples(rows, engine.len(), &triples), &als, |_| {})?;
    let mut examples = Vec::new();
    for (group, (user, history, cut)) in histories.iter().enumerate() {
        for position in *cut..history.len() {
            let prefix = &history[..position];
            let weights: Vec<(u32, f32)> = prefix.iter().map(|i| (i.item, i.weight)).collect();
            let Some(factors) = cf::solve_user_exact(&model, &weights) else {
                tracing::warn!(user = %user.id, "no CF solution for the replayed history; user skipped");
                continue;
            };
            let target = history[position].item;
            examples.push(Example {
                text: engine.recommend_context(prefix, context_titles)?,
                query_id: None,
                judged: [(engine.item_ids()[target as usize].clone(), 1)].into_iter().collect(),
                group,
                replay: Some(Replay {
                    history: prefix.to_vec(),
                    hidden: history[position + 1..].iter().map(|i| i.item).collect(),
                    factors,
                }),
            });
        }
    }
    if examples.is_empty() {
        return Err(IndexError::Settings {
            setting: "interactions".into(),
            reason: format!(
                "no user has {} items or more, so there is nothing to hold out",
                MIN_CONTEXT_ITEMS + targets_per_user
            ),
        });
    }
    let items = CfItems::build(&model.item_factors, engine.manifest().hnsw)?;
    Ok((examples, items))
}

pub(super) fn input_error(path: &Path, reason: impl Into<String>) -> IndexError {
    IndexError::Input { path: path.to_path_buf(), reason: reason.into() }
}

/// Reads the supervision into examples, checking every item against the catalog; replayed
/// interactions come with the held-out CF item factors their candidates are retrieved with.
pub(super) fn read_supervision(supervision: &Supervision, engine: &Engine) -> Result<(Vec<Example>, Option<CfItems>)> {
    let known: HashSet<&str> = engine.item_ids().iter().map(String::as_str).collect();
    let mut examples = Vec::new();
    match supervision {
        Supervision::Judgments { queries, qrels } => {
            let judgments = read_qrels(qrels)?;
            let texts = read_queries(queries, |id| judgments.contains_key(id))?;
            for (query_id, judged) in judgments {
                let text = texts.get(&query_id).ok_or_else(|| {
                    input_error(qrels, format!("query-id {query_id:?} has no text in {}", queries.display()))
                })?;
                if let Some(missing) = judged.keys().find(|id| !known.contains(id.as_str())) {
                    return Err(input_error(
                        qrels,
                        format!("query-id {query_id:?}: corpus-id {missing:?} is not in the generation's catalog"),
                    ));
                }
                examples.push(Example {
                    text: text.clone(),
                    query_id: Some(query_id.clone()),
                    judged,
                    group: examples.len(),
                    replay: None,
                });
            }
        }
        Supervision::Clicks(path) => {
            let by_query = read_click_log(path, &known)?;
            examples.extend(by_query.into_iter().enumerate().map(|(group, (text, judged))| Example {
                text,
                query_id: None,
                judged,
                group,
                replay: None,
            }));
        }
        &Supervision::Interactions { context_titles, targets_per_user } => {
            let (examples, items) = replay_interactions(engine, context_titles, targets_per_user)?;
            return Ok((examples, Some(items)));
        }
    }
    examples.retain(|e| e.judged.values().any(|&g| g >= 1));
    if examples.is_empty() {
        return Err(IndexError::Settings {
            setting: "supervision".into(),
            reason: "no query has a positive (grade ≥ 1 or clicked) item".into(),
        });
    }
    Ok((examples, None))
}

/// Puts examples linked by a relevant (grade ≥ 1) item, directly or through a chain of other
/// examples, into one group: the connected components of the query–item graph, found with a
/// union–find over examples. Groups are numbered by their first example, so the split stays a
/// function of the seed. Returns the number of groups.
pub(super) fn group_by_shared_items(examples: &mut [Example]) -> usize {
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut parent: Vec<usize> = (0..examples.len()).collect();
    let mut first_with: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, example) in examples.iter().enumerate() {
        for (item, _) in example.judged.iter().filter(|(_, &grade)| grade >= 1) {
            let other = *first_with.entry(item.as_str()).or_insert(index);
            let (a, b) = (root(&mut parent, index), root(&mut parent, other));
            // The smaller index becomes the root: the group's number is its first example.
            parent[a.max(b)] = a.min(b);
        }
    }
    let groups: Vec<usize> = (0..examples.len()).map(|index| root(&mut parent, index)).collect();
    for (example, group) in examples.iter_mut().zip(&groups) {
        example.group = *group;
    }
    groups.iter().collect::<BTreeSet<_>>().len()
}

/// Splits the examples into training and validation by group (a user's replays, or queries
/// sharing a relevant item, stay together), in a seeded order: `(train, validation)`, the
/// training order shuffled.
///
/// Validation takes whole groups in the shuffled order until it holds `validation_fraction`
/// of them (`round(fraction × groups)`, at least one, leaving at least one). With
/// `by_queries` (queries grouped by shared items, whose groups differ in size) the fraction
/// counts queries instead, and a group that would carry validation past it is skipped, so
/// that one large group cannot fill it (when every group is larger, the smallest is taken).
/// When every group is one query both read the same: the first `round(fraction × queries)`.
///
/// # Errors
///
/// [`IndexError::Settings`] when there are fewer than two groups, or, `by_queries`, when one
/// group holds more than `1 − validation_fraction` of the queries.
pub(super) fn split(
    examples: Vec<Example>,
    validation_fraction: f64,
    by_queries: bool,
    rng: &mut StdRng,
) -> Result<(Vec<Example>, Vec<Example>)> {
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for example in &examples {
        *sizes.entry(example.group).or_default() += 1;
    }
    let mut groups_order: Vec<usize> = sizes.keys().copied().collect();
    groups_order.shuffle(rng);
    let settings_error = |reason: String| IndexError::Settings { setting: "supervision".into(), reason };
    if groups_order.len() < 2 {
        return Err(settings_error(
            "at least two queries (or users, or groups of queries sharing a relevant item) with positives are \
             needed (one to train on, one to validate)"
                .into(),
        ));
    }
    let weight = |group: &usize| if by_queries { sizes[group] } else { 1 };
    let total: usize = groups_order.iter().map(weight).sum();
    let largest = sizes.values().copied().max().unwrap_or(0);
    if by_queries {
        tracing::info!(groups = sizes.len(), largest, "validation split: queries linked by shared relevant items");
        if largest as f64 > (1.0 - validation_fraction) * total as f64 {
            return Err(settings_error(format!(
                "{largest} of the {total} queries are linked by shared relevant items into one group, more than \
                 the training side may hold; split by query (--validation-split queries)"
            )));
        }
    }
    let target = ((total as f64 * validation_fraction).round() as usize).clamp(1, total - 1);
    let mut validation_groups = BTreeSet::new();
    let mut taken = 0;
    for group in &groups_order {
        if taken + weight(group) <= target {
            taken += weight(group);
            validation_groups.insert(*group);
        }
    }
    if validation_groups.is_empty() {
        let smallest = groups_order.iter().copied().min_by_key(|g| sizes[g]).expect("two groups or more");
        validation_groups.insert(smallest);
    }
    let rank: BTreeMap<usize, usize> = groups_order.iter().enumerate().map(|(rank, &g)| (g, rank)).collect();
    let mut examples = examples;
    examples.sort_by_key(|e| rank[&e.group]);
    let (validation, mut train_examples): (Vec<Example>, Vec<Example>) =
        examples.into_iter().partition(|e| validation_groups.contains(&e.group));
    // A user's replays are adjacent after the sort; shuffle the training order across users.
    train_examples.shuffle(rng);
    Ok((train_examples, validation))
}

/// Where candidates come from: the generation's hybrid search for a query, or its
/// recommender replayed for a user (with the item factors of the model trained without the
/// held-out items).
pub(super) struct Miner<'a> {
    pub(super) engine: &'a Engine,
    pub(super) replay_items: Option<&'a CfItems>,
    pub(super) request: RecommendRequest,
}

impl Miner<'_> {
    pub(super) fn candidates(&self, example: &Example, depth: usize) -> Result<Vec<Candidate>> {
        Ok(match (&example.replay, self.replay_items) {
            (Some(replay), Some(items)) => {
                let view = UserView {
                    history: &replay.history,
                    seen: &[],
                    hidden: Some(&replay.hidden),
                    factors: Some(&replay.factors),
                    cf_items: Some(items),
                };
                self.engine.recommend_candidates(&view, &self.request, depth)?
            }
            _ => match &example.query_id {
                Some(own) if self.engine.index_of(own).is_ok() => {
                    let mut found = self.engine.candidates(&SearchRequest::new(example.text.clone()), depth + 1)?;
                    found.retain(|c| c.id != *own);
                    found.truncate(depth);
                    found
                }
                _ => self.engine.candidates(&SearchRequest::new(example.text.clone()), depth)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn example(judged: &[(&str, i32)]) -> Example {
        Example {
            text: String::new(),
            query_id: None,
            judged: judged.iter().map(|&(item, grade)| (item.to_string(), grade)).collect(),
            group: usize::MAX,
            replay: None,
        }
    }

    /// Queries linked by a relevant item, directly or through a chain, share a group; a
    /// judged-irrelevant item (grade 0) links nothing.
    #[test]
    fn queries_sharing_a_relevant_item_form_one_group() {
        let mut examples = vec![
            example(&[("a", 1)]),
            example(&[("b", 2)]),
            example(&[("c", 1), ("a", 1)]),
            example(&[("c", 1)]),
            example(&[("b", 0), ("d", 1)]),
            example(&[("e", 1), ("b", 1)]),
        ];
        assert_eq!(group_by_shared_items(&mut examples), 3);
        let groups: Vec<usize> = examples.iter().map(|e| e.group).collect();
        assert_eq!(groups, [0, 1, 0, 0, 4, 1]);
    }

    /// However the seed falls, no item relevant to a validation query is relevant to a
    /// training query.
    #[test]
    fn the_split_by_items_keeps_relevant_items_on_one_side() {
        // Query i judges a{i % 16} and b{i % 16 / 2} relevant: 8 groups (pairs of a-items
        // share a b-item), of 6 queries (i % 16 < 8) or 4.
        let mut examples: Vec<Example> =
            (0..40).map(|i| example(&[(&format!("a{}", i % 16), 1), (&format!("b{}", i % 16 / 2), 1)])).collect();
        assert_eq!(group_by_shared_items(&mut examples), 8);
        for seed in 0..20 {
            let (train, validation) = split(examples.clone(), 0.2, true, &mut StdRng::seed_from_u64(seed)).unwrap();
            let relevant =
                |side: &[Example]| side.iter().flat_map(|e| e.judged.keys().cloned()).collect::<BTreeSet<String>>();
            // A fifth of the 40 queries: groups of 6 and 4 add up to 8 at most.
            assert!((4..=8).contains(&validation.len()), "seed {seed}: {}", validation.len());
            assert_eq!(train.len() + validation.len(), 40);
            assert!(relevant(&train).is_disjoint(&relevant(&validation)), "seed {seed}");
        }
    }

    /// One group of queries too large for the training side is refused, not silently made
    /// the validation side; a group larger than the validation fraction is skipped.
    #[test]
    fn the_split_by_items_refuses_one_giant_group_and_skips_large_ones() {
        let mut chained: Vec<Example> = (0..10).map(|i| example(&[("hub", 1), (&format!("a{i}"), 1)])).collect();
        chained.push(example(&[("alone", 1)]));
        group_by_shared_items(&mut chained);
        let error = split(chained, 0.2, true, &mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(error.to_string().contains("--validation-split queries"), "{error}");
        // A group of 4 and 16 single queries, a tenth (2) held out: the group never fits, so
        // validation is two single queries whatever the seed.
        let mut examples: Vec<Example> = (0..4).map(|i| example(&[("hub", 1), (&format!("a{i}"), 1)])).collect();
        examples.extend((0..16).map(|i| example(&[(&format!("b{i}"), 1)])));
        group_by_shared_items(&mut examples);
        for seed in 0..20 {
            let (_, validation) = split(examples.clone(), 0.1, true, &mut StdRng::seed_from_u64(seed)).unwrap();
            assert_eq!(validation.len(), 2, "seed {seed}");
            assert!(validation.iter().all(|e| !e.judged.contains_key("hub")), "seed {seed}");
        }
    }

    /// The split as it was before groups of queries (kept here to pin that users and single
    /// queries still split as the results recorded with it did).
    fn split_by_group_count(examples: Vec<Example>, fraction: f64, rng: &mut StdRng) -> (Vec<Example>, Vec<Example>) {
        let mut order: Vec<usize> = examples.iter().map(|e| e.group).collect::<BTreeSet<_>>().into_iter().collect();
        order.shuffle(rng);
        let count = ((order.len() as f64 * fraction).round() as usize).clamp(1, order.len() - 1);
        let rank: BTreeMap<usize, usize> = order.iter().enumerate().map(|(rank, &g)| (g, rank)).collect();
        let mut examples = examples;
        examples.sort_by_key(|e| rank[&e.group]);
        let at = examples.iter().take_while(|e| rank[&e.group] < count).count();
        let mut train = examples.split_off(at);
        train.shuffle(rng);
        (train, examples)
    }

    /// Users (groups of two replays here) and single queries split exactly as before, in
    /// members and in order, whatever the seed and fraction.
    #[test]
    fn users_and_single_queries_split_as_before() {
        let texts = |side: &[Example]| side.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
        for per_group in [1, 2] {
            let examples: Vec<Example> = (0..37)
                .map(|i| Example { text: i.to_string(), group: i / per_group, ..example(&[(&format!("a{i}"), 1)]) })
                .collect();
            for (seed, fraction) in (0..10).flat_map(|seed| [0.1, 0.2, 0.5].map(|f| (seed, f))) {
                let (train, validation) =
                    split(examples.clone(), fraction, per_group == 1, &mut StdRng::seed_from_u64(seed)).unwrap();
                let (old_train, old_validation) =
                    split_by_group_count(examples.clone(), fraction, &mut StdRng::seed_from_u64(seed));
                assert_eq!(texts(&validation), texts(&old_validation), "{per_group} {seed} {fraction}");
                assert_eq!(texts(&train), texts(&old_train), "{per_group} {seed} {fraction}");
            }
        }
    }
}
