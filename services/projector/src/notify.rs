//! Change notifications: every version the projection has written is
//! published on `<prefix>.changes.<source>.<kind>.<change>` (stream
//! `INVENTORY_CHANGES`), in stream order, carrying the event's sequence.
//!
//! The version tables are the outbox: the notifier reads them after the fold
//! committed and starts after the last notification the changes stream holds,
//! so a crash anywhere loses nothing and a re-publish is dropped as a duplicate.

use std::time::Duration;

use bytes::Bytes;
use inventory_bus::{Bus, ChangeNote};
use inventory_model::KINDS;
use inventory_store::{ChangesQuery, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How long the notifier waits when it has caught up.
const IDLE: Duration = Duration::from_millis(500);

/// The notifications for one page of the change feed.
fn notes(items: &[Box<serde_json::value::RawValue>]) -> Vec<ChangeNote> {
    items
        .iter()
        .filter_map(|item| {
            let v: Value = serde_json::from_str(item.get()).ok()?;
            Some(ChangeNote {
                seq: v["seq"].as_u64()?,
                source: v["source"].as_str()?.to_owned(),
                kind: v["kind"].as_str()?.to_owned(),
                change: v["change"].as_str()?.to_owned(),
                body: Bytes::from(item.get().to_owned()),
            })
        })
        .collect()
}

/// Publish every version after the last one notified, until `shutdown`.
pub async fn run_notifier(
    store: Store,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    bus.ensure_topology().await?;
    let mut after = bus.last_change_seq().await?;
    tracing::info!(after, "change notifier started");
    loop {
        let query = ChangesQuery {
            after_seq: after,
            kinds: KINDS.to_vec(),
            limit: 1000,
            ..Default::default()
        };
        let wait = match store.changes(&query).await {
            Ok(page) if !page.items.is_empty() => {
                let notes = notes(&page.items);
                match bus.publish_changes(&notes).await {
                    Ok(()) => {
                        after = page.last_seq.unwrap_or(after);
                        tracing::debug!(
                            count = notes.len(),
                            after,
                            "change notifications published"
                        );
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not publish change notifications; retrying");
                        Some(IDLE)
                    }
                }
            }
            Ok(_) => Some(IDLE),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the change feed; retrying");
                Some(IDLE)
            }
        };
        if let Some(wait) = wait {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        } else if shutdown.is_cancelled() {
            return Ok(());
        }
    }
}
