//! A loopback server that answers as a Ganeti cluster's remote API does
//! (RAPI, `doc/rapi.rst`): `GET /2/info` and `GET /2/{instances,nodes,networks,groups}`
//! (`?bulk=1`: every field; without: `[{"id", "uri"}]`), HTTP basic auth
//! (`401` with `WWW-Authenticate: Basic realm="Ganeti Remote API"`), error
//! bodies `{"code", "message", "explain"}`, and failures injected on demand.
//! It starts with the recorded answers of `fixtures/ganeti/`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ganeti");

/// A recorded answer.
pub fn recorded(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}.json")).expect("fixture");
    serde_json::from_str(&text).expect("fixture json")
}

/// What the cluster holds, and how it misbehaves.
pub struct Cluster {
    pub info: Value,
    pub instances: Vec<Value>,
    pub nodes: Vec<Value>,
    pub networks: Vec<Value>,
    pub groups: Vec<Value>,
    /// Answer this many requests with this status (and RAPI's error body).
    pub failing: Option<(u16, u32)>,
}

pub struct GanetiRapi {
    pub endpoint: String,
    pub user: String,
    pub password: String,
    pub cluster: Arc<Mutex<Cluster>>,
    requests: Arc<AtomicU64>,
    _server: actix_web::dev::ServerHandle,
}

fn error(status: u16, message: &str, explain: &str) -> HttpResponse {
    let mut answer =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a status"));
    if status == 401 {
        answer.insert_header(("WWW-Authenticate", "Basic realm=\"Ganeti Remote API\""));
    }
    answer.json(json!({"code": status, "message": message, "explain": explain}))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl GanetiRapi {
    /// A cluster with the recorded answers, whose RAPI user is `user` /
    /// `password`.
    pub fn start(user: &str, password: &str) -> GanetiRapi {
        let cluster = Arc::new(Mutex::new(Cluster {
            info: recorded("info"),
            instances: as_list(recorded("instances")),
            nodes: as_list(recorded("nodes")),
            networks: as_list(recorded("networks")),
            groups: as_list(recorded("groups")),
            failing: None,
        }));
        let requests = Arc::new(AtomicU64::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let (c, r, expected) = (cluster.clone(), requests.clone(), basic(user, password));
        let handler = move |req: HttpRequest| {
            let (cluster, requests, expected) = (c.clone(), r.clone(), expected.clone());
            async move {
                requests.fetch_add(1, Ordering::SeqCst);
                let authorized = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    == Some(expected.as_str());
                if !authorized {
                    return error(401, "Unauthorized", "No valid credentials given");
                }
                let mut cluster = cluster.lock().unwrap();
                if let Some((status, left)) = cluster.failing {
                    cluster.failing = (left > 1).then_some((status, left - 1));
                    return error(status, "Service Unavailable", "the master daemon is busy");
                }
                let bulk = req
                    .query_string()
                    .split('&')
                    .any(|p| p == "bulk=1" || p == "bulk=true");
                let resource = req.path().trim_end_matches('/');
                let (list, uri) = match resource {
                    "/2/info" => return HttpResponse::Ok().json(&cluster.info),
                    "/2/instances" => (&cluster.instances, "instances"),
                    "/2/nodes" => (&cluster.nodes, "nodes"),
                    "/2/networks" => (&cluster.networks, "networks"),
                    "/2/groups" => (&cluster.groups, "groups"),
                    _ => return error(404, "Not Found", "No such resource"),
                };
                if bulk {
                    HttpResponse::Ok().json(list)
                } else {
                    let short: Vec<Value> = list
                        .iter()
                        .map(|i| json!({"id": i["name"], "uri": format!("/2/{uri}/{}", i["name"].as_str().unwrap_or(""))}))
                        .collect();
                    HttpResponse::Ok().json(short)
                }
            }
        };
        let handle = crate::serve_all(listener, handler);
        GanetiRapi {
            endpoint,
            user: user.to_owned(),
            password: password.to_owned(),
            cluster,
            requests,
            _server: handle,
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answer the next `n` requests with `status`.
    pub fn fail(&self, status: u16, n: u32) {
        self.cluster.lock().unwrap().failing = Some((status, n));
    }

    /// Change what the cluster holds.
    pub fn edit(&self, change: impl FnOnce(&mut Cluster)) {
        change(&mut self.cluster.lock().unwrap());
    }

    /// The cluster's name, as `/2/info` answers it.
    pub fn name(&self) -> String {
        self.cluster.lock().unwrap().info["name"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        _ => panic!("a list fixture"),
    }
}
