//! `/metrics` against real nats-server, PostgreSQL and moto: the values follow
//! the pipeline (lag while the projector is stopped, back to 0 after it ran;
//! throttles and retries through the fault-injecting proxy; tasks by state as
//! `/api/v1/tasks` says; resources as the API lists them), the scrape passes
//! `promtool check metrics`, and every dashboard panel and alert rule parses
//! with `promtool` and uses only metrics a live scrape exports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use inventory_api::{ApiState, MetricsServer};
use inventory_integration_tests::scrape::{Scrape, metric_names, promtool};
use inventory_integration_tests::{
    Api, Faults, HttpFaultProxy, Moto, TestEnv, launch_instances, wait_for_task,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const REGION: &str = "us-east-1";

/// A stack whose collector runs tasks through a proxy that fails some
/// provider calls, an API sampling every 200 ms, and no projector yet.
struct Stack {
    env: TestEnv,
    api: Api,
    proxy: HttpFaultProxy,
    _moto: Moto,
    instances: usize,
    stop: CancellationToken,
}

impl Stack {
    async fn start() -> Stack {
        let env = TestEnv::new().await;
        let moto = Moto::start().await;
        let instances = launch_instances(&moto.ec2(REGION), 12).await.len();
        // Seeded: the same calls fail on every run, none three times in a row.
        let proxy = HttpFaultProxy::start(&moto.endpoint, Faults::Share(0.5), 5);
        let collector = env.collector(Moto::sdk_config_at(&proxy.endpoint), &[REGION]);
        let stop = CancellationToken::new();
        tokio::spawn(collector.run(stop.clone()));
        let api = env.api_with(
            ApiState::new(env.store.reader(), Some(env.bus.clone()))
                .with_sample_every(Duration::from_millis(200)),
        );
        Stack {
            env,
            api,
            proxy,
            _moto: moto,
            instances,
            stop,
        }
    }

    /// Collect instances through the REST API and wait for the task.
    async fn collect(&self) -> String {
        let id = self
            .api
            .collect(json!({"source": "aws", "kind": "instances", "regions": [REGION]}))
            .await;
        let task = wait_for_task(&self.env, &id).await;
        assert_eq!(task.state.as_str(), "completed", "{task:?}");
        id
    }

    /// Scrape until `done` holds (the sampler refreshes every 200 ms).
    async fn scrape_until(&self, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let scrape = Scrape::parse(&self.api.metrics().await);
            if done(&scrape) {
                return scrape;
            }
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

const TABLES: [(&str, &str); 1] = [("projection", "tables")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_collection_projection_and_tasks() {
    let stack = Stack::start().await;
    stack.collect().await;
    let last = stack.env.bus.last_event_seq().await.unwrap();
    let events = stack.env.bus.names().events_stream();

    // The projector has not run: every event is lag, and the oldest is aging.
    let lagging = stack
        .scrape_until("the lag shows the events", |s| {
            s.sum("inventory_projection_lag_messages", &TABLES) == Some(last as f64)
                && s.sum("inventory_projection_lag_seconds", &TABLES)
                    .unwrap_or(0.0)
                    > 0.0
        })
        .await;
    assert_eq!(
        lagging.value("inventory_projection_checkpoint_sequence", &TABLES),
        0.0
    );
    assert_eq!(
        lagging.value("inventory_stream_last_sequence", &[("stream", &events)]),
        last as f64
    );
    assert!(lagging.value("inventory_stream_messages", &[("stream", &events)]) >= last as f64);

    // After a projection run: caught up, lag 0 in messages and seconds.
    stack.env.project_default().await;
    let s = stack
        .scrape_until("the lag returns to 0", |s| {
            s.sum("inventory_projection_lag_messages", &TABLES) == Some(0.0)
                && s.sum("inventory_projection_lag_seconds", &TABLES) == Some(0.0)
        })
        .await;
    assert_eq!(
        s.value("inventory_projection_checkpoint_sequence", &TABLES),
        last as f64
    );
    // Every event folded once, by outcome.
    assert_eq!(
        s.value("inventory_projector_events_total", &TABLES),
        last as f64
    );
    assert_eq!(
        s.value(
            "inventory_projector_events_total",
            &[("projection", "tables"), ("outcome", "dead_lettered")]
        ),
        0.0
    );
    assert!(s.value("inventory_projector_batch_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(s.value("inventory_dead_letters", &TABLES), 0.0);

    // Resources as the API lists them, per account and region.
    let listed = stack.api.all("/api/v1/aws/instances?limit=100").await;
    assert_eq!(listed.len(), stack.instances);
    let account = listed[0]["account_id"].as_str().unwrap().to_owned();
    let instance = [
        ("source", "aws"),
        ("kind", "instance"),
        ("account_id", account.as_str()),
        ("region", REGION),
    ];
    assert_eq!(
        s.value("inventory_resources", &instance),
        stack.instances as f64
    );
    assert_eq!(
        s.value(
            "inventory_changes_total",
            &[
                ("source", "aws"),
                ("kind", "instance"),
                ("change", "created")
            ]
        ),
        stack.instances as f64
    );
    assert_eq!(
        s.value(
            "inventory_scan_resources_total",
            &[
                ("source", "aws"),
                ("kind", "instance"),
                ("change", "created")
            ]
        ),
        stack.instances as f64
    );

    // Scans and provider calls, throttles and retries as the proxy injected them.
    assert_eq!(
        s.value(
            "inventory_scans_total",
            &[
                ("source", "aws"),
                ("kind", "instance"),
                ("outcome", "completed")
            ]
        ),
        1.0
    );
    assert_eq!(
        s.sum(
            "inventory_scans_total",
            &[("source", "aws"), ("outcome", "failed")]
        )
        .unwrap_or(0.0),
        0.0
    );
    let injected = stack.proxy.injected() as f64;
    assert!(injected >= 2.0, "the proxy failed {injected} calls");
    let calls = s.value("inventory_provider_calls_total", &[("source", "aws")]);
    let retries = s.value("inventory_provider_retries_total", &[("source", "aws")]);
    let throttles = s.value("inventory_provider_throttles_total", &[("source", "aws")]);
    assert_eq!(retries, injected, "each failed call was sent again");
    assert!(calls > injected);
    assert!(
        throttles >= 1.0 && throttles <= injected,
        "{throttles} of {injected}"
    );
    assert!(
        s.value(
            "inventory_provider_calls_total",
            &[
                ("api", "DescribeInstances"),
                ("account_id", account.as_str()),
                ("region", REGION)
            ]
        ) >= 3.0,
        "12 instances in pages of 5"
    );

    // Tasks by state and priority, as /api/v1/tasks counts them.
    let (status, tasks) = stack.api.get("/api/v1/tasks?state=completed").await;
    assert_eq!(status, 200);
    let completed = tasks["items"].as_array().unwrap().len() as f64;
    assert_eq!(completed, 1.0);
    assert_eq!(
        s.value("inventory_tasks", &[("state", "completed")]),
        completed
    );
    assert_eq!(
        s.value(
            "inventory_tasks",
            &[("state", "completed"), ("priority", "normal")]
        ),
        completed
    );
    assert_eq!(s.value("inventory_tasks", &[("state", "active")]), 0.0);
    assert!(
        s.value(
            "inventory_task_duration_seconds_count",
            &[
                ("source", "aws"),
                ("kind", "instances"),
                ("outcome", "completed")
            ]
        ) == 1.0
    );
    // The task queue's consumers have nothing left unacked.
    let tasks_stream = stack.env.bus.names().tasks_stream();
    assert_eq!(
        s.value(
            "inventory_consumer_ack_pending_messages",
            &[("stream", tasks_stream.as_str())]
        ),
        0.0
    );

    // HTTP requests by route template, never by raw path (the list above
    // is in a scrape after it).
    let s = Scrape::parse(&stack.api.metrics().await);
    assert!(
        s.value(
            "inventory_http_requests_total",
            &[
                ("route", "/api/v1/{source}/{kinds}"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    assert!(
        s.value(
            "inventory_http_requests_total",
            &[
                ("route", "/api/v1/collect"),
                ("method", "POST"),
                ("status", "202")
            ]
        ) == 1.0
    );
    let raw_paths: Vec<_> = s
        .series
        .iter()
        .filter_map(|x| x.labels.get("route"))
        .filter(|r| r.contains("/aws/") || r.contains("instances"))
        .collect();
    assert!(raw_paths.is_empty(), "{raw_paths:?}");
    assert_eq!(
        s.value(
            "inventory_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // The exposition is valid as promtool reads it.
    let (ok, out) = promtool(&["check", "metrics"], &stack.api.metrics().await);
    assert!(ok, "promtool check metrics: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_and_projector_processes_serve_metrics_on_their_own_address() {
    let server = MetricsServer::start("127.0.0.1:0").unwrap();
    inventory_telemetry::metrics::METRICS
        .scans
        .with_label_values(&["aws", "vpc", "123", "completed"])
        .inc();
    let text = inventory_integration_tests::scrape::get(&format!("http://{}", server.addr)).await;
    let s = Scrape::parse(&text);
    assert_eq!(
        s.value("inventory_scans_total", &[("account_id", "123")]),
        1.0
    );
    assert!(
        s.sum("inventory_stream_messages", &[]).is_none(),
        "the API samples the stream"
    );
    let (ok, out) = promtool(&["check", "metrics"], &text);
    assert!(ok, "{out}");
    let stop = CancellationToken::new();
    stop.cancel();
    server.serve_until(stop.cancelled()).await.unwrap();
}

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every PromQL expression of every Grafana dashboard: (dashboard, panel title, expr).
fn dashboard_exprs() -> Vec<(String, String, String)> {
    let dir = deploy().join("grafana/dashboards");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(doc["uid"].is_string() && doc["title"].is_string(), "{name}");
        let panels = doc["panels"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: panels"));
        assert!(!panels.is_empty(), "{name} has panels");
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("").to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((name.clone(), title.clone(), expr.to_owned()));
                }
            }
        }
    }
    out
}

/// Grafana's variables as values PromQL parses.
fn without_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$__interval", "1m")
        .replace("$account_id", ".*")
        .replace("$region", ".*")
        .replace("$source", ".*")
        .replace("$kind", ".*")
}

/// The expressions of the alert rules.
fn alert_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    // Each rule's `expr:` (one line, or a `|` block below it).
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut alert = String::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- alert:") {
            alert = name.trim().to_owned();
        }
        if let Some(expr) = t.strip_prefix("expr:") {
            let expr = expr.trim();
            let expr = if expr == "|" || expr == ">" {
                let indent = lines[i + 1].len() - lines[i + 1].trim_start().len();
                lines[i + 1..]
                    .iter()
                    .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                expr.to_owned()
            };
            out.push((alert.clone(), expr));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_parse_and_use_only_exported_metrics() {
    let (ok, out) = promtool(
        &[
            "check",
            "rules",
            deploy().join("prometheus/alerts.yml").to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "promtool check rules alerts.yml: {out}");
    let (ok, out) = promtool(
        &[
            "check",
            "config",
            "--syntax-only",
            deploy().join("prometheus/prometheus.yml").to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "promtool check config: {out}");

    let panels = dashboard_exprs();
    let alerts = alert_exprs();
    assert!(panels.len() >= 20, "{} panel expressions", panels.len());
    assert!(alerts.len() >= 6, "{} alert rules", alerts.len());

    // Every panel expression parses: as a recording rule, checked by promtool.
    let dir = tempdir();
    let rules = dir.join("panels.yml");
    let mut yaml = String::from("groups:\n  - name: panels\n    rules:\n");
    for (i, (_, _, expr)) in panels.iter().enumerate() {
        let quoted = serde_json::to_string(&without_variables(expr)).unwrap();
        yaml.push_str(&format!(
            "      - record: panel:expr_{i}\n        expr: {quoted}\n"
        ));
    }
    std::fs::write(&rules, &yaml).unwrap();
    let (ok, out) = promtool(&["check", "rules", rules.to_str().unwrap()], "");
    assert!(ok, "a dashboard expression does not parse: {out}");

    // Every metric they name is one a live system exports after a collection.
    let stack = Stack::start().await;
    stack.collect().await;
    stack.env.project_default().await;
    let s = stack
        .scrape_until("every family is sampled", |s| {
            s.sum("inventory_projection_lag_messages", &TABLES) == Some(0.0)
        })
        .await;
    let exported = s.names();
    let mut unknown = Vec::new();
    for (where_, expr) in panels
        .iter()
        .map(|(d, t, e)| (format!("{d}: {t}"), e))
        .chain(alerts.iter().map(|(a, e)| (format!("alert {a}"), e)))
    {
        for name in metric_names(expr) {
            if !exported.contains(&name) {
                unknown.push(format!("{where_}: {name}"));
            }
        }
    }
    assert!(unknown.is_empty(), "not exported: {unknown:#?}");
    // And every family the system exports is on a dashboard.
    let used: std::collections::BTreeSet<String> = panels
        .iter()
        .flat_map(|(_, _, e)| metric_names(e))
        .collect();
    let shown: Vec<_> = s
        .families
        .keys()
        .filter(|f| {
            !used.contains(*f)
                && !["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|x| used.contains(&format!("{f}{x}")))
        })
        .filter(|f| *f != "inventory_metrics_sampled_timestamp_seconds")
        .collect();
    assert!(shown.is_empty(), "on no dashboard: {shown:?}");
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inventory-promql-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_counts_follow_creations_and_deletions_and_the_backfill_agrees() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let ec2 = moto.ec2(REGION);
    let mut vpcs = Vec::new();
    for i in 0..3 {
        let out = ec2
            .create_vpc()
            .cidr_block(format!("10.{i}.0.0/16"))
            .send()
            .await
            .unwrap();
        vpcs.push(out.vpc().unwrap().vpc_id().unwrap().to_owned());
    }
    let collector = env.collector(moto.sdk_config(), &[REGION]);
    let request = inventory_model::CollectRequest::of("aws", "vpcs");
    collector.collect(&request, "first").await.unwrap();
    env.project_default().await;
    // moto starts with a default VPC.
    let live = |counts: &[inventory_store::ResourceCount]| -> (u64, u64, u64) {
        let c = counts
            .iter()
            .find(|c| c.kind == "vpc" && c.region == REGION)
            .expect("vpc counts");
        (c.live, c.created, c.deleted)
    };
    let first = env.store.resource_counts().await.unwrap();
    let (n, created, deleted) = live(&first);
    assert_eq!((n, created, deleted), (4, 4, 0));

    ec2.delete_vpc().vpc_id(&vpcs[0]).send().await.unwrap();
    collector.collect(&request, "second").await.unwrap();
    // A re-scan that changes nothing counts nothing.
    collector.collect(&request, "third").await.unwrap();
    env.project_default().await;
    let counts = env.store.resource_counts().await.unwrap();
    assert_eq!(live(&counts), (3, 4, 1));
    let rows = env.store.table_rows("aws_vpc").await.unwrap();
    let not_deleted = rows.iter().filter(|r| r["deleted_at"].is_null()).count() as u64;
    assert_eq!(live(&counts).0, not_deleted, "live rows of the table");

    // The migration's backfill from the change log finds the same counts.
    let migration = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/V9__resource_count.sql"),
    )
    .unwrap();
    let backfill = &migration[migration.find("INSERT INTO resource_count").unwrap()..];
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DELETE FROM resource_count; {backfill}"))
        .await
        .unwrap();
    assert_eq!(env.store.resource_counts().await.unwrap(), counts);
}
