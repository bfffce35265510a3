//! Every list operation the Ganeti kinds name, bound to its RAPI resource:
//! RAPI lists a whole collection in one answer (`?bulk=1`: with every field),
//! so nothing pages. A test checks that every Ganeti kind has its binding.

/// The resource of `operation`, if it has one.
pub(crate) fn path(operation: &str) -> Option<&'static str> {
    BINDINGS
        .iter()
        .find(|(op, _)| *op == operation)
        .map(|(_, path)| *path)
}

static BINDINGS: &[(&str, &str)] = &[
    ("instances", "/2/instances?bulk=1"),
    ("nodes", "/2/nodes?bulk=1"),
    ("networks", "/2/networks?bulk=1"),
    ("groups", "/2/groups?bulk=1"),
];

/// Where the cluster says who it is.
pub(crate) const INFO: &str = "/2/info";

#[cfg(test)]
mod tests {
    use super::*;
    use inventory_model::catalogue::ganeti;

    #[test]
    fn every_ganeti_kind_has_its_binding_and_every_binding_a_kind() {
        for kind in ganeti::KINDS {
            assert!(
                path(kind.list.operation).is_some(),
                "{} has no binding",
                kind.name
            );
        }
        for (op, _) in BINDINGS {
            assert!(
                ganeti::KINDS.iter().any(|k| k.list.operation == *op),
                "{op} lists no kind"
            );
        }
    }
}
