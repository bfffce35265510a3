//! Every stable error code the system answers with, in one place: API error
//! bodies (`{"error": {"code": …}}`), collection-request replies, task
//! errors and logs. Clients branch on these strings; a code is never renamed.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $text)] $variant,)*
            /// A code this version does not know (written by a newer one).
            #[serde(other)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code, in the order above (`Unknown` excluded).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Unknown => "unknown",
                }
            }
        }
    };
}

codes! {
    // Requests (NATS and REST).
    /// The body is not a collection request.
    MalformedRequest = "malformed_request",
    /// A request's id cannot be a task id.
    InvalidId = "invalid_id",
    /// No such source or kind.
    UnknownKind = "unknown_kind",
    /// No selected account has the region.
    UnknownRegion = "unknown_region",
    /// No such account is configured.
    UnknownAccount = "unknown_account",
    /// The collector cannot collect this kind.
    UnsupportedKind = "unsupported_kind",
    // Collection.
    /// The provider failed (an outage, throttling, bad data).
    ProviderError = "provider_error",
    /// The provider denied the credentials.
    CredentialsRejected = "credentials_rejected",
    /// No scan of the account could run.
    AccountUnreachable = "account_unreachable",
    /// A scan failed (no more precise reason was recorded).
    ScanFailed = "scan_failed",
    /// The collector's configuration is invalid.
    InvalidConfiguration = "invalid_configuration",
    /// NATS was not reachable.
    BusUnavailable = "bus_unavailable",
    /// It was cancelled.
    Cancelled = "cancelled",
    // Tasks.
    /// A retried task ran out of attempts.
    AttemptsExhausted = "attempts_exhausted",
    /// A message on the task queue is not a task.
    MalformedTask = "malformed_task",
    /// The task's state does not allow the operation.
    TaskState = "task_state",
    // The API.
    /// A query parameter is invalid.
    InvalidParameter = "invalid_parameter",
    /// A query parameter the route does not take.
    UnknownParameter = "unknown_parameter",
    /// A filter's value does not fit its column's type.
    InvalidFilter = "invalid_filter",
    /// `limit` is not a number in range.
    InvalidLimit = "invalid_limit",
    /// `at` is neither a time nor a sequence.
    InvalidAt = "invalid_at",
    /// The query string cannot be parsed.
    InvalidQuery = "invalid_query",
    /// A cursor is not one the API gave out.
    InvalidCursor = "invalid_cursor",
    /// A filter names no column of the kind.
    UnknownFilter = "unknown_filter",
    /// A filter's operator does not fit its column's type, or is no operator.
    InvalidOperator = "invalid_operator",
    /// `sort` or `group_by` names a column that cannot order or group.
    InvalidSort = "invalid_sort",
    /// `fields` names a field items do not have.
    UnknownField = "unknown_field",
    /// `format` (or `Accept`) asks for no format the route serves.
    InvalidFormat = "invalid_format",
    /// No bearer token, or one that is not valid.
    Unauthorized = "unauthorized",
    /// The token lacks the scope the request needs.
    Forbidden = "forbidden",
    /// No such resource or task.
    NotFound = "not_found",
    /// The route does not take the method (the answer's `Allow` lists those it takes).
    MethodNotAllowed = "method_not_allowed",
    /// The request body is larger than the route takes.
    PayloadTooLarge = "payload_too_large",
    /// An id names several resources (across accounts or regions).
    AmbiguousId = "ambiguous_id",
    /// The resource was deleted.
    Gone = "gone",
    /// A dependency (PostgreSQL, NATS, a collector) is away.
    Unavailable = "unavailable",
    /// A wait ran out.
    Timeout = "timeout",
    /// A query ran longer than `api.query_timeout` and was cancelled.
    QueryTimeout = "query_timeout",
    /// A bug of ours; the details are logged, not told.
    Internal = "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes compare with their wire text (`code == "unknown_kind"`).
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for &code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        // A code from a newer version still reads.
        let newer: ErrorCode = serde_json::from_str("\"quota_exceeded\"").unwrap();
        assert_eq!(newer, ErrorCode::Unknown);
    }
}
