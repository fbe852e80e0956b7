//! Filters on item fields. A request names fields and a condition for each; an item passes when
//! it meets every condition.
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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::item::{FieldType, FieldValue};

/// A numeric range; absent bounds are open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// One field's condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Condition {
    /// Equal to this number.
    Number(f64),
    /// Equal to this string (or contains it, for list fields).
    Text(String),
    /// Any of these strings.
    AnyOf(Vec<String>),
    /// Within this range.
    Range(Range),
}

/// Conditions by field name; all must hold.
pub type Filters = BTreeMap<String, Condition>;

impl Condition {
    /// Whether a field value (or its absence) satisfies the condition.
    pub fn matches(&self, value: Option<&FieldValue>) -> bool {
        Prepared::new(self).matches(value)
    }

    /// Why the condition is malformed, if it is.
    pub fn problem(&self) -> Option<String> {
        match self {
            Condition::AnyOf(options) if options.is_empty() => Some("an empty list matches nothing".into()),
            Condition::Range(r) if r.gte.is_none() && r.gt.is_none() && r.lte.is_none() && r.lt.is_none() => {
                Some("a range needs at least one of gte, gt, lte, lt".into())
            }
            _ => None,
        }
    }

    /// Why the condition can match no value of a field of type `field`, if so: a range on
    /// text or lists, text that is no number on numbers.
    pub fn problem_for(&self, field: FieldType) -> Option<String> {
        let no_number = |texts: &[String]| texts.iter().all(|t| number(t).is_none());
        match (self, field) {
            (Condition::Range(_), FieldType::Text | FieldType::List) => Some(format!(
                "a range compares numbers, and this field holds {} (a field of numbers with a few other values \
                 is typed text: declare it with --field-type NAME=number to refuse those rows instead)",
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
    let prepared: Vec<(&String, Prepared<'_>)> = filters.iter().map(|(name, c)| (name, Prepared::new(c))).collect();
    move |fields| prepared.iter().all(|(name, condition)| condition.matches(fields.get(*name)))
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
        assert!(range.problem_for(FieldType::List).unwrap().contains("holds a list"));
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
    }
}
