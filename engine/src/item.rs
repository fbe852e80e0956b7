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

/// A field value: a string, a number, or a list of strings (tags, genres).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum FieldValue {
    /// A number (price, year).
    Number(f64),
    /// A single string (brand, category).
    Text(String),
    /// Several strings (tags, genres).
    List(Vec<String>),
}

impl FieldValue {
    /// Converts a JSON value, or says why it cannot be a field.
    pub fn from_json(value: &serde_json::Value) -> Result<FieldValue, String> {
        use serde_json::Value;
        match value {
            Value::String(s) => Ok(FieldValue::Text(s.clone())),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(FieldValue::Number)
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
