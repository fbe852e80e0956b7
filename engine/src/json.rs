//! JSON read strictly: what request bodies and catalog lines share.

use serde::Deserialize;

/// A unit-only enum read from its name, a JSON string, and nothing else. Serde's derived enums
/// also take `{"name": null}` (the map form of a unit variant), which the API documents as a
/// string, and a map or `null` would otherwise be told "expected string or map" or "expected
/// unit". For a request field: `#[serde(deserialize_with = "crate::json::name_only")]`.
///
/// # Errors
/// Anything but a string ("invalid type: map, expected a string"); a name that is no variant.
pub fn name_only<'de, D: serde::Deserializer<'de>, E: Deserialize<'de>>(deserializer: D) -> Result<E, D::Error> {
    let name = String::deserialize(deserializer)?;
    E::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(name))
}

/// An id: a JSON string, or an integer read as its digits (`151` is `"151"`), as a catalog line's
/// `"id": 151` is read, so that a client holding MovieLens' numeric ids may send them as
/// numbers. For a request field: `#[serde(deserialize_with = "crate::json::id")]`.
///
/// # Errors
/// A fraction or an exponent (`1.5`, `1e3`), or an integer past 64 bits: which digits it
/// stands for is not known once read as a float, so the message says to send the id as a
/// string; or any other type.
pub fn id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer.deserialize_any(IdVisitor)
}

/// An id as a request writes it, for the OpenAPI document only (schema `Id`): a string that
/// [`crate::item::id_problem`] accepts (1 to [`crate::item::MAX_ID_BYTES`] bytes, given as
/// characters, which JSON Schema counts; no blank at either end), or an integer (negative
/// too) read as its digits ([`id`]). Not said: the bound is in bytes, control characters
/// inside an id are refused, and an integer written with a fraction (`7.0`, which JSON Schema
/// counts as an integer) is refused. Request fields name it with `schema(value_type = crate::json::Id)`.
#[cfg(feature = "openapi")]
pub struct Id;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(crate::item::MAX_ID_BYTES))
            .pattern(Some(r"^\S(.*\S)?$"));
        let number = ObjectBuilder::new().schema_type(Type::Integer);
        let description = "An id: a string (no blank at either end, no control character), or an integer within \
                           64 bits read as its digits (`151` is `\"151\"`); a longer one as a string";
        OneOfBuilder::new().item(text).item(number).description(Some(description)).into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Id {}

/// [`id`] for an optional field: `null` is absent.
///
/// # Errors
/// As [`id`].
pub fn optional_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    /// An id as a value of its own, so that `Option`'s reading of `null` applies (as in
    /// [`optional_positive_count`]).
    struct Read(String);
    impl<'de> Deserialize<'de> for Read {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Read, D::Error> {
            id(deserializer).map(Read)
        }
    }
    Ok(Option::<Read>::deserialize(deserializer)?.map(|Read(id)| id))
}

struct IdVisitor;

impl serde::de::Visitor<'_> for IdVisitor {
    type Value = String;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an id: a string, or an integer (read as its digits)")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    /// A number JSON wrote with a fraction or an exponent, or an integer past 64 bits (read
    /// as a float, having lost its last digits): which id it names is not known, so the
    /// message says to send it as a string, as the catalog's line wrote it.
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        let why = if v.fract() == 0.0 && v.abs() >= 9.2e18 {
            "an integer id past 64 bits is read as a float and loses its last digits"
        } else {
            "a number written with a fraction, an exponent or as -0 is no id as read here"
        };
        let found = serde::de::Unexpected::Float(v);
        Err(E::custom(format!(
            "invalid type: {found}, expected an id: a string, or an integer within 64 bits (read as its digits); \
             {why}: send the id as a string, as the catalog wrote it"
        )))
    }
}

/// An optional field read as a value when present: `null` is refused as the value it is not
/// (`"candidates": null`), not read as absent; absent, the field's `#[serde(default)]`.
///
/// # Errors
/// `null` or a value of another type.
pub fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A count (`offset`; `k`, `candidates` and depths are [`positive_count`]s): a whole number of
/// at least 0, written as an integer or with a zero fraction (`5.0`, `1e2`), since JSON
/// Schema's `integer`, which the OpenAPI document gives these fields, is any number whose
/// fraction is zero, and JSON writers such as Python's write a computed `5.0` so. For a
/// request field:
/// `#[serde(deserialize_with = "crate::json::count")]`.
///
/// # Errors
/// A fraction (`5.5`), a negative number, one past `usize`, or any other type.
pub fn count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    deserializer.deserialize_any(CountVisitor { min: 0 })
}

/// [`count`] for a field whose smallest value is 1 (`k`, `candidates`, a depth): its errors
/// say "of at least 1", as the range the request is then checked against does. Zero is read,
/// so that the check that follows names the whole range ("from 1 to 100 on this server").
///
/// # Errors
/// As [`count`].
pub fn positive_count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    deserializer.deserialize_any(CountVisitor { min: 1 })
}

/// [`positive_count`] for an optional field read as a value when present (as [`present`]).
///
/// # Errors
/// As [`count`], and `null`.
pub fn present_positive_count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    positive_count(deserializer).map(Some)
}

/// [`positive_count`] for an optional field where `null` is absent.
///
/// # Errors
/// As [`count`].
pub fn optional_positive_count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    /// A count as a value of its own, so that `Option`'s reading of `null` applies (as in
    /// [`optional_id`]).
    struct Count(usize);
    impl<'de> Deserialize<'de> for Count {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Count, D::Error> {
            positive_count(deserializer).map(Count)
        }
    }
    Ok(Option::<Count>::deserialize(deserializer)?.map(|Count(n)| n))
}

/// [`count`] written as text, for a query string (`?offset=10`, `?offset=10.0`): the text is
/// read as the JSON number it spells, so a GET reads exactly the numbers its POST twin reads
/// in the body, with the same messages. For an optional parameter:
/// `#[serde(default, deserialize_with = "hyrank_engine::json::text_count")]`.
///
/// # Errors
/// As [`count`]; a text that is no JSON number.
pub fn text_count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    text_count_from(deserializer, CountVisitor { min: 0 })
}

/// [`text_count`] for a parameter whose smallest value is 1, as [`positive_count`].
///
/// # Errors
/// As [`text_count`].
pub fn text_positive_count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    text_count_from(deserializer, CountVisitor { min: 1 })
}

fn text_count_from<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    visitor: CountVisitor,
) -> Result<Option<usize>, D::Error> {
    use serde::de::Error;
    use serde::Deserializer as _;
    let text = String::deserialize(deserializer)?;
    match serde_json::from_str::<serde_json::Number>(&text) {
        Ok(number) => number.deserialize_any(visitor).map(Some).map_err(D::Error::custom),
        Err(_) => Err(D::Error::invalid_value(serde::de::Unexpected::Str(&text), &visitor)),
    }
}

/// Reads a count; `min` is what its errors name as the smallest value (the range itself is
/// checked after, with the server's bounds).
struct CountVisitor {
    min: usize,
}

impl serde::de::Visitor<'_> for CountVisitor {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a whole number of at least {}", self.min)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<usize, E> {
        usize::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<usize, E> {
        usize::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<usize, E> {
        // Below 2^64 exactly (usize::MAX as f64 rounds up to 2^64, which does not fit).
        if v.fract() == 0.0 && v >= 0.0 && v < usize::MAX as f64 {
            Ok(v as usize)
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
        }
    }
}

/// [`name_only`] for an optional field: `null` is absent, as it is for the field's other types.
///
/// # Errors
/// As [`name_only`].
pub fn optional_name_only<'de, D: serde::Deserializer<'de>, E: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<E>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(name) => E::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(name)).map(Some),
        None => Ok(None),
    }
}

/// How [`StrictValue`]'s error for a key given twice begins (then the key, in backticks).
pub const DUPLICATE_KEY: &str = "duplicate key ";

/// The key a [`StrictValue`] error names as given twice, if that is the error.
pub fn duplicate_key(error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    let rest = message.strip_prefix(DUPLICATE_KEY)?.strip_prefix('`')?;
    rest.split_once('`').map(|(key, _)| key.to_string())
}

/// A JSON value read as `serde_json::Value` reads it, except that an object with the same key
/// twice, at any depth, is refused (as serde's derived structs refuse a duplicate field) rather
/// than keeping the last: the error's message is [`DUPLICATE_KEY`] and the key in backticks.
pub struct StrictValue(pub serde_json::Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrictValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
                Ok(StrictValue(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
            }
            fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_none<E>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<StrictValue, D::Error> {
                StrictValue::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
                let mut values = Vec::new();
                while let Some(StrictValue(v)) = seq.next_element()? {
                    values.push(v);
                }
                Ok(StrictValue(Value::Array(values)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let StrictValue(value) = map.next_value()?;
                    if object.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("{DUPLICATE_KEY}`{key}`")));
                    }
                    object.insert(key, value);
                }
                Ok(StrictValue(Value::Object(object)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use crate::request::{RecommendRequest, SearchRequest, SimilarRequest};

    /// Counts take what JSON Schema's `integer` takes: a zero fraction too, and nothing else.
    #[test]
    fn a_count_is_any_whole_number_and_nothing_else() {
        let search = |json: &str| serde_json::from_str::<SearchRequest>(json);
        let read = search(r#"{"query": "q", "k": 5.0, "offset": 1e1, "candidates": 200.0, "rerank": {"depth": 30.0}}"#)
            .unwrap();
        assert_eq!((read.k, read.offset, read.candidates), (5, 10, Some(200)));
        assert_eq!(read.rerank.unwrap().depth, Some(30));
        assert_eq!(search(r#"{"query": "q", "rerank": {"depth": null}}"#).unwrap().rerank.unwrap().depth, None);
        for (json, said) in [
            (r#"{"query": "q", "k": 5.5}"#, "floating point `5.5`, expected a whole number of at least 1"),
            (r#"{"query": "q", "offset": -1}"#, "integer `-1`, expected a whole number of at least 0"),
            (r#"{"query": "q", "k": -1}"#, "integer `-1`, expected a whole number"),
            (r#"{"query": "q", "k": -1.0}"#, "floating point `-1.0`"),
            (r#"{"query": "q", "k": 1e30}"#, "expected a whole number"),
            (r#"{"query": "q", "k": "5"}"#, "string \"5\", expected a whole number"),
            (r#"{"query": "q", "k": null}"#, "expected a whole number"),
            (r#"{"query": "q", "candidates": null}"#, "expected a whole number"),
            (r#"{"query": "q", "offset": true}"#, "boolean `true`"),
            (
                r#"{"query": "q", "rerank": {"depth": 2.5}}"#,
                "floating point `2.5`, expected a whole number of at least 1",
            ),
        ] {
            let error = search(json).unwrap_err().to_string();
            assert!(error.contains(said), "{json}: {error}");
        }
        let recommend = serde_json::from_str::<RecommendRequest>(r#"{"user": "u", "k": 3.0, "recent": 4.0}"#).unwrap();
        assert_eq!((recommend.k, recommend.recent), (3, 4));
        assert!(serde_json::from_str::<RecommendRequest>(r#"{"user": "u", "recent": 0.5}"#).is_err());
        let similar = serde_json::from_str::<SimilarRequest>(r#"{"item": "i", "k": 2.0, "offset": 4.0}"#).unwrap();
        assert_eq!((similar.k, similar.offset), (2, 4));
    }

    /// An integer id is read as its digits up to 64 bits either side; past them (a 30-digit id
    /// a catalog keeps whole), and for a fraction, an exponent or -0, the refusal says to send
    /// the id as a string (it said "invalid type: floating point `1.2345678901234568e29`").
    #[test]
    fn an_id_is_a_string_or_an_integer_within_64_bits() {
        let similar = |json: &str| serde_json::from_str::<SimilarRequest>(json).map_err(|e| e.to_string());
        for (json, id) in [
            (r#"{"item": 151}"#, "151"),
            (r#"{"item": -7}"#, "-7"),
            (r#"{"item": 18446744073709551615}"#, "18446744073709551615"),
            (r#"{"item": -9223372036854775808}"#, "-9223372036854775808"),
            (r#"{"item": "123456789012345678901234567890"}"#, "123456789012345678901234567890"),
        ] {
            assert_eq!(similar(json).map(|r| r.item), Ok(id.to_string()), "{json}");
        }
        for (json, said) in [
            (r#"{"item": 123456789012345678901234567890}"#, "an integer id past 64 bits"),
            (r#"{"item": 18446744073709551616}"#, "an integer id past 64 bits"),
            (r#"{"item": 1.5}"#, "a fraction, an exponent or as -0"),
            (r#"{"item": -0}"#, "a fraction, an exponent or as -0"),
        ] {
            let error = similar(json).unwrap_err();
            assert!(error.contains(said) && error.contains("send the id as a string"), "{json}: {error}");
        }
    }

    /// A query string's count reads as the body's does.
    #[test]
    fn a_count_written_as_text_reads_as_a_body_s() {
        let read = |text: &str| {
            super::text_count(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text))
                .map_err(|e| e.to_string())
        };
        for (text, count) in [("10", 10), ("10.0", 10), ("1e2", 100), ("0", 0), ("9223372036854775808", 1 << 63)] {
            assert_eq!(read(text), Ok(Some(count)), "{text}");
        }
        for (text, said) in [
            ("-1", "integer `-1`, expected a whole number of at least 0"),
            ("2.5", "floating point `2.5`, expected a whole number"),
            ("ten", "string \"ten\", expected a whole number"),
            ("inf", "string \"inf\""),
            ("NaN", "string \"NaN\""),
            ("", "string \"\""),
            ("1e30", "expected a whole number"),
            ("99999999999999999999", "floating point `1e+20`, expected a whole number"),
            ("+5", "string \"+5\""),
        ] {
            let error = read(text).unwrap_err();
            assert!(error.contains(said), "{text}: {error}");
        }
    }
}
