//! The catalogue of resource kinds. Adding a kind means adding one definition here,
//! one migration creating its table and link tables, and tests.
//!
//! Pointers address the raw EC2 response as the API returns it (the Query
//! protocol's XML, turned into JSON element by element: `<fooSet><item>` lists
//! become arrays, text stays text).

use crate::kind::{Column, ColumnType::*, Field::*, KindDef, LinkDef, ListCall, Side};

const fn col(name: &'static str, ty: crate::ColumnType, from: crate::Field) -> Column {
    Column { name, ty, from }
}

pub static AWS_REGION: KindDef = KindDef {
    source: "aws",
    name: "region",
    plural: "regions",
    table: "aws_region",
    id_column: "name",
    id: Pointer("/regionName"),
    regional: false,
    list: ListCall {
        operation: "DescribeRegions",
        items: &["regionInfo", "*"],
        paginated: false,
    },
    tags: None,
    columns: &[
        col("endpoint", Text, Pointer("/regionEndpoint")),
        col("opt_in_status", Text, Pointer("/optInStatus")),
    ],
    links: &[],
};

pub static AWS_VPC: KindDef = KindDef {
    source: "aws",
    name: "vpc",
    plural: "vpcs",
    table: "aws_vpc",
    id_column: "vpc_id",
    id: Pointer("/vpcId"),
    regional: true,
    list: ListCall {
        operation: "DescribeVpcs",
        items: &["vpcSet", "*"],
        paginated: true,
    },
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("state", Text, Pointer("/state")),
        col("cidr_block", Text, Pointer("/cidrBlock")),
        col("is_default", Boolean, Pointer("/isDefault")),
        col("dhcp_options_id", Text, Pointer("/dhcpOptionsId")),
        col("instance_tenancy", Text, Pointer("/instanceTenancy")),
        col("owner_id", Text, Pointer("/ownerId")),
    ],
    links: &[LinkDef {
        table: "l_aws_region_to_vpc",
        a_kind: "region",
        a_column: "region_name",
        b_kind: "vpc",
        b_column: "vpc_id",
        owner: Side::B,
        other: ScopeRegion,
    }],
};

pub static AWS_SUBNET: KindDef = KindDef {
    source: "aws",
    name: "subnet",
    plural: "subnets",
    table: "aws_subnet",
    id_column: "subnet_id",
    id: Pointer("/subnetId"),
    regional: true,
    list: ListCall {
        operation: "DescribeSubnets",
        items: &["subnetSet", "*"],
        paginated: true,
    },
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("state", Text, Pointer("/state")),
        col("cidr_block", Text, Pointer("/cidrBlock")),
        col("availability_zone", Text, Pointer("/availabilityZone")),
        col("availability_zone_id", Text, Pointer("/availabilityZoneId")),
        col(
            "available_ip_address_count",
            Integer,
            Pointer("/availableIpAddressCount"),
        ),
        col("default_for_az", Boolean, Pointer("/defaultForAz")),
        col(
            "map_public_ip_on_launch",
            Boolean,
            Pointer("/mapPublicIpOnLaunch"),
        ),
    ],
    links: &[LinkDef {
        table: "l_aws_vpc_to_subnet",
        a_kind: "vpc",
        a_column: "vpc_id",
        b_kind: "subnet",
        b_column: "subnet_id",
        owner: Side::B,
        other: Pointer("/vpcId"),
    }],
};

pub static AWS_INSTANCE: KindDef = KindDef {
    source: "aws",
    name: "instance",
    plural: "instances",
    table: "aws_instance",
    id_column: "instance_id",
    id: Pointer("/instanceId"),
    regional: true,
    list: ListCall {
        operation: "DescribeInstances",
        items: &["reservationSet", "*", "instancesSet", "*"],
        paginated: true,
    },
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("subnet_id", Text, Pointer("/subnetId")),
        col("instance_type", Text, Pointer("/instanceType")),
        col("state", Text, Pointer("/instanceState/name")),
        col("image_id", Text, Pointer("/imageId")),
        col("private_ip_address", Text, Pointer("/privateIpAddress")),
        col("public_ip_address", Text, Pointer("/ipAddress")),
        col(
            "availability_zone",
            Text,
            Pointer("/placement/availabilityZone"),
        ),
        col("architecture", Text, Pointer("/architecture")),
        col("platform", Text, Pointer("/platformDetails")),
        col("launch_time", Timestamp, Pointer("/launchTime")),
    ],
    links: &[
        LinkDef {
            table: "l_aws_vpc_to_instance",
            a_kind: "vpc",
            a_column: "vpc_id",
            b_kind: "instance",
            b_column: "instance_id",
            owner: Side::B,
            other: Pointer("/vpcId"),
        },
        LinkDef {
            table: "l_aws_instance_to_subnet",
            a_kind: "instance",
            a_column: "instance_id",
            b_kind: "subnet",
            b_column: "subnet_id",
            owner: Side::A,
            other: Pointer("/subnetId"),
        },
    ],
};

/// Every kind, in collection order (regions first: they decide where to look).
pub static KINDS: &[&KindDef] = &[&AWS_REGION, &AWS_VPC, &AWS_SUBNET, &AWS_INSTANCE];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cell, Scope};
    use serde_json::json;

    #[test]
    fn catalogue_is_consistent() {
        for k in KINDS {
            assert_eq!(k.table, format!("{}_{}", k.source, k.name));
            assert_eq!(kind_by_name(k.source, k.name).unwrap().table, k.table);
            assert_eq!(kind_by_plural(k.source, k.plural).unwrap().table, k.table);
            for l in k.links {
                let owner = match l.owner {
                    Side::A => l.a_kind,
                    Side::B => l.b_kind,
                };
                assert_eq!(owner, k.name, "{} declares a link it does not own", k.name);
                assert_eq!(
                    l.table,
                    format!("l_{}_{}_to_{}", k.source, l.a_kind, l.b_kind)
                );
                assert!(kind_by_name(k.source, l.other_kind()).is_some());
            }
        }
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
        assert_eq!(
            p.links,
            vec![Some("vpc-1".to_string()), Some("subnet-1".to_string())]
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
        assert_eq!(vpc.links, vec![Some("us-east-1".to_string())]);
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
