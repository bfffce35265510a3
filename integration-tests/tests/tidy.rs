//! Architecture invariants checked from the manifests (see docs/ARCHITECTURE.md).

use std::collections::BTreeMap;
use std::path::Path;

/// Crate name → its normal dependencies, read from every workspace member's manifest.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut out = BTreeMap::new();
    for group in ["shared", "services"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let manifest =
                std::fs::read_to_string(entry.unwrap().path().join("Cargo.toml")).unwrap();
            let mut name = String::new();
            let mut deps = Vec::new();
            let mut section = String::new();
            for line in manifest.lines().map(str::trim) {
                if line.starts_with('[') {
                    section = line.to_owned();
                } else if section == "[package]" && line.starts_with("name") {
                    name = line.split('"').nth(1).unwrap().to_owned();
                } else if section == "[dependencies]" && !line.is_empty() {
                    let dep = line.split(['.', ' ', '=']).next().unwrap();
                    deps.push(dep.to_owned());
                }
            }
            out.insert(name, deps);
        }
    }
    out
}

fn users_of(deps: &BTreeMap<String, Vec<String>>, dep: &str) -> Vec<String> {
    deps.iter()
        .filter(|(_, d)| d.iter().any(|x| x == dep))
        .map(|(n, _)| n.clone())
        .collect()
}

#[test]
fn only_the_bus_talks_to_nats() {
    assert_eq!(users_of(&dependencies(), "async-nats"), ["inventory-bus"]);
}

#[test]
fn only_the_store_holds_sql() {
    let deps = dependencies();
    for db in ["tokio-postgres", "deadpool-postgres", "refinery"] {
        assert_eq!(users_of(&deps, db), ["inventory-store"], "{db}");
    }
}

#[test]
fn only_the_api_knows_http_types() {
    assert_eq!(users_of(&dependencies(), "actix-web"), ["inventory-api"]);
}

#[test]
fn the_model_does_no_io() {
    let deps = dependencies();
    let model = &deps["inventory-model"];
    for allowed in model {
        assert!(
            [
                "serde",
                "serde_json",
                "chrono",
                "thiserror",
                "xxhash-rust",
                "uuid",
                // Pure parsing of schedule periods and cron expressions.
                "humantime",
                "cron"
            ]
            .contains(&allowed.as_str()),
            "inventory-model depends on {allowed}"
        );
    }
}

#[test]
fn collectors_never_read_postgres() {
    let deps = dependencies();
    assert!(
        !deps["inventory-collector"]
            .iter()
            .any(|d| d == "inventory-store")
    );
}

#[test]
fn only_the_collector_calls_providers() {
    assert_eq!(
        users_of(&dependencies(), "aws-sdk-ec2"),
        ["inventory-collector"]
    );
}

/// Defect 10: the helper that writes parameters into SQL text is for `make
/// bench` only: behind the store's `bench` feature, which only the benchmark
/// crate turns on, and named by no service.
#[test]
fn the_sql_inlining_helper_is_only_for_benchmarks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for group in ["shared", "services"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let dir = entry.unwrap().path();
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            assert!(
                !manifest.contains("\"bench\"") || dir.ends_with("store"),
                "{} turns on the bench feature",
                dir.display()
            );
            let mut stack = vec![dir.join("src")];
            while let Some(d) = stack.pop() {
                for f in std::fs::read_dir(&d).into_iter().flatten() {
                    let path = f.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if !path.ends_with("query.rs") {
                        let text = std::fs::read_to_string(&path).unwrap_or_default();
                        assert!(
                            !text.contains("list_sql_inlined"),
                            "{} uses the benchmark helper",
                            path.display()
                        );
                    }
                }
            }
        }
    }
    let store = std::fs::read_to_string(root.join("shared/store/src/query.rs")).unwrap();
    let at = store.find("pub fn list_sql_inlined").unwrap();
    assert!(
        store[..at]
            .trim_end()
            .ends_with("#[cfg(feature = \"bench\")]")
    );
}
