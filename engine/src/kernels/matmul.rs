//! The matrix product `epilogue(x·Wᵀ + b)` against weights packed once at load, split over
//! rayon's pool, and its 6 × 16 register tile.

use rayon::prelude::*;

use super::math::{add, gelu};
use super::{isa, Isa, PANEL, SERIAL_MACS, TILE_ROWS};

/// A number format weights can be stored in: f32, or IEEE half (`half::f16`), which halves the
/// bytes a product streams (what a short input is bound by) and is widened to f32 in the
/// kernel; the arithmetic is f32 either way.
pub(crate) trait Element: Copy + Default + Send + Sync + 'static {
    /// From the f32 weight, rounded to nearest.
    fn from_f32(value: f32) -> Self;
    /// Back to f32 (exact).
    fn to_f32(self) -> f32;
    /// Eight consecutive values widened to f32.
    ///
    /// # Safety
    /// `at` is valid for 8 reads; the CPU has AVX2 and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(at: *const Self) -> std::arch::x86_64::__m256;
}

impl Element for f32 {
    fn from_f32(value: f32) -> Self {
        value
    }

    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(at: *const Self) -> std::arch::x86_64::__m256 {
        // SAFETY: the caller's.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(at) }
    }
}

impl Element for half::f16 {
    fn from_f32(value: f32) -> Self {
        half::f16::from_f32(value)
    }

    #[inline(always)]
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(at: *const Self) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's (8 halves are 16 bytes; F16C widens them).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(at.cast::<__m128i>())) }
    }
}

/// How [`Packed`] stores a projection's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// f32: the product is f32 arithmetic throughout.
    F32,
    /// IEEE half, widened to f32 in the kernel; f32 arithmetic.
    F16,
    /// Symmetric 8-bit weights with one scale per output column, multiplied in 32-bit integer
    /// arithmetic against the input quantized per row to 13 bits (see [`Int8Panels`]).
    Int8,
}

/// Packed weights in one of the [`Element`] formats, or quantized.
enum Panels {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
    Int8(Int8Panels),
}

/// Largest magnitude of a quantized weight: 8 bits, symmetric.
const WEIGHT_LEVELS: f32 = 127.0;
/// Largest magnitude of a quantized input: 13 bits. The product runs on 16-bit operands
/// (`vpmaddwd`/`vpdpwssd`), not on 8-bit ones (`vpmaddubsw`, which needs unsigned 8-bit inputs,
/// saturates its 16-bit pair sums and, without VNNI, a second instruction to widen them), so
/// the input keeps 13 bits of precision; the bound keeps `k · 4095 · 127` inside an i32.
const INPUT_LEVELS: f32 = 4095.0;
/// The longest inner dimension an [`Format::Int8`] product takes: `4096 · 4095 · 127 < 2³¹`,
/// so the 32-bit sums cannot overflow (BERT's longest is its FFN width, 1,536 for MiniLM).
pub(crate) const MAX_INT8_K: usize = 4096;

/// Weights in [`Format::Int8`]: `W[j][kk] ≈ values · scales[j]` (rounded to nearest, ties to
/// even, as the inputs are; stored as i8, a quarter of f32's bytes, which is what a short
/// input's product is bound by, and widened to i16 in the tile), with
/// `scales[j] = max_kk |W[j][kk]| / 127` (absmax, per output column, as in LLM.int8() and
/// PyTorch's per-channel dynamic quantization).
///
/// Layout: `ceil(n / 16)` panels of `ceil(k / 2)` steps; step `s`, lane `j` of panel `p` holds
/// the pair `(W[16p + j][2s], W[16p + j][2s + 1])`, which, widened to two i16, is what
/// `vpmaddwd` multiplies against a broadcast pair of inputs; zero beyond `k` and `n`.
struct Int8Panels {
    values: Vec<i8>,
    /// One per output column, zero-padded to a whole panel.
    scales: Vec<f32>,
}

impl Int8Panels {
    fn quantize(weight: &[f32], n: usize, k: usize) -> Self {
        let steps = k.div_ceil(2);
        let mut values = vec![0i8; n.div_ceil(PANEL) * steps * PANEL * 2];
        let mut scales = vec![0.0f32; n.div_ceil(PANEL) * PANEL];
        for (col, row) in weight.chunks_exact(k).enumerate() {
            // A column with a non-finite weight gets a NaN scale: its outputs are NaN, as the
            // f32 product's would be.
            let max = if row.iter().all(|w| w.is_finite()) {
                row.iter().fold(0.0f32, |max, w| max.max(w.abs()))
            } else {
                f32::NAN
            };
            let scale = max / WEIGHT_LEVELS;
            scales[col] = scale;
            let inverse = if scale > 0.0 { (WEIGHT_LEVELS / max).min(f32::MAX) } else { 0.0 };
            let (panel, lane) = (col / PANEL, col % PANEL);
            for (kk, &w) in row.iter().enumerate() {
                let at = ((panel * steps + kk / 2) * PANEL + lane) * 2 + kk % 2;
                values[at] = (w * inverse).round_ties_even().clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS) as i8;
            }
        }
        Int8Panels { values, scales }
    }
}

/// The weights and bias of a projection `y = x·Wᵀ + b`, packed for [`matmul`].
///
/// Layout: `ceil(n / 16)` panels, each `k × 16` row-major (panel `p`, row `kk`, lane `j` holds
/// `W[16p + j][kk]`), zero beyond `n`.
pub(crate) struct Packed {
    k: usize,
    n: usize,
    panels: Panels,
    /// `n` entries, zero-padded to a whole panel; always f32.
    bias: Vec<f32>,
}

impl Packed {
    /// Packs `weight`, `(n, k)` row-major as PyTorch's `Linear` stores it, and `bias` (`n`),
    /// keeping the weights in `format`.
    ///
    /// # Panics
    /// If the lengths do not match `n` and `k`, or `format` is [`Format::Int8`] and `k` is
    /// over [`MAX_INT8_K`].
    pub(crate) fn new(weight: &[f32], bias: &[f32], n: usize, k: usize, format: Format) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not ({n}, {k})");
        assert_eq!(bias.len(), n, "bias is not ({n})");
        let panels = match format {
            Format::F32 => Panels::F32(pack(weight, n, k)),
            Format::F16 => Panels::F16(pack(weight, n, k)),
            Format::Int8 => {
                assert!(k <= MAX_INT8_K, "an int8 product takes k ≤ {MAX_INT8_K}, not {k}");
                Panels::Int8(Int8Panels::quantize(weight, n, k))
            }
        };
        let mut padded = bias.to_vec();
        padded.resize(n.div_ceil(PANEL) * PANEL, 0.0);
        Packed { k, n, panels, bias: padded }
    }

    /// Output width `n`.
    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    fn panel_count(&self) -> usize {
        self.n.div_ceil(PANEL)
    }
}

fn pack<T: Element>(weight: &[f32], n: usize, k: usize) -> Vec<T> {
    let mut packed = vec![T::default(); n.div_ceil(PANEL) * k * PANEL];
    for (col, row) in weight.chunks_exact(k).enumerate() {
        let (panel, lane) = (col / PANEL, col % PANEL);
        for (kk, &w) in row.iter().enumerate() {
            packed[(panel * k + kk) * PANEL + lane] = T::from_f32(w);
        }
    }
    packed
}

/// What [`matmul`] does to each output after adding the bias.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    /// Nothing.
    None,
    /// BERT's activation, `x · Φ(x)` with the exact (erf) normal CDF.
    Gelu,
    /// Adds a residual of the output's shape, `(m, n)` row-major.
    Residual(&'a [f32]),
}

/// A raw pointer that several threads write through, each to rows and columns no other thread
/// touches.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: every user writes a disjoint region (documented at each use).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// `out = epilogue(x·Wᵀ + b)` for `x` of shape `(m, k)` and `out` of shape `(m, n)`, both
/// row-major.
///
/// # Panics
/// If the slices' lengths do not match `m` and the packed matrix's shape.
pub(crate) fn matmul(x: &[f32], m: usize, w: &Packed, epilogue: Epilogue<'_>, out: &mut [f32]) {
    let (k, n) = (w.k, w.n);
    assert_eq!(x.len(), m * k, "input is not ({m}, {k})");
    assert_eq!(out.len(), m * n, "output is not ({m}, {n})");
    if let Epilogue::Residual(r) = epilogue {
        assert_eq!(r.len(), m * n, "residual is not ({m}, {n})");
    }
    if m == 0 || n == 0 {
        return;
    }
    let panels = w.panel_count();
    // Rows per block: the block's inputs stay in L2 (~256 KiB) while every panel passes over them.
    let block_rows = ((65_536 / k.max(1)) / TILE_ROWS * TILE_ROWS).max(TILE_ROWS);
    let row_blocks = m.div_ceil(block_rows);
    let threads = rayon::current_num_threads();
    let serial = m * k * n < SERIAL_MACS || threads == 1;
    // Enough jobs to keep every thread busy. A single block of rows (a query) is split into one
    // column range per thread: each job packs the rows again and is a fork to join, and finer
    // ranges measured 10–13% slower on a 21-token query (criterion, 2 threads).
    let col_chunks = if serial {
        1
    } else if row_blocks == 1 {
        threads.min(panels)
    } else {
        (4 * threads).div_ceil(row_blocks).clamp(1, panels)
    };
    let per_chunk = panels.div_ceil(col_chunks);
    let col_chunks = panels.div_ceil(per_chunk);
    let target = Shared(out.as_mut_ptr());
    let job = |index: usize| {
        let (block, chunk) = (index / col_chunks, index % col_chunks);
        let rows = block * block_rows..((block + 1) * block_rows).min(m);
        let cols = chunk * per_chunk..((chunk + 1) * per_chunk).min(panels);
        // SAFETY: job `index` writes only rows `rows` × panels `cols` of `out`, disjoint from
        // every other job's; `out` outlives the jobs (they finish before `matmul` returns).
        unsafe {
            match &w.panels {
                Panels::F32(panels) => block_product(x, w, panels, rows, cols, epilogue, target),
                Panels::F16(panels) => block_product(x, w, panels, rows, cols, epilogue, target),
                Panels::Int8(panels) => block_product_int8(x, w, panels, rows, cols, epilogue, target),
            }
        };
    };
    let jobs = row_blocks * col_chunks;
    if jobs == 1 {
        job(0);
    } else {
        (0..jobs).into_par_iter().for_each(job);
    }
}

thread_local! {
    /// Each thread's buffer for the rows of the block it is multiplying, reused across calls.
    static PACKED_ROWS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The same for [`Format::Int8`]: the rows quantized as i16 pairs, and each row's scale.
    static QUANTIZED_ROWS: std::cell::RefCell<(Vec<i32>, Vec<f32>, Vec<i16>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// The left operand of a tile: element `(r, kk)` is `values[r · row_stride + kk · k_stride]`
/// (row-major rows: `(lda, 1)`; rows packed side by side: `(1, rows)`).
#[derive(Clone, Copy)]
pub(super) struct Rows<'a> {
    pub(super) values: &'a [f32],
    pub(super) row_stride: usize,
    pub(super) k_stride: usize,
}

/// One job of [`matmul`]: rows `rows` × panels `cols` of the output.
///
/// # Safety
/// `out` points at an `(m, n)` buffer that no one else writes in this region.
unsafe fn block_product<T: Element>(
    x: &[f32],
    w: &Packed,
    panels: &[T],
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epilogue: Epilogue<'_>,
    out: Shared,
) {
    let (k, n) = (w.k, w.n);
    let mut staging = [0.0f32; TILE_ROWS * PANEL];
    PACKED_ROWS.with_borrow_mut(|packed| {
        // The block's rows packed tile by tile, `k × 6` each (step `kk` holds the six rows'
        // values side by side), so the kernel's broadcasts read one contiguous stream instead
        // of six rows far apart.
        let tiles = rows.len().div_ceil(TILE_ROWS);
        packed.clear();
        packed.resize(tiles * k * TILE_ROWS, 0.0);
        for (t, tile_rows) in packed.chunks_exact_mut(k * TILE_ROWS).enumerate() {
            let first = rows.start + t * TILE_ROWS;
            for r in 0..TILE_ROWS.min(rows.end - first) {
                for (kk, &v) in x[(first + r) * k..(first + r + 1) * k].iter().enumerate() {
                    tile_rows[kk * TILE_ROWS + r] = v;
                }
            }
        }
        for panel in cols.clone() {
            let weights = &panels[panel * k * PANEL..(panel + 1) * k * PANEL];
            let bias = &w.bias[panel * PANEL..(panel + 1) * PANEL];
            let width = PANEL.min(n - panel * PANEL);
            for (t, a) in packed.chunks_exact(k * TILE_ROWS).enumerate() {
                let row = rows.start + t * TILE_ROWS;
                let count = TILE_ROWS.min(rows.end - row);
                let a = Rows { values: a, row_stride: 1, k_stride: TILE_ROWS };
                if width == PANEL {
                    // SAFETY: rows row..row+count, columns of this panel: inside this job's region.
                    let c = unsafe { out.0.add(row * n + panel * PANEL) };
                    unsafe { tile(a, count, weights, bias, k, c, n) };
                } else {
                    // A last, partial panel: compute the whole tile aside, copy the real columns.
                    unsafe { tile(a, count, weights, bias, k, staging.as_mut_ptr(), PANEL) };
                    for r in 0..count {
                        let dst = unsafe { out.0.add((row + r) * n + panel * PANEL) };
                        unsafe { std::ptr::copy_nonoverlapping(staging.as_ptr().add(r * PANEL), dst, width) };
                    }
                }
            }
        }
    });
    // SAFETY: the caller's.
    unsafe { finish(n, rows, cols, epilogue, out) };
}

/// The epilogue over one job's region of the output (rows `rows` × panels `cols`), while it is
/// still in cache.
///
/// # Safety
/// As for [`block_product`].
unsafe fn finish(
    n: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epilogue: Epilogue<'_>,
    out: Shared,
) {
    let (c0, c1) = (cols.start * PANEL, (cols.end * PANEL).min(n));
    for row in rows {
        // SAFETY: this job's own row segment.
        let segment = unsafe { std::slice::from_raw_parts_mut(out.0.add(row * n + c0), c1 - c0) };
        match epilogue {
            Epilogue::None => {}
            Epilogue::Gelu => gelu(segment),
            Epilogue::Residual(r) => add(segment, &r[row * n + c0..row * n + c1]),
        }
    }
}

/// [`block_product`] for [`Format::Int8`]: the block's rows are quantized (absmax per row, to
/// ±4,095) and packed as i16 pairs tile by tile, `steps × 6` each, then each panel is
/// multiplied in integers and scaled back to f32 in the tile.
///
/// # Safety
/// As for [`block_product`].
unsafe fn block_product_int8(
    x: &[f32],
    w: &Packed,
    panels: &Int8Panels,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epilogue: Epilogue<'_>,
    out: Shared,
) {
    let (k, n) = (w.k, w.n);
    let steps = k.div_ceil(2);
    let mut staging = [0.0f32; TILE_ROWS * PANEL];
    QUANTIZED_ROWS.with_borrow_mut(|(packed, scales, levels)| {
        let tiles = rows.len().div_ceil(TILE_ROWS);
        packed.clear();
        packed.resize(tiles * steps * TILE_ROWS, 0);
        scales.clear();
        scales.resize(tiles * TILE_ROWS, 0.0);
        levels.clear();
        levels.resize(2 * steps, 0);
        for (i, row) in rows.clone().enumerate() {
            let values = &x[row * k..(row + 1) * k];
            // A row with a NaN or an infinity gets a NaN scale: its outputs are NaN, as the
            // f32 product's would be, never a silently finite number.
            let max = absmax(values);
            let scale = if max.is_finite() { max / INPUT_LEVELS } else { f32::NAN };
            scales[i] = scale;
            // `levels / max` rather than `1 / scale`: finite for any finite non-zero max (a
            // subnormal one included, where `1 / scale` would overflow).
            let inverse = INPUT_LEVELS / max;
            if scale > 0.0 && inverse.is_finite() {
                quantize(values, inverse, &mut levels[..k]);
            } else {
                levels.fill(0);
            }
            let (tile, r) = (i / TILE_ROWS, i % TILE_ROWS);
            for (s, pair) in levels.chunks_exact(2).enumerate() {
                packed[(tile * steps + s) * TILE_ROWS + r] =
                    (pair[0] as u16 as u32 | (pair[1] as u16 as u32) << 16) as i32;
            }
        }
        for panel in cols.clone() {
            let weights = &panels.values[panel * steps * PANEL * 2..(panel + 1) * steps * PANEL * 2];
            let column_scales = &panels.scales[panel * PANEL..(panel + 1) * PANEL];
            let bias = &w.bias[panel * PANEL..(panel + 1) * PANEL];
            let width = PANEL.min(n - panel * PANEL);
            for (t, a) in packed.chunks_exact(steps * TILE_ROWS).enumerate() {
                let row = rows.start + t * TILE_ROWS;
                let count = TILE_ROWS.min(rows.end - row);
                let row_scales = &scales[t * TILE_ROWS..(t + 1) * TILE_ROWS];
                let tile = IntTile { a, weights, row_scales, column_scales, bias, steps };
                if width == PANEL {
                    // SAFETY: rows row..row+count, columns of this panel: inside this job's region.
                    let c = unsafe { out.0.add(row * n + panel * PANEL) };
                    unsafe { tile_int8(tile, count, c, n) };
                } else {
                    unsafe { tile_int8(tile, count, staging.as_mut_ptr(), PANEL) };
                    for r in 0..count {
                        let dst = unsafe { out.0.add((row + r) * n + panel * PANEL) };
                        unsafe { std::ptr::copy_nonoverlapping(staging.as_ptr().add(r * PANEL), dst, width) };
                    }
                }
            }
        }
    });
    // SAFETY: the caller's.
    unsafe { finish(n, rows, cols, epilogue, out) };
}

/// The largest `|v|` of `values` (0 when empty); NaN when one of them is NaN.
fn absmax(values: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx2 {
        // SAFETY: `isa()` saw AVX2 on this CPU.
        return unsafe { absmax_avx2(values) };
    }
    values.iter().fold(0.0f32, |max, v| if v.abs() > max || v.is_nan() { v.abs() } else { max })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn absmax_avx2(values: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let sign = _mm256_set1_ps(-0.0);
    let (mut max, mut nan) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        // SAFETY: 8 floats.
        let v = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
        max = _mm256_max_ps(max, _mm256_andnot_ps(sign, v));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    }
    if _mm256_movemask_ps(nan) != 0 || tail.iter().any(|v| v.is_nan()) {
        return f32::NAN;
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), max) };
    lanes.iter().chain(tail).fold(0.0f32, |max, v| max.max(v.abs()))
}

/// `values · inverse`, rounded to nearest (ties to even), into `out` (as long as `values`);
/// the caller's `inverse` keeps every result within ±4,095.
fn quantize(values: &[f32], inverse: f32, out: &mut [i16]) {
    assert_eq!(values.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx2 {
        // SAFETY: `isa()` saw AVX2 on this CPU; the lengths match.
        return unsafe { quantize_avx2(values, inverse, out) };
    }
    for (q, &v) in out.iter_mut().zip(values) {
        *q = (v * inverse).round_ties_even().clamp(-INPUT_LEVELS, INPUT_LEVELS) as i16;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_avx2(values: &[f32], inverse: f32, out: &mut [i16]) {
    use std::arch::x86_64::*;
    let (scale, high_limit, low_limit) =
        (_mm256_set1_ps(inverse), _mm256_set1_ps(INPUT_LEVELS), _mm256_set1_ps(-INPUT_LEVELS));
    let whole = values.len() / 16 * 16;
    for at in (0..whole).step_by(16) {
        // SAFETY: at + 16 ≤ len for both slices.
        unsafe {
            let (low, high) = (
                _mm256_mul_ps(_mm256_loadu_ps(values.as_ptr().add(at)), scale),
                _mm256_mul_ps(_mm256_loadu_ps(values.as_ptr().add(at + 8)), scale),
            );
            let low = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(low, low_limit), high_limit));
            let high = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(high, low_limit), high_limit));
            // `packs` narrows within 128-bit halves; the permute puts the 16 values in order.
            let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(low, high));
            _mm256_storeu_si256(out.as_mut_ptr().add(at).cast::<__m256i>(), packed);
        }
    }
    for (q, &v) in out[whole..].iter_mut().zip(&values[whole..]) {
        *q = (v * inverse).round_ties_even().clamp(-INPUT_LEVELS, INPUT_LEVELS) as i16;
    }
}

/// One integer tile's operands: up to six quantized rows (`steps × 6` i16 pairs, step-major),
/// one panel of weights, and the scales that bring the integer sums back to f32.
#[derive(Clone, Copy)]
struct IntTile<'a> {
    a: &'a [i32],
    weights: &'a [i8],
    row_scales: &'a [f32],
    column_scales: &'a [f32],
    bias: &'a [f32],
    steps: usize,
}

/// `count` (≤ 6) quantized rows times one quantized panel, scaled, plus the bias, into `c`
/// (row stride `ldc`): `c[r][j] = (Σ a·w) · row_scale[r] · column_scale[j] + bias[j]`.
///
/// # Panics
/// If `count` is not 1–6 or an operand is shorter than `steps` needs.
///
/// # Safety
/// `c` is valid for `count` rows of 16 floats at stride `ldc`.
unsafe fn tile_int8(t: IntTile<'_>, count: usize, c: *mut f32, ldc: usize) {
    assert!((1..=TILE_ROWS).contains(&count) && t.a.len() >= t.steps * TILE_ROWS);
    assert!(t.weights.len() >= t.steps * PANEL * 2 && t.row_scales.len() >= count);
    assert!(t.column_scales.len() >= PANEL && t.bias.len() >= PANEL);
    macro_rules! dispatch {
        ($kernel:ident) => {
            match count {
                1 => $kernel::<1>(t, c, ldc),
                2 => $kernel::<2>(t, c, ldc),
                3 => $kernel::<3>(t, c, ldc),
                4 => $kernel::<4>(t, c, ldc),
                5 => $kernel::<5>(t, c, ldc),
                _ => $kernel::<6>(t, c, ldc),
            }
        };
    }
    match isa() {
        // SAFETY: `vnni()` saw AVX-512 VNNI and VL on this CPU, `isa()` AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if vnni() => unsafe { dispatch!(tile_int8_vnni) },
        // SAFETY: `isa()` saw AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { dispatch!(tile_int8_avx2) },
        _ => unsafe { dispatch!(tile_int8_portable) },
    }
}

/// Whether this CPU has AVX-512 VNNI with 256-bit forms (VL): `vpdpwssd` fuses the integer
/// tile's multiply-add and accumulation into one instruction (`tile_int8_avx2` needs two).
fn vnni() -> bool {
    static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        // HYRANK_NO_VNNI=1 runs the AVX2 tile instead, for comparisons.
        if std::env::var("HYRANK_NO_VNNI").map_or(true, |v| v != "1") {
            return std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512f");
        }
        false
    })
}

/// The integer tile for one instruction set: `R × 16` i32 accumulators in `2R` registers; per
/// step, one broadcast input pair per row and two 16-lane multiply-accumulates against the
/// panel's 16 weight pairs (`$accumulate(acc, inputs, weights)`).
#[cfg(target_arch = "x86_64")]
macro_rules! int8_tile {
    ($(#[$doc:meta])* $name:ident, $features:literal, $accumulate:expr) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize>(t: IntTile<'_>, c: *mut f32, ldc: usize) {
            use std::arch::x86_64::*;
            let (a, b) = (t.a.as_ptr(), t.weights.as_ptr());
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            for s in 0..t.steps {
                // SAFETY: s < steps: the panel's step and each row's pair are in bounds
                // (asserted in `tile_int8`).
                // 32 weights (16 pairs) as bytes, widened to i16 (`vpmovsxbw`).
                let (b0, b1) = unsafe {
                    (
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(s * 32).cast::<__m128i>())),
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(s * 32 + 16).cast::<__m128i>())),
                    )
                };
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((s + 16) * 32) as *const i8);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let v = _mm256_set1_epi32(unsafe { *a.add(s * TILE_ROWS + r) });
                    acc[0] = $accumulate(acc[0], v, b0);
                    acc[1] = $accumulate(acc[1], v, b1);
                }
            }
            // SAFETY: the caller's.
            unsafe { store_int8(&acc, t, c, ldc) };
        }
    };
}

#[cfg(target_arch = "x86_64")]
int8_tile!(
    /// AVX2: `vpmaddwd` then `vpaddd` (16 multiply-adds in two instructions).
    tile_int8_avx2,
    "avx2,fma",
    |acc, v, b| _mm256_add_epi32(acc, _mm256_madd_epi16(v, b))
);

#[cfg(target_arch = "x86_64")]
int8_tile!(
    /// AVX-512 VNNI on 256-bit registers: `vpdpwssd` (the same 16 multiply-adds and their
    /// accumulation in one instruction).
    tile_int8_vnni,
    "avx2,fma,avx512f,avx512vl,avx512vnni",
    |acc, v, b| _mm256_dpwssd_epi32(acc, v, b)
);

/// The integer tile's sums scaled back to f32 (`sum · row_scale · column_scale + bias`) and
/// stored.
///
/// # Safety
/// As for [`tile_int8`]; the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_int8<const R: usize>(
    acc: &[[std::arch::x86_64::__m256i; 2]; R],
    t: IntTile<'_>,
    c: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::*;
    // SAFETY: 16 column scales and biases (asserted in `tile_int8`).
    let (s0, s1, bias0, bias1) = unsafe {
        (
            _mm256_loadu_ps(t.column_scales.as_ptr()),
            _mm256_loadu_ps(t.column_scales.as_ptr().add(8)),
            _mm256_loadu_ps(t.bias.as_ptr()),
            _mm256_loadu_ps(t.bias.as_ptr().add(8)),
        )
    };
    for (r, acc) in acc.iter().enumerate() {
        let row_scale = _mm256_set1_ps(t.row_scales[r]);
        let (scale0, scale1) = (_mm256_mul_ps(row_scale, s0), _mm256_mul_ps(row_scale, s1));
        // SAFETY: the caller guarantees R rows of 16 at stride ldc.
        unsafe {
            _mm256_storeu_ps(c.add(r * ldc), _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[0]), scale0, bias0));
            _mm256_storeu_ps(c.add(r * ldc + 8), _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[1]), scale1, bias1));
        }
    }
}

/// The same integer tile in portable Rust.
unsafe fn tile_int8_portable<const R: usize>(t: IntTile<'_>, c: *mut f32, ldc: usize) {
    let mut acc = [[0i32; PANEL]; R];
    for s in 0..t.steps {
        let b = &t.weights[s * PANEL * 2..(s + 1) * PANEL * 2];
        for (r, acc) in acc.iter_mut().enumerate() {
            let pair = t.a[s * TILE_ROWS + r] as u32;
            let (low, high) = (i32::from(pair as u16 as i16), i32::from((pair >> 16) as u16 as i16));
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc += low * i32::from(b[2 * j]) + high * i32::from(b[2 * j + 1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, &sum) in acc.iter().enumerate() {
            let value = sum as f32 * (t.row_scales[r] * t.column_scales[j]) + t.bias[j];
            // SAFETY: the caller guarantees R rows of 16 at stride ldc.
            unsafe { *c.add(r * ldc + j) = value };
        }
    }
}

/// `count` (≤ 6) rows of `a`, each `k` long, times one panel (`k × 16`), plus `bias`, into `c`
/// (row stride `ldc`).
///
/// # Panics
/// If `count` is not 1–6, `k` is 0, or `a`, `panel` or `bias` is shorter than that needs.
///
/// # Safety
/// `c` is valid for `count` rows of 16 floats at stride `ldc`.
#[inline]
pub(super) unsafe fn tile<T: Element>(
    a: Rows<'_>,
    count: usize,
    panel: &[T],
    bias: &[f32],
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    let last = (count.max(1) - 1) * a.row_stride + (k.max(1) - 1) * a.k_stride;
    assert!((1..=TILE_ROWS).contains(&count) && k > 0 && a.values.len() > last);
    assert!(panel.len() >= k * PANEL && bias.len() >= PANEL);
    macro_rules! dispatch {
        ($kernel:ident) => {
            match count {
                1 => $kernel::<T, 1>(a, panel, bias, k, c, ldc),
                2 => $kernel::<T, 2>(a, panel, bias, k, c, ldc),
                3 => $kernel::<T, 3>(a, panel, bias, k, c, ldc),
                4 => $kernel::<T, 4>(a, panel, bias, k, c, ldc),
                5 => $kernel::<T, 5>(a, panel, bias, k, c, ldc),
                _ => $kernel::<T, 6>(a, panel, bias, k, c, ldc),
            }
        };
    }
    match isa() {
        // SAFETY: `isa()` saw AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { dispatch!(tile_avx2) },
        _ => unsafe { dispatch!(tile_portable) },
    }
}

/// The AVX2 microkernel: `R × 16` accumulators in `2R` registers, one broadcast of `a` and two
/// loads of the panel per step of `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_avx2<T: Element, const R: usize>(
    a: Rows<'_>,
    panel: &[T],
    bias: &[f32],
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::*;
    let (rs, ks, a, b) = (a.row_stride, a.k_stride, a.values.as_ptr(), panel.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for kk in 0..k {
        // SAFETY: kk < k, so the panel row and each a[r][kk] are in bounds (asserted in `tile`).
        let (b0, b1) = unsafe { (T::load8(b.add(kk * PANEL)), T::load8(b.add(kk * PANEL + 8))) };
        // The panel streams from memory on a short input (a query reads each weight once):
        // ask for the line 16 steps ahead. A hint only; past the panel's end it fetches nothing
        // harmful.
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((kk + 16) * PANEL) as *const i8);
        for (r, acc) in acc.iter_mut().enumerate() {
            let v = unsafe { _mm256_broadcast_ss(&*a.add(r * rs + kk * ks)) };
            acc[0] = _mm256_fmadd_ps(v, b0, acc[0]);
            acc[1] = _mm256_fmadd_ps(v, b1, acc[1]);
        }
    }
    let (bias0, bias1) = unsafe { (_mm256_loadu_ps(bias.as_ptr()), _mm256_loadu_ps(bias.as_ptr().add(8))) };
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: the caller guarantees R rows of 16 at stride ldc.
        unsafe {
            _mm256_storeu_ps(c.add(r * ldc), _mm256_add_ps(acc[0], bias0));
            _mm256_storeu_ps(c.add(r * ldc + 8), _mm256_add_ps(acc[1], bias1));
        }
    }
}

/// The same tile in portable Rust (the compiler vectorises the 16 lanes as the target allows).
unsafe fn tile_portable<T: Element, const R: usize>(
    a: Rows<'_>,
    panel: &[T],
    bias: &[f32],
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    let mut acc = [[0.0f32; PANEL]; R];
    for kk in 0..k {
        let b = &panel[kk * PANEL..(kk + 1) * PANEL];
        for (r, acc) in acc.iter_mut().enumerate() {
            let v = a.values[r * a.row_stride + kk * a.k_stride];
            for (acc, &b) in acc.iter_mut().zip(b) {
                *acc += v * b.to_f32();
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, value) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees R rows of 16 at stride ldc.
            unsafe { *c.add(r * ldc + j) = value + bias[j] };
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::{assert_close, erf_reference, naive, values};
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Every shape, including rows that are not a multiple of the tile, columns that are
        /// not a multiple of the panel, and products large enough to be split across threads.
        #[test]
        fn matmul_is_the_matrix_product(m in 1usize..40, n in 1usize..70, k in 1usize..90, seed in 0u32..1000) {
            let (x, w, b) = (values(m * k, seed), values(n * k, seed + 1), values(n, seed + 2));
            let mut out = vec![f32::NAN; m * n];
            matmul(&x, m, &Packed::new(&w, &b, n, k, Format::F32), Epilogue::None, &mut out);
            assert_close(&out, &naive(&x, &w, &b, m, n, k), 1e-5);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// f16 panels compute the product of the f16-rounded weights, in f32 arithmetic.
        #[test]
        fn half_panels_multiply_the_rounded_weights(m in 1usize..20, n in 1usize..40, k in 1usize..50, seed in 0u32..1000) {
            let (x, w, b) = (values(m * k, seed), values(n * k, seed + 1), values(n, seed + 2));
            let rounded: Vec<f32> = w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            let mut out = vec![f32::NAN; m * n];
            matmul(&x, m, &Packed::new(&w, &b, n, k, Format::F16), Epilogue::None, &mut out);
            assert_close(&out, &naive(&x, &rounded, &b, m, n, k), 1e-5);
        }
    }

    #[test]
    fn large_products_split_across_threads_agree_with_the_definition() {
        // Many row blocks (a batch), and one block split by columns (a query), on 3 threads.
        for (m, n, k) in [(200, 384, 384), (10, 1152, 384), (40, 384, 1536)] {
            let (x, w, b) = (values(m * k, 7), values(n * k, 8), values(n, 9));
            let mut out = vec![0.0; m * n];
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            pool.install(|| matmul(&x, m, &Packed::new(&w, &b, n, k, Format::F32), Epilogue::None, &mut out));
            // f32 sums of 1,536 terms round more than 1e-5; the integer sums are exact.
            assert_close(&out, &naive(&x, &w, &b, m, n, k), if k > 384 { 5e-5 } else { 1e-5 });
            pool.install(|| matmul(&x, m, &Packed::new(&w, &b, n, k, Format::Int8), Epilogue::None, &mut out));
            assert_close(&out, &quantized_product(&x, &w, &b, m, n, k), 1e-5);
        }
    }

    /// The quantization [`Format::Int8`] is specified by, written out: each row of `values`
    /// (`width` long) to `±levels` steps of `absmax / levels`, rounded to nearest (ties to
    /// even), then back
    /// (in f64, so that the reference adds no rounding of its own).
    fn quantized(values: &[f32], width: usize, levels: f32) -> Vec<f64> {
        values
            .chunks(width)
            .flat_map(|row| {
                let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let (scale, inverse) = (max / levels, if max > 0.0 { levels / max } else { 0.0 });
                row.iter().map(move |&v| f64::from((v * inverse).round_ties_even()) * f64::from(scale))
            })
            .collect()
    }

    /// `x·Wᵀ + b` of the quantized operands, in f64.
    fn quantized_product(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let (xq, wq) = (quantized(x, k, INPUT_LEVELS), quantized(w, k, WEIGHT_LEVELS));
        (0..m * n)
            .map(|at| {
                let (i, j) = (at / n, at % n);
                let dot: f64 = (0..k).map(|t| xq[i * k + t] * wq[j * k + t]).sum();
                (dot + f64::from(b[j])) as f32
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The int8 product is the exact product of the quantized operands (odd `k`, partial
        /// tiles and panels included), and within the quantization's own error bound of the
        /// f32 product: `Σ |x|·δw + |w|·δx + δx·δw` with `δ` half a step.
        #[test]
        fn int8_is_the_product_of_the_quantized_operands(m in 1usize..40, n in 1usize..70, k in 1usize..90, seed in 0u32..1000) {
            let (x, w, b) = (values(m * k, seed), values(n * k, seed + 1), values(n, seed + 2));
            let x: Vec<f32> = x.iter().enumerate().map(|(i, v)| if i % 7 == 3 { v * 40.0 } else { *v }).collect();
            let mut out = vec![f32::NAN; m * n];
            matmul(&x, m, &Packed::new(&w, &b, n, k, Format::Int8), Epilogue::None, &mut out);
            assert_close(&out, &quantized_product(&x, &w, &b, m, n, k), 1e-5);
            let exact = naive(&x, &w, &b, m, n, k);
            let half_step = |row: &[f32], levels: f32| row.iter().fold(0.0f32, |m, v| m.max(v.abs())) / levels / 2.0;
            for i in 0..m {
                let (xr, dx) = (&x[i * k..(i + 1) * k], half_step(&x[i * k..(i + 1) * k], INPUT_LEVELS));
                for j in 0..n {
                    let (wr, dw) = (&w[j * k..(j + 1) * k], half_step(&w[j * k..(j + 1) * k], WEIGHT_LEVELS));
                    let bound: f32 = xr.iter().zip(wr).map(|(a, b)| a.abs() * dw + b.abs() * dx + dx * dw).sum();
                    let error = (out[i * n + j] - exact[i * n + j]).abs();
                    prop_assert!(error <= bound * 1.001 + 1e-5, "({i}, {j}): error {error} over bound {bound}");
                }
            }
        }
    }

    #[test]
    fn int8_rows_with_a_nan_or_an_infinity_come_out_nan_and_the_rest_are_untouched() {
        let (m, n, k) = (3, 20, 9);
        let (mut x, w, b) = (values(m * k, 1), values(n * k, 2), values(n, 3));
        x[4] = f32::NAN;
        x[2 * k + 1] = f32::INFINITY;
        let mut out = vec![0.0; m * n];
        matmul(&x, m, &Packed::new(&w, &b, n, k, Format::Int8), Epilogue::None, &mut out);
        assert!(out[..n].iter().all(|v| v.is_nan()) && out[2 * n..].iter().all(|v| v.is_nan()));
        assert!(out[n..2 * n].iter().all(|v| v.is_finite()));
        let zeros = vec![0.0; k];
        let mut row = vec![f32::NAN; n];
        matmul(&zeros, 1, &Packed::new(&w, &b, n, k, Format::Int8), Epilogue::None, &mut row);
        assert_eq!(row, b, "an all-zero row is the bias");
    }

    /// The bound the integer sums are sized for, reached: k = 4,096 with every input at ±4,095
    /// levels and every weight at ±127, same signs and opposite signs, is exact.
    #[test]
    fn int8_sums_at_the_largest_k_and_extreme_values_do_not_overflow() {
        let k = MAX_INT8_K;
        for sign in [1.0f32, -1.0] {
            let (x, w) = (vec![1.0f32; k], vec![sign; k]);
            let mut out = [0.0f32];
            matmul(&x, 1, &Packed::new(&w, &[0.0], 1, k, Format::Int8), Epilogue::None, &mut out);
            // Each product is 4095 · 127 levels, scaled back by (1/4095) · (1/127): the sum is
            // k up to the scales' rounding; a wrapped i32 would be negative for sign 1.
            assert!((out[0] - sign * k as f32).abs() < 1e-2, "{sign}: {}", out[0]);
        }
    }

    #[test]
    fn int8_columns_with_a_non_finite_weight_come_out_nan() {
        let (n, k) = (3, 5);
        let mut w = values(n * k, 1);
        w[k + 2] = f32::NAN;
        let mut out = vec![0.0; n];
        matmul(&values(k, 2), 1, &Packed::new(&w, &[0.0; 3], n, k, Format::Int8), Epilogue::None, &mut out);
        assert!(out[0].is_finite() && out[1].is_nan() && out[2].is_finite(), "{out:?}");
    }

    #[test]
    #[should_panic(expected = "k ≤ 4096")]
    fn int8_refuses_an_inner_dimension_that_could_overflow() {
        Packed::new(&vec![0.0; 4097], &[0.0], 1, 4097, Format::Int8);
    }

    #[test]
    fn the_portable_int8_tile_matches_the_avx2_and_vnni_ones() {
        let (k, n) = (37, PANEL);
        let (x, w, b) = (values(6 * k, 1), values(n * k, 2), values(n, 3));
        let packed = Packed::new(&w, &b, n, k, Format::Int8);
        let Panels::Int8(panels) = &packed.panels else { unreachable!() };
        let steps = k.div_ceil(2);
        let q = |v: f32| (v * INPUT_LEVELS).round() as i16 as u16 as u32;
        let a: Vec<i32> =
            values(steps * TILE_ROWS * 2, 4).chunks(2).map(|p| (q(p[0]) | (q(p[1]) << 16)) as i32).collect();
        let row_scales = &x[..TILE_ROWS];
        let tile =
            IntTile { a: &a, weights: &panels.values, row_scales, column_scales: &panels.scales, bias: &b, steps };
        let (mut dispatched, mut portable) = ([0.0f32; 6 * PANEL], [0.0f32; 6 * PANEL]);
        unsafe {
            tile_int8(tile, 6, dispatched.as_mut_ptr(), PANEL);
            tile_int8_portable::<6>(tile, portable.as_mut_ptr(), PANEL);
        }
        assert_close(&dispatched, &portable, 1e-6);
        // Each instruction set this CPU has, not only the one dispatched.
        #[cfg(target_arch = "x86_64")]
        if isa() == Isa::Avx2 {
            let mut avx2 = [0.0f32; 6 * PANEL];
            unsafe { tile_int8_avx2::<6>(tile, avx2.as_mut_ptr(), PANEL) };
            assert_close(&avx2, &portable, 1e-6);
        }
    }

    #[test]
    fn the_portable_tile_matches_the_dispatched_one() {
        let k = 37;
        let (a, panel, bias) = (values(6 * k, 1), values(k * PANEL, 2), values(PANEL, 3));
        let (mut dispatched, mut portable) = ([0.0f32; 6 * PANEL], [0.0f32; 6 * PANEL]);
        unsafe {
            let rows = Rows { values: &a, row_stride: k, k_stride: 1 };
            tile(rows, 6, &panel, &bias, k, dispatched.as_mut_ptr(), PANEL);
            tile_portable::<f32, 6>(rows, &panel, &bias, k, portable.as_mut_ptr(), PANEL);
        }
        assert_close(&dispatched, &portable, 1e-6);
    }

    #[test]
    fn epilogues_apply_gelu_and_residuals() {
        let (m, n, k) = (7, 33, 20);
        let (x, w, b, r) = (values(m * k, 4), values(n * k, 5), values(n, 6), values(m * n, 7));
        let packed = Packed::new(&w, &b, n, k, Format::F32);
        let plain = naive(&x, &w, &b, m, n, k);
        let mut out = vec![0.0; m * n];
        matmul(&x, m, &packed, Epilogue::Residual(&r), &mut out);
        assert_close(&out, &plain.iter().zip(&r).map(|(p, r)| p + r).collect::<Vec<_>>(), 1e-5);
        matmul(&x, m, &packed, Epilogue::Gelu, &mut out);
        let expected: Vec<f32> =
            plain.iter().map(|&v| (0.5 * v as f64 * (1.0 + erf_reference(v as f64 / 2f64.sqrt()))) as f32).collect();
        assert_close(&out, &expected, 1e-5);
    }
}
