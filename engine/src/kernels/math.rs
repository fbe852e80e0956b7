//! The element-wise functions BERT needs, written plainly so that the compiler vectorises them
//! (see `vectorised!`): exp, erf, GELU, softmax, layer norm, and the lane-wise reduction they
//! share; softmax's numerators also written out in AVX-512, where the compiler's version was
//! poor.

use super::{isa, Isa};

/// `a·b + c`, fused into one rounding where the CPU has FMA ([`Fused`], used by the
/// AVX2 + FMA instances of `vectorised!` functions) or as two operations ([`Separate`], the
/// portable instances, where `f32::mul_add` would be a call into libm per element).
pub(crate) trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// One fused multiply-add (`vfmadd`).
pub(crate) struct Fused;
/// A multiplication, then an addition.
pub(crate) struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

// The constants of `exp`, shared with its 16-lane copy `exp_512` so that the two stay the
// same function bit for bit (a test holds them to it).
/// The range `exp` clamps its input to: results stay finite normal numbers.
const EXP_MIN: f32 = -87.3;
const EXP_MAX: f32 = 88.3;
/// ln 2 split in two so that n·LN2_HI is exact for |n| < 2^9 (Cody and Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;
/// The Taylor coefficients of `e^r` after the leading 1/7!, highest degree first (Horner).
const EXP_TAYLOR: [f32; 7] = [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];
const EXP_LEADING: f32 = 1.0 / 5040.0;

/// `e^x`, relative error under 5e-7, for `x` clamped to [−87.3, 88.3], so the result is always
/// a finite normal number: `x = n·ln2 + r` with `|r| ≤ ln2/2`, `e^r` by its Taylor series to
/// degree 7, `2^n` built in the exponent bits. Branch-free, so loops over it vectorise.
#[inline(always)]
pub(crate) fn exp<M: MulAdd>(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = M::mul_add(x, LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    let mut p = EXP_LEADING;
    for c in EXP_TAYLOR {
        p = M::mul_add(p, r, c);
    }
    let exponent = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    p * f32::from_bits(((exponent + 127) as u32) << 23)
}

/// The error function, absolute error ≤ 5e-7 in f32 (1.5e-7 in exact arithmetic; the rest is
/// rounding in `1 − …` near 0, harmless to GELU, which multiplies it by `x/2`): Abramowitz and
/// Stegun, Handbook of Mathematical Functions, 1964, formula 7.1.26,
/// `1 − (a₁t + … + a₅t⁵)·e^(−x²)` with `t = 1/(1 + p|x|)`.
#[inline(always)]
pub(crate) fn erf<M: MulAdd>(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152, 1.061_405_4];
    let z = x.abs().min(9.0);
    let t = 1.0 / M::mul_add(P, z, 1.0);
    let poly = M::mul_add(M::mul_add(M::mul_add(M::mul_add(A[4], t, A[3]), t, A[2]), t, A[1]), t, A[0]) * t;
    let y = M::mul_add(-poly, exp::<M>(-z * z), 1.0);
    y.copysign(x)
}

vectorised! {
    /// BERT's GELU in place: `x · (1 + erf(x/√2)) / 2`.
    fn gelu(values: &mut [f32]) {
        for v in values.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf::<M>(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

vectorised! {
    /// `a · b` over the shorter length, in sixteen independent lanes (fused multiply-adds where
    /// the CPU has them): what the exact scan of live rows computes per row.
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut lanes = [0f32; 16];
        let (a_chunks, b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
        let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in a_chunks.zip(b_chunks) {
            for lane in 0..16 {
                lanes[lane] = M::mul_add(x[lane], y[lane], lanes[lane]);
            }
        }
        lanes.iter().sum::<f32>() + tail
    }
}

vectorised! {
    /// `a · b` for an f32 `a` and an 8-bit `b` (each value widened to f32), over the shorter
    /// length, in sixteen lanes: the quantized scan's score of one row ([`crate::dense`]),
    /// which reads a quarter of the bytes an f32 row takes.
    fn dot_i8(a: &[f32], b: &[i8]) -> f32 {
        let mut lanes = [0f32; 16];
        let (a_chunks, b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
        let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, &y)| x * f32::from(y)).sum();
        for (x, y) in a_chunks.zip(b_chunks) {
            for lane in 0..16 {
                lanes[lane] = M::mul_add(x[lane], f32::from(y[lane]), lanes[lane]);
            }
        }
        lanes.iter().sum::<f32>() + tail
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

/// Softmax's numerators in place, `e^(scale·(x − max))`, returning their sum `Σ`: the softmax
/// is each value divided by `Σ`, a division attention applies to its output row (`head_dim`
/// values) instead of to the `len` probabilities. `scale > 0`. The maximum ignores NaNs (as
/// `f32::max` does); a NaN value's numerator is NaN.
pub(crate) fn softmax_numerators(values: &mut [f32], scale: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::wide() {
        // SAFETY: `wide()` saw AVX-512 F on this CPU.
        return unsafe { softmax_numerators_512(values, scale) };
    }
    softmax_numerators_lanes(values, scale)
}

/// [`softmax_numerators`] written out in AVX-512: the compiler's vectorisation of the plain
/// loops (`softmax_numerators_lanes`) reduces the maximum with a NaN test per step and ~30
/// scalar shuffles per row, and builds `2^n` in integer arithmetic; here the maximum is one
/// `vmaxps` per 16 values and one reduction, the row's last partial register is masked, and
/// `2^n` is `vscalefps`. The same clamp, reduction to `[−ln2/2, ln2/2]` and degree-7
/// polynomial as [`exp`], so each numerator is the same float; only the sum's order differs.
///
/// # Safety
/// The CPU has AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_numerators_512(values: &mut [f32], scale: f32) -> f32 {
    use std::arch::x86_64::*;
    let (len, at) = (values.len(), values.as_mut_ptr());
    let whole = len / 16 * 16;
    let tail: __mmask16 = ((1u32 << (len - whole)) - 1) as u16;
    // `vmaxps a, b` returns `b` when either is NaN: the running maximum goes second, so a NaN
    // value is passed over.
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 ≤ len.
        max = _mm512_max_ps(unsafe { _mm512_loadu_ps(at.add(i)) }, max);
    }
    // SAFETY: the mask covers the `len − whole` values left.
    let last = unsafe { _mm512_maskz_loadu_ps(tail, at.add(whole)) };
    max = _mm512_mask_max_ps(max, tail, last, max);
    let max = _mm512_reduce_max_ps(max);
    let (scale_v, shift) = (_mm512_set1_ps(scale), _mm512_set1_ps(-max * scale));
    let mut sum = _mm512_setzero_ps();
    for i in (0..whole).step_by(16) {
        // SAFETY: as above.
        unsafe {
            let e = exp_512(_mm512_fmadd_ps(_mm512_loadu_ps(at.add(i)), scale_v, shift));
            _mm512_storeu_ps(at.add(i), e);
            sum = _mm512_add_ps(sum, e);
        }
    }
    if tail != 0 {
        let e = exp_512(_mm512_fmadd_ps(last, scale_v, shift));
        // SAFETY: as above.
        unsafe { _mm512_mask_storeu_ps(at.add(whole), tail, e) };
        sum = _mm512_mask_add_ps(sum, tail, sum, e);
    }
    _mm512_reduce_add_ps(sum)
}

/// [`exp`] on 16 lanes: the same clamp, Cody–Waite reduction and polynomial, `2^n` applied by
/// `vscalefps`. A NaN lane stays NaN.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn exp_512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    // `n` from one fused rounding of `x·log2e`, as in `exp` (rounding the product and then to
    // an integer would differ by one in `n` for some `x`).
    // `vmaxps`/`vminps` return their second operand when either is NaN: x goes second.
    let x = _mm512_min_ps(_mm512_set1_ps(EXP_MAX), _mm512_max_ps(_mm512_set1_ps(EXP_MIN), x));
    let shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), _mm512_set1_ps(ROUND));
    let n = _mm512_sub_ps(shifted, _mm512_set1_ps(ROUND));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x));
    let mut p = _mm512_set1_ps(EXP_LEADING);
    for c in EXP_TAYLOR {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

vectorised! {
    /// [`softmax_numerators`] in plain loops the compiler vectorises: what CPUs without
    /// AVX-512 run.
    fn softmax_numerators_lanes(values: &mut [f32], scale: f32) -> f32 {
        let max = reduce(values, f32::NEG_INFINITY, |v| v, f32::max);
        // One pass: the exponential and the running sums (16 lanes, as `reduce` keeps them).
        let shift = -max * scale;
        let mut lanes = [0.0f32; 16];
        let mut chunks = values.chunks_exact_mut(16);
        for chunk in &mut chunks {
            for (lane, v) in lanes.iter_mut().zip(chunk.iter_mut()) {
                *v = exp::<M>(M::mul_add(*v, scale, shift));
                *lane += *v;
            }
        }
        let mut total = lanes.into_iter().sum::<f32>();
        for v in chunks.into_remainder() {
            *v = exp::<M>(M::mul_add(*v, scale, shift));
            total += *v;
        }
        total
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
    use super::super::testing::{assert_close, erf_reference};
    use super::*;

    #[test]
    fn dot_i8_is_the_widened_sum_of_products_for_every_length() {
        for len in [0usize, 1, 15, 16, 17, 128, 131] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<i8> = (0..len).map(|i| ((i * 53) % 255) as i8).collect();
            let expected: f64 = a.iter().zip(&b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
            let got = dot_i8(&a, &b);
            assert!((f64::from(got) - expected).abs() <= 1e-3 * expected.abs().max(1.0), "{len}: {got} vs {expected}");
        }
    }

    #[test]
    fn exp_and_erf_are_accurate_over_the_range_bert_uses() {
        for i in -8000..=8000 {
            let x = i as f32 / 100.0;
            let (ours, reference) = (exp::<Separate>(x), (x as f64).exp());
            assert!(((ours as f64 - reference) / reference).abs() < 5e-7, "exp({x}) = {ours}, not {reference}");
        }
        assert_eq!(exp::<Separate>(-1.0e4), exp::<Separate>(-87.3));
        assert!(exp::<Separate>(-1.0e4) < 1e-37 && exp::<Separate>(100.0).is_finite());
        for i in -1000..=1000 {
            let x = i as f32 / 100.0;
            let (ours, reference) = (erf::<Separate>(x), erf_reference(x as f64));
            assert!((ours as f64 - reference).abs() < 5e-7, "erf({x}) = {ours}, not {reference}");
        }
    }

    #[test]
    fn the_avx512_softmax_gives_the_plain_loops_numerators_for_every_length() {
        if !super::super::wide() {
            eprintln!("no AVX-512 here (or HYRANK_NO_AVX512=1): the 512-bit softmax is not run");
            return;
        }
        for len in [1usize, 15, 16, 17, 40, 240] {
            let values: Vec<f32> = (0..len).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.7).collect();
            let (mut ours, mut plain) = (values.clone(), values.clone());
            let total = unsafe { softmax_numerators_512(&mut ours, 0.18) };
            let plain_total = softmax_numerators_lanes(&mut plain, 0.18);
            // The same floats, bit for bit; only the sum's order differs.
            for (i, (a, b)) in ours.iter().zip(&plain).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "len {len}, value {i}: {a} vs {b}");
            }
            assert!((total - plain_total).abs() <= 1e-5 * plain_total, "len {len}: {total} vs {plain_total}");
        }
        // A NaN is passed over by the maximum and stays NaN; a value far below the maximum
        // gives `exp`'s floor, a tiny normal number, not garbage.
        let mut v = vec![1.0, f32::NAN, -1.0e6, 3.0];
        unsafe { softmax_numerators_512(&mut v, 1.0) };
        assert!(v[1].is_nan() && v[2] == exp::<Fused>(-87.3) && v[3] == 1.0, "{v:?}");
    }

    #[test]
    fn the_avx512_exp_is_the_scalar_one_bit_for_bit() {
        if !super::super::wide() {
            eprintln!("no AVX-512 here (or HYRANK_NO_AVX512=1): the 512-bit exp is not run");
            return;
        }
        // Every 1/1000 over the clamp's range and past it, and the points halfway between two
        // values of `n`, where rounding twice would pick the other one.
        let halfway = (-127..=128).map(|k| (k as f32 + 0.5) / std::f32::consts::LOG2_E);
        let inputs: Vec<f32> = (-90_000..=90_000).map(|i| i as f32 / 1000.0).chain(halfway).collect();
        for chunk in inputs.chunks(16).filter(|c| c.len() == 16) {
            let mut out = [0.0f32; 16];
            unsafe {
                use std::arch::x86_64::*;
                _mm512_storeu_ps(out.as_mut_ptr(), exp_512(_mm512_loadu_ps(chunk.as_ptr())));
            }
            for (x, e) in chunk.iter().zip(out) {
                assert_eq!(e.to_bits(), exp::<Fused>(*x).to_bits(), "exp({x})");
            }
        }
    }

    #[test]
    fn softmax_and_layer_norm_follow_their_definitions() {
        let mut v = vec![1.0f32, 2.0, 3.0, -50.0];
        let total = softmax_numerators(&mut v, 1.0);
        v.iter_mut().for_each(|v| *v /= total);
        let total: f64 = [1.0f64, 2.0, 3.0, -50.0].iter().map(|x| (x - 3.0).exp()).sum();
        let expected: Vec<f32> = [1.0f64, 2.0, 3.0, -50.0].iter().map(|x| ((x - 3.0).exp() / total) as f32).collect();
        assert_close(&v, &expected, 1e-6);

        let mut rows = vec![1.0f32, 2.0, 3.0, 4.0, -1.0, -1.0, 1.0, 1.0];
        layer_norm(&mut rows, &[1.0, 2.0, 1.0, 1.0], &[0.0, 0.0, 0.0, 0.5], 1e-12);
        let s = 1.25f32.sqrt();
        assert_close(&rows, &[-1.5 / s, -1.0 / s, 0.5 / s, 1.5 / s + 0.5, -1.0, -2.0, 1.0, 1.5], 1e-5);
    }
}
