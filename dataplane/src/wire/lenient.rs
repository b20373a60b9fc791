//! Lenient typed reading of JSON answers: members of an unexpected type read
//! as absent instead of failing the whole parse, as a walk over a
//! `serde_json::Value` tree reads them, without building the tree.
//!
//! Used with `#[serde(default, deserialize_with = "…")]` on the members of
//! the typed views of answers ([`crate::wire::usage`],
//! [`crate::translate::answer_wire`]). One difference to a tree: a member
//! named twice in one object fails the parse (a tree keeps the last), so
//! their callers read such a body as a tree instead.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// `T` read from the JSON text `body`. A body that is valid UTF-8 (every
/// answer that is valid JSON) is checked once as a whole and then read as
/// text: read from bytes, `serde_json` validates each string it meets on
/// its own, which costs more for the short strings of an answer. Bytes
/// that are not UTF-8 are read as bytes, for the same error as before.
pub fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// The visit methods of booleans, numbers and `null`, each answering `$none`.
macro_rules! scalars_are {
    ($none:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

/// The visit method of strings, answering `$none`.
macro_rules! strings_are {
    ($none:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

/// The visit method of lists, skipping the list and answering `$none`.
macro_rules! lists_are {
    ($none:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
}

/// The visit method of objects, skipping the object and answering `$none`.
macro_rules! objects_are {
    ($none:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
}

/// A string member, or `None` when it is absent or not a string.
pub fn lenient_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text;
    impl<'de> Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        scalars_are!(None);
        lists_are!(None);
        objects_are!(None);
    }
    d.deserialize_any(Text)
}

/// A member kept as it is: `Some` whenever it is present, `null` included
/// (serde's `Option` would read `null` as absent).
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A member copied to the client as it is (an id, a model): a string,
/// borrowed from the answer when it holds no escapes, or any other JSON
/// value as a tree. Strings are the rule, and reading them as a
/// `serde_json::Value` would copy each into a new allocation. Serializes
/// as the `Value` it stands for would.
#[derive(Debug, Clone, PartialEq)]
pub enum Copied<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// Any other JSON value.
    Tree(Value),
}

impl Copied<'_> {
    /// `null`.
    pub const NULL: Copied<'static> = Copied::Tree(Value::Null);
}

impl<'a> From<&'a str> for Copied<'a> {
    fn from(s: &'a str) -> Self {
        Copied::Str(Cow::Borrowed(s))
    }
}

impl serde::Serialize for Copied<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Copied::Str(text) => s.serialize_str(text),
            Copied::Tree(value) => value.serialize(s),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Copied<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Member;
        impl<'de> Visitor<'de> for Member {
            type Value = Copied<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Copied::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Copied::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Copied::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Copied::Tree(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Copied::Tree(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Copied::Tree(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Copied::Tree(Value::from(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Copied::NULL)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Copied::Tree)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Copied::Tree)
            }
        }
        d.deserialize_any(Member)
    }
}

/// A list of objects, or `None` for any other JSON value; elements that are
/// not objects are skipped (the tree walk read them as `null`).
struct ListOrNot<T>(Option<Vec<T>>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ListOrNot<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct List<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for List<T> {
            type Value = ListOrNot<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListOrNot<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<ObjectOrNot<T>>()? {
                    out.extend(item.0);
                }
                Ok(ListOrNot(Some(out)))
            }
            scalars_are!(ListOrNot(None));
            strings_are!(ListOrNot(None));
            objects_are!(ListOrNot(None));
        }
        d.deserialize_any(List(std::marker::PhantomData))
    }
}

/// The first object of a list, the rest skipped unread; `None` for any
/// other JSON value or a list without objects. Reads what
/// `list_or_not(..).and_then(|l| l.into_iter().next())` reads, without
/// building the list.
pub fn first_of_list<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct First<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for First<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
            let mut first = None;
            while first.is_none() {
                match seq.next_element::<ObjectOrNot<T>>()? {
                    Some(item) => first = item.0,
                    None => return Ok(None),
                }
            }
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
        scalars_are!(None);
        strings_are!(None);
        objects_are!(None);
    }
    d.deserialize_any(First(std::marker::PhantomData))
}

/// An object, or `None` for any other JSON value.
struct ObjectOrNot<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOrNot<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
            type Value = ObjectOrNot<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectOrNot<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| ObjectOrNot(Some(t)))
            }
            scalars_are!(ObjectOrNot(None));
            strings_are!(ObjectOrNot(None));
            lists_are!(ObjectOrNot(None));
        }
        d.deserialize_any(Object(std::marker::PhantomData))
    }
}

/// A list member of objects, or empty when it is absent or not a list.
pub fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(ListOrNot::<T>::deserialize(d)?.0.unwrap_or_default())
}

/// A list member of objects, or `None` when it is not a list.
pub fn list_or_not<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(ListOrNot::<T>::deserialize(d)?.0)
}

/// An object member, or `None` when it is not an object.
pub fn lenient_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(ObjectOrNot::<T>::deserialize(d)?.0)
}

/// A token count: a non-negative integer, or `None` for anything else (as
/// `Value::as_u64` reads it).
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        strings_are!(None);
        lists_are!(None);
        objects_are!(None);
    }
    d.deserialize_any(Count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text and bytes read the same; bytes that are not UTF-8 fail as
    /// `serde_json` fails them.
    #[test]
    fn a_body_reads_as_its_bytes_read() {
        let body = r#"{"id":"msg_\u00e9","model":"é","n":[1,2]}"#.as_bytes();
        let text: Value = from_body(body).unwrap();
        let bytes: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(text, bytes);
        let borrowed: Copied = from_body(br#""no escapes""#).unwrap();
        assert!(matches!(borrowed, Copied::Str(Cow::Borrowed("no escapes"))));
        let invalid = b"{\"id\":\"\xff\"}";
        assert_eq!(
            from_body::<Value>(invalid).unwrap_err().to_string(),
            serde_json::from_slice::<Value>(invalid)
                .unwrap_err()
                .to_string()
        );
    }

    /// A copied member reads and writes back as the `Value` it stands for;
    /// a string without escapes is borrowed from the text.
    #[test]
    fn a_copied_member_is_its_value() {
        for text in [
            r#""msg_01""#,
            r#""a\"b\u00e9\n""#,
            "null",
            "true",
            "-7",
            "18446744073709551615",
            "1.5e3",
            r#"["x",{"y":null}]"#,
            r#"{"b":1,"a":[2]}"#,
        ] {
            let copied: Copied = serde_json::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                serde_json::to_string(&copied).unwrap(),
                value.to_string(),
                "{text}"
            );
            let from_tree = Copied::deserialize(&value).unwrap();
            assert_eq!(serde_json::to_value(&from_tree).unwrap(), value, "{text}");
        }
        let borrowed: Copied = serde_json::from_str(r#""msg_01""#).unwrap();
        assert!(matches!(borrowed, Copied::Str(Cow::Borrowed("msg_01"))));
        let unescaped: Copied = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(unescaped, Copied::Str(Cow::Owned("a\"b".into())));
    }

    /// The first object of a list is what the whole list's first element is.
    #[test]
    fn the_first_of_a_list_is_the_lists_first_object() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Choice {
            #[serde(default)]
            n: u64,
        }
        #[derive(Deserialize)]
        struct Whole {
            #[serde(default, deserialize_with = "list_or_not")]
            list: Option<Vec<Choice>>,
        }
        #[derive(Deserialize)]
        struct First {
            #[serde(default, deserialize_with = "first_of_list")]
            list: Option<Choice>,
        }
        for list in [
            "[]",
            r#"[{"n":1},{"n":2}]"#,
            r#"[1,"x",null,{"n":3},[4]]"#,
            r#"[[],{"n":5,"m":{"deep":[1,2]}},7]"#,
            "[1,2]",
            "{}",
            r#""text""#,
            "null",
            "3",
        ] {
            let text = format!(r#"{{"list":{list},"after":true}}"#);
            let whole: Whole = serde_json::from_str(&text).unwrap();
            let first: First = serde_json::from_str(&text).unwrap();
            assert_eq!(
                first.list,
                whole.list.and_then(|l| l.into_iter().next()),
                "{list}"
            );
        }
        // Invalid JSON after the first object still fails the read.
        assert!(serde_json::from_str::<First>(r#"{"list":[{"n":1},{"x":}]}"#).is_err());
    }
}
