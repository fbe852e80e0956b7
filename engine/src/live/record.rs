//! What one line of the live log records: an interaction event (checked here), an item's
//! deletion or an item's new fields, with its sequence number; and what appends and the log's
//! state report.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One interaction event as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The user's id (a user the last build never saw is created). Ids follow
    /// [`crate::item::id_problem`]: not empty, nothing invisible at either end, no control
    /// character, at most 512 bytes. An integer is read as its digits (`151` is `"151"`).
    #[serde(deserialize_with = "crate::json::id")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::json::Id))]
    pub user: String,
    /// The item's id, as in the catalog (an integer read as its digits).
    #[serde(deserialize_with = "crate::json::id")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::json::Id))]
    pub item: String,
    /// The interaction's value, summed with the user's earlier ones for the same item, as the
    /// indexer sums repeated rows. From [`MIN_WEIGHT`] (about 1.2e-38) to [`MAX_WEIGHT`]; 1
    /// when absent.
    #[serde(default = "default_weight", deserialize_with = "weight_as_sent")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1.1754944e-38, maximum = 1000000))]
    pub weight: f32,
    /// When it happened (integer, the unit the interactions file uses; the indexer keeps the
    /// latest per user and item). Absent: the server's clock in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

fn default_weight() -> f32 {
    1.0
}

/// A weight read as f64, as JSON writes numbers, and checked as sent, so that one outside
/// [`MIN_WEIGHT`]..=[`MAX_WEIGHT`] is refused as the number it was: `1e308` was read as `inf`
/// and `1e-50` as 0, and refused as those.
fn weight_as_sent<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<f32, D::Error> {
    let weight = f64::deserialize(deserializer)?;
    weight_problem(weight).map_or(Ok(weight as f32), |problem| Err(serde::de::Error::custom(problem)))
}

/// Why `weight` is no event's weight, saying the value as sent; `None` when it is one.
fn weight_problem(weight: f64) -> Option<String> {
    (!(f64::from(MIN_WEIGHT)..=f64::from(MAX_WEIGHT)).contains(&weight)).then(|| {
        format!(
            "must be a number from {MIN_WEIGHT:e} (f32's smallest normal number) to {MAX_WEIGHT}, got {}",
            crate::fusion::shown(weight)
        )
    })
}

/// The smallest weight one event may carry: f32's smallest normal number (about 1.2e-38). The
/// log keeps weights in f32, where a smaller one is subnormal or rounds to 0.
pub const MIN_WEIGHT: f32 = f32::MIN_POSITIVE;

/// The largest weight one event may carry: sums of many stay finite in f32, and one event can
/// never make a user's CF solve overflow (the log cannot be edited, and every build reads it).
pub const MAX_WEIGHT: f32 = 1.0e6;
pub use crate::item::MAX_ID_BYTES;

impl Event {
    /// Checks the fields a log line must have valid.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field: a user or item id that is none
    /// ([`crate::item::id_problem`]), or a weight outside [`MIN_WEIGHT`]..=[`MAX_WEIGHT`].
    pub fn validate(&self) -> Result<()> {
        for (field, id) in [("user", &self.user), ("item", &self.item)] {
            if let Some(problem) = crate::item::id_problem(id) {
                return Err(Error::invalid(field, problem));
            }
        }
        if let Some(problem) = weight_problem(f64::from(self.weight)) {
            return Err(Error::invalid("weight", problem));
        }
        Ok(())
    }
}

/// Checks a batch as one write takes it: at least one event, each valid ([`Event::validate`]).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the row and field (`events[3].weight`).
pub fn validate_batch(events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Err(Error::invalid("events", "must hold at least one event"));
    }
    for (row, event) in events.iter().enumerate() {
        event.validate().map_err(|e| match e {
            Error::InvalidArgument { field, reason } => Error::invalid(format!("events[{row}].{field}"), reason),
            other => other,
        })?;
    }
    Ok(())
}

/// An item deleted through the API (`DELETE /v1/items/{id}`), with the SHA-256 of its catalog
/// row as the serving generation had it: the next build keeps the item hidden only while the
/// catalog row is that same row, so a catalog team that changes the item's row brings it
/// back without editing the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemDelete {
    /// The item's id.
    pub delete_item: String,
    /// [`item_hash`] of the row deleted.
    pub item_hash: String,
}

/// An item's fields replaced through the API (`PUT /v1/items/{id}/fields`): a price or a
/// category changed without a rebuild. Like [`ItemDelete`], it carries the SHA-256 of the
/// catalog row it changed, and the next build applies it only while that row is unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldUpdate {
    /// The item's id.
    pub update_item: String,
    /// [`item_hash`] of the catalog row (as built, before any live update).
    pub item_hash: String,
    /// The item's new fields, all of them (the old ones are replaced, not merged).
    pub fields: std::collections::BTreeMap<String, crate::item::FieldValue>,
}

/// An item created or replaced through the API (`PUT /v1/items/{id}`), with its embedding, so
/// that a server reopening the log serves it again without running the model, and the SHA-256
/// of the row it replaced (empty for an id that named no visible row): like [`ItemDelete`],
/// the next build applies it only while the catalog row is that same row (or, for an empty
/// hash, while the catalog has no visible row for the id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemPut {
    /// The item's id (also `item.id`).
    pub put_item: String,
    /// [`item_hash`] of the row replaced, or empty when the id named no visible row.
    pub item_hash: String,
    /// The new row, whole.
    pub item: crate::item::Item,
    /// Its embedding (unit length, the model's width), from the model `model_sha256` names at
    /// `precision`.
    pub embedding: Vec<f32>,
    /// SHA-256 of the model weights that embedded it: a generation built with other weights
    /// embeds the item again rather than mix two models' vectors.
    pub model_sha256: String,
    /// The precision it was embedded at (`f32`, `int8`, ...).
    pub precision: String,
    /// The token limit it was embedded with (the serving generation's `max_tokens`). Absent in
    /// records from before it was kept: those are embedded again wherever a vector is needed,
    /// since a text longer than one limit reads differently under another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
}

impl ItemPut {
    /// Its embedding, when it was made the way `embedder` makes one (the same model weights,
    /// precision and token limit) and has `dim` finite values: then it is the vector `embedder`
    /// would give the item (up to the rounding of the device that ran it, as for any vector a
    /// generation reuses), and neither a server replaying the log nor a build needs to run the
    /// model for it again.
    pub fn embedding_for(&self, embedder: &crate::embed::Embedder, dim: usize) -> Option<&[f32]> {
        (self.model_sha256 == embedder.identity().sha256
            && self.precision == embedder.precision().name()
            && self.max_tokens == Some(embedder.max_tokens())
            && self.embedding.len() == dim
            && self.embedding.iter().all(|v| v.is_finite()))
        .then_some(self.embedding.as_slice())
    }
}

/// What one line of the log records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    /// An interaction.
    Event(Event),
    /// An item hidden from every retriever.
    Delete(ItemDelete),
    /// An item's fields replaced.
    Fields(FieldUpdate),
    /// An item created or replaced.
    Put(Box<ItemPut>),
}

/// A client's id for a batch of events (`batch_id`), on the batch's first line: a retry of the
/// batch with the same id and events is answered from it instead of being written again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTag {
    /// The client's id.
    pub id: String,
    /// The batch's last sequence number (its first is the line's).
    pub last_seq: u64,
    /// SHA-256 of the events as sent, so that an id reused for other events is refused.
    pub hash: String,
}

/// The longest batch id, in bytes.
pub const MAX_BATCH_ID_BYTES: usize = 128;

/// The SHA-256 (hex) of a batch of events as sent: what a [`BatchTag`] compares.
pub fn batch_hash(events: &[Event]) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(events).unwrap_or_default();
    sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A record as logged: its sequence number and when the server wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRecord {
    /// Position in the log, from 1, increasing across files.
    pub seq: u64,
    /// When the write was acknowledged (milliseconds since the Unix epoch).
    pub written_ms: u64,
    /// The client's batch id, on the first line of a batch sent with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchTag>,
    /// What happened.
    #[serde(flatten)]
    pub record: Record,
}

impl LoggedRecord {
    /// The interaction, when this line records one.
    pub fn event(&self) -> Option<&Event> {
        match &self.record {
            Record::Event(event) => Some(event),
            Record::Delete(_) | Record::Fields(_) | Record::Put(_) => None,
        }
    }
}

/// The SHA-256 (hex) that names an item's row: what an [`ItemDelete`], a [`FieldUpdate`] and
/// an [`ItemPut`] carry for the row they were made against, and what the next build and the
/// engine compare it with. The bytes are the row's JSON with each field's
/// [`crate::item::FieldValue::canonical_members`] (one member as a string, several as a list),
/// so the hash is the same whichever type the catalog's other rows give a field: a category
/// of `"tents"` read as text or, once one row lists two, as `["tents"]`; a price of `25` read
/// as a number or, once one row says "call us", as `"25"`. (Hashes of the typed row, which
/// servers logged before 2026-12-07, changed with those and dropped every live write at such a
/// build; [`row_hashes`] still accepts them.)
pub fn item_hash(item: &crate::item::Item) -> String {
    use std::borrow::Cow;

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Value<'a> {
        Text(Cow<'a, str>),
        List(Vec<Cow<'a, str>>),
    }
    hash_row(item, |value| {
        let mut members = value.canonical_members();
        match members.len() {
            1 => Value::Text(members.pop().expect("one member")),
            _ => Value::List(members),
        }
    })
}

/// The hashes a write made against `item` may carry: its [`item_hash`], and the hash of the
/// row as typed ([`typed_item_hash`]) that servers logged before 2026-12-07, where that
/// differs. A write from the log of an earlier server still applies to the row it names.
pub fn row_hashes(item: &crate::item::Item) -> Vec<String> {
    let (hash, typed) = (item_hash(item), typed_item_hash(item));
    if hash == typed {
        vec![hash]
    } else {
        vec![hash, typed]
    }
}

/// The hash servers logged before 2026-12-07: the row's JSON as typed, with every number
/// written as a float (`25.0`), as rows were serialized when these hashes were first logged.
/// (A row stored with -0.0 is read as 0.0 since that value came in signless, so a write logged
/// against such a row by an earlier server no longer applies: the build and the server count
/// it as superseded.)
pub fn typed_item_hash(item: &crate::item::Item) -> String {
    use crate::item::FieldValue;

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Value<'a> {
        Number(f64),
        Text(&'a str),
        List(&'a [String]),
    }
    hash_row(item, |value| match value {
        FieldValue::Number(n) => Value::Number(*n),
        FieldValue::Text(text) => Value::Text(text),
        FieldValue::List(list) => Value::List(list),
    })
}

/// SHA-256 (hex) of `item`'s JSON, its fields' values written by `value`.
fn hash_row<'a, V: Serialize>(item: &'a crate::item::Item, value: impl Fn(&'a crate::item::FieldValue) -> V) -> String {
    use std::collections::BTreeMap;

    use sha2::Digest;

    /// [`crate::item::Item`]'s serialized form, field for field.
    #[derive(Serialize)]
    struct Row<'a, V> {
        id: &'a str,
        title: &'a str,
        text: &'a str,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<&'a str, V>,
    }
    // Every field of `Item` named, so that one added there fails to compile here.
    let crate::item::Item { id, title, text, fields } = item;
    let fields = fields.iter().map(|(name, v)| (name.as_str(), value(v))).collect();
    let bytes = serde_json::to_vec(&Row { id, title, text, fields }).unwrap_or_default();
    sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Appended {
    /// Events written.
    pub accepted: usize,
    /// Sequence number of the first.
    pub first_seq: u64,
    /// Sequence number of the last.
    pub last_seq: u64,
    /// Whether this answers a retry of a batch already written (same `batch_id`, same events):
    /// nothing was written this time.
    pub replayed: bool,
}

/// The log's state, for `/metrics` and `GET /v1/index`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveStats {
    /// Events in the log that the generation serving has not folded in.
    pub events: usize,
    /// Users with such events.
    pub users: usize,
    /// The last sequence number written (0: none yet).
    pub last_seq: u64,
    /// The last sequence number the serving generation folded in (0: none).
    pub folded_through: u64,
    /// Age of the oldest unfolded event in seconds (0 when there is none).
    pub oldest_unfolded_secs: f64,
    /// Flushes (`fdatasync`) since the server started; with concurrent writers a flush carries
    /// several batches.
    pub flushes: u64,
    /// Items deleted since the serving generation's build.
    pub deleted_items: usize,
    /// Puts (`PUT /v1/items/{id}`, creations and replacements) since the serving generation's
    /// build: one live row each, so an item put twice counts twice.
    pub put_items: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{FieldValue, Item};

    #[test]
    fn a_typed_item_hash_is_the_hash_of_the_row_with_numbers_as_floats() {
        use sha2::Digest;
        let fields = [
            ("price", FieldValue::Number(25.0)),
            ("tags", FieldValue::List(vec!["x".into()])),
            ("brand", FieldValue::Text("Alder".into())),
            ("year", FieldValue::Number(1995.5)),
        ];
        let fields = fields.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        let item = Item { id: "a".into(), title: "Tent".into(), text: String::new(), fields };
        // The bytes servers hashed before whole numbers were written as integers.
        let logged =
            r#"{"id":"a","title":"Tent","text":"","fields":{"brand":"Alder","price":25.0,"tags":["x"],"year":1995.5}}"#;
        let expected: String = sha2::Sha256::digest(logged).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(typed_item_hash(&item), expected);
        assert!(serde_json::to_string(&item).unwrap().contains(r#""price":25,"#), "served as an integer");
        let bare = Item { fields: Default::default(), ..item };
        let logged = r#"{"id":"a","title":"Tent","text":""}"#;
        let expected: String = sha2::Sha256::digest(logged).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(typed_item_hash(&bare), expected);
        // A row without fields (or with text ones only) hashes the same both ways: one name.
        assert_eq!(item_hash(&bare), expected);
        assert_eq!(row_hashes(&bare), vec![expected]);
    }

    /// A row's hash is the same under every type the catalog can give its fields: each value
    /// converted to each type it converts to (`FieldType::coerce`), the others' rows as they
    /// are. The type changes one other row causes (a list, a word among numbers) used to change
    /// every row's hash, and the next build dropped every live write as made against another row.
    #[test]
    fn an_item_hash_does_not_change_with_the_type_of_a_field() {
        use crate::item::FieldType;
        let values = [
            FieldValue::number(25.0),
            FieldValue::number(639.81),
            FieldValue::number(-0.0),
            FieldValue::number(1e22),
            FieldValue::Text("tents".into()),
            FieldValue::Text("19.50".into()),
            FieldValue::Text(" 42 ".into()),
            FieldValue::Text("1e5".into()),
            FieldValue::Text("007".into()),
            FieldValue::List(vec!["a".into()]),
            FieldValue::List(vec!["7".into()]),
            FieldValue::List(vec!["a".into(), "3.50".into()]),
        ];
        let row = |value: FieldValue| {
            let fields = [("brand".to_string(), FieldValue::Text("Alder".into())), ("f".to_string(), value)];
            Item { id: "a".into(), title: "Tent".into(), text: "t".into(), fields: fields.into_iter().collect() }
        };
        // Text is read as a number by inference only when it is one as written.
        let inferable = |value: &FieldValue, kind| match (value, kind) {
            (FieldValue::Text(text), FieldType::Number) => FieldType::number_as_written(text).is_some(),
            (FieldValue::List(list), FieldType::Number) => {
                list.iter().all(|t| FieldType::number_as_written(t).is_some())
            }
            _ => true,
        };
        for value in values {
            let hash = item_hash(&row(value.clone()));
            for kind in [FieldType::Number, FieldType::Text, FieldType::List] {
                if let Ok(converted) = kind.coerce(&value).map_err(drop).and_then(|c| match inferable(&value, kind) {
                    true => Ok(c),
                    false => Err(()),
                }) {
                    assert_eq!(item_hash(&row(converted.clone())), hash, "{value:?} as {converted:?}");
                }
            }
        }
        // Codes f64 cannot tell apart are two values, and text a number would change is text.
        let code = |text: &str| item_hash(&row(FieldValue::Text(text.into())));
        assert_ne!(code("12345678901234567890"), code("12345678901234567891"));
        assert_ne!(code("007"), code("7"));
        // A changed value is another row.
        assert_ne!(item_hash(&row(FieldValue::Text("tents".into()))), item_hash(&row(FieldValue::Text("tent".into()))));
        assert_ne!(
            item_hash(&row(FieldValue::List(vec!["a".into(), "b".into()]))),
            item_hash(&row(FieldValue::List(vec!["b".into(), "a".into()])))
        );
    }
}
