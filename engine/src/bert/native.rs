//! BERT's forward pass at f32 on hyrank's own CPU kernels ([`crate::kernels`]): weights packed
//! once at load, no padding computed, the bias and GELU fused into the products.
//!
//! Inputs are packed: the real tokens of every sequence in the batch are stacked as the rows of
//! one matrix, so the projections (90% of the arithmetic) run once over exactly the tokens that
//! exist, and attention runs per sequence over its own rows. A padded position would be
//! attended to by nothing anyway (its score is −10⁴ below the rest, a weight of 0 in f32),
//! so leaving padding out computes the same states for every real token; padded positions
//! come back as zeros.

use rayon::prelude::*;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::Config;

use super::{tensor, Weights};
use crate::error::{Error, Result};
use crate::kernels::{self, Epilogue, Format, Packed};

/// A layer norm's scale, shift and epsilon.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(weights: &Weights, prefix: &str, eps: f64, hidden: usize) -> Result<Self> {
        let (gamma, beta) =
            (values(weights, &format!("{prefix}.weight"))?, values(weights, &format!("{prefix}.bias"))?);
        if gamma.len() != hidden || beta.len() != hidden {
            return Err(shape_error(prefix, format!("a layer norm of width {hidden}")));
        }
        Ok(Norm { gamma, beta, eps: eps as f32 })
    }

    /// Normalises each row of `rows` in place, rows spread over the pool when there are many.
    fn apply(&self, rows: &mut [f32]) {
        let width = self.gamma.len();
        if rows.len() < 64 * width {
            kernels::layer_norm(rows, &self.gamma, &self.beta, self.eps);
        } else {
            rows.par_chunks_mut(32 * width)
                .for_each(|chunk| kernels::layer_norm(chunk, &self.gamma, &self.beta, self.eps));
        }
    }
}

fn shape_error(name: &str, expected: String) -> Error {
    Error::Model { path: Default::default(), reason: format!("{name} is not {expected}") }
}

fn values(weights: &Weights, name: &str) -> Result<Vec<f32>> {
    Ok(tensor(weights, name)?.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Several projections of the same `k`-wide input packed as one (their weights stacked by
/// output row), the weights kept in `format`.
///
/// # Errors
/// A missing tensor, or one whose shape is not `(outputs, k)` with a bias of `outputs`.
fn projection(weights: &Weights, prefixes: &[&str], k: usize, format: Format) -> Result<Packed> {
    let (mut weight, mut bias) = (Vec::new(), Vec::new());
    for prefix in prefixes {
        let (w, b) = (values(weights, &format!("{prefix}.weight"))?, values(weights, &format!("{prefix}.bias"))?);
        if w.len() != b.len() * k {
            return Err(shape_error(prefix, format!("a projection from {k} inputs")));
        }
        weight.extend(w);
        bias.extend(b);
    }
    if matches!(format, Format::Int8 | Format::W8A8) && k > kernels::MAX_INT8_K {
        return Err(Error::invalid(
            "precision",
            format!(
                "{format:?} on hyrank's kernels takes layers at most {} wide; {prefixes:?} reads {k}",
                kernels::MAX_INT8_K
            ),
        ));
    }
    Ok(Packed::new(&weight, &bias, bias.len(), k, format))
}

/// One post-norm transformer layer.
pub(crate) struct Layer {
    /// Query, key and value: `hidden → 3 × hidden`.
    qkv: Packed,
    attention_out: Packed,
    attention_norm: Norm,
    intermediate: Packed,
    output: Packed,
    output_norm: Norm,
    heads: usize,
}

impl Layer {
    /// Loads layer `prefix` (e.g. `encoder.layer.3`) from the model's tensors, its projection
    /// weights kept in `format` (layer norms and biases stay f32).
    ///
    /// # Errors
    /// A missing tensor, or one of the wrong shape.
    pub(crate) fn load(weights: &Weights, prefix: &str, config: &Config, format: Format) -> Result<Self> {
        let p = |name: &str| format!("{prefix}.{name}");
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        Ok(Layer {
            qkv: projection(
                weights,
                &[&p("attention.self.query"), &p("attention.self.key"), &p("attention.self.value")],
                h,
                format,
            )?,
            attention_out: projection(weights, &[&p("attention.output.dense")], h, format)?,
            attention_norm: Norm::load(weights, &p("attention.output.LayerNorm"), eps, h)?,
            intermediate: projection(weights, &[&p("intermediate.dense")], h, format)?,
            output: projection(weights, &[&p("output.dense")], config.intermediate_size, format)?,
            output_norm: Norm::load(weights, &p("output.LayerNorm"), eps, h)?,
            heads: config.num_attention_heads,
        })
    }

    /// The format its projections' weights are kept in.
    #[cfg(test)]
    pub(crate) fn format(&self) -> Format {
        self.qkv.format()
    }

    /// Runs the layer over packed rows `x` (`(Σ lengths, hidden)`), in place; `lengths` are
    /// the sequences' token counts, in row order; `work` holds the products' outputs between
    /// them, reused from layer to layer.
    pub(crate) fn forward(&self, x: &mut [f32], lengths: &[usize], work: &mut Workspace) {
        let hidden = self.attention_out.outputs();
        let m = x.len() / hidden;
        let Workspace { qkv, context, attended, inner } = work;
        let qkv = sized(qkv, m * self.qkv.outputs());
        kernels::matmul(x, m, &self.qkv, Epilogue::None, qkv);
        let context = sized(context, m * hidden);
        self.attention(qkv, lengths, hidden, context);
        let attended = sized(attended, m * hidden);
        kernels::matmul(context, m, &self.attention_out, Epilogue::Residual(x), attended);
        self.attention_norm.apply(attended);
        let inner = sized(inner, m * self.intermediate.outputs());
        kernels::matmul(attended, m, &self.intermediate, Epilogue::Gelu, inner);
        kernels::matmul(inner, m, &self.output, Epilogue::Residual(attended), x);
        self.output_norm.apply(x);
    }

    /// Multi-head self-attention of every sequence over its own rows, `qkv` `(Σ lengths, 3 ×
    /// hidden)`, into `context` `(Σ lengths, hidden)`: each head writes its own columns.
    fn attention(&self, qkv: &[f32], lengths: &[usize], hidden: usize, context: &mut [f32]) {
        let head_dim = hidden / self.heads;
        let stride = 3 * hidden;
        assert_eq!(context.len(), qkv.len() / 3);
        let starts: Vec<usize> = lengths
            .iter()
            .scan(0, |row, &len| {
                let start = *row;
                *row += len;
                Some(start)
            })
            .collect();
        let target = SharedContext(context.as_mut_ptr());
        let run = |(sequence, head): (usize, usize), scratch: &mut Vec<f32>| {
            let (start, len) = (starts[sequence], lengths[sequence]);
            if len == 0 {
                // Nothing to attend to, and no element of `context` to point at: an empty last
                // sequence starts past the matrix's end (and an all-empty batch's matrix has no
                // allocation at all).
                return;
            }
            let rows = &qkv[start * stride..(start + len) * stride];
            // SAFETY: rows `start..start + len`, columns of `head`: this job's alone (each
            // (sequence, head) pair is one job), inside `context` (`Σ lengths × hidden`), which
            // outlives the jobs.
            unsafe {
                let at = target.at(start * hidden + head * head_dim);
                kernels::attend(rows, len, stride, head * head_dim, hidden, head_dim, at, hidden, scratch);
            }
        };
        let jobs: Vec<(usize, usize)> = (0..lengths.len()).flat_map(|s| (0..self.heads).map(move |h| (s, h))).collect();
        let work: usize = lengths.iter().map(|&l| l * l).sum::<usize>() * hidden;
        if work < kernels::SERIAL_ATTENTION_MACS || rayon::current_num_threads() == 1 {
            let mut scratch = Vec::new();
            jobs.iter().for_each(|&job| run(job, &mut scratch));
        } else {
            jobs.par_iter().for_each_init(Vec::new, |scratch, &job| run(job, scratch));
        }
    }
}

/// The context matrix's base pointer, shared by the heads' jobs, each writing its own columns.
#[derive(Clone, Copy)]
struct SharedContext(*mut f32);

impl SharedContext {
    /// The element `offset` floats in (a method, so that closures capture the whole wrapper
    /// and not its bare pointer field, which is neither `Send` nor `Sync`).
    ///
    /// # Safety
    /// `offset` lies inside the matrix.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller's.
        unsafe { self.0.add(offset) }
    }
}

// SAFETY: the jobs write disjoint regions (see `Layer::attention`).
unsafe impl Send for SharedContext {}
unsafe impl Sync for SharedContext {}

/// One pass's buffers for the products' outputs between a layer's input and its output, kept
/// from layer to layer: allocated (and zeroed) once per pass instead of once per layer, which
/// was 3–4% of an abstract's time. Every product overwrites what it uses, so nothing is
/// zeroed again.
#[derive(Default)]
pub(crate) struct Workspace {
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    inner: Vec<f32>,
}

/// `buffer` as exactly `len` floats, grown (with zeros) if it is shorter.
fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// Runs `layers` over packed rows `x` in place, on one of the pool's threads (see
/// [`NativeEncoder::forward`] for why).
pub(crate) fn run_layers(layers: &[Layer], x: &mut [f32], lengths: &[usize]) {
    let mut work = Workspace::default();
    rayon::scope(|_| kernels::awake(|| layers.iter().for_each(|layer| layer.forward(x, lengths, &mut work))));
}

/// BERT's embeddings and its first layers, on the CPU kernels.
pub(crate) struct NativeEncoder {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
}

/// A batch of sequences, packed: the real tokens of each, in order.
pub(crate) struct Packing {
    /// Token ids, one per real token.
    pub(crate) ids: Vec<u32>,
    /// Segment ids (0: the first text, 1: the second of a pair), one per real token.
    pub(crate) segments: Vec<u32>,
    /// Position ids: each token's index in its padded row.
    pub(crate) positions: Vec<u32>,
    /// Real tokens per sequence.
    pub(crate) lengths: Vec<usize>,
}

impl Packing {
    /// An empty batch.
    pub(crate) fn new() -> Self {
        Packing { ids: Vec::new(), segments: Vec::new(), positions: Vec::new(), lengths: Vec::new() }
    }

    /// Appends one padded row: its token ids and segment ids (the same length), keeping the
    /// positions where `real` holds, each with its index in the row as its position id.
    pub(crate) fn push(&mut self, ids: &[u32], segments: &[u32], real: impl Fn(usize) -> bool) {
        let before = self.ids.len();
        for t in (0..ids.len()).filter(|&t| real(t)) {
            self.ids.push(ids[t]);
            self.segments.push(segments[t]);
            self.positions.push(t as u32);
        }
        self.lengths.push(self.ids.len() - before);
    }
}

impl NativeEncoder {
    /// Packs the embeddings and the first `layers` layers from the model's tensors, the layers'
    /// projection weights in `format` (the embedding tables stay f32: a query reads only its
    /// own rows of them).
    ///
    /// # Errors
    /// A missing tensor, or one of the wrong shape.
    pub(crate) fn load(weights: &Weights, config: &Config, layers: usize, format: Format) -> Result<Self> {
        Ok(NativeEncoder {
            word: values(weights, "embeddings.word_embeddings.weight")?,
            position: values(weights, "embeddings.position_embeddings.weight")?,
            token_type: values(weights, "embeddings.token_type_embeddings.weight")?,
            embedding_norm: Norm::load(weights, "embeddings.LayerNorm", config.layer_norm_eps, config.hidden_size)?,
            layers: (0..layers)
                .map(|i| Layer::load(weights, &format!("encoder.layer.{i}"), config, format))
                .collect::<Result<_>>()?,
            hidden: config.hidden_size,
        })
    }

    /// Width of a hidden state.
    pub(crate) fn hidden(&self) -> usize {
        self.hidden
    }

    /// The format its layers' projection weights are kept in (`None` with no layers).
    #[cfg(test)]
    pub(crate) fn format(&self) -> Option<Format> {
        self.layers.first().map(Layer::format)
    }

    /// Layers kept.
    pub(crate) fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Hidden states after the first `layers` layers, `(Σ lengths, hidden)` row-major, one row
    /// per packed token.
    ///
    /// # Errors
    /// A token, segment or position id outside the model's tables.
    pub(crate) fn forward(&self, input: &Packing, layers: usize) -> Result<Vec<f32>> {
        Ok(self.forward_tapped(input, layers, None)?.0)
    }

    /// [`NativeEncoder::forward`], also returning a copy of the states after the first `tap`
    /// layers (same layout) when asked.
    ///
    /// # Errors
    /// As [`NativeEncoder::forward`].
    pub(crate) fn forward_tapped(
        &self,
        input: &Packing,
        layers: usize,
        tap: Option<usize>,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        // The whole pass runs on one of the pool's threads: each product's fan-out is then a
        // fork within the pool that the running thread takes part in, not a hand-over from a
        // thread outside it (one wake-up of a sleeping thread there and one back, per product),
        // and the pool's other threads stay awake for it until it ends (`kernels::awake`).
        rayon::scope(|_| kernels::awake(|| self.forward_on_pool(input, layers, tap)))
    }

    fn forward_on_pool(
        &self,
        input: &Packing,
        layers: usize,
        tap: Option<usize>,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let h = self.hidden;
        let mut x = vec![0.0; input.ids.len() * h];
        let lookup = |table: &[f32], index: u32, what: &str| -> Result<std::ops::Range<usize>> {
            let start = index as usize * h;
            if start + h > table.len() {
                return Err(Error::invalid(
                    what,
                    format!("{index} is outside the model's {} entries", table.len() / h),
                ));
            }
            Ok(start..start + h)
        };
        for (t, row) in x.chunks_exact_mut(h).enumerate() {
            let word = &self.word[lookup(&self.word, input.ids[t], "token id")?];
            let position = &self.position[lookup(&self.position, input.positions[t], "position")?];
            let segment = &self.token_type[lookup(&self.token_type, input.segments[t], "segment id")?];
            for (i, v) in row.iter_mut().enumerate() {
                *v = word[i] + segment[i] + position[i];
            }
        }
        self.embedding_norm.apply(&mut x);
        let mut work = Workspace::default();
        let mut tapped = (tap == Some(0)).then(|| x.clone());
        for (i, layer) in self.layers.iter().take(layers).enumerate() {
            layer.forward(&mut x, &input.lengths, &mut work);
            if tap == Some(i + 1) {
                tapped = Some(x.clone());
            }
        }
        Ok((x, tapped))
    }
}

/// [`super::Encoder::forward_layers`] on the native kernels: the real tokens packed, run, and put back
/// in their padded places (padding's rows are zeros).
pub(super) fn forward_padded(
    encoder: &NativeEncoder,
    ids: &Tensor,
    segments: Option<&Tensor>,
    mask: Option<&Tensor>,
    layers: usize,
    tap: Option<usize>,
) -> Result<(Tensor, Option<Tensor>)> {
    let (batch, tokens) = ids.dims2()?;
    for (what, other) in [("attention mask", mask), ("segment ids", segments)] {
        if let Some(other) = other {
            if other.dims2()? != (batch, tokens) {
                return Err(Error::invalid(
                    what,
                    format!("shape {:?}, not the ids' ({batch}, {tokens})", other.dims()),
                ));
            }
        }
    }
    let ids = ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
    let segments = match segments {
        Some(s) => s.to_dtype(DType::U32)?.to_vec2::<u32>()?,
        None => vec![vec![0; tokens]; batch],
    };
    let mask = match mask {
        Some(mask) => mask.to_dtype(DType::F32)?.to_vec2::<f32>()?,
        None => vec![vec![1.0; tokens]; batch],
    };
    let mut packing = Packing::new();
    for b in 0..batch {
        packing.push(&ids[b], &segments[b], |t| mask[b][t] > 0.5);
    }
    let (packed, tapped) = encoder.forward_tapped(&packing, layers, tap)?;
    let hidden = encoder.hidden();
    let unpack = |packed: Vec<f32>| -> Result<Tensor> {
        let mut out = vec![0.0f32; batch * tokens * hidden];
        let mut token = 0;
        for (b, &len) in packing.lengths.iter().enumerate() {
            for _ in 0..len {
                let at = (b * tokens + packing.positions[token] as usize) * hidden;
                out[at..at + hidden].copy_from_slice(&packed[token * hidden..(token + 1) * hidden]);
                token += 1;
            }
        }
        Ok(Tensor::from_vec(out, (batch, tokens, hidden), &Device::Cpu)?)
    };
    Ok((unpack(packed)?, tapped.map(unpack).transpose()?))
}
