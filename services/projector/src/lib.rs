//! The projector service: folds the event stream into PostgreSQL.
//!
//! It reads through a durable pull consumer in batches, turns each message into a
//! [`BatchItem`] (checking the contract; violations become dead letters), and has
//! the store apply the batch in one transaction that also advances the
//! projection's checkpoint. The batch is acknowledged only after the commit.
//!
//! Architecture invariant: the projector never acks what it has not committed,
//! and never stops on a bad event: a contract violation is recorded in the
//! dead-letter table with the reason and raw bytes, and the stream moves on.

pub mod housekeeping;
pub mod notify;

use std::time::Duration;

use chrono::{DateTime, Utc};
use inventory_bus::{Bus, Delivery};
use inventory_model::{ContractError, Envelope, EventType, kind_by_name};
use inventory_store::{
    BatchItem, BatchOutcome, DeadLetter, Hole, JsonText, ResourceChange, Store, StoreError,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why a projector (or its change notifier) could not start: NATS or
/// PostgreSQL failed before the fold began. Once folding, failures are
/// retried with backoff and never end the projector.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Bus(#[from] inventory_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    /// Projection name: the checkpoint row and the durable consumer's name.
    pub name: String,
    pub batch_size: usize,
    /// How long a fetch waits for the first message.
    pub fetch_wait: Duration,
    /// The durable consumer's name, if not the projection's (a replay into
    /// another schema must not take over the live projector's consumer).
    pub durable: Option<String>,
    /// Replays: stop once the checkpoint reaches this sequence; later events
    /// are skipped.
    pub stop_at: Option<u64>,
    /// Replays: skip events observed after this instant (the inventory as of then).
    pub until: Option<DateTime<Utc>>,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings {
            name: "tables".into(),
            batch_size: 1000,
            fetch_wait: Duration::from_secs(1),
            durable: None,
            stop_at: None,
            until: None,
        }
    }
}

/// Turn one stream message into a batch item: a checked event or a dead letter.
pub fn to_item(
    seq: u64,
    subject: &str,
    payload: &[u8],
    headers: Vec<(String, String)>,
) -> BatchItem {
    let dead = |reason: String, headers| BatchItem::Dead {
        seq,
        letter: DeadLetter {
            subject: subject.to_owned(),
            reason,
            payload: payload.to_vec(),
            headers,
        },
    };
    match check(payload, trace_id(&headers)) {
        Ok(Checked::Item(item)) => item(seq),
        Ok(Checked::Rejected(reason)) => {
            dead(format!("rejected by the collector: {reason}"), headers)
        }
        Err(e) => dead(e.to_string(), headers),
    }
}

type MakeItem = Box<dyn FnOnce(u64) -> BatchItem>;

/// A message that keeps the contract.
enum Checked {
    /// An event to fold.
    Item(MakeItem),
    /// A listed item the collector could not take: a dead letter by design.
    Rejected(String),
}

/// The trace id of a W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`).
fn trace_id(headers: &[(String, String)]) -> Option<String> {
    let (_, tp) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(inventory_bus::HEADER_TRACEPARENT))?;
    let id = tp.split('-').nth(1)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

fn check(payload: &[u8], trace_id: Option<String>) -> Result<Checked, ContractError> {
    let env = Envelope::decode(payload)?;
    let kind = kind_by_name(&env.source, &env.kind).ok_or_else(|| ContractError::UnknownKind {
        provider: env.source.clone(),
        kind: env.kind.clone(),
    })?;
    kind.check_scope(&env.scope)?;
    let Envelope {
        event_type,
        scope,
        key,
        observed_at,
        scan_id,
        request_id,
        content_hash,
        payload,
        resources_seen,
        error,
        known_from_seq,
        ..
    } = env;
    Ok(Checked::Item(match event_type {
        EventType::ItemRejected => {
            return Ok(Checked::Rejected(error.unwrap_or_default()));
        }
        EventType::ResourceCreated | EventType::ResourceUpdated | EventType::ResourceDeleted => {
            let key = key.expect("validated: resource events have a key");
            let state = match (payload, content_hash) {
                (Some(payload), Some(hash)) if event_type != EventType::ResourceDeleted => {
                    let value = payload
                        .value()
                        .map_err(|e| ContractError::Malformed(e.to_string()))?;
                    let projected = kind.project(&key, &scope, &value)?;
                    // Stored as the text it came as: the tree is dropped once
                    // projected, and nothing is serialized again.
                    Some((projected, JsonText::from_text(payload.into_text()), hash))
                }
                _ => None,
            };
            let change = ResourceChange {
                kind,
                scope,
                key,
                observed_at,
                scan_id,
                request_id,
                trace_id,
                state,
            };
            Box::new(move |seq| BatchItem::Resource { seq, change })
        }
        EventType::ScanStarted => Box::new(move |seq| BatchItem::ScanStarted {
            seq,
            scan_id,
            kind,
            scope,
            request_id,
            at: observed_at,
        }),
        EventType::ScanCompleted | EventType::ScanFailed | EventType::ScanCancelled => {
            let result = match event_type {
                EventType::ScanCompleted => Ok(resources_seen.unwrap_or_default()),
                _ => Err(error.unwrap_or_default()),
            };
            Box::new(move |seq| BatchItem::ScanFinished {
                seq,
                scan_id,
                kind,
                scope,
                at: observed_at,
                result,
                cancelled: event_type == EventType::ScanCancelled,
                known_from_seq,
            })
        }
    }))
}

pub struct Projector {
    bus: Bus,
    store: Store,
    settings: ProjectorSettings,
}

impl Projector {
    pub fn new(bus: Bus, store: Store, settings: ProjectorSettings) -> Projector {
        Projector {
            bus,
            store,
            settings,
        }
    }

    /// Fold until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ProjectorError> {
        self.bus.ensure_topology().await?;
        let name = &self.settings.name;
        let checkpoint = self.store.checkpoint(name).await?;
        let Some(mut consumer) = self.consumer_at(checkpoint + 1, &shutdown).await else {
            return Ok(());
        };
        tracing::info!(projection = name, checkpoint, "projector started");
        let mut folded: u64 = 0;
        // The next batch is fetched and decoded (on a blocking thread) while the
        // current one is applied.
        let mut prefetched: Option<Decoded> = None;
        let mut fetch_backoff = Backoff::default();
        loop {
            let batch = match prefetched.take() {
                Some(d) => Ok(d),
                None => tokio::select! {
                    _ = shutdown.cancelled() => break,
                    batch = self.fetch_decoded(&consumer) => batch,
                },
            };
            let (deliveries, items) = match batch {
                Ok(d) => {
                    fetch_backoff.reset();
                    d
                }
                Err(e) => {
                    let wait = fetch_backoff.next();
                    tracing::warn!(projection = name, error = %e, retry_in = ?wait, "fetch failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            if deliveries.is_empty() {
                continue;
            }
            // Several projectors of one projection share its consumer, which
            // then hands each of them every other part of a live stream: a
            // batch is cut where its sequences stop following each other,
            // and the consumer restarted after what was applied.
            let (deliveries, items, cut) = consecutive(deliveries, items);
            let span = batch_span(name, &deliveries);
            let (applied, next) = tokio::join!(
                self.apply(&deliveries, items, &shutdown).instrument(span),
                self.fetch_decoded(&consumer)
            );
            let outcome = match applied {
                Applied::Committed(outcome) => outcome,
                Applied::Stopped => break,
                Applied::Behind { checkpoint } => {
                    // Another instance moved the consumer, or this one's fetch
                    // skipped events: fetch again from the checkpoint.
                    tracing::warn!(
                        projection = name,
                        checkpoint,
                        first = deliveries[0].seq,
                        "batch does not follow the checkpoint; restarting the consumer there"
                    );
                    match self.consumer_at(checkpoint + 1, &shutdown).await {
                        Some(c) => consumer = c,
                        None => break,
                    }
                    continue;
                }
            };
            match next {
                Ok(next) if !next.0.is_empty() && !cut => prefetched = Some(next),
                Ok(_) => {}
                Err(e) => tracing::warn!(projection = name, error = %e, "prefetch failed"),
            }
            folded += deliveries.len() as u64;
            let done = self
                .settings
                .stop_at
                .is_some_and(|s| outcome.checkpoint >= s);
            tracing::debug!(
                projection = name,
                events = deliveries.len(),
                applied = outcome.applied,
                unchanged = outcome.unchanged,
                dead_lettered = outcome.dead_lettered,
                checkpoint = outcome.checkpoint,
                "batch committed"
            );
            if outcome.dead_lettered > 0 {
                tracing::warn!(
                    projection = name,
                    count = outcome.dead_lettered,
                    "events broke the contract and were dead-lettered"
                );
            }
            if outcome.ghosts_deleted > 0 {
                tracing::info!(
                    projection = name,
                    count = outcome.ghosts_deleted,
                    "resources whose last event had aged out of the stream and that a completed scan did not see were deleted"
                );
            }
            // The consumer acks "all": acking the last message acks the batch.
            let last = deliveries.last().expect("non-empty batch");
            if let Err(e) = last.ack().await {
                tracing::warn!(projection = name, seq = last.seq, error = %e, "ack failed; the batch will be redelivered and skipped");
            }
            if done {
                break;
            }
            if cut {
                tracing::debug!(
                    projection = name,
                    checkpoint = outcome.checkpoint,
                    "batch was not consecutive; restarting the consumer after what was applied"
                );
                match self.consumer_at(outcome.checkpoint + 1, &shutdown).await {
                    Some(c) => consumer = c,
                    None => break,
                }
            }
        }
        tracing::info!(projection = name, folded, "projector stopped");
        Ok(())
    }

    /// The projection's consumer, started afresh at `start` (retried with
    /// backoff while NATS fails); `None` if shut down first.
    async fn consumer_at(
        &self,
        start: u64,
        shutdown: &CancellationToken,
    ) -> Option<inventory_bus::EventConsumer> {
        let durable = self
            .settings
            .durable
            .as_ref()
            .unwrap_or(&self.settings.name);
        let mut backoff = Backoff::default();
        loop {
            match self.bus.event_consumer(durable, start).await {
                Ok(c) => return Some(c),
                Err(e) => {
                    let wait = backoff.next();
                    tracing::warn!(projection = self.settings.name, error = %e, retry_in = ?wait, "cannot start the consumer; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Commit a batch. Transient failures are retried with backoff (a batch the
    /// database refuses as data is applied event by event, dead-lettering the
    /// refused one; if even that fails, it too waits its turn). A batch that
    /// starts past the checkpoint is committed only across sequences the stream
    /// does not hold; otherwise the caller fetches again (`Behind`). Nothing is
    /// acked here.
    async fn apply(
        &self,
        deliveries: &[Delivery],
        items: Vec<BatchItem>,
        shutdown: &CancellationToken,
    ) -> Applied {
        let name = &self.settings.name;
        let mut backoff = Backoff::default();
        let mut hole = None;
        let began = std::time::Instant::now();
        loop {
            let result = match self.store.apply_batch(name, &items, hole).await {
                Err(e) if e.is_data_error() => {
                    tracing::warn!(
                        projection = name, error = %e,
                        "the database rejected an event of the batch; applying one by one"
                    );
                    self.apply_isolating(&items, deliveries, hole).await
                }
                other => other,
            };
            let wait = match result {
                Ok(outcome) => {
                    record(name, &outcome, began.elapsed());
                    return Applied::Committed(outcome);
                }
                Err(StoreError::Gap { checkpoint, first }) => {
                    match self.bus.first_event_at_or_after(checkpoint + 1).await {
                        // Nothing is held between: those sequences aged out
                        // (or were removed) and the batch may follow them.
                        Ok(held) if held.is_none_or(|s| s >= first) && hole.is_none() => {
                            hole = Some(Hole {
                                from: checkpoint + 1,
                                to: first,
                            });
                            continue;
                        }
                        Ok(held) if held.is_some_and(|s| s < first) => {
                            return Applied::Behind { checkpoint };
                        }
                        Ok(_) => {
                            // The checkpoint moved on meanwhile: look again.
                            hole = None;
                            backoff.next()
                        }
                        Err(e) => {
                            let wait = backoff.next();
                            tracing::warn!(projection = name, error = %e, retry_in = ?wait, "cannot check the stream for a gap; retrying");
                            wait
                        }
                    }
                }
                Err(e) => {
                    let wait = backoff.next();
                    tracing::error!(
                        projection = name, error = %e, retry_in = ?wait,
                        "batch failed to commit; retrying"
                    );
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Applied::Stopped,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The span of a batch's fold, linked to the trace of each of its events (a
/// batch folds the events of many collections), at most [`MAX_LINKS`].
fn batch_span(projection: &str, deliveries: &[Delivery]) -> tracing::Span {
    let span = tracing::info_span!(
        "fold batch",
        projection,
        events = deliveries.len(),
        first_seq = deliveries.first().map(|d| d.seq),
        last_seq = deliveries.last().map(|d| d.seq),
    );
    let mut linked: Vec<&str> = Vec::new();
    for tp in deliveries.iter().filter_map(Delivery::traceparent) {
        if linked.len() == MAX_LINKS {
            break;
        }
        if !linked.contains(&tp) {
            inventory_telemetry::add_link(&span, tp);
            linked.push(tp);
        }
    }
    span
}

/// Links of a batch's span at most: a batch of a thousand events of as many
/// traces stays one span of bounded size.
const MAX_LINKS: usize = 32;

/// Count a committed batch: its events by outcome, and how long it took.
fn record(projection: &str, outcome: &BatchOutcome, took: Duration) {
    let m = &inventory_telemetry::metrics::METRICS;
    for (what, n) in [
        ("applied", outcome.applied),
        ("unchanged", outcome.unchanged),
        ("dead_lettered", outcome.dead_lettered),
    ] {
        m.projector_events
            .with_label_values(&[projection, what])
            .inc_by(n as u64);
    }
    m.projector_batch_duration.observe(took.as_secs_f64());
}

/// The longest prefix of a batch whose sequences follow each other, and
/// whether anything was cut.
fn consecutive(
    mut deliveries: Vec<Delivery>,
    mut items: Vec<BatchItem>,
) -> (Vec<Delivery>, Vec<BatchItem>, bool) {
    let end = deliveries
        .windows(2)
        .position(|w| w[1].seq != w[0].seq + 1)
        .map_or(deliveries.len(), |i| i + 1);
    let cut = end < deliveries.len();
    deliveries.truncate(end);
    items.truncate(end);
    (deliveries, items, cut)
}

/// What became of a batch.
enum Applied {
    Committed(BatchOutcome),
    /// Shut down before it could commit (nothing acked; it is redelivered).
    Stopped,
    /// It does not follow the checkpoint: fetch again after `checkpoint`.
    Behind {
        checkpoint: u64,
    },
}

/// Exponential backoff for retries: 200 ms, doubling, at most 30 s.
#[derive(Default)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn next(&mut self) -> Duration {
        self.0 = (self.0 * 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
        self.0
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }
}

/// A fetched batch and its messages turned into batch items.
type Decoded = (Vec<Delivery>, Vec<BatchItem>);

impl Projector {
    /// Fetch a batch and decode it off the async threads (JSON decoding and
    /// projection are the projector's CPU work).
    async fn fetch_decoded(
        &self,
        consumer: &inventory_bus::EventConsumer,
    ) -> Result<Decoded, inventory_bus::BusError> {
        let deliveries = consumer
            .fetch(self.settings.batch_size, self.settings.fetch_wait)
            .await?;
        if deliveries.is_empty() {
            return Ok((deliveries, Vec::new()));
        }
        let (stop_at, until) = (self.settings.stop_at, self.settings.until);
        let decoded = tokio::task::spawn_blocking(move || {
            let items = deliveries
                .iter()
                .map(|d| to_item(d.seq, &d.subject, &d.payload, d.headers()))
                .map(|item| {
                    let late = stop_at.is_some_and(|s| item.seq() > s)
                        || until.is_some_and(|u| item.observed_at().is_some_and(|t| t > u));
                    if late {
                        BatchItem::Skip { seq: item.seq() }
                    } else {
                        item
                    }
                })
                .collect();
            (deliveries, items)
        })
        .await
        .expect("decoding does not panic");
        Ok(decoded)
    }

    /// Apply a batch event by event; an event the database rejects (bad data, not
    /// unavailability) becomes a dead letter, so it cannot block the stream.
    async fn apply_isolating(
        &self,
        items: &[BatchItem],
        deliveries: &[Delivery],
        hole: Option<Hole>,
    ) -> Result<BatchOutcome, StoreError> {
        let name = &self.settings.name;
        let mut total = BatchOutcome::default();
        for (item, delivery) in items.iter().zip(deliveries) {
            let outcome = match self
                .store
                .apply_batch(name, std::slice::from_ref(item), hole)
                .await
            {
                Err(e) if e.is_data_error() => {
                    let dead = BatchItem::Dead {
                        seq: item.seq(),
                        letter: DeadLetter {
                            subject: delivery.subject.clone(),
                            reason: format!("rejected by the database: {e}"),
                            payload: delivery.payload.to_vec(),
                            headers: delivery.headers(),
                        },
                    };
                    self.store.apply_batch(name, &[dead], hole).await?
                }
                other => other?,
            };
            total.applied += outcome.applied;
            total.unchanged += outcome.unchanged;
            total.dead_lettered += outcome.dead_lettered;
            total.ghosts_deleted += outcome.ghosts_deleted;
            total.checkpoint = outcome.checkpoint;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn base(event_type: &str) -> serde_json::Value {
        json!({
            "event_type": event_type, "schema_version": 1, "source": "aws", "kind": "vpc",
            "scope": {"account_id": "1", "region": "eu-west-1"},
            "observed_at": "2026-11-23T10:00:00Z", "scan_id": "s"
        })
    }

    fn reason(item: BatchItem) -> String {
        match item {
            BatchItem::Dead { letter, .. } => letter.reason,
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }

    #[test]
    fn good_events_become_items() {
        let mut v = base("resource.created");
        v["key"] = json!("vpc-1");
        v["content_hash"] = json!("h");
        v["payload"] = json!({"vpcId": "vpc-1"});
        match to_item(7, "s", &bytes(v), vec![]) {
            BatchItem::Resource { seq, change } => {
                assert_eq!(seq, 7);
                assert_eq!(change.key, "vpc-1");
                assert!(change.state.is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut v = base("scan.completed");
        v["resources_seen"] = json!(4);
        assert!(matches!(
            to_item(8, "s", &bytes(v), vec![]),
            BatchItem::ScanFinished { result: Ok(4), .. }
        ));
    }

    #[test]
    fn contract_violations_become_dead_letters_with_reasons() {
        assert!(reason(to_item(1, "s", b"{oops", vec![])).contains("not a valid envelope"));
        let mut v = base("resource.created");
        v["kind"] = json!("teapot");
        v["key"] = json!("x");
        v["content_hash"] = json!("h");
        v["payload"] = json!({});
        assert!(reason(to_item(2, "s", &bytes(v), vec![])).contains("unknown kind aws/teapot"));
        let mut v = base("resource.updated");
        v["key"] = json!("vpc-1");
        v["content_hash"] = json!("h");
        v["payload"] = json!({"vpcId": "vpc-2"});
        assert!(reason(to_item(3, "s", &bytes(v), vec![])).contains("differs from event key"));
        let mut v = base("scan.started");
        v["scope"] = json!({"account_id": "1"});
        assert!(reason(to_item(4, "s", &bytes(v), vec![])).contains("regional"));
    }
}
