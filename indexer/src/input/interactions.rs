//! Interactions: user–item events from CSV, each row checked against the catalog.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyrank_engine::live::{MAX_WEIGHT, MIN_WEIGHT};

use super::{
    column, column_if_present, csv_headers, csv_line, csv_reader, malformed_csv, read_failed, reject, repeats_header,
    HEADER_AGAIN,
};
use crate::error::{Cause, IndexError, Reject, Result};

/// How to read interactions.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionFormat {
    /// User column.
    pub user_column: String,
    /// Item column.
    pub item_column: String,
    /// Weight column; `None` uses `weight` if the header has it, else 1 for every row.
    pub weight_column: Option<String>,
    /// Timestamp column (integer); `None` uses `timestamp` if the header has it.
    pub time_column: Option<String>,
}

impl Default for InteractionFormat {
    fn default() -> Self {
        InteractionFormat {
            user_column: "user".into(),
            item_column: "item".into(),
            weight_column: None,
            time_column: None,
        }
    }
}

/// One accepted interaction row.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRow {
    /// User id.
    pub user: String,
    /// Item index in the catalog.
    pub item: u32,
    /// Interaction value (> 0).
    pub weight: f32,
    /// Timestamp, if the file has one.
    pub timestamp: Option<i64>,
}

/// Interactions after validation.
#[derive(Debug, Default)]
pub struct Interactions {
    /// Accepted rows in input order.
    pub rows: Vec<InteractionRow>,
    /// Rejected rows.
    pub rejects: Vec<Reject>,
    /// Rows [`Interactions::keep_positives`] moved out of `rows` as below its minimum, in
    /// input order: interactions, not positives (a film rated 1 was seen).
    pub below: Vec<InteractionRow>,
    /// For a file with no weight column (no `weight` header, no `--weight-column`), where
    /// every row weighs 1: the columns no role reads (a `rating` meant as the weight).
    pub unweighted: Option<Vec<String>>,
}

impl Interactions {
    /// Keeps the rows weighing at least `min_weight` as positives, `eval recommend`'s rule: one
    /// row per user and item (the first, with the latest timestamp of the kept ones), weighing
    /// 1, in input order. The rows below move to `below`; returns how many they are.
    pub fn keep_positives(&mut self, min_weight: f32) -> usize {
        let (rows, below): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.rows).into_iter().partition(|row| row.weight >= min_weight);
        self.rows = rows;
        let count = below.len();
        self.below.extend(below);
        let mut first: HashMap<(String, u32), usize> = HashMap::with_capacity(self.rows.len());
        let mut kept: Vec<InteractionRow> = Vec::with_capacity(self.rows.len());
        for row in self.rows.drain(..) {
            match first.entry((row.user.clone(), row.item)) {
                std::collections::hash_map::Entry::Occupied(at) => {
                    let earlier = &mut kept[*at.get()];
                    earlier.timestamp = earlier.timestamp.max(row.timestamp);
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(kept.len());
                    kept.push(InteractionRow { weight: 1.0, ..row });
                }
            }
        }
        self.rows = kept;
        count
    }
}

/// Reads an interactions CSV, resolving item ids through `item_index`. A row naming an item
/// the index lacks is rejected; when `catalog_rejects` holds that item's row, the reject says
/// so and why, rather than "not in the catalog".
pub fn read_interactions(
    path: &Path,
    format: &InteractionFormat,
    item_index: &HashMap<&str, u32>,
    catalog_rejects: &[Reject],
) -> Result<Interactions> {
    let mut rejected: HashMap<&str, &Reject> = HashMap::new();
    for refused in catalog_rejects {
        if let Some(id) = &refused.id {
            rejected.entry(id.as_str()).or_insert(refused);
        }
    }
    let (mut reader, quotes) = csv_reader(path)?;
    let headers = csv_headers(path, &mut reader, &quotes)?;
    let user = column(path, &headers, &format.user_column, "--user-column")?;
    let item = column(path, &headers, &format.item_column, "--item-column")?;
    let optional = |explicit: &Option<String>, default: &str, flag: &str| -> Result<Option<(String, usize)>> {
        match explicit {
            Some(name) => Ok(Some((name.clone(), column(path, &headers, name, flag)?))),
            None => Ok(column_if_present(path, &headers, default)?.map(|i| (default.to_string(), i))),
        }
    };
    let weight = optional(&format.weight_column, "weight", "--weight-column")?;
    let time = optional(&format.time_column, "timestamp", "--time-column")?;
    // One column read in two roles (`--user-column item --item-column item`) makes rows of
    // nonsense that read as valid: refused, naming both flags.
    let roles = [("--user-column", Some(user)), ("--item-column", Some(item))]
        .into_iter()
        .chain([("--weight-column", weight.as_ref().map(|w| w.1)), ("--time-column", time.as_ref().map(|t| t.1))]);
    let roles: Vec<(&str, usize)> = roles.filter_map(|(flag, at)| at.map(|at| (flag, at))).collect();
    for (k, &(flag, at)) in roles.iter().enumerate() {
        if let Some(&(other, _)) = roles[..k].iter().find(|&&(_, earlier)| earlier == at) {
            return Err(IndexError::Input {
                path: path.to_path_buf(),
                reason: format!(
                    "{other} and {flag} name the same column ({:?}); each role needs a column of its own",
                    headers.get(at).unwrap_or_default().trim()
                ),
            });
        }
    }
    let mut out = Interactions::default();
    if weight.is_none() {
        // Said, not assumed: a `rating` column under another name was read as nothing, and
        // every row weighed 1 without a word (a user's test).
        let read: Vec<usize> = roles.iter().map(|&(_, at)| at).collect();
        let unread: Vec<String> = (0..headers.len())
            .filter(|at| !read.contains(at))
            .map(|at| headers.get(at).unwrap_or_default().trim().to_string())
            .collect();
        if !unread.is_empty() {
            // A file of users, items and times alone weighs every row 1 by design: no word.
            tracing::warn!(
                file = %path.display(),
                "no weight column (no \"weight\" header, no --weight-column): every row weighs 1; columns not \
                 read: {unread:?}"
            );
        }
        out.unweighted = Some(unread);
    }
    let file: PathBuf = path.to_path_buf();
    // Read by hand, not through `records()`, so that after a malformed row the reader's
    // position says where that row ended.
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                read_failed(path, &e, reader.position())?;
                out.rejects.push(malformed_csv(&file, &e, &headers, &reader));
                continue;
            }
        }
        let line = csv_line(record.position());
        if repeats_header(&record, &headers) {
            out.rejects.push(reject(&file, line, None, HEADER_AGAIN));
            continue;
        }
        let get = |i: usize| record.get(i).unwrap_or("").trim();
        let user_id = get(user);
        if let Some(problem) = hyrank_engine::item::id_problem(user_id) {
            out.rejects.push(reject(&file, line, Some(&format.user_column), format!("user {problem}")));
            continue;
        }
        let item_id = get(item);
        let Some(&item_idx) = item_index.get(item_id) else {
            // A row naming an item refused for being empty is of that kind too: what
            // `skip-empty` passes over with the item.
            let (reason, cause) = match rejected.get(item_id) {
                _ if item_id.is_empty() => ("item is empty".to_string(), Cause::Other),
                Some(refused) => (
                    format!("item {item_id:?} is not indexed: its catalog row was rejected ({refused})"),
                    if refused.is_empty_item() { Cause::EmptyItem } else { Cause::Other },
                ),
                None => (format!("unknown item {item_id:?}: not in the catalog"), Cause::Other),
            };
            out.rejects.push(reject(&file, line, Some(&format.item_column), reason).because(cause));
            continue;
        };
        let weight_value = match &weight {
            None => 1.0,
            // The bound live events have (`POST /v1/events`), so a weight a file may hold is
            // one the API takes, and ALS's confidences stay inside f32's range.
            Some((name, i)) => match get(*i).parse::<f32>() {
                Ok(w) if (MIN_WEIGHT..=MAX_WEIGHT).contains(&w) => w,
                Ok(_) => {
                    out.rejects.push(reject(
                        &file,
                        line,
                        Some(name),
                        format!(
                            "{:?} is not a weight from {MIN_WEIGHT:e} (f32's smallest normal number) to {MAX_WEIGHT} \
                             (ALS confidence needs a positive one; the bounds are the live events')",
                            get(*i)
                        ),
                    ));
                    continue;
                }
                Err(_) => {
                    out.rejects.push(reject(&file, line, Some(name), format!("{:?} is not a number", get(*i))));
                    continue;
                }
            },
        };
        let timestamp = match &time {
            None => None,
            // An empty cell is a time not known (what a table export writes for a missing
            // value), as a row without the column is: the row counts, without recency.
            Some((_, i)) if get(*i).trim().is_empty() => None,
            Some((name, i)) => match get(*i).parse::<i64>() {
                Ok(t) => Some(t),
                Err(_) => {
                    out.rejects.push(reject(
                        &file,
                        line,
                        Some(name),
                        format!("{:?} is not an integer timestamp", get(*i)),
                    ));
                    continue;
                }
            },
        };
        out.rows.push(InteractionRow { user: user_id.to_string(), item: item_idx, weight: weight_value, timestamp });
    }
    quotes.finished(path)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{file, reasons};
    use super::*;

    /// One column in two roles is refused naming both flags, the default `weight` and
    /// `timestamp` columns included.
    #[test]
    fn a_column_read_in_two_roles_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "e.csv", b"user,item,weight\nu1,1,4\n");
        let items: HashMap<&str, u32> = [("1", 0)].into_iter().collect();
        let read = |format: InteractionFormat| read_interactions(&path, &format, &items, &[]).map(|r| r.rows.len());
        let same = InteractionFormat { user_column: "item".into(), ..InteractionFormat::default() };
        let error = read(same).unwrap_err().to_string();
        assert!(error.contains("--user-column and --item-column name the same column (\"item\")"), "{error}");
        let time = InteractionFormat { time_column: Some("weight".into()), ..InteractionFormat::default() };
        let error = read(time).unwrap_err().to_string();
        assert!(error.contains("--weight-column and --time-column name the same column"), "{error}");
        assert_eq!(read(InteractionFormat::default()).unwrap(), 1);
    }

    #[test]
    fn positives_are_the_rows_at_least_the_minimum_once_per_pair_weighing_one() {
        let row = |user: &str, item, weight, timestamp| InteractionRow { user: user.into(), item, weight, timestamp };
        let mut read = Interactions {
            rows: vec![
                row("1", 0, 4.0, Some(5)),
                row("1", 1, 2.5, Some(6)),
                row("2", 0, 5.0, None),
                row("1", 0, 4.5, Some(9)),
            ],
            ..Interactions::default()
        };
        assert_eq!(read.keep_positives(4.0), 1);
        assert_eq!(read.rows, [row("1", 0, 1.0, Some(9)), row("2", 0, 1.0, None)]);
        assert_eq!(read.below, [row("1", 1, 2.5, Some(6))], "kept as seen, not dropped");
    }

    #[test]
    fn interaction_rows_are_validated_and_unknown_items_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "ratings.csv", b"userId,movieId,rating,timestamp\n1,a,4.0,100\n1,zzz,3,101\n2,a,-1,102\n2,a,x,103\n,a,1,104\n3,a,2,soon\n3,a,2\n4,b,1,105\nu\x07v,a,1,106\n5,a,2,\n");
        let index: HashMap<&str, u32> = HashMap::from([("a", 0)]);
        // Item b's catalog row was refused: a row naming b says so, not "not in the catalog".
        let catalog = Path::new("items.csv");
        let refused = [reject(catalog, 7, Some("title/text"), "empty item: title and text are both empty")
            .with_id("b")
            .because(Cause::EmptyItem)];
        let format = InteractionFormat {
            user_column: "userId".into(),
            item_column: "movieId".into(),
            weight_column: Some("rating".into()),
            time_column: None,
        };
        let read = read_interactions(&path, &format, &index, &refused).unwrap();
        // The last row's empty timestamp is a time not known, not a fault.
        let kept = [
            InteractionRow { user: "1".into(), item: 0, weight: 4.0, timestamp: Some(100) },
            InteractionRow { user: "5".into(), item: 0, weight: 2.0, timestamp: None },
        ];
        assert_eq!(read.rows, kept);
        let got = reasons(&read.rejects);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(got[0].2.contains("unknown item \"zzz\""));
        assert!(got[1].2.contains("positive"));
        assert!(got[2].2.contains("not a number"));
        assert!(got[3].2.contains("user is empty"));
        assert_eq!(got[4].1.as_deref(), Some("timestamp"));
        assert_eq!(got[5].2, "malformed CSV: this row has 3 fields and the header 4");
        assert_eq!(
            got[6].2,
            "item \"b\" is not indexed: its catalog row was rejected (items.csv:7: field `title/text`: empty item: \
             title and text are both empty)"
        );
        // A row naming an empty item is of the empty item's kind, which `skip-empty` passes over;
        // no other reject is.
        let empty: Vec<bool> = read.rejects.iter().map(Reject::is_empty_item).collect();
        assert_eq!(empty, [false, false, false, false, false, false, true, false]);
        assert_eq!(
            (got[7].1.as_deref(), got[7].2.as_str()),
            (Some("userId"), "user \"u\\u{7}v\" holds the control character or line separator U+0007")
        );
        assert_eq!(read.unweighted, None, "a weight column was read");
    }

    /// A file whose weight column has another name than `weight`, with no `--weight-column`:
    /// every row weighs 1, and the columns no role read are named (the rating was dropped
    /// without a word, and `--min-weight` then said no row reached it).
    #[test]
    fn a_file_without_a_weight_column_names_the_columns_it_did_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "ratings.csv", b"user,item,rating,timestamp\n1,a,4.5,100\n");
        let index: HashMap<&str, u32> = HashMap::from([("a", 0)]);
        let read = read_interactions(&path, &InteractionFormat::default(), &index, &[]).unwrap();
        assert_eq!(read.rows[0].weight, 1.0);
        assert_eq!(read.unweighted, Some(vec!["rating".to_string()]));
    }

    /// Two files joined with both headers kept, a header written with spaces after its commas,
    /// and an empty file: each named for what it is.
    #[test]
    fn a_repeated_header_a_spaced_header_and_an_empty_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let index: HashMap<&str, u32> = HashMap::from([("a", 0)]);
        let format = InteractionFormat {
            user_column: "userId".into(),
            item_column: "movieId".into(),
            weight_column: None,
            time_column: None,
        };
        let path = file(&dir, "joined.csv", b"userId, movieId\n1, a\nuserId, movieId\n2,a\n");
        let read = read_interactions(&path, &format, &index, &[]).unwrap();
        assert_eq!(read.rows.len(), 2, "the spaced header names its columns");
        assert_eq!(reasons(&read.rejects), [(3, None, HEADER_AGAIN.to_string())]);
        let empty = file(&dir, "empty.csv", b"");
        let error = read_interactions(&empty, &format, &index, &[]).unwrap_err().to_string();
        assert!(error.contains("the header line is empty (or the file is)"), "{error}");
    }
}
