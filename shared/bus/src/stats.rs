//! What JetStream says of the deployment's streams and their consumers, for
//! metrics and the console: one stream info and one consumer listing per
//! stream, whatever the number of consumers.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use crate::{Bus, BusError, consume_error};

/// The state of one stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamStats {
    /// Its name (`INVENTORY_EVENTS` under the default prefix).
    pub stream: String,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Its durable consumers (the projections', the task queues').
    pub consumers: Vec<ConsumerStats>,
    /// Ephemeral consumers (the collectors' reads of what they published),
    /// counted only: their names are random.
    pub ephemeral_consumers: u64,
}

/// The state of one consumer of a stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerStats {
    pub name: String,
    /// Messages of its filter not delivered yet.
    pub pending: u64,
    /// Messages delivered and not acked yet.
    pub ack_pending: u64,
    /// Messages delivered more than once and not acked yet.
    pub redelivered: u64,
}

impl Bus {
    /// The state of the events, changes and tasks streams and their consumers.
    pub async fn stream_stats(&self) -> Result<Vec<StreamStats>, BusError> {
        let names = [
            self.names.events_stream(),
            self.names.changes_stream(),
            self.names.tasks_stream(),
        ];
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let mut stream = self
                .js
                .get_stream(&name)
                .await
                .map_err(|e| consume_error(&name, e))?;
            let info = stream.info().await.map_err(|e| consume_error(&name, e))?;
            let state = info.state.clone();
            let all: Vec<_> = stream
                .consumers()
                .try_collect()
                .await
                .map_err(|e| consume_error(&name, e))?;
            let ephemeral_consumers = all
                .iter()
                .filter(|c| c.config.durable_name.is_none())
                .count() as u64;
            let mut consumers: Vec<ConsumerStats> = all
                .into_iter()
                .filter(|c| c.config.durable_name.is_some())
                .map(|c| ConsumerStats {
                    name: c.name,
                    pending: c.num_pending,
                    ack_pending: c.num_ack_pending as u64,
                    redelivered: c.num_redelivered as u64,
                })
                .collect();
            consumers.sort_by(|a, b| a.name.cmp(&b.name));
            out.push(StreamStats {
                stream: name,
                messages: state.messages,
                bytes: state.bytes,
                first_seq: state.first_sequence,
                last_seq: state.last_sequence,
                consumers,
                ephemeral_consumers,
            });
        }
        Ok(out)
    }

    /// The sequence of the earliest event the event stream holds at or after
    /// `seq`, and when the stream stored it; `None` if it holds none.
    pub async fn first_event_from(
        &self,
        seq: u64,
    ) -> Result<Option<(u64, DateTime<Utc>)>, BusError> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        let stream = self.events_stream().await?;
        let every = format!("{}.>", self.names.prefix());
        match stream.get_first_raw_message_by_subject(&every, seq).await {
            Ok(m) => {
                let nanos = m.time.unix_timestamp_nanos();
                let at = DateTime::from_timestamp_nanos(nanos as i64);
                Ok(Some((m.sequence, at)))
            }
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(consume_error(&stream.cached_info().config.name, e)),
        }
    }
}
