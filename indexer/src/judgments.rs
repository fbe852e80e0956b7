//! Readers of relevance supervision: BEIR judgments (`qrels/<split>.tsv`, `queries.jsonl`) and
//! click logs. Like the catalog readers, each reads the whole file and reports every bad row at
//! once (file, line, field), rather than stopping at the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::error::{IndexError, Reject, Result, NOT_UTF8, UTF8_ADVICE};
use crate::eval::metrics::Judgments;

/// The file's text, without the UTF-8 byte-order mark some editors and exports put first
/// (the catalog reader skips it the same way).
/// UTF-16 or UTF-32 is refused naming the encoding, other bytes that are not UTF-8 naming the
/// line.
fn read(path: &Path) -> Result<String> {
    let fail = |reason: String| IndexError::Input { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if let Some(refusal) = crate::input::wide_encoding_refusal(&bytes, false) {
        return Err(fail(refusal));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
        fail(format!("line {line} is {NOT_UTF8} (byte {valid}): {UTF8_ADVICE}"))
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

fn reject(path: &Path, line: usize, field: Option<&str>, reason: impl Into<String>) -> Reject {
    Reject {
        file: path.to_path_buf(),
        line: line as u64,
        field: field.map(str::to_string),
        id: None,
        reason: reason.into(),
        cause: Default::default(),
    }
}

/// `Ok(value)` when no row was rejected, else every reject.
fn all_or_rejects<T>(value: T, rejects: Vec<Reject>) -> Result<T> {
    if rejects.is_empty() {
        Ok(value)
    } else {
        Err(IndexError::BadRows { rejects })
    }
}

/// Non-blank lines with their 1-based numbers, the header (when its first field is `header`)
/// skipped, split on tabs.
fn tsv_rows<'a>(text: &'a str, header: &'a str) -> impl Iterator<Item = (usize, Vec<&'a str>)> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| (number + 1, line.split('\t').collect::<Vec<_>>()))
        .filter(move |(line, fields)| !(*line == 1 && fields.first() == Some(&header)))
}

/// Reads `qrels/<split>.tsv` (header `query-id corpus-id score`): query id → item id → grade.
/// A pair judged twice with the same grade is read once; with two grades it is refused, since
/// which one the judges meant is not the reader's to choose.
///
/// # Errors
/// An unreadable file, a file with no judgments, or every row without three fields, with a
/// grade that is not an integer, or judging a pair an earlier row judged otherwise.
pub fn read_qrels(path: &Path) -> Result<BTreeMap<String, Judgments>> {
    let text = read(path)?;
    let mut qrels: BTreeMap<String, Judgments> = BTreeMap::new();
    let mut first_line: HashMap<(String, String), usize> = HashMap::new();
    let mut rejects = Vec::new();
    for (line, mut fields) in tsv_rows(&text, "query-id") {
        // Empty fields after the third are a trailing tab, not data (BEIR's loader reads the
        // first three columns).
        while fields.len() > 3 && fields.last().is_some_and(|f| f.trim().is_empty()) {
            fields.pop();
        }
        let [query, doc, grade] = fields[..] else {
            rejects.push(reject(
                path,
                line,
                None,
                format!("expected 3 tab-separated fields: query-id, corpus-id, score; found {}", fields.len()),
            ));
            continue;
        };
        let grade = match grade.trim().parse::<i64>().map(i32::try_from) {
            Ok(Ok(grade)) => grade,
            Ok(Err(_)) => {
                rejects.push(reject(path, line, Some("score"), format!("{grade:?} is out of range for a grade")));
                continue;
            }
            // A first line that is a header other than BEIR's reads as a row with a word for a grade.
            Err(_) if line == 1 => {
                rejects.push(reject(
                    path,
                    line,
                    Some("score"),
                    format!("{grade:?} is not an integer (a header line must be BEIR's: query-id, corpus-id, score)"),
                ));
                continue;
            }
            Err(_) => {
                rejects.push(reject(path, line, Some("score"), format!("{grade:?} is not an integer")));
                continue;
            }
        };
        let judged = qrels.entry(query.to_string()).or_default();
        match judged.get(doc) {
            Some(&earlier) if earlier != grade => {
                let first = first_line[&(query.to_string(), doc.to_string())];
                rejects.push(reject(
                    path,
                    line,
                    Some("score"),
                    format!("{query} judges {doc} {grade}, but line {first} judged it {earlier}"),
                ));
            }
            Some(_) => {}
            None => {
                judged.insert(doc.to_string(), grade);
                first_line.insert((query.to_string(), doc.to_string()), line);
            }
        }
    }
    if rejects.is_empty() && qrels.is_empty() {
        return Err(IndexError::Input { path: path.to_path_buf(), reason: "holds no judgments".into() });
    }
    all_or_rejects(qrels, rejects)
}

/// Reads `queries.jsonl` (`_id`, `text`): query id → text, for the ids `wanted` accepts (the
/// judged ones of a split: a BEIR file holds every split's queries, and what is wrong with a
/// query no split being evaluated judges does not stop the evaluation, as BEIR's loader keeps
/// only the judged ones). An id given twice with the same text is read once; with two texts
/// it is refused.
///
/// # Errors
/// An unreadable file, or every line that is not JSON or lacks a string or integer `_id`, and
/// every line of a wanted id that lacks a string `text` or gives an earlier line's id another
/// text.
pub fn read_queries(path: &Path, mut wanted: impl FnMut(&str) -> bool) -> Result<HashMap<String, String>> {
    let text = read(path)?;
    let mut queries: HashMap<String, (String, usize)> = HashMap::new();
    let mut rejects = Vec::new();
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line_no = number + 1;
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(e) => {
                rejects.push(reject(path, line_no, None, format!("malformed JSON: {e}")));
                continue;
            }
        };
        // An integer id reads as its digits, as the corpus reader reads `"_id": 7`.
        let id = match &value["_id"] {
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            other => other.as_str().map(str::to_string),
        };
        match (id.as_deref(), value["text"].as_str()) {
            (Some(id), _) if !wanted(id) => {}
            (Some(id), Some(text)) => match queries.get(id) {
                Some((earlier, first)) if earlier != text => rejects.push(reject(
                    path,
                    line_no,
                    Some("_id"),
                    format!("query {id:?} was given another text on line {first}"),
                )),
                Some(_) => {}
                None => {
                    queries.insert(id.to_string(), (text.to_string(), line_no));
                }
            },
            (None, _) => {
                rejects.push(reject(path, line_no, Some("_id"), "missing, or neither a string nor an integer"))
            }
            (_, None) => rejects.push(reject(path, line_no, Some("text"), "missing or not a string")),
        }
    }
    all_or_rejects(queries.into_iter().map(|(id, (text, _))| (id, text)).collect(), rejects)
}

/// A split's judgments and the text of each judged query ([`read_judged`]).
#[derive(Debug)]
pub struct Judged {
    /// Query id → judged document id → grade.
    pub qrels: BTreeMap<String, Judgments>,
    /// Judged query id → text: every judged query has one with something to search.
    pub queries: HashMap<String, String>,
    /// Distinct query ids in queries.jsonl that this split does not judge (not read further).
    pub unjudged_queries: usize,
}

/// The judged queries of `split` under `data` (BEIR layout) and their texts, checked for what
/// would stop an evaluation: a missing split (naming those there are), a judged query with no
/// text or nothing to search. Queries of other splits are counted, not read, as BEIR's loader
/// keeps only the judged ones. Cheap, so `hyrank eval search` runs it before indexing a
/// corpus, which may take hours.
///
/// # Errors
/// [`IndexError::Input`] naming the file, or [`IndexError::BadRows`] naming every bad row.
pub fn read_judged(data: &Path, split: &str) -> Result<Judged> {
    let input_error = |path: &Path, reason: String| IndexError::Input { path: path.to_path_buf(), reason };
    let qrels_path = data.join("qrels").join(format!("{split}.tsv"));
    if !qrels_path.is_file() {
        let mut splits: Vec<String> = std::fs::read_dir(data.join("qrels"))
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok()?.strip_suffix(".tsv").map(str::to_string))
            .collect();
        splits.sort();
        let there =
            if splits.is_empty() { "no split".to_string() } else { format!("the splits are {}", splits.join(", ")) };
        return Err(input_error(&qrels_path, format!("no such file: split {split:?} has no judgments here; {there}")));
    }
    let qrels = read_qrels(&qrels_path)?;
    let queries_path = data.join("queries.jsonl");
    let mut unjudged = HashSet::new();
    let queries = read_queries(&queries_path, |id| {
        let judged = qrels.contains_key(id);
        if !judged && !unjudged.contains(id) {
            unjudged.insert(id.to_string());
        }
        judged
    })?;
    // Every judged query must be one the engine can run, checked before any is: all of those
    // that are not named at once, as a reader names all its bad rows.
    let refuse = |path: &Path, ids: Vec<&String>, what: String| -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = ids.iter().take(10).map(|id| id.as_str()).collect();
        let more = if ids.len() > 10 { ", …" } else { "" };
        Err(input_error(path, format!("{} judged queries {what}: {}{more}", ids.len(), shown.join(", "))))
    };
    refuse(
        &qrels_path,
        qrels.keys().filter(|q| !queries.contains_key(*q)).collect(),
        format!("have no text in {}", queries_path.display()),
    )?;
    refuse(
        &queries_path,
        qrels.keys().filter(|q| hyrank_engine::request::query_text(Some(&queries[*q])).is_none()).collect(),
        "have no text to search (empty, or only punctuation and invisible characters)".into(),
    )?;
    Ok(Judged { qrels, queries, unjudged_queries: unjudged.len() })
}

/// Reads a click log (tab-separated `query item clicked`, an optional header starting with
/// `query`): query text → item id → 1 if any impression was clicked, else 0. Items must be in
/// `known` (the generation's catalog).
///
/// # Errors
/// An unreadable file, or every row with the wrong number of fields, an empty query, an item
/// not in the catalog, or `clicked` other than 1/0/true/false.
pub fn read_click_log(path: &Path, known: &HashSet<&str>) -> Result<BTreeMap<String, Judgments>> {
    let text = read(path)?;
    let mut by_query: BTreeMap<String, Judgments> = BTreeMap::new();
    let mut rejects = Vec::new();
    for (line, fields) in tsv_rows(&text, "query") {
        let [query, item, clicked] = fields[..] else {
            rejects.push(reject(path, line, None, "expected query, item, clicked (tab-separated)"));
            continue;
        };
        let mut bad = |field: &str, reason: String| rejects.push(reject(path, line, Some(field), reason));
        let grade = match clicked.trim() {
            "1" | "true" => Some(1),
            "0" | "false" => Some(0),
            other => {
                bad("clicked", format!("{other:?} is not 1 or 0"));
                None
            }
        };
        if query.trim().is_empty() {
            bad("query", "is empty".into());
            continue;
        }
        if !known.contains(item) {
            bad("item", format!("{item:?} is not in the catalog"));
            continue;
        }
        if let Some(grade) = grade {
            let entry = by_query.entry(query.trim().to_string()).or_default().entry(item.to_string()).or_insert(0);
            *entry = (*entry).max(grade);
        }
    }
    all_or_rejects(by_query, rejects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, content: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn rejected(result: Result<impl std::fmt::Debug>) -> Vec<(u64, Option<String>)> {
        match result {
            Err(IndexError::BadRows { rejects }) => rejects.into_iter().map(|r| (r.line, r.field)).collect(),
            other => panic!("expected rejects, got {other:?}"),
        }
    }

    #[test]
    fn a_byte_order_mark_before_the_first_line_is_not_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "queries.jsonl", "\u{feff}{\"_id\": \"1\", \"text\": \"tents\"}\n");
        assert_eq!(read_queries(&path, |_| true).unwrap()["1"], "tents");
        // An integer id is its digits, as in the corpus; a fraction is no id.
        std::fs::write(&path, "{\"_id\": 7, \"text\": \"mugs\"}\n").unwrap();
        assert_eq!(read_queries(&path, |_| true).unwrap()["7"], "mugs");
        std::fs::write(&path, "{\"_id\": 7.5, \"text\": \"mugs\"}\n").unwrap();
        assert!(read_queries(&path, |_| true).unwrap_err().to_string().contains("neither a string nor an integer"));
        // Other encodings are named for the file, bytes that are not UTF-8 by their line.
        let wide: Vec<u8> = "{\"_id\": \"1\"}\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        std::fs::write(&path, wide).unwrap();
        let error = read_queries(&path, |_| true).unwrap_err().to_string();
        assert!(error.contains("the file is UTF-16 (little-endian)"), "{error}");
        std::fs::write(&path, b"{\"_id\": \"1\", \"text\": \"a\"}\n{\"_id\": \"2\", \"text\": \"\xff\"}\n").unwrap();
        let error = read_queries(&path, |_| true).unwrap_err().to_string();
        assert!(error.contains("line 2 is not valid UTF-8"), "{error}");
    }

    #[test]
    fn every_bad_click_row_is_reported_not_just_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = "query\titem\tclicked\n\
                   tent\ta\t1\n\
                   tent\tzzz\t1\n\
                   \tb\t0\n\
                   mug\tb\tmaybe\n\
                   only two\tfields\n\
                   tent\tb\t0\n";
        let path = file(&dir, "clicks.tsv", log);
        let known: HashSet<&str> = ["a", "b"].into_iter().collect();
        let found = rejected(read_click_log(&path, &known));
        assert_eq!(
            found,
            [(3, Some("item".into())), (4, Some("query".into())), (5, Some("clicked".into())), (6, None)]
        );
        let good = file(&dir, "good.tsv", "tent\ta\t1\ntent\ta\t0\ntent\tb\tfalse\n");
        let judged = read_click_log(&good, &known).unwrap();
        assert_eq!(judged["tent"]["a"], 1, "a click on any impression makes it relevant");
        assert_eq!(judged["tent"]["b"], 0);
    }

    #[test]
    fn qrels_and_queries_report_every_bad_row() {
        let dir = tempfile::tempdir().unwrap();
        let qrels = file(&dir, "q.tsv", "query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\n3\td3\thigh\n4\td4\t2\n");
        assert_eq!(rejected(read_qrels(&qrels)), [(3, None), (4, Some("score".into()))]);
        let ok = file(&dir, "ok.tsv", "query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\t\n");
        assert_eq!(read_qrels(&ok).unwrap()["1"].len(), 2, "a trailing tab is no fourth field");
        let four = file(&dir, "four.tsv", "1\tQ0\td1\t1\n");
        assert_eq!(rejected(read_qrels(&four)), [(1, None)], "TREC's four columns are refused");
        let queries = file(
            &dir,
            "q.jsonl",
            "{\"_id\":\"1\",\"text\":\"a\"}\nnot json\n{\"_id\":[2],\"text\":\"b\"}\n{\"_id\":\"3\"}\n",
        );
        assert_eq!(
            rejected(read_queries(&queries, |_| true)),
            [(2, None), (3, Some("_id".into())), (4, Some("text".into()))]
        );
    }

    /// What a judgment file says twice is read once when it agrees and refused when it does
    /// not (the last row used to win silently); a file with no judgments is an error, not a
    /// report of zeros.
    #[test]
    fn repeated_judgments_must_agree_and_an_empty_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let twice = file(&dir, "twice.tsv", "q1\td1\t2\nq1\td1\t2\nq1\td1\t0\nq1\td2\t1\tx\n");
        let error = read_qrels(&twice).unwrap_err();
        let IndexError::BadRows { rejects } = &error else { panic!("{error:?}") };
        assert_eq!(rejects.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(rejects[0].reason, "q1 judges d1 0, but line 1 judged it 2");
        assert!(rejects[1].reason.ends_with("found 4"), "{}", rejects[1].reason);
        let agreed = file(&dir, "agreed.tsv", "q1\td1\t2\nq1\td1\t2\n");
        assert_eq!(read_qrels(&agreed).unwrap()["q1"]["d1"], 2);
        for content in ["", "query-id\tcorpus-id\tscore\n", "\n\n"] {
            let empty = file(&dir, "empty.tsv", content);
            assert!(read_qrels(&empty).unwrap_err().to_string().contains("holds no judgments"), "{content:?}");
        }
        let header = file(&dir, "header.tsv", "query_id\tdoc_id\trelevance\nq1\td1\t1\n");
        let error = read_qrels(&header).unwrap_err().to_string();
        assert!(error.contains("a header line must be BEIR's"), "{error}");
        let huge = file(&dir, "huge.tsv", "q1\td1\t99999999999\n");
        assert!(read_qrels(&huge).unwrap_err().to_string().contains("out of range"));
        let queries = file(
            &dir,
            "queries.jsonl",
            "{\"_id\":\"q1\",\"text\":\"tents\"}\n{\"_id\":\"q1\",\"text\":\"tents\"}\n{\"_id\":\"q1\",\"text\":\"mugs\"}\n",
        );
        let error = read_queries(&queries, |_| true).unwrap_err();
        let IndexError::BadRows { rejects } = &error else { panic!("{error:?}") };
        assert_eq!((rejects.len(), rejects[0].line), (1, 3));
        assert_eq!(rejects[0].reason, "query \"q1\" was given another text on line 1");
        // A query the split does not judge is not read, nor refused for what is wrong with it.
        std::fs::write(&queries, "{\"_id\":\"q1\",\"text\":\"a\"}\n{\"_id\":\"q1\",\"text\":\"b\"}\n{\"_id\":\"q2\"}\n{\"_id\":\"q3\",\"text\":\"c\"}\n").unwrap();
        assert_eq!(read_queries(&queries, |id| id == "q3").unwrap(), HashMap::from([("q3".into(), "c".into())]));
        assert_eq!(
            rejected(read_queries(&queries, |id| id != "q3")),
            [(2, Some("_id".into())), (3, Some("text".into()))]
        );
    }
}
