//! Reading and validating catalogs and interactions. Every bad row becomes a [`Reject`] naming
//! the file, the line and the field; nothing is dropped without one.
//!
//! Split by question: [`file`] (opening an input: gzip read as it is, other compression refused
//! by name), [`catalog`] (items from JSON Lines or CSV), [`interactions`] (events from CSV).

use std::io::{BufRead, Read};
use std::path::Path;

use crate::error::{Cause, IndexError, Reject, Result, NOT_UTF8, UTF8_ADVICE};

mod catalog;
mod file;
mod interactions;

use file::open;
pub(crate) use file::wide_encoding_refusal;

pub use catalog::{infer_field_types, not_json_lines, read_catalog, Catalog, CatalogFormat, CatalogKind, FieldType};
pub use interactions::{read_interactions, InteractionFormat, InteractionRow, Interactions};

pub(super) fn reject(file: &Path, line: u64, field: Option<&str>, reason: impl Into<String>) -> Reject {
    Reject {
        file: file.to_path_buf(),
        line,
        field: field.map(str::to_string),
        id: None,
        reason: reason.into(),
        cause: Cause::Other,
    }
}

/// Column positions in a CSV header; a named column that is missing, or that the header
/// names more than once (which one would the rows mean?), is an error for the file.
pub(super) fn column(path: &Path, headers: &csv::StringRecord, name: &str, flag: &str) -> Result<usize> {
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(IndexError::Input {
            path: path.to_path_buf(),
            reason: format!(
                "the header line is empty (or the file is): it must name the columns ({name:?} among them)"
            ),
        });
    }
    column_if_present(path, headers, name)?.ok_or_else(|| IndexError::Input {
        path: path.to_path_buf(),
        reason: format!(
            "no column {name:?} (set with {flag}); the header has {:?}{}",
            headers.iter().collect::<Vec<_>>(),
            other_separator(headers).unwrap_or_default()
        ),
    })
}

/// Why a CSV row that repeats the header line is refused: read as data, it would be an item
/// named after the id column, or an interaction with an unknown item.
pub(super) const HEADER_AGAIN: &str =
    "the header line again, not a row (files joined with their headers kept?); not read";

/// Whether `record` is the header line again, cell for cell (trimmed).
pub(super) fn repeats_header(record: &csv::StringRecord, headers: &csv::StringRecord) -> bool {
    record.len() == headers.len() && record.iter().zip(headers).all(|(cell, name)| cell.trim() == name.trim())
}

/// The first line of the file at `path` as text (decompressed as the readers decompress it;
/// at most 64 KiB, invalid UTF-8 replaced), or `None` when it cannot be read: for advice, not
/// for data.
pub fn first_line(path: &Path) -> Option<String> {
    let mut line = Vec::new();
    std::io::BufReader::new(file::open(path).ok()?.take(64 * 1024)).read_until(b'\n', &mut line).ok()?;
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// What to do with a file whose header reads as one column holding another separator: a
/// CSV reader sees a tab-, pipe- or `::`-separated file (MovieLens 100K's `u.data`, 1M's and
/// 10M's `.dat` files, which have no header either) that way.
fn other_separator(headers: &csv::StringRecord) -> Option<String> {
    let [only] = headers.iter().collect::<Vec<_>>()[..] else { return None };
    let separator = ["::", "\t", "|", ";"].into_iter().find(|s| only.contains(s))?;
    let movielens = if separator == "::" || separator == "\t" || separator == "|" {
        " (MovieLens 100K, 1M and 10M: `python3 scripts/movielens_csv.py THEIR_FOLDER OUT` writes ratings.csv and \
         movies.csv as ml-latest lays them out, in UTF-8)"
    } else {
        ""
    };
    Some(format!(
        ". It reads as one column holding {separator:?}: hyrank reads comma-separated files with a header line, so \
         convert it first{movielens}"
    ))
}

/// A column read when the header has it (`text`, `weight`, `timestamp` by default): its
/// position, `None` when absent; named more than once, an error for the file.
pub(super) fn column_if_present(path: &Path, headers: &csv::StringRecord, name: &str) -> Result<Option<usize>> {
    // Named as the cells are read, trimmed: `userId, movieId` names `movieId`.
    let at: Vec<usize> = headers.iter().enumerate().filter(|(_, h)| h.trim() == name).map(|(i, _)| i).collect();
    match at[..] {
        [] => Ok(None),
        [i] => Ok(Some(i)),
        _ => {
            let columns: Vec<String> = at.iter().map(|i| (i + 1).to_string()).collect();
            Err(IndexError::Input {
                path: path.to_path_buf(),
                reason: format!("the header names column {name:?} {} times (columns {})", at.len(), columns.join(", ")),
            })
        }
    }
}

/// A CSV reader of `path`, with the [`Quotes`] that watch its bytes.
pub(super) fn csv_reader(path: &Path) -> Result<(csv::Reader<Box<dyn Read>>, Quotes)> {
    let quotes = Quotes::default();
    let watched: Box<dyn Read> = Box::new(Watched { inner: open(path)?, quotes: quotes.clone(), pending_cr: false });
    Ok((csv::ReaderBuilder::new().has_headers(true).from_reader(watched), quotes))
}

/// Where a CSV file's quoting stands, as the bytes go by: the `csv` reader takes a quote that is
/// never closed to run to the end of the file, so every row after it becomes part of one field
/// (and is lost, or read as one bad row) without an error of its own. RFC 4180's rules, as
/// `csv` reads them: a quote opens a quoted field only at the start of a field, `""` inside one
/// is a quote, and a quote then anything else closes it.
#[derive(Clone, Default)]
pub(super) struct Quotes(std::rc::Rc<std::cell::Cell<QuoteState>>);

#[derive(Clone, Copy)]
struct QuoteState {
    /// 1-based line of the byte being read.
    line: u64,
    /// At the start of a field.
    field_start: bool,
    /// Inside a quoted field opened on this line.
    open_since: Option<u64>,
    /// In a quoted field, just after a quote (which closes it unless another follows).
    after_quote: bool,
    /// Leading bytes of a UTF-8 byte order mark seen so far, and whether that question is over.
    bom_matched: u8,
    bom_done: bool,
    /// The last byte was a line feed (the file's last line is the one before it).
    after_newline: bool,
}

/// Before the first byte: line 1, at the start of the first field.
impl Default for QuoteState {
    fn default() -> Self {
        QuoteState {
            line: 1,
            field_start: true,
            open_since: None,
            after_quote: false,
            bom_matched: 0,
            bom_done: false,
            after_newline: false,
        }
    }
}

impl QuoteState {
    fn step(&mut self, byte: u8) {
        // The csv reader drops a UTF-8 byte order mark before the first field; so does this.
        // (Bytes of a BOM that turns out partial were content: the field has begun.)
        if !self.bom_done {
            const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
            if byte == BOM[usize::from(self.bom_matched)] {
                self.bom_matched += 1;
                self.bom_done = self.bom_matched == 3;
                return;
            }
            self.bom_done = true;
            if self.bom_matched > 0 {
                self.field_start = false;
            }
        }
        match self.open_since {
            Some(_) if self.after_quote => {
                self.after_quote = false;
                if byte != b'"' {
                    self.open_since = None;
                    self.unquoted(byte);
                }
            }
            Some(_) => self.after_quote = byte == b'"',
            None => self.unquoted(byte),
        }
        if byte == b'\n' {
            self.line += 1;
        }
        self.after_newline = byte == b'\n';
    }

    fn unquoted(&mut self, byte: u8) {
        match byte {
            b'"' if self.field_start => {
                self.open_since = Some(self.line);
                self.field_start = false;
            }
            b',' | b'\n' | b'\r' => self.field_start = true,
            _ => self.field_start = false,
        }
    }
}

impl Quotes {
    /// After the last record: a quoted field still open at the end of the file is an error for
    /// the file, naming the line its quote opened on.
    pub(super) fn finished(&self, path: &Path) -> Result<()> {
        let state = self.0.get();
        match state.open_since {
            Some(line) if !state.after_quote => Err(IndexError::Input {
                path: path.to_path_buf(),
                reason: format!(
                    "line {line}: a quoted field opens here and is never closed, so lines {line} to {} would be \
                     read as one field; close the quote (a quote inside a quoted field is written \"\")",
                    // A file ending in a line feed ends on the line before the count.
                    state.line - u64::from(state.after_newline)
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// A reader that steps [`Quotes`] over every byte it hands on, and hands on each CRLF as LF.
///
/// The `csv` reader ends a row at the CR of a CRLF and skips the LF when it reads the next
/// row, after it has taken that row's position, so every row of a CRLF file (Windows' and
/// Excel's, and RFC 4180's own) was reported one line too high up: "line 2" for what an editor
/// shows on line 3. Read as LF, rows are counted as in an LF file. A CRLF inside a quoted cell
/// is left as it is, part of the cell's text as before. A lone CR still ends a row.
struct Watched {
    inner: Box<dyn Read>,
    quotes: Quotes,
    /// A CR that ended the last read, held back until the next byte says whether an LF follows.
    pending_cr: bool,
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() < 2 {
            // No room to look ahead (the csv reader reads into 8 KiB buffers): bytes as they come.
            let len = if std::mem::take(&mut self.pending_cr) && !buf.is_empty() {
                buf[0] = b'\r';
                1
            } else {
                self.inner.read(buf)?
            };
            return self.pass_on(buf, len);
        }
        loop {
            let start = usize::from(self.pending_cr);
            let n = self.inner.read(&mut buf[start..])?;
            if start == 1 {
                buf[0] = b'\r';
            }
            if n == 0 {
                // The end of the input: a CR held back goes out alone.
                self.pending_cr = false;
                return self.pass_on(buf, start);
            }
            let end = start + n;
            let mut state = self.quotes.0.get();
            let (mut kept, mut held) = (0, false);
            for i in 0..end {
                let byte = buf[i];
                // Inside a quoted cell a CRLF is the cell's text, kept as the csv reader
                // always read it (a catalog row's hash, which live writes name, stays the same).
                let quoted = state.open_since.is_some() && !state.after_quote;
                if byte == b'\r' && !quoted {
                    if i + 1 == end {
                        held = true;
                        break;
                    }
                    if buf[i + 1] == b'\n' {
                        continue;
                    }
                }
                state.step(byte);
                buf[kept] = byte;
                kept += 1;
            }
            self.quotes.0.set(state);
            self.pending_cr = held;
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

impl Watched {
    /// Steps the quotes over `buf[..len]`, which is handed on.
    fn pass_on(&mut self, buf: &[u8], len: usize) -> std::io::Result<usize> {
        let mut state = self.quotes.0.get();
        buf[..len].iter().for_each(|&b| state.step(b));
        self.quotes.0.set(state);
        Ok(len)
    }
}

/// The header of a CSV file. A header field holding a line break may be a quote never closed
/// that ran to the end of the file: then that is the error, not a missing column.
pub(super) fn csv_headers(
    path: &Path,
    reader: &mut csv::Reader<Box<dyn Read>>,
    quotes: &Quotes,
) -> Result<csv::StringRecord> {
    let headers = reader.headers().cloned().map_err(|e| IndexError::Input {
        path: path.to_path_buf(),
        reason: match e.kind() {
            csv::ErrorKind::Utf8 { .. } => format!("the CSV header is {NOT_UTF8}: {UTF8_ADVICE}"),
            _ => format!("cannot read the CSV header: {e}"),
        },
    })?;
    if headers.iter().any(|h| h.contains('\n')) {
        quotes.finished(path)?;
    }
    Ok(headers)
}

/// The line a CSV record (or error) starts on.
/// A CSV error that is the file failing to read (a corrupt gzip or zstd stream, a disk error),
/// not a malformed row: an error for the whole file, since the reader cannot go on past it and
/// the rows after it would be lost unreported.
/// `at`: the reader's position, where the row being read starts (an I/O error carries none).
pub(super) fn read_failed(path: &Path, error: &csv::Error, at: &csv::Position) -> Result<()> {
    match error.kind() {
        csv::ErrorKind::Io(io) => Err(IndexError::Input {
            path: path.to_path_buf(),
            reason: format!("read failed at line {}: {io}", csv_line(error.position().or(Some(at)))),
        }),
        _ => Ok(()),
    }
}

/// Why a CSV row could not be read, for its reject. A row of another length than the header
/// is said against the header (the csv crate says "the previous record", which with a header
/// is the header, and reads as the row above).
/// A row the csv reader could not read, at the line it starts on; `headers` name the field of
/// text that is not UTF-8. `reader` has just read the row, so its position is where the next
/// row starts: a row of another length than the header that runs over several lines is said to
/// (a quoted cell holds its line breaks), since a quote closed in the wrong place takes the rows
/// it spans into one, and they would otherwise be lost without a word.
pub(super) fn malformed_csv<R: std::io::Read>(
    file: &Path,
    error: &csv::Error,
    headers: &csv::StringRecord,
    reader: &csv::Reader<R>,
) -> Reject {
    let line = csv_line(error.position());
    match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            let lengths = format!("malformed CSV: this row has {len} fields and the header {expected_len}");
            // The next row starts on the line after this one's last (a last row without a line
            // break after it is counted one line short).
            let last = reader.position().line().saturating_sub(1);
            if last <= line {
                return reject(file, line, None, lengths);
            }
            let reason = format!(
                "{lengths}. It runs from line {line} to line {last}: a quoted cell in it holds line breaks, so a \
                 quote opened in it may close further down than meant, and the rows it spans are part of this one"
            );
            reject(file, line, None, reason)
        }
        csv::ErrorKind::Utf8 { err, .. } => not_utf8(file, line, headers, err.field()),
        _ => reject(file, line, None, format!("malformed CSV: {error}")),
    }
}

/// A CSV row whose field `index` (from 0) is not UTF-8, named by its header.
pub(super) fn not_utf8(file: &Path, line: u64, headers: &csv::StringRecord, index: usize) -> Reject {
    let field = headers.get(index).map(str::trim);
    reject(file, line, field, NOT_UTF8).because(Cause::NotUtf8)
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::testing::file;
    use super::*;

    /// A quote never closed swallows every row after it into one field: the file is refused
    /// naming the line the quote opened on (catalogs and interactions alike, under either
    /// --on-error, since the rows after it cannot be read), while quoted commas, line breaks,
    /// `""` and a quote inside an unquoted field read as before.
    #[test]
    fn a_quote_never_closed_is_an_error_for_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let open = b"id,title,text\n1,Toy Story,x\n,No Id,y\n3,,\n4,\"Unterminated,z\n5,Heat,a\n6,A,b\n";
        let error = read_catalog(&file(&dir, "open.csv", open), &CatalogFormat::default()).unwrap_err().to_string();
        assert!(error.contains("line 5: a quoted field opens here and is never closed"), "{error}");
        assert!(error.contains("lines 5 to 7"), "the file has 7 lines: {error}");
        let last_column = b"id,title,text\n1,Toy Story,x\n2,Heat,\"never closed\n3,Casino,c\n";
        let error = read_catalog(&file(&dir, "last.csv", last_column), &CatalogFormat::default()).unwrap_err();
        assert!(error.to_string().contains("line 3:"), "a row of the right width too: {error}");

        let fine = b"id,title,text\n1,\"Jumanji, The\",\"two\nlines\"\n2,Say \"\"hi\"\",\"a \"\"quote\"\"\"\n3,Un\"usual,ok\n4,Last,\"closed at the end\"";
        let catalog = read_catalog(&file(&dir, "fine.csv", fine), &CatalogFormat::default()).unwrap();
        let titles: Vec<&str> = catalog.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles, ["Jumanji, The", "Say \"\"hi\"\"", "Un\"usual", "Last"]);
        assert_eq!(catalog.items[0].text, "two\nlines");
        assert_eq!(catalog.items[1].text, "a \"quote\"");
        assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);

        // After a byte order mark (which the csv reader drops), a quoted first header field.
        let bom = b"\xEF\xBB\xBF\"id\",title\n1,\"a,\"\"b\"\"\"\n";
        let catalog = read_catalog(&file(&dir, "bom.csv", bom), &CatalogFormat::default()).unwrap();
        assert_eq!(catalog.items[0].title, "a,\"b\"");
        let bom_open = b"\xEF\xBB\xBF\"id,title\n1,a\n";
        let error = read_catalog(&file(&dir, "bom-open.csv", bom_open), &CatalogFormat::default()).unwrap_err();
        assert!(error.to_string().contains("line 1: a quoted field opens here"), "{error}");

        let items: HashMap<&str, u32> = [("1", 0), ("2", 1)].into_iter().collect();
        let events = b"user,item,weight\nu1,1,4.0\nu1,\"2,4.0\nu2,1,1\nu2,2,1\n";
        let path = file(&dir, "events.csv", events);
        let error = read_interactions(&path, &InteractionFormat::default(), &items, &[]).unwrap_err().to_string();
        assert!(error.contains("line 3: a quoted field opens here"), "{error}");
        let closed = file(&dir, "closed.csv", b"user,item\n\"u,1\",\"1\"\r\nu2,2\r\n");
        let read = read_interactions(&closed, &InteractionFormat::default(), &items, &[]).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert_eq!(read.rows[0].user, "u,1");
    }

    /// A CRLF file's rows are on the lines an editor shows (the csv reader put each one line
    /// higher up), whatever the reads' sizes; a CRLF inside a quoted cell is left in its text,
    /// and a lone CR still ends a row.
    #[test]
    fn crlf_rows_are_counted_on_the_lines_an_editor_shows() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = b"id,title,text\r\n1,Tent,\"two\r\nlines\"\r\n2,Stove,x,extra\r\n1,Other,y\r\n";
        let read = read_catalog(&file(&dir, "c.csv", catalog), &CatalogFormat::default()).unwrap();
        assert_eq!(read.items[0].text, "two\r\nlines", "a quoted cell's CRLF is its text, as it was");
        let lines: Vec<u64> = read.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4, 5], "{:?}", read.rejects);
        assert!(read.rejects[1].reason.contains("first on line 2"), "{:?}", read.rejects);
        let items: HashMap<&str, u32> = [("1", 0)].into_iter().collect();
        let events = b"user,item,weight\r\nu1,1,1\r\nu1,1,-5\r\nu2,NOPE,1\ru3,1,1\r\n";
        let read = read_interactions(&file(&dir, "e.csv", events), &InteractionFormat::default(), &items, &[]).unwrap();
        let lines: Vec<u64> = read.rejects.iter().map(|r| r.line).collect();
        assert_eq!((lines, read.rows.len()), (vec![3, 4], 2), "{:?}", read.rejects);

        // Read a byte at a time into buffers of every size: the same bytes, CRLF as LF.
        struct Trickle(std::io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let end = buf.len().min(1);
                self.0.read(&mut buf[..end])
            }
        }
        let input = b"a\r\nb\r\rc\r\n\"x\r\ny\"\r\n\r\n\r".to_vec();
        for size in 1..6 {
            let mut watched = Watched {
                inner: Box::new(Trickle(std::io::Cursor::new(input.clone()))),
                quotes: Quotes::default(),
                pending_cr: false,
            };
            let (mut out, mut buf) = (Vec::new(), vec![0; size]);
            loop {
                let n = watched.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            let expected: &[u8] = if size < 2 { &input } else { b"a\nb\r\rc\n\"x\r\ny\"\n\n\r" };
            assert_eq!(out, expected, "buffers of {size}");
        }
    }

    /// A quote that closes further down than meant takes the rows it spans into one row of the
    /// wrong width: its reject names the lines it runs over, so the rows inside it are
    /// accounted for (they were lost without a word). A short row on one line says nothing more.
    #[test]
    fn a_malformed_row_over_several_lines_names_the_lines_it_spans() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = b"id,title,text,price\n1,Tent,\"a tent\",10\n2,\"Bad quote,x,5\n3,Stove,stove,abc\n4,,,\n5,Mug,\"multi\nline\",3\n6,Cup,cup,2\n";
        let read = read_catalog(&file(&dir, "c.csv", catalog), &CatalogFormat::default()).unwrap();
        let ids: Vec<&str> = read.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["1", "6"]);
        let said: Vec<(u64, &str)> = read.rejects.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(said[0].0, 3);
        assert!(
            said[0].1.starts_with(
                "malformed CSV: this row has 2 fields and the header 4. It runs from line 3 to line 6: a quoted cell"
            ),
            "{said:?}"
        );
        assert_eq!(said[1], (7, "malformed CSV: this row has 2 fields and the header 4"));
        let items: HashMap<&str, u32> = [("1", 0), ("2", 1)].into_iter().collect();
        let events = b"user,item,weight\nu1,1,4\nu1,\"2,4\nu2,1,1\nu2\",2,9\nu3,2,1\n";
        let read = read_interactions(&file(&dir, "e.csv", events), &InteractionFormat::default(), &items, &[]).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert!(read.rejects[0].reason.contains("It runs from line 3 to line 5"), "{:?}", read.rejects);
    }

    /// A column the reader uses, named twice in the header, is refused: the rows' values could
    /// be either. A repeated column nobody reads is no error.
    #[test]
    fn a_column_named_twice_is_refused_where_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "movies.csv", b"movieId,title,genres,genres\n1,Toy Story,Comedy,Drama\n");
        let format = CatalogFormat {
            id_column: "movieId".into(),
            field_columns: vec!["genres".into()],
            list_separator: Some("|".into()),
            ..CatalogFormat::default()
        };
        let error = read_catalog(&path, &format).unwrap_err().to_string();
        assert!(error.contains("names column \"genres\" 2 times (columns 3, 4)"), "{error}");
        let unread = CatalogFormat { field_columns: vec![], ..format };
        assert_eq!(read_catalog(&path, &unread).unwrap().items.len(), 1);
        // JSON Lines: a key given twice, at the top or inside fields, is refused naming it (it
        // was read as its last value).
        let lines = b"{\"id\": \"a\", \"title\": \"One\", \"title\": \"Two\"}\n{\"id\": \"b\", \"title\": \"B\", \"fields\": {\"brand\": \"x\", \"brand\": \"y\"}}\n{\"id\": \"c\", \"title\": \"C\"}\n";
        let catalog = read_catalog(&file(&dir, "twice.jsonl", lines), &CatalogFormat::default()).unwrap();
        let named: Vec<(u64, Option<&str>)> = catalog.rejects.iter().map(|r| (r.line, r.field.as_deref())).collect();
        assert_eq!(named, [(1, Some("title")), (2, Some("brand"))], "{:?}", catalog.rejects);
        assert_eq!(catalog.items.len(), 1);
        // Columns read by default when present count too.
        let texts = file(&dir, "texts.csv", b"id,title,text,text\n1,A,one,two\n");
        let error = read_catalog(&texts, &CatalogFormat::default()).unwrap_err().to_string();
        assert!(error.contains("names column \"text\" 2 times"), "{error}");
        let items: HashMap<&str, u32> = [("1", 0)].into_iter().collect();
        let events = file(&dir, "weights.csv", b"user,item,weight,weight\nu,1,1,5\n");
        let error = read_interactions(&events, &InteractionFormat::default(), &items, &[]).unwrap_err().to_string();
        assert!(error.contains("names column \"weight\" 2 times"), "{error}");
    }

    /// A file separated by something else reads as one column: the refusal says so, and for
    /// MovieLens's own layouts names the converter.
    #[test]
    fn a_file_with_another_separator_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let items: HashMap<&str, u32> = HashMap::new();
        let format = InteractionFormat { user_column: "userId".into(), ..InteractionFormat::default() };
        for (name, content, separator) in [
            ("ratings.dat", &b"1::1193::5::978300760\n"[..], "\"::\""),
            ("u.data", b"196\t242\t3\t881250949\n", "\"\\t\""),
            ("semi.csv", b"user;item\nu;1\n", "\";\""),
        ] {
            let error = read_interactions(&file(&dir, name, content), &format, &items, &[]).unwrap_err().to_string();
            assert!(error.contains(&format!("one column holding {separator}")), "{error}");
            assert_eq!(error.contains("scripts/movielens_csv.py"), separator != "\";\"", "{error}");
        }
        let error = read_interactions(&file(&dir, "e.csv", b"user,item\n"), &format, &items, &[]).unwrap_err();
        assert!(!error.to_string().contains("one column"), "{error}");
    }
}
