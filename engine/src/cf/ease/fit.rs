//! Fitting EASE: the Gram matrix (with sessions), its Cholesky inverse through faer, and the
//! pruned rows of B; and the memory bound the indexer checks first.

use std::sync::Arc;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::{Mat, Par};
use rayon::prelude::*;

use super::{EaseSettings, ItemModel};
use crate::cf::Csr;
use crate::error::{Error, Result};

/// Pairs further apart than this many τ add only their `1 − w` part: `exp(−30)` is below
/// f32's resolution of the sums it would join.
const SESSION_WINDOW_TAUS: f64 = 30.0;

/// Adds one user's session part `w · exp(−|Δt| / τ)` to the lower triangle of `g` for their
/// `timed` items (every positive of theirs has a time): every unordered pair once, and each
/// item with itself (so the diagonal stays the item's count, as in `XᵀX`); pairs further apart
/// than [`SESSION_WINDOW_TAUS`] are left out.
fn add_session_pairs(g: &mut Mat<f32>, timed: &mut [(i64, usize)], settings: &EaseSettings) {
    let w = f64::from(settings.session_weight);
    let tau = f64::from(settings.session_seconds);
    timed.sort_unstable();
    for (k, &(ta, a)) in timed.iter().enumerate() {
        for &(tb, b) in &timed[k..] {
            // `timed` is sorted, so tb ≥ ta; their difference is taken in u64, as any two
            // i64 times are up to 2⁶⁴ − 1 apart (an i64 difference wrapped to a negative gap,
            // whose kernel was infinite).
            let gap = tb.abs_diff(ta) as f64 / tau;
            if gap > SESSION_WINDOW_TAUS {
                break;
            }
            g[(a.max(b), a.min(b))] += (w * (-gap).exp()) as f32;
        }
    }
}

/// Bytes the fit holds at its peak for `items` warm items keeping `neighbours` weights per
/// row (0: all): the larger of the inversion (the Gram matrix factored in place, the inverse
/// and the inversion's scratch, each items² f32), the pruning (the inverse and the pruned
/// rows), and the assembly of the kept weights (pruned rows, triples, their sorted copy and
/// the final rows: 40 bytes per weight).
pub fn fit_bytes(items: usize, neighbours: usize) -> u64 {
    let n = items as u64;
    let kept = n * if neighbours == 0 { n.saturating_sub(1) } else { (neighbours as u64).min(n.saturating_sub(1)) };
    (12 * n * n).max(4 * n * n + 8 * kept).max(40 * kept)
}

/// The items with at least one positive entry in `user_items`, in index order.
pub fn warm_items(user_items: &Csr) -> Vec<u32> {
    let mut warm = vec![false; user_items.cols];
    for (&item, &value) in user_items.indices.iter().zip(&user_items.values) {
        if value > 0.0 {
            warm[item as usize] = true;
        }
    }
    (0..user_items.cols as u32).filter(|&i| warm[i as usize]).collect()
}

impl ItemModel {
    /// Fits EASE on a users × items matrix; an entry counts as a positive when its value is
    /// above 0, once, whatever its size (Steck's X is binary).
    ///
    /// # Errors
    /// λ not finite and positive, or a factorisation that fails (it cannot for λ > 0, since
    /// `XᵀX + λI` is then positive definite; the error guards against non-finite input).
    pub fn fit(user_items: &Csr, settings: &EaseSettings) -> Result<ItemModel> {
        settings.validate()?;
        let catalog = user_items.cols;
        let warm = warm_items(user_items);
        let n = warm.len();
        let mut dense_of = vec![u32::MAX; catalog];
        for (w, &item) in warm.iter().enumerate() {
            dense_of[item as usize] = w as u32;
        }
        // G = XᵀX + λI, lower triangle only (all the factorisation reads). Column-major, so
        // column b of G is contiguous: each user adds 1 to every pair (a ≥ b) of their items,
        // or with sessions `1 − w` to every pair and then the kernel part below.
        let mut g = Mat::<f32>::zeros(n, n);
        let mut items = Vec::new();
        let mut timed: Vec<(i64, usize)> = Vec::new();
        for u in 0..user_items.rows() {
            items.clear();
            items.extend(user_items.row(u).filter(|&(_, v)| v > 0.0).map(|(i, _)| dense_of[i as usize] as usize));
            items.sort_unstable();
            items.dedup();
            timed.clear();
            if settings.sessions() {
                for (i, _, t) in user_items.row_timed(u).filter(|&(_, v, _)| v > 0.0) {
                    match t {
                        Some(t) => timed.push((t, dense_of[i as usize] as usize)),
                        None => {
                            timed.clear();
                            break;
                        }
                    }
                }
            }
            let sessions = !timed.is_empty();
            let all_pairs = if sessions { 1.0 - settings.session_weight } else { 1.0 };
            if all_pairs > 0.0 {
                for (position, &b) in items.iter().enumerate() {
                    let column =
                        g.col_mut(b).try_as_col_major_mut().expect("a fresh Mat is column-major").as_slice_mut();
                    for &a in &items[position..] {
                        column[a] += all_pairs;
                    }
                }
            }
            if sessions {
                add_session_pairs(&mut g, &mut timed, settings);
            }
        }
        let emphasis = settings.dropout / (1.0 - settings.dropout);
        for d in 0..n {
            g[(d, d)] += settings.lambda + emphasis * g[(d, d)];
        }
        let par = Par::rayon(0);
        llt::factor::cholesky_in_place(
            g.as_mut(),
            Default::default(),
            par,
            MemStack::new(&mut MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f32>(
                n,
                par,
                Default::default(),
            ))),
            Default::default(),
        )
        .map_err(|e| Error::invalid("ease", format!("the Gram matrix is not positive definite: {e}")))?;
        let mut p = Mat::<f32>::zeros(n, n);
        llt::inverse::inverse(
            p.as_mut(),
            g.as_ref(),
            par,
            MemStack::new(&mut MemBuffer::new(llt::inverse::inverse_scratch::<f32>(n, par))),
        );
        drop(g);
        // The inverse fills the lower triangle; mirror it so that column h holds P[·][h] whole.
        for j in 0..n {
            for i in 0..j {
                p[(i, j)] = p[(j, i)];
            }
        }
        let diagonal: Vec<f32> = (0..n).map(|d| p[(d, d)]).collect();
        // Row h of B is −P[h][j] / P[j][j]; P is symmetric, so P[h][·] is column h.
        let keep =
            if settings.neighbours == 0 { n.saturating_sub(1) } else { settings.neighbours.min(n.saturating_sub(1)) };
        let pruned: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map(|h| {
                let column = p.col(h).try_as_col_major().expect("a fresh Mat is column-major").as_slice();
                let mut row: Vec<(u32, f32)> =
                    (0..n).filter(|&j| j != h).map(|j| (warm[j], -column[j] / diagonal[j])).collect();
                if keep < row.len() {
                    row.select_nth_unstable_by(keep, |a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
                    row.truncate(keep);
                }
                row.sort_unstable_by_key(|&(j, _)| j);
                row
            })
            .collect();
        drop(p);
        let mut triples = Vec::with_capacity(pruned.iter().map(Vec::len).sum());
        for (h, row) in pruned.into_iter().enumerate() {
            triples.extend(row.into_iter().map(|(j, w)| (warm[h], j, w)));
        }
        let rows = Csr::from_triples(catalog, catalog, &triples);
        if let Some(bad) = rows.values.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("ease", format!("the fit produced a non-finite weight ({bad})")));
        }
        // Cold is "no row", as `load` reads it back (the same as "no positive" unless a single
        // warm item has nobody to be weighed against).
        let cold = (0..catalog).map(|r| rows.indptr[r] == rows.indptr[r + 1]).collect();
        let cold = Arc::new(cold);
        Ok(ItemModel { rows: Arc::new(rows), abstain: Arc::clone(&cold), cold, settings: settings.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn unpruned_weights_match_the_closed_form() {
        let (csr, dense) = matrix();
        let model = ItemModel::fit(&csr, &plain(0.5, 0, 0.0)).unwrap();
        let warm: Vec<Vec<f64>> = dense.iter().map(|u| u[..4].to_vec()).collect();
        let b = reference_b(&warm, 0.5);
        for h in 0..4 {
            for j in 0..4 {
                let got = f64::from(model.weight(h as u32, j as u32));
                assert!((got - b[h][j]).abs() < 1e-5, "B[{h}][{j}] {got} vs {}", b[h][j]);
            }
        }
        assert!(model.cold()[4] && !model.cold()[0]);
        assert_eq!(model.weight(4, 0), 0.0);
        assert_eq!(model.weight(0, 4), 0.0);
    }

    #[test]
    fn dlae_dropout_adds_the_emphasised_diagonal() {
        let (csr, dense) = matrix();
        let p = 0.25f64;
        let model = ItemModel::fit(&csr, &plain(0.5, 0, p as f32)).unwrap();
        let warm: Vec<Vec<f64>> = dense.iter().map(|u| u[..4].to_vec()).collect();
        let n = 4;
        let mut g = vec![vec![0f64; n]; n];
        for a in 0..n {
            for b in 0..n {
                g[a][b] = warm.iter().map(|u| u[a] * u[b]).sum();
            }
            g[a][a] += 0.5 + p / (1.0 - p) * g[a][a];
        }
        let b = reference_b_of_gram(g);
        for h in 0..n {
            for j in 0..n {
                let got = f64::from(model.weight(h as u32, j as u32));
                assert!((got - b[h][j]).abs() < 1e-5, "B[{h}][{j}] {got} vs {}", b[h][j]);
            }
        }
        for dropout in [1.0, -0.1, f32::NAN] {
            assert!(ItemModel::fit(&csr, &plain(1.0, 0, dropout)).is_err());
        }
    }

    #[test]
    fn pruning_keeps_the_largest_weights_of_each_row() {
        let (csr, _) = matrix();
        let full = ItemModel::fit(&csr, &plain(1.0, 0, 0.0)).unwrap();
        let pruned = ItemModel::fit(&csr, &plain(1.0, 2, 0.0)).unwrap();
        assert_eq!(pruned.weights(), 4 * 2);
        for h in 0..4u32 {
            let mut all: Vec<f32> = (0..4).filter(|&j| j != h).map(|j| full.weight(h, j).abs()).collect();
            all.sort_by(|a, b| b.total_cmp(a));
            let kept: Vec<u32> = (0..4).filter(|&j| pruned.weight(h, j) != 0.0).collect();
            assert_eq!(kept.len(), 2);
            for j in kept {
                assert_eq!(pruned.weight(h, j), full.weight(h, j));
                assert!(full.weight(h, j).abs() >= all[1]);
            }
        }
    }

    #[test]
    fn a_non_positive_lambda_is_refused() {
        let (csr, _) = matrix();
        for lambda in [0.0, -1.0, f32::NAN] {
            let error = ItemModel::fit(&csr, &plain(lambda, 0, 0.0)).unwrap_err();
            assert!(error.to_string().contains("λ"), "{error}");
        }
    }

    #[test]
    fn sessions_weigh_each_pair_by_the_laplace_kernel_of_its_time_gap() {
        // 4 users × 4 items with times; user 3's item 1 has no time.
        let events: [(u32, u32, Option<i64>); 10] = [
            (0, 0, Some(0)),
            (0, 1, Some(60)),
            (0, 2, Some(100_000)),
            (1, 1, Some(10)),
            (1, 2, Some(400)),
            (2, 0, Some(5)),
            (2, 3, Some(5)),
            (3, 0, Some(0)),
            (3, 1, None),
            (3, 3, Some(900)),
        ];
        let entries: Vec<(u32, u32, f32, Option<i64>)> = events.iter().map(|&(u, i, t)| (u, i, 1.0, t)).collect();
        let csr = Csr::from_timed(4, 4, &entries);
        let (tau, w, lambda) = (300.0f64, 0.7f64, 0.5f64);
        let settings =
            EaseSettings { session_seconds: tau as f32, session_weight: w as f32, ..plain(lambda as f32, 0, 0.0) };
        let model = ItemModel::fit(&csr, &settings).unwrap();
        let mut g = vec![vec![0f64; 4]; 4];
        for u in 0..4u32 {
            let mine: Vec<_> = events.iter().filter(|e| e.0 == u).collect();
            // User 3 has an item without a time: every pair of theirs counts 1.
            let all_timed = mine.iter().all(|e| e.2.is_some());
            for a in &mine {
                for b in &mine {
                    let k = match (a.2, b.2) {
                        (Some(ta), Some(tb)) if all_timed => (-((ta - tb).abs() as f64) / tau).exp(),
                        _ => 1.0,
                    };
                    g[a.1 as usize][b.1 as usize] += (1.0 - w) + w * k;
                }
            }
        }
        for (a, row) in g.iter_mut().enumerate() {
            row[a] += lambda;
        }
        let b = reference_b_of_gram(g);
        for h in 0..4 {
            for j in 0..4 {
                let got = f64::from(model.weight(h as u32, j as u32));
                assert!((got - b[h][j]).abs() < 1e-5, "B[{h}][{j}] {got} vs {}", b[h][j]);
            }
        }
        // Without times, sessions change nothing: Steck's EASE to the bit.
        let (untimed, _) = matrix();
        let sessions = |lambda| EaseSettings { session_seconds: 600.0, session_weight: 0.7, ..plain(lambda, 0, 0.0) };
        let with = ItemModel::fit(&untimed, &sessions(1.0)).unwrap();
        let without = ItemModel::fit(&untimed, &plain(1.0, 0, 0.0)).unwrap();
        assert_eq!(with.rows.values, without.rows.values);
        // Timed items far apart beside an untimed one, at a small λ: still positive definite
        // (a kernel over part of a user's items would not be).
        let mixed = Csr::from_timed(1, 3, &[(0, 0, 1.0, Some(0)), (0, 1, 1.0, Some(1_000_000)), (0, 2, 1.0, None)]);
        assert!(ItemModel::fit(&mixed, &sessions(0.01)).is_ok());
        // Times at the ends of i64 (a live event's timestamp may be any): their pairs are far
        // apart, as a pair of ordinary times a day apart is, and the fit is the same.
        let at = |times: [i64; 3]| {
            let entries: Vec<_> = times.iter().enumerate().map(|(i, &t)| (0, i as u32, 1.0, Some(t))).collect();
            ItemModel::fit(&Csr::from_timed(1, 3, &entries), &sessions(0.5)).unwrap().rows.values.clone()
        };
        assert_eq!(at([i64::MIN, 1_700_000_000, i64::MAX]), at([0, 86_400, 172_800]));
        assert_eq!(at([i64::MIN + 1, 1_700_000_000, 1_700_000_000]), at([0, 86_400, 86_400]));
        for (field, bad) in [
            ("session_seconds", EaseSettings { session_seconds: -1.0, ..settings.clone() }),
            ("session_weight", EaseSettings { session_weight: 1.5, ..settings.clone() }),
            ("recency_half_life", EaseSettings { recency_half_life: f32::NAN, ..settings.clone() }),
        ] {
            let error = ItemModel::fit(&csr, &bad).unwrap_err().to_string();
            assert!(error.contains(field), "{error}");
        }
    }
}
