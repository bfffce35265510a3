//! End-to-end tests: real nats-server (JetStream), PostgreSQL and moto.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use inventory_integration_tests::synthetic::{
    ACCOUNT, checksums, envelope, instance, publish_history,
};
use inventory_integration_tests::{
    FaultProxy, Moto, TestEnv, amazon_image, fresh_store, wait_for_task,
};
use inventory_model::{CollectRequest, Envelope, EventType, TaskState};
use inventory_store::Store;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Fleet {
    vpc: String,
    subnets: Vec<String>,
    /// A subnet without instances and a VPC without subnets, to delete later.
    spare_subnet: String,
    spare_vpc: String,
    instances: Vec<String>,
}

async fn seed(ec2: &aws_sdk_ec2::Client, region: &str) -> Fleet {
    let image = amazon_image(ec2).await;
    let name = |n: &str| Tag::builder().key("Name").value(n).build();
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_owned();
    ec2.create_tags()
        .resources(&vpc)
        .tags(name("main"))
        .send()
        .await
        .unwrap();
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b", "c"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.1.{i}.0/24"))
            .availability_zone(format!("{region}{az}"))
            .send()
            .await
            .unwrap()
            .subnet()
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_owned();
        subnets.push(s);
    }
    let spare_subnet = subnets.pop().unwrap();
    let spare_vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_owned();
    // One reservation per instance: moto pages DescribeInstances by reservation.
    let mut instances = Vec::new();
    for i in 0..7 {
        let out = ec2
            .run_instances()
            .image_id(&image)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .subnet_id(&subnets[i % 2])
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(name(&format!("web-{i}")))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        instances.push(out.instances()[0].instance_id().unwrap().to_owned());
    }
    Fleet {
        vpc,
        subnets,
        spare_subnet,
        spare_vpc,
        instances,
    }
}

async fn moto_vpcs(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let mut v: Vec<String> = ec2
        .describe_vpcs()
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .map(|v| v.vpc_id().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

async fn moto_subnets(ec2: &aws_sdk_ec2::Client) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ec2
        .describe_subnets()
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .map(|s| {
            (
                s.subnet_id().unwrap().to_owned(),
                s.vpc_id().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn moto_instances(ec2: &aws_sdk_ec2::Client) -> Vec<(String, String, String)> {
    let mut v = Vec::new();
    let out = ec2.describe_instances().send().await.unwrap();
    for r in out.reservations() {
        for i in r.instances() {
            v.push((
                i.instance_id().unwrap().to_owned(),
                i.vpc_id().unwrap().to_owned(),
                i.subnet_id().unwrap().to_owned(),
            ));
        }
    }
    v.sort();
    v
}

async fn collect_ok(c: &inventory_collector::Collector) -> inventory_collector::CollectionReport {
    let report = c
        .collect(&CollectRequest::of("aws", "all"), "test-request")
        .await
        .expect("collection");
    assert_eq!(report.failed(), 0, "failed scans: {report:?}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_returns_exactly_the_fleet_moto_has_with_links() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let regions = ["us-east-1", "eu-west-1"];
    for r in regions {
        seed(&moto.ec2(r), r).await;
    }
    let report = collect_ok(&env.collector(moto.sdk_config(), &regions)).await;
    let instance_scan = report
        .scans
        .iter()
        .find(|s| s.kind == "instance" && s.region.as_deref() == Some("us-east-1"))
        .unwrap();
    assert!(
        instance_scan.pages >= 2,
        "7 reservations at page size 5 take two pages"
    );
    env.project_default().await;
    let api = env.api();

    let region_names = api.ids("/api/v1/aws/regions", "name").await;
    let moto_regions = moto
        .ec2("us-east-1")
        .describe_regions()
        .send()
        .await
        .unwrap();
    assert_eq!(region_names.len(), moto_regions.regions().len());
    assert!(region_names.iter().any(|r| r == "eu-west-1"));

    for r in regions {
        let ec2 = moto.ec2(r);
        let vpcs = moto_vpcs(&ec2).await;
        assert_eq!(
            api.ids(&format!("/api/v1/aws/vpcs?region={r}"), "vpc_id")
                .await,
            vpcs
        );
        assert_eq!(
            api.ids(&format!("/api/v1/aws/regions/{r}/vpcs"), "vpc_id")
                .await,
            vpcs
        );

        let subnets = moto_subnets(&ec2).await;
        let listed = api.all(&format!("/api/v1/aws/subnets?region={r}")).await;
        let mut got: Vec<(String, String)> = listed
            .iter()
            .map(|s| {
                (
                    s["subnet_id"].as_str().unwrap().into(),
                    s["vpc_id"].as_str().unwrap().into(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(got, subnets);

        let instances = moto_instances(&ec2).await;
        let listed = api.all(&format!("/api/v1/aws/instances?region={r}")).await;
        let mut got: Vec<(String, String, String)> = listed
            .iter()
            .map(|i| {
                assert_eq!(i["account_id"], ACCOUNT);
                assert_eq!(i["state"], "running");
                assert!(i["name"].as_str().unwrap().starts_with("web-"));
                (
                    i["instance_id"].as_str().unwrap().into(),
                    i["vpc_id"].as_str().unwrap().into(),
                    i["subnet_id"].as_str().unwrap().into(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(got, instances);

        // Nested collections answered from the link tables.
        for vpc in &vpcs {
            let mut want: Vec<String> = subnets
                .iter()
                .filter(|(_, v)| v == vpc)
                .map(|(s, _)| s.clone())
                .collect();
            want.sort();
            assert_eq!(
                api.ids(&format!("/api/v1/aws/vpcs/{vpc}/subnets"), "subnet_id")
                    .await,
                want
            );
            let mut want: Vec<String> = instances
                .iter()
                .filter(|(_, v, _)| v == vpc)
                .map(|(i, _, _)| i.clone())
                .collect();
            want.sort();
            assert_eq!(
                api.ids(&format!("/api/v1/aws/vpcs/{vpc}/instances"), "instance_id")
                    .await,
                want
            );
        }
        for (subnet, _) in &subnets {
            let mut want: Vec<String> = instances
                .iter()
                .filter(|(_, _, s)| s == subnet)
                .map(|(i, _, _)| i.clone())
                .collect();
            want.sort();
            assert_eq!(
                api.ids(
                    &format!("/api/v1/aws/subnets/{subnet}/instances"),
                    "instance_id"
                )
                .await,
                want
            );
        }
    }

    // Events carry the contract's headers, the trace context of their scan included.
    let subject = format!(
        "{}.events.aws.instance.{ACCOUNT}.us-east-1.*",
        env.bus.names().prefix()
    );
    let (_, _, headers) = env
        .bus
        .last_event(&subject)
        .await
        .unwrap()
        .expect("an instance event");
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(
        header("Inventory-Event-Type").as_deref(),
        Some("resource.created")
    );
    assert_eq!(header("Inventory-Schema-Version").as_deref(), Some("1"));
    assert!(header("Nats-Msg-Id").is_some());
    assert!(
        header("traceparent").is_some_and(|t| t.starts_with("00-")),
        "{headers:?}"
    );

    // A single resource carries its raw payload as the API returned it.
    let (_, one) = api.get("/api/v1/aws/instances?limit=1").await;
    let id = one["items"][0]["instance_id"].as_str().unwrap().to_owned();
    let (status, item) = api.get(&format!("/api/v1/aws/instances/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(item["raw"]["instanceId"], id.as_str());
    assert_eq!(item["raw"]["instanceState"]["name"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_grows_with_changes_not_with_polls() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let ec2 = moto.ec2("us-east-1");
    let fleet = seed(&ec2, "us-east-1").await;
    let collector = env.collector(moto.sdk_config(), &["us-east-1"]);
    let resources = env.bus.names().all_resource_events();
    let scans = format!("{}.scans.>", env.bus.names().prefix());

    collect_ok(&collector).await;
    let (resource_events, scan_events) = (
        env.bus.count_events(&resources).await.unwrap(),
        env.bus.count_events(&scans).await.unwrap(),
    );
    assert!(resource_events > 10);

    let report = collect_ok(&collector).await;
    assert!(
        report
            .scans
            .iter()
            .all(|s| s.created + s.updated + s.deleted == 0)
    );
    assert_eq!(
        env.bus.count_events(&resources).await.unwrap(),
        resource_events,
        "unchanged re-scan added resource events"
    );
    assert_eq!(
        env.bus.count_events(&scans).await.unwrap(),
        scan_events * 2,
        "a re-scan adds exactly its scan markers"
    );

    let renamed = &fleet.instances[0];
    ec2.create_tags()
        .resources(renamed)
        .tags(Tag::builder().key("Name").value("renamed").build())
        .send()
        .await
        .unwrap();
    collect_ok(&collector).await;
    assert_eq!(
        env.bus.count_events(&resources).await.unwrap(),
        resource_events + 1
    );

    env.project_default().await;
    let api = env.api();
    let (status, item) = api.get(&format!("/api/v1/aws/instances/{renamed}")).await;
    assert_eq!(status, 200);
    assert_eq!(item["name"], "renamed");
    assert_eq!(item["tags"]["Name"], "renamed");
    assert!(item["last_seen_at"].as_str().unwrap() >= item["first_seen_at"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_need_a_completed_scan_and_survive_a_failed_one() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let ec2 = moto.ec2("us-east-1");
    let fleet = seed(&ec2, "us-east-1").await;
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let collector = env.collector(Moto::sdk_config_at(&proxy.endpoint), &["us-east-1"]);
    collect_ok(&collector).await;

    ec2.delete_subnet()
        .subnet_id(&fleet.spare_subnet)
        .send()
        .await
        .unwrap();
    ec2.delete_vpc()
        .vpc_id(&fleet.spare_vpc)
        .send()
        .await
        .unwrap();

    proxy.set_failing(true);
    let failed = collector
        .collect(&CollectRequest::of("aws", "all"), "failing")
        .await
        .unwrap();
    assert_eq!(
        failed.failed(),
        failed.scans.len(),
        "every scan fails behind the proxy"
    );
    env.project_default().await;
    let api = env.api();
    for path in [
        format!("/api/v1/aws/subnets/{}", fleet.spare_subnet),
        format!("/api/v1/aws/vpcs/{}", fleet.spare_vpc),
    ] {
        let (status, item) = api.get(&path).await;
        assert_eq!(status, 200, "{path} after a failed scan: {item}");
        assert!(item["deleted_at"].is_null());
    }

    proxy.set_failing(false);
    let report = collect_ok(&collector).await;
    // Deleting a VPC deletes its main route table and default security group.
    let mut deleted: Vec<(&str, u64)> = report
        .scans
        .iter()
        .filter(|s| s.deleted > 0)
        .map(|s| (s.kind.as_str(), s.deleted))
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            ("route_table", 1),
            ("security_group", 1),
            ("subnet", 1),
            ("vpc", 1)
        ]
    );
    env.project_default().await;

    let (status, body) = api
        .get(&format!("/api/v1/aws/subnets/{}", fleet.spare_subnet))
        .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "gone");
    assert!(body["error"]["deleted_at"].is_string());
    assert_eq!(
        body["error"]["last_state"]["subnet_id"],
        fleet.spare_subnet.as_str()
    );
    let (status, _) = api
        .get(&format!("/api/v1/aws/vpcs/{}", fleet.spare_vpc))
        .await;
    assert_eq!(status, 410);

    let (status, _) = api
        .get(&format!("/api/v1/aws/vpcs/{}/subnets", fleet.spare_vpc))
        .await;
    assert_eq!(
        status, 410,
        "the nested collection of a deleted resource is gone too"
    );
    let live = api
        .ids(
            &format!("/api/v1/aws/vpcs/{}/subnets", fleet.vpc),
            "subnet_id",
        )
        .await;
    let mut want = fleet.subnets.clone();
    want.sort();
    assert_eq!(live, want, "the deleted subnet left its VPC");
    let all = api.all("/api/v1/aws/subnets?include_deleted=true").await;
    let gone = all
        .iter()
        .find(|s| s["subnet_id"] == fleet.spare_subnet.as_str())
        .unwrap();
    assert!(gone["deleted_at"].is_string());
    assert!(
        !api.ids("/api/v1/aws/subnets", "subnet_id")
            .await
            .contains(&fleet.spare_subnet)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_projector_mid_stream_leaves_identical_tables() {
    let env = TestEnv::new().await;
    publish_history(&env.bus, 1500).await;
    let target = env.bus.last_event_seq().await.unwrap();

    env.project(&env.store, "uninterrupted").await;

    let (crashed_store, _) = fresh_store().await;
    let mut crashes_mid_stream = 0;
    loop {
        let checkpoint = crashed_store.checkpoint("crashing").await.unwrap();
        if checkpoint >= target {
            break;
        }
        let task = tokio::spawn(
            env.projector(&crashed_store, "crashing", 40)
                .run(CancellationToken::new()),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        task.abort(); // a crash: no shutdown, whatever is in flight is lost
        let _ = task.await;
        let after = crashed_store.checkpoint("crashing").await.unwrap();
        if after > 0 && after < target {
            crashes_mid_stream += 1;
        }
    }
    assert!(
        crashes_mid_stream >= 2,
        "the projector was never killed mid-stream"
    );

    let a = checksums(&env.store).await;
    let b = checksums(&crashed_store).await;
    assert_eq!(a, b);
    let rows = |t: &str| a.iter().find(|c| c.table == t).unwrap().rows;
    assert_eq!(
        rows("aws_instance"),
        3000,
        "1500 instances in each of two regions, no more, no less"
    );
    assert_eq!(rows("aws_subnet"), 26);
    assert_eq!(
        rows("l_aws_vpc_to_subnet"),
        24,
        "deleted subnets left their VPCs, the re-created one is back"
    );
    // Every live instance keeps the subnet link it declared (deleted ones lost
    // theirs); links to the deleted subnet stay, hidden by the queries.
    assert_eq!(rows("l_aws_instance_to_subnet"), 2 * 1350);

    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let deleted: i64 = client
        .query_one(
            "SELECT count(*) FROM aws_instance WHERE deleted_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted, 300);
    let stopped: i64 = client
        .query_one(
            "SELECT count(*) FROM aws_instance WHERE state = 'stopped' AND deleted_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stopped,
        2 * (500 - 50),
        "every third stopped, minus those also deleted (every 30th)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_dead_lettered_and_the_rest_applied() {
    let env = TestEnv::new().await;
    let r = Some("eu-west-1");
    let vpc = json!({"vpcId": "vpc-good", "state": "available", "cidrBlock": "10.0.0.0/16"});
    env.bus
        .publish_events(
            &[envelope(
                EventType::ResourceCreated,
                "vpc",
                r,
                "s1",
                Some("vpc-good"),
                Some(vpc),
            )],
            None,
        )
        .await
        .unwrap();
    let prefix = env.bus.names().prefix().to_owned();
    let garbage = b"{\"this is\": not json".to_vec();
    env.bus
        .publish_raw(
            &format!("{prefix}.events.aws.vpc.{ACCOUNT}.eu-west-1.broken"),
            garbage.clone(),
        )
        .await
        .unwrap();
    let teapot = envelope(
        EventType::ResourceCreated,
        "teapot",
        r,
        "s1",
        Some("t-1"),
        Some(json!({"id": "t-1"})),
    );
    env.bus
        .publish_raw(
            &format!("{prefix}.events.aws.teapot.{ACCOUNT}.eu-west-1.t-1"),
            teapot.to_bytes(),
        )
        .await
        .unwrap();
    // Valid by the contract, refused by PostgreSQL (NUL in text): dead-lettered too.
    let nul = json!({"vpcId": "vpc-nul", "tagSet": [{"key": "Name", "value": "a\u{0}b"}]});
    env.bus
        .publish_events(
            &[envelope(
                EventType::ResourceCreated,
                "vpc",
                r,
                "s1",
                Some("vpc-nul"),
                Some(nul),
            )],
            None,
        )
        .await
        .unwrap();
    let subnet = json!({"subnetId": "subnet-after", "vpcId": "vpc-good"});
    env.bus
        .publish_events(
            &[envelope(
                EventType::ResourceCreated,
                "subnet",
                r,
                "s1",
                Some("subnet-after"),
                Some(subnet),
            )],
            None,
        )
        .await
        .unwrap();

    env.project_default().await;
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT stream_seq, reason, payload FROM dead_letter ORDER BY stream_seq",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows[2]
            .get::<_, String>(1)
            .contains("rejected by the database"),
        "{}",
        rows[2].get::<_, String>(1)
    );
    assert!(rows[0].get::<_, String>(1).contains("not a valid envelope"));
    assert_eq!(rows[0].get::<_, Vec<u8>>(2), garbage);
    assert!(
        rows[1]
            .get::<_, String>(1)
            .contains("unknown kind aws/teapot")
    );

    let api = env.api();
    assert_eq!(api.get("/api/v1/aws/vpcs/vpc-good").await.0, 200);
    let (status, subnet) = api.get("/api/v1/aws/subnets/subnet-after").await;
    assert_eq!(status, 200, "the event after the bad ones was applied");
    assert_eq!(subnet["vpc_id"], "vpc-good");
    assert_eq!(
        api.ids("/api/v1/aws/vpcs/vpc-good/subnets", "subnet_id")
            .await,
        ["subnet-after"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_right_whatever_order_events_arrive_in() {
    let env = TestEnv::new().await;
    let r = Some("eu-west-1");
    // The instance and subnet arrive before their VPC.
    let events = [
        envelope(
            EventType::ResourceCreated,
            "instance",
            r,
            "s",
            Some("i-00001"),
            Some(instance(1, "running")),
        ),
        envelope(
            EventType::ResourceCreated,
            "subnet",
            r,
            "s",
            Some("subnet-1"),
            Some(json!({"subnetId": "subnet-1", "vpcId": "vpc-1"})),
        ),
        envelope(
            EventType::ResourceCreated,
            "vpc",
            r,
            "s",
            Some("vpc-1"),
            Some(json!({"vpcId": "vpc-1"})),
        ),
    ];
    env.bus.publish_events(&events, None).await.unwrap();
    env.project_default().await;
    let api = env.api();
    assert_eq!(
        api.ids("/api/v1/aws/vpcs/vpc-1/instances", "instance_id")
            .await,
        ["i-00001"]
    );
    assert_eq!(
        api.ids("/api/v1/aws/vpcs/vpc-1/subnets", "subnet_id").await,
        ["subnet-1"]
    );
    assert_eq!(
        api.ids("/api/v1/aws/subnets/subnet-1/instances", "instance_id")
            .await,
        ["i-00001"]
    );
    let (status, body) = api.get("/api/v1/aws/regions/eu-west-1/vpcs").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "region not collected yet"
    );

    // The region arrives last; the link its VPC declared is there.
    let region = envelope(
        EventType::ResourceCreated,
        "region",
        None,
        "s",
        Some("eu-west-1"),
        Some(json!({"regionName": "eu-west-1"})),
    );
    env.bus.publish_events(&[region], None).await.unwrap();
    env.project_default().await;
    assert_eq!(
        api.ids("/api/v1/aws/regions/eu-west-1/vpcs", "vpc_id")
            .await,
        ["vpc-1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_requests_over_nats() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let ec2 = moto.ec2("us-east-1");
    seed(&ec2, "us-east-1").await;
    let token = CancellationToken::new();
    let collector = tokio::spawn(
        env.collector(moto.sdk_config(), &["us-east-1"])
            .run(token.clone()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // subscription in place

    let request = CollectRequest {
        regions: vec!["us-east-1".into()],
        ..CollectRequest::of("aws", "vpcs")
    };
    let reply = env
        .bus
        .request_collection(&request, Some("vpcs-once"))
        .await
        .unwrap();
    assert_eq!(reply["request_id"], "vpcs-once", "{reply}");
    assert_eq!(reply["duplicate"], false, "{reply}");
    // The same request id again is the same task: it runs once.
    let again = env
        .bus
        .request_collection(&request, Some("vpcs-once"))
        .await
        .unwrap();
    assert_eq!(again["duplicate"], true, "{again}");

    // Requests that can never run are answered with the reason and recorded
    // as dead tasks.
    let subject = env.bus.names().collect_subject("aws", "vpcs");
    let bad = env
        .bus
        .request_raw(&subject, b"{not json".to_vec(), None)
        .await
        .unwrap();
    assert_eq!(bad["error"]["code"], "malformed_request", "{bad}");
    let dead = env
        .bus
        .task(bad["request_id"].as_str().unwrap())
        .await
        .unwrap()
        .expect("a dead-letter record");
    assert_eq!(dead.state, TaskState::Dead);
    assert_eq!(dead.error.unwrap().code, "malformed_request");
    let unknown = env
        .bus
        .request_collection(&CollectRequest::of("aws", "teapots"), None)
        .await
        .unwrap();
    assert_eq!(unknown["error"]["code"], "unknown_kind", "{unknown}");
    // An account the collector does not know is found when the task runs.
    let other = env
        .bus
        .request_collection(
            &CollectRequest {
                accounts: vec!["999999999999".into()],
                ..CollectRequest::of("aws", "all")
            },
            None,
        )
        .await
        .unwrap();
    let other_id = other["request_id"].as_str().unwrap().to_owned();
    let other_task = wait_for_task(&env, &other_id).await;
    assert_eq!(other_task.state, TaskState::Dead);
    assert_eq!(other_task.attempts, 1, "a permanent error is not retried");
    assert_eq!(other_task.error.unwrap().code, "unknown_account");

    let want = moto_vpcs(&ec2).await;
    let api = env.api();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        env.project_default().await;
        if api.ids("/api/v1/aws/vpcs", "vpc_id").await == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requested collection never landed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        api.ids("/api/v1/aws/instances", "instance_id")
            .await
            .is_empty(),
        "only vpcs were requested"
    );
    token.cancel();
    collector.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_pages_filters_and_answers_errors_in_json() {
    let env = TestEnv::new().await;
    let r = Some("us-east-1");
    let mut events: Vec<Envelope> = (0..12)
        .map(|i| {
            let state = if i % 4 == 0 { "stopped" } else { "running" };
            envelope(
                EventType::ResourceCreated,
                "instance",
                r,
                "s",
                Some(&format!("i-{i:05}")),
                Some(instance(i, state)),
            )
        })
        .collect();
    // The same instance id in a second account makes a lookup ambiguous.
    let mut twin = events[1].clone();
    twin.scope.account_id = "222222222222".into();
    events.push(twin);
    env.bus.publish_events(&events, None).await.unwrap();
    env.project_default().await;
    let api = env.api();

    let (status, first) = api.get("/api/v1/aws/instances?limit=5").await;
    assert_eq!(status, 200);
    assert_eq!(first["items"].as_array().unwrap().len(), 5);
    assert!(first["next"].is_string());
    let all = api.all("/api/v1/aws/instances?limit=5").await;
    let unique: BTreeSet<(String, String)> = all
        .iter()
        .map(|i| {
            (
                i["account_id"].as_str().unwrap().into(),
                i["instance_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!((all.len(), unique.len()), (13, 13));
    assert_eq!(
        api.all("/api/v1/aws/instances?state=stopped").await.len(),
        3
    );
    assert_eq!(
        api.all(&format!(
            "/api/v1/aws/instances?account_id={ACCOUNT}&vpc_id=vpc-1"
        ))
        .await
        .len(),
        2
    );
    // Typed filters: the value is sent as text and cast on the server.
    assert_eq!(
        api.all("/api/v1/aws/instances?launch_time=2026-11-01T00:00:00Z")
            .await
            .len(),
        13
    );
    assert_eq!(
        api.all("/api/v1/aws/instances?launch_time=2026-11-02T00:00:00Z")
            .await
            .len(),
        0
    );

    for (path, code) in [
        ("/api/v1/aws/instances?cursor=garbage", "invalid_cursor"),
        ("/api/v1/aws/instances?limit=0", "invalid_limit"),
        ("/api/v1/aws/instances?limit=5000", "invalid_limit"),
        ("/api/v1/aws/instances?colour=red", "unknown_filter"),
        ("/api/v1/aws/regions?vpc_id=x", "unknown_filter"),
        (
            "/api/v1/aws/instances?include_deleted=perhaps",
            "invalid_parameter",
        ),
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    let (status, body) = api.get("/api/v1/aws/instances/i-missing").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = api.get("/api/v1/aws/teapots").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = api.get("/api/v1/aws/instances/i-00001").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("ambiguous_id"))
    );
    let (status, body) = api
        .get(&format!(
            "/api/v1/aws/instances/i-00001?account_id={ACCOUNT}"
        ))
        .await;
    assert_eq!((status, body["account_id"].as_str()), (200, Some(ACCOUNT)));

    assert_eq!(api.get("/healthz").await.0, 200);
    let (status, ready) = api.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_postgres_is_unreachable() {
    let unreachable = format!(
        "postgres://inventory@{}/none",
        inventory_integration_tests::free_addr()
    );
    let server = inventory_api::ApiServer::start(
        "127.0.0.1:0",
        inventory_api::ApiState::new(Store::connect(&unreachable, 1).unwrap().reader(), None),
        1,
    )
    .unwrap();
    let resp = reqwest::get(format!("http://{}/readyz", server.addr))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"]["ok"], false);
    let resp = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_match_the_kind_catalogue() {
    let (_, url) = fresh_store().await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let sql_type = |t: inventory_model::ColumnType| match t {
        inventory_model::ColumnType::Text => "text",
        inventory_model::ColumnType::Integer => "bigint",
        inventory_model::ColumnType::Boolean => "boolean",
        inventory_model::ColumnType::Timestamp => "timestamp with time zone",
        inventory_model::ColumnType::Json => "jsonb",
    };
    let columns = |table: &'static str| {
        let client = &client;
        async move {
            client
                .query(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = $1",
                    &[&table],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>()
        }
    };
    for kind in inventory_model::KINDS.iter() {
        let cols = columns(kind.table).await;
        assert!(!cols.is_empty(), "no table {}", kind.table);
        let version = format!("{}_version", kind.table);
        let version_cols = columns(Box::leak(version.into_boxed_str())).await;
        for c in kind.columns {
            assert!(
                version_cols
                    .iter()
                    .any(|(n, t)| n == c.name && t == sql_type(c.ty)),
                "{}_version.{} missing",
                kind.table,
                c.name
            );
        }
        for c in kind
            .columns
            .iter()
            .map(|c| (c.name, sql_type(c.ty)))
            .chain([
                (kind.id_column, "text"),
                ("account_id", "text"),
                ("tags", "jsonb"),
                ("raw", "jsonb"),
                ("seq", "bigint"),
                ("deleted_at", "timestamp with time zone"),
            ])
        {
            assert!(
                cols.iter().any(|(n, t)| n == c.0 && t == c.1),
                "{}.{} {} missing",
                kind.table,
                c.0,
                c.1
            );
        }
        assert_eq!(
            cols.iter().any(|(n, _)| n == "region"),
            kind.regional() || kind.columns.iter().any(|c| c.name == "region"),
            "{}",
            kind.table
        );
        // Every link table is a partition of `link`, with its columns.
        for link in kind.links {
            let cols = columns(link.table).await;
            for c in ["link", "account_id", "region", "a_id", "b_id", "seq"] {
                assert!(
                    cols.iter().any(|(n, _)| n == c),
                    "{}.{c} missing",
                    link.table
                );
            }
        }
    }
}
