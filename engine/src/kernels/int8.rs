//! The int8 product ([`Format::Int8`]): weights quantized once at load (absmax per output
//! column, ±127, stored as i8), each product's input quantized per row (±4,095), an integer
//! tile on AVX2 `vpmaddwd` or AVX-512 VNNI `vpdpwssd`, scaled back to f32 before the
//! epilogue.

#[cfg(doc)]
use super::matmul::Format;
use super::matmul::{finish, Epilogue, Packed, Shared};
use super::{isa, Isa, PANEL, TILE_ROWS};

/// Largest magnitude of a quantized weight: 8 bits, symmetric.
pub(super) const WEIGHT_LEVELS: f32 = 127.0;
/// Largest magnitude of a quantized input: 13 bits. The product runs on 16-bit operands
/// (`vpmaddwd`/`vpdpwssd`), not on 8-bit ones (`vpmaddubsw`, which needs unsigned 8-bit inputs,
/// saturates its 16-bit pair sums and, without VNNI, a second instruction to widen them), so
/// the input keeps 13 bits of precision; the bound keeps `k · 4095 · 127` inside an i32.
pub(super) const INPUT_LEVELS: f32 = 4095.0;
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
pub(super) struct Int8Panels {
    pub(super) values: Vec<i8>,
    /// One per output column, zero-padded to a whole panel.
    pub(super) scales: Vec<f32>,
}

impl Int8Panels {
    pub(super) fn quantize(weight: &[f32], n: usize, k: usize) -> Self {
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

thread_local! {
    /// The same for [`Format::Int8`]: the rows quantized as i16 pairs, and each row's scale.
    static QUANTIZED_ROWS: std::cell::RefCell<(Vec<i32>, Vec<f32>, Vec<i16>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// [`block_product`] for [`Format::Int8`]: the block's rows are quantized (absmax per row, to
/// ±4,095) and packed as i16 pairs tile by tile, `steps × 6` each, then each panel is
/// multiplied in integers and scaled back to f32 in the tile.
///
/// # Safety
/// As for [`block_product`].
pub(super) unsafe fn block_product_int8(
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
            let tile_rows = &mut packed[tile * steps * TILE_ROWS..(tile + 1) * steps * TILE_ROWS];
            for (step, pair) in tile_rows.chunks_exact_mut(TILE_ROWS).zip(levels.chunks_exact(2)) {
                step[r] = (pair[0] as u16 as u32 | (pair[1] as u16 as u32) << 16) as i32;
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

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::super::matmul::{matmul, Epilogue, Format, Panels};
    use super::super::testing::{assert_close, naive, values};
    use super::*;

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
    pub(crate) fn quantized_product(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
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
}
