//! Items as the engine stores and returns them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A catalog item after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Item {
    /// The catalog's own id, unique within a generation.
    pub id: String,
    /// Short title; may be empty when `text` is not.
    #[serde(default)]
    pub title: String,
    /// Body text; may be empty when `title` is not.
    #[serde(default)]
    pub text: String,
    /// Stored, returned and filterable attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldValue>,
}

impl Item {
    /// The text that the embedding model and the reranker read: title, then body.
    pub fn content(&self) -> String {
        match (self.title.trim().is_empty(), self.text.trim().is_empty()) {
            (false, false) => format!("{}. {}", self.title.trim(), self.text.trim()),
            (false, true) => self.title.trim().to_string(),
            _ => self.text.trim().to_string(),
        }
    }
}

/// The longest user or item id, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// Whether `text` shows nothing: only whitespace, format characters (zero-width space and
/// joiners, byte-order mark, soft hyphen) and characters Unicode says to render as nothing
/// (Default_Ignorable_Code_Point). An id or an item's title and text of only these is empty.
pub fn is_blank(text: &str) -> bool {
    use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
    use icu_properties::{CodePointMapData, CodePointSetData};
    let category = CodePointMapData::<GeneralCategory>::new();
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    text.chars().all(|c| c.is_whitespace() || category.get(c) == GeneralCategory::Format || ignorable.contains(c))
}

/// Why `id` cannot be a user or item id, or `None` when it can: over [`MAX_ID_BYTES`] bytes,
/// nothing visible, whitespace or a format character at either end, or a control character or
/// a line or paragraph separator anywhere.
///
/// One rule for every way an id enters (catalog and interaction files, live events, live
/// puts), so that an id one path takes is never refused or read differently by another. Ids
/// are compared exactly; CSV cells are trimmed before they are read (spaces around a cell are
/// the file's layout), so a padded id elsewhere is refused rather than becoming a second user
/// or item that looks the same as the first (`" 2"` and `"2"`; so too a byte-order mark, a
/// zero-width space or a direction mark pasted at an end: format characters, Cf). Inside an id
/// they stay, since words need some (the Persian zero-width non-joiner, emoji joiners), and so
/// do spaces (`"item 7"`). Variation selectors render as nothing alone but choose an emoji's
/// look after it (`"⭐️"`), so only an id of nothing but such characters
/// (Default_Ignorable_Code_Point) is refused for them. Control characters and line separators
/// would break the line-oriented files ids are written to (logs, reject lists). Length is
/// checked first, so a reason never quotes more than [`MAX_ID_BYTES`] bytes of id.
pub fn id_problem(id: &str) -> Option<String> {
    key_problem(id, "an id", "ids")
}

/// Why `name` cannot be a catalog field's name, or `None` when it can: [`id_problem`]'s rule,
/// for the same reasons (names are compared exactly in filters, facets and sorts, and written
/// to the manifest, logs and reject lists), said as "field name …".
pub fn field_name_problem(name: &str) -> Option<String> {
    key_problem(name, "a field name", "field names").map(|problem| format!("field name {problem}"))
}

/// [`id_problem`] for keys of any kind: `one` and `many` name the kind in its reasons.
fn key_problem(id: &str, one: &str, many: &str) -> Option<String> {
    use icu_properties::props::GeneralCategory;
    use icu_properties::CodePointMapData;
    if id.len() > MAX_ID_BYTES {
        return Some(format!("is {} bytes long; {one} is at most {MAX_ID_BYTES}", id.len()));
    }
    let category = CodePointMapData::<GeneralCategory>::new();
    let invisible = |c: char| c.is_whitespace() || category.get(c) == GeneralCategory::Format;
    let breaks_lines = |c: char| {
        c.is_control()
            || matches!(category.get(c), GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator)
    };
    let at_an_end = [id.chars().next(), id.chars().last()].into_iter().flatten().find(|&c| invisible(c));
    if is_blank(id) {
        Some("is empty (or holds only whitespace and invisible characters)".into())
    } else if let Some(c) = at_an_end {
        Some(format!(
            "{id:?} has whitespace or an invisible character (U+{:04X}) at its start or end; {many} are compared \
             exactly, so write it without",
            u32::from(c)
        ))
    } else {
        id.chars()
            .find(|&c| breaks_lines(c))
            .map(|c| format!("{id:?} holds the control character or line separator U+{:04X}", u32::from(c)))
    }
}

/// A field's type, one for the whole catalog whatever the input (JSON Lines, CSV, a live write):
/// JSON's `25` and `"25"` and CSV's `25` are the same number. The indexer declares or infers it
/// per field and records it in the manifest; live writes are read as it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Numbers (JSON numbers, or text that reads as a finite number): range filters apply.
    Number,
    /// Text; numbers in it are kept as text.
    Text,
    /// Lists of strings; a single value is a list of one.
    List,
}

impl std::str::FromStr for FieldType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "number" => Ok(FieldType::Number),
            "text" => Ok(FieldType::Text),
            "list" => Ok(FieldType::List),
            other => Err(format!("field type {other:?}: expected number, text or list")),
        }
    }
}

impl FieldType {
    /// What the type is called in messages.
    pub fn described(self) -> &'static str {
        match self {
            FieldType::Number => "a number",
            FieldType::Text => "text",
            FieldType::List => "a list",
        }
    }

    /// `value` as this type: text that reads as a finite number becomes the number, a number
    /// becomes its text (`25`, `25.5`), a single value becomes a list of one and a list of one
    /// its value.
    ///
    /// # Errors
    /// A description of what was found, when the value cannot be this type (text that is not
    /// a number, for a number; a list of several, for a number or text).
    pub fn coerce(self, value: &FieldValue) -> Result<FieldValue, String> {
        let number = |text: &str| text.trim().parse::<f64>().ok().filter(|f| f.is_finite());
        let converted = match (self, value) {
            (FieldType::Number, FieldValue::Number(n)) => Some(FieldValue::number(*n)),
            (FieldType::Text, FieldValue::Text(_)) | (FieldType::List, FieldValue::List(_)) => Some(value.clone()),
            (FieldType::Number, FieldValue::Text(text)) => number(text).map(FieldValue::number),
            (FieldType::Text, FieldValue::Number(n)) => Some(FieldValue::Text(format!("{}", signless(*n)))),
            (FieldType::List, FieldValue::Text(text)) => Some(FieldValue::List(vec![text.clone()])),
            (FieldType::List, FieldValue::Number(n)) => Some(FieldValue::List(vec![format!("{}", signless(*n))])),
            // A CSV column split on the list separator gives lists of one.
            (FieldType::Number, FieldValue::List(one)) if one.len() == 1 => number(&one[0]).map(FieldValue::number),
            (FieldType::Text, FieldValue::List(one)) if one.len() == 1 => Some(FieldValue::Text(one[0].clone())),
            (FieldType::Number | FieldType::Text, FieldValue::List(_)) => None,
        };
        converted.ok_or_else(|| match value {
            FieldValue::Text(text) => format!("text {text:?}"),
            FieldValue::List(list) => format!("a list {list:?}"),
            FieldValue::Number(n) => format!("the number {n}"),
        })
    }

    /// Whether `value` is a number, or text that is one as written: the number's own form
    /// (`25`, `-3`, `19.5`), or that form with trailing zeros after a decimal point (`19.50`).
    /// Text a number would change is not: leading zeros (`02134`, `007`), exponents (`1e5`), a
    /// leading `+`, digits past f64's precision (a 20-digit id); inferring a field from it as
    /// numbers would rewrite the catalog's values.
    pub fn reads_as_number(value: &FieldValue) -> bool {
        match value {
            FieldValue::Number(_) => true,
            FieldValue::Text(text) => Self::number_as_written(text).is_some(),
            FieldValue::List(_) => false,
        }
    }

    /// The number `text` is as written ([`FieldType::reads_as_number`]'s rule: `"25"`,
    /// `"19.50"`, not `"02134"`, `"1e5"` or a 20-digit code), if it is one.
    pub fn number_as_written(text: &str) -> Option<f64> {
        let number = text.trim().parse::<f64>().ok().filter(|f| f.is_finite())?;
        Self::writes_number(text, number, &format!("{number}")).then_some(number)
    }

    /// Whether `text` is `number` as written, given the number's own form `shown`
    /// (`format!("{number}")`, which a caller comparing many texts to one number makes once).
    pub fn writes_number(text: &str, number: f64, shown: &str) -> bool {
        let text = text.trim();
        // Trailing zeros of a fraction of digits only, then its point: "19.50" is 19.5, "5." is
        // 5; "5.." and "5.5." are no number (stripping every trailing point read them as 5).
        let written = match text.split_once('.') {
            None => text,
            Some((whole, fraction)) if fraction.bytes().all(|b| b.is_ascii_digit()) => {
                let fraction = fraction.trim_end_matches('0');
                if fraction.is_empty() {
                    whole
                } else {
                    &text[..whole.len() + 1 + fraction.len()]
                }
            }
            Some(_) => return false,
        };
        written == shown || (number == 0.0 && (written == "0" || written == "-0"))
    }

    /// Whether `value` is no value ([`FieldValue::without_blanks`] leaves nothing of it):
    /// blank text, or a list of none but blank text. Type inference passes over it.
    pub fn is_blank(value: &FieldValue) -> bool {
        match value {
            FieldValue::Text(text) => is_blank(text),
            FieldValue::List(values) => values.iter().all(|v| is_blank(v)),
            FieldValue::Number(_) => false,
        }
    }
}

/// A field value: a string, a number, or a list of strings (tags, genres).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum FieldValue {
    /// A number (price, year); never -0.0, which every way in reads as 0.0. Written as an
    /// integer when whole (`25`, `1995`).
    Number(#[serde(serialize_with = "whole_as_integer", deserialize_with = "signless_zero")] f64),
    /// A single string (brand, category).
    Text(String),
    /// Several strings (tags, genres).
    List(Vec<String>),
}

/// A number as the catalog holds it: -0.0 becomes 0.0. Filters already compare them equal,
/// but the sign would show in facet ranges, the filter index's spans, a number's text (`-0`)
/// and `total_cmp`'s order, so it is dropped once, where values come in.
fn signless(n: f64) -> f64 {
    n + 0.0
}

/// serde's read of a stored or sent number, through [`signless`]; generations written before
/// the rule hold -0.0 as sent.
fn signless_zero<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    f64::deserialize(deserializer).map(signless)
}

/// A number as JSON: a whole one within ±2^53 (where f64 holds every integer exactly) as an
/// integer, as catalogs write prices and years (`25`, not serde's `25.0`); any other as a float.
/// Reading either back gives the same f64. [`crate::live::item_hash`] does not use this form.
fn whole_as_integer<S: serde::Serializer>(n: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        serializer.serialize_i64(*n as i64)
    } else {
        serializer.serialize_f64(*n)
    }
}

impl FieldValue {
    /// A number field's value, -0.0 read as 0.0 ([`signless`]).
    pub fn number(n: f64) -> FieldValue {
        FieldValue::Number(signless(n))
    }

    /// The value's members as text, the same whichever type the catalog's inference gives the
    /// field ([`FieldType::coerce`] converts between them): a number, and text (or a list's
    /// member) that is a number as written ([`FieldType::number_as_written`]: `"25"`,
    /// `"19.50"`), give the number's own form (`25`, `19.5`); other text stays as it is; a
    /// scalar is one member. What [`crate::live::item_hash`] hashes, so that a row's hash does
    /// not change when another row changes its field's type for the whole catalog (one list
    /// makes the field a list, one word makes a number field text). Text a number would change
    /// (`"007"`, `"1e5"`, a 20-digit code) stays text: inference never reads it as a number, and
    /// two codes f64 cannot tell apart stay two values; a declared `--field-type` that reads it
    /// as one changes the row's hash, as it changes the value.
    pub fn canonical_members(&self) -> Vec<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        fn member(text: &str) -> Cow<'_, str> {
            match FieldType::number_as_written(text) {
                Some(n) => Cow::Owned(format!("{}", signless(n))),
                None => Cow::Borrowed(text),
            }
        }
        match self {
            FieldValue::Number(n) => vec![Cow::Owned(format!("{}", signless(*n)))],
            FieldValue::Text(text) => vec![member(text)],
            FieldValue::List(list) => list.iter().map(|text| member(text)).collect(),
        }
    }

    /// The value without its blank text ([`is_blank`]): a list's blank members dropped, and
    /// `None` (no value, as `null` is) for blank text or a list left empty. A brand of `""` or
    /// `"  "`, or tags of `[]`, would otherwise be a facet value, a holder in facet counts,
    /// and sort among the items that have the field.
    pub fn without_blanks(self) -> Option<FieldValue> {
        match self {
            FieldValue::Text(text) if is_blank(&text) => None,
            FieldValue::List(values) => {
                let values: Vec<String> = values.into_iter().filter(|v| !is_blank(v)).collect();
                (!values.is_empty()).then_some(FieldValue::List(values))
            }
            value => Some(value),
        }
    }

    /// Converts a JSON value, or says why it cannot be a field.
    pub fn from_json(value: &serde_json::Value) -> Result<FieldValue, String> {
        use serde_json::Value;
        match value {
            Value::String(s) => Ok(FieldValue::Text(s.clone())),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(FieldValue::number)
                .ok_or_else(|| format!("number {n} is not a finite float")),
            Value::Array(values) => values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("lists may only hold strings, found {other}")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(FieldValue::List),
            Value::Bool(b) => Ok(FieldValue::Text(b.to_string())),
            Value::Null => Err("null is not a field value".into()),
            Value::Object(_) => Err("nested objects are not field values".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_text_is_no_field_value() {
        let text = |t: &str| FieldValue::Text(t.into());
        let list = |l: &[&str]| FieldValue::List(l.iter().map(|s| s.to_string()).collect());
        for blank in [text(""), text(" \u{200b}"), list(&[]), list(&["", " "])] {
            assert!(FieldType::is_blank(&blank), "{blank:?}");
            assert_eq!(blank.without_blanks(), None);
        }
        assert_eq!(list(&["a", "", "b"]).without_blanks(), Some(list(&["a", "b"])));
        assert_eq!(text(" a ").without_blanks(), Some(text(" a ")), "kept as written");
        assert_eq!(FieldValue::number(0.0).without_blanks(), Some(FieldValue::Number(0.0)));
    }

    #[test]
    fn blank_text_shows_nothing() {
        for blank in ["", "  \t", "\u{200b}\u{feff}", "\u{00ad}\u{2060} ", "\u{fe0f}"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for text in ["a", " \u{200b}x", "⭐\u{fe0f}", "!"] {
            assert!(!is_blank(text), "{text:?}");
        }
    }

    #[test]
    fn an_id_is_refused_for_what_would_make_two_ids_look_alike_or_break_a_line() {
        for good in ["7", "item 7", "帐篷-1", "a\u{00a0}b", "می\u{200c}خواهم", "⭐\u{fe0f}", &"x".repeat(MAX_ID_BYTES)]
        {
            assert_eq!(id_problem(good), None, "{good:?}");
        }
        for (bad, why) in [
            ("", "is empty"),
            (" \t", "is empty"),
            ("\u{200b}\u{feff}", "is empty"),
            ("\u{fe0f}", "is empty"),
            (" 7", "(U+0020) at its start or end"),
            ("7\u{3000}", "(U+3000) at its start or end"),
            ("\u{feff}7", "(U+FEFF) at its start or end"),
            ("7\u{200b}", "(U+200B) at its start or end"),
            ("\u{200e}7", "(U+200E) at its start or end"),
            ("a\nb", "U+000A"),
            ("a\u{85}b", "U+0085"),
            ("a\u{2028}b", "U+2028"),
        ] {
            let problem = id_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad:?}: {problem}");
        }
        // Too long is said without echoing the id, whatever else is wrong with it.
        let long = format!(" {}", "é".repeat(MAX_ID_BYTES / 2 + 1));
        assert_eq!(id_problem(&long).unwrap(), "is 515 bytes long; an id is at most 512");
        // Field names follow the same rule, said as theirs.
        assert_eq!(field_name_problem("price"), None);
        assert!(field_name_problem("").unwrap().starts_with("field name is empty"));
        assert!(field_name_problem("a\u{0}b").unwrap().contains("U+0000"));
        assert!(field_name_problem("price ").unwrap().contains("field names are compared exactly"));
    }

    #[test]
    fn a_value_is_read_as_its_fields_type_or_named_when_it_cannot_be() {
        let text = |s: &str| FieldValue::Text(s.into());
        assert_eq!(FieldType::Number.coerce(&text(" 25 ")), Ok(FieldValue::Number(25.0)));
        assert_eq!(FieldType::Number.coerce(&FieldValue::Number(2.5)), Ok(FieldValue::Number(2.5)));
        assert_eq!(FieldType::Number.coerce(&text("cheap")), Err("text \"cheap\"".into()));
        assert!(FieldType::Number.coerce(&text("inf")).is_err(), "not a finite number");
        assert_eq!(FieldType::Text.coerce(&FieldValue::Number(25.0)), Ok(text("25")));
        assert_eq!(FieldType::Text.coerce(&FieldValue::Number(0.5)), Ok(text("0.5")));
        assert_eq!(FieldType::List.coerce(&text("solo")), Ok(FieldValue::List(vec!["solo".into()])));
        assert!(FieldType::Text.coerce(&FieldValue::List(vec![])).is_err());
        assert_eq!(FieldType::Number.coerce(&FieldValue::List(vec!["1995".into()])), Ok(FieldValue::Number(1995.0)));
        assert!(FieldType::Number.coerce(&FieldValue::List(vec!["1".into(), "2".into()])).is_err());
        for (written, number) in [("25", true), ("-3", true), ("19.5", true), ("19.50", true), ("25.", true)] {
            assert_eq!(FieldType::reads_as_number(&text(written)), number, "{written}");
        }
        for kept in ["02134", "007", "1e5", "+5", "18446744073709551616", "1.10.2", "NaN", "inf", ""] {
            assert!(!FieldType::reads_as_number(&text(kept)), "{kept} would be rewritten as a number");
        }
        assert_eq!("List".parse::<FieldType>(), Ok(FieldType::List));
        assert!("int".parse::<FieldType>().is_err());
    }

    #[test]
    fn minus_zero_comes_in_as_zero_every_way() {
        let positive = |value: FieldValue| match value {
            FieldValue::Number(n) => n == 0.0 && n.is_sign_positive(),
            FieldValue::Text(t) => t == "0",
            FieldValue::List(l) => l == ["0"],
        };
        let minus = FieldValue::Number(-0.0);
        let ways = [
            FieldValue::from_json(&serde_json::json!(-0.0)).unwrap(),
            serde_json::from_str::<FieldValue>("-0.0").unwrap(),
            serde_json::from_str::<FieldValue>("-0").unwrap(),
            FieldType::Number.coerce(&FieldValue::Text("-0".into())).unwrap(),
            FieldType::Number.coerce(&FieldValue::List(vec!["-0.0".into()])).unwrap(),
            FieldType::Number.coerce(&minus).unwrap(),
            FieldType::Text.coerce(&minus).unwrap(),
            FieldType::List.coerce(&minus).unwrap(),
            FieldValue::number(-0.0),
        ];
        for (i, value) in ways.into_iter().enumerate() {
            assert!(positive(value.clone()), "way {i}: {value:?}");
        }
        assert_eq!(serde_json::to_string(&FieldValue::number(-0.0)).unwrap(), "0");
    }

    #[test]
    fn whole_numbers_are_written_as_integers_and_read_back_the_same() {
        for (n, written) in [
            (25.0, "25"),
            (1995.0, "1995"),
            (-3.0, "-3"),
            (19.5, "19.5"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (9_007_199_254_740_994.0, "a float"),
            (1e300, "a float"),
        ] {
            let value = FieldValue::Number(n);
            let json = serde_json::to_string(&value).unwrap();
            match written {
                "a float" => assert!(json.contains(['.', 'e']), "{json}: past 2^53 an integer may not be exact"),
                _ => assert_eq!(json, written),
            }
            assert_eq!(serde_json::from_str::<FieldValue>(&json).unwrap(), value, "{json}");
        }
    }
}
