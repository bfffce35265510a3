//! The `ganeti:` section of the configuration: the clusters to collect.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use inventory_collector::Pacing;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GanetiConfig {
    /// The clusters; none: Ganeti is not collected.
    pub clusters: Vec<ClusterSpec>,
    /// Rate limits and retries of RAPI calls, per cluster and resource.
    pub pacing: Pacing,
}

/// One cluster's remote API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// The cluster's name as `/2/info` gives it (the inventory's account id);
    /// absent: whatever it answers.
    #[serde(default)]
    pub name: Option<String>,
    /// `https://cluster.example.com:5080` (RAPI's default port).
    pub url: String,
    /// A RAPI user (read access is enough) and a file holding its password.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A PEM file with the CA that signed the cluster's certificate (RAPI
    /// uses a self-signed one unless told otherwise).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long one call may take.
    #[serde(
        default = "default_timeout",
        deserialize_with = "inventory_model::duration::from_text"
    )]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl GanetiConfig {
    /// The section as configured (`null`: absent).
    pub fn read(
        section: &serde_json::Value,
        _env: &HashMap<String, String>,
    ) -> Result<GanetiConfig, String> {
        let config: GanetiConfig = match section {
            serde_json::Value::Null => GanetiConfig::default(),
            other => GanetiConfig::deserialize(other).map_err(|e| e.to_string())?,
        };
        for c in &config.clusters {
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                return Err(format!(
                    "cluster url {:?} must be http:// or https://",
                    c.url
                ));
            }
            if c.user.is_some() != c.password_file.is_some() {
                return Err(format!(
                    "cluster {}: give both user and password_file, or neither",
                    c.url
                ));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clusters_are_read_and_typos_refused() {
        let c = GanetiConfig::read(
            &json!({"clusters": [{"name": "c1", "url": "https://c1:5080", "user": "inv", "password_file": "/run/p", "timeout": "5s"}]}),
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(c.clusters[0].name.as_deref(), Some("c1"));
        assert_eq!(c.clusters[0].timeout, Duration::from_secs(5));
        assert!(
            GanetiConfig::read(&serde_json::Value::Null, &HashMap::new())
                .unwrap()
                .clusters
                .is_empty()
        );
        let err = GanetiConfig::read(
            &json!({"clusters": [{"url": "https://x", "usr": "a"}]}),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(err.contains("usr"), "{err}");
        assert!(
            GanetiConfig::read(&json!({"clusters": [{"url": "ftp://x"}]}), &HashMap::new())
                .is_err()
        );
        assert!(
            GanetiConfig::read(
                &json!({"clusters": [{"url": "https://x", "user": "a"}]}),
                &HashMap::new()
            )
            .is_err()
        );
    }
}
