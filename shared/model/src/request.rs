//! Collection requests: the one shape of what to collect, whether it comes
//! on NATS (`inventory.collect.<source>.<kind>`), through `POST
//! /api/v1/collect`, from a schedule or out of a task.

use serde::{Deserialize, Serialize};

use crate::catalogue::{KINDS, sources};
use crate::code::ErrorCode;
use crate::kind::KindDef;
use crate::task::Priority;

/// What to collect: a source and kind (either may be `all`), narrowed to
/// accounts and regions (none: every configured one), at a priority.
///
/// On NATS the subject names the source and kind, and the body may leave
/// them out; everywhere else they are required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// A plural kind name, or `all`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
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
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::MalformedBody(_) => ErrorCode::MalformedRequest,
            RequestError::UnknownSource(_) | RequestError::UnknownKind { .. } => {
                ErrorCode::UnknownKind
            }
            RequestError::UnknownRegion(_) => ErrorCode::UnknownRegion,
        }
    }
}

impl CollectRequest {
    /// Everything of `source`'s `kind` (every account and region).
    pub fn of(source: &str, kind: &str) -> CollectRequest {
        CollectRequest {
            source: source.to_owned(),
            kind: kind.to_owned(),
            ..CollectRequest::default()
        }
    }

    /// Parse the body of a request sent to `<prefix>.collect.<source>.<kind>`:
    /// an empty body asks for everything; a body that names another source
    /// or kind than the subject is malformed.
    pub fn parse_for(
        source: &str,
        kind: &str,
        body: &[u8],
    ) -> Result<CollectRequest, RequestError> {
        let request: CollectRequest = if body.iter().all(u8::is_ascii_whitespace) {
            CollectRequest::default()
        } else {
            serde_json::from_slice(body).map_err(malformed)?
        };
        request.sent_to(source, kind)
    }

    /// This request, sent to `source`'s `kind` (a subject's): a source or
    /// kind it leaves out is the subject's; one it names must be the same.
    pub fn sent_to(mut self, source: &str, kind: &str) -> Result<CollectRequest, RequestError> {
        for (field, given, subject) in [
            ("source", &mut self.source, source),
            ("kind", &mut self.kind, kind),
        ] {
            if given.is_empty() {
                *given = subject.to_owned();
            } else if given != subject {
                return Err(RequestError::MalformedBody(format!(
                    "the body names {field} {} but the subject {}",
                    crate::text::quoted(given),
                    crate::text::quoted(subject)
                )));
            }
        }
        Ok(self)
    }

    /// Parse a body that names its source and kind, with an optional
    /// idempotency key `id` beside them (`POST /api/v1/collect`).
    pub fn parse_with_id(body: &[u8]) -> Result<(CollectRequest, Option<String>), RequestError> {
        let mut fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).map_err(malformed)?;
        let id = match fields.remove("id") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(id)) => Some(id),
            Some(_) => return Err(RequestError::MalformedBody("id must be a string".into())),
        };
        let request: CollectRequest =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(malformed)?;
        for (field, value) in [("source", &request.source), ("kind", &request.kind)] {
            if value.is_empty() {
                return Err(RequestError::MalformedBody(format!(
                    "missing field `{field}`"
                )));
            }
        }
        Ok((request, id))
    }

    /// The kinds it names.
    pub fn kinds(&self) -> Result<Vec<&'static KindDef>, RequestError> {
        resolve_kinds(&self.source, &self.kind)
    }
}

fn malformed(e: serde_json::Error) -> RequestError {
    RequestError::MalformedBody(crate::text::truncated(&e.to_string(), 200))
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
        let parse = |body: &[u8]| CollectRequest::parse_for("aws", "instances", body);
        assert_eq!(parse(b"").unwrap(), CollectRequest::of("aws", "instances"));
        let r = parse(br#"{"regions":["eu-west-1"]}"#).unwrap();
        assert_eq!(r.regions, ["eu-west-1"]);
        assert_eq!((r.source.as_str(), r.kind.as_str()), ("aws", "instances"));
        assert!(matches!(
            parse(b"{nope"),
            Err(RequestError::MalformedBody(_))
        ));
        assert!(matches!(
            parse(br#"{"region":"x"}"#),
            Err(RequestError::MalformedBody(_))
        ));
        // The body may repeat the subject's source and kind, not contradict them.
        assert!(parse(br#"{"source":"aws","kind":"instances"}"#).is_ok());
        let e = parse(br#"{"source":"ganeti"}"#).unwrap_err().to_string();
        assert!(
            e.contains("names source \"ganeti\" but the subject \"aws\""),
            "{e}"
        );
    }

    #[test]
    fn rest_bodies_name_their_target_and_may_carry_an_id() {
        let (r, id) =
            CollectRequest::parse_with_id(br#"{"source":"aws","kind":"all","id":"k-1"}"#).unwrap();
        assert_eq!(
            (r, id.as_deref()),
            (CollectRequest::of("aws", "all"), Some("k-1"))
        );
        for bad in [
            &br#"{"kind":"all"}"#[..],
            br#"{"source":"aws","kind":"all","id":7}"#,
            br#"{"source":"aws","kind":"all","colour":"red"}"#,
            b"[]",
        ] {
            assert!(
                matches!(
                    CollectRequest::parse_with_id(bad),
                    Err(RequestError::MalformedBody(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
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
