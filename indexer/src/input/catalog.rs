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
    /// By id, the hash (`live::item_hash`) of a row as builds before 2026-12-06 read it, where
    /// that differs: they kept blank text in a text field and lists with blank members, which
    /// are no values now ([`FieldValue::without_blanks`]). A live write an older server logged
    /// names the row by that hash, and still applies to it (`live_fold::replay_item_writes`).
    pub legacy_hashes: HashMap<String, String>,
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
    /// By id, the blank values a row gave (as written) that its item goes without, for
    /// [`Catalog::legacy_hashes`].
    blanks: HashMap<String, BTreeMap<String, FieldValue>>,
    catalog: Catalog,
}

impl ItemValidator<'_> {
    fn accept(&mut self, line: u64, item: Item) {
        let bad_name = item.fields.keys().find_map(|n| hyrank_engine::item::field_name_problem(n).map(|p| (n, p)));
        if let Some(problem) = hyrank_engine::item::id_problem(&item.id) {
            self.catalog.rejects.push(reject(self.file, line, Some(&self.id_name), format!("id {problem}")));
        } else if let Some((name, problem)) = bad_name {
            self.catalog.rejects.push(reject(self.file, line, Some(name), problem).with_id(&item.id));
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
        blanks: HashMap::new(),
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
            // Blank text is no value: it does not make a numeric field text, and a field of
            // only blanks has no type (it was typed as numbers, refusing live writes' text).
            if FieldType::is_blank(value) {
                continue;
            }
            let counts = seen.entry(name).or_default();
            match value {
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
    validator.catalog.legacy_hashes = legacy_hashes(&validator.catalog.items, &validator.blanks, &types);
    validator.catalog.field_types = types;
    // Types are settled after every row is read, so their refusals came last: in line order
    // they read as the file does (a stable sort keeps one line's reasons in order).
    validator.catalog.rejects.sort_by_key(|reject| reject.line);
}

/// [`Catalog::legacy_hashes`]: each typed item whose line gave blank values, with them put
/// back as the earlier rule kept them (blank text in a text field; a list as written, in a
/// field of lists or one no other value types), hashed where that row differs.
fn legacy_hashes(
    items: &[Item],
    blanks: &HashMap<String, BTreeMap<String, FieldValue>>,
    types: &BTreeMap<String, FieldType>,
) -> HashMap<String, String> {
    let mut hashes = HashMap::new();
    for item in items {
        let Some(given) = blanks.get(&item.id) else { continue };
        let mut legacy = item.clone();
        for (name, value) in given {
            match (types.get(name), value) {
                (Some(FieldType::Text), FieldValue::Text(_)) if !item.fields.contains_key(name) => {}
                (Some(FieldType::List) | None, FieldValue::List(_)) => {}
                _ => continue,
            }
            legacy.fields.insert(name.clone(), value.clone());
        }
        if legacy != *item {
            // The typed hash: the servers that read blanks so logged no other.
            hashes.insert(item.id.clone(), hyrank_engine::live::typed_item_hash(&legacy));
        }
    }
    hashes
}

/// `item` with every field converted to its type in `types`, or the first field that does
/// not fit, with the reason. A field `types` does not name (only a repeated row's can be
/// one: no first row holds it) is kept as written, so the row differs from the accepted one,
/// unless it is blank.
fn typed(mut item: Item, types: &BTreeMap<String, FieldType>) -> std::result::Result<Item, (String, String)> {
    // Blank text is no value in any field: absent, as null is; so is a list of none but blank
    // text, and a list's blank members are dropped (`FieldValue::without_blanks`).
    item.fields = std::mem::take(&mut item.fields)
        .into_iter()
        .filter_map(|(name, value)| value.without_blanks().map(|value| (name, value)))
        .collect();
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
    // Read by hand, not through `byte_records()`, so that after a malformed row the reader's
    // position says where that row ended.
    let mut read = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut read) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                read_failed(path, &e, reader.position())?;
                validator.catalog.rejects.push(malformed_csv(path, &e, &headers, &reader));
                continue;
            }
        }
        let record = match csv::StringRecord::from_byte_record(std::mem::take(&mut read)) {
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
mod tests;
