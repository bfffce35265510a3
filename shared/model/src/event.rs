//! The event contract (schema version 1). See `docs/events.md` for the prose.
//!
//! One [`Envelope`] type carries both resource events (`resource.created`,
//! `resource.updated`, `resource.deleted`) and scan markers (`scan.started`,
//! `scan.completed`, `scan.failed`, `scan.cancelled`). Envelopes are JSON on the wire; the raw
//! provider payload travels untouched as a `serde_json::Value`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The schema version this build writes and the only one it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened, in the past tense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "resource.created")]
    ResourceCreated,
    #[serde(rename = "resource.updated")]
    ResourceUpdated,
    #[serde(rename = "resource.deleted")]
    ResourceDeleted,
    #[serde(rename = "scan.started")]
    ScanStarted,
    #[serde(rename = "scan.completed")]
    ScanCompleted,
    #[serde(rename = "scan.failed")]
    ScanFailed,
    /// Stopped on request (its task was cancelled); like a failure, it deletes nothing.
    #[serde(rename = "scan.cancelled")]
    ScanCancelled,
    /// The listing returned an item the kind cannot take (it has no id): kept
    /// as a dead letter with the reason, while the scan goes on without it.
    #[serde(rename = "item.rejected")]
    ItemRejected,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ResourceCreated => "resource.created",
            EventType::ResourceUpdated => "resource.updated",
            EventType::ResourceDeleted => "resource.deleted",
            EventType::ScanStarted => "scan.started",
            EventType::ScanCompleted => "scan.completed",
            EventType::ScanFailed => "scan.failed",
            EventType::ScanCancelled => "scan.cancelled",
            EventType::ItemRejected => "item.rejected",
        }
    }

    pub fn is_resource(self) -> bool {
        matches!(
            self,
            EventType::ResourceCreated | EventType::ResourceUpdated | EventType::ResourceDeleted
        )
    }
}

/// Where a resource lives: the account and, for regional kinds, the region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The versioned envelope of every event on the event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_type: EventType,
    pub schema_version: u32,
    pub source: String,
    pub kind: String,
    pub scope: Scope,
    /// The resource's natural id within its scope; absent on scan markers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub scan_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Hash of the canonical payload (created/updated) or of the last published
    /// payload (deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The raw provider payload as the API returned it (created/updated, and
    /// the item of an `item.rejected`), as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// `scan.completed`: how many resources the scan saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_seen: Option<u64>,
    /// `scan.failed`, `scan.cancelled`, `item.rejected`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `scan.completed`: the stream's first sequence when the collector read
    /// what it had published for the scope. It knew every resource whose last
    /// event is at or above it; a live resource of the scope whose last event is
    /// below it (aged out of the stream) and that the scan did not announce
    /// again is gone, and the fold deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_from_seq: Option<u64>,
}

/// A raw provider payload, kept as the JSON text it travels as: read (and so
/// projected) only where needed, never re-serialized on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Payload {
    /// The canonical text of a value (keys sorted, compact).
    pub fn from_value(value: &Value) -> Payload {
        Payload(serde_json::value::to_raw_value(value).expect("a json value always serializes"))
    }

    /// Text that must be one JSON value.
    pub fn from_text(text: String) -> Result<Payload, serde_json::Error> {
        RawValue::from_string(text).map(Payload)
    }

    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The payload parsed.
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    pub fn into_text(self) -> String {
        String::from(Box::<str>::from(self.0))
    }
}

/// Ways an event can break the contract. Such events are dead-lettered, never applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ContractError {
    #[error("event is not a valid envelope: {0}")]
    Malformed(String),
    #[error("unsupported schema version {0} (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion(u32),
    #[error("unknown kind {provider}/{kind}")]
    UnknownKind { provider: String, kind: String },
    #[error("{event_type} event lacks {field}")]
    MissingField {
        event_type: &'static str,
        field: &'static str,
    },
    #[error("kind {kind} is {expected} but the event scope {actual}")]
    ScopeMismatch {
        kind: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("payload has no id at {pointer}")]
    MissingId { pointer: &'static str },
    #[error("payload id {payload_id} differs from event key {key}")]
    KeyMismatch { payload_id: String, key: String },
}

impl Envelope {
    /// Decode and check the structural rules of the contract (kind-specific checks
    /// happen in [`crate::KindDef::project`]).
    pub fn decode(bytes: &[u8]) -> Result<Envelope, ContractError> {
        let env: Envelope =
            serde_json::from_slice(bytes).map_err(|e| ContractError::Malformed(e.to_string()))?;
        env.validate()?;
        Ok(env)
    }

    pub fn validate(&self) -> Result<(), ContractError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(ContractError::UnsupportedVersion(self.schema_version));
        }
        let event_type = self.event_type.as_str();
        let missing = |field| ContractError::MissingField { event_type, field };
        if self.scope.account_id.is_empty() {
            return Err(missing("scope.account_id"));
        }
        if self.event_type.is_resource() && self.key.is_none() {
            return Err(missing("key"));
        }
        match self.event_type {
            EventType::ResourceCreated | EventType::ResourceUpdated => {
                if self.payload.is_none() {
                    return Err(missing("payload"));
                }
                if self.content_hash.is_none() {
                    return Err(missing("content_hash"));
                }
            }
            EventType::ScanCompleted if self.resources_seen.is_none() => {
                return Err(missing("resources_seen"));
            }
            EventType::ScanFailed | EventType::ScanCancelled | EventType::ItemRejected
                if self.error.is_none() =>
            {
                return Err(missing("error"));
            }
            _ => {}
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Encode with `payload` (canonical JSON bytes, as [`canonical_json`] makes
    /// them) spliced in as the payload field, so a producer that already
    /// serialized the payload to hash it does not serialize it again. Decodes to
    /// the same envelope as [`Envelope::to_bytes`] with that payload set.
    pub fn to_bytes_with_payload(&self, payload: &[u8]) -> Vec<u8> {
        debug_assert!(self.payload.is_none(), "the payload is given separately");
        let mut out = Vec::with_capacity(payload.len() + 512);
        serde_json::to_writer(&mut out, self).expect("an envelope always serializes");
        // An envelope is a JSON object: replace its closing brace.
        let close = out.pop();
        debug_assert_eq!(close, Some(b'}'));
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(payload);
        out.push(b'}');
        out
    }
}

/// Canonical JSON of a payload: object keys sorted, which `serde_json::Value`
/// guarantees without the `preserve_order` feature.
pub fn canonical_json(payload: &Value) -> Vec<u8> {
    serde_json::to_vec(payload).expect("a json value always serializes")
}

/// [`content_hash`] of payload bytes made by [`canonical_json`].
pub fn content_hash_of(canonical: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(canonical))
}

/// Content hash of a payload: xxh3-128 over its canonical JSON (object keys sorted,
/// which `serde_json::Value` guarantees without the `preserve_order` feature).
/// It detects change; it is not a security boundary.
pub fn content_hash(payload: &Value) -> String {
    content_hash_of(&canonical_json(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn created() -> Envelope {
        let payload = json!({"vpcId": "vpc-1", "state": "available"});
        Envelope {
            event_type: EventType::ResourceCreated,
            schema_version: SCHEMA_VERSION,
            source: "aws".into(),
            kind: "vpc".into(),
            scope: Scope {
                account_id: "123456789012".into(),
                region: Some("eu-west-1".into()),
            },
            key: Some("vpc-1".into()),
            observed_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            scan_id: "scan-1".into(),
            request_id: None,
            content_hash: Some(content_hash(&payload)),
            payload: Some(Payload::from_value(&payload)),
            resources_seen: None,
            error: None,
            known_from_seq: None,
        }
    }

    #[test]
    fn roundtrip_keeps_every_field() {
        let env = created();
        let back = Envelope::decode(&env.to_bytes()).unwrap();
        assert_eq!(back, env);
        let wire: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        assert_eq!(wire["event_type"], "resource.created");
        assert_eq!(wire["scope"]["region"], "eu-west-1");
    }

    #[test]
    fn spliced_payload_encodes_the_same_envelope() {
        let env = created();
        let mut bare = env.clone();
        let payload = bare.payload.take().unwrap();
        let bytes = bare.to_bytes_with_payload(payload.text().as_bytes());
        assert_eq!(Envelope::decode(&bytes).unwrap(), env);
        let value = payload.value().unwrap();
        assert_eq!(
            content_hash_of(payload.text().as_bytes()),
            content_hash(&value)
        );
        assert_eq!(canonical_json(&value), payload.text().as_bytes());
    }

    #[test]
    fn hash_ignores_key_order_but_not_values() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":{"d":3,"c":2},"a":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"b":{"d":4,"c":2},"a":1}"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
        assert_eq!(content_hash(&a).len(), 32);
    }

    #[test]
    fn contract_violations_are_named() {
        assert!(matches!(
            Envelope::decode(b"not json"),
            Err(ContractError::Malformed(_))
        ));
        let mut env = created();
        env.schema_version = 2;
        assert_eq!(
            Envelope::decode(&env.to_bytes()),
            Err(ContractError::UnsupportedVersion(2))
        );
        let mut env = created();
        env.payload = None;
        assert_eq!(
            env.validate(),
            Err(ContractError::MissingField {
                event_type: "resource.created",
                field: "payload"
            })
        );
        let mut env = created();
        env.event_type = EventType::ScanCompleted;
        env.key = None;
        assert!(env.validate().is_err(), "completed scan without a count");
        env.resources_seen = Some(3);
        assert!(env.validate().is_ok());
    }
}
