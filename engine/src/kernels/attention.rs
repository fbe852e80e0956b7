//! Scaled dot-product attention of one head over one sequence, on the product's register tile.

use super::math::softmax_numerators;
use super::matmul::{tile, tile_wide, Rows};
use super::{tile_shape, wide, PANEL, WIDE_PANELS, WIDE_ROWS};

/// Scaled dot-product attention of one head over one sequence of `len` tokens, reading
/// queries, keys and values from the fused projection `qkv` (`len` rows of `stride` floats;
/// this head's query at column `q`, key at `q + hidden`, value at `q + 2·hidden`, each
/// `head_dim` wide) and writing the context into `context` (`len` rows of `head_dim` floats at
/// a stride of `ldc`: a head's columns of the layer's context matrix, written in place). Every
/// token attends to every token of its own sequence: padding never enters. `scratch` is reused
/// between calls.
///
/// Both products run on the projection's microkernel: the keys are packed as panels of 16
/// keys (`scores = Q·Kᵀ`), the values as panels of 16 dimensions (`context = P·V`), a tile's
/// rows of queries at a time (6, or up to 12 spread evenly on the 512-bit tile) so that their
/// scores stay in L1. The softmax's division is applied to the context rows (`head_dim`
/// values) rather than to the probabilities (`len`).
///
/// # Panics
/// If `qkv` is shorter than `len` rows, a head's columns pass `stride`, or `ldc < head_dim`.
///
/// # Safety
/// `context` is valid for writes of `len` rows of `head_dim` floats at stride `ldc`, and no one
/// else reads or writes those floats during the call (several heads of one context matrix may
/// be written at once: their columns are disjoint).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn attend(
    qkv: &[f32],
    len: usize,
    stride: usize,
    q: usize,
    hidden: usize,
    head_dim: usize,
    context: *mut f32,
    ldc: usize,
    scratch: &mut Vec<f32>,
) {
    // SAFETY: the caller's.
    unsafe { attend_on(qkv, len, stride, q, hidden, head_dim, context, ldc, scratch, wide()) };
}

/// [`attend`] on the 512-bit tile or not (`on_wide`, which [`wide`] must allow): the tests run
/// both where the CPU has both.
///
/// # Safety
/// As for [`attend`].
#[allow(clippy::too_many_arguments)]
unsafe fn attend_on(
    qkv: &[f32],
    len: usize,
    stride: usize,
    q: usize,
    hidden: usize,
    head_dim: usize,
    context: *mut f32,
    ldc: usize,
    scratch: &mut Vec<f32>,
    on_wide: bool,
) {
    assert!(qkv.len() >= len * stride && ldc >= head_dim);
    let padded = len.div_ceil(PANEL) * PANEL;
    let value_panels = head_dim.div_ceil(PANEL);
    scratch.clear();
    // Query rows per pass and panels per product, as the projections' tiles take them.
    let (tile_rows, group) = tile_shape(len, on_wide);
    scratch.resize(padded * head_dim + value_panels * len * PANEL + tile_rows * (padded + value_panels * PANEL), 0.0);
    let (keys, rest) = scratch.split_at_mut(padded * head_dim);
    let (values, rest) = rest.split_at_mut(value_panels * len * PANEL);
    let (scores, out) = rest.split_at_mut(tile_rows * padded);
    // Packing is a transposition for the keys and a copy of 16-float runs for the values; by
    // slices, not by computed indexes, so that the bounds are checked once per row, not per
    // float (the indexed loop took as long as both products of a 143-token pair).
    for j in 0..len {
        let row = &qkv[j * stride + q..];
        // Each token's key and value lie a whole row of the fused projection (several KiB, on
        // another page) after the previous token's, a stride the hardware prefetchers do not
        // follow: ask for the lines a few tokens ahead.
        if let Some(ahead) = qkv.get((j + PREFETCH_TOKENS) * stride + q..) {
            prefetch_head(&ahead[hidden.min(ahead.len())..], head_dim);
            prefetch_head(&ahead[(2 * hidden).min(ahead.len())..], head_dim);
        }
        let (panel, lane) = (j / PANEL, j % PANEL);
        let key = &row[hidden..hidden + head_dim];
        let panel_keys = &mut keys[panel * head_dim * PANEL..(panel + 1) * head_dim * PANEL];
        for (slot, &k) in panel_keys.chunks_exact_mut(PANEL).zip(key) {
            slot[lane] = k;
        }
        // Whole runs as arrays: a copy of a known 16 floats is two register moves, where a
        // slice's copy is a call to `memcpy` per run (2% of an abstract's time).
        let value = &row[2 * hidden..2 * hidden + head_dim];
        let runs = value.chunks_exact(PANEL);
        let last = runs.remainder();
        for (p, run) in runs.enumerate() {
            let at = (p * len + j) * PANEL;
            let slot: &mut [f32; PANEL] = (&mut values[at..at + PANEL]).try_into().expect("a whole run");
            *slot = run.try_into().expect("a whole run");
        }
        if !last.is_empty() {
            let at = (head_dim / PANEL * len + j) * PANEL;
            values[at..at + last.len()].iter_mut().zip(last).for_each(|(v, &x)| *v = x);
        }
    }
    let zero = [0.0f32; WIDE_PANELS * PANEL];
    let scale = 1.0 / (head_dim as f32).sqrt();
    // `a` (`count` rows) times `panels` panels of `k × 16` from the first of `b`, into `c`
    // (row stride `ldc`), `group` panels per tile.
    let product = |a: Rows<'_>, count: usize, b: &[f32], panels: usize, k: usize, c: *mut f32, ldc: usize| {
        let mut panel = 0;
        while panel < panels {
            let p = group.min(panels - panel);
            let (b, c) = (&b[panel * k * PANEL..(panel + p) * k * PANEL], c.wrapping_add(panel * PANEL));
            // SAFETY: `c` holds `count` rows of `panels · 16` at stride `ldc` (the callers'
            // buffers below); `wide()` holds where `on_wide` does (asserted in `tile_wide`).
            unsafe {
                if on_wide {
                    tile_wide(a, count, p, b, &zero, k, c, ldc);
                } else {
                    tile(a, count, b, &zero, k, c, ldc);
                }
            }
            panel += p;
        }
    };
    let mut row = 0;
    while row < len {
        let count = tile_rows.min(len - row);
        let queries = Rows { values: &qkv[row * stride + q..], row_stride: stride, k_stride: 1 };
        // `scores` holds `tile_rows` rows of `padded`.
        product(queries, count, keys, padded / PANEL, head_dim, scores.as_mut_ptr(), padded);
        // Unnormalised probabilities; each context row is divided by its sum after the
        // product, `head_dim` divisions instead of `len`.
        let mut sums = [0.0f32; WIDE_ROWS];
        for (r, sum) in sums.iter_mut().enumerate().take(count) {
            *sum = softmax_numerators(&mut scores[r * padded..r * padded + len], scale);
        }
        let probabilities = Rows { values: scores, row_stride: padded, k_stride: 1 };
        // `out` holds `tile_rows` rows of `value_panels · 16`.
        product(probabilities, count, values, value_panels, len, out.as_mut_ptr(), value_panels * PANEL);
        for (r, sum) in sums.iter().enumerate().take(count) {
            // SAFETY: row `row + r` < len of `context`, the caller's alone (`attend`).
            let target = unsafe { std::slice::from_raw_parts_mut(context.add((row + r) * ldc), head_dim) };
            let inverse = 1.0 / sum;
            for (c, &o) in target.iter_mut().zip(&out[r * value_panels * PANEL..]) {
                *c = o * inverse;
            }
        }
        row += count;
    }
}

/// Tokens ahead that [`attend`]'s packing asks the next keys and values for.
const PREFETCH_TOKENS: usize = 6;

/// Asks for the cache lines of one head's `head_dim` floats at the start of `at`, its last float
/// included (an unaligned run of 32 floats spans three lines). A hint: it reads nothing and
/// faults on nothing, whatever the address.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn prefetch_head(at: &[f32], head_dim: usize) {
    let len = head_dim.min(at.len());
    #[cfg(target_arch = "x86_64")]
    for offset in (0..len).step_by(16).chain(len.checked_sub(1)) {
        // SAFETY: `_mm_prefetch` is a hint; the address is inside `at`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.as_ptr().add(offset).cast());
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::{assert_close, values, widths};
    use super::*;

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
                // Every tile this CPU runs: the 256-bit (or portable) one, and the 512-bit one.
                for on_wide in widths() {
                    // Written into the head's columns of a context matrix, as the layers do;
                    // the other heads' columns stay untouched.
                    let mut context = vec![f32::NAN; len * hidden];
                    let at = head * head_dim;
                    unsafe {
                        attend_on(&qkv, len, stride, at, hidden, head_dim, context.as_mut_ptr().add(at), hidden, &mut scratch, on_wide);
                    }
                    let out: Vec<f32> = context.chunks_exact(hidden).flat_map(|row| row[at..at + head_dim].to_vec()).collect();
                    let expected = naive_attention(&qkv, len, stride, head * head_dim, hidden, head_dim);
                    assert_close(&out, &expected, 1e-5);
                    let others = context.chunks_exact(hidden).flat_map(|row| [&row[..at], &row[at + head_dim..]].concat());
                    prop_assert!(others.into_iter().all(f32::is_nan));
                }
            }
        }
    }
}
