//! EC2 breadth against moto: every kind and link, several accounts reached by
//! assume-role, several regions, faults injected by a proxy, bad credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{Region, SharedCredentialsProvider};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, InstanceType, IpPermission, IpRange,
    NewDhcpConfiguration, ResourceType, Tag, TagSpecification, VolumeType,
};
use inventory_collector::{Account, CollectionReport, Collector, CollectorSettings};
use inventory_integration_tests::{
    Api, Faults, HttpFaultProxy, Moto, TestEnv, amazon_image, launch_instances, test_pacing,
};
use inventory_model::{CollectRequest, KINDS};
use inventory_source_aws::{AccountSpec, AwsConfig, CredentialSpec};
use serde_json::Value;

/// moto's default account: the static test keys act in it.
const A: &str = "123456789012";
/// Reached by assuming a role in them.
const B: &str = "222222222222";
const C: &str = "333333333333";
const D: &str = "444444444444";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// SDK configuration acting in `account` (assume-role from the test keys).
async fn as_account(moto: &Moto, account: &str) -> SdkConfig {
    let base = moto.sdk_config();
    if account == A {
        return base;
    }
    let provider = AssumeRoleProvider::builder(format!("arn:aws:iam::{account}:role/seed"))
        .session_name("seed")
        .configure(&base)
        .build()
        .await;
    base.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

fn ec2(conf: &SdkConfig, region: &str) -> Client {
    Client::from_conf(
        aws_sdk_ec2::config::Builder::from(conf)
            .region(Region::new(region.to_owned()))
            .build(),
    )
}

/// Named credentials: the test keys from files, and roles in B, C and D.
fn credentials(dir: &std::path::Path) -> BTreeMap<String, CredentialSpec> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("key-id"), "testing\n").unwrap();
    std::fs::write(dir.join("secret"), "testing\n").unwrap();
    let mut specs = BTreeMap::new();
    specs.insert(
        "keys".to_string(),
        CredentialSpec::Static {
            access_key_id_file: dir.join("key-id"),
            secret_access_key_file: dir.join("secret"),
            session_token_file: None,
        },
    );
    specs.insert(
        "no-keys".to_string(),
        CredentialSpec::Static {
            access_key_id_file: dir.join("missing-key-id"),
            secret_access_key_file: dir.join("secret"),
            session_token_file: None,
        },
    );
    for (name, account) in [("audit-b", B), ("audit-c", C), ("audit-d", D)] {
        specs.insert(
            name.to_string(),
            CredentialSpec::AssumeRole {
                source: "keys".into(),
                role_arn: format!("arn:aws:iam::{account}:role/inventory"),
                external_id: Some("inventory-test".into()),
                session_name: None,
            },
        );
    }
    specs
}

fn spec(id: &str, credential: &str, endpoint: &str) -> AccountSpec {
    AccountSpec {
        id: Some(id.into()),
        credential: credential.into(),
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        excluded_regions: vec![],
        endpoint_url: Some(endpoint.into()),
    }
}

async fn collector(
    env: &TestEnv,
    moto: &Moto,
    specs: &[AccountSpec],
    dir: &std::path::Path,
) -> Collector {
    let config = AwsConfig {
        credentials: credentials(dir),
        accounts: specs.to_vec(),
        pacing: test_pacing(),
        ..Default::default()
    };
    let accounts: Vec<Account> = inventory_source_aws::accounts(&moto.sdk_config(), &config)
        .await
        .expect("accounts");
    Collector::with_accounts(
        env.bus.clone(),
        accounts,
        CollectorSettings {
            regions: None,
            page_size: 5,
            concurrency: 6,
            scan_retries: 2,
            retry_delay: Duration::from_millis(100),
            ..Default::default()
        },
    )
}

async fn collect(c: &Collector, request_id: &str) -> CollectionReport {
    c.collect(&CollectRequest::of("aws", "all"), request_id)
        .await
        .expect("collection")
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn named(kind: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(tag("Name", name))
        .build()
}

/// One of every kind, linked the way operators see them.
struct Fleet {
    region: String,
    vpc: String,
    peer_vpc: String,
    subnet_a: String,
    subnet_b: String,
    dhcp: String,
    igw: String,
    route_table: String,
    sg: String,
    instance: String,
    primary_eni: String,
    image: String,
    owned_image: String,
    volume: String,
    snapshot: String,
    eip: String,
    eni_eip: String,
    nat: String,
    eni: String,
    peering: String,
}

async fn seed(ec2: &Client, region: &str) -> Fleet {
    let image = amazon_image(ec2).await;
    let vpc_of = |cidr: &'static str, name: &'static str| async move {
        ec2.create_vpc()
            .cidr_block(cidr)
            .tag_specifications(named(ResourceType::Vpc, name))
            .send()
            .await
            .unwrap()
            .vpc()
            .unwrap()
            .vpc_id()
            .unwrap()
            .to_owned()
    };
    let vpc = vpc_of("10.1.0.0/16", "main").await;
    let peer_vpc = vpc_of("10.2.0.0/16", "peer").await;
    let subnet = |cidr: &'static str, az: &'static str| {
        let vpc = vpc.clone();
        async move {
            ec2.create_subnet()
                .vpc_id(vpc)
                .cidr_block(cidr)
                .availability_zone(format!("{region}{az}"))
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
    let subnet_a = subnet("10.1.0.0/24", "a").await;
    let subnet_b = subnet("10.1.1.0/24", "b").await;
    let dhcp = ec2
        .create_dhcp_options()
        .dhcp_configurations(
            NewDhcpConfiguration::builder()
                .key("domain-name")
                .values("corp.example")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .dhcp_options()
        .unwrap()
        .dhcp_options_id()
        .unwrap()
        .to_owned();
    ec2.associate_dhcp_options()
        .dhcp_options_id(&dhcp)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let route_table = ec2
        .create_route_table()
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .route_table()
        .unwrap()
        .route_table_id()
        .unwrap()
        .to_owned();
    ec2.create_route()
        .route_table_id(&route_table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    ec2.associate_route_table()
        .route_table_id(&route_table)
        .subnet_id(&subnet_a)
        .send()
        .await
        .unwrap();
    let sg = ec2
        .create_security_group()
        .group_name("web")
        .description("web servers")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.create_key_pair().key_name("ops").send().await.unwrap();
    let out = ec2
        .run_instances()
        .image_id(&image)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet_a)
        .security_group_ids(&sg)
        .key_name("ops")
        .tag_specifications(named(ResourceType::Instance, "web"))
        .send()
        .await
        .unwrap();
    let launched = &out.instances()[0];
    let instance = launched.instance_id().unwrap().to_owned();
    let primary_eni = launched.network_interfaces()[0]
        .network_interface_id()
        .unwrap()
        .to_owned();
    let volume = ec2
        .create_volume()
        .availability_zone(format!("{region}a"))
        .size(20)
        .volume_type(VolumeType::Gp3)
        .tag_specifications(named(ResourceType::Volume, "data"))
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_owned();
    ec2.attach_volume()
        .volume_id(&volume)
        .instance_id(&instance)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
    let snapshot = ec2
        .create_snapshot()
        .volume_id(&volume)
        .description("nightly")
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_owned();
    let owned_image = ec2
        .create_image()
        .instance_id(&instance)
        .name("golden")
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_owned();
    let allocate = || async {
        ec2.allocate_address()
            .domain(DomainType::Vpc)
            .send()
            .await
            .unwrap()
            .allocation_id()
            .unwrap()
            .to_owned()
    };
    let eip = allocate().await;
    ec2.associate_address()
        .allocation_id(&eip)
        .instance_id(&instance)
        .send()
        .await
        .unwrap();
    let nat_eip = allocate().await;
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&subnet_b)
        .allocation_id(&nat_eip)
        .send()
        .await
        .unwrap()
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_owned();
    let eni = ec2
        .create_network_interface()
        .subnet_id(&subnet_b)
        .groups(&sg)
        .description("standalone")
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_owned();
    let eni_eip = allocate().await;
    ec2.associate_address()
        .allocation_id(&eni_eip)
        .network_interface_id(&eni)
        .send()
        .await
        .unwrap();
    let peering = ec2
        .create_vpc_peering_connection()
        .vpc_id(&vpc)
        .peer_vpc_id(&peer_vpc)
        .send()
        .await
        .unwrap()
        .vpc_peering_connection()
        .unwrap()
        .vpc_peering_connection_id()
        .unwrap()
        .to_owned();
    // A boolean column that differs from its default.
    ec2.modify_subnet_attribute()
        .subnet_id(&subnet_b)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    Fleet {
        region: region.to_owned(),
        vpc,
        peer_vpc,
        subnet_a,
        subnet_b,
        dhcp,
        igw,
        route_table,
        sg,
        instance,
        primary_eni,
        image,
        owned_image,
        volume,
        snapshot,
        eip,
        eni_eip,
        nat,
        eni,
        peering,
    }
}

fn set<I: IntoIterator<Item = S>, S: AsRef<str>>(ids: I) -> BTreeSet<String> {
    ids.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

/// What moto itself lists for a kind in one account and region, through the
/// SDK's typed calls (independent of the collector's raw-response path).
async fn moto_ids(ec2: &Client, plural: &str) -> BTreeSet<String> {
    macro_rules! ids {
        ($call:expr, $list:ident, $id:ident) => {
            $call
                .send()
                .await
                .unwrap()
                .$list()
                .iter()
                .filter_map(|x| x.$id().map(str::to_owned))
                .collect()
        };
    }
    match plural {
        "availability-zones" => ids!(
            ec2.describe_availability_zones(),
            availability_zones,
            zone_name
        ),
        "vpcs" => ids!(ec2.describe_vpcs(), vpcs, vpc_id),
        "subnets" => ids!(ec2.describe_subnets(), subnets, subnet_id),
        "instances" => ec2
            .describe_instances()
            .send()
            .await
            .unwrap()
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect(),
        "images" => {
            let used: Vec<String> = ec2
                .describe_instances()
                .send()
                .await
                .unwrap()
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.image_id().map(str::to_owned))
                .collect();
            let mut ids: BTreeSet<String> =
                ids!(ec2.describe_images().owners("self"), images, image_id);
            if !used.is_empty() {
                let filter = Filter::builder()
                    .name("image-id")
                    .set_values(Some(used))
                    .build();
                let referenced: BTreeSet<String> =
                    ids!(ec2.describe_images().filters(filter), images, image_id);
                ids.extend(referenced);
            }
            ids
        }
        "network-interfaces" => ids!(
            ec2.describe_network_interfaces(),
            network_interfaces,
            network_interface_id
        ),
        "dhcp-options" => ids!(ec2.describe_dhcp_options(), dhcp_options, dhcp_options_id),
        "security-groups" => ids!(ec2.describe_security_groups(), security_groups, group_id),
        "volumes" => ids!(ec2.describe_volumes(), volumes, volume_id),
        "snapshots" => ids!(
            ec2.describe_snapshots().owner_ids("self"),
            snapshots,
            snapshot_id
        ),
        "route-tables" => ids!(ec2.describe_route_tables(), route_tables, route_table_id),
        "internet-gateways" => ids!(
            ec2.describe_internet_gateways(),
            internet_gateways,
            internet_gateway_id
        ),
        "nat-gateways" => ids!(ec2.describe_nat_gateways(), nat_gateways, nat_gateway_id),
        "elastic-ips" => ids!(ec2.describe_addresses(), addresses, allocation_id),
        "key-pairs" => ids!(ec2.describe_key_pairs(), key_pairs, key_name),
        "vpc-peering-connections" => ids!(
            ec2.describe_vpc_peering_connections(),
            vpc_peering_connections,
            vpc_peering_connection_id
        ),
        other => panic!("no moto listing for {other}"),
    }
}

/// Every regional kind in `account`/`region`: the API lists exactly what moto has.
async fn assert_complete(api: &Api, ec2: &Client, account: &str, region: &str) {
    for kind in KINDS.iter().filter(|k| k.regional()) {
        let want = moto_ids(ec2, kind.plural).await;
        let got = set(api
            .ids(
                &format!(
                    "/api/v1/aws/{}?account_id={account}&region={region}",
                    kind.plural
                ),
                kind.id_column,
            )
            .await);
        assert_eq!(got, want, "{} in {account}/{region}", kind.plural);
    }
}

async fn nested(api: &Api, path: &str, id_field: &str) -> BTreeSet<String> {
    set(api.ids(&format!("/api/v1/aws/{path}"), id_field).await)
}

async fn item(api: &Api, path: &str) -> Value {
    let (status, body) = api.get(&format!("/api/v1/aws/{path}")).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_and_link_across_accounts_and_regions() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let dir = std::env::temp_dir().join(format!("inventory-ec2-{}", uuid::Uuid::now_v7()));
    let conf_b = as_account(&moto, B).await;
    let fleet = seed(&ec2(&conf_b, "eu-west-1"), "eu-west-1").await;
    // A little in the others: an instance in A, a key pair in C.
    let a = ec2(&moto.sdk_config(), "us-east-1");
    let image = amazon_image(&a).await;
    a.run_instances()
        .image_id(&image)
        .min_count(2)
        .max_count(2)
        .send()
        .await
        .unwrap();
    let conf_c = as_account(&moto, C).await;
    ec2(&conf_c, "eu-west-1")
        .create_key_pair()
        .key_name("c-ops")
        .send()
        .await
        .unwrap();

    // C: every enabled region but the excluded ones (all but REGIONS).
    let all_regions: Vec<String> = a
        .describe_regions()
        .send()
        .await
        .unwrap()
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_owned))
        .collect();
    let mut c = spec(C, "audit-c", &moto.endpoint);
    c.regions.clear();
    c.excluded_regions = all_regions
        .iter()
        .filter(|r| !REGIONS.contains(&r.as_str()))
        .cloned()
        .collect();
    let specs = [
        spec(A, "keys", &moto.endpoint),
        spec(B, "audit-b", &moto.endpoint),
        c,
    ];
    let collector = collector(&env, &moto, &specs, &dir).await;
    let report = collect(&collector, "breadth").await;
    assert_eq!(report.failed(), 0, "{report:#?}");
    let regional = KINDS.iter().filter(|k| k.regional()).count();
    assert_eq!(
        report.scans.len(),
        3 * (1 + 2 * regional),
        "one scan per (account, region, kind), regions once per account"
    );
    assert!(
        report
            .scans
            .iter()
            .all(|s| s.api_calls >= 1 && s.attempts == 1)
    );
    env.project_default().await;
    let api = env.api();

    for (account, conf) in [(A, moto.sdk_config()), (B, conf_b.clone()), (C, conf_c)] {
        assert_eq!(
            set(api
                .ids(&format!("/api/v1/aws/regions?account_id={account}"), "name")
                .await),
            set(&all_regions),
            "{account}"
        );
        for region in REGIONS {
            assert_complete(&api, &ec2(&conf, region), account, region).await;
        }
    }

    // Typed columns.
    let f = &fleet;
    let q = format!("account_id={B}");
    let vpc = item(&api, &format!("vpcs/{}?{q}", f.vpc)).await;
    assert_eq!(
        (vpc["name"].as_str(), vpc["cidr_block"].as_str()),
        (Some("main"), Some("10.1.0.0/16"))
    );
    assert_eq!(vpc["dhcp_options_id"], f.dhcp.as_str());
    assert_eq!(
        (vpc["account_id"].as_str(), vpc["region"].as_str()),
        (Some(B), Some("eu-west-1"))
    );
    let subnet = item(&api, &format!("subnets/{}", f.subnet_b)).await;
    assert_eq!(subnet["availability_zone"], "eu-west-1b");
    assert_eq!(subnet["map_public_ip_on_launch"], true);
    let az = item(&api, &format!("availability-zones/eu-west-1a?{q}")).await;
    assert_eq!(az["state"], "available");
    assert!(az["zone_id"].is_string());
    let inst = item(&api, &format!("instances/{}", f.instance)).await;
    assert_eq!(inst["instance_type"], "t3.micro");
    assert_eq!(inst["key_name"], "ops");
    assert_eq!(inst["name"], "web");
    assert_eq!(inst["image_id"], f.image.as_str());
    let golden = item(&api, &format!("images/{}", f.owned_image)).await;
    assert_eq!(
        (golden["name"].as_str(), golden["owner_id"].as_str()),
        (Some("golden"), Some(B))
    );
    let public = item(&api, &format!("images/{}?{q}&region=eu-west-1", f.image)).await;
    assert_ne!(
        public["owner_id"], B,
        "an image the account uses but does not own"
    );
    let eni = item(&api, &format!("network-interfaces/{}", f.eni)).await;
    assert_eq!(
        (eni["subnet_id"].as_str(), eni["description"].as_str()),
        (Some(f.subnet_b.as_str()), Some("standalone"))
    );
    let dhcp = item(&api, &format!("dhcp-options/{}", f.dhcp)).await;
    assert_eq!(dhcp["configuration"][0]["key"], "domain-name");
    let sg = item(&api, &format!("security-groups/{}", f.sg)).await;
    assert_eq!(
        (sg["group_name"].as_str(), sg["description"].as_str()),
        (Some("web"), Some("web servers"))
    );
    let rule = &sg["ingress_rules"][0];
    assert_eq!(
        (rule["ipProtocol"].as_str(), rule["fromPort"].as_str()),
        (Some("tcp"), Some("22"))
    );
    assert_eq!(rule["ipRanges"][0]["cidrIp"], "10.0.0.0/8");
    assert!(sg["egress_rules"].is_array());
    let vol = item(&api, &format!("volumes/{}", f.volume)).await;
    assert_eq!(
        (vol["size_gib"].as_i64(), vol["volume_type"].as_str()),
        (Some(20), Some("gp3"))
    );
    assert_eq!(vol["attachments"][0]["instanceId"], f.instance.as_str());
    assert_eq!(vol["name"], "data");
    let snap = item(&api, &format!("snapshots/{}", f.snapshot)).await;
    assert_eq!(
        (snap["volume_id"].as_str(), snap["description"].as_str()),
        (Some(f.volume.as_str()), Some("nightly"))
    );
    assert_eq!(snap["volume_size_gib"], 20);
    let rt = item(&api, &format!("route-tables/{}", f.route_table)).await;
    assert!(
        rt["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["gatewayId"] == f.igw.as_str())
    );
    let igw = item(&api, &format!("internet-gateways/{}", f.igw)).await;
    assert_eq!(igw["attachments"][0]["vpcId"], f.vpc.as_str());
    let nat = item(&api, &format!("nat-gateways/{}", f.nat)).await;
    assert_eq!(
        (nat["vpc_id"].as_str(), nat["subnet_id"].as_str()),
        (Some(f.vpc.as_str()), Some(f.subnet_b.as_str()))
    );
    let eip = item(&api, &format!("elastic-ips/{}", f.eip)).await;
    assert_eq!(
        (eip["instance_id"].as_str(), eip["domain"].as_str()),
        (Some(f.instance.as_str()), Some("vpc"))
    );
    assert!(eip["public_ip"].is_string());
    let key = item(&api, &format!("key-pairs/ops?{q}")).await;
    assert!(key["fingerprint"].is_string());
    let pcx = item(&api, &format!("vpc-peering-connections/{}", f.peering)).await;
    assert_eq!(
        (
            pcx["requester_vpc_id"].as_str(),
            pcx["accepter_vpc_id"].as_str()
        ),
        (Some(f.vpc.as_str()), Some(f.peer_vpc.as_str()))
    );

    // Every link, as nested collections.
    let links: Vec<(String, &str, BTreeSet<String>)> = vec![
        (
            format!("regions/eu-west-1/availability-zones?{q}"),
            "zone_name",
            set(["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
        ),
        (
            format!("regions/eu-west-1/instances?{q}"),
            "instance_id",
            set([&f.instance]),
        ),
        (
            format!("regions/eu-west-1/images?{q}"),
            "image_id",
            set([&f.image, &f.owned_image]),
        ),
        (
            format!("vpcs/{}/subnets", f.vpc),
            "subnet_id",
            set([&f.subnet_a, &f.subnet_b]),
        ),
        (
            format!("subnets/{}/availability-zones", f.subnet_a),
            "zone_name",
            set(["eu-west-1a"]),
        ),
        (
            format!("vpcs/{}/instances", f.vpc),
            "instance_id",
            set([&f.instance]),
        ),
        (
            format!("instances/{}/subnets", f.instance),
            "subnet_id",
            set([&f.subnet_a]),
        ),
        (
            format!("instances/{}/regions", f.instance),
            "name",
            set(["eu-west-1"]),
        ),
        (
            format!("instances/{}/images", f.instance),
            "image_id",
            set([&f.image]),
        ),
        (
            format!("images/{}/regions", f.owned_image),
            "name",
            set(["eu-west-1"]),
        ),
        (
            format!("instances/{}/network-interfaces", f.instance),
            "network_interface_id",
            set([&f.primary_eni]),
        ),
        (
            format!("network-interfaces/{}/subnets", f.eni),
            "subnet_id",
            set([&f.subnet_b]),
        ),
        (
            format!("instances/{}/security-groups", f.instance),
            "group_id",
            set([&f.sg]),
        ),
        (
            format!("security-groups/{}/instances", f.sg),
            "instance_id",
            set([&f.instance]),
        ),
        (
            format!("network-interfaces/{}/security-groups", f.eni),
            "group_id",
            set([&f.sg]),
        ),
        (
            format!("volumes/{}/snapshots", f.volume),
            "snapshot_id",
            set([&f.snapshot]),
        ),
        (
            format!("vpcs/{}/dhcp-options", f.vpc),
            "dhcp_options_id",
            set([&f.dhcp]),
        ),
        (
            format!("vpcs/{}/internet-gateways", f.vpc),
            "internet_gateway_id",
            set([&f.igw]),
        ),
        (
            format!("subnets/{}/route-tables", f.subnet_a),
            "route_table_id",
            set([&f.route_table]),
        ),
        (
            format!("vpcs/{}/nat-gateways", f.vpc),
            "nat_gateway_id",
            set([&f.nat]),
        ),
        (
            format!("elastic-ips/{}/instances", f.eip),
            "instance_id",
            set([&f.instance]),
        ),
        (
            format!("elastic-ips/{}/network-interfaces", f.eni_eip),
            "network_interface_id",
            set([&f.eni]),
        ),
        (
            format!("vpcs/{}/vpc-peering-connections", f.vpc),
            "vpc_peering_connection_id",
            set([&f.peering]),
        ),
        (
            format!("vpcs/{}/vpc-peering-connections", f.peer_vpc),
            "vpc_peering_connection_id",
            set([&f.peering]),
        ),
        (
            format!("vpc-peering-connections/{}/vpcs", f.peering),
            "vpc_id",
            set([&f.vpc, &f.peer_vpc]),
        ),
    ];
    for (path, field, want) in &links {
        assert_eq!(&nested(&api, path, field).await, want, "{path}");
    }
    let volumes = nested(
        &api,
        &format!("instances/{}/volumes", f.instance),
        "volume_id",
    )
    .await;
    assert!(
        volumes.contains(&f.volume) && volumes.len() == 2,
        "root and data volume: {volumes:?}"
    );
    let sg_enis = nested(
        &api,
        &format!("security-groups/{}/network-interfaces", f.sg),
        "network_interface_id",
    )
    .await;
    assert_eq!(sg_enis, set([&f.eni, &f.primary_eni]));

    // Deleted in moto: gone after the next completed scan, with their links.
    let e = ec2(&conf_b, &f.region);
    let eni_eip = item(&api, &format!("elastic-ips/{}", f.eni_eip)).await;
    e.disassociate_address()
        .association_id(eni_eip["association_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    e.release_address()
        .allocation_id(&f.eni_eip)
        .send()
        .await
        .unwrap();
    e.delete_network_interface()
        .network_interface_id(&f.eni)
        .send()
        .await
        .unwrap();
    e.delete_snapshot()
        .snapshot_id(&f.snapshot)
        .send()
        .await
        .unwrap();
    e.detach_volume()
        .volume_id(&f.volume)
        .instance_id(&f.instance)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
    e.delete_volume().volume_id(&f.volume).send().await.unwrap();
    e.delete_key_pair().key_name("ops").send().await.unwrap();
    let report = collect(&collector, "after-deletes").await;
    assert_eq!(report.failed(), 0, "{report:#?}");
    env.project_default().await;
    for path in [
        format!("elastic-ips/{}", f.eni_eip),
        format!("network-interfaces/{}", f.eni),
        format!("snapshots/{}", f.snapshot),
        format!("volumes/{}", f.volume),
        format!("key-pairs/ops?{q}"),
        format!("volumes/{}/snapshots", f.volume),
    ] {
        let (status, body) = api.get(&format!("/api/v1/aws/{path}")).await;
        assert_eq!(status, 410, "{path}: {body}");
    }
    assert_eq!(
        nested(
            &api,
            &format!("security-groups/{}/network-interfaces", f.sg),
            "network_interface_id"
        )
        .await,
        set([&f.primary_eni])
    );
    // (the NAT gateway's own interface stays in the subnet)
    assert!(
        !nested(
            &api,
            &format!("subnets/{}/network-interfaces", f.subnet_b),
            "network_interface_id"
        )
        .await
        .contains(&f.eni)
    );
    let volumes = nested(
        &api,
        &format!("instances/{}/volumes", f.instance),
        "volume_id",
    )
    .await;
    assert!(
        !volumes.contains(&f.volume) && volumes.len() == 1,
        "{volumes:?}"
    );
    // The link rows themselves are gone, not only hidden.
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // (link tables hold the ends' ids as a_id and b_id: l_<a>_to_<b>)
    for (table, column, id) in [
        ("l_aws_network_interface_to_security_group", "a_id", &f.eni),
        ("l_aws_network_interface_to_subnet", "a_id", &f.eni),
        ("l_aws_volume_to_snapshot", "b_id", &f.snapshot),
        ("l_aws_instance_to_volume", "b_id", &f.volume),
        ("l_aws_elastic_ip_to_network_interface", "a_id", &f.eni_eip),
    ] {
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE {column} = $1"),
                &[id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} still links {id}");
    }
    assert_complete(&api, &e, B, &f.region).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_outages_are_retried_and_isolated() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let dir = std::env::temp_dir().join(format!("inventory-faults-{}", uuid::Uuid::now_v7()));
    let a = ec2(&moto.sdk_config(), "us-east-1");
    launch_instances(&a, 6).await;
    a.create_volume()
        .availability_zone("us-east-1a")
        .size(5)
        .send()
        .await
        .unwrap();
    // A quarter of A's requests are throttled or fail with 503; D refuses all.
    let flaky = HttpFaultProxy::start(&moto.endpoint, Faults::Share(0.25), 7);
    let dead = HttpFaultProxy::start(&moto.endpoint, Faults::RefuseAll, 0);
    let specs = [
        spec(A, "keys", &flaky.endpoint),
        spec(B, "audit-b", &moto.endpoint),
        spec(D, "audit-d", &dead.endpoint),
    ];
    let collector = collector(&env, &moto, &specs, &dir).await;
    let started = std::time::Instant::now();
    let report = collect(&collector, "faults").await;
    let took = started.elapsed();
    assert!(
        flaky.injected() > 10,
        "faults were injected: {}",
        flaky.injected()
    );
    assert!(dead.injected() > 0);
    // D failed as a whole, with the provider's error; nothing of A or B failed.
    assert_eq!(report.accounts_failed.len(), 1, "{report:#?}");
    assert_eq!(report.accounts_failed[0].account, D);
    assert_eq!(report.accounts_failed[0].code, "provider_error");
    let (d_scans, others): (Vec<_>, Vec<_>) = report.scans.iter().partition(|s| s.account_id == D);
    assert!(others.iter().all(|s| s.error.is_none()), "{report:#?}");
    // D's scans are on record as failed, so nothing of D is deleted.
    let regional = KINDS.iter().filter(|k| k.regional()).count();
    assert_eq!(d_scans.len(), 1 + 2 * regional);
    assert!(
        d_scans
            .iter()
            .all(|s| s.error.as_deref().is_some_and(|e| e.contains("audit-d")))
    );
    let a_scans: Vec<_> = report.scans.iter().filter(|s| s.account_id == A).collect();
    let b_scans: Vec<_> = report.scans.iter().filter(|s| s.account_id == B).collect();
    assert_eq!(a_scans.len(), b_scans.len());
    let throttles: u64 = a_scans.iter().map(|s| s.throttles).sum();
    let retries: u64 = a_scans.iter().map(|s| s.retries).sum();
    assert!(
        throttles > 0 && retries >= throttles,
        "throttles {throttles}, retries {retries}"
    );
    assert_eq!(
        b_scans.iter().map(|s| s.retries).sum::<u64>(),
        0,
        "B saw no faults"
    );
    tracing::info!(?took, throttles, retries, "collection through faults");

    env.project_default().await;
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let failed: i64 = client
        .query_one(
            "SELECT count(*) FROM scan WHERE account_id = $1 AND state = 'failed'",
            &[&D],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        failed as usize,
        1 + 2 * KINDS.iter().filter(|k| k.regional()).count()
    );
    let api = env.api();
    for region in REGIONS {
        assert_complete(&api, &ec2(&moto.sdk_config(), region), A, region).await;
        assert_complete(&api, &ec2(&as_account(&moto, B).await, region), B, region).await;
    }
    let (_, body) = api.get(&format!("/api/v1/aws/vpcs?account_id={D}")).await;
    assert_eq!(body["items"], serde_json::json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_fast_clearly_and_delete_nothing() {
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let dir = std::env::temp_dir().join(format!("inventory-creds-{}", uuid::Uuid::now_v7()));
    let proxy = HttpFaultProxy::start(&moto.endpoint, Faults::None, 0);
    let mut wrong_id = spec("999999999999", "keys", &moto.endpoint);
    wrong_id.regions = vec!["us-east-1".into()];
    let specs = [
        spec(B, "audit-b", &proxy.endpoint),
        wrong_id,
        spec(C, "no-keys", &moto.endpoint),
    ];
    let collector = collector(&env, &moto, &specs, &dir).await;
    let first = collect(&collector, "first").await;
    let failed: BTreeMap<&str, (&str, &str)> = first
        .accounts_failed
        .iter()
        .map(|f| (f.account.as_str(), (f.code.as_str(), f.error.as_str())))
        .collect();
    assert_eq!(failed.len(), 2, "{first:#?}");
    let (code, error) = failed["999999999999"];
    assert_eq!(code, "credentials_rejected");
    assert!(
        error.contains("credential \"keys\" belongs to account 123456789012, but is configured for account 999999999999"),
        "{error}"
    );
    let (code, error) = failed[C];
    assert_eq!(code, "credentials_rejected");
    assert!(
        error.contains("credential \"no-keys\": cannot read access key id"),
        "{error}"
    );
    for s in &first.scans {
        assert_eq!(s.error.is_none(), s.account_id == B, "{s:?}");
    }
    env.project_default().await;
    let api = env.api();
    let before = api.all(&format!("/api/v1/aws/vpcs?account_id={B}")).await;
    assert!(!before.is_empty());

    // B's keys stop working: every scan fails at once, is not retried, and
    // nothing is deleted.
    proxy.set(Faults::AuthFailure);
    let calls_before = proxy.injected();
    let second = collect(&collector, "second").await;
    let b_scans: Vec<_> = second.scans.iter().filter(|s| s.account_id == B).collect();
    assert!(!b_scans.is_empty());
    for s in &b_scans {
        let error = s.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("credential \"audit-b\" of account 222222222222")
                && error.contains("AuthFailure"),
            "{error}"
        );
        assert_eq!(s.attempts, 1, "credential errors are not retried");
        assert_eq!(s.api_calls, 1, "nor retried call by call");
        assert_eq!(s.deleted, 0);
    }
    assert_eq!(proxy.injected() - calls_before, b_scans.len() as u64);
    env.project_default().await;
    let after = api.all(&format!("/api/v1/aws/vpcs?account_id={B}")).await;
    assert_eq!(before, after, "a failed account loses nothing");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_kind_is_documented() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/kinds.md")).unwrap();
    assert_eq!(
        doc,
        inventory_sources::kinds_markdown(),
        "docs/kinds.md is generated from the catalogue: run `cargo run --bin inventory -- kinds > docs/kinds.md`"
    );
}
