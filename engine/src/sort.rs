//! Sorting a ranked list by catalog fields (`sort`): "cheapest first" over the hits a search,
//! a recommendation or similar items found, as a catalog page's sort menu offers.
//!
//! What is sorted is the ranked list the request's pages are cut from (`Results::total` hits:
//! each retriever's candidates, fused, after `filters` and `exclude`), the same set `facets`
//! count, not the whole catalog: a dense retriever scores every item, so the relevant set is
//! the candidates. A browse (a search without a query) lists every item its filters allow, so
//! there the whole allowed catalog is sorted. Equal keys keep their fused order (a sorted list is never reranked), so
//! relevance is the last key. As Elasticsearch does by default, an item without the field (or
//! with an empty list) goes last whichever the order, and a list sorts by its smallest member
//! ascending and by its largest descending. Our own rules, where Elasticsearch compares bytes:
//! texts compare by their lower-case form only (code point order, not a language's
//! collation), so "Kestrel" and "KESTREL" are equal and the next key orders them; where a
//! field holds both numbers and texts (items written live with another type), numbers come
//! first ascending. A field the indexer read as text (numbers mixed with texts in the
//! catalog) sorts as text: "10" before "5".
//!
//! A sorted list is not reranked: a reranker orders by relevance, which the sort replaces
//! (Elasticsearch refuses `rescore` with `sort` the same way).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::item::FieldValue;

/// Most sort keys one request may give.
pub const MAX_SORT_KEYS: usize = 4;

/// One sort key: a field and a direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    /// A catalog field some item holds.
    pub field: String,
    /// `asc` (the default: smallest first) or `desc`.
    #[serde(default, deserialize_with = "crate::json::name_only")]
    pub order: SortOrder,
}

/// A sort key's direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Checks the keys a request sorts by.
///
/// # Errors
/// [`Error::InvalidArgument`] (`sort`) for more than [`MAX_SORT_KEYS`] keys, an empty field
/// name, or a field given twice (whether any item holds it is the engine's check).
pub(crate) fn check(keys: &[SortKey]) -> Result<()> {
    if keys.len() > MAX_SORT_KEYS {
        return Err(Error::invalid("sort", format!("at most {MAX_SORT_KEYS} keys, got {}", keys.len())));
    }
    let mut seen = HashSet::new();
    for key in keys {
        if key.field.is_empty() {
            return Err(Error::invalid("sort", "a key's field is empty"));
        }
        if !seen.insert(key.field.as_str()) {
            return Err(Error::invalid("sort", format!("{:?} is given twice", key.field)));
        }
    }
    Ok(())
}

/// One item's value of one key, as it compares.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Number(f64),
    /// Lower-case form: "Kestrel" and "KESTREL" are one value, which the next key (then
    /// relevance) orders. Borrowed from the item when it is lower case already (most brands,
    /// tags and codes): a browse of a whole catalog made a copy per item.
    Text(Cow<'a, str>),
}

impl<'a> Value<'a> {
    fn cmp(&self, other: &Value<'_>) -> Ordering {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a.total_cmp(b),
            (Value::Text(a), Value::Text(b)) => a.as_ref().cmp(b.as_ref()),
            (Value::Number(_), Value::Text(_)) => Ordering::Less,
            (Value::Text(_), Value::Number(_)) => Ordering::Greater,
        }
    }

    fn text(text: &'a str) -> Value<'a> {
        // ASCII without an upper-case letter is its own lower case; beyond ASCII, letters that
        // are not upper case may still lower (the title-case "ǅ"), so those are copied.
        match text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Value::Text(Cow::Borrowed(text)),
            false => Value::Text(Cow::Owned(text.to_lowercase())),
        }
    }
}

/// The value `key` sorts `fields` by: a list's smallest member ascending, its largest
/// descending; `None` without the field.
fn value_of<'a>(fields: &'a BTreeMap<String, FieldValue>, key: &SortKey) -> Option<Value<'a>> {
    match fields.get(&key.field)? {
        // -0.0 and 0.0 are one value, as filters compare them (`total_cmp` tells them apart);
        // values come in signless (`FieldValue::number`), but the variant can be built as is.
        FieldValue::Number(n) => Some(Value::Number(*n + 0.0)),
        FieldValue::Text(text) => Some(Value::text(text)),
        FieldValue::List(values) => {
            let members = values.iter().map(|v| Value::text(v));
            match key.order {
                SortOrder::Asc => members.min_by(|a, b| a.cmp(b)),
                SortOrder::Desc => members.max_by(|a, b| a.cmp(b)),
            }
        }
    }
}

/// The rerank plan of a sorted list: none. A reranker orders by relevance, which the sort
/// replaces, so asking for one is refused rather than ignored.
///
/// # Errors
/// [`Error::InvalidArgument`] (`sort`) when `rerank.enabled` is true.
pub(crate) fn unranked<T>(rerank: Option<&crate::request::RerankOptions>) -> Result<Option<T>> {
    match rerank {
        Some(options) if options.enabled => Err(Error::invalid(
            "sort",
            "a sorted list is not reranked (the sort replaces relevance order): leave out rerank or set rerank.enabled to false",
        )),
        _ => Ok(None),
    }
}

/// The positions of a ranked list in `keys`' order: `fields[i]` is the fields of the list's
/// `i`-th hit. Stable, so equal keys keep the list's order. Only the first `first` positions
/// are put in order (a page ends there; a browse may list a whole catalog, and a full sort of
/// 50,000 items cost tens of milliseconds); the rest follow in the list's order. O(n + f log f)
/// comparisons for n hits and f = min(first, n).
pub(crate) fn order(keys: &[SortKey], fields: &[&BTreeMap<String, FieldValue>], first: usize) -> Vec<usize> {
    // One allocation for every hit's values, `keys.len()` per hit (one per hit cost more than
    // the sort on a 50,000-item browse).
    let values: Vec<Option<Value>> = fields.iter().flat_map(|f| keys.iter().map(|key| value_of(f, key))).collect();
    let n = keys.len();
    let compare = |&a: &usize, &b: &usize| {
        for (k, key) in keys.iter().enumerate() {
            let by = match (&values[a * n + k], &values[b * n + k]) {
                (Some(x), Some(y)) => match key.order {
                    SortOrder::Asc => x.cmp(y),
                    SortOrder::Desc => y.cmp(x),
                },
                // Missing last, in either order.
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if by != Ordering::Equal {
                return by;
            }
        }
        // The list's order last: a total order, so the unstable algorithms below are stable.
        a.cmp(&b)
    };
    let mut positions: Vec<usize> = (0..fields.len()).collect();
    if first < positions.len() {
        positions.select_nth_unstable_by(first, compare);
        positions[..first].sort_unstable_by(compare);
        positions[first..].sort_unstable();
    } else {
        positions.sort_unstable_by(compare);
    }
    positions
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(field: &str, order: SortOrder) -> SortKey {
        SortKey { field: field.into(), order }
    }

    fn item(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn numbers_texts_lists_and_missing_values_sort_as_elasticsearch_does() {
        let list = |v: &[&str]| FieldValue::List(v.iter().map(|s| s.to_string()).collect());
        let items = [
            item(&[("price", FieldValue::Number(30.0)), ("brand", FieldValue::Text("kestrel".into()))]),
            item(&[("price", FieldValue::Number(12.5)), ("brand", FieldValue::Text("Alder".into()))]),
            item(&[("brand", FieldValue::Text("northpeak".into()))]),
            item(&[("price", FieldValue::Number(12.5)), ("brand", FieldValue::Text("alder".into()))]),
            item(&[("price", FieldValue::Text("n/a".into())), ("tags", list(&["b", "z"]))]),
            item(&[("tags", list(&["c", "d"]))]),
            item(&[("tags", list(&[]))]),
        ];
        let fields: Vec<_> = items.iter().collect();
        // Ascending: numbers first, the text after them, missing last; ties in list order.
        assert_eq!(order(&[key("price", SortOrder::Asc)], &fields, usize::MAX), [1, 3, 0, 4, 2, 5, 6]);
        assert_eq!(order(&[key("price", SortOrder::Desc)], &fields, usize::MAX), [4, 0, 1, 3, 2, 5, 6]);
        // Case folded: "Alder" and "alder" are one brand, which the next key orders, then the
        // list; the same brand holds whichever the direction.
        let by_brand = [key("brand", SortOrder::Asc), key("price", SortOrder::Desc)];
        assert_eq!(order(&by_brand, &fields, usize::MAX), [1, 3, 0, 2, 4, 5, 6]);
        assert_eq!(order(&[key("brand", SortOrder::Asc)], &fields, usize::MAX)[..2], [1, 3]);
        assert_eq!(order(&[key("brand", SortOrder::Desc)], &fields, usize::MAX)[..4], [2, 0, 1, 3]);
        // The trial's case: equal brands in three casings, ordered by price, a missing price last.
        let brands = [
            item(&[("brand", FieldValue::Text("Alpha".into())), ("price", FieldValue::Number(5.5))]),
            item(&[("brand", FieldValue::Text("ALPHA".into())), ("price", FieldValue::Number(0.0))]),
            item(&[("brand", FieldValue::Text("alpha".into()))]),
            item(&[("brand", FieldValue::Text("alpha".into())), ("price", FieldValue::Number(7.0))]),
        ];
        let brands: Vec<_> = brands.iter().collect();
        let by_brand_then_price = [key("brand", SortOrder::Asc), key("price", SortOrder::Desc)];
        assert_eq!(order(&by_brand_then_price, &brands, usize::MAX), [3, 0, 1, 2]);
        // A list: its smallest member ascending ("b" < "c"), its largest descending ("z" > "d").
        assert_eq!(order(&[key("tags", SortOrder::Asc)], &fields, usize::MAX)[..2], [4, 5]);
        assert_eq!(order(&[key("tags", SortOrder::Desc)], &fields, usize::MAX)[..2], [4, 5]);
        // -0.0 and 0.0 are one value: a tie, in list order.
        let zeros = [item(&[("price", FieldValue::Number(0.0))]), item(&[("price", FieldValue::Number(-0.0))])];
        let zeros: Vec<_> = zeros.iter().collect();
        assert_eq!(order(&[key("price", SortOrder::Asc)], &zeros, usize::MAX), [0, 1]);
        // An item without fields at all is missing every key.
        assert_eq!(order(&[key("price", SortOrder::Asc)], &[&BTreeMap::new(), &items[0]], usize::MAX), [1, 0]);
    }

    #[test]
    fn texts_compare_by_their_lower_case_whether_borrowed_or_copied() {
        for text in ["kestrel", "Kestrel", "ǅungla", "ΣΟΦΟΣ", "b123", ""] {
            let Value::Text(value) = Value::text(text) else { panic!("{text}") };
            assert_eq!(value, text.to_lowercase(), "{text}");
        }
        assert!(matches!(Value::text("b123"), Value::Text(Cow::Borrowed(_))), "lower-case ASCII is not copied");
    }

    #[test]
    fn keys_are_checked() {
        let many: Vec<SortKey> = (0..5).map(|i| key(&format!("f{i}"), SortOrder::Asc)).collect();
        assert!(check(&many).unwrap_err().to_string().contains("at most 4 keys"));
        let twice = [key("price", SortOrder::Asc), key("price", SortOrder::Desc)];
        assert!(check(&twice).unwrap_err().to_string().contains("\"price\" is given twice"));
        assert!(check(&[key("", SortOrder::Asc)]).unwrap_err().to_string().contains("empty"));
        let read: SortKey = serde_json::from_str(r#"{"field": "price"}"#).unwrap();
        assert_eq!(read, key("price", SortOrder::Asc));
        for bad in [r#"{"field": "price", "order": "up"}"#, r#"{"field": "price", "dir": "asc"}"#] {
            assert!(serde_json::from_str::<SortKey>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Any list: a permutation, numbers ordered as asked, missing values last, and equal
        /// values in the list's order.
        #[test]
        fn any_list_is_a_permutation_in_the_asked_order(
            prices in proptest::collection::vec(proptest::option::of(-1e6f64..1e6), 0..40),
            desc in any::<bool>(),
            first in 0usize..45,
        ) {
            let items: Vec<_> = prices
                .iter()
                .map(|p| p.map(|p| item(&[("price", FieldValue::Number((p * 4.0).round() / 4.0))])).unwrap_or_default())
                .collect();
            let fields: Vec<_> = items.iter().collect();
            let order_ = if desc { SortOrder::Desc } else { SortOrder::Asc };
            let positions = order(&[key("price", order_)], &fields, usize::MAX);
            // Ordered up to `first` only: the same prefix, the rest in the list's order.
            let partial = order(&[key("price", order_)], &fields, first);
            let cut = first.min(items.len());
            prop_assert_eq!(&partial[..cut], &positions[..cut]);
            prop_assert!(partial[cut..].windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(partial.len(), positions.len());
            let mut sorted = positions.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..items.len()).collect::<Vec<_>>());
            let price = |i: usize| match items[i].get("price") { Some(FieldValue::Number(n)) => Some(*n), _ => None };
            for pair in positions.windows(2) {
                match (price(pair[0]), price(pair[1])) {
                    (Some(a), Some(b)) => {
                        let in_order = if desc { a >= b } else { a <= b };
                        prop_assert!(in_order, "{} then {}", a, b);
                        if a == b { prop_assert!(pair[0] < pair[1], "equal values keep the list's order"); }
                    }
                    (None, Some(_)) => prop_assert!(false, "a missing value before a present one"),
                    (None, None) => prop_assert!(pair[0] < pair[1]),
                    (Some(_), None) => {}
                }
            }
        }
    }
}
