//! The cross-encoder's scoring path on hyrank's CPU kernels ([`crate::kernels`]): the pairs'
//! real tokens packed into one matrix per pass (no padding; few, large products), the frozen
//! layers over it (joint) or over each side alone (PreTTR, the item side usually read from the
//! stored states), the trained layers over the pairs, then the head per pair.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use candle_nn::Linear;
use candle_transformers::models::bert::Config;
use tokenizers::Encoding;

use super::{CrossEncoder, ItemText, HEAD};
use crate::bert::native::{run_layers, Layer, NativeEncoder, Packing};
use crate::embed::QueryStates;
use crate::error::{Error, Result};
use crate::kernels::Format;

/// Tokens per pass: the intermediate activations (tokens × 1,536 floats) stay near 50 MiB
/// however many pairs come (32 pairs of 256 tokens; a rerank of the top 30 is one pass).
const TOKENS_PER_PASS: usize = 8_192;

/// Packs tokenizer encodings (padding left out).
pub(super) fn packing(encodings: &[Encoding]) -> Packing {
    let mut packing = Packing::new();
    for encoding in encodings {
        let mask = encoding.get_attention_mask();
        packing.push(encoding.get_ids(), encoding.get_type_ids(), |t| mask[t] == 1);
    }
    packing
}

impl CrossEncoder {
    /// [`CrossEncoder::score_pairs`] on hyrank's CPU kernels, in passes of at most
    /// [`TOKENS_PER_PASS`] tokens.
    pub(super) fn score_native(
        &self,
        scorer: &NativeScorer,
        lower: &NativeEncoder,
        pairs: &[(&str, ItemText<'_>)],
        known: &[&QueryStates],
    ) -> Result<Vec<f32>> {
        if self.is_prettr() {
            return self.score_prettr(scorer, pairs, known);
        }
        let per_pass = (TOKENS_PER_PASS / self.max_tokens().max(1)).max(1);
        let mut scores = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(per_pass) {
            scores.extend(self.score_joint_pass(scorer, lower, chunk)?);
        }
        Ok(scores)
    }

    fn score_joint_pass(
        &self,
        scorer: &NativeScorer,
        lower: &NativeEncoder,
        pairs: &[(&str, ItemText<'_>)],
    ) -> Result<Vec<f32>> {
        let inputs: Vec<(String, String)> = pairs.iter().map(|(q, d)| (q.to_string(), d.text.to_string())).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let packing = packing(&encodings);
        let mut hidden = lower.forward(&packing, self.frozen_layers)?;
        run_layers(&scorer.layers, &mut hidden, &packing.lengths);
        Ok(scorer.head(&hidden, &packing.segments, &packing.lengths))
    }

    /// PreTTR: both sides of every pair once (each distinct query's frozen pass runs once),
    /// then passes of at most about [`TOKENS_PER_PASS`] rows: each pair's query states and
    /// item states stacked as one packed sequence, the trained layers over all of them, the
    /// head.
    fn score_prettr(
        &self,
        scorer: &NativeScorer,
        pairs: &[(&str, ItemText<'_>)],
        known: &[&QueryStates],
    ) -> Result<Vec<f32>> {
        let sides = self.sides(pairs, known)?;
        let hidden = self.hidden;
        let mut scores = Vec::with_capacity(pairs.len());
        let (mut rows, mut segments, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
        for (i, item) in sides.items.iter().enumerate() {
            let query = &sides.queries[sides.query_of[i]];
            rows.extend_from_slice(query);
            rows.extend_from_slice(item);
            segments.extend(std::iter::repeat_n(0u32, query.len() / hidden));
            segments.extend(std::iter::repeat_n(1u32, item.len() / hidden));
            lengths.push((query.len() + item.len()) / hidden);
            if segments.len() >= TOKENS_PER_PASS || i + 1 == sides.items.len() {
                run_layers(&scorer.layers, &mut rows, &lengths);
                scores.extend(scorer.head(&rows, &segments, &lengths));
                (rows, segments, lengths) = (Vec::new(), Vec::new(), Vec::new());
            }
        }
        Ok(scores)
    }
}

/// The trained layers and the head, on hyrank's CPU kernels.
pub(super) struct NativeScorer {
    layers: Vec<Layer>,
    /// The head's weights (`hidden`) and bias.
    head: (Vec<f32>, f32),
}

impl NativeScorer {
    pub(super) fn load(
        tensors: &HashMap<String, Tensor>,
        config: &Config,
        frozen_layers: usize,
        head: &Linear,
        weights: &std::path::Path,
        format: Format,
    ) -> Result<Self> {
        let layers = (frozen_layers..config.num_hidden_layers)
            .map(|i| Layer::load(tensors, &format!("encoder.layer.{i}"), config, format))
            .collect::<Result<_>>()?;
        let weight = head.weight().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let bias = match head.bias() {
            Some(b) => b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0],
        };
        if weight.len() != config.hidden_size || bias.len() != 1 {
            return Err(Error::Model {
                path: weights.to_path_buf(),
                reason: format!("{HEAD} is not a (1, {}) weight with one bias", config.hidden_size),
            });
        }
        let bias = bias[0];
        Ok(NativeScorer { layers, head: (weight, bias) })
    }

    /// The format the trained layers' projection weights are kept in.
    #[cfg(test)]
    pub(super) fn format(&self) -> Option<Format> {
        self.layers.first().map(Layer::format)
    }

    /// The logit of each packed pair (`lengths` rows each): the query's tokens (segment 0) and
    /// the item's (segment 1) mean-pooled and L2-normalised, multiplied element-wise, weighed
    /// by the head; as [`CrossEncoder::logits`] computes it.
    fn head(&self, hidden: &[f32], segments: &[u32], lengths: &[usize]) -> Vec<f32> {
        let (weight, bias) = &self.head;
        let width = weight.len();
        let mut start = 0;
        lengths
            .iter()
            .map(|&len| {
                let mut sides = [vec![0.0f32; width], vec![0.0f32; width]];
                let mut counts = [0usize; 2];
                for t in start..start + len {
                    let side = usize::from(segments[t] != 0);
                    counts[side] += 1;
                    for (s, v) in sides[side].iter_mut().zip(&hidden[t * width..(t + 1) * width]) {
                        *s += v;
                    }
                }
                start += len;
                for (side, count) in sides.iter_mut().zip(counts) {
                    let count = (count as f32).max(1e-9);
                    side.iter_mut().for_each(|v| *v /= count);
                    let norm = side.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    side.iter_mut().for_each(|v| *v /= norm);
                }
                sides[0].iter().zip(&sides[1]).zip(weight).map(|((q, d), w)| q * d * w).sum::<f32>() + bias
            })
            .collect()
    }
}
