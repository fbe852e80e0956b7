//! JSON Lines catalogs (BEIR's corpus layout included): one object per line, its id from `id`
//! or `_id`, `title` and `text`, and every other key a field, as are the keys of `fields` (ours)
//! and `metadata` (BEIR's).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use hyrank_engine::item::{FieldValue, Item};
use serde_json::Value;

use super::super::file::open;
use super::super::reject;
use super::ItemValidator;
use crate::error::{Cause, IndexError, Result, NOT_UTF8};

/// Keys with a fixed meaning in a JSONL item; every other key becomes a field.
const ID_KEYS: [&str; 2] = ["id", "_id"];

/// The id keys of a JSONL line as the catalog wrote them: a numeric id is kept as its exact
/// text (`18446744073709551616` and `1e2` stay themselves; parsed as numbers they would be
/// reformatted, and two long ids could collapse into one).
#[derive(serde::Deserialize)]
struct RawIds<'a> {
    #[serde(borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, rename = "_id")]
    beir_id: Option<&'a serde_json::value::RawValue>,
}

impl RawIds<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "id" => self.id.map(|raw| raw.get()),
            _ => self.beir_id.map(|raw| raw.get()),
        }
    }
}

/// An id: a JSON string's value, or a JSON number's text exactly as written (`raw`).
fn id_text(value: &Value, raw: Option<&str>) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(raw.map_or_else(|| n.to_string(), |text| text.trim().to_string())),
        _ => None,
    }
}

/// The line's id, or why it has none (the key at fault and the reason). `id` is read when
/// given, else `_id`; `null` is no value, as for any key. Beside `id`, an `_id` that is a
/// string or a number must be the same id (two different ones would make one vanish, neither
/// an id nor a field); one that is neither is a store's own key (mongoexport's
/// `{"$oid": …}`), not the catalog's id, and is not read.
fn id_from_json(object: &serde_json::Map<String, Value>, raw: &RawIds<'_>) -> Result<String, (Option<String>, String)> {
    let given: Vec<&str> = ID_KEYS.iter().copied().filter(|k| object.get(*k).is_some_and(|v| !v.is_null())).collect();
    let Some(&key) = given.first() else {
        return Err((Some("id".into()), "missing (expected `id`, or `_id` as BEIR writes it)".into()));
    };
    let id = id_text(&object[key], raw.get(key))
        .ok_or_else(|| (Some(key.to_string()), "must be a string or a number".to_string()))?;
    match given.get(1).and_then(|&other| id_text(&object[other], raw.get(other))) {
        Some(other) if other != id => {
            Err((Some("_id".into()), format!("{other:?} differs from `id` {id:?}: give an item one id")))
        }
        _ => Ok(id),
    }
}

/// Whether two values given for one field are one value as the catalog's types read them
/// (`hyrank_engine::item::FieldType`): `25` and `"25"` (and `"25.0"`), `"x"` and `["x"]`.
fn same_value(a: &FieldValue, b: &FieldValue) -> bool {
    use hyrank_engine::item::FieldType;
    let number_text = |n: f64, text: &str| FieldType::number_as_written(text) == Some(n);
    match (a, b) {
        (FieldValue::Number(n), FieldValue::Text(text)) | (FieldValue::Text(text), FieldValue::Number(n)) => {
            number_text(*n, text)
        }
        (FieldValue::List(list), single) | (single, FieldValue::List(list)) if list.len() == 1 => {
            same_value(&FieldValue::Text(list[0].clone()), single)
        }
        _ => a == b,
    }
}

/// A field value as a catalog line writes it: `5`, `"text"`, `["a", "b"]`.
fn as_written(value: &FieldValue) -> String {
    match value {
        FieldValue::Number(n) => format!("{n}"),
        FieldValue::Text(text) => format!("{text:?}"),
        FieldValue::List(list) => format!("{list:?}"),
    }
}

/// Adds field `name`, written at `key` (`price`, `fields.price`, `metadata.price`), to
/// `fields`, refusing a second, different value of it: the catalog gave one field two values,
/// and keeping either would drop the other without a word. The same value twice is one value
/// ([`same_value`]: `25` and `"25"`), kept as first given.
/// `given_at` remembers where each field was first given, to name both places.
fn put_field(
    fields: &mut BTreeMap<String, FieldValue>,
    given_at: &mut BTreeMap<String, String>,
    key: String,
    name: &str,
    value: FieldValue,
) -> Result<(), (Option<String>, String)> {
    match fields.get(name) {
        Some(earlier) if !same_value(earlier, &value) => {
            let json = as_written;
            let first = given_at.get(name).map_or("", String::as_str);
            Err((
                Some(key.clone()),
                format!(
                    "field {name:?} is given twice with different values, {} at `{first}` and {} at `{key}`: one value per field",
                    json(earlier),
                    json(&value)
                ),
            ))
        }
        Some(_) => Ok(()),
        None => {
            fields.insert(name.to_string(), value);
            given_at.insert(name.to_string(), key);
            Ok(())
        }
    }
}

/// A line's item, and the blank values it gave (as written) that the item goes without
/// ([`FieldValue::without_blanks`]): a row an older build read with them has another hash
/// (`Catalog::legacy_hashes`).
fn item_from_json(
    object: &serde_json::Map<String, Value>,
    raw: &RawIds<'_>,
    json_fields: bool,
) -> Result<(Item, BTreeMap<String, FieldValue>), (Option<String>, String)> {
    let id = id_from_json(object, raw)?;
    let text_of = |key: &str| match object.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err((Some(key.to_string()), format!("must be a string, found {other}"))),
    };
    let title = text_of("title")?;
    let text = text_of("text")?;
    let (mut fields, mut given_at, mut blanks) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut keep = |name: &str, parsed: FieldValue| {
        let kept = parsed.clone().without_blanks();
        if kept.as_ref() != Some(&parsed) {
            blanks.entry(name.to_string()).or_insert(parsed);
        }
        kept
    };
    for (key, value) in object {
        match key.as_str() {
            "id" | "_id" | "title" | "text" => {}
            _ if !json_fields => {}
            // `fields` (ours) and `metadata` (BEIR's) hold fields; any other key is one itself.
            "fields" | "metadata" => match value {
                Value::Object(inner) => {
                    // null is a missing value: the field is absent from the item.
                    for (name, v) in inner.iter().filter(|(_, v)| !v.is_null()) {
                        let at = format!("{key}.{name}");
                        let parsed = FieldValue::from_json(v).map_err(|reason| (Some(at.clone()), reason))?;
                        // Blank text is no value, as null is: not a second value of the field.
                        if let Some(parsed) = keep(name, parsed) {
                            put_field(&mut fields, &mut given_at, at, name, parsed)?;
                        }
                    }
                }
                Value::Null => {}
                other => return Err((Some(key.clone()), format!("must be an object, found {other}"))),
            },
            _ if value.is_null() => {}
            _ => {
                let parsed = FieldValue::from_json(value).map_err(|reason| (Some(key.clone()), reason))?;
                if let Some(parsed) = keep(key, parsed) {
                    put_field(&mut fields, &mut given_at, key.clone(), key, parsed)?;
                }
            }
        }
    }
    Ok((Item { id, title, text, fields }, blanks))
}

/// What to add to the first line that is no JSON at all (it does not open an object): the file
/// is likely not JSON Lines, but read so by its name; for a separated file (a CSV without the
/// name, MovieLens 1M's `movies.dat`) say how to read it.
pub fn not_json_lines(text: &str) -> String {
    let opening = text.trim_start();
    if opening.starts_with('{') || opening.starts_with('[') {
        return String::new();
    }
    // Files joined together keep each one's mark at the start of its first line.
    if opening.starts_with('\u{feff}')
        && opening.trim_start_matches(|c: char| c == '\u{feff}' || c.is_whitespace()).starts_with(['{', '['])
    {
        return " (this line starts with a UTF-8 byte-order mark, U+FEFF, which only a file's first line may \
                carry: a file joined onto another keeps its own; remove the mark)"
            .to_string();
    }
    let how = match separator_of(text) {
        Some(",") => " It reads as comma-separated values: read it as CSV.".to_string(),
        Some(separator) => {
            let movielens = if !converter_reads(separator) {
                ""
            } else {
                " (MovieLens 100K, 1M and 10M: `python3 scripts/movielens_csv.py THEIR_FOLDER OUT` writes \
                 movies.csv as ml-latest lays it out, in UTF-8)"
            };
            format!(
                " It reads as values separated by {separator:?}: hyrank reads comma-separated files, so convert it \
                 first{movielens}."
            )
        }
        None => String::new(),
    };
    format!(
        " (the file is read as JSON Lines, one object per line, as a catalog is unless its name ends in .csv, \
         .csv.gz or .csv.zst or --catalog-format csv is given; this line does not open an object.{how})"
    )
}

/// The separator a line that is no JSON holds: `::` separates nothing but fields (MovieLens
/// 1M/10M), whatever the genres' `|` count; else the one it holds most often.
fn separator_of(text: &str) -> Option<&'static str> {
    if text.contains("::") {
        return Some("::");
    }
    ["\t", "|", ",", ";"]
        .into_iter()
        .map(|s| (s, text.matches(s).count()))
        .filter(|&(_, count)| count > 0)
        .reduce(|best, other| if other.1 > best.1 { other } else { best })
        .map(|(s, _)| s)
}

/// Whether `scripts/movielens_csv.py` reads files separated by `separator` (MovieLens 100K's
/// tab and `|`, 1M's and 10M's `::`): what [`not_json_lines`] names it for.
fn converter_reads(separator: &str) -> bool {
    matches!(separator, "::" | "\t" | "|")
}

pub(super) fn read_jsonl(path: &Path, json_fields: bool, validator: &mut ItemValidator<'_>) -> Result<()> {
    let reader = BufReader::new(open(path)?);
    // Whether a line has been told how the file is read: said once, on the first line that is
    // no JSON at all.
    let mut told = false;
    for (number, line) in reader.split(b'\n').enumerate() {
        let line_number = number as u64 + 1;
        let bytes = line.map_err(|e| IndexError::Input {
            path: path.to_path_buf(),
            reason: format!("read failed at line {line_number}: {e}"),
        })?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            validator
                .catalog
                .rejects
                .push(reject(path, line_number, None, format!("line is {NOT_UTF8}")).because(Cause::NotUtf8));
            continue;
        };
        // A UTF-8 byte-order mark (what some editors and exports put first) is not data.
        let text = if line_number == 1 { text.strip_prefix('\u{feff}').unwrap_or(text) } else { text };
        // Blank lines carry no data (a trailing newline, a separator); they are not rows.
        if text.trim().is_empty() {
            continue;
        }
        let raw_ids = serde_json::from_str::<RawIds<'_>>(text);
        // Strictly: a key given twice (a title, a field) is refused rather than read as its
        // last value, the other dropped without a word.
        let value = serde_json::from_str::<hyrank_engine::json::StrictValue>(text).map(|v| v.0);
        match (value, raw_ids) {
            (Err(e), _) => {
                let reject = match hyrank_engine::json::duplicate_key(&e) {
                    Some(key) => reject(path, line_number, Some(&key), format!("{e}: one value per key")),
                    None => {
                        let hint = if told { String::new() } else { not_json_lines(text) };
                        told |= !hint.is_empty();
                        let refused = reject(path, line_number, None, format!("malformed JSON: {e}{hint}"));
                        // The converter named re-encodes the file too: the UTF-8 advice would
                        // send its user to iconv, which leaves the layout as it is.
                        // `::` only: MovieLens 1M and 10M are the files laid out so, where a tab
                        // or `|` file may be any export, whose encoding advice still applies.
                        let converts = !hint.is_empty() && separator_of(text) == Some("::");
                        if converts {
                            refused.because(Cause::Converter)
                        } else {
                            refused
                        }
                    }
                };
                validator.catalog.rejects.push(reject)
            }
            // An object whose ids cannot be read as written (a key given twice): refused, not
            // read with one of the values chosen silently.
            (Ok(Value::Object(_)), Err(e)) => {
                validator.catalog.rejects.push(reject(path, line_number, Some("id"), e.to_string()))
            }
            (Ok(Value::Object(object)), Ok(raw_ids)) => match item_from_json(&object, &raw_ids, json_fields) {
                Ok((item, blanks)) => {
                    if !blanks.is_empty() {
                        validator.blanks.entry(item.id.clone()).or_insert(blanks);
                    }
                    // Its rejects name the key the row gave its id under.
                    let given = |key: &str| object.get(key).is_some_and(|v| !v.is_null());
                    validator.id_name = if !given("id") && given("_id") { "_id" } else { "id" }.to_string();
                    validator.accept(line_number, item)
                }
                Err((field, reason)) => {
                    let refused = reject(path, line_number, field.as_deref(), reason);
                    validator.catalog.rejects.push(match id_from_json(&object, &raw_ids) {
                        Ok(id) => refused.with_id(&id),
                        Err(_) => refused,
                    })
                }
            },
            (Ok(other), _) => validator.catalog.rejects.push(reject(
                path,
                line_number,
                None,
                format!("expected a JSON object, found {}", kind_of(&other)),
            )),
        }
    }
    Ok(())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{file, reasons};
    use super::super::{read_catalog, CatalogFormat};
    use hyrank_engine::item::FieldValue;

    /// MovieLens 1M's `movies.dat` is `::`-separated and ISO-8859-1: the converter the first
    /// line names fixes both, so the list does not also send its user to iconv, which would
    /// leave the layout as it is. A layout no converter reads keeps the encoding's advice.
    #[test]
    fn a_layout_the_converter_reads_is_not_also_told_to_iconv() {
        let dir = tempfile::tempdir().unwrap();
        // (file, iconv advised, converter named): a tab file may be any export, so it keeps both.
        for (content, iconv, converter) in [
            (&b"1::Toy Story (1995)::Comedy\n2::Caf\xe9 Society (2016)::Comedy\n"[..], false, true),
            (&b"1;Toy Story (1995);Comedy\n2;Caf\xe9 Society (2016);Comedy\n"[..], true, false),
            (&b"1\tToy Story (1995)\tComedy\n2\tCaf\xe9 Society (2016)\tComedy\n"[..], true, true),
        ] {
            let catalog = read_catalog(&file(&dir, "movies.dat", content), &CatalogFormat::default()).unwrap();
            let shown = crate::error::IndexError::BadInput { rejects: catalog.rejects }.to_string();
            assert!(shown.contains("line is not valid UTF-8"), "{shown}");
            assert_eq!(shown.contains("iconv"), iconv, "{shown}");
            assert_eq!(shown.contains("scripts/movielens_csv.py"), converter, "{shown}");
        }
    }

    /// A file that is not JSON Lines but read as one (by its name) says so on its first line
    /// that opens no object, and how to read it; later lines do not repeat it, and a line that
    /// is broken JSON gets no such advice.
    #[test]
    fn a_separated_file_read_as_json_lines_says_how_to_read_it() {
        let dir = tempfile::tempdir().unwrap();
        for (content, says) in [
            (
                "1::Toy Story (1995)::Adventure|Animation|Children|Comedy|Fantasy\n2::Jumanji (1995)::Adventure\n",
                "separated by \"::\": hyrank reads comma-separated files, so convert it first (MovieLens",
            ),
            ("1|Toy Story (1995)|01-Jan-1995\n", "scripts/movielens_csv.py"),
            ("id,title\n1,Toy Story\n", "read it as CSV"),
            ("id;title\n1;Toy Story\n", "separated by \";\": hyrank reads comma-separated files, so convert it first."),
        ] {
            let catalog =
                read_catalog(&file(&dir, "movies.dat", content.as_bytes()), &CatalogFormat::default()).unwrap();
            let got = reasons(&catalog.rejects);
            assert!(got[0].2.contains("read as JSON Lines") && got[0].2.contains(says), "{got:?}");
            assert!(got[1..].iter().all(|r| !r.2.contains("JSON Lines")), "said once: {got:?}");
        }
        let broken = file(&dir, "broken.jsonl", b"{\"id\": \"a\", \"title\": \"A\"\n");
        let catalog = read_catalog(&broken, &CatalogFormat::default()).unwrap();
        assert!(!catalog.rejects[0].reason.contains("JSON Lines"), "{}", catalog.rejects[0].reason);
    }

    /// An id is the exact text the catalog wrote: numbers past f64's precision stay distinct
    /// and unformatted, exponents and decimals stay as written, strings stay strings.
    #[test]
    fn numeric_ids_are_kept_as_the_catalog_wrote_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "catalog.jsonl",
            br#"{"id": 18446744073709551616, "title": "a"}
{"id": 123456789012345678901234567890, "title": "b"}
{"id": 123456789012345678901234567891, "title": "c"}
{"id": 1e2, "title": "d"}
{"id": 2.50, "title": "e"}
{"_id" :  -7 , "title": "f"}
{"id": "1e2 as text", "title": "g"}
{"id": "x", "id": 1e2, "title": "an id given twice"}
"#,
        );
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        let rejects = reasons(&catalog.rejects);
        assert_eq!(rejects.len(), 1, "{rejects:?}");
        assert_eq!((rejects[0].0, rejects[0].1.as_deref()), (8, Some("id")));
        assert!(rejects[0].2.contains("duplicate key `id`"), "{rejects:?}");
        let ids: Vec<&str> = catalog.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "18446744073709551616",
                "123456789012345678901234567890",
                "123456789012345678901234567891",
                "1e2",
                "2.50",
                "-7",
                "1e2 as text"
            ]
        );
    }

    /// A byte-order mark before the first line, and null as a missing value (top-level, in
    /// `fields` and in `metadata`), are read rather than refused.
    #[test]
    fn a_byte_order_mark_and_null_fields_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = b"\xef\xbb\xbf".to_vec();
        content.extend_from_slice(
            br#"{"id": "tent", "title": "Tent", "price": null, "fields": {"color": null, "size": 2}}
{"id": "mug", "title": "Mug", "metadata": {"year": null}, "price": 25}
"#,
        );
        let path = file(&dir, "catalog.jsonl", &content);
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);
        assert_eq!(catalog.items[0].id, "tent", "the mark is not part of the first line's data");
        assert_eq!(catalog.items[0].fields.keys().collect::<Vec<_>>(), ["size"], "nulls are absent");
        assert!(catalog.items[1].fields.get("year").is_none());
        assert_eq!(catalog.items[1].fields["price"], FieldValue::Number(25.0));
        // A mark anywhere else is data, and the line is judged as written.
        let path = file(
            &dir,
            "later.jsonl",
            "{\"id\": \"a\", \"title\": \"A\"}\n\u{feff}{\"id\": \"b\", \"title\": \"B\"}\n".as_bytes(),
        );
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert_eq!(reasons(&catalog.rejects).len(), 1, "{:?}", catalog.rejects);
        assert_eq!((catalog.rejects[0].line, catalog.items.len()), (2, 1));
        // Named as the mark it is, not as a line of comma-separated values; two marks too.
        let reason = &catalog.rejects[0].reason;
        assert!(reason.contains("byte-order mark") && !reason.contains("CSV"), "{reason}");
        let path = file(
            &dir,
            "twice.jsonl",
            "{\"id\": \"a\", \"title\": \"A\"}\n\u{feff}\u{feff} {\"id\": \"b\"}\n".as_bytes(),
        );
        let reason = &read_catalog(&path, &CatalogFormat::default()).unwrap().rejects[0].reason;
        assert!(reason.contains("byte-order mark") && !reason.contains("CSV"), "{reason}");
    }

    #[test]
    fn beir_lines_index_as_is_with_metadata_as_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "corpus.jsonl", br#"{"_id": "4983", "title": "Microstructural development", "text": "Alterations of the architecture", "metadata": {}}
{"_id": 7, "title": "", "text": "only text", "metadata": {"year": 2001}}
"#);
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);
        assert_eq!(catalog.items[0].id, "4983");
        assert_eq!(catalog.items[1].id, "7");
        assert_eq!(catalog.items[1].fields["year"], FieldValue::Number(2001.0));
    }

    /// A line that gives an item two ids, or a field two values (at the top level, in `fields`
    /// and in `metadata`), is refused naming the key: keeping either value would drop the
    /// other without a word. The same value given twice is one value, and is read.
    #[test]
    fn two_ids_or_two_values_of_a_field_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "catalog.jsonl",
            br#"{"id": "Z1", "_id": "Z2", "title": "two ids"}
{"id": "F1", "title": "x", "price": 5, "fields": {"price": 6}}
{"id": "F2", "title": "x", "metadata": {"k": "v"}, "fields": {"k": "w"}}
{"id": "F3", "title": "x", "fields": {"k": "w"}, "metadata": {"k": ["w", "v"]}}
{"id": "S1", "_id": "S1", "title": "the same id twice", "price": 5, "fields": {"price": 5}}
{"id": 7, "_id": "7", "title": "one id, once a number and once a string"}
{"id": "N1", "title": "x", "price": null, "fields": {"price": 6}}
{"id": "M1", "_id": {"$oid": "65a1"}, "title": "a store's own key beside the id", "price": 25, "fields": {"price": "25.0"}}
{"id": null, "_id": "B1", "title": "null is no id", "tags": "x", "fields": {"tags": ["x"]}}
{"id": "C1", "_id": null, "title": "nor here"}
"#,
        );
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        let rejects = reasons(&catalog.rejects);
        let lines: Vec<u64> = rejects.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 2, 3, 4], "{rejects:?}");
        assert_eq!(rejects[0].1.as_deref(), Some("_id"));
        assert!(rejects[0].2.contains(r#""Z2" differs from `id` "Z1""#), "{rejects:?}");
        // Each names both places the field was given, and the key at fault is one of them.
        for (r, places) in
            rejects[1..].iter().zip([["price", "fields.price"], ["metadata.k", "fields.k"], ["metadata.k", "fields.k"]])
        {
            assert!(places.contains(&r.1.as_deref().unwrap()), "{r:?}");
            assert!(places.iter().all(|p| r.2.contains(&format!("`{p}`"))), "{r:?}");
            assert!(r.2.contains("given twice with different values"), "{r:?}");
        }
        // Numbers as the line wrote them.
        assert!(rejects[1].2.contains(" 5 at `") && rejects[1].2.contains(" 6 at `"), "{rejects:?}");
        let ids: Vec<&str> = catalog.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["S1", "7", "N1", "M1", "B1", "C1"]);
        assert_eq!(catalog.items[0].fields["price"], FieldValue::Number(5.0));
        assert_eq!(catalog.items[2].fields["price"], FieldValue::Number(6.0), "null is no value");
        // One value as the catalog's types read it: 25 and "25.0", "x" and ["x"].
        assert_eq!(catalog.items[3].fields["price"], FieldValue::Number(25.0));
        assert_eq!(catalog.field_types["tags"], hyrank_engine::item::FieldType::List);
    }
}
