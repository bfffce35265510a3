//! The REST API (`/api/v1`), served by actix-web.
//!
//! Architecture invariant: this is the only crate with HTTP types. It reads
//! through the store's query functions and never writes: every table has one
//! writer, the projector.
//!
//! Routes are generic over the model's kind catalogue: each kind gets a list,
//! a get, and nested collections for every link it takes part in.

mod error;
mod routes;

use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpServer, dev::ServerHandle, web};
use inventory_bus::Bus;
use inventory_store::Store;

pub use error::ApiError;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    /// For readiness only; `None` when the API runs without a bus.
    pub bus: Option<Bus>,
}

/// A running API server.
pub struct ApiServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ApiServer {
    /// Bind `addr` (port 0 picks a free port) and start serving in the background.
    pub fn start(addr: &str, state: ApiState, workers: usize) -> anyhow::Result<ApiServer> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("cannot bind the api to {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(routes::query_config())
                .configure(routes::configure)
        })
        .workers(workers.max(1))
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        tracing::info!(%addr, "api listening");
        Ok(ApiServer { addr, handle, task })
    }

    /// Stop accepting, finish in-flight requests, and wait for the server to end.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
