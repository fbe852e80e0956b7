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
    /// Item id → grade (≥ 1 relevant, 0 judged not relevant).
    pub(super) judged: Judgments,
    /// Examples of one group (one user's replays) fall on the same side of the split.
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
            let texts = read_queries(queries)?;
            for (query_id, judged) in read_qrels(qrels)? {
                let text = texts.get(&query_id).ok_or_else(|| {
                    input_error(qrels, format!("query-id {query_id:?} has no text in {}", queries.display()))
                })?;
                if let Some(missing) = judged.keys().find(|id| !known.contains(id.as_str())) {
                    return Err(input_error(
                        qrels,
                        format!("query-id {query_id:?}: corpus-id {missing:?} is not in the generation's catalog"),
                    ));
                }
                examples.push(Example { text: text.clone(), judged, group: examples.len(), replay: None });
            }
        }
        Supervision::Clicks(path) => {
            let by_query = read_click_log(path, &known)?;
            examples.extend(by_query.into_iter().enumerate().map(|(group, (text, judged))| Example {
                text,
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

/// Splits the examples into training and validation by group (a user's replays stay
/// together), in a seeded order: `(train, validation)`, the training order shuffled.
pub(super) fn split(
    examples: Vec<Example>,
    validation_fraction: f64,
    rng: &mut StdRng,
) -> Result<(Vec<Example>, Vec<Example>)> {
    let mut groups_order: Vec<usize> = examples.iter().map(|e| e.group).collect::<BTreeSet<_>>().into_iter().collect();
    groups_order.shuffle(rng);
    if groups_order.len() < 2 {
        return Err(IndexError::Settings {
            setting: "supervision".into(),
            reason: "at least two queries (or users) with positives are needed (one to train on, one to validate)"
                .into(),
        });
    }
    let validation_count =
        ((groups_order.len() as f64 * validation_fraction).round() as usize).clamp(1, groups_order.len() - 1);
    let rank: BTreeMap<usize, usize> = groups_order.iter().enumerate().map(|(rank, &g)| (g, rank)).collect();
    let mut examples = examples;
    examples.sort_by_key(|e| rank[&e.group]);
    let split_at = examples.iter().take_while(|e| rank[&e.group] < validation_count).count();
    let mut train_examples = examples.split_off(split_at);
    // A user's replays are adjacent after the sort; shuffle the training order across users.
    train_examples.shuffle(rng);
    Ok((train_examples, examples))
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
                    hidden: Some(&replay.hidden),
                    factors: Some(&replay.factors),
                    cf_items: Some(items),
                };
                self.engine.recommend_candidates(&view, &self.request, depth)?
            }
            _ => self.engine.candidates(&SearchRequest::new(example.text.clone()), depth)?,
        })
    }
}
