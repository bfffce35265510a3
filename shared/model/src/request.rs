//! Ad-hoc collection requests (`inventory.collect.<source>.<kind>`).

use serde::{Deserialize, Serialize};

use crate::catalogue::{KINDS, sources};
use crate::kind::KindDef;
use crate::task::Priority;

/// The JSON body of a collection request. Every field is optional; an empty body
/// means "every configured account and region".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// How urgently to run it (default normal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    #[error("unknown source {0}")]
    UnknownSource(String),
    #[error("unknown kind {kind} for source {provider} (known: {known})")]
    UnknownKind {
        provider: String,
        kind: String,
        known: String,
    },
    /// A requested region that no selected account has.
    #[error("{0}")]
    UnknownRegion(String),
}

impl RequestError {
    /// Stable code for replies, task errors and logs.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::MalformedBody(_) => "malformed_request",
            RequestError::UnknownSource(_) | RequestError::UnknownKind { .. } => "unknown_kind",
            RequestError::UnknownRegion(_) => "unknown_region",
        }
    }
}

impl CollectRequest {
    /// Parse a request body; an empty body is the empty request.
    pub fn parse(body: &[u8]) -> Result<CollectRequest, RequestError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(CollectRequest::default());
        }
        serde_json::from_slice(body)
            .map_err(|e| RequestError::MalformedBody(crate::text::truncated(&e.to_string(), 200)))
    }
}

/// Every source, in requests and schedules (`all.all`: every kind of every
/// source; `all.instances`: the instances of every source).
pub const ALL: &str = "all";

/// Resolve `<source>.<kind>` of a request subject (`kind` may be `all`, and
/// `source` too) into kinds.
pub fn resolve_kinds(source: &str, kind: &str) -> Result<Vec<&'static KindDef>, RequestError> {
    let of_source: Vec<_> = KINDS
        .iter()
        .copied()
        .filter(|k| source == ALL || k.source == source)
        .collect();
    if of_source.is_empty() {
        return Err(RequestError::UnknownSource(format!(
            "{} (sources: {}, {ALL})",
            crate::text::quoted(source),
            sources().join(", ")
        )));
    }
    if kind == ALL {
        return Ok(of_source);
    }
    let kinds: Vec<_> = of_source
        .iter()
        .copied()
        .filter(|k| k.plural == kind)
        .collect();
    if !kinds.is_empty() {
        return Ok(kinds);
    }
    let mut known: Vec<&str> = of_source.iter().map(|k| k.plural).collect();
    known.dedup();
    known.push(ALL);
    Err(RequestError::UnknownKind {
        provider: source.to_owned(),
        kind: crate::text::quoted(kind),
        known: known.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_or_fail_clearly() {
        assert_eq!(
            CollectRequest::parse(b"").unwrap(),
            CollectRequest::default()
        );
        let r = CollectRequest::parse(br#"{"regions":["eu-west-1"]}"#).unwrap();
        assert_eq!(r.regions, ["eu-west-1"]);
        assert!(matches!(
            CollectRequest::parse(b"{nope"),
            Err(RequestError::MalformedBody(_))
        ));
        assert!(matches!(
            CollectRequest::parse(br#"{"region":"x"}"#),
            Err(RequestError::MalformedBody(_))
        ));
    }

    #[test]
    fn every_source_resolves_as_all() {
        assert_eq!(resolve_kinds("all", "all").unwrap().len(), KINDS.len());
        let instances = resolve_kinds("all", "instances").unwrap();
        assert!(instances.iter().all(|k| k.plural == "instances"));
        assert!(instances.iter().any(|k| k.source == "aws"));
        assert!(resolve_kinds("all", "teapots").is_err());
    }

    #[test]
    fn kinds_resolve() {
        let aws = KINDS.iter().filter(|k| k.source == "aws").count();
        assert_eq!(resolve_kinds("aws", "all").unwrap().len(), aws);
        assert!(
            resolve_kinds("ganeti", "all")
                .unwrap()
                .iter()
                .all(|k| k.source == "ganeti")
        );
        assert_eq!(resolve_kinds("all", "instances").unwrap().len(), 2);
        assert_eq!(resolve_kinds("aws", "vpcs").unwrap()[0].name, "vpc");
        assert!(matches!(
            resolve_kinds("aws", "vpc"),
            Err(RequestError::UnknownKind { .. })
        ));
        assert!(matches!(
            resolve_kinds("gcp", "all"),
            Err(RequestError::UnknownSource(_))
        ));
    }
}
