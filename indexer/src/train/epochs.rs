//! Step 5 of training: the epochs. AdamW on the trainable layers and the head, a listwise (or
//! pointwise) loss per group, validation after each epoch, the best epoch kept.

use candle_core::{Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use hyrank_engine::cross::{CrossEncoder, TrainableVars};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::passes::{logits_of, Group, ValidationQuery};
use super::verdict::{mean, ndcg_of};
use super::{candle, progress_bar, Loss, TrainSettings};
use crate::error::Result;

/// The best epoch so far: its validation nDCG@10 (logit alone), its weights and its logits.
pub(super) struct Kept {
    pub(super) ndcg: f64,
    pub(super) epoch: usize,
    pub(super) weights: Vec<Tensor>,
    pub(super) logits: Vec<Vec<f32>>,
}

/// What the epochs produced: the kept weights' epoch, validation score and logits, and each
/// epoch's loss and validation score.
pub(super) struct Epochs {
    pub(super) kept: Kept,
    pub(super) initial_validation: f64,
    pub(super) loss: Vec<f64>,
    pub(super) validation: Vec<f64>,
}

/// Trains the top layers and the head (AdamW, listwise or pointwise loss), validating after
/// each epoch; keeps the best epoch's weights in `vars` (epoch 0, the untrained model, if
/// training never beats it) and stops after `patience` epochs without a gain.
pub(super) fn run_epochs(
    model: &CrossEncoder,
    vars: &TrainableVars,
    groups: &[Group],
    validation: &[ValidationQuery],
    settings: &TrainSettings,
    rng: &mut StdRng,
) -> Result<Epochs> {
    let (head_vars, layer_vars): (TrainableVars, TrainableVars) =
        vars.iter().cloned().partition(|(name, _)| name.starts_with("rerank_head"));
    let adam = |vars: &TrainableVars, lr: f64| {
        AdamW::new(
            vars.iter().map(|(_, v)| v.clone()).collect(),
            ParamsAdamW { lr, weight_decay: 0.01, ..Default::default() },
        )
        .map_err(candle)
    };
    let mut layer_opt = adam(&layer_vars, settings.learning_rate)?;
    let mut head_opt = adam(&head_vars, settings.head_learning_rate)?;

    // nDCG@10 of the logit alone, and the logits themselves: the kept epoch's logits are what
    // the combination is fitted on, so they are not computed a second time.
    let validate = |model: &CrossEncoder| -> Result<(f64, Vec<Vec<f32>>)> {
        let mut scores = Vec::with_capacity(validation.len());
        let mut all_logits = Vec::with_capacity(validation.len());
        for query in validation {
            let logits = logits_of(model, query)?;
            scores.push(ndcg_of(query, &logits.iter().copied().map(f64::from).collect::<Vec<_>>()));
            all_logits.push(logits);
        }
        Ok((mean(scores.into_iter()), all_logits))
    };
    let snapshot = || -> Result<Vec<Tensor>> {
        vars.iter().map(|(_, v)| v.as_tensor().copy()).collect::<candle_core::Result<Vec<_>>>().map_err(candle)
    };
    let (initial_validation, initial_logits) = validate(model)?;
    tracing::info!("reranker: before training: validation nDCG@10 (logit alone) {initial_validation:.4}");
    let mut best = Kept { ndcg: initial_validation, epoch: 0, weights: snapshot()?, logits: initial_logits };
    let mut epoch_loss = Vec::new();
    let mut epoch_validation = Vec::new();
    let mut order: Vec<usize> = (0..groups.len()).collect();
    for epoch in 1..=settings.epochs {
        order.shuffle(rng);
        let bar = progress_bar(settings.progress, groups.len(), &format!("epoch {epoch}"));
        let (mut total, mut count) = (0.0, 0usize);
        for step in order.chunks(settings.groups_per_step) {
            let mut losses = Vec::with_capacity(step.len());
            for &g in step {
                let logits = model.logits(&groups[g].frozen)?;
                losses.push(group_loss(&logits, groups[g].teacher.as_deref(), settings).map_err(candle)?);
            }
            let loss = (Tensor::stack(&losses, 0).and_then(|l| l.mean_all())).map_err(candle)?;
            let grads = loss.backward().map_err(candle)?;
            layer_opt.step(&grads).map_err(candle)?;
            head_opt.step(&grads).map_err(candle)?;
            total += f64::from(loss.to_scalar::<f32>().map_err(candle)?) * step.len() as f64;
            count += step.len();
            bar.set_message(format!("loss {:.4}", total / count as f64));
            bar.inc(step.len() as u64);
        }
        bar.finish();
        let loss = total / count.max(1) as f64;
        let (ndcg, logits) = validate(model)?;
        epoch_loss.push(loss);
        epoch_validation.push(ndcg);
        tracing::info!("reranker: epoch {epoch}: loss {loss:.4}, validation nDCG@10 (logit alone) {ndcg:.4}");
        if ndcg > best.ndcg {
            best = Kept { ndcg, epoch, weights: snapshot()?, logits };
        } else if epoch - best.epoch >= settings.patience {
            break;
        }
    }
    for ((_, var), value) in vars.iter().zip(&best.weights) {
        var.set(value).map_err(candle)?;
    }
    Ok(Epochs { kept: best, initial_validation, loss: epoch_loss, validation: epoch_validation })
}

/// One group's loss from the student's `logits` (the positive first): the label loss
/// (listwise: cross-entropy with the positive as the class; pointwise: binary cross-entropy
/// per pair), mixed with the distillation loss when there is a `teacher` and a weight α:
/// `(1 − α)·label + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))` (Hinton, Vinyals & Dean
/// 2015, "Distilling the Knowledge in a Neural Network"; the T² keeps the gradient's scale
/// as T changes).
pub(super) fn group_loss(
    logits: &Tensor,
    teacher: Option<&[f32]>,
    settings: &TrainSettings,
) -> candle_core::Result<Tensor> {
    let label = match settings.loss {
        Loss::Listwise => candle_nn::ops::log_softmax(logits, D::Minus1)?.get(0)?.neg()?,
        Loss::Pointwise => {
            let n = logits.dim(0)?;
            let mut targets = vec![0f32; n];
            targets[0] = 1.0;
            let targets = Tensor::from_vec(targets, n, logits.device())?;
            candle_nn::loss::binary_cross_entropy_with_logit(logits, &targets)?
        }
    };
    let alpha = settings.distil_weight;
    let Some(teacher) = teacher.filter(|_| alpha > 0.0) else { return Ok(label) };
    let t = settings.distil_temperature;
    let teacher = Tensor::from_slice(teacher, teacher.len(), logits.device())?.affine(1.0 / t, 0.0)?;
    let log_teacher = candle_nn::ops::log_softmax(&teacher, D::Minus1)?;
    let log_student = candle_nn::ops::log_softmax(&logits.affine(1.0 / t, 0.0)?, D::Minus1)?;
    let kl = (log_teacher.exp()? * (log_teacher - log_student)?)?.sum_all()?;
    label.affine(1.0 - alpha, 0.0)? + kl.affine(alpha * t * t, 0.0)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Supervision;

    fn settings(alpha: f64, t: f64) -> TrainSettings {
        let supervision = Supervision::Clicks("clicks.tsv".into());
        let mut s = TrainSettings::new("index".into(), hyrank_engine::EmbedderSettings::new("model"), supervision);
        s.distil_weight = alpha;
        s.distil_temperature = t;
        s
    }

    fn value(t: &Tensor) -> f64 {
        f64::from(t.to_scalar::<f32>().unwrap())
    }

    #[test]
    fn distillation_mixes_the_label_loss_with_the_kl_to_the_teacher() {
        let student = [2.0f32, 0.5, -1.0];
        let logits = Tensor::new(&student, &candle_core::Device::Cpu).unwrap();
        let ln_sum = |x: &[f64]| x.iter().map(|v| v.exp()).sum::<f64>().ln();
        let s: Vec<f64> = student.iter().map(|&v| f64::from(v)).collect();
        let label = ln_sum(&s) - s[0];
        // No teacher, or α 0: the label loss alone.
        assert!((value(&group_loss(&logits, None, &settings(0.5, 1.0)).unwrap()) - label).abs() < 1e-5);
        assert!(
            (value(&group_loss(&logits, Some(&[9.0, 0.0, 0.0]), &settings(0.0, 1.0)).unwrap()) - label).abs() < 1e-5
        );
        // A teacher that agrees with the student adds nothing (KL 0).
        let same = group_loss(&logits, Some(&student), &settings(0.5, 2.0)).unwrap();
        assert!((value(&same) - 0.5 * label).abs() < 1e-5);
        // Otherwise the KL, by hand, at T = 2.
        let teacher = [0.0f32, 3.0, 1.0];
        let t = 2.0;
        let scaled = |x: &[f64]| -> Vec<f64> { x.iter().map(|v| v / t).collect() };
        let (ts, ss) = (scaled(&teacher.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()), scaled(&s));
        let (lt, ls) = (ln_sum(&ts), ln_sum(&ss));
        let kl: f64 = ts.iter().zip(&ss).map(|(a, b)| (a - lt).exp() * ((a - lt) - (b - ls))).sum();
        let got = value(&group_loss(&logits, Some(&teacher), &settings(0.25, t)).unwrap());
        assert!((got - (0.75 * label + 0.25 * t * t * kl)).abs() < 1e-4, "{got}");
    }
}
