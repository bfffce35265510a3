//! Housekeeping: per-kind retention of history, run as a schedule by the
//! projector (the only writer of the projection).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use inventory_model::{KINDS, KindDef};
use inventory_store::{Removed, Store, StoreError};
use tokio_util::sync::CancellationToken;

/// How long one kind's history is kept; `None`: forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Superseded versions, counted from the end of their validity.
    pub versions: Option<Duration>,
    /// Deleted resources (row and history), counted from their deletion.
    pub deleted: Option<Duration>,
}

/// Retention for every kind: a default and per-kind overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retention {
    /// How often housekeeping runs; `None`: never.
    pub every: Option<Duration>,
    pub default: Window,
    /// Keyed by the kind's plural or singular name (`instances`, `instance`).
    pub kinds: HashMap<String, Window>,
}

impl Retention {
    pub fn window(&self, kind: &KindDef) -> Window {
        self.kinds
            .get(kind.plural)
            .or_else(|| self.kinds.get(kind.name))
            .copied()
            .unwrap_or(self.default)
    }

    /// Names in `kinds` that are no kind of the catalogue.
    pub fn unknown_kinds(&self) -> Vec<String> {
        self.kinds
            .keys()
            .filter(|k| !KINDS.iter().any(|d| d.plural == *k || d.name == *k))
            .cloned()
            .collect()
    }
}

fn cutoff(now: DateTime<Utc>, keep: Option<Duration>) -> Option<DateTime<Utc>> {
    keep.and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now - d)
}

/// Apply every kind's window once, as of `now`; logs what it removed.
pub async fn housekeep(
    store: &Store,
    retention: &Retention,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, Removed)>, StoreError> {
    let mut out = Vec::new();
    for kind in KINDS.iter() {
        let window = retention.window(kind);
        if window == Window::default() {
            continue;
        }
        let removed = store
            .apply_retention(
                kind,
                cutoff(now, window.versions),
                cutoff(now, window.deleted),
            )
            .await?;
        tracing::info!(
            table = kind.table,
            versions_removed = removed.versions,
            resources_removed = removed.resources,
            "retention applied"
        );
        out.push((kind.table, removed));
    }
    Ok(out)
}

/// Run [`housekeep`] every `retention.every` until `shutdown` (with retention
/// off, just wait for it).
pub async fn run_housekeeping(store: Store, retention: Retention, shutdown: CancellationToken) {
    let Some(every) = retention.every else {
        return shutdown.cancelled().await;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = housekeep(&store, &retention, Utc::now()).await {
            tracing::warn!(error = %e, "housekeeping failed; retrying at the next run");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory_model::kind_by_name;

    #[test]
    fn kinds_take_their_own_window_or_the_default() {
        let day = Duration::from_secs(86_400);
        let r = Retention {
            every: Some(day),
            default: Window {
                versions: Some(90 * day),
                deleted: None,
            },
            kinds: HashMap::from([(
                "instances".to_string(),
                Window {
                    versions: Some(day),
                    deleted: Some(day),
                },
            )]),
        };
        assert_eq!(
            r.window(kind_by_name("aws", "instance").unwrap()).deleted,
            Some(day)
        );
        assert_eq!(r.window(kind_by_name("aws", "vpc").unwrap()), r.default);
        assert!(r.unknown_kinds().is_empty());
        let now: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        assert_eq!(
            cutoff(now, Some(day)),
            Some("2026-11-22T00:00:00Z".parse().unwrap())
        );
        assert_eq!(cutoff(now, None), None);
    }
}
