//! Steps 3 and 4 of training: hard and random negatives for every positive, and the frozen
//! layers run once over every training pair and every validation candidate, so each epoch runs
//! only the trainable layers.

use hyrank_engine::cross::{CrossEncoder, FrozenPass, ItemText};
use hyrank_engine::request::Candidate;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::supervision::{Example, Miner};
use super::{progress_bar, TrainSettings};
use crate::error::{IndexError, Result};
use crate::eval::metrics::Judgments;

/// One training group: the positive first, then its negatives, through the frozen layers, and
/// the teacher's logits for the same items when distilling.
pub(super) struct Group {
    pub(super) frozen: FrozenPass,
    pub(super) teacher: Option<Vec<f32>>,
}

/// A validation query: its reranking window, through the frozen layers in batches.
pub(super) struct ValidationQuery {
    pub(super) judged: Judgments,
    pub(super) candidates: Vec<Candidate>,
    pub(super) frozen: Vec<FrozenPass>,
}

pub(super) fn logits_of(model: &CrossEncoder, query: &ValidationQuery) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(query.candidates.len());
    for frozen in &query.frozen {
        out.extend(model.logits(frozen).and_then(|t| Ok(t.to_vec1::<f32>()?)).map_err(IndexError::Engine)?);
    }
    Ok(out)
}

/// Each positive with hard negatives from the generation's own ranking and random ones, run
/// through the frozen layers once: the groups every epoch trains on, and the pair count.
pub(super) fn training_groups(
    miner: &Miner<'_>,
    model: &CrossEncoder,
    train_examples: &[Example],
    settings: &TrainSettings,
    rng: &mut StdRng,
) -> Result<(Vec<Group>, usize)> {
    let engine = miner.engine;
    let items = engine.len() as u32;
    let mut groups = Vec::new();
    let bar = progress_bar(settings.progress, train_examples.len(), "frozen layers");
    let mut train_pairs = 0;
    for example in train_examples {
        let candidates = miner.candidates(example, settings.mine_depth)?;
        let positives: Vec<&String> = example.judged.iter().filter(|(_, &g)| g >= 1).map(|(id, _)| id).collect();
        let is_positive = |id: &str| example.judged.get(id).is_some_and(|&g| g >= 1);
        let mut hard: Vec<&Candidate> = candidates.iter().filter(|c| !is_positive(&c.id)).collect();
        // Judged-not-relevant items (clicks: shown, not clicked) are the surest negatives.
        let explicit: Vec<String> = example.judged.iter().filter(|(_, &g)| g <= 0).map(|(id, _)| id.clone()).collect();
        for positive in positives {
            hard.shuffle(rng);
            let mut negatives: Vec<String> = explicit.iter().take(settings.hard_negatives).cloned().collect();
            for candidate in &hard {
                if negatives.len() >= settings.hard_negatives {
                    break;
                }
                if !negatives.contains(&candidate.id) {
                    negatives.push(candidate.id.clone());
                }
            }
            let mut attempts = 0;
            while negatives.len() < settings.hard_negatives + settings.random_negatives && attempts < 100 {
                attempts += 1;
                let id = engine.item_ids()[rng.random_range(0..items) as usize].clone();
                if !is_positive(&id) && !negatives.contains(&id) {
                    negatives.push(id);
                }
            }
            let mut contents = Vec::with_capacity(negatives.len() + 1);
            for id in std::iter::once(positive).chain(&negatives) {
                // item_at, not item: a deleted item is hidden from requests, but its
                // interactions still count, so it can be a positive or a negative here.
                let index = engine.index_of(id)?;
                contents.push((index, engine.item_at(index)?.content()));
            }
            let pairs: Vec<(&str, ItemText<'_>)> = contents
                .iter()
                .map(|(index, text)| (example.text.as_str(), ItemText { index: Some(*index), text }))
                .collect();
            train_pairs += pairs.len();
            let teacher = if settings.distil_weight > 0.0 {
                let indexes: Vec<u32> = contents.iter().map(|(index, _)| *index).collect();
                Some(engine.trained_logits(&example.text, &indexes)?)
            } else {
                None
            };
            groups.push(Group { frozen: model.frozen(&pairs)?, teacher });
        }
        bar.inc(1);
    }
    bar.finish();
    Ok((groups, train_pairs))
}

/// The validation queries' top `depth` candidates, run through the frozen layers once.
pub(super) fn validation_queries(
    miner: &Miner<'_>,
    model: &CrossEncoder,
    validation_examples: &[Example],
    settings: &TrainSettings,
) -> Result<Vec<ValidationQuery>> {
    let bar = progress_bar(settings.progress, validation_examples.len(), "validation");
    let mut validation = Vec::new();
    for example in validation_examples {
        let candidates = miner.candidates(example, settings.depth)?;
        let mut frozen = Vec::new();
        for chunk in candidates.chunks(model.batch_size()) {
            let mut pairs = Vec::with_capacity(chunk.len());
            for c in chunk {
                let index = miner.engine.index_of(&c.id)?;
                pairs.push((example.text.as_str(), ItemText { index: Some(index), text: &c.content }));
            }
            frozen.push(model.frozen(&pairs)?);
        }
        validation.push(ValidationQuery { judged: example.judged.clone(), candidates, frozen });
        bar.inc(1);
    }
    bar.finish();
    Ok(validation)
}
