//! Leak and waste reports: each is a rule on one kind's rows (or, for
//! `untagged`, any kind's), added to a list's filters, so that a report pages,
//! selects fields, exports and answers as of an instant like any list.
//! The rules are documented in `docs/reports.md`.
//!
//! Invariant: a rule reads only what the list reads — the kind's table now,
//! or every table's versions valid at the list's instant — so `at=` answers
//! the report as it would have stood then.

use std::time::Duration;

use chrono::{DateTime, Utc};
use inventory_model::{KindDef, kind_by_name};

use crate::list::valid_at;

/// A report's parameter, as `GET /api/v1/reports` lists it.
#[derive(Debug, Clone, Copy)]
pub struct ReportParam {
    pub name: &'static str,
    pub description: &'static str,
    pub default: Option<&'static str>,
}

/// A report: its name, the kind it lists (`None`: every kind) and what it
/// finds.
#[derive(Debug, Clone, Copy)]
pub struct ReportDef {
    pub name: &'static str,
    pub source: &'static str,
    /// Singular kind name; `None` for a report over every kind.
    pub kind: Option<&'static str>,
    pub description: &'static str,
    pub params: &'static [ReportParam],
}

impl ReportDef {
    pub fn kind(&self) -> Option<&'static KindDef> {
        self.kind
            .map(|k| kind_by_name(self.source, k).expect("a report's kind is in the catalogue"))
    }
}

const MIN_AGE: ReportParam = ReportParam {
    name: "min_age",
    description: "only volumes created at least this long ago (e.g. 7d, 12h)",
    default: Some("0s"),
};
const DAYS: ReportParam = ReportParam {
    name: "days",
    description: "stopped for more than this many days",
    default: Some("30"),
};
const TAG: ReportParam = ReportParam {
    name: "tag",
    description: "the tag key resources must have (required)",
    default: None,
};
const KIND: ReportParam = ReportParam {
    name: "kind",
    description: "only this kind (route name, e.g. instances); default every kind",
    default: None,
};

pub static REPORTS: &[ReportDef] = &[
    ReportDef {
        name: "unattached-volumes",
        source: "aws",
        kind: Some("volume"),
        description: "EBS volumes in state available with no attachment",
        params: &[MIN_AGE],
    },
    ReportDef {
        name: "unassociated-elastic-ips",
        source: "aws",
        kind: Some("elastic_ip"),
        description: "Elastic IPs associated with no instance or network interface",
        params: &[],
    },
    ReportDef {
        name: "unused-security-groups",
        source: "aws",
        kind: Some("security_group"),
        description: "security groups no network interface, no instance and no other group's rules refer to (default groups excluded)",
        params: &[],
    },
    ReportDef {
        name: "available-network-interfaces",
        source: "aws",
        kind: Some("network_interface"),
        description: "network interfaces in status available with no attachment",
        params: &[],
    },
    ReportDef {
        name: "stopped-instances",
        source: "aws",
        kind: Some("instance"),
        description: "instances stopped for more than `days` days (since when: the provider's state transition reason, else our own history)",
        params: &[DAYS],
    },
    ReportDef {
        name: "orphan-snapshots",
        source: "aws",
        kind: Some("snapshot"),
        description: "snapshots whose volume no longer exists and that no image uses",
        params: &[],
    },
    ReportDef {
        name: "unused-images",
        source: "aws",
        kind: Some("image"),
        description: "images the account owns that no instance uses",
        params: &[],
    },
    ReportDef {
        name: "empty-vpcs",
        source: "aws",
        kind: Some("vpc"),
        description: "non-default VPCs with no instance and no network interface",
        params: &[],
    },
    ReportDef {
        name: "untagged",
        source: "aws",
        kind: None,
        description: "resources lacking the tag key `tag` (of every kind, or of `kind`)",
        params: &[TAG, KIND],
    },
];

pub fn report(name: &str) -> Option<&'static ReportDef> {
    REPORTS.iter().find(|r| r.name == name)
}

/// A report's rule with its arguments, as a list applies it.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    UnattachedVolumes { min_age: Duration },
    UnassociatedElasticIps,
    UnusedSecurityGroups,
    AvailableNetworkInterfaces,
    StoppedInstances { days: u32 },
    OrphanSnapshots,
    UnusedImages,
    EmptyVpcs,
}

/// Where a rule's predicate gets its parameters: it pushes text parameters
/// and refers to them by number; `at` is the list's instant parameter.
pub(crate) struct RuleSql<'a> {
    pub params: &'a mut Vec<String>,
    pub at: Option<(usize, DateTime<Utc>)>,
}

impl RuleSql<'_> {
    fn param(&mut self, v: String) -> usize {
        self.params.push(v);
        self.params.len()
    }

    /// `FROM <kind's rows> o WHERE <live>` now or at the list's instant.
    fn live(&self, source: &str, kind: &str, alias: &str) -> String {
        let k = kind_by_name(source, kind).expect("a rule's kinds are in the catalogue");
        match self.at {
            None => format!("{} {alias} WHERE {alias}.deleted_at IS NULL", k.table),
            Some((p, _)) => format!(
                "{}_version {alias} WHERE {} AND {alias}.change <> 'deleted'",
                k.table,
                valid_at(alias, p)
            ),
        }
    }

    /// Some live resource of `owner` (side a of `link`) declares `link` to
    /// `t.<id>` (side b). Links are the live owners' own (a deletion ends
    /// them), so the link table needs no liveness check.
    fn referenced(&self, link: &str, owner: &str, id: &str) -> String {
        match self.at {
            None => format!(
                "EXISTS (SELECT 1 FROM link l WHERE l.link = '{link}' \
                 AND l.account_id = t.account_id AND l.b_id = t.{id})"
            ),
            Some(_) => format!(
                "EXISTS (SELECT 1 FROM {} AND o.account_id = t.account_id \
                 AND o.links->'{link}' ? t.{id})",
                self.live("aws", owner, "o")
            ),
        }
    }

    /// The instant the report is about.
    fn now(&self) -> DateTime<Utc> {
        self.at.map(|(_, t)| t).unwrap_or_else(Utc::now)
    }
}

impl Rule {
    pub fn kind(&self) -> &'static KindDef {
        let name = match self {
            Rule::UnattachedVolumes { .. } => "volume",
            Rule::UnassociatedElasticIps => "elastic_ip",
            Rule::UnusedSecurityGroups => "security_group",
            Rule::AvailableNetworkInterfaces => "network_interface",
            Rule::StoppedInstances { .. } => "instance",
            Rule::OrphanSnapshots => "snapshot",
            Rule::UnusedImages => "image",
            Rule::EmptyVpcs => "vpc",
        };
        kind_by_name("aws", name).expect("a rule's kind is in the catalogue")
    }

    /// The rule as a predicate on the list's rows (`t`).
    pub(crate) fn predicate(&self, sql: &mut RuleSql<'_>) -> String {
        match self {
            Rule::UnattachedVolumes { min_age } => {
                let cutoff = sql.now()
                    - chrono::Duration::from_std(*min_age).unwrap_or(chrono::Duration::MAX);
                let p = sql.param(cutoff.to_rfc3339());
                format!(
                    "t.state = 'available' AND coalesce(CASE WHEN jsonb_typeof(t.attachments) = 'array' \
                     THEN jsonb_array_length(t.attachments) END, 0) = 0 \
                     AND (t.create_time IS NULL OR t.create_time <= ${p}::text::timestamptz)"
                )
            }
            Rule::UnassociatedElasticIps => "t.association_id IS NULL AND t.instance_id IS NULL \
                 AND t.network_interface_id IS NULL"
                .to_owned(),
            Rule::UnusedSecurityGroups => format!(
                "t.group_name IS DISTINCT FROM 'default' AND NOT {} AND NOT {} \
                 AND NOT EXISTS (SELECT 1 FROM {} AND o.account_id = t.account_id \
                 AND o.group_id <> t.group_id AND jsonb_path_exists(\
                 coalesce(o.ingress_rules, '[]') || coalesce(o.egress_rules, '[]'), \
                 '$[*].groups[*].groupId ? (@ == $g)', jsonb_build_object('g', t.group_id)))",
                sql.referenced("l_aws_instance_to_security_group", "instance", "group_id"),
                sql.referenced(
                    "l_aws_network_interface_to_security_group",
                    "network_interface",
                    "group_id"
                ),
                sql.live("aws", "security_group", "o"),
            ),
            Rule::AvailableNetworkInterfaces => {
                "t.status = 'available' AND t.instance_id IS NULL".to_owned()
            }
            Rule::StoppedInstances { days } => {
                let cutoff = sql.now() - chrono::Duration::days(i64::from(*days));
                let p = sql.param(cutoff.to_rfc3339());
                // Since when: the provider's "User initiated (2026-10-01
                // 12:00:00 GMT)", else the start of the last run of stopped
                // versions in our own history (up to the list's instant).
                let upto = match sql.at {
                    None => String::new(),
                    Some((at, _)) => format!(" AND w.valid_from <= ${at}::text::timestamptz"),
                };
                format!(
                    "t.state = 'stopped' AND coalesce(\
                     (substring(t.raw->>'reason' from '\\((\\d{{4}}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d) (?:GMT|UTC)\\)')::timestamp \
                     AT TIME ZONE 'UTC'), \
                     (SELECT min(v.valid_from) FROM aws_instance_version v WHERE v.account_id = t.account_id \
                     AND v.region = t.region AND v.instance_id = t.instance_id AND v.state = 'stopped' \
                     AND v.valid_from > coalesce((SELECT max(w.valid_from) FROM aws_instance_version w \
                     WHERE w.account_id = t.account_id AND w.region = t.region AND w.instance_id = t.instance_id \
                     AND w.state IS DISTINCT FROM 'stopped'{upto}), '-infinity'::timestamptz))) \
                     <= ${p}::text::timestamptz"
                )
            }
            Rule::OrphanSnapshots => format!(
                "NOT EXISTS (SELECT 1 FROM {} AND o.account_id = t.account_id AND o.volume_id = t.volume_id) \
                 AND NOT EXISTS (SELECT 1 FROM {} AND i.account_id = t.account_id AND jsonb_path_exists(i.raw, \
                 '$.blockDeviceMapping[*].ebs.snapshotId ? (@ == $s)', jsonb_build_object('s', t.snapshot_id)))",
                sql.live("aws", "volume", "o"),
                sql.live("aws", "image", "i"),
            ),
            Rule::UnusedImages => format!(
                "t.owner_id = t.account_id AND NOT EXISTS (SELECT 1 FROM {} \
                 AND o.account_id = t.account_id AND o.image_id = t.image_id)",
                sql.live("aws", "instance", "o"),
            ),
            Rule::EmptyVpcs => format!(
                "t.is_default IS NOT TRUE \
                 AND NOT EXISTS (SELECT 1 FROM {} AND o.account_id = t.account_id AND o.vpc_id = t.vpc_id) \
                 AND NOT EXISTS (SELECT 1 FROM {} AND n.account_id = t.account_id AND n.vpc_id = t.vpc_id)",
                sql.live("aws", "instance", "o"),
                sql.live("aws", "network_interface", "n"),
            ),
        }
    }
}
