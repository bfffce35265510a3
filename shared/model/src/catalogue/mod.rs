//! The catalogue of resource kinds, one file per source. Adding a kind means
//! adding one definition to its source's file, one generated migration, and
//! tests; adding a source, a file here and its crate under `services/sources/`
//! (`docs/sources.md`).

pub mod aws;
mod docs;
pub mod ganeti;

use std::sync::LazyLock;

use crate::kind::KindDef;

pub use docs::markdown;

/// Every kind of every source, in collection order per source.
pub static KINDS: LazyLock<Vec<&'static KindDef>> =
    LazyLock::new(|| aws::KINDS.iter().chain(ganeti::KINDS).copied().collect());

/// Every source that has kinds.
pub fn sources() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in KINDS.iter() {
        if !out.contains(&k.source) {
            out.push(k.source);
        }
    }
    out
}

pub fn kind_by_name(source: &str, name: &str) -> Option<&'static KindDef> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.source == source && k.name == name)
}

pub fn kind_by_plural(source: &str, plural: &str) -> Option<&'static KindDef> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.source == source && k.plural == plural)
}

/// The link between two kinds, in either direction (there is at most one per
/// pair of kinds: the catalogue test checks it).
pub fn link_between(a: &KindDef, b: &KindDef) -> Option<&'static crate::LinkDef> {
    KINDS
        .iter()
        .flat_map(|k| k.links.iter())
        .find(|l| (l.a == a.end() && l.b == b.end()) || (l.a == b.end() && l.b == a.end()))
}

#[cfg(test)]
mod tests {
    use super::aws::{
        AWS_INSTANCE, AWS_REGION, AWS_SECURITY_GROUP, AWS_SUBNET, AWS_VPC,
        AWS_VPC_PEERING_CONNECTION,
    };
    use super::*;
    use crate::{Cell, ColumnType, Field, Scope};
    use serde_json::{Value, json};

    #[test]
    fn catalogue_is_consistent() {
        let mut tables = std::collections::HashSet::new();
        let mut pairs = std::collections::HashSet::new();
        for k in KINDS.iter() {
            assert!(tables.insert(k.table), "{} declared twice", k.table);
            for c in k.columns {
                assert!(
                    !matches!(c.from, Field::Each(_)),
                    "{}.{}: a column holds one value",
                    k.table,
                    c.name
                );
                if c.ty == ColumnType::Json {
                    assert!(matches!(c.from, Field::Pointer(_) | Field::List(_)));
                } else {
                    assert!(!matches!(c.from, Field::List(_)), "{}.{}", k.table, c.name);
                }
            }
            assert_eq!(k.table, format!("{}_{}", k.source, k.name));
            assert_eq!(kind_by_name(k.source, k.name).unwrap().table, k.table);
            assert_eq!(kind_by_plural(k.source, k.plural).unwrap().table, k.table);
            for l in k.links {
                assert_eq!(
                    l.owner_end(),
                    k.end(),
                    "{} declares a link it does not own",
                    k.name
                );
                let expected = if l.a.source == l.b.source {
                    format!("l_{}_{}_to_{}", l.a.source, l.a.kind, l.b.kind)
                } else {
                    format!(
                        "n_{}_{}_to_{}_{}",
                        l.a.source, l.a.kind, l.b.source, l.b.kind
                    )
                };
                assert_eq!(l.table, expected);
                let other = l.other_end();
                assert!(kind_by_name(other.source, other.kind).is_some());
                assert!(tables.insert(l.table), "{} declared twice", l.table);
                // Nested routes find the link between two kinds: one per pair.
                let mut pair = [(l.a.source, l.a.kind), (l.b.source, l.b.kind)];
                pair.sort();
                assert!(pairs.insert(pair), "two links between {pair:?}");
                assert_ne!(l.a, l.b);
            }
        }
    }

    #[test]
    fn links_are_found_by_their_ends_and_sources() {
        let k = |n| kind_by_name("aws", n).unwrap();
        assert_eq!(
            link_between(k("vpc"), k("subnet")).unwrap().table,
            "l_aws_vpc_to_subnet"
        );
        assert_eq!(
            link_between(k("subnet"), k("instance")).unwrap().table,
            "l_aws_instance_to_subnet"
        );
        assert_eq!(
            link_between(k("region"), k("instance")).unwrap().table,
            "l_aws_instance_to_region"
        );
        assert!(link_between(k("region"), k("subnet")).is_none());
        assert_eq!(sources(), ["aws", "ganeti"]);
        // Two sources may have kinds of one name, and links between them.
        let g = |n| kind_by_name("ganeti", n).unwrap();
        assert_eq!(g("instance").plural, k("instance").plural);
        assert!(link_between(g("instance"), k("subnet")).is_none());
        assert_eq!(
            link_between(g("node"), g("instance")).unwrap().table,
            "l_ganeti_instance_to_node"
        );
    }

    #[test]
    fn tags_are_normalized_from_every_shape() {
        use crate::kind::{ListCall, ScanScope, TagSet, TagShape};
        let kind = |shape| KindDef {
            source: "t",
            name: "thing",
            plural: "things",
            table: "t_thing",
            id_column: "id",
            id: Field::Pointer("/id"),
            scope: ScanScope::Account,
            list: ListCall {
                operation: "List",
                items: "/items/*",
            },
            tags: Some(TagSet { at: "/t", shape }),
            columns: &[],
            links: &[],
        };
        let pairs = kind(TagShape::Pairs {
            key: "Key",
            value: "Value",
        });
        assert_eq!(
            Value::Object(pairs.tags_of(&json!({"t": [{"Key": "env", "Value": "prod"}]}))),
            json!({"env": "prod"})
        );
        let map = kind(TagShape::Map);
        assert_eq!(
            Value::Object(map.tags_of(&json!({"t": {"env": "prod", "team": "core"}}))),
            json!({"env": "prod", "team": "core"})
        );
        let strings = kind(TagShape::Strings);
        assert_eq!(
            Value::Object(strings.tags_of(&json!({"t": ["prod", "owner:ops", "cost=7"]}))),
            json!({"prod": "", "owner": "ops", "cost": "7"})
        );
        assert!(strings.tags_of(&json!({"t": "not a list"})).is_empty());
    }

    #[test]
    fn instance_projects_typed_cells_tags_and_links() {
        let payload = json!({
            "instanceId": "i-1",
            "vpcId": "vpc-1",
            "subnetId": "subnet-1",
            "instanceType": "t3.micro",
            "instanceState": {"code": "16", "name": "running"},
            "launchTime": "2026-11-01T12:00:00.000Z",
            "placement": {"availabilityZone": "eu-west-1a"},
            "tagSet": [{"key": "Name", "value": "web-1"}, {"key": "team", "value": "core"}]
        });
        let scope = Scope {
            account_id: "1".into(),
            region: Some("eu-west-1".into()),
        };
        let p = AWS_INSTANCE.project("i-1", &scope, &payload).unwrap();
        let cell = |name| {
            let i = AWS_INSTANCE
                .columns
                .iter()
                .position(|c| c.name == name)
                .unwrap();
            p.cells[i].clone()
        };
        assert_eq!(cell("name"), Cell::Text("web-1".into()));
        assert_eq!(cell("state"), Cell::Text("running".into()));
        assert_eq!(cell("public_ip_address"), Cell::Null);
        assert_eq!(
            cell("launch_time"),
            Cell::Timestamp("2026-11-01T12:00:00Z".parse().unwrap())
        );
        assert_eq!(p.tags["team"], "core");
        let links: Vec<(&str, Vec<String>)> = AWS_INSTANCE
            .links
            .iter()
            .map(|l| l.table)
            .zip(p.links.clone())
            .collect();
        assert_eq!(
            links,
            vec![
                ("l_aws_vpc_to_instance", vec!["vpc-1".to_string()]),
                ("l_aws_instance_to_subnet", vec!["subnet-1".to_string()]),
                ("l_aws_instance_to_region", vec!["eu-west-1".to_string()]),
                ("l_aws_instance_to_image", vec![]),
                ("l_aws_instance_to_network_interface", vec![]),
                ("l_aws_instance_to_security_group", vec![]),
                ("l_aws_instance_to_volume", vec![]),
            ]
        );
        assert!(AWS_INSTANCE.project("i-2", &scope, &payload).is_err());
    }

    #[test]
    fn region_link_comes_from_scope_and_bad_numbers_become_null() {
        let scope = Scope {
            account_id: "1".into(),
            region: Some("us-east-1".into()),
        };
        let vpc = AWS_VPC
            .project(
                "vpc-9",
                &scope,
                &json!({"vpcId": "vpc-9", "isDefault": "true"}),
            )
            .unwrap();
        assert_eq!(vpc.links, vec![vec!["us-east-1".to_string()], vec![]]);
        let subnet = AWS_SUBNET
            .project(
                "subnet-1",
                &scope,
                &json!({"subnetId": "subnet-1", "availableIpAddressCount": "many"}),
            )
            .unwrap();
        let i = AWS_SUBNET
            .columns
            .iter()
            .position(|c| c.name == "available_ip_address_count")
            .unwrap();
        assert_eq!(subnet.cells[i], Cell::Null);
    }

    #[test]
    fn multi_valued_links_collect_every_id_once() {
        let scope = Scope {
            account_id: "1".into(),
            region: Some("eu-west-1".into()),
        };
        let payload = json!({
            "instanceId": "i-1",
            "groupSet": [{"groupId": "sg-1"}, {"groupId": "sg-2"}, {"groupId": "sg-1"}],
            "blockDeviceMapping": [
                {"deviceName": "/dev/sda1", "ebs": {"volumeId": "vol-1"}},
                {"deviceName": "/dev/sdb", "ebs": {"volumeId": "vol-2"}}
            ],
            "networkInterfaceSet": ""
        });
        let p = AWS_INSTANCE.project("i-1", &scope, &payload).unwrap();
        let of = |table: &str| {
            let i = AWS_INSTANCE
                .links
                .iter()
                .position(|l| l.table == table)
                .unwrap();
            p.links[i].clone()
        };
        assert_eq!(of("l_aws_instance_to_security_group"), ["sg-1", "sg-2"]);
        assert_eq!(of("l_aws_instance_to_volume"), ["vol-1", "vol-2"]);
        assert!(of("l_aws_instance_to_network_interface").is_empty());
        let peering = AWS_VPC_PEERING_CONNECTION
            .project(
                "pcx-1",
                &scope,
                &json!({
                    "vpcPeeringConnectionId": "pcx-1",
                    "requesterVpcInfo": {"vpcId": "vpc-a"},
                    "accepterVpcInfo": {"vpcId": "vpc-b"}
                }),
            )
            .unwrap();
        assert_eq!(
            peering.links,
            vec![vec!["vpc-a".to_string(), "vpc-b".to_string()]]
        );
    }

    #[test]
    fn json_columns_keep_structure_and_read_empty_elements_as_empty_lists() {
        let scope = Scope {
            account_id: "1".into(),
            region: Some("eu-west-1".into()),
        };
        let rules =
            json!([{"ipProtocol": "tcp", "fromPort": "22", "ipRanges": [{"cidrIp": "0.0.0.0/0"}]}]);
        let p = AWS_SECURITY_GROUP
            .project(
                "sg-1",
                &scope,
                &json!({"groupId": "sg-1", "ipPermissions": rules, "ipPermissionsEgress": ""}),
            )
            .unwrap();
        let cell = |name| {
            let i = AWS_SECURITY_GROUP
                .columns
                .iter()
                .position(|c| c.name == name)
                .unwrap();
            p.cells[i].clone()
        };
        assert_eq!(cell("ingress_rules"), Cell::Json(rules));
        assert_eq!(cell("egress_rules"), Cell::Json(json!([])));
        assert_eq!(cell("vpc_id"), Cell::Null);
    }

    #[test]
    fn items_walk_nested_reservations() {
        let resp = json!({"reservationSet": [
            {"instancesSet": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]},
            {"instancesSet": [{"instanceId": "i-3"}]}
        ]});
        let ids: Vec<_> = AWS_INSTANCE
            .items(&resp)
            .into_iter()
            .filter_map(|i| AWS_INSTANCE.id_of(i))
            .collect();
        assert_eq!(ids, ["i-1", "i-2", "i-3"]);
    }

    #[test]
    fn scope_must_fit_the_kind() {
        let global = Scope {
            account_id: "1".into(),
            region: None,
        };
        assert!(AWS_REGION.check_scope(&global).is_ok());
        assert!(AWS_VPC.check_scope(&global).is_err());
    }
}
