//! MiniLM's BERT encoder, written out so that one implementation runs at every precision the
//! engine offers: f32 (what sentence-transformers runs), f16 and bf16 (for GPUs), and int8
//! weights with 13-bit or 8-bit inputs (int8 and w8a8, for CPUs: hyrank's integer kernels, or
//! Q8_0 blocks through candle's quantized matmul).
//!
//! candle-transformers' `BertModel` does the f32 case, but not the others: its projections are
//! `candle_nn::Linear` (no quantized weights), and it builds the attention mask as
//! `(1 − mask) × f32::MIN` cast to the model's dtype, which is −∞ in f16, so every real token's
//! mask entry becomes 0 × −∞ = NaN. This encoder runs the same operations in the same order
//! (candle-nn's layer-norm kernel, erf GELU, softmax over the last axis; HF's
//! `modeling_bert.py`), so at f32 it computes what `BertModel` computes to 1e-4 (a test holds
//! it to that; the attention's scale is applied to the queries and its softmax is candle's
//! fused one, so the roundings differ), and it builds the mask as a finite large negative
//! number in the activations' dtype.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear};
use candle_transformers::models::bert::Config;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::profile::{Phases, Profiled};

pub(crate) mod native;

/// The number format a transformer's weights and activations run in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout: sentence-transformers' own arithmetic.
    #[default]
    F32,
    /// 16-bit floats. On a GPU, weights and activations (its tensor cores run them); on a CPU,
    /// the projection weights only, widened to f32 in hyrank's kernels: half the bytes that
    /// every query streams, the arithmetic still f32.
    F16,
    /// bfloat16 (weights and activations); for GPUs.
    Bf16,
    /// Projection weights quantized to 8 bits at load time; for CPUs. On hyrank's kernels: one
    /// scale per output column, each product's input quantized per row to 13 bits in the
    /// embedder (8 bits in a trained reranker's layers), integer multiply-adds (`vpmaddwd` on
    /// AVX2, `vpdpwssd`/`vpdpbusd` with AVX-512 VNNI). On candle's
    /// (`HYRANK_CPU_KERNELS=candle`): Q8_0 blocks of 32, activations in f32. Embeddings, layer
    /// norms, attention and biases stay f32.
    Int8,
    /// The same 8-bit weights as [`Precision::Int8`], and every product's input quantized per
    /// row to 8 bits as well (W8A8, the scheme of LLM.int8()'s per-row quantization without its
    /// outlier split); for CPUs. On a CPU with AVX-512 VNNI the products run `vpdpbusd`, four
    /// multiply-adds per 32-bit lane against `vpdpwssd`'s two: the fastest way to embed on such
    /// a CPU, at a cost in fidelity that `int8` does not pay (docs/EVAL.md: cosine to the f32
    /// vectors 0.996–0.999 against int8's 0.999+; SciFact train nDCG@10 within 0.0025 of
    /// f32's). Without VNNI the same integers run on int8's pair tile, at int8's speed. On
    /// candle's path it is [`Precision::Int8`]'s Q8_0.
    W8a8,
}

impl Precision {
    /// Every precision, in the order `--help` lists them.
    pub const ALL: [Precision; 5] = [Precision::F32, Precision::F16, Precision::Bf16, Precision::Int8, Precision::W8a8];

    /// The dtype activations (and unquantized weights) run in.
    pub fn activations(self) -> DType {
        match self {
            Precision::F32 | Precision::Int8 | Precision::W8a8 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// The name used in flags, settings and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
            Precision::W8a8 => "w8a8",
        }
    }

    /// How hyrank's CPU kernels store projection weights at this precision; `None` for bf16,
    /// which they do not run.
    pub(crate) fn cpu_format(self) -> Option<crate::kernels::Format> {
        use crate::kernels::Format;
        match self {
            Precision::F32 => Some(Format::F32),
            Precision::F16 => Some(Format::F16),
            Precision::Int8 => Some(Format::Int8),
            Precision::W8a8 => Some(Format::W8A8),
            Precision::Bf16 => None,
        }
    }

    /// How hyrank's CPU kernels store a trained reranker's layers at this precision: as
    /// [`Precision::cpu_format`], except that int8 takes 8-bit inputs as well as 8-bit weights
    /// (`Format::W8A8`). The ranking barely moves (docs/EVAL.md) and, on a CPU with VNNI, the
    /// byte tile does twice the work per instruction. The embedder's int8 keeps 13-bit inputs
    /// (its vectors are stored, and 8 bits cost them cosine); its w8a8 is this same format,
    /// and so is a reranker's w8a8.
    pub(crate) fn reranker_cpu_format(self) -> Option<crate::kernels::Format> {
        use crate::kernels::Format;
        match self.cpu_format() {
            Some(Format::Int8) => Some(Format::W8A8),
            other => other,
        }
    }

    /// Whether the weights are quantized to integers: int8 and w8a8, which run on the CPU only.
    pub fn is_quantized(self) -> bool {
        matches!(self, Precision::Int8 | Precision::W8a8)
    }

    /// Whether `device` can run this precision here: quantized matmuls are the CPU's.
    ///
    /// # Errors
    /// int8 or w8a8 on a GPU.
    pub fn check_device(self, device: &Device) -> Result<()> {
        if self.is_quantized() && !device.is_cpu() {
            return Err(Error::invalid("precision", format!("{self} runs on the CPU; on a GPU use f16 or bf16")));
        }
        Ok(())
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::invalid("precision", format!("{s:?} is not one of f32, f16, bf16, int8, w8a8")))
    }
}

/// The base model's tensors by name.
pub(crate) type Weights = HashMap<String, Tensor>;

fn tensor(weights: &Weights, name: &str) -> Result<Tensor> {
    weights.get(name).cloned().ok_or_else(|| Error::Model {
        path: Default::default(),
        reason: format!("tensor {name} is missing from the model"),
    })
}

/// A projection `x·Wᵀ + b`.
enum Projection {
    Float(Linear),
    Quantized { weight: QMatMul, bias: Tensor },
}

impl Projection {
    fn load(weights: &Weights, prefix: &str, precision: Precision, device: &Device) -> Result<Self> {
        Self::fused(weights, &[(prefix, 1.0)], precision, device)
    }

    /// Several projections of the same input as one: their weights stacked by output row, so
    /// one matrix product computes all of them (attention's query, key and value: one pass over
    /// the input instead of three, which is what short inputs pay for). Each part's weights
    /// and bias are multiplied by its factor first, in f32 (attention's `1/√head_dim` goes on
    /// the queries here, once, rather than on every pass).
    fn fused(weights: &Weights, parts: &[(&str, f64)], precision: Precision, device: &Device) -> Result<Self> {
        let part = |suffix: &str| -> Result<Tensor> {
            let parts = parts
                .iter()
                .map(|(p, factor)| Ok((tensor(weights, &format!("{p}.{suffix}"))?.to_dtype(DType::F32)? * *factor)?))
                .collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&parts, 0)?.to_device(device)?)
        };
        let (weight, bias) = (part("weight")?, part("bias")?);
        Ok(match precision {
            Precision::Int8 | Precision::W8a8 => {
                let quantized = QTensor::quantize(&weight, GgmlDType::Q8_0)?;
                Projection::Quantized { weight: QMatMul::from_qtensor(quantized)?, bias }
            }
            other => {
                let dtype = other.activations();
                Projection::Float(Linear::new(weight.to_dtype(dtype)?, Some(bias.to_dtype(dtype)?)))
            }
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Projection::Float(linear) => linear.forward(x)?,
            Projection::Quantized { weight, bias } => weight.forward(x)?.broadcast_add(bias)?,
        })
    }
}

fn layer_norm(weights: &Weights, prefix: &str, eps: f64, dtype: DType, device: &Device) -> Result<LayerNorm> {
    let weight = tensor(weights, &format!("{prefix}.weight"))?.to_device(device)?.to_dtype(dtype)?;
    let bias = tensor(weights, &format!("{prefix}.bias"))?.to_device(device)?.to_dtype(dtype)?;
    Ok(LayerNorm::new(weight, bias, eps))
}

/// One transformer layer: self-attention, then the feed-forward block, each with a residual
/// connection and a layer norm after it (post-norm BERT).
struct Layer {
    /// Query, key and value, fused: `(hidden → 3 × hidden)`.
    qkv: Projection,
    attention_out: Projection,
    attention_norm: LayerNorm,
    intermediate: Projection,
    output: Projection,
    output_norm: LayerNorm,
    heads: usize,
}

impl Layer {
    fn load(weights: &Weights, index: usize, config: &Config, precision: Precision, device: &Device) -> Result<Self> {
        let p = |name: &str| format!("encoder.layer.{index}.{name}");
        let proj = |name: &str| Projection::load(weights, &p(name), precision, device);
        let dtype = precision.activations();
        let norm = |name: &str| layer_norm(weights, &p(name), config.layer_norm_eps, dtype, device);
        let scale = 1.0 / ((config.hidden_size / config.num_attention_heads) as f64).sqrt();
        Ok(Layer {
            qkv: Projection::fused(
                weights,
                &[
                    (&p("attention.self.query"), scale),
                    (&p("attention.self.key"), 1.0),
                    (&p("attention.self.value"), 1.0),
                ],
                precision,
                device,
            )?,
            attention_out: proj("attention.output.dense")?,
            attention_norm: norm("attention.output.LayerNorm")?,
            intermediate: proj("intermediate.dense")?,
            output: proj("output.dense")?,
            output_norm: norm("output.LayerNorm")?,
            heads: config.num_attention_heads,
        })
    }

    /// `x`: `(batch, tokens, hidden)`; `mask`: additive, `(batch, 1, 1, tokens)`; `None` when
    /// no row has padding.
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, tokens, hidden) = x.dims3()?;
        let mut phases = Phases::start(x.device(), Profiled::Embed)?;
        let head_dim = hidden / self.heads;
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((batch, tokens, self.heads, head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let qkv = self.qkv.forward(x)?;
        let q = split(qkv.narrow(2, 0, hidden)?)?;
        let k = split(qkv.narrow(2, hidden, hidden)?)?;
        let v = split(qkv.narrow(2, 2 * hidden, hidden)?)?;
        phases.mark("layer: query, key, value", batch, tokens)?;
        // The queries come scaled by `1/√head_dim` (folded into their weights at load) rather
        // than the scores, `(tokens, tokens)`: the same product, no pass of its own. The mask
        // is added only where a row has padding. The softmax is candle's one-kernel form over
        // the last axis (on a GPU one launch and one pass over the scores instead of five).
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.flatten_from(2)?;
        phases.mark("layer: attention", batch, tokens)?;
        let attended = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        phases.mark("layer: attention output and norm", batch, tokens)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        let out = self.output_norm.forward(&(self.output.forward(&inner)? + &attended)?)?;
        phases.mark("layer: feed-forward and norm", batch, tokens)?;
        Ok(out)
    }
}

/// Added to the attention scores of padding: far below any real score in every dtype, yet
/// finite in f16 (whose largest magnitude is 65,504), so `0 × mask` stays 0 for real tokens.
const MASKED: f64 = -1.0e4;

/// BERT's embeddings and its first `layers` transformer layers at one precision.
///
/// On a CPU at f32, f16, int8 and w8a8 it runs on hyrank's own kernels ([`native`]; about 2×
/// candle's CPU path at f32, docs/EVAL.md); everywhere else (GPUs, bf16) on candle's.
/// `HYRANK_CPU_KERNELS=candle` forces candle's on the CPU too, for comparisons.
pub struct Encoder {
    backend: Backend,
    precision: Precision,
}

enum Backend {
    Candle(CandleEncoder),
    Native(native::NativeEncoder),
}

/// The encoder on candle's operations: any device, any precision.
struct CandleEncoder {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// Which CPU kernels an f32 encoder on the CPU runs on: `HYRANK_CPU_KERNELS` unset or `hyrank`
/// for hyrank's own, `candle` for candle's (a switch for comparisons, hence the environment
/// rather than a setting on every command).
///
/// # Errors
/// Any other value, so that a typo does not silently measure the wrong kernels.
fn native_kernels_wanted() -> Result<bool> {
    kernels_choice(std::env::var("HYRANK_CPU_KERNELS").ok().as_deref())
}

fn kernels_choice(value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("hyrank") => Ok(true),
        Some("candle") => Ok(false),
        Some(v) => Err(Error::invalid("HYRANK_CPU_KERNELS", format!("{v:?} is not one of hyrank, candle"))),
    }
}

/// Which kernels an encoder on the CPU runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernels {
    /// As `HYRANK_CPU_KERNELS` says (hyrank's own unless it says candle).
    Environment,
    /// candle's, as on a GPU (tests of that path on the CPU).
    #[cfg_attr(not(test), allow(dead_code))]
    Candle,
}

impl Encoder {
    /// Builds the encoder from the base model's tensors (sentence-transformers' unprefixed
    /// names), keeping the first `layers` layers, on `device` at `precision`.
    ///
    /// # Errors
    /// A missing tensor, more layers than the model has, int8 or w8a8 on a GPU, or a device
    /// failure.
    pub fn load(
        weights: &Weights,
        config: &Config,
        layers: usize,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        Self::load_kernels(weights, config, layers, precision, device, Kernels::Environment)
    }

    /// [`Encoder::load`] on the `kernels` given.
    pub(crate) fn load_kernels(
        weights: &Weights,
        config: &Config,
        layers: usize,
        precision: Precision,
        device: &Device,
        kernels: Kernels,
    ) -> Result<Self> {
        precision.check_device(device)?;
        if config.hidden_act != candle_transformers::models::bert::HiddenAct::Gelu {
            return Err(Error::invalid("hidden_act", "this encoder implements BERT with erf GELU only"));
        }
        if layers > config.num_hidden_layers {
            return Err(Error::invalid("layers", format!("the model has {} layers", config.num_hidden_layers)));
        }
        let native = match kernels {
            Kernels::Environment => native_kernels_wanted()?,
            Kernels::Candle => false,
        };
        Self::load_on(weights, config, layers, precision, device, native)
    }

    /// [`Encoder::load`], saying whether an f32 encoder on the CPU runs on the native kernels.
    fn load_on(
        weights: &Weights,
        config: &Config,
        layers: usize,
        precision: Precision,
        device: &Device,
        native: bool,
    ) -> Result<Self> {
        if let (Some(format), true, true) = (precision.cpu_format(), device.is_cpu(), native) {
            let backend = Backend::Native(native::NativeEncoder::load(weights, config, layers, format)?);
            return Ok(Encoder { backend, precision });
        }
        let dtype = precision.activations();
        let embedding = |name: &str| -> Result<Embedding> {
            let table = tensor(weights, &format!("embeddings.{name}.weight"))?.to_device(device)?.to_dtype(dtype)?;
            Ok(Embedding::new(table, config.hidden_size))
        };
        let backend = Backend::Candle(CandleEncoder {
            word: embedding("word_embeddings")?,
            position: embedding("position_embeddings")?,
            token_type: embedding("token_type_embeddings")?,
            embedding_norm: layer_norm(weights, "embeddings.LayerNorm", config.layer_norm_eps, dtype, device)?,
            layers: (0..layers).map(|i| Layer::load(weights, i, config, precision, device)).collect::<Result<_>>()?,
        });
        Ok(Encoder { backend, precision })
    }

    /// Whether it runs on hyrank's CPU kernels (else on candle's).
    pub fn on_cpu_kernels(&self) -> bool {
        self.native().is_some()
    }

    /// The native encoder, when it runs on hyrank's CPU kernels (the cross-encoder's scoring
    /// path runs the frozen layers on it directly, without padding).
    pub(crate) fn native(&self) -> Option<&native::NativeEncoder> {
        match &self.backend {
            Backend::Native(encoder) => Some(encoder),
            Backend::Candle(_) => None,
        }
    }

    /// The kernels it runs on: `"hyrank-cpu"` (its own: f32 or f16 on a CPU) or `"candle"`.
    pub fn kernels(&self) -> &'static str {
        match self.backend {
            Backend::Native(_) => "hyrank-cpu",
            Backend::Candle(_) => "candle",
        }
    }

    /// Transformer layers kept.
    pub fn layers(&self) -> usize {
        match &self.backend {
            Backend::Candle(encoder) => encoder.layers.len(),
            Backend::Native(encoder) => encoder.layers(),
        }
    }

    /// The precision it runs at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Hidden states of the last kept layer, `(batch, tokens, hidden)` in f32, for token ids,
    /// segment ids (`None`: all 0, one text per row; a query–item pair marks the item 1) and an
    /// attention mask (1 = real token), each of shape `(batch, tokens)`.
    ///
    /// # Errors
    /// Shapes that do not match, or a device failure.
    pub fn forward(&self, ids: &Tensor, segments: Option<&Tensor>, mask: &Tensor) -> Result<Tensor> {
        self.forward_layers(ids, segments, mask, self.layers())
    }

    /// As [`Encoder::forward`], through the first `layers` layers only (a cross-encoder's frozen
    /// part shares the embedder's encoder this way); more than it has is all of them.
    ///
    /// # Errors
    /// Shapes that do not match, or a device failure.
    pub fn forward_layers(
        &self,
        ids: &Tensor,
        segments: Option<&Tensor>,
        mask: &Tensor,
        layers: usize,
    ) -> Result<Tensor> {
        Ok(self.forward_tapped(ids, segments, Some(mask), layers, None)?.0)
    }

    /// As [`Encoder::forward_layers`], also returning the states after the first `tap` layers
    /// when asked, same shape and f32: one pass gives a query's embedding and the states a
    /// PreTTR reranker's frozen layers compute for it ([`crate::embed::QueryStates`]). A `mask`
    /// of `None` says every position is a real token (no row is padded): the same states,
    /// without the mask's operations (on a GPU each is a launch, what a short query pays for).
    ///
    /// # Errors
    /// As [`Encoder::forward_layers`]; a `tap` past the layers run.
    pub fn forward_tapped(
        &self,
        ids: &Tensor,
        segments: Option<&Tensor>,
        mask: Option<&Tensor>,
        layers: usize,
        tap: Option<usize>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let run = layers.min(self.layers());
        if let Some(tap) = tap.filter(|&tap| tap > run) {
            return Err(Error::invalid("layers", format!("a tap after layer {tap} of the {run} run")));
        }
        match &self.backend {
            Backend::Native(encoder) => native::forward_padded(encoder, ids, segments, mask, layers, tap),
            Backend::Candle(encoder) => encoder.forward_layers(ids, segments, mask, layers, tap, self.precision),
        }
    }
}

impl CandleEncoder {
    fn forward_layers(
        &self,
        ids: &Tensor,
        segments: Option<&Tensor>,
        mask: Option<&Tensor>,
        layers: usize,
        tap: Option<usize>,
        precision: Precision,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (_, tokens) = ids.dims2()?;
        let dtype = precision.activations();
        let positions = Tensor::arange(0u32, tokens as u32, ids.device())?;
        let words = self.word.forward(ids)?;
        // No segment ids: every token is segment 0, whose row is added as it is (no lookup).
        let with_segments = match segments {
            Some(segments) => (words + self.token_type.forward(segments)?)?,
            None => words.broadcast_add(&self.token_type.embeddings().narrow(0, 0, 1)?)?,
        };
        let embedded = with_segments.broadcast_add(&self.position.forward(&positions)?)?;
        let mut hidden = self.embedding_norm.forward(&embedded)?;
        let additive = match mask {
            Some(mask) => Some(
                ((mask.to_dtype(DType::F32)?.ones_like()? - mask.to_dtype(DType::F32)?)? * MASKED)?
                    .unsqueeze(1)?
                    .unsqueeze(1)?
                    .to_dtype(dtype)?,
            ),
            None => None,
        };
        // A tensor is shared, not copied: the tap keeps the layer's output alive, nothing more.
        let mut tapped = (tap == Some(0)).then(|| hidden.clone());
        for (i, layer) in self.layers.iter().take(layers).enumerate() {
            hidden = layer.forward(&hidden, additive.as_ref())?;
            if tap == Some(i + 1) {
                tapped = Some(hidden.clone());
            }
        }
        let tapped = tapped.map(|t| t.to_dtype(DType::F32)).transpose()?;
        Ok((hidden.to_dtype(DType::F32)?, tapped))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::BertModel;

    use super::*;
    use crate::kernels::Format;

    #[test]
    fn precisions_parse_and_print_by_name() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert!("fp16".parse::<Precision>().is_err());
        assert_eq!(Precision::default(), Precision::F32);
    }

    fn model_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2")
    }

    /// Two padded inputs: ids and mask, `(2, 6)`.
    fn inputs() -> (Tensor, Tensor) {
        let ids =
            Tensor::new(&[[101u32, 7592, 2088, 102, 0, 0], [101, 2023, 2003, 1037, 3231, 102]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
        (ids, mask)
    }

    fn load() -> (Weights, Config) {
        let dir = model_dir();
        let config = crate::embed::read_config(&dir).expect("the model (scripts/setup.sh)");
        let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
        (weights, config)
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Zeroes the states of padding, which the two backends leave differently (candle computes
    /// them, the native kernels skip them) and no caller reads.
    fn real_tokens(hidden: &Tensor, mask: &Tensor) -> Tensor {
        hidden.broadcast_mul(&mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap()).unwrap()
    }

    #[test]
    fn at_f32_both_backends_compute_what_candles_bert_model_computes() {
        let (weights, config) = load();
        let (ids, mask) = inputs();
        let vb = VarBuilder::from_tensors(weights.clone(), DType::F32, &Device::Cpu);
        let theirs =
            BertModel::load(vb, &config).unwrap().forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
        for native in [true, false] {
            let encoder = Encoder::load_on(&weights, &config, 6, Precision::F32, &Device::Cpu, native).unwrap();
            assert_eq!(encoder.kernels(), if native { "hyrank-cpu" } else { "candle" });
            let ours = encoder.forward(&ids, None, &mask).unwrap();
            let diff = max_abs_diff(&real_tokens(&ours, &mask), &real_tokens(&theirs, &mask));
            assert!(diff < 1e-4, "{}: max |ours − BertModel| = {diff}", encoder.kernels());
            // The unpadded row alone, its mask left out (`None`): the same states, and the
            // tap after layer 4 is what four layers give.
            let (row, ones) = (ids.narrow(0, 1, 1).unwrap(), mask.narrow(0, 1, 1).unwrap());
            let (all, tapped) = encoder.forward_tapped(&row, None, None, 6, Some(4)).unwrap();
            assert_eq!(max_abs_diff(&all, &encoder.forward(&row, None, &ones).unwrap()), 0.0, "{}", encoder.kernels());
            let four = encoder.forward_layers(&row, None, &ones, 4).unwrap();
            assert_eq!(max_abs_diff(&tapped.unwrap(), &four), 0.0, "{}", encoder.kernels());
        }
    }

    #[test]
    fn the_native_kernels_agree_with_candle_on_segments_and_a_partial_stack() {
        let (weights, config) = load();
        let (ids, mask) = inputs();
        let segments = Tensor::new(&[[0u32, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]], &Device::Cpu).unwrap();
        let run = |native| {
            let encoder = Encoder::load_on(&weights, &config, 6, Precision::F32, &Device::Cpu, native).unwrap();
            real_tokens(&encoder.forward_layers(&ids, Some(&segments), &mask, 4).unwrap(), &mask)
        };
        let diff = max_abs_diff(&run(true), &run(false));
        assert!(diff < 1e-4, "max |native − candle| = {diff}");
    }

    #[test]
    fn the_kernels_switch_takes_two_names_and_refuses_others() {
        assert!(kernels_choice(None).unwrap() && kernels_choice(Some("hyrank")).unwrap());
        assert!(!kernels_choice(Some("candle")).unwrap());
        let err = kernels_choice(Some("candel")).unwrap_err().to_string();
        assert!(err.contains("HYRANK_CPU_KERNELS") && err.contains("candel"), "{err}");
    }

    #[test]
    fn the_native_kernels_refuse_mismatched_shapes_and_keep_the_width_of_empty_inputs() {
        let (weights, config) = load();
        let encoder = Encoder::load_on(&weights, &config, 1, Precision::F32, &Device::Cpu, true).unwrap();
        let (ids, mask) = inputs();
        let short = mask.narrow(1, 0, 5).unwrap();
        let err = encoder.forward(&ids, None, &short).unwrap_err().to_string();
        assert!(err.contains("attention mask"), "{err}");
        let nothing = encoder.forward(&ids, None, &mask.zeros_like().unwrap()).unwrap();
        assert_eq!(nothing.dims(), &[2, 6, config.hidden_size]);
    }

    #[test]
    fn the_native_kernels_refuse_a_token_id_outside_the_vocabulary() {
        let (weights, config) = load();
        let encoder = Encoder::load_on(&weights, &config, 1, Precision::F32, &Device::Cpu, true).unwrap();
        let ids = Tensor::new(&[[101u32, config.vocab_size as u32]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1]], &Device::Cpu).unwrap();
        let err = encoder.forward(&ids, None, &mask).unwrap_err().to_string();
        assert!(err.contains("token id"), "{err}");
    }

    #[test]
    fn reduced_precisions_stay_close_and_finite() {
        let (weights, config) = load();
        let (ids, mask) = inputs();
        let run = |p| {
            real_tokens(
                &Encoder::load(&weights, &config, 2, p, &Device::Cpu).unwrap().forward(&ids, None, &mask).unwrap(),
                &mask,
            )
        };
        let reference = run(Precision::F32);
        // int8 on candle's Q8_0 path too, which `HYRANK_CPU_KERNELS=candle` still serves.
        let candle_int8 = real_tokens(
            &Encoder::load_on(&weights, &config, 2, Precision::Int8, &Device::Cpu, false)
                .unwrap()
                .forward(&ids, None, &mask)
                .unwrap(),
            &mask,
        );
        // The embedder's int8 keeps 13-bit inputs (`Format::Int8`); w8a8 takes 8-bit ones
        // (`W8A8`, as a trained reranker's int8 layers do).
        for (precision, format) in [(Precision::Int8, Format::Int8), (Precision::W8a8, Format::W8A8)] {
            let encoder = Encoder::load(&weights, &config, 2, precision, &Device::Cpu).unwrap();
            if let Some(native) = encoder.native() {
                assert_eq!(native.format(), Some(format));
            }
        }
        for (precision, out) in [
            (Precision::Int8, run(Precision::Int8)),
            (Precision::W8a8, run(Precision::W8a8)),
            (Precision::Int8, candle_int8),
            (Precision::Bf16, run(Precision::Bf16)),
            (Precision::F16, run(Precision::F16)),
        ] {
            let values: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
            assert!(values.iter().all(|v| v.is_finite()), "{precision}: non-finite activations");
            let diff = max_abs_diff(&out, &reference);
            assert!(diff < 0.25, "{precision}: max |Δ| {diff} after two layers");
        }
    }
}
