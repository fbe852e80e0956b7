//! The validation split `auto` scores candidates on, and the fitted candidates that score it.

use hyrank_engine::cf::{self, CfModelSettings, Csr, ItemModel};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::CfValidation;
use crate::error::{IndexError, Result};
use crate::eval::metrics::{ndcg_at, recall_at, Judgments};

/// Fraction of each user's positives held out for validation.
const VALIDATION_FRACTION: f64 = 0.2;

/// Validation users scored at most (a seeded sample beyond that): enough to tell the models
/// apart, few enough that scoring stays a small part of the fit.
const MAX_VALIDATION_USERS: usize = 5000;

/// A fitted candidate that scores every item for a validation user.
pub(super) enum Scorer {
    Als(cf::AlsModel),
    Ease(ItemModel),
}

impl Scorer {
    pub(super) fn fit(train: &Csr, model: &CfModelSettings) -> Result<Scorer> {
        Ok(match model {
            CfModelSettings::Als(settings) => Scorer::Als(cf::train(train, settings, |_| {})?),
            CfModelSettings::Ease(settings) => Scorer::Ease(ItemModel::fit(train, settings)?),
        })
    }

    /// Exact scores of every item for user `u` of the training matrix.
    pub(super) fn scores(&self, train: &Csr, u: usize, out: &mut [f32]) {
        out.fill(0.0);
        match self {
            Scorer::Als(model) => {
                let user = model.user_factors.row(u);
                for (item, slot) in out.iter_mut().enumerate() {
                    *slot = user.iter().zip(model.item_factors.row(item)).map(|(a, b)| a * b).sum();
                }
            }
            Scorer::Ease(model) => {
                let history = train.row_timed(u).filter(|&(_, v, _)| v > 0.0).map(|(i, _, t)| (i, t));
                let seeds = cf::seeds(history, model.settings().recency_half_life);
                model.accumulate(&seeds, out, &mut Vec::new());
            }
        }
    }
}

/// The validation split of a training matrix.
pub(super) struct Validation {
    /// How the items were held out (`random` or `time`, never `auto`).
    pub(super) kind: CfValidation,
    /// The matrix less the validation entries, with their times.
    pub(super) train: Csr,
    /// Validation users (row indexes) with their held-out items.
    pub(super) users: Vec<(usize, Vec<u32>)>,
    /// Held-out entries in all.
    pub(super) held: usize,
    /// Whether every positive has a time (recency means something only then).
    pub(super) timed: bool,
}

impl Validation {
    /// Holds out validation items of every user with two positives or more: `random` a
    /// seeded fifth of them (at least one, never all), `time` the latest one (ties by the
    /// larger item index; the eval's time split breaks them by item id). `auto` is `time`
    /// when every positive has a time.
    ///
    /// # Errors
    /// `time` asked for with a positive that has no time.
    pub(super) fn split(matrix: &Csr, seed: u64, asked: CfValidation) -> Result<Validation> {
        let positives = || (0..matrix.rows()).flat_map(|u| matrix.row_timed(u)).filter(|e| e.1 > 0.0);
        let untimed = positives().filter(|e| e.2.is_none()).count();
        let kind = match asked {
            CfValidation::Time if untimed > 0 => {
                return Err(IndexError::Settings {
                    setting: "cf-validation".into(),
                    reason: format!(
                        "time holds out each user's latest positive, but {untimed} positives have no timestamp; use \
                         --cf-validation random, or give the interactions a time column"
                    ),
                })
            }
            CfValidation::Auto if untimed > 0 || positives().next().is_none() => CfValidation::Random,
            CfValidation::Auto => CfValidation::Time,
            asked => asked,
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let mut entries = Vec::with_capacity(matrix.values.len());
        let mut users = Vec::new();
        let mut held = 0;
        for u in 0..matrix.rows() {
            let mut row: Vec<(u32, f32, Option<i64>)> = matrix.row_timed(u).collect();
            let positives = row.iter().filter(|e| e.1 > 0.0).count();
            if positives >= 2 {
                let take = match kind {
                    CfValidation::Time => {
                        // Newest first, so that the first positive is the one held out.
                        row.sort_by_key(|e| (e.2, e.0));
                        row.reverse();
                        1
                    }
                    _ => {
                        row.shuffle(&mut rng);
                        // A fifth of the positives (at least one, never all).
                        ((positives as f64 * VALIDATION_FRACTION).round() as usize).clamp(1, positives - 1)
                    }
                };
                let mut out = Vec::with_capacity(take);
                row.retain(|&(item, value, _)| {
                    if value > 0.0 && out.len() < take {
                        out.push(item);
                        false
                    } else {
                        true
                    }
                });
                held += out.len();
                users.push((u, out));
            }
            entries.extend(row.into_iter().map(|(item, value, time)| (u as u32, item, value, time)));
        }
        if users.len() > MAX_VALIDATION_USERS {
            users.shuffle(&mut rng);
            users.truncate(MAX_VALIDATION_USERS);
            users.sort_by_key(|u| u.0);
        }
        let timed = untimed == 0;
        Ok(Validation { kind, train: Csr::from_timed(matrix.rows(), matrix.cols, &entries), users, held, timed })
    }

    /// Mean nDCG@10 and Recall@20 over the validation users, training items excluded. Users
    /// are scored on the rayon pool and summed in user order: a reduction in the pool's order
    /// moved the mean in its last bit from run to run, which could turn a choice between two
    /// candidates that tie.
    pub(super) fn score(&self, scorer: &Scorer) -> (f64, f64) {
        use rayon::prelude::*;
        let per_user: Vec<(f64, f64)> = self
            .users
            .par_iter()
            .map_init(
                || vec![0f32; self.train.cols],
                |scores, (u, held)| {
                    scorer.scores(&self.train, *u, scores);
                    for (item, _) in self.train.row(*u) {
                        scores[item as usize] = f32::NEG_INFINITY;
                    }
                    let mut order: Vec<u32> = (0..self.train.cols as u32).collect();
                    let top = 20.min(order.len());
                    let by_score =
                        |a: &u32, b: &u32| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b));
                    if top < order.len() {
                        order.select_nth_unstable_by(top, by_score);
                        order.truncate(top);
                    }
                    order.sort_unstable_by(by_score);
                    let ranked: Vec<String> = order.iter().map(u32::to_string).collect();
                    let judged: Judgments = held.iter().map(|i| (i.to_string(), 1)).collect();
                    (ndcg_at(&ranked, &judged, 10), recall_at(&ranked, &judged, 20))
                },
            )
            .collect();
        let (ndcg, recall) = per_user.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        let n = self.users.len().max(1) as f64;
        (ndcg / n, recall / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_holds_out_a_fifth_of_each_users_positives_and_never_all() {
        let matrix = Csr::from_triples(
            3,
            10,
            &[(0, 1, 1.0), (1, 1, 1.0), (1, 2, 1.0), (2, 0, 1.0), (2, 3, 1.0), (2, 4, 1.0), (2, 5, 1.0), (2, 6, 1.0)],
        );
        let split = Validation::split(&matrix, 1, CfValidation::Random).unwrap();
        // User 0 has one positive: not validated. User 1: one of two. User 2: one of five.
        assert_eq!(split.users.iter().map(|(u, h)| (*u, h.len())).collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
        assert_eq!(split.train.values.len() + split.held, matrix.values.len());
        for (u, held) in &split.users {
            for item in held {
                assert!(split.train.row(*u).all(|(i, _)| i != *item));
            }
        }
    }

    #[test]
    fn time_validation_holds_out_each_users_latest_positive() {
        let entries = [
            (0, 1, 1.0, Some(30)),
            (0, 2, 1.0, Some(10)),
            (0, 3, 1.0, Some(20)),
            (1, 4, 1.0, Some(5)),
            (1, 5, 1.0, Some(5)),
            (2, 6, 1.0, Some(1)),
        ];
        let matrix = Csr::from_timed(3, 8, &entries);
        for asked in [CfValidation::Time, CfValidation::Auto] {
            let split = Validation::split(&matrix, 1, asked).unwrap();
            assert_eq!(split.kind, CfValidation::Time);
            // User 0: item 1 is the latest; user 1: a tie, the larger item index; user 2: one positive.
            assert_eq!(split.users, vec![(0, vec![1]), (1, vec![5])]);
            assert_eq!(split.train.row_timed(0).collect::<Vec<_>>(), vec![(2, 1.0, Some(10)), (3, 1.0, Some(20))]);
        }
        let mut untimed = entries.to_vec();
        untimed[2].3 = None;
        let matrix = Csr::from_timed(3, 8, &untimed);
        assert_eq!(Validation::split(&matrix, 1, CfValidation::Auto).unwrap().kind, CfValidation::Random);
        let error = Validation::split(&matrix, 1, CfValidation::Time).err().unwrap().to_string();
        assert!(error.contains("cf-validation") && error.contains("1 positives have no timestamp"), "{error}");
    }
}
