//! The catalog reader's tests: ids, refusals by line and field, repeats, types, CSV columns.

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
    // Field names follow the same rule (`field_name_problem`): a row holding one it refuses is
    // refused, naming the field and the item.
    let jsonl = b"{\"id\": \"a\", \"title\": \"A\", \"\": 1}\n{\"id\": \"b\", \"title\": \"B\", \"fields\": {\"x\\u0000\": 2}}\n{\"id\": \"c\", \"title\": \"C\", \"ok\": 3}\n";
    let catalog = read_catalog(&file(&dir, "names.jsonl", jsonl), &CatalogFormat::default()).unwrap();
    assert_eq!(catalog.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["c"]);
    let got: Vec<(u64, Option<&str>, Option<&str>, &str)> =
        catalog.rejects.iter().map(|r| (r.line, r.field.as_deref(), r.id.as_deref(), r.reason.as_str())).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1, got[0].2), (1, Some(""), Some("a")));
    assert!(got[0].3.starts_with("field name is empty"), "{got:?}");
    assert_eq!((got[1].0, got[1].2), (2, Some("b")));
    assert!(got[1].3.contains("U+0000"), "{got:?}");
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
    let csv_format = CatalogFormat { field_columns: vec!["price".into(), "size".into()], ..CatalogFormat::default() };
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
    let format =
        CatalogFormat { id_column: "movieId".into(), text_columns: vec!["genres".into()], ..CatalogFormat::default() };
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
    let beir = file(&dir, "corpus.jsonl", b"{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d1\", \"text\": \"b\"}\n");
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
        vec![(2, Some("title".into()), "not valid UTF-8".into()), (4, Some("title".into()), "not valid UTF-8".into())]
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

/// Blank text is no value in any field, as `null` is: a brand of `""` or of spaces and
/// zero-width characters, tags of `[]` or of blanks only are absent (they were facet values,
/// holders in facet counts and sorted among the items with the field), a list's blank members
/// are dropped, and a field whose every value is blank is no field.
#[test]
fn blank_text_and_empty_lists_are_no_value_in_any_field() {
    let dir = tempfile::tempdir().unwrap();
    let content = concat!(
        r#"{"id": "a", "title": "A", "brand": "Alpine", "tags": ["x", "", " y"], "note": ""}"#,
        "\n",
        r#"{"id": "b", "title": "B", "brand": "", "tags": [], "note": []}"#,
        "\n",
        "{\"id\": \"c\", \"title\": \"C\", \"brand\": \"  \u{200b}\", \"tags\": [\" \", \"\"], \"note\": \" \"}\n",
    );
    let catalog = read_catalog(&file(&dir, "shop.jsonl", content.as_bytes()), &CatalogFormat::default()).unwrap();
    assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);
    let fields: Vec<_> = catalog.items.iter().map(|i| i.fields.clone()).collect();
    assert_eq!(fields[0]["brand"], FieldValue::Text("Alpine".into()));
    assert_eq!(fields[0]["tags"], FieldValue::List(vec!["x".into(), " y".into()]), "kept as written");
    assert!(fields[1].is_empty() && fields[2].is_empty(), "{fields:?}");
    assert!(!fields[0].contains_key("note"));
    assert!(!catalog.field_types.contains_key("note"), "{:?}", catalog.field_types);
    assert_eq!(catalog.field_types["tags"], FieldType::List);
    // A blank value beside a real one is no second value ("given twice" was refused).
    let twice = concat!(
        r#"{"id": "a", "title": "A", "brand": "", "fields": {"brand": "Acme", "tags": ["x", ""]}, "tags": "x"}"#,
        "\n"
    );
    let catalog = read_catalog(&file(&dir, "twice.jsonl", twice.as_bytes()), &CatalogFormat::default()).unwrap();
    assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);
    assert_eq!(catalog.items[0].fields["brand"], FieldValue::Text("Acme".into()));
}
