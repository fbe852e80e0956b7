//! Filters on item fields. A request names fields and a condition for each; an item passes when
//! it meets every condition. Its `exclude` list takes the same conditions and leaves out an
//! item meeting any of them ([`exclude`], [`excluder`]: a must-not list).
//!
//! ```json
//! {"category": "tents", "tags": ["ultralight", "4-season"], "price": {"gte": 100, "lt": 400}}
//! ```
//! A string or number matches equal values (or, for a list field, any member); a list matches
//! if any of its strings is present; an object is a numeric range. A number and text that reads
//! as that number are equal (`25` and `"25"`), as a catalog's values are read
//! ([`crate::item::FieldType`]). A condition that can match no value of its field's type (a
//! range on text, `"abc"` on numbers) is refused rather than answered with nothing
//! ([`Condition::problem_for`]).

mod index;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::index::FieldIndex;
use crate::item::{FieldType, FieldValue};

/// A numeric range; absent bounds are open, and at least one is needed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(min_properties = 1))]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Strictly greater.
    pub gt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
    /// Strictly less.
    pub lt: Option<f64>,
}

/// One field's condition. Read by its JSON type (a number, a string, a list, an object) with
/// an error that says what a condition may be; serde's untagged reading said only "data did
/// not match any variant", whatever was wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Condition {
    /// Equal to this number.
    Number(f64),
    /// Equal to this string (or contains it, for list fields).
    Text(String),
    /// Any of these strings (a number in the list is read as the string it prints as).
    AnyOf(Vec<String>),
    /// Within this range.
    Range(Range),
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Condition;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a condition: a string, a number, a list of strings, or a range {\"gte\", \"gt\", \"lte\", \"lt\"}",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Condition, E> {
                Ok(Condition::Number(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Condition, E> {
                Ok(Condition::Number(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Condition, E> {
                Ok(Condition::Number(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Condition, E> {
                Ok(Condition::Text(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Condition, A::Error> {
                let mut options = Vec::new();
                while let Some(ListMember(option)) = seq.next_element::<ListMember>()? {
                    options.push(option);
                }
                Ok(Condition::AnyOf(options))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Condition, A::Error> {
                Range::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Condition::Range)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One member of a list condition: a string, or a number read as the string it prints as
/// (`[89.95, 129]` on a price, `[42, 43]` on sizes), as a single number condition is. A list
/// of numbers was refused with "expected a string".
struct ListMember(String);

impl<'de> Deserialize<'de> for ListMember {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ListMember;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number in a list condition")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ListMember, E> {
                Ok(ListMember(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ListMember, E> {
                Ok(ListMember(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ListMember, E> {
                Ok(ListMember(v.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListMember, E> {
                Ok(ListMember(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Conditions by field name; all must hold.
pub type Filters = BTreeMap<String, Condition>;

impl Condition {
    /// Whether a field value (or its absence) satisfies the condition.
    pub fn matches(&self, value: Option<&FieldValue>) -> bool {
        Prepared::new(self).matches(value)
    }

    /// Why the condition is malformed, if it is: an empty list, a range with no bound, or a
    /// range no number is in (`{"gte": 300, "lt": 100}`: it would answer with nothing).
    pub fn problem(&self) -> Option<String> {
        match self {
            Condition::AnyOf(options) if options.is_empty() => Some("an empty list matches nothing".into()),
            Condition::Range(r) if r.gte.is_none() && r.gt.is_none() && r.lte.is_none() && r.lt.is_none() => {
                Some("a range needs at least one of gte, gt, lte, lt".into())
            }
            Condition::Range(r) => {
                // The tightest lower and upper bounds, each with whether it is strict.
                let lower = [r.gte.map(|v| (v, false)), r.gt.map(|v| (v, true))]
                    .into_iter()
                    .flatten()
                    .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let upper = [r.lte.map(|v| (v, false)), r.lt.map(|v| (v, true))]
                    .into_iter()
                    .flatten()
                    .min_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
                match (lower, upper) {
                    (Some((low, low_strict)), Some((high, high_strict)))
                        if low > high || (low == high && (low_strict || high_strict)) =>
                    {
                        Some(format!(
                            "no number is {} {low} and {} {high}: the range is empty",
                            if low_strict { ">" } else { "≥" },
                            if high_strict { "<" } else { "≤" }
                        ))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Why the condition can match no value of a field of type `field`, if so: a range on
    /// text or lists, text that is no number on numbers.
    pub fn problem_for(&self, field: FieldType) -> Option<String> {
        let no_number = |texts: &[String]| texts.iter().all(|t| number(t).is_none());
        match (self, field) {
            (Condition::Range(_), FieldType::Text) => Some(format!(
                "a range compares numbers, and this field holds {} (a field of numbers with a few other values \
                 is typed text: declare it with --field-type NAME=number to refuse those rows instead)",
                field.described()
            )),
            (Condition::Range(_), FieldType::List) => Some(format!(
                "a range compares numbers, and this field holds {} (match a value of the list with a string, or \
                 any of several with a list of strings)",
                field.described()
            )),
            (Condition::Text(text), FieldType::Number) if no_number(std::slice::from_ref(text)) => {
                Some(format!("this field holds numbers, and {text:?} is not one"))
            }
            (Condition::AnyOf(texts), FieldType::Number) if no_number(texts) => {
                Some(format!("this field holds numbers, and none of {texts:?} is one"))
            }
            _ => None,
        }
    }
}

/// Text as the number it is as written, by the rule catalogs are typed with: `"02134"`, `"1e5"`
/// and 20-digit codes stay text there, so they equal no number here.
fn number(text: &str) -> Option<f64> {
    FieldType::number_as_written(text)
}

/// A condition with what its own text reads as worked out once, not once per item it is
/// checked against (a filter mask checks every item of the catalog).
struct Prepared<'a> {
    condition: &'a Condition,
    /// A text or list condition's strings as numbers, for number values.
    wanted: Vec<Option<f64>>,
    /// A number condition's own form (`25`, `19.5`), for text values.
    shown: String,
}

impl<'a> Prepared<'a> {
    fn new(condition: &'a Condition) -> Self {
        let wanted = match condition {
            Condition::Text(text) => vec![number(text)],
            Condition::AnyOf(texts) => texts.iter().map(|t| number(t)).collect(),
            Condition::Number(_) | Condition::Range(_) => Vec::new(),
        };
        let shown = match condition {
            Condition::Number(n) => format!("{n}"),
            _ => String::new(),
        };
        Prepared { condition, wanted, shown }
    }

    fn matches(&self, value: Option<&FieldValue>) -> bool {
        let Some(value) = value else { return false };
        let has = |wanted: &str, as_number: Option<f64>| match value {
            FieldValue::Text(s) => s == wanted,
            FieldValue::List(list) => list.iter().any(|s| s == wanted),
            FieldValue::Number(v) => as_number == Some(*v),
        };
        match self.condition {
            Condition::Number(n) => match value {
                FieldValue::Number(v) => v == n,
                FieldValue::Text(s) => FieldType::writes_number(s, *n, &self.shown),
                FieldValue::List(list) => list.iter().any(|s| FieldType::writes_number(s, *n, &self.shown)),
            },
            Condition::Text(s) => has(s, self.wanted[0]),
            Condition::AnyOf(options) => options.iter().zip(&self.wanted).any(|(s, n)| has(s, *n)),
            Condition::Range(range) => match value {
                FieldValue::Number(v) => {
                    range.gte.is_none_or(|b| *v >= b)
                        && range.gt.is_none_or(|b| *v > b)
                        && range.lte.is_none_or(|b| *v <= b)
                        && range.lt.is_none_or(|b| *v < b)
                }
                _ => false,
            },
        }
    }
}

/// `filters` as a test of one item's fields: true when it meets every condition. Build it once
/// per request and call it per item.
pub fn matcher(filters: &Filters) -> impl Fn(&BTreeMap<String, FieldValue>) -> bool + '_ {
    let prepared = prepare(filters);
    move |fields| prepared.iter().all(|(name, condition)| condition.matches(fields.get(*name)))
}

/// Each condition of `filters` prepared once per request, beside its field's name.
fn prepare(filters: &Filters) -> Vec<(&String, Prepared<'_>)> {
    filters.iter().map(|(name, c)| (name, Prepared::new(c))).collect()
}

/// The allow mask of `filters` over the items `index` holds: entry `i` is true when item `i`
/// meets every condition (every item, for no condition), as [`matcher`] says item by item. Built from the items each condition
/// finds in the index (one pass over those per condition), never from every item's fields.
pub fn mask(index: &FieldIndex, filters: &Filters) -> Vec<bool> {
    // Conditions met so far per item: an item found by condition `c` moves on only from `c`,
    // so one found twice by the same condition counts once.
    let mut met = vec![0u32; index.len()];
    for (c, (name, condition)) in filters.iter().enumerate() {
        let c = c as u32;
        index.matching(name, condition, &mut |item| {
            if let Some(slot) = met.get_mut(item as usize).filter(|slot| **slot == c) {
                *slot = c + 1;
            }
        });
    }
    let all = filters.len() as u32;
    met.into_iter().map(|m| m == all).collect()
}

/// Clears the entries of `mask` (over the items `index` holds) whose item meets any condition
/// of `exclude`: a must-not list, as [`excluder`] says item by item.
pub fn exclude(index: &FieldIndex, exclude: &Filters, mask: &mut [bool]) {
    for (name, condition) in exclude {
        index.matching(name, condition, &mut |item| {
            if let Some(slot) = mask.get_mut(item as usize) {
                *slot = false;
            }
        });
    }
}

/// `exclude` as a test of one item's fields: true when it meets any condition (an item lacking
/// a field meets none of its conditions).
pub fn excluder(exclude: &Filters) -> impl Fn(&BTreeMap<String, FieldValue>) -> bool + '_ {
    let prepared = prepare(exclude);
    move |fields| prepared.iter().any(|(name, condition)| condition.matches(fields.get(*name)))
}

/// The parts of `condition` a note may say no item meets: each string of a list alone, else
/// the condition itself.
pub fn atoms(condition: &Condition) -> Vec<Condition> {
    match condition {
        Condition::AnyOf(options) => options.iter().cloned().map(Condition::Text).collect(),
        other => vec![other.clone()],
    }
}

/// How many distinct values of a field a note reads for close ones; past it the note names
/// none (a field of titles or ids is no list to suggest from, and a request should not pay for
/// reading it).
pub const SUGGEST_FROM_AT_MOST: usize = 5_000;

/// The note a response carries for `atom` (from [`atoms`]) on field `name` of the request's
/// `list` (`filters` or `exclude`, which the note is prefixed with) when no item meets it: a request is answered (an unknown value is not an error: a value can come and go with
/// the catalog), and the note says why a list is short or empty, with the field's values close
/// to a text that no item has (the same when case, accents and punctuation are set aside,
/// else by Damerau-Levenshtein similarity ≥ 0.75 of those forms; at most 3) and the span of a
/// field's numbers. The values suggested are what a request can find now: the generation's
/// that `held` says a visible item still holds, and `live`, the field's text values written
/// live since the build.
pub fn unmet_note(
    index: &FieldIndex,
    list: &str,
    name: &str,
    atom: &Condition,
    live: &[String],
    held: &dyn Fn(&str) -> bool,
) -> String {
    let span = index.number_span(name).map(|(low, high)| format!(" (its numbers run from {low} to {high})"));
    match atom {
        Condition::Text(text) => {
            let close = close_values(index, name, text, live, held);
            let close = if close.is_empty() { String::new() } else { format!("; close values: {close:?}") };
            format!("{list}.{name}: no item has {text:?}{close}")
        }
        Condition::Number(n) => format!("{list}.{name}: no item has {n}{}", span.unwrap_or_default()),
        Condition::AnyOf(_) | Condition::Range(_) => {
            format!("{list}.{name}: no item's value meets this condition{}", span.unwrap_or_default())
        }
    }
}

/// A text as a note compares it with a field's values: lower case, letters and digits only,
/// accents folded ("Children's" and "childrens" alike).
pub(crate) fn fold_for_suggestion(text: &str) -> String {
    crate::analysis::fold::fold_diacritics(&text.to_lowercase(), crate::analysis::Revision::default())
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The longest text (in characters, folded) a note looks for close values of: an edit
/// distance costs the product of the two lengths, and a value that long is no typo of a
/// category.
const SUGGEST_FOR_AT_MOST_CHARS: usize = 64;

/// Up to 3 of field `name`'s text values closest to `text`, best first, never `text` itself
/// ([`unmet_note`]): the generation's (those `held` keeps) and `live`'s. A value whose length
/// alone keeps it under the 0.75 similarity (the distance is at least the difference in
/// lengths) is not compared; `held`, which may walk postings, is asked only of the close ones.
fn close_values<'a>(
    index: &'a FieldIndex,
    name: &str,
    text: &str,
    live: &'a [String],
    held: &dyn Fn(&str) -> bool,
) -> Vec<&'a str> {
    let wanted = fold_for_suggestion(text);
    let length = wanted.chars().count();
    if length == 0 || length > SUGGEST_FOR_AT_MOST_CHARS {
        return Vec::new();
    }
    let close = |folded: &str, other: usize, value: &'a str| {
        if value == text || 4 * length.min(other) < 3 * length.max(other) {
            return None;
        }
        let similarity = strsim::normalized_damerau_levenshtein(&wanted, folded);
        (similarity >= 0.75).then_some((similarity, value))
    };
    let built = index.suggestible(name).unwrap_or_default().iter();
    let mut scored: Vec<(f64, &str)> = built
        .filter_map(|(folded, other, value)| close(folded, *other, value))
        .filter(|(_, value)| held(value))
        .collect();
    for value in live {
        let folded = fold_for_suggestion(value);
        if let Some(found) = close(&folded, folded.chars().count(), value) {
            scored.push(found);
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, value)| value).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> BTreeMap<String, FieldValue> {
        BTreeMap::from([
            ("brand".to_string(), FieldValue::Text("Acme".into())),
            ("tags".to_string(), FieldValue::List(vec!["a".into(), "b".into()])),
            ("price".to_string(), FieldValue::Number(25.0)),
        ])
    }

    #[test]
    fn conditions_parse_from_json_and_match() {
        let filters: Filters =
            serde_json::from_str(r#"{"brand": "Acme", "tags": ["x", "b"], "price": {"gte": 10, "lt": 25.5}}"#).unwrap();
        assert!(matcher(&filters)(&fields()));
        let miss: Filters = serde_json::from_str(r#"{"price": {"gt": 25}}"#).unwrap();
        assert!(!matcher(&miss)(&fields()));
        let absent: Filters = serde_json::from_str(r#"{"colour": "red"}"#).unwrap();
        assert!(!matcher(&absent)(&fields()));
        let exact: Filters = serde_json::from_str(r#"{"price": 25, "tags": "a"}"#).unwrap();
        assert!(matcher(&exact)(&fields()));
        // As a must-not list: any condition met excludes; a field the item lacks excludes nothing.
        let any: Filters = serde_json::from_str(r#"{"brand": "Other", "tags": ["b"]}"#).unwrap();
        assert!(excluder(&any)(&fields()));
        assert!(!excluder(&absent)(&fields()) && !excluder(&miss)(&fields()));
        assert!(!excluder(&Filters::new())(&fields()));
    }

    #[test]
    fn numbers_and_their_text_are_equal_and_conditions_no_value_matches_are_named() {
        let price = FieldValue::Number(25.0);
        let year = FieldValue::Text("1995".into());
        let years = FieldValue::List(vec!["1995".into(), "1996".into()]);
        assert!(Condition::Text("25".into()).matches(Some(&price)));
        assert!(Condition::AnyOf(vec!["x".into(), "25.0".into()]).matches(Some(&price)));
        assert!(Condition::Number(1995.0).matches(Some(&year)));
        assert!(Condition::Number(1996.0).matches(Some(&years)));
        assert!(!Condition::Number(1997.0).matches(Some(&years)));
        let range = Condition::Range(Range { gte: Some(1990.0), ..Range::default() });
        let list = range.problem_for(FieldType::List).unwrap();
        assert!(list.contains("holds a list") && !list.contains("--field-type"), "{list}");
        assert!(range.problem_for(FieldType::Text).unwrap().contains("--field-type NAME=number"));
        assert!(range.problem_for(FieldType::Text).is_some() && range.problem_for(FieldType::Number).is_none());
        let abc = Condition::Text("abc".into());
        assert!(abc.problem_for(FieldType::Number).unwrap().contains("\"abc\" is not one"));
        assert!(abc.problem_for(FieldType::Text).is_none() && abc.problem_for(FieldType::List).is_none());
        assert!(Condition::AnyOf(vec!["abc".into(), "5".into()]).problem_for(FieldType::Number).is_none());
        assert!(Condition::AnyOf(vec!["abc".into()]).problem_for(FieldType::Number).is_some());
        assert!(Condition::Number(3.0).problem_for(FieldType::Text).is_none(), "text may hold a number's text");
        // Text a number would rewrite stays text, as the catalog typed it.
        for kept in ["02134", "1e5", "12345678901234567890"] {
            let n: f64 = kept.parse().unwrap();
            assert!(!Condition::Number(n).matches(Some(&FieldValue::Text(kept.into()))), "{kept}");
        }
        assert!(Condition::Number(19.5).matches(Some(&FieldValue::Text("19.50".into()))));
    }

    #[test]
    fn malformed_conditions_are_named() {
        assert!(Condition::AnyOf(vec![]).problem().is_some());
        assert!(Condition::Range(Range::default()).problem().is_some());
        assert!(serde_json::from_str::<Filters>(r#"{"price": {"above": 3}}"#).is_err());
        // What is wrong is said, by JSON type ("did not match any variant" said nothing).
        for (json, said) in [
            ("true", "expected a condition: a string, a number, a list of strings, or a range"),
            ("null", "expected a condition"),
            ("[\"a\", true]", "expected a string or a number in a list condition"),
            (r#"{"lt": 100, "bogus": 3}"#, "unknown field `bogus`"),
            (r#"{"lt": "100"}"#, "invalid type: string \"100\""),
        ] {
            let error = serde_json::from_str::<Condition>(json).unwrap_err().to_string();
            assert!(error.contains(said), "{json}: {error}");
        }
        let read = |json: &str| serde_json::from_str::<Condition>(json).unwrap();
        assert_eq!(read("[\"a\", \"b\"]"), Condition::AnyOf(vec!["a".into(), "b".into()]));
        // Numbers in a list read as they print, and meet a number field as strings of them do.
        assert_eq!(read("[89.95, 129, \"x\"]"), Condition::AnyOf(vec!["89.95".into(), "129".into(), "x".into()]));
        assert!(read("[89.95, 129]").matches(Some(&FieldValue::Number(129.0))));
        assert!(!read("[89.95, 129]").matches(Some(&FieldValue::Number(129.5))));
        assert_eq!(read("25"), Condition::Number(25.0));
        assert_eq!(read("\"25\""), Condition::Text("25".into()));
        // A range no number is in would answer with nothing: refused. Touching bounds that
        // both include the value are one number, not empty.
        for (json, empty) in [
            (r#"{"gte": 300, "lt": 100}"#, true),
            (r#"{"gt": 5, "lte": 5}"#, true),
            (r#"{"gte": 5, "lt": 5}"#, true),
            (r#"{"gte": 5, "lte": 5}"#, false),
            (r#"{"gt": 1, "gte": 3, "lt": 4, "lte": 9}"#, false),
            (r#"{"gt": 3, "gte": 3, "lte": 3}"#, true),
        ] {
            assert_eq!(read(json).problem().is_some_and(|p| p.contains("the range is empty")), empty, "{json}");
        }
    }

    #[test]
    fn a_value_no_item_has_is_noted_with_the_fields_close_values() {
        let genres = |list: &[&str]| {
            BTreeMap::from([
                ("genres".to_string(), FieldValue::List(list.iter().map(|g| g.to_string()).collect())),
                ("year".to_string(), FieldValue::Number(1990.0 + list.len() as f64)),
            ])
        };
        let items = [genres(&["Children's", "Comedy"]), genres(&["Drama"]), genres(&["Comedy", "Crime", "Drama"])];
        let index = FieldIndex::build(&items);
        let note = |name: &str, json: &str| {
            unmet_note(&index, "filters", name, &serde_json::from_str(json).unwrap(), &[], &|_| true)
        };
        // Case, accents and punctuation aside first, then small edits.
        assert_eq!(
            note("genres", "\"Childrens\""),
            r#"filters.genres: no item has "Childrens"; close values: ["Children's"]"#
        );
        assert_eq!(note("genres", "\"comdy\""), r#"filters.genres: no item has "comdy"; close values: ["Comedy"]"#);
        assert_eq!(note("genres", "\"Western\""), r#"filters.genres: no item has "Western""#);
        assert_eq!(note("year", "2031"), "filters.year: no item has 2031 (its numbers run from 1991 to 1993)");
        assert_eq!(
            note("year", r#"{"gte": 2000}"#),
            "filters.year: no item's value meets this condition (its numbers run from 1991 to 1993)"
        );
        // Never the text itself (its items may be hidden), nothing for punctuation alone or a
        // text too long to be a typo of a value.
        assert_eq!(note("genres", "\"Drama\""), r#"filters.genres: no item has "Drama""#);
        assert_eq!(note("genres", "\"—\""), r#"filters.genres: no item has "—""#);
        let long = format!("\"{}\"", "Comedy".repeat(20));
        assert!(!note("genres", &long).contains("close values"));
        let list: Condition = serde_json::from_str(r#"["Drama", "Dramas"]"#).unwrap();
        assert_eq!(atoms(&list), [Condition::Text("Drama".into()), Condition::Text("Dramas".into())]);
        // What a request can find now: a value no visible item holds any longer is not
        // suggested, and one written live since the build is.
        let comedy: Condition = serde_json::from_str("\"Comedys\"").unwrap();
        let live = ["Comedies".to_string(), "Comedy".to_string()];
        let gone = |value: &str| value != "Comedy";
        assert_eq!(
            unmet_note(&index, "filters", "genres", &comedy, &live, &gone),
            r#"filters.genres: no item has "Comedys"; close values: ["Comedy", "Comedies"]"#,
            "written live again, it is suggested once"
        );
        assert_eq!(
            unmet_note(&index, "filters", "genres", &comedy, &live[..1], &gone),
            r#"filters.genres: no item has "Comedys"; close values: ["Comedies"]"#
        );
    }
}
