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
pub use ease::{EaseSettings, ItemModel};

use serde::{Deserialize, Serialize};

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
            CfModelSettings::Ease(s) if s.dropout > 0.0 => {
                write!(f, "EDLAE (λ {}, dropout {}, {} neighbours per item)", s.lambda, s.dropout, s.neighbours)
            }
            CfModelSettings::Ease(s) => write!(f, "EASE (λ {}, {} neighbours per item)", s.lambda, s.neighbours),
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
}

impl Csr {
    /// Builds from `(row, col, value)` triples; duplicates are summed.
    pub fn from_triples(rows: usize, cols: usize, triples: &[(u32, u32, f32)]) -> Csr {
        let mut sorted = triples.to_vec();
        sorted.sort_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0usize; rows + 1];
        let mut indices = Vec::with_capacity(sorted.len());
        let mut values: Vec<f32> = Vec::with_capacity(sorted.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in sorted {
            if last == Some((r, c)) {
                *values.last_mut().expect("a previous entry exists") += v;
                continue;
            }
            last = Some((r, c));
            indptr[r as usize + 1] += 1;
            indices.push(c);
            values.push(v);
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        Csr { indptr, indices, values, cols }
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

    /// The transpose, also in compressed-row form.
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
}
