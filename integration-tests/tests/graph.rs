//! `GET /api/v1/graph` (issue 16): depth, direction, kinds, cycles,
//! truncation and `at=`, over links the fold wrote from real events.

use std::collections::BTreeSet;

use inventory_integration_tests::TestEnv;
use inventory_integration_tests::synthetic::envelope;
use inventory_model::{Envelope, EventType};
use serde_json::{Value, json};

const R: Option<&str> = Some("us-east-1");

fn created(kind: &str, id: &str, payload: Value) -> Envelope {
    envelope(
        EventType::ResourceCreated,
        kind,
        R,
        "s1",
        Some(id),
        Some(payload),
    )
}

/// The node paths of a graph answer, sorted.
fn nodes(g: &Value) -> Vec<String> {
    let mut v: Vec<String> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}/{}",
                n["kind"].as_str().unwrap(),
                n["id"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

fn edges(g: &Value) -> BTreeSet<(String, String)> {
    g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_walks_links_by_depth_direction_and_time() {
    let env = TestEnv::new().await;
    // vpc-1 holds subnets a and b; i-1 is in a, i-2 in b: vpc → subnet,
    // vpc → instance and instance → subnet make cycles when walked both ways.
    let events = vec![
        created("vpc", "vpc-1", json!({"vpcId": "vpc-1"})),
        created("vpc", "vpc-2", json!({"vpcId": "vpc-2"})),
        created(
            "subnet",
            "subnet-a",
            json!({"subnetId": "subnet-a", "vpcId": "vpc-1"}),
        ),
        created(
            "subnet",
            "subnet-b",
            json!({"subnetId": "subnet-b", "vpcId": "vpc-1"}),
        ),
        created(
            "instance",
            "i-1",
            json!({"instanceId": "i-1", "vpcId": "vpc-1", "subnetId": "subnet-a"}),
        ),
        created(
            "instance",
            "i-2",
            json!({"instanceId": "i-2", "vpcId": "vpc-1", "subnetId": "subnet-b"}),
        ),
    ];
    env.bus.publish_events(&events, None).await.unwrap();
    env.project_default().await;
    let api = env.api();
    let graph = |q: &str| {
        let api = &api;
        let q = q.to_owned();
        async move {
            let (status, body) = api.get(&format!("/api/v1/graph?{q}")).await;
            assert_eq!(status, 200, "{q}: {body}");
            body
        }
    };

    // Everything in the VPC: one request.
    let g = graph("from=aws/vpcs/vpc-1&direction=out&depth=1").await;
    assert_eq!(
        nodes(&g),
        [
            "instances/i-1",
            "instances/i-2",
            "subnets/subnet-a",
            "subnets/subnet-b",
            "vpcs/vpc-1"
        ]
    );
    assert_eq!(edges(&g).len(), 4);
    assert!(edges(&g).contains(&("aws/vpcs/vpc-1".into(), "aws/subnets/subnet-a".into())));
    assert_eq!(g["truncated"], false);
    let start = &g["nodes"][0];
    assert_eq!(
        (start["id"].as_str(), start["depth"].as_u64()),
        (Some("vpc-1"), Some(0))
    );
    assert_eq!(start["href"], "/api/v1/aws/vpcs/vpc-1");
    // What points at a subnet.
    let g = graph("from=aws/subnets/subnet-a&direction=in&depth=1").await;
    assert_eq!(
        nodes(&g),
        ["instances/i-1", "subnets/subnet-a", "vpcs/vpc-1"]
    );
    // Out from an instance reaches its subnet only (the vpc points at it).
    let g = graph("from=aws/instances/i-1&direction=out&depth=3").await;
    assert_eq!(nodes(&g), ["instances/i-1", "subnets/subnet-a"]);
    // Both ways at depth 2: every node once, every edge once, cycles or not.
    let g = graph("from=aws/instances/i-1&direction=both&depth=2").await;
    assert_eq!(
        nodes(&g),
        [
            "instances/i-1",
            "instances/i-2",
            "subnets/subnet-a",
            "subnets/subnet-b",
            "vpcs/vpc-1"
        ]
    );
    assert_eq!(edges(&g).len(), 5, "{g}");
    assert_eq!(
        graph("from=aws/instances/i-1&depth=5").await["nodes"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // Only some kinds; at most `limit` nodes, and it says so.
    let g = graph("from=aws/vpcs/vpc-1&direction=out&kinds=instances").await;
    assert_eq!(nodes(&g), ["instances/i-1", "instances/i-2", "vpcs/vpc-1"]);
    let g = graph("from=aws/vpcs/vpc-1&depth=2&limit=3").await;
    assert_eq!(
        (
            g["nodes"].as_array().unwrap().len(),
            g["truncated"].as_bool()
        ),
        (3, Some(true))
    );
    let g = graph("from=aws/vpcs/vpc-2").await;
    assert_eq!(nodes(&g), ["vpcs/vpc-2"]);

    // i-2 is deleted later: gone from the graph now, there as of before.
    let mut gone = envelope(
        EventType::ResourceDeleted,
        "instance",
        R,
        "s2",
        Some("i-2"),
        None,
    );
    gone.observed_at = "2026-11-24T10:00:00Z".parse().unwrap();
    env.bus.publish_events(&[gone], None).await.unwrap();
    env.project_default().await;
    let g = graph("from=aws/vpcs/vpc-1&direction=out&depth=1").await;
    assert!(!nodes(&g).contains(&"instances/i-2".to_owned()), "{g}");
    let g = graph("from=aws/vpcs/vpc-1&direction=out&depth=1&at=2026-11-23T12:00:00Z").await;
    assert!(nodes(&g).contains(&"instances/i-2".to_owned()), "{g}");
    let g = graph("from=aws/subnets/subnet-b&direction=in&at=2026-11-23T12:00:00Z").await;
    assert_eq!(
        nodes(&g),
        ["instances/i-2", "subnets/subnet-b", "vpcs/vpc-1"]
    );
    let g = graph("from=aws/subnets/subnet-b&direction=in").await;
    assert_eq!(nodes(&g), ["subnets/subnet-b", "vpcs/vpc-1"]);

    // Bad requests say what is wrong.
    for (q, status) in [
        ("from=aws/vpcs/vpc-1&depth=6", 400),
        ("from=aws/vpcs/vpc-1&direction=up", 400),
        ("depth=1", 400),
        ("from=aws/vpcs", 400),
        ("from=aws/vpcs/vpc-9", 404),
        ("from=aws/teapots/t-1", 404),
        ("from=aws/vpcs/vpc-1&kinds=teapots", 400),
    ] {
        let (got, body) = api.get(&format!("/api/v1/graph?{q}")).await;
        assert_eq!(got, status, "{q}: {body}");
        assert!(body["error"]["code"].is_string(), "{q}: {body}");
    }
}
