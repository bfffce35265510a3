//! Two providers side by side: AWS (moto) and Ganeti (a loopback server that
//! answers as its remote API does), whose kinds share names (`instance`).
//! Planning, links, routes, history and deletions stay apart per source.

use std::collections::BTreeSet;
use std::time::Duration;

use inventory_collector::{Collector, CollectorSettings};
use inventory_integration_tests::ganeti::GanetiRapi;
use inventory_integration_tests::{Moto, TestEnv, launch_instances, test_pacing, test_tasks};
use inventory_model::{CollectRequest, TaskState};
use inventory_source_ganeti::{ClusterSpec, GanetiConfig};
use serde_json::Value;

const REGION: &str = "us-east-1";

/// A password file for the cluster's RAPI user.
fn password_file(rapi: &GanetiRapi) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ganeti-password-{}", uuid::Uuid::now_v7()));
    std::fs::write(&path, format!("{}\n", rapi.password)).unwrap();
    path
}

fn cluster(rapi: &GanetiRapi, password: &std::path::Path) -> ClusterSpec {
    ClusterSpec {
        name: Some(rapi.name()),
        url: rapi.endpoint.clone(),
        user: Some(rapi.user.clone()),
        password_file: Some(password.to_owned()),
        ca_file: None,
        timeout: Duration::from_secs(5),
    }
}

/// One collector with an AWS account (moto) and a Ganeti cluster.
fn both(env: &TestEnv, moto: &Moto, clusters: Vec<ClusterSpec>) -> Collector {
    let mut accounts = inventory_source_ganeti::accounts(&GanetiConfig {
        clusters,
        pacing: test_pacing(),
    })
    .unwrap();
    accounts.push(inventory_collector::Account {
        source: std::sync::Arc::new(inventory_source_aws::AwsSource::with_pacer(
            moto.sdk_config(),
            "test",
            None,
            inventory_integration_tests::test_pacer(),
        )),
        label: "default".into(),
        label_is_id: false,
        regions: Some(vec![REGION.into()]),
        excluded_regions: Vec::new(),
    });
    Collector::with_accounts(
        env.bus.clone(),
        accounts,
        CollectorSettings {
            scan_retries: 1,
            retry_delay: Duration::from_millis(100),
            tasks: test_tasks(),
            ..Default::default()
        },
    )
}

async fn collect(c: &Collector, source: &str, kind: &str) -> inventory_collector::CollectionReport {
    c.collect(
        &CollectRequest::of(source, kind),
        &uuid::Uuid::now_v7().to_string(),
    )
    .await
    .expect("collection")
}

fn ids(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_stay_apart_in_planning_links_routes_history_and_deletions() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let aws_instances = launch_instances(&moto.ec2(REGION), 2).await;
    let rapi = GanetiRapi::start("inventory", "s3cret");
    let password = password_file(&rapi);
    let collector = both(&env, &moto, vec![cluster(&rapi, &password)]);

    // Every kind of every source: each account gets its own provider's kinds.
    let report = collect(&collector, "all", "all").await;
    assert_eq!(
        report.failed(),
        0,
        "{:?}",
        report
            .scans
            .iter()
            .filter(|s| s.error.is_some())
            .collect::<Vec<_>>()
    );
    let scanned: BTreeSet<(String, String)> = report
        .scans
        .iter()
        .map(|s| (s.account_id.clone(), s.kind.clone()))
        .collect();
    let cluster_name = rapi.name();
    for kind in ["instance", "node", "network", "group"] {
        assert!(
            scanned.contains(&(cluster_name.clone(), kind.to_owned())),
            "{kind}"
        );
    }
    assert!(
        !scanned.contains(&(cluster_name.clone(), "vpc".to_owned())),
        "the cluster was not asked for AWS kinds"
    );
    assert!(
        report
            .scans
            .iter()
            .all(|s| s.account_id == cluster_name || s.account_id == "123456789012")
    );
    env.project_default().await;
    let api = env.api();

    // Same kind name, two sources, two collections.
    let ganeti_instances = api.all("/api/v1/ganeti/instances").await;
    assert_eq!(
        ids(&ganeti_instances, "name"),
        BTreeSet::from([
            "db1.ganeti.example.org".to_owned(),
            "mail1.ganeti.example.org".into(),
            "web1.ganeti.example.org".into()
        ])
    );
    let aws_listed = api.ids("/api/v1/aws/instances", "instance_id").await;
    assert_eq!(aws_listed, aws_instances);
    let db1 = ganeti_instances
        .iter()
        .find(|i| i["name"] == "db1.ganeti.example.org")
        .unwrap();
    assert_eq!(db1["account_id"], cluster_name.as_str());
    assert_eq!(db1["primary_node"], "node1.ganeti.example.org");
    assert_eq!(db1["vcpus"], 4);
    assert_eq!(db1["oper_state"], true);
    assert_eq!(db1["tags"]["owner"], "dba", "string tags normalized: {db1}");
    assert_eq!(db1["tags"]["backup"], "");
    assert!(
        db1.get("region").is_none(),
        "a cluster has no regions: {db1}"
    );
    // Filters on either side's columns.
    let (status, down) = api.get("/api/v1/ganeti/instances?admin_state=down").await;
    assert_eq!(status, 200, "{down}");
    assert_eq!(
        ids(down["items"].as_array().unwrap(), "name"),
        BTreeSet::from(["mail1.ganeti.example.org".to_owned()])
    );

    // Links of each source, both ways; none across sources.
    let nodes = api
        .all("/api/v1/ganeti/instances/db1.ganeti.example.org/nodes")
        .await;
    assert_eq!(
        ids(&nodes, "name"),
        BTreeSet::from([
            "node1.ganeti.example.org".to_owned(),
            "node2.ganeti.example.org".into()
        ])
    );
    let on_node2 = api
        .all("/api/v1/ganeti/nodes/node2.ganeti.example.org/instances")
        .await;
    assert_eq!(
        ids(&on_node2, "name"),
        BTreeSet::from([
            "db1.ganeti.example.org".to_owned(),
            "mail1.ganeti.example.org".into()
        ])
    );
    let networks = api
        .all("/api/v1/ganeti/instances/db1.ganeti.example.org/networks")
        .await;
    assert_eq!(
        ids(&networks, "name"),
        BTreeSet::from(["backend".to_owned(), "public".into()])
    );
    let group = api
        .all("/api/v1/ganeti/nodes/node3.ganeti.example.org/groups")
        .await;
    assert_eq!(ids(&group, "name"), BTreeSet::from(["spare".to_owned()]));
    let (status, body) = api
        .get("/api/v1/ganeti/instances/db1.ganeti.example.org/subnets")
        .await;
    assert_eq!(status, 404, "{body}");
    let aws_instance = &aws_instances[0];
    let (status, _) = api
        .get(&format!("/api/v1/aws/instances/{aws_instance}/subnets"))
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .get(&format!("/api/v1/ganeti/instances/{aws_instance}"))
        .await;
    assert_eq!(status, 404, "an AWS instance is no Ganeti instance");

    // A request of one source plans only its accounts.
    let before = rapi.requests();
    let report = collect(&collector, "aws", "instances").await;
    assert!(report.scans.iter().all(|s| s.account_id == "123456789012"));
    assert_eq!(rapi.requests(), before, "the cluster was not called");
    let report = collect(&collector, "ganeti", "all").await;
    assert!(report.scans.iter().all(|s| s.account_id == cluster_name));
    assert_eq!(report.scans.len(), 4);

    // A deletion in one source deletes nothing in the other.
    rapi.edit(|c| {
        c.instances
            .retain(|i| i["name"] != "mail1.ganeti.example.org")
    });
    rapi.edit(|c| {
        let web1 = c
            .instances
            .iter_mut()
            .find(|i| i["name"] == "web1.ganeti.example.org")
            .unwrap();
        web1["beparams"]["maxmem"] = serde_json::json!(4096);
    });
    let report = collect(&collector, "ganeti", "instances").await;
    assert_eq!((report.scans[0].deleted, report.scans[0].updated), (1, 1));
    env.project_default().await;
    let (status, _) = api
        .get("/api/v1/ganeti/instances/mail1.ganeti.example.org")
        .await;
    assert_eq!(status, 410);
    assert_eq!(
        api.ids("/api/v1/aws/instances", "instance_id").await,
        aws_instances
    );
    let on_node2 = api
        .all("/api/v1/ganeti/nodes/node2.ganeti.example.org/instances")
        .await;
    assert_eq!(
        ids(&on_node2, "name"),
        BTreeSet::from(["db1.ganeti.example.org".to_owned()])
    );

    // History and the change feed, per source.
    let (_, history) = api
        .get("/api/v1/ganeti/instances/web1.ganeti.example.org/history")
        .await;
    let changes: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["updated", "created"]);
    let (_, diff) = api
        .get("/api/v1/ganeti/instances/web1.ganeti.example.org/diff")
        .await;
    assert_eq!(diff["changes"][0]["path"], "/beparams/maxmem", "{diff}");
    let (_, feed) = api
        .get("/api/v1/changes?since=0&source=ganeti&change=deleted")
        .await;
    let deleted: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["mail1.ganeti.example.org"]);
    let (_, feed) = api
        .get("/api/v1/changes?since=0&source=aws&kind=instances")
        .await;
    assert!(
        feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["source"] == "aws")
    );
    assert_eq!(feed["items"].as_array().unwrap().len(), aws_instances.len());
    let _ = std::fs::remove_file(password);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusters_denied_credentials_and_outages_are_told_apart() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let rapi = GanetiRapi::start("inventory", "s3cret");
    let password = password_file(&rapi);
    let mut wrong = cluster(&rapi, &password);
    wrong.user = Some("intruder".into());
    // A wrong password: denied at once, the reason names the cluster.
    let collector = both(&env, &moto, vec![wrong]);
    let report = collect(&collector, "ganeti", "all").await;
    let failure = &report.accounts_failed[0];
    assert_eq!(failure.code, "credentials_rejected", "{failure:?}");
    assert!(
        failure.error.contains("401") && failure.error.contains(&rapi.endpoint),
        "{failure:?}"
    );

    // A busy master (503): retried, then it completes.
    let collector = both(&env, &moto, vec![cluster(&rapi, &password)]);
    collect(&collector, "ganeti", "groups").await;
    rapi.fail(503, 2);
    let report = collect(&collector, "ganeti", "instances").await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.scans[0].retries, 2, "{report:?}");
    assert_eq!(report.scans[0].seen, 3);

    // As a task: denied credentials are dead at the first attempt.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut denied = cluster(&rapi, &password);
    denied.user = Some("intruder".into());
    let runner = both(&env, &moto, vec![denied]);
    let running = tokio::spawn(runner.clone().run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = env
        .bus
        .request_collection(
            &CollectRequest::of("ganeti", "instances"),
            Some("denied-cluster"),
        )
        .await
        .unwrap();
    assert!(reply["request_id"].is_string(), "{reply}");
    let task = inventory_integration_tests::wait_for_task(&env, "denied-cluster").await;
    assert_eq!(task.state, TaskState::Dead, "{task:?}");
    assert_eq!(task.attempts, 1);
    stop.cancel();
    running.await.unwrap().unwrap();
    let _ = std::fs::remove_file(password);
}

/// The binary, configured with a `ganeti:` section beside AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_up_collects_a_configured_cluster_beside_aws() {
    use inventory_integration_tests::{command, free_addr, fresh_store};
    let moto = Moto::start().await;
    let rapi = GanetiRapi::start("inventory", "s3cret");
    let password = password_file(&rapi);
    let dir = std::env::temp_dir().join(format!("inventory-sources-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("inventory.yaml");
    std::fs::write(
        &config,
        format!(
            "ganeti:\n  clusters:\n    - {{ url: \"{}\", user: {}, password_file: {} }}\ncollector: {{ interval: 1h }}\n",
            rapi.endpoint,
            rapi.user,
            password.display()
        ),
    )
    .unwrap();
    let (_, db_url) = fresh_store().await;
    let api = free_addr();
    let prefix = format!("src{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let envs = vec![
        (
            "NATS_URL",
            std::env::var("INVENTORY_TEST_NATS_URL").unwrap(),
        ),
        ("DATABASE_URL", db_url),
        ("INVENTORY_SUBJECT_PREFIX", prefix),
        ("INVENTORY_API_ADDR", api.to_string()),
        ("INVENTORY_CONFIG", config.display().to_string()),
        ("INVENTORY_AWS_REGIONS", REGION.into()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", REGION.into()),
    ];
    let mut up = command(&envs)
        .arg("up")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = client
            .get(format!("http://{api}/api/v1/ganeti/nodes"))
            .send()
            .await
            .ok();
        let regions = client
            .get(format!("http://{api}/api/v1/aws/regions"))
            .send()
            .await
            .ok();
        let count = |r: Option<reqwest::Response>| async {
            match r {
                Some(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["items"].as_array().map(Vec::len))
                    .unwrap_or(0),
                None => 0,
            }
        };
        if count(nodes).await == 3 && count(regions).await > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inventory up never served the cluster's nodes and AWS's regions"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(up.try_wait().unwrap().is_none(), "up is still running");
    let _ = up.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(password);
}
