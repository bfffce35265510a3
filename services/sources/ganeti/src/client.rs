//! One Ganeti cluster: its remote API over `reqwest` (HTTP basic auth, the
//! cluster's CA), who it is (`/2/info`), and a kind's listing, paced and
//! retried, returned as items of canonical JSON text.

use std::sync::Arc;

use futures::future::BoxFuture;
use inventory_collector::{CallKey, CallStats, CollectError, Pacer, RawItem, RawPage, Source};
use inventory_model::KindDef;
use tokio::sync::OnceCell;

use crate::bindings;
use crate::config::ClusterSpec;
use crate::errors::{CallError, answer_message, classify, collect_error};

/// One cluster, paced by the provider's shared [`Pacer`].
pub struct GanetiSource {
    url: String,
    expected_name: Option<String>,
    http: reqwest::Client,
    /// User and password (read from its file when the source is built).
    auth: Option<(String, String)>,
    name: OnceCell<String>,
    pacer: Arc<Pacer>,
}

impl GanetiSource {
    /// A cluster of the configuration (its password and CA read now).
    pub fn new(spec: &ClusterSpec, pacer: Arc<Pacer>) -> Result<GanetiSource, CollectError> {
        let mut http = reqwest::Client::builder()
            .timeout(spec.timeout)
            .user_agent(concat!("inventory/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &spec.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                CollectError::Config(format!("cannot read the CA file {}: {e}", ca.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                CollectError::Config(format!("{} is not a PEM certificate: {e}", ca.display()))
            })?;
            http = http.add_root_certificate(cert);
        }
        let http = http
            .build()
            .map_err(|e| CollectError::Config(format!("cluster {}: {e}", spec.url)))?;
        let auth = match (&spec.user, &spec.password_file) {
            (Some(user), Some(file)) => {
                let password = std::fs::read_to_string(file).map_err(|e| {
                    CollectError::Credentials(format!(
                        "cluster {}: cannot read the password from {}: {e}",
                        spec.url,
                        file.display()
                    ))
                })?;
                Some((user.clone(), password.trim().to_owned()))
            }
            _ => None,
        };
        Ok(GanetiSource {
            url: spec.url.trim_end_matches('/').to_owned(),
            expected_name: spec.name.clone(),
            http,
            auth,
            name: OnceCell::new(),
            pacer,
        })
    }

    fn whose(&self) -> String {
        match self.name.get().or(self.expected_name.as_ref()) {
            Some(name) => format!("cluster {name} at {}", self.url),
            None => format!("cluster at {}", self.url),
        }
    }

    /// One GET of `path`, paced and retried; the answer's body.
    async fn get(
        &self,
        operation: &str,
        path: &str,
        stats: &mut CallStats,
    ) -> Result<Vec<u8>, CollectError> {
        let cluster = self
            .name
            .get()
            .or(self.expected_name.as_ref())
            .unwrap_or(&self.url);
        let key = CallKey {
            source: inventory_model::catalogue::ganeti::SOURCE,
            api: operation,
            account_id: cluster,
            region: "",
        };
        let url = format!("{}{path}", self.url);
        self.pacer
            .call(&key, stats, classify, || async {
                let mut request = self.http.get(&url);
                if let Some((user, password)) = &self.auth {
                    request = request.basic_auth(user, Some(password));
                }
                let response = request.send().await.map_err(|e| CallError {
                    status: e.status().map(|s| s.as_u16()),
                    message: e.to_string(),
                })?;
                let status = response.status().as_u16();
                let body = response.bytes().await.map_err(|e| CallError {
                    status: None,
                    message: e.to_string(),
                })?;
                if status == 200 {
                    Ok(body.to_vec())
                } else {
                    Err(CallError {
                        status: Some(status),
                        message: answer_message(status, &body),
                    })
                }
            })
            .await
            .map_err(|e| collect_error(&self.whose(), operation, e))
    }

    /// [`Self::get`], the answer parsed as JSON.
    async fn get_json(
        &self,
        operation: &str,
        path: &str,
        stats: &mut CallStats,
    ) -> Result<serde_json::Value, CollectError> {
        let body = self.get(operation, path, stats).await?;
        serde_json::from_slice(&body).map_err(|e| CollectError::Provider {
            operation: operation.to_owned(),
            message: format!("{}: the answer is not json: {e}", self.whose()),
            retryable: false,
        })
    }

    /// The cluster's name (`/2/info`, once), checked against the configured one.
    async fn resolve_name(&self) -> Result<String, CollectError> {
        self.name
            .get_or_try_init(|| async {
                let info = self
                    .get_json("info", bindings::INFO, &mut CallStats::default())
                    .await?;
                let name = info["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| CollectError::Provider {
                        operation: "info".into(),
                        message: format!("{}: /2/info names no cluster", self.whose()),
                        retryable: false,
                    })?
                    .to_owned();
                match &self.expected_name {
                    Some(expected) if *expected != name => Err(CollectError::Credentials(format!(
                        "{} is cluster {name}, but is configured as {expected}",
                        self.url
                    ))),
                    _ => Ok(name),
                }
            })
            .await
            .cloned()
    }

    async fn list(&self, kind: &KindDef, stats: &mut CallStats) -> Result<RawPage, CollectError> {
        let operation = kind.list.operation;
        let path = bindings::path(operation)
            .ok_or_else(|| CollectError::Unsupported(operation.to_owned()))?;
        let answer = self.get_json(operation, path, stats).await?;
        // RAPI's JSON as it is, its keys put in order: the canonical text.
        let items = kind
            .items(&answer)
            .into_iter()
            .map(|item| RawItem {
                id: kind.id_of(item),
                json: serde_json::to_string(item).expect("json serializes"),
            })
            .collect();
        Ok(RawPage { items, next: None })
    }
}

impl Source for GanetiSource {
    fn provider(&self) -> &'static str {
        inventory_model::catalogue::ganeti::SOURCE
    }

    fn account_id(&self) -> BoxFuture<'_, Result<String, CollectError>> {
        Box::pin(self.resolve_name())
    }

    fn enabled_regions(&self) -> BoxFuture<'_, Result<Vec<String>, CollectError>> {
        // A cluster has no regions: its kinds are scanned once per cluster.
        Box::pin(async { Ok(Vec::new()) })
    }

    fn page<'a>(
        &'a self,
        kind: &'static KindDef,
        _region: Option<&'a str>,
        _token: Option<String>,
        _page_size: i32,
        stats: &'a mut CallStats,
    ) -> BoxFuture<'a, Result<RawPage, CollectError>> {
        Box::pin(self.list(kind, stats))
    }
}
