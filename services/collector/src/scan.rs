//! The scan protocol of one (source, kind, account, region) scope:
//! `scan.started`, change-only resource events, deletions, then `scan.completed`
//! or `scan.failed`. Only a completed scan publishes deletions.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use inventory_bus::Bus;
use inventory_model::{
    Envelope, ErrorCode, EventType, KindDef, SCHEMA_VERSION, Scope, content_hash_of,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::diff::{Observation, ScopeDiff};
use crate::{CallStats, CollectError, RawItem, RawPage, Source};

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
    /// Listed items the kind cannot take (no id): dead-lettered, not counted as seen.
    pub rejected: u64,
    pub pages: u64,
    /// Provider calls, retries included, and how many were throttled or retried.
    pub api_calls: u64,
    pub throttles: u64,
    pub retries: u64,
    pub duration_ms: u64,
    /// Which try of the scope within its collection this was (1: the first).
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's stable code.
    #[serde(skip)]
    pub code: Option<ErrorCode>,
    /// Whether the error is transient (the scan is worth trying again).
    #[serde(skip)]
    pub retryable: bool,
    /// Stream sequence of the scan's last event (0: none was published).
    pub last_seq: u64,
}

/// Everything a scan needs, owned, so scans run as independent tasks.
#[derive(Clone)]
pub(crate) struct ScanContext {
    pub bus: Bus,
    pub source: Arc<dyn Source>,
    pub page_size: i32,
    pub request_id: Arc<str>,
    /// Checked between pages: a cancelled scan fails (and deletes nothing).
    pub cancel: CancellationToken,
    pub locks: ScopeLocks,
    /// The task's live progress, if the scan runs for one.
    pub progress: Option<Arc<crate::tasks::TaskProgress>>,
}

/// One scan at a time per (source, kind, scope) in this process: two scans of one
/// scope would both start from the same published state and contradict each other.
#[derive(Clone, Default)]
pub(crate) struct ScopeLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl ScopeLocks {
    async fn lock(&self, kind: &KindDef, scope: &Scope) -> tokio::sync::OwnedMutexGuard<()> {
        let key = format!(
            "{}/{}/{}/{}",
            kind.source,
            kind.name,
            scope.account_id,
            scope.region.as_deref().unwrap_or("")
        );
        let lock = self
            .0
            .lock()
            .expect("scope lock map")
            .entry(key)
            .or_default()
            .clone();
        lock.lock_owned().await
    }
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
        known_from_seq: None,
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
    let trace = span.in_scope(inventory_telemetry::current_traceparent);
    let _exclusive = ctx.locks.lock(kind, &scope).await;
    let started = std::time::Instant::now();
    let result = scan(ctx, kind, &scope, &scan_id, trace.as_deref(), &mut report)
        .instrument(span.clone())
        .await;

    report.duration_ms = started.elapsed().as_millis() as u64;
    let outcome = match &result {
        Ok(()) => "completed",
        Err(CollectError::Cancelled) => "cancelled",
        Err(_) => "failed",
    };
    record(kind, &report, outcome, Some(started.elapsed()));
    // Its end is published and logged in its span, with its trace and span ids.
    async {
        if let Err(e) = result {
            let end = match e {
                CollectError::Cancelled => EventType::ScanCancelled,
                _ => EventType::ScanFailed,
            };
            let mut failed = envelope(kind, &scope, &scan_id, &ctx.request_id, end);
            failed.error = Some(e.to_string());
            match ctx.bus.publish_events(&[failed], trace.as_deref()).await {
                Ok(acks) => report.last_seq = last_seq(&acks).max(report.last_seq),
                Err(publish) => {
                    tracing::error!(scan_id, error = %publish, "could not publish the scan's end")
                }
            }
            tracing::warn!(
                scan_id, kind = kind.name, account_id = scope.account_id,
                region = scope.region.as_deref().unwrap_or(""),
                api_calls = report.api_calls, throttles = report.throttles, retries = report.retries,
                duration_ms = report.duration_ms, retryable = e.is_retryable(), error = %e,
                "scan failed"
            );
            report.retryable = e.is_retryable();
            report.code = Some(e.code());
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
                rejected = report.rejected,
                api_calls = report.api_calls,
                throttles = report.throttles,
                retries = report.retries,
                duration_ms = report.duration_ms,
                "scan completed"
            );
        }
    }
    .instrument(span)
    .await;
    if let Some(p) = &ctx.progress {
        p.scan_done(&report);
    }
    report
}

/// Count a finished scan (`inventory_scans_total`, its duration and what it
/// found); `took` is `None` for a scan that never started.
fn record(kind: &KindDef, report: &ScanReport, outcome: &str, took: Option<std::time::Duration>) {
    let m = &inventory_telemetry::metrics::METRICS;
    m.scans
        .with_label_values(&[kind.source, kind.name, &report.account_id, outcome])
        .inc();
    if let Some(took) = took {
        m.scan_duration
            .with_label_values(&[kind.source, kind.name])
            .observe(took.as_secs_f64());
    }
    for (change, n) in [
        ("created", report.created),
        ("updated", report.updated),
        ("deleted", report.deleted),
        ("unchanged", report.unchanged),
    ] {
        m.scan_resources
            .with_label_values(&[kind.source, kind.name, change])
            .inc_by(n);
    }
}

/// The highest sequence of a batch of publishes (0: none).
fn last_seq(acks: &[inventory_bus::Published]) -> u64 {
    acks.iter().map(|a| a.seq).max().unwrap_or_default()
}

/// Record a scan of a scope that could not start (its account's credentials or
/// endpoint failed before any listing): `scan.failed`, so that the scan table
/// shows it; nothing is deleted.
pub(crate) async fn fail_unstarted(
    bus: &Bus,
    kind: &'static KindDef,
    scope: &Scope,
    request_id: &str,
    error: &str,
    retryable: bool,
) -> ScanReport {
    let scan_id = uuid::Uuid::now_v7().to_string();
    let mut failed = envelope(kind, scope, &scan_id, request_id, EventType::ScanFailed);
    failed.error = Some(error.to_owned());
    let seq = match bus.publish_events(&[failed], None).await {
        Ok(acks) => last_seq(&acks),
        Err(e) => {
            tracing::error!(scan_id, error = %e, "could not publish scan.failed");
            0
        }
    };
    let report = ScanReport {
        scan_id,
        kind: kind.name.to_owned(),
        account_id: scope.account_id.clone(),
        region: scope.region.clone(),
        attempts: 1,
        error: Some(error.to_owned()),
        code: Some(ErrorCode::AccountUnreachable),
        retryable,
        last_seq: seq,
        ..Default::default()
    };
    record(kind, &report, "failed", None);
    report
}

async fn scan(
    ctx: &ScanContext,
    kind: &'static KindDef,
    scope: &Scope,
    scan_id: &str,
    trace: Option<&str>,
    report: &mut ScanReport,
) -> Result<(), CollectError> {
    let bus = &ctx.bus;
    let last_published = bus.published_state(kind.source, kind.name, scope).await?;
    let mut diff = ScopeDiff::new(last_published.resources);
    let started = envelope(
        kind,
        scope,
        scan_id,
        &ctx.request_id,
        EventType::ScanStarted,
    );
    report.last_seq = last_seq(&bus.publish_events(&[started], trace).await?);

    // Pages are sent in order as they come and their acks awaited in the
    // background, a few pages at a time; every publish is acknowledged (or has
    // failed) before the scan goes on or gives up.
    let mut in_flight = VecDeque::new();
    let listed = Listing {
        ctx,
        kind,
        scope,
        scan_id,
        trace,
        report,
        diff: &mut diff,
        in_flight: &mut in_flight,
    }
    .list_pages()
    .await;
    let mut published = Ok(());
    for task in in_flight {
        let acked = joined(task).await;
        if published.is_ok() {
            published = acked;
        }
    }
    listed?;
    published?;
    report.seen = diff.seen() as u64;

    // The listing is complete: its deletions and the completion marker go out
    // together.
    let gone = diff.into_deleted();
    let observed_at = Utc::now();
    let mut events: Vec<Envelope> = gone
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
    let mut completed = envelope(
        kind,
        scope,
        scan_id,
        &ctx.request_id,
        EventType::ScanCompleted,
    );
    completed.resources_seen = Some(report.seen);
    completed.known_from_seq = Some(last_published.known_from_seq);
    events.push(completed);
    report.last_seq = last_seq(&bus.publish_events(&events, trace).await?);
    report.deleted = gone.len() as u64;
    Ok(())
}

type PublishTask = tokio::task::JoinHandle<Result<(), CollectError>>;

/// Pages whose acks a scan awaits at once (each up to a page of events; the
/// bus lets 4096 acks be outstanding per connection).
const PAGES_IN_FLIGHT: usize = 4;

/// One page's items as the collector publishes them: hashed.
struct EncodedPage {
    observed_at: DateTime<Utc>,
    items: Vec<EncodedItem>,
    /// Items the kind cannot take.
    rejected: Vec<Rejected>,
}

struct EncodedItem {
    id: String,
    hash: String,
    payload: Vec<u8>,
}

/// A listed item the kind cannot take, and why.
struct Rejected {
    hash: String,
    payload: Vec<u8>,
    reason: String,
}

/// Hash every item of a page (its text is already what is published). An
/// item without an id is set aside with the reason: one bad item must not
/// fail the scan of its scope (which would then never publish a deletion again).
fn encode_page(
    kind: &'static KindDef,
    raw: Vec<RawItem>,
    observed_at: DateTime<Utc>,
) -> EncodedPage {
    let mut page = EncodedPage {
        observed_at,
        items: Vec::with_capacity(raw.len()),
        rejected: Vec::new(),
    };
    for item in raw {
        let payload = item.json.into_bytes();
        let hash = content_hash_of(&payload);
        match item.id {
            Some(id) => page.items.push(EncodedItem { id, hash, payload }),
            None => page.rejected.push(Rejected {
                hash,
                payload,
                reason: format!(
                    "{} listed an item without an id at {:?}",
                    kind.list.operation, kind.id
                ),
            }),
        }
    }
    page
}

/// A scan's listing in progress: where it reads, what it has seen, and the
/// page being published.
struct Listing<'a> {
    ctx: &'a ScanContext,
    kind: &'static KindDef,
    scope: &'a Scope,
    scan_id: &'a str,
    trace: Option<&'a str>,
    report: &'a mut ScanReport,
    diff: &'a mut ScopeDiff,
    /// The acks of the last pages sent, oldest first, which may still be
    /// awaited when the listing returns.
    in_flight: &'a mut VecDeque<PublishTask>,
}

impl Listing<'_> {
    /// Read every page of the listing, publishing each page's changes in page
    /// order; a page's acks are awaited while the next ones are fetched.
    async fn list_pages(&mut self) -> Result<(), CollectError> {
        let (ctx, kind) = (self.ctx, self.kind);
        let mut token = None;
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(CollectError::Cancelled);
            }
            let mut stats = CallStats::default();
            // A stop request does not wait for a slow or retrying provider call.
            let page = tokio::select! {
                page = ctx.source.page(
                    kind,
                    self.scope.region.as_deref(),
                    token.take(),
                    ctx.page_size,
                    &mut stats,
                ) => page,
                _ = ctx.cancel.cancelled() => Err(CollectError::Cancelled),
            };
            self.report.api_calls += stats.calls;
            self.report.throttles += stats.throttles;
            self.report.retries += stats.retries;
            let RawPage { items, next } = page?;
            self.report.pages += 1;
            self.publish_page(encode_page(kind, items, Utc::now()))
                .await?;
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(())
    }

    /// Compare a page's items with what was last published and send the
    /// changes (in page order: sends are not concurrent); with
    /// [`PAGES_IN_FLIGHT`] pages unacknowledged, waits for the oldest first.
    async fn publish_page(&mut self, page: EncodedPage) -> Result<(), CollectError> {
        let ctx = self.ctx;
        if let Some(p) = &ctx.progress {
            p.seen(page.items.len() as u64);
        }
        let mut events: Vec<(Envelope, Bytes)> = Vec::new();
        for item in page.rejected {
            tracing::warn!(
                scan_id = self.scan_id,
                kind = self.kind.name,
                reason = item.reason,
                "listed item rejected; it is dead-lettered and the scan goes on"
            );
            self.report.rejected += 1;
            let mut env = envelope(
                self.kind,
                self.scope,
                self.scan_id,
                &ctx.request_id,
                EventType::ItemRejected,
            );
            env.observed_at = page.observed_at;
            env.content_hash = Some(item.hash);
            env.error = Some(item.reason);
            let body = Bytes::from(env.to_bytes_with_payload(&item.payload));
            events.push((env, body));
        }
        for item in page.items {
            let event_type = match self.diff.observe(&item.id, &item.hash) {
                Observation::Created => {
                    self.report.created += 1;
                    EventType::ResourceCreated
                }
                Observation::Updated => {
                    self.report.updated += 1;
                    EventType::ResourceUpdated
                }
                Observation::Unchanged => {
                    self.report.unchanged += 1;
                    continue;
                }
                Observation::Repeated => continue,
            };
            let mut env = envelope(
                self.kind,
                self.scope,
                self.scan_id,
                &ctx.request_id,
                event_type,
            );
            env.observed_at = page.observed_at;
            env.key = Some(item.id);
            env.content_hash = Some(item.hash);
            let body = Bytes::from(env.to_bytes_with_payload(&item.payload));
            events.push((env, body));
        }
        if self.in_flight.len() >= PAGES_IN_FLIGHT {
            let oldest = self.in_flight.pop_front().expect("pages in flight");
            joined(oldest).await?;
        }
        if !events.is_empty() {
            let span = tracing::info_span!("publish", events = events.len());
            let sent = ctx
                .bus
                .send_encoded(&events, self.trace)
                .instrument(span.clone())
                .await?;
            self.in_flight.push_back(tokio::spawn(
                async move {
                    sent.acked().await?;
                    Ok(())
                }
                .instrument(span),
            ));
        }
        Ok(())
    }
}

/// Wait for a page's publish or encoding task; a task that died is a bug,
/// reported as such.
async fn joined<T>(
    task: tokio::task::JoinHandle<Result<T, CollectError>>,
) -> Result<T, CollectError> {
    task.await
        .map_err(|e| CollectError::Internal(format!("page task failed: {e}")))?
}
