//! Exact search by scanning every row, and its quantized form for large inner-product indexes.
//!
//! A scan of ALS item factors is what every recommendation's CF list costs (inner-product
//! indexes are scanned up to [`super::EXACT_INNER_PRODUCT_MAX_ITEMS`]), and at catalog scale it
//! is bound by memory, not arithmetic: 58,452 items of 128 f32 factors are 30 MB read per
//! request, and `kernels::dot` took two thirds of a recommendation server's CPU time
//! (`perf`, 2-core Xeon). The quantized scan reads each row as 8-bit integers with one scale
//! per row (symmetric, the row's largest magnitude ↦ 127: a quarter of the bytes), keeps the
//! best [`OVERSAMPLE`] times as many rows as asked, and scores those exactly from the f32 rows,
//! so every score returned is exact and only the choice of rows is approximate. Qdrant's
//! scalar quantization with `rescore` works the same way.

use super::dot;

/// Rows the quantized scan keeps for each row asked for, before scoring them exactly.
pub const OVERSAMPLE: usize = 4;

/// Inner-product indexes from this many rows on are scanned quantized: below it the f32 rows
/// are few enough to stay in cache, and the rescoring would cost more than it saves.
pub const QUANTIZED_SCAN_FROM_ROWS: usize = 20_000;

/// Rows as 8-bit integers, one scale per row: row r's values are `rows[r·dim..] · scales[r]`.
pub(crate) struct Quantized {
    rows: Vec<i8>,
    scales: Vec<f32>,
}

impl Quantized {
    /// `vectors` (rows of `dim`) quantized row by row; an all-zero row has scale 0.
    pub(crate) fn of(vectors: &[f32], dim: usize) -> Quantized {
        let mut rows = Vec::with_capacity(vectors.len());
        let mut scales = Vec::with_capacity(vectors.len() / dim.max(1));
        for row in vectors.chunks_exact(dim) {
            let largest = row.iter().fold(0f32, |m, x| m.max(x.abs()));
            let scale = largest / 127.0;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            rows.extend(row.iter().map(|x| (x * inverse).round().clamp(-127.0, 127.0) as i8));
            scales.push(scale);
        }
        Quantized { rows, scales }
    }

    /// The `k` best rows for `query` that pass `allow`, best first, scored exactly from
    /// `vectors`: the best `OVERSAMPLE · k` by the 8-bit rows, then those scored in f32.
    pub(crate) fn search(
        &self,
        vectors: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
        allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
    ) -> Vec<(u32, f32)> {
        let mut scored = scored(&self.rows, dim, allow, |item, row| {
            let scale = self.scales[item as usize];
            let score = crate::kernels::dot_i8(query, row) * scale;
            if score.is_finite() {
                score
            } else {
                // Beyond f32 (see `dot`): an ∞ or NaN here would rank the row by accident.
                let wide: f64 = query.iter().zip(row).map(|(&q, &r)| f64::from(q) * f64::from(r)).sum();
                super::saturated(wide * f64::from(scale))
            }
        });
        crate::fusion::keep_best(&mut scored, k.saturating_mul(OVERSAMPLE));
        for hit in &mut scored {
            let start = hit.0 as usize * dim;
            hit.1 = dot(query, &vectors[start..start + dim]);
        }
        crate::fusion::keep_best(&mut scored, k);
        scored
    }
}

/// The exact `k` best rows of `vectors` (rows of `dim`) for `query` that pass `allow`.
pub(crate) fn exact(
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
) -> Vec<(u32, f32)> {
    let mut scored = scored(vectors, dim, allow, |_, vector| dot(query, vector));
    crate::fusion::keep_best(&mut scored, k);
    scored
}

/// Every allowed row of `rows` (rows of `dim`) with its `score`, in row order.
fn scored<T>(
    rows: &[T],
    dim: usize,
    allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
    score: impl Fn(u32, &[T]) -> f32,
) -> Vec<(u32, f32)> {
    rows.chunks_exact(dim)
        .zip(0u32..)
        .filter(|(_, item)| allow.is_none_or(|allow| allow(*item)))
        .map(|(row, item)| (item, score(item, row)))
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Factor-like rows: Gaussian-ish values, norms spread over a decade, some rows all zero.
    fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .flat_map(|row| {
                let norm = if row % 97 == 0 { 0.0 } else { 0.2 + 2.0 * rng.random::<f32>() };
                (0..dim).map(|_| norm * (rng.random::<f32>() + rng.random::<f32>() - 1.0)).collect::<Vec<_>>()
            })
            .collect()
    }

    /// The quantized scan returns the exact scan's rows (nearly all of them) with the exact
    /// scores, respects the filter, and keeps all-zero rows scorable.
    #[test]
    fn the_quantized_scan_finds_the_exact_top_k_with_exact_scores() {
        let (n, dim) = (5_000, 64);
        let vectors = rows(n, dim, 7);
        let quantized = Quantized::of(&vectors, dim);
        let (mut found, mut asked) = (0, 0);
        for (i, probe) in rows(50, dim, 8).chunks_exact(dim).enumerate() {
            let odd = |row: u32| i % 2 == 0 || row % 2 == 1;
            let expected = exact(&vectors, dim, probe, 100, Some(&odd));
            let got = quantized.search(&vectors, dim, probe, 100, Some(&odd));
            assert_eq!(got.len(), 100);
            for (row, score) in &got {
                assert!(odd(*row), "row {row} is refused");
                let start = *row as usize * dim;
                assert_eq!(*score, dot(probe, &vectors[start..start + dim]), "scores are exact");
            }
            assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
            found += expected.iter().filter(|e| got.contains(e)).count();
            asked += expected.len();
        }
        assert!(found as f64 >= 0.999 * asked as f64, "{found} of {asked} exact rows found");
        // Fewer rows than asked: every allowed row, as the exact scan gives them.
        let few = &vectors[..10 * dim];
        let probe = &rows(1, dim, 9);
        assert_eq!(Quantized::of(few, dim).search(few, dim, probe, 100, None), exact(few, dim, probe, 100, None));
    }

    #[test]
    fn rows_quantize_to_their_largest_magnitude_and_zero_rows_to_zero() {
        let q = Quantized::of(&[0.5, -1.0, 0.25, 0.0, 0.0, 0.0], 3);
        assert_eq!(q.rows, vec![64, -127, 32, 0, 0, 0]);
        assert_eq!(q.scales, vec![1.0 / 127.0, 0.0]);
    }

    /// A query so large that its 8-bit products are beyond f32 (an ∞ and a −∞ in one row make
    /// NaN) while the exact scores are not: the rows are chosen by scores taken in f64, so the
    /// quantized scan still finds the exact scan's best rows, with finite exact scores.
    #[test]
    fn rows_are_chosen_by_finite_scores_when_the_8_bit_products_overflow() {
        let dim = 16;
        let vectors = rows(500, dim, 5);
        // Row 0 of `rows` is all zeros; row 1 is the query's direction.
        let query: Vec<f32> = rows(2, dim, 6)[dim..].iter().map(|v| v * 1e37).collect();
        let overflowing = vectors
            .chunks(dim)
            .filter(|row| !(crate::kernels::dot_i8(&query, &Quantized::of(row, dim).rows) * 1.0).is_finite())
            .count();
        assert!(overflowing > 100, "only {overflowing} rows overflow: nothing tested");
        let found = Quantized::of(&vectors, dim).search(&vectors, dim, &query, 5, None);
        let exact = exact(&vectors, dim, &query, 5, None);
        assert!(found.iter().chain(&exact).all(|h| h.1.is_finite()), "{found:?} {exact:?}");
        assert_eq!(found[0], exact[0]);
        assert!(found.iter().filter(|h| exact.contains(h)).count() >= 4, "{found:?} vs {exact:?}");
    }
}
