//! The collector service: lists resources from providers and publishes the
//! changes as events, one scan per (source, kind, account, region).
//!
//! Architecture invariant: collectors never read PostgreSQL. What they last
//! published lives on the bus (the collector state bucket), so a collector can
//! run anywhere NATS and the provider are reachable.
//!
//! Architecture invariant: a failed, cancelled or partial scan publishes no
//! deletion. Deletions are published only after every page of the scope's
//! listing has been read and its events acknowledged.

pub mod aws;
pub mod diff;
pub mod scan;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use inventory_bus::{Bus, BusError, CollectDelivery};
use inventory_model::{CollectRequest, KindDef, RequestError, Scope, resolve_kinds};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use aws::AwsSource;

/// One page of a list call: the raw response as JSON, and the next page's token.
#[derive(Debug)]
pub struct RawPage {
    pub body: serde_json::Value,
    pub next: Option<String>,
}

/// A provider account as the collector sees it: who it is, where it runs, and one
/// page of a kind's listing at a time. [`AwsSource`] is the real one; benchmarks
/// and tests may bring their own.
pub trait Source: Send + Sync + 'static {
    fn account_id(&self) -> BoxFuture<'_, Result<String, CollectError>>;
    fn enabled_regions(&self) -> BoxFuture<'_, Result<Vec<String>, CollectError>>;
    fn page<'a>(
        &'a self,
        kind: &'static KindDef,
        region: Option<&'a str>,
        token: Option<String>,
        page_size: i32,
    ) -> BoxFuture<'a, Result<RawPage, CollectError>>;
}
pub use scan::ScanReport;

/// Why collecting failed. `retryable` provider errors are transient (network,
/// throttling, 5xx); the rest will fail again until something changes.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{operation} failed: {message}")]
    Provider {
        operation: String,
        message: String,
        retryable: bool,
    },
    #[error("credentials rejected: {0}")]
    Credentials(String),
    #[error("unsupported list operation {0}")]
    Unsupported(String),
    #[error("scan cancelled")]
    Cancelled,
    #[error("account {requested} is not configured (the credentials belong to {configured})")]
    UnknownAccount {
        requested: String,
        configured: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl CollectError {
    /// Stable code for replies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            CollectError::Provider { .. } => "provider_error",
            CollectError::Credentials(_) => "credentials_rejected",
            CollectError::Unsupported(_) => "unsupported_kind",
            CollectError::UnknownAccount { .. } => "unknown_account",
            CollectError::Cancelled => "cancelled",
            CollectError::Internal(_) => "internal",
            CollectError::Request(RequestError::MalformedBody(_)) => "malformed_request",
            CollectError::Request(_) => "unknown_kind",
            CollectError::Bus(_) => "bus_unavailable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Narrow regional scans to these regions (`INVENTORY_AWS_REGIONS`); `None`:
    /// every enabled region.
    pub regions: Option<Vec<String>>,
    /// Run a full collection at start and then at this interval; `None`: only on request.
    pub interval: Option<Duration>,
    /// `MaxResults` for paginated list calls.
    pub page_size: i32,
    /// Scans running at once.
    pub concurrency: usize,
}

impl Default for CollectorSettings {
    fn default() -> Self {
        CollectorSettings {
            regions: None,
            interval: Some(Duration::from_secs(15 * 60)),
            page_size: 1000,
            concurrency: 8,
        }
    }
}

/// What one collection request did.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionReport {
    pub request_id: String,
    pub scans: Vec<ScanReport>,
}

impl CollectionReport {
    pub fn failed(&self) -> usize {
        self.scans.iter().filter(|s| s.error.is_some()).count()
    }
}

/// A collection resolved into scopes, ready to run.
struct Plan {
    account_id: String,
    kinds: Vec<&'static KindDef>,
    regions: Vec<String>,
}

#[derive(Clone)]
pub struct Collector {
    bus: Bus,
    source: Arc<dyn Source>,
    settings: CollectorSettings,
    /// Cancelled when the service stops: running scans fail at their next page.
    cancel: CancellationToken,
    locks: scan::ScopeLocks,
}

impl Collector {
    pub fn new(bus: Bus, source: impl Source, settings: CollectorSettings) -> Collector {
        Collector {
            bus,
            source: Arc::new(source),
            settings,
            cancel: CancellationToken::new(),
            locks: scan::ScopeLocks::default(),
        }
    }

    async fn plan(
        &self,
        kinds: Vec<&'static KindDef>,
        request: &CollectRequest,
    ) -> Result<Plan, CollectError> {
        let account_id = self.source.account_id().await?;
        if let Some(other) = request.accounts.iter().find(|a| **a != account_id) {
            return Err(CollectError::UnknownAccount {
                requested: other.clone(),
                configured: account_id,
            });
        }
        let regions = if !kinds.iter().any(|k| k.regional) {
            Vec::new()
        } else if !request.regions.is_empty() {
            request.regions.clone()
        } else if let Some(r) = &self.settings.regions {
            r.clone()
        } else {
            self.source.enabled_regions().await?
        };
        Ok(Plan {
            account_id,
            kinds,
            regions,
        })
    }

    /// Validate a request and resolve it into scans (fails fast on bad input).
    async fn prepare(
        &self,
        source: &str,
        kind: &str,
        request: &CollectRequest,
    ) -> Result<Plan, CollectError> {
        let kinds = resolve_kinds(source, kind)?;
        self.plan(kinds, request).await
    }

    async fn execute(&self, plan: Plan, request_id: &str) -> CollectionReport {
        let ctx = scan::ScanContext {
            bus: self.bus.clone(),
            source: self.source.clone(),
            page_size: self.settings.page_size,
            request_id: request_id.into(),
            cancel: self.cancel.clone(),
            locks: self.locks.clone(),
        };
        let mut scans = Vec::new();
        // Account-wide kinds first (regions decide where the rest look), then every
        // (region, kind) as its own task, at most `concurrency` at once.
        for kind in plan.kinds.iter().filter(|k| !k.regional) {
            let scope = Scope {
                account_id: plan.account_id.clone(),
                region: None,
            };
            scans.push(scan::run(&ctx, kind, scope).await);
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(
            self.settings.concurrency.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for region in &plan.regions {
            for kind in plan.kinds.iter().copied().filter(|k| k.regional) {
                let scope = Scope {
                    account_id: plan.account_id.clone(),
                    region: Some(region.clone()),
                };
                let (ctx, permits) = (ctx.clone(), permits.clone());
                tasks.spawn(async move {
                    let _permit = permits
                        .acquire_owned()
                        .await
                        .expect("semaphore is never closed");
                    scan::run(&ctx, kind, scope).await
                });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(report) => scans.push(report),
                Err(e) => tracing::error!(request_id, error = %e, "scan task died"),
            }
        }
        CollectionReport {
            request_id: request_id.to_owned(),
            scans,
        }
    }

    /// Collect `kind` (a plural kind name or `all`) of `source` now and wait for it.
    pub async fn collect(
        &self,
        source: &str,
        kind: &str,
        request: &CollectRequest,
        request_id: &str,
    ) -> Result<CollectionReport, CollectError> {
        let plan = self.prepare(source, kind, request).await?;
        Ok(self.execute(plan, request_id).await)
    }

    /// Serve collection requests from the bus and, if configured, collect
    /// everything periodically, until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.bus.ensure_topology().await?;
        let mut inbox = self.bus.collect_requests("inventory-collectors").await?;
        tracing::info!(
            subject = self.bus.names().collect_wildcard(),
            "collector listening for collection requests"
        );
        let periodic = {
            let this = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { this.periodic(shutdown).await })
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = inbox.next() => match msg {
                    Some(delivery) => self.handle_request(delivery).await,
                    None => break,
                },
            }
        }
        // Running scans stop at their next page and record themselves as failed.
        self.cancel.cancel();
        if tokio::time::timeout(Duration::from_secs(30), periodic)
            .await
            .is_err()
        {
            tracing::warn!("periodic collection did not stop within 30s");
        }
        Ok(())
    }

    async fn periodic(&self, shutdown: CancellationToken) {
        let Some(every) = self.settings.interval else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let request_id = format!("scheduled-{}", uuid::Uuid::now_v7());
            tracing::info!(request_id, "starting scheduled full collection");
            match self
                .collect("aws", "all", &CollectRequest::default(), &request_id)
                .await
            {
                Ok(report) => tracing::info!(
                    request_id,
                    scans = report.scans.len(),
                    failed = report.failed(),
                    "scheduled collection finished"
                ),
                Err(e) => tracing::error!(request_id, error = %e, "scheduled collection failed"),
            }
        }
    }

    async fn handle_request(&self, delivery: CollectDelivery) {
        let request_id = uuid::Uuid::now_v7().to_string();
        let prepared = match CollectRequest::parse(&delivery.body) {
            Ok(request) => {
                self.prepare(&delivery.source, &delivery.kind, &request)
                    .await
            }
            Err(e) => Err(e.into()),
        };
        let reply = match &prepared {
            Ok(_) => json!({"request_id": request_id}),
            Err(e) => {
                tracing::warn!(
                    source = delivery.source, kind = delivery.kind, error = %e,
                    "rejected collection request"
                );
                json!({"error": {"code": e.code(), "message": e.to_string()}})
            }
        };
        if let Err(e) = delivery.respond(&reply).await {
            tracing::warn!(request_id, error = %e, "could not reply to collection request");
        }
        let Ok(plan) = prepared else { return };
        tracing::info!(
            request_id,
            source = delivery.source,
            kind = delivery.kind,
            regions = plan.regions.len(),
            "collection request accepted"
        );
        let this = self.clone();
        tokio::spawn(async move {
            let report = this.execute(plan, &request_id).await;
            tracing::info!(
                request_id,
                scans = report.scans.len(),
                failed = report.failed(),
                "collection request finished"
            );
        });
    }
}
