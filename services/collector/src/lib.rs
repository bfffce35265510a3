//! The collector service: lists resources from providers and publishes the
//! changes as events, one scan per (source, kind, account, region).
//!
//! Architecture invariant: collectors never read PostgreSQL. What they last
//! published is read back from the event stream, so a collector can
//! run anywhere NATS and the provider are reachable.
//!
//! Architecture invariant: a failed, cancelled or partial scan publishes no
//! deletion. Deletions are published only after every page of the scope's
//! listing has been read and its events acknowledged.

pub mod diff;
pub mod pacing;
mod provider;
pub mod scan;
pub mod tasks;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use inventory_bus::{Bus, BusError};
use inventory_model::{CollectRequest, ErrorCode, KindDef, RequestError, ScheduleDef, Scope};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use pacing::{CallKey, CallStats, Failure, Pacer, Pacing};
pub use provider::Provider;
pub use tasks::TaskSettings;

/// One listed item: its natural id (where its kind reads it; `None`: it has
/// none, and the scan rejects it) and its raw payload as canonical JSON text
/// (object keys sorted, compact), as the provider returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    pub id: Option<String>,
    pub json: String,
}

/// One page of a list call: its items, and the next page's token.
#[derive(Debug, Default)]
pub struct RawPage {
    pub items: Vec<RawItem>,
    pub next: Option<String>,
}

/// A provider account as the collector sees it: which provider, who it is,
/// where it runs, and one page of a kind's listing at a time. Each source crate
/// (`services/sources/<provider>/`) has its own; benchmarks and tests may bring
/// theirs.
pub trait Source: Send + Sync + 'static {
    /// The provider's name: the `source` of the kinds this account lists.
    fn provider(&self) -> &'static str;
    fn account_id(&self) -> BoxFuture<'_, Result<String, CollectError>>;
    fn enabled_regions(&self) -> BoxFuture<'_, Result<Vec<String>, CollectError>>;
    /// One page; what the calls cost (failed ones too) is added to `stats`.
    fn page<'a>(
        &'a self,
        kind: &'static KindDef,
        region: Option<&'a str>,
        token: Option<String>,
        page_size: i32,
        stats: &'a mut CallStats,
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
    #[error("account {requested} is not configured (configured: {configured})")]
    UnknownAccount {
        requested: String,
        configured: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The request names a source no configured account belongs to.
    #[error("no account of source {0} is configured")]
    NoAccounts(String),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Why a collector's control plane ended before it was shut down.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("the collection request subscription ended")]
    SubscriptionEnded,
    #[error("the task worker panicked: {0}")]
    Panicked(String),
}

impl CollectError {
    /// Whether trying the same scan again later may succeed (throttling,
    /// outages, an unreachable bus), as opposed to denied credentials or bad input.
    pub fn is_retryable(&self) -> bool {
        match self {
            CollectError::Provider { retryable, .. } => *retryable,
            CollectError::Bus(_) => true,
            _ => false,
        }
    }

    /// Stable code for replies and logs.
    pub fn code(&self) -> ErrorCode {
        match self {
            CollectError::Provider { .. } => ErrorCode::ProviderError,
            CollectError::Credentials(_) => ErrorCode::CredentialsRejected,
            CollectError::Unsupported(_) => ErrorCode::UnsupportedKind,
            CollectError::UnknownAccount { .. } => ErrorCode::UnknownAccount,
            CollectError::Cancelled => ErrorCode::Cancelled,
            CollectError::Internal(_) => ErrorCode::Internal,
            CollectError::Config(_) => ErrorCode::InvalidConfiguration,
            CollectError::NoAccounts(_) => ErrorCode::UnknownAccount,
            CollectError::Request(e) => e.code(),
            CollectError::Bus(_) => ErrorCode::BusUnavailable,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Regions of the account of [`Collector::new`] (for one account; accounts
    /// of the configuration carry their own); `None`:
    /// every enabled region.
    pub regions: Option<Vec<String>>,
    /// `MaxResults` for paginated list calls.
    pub page_size: i32,
    /// Scans running at once, across accounts; each account gets at most its
    /// share (`concurrency / accounts`, at least one).
    pub concurrency: usize,
    /// A scan that failed for a transient reason is tried again this many times
    /// within its collection, after [`CollectorSettings::retry_delay`].
    pub scan_retries: u32,
    pub retry_delay: Duration,
    /// How queued tasks are run.
    pub tasks: TaskSettings,
    /// Periodic collections; every instance keeps the shared set in step with
    /// its own, and each period fires once across all instances.
    pub schedules: Vec<ScheduleDef>,
    /// This collector's name in task records.
    pub worker: String,
}

impl Default for CollectorSettings {
    fn default() -> Self {
        CollectorSettings {
            regions: None,
            page_size: 1000,
            concurrency: 8,
            scan_retries: 2,
            retry_delay: Duration::from_secs(30),
            tasks: TaskSettings::default(),
            schedules: Vec::new(),
            worker: format!(
                "collector-{}-{}",
                std::process::id(),
                &uuid::Uuid::now_v7().simple().to_string()[24..]
            ),
        }
    }
}

/// One account the collector covers.
#[derive(Clone)]
pub struct Account {
    pub source: Arc<dyn Source>,
    /// The configured account id, if any (checked against the resolved one by
    /// the source); otherwise the credential's name. Used in reports and logs.
    pub label: String,
    /// Whether `label` is the account id (requests can select it unresolved).
    pub label_is_id: bool,
    /// Regions to scan; `None`: every enabled region but `excluded_regions`.
    pub regions: Option<Vec<String>>,
    pub excluded_regions: Vec<String>,
}

/// An account that could not be collected at all (credentials, region listing).
#[derive(Debug, Clone, Serialize)]
pub struct AccountFailure {
    pub account: String,
    pub code: ErrorCode,
    pub error: String,
    /// Whether trying again later may succeed.
    #[serde(skip)]
    pub retryable: bool,
}

/// What one collection request did.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionReport {
    pub request_id: String,
    /// The last attempt of every scan.
    pub scans: Vec<ScanReport>,
    /// Accounts none of whose scans could run.
    pub accounts_failed: Vec<AccountFailure>,
}

impl CollectionReport {
    /// Scans that failed (after their retries) and accounts that failed whole.
    pub fn failed(&self) -> usize {
        self.scans.iter().filter(|s| s.error.is_some()).count() + self.accounts_failed.len()
    }
}

/// A collection resolved into scopes, ready to run.
struct Plan {
    accounts: Vec<AccountPlan>,
    failed: Vec<AccountFailure>,
    /// The scopes of failed accounts that can be named without the provider
    /// (configured id; explicit regions): each gets a `scan.failed`.
    unreachable: Vec<(&'static KindDef, Scope, String, bool)>,
}

struct AccountPlan {
    source: Arc<dyn Source>,
    account_id: String,
    /// The request's kinds of this account's provider.
    kinds: Vec<&'static KindDef>,
    regions: Vec<String>,
}

#[derive(Clone)]
pub struct Collector {
    bus: Bus,
    accounts: Arc<[Account]>,
    settings: CollectorSettings,
    /// Cancelled when the service stops: running scans fail at their next page.
    cancel: CancellationToken,
    locks: scan::ScopeLocks,
    /// The regions enabled per account (by label), and when they were listed.
    regions: Arc<std::sync::Mutex<std::collections::HashMap<String, ListedRegions>>>,
}

/// An account's enabled regions and when they were listed.
type ListedRegions = (std::time::Instant, Vec<String>);

impl Collector {
    /// A collector of one account, scanning `settings.regions` (or every
    /// enabled region).
    pub fn new(bus: Bus, source: impl Source, settings: CollectorSettings) -> Collector {
        let account = Account {
            source: Arc::new(source),
            label: "default".into(),
            label_is_id: false,
            regions: settings.regions.clone(),
            excluded_regions: Vec::new(),
        };
        Collector::with_accounts(bus, vec![account], settings)
    }

    /// A collector of several accounts.
    pub fn with_accounts(
        bus: Bus,
        accounts: Vec<Account>,
        settings: CollectorSettings,
    ) -> Collector {
        Collector {
            bus,
            accounts: accounts.into(),
            settings,
            cancel: CancellationToken::new(),
            locks: scan::ScopeLocks::default(),
            regions: Arc::default(),
        }
    }

    /// The regions this collector covers for an account: its configured ones,
    /// or every region enabled for it but the excluded (asked of the provider
    /// at most every [`REGIONS_TTL`]).
    async fn account_regions(&self, account: &Account) -> Result<Vec<String>, CollectError> {
        if let Some(r) = &account.regions {
            return Ok(r.clone());
        }
        let cached = self
            .regions
            .lock()
            .expect("region cache")
            .get(&account.label)
            .filter(|(at, _)| at.elapsed() < REGIONS_TTL)
            .map(|(_, r)| r.clone());
        if let Some(regions) = cached {
            return Ok(regions);
        }
        let mut enabled = account.source.enabled_regions().await?;
        enabled.retain(|r| !account.excluded_regions.contains(r));
        self.regions.lock().expect("region cache").insert(
            account.label.clone(),
            (std::time::Instant::now(), enabled.clone()),
        );
        Ok(enabled)
    }

    /// Resolve one account: its id, then its regions (only if a kind needs
    /// them): the requested ones it has, or all it has.
    async fn plan_account(
        &self,
        account: &Account,
        kinds: &[&'static KindDef],
        request: &CollectRequest,
    ) -> Result<AccountPlan, CollectError> {
        let kinds = kinds_of(account, kinds);
        let account_id = account.source.account_id().await?;
        let mut regions = if kinds.iter().any(|k| k.regional()) {
            self.account_regions(account).await?
        } else {
            Vec::new()
        };
        if !request.regions.is_empty() {
            regions.retain(|r| request.regions.contains(r));
        }
        Ok(AccountPlan {
            source: account.source.clone(),
            account_id,
            kinds,
            regions,
        })
    }

    /// The accounts a request selects: those of a provider some of its kinds
    /// belong to (an account whose configured id the request leaves out is
    /// not resolved).
    fn selected<'a>(
        &'a self,
        request: &'a CollectRequest,
        kinds: &'a [&'static KindDef],
    ) -> impl Iterator<Item = &'a Account> {
        self.accounts.iter().filter(move |a| {
            !kinds_of(a, kinds).is_empty()
                && (request.accounts.is_empty()
                    || !a.label_is_id
                    || request.accounts.contains(&a.label))
        })
    }

    /// Check a request's regions against what the selected accounts have, so
    /// that a request that can never succeed is refused at intake. Accounts
    /// whose regions cannot be listed now are given the benefit of the doubt
    /// (the run checks again).
    pub async fn check_regions(&self, request: &CollectRequest) -> Result<(), RequestError> {
        let Ok(kinds) = request.kinds() else {
            return Ok(());
        };
        if request.regions.is_empty() || !kinds.iter().any(|k| k.regional()) {
            return Ok(());
        }
        let mut known = Vec::new();
        for account in self.selected(request, &kinds) {
            if !kinds_of(account, &kinds).iter().any(|k| k.regional()) {
                continue;
            }
            match self.account_regions(account).await {
                Ok(regions) => known.push((account.label.clone(), regions)),
                Err(e) => {
                    tracing::warn!(account = account.label, error = %e, "cannot list the account's regions; the request's regions are checked when it runs");
                    return Ok(());
                }
            }
        }
        let unknown: Vec<&String> = request
            .regions
            .iter()
            .filter(|r| !known.iter().any(|(_, regions)| regions.contains(r)))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(RequestError::UnknownRegion(unknown_regions(
            &unknown, &known,
        )))
    }

    async fn plan(
        &self,
        kinds: Vec<&'static KindDef>,
        request: &CollectRequest,
    ) -> Result<Plan, CollectError> {
        let selected: Vec<&Account> = self.selected(request, &kinds).collect();
        if selected.is_empty() && request.accounts.is_empty() {
            let sources: Vec<&str> = kinds.iter().map(|k| k.source).collect();
            return Err(CollectError::NoAccounts(
                sources.first().copied().unwrap_or("").to_owned(),
            ));
        }
        let resolved = futures::future::join_all(
            selected
                .iter()
                .map(|a| self.plan_account(a, &kinds, request)),
        )
        .await;
        let mut accounts = Vec::new();
        let mut failed = Vec::new();
        let mut first_error = None;
        let mut unreachable = Vec::new();
        let mut known: Vec<String> = self
            .accounts
            .iter()
            .filter(|a| a.label_is_id)
            .map(|a| a.label.clone())
            .collect();
        for (account, result) in selected.iter().zip(resolved) {
            match result {
                Ok(plan) => {
                    known.push(plan.account_id.clone());
                    if request.accounts.is_empty() || request.accounts.contains(&plan.account_id) {
                        accounts.push(plan)
                    }
                }
                Err(e) => {
                    tracing::error!(
                        account = account.label, code = %e.code(), error = %e,
                        "account cannot be collected"
                    );
                    if account.label_is_id {
                        let scope = |region: Option<&String>| Scope {
                            account_id: account.label.clone(),
                            region: region.cloned(),
                        };
                        let regions: &[String] = account.regions.as_deref().unwrap_or_default();
                        for kind in kinds_of(account, &kinds) {
                            let scopes: Vec<Scope> = if kind.regional() {
                                regions.iter().map(|r| scope(Some(r))).collect()
                            } else {
                                vec![scope(None)]
                            };
                            unreachable.extend(
                                scopes
                                    .into_iter()
                                    .map(|s| (kind, s, e.to_string(), e.is_retryable())),
                            );
                        }
                    }
                    failed.push(AccountFailure {
                        account: account.label.clone(),
                        code: e.code(),
                        error: e.to_string(),
                        retryable: e.is_retryable(),
                    });
                    first_error.get_or_insert(e);
                }
            }
        }
        // With a single account, its failure is the request's error.
        if let (1, Some(e)) = (self.accounts.len(), first_error) {
            return Err(e);
        }
        // Requested regions that no account has can never be collected.
        let regional: Vec<&AccountPlan> = accounts
            .iter()
            .filter(|a| a.kinds.iter().any(|k| k.regional()))
            .collect();
        if !request.regions.is_empty()
            && !regional.is_empty()
            && regional.iter().all(|a| a.regions.is_empty())
        {
            let mut known = Vec::new();
            for account in &selected {
                if let Ok(regions) = self.account_regions(account).await {
                    known.push((account.label.clone(), regions));
                }
            }
            let requested: Vec<&String> = request.regions.iter().collect();
            return Err(RequestError::UnknownRegion(unknown_regions(&requested, &known)).into());
        }
        // Every requested account must be known (unless one could not be resolved).
        if failed.is_empty()
            && let Some(unknown) = request
                .accounts
                .iter()
                .find(|r| !known.contains(r) && !accounts.iter().any(|a| a.account_id == **r))
        {
            return Err(CollectError::UnknownAccount {
                requested: unknown.clone(),
                configured: known.join(", "),
            });
        }
        Ok(Plan {
            accounts,
            failed,
            unreachable,
        })
    }

    /// Validate a request and resolve it into scans (fails fast on bad input).
    async fn prepare(&self, request: &CollectRequest) -> Result<Plan, CollectError> {
        self.plan(request.kinds()?, request).await
    }

    /// Run a plan's scans under `cancel`, reporting to `progress` if given.
    async fn execute(
        &self,
        plan: Plan,
        request_id: &str,
        cancel: CancellationToken,
        progress: Option<Arc<tasks::TaskProgress>>,
    ) -> CollectionReport {
        let accounts = plan.accounts.len().max(1);
        let concurrency = self.settings.concurrency.max(1);
        // Every account gets its share of the scan slots, so a slow or throttled
        // account never holds more than that.
        let share = concurrency.div_ceil(accounts);
        let global = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let mut planned = 0;
        for account in plan.accounts {
            let ctx = scan::ScanContext {
                bus: self.bus.clone(),
                source: account.source.clone(),
                page_size: self.settings.page_size,
                request_id: request_id.into(),
                cancel: cancel.clone(),
                locks: self.locks.clone(),
                progress: progress.clone(),
            };
            let scopes: Vec<(&'static KindDef, Scope)> = account
                .kinds
                .iter()
                .filter(|k| !k.regional())
                .map(|k| {
                    (
                        *k,
                        Scope {
                            account_id: account.account_id.clone(),
                            region: None,
                        },
                    )
                })
                .chain(account.regions.iter().flat_map(|region| {
                    account.kinds.iter().filter(|k| k.regional()).map(|k| {
                        (
                            *k,
                            Scope {
                                account_id: account.account_id.clone(),
                                region: Some(region.clone()),
                            },
                        )
                    })
                }))
                .collect();
            let (global, settings) = (global.clone(), self.settings.clone());
            planned += scopes.len();
            // In the span of the task (or request), so its scans are in its trace.
            tasks.spawn(
                async move { run_account(ctx, scopes, global, share, settings).await }
                    .in_current_span(),
            );
        }
        if let Some(p) = &progress {
            p.planned((planned + plan.unreachable.len()) as u64);
        }
        let mut scans = Vec::new();
        for (kind, scope, error, retryable) in &plan.unreachable {
            let report =
                scan::fail_unstarted(&self.bus, kind, scope, request_id, error, *retryable).await;
            if let Some(p) = &progress {
                p.scan_done(&report);
            }
            scans.push(report);
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(reports) => scans.extend(reports),
                Err(e) => tracing::error!(request_id, error = %e, "account task died"),
            }
        }
        CollectionReport {
            request_id: request_id.to_owned(),
            scans,
            accounts_failed: plan.failed,
        }
    }

    /// Collect what `request` names now and wait for it.
    pub async fn collect(
        &self,
        request: &CollectRequest,
        request_id: &str,
    ) -> Result<CollectionReport, CollectError> {
        let plan = self.prepare(request).await?;
        Ok(self
            .execute(plan, request_id, self.cancel.child_token(), None)
            .await)
    }

    /// Serve the control plane until `shutdown` is cancelled: take collection
    /// requests into the task queue, run queued tasks, and fire schedules.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunError> {
        self.bus.ensure_topology().await?;
        self.bus.sync_schedules(&self.settings.schedules).await?;
        let mut inbox = self.bus.collect_requests("inventory-collectors").await?;
        tracing::info!(
            subject = self.bus.names().collect_wildcard(),
            worker = self.settings.worker,
            schedules = self.settings.schedules.len(),
            "collector listening for collection requests and tasks"
        );
        let mut work = tokio::spawn(self.clone().work(shutdown.clone()));
        let schedules = tokio::spawn(self.clone().fire_schedules(shutdown.clone()));
        let result = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                r = &mut work => break match r {
                    Ok(r) => r.map_err(RunError::from),
                    Err(e) => Err(RunError::Panicked(e.to_string())),
                },
                msg = inbox.next() => match msg {
                    Some(delivery) => self.intake(delivery).await,
                    None => break Err(RunError::SubscriptionEnded),
                },
            }
        };
        // Running scans stop at their next page; their tasks go back to the queue.
        self.cancel.cancel();
        shutdown.cancel();
        // Scans stop at once (provider calls in flight are dropped) and record
        // their end; a task still running after this is redelivered to another
        // collector once its ack wait passes.
        if !work.is_finished() && tokio::time::timeout(STOP_WAIT, &mut work).await.is_err() {
            tracing::warn!(wait = ?STOP_WAIT, "running tasks did not stop in time");
        }
        let _ = schedules.await;
        result
    }
}

/// The kinds of `kinds` that `account`'s provider lists.
fn kinds_of(account: &Account, kinds: &[&'static KindDef]) -> Vec<&'static KindDef> {
    let provider = account.source.provider();
    kinds
        .iter()
        .copied()
        .filter(|k| k.source == provider)
        .collect()
}

/// How long the regions enabled for an account are taken as known.
const REGIONS_TTL: Duration = Duration::from_secs(300);

/// "region "x" is not one of the regions collected for account A (r1, r2) …"
fn unknown_regions(unknown: &[&String], known: &[(String, Vec<String>)]) -> String {
    let unknown: Vec<String> = unknown
        .iter()
        .map(|r| inventory_model::text::quoted(r))
        .collect();
    let known: Vec<String> = known
        .iter()
        .map(|(account, regions)| format!("account {account}: {}", regions.join(", ")))
        .collect();
    format!(
        "unknown region {}; the regions collected are {}",
        unknown.join(", "),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join("; ")
        }
    )
}

/// How long a stopping collector waits for its running tasks to hand back.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// Run one account's scans: account-wide kinds first (regions decide where the
/// rest look), then every (region, kind) at most `share` at once; scans that
/// failed for a transient reason are tried again after a delay.
async fn run_account(
    ctx: scan::ScanContext,
    mut scopes: Vec<(&'static KindDef, Scope)>,
    global: Arc<tokio::sync::Semaphore>,
    share: usize,
    settings: CollectorSettings,
) -> Vec<ScanReport> {
    let own = Arc::new(tokio::sync::Semaphore::new(share.max(1)));
    let mut done = Vec::new();
    for round in 0..=settings.scan_retries {
        if round > 0 {
            tokio::select! {
                _ = ctx.cancel.cancelled() => {}
                _ = tokio::time::sleep(settings.retry_delay) => {}
            }
        }
        let (wide, regional): (Vec<_>, Vec<_>) = scopes.drain(..).partition(|(k, _)| !k.regional());
        let mut reports = Vec::new();
        for (kind, scope) in wide {
            let _slot = global.clone().acquire_owned().await.expect("never closed");
            reports.push((kind, scan::run(&ctx, kind, scope).await));
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (kind, scope) in regional {
            let (ctx, own, global) = (ctx.clone(), own.clone(), global.clone());
            tasks.spawn(
                async move {
                    let _own = own.acquire_owned().await.expect("never closed");
                    let _slot = global.acquire_owned().await.expect("never closed");
                    (kind, scan::run(&ctx, kind, scope).await)
                }
                .in_current_span(),
            );
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(report) => reports.push(report),
                Err(e) => tracing::error!(error = %e, "scan task died"),
            }
        }
        for (kind, mut report) in reports {
            report.attempts = round + 1;
            if report.retryable && round < settings.scan_retries && !ctx.cancel.is_cancelled() {
                let scope = Scope {
                    account_id: report.account_id.clone(),
                    region: report.region.clone(),
                };
                scopes.push((kind, scope));
                continue;
            }
            done.push(report);
        }
        if scopes.is_empty() {
            break;
        }
        tracing::info!(
            account_id = scopes[0].1.account_id,
            scans = scopes.len(),
            retry_in = ?settings.retry_delay,
            "retrying failed scans"
        );
    }
    done
}
