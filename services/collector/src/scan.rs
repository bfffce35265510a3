//! The scan protocol of one (source, kind, account, region) scope:
//! `scan.started`, change-only resource events, deletions, then `scan.completed`
//! or `scan.failed`. Only a completed scan publishes deletions.

use std::sync::Arc;

use chrono::Utc;
use inventory_bus::{Bus, StateEntry};
use inventory_model::{Envelope, EventType, KindDef, SCHEMA_VERSION, Scope, content_hash};
use serde::Serialize;
use tracing::Instrument;

use crate::CollectError;
use crate::aws::AwsSource;
use crate::diff::{Observation, ScopeDiff};

/// What one scan did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ScanReport {
    pub scan_id: String,
    pub kind: String,
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub seen: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub pages: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything a scan needs, owned, so scans run as independent tasks.
#[derive(Clone)]
pub(crate) struct ScanContext {
    pub bus: Bus,
    pub aws: Arc<AwsSource>,
    pub page_size: i32,
    pub request_id: Arc<str>,
}

fn envelope(
    kind: &KindDef,
    scope: &Scope,
    scan_id: &str,
    request_id: &str,
    event_type: EventType,
) -> Envelope {
    Envelope {
        event_type,
        schema_version: SCHEMA_VERSION,
        source: kind.source.to_owned(),
        kind: kind.name.to_owned(),
        scope: scope.clone(),
        key: None,
        observed_at: Utc::now(),
        scan_id: scan_id.to_owned(),
        request_id: Some(request_id.to_owned()),
        content_hash: None,
        payload: None,
        resources_seen: None,
        error: None,
    }
}

/// Run one scan. On failure after `scan.started`, publishes `scan.failed` (best
/// effort) and returns the report with the error; nothing is deleted.
pub(crate) async fn run(ctx: &ScanContext, kind: &'static KindDef, scope: Scope) -> ScanReport {
    let scan_id = uuid::Uuid::now_v7().to_string();
    let mut report = ScanReport {
        scan_id: scan_id.clone(),
        kind: kind.name.to_owned(),
        account_id: scope.account_id.clone(),
        region: scope.region.clone(),
        ..Default::default()
    };
    let span = tracing::info_span!(
        "scan",
        scan_id,
        kind = kind.name,
        account_id = scope.account_id,
        region = scope.region.as_deref().unwrap_or(""),
        request_id = &*ctx.request_id,
    );
    let result = scan(ctx, kind, &scope, &scan_id, &mut report)
        .instrument(span)
        .await;
    if let Err(e) = result {
        let mut failed = envelope(
            kind,
            &scope,
            &scan_id,
            &ctx.request_id,
            EventType::ScanFailed,
        );
        failed.error = Some(e.to_string());
        if let Err(publish) = ctx.bus.publish_events(&[failed], None).await {
            tracing::error!(scan_id, error = %publish, "could not publish scan.failed");
        }
        tracing::warn!(
            scan_id, kind = kind.name, account_id = scope.account_id,
            region = scope.region.as_deref().unwrap_or(""), error = %e, "scan failed"
        );
        report.error = Some(e.to_string());
    } else {
        tracing::info!(
            scan_id,
            kind = kind.name,
            account_id = scope.account_id,
            region = scope.region.as_deref().unwrap_or(""),
            seen = report.seen,
            created = report.created,
            updated = report.updated,
            deleted = report.deleted,
            "scan completed"
        );
    }
    report
}

async fn scan(
    ctx: &ScanContext,
    kind: &'static KindDef,
    scope: &Scope,
    scan_id: &str,
    report: &mut ScanReport,
) -> Result<(), CollectError> {
    let bus = &ctx.bus;
    let trace = inventory_telemetry::current_traceparent();
    let trace = trace.as_deref();
    let mut diff = ScopeDiff::new(bus.load_state(kind.source, kind.name, scope).await?);
    let started = envelope(
        kind,
        scope,
        scan_id,
        &ctx.request_id,
        EventType::ScanStarted,
    );
    bus.publish_events(&[started], trace).await?;

    let mut token = None;
    loop {
        let page = ctx
            .aws
            .page(kind, scope.region.as_deref(), token.take(), ctx.page_size)
            .await?;
        report.pages += 1;
        let observed_at = Utc::now();
        let mut events = Vec::new();
        let mut entries = Vec::new();
        for item in kind.items(&page.body) {
            let Some(id) = kind.id_of(item) else {
                return Err(CollectError::Provider {
                    operation: kind.list.operation.to_owned(),
                    message: format!("an item has no id at {:?}", kind.id),
                    retryable: false,
                });
            };
            let hash = content_hash(item);
            let event_type = match diff.observe(&id, &hash) {
                Observation::Created => {
                    report.created += 1;
                    EventType::ResourceCreated
                }
                Observation::Updated => {
                    report.updated += 1;
                    EventType::ResourceUpdated
                }
                Observation::Unchanged => {
                    report.unchanged += 1;
                    continue;
                }
                Observation::Repeated => continue,
            };
            let mut env = envelope(kind, scope, scan_id, &ctx.request_id, event_type);
            env.observed_at = observed_at;
            env.key = Some(id.clone());
            env.content_hash = Some(hash.clone());
            env.payload = Some(item.clone());
            events.push(env);
            entries.push(StateEntry { id, hash });
        }
        if !events.is_empty() {
            bus.publish_events(&events, trace).await?;
            bus.put_state(kind.source, kind.name, scope, &entries)
                .await?;
        }
        match page.next {
            Some(next) if kind.list.paginated => token = Some(next),
            _ => break,
        }
    }
    report.seen = diff.seen() as u64;

    let gone = diff.into_deleted();
    if !gone.is_empty() {
        let observed_at = Utc::now();
        let events: Vec<Envelope> = gone
            .iter()
            .map(|(id, hash)| {
                let mut env = envelope(
                    kind,
                    scope,
                    scan_id,
                    &ctx.request_id,
                    EventType::ResourceDeleted,
                );
                env.observed_at = observed_at;
                env.key = Some(id.clone());
                env.content_hash = Some(hash.clone());
                env
            })
            .collect();
        bus.publish_events(&events, trace).await?;
        let ids: Vec<String> = gone.into_iter().map(|(id, _)| id).collect();
        bus.delete_state(kind.source, kind.name, scope, &ids)
            .await?;
        report.deleted = ids.len() as u64;
    }
    let mut completed = envelope(
        kind,
        scope,
        scan_id,
        &ctx.request_id,
        EventType::ScanCompleted,
    );
    completed.resources_seen = Some(report.seen);
    bus.publish_events(&[completed], trace).await?;
    Ok(())
}
