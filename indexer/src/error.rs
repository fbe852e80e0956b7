//! The indexer's errors.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One rejected input row: which file, which line, which field, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject {
    /// The input file.
    pub file: PathBuf,
    /// 1-based line number (for CSV, the line the record starts on).
    pub line: u64,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The id of the item the row describes, when it could be read: what a catalog team looks
    /// up, and what an interaction naming the item is told was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The kind of fault, where an [`OnError`](crate::OnError) mode or the report treats it
    /// apart; not written to `rejects.jsonl` (the reason says it).
    #[serde(skip)]
    pub cause: Cause,
}

/// The faults a reject's handling tells apart from the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cause {
    /// Any other fault.
    #[default]
    Other,
    /// An item whose title and text are both empty, or a row naming such an item (an
    /// interaction): what `OnError::SkipEmpty` passes over.
    EmptyItem,
    /// Text that is not UTF-8: the file's encoding, said once per list of rejects.
    NotUtf8,
    /// A line showing the file is in a layout only a converter reads (MovieLens 1M's
    /// `::`-separated `movies.dat`), which the reject names; the converter writes UTF-8, so
    /// the list does not add the advice for [`Cause::NotUtf8`] for that file.
    Converter,
}

impl Reject {
    /// Whether this is an item whose title and text are both empty (or only whitespace), or a
    /// row naming one: the one fault `OnError::SkipEmpty` passes over, since judged corpora
    /// hold such documents (BEIR's FiQA has several) and they are no mistake of whoever runs
    /// the evaluation.
    pub fn is_empty_item(&self) -> bool {
        self.cause == Cause::EmptyItem
    }

    /// The same reject, of the kind `cause`.
    #[must_use]
    pub fn because(mut self, cause: Cause) -> Self {
        self.cause = cause;
        self
    }

    /// The same reject, naming the item its row describes.
    #[must_use]
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// Everything indexing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Bad rows with `--on-error fail`, or any but empty items with `skip-empty`: nothing was
    /// published. Under `skip-empty` the rows that stopped the build come first.
    #[error("{} bad input row(s); nothing was published ({}):\n{}", rejects.len(), skip_advice(rejects), render(rejects))]
    BadInput {
        /// Every bad row found (reading goes on past the first so all are reported at once).
        rejects: Vec<Reject>,
    },
    /// Every row of an input was rejected (`--on-error skip` included): nothing to index, and
    /// the reasons are the error.
    #[error("{}: every {what} row was rejected; nothing was published. {} bad row(s):\n{}", path.display(), rejects.len(), render(rejects))]
    NothingUsable {
        /// The file.
        path: PathBuf,
        /// What its rows are (`catalog`, `interaction`).
        what: &'static str,
        /// Its bad rows.
        rejects: Vec<Reject>,
    },
    /// Bad rows in a supervision or evaluation file (judgments, queries, a click log).
    #[error("{} bad row(s):\n{}", rejects.len(), render(rejects))]
    BadRows {
        /// Every bad row found.
        rejects: Vec<Reject>,
    },
    /// The input as a whole cannot be used.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Settings that cannot work together.
    #[error("invalid setting {setting}: {reason}")]
    Settings {
        /// The flag.
        setting: String,
        /// Why.
        reason: String,
    },
    /// Building a part of the generation failed.
    #[error(transparent)]
    Engine(#[from] hyrank_engine::Error),
}

/// What every reject of text that is not UTF-8 says.
pub(crate) const NOT_UTF8: &str = "not valid UTF-8";

/// How to fix a file in a single-byte encoding. Windows-1252 is named, not ISO-8859-1: it reads
/// ISO-8859-1's letters the same, and its own 0x80–0x9F (€, curly quotes, dashes) as those
/// characters rather than as control codes. The output keeps the extension, which tells hyrank
/// the format.
pub(crate) const UTF8_ADVICE: &str = "hyrank reads UTF-8; a file in a single-byte encoding (MovieLens 100K and \
     1M are ISO-8859-1) converts with `iconv -f WINDOWS-1252 -t UTF-8 items.csv > items.utf8.csv` (keep the \
     extension: .csv, .jsonl or .tsv tells what the file is)";

/// Which `--on-error` would index the rest: `skip-empty` where every bad row is an empty item
/// (or names one), since it still stops at any other fault.
fn skip_advice(rejects: &[Reject]) -> &'static str {
    if rejects.iter().all(Reject::is_empty_item) {
        "use --on-error skip-empty to index the rest: every bad row is an empty item"
    } else {
        "use --on-error skip to index the rest"
    }
}

/// Shows the first rejects; the rest are counted.
fn render(rejects: &[Reject]) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = rejects.iter().take(SHOWN).map(|r| format!("  {r}")).collect();
    if rejects.len() > SHOWN {
        out.push(format!("  … and {} more", rejects.len() - SHOWN));
    }
    // Files in a single-byte encoding fail row by row wherever an accented letter is; the fix
    // is the file's, so it is said once.
    // Not for a file whose layout a converter was named for (it writes UTF-8): only where a
    // file not in that case holds text that is not UTF-8.
    let converted: Vec<&std::path::Path> =
        rejects.iter().filter(|r| r.cause == Cause::Converter).map(|r| r.file.as_path()).collect();
    if rejects.iter().any(|r| r.cause == Cause::NotUtf8 && !converted.contains(&r.file.as_path())) {
        out.push(format!("  {UTF8_ADVICE}"));
    }
    out.join("\n")
}

/// The indexer's result type.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
