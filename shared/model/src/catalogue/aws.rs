//! AWS kinds: EC2 through its Query API. Pointers address the raw response as
//! the API returns it (the XML turned into JSON element by element: `<fooSet><item>`
//! lists become arrays, text stays text). How each operation is called (paging,
//! owner filters, referenced images) is the AWS source's business
//! (`services/sources/aws/src/bindings.rs`).

use crate::kind::{
    Column, ColumnType::*, End, Field::*, KindDef, LinkDef, ListCall, ScanScope::*, Side, TagSet,
    TagShape,
};

pub const SOURCE: &str = "aws";

const fn aws(kind: &'static str) -> End {
    End {
        source: SOURCE,
        kind,
    }
}

const fn col(name: &'static str, ty: crate::ColumnType, from: crate::Field) -> Column {
    Column { name, ty, from }
}

const fn link(table: &'static str, a: End, b: End, owner: Side, other: crate::Field) -> LinkDef {
    LinkDef {
        table,
        a,
        b,
        owner,
        other,
    }
}

const fn list(operation: &'static str, items: &'static str) -> ListCall {
    ListCall { operation, items }
}

/// EC2's tag sets: `<tagSet><item><key>…</key><value>…</value></item></tagSet>`.
const TAG_SET: Option<TagSet> = Some(TagSet {
    at: "/tagSet",
    shape: TagShape::Pairs {
        key: "key",
        value: "value",
    },
});

const REGION: End = aws("region");
const AZ: End = aws("availability_zone");
const VPC: End = aws("vpc");
const SUBNET: End = aws("subnet");
const INSTANCE: End = aws("instance");
const IMAGE: End = aws("image");
const ENI: End = aws("network_interface");
const SG: End = aws("security_group");
const VOLUME: End = aws("volume");
const SNAPSHOT: End = aws("snapshot");
const DHCP: End = aws("dhcp_options");
const IGW: End = aws("internet_gateway");
const NAT: End = aws("nat_gateway");
const ROUTE_TABLE: End = aws("route_table");
const EIP: End = aws("elastic_ip");
const PEERING: End = aws("vpc_peering_connection");

pub static AWS_REGION: KindDef = KindDef {
    source: SOURCE,
    name: "region",
    plural: "regions",
    table: "aws_region",
    id_column: "name",
    id: Pointer("/regionName"),
    scope: Account,
    list: list("DescribeRegions", "/regionInfo/*"),
    tags: None,
    columns: &[
        col("endpoint", Text, Pointer("/regionEndpoint")),
        col("opt_in_status", Text, Pointer("/optInStatus")),
    ],
    links: &[],
};

pub static AWS_AVAILABILITY_ZONE: KindDef = KindDef {
    source: SOURCE,
    name: "availability_zone",
    plural: "availability-zones",
    table: "aws_availability_zone",
    id_column: "zone_name",
    id: Pointer("/zoneName"),
    scope: Region,
    list: list("DescribeAvailabilityZones", "/availabilityZoneInfo/*"),
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
    source: SOURCE,
    name: "vpc",
    plural: "vpcs",
    table: "aws_vpc",
    id_column: "vpc_id",
    id: Pointer("/vpcId"),
    scope: Region,
    list: list("DescribeVpcs", "/vpcSet/*"),
    tags: TAG_SET,
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
    source: SOURCE,
    name: "subnet",
    plural: "subnets",
    table: "aws_subnet",
    id_column: "subnet_id",
    id: Pointer("/subnetId"),
    scope: Region,
    list: list("DescribeSubnets", "/subnetSet/*"),
    tags: TAG_SET,
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
    source: SOURCE,
    name: "instance",
    plural: "instances",
    table: "aws_instance",
    id_column: "instance_id",
    id: Pointer("/instanceId"),
    scope: Region,
    list: list("DescribeInstances", "/reservationSet/*/instancesSet/*"),
    tags: TAG_SET,
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
    source: SOURCE,
    name: "image",
    plural: "images",
    table: "aws_image",
    id_column: "image_id",
    id: Pointer("/imageId"),
    scope: Region,
    list: list("DescribeImages", "/imagesSet/*"),
    tags: TAG_SET,
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
    source: SOURCE,
    name: "network_interface",
    plural: "network-interfaces",
    table: "aws_network_interface",
    id_column: "network_interface_id",
    id: Pointer("/networkInterfaceId"),
    scope: Region,
    list: list("DescribeNetworkInterfaces", "/networkInterfaceSet/*"),
    tags: TAG_SET,
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
    source: SOURCE,
    name: "dhcp_options",
    plural: "dhcp-options",
    table: "aws_dhcp_options",
    id_column: "dhcp_options_id",
    id: Pointer("/dhcpOptionsId"),
    scope: Region,
    list: list("DescribeDhcpOptions", "/dhcpOptionsSet/*"),
    tags: TAG_SET,
    columns: &[
        col("name", Text, Tag("Name")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("configuration", Json, List("/dhcpConfigurationSet")),
    ],
    links: &[],
};

pub static AWS_SECURITY_GROUP: KindDef = KindDef {
    source: SOURCE,
    name: "security_group",
    plural: "security-groups",
    table: "aws_security_group",
    id_column: "group_id",
    id: Pointer("/groupId"),
    scope: Region,
    list: list("DescribeSecurityGroups", "/securityGroupInfo/*"),
    tags: TAG_SET,
    columns: &[
        col("group_name", Text, Pointer("/groupName")),
        col("description", Text, Pointer("/groupDescription")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("ingress_rules", Json, List("/ipPermissions")),
        col("egress_rules", Json, List("/ipPermissionsEgress")),
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
    source: SOURCE,
    name: "volume",
    plural: "volumes",
    table: "aws_volume",
    id_column: "volume_id",
    id: Pointer("/volumeId"),
    scope: Region,
    list: list("DescribeVolumes", "/volumeSet/*"),
    tags: TAG_SET,
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
        col("attachments", Json, List("/attachmentSet")),
    ],
    links: &[],
};

pub static AWS_SNAPSHOT: KindDef = KindDef {
    source: SOURCE,
    name: "snapshot",
    plural: "snapshots",
    table: "aws_snapshot",
    id_column: "snapshot_id",
    id: Pointer("/snapshotId"),
    scope: Region,
    list: list("DescribeSnapshots", "/snapshotSet/*"),
    tags: TAG_SET,
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
    source: SOURCE,
    name: "route_table",
    plural: "route-tables",
    table: "aws_route_table",
    id_column: "route_table_id",
    id: Pointer("/routeTableId"),
    scope: Region,
    list: list("DescribeRouteTables", "/routeTableSet/*"),
    tags: TAG_SET,
    columns: &[
        col("name", Text, Tag("Name")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("routes", Json, List("/routeSet")),
        col("associations", Json, List("/associationSet")),
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
    source: SOURCE,
    name: "internet_gateway",
    plural: "internet-gateways",
    table: "aws_internet_gateway",
    id_column: "internet_gateway_id",
    id: Pointer("/internetGatewayId"),
    scope: Region,
    list: list("DescribeInternetGateways", "/internetGatewaySet/*"),
    tags: TAG_SET,
    columns: &[
        col("name", Text, Tag("Name")),
        col("owner_id", Text, Pointer("/ownerId")),
        col("attachments", Json, List("/attachmentSet")),
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
    source: SOURCE,
    name: "nat_gateway",
    plural: "nat-gateways",
    table: "aws_nat_gateway",
    id_column: "nat_gateway_id",
    id: Pointer("/natGatewayId"),
    scope: Region,
    list: list("DescribeNatGateways", "/natGatewaySet/*"),
    tags: TAG_SET,
    columns: &[
        col("name", Text, Tag("Name")),
        col("vpc_id", Text, Pointer("/vpcId")),
        col("subnet_id", Text, Pointer("/subnetId")),
        col("state", Text, Pointer("/state")),
        col("connectivity_type", Text, Pointer("/connectivityType")),
        col("create_time", Timestamp, Pointer("/createTime")),
        col("addresses", Json, List("/natGatewayAddressSet")),
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
    source: SOURCE,
    name: "elastic_ip",
    plural: "elastic-ips",
    table: "aws_elastic_ip",
    id_column: "allocation_id",
    id: Pointer("/allocationId"),
    scope: Region,
    list: list("DescribeAddresses", "/addressesSet/*"),
    tags: TAG_SET,
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
    source: SOURCE,
    name: "key_pair",
    plural: "key-pairs",
    table: "aws_key_pair",
    id_column: "key_name",
    id: Pointer("/keyName"),
    scope: Region,
    list: list("DescribeKeyPairs", "/keySet/*"),
    tags: TAG_SET,
    columns: &[
        col("key_pair_id", Text, Pointer("/keyPairId")),
        col("key_type", Text, Pointer("/keyType")),
        col("fingerprint", Text, Pointer("/keyFingerprint")),
        col("create_time", Timestamp, Pointer("/createTime")),
    ],
    links: &[],
};

pub static AWS_VPC_PEERING_CONNECTION: KindDef = KindDef {
    source: SOURCE,
    name: "vpc_peering_connection",
    plural: "vpc-peering-connections",
    table: "aws_vpc_peering_connection",
    id_column: "vpc_peering_connection_id",
    id: Pointer("/vpcPeeringConnectionId"),
    scope: Region,
    list: list(
        "DescribeVpcPeeringConnections",
        "/vpcPeeringConnectionSet/*",
    ),
    tags: TAG_SET,
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

/// The AWS kinds, in collection order (regions first: they decide where to look).
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
