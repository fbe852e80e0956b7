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
}

/// The field an empty item's reject names: neither of its two text fields holds a word.
pub(crate) const EMPTY_ITEM_FIELD: &str = "title/text";
/// The reason an empty item's reject gives.
pub(crate) const EMPTY_ITEM_REASON: &str = "empty item: title and text are both empty";

impl Reject {
    /// Whether this is an item whose title and text are both empty (or only whitespace): the
    /// one fault `OnError::SkipEmpty` passes over, since judged corpora hold such documents
    /// (BEIR's FiQA has several) and they are no mistake of whoever runs the evaluation.
    pub fn is_empty_item(&self) -> bool {
        self.field.as_deref() == Some(EMPTY_ITEM_FIELD) && self.reason == EMPTY_ITEM_REASON
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
    /// Bad rows with `--on-error fail`: nothing was published.
    #[error("{} bad input row(s); nothing was published (use --on-error skip to index the rest):\n{}", rejects.len(), render(rejects))]
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

/// Shows the first rejects; the rest are counted.
/// What every reject of text that is not UTF-8 says, so the advice is given once per list.
pub(crate) const NOT_UTF8: &str = "not valid UTF-8";

fn render(rejects: &[Reject]) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = rejects.iter().take(SHOWN).map(|r| format!("  {r}")).collect();
    if rejects.len() > SHOWN {
        out.push(format!("  … and {} more", rejects.len() - SHOWN));
    }
    // Files in a single-byte encoding fail row by row wherever an accented letter is; the fix
    // is the file's, so it is said once.
    if rejects.iter().any(|r| r.reason.contains(NOT_UTF8)) {
        out.push(
            "  hyrank reads UTF-8; a file in a single-byte encoding (ISO-8859-1 or Windows-1252, as MovieLens \
             100K and 1M are) converts with `iconv -f ISO-8859-1 -t UTF-8 FILE > FILE.utf8`"
                .into(),
        );
    }
    out.join("\n")
}

/// The indexer's result type.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
