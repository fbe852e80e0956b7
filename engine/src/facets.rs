//! Facet counts: for each field a search names, how the hits of its ranked list spread over
//! the field's values, what a catalog page shows beside results ("Kestrel (12)").
//!
//! The counts are over the ranked list the request's pages are cut from (`Results::total`
//! hits: each retriever's candidates, fused, after `filters` and `exclude`), not over the whole
//! catalog: a dense retriever scores every item, so "the items matching a query" has no other
//! meaning in a hybrid search. Vespa's grouping over a hybrid query's matches (its ANN targets
//! and its lexical matches) counts a set of the same kind. Counts are conjunctive: a filter on
//! a field narrows that field's own counts too, as Meilisearch's `facetDistribution` does.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::item::FieldValue;

/// Most fields one request may count.
pub const MAX_FACETS: usize = 20;
/// Values listed per field, the most frequent first; `distinct` says how many there are.
pub const FACET_VALUES: usize = 20;

/// One field's counts over a ranked list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacetCounts {
    /// Hits of the list that hold the field.
    pub hits: usize,
    /// Distinct text values (a list field's members each count as a value).
    pub distinct: usize,
    /// The most frequent text values, at most 20, each with the hits holding it: most first,
    /// equal counts by value. A list field's member counts once per hit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<FacetValue>,
    /// The smallest number the field holds in the list (number fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The largest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A value and the hits holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacetValue {
    /// The value, as stored.
    pub value: String,
    /// Hits holding it.
    pub count: usize,
}

/// Checks the field names a request counts.
///
/// # Errors
/// [`Error::InvalidArgument`] (`facets`) for more than [`MAX_FACETS`] names, an empty one, or
/// one given twice (whether any item holds it is the engine's check, which knows the fields).
pub(crate) fn check(names: &[String]) -> Result<()> {
    if names.len() > MAX_FACETS {
        return Err(Error::invalid("facets", format!("at most {MAX_FACETS} fields, got {}", names.len())));
    }
    let mut seen = HashSet::new();
    for name in names {
        if name.trim().is_empty() {
            return Err(Error::invalid("facets", "a field name is empty"));
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::invalid("facets", format!("{name:?} is named twice")));
        }
    }
    Ok(())
}

/// The counts of each field in `names` over the hits whose fields `hits` gives, one map per
/// hit. A field no hit holds has zero counts (a field of other items: the engine refuses one no
/// item has before it counts).
pub(crate) fn count<'a>(
    names: &[String],
    hits: impl IntoIterator<Item = &'a BTreeMap<String, FieldValue>>,
) -> BTreeMap<String, FacetCounts> {
    let mut texts: Vec<HashMap<&'a str, usize>> = vec![HashMap::new(); names.len()];
    let mut counts: Vec<FacetCounts> = vec![FacetCounts::default(); names.len()];
    for fields in hits {
        for (f, name) in names.iter().enumerate() {
            let Some(value) = fields.get(name) else { continue };
            let facet = &mut counts[f];
            facet.hits += 1;
            match value {
                FieldValue::Number(n) => {
                    facet.min = Some(facet.min.map_or(*n, |m| m.min(*n)));
                    facet.max = Some(facet.max.map_or(*n, |m| m.max(*n)));
                }
                FieldValue::Text(text) => *texts[f].entry(text).or_default() += 1,
                FieldValue::List(members) => {
                    // A member listed twice in one item still counts that hit once.
                    let once: HashSet<&str> = members.iter().map(String::as_str).collect();
                    for member in once {
                        *texts[f].entry(member).or_default() += 1;
                    }
                }
            }
        }
    }
    names
        .iter()
        .zip(counts)
        .zip(texts)
        .map(|((name, mut facet), texts)| {
            facet.distinct = texts.len();
            let mut values: Vec<FacetValue> =
                texts.into_iter().map(|(value, count)| FacetValue { value: value.to_string(), count }).collect();
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            values.truncate(FACET_VALUES);
            facet.values = values;
            (name.clone(), facet)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn values_count_hits_most_first_and_numbers_give_their_span() {
        let text = |s: &str| FieldValue::Text(s.into());
        let list = |l: &[&str]| FieldValue::List(l.iter().map(|s| s.to_string()).collect());
        let hits = [
            fields(&[("brand", text("Kestrel")), ("tags", list(&["ultralight", "ultralight", "3-season"]))]),
            fields(&[("brand", text("Alder")), ("price", FieldValue::Number(120.0)), ("tags", list(&[]))]),
            fields(&[("brand", text("Kestrel")), ("price", FieldValue::Number(-5.5))]),
            fields(&[("price", text("on request"))]),
        ];
        let names: Vec<String> = ["brand", "tags", "price", "colour"].map(String::from).to_vec();
        let counts = count(&names, &hits);
        let values = |name: &str| counts[name].values.iter().map(|v| (v.value.as_str(), v.count)).collect::<Vec<_>>();
        assert_eq!(values("brand"), [("Kestrel", 2), ("Alder", 1)]);
        assert_eq!((counts["brand"].hits, counts["brand"].distinct), (3, 2));
        // A member listed twice in one item counts once; equal counts go by value.
        assert_eq!(values("tags"), [("3-season", 1), ("ultralight", 1)]);
        assert_eq!(counts["tags"].hits, 2, "an empty list still holds the field");
        // Numbers give their span; a text value of a number field is counted as text.
        assert_eq!((counts["price"].min, counts["price"].max), (Some(-5.5), Some(120.0)));
        assert_eq!((values("price"), counts["price"].hits), (vec![("on request", 1)], 3));
        assert_eq!(counts["colour"], FacetCounts::default());
    }

    #[test]
    fn only_the_most_frequent_values_are_listed() {
        let hits: Vec<_> = (0..50).map(|i| fields(&[("n", FieldValue::Text(format!("v{:02}", i % 30)))])).collect();
        let counts = count(&["n".to_string()], &hits);
        let facet = &counts["n"];
        assert_eq!((facet.hits, facet.distinct, facet.values.len()), (50, 30, FACET_VALUES));
        // v00..v19 are held twice, v20..v29 once: the listed 20 are the twice-held, by value.
        assert!(facet.values.iter().all(|v| v.count == 2), "{facet:?}");
        assert_eq!(facet.values[0].value, "v00");
    }

    #[test]
    fn the_names_are_checked() {
        assert!(check(&["a".into(), "b".into()]).is_ok());
        assert!(check(&[" ".into()]).is_err());
        assert!(check(&["a".into(), "a".into()]).is_err());
        assert!(check(&(0..=MAX_FACETS).map(|i| i.to_string()).collect::<Vec<_>>()).is_err());
    }
}
