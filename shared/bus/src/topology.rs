//! Streams and consumers as code: the JSON definitions in `nats/`,
//! embedded at build time and applied idempotently.

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, PullConsumer, pull},
    stream,
};
use serde::Deserialize;

use crate::{BusError, BusErrorKind, Names};

const EVENTS_STREAM: &str = include_str!("../../../nats/streams/events.json");
const CHANGES_STREAM: &str = include_str!("../../../nats/streams/changes.json");
const PROJECTOR_CONSUMER: &str = include_str!("../../../nats/consumers/projector.json");
const TASKS_STREAM: &str = include_str!("../../../nats/streams/tasks.json");
const TASKS_CONSUMER: &str = include_str!("../../../nats/consumers/tasks.json");
const TASKS_BUCKET: &str = include_str!("../../../nats/kv/tasks.json");
const SCHEDULES_BUCKET: &str = include_str!("../../../nats/kv/schedules.json");

/// A KV bucket definition in `nats/kv/` (the fields of the JetStream KV config
/// that Inventory sets).
#[derive(Deserialize)]
struct BucketFile {
    bucket: String,
    description: String,
    history: i64,
    /// Nanoseconds; 0: no limit.
    max_age: u64,
    storage: stream::StorageType,
}

#[derive(Deserialize)]
struct ConsumerFile {
    #[allow(dead_code)]
    stream_name: String,
    config: pull::Config,
}

fn definition<T: for<'de> Deserialize<'de>>(name: &str, json: &str) -> Result<T, BusError> {
    serde_json::from_str(json).map_err(|e| BusError::new(BusErrorKind::Definition, name, e))
}

fn setup(name: &str, e: impl Into<crate::error::Source>) -> BusError {
    BusError::new(BusErrorKind::Setup, name, e)
}

/// A stream definition from `nats/` under this deployment's names.
fn stream_config(names: &Names, file: &str, json: &str) -> Result<stream::Config, BusError> {
    let mut config: stream::Config = definition(file, json)?;
    config.name = names.stream(&config.name);
    config.subjects = config.subjects.iter().map(|s| names.subject(s)).collect();
    Ok(config)
}

/// The event stream's definition under this deployment's names.
pub(crate) fn events_stream_config(names: &Names) -> Result<stream::Config, BusError> {
    stream_config(names, "nats/streams/events.json", EVENTS_STREAM)
}

/// The change notification stream's definition under this deployment's names.
pub(crate) fn changes_stream_config(names: &Names) -> Result<stream::Config, BusError> {
    stream_config(names, "nats/streams/changes.json", CHANGES_STREAM)
}

/// The task queue's definition under this deployment's names.
pub(crate) fn tasks_stream_config(names: &Names) -> Result<stream::Config, BusError> {
    stream_config(names, "nats/streams/tasks.json", TASKS_STREAM)
}

fn bucket_config(names: &Names, file: &str, json: &str) -> Result<jetstream::kv::Config, BusError> {
    let b: BucketFile = definition(file, json)?;
    Ok(jetstream::kv::Config {
        bucket: names.subject(&b.bucket),
        description: b.description,
        history: b.history,
        max_age: std::time::Duration::from_nanos(b.max_age),
        storage: b.storage,
        ..Default::default()
    })
}

/// The task record bucket's definition under this deployment's names.
pub(crate) fn tasks_bucket_config(names: &Names) -> Result<jetstream::kv::Config, BusError> {
    bucket_config(names, "nats/kv/tasks.json", TASKS_BUCKET)
}

/// The schedule bucket's definition under this deployment's names.
pub(crate) fn schedules_bucket_config(names: &Names) -> Result<jetstream::kv::Config, BusError> {
    bucket_config(names, "nats/kv/schedules.json", SCHEDULES_BUCKET)
}

pub(crate) async fn ensure(js: &jetstream::Context, names: &Names) -> Result<(), BusError> {
    for config in [
        events_stream_config(names)?,
        changes_stream_config(names)?,
        tasks_stream_config(names)?,
    ] {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| setup(&name, e))?;
    }
    for config in [tasks_bucket_config(names)?, schedules_bucket_config(names)?] {
        let name = config.bucket.clone();
        js.create_or_update_key_value(config)
            .await
            .map_err(|e| setup(&name, e))?;
    }
    Ok(())
}

pub(crate) async fn destroy(js: &jetstream::Context, names: &Names) -> Result<(), BusError> {
    for stream in [
        names.events_stream(),
        names.changes_stream(),
        names.tasks_stream(),
    ] {
        js.delete_stream(&stream)
            .await
            .map_err(|e| setup(&stream, e))?;
    }
    for config in [tasks_bucket_config(names)?, schedules_bucket_config(names)?] {
        js.delete_key_value(&config.bucket)
            .await
            .map_err(|e| setup(&config.bucket, e))?;
    }
    Ok(())
}

/// The durable consumer of one priority's tasks, created or brought up to date
/// (`ack_wait`: how long a task may go without a heartbeat before another
/// collector gets it).
pub(crate) async fn task_consumer(
    js: &jetstream::Context,
    names: &Names,
    priority: inventory_model::Priority,
    ack_wait: std::time::Duration,
) -> Result<PullConsumer, BusError> {
    let file: ConsumerFile = definition("nats/consumers/tasks.json", TASKS_CONSUMER)?;
    let mut config = file.config;
    let durable = format!(
        "{}-{priority}",
        config.durable_name.as_deref().unwrap_or("collectors")
    );
    config.durable_name = Some(durable.clone());
    config.filter_subject = names.task_queue_filter(priority);
    config.ack_wait = ack_wait;
    let stream_name = names.tasks_stream();
    let stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| setup(&stream_name, e))?;
    stream
        .create_consumer(config)
        .await
        .map_err(|e| setup(&durable, e))
}

pub(crate) async fn event_consumer(
    js: &jetstream::Context,
    names: &Names,
    durable: &str,
    start_seq: u64,
) -> Result<PullConsumer, BusError> {
    let file: ConsumerFile = definition("nats/consumers/projector.json", PROJECTOR_CONSUMER)?;
    let mut config = file.config;
    config.durable_name = Some(durable.to_owned());
    if start_seq > 1 {
        config.deliver_policy = DeliverPolicy::ByStartSequence {
            start_sequence: start_seq,
        };
    }
    let stream_name = names.events_stream();
    let stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| setup(&stream_name, e))?;
    // The projection's checkpoint is the truth, not the consumer's state: start
    // afresh at `start_seq`, so that messages a crashed instance fetched and never
    // acked cannot be overtaken by later ones (the fold must see stream order).
    delete_consumer(&stream, durable).await?;
    stream
        .create_consumer(config)
        .await
        .map_err(|e| setup(durable, e))
}

/// Delete a consumer; one that does not exist is already deleted.
pub(crate) async fn delete_consumer(
    stream: &stream::Stream,
    durable: &str,
) -> Result<(), BusError> {
    use async_nats::jetstream::{ErrorCode, stream::ConsumerErrorKind};
    match stream.delete_consumer(durable).await {
        Ok(_) => Ok(()),
        Err(e) => match e.kind() {
            ConsumerErrorKind::JetStream(j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND => {
                Ok(())
            }
            _ => Err(setup(durable, e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_parse_and_follow_the_prefix() {
        let names = Names::new("t1").unwrap();
        let s = events_stream_config(&names).unwrap();
        assert_eq!(s.name, "T1_EVENTS");
        assert_eq!(s.subjects, ["t1.events.>", "t1.scans.>"]);
        assert_eq!(s.storage, stream::StorageType::File);
        assert!(s.max_age.as_secs() > 0, "age limit must be explicit");
        assert!(s.max_bytes > 0, "byte limit must be explicit");
        let c = changes_stream_config(&names).unwrap();
        assert_eq!(c.name, "T1_CHANGES");
        assert_eq!(c.subjects, ["t1.changes.>"]);
        let t = tasks_stream_config(&names).unwrap();
        assert_eq!(t.retention, stream::RetentionPolicy::WorkQueue);
        assert_eq!(t.subjects, ["t1.tasks.queue.>"]);
        assert!(
            !t.deny_delete,
            "cancelling a pending task deletes its message"
        );
        let kv = tasks_bucket_config(&names).unwrap();
        assert_eq!(kv.bucket, "t1-tasks");
        assert_eq!(
            schedules_bucket_config(&names).unwrap().bucket,
            "t1-schedules"
        );
        let tc: ConsumerFile = definition("tasks", TASKS_CONSUMER).unwrap();
        assert_eq!(
            tc.config.ack_policy,
            async_nats::jetstream::consumer::AckPolicy::Explicit
        );
        let c: ConsumerFile = definition("projector", PROJECTOR_CONSUMER).unwrap();
        assert_eq!(
            c.config.ack_policy,
            async_nats::jetstream::consumer::AckPolicy::All
        );
    }
}
