//! The `inventory` binary end to end: `up` with configuration from the
//! environment, `collect` over NATS, Ctrl-C (SIGINT) for a clean stop.

use std::process::Stdio;
use std::time::Duration;

use inventory_integration_tests::{Moto, command, free_addr, fresh_store};

/// The settings of an `inventory up` on this test's servers, serving on `api`,
/// plus `extra`.
fn up_env(
    db_url: String,
    api: std::net::SocketAddr,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let prefix = format!("cli{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let mut envs = vec![
        (
            "NATS_URL",
            std::env::var("INVENTORY_TEST_NATS_URL").unwrap(),
        ),
        ("DATABASE_URL", db_url),
        ("INVENTORY_SUBJECT_PREFIX", prefix),
        ("INVENTORY_API_ADDR", api.to_string()),
    ];
    envs.extend(extra.iter().cloned());
    envs
}

/// A moto with one VPC, and the settings of an `inventory up` on a fresh
/// database that collects it at start, plus `extra`: moto, the VPC's id, the
/// API address, the settings.
async fn one_vpc_fleet(
    extra: &[(&'static str, String)],
) -> (
    Moto,
    String,
    std::net::SocketAddr,
    Vec<(&'static str, String)>,
) {
    let moto = Moto::start().await;
    let vpc = moto
        .ec2("us-east-1")
        .create_vpc()
        .cidr_block("10.3.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    let (_, db_url) = fresh_store().await;
    let api = free_addr();
    let mut settings = vec![
        ("INVENTORY_AWS_REGIONS", "us-east-1".into()),
        ("INVENTORY_COLLECT_INTERVAL", "1h".into()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    settings.extend(extra.iter().cloned());
    let envs = up_env(db_url, api, &settings);
    (moto, vpc_id, api, envs)
}

/// `inventory collect <args>`: whether it succeeded, and the reply it printed.
async fn collect(envs: &[(&str, String)], args: &[&str]) -> (bool, serde_json::Value) {
    let out = command(envs)
        .arg("collect")
        .args(args)
        .output()
        .await
        .unwrap();
    // The reply, then (with `--wait`) the task as it ended: the last document.
    let reply = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .filter_map(Result::ok)
        .last()
        .unwrap_or_else(|| panic!("no reply: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), reply)
}

/// Send `signal` (e.g. `-HUP`) to a running `inventory`.
fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// `inventory schedules list`, parsed.
async fn schedules(envs: &[(&str, String)]) -> serde_json::Value {
    let out = command(envs)
        .args(["schedules", "list"])
        .output()
        .await
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Wait until `url` answers 200 and return its body.
async fn served(url: &str) -> serde_json::Value {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = client.get(url).send().await
            && resp.status().as_u16() == 200
        {
            return resp.json().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inventory up never served {url}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_up_serves_the_fleet_and_collect_requests_work() {
    let (_moto, vpc_id, api, envs) = one_vpc_fleet(&[]).await;
    let mut up = command(&envs)
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The collection at start lands in the API.
    let body = served(&format!("http://{api}/api/v1/aws/vpcs/{vpc_id}")).await;
    assert_eq!(body["vpc_id"], vpc_id.as_str());
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("http://{api}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    let (ok, reply) = collect(&envs, &["aws", "subnets", "--region", "us-east-1"]).await;
    assert!(ok && reply["request_id"].is_string(), "{reply}");
    let (ok, reply) = collect(&envs, &["aws", "teapots"]).await;
    assert!(!ok);
    assert_eq!(reply["error"]["code"], "unknown_kind");

    // Ctrl-C stops it cleanly.
    signal(&up, "-INT");
    let exit = tokio::time::timeout(Duration::from_secs(20), up.wait())
        .await
        .expect("up stops on SIGINT")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// `inventory up` with accounts from a configuration file: one reached by
/// assume-role on static keys read from files, one by a web identity token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_accounts_are_collected_with_their_named_credentials() {
    use aws_config::sts::AssumeRoleProvider;
    use aws_sdk_ec2::config::SharedCredentialsProvider;

    let moto = Moto::start().await;
    let mut vpcs = Vec::new();
    for account in ["222222222222", "333333333333"] {
        let provider = AssumeRoleProvider::builder(format!("arn:aws:iam::{account}:role/seed"))
            .configure(&moto.sdk_config())
            .build()
            .await;
        let conf = moto
            .sdk_config()
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        let out = aws_sdk_ec2::Client::new(&conf)
            .create_vpc()
            .cidr_block("10.4.0.0/16")
            .send()
            .await
            .unwrap();
        vpcs.push((account, out.vpc().unwrap().vpc_id().unwrap().to_owned()));
    }
    let dir = std::env::temp_dir().join(format!("inventory-cli-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in [
        ("key-id", "testing"),
        ("secret", "testing"),
        ("token", "eyJ.test.token"),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let d = dir.display();
    let config = format!(
        r#"
aws:
  regions: [us-east-1]
  credentials:
    keys: {{ type: static, access_key_id_file: {d}/key-id, secret_access_key_file: {d}/secret }}
    audit: {{ type: assume_role, source: keys, role_arn: "arn:aws:iam::222222222222:role/inventory", external_id: x }}
    pod: {{ type: web_identity, role_arn: "arn:aws:iam::333333333333:role/inventory", token_file: {d}/token }}
  accounts:
    - {{ id: "222222222222", credential: audit }}
    - {{ id: "333333333333", credential: pod }}
collector: {{ interval: 1h }}
"#
    );
    std::fs::write(dir.join("inventory.yaml"), &config).unwrap();
    let (_, db_url) = fresh_store().await;
    let api = free_addr();
    let envs = up_env(
        db_url,
        api,
        &[
            (
                "INVENTORY_CONFIG",
                dir.join("inventory.yaml").display().to_string(),
            ),
            ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
        ],
    );
    let up = command(&envs)
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for (account, vpc) in &vpcs {
        let body = served(&format!("http://{api}/api/v1/aws/vpcs/{vpc}")).await;
        assert_eq!(body["account_id"], *account);
    }
    // `--wait` follows the task to its end and exits non-zero unless it completed.
    let (ok, task) = collect(
        &envs,
        &["aws", "vpcs", "--account", "333333333333", "--wait"],
    )
    .await;
    assert!(ok, "{task}");
    assert_eq!(task["state"], "completed", "{task}");
    assert!(
        task["progress"]["scopes_done"].as_u64().unwrap() >= 1,
        "{task}"
    );
    let (ok, task) = collect(
        &envs,
        &["aws", "vpcs", "--account", "999999999999", "--wait"],
    )
    .await;
    assert!(!ok);
    assert_eq!(task["state"], "dead", "{task}");
    assert_eq!(task["error"]["code"], "unknown_account", "{task}");

    // The operator's view: the dead letter is listed, shown and re-drivable.
    let id = task["id"].as_str().unwrap();
    let tasks = |args: &[&str]| {
        let mut c = command(&envs);
        c.arg("tasks").args(args);
        c.output()
    };
    let out = tasks(&["list", "--state", "dead"]).await.unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(id) && listing.contains("is not configured"),
        "{listing}"
    );
    let out = tasks(&["show", id]).await.unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["state"], "dead");
    let out = tasks(&["cancel", id]).await.unwrap();
    assert!(!out.status.success(), "a dead task cannot be cancelled");
    let out = tasks(&["retry", id]).await.unwrap();
    assert!(out.status.success());
    let retried: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(retried["redriven"], 1);
    let out = tasks(&["show", "no-such-task"]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task no-such-task"));
    let listed = schedules(&envs).await;
    assert_eq!(listed[0]["name"], "all", "the default schedule: {listed}");

    // A changed configuration takes effect on SIGHUP: the configured schedule
    // replaces the default one.
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "{config}schedules: [{{ name: nightly, request: {{ source: aws, kind: all }}, cron: \"0 2 * * *\" }}]\n"
        ),
    )
    .unwrap();
    signal(&up, "-HUP");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listed = schedules(&envs).await;
        if listed.as_array().unwrap().len() == 1 && listed[0]["name"] == "nightly" {
            assert_eq!(listed[0]["cron"], "0 2 * * *");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "schedules not reloaded: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The families `/metrics` of `inventory up` has after a collection: every
/// one that dashboards and alerts use (docs/observability.md).
const FAMILIES: &[&str] = &[
    "inventory_stream_messages",
    "inventory_stream_bytes",
    "inventory_stream_last_sequence",
    "inventory_consumer_pending_messages",
    "inventory_consumer_ack_pending_messages",
    "inventory_consumer_redelivered_messages",
    "inventory_projection_checkpoint_sequence",
    "inventory_projection_lag_messages",
    "inventory_projection_lag_seconds",
    "inventory_projector_events_total",
    "inventory_projector_batch_duration_seconds",
    "inventory_dead_letters",
    "inventory_provider_calls_total",
    "inventory_provider_throttles_total",
    "inventory_provider_retries_total",
    "inventory_scans_total",
    "inventory_scan_duration_seconds",
    "inventory_scan_resources_total",
    "inventory_tasks",
    "inventory_task_duration_seconds",
    "inventory_resources",
    "inventory_changes_total",
    "inventory_http_requests_total",
    "inventory_http_request_duration_seconds",
    "inventory_build_info",
];

/// `inventory up` with JSON logs and an OTLP endpoint: `/metrics` on the API
/// address has every family with real values and passes promtool, log lines
/// carry the trace and span ids of their span, and those spans reach the
/// OTLP receiver under the service name `inventory-up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_up_serves_metrics_and_exports_spans_named_in_its_json_logs() {
    use inventory_integration_tests::otlp::OtlpReceiver;
    use inventory_integration_tests::scrape::{Scrape, promtool};
    use tokio::io::AsyncBufReadExt;

    let receiver = OtlpReceiver::start();
    let (_moto, vpc_id, api, envs) = one_vpc_fleet(&[
        ("INVENTORY_LOG_FORMAT", "json".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()),
    ])
    .await;
    let mut up = command(&envs)
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(up.stderr.take().unwrap()).lines();
    let logged = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });

    served(&format!("http://{api}/api/v1/aws/vpcs/{vpc_id}")).await;
    // The sample refreshes every 5 s: wait for one after the projection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = inventory_integration_tests::scrape::get(&format!("http://{api}")).await;
        let s = Scrape::parse(&text);
        // The collection at start is a task: its attempt recorded too.
        if s.sum("inventory_resources", &[("kind", "vpc")]) >= Some(2.0)
            && s.sum("inventory_projection_lag_messages", &[]) == Some(0.0)
            && s.sum("inventory_task_duration_seconds_count", &[]) >= Some(1.0)
        {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let scrape = Scrape::parse(&text);
    let missing: Vec<_> = FAMILIES
        .iter()
        .filter(|f| !scrape.families.contains_key(**f))
        .collect();
    assert!(missing.is_empty(), "missing families: {missing:?}");
    assert!(scrape.value("inventory_scans_total", &[("outcome", "completed")]) >= 1.0);
    let (ok, out) = promtool(&["check", "metrics"], &text);
    assert!(ok, "promtool check metrics: {out}");

    signal(&up, "-INT");
    let exit = tokio::time::timeout(Duration::from_secs(20), up.wait())
        .await
        .expect("up stops on SIGINT")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let lines = logged.await.unwrap();
    let scans: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "scan completed")
        .collect();
    assert!(!scans.is_empty(), "{lines:#?}");
    let line = &scans[0];
    let (trace, span) = (
        line["trace_id"].as_str().expect("trace_id"),
        line["span_id"].as_str().expect("span_id"),
    );
    assert_eq!((trace.len(), span.len()), (32, 16), "{line}");
    // Spans are exported at the stop at the latest.
    let spans = receiver
        .wait_for("the logged scan's span", |spans| {
            spans.iter().any(|s| s.span_id == span)
        })
        .await;
    let scan = spans.iter().find(|s| s.span_id == span).unwrap();
    assert_eq!(
        (
            scan.name.as_str(),
            scan.trace_id.as_str(),
            scan.service.as_str()
        ),
        ("scan", trace, "inventory-up")
    );
}
