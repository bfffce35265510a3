//! Read-your-writes: any query with `?after_task=<id>` or `?min_seq=<n>` waits
//! until the served projection has applied the event stream up to that
//! sequence (a task's: the last event it published, once it has finished),
//! then runs as if the parameter had not been given. It waits at most the
//! configured read wait, then answers 504.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use tokio::time::Instant;

use crate::ApiState;
use crate::error::ApiError;

const PARAMS: [&str; 2] = ["after_task", "min_seq"];
const POLL: Duration = Duration::from_millis(50);

/// What a request waits for.
#[derive(Debug, PartialEq)]
enum Wait {
    Task(String),
    Seq(u64),
}

/// Split the wait parameter off a query string: `(wait, the rest)`.
fn split(query: &str) -> Result<(Option<Wait>, String), ApiError> {
    let pairs: Vec<(String, String)> = web::Query::from_query(query)
        .map(|q: web::Query<Vec<(String, String)>>| q.into_inner())
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.to_string()))?;
    let (waits, rest): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(k, _)| PARAMS.contains(&k.as_str()));
    let wait = match waits.as_slice() {
        [] => None,
        [(k, v)] if k == "after_task" => Some(Wait::Task(v.clone())),
        [(_, v)] => Some(Wait::Seq(v.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_parameter",
                "min_seq must be a stream sequence (an integer)",
            )
        })?)),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "give one of after_task and min_seq, once",
            ));
        }
    };
    let rest = rest
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    Ok((wait, rest))
}

/// Percent-encode a query component (everything but unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The middleware: wait if asked to, then pass the request on without the
/// wait parameter.
pub(crate) async fn read_after(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if PARAMS.iter().any(|p| req.query_string().contains(p)) {
        let (wait, rest) = split(req.query_string())?;
        if let Some(wait) = wait {
            let state = req
                .app_data::<web::Data<ApiState>>()
                .expect("api state is registered")
                .clone();
            wait_for(&state, wait).await?;
            let path = req.path().to_owned();
            let uri = if rest.is_empty() {
                path
            } else {
                format!("{path}?{rest}")
            };
            req.head_mut().uri = uri
                .parse()
                .map_err(|_| ApiError::bad_request("invalid_parameter", "invalid query"))?;
        }
    }
    next.call(req).await
}

async fn wait_for(state: &ApiState, wait: Wait) -> Result<(), ApiError> {
    let deadline = Instant::now() + state.read_wait;
    let timeout = |what: String| {
        ApiError::Timeout(format!("{what} within {}s", state.read_wait.as_secs_f64()))
    };
    let seq = match wait {
        Wait::Seq(seq) => seq,
        Wait::Task(id) => {
            let bus = state
                .bus
                .as_ref()
                .ok_or_else(|| ApiError::Unavailable("this api runs without nats".into()))?;
            loop {
                let task = bus
                    .task(&id)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("no task {id}")))?;
                if task.state.is_final() {
                    break task.last_seq.unwrap_or(0);
                }
                if Instant::now() >= deadline {
                    return Err(timeout(format!(
                        "task {id} did not finish (it is {})",
                        task.state
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
        }
    };
    loop {
        let applied = state.store().checkpoint(&state.projection).await?;
        if applied >= seq {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timeout(format!(
                "the projection did not reach sequence {seq} (it is at {applied})"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_parameters_are_split_off() {
        let (w, rest) = split("state=running&after_task=t-1&limit=5").unwrap();
        assert_eq!(w, Some(Wait::Task("t-1".into())));
        assert_eq!(rest, "state=running&limit=5");
        let (w, rest) = split("min_seq=42").unwrap();
        assert_eq!(w, Some(Wait::Seq(42)));
        assert_eq!(rest, "");
        let (w, rest) = split("tag%3Aname=a%20b").unwrap();
        assert_eq!(w, None);
        assert_eq!(rest, "tag%3Aname=a%20b");
        assert!(split("min_seq=x").is_err());
        assert!(split("min_seq=1&after_task=t").is_err());
    }
}
