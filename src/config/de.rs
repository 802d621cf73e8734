//! Reading the section structs: the keys given (by the file, then the environment, a later one replacing an
//! earlier), fed to each section's derived `Deserialize` as text, every error named by its key path. And the
//! probe that reads a section's key names, in order, off its `Deserialize`.

use std::fmt;

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use super::{ConfigError, bad, path, unknown};

/// A key's value as it was given.
#[derive(Clone, Debug)]
pub(super) enum Raw {
    /// A string, number or boolean in the file (as its text), or an environment variable.
    Text(String),
    /// Anything else in the file, named by its TOML type (array, table, float, datetime).
    Other(&'static str),
}

/// One key given: its section (`""` for the top level), its name, its value and where it came from (its key
/// path in the file, or the variable's name).
#[derive(Clone, Debug)]
struct Given {
    section: String,
    key: String,
    value: Raw,
    source: String,
}

/// The keys given, each once, in the order first given.
#[derive(Debug, Default)]
pub(super) struct Keys(Vec<Given>);

impl Keys {
    /// Sets a key; a key given before keeps its place and takes the new value.
    pub(super) fn set(&mut self, section: &str, key: &str, value: Raw, source: String) {
        match self.0.iter_mut().find(|g| g.section == section && g.key == key) {
            Some(given) => {
                given.value = value;
                given.source = source;
            }
            None => self.0.push(Given { section: section.into(), key: key.into(), value, source }),
        }
    }

    /// Reads `section` from the keys given to it (the others stay).
    pub(super) fn section<T: DeserializeOwned>(&mut self, section: &str) -> Result<T, ConfigError> {
        let (mine, others): (Vec<Given>, Vec<Given>) =
            std::mem::take(&mut self.0).into_iter().partition(|g| g.section == section);
        self.0 = others;
        T::deserialize(Section { name: section, given: mine }).map_err(|e| e.0)
    }

    /// The first key left once every section is read: one of a section that does not exist.
    pub(super) fn unknown(&self) -> Option<ConfigError> {
        self.0.first().map(|g| unknown(&path(&g.section, &g.key), &g.source))
    }
}

/// The keys of the section `T`, in their order (the fields its `Deserialize` asks for).
pub(super) fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(Fields(Some(fields))) => fields,
        _ => &[],
    }
}

/// serde's error while a section is read, as the configuration error it becomes.
#[derive(Debug)]
struct Error(ConfigError);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    /// A message about a value; the key is put in by `Entries::next_value_seed`.
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error(ConfigError::Value { key: String::new(), message: message.to_string() })
    }
}

/// One section's keys as a map.
struct Section<'a> {
    name: &'a str,
    given: Vec<Given>,
}

impl<'de> de::Deserializer<'de> for Section<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Entries { section: self.name, given: self.given.into_iter(), current: None })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct Entries<'a> {
    section: &'a str,
    given: std::vec::IntoIter<Given>,
    current: Option<Given>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(given) = self.given.next() else { return Ok(None) };
        let name: StringDeserializer<Error> = given.key.clone().into_deserializer();
        // A key's only error is `deny_unknown_fields`'.
        let key = seed.deserialize(name).map_err(|_| Error(unknown(&path(self.section, &given.key), &given.source)))?;
        self.current = Some(given);
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some(given) = self.current.take() else {
            return Err(de::Error::custom("a value asked for before its key"));
        };
        let key = path(self.section, &given.key);
        match given.value {
            Raw::Text(text) => {
                let value: StringDeserializer<Error> = text.into_deserializer();
                seed.deserialize(value).map_err(|Error(e)| {
                    let message = match e {
                        ConfigError::Value { message, .. } => message,
                        other => other.to_string(),
                    };
                    Error(ConfigError::Value { key, message })
                })
            }
            Raw::Other(kind) => Err(Error(bad(&key, kind, "a string or a number"))),
        }
    }
}

/// A deserializer that only takes note of the fields a struct asks for.
struct Probe;

/// The probe's answer: the fields asked for.
#[derive(Debug)]
struct Fields(Option<&'static [&'static str]>);

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fields {:?}", self.0)
    }
}

impl std::error::Error for Fields {}

impl de::Error for Fields {
    fn custom<T: fmt::Display>(_: T) -> Fields {
        Fields(None)
    }
}

impl<'de> de::Deserializer<'de> for Probe {
    type Error = Fields;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
        Err(Fields(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Fields> {
        Err(Fields(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
