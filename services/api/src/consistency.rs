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
use inventory_model::ErrorCode;
use inventory_model::text::quoted;

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
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidParameter, e.to_string()))?;
    let (waits, rest): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(k, _)| PARAMS.contains(&k.as_str()));
    let wait = match waits.as_slice() {
        [] => None,
        [(k, v)] if k == "after_task" => Some(Wait::Task(v.clone())),
        [(_, v)] => Some(Wait::Seq(v.parse().map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidParameter,
                "min_seq must be a stream sequence (an integer)",
            )
        })?)),
        _ => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidParameter,
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
                .map_err(|_| ApiError::bad_request(ErrorCode::InvalidParameter, "invalid query"))?;
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
            let view = state.task_view().await?;
            match view
                .wait_for(&id, state.read_wait, |t| t.state.is_final())
                .await
            {
                Ok(Some(task)) => task.last_seq.unwrap_or(0),
                Ok(None) => return Err(ApiError::NotFound(format!("no task {}", quoted(&id)))),
                Err(task) => {
                    let state = task.map(|t| t.state.to_string()).unwrap_or_default();
                    return Err(timeout(format!(
                        "task {} did not finish (it is {state})",
                        quoted(&id)
                    )));
                }
            }
        }
    };
    match state.progress.wait_for(state, seq, deadline).await? {
        Ok(()) => Ok(()),
        Err(applied) => Err(timeout(format!(
            "the projection did not reach sequence {seq} (it is at {applied})"
        ))),
    }
}

/// Waiting for the served projection's checkpoint: one poller per API
/// instance, running only while someone waits, however many wait.
#[derive(Default)]
pub(crate) struct Progress {
    checkpoint: tokio::sync::watch::Sender<u64>,
    waiting: std::sync::atomic::AtomicUsize,
    polling: std::sync::Mutex<bool>,
}

/// At most this many reads wait at once per API instance; more get a 503.
const MAX_WAITING: usize = 512;

/// Counts one waiting read while it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Progress {
    /// Wait until the checkpoint reaches `seq` or `deadline` passes (then the
    /// checkpoint last seen).
    async fn wait_for(
        &self,
        state: &ApiState,
        seq: u64,
        deadline: Instant,
    ) -> Result<Result<(), u64>, ApiError> {
        use std::sync::atomic::Ordering;
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _counted = Waiting(&self.waiting);
        if waiting >= MAX_WAITING {
            return Err(ApiError::Unavailable(format!(
                "{MAX_WAITING} reads are already waiting for the projection; try again later"
            )));
        }
        let mut rx = self.checkpoint.subscribe();
        self.poll_while_waited(state);
        let reached = tokio::time::timeout_at(deadline, rx.wait_for(|c| *c >= seq))
            .await
            .is_ok_and(|r| r.is_ok());
        Ok(if reached { Ok(()) } else { Err(*rx.borrow()) })
    }

    /// Start the poller unless it runs; it stops once nobody waits.
    fn poll_while_waited(&self, state: &ApiState) {
        use std::sync::atomic::Ordering;
        let mut polling = self.polling.lock().expect("poller lock");
        if *polling {
            return;
        }
        *polling = true;
        let state = state.clone();
        tokio::spawn(async move {
            let this = &state.progress;
            loop {
                {
                    let mut polling = this.polling.lock().expect("poller lock");
                    if this.waiting.load(Ordering::SeqCst) == 0 {
                        *polling = false;
                        return;
                    }
                }
                match state.store().checkpoint(&state.projection).await {
                    Ok(c) => {
                        this.checkpoint.send_if_modified(|old| {
                            let newer = c > *old;
                            if newer {
                                *old = c;
                            }
                            newer
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the projection's checkpoint"),
                }
                tokio::time::sleep(POLL).await;
            }
        });
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
