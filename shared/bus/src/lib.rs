//! The bus: everything Inventory says to or hears from NATS.
//!
//! Architecture invariant: this is the only crate that depends on `async_nats`.
//! Services see domain operations (publish these envelopes, fetch a batch of
//! events, load the collector's last published state, answer a collection
//! request), never subjects, headers or acks of the wire protocol.
//!
//! Streams, consumers and KV buckets are defined as code in `nats/` (JetStream API
//! JSON) and embedded here; [`Bus::ensure_topology`] creates or updates them
//! idempotently. A subject prefix (default `inventory`) namespaces every subject,
//! stream and bucket, so several deployments or test runs share one server.

mod error;
mod names;
mod state;
mod stats;
mod tasks;
mod topology;
mod view;

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, future};
use inventory_model::subject::untoken;
use inventory_model::{CollectRequest, Envelope};

pub use error::{BusError, BusErrorKind};
pub use names::Names;
pub use state::PublishedState;
pub use stats::{ConsumerStats, StreamStats};
pub use tasks::{Intake, Submitted, TaskDelivery, TaskOpError, TaskQueue};
pub use view::TaskView;

/// Header carrying the event type, so consumers can route without decoding.
pub const HEADER_EVENT_TYPE: &str = "Inventory-Event-Type";
/// Header carrying the envelope's schema version.
pub const HEADER_SCHEMA_VERSION: &str = "Inventory-Schema-Version";
/// Content hash of the event's payload (created/updated) or of the last published
/// payload (deleted): what the collector compares a re-listed resource against.
pub const HEADER_CONTENT_HASH: &str = "Inventory-Content-Hash";
/// On a change notification: the stream sequence of the event that made it.
pub const HEADER_EVENT_SEQ: &str = "Inventory-Event-Seq";
/// On a change notification: its position in the projection's change log.
pub const HEADER_CHANGE_POSITION: &str = "Inventory-Change-Position";
/// W3C trace context of the operation that caused the event.
pub const HEADER_TRACEPARENT: &str = "traceparent";

/// A connection to NATS with JetStream and the names of one deployment.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    buckets: std::sync::Arc<tokio::sync::OnceCell<tasks::Buckets>>,
}

/// A change notification: the projection wrote a version for the event `seq`.
#[derive(Debug, Clone)]
pub struct ChangeNote {
    /// Its position in the change log (one event may change several resources).
    pub position: u64,
    pub seq: u64,
    pub source: String,
    pub kind: String,
    /// `created`, `updated` or `deleted`.
    pub change: String,
    /// JSON body (the change feed's item).
    pub body: Bytes,
}

/// Where the change notifications stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastChange {
    /// None was ever published.
    Never,
    /// The change log position of the last one published.
    At(u64),
    /// Some were published, and all have aged out of the stream.
    AgedOut,
}

/// The result of publishing one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    /// JetStream dropped it as a duplicate of an earlier publish with the same id.
    pub duplicate: bool,
}

/// Events sent by [`Bus::send_encoded`] whose acks are still to come.
#[must_use = "an event counts as published only once its ack is awaited"]
pub struct PendingPublish {
    pending: Vec<(String, jetstream::context::PublishAckFuture)>,
}

impl PendingPublish {
    /// Wait for every ack, in send order.
    pub async fn acked(self) -> Result<Vec<Published>, BusError> {
        acks(self.pending).await
    }
}

/// How [`Bus::connect`] treats a server that cannot be reached at first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Keep trying in the background (services: NATS may start after them).
    Retry,
    /// Fail within this long (commands a person runs).
    FailAfter(Duration),
}

impl Bus {
    /// Connect to `url`; `prefix` namespaces subjects, streams and buckets.
    pub async fn connect(url: &str, prefix: &str) -> Result<Bus, BusError> {
        Bus::connect_with(url, prefix, Reach::Retry).await
    }

    /// [`Bus::connect`], failing at once (within the given time) if the
    /// server cannot be reached.
    pub async fn connect_with(url: &str, prefix: &str, reach: Reach) -> Result<Bus, BusError> {
        let names = Names::new(prefix)
            .map_err(|reason| BusError::new(BusErrorKind::Definition, "subject prefix", reason))?;
        let options = async_nats::ConnectOptions::new().name("inventory");
        let options = match reach {
            Reach::Retry => options.retry_on_initial_connect(),
            Reach::FailAfter(timeout) => options.connection_timeout(timeout),
        };
        let client = options
            .connect(url)
            .await
            .map_err(|source| BusError::new(BusErrorKind::Connect, url, source))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .max_ack_inflight(4096)
            .build(client.clone());
        Ok(Bus {
            client,
            js,
            names,
            buckets: Default::default(),
        })
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Messages this connection has sent to the server (requests included).
    pub fn messages_sent(&self) -> u64 {
        self.client
            .statistics()
            .out_messages
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True while the connection to the server is up.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publish envelopes with pipelined acks: all are sent, then all acks awaited.
    /// Each carries a deterministic `Nats-Msg-Id`, so a retried publish within the
    /// stream's duplicate window is dropped by the server.
    pub async fn publish_events(
        &self,
        events: &[Envelope],
        traceparent: Option<&str>,
    ) -> Result<Vec<Published>, BusError> {
        let mut pending = Vec::with_capacity(events.len());
        for env in events {
            let body = Bytes::from(env.to_bytes());
            pending.push(self.send_event(env, body, traceparent).await?);
        }
        acks(pending).await
    }

    /// [`Bus::publish_events`] for envelopes the caller has already encoded
    /// (each body must be its envelope's wire form, e.g. from
    /// [`Envelope::to_bytes_with_payload`]).
    pub async fn publish_encoded(
        &self,
        events: &[(Envelope, Bytes)],
        traceparent: Option<&str>,
    ) -> Result<Vec<Published>, BusError> {
        self.send_encoded(events, traceparent).await?.acked().await
    }

    /// Send pre-encoded events in order without waiting for their acks: the
    /// caller may send more (which the server stores after these) before it
    /// waits with [`PendingPublish::acked`]. At most 4096 acks are awaited at
    /// once per connection; a send beyond that waits for room.
    pub async fn send_encoded(
        &self,
        events: &[(Envelope, Bytes)],
        traceparent: Option<&str>,
    ) -> Result<PendingPublish, BusError> {
        let mut pending = Vec::with_capacity(events.len());
        for (env, body) in events {
            pending.push(self.send_event(env, body.clone(), traceparent).await?);
        }
        Ok(PendingPublish { pending })
    }

    async fn send_event(
        &self,
        env: &Envelope,
        body: Bytes,
        traceparent: Option<&str>,
    ) -> Result<(String, jetstream::context::PublishAckFuture), BusError> {
        let subject = self.names.event_subject(env);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_MESSAGE_ID,
            Names::message_id(env, &subject).as_str(),
        );
        headers.insert(HEADER_EVENT_TYPE, env.event_type.as_str());
        headers.insert(
            HEADER_SCHEMA_VERSION,
            env.schema_version.to_string().as_str(),
        );
        if let Some(hash) = &env.content_hash {
            headers.insert(HEADER_CONTENT_HASH, hash.as_str());
        }
        if let Some(tp) = traceparent {
            headers.insert(HEADER_TRACEPARENT, tp);
        }
        let ack = self
            .js
            .send_publish(
                subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(body)
                    .headers(headers),
            )
            .await
            .map_err(|e| publish_error(&subject, e))?;
        Ok((subject, ack))
    }

    /// Publish change notifications on `<prefix>.changes.<source>.<kind>.<change>`
    /// (pipelined). Each carries its event's sequence and its change log
    /// position in headers; its `Nats-Msg-Id` is `change:<position>`, so
    /// publishing one again within the duplicate window is a no-op.
    pub async fn publish_changes(&self, notes: &[ChangeNote]) -> Result<(), BusError> {
        let mut pending = Vec::with_capacity(notes.len());
        for note in notes {
            let subject = self
                .names
                .change_subject(&note.source, &note.kind, &note.change);
            let mut headers = HeaderMap::new();
            headers.insert(
                header::NATS_MESSAGE_ID,
                format!("change:{}", note.position).as_str(),
            );
            headers.insert(HEADER_EVENT_SEQ, note.seq.to_string().as_str());
            headers.insert(HEADER_CHANGE_POSITION, note.position.to_string().as_str());
            let ack = self
                .js
                .send_publish(
                    subject.clone(),
                    jetstream::message::PublishMessage::build()
                        .payload(note.body.clone())
                        .headers(headers),
                )
                .await
                .map_err(|e| publish_error(&subject, e))?;
            pending.push((subject, ack));
        }
        acks(pending).await.map(|_| ())
    }

    /// Where the last change notification published stands in the change log.
    pub async fn last_change(&self) -> Result<LastChange, BusError> {
        use jetstream::stream::RawMessageErrorKind;
        let name = self.names.changes_stream();
        let mut stream = self
            .js
            .get_stream(&name)
            .await
            .map_err(|e| consume_error(&name, e))?;
        let state = stream
            .info()
            .await
            .map_err(|e| consume_error(&name, e))?
            .state
            .clone();
        if state.last_sequence == 0 {
            return Ok(LastChange::Never);
        }
        if state.messages == 0 {
            return Ok(LastChange::AgedOut);
        }
        let msg = match stream.get_raw_message(state.last_sequence).await {
            Ok(msg) => msg,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
                return Ok(LastChange::AgedOut);
            }
            Err(e) => return Err(consume_error(&name, e)),
        };
        msg.headers
            .get(HEADER_CHANGE_POSITION)
            .and_then(|v| v.as_str().parse().ok())
            .map(LastChange::At)
            .ok_or_else(|| invalid(&name, "the last change notification has no position"))
    }

    /// Publish raw bytes on a subject of the event stream (tools and tests that
    /// need to put something the contract does not allow on the stream).
    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>) -> Result<u64, BusError> {
        let ack = self
            .js
            .publish(subject.to_owned(), payload.into())
            .await
            .map_err(|e| publish_error(subject, e))?
            .await
            .map_err(|e| publish_error(subject, e))?;
        Ok(ack.sequence)
    }

    pub(crate) async fn events_stream(&self) -> Result<jetstream::stream::Stream, BusError> {
        let name = self.names.events_stream();
        self.js
            .get_stream(&name)
            .await
            .map_err(|e| consume_error(&name, e))
    }

    /// Publish pre-serialized messages with pipelined acks and no headers: the raw
    /// JetStream publish path, used by benchmarks as the machine's anchor.
    pub async fn publish_bytes(&self, messages: &[(String, Bytes)]) -> Result<(), BusError> {
        let mut pending = Vec::with_capacity(messages.len());
        for (subject, payload) in messages {
            let ack = self
                .js
                .publish(subject.clone(), payload.clone())
                .await
                .map_err(|e| publish_error(subject, e))?;
            pending.push(async move { ack.await.map_err(|e| publish_error(subject, e)) });
        }
        future::try_join_all(pending).await.map(|_| ())
    }

    /// Number of messages currently in the event stream on subjects matching `filter`.
    pub async fn count_events(&self, filter: &str) -> Result<u64, BusError> {
        let stream = self.events_stream().await?;
        let name = stream.cached_info().config.name.clone();
        let counts: Vec<(String, usize)> = stream
            .info_with_subjects(filter)
            .await
            .map_err(|e| consume_error(&name, e))?
            .try_collect()
            .await
            .map_err(|e| consume_error(&name, e))?;
        Ok(counts.into_iter().map(|(_, n)| n as u64).sum())
    }

    /// The last message on `subject` in the event stream: sequence, payload, headers.
    pub async fn last_event(
        &self,
        subject: &str,
    ) -> Result<Option<(u64, Bytes, Vec<(String, String)>)>, BusError> {
        let stream = self.events_stream().await?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(Some((
                m.sequence,
                m.payload,
                header_pairs(Some(&m.headers)),
            ))),
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::stream::LastRawMessageErrorKind::NoMessageFound
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(consume_error(&stream.cached_info().config.name, e)),
        }
    }

    /// The sequence of the earliest message the event stream holds at or after
    /// `seq`; `None` if it holds none.
    pub async fn first_event_at_or_after(&self, seq: u64) -> Result<Option<u64>, BusError> {
        Ok(self.first_event_from(seq).await?.map(|(seq, _)| seq))
    }

    /// Last sequence in the event stream (0 when empty).
    pub async fn last_event_seq(&self) -> Result<u64, BusError> {
        let mut stream = self.events_stream().await?;
        let info = stream
            .info()
            .await
            .map_err(|e| consume_error(&self.names.events_stream(), e))?;
        Ok(info.state.last_sequence)
    }

    /// Start the durable consumer `durable` on the event stream afresh at
    /// `start_seq` (the projection's checkpoint + 1), discarding any state an
    /// earlier instance left: the first message it delivers is the earliest one
    /// still in the stream at or after `start_seq`, and the rest follow in order.
    pub async fn event_consumer(
        &self,
        durable: &str,
        start_seq: u64,
    ) -> Result<EventConsumer, BusError> {
        let consumer = topology::event_consumer(&self.js, &self.names, durable, start_seq).await?;
        Ok(EventConsumer {
            consumer,
            name: durable.to_owned(),
        })
    }

    /// Delete a durable consumer (used when a projection is reset for a replay).
    pub async fn delete_event_consumer(&self, durable: &str) -> Result<(), BusError> {
        let name = self.names.events_stream();
        let stream = self
            .js
            .get_stream(&name)
            .await
            .map_err(|e| BusError::new(BusErrorKind::Setup, &name, e))?;
        topology::delete_consumer(&stream, durable).await
    }

    /// Subscribe to ad-hoc collection requests (`<prefix>.collect.<source>.<kind>`)
    /// in a queue group, so that several collectors share them.
    pub async fn collect_requests(&self, queue_group: &str) -> Result<CollectInbox, BusError> {
        let subject = self.names.collect_wildcard();
        let sub = self
            .client
            .queue_subscribe(subject.clone(), queue_group.to_owned())
            .await
            .map_err(|e| consume_error(&subject, e))?;
        Ok(CollectInbox {
            sub,
            client: self.client.clone(),
        })
    }

    /// Send a collection request and wait for the collector's reply (`id`: an
    /// idempotency key, sent as `Nats-Msg-Id`; the task gets it as its id).
    /// The collectors check it against the accounts and regions they collect.
    /// While none is subscribed (a rolling restart), it is queued here, with
    /// the same reply: a collector checks its arguments when it runs it.
    pub async fn request_collection(
        &self,
        request: &CollectRequest,
        id: Option<&str>,
    ) -> Result<serde_json::Value, BusError> {
        let (source, kind) = (request.source.as_str(), request.kind.as_str());
        let subject = self.names.collect_subject(source, kind);
        let body = serde_json::to_vec(request).expect("a request always serializes");
        match self.request_raw(&subject, body, id).await {
            Err(e) if e.kind() == BusErrorKind::NoResponders => {
                tracing::warn!(
                    subject,
                    "no collector is running; the request is queued for the next one"
                );
                let intake = self
                    .intake(source, kind, Ok(request.clone()), id, None)
                    .await?;
                Ok(intake.reply())
            }
            other => other,
        }
    }

    /// Send raw bytes as a request (with an optional `Nats-Msg-Id`) and parse
    /// the JSON reply.
    pub async fn request_raw(
        &self,
        subject: &str,
        body: Vec<u8>,
        id: Option<&str>,
    ) -> Result<serde_json::Value, BusError> {
        let err = |kind, reason: error::Source| BusError::new(kind, subject, reason);
        let mut headers = HeaderMap::new();
        if let Some(id) = id {
            headers.insert(header::NATS_MESSAGE_ID, id);
        }
        if let Some(tp) = inventory_telemetry::current_traceparent() {
            headers.insert(HEADER_TRACEPARENT, tp.as_str());
        }
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            self.client
                .request_with_headers(subject.to_owned(), headers, body.into()),
        )
        .await
        .map_err(|_| err(BusErrorKind::Timeout, "no reply within 10s".into()))?
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                BusError::bare(BusErrorKind::NoResponders, subject)
            }
            _ => err(BusErrorKind::Request, e.into()),
        })?;
        serde_json::from_slice(&reply.payload).map_err(|e| invalid(subject, e))
    }

    /// Make sure every stream, consumer template and bucket from `nats/` exists
    /// with its current definition. Safe to call from every service at start.
    pub async fn ensure_topology(&self) -> Result<(), BusError> {
        topology::ensure(&self.js, &self.names).await
    }

    /// Delete the event stream of this prefix (tests, resets).
    pub async fn destroy_topology(&self) -> Result<(), BusError> {
        topology::destroy(&self.js, &self.names).await
    }
}

pub(crate) fn consume_error(name: &str, e: impl Into<error::Source>) -> BusError {
    BusError::new(BusErrorKind::Consume, name, e)
}

/// A record or message that is not what it must be.
pub(crate) fn invalid(name: &str, e: impl Into<error::Source>) -> BusError {
    BusError::new(BusErrorKind::Invalid, name, e)
}

fn header_pairs(headers: Option<&HeaderMap>) -> Vec<(String, String)> {
    headers
        .map(|h| {
            h.iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Await the acks of pipelined publishes, in order.
async fn acks(
    pending: Vec<(String, jetstream::context::PublishAckFuture)>,
) -> Result<Vec<Published>, BusError> {
    future::try_join_all(pending.into_iter().map(|(subject, ack)| async move {
        let ack = ack.await.map_err(|e| publish_error(&subject, e))?;
        Ok(Published {
            seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }))
    .await
}

fn publish_error(subject: &str, e: impl Into<error::Source>) -> BusError {
    BusError::new(BusErrorKind::Publish, subject, e)
}

/// A durable pull consumer on the event stream.
pub struct EventConsumer {
    consumer: PullConsumer,
    name: String,
}

/// One message from the event stream, with its stream sequence.
pub struct Delivery {
    pub seq: u64,
    pub subject: String,
    pub payload: Bytes,
    message: jetstream::Message,
}

impl EventConsumer {
    /// Fetch up to `max` messages, waiting at most `expires` for the first.
    pub async fn fetch(&self, max: usize, expires: Duration) -> Result<Vec<Delivery>, BusError> {
        let err = |e: error::Source| consume_error(&self.name, e);
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(expires)
            .messages()
            .await
            .map_err(|e| err(e.into()))?;
        let mut out = Vec::with_capacity(max);
        while let Some(msg) = batch.next().await {
            let message = msg.map_err(&err)?;
            let seq = message.info().map_err(&err)?.stream_sequence;
            out.push(Delivery {
                seq,
                subject: message.subject.to_string(),
                payload: message.payload.clone(),
                message,
            });
        }
        Ok(out)
    }
}

impl Delivery {
    /// Acknowledge this message and (the consumer acks "all") every earlier one.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.message
            .ack()
            .await
            .map_err(|e| consume_error(&self.subject, e))
    }

    /// Ask for redelivery after `delay` (transient failure).
    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.message
            .ack_with(jetstream::AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| consume_error(&self.subject, e))
    }

    /// All headers as (name, value) pairs, for dead-letter records.
    pub fn headers(&self) -> Vec<(String, String)> {
        header_pairs(self.message.headers.as_ref())
    }

    /// The W3C trace context of the operation that published it.
    pub fn traceparent(&self) -> Option<&str> {
        Some(
            self.message
                .headers
                .as_ref()?
                .get(HEADER_TRACEPARENT)?
                .as_str(),
        )
    }
}

/// Incoming collection requests.
pub struct CollectInbox {
    sub: async_nats::Subscriber,
    client: async_nats::Client,
}

/// One collection request as it arrived.
pub struct CollectDelivery {
    pub source: String,
    pub kind: String,
    pub body: Bytes,
    /// The requester's `Nats-Msg-Id`: its idempotency key, used as the task id.
    pub msg_id: Option<String>,
    /// The requester's W3C trace context.
    pub traceparent: Option<String>,
    reply: Option<async_nats::Subject>,
    client: async_nats::Client,
}

impl CollectInbox {
    /// The next request; `None` when the subscription has ended.
    pub async fn next(&mut self) -> Option<CollectDelivery> {
        loop {
            let msg = self.sub.next().await?;
            let mut tokens = msg.subject.rsplitn(3, '.');
            let (Some(kind), Some(source)) = (tokens.next(), tokens.next()) else {
                continue;
            };
            let header = |name: &str| {
                msg.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
            };
            let (msg_id, traceparent) = (
                header(header::NATS_MESSAGE_ID.as_ref()),
                header(HEADER_TRACEPARENT),
            );
            return Some(CollectDelivery {
                source: untoken(source).unwrap_or_else(|| source.to_owned()),
                kind: untoken(kind).unwrap_or_else(|| kind.to_owned()),
                body: msg.payload.clone(),
                msg_id,
                traceparent,
                reply: msg.reply.clone(),
                client: self.client.clone(),
            });
        }
    }
}

impl CollectDelivery {
    /// Reply to the requester, if it asked for a reply.
    pub async fn respond(&self, body: &serde_json::Value) -> Result<(), BusError> {
        let Some(reply) = &self.reply else {
            return Ok(());
        };
        self.client
            .publish(reply.clone(), body.to_string().into())
            .await
            .map_err(|e| publish_error(reply, e))
    }
}
