//! Collaborative filtering: what users did, turned into scores for items they have not seen.
//!
//! Two model families serve the CF list, chosen per generation (`hyrank index --cf-model`):
//!
//! - [`als`]: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008), the user and
//!   item factors searched by inner product;
//! - [`ease`]: EASE (Steck 2019), a closed-form item-item model whose scores come straight
//!   from a user's history, so new events count at once.
//!
//! Both read the users × items interaction matrix as a [`Csr`].

pub mod als;
pub mod ease;

pub use als::{item_gramian, solve_user_exact, train, AlsModel, AlsSettings, Factors, UserExplainer};
pub use ease::{seeds, EaseSettings, ItemModel};

use serde::{Deserialize, Serialize};

/// Whether ALS factors (a user's, or an item's as a similar-items seed) say anything: all zero
/// is what an item no interaction trained gets from the item step (its right-hand side is
/// zero), and what a user gets from a history of such items or of items written live since
/// the build. Such factors score every item 0, a list of ties; CF then has no list.
pub fn has_opinion(factors: &[f32]) -> bool {
    factors.iter().any(|&v| v != 0.0)
}

/// A CF model family with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum CfModelSettings {
    /// Implicit ALS.
    Als(AlsSettings),
    /// EASE.
    Ease(EaseSettings),
}

impl std::fmt::Display for CfModelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CfModelSettings::Als(s) => {
                write!(f, "ALS (factors {}, regularization {}, alpha {})", s.factors, s.regularization, s.alpha)
            }
            CfModelSettings::Ease(s) => {
                write!(f, "{} (λ {}", if s.dropout > 0.0 { "EDLAE" } else { "EASE" }, s.lambda)?;
                if s.dropout > 0.0 {
                    write!(f, ", dropout {}", s.dropout)?;
                }
                if s.sessions() {
                    write!(f, ", sessions τ {} s weight {}", s.session_seconds, s.session_weight)?;
                }
                if s.recency_half_life > 0.0 {
                    write!(f, ", recency half-life {}", s.recency_half_life)?;
                }
                write!(f, ", {} neighbours per item)", s.neighbours)
            }
        }
    }
}

/// A sparse matrix in compressed-row form: row r holds `indices[indptr[r]..indptr[r+1]]`.
#[derive(Debug, Clone, Default)]
pub struct Csr {
    /// Row boundaries, length rows + 1.
    pub indptr: Vec<usize>,
    /// Column of each entry.
    pub indices: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<f32>,
    /// Number of columns.
    pub cols: usize,
    /// Timestamp of each entry (unix seconds), aligned with `values`; empty when the matrix
    /// was built without times ([`Csr::from_triples`]).
    pub times: Vec<Option<i64>>,
}

impl Csr {
    /// Builds from `(row, col, value)` triples; duplicates are summed. No times are kept.
    pub fn from_triples(rows: usize, cols: usize, triples: &[(u32, u32, f32)]) -> Csr {
        let timed: Vec<(u32, u32, f32, Option<i64>)> = triples.iter().map(|&(r, c, v)| (r, c, v, None)).collect();
        let mut matrix = Csr::from_timed(rows, cols, &timed);
        matrix.times = Vec::new();
        matrix
    }

    /// Builds from `(row, col, value, time)` entries; duplicates are summed and keep the
    /// latest time.
    pub fn from_timed(rows: usize, cols: usize, entries: &[(u32, u32, f32, Option<i64>)]) -> Csr {
        let mut sorted = entries.to_vec();
        sorted.sort_by_key(|&(r, c, _, _)| (r, c));
        let mut indptr = vec![0usize; rows + 1];
        let mut indices = Vec::with_capacity(sorted.len());
        let mut values: Vec<f32> = Vec::with_capacity(sorted.len());
        let mut times: Vec<Option<i64>> = Vec::with_capacity(sorted.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v, t) in sorted {
            if last == Some((r, c)) {
                *values.last_mut().expect("a previous entry exists") += v;
                let latest = times.last_mut().expect("a previous entry exists");
                *latest = (*latest).max(t);
                continue;
            }
            last = Some((r, c));
            indptr[r as usize + 1] += 1;
            indices.push(c);
            values.push(v);
            times.push(t);
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        Csr { indptr, indices, values, cols, times }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// `(column, value)` pairs of one row.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let span = self.indptr[r]..self.indptr[r + 1];
        self.indices[span.clone()].iter().copied().zip(self.values[span].iter().copied())
    }

    /// `(column, value, time)` of one row; the time is `None` where the matrix has none.
    pub fn row_timed(&self, r: usize) -> impl Iterator<Item = (u32, f32, Option<i64>)> + '_ {
        let span = self.indptr[r]..self.indptr[r + 1];
        let times = self.times.get(span.clone()).unwrap_or(&[]);
        self.row(r).enumerate().map(move |(k, (c, v))| (c, v, times.get(k).copied().flatten()))
    }

    /// The transpose, also in compressed-row form (without times).
    pub fn transpose(&self) -> Csr {
        let mut triples = Vec::with_capacity(self.indices.len());
        for r in 0..self.rows() {
            for (c, v) in self.row(r) {
                triples.push((c, r as u32, v));
            }
        }
        Csr::from_triples(self.cols, self.rows(), &triples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_sums_duplicates_and_transposes() {
        let m = Csr::from_triples(2, 3, &[(0, 2, 1.0), (0, 2, 2.0), (1, 0, 5.0)]);
        assert_eq!(m.row(0).collect::<Vec<_>>(), vec![(2, 3.0)]);
        let t = m.transpose();
        assert_eq!(t.rows(), 3);
        assert_eq!(t.row(2).collect::<Vec<_>>(), vec![(0, 3.0)]);
        assert_eq!(t.row(0).collect::<Vec<_>>(), vec![(1, 5.0)]);
    }

    #[test]
    fn timed_entries_keep_the_latest_time_of_a_duplicate() {
        let m = Csr::from_timed(
            2,
            3,
            &[(0, 2, 1.0, Some(5)), (0, 2, 2.0, Some(9)), (0, 1, 1.0, None), (1, 0, 5.0, Some(1))],
        );
        assert_eq!(m.row_timed(0).collect::<Vec<_>>(), vec![(1, 1.0, None), (2, 3.0, Some(9))]);
        assert_eq!(m.row_timed(1).collect::<Vec<_>>(), vec![(0, 5.0, Some(1))]);
        let untimed = Csr::from_triples(1, 2, &[(0, 1, 1.0)]);
        assert!(untimed.times.is_empty());
        assert_eq!(untimed.row_timed(0).collect::<Vec<_>>(), vec![(1, 1.0, None)]);
    }
}
