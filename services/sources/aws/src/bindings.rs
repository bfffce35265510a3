//! Every EC2 list operation the AWS kinds name, bound to its SDK call once:
//! how it pages (`MaxResults`), what of the account's it lists (owner filters,
//! referenced images), and the call itself, paced and retried. A test checks
//! that every AWS kind of the catalogue has its binding.

use futures::future::BoxFuture;
use inventory_collector::{CallKey, CallStats, CollectError, Pacer};

use crate::client::CaptureBody;
use crate::errors::{classify, sdk_error};

/// Which resources of a kind a scan lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// Everything the operation returns in the scope.
    All,
    /// Only what the account owns (`Owners=self` / `OwnerIds=self`): the
    /// operation would otherwise list every public image or snapshot.
    Owned,
    /// What the account owns, plus what the resources of another kind in the
    /// same scope reference (the public images instances were launched from).
    OwnedAndReferenced {
        /// The referencing kind (singular name).
        by: &'static str,
        /// Where the referencing kind's items hold the id.
        field: &'static str,
    },
}

/// The parameters of one list call.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListRequest {
    pub token: Option<String>,
    pub max_results: Option<i32>,
    /// `Owners=self` (`OwnerIds=self`).
    pub owned: bool,
    /// Referenced images, by id (a filter, so that one deregistered image does
    /// not fail the call as an id list would).
    pub image_ids: Option<Vec<String>>,
}

/// What a call needs, moved into it.
pub(crate) struct Call<'a> {
    pub client: &'a aws_sdk_ec2::Client,
    pub pacer: &'a Pacer,
    /// The operation in its account and region (pacing and metrics).
    pub key: CallKey<'a>,
    pub stats: &'a mut CallStats,
    pub capture: CaptureBody,
    pub request: &'a ListRequest,
    /// The credential and account, for messages.
    pub whose: &'a str,
    pub operation: &'static str,
}

type SendFn = for<'a> fn(Call<'a>) -> BoxFuture<'a, Result<(), CollectError>>;

/// An operation bound to its SDK call.
pub(crate) struct Binding {
    pub operation: &'static str,
    /// The largest `MaxResults` it accepts; `None`: not paginated.
    pub max_page: Option<i32>,
    pub ownership: Ownership,
    pub send: SendFn,
}

/// The binding of `operation`, if it has one.
pub(crate) fn binding(operation: &str) -> Option<&'static Binding> {
    BINDINGS.iter().find(|b| b.operation == operation)
}

/// `fn $name(call) -> BoxFuture`: the call `$builder` (of client `$c` and
/// request `$r`), with the response body captured, paced and retried.
macro_rules! bind {
    ($name:ident, |$c:ident, $r:ident| $builder:expr) => {
        fn $name(call: Call<'_>) -> BoxFuture<'_, Result<(), CollectError>> {
            Box::pin(async move {
                let Call {
                    client: $c,
                    pacer,
                    key,
                    stats,
                    capture,
                    request: $r,
                    whose,
                    operation,
                } = call;
                let _ = &$r;
                pacer
                    .call(&key, stats, classify, || {
                        $builder.customize().interceptor(capture.clone()).send()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(whose, operation, e))
            })
        }
    };
}

/// A paginated `Describe…` call.
macro_rules! paged {
    ($name:ident, $method:ident) => {
        bind!($name, |c, r| c
            .$method()
            .set_next_token(r.token.clone())
            .set_max_results(r.max_results));
    };
}

bind!(regions, |c, r| c.describe_regions().all_regions(false));
bind!(zones, |c, r| c.describe_availability_zones());
paged!(vpcs, describe_vpcs);
paged!(subnets, describe_subnets);
paged!(instances, describe_instances);
paged!(network_interfaces, describe_network_interfaces);
paged!(dhcp_options, describe_dhcp_options);
paged!(security_groups, describe_security_groups);
paged!(volumes, describe_volumes);
paged!(route_tables, describe_route_tables);
paged!(internet_gateways, describe_internet_gateways);
paged!(nat_gateways, describe_nat_gateways);
paged!(peering_connections, describe_vpc_peering_connections);
bind!(addresses, |c, r| c.describe_addresses());
bind!(key_pairs, |c, r| c.describe_key_pairs());
bind!(snapshots, |c, r| c
    .describe_snapshots()
    .set_owner_ids(r.owned.then(|| vec!["self".to_owned()]))
    .set_next_token(r.token.clone())
    .set_max_results(r.max_results));
bind!(images, |c, r| match &r.image_ids {
    Some(ids) => c.describe_images().filters(
        aws_sdk_ec2::types::Filter::builder()
            .name("image-id")
            .set_values(Some(ids.clone()))
            .build(),
    ),
    None => c
        .describe_images()
        .set_owners(r.owned.then(|| vec!["self".to_owned()]))
        .set_next_token(r.token.clone())
        .set_max_results(r.max_results),
});

const fn all(operation: &'static str, max_page: Option<i32>, send: SendFn) -> Binding {
    Binding {
        operation,
        max_page,
        ownership: Ownership::All,
        send,
    }
}

static BINDINGS: &[Binding] = &[
    all("DescribeRegions", None, regions),
    all("DescribeAvailabilityZones", None, zones),
    all("DescribeVpcs", Some(1000), vpcs),
    all("DescribeSubnets", Some(1000), subnets),
    all("DescribeInstances", Some(1000), instances),
    Binding {
        operation: "DescribeImages",
        max_page: Some(1000),
        ownership: Ownership::OwnedAndReferenced {
            by: "instance",
            field: "/imageId",
        },
        send: images,
    },
    all("DescribeNetworkInterfaces", Some(1000), network_interfaces),
    all("DescribeDhcpOptions", Some(1000), dhcp_options),
    all("DescribeSecurityGroups", Some(1000), security_groups),
    all("DescribeVolumes", Some(500), volumes),
    Binding {
        operation: "DescribeSnapshots",
        max_page: Some(1000),
        ownership: Ownership::Owned,
        send: snapshots,
    },
    all("DescribeRouteTables", Some(100), route_tables),
    all("DescribeInternetGateways", Some(1000), internet_gateways),
    all("DescribeNatGateways", Some(1000), nat_gateways),
    all("DescribeAddresses", None, addresses),
    all("DescribeKeyPairs", None, key_pairs),
    all(
        "DescribeVpcPeeringConnections",
        Some(1000),
        peering_connections,
    ),
];

/// How a kind is listed, in words (`docs/kinds.md`).
pub(crate) fn listing(operation: &str) -> String {
    match binding(operation).map(|b| b.ownership) {
        Some(Ownership::Owned) => format!("{operation} (owned by the account)"),
        Some(Ownership::OwnedAndReferenced { by, .. }) => {
            format!("{operation} (owned, and referenced by {by}s)")
        }
        _ => operation.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory_model::catalogue::aws;

    #[test]
    fn every_aws_kind_has_its_binding_and_every_binding_a_kind() {
        for kind in aws::KINDS {
            let b = binding(kind.list.operation)
                .unwrap_or_else(|| panic!("{} has no binding", kind.list.operation));
            if let Ownership::OwnedAndReferenced { by, .. } = b.ownership {
                let referrer = inventory_model::kind_by_name(aws::SOURCE, by).unwrap();
                assert_eq!(referrer.scope, kind.scope);
            }
        }
        for b in BINDINGS {
            assert!(
                aws::KINDS.iter().any(|k| k.list.operation == b.operation),
                "{} lists no kind",
                b.operation
            );
        }
    }
}
