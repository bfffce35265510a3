//! The collector's side of the control plane: taking collection requests in,
//! running queued tasks (heartbeats, progress, cancel, retries, dead letters)
//! and firing schedules.
//!
//! Invariant: a task's queue message is acked only after its outcome is
//! recorded, so a collector that dies mid-task leaves the message to be
//! redelivered to another; the record then counts the lost attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use inventory_bus::{BusError, CollectDelivery, Intake, TaskDelivery};
use inventory_model::{
    AttemptOutcome, CollectRequest, ErrorCode, NextStep, PriorityOrder, Progress, ScopeFailure,
    Task, TaskSpec, TaskState, jittered_backoff, next_step, task::MAX_SCOPE_FAILURES,
};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{CollectError, CollectionReport, Collector, ScanReport};

/// How a collector runs tasks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskSettings {
    /// Tasks this collector runs at once.
    pub concurrency: usize,
    /// Attempts of a task before it is dead-lettered (transient failures).
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles per attempt (with full
    /// jitter) up to `max_backoff`.
    #[serde(deserialize_with = "inventory_model::duration::from_text")]
    pub backoff: Duration,
    #[serde(deserialize_with = "inventory_model::duration::from_text")]
    pub max_backoff: Duration,
    /// How long a task may go without a heartbeat before the server gives it to
    /// another collector; heartbeats go out every third of it.
    #[serde(deserialize_with = "inventory_model::duration::from_text")]
    pub ack_wait: Duration,
    /// Every this-many tasks, the lower priorities are asked first (0: strict).
    pub fairness: u32,
    /// How often idle collectors look for tasks, and schedules are checked.
    #[serde(deserialize_with = "inventory_model::duration::from_text")]
    pub poll: Duration,
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            concurrency: 2,
            max_attempts: 5,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30 * 60),
            ack_wait: Duration::from_secs(60),
            fairness: 10,
            poll: Duration::from_millis(250),
        }
    }
}

/// Live progress of one task, shared with its scans.
#[derive(Default)]
pub(crate) struct TaskProgress {
    scopes_total: AtomicU64,
    scopes_done: AtomicU64,
    scopes_failed: AtomicU64,
    resources_seen: AtomicU64,
    failures: Mutex<Vec<ScopeFailure>>,
}

impl TaskProgress {
    pub(crate) fn planned(&self, scopes: u64) {
        self.scopes_total.store(scopes, Ordering::Relaxed);
    }

    pub(crate) fn seen(&self, resources: u64) {
        self.resources_seen.fetch_add(resources, Ordering::Relaxed);
    }

    pub(crate) fn scan_done(&self, report: &ScanReport) {
        self.scopes_done.fetch_add(1, Ordering::Relaxed);
        if let Some(error) = &report.error {
            self.scopes_failed.fetch_add(1, Ordering::Relaxed);
            let mut failures = self.failures.lock().expect("failures");
            if failures.len() < MAX_SCOPE_FAILURES {
                failures.push(ScopeFailure {
                    kind: report.kind.clone(),
                    account_id: report.account_id.clone(),
                    region: report.region.clone(),
                    error: error.clone(),
                });
            }
        }
    }

    fn snapshot(&self) -> Progress {
        Progress {
            scopes_total: self.scopes_total.load(Ordering::Relaxed),
            scopes_done: self.scopes_done.load(Ordering::Relaxed),
            scopes_failed: self.scopes_failed.load(Ordering::Relaxed),
            resources_seen: self.resources_seen.load(Ordering::Relaxed),
        }
    }
}

impl CollectionReport {
    /// What this attempt came to, for [`next_step`].
    pub fn outcome(&self) -> AttemptOutcome {
        let mut out = AttemptOutcome::default();
        for scan in &self.scans {
            match &scan.error {
                None => out.scopes_completed += 1,
                Some(e) => {
                    if scan.retryable {
                        out.scopes_retryable += 1;
                    } else {
                        out.scopes_permanent += 1;
                    }
                    out.first_error.get_or_insert_with(|| {
                        (scan.code.unwrap_or(ErrorCode::ScanFailed), e.clone())
                    });
                }
            }
        }
        for account in &self.accounts_failed {
            if account.retryable {
                out.scopes_retryable += 1;
            } else {
                out.scopes_permanent += 1;
            }
            out.first_error.get_or_insert_with(|| {
                (
                    account.code,
                    format!("account {}: {}", account.account, account.error),
                )
            });
        }
        out
    }

    /// The stream sequence of the last event the collection published.
    pub fn last_seq(&self) -> Option<u64> {
        self.scans
            .iter()
            .map(|s| s.last_seq)
            .max()
            .filter(|s| *s > 0)
    }
}

impl Collector {
    /// Take collection requests from `<prefix>.collect.<source>.<kind>` into the
    /// task queue, answering each with its task id (or why it was rejected).
    pub(crate) async fn intake(&self, delivery: CollectDelivery) {
        let span = tracing::info_span!(
            "collect request",
            source = delivery.source,
            kind = delivery.kind
        );
        if let Some(tp) = &delivery.traceparent {
            inventory_telemetry::set_parent(&span, tp);
        }
        self.intake_in(delivery).instrument(span).await
    }

    async fn intake_in(&self, delivery: CollectDelivery) {
        let request =
            match CollectRequest::parse_for(&delivery.source, &delivery.kind, &delivery.body) {
                Ok(request) => self.check_regions(&request).await.map(|()| request),
                Err(e) => Err(e),
            };
        let reply = match self
            .bus
            .intake(
                &delivery.source,
                &delivery.kind,
                request,
                delivery.msg_id.as_deref(),
                None,
            )
            .await
        {
            Ok(intake) => intake.reply(),
            Err(e) => {
                tracing::error!(error = %e, "could not queue a collection request");
                json!({"error": {"code": ErrorCode::BusUnavailable, "message": e.to_string()}})
            }
        };
        if let Err(e) = delivery.respond(&reply).await {
            tracing::warn!(error = %e, "could not reply to a collection request");
        }
    }

    /// Run queued tasks until `shutdown`: at most `tasks.concurrency` at once,
    /// the highest priority first (with a turn for the lower ones).
    pub(crate) async fn work(self, shutdown: CancellationToken) -> Result<(), BusError> {
        let settings = self.settings.tasks.clone();
        let queue = self.bus.task_queue(settings.ack_wait).await?;
        let slots = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
        let mut order = PriorityOrder::new(settings.fairness);
        let mut running = tokio::task::JoinSet::new();
        'take: loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = slots.clone().acquire_owned() => p.expect("never closed"),
            };
            let delivery = loop {
                while running.try_join_next().is_some() {}
                match queue.next(order.order()).await {
                    Ok(Some(d)) => break d,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot fetch tasks"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break 'take,
                    _ = tokio::time::sleep(settings.poll) => {}
                }
            };
            order.taken();
            let this = self.clone();
            running.spawn(async move {
                this.run_task(delivery).await;
                drop(permit);
            });
        }
        // Running tasks see the shutdown at their next page and give their
        // messages back to the queue.
        while running.join_next().await.is_some() {}
        Ok(())
    }

    async fn run_task(&self, delivery: TaskDelivery) {
        let spec = match &delivery.spec {
            Ok(spec) => spec.clone(),
            Err(reason) => return self.reject_message(&delivery, reason).await,
        };
        let span = tracing::info_span!(
            "task",
            task_id = spec.id,
            source = spec.source,
            kind = spec.kind,
            priority = spec.priority.as_str(),
        );
        if let Some(tp) = &spec.traceparent {
            inventory_telemetry::set_parent(&span, tp);
        }
        self.run_spec(spec, &delivery).instrument(span).await
    }

    /// A message on the queue that is not a task: dead-letter it under its
    /// sequence, so it is seen and not redelivered forever.
    async fn reject_message(&self, delivery: &TaskDelivery, reason: &str) {
        let spec = TaskSpec {
            id: format!("queue-{}", delivery.seq),
            source: String::new(),
            kind: String::new(),
            request: CollectRequest::default(),
            priority: delivery.priority,
            schedule: None,
            created_at: Utc::now(),
            traceparent: None,
        };
        let task = Task::rejected(spec, ErrorCode::MalformedTask, reason);
        tracing::error!(
            seq = delivery.seq,
            reason,
            "dead-lettered a malformed task message"
        );
        match self.bus.put_task(&task).await {
            Ok(()) => ack(delivery).await,
            Err(e) => tracing::error!(error = %e, "could not record a malformed task"),
        }
    }

    /// Mark the task active (counting the attempt) unless it is finished or
    /// cancelled; `None` when there is nothing to run.
    async fn start(&self, spec: &TaskSpec, delivery: &TaskDelivery) -> Option<Task> {
        let worker = self.settings.worker.clone();
        let begin = |t: &mut Task| -> Result<bool, std::convert::Infallible> {
            if t.state.is_final() {
                return Ok(false);
            }
            if t.cancel_requested {
                t.state = TaskState::Cancelled;
                t.finished_at = Some(Utc::now());
                return Ok(true);
            }
            t.state = TaskState::Active;
            t.attempts += 1;
            t.started_at = Some(Utc::now());
            t.retry_at = None;
            t.worker = Some(worker.clone());
            t.progress = Progress::default();
            t.failures.clear();
            Ok(true)
        };
        for _ in 0..3 {
            match self.bus.update_task(&spec.id, begin).await {
                Ok(Ok(Some(t))) if t.state == TaskState::Active => return Some(t),
                Ok(Ok(Some(t))) => {
                    tracing::info!(state = %t.state, "task is not runnable; dropping its message");
                    ack(delivery).await;
                    return None;
                }
                Ok(Ok(None)) => {
                    // Queued, but its record is not written yet (or was lost).
                    let mut task = Task::new(spec.clone());
                    task.queue_seq = Some(delivery.seq);
                    if let Err(e) = self.bus.put_task(&task).await {
                        tracing::warn!(error = %e, "cannot write the task record");
                    }
                }
                Ok(Err(never)) => match never {},
                Err(e) => {
                    tracing::warn!(error = %e, "cannot update the task record; retrying later");
                    nak(delivery, Duration::from_secs(1)).await;
                    return None;
                }
            }
        }
        nak(delivery, Duration::from_secs(1)).await;
        None
    }

    async fn run_spec(&self, spec: TaskSpec, delivery: &TaskDelivery) {
        let Some(task) = self.start(&spec, delivery).await else {
            return;
        };
        tracing::info!(
            attempt = task.attempts,
            delivered = delivery.delivered,
            priority = %spec.priority,
            "task started"
        );
        let settings = &self.settings.tasks;
        let began = std::time::Instant::now();
        let cancel = self.cancel.child_token();
        let progress = Arc::new(TaskProgress::default());
        let run = self.collect_task(&spec, cancel.clone(), progress.clone());
        tokio::pin!(run);
        // Heartbeats (with the progress so far) every third of the ack wait;
        // a cancel request is looked for at every poll.
        let beat = (settings.ack_wait / 3).max(Duration::from_millis(100));
        let look = settings.poll.clamp(Duration::from_millis(50), beat);
        let mut last_beat = tokio::time::Instant::now();
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tokio::time::sleep(look) => {}
            }
            if last_beat.elapsed() >= beat {
                last_beat = tokio::time::Instant::now();
                if let Err(e) = delivery.heartbeat().await {
                    tracing::warn!(error = %e, "task heartbeat failed");
                }
                let now = progress.snapshot();
                let update = self
                    .bus
                    .update_task(&spec.id, |t| {
                        let changed = t.progress != now;
                        t.progress = now;
                        Ok::<_, ()>(changed)
                    })
                    .await;
                if let Err(e) = update {
                    tracing::warn!(error = %e, "cannot record task progress");
                }
            }
            match self.bus.task(&spec.id).await {
                Ok(Some(t)) if t.cancel_requested => cancel.cancel(),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the task record"),
            }
        };
        if self.cancel.is_cancelled() {
            // This collector is stopping: give the task back for another one.
            let update = self
                .bus
                .update_task(&spec.id, |t| {
                    t.state = TaskState::Pending;
                    t.worker = None;
                    Ok::<_, ()>(true)
                })
                .await;
            if let Err(e) = update {
                tracing::warn!(error = %e, "cannot record the interrupted task");
            }
            tracing::info!("collector stopping; task handed back to the queue");
            nak(delivery, Duration::ZERO).await;
            return;
        }
        let (mut outcome, last_seq) = match &result {
            Ok(report) => (report.outcome(), report.last_seq()),
            Err(e) => (
                AttemptOutcome {
                    plan_error: Some((e.code(), e.to_string(), e.is_retryable())),
                    ..Default::default()
                },
                None,
            ),
        };
        // Cancelled only if the cancel stopped something: a task that finished
        // as the request came in keeps its outcome.
        let unfinished =
            outcome.plan_error.is_some() || outcome.scopes_retryable + outcome.scopes_permanent > 0;
        outcome.cancelled = cancel.is_cancelled() && unfinished;
        let step = next_step(&outcome, task.attempts, settings.max_attempts.max(1));
        // Between half and all of the exponential step: a retry never comes
        // at once (the provider that just failed gets its moment).
        let backoff = jittered_backoff(
            settings.backoff,
            settings.max_backoff,
            task.attempts,
            0.5 + fastrand::f64() / 2.0,
        );
        let final_progress = progress.snapshot();
        let failures = progress.failures.lock().expect("failures").clone();
        let recorded = self
            .bus
            .update_task(&spec.id, |t| {
                let now = Utc::now();
                t.progress = final_progress;
                t.failures = failures.clone();
                if last_seq.is_some() {
                    t.last_seq = last_seq.max(t.last_seq);
                }
                t.error = None;
                t.finished_at = Some(now);
                t.cancel_requested = false;
                match &step {
                    NextStep::Complete => t.state = TaskState::Completed,
                    NextStep::Fail(e) => {
                        t.state = TaskState::Failed;
                        t.error = Some(e.clone());
                    }
                    NextStep::Dead(e) => {
                        t.state = TaskState::Dead;
                        t.error = Some(e.clone());
                    }
                    NextStep::Cancelled => t.state = TaskState::Cancelled,
                    NextStep::Retry(e) => {
                        t.state = TaskState::Scheduled;
                        t.error = Some(e.clone());
                        t.finished_at = None;
                        t.retry_at = chrono::Duration::from_std(backoff).ok().map(|b| now + b);
                    }
                }
                Ok::<_, ()>(true)
            })
            .await;
        match recorded {
            Ok(Ok(Some(t))) => {
                let outcome = match step {
                    NextStep::Complete => "completed",
                    NextStep::Fail(_) => "failed",
                    NextStep::Dead(_) => "dead",
                    NextStep::Cancelled => "cancelled",
                    NextStep::Retry(_) => "retried",
                };
                inventory_telemetry::metrics::METRICS
                    .task_duration
                    .with_label_values(&[&spec.source, &spec.kind, outcome])
                    .observe(began.elapsed().as_secs_f64());
                tracing::info!(
                    state = %t.state,
                    attempt = t.attempts,
                    scopes = t.progress.scopes_total,
                    failed = t.progress.scopes_failed,
                    resources = t.progress.resources_seen,
                    last_seq = t.last_seq,
                    error = t.error.as_ref().map(|e| e.message.as_str()),
                    "task attempt finished"
                );
                match step {
                    NextStep::Retry(_) => nak(delivery, backoff).await,
                    _ => ack(delivery).await,
                }
            }
            Ok(_) => {
                tracing::info!("task record deleted while it ran");
                ack(delivery).await;
            }
            Err(e) => {
                // Not recorded: leave the message unacked, so the task runs again.
                tracing::error!(error = %e, "cannot record the task outcome");
            }
        }
    }

    /// Plan and run one task's collection under `cancel`.
    async fn collect_task(
        &self,
        spec: &TaskSpec,
        cancel: CancellationToken,
        progress: Arc<TaskProgress>,
    ) -> Result<CollectionReport, CollectError> {
        let plan = self.prepare(&spec.request()).await?;
        Ok(self.execute(plan, &spec.id, cancel, Some(progress)).await)
    }

    /// Fire every schedule whose current period has not fired, until `shutdown`.
    /// Every instance runs this; each period's task has a deterministic id, so
    /// the control plane queues it once however many instances fire it.
    pub(crate) async fn fire_schedules(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.fire_due().await {
                tracing::warn!(error = %e, "cannot check schedules");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.settings.tasks.poll.max(Duration::from_millis(100))) => {}
            }
        }
    }

    async fn fire_due(&self) -> Result<(), inventory_bus::BusError> {
        let now = Utc::now();
        for (mut state, revision) in self.bus.schedules().await? {
            let def = state.def.clone();
            let cadence = match def.cadence() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(schedule = def.name, error = %e, "invalid schedule skipped");
                    continue;
                }
            };
            let Some(period) = cadence.period_at(now) else {
                continue;
            };
            if state.last_period.is_some_and(|last| last >= period) {
                continue;
            }
            let id = def.task_id(period);
            let request = CollectRequest {
                priority: Some(def.priority),
                ..def.request.clone()
            };
            let intake = self
                .bus
                .intake(
                    &def.request.source,
                    &def.request.kind,
                    Ok(request),
                    Some(&id),
                    Some(&def.name),
                )
                .await?;
            if let Intake::Accepted(s) = &intake
                && !s.duplicate
            {
                tracing::info!(schedule = def.name, task_id = id, %period, "schedule fired");
            }
            state.last_period = Some(period);
            state.last_task = Some(id);
            self.bus.mark_fired(&state, revision).await?;
        }
        Ok(())
    }
}

async fn ack(delivery: &TaskDelivery) {
    if let Err(e) = delivery.ack().await {
        tracing::warn!(seq = delivery.seq, error = %e, "cannot ack a task message");
    }
}

async fn nak(delivery: &TaskDelivery, delay: Duration) {
    if let Err(e) = delivery.nak(delay).await {
        tracing::warn!(seq = delivery.seq, error = %e, "cannot give a task message back");
    }
}
