//! A provider as the collector knows it before it has accounts: its name,
//! its configuration section, and how it makes its accounts from that. Each
//! source crate implements it; the binary lists them (`inventory-sources`).

use std::collections::HashMap;

use futures::future::BoxFuture;
use inventory_model::KindDef;

use crate::{Account, CollectError};

pub trait Provider: Send + Sync + 'static {
    /// Its name: the `source` of its kinds, and its configuration section.
    fn name(&self) -> &'static str;

    /// Check its configuration section (`null` when the file has none) with
    /// the environment, when the configuration is loaded: an error names
    /// what is wrong (an unknown key, a bad value).
    fn check(
        &self,
        section: &serde_json::Value,
        env: &HashMap<String, String>,
    ) -> Result<(), String>;

    /// Its accounts (none when it is not configured and has no default).
    fn accounts<'a>(
        &'a self,
        section: &'a serde_json::Value,
        env: &'a HashMap<String, String>,
    ) -> BoxFuture<'a, Result<Vec<Account>, CollectError>>;

    /// How it lists one of its kinds, in words (`docs/kinds.md`).
    fn listing(&self, kind: &KindDef) -> String {
        kind.list.operation.to_owned()
    }
}
