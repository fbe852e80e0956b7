//! The matrix product `epilogue(x·Wᵀ + b)` against weights packed once at load, split over
//! rayon's pool; its register tiles are in [`tile`].

use rayon::prelude::*;

use super::int8::vnni;
use super::int8::{block_product_int8, Int8Panels, INPUT_LEVELS, INPUT_LEVELS_8, MAX_INT8_K};
use super::math::{add, gelu};
use super::{tile_shape, wide, PANEL, SERIAL_MACS, TILE_ROWS, WIDE_PANELS, WIDE_ROWS};

mod tile;

pub(super) use tile::{tile, tile_wide, Rows};

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
    /// Sixteen consecutive values widened to f32.
    ///
    /// # Safety
    /// `at` is valid for 16 reads; the CPU has AVX-512F (and F16C).
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(at: *const Self) -> std::arch::x86_64::__m512;
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

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(at: *const Self) -> std::arch::x86_64::__m512 {
        // SAFETY: the caller's.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(at) }
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

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(at: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's (16 halves are 32 bytes).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(at.cast::<__m256i>())) }
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
    /// The same 8-bit weights against the input quantized per row to 8 bits: coarser inputs,
    /// and on a CPU with AVX-512 VNNI twice the multiply-adds per instruction (`vpdpbusd`).
    W8A8,
}

/// Packed weights in one of the [`Element`] formats, or quantized.
pub(super) enum Panels {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
    Int8(Int8Panels),
}

/// The weights and bias of a projection `y = x·Wᵀ + b`, packed for [`matmul`].
///
/// Layout: `ceil(n / 16)` panels, each `k × 16` row-major (panel `p`, row `kk`, lane `j` holds
/// `W[16p + j][kk]`), zero beyond `n`.
pub(crate) struct Packed {
    pub(super) k: usize,
    pub(super) n: usize,
    pub(super) panels: Panels,
    /// `n` entries, zero-padded to a whole panel; always f32.
    pub(super) bias: Vec<f32>,
}

impl Packed {
    /// Packs `weight`, `(n, k)` row-major as PyTorch's `Linear` stores it, and `bias` (`n`),
    /// keeping the weights in `format`.
    ///
    /// # Panics
    /// If the lengths do not match `n` and `k`, or `format` is [`Format::Int8`] or
    /// [`Format::W8A8`] and `k` is over [`MAX_INT8_K`].
    pub(crate) fn new(weight: &[f32], bias: &[f32], n: usize, k: usize, format: Format) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not ({n}, {k})");
        assert_eq!(bias.len(), n, "bias is not ({n})");
        let panels = match format {
            Format::F32 => Panels::F32(pack(weight, n, k)),
            Format::F16 => Panels::F16(pack(weight, n, k)),
            Format::Int8 | Format::W8A8 => {
                assert!(k <= MAX_INT8_K, "an int8 product takes k ≤ {MAX_INT8_K}, not {k}");
                let levels = if format == Format::W8A8 { INPUT_LEVELS_8 } else { INPUT_LEVELS };
                Panels::Int8(Int8Panels::quantize(weight, n, k, levels))
            }
        };
        let mut padded = bias.to_vec();
        padded.resize(n.div_ceil(PANEL) * PANEL, 0.0);
        Packed { k, n, panels, bias: padded }
    }

    /// The format the weights are kept in.
    #[cfg(test)]
    pub(crate) fn format(&self) -> Format {
        match &self.panels {
            Panels::F32(_) => Format::F32,
            Panels::F16(_) => Format::F16,
            Panels::Int8(panels) if panels.input_levels == INPUT_LEVELS => Format::Int8,
            Panels::Int8(_) => Format::W8A8,
        }
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
pub(super) struct Shared(pub(super) *mut f32);
// SAFETY: every user writes a disjoint region (documented at each use).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// Runs `tile(c, ldc)`, a tile that writes `count` rows of `16 · panels` floats, for rows
/// `row..row + count` and the columns from `first` of `out` (`n` wide): in place when all its
/// columns exist, else (a last, partial panel) into `staging`, then the real columns copied.
///
/// # Safety
/// Those rows and columns of `out` are the caller's alone.
///
/// # Panics
/// If `staging` is shorter than `count · 16 · panels` where it is needed.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn write_tile(
    out: Shared,
    n: usize,
    row: usize,
    count: usize,
    first: usize,
    panels: usize,
    staging: &mut [f32],
    tile: impl FnOnce(*mut f32, usize),
) {
    let (width, columns) = (panels * PANEL, (panels * PANEL).min(n - first));
    if columns == width {
        // SAFETY: the caller's rows and columns.
        tile(unsafe { out.0.add(row * n + first) }, n);
        return;
    }
    assert!(staging.len() >= count * width);
    tile(staging.as_mut_ptr(), width);
    for r in 0..count {
        // SAFETY: the caller's rows, the real columns.
        let dst = unsafe { out.0.add((row + r) * n + first) };
        unsafe { std::ptr::copy_nonoverlapping(staging.as_ptr().add(r * width), dst, columns) };
    }
}

/// `out = epilogue(x·Wᵀ + b)` for `x` of shape `(m, k)` and `out` of shape `(m, n)`, both
/// row-major.
///
/// # Panics
/// If the slices' lengths do not match `m` and the packed matrix's shape.
pub(crate) fn matmul(x: &[f32], m: usize, w: &Packed, epilogue: Epilogue<'_>, out: &mut [f32]) {
    matmul_on(x, m, w, epilogue, out, wide());
}

/// [`matmul`] on the 512-bit tiles or not (`on_wide`, which [`wide`] must allow): the tests run
/// both where the CPU has both.
pub(in crate::kernels) fn matmul_on(
    x: &[f32],
    m: usize,
    w: &Packed,
    epilogue: Epilogue<'_>,
    out: &mut [f32],
    on_wide: bool,
) {
    assert!(!on_wide || wide(), "the 512-bit tiles need AVX-512 F and BW");
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
    // Rows per block: the block's inputs stay in L2 (~256 KiB) while every panel passes over them;
    // whole tiles of the height the tiles take.
    let unit = if on_wide { WIDE_ROWS } else { TILE_ROWS };
    let threads = rayon::current_num_threads();
    let serial = m * k * n < SERIAL_MACS || threads == 1;
    // An int8 job quantizes and packs its block's rows before multiplying them, so splitting a
    // block's columns over several jobs quantizes its rows once per job (4 times for each
    // 384-wide product of a 240-token abstract on 2 threads). Where there are at least 4 tiles'
    // worth of rows per thread, the int8 products are split by rows alone, one block of 12
    // rows (6 on the 256-bit tiles) per job: each job then streams every panel, which at that
    // height the tiles' arithmetic hides (measured on the 2-core Xeon only, docs/EVAL.md).
    let by_rows = !serial && matches!(w.panels, Panels::Int8(_)) && m >= 4 * unit * threads;
    let block_rows = if by_rows { unit } else { ((65_536 / k.max(1)) / unit * unit).max(unit) };
    let row_blocks = m.div_ceil(block_rows);
    // Enough jobs to keep every thread busy. A single block of rows (a query) is split into one
    // column range per thread: each job is a fork to join (and on the 256-bit tile packs the
    // rows again), and finer ranges measured 10–13% slower on a 21-token query (criterion, 2
    // threads, the 256-bit tile; not measured again on the 512-bit one).
    let col_chunks = if serial || by_rows {
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
                Panels::F32(panels) => block_product(x, w, panels, rows, cols, epilogue, target, on_wide),
                Panels::F16(panels) => block_product(x, w, panels, rows, cols, epilogue, target, on_wide),
                Panels::Int8(panels) => {
                    block_product_int8(x, w, panels, rows, cols, epilogue, target, on_wide && vnni())
                }
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
}

/// One job of [`matmul`]: rows `rows` × panels `cols` of the output, on the 512-bit tile or
/// not (`on_wide`).
///
/// # Safety
/// `out` points at an `(m, n)` buffer that no one else writes in this region; [`wide`] holds
/// where `on_wide` is true.
#[allow(clippy::too_many_arguments)]
unsafe fn block_product<T: Element>(
    x: &[f32],
    w: &Packed,
    panels: &[T],
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epilogue: Epilogue<'_>,
    out: Shared,
    on_wide: bool,
) {
    let (k, n) = (w.k, w.n);
    let (tile_rows, group) = tile_shape(rows.len(), on_wide);
    let tiles = rows.len().div_ceil(tile_rows);
    let mut staging = [0.0f32; WIDE_ROWS * WIDE_PANELS * PANEL];
    PACKED_ROWS.with_borrow_mut(|packed| {
        // For the AVX2 tile, the block's rows packed tile by tile, `k × 6` each (step `kk`
        // holds the six rows' values side by side), so that its broadcasts read one stream.
        // The AVX-512 tile reads the rows where they are: with twice the columns per
        // broadcast, the packing (every column range of a block packs its rows again) cost
        // more than it saved (criterion, 2 threads, 2026-12-02, with a temporary switch the
        // tree does not keep: a 21-token query 3.9–4.4 ms packed against 3.4–3.5 unpacked,
        // one abstract 47–50 against 36–38 ms).
        packed.clear();
        if !on_wide {
            packed.resize(tiles * k * TILE_ROWS, 0.0);
        }
        for (t, tile) in packed.chunks_exact_mut(k * TILE_ROWS).enumerate() {
            let first = rows.start + t * TILE_ROWS;
            for r in 0..TILE_ROWS.min(rows.end - first) {
                for (kk, &v) in x[(first + r) * k..(first + r + 1) * k].iter().enumerate() {
                    tile[kk * TILE_ROWS + r] = v;
                }
            }
        }
        let mut panel = cols.start;
        while panel < cols.end {
            let count_panels = group.min(cols.end - panel);
            let weights = &panels[panel * k * PANEL..(panel + count_panels) * k * PANEL];
            let bias = &w.bias[panel * PANEL..(panel + count_panels) * PANEL];
            for t in 0..tiles {
                let row = rows.start + t * tile_rows;
                let count = tile_rows.min(rows.end - row);
                let product = |c: *mut f32, ldc: usize| {
                    // SAFETY: `c` holds `count` rows of `count_panels` panels at stride `ldc`
                    // (`write_tile`); `wide()` holds where `on_wide` does.
                    if on_wide {
                        let a = Rows { values: &x[row * k..], row_stride: k, k_stride: 1 };
                        unsafe { tile_wide(a, count, count_panels, weights, bias, k, c, ldc) };
                    } else {
                        let a = &packed[t * k * TILE_ROWS..(t + 1) * k * TILE_ROWS];
                        let a = Rows { values: a, row_stride: 1, k_stride: TILE_ROWS };
                        unsafe { tile(a, count, weights, bias, k, c, ldc) };
                    }
                };
                // SAFETY: rows row..row+count, columns of these panels: this job's region.
                unsafe { write_tile(out, n, row, count, panel * PANEL, count_panels, &mut staging, product) };
            }
            panel += count_panels;
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
pub(super) unsafe fn finish(
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::int8::tests::quantized_product;
    use super::super::testing::{assert_close, erf_reference, naive, values, widths};
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Every shape, including rows that are not a multiple of the tile, columns that are
        /// not a multiple of the panel, and products large enough to be split across threads.
        #[test]
        fn matmul_is_the_matrix_product(m in 1usize..40, n in 1usize..70, k in 1usize..90, seed in 0u32..1000) {
            let (x, w, b) = (values(m * k, seed), values(n * k, seed + 1), values(n, seed + 2));
            for on_wide in widths() {
                let mut out = vec![f32::NAN; m * n];
                matmul_on(&x, m, &Packed::new(&w, &b, n, k, Format::F32), Epilogue::None, &mut out, on_wide);
                assert_close(&out, &naive(&x, &w, &b, m, n, k), 1e-5);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// f16 panels compute the product of the f16-rounded weights, in f32 arithmetic.
        #[test]
        fn half_panels_multiply_the_rounded_weights(m in 1usize..20, n in 1usize..40, k in 1usize..50, seed in 0u32..1000) {
            let (x, w, b) = (values(m * k, seed), values(n * k, seed + 1), values(n, seed + 2));
            let rounded: Vec<f32> = w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            for on_wide in widths() {
                let mut out = vec![f32::NAN; m * n];
                matmul_on(&x, m, &Packed::new(&w, &b, n, k, Format::F16), Epilogue::None, &mut out, on_wide);
                assert_close(&out, &naive(&x, &rounded, &b, m, n, k), 1e-5);
            }
        }
    }

    #[test]
    fn large_products_split_across_threads_agree_with_the_definition() {
        // Many row blocks (a batch), one block split by columns (a query), and one whose column
        // ranges are 3 panels (pairs then a single, ranges starting on odd panels) ending in a
        // 5-column panel, on 3 threads, on every tile this CPU runs.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for (m, n, k) in [(200, 384, 384), (10, 1152, 384), (40, 384, 1536), (10, 117, 512)] {
            let (x, w, b) = (values(m * k, 7), values(n * k, 8), values(n, 9));
            for on_wide in widths() {
                let mut out = vec![f32::NAN; m * n];
                let product = |format, out: &mut [f32]| {
                    pool.install(|| matmul_on(&x, m, &Packed::new(&w, &b, n, k, format), Epilogue::None, out, on_wide));
                };
                product(Format::F32, &mut out);
                // f32 sums of 1,536 terms round more than 1e-5; the integer sums are exact.
                assert_close(&out, &naive(&x, &w, &b, m, n, k), if k > 384 { 5e-5 } else { 1e-5 });
                for (format, levels) in [(Format::Int8, INPUT_LEVELS), (Format::W8A8, INPUT_LEVELS_8)] {
                    out.fill(f32::NAN);
                    product(format, &mut out);
                    assert_close(&out, &quantized_product(&x, &w, &b, m, n, k, levels), 1e-5);
                }
            }
        }
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
