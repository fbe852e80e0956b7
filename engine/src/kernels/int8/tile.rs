//! The integer tiles of the int8 products, one per layout and instruction set: `count` packed
//! input rows (≤ 6, or ≤ 12 on the 512-bit tiles) times one panel (or two) of 16 quantized
//! output columns, scaled back to f32.

use super::super::{isa, wide, Isa, PANEL, TILE_ROWS, WIDE_PANELS, WIDE_ROWS};
use super::Layout;

/// One integer tile's operands: quantized rows (`steps × rows` i16 pairs or byte quads,
/// step-major), one or two panels of weights in the same layout, and what brings the integer
/// sums back to f32.
#[derive(Clone, Copy)]
pub(super) struct IntTile<'a> {
    /// How `a` and `weights` are laid out, which picks the tile.
    pub(super) layout: Layout,
    pub(super) a: &'a [i32],
    pub(super) weights: &'a [i8],
    pub(super) row_scales: &'a [f32],
    pub(super) column_scales: &'a [f32],
    /// The panel's 16 zero-point corrections for [`Layout::Quads`]; unread for pairs.
    pub(super) corrections: &'a [i32],
    pub(super) bias: &'a [f32],
    pub(super) steps: usize,
    /// Rows per step of `a`: the tile height its rows were packed for (6, or up to
    /// [`WIDE_ROWS`] for the 512-bit tiles).
    pub(super) rows: usize,
    /// Consecutive panels multiplied at once (2 only on the 512-bit tiles); `weights`,
    /// `column_scales`, `corrections` and `bias` hold that many panels' worth.
    pub(super) panels: usize,
}

/// `count` quantized rows times `t.panels` quantized panels, scaled, plus the bias, into `c`
/// (row stride `ldc`): `c[r][j] = (Σ a·w) · row_scale[r] · column_scale[j] + bias[j]`.
///
/// `on_wide` (where [`wide_int8`] holds): the 512-bit tiles, up to [`WIDE_ROWS`] rows and
/// [`WIDE_PANELS`] panels; otherwise the 256-bit or portable tiles, up to 6 rows and one
/// panel.
///
/// # Panics
/// If `on_wide` and [`wide_int8`] does not hold, `count` is 0 or over `t.rows`, `t.rows` or
/// `t.panels` is over what the chosen tiles take, or an operand is shorter than `steps` needs.
///
/// # Safety
/// `c` is valid for `count` rows of `16 · t.panels` floats at stride `ldc`.
pub(super) unsafe fn tile_int8(t: IntTile<'_>, count: usize, c: *mut f32, ldc: usize, on_wide: bool) {
    let quads = t.layout == Layout::Quads;
    assert!(!on_wide || wide_int8(), "the 512-bit int8 tiles need AVX-512 F, BW and VNNI");
    let (rows, panels) = if on_wide { (WIDE_ROWS, WIDE_PANELS) } else { (TILE_ROWS, 1) };
    assert!((1..=t.rows).contains(&count) && t.rows <= rows && (1..=panels).contains(&t.panels));
    assert!(t.a.len() >= t.steps * t.rows && t.row_scales.len() >= count);
    let width = t.panels * PANEL;
    assert!(t.weights.len() >= t.steps * width * t.layout.width());
    assert!(!quads || t.corrections.len() >= width);
    assert!(t.column_scales.len() >= width && t.bias.len() >= width);
    #[cfg(target_arch = "x86_64")]
    if on_wide {
        macro_rules! wide {
            ($kernel:ident, $p:literal: $($r:literal)*) => {
                match count {
                    // SAFETY: `wide_int8()` saw AVX-512 F, BW and VNNI; operands checked above.
                    $($r => unsafe { $kernel::<$r, $p>(t, c, ldc) },)*
                    _ => unreachable!(),
                }
            };
        }
        return match (quads, t.panels) {
            (true, 1) => wide!(tile_quads_wide, 1: 1 2 3 4 5 6 7 8 9 10 11 12),
            (true, _) => wide!(tile_quads_wide, 2: 1 2 3 4 5 6 7 8 9 10 11 12),
            (false, 1) => wide!(tile_pairs_wide, 1: 1 2 3 4 5 6 7 8 9 10 11 12),
            (false, _) => wide!(tile_pairs_wide, 2: 1 2 3 4 5 6 7 8 9 10 11 12),
        };
    }
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
        Isa::Avx2 if quads && vnni() => unsafe { dispatch!(tile_quads_vnni) },
        _ if quads => unsafe { dispatch!(tile_quads_portable) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if vnni() => unsafe { dispatch!(tile_int8_vnni) },
        // SAFETY: `isa()` saw AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { dispatch!(tile_int8_avx2) },
        _ => unsafe { dispatch!(tile_int8_portable) },
    }
}

/// Whether the int8 products may run the 512-bit tiles: VNNI and [`wide`].
pub(super) fn wide_int8() -> bool {
    vnni() && wide()
}

/// Whether this CPU has AVX-512 VNNI with 256-bit forms (VL): `vpdpwssd` fuses the pair tile's
/// multiply-add and accumulation into one instruction (`tile_int8_avx2` needs two), and
/// `vpdpbusd` runs the quad tile, which [`Format::W8A8`](super::super::Format) panels are laid
/// out for at load where this holds.
pub(in crate::kernels) fn vnni() -> bool {
    static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        // HYRANK_NO_VNNI=1 runs the AVX2 tile instead, for comparisons.
        if !super::super::switched_off("HYRANK_NO_VNNI") {
            return std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512f");
        }
        false
    })
}

/// The integer tile for one layout and instruction set: `R × 16` i32 accumulators in `2R`
/// registers; per step (`$layout`'s width of inputs), one broadcast of each row's packed inputs
/// and two 16-lane multiply-accumulates against the panel's step, loaded half by half with
/// `$load` (`$accumulate(acc, inputs, weights)`); for quads, the zero-point corrections
/// subtracted at the end.
#[cfg(target_arch = "x86_64")]
macro_rules! int8_tile {
    ($(#[$doc:meta])* $name:ident, $features:literal, $layout:expr, $load:expr, $accumulate:expr) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize>(t: IntTile<'_>, c: *mut f32, ldc: usize) {
            use std::arch::x86_64::*;
            let (a, b) = (t.a.as_ptr(), t.weights.as_ptr());
            // Bytes of weights per step: 16 lanes of `width` i8.
            let step = PANEL * $layout.width();
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            for s in 0..t.steps {
                // SAFETY: s < steps: the panel's step and each row's packed inputs are in
                // bounds (asserted in `tile_int8`).
                let (b0, b1) = unsafe { ($load(b.add(s * step)), $load(b.add(s * step + step / 2))) };
                // The panel streams from memory on a short input: ask for the line 512 bytes
                // ahead. A hint only; past the panel's end it fetches nothing harmful.
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(s * step + 512) as *const i8);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let v = _mm256_set1_epi32(unsafe { *a.add(s * t.rows + r) });
                    acc[0] = $accumulate(acc[0], v, b0);
                    acc[1] = $accumulate(acc[1], v, b1);
                }
            }
            if $layout == Layout::Quads {
                // SAFETY: 16 corrections for quads (asserted in `tile_int8`).
                let (k0, k1) = unsafe {
                    (
                        _mm256_loadu_si256(t.corrections.as_ptr().cast::<__m256i>()),
                        _mm256_loadu_si256(t.corrections.as_ptr().add(8).cast::<__m256i>()),
                    )
                };
                for acc in &mut acc {
                    acc[0] = _mm256_sub_epi32(acc[0], k0);
                    acc[1] = _mm256_sub_epi32(acc[1], k1);
                }
            }
            // SAFETY: the caller's.
            unsafe { store_int8(&acc, t, c, ldc) };
        }
    };
}

#[cfg(target_arch = "x86_64")]
int8_tile!(
    /// Pairs on AVX2: 32 weights (16 pairs) widened to i16 (`vpmovsxbw`), `vpmaddwd` then
    /// `vpaddd` (16 multiply-adds in two instructions).
    tile_int8_avx2,
    "avx2,fma",
    Layout::Pairs,
    |p: *const i8| _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast::<__m128i>())),
    |acc, v, b| _mm256_add_epi32(acc, _mm256_madd_epi16(v, b))
);

#[cfg(target_arch = "x86_64")]
int8_tile!(
    /// Pairs on AVX-512 VNNI (256-bit registers): `vpdpwssd` (the same 16 multiply-adds and
    /// their accumulation in one instruction).
    tile_int8_vnni,
    "avx2,fma,avx512f,avx512vl,avx512vnni",
    Layout::Pairs,
    |p: *const i8| _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast::<__m128i>())),
    |acc, v, b| _mm256_dpwssd_epi32(acc, v, b)
);

#[cfg(target_arch = "x86_64")]
int8_tile!(
    /// Quads on AVX-512 VNNI (256-bit registers): the weights used as stored, one broadcast
    /// quad of `x + 128` bytes per row and `vpdpbusd` (32 multiply-adds per instruction).
    tile_quads_vnni,
    "avx2,fma,avx512f,avx512vl,avx512vnni",
    Layout::Quads,
    |p: *const i8| _mm256_loadu_si256(p.cast::<__m256i>()),
    |acc, v, b| _mm256_dpbusd_epi32(acc, v, b)
);

/// The 512-bit integer tile for one layout: `R × P` accumulators of 16 i32 lanes (up to 12 rows
/// by two panels, as the f32 tile); per step one broadcast of each row's packed inputs and
/// `P` multiply-accumulates per row against the panels' step, loaded with `$load`; the
/// corrections (quads), scales and bias applied at the end.
#[cfg(target_arch = "x86_64")]
macro_rules! int8_tile_wide {
    ($(#[$doc:meta])* $name:ident, $layout:expr, $load:expr, $accumulate:expr) => {
        $(#[$doc])*
        #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
        unsafe fn $name<const R: usize, const P: usize>(t: IntTile<'_>, c: *mut f32, ldc: usize) {
            use std::arch::x86_64::*;
            let (a, b) = (t.a.as_ptr(), t.weights.as_ptr());
            let step = PANEL * $layout.width();
            let panel_len = t.steps * step;
            let mut acc = [[_mm512_setzero_si512(); P]; R];
            for s in 0..t.steps {
                let mut w = [_mm512_setzero_si512(); P];
                for (p, w) in w.iter_mut().enumerate() {
                    // SAFETY: s < steps, p < panels (asserted in `tile_int8`).
                    *w = unsafe { $load(b.add(p * panel_len + s * step)) };
                    // As in `int8_tile!`: 512 bytes ahead.
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(p * panel_len + s * step + 512) as *const i8);
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: r < count ≤ rows, s < steps (asserted in `tile_int8`).
                    let v = _mm512_set1_epi32(unsafe { *a.add(s * t.rows + r) });
                    for (acc, &w) in acc.iter_mut().zip(&w) {
                        *acc = $accumulate(*acc, v, w);
                    }
                }
            }
            for p in 0..P {
                // SAFETY: 16 · P scales, biases and (quads) corrections (asserted in `tile_int8`).
                let (scales, bias, correction) = unsafe {
                    (
                        _mm512_loadu_ps(t.column_scales.as_ptr().add(p * PANEL)),
                        _mm512_loadu_ps(t.bias.as_ptr().add(p * PANEL)),
                        if $layout == Layout::Quads {
                            _mm512_loadu_si512(t.corrections.as_ptr().add(p * PANEL).cast())
                        } else {
                            _mm512_setzero_si512()
                        },
                    )
                };
                for (r, acc) in acc.iter().enumerate() {
                    let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[p], correction));
                    let scale = _mm512_mul_ps(_mm512_set1_ps(t.row_scales[r]), scales);
                    // SAFETY: the caller guarantees R rows of 16 · P at stride ldc.
                    unsafe { _mm512_storeu_ps(c.add(r * ldc + p * PANEL), _mm512_fmadd_ps(sum, scale, bias)) };
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
int8_tile_wide!(
    /// Pairs on 512-bit registers: 32 weights widened to i16 (`vpmovsxbw`), `vpdpwssd`.
    tile_pairs_wide,
    Layout::Pairs,
    |p: *const i8| _mm512_cvtepi8_epi16(_mm256_loadu_si256(p.cast::<__m256i>())),
    |acc, v, b| _mm512_dpwssd_epi32(acc, v, b)
);

#[cfg(target_arch = "x86_64")]
int8_tile_wide!(
    /// Quads on 512-bit registers: 64 weight bytes as stored, `vpdpbusd`.
    tile_quads_wide,
    Layout::Quads,
    |p: *const i8| _mm512_loadu_si512(p.cast::<__m512i>()),
    |acc, v, b| _mm512_dpbusd_epi32(acc, v, b)
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
            let pair = t.a[s * t.rows + r] as u32;
            let (low, high) = (i32::from(pair as u16 as i16), i32::from((pair >> 16) as u16 as i16));
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc += low * i32::from(b[2 * j]) + high * i32::from(b[2 * j + 1]);
            }
        }
    }
    // SAFETY: the caller's.
    unsafe { scale_portable(&acc, t, c, ldc) };
}

/// The quad tile in portable Rust: the same integer sums as [`tile_quads_vnni`].
unsafe fn tile_quads_portable<const R: usize>(t: IntTile<'_>, c: *mut f32, ldc: usize) {
    let mut acc = [[0i32; PANEL]; R];
    for s in 0..t.steps {
        let b = &t.weights[s * PANEL * 4..(s + 1) * PANEL * 4];
        for (r, acc) in acc.iter_mut().enumerate() {
            let quad = (t.a[s * t.rows + r] as u32).to_le_bytes();
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc += (0..4).map(|q| i32::from(quad[q]) * i32::from(b[4 * j + q])).sum::<i32>();
            }
        }
    }
    // SAFETY: the caller's.
    unsafe { scale_portable(&acc, t, c, ldc) };
}

/// The portable tiles' sums, less the corrections for quads, scaled back to f32 and stored.
///
/// # Safety
/// As for [`tile_int8`].
unsafe fn scale_portable<const R: usize>(acc: &[[i32; PANEL]; R], t: IntTile<'_>, c: *mut f32, ldc: usize) {
    for (r, acc) in acc.iter().enumerate() {
        for (j, &sum) in acc.iter().enumerate() {
            let sum = if t.layout == Layout::Quads { sum - t.corrections[j] } else { sum };
            let value = sum as f32 * (t.row_scales[r] * t.column_scales[j]) + t.bias[j];
            // SAFETY: the caller guarantees R rows of 16 at stride ldc.
            unsafe { *c.add(r * ldc + j) = value };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{assert_close, values};
    use super::super::{Int8Panels, INPUT_LEVELS, INPUT_LEVELS_8};
    use super::*;

    /// Random operands of one tile for `layout`: `steps × 6` packed inputs and a panel.
    fn tile_operands(layout: Layout, k: usize) -> (Vec<i32>, Int8Panels) {
        let (w, steps) = (values(PANEL * k, 2), k.div_ceil(layout.width()));
        let levels = if layout == Layout::Quads { INPUT_LEVELS_8 } else { INPUT_LEVELS };
        let q = |v: f32| (v * levels).round() as i16;
        let inputs = values(steps * TILE_ROWS * layout.width(), 4);
        let a = inputs
            .chunks(layout.width())
            .map(|p| match layout {
                Layout::Pairs => (q(p[0]) as u16 as u32 | (q(p[1]) as u16 as u32) << 16) as i32,
                Layout::Quads => i32::from_le_bytes([0, 1, 2, 3].map(|at| (q(p[at]) + 128) as u8)),
            })
            .collect();
        (a, Int8Panels::quantize_as(&w, PANEL, k, levels, layout))
    }

    #[test]
    fn the_portable_int8_tiles_match_the_avx2_and_vnni_ones() {
        let (k, b, row_scales) = (37, values(PANEL, 3), values(TILE_ROWS, 1));
        for layout in [Layout::Pairs, Layout::Quads] {
            let (a, panels) = tile_operands(layout, k);
            let (column_scales, corrections) = (&panels.scales[..], &panels.corrections[..]);
            let steps = k.div_ceil(layout.width());
            let tile = IntTile {
                layout,
                a: &a,
                weights: &panels.values,
                row_scales: &row_scales,
                column_scales,
                corrections,
                bias: &b,
                steps,
                rows: TILE_ROWS,
                panels: 1,
            };
            let (mut dispatched, mut portable) = ([0.0f32; 6 * PANEL], [0.0f32; 6 * PANEL]);
            unsafe {
                // The 256-bit tiles (VNNI where present), whatever `wide` says.
                tile_int8(tile, 6, dispatched.as_mut_ptr(), PANEL, false);
                match layout {
                    Layout::Pairs => tile_int8_portable::<6>(tile, portable.as_mut_ptr(), PANEL),
                    Layout::Quads => tile_quads_portable::<6>(tile, portable.as_mut_ptr(), PANEL),
                }
            }
            assert_close(&dispatched, &portable, 1e-6);
            // Each instruction set this CPU has, not only the one dispatched.
            #[cfg(target_arch = "x86_64")]
            if isa() == Isa::Avx2 && layout == Layout::Pairs {
                let mut avx2 = [0.0f32; 6 * PANEL];
                unsafe { tile_int8_avx2::<6>(tile, avx2.as_mut_ptr(), PANEL) };
                assert_close(&avx2, &portable, 1e-6);
            }
        }
    }
    #[test]
    fn the_512_bit_int8_tiles_match_the_portable_ones_for_every_shape() {
        if !wide_int8() {
            eprintln!("no AVX-512 F, BW and VNNI here (or HYRANK_NO_AVX512=1): the 512-bit int8 tiles are not run");
            return;
        }
        let k = 37;
        let (b, row_scales) = (values(2 * PANEL, 3), values(WIDE_ROWS, 1));
        for layout in [Layout::Pairs, Layout::Quads] {
            let levels = if layout == Layout::Quads { INPUT_LEVELS_8 } else { INPUT_LEVELS };
            let panels = Int8Panels::quantize_as(&values(2 * PANEL * k, 2), 2 * PANEL, k, levels, layout);
            let steps = k.div_ceil(layout.width());
            let a: Vec<i32> = values(steps * WIDE_ROWS, 4).iter().map(|v| (v * 2e9) as i32).collect();
            let a: Vec<i32> = match layout {
                // Pairs of signed 13-bit levels (−4,096..=4,095); any four bytes are a quad.
                Layout::Pairs => a
                    .iter()
                    .map(|&v| {
                        let (high, low) = ((v >> 19 & 0x1fff) - 4096, (v & 0x1fff) - 4096);
                        (high as i16 as u16 as u32) << 16 | low as i16 as u16 as u32
                    })
                    .map(|pair| pair as i32)
                    .collect(),
                Layout::Quads => a,
            };
            // `rows`: the packed stride, as `block_product_int8` sets it (`count` for a block of
            // that many rows, 12 for the full tiles of a longer one).
            let tile = |p: usize, rows: usize| IntTile {
                layout,
                a: &a,
                weights: &panels.values,
                row_scales: &row_scales,
                column_scales: &panels.scales,
                corrections: &panels.corrections,
                bias: &b,
                steps,
                rows,
                panels: p,
            };
            let panel_len = steps * PANEL * layout.width();
            let shapes = (1..=WIDE_ROWS).flat_map(|count| [(count, count), (count, WIDE_ROWS)]);
            for (count, rows) in shapes {
                for p in 1..=WIDE_PANELS {
                    let ldc = WIDE_PANELS * PANEL;
                    let mut ours = vec![f32::NAN; WIDE_ROWS * ldc];
                    unsafe { tile_int8(tile(p, rows), count, ours.as_mut_ptr(), ldc, true) };
                    for panel in 0..p {
                        // The portable tile, one panel at a time, on the same packed rows.
                        let (first, last) = (panel * PANEL, (panel + 1) * PANEL);
                        let one = IntTile {
                            weights: &panels.values[panel * panel_len..],
                            column_scales: &panels.scales[first..last],
                            corrections: if layout == Layout::Quads { &panels.corrections[first..last] } else { &[] },
                            bias: &b[first..last],
                            panels: 1,
                            ..tile(1, rows)
                        };
                        let mut portable = vec![f32::NAN; WIDE_ROWS * PANEL];
                        unsafe {
                            match layout {
                                Layout::Pairs => tile_int8_portable::<WIDE_ROWS>(one, portable.as_mut_ptr(), PANEL),
                                Layout::Quads => tile_quads_portable::<WIDE_ROWS>(one, portable.as_mut_ptr(), PANEL),
                            }
                        }
                        for r in 0..count {
                            assert_close(
                                &ours[r * ldc + first..r * ldc + last],
                                &portable[r * PANEL..(r + 1) * PANEL],
                                1e-6,
                            );
                        }
                    }
                    // Nothing past the rows and panels asked for is written.
                    let written = |i: usize| i / ldc < count && i % ldc < p * PANEL;
                    assert!(
                        ours.iter().enumerate().all(|(i, v)| written(i) != v.is_nan()),
                        "count {count}, rows {rows}, panels {p}"
                    );
                }
            }
        }
    }
}
