//! The cross-encoder's trained layers: BERT layers written with candle's differentiable
//! operations, so that training reaches every tensor, and with its fused kernels when a loaded
//! reranker only scores.

use candle_core::{DType, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::bert::Config;

use crate::error::Result;
use crate::profile::{Phases, Profiled};

/// One BERT layer written with differentiable operations only.
///
/// candle's `BertLayer` normalises with candle-nn's fused layer-norm kernel, which has no
/// backward pass: gradients stop at the first layer norm, so nothing below the head would train
/// (found by `gradients_reach_every_trainable_tensor_and_only_those` after a SciFact run whose
/// trained layer came back bit-identical). The trainable layers are this one; the frozen ones
/// keep candle's faster kernels. Same weights, same names, same arithmetic.
pub(super) struct TrainableLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    /// Query, key and value as one `(hidden → 3 × hidden)` projection, for scoring only
    /// ([`TrainableLayer::with_fused_qkv`]): one product over the input instead of three.
    /// Training keeps the three, whose weights it updates.
    qkv: Option<Linear>,
    attention_out: Linear,
    attention_norm: (Tensor, Tensor),
    intermediate: Linear,
    output: Linear,
    output_norm: (Tensor, Tensor),
    heads: usize,
    eps: f32,
}

impl TrainableLayer {
    pub(super) fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let norm = |vb: VarBuilder| -> Result<(Tensor, Tensor)> { Ok((vb.get(h, "weight")?, vb.get(h, "bias")?)) };
        Ok(TrainableLayer {
            query: candle_nn::linear(h, h, vb.pp("attention.self.query"))?,
            key: candle_nn::linear(h, h, vb.pp("attention.self.key"))?,
            value: candle_nn::linear(h, h, vb.pp("attention.self.value"))?,
            qkv: None,
            attention_out: candle_nn::linear(h, h, vb.pp("attention.output.dense"))?,
            attention_norm: norm(vb.pp("attention.output.LayerNorm"))?,
            intermediate: candle_nn::linear(h, i, vb.pp("intermediate.dense"))?,
            output: candle_nn::linear(i, h, vb.pp("output.dense"))?,
            output_norm: norm(vb.pp("output.LayerNorm"))?,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
        })
    }

    /// The same layer with its weights in `dtype`.
    pub(super) fn to_dtype(&self, dtype: DType) -> Result<Self> {
        let linear = |l: &Linear| -> Result<Linear> {
            Ok(Linear::new(l.weight().to_dtype(dtype)?, l.bias().map(|b| b.to_dtype(dtype)).transpose()?))
        };
        let norm =
            |(w, b): &(Tensor, Tensor)| -> Result<(Tensor, Tensor)> { Ok((w.to_dtype(dtype)?, b.to_dtype(dtype)?)) };
        Ok(TrainableLayer {
            query: linear(&self.query)?,
            key: linear(&self.key)?,
            value: linear(&self.value)?,
            qkv: self.qkv.as_ref().map(linear).transpose()?,
            attention_out: linear(&self.attention_out)?,
            attention_norm: norm(&self.attention_norm)?,
            intermediate: linear(&self.intermediate)?,
            output: linear(&self.output)?,
            output_norm: norm(&self.output_norm)?,
            heads: self.heads,
            eps: self.eps,
        })
    }

    /// The layer for scoring: query, key and value fused into one projection (their weights
    /// stacked, so the product is the three side by side).
    ///
    /// The attention's scale, `1/√head_dim`, is folded into the query's weights and bias here,
    /// once, instead of a pass over the queries per layer per request.
    pub(super) fn with_fused_qkv(mut self) -> Result<Self> {
        let scale = self.attention_scale();
        let query = Linear::new((self.query.weight() * scale)?, self.query.bias().map(|b| b * scale).transpose()?);
        let parts = [&query, &self.key, &self.value];
        let weight = Tensor::cat(&parts.map(|l| l.weight()), 0)?;
        let biases: Vec<Tensor> = parts.iter().filter_map(|l| l.bias().cloned()).collect();
        let bias = match biases.len() {
            0 => None,
            3 => Some(Tensor::cat(&biases, 0)?),
            _ => {
                return Err(crate::error::Error::invalid(
                    "reranker",
                    "query, key and value must all have a bias or none",
                ))
            }
        };
        self.qkv = Some(Linear::new(weight, bias));
        Ok(self)
    }

    /// `1/√head_dim`, by which attention scales the queries.
    fn attention_scale(&self) -> f64 {
        let head_dim = self.query.weight().dim(0).unwrap_or(0) / self.heads.max(1);
        1.0 / (head_dim.max(1) as f64).sqrt()
    }

    /// One layer over `x` (`(pairs, tokens, hidden)`). `fused`: candle's one-kernel softmax
    /// and layer norm, which have no backward pass, and the fused query-key-value product when
    /// the layer has one: for scoring, never for training.
    ///
    /// The projections run on `(pairs × tokens, hidden)` rows, one matrix product each, rather
    /// than on the 3-D input, which candle-nn's `Linear` multiplies pair by pair against the
    /// weights broadcast (a batched product of `pairs` small ones). The attention's scale goes
    /// on the queries, `(tokens, head_dim)` per head (in the fused projection's weights when
    /// scoring), not on the scores, `(tokens, tokens)`.
    pub(super) fn forward(&self, x: &Tensor, additive_mask: &Tensor, fused: bool) -> Result<Tensor> {
        let (batch, tokens, hidden) = x.dims3()?;
        let mut phases = Phases::start(x.device(), Profiled::Rerank)?;
        let head_dim = hidden / self.heads;
        let rows = x.reshape((batch * tokens, hidden))?;
        let heads = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((batch, tokens, self.heads, head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        // `(pairs, heads, tokens, head_dim)` queries (scaled) and values, and the keys already
        // transposed, `(pairs, heads, head_dim, tokens)`: each laid out once.
        let (q, k_t, v) = match (&self.qkv, fused) {
            (Some(qkv), true) => {
                let all = qkv.forward(&rows)?.reshape((batch, tokens, 3, self.heads, head_dim))?;
                let part = |i: usize| -> Result<Tensor> { Ok(all.narrow(2, i, 1)?.squeeze(2)?) };
                (
                    part(0)?.transpose(1, 2)?.contiguous()?,
                    part(1)?.permute((0, 2, 3, 1))?.contiguous()?,
                    part(2)?.transpose(1, 2)?.contiguous()?,
                )
            }
            _ => (
                (heads(self.query.forward(&rows)?)? * self.attention_scale())?,
                heads(self.key.forward(&rows)?)?.t()?.contiguous()?,
                heads(self.value.forward(&rows)?)?,
            ),
        };
        phases.mark("layer: query, key, value", batch, tokens)?;
        let scores = q.matmul(&k_t)?.broadcast_add(additive_mask)?;
        let probs = if fused {
            candle_nn::ops::softmax_last_dim(&scores)?
        } else {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        };
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((batch * tokens, hidden))?;
        phases.mark("layer: attention", batch, tokens)?;
        let norm = |t: &Tensor, (w, b): &(Tensor, Tensor)| {
            if fused {
                candle_nn::ops::layer_norm(&t.contiguous()?, w, b, self.eps)
            } else {
                candle_nn::ops::layer_norm_slow(t, w, b, self.eps)
            }
        };
        let attended = norm(&(self.attention_out.forward(&context)? + &rows)?, &self.attention_norm)?;
        phases.mark("layer: attention output and norm", batch, tokens)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        let out = norm(&(self.output.forward(&inner)? + &attended)?, &self.output_norm)?;
        phases.mark("layer: feed-forward and norm", batch, tokens)?;
        Ok(out.reshape((batch, tokens, hidden))?)
    }
}
