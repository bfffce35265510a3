//! Configuration: defaults, then an optional YAML file (`--config` or
//! `INVENTORY_CONFIG`), then environment overrides with standard names where
//! they exist. Secrets (the database url) may come from a file and are never logged.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use inventory_collector::TaskSettings;
use inventory_model::{CollectRequest, Priority, ScheduleDef, duration};
use inventory_projector::housekeeping::{Retention, Window};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub nats: NatsConfig,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub collector: CollectorConfig,
    pub projector: ProjectorConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub retention: RetentionConfig,
    /// Periodic collections (`every: 1h` or `cron: "0 */6 * * *"`). None
    /// configured: one schedule `all` of every kind, every `collector.interval`.
    pub schedules: Vec<ScheduleDef>,
    /// How collectors run queued tasks.
    pub tasks: TaskSettings,
    /// Each source's own section (`aws:` …), checked by its provider; read
    /// from the file beside the sections above, not by serde.
    #[serde(skip)]
    pub sources: BTreeMap<String, serde_json::Value>,
}

/// History retention, applied by the projector's housekeeping schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// How often housekeeping runs (`1h`); `off` disables it.
    pub interval: String,
    /// Every kind: keep superseded versions / deleted resources this long
    /// (`90d`); absent: forever.
    pub versions: Option<String>,
    pub deleted: Option<String>,
    /// Per kind (plural name), overriding the two above.
    pub kinds: HashMap<String, WindowConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowConfig {
    pub versions: Option<String>,
    pub deleted: Option<String>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            interval: "1h".into(),
            versions: None,
            deleted: None,
            kinds: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    pub url: String,
    /// Namespaces every subject, stream and bucket.
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    /// Read the url from this file instead (keeps the password out of the config).
    pub url_file: Option<String>,
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub addr: String,
    pub workers: usize,
    /// How long `?after_task=` / `?min_seq=` wait for the projection (`30s`).
    pub read_wait: String,
    /// PostgreSQL cancels a query of the API after this long (`10s`): 503
    /// `query_timeout`.
    pub query_timeout: String,
    pub auth: AuthConfig,
}

/// `api.auth`: bearer tokens, configured by the SHA-256 of their secret.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub tokens: Vec<TokenConfig>,
    /// A YAML file holding more tokens (a list like `tokens`); also
    /// `INVENTORY_API_TOKENS_FILE`.
    pub tokens_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    /// Hex SHA-256 of the secret (`printf %s "$secret" | sha256sum`).
    pub sha256: Option<String>,
    /// A file holding it instead.
    pub sha256_file: Option<String>,
    pub scopes: Vec<inventory_api::auth::Scope>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Without `schedules`: a full collection (schedule `all`) this often,
    /// aligned to the epoch and fired once across instances; `off` disables it.
    pub interval: String,
    pub page_size: i32,
    pub concurrency: usize,
    /// Tries again of a scan that failed for a transient reason, within its
    /// collection, after `retry_delay`.
    pub scan_retries: u32,
    pub retry_delay: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorConfig {
    pub name: String,
    pub batch_size: usize,
}

/// `GET /metrics` of `inventory collector` and `inventory projector` (the
/// API and `inventory up` serve it on the API address).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to listen; `off` serves none.
    pub addr: String,
    /// The API's `/metrics` without a token (its default needs `read`).
    pub public: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            addr: "127.0.0.1:9464".into(),
            public: false,
        }
    }
}

impl MetricsConfig {
    /// The address to serve metrics on; `None` when switched off.
    pub fn addr(&self) -> Option<&str> {
        (self.addr != "off").then_some(self.addr.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "inventory".into(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "postgres://inventory@127.0.0.1:5432/inventory".into(),
            url_file: None,
            max_connections: 8,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            addr: "127.0.0.1:8080".into(),
            workers: 2,
            read_wait: "30s".into(),
            query_timeout: "10s".into(),
            auth: AuthConfig::default(),
        }
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            interval: "15m".into(),
            page_size: 1000,
            concurrency: 8,
            scan_retries: 2,
            retry_delay: "30s".into(),
        }
    }
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            name: "tables".into(),
            batch_size: 1000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
        }
    }
}

impl Config {
    /// Load from an optional file, then apply the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Config::load_with(file, &env)
    }

    pub fn load_with(file: Option<&Path>, env: &HashMap<String, String>) -> anyhow::Result<Config> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("failed to read config file {}", path.display()))?;
                Config::parse(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        // Every source checks its own section (absent: `null`), with the
        // environment's overrides.
        for provider in inventory_sources::providers() {
            let section = config.source(provider.name());
            provider.check(&section, env).map_err(|e| {
                let file = file
                    .map(|f| format!(" in {}", f.display()))
                    .unwrap_or_default();
                anyhow::anyhow!("invalid section {}{file}: {e}", provider.name())
            })?;
        }
        if let Some(path) = &config.database.url_file {
            config.database.url = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read database url file {path}"))?
                .trim()
                .to_owned();
        }
        config.interval()?;
        config.retry_delay()?;
        config.schedules()?;
        config.read_wait()?;
        config.query_timeout()?;
        config.auth()?;
        config.retention()?;
        Ok(config)
    }

    /// The YAML text: the sections above, and a section per source (an
    /// unknown top-level key is an error that names it).
    fn parse(text: &str) -> anyhow::Result<Config> {
        let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
        let mut sources = BTreeMap::new();
        if let Some(map) = doc.as_mapping_mut() {
            for provider in inventory_sources::providers() {
                if let Some(section) = map.remove(provider.name()) {
                    let section = serde_json::to_value(section).with_context(|| {
                        format!("section {} is not plain data", provider.name())
                    })?;
                    sources.insert(provider.name().to_owned(), section);
                }
            }
        }
        let mut config: Config = if doc.is_null() {
            Config::default()
        } else {
            serde_yaml_ng::from_value(doc).map_err(|e| {
                let names: Vec<&str> = inventory_sources::providers()
                    .iter()
                    .map(|p| p.name())
                    .collect();
                anyhow::anyhow!("{e} (or a source: {})", names.join(", "))
            })?
        };
        config.sources = sources;
        Ok(config)
    }

    /// A source's section (`null` when the file has none).
    pub fn source(&self, name: &str) -> serde_json::Value {
        self.sources.get(name).cloned().unwrap_or_default()
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> anyhow::Result<()> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        if let Some(v) = get("NATS_URL") {
            self.nats.url = v;
        }
        if let Some(v) = get("INVENTORY_SUBJECT_PREFIX") {
            self.nats.prefix = v;
        }
        if let Some(v) = get("DATABASE_URL") {
            self.database.url = v;
            self.database.url_file = None;
        }
        if let Some(v) = get("DATABASE_URL_FILE") {
            self.database.url_file = Some(v);
        }
        if let Some(v) = get("INVENTORY_API_ADDR") {
            self.api.addr = v;
        }
        if let Some(v) = get("INVENTORY_COLLECT_INTERVAL") {
            self.collector.interval = v;
        }
        if let Some(v) = get("INVENTORY_METRICS_ADDR") {
            self.metrics.addr = v;
        }
        if let Some(v) = get("INVENTORY_METRICS_PUBLIC") {
            self.metrics.public = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => bail!("INVENTORY_METRICS_PUBLIC must be true or false, not {v:?}"),
            };
        }
        if let Some(v) = get("INVENTORY_API_TOKENS_FILE") {
            self.api.auth.tokens_file = Some(v);
        }
        if let Some(v) = get("INVENTORY_LOG_FORMAT") {
            self.log.format = v;
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!("log format must be text or json, not {:?}", self.log.format);
        }
        Ok(())
    }

    /// The periodic collection interval; `None` when switched off.
    pub fn interval(&self) -> anyhow::Result<Option<Duration>> {
        duration::parse_or_off(&self.collector.interval)
            .context("invalid collection interval (try 15m or off)")
    }

    /// The schedules collectors keep: the configured ones, or else the full
    /// collection every `collector.interval` (unless that is `off`).
    pub fn schedules(&self) -> anyhow::Result<Vec<ScheduleDef>> {
        let mut defs = self.schedules.clone();
        if defs.is_empty() && self.interval()?.is_some() {
            defs.push(ScheduleDef {
                name: "all".into(),
                request: CollectRequest::of(
                    inventory_model::request::ALL,
                    inventory_model::request::ALL,
                ),
                every: Some(self.collector.interval.clone()),
                cron: None,
                priority: Priority::Low,
            });
        }
        for (i, def) in defs.iter().enumerate() {
            def.cadence().context("invalid schedule")?;
            if defs[..i].iter().any(|d| d.name == def.name) {
                bail!("schedule {} is defined more than once", def.name);
            }
        }
        Ok(defs)
    }

    /// How long reads that wait for the projection wait at most.
    pub fn read_wait(&self) -> anyhow::Result<Duration> {
        duration::parse(&self.api.read_wait).context("invalid api read wait (try 30s)")
    }

    /// The API's tokens (from `api.auth.tokens` and the tokens file; hashes
    /// read from their files) and whether `/metrics` is public.
    pub fn auth(&self) -> anyhow::Result<inventory_api::auth::Auth> {
        use inventory_api::auth::{Auth, Token};
        let mut entries = self.api.auth.tokens.clone();
        if let Some(path) = &self.api.auth.tokens_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read api tokens file {path}"))?;
            let more: Vec<TokenConfig> = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("invalid api tokens file {path}"))?;
            entries.extend(more);
        }
        let mut tokens = Vec::new();
        for t in entries {
            let hash = match (&t.sha256, &t.sha256_file) {
                (Some(h), None) => h.clone(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .with_context(|| format!("failed to read the hash of token {}", t.name))?,
                _ => bail!("token {} needs one of sha256 and sha256_file", t.name),
            };
            tokens.push(Token::from_hex(&t.name, &hash, t.scopes)?);
        }
        Ok(Auth::with_tokens(tokens)?.metrics_public(self.metrics.public))
    }

    /// How long a query of the API may run.
    pub fn query_timeout(&self) -> anyhow::Result<Duration> {
        duration::parse(&self.api.query_timeout).context("invalid api query timeout (try 10s)")
    }

    /// How long a failed scan waits before it is tried again.
    pub fn retry_delay(&self) -> anyhow::Result<Duration> {
        duration::parse(&self.collector.retry_delay).context("invalid retry delay (try 30s)")
    }

    /// Retention as the projector applies it.
    pub fn retention(&self) -> anyhow::Result<Retention> {
        let r = &self.retention;
        let window =
            |versions: &Option<String>, deleted: &Option<String>| -> anyhow::Result<Window> {
                let parse = |what: &str, v: &Option<String>| {
                    v.as_deref()
                        .map(|s| {
                            duration::parse(s)
                                .with_context(|| format!("invalid retention {what} (try 90d)"))
                        })
                        .transpose()
                };
                Ok(Window {
                    versions: parse("of versions", versions)?,
                    deleted: parse("of deleted resources", deleted)?,
                })
            };
        let default = window(&r.versions, &r.deleted)?;
        let mut kinds = HashMap::new();
        for (kind, w) in &r.kinds {
            let own = window(&w.versions, &w.deleted)?;
            kinds.insert(
                kind.clone(),
                Window {
                    versions: own.versions.or(default.versions),
                    deleted: own.deleted.or(default.deleted),
                },
            );
        }
        let every = duration::parse_or_off(&r.interval)
            .context("invalid retention interval (try 1h or off)")?;
        let retention = Retention {
            every,
            default,
            kinds,
        };
        let unknown = retention.unknown_kinds();
        if !unknown.is_empty() {
            bail!("retention names unknown kinds: {}", unknown.join(", "));
        }
        Ok(retention)
    }

    /// The database url without its password, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact(&self.database.url)
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_read_per_kind_with_defaults() {
        let dir = std::env::temp_dir().join(format!("inventory-retention-{}", std::process::id()));
        std::fs::write(
            &dir,
            "retention:\n  interval: 30m\n  versions: 90d\n  kinds:\n    instances: { deleted: 7d }\n",
        )
        .unwrap();
        let config = Config::load_with(Some(&dir), &HashMap::new()).unwrap();
        let r = config.retention().unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(r.every, Some(Duration::from_secs(1800)));
        assert_eq!(r.default.versions, Some(90 * day));
        assert_eq!(r.default.deleted, None);
        assert_eq!(r.kinds["instances"].deleted, Some(7 * day));
        assert_eq!(
            r.kinds["instances"].versions,
            Some(90 * day),
            "inherits the default"
        );
        std::fs::write(&dir, "retention:\n  kinds:\n    teapots: { deleted: 7d }\n").unwrap();
        assert!(Config::load_with(Some(&dir), &HashMap::new()).is_err());
        std::fs::write(&dir, "retention:\n  versions: soon\n").unwrap();
        assert!(Config::load_with(Some(&dir), &HashMap::new()).is_err());
        let _ = std::fs::remove_file(&dir);
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn api_tokens_come_from_the_file_its_tokens_file_and_hash_files() {
        let dir = std::env::temp_dir().join(format!("inv-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hash = "a".repeat(64);
        let hash_file = dir.join("ops.sha256");
        std::fs::write(&hash_file, format!("{}  -\n", "b".repeat(64))).unwrap();
        let more = dir.join("tokens.yaml");
        std::fs::write(
            &more,
            format!(
                "- name: extra\n  sha256: {}\n  scopes: [collect]\n",
                "c".repeat(64)
            ),
        )
        .unwrap();
        let file = dir.join("inventory.yaml");
        std::fs::write(
            &file,
            format!(
                "api:\n  auth:\n    tokens:\n      - {{name: ro, sha256: {hash}, scopes: [read]}}\n      - {{name: ops, sha256_file: {}, scopes: [admin]}}\nmetrics:\n  public: true\n",
                hash_file.display()
            ),
        )
        .unwrap();
        let c = Config::load_with(Some(&file), &env(&[])).unwrap();
        assert!(!c.auth().unwrap().is_anonymous());
        assert!(c.metrics.public);
        let c = Config::load_with(
            Some(&file),
            &env(&[
                ("INVENTORY_API_TOKENS_FILE", more.to_str().unwrap()),
                ("INVENTORY_METRICS_PUBLIC", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.api.auth.tokens_file.as_deref(), more.to_str());
        assert!(!c.metrics.public);
        // A bad hash, a token with both or neither hash: the config is refused.
        for bad in [
            "api:\n  auth:\n    tokens: [{name: x, sha256: beef, scopes: [read]}]\n".to_owned(),
            "api:\n  auth:\n    tokens: [{name: x, scopes: [read]}]\n".to_owned(),
            format!("api:\n  auth:\n    tokens: [{{name: x, sha256: {hash}, scopes: [root]}}]\n"),
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(Config::load_with(Some(&file), &env(&[])).is_err());
        }
        assert!(
            Config::load_with(None, &env(&[]))
                .unwrap()
                .auth()
                .unwrap()
                .is_anonymous()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let dir = std::env::temp_dir().join(format!("inv-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("inventory.yaml");
        std::fs::write(&file, "api:\n  addr: 0.0.0.0:9000\naws:\n  regions: [eu-west-1]\ncollector:\n  interval: 1h\n").unwrap();
        let c = Config::load_with(Some(&file), &env(&[])).unwrap();
        assert_eq!(c.api.addr, "0.0.0.0:9000");
        assert_eq!(c.source("aws")["regions"], serde_json::json!(["eu-west-1"]));
        assert_eq!(c.interval().unwrap(), Some(Duration::from_secs(3600)));
        let c = Config::load_with(
            Some(&file),
            &env(&[
                ("INVENTORY_API_ADDR", "127.0.0.1:1"),
                ("INVENTORY_COLLECT_INTERVAL", "off"),
                ("NATS_URL", "nats://n:1"),
                ("DATABASE_URL", "postgres://u:secret@h/db"),
            ]),
        )
        .unwrap();
        assert_eq!(c.api.addr, "127.0.0.1:1");
        assert_eq!(c.interval().unwrap(), None);
        assert_eq!(c.nats.url, "nats://n:1");
        assert_eq!(c.database_url_redacted(), "postgres://u:***@h/db");
        // Metrics of the collector and projector: default, file, environment, off.
        assert_eq!(c.metrics.addr(), Some("127.0.0.1:9464"));
        std::fs::write(&file, "metrics:\n  addr: 0.0.0.0:9500\n").unwrap();
        let c = Config::load_with(Some(&file), &env(&[])).unwrap();
        assert_eq!(c.metrics.addr(), Some("0.0.0.0:9500"));
        let c = Config::load_with(Some(&file), &env(&[("INVENTORY_METRICS_ADDR", "off")])).unwrap();
        assert_eq!(c.metrics.addr(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn schedules_and_task_settings_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("inv-schedules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("inventory.yaml");
        std::fs::write(
            &file,
            r#"
schedules:
  - { name: vpcs-often, request: { source: aws, kind: vpcs, regions: [eu-west-1] }, every: 5m, priority: high }
  - { name: all-6h, request: { source: aws, kind: all }, cron: "0 */6 * * *" }
tasks: { concurrency: 4, max_attempts: 3, backoff: 10s, ack_wait: 2m, fairness: 5 }
"#,
        )
        .unwrap();
        let c = Config::load_with(Some(&file), &env(&[])).unwrap();
        let s = c.schedules().unwrap();
        assert_eq!(s.len(), 2, "configured schedules replace the default one");
        assert_eq!(s[0].priority, Priority::High);
        assert_eq!(s[0].request.regions, ["eu-west-1"]);
        assert_eq!(s[1].cron.as_deref(), Some("0 */6 * * *"));
        assert_eq!(c.tasks.concurrency, 4);
        assert_eq!(c.tasks.ack_wait, Duration::from_secs(120));
        assert_eq!(c.tasks.poll, TaskSettings::default().poll);

        let default = Config::load_with(None, &env(&[]))
            .unwrap()
            .schedules()
            .unwrap();
        assert_eq!(default.len(), 1);
        assert_eq!(
            (default[0].name.as_str(), default[0].every.as_deref()),
            ("all", Some("15m"))
        );
        let off = Config::load_with(None, &env(&[("INVENTORY_COLLECT_INTERVAL", "off")])).unwrap();
        assert!(off.schedules().unwrap().is_empty());

        for bad in [
            "schedules: [{ name: x, request: { source: aws, kind: all } }]",
            "schedules: [{ name: x, request: { source: aws, kind: teapots }, every: 1h }]",
            "schedules: [{ name: x, request: { source: aws, kind: all }, cron: '* * *' }]",
            "schedules: [{ name: x, request: { source: aws, kind: all }, every: 1h }, { name: x, request: { source: aws, kind: all }, every: 2h }]",
            "tasks: { backoff: soon }",
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(Config::load_with(Some(&file), &env(&[])).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A source's section goes to its provider as it is (the AWS crate's
    /// tests read it), and is checked when the configuration is loaded.
    #[test]
    fn source_sections_reach_their_providers() {
        let dir = std::env::temp_dir().join(format!("inv-accounts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("inventory.yaml");
        std::fs::write(
            &file,
            r#"
aws:
  credentials:
    base: { type: default, profile: ops }
  accounts:
    - { id: "222222222222", credential: base, regions: [eu-west-1, us-east-1] }
collector: { scan_retries: 1, retry_delay: 5s }
"#,
        )
        .unwrap();
        let c = Config::load_with(Some(&file), &env(&[])).unwrap();
        assert_eq!(c.source("aws")["accounts"][0]["id"], "222222222222");
        assert_eq!(c.retry_delay().unwrap(), Duration::from_secs(5));
        assert!(c.source("gcp").is_null());
        std::fs::write(&file, "aws:\n  credentials:\n    x: { type: telepathy }\n").unwrap();
        assert!(Config::load_with(Some(&file), &env(&[])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Defect 9: `externl_id: abc` in an `assume_role` credential passed
    /// silently, while the other sections rejected unknown keys.
    #[test]
    fn a_typo_in_any_section_is_an_error_naming_the_key_and_the_file() {
        let dir = std::env::temp_dir().join(format!("inv-typos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("inventory.yaml");
        for (text, key) in [
            (
                "aws:\n  credentials:\n    audit: { type: assume_role, source: base, role_arn: arn, externl_id: abc }\n",
                "externl_id",
            ),
            (
                "aws:\n  credentials:\n    base: { type: default, profle: ops }\n",
                "profle",
            ),
            (
                "aws:\n  accounts: [{ credential: x, region: [eu-west-1] }]\n",
                "region",
            ),
            ("aws:\n  pacing: { rate: 1, burts: 2 }\n", "burts"),
            ("aws:\n  regoins: [eu-west-1]\n", "regoins"),
            ("api:\n  adress: 0.0.0.0:1\n", "adress"),
            ("tasks: { concurency: 2 }\n", "concurency"),
            (
                "retention:\n  kinds:\n    instances: { delted: 7d }\n",
                "delted",
            ),
            (
                "schedules: [{ name: x, request: { source: aws, kind: all, region: [a] }, every: 1h }]\n",
                "region",
            ),
            ("colector: { interval: 1h }\n", "colector"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = format!(
                "{:#}",
                Config::load_with(Some(&file), &env(&[])).unwrap_err()
            );
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.contains(&file.display().to_string()), "{text}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Config::load_with(None, &env(&[("INVENTORY_COLLECT_INTERVAL", "soon")])).is_err());
        assert!(Config::load_with(None, &env(&[("INVENTORY_LOG_FORMAT", "xml")])).is_err());
        assert!(
            Config::load_with(Some(Path::new("/nonexistent/inventory.yaml")), &env(&[])).is_err()
        );
    }
}
