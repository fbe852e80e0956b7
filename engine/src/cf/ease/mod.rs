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

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Csr;
use crate::error::{Error, Result};
use crate::explain::Explanation;

mod file;
mod fit;

pub use fit::{fit_bytes, warm_items};

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

/// `cold` less the `seen_only` items: the items CF abstains on under `cold_items: share`.
pub(crate) fn abstain_mask(cold: &[bool], seen_only: &[u32]) -> Vec<bool> {
    let mut mask = cold.to_vec();
    for &item in seen_only {
        if let Some(m) = mask.get_mut(item as usize) {
            *m = false;
        }
    }
    mask
}

/// A fitted, pruned EASE model: row h of B as `(item, weight)` pairs sorted by item.
#[derive(Debug, Clone)]
pub struct ItemModel {
    /// Row h of B; shared by the copies [`ItemModel::with_recency_half_life`] makes.
    rows: Arc<Csr>,
    /// Items with no positive in the training data: EASE has no opinion on them.
    cold: Arc<Vec<bool>>,
    /// The cold items fusion lets CF abstain on under `cold_items: share`: those no one
    /// interacted with at all ([`ItemModel::with_seen_only`]).
    abstain: Arc<Vec<bool>>,
    settings: EaseSettings,
}

impl ItemModel {
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

    /// Which cold items no one interacted with at all: CF abstains on these under
    /// `cold_items: share`, not on those only interactions below the positive rule name.
    pub fn abstains(&self) -> &Arc<Vec<bool>> {
        &self.abstain
    }

    /// Marks `seen_only` (item indexes; any out of range is passed over) as interacted with
    /// below the positive rule: still cold (no positive, no weights), no longer abstained on.
    #[must_use]
    pub fn with_seen_only(mut self, seen_only: &[u32]) -> Self {
        if seen_only.is_empty() {
            return self;
        }
        self.abstain = Arc::new(abstain_mask(&self.cold, seen_only));
        self
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
        crate::fusion::keep_best(&mut hits, n);
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
        let shown = match contributing > n {
            true => format!(" (the {n} largest shown)"),
            false => String::new(),
        };
        let label = format!(
            "CF score ({model}): sum of item-item weights from {} history items, {contributing} with a weight{shown}",
            seeds.len()
        );
        let tree = Explanation::sum_of_top(label, children, n, "history items with a weight");
        // The score as computed (the parts summed in another order may differ in the last bits).
        Explanation { value: total, ..tree }
    }
}

/// Shared by the tests of this module and its children: a small matrix and Steck's closed
/// form in f64, the reference every fit is checked against.
#[cfg(test)]
mod test_support {
    use super::*;

    /// EASE's settings without sessions or recency: Steck's model.
    pub(super) fn plain(lambda: f32, neighbours: usize, dropout: f32) -> EaseSettings {
        EaseSettings { lambda, neighbours, dropout, session_seconds: 0.0, session_weight: 0.0, recency_half_life: 0.0 }
    }

    /// Steck's closed form in f64 without pruning, by Gauss-Jordan elimination: the reference.
    pub(super) fn reference_b(x: &[Vec<f64>], lambda: f64) -> Vec<Vec<f64>> {
        let n = x[0].len();
        let gram = (0..n)
            .map(|a| {
                (0..n).map(|b| x.iter().map(|u| u[a] * u[b]).sum::<f64>() + if a == b { lambda } else { 0.0 }).collect()
            })
            .collect();
        reference_b_of_gram(gram)
    }

    /// `B` from a regularised Gram matrix.
    pub(super) fn reference_b_of_gram(gram: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
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

    pub(super) fn matrix() -> (Csr, Vec<Vec<f64>>) {
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
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

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
