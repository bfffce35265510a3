//! Synthetic event histories, published straight to the event stream, for
//! tests of the fold that need no provider.

use inventory_model::{Envelope, EventType, Payload, SCHEMA_VERSION, Scope, content_hash};
use inventory_store::Store;
use serde_json::{Value, json};

use inventory_bus::Bus;

/// Moto's default account, which synthetic events use too.
pub const ACCOUNT: &str = "123456789012";

/// An event of moto's default account (`123456789012`), observed at a fixed instant.
pub fn envelope(
    event_type: EventType,
    kind: &str,
    region: Option<&str>,
    scan: &str,
    key: Option<&str>,
    payload: Option<Value>,
) -> Envelope {
    Envelope {
        event_type,
        schema_version: SCHEMA_VERSION,
        source: "aws".into(),
        kind: kind.into(),
        scope: Scope {
            account_id: ACCOUNT.into(),
            region: region.map(Into::into),
        },
        key: key.map(Into::into),
        observed_at: "2026-11-23T10:00:00Z".parse().unwrap(),
        scan_id: scan.into(),
        request_id: None,
        content_hash: payload.as_ref().map(content_hash),
        payload: payload.as_ref().map(Payload::from_value),
        resources_seen: (event_type == EventType::ScanCompleted).then_some(0),
        error: None,
        known_from_seq: None,
    }
}

/// The payload of instance `i-<i>` in `state`, in VPC `i % 7` and subnet `i % 13`.
pub fn instance(i: usize, state: &str) -> Value {
    json!({
        "instanceId": format!("i-{i:05}"),
        "vpcId": format!("vpc-{}", i % 7),
        "subnetId": format!("subnet-{}", i % 13),
        "instanceType": "t3.micro",
        "instanceState": {"name": state},
        "launchTime": "2026-11-01T00:00:00.000Z",
        "tagSet": [{"key": "Name", "value": format!("node-{i}")}]
    })
}

/// A synthetic history over two regions: VPCs, subnets and instances created in
/// one scan; then a second scan that updates every third instance, deletes every
/// tenth and one subnet (whose links must go), each scan closed by its marker.
pub async fn publish_history(bus: &Bus, n: usize) {
    publish_history_in(bus, n, &["us-east-1", "eu-west-1"]).await
}

/// [`publish_history`] in these regions.
pub async fn publish_history_in(bus: &Bus, n: usize, regions: &[&str]) {
    for region in regions.iter().copied() {
        let r = Some(region);
        let (first, second) = (format!("scan-1-{region}"), format!("scan-2-{region}"));
        let mut events = vec![envelope(
            EventType::ScanStarted,
            "instance",
            r,
            &first,
            None,
            None,
        )];
        for v in 0..7 {
            let id = format!("vpc-{v}");
            events.push(envelope(
                EventType::ResourceCreated,
                "vpc",
                r,
                &first,
                Some(&id),
                Some(json!({"vpcId": id})),
            ));
        }
        for sn in 0..13 {
            let id = format!("subnet-{sn}");
            let payload = json!({"subnetId": id, "vpcId": format!("vpc-{}", sn % 7)});
            events.push(envelope(
                EventType::ResourceCreated,
                "subnet",
                r,
                &first,
                Some(&id),
                Some(payload),
            ));
        }
        for i in 0..n {
            let id = format!("i-{i:05}");
            events.push(envelope(
                EventType::ResourceCreated,
                "instance",
                r,
                &first,
                Some(&id),
                Some(instance(i, "running")),
            ));
        }
        events.push(envelope(
            EventType::ScanCompleted,
            "instance",
            r,
            &first,
            None,
            None,
        ));
        events.push(envelope(
            EventType::ScanStarted,
            "instance",
            r,
            &second,
            None,
            None,
        ));
        for i in (0..n).step_by(3) {
            let id = format!("i-{i:05}");
            events.push(envelope(
                EventType::ResourceUpdated,
                "instance",
                r,
                &second,
                Some(&id),
                Some(instance(i, "stopped")),
            ));
        }
        for i in (0..n).step_by(10) {
            let id = format!("i-{i:05}");
            events.push(envelope(
                EventType::ResourceDeleted,
                "instance",
                r,
                &second,
                Some(&id),
                None,
            ));
        }
        events.push(envelope(
            EventType::ResourceDeleted,
            "subnet",
            r,
            &second,
            Some("subnet-12"),
            None,
        ));
        events.push(envelope(
            EventType::ScanCompleted,
            "instance",
            r,
            &second,
            None,
            None,
        ));
        // subnet-11 goes away and comes back: whether that lands in one batch or
        // two must not matter
        let third = format!("scan-3-{region}");
        events.push(envelope(
            EventType::ResourceDeleted,
            "subnet",
            r,
            &third,
            Some("subnet-11"),
            None,
        ));
        let back = json!({"subnetId": "subnet-11", "vpcId": "vpc-4", "tagSet": [{"key": "Name", "value": "back"}]});
        events.push(envelope(
            EventType::ResourceCreated,
            "subnet",
            r,
            &format!("{third}-b"),
            Some("subnet-11"),
            Some(back),
        ));
        for chunk in events.chunks(500) {
            bus.publish_events(chunk, None).await.unwrap();
        }
    }
}

/// Every projection table's checksum.
pub async fn checksums(store: &Store) -> Vec<inventory_store::TableChecksum> {
    let mut out = Vec::new();
    for table in Store::projection_tables() {
        out.push(store.checksum(&table).await.unwrap());
    }
    out
}
