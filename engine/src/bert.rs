//! MiniLM's BERT encoder, written out so that one implementation runs at every precision the
//! engine offers: f32 (what sentence-transformers runs), f16 and bf16 (for GPUs), and int8
//! weights (Q8_0 blocks through candle's quantized matmul, for CPUs).
//!
//! candle-transformers' `BertModel` does the f32 case, but not the others: its projections are
//! `candle_nn::Linear` (no quantized weights), and it builds the attention mask as
//! `(1 − mask) × f32::MIN` cast to the model's dtype, which is −∞ in f16, so every real token's
//! mask entry becomes 0 × −∞ = NaN. This encoder runs the same operations in the same order
//! (candle-nn's layer-norm kernel, erf GELU, softmax over the last axis; HF's
//! `modeling_bert.py`), so at f32 it computes what `BertModel` computes (a test holds it to
//! that), and it builds the mask as a finite large negative number in the activations' dtype.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, LayerNorm, Linear};
use candle_transformers::models::bert::Config;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The number format a transformer's weights and activations run in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout: sentence-transformers' own arithmetic.
    #[default]
    F32,
    /// 16-bit floats (weights and activations); for GPUs, whose tensor cores run them.
    F16,
    /// bfloat16 (weights and activations); for GPUs.
    Bf16,
    /// Projection weights quantized to 8 bits in blocks of 32 (Q8_0) at load time, activations
    /// in f32; for CPUs. Embeddings and layer norms stay f32.
    Int8,
}

impl Precision {
    /// Every precision, in the order `--help` lists them.
    pub const ALL: [Precision; 4] = [Precision::F32, Precision::F16, Precision::Bf16, Precision::Int8];

    /// The dtype activations (and unquantized weights) run in.
    pub fn activations(self) -> DType {
        match self {
            Precision::F32 | Precision::Int8 => DType::F32,
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
        }
    }

    /// Whether `device` can run this precision here: quantized matmuls are the CPU's.
    ///
    /// # Errors
    /// int8 on a GPU.
    pub fn check_device(self, device: &Device) -> Result<()> {
        if self == Precision::Int8 && !device.is_cpu() {
            return Err(Error::invalid("precision", "int8 (Q8_0 weights) runs on the CPU; on a GPU use f16 or bf16"));
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
            .ok_or_else(|| Error::invalid("precision", format!("{s:?} is not one of f32, f16, bf16, int8")))
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
        Self::fused(weights, &[prefix], precision, device)
    }

    /// Several projections of the same input as one: their weights stacked by output row, so
    /// one matrix product computes all of them (attention's query, key and value: one pass over
    /// the input instead of three, which is what short inputs pay for).
    fn fused(weights: &Weights, prefixes: &[&str], precision: Precision, device: &Device) -> Result<Self> {
        let part = |suffix: &str| -> Result<Tensor> {
            let parts =
                prefixes.iter().map(|p| tensor(weights, &format!("{p}.{suffix}"))).collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&parts, 0)?.to_device(device)?)
        };
        let (weight, bias) = (part("weight")?, part("bias")?);
        Ok(match precision {
            Precision::Int8 => {
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
        Ok(Layer {
            qkv: Projection::fused(
                weights,
                &[&p("attention.self.query"), &p("attention.self.key"), &p("attention.self.value")],
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

    /// `x`: `(batch, tokens, hidden)`; `mask`: additive, `(batch, 1, 1, tokens)`.
    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens, hidden) = x.dims3()?;
        let head_dim = hidden / self.heads;
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((batch, tokens, self.heads, head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let qkv = self.qkv.forward(x)?;
        let q = split(qkv.narrow(2, 0, hidden)?)?;
        let k = split(qkv.narrow(2, hidden, hidden)?)?;
        let v = split(qkv.narrow(2, 2 * hidden, hidden)?)?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.flatten_from(2)?;
        let attended = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        Ok(self.output_norm.forward(&(self.output.forward(&inner)? + &attended)?)?)
    }
}

/// Added to the attention scores of padding: far below any real score in every dtype, yet
/// finite in f16 (whose largest magnitude is 65,504), so `0 × mask` stays 0 for real tokens.
const MASKED: f64 = -1.0e4;

/// BERT's embeddings and its first `layers` transformer layers at one precision.
pub struct Encoder {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    precision: Precision,
}

impl Encoder {
    /// Builds the encoder from the base model's tensors (sentence-transformers' unprefixed
    /// names), keeping the first `layers` layers, on `device` at `precision`.
    ///
    /// # Errors
    /// A missing tensor, more layers than the model has, int8 on a GPU, or a device failure.
    pub fn load(
        weights: &Weights,
        config: &Config,
        layers: usize,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        precision.check_device(device)?;
        if config.hidden_act != candle_transformers::models::bert::HiddenAct::Gelu {
            return Err(Error::invalid("hidden_act", "this encoder implements BERT with erf GELU only"));
        }
        if layers > config.num_hidden_layers {
            return Err(Error::invalid("layers", format!("the model has {} layers", config.num_hidden_layers)));
        }
        let dtype = precision.activations();
        let embedding = |name: &str| -> Result<Embedding> {
            let table = tensor(weights, &format!("embeddings.{name}.weight"))?.to_device(device)?.to_dtype(dtype)?;
            Ok(Embedding::new(table, config.hidden_size))
        };
        Ok(Encoder {
            word: embedding("word_embeddings")?,
            position: embedding("position_embeddings")?,
            token_type: embedding("token_type_embeddings")?,
            embedding_norm: layer_norm(weights, "embeddings.LayerNorm", config.layer_norm_eps, dtype, device)?,
            layers: (0..layers).map(|i| Layer::load(weights, i, config, precision, device)).collect::<Result<_>>()?,
            precision,
        })
    }

    /// Transformer layers kept.
    pub fn layers(&self) -> usize {
        self.layers.len()
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
        self.forward_layers(ids, segments, mask, self.layers.len())
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
        let (_, tokens) = ids.dims2()?;
        let dtype = self.precision.activations();
        let positions = Tensor::arange(0u32, tokens as u32, ids.device())?;
        let segments = match segments {
            Some(segments) => segments.clone(),
            None => ids.zeros_like()?,
        };
        let embedded = (self.word.forward(ids)? + self.token_type.forward(&segments)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        let mut hidden = self.embedding_norm.forward(&embedded)?;
        let additive = ((mask.to_dtype(DType::F32)?.ones_like()? - mask.to_dtype(DType::F32)?)? * MASKED)?
            .unsqueeze(1)?
            .unsqueeze(1)?
            .to_dtype(dtype)?;
        for layer in self.layers.iter().take(layers) {
            hidden = layer.forward(&hidden, &additive)?;
        }
        Ok(hidden.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::BertModel;

    use super::*;

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

    #[test]
    fn at_f32_it_computes_what_candles_bert_model_computes() {
        let (weights, config) = load();
        let (ids, mask) = inputs();
        let ours = Encoder::load(&weights, &config, config.num_hidden_layers, Precision::F32, &Device::Cpu)
            .unwrap()
            .forward(&ids, None, &mask)
            .unwrap();
        let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let theirs =
            BertModel::load(vb, &config).unwrap().forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
        let diff = max_abs_diff(&ours, &theirs);
        assert!(diff < 1e-4, "max |ours − BertModel| = {diff}");
    }

    #[test]
    fn reduced_precisions_stay_close_and_finite() {
        let (weights, config) = load();
        let (ids, mask) = inputs();
        let run = |p| Encoder::load(&weights, &config, 2, p, &Device::Cpu).unwrap().forward(&ids, None, &mask).unwrap();
        let reference = run(Precision::F32);
        for precision in [Precision::Int8, Precision::Bf16, Precision::F16] {
            let out = run(precision);
            let values: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
            assert!(values.iter().all(|v| v.is_finite()), "{precision}: non-finite activations");
            let diff = max_abs_diff(&out, &reference);
            assert!(diff < 0.25, "{precision}: max |Δ| {diff} after two layers");
        }
    }
}
