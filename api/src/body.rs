//! Request bodies: a JSON object, read so that a wrong value names its path and a key given
//! twice is refused.

use hyrank_engine::json::StrictValue;
use serde::Deserialize;

/// A request body that must be a JSON object. serde's derived structs also accept a JSON
/// array (their fields in order), so `[]` would be read as a request with every field at its
/// default and refused for a reason that is not the real one; this reads only objects, and
/// anything else is refused as "expected a JSON object" (a 422, with the position). An array is
/// read to its end first, so that one that is not even JSON (`[`, `[1,`) is a 400 like any other
/// malformed body rather than a 422 for its type. Not covered: a complete value that is not an
/// object followed by garbage (`[1] x`, `5]`) is still the 422, since serde_json checks for
/// trailing characters only after the visitor has answered. A value of the wrong shape inside
/// the object is a 422 naming its path (`fields.price: ...`).
pub(crate) struct Object<T>(pub(crate) T);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for OnlyMaps<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
                // serde_json reports a type error before it reads what follows the `[`, so the
                // rest is read first: a syntax error in it is the error that matters.
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Err(serde::de::Error::invalid_type(serde::de::Unexpected::Seq, &self))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                // Read as JSON first, so that malformed JSON keeps its own error (a 400); then
                // into T, where serde's message names a nested value's type but not where it
                // is: the path (`fields.price`, `events[2].weight`) goes first (a 422).
                let value = StrictValue::deserialize(serde::de::value::MapAccessDeserializer::new(map))?.0;
                serde_path_to_error::deserialize(value).map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if path == "." || path.is_empty() {
                        serde::de::Error::custom(inner)
                    } else {
                        serde::de::Error::custom(format!("{path}: {inner}"))
                    }
                })
            }
        }
        deserializer.deserialize_any(OnlyMaps(std::marker::PhantomData)).map(Object)
    }
}
