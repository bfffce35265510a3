//! `inventory replay` and `inventory verify`: rebuild projections from the
//! stream into a schema of their own (blue/green), switch the API to it, and
//! compare schemas table by table.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use inventory_bus::Bus;
use inventory_projector::{Projector, ProjectorSettings};
use inventory_store::{Point, Store};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The projection to rebuild (today there is one: the projector's, `tables`).
    #[arg(long, conflicts_with = "all")]
    projection: Option<String>,
    /// Rebuild every projection.
    #[arg(long)]
    all: bool,
    /// Schema to rebuild into: created and migrated if new, caught up if it
    /// exists. Default: a new schema `<projection>_<utc timestamp>`.
    #[arg(long)]
    into: Option<String>,
    /// Start at this stream sequence (a schema that has applied nothing yet).
    #[arg(long)]
    from_seq: Option<u64>,
    /// Stop at this stream sequence, or leave out events observed after this
    /// RFC 3339 time: the inventory as it stood then.
    #[arg(long)]
    until: Option<String>,
    /// Make the API serve the schema once it is rebuilt.
    #[arg(long)]
    switch: bool,
    /// Drop this projection schema (refused while the API serves it) and exit.
    #[arg(long, conflicts_with_all = ["into", "switch", "until", "from_seq"])]
    drop: Option<String>,
}

pub async fn replay(
    config: &Config,
    base: Store,
    bus: Bus,
    args: ReplayArgs,
) -> anyhow::Result<()> {
    if let Some(schema) = &args.drop {
        base.drop_schema(schema).await?;
        println!("dropped schema {schema}");
        return Ok(());
    }
    let name = config.projector.name.as_str();
    if let Some(p) = &args.projection
        && p != name
    {
        bail!("unknown projection {p}; the projections are: {name}");
    }
    let schema = args
        .into
        .clone()
        .unwrap_or_else(|| format!("{name}_{}", chrono::Utc::now().format("%Y%m%d%H%M%S")));
    if base.serving_schema().await?.as_deref() == Some(schema.as_str()) && args.until.is_some() {
        bail!("schema {schema} is being served; rebuild a past instant into another schema");
    }
    let store = base.in_schema(Some(&schema))?;
    store
        .migrate()
        .await
        .with_context(|| format!("failed to migrate schema {schema}"))?;
    bus.ensure_topology().await?;
    let last = bus.last_event_seq().await?;
    let (stop_at, until) = match args.until.as_deref().map(str::parse::<Point>) {
        None => (last, None),
        Some(Ok(Point::Seq(seq))) => (seq.min(last), None),
        Some(Ok(Point::Time(t))) => (last, Some(t)),
        Some(Err(e)) => bail!("--until: {e}"),
    };
    if let Some(seq) = args.from_seq {
        let at = store.start_projection_at(name, seq).await?;
        if at + 1 != seq.max(1) {
            bail!(
                "schema {schema} has already applied events up to {at}; --from-seq applies to a new schema"
            );
        }
    }
    let start = store.checkpoint(name).await?;
    let started = Instant::now();
    if start < stop_at {
        run_to(&store, &bus, name, &schema, start, stop_at, until).await?;
    }
    let end = store.checkpoint(name).await?;
    let took = started.elapsed();
    let events = end.saturating_sub(start);
    println!(
        "replayed {events} events (sequences {}..={end}) into schema {schema} in {:.1}s ({:.0} events/s){}",
        start + 1,
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64().max(1e-9),
        until
            .map(|t| format!(", leaving out events observed after {}", t.to_rfc3339()))
            .unwrap_or_default()
    );
    if args.switch {
        base.set_serving_schema(&schema).await?;
        println!(
            "the api now serves schema {schema} (running projectors keep their schema until restarted)"
        );
    }
    Ok(())
}

/// Fold the stream into `store` until its checkpoint reaches `stop_at`, with a
/// progress bar on stderr.
async fn run_to(
    store: &Store,
    bus: &Bus,
    name: &str,
    schema: &str,
    start: u64,
    stop_at: u64,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    let durable = format!("replay-{}", schema.replace('_', "-"));
    let projector = Projector::new(
        bus.clone(),
        store.clone(),
        ProjectorSettings {
            name: name.to_owned(),
            durable: Some(durable.clone()),
            stop_at: Some(stop_at),
            until,
            ..Default::default()
        },
    );
    let bar = indicatif::ProgressBar::new(stop_at - start);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let stop = CancellationToken::new();
    let mut task = tokio::spawn(projector.run(stop.clone()));
    let result = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                let at = store.checkpoint(name).await.unwrap_or(start);
                bar.set_position(at.saturating_sub(start).min(stop_at - start));
            }
        }
    };
    bar.finish_and_clear();
    if let Err(e) = bus.delete_event_consumer(&durable).await {
        tracing::warn!(consumer = durable, error = %e, "could not delete the replay consumer");
    }
    result.context("replay task failed")??;
    Ok(())
}

/// Print every projection table's checksum, for one schema or side by side for
/// two; false if two schemas differ.
pub async fn verify(base: Store, schemas: &[String]) -> anyhow::Result<bool> {
    let stores: Vec<(String, Store)> = match schemas {
        [] => {
            let serving = base.serving_schema().await?;
            let label = serving.clone().unwrap_or_else(|| "(default)".into());
            vec![(label, base.in_schema(serving.as_deref())?)]
        }
        [one] => vec![(one.clone(), base.in_schema(Some(one))?)],
        [a, b] => vec![
            (a.clone(), base.in_schema(Some(a))?),
            (b.clone(), base.in_schema(Some(b))?),
        ],
        _ => bail!("verify compares at most two schemas"),
    };
    let mut same = true;
    for table in Store::projection_tables() {
        let mut sums = Vec::new();
        for (label, store) in &stores {
            let sum = store
                .checksum(&table)
                .await
                .with_context(|| format!("checksum of {table} in {label}"))?;
            sums.push(sum);
        }
        match sums.as_slice() {
            [a] => println!("{table:40} {:>10} rows  {}", a.rows, a.digest),
            [a, b] => {
                let verdict = if a == b { "same" } else { "DIFFERENT" };
                same &= a == b;
                println!(
                    "{table:40} {verdict:9} {:>10} / {:<10} rows  {} / {}",
                    a.rows, b.rows, a.digest, b.digest
                );
            }
            _ => unreachable!("one or two schemas"),
        }
    }
    if stores.len() == 2 {
        println!(
            "{} and {} {}",
            stores[0].0,
            stores[1].0,
            if same { "are identical" } else { "differ" }
        );
    }
    Ok(same)
}
