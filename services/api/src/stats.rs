//! The pipeline's state sampled from JetStream, PostgreSQL and the task
//! records: one snapshot, refreshed in the background every few seconds
//! (started by the first reader), that `/metrics` renders as Prometheus
//! families and `GET /api/v1/stats` serves as JSON — so the console and the
//! dashboards show the same numbers, and neither costs a request to NATS or
//! PostgreSQL per read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use inventory_bus::StreamStats;
use inventory_model::{Priority, TaskState};
use inventory_store::{FailingScan, ProjectionStats, ResourceCount};
use serde::Serialize;

use crate::ApiState;

/// Failing scopes listed at most.
const FAILING_SCANS: i64 = 50;

/// One sample of the pipeline. A part that could not be refreshed keeps its
/// last value (the failure is logged); `None` is a part never sampled.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Snapshot {
    pub sampled_at: Option<DateTime<Utc>>,
    pub streams: Option<Vec<StreamStats>>,
    pub projections: Option<Vec<Projection>>,
    pub resources: Option<Vec<ResourceCount>>,
    pub failing_scans: Option<Vec<FailingScan>>,
    pub tasks: Option<Vec<TaskCount>>,
}

/// A projection and how far behind the stream it is.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Projection {
    #[serde(flatten)]
    pub stats: ProjectionStats,
    /// Events the stream holds past the checkpoint (`None`: no bus).
    pub lag_messages: Option<u64>,
    /// Age of the oldest of them; 0 when caught up.
    pub lag_seconds: Option<f64>,
}

/// Tasks in one state of one priority.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskCount {
    pub state: TaskState,
    pub priority: Priority,
    pub count: u64,
}

/// The snapshot and its refresher.
pub(crate) struct Sampler {
    every: Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    started: tokio::sync::OnceCell<()>,
    /// The refresh loop, stopped with the server.
    refreshing: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::every(Duration::from_secs(5))
    }
}

impl Sampler {
    /// Refreshed this often.
    pub(crate) fn every(every: Duration) -> Sampler {
        Sampler {
            every,
            snapshot: RwLock::default(),
            started: tokio::sync::OnceCell::new(),
            refreshing: std::sync::Mutex::default(),
        }
    }

    /// The latest snapshot. The first call waits for a first sample and
    /// starts the refresh loop; later ones never wait.
    pub(crate) async fn snapshot(&self, state: &ApiState) -> Arc<Snapshot> {
        self.started
            .get_or_init(|| async {
                refresh(state).await;
                let (state, every) = (state.clone(), self.every);
                let task = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        refresh(&state).await;
                    }
                });
                *self.refreshing.lock().expect("sampler lock") = Some(task.abort_handle());
            })
            .await;
        self.snapshot.read().expect("sampler lock").clone()
    }

    /// Stop refreshing.
    pub(crate) fn stop(&self) {
        if let Some(task) = self.refreshing.lock().expect("sampler lock").take() {
            task.abort();
        }
    }
}

/// Sample every part once and publish the new snapshot.
async fn refresh(state: &ApiState) {
    let sampler = &state.sampler;
    let mut next = Snapshot::clone(&sampler.snapshot.read().expect("sampler lock"));
    let store = state.store();
    let warn = |part: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(part, error = %e, "cannot sample the pipeline's state");
    };
    if let Some(bus) = &state.bus {
        match bus.stream_stats().await {
            Ok(s) => next.streams = Some(s),
            Err(e) => warn("streams", &e),
        }
    }
    match store.projection_stats().await {
        Ok(mut projections) => {
            // The projection this API waits for, from before its first batch.
            if !projections.iter().any(|p| p.projection == state.projection) {
                projections.push(ProjectionStats {
                    projection: state.projection.clone(),
                    checkpoint: 0,
                    dead_letters: 0,
                });
            }
            let events = state.bus.as_ref().and_then(|bus| {
                let name = bus.names().events_stream();
                let last = next
                    .streams
                    .as_ref()?
                    .iter()
                    .find(|s| s.stream == name)?
                    .last_seq;
                Some((bus, last))
            });
            let mut out = Vec::with_capacity(projections.len());
            for stats in projections {
                let lag_messages = events.map(|(_, last)| last.saturating_sub(stats.checkpoint));
                let lag_seconds = match (events, lag_messages) {
                    (Some((bus, _)), Some(n)) if n > 0 => {
                        match bus.first_event_from(stats.checkpoint + 1).await {
                            Ok(Some((_, at))) => {
                                Some((Utc::now() - at).num_milliseconds().max(0) as f64 / 1e3)
                            }
                            // Nothing held past the checkpoint: caught up.
                            Ok(None) => Some(0.0),
                            Err(e) => {
                                warn("projection lag", &e);
                                None
                            }
                        }
                    }
                    (_, Some(_)) => Some(0.0),
                    _ => None,
                };
                out.push(Projection {
                    stats,
                    lag_messages,
                    lag_seconds,
                });
            }
            next.projections = Some(out);
        }
        Err(e) => warn("projections", &e),
    }
    match store.resource_counts().await {
        Ok(r) => next.resources = Some(r),
        Err(e) => warn("resources", &e),
    }
    match store.failing_scans(FAILING_SCANS).await {
        Ok(f) => next.failing_scans = Some(f),
        Err(e) => warn("failing scans", &e),
    }
    if state.bus.is_some() {
        match state.task_view().await {
            Ok(view) => {
                let mut counts: HashMap<(TaskState, Priority), u64> = HashMap::new();
                view.each(|t| *counts.entry((t.state, t.spec.priority)).or_default() += 1);
                // Every state and priority, those without a task at 0.
                next.tasks = Some(
                    TaskState::ALL
                        .iter()
                        .flat_map(|s| Priority::ALL.iter().map(move |p| (*s, *p)))
                        .map(|(state, priority)| TaskCount {
                            state,
                            priority,
                            count: counts.get(&(state, priority)).copied().unwrap_or(0),
                        })
                        .collect(),
                );
            }
            Err(e) => warn("tasks", &e),
        }
    }
    next.sampled_at = Some(Utc::now());
    *sampler.snapshot.write().expect("sampler lock") = Arc::new(next);
}

/// `GET /api/v1/stats`: the latest snapshot.
pub(crate) async fn stats(state: web::Data<ApiState>) -> HttpResponse {
    let snapshot = state.sampler.snapshot(&state).await;
    HttpResponse::Ok().json(&*snapshot)
}
