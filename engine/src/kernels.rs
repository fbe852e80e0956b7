//! hyrank's own CPU arithmetic for the transformer: a matrix product against weights packed once
//! at load time, and the element-wise functions BERT needs (erf GELU, softmax's exponential,
//! layer norm), written so the compiler vectorises them.
//!
//! Why not candle's CPU path: it calls the `gemm` crate, which packs the weight matrix again on
//! every call. For a batch of 64 abstracts that is amortised; for one 10-token query it is most
//! of the work (a profile of the query path: gemm 47%, of which packing dominates, scalar `erf`
//! 7%, scalar `exp` 6%, and a thread fan-out per operation). Here the weights are packed once
//! into panels of [`PANEL`] output columns, so a product streams each weight exactly once per
//! block of rows, and the bias and GELU run on the output while it is still in cache.
//!
//! The microkernel is the classic 6 × 16 register tile (twelve 8-lane accumulators) in AVX2 with
//! FMA, chosen at run time; other CPUs run the same loops in portable Rust. Rows are split into
//! blocks and output columns into chunks over rayon's pool, the pool every other stage uses, and
//! a product too small to pay for the fan-out runs on the calling thread.

use std::sync::OnceLock;

use rayon::prelude::*;

/// Output columns per packed panel: two 8-lane AVX2 registers.
pub(crate) const PANEL: usize = 16;
/// Rows per microkernel tile.
const TILE_ROWS: usize = 6;
/// Multiply-adds below which a product stays on the calling thread (a fan-out costs a few µs).
const SERIAL_MACS: usize = 1 << 19;

/// The instruction set the kernels run on, detected once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// x86-64 with AVX2, FMA and F16C (every CPU with AVX2 since 2013 has all three).
    Avx2,
    /// Anything else: portable loops.
    Portable,
}

/// The best instruction set this CPU offers the kernels.
pub(crate) fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Isa::Avx2;
        }
        Isa::Portable
    })
}

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

/// Packed weights in one of the [`Element`] formats.
enum Panels {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
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
    /// keeping the weights in f32, or in f16 when `half` is set.
    pub(crate) fn new(weight: &[f32], bias: &[f32], n: usize, k: usize, half: bool) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not ({n}, {k})");
        assert_eq!(bias.len(), n, "bias is not ({n})");
        let panels = if half { Panels::F16(pack(weight, n, k)) } else { Panels::F32(pack(weight, n, k)) };
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

/// The left operand of a tile: element `(r, kk)` is `values[r · row_stride + kk · k_stride]`
/// (row-major rows: `(lda, 1)`; rows packed side by side: `(1, rows)`).
#[derive(Clone, Copy)]
struct Rows<'a> {
    values: &'a [f32],
    row_stride: usize,
    k_stride: usize,
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
    // The epilogue runs on this job's region while it is still in cache.
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

/// `count` (≤ 6) rows of `a`, each `k` long, times one panel (`k × 16`), plus `bias`, into `c`
/// (row stride `ldc`).
///
/// # Panics
/// If `count` is not 1–6, `k` is 0, or `a`, `panel` or `bias` is shorter than that needs.
///
/// # Safety
/// `c` is valid for `count` rows of 16 floats at stride `ldc`.
#[inline]
unsafe fn tile<T: Element>(a: Rows<'_>, count: usize, panel: &[T], bias: &[f32], k: usize, c: *mut f32, ldc: usize) {
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

/// Runs `body` compiled for AVX2 and FMA where the CPU has them: the element-wise loops below
/// are written plainly and vectorise only when the compiler may use those instructions.
macro_rules! vectorised {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            match isa() {
                // SAFETY: `isa()` saw AVX2 and FMA on this CPU.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

/// `e^x`, relative error under 5e-7, for `x` clamped to [−87.3, 88.3], so the result is always
/// a finite normal number: `x = n·ln2 + r` with `|r| ≤ ln2/2`, `e^r` by its Taylor series to
/// degree 7, `2^n` built in the exponent bits. Branch-free, so loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n·LN2_HI is exact for |n| < 2^9 (Cody and Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let exponent = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    p * f32::from_bits(((exponent + 127) as u32) << 23)
}

/// The error function, absolute error ≤ 5e-7 in f32 (1.5e-7 in exact arithmetic; the rest is
/// rounding in `1 − …` near 0, harmless to GELU, which multiplies it by `x/2`): Abramowitz and
/// Stegun, Handbook of Mathematical Functions, 1964, formula 7.1.26,
/// `1 − (a₁t + … + a₅t⁵)·e^(−x²)` with `t = 1/(1 + p|x|)`.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152, 1.061_405_4];
    let z = x.abs().min(9.0);
    let t = 1.0 / (1.0 + P * z);
    let poly = ((((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let y = 1.0 - poly * exp(-z * z);
    y.copysign(x)
}

vectorised! {
    /// BERT's GELU in place: `x · (1 + erf(x/√2)) / 2`.
    fn gelu(values: &mut [f32]) {
        for v in values.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

vectorised! {
    /// `values += other`, element-wise.
    fn add(values: &mut [f32], other: &[f32]) {
        for (v, o) in values.iter_mut().zip(other) {
            *v += o;
        }
    }
}

vectorised! {
    /// Layer norm of each row of `rows` (row width `gamma.len()`) in place:
    /// `(x − mean) / √(var + eps) · gamma + beta`, variance over the row (biased), as
    /// PyTorch's `LayerNorm` and candle's kernel compute it.
    fn layer_norm(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        for row in rows.chunks_exact_mut(width) {
            let mean = reduce(row, 0.0, |v| v, |a, b| a + b) / width as f32;
            let var = reduce(row, 0.0, |v| (v - mean) * (v - mean), |a, b| a + b) / width as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

/// Scaled dot-product attention of one head over one sequence of `len` tokens, reading
/// queries, keys and values from the fused projection `qkv` (`len` rows of `stride` floats;
/// this head's query at column `q`, key at `q + hidden`, value at `q + 2·hidden`, each
/// `head_dim` wide) and writing the context into `context` (`len × head_dim`). Every token
/// attends to every token of its own sequence: padding never enters. `scratch` is reused
/// between calls.
///
/// Both products run on the projection's microkernel: the keys are packed as panels of 16
/// keys (`scores = Q·Kᵀ`), the values as panels of 16 dimensions (`context = P·V`), six query
/// rows at a time so that their scores stay in L1.
///
/// # Panics
/// If `qkv` or `context` is shorter than `len` rows, or a head's columns pass `stride`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend(
    qkv: &[f32],
    len: usize,
    stride: usize,
    q: usize,
    hidden: usize,
    head_dim: usize,
    context: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    assert!(qkv.len() >= len * stride && context.len() >= len * head_dim);
    let padded = len.div_ceil(PANEL) * PANEL;
    let value_panels = head_dim.div_ceil(PANEL);
    scratch.clear();
    scratch.resize(padded * head_dim + value_panels * len * PANEL + TILE_ROWS * (padded + value_panels * PANEL), 0.0);
    let (keys, rest) = scratch.split_at_mut(padded * head_dim);
    let (values, rest) = rest.split_at_mut(value_panels * len * PANEL);
    let (scores, out) = rest.split_at_mut(TILE_ROWS * padded);
    for j in 0..len {
        let row = &qkv[j * stride + q..];
        let (panel, lane) = (j / PANEL, j % PANEL);
        for d in 0..head_dim {
            keys[(panel * head_dim + d) * PANEL + lane] = row[hidden + d];
            values[((d / PANEL) * len + j) * PANEL + d % PANEL] = row[2 * hidden + d];
        }
    }
    let zero = [0.0f32; PANEL];
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut row = 0;
    while row < len {
        let count = TILE_ROWS.min(len - row);
        let queries = Rows { values: &qkv[row * stride + q..], row_stride: stride, k_stride: 1 };
        for panel in 0..padded / PANEL {
            let keys = &keys[panel * head_dim * PANEL..(panel + 1) * head_dim * PANEL];
            let c = scores[panel * PANEL..].as_mut_ptr();
            // SAFETY: `scores` holds TILE_ROWS rows of `padded`; this panel's 16 columns fit.
            unsafe { tile(queries, count, keys, &zero, head_dim, c, padded) };
        }
        for r in 0..count {
            scaled_softmax(&mut scores[r * padded..r * padded + len], scale);
        }
        let probabilities = Rows { values: scores, row_stride: padded, k_stride: 1 };
        for panel in 0..value_panels {
            let values = &values[panel * len * PANEL..(panel + 1) * len * PANEL];
            let c = out[panel * PANEL..].as_mut_ptr();
            // SAFETY: `out` holds TILE_ROWS rows of `value_panels · 16`.
            unsafe { tile(probabilities, count, values, &zero, len, c, value_panels * PANEL) };
        }
        for r in 0..count {
            let at = (row + r) * head_dim;
            context[at..at + head_dim].copy_from_slice(&out[r * value_panels * PANEL..][..head_dim]);
        }
        row += count;
    }
}

vectorised! {
    /// Softmax of `scale · values`, in place.
    fn scaled_softmax(values: &mut [f32], scale: f32) {
        for v in values.iter_mut() {
            *v *= scale;
        }
        softmax(values);
    }
}

/// Softmax in place, `e^(x − max) / Σ e^(x − max)`; inlined into callers that are vectorised.
#[inline(always)]
fn softmax(values: &mut [f32]) {
    let max = reduce(values, f32::NEG_INFINITY, |v| v, f32::max);
    for v in values.iter_mut() {
        *v = exp(*v - max);
    }
    let scale = 1.0 / reduce(values, 0.0, |v| v, |a, b| a + b);
    for v in values.iter_mut() {
        *v *= scale;
    }
}

/// `combine` over `map` of every value, in 16 independent lanes: a single running total is a
/// chain of dependent additions the compiler may not reorder (float addition is not
/// associative), so it would neither vectorise nor pipeline.
#[inline(always)]
fn reduce(values: &[f32], identity: f32, map: impl Fn(f32) -> f32, combine: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [identity; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = combine(*lane, map(v));
        }
    }
    let total = lanes.into_iter().fold(identity, &combine);
    rest.iter().fold(total, |t, &v| combine(t, map(v)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `x·Wᵀ + b` by the definition, in f64.
    fn naive(x: &[f32], weight: &[f32], bias: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|kk| x[i * k + kk] as f64 * weight[j * k + kk] as f64).sum();
                out[i * n + j] = (dot + bias[j] as f64) as f32;
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // A fixed pseudo-random sequence in [−1, 1).
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn assert_close(ours: &[f32], reference: &[f32], tolerance: f32) {
        assert_eq!(ours.len(), reference.len());
        for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
            assert!((a - b).abs() <= tolerance * (1.0 + b.abs()), "index {i}: {a} vs {b}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Every shape, including rows that are not a multiple of the tile, columns that are
        /// not a multiple of the panel, and products large enough to be split across threads.
        #[test]
        fn matmul_is_the_matrix_product(m in 1usize..40, n in 1usize..70, k in 1usize..90, seed in 0u32..1000) {
            let (x, w, b) = (values(m * k, seed), values(n * k, seed + 1), values(n, seed + 2));
            let mut out = vec![f32::NAN; m * n];
            matmul(&x, m, &Packed::new(&w, &b, n, k, false), Epilogue::None, &mut out);
            assert_close(&out, &naive(&x, &w, &b, m, n, k), 1e-5);
        }
    }

    /// Attention by the definition, in f64: `softmax(q·kᵀ/√d)·v` per query row.
    fn naive_attention(qkv: &[f32], len: usize, stride: usize, q: usize, hidden: usize, d: usize) -> Vec<f32> {
        let at = |row: usize, col: usize| qkv[row * stride + col] as f64;
        let mut out = vec![0.0; len * d];
        for i in 0..len {
            let scores: Vec<f64> = (0..len)
                .map(|j| (0..d).map(|c| at(i, q + c) * at(j, q + hidden + c)).sum::<f64>() / (d as f64).sqrt())
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for c in 0..d {
                let v: f64 = (0..len).map(|j| (scores[j] - max).exp() / total * at(j, q + 2 * hidden + c)).sum();
                out[i * d + c] = v as f32;
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Sequences shorter and longer than a panel of keys, heads narrower and wider than one.
        #[test]
        fn attention_is_softmax_of_scaled_scores_times_values(
            len in 1usize..60, head_dim in prop::sample::select(vec![8usize, 16, 32, 40]), seed in 0u32..1000,
        ) {
            let heads = 2;
            let hidden = heads * head_dim;
            let stride = 3 * hidden;
            let qkv: Vec<f32> = values(len * stride, seed).iter().map(|v| v * 3.0).collect();
            let mut scratch = Vec::new();
            for head in 0..heads {
                let mut out = vec![f32::NAN; len * head_dim];
                attend(&qkv, len, stride, head * head_dim, hidden, head_dim, &mut out, &mut scratch);
                assert_close(&out, &naive_attention(&qkv, len, stride, head * head_dim, hidden, head_dim), 1e-5);
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
            let mut out = vec![f32::NAN; m * n];
            matmul(&x, m, &Packed::new(&w, &b, n, k, true), Epilogue::None, &mut out);
            assert_close(&out, &naive(&x, &rounded, &b, m, n, k), 1e-5);
        }
    }

    #[test]
    fn large_products_split_across_threads_agree_with_the_definition() {
        // Many row blocks (a batch), and one block split by columns (a query), on 3 threads.
        for (m, n, k) in [(200, 384, 384), (10, 1152, 384)] {
            let (x, w, b) = (values(m * k, 7), values(n * k, 8), values(n, 9));
            let mut out = vec![0.0; m * n];
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            pool.install(|| matmul(&x, m, &Packed::new(&w, &b, n, k, false), Epilogue::None, &mut out));
            assert_close(&out, &naive(&x, &w, &b, m, n, k), 1e-5);
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
        let packed = Packed::new(&w, &b, n, k, false);
        let plain = naive(&x, &w, &b, m, n, k);
        let mut out = vec![0.0; m * n];
        matmul(&x, m, &packed, Epilogue::Residual(&r), &mut out);
        assert_close(&out, &plain.iter().zip(&r).map(|(p, r)| p + r).collect::<Vec<_>>(), 1e-5);
        matmul(&x, m, &packed, Epilogue::Gelu, &mut out);
        let expected: Vec<f32> =
            plain.iter().map(|&v| (0.5 * v as f64 * (1.0 + erf_reference(v as f64 / 2f64.sqrt()))) as f32).collect();
        assert_close(&out, &expected, 1e-5);
    }

    /// erf by its Maclaurin series (|x| ≤ 3) or its asymptotic tail, in f64.
    fn erf_reference(x: f64) -> f64 {
        if x.abs() > 3.0 {
            let z = x.abs();
            let tail = (-z * z).exp() / (z * std::f64::consts::PI.sqrt())
                * (1.0 - 1.0 / (2.0 * z * z) + 3.0 / (4.0 * z.powi(4)));
            return (1.0 - tail).copysign(x);
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..80 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_and_erf_are_accurate_over_the_range_bert_uses() {
        for i in -8000..=8000 {
            let x = i as f32 / 100.0;
            let (ours, reference) = (exp(x), (x as f64).exp());
            assert!(((ours as f64 - reference) / reference).abs() < 5e-7, "exp({x}) = {ours}, not {reference}");
        }
        assert_eq!(exp(-1.0e4), exp(-87.3));
        assert!(exp(-1.0e4) < 1e-37 && exp(100.0).is_finite());
        for i in -1000..=1000 {
            let x = i as f32 / 100.0;
            let (ours, reference) = (erf(x), erf_reference(x as f64));
            assert!((ours as f64 - reference).abs() < 5e-7, "erf({x}) = {ours}, not {reference}");
        }
    }

    #[test]
    fn softmax_and_layer_norm_follow_their_definitions() {
        let mut v = vec![1.0f32, 2.0, 3.0, -50.0];
        softmax(&mut v);
        let total: f64 = [1.0f64, 2.0, 3.0, -50.0].iter().map(|x| (x - 3.0).exp()).sum();
        let expected: Vec<f32> = [1.0f64, 2.0, 3.0, -50.0].iter().map(|x| ((x - 3.0).exp() / total) as f32).collect();
        assert_close(&v, &expected, 1e-6);

        let mut rows = vec![1.0f32, 2.0, 3.0, 4.0, -1.0, -1.0, 1.0, 1.0];
        layer_norm(&mut rows, &[1.0, 2.0, 1.0, 1.0], &[0.0, 0.0, 0.0, 0.5], 1e-12);
        let s = 1.25f32.sqrt();
        assert_close(&rows, &[-1.5 / s, -1.0 / s, 0.5 / s, 1.5 / s + 0.5, -1.0, -2.0, 1.0, 1.5], 1e-5);
    }
}
