//! Filters on item fields. A request names fields and a condition for each; an item passes when
//! it meets every condition.
//!
//! ```json
//! {"category": "tents", "tags": ["ultralight", "4-season"], "price": {"gte": 100, "lt": 400}}
//! ```
//! A string or number matches equal values (or, for a list field, any member); a list matches
//! if any of its strings is present; an object is a numeric range.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::item::FieldValue;

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
        let Some(value) = value else { return false };
        let has = |wanted: &str| match value {
            FieldValue::Text(s) => s == wanted,
            FieldValue::List(list) => list.iter().any(|s| s == wanted),
            FieldValue::Number(_) => false,
        };
        match self {
            Condition::Number(n) => matches!(value, FieldValue::Number(v) if v == n),
            Condition::Text(s) => has(s),
            Condition::AnyOf(options) => options.iter().any(|s| has(s)),
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
}

/// Whether an item's fields satisfy every filter.
pub fn matches_all(filters: &Filters, fields: &BTreeMap<String, FieldValue>) -> bool {
    filters.iter().all(|(name, condition)| condition.matches(fields.get(name)))
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
        assert!(matches_all(&filters, &fields()));
        let miss: Filters = serde_json::from_str(r#"{"price": {"gt": 25}}"#).unwrap();
        assert!(!matches_all(&miss, &fields()));
        let absent: Filters = serde_json::from_str(r#"{"colour": "red"}"#).unwrap();
        assert!(!matches_all(&absent, &fields()));
        let exact: Filters = serde_json::from_str(r#"{"price": 25, "tags": "a"}"#).unwrap();
        assert!(matches_all(&exact, &fields()));
    }

    #[test]
    fn malformed_conditions_are_named() {
        assert!(Condition::AnyOf(vec![]).problem().is_some());
        assert!(Condition::Range(Range::default()).problem().is_some());
        assert!(serde_json::from_str::<Filters>(r#"{"price": {"above": 3}}"#).is_err());
    }
}
