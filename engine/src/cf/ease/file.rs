//! `ease.bin`: a fitted model's rows written and read back, every read checked.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::{EaseSettings, ItemModel};
use crate::cf::Csr;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"HYEASE01";

impl ItemModel {
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
        let cold = Arc::new(cold);
        Ok(ItemModel { rows: Arc::new(rows_csr), abstain: Arc::clone(&cold), cold, settings })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

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
}
