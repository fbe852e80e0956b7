//! Catalogs: items from JSON Lines (BEIR's corpus layout included) or CSV, each checked
//! (non-empty, unique id; title or text) and every bad row reported.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub use hyrank_engine::item::FieldType;
use hyrank_engine::item::{FieldValue, Item};

use super::{
    column, column_if_present, csv_headers, csv_line, csv_reader, malformed_csv, not_utf8, read_failed, reject,
    repeats_header, HEADER_AGAIN,
};
use crate::error::{Cause, Reject, Result};
pub use jsonl::not_json_lines;
use jsonl::read_jsonl;

mod jsonl;

/// How to read a catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogFormat {
    /// JSON Lines or CSV; `None` picks by file extension.
    pub kind: Option<CatalogKind>,
    /// CSV: the id column.
    pub id_column: String,
    /// CSV: the title column.
    pub title_column: String,
    /// CSV: columns joined (with ". ") into the text; none means the `text` column if the
    /// header has one, else no text.
    pub text_columns: Vec<String>,
    /// CSV: columns stored as fields.
    pub field_columns: Vec<String>,
    /// CSV: split field values holding this separator into lists (e.g. MovieLens genres, `|`);
    /// a column some cells split is a list field, one none does is typed as any other.
    pub list_separator: Option<String>,
    /// Fields whose type the catalog team declares (`--field-type price=number`): a row whose
    /// value does not fit is refused, naming the line and field. Other fields' types are
    /// inferred over the whole catalog ([`FieldType`]).
    pub field_types: BTreeMap<String, FieldType>,
    /// JSON Lines: read keys other than id, title and text as fields. Off, they are passed
    /// over unread, as BEIR's loader passes over `metadata` (`eval search`: a judged corpus's
    /// metadata, nested objects and all, is no concern of relevance).
    pub json_fields: bool,
}

impl CatalogFormat {
    /// How the catalog at `path` is read: as `kind` says, else CSV for a name ending in `.csv`,
    /// `.csv.gz` or `.csv.zst` (any case), else JSON Lines.
    pub fn kind_of(&self, path: &Path) -> CatalogKind {
        self.kind.unwrap_or_else(|| {
            let name = path.file_name().unwrap_or_default().to_string_lossy().to_ascii_lowercase();
            if name.ends_with(".csv") || name.ends_with(".csv.gz") || name.ends_with(".csv.zst") {
                CatalogKind::Csv
            } else {
                CatalogKind::Jsonl
            }
        })
    }
}

impl Default for CatalogFormat {
    fn default() -> Self {
        CatalogFormat {
            kind: None,
            id_column: "id".into(),
            title_column: "title".into(),
            text_columns: Vec::new(),
            field_columns: Vec::new(),
            list_separator: None,
            field_types: BTreeMap::new(),
            json_fields: true,
        }
    }
}

/// Catalog file kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CatalogKind {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated with a header.
    Csv,
}

/// A catalog after validation, items in input order.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Accepted items.
    pub items: Vec<Item>,
    /// Rejected rows.
    pub rejects: Vec<Reject>,
    /// Rows that repeat an earlier row exactly (same id, title, text and fields), read once:
    /// nothing of them is lost, as a database loads the same record twice. BEIR corpora may
    /// hold such rows, and BEIR's own loader keeps one. A repeat that differs is refused.
    pub repeated_rows: usize,
    /// Each field's type, declared or inferred, as every item now holds it.
    pub field_types: BTreeMap<String, FieldType>,
    /// Fields inferred as text although some rows hold numbers (the rest do not read as
    /// numbers), with those counts: declaring the type refuses the rows that do not fit.
    pub mixed_fields: Vec<(String, usize, usize)>,
}

/// Checks id uniqueness and emptiness, shared by both formats.
struct ItemValidator<'a> {
    file: &'a Path,
    /// What a reject names the id by: the row's key in JSON Lines (`id`, or `_id` as BEIR
    /// writes it), the id column in a CSV file.
    id_name: String,
    /// What a reject names the title and text by: `title/text`, or the CSV columns read as
    /// them (`title/genres`; the title column alone where no column is text).
    content_name: String,
    /// The line of each id's first row that passed the row checks (typing may refuse it
    /// later; the line stays, for its repeats to name).
    first_line_of: HashMap<String, u64>,
    /// Rows whose id an earlier row holds, with their lines: compared with that row once
    /// fields are typed ([`unify_field_types`]), since `{"n": 1}` and `{"n": "1"}` are the same
    /// value only then.
    repeats: Vec<(u64, Item, String)>,
    catalog: Catalog,
}

impl ItemValidator<'_> {
    fn accept(&mut self, line: u64, item: Item) {
        if let Some(problem) = hyrank_engine::item::id_problem(&item.id) {
            self.catalog.rejects.push(reject(self.file, line, Some(&self.id_name), format!("id {problem}")));
        } else if hyrank_engine::item::is_blank(&item.title) && hyrank_engine::item::is_blank(&item.text) {
            self.catalog.rejects.push(
                reject(self.file, line, Some(&self.content_name), "empty item: title and text are both empty")
                    .with_id(&item.id)
                    .because(Cause::EmptyItem),
            );
        } else if self.first_line_of.contains_key(&item.id) {
            self.repeats.push((line, item, self.id_name.clone()));
        } else {
            self.first_line_of.insert(item.id.clone(), line);
            self.catalog.items.push(item);
        }
    }

    /// Settles the rows that repeat an earlier id, once every item is typed: one equal to the
    /// accepted item is read once and counted; one that differs, or whose first row was
    /// refused, is refused with its own line (so a repeat of a refused row is a refusal too,
    /// never "read once").
    fn settle_repeats(&mut self, types: &BTreeMap<String, FieldType>) {
        let position: HashMap<&str, usize> =
            self.catalog.items.iter().enumerate().map(|(at, item)| (item.id.as_str(), at)).collect();
        for (line, item, id_name) in std::mem::take(&mut self.repeats) {
            let first = self.first_line_of[&item.id];
            let refused = match (typed(item.clone(), types), position.get(item.id.as_str())) {
                (Err((name, reason)), _) => Some((name, reason)),
                (Ok(typed), Some(&at)) if self.catalog.items[at] == typed => None,
                (Ok(_), Some(_)) => Some((
                    id_name.clone(),
                    format!(
                        "duplicate id {:?} (first on line {first}) with other content (a row that repeats an earlier one exactly is read once)",
                        item.id
                    ),
                )),
                (Ok(_), None) => Some((
                    id_name,
                    format!("duplicate id {:?} of line {first}, which was refused", item.id),
                )),
            };
            match refused {
                None => self.catalog.repeated_rows += 1,
                Some((name, reason)) => {
                    self.catalog.rejects.push(reject(self.file, line, Some(&name), reason).with_id(&item.id))
                }
            }
        }
    }
}

/// Reads a catalog in JSON Lines or CSV.
pub fn read_catalog(path: &Path, format: &CatalogFormat) -> Result<Catalog> {
    let kind = format.kind_of(path);
    let (id_name, content_name) = match kind {
        CatalogKind::Jsonl => ("id".to_string(), "title/text".to_string()),
        // The CSV reader names the text columns it found.
        CatalogKind::Csv => (format.id_column.clone(), format.title_column.clone()),
    };
    let mut validator = ItemValidator {
        file: path,
        id_name,
        content_name,
        first_line_of: HashMap::new(),
        repeats: Vec::new(),
        catalog: Catalog::default(),
    };
    match kind {
        CatalogKind::Jsonl => read_jsonl(path, format.json_fields, &mut validator)?,
        CatalogKind::Csv => read_csv_catalog(path, format, &mut validator)?,
    }
    unify_field_types(&mut validator, &format.field_types);
    Ok(validator.catalog)
}

/// The type of each field of `items`: `fixed` where it names one (a declaration, or a type
/// already settled), else inferred over every value: numbers if every value reads as one, lists
/// if any value is a list, else text. Also returns the fields inferred as text although some
/// values are numbers, with the counts of numbers and of other text.
#[allow(clippy::type_complexity)]
pub fn infer_field_types(
    items: &[Item],
    fixed: &BTreeMap<String, FieldType>,
) -> (BTreeMap<String, FieldType>, Vec<(String, usize, usize)>) {
    // Per field: values that are numbers (or read as one), other text, lists.
    let mut seen: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for item in items {
        for (name, value) in &item.fields {
            let counts = seen.entry(name).or_default();
            match value {
                // Blank text is no value either way: it does not make a numeric field text.
                value if FieldType::is_blank(value) => {}
                FieldValue::List(_) => counts.2 += 1,
                value if FieldType::reads_as_number(value) => counts.0 += 1,
                _ => counts.1 += 1,
            }
        }
    }
    let (mut types, mut mixed) = (BTreeMap::new(), Vec::new());
    for (name, (numbers, texts, lists)) in seen {
        let kind = match fixed.get(name) {
            Some(kind) => *kind,
            None if lists > 0 => FieldType::List,
            None if texts == 0 => FieldType::Number,
            None => {
                if numbers > 0 {
                    mixed.push((name.to_string(), numbers, texts));
                }
                FieldType::Text
            }
        };
        types.insert(name.to_string(), kind);
    }
    (types, mixed)
}

/// Gives every field one type over the whole catalog ([`infer_field_types`]) and converts
/// every value to it ([`FieldType::coerce`]); a row whose value cannot be converted (text
/// that is not a number, for a field declared as numbers; a list, for one declared as numbers
/// or text) is refused, naming its line and field.
fn unify_field_types(validator: &mut ItemValidator<'_>, declared: &BTreeMap<String, FieldType>) {
    let (types, mixed) = infer_field_types(&validator.catalog.items, declared);
    validator.catalog.mixed_fields = mixed;
    let items = std::mem::take(&mut validator.catalog.items);
    for item in items {
        let id = item.id.clone();
        match typed(item, &types) {
            Ok(item) => validator.catalog.items.push(item),
            Err((name, reason)) => {
                let line = validator.first_line_of.get(&id).copied().unwrap_or(0);
                validator.catalog.rejects.push(reject(validator.file, line, Some(&name), reason).with_id(&id));
            }
        }
    }
    validator.settle_repeats(&types);
    validator.catalog.field_types = types;
    // Types are settled after every row is read, so their refusals came last: in line order
    // they read as the file does (a stable sort keeps one line's reasons in order).
    validator.catalog.rejects.sort_by_key(|reject| reject.line);
}

/// `item` with every field converted to its type in `types`, or the first field that does
/// not fit, with the reason. A field `types` does not name (only a repeated row's can be
/// one: no first row holds it) is kept as written, so the row differs from the accepted one,
/// unless it is blank.
fn typed(mut item: Item, types: &BTreeMap<String, FieldType>) -> std::result::Result<Item, (String, String)> {
    // Blank text in a field of numbers or lists is no value: absent, as null is; so is blank
    // text in a field no first row has (it has no type, and nothing to compare with).
    item.fields.retain(|name, value| types.get(name) == Some(&FieldType::Text) || !FieldType::is_blank(value));
    for (name, value) in item.fields.iter_mut() {
        let Some(kind) = types.get(name) else { continue };
        match kind.coerce(value) {
            Ok(converted) => *value = converted,
            Err(found) => {
                let reason = format!("field {name} is declared as {}, found {found}", kind.described());
                return Err((name.clone(), reason));
            }
        }
    }
    Ok(item)
}

fn read_csv_catalog(path: &Path, format: &CatalogFormat, validator: &mut ItemValidator<'_>) -> Result<()> {
    let (mut reader, quotes) = csv_reader(path)?;
    let headers = csv_headers(path, &mut reader, &quotes)?;
    let id = column(path, &headers, &format.id_column, "--id-column")?;
    let title = column(path, &headers, &format.title_column, "--title-column")?;
    let texts = if format.text_columns.is_empty() {
        column_if_present(path, &headers, "text")?.into_iter().collect()
    } else {
        format.text_columns.iter().map(|c| column(path, &headers, c, "--text-column")).collect::<Result<Vec<_>>>()?
    };
    // Rejects name the columns as the file does: `title/genres`, `name/summary+notes`.
    if !texts.is_empty() {
        let names: Vec<&str> = texts.iter().map(|&i| headers.get(i).map_or("text", str::trim)).collect();
        validator.content_name = format!("{}/{}", format.title_column, names.join("+"));
    }
    let fields = format
        .field_columns
        .iter()
        .map(|c| Ok((c.clone(), column(path, &headers, c, "--field-column")?)))
        .collect::<Result<Vec<_>>>()?;
    // Bytes first, so that a row in another encoding still names its item: the interactions
    // naming it then say its row was refused, not that the catalog lacks it.
    for record in reader.byte_records() {
        let bytes = match record {
            Ok(bytes) => bytes,
            Err(e) => {
                read_failed(path, &e)?;
                validator.catalog.rejects.push(malformed_csv(path, &e, &headers));
                continue;
            }
        };
        let record = match csv::StringRecord::from_byte_record(bytes) {
            Ok(record) => record,
            Err(e) => {
                let field = e.utf8_error().field();
                let bytes = e.into_byte_record();
                let mut refused = not_utf8(path, csv_line(bytes.position()), &headers, field);
                if let Some(item_id) = bytes.get(id).and_then(|cell| std::str::from_utf8(cell).ok()) {
                    refused = refused.with_id(item_id.trim());
                }
                validator.catalog.rejects.push(refused);
                continue;
            }
        };
        let line = csv_line(record.position());
        if repeats_header(&record, &headers) {
            validator.catalog.rejects.push(reject(path, line, None, HEADER_AGAIN));
            continue;
        }
        let get = |i: usize| record.get(i).unwrap_or("").trim().to_string();
        let text = texts.iter().map(|&i| get(i)).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(". ");
        let mut item_fields = BTreeMap::new();
        for (name, i) in &fields {
            let raw = get(*i);
            if raw.is_empty() {
                continue;
            }
            // Only a cell holding the separator is split: a column none of whose cells does (a
            // year beside MovieLens' genres) is typed as any other field, numbers or text, and
            // a column some cells split becomes a list field with single values as lists of one
            // (`unify_field_types`).
            let value = match &format.list_separator {
                Some(sep) if raw.contains(sep.as_str()) => FieldValue::List(
                    raw.split(sep.as_str()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
                ),
                // Typed with the whole column's other values (`unify_field_types`), as written.
                _ => FieldValue::Text(raw),
            };
            item_fields.insert(name.clone(), value);
        }
        validator.accept(line, Item { id: get(id), title: get(title), text, fields: item_fields });
    }
    quotes.finished(path)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{file, reasons};
    use super::*;

    /// Ids follow one rule whatever the file (`id_problem`), and a refused row names its item
    /// when the id could be read, so that rejects.jsonl and the interactions naming the item
    /// can say which one it was.
    #[test]
    fn ids_follow_one_rule_and_refused_rows_name_their_item() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(hyrank_engine::item::MAX_ID_BYTES + 1);
        let jsonl = format!(
            "{{\"id\": \" 7\", \"title\": \"padded\"}}\n{{\"id\": \"a\\nb\", \"title\": \"line feed\"}}\n\
             {{\"id\": \"{long}\", \"title\": \"long\"}}\n{{\"id\": \"e\", \"title\": \"\"}}\n\
             {{\"id\": \"f\", \"title\": 5}}\n{{\"id\": 7, \"title\": \"kept\"}}\n"
        );
        let path = file(&dir, "catalog.jsonl", jsonl.as_bytes());
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert_eq!(catalog.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["7"]);
        let got: Vec<(u64, Option<&str>, &str)> =
            catalog.rejects.iter().map(|r| (r.line, r.id.as_deref(), r.reason.as_str())).collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[..3].iter().all(|(_, id, _)| id.is_none()), "an id the rule refuses is not named as one");
        assert!(got[0].2.contains("(U+0020) at its start or end"), "{got:?}");
        assert!(got[1].2.contains("control character or line separator U+000A"), "{got:?}");
        assert!(got[2].2.contains("513 bytes long"), "{got:?}");
        assert_eq!((got[3].0, got[3].1), (4, Some("e")));
        assert_eq!((got[4].0, got[4].1), (5, Some("f")), "a field's refusal names the item too");
        // CSV cells are trimmed (spaces around a cell are layout), so " 7" there is 7.
        let path = file(&dir, "catalog.csv", b"id,title\n 7 ,padded cell\n");
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert_eq!((catalog.items[0].id.as_str(), catalog.rejects.len()), ("7", 0));
    }
    #[test]
    fn every_bad_catalog_line_is_reported_with_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = Vec::new();
        content.extend_from_slice(b"{\"id\": \"a\", \"title\": \"A\"}\n");
        content.extend_from_slice(b"{\"id\": \"b\", \"title\": \"B\"\n"); // 2: malformed
        content.extend_from_slice(b"{\"id\": \"a\", \"title\": \"again\"}\n"); // 3: duplicate
        content.extend_from_slice(b"{\"id\": \"c\", \"title\": \"\", \"text\": \"  \"}\n"); // 4: empty
        content.extend_from_slice(b"{\"title\": \"no id\"}\n"); // 5: missing id
        content.extend_from_slice(b"[1, 2]\n"); // 6: not an object
        content.extend_from_slice(b"{\"id\": \"d\", \"title\": \"D\", \"fields\": {\"tags\": [1]}}\n"); // 7: bad field
        content.extend_from_slice(b"{\"id\": \"e\", \"title\": \"\xff\"}\n"); // 8: bad UTF-8
        content.extend_from_slice(b"\n{\"id\": \"f\", \"title\": 5}\n"); // 10: title not a string
        let path = file(&dir, "bad.jsonl", &content);
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert_eq!(catalog.items.len(), 1);
        let got = reasons(&catalog.rejects);
        let lines: Vec<u64> = got.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 10]);
        assert!(got[0].2.starts_with("malformed JSON"));
        assert_eq!(got[1].1.as_deref(), Some("id"));
        assert!(got[1].2.contains("first on line 1"));
        assert!(got[2].2.contains("empty item"));
        assert!(got[3].2.contains("missing"));
        assert!(got[4].2.contains("expected a JSON object"));
        assert_eq!(got[5].1.as_deref(), Some("fields.tags"));
        assert!(got[6].2.contains("UTF-8"));
        assert_eq!(got[7].1.as_deref(), Some("title"));
        let shown = catalog.rejects[1].to_string();
        assert!(shown.contains("bad.jsonl:3: field `id`: duplicate"), "{shown}");
        assert_eq!(catalog.repeated_rows, 0);
    }

    /// BEIR's loader keeps one of two rows with the same `_id`; a row that repeats another
    /// exactly loses nothing when read once, and is counted. One that differs in anything
    /// (a field too) is still refused, in both formats.
    #[test]
    fn a_row_repeated_exactly_is_read_once_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let rows = "{\"id\": \"a\", \"title\": \"A\", \"fields\": {\"n\": 1}}\n\
                    {\"id\": \"b\", \"title\": \"B\"}\n\
                    {\"id\": \"a\", \"title\": \"A\", \"fields\": {\"n\": 1}}\n\
                    {\"id\": \"a\", \"title\": \"A\", \"fields\": {\"n\": 2}}\n\
                    {\"id\": \"b\", \"title\": \"B\"}\n";
        let catalog = read_catalog(&file(&dir, "c.jsonl", rows.as_bytes()), &CatalogFormat::default()).unwrap();
        assert_eq!(catalog.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(catalog.repeated_rows, 2);
        assert_eq!(reasons(&catalog.rejects).iter().map(|r| r.0).collect::<Vec<_>>(), [4]);
        assert!(catalog.rejects[0].reason.contains("with other content"), "{}", catalog.rejects[0].reason);
        let csv = file(&dir, "c.csv", b"id,title\nx,X\nx,X\nx,Y\n");
        let catalog = read_catalog(&csv, &CatalogFormat::default()).unwrap();
        assert_eq!((catalog.items.len(), catalog.repeated_rows, catalog.rejects.len()), (1, 1, 1));
    }

    /// Rows are compared as the index holds them, once fields are typed: `1` and `"1"` in a
    /// field of numbers are one value. A repeat of a row that typing refuses is refused with
    /// its own line, never counted as read once; nor is a repeat carrying a field no item has.
    #[test]
    fn repeated_rows_are_compared_once_fields_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let rows = "{\"id\": \"a\", \"title\": \"A\", \"n\": 1}\n\
                    {\"id\": \"a\", \"title\": \"A\", \"n\": \"1\"}\n\
                    {\"id\": \"b\", \"title\": \"B\", \"n\": \"many\"}\n\
                    {\"id\": \"b\", \"title\": \"B\", \"n\": \"many\"}\n\
                    {\"id\": \"a\", \"title\": \"A\", \"n\": 1, \"m\": 2}\n\
                    {\"id\": \"b\", \"title\": \"B\", \"n\": 3}\n\
                    {\"id\": \"a\", \"title\": \"A\", \"n\": 1, \"m\": \" \"}\n";
        let format = CatalogFormat {
            field_types: BTreeMap::from([("n".to_string(), FieldType::Number)]),
            ..CatalogFormat::default()
        };
        let catalog = read_catalog(&file(&dir, "c.jsonl", rows.as_bytes()), &format).unwrap();
        assert_eq!(catalog.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(catalog.repeated_rows, 2, "lines 2 and 7 repeat line 1 once typed (a blank is no value)");
        let got = reasons(&catalog.rejects);
        assert_eq!(
            got.iter().map(|r| (r.0, r.1.as_deref())).collect::<Vec<_>>(),
            [(3, Some("n")), (4, Some("n")), (5, Some("id")), (6, Some("id"))]
        );
        assert!(got[2].2.contains("with other content"), "{got:?}");
        assert!(got[3].2.contains("duplicate id \"b\" of line 3, which was refused"), "{got:?}");
    }

    #[test]
    fn refusals_found_once_types_settle_come_in_line_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = Vec::new();
        content.extend_from_slice(b"{\"id\": \"a\", \"title\": \"A\", \"price\": \"cheap\"}\n"); // 1: not a number
        content.extend_from_slice(b"{\"id\": \"b\", \"title\": \"B\"\n"); // 2: malformed
        content.extend_from_slice(b"{\"id\": \"c\", \"title\": \"C\", \"price\": 3}\n");
        let path = file(&dir, "typed.jsonl", &content);
        let format = CatalogFormat {
            field_types: BTreeMap::from([("price".to_string(), FieldType::Number)]),
            ..CatalogFormat::default()
        };
        let catalog = read_catalog(&path, &format).unwrap();
        let got = reasons(&catalog.rejects);
        assert_eq!(got.iter().map(|r| (r.0, r.1.as_deref())).collect::<Vec<_>>(), [(1, Some("price")), (2, None)]);
    }

    /// Issue 18: a field has one type for the whole catalog, whatever the format: `"25"` in
    /// JSON Lines is the number a CSV's `25` is; a field that mixes numbers and words is text
    /// throughout (and said so); a declared type refuses the rows that do not fit.
    #[test]
    fn a_field_has_one_type_across_the_catalog_and_the_formats() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = file(
            &dir,
            "typed.jsonl",
            br#"{"id": "a", "title": "A", "price": "25", "size": 2, "tags": "solo", "note": 7}
{"id": "b", "title": "B", "price": 19.5, "size": "XL", "tags": ["x", "y"], "note": "call us"}
"#,
        );
        let csv = file(
            &dir,
            "typed.csv",
            b"id,title,price,size
a,A,25,2
b,B,19.5,XL
",
        );
        let from_jsonl = read_catalog(&jsonl, &CatalogFormat::default()).unwrap();
        let csv_format =
            CatalogFormat { field_columns: vec!["price".into(), "size".into()], ..CatalogFormat::default() };
        let from_csv = read_catalog(&csv, &csv_format).unwrap();
        for catalog in [&from_jsonl, &from_csv] {
            assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);
            assert_eq!(catalog.items[0].fields["price"], FieldValue::Number(25.0));
            assert_eq!(catalog.items[1].fields["price"], FieldValue::Number(19.5));
            assert_eq!(catalog.items[0].fields["size"], FieldValue::Text("2".into()), "mixed: text throughout");
            assert_eq!(catalog.field_types["price"], FieldType::Number);
            assert!(catalog.mixed_fields.contains(&("size".to_string(), 1, 1)), "{:?}", catalog.mixed_fields);
        }
        assert_eq!(from_jsonl.items[0].fields["tags"], FieldValue::List(vec!["solo".into()]));
        assert_eq!(from_jsonl.items[1].fields["note"], FieldValue::Text("call us".into()));
        assert_eq!(from_jsonl.items[0].fields["note"], FieldValue::Text("7".into()));
        // Declared: the row that does not fit is refused by line and field, the rest converted.
        let declared = CatalogFormat {
            field_types: [("size".to_string(), FieldType::Number), ("tags".to_string(), FieldType::Text)].into(),
            ..CatalogFormat::default()
        };
        let catalog = read_catalog(&jsonl, &declared).unwrap();
        assert_eq!(catalog.items.len(), 1, "row 2 has a word in size (and a list in tags)");
        assert_eq!(catalog.items[0].fields["size"], FieldValue::Number(2.0));
        let refused = reasons(&catalog.rejects);
        assert_eq!((refused.len(), refused[0].0, refused[0].1.as_deref()), (1, 2, Some("size")));
        assert!(refused[0].2.contains("declared as a number, found text \"XL\""), "{refused:?}");
        // Text a number would rewrite stays text: zip codes, leading zeros, exponents, long ids;
        // blank text is no value in a field of numbers.
        let kept = file(
            &dir,
            "kept.jsonl",
            br#"{"id": "a", "title": "A", "zip": "02134", "code": "007", "sku": "18446744073709551616", "price": "19.50"}
{"id": "b", "title": "B", "zip": "10001", "code": "12", "sku": "1", "price": " "}
"#,
        );
        let catalog = read_catalog(&kept, &CatalogFormat::default()).unwrap();
        let a = &catalog.items[0].fields;
        assert_eq!((&a["zip"], &a["code"]), (&FieldValue::Text("02134".into()), &FieldValue::Text("007".into())));
        assert_eq!(a["sku"], FieldValue::Text("18446744073709551616".into()));
        assert_eq!(a["price"], FieldValue::Number(19.5));
        assert!(!catalog.items[1].fields.contains_key("price"), "blank is absent in a field of numbers");
        // A CSV column split into lists can still be declared as numbers (one value per cell).
        let movies = file(
            &dir,
            "movies.csv",
            b"id,title,genres,year
1,Toy Story,Adventure|Animation,1995
",
        );
        let format = CatalogFormat {
            field_columns: vec!["genres".into(), "year".into()],
            list_separator: Some("|".into()),
            field_types: [("year".to_string(), FieldType::Number)].into(),
            ..CatalogFormat::default()
        };
        let catalog = read_catalog(&movies, &format).unwrap();
        assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);
        assert_eq!(catalog.items[0].fields["year"], FieldValue::Number(1995.0));
        assert_eq!(catalog.items[0].fields["genres"], FieldValue::List(vec!["Adventure".into(), "Animation".into()]));
        // Undeclared, a column no cell splits is typed as any field (a new user's year came
        // back a list of one, and a range filter on it matched nothing); a column some cells
        // split is a list, its single values lists of one.
        let movies = file(
            &dir,
            "movies2.csv",
            b"id,title,genres,year
1,Toy Story,Adventure|Animation,1995
2,Heat,Action,1995
",
        );
        let format = CatalogFormat { field_types: BTreeMap::new(), ..format };
        let catalog = read_catalog(&movies, &format).unwrap();
        assert_eq!(catalog.field_types["year"], FieldType::Number);
        assert_eq!(catalog.items[1].fields["year"], FieldValue::Number(1995.0));
        assert_eq!(catalog.field_types["genres"], FieldType::List);
        assert_eq!(catalog.items[1].fields["genres"], FieldValue::List(vec!["Action".into()]));
    }
    #[test]
    fn movielens_style_csv_maps_columns_and_splits_lists() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "movies.csv", b"movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n2,\"Jumanji, The (1995)\",Adventure\n3,,\n");
        let format = CatalogFormat {
            id_column: "movieId".into(),
            text_columns: vec![],
            field_columns: vec!["genres".into()],
            list_separator: Some("|".into()),
            ..CatalogFormat::default()
        };
        let catalog = read_catalog(&path, &format).unwrap();
        assert_eq!(catalog.items.len(), 2);
        assert_eq!(catalog.items[1].title, "Jumanji, The (1995)");
        assert_eq!(
            catalog.items[0].fields["genres"],
            FieldValue::List(vec!["Adventure".into(), "Animation".into(), "Children".into()])
        );
        assert_eq!(
            reasons(&catalog.rejects),
            vec![(4, Some("title".into()), "empty item: title and text are both empty".into())],
            "the file's own column: it has no text column"
        );
        let missing = CatalogFormat { id_column: "nope".into(), ..format };
        assert!(read_catalog(&path, &missing).unwrap_err().to_string().contains("no column \"nope\""));
    }
    /// A CSV catalog's rejects name its own columns, and its header line repeated is refused,
    /// not read as an item named after the id column.
    #[test]
    fn csv_rejects_name_the_files_columns_and_a_repeated_header_is_no_item() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"movieId,title,genres\n1,Heat,Action\nmovieId,title,genres\n1,Heat 2,Action\n2,,\n";
        let path = file(&dir, "movies.csv", content);
        let format = CatalogFormat {
            id_column: "movieId".into(),
            text_columns: vec!["genres".into()],
            ..CatalogFormat::default()
        };
        let catalog = read_catalog(&path, &format).unwrap();
        assert_eq!(catalog.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["1"]);
        let got = reasons(&catalog.rejects);
        assert_eq!(got[0], (3, None, HEADER_AGAIN.to_string()));
        assert_eq!((got[1].0, got[1].1.as_deref()), (4, Some("movieId")), "{got:?}");
        assert!(got[1].2.starts_with("duplicate id \"1\" (first on line 2)"), "{got:?}");
        assert_eq!((got[2].0, got[2].1.as_deref()), (5, Some("title/genres")), "{got:?}");
        let empty = file(&dir, "empty.csv", b"");
        let error = read_catalog(&empty, &format).unwrap_err().to_string();
        assert!(error.contains("the header line is empty (or the file is)"), "{error}");
        // JSON Lines name the key the row gave its id under: BEIR's `_id`.
        let beir =
            file(&dir, "corpus.jsonl", b"{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d1\", \"text\": \"b\"}\n");
        let got = reasons(&read_catalog(&beir, &CatalogFormat::default()).unwrap().rejects);
        assert_eq!((got[0].0, got[0].1.as_deref()), (2, Some("_id")), "{got:?}");
    }

    /// Text of invisible characters only is as empty as whitespace (FiQA has a document of one
    /// zero-width space); metadata is passed over unread when fields are off.
    #[test]
    fn invisible_text_is_empty_and_fields_can_be_left_unread() {
        let dir = tempfile::tempdir().unwrap();
        let content = "{\"_id\": \"a\", \"text\": \"\u{200b}\u{feff} \"}\n{\"_id\": \"b\", \"text\": \"x\", \"metadata\": {\"n\": {\"m\": 1}}}\n";
        let path = file(&dir, "corpus.jsonl", content.as_bytes());
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        let got = reasons(&catalog.rejects);
        assert_eq!((got[0].0, got[0].2.as_str()), (1, "empty item: title and text are both empty"));
        assert_eq!(got[1].1.as_deref(), Some("metadata.n"));
        let unread = read_catalog(&path, &CatalogFormat { json_fields: false, ..CatalogFormat::default() }).unwrap();
        assert_eq!(unread.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(unread.items[0].fields.is_empty());
    }

    /// MovieLens 100K and 1M are ISO-8859-1: each row with an accented letter is refused,
    /// naming its field, and the list says once how to convert the file.
    #[test]
    fn a_single_byte_encoding_is_refused_row_by_row_with_the_fix_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"movieId,title,genres\n1,Caf\xe9 Society (2016),Comedy\n2,Heat,Action\n3,Am\xe9lie,Romance\n";
        let path = file(&dir, "movies.csv", content);
        let format = CatalogFormat { id_column: "movieId".into(), ..CatalogFormat::default() };
        let catalog = read_catalog(&path, &format).unwrap();
        assert_eq!(catalog.items.len(), 1);
        assert_eq!(
            reasons(&catalog.rejects),
            vec![
                (2, Some("title".into()), "not valid UTF-8".into()),
                (4, Some("title".into()), "not valid UTF-8".into())
            ]
        );
        // The id cell is readable, so the rows name their items (what interactions are told).
        let ids: Vec<Option<&str>> = catalog.rejects.iter().map(|r| r.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("3")]);
        let shown = crate::error::IndexError::BadInput { rejects: catalog.rejects }.to_string();
        assert!(shown.contains("movies.csv:2: field `title`: not valid UTF-8"), "{shown}");
        assert_eq!(shown.matches("iconv -f WINDOWS-1252 -t UTF-8").count(), 1, "{shown}");
    }

    #[test]
    fn a_csv_text_column_is_used_by_default_and_named_columns_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "items.csv", b"id,title,text\na,Alpha,first body\n");
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert_eq!(catalog.items[0].text, "first body");
        let named = CatalogFormat { text_columns: vec!["body".into()], ..CatalogFormat::default() };
        assert!(read_catalog(&path, &named).unwrap_err().to_string().contains("no column \"body\""));
    }
}
