//! The AWS source: EC2 through `aws-sdk-ec2`, accounts reached by named
//! credentials and checked with STS.
//!
//! Architecture invariant: the AWS SDK crates are used here and nowhere else
//! (the tidy test checks the manifests). The generic collector sees this
//! crate through [`inventory_collector::Provider`] and [`inventory_collector::Source`].
//!
//! File roles, as every source has them: `config.rs` (the `aws:` section),
//! `credentials.rs` (named credentials), `client.rs` (an account: its clients
//! and one page of a listing), `errors.rs` (what a failed call means),
//! `bindings.rs` (every list operation bound to its SDK call), `xml.rs` (the
//! response format). Its kinds are declared in the model's catalogue
//! (`shared/model/src/catalogue/aws.rs`), so that the projector and the API
//! know them without this crate; moto is its emulator in the tests.

mod bindings;
pub mod client;
pub mod config;
pub mod credentials;
mod errors;
pub mod xml;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use inventory_collector::{Account, CollectError, Pacer, Provider, RawPage, Source};
use inventory_model::KindDef;

pub use client::{AwsSource, FALLBACK_REGION};
pub use config::AwsConfig;
pub use credentials::{AccountSpec, CredentialSpec};

/// The AWS provider: its configuration section and accounts.
pub struct Aws;

impl Provider for Aws {
    fn name(&self) -> &'static str {
        inventory_model::catalogue::aws::SOURCE
    }

    fn check(
        &self,
        section: &serde_json::Value,
        env: &HashMap<String, String>,
    ) -> Result<(), String> {
        AwsConfig::read(section, env).map(|_| ())
    }

    fn accounts<'a>(
        &'a self,
        section: &'a serde_json::Value,
        env: &'a HashMap<String, String>,
    ) -> BoxFuture<'a, Result<Vec<Account>, CollectError>> {
        Box::pin(async move {
            let config = AwsConfig::read(section, env).map_err(CollectError::Config)?;
            // Region, endpoint (`AWS_ENDPOINT_URL`) and the default credential chain.
            let base = AwsSource::environment().await;
            accounts(&base, &config).await
        })
    }

    fn listing(&self, kind: &KindDef) -> String {
        bindings::listing(kind.list.operation)
    }
}

/// The accounts of a configuration, sharing one pacer: the configured ones,
/// or one of the SDK's default chain. An account whose credential cannot be
/// built (a key file that cannot be read) is kept: its every collection fails
/// with that error, and the other accounts go on.
pub async fn accounts(
    base: &aws_config::SdkConfig,
    config: &AwsConfig,
) -> Result<Vec<Account>, CollectError> {
    let pacer = Arc::new(Pacer::new(config.pacing.clone()));
    let regions = (!config.regions.is_empty()).then(|| config.regions.clone());
    if config.accounts.is_empty() {
        return Ok(vec![Account {
            source: Arc::new(AwsSource::with_pacer(base.clone(), "default", None, pacer)),
            label: "default".into(),
            label_is_id: false,
            regions,
            excluded_regions: config.excluded_regions.clone(),
        }]);
    }
    credentials::validate(&config.credentials, &config.accounts)?;
    let mut out = Vec::with_capacity(config.accounts.len());
    for spec in &config.accounts {
        let built = AwsSource::from_spec(base, &config.credentials, spec, pacer.clone()).await;
        let source: Arc<dyn Source> = match built {
            Ok(source) => Arc::new(source),
            Err(e) => {
                tracing::error!(credential = spec.credential, account = ?spec.id, error = %e, "account credential unusable");
                Arc::new(Unusable(e.to_string()))
            }
        };
        let mut excluded = spec.excluded_regions.clone();
        excluded.extend(config.excluded_regions.iter().cloned());
        out.push(Account {
            source,
            label: spec
                .id
                .clone()
                .unwrap_or_else(|| format!("credential {}", spec.credential)),
            label_is_id: spec.id.is_some(),
            regions: if spec.regions.is_empty() {
                regions.clone()
            } else {
                Some(spec.regions.clone())
            },
            excluded_regions: excluded,
        });
    }
    Ok(out)
}

/// An account whose credential could not be built.
struct Unusable(String);

impl Source for Unusable {
    fn provider(&self) -> &'static str {
        inventory_model::catalogue::aws::SOURCE
    }

    fn account_id(&self) -> BoxFuture<'_, Result<String, CollectError>> {
        Box::pin(async { Err(CollectError::Credentials(self.0.clone())) })
    }

    fn enabled_regions(&self) -> BoxFuture<'_, Result<Vec<String>, CollectError>> {
        Box::pin(async { Err(CollectError::Credentials(self.0.clone())) })
    }

    fn page<'a>(
        &'a self,
        _kind: &'static KindDef,
        _region: Option<&'a str>,
        _token: Option<String>,
        _page_size: i32,
        _stats: &'a mut inventory_collector::CallStats,
    ) -> BoxFuture<'a, Result<RawPage, CollectError>> {
        Box::pin(async { Err(CollectError::Credentials(self.0.clone())) })
    }
}
