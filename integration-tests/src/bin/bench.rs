//! `make bench`: measures the pipeline against the machine's own limits, measured
//! in the same run, and writes `docs/benchmarks.md` and `target/bench/results.json`.
//!
//! Servers come from `scripts/bench.sh` (throwaway nats-server and PostgreSQL on
//! loopback). The projector and the API run as the real `inventory` binary in
//! child processes, so their peak RSS is their own; the collector runs in a child
//! process of this binary (`bench collector-child`) against an instant fake source.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::Utc;
use futures::future::BoxFuture;
use inventory_bus::Bus;
use inventory_collector::{
    CallStats, CollectError, Collector, CollectorSettings, RawItem, RawPage, Source,
};
use inventory_integration_tests::{free_addr, fresh_store};
use inventory_model::catalogue::aws::AWS_INSTANCE;
use inventory_model::{
    CollectRequest, Envelope, EventType, KindDef, SCHEMA_VERSION, Scope, content_hash,
};
use inventory_store::{BatchItem, Filter, JsonText, ListQuery, ResourceChange, Store};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: run through `make bench`"))
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// The latencies sorted, as a function from a fraction (0.99) to milliseconds.
fn percentiles(mut lat: Vec<Duration>) -> impl Fn(f64) -> f64 {
    lat.sort();
    move |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0
}

/// `GET /api/v1/search` from one client over the ingested instances: in
/// turn an id, a name, an IP address and a tag qualifier with a word, each
/// expected to find its instance; p50 and p99.
async fn search_timing(
    r: &mut Results,
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    n: usize,
    quick: bool,
) -> anyhow::Result<()> {
    let rounds = if quick { 100 } else { 400 };
    let mut lat = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let i = (round * 7919 + 13) % n;
        let q = match round % 4 {
            0 => format!("i-{i:017x}"),
            1 => format!("node-{i}"),
            2 => format!("10.{}.{}.{}", i % 250, (i / 250) % 250, (i / 62500) % 250),
            _ => format!("tag:team=team-{} node-{i}", i % 12),
        };
        let url = format!(
            "http://{addr}/api/v1/search?q={}&limit=20",
            q.replace(' ', "%20")
                .replace(':', "%3A")
                .replace('=', "%3D")
        );
        let s = Instant::now();
        let resp = client.get(&url).send().await?;
        anyhow::ensure!(resp.status().is_success(), "search {q}: {}", resp.status());
        let body: Value = resp.json().await?;
        lat.push(s.elapsed());
        let id = format!("i-{i:017x}");
        anyhow::ensure!(
            body["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|it| it["id"] == id.as_str())),
            "search {q} did not find {id}"
        );
    }
    let pct = percentiles(lat);
    let what =
        format!("search at {n} resources, one client ({rounds} queries: id, name, IP, tag + word)");
    r.record("search_p50", pct(0.50), "ms", &format!("{what}, p50"));
    r.record("search_p99", pct(0.99), "ms", &format!("{what}, p99"));
    Ok(())
}

/// An instance payload shaped like EC2's, about the size of a real one.
fn instance(i: usize, generation: usize) -> Value {
    json!({
        "instanceId": format!("i-{i:017x}"),
        "imageId": "ami-0abcdef1234567890",
        "instanceState": {"code": "16", "name": if generation.is_multiple_of(2) { "running" } else { "stopped" }},
        "privateDnsName": format!("ip-10-{}-{}-{}.eu-west-1.compute.internal", i % 250, (i / 250) % 250, i % 7),
        "dnsName": "",
        "reason": "",
        "amiLaunchIndex": "0",
        "productCodes": [],
        "instanceType": if i.is_multiple_of(3) { "m5.large" } else { "t3.micro" },
        "launchTime": "2026-11-01T12:00:00.000Z",
        "placement": {"availabilityZone": "eu-west-1a", "groupName": "", "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "subnetId": format!("subnet-{:017x}", i % 64),
        "vpcId": format!("vpc-{:017x}", i % 8),
        "privateIpAddress": format!("10.{}.{}.{}", i % 250, (i / 250) % 250, (i / 62500) % 250),
        "sourceDestCheck": "true",
        "groupSet": [{"groupId": "sg-0123456789abcdef0", "groupName": "default"}],
        "architecture": "x86_64",
        "rootDeviceType": "ebs",
        "rootDeviceName": "/dev/xvda",
        "blockDeviceMapping": [{"deviceName": "/dev/xvda", "ebs": {"volumeId": format!("vol-{i:017x}"), "status": "attached", "attachTime": "2026-11-01T12:00:01.000Z", "deleteOnTermination": "true"}}],
        "virtualizationType": "hvm",
        "clientToken": "",
        "tagSet": [{"key": "Name", "value": format!("node-{i}")}, {"key": "team", "value": format!("team-{}", i % 12)}, {"key": "generation", "value": generation.to_string()}],
        "hypervisor": "xen",
        "networkInterfaceSet": [{"networkInterfaceId": format!("eni-{i:017x}"), "subnetId": format!("subnet-{:017x}", i % 64), "vpcId": format!("vpc-{:017x}", i % 8), "status": "in-use", "privateIpAddress": "10.0.0.1"}],
        "ebsOptimized": "false",
        "platformDetails": "Linux/UNIX"
    })
}

fn event(i: usize, generation: usize, scan: &str) -> Envelope {
    let payload = instance(i, generation);
    Envelope {
        event_type: if generation == 0 {
            EventType::ResourceCreated
        } else {
            EventType::ResourceUpdated
        },
        schema_version: SCHEMA_VERSION,
        source: "aws".into(),
        kind: "instance".into(),
        scope: Scope {
            account_id: ACCOUNT.into(),
            region: Some(REGION.into()),
        },
        key: Some(format!("i-{i:017x}")),
        observed_at: Utc::now(),
        scan_id: scan.into(),
        request_id: None,
        content_hash: Some(content_hash(&payload)),
        payload: Some(inventory_model::Payload::from_value(&payload)),
        resources_seen: None,
        error: None,
        known_from_seq: None,
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Peak resident set (VmHWM) of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

struct Results {
    figures: BTreeMap<String, Value>,
    lines: Vec<String>,
}

impl Results {
    fn record(&mut self, key: &str, value: f64, unit: &str, label: &str) {
        tracing::info!(key, value, unit, "measured");
        eprintln!("  {label}: {value:.1} {unit}");
        self.figures.insert(
            key.into(),
            json!({"value": value, "unit": unit, "label": label}),
        );
    }
    fn value(&self, key: &str) -> f64 {
        self.figures[key]["value"].as_f64().unwrap_or(f64::NAN)
    }
}

fn inventory_bin() -> anyhow::Result<PathBuf> {
    let bin = PathBuf::from(env("INVENTORY_BIN")?);
    if !bin.exists() {
        bail!("{} does not exist", bin.display());
    }
    Ok(bin)
}

fn service(
    cmd: &str,
    prefix: &str,
    db_url: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<Child> {
    let mut c = Command::new(inventory_bin()?);
    c.arg(cmd)
        .env("NATS_URL", env("INVENTORY_TEST_NATS_URL")?)
        .env("DATABASE_URL", db_url)
        .env("INVENTORY_SUBJECT_PREFIX", prefix)
        .env("RUST_LOG", "warn")
        // No metrics server unless a step asks for one (`extra`).
        .env("INVENTORY_METRICS_ADDR", "off")
        .env_remove("INVENTORY_CONFIG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in extra {
        c.env(k, v);
    }
    Ok(c.spawn()?)
}

async fn wait_checkpoint(store: &Store, name: &str, target: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    while store.checkpoint(name).await? < target {
        if Instant::now() > deadline {
            bail!("projection {name} did not reach {target}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn stop(mut child: Child) -> f64 {
    let pid = child.id().unwrap_or(0);
    let rss = peak_rss_mib(pid);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    rss
}

/// A fake source: `n` instances in one region, in pages of `PAGE` made on
/// request, or taken ready-made (an instant source: `premade`).
struct FakeSource {
    n: usize,
    generation: usize,
    premade: std::sync::Mutex<std::collections::HashMap<usize, Vec<RawItem>>>,
}

const PAGE: usize = 1000;

impl FakeSource {
    /// The items of instances `start..end`, as a source yields them: each
    /// with its id, as canonical JSON text.
    fn make_page(&self, start: usize, end: usize) -> Vec<RawItem> {
        (start..end)
            .map(|i| RawItem {
                id: Some(format!("i-{i:017x}")),
                json: serde_json::to_string(&instance(i, self.generation))
                    .expect("json serializes"),
            })
            .collect()
    }

    /// Make every page now, so that listing costs nothing while it is timed.
    fn premake(&self) {
        let pages = (0..self.n)
            .step_by(PAGE)
            .map(|start| (start, self.make_page(start, (start + PAGE).min(self.n))))
            .collect();
        *self.premade.lock().expect("not poisoned") = pages;
    }
}

impl Source for FakeSource {
    fn provider(&self) -> &'static str {
        "aws"
    }
    fn account_id(&self) -> BoxFuture<'_, Result<String, CollectError>> {
        Box::pin(async { Ok(ACCOUNT.to_owned()) })
    }
    fn enabled_regions(&self) -> BoxFuture<'_, Result<Vec<String>, CollectError>> {
        Box::pin(async { Ok(vec![REGION.to_owned()]) })
    }
    fn page<'a>(
        &'a self,
        _kind: &'static KindDef,
        _region: Option<&'a str>,
        token: Option<String>,
        page_size: i32,
        stats: &'a mut CallStats,
    ) -> BoxFuture<'a, Result<RawPage, CollectError>> {
        Box::pin(async move {
            stats.calls += 1;
            let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
            let end = (start + page_size as usize).min(self.n);
            let ready = self.premade.lock().expect("not poisoned").remove(&start);
            let items = ready.unwrap_or_else(|| self.make_page(start, end));
            Ok(RawPage {
                items,
                next: (end < self.n).then(|| end.to_string()),
            })
        })
    }
}

/// Child process. `premade`: collect `n` fake instances whose pages were made
/// before the clock started (an instant source), and print the rate. `made`:
/// collect `n` instances twice (new, then unchanged) with the source making its
/// pages as it is asked, and print the rates, the re-scan and peak RSS.
async fn collector_child(mode: &str, n: usize, prefix: &str) -> anyhow::Result<()> {
    let bus = Bus::connect(&env("INVENTORY_TEST_NATS_URL")?, prefix).await?;
    bus.ensure_topology().await?;
    let settings = CollectorSettings {
        regions: Some(vec![REGION.into()]),
        page_size: PAGE as i32,
        concurrency: 1,
        ..Default::default()
    };
    let source = FakeSource {
        n,
        generation: 0,
        premade: Default::default(),
    };
    let premade = mode == "premade";
    if premade {
        source.premake();
    }
    let collector = Collector::new(bus.clone(), source, settings);
    let t = Instant::now();
    let report = collector
        .collect(&CollectRequest::of("aws", "instances"), "bench")
        .await?;
    let first = t.elapsed();
    anyhow::ensure!(report.failed() == 0, "fake collection failed: {report:?}");
    let created: u64 = report.scans.iter().map(|s| s.created).sum();
    anyhow::ensure!(created == n as u64, "{created} of {n} resources were new");
    if premade {
        println!("{}", json!({ "publish_rate": rate(n, first) }));
        return Ok(());
    }
    let before = bus.last_event_seq().await?;
    let t = Instant::now();
    collector
        .collect(&CollectRequest::of("aws", "instances"), "bench-rescan")
        .await?;
    let rescan = t.elapsed();
    let added = bus.last_event_seq().await? - before;
    let resources_added = bus.count_events(&bus.names().all_resource_events()).await? - n as u64;
    println!(
        "{}",
        json!({
            "publish_rate_with_source": rate(n, first),
            "rescan_seconds": rescan.as_secs_f64(),
            "rescan_messages_added": added,
            "rescan_resource_events_added": resources_added,
            "peak_rss_mib": peak_rss_mib(std::process::id()),
        })
    );
    Ok(())
}

/// Events `start..start + CHUNK` (at most `n`) of generation 0 as the bus
/// sends them: envelopes and their encoded messages.
fn encoded_chunk(start: usize, n: usize) -> Vec<(Envelope, Bytes)> {
    (start..(start + CHUNK).min(n))
        .map(|i| {
            let mut e = event(i, 0, "bench-0");
            let payload = e.payload.take().expect("an event has a payload");
            let body = Bytes::from(e.to_bytes_with_payload(payload.text().as_bytes()));
            (e, body)
        })
        .collect()
}

/// Child process: raw JetStream publish of `n` pre-encoded event messages
/// (as step 1 does), the anchor of the collector's figure measured next to
/// it, in a process of the same shape.
async fn raw_child(n: usize, prefix: &str) -> anyhow::Result<()> {
    let bus = Bus::connect(&env("INVENTORY_TEST_NATS_URL")?, prefix).await?;
    bus.ensure_topology().await?;
    let mut publishing = Duration::ZERO;
    for start in (0..n).step_by(CHUNK) {
        let encoded = encoded_chunk(start, n);
        let t = Instant::now();
        bus.publish_encoded(&encoded, None).await?;
        publishing += t.elapsed();
    }
    println!("{}", json!({ "publish_rate": rate(n, publishing) }));
    Ok(())
}

/// Run `collector_child` in `mode` (or, `raw`, `raw_child`) for `n`
/// resources in a process of its own.
async fn collector_run(mode: &str, n: usize) -> anyhow::Result<Value> {
    let mut cmd = Command::new(std::env::current_exe()?);
    match mode {
        "raw" => cmd.args(["raw-child", &n.to_string(), &unique("rawc")]),
        _ => cmd.args(["collector-child", mode, &n.to_string(), &unique("coll")]),
    };
    let out = cmd.stderr(Stdio::inherit()).output().await?;
    anyhow::ensure!(out.status.success(), "collector child failed");
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Ingest observed or not: the first `part` events of the stream of `prefix`
/// replayed into empty tables, alternately without and with metrics served
/// (and scraped every second) and spans exported over OTLP to a receiver; the
/// best of two runs each, so that the order of runs and the database's
/// warm-up weigh on both. Metrics are counted in the process either way.
async fn observed_vs_plain(r: &mut Results, prefix: &str, part: u64) -> anyhow::Result<()> {
    let receiver = inventory_integration_tests::otlp::OtlpReceiver::start();
    let mut best = [0.0f64; 2];
    for round in 0..4 {
        let observed = round % 2 == 1;
        let (store, url) = fresh_store().await;
        let metrics_addr = free_addr();
        let mut extra = Vec::new();
        if observed {
            extra.push(("INVENTORY_METRICS_ADDR", metrics_addr.to_string()));
            extra.push(("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()));
        }
        let scrapes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let t = Instant::now();
        let replay = service("projector", prefix, &url, &extra)?;
        let scraping = observed.then(|| {
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Ok(resp) = reqwest::get(format!("http://{metrics_addr}/metrics")).await
                        && resp.status().is_success()
                        && resp.text().await.is_ok()
                    {
                        scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        });
        wait_checkpoint(&store, "tables", part).await?;
        let rate_now = rate(part as usize, t.elapsed());
        if let Some(task) = scraping {
            task.abort();
            anyhow::ensure!(
                scrapes.load(std::sync::atomic::Ordering::Relaxed) > 0,
                "the observed replay was never scraped"
            );
        }
        stop(replay).await;
        best[usize::from(observed)] = best[usize::from(observed)].max(rate_now);
    }
    let spans = receiver.spans();
    anyhow::ensure!(
        spans.iter().any(|s| s.name == "fold batch"),
        "the observed replays exported no batch span"
    );
    r.record(
        "replay_plain",
        best[0],
        "events/s",
        &format!("replay of {part} events, metrics not served, no span export (best of 2)"),
    );
    r.record(
    "replay_observed",
    best[1],
    "events/s",
    &format!("replay of {part} events, metrics served and scraped every second, spans exported over OTLP (best of 2)"),
);
    r.record(
        "replay_observed_spans",
        spans.len() as f64,
        "spans",
        "spans the observed replays exported",
    );
    Ok(())
}

/// `/metrics` of the API at `addr` over a store of `n` live instances: the
/// first scrape takes the first sample; 200 more are timed.
async fn scrape_timing(
    r: &mut Results,
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    n: usize,
) -> anyhow::Result<()> {
    let scrape_url = format!("http://{addr}/metrics");
    let first = client.get(&scrape_url).send().await?.text().await?;
    let scrape = inventory_integration_tests::scrape::Scrape::parse(&first);
    let live = scrape
        .sum("inventory_resources", &[("kind", "instance")])
        .unwrap_or(0.0);
    anyhow::ensure!(
        live as usize == n,
        "metrics count {live} instances, not {n}"
    );
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let text = client.get(&scrape_url).send().await?.text().await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(text.contains("inventory_projection_lag_messages"));
    }
    times.sort_by(|a, b| a.total_cmp(b));
    r.record(
        "scrape_p99",
        times[times.len() * 99 / 100],
        "ms",
        &format!("API /metrics scrape p99 at {n} live resources (200 scrapes)"),
    );
    r.record(
        "scrape_p50",
        times[times.len() / 2],
        "ms",
        &format!("API /metrics scrape p50 at {n} live resources"),
    );
    Ok(())
}

/// Events made and published at a time (a million at once do not fit in memory).
const CHUNK: usize = 4000;

/// Publish the `generation` of `n` instance events (0: new, 1: changed).
async fn publish_generation(bus: &Bus, n: usize, generation: usize) -> anyhow::Result<()> {
    for start in (0..n).step_by(CHUNK) {
        let events: Vec<Envelope> = (start..(start + CHUNK).min(n))
            .map(|i| event(i, generation, &format!("bench-{generation}")))
            .collect();
        bus.publish_events(&events, None).await?;
    }
    Ok(())
}

/// The real `inventory api` on the store at `db_url`, once it answers (at
/// most 30 s): the process and its address.
async fn start_api(
    client: &reqwest::Client,
    prefix: &str,
    db_url: &str,
) -> anyhow::Result<(Child, std::net::SocketAddr)> {
    let addr = free_addr();
    let api = service(
        "api",
        prefix,
        db_url,
        &[("INVENTORY_API_ADDR", addr.to_string())],
    )?;
    let ready = Instant::now();
    while client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .is_err()
    {
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(30),
            "api did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((api, addr))
}

/// `make bench ARGS=--observability`: only the observability figures, at
/// full size: `n` new instance events ingested by the projector, ingest
/// observed or not, and the API's `/metrics` over the `n` live instances.
/// Writes `target/bench/observability.json` (not `docs/benchmarks.md`).
async fn observability_only(n: usize) -> anyhow::Result<()> {
    let mut r = Results {
        figures: BTreeMap::new(),
        lines: Vec::new(),
    };
    let started = Utc::now();
    let prefix = unique("bench");
    let bus = Bus::connect(&env("INVENTORY_TEST_NATS_URL")?, &prefix).await?;
    bus.ensure_topology().await?;
    publish_generation(&bus, n, 0).await?;
    let target = bus.last_event_seq().await?;
    let (store, db_url) = fresh_store().await;
    let t = Instant::now();
    let projector = service("projector", &prefix, &db_url, &[])?;
    wait_checkpoint(&store, "tables", target).await?;
    r.record(
        "ingest_new",
        rate(n, t.elapsed()),
        "events/s",
        "projector ingest, new instances",
    );
    stop(projector).await;
    observed_vs_plain(&mut r, &prefix, (n / 5) as u64).await?;
    let client = reqwest::Client::new();
    let (api, addr) = start_api(&client, &prefix, &db_url).await?;
    scrape_timing(&mut r, &client, addr, n).await?;
    stop(api).await;
    let ratio = r.value("replay_observed") / r.value("replay_plain");
    eprintln!("  ingest observed / not: {ratio:.3} (budget >= 0.95)");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf();
    std::fs::create_dir_all(root.join("target/bench"))?;
    std::fs::write(
        root.join("target/bench/observability.json"),
        serde_json::to_vec_pretty(&json!({
            "date": started.to_rfc3339(),
            "events": n,
            "figures": r.figures,
            "ratio: ingest observed / not": ratio,
        }))?,
    )?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("raw-child") {
        return raw_child(args[2].parse()?, &args[3]).await;
    }
    if args.get(1).map(String::as_str) == Some("collector-child") {
        let n: usize = args[3].parse()?;
        return collector_child(&args[2], n, &args[4]).await;
    }
    let _ = inventory_telemetry::init(
        inventory_telemetry::LogFormat::Text,
        "warn",
        false,
        "inventory-bench",
        &inventory_telemetry::Traces::Off,
    );
    let quick = args.iter().any(|a| a == "--quick");
    let n = if quick { 100_000 } else { 1_000_000 };
    if args.iter().any(|a| a == "--observability") {
        return observability_only(n).await;
    }
    let rescan_n = if quick { 10_000 } else { 100_000 };
    // Pages made ahead live in memory while the clock runs (about 6 KiB each).
    let premade_n = if quick { 50_000 } else { 200_000 };
    let mut r = Results {
        figures: BTreeMap::new(),
        lines: Vec::new(),
    };
    let started = Utc::now();
    eprintln!(
        "inventory bench: {n} events{}",
        if quick { " (quick)" } else { "" }
    );

    // 1. Limits of the machine: raw JetStream publish and consume. Events are made
    // chunk by chunk (a million at once do not fit in memory); only the publish
    // calls are timed.
    let prefix = unique("bench");
    let bus = Bus::connect(&env("INVENTORY_TEST_NATS_URL")?, &prefix).await?;
    bus.ensure_topology().await?;
    let raw_bus = Bus::connect(&env("INVENTORY_TEST_NATS_URL")?, &unique("raw")).await?;
    raw_bus.ensure_topology().await?;
    // The event messages as the bus sends them (Nats-Msg-Id and the event
    // headers: the server keeps every id for its duplicate window), and the same
    // payloads bare, to show what the headers cost the server.
    let mut publishing = Duration::ZERO;
    let mut publishing_bare = Duration::ZERO;
    let mut bytes_total = 0;
    let bare_bus = Bus::connect(&env("INVENTORY_TEST_NATS_URL")?, &unique("bare")).await?;
    bare_bus.ensure_topology().await?;
    for start in (0..n).step_by(CHUNK) {
        let encoded = encoded_chunk(start, n);
        bytes_total += encoded.iter().map(|(_, b)| b.len()).sum::<usize>();
        let t = Instant::now();
        raw_bus.publish_encoded(&encoded, None).await?;
        publishing += t.elapsed();
        let bare: Vec<(String, Bytes)> = encoded
            .into_iter()
            .map(|(e, body)| (bare_bus.names().event_subject(&e), body))
            .collect();
        let t = Instant::now();
        bare_bus.publish_bytes(&bare).await?;
        publishing_bare += t.elapsed();
    }
    r.record(
        "message_bytes",
        (bytes_total / n) as f64,
        "bytes",
        "average event size",
    );
    r.record(
        "raw_publish",
        rate(n, publishing),
        "msgs/s",
        "raw JetStream publish (pre-encoded event messages with their headers and Nats-Msg-Id, pipelined acks)",
    );
    r.record(
        "raw_publish_bare",
        rate(n, publishing_bare),
        "msgs/s",
        "raw JetStream publish of the same payloads without headers (no message ids)",
    );
    let consumer = raw_bus.event_consumer("raw", 1).await?;
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        let batch = consumer.fetch(1000, Duration::from_secs(5)).await?;
        anyhow::ensure!(!batch.is_empty(), "raw consume stalled at {got}");
        got += batch.len();
        batch.last().expect("non-empty").ack().await?;
    }
    r.record(
        "raw_consume",
        rate(n, t.elapsed()),
        "msgs/s",
        "raw JetStream consume (pull, batch fetch + ack)",
    );
    raw_bus.destroy_topology().await?;

    // 2. Limits of the machine: PostgreSQL with the fold's own statements, no NATS;
    // only the folding is timed.
    let (raw_store, _) = fresh_store().await;
    for generation in 0..2 {
        let mut folding = Duration::ZERO;
        for start in (0..n).step_by(1000) {
            let items: Vec<BatchItem> = (start..(start + 1000).min(n))
                .map(|i| {
                    let e = event(i, generation, "raw");
                    let payload = e.payload.clone().expect("payload");
                    let value = payload.value().expect("json");
                    let projected = AWS_INSTANCE
                        .project(e.key.as_deref().expect("key"), &e.scope, &value)
                        .expect("projects");
                    BatchItem::Resource {
                        seq: (generation * n + i + 1) as u64,
                        change: ResourceChange {
                            kind: &AWS_INSTANCE,
                            scope: e.scope,
                            key: e.key.expect("key"),
                            observed_at: e.observed_at,
                            scan_id: e.scan_id,
                            request_id: e.request_id,
                            trace_id: None,
                            state: Some((
                                projected,
                                JsonText::from_text(payload.into_text()),
                                e.content_hash.expect("hash"),
                            )),
                        },
                    }
                })
                .collect();
            let t = Instant::now();
            raw_store.apply_batch("raw", &items, None).await?;
            folding += t.elapsed();
        }
        let (key, label) = if generation == 0 {
            (
                "raw_upsert_new",
                "raw PostgreSQL fold, new rows (same statements, no NATS)",
            )
        } else {
            ("raw_upsert_changed", "raw PostgreSQL fold, changed rows")
        };
        r.record(key, rate(n, folding), "rows/s", label);
    }
    drop(raw_store);

    // 3. The pipeline: projector ingest (the real binary), new then changed. The
    // events are in the stream before the projector starts.
    let (store, db_url) = fresh_store().await;
    let mut projector_rss: f64 = 0.0;
    for generation in 0..2 {
        publish_generation(&bus, n, generation).await?;
        let target = bus.last_event_seq().await?;
        let t = Instant::now();
        let projector = service("projector", &prefix, &db_url, &[])?;
        wait_checkpoint(&store, "tables", target).await?;
        let (key, label) = if generation == 0 {
            ("ingest_new", "projector ingest, new instances")
        } else {
            ("ingest_changed", "projector ingest, changed instances")
        };
        r.record(key, rate(n, t.elapsed()), "events/s", label);
        projector_rss = projector_rss.max(stop(projector).await);
    }
    let target = bus.last_event_seq().await?;
    r.record("projector_rss", projector_rss, "MiB", "projector peak RSS");

    // 4. Rebuild: replay the whole stream into empty tables.
    let (rebuilt, rebuild_url) = fresh_store().await;
    let t = Instant::now();
    let replay = service("projector", &prefix, &rebuild_url, &[])?;
    wait_checkpoint(&rebuilt, "tables", target).await?;
    r.record(
        "rebuild",
        rate(2 * n, t.elapsed()),
        "events/s",
        "rebuild (replay of every event into empty tables)",
    );
    r.record(
        "rebuild_rss",
        stop(replay).await,
        "MiB",
        "projector peak RSS during rebuild",
    );
    for table in Store::projection_tables() {
        anyhow::ensure!(
            store.checksum(&table).await? == rebuilt.checksum(&table).await?,
            "rebuild differs from ingest in {table}"
        );
    }
    drop(rebuilt);

    // 4b. Ingest observed or not.
    observed_vs_plain(&mut r, &prefix, (n / 5) as u64).await?;

    // 5. Collector publish path and unchanged re-scan (child process, fake
    // source). Its anchor, raw publish of the same messages, is measured
    // right next to it, in a child process of the same shape, alternating:
    // late in the run the servers hold the streams and tables of the steps
    // before (PostgreSQL vacuuming, the page cache full), which step 1's
    // figure, on fresh servers, does not share. Best of two runs each.
    let (mut raw_best, mut collector_best) = (0.0f64, 0.0f64);
    for _ in 0..2 {
        let raw = collector_run("raw", premade_n).await?;
        raw_best = raw_best.max(raw["publish_rate"].as_f64().unwrap_or(f64::NAN));
        let c = collector_run("premade", premade_n).await?;
        collector_best = collector_best.max(c["publish_rate"].as_f64().unwrap_or(f64::NAN));
    }
    r.record(
        "raw_publish_adjacent",
        raw_best,
        "msgs/s",
        &format!("raw JetStream publish of the same {premade_n} event messages, in a child process, alternating with the collector runs (best of 2)"),
    );
    r.record(
        "collector_publish",
        collector_best,
        "resources/s",
        &format!("collector publish path ({premade_n} resources from an instant source, pages made before the clock starts: envelopes, hashing, change detection, publish; best of 2)"),
    );
    let c = collector_run("made", n).await?;
    r.record(
        "collector_publish_with_source",
        c["publish_rate_with_source"].as_f64().unwrap_or(f64::NAN),
        "resources/s",
        &format!("collector including the fake source making its pages as asked ({n} resources, serde_json values)"),
    );
    r.record(
        "collector_rss_all",
        c["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        "MiB",
        &format!("collector peak RSS ({n} resources, new then unchanged)"),
    );
    let c = collector_run("made", rescan_n).await?;
    r.record(
        "collector_rss",
        c["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        "MiB",
        &format!("collector peak RSS ({rescan_n} resources, new then unchanged)"),
    );
    r.record(
        "rescan_seconds",
        c["rescan_seconds"].as_f64().unwrap_or(f64::NAN),
        "s",
        &format!("unchanged re-scan of {rescan_n} resources, wall time"),
    );
    r.record(
        "rescan_messages",
        c["rescan_messages_added"].as_f64().unwrap_or(f64::NAN),
        "messages",
        "messages the unchanged re-scan added to the stream",
    );
    r.record(
        "rescan_resource_events",
        c["rescan_resource_events_added"]
            .as_f64()
            .unwrap_or(f64::NAN),
        "messages",
        "resource events among them (must be 0)",
    );

    // 6. API against the ingested table, 32 concurrent clients; pgbench on the same SQL.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let (api, addr) = start_api(&client, &prefix, &db_url).await?;
    let url = format!("http://{addr}/api/v1/aws/instances?state=stopped&limit=100");
    let per_client = if quick { 100 } else { 300 };
    let latencies = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, url, latencies) = (client.clone(), url.clone(), latencies.clone());
        tasks.spawn(async move {
            let mut mine = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let s = Instant::now();
                let resp = client.get(&url).send().await.expect("api request");
                assert_eq!(resp.status().as_u16(), 200);
                let body = resp.bytes().await.expect("body");
                assert!(body.len() > 1000);
                mine.push(s.elapsed());
            }
            latencies.lock().await.extend(mine);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    let elapsed = t.elapsed();
    let lat = latencies.lock().await.clone();
    let requests = lat.len();
    let pct = percentiles(lat);
    r.record(
        "api_rps",
        rate(requests, elapsed),
        "requests/s",
        "API, GET /api/v1/aws/instances?state=stopped&limit=100, 32 clients",
    );
    r.record("api_p50", pct(0.50), "ms", "API p50 latency");
    r.record("api_p99", pct(0.99), "ms", "API p99 latency");
    // 6b. `/metrics` of the API over the ingested store.
    scrape_timing(&mut r, &client, addr, n).await?;
    // 6c. Every live instance exported as CSV, streamed (the API reads a page
    // of 1000 at a time).
    let t = Instant::now();
    let mut resp = client
        .get(format!("http://{addr}/api/v1/aws/instances?format=csv"))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "csv export: {}", resp.status());
    let mut lines = 0usize;
    while let Some(chunk) = resp.chunk().await? {
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    anyhow::ensure!(
        lines == n + 1,
        "csv export: {lines} lines for {n} resources"
    );
    r.record(
        "csv_export",
        rate(n, t.elapsed()),
        "rows/s",
        &format!("CSV export of every instance ({n} rows, streamed)"),
    );
    // 6d. Search, one client: an id, a name, an IP address, a tag with a word.
    search_timing(&mut r, &client, addr, n, quick).await?;
    r.record("api_rss", stop(api).await, "MiB", "API peak RSS");
    // Exactly the statement the API ran for that request, parameters inlined.
    let sql = Store::list_sql_inlined(&ListQuery {
        filters: vec![Filter::eq("state", "stopped")],
        ..ListQuery::of(&AWS_INSTANCE, 100)
    })? + ";\n";
    let script = std::env::temp_dir().join(format!("{}.sql", unique("pgbench")));
    std::fs::write(&script, sql)?;
    let pg = Command::new(env("PGBENCH")?)
        .args([
            "-n",
            "-c",
            "32",
            "-j",
            "2",
            "-T",
            if quick { "5" } else { "15" },
            "-M",
            "prepared",
            "-f",
        ])
        .arg(&script)
        .arg(&db_url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&pg.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| {
            format!(
                "pgbench said: {text}{}",
                String::from_utf8_lossy(&pg.stderr)
            )
        })?;
    r.record(
        "pgbench_tps",
        tps,
        "queries/s",
        "pgbench, the same SQL, 32 clients",
    );

    // Ingest over both passes, as the rebuild replays both.
    let ingest_all = 2.0 / (1.0 / r.value("ingest_new") + 1.0 / r.value("ingest_changed"));
    r.record(
        "ingest_all",
        ingest_all,
        "events/s",
        "projector ingest, both passes",
    );

    // Ratios and budget.
    let ratio = |a: &str, b: &str| r.value(a) / r.value(b);
    let budget = [
        (
            "ingest new / raw upsert new",
            ratio("ingest_new", "raw_upsert_new"),
            ">= 0.8",
        ),
        (
            "ingest changed / raw upsert changed",
            ratio("ingest_changed", "raw_upsert_changed"),
            ">= 0.8",
        ),
        (
            "collector publish / raw publish (adjacent)",
            ratio("collector_publish", "raw_publish_adjacent"),
            ">= 0.8",
        ),
        (
            "rebuild / ingest (both passes)",
            ratio("rebuild", "ingest_all"),
            ">= 0.8",
        ),
        (
            "API throughput / pgbench",
            ratio("api_rps", "pgbench_tps"),
            ">= 0.8",
        ),
        (
            "ingest observed (metrics scraped, spans exported) / not",
            ratio("replay_observed", "replay_plain"),
            ">= 0.95",
        ),
    ];
    for (name, value, target) in budget {
        let floor: f64 = target.trim_start_matches(">= ").parse().expect("a floor");
        let met = value >= floor;
        r.lines.push(format!(
            "| {name} | {value:.2} | {target} | {} |",
            if met { "met" } else { "**not met**" }
        ));
        r.figures.insert(format!("ratio: {name}"), json!(value));
    }
    let absolute = [
        (
            "API p99",
            r.value("api_p99"),
            "< 10 ms",
            r.value("api_p99") < 10.0,
        ),
        (
            "search p50",
            r.value("search_p50"),
            "< 20 ms",
            r.value("search_p50") < 20.0,
        ),
        (
            "search p99",
            r.value("search_p99"),
            "< 100 ms",
            r.value("search_p99") < 100.0,
        ),
        (
            "metrics scrape p99",
            r.value("scrape_p99"),
            "< 100 ms",
            r.value("scrape_p99") < 100.0,
        ),
        (
            "projector RSS",
            r.value("projector_rss"),
            "< 100 MiB",
            r.value("projector_rss") < 100.0,
        ),
        (
            "collector RSS (re-scan size)",
            r.value("collector_rss"),
            "< 200 MiB",
            r.value("collector_rss") < 200.0,
        ),
        (
            "re-scan resource events",
            r.value("rescan_resource_events"),
            "0",
            r.value("rescan_resource_events") == 0.0,
        ),
    ];
    for (name, value, target, met) in absolute {
        r.lines.push(format!(
            "| {name} | {value:.1} | {target} | {} |",
            if met { "met" } else { "**not met**" }
        ));
    }
    write_report(&r, quick, n, rescan_n, started).await
}

async fn write_report(
    r: &Results,
    quick: bool,
    n: usize,
    rescan_n: usize,
    started: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let nats = std::env::var("NATS_SERVER_VERSION").unwrap_or_default();
    let pg = std::env::var("POSTGRES_VERSION").unwrap_or_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf();
    std::fs::create_dir_all(root.join("target/bench"))?;
    let results = json!({
        "date": started.to_rfc3339(),
        "quick": quick,
        "events": n,
        "machine": {"cores": cores, "memory_gib": mem, "cpu": cpu, "nats_server": nats, "postgres": pg},
        "figures": r.figures,
    });
    std::fs::write(
        root.join("target/bench/results.json"),
        serde_json::to_vec_pretty(&results)?,
    )?;
    let mut md = String::new();
    md.push_str("# Benchmarks\n\n");
    md.push_str(&format!(
        "Written by `make bench{}` on {} — {cores} cores ({cpu}), {mem:.1} GiB memory, nats-server {nats}, PostgreSQL {pg}. \
         Every ratio compares two figures measured in this same run; servers are throwaway, on loopback, sharing the cores with the measured process.\n\n",
        if quick { " -- --quick" } else { "" },
        started.format("%Y-%m-%d %H:%M UTC"),
    ));
    md.push_str(&format!("Events: {n} instance events per pass (payload ≈ {:.0} bytes as JSON); re-scan: {rescan_n} resources.\n\n", r.value("message_bytes")));
    md.push_str("## Budget\n\n| what | measured | budget | |\n|---|---|---|---|\n");
    for l in &r.lines {
        md.push_str(l);
        md.push('\n');
    }
    md.push_str("\n## Figures\n\n| figure | value |\n|---|---|\n");
    for f in r.figures.values() {
        if let (Some(label), Some(v), Some(u)) =
            (f["label"].as_str(), f["value"].as_f64(), f["unit"].as_str())
        {
            md.push_str(&format!("| {label} | {v:.1} {u} |\n"));
        }
    }
    let notes = root.join("docs/benchmarks-notes.md");
    if let Ok(extra) = std::fs::read_to_string(&notes) {
        md.push('\n');
        md.push_str(&extra);
    }
    std::fs::write(root.join("docs/benchmarks.md"), md)?;
    eprintln!("wrote docs/benchmarks.md and target/bench/results.json");
    Ok(())
}
