//! The web console in a real browser (Debian's chromium, driven by
//! playwright-core from npm) against a live stack on real nats-server,
//! PostgreSQL and moto: every page loads, shows the numbers the API reports,
//! cancels a task with its button, and logs no error. Screenshots are written
//! to `target/tmp/console/` (the script is `console/test.mjs`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use inventory_api::ApiState;
use inventory_api::auth::{Auth, Scope, Token};
use inventory_integration_tests::{Moto, TestEnv, wait_for_task};
use serde_json::json;
use sha2::Digest;
use tokio_util::sync::CancellationToken;

const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_what_the_api_reports_and_cancels_a_task() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: `make test` runs npm ci in {}",
        dir.display()
    );
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let ec2 = moto.ec2(REGION);
    let mut vpcs = Vec::new();
    for i in 0..3 {
        let vpc = ec2
            .create_vpc()
            .cidr_block(format!("10.{i}.0.0/16"))
            .send()
            .await
            .unwrap();
        let id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
        ec2.create_subnet()
            .vpc_id(&id)
            .cidr_block(format!("10.{i}.1.0/24"))
            .send()
            .await
            .unwrap();
        vpcs.push(id);
    }
    let collecting = CancellationToken::new();
    tokio::spawn(
        env.collector(moto.sdk_config(), &[REGION])
            .run(collecting.clone()),
    );
    let stop = CancellationToken::new();
    tokio::spawn(env.projector(&env.store, "tables", 500).run(stop.clone()));
    // The API asks for a token: the console takes one and sends it.
    let secret = "console-secret";
    let hash = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    let auth = Auth::with_tokens(vec![
        Token::from_hex("console", &hash, vec![Scope::Admin]).unwrap(),
    ])
    .unwrap();
    let api = env
        .api_with(
            ApiState::new(env.store.reader(), Some(env.bus.clone()))
                .with_sample_every(Duration::from_millis(500))
                .with_auth(auth),
        )
        .authorized(secret);

    // A collection of everything, then a change to one VPC and its re-collection.
    let all = api
        .collect(json!({"source": "aws", "kind": "all", "regions": [REGION]}))
        .await;
    assert_eq!(wait_for_task(&env, &all).await.state.as_str(), "completed");
    ec2.create_tags()
        .resources(&vpcs[0])
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("team")
                .value("console")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let again = api
        .collect(json!({"source": "aws", "kind": "vpcs", "regions": [REGION]}))
        .await;
    assert_eq!(
        wait_for_task(&env, &again).await.state.as_str(),
        "completed"
    );
    let (status, _) = api
        .get(&format!("/api/v1/aws/vpcs?after_task={again}"))
        .await;
    assert_eq!(status, 200);

    // No collector now: the next request waits in the queue, to be cancelled.
    collecting.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = api
        .collect(json!({"source": "aws", "kind": "subnets", "regions": [REGION]}))
        .await;
    assert_eq!(
        env.bus
            .task(&pending)
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "pending"
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    let out = tokio::process::Command::new("node")
        .arg(dir.join("test.mjs"))
        .env("INVENTORY_URL", &api.base)
        .env("INVENTORY_TOKEN", secret)
        .env("PENDING_TASK", &pending)
        .env("UPDATED_VPC", &vpcs[0])
        .env("SCREENSHOTS", &shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), out)
        .await
        .expect("the browser test finishes")
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("console ok"), "{report}");
    for page in [
        "overview",
        "tasks",
        "task",
        "inventory",
        "resource",
        "changes",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "{page}.png");
    }
    stop.cancel();
}
