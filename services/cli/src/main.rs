//! `inventory`: one binary that runs the services, applies migrations and sends
//! ad-hoc collection requests. Thin glue over the service crates.

mod config;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use inventory_api::{ApiServer, ApiState};
use inventory_bus::Bus;
use inventory_collector::{Account, AwsSource, Collector, CollectorSettings, Pacer};
use inventory_projector::housekeeping::run_housekeeping;
use inventory_projector::notify::run_notifier;
use inventory_projector::{Projector, ProjectorSettings};
use inventory_store::Store;
use inventory_telemetry::LogFormat;
use tokio_util::sync::CancellationToken;

use config::Config;

mod replay;
mod tasks;

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
}

fn init_tracing(config: &Config) -> anyhow::Result<()> {
    let format = match config.log.format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    inventory_telemetry::init(format, "info", false).context("failed to set up logging")
}

async fn connect_bus(config: &Config) -> anyhow::Result<Bus> {
    Bus::connect(&config.nats.url, &config.nats.prefix)
        .await
        .with_context(|| format!("failed to connect to nats at {}", config.nats.url))
}

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
        regions: (!config.aws.regions.is_empty()).then(|| config.aws.regions.clone()),
        page_size: config.collector.page_size,
        concurrency: config.collector.concurrency,
        scan_retries: config.collector.scan_retries,
        retry_delay: config.retry_delay()?,
        tasks: config.tasks.clone(),
        schedules: config.schedules()?,
        ..Default::default()
    };
    let pacer = Arc::new(Pacer::new(config.aws.pacing.clone()));
    // Region, endpoint (`AWS_ENDPOINT_URL`) and the default credential chain.
    let base = AwsSource::environment().await;
    let mut accounts = if config.aws.accounts.is_empty() {
        vec![Account {
            source: Arc::new(AwsSource::with_pacer(base, "default", None, pacer)),
            label: "default".into(),
            label_is_id: false,
            regions: None,
            excluded_regions: Vec::new(),
        }]
    } else {
        inventory_collector::aws::accounts(
            &base,
            &config.aws.credentials,
            &config.aws.accounts,
            pacer,
        )
        .await
        .context("invalid aws accounts")?
    };
    for account in &mut accounts {
        if account.regions.is_none() {
            account.regions = settings.regions.clone();
        }
        account
            .excluded_regions
            .extend(config.aws.excluded_regions.iter().cloned());
    }
    tracing::info!(
        endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "default".into()),
        accounts = ?accounts.iter().map(|a| a.label.as_str()).collect::<Vec<_>>(),
        regions = ?settings.regions,
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
async fn reload_schedules_on_hangup(file: Option<PathBuf>, bus: Bus, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; schedules change only at start");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
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

fn shutdown_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Kinds = cli.command {
        print!("{}", inventory_model::catalogue::markdown());
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    init_tracing(&config)?;
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
            let bus = connect_bus(&config).await?;
            if !tasks::collect(&bus, args).await? {
                std::process::exit(1);
            }
        }
        Command::Tasks(command) => {
            let bus = connect_bus(&config).await?;
            bus.ensure_topology().await?;
            tasks::tasks(&bus, command).await?;
        }
        Command::Schedules(command) => {
            let bus = connect_bus(&config).await?;
            bus.ensure_topology().await?;
            tasks::schedules(&bus, command).await?;
        }
        Command::Replay(args) => {
            let bus = connect_bus(&config).await?;
            replay::replay(&config, connect_store(&config)?, bus, args).await?;
        }
        Command::Kinds => unreachable!("answered before the configuration is read"),
        Command::Verify { schemas } => {
            if !replay::verify(connect_store(&config)?, &schemas).await? {
                std::process::exit(1);
            }
        }
        Command::Collector => {
            let bus = connect_bus(&config).await?;
            let shutdown = shutdown_on_ctrl_c();
            tokio::spawn(reload_schedules_on_hangup(
                cli.config.clone(),
                bus.clone(),
                shutdown.clone(),
            ));
            collector(&config, bus).await?.run(shutdown).await?;
        }
        Command::Projector => {
            let bus = connect_bus(&config).await?;
            let store = serving_store(&config).await?;
            let shutdown = shutdown_on_ctrl_c();
            let housekeeping = tokio::spawn(run_housekeeping(
                store.clone(),
                config.retention()?,
                shutdown.clone(),
            ));
            let notifier = tokio::spawn(run_notifier(store.clone(), bus.clone(), shutdown.clone()));
            projector(&config, bus, store).run(shutdown.clone()).await?;
            shutdown.cancel();
            let _ = housekeeping.await;
            if let Ok(Err(e)) = notifier.await {
                tracing::error!(error = %e, "change notifier failed");
            }
        }
        Command::Api => {
            let bus = connect_bus(&config).await?;
            let store = connect_store(&config)?;
            let server = ApiServer::start(
                &config.api.addr,
                ApiState::new(store, Some(bus))
                    .with_projection(&config.projector.name)
                    .with_read_wait(config.read_wait()?),
                config.api.workers,
            )?;
            shutdown_on_ctrl_c().cancelled().await;
            server.stop().await;
        }
        Command::Up => {
            let bus = connect_bus(&config).await?;
            bus.ensure_topology().await?;
            let store = connect_store(&config)?;
            store.migrate().await.context("failed to migrate")?;
            let shutdown = shutdown_on_ctrl_c();
            let server = ApiServer::start(
                &config.api.addr,
                ApiState::new(store.clone(), Some(bus.clone()))
                    .with_projection(&config.projector.name)
                    .with_read_wait(config.read_wait()?),
                config.api.workers,
            )?;
            let projecting = serving_store(&config).await?;
            let housekeeping = tokio::spawn(run_housekeeping(
                projecting.clone(),
                config.retention()?,
                shutdown.clone(),
            ));
            let notifier = tokio::spawn(run_notifier(
                projecting.clone(),
                bus.clone(),
                shutdown.clone(),
            ));
            let mut projector =
                tokio::spawn(projector(&config, bus.clone(), projecting).run(shutdown.clone()));
            tokio::spawn(reload_schedules_on_hangup(
                cli.config.clone(),
                bus.clone(),
                shutdown.clone(),
            ));
            let mut collector = tokio::spawn(collector(&config, bus).await?.run(shutdown.clone()));
            // Run until Ctrl-C, or until a service stops on its own (an error).
            let failed = tokio::select! {
                biased;
                _ = shutdown.cancelled() => None,
                r = &mut projector => Some(("projector", r)),
                r = &mut collector => Some(("collector", r)),
            };
            shutdown.cancel();
            server.stop().await;
            let _ = housekeeping.await;
            if let Ok(Err(e)) = notifier.await {
                tracing::error!(error = %e, "change notifier failed");
            }
            // A service that ends cleanly after Ctrl-C has not failed.
            let failed =
                failed.filter(|(_, r)| !(shutdown.is_cancelled() && matches!(r, Ok(Ok(())))));
            if let Some((name, result)) = failed {
                return Err(match result {
                    Ok(Ok(())) => anyhow::anyhow!("{name} stopped unexpectedly"),
                    Ok(Err(e)) => e.context(format!("{name} failed")),
                    Err(e) => anyhow::anyhow!("{name} panicked: {e}"),
                });
            }
            for (name, task) in [("projector", projector), ("collector", collector)] {
                match task.await {
                    Ok(Err(e)) => tracing::error!(service = name, error = %e, "service failed"),
                    Err(e) => tracing::error!(service = name, error = %e, "service panicked"),
                    Ok(Ok(())) => {}
                }
            }
        }
    }
    Ok(())
}
