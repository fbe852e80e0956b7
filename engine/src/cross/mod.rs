//! The trained reranker's model: a cross-encoder that reads a query and an item's title + text
//! together and gives one relevance logit. The learned combination that turns that logit and
//! the retrievers' scores into the final score is [`crate::combination`].
//!
//! Two shapes ([`CrossEncoderSettings::item_tokens`]):
//! - **joint**: every layer reads `[CLS] query [SEP] title + text [SEP]`;
//! - **PreTTR** (MacAvaney et al., SIGIR 2020; the default): the frozen layers read the query
//!   and the item apart, each as one text, and only the trained layers read the pair, as the
//!   query's states followed by the item's. The item side then depends on the item only, so it
//!   is computed once per item and stored in the generation ([`states`]; the two sides are
//!   `prettr.rs`); a query pays for its own frozen pass and the trained layers.
//!
//! The cross-encoder starts from the MiniLM weights the generation embeds with, plus a new head:
//! a weighted dot product of the query's and the item's mean-pooled, normalised last-layer
//! states (both sides read from the pair's last layer). A linear head over one pooled vector of the
//! pair was tried first and learned nothing on SciFact (validation nDCG@10 of its logit 0.27
//! after two epochs, against 0.74 for the hybrid): a linear function of a pooled pair cannot
//! express whether its two halves match, and a bi-encoder's layers do not yet compute that
//! match into single dimensions. The dot-product head starts as a cosine, which they do
//! compute. The lowest `frozen_layers` layers
//! and the embeddings keep their MiniLM weights; only the layers above them and the head are
//! trained, and only those are saved (`reranker.safetensors`, a few MiB per layer), so a
//! generation carries the difference from the base model, not a second copy of it.
//!
//! The split is also what makes training affordable: the frozen part of the network is a fixed
//! function of its input, so the trainer runs it once per training pair (joint) or per item
//! and query (PreTTR) ([`CrossEncoder::frozen`]) and every epoch after that runs only the
//! trainable layers ([`CrossEncoder::logits`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::bert::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

mod layer;
mod native;
mod prettr;
pub mod states;

pub use prettr::{QueryPassCounts, QueryPasses};

use crate::bert::{Encoder, Precision};
use crate::embed::{default_batch_size, load_tokenizer, model_error, read_config, Embedder, QueryStates};
use crate::error::{Error, Result};
use crate::profile::{Phases, Profiled};
use layer::TrainableLayer;
use native::NativeScorer;
use states::{DeviceStates, ItemStates};

/// Name of the head's tensors in `reranker.safetensors`.
const HEAD: &str = "rerank_head";

/// The head's initial weight per dimension: the temperature sentence-transformers' ranking
/// losses use for cosine scores (20), so a softmax over candidates is neither flat nor saturated.
const HEAD_SCALE: f32 = 20.0;

/// How the cross-encoder is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrossEncoderSettings {
    /// Transformer layers (from the bottom) that keep their MiniLM weights.
    pub frozen_layers: usize,
    /// Query and item together are truncated to this many tokens, the item's text first. With
    /// `item_tokens`, each side alone is.
    pub max_tokens: usize,
    /// PreTTR (MacAvaney et al., SIGIR 2020): when set, the frozen layers read the query and
    /// the item apart (each as one text, `[CLS] text [SEP]`), the item's states after them are
    /// precomputed for its first `item_tokens` tokens and stored in the generation (int8, see
    /// [`states`]), and only the trained layers read the pair together. `None`: the frozen
    /// layers read the joint pair `[CLS] query [SEP] item [SEP]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_tokens: Option<usize>,
}

impl CrossEncoderSettings {
    /// The shape `train-reranker` uses unless told otherwise (a `const` so the CLI's defaults
    /// are these values, not a copy of them): PreTTR over the item's first 128 tokens, two
    /// trained layers. On SciFact (docs/EVAL.md, 2026-12-01) it beat the joint model of the same
    /// depth on validation (cross-fitted nDCG@10 0.7792 against 0.7613) and on test (0.7625
    /// against 0.7564) at a seventh of its CPU latency.
    pub const DEFAULT: CrossEncoderSettings =
        CrossEncoderSettings { frozen_layers: 4, max_tokens: 256, item_tokens: Some(128) };

    /// The joint model: the frozen layers read `[CLS] query [SEP] item [SEP]` (the shape before
    /// PreTTR; no stored states).
    pub const JOINT: CrossEncoderSettings = CrossEncoderSettings { item_tokens: None, ..Self::DEFAULT };
}

impl Default for CrossEncoderSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The output of the frozen layers for one batch of pairs: what the trainable layers read.
pub struct FrozenPass {
    /// Hidden states, `(pairs, tokens, hidden)`.
    pub hidden: Tensor,
    /// Attention mask, `(pairs, tokens)`, 1 for real tokens.
    pub mask: Tensor,
    /// `(pairs, tokens)`: 1 for the query's tokens (with `[CLS]` and the first `[SEP]`), 0
    /// elsewhere.
    pub query_mask: Tensor,
    /// `(pairs, tokens)`: 1 for the item's tokens (joint: with the last `[SEP]`; PreTTR: the
    /// item's own `[CLS] text [SEP]`, cut to `item_tokens`), 0 elsewhere.
    pub item_mask: Tensor,
}

/// An item to score: its text (title and text), and its catalog index when it has one, the key
/// of its precomputed states.
#[derive(Debug, Clone, Copy)]
pub struct ItemText<'a> {
    /// Catalog index; `None` for a text outside the generation.
    pub index: Option<u32>,
    /// What the model reads.
    pub text: &'a str,
}

impl<'a> ItemText<'a> {
    /// A text with no catalog index (computed on the fly in PreTTR mode).
    pub fn text(text: &'a str) -> Self {
        ItemText { index: None, text }
    }
}

/// A cross-encoder built from MiniLM.
pub struct CrossEncoder {
    /// The embedder's encoder, whose first `frozen_layers` layers are the frozen part: shared,
    /// not loaded again (same weights, same precision, the generation's).
    lower: Arc<Encoder>,
    frozen_layers: usize,
    /// PreTTR's item window ([`CrossEncoderSettings::item_tokens`]).
    item_tokens: Option<usize>,
    /// PreTTR's precomputed item side, once attached.
    states: Option<ItemStates>,
    /// The same states copied to the accelerator the model runs on (never on a CPU, where
    /// the mapped file is read in place).
    device_states: Option<DeviceStates>,
    /// Width of a token's states.
    hidden: usize,
    upper: Vec<TrainableLayer>,
    head: Linear,
    /// The trained layers and head on hyrank's CPU kernels, when the frozen part runs on them
    /// and the model is not being trained: how it scores at f32 on a CPU.
    native: Option<NativeScorer>,
    /// Loaded to score, not to train: candle's layers then run with fused kernels.
    scoring: bool,
    /// What candle's trained layers compute in (f16 or bf16 when a GPU serves them so; the
    /// pooling and head stay f32).
    layers_dtype: DType,
    tokenizer: Tokenizer,
    device: Device,
    batch_size: usize,
    /// The file its trained weights came from (the base model's, before training), for errors.
    weights: PathBuf,
    /// Queries' frozen passes taken from the embedder's pass, and run here (shared with the
    /// runtime, whose totals outlive a generation, once [`CrossEncoder::count_query_passes_in`]).
    query_passes: Arc<QueryPasses>,
}

/// PreTTR pairs per forward pass on an accelerator: a top 100 in one pass (a pair is at most
/// the query and `item_tokens` long), and a few requests' pairs in one when the rerank worker
/// shares a pass.
const GPU_PRETTR_PASS: usize = 128;

/// Pairs (or texts, for the item states and validation) per forward pass: as the embedder
/// batches texts on a CPU and for a joint model (see `embed.rs` for why), [`GPU_PRETTR_PASS`]
/// for PreTTR on an accelerator; on an accelerator HYRANK_RERANK_PASS_PAIRS sets it for
/// either shape instead (to measure, bench/gpu_run.sh).
fn pass_pairs(device: &Device, item_tokens: Option<usize>) -> usize {
    if device.is_cpu() {
        return default_batch_size(device);
    }
    let set = std::env::var("HYRANK_RERANK_PASS_PAIRS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
    match (set, item_tokens) {
        (Some(pairs), _) => pairs,
        (None, Some(_)) => GPU_PRETTR_PASS,
        (None, None) => default_batch_size(device),
    }
}

/// The tensors being trained, by name, as they are saved.
pub type TrainableVars = Vec<(String, Var)>;

/// Whether a base-model tensor belongs to a trainable layer.
fn is_trainable(name: &str, frozen_layers: usize) -> bool {
    name.strip_prefix("encoder.layer.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|layer| layer >= frozen_layers)
}

struct Parts {
    config: Config,
    tensors: HashMap<String, Tensor>,
    tokenizer: Tokenizer,
}

/// Checks the shape against the model and gathers what a cross-encoder is built from;
/// `tensors` are the base model's weights (read from `model_dir`, or the embedder's own).
fn read_parts(model_dir: &Path, tensors: HashMap<String, Tensor>, settings: &CrossEncoderSettings) -> Result<Parts> {
    let config = read_config(model_dir)?;
    if settings.frozen_layers > config.num_hidden_layers {
        return Err(Error::invalid(
            "frozen_layers",
            format!("the model has {} layers, cannot freeze {}", config.num_hidden_layers, settings.frozen_layers),
        ));
    }
    if settings.max_tokens < 4 || settings.max_tokens > config.max_position_embeddings {
        return Err(Error::invalid(
            "max_tokens",
            format!("must be between 4 and {} for this model", config.max_position_embeddings),
        ));
    }
    if settings.item_tokens.is_some_and(|n| n == 0 || n > settings.max_tokens) {
        return Err(Error::invalid(
            "item_tokens",
            format!(
                "the PreTTR item window (train-reranker --prettr-item-tokens) must be between 1 and the \
                 token limit (--pair-tokens, {}); 0 trains the joint model",
                settings.max_tokens
            ),
        ));
    }
    if tensors.keys().any(|k| k.starts_with("bert.")) {
        return Err(model_error(
            &model_dir.join("model.safetensors"),
            "expected unprefixed BERT tensor names (sentence-transformers layout)",
        ));
    }
    let tokenizer = load_tokenizer(model_dir, settings.max_tokens)?;
    Ok(Parts { config, tensors, tokenizer })
}

impl CrossEncoder {
    fn build(
        parts: Parts,
        device: Device,
        settings: CrossEncoderSettings,
        lower: Arc<Encoder>,
        head: Linear,
        weights: PathBuf,
        inference: Option<Precision>,
    ) -> Result<Self> {
        let Parts { config, tensors, tokenizer } = parts;
        let (frozen_layers, item_tokens) = (settings.frozen_layers, settings.item_tokens);
        let native = match (lower.native(), inference) {
            (Some(_), Some(layers)) => {
                let format = layers.reranker_cpu_format().ok_or_else(|| {
                    Error::invalid("rerank_precision", format!("hyrank's CPU kernels do not run {layers}"))
                })?;
                Some(NativeScorer::load(&tensors, &config, frozen_layers, &head, &weights, format)?)
            }
            (None, Some(Precision::F32)) | (None, None) => None,
            // On a GPU candle's layers run f16 and bf16 on its tensor cores; on a CPU
            // (`HYRANK_CPU_KERNELS=candle`, for comparisons) they would only be slower.
            (None, Some(Precision::F16 | Precision::Bf16)) if !device.is_cpu() => None,
            (None, Some(layers)) => {
                return Err(Error::invalid(
                    "rerank_precision",
                    format!(
                        "{layers} trained layers run on hyrank's CPU kernels (f16, int8) or on a GPU \
                         (f16, bf16); this generation's encoder runs on neither ({} on {:?}): use f32",
                        lower.precision(),
                        device
                    ),
                ))
            }
            (Some(_), None) => None,
        };
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let mut upper = (settings.frozen_layers..config.num_hidden_layers)
            .map(|i| TrainableLayer::load(vb.pp(format!("encoder.layer.{i}")), &config))
            .collect::<Result<Vec<_>>>()?;
        let layers_dtype = match (&native, inference) {
            (None, Some(layers)) => layers.activations(),
            _ => DType::F32,
        };
        // Fused before the cast: the attention scale folded into the query weights is then
        // rounded once, in the layers' format.
        if inference.is_some() {
            upper = upper.into_iter().map(TrainableLayer::with_fused_qkv).collect::<Result<_>>()?;
        }
        if layers_dtype != DType::F32 {
            upper = upper.iter().map(|layer| layer.to_dtype(layers_dtype)).collect::<Result<_>>()?;
        }
        let batch_size = pass_pairs(&device, item_tokens);
        Ok(CrossEncoder {
            lower,
            frozen_layers,
            item_tokens,
            states: None,
            device_states: None,
            hidden: config.hidden_size,
            upper,
            head,
            native,
            scoring: inference.is_some(),
            layers_dtype,
            tokenizer,
            device,
            batch_size,
            weights,
            query_passes: Arc::default(),
        })
    }

    /// A fresh cross-encoder for training: the embedder's MiniLM weights, the layers above
    /// `frozen_layers` as trainable variables (copies: training never changes the embedder),
    /// and a new head (small random weights drawn from `seed`), on the embedder's device.
    /// Returns the model and its trainable variables, by the names [`CrossEncoder::save`] uses.
    pub fn for_training(
        embedder: &Embedder,
        settings: CrossEncoderSettings,
        seed: u64,
    ) -> Result<(Self, TrainableVars)> {
        let device = embedder.device().clone();
        let model_dir = &embedder.settings().model_dir;
        let mut parts = read_parts(model_dir, embedder.weights().clone(), &settings)?;
        let mut vars = Vec::new();
        let mut names: Vec<String> =
            parts.tensors.keys().filter(|k| is_trainable(k, settings.frozen_layers)).cloned().collect();
        names.sort();
        for name in names {
            let var = Var::from_tensor(&parts.tensors[&name])?;
            parts.tensors.insert(name.clone(), var.as_tensor().clone());
            vars.push((name, var));
        }
        let hidden = parts.config.hidden_size;
        // Every dimension weighs HEAD_SCALE at first, so the untrained logit is HEAD_SCALE ×
        // the cosine of the two sides (a dense-retrieval-like score with cross-attention)
        // rather than noise; training reweighs the dimensions. The seed jitters the weights by
        // ±1% so that runs with different seeds are different runs.
        let mut rng = StdRng::seed_from_u64(seed);
        let init: Vec<f32> = (0..hidden).map(|_| HEAD_SCALE * (1.0 + rng.random_range(-0.01f32..0.01f32))).collect();
        let weight = Var::from_tensor(&Tensor::from_vec(init, (1, hidden), &device)?)?;
        let bias = Var::zeros(1, DType::F32, &device)?;
        let head = Linear::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()));
        vars.push((format!("{HEAD}.weight"), weight));
        vars.push((format!("{HEAD}.bias"), bias));
        let lower = Arc::clone(embedder.encoder());
        // Training needs candle's differentiable layers: no native copy, which would go stale.
        let weights = model_dir.join("model.safetensors");
        Ok((Self::build(parts, device, settings, lower, head, weights, None)?, vars))
    }

    /// A trained cross-encoder: the embedder's base weights overlaid with `weights` (the trained
    /// layers and the head, as [`CrossEncoder::save`] wrote them), on the embedder's device.
    /// The frozen layers share the embedder's tensors rather than copying them; the trained
    /// layers run in f32 ([`CrossEncoder::load_at`] chooses).
    pub fn load(embedder: &Embedder, weights: &Path, settings: CrossEncoderSettings) -> Result<Self> {
        Self::load_at(embedder, weights, settings, Precision::F32)
    }

    /// [`CrossEncoder::load`] with the trained layers' projections at `layers` (f32, f16 or
    /// int8 on hyrank's CPU kernels, int8 meaning 8-bit weights and 8-bit inputs,
    /// `Format::W8A8`; f32, f16 or bf16 through candle's layers on a GPU, weights and
    /// activations: a serving choice, since nothing stored depends on it; the frozen layers
    /// stay at the generation's precision, which the stored states were made at).
    ///
    /// # Errors
    /// As [`CrossEncoder::load`]; bf16 on hyrank's CPU kernels, int8 on a GPU, and anything but
    /// f32 where the encoder runs on candle's CPU layers.
    pub fn load_at(
        embedder: &Embedder,
        weights: &Path,
        settings: CrossEncoderSettings,
        layers: Precision,
    ) -> Result<Self> {
        let device = embedder.device();
        let mut parts = read_parts(&embedder.settings().model_dir, embedder.weights().clone(), &settings)?;
        let trained = candle_core::safetensors::load(weights, device).map_err(|e| model_error(weights, e))?;
        let expected = parts.tensors.keys().filter(|k| is_trainable(k, settings.frozen_layers)).count() + 2;
        if trained.len() != expected {
            return Err(model_error(
                weights,
                format!(
                    "holds {} tensors; {expected} expected for {} frozen layers",
                    trained.len(),
                    settings.frozen_layers
                ),
            ));
        }
        let head_tensor = |suffix: &str| {
            trained
                .get(&format!("{HEAD}.{suffix}"))
                .cloned()
                .ok_or_else(|| model_error(weights, format!("no {HEAD}.{suffix}")))
        };
        let head = Linear::new(head_tensor("weight")?, Some(head_tensor("bias")?));
        for (name, tensor) in trained {
            if name.starts_with(HEAD) {
                continue;
            }
            match parts.tensors.get(&name) {
                Some(base) if base.shape() == tensor.shape() => {
                    parts.tensors.insert(name, tensor);
                }
                _ => return Err(model_error(weights, format!("{name} is not a tensor of the base model's shape"))),
            }
        }
        let lower = Arc::clone(embedder.encoder());
        Self::build(parts, device.clone(), settings, lower, head, weights.to_path_buf(), Some(layers))
    }

    /// Writes the trainable tensors (safetensors).
    pub fn save(vars: &TrainableVars, path: &Path) -> Result<()> {
        let tensors: HashMap<String, Tensor> =
            vars.iter().map(|(name, var)| (name.clone(), var.as_tensor().clone())).collect();
        candle_core::safetensors::save(&tensors, path).map_err(|e| model_error(path, e))
    }

    /// The file its trained weights came from.
    pub fn weights_path(&self) -> &Path {
        &self.weights
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Pairs per forward pass when scoring many.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The encoder layers a PreTTR model runs over the query alone (its frozen layers), whose
    /// output it can take from the query's embedding pass ([`CrossEncoder::score_with`]);
    /// `None` for a joint model.
    pub fn query_layers(&self) -> Option<usize> {
        self.is_prettr().then_some(self.frozen_layers)
    }

    fn max_tokens(&self) -> usize {
        self.tokenizer.get_truncation().map_or(256, |t| t.max_length)
    }

    /// Runs the frozen layers over the pairs: over each joint pair, or (PreTTR) over each side
    /// alone, the two sides then laid side by side. No gradient flows through the result.
    pub fn frozen(&self, pairs: &[(&str, ItemText<'_>)]) -> Result<FrozenPass> {
        self.frozen_with(pairs, &[])
    }

    /// [`CrossEncoder::frozen`], a PreTTR model taking a query's side from `known` where the
    /// embedder's pass left it ([`QueryStates`]) instead of running the frozen layers again.
    fn frozen_with(&self, pairs: &[(&str, ItemText<'_>)], known: &[&QueryStates]) -> Result<FrozenPass> {
        if self.is_prettr() {
            return self.frozen_prettr(pairs, known);
        }
        let inputs: Vec<(String, String)> = pairs.iter().map(|(q, d)| (q.to_string(), d.text.to_string())).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let (mut ids, mut types, mut mask) =
            (Vec::with_capacity(rows * width), Vec::with_capacity(rows * width), Vec::with_capacity(rows * width));
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            types.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let types = Tensor::from_vec(types, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let hidden = self.lower.forward_layers(&ids, Some(&types), &mask, self.frozen_layers)?.detach();
        let mask = mask.to_dtype(DType::F32)?;
        let item_mask = (types.to_dtype(DType::F32)? * &mask)?;
        let query_mask = (&mask - &item_mask)?;
        Ok(FrozenPass { hidden, mask, query_mask, item_mask })
    }

    /// The trainable layers, then the head: a weighted dot product of the query's and the
    /// item's pooled, normalised token states. One logit per pair, shape `(pairs,)`.
    pub fn logits(&self, frozen: &FrozenPass) -> Result<Tensor> {
        // BERT's additive mask: 0 where attended, the most negative float where padded.
        // In f16 the most negative f32 becomes -inf; a row always keeps its [CLS] key, so -inf
        // would be safe too, but f16's own minimum keeps the mask finite like f32's.
        let padded = if self.layers_dtype == DType::F32 { f64::from(f32::MIN) } else { -65504.0 };
        let additive = ((frozen.mask.ones_like()? - &frozen.mask)? * padded)?
            .to_dtype(self.layers_dtype)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        let mut hidden = frozen.hidden.to_dtype(self.layers_dtype)?;
        let mut phases = Phases::start(&self.device, Profiled::Rerank)?;
        let (pairs, tokens) = (hidden.dim(0)?, hidden.dim(1)?);
        for layer in &self.upper {
            hidden = layer.forward(&hidden, &additive, self.scoring)?;
            phases.mark("trained layer", pairs, tokens)?;
        }
        let hidden = hidden.to_dtype(DType::F32)?;
        // Each side's tokens, mean-pooled and L2-normalised as sentence-transformers pools
        // MiniLM, but read from the pair's last layer, where every token has attended to both.
        // Both sides' sums are one batched product, `(pairs, 2, tokens) × (pairs, tokens,
        // hidden)`, rather than the states masked and summed once per side.
        let masks = Tensor::stack(&[&frozen.query_mask, &frozen.item_mask], 1)?;
        let means = masks.matmul(&hidden)?.broadcast_div(&masks.sum_keepdim(2)?.clamp(1e-9f32, f32::MAX)?)?;
        let norms = means.sqr()?.sum_keepdim(2)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        let unit = means.broadcast_div(&norms)?;
        let matched = (unit.narrow(1, 0, 1)? * unit.narrow(1, 1, 1)?)?.squeeze(1)?;
        let logits = self.head.forward(&matched)?.squeeze(D::Minus1)?;
        phases.mark("pool and head", pairs, tokens)?;
        Ok(logits)
    }

    /// The logit of every item against one query, in batches.
    pub fn score(&self, query: &str, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        self.score_with(query, None, items)
    }

    /// [`CrossEncoder::score`], starting a PreTTR model from the query's states after the
    /// frozen layers where `states` holds them (the embedder's pass of this query: the same
    /// logits, one query pass fewer). States that are not this model's input (another
    /// encoder, other layers, another tokenization) are not used.
    pub fn score_with(&self, query: &str, states: Option<&QueryStates>, items: &[ItemText<'_>]) -> Result<Vec<f32>> {
        let pairs: Vec<(&str, ItemText<'_>)> = items.iter().map(|t| (query, *t)).collect();
        self.score_pairs_with(&pairs, states.as_slice())
    }

    /// The logits of many pairs from different queries in one pass each batch (the model
    /// worker's entry point).
    pub fn score_pairs(&self, pairs: &[(&str, ItemText<'_>)]) -> Result<Vec<f32>> {
        self.score_pairs_with(pairs, &[])
    }

    /// [`CrossEncoder::score_pairs`] with the queries' states that `known` holds (see
    /// [`CrossEncoder::score_with`]).
    pub fn score_pairs_with(&self, pairs: &[(&str, ItemText<'_>)], known: &[&QueryStates]) -> Result<Vec<f32>> {
        // PreTTR: each query's side once for every pass below (a window wider than one pass
        // would otherwise run it per pass), and counted once.
        let once = if self.is_prettr() { self.queries_once(pairs, known)? } else { Vec::new() };
        let known: Vec<&QueryStates> = if self.is_prettr() { once.iter().collect() } else { known.to_vec() };
        if let (Some(scorer), Some(lower)) = (&self.native, self.lower.native()) {
            return self.score_native(scorer, lower, pairs, &known);
        }
        let mut scores = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(self.batch_size) {
            scores.extend(self.logits(&self.frozen_with(chunk, &known)?)?.to_device(&Device::Cpu)?.to_vec1::<f32>()?);
        }
        Ok(scores)
    }

    /// How many queries' frozen passes were taken from the embedder's pass, and how many ran
    /// here, in the counter it counts in.
    pub fn query_passes(&self) -> QueryPassCounts {
        self.query_passes.counts()
    }

    /// Counts its queries' frozen passes in `counter` (a runtime's, shared across generations)
    /// instead of its own.
    pub fn count_query_passes_in(&mut self, counter: Arc<QueryPasses>) {
        self.query_passes = counter;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::kernels::Format;

    #[test]
    fn trainable_layers_are_those_above_the_frozen_ones() {
        assert!(is_trainable("encoder.layer.5.output.dense.weight", 4));
        assert!(is_trainable("encoder.layer.4.attention.self.query.bias", 4));
        assert!(!is_trainable("encoder.layer.3.output.dense.weight", 4));
        assert!(!is_trainable("embeddings.word_embeddings.weight", 0));
        assert!(is_trainable("encoder.layer.0.output.dense.weight", 0));
    }

    pub(super) fn embedder() -> Embedder {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
        let mut settings = crate::EmbedderSettings::new(dir);
        settings.device = crate::DeviceChoice::Cpu;
        Embedder::load(&settings).expect("the model (scripts/setup.sh)")
    }

    /// A fresh model for training and the same weights loaded as a server loads them.
    pub(super) fn trainer_and_served(embedder: &Embedder, shape: CrossEncoderSettings) -> (CrossEncoder, CrossEncoder) {
        let (trainer, vars) = CrossEncoder::for_training(embedder, shape, 7).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        CrossEncoder::save(&vars, file.path()).unwrap();
        let served = CrossEncoder::load(embedder, file.path(), shape).unwrap();
        (trainer, served)
    }

    pub(super) const PRETTR: CrossEncoderSettings =
        CrossEncoderSettings { frozen_layers: 4, max_tokens: 256, item_tokens: Some(16) };

    pub(super) fn texts() -> Vec<(String, String)> {
        let long = "Alterations of the architecture of cerebral white matter in the developing human brain. ".repeat(6);
        vec![
            (
                "vitamin d and infections".into(),
                "Vitamin D deficiency raises the risk of respiratory infection.".into(),
            ),
            ("brain white matter".into(), long),
            ("a".into(), "b".into()),
        ]
    }

    pub(super) fn close(a: &[f32], b: &[f32], tolerance: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < tolerance * (1.0 + y.abs()))
    }

    /// A loaded model's layers run candle's fused softmax and layer norm (what a GPU serves
    /// with); the trainer's, the differentiable ones: the same logits on the same frozen pass.
    #[test]
    fn fused_scoring_layers_match_the_differentiable_ones() {
        let embedder = embedder();
        let pairs: Vec<(String, String)> = texts();
        let pairs: Vec<(&str, ItemText<'_>)> = pairs.iter().map(|(q, d)| (q.as_str(), ItemText::text(d))).collect();
        for shape in [CrossEncoderSettings::JOINT, PRETTR] {
            let (trainer, served) = trainer_and_served(&embedder, shape);
            assert!(served.scoring && !trainer.scoring);
            let frozen = trainer.frozen(&pairs).unwrap();
            let fused = served.logits(&frozen).unwrap().to_vec1::<f32>().unwrap();
            let differentiable = trainer.logits(&frozen).unwrap().to_vec1::<f32>().unwrap();
            assert!(close(&fused, &differentiable, 1e-4), "{shape:?}: {fused:?} vs {differentiable:?}");
        }
    }

    /// The trained model scored on hyrank's CPU kernels (how a loaded reranker serves) and on
    /// candle's differentiable layers (how the trainer scores) give the same logits, joint and
    /// PreTTR (whose 16-token item window cuts the long text).
    #[test]
    fn native_scoring_matches_the_training_graph() {
        let embedder = embedder();
        if embedder.encoder().native().is_none() {
            return; // HYRANK_CPU_KERNELS=candle: nothing native to compare.
        }
        let texts = texts();
        let pairs: Vec<(&str, ItemText<'_>)> = texts.iter().map(|(q, d)| (q.as_str(), ItemText::text(d))).collect();
        for shape in [CrossEncoderSettings::JOINT, PRETTR] {
            let (trainer, served) = trainer_and_served(&embedder, shape);
            assert!(served.native.is_some() && trainer.native.is_none());
            let (native, graph) = (served.score_pairs(&pairs).unwrap(), trainer.score_pairs(&pairs).unwrap());
            assert!(close(&native, &graph, 1e-3), "{shape:?}: native {native:?} vs graph {graph:?}");
        }
    }

    /// The trained layers at int8 and f16 (a serving choice) score close to f32; bf16, which
    /// the CPU kernels do not run, is refused by name.
    #[test]
    fn reduced_precision_trained_layers_stay_close_to_f32() {
        let embedder = embedder();
        if embedder.encoder().native().is_none() {
            return; // HYRANK_CPU_KERNELS=candle: the setting needs the native kernels.
        }
        let texts = texts();
        let pairs: Vec<(&str, ItemText<'_>)> = texts.iter().map(|(q, d)| (q.as_str(), ItemText::text(d))).collect();
        let (_, vars) = CrossEncoder::for_training(&embedder, PRETTR, 7).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        CrossEncoder::save(&vars, file.path()).unwrap();
        let at = |layers| CrossEncoder::load_at(&embedder, file.path(), PRETTR, layers);
        let reference = at(Precision::F32).unwrap().score_pairs(&pairs).unwrap();
        for (layers, tolerance, format) in [(Precision::F16, 1e-3, Format::F16), (Precision::Int8, 2e-2, Format::W8A8)]
        {
            let model = at(layers).unwrap();
            // int8 trained layers take 8-bit inputs as well as weights; the frozen layers
            // (the embedder's) stay as they are.
            assert_eq!(model.native.as_ref().and_then(|n| n.format()), Some(format), "{layers}");
            let got = model.score_pairs(&pairs).unwrap();
            assert!(close(&got, &reference, tolerance), "{layers}: {got:?} vs f32 {reference:?}");
        }
        let err = at(Precision::Bf16).err().expect("bf16 refused").to_string();
        assert!(err.contains("rerank_precision") && err.contains("bf16"), "{err}");
    }

    /// candle's trained layers at f16 and bf16 (how a GPU serves `--rerank-precision f16|bf16`)
    /// score close to f32 on the same frozen pass; padding stays masked in half precision.
    #[test]
    fn half_precision_candle_layers_stay_close_to_f32() {
        let embedder = embedder();
        let texts = texts();
        let pairs: Vec<(&str, ItemText<'_>)> = texts.iter().map(|(q, d)| (q.as_str(), ItemText::text(d))).collect();
        let (_, vars) = CrossEncoder::for_training(&embedder, PRETTR, 7).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        CrossEncoder::save(&vars, file.path()).unwrap();
        let reference = CrossEncoder::load_at(&embedder, file.path(), PRETTR, Precision::F32).unwrap();
        let frozen = reference.frozen(&pairs).unwrap();
        let want = reference.logits(&frozen).unwrap().to_vec1::<f32>().unwrap();
        for (dtype, tolerance) in [(DType::F16, 1e-2), (DType::BF16, 5e-2)] {
            let mut half = CrossEncoder::load_at(&embedder, file.path(), PRETTR, Precision::F32).unwrap();
            half.upper = half.upper.iter().map(|layer| layer.to_dtype(dtype).unwrap()).collect();
            half.layers_dtype = dtype;
            let got = half.logits(&frozen).unwrap().to_vec1::<f32>().unwrap();
            assert!(got.iter().all(|v| v.is_finite()), "{dtype:?}: {got:?}");
            assert!(close(&got, &want, tolerance), "{dtype:?}: {got:?} vs f32 {want:?}");
        }
    }
}
