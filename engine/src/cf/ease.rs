//! EASE: an embarrassingly shallow autoencoder (Steck 2019, "Embarrassingly Shallow
//! Autoencoders for Sparse Data", WWW '19), a closed-form item-item model.
//!
//! With X the users × items matrix of positives (1 where a user interacted with an item),
//!
//! ```text
//! G = XᵀX + λI,   P = G⁻¹,   B = I − P · diag(1 / diag(P))
//! ```
//!
//! so `B[h][j] = −P[h][j] / P[j][j]` off the diagonal and `B[j][j] = 0` (the constraint that
//! keeps the model from predicting an item from itself). With a dropout p (EDLAE, Steck 2020) the
//! regulariser λI becomes `λI + p/(1−p) · diag(XᵀX)`. A user's score for item j is
//! `Σ_{h ∈ history} B[h][j]`: exact per history item, which is what the explanation shows, and
//! computed from the history at request time, so a user's newest events count at once.
//!
//! The inverse is a Cholesky factorisation and inversion through `faer`, in f32, over the items
//! with at least one positive (the others have a zero column in X: their row and column of B
//! are zero, and they are marked cold). Fitting holds three items² f32 matrices at its peak
//! ([`fit_bytes`]); the indexer checks that against memory before it starts. The served model
//! keeps the `neighbours` largest |B[h][j]| of each row h (Steck §3 reports that pruning small
//! entries costs little accuracy), so a generation holds items × neighbours weights, not items².

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::{Mat, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Csr;
use crate::error::{Error, Result};
use crate::explain::Explanation;

/// EASE hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EaseSettings {
    /// L2 regularisation λ added to the diagonal of `XᵀX` (Steck used 200–1000 on his four
    /// data sets; `--cf-model auto` picks it on a validation split).
    pub lambda: f32,
    /// Weights kept per item row of B, the largest by magnitude; the rest are pruned. 0 keeps
    /// every weight (items² of them).
    pub neighbours: usize,
    /// Dropout p of EDLAE, the emphasised denoising autoencoder with the zero-diagonal constraint
    /// (Steck 2020, "Autoencoders that don't overfit towards the identity",
    /// NeurIPS): each item's regulariser becomes `λ + p/(1−p) · (XᵀX)[j][j]`, so popular items
    /// are shrunk more. 0 is EASE exactly; below 1.
    #[serde(default)]
    pub dropout: f32,
    /// Time scale τ of session co-occurrence, in seconds. Two items one user interacted with
    /// |Δt| seconds apart add `(1 − w) + w · exp(−|Δt| / τ)` to the Gram matrix instead of 1
    /// (w is `session_weight`), so items taken up in the same sitting weigh more than items
    /// a user met years apart. The added matrix is a sum over users of
    /// `(1 − w)·11ᵀ + w·K` with K the Laplace kernel of their event times (positive
    /// semi-definite), so `G + λI` stays positive definite. A user with any positive without
    /// a time counts every pair of theirs 1, as Steck's `XᵀX` does (a kernel over some of a
    /// user's items and 1 for the rest is not positive semi-definite). Times are in seconds,
    /// as `--time-column` reads them. 0 turns it off (Steck's `XᵀX`).
    #[serde(default)]
    pub session_seconds: f32,
    /// w above, in [0, 1]; 0 turns it off.
    #[serde(default)]
    pub session_weight: f32,
    /// Half-life of a history item's weight at scoring time, in history positions: the r-th
    /// most recent item (r = 0 the newest, by timestamp, then by later position in the
    /// history, which the store keeps sorted by time and then item index) counts
    /// `2^(−r / half-life)` instead of 1, for catalogs where what a user did last predicts
    /// what they do next. 0 counts every history item 1 (Steck's score).
    #[serde(default)]
    pub recency_half_life: f32,
}

/// Default session time scale τ (`EaseSettings::session_seconds`) of new generations: ten
/// minutes. On two validation splits carved from MovieLens small's training interactions it
/// gained 0.004–0.008 nDCG@10 over plain EASE; τ from 300 to 900 s did about as well
/// (docs/EVAL.md). Manifests written before the setting read it as 0, off.
pub const DEFAULT_SESSION_SECONDS: f32 = 600.0;

/// Default session weight w (`EaseSettings::session_weight`) of new generations.
pub const DEFAULT_SESSION_WEIGHT: f32 = 0.7;

/// Pairs further apart than this many τ add only their `1 − w` part: `exp(−30)` is below
/// f32's resolution of the sums it would join.
const SESSION_WINDOW_TAUS: f64 = 30.0;

impl Default for EaseSettings {
    fn default() -> Self {
        EaseSettings {
            lambda: 200.0,
            neighbours: 512,
            dropout: 0.0,
            session_seconds: DEFAULT_SESSION_SECONDS,
            session_weight: DEFAULT_SESSION_WEIGHT,
            recency_half_life: 0.0,
        }
    }
}

impl EaseSettings {
    /// Whether the Gram matrix weighs pairs by how close in time they were.
    pub fn sessions(&self) -> bool {
        self.session_seconds > 0.0 && self.session_weight > 0.0
    }

    /// Checks every setting's range.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(Error::invalid("ease.lambda", format!("{} is not a finite λ above 0", self.lambda)));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(Error::invalid("ease.dropout", format!("{} is not a dropout in [0, 1)", self.dropout)));
        }
        if !(self.session_seconds.is_finite() && self.session_seconds >= 0.0) {
            return Err(Error::invalid(
                "ease.session_seconds",
                format!("{} is not a time scale of 0 seconds or more", self.session_seconds),
            ));
        }
        if !(self.session_weight.is_finite() && (0.0..=1.0).contains(&self.session_weight)) {
            return Err(Error::invalid(
                "ease.session_weight",
                format!("{} is not a weight in [0, 1]", self.session_weight),
            ));
        }
        if !(self.recency_half_life.is_finite() && self.recency_half_life >= 0.0) {
            return Err(Error::invalid(
                "ease.recency_half_life",
                format!("{} is not a half-life of 0 positions or more", self.recency_half_life),
            ));
        }
        Ok(())
    }
}

/// The seeds of a user's scores: each positive history item with its weight, in the order
/// given. `history` is `(item, time)` in history order (the store's: by time, then item index,
/// live events after); with a `half_life` above 0 the r-th most recent (by time, items without
/// one oldest, ties to the later position) weighs `2^(−r / half_life)`, else every item
/// weighs 1.
pub fn seeds(history: impl IntoIterator<Item = (u32, Option<i64>)>, half_life: f32) -> Vec<(u32, f32)> {
    let history: Vec<(u32, Option<i64>)> = history.into_iter().collect();
    let mut weights = vec![1f32; history.len()];
    if half_life > 0.0 {
        let mut newest_first: Vec<usize> = (0..history.len()).collect();
        newest_first.sort_by_key(|&k| (std::cmp::Reverse(history[k].1), std::cmp::Reverse(k)));
        for (rank, k) in newest_first.into_iter().enumerate() {
            weights[k] = (-(rank as f32) / half_life).exp2();
        }
    }
    history.into_iter().zip(weights).map(|((item, _), w)| (item, w)).collect()
}

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
            let gap = (tb - ta) as f64 / tau;
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

/// A fitted, pruned EASE model: row h of B as `(item, weight)` pairs sorted by item.
#[derive(Debug, Clone)]
pub struct ItemModel {
    /// Row h of B; shared by the copies [`ItemModel::with_recency_half_life`] makes.
    rows: Arc<Csr>,
    /// Items with no positive in the training data: EASE has no opinion on them.
    cold: Arc<Vec<bool>>,
    settings: EaseSettings,
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
        Ok(ItemModel { rows: Arc::new(rows), cold: Arc::new(cold), settings: settings.clone() })
    }

    /// The same weights (shared, not copied) served with another recency half-life (a scoring
    /// setting: no refit).
    pub fn with_recency_half_life(&self, half_life: f32) -> ItemModel {
        ItemModel { settings: EaseSettings { recency_half_life: half_life, ..self.settings.clone() }, ..self.clone() }
    }

    /// The settings it was fitted with.
    pub fn settings(&self) -> &EaseSettings {
        &self.settings
    }

    /// Catalog size.
    pub fn items(&self) -> usize {
        self.rows.rows()
    }

    /// Stored weights (items × neighbours at most).
    pub fn weights(&self) -> usize {
        self.rows.values.len()
    }

    /// Which items had no positive in training (`cold[item]`).
    pub fn cold(&self) -> &Arc<Vec<bool>> {
        &self.cold
    }

    /// `B[h][item]` as served (0 where pruned or out of range).
    pub fn weight(&self, h: u32, item: u32) -> f32 {
        if h as usize >= self.rows.rows() {
            return 0.0;
        }
        let span = self.rows.indptr[h as usize]..self.rows.indptr[h as usize + 1];
        match self.rows.indices[span.clone()].binary_search(&item) {
            Ok(k) => self.rows.values[span.start + k],
            Err(_) => 0.0,
        }
    }

    /// Adds `Σ_{(h, w) ∈ seeds} w · B[h][·]` into `scores` (one slot per catalog item) and
    /// lists the items that got any weight in `touched` (each once). Seeds are `(item,
    /// weight)`, as [`seeds`] gives them; seeds past the catalog add nothing.
    pub fn accumulate(&self, seeds: &[(u32, f32)], scores: &mut [f32], touched: &mut Vec<u32>) {
        for &(h, weight) in seeds {
            if h as usize >= self.rows.rows() {
                continue;
            }
            for (j, b) in self.rows.row(h as usize) {
                let slot = &mut scores[j as usize];
                if *slot == 0.0 {
                    touched.push(j);
                }
                *slot += weight * b;
            }
        }
        touched.sort_unstable();
        touched.dedup();
    }

    /// The `n` best items for a history (`seeds`: `(item, weight)` of the items interacted
    /// with), among those `allow` lets through, best first, ties by item index. Only items some
    /// seed row holds a weight for are listed: the model has no evidence on the rest.
    pub fn top(&self, seeds: &[(u32, f32)], n: usize, allow: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let mut scores = vec![0f32; self.rows.rows()];
        let mut touched = Vec::new();
        self.accumulate(seeds, &mut scores, &mut touched);
        let mut hits: Vec<(u32, f32)> =
            touched.into_iter().filter(|&j| allow(j)).map(|j| (j, scores[j as usize])).collect();
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if n < hits.len() {
            hits.select_nth_unstable_by(n, order);
            hits.truncate(n);
        }
        hits.sort_unstable_by(order);
        hits
    }

    /// The score of `item` for a history and every seed's share of it (`w · B[h][item]`),
    /// largest first, ties by item index, with the seed's weight: exact, since the score is
    /// their sum.
    pub fn explain(&self, seeds: &[(u32, f32)], item: u32) -> (f64, Vec<(u32, f32, f64)>) {
        let mut parts: Vec<(u32, f32, f64)> =
            seeds.iter().map(|&(h, w)| (h, w, f64::from(w * self.weight(h, item)))).collect();
        // Summed in f32 in seed order, as `accumulate` serves it, so the total is the served
        // score to the bit.
        let total = f64::from(seeds.iter().fold(0f32, |sum, &(h, w)| sum + w * self.weight(h, item)));
        parts.retain(|p| p.2 != 0.0);
        parts.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        (total, parts)
    }

    /// [`ItemModel::explain`] as a tree: the top `n` history items by contribution, named by
    /// `name`, each with its recency weight when that is not 1.
    pub fn tree(&self, seeds: &[(u32, f32)], item: u32, n: usize, name: impl Fn(u32) -> String) -> Explanation {
        let (total, parts) = self.explain(seeds, item);
        let contributing = parts.len();
        let children = parts
            .into_iter()
            .take(n)
            .map(|(h, w, c)| {
                let weight = if w == 1.0 { String::new() } else { format!(" × recency weight {w:.3}") };
                Explanation::leaf(format!("history item {}{weight}", name(h)), c)
            })
            .collect();
        let s = &self.settings;
        let mut model = format!("EASE, λ {}", s.lambda);
        if s.dropout > 0.0 {
            model += &format!(", EDLAE dropout {}", s.dropout);
        }
        if s.sessions() {
            model += &format!(", sessions τ {} s weight {}", s.session_seconds, s.session_weight);
        }
        if s.recency_half_life > 0.0 {
            model += &format!(", recency half-life {} items", s.recency_half_life);
        }
        Explanation::node(
            format!(
                "CF score ({model}): sum of item-item weights from {} history items, {contributing} with a weight (top \
                 {n} shown)",
                seeds.len()
            ),
            total,
            children,
        )
    }

    /// Writes the model: a magic, the catalog size and weight count, then the row offsets
    /// (u64), items (u32) and weights (f32), little-endian.
    ///
    /// # Errors
    /// A failed write.
    pub fn save(&self, path: &Path) -> Result<()> {
        let fail = |e| Error::io(format!("writing {}", path.display()), e);
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
        let mut bytes = Vec::with_capacity(16 + self.rows.indptr.len() * 8 + self.rows.indices.len() * 8);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.rows.rows() as u64).to_le_bytes());
        bytes.extend_from_slice(&(self.rows.values.len() as u64).to_le_bytes());
        for &offset in &self.rows.indptr {
            bytes.extend_from_slice(&(offset as u64).to_le_bytes());
        }
        for &item in &self.rows.indices {
            bytes.extend_from_slice(&item.to_le_bytes());
        }
        for &weight in &self.rows.values {
            bytes.extend_from_slice(&weight.to_le_bytes());
        }
        out.write_all(&bytes).map_err(fail)?;
        out.flush().map_err(fail)
    }

    /// Reads a model [`ItemModel::save`] wrote, for a catalog of `items` items. Items without
    /// a row are marked cold.
    ///
    /// # Errors
    /// A missing or short file, another catalog size, an item out of range, unsorted rows or a
    /// non-finite weight: each names the file.
    pub fn load(path: &Path, items: usize, settings: EaseSettings) -> Result<ItemModel> {
        let bad = |reason: String| Error::BadIndex { path: path.to_path_buf(), reason };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let mut at = 0usize;
        let mut take = |len: usize| -> Result<&[u8]> {
            let slice = bytes.get(at..at + len).ok_or_else(|| bad(format!("truncated at byte {at}")))?;
            at += len;
            Ok(slice)
        };
        if take(MAGIC.len())? != MAGIC {
            return Err(bad("not an EASE model file".into()));
        }
        let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize;
        let rows = u64_at(take(8)?);
        let nnz = u64_at(take(8)?);
        if rows != items {
            return Err(bad(format!("the model has {rows} items, the generation {items}")));
        }
        let indptr: Vec<usize> = take((rows + 1) * 8)?.chunks_exact(8).map(u64_at).collect();
        let indices: Vec<u32> =
            take(nnz * 4)?.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        let values: Vec<f32> =
            take(nnz * 4)?.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        if indptr.first() != Some(&0) || indptr.last() != Some(&nnz) || indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("row offsets are not a partition of the weights".into()));
        }
        let rows_csr = Csr { indptr, indices, values, cols: items, times: Vec::new() };
        for r in 0..rows {
            let span = &rows_csr.indices[rows_csr.indptr[r]..rows_csr.indptr[r + 1]];
            if span.windows(2).any(|w| w[0] >= w[1]) || span.last().is_some_and(|&j| j as usize >= items) {
                return Err(bad(format!("row {r} is unsorted or names an item past the catalog")));
            }
        }
        if let Some(w) = rows_csr.values.iter().find(|w| !w.is_finite()) {
            return Err(bad(format!("a non-finite weight ({w})")));
        }
        let cold = (0..rows).map(|r| rows_csr.indptr[r] == rows_csr.indptr[r + 1]).collect();
        Ok(ItemModel { rows: Arc::new(rows_csr), cold: Arc::new(cold), settings })
    }
}

const MAGIC: &[u8; 8] = b"HYEASE01";

#[cfg(test)]
mod tests {
    use super::*;

    /// EASE's settings without sessions or recency: Steck's model.
    fn plain(lambda: f32, neighbours: usize, dropout: f32) -> EaseSettings {
        EaseSettings { lambda, neighbours, dropout, session_seconds: 0.0, session_weight: 0.0, recency_half_life: 0.0 }
    }

    /// Steck's closed form in f64 without pruning, by Gauss-Jordan elimination: the reference.
    fn reference_b(x: &[Vec<f64>], lambda: f64) -> Vec<Vec<f64>> {
        let n = x[0].len();
        let gram = (0..n)
            .map(|a| {
                (0..n).map(|b| x.iter().map(|u| u[a] * u[b]).sum::<f64>() + if a == b { lambda } else { 0.0 }).collect()
            })
            .collect();
        reference_b_of_gram(gram)
    }

    /// `B` from a regularised Gram matrix.
    fn reference_b_of_gram(gram: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
        let n = gram.len();
        let mut g = vec![vec![0f64; 2 * n]; n];
        for (a, row) in g.iter_mut().enumerate() {
            row[..n].copy_from_slice(&gram[a]);
            row[n + a] = 1.0;
        }
        for c in 0..n {
            let pivot = g[c][c];
            for v in g[c].iter_mut() {
                *v /= pivot;
            }
            for r in 0..n {
                if r != c {
                    let f = g[r][c];
                    let pivot_row = g[c].clone();
                    for (v, p) in g[r].iter_mut().zip(pivot_row) {
                        *v -= f * p;
                    }
                }
            }
        }
        let p: Vec<Vec<f64>> = g.into_iter().map(|r| r[n..].to_vec()).collect();
        (0..n).map(|h| (0..n).map(|j| if h == j { 0.0 } else { -p[h][j] / p[j][j] }).collect()).collect()
    }

    fn matrix() -> (Csr, Vec<Vec<f64>>) {
        // 6 users × 5 items; item 4 has no positive (one explicit 0 entry).
        let rows = [[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]];
        let mut triples = Vec::new();
        let mut dense = Vec::new();
        for (u, r) in rows.iter().enumerate() {
            let mut d = vec![0f64; 5];
            for (i, &v) in r.iter().enumerate() {
                if v == 1 {
                    triples.push((u as u32, i as u32, 3.0));
                    d[i] = 1.0;
                }
            }
            dense.push(d);
        }
        triples.push((0, 4, 0.0));
        (Csr::from_triples(6, 5, &triples), dense)
    }

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
    fn scores_and_explanations_are_the_sum_over_the_history() {
        let (csr, _) = matrix();
        let model = ItemModel::fit(&csr, &plain(1.0, 0, 0.0)).unwrap();
        for seeds in [[(0u32, 1.0f32), (2, 1.0)], [(0, 1.0), (2, 0.25)]] {
            let top = model.top(&seeds, 10, |j| !seeds.iter().any(|s| s.0 == j));
            assert!(!top.is_empty());
            for &(item, score) in &top {
                let (total, parts) = model.explain(&seeds, item);
                let direct = model.weight(0, item) + seeds[1].1 * model.weight(2, item);
                assert!((total - f64::from(direct)).abs() < 1e-6);
                assert_eq!(f64::from(score), total, "the explained total is the served score to the bit");
                assert!((parts.iter().map(|p| p.2).sum::<f64>() - total).abs() < 1e-6);
            }
            // Seeds are left out when asked, the cold item never appears, order is by score.
            assert!(top.iter().all(|&(j, _)| j != 0 && j != 2 && j != 4));
            assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
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
    fn save_and_load_round_trip_and_bad_files_are_refused() {
        let (csr, _) = matrix();
        let model = ItemModel::fit(&csr, &plain(1.0, 3, 0.0)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ease.bin");
        model.save(&path).unwrap();
        let loaded = ItemModel::load(&path, 5, model.settings().clone()).unwrap();
        assert_eq!(loaded.rows.values, model.rows.values);
        assert_eq!(loaded.cold(), model.cold());
        let message = ItemModel::load(&path, 6, model.settings().clone()).unwrap_err().to_string();
        assert!(message.contains("ease.bin") && message.contains("6"), "{message}");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(ItemModel::load(&path, 5, model.settings().clone()).unwrap_err().to_string().contains("truncated"));
        let mut nan = bytes.clone();
        let end = nan.len();
        nan[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&path, &nan).unwrap();
        assert!(ItemModel::load(&path, 5, model.settings().clone()).unwrap_err().to_string().contains("non-finite"));
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
        for (field, bad) in [
            ("session_seconds", EaseSettings { session_seconds: -1.0, ..settings.clone() }),
            ("session_weight", EaseSettings { session_weight: 1.5, ..settings.clone() }),
            ("recency_half_life", EaseSettings { recency_half_life: f32::NAN, ..settings.clone() }),
        ] {
            let error = ItemModel::fit(&csr, &bad).unwrap_err().to_string();
            assert!(error.contains(field), "{error}");
        }
    }

    #[test]
    fn recency_weighs_the_newest_history_items_most() {
        let history = [(7u32, Some(100)), (3, Some(300)), (5, None), (9, Some(300)), (1, Some(200))];
        assert!(seeds(history, 0.0).iter().all(|s| s.1 == 1.0), "half-life 0: Steck's score");
        let weighted = seeds(history, 1.0);
        // Newest first: 9 (time 300, arrived after 3), 3, 1, 7, then 5 without a time.
        let order = [(9u32, 1.0f32), (3, 0.5), (1, 0.25), (7, 0.125), (5, 0.0625)];
        for (item, weight) in order {
            assert_eq!(weighted.iter().find(|s| s.0 == item).unwrap().1, weight, "item {item}");
        }
        assert_eq!(weighted.iter().map(|s| s.0).collect::<Vec<_>>(), vec![7, 3, 5, 9, 1], "the given order is kept");
    }

    #[test]
    fn settings_from_before_sessions_and_recency_read_as_steck_s_ease() {
        let old: EaseSettings = serde_json::from_str(r#"{"lambda":200,"neighbours":512,"dropout":0}"#).unwrap();
        assert_eq!(old, plain(200.0, 512, 0.0));
        assert!(!old.sessions() && old.recency_half_life == 0.0);
    }
}
