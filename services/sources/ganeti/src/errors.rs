//! What a failed RAPI call means. RAPI answers errors as
//! `{"code": <status>, "message": …, "explain": …}`; 401 and 403 are the
//! credential's fault, 429 asks for patience, 5xx and network failures are
//! transient, the rest fail for good.

use inventory_collector::{CollectError, Failure};

/// A call that failed: its status (none: it never got an answer) and what the
/// server or the network said.
#[derive(Debug)]
pub(crate) struct CallError {
    pub status: Option<u16>,
    pub message: String,
}

pub(crate) fn classify(e: &CallError) -> Failure {
    match e.status {
        None => Failure::Transient,
        Some(429) => Failure::Throttled,
        Some(s) if s >= 500 => Failure::Transient,
        Some(_) => Failure::Permanent,
    }
}

/// The collector's view of a failed call of `operation` (`whose`: the cluster).
pub(crate) fn collect_error(whose: &str, operation: &str, e: CallError) -> CollectError {
    let message = format!("{whose}: {}", e.message);
    match e.status {
        Some(401 | 403) => CollectError::Credentials(format!("{operation} denied: {message}")),
        _ => CollectError::Provider {
            operation: operation.to_owned(),
            retryable: classify(&e) != Failure::Permanent,
            message,
        },
    }
}

/// The message of an error answer: RAPI's `code message: explain`, or the
/// body as it is (bounded).
pub(crate) fn answer_message(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) if v.get("message").is_some() => format!(
            "{} {}: {}",
            v["code"].as_u64().unwrap_or(status as u64),
            v["message"].as_str().unwrap_or_default(),
            v["explain"].as_str().unwrap_or_default()
        ),
        _ => format!(
            "{status}: {}",
            inventory_model::text::truncated(&String::from_utf8_lossy(body), 200)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_retries_and_credentials() {
        let e = |status| CallError {
            status,
            message: "x".into(),
        };
        assert_eq!(classify(&e(Some(429))), Failure::Throttled);
        assert_eq!(classify(&e(Some(503))), Failure::Transient);
        assert_eq!(classify(&e(None)), Failure::Transient);
        assert_eq!(classify(&e(Some(404))), Failure::Permanent);
        assert!(matches!(
            collect_error("c", "instances", e(Some(401))),
            CollectError::Credentials(_)
        ));
        assert!(collect_error("c", "instances", e(Some(502))).is_retryable());
        assert_eq!(
            answer_message(
                401,
                br#"{"code": 401, "message": "Unauthorized", "explain": "No authorization"}"#
            ),
            "401 Unauthorized: No authorization"
        );
    }
}
