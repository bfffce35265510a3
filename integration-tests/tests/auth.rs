//! Bearer tokens and scopes (issue 16): 401 without a valid token, 403
//! without the scope, open health checks, `/metrics` behind `read` unless
//! public, failures counted, and no anonymous API beyond loopback.

use inventory_api::auth::{Auth, Scope, Token};
use inventory_api::{ApiServer, ApiState, ServerError};
use inventory_integration_tests::{Api, TestEnv};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

fn token(name: &str, secret: &str, scopes: Vec<Scope>) -> Token {
    let hash = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    Token::from_hex(name, &hash, scopes).unwrap()
}

fn auth() -> Auth {
    Auth::with_tokens(vec![
        token("reader", "r-secret", vec![Scope::Read]),
        token("collector", "c-secret", vec![Scope::Collect]),
        token("ops", "a-secret", vec![Scope::Admin]),
    ])
    .unwrap()
}

/// Status, `WWW-Authenticate` and JSON body of a request with `secret`.
async fn call(
    api: &Api,
    method: Method,
    path: &str,
    secret: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut req = api.client.request(method, format!("{}{path}", api.base));
    if let Some(s) = secret {
        req = req.bearer_auth(s);
    }
    if path.ends_with("/collect") {
        req = req.json(&json!({"source": "aws", "kind": "vpcs"}));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_scopes_decide_every_request() {
    let env = TestEnv::new().await;
    let api =
        env.api_with(ApiState::new(env.store.reader(), Some(env.bus.clone())).with_auth(auth()));
    let list = "/api/v1/aws/vpcs";

    // No token, or a wrong one: 401 with the challenge and the JSON error.
    for secret in [None, Some("nope"), Some("r-secret2"), Some("R-SECRET")] {
        let (status, challenge, body) = call(&api, Method::GET, list, secret).await;
        assert_eq!(status, 401, "{secret:?}");
        assert!(challenge.unwrap().starts_with("Bearer"), "{secret:?}");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    // The scheme is case-insensitive.
    let resp = api
        .client
        .get(format!("{}{list}", api.base))
        .header("authorization", "bearer r-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Scopes: read reads only; collect collects and retries; admin does all.
    assert_eq!(call(&api, Method::GET, list, Some("r-secret")).await.0, 200);
    assert_eq!(call(&api, Method::GET, list, Some("a-secret")).await.0, 200);
    let (status, _, body) = call(&api, Method::GET, list, Some("c-secret")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, challenge, body) =
        call(&api, Method::POST, "/api/v1/collect", Some("r-secret")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert!(challenge.is_none(), "a 403 is not a challenge");
    // Past the check, the route answers for itself (no such task: 404).
    for (method, path, secret, status) in [
        (Method::POST, "/api/v1/tasks/t-none/retry", "c-secret", 404),
        (Method::POST, "/api/v1/tasks/t-none/cancel", "c-secret", 403),
        (Method::POST, "/api/v1/tasks/t-none/cancel", "a-secret", 404),
        (Method::DELETE, "/api/v1/tasks/t-none", "r-secret", 403),
        (Method::DELETE, "/api/v1/tasks/t-none", "a-secret", 404),
    ] {
        let (got, _, body) = call(&api, method.clone(), path, Some(secret)).await;
        assert_eq!(got, status, "{method} {path} with {secret}: {body}");
    }
    let (status, _, _) = call(&api, Method::POST, "/api/v1/collect", Some("c-secret")).await;
    assert!(status != 401 && status != 403, "collect scope: {status}");

    // Health checks are open, /metrics needs read.
    assert_eq!(call(&api, Method::GET, "/healthz", None).await.0, 200);
    let resp = api
        .client
        .get(format!("{}/", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "the console's page is open");
    assert_eq!(call(&api, Method::GET, "/metrics", None).await.0, 401);
    let metrics = api
        .client
        .get(format!("{}/metrics", api.base))
        .bearer_auth("r-secret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in ["missing", "invalid", "scope"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "inventory_api_auth_failures_total{{reason=\"{reason}\"}}"
                ))
            })
            .unwrap_or_else(|| panic!("no {reason} failures counted"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }

    // Public metrics: no token needed there, still needed elsewhere.
    let public = env
        .api_with(ApiState::new(env.store.reader(), None).with_auth(auth().metrics_public(true)));
    assert_eq!(call(&public, Method::GET, "/metrics", None).await.0, 200);
    assert_eq!(call(&public, Method::GET, list, None).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_the_api_serves_loopback_only() {
    let env = TestEnv::new().await;
    let anonymous = || ApiState::new(env.store.reader(), None);
    match ApiServer::start("0.0.0.0:0", anonymous(), 1) {
        Err(ServerError::Unprotected(message)) => {
            assert!(message.contains("api.auth.tokens"), "{message}")
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("an anonymous api started on 0.0.0.0"),
    }
    let protected = ApiServer::start("0.0.0.0:0", anonymous().with_auth(auth()), 1).unwrap();
    protected.stop().await;
    // On loopback, anonymous is served (what `make run` does).
    let api = env.api_with(anonymous());
    assert_eq!(api.get("/api/v1/aws/vpcs").await.0, 200);
}
