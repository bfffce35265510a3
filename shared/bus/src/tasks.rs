//! The collection control plane on JetStream.
//!
//! - A task is queued as a message on `<p>.tasks.queue.<priority>.<id>` in the
//!   work-queue stream `TASKS`; collectors share one durable consumer per
//!   priority. A message is acked only once the task's outcome is recorded; a
//!   collector that dies leaves it unacked, so it is redelivered to another.
//! - Its record (state, attempts, progress, error) is a JSON value in the KV
//!   bucket `<p>-tasks`, keyed by task id, and changed only by compare-and-set,
//!   so the collector's updates and an operator's cancel never overwrite each other.
//! - Submitting is idempotent per task id: the queue message carries the id as
//!   `Nats-Msg-Id` (the server drops a second publish within its duplicate
//!   window), and an id that already has a record is not queued again.
//! - Schedules are records in the KV bucket `<p>-schedules`; the last period
//!   each fired is set by compare-and-set.

use std::time::Duration;

use async_nats::header;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, kv};
use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use inventory_model::{
    CollectRequest, ErrorCode, Priority, RequestError, ScheduleDef, ScheduleState, Task,
    TaskFilter, TaskSpec, TaskState, sort_tasks, valid_task_id,
};

use crate::{Bus, BusError, consume_error, publish_error, topology};

/// A task accepted into the queue (or found there already).
#[derive(Debug, Clone)]
pub struct Submitted {
    pub task: Task,
    /// A task with this id was submitted before; nothing new was queued.
    pub duplicate: bool,
}

/// What became of a collection request.
#[derive(Debug, Clone)]
pub enum Intake {
    Accepted(Submitted),
    /// It can never run: recorded as a dead task with the reason.
    Rejected {
        task: Task,
        code: ErrorCode,
        message: String,
    },
}

impl Intake {
    /// The answer to a collection request (NATS or REST): the task id as
    /// `request_id`, and the task or why it was rejected.
    pub fn reply(&self) -> serde_json::Value {
        match self {
            Intake::Accepted(s) => serde_json::json!({
                "request_id": s.task.spec.id,
                "task": s.task,
                "duplicate": s.duplicate,
            }),
            Intake::Rejected {
                task,
                code,
                message,
            } => serde_json::json!({
                "request_id": task.spec.id,
                "error": {"code": code, "message": message, "task_id": task.spec.id},
            }),
        }
    }
}

/// Why an operation on a task was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaskOpError {
    #[error("no task {0}")]
    NotFound(String),
    #[error("task {id} is {state}; {action} {needs}")]
    Conflict {
        id: String,
        state: TaskState,
        action: &'static str,
        needs: &'static str,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// The two buckets of the control plane, looked up once per connection.
#[derive(Clone)]
pub(crate) struct Buckets {
    tasks: kv::Store,
    schedules: kv::Store,
}

fn kv_error(bucket: &str, e: impl Into<crate::error::Source>) -> BusError {
    consume_error(bucket, e)
}

fn decode<T: serde::de::DeserializeOwned>(
    bucket: &str,
    key: &str,
    value: &[u8],
) -> Result<T, BusError> {
    serde_json::from_slice(value)
        .map_err(|e| crate::invalid(&format!("record {key} of {bucket}"), e))
}

/// Every key of a bucket.
async fn keys(kv: &kv::Store) -> Result<Vec<String>, BusError> {
    kv.keys()
        .await
        .map_err(|e| kv_error(&kv.name, e))?
        .try_collect()
        .await
        .map_err(|e| kv_error(&kv.name, e))
}

fn found(task: Option<Task>, id: &str) -> Result<Task, TaskOpError> {
    task.ok_or_else(|| TaskOpError::NotFound(id.to_owned()))
}

fn encode<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("records always serialize"))
}

impl Bus {
    async fn buckets(&self) -> Result<&Buckets, BusError> {
        self.buckets
            .get_or_try_init(|| async {
                let get = |config: Result<kv::Config, BusError>| async {
                    let name = config?.bucket;
                    self.js
                        .get_key_value(&name)
                        .await
                        .map_err(|e| kv_error(&name, e))
                };
                Ok(Buckets {
                    tasks: get(topology::tasks_bucket_config(&self.names)).await?,
                    schedules: get(topology::schedules_bucket_config(&self.names)).await?,
                })
            })
            .await
    }

    pub(crate) async fn tasks_kv(&self) -> Result<&kv::Store, BusError> {
        Ok(&self.buckets().await?.tasks)
    }

    /// Validate a collection request for `source`'s `kind` (the subject's;
    /// see [`CollectRequest::sent_to`]) and queue it as a task (`id`: the
    /// requester's idempotency key; a new one is made if absent). A request
    /// that can never run is recorded as a dead task and returned as rejected.
    pub async fn intake(
        &self,
        source: &str,
        kind: &str,
        request: Result<CollectRequest, RequestError>,
        id: Option<&str>,
        schedule: Option<&str>,
    ) -> Result<Intake, BusError> {
        let fresh = || uuid::Uuid::now_v7().to_string();
        let (id, bad_id) = match id {
            Some(id) if valid_task_id(id) => (id.to_owned(), None),
            Some(id) => (
                fresh(),
                Some(format!(
                    "task id {} must be 1-128 of letters, digits, '-' or '_'",
                    inventory_model::text::quoted(id)
                )),
            ),
            None => (fresh(), None),
        };
        let request = request.and_then(|r| r.sent_to(source, kind));
        let (request, refusal) = match (request, bad_id) {
            (Ok(request), None) => {
                let refusal = request.kinds().err().map(|e| (e.code(), e.to_string()));
                (request, refusal)
            }
            (Ok(request), Some(message)) => (request, Some((ErrorCode::InvalidId, message))),
            (Err(e), _) => (
                CollectRequest::of(source, kind),
                Some((e.code(), e.to_string())),
            ),
        };
        let mut spec = TaskSpec::new(id, request, schedule, Utc::now());
        // The trace of the request that made it; a task nobody traced (a
        // schedule, a bare NATS request) gets a trace of its own, so that its
        // attempts are one trace too.
        spec.traceparent = inventory_telemetry::current_traceparent().or_else(|| {
            tracing::info_span!("collection task", task_id = spec.id, schedule)
                .in_scope(inventory_telemetry::current_traceparent)
        });
        match refusal {
            None => Ok(Intake::Accepted(self.submit(spec).await?)),
            Some((code, message)) => {
                let task = Task::rejected(spec, code, &message);
                self.put_task(&task).await?;
                tracing::warn!(
                    task_id = task.spec.id,
                    %code,
                    message,
                    "collection request rejected"
                );
                Ok(Intake::Rejected {
                    task,
                    code,
                    message,
                })
            }
        }
    }

    /// Queue a valid task; a task id seen before is not queued again.
    pub async fn submit(&self, spec: TaskSpec) -> Result<Submitted, BusError> {
        if let Some(task) = self.task(&spec.id).await? {
            return Ok(Submitted {
                task,
                duplicate: true,
            });
        }
        let (seq, duplicate) = self.enqueue(&spec, &spec.id).await?;
        let mut task = Task::new(spec);
        task.queue_seq = Some(seq);
        if duplicate {
            if let Some(existing) = self.task(&task.spec.id).await? {
                task = existing;
            }
        } else {
            // A collector may have picked it up and written its record already.
            let kv = self.tasks_kv().await?;
            match kv.create(&task.spec.id, encode(&task)).await {
                Ok(_) => {}
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(kv_error(&kv.name, e)),
            }
        }
        tracing::info!(
            task_id = task.spec.id,
            source = task.spec.source,
            kind = task.spec.kind,
            priority = %task.spec.priority,
            duplicate,
            "task submitted"
        );
        Ok(Submitted { task, duplicate })
    }

    /// Publish one attempt of a task to its priority's queue; `msg_id` makes a
    /// repeated publish a no-op. Returns the message's sequence and whether the
    /// server dropped it as a duplicate.
    async fn enqueue(&self, spec: &TaskSpec, msg_id: &str) -> Result<(u64, bool), BusError> {
        let subject = self.names.task_subject(spec.priority, &spec.id);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, msg_id);
        let ack = self
            .js
            .send_publish(
                subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(encode(spec))
                    .headers(headers),
            )
            .await
            .map_err(|e| publish_error(&subject, e))?
            .await
            .map_err(|e| publish_error(&subject, e))?;
        Ok((ack.sequence, ack.duplicate))
    }

    /// The record of task `id`.
    pub async fn task(&self, id: &str) -> Result<Option<Task>, BusError> {
        let kv = self.tasks_kv().await?;
        if !valid_task_id(id) {
            return Ok(None);
        }
        match kv.get(id).await.map_err(|e| kv_error(&kv.name, e))? {
            Some(value) => Ok(Some(decode(&kv.name, id, &value)?)),
            None => Ok(None),
        }
    }

    /// Write a task record as it is (a collector taking over a task whose
    /// record is missing; a rejected request).
    pub async fn put_task(&self, task: &Task) -> Result<(), BusError> {
        let kv = self.tasks_kv().await?;
        kv.put(&task.spec.id, encode(task))
            .await
            .map_err(|e| kv_error(&kv.name, e))?;
        Ok(())
    }

    /// Change a task record by compare-and-set: `change` sees the current record
    /// and returns whether it changed it; on a concurrent write it runs again on
    /// the newer record. `None` if there is no such task.
    pub async fn update_task<E>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Task) -> Result<bool, E>,
    ) -> Result<Result<Option<Task>, E>, BusError> {
        let kv = self.tasks_kv().await?;
        if !valid_task_id(id) {
            return Ok(Ok(None));
        }
        loop {
            let Some(entry) = kv.entry(id).await.map_err(|e| kv_error(&kv.name, e))? else {
                return Ok(Ok(None));
            };
            if entry.operation != kv::Operation::Put {
                return Ok(Ok(None));
            }
            let mut task: Task = decode(&kv.name, id, &entry.value)?;
            match change(&mut task) {
                Err(e) => return Ok(Err(e)),
                Ok(false) => return Ok(Ok(Some(task))),
                Ok(true) => {}
            }
            task.updated_at = Utc::now();
            match kv.update(id, encode(&task), entry.revision).await {
                Ok(_) => return Ok(Ok(Some(task))),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(kv_error(&kv.name, e)),
            }
        }
    }

    /// Every task matching `filter`, newest first.
    pub async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, BusError> {
        let kv = self.tasks_kv().await?;
        let keys = keys(kv).await?;
        let mut tasks: Vec<Task> = futures::stream::iter(keys)
            .map(|key| async move {
                match kv.get(&key).await.map_err(|e| kv_error(&kv.name, e))? {
                    Some(v) => decode(&kv.name, &key, &v).map(Some),
                    None => Ok(None),
                }
            })
            .buffer_unordered(32)
            .try_filter_map(|t: Option<Task>| async move { Ok(t) })
            .try_filter(|t| futures::future::ready(filter.matches(t)))
            .try_collect()
            .await?;
        sort_tasks(&mut tasks);
        Ok(tasks)
    }

    /// Cancel a task: a queued or waiting one is removed from the queue and
    /// marked cancelled at once; an active one is asked to stop, and its
    /// collector marks it cancelled at its next page.
    pub async fn cancel_task(&self, id: &str) -> Result<Task, TaskOpError> {
        let mut unqueue = None;
        let task = self
            .update_task(id, |t| match t.state {
                TaskState::Pending | TaskState::Scheduled => {
                    t.state = TaskState::Cancelled;
                    t.finished_at = Some(Utc::now());
                    t.retry_at = None;
                    unqueue = t.queue_seq;
                    Ok(true)
                }
                TaskState::Active => {
                    let changed = !t.cancel_requested;
                    t.cancel_requested = true;
                    Ok(changed)
                }
                state => Err(TaskOpError::Conflict {
                    id: id.to_owned(),
                    state,
                    action: "cancel",
                    needs: "needs it pending, scheduled or active",
                }),
            })
            .await??;
        let task = found(task, id)?;
        if let Some(seq) = unqueue {
            self.unqueue(seq).await?;
        }
        tracing::info!(task_id = id, state = %task.state, "task cancel requested");
        Ok(task)
    }

    /// Run a finished task again (re-drive a dead letter): a new attempt is
    /// queued and its record starts over as pending.
    pub async fn retry_task(&self, id: &str) -> Result<Task, TaskOpError> {
        let task = self.existing(id).await?;
        let retryable = |state: TaskState| {
            matches!(
                state,
                TaskState::Dead | TaskState::Failed | TaskState::Cancelled | TaskState::Completed
            )
        };
        let conflict = |state| TaskOpError::Conflict {
            id: id.to_owned(),
            state,
            action: "retry",
            needs: "needs it completed, failed, dead or cancelled",
        };
        if !retryable(task.state) {
            return Err(conflict(task.state));
        }
        let round = task.redriven + 1;
        let (seq, _) = self.enqueue(&task.spec, &format!("{id}-r{round}")).await?;
        let task = self
            .update_task(id, |t| {
                if !retryable(t.state) {
                    // Re-driven concurrently: the same message id was queued once.
                    return Ok(false);
                }
                t.state = TaskState::Pending;
                t.redriven = round;
                t.attempts = 0;
                t.queue_seq = Some(seq);
                t.progress = Default::default();
                t.error = None;
                t.failures.clear();
                t.started_at = None;
                t.finished_at = None;
                t.retry_at = None;
                t.last_seq = None;
                t.cancel_requested = false;
                Ok::<_, TaskOpError>(true)
            })
            .await??;
        let task = found(task, id)?;
        tracing::info!(task_id = id, round, "task re-driven");
        Ok(task)
    }

    /// Forget a task that is not running: its record and any queued message.
    pub async fn delete_task(&self, id: &str) -> Result<Task, TaskOpError> {
        let task = self.existing(id).await?;
        if task.state == TaskState::Active {
            return Err(TaskOpError::Conflict {
                id: id.to_owned(),
                state: task.state,
                action: "delete",
                needs: "needs it cancelled first",
            });
        }
        if let (TaskState::Pending | TaskState::Scheduled, Some(seq)) = (task.state, task.queue_seq)
        {
            self.unqueue(seq).await?;
        }
        let kv = self.tasks_kv().await?;
        kv.purge(id).await.map_err(|e| kv_error(&kv.name, e))?;
        tracing::info!(task_id = id, "task deleted");
        Ok(task)
    }

    /// The record of a task that must exist.
    async fn existing(&self, id: &str) -> Result<Task, TaskOpError> {
        found(self.task(id).await?, id)
    }

    /// Remove a queued message (it may be gone already).
    async fn unqueue(&self, seq: u64) -> Result<(), BusError> {
        let name = self.names.tasks_stream();
        let stream = self
            .js
            .get_stream(&name)
            .await
            .map_err(|e| consume_error(&name, e))?;
        if let Err(e) = stream.delete_message(seq).await {
            tracing::debug!(seq, error = %e, "queued task message already gone");
        }
        Ok(())
    }

    /// The task queues, one durable consumer per priority (`ack_wait`: how long a
    /// running task may go without a heartbeat before it is given to another).
    pub async fn task_queue(&self, ack_wait: Duration) -> Result<TaskQueue, BusError> {
        let mut consumers = Vec::new();
        for p in Priority::ALL {
            consumers.push((
                p,
                topology::task_consumer(&self.js, &self.names, p, ack_wait).await?,
            ));
        }
        Ok(TaskQueue {
            consumers,
            name: self.names.tasks_stream(),
        })
    }

    /// Make the schedule bucket hold exactly `defs`: new ones are added, changed
    /// ones updated (keeping what they last fired), others removed.
    pub async fn sync_schedules(&self, defs: &[ScheduleDef]) -> Result<(), BusError> {
        let kv = &self.buckets().await?.schedules;
        for (state, _) in self.schedules().await? {
            if !defs.iter().any(|d| d.name == state.def.name) {
                kv.purge(&state.def.name)
                    .await
                    .map_err(|e| kv_error(&kv.name, e))?;
                tracing::info!(schedule = state.def.name, "schedule removed");
            }
        }
        for def in defs {
            loop {
                let entry = kv
                    .entry(&def.name)
                    .await
                    .map_err(|e| kv_error(&kv.name, e))?
                    .filter(|e| e.operation == kv::Operation::Put);
                let written = match entry {
                    None => {
                        let state = ScheduleState {
                            def: def.clone(),
                            last_period: None,
                            last_task: None,
                        };
                        match kv.create(&def.name, encode(&state)).await {
                            Ok(_) => true,
                            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => false,
                            Err(e) => return Err(kv_error(&kv.name, e)),
                        }
                    }
                    Some(entry) => {
                        let mut state: ScheduleState = decode(&kv.name, &def.name, &entry.value)?;
                        if state.def == *def {
                            break;
                        }
                        state.def = def.clone();
                        match kv.update(&def.name, encode(&state), entry.revision).await {
                            Ok(_) => true,
                            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
                            Err(e) => return Err(kv_error(&kv.name, e)),
                        }
                    }
                };
                if written {
                    tracing::info!(schedule = def.name, "schedule defined");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Every schedule with its revision (for [`Bus::mark_fired`]), by name.
    pub async fn schedules(&self) -> Result<Vec<(ScheduleState, u64)>, BusError> {
        let kv = &self.buckets().await?.schedules;
        let keys = keys(kv).await?;
        let mut out = Vec::new();
        for key in keys {
            if let Some(entry) = kv.entry(&key).await.map_err(|e| kv_error(&kv.name, e))?
                && entry.operation == kv::Operation::Put
            {
                out.push((decode(&kv.name, &key, &entry.value)?, entry.revision));
            }
        }
        out.sort_by(|a: &(ScheduleState, u64), b| a.0.def.name.cmp(&b.0.def.name));
        Ok(out)
    }

    /// Record that a schedule fired a period, if nobody changed it since
    /// `revision`; false if someone did (another instance fired it first).
    pub async fn mark_fired(&self, state: &ScheduleState, revision: u64) -> Result<bool, BusError> {
        let kv = &self.buckets().await?.schedules;
        match kv.update(&state.def.name, encode(state), revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(kv_error(&kv.name, e)),
        }
    }
}

/// The consumers of the three priority queues.
pub struct TaskQueue {
    consumers: Vec<(Priority, PullConsumer)>,
    name: String,
}

/// One task message as a collector received it.
pub struct TaskDelivery {
    /// The task, or why its message is not one.
    pub spec: Result<TaskSpec, String>,
    pub priority: Priority,
    /// Its sequence in the queue stream.
    pub seq: u64,
    /// How often it has been delivered (more than once: a collector died or
    /// gave it back).
    pub delivered: i64,
    message: jetstream::Message,
}

impl TaskQueue {
    /// The next task, asking the queues in `order`; `None` when all are empty.
    pub async fn next(&self, order: [Priority; 3]) -> Result<Option<TaskDelivery>, BusError> {
        for priority in order {
            let consumer = &self
                .consumers
                .iter()
                .find(|(p, _)| *p == priority)
                .expect("one consumer per priority")
                .1;
            let mut batch = consumer
                .fetch()
                .max_messages(1)
                .messages()
                .await
                .map_err(|e| consume_error(&self.name, e))?;
            if let Some(message) = batch.next().await {
                let message = message.map_err(|e| consume_error(&self.name, e))?;
                let info = message.info().map_err(|e| consume_error(&self.name, e))?;
                let (seq, delivered) = (info.stream_sequence, info.delivered);
                let spec = serde_json::from_slice::<TaskSpec>(&message.payload)
                    .map_err(|e| format!("task message {seq} is not a task: {e}"));
                return Ok(Some(TaskDelivery {
                    spec,
                    priority,
                    seq,
                    delivered,
                    message,
                }));
            }
        }
        Ok(None)
    }
}

impl TaskDelivery {
    fn error(&self, e: impl Into<crate::error::Source>) -> BusError {
        consume_error(&self.message.subject, e)
    }

    /// Tell the server the task is still being worked on (resets its ack timer).
    pub async fn heartbeat(&self) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| self.error(e))
    }

    /// The task's outcome is recorded: remove the message from the queue.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.message.double_ack().await.map_err(|e| self.error(e))
    }

    /// Deliver it again after `delay` (a retry, or a collector shutting down).
    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| self.error(e))
    }
}
