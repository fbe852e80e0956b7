//! PreTTR's precomputed item side (MacAvaney et al., SIGIR 2020, "Efficient Document Re-Ranking
//! for Transformers by Precomputing Term Representations"): each catalog item's token states
//! after the cross-encoder's frozen layers, computed once when the reranker is trained and
//! stored in the generation, so that a query pays only for its own frozen pass and the trained
//! layers over the pair.
//!
//! Compression: the first `item_tokens` tokens of each item, each token's 384 states quantized
//! to int8 with one f32 scale per token (symmetric, `scale = max |x| / 127`), so a token costs
//! `hidden + 4` bytes: 49,664 bytes for a 128-token item against 196,608 in f32. Training reads the
//! same dequantized states that serving does, so the model is fitted to the rounding.
//!
//! File layout (`reranker-states.bin`), little-endian:
//! `HYRKST01`, a `u64` header length, the JSON [`StatesHeader`], then `items + 1` `u64` token
//! offsets, one `f32` scale per token, and `hidden` `i8` values per token. The file is
//! memory-mapped when opened: offsets and scales (about 1% of it) are copied to the heap, and
//! of the values a server pages in only the items it reranks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"HYRKST01";

/// What a states file was computed with; a reranker reads a file only if every field matches
/// what it would compute itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatesHeader {
    /// SHA-256 of the base model whose frozen layers made the states.
    pub base_model_sha256: String,
    /// Precision the frozen layers ran at (`f32`, `f16`, ...).
    pub precision: String,
    /// Layers the states went through.
    pub frozen_layers: usize,
    /// Token limit of an item's encoding (its text is truncated to this before the pass).
    pub max_tokens: usize,
    /// Tokens kept per item (the first ones, `[CLS]` included).
    pub item_tokens: usize,
    /// Width of a token's states.
    pub hidden: usize,
    /// Items, by catalog index from 0.
    pub items: usize,
}

/// One item's quantized states, owned: `tokens × hidden` values and one scale per token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantizedStates {
    /// One per token.
    pub scales: Vec<f32>,
    /// `tokens × hidden`, row-major.
    pub values: Vec<i8>,
}

impl QuantizedStates {
    /// Quantizes `rows` (`(tokens, hidden)`, row-major): per token, `round(x / scale)` with
    /// `scale = max |x| / 127` (0 for an all-zero token). Each value's error is at most
    /// `scale / 2`.
    ///
    /// # Errors
    /// A value that is not finite (a broken frozen pass must not be stored as zeros).
    pub fn quantize(rows: &[f32], hidden: usize) -> Result<Self> {
        if let Some(position) = rows.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "item states",
                format!("token {} holds {} after the frozen layers", position / hidden.max(1), rows[position]),
            ));
        }
        let mut out = QuantizedStates::default();
        for row in rows.chunks_exact(hidden) {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 0.0 };
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            out.scales.push(scale);
            out.values.extend(row.iter().map(|v| (v * inverse).round().clamp(-127.0, 127.0) as i8));
        }
        Ok(out)
    }

    /// Tokens held.
    pub fn tokens(&self) -> usize {
        self.scales.len()
    }

    /// Appends the dequantized states (`tokens × hidden` floats) to `out`.
    pub fn dequantize_into(&self, out: &mut Vec<f32>) {
        let hidden = if self.scales.is_empty() { 0 } else { self.values.len() / self.scales.len() };
        let bytes: Vec<u8> = self.values.iter().map(|&v| v as u8).collect();
        dequantize(&self.scales, hidden, &bytes, out);
    }
}

/// Appends `scale × value` for each token's `hidden` values (stored as the bytes of `i8`s).
fn dequantize(scales: &[f32], hidden: usize, values: &[u8], out: &mut Vec<f32>) {
    for (&scale, row) in scales.iter().zip(values.chunks_exact(hidden.max(1))) {
        out.extend(row.iter().map(|&v| f32::from(v as i8) * scale));
    }
}

/// Every item's states held on an accelerator, copied once when a reranker is served or
/// trained there: a batch of pairs then gathers its candidates' rows on the device instead of
/// dequantizing them on the host and copying `pairs × tokens × hidden` floats per request
/// (23 MB for the top 100 at 128 item tokens). Costs `(tokens + 1) × (hidden + 4)` bytes of
/// device memory, about the states file's size; a server swapping generations holds both
/// copies until the old engine is dropped.
pub struct DeviceStates {
    /// `(tokens + 1, hidden)` u8, each value stored as `i8 + 128`; the last row is padding.
    values: Tensor,
    /// `(tokens + 1,)` f32; the padding row's is 0.
    scales: Tensor,
    /// The padding row: what a position that holds no item token gathers (zeros).
    pad_row: u32,
}

impl DeviceStates {
    /// The row every position outside an item gathers: it dequantizes to zeros.
    pub fn pad_row(&self) -> u32 {
        self.pad_row
    }

    /// The dequantized states of `rows` (a `u32` tensor of token rows from
    /// [`ItemStates::token_span`], or [`DeviceStates::pad_row`]): `(rows, hidden)` f32, equal
    /// bit for bit to [`ItemStates::dequantize_into`] (`(value as f32) × scale`, both exact
    /// steps before the one product).
    ///
    /// # Errors
    /// A device failure.
    pub fn gather(&self, rows: &Tensor) -> Result<Tensor> {
        let values = self.values.index_select(rows, 0)?.to_dtype(DType::F32)?.affine(1.0, -128.0)?;
        let scales = self.scales.index_select(rows, 0)?.unsqueeze(1)?;
        Ok(values.broadcast_mul(&scales)?)
    }

    /// Bytes held on the device.
    pub fn bytes(&self) -> usize {
        self.values.elem_count() + 4 * self.scales.elem_count()
    }
}

/// The `i8` values as bytes: in memory, or mapped from the file.
enum Values {
    Owned(Vec<u8>),
    Mapped(Mmap),
}

/// Every item's precomputed states: built in memory by the trainer, or opened from a
/// generation's file.
pub struct ItemStates {
    header: StatesHeader,
    /// Token offsets, `items + 1`.
    offsets: Vec<u64>,
    scales: Vec<f32>,
    values: Values,
    /// Where the values start in a mapped file.
    values_at: usize,
}

impl std::fmt::Debug for ItemStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemStates").field("header", &self.header).field("tokens", &self.scales.len()).finish()
    }
}

/// Builds [`ItemStates`] an item at a time, in catalog order, so that a caller computing them
/// in batches holds every item's states once (a batch's own `QuantizedStates` aside), not a
/// list of all of them and then the packed copy.
pub struct ItemStatesBuilder {
    header: StatesHeader,
    offsets: Vec<u64>,
    scales: Vec<f32>,
    values: Vec<u8>,
}

impl ItemStatesBuilder {
    /// An empty builder for `header.items` items.
    pub fn new(header: StatesHeader) -> Self {
        let mut offsets = Vec::with_capacity(header.items + 1);
        offsets.push(0);
        ItemStatesBuilder { header, offsets, scales: Vec::new(), values: Vec::new() }
    }

    /// Appends the next item's states.
    ///
    /// # Errors
    /// More items than the header says, or states not `hidden` wide or longer than
    /// `item_tokens`.
    pub fn push(&mut self, item: &QuantizedStates) -> Result<()> {
        let index = self.offsets.len() - 1;
        if index >= self.header.items {
            return Err(Error::invalid(
                "item states",
                format!("more than the {} items the header says", self.header.items),
            ));
        }
        if item.values.len() != item.tokens() * self.header.hidden || item.tokens() > self.header.item_tokens {
            return Err(Error::invalid(
                "item states",
                format!("item {index}: {} tokens of {} values", item.tokens(), item.values.len()),
            ));
        }
        self.scales.extend_from_slice(&item.scales);
        self.values.extend(item.values.iter().map(|&v| v as u8));
        self.offsets.push(self.scales.len() as u64);
        Ok(())
    }

    /// The states.
    ///
    /// # Errors
    /// Fewer items than the header says.
    pub fn finish(self) -> Result<ItemStates> {
        let items = self.offsets.len() - 1;
        if items != self.header.items {
            return Err(Error::invalid("item states", format!("{items} items, the header says {}", self.header.items)));
        }
        let ItemStatesBuilder { header, offsets, scales, values } = self;
        Ok(ItemStates { header, offsets, scales, values: Values::Owned(values), values_at: 0 })
    }
}

impl ItemStates {
    /// Gathers each item's states, in catalog order (`items[i]` is item `i`).
    ///
    /// # Errors
    /// As [`ItemStatesBuilder::push`] and [`ItemStatesBuilder::finish`].
    pub fn from_items(header: StatesHeader, items: Vec<QuantizedStates>) -> Result<Self> {
        let mut builder = ItemStatesBuilder::new(header);
        for item in &items {
            builder.push(item)?;
        }
        builder.finish()
    }

    /// What the states were computed with.
    pub fn header(&self) -> &StatesHeader {
        &self.header
    }

    /// Bytes of states (scales and values) per item, on average.
    pub fn bytes_per_item(&self) -> f64 {
        (self.scales.len() * (4 + self.header.hidden)) as f64 / self.header.items.max(1) as f64
    }

    /// Item `index`'s rows among all the items' tokens (what [`DeviceStates::gather`] takes),
    /// or `None` for an index the file does not hold.
    pub fn token_span(&self, index: u32) -> Option<std::ops::Range<usize>> {
        let index = index as usize;
        (index < self.header.items).then(|| self.offsets[index] as usize..self.offsets[index + 1] as usize)
    }

    /// Copies every item's values and scales to `device` once ([`DeviceStates`]).
    ///
    /// # Errors
    /// More tokens than a `u32` row index reaches, or the device cannot hold them.
    pub fn to_device(&self, device: &Device) -> Result<DeviceStates> {
        let (tokens, hidden) = (self.scales.len(), self.header.hidden);
        let pad_row = u32::try_from(tokens).map_err(|_| {
            Error::invalid("item states", format!("{tokens} tokens are more than a u32 row index reaches"))
        })?;
        let bytes: &[u8] = match &self.values {
            Values::Owned(values) => values,
            Values::Mapped(map) => &map[self.values_at..],
        };
        // Stored as `i8 + 128` (the byte with its top bit flipped): candle has no i8, and its
        // u8 → f32 cast then gives `value + 128` exactly. The padding row is 128 (0) with scale 0.
        let mut values = Vec::with_capacity((tokens + 1) * hidden);
        values.extend(bytes[..tokens * hidden].iter().map(|&b| b ^ 0x80));
        values.resize((tokens + 1) * hidden, 128);
        let mut scales = self.scales.clone();
        scales.push(0.0);
        Ok(DeviceStates {
            values: Tensor::from_vec(values, (tokens + 1, hidden), device)?,
            scales: Tensor::from_vec(scales, tokens + 1, device)?,
            pad_row,
        })
    }

    /// Appends item `index`'s dequantized states (`tokens × hidden`) to `out` and returns its
    /// token count, or `None` for an index the file does not hold (an item added after it).
    pub fn dequantize_into(&self, index: u32, out: &mut Vec<f32>) -> Option<usize> {
        let index = index as usize;
        if index >= self.header.items {
            return None;
        }
        let (start, end) = (self.offsets[index] as usize, self.offsets[index + 1] as usize);
        let hidden = self.header.hidden;
        let scales = &self.scales[start..end];
        let at = self.values_at;
        let bytes: &[u8] = match &self.values {
            Values::Owned(values) => values,
            Values::Mapped(map) => map,
        };
        dequantize(scales, hidden, &bytes[at + start * hidden..at + end * hidden], out);
        Some(end - start)
    }

    /// Writes the file (see the module documentation for the layout).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let fail = |e: std::io::Error| Error::io(format!("writing {}", path.display()), e);
        // A carried-over generation hard-links its files: replace the link, never write
        // through it into the generation it came from.
        if path.exists() {
            std::fs::remove_file(path).map_err(fail)?;
        }
        let mut out = BufWriter::new(File::create(path).map_err(fail)?);
        let header = serde_json::to_vec(&self.header).map_err(|e| Error::invalid("item states", e.to_string()))?;
        out.write_all(MAGIC).map_err(fail)?;
        out.write_all(&(header.len() as u64).to_le_bytes()).map_err(fail)?;
        out.write_all(&header).map_err(fail)?;
        for offset in &self.offsets {
            out.write_all(&offset.to_le_bytes()).map_err(fail)?;
        }
        for scale in &self.scales {
            out.write_all(&scale.to_le_bytes()).map_err(fail)?;
        }
        let bytes: &[u8] = match &self.values {
            Values::Owned(values) => values,
            Values::Mapped(map) => map,
        };
        out.write_all(&bytes[self.values_at..]).map_err(fail)?;
        out.flush().map_err(fail)
    }

    /// Opens a states file and checks it against what the reranker would compute.
    ///
    /// # Errors
    /// [`Error::BadIndex`] naming the file: unreadable, truncated, not a states file, or made
    /// with another model, precision, layer count, token limits or catalog size than `expected`.
    pub fn open(path: &Path, expected: &StatesHeader) -> Result<Self> {
        let bad = |reason: String| Error::BadIndex { path: PathBuf::from(path), reason };
        let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        // SAFETY: a generation's files are never written after it is published (a new
        // generation replaces its hard links instead, see `write`), so the mapping does not
        // change under the reader. Deleting the file is safe (the mapping keeps the inode);
        // truncating or rewriting a published file in place is not (SIGBUS or torn reads), and
        // docs/SERVICE.md says so.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| bad(format!("cannot map: {e}")))?;
        let take = |at: usize, len: usize| -> Result<&[u8]> {
            at.checked_add(len).and_then(|end| map.get(at..end)).ok_or_else(|| bad("truncated".to_string()))
        };
        if take(0, 8)? != MAGIC {
            return Err(bad("not a hyrank item-states file".into()));
        }
        let header_len = u64::from_le_bytes(take(8, 8)?.try_into().unwrap_or_default()) as usize;
        let header: StatesHeader =
            serde_json::from_slice(take(16, header_len)?).map_err(|e| bad(format!("header: {e}")))?;
        if &header != expected {
            return Err(bad(format!(
                "made for another reranker or catalog: the file holds {header:?}, the generation needs {expected:?}"
            )));
        }
        let mut at = 16 + header_len;
        let offsets: Vec<u64> = take(at, 8 * (header.items + 1))?
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect();
        at += 8 * (header.items + 1);
        let tokens = *offsets.last().unwrap_or(&0) as usize;
        if offsets.windows(2).any(|w| w[1] < w[0] || (w[1] - w[0]) as usize > header.item_tokens) || offsets[0] != 0 {
            return Err(bad("token offsets out of order or over the item limit".into()));
        }
        let scales: Vec<f32> = take(at, 4 * tokens)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect();
        at += 4 * tokens;
        if let Some(scale) = scales.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
            return Err(bad(format!("a token's scale is {scale}")));
        }
        if map.len() != at + tokens * header.hidden {
            return Err(bad(format!("{} bytes, {} expected", map.len(), at + tokens * header.hidden)));
        }
        Ok(ItemStates { header, offsets, scales, values: Values::Mapped(map), values_at: at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(items: usize) -> StatesHeader {
        StatesHeader {
            base_model_sha256: "abc".into(),
            precision: "f32".into(),
            frozen_layers: 4,
            max_tokens: 256,
            item_tokens: 3,
            hidden: 4,
            items,
        }
    }

    #[test]
    fn quantization_error_is_at_most_half_a_step() {
        let rows = [0.5f32, -2.0, 0.001, 1.7, 0.0, 0.0, 0.0, 0.0, -9.5, 3.25, 0.125, 7.0];
        let q = QuantizedStates::quantize(&rows, 4).unwrap();
        let err = QuantizedStates::quantize(&[1.0, f32::NAN, 0.0, 0.0], 4).unwrap_err().to_string();
        assert!(err.contains("token 0") && err.contains("NaN"), "{err}");
        assert!(QuantizedStates::quantize(&[0.0, 0.0, f32::INFINITY, 0.0], 4).is_err());
        let mut back = Vec::new();
        q.dequantize_into(&mut back);
        assert_eq!(back.len(), rows.len());
        for (t, (row, back)) in rows.chunks(4).zip(back.chunks(4)).enumerate() {
            let step = q.scales[t];
            for (x, y) in row.iter().zip(back) {
                assert!((x - y).abs() <= step / 2.0 + 1e-7, "{x} vs {y}, step {step}");
            }
        }
        assert_eq!(&back[4..8], &[0.0; 4], "an all-zero token stays zero");
        assert_eq!(back[8], -9.5, "the largest value of a token is exact");
    }

    #[test]
    fn a_written_file_reads_back_and_a_mismatched_one_is_refused() {
        let items = vec![
            QuantizedStates::quantize(&[1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 0.0, 2.0], 4).unwrap(),
            QuantizedStates::default(),
            QuantizedStates::quantize(&[0.25, -0.5, 0.75, -1.0], 4).unwrap(),
        ];
        let states = ItemStates::from_items(header(3), items.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("states.bin");
        states.write(&path).unwrap();
        let opened = ItemStates::open(&path, &header(3)).unwrap();
        for (index, item) in items.iter().enumerate() {
            let (mut want, mut got) = (Vec::new(), Vec::new());
            item.dequantize_into(&mut want);
            assert_eq!(opened.dequantize_into(index as u32, &mut got), Some(item.tokens()));
            assert_eq!(got, want);
        }
        assert_eq!(opened.dequantize_into(3, &mut Vec::new()), None, "an item the file does not hold");

        let mut other = header(3);
        other.frozen_layers = 5;
        let err = ItemStates::open(&path, &other).unwrap_err().to_string();
        assert!(err.contains("states.bin") && err.contains("another reranker"), "{err}");
        let err = ItemStates::open(&path, &header(4)).unwrap_err().to_string();
        assert!(err.contains("another reranker"), "{err}");
        std::fs::write(&path, b"HYRKST01\x05").unwrap();
        assert!(ItemStates::open(&path, &header(3)).unwrap_err().to_string().contains("truncated"));
        assert!(ItemStates::from_items(header(2), items.clone()).is_err(), "item count must match the header");
        let mut broken = items;
        broken[0].scales[1] = f32::NAN;
        ItemStates::from_items(header(3), broken).unwrap().write(&path).unwrap();
        let err = ItemStates::open(&path, &header(3)).unwrap_err().to_string();
        assert!(err.contains("scale is NaN"), "{err}");
    }
}
