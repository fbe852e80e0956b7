//! Reading and validating catalogs and interactions. Every bad row becomes a [`Reject`] naming
//! the file, the line and the field; nothing is dropped without one.
//!
//! Split by question: [`file`] (opening an input: gzip read as it is, other compression refused
//! by name), [`catalog`] (items from JSON Lines or CSV), [`interactions`] (events from CSV).

use std::io::Read;
use std::path::Path;

use crate::error::{IndexError, Reject, Result};

mod catalog;
mod file;
mod interactions;

use file::open;

pub use catalog::{infer_field_types, read_catalog, Catalog, CatalogFormat, CatalogKind, FieldType};
pub use interactions::{read_interactions, InteractionFormat, InteractionRow, Interactions};

pub(super) fn reject(file: &Path, line: u64, field: Option<&str>, reason: impl Into<String>) -> Reject {
    Reject { file: file.to_path_buf(), line, field: field.map(str::to_string), reason: reason.into() }
}

/// Column positions in a CSV header; a named column that is missing is an error for the file.
pub(super) fn column(path: &Path, headers: &csv::StringRecord, name: &str, flag: &str) -> Result<usize> {
    headers.iter().position(|h| h == name).ok_or_else(|| IndexError::Input {
        path: path.to_path_buf(),
        reason: format!(
            "no column {name:?} (set with {flag}); the header has {:?}",
            headers.iter().collect::<Vec<_>>()
        ),
    })
}

pub(super) fn csv_reader(path: &Path) -> Result<csv::Reader<Box<dyn Read>>> {
    Ok(csv::ReaderBuilder::new().has_headers(true).from_reader(open(path)?))
}

pub(super) fn csv_headers(path: &Path, reader: &mut csv::Reader<Box<dyn Read>>) -> Result<csv::StringRecord> {
    reader
        .headers()
        .cloned()
        .map_err(|e| IndexError::Input { path: path.to_path_buf(), reason: format!("cannot read the CSV header: {e}") })
}

/// The line a CSV record (or error) starts on.
/// A CSV error that is the file failing to read (a corrupt gzip or zstd stream, a disk error),
/// not a malformed row: an error for the whole file, since the reader cannot go on past it and
/// the rows after it would be lost unreported.
pub(super) fn read_failed(path: &Path, error: &csv::Error) -> Result<()> {
    match error.kind() {
        csv::ErrorKind::Io(io) => Err(IndexError::Input {
            path: path.to_path_buf(),
            reason: format!("read failed at line {}: {io}", csv_line(error.position())),
        }),
        _ => Ok(()),
    }
}

pub(super) fn csv_line(position: Option<&csv::Position>) -> u64 {
    position.map_or(0, csv::Position::line)
}

/// What the readers' tests share.
#[cfg(test)]
pub(super) mod testing {
    use std::io::Write;
    use std::path::PathBuf;

    use crate::error::Reject;

    pub(crate) fn file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::File::create(&path).unwrap().write_all(content).unwrap();
        path
    }

    pub(crate) fn reasons(rejects: &[Reject]) -> Vec<(u64, Option<String>, String)> {
        rejects.iter().map(|r| (r.line, r.field.clone(), r.reason.clone())).collect()
    }
}
