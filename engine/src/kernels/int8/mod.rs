//! The int8 products ([`Format::Int8`], [`Format::W8A8`]): weights quantized once at load
//! (absmax per output column, ±127, stored as i8), each product's input quantized per row
//! (±4,095 for `Int8`, ±127 for `W8A8`), an integer tile, scaled back to f32 before the
//! epilogue.
//!
//! Two tiles: 16-bit input pairs (AVX2 `vpmaddwd`, AVX-512 VNNI `vpdpwssd`: 2 multiply-adds per
//! 32-bit lane), which any input width up to 13 bits fits; and, for 8-bit inputs on a CPU with
//! VNNI, byte quads (`vpdpbusd`: 4 per lane, twice the work per instruction, and the weights
//! used as stored, without widening). `vpdpbusd` multiplies unsigned bytes by signed ones, so
//! the quad tile feeds it `x + 128` and subtracts `128 · Σₖ w[j][k]` per column afterwards
//! (the zero-point correction of integer-only inference, Jacob et al., CVPR 2018): the sums are
//! the same integers as the pair tile's, so a `W8A8` product computes the same integer sums on
//! every CPU (the scaling back to f32 may differ in the last bit, fused or not). Where the CPU
//! has AVX-512 BW as well, both tiles run on 512-bit registers, 12 rows by two panels, as the
//! f32 products do.

#[cfg(doc)]
use super::matmul::Format;
use super::matmul::{finish, write_tile, Epilogue, Packed, Shared};
use super::{isa, tile_shape, Isa, PANEL, WIDE_PANELS, WIDE_ROWS};
pub(super) use tile::vnni;
use tile::{tile_int8, IntTile};

mod tile;

/// Largest magnitude of a quantized weight: 8 bits, symmetric.
pub(super) const WEIGHT_LEVELS: f32 = 127.0;
/// Largest magnitude of a quantized input in [`Format::Int8`]: 13 bits, on the pair tile's
/// 16-bit operands; the bound keeps `k · 4095 · 127` inside an i32.
pub(super) const INPUT_LEVELS: f32 = 4095.0;
/// Largest magnitude of a quantized input in [`Format::W8A8`]: 8 bits, symmetric, as the
/// weights (`x + 128` then fits an unsigned byte for `vpdpbusd`).
pub(super) const INPUT_LEVELS_8: f32 = 127.0;
/// The longest inner dimension an int8 product takes: `4096 · 4095 · 127 < 2³¹` and
/// `4096 · 255 · 127 < 2³¹`, so the 32-bit sums cannot overflow (BERT's longest is its FFN
/// width, 1,536 for MiniLM).
pub(crate) const MAX_INT8_K: usize = 4096;

/// How [`Int8Panels`] lays out each panel's weights, which decides the tile that multiplies
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Steps of 2 inputs: lane `j` holds `(W[j][2s], W[j][2s + 1])`, widened to i16 in the tile
    /// and multiplied against a broadcast pair of 16-bit inputs.
    Pairs,
    /// Steps of 4 inputs: lane `j` holds `W[j][4s..4s + 4]`, multiplied as stored against a
    /// broadcast quad of `x + 128` bytes (`vpdpbusd`); only for 8-bit inputs on VNNI CPUs.
    Quads,
}

impl Layout {
    /// Inputs per step.
    pub(super) fn width(self) -> usize {
        match self {
            Layout::Pairs => 2,
            Layout::Quads => 4,
        }
    }
}

/// Weights in [`Format::Int8`] or [`Format::W8A8`]: `W[j][kk] ≈ values · scales[j]` (rounded to
/// nearest, ties to even, as the inputs are; stored as i8, a quarter of f32's bytes, which is
/// what a short input's product is bound by; widened to i16 in the pair tile, used as stored in
/// the quad tile), with
/// `scales[j] = max_kk |W[j][kk]| / 127` (absmax, per output column, as in LLM.int8() and
/// PyTorch's per-channel dynamic quantization).
///
/// Layout: `ceil(n / 16)` panels of `ceil(k / w)` steps, `w` the [`Layout`]'s width; step `s`,
/// lane `j` of panel `p` holds `W[16p + j][w·s .. w·s + w]`; zero beyond `k` and `n`.
pub(super) struct Int8Panels {
    pub(super) values: Vec<i8>,
    /// One per output column, zero-padded to a whole panel.
    pub(super) scales: Vec<f32>,
    pub(super) layout: Layout,
    /// Largest magnitude of a quantized input row ([`INPUT_LEVELS`] or [`INPUT_LEVELS_8`]).
    pub(super) input_levels: f32,
    /// [`Layout::Quads`]: `128 · Σₖ values[j][k]` per output column, what the `+ 128` on the
    /// inputs adds to each sum; empty for [`Layout::Pairs`].
    pub(super) corrections: Vec<i32>,
}

impl Int8Panels {
    /// `weight` (`(n, k)` row-major) quantized per output column, laid out for inputs of
    /// `input_levels` (8-bit inputs take the quad tile where the CPU has VNNI).
    pub(super) fn quantize(weight: &[f32], n: usize, k: usize, input_levels: f32) -> Self {
        let layout = if input_levels <= INPUT_LEVELS_8 && vnni() { Layout::Quads } else { Layout::Pairs };
        Self::quantize_as(weight, n, k, input_levels, layout)
    }

    pub(super) fn quantize_as(weight: &[f32], n: usize, k: usize, input_levels: f32, layout: Layout) -> Self {
        assert!(layout == Layout::Pairs || input_levels <= INPUT_LEVELS_8, "quads take 8-bit inputs");
        let width = layout.width();
        let steps = k.div_ceil(width);
        let mut values = vec![0i8; n.div_ceil(PANEL) * steps * PANEL * width];
        let mut scales = vec![0.0f32; n.div_ceil(PANEL) * PANEL];
        let mut corrections = vec![0i32; if layout == Layout::Quads { scales.len() } else { 0 }];
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
            let mut sum = 0i32;
            for (kk, &w) in row.iter().enumerate() {
                let at = ((panel * steps + kk / width) * PANEL + lane) * width + kk % width;
                values[at] = (w * inverse).round_ties_even().clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS) as i8;
                sum += i32::from(values[at]);
            }
            if let Some(correction) = corrections.get_mut(col) {
                *correction = 128 * sum;
            }
        }
        Int8Panels { values, scales, layout, input_levels, corrections }
    }
}

thread_local! {
    /// Each thread's buffers for the int8 formats, reused across calls (as `matmul`'s
    /// `PACKED_ROWS` is for f32): the rows quantized as i16 pairs or `x + 128` byte quads (one
    /// i32 per step and row), each row's scale, one row's levels, and (quads) those levels as
    /// `x + 128` bytes.
    static QUANTIZED_ROWS: std::cell::RefCell<(Vec<i32>, Vec<f32>, Vec<i16>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new(), Vec::new())) };
}

/// [`block_product`] for the int8 formats: the block's rows are quantized (absmax per row, to
/// the panels' input levels) and packed as the panels' layout asks, tile by tile, `steps ×
/// rows` each (6 rows, or up to 12 on the 512-bit tiles), then each panel (or pair of panels)
/// is multiplied in integers and scaled back to f32 in the tile.
///
/// # Safety
/// As for [`block_product`]; `on_wide` only where [`tile::wide_int8`] holds.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn block_product_int8(
    x: &[f32],
    w: &Packed,
    panels: &Int8Panels,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epilogue: Epilogue<'_>,
    out: Shared,
    on_wide: bool,
) {
    let (k, n) = (w.k, w.n);
    let (layout, input_levels) = (panels.layout, panels.input_levels);
    let steps = k.div_ceil(layout.width());
    let (tile_rows, group) = tile_shape(rows.len(), on_wide);
    let mut staging = [0.0f32; WIDE_ROWS * WIDE_PANELS * PANEL];
    QUANTIZED_ROWS.with_borrow_mut(|(packed, scales, levels, bytes)| {
        let tiles = rows.len().div_ceil(tile_rows);
        packed.clear();
        packed.resize(tiles * steps * tile_rows, 0);
        scales.clear();
        scales.resize(tiles * tile_rows, 0.0);
        levels.clear();
        levels.resize(layout.width() * steps, 0);
        bytes.clear();
        bytes.resize(levels.len(), 0);
        for (i, row) in rows.clone().enumerate() {
            let values = &x[row * k..(row + 1) * k];
            // A row with a NaN or an infinity gets a NaN scale: its outputs are NaN, as the
            // f32 product's would be, never a silently finite number.
            let max = absmax(values);
            let scale = if max.is_finite() { max / input_levels } else { f32::NAN };
            scales[i] = scale;
            // `levels / max` rather than `1 / scale`: finite for any finite non-zero max (a
            // subnormal one included, where `1 / scale` would overflow).
            let inverse = input_levels / max;
            if scale > 0.0 && inverse.is_finite() {
                quantize(values, inverse, input_levels, &mut levels[..k]);
            } else {
                levels.fill(0);
            }
            let (tile, r) = (i / tile_rows, i % tile_rows);
            let tile_steps =
                packed[tile * steps * tile_rows..(tile + 1) * steps * tile_rows].chunks_exact_mut(tile_rows);
            match layout {
                Layout::Pairs => {
                    for (step, pair) in tile_steps.zip(levels.chunks_exact(2)) {
                        step[r] = (pair[0] as u16 as u32 | (pair[1] as u16 as u32) << 16) as i32;
                    }
                }
                Layout::Quads => {
                    // Each level in −127..=127 as the byte `level + 128` (one pass the compiler
                    // vectorises), then four bytes per step; past `k` the weights are zero, so
                    // whatever byte pads there adds nothing.
                    for (byte, &level) in bytes.iter_mut().zip(levels.iter()) {
                        *byte = (level + 128) as u8;
                    }
                    for (step, quad) in tile_steps.zip(bytes.chunks_exact(4)) {
                        step[r] = i32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
                    }
                }
            }
        }
        let panel_len = steps * PANEL * layout.width();
        let mut panel = cols.start;
        while panel < cols.end {
            let count_panels = group.min(cols.end - panel);
            let (first, last) = (panel * PANEL, (panel + count_panels) * PANEL);
            let weights = &panels.values[panel * panel_len..(panel + count_panels) * panel_len];
            let (column_scales, bias) = (&panels.scales[first..last], &w.bias[first..last]);
            let corrections = match layout {
                Layout::Quads => &panels.corrections[first..last],
                Layout::Pairs => &[],
            };
            for (t, a) in packed.chunks_exact(steps * tile_rows).enumerate() {
                let row = rows.start + t * tile_rows;
                let count = tile_rows.min(rows.end - row);
                let row_scales = &scales[t * tile_rows..(t + 1) * tile_rows];
                let tile = IntTile {
                    layout,
                    a,
                    weights,
                    row_scales,
                    column_scales,
                    corrections,
                    bias,
                    steps,
                    rows: tile_rows,
                    panels: count_panels,
                };
                // SAFETY: `c` holds `count` rows of `count_panels` panels at stride `ldc`
                // (`write_tile`); `wide_int8()` holds where `on_wide` does (the caller's).
                let product = |c: *mut f32, ldc: usize| unsafe { tile_int8(tile, count, c, ldc, on_wide) };
                // SAFETY: rows row..row+count, columns of these panels: this job's region.
                unsafe { write_tile(out, n, row, count, first, count_panels, &mut staging, product) };
            }
            panel += count_panels;
        }
    });
    // SAFETY: the caller's.
    unsafe { finish(n, rows, cols, epilogue, out) };
}

vectorised! {
    /// The largest `|v|` of `values` (0 when empty); NaN when one of them is NaN.
    ///
    /// Computed on the bit patterns: with the sign bit cleared, IEEE 754 orders non-negative
    /// floats as their bits order as unsigned integers, and every NaN's bits lie above
    /// infinity's, so one integer maximum finds the largest magnitude and lets a NaN through,
    /// without a branch or a separate NaN test. 64 lanes, so that the compiler keeps several
    /// independent maxima in flight instead of one chain.
    fn absmax(values: &[f32]) -> f32 {
        const MAGNITUDE: u32 = 0x7fff_ffff;
        let mut lanes = [0u32; 64];
        let chunks = values.chunks_exact(64);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (lane, v) in lanes.iter_mut().zip(chunk) {
                *lane = (*lane).max(v.to_bits() & MAGNITUDE);
            }
        }
        let top = lanes.into_iter().fold(0, u32::max);
        f32::from_bits(rest.iter().fold(top, |top, v| top.max(v.to_bits() & MAGNITUDE)))
    }
}

/// `values · inverse`, rounded to nearest (ties to even) and clamped to `±levels` (at most
/// 4,095), into `out` (as long as `values`).
fn quantize(values: &[f32], inverse: f32, levels: f32, out: &mut [i16]) {
    assert_eq!(values.len(), out.len());
    assert!(levels <= INPUT_LEVELS);
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx2 {
        // SAFETY: `isa()` saw AVX2 on this CPU; the lengths match.
        return unsafe { quantize_avx2(values, inverse, levels, out) };
    }
    for (q, &v) in out.iter_mut().zip(values) {
        *q = (v * inverse).round_ties_even().clamp(-levels, levels) as i16;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_avx2(values: &[f32], inverse: f32, levels: f32, out: &mut [i16]) {
    use std::arch::x86_64::*;
    let (scale, high_limit, low_limit) = (_mm256_set1_ps(inverse), _mm256_set1_ps(levels), _mm256_set1_ps(-levels));
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
        *q = (v * inverse).round_ties_even().clamp(-levels, levels) as i16;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::super::matmul::{matmul, matmul_on, Epilogue, Format, Panels};
    use super::super::testing::{assert_close, naive, values, widths};
    use super::*;

    #[test]
    fn absmax_finds_the_largest_magnitude_and_lets_a_nan_through() {
        assert_eq!(absmax(&[]), 0.0);
        assert_eq!(absmax(&[-0.0]), 0.0);
        // Positions in the 64-lane body and in the tail.
        let v: Vec<f32> = (0..200).map(|i| (i as f32 - 100.0) * 0.5).collect();
        assert_eq!(absmax(&v), 50.0);
        for at in [0, 63, 64, 127, 199] {
            let mut w = v.clone();
            w[at] = -1e30;
            assert_eq!(absmax(&w), 1e30);
            w[at] = f32::NEG_INFINITY;
            assert_eq!(absmax(&w), f32::INFINITY);
            w[at] = f32::NAN;
            assert!(absmax(&w).is_nan(), "NaN at {at}");
            w[at] = -f32::NAN;
            assert!(absmax(&w).is_nan(), "−NaN at {at}");
        }
    }

    /// The quantization the int8 formats are specified by, written out: each row of `values`
    /// (`width` long) to `±levels` steps of `absmax / levels`, rounded to nearest (ties to
    /// even), then back (in f64, so that the reference adds no rounding of its own).
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

    /// `x·Wᵀ + b` of the operands quantized as [`Format::Int8`] (inputs to ±4,095) or, with
    /// `input_levels` 127, [`Format::W8A8`] quantizes them, in f64.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn quantized_product(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        m: usize,
        n: usize,
        k: usize,
        input_levels: f32,
    ) -> Vec<f32> {
        let (xq, wq) = (quantized(x, k, input_levels), quantized(w, k, WEIGHT_LEVELS));
        (0..m * n)
            .map(|at| {
                let (i, j) = (at / n, at % n);
                let dot: f64 = (0..k).map(|t| xq[i * k + t] * wq[j * k + t]).sum();
                (dot + f64::from(b[j])) as f32
            })
            .collect()
    }

    /// Every way an int8 product can run on this CPU: 13-bit inputs on pairs, 8-bit inputs on
    /// pairs (a CPU without VNNI) and on quads (a CPU with it; the quads' portable tile where
    /// this one has none).
    const VARIANTS: [(f32, Layout); 3] =
        [(INPUT_LEVELS, Layout::Pairs), (INPUT_LEVELS_8, Layout::Pairs), (INPUT_LEVELS_8, Layout::Quads)];

    /// [`Packed::new`] with the input levels and the layout chosen rather than detected.
    fn packed_as(w: &[f32], b: &[f32], n: usize, k: usize, (levels, layout): (f32, Layout)) -> Packed {
        let mut bias = b.to_vec();
        bias.resize(n.div_ceil(PANEL) * PANEL, 0.0);
        Packed { k, n, panels: Panels::Int8(Int8Panels::quantize_as(w, n, k, levels, layout)), bias }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The int8 products are the exact products of the quantized operands (odd `k`, partial
        /// tiles and panels included), the same on either layout, and within the quantization's
        /// own error bound of the f32 product: `Σ |x|·δw + |w|·δx + δx·δw` with `δ` half a step.
        #[test]
        fn int8_is_the_product_of_the_quantized_operands(m in 1usize..40, n in 1usize..70, k in 1usize..90, seed in 0u32..1000) {
            let (x, w, b) = (values(m * k, seed), values(n * k, seed + 1), values(n, seed + 2));
            let x: Vec<f32> = x.iter().enumerate().map(|(i, v)| if i % 7 == 3 { v * 40.0 } else { *v }).collect();
            let exact = naive(&x, &w, &b, m, n, k);
            let half_step = |row: &[f32], levels: f32| row.iter().fold(0.0f32, |m, v| m.max(v.abs())) / levels / 2.0;
            let runs = VARIANTS.into_iter().flat_map(|v| widths().map(move |on_wide| (v, on_wide)));
            for (variant, on_wide) in runs {
                let levels = variant.0;
                let mut out = vec![f32::NAN; m * n];
                matmul_on(&x, m, &packed_as(&w, &b, n, k, variant), Epilogue::None, &mut out, on_wide);
                assert_close(&out, &quantized_product(&x, &w, &b, m, n, k, levels), 1e-5);
                for i in 0..m {
                    let (xr, dx) = (&x[i * k..(i + 1) * k], half_step(&x[i * k..(i + 1) * k], levels));
                    for j in 0..n {
                        let (wr, dw) = (&w[j * k..(j + 1) * k], half_step(&w[j * k..(j + 1) * k], WEIGHT_LEVELS));
                        let bound: f32 = xr.iter().zip(wr).map(|(a, b)| a.abs() * dw + b.abs() * dx + dx * dw).sum();
                        let error = (out[i * n + j] - exact[i * n + j]).abs();
                        prop_assert!(error <= bound * 1.001 + 1e-5, "{variant:?} ({i}, {j}): error {error} over bound {bound}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_formats_choose_their_input_levels_and_a_layout_this_cpu_runs() {
        let (w, b) = (values(20 * 9, 1), values(20, 2));
        for (format, levels) in [(Format::Int8, INPUT_LEVELS), (Format::W8A8, INPUT_LEVELS_8)] {
            let Panels::Int8(panels) = Packed::new(&w, &b, 20, 9, format).panels else { unreachable!() };
            assert_eq!(panels.input_levels, levels);
            let quads = format == Format::W8A8 && vnni();
            assert_eq!(panels.layout, if quads { Layout::Quads } else { Layout::Pairs }, "{format:?}");
        }
    }

    #[test]
    fn int8_rows_with_a_nan_or_an_infinity_come_out_nan_and_the_rest_are_untouched() {
        let (m, n, k) = (3, 20, 9);
        let (mut x, w, b) = (values(m * k, 1), values(n * k, 2), values(n, 3));
        x[4] = f32::NAN;
        x[2 * k + 1] = f32::INFINITY;
        for variant in VARIANTS {
            let packed = packed_as(&w, &b, n, k, variant);
            let mut out = vec![0.0; m * n];
            matmul(&x, m, &packed, Epilogue::None, &mut out);
            assert!(out[..n].iter().all(|v| v.is_nan()) && out[2 * n..].iter().all(|v| v.is_nan()));
            assert!(out[n..2 * n].iter().all(|v| v.is_finite()), "{variant:?}");
            let zeros = vec![0.0; k];
            let mut row = vec![f32::NAN; n];
            matmul(&zeros, 1, &packed, Epilogue::None, &mut row);
            assert_eq!(row, b, "{variant:?}: an all-zero row is the bias");
        }
    }

    /// The bound the integer sums are sized for, reached: k = 4,096 with every input at its
    /// largest level and every weight at ±127, same signs and opposite signs, is exact (on
    /// quads the sums run through `255 · 127` per term before the correction).
    #[test]
    fn int8_sums_at_the_largest_k_and_extreme_values_do_not_overflow() {
        let k = MAX_INT8_K;
        for variant in VARIANTS {
            for sign in [1.0f32, -1.0] {
                let (x, w) = (vec![1.0f32; k], vec![sign; k]);
                let mut out = [0.0f32];
                matmul(&x, 1, &packed_as(&w, &[0.0], 1, k, variant), Epilogue::None, &mut out);
                // Each product is levels · 127, scaled back by (1/levels) · (1/127): the sum is
                // k up to the scales' rounding; a wrapped i32 would be negative for sign 1.
                assert!((out[0] - sign * k as f32).abs() < 1e-2, "{variant:?} {sign}: {}", out[0]);
            }
        }
    }

    #[test]
    fn int8_columns_with_a_non_finite_weight_come_out_nan() {
        let (n, k) = (3, 5);
        let mut w = values(n * k, 1);
        w[k + 2] = f32::NAN;
        for variant in VARIANTS {
            let mut out = vec![0.0; n];
            matmul(&values(k, 2), 1, &packed_as(&w, &[0.0; 3], n, k, variant), Epilogue::None, &mut out);
            assert!(out[0].is_finite() && out[1].is_nan() && out[2].is_finite(), "{variant:?}: {out:?}");
        }
    }

    #[test]
    #[should_panic(expected = "k ≤ 4096")]
    fn int8_refuses_an_inner_dimension_that_could_overflow() {
        Packed::new(&vec![0.0; 4097], &[0.0], 1, 4097, Format::W8A8);
    }
}
