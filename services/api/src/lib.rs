//! The REST API (`/api/v1`), served by actix-web.
//!
//! Architecture invariant: this is the only crate with HTTP types. It reads
//! through a [`ReadStore`], which cannot write: every table has one
//! writer, the projector.
//!
//! Routes are generic over the model's kind catalogue: each kind gets a list,
//! a get, and nested collections for every link it takes part in.

pub mod auth;
mod consistency;
mod console;
mod error;
mod graph;
mod listing;
mod metrics;
mod reports;
mod routes;
mod search;
mod stats;
mod tasks;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::{App, HttpServer, dev::ServerHandle, web};
use inventory_bus::{Bus, TaskView};
use inventory_store::ReadStore;

pub use error::ApiError;
pub use metrics::MetricsServer;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The database as configured; it holds the serving pointer.
    base: ReadStore,
    /// The projection schema being served (switched by `inventory replay --switch`).
    current: Arc<RwLock<ReadStore>>,
    /// Readiness, the task routes and `?after_task=`; `None` when the API runs
    /// without a bus.
    pub bus: Option<Bus>,
    /// The projection whose checkpoint `?after_task=` / `?min_seq=` wait for.
    projection: String,
    /// How long they wait at most.
    read_wait: Duration,
    /// The one poller of that checkpoint that waiting reads share.
    progress: Arc<consistency::Progress>,
    /// The task records, watched (started at the first request that needs them).
    tasks: Arc<tokio::sync::OnceCell<TaskView>>,
    /// The families `/metrics` samples (started at the first scrape).
    sampler: Arc<stats::Sampler>,
    /// Tokens and scopes (none: anonymous, loopback only).
    pub(crate) auth: auth::Auth,
}

/// How often the API checks which schema it should serve.
const SERVING_CHECK: Duration = Duration::from_secs(2);

impl ApiState {
    pub fn new(store: ReadStore, bus: Option<Bus>) -> ApiState {
        ApiState {
            current: Arc::new(RwLock::new(store.clone())),
            base: store,
            bus,
            projection: "tables".into(),
            read_wait: Duration::from_secs(30),
            progress: Arc::default(),
            tasks: Arc::default(),
            sampler: Arc::default(),
            auth: auth::Auth::anonymous(),
        }
    }

    /// Require bearer tokens with scopes (see [`auth`]).
    pub fn with_auth(mut self, auth: auth::Auth) -> ApiState {
        self.auth = auth;
        self
    }

    /// The live view of the task records.
    pub(crate) async fn task_view(&self) -> Result<&TaskView, ApiError> {
        let bus = self
            .bus
            .as_ref()
            .ok_or_else(|| ApiError::Unavailable("this api runs without nats".into()))?;
        Ok(self.tasks.get_or_try_init(|| bus.task_view()).await?)
    }

    /// Wait for projection `name` (default `tables`) on reads that ask to.
    pub fn with_projection(mut self, name: &str) -> ApiState {
        self.projection = name.to_owned();
        self
    }

    /// Refresh the families `/metrics` samples this often (default 5 s).
    pub fn with_sample_every(mut self, every: Duration) -> ApiState {
        self.sampler = Arc::new(stats::Sampler::every(every));
        self
    }

    /// Wait at most this long on reads that ask to (default 30 s).
    pub fn with_read_wait(mut self, wait: Duration) -> ApiState {
        self.read_wait = wait;
        self
    }

    /// The store of the schema being served now.
    pub(crate) fn store(&self) -> ReadStore {
        self.current.read().expect("serving lock").clone()
    }

    /// Serve the schema the serving pointer names, if it changed. A request
    /// reads from one schema: the one served when it started.
    pub async fn follow_serving(&self) -> Result<(), inventory_store::StoreError> {
        let wanted = self.base.serving_schema().await?;
        let serving = self.store().schema().map(str::to_owned);
        if wanted != serving {
            let next = match &wanted {
                None => self.base.clone(),
                Some(schema) => self.base.in_schema(Some(schema))?,
            };
            next.ping().await?;
            *self.current.write().expect("serving lock") = next;
            tracing::info!(
                schema = wanted.as_deref().unwrap_or("(default)"),
                "api now serves schema"
            );
        }
        Ok(())
    }
}

/// Why the API server could not start, or ended on its own.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind the api to {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Anonymous access on an address others can reach.
    #[error("{0}")]
    Unprotected(String),
    #[error("the api server stopped")]
    Stopped,
    #[error("the api server failed")]
    Failed(#[source] std::io::Error),
    #[error("the api server panicked: {0}")]
    Panicked(String),
}

/// A started actix server: its handle and the task that serves it.
struct Running {
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn spawn(server: actix_web::dev::Server) -> Running {
        Running {
            handle: server.handle(),
            task: tokio::spawn(server),
        }
    }

    /// Wait until `stop` resolves (`Ok`: the server still runs), or until the
    /// server ends on its own (why, as an error).
    async fn until(&mut self, stop: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::select! {
            ended = &mut self.task => Err(match ended {
                Ok(Ok(())) => ServerError::Stopped,
                Ok(Err(e)) => ServerError::Failed(e),
                Err(e) => ServerError::Panicked(e.to_string()),
            }),
            _ = stop => Ok(()),
        }
    }

    /// Stop accepting, finish in-flight requests (within the server's
    /// shutdown timeout), and wait for the server to end.
    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

/// A running API server.
pub struct ApiServer {
    pub addr: SocketAddr,
    running: Running,
    follow: tokio::task::JoinHandle<()>,
    sampler: Arc<stats::Sampler>,
}

impl ApiServer {
    /// Bind `addr` (port 0 picks a free port) and start serving in the background.
    pub fn start(addr: &str, state: ApiState, workers: usize) -> Result<ApiServer, ServerError> {
        let bind = |source| ServerError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = TcpListener::bind(addr).map_err(bind)?;
        let addr_text = addr;
        let addr = listener.local_addr().map_err(bind)?;
        state
            .auth
            .check_bind(addr)
            .map_err(ServerError::Unprotected)?;
        if state.auth.is_anonymous() {
            tracing::warn!(%addr, "no api tokens configured: serving anonymously (loopback only)");
        }
        let sampler = state.sampler.clone();
        let follow = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = state.follow_serving().await {
                        tracing::warn!(error = %e, "could not check which schema to serve");
                    }
                    tokio::time::sleep(SERVING_CHECK).await;
                }
            })
        };
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(consistency::read_after))
                .wrap(actix_web::middleware::from_fn(auth::authorize))
                .wrap(actix_web::middleware::from_fn(metrics::observe))
                .app_data(web::Data::new(state.clone()))
                .wrap(actix_web::middleware::ErrorHandlers::new().handler(
                    actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                    routes::too_large,
                ))
                .app_data(routes::query_config())
                .app_data(routes::payload_config())
                .configure(console::configure)
                .configure(routes::configure)
        })
        .workers(workers.max(1))
        // A stop waits this long for requests in flight (a read waiting for
        // the projection included), so that a stopping process never hangs.
        .shutdown_timeout(2)
        .disable_signals()
        .listen(listener)
        .map_err(|source| ServerError::Bind {
            addr: addr_text.to_owned(),
            source,
        })?
        .run();
        tracing::info!(%addr, "api listening");
        Ok(ApiServer {
            addr,
            running: Running::spawn(server),
            follow,
            sampler,
        })
    }

    /// Serve until `stop` resolves, then stop as [`ApiServer::stop`] does; an
    /// error if the server ends on its own before.
    pub async fn serve_until(mut self, stop: impl Future<Output = ()>) -> Result<(), ServerError> {
        match self.running.until(stop).await {
            Ok(()) => {
                self.stop().await;
                Ok(())
            }
            Err(ended) => {
                self.follow.abort();
                self.sampler.stop();
                Err(ended)
            }
        }
    }

    /// Stop accepting, finish in-flight requests (at most 2 s), and wait for
    /// the server to end.
    pub async fn stop(self) {
        self.follow.abort();
        self.sampler.stop();
        self.running.stop().await;
    }
}
