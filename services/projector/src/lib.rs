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
use inventory_store::{BatchItem, BatchOutcome, DeadLetter, JsonText, ResourceChange, Store};
use tokio_util::sync::CancellationToken;

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
    match check(payload, trace_id(&headers)) {
        Ok(item) => item(seq),
        Err(e) => BatchItem::Dead {
            seq,
            letter: DeadLetter {
                subject: subject.to_owned(),
                reason: e.to_string(),
                payload: payload.to_vec(),
                headers,
            },
        },
    }
}

type MakeItem = Box<dyn FnOnce(u64) -> BatchItem>;

/// The trace id of a W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`).
fn trace_id(headers: &[(String, String)]) -> Option<String> {
    let (_, tp) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(inventory_bus::HEADER_TRACEPARENT))?;
    let id = tp.split('-').nth(1)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

fn check(payload: &[u8], trace_id: Option<String>) -> Result<MakeItem, ContractError> {
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
        ..
    } = env;
    Ok(match event_type {
        EventType::ResourceCreated | EventType::ResourceUpdated | EventType::ResourceDeleted => {
            let key = key.expect("validated: resource events have a key");
            let state = match (payload, content_hash) {
                (Some(payload), Some(hash)) if event_type != EventType::ResourceDeleted => {
                    let projected = kind.project(&key, &scope, &payload)?;
                    // Kept as text: the tree is dropped once projected.
                    Some((projected, JsonText::from_value(&payload), hash))
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
            })
        }
    })
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
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.bus.ensure_topology().await?;
        let name = &self.settings.name;
        let durable = self.settings.durable.as_ref().unwrap_or(name);
        let mut checkpoint = self.store.checkpoint(name).await?;
        let mut consumer = self.bus.event_consumer(durable, checkpoint + 1).await?;
        // Right after (re)creation the first delivery is the earliest message still
        // in the stream at or after checkpoint + 1; afterwards batches must follow
        // the checkpoint without a gap, or the fold would skip events.
        let mut fresh = true;
        tracing::info!(projection = name, checkpoint, "projector started");
        let mut folded: u64 = 0;
        // The next batch is fetched and decoded (on a blocking thread) while the
        // current one is applied.
        let mut prefetched: Option<Decoded> = None;
        loop {
            let batch = match prefetched.take() {
                Some(d) => Ok(d),
                None => tokio::select! {
                    _ = shutdown.cancelled() => break,
                    batch = self.fetch_decoded(&consumer) => batch,
                },
            };
            let (deliveries, items) = match batch {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(projection = name, error = %e, "fetch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if deliveries.is_empty() {
                continue;
            }
            let first = deliveries[0].seq;
            if !fresh && first > checkpoint + 1 {
                tracing::warn!(
                    projection = name,
                    checkpoint,
                    first,
                    "delivery skipped past the checkpoint; restarting the consumer there"
                );
                consumer = self.bus.event_consumer(durable, checkpoint + 1).await?;
                fresh = true;
                continue;
            }
            fresh = false;
            let (applied, next) = tokio::join!(
                self.apply(&deliveries, items, &shutdown),
                self.fetch_decoded(&consumer)
            );
            let Some(outcome) = applied else {
                break;
            };
            match next {
                Ok(next) if !next.0.is_empty() => prefetched = Some(next),
                Ok(_) => {}
                Err(e) => tracing::warn!(projection = name, error = %e, "prefetch failed"),
            }
            folded += deliveries.len() as u64;
            checkpoint = outcome.checkpoint;
            let done = self.settings.stop_at.is_some_and(|s| checkpoint >= s);
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
            // The consumer acks "all": acking the last message acks the batch.
            let last = deliveries.last().expect("non-empty batch");
            if let Err(e) = last.ack().await {
                tracing::warn!(projection = name, seq = last.seq, error = %e, "ack failed; the batch will be redelivered and skipped");
            }
            if done {
                break;
            }
        }
        tracing::info!(projection = name, folded, "projector stopped");
        Ok(())
    }

    /// Commit a batch, retrying transient store failures with backoff. `None` if
    /// shut down before it could commit (nothing acked; the batch is redelivered).
    async fn apply(
        &self,
        deliveries: &[Delivery],
        items: Vec<BatchItem>,
        shutdown: &CancellationToken,
    ) -> Option<BatchOutcome> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.store.apply_batch(&self.settings.name, &items).await {
                Ok(outcome) => return Some(outcome),
                Err(e) if e.is_data_error() => {
                    tracing::warn!(
                        projection = self.settings.name, error = %e,
                        "the database rejected an event of the batch; applying one by one"
                    );
                    match self.apply_isolating(items.clone(), deliveries).await {
                        Ok(outcome) => return Some(outcome),
                        Err(e) => {
                            tracing::error!(projection = self.settings.name, error = %e, "isolating the rejected event failed")
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(
                        projection = self.settings.name, error = %e, retry_in = ?backoff,
                        "batch failed to commit; retrying"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
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
        items: Vec<BatchItem>,
        deliveries: &[Delivery],
    ) -> Result<BatchOutcome, inventory_store::StoreError> {
        let mut total = BatchOutcome::default();
        for (item, delivery) in items.into_iter().zip(deliveries) {
            let outcome = match self
                .store
                .apply_batch(&self.settings.name, std::slice::from_ref(&item))
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
                    self.store.apply_batch(&self.settings.name, &[dead]).await?
                }
                other => other?,
            };
            total.applied += outcome.applied;
            total.unchanged += outcome.unchanged;
            total.dead_lettered += outcome.dead_lettered;
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
