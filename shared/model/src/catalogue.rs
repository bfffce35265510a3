//! The catalogue of resource kinds. Adding a kind means adding one definition here,
//! one migration creating its table and link tables, and tests.
//!
//! Pointers address the raw EC2 response as the API returns it (the Query
//! protocol's XML, turned into JSON element by element: `<fooSet><item>` lists
//! become arrays, text stays text).

use crate::kind::{Column, ColumnType::*, Field::*, KindDef, LinkDef, ListCall, Ownership, Side};

const fn col(name: &'static str, ty: crate::ColumnType, from: crate::Field) -> Column {
    Column { name, ty, from }
}

const fn link(
    table: &'static str,
    a: (&'static str, &'static str),
    b: (&'static str, &'static str),
    owner: Side,
    other: crate::Field,
) -> LinkDef {
    LinkDef {
        table,
        a_kind: a.0,
        a_column: a.1,
        b_kind: b.0,
        b_column: b.1,
        owner,
        other,
    }
}

const fn list(operation: &'static str, items: &'static str, max_page: Option<i32>) -> ListCall {
    ListCall {
        operation,
        items,
        max_page,
        ownership: Ownership::All,
    }
}

const REGION: (&str, &str) = ("region", "region_name");
const AZ: (&str, &str) = ("availability_zone", "zone_name");
const VPC: (&str, &str) = ("vpc", "vpc_id");
const SUBNET: (&str, &str) = ("subnet", "subnet_id");
const INSTANCE: (&str, &str) = ("instance", "instance_id");
const IMAGE: (&str, &str) = ("image", "image_id");
const ENI: (&str, &str) = ("network_interface", "network_interface_id");
const SG: (&str, &str) = ("security_group", "group_id");
const VOLUME: (&str, &str) = ("volume", "volume_id");
const SNAPSHOT: (&str, &str) = ("snapshot", "snapshot_id");
const DHCP: (&str, &str) = ("dhcp_options", "dhcp_options_id");
const IGW: (&str, &str) = ("internet_gateway", "internet_gateway_id");
const NAT: (&str, &str) = ("nat_gateway", "nat_gateway_id");
const ROUTE_TABLE: (&str, &str) = ("route_table", "route_table_id");
const EIP: (&str, &str) = ("elastic_ip", "allocation_id");
const PEERING: (&str, &str) = ("vpc_peering_connection", "vpc_peering_connection_id");

pub static AWS_REGION: KindDef = KindDef {
    source: "aws",
    name: "region",
    plural: "regions",
    table: "aws_region",
    id_column: "name",
    id: Pointer("/regionName"),
    regional: false,
    list: list("DescribeRegions", "/regionInfo/*", None),
    tags: None,
    columns: &[
        col("endpoint", Text, Pointer("/regionEndpoint")),
        col("opt_in_status", Text, Pointer("/optInStatus")),
    ],
    links: &[],
};

pub static AWS_AVAILABILITY_ZONE: KindDef = KindDef {
    source: "aws",
    name: "availability_zone",
    plural: "availability-zones",
    table: "aws_availability_zone",
    id_column: "zone_name",
    id: Pointer("/zoneName"),
    regional: true,
    list: list("DescribeAvailabilityZones", "/availabilityZoneInfo/*", None),
    tags: None,
    columns: &[
        col("zone_id", Text, Pointer("/zoneId")),
        col("state", Text, Pointer("/zoneState")),
        col("zone_type", Text, Pointer("/zoneType")),
        col("opt_in_status", Text, Pointer("/optInStatus")),
        col("group_name", Text, Pointer("/groupName")),
    ],
    links: &[link(
        "l_aws_region_to_availability_zone",
        REGION,
        AZ,
        Side::B,
        ScopeRegion,
    )],
};

pub static AWS_VPC: KindDef = KindDef {
    source: "aws",
    name: "vpc",
    plural: "vpcs",
    table: "aws_vpc",
    id_column: "vpc_id",
    id: Pointer("/vpcId"),
    regional: true,
    list: list("DescribeVpcs", "/vpcSet/*", Some(1000)),
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
    links: &[
        link("l_aws_region_to_vpc", REGION, VPC, Side::B, ScopeRegion),
        link(
            "l_aws_vpc_to_dhcp_options",
            VPC,
            DHCP,
            Side::A,
            Pointer("/dhcpOptionsId"),
        ),
    ],
};

pub static AWS_SUBNET: KindDef = KindDef {
    source: "aws",
    name: "subnet",
    plural: "subnets",
    table: "aws_subnet",
    id_column: "subnet_id",
    id: Pointer("/subnetId"),
    regional: true,
    list: list("DescribeSubnets", "/subnetSet/*", Some(1000)),
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
    links: &[
        link(
            "l_aws_vpc_to_subnet",
            VPC,
            SUBNET,
            Side::B,
            Pointer("/vpcId"),
        ),
        link(
            "l_aws_subnet_to_availability_zone",
            SUBNET,
            AZ,
            Side::A,
            Pointer("/availabilityZone"),
        ),
    ],
};

pub static AWS_INSTANCE: KindDef = KindDef {
    source: "aws",
    name: "instance",
    plural: "instances",
    table: "aws_instance",
    id_column: "instance_id",
    id: Pointer("/instanceId"),
    regional: true,
    list: list(
        "DescribeInstances",
        "/reservationSet/*/instancesSet/*",
        Some(1000),
    ),
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
        col("key_name", Text, Pointer("/keyName")),
    ],
    links: &[
        link(
            "l_aws_vpc_to_instance",
            VPC,
            INSTANCE,
            Side::B,
            Pointer("/vpcId"),
        ),
        link(
            "l_aws_instance_to_subnet",
            INSTANCE,
            SUBNET,
            Side::A,
            Pointer("/subnetId"),
        ),
        link(
            "l_aws_instance_to_region",
            INSTANCE,
            REGION,
            Side::A,
            ScopeRegion,
        ),
        link(
            "l_aws_instance_to_image",
            INSTANCE,
            IMAGE,
            Side::A,
            Pointer("/imageId"),
        ),
        link(
            "l_aws_instance_to_network_interface",
            INSTANCE,
            ENI,
            Side::A,
            Each(&["/networkInterfaceSet/*/networkInterfaceId"]),
        ),
        link(
            "l_aws_instance_to_security_group",
            INSTANCE,
            SG,
            Side::A,
            Each(&["/groupSet/*/groupId"]),
        ),
        link(
            "l_aws_instance_to_volume",
            INSTANCE,
            VOLUME,
            Side::A,
            Each(&["/blockDeviceMapping/*/ebs/volumeId"]),
        ),
    ],
};

pub static AWS_IMAGE: KindDef = KindDef {
    source: "aws",
    name: "image",
    plural: "images",
    table: "aws_image",
    id_column: "image_id",
    id: Pointer("/imageId"),
    regional: true,
    list: ListCall {
        operation: "DescribeImages",
        items: "/imagesSet/*",
        max_page: Some(1000),
        ownership: Ownership::OwnedAndReferenced {
            by: "instance",
            field: "/imageId",
        },
    },
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Pointer("/name")),
        col("state", Text, Pointer("/imageState")),
        col("owner_id", Text, Pointer("/imageOwnerId")),
        col("is_public", Boolean, Pointer("/isPublic")),
        col("architecture", Text, Pointer("/architecture")),
        col("image_type", Text, Pointer("/imageType")),
        col("platform", Text, Pointer("/platformDetails")),
        col("root_device_type", Text, Pointer("/rootDeviceType")),
        col("virtualization_type", Text, Pointer("/virtualizationType")),
        col("creation_date", Timestamp, Pointer("/creationDate")),
        col("description", Text, Pointer("/description")),
    ],
    links: &[link(
        "l_aws_image_to_region",
        IMAGE,
        REGION,
        Side::A,
        ScopeRegion,
    )],
};

pub static AWS_NETWORK_INTERFACE: KindDef = KindDef {
    source: "aws",
    name: "network_interface",
    plural: "network-interfaces",
    table: "aws_network_interface",
    id_column: "network_interface_id",
    id: Pointer("/networkInterfaceId"),
    regional: true,
    list: list(
        "DescribeNetworkInterfaces",
        "/networkInterfaceSet/*",
        Some(1000),
    ),
    tags: Some("/tagSet"),
    columns: &[
        col("vpc_id", Text, Pointer("/vpcId")),
        col("subnet_id", Text, Pointer("/subnetId")),
        col("availability_zone", Text, Pointer("/availabilityZone")),
        col("status", Text, Pointer("/status")),
        col("interface_type", Text, Pointer("/interfaceType")),
        col("private_ip_address", Text, Pointer("/privateIpAddress")),
        col("public_ip", Text, Pointer("/association/publicIp")),
        col("mac_address", Text, Pointer("/macAddress")),
        col("instance_id", Text, Pointer("/attachment/instanceId")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("description", Text, Pointer("/description")),
    ],
    links: &[
        link(
            "l_aws_network_interface_to_subnet",
            ENI,
            SUBNET,
            Side::A,
            Pointer("/subnetId"),
        ),
        link(
            "l_aws_network_interface_to_security_group",
            ENI,
            SG,
            Side::A,
            Each(&["/groupSet/*/groupId"]),
        ),
    ],
};

pub static AWS_DHCP_OPTIONS: KindDef = KindDef {
    source: "aws",
    name: "dhcp_options",
    plural: "dhcp-options",
    table: "aws_dhcp_options",
    id_column: "dhcp_options_id",
    id: Pointer("/dhcpOptionsId"),
    regional: true,
    list: list("DescribeDhcpOptions", "/dhcpOptionsSet/*", Some(1000)),
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("configuration", Json, Pointer("/dhcpConfigurationSet")),
    ],
    links: &[],
};

pub static AWS_SECURITY_GROUP: KindDef = KindDef {
    source: "aws",
    name: "security_group",
    plural: "security-groups",
    table: "aws_security_group",
    id_column: "group_id",
    id: Pointer("/groupId"),
    regional: true,
    list: list("DescribeSecurityGroups", "/securityGroupInfo/*", Some(1000)),
    tags: Some("/tagSet"),
    columns: &[
        col("group_name", Text, Pointer("/groupName")),
        col("description", Text, Pointer("/groupDescription")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("ingress_rules", Json, Pointer("/ipPermissions")),
        col("egress_rules", Json, Pointer("/ipPermissionsEgress")),
    ],
    links: &[link(
        "l_aws_vpc_to_security_group",
        VPC,
        SG,
        Side::B,
        Pointer("/vpcId"),
    )],
};

pub static AWS_VOLUME: KindDef = KindDef {
    source: "aws",
    name: "volume",
    plural: "volumes",
    table: "aws_volume",
    id_column: "volume_id",
    id: Pointer("/volumeId"),
    regional: true,
    list: list("DescribeVolumes", "/volumeSet/*", Some(500)),
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("size_gib", Integer, Pointer("/size")),
        col("volume_type", Text, Pointer("/volumeType")),
        col("state", Text, Pointer("/status")),
        col("availability_zone", Text, Pointer("/availabilityZone")),
        col("encrypted", Boolean, Pointer("/encrypted")),
        col("iops", Integer, Pointer("/iops")),
        col("snapshot_id", Text, Pointer("/snapshotId")),
        col("create_time", Timestamp, Pointer("/createTime")),
        col("attachments", Json, Pointer("/attachmentSet")),
    ],
    links: &[],
};

pub static AWS_SNAPSHOT: KindDef = KindDef {
    source: "aws",
    name: "snapshot",
    plural: "snapshots",
    table: "aws_snapshot",
    id_column: "snapshot_id",
    id: Pointer("/snapshotId"),
    regional: true,
    list: ListCall {
        operation: "DescribeSnapshots",
        items: "/snapshotSet/*",
        max_page: Some(1000),
        ownership: Ownership::Owned,
    },
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("volume_id", Text, Pointer("/volumeId")),
        col("state", Text, Pointer("/status")),
        col("volume_size_gib", Integer, Pointer("/volumeSize")),
        col("start_time", Timestamp, Pointer("/startTime")),
        col("progress", Text, Pointer("/progress")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("encrypted", Boolean, Pointer("/encrypted")),
        col("description", Text, Pointer("/description")),
    ],
    links: &[link(
        "l_aws_volume_to_snapshot",
        VOLUME,
        SNAPSHOT,
        Side::B,
        Pointer("/volumeId"),
    )],
};

pub static AWS_ROUTE_TABLE: KindDef = KindDef {
    source: "aws",
    name: "route_table",
    plural: "route-tables",
    table: "aws_route_table",
    id_column: "route_table_id",
    id: Pointer("/routeTableId"),
    regional: true,
    list: list("DescribeRouteTables", "/routeTableSet/*", Some(100)),
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("routes", Json, Pointer("/routeSet")),
        col("associations", Json, Pointer("/associationSet")),
    ],
    links: &[
        link(
            "l_aws_vpc_to_route_table",
            VPC,
            ROUTE_TABLE,
            Side::B,
            Pointer("/vpcId"),
        ),
        link(
            "l_aws_subnet_to_route_table",
            SUBNET,
            ROUTE_TABLE,
            Side::B,
            Each(&["/associationSet/*/subnetId"]),
        ),
    ],
};

pub static AWS_INTERNET_GATEWAY: KindDef = KindDef {
    source: "aws",
    name: "internet_gateway",
    plural: "internet-gateways",
    table: "aws_internet_gateway",
    id_column: "internet_gateway_id",
    id: Pointer("/internetGatewayId"),
    regional: true,
    list: list(
        "DescribeInternetGateways",
        "/internetGatewaySet/*",
        Some(1000),
    ),
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("attachments", Json, Pointer("/attachmentSet")),
    ],
    links: &[link(
        "l_aws_vpc_to_internet_gateway",
        VPC,
        IGW,
        Side::B,
        Each(&["/attachmentSet/*/vpcId"]),
    )],
};

pub static AWS_NAT_GATEWAY: KindDef = KindDef {
    source: "aws",
    name: "nat_gateway",
    plural: "nat-gateways",
    table: "aws_nat_gateway",
    id_column: "nat_gateway_id",
    id: Pointer("/natGatewayId"),
    regional: true,
    list: list("DescribeNatGateways", "/natGatewaySet/*", Some(1000)),
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("subnet_id", Text, Pointer("/subnetId")),
        col("state", Text, Pointer("/state")),
        col("connectivity_type", Text, Pointer("/connectivityType")),
        col("create_time", Timestamp, Pointer("/createTime")),
        col("addresses", Json, Pointer("/natGatewayAddressSet")),
    ],
    links: &[
        link(
            "l_aws_vpc_to_nat_gateway",
            VPC,
            NAT,
            Side::B,
            Pointer("/vpcId"),
        ),
        link(
            "l_aws_nat_gateway_to_subnet",
            NAT,
            SUBNET,
            Side::A,
            Pointer("/subnetId"),
        ),
    ],
};

pub static AWS_ELASTIC_IP: KindDef = KindDef {
    source: "aws",
    name: "elastic_ip",
    plural: "elastic-ips",
    table: "aws_elastic_ip",
    id_column: "allocation_id",
    id: Pointer("/allocationId"),
    regional: true,
    list: list("DescribeAddresses", "/addressesSet/*", None),
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("public_ip", Text, Pointer("/publicIp")),
        col("domain", Text, Pointer("/domain")),
        col("instance_id", Text, Pointer("/instanceId")),
        col("network_interface_id", Text, Pointer("/networkInterfaceId")),
        col("private_ip_address", Text, Pointer("/privateIpAddress")),
        col("association_id", Text, Pointer("/associationId")),
        col("network_border_group", Text, Pointer("/networkBorderGroup")),
    ],
    links: &[
        link(
            "l_aws_elastic_ip_to_instance",
            EIP,
            INSTANCE,
            Side::A,
            Pointer("/instanceId"),
        ),
        link(
            "l_aws_elastic_ip_to_network_interface",
            EIP,
            ENI,
            Side::A,
            Pointer("/networkInterfaceId"),
        ),
    ],
};

pub static AWS_KEY_PAIR: KindDef = KindDef {
    source: "aws",
    name: "key_pair",
    plural: "key-pairs",
    table: "aws_key_pair",
    id_column: "key_name",
    id: Pointer("/keyName"),
    regional: true,
    list: list("DescribeKeyPairs", "/keySet/*", None),
    tags: Some("/tagSet"),
    columns: &[
        col("key_pair_id", Text, Pointer("/keyPairId")),
        col("key_type", Text, Pointer("/keyType")),
        col("fingerprint", Text, Pointer("/keyFingerprint")),
        col("create_time", Timestamp, Pointer("/createTime")),
    ],
    links: &[],
};

pub static AWS_VPC_PEERING_CONNECTION: KindDef = KindDef {
    source: "aws",
    name: "vpc_peering_connection",
    plural: "vpc-peering-connections",
    table: "aws_vpc_peering_connection",
    id_column: "vpc_peering_connection_id",
    id: Pointer("/vpcPeeringConnectionId"),
    regional: true,
    list: list(
        "DescribeVpcPeeringConnections",
        "/vpcPeeringConnectionSet/*",
        Some(1000),
    ),
    tags: Some("/tagSet"),
    columns: &[
        col("name", Text, Tag("Name")),
        col("status", Text, Pointer("/status/code")),
        col("requester_vpc_id", Text, Pointer("/requesterVpcInfo/vpcId")),
        col(
            "requester_owner_id",
            Text,
            Pointer("/requesterVpcInfo/ownerId"),
        ),
        col(
            "requester_region",
            Text,
            Pointer("/requesterVpcInfo/region"),
        ),
        col("accepter_vpc_id", Text, Pointer("/accepterVpcInfo/vpcId")),
        col(
            "accepter_owner_id",
            Text,
            Pointer("/accepterVpcInfo/ownerId"),
        ),
        col("accepter_region", Text, Pointer("/accepterVpcInfo/region")),
        col("expiration_time", Timestamp, Pointer("/expirationTime")),
    ],
    // Both peers: `/vpcs/<id>/vpc-peering-connections` and back. A peer in
    // another account or region is linked where that account's scan sees it.
    links: &[link(
        "l_aws_vpc_to_vpc_peering_connection",
        VPC,
        PEERING,
        Side::B,
        Each(&["/requesterVpcInfo/vpcId", "/accepterVpcInfo/vpcId"]),
    )],
};

/// Every kind, in collection order (regions first: they decide where to look).
pub static KINDS: &[&KindDef] = &[
    &AWS_REGION,
    &AWS_AVAILABILITY_ZONE,
    &AWS_VPC,
    &AWS_SUBNET,
    &AWS_INSTANCE,
    &AWS_IMAGE,
    &AWS_NETWORK_INTERFACE,
    &AWS_DHCP_OPTIONS,
    &AWS_SECURITY_GROUP,
    &AWS_VOLUME,
    &AWS_SNAPSHOT,
    &AWS_ROUTE_TABLE,
    &AWS_INTERNET_GATEWAY,
    &AWS_NAT_GATEWAY,
    &AWS_ELASTIC_IP,
    &AWS_KEY_PAIR,
    &AWS_VPC_PEERING_CONNECTION,
];

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

/// `docs/kinds.md`: every kind with its table, key, columns and links, generated
/// from this catalogue (`inventory kinds`), so that the document cannot drift.
pub fn markdown() -> String {
    use std::fmt::Write;
    let field = |f: crate::Field| match f {
        Pointer(p) => format!("`{p}`"),
        Tag(k) => format!("tag `{k}`"),
        ScopeRegion => "the scan's region".to_owned(),
        Each(paths) => paths
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(" and "),
    };
    let mut out = String::from(
        "# Resource kinds\n\n\
         Generated from `shared/model/src/catalogue.rs` by `inventory kinds`; a test\n\
         fails when this file and the catalogue disagree.\n\n\
         Every table also has `tags` (jsonb), `raw` (the provider's payload), \
         `content_hash`, `first_seen_at`, `last_seen_at`, `deleted_at`, `scan_id` and \
         `seq`, and a history table `<table>_version` (see history.md). Values are read \
         from the raw payload at the JSON pointers shown; a `*` steps into every element \
         of a list.\n\n\
         Links are rows of `l_<source>_<a>_to_<b>`, declared by the events of one side \
         (the owner) and served both ways as nested collections: \
         `/api/v1/<source>/<a-plural>/<id>/<b-plural>` and back.\n\n\
         | kind | route | table | key | listed by |\n|---|---|---|---|---|\n",
    );
    for k in KINDS {
        let key = if k.regional {
            "account_id, region, "
        } else {
            "account_id, "
        };
        let listed = match k.list.ownership {
            Ownership::All => k.list.operation.to_owned(),
            Ownership::Owned => format!("{} (owned by the account)", k.list.operation),
            Ownership::OwnedAndReferenced { by, .. } => {
                format!("{} (owned, and referenced by {by}s)", k.list.operation)
            }
        };
        let _ = writeln!(
            out,
            "| {} | `/api/v1/{}/{}` | `{}` | `{key}{}` | {listed} |",
            k.name, k.source, k.plural, k.table, k.id_column
        );
    }
    for k in KINDS {
        let _ = write!(
            out,
            "\n## {}/{}\n\nTable `{}`, id `{}` from {}; {}.\n\n| column | type | from |\n|---|---|---|\n",
            k.source,
            k.plural,
            k.table,
            k.id_column,
            field(k.id),
            if k.regional {
                "one scan per account and region"
            } else {
                "one scan per account"
            },
        );
        for c in k.columns {
            let _ = writeln!(out, "| `{}` | {} | {} |", c.name, c.ty.sql(), field(c.from));
        }
        if !k.links.is_empty() {
            out.push_str("\n| link table | to | declared from |\n|---|---|---|\n");
            for l in k.links {
                let other =
                    kind_by_name(k.source, l.other_kind()).map_or(l.other_kind(), |o| o.plural);
                let _ = writeln!(out, "| `{}` | {} | {} |", l.table, other, field(l.other));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cell, Scope};
    use serde_json::json;

    #[test]
    fn catalogue_is_consistent() {
        let mut tables = std::collections::HashSet::new();
        let mut pairs = std::collections::HashSet::new();
        for k in KINDS {
            assert!(tables.insert(k.table), "{} declared twice", k.table);
            for c in k.columns {
                assert!(
                    !matches!(c.from, crate::Field::Each(_)),
                    "{}.{}: a column holds one value",
                    k.table,
                    c.name
                );
                if c.ty == crate::ColumnType::Json {
                    assert!(matches!(c.from, crate::Field::Pointer(_)));
                }
            }
            if let Ownership::OwnedAndReferenced { by, .. } = k.list.ownership {
                assert!(kind_by_name(k.source, by).is_some_and(|r| r.regional == k.regional));
            }
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
                assert!(tables.insert(l.table), "{} declared twice", l.table);
                // Nested routes find the link between two kinds: one per pair.
                let mut pair = [l.a_kind, l.b_kind];
                pair.sort();
                assert!(pairs.insert(pair), "two links between {pair:?}");
                assert_ne!(l.a_kind, l.b_kind);
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
