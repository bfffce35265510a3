//! Named credentials (config `aws.credentials`) and the accounts that use them
//! (`aws.accounts`). Secrets are read from files and never logged.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::web_identity_token::{StaticConfiguration, WebIdentityTokenCredentialsProvider};
use aws_sdk_ec2::config::{Credentials, SharedCredentialsProvider};
use futures::future::BoxFuture;
use serde::Deserialize;

use inventory_collector::CollectError;

/// How to obtain one named credential.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSpec {
    /// The SDK's default chain (environment, shared profile files, web identity
    /// from the environment, container and instance metadata), optionally with
    /// a named profile.
    Default {
        #[serde(default)]
        profile: Option<String>,
    },
    /// Static keys, each read from a file.
    Static {
        access_key_id_file: PathBuf,
        secret_access_key_file: PathBuf,
        #[serde(default)]
        session_token_file: Option<PathBuf>,
    },
    /// A role assumed with another named credential.
    AssumeRole {
        source: String,
        role_arn: String,
        #[serde(default)]
        external_id: Option<String>,
        #[serde(default)]
        session_name: Option<String>,
    },
    /// A role assumed with a web identity token read from a file (STS
    /// `AssumeRoleWithWebIdentity`; the STS endpoint comes from the environment).
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        #[serde(default)]
        session_name: Option<String>,
    },
}

/// One account to collect.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The account id the credential must resolve to (STS `GetCallerIdentity`);
    /// absent: whatever it resolves to.
    #[serde(default)]
    pub id: Option<String>,
    /// The name of an entry of `aws.credentials`.
    pub credential: String,
    /// Regions to scan; empty: every region enabled for the account.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Left out of "every enabled region".
    #[serde(default)]
    pub excluded_regions: Vec<String>,
    /// Another endpoint for this account's EC2 and STS calls (a VPC endpoint,
    /// a proxy, a test server).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

fn credential_error(name: &str, message: impl std::fmt::Display) -> CollectError {
    CollectError::Credentials(format!("credential {name:?}: {message}"))
}

fn read_secret(name: &str, what: &str, path: &PathBuf) -> Result<String, CollectError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        credential_error(
            name,
            format_args!("cannot read {what} from {}: {e}", path.display()),
        )
    })?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(credential_error(
            name,
            format_args!("{what} file {} is empty", path.display()),
        ));
    }
    Ok(text)
}

/// The provider for credential `name`, built on `base` (region, endpoint and
/// HTTP client for the STS calls a role needs).
pub fn provider<'a>(
    specs: &'a BTreeMap<String, CredentialSpec>,
    name: &'a str,
    base: &'a SdkConfig,
    depth: usize,
) -> BoxFuture<'a, Result<SharedCredentialsProvider, CollectError>> {
    Box::pin(async move {
        if depth > 8 {
            return Err(credential_error(name, "assume_role sources form a cycle"));
        }
        let spec = specs
            .get(name)
            .ok_or_else(|| credential_error(name, "is not defined in aws.credentials"))?;
        Ok(match spec {
            CredentialSpec::Default { profile } => {
                let mut chain = DefaultCredentialsChain::builder();
                if let Some(region) = base.region() {
                    chain = chain.region(region.clone());
                }
                if let Some(p) = profile {
                    chain = chain.profile_name(p);
                }
                SharedCredentialsProvider::new(chain.build().await)
            }
            CredentialSpec::Static {
                access_key_id_file,
                secret_access_key_file,
                session_token_file,
            } => {
                let key = read_secret(name, "access key id", access_key_id_file)?;
                let secret = read_secret(name, "secret access key", secret_access_key_file)?;
                let token = session_token_file
                    .as_ref()
                    .map(|p| read_secret(name, "session token", p))
                    .transpose()?;
                SharedCredentialsProvider::new(Credentials::new(
                    key,
                    secret,
                    token,
                    None,
                    "inventory-static",
                ))
            }
            CredentialSpec::AssumeRole {
                source,
                role_arn,
                external_id,
                session_name,
            } => {
                let inner = provider(specs, source, base, depth + 1).await?;
                let mut builder = AssumeRoleProvider::builder(role_arn)
                    .session_name(session_name.clone().unwrap_or_else(|| "inventory".into()))
                    .configure(base);
                if let Some(id) = external_id {
                    builder = builder.external_id(id);
                }
                SharedCredentialsProvider::new(builder.build_from_provider(inner).await)
            }
            CredentialSpec::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => {
                let conf = ProviderConfig::without_region()
                    .with_region(base.region().cloned())
                    .with_behavior_version(Some(BehaviorVersion::latest()));
                SharedCredentialsProvider::new(
                    WebIdentityTokenCredentialsProvider::builder()
                        .configure(&conf)
                        .static_configuration(StaticConfiguration {
                            web_identity_token_file: token_file.clone(),
                            role_arn: role_arn.clone(),
                            session_name: session_name
                                .clone()
                                .unwrap_or_else(|| "inventory".into()),
                        })
                        .build(),
                )
            }
        })
    })
}

/// Check the graph of credentials before any call: every reference resolves and
/// no role assumes itself through others.
pub fn validate(
    specs: &BTreeMap<String, CredentialSpec>,
    accounts: &[AccountSpec],
) -> Result<(), CollectError> {
    for account in accounts {
        let mut name = account.credential.as_str();
        let mut seen = Vec::new();
        loop {
            if seen.contains(&name) {
                return Err(credential_error(name, "assume_role sources form a cycle"));
            }
            seen.push(name);
            match specs.get(name) {
                None => {
                    return Err(credential_error(name, "is not defined in aws.credentials"));
                }
                Some(CredentialSpec::AssumeRole { source, .. }) => name = source,
                Some(_) => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(source: &str) -> CredentialSpec {
        CredentialSpec::AssumeRole {
            source: source.into(),
            role_arn: "arn:aws:iam::111111111111:role/inventory".into(),
            external_id: None,
            session_name: None,
        }
    }

    fn account(credential: &str) -> AccountSpec {
        AccountSpec {
            id: None,
            credential: credential.into(),
            regions: vec![],
            excluded_regions: vec![],
            endpoint_url: None,
        }
    }

    #[test]
    fn references_must_resolve_without_cycles() {
        let mut specs = BTreeMap::new();
        specs.insert(
            "base".to_string(),
            CredentialSpec::Default { profile: None },
        );
        specs.insert("audit".to_string(), role("base"));
        specs.insert("loop-a".to_string(), role("loop-b"));
        specs.insert("loop-b".to_string(), role("loop-a"));
        assert!(validate(&specs, &[account("audit"), account("base")]).is_ok());
        let e = validate(&specs, &[account("missing")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "credentials rejected: credential \"missing\": is not defined in aws.credentials"
        );
        assert!(
            validate(&specs, &[account("loop-a")])
                .unwrap_err()
                .to_string()
                .contains("cycle")
        );
    }

    #[test]
    fn static_keys_come_from_files_and_missing_files_name_the_credential() {
        let dir = std::env::temp_dir().join(format!("inventory-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("id"), "AKIDEXAMPLE\n").unwrap();
        let spec = CredentialSpec::Static {
            access_key_id_file: dir.join("id"),
            secret_access_key_file: dir.join("nope"),
            session_token_file: None,
        };
        let mut specs = BTreeMap::new();
        specs.insert("ci".to_string(), spec);
        let base = SdkConfig::builder().build();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(provider(&specs, "ci", &base, 0)).err().unwrap();
        assert!(
            err.to_string()
                .contains("credential \"ci\": cannot read secret access key"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
