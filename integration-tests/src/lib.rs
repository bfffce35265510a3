//! Test harness: real servers, isolated per test.
//!
//! `make test` starts one nats-server (JetStream) and one PostgreSQL cluster on
//! free loopback ports and exports their addresses; each test gets its own subject
//! prefix (so its own streams and buckets) and its own database, and starts its
//! own moto server, so tests run in parallel without seeing each other.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_sdk_ec2::config::Credentials;
use inventory_api::{ApiServer, ApiState};
use inventory_bus::Bus;
use inventory_collector::{Collector, CollectorSettings, Pacer, Pacing, TaskSettings};
use inventory_model::Task;
use inventory_projector::{Projector, ProjectorSettings};
use inventory_source_aws::AwsSource;
use inventory_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub mod ganeti;
pub mod otlp;
pub mod scrape;
pub mod synthetic;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through `make test`, which starts the servers")
    })
}

pub fn init_tracing() {
    let _ = inventory_telemetry::init(
        inventory_telemetry::LogFormat::Text,
        "warn",
        true,
        "inventory-test",
        &inventory_telemetry::Traces::Off,
    );
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// Create a fresh, migrated database and return a store on it.
pub async fn fresh_store() -> (Store, String) {
    let admin = env("INVENTORY_TEST_DATABASE_URL");
    let name = unique("t_");
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test postgres");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let url = admin
        .rsplit_once('/')
        .expect("url has a database")
        .0
        .to_owned()
        + "/"
        + &name;
    let store = Store::connect(&url, 8).expect("store");
    store.migrate().await.expect("migrate");
    (store, url)
}

/// `target/<profile>/inventory`, next to the running test's own `deps/` directory.
pub fn inventory_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("inventory");
    assert!(
        bin.exists(),
        "{} not built (cargo build --bin inventory)",
        bin.display()
    );
    bin
}

/// The `inventory` binary with exactly these settings from the environment.
pub fn command(envs: &[(&str, String)]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(inventory_bin());
    c.env_remove("INVENTORY_CONFIG")
        .env_remove("RUST_LOG")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    c
}

/// Pacing for tests: generous rates, few and short retries, so that injected
/// faults show quickly.
pub fn test_pacing() -> Pacing {
    Pacing {
        rate: 200.0,
        burst: 200,
        max_in_flight: 16,
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    }
}

/// A pacer of [`test_pacing`].
pub fn test_pacer() -> Arc<Pacer> {
    Arc::new(Pacer::new(test_pacing()))
}

/// Task settings for tests: quick polls, short backoffs, and a short ack wait
/// so that a killed collector's task is redelivered within seconds.
pub fn test_tasks() -> TaskSettings {
    TaskSettings {
        concurrency: 2,
        max_attempts: 3,
        backoff: Duration::from_millis(300),
        max_backoff: Duration::from_secs(1),
        ack_wait: Duration::from_secs(3),
        fairness: 10,
        poll: Duration::from_millis(50),
    }
}

/// One test's slice of the servers.
pub struct TestEnv {
    pub bus: Bus,
    pub store: Store,
    pub db_url: String,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        init_tracing();
        let bus = Bus::connect(&env("INVENTORY_TEST_NATS_URL"), &unique("t"))
            .await
            .expect("connect to the test nats-server");
        bus.ensure_topology().await.expect("topology");
        let (store, db_url) = fresh_store().await;
        TestEnv { bus, store, db_url }
    }

    pub fn projector(&self, store: &Store, name: &str, batch_size: usize) -> Projector {
        Projector::new(
            self.bus.clone(),
            store.clone(),
            ProjectorSettings {
                name: name.into(),
                batch_size,
                fetch_wait: Duration::from_millis(200),
                ..Default::default()
            },
        )
    }

    /// Run projection `name` into `store` until it has applied the whole stream.
    pub async fn project(&self, store: &Store, name: &str) {
        self.project_batched(store, name, 500).await
    }

    /// [`TestEnv::project`] with batches of at most `batch_size` events.
    pub async fn project_batched(&self, store: &Store, name: &str, batch_size: usize) {
        let target = self.bus.last_event_seq().await.expect("stream info");
        let token = CancellationToken::new();
        let task = tokio::spawn(self.projector(store, name, batch_size).run(token.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while store.checkpoint(name).await.expect("checkpoint") < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "projection {name} did not reach seq {target}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        token.cancel();
        task.await.expect("projector task").expect("projector run");
    }

    /// Project the stream into the test's store under the default projection name.
    pub async fn project_default(&self) {
        self.project(&self.store, "tables").await;
    }

    pub fn collector(&self, aws: SdkConfig, regions: &[&str]) -> Collector {
        Collector::new(
            self.bus.clone(),
            AwsSource::with_pacer(aws, "test", None, test_pacer()),
            CollectorSettings {
                regions: Some(regions.iter().map(|r| r.to_string()).collect()),
                page_size: 5,
                concurrency: 4,
                scan_retries: 0,
                tasks: test_tasks(),
                ..Default::default()
            },
        )
    }

    /// Settings for the `inventory` binary pointing at this test's servers.
    pub fn cli_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("NATS_URL", env("INVENTORY_TEST_NATS_URL")),
            ("DATABASE_URL", self.db_url.clone()),
            (
                "INVENTORY_SUBJECT_PREFIX",
                self.bus.names().prefix().to_owned(),
            ),
        ]
    }

    pub fn api(&self) -> Api {
        self.api_with(ApiState::new(self.store.reader(), Some(self.bus.clone())))
    }

    /// An API on `state`.
    pub fn api_with(&self, state: ApiState) -> Api {
        let server = ApiServer::start("127.0.0.1:0", state, 1).expect("api");
        Api {
            base: format!("http://{}", server.addr),
            client: reqwest::Client::new(),
            token: None,
            _server: server,
        }
    }
}

/// A running API and a client for it.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    /// Sent as a bearer token by the helpers below.
    pub token: Option<String>,
    _server: ApiServer,
}

impl Api {
    /// The helpers send `token` from now on.
    pub fn authorized(mut self, token: &str) -> Api {
        self.token = Some(token.to_owned());
        self
    }

    /// A request with the token, if any.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GET a path; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// Every item of a list, following `next` cursors.
    pub async fn all(&self, path: &str) -> Vec<serde_json::Value> {
        let mut items = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = path.to_owned();
        loop {
            let (status, body) = self.get(&url).await;
            assert_eq!(status, 200, "GET {url}: {body}");
            items.extend(body["items"].as_array().expect("items").iter().cloned());
            match body["next"].as_str() {
                Some(next) => url = format!("{path}{sep}cursor={next}"),
                None => return items,
            }
        }
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        scrape::get(&self.base).await
    }

    /// `POST /api/v1/collect` with `body`: the id of the task it queued.
    pub async fn collect(&self, body: serde_json::Value) -> String {
        let resp = self
            .request(reqwest::Method::POST, "/api/v1/collect")
            .json(&body)
            .send()
            .await
            .expect("collect request");
        assert_eq!(resp.status().as_u16(), 202);
        let body: serde_json::Value = resp.json().await.expect("collect reply");
        body["task"]["id"].as_str().expect("task id").to_owned()
    }

    /// The values of `field` across a whole list, sorted.
    pub async fn ids(&self, path: &str, field: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all(path)
            .await
            .iter()
            .map(|i| i[field].as_str().expect("id field").to_owned())
            .collect();
        ids.sort();
        ids
    }
}

/// Wait (up to 60 s) until task `id` has reached a final state, and return it.
pub async fn wait_for_task(env: &TestEnv, id: &str) -> Task {
    wait_for_state(env, id, |t| t.state.is_final()).await
}

/// Wait (up to 60 s) until task `id` satisfies `done`, and return it.
pub async fn wait_for_state(env: &TestEnv, id: &str, done: impl Fn(&Task) -> bool) -> Task {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task = env.bus.task(id).await.expect("task record");
        if let Some(task) = &task
            && done(task)
        {
            return task.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} did not get there: {task:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A moto server of this test's own.
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

impl Moto {
    pub async fn start() -> Moto {
        let addr = free_addr();
        let child = Command::new(env("INVENTORY_TEST_MOTO_SERVER"))
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://{addr}");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if client
                .get(format!("{endpoint}/moto-api/"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Moto {
            endpoint,
            _child: child,
        }
    }

    /// SDK configuration for `endpoint` (moto, or a proxy in front of it), with
    /// retries off so that injected faults show at once.
    pub fn sdk_config_at(endpoint: &str) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(
                Credentials::new("testing", "testing", None, None, "test"),
            ))
            .retry_config(RetryConfig::disabled())
            .time_source(aws_smithy_async::time::SystemTimeSource::new())
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .build()
    }

    pub fn sdk_config(&self) -> SdkConfig {
        Moto::sdk_config_at(&self.endpoint)
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let conf = aws_sdk_ec2::config::Builder::from(&self.sdk_config())
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }
}

/// An image moto offers from Amazon, to launch instances from.
pub async fn amazon_image(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.describe_images()
        .owners("amazon")
        .send()
        .await
        .expect("describe images")
        .images()[0]
        .image_id()
        .expect("image id")
        .to_owned()
}

/// Launch `n` instances of an Amazon image, one reservation each (moto pages
/// instance listings by reservation); their ids, sorted.
pub async fn launch_instances(ec2: &aws_sdk_ec2::Client, n: usize) -> Vec<String> {
    let image = amazon_image(ec2).await;
    let mut ids = Vec::new();
    for _ in 0..n {
        let out = ec2
            .run_instances()
            .image_id(&image)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("run instance");
        ids.push(out.instances()[0].instance_id().expect("id").to_owned());
    }
    ids.sort();
    ids
}

/// A TCP proxy in front of moto that can be switched to answer 503 to everything
/// (and cut the connections it has open), to make scans fail for real.
pub struct FaultProxy {
    pub endpoint: String,
    failing: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let failing = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let (f, g) = (failing.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (failing, mut gen_rx, upstream) = (f.clone(), g.subscribe(), upstream.clone());
                tokio::spawn(async move {
                    if failing.load(Ordering::SeqCst) {
                        let mut buf = [0u8; 4096];
                        let _ = inbound.read(&mut buf).await;
                        let _ = inbound
                            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = gen_rx.changed() => {}
                    }
                });
            }
        });
        FaultProxy {
            endpoint,
            failing,
            generation,
        }
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Serve every request `listener` accepts with `handler` (one worker), in the
/// background: the fixture servers and proxies of the tests.
pub fn serve_all<F, Args>(
    listener: std::net::TcpListener,
    handler: F,
) -> actix_web::dev::ServerHandle
where
    F: actix_web::Handler<Args> + Clone + Send + 'static,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().default_service(actix_web::web::to(handler.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// What an [`HttpFaultProxy`] does with each request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Faults {
    /// Forward everything.
    None,
    /// Answer this share of requests with EC2's `RequestLimitExceeded` (503) or
    /// a bare 503, alternately; forward the rest.
    Share(f64),
    /// Answer every request with a bare 503.
    RefuseAll,
    /// Answer every request as AWS does to keys it does not know: 401 with
    /// `AuthFailure` (EC2) or `InvalidClientTokenId` (STS).
    AuthFailure,
    /// Forward everything, each request after this delay (a slow provider).
    Delay(Duration),
}

/// An HTTP proxy in front of moto that injects provider faults, per request.
pub struct HttpFaultProxy {
    pub endpoint: String,
    mode: Arc<std::sync::Mutex<Faults>>,
    injected: Arc<std::sync::atomic::AtomicU64>,
    _server: actix_web::dev::ServerHandle,
}

impl HttpFaultProxy {
    pub fn start(upstream: &str, mode: Faults, seed: u64) -> HttpFaultProxy {
        use actix_web::{HttpRequest, HttpResponse, web};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let mode = Arc::new(std::sync::Mutex::new(mode));
        let injected = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let rng = Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(seed)));
        let client = reqwest::Client::new();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let (m, inj) = (mode.clone(), injected.clone());
        let handler = move |req: HttpRequest, body: web::Bytes| {
            let (mode, injected, rng, client, upstream) = (
                m.clone(),
                inj.clone(),
                rng.clone(),
                client.clone(),
                upstream.clone(),
            );
            async move {
                let text = String::from_utf8_lossy(&body);
                let sts =
                    text.contains("Action=GetCallerIdentity") || text.contains("Action=AssumeRole");
                let current = *mode.lock().unwrap();
                if let Faults::Delay(d) = current {
                    tokio::time::sleep(d).await;
                }
                let fault = match current {
                    Faults::None | Faults::Delay(_) => None,
                    Faults::RefuseAll => Some(0),
                    Faults::AuthFailure => Some(2),
                    Faults::Share(p) => {
                        let mut rng = rng.lock().unwrap();
                        (rng.f64() < p).then(|| rng.u8(0..2))
                    }
                };
                if let Some(fault) = fault {
                    injected.fetch_add(1, Ordering::SeqCst);
                    return match fault {
                        0 => HttpResponse::ServiceUnavailable().finish(),
                        1 => HttpResponse::ServiceUnavailable()
                            .content_type("text/xml")
                            .body("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>"),
                        _ if sts => HttpResponse::Forbidden()
                            .content_type("text/xml")
                            .body("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>fault</RequestId></ErrorResponse>"),
                        _ => HttpResponse::Unauthorized()
                            .content_type("text/xml")
                            .body("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>fault</RequestID></Response>"),
                    };
                }
                let url = format!("{upstream}{}", req.uri());
                let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
                let mut out = client.request(method, url).body(body.to_vec());
                for (name, value) in req.headers() {
                    if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                        out = out.header(name.as_str(), value.as_bytes());
                    }
                }
                match out.send().await {
                    Err(_) => HttpResponse::BadGateway().finish(),
                    Ok(resp) => {
                        let mut answer = HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(resp.status().as_u16()).unwrap(),
                        );
                        for (name, value) in resp.headers() {
                            if !matches!(
                                name.as_str(),
                                "content-length" | "transfer-encoding" | "connection"
                            ) {
                                answer.insert_header((name.as_str(), value.as_bytes()));
                            }
                        }
                        answer.body(resp.bytes().await.unwrap_or_default())
                    }
                }
            }
        };
        HttpFaultProxy {
            endpoint,
            mode,
            injected,
            _server: serve_all(listener, handler),
        }
    }

    pub fn set(&self, mode: Faults) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Faults answered so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

/// A provider whose listings the test sets: one page per kind, the same in
/// every region (kinds not set list nothing).
#[derive(Clone)]
pub struct ListedSource {
    /// The provider it stands for (`aws` unless said otherwise).
    pub provider: &'static str,
    pub account: String,
    pub regions: Vec<String>,
    pages: Arc<std::sync::Mutex<std::collections::HashMap<&'static str, serde_json::Value>>>,
}

impl ListedSource {
    pub fn new(account: &str, regions: &[&str]) -> ListedSource {
        ListedSource {
            provider: "aws",
            account: account.to_owned(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            pages: Arc::default(),
        }
    }

    /// What listing `kind` (singular name) answers from now on: a response
    /// whose items sit where the kind reads them.
    pub fn set(&self, kind: &'static str, body: serde_json::Value) {
        self.pages.lock().unwrap().insert(kind, body);
    }
}

impl inventory_collector::Source for ListedSource {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn account_id(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<String, inventory_collector::CollectError>> {
        Box::pin(async { Ok(self.account.clone()) })
    }

    fn enabled_regions(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Vec<String>, inventory_collector::CollectError>>
    {
        Box::pin(async { Ok(self.regions.clone()) })
    }

    fn page<'a>(
        &'a self,
        kind: &'static inventory_model::KindDef,
        _region: Option<&'a str>,
        _token: Option<String>,
        _page_size: i32,
        stats: &'a mut inventory_collector::CallStats,
    ) -> futures::future::BoxFuture<
        'a,
        Result<inventory_collector::RawPage, inventory_collector::CollectError>,
    > {
        stats.calls += 1;
        let body = self
            .pages
            .lock()
            .unwrap()
            .get(kind.name)
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let items = kind
            .items(&body)
            .into_iter()
            .map(|item| inventory_collector::RawItem {
                id: kind.id_of(item),
                json: serde_json::to_string(item).unwrap(),
            })
            .collect();
        Box::pin(async move { Ok(inventory_collector::RawPage { items, next: None }) })
    }
}

/// Make every message of stream `name` age out (its retention briefly set to
/// a second), as if it had been kept for its whole age limit; returns once the
/// stream holds none. `Bus::ensure_topology` puts the definition back.
pub async fn age_out(name: &str) {
    let client = async_nats::connect(env("INVENTORY_TEST_NATS_URL"))
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(name).await.expect("stream");
    let mut config = stream.info().await.expect("info").config.clone();
    config.max_age = Duration::from_secs(1);
    config.duplicate_window = Duration::from_secs(1);
    js.update_stream(config)
        .await
        .expect("shorten the age limit");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stream.info().await.expect("info").state.messages > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} kept its messages"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
