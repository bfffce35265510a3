//! Regression tests, each named after a defect found by review or by using the
//! system as its users do (issue 13). Each failed on the code before its fix.

use std::time::Duration;

use inventory_collector::{Collector, CollectorSettings};
use inventory_integration_tests::synthetic::{
    ACCOUNT, checksums, envelope, publish_history, publish_history_in,
};
use inventory_integration_tests::{
    ListedSource, TestEnv, age_out, fresh_store, test_tasks, wait_for_task,
};
use inventory_model::{CollectRequest, EventType, TaskState};
use inventory_store::Store;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Rows of a query on the test's database.
async fn sql(db_url: &str, query: &str) -> Vec<tokio_postgres::Row> {
    let (client, conn) = tokio_postgres::connect(db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.query(query, &[]).await.unwrap()
}

/// Run statements (DDL, several at once) on the test's database.
async fn sql_exec(db_url: &str, statements: &str) {
    let (client, conn) = tokio_postgres::connect(db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(statements).await.unwrap()
}

async fn sql_count(db_url: &str, query: &str) -> i64 {
    sql(db_url, query).await[0].get(0)
}

/// Defect 1: two projectors on one projection committed batches that began
/// past the checkpoint (after the other had restarted their shared consumer),
/// and the events between were never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_projectors_on_one_projection_lose_no_events() {
    let env = TestEnv::new().await;
    publish_history(&env.bus, 800).await;
    let (shared, _) = fresh_store().await;
    let mut rng = fastrand::Rng::with_seed(13);
    // Three instances, each stopped (gracefully or killed) and started again
    // at random, over the stream as it is and while more is published.
    let mut running: Vec<Option<(CancellationToken, tokio::task::JoinHandle<_>)>> =
        (0..3).map(|_| None).collect();
    let start = |batch: usize| {
        let token = CancellationToken::new();
        let task = tokio::spawn(env.projector(&shared, "tables", batch).run(token.clone()));
        Some((token, task))
    };
    let mut restarts = 0;
    let mut live = Some(tokio::spawn({
        let bus = env.bus.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            publish_history_in(&bus, 400, &["ap-south-1", "sa-east-1"]).await;
        }
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let i = rng.usize(0..running.len());
        if let Some((token, task)) = running[i].take() {
            if rng.bool() {
                token.cancel();
            } else {
                task.abort();
            }
            let _ = task.await;
            restarts += 1;
        }
        running[i] = start(rng.usize(20..120));
        for slot in running.iter_mut() {
            if slot.is_none() {
                *slot = start(rng.usize(20..120));
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(50..250))).await;
        if live.as_ref().is_some_and(|t| t.is_finished()) {
            live.take().unwrap().await.unwrap();
        }
        let target = env.bus.last_event_seq().await.unwrap();
        if live.is_none() && restarts >= 12 && shared.checkpoint("tables").await.unwrap() >= target
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projectors did not catch up"
        );
    }
    for (token, task) in running.into_iter().flatten() {
        token.cancel();
        task.await.unwrap().unwrap();
    }

    env.project(&env.store, "tables").await;
    let single = checksums(&env.store).await;
    assert_eq!(checksums(&shared).await, single);
    let rows = |t: &str| single.iter().find(|c| c.table == t).unwrap().rows;
    assert_eq!(rows("aws_instance"), 2 * 800 + 2 * 400);
}

/// Defect 2: Ctrl-C during `make run`'s first collection took about 30 s: the
/// terminal's SIGINT reached nats-server with everything else, and the
/// collector then waited on publish timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_the_first_collection_of_make_run_stops_everything_within_5s() {
    use inventory_integration_tests::free_addr;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let data = std::env::temp_dir().join(format!("inventory-run-{}", uuid::Uuid::now_v7()));
    let log = data.with_extension("log");
    let ports: Vec<u16> = (0..5).map(|_| free_addr().port()).collect();
    let cleanup = Leftovers {
        data: data.clone(),
        log: log.clone(),
        ports: ports.clone(),
    };
    let api = format!("127.0.0.1:{}", ports[4]);
    let mut run = tokio::process::Command::new("bash");
    run.arg(root.join("scripts/run.sh"))
        .current_dir(root)
        .env("INVENTORY_DATA_DIR", &data)
        .env("INVENTORY_NATS_PORT", ports[0].to_string())
        .env("INVENTORY_NATS_MONITOR_PORT", ports[1].to_string())
        .env("INVENTORY_PG_PORT", ports[2].to_string())
        .env("INVENTORY_MOTO_PORT", ports[3].to_string())
        .env("INVENTORY_API_ADDR", &api)
        .env(
            "INVENTORY_BIN",
            inventory_integration_tests::inventory_bin(),
        );
    for var in [
        "NATS_URL",
        "DATABASE_URL",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "INVENTORY_CONFIG",
        "RUST_LOG",
    ] {
        run.env_remove(var);
    }
    // Its own process group, which gets the signal as a terminal's would; the
    // log in a file (a pipe nobody reads would fill and stall everything).
    run.process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    let mut child = run.spawn().unwrap();
    let group = child.id().unwrap() as i32;
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();

    // As soon as the first instances appear.
    let client = reqwest::Client::new();
    let url = format!("http://{api}/api/v1/aws/instances");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(resp) = client.get(&url).send().await
            && let Ok(body) = resp.json::<Value>().await
            && body["items"].as_array().is_some_and(|i| !i.is_empty())
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("make run ended on its own ({status}): {}", logged());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "make run never served an instance: {}",
            logged()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pressed = tokio::time::Instant::now();
    kill(&format!("-{group}"), "-INT");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("make run stops on Ctrl-C")
        .unwrap();
    let took = pressed.elapsed();
    let err = logged();
    assert!(
        took < Duration::from_secs(5),
        "stopping took {took:?}: {err}"
    );
    assert!(err.contains("[inventory] stopped"), "{err}");
    assert_eq!(status.code(), Some(130), "{status:?}");
    // Nothing it started is left: no server listens, PostgreSQL is down.
    for port in &ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", *port)).is_err(),
            "port {port} still answers after make run stopped"
        );
    }
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "PostgreSQL is still running"
    );
    drop(cleanup);
}

fn kill(target: &str, signal: &str) {
    std::process::Command::new("kill")
        .args([signal, "--", target])
        .status()
        .unwrap();
}

/// Leaves nothing of a `make run` running if its test fails half-way: kills
/// whatever listens on its ports, stops its PostgreSQL, removes its files.
struct Leftovers {
    data: std::path::PathBuf,
    log: std::path::PathBuf,
    ports: Vec<u16>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for port in &self.ports {
            let _ = std::process::Command::new("fuser")
                .args(["-s", "-k", &format!("{port}/tcp")])
                .status();
        }
        let pg = self.data.join("pg");
        if pg.join("postmaster.pid").exists() {
            let _ = std::process::Command::new("runuser")
                .args(["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl"])
                .arg("-D")
                .arg(&pg)
                .args(["-m", "immediate", "stop"])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A collector of `source` on the test's bus, with quick task settings.
fn listed_collector(env: &TestEnv, source: ListedSource) -> Collector {
    Collector::new(
        env.bus.clone(),
        source,
        CollectorSettings {
            scan_retries: 0,
            tasks: test_tasks(),
            ..Default::default()
        },
    )
}

async fn collect(c: &Collector, kind: &str) -> inventory_collector::CollectionReport {
    c.collect(
        &CollectRequest::of("aws", kind),
        &uuid::Uuid::now_v7().to_string(),
    )
    .await
    .unwrap()
}

/// Every notification in the changes stream: (subject, event sequence).
async fn notifications(env: &TestEnv) -> Vec<(String, u64)> {
    let client = async_nats::connect(std::env::var("INVENTORY_TEST_NATS_URL").unwrap())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(env.bus.names().changes_stream())
        .await
        .unwrap();
    let info = stream.get_info().await.unwrap();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        if let Ok(m) = stream.get_raw_message(seq).await {
            let event: u64 = m
                .headers
                .get("Inventory-Event-Seq")
                .unwrap()
                .as_str()
                .parse()
                .unwrap();
            out.push((m.subject.to_string(), event));
        }
    }
    out
}

/// The change notifier of the test's projection, running.
fn start_notifier(env: &TestEnv) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(inventory_projector::notify::run_notifier(
        env.store.clone(),
        env.bus.clone(),
        "tables".into(),
        stop.clone(),
    ));
    (stop, task)
}

/// Run the notifier until the changes stream holds `n` notifications.
async fn notify_until(env: &TestEnv, n: usize) {
    let (stop, task) = start_notifier(env);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while notifications(env).await.len() < n {
        assert!(!task.is_finished(), "the notifier stopped");
        assert!(tokio::time::Instant::now() < deadline, "no notification");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give it the time to publish more than it should have.
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.cancel();
    task.await.unwrap();
}

async fn publish_vpc(env: &TestEnv, scan: &str, id: &str) -> u64 {
    let e = envelope(
        EventType::ResourceCreated,
        "vpc",
        Some("eu-west-1"),
        scan,
        Some(id),
        Some(json!({"vpcId": id})),
    );
    env.bus.publish_events(&[e], None).await.unwrap()[0].seq
}

/// Defect 4: the change notifier failed at start (silently, in `inventory up`)
/// when its last notification had aged out of the changes stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_notifier_starts_when_its_last_notification_has_aged_out() {
    let env = TestEnv::new().await;
    publish_vpc(&env, "s1", "vpc-1").await;
    publish_vpc(&env, "s1", "vpc-2").await;
    env.project_default().await;
    notify_until(&env, 2).await;

    age_out(&env.bus.names().changes_stream()).await;
    let third = publish_vpc(&env, "s2", "vpc-3").await;
    env.project_default().await;
    notify_until(&env, 1).await;
    let notes = notifications(&env).await;
    assert_eq!(notes.len(), 1, "only the new change: {notes:?}");
    assert_eq!(notes[0].1, third);
    assert!(
        notes[0].0.ends_with(".changes.aws.vpc.created"),
        "{notes:?}"
    );

    // Where it stood is recorded in PostgreSQL; without that record (a
    // deployment from before it), it starts at the projection's checkpoint.
    age_out(&env.bus.names().changes_stream()).await;
    sql_exec(&env.db_url, "DELETE FROM change_notifier").await;
    let fourth = publish_vpc(&env, "s3", "vpc-4").await;
    env.project_default().await;
    let (stop, task) = start_notifier(&env);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let fifth = publish_vpc(&env, "s4", "vpc-5").await;
    env.project_default().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while notifications(&env).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no notification");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.cancel();
    task.await.unwrap();
    let notes: Vec<u64> = notifications(&env).await.iter().map(|n| n.1).collect();
    assert_eq!(
        notes,
        [fifth],
        "changes up to the checkpoint ({fourth}) count as notified"
    );
}

/// Defect 5: a batch the database refused as data, whose dead letter could
/// not be written either, was retried in a hot loop with no backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_keeps_failing_is_retried_with_backoff() {
    let env = TestEnv::new().await;
    // jsonb cannot hold \u0000: the database refuses the event as data.
    let bad = envelope(
        EventType::ResourceCreated,
        "vpc",
        Some("eu-west-1"),
        "s1",
        Some("vpc-nul"),
        Some(json!({"vpcId": "vpc-nul", "description": "a\u{0}b"})),
    );
    env.bus.publish_events(&[bad], None).await.unwrap();
    // Every attempt to dead-letter it counts, then fails as data too.
    sql_exec(
        &env.db_url,
        "CREATE SEQUENCE attempts; \
         CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           PERFORM nextval('attempts'); \
           RAISE EXCEPTION 'no dead letters today' USING ERRCODE = '23514'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON dead_letter FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(env.projector(&env.store, "tables", 100).run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = sql_count(&env.db_url, "SELECT last_value FROM attempts").await;
    assert!(
        (2..=20).contains(&attempts),
        "{attempts} attempts in 3 s: a retry loop without backoff"
    );
    // Once the database takes the dead letter, the stream moves on.
    sql_exec(&env.db_url, "DROP TRIGGER refuse ON dead_letter").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while env.store.checkpoint("tables").await.unwrap() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    let reason: String = sql(&env.db_url, "SELECT reason FROM dead_letter").await[0].get(0);
    assert!(reason.contains("rejected by the database"), "{reason}");
}

/// Defect 6: one listed item without an id failed every scan of its scope,
/// which then never published a deletion again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_without_an_id_is_dead_lettered_and_its_scan_completes() {
    let env = TestEnv::new().await;
    let source = ListedSource::new(ACCOUNT, &["eu-west-1"]);
    source.set(
        "vpc",
        json!({"vpcSet": [{"vpcId": "vpc-1"}, {"cidrBlock": "10.9.0.0/16"}, {"vpcId": "vpc-2"}]}),
    );
    let collector = listed_collector(&env, source.clone());
    let report = collect(&collector, "vpcs").await;
    let scan = &report.scans[0];
    assert_eq!(scan.error, None, "{scan:?}");
    assert_eq!((scan.seen, scan.created, scan.rejected), (2, 2, 1));
    env.project_default().await;
    let api = env.api();
    assert_eq!(
        api.ids("/api/v1/aws/vpcs", "vpc_id").await,
        ["vpc-1", "vpc-2"]
    );
    let letters = sql(
        &env.db_url,
        "SELECT reason, convert_from(payload, 'UTF8') FROM dead_letter",
    )
    .await;
    assert_eq!(letters.len(), 1);
    let (reason, payload): (String, String) = (letters[0].get(0), letters[0].get(1));
    assert!(reason.contains("without an id at"), "{reason}");
    assert!(
        payload.contains("10.9.0.0/16"),
        "the item is kept: {payload}"
    );

    // The scope's scans still complete, so deletions go out.
    source.set(
        "vpc",
        json!({"vpcSet": [{"vpcId": "vpc-1"}, {"cidrBlock": "10.9.0.0/16"}]}),
    );
    let report = collect(&collector, "vpcs").await;
    assert_eq!(report.scans[0].deleted, 1, "{:?}", report.scans[0]);
    env.project_default().await;
    assert_eq!(api.ids("/api/v1/aws/vpcs", "vpc_id").await, ["vpc-1"]);
    assert_eq!(
        sql_count(&env.db_url, "SELECT count(*) FROM dead_letter").await,
        2
    );
}

/// Defect 7: a resource whose only event had aged out of the stream, and that
/// then disappeared, was never deleted: the collector did not know of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_whose_last_event_aged_out_is_deleted_by_the_next_completed_scan() {
    let env = TestEnv::new().await;
    let source = ListedSource::new(ACCOUNT, &["eu-west-1"]);
    source.set(
        "vpc",
        json!({"vpcSet": [{"vpcId": "vpc-1"}, {"vpcId": "vpc-2"}]}),
    );
    let collector = listed_collector(&env, source.clone());
    collect(&collector, "vpcs").await;
    env.project_default().await;

    age_out(&env.bus.names().events_stream()).await;
    env.bus.ensure_topology().await.unwrap();
    source.set("vpc", json!({"vpcSet": [{"vpcId": "vpc-1"}]}));
    let report = collect(&collector, "vpcs").await;
    // The collector knew nothing: it announces vpc-1 again, deletes nothing.
    assert_eq!((report.scans[0].created, report.scans[0].deleted), (1, 0));
    env.project_default().await;

    let api = env.api();
    assert_eq!(api.ids("/api/v1/aws/vpcs", "vpc_id").await, ["vpc-1"]);
    let (status, body) = api.get("/api/v1/aws/vpcs/vpc-2").await;
    assert_eq!(status, 410, "{body}");
    let (_, history) = api.get("/api/v1/aws/vpcs/vpc-2/history").await;
    let changes: Vec<&str> = history["items"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["deleted", "created"], "{history}");
    let (_, feed) = api.get("/api/v1/changes?since=0&change=deleted").await;
    assert_eq!(feed["items"][0]["id"], "vpc-2", "{feed}");
    // vpc-1 was announced again, which changed nothing in its history.
    let (_, history) = api.get("/api/v1/aws/vpcs/vpc-1/history").await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
}

/// Defect 8a: `GET /api/v1/tasks` read every task record from NATS on each
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_tasks_reads_no_task_records_from_nats() {
    let env = TestEnv::new().await;
    for i in 0..150 {
        env.bus
            .intake(
                "aws",
                "vpcs",
                Ok(CollectRequest::default()),
                Some(&format!("t-{i:03}")),
                None,
            )
            .await
            .unwrap();
    }
    let api = env.api();
    let (status, first) = api.get("/api/v1/tasks?limit=100").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["items"].as_array().unwrap().len(), 100);
    let sent = env.bus.messages_sent();
    let mut ids = Vec::new();
    let mut url = "/api/v1/tasks?limit=40".to_owned();
    loop {
        let (_, page) = api.get(&url).await;
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => url = format!("/api/v1/tasks?limit=40&cursor={}", urlencode(next)),
            None => break,
        }
    }
    assert!(
        env.bus.messages_sent() - sent < 5,
        "listing tasks sent {} messages to NATS",
        env.bus.messages_sent() - sent
    );
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 150, "every task once across pages");
    // A new task shows without a read per request.
    env.bus
        .intake(
            "aws",
            "subnets",
            Ok(CollectRequest::default()),
            Some("t-new"),
            None,
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = api.get("/api/v1/tasks?kind=subnets").await;
        if page["items"][0]["id"] == "t-new" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the view did not follow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Defect 8b: each `?min_seq=` waiter polled PostgreSQL every 50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_reads_share_one_checkpoint_poller() {
    let env = TestEnv::new().await;
    // Count the checkpoint's reads: a view over the table that counts.
    sql_exec(
        &env.db_url,
        "INSERT INTO projection_checkpoint (projection, last_seq) VALUES ('tables', 5); \
         ALTER TABLE projection_checkpoint RENAME TO checkpoint_rows; \
         CREATE SEQUENCE reads; \
         CREATE VIEW projection_checkpoint AS \
           SELECT c.* FROM checkpoint_rows c, LATERAL (SELECT nextval('reads')) n",
    )
    .await;
    let api = std::sync::Arc::new(env.api());
    let waiters: Vec<_> = (0..50)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get("/api/v1/aws/vpcs?min_seq=9").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sql_exec(&env.db_url, "UPDATE checkpoint_rows SET last_seq = 9").await;
    for waiter in waiters {
        let (status, body) = waiter.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let reads = sql_count(&env.db_url, "SELECT last_value FROM reads").await;
    assert!(
        reads < 150,
        "50 waiters read the checkpoint {reads} times in 2 s"
    );
}

/// Defect 11: a collection request for a region that does not exist was
/// accepted, then failed at the provider and was retried as if transient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_an_unknown_region_is_refused_at_intake_and_never_retried() {
    let env = TestEnv::new().await;
    let source = ListedSource::new(ACCOUNT, &["eu-west-1", "us-east-1"]);
    let collector = listed_collector(&env, source);
    let stop = CancellationToken::new();
    let running = tokio::spawn(collector.clone().run(stop.clone()));
    let api = env.api();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = api
        .client
        .post(format!("{}/api/v1/collect", api.base))
        .json(&json!({"source": "aws", "kind": "vpcs", "regions": ["../.."]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_region", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"../..\"") && message.contains("eu-west-1, us-east-1"),
        "{message}"
    );
    let id = body["request_id"].as_str().unwrap();
    let task = env.bus.task(id).await.unwrap().unwrap();
    assert_eq!((task.state, task.attempts), (TaskState::Dead, 0));
    // The same over NATS, as any client sends it.
    let reply = env
        .bus
        .request_collection(
            &CollectRequest {
                regions: vec!["eu-west-1".into(), "mars-1".into()],
                ..CollectRequest::of("aws", "vpcs")
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply["error"]["code"], "unknown_region", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"mars-1\"") && !message.contains("\"eu-west-1\""),
        "only the unknown region is named: {message}"
    );

    // A task that reaches a collector anyway (queued directly) is dead at its
    // first attempt: the argument can never succeed.
    let queued = env
        .bus
        .intake(
            "aws",
            "vpcs",
            Ok(CollectRequest {
                regions: vec!["mars-1".into()],
                ..Default::default()
            }),
            Some("straight-to-the-queue"),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(queued, inventory_bus::Intake::Accepted(_)));
    let task = wait_for_task(&env, "straight-to-the-queue").await;
    assert_eq!(task.state, TaskState::Dead, "{task:?}");
    assert_eq!(task.attempts, 1);
    assert_eq!(task.error.unwrap().code, "unknown_region");
    stop.cancel();
    running.await.unwrap().unwrap();
}

/// Defect 12: client commands printed service logs around their output (and
/// colour codes into pipes), a stored error quoted a 5,000-character id in
/// full, and with NATS down `inventory tasks list` took 10 s to say so unclearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_print_no_service_logs_and_fail_fast_without_nats() {
    use inventory_integration_tests::{command, free_addr};
    let env = TestEnv::new().await;
    let huge = "x".repeat(5000);
    let intake = env
        .bus
        .intake(
            "aws",
            "vpcs",
            Ok(CollectRequest::default()),
            Some(&huge),
            None,
        )
        .await
        .unwrap();
    let inventory_bus::Intake::Rejected { task, message, .. } = intake else {
        panic!("an invalid id is rejected");
    };
    assert!(
        message.len() < 300,
        "the stored error quotes {} bytes",
        message.len()
    );
    let out = command(&env.cli_env())
        .args(["tasks", "list"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains(&task.spec.id[..20]), "{stdout}");
    assert!(stdout.lines().all(|l| l.chars().count() < 260), "{stdout}");
    assert!(stderr.is_empty(), "logs around the output: {stderr}");

    let closed = free_addr();
    let mut envs = env.cli_env();
    envs.retain(|(k, _)| *k != "NATS_URL");
    envs.push(("NATS_URL", format!("nats://{closed}")));
    let started = tokio::time::Instant::now();
    let out = command(&envs)
        .args(["tasks", "list"])
        .output()
        .await
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(
        stderr.contains(&format!("cannot connect to NATS at nats://{closed}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr}"
    );
    assert!(stderr.lines().count() <= 4, "{stderr}");
}

/// The store alone: a batch that starts past the checkpoint is refused unless
/// the caller shows the stream holds nothing in between (defect 1's guard).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fold_refuses_a_batch_that_skips_events() {
    use inventory_store::{BatchItem, Hole, StoreError};
    let (store, _) = fresh_store().await;
    let skip = |seq| BatchItem::Skip { seq };
    store
        .apply_batch("p", &[skip(1), skip(2)], None)
        .await
        .unwrap();
    let err = store
        .apply_batch("p", &[skip(5), skip(6)], None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Gap {
                checkpoint: 2,
                first: 5
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.checkpoint("p").await.unwrap(),
        2,
        "nothing was written"
    );
    let hole = Hole { from: 3, to: 5 };
    let out = store
        .apply_batch("p", &[skip(5), skip(6)], Some(hole))
        .await
        .unwrap();
    assert_eq!(out.checkpoint, 6);
    // A batch partly applied already continues where the checkpoint is.
    let out = store
        .apply_batch("p", &[skip(5), skip(6), skip(7)], None)
        .await
        .unwrap();
    assert_eq!(out.checkpoint, 7);
    let _: &Store = &store;
}
