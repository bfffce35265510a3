//! Change notifications: every version the projection has written is
//! published on `<prefix>.changes.<source>.<kind>.<change>` (stream
//! `INVENTORY_CHANGES`), in stream order, carrying the event's sequence.
//!
//! The change log is the outbox: the fold appends to it in each batch's
//! transaction, and the notifier reads it after commit, in order, publishing
//! each page at least once. Where it stands (a position of the log) is kept in
//! PostgreSQL (`change_notifier`, written once a page is acknowledged) and can
//! be read off the changes stream (its last notification's position); it
//! resumes from the later of the two, so neither a crash nor the stream's
//! retention loses a change, and a page published again is dropped as a
//! duplicate within the stream's duplicate window.

use std::time::Duration;

use bytes::Bytes;
use inventory_bus::{Bus, ChangeNote, LastChange};
use inventory_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Backoff, ProjectorError};

/// How long the notifier waits when it has caught up.
const IDLE: Duration = Duration::from_millis(500);

/// The notifications for one page of the change log.
fn notes(items: &[(u64, Box<serde_json::value::RawValue>)]) -> Vec<ChangeNote> {
    items
        .iter()
        .filter_map(|(position, item)| {
            let v: Value = serde_json::from_str(item.get()).ok()?;
            Some(ChangeNote {
                position: *position,
                seq: v["seq"].as_u64()?,
                source: v["source"].as_str()?.to_owned(),
                kind: v["kind"].as_str()?.to_owned(),
                change: v["change"].as_str()?.to_owned(),
                body: Bytes::from(item.get().to_owned()),
            })
        })
        .collect()
}

/// The change log position after which to publish: the later of what
/// PostgreSQL recorded and the changes stream's last notification.
pub async fn resume_after(
    store: &Store,
    bus: &Bus,
    projection: &str,
) -> Result<u64, ProjectorError> {
    let recorded = store.notified_up_to(projection).await?;
    let last = bus.last_change().await?;
    Ok(match (recorded, last) {
        (Some(r), LastChange::At(p)) => r.max(p),
        (Some(r), LastChange::Never | LastChange::AgedOut) => r,
        (None, LastChange::At(p)) => p,
        (None, LastChange::Never) => 0,
        (None, LastChange::AgedOut) => {
            let checkpoint = store.checkpoint(projection).await?;
            tracing::warn!(
                projection,
                checkpoint,
                "every change notification has aged out of its stream and none was recorded; \
                 notifying from the projection's checkpoint on"
            );
            store.change_position_at(checkpoint).await?
        }
    })
}

/// Publish every version after the last one notified, until `shutdown`.
/// Failures (NATS or PostgreSQL away) are retried with backoff; it returns only
/// when shut down.
pub async fn run_notifier(store: Store, bus: Bus, projection: String, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    let mut after = loop {
        let started = async {
            bus.ensure_topology().await?;
            resume_after(&store, &bus, &projection).await
        };
        match started.await {
            Ok(after) => break after,
            Err(e) => {
                let wait = backoff.next();
                tracing::error!(projection, error = format!("{e:#}"), retry_in = ?wait, "change notifier cannot start; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    };
    backoff.reset();
    tracing::info!(projection, after, "change notifier started");
    loop {
        let wait = match store.changes_after(after, 1000).await {
            Ok(page) if !page.is_empty() => {
                let notes = notes(&page);
                match bus.publish_changes(&notes).await {
                    Ok(()) => {
                        after = page.last().map_or(after, |(p, _)| *p);
                        if let Err(e) = store.set_notified_up_to(&projection, after).await {
                            tracing::warn!(projection, error = %e, "could not record where the notifier stands");
                        }
                        tracing::debug!(
                            count = notes.len(),
                            after,
                            "change notifications published"
                        );
                        backoff.reset();
                        None
                    }
                    Err(e) => {
                        let wait = backoff.next();
                        tracing::warn!(error = %e, retry_in = ?wait, "could not publish change notifications; retrying");
                        Some(wait)
                    }
                }
            }
            Ok(_) => Some(IDLE),
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(error = %e, retry_in = ?wait, "could not read the change feed; retrying");
                Some(wait)
            }
        };
        if let Some(wait) = wait {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        } else if shutdown.is_cancelled() {
            return;
        }
    }
}
