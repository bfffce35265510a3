//! The collection control plane against real nats-server, PostgreSQL and moto:
//! schedules fired once per period by several instances, tasks surviving a
//! killed collector, retries and dead letters, priorities, cancel, and reads
//! that wait for a task's collection.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use inventory_bus::{Bus, Intake};
use inventory_collector::{Collector, CollectorSettings, TaskSettings};
use inventory_integration_tests::{
    Faults, HttpFaultProxy, Moto, TestEnv, command, launch_instances, test_pacer, test_tasks,
    wait_for_state, wait_for_task,
};
use inventory_model::{
    CollectRequest, Envelope, EventType, Priority, SCHEMA_VERSION, ScheduleDef, Scope, Task,
    TaskFilter, TaskState, content_hash,
};
use inventory_source_aws::AwsSource;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const REGION: &str = "us-east-1";

/// A collector instance of its own (own NATS connection) on `endpoint`.
struct Instance {
    token: CancellationToken,
    task: JoinHandle<Result<(), inventory_collector::RunError>>,
    worker: String,
}

impl Instance {
    async fn start(
        env: &TestEnv,
        endpoint: &str,
        page_size: i32,
        tasks: TaskSettings,
        schedules: Vec<ScheduleDef>,
    ) -> Instance {
        let bus = Bus::connect(
            &std::env::var("INVENTORY_TEST_NATS_URL").unwrap(),
            env.bus.names().prefix(),
        )
        .await
        .unwrap();
        let settings = CollectorSettings {
            regions: Some(vec![REGION.into()]),
            page_size,
            concurrency: 2,
            scan_retries: 0,
            tasks,
            schedules,
            ..Default::default()
        };
        let worker = settings.worker.clone();
        let collector = Collector::new(
            bus,
            AwsSource::with_pacer(Moto::sdk_config_at(endpoint), "test", None, test_pacer()),
            settings,
        );
        let token = CancellationToken::new();
        let task = tokio::spawn(collector.run(token.clone()));
        Instance {
            token,
            task,
            worker,
        }
    }

    async fn stop(self) {
        self.token.cancel();
        self.task.await.unwrap().unwrap();
    }
}

async fn submit(env: &TestEnv, kind: &str, id: &str, priority: Priority) -> Task {
    let request = CollectRequest {
        regions: vec![REGION.into()],
        priority: Some(priority),
        ..Default::default()
    };
    match env
        .bus
        .intake("aws", kind, Ok(request), Some(id), None)
        .await
        .unwrap()
    {
        Intake::Accepted(s) => s.task,
        Intake::Rejected { message, .. } => panic!("{id} rejected: {message}"),
    }
}

async fn seed_vpcs(moto: &Moto, n: u8) -> Vec<String> {
    let ec2 = moto.ec2(REGION);
    for i in 0..n {
        ec2.create_vpc()
            .cidr_block(format!("10.{i}.0.0/16"))
            .send()
            .await
            .unwrap();
    }
    moto_vpcs(moto).await
}

async fn moto_vpcs(moto: &Moto) -> Vec<String> {
    let out = moto.ec2(REGION).describe_vpcs().send().await.unwrap();
    let mut ids: Vec<String> = out
        .vpcs()
        .iter()
        .map(|v| v.vpc_id().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn sql_rows(env: &TestEnv, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.query(sql, &[]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_fire_each_schedule_once_per_period() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let def = ScheduleDef {
        name: "regions-2s".into(),
        request: CollectRequest::of("aws", "regions"),
        every: Some("2s".into()),
        cron: None,
        priority: Priority::Normal,
    };
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(
            Instance::start(&env, &moto.endpoint, 100, test_tasks(), vec![def.clone()]).await,
        );
    }
    tokio::time::sleep(Duration::from_secs(7)).await;

    // Changing the definition updates it and keeps what it fired; removing it
    // stops it everywhere.
    let mut changed = def.clone();
    changed.every = Some("3s".into());
    env.bus.sync_schedules(&[changed]).await.unwrap();
    let schedules = env.bus.schedules().await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].0.def.every.as_deref(), Some("3s"));
    assert!(schedules[0].0.last_period.is_some());
    env.bus.sync_schedules(&[]).await.unwrap();
    assert!(env.bus.schedules().await.unwrap().is_empty());
    let filter = TaskFilter::default();
    let fired = env.bus.tasks(&filter).await.unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tasks = env.bus.tasks(&filter).await.unwrap();
    assert_eq!(tasks.len(), fired, "a removed schedule fires no more");

    let mut periods = Vec::new();
    for task in &tasks {
        assert_eq!(task.spec.schedule.as_deref(), Some("regions-2s"));
        let done = wait_for_task(&env, &task.spec.id).await;
        assert_eq!(done.state, TaskState::Completed, "{done:?}");
        assert_eq!(done.attempts, 1);
        let period: i64 = task.spec.id.rsplit('-').next().unwrap().parse().unwrap();
        periods.push(period);
    }
    periods.sort();
    let two_second: Vec<i64> = periods.iter().copied().filter(|p| p % 2 == 0).collect();
    assert!(two_second.len() >= 3, "periods fired: {periods:?}");
    for pair in two_second.windows(2) {
        assert_eq!(pair[1] - pair[0], 2, "every period fired: {periods:?}");
    }
    for i in instances {
        i.stop().await;
    }

    // Each period's task ran exactly once: one scan of the one region-less scope.
    env.project_default().await;
    let rows = sql_rows(
        &env,
        "SELECT request_id, count(*) FROM scan WHERE kind = 'region' GROUP BY request_id",
    )
    .await;
    let runs: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(runs.len(), tasks.len(), "{runs:?}");
    assert!(runs.iter().all(|(_, n)| *n == 1), "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_collectors_task_finishes_on_another_without_loss_or_duplicates() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let want = launch_instances(&moto.ec2(REGION), 30).await;
    let proxy = HttpFaultProxy::start(&moto.endpoint, Faults::Delay(Duration::from_millis(400)), 1);
    let dir = std::env::temp_dir().join(format!("inv-kill-{}", env.bus.names().prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("inventory.yaml");
    std::fs::write(
        &config,
        "collector: { interval: off, page_size: 5, scan_retries: 0 }\ntasks: { ack_wait: 3s, poll: 50ms }\n",
    )
    .unwrap();
    let mut first = command(&[
        (
            "NATS_URL",
            std::env::var("INVENTORY_TEST_NATS_URL").unwrap(),
        ),
        (
            "INVENTORY_SUBJECT_PREFIX",
            env.bus.names().prefix().to_owned(),
        ),
        ("INVENTORY_CONFIG", config.display().to_string()),
        ("INVENTORY_AWS_REGIONS", REGION.into()),
        ("AWS_ENDPOINT_URL", proxy.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", REGION.into()),
    ])
    .arg("collector")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();

    submit(&env, "instances", "survivor", Priority::Normal).await;
    let active = wait_for_state(&env, "survivor", |t| {
        t.state == TaskState::Active && t.progress.resources_seen >= 5
    })
    .await;
    first.kill().await.unwrap();
    assert_eq!(active.attempts, 1);

    // Another collector gets the task once the dead one's heartbeats stop.
    proxy.set(Faults::None);
    let second = Instance::start(&env, &proxy.endpoint, 5, test_tasks(), vec![]).await;
    let done = wait_for_task(&env, "survivor").await;
    assert_eq!(done.state, TaskState::Completed, "{done:?}");
    assert_eq!(done.attempts, 2, "the killed attempt counts");
    assert_eq!(done.worker.as_deref(), Some(second.worker.as_str()));
    assert_eq!(done.progress.scopes_done, 1);
    assert!(done.last_seq.is_some());
    second.stop().await;

    env.project_default().await;
    let api = env.api();
    assert_eq!(api.ids("/api/v1/aws/instances", "instance_id").await, want);
    // Nothing was published twice: one event per instance, the first run's included.
    for id in &want {
        let subject = format!(
            "{}.events.aws.instance.123456789012.{REGION}.{id}",
            env.bus.names().prefix()
        );
        assert_eq!(env.bus.count_events(&subject).await.unwrap(), 1, "{id}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_permanent_ones_dead_lettered_and_redriven() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let want = seed_vpcs(&moto, 2).await;
    let proxy = HttpFaultProxy::start(&moto.endpoint, Faults::RefuseAll, 2);
    let collector = Instance::start(&env, &proxy.endpoint, 100, test_tasks(), vec![]).await;

    // Transient: the first attempt fails, the task waits for its retry, and the
    // retry succeeds once the provider is back.
    submit(&env, "vpcs", "flaky", Priority::Normal).await;
    let waiting = wait_for_state(&env, "flaky", |t| t.state == TaskState::Scheduled).await;
    assert!(waiting.retry_at.is_some());
    assert_eq!(
        waiting.error.as_ref().unwrap().code,
        "provider_error",
        "{waiting:?}"
    );
    proxy.set(Faults::None);
    let done = wait_for_task(&env, "flaky").await;
    assert_eq!(done.state, TaskState::Completed, "{done:?}");
    assert_eq!(done.attempts, 2);
    assert!(done.error.is_none());

    // Exhausted: a provider that stays down dead-letters the task after
    // `max_attempts`.
    proxy.set(Faults::RefuseAll);
    submit(&env, "subnets", "down", Priority::Normal).await;
    let dead = wait_for_task(&env, "down").await;
    assert_eq!(dead.state, TaskState::Dead);
    assert_eq!(dead.attempts, 3);
    let error = dead.error.unwrap();
    assert_eq!(error.code, "attempts_exhausted");
    assert!(
        error.message.contains("gave up after 3 attempts"),
        "{}",
        error.message
    );

    // Permanent: denied credentials go to the dead letters at once, with the reason.
    proxy.set(Faults::AuthFailure);
    submit(&env, "vpcs", "denied", Priority::Normal).await;
    let dead = wait_for_task(&env, "denied").await;
    assert_eq!(dead.state, TaskState::Dead, "{dead:?}");
    assert_eq!(dead.attempts, 1, "never retried");
    let error = dead.error.unwrap();
    assert_eq!(error.code, "credentials_rejected");
    assert!(error.message.contains("AuthFailure"), "{}", error.message);
    let letters = env
        .bus
        .tasks(&TaskFilter {
            state: Some(TaskState::Dead),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: BTreeSet<_> = letters.iter().map(|t| t.spec.id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["denied", "down"]));

    // Re-driven once the credentials work again, it completes.
    proxy.set(Faults::None);
    let again = env.bus.retry_task("denied").await.unwrap();
    assert_eq!(again.state, TaskState::Pending);
    assert_eq!(again.redriven, 1);
    let done = wait_for_task(&env, "denied").await;
    assert_eq!(done.state, TaskState::Completed, "{done:?}");
    assert!(
        env.bus.retry_task("flaky").await.is_ok(),
        "completed tasks can run again"
    );
    wait_for_task(&env, "flaky").await;
    collector.stop().await;

    env.project_default().await;
    assert_eq!(env.api().ids("/api/v1/aws/vpcs", "vpc_id").await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_request_overtakes_the_backlog() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let proxy = HttpFaultProxy::start(&moto.endpoint, Faults::Delay(Duration::from_millis(150)), 3);
    let one_at_a_time = TaskSettings {
        concurrency: 1,
        ..test_tasks()
    };
    let collector = Instance::start(&env, &proxy.endpoint, 100, one_at_a_time, vec![]).await;
    submit(&env, "regions", "normal-1", Priority::Normal).await;
    wait_for_state(&env, "normal-1", |t| t.state == TaskState::Active).await;
    for id in ["normal-2", "normal-3", "normal-4"] {
        submit(&env, "regions", id, Priority::Normal).await;
    }
    submit(&env, "regions", "low-1", Priority::Low).await;
    submit(&env, "regions", "high-1", Priority::High).await;

    let mut started = Vec::new();
    for id in [
        "normal-1", "normal-2", "normal-3", "normal-4", "low-1", "high-1",
    ] {
        let t = wait_for_task(&env, id).await;
        assert_eq!(t.state, TaskState::Completed, "{t:?}");
        started.push((t.started_at.unwrap(), id));
    }
    started.sort();
    let order: Vec<&str> = started.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        order,
        [
            "normal-1", "high-1", "normal-2", "normal-3", "normal-4", "low-1"
        ]
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_removes_pending_tasks_and_stops_active_ones_without_deleting() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let instances = launch_instances(&moto.ec2(REGION), 30).await;
    // An instance an earlier scan saw, gone from the provider since: a scan
    // that completes deletes it, a cancelled one must not.
    let payload = json!({"instanceId": "i-phantom", "instanceType": "t3.micro", "state": {"name": "running"}});
    let phantom = Envelope {
        event_type: EventType::ResourceCreated,
        schema_version: SCHEMA_VERSION,
        source: "aws".into(),
        kind: "instance".into(),
        scope: Scope {
            account_id: "123456789012".into(),
            region: Some(REGION.into()),
        },
        key: Some("i-phantom".into()),
        observed_at: chrono::Utc::now(),
        scan_id: "earlier".into(),
        request_id: None,
        content_hash: Some(content_hash(&payload)),
        payload: Some(inventory_model::Payload::from_value(&payload)),
        resources_seen: None,
        error: None,
        known_from_seq: None,
    };
    env.bus.publish_events(&[phantom], None).await.unwrap();

    // Pending: cancelled before any collector runs, it never starts.
    submit(&env, "instances", "never", Priority::High).await;
    let cancelled = env.bus.cancel_task("never").await.unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);

    let proxy = HttpFaultProxy::start(&moto.endpoint, Faults::Delay(Duration::from_millis(500)), 4);
    let collector = Instance::start(&env, &proxy.endpoint, 5, test_tasks(), vec![]).await;

    // Active: stopped at its next page.
    submit(&env, "instances", "slow", Priority::Normal).await;
    wait_for_state(&env, "slow", |t| {
        t.state == TaskState::Active && t.progress.resources_seen >= 5
    })
    .await;
    let asked = env.bus.cancel_task("slow").await.unwrap();
    assert!(asked.cancel_requested);
    let done = wait_for_task(&env, "slow").await;
    assert_eq!(done.state, TaskState::Cancelled, "{done:?}");
    assert!(done.progress.resources_seen < 30, "stopped early: {done:?}");
    // Cancelling again is refused: it has ended.
    assert!(env.bus.cancel_task("slow").await.is_err());
    let never = env.bus.task("never").await.unwrap().unwrap();
    assert_eq!((never.state, never.attempts), (TaskState::Cancelled, 0));

    env.project_default().await;
    let api = env.api();
    assert_eq!(
        api.get("/api/v1/aws/instances/i-phantom").await.0,
        200,
        "the cancelled scan deleted nothing"
    );
    let scans = sql_rows(
        &env,
        "SELECT state, error FROM scan WHERE request_id = 'slow'",
    )
    .await;
    assert_eq!(scans.len(), 1);
    assert_eq!(scans[0].get::<_, String>(0), "cancelled");
    assert!(scans[0].get::<_, String>(1).contains("cancelled"));

    // The collector is free for the next task, and a scan that completes does
    // delete what is gone.
    proxy.set(Faults::None);
    submit(&env, "instances", "after", Priority::Normal).await;
    assert_eq!(
        wait_for_task(&env, "after").await.state,
        TaskState::Completed
    );
    collector.stop().await;
    env.project_default().await;
    assert_eq!(api.get("/api/v1/aws/instances/i-phantom").await.0, 410);
    assert_eq!(
        api.ids("/api/v1/aws/instances", "instance_id").await,
        instances
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_control_plane_and_reads_after_a_task() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let want = seed_vpcs(&moto, 3).await;
    let collector = Instance::start(&env, &moto.endpoint, 100, test_tasks(), vec![]).await;
    let token = CancellationToken::new();
    let projector = tokio::spawn(env.projector(&env.store, "tables", 500).run(token.clone()));
    let api = env.api();
    let post = |path: &str, body: serde_json::Value| {
        api.client
            .post(format!("{}{path}", api.base))
            .json(&body)
            .send()
    };

    let resp = post(
        "/api/v1/collect",
        json!({"source": "aws", "kind": "vpcs", "regions": [REGION], "priority": "high"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = body["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["task"]["priority"], "high");

    // Read-your-writes: the answer waits for the task and its projection.
    let (status, page) = api
        .get(&format!("/api/v1/aws/vpcs?after_task={id}&limit=100"))
        .await;
    assert_eq!(status, 200, "{page}");
    let mut got: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vpc_id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);

    let (status, task) = api.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(task["state"], "completed");
    assert_eq!(task["progress"]["scopes_done"], 1);
    assert!(task["last_seq"].as_u64().unwrap() > 0);
    let (status, list) = api.get("/api/v1/tasks?state=completed&kind=vpcs").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["id"], id.as_str());
    let (status, err) = api.get("/api/v1/tasks?state=sleeping").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );

    // Finished tasks cannot be cancelled; they can be deleted.
    let resp = post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let resp = api
        .client
        .delete(format!("{}/api/v1/tasks/{id}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(api.get(&format!("/api/v1/tasks/{id}")).await.0, 404);
    assert_eq!(
        api.get("/api/v1/aws/vpcs?after_task=nope").await.0,
        404,
        "waiting for an unknown task"
    );

    // Bad requests: 400 with the reason; an unknown kind is dead-lettered.
    let resp = post(
        "/api/v1/collect",
        json!({"source": "aws", "kind": "teapots"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unknown_kind");
    let dead = env
        .bus
        .task(err["error"]["task_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.state, TaskState::Dead);
    let resp = post("/api/v1/collect", json!({"kind": "vpcs"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // A sequence the projection never reaches: 504 after the read wait.
    let impatient = inventory_api::ApiServer::start(
        "127.0.0.1:0",
        inventory_api::ApiState::new(env.store.reader(), Some(env.bus.clone()))
            .with_read_wait(Duration::from_millis(500)),
        1,
    )
    .unwrap();
    let resp = reqwest::get(format!(
        "http://{}/api/v1/aws/vpcs?min_seq=999999",
        impatient.addr
    ))
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 504);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "timeout");
    impatient.stop().await;

    let (status, schedules) = api.get("/api/v1/schedules").await;
    assert_eq!(status, 200);
    assert_eq!(schedules["items"], json!([]));

    token.cancel();
    projector.await.unwrap().unwrap();
    collector.stop().await;
}
