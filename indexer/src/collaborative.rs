//! The CF part of a build: each user's history from the interaction rows, the model chosen
//! and trained (ALS or EASE, `cf_choice`), and the users stored with what they saw.

use std::collections::HashMap;
use std::path::Path;

use hyrank_engine::cf::{self, CfModelSettings, Csr, ItemModel};
use hyrank_engine::dense::{Metric, VectorIndex};
use hyrank_engine::generation::{self, files, write_factors};
use hyrank_engine::store::{Interaction, MetaStore, SledStore, UserRecord};

use crate::cf_choice;
use crate::error::Result;
use crate::pipeline::{IndexSettings, Stages};
use crate::progress::Progress;

/// Trains the CF model of `interactions` over a catalog of `catalog_items` into `dir`, stores
/// every user in `store`, counts users and interactions into `counts`, and returns the model
/// chosen.
///
/// # Errors
/// The model's fit, or a file or the store that cannot be written.
pub(crate) fn build(
    settings: &IndexSettings,
    dir: &Path,
    catalog_items: usize,
    interactions: &crate::input::Interactions,
    store: &SledStore,
    stages: &mut Stages,
    counts: &mut generation::Counts,
) -> Result<cf_choice::Choice> {
    // Users get indexes in order of first appearance; duplicate (user, item) rows are summed
    // (a user who watched twice showed more confidence), keeping the latest timestamp.
    let mut user_index: HashMap<&str, u32> = HashMap::new();
    let mut user_ids: Vec<&str> = Vec::new();
    let mut histories: Vec<HashMap<u32, Interaction>> = Vec::new();
    for row in &interactions.rows {
        let u = *user_index.entry(row.user.as_str()).or_insert_with(|| {
            user_ids.push(row.user.as_str());
            histories.push(HashMap::new());
            (user_ids.len() - 1) as u32
        });
        let entry = histories[u as usize].entry(row.item).or_insert(Interaction {
            item: row.item,
            weight: 0.0,
            timestamp: None,
        });
        entry.weight += row.weight;
        entry.timestamp = entry.timestamp.max(row.timestamp);
    }
    counts.users = user_ids.len();
    counts.interactions = histories.iter().map(HashMap::len).sum();
    let entries: Vec<(u32, u32, f32, Option<i64>)> = histories
        .iter()
        .enumerate()
        .flat_map(|(u, h)| h.values().map(move |i| (u as u32, i.item, i.weight, i.timestamp)))
        .collect();
    let matrix = Csr::from_timed(user_ids.len(), catalog_items, &entries);
    // EASE's sessions and recency read times in seconds; 1e11 s is the year 5138, so a
    // median above it is milliseconds (or finer) and τ would be 1,000 times too short.
    let mut times: Vec<i64> = entries.iter().filter_map(|e| e.3).collect();
    if !times.is_empty() {
        let middle = times.len() / 2;
        let median = *times.select_nth_unstable(middle).1;
        if median > 100_000_000_000 {
            tracing::warn!(
                median,
                "interaction timestamps look like milliseconds; EASE's --ease-session-seconds counts seconds, so \
                 convert the time column to seconds (or scale --ease-session-seconds by 1,000)"
            );
        }
    }
    let choice = cf_choice::choose(&matrix, &settings.cf)?;
    if settings.cf.requested == cf_choice::CfModelChoice::Auto {
        stages.done("choose cf model");
    }
    match &choice.model {
        CfModelSettings::Als(als) => {
            let progress = Progress::new(
                settings.progress,
                als.iterations as u64,
                "ALS iterations",
                "ALS   {bar:40} {pos}/{len} iterations [{elapsed}]",
            );
            let model = cf::train(&matrix, als, |done| progress.set(done as u64))?;
            progress.finish();
            stages.done("train cf");
            // With λ > 0 every user's normal matrix is positive definite, so a failed factoring
            // is arithmetic: confidences far apart (one user's summed weights of 10¹⁰ beside
            // the others' ones) blow the item factors up, and every user's scores with them
            // (a test's one such user left all 201 unsolved). Refused, as a divergence is; with
            // λ = 0 a history of fewer items than factors is singular in itself, and keeps CG's.
            if als.regularization > 0.0 && !model.unsolved_users.is_empty() {
                let (user, weight) = (0..matrix.rows())
                    .flat_map(|u| matrix.row(u).map(move |(_, w)| (u, w)))
                    .fold((0, 0f32), |best, (u, w)| if w > best.1 { (u, w) } else { best });
                let reason = format!(
                    "ALS cannot solve the normal equations of {} of {} users (numerically singular): \
                     confidences 1 + alpha·weight far apart blow the item factors up (user {:?} has a summed \
                     weight of {weight:e} on one item); scale the weights down (a log of counts) or lower --alpha",
                    model.unsolved_users.len(),
                    user_ids.len(),
                    user_ids[user],
                );
                let path = settings.interactions.clone().unwrap_or_else(|| settings.index_dir.clone());
                return Err(crate::error::IndexError::Input { path, reason });
            }
            let item_graph =
                VectorIndex::build(model.item_factors.data.clone(), als.factors, Metric::InnerProduct, settings.hnsw)?;
            item_graph.save(dir, files::CF_ITEMS)?;
            write_factors(&dir.join(files::CF_USERS), &model.user_factors)?;
        }
        CfModelSettings::Ease(ease) => {
            let model = ItemModel::fit(&matrix, ease)?;
            stages.done("train cf");
            model.save(&dir.join(files::EASE))?;
        }
    }
    tracing::info!(model = %choice.model, reason = %choice.selection.reason, "CF model");
    // Rows below the positive rule (`--min-weight`) are interactions still: each user's
    // such items are stored as seen (left out of their recommendations), and an item only
    // such rows name is no cold item (CF does not abstain on it: nobody liked it).
    let mut seen: Vec<std::collections::BTreeSet<u32>> = vec![Default::default(); user_ids.len()];
    let mut positive = vec![false; catalog_items];
    entries.iter().for_each(|e| positive[e.1 as usize] = true);
    let mut seen_only = std::collections::BTreeSet::new();
    // Users every row of whom is below the rule: stored for what they saw, with no history
    // and no row of factors, so a live positive later does not recommend their low-rated
    // items back to them.
    let mut only_seen: std::collections::BTreeMap<&str, std::collections::BTreeSet<u32>> = Default::default();
    for row in &interactions.below {
        match user_index.get(row.user.as_str()) {
            Some(&u) if !histories[u as usize].contains_key(&row.item) => {
                seen[u as usize].insert(row.item);
            }
            Some(_) => {}
            None => {
                only_seen.entry(row.user.as_str()).or_default().insert(row.item);
            }
        }
        if !positive[row.item as usize] {
            seen_only.insert(row.item);
        }
    }
    for (user, items) in only_seen {
        let seen = items.into_iter().collect();
        store.put_user(&UserRecord { id: user.to_string(), index: u32::MAX, history: Vec::new(), seen })?;
    }
    if !seen_only.is_empty() {
        let items: Vec<u32> = seen_only.into_iter().collect();
        generation::write_seen_only(dir, &items)?;
    }
    for (u, (history, seen)) in histories.into_iter().zip(seen).enumerate() {
        let mut history: Vec<Interaction> = history.into_values().collect();
        history.sort_by_key(|i| (i.timestamp, i.item));
        let seen = seen.into_iter().collect();
        store.put_user(&UserRecord { id: user_ids[u].to_string(), index: u as u32, history, seen })?;
    }
    stages.done("build cf index");
    Ok(choice)
}
