//! Ganeti kinds: clusters through their remote API (RAPI, `/2/…?bulk=1`). The
//! account is the cluster (its name, from `/2/info`); nothing is regional.
//! Pointers address the JSON items RAPI returns (field names as RAPI gives
//! them, `nic.ips` included). How each list is fetched is the Ganeti source's
//! business (`services/sources/ganeti/src/bindings.rs`).

use crate::kind::{
    Column, ColumnType::*, End, Field::*, KindDef, LinkDef, ListCall, ScanScope::*, Side, TagSet,
    TagShape,
};

pub const SOURCE: &str = "ganeti";

const fn ganeti(kind: &'static str) -> End {
    End {
        source: SOURCE,
        kind,
    }
}

const fn col(name: &'static str, ty: crate::ColumnType, from: crate::Field) -> Column {
    Column { name, ty, from }
}

/// Ganeti tags are strings (`owner:ops`).
const TAGS: Option<TagSet> = Some(TagSet {
    at: "/tags",
    shape: TagShape::Strings,
});

const INSTANCE: End = ganeti("instance");
const NODE: End = ganeti("node");
const NETWORK: End = ganeti("network");
const GROUP: End = ganeti("group");

pub static GANETI_INSTANCE: KindDef = KindDef {
    source: SOURCE,
    name: "instance",
    plural: "instances",
    table: "ganeti_instance",
    id_column: "name",
    id: Pointer("/name"),
    scope: Account,
    list: ListCall {
        operation: "instances",
        items: "/*",
    },
    tags: TAGS,
    columns: &[
        col("uuid", Text, Pointer("/uuid")),
        col("os", Text, Pointer("/os")),
        col("status", Text, Pointer("/status")),
        col("admin_state", Text, Pointer("/admin_state")),
        col("oper_state", Boolean, Pointer("/oper_state")),
        col("disk_template", Text, Pointer("/disk_template")),
        col("primary_node", Text, Pointer("/pnode")),
        col("vcpus", Integer, Pointer("/beparams/vcpus")),
        col("memory_mib", Integer, Pointer("/beparams/maxmem")),
        col("disk_usage_mib", Integer, Pointer("/disk_usage")),
        col("nic_ips", Json, Pointer("/nic.ips")),
    ],
    links: &[
        LinkDef {
            table: "l_ganeti_instance_to_node",
            a: INSTANCE,
            b: NODE,
            owner: Side::A,
            other: Each(&["/pnode", "/snodes/*"]),
        },
        LinkDef {
            table: "l_ganeti_instance_to_network",
            a: INSTANCE,
            b: NETWORK,
            owner: Side::A,
            other: Each(&["/nic.networks.names/*"]),
        },
    ],
};

pub static GANETI_NODE: KindDef = KindDef {
    source: SOURCE,
    name: "node",
    plural: "nodes",
    table: "ganeti_node",
    id_column: "name",
    id: Pointer("/name"),
    scope: Account,
    list: ListCall {
        operation: "nodes",
        items: "/*",
    },
    tags: TAGS,
    columns: &[
        col("uuid", Text, Pointer("/uuid")),
        col("role", Text, Pointer("/role")),
        col("offline", Boolean, Pointer("/offline")),
        col("drained", Boolean, Pointer("/drained")),
        col("master_candidate", Boolean, Pointer("/master_candidate")),
        col("primary_ip", Text, Pointer("/pip")),
        col("secondary_ip", Text, Pointer("/sip")),
        col("cpus", Integer, Pointer("/ctotal")),
        col("memory_total_mib", Integer, Pointer("/mtotal")),
        col("memory_free_mib", Integer, Pointer("/mfree")),
        col("disk_total_mib", Integer, Pointer("/dtotal")),
        col("disk_free_mib", Integer, Pointer("/dfree")),
        col("primary_instances", Integer, Pointer("/pinst_cnt")),
        col("group_uuid", Text, Pointer("/group.uuid")),
    ],
    links: &[LinkDef {
        table: "l_ganeti_node_to_group",
        a: NODE,
        b: GROUP,
        owner: Side::A,
        other: Pointer("/group.uuid"),
    }],
};

pub static GANETI_NETWORK: KindDef = KindDef {
    source: SOURCE,
    name: "network",
    plural: "networks",
    table: "ganeti_network",
    id_column: "name",
    id: Pointer("/name"),
    scope: Account,
    list: ListCall {
        operation: "networks",
        items: "/*",
    },
    tags: TAGS,
    columns: &[
        col("uuid", Text, Pointer("/uuid")),
        col("network", Text, Pointer("/network")),
        col("gateway", Text, Pointer("/gateway")),
        col("network6", Text, Pointer("/network6")),
        col("gateway6", Text, Pointer("/gateway6")),
        col("mac_prefix", Text, Pointer("/mac_prefix")),
        col("free_count", Integer, Pointer("/free_count")),
        col("reserved_count", Integer, Pointer("/reserved_count")),
    ],
    links: &[],
};

pub static GANETI_GROUP: KindDef = KindDef {
    source: SOURCE,
    name: "group",
    plural: "groups",
    table: "ganeti_group",
    id_column: "uuid",
    id: Pointer("/uuid"),
    scope: Account,
    list: ListCall {
        operation: "groups",
        items: "/*",
    },
    tags: TAGS,
    columns: &[
        col("name", Text, Pointer("/name")),
        col("alloc_policy", Text, Pointer("/alloc_policy")),
        col("node_count", Integer, Pointer("/node_cnt")),
    ],
    links: &[],
};

/// The Ganeti kinds, in collection order.
pub static KINDS: &[&KindDef] = &[
    &GANETI_GROUP,
    &GANETI_NODE,
    &GANETI_NETWORK,
    &GANETI_INSTANCE,
];
