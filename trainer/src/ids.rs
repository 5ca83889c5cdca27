//! Serde adapters for the registries' ids (`Architecture`, `FoolingType`, `Interpreter` have
//! `Display` = id and `FromStr`), so configs and result files hold typed values, parsed once.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// One id: `#[serde(with = "crate::ids")]`.
pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// One id: `#[serde(with = "crate::ids")]`.
pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: FromStr,
    T::Err: Display,
    D: Deserializer<'de>,
{
    String::deserialize(d)?.parse().map_err(D::Error::custom)
}

/// A list of ids: `#[serde(with = "crate::ids::list")]`.
pub mod list {
    use super::*;

    /// Writes the ids.
    pub fn serialize<T: Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.to_string()))
    }

    /// Parses the ids.
    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| s.parse().map_err(D::Error::custom))
            .collect()
    }
}
