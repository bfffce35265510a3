//! Every source the `inventory` binary collects from, registered by name: the
//! one place that lists the source crates, so that the binary, its
//! configuration and the generated documentation name no provider.

use std::sync::Arc;

use inventory_collector::Provider;
use inventory_model::KindDef;

/// Every provider, in the order their accounts are collected.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(inventory_source_aws::Aws),
        Arc::new(inventory_source_ganeti::Ganeti),
    ]
}

/// The provider of that name.
pub fn provider(name: &str) -> Option<Arc<dyn Provider>> {
    providers().into_iter().find(|p| p.name() == name)
}

/// How a kind is listed, in words, as its provider says.
pub fn listing(kind: &KindDef) -> String {
    provider(kind.source).map_or_else(|| kind.list.operation.to_owned(), |p| p.listing(kind))
}

/// `docs/kinds.md`.
pub fn kinds_markdown() -> String {
    inventory_model::catalogue::markdown(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_of_the_catalogue_has_its_provider() {
        for source in inventory_model::catalogue::sources() {
            assert!(provider(source).is_some(), "no provider for {source}");
        }
        let names: Vec<&str> = providers().iter().map(|p| p.name()).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique);
    }
}
