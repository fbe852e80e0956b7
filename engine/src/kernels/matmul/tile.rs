//! The register tiles of the f32 and f16 products: `count` input rows times one or two
//! panels of 16 output columns, accumulated in registers over the whole `k`.

use super::super::{isa, wide, Isa, PANEL, TILE_ROWS, WIDE_PANELS, WIDE_ROWS};
use super::Element;

/// The left operand of a tile: element `(r, kk)` is `values[r · row_stride + kk · k_stride]`
/// (row-major rows: `(lda, 1)`; rows packed side by side: `(1, rows)`).
#[derive(Clone, Copy)]
pub(in crate::kernels) struct Rows<'a> {
    pub(in crate::kernels) values: &'a [f32],
    pub(in crate::kernels) row_stride: usize,
    pub(in crate::kernels) k_stride: usize,
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
pub(in crate::kernels) unsafe fn tile<T: Element>(
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

/// `count` (≤ 12) rows of `a`, each `k` long, times `panels` (1 or 2) consecutive panels of
/// `weights` (each `k × 16`), plus `bias` (`16 · panels`), into `c` (row stride `ldc`).
///
/// Against the AVX2 tile it holds twice the rows and twice the columns per pass: each panel
/// step is loaded once for up to 12 rows, and each broadcast feeds 32 columns, so a step is
/// 24 16-lane FMA instructions against 14 loads, not 12 8-lane ones against 8 (a query's
/// products ran at ~72% of one core's FMA peak on the AVX2 tile: criterion's single-thread
/// query against `bench/fma_peak.c`, docs/EVAL.md).
///
/// # Panics
/// If [`wide`] does not hold, `count` is not 1–12, `panels` not 1–2, `k` is 0, or an operand
/// is shorter than that needs.
///
/// # Safety
/// `c` is valid for `count` rows of `16 · panels` floats at stride `ldc`;
/// [`wide`](super::super::wide) is true.
#[allow(clippy::too_many_arguments)]
pub(in crate::kernels) unsafe fn tile_wide<T: Element>(
    a: Rows<'_>,
    count: usize,
    panels: usize,
    weights: &[T],
    bias: &[f32],
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    assert!(wide(), "the 512-bit tile needs AVX-512 F and BW");
    let last = (count.max(1) - 1) * a.row_stride + (k.max(1) - 1) * a.k_stride;
    assert!((1..=WIDE_ROWS).contains(&count) && (1..=WIDE_PANELS).contains(&panels));
    assert!(k > 0 && a.values.len() > last);
    assert!(weights.len() >= panels * k * PANEL && bias.len() >= panels * PANEL);
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! dispatch {
            ($p:literal: $($r:literal)*) => {
                match count {
                    // SAFETY: `wide()` saw AVX-512F; the operands are checked above.
                    $($r => unsafe { tile_avx512::<T, $r, $p>(a, weights, bias, k, c, ldc) },)*
                    _ => unreachable!(),
                }
            };
        }
        match panels {
            1 => dispatch!(1: 1 2 3 4 5 6 7 8 9 10 11 12),
            _ => dispatch!(2: 1 2 3 4 5 6 7 8 9 10 11 12),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (c, ldc);
        unreachable!("the AVX-512 tile runs only where `wide()` is true");
    }
}

/// The AVX-512 microkernel: `R × P` accumulators of 16 lanes, one broadcast of `a` and `P`
/// loads of the panels per step of `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn tile_avx512<T: Element, const R: usize, const P: usize>(
    a: Rows<'_>,
    weights: &[T],
    bias: &[f32],
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::*;
    let (rs, ks, a, b) = (a.row_stride, a.k_stride, a.values.as_ptr(), weights.as_ptr());
    let stride = k * PANEL;
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    for kk in 0..k {
        let mut w = [_mm512_setzero_ps(); P];
        for (p, w) in w.iter_mut().enumerate() {
            // SAFETY: kk < k and p < P: inside the panels (asserted in `tile_wide`).
            *w = unsafe { T::load16(b.add(p * stride + kk * PANEL)) };
            // As in `tile_avx2`: the panels stream from memory on a short input.
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(p * stride + (kk + 16) * PANEL) as *const i8);
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: r < count, kk < k (asserted in `tile_wide`).
            let v = _mm512_set1_ps(unsafe { *a.add(r * rs + kk * ks) });
            for (acc, &w) in acc.iter_mut().zip(&w) {
                *acc = _mm512_fmadd_ps(v, w, *acc);
            }
        }
    }
    for p in 0..P {
        // SAFETY: 16 · P biases (asserted in `tile_wide`).
        let bias = unsafe { _mm512_loadu_ps(bias.as_ptr().add(p * PANEL)) };
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees R rows of 16 · P at stride ldc.
            unsafe { _mm512_storeu_ps(c.add(r * ldc + p * PANEL), _mm512_add_ps(acc[p], bias)) };
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
    use super::super::super::testing::{assert_close, values};
    use super::*;

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

    /// `count` rows of `a` (row-major, `k` wide) times `panels` panels, by the portable tile
    /// six rows and one panel at a time, into rows of `2 · 16` (NaN where not written).
    fn portable_product<T: Element>(
        a: &[f32],
        count: usize,
        panels: usize,
        weights: &[T],
        bias: &[f32],
        k: usize,
    ) -> Vec<f32> {
        let ldc = 2 * PANEL;
        let mut out = vec![f32::NAN; count * ldc];
        for p in 0..panels {
            let (panel, bias) = (&weights[p * k * PANEL..], &bias[p * PANEL..]);
            for first in (0..count).step_by(TILE_ROWS) {
                let rows = Rows { values: &a[first * k..], row_stride: k, k_stride: 1 };
                let c = out[first * ldc + p * PANEL..].as_mut_ptr();
                unsafe {
                    match TILE_ROWS.min(count - first) {
                        1 => tile_portable::<T, 1>(rows, panel, bias, k, c, ldc),
                        2 => tile_portable::<T, 2>(rows, panel, bias, k, c, ldc),
                        3 => tile_portable::<T, 3>(rows, panel, bias, k, c, ldc),
                        4 => tile_portable::<T, 4>(rows, panel, bias, k, c, ldc),
                        5 => tile_portable::<T, 5>(rows, panel, bias, k, c, ldc),
                        _ => tile_portable::<T, 6>(rows, panel, bias, k, c, ldc),
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_avx512_tile_matches_the_portable_one_for_every_shape() {
        if !wide() {
            eprintln!("no AVX-512 F and BW here (or HYRANK_NO_AVX512=1): the 512-bit tile is not run");
            return;
        }
        let k = 37;
        let (a, weights, bias) = (values(WIDE_ROWS * k, 1), values(2 * k * PANEL, 2), values(2 * PANEL, 3));
        let halves: Vec<half::f16> = weights.iter().map(|&w| half::f16::from_f32(w)).collect();
        let rows = Rows { values: &a, row_stride: k, k_stride: 1 };
        for count in 1..=WIDE_ROWS {
            for panels in 1..=2 {
                let ldc = 2 * PANEL;
                let (mut full, mut half) = (vec![f32::NAN; WIDE_ROWS * ldc], vec![f32::NAN; WIDE_ROWS * ldc]);
                unsafe {
                    tile_wide(rows, count, panels, &weights, &bias, k, full.as_mut_ptr(), ldc);
                    tile_wide(rows, count, panels, &halves, &bias, k, half.as_mut_ptr(), ldc);
                }
                for (ours, reference) in [
                    (full, portable_product(&a, count, panels, &weights, &bias, k)),
                    (half, portable_product(&a, count, panels, &halves, &bias, k)),
                ] {
                    for r in 0..count {
                        let (written, past) = ours[r * ldc..(r + 1) * ldc].split_at(panels * PANEL);
                        assert_close(written, &reference[r * ldc..r * ldc + panels * PANEL], 1e-5);
                        // Nothing past the panels asked for is written.
                        assert!(past.iter().all(|v| v.is_nan()), "count {count}, panels {panels}");
                    }
                    // Nor any row past `count`.
                    assert!(ours[count * ldc..].iter().all(|v| v.is_nan()), "count {count}, panels {panels}");
                }
            }
        }
    }
}
