//! Human-friendly durations (`10s`, `500ms`, `10m`) and sizes (`1MiB`, `512KB`) in the config.
//!
//! Both also accept a bare number (seconds, bytes) so generated configs need no suffixes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A duration written as `10s`, `250ms`, `1m30s`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Whole seconds, for defaults.
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A duration or size that cannot be read; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a duration.
    #[error("`{text}` is not a duration ({reason}); write e.g. 500ms, 10s, 5m")]
    Duration {
        /// As written, trimmed.
        text: String,
        /// What the duration parser objected to.
        reason: String,
    },
    /// Not a size, or one too large for 64 bits.
    #[error("`{0}` is not a size; write e.g. 512KiB, 1MiB, 1GiB or a number of bytes")]
    Size(String),
}

/// Parses `10s`, `1m30s`, `250ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, UnitError> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| UnitError::Duration {
        text: t.to_owned(),
        reason: e.to_string(),
    })
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(NumberOrText(
            "a duration such as 500ms, 10s, 5m or a number of seconds",
        ))? {
            NumberOrTextValue::Number(n) => Ok(Duration(std::time::Duration::from_secs(n))),
            NumberOrTextValue::Text(t) => parse_duration(&t)
                .map(Duration)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Written back in the config's own spelling (`10s`, `10m`), for the admin `/config` view.
impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A byte count written as `1MiB`, `512KiB`, `1GB`, `100` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (name, size) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{}", self.0 / size, name);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// Parses `1MiB`, `10 KB`, `2G`, `4096`.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || UnitError::Size(t.to_owned());
    let value: f64 = num.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" | "ki" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" | "mi" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" | "gi" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" | "ti" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(NumberOrText(
            "a size such as 512KiB, 1MiB, 1GiB or a number of bytes",
        ))? {
            NumberOrTextValue::Number(n) => Ok(ByteSize(n)),
            NumberOrTextValue::Text(t) => parse_size(&t)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Written back in the config's own spelling (`1MiB`), for the admin `/config` view.
impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A non-negative integer or a string, as written; anything else is an error that says what
/// was expected (the `&str` is that description).
struct NumberOrText(&'static str);

enum NumberOrTextValue {
    Number(u64),
    Text(String),
}

impl serde::de::Visitor<'_> for NumberOrText {
    type Value = NumberOrTextValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(NumberOrTextValue::Number(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(NumberOrTextValue::Number)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(NumberOrTextValue::Text(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("10s"),
            Ok(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            parse_duration("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("10m"),
            Ok(std::time::Duration::from_secs(600))
        );
        assert_eq!(parse_duration("3"), Ok(std::time::Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1XB").is_err());
        assert_eq!(ByteSize(1 << 20).to_string(), "1MiB");
    }
}
