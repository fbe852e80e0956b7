//! The stored items' field values by field and value, so that a filter's allow mask is built
//! from the items that hold a wanted value rather than by reading every item's fields per
//! request. Qdrant's payload index does the same for its filters: a keyword map and sorted
//! numbers per field.
//!
//! [`FieldIndex::matching`] gives exactly the items [`super::Condition::matches`] accepts (a
//! test compares the two over random catalogs and conditions); the rules it reads the index by
//! are the ones written out in [`super`]'s `Prepared::matches`.

use std::collections::{BTreeMap, HashMap};

use super::{number, Condition, Range};
use crate::item::FieldValue;

/// One field's values.
#[derive(Debug, Default)]
struct Values {
    /// Each text value and list member → the items holding it, ascending, once each.
    texts: HashMap<String, Vec<u32>>,
    /// Number values and their items, ascending by value ([`f64::total_cmp`]).
    numbers: Vec<(f64, u32)>,
    /// Text values and list members that are a number as written (`"1995"`, `"19.50"`), as
    /// that number and their item, ascending by value: a number condition matches them.
    numeric_texts: Vec<(f64, u32)>,
    /// `(folded form, its length in chars, value)` per text value, for fields with at most
    /// [`super::SUGGEST_FROM_AT_MOST`] of them ([`FieldIndex::suggestible`]).
    folded: Option<Vec<(String, usize, String)>>,
}

/// Field values of `len` items by field name and value. Built once per opened generation, in
/// one pass over the items' fields.
#[derive(Debug, Default)]
pub struct FieldIndex {
    fields: HashMap<String, Values>,
    len: usize,
}

impl Values {
    /// Calls `found` with the items holding text `wanted` (as value or list member), and
    /// those holding the number it is as written.
    fn text(&self, wanted: &str, found: &mut impl FnMut(u32)) {
        if let Some(items) = self.texts.get(wanted) {
            items.iter().for_each(|&item| found(item));
        }
        if let Some(n) = number(wanted) {
            feed(equal(&self.numbers, n), found);
        }
    }
}

/// Calls `found` with each item of a run of `(value, item)`.
fn feed(run: &[(f64, u32)], found: &mut impl FnMut(u32)) {
    run.iter().for_each(|(_, item)| found(*item));
}

/// The run of `sorted` (ascending by value) whose values meet both bounds: `lower` is false
/// then true along the values, `upper` true then false, so each is one binary search.
fn run(sorted: &[(f64, u32)], lower: impl Fn(f64) -> bool, upper: impl Fn(f64) -> bool) -> &[(f64, u32)] {
    let start = sorted.partition_point(|(v, _)| !lower(*v));
    let end = sorted.partition_point(|(v, _)| upper(*v));
    sorted.get(start..end.max(start)).unwrap_or_default()
}

/// The items of `sorted` whose value equals `wanted` (`-0` equals `0`).
fn equal(sorted: &[(f64, u32)], wanted: f64) -> &[(f64, u32)] {
    run(sorted, |v| v >= wanted, |v| v <= wanted)
}

impl FieldIndex {
    /// Indexes `items`' fields; item `i` of the iterator is item index `i`.
    pub fn build<'a>(items: impl IntoIterator<Item = &'a BTreeMap<String, FieldValue>>) -> Self {
        let mut fields: HashMap<String, Values> = HashMap::new();
        let mut len = 0;
        for (index, item) in items.into_iter().enumerate() {
            len = index + 1;
            let index = index as u32;
            for (name, value) in item {
                // The name is cloned once per field, not once per item holding it.
                if !fields.contains_key(name) {
                    fields.insert(name.clone(), Values::default());
                }
                let Some(values) = fields.get_mut(name) else { continue };
                let mut add_text = |text: &String| {
                    let items = values.texts.entry(text.clone()).or_default();
                    // A list holding one member twice counts its item once.
                    if items.last() != Some(&index) {
                        items.push(index);
                        if let Some(n) = number(text) {
                            values.numeric_texts.push((n, index));
                        }
                    }
                };
                match value {
                    FieldValue::Number(n) => values.numbers.push((*n, index)),
                    FieldValue::Text(text) => add_text(text),
                    FieldValue::List(list) => list.iter().for_each(&mut add_text),
                }
            }
        }
        for values in fields.values_mut() {
            if values.texts.len() <= super::SUGGEST_FROM_AT_MOST {
                let folded = values.texts.keys().map(|value| {
                    let folded = super::fold_for_suggestion(value);
                    (folded.chars().count(), folded, value.clone())
                });
                values.folded = Some(folded.map(|(length, folded, value)| (folded, length, value)).collect());
            }
            values.numbers.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            values.numeric_texts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        FieldIndex { fields, len }
    }

    /// How many items were indexed (the length of a mask over them).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no item was indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `found` with each indexed item whose field `name` meets `condition`: the items
    /// [`Condition::matches`] accepts, in no order, an item possibly more than once (a list
    /// matching two members of a list condition). O(log items + items found): number-like
    /// texts are indexed as their numbers, so no condition reads every value.
    pub fn matching(&self, name: &str, condition: &Condition, found: &mut impl FnMut(u32)) {
        let Some(values) = self.fields.get(name) else { return };
        match condition {
            Condition::Text(wanted) => values.text(wanted, found),
            Condition::AnyOf(options) => options.iter().for_each(|wanted| values.text(wanted, found)),
            Condition::Number(n) => {
                feed(equal(&values.numbers, *n), found);
                feed(equal(&values.numeric_texts, *n), found);
            }
            Condition::Range(Range { gte, gt, lte, lt }) => feed(
                run(
                    &values.numbers,
                    |v| gte.is_none_or(|b| v >= b) && gt.is_none_or(|b| v > b),
                    |v| lte.is_none_or(|b| v <= b) && lt.is_none_or(|b| v < b),
                ),
                found,
            ),
        }
    }

    /// Field `name`'s distinct text values (and list members) with their folded forms and
    /// those forms' lengths in characters ([`super::fold_for_suggestion`]), when it has at
    /// most [`super::SUGGEST_FROM_AT_MOST`] of them: what a note on a value no item has
    /// suggests from. Folded when the index is built, so a note folds only its own text.
    pub fn suggestible(&self, name: &str) -> Option<&[(String, usize, String)]> {
        self.fields.get(name)?.folded.as_deref()
    }

    /// Field `name`'s smallest and largest number values, when it has any.
    pub fn number_span(&self, name: &str) -> Option<(f64, f64)> {
        let numbers = &self.fields.get(name)?.numbers;
        Some((numbers.first()?.0, numbers.last()?.0))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::filter::{exclude, excluder, mask, matcher, Filters};

    /// Texts that are numbers as written, numbers in other forms, and plain words: where text
    /// and number conditions meet.
    const TEXTS: [&str; 21] = [
        "a", "b", "1995", "1995.0", "19.50", "19.5", "-0", "0", "0.0", "00", "+5", "5", " 5 ", "5.", "1e5", "02134",
        "x y", "5..", "5.5.", "-0..", "19.5.0",
    ];
    const NUMBERS: [f64; 8] = [0.0, -0.0, 5.0, 19.5, 1995.0, 100000.0, 2134.0, -3.25];

    fn value() -> impl Strategy<Value = FieldValue> {
        let text = prop::sample::select(TEXTS.to_vec()).prop_map(String::from);
        prop_oneof![
            prop::sample::select(NUMBERS.to_vec()).prop_map(FieldValue::Number),
            text.clone().prop_map(FieldValue::Text),
            prop::collection::vec(text, 0..4).prop_map(FieldValue::List),
        ]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        let text = prop::sample::select(TEXTS.to_vec()).prop_map(String::from);
        let number = prop::sample::select(NUMBERS.to_vec());
        let bound = prop::option::of(number.clone());
        prop_oneof![
            number.prop_map(Condition::Number),
            text.clone().prop_map(Condition::Text),
            prop::collection::vec(text, 1..4).prop_map(Condition::AnyOf),
            (bound.clone(), bound.clone(), bound.clone(), bound)
                .prop_map(|(gte, gt, lte, lt)| Condition::Range(Range { gte, gt, lte, lt })),
        ]
    }

    proptest! {
        /// The index's mask is the item-by-item matcher's, over catalogs where fields are
        /// missing, typed differently per item, and lists repeat members.
        #[test]
        fn the_index_mask_is_the_matchers(
            items in prop::collection::vec(prop::collection::btree_map(prop::sample::select(vec!["f", "g"]), value(), 0..3), 0..40),
            filters in prop::collection::btree_map(prop::sample::select(vec!["f", "g", "h"]), condition(), 1..4),
        ) {
            let items: Vec<BTreeMap<String, FieldValue>> =
                items.into_iter().map(|item| item.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).collect();
            let filters: Filters = filters.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let index = FieldIndex::build(&items);
            let matches = matcher(&filters);
            let expected: Vec<bool> = items.iter().map(|item| matches(item)).collect();
            prop_assert_eq!(mask(&index, &filters), expected);
            // The same conditions as a must-not list: an item meeting any is left out.
            let excluded = excluder(&filters);
            let mut kept = vec![true; items.len()];
            exclude(&index, &filters, &mut kept);
            prop_assert_eq!(kept, items.iter().map(|item| !excluded(item)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn numbers_runs_and_equal_values() {
        let items: Vec<BTreeMap<String, FieldValue>> = [-0.0, 0.0, 3.0, 7.5]
            .into_iter()
            .map(|n| BTreeMap::from([("n".to_string(), FieldValue::Number(n))]))
            .collect();
        let index = FieldIndex::build(&items);
        let found = |condition: Condition| {
            let mut items = Vec::new();
            index.matching("n", &condition, &mut |item| items.push(item));
            items.sort();
            items
        };
        assert_eq!(found(Condition::Number(0.0)), [0, 1], "-0 equals 0");
        assert_eq!(found(Condition::Range(Range { gt: Some(0.0), lte: Some(7.5), ..Range::default() })), [2, 3]);
        assert_eq!(found(Condition::Range(Range { gte: Some(8.0), ..Range::default() })), Vec::<u32>::new());
        assert_eq!(found(Condition::Text("3".into())), [2]);
        assert_eq!(index.number_span("n"), Some((-0.0, 7.5)));
        assert_eq!((index.len(), index.number_span("m")), (4, None));
    }
}
