//! Which CF model a generation serves (`hyrank index --cf-model als|ease|auto`).
//!
//! `auto` holds out a validation part of the training interactions (each user's latest
//! positive when every interaction has a time, else a seeded random fifth of each user's
//! positives: the two ways `hyrank eval recommend` splits; `--cf-validation` picks one), fits
//! every candidate on the rest, scores the validation items by nDCG@10 with the training items
//! excluded (exact scores over the whole catalog, no approximate search, so the comparison is
//! about the models), and keeps the best. Candidates are tried in a fixed order until a time
//! budget is spent; EASE is only tried when its fit fits in memory
//! ([`cf::ease::fit_bytes`]). The best EASE fit is then also scored with recency weights
//! (a scoring setting, no refit). The comparison goes into the manifest (`cf_selection`) and
//! the index summary, and the chosen model is then fitted on all interactions.

use std::time::{Duration, Instant};

use hyrank_engine::cf::{self, AlsSettings, CfModelSettings, Csr, EaseSettings, ItemModel};
use hyrank_engine::generation::{CfCandidate, CfSelection};

use crate::error::{IndexError, Result};

mod content_weight;
mod validation;

pub use content_weight::{tune_content_weight, ValidationLists};
use validation::{Scorer, Validation};

/// What the catalog team asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CfModelChoice {
    /// Implicit ALS with the given settings.
    Als,
    /// EASE with the given λ; refused when its fit would not fit in memory.
    Ease,
    /// Every candidate on a validation split, the best by nDCG@10.
    #[default]
    Auto,
}

impl CfModelChoice {
    fn name(self) -> &'static str {
        match self {
            CfModelChoice::Als => "als",
            CfModelChoice::Ease => "ease",
            CfModelChoice::Auto => "auto",
        }
    }
}

/// How `auto` holds out its validation items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CfValidation {
    /// `time` when every positive has a timestamp, else `random`: a recommender predicts what
    /// users do next, so the latest items are the truer test where times are known.
    #[default]
    Auto,
    /// A seeded random fifth of each user's positives (what `hyrank eval recommend --split
    /// random` holds out).
    Random,
    /// Each user's latest positive by timestamp (leave-last-out, what `--split time` holds
    /// out); refused when an interaction has no time.
    Time,
}

impl CfValidation {
    fn name(self) -> &'static str {
        match self {
            CfValidation::Auto => "auto",
            CfValidation::Random => "random",
            CfValidation::Time => "time",
        }
    }
}

/// Recency half-lives, in history positions, `auto` scores the best EASE fit with (besides
/// its own): on MovieLens small's leave-last-out validation 2–4 positions did best, on its
/// random validation none did (docs/EVAL.md).
const RECENCY_HALF_LIVES: [f32; 4] = [2.0, 4.0, 8.0, 16.0];

/// Settings of the choice.
#[derive(Debug, Clone, PartialEq)]
pub struct CfChoiceSettings {
    /// What was asked.
    pub requested: CfModelChoice,
    /// ALS settings (`als`; the first ALS candidate of `auto`).
    pub als: AlsSettings,
    /// EASE settings (`ease`; the first EASE candidate of `auto`).
    pub ease: EaseSettings,
    /// Bytes EASE's fit may hold; `None`: half the memory available when the run starts.
    pub memory_limit: Option<u64>,
    /// Wall-clock budget for fitting `auto`'s candidates; at least one of each family that
    /// fits in memory is always tried.
    pub budget: Duration,
    /// Seed of the validation split.
    pub seed: u64,
    /// How `auto` holds out validation items.
    pub validation: CfValidation,
}

impl Default for CfChoiceSettings {
    fn default() -> Self {
        CfChoiceSettings {
            requested: CfModelChoice::default(),
            als: AlsSettings::default(),
            ease: EaseSettings::default(),
            memory_limit: None,
            budget: Duration::from_secs(DEFAULT_BUDGET_SECS),
            seed: 42,
            validation: CfValidation::default(),
        }
    }
}

/// Default time budget of `auto`, in seconds.
pub const DEFAULT_BUDGET_SECS: u64 = 300;

/// The chosen model and the record of how.
#[derive(Debug)]
pub struct Choice {
    /// What to fit on all interactions.
    pub model: CfModelSettings,
    /// The record for the manifest.
    pub selection: CfSelection,
    /// `auto`: the chosen model's lists on the validation split, kept until the content weight
    /// is validated too ([`tune_content_weight`]); the fit itself is dropped before the final one.
    pub validated: Option<ValidationLists>,
}

/// Memory available to this process now (Linux `MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    crate::summary::proc_bytes("/proc/meminfo", "MemAvailable:")
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Whether EASE may be fitted on `warm` items, and if not, why not.
fn ease_fits(warm: usize, settings: &CfChoiceSettings) -> std::result::Result<(), String> {
    let need = cf::ease::fit_bytes(warm, settings.ease.neighbours);
    let (limit, source) = match settings.memory_limit {
        Some(limit) => (limit, "--cf-memory-limit".to_string()),
        None => match available_memory() {
            Some(available) => (available / 2, format!("half of the {} available", gib(available))),
            None => (u64::MAX, "no limit known".to_string()),
        },
    };
    if need <= limit {
        Ok(())
    } else {
        Err(format!(
            "EASE over {warm} items with interactions needs about {} at its peak (three items² f32 matrices), above \
             the limit of {} ({source})",
            gib(need),
            gib(limit)
        ))
    }
}

/// Decides the CF model for a users × items matrix.
///
/// # Errors
/// `--cf-model ease` when EASE does not fit in memory (the message gives the estimate and the
/// limit), or a fit that fails.
pub fn choose(matrix: &Csr, settings: &CfChoiceSettings) -> Result<Choice> {
    let warm = cf::ease::warm_items(matrix).len();
    let record = |reason: String, candidates: Vec<CfCandidate>, split: Option<&Validation>| CfSelection {
        requested: settings.requested.name().into(),
        reason,
        validation_users: split.map_or(0, |s| s.users.len()),
        validation_interactions: split.map_or(0, |s| s.held),
        validation: split.map(|s| s.kind.name().to_string()).unwrap_or_default(),
        candidates,
        content_weight: None,
        content_weights: Vec::new(),
    };
    let ease_asked = settings.requested != CfModelChoice::Als;
    if ease_asked && settings.ease.recency_half_life > 0.0 && !every_positive_timed(matrix) {
        return Err(IndexError::Settings {
            setting: "ease-recency-half-life".into(),
            reason: "recency orders each history by time, and some interactions have no timestamp; give the \
                     interactions a time column, or leave the half-life at 0"
                .into(),
        });
    }
    match settings.requested {
        CfModelChoice::Als => Ok(Choice {
            model: CfModelSettings::Als(settings.als.clone()),
            selection: record("ALS, as asked".into(), Vec::new(), None),
            validated: None,
        }),
        CfModelChoice::Ease => match ease_fits(warm, settings) {
            Ok(()) => Ok(Choice {
                model: CfModelSettings::Ease(settings.ease.clone()),
                selection: record("EASE, as asked".into(), Vec::new(), None),
                validated: None,
            }),
            Err(reason) => Err(IndexError::Settings {
                setting: "cf-model".into(),
                reason: format!("{reason}; use --cf-model als or auto, or raise --cf-memory-limit"),
            }),
        },
        CfModelChoice::Auto => {
            let split = Validation::split(matrix, settings.seed, settings.validation)?;
            if split.users.is_empty() {
                return Ok(Choice {
                    model: CfModelSettings::Als(settings.als.clone()),
                    selection: record(
                        "ALS: no user has two positives or more, so there is nothing to validate on".into(),
                        Vec::new(),
                        None,
                    ),
                    validated: None,
                });
            }
            let ease_room = ease_fits(warm, settings);
            let start = Instant::now();
            let mut candidates: Vec<CfCandidate> = Vec::new();
            let mut tried_family = [false, false];
            // The best EASE fit so far, to score with recency weights afterwards.
            let mut best_ease: Option<(f64, ItemModel)> = None;
            // The best ALS fit, in case it wins (the content weight is validated with it).
            let mut best_als: Option<(f64, cf::AlsModel)> = None;
            for model in candidate_list(settings) {
                let family = matches!(model, CfModelSettings::Ease(_)) as usize;
                let skipped = match (&model, &ease_room) {
                    (CfModelSettings::Ease(_), Err(reason)) => Some(reason.clone()),
                    _ if tried_family[family] && start.elapsed() > settings.budget => {
                        Some(format!("the time budget of {} s was spent", settings.budget.as_secs()))
                    }
                    _ => None,
                };
                if let Some(skipped) = skipped {
                    candidates.push(skipped_candidate(model, skipped));
                    continue;
                }
                tried_family[family] = true;
                let fit_start = Instant::now();
                // A candidate that cannot be fitted (an f32 factorisation at an extreme λ) is
                // recorded and passed over; ALS, tried first, is always there to fall back on.
                let scorer = match Scorer::fit(&split.train, &model) {
                    Ok(scorer) => scorer,
                    Err(e) if !candidates.is_empty() => {
                        candidates.push(skipped_candidate(model, format!("the fit failed: {e}")));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let fit_seconds = fit_start.elapsed().as_secs_f64();
                let (ndcg_10, recall_20) = split.score(&scorer);
                tracing::info!(%model, ndcg_10, recall_20, fit_seconds, "CF candidate validated");
                match scorer {
                    Scorer::Ease(fitted) if best_ease.as_ref().is_none_or(|(best, _)| ndcg_10 > *best) => {
                        best_ease = Some((ndcg_10, fitted));
                    }
                    Scorer::Als(fitted) if best_als.as_ref().is_none_or(|(best, _)| ndcg_10 > *best) => {
                        best_als = Some((ndcg_10, fitted));
                    }
                    _ => {}
                }
                candidates.push(CfCandidate {
                    model,
                    ndcg_10: Some(ndcg_10),
                    recall_20: Some(recall_20),
                    fit_seconds,
                    skipped: None,
                });
            }
            // Recency orders a history by time: without times it would order by catalog index.
            if let Some((_, fitted)) = best_ease.as_ref().filter(|_| split.timed) {
                let own = fitted.settings().recency_half_life;
                for half_life in RECENCY_HALF_LIVES.into_iter().filter(|&h| h != own) {
                    let scorer = Scorer::Ease(fitted.with_recency_half_life(half_life));
                    let (ndcg_10, recall_20) = split.score(&scorer);
                    let Scorer::Ease(model) = scorer else { unreachable!("built as EASE above") };
                    let model = CfModelSettings::Ease(model.settings().clone());
                    tracing::info!(%model, ndcg_10, recall_20, "CF candidate validated (recency, no refit)");
                    candidates.push(CfCandidate {
                        model,
                        ndcg_10: Some(ndcg_10),
                        recall_20: Some(recall_20),
                        fit_seconds: 0.0,
                        skipped: None,
                    });
                }
            }
            // The best nDCG@10; ties go to the earlier candidate (the given settings first).
            let best = candidates
                .iter()
                .filter_map(|c| c.ndcg_10.map(|n| (n, c)))
                .fold(None::<(f64, &CfCandidate)>, |best, (n, c)| match best {
                    Some((b, _)) if b >= n => best,
                    _ => Some((n, c)),
                })
                .map(|(_, c)| c.model.clone())
                .expect("the first ALS candidate is always fitted");
            let reason = format!(
                "{best}: the best nDCG@10 on {} validation items of {} users ({} validation){}",
                split.held,
                split.users.len(),
                split.kind.name(),
                ease_room.err().map(|r| format!("; EASE not tried: {r}")).unwrap_or_default()
            );
            // The chosen model's validation fit: an EASE fit's recency is a scoring setting.
            let scorer = match &best {
                CfModelSettings::Ease(settings) => {
                    best_ease.map(|(_, fitted)| Scorer::Ease(fitted.with_recency_half_life(settings.recency_half_life)))
                }
                CfModelSettings::Als(_) => best_als.map(|(_, fitted)| Scorer::Als(fitted)),
            };
            let selection = record(reason, candidates, Some(&split));
            let validated = scorer.map(|scorer| ValidationLists::new(&split, &scorer));
            Ok(Choice { model: best, selection, validated })
        }
    }
}

/// Whether every positive entry of `matrix` has a time.
fn every_positive_timed(matrix: &Csr) -> bool {
    (0..matrix.rows()).flat_map(|u| matrix.row_timed(u)).filter(|e| e.1 > 0.0).all(|e| e.2.is_some())
}

/// A candidate recorded as not fitted, and why.
fn skipped_candidate(model: CfModelSettings, reason: String) -> CfCandidate {
    CfCandidate { model, ndcg_10: None, recall_20: None, fit_seconds: 0.0, skipped: Some(reason) }
}

/// `auto`'s candidates in the order tried: the given settings of each family first, then a
/// small grid around them (λ from a quarter to five times the given one, Steck's range; EDLAE's
/// dropout 0.25 and 0.5; without session weighting; ALS with twice the factors, and with more
/// regularisation and confidence). Repeats of the given settings are dropped.
fn candidate_list(settings: &CfChoiceSettings) -> Vec<CfModelSettings> {
    let als = &settings.als;
    let ease = &settings.ease;
    let ease_at = |scale: f32, dropout: f32| {
        CfModelSettings::Ease(EaseSettings { lambda: ease.lambda * scale, dropout, ..ease.clone() })
    };
    let no_sessions = |dropout: f32| {
        CfModelSettings::Ease(EaseSettings { dropout, session_seconds: 0.0, session_weight: 0.0, ..ease.clone() })
    };
    let grid = [
        CfModelSettings::Als(als.clone()),
        ease_at(1.0, ease.dropout),
        ease_at(2.5, 0.0),
        ease_at(0.5, 0.0),
        CfModelSettings::Als(AlsSettings { factors: als.factors * 2, ..als.clone() }),
        ease_at(1.0, 0.25),
        ease_at(1.0, 0.5),
        no_sessions(ease.dropout),
        no_sessions(0.5),
        ease_at(5.0, 0.0),
        ease_at(0.25, 0.0),
        CfModelSettings::Als(AlsSettings {
            regularization: als.regularization * 20.0,
            alpha: als.alpha * 4.0,
            ..als.clone()
        }),
    ];
    let mut candidates: Vec<CfModelSettings> = Vec::with_capacity(grid.len());
    for model in grid {
        if !candidates.contains(&model) {
            candidates.push(model);
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two communities of users with item blocks, plus noise: any sensible model beats chance.
    pub(super) fn communities() -> Csr {
        let mut triples = Vec::new();
        for u in 0..40u32 {
            let block = (u % 2) * 10;
            for i in 0..10u32 {
                if (u + i) % 3 != 0 {
                    triples.push((u, block + i, 1.0));
                }
            }
        }
        Csr::from_triples(40, 22, &triples)
    }

    #[test]
    fn auto_fits_both_families_and_records_the_comparison() {
        let settings = CfChoiceSettings {
            als: AlsSettings { factors: 4, iterations: 5, ..AlsSettings::default() },
            ease: EaseSettings { lambda: 2.0, neighbours: 0, ..EaseSettings::default() },
            ..CfChoiceSettings::default()
        };
        let choice = choose(&communities(), &settings).unwrap();
        let s = &choice.selection;
        assert_eq!(s.requested, "auto");
        assert_eq!(s.validation_users, 40);
        assert_eq!(s.candidates.len(), candidate_list(&settings).len(), "no times: no recency candidates");
        assert_eq!(s.validation, "random", "no times, so a random fifth");
        assert!(s.candidates.iter().all(|c| c.skipped.is_none() && c.ndcg_10.is_some()));
        let best = s.candidates.iter().filter_map(|c| c.ndcg_10).fold(0.0, f64::max);
        let chosen = s.candidates.iter().find(|c| c.model == choice.model).unwrap();
        assert_eq!(chosen.ndcg_10, Some(best));
        assert!(best > 0.5, "{best}");
        assert!(s.reason.contains("nDCG@10"), "{}", s.reason);
    }

    #[test]
    fn ease_past_the_memory_limit_is_refused_when_asked_and_skipped_by_auto() {
        let tight = CfChoiceSettings {
            requested: CfModelChoice::Ease,
            memory_limit: Some(100),
            als: AlsSettings { factors: 4, iterations: 2, ..AlsSettings::default() },
            ..CfChoiceSettings::default()
        };
        let message = choose(&communities(), &tight).unwrap_err().to_string();
        assert!(message.contains("20 items") && message.contains("--cf-memory-limit"), "{message}");
        let auto = choose(&communities(), &CfChoiceSettings { requested: CfModelChoice::Auto, ..tight }).unwrap();
        assert!(matches!(auto.model, CfModelSettings::Als(_)));
        let skipped: Vec<_> = auto.selection.candidates.iter().filter(|c| c.skipped.is_some()).collect();
        assert!(!skipped.is_empty() && skipped.iter().all(|c| matches!(c.model, CfModelSettings::Ease(_))));
        assert!(auto.selection.reason.contains("EASE not tried"), "{}", auto.selection.reason);
    }

    #[test]
    fn recency_is_tried_only_with_times_and_refused_without_them() {
        let untimed = communities();
        let timed_entries: Vec<(u32, u32, f32, Option<i64>)> = (0..untimed.rows())
            .flat_map(|u| untimed.row(u).map(move |(i, v)| (u as u32, i, v, Some(i64::from(i) * 60))))
            .collect();
        let timed = Csr::from_timed(untimed.rows(), untimed.cols, &timed_entries);
        let settings = CfChoiceSettings {
            als: AlsSettings { factors: 4, iterations: 3, ..AlsSettings::default() },
            ease: EaseSettings { lambda: 2.0, neighbours: 0, ..EaseSettings::default() },
            ..CfChoiceSettings::default()
        };
        let choice = choose(&timed, &settings).unwrap();
        assert_eq!(choice.selection.validation, "time");
        let recency = |c: &CfCandidate| matches!(&c.model, CfModelSettings::Ease(e) if e.recency_half_life > 0.0);
        assert_eq!(choice.selection.candidates.iter().filter(|c| recency(c)).count(), RECENCY_HALF_LIVES.len());
        let asked = CfChoiceSettings {
            requested: CfModelChoice::Ease,
            ease: EaseSettings { recency_half_life: 4.0, ..settings.ease.clone() },
            ..settings
        };
        assert!(choose(&timed, &asked).is_ok());
        for requested in [CfModelChoice::Ease, CfModelChoice::Auto] {
            let error = choose(&untimed, &CfChoiceSettings { requested, ..asked.clone() }).err().unwrap().to_string();
            assert!(error.contains("ease-recency-half-life") && error.contains("no timestamp"), "{error}");
        }
    }
}
