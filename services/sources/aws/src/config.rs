//! The `aws:` section of the configuration (and `INVENTORY_AWS_REGIONS`).

use std::collections::{BTreeMap, HashMap};

use inventory_collector::Pacing;
use serde::Deserialize;

use crate::credentials::{AccountSpec, CredentialSpec};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// Regions to scan for accounts that name none; empty: every enabled region.
    pub regions: Vec<String>,
    /// Left out of "every enabled region", for every account.
    pub excluded_regions: Vec<String>,
    /// Named credentials the accounts use.
    pub credentials: BTreeMap<String, CredentialSpec>,
    /// Accounts to collect; empty: one account, the SDK's default chain.
    pub accounts: Vec<AccountSpec>,
    /// Rate limits and retries of provider calls.
    pub pacing: Pacing,
}

impl AwsConfig {
    /// The section as configured (`null`: absent), then the environment.
    pub fn read(
        section: &serde_json::Value,
        env: &HashMap<String, String>,
    ) -> Result<AwsConfig, String> {
        let mut config: AwsConfig = match section {
            serde_json::Value::Null => AwsConfig::default(),
            other => AwsConfig::deserialize(other).map_err(|e| e.to_string())?,
        };
        if let Some(v) = env.get("INVENTORY_AWS_REGIONS").filter(|v| !v.is_empty()) {
            config.regions = v
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
        }
        crate::credentials::validate(&config.credentials, &config.accounts)
            .map_err(|e| e.to_string())?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn accounts_credentials_and_pacing_are_read() {
        let section = json!({
            "excluded_regions": ["ap-south-2"],
            "credentials": {
                "base": {"type": "default", "profile": "ops"},
                "keys": {"type": "static", "access_key_id_file": "/run/secrets/id", "secret_access_key_file": "/run/secrets/key"},
                "audit": {"type": "assume_role", "source": "base", "role_arn": "arn:aws:iam::222222222222:role/inventory", "external_id": "xyz"},
                "pod": {"type": "web_identity", "role_arn": "arn:aws:iam::333333333333:role/r", "token_file": "/var/run/token"}
            },
            "accounts": [
                {"id": "222222222222", "credential": "audit", "regions": ["eu-west-1", "us-east-1"]},
                {"credential": "keys", "excluded_regions": ["us-west-1"]}
            ],
            "pacing": {"rate": 2.5, "burst": 4, "base_backoff": "50ms"}
        });
        let c = AwsConfig::read(&section, &HashMap::new()).unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.accounts[0].id.as_deref(), Some("222222222222"));
        assert_eq!(c.accounts[0].regions, ["eu-west-1", "us-east-1"]);
        assert_eq!(c.accounts[1].excluded_regions, ["us-west-1"]);
        assert_eq!(
            c.credentials["audit"],
            CredentialSpec::AssumeRole {
                source: "base".into(),
                role_arn: "arn:aws:iam::222222222222:role/inventory".into(),
                external_id: Some("xyz".into()),
                session_name: None,
            }
        );
        assert_eq!(
            c.credentials["base"],
            CredentialSpec::Default {
                profile: Some("ops".into())
            }
        );
        assert_eq!(c.pacing.rate, 2.5);
        assert_eq!(c.pacing.base_backoff, Duration::from_millis(50));
        assert_eq!(c.pacing.max_attempts, Pacing::default().max_attempts);
        let bad = json!({"credentials": {"x": {"type": "telepathy"}}});
        assert!(AwsConfig::read(&bad, &HashMap::new()).is_err());
    }

    #[test]
    fn the_section_and_the_environment_are_read_and_typos_refused() {
        let env = HashMap::from([(
            "INVENTORY_AWS_REGIONS".to_owned(),
            "us-east-1, eu-west-1".to_owned(),
        )]);
        let c = AwsConfig::read(&json!({"excluded_regions": ["ap-east-1"]}), &env).unwrap();
        assert_eq!(c.regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(c.excluded_regions, ["ap-east-1"]);
        let err = AwsConfig::read(&json!({"regoins": ["x"]}), &HashMap::new()).unwrap_err();
        assert!(err.contains("regoins"), "{err}");
        let err = AwsConfig::read(
            &json!({"credentials": {"a": {"type": "assume_role", "source": "b", "role_arn": "r", "externl_id": "x"}}}),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(err.contains("externl_id"), "{err}");
        let err = AwsConfig::read(
            &json!({"accounts": [{"credential": "nobody"}]}),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(err.contains("nobody"), "{err}");
    }
}
