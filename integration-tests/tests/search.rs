//! `GET /api/v1/search` (issue 16): words, phrases, negation, qualifiers,
//! ranking and paging over every kind, on rows the fold wrote (the search
//! columns are generated in the fold's transaction).

use inventory_integration_tests::TestEnv;
use inventory_integration_tests::synthetic::envelope;
use inventory_model::{Envelope, EventType};
use serde_json::{Value, json};

fn created(kind: &str, region: &str, id: &str, payload: Value) -> Envelope {
    envelope(
        EventType::ResourceCreated,
        kind,
        Some(region),
        "s1",
        Some(id),
        Some(payload),
    )
}

fn tags(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// `kind/id` of each result, in order.
fn found(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["kind"].as_str().unwrap(),
                i["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_phrases_and_qualifiers_ranked_and_paged() {
    let env = TestEnv::new().await;
    let events = vec![
        created(
            "instance",
            "eu-west-1",
            "i-0abc123def",
            json!({"instanceId": "i-0abc123def", "privateIpAddress": "10.0.1.5",
                   "tagSet": tags(&[("Name", "web front end"), ("env", "prod"), ("owner", "team-a")])}),
        ),
        created(
            "instance",
            "eu-west-1",
            "i-0def456",
            json!({"instanceId": "i-0def456", "privateIpAddress": "10.0.2.9",
                   "tagSet": tags(&[("Name", "web end front"), ("env", "staging")])}),
        ),
        created(
            "instance",
            "us-east-1",
            "i-0fff789",
            json!({"instanceId": "i-0fff789", "privateIpAddress": "10.9.0.1",
                   "tagSet": tags(&[("Name", "database"), ("env", "prod"), ("cost center", "42")])}),
        ),
        created(
            "vpc",
            "eu-west-1",
            "vpc-web",
            json!({"vpcId": "vpc-web", "cidrBlock": "10.0.0.0/16",
                   "tagSet": tags(&[("Name", "web"), ("env", "prod")])}),
        ),
    ];
    env.bus.publish_events(&events, None).await.unwrap();
    env.project_default().await;
    let api = env.api();
    let search = |q: &str| {
        let api = &api;
        let url = format!(
            "/api/v1/search?q={}",
            q.bytes()
                .map(|b| if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect::<String>()
        );
        async move {
            let (status, body) = api.get(&url).await;
            assert_eq!(status, 200, "{url}: {body}");
            body
        }
    };

    // A word over names of every kind; the exact name ranks first.
    let body = search("web").await;
    let ids = found(&body);
    assert_eq!(ids[0], "vpcs/vpc-web", "{body}");
    assert_eq!(
        sorted(ids),
        [
            "instances/i-0abc123def",
            "instances/i-0def456",
            "vpcs/vpc-web"
        ]
    );
    let first = &body["items"][0];
    assert_eq!(first["source"], "aws");
    assert_eq!(first["href"], "/api/v1/aws/vpcs/vpc-web");
    assert_eq!(first["name"], "web");
    assert_eq!(first["region"], "eu-west-1");
    assert!(first["score"].as_f64().unwrap() > body["items"][1]["score"].as_f64().unwrap());
    assert!(
        first["matched"]
            .as_array()
            .unwrap()
            .contains(&json!("name")),
        "{first}"
    );
    // Words are ANDed; a phrase keeps its order.
    assert_eq!(
        sorted(found(&search("web front").await)),
        ["instances/i-0abc123def", "instances/i-0def456"]
    );
    assert_eq!(
        found(&search("\"web front\"").await),
        ["instances/i-0abc123def"]
    );
    // Negation.
    assert_eq!(
        sorted(found(&search("web -staging").await)),
        ["instances/i-0abc123def", "vpcs/vpc-web"]
    );
    // Ids by prefix and substring, IP addresses and CIDRs.
    assert_eq!(found(&search("i-0abc").await), ["instances/i-0abc123def"]);
    assert_eq!(found(&search("123def").await), ["instances/i-0abc123def"]);
    assert_eq!(found(&search("10.0.1.5").await), ["instances/i-0abc123def"]);
    assert_eq!(found(&search("10.0.0.0/16").await), ["vpcs/vpc-web"]);
    // Qualifiers.
    assert_eq!(
        sorted(found(&search("web kind:instances").await)),
        ["instances/i-0abc123def", "instances/i-0def456"]
    );
    assert_eq!(
        sorted(found(&search("source:aws tag:env=prod").await)),
        [
            "instances/i-0abc123def",
            "instances/i-0fff789",
            "vpcs/vpc-web"
        ]
    );
    assert_eq!(
        found(&search("tag:env=prod region:us-*").await),
        ["instances/i-0fff789"]
    );
    assert_eq!(
        found(&search("kind:instances tag:owner").await),
        ["instances/i-0abc123def"]
    );
    assert_eq!(
        sorted(found(&search("kind:instances -tag:owner").await)),
        ["instances/i-0def456", "instances/i-0fff789"]
    );
    assert_eq!(
        found(&search("account:1* kind:instances tag:env=stag*").await),
        ["instances/i-0def456"]
    );
    let b = search("web tag:owner").await;
    assert!(
        b["items"][0]["matched"]
            .as_array()
            .unwrap()
            .contains(&json!("tags.owner")),
        "{b}"
    );
    // Paging: every result once, then no cursor.
    let (status, page1) = api.get("/api/v1/search?q=10&limit=2").await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let next = page1["next"].as_str().expect("a second page").to_owned();
    let (status, page2) = api
        .get(&format!("/api/v1/search?q=10&limit=2&cursor={next}"))
        .await;
    assert_eq!(status, 200, "{page2}");
    assert!(page2["next"].is_null(), "{page2}");
    let mut all = found(&page1);
    all.extend(found(&page2));
    assert_eq!(
        sorted(all),
        [
            "instances/i-0abc123def",
            "instances/i-0def456",
            "instances/i-0fff789",
            "vpcs/vpc-web"
        ]
    );
    // The fold keeps the search current: a renamed resource is found by
    // its new name only.
    let mut renamed = envelope(
        EventType::ResourceUpdated,
        "instance",
        Some("us-east-1"),
        "s2",
        Some("i-0fff789"),
        Some(
            json!({"instanceId": "i-0fff789", "privateIpAddress": "10.9.0.1",
                    "tagSet": tags(&[("Name", "cache"), ("env", "prod")])}),
        ),
    );
    renamed.observed_at = "2026-11-24T10:00:00Z".parse().unwrap();
    env.bus.publish_events(&[renamed], None).await.unwrap();
    env.project_default().await;
    assert_eq!(found(&search("database").await), Vec::<String>::new());
    assert_eq!(found(&search("cache").await), ["instances/i-0fff789"]);
    // Deleted resources are not found.
    let mut deleted = envelope(
        EventType::ResourceDeleted,
        "vpc",
        Some("eu-west-1"),
        "s2",
        Some("vpc-web"),
        None,
    );
    deleted.observed_at = "2026-11-24T10:00:00Z".parse().unwrap();
    env.bus.publish_events(&[deleted], None).await.unwrap();
    env.project_default().await;
    assert!(!found(&search("web").await).contains(&"vpcs/vpc-web".to_owned()));

    // Bad searches are 400s that say why.
    for (url, code) in [
        ("/api/v1/search", "invalid_parameter"),
        ("/api/v1/search?q=", "invalid_query"),
        ("/api/v1/search?q=kind:nope", "invalid_query"),
        ("/api/v1/search?q=%22open", "invalid_query"),
        ("/api/v1/search?q=web&cursor=nope", "invalid_cursor"),
        ("/api/v1/search?q=web&limit=0", "invalid_parameter"),
        ("/api/v1/search?q=web&size=1", "unknown_parameter"),
    ] {
        let (status, body) = api.get(url).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], code, "{url}: {body}");
    }
}
