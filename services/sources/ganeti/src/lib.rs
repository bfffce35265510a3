//! The Ganeti source: clusters through their remote API (RAPI), over
//! `reqwest`.
//!
//! File roles, as every source has them: `config.rs` (the `ganeti:`
//! section), `client.rs` (a cluster: its RAPI client with its credentials,
//! who it is, a kind's listing), `errors.rs` (what a failed call means),
//! `bindings.rs` (every list operation bound to its RAPI resource). Its kinds
//! are declared in the model's catalogue (`shared/model/src/catalogue/ganeti.rs`);
//! its tests run against a loopback fixture server that answers as RAPI does
//! (`integration-tests/src/ganeti.rs`, recorded answers in
//! `integration-tests/fixtures/ganeti/`).

mod bindings;
pub mod client;
pub mod config;
mod errors;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use inventory_collector::{Account, CollectError, Pacer, Provider};

pub use client::GanetiSource;
pub use config::{ClusterSpec, GanetiConfig};

/// The Ganeti provider: its configuration section and clusters.
pub struct Ganeti;

impl Provider for Ganeti {
    fn name(&self) -> &'static str {
        inventory_model::catalogue::ganeti::SOURCE
    }

    fn check(
        &self,
        section: &serde_json::Value,
        env: &HashMap<String, String>,
    ) -> Result<(), String> {
        GanetiConfig::read(section, env).map(|_| ())
    }

    fn accounts<'a>(
        &'a self,
        section: &'a serde_json::Value,
        env: &'a HashMap<String, String>,
    ) -> BoxFuture<'a, Result<Vec<Account>, CollectError>> {
        Box::pin(async move {
            let config = GanetiConfig::read(section, env).map_err(CollectError::Config)?;
            accounts(&config)
        })
    }
}

/// The clusters of a configuration, sharing one pacer.
pub fn accounts(config: &GanetiConfig) -> Result<Vec<Account>, CollectError> {
    let pacer = Arc::new(Pacer::new(config.pacing.clone()));
    config
        .clusters
        .iter()
        .map(|spec| {
            Ok(Account {
                source: Arc::new(GanetiSource::new(spec, pacer.clone())?),
                label: spec.name.clone().unwrap_or_else(|| spec.url.clone()),
                label_is_id: spec.name.is_some(),
                regions: None,
                excluded_regions: Vec::new(),
            })
        })
        .collect()
}
