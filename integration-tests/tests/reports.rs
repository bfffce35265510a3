//! Leak and waste reports (issue 16), each on a moto fixture with resources
//! it must report and near misses it must not; answered like lists.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IpPermission, ResourceType, Tag, TagSpecification,
    UserIdGroupPair,
};
use inventory_integration_tests::synthetic::envelope;
use inventory_integration_tests::{Api, Moto, TestEnv, amazon_image, wait_for_task};
use inventory_model::EventType;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const REGION: &str = "us-east-1";

fn tagged(kind: ResourceType, key: &str, value: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key(key).value(value).build())
        .build()
}

/// The ids (`field`) a report lists, every page.
async fn reported(api: &Api, query: &str, field: &str) -> BTreeSet<String> {
    api.all(&format!("/api/v1/reports/{query}"))
        .await
        .iter()
        .map(|i| {
            i[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} in {i}"))
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_finds_its_resources_and_not_the_near_misses() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let ec2 = moto.ec2(REGION);
    let image = amazon_image(&ec2).await;
    let vpc = |cidr: &'static str| {
        let ec2 = &ec2;
        async move {
            ec2.create_vpc()
                .cidr_block(cidr)
                .send()
                .await
                .unwrap()
                .vpc()
                .unwrap()
                .vpc_id()
                .unwrap()
                .to_owned()
        }
    };
    let (busy_vpc, empty_vpc, eni_vpc) = (
        vpc("10.1.0.0/16").await,
        vpc("10.2.0.0/16").await,
        vpc("10.3.0.0/16").await,
    );
    let subnet = |vpc: String, cidr: &'static str| {
        let ec2 = &ec2;
        async move {
            ec2.create_subnet()
                .vpc_id(vpc)
                .cidr_block(cidr)
                .send()
                .await
                .unwrap()
                .subnet()
                .unwrap()
                .subnet_id()
                .unwrap()
                .to_owned()
        }
    };
    let busy_subnet = subnet(busy_vpc.clone(), "10.1.1.0/24").await;
    let eni_subnet = subnet(eni_vpc.clone(), "10.3.1.0/24").await;
    let group = |name: &'static str| {
        let ec2 = &ec2;
        let vpc = busy_vpc.clone();
        async move {
            ec2.create_security_group()
                .group_name(name)
                .description(name)
                .vpc_id(vpc)
                .send()
                .await
                .unwrap()
                .group_id()
                .unwrap()
                .to_owned()
        }
    };
    let (unused_sg, used_sg, referenced_sg) = (
        group("unused").await,
        group("used").await,
        group("referenced").await,
    );
    // `used` lets `referenced` in: a rule that refers to a group uses it.
    ec2.authorize_security_group_ingress()
        .group_id(&used_sg)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(&referenced_sg).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let launch = |owner: Option<&'static str>, image: String| {
        let ec2 = &ec2;
        let (subnet, sg) = (busy_subnet.clone(), used_sg.clone());
        async move {
            let mut req = ec2
                .run_instances()
                .image_id(image)
                .min_count(1)
                .max_count(1)
                .subnet_id(subnet)
                .security_group_ids(sg);
            if let Some(o) = owner {
                req = req.tag_specifications(tagged(ResourceType::Instance, "owner", o));
            }
            req.send().await.unwrap().instances()[0]
                .instance_id()
                .unwrap()
                .to_owned()
        }
    };
    let owned = launch(Some("team-a"), image.clone()).await;
    let stopped = launch(None, image.clone()).await;
    ec2.stop_instances()
        .instance_ids(&stopped)
        .send()
        .await
        .unwrap();

    // Volumes: one loose, one attached.
    let volume = || {
        let ec2 = &ec2;
        async move {
            ec2.create_volume()
                .availability_zone("us-east-1a")
                .size(8)
                .send()
                .await
                .unwrap()
                .volume_id()
                .unwrap()
                .to_owned()
        }
    };
    let (loose, attached, doomed) = (volume().await, volume().await, volume().await);
    ec2.attach_volume()
        .volume_id(&attached)
        .instance_id(&owned)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
    // Snapshots: of a volume that is gone, of one that is there, and of a
    // gone one an image still uses.
    let snapshot = |v: String| {
        let ec2 = &ec2;
        async move {
            ec2.create_snapshot()
                .volume_id(v)
                .send()
                .await
                .unwrap()
                .snapshot_id()
                .unwrap()
                .to_owned()
        }
    };
    let orphan = snapshot(doomed.clone()).await;
    let kept = snapshot(loose.clone()).await;
    let for_image = snapshot(doomed.clone()).await;
    ec2.delete_volume().volume_id(&doomed).send().await.unwrap();
    let registered = ec2
        .register_image()
        .name("from-snapshot")
        .root_device_name("/dev/sda1")
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sda1")
                .ebs(EbsBlockDevice::builder().snapshot_id(&for_image).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_owned();
    // moto gives a registered image a snapshot of its own (of no volume):
    // the one its block device mapping names.
    let in_image = ec2
        .describe_images()
        .image_ids(&registered)
        .send()
        .await
        .unwrap()
        .images()[0]
        .block_device_mappings()[0]
        .ebs()
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_owned();
    // Images: one of ours an instance runs, one nobody runs.
    let used_image = ec2
        .create_image()
        .instance_id(&owned)
        .name("used")
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_owned();
    let running_from_image = launch(Some("team-b"), used_image.clone()).await;
    // Addresses: one loose, one on an instance.
    let loose_ip = ec2
        .allocate_address()
        .send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_owned();
    let bound_ip = ec2
        .allocate_address()
        .send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_owned();
    ec2.associate_address()
        .allocation_id(&bound_ip)
        .instance_id(&owned)
        .send()
        .await
        .unwrap();
    // A network interface of nobody's, in a VPC of its own.
    let loose_eni = ec2
        .create_network_interface()
        .subnet_id(&eni_subnet)
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_owned();

    let collecting = CancellationToken::new();
    tokio::spawn(
        env.collector(moto.sdk_config(), &[REGION])
            .run(collecting.clone()),
    );
    let stop = CancellationToken::new();
    tokio::spawn(env.projector(&env.store, "tables", 500).run(stop.clone()));
    let api = env.api();
    let task = api
        .collect(json!({"source": "aws", "kind": "all", "regions": [REGION]}))
        .await;
    assert_eq!(wait_for_task(&env, &task).await.state.as_str(), "completed");
    let (status, _) = api
        .get(&format!("/api/v1/aws/vpcs?after_task={task}"))
        .await;
    assert_eq!(status, 200);

    let (status, index) = api.get("/api/v1/reports").await;
    assert_eq!(status, 200);
    assert_eq!(index["reports"].as_array().unwrap().len(), 9, "{index}");

    let volumes = reported(&api, "unattached-volumes", "volume_id").await;
    assert!(
        volumes.contains(&loose) && !volumes.contains(&attached),
        "{volumes:?}"
    );
    // Created just now: not a day old.
    assert!(
        !reported(&api, "unattached-volumes?min_age=1d", "volume_id")
            .await
            .contains(&loose)
    );

    let ips = reported(&api, "unassociated-elastic-ips", "allocation_id").await;
    assert!(
        ips.contains(&loose_ip) && !ips.contains(&bound_ip),
        "{ips:?}"
    );

    let groups = reported(&api, "unused-security-groups", "group_id").await;
    assert!(groups.contains(&unused_sg), "{groups:?}");
    assert!(
        !groups.contains(&used_sg),
        "an instance's group: {groups:?}"
    );
    assert!(
        !groups.contains(&referenced_sg),
        "referred to by a rule: {groups:?}"
    );
    let (_, all_groups) = api
        .get("/api/v1/aws/security-groups?group_name=default")
        .await;
    for g in all_groups["items"].as_array().unwrap() {
        assert!(
            !groups.contains(g["group_id"].as_str().unwrap()),
            "a default group: {groups:?}"
        );
    }

    let enis = reported(&api, "available-network-interfaces", "network_interface_id").await;
    assert!(enis.contains(&loose_eni), "{enis:?}");
    let (_, owned_item) = api
        .get(&format!("/api/v1/aws/instances/{owned}/network-interfaces"))
        .await;
    for eni in owned_item["items"].as_array().unwrap() {
        assert!(
            !enis.contains(eni["network_interface_id"].as_str().unwrap()),
            "in use: {enis:?}"
        );
    }

    // moto says when: "User initiated (<now>)"; days=0 finds it, 30 does not.
    let stopped_now = reported(&api, "stopped-instances?days=0", "instance_id").await;
    assert!(
        stopped_now.contains(&stopped) && !stopped_now.contains(&owned),
        "{stopped_now:?}"
    );
    assert!(
        reported(&api, "stopped-instances", "instance_id")
            .await
            .is_empty()
    );

    let snapshots = reported(&api, "orphan-snapshots", "snapshot_id").await;
    assert!(snapshots.contains(&orphan), "{snapshots:?}");
    assert!(
        !snapshots.contains(&kept),
        "its volume exists: {snapshots:?}"
    );
    assert!(
        !snapshots.contains(&in_image),
        "image {registered} uses it: {snapshots:?}"
    );

    let images = reported(&api, "unused-images", "image_id").await;
    assert!(images.contains(&registered), "{images:?}");
    assert!(
        !images.contains(&used_image),
        "{running_from_image} runs it: {images:?}"
    );
    assert!(!images.contains(&image), "not ours: {images:?}");

    let vpcs = reported(&api, "empty-vpcs", "vpc_id").await;
    assert!(vpcs.contains(&empty_vpc), "{vpcs:?}");
    assert!(
        !vpcs.contains(&busy_vpc) && !vpcs.contains(&eni_vpc),
        "{vpcs:?}"
    );
    let (_, defaults) = api.get("/api/v1/aws/vpcs?is_default=true").await;
    for v in defaults["items"].as_array().unwrap() {
        assert!(
            !vpcs.contains(v["vpc_id"].as_str().unwrap()),
            "a default vpc: {vpcs:?}"
        );
    }

    // Untagged: one kind, or every kind, each item saying its kind.
    let lacking = reported(&api, "untagged?tag=owner&kind=instances", "instance_id").await;
    assert!(
        lacking.contains(&stopped)
            && !lacking.contains(&owned)
            && !lacking.contains(&running_from_image)
    );
    let everything = api.all("/api/v1/reports/untagged?tag=owner&limit=3").await;
    let kinds: BTreeSet<&str> = everything
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("vpcs") && kinds.contains("volumes") && kinds.contains("instances"),
        "{kinds:?}"
    );
    let instances: Vec<&Value> = everything
        .iter()
        .filter(|i| i["kind"] == "instances")
        .collect();
    assert_eq!(instances.len(), 1, "only the stopped one lacks the tag");
    let (status, body) = api.get("/api/v1/reports/untagged").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );

    // Reports answer like lists: fields, exports, filters, as of an instant.
    let (_, page) = api
        .get("/api/v1/reports/unattached-volumes?fields=volume_id,state")
        .await;
    assert_eq!(page["items"][0].as_object().unwrap().len(), 2, "{page}");
    let csv = api
        .client
        .get(format!(
            "{}/api/v1/reports/unused-security-groups?format=csv&fields=group_id",
            api.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("group_id\n") && csv.contains(&unused_sg),
        "{csv}"
    );
    assert!(
        reported(&api, "empty-vpcs?account_id=000000000000", "vpc_id")
            .await
            .is_empty()
    );
    let before = reported(&api, "empty-vpcs?at=2000-01-01T00:00:00Z", "vpc_id").await;
    assert!(before.is_empty(), "{before:?}");
    let now_at = reported(&api, "empty-vpcs?at=2100-01-01T00:00:00Z", "vpc_id").await;
    assert!(
        now_at.contains(&empty_vpc) && !now_at.contains(&busy_vpc),
        "{now_at:?}"
    );
    let at_groups = reported(
        &api,
        "unused-security-groups?at=2100-01-01T00:00:00Z",
        "group_id",
    )
    .await;
    assert_eq!(
        at_groups, groups,
        "as of now, from history, the same answer"
    );
    let (status, _) = api.get("/api/v1/reports/teapots").await;
    assert_eq!(status, 404);
    let (status, _) = api.get("/api/v1/reports/stopped-instances?days=soon").await;
    assert_eq!(status, 400);
    collecting.cancel();
    stop.cancel();
}

/// When the provider does not say since when an instance is stopped, our own
/// history does: the first stopped version after its last other state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_since_comes_from_history_when_the_provider_is_silent() {
    let env = TestEnv::new().await;
    let r = Some(REGION);
    let version = |id: &str, state: &str, at: &str, scan: &str| {
        let first = scan == "s1";
        let mut e = envelope(
            if first {
                EventType::ResourceCreated
            } else {
                EventType::ResourceUpdated
            },
            "instance",
            r,
            scan,
            Some(id),
            Some(json!({"instanceId": id, "instanceState": {"name": state}})),
        );
        e.observed_at = at.parse().unwrap();
        e
    };
    let now = chrono::Utc::now();
    let ago = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    let events = vec![
        version("i-long", "running", &ago(90), "s1"),
        version("i-long", "stopped", &ago(40), "s2"),
        version("i-short", "stopped", &ago(90), "s1"),
        version("i-short", "running", &ago(60), "s2"),
        version("i-short", "stopped", &ago(10), "s3"),
        version("i-up", "running", &ago(90), "s1"),
    ];
    env.bus.publish_events(&events, None).await.unwrap();
    env.project_default().await;
    let api = env.api();
    assert_eq!(
        reported(&api, "stopped-instances", "instance_id").await,
        BTreeSet::from(["i-long".to_owned()])
    );
    assert_eq!(
        reported(&api, "stopped-instances?days=5", "instance_id").await,
        BTreeSet::from(["i-long".to_owned(), "i-short".to_owned()])
    );
    // As of 20 days ago, i-short had been running for 40 days.
    let at = (now - chrono::Duration::days(20))
        .to_rfc3339()
        .replace('+', "%2B");
    assert_eq!(
        reported(
            &api,
            &format!("stopped-instances?days=15&at={at}"),
            "instance_id"
        )
        .await,
        BTreeSet::from(["i-long".to_owned()])
    );
}
