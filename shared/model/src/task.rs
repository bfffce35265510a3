//! Collection tasks: a collection request as durable work, its lifecycle and
//! the pure rules that drive it (what an attempt's outcome leads to, which
//! priority is served next, how long to back off).
//!
//! ```text
//!             submit                 picked up
//!   ───────────────────▶ pending ─────────────────▶ active ──────▶ completed
//!                          ▲  │ cancel               │  │ │
//!           retry (redrive)│  ▼                      │  │ └──────▶ failed (some scopes
//!                          │ cancelled ◀─── cancel ──┘  │           failed for good)
//!                          │  ▲                         │ transient failure,
//!                          │  │ cancel                  ▼ attempts left
//!                          │  └───────────────────── scheduled ──(backoff)──▶ active
//!                          │                            │ attempts exhausted
//!                          └──────────── dead ◀─────────┘ or permanent error
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::code::ErrorCode;
use crate::request::CollectRequest;

/// How urgently a task should run. Higher priorities are served first; lower
/// ones still get a turn (see [`PriorityOrder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Priority, String> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority {s:?} (high, normal or low)"))
    }
}

/// Where a task is in its lifecycle (see the module's diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Queued, waiting for a collector.
    Pending,
    /// A collector is running it.
    Active,
    /// An attempt failed for a transient reason; the next one starts at `retry_at`.
    Scheduled,
    /// Every scope was collected.
    Completed,
    /// It ran to its end, but some scopes failed for good (the rest were collected).
    Failed,
    /// Dead-lettered: a permanent error, or no attempts left. `retry` re-drives it.
    Dead,
    /// Cancelled by an operator; its scans deleted nothing.
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Pending,
        TaskState::Active,
        TaskState::Scheduled,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Dead,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Active => "active",
            TaskState::Scheduled => "scheduled",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Dead => "dead",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Nothing more will happen to it unless an operator re-drives it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Dead | TaskState::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<TaskState, String> {
        TaskState::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown task state {s:?} (one of {})", known.join(", "))
            })
    }
}

/// What to collect: the part of a task that travels through the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub id: String,
    pub source: String,
    /// A plural kind name, or `all`.
    pub kind: String,
    /// Its accounts and regions (its source, kind and priority are the
    /// spec's own fields, and left out here).
    #[serde(default)]
    pub request: CollectRequest,
    #[serde(default)]
    pub priority: Priority,
    /// The schedule that fired it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The W3C trace context of the request that made it: its attempts, scans
    /// and provider calls belong to that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl TaskSpec {
    /// A spec for `request` (its source, kind and priority move to the spec).
    pub fn new(
        id: String,
        mut request: CollectRequest,
        schedule: Option<&str>,
        created_at: DateTime<Utc>,
    ) -> TaskSpec {
        TaskSpec {
            id,
            source: std::mem::take(&mut request.source),
            kind: std::mem::take(&mut request.kind),
            priority: request.priority.take().unwrap_or_default(),
            request,
            schedule: schedule.map(str::to_owned),
            created_at,
            traceparent: None,
        }
    }

    /// The whole request it runs.
    pub fn request(&self) -> CollectRequest {
        CollectRequest {
            source: self.source.clone(),
            kind: self.kind.clone(),
            priority: Some(self.priority),
            ..self.request.clone()
        }
    }
}

/// How far an active task has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Scopes (kind, account, region) the task covers; known once it is planned.
    pub scopes_total: u64,
    /// Scopes finished, failed ones included.
    pub scopes_done: u64,
    pub scopes_failed: u64,
    pub resources_seen: u64,
}

/// Why a task failed: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    pub code: ErrorCode,
    pub message: String,
}

/// One scope that failed, as the task shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeFailure {
    pub kind: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub error: String,
}

/// Scope failures kept on a task; the rest are counted in its progress.
pub const MAX_SCOPE_FAILURES: usize = 20;

/// A task as the control plane records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[serde(flatten)]
    pub spec: TaskSpec,
    pub state: TaskState,
    /// Attempts started (a collector that died mid-attempt counts one).
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When a scheduled retry starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// The collector running (or that last ran) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default)]
    pub progress: Progress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ScopeFailure>,
    /// Once it has run: the stream sequence of its last event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// An operator asked to cancel it; the collector running it stops at its
    /// next page.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
    /// Sequence of its message in the work queue (to remove it when cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_seq: Option<u64>,
    /// Times it was re-driven from a final state.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redriven: u32,
    pub updated_at: DateTime<Utc>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Task {
    /// A task as submitted: pending, no attempts yet.
    pub fn new(spec: TaskSpec) -> Task {
        let now = spec.created_at;
        Task {
            spec,
            state: TaskState::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            retry_at: None,
            worker: None,
            progress: Progress::default(),
            error: None,
            failures: Vec::new(),
            last_seq: None,
            cancel_requested: false,
            queue_seq: None,
            redriven: 0,
            updated_at: now,
        }
    }

    /// A request that can never run (malformed, unknown kind): dead on arrival.
    pub fn rejected(spec: TaskSpec, code: ErrorCode, message: &str) -> Task {
        let mut task = Task::new(spec);
        task.state = TaskState::Dead;
        task.finished_at = Some(task.spec.created_at);
        task.error = Some(TaskError {
            code,
            message: message.to_owned(),
        });
        task
    }
}

/// Task ids are KV keys and subject tokens: 1–128 of `[A-Za-z0-9_-]`.
pub fn valid_task_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Which tasks a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub state: Option<TaskState>,
    pub source: Option<String>,
    pub kind: Option<String>,
}

impl TaskFilter {
    pub fn matches(&self, task: &Task) -> bool {
        self.state.is_none_or(|s| s == task.state)
            && self.source.as_ref().is_none_or(|s| *s == task.spec.source)
            && self.kind.as_ref().is_none_or(|k| *k == task.spec.kind)
    }
}

/// Newest first (ids break ties, so pages are stable).
pub fn sort_tasks(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| {
        b.spec
            .created_at
            .cmp(&a.spec.created_at)
            .then_with(|| b.spec.id.cmp(&a.spec.id))
    });
}

/// What one attempt of a task came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The request could not be planned (e.g. unknown account, denied credentials
    /// of the only account): `(code, message, retryable)`.
    pub plan_error: Option<(ErrorCode, String, bool)>,
    pub scopes_completed: u64,
    /// Scopes that failed for a transient reason (after the in-task retries).
    pub scopes_retryable: u64,
    /// Scopes that failed for good (denied credentials, bad data).
    pub scopes_permanent: u64,
    /// The first failure, for the task's error.
    pub first_error: Option<(ErrorCode, String)>,
    pub cancelled: bool,
}

/// What happens to a task after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Complete,
    /// Done, with some scopes failed for good.
    Fail(TaskError),
    /// Try again after a backoff.
    Retry(TaskError),
    /// Dead-letter it with this reason.
    Dead(TaskError),
    Cancelled,
}

/// Decide what follows attempt number `attempts` (1-based) of at most `max_attempts`.
pub fn next_step(outcome: &AttemptOutcome, attempts: u32, max_attempts: u32) -> NextStep {
    if outcome.cancelled {
        return NextStep::Cancelled;
    }
    let error = |(code, message): (ErrorCode, &str)| TaskError {
        code,
        message: message.to_owned(),
    };
    let retry_or_dead = |e: TaskError| {
        if attempts < max_attempts {
            NextStep::Retry(e)
        } else {
            NextStep::Dead(TaskError {
                code: ErrorCode::AttemptsExhausted,
                message: format!("gave up after {attempts} attempts: {}", e.message),
            })
        }
    };
    if let Some((code, message, retryable)) = &outcome.plan_error {
        let e = error((*code, message));
        return if *retryable {
            retry_or_dead(e)
        } else {
            NextStep::Dead(e)
        };
    }
    let first = outcome
        .first_error
        .as_ref()
        .map(|(c, m)| error((*c, m)))
        .unwrap_or_else(|| error((ErrorCode::ScanFailed, "a scan failed")));
    if outcome.scopes_retryable > 0 {
        retry_or_dead(first)
    } else if outcome.scopes_permanent > 0 && outcome.scopes_completed == 0 {
        NextStep::Dead(first)
    } else if outcome.scopes_permanent > 0 {
        NextStep::Fail(first)
    } else {
        NextStep::Complete
    }
}

/// Full-jitter exponential backoff: uniformly random (`unit` in `[0, 1)`) up to
/// `base · 2^(attempt-1)`, capped at `max`. `attempt` is 1-based.
pub fn jittered_backoff(base: Duration, max: Duration, attempt: u32, unit: f64) -> Duration {
    let cap = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    cap.mul_f64(unit.clamp(0.0, 1.0))
}

/// The order in which the priority queues are asked for the next task: strict
/// priority, except that every `every`-th task taken is offered to the lower
/// queues first (alternating low and normal), so low work is never starved.
#[derive(Debug, Clone)]
pub struct PriorityOrder {
    every: u64,
    taken: u64,
}

impl PriorityOrder {
    /// `every` = 0 means strict priority.
    pub fn new(every: u32) -> PriorityOrder {
        PriorityOrder {
            every: every as u64,
            taken: 0,
        }
    }

    pub fn order(&self) -> [Priority; 3] {
        use Priority::*;
        if self.every > 0 && self.taken % self.every == self.every - 1 {
            if (self.taken / self.every).is_multiple_of(2) {
                [Low, Normal, High]
            } else {
                [Normal, Low, High]
            }
        } else {
            [High, Normal, Low]
        }
    }

    /// A task was taken from one of the queues.
    pub fn taken(&mut self) {
        self.taken += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(completed: u64, retryable: u64, permanent: u64) -> AttemptOutcome {
        AttemptOutcome {
            scopes_completed: completed,
            scopes_retryable: retryable,
            scopes_permanent: permanent,
            first_error: (retryable + permanent > 0)
                .then(|| (ErrorCode::ProviderError, "boom".into())),
            ..Default::default()
        }
    }

    #[test]
    fn outcomes_decide_the_next_step() {
        assert_eq!(next_step(&outcome(3, 0, 0), 1, 3), NextStep::Complete);
        assert!(matches!(
            next_step(&outcome(2, 1, 0), 1, 3),
            NextStep::Retry(_)
        ));
        match next_step(&outcome(2, 1, 0), 3, 3) {
            NextStep::Dead(e) => {
                assert_eq!(e.code, ErrorCode::AttemptsExhausted);
                assert!(e.message.contains("3 attempts: boom"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(next_step(&outcome(0, 0, 2), 1, 3), NextStep::Dead(e) if e.code == ErrorCode::ProviderError)
        );
        assert!(matches!(
            next_step(&outcome(1, 0, 2), 1, 3),
            NextStep::Fail(_)
        ));
        let plan = |retryable| AttemptOutcome {
            plan_error: Some((ErrorCode::UnknownAccount, "no".into(), retryable)),
            ..Default::default()
        };
        assert!(
            matches!(next_step(&plan(false), 1, 3), NextStep::Dead(e) if e.code == ErrorCode::UnknownAccount)
        );
        assert!(matches!(next_step(&plan(true), 1, 3), NextStep::Retry(_)));
        let cancelled = AttemptOutcome {
            cancelled: true,
            ..outcome(1, 1, 0)
        };
        assert_eq!(next_step(&cancelled, 1, 3), NextStep::Cancelled);
    }

    #[test]
    fn strict_priority_with_a_turn_for_lower_queues() {
        use Priority::*;
        let mut p = PriorityOrder::new(4);
        let mut firsts = Vec::new();
        for _ in 0..8 {
            firsts.push(p.order()[0]);
            p.taken();
        }
        assert_eq!(
            firsts,
            [High, High, High, Low, High, High, High, Normal],
            "every 4th pick goes to low, then normal"
        );
        let strict = PriorityOrder::new(0);
        assert_eq!(strict.order(), [High, Normal, Low]);
    }

    #[test]
    fn backoff_doubles_under_a_cap() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(jittered_backoff(base, max, 1, 0.999), base.mul_f64(0.999));
        assert_eq!(
            jittered_backoff(base, max, 3, 0.5),
            Duration::from_secs(2),
            "half of 4s"
        );
        assert_eq!(jittered_backoff(base, max, 30, 1.0), max);
        assert_eq!(jittered_backoff(base, max, 2, 0.0), Duration::ZERO);
    }

    #[test]
    fn states_priorities_and_ids_parse() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), s);
        }
        assert!("nope".parse::<TaskState>().is_err());
        assert_eq!("high".parse::<Priority>().unwrap(), Priority::High);
        assert!(valid_task_id("0193-abc_D"));
        assert!(!valid_task_id(""));
        assert!(!valid_task_id("a.b"));
        assert!(!valid_task_id(&"x".repeat(129)));
    }

    #[test]
    fn tasks_round_trip_and_filter() {
        let spec = TaskSpec {
            id: "t1".into(),
            source: "aws".into(),
            kind: "vpcs".into(),
            request: CollectRequest::default(),
            priority: Priority::High,
            schedule: None,
            created_at: Utc::now(),
            traceparent: None,
        };
        let task = Task::new(spec);
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["id"], "t1");
        assert_eq!(json["state"], "pending");
        assert_eq!(json["priority"], "high");
        let back: Task = serde_json::from_value(json).unwrap();
        assert_eq!(back, task);
        let f = TaskFilter {
            state: Some(TaskState::Pending),
            source: Some("aws".into()),
            kind: None,
        };
        assert!(f.matches(&task));
        let f = TaskFilter {
            kind: Some("instances".into()),
            ..Default::default()
        };
        assert!(!f.matches(&task));
    }
}
