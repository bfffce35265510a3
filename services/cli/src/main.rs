//! `inventory`: one binary that runs the services, applies migrations and sends
//! ad-hoc collection requests. Thin glue over the service crates.

mod config;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use inventory_api::{ApiServer, ApiState, MetricsServer};
use inventory_bus::{Bus, Reach};
use inventory_collector::{Collector, CollectorSettings};
use inventory_projector::housekeeping::run_housekeeping;
use inventory_projector::notify::run_notifier;
use inventory_projector::{Projector, ProjectorSettings};
use inventory_store::Store;
use inventory_telemetry::{LogFormat, Telemetry, Traces};
use tokio_util::sync::CancellationToken;

use config::Config;

mod replay;
mod supervise;
mod tasks;

use supervise::Services;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "inventory",
    version,
    about = "Cloud and infrastructure inventory"
)]
struct Cli {
    /// YAML configuration file.
    #[arg(long, global = true, env = "INVENTORY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process (collector, projector, api).
    Up,
    /// Run the collector: serve collection requests and collect periodically.
    Collector,
    /// Run the projector: fold the event stream into PostgreSQL.
    Projector,
    /// Run the REST API.
    Api,
    /// Apply database migrations.
    Migrate,
    /// Request a collection (queued as a task) and print the reply; `--wait`
    /// follows it to its end.
    Collect(tasks::CollectArgs),
    /// List, inspect, cancel, delete and re-drive collection tasks.
    #[command(subcommand)]
    Tasks(tasks::TasksCommand),
    /// The periodic collections.
    #[command(subcommand)]
    Schedules(tasks::SchedulesCommand),
    /// Rebuild projections from the event stream alone, into a schema of their own.
    Replay(replay::ReplayArgs),
    /// Checksums of every projection table; with two schemas, where they differ.
    Verify {
        /// Schema to check (repeat for two; none: the schema the API serves).
        #[arg(long = "schema")]
        schemas: Vec<String>,
    },
    /// Print the resource kinds: tables, keys, columns and links (docs/kinds.md).
    Kinds,
    /// Print the SQL of the catalogue's tables: the next `migrations/V<n>__catalogue.sql`.
    Schema,
}

impl Command {
    /// Services log what they do (`info`); commands a person runs print their
    /// result and log only warnings and errors, unless `RUST_LOG` says otherwise.
    /// The service a process is, for its spans: a service command's name,
    /// `cli` for commands a person runs.
    fn name(&self) -> &'static str {
        match self {
            Command::Up => "up",
            Command::Collector => "collector",
            Command::Projector => "projector",
            Command::Api => "api",
            _ => "cli",
        }
    }

    fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Up | Command::Collector | Command::Projector | Command::Api => "info",
            _ => "warn,async_nats=error",
        }
    }
}

/// Logs, and spans exported over OTLP if `OTEL_EXPORTER_OTLP_ENDPOINT` is set
/// (service name `inventory-<command>` unless `OTEL_SERVICE_NAME` says).
fn init_tracing(config: &Config, command: &Command) -> anyhow::Result<Telemetry> {
    let format = match config.log.format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let traces = Traces::from_env().context("invalid OTEL_EXPORTER_OTLP settings")?;
    let service = format!("inventory-{}", command.name());
    inventory_telemetry::init(
        format,
        command.default_log_filter(),
        false,
        &service,
        &traces,
    )
    .context("failed to set up logging")
}

/// The bus of a service: a server that is not up yet is waited for.
async fn connect_bus(config: &Config) -> anyhow::Result<Bus> {
    Ok(Bus::connect(&config.nats.url, &config.nats.prefix).await?)
}

/// The bus of a command: a server that cannot be reached fails it at once.
async fn connect_client(config: &Config) -> anyhow::Result<Bus> {
    let reach = Reach::FailAfter(std::time::Duration::from_secs(3));
    Ok(Bus::connect_with(&config.nats.url, &config.nats.prefix, reach).await?)
}

/// How long services get to stop after a shutdown request (Ctrl-C).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

fn connect_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database.url, config.database.max_connections).with_context(|| {
        format!(
            "failed to set up the database pool for {}",
            config.database_url_redacted()
        )
    })
}

async fn collector(config: &Config, bus: Bus) -> anyhow::Result<Collector> {
    let settings = CollectorSettings {
        page_size: config.collector.page_size,
        concurrency: config.collector.concurrency,
        scan_retries: config.collector.scan_retries,
        retry_delay: config.retry_delay()?,
        tasks: config.tasks.clone(),
        schedules: config.schedules()?,
        ..Default::default()
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut accounts = Vec::new();
    for provider in inventory_sources::providers() {
        let section = config.source(provider.name());
        let of = provider
            .accounts(&section, &env)
            .await
            .with_context(|| format!("invalid {} accounts", provider.name()))?;
        tracing::info!(
            source = provider.name(),
            accounts = ?of.iter().map(|a| a.label.as_str()).collect::<Vec<_>>(),
            "source configured"
        );
        accounts.extend(of);
    }
    tracing::info!(
        schedules = ?settings.schedules.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        "collector configured"
    );
    Ok(Collector::with_accounts(bus, accounts, settings))
}

/// The store of the schema the API serves (`inventory replay --switch`): where
/// a starting projector continues.
async fn serving_store(config: &Config) -> anyhow::Result<Store> {
    let base = connect_store(config)?;
    let schema = base
        .serving_schema()
        .await
        .context("failed to read which schema is served")?;
    if let Some(schema) = &schema {
        tracing::info!(schema, "projecting into the served schema");
    }
    Ok(base.in_schema(schema.as_deref())?)
}

fn projector(config: &Config, bus: Bus, store: Store) -> Projector {
    Projector::new(
        bus,
        store,
        ProjectorSettings {
            name: config.projector.name.clone(),
            batch_size: config.projector.batch_size,
            ..Default::default()
        },
    )
}

/// On SIGHUP, read the configuration again and bring the shared schedules in
/// line with it (the rest of the configuration applies at the next start).
async fn reload_schedules_on_hangup(
    file: Option<PathBuf>,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = hangup.recv() => {}
        }
        let defs = match Config::load(file.as_deref()).and_then(|c| c.schedules()) {
            Ok(defs) => defs,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "configuration not reloaded");
                continue;
            }
        };
        match bus.sync_schedules(&defs).await {
            Ok(()) => tracing::info!(schedules = defs.len(), "schedules reloaded"),
            Err(e) => tracing::error!(error = %e, "schedules not reloaded"),
        }
    }
}

/// Cancelled on Ctrl-C (SIGINT) or SIGTERM; a second one exits at once.
fn shutdown_on_ctrl_c() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::error!("cannot listen for SIGINT and SIGTERM");
            return;
        };
        for signals in 1.. {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if signals > 1 {
                tracing::warn!("stopping now");
                std::process::exit(130);
            }
            tracing::info!("shutting down (again to stop at once)");
            t.cancel();
        }
    });
    token
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause only if the message so
/// far does not already say it.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if out.contains(&cause) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause);
    }
    out
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Kinds => {
            print!("{}", inventory_sources::kinds_markdown());
            return Ok(());
        }
        Command::Schema => {
            print!("{}", inventory_store::schema::catalogue_ddl());
            return Ok(());
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    let telemetry = init_tracing(&config, &cli.command)?;
    let result = execute(cli, config).await;
    // The spans of the last moments, exported before the process ends.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .ok();
    result
}

async fn execute(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let store = connect_store(&config)?;
            let applied = store.migrate().await.context("failed to migrate")?;
            tracing::info!(
                applied,
                database = config.database_url_redacted(),
                "migrations applied"
            );
        }
        Command::Collect(args) => {
            let bus = connect_client(&config).await?;
            if !tasks::collect(&bus, args).await? {
                std::process::exit(1);
            }
        }
        Command::Tasks(command) => {
            let bus = connect_client(&config).await?;
            bus.ensure_topology().await?;
            tasks::tasks(&bus, command).await?;
        }
        Command::Schedules(command) => {
            let bus = connect_client(&config).await?;
            bus.ensure_topology().await?;
            tasks::schedules(&bus, command).await?;
        }
        Command::Replay(args) => {
            let bus = connect_client(&config).await?;
            replay::replay(&config, connect_store(&config)?, bus, args).await?;
        }
        Command::Kinds | Command::Schema => {
            unreachable!("answered before the configuration is read")
        }
        Command::Verify { schemas } => {
            if !replay::verify(connect_store(&config)?, &schemas).await? {
                std::process::exit(1);
            }
        }
        Command::Collector => {
            let bus = connect_bus(&config).await?;
            let shutdown = shutdown_on_ctrl_c();
            let mut services = Services::default();
            spawn_metrics(&mut services, &config, &shutdown)?;
            spawn_collection(&mut services, &config, cli.config.clone(), bus, &shutdown).await?;
            services.run(shutdown, STOP_GRACE).await?;
        }
        Command::Projector => {
            let bus = connect_bus(&config).await?;
            let store = serving_store(&config).await?;
            let shutdown = shutdown_on_ctrl_c();
            let mut services = Services::default();
            spawn_metrics(&mut services, &config, &shutdown)?;
            spawn_projection(&mut services, &config, &bus, store, &shutdown)?;
            services.run(shutdown, STOP_GRACE).await?;
        }
        Command::Api => {
            let bus = connect_bus(&config).await?;
            let store = connect_store(&config)?;
            let shutdown = shutdown_on_ctrl_c();
            let mut services = Services::default();
            spawn_api(&mut services, &config, store, bus, &shutdown)?;
            services.run(shutdown, STOP_GRACE).await?;
        }
        Command::Up => {
            let bus = connect_bus(&config).await?;
            bus.ensure_topology().await?;
            let store = connect_store(&config)?;
            store.migrate().await.context("failed to migrate")?;
            let shutdown = shutdown_on_ctrl_c();
            let mut services = Services::default();
            spawn_api(&mut services, &config, store, bus.clone(), &shutdown)?;
            let projecting = serving_store(&config).await?;
            spawn_projection(&mut services, &config, &bus, projecting, &shutdown)?;
            spawn_collection(&mut services, &config, cli.config.clone(), bus, &shutdown).await?;
            // Until Ctrl-C, or until a service stops on its own (a failure).
            services.run(shutdown, STOP_GRACE).await?;
        }
    }
    Ok(())
}

/// The collector, with schedules following the configuration file on SIGHUP.
async fn spawn_collection(
    services: &mut Services,
    config: &Config,
    file: Option<PathBuf>,
    bus: Bus,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    services.spawn(
        "schedule reloader",
        reload_schedules_on_hangup(file, bus.clone(), shutdown.clone()),
    );
    services.spawn(
        "collector",
        collector(config, bus).await?.run(shutdown.clone()),
    );
    Ok(())
}

/// `GET /metrics` on `metrics.addr`, unless it is `off`.
fn spawn_metrics(
    services: &mut Services,
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    if let Some(addr) = config.metrics.addr() {
        let server = MetricsServer::start(addr)?;
        let shutdown = shutdown.clone();
        services.spawn("metrics", async move {
            server.serve_until(shutdown.cancelled_owned()).await
        });
    }
    Ok(())
}

/// The API, serving until `shutdown`.
fn spawn_api(
    services: &mut Services,
    config: &Config,
    store: Store,
    bus: Bus,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let server = ApiServer::start(
        &config.api.addr,
        ApiState::new(
            store
                .reader()
                .with_statement_timeout(config.query_timeout()?)?,
            Some(bus),
        )
        .with_auth(config.auth()?)
        .with_projection(&config.projector.name)
        .with_read_wait(config.read_wait()?),
        config.api.workers,
    )?;
    let shutdown = shutdown.clone();
    services.spawn("api", async move {
        server.serve_until(shutdown.cancelled_owned()).await
    });
    Ok(())
}

/// The projector with its change notifier and housekeeping, on `store`.
fn spawn_projection(
    services: &mut Services,
    config: &Config,
    bus: &Bus,
    store: Store,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let (retention, name) = (config.retention()?, config.projector.name.clone());
    let (s, st) = (shutdown.clone(), store.clone());
    services.spawn_infallible("housekeeping", async move {
        run_housekeeping(st, retention, s).await;
    });
    let (s, st, b) = (shutdown.clone(), store.clone(), bus.clone());
    services.spawn_infallible("change notifier", async move {
        run_notifier(st, b, name, s).await;
    });
    services.spawn(
        "projector",
        projector(config, bus.clone(), store).run(shutdown.clone()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_one_line_without_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = anyhow::Error::new(io)
            .context("cannot connect to NATS at nats://x:1: connection refused");
        assert_eq!(
            report(&e),
            "cannot connect to NATS at nats://x:1: connection refused"
        );
        let e = anyhow::anyhow!("no database").context("projector failed");
        assert_eq!(report(&e), "projector failed: no database");
    }
}
