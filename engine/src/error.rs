//! One error type for the engine, with a [`ErrorKind`] that says whose fault it is so that
//! front ends (the API, the CLI) can map it without matching on every variant.

use std::path::PathBuf;

/// Whose fault an error is; the API maps each kind to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something malformed or out of range.
    InvalidInput,
    /// A named user, item or generation does not exist.
    NotFound,
    /// The engine is at capacity; retrying later may succeed.
    Overloaded,
    /// The caller went away before the answer ([`crate::call::Call`]): no one reads it.
    Cancelled,
    /// A bug, or a broken index on disk.
    Internal,
}

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is out of range or inconsistent.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The request field at fault.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// An item id that is not in the serving generation.
    #[error("item {id:?} is not in the index")]
    UnknownItem {
        /// The id as the caller gave it.
        id: String,
    },
    /// A user id that has no interactions in the serving generation.
    #[error("user {id:?} is not in the index")]
    UnknownUser {
        /// The id as the caller gave it.
        id: String,
    },
    /// The requested retrieval needs data the generation does not have (e.g. CF without
    /// interactions).
    #[error("{what} is not available in this index: {reason}")]
    Unavailable {
        /// What was asked for.
        what: String,
        /// Why it cannot be served.
        reason: String,
    },
    /// A generation directory that is missing, incomplete or of another format.
    #[error("cannot open index at {path}: {reason}")]
    BadIndex {
        /// The generation or index root.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The generation was built with other model weights than the ones loaded.
    #[error("index was built with model {index_model} (sha256 {index_sha}), but the loaded model is {loaded_model} (sha256 {loaded_sha})")]
    ModelMismatch {
        /// Model name in the manifest.
        index_model: String,
        /// Weights checksum in the manifest.
        index_sha: String,
        /// Model name loaded now.
        loaded_model: String,
        /// Weights checksum loaded now.
        loaded_sha: String,
    },
    /// The generation's items were embedded at another precision than the one asked for.
    #[error("the index was embedded at precision {index}, but {requested} was asked for; serve it at {index} (or rebuild the index at {requested})")]
    PrecisionMismatch {
        /// The generation's precision.
        index: crate::bert::Precision,
        /// The precision asked for.
        requested: crate::bert::Precision,
    },
    /// Asked for a device this build or machine does not have.
    #[error("device {requested} is not available: {reason}")]
    DeviceUnavailable {
        /// The device as requested.
        requested: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Model files missing or unreadable.
    #[error("cannot load model from {path}: {reason}")]
    Model {
        /// The model directory or file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Tensor computation failed.
    #[error("model inference failed: {0}")]
    Inference(#[from] candle_core::Error),
    /// A bounded queue is full; the caller should retry shortly rather than wait.
    #[error("{queue} is full (it holds {capacity}); retry shortly")]
    Overloaded {
        /// Which queue.
        queue: &'static str,
        /// Its capacity.
        capacity: usize,
    },
    /// The caller hung up; the work it asked for was stopped ([`crate::call::Call`]).
    #[error("the caller went away; the request's work was stopped")]
    Cancelled,
    /// Tokenization failed.
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    /// The lexical index failed.
    #[error("lexical index: {0}")]
    Lexical(#[from] tantivy::TantivyError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Store(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored JSON document could not be read.
    #[error("{context}: {source}")]
    Json {
        /// What was being read.
        context: String,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// Object storage failed (a generation's upload, download or pointer).
    #[error("{context}: {reason}")]
    Remote {
        /// What was being done, naming the object's URL.
        context: String,
        /// The storage's error.
        reason: String,
    },
    /// Another publisher got there first: the generation's name was taken, or `CURRENT`
    /// moved while this one uploaded.
    #[error("publish conflict: {0}")]
    PublishConflict(String),
}

impl Error {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } => ErrorKind::InvalidInput,
            Error::UnknownItem { .. } | Error::UnknownUser { .. } => ErrorKind::NotFound,
            Error::Unavailable { .. } => ErrorKind::InvalidInput,
            Error::Overloaded { .. } => ErrorKind::Overloaded,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::BadIndex { .. }
            | Error::ModelMismatch { .. }
            | Error::PrecisionMismatch { .. }
            | Error::DeviceUnavailable { .. }
            | Error::Model { .. }
            | Error::Inference(_)
            | Error::Tokenizer(_)
            | Error::Lexical(_)
            | Error::Store(_)
            | Error::Io { .. }
            | Error::Json { .. }
            | Error::Remote { .. }
            | Error::PublishConflict(_) => ErrorKind::Internal,
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { field: field.into(), reason: reason.into() }
    }

    /// Shorthand for [`Error::Io`] with a context naming the path.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Store(e.to_string())
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a settings file went wrong, as `FILE, line L (`KEY`): MESSAGE`, for a parser that
/// blamed the byte range `span` of `text` and said `message` (toml's `de::Error::span` and
/// `message`); `keys` are the keys the file may hold.
///
/// It never quotes the file: the blamed line may hold a credential (`admin_key = s3cr3t`,
/// unquoted, is a syntax error whose usual report shows the line). The key it names is always
/// one of `keys`: for a line inside a value left open above (an array, an inline table, a
/// multi-line string), that value's key, as "in the value of"; else the line's own. Text of
/// the file that is not a known key is never printed, since a continuation line of a secret
/// may look like `key = value`. toml reads on past an unquoted word (`admin_key = s3cr3t`,
/// then an indented line) or a missing value (`admin_key =`) and blames a later line: an
/// earlier line assigning nothing or an unquoted word is reported instead, as the first fault. No column
/// either: at the end of an unclosed string it would give the secret's length. The value a
/// type error quotes (serde's "invalid type: integer `123`, expected a string") is cut to its
/// kind ("invalid type: integer, expected a string").
pub fn settings_file_error(
    path: &std::path::Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    message: &str,
    keys: &[&str],
) -> String {
    let mut message = message.trim().to_string();
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = rest.split_once(", expected").unwrap_or((rest, ""));
            let kind = found.split(['`', '"']).next().unwrap_or_default().trim();
            let expected = if expected.is_empty() { String::new() } else { format!(", expected{expected}") };
            message = format!("{prefix}{kind}{expected}");
            break;
        }
    }
    let Some(start) = span.map(|s| s.start.min(text.len())) else {
        return format!("{}: {message}", path.display());
    };
    let mut line = text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    let own_key = |line: &str| {
        let key = line.split(['=', ' ', '\t']).next().unwrap_or_default().trim();
        keys.iter().copied().find(|k| *k == key)
    };
    // Each line's state before it: inside whose value (an array, an inline table or a
    // multi-line string left open above), or none.
    let mut open: Vec<Option<&str>> = Vec::with_capacity(lines.len());
    let (mut depth, mut string, mut owner) = (0usize, None::<&str>, None::<&str>);
    for text in &lines {
        let inside = depth > 0 || string.is_some();
        open.push(inside.then(|| owner.unwrap_or("")));
        if depth == 0 && string.is_none() {
            owner = own_key(text);
        }
        scan_toml_line(text, &mut depth, &mut string);
    }
    // The parser may read past the first fault and blame a later line (a bare word taken as a
    // key on the next one): an earlier assignment of nothing or of an unquoted word is the
    // first fault.
    let earlier = (0..line.saturating_sub(1).min(lines.len()))
        .find_map(|i| open[i].is_none().then(|| value_fault(lines[i])).flatten().map(|fault| (i, fault)));
    if let Some((first, fault)) = earlier {
        line = first + 1;
        message = fault.to_string();
    }
    let key = match (open.get(line - 1).copied().flatten(), lines.get(line - 1).and_then(|l| own_key(l))) {
        (Some(""), _) => String::new(),
        (Some(owner), _) => format!(" (in the value of `{owner}`)"),
        (None, Some(key)) => format!(" (`{key}`)"),
        (None, None) => String::new(),
    };
    format!("{}, line {line}{key}: {message}", path.display())
}

/// Follows one line of a TOML file: how many arrays and inline tables are open after it
/// (`depth`), and the multi-line string (`"""` or `'''`) it leaves open, if any. Quoted text
/// and comments open nothing.
fn scan_toml_line(line: &str, depth: &mut usize, string: &mut Option<&'static str>) {
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(close) = *string {
            match rest.find(close) {
                Some(at) => {
                    rest = &rest[at + close.len()..];
                    *string = None;
                }
                None => return,
            }
            continue;
        }
        if let Some(after) = rest.strip_prefix("\"\"\"") {
            (*string, rest) = (Some("\"\"\""), after);
        } else if let Some(after) = rest.strip_prefix("'''") {
            (*string, rest) = (Some("'''"), after);
        } else if let Some(quote @ ('"' | '\'')) = rest.chars().next() {
            // A single-line string: to its closing quote (a backslash escapes in "…").
            let mut chars = rest.char_indices().skip(1);
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                if c == '\\' && quote == '"' {
                    chars.next();
                } else if c == quote {
                    end = i + 1;
                    break;
                }
            }
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            match c {
                '#' => return,
                '[' | '{' if *depth > 0 || line.contains('=') => *depth += 1,
                ']' | '}' => *depth = depth.saturating_sub(1),
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// What is wrong with the value `line` assigns, for the two faults toml reads past to blame a
/// later line: none (`key =`, the value on the next line) or an unquoted word
/// (`key = s3cr3t`). A value starts with a quote, a bracket or brace, a digit or sign, or is
/// true, false, inf or nan.
fn value_fault(line: &str) -> Option<&'static str> {
    let (key, value) = line.split_once('=')?;
    if key.trim().starts_with(['#', '[']) {
        return None;
    }
    let value = value.trim();
    let word = value.split(|c: char| c.is_whitespace() || c == '#').next().unwrap_or_default();
    let starts_value =
        value.starts_with(['"', '\'', '[', '{', '+', '-']) || value.starts_with(|c: char| c.is_ascii_digit());
    if word.is_empty() && !starts_value {
        Some("key with no value")
    } else if !word.is_empty() && !starts_value && !["true", "false", "inf", "nan"].contains(&word) {
        Some("string values must be quoted")
    } else {
        None
    }
}

/// An error and its causes as one line, `outer: cause: root`, each cause written once. An
/// [`Error::Io`] (and other errors here) already ends its message with its cause, so printing
/// the chain as anyhow's `{:#}` does repeats it (`locking …: lock failed: lock failed`); a cause
/// whose message the line already ends with is left out.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let message = next.to_string();
        if !line.ends_with(&message) {
            line = format!("{line}: {message}");
        }
        cause = next.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::{report, settings_file_error, Error};
    use std::path::Path;

    const KEYS: &[&str] = &["workers", "admin_key", "w"];

    #[test]
    fn a_settings_file_error_names_the_place_and_key_but_never_the_value() {
        let path = Path::new("/etc/hyrank.toml");
        let text = "workers = 2\nadmin_key = s3cr3tvalue\n";
        let error = settings_file_error(path, text, Some(24..35), "string values must be quoted", KEYS);
        assert_eq!(error, "/etc/hyrank.toml, line 2 (`admin_key`): string values must be quoted");
        let error = settings_file_error(
            path,
            "admin_key = 123456789\n",
            Some(12..21),
            "invalid type: integer `123456789`, expected a string",
            KEYS,
        );
        assert_eq!(error, "/etc/hyrank.toml, line 1 (`admin_key`): invalid type: integer, expected a string");
        let error =
            settings_file_error(path, "w = \"two\"", Some(4..9), "invalid type: string \"two\", expected usize", KEYS);
        assert!(error.ends_with("(`w`): invalid type: string, expected usize") && !error.contains("two"), "{error}");
        let error = settings_file_error(
            path,
            "w = 1.5",
            Some(4..7),
            "invalid type: floating point `1.5`, expected usize",
            KEYS,
        );
        assert!(error.ends_with("invalid type: floating point, expected usize"), "{error}");
        let error = settings_file_error(
            path,
            "max_kk = 5",
            Some(0..6),
            "unknown field `max_kk`, expected one of `max_k`",
            KEYS,
        );
        assert_eq!(error, "/etc/hyrank.toml, line 1: unknown field `max_kk`, expected one of `max_k`");
        assert_eq!(settings_file_error(path, "", None, "missing field", KEYS), "/etc/hyrank.toml: missing field");
        // A value on the lines after its key: only the key is named, never the line's text.
        let text = "workers = 2\nadmin_key = [\n  SECRETx1==\n]\n";
        let error = settings_file_error(path, text, Some(29..30), "unexpected `=` in array", KEYS);
        assert_eq!(error, "/etc/hyrank.toml, line 3 (in the value of `admin_key`): unexpected `=` in array");
    }

    /// Where toml blames a line after a complete one, the line's own key is named, not the
    /// one above; where it blames a line after an unquoted word, that word's line is.
    #[test]
    fn a_settings_file_error_names_the_faulty_line_and_its_own_key() {
        let path = Path::new("h.toml");
        let at_line = |text: &str, line: usize| {
            let start: usize = text.lines().take(line - 1).map(|l| l.len() + 1).sum();
            Some(start..start + 1)
        };
        let blamed = |text: &str, line: usize, message: &str| {
            settings_file_error(path, text, at_line(text, line), message, KEYS)
        };
        let text = "w = 1\nadmin_key = \"s3cr3t-xxxxxxxx\"\nworkers 4\n";
        let error = blamed(text, 3, "key with no value, expected `=`");
        assert_eq!(error, "h.toml, line 3 (`workers`): key with no value, expected `=`");
        let error = blamed("workers = 2\nbogus line here\n", 2, "key with no value, expected `=`");
        assert_eq!(error, "h.toml, line 2: key with no value, expected `=`");
        let text = "w = 1\nadmin_key = s3cr3t\n  more\n";
        let error = blamed(text, 3, "key with no value, expected `=`");
        assert_eq!(error, "h.toml, line 2 (`admin_key`): string values must be quoted");
        assert!(!error.contains("s3cr3t"), "{error}");
        // Inside an array or a multi-line string that a quoted bracket or an equals sign does not
        // close or open, the value's key; after it, the line's own.
        let text = "admin_key = [\"]\", \"a=b\",\n  x\n]\nworkers = two\n";
        assert_eq!(blamed(text, 2, "invalid array"), "h.toml, line 2 (in the value of `admin_key`): invalid array");
        let error = blamed(text, 4, "string values must be quoted");
        assert_eq!(error, "h.toml, line 4 (`workers`): string values must be quoted");
        let text = "admin_key = \"\"\"\nw = x\n\"\"\"\nw = 1\n";
        assert_eq!(blamed(text, 2, "bad"), "h.toml, line 2 (in the value of `admin_key`): bad", "not a bare word");
        let error = blamed("w = 1\nadmin_key =\n\"s3cr3t\"\n", 3, "key with no value, expected `=`");
        assert_eq!(error, "h.toml, line 2 (`admin_key`): key with no value");
        // Numbers, booleans, dates and quoted values are no bare words.
        let text = "w = 1.5\nw = true\nw = 1979-05-27\nw = 'x'\nw = -3\nw = nan\nworkers = 2 2\n";
        assert_eq!(blamed(text, 7, "expected newline"), "h.toml, line 7 (`workers`): expected newline");
    }

    #[test]
    fn a_report_names_each_cause_once() {
        let io = std::io::Error::other("lock acquisition failed");
        let error = Error::io("locking live/.lock", io);
        assert_eq!(report(&error), "locking live/.lock: lock acquisition failed");
        #[derive(Debug)]
        struct Outer(Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("opening the live event log")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(report(&Outer(error)), "opening the live event log: locking live/.lock: lock acquisition failed");
    }
}
