//! Durations as people write them in configuration, schedules and requests
//! (`200ms`, `30s`, `15m`, `6h`, `90d`, `1h30m`): the one parser every
//! crate uses.

use std::time::Duration;

use serde::Deserialize;

/// Text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason}")]
pub struct DurationError {
    pub text: String,
    pub reason: String,
}

/// Parse a duration.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|e| DurationError {
        text: crate::text::truncated(text, 40),
        reason: e.to_string(),
    })
}

/// Parse a duration that may be switched off (`off`, `0` or empty: `None`).
pub fn parse_or_off(text: &str) -> Result<Option<Duration>, DurationError> {
    match text.trim() {
        "off" | "0" | "" => Ok(None),
        s => parse(s).map(Some),
    }
}

/// `#[serde(deserialize_with = "inventory_model::duration::from_text")]`.
pub fn from_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_written() {
        assert_eq!(parse("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse(" 1h30m ").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(parse_or_off("off").unwrap(), None);
        assert_eq!(parse_or_off("0").unwrap(), None);
        assert_eq!(parse_or_off("15m").unwrap(), Some(Duration::from_secs(900)));
        let e = parse("soon").unwrap_err();
        assert!(
            e.to_string().starts_with("invalid duration \"soon\": "),
            "{e}"
        );
    }
}
