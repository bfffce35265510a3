//! Architecture invariants checked from the workspace's metadata (`cargo
//! metadata`; see docs/ARCHITECTURE.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

struct Package {
    /// The manifest's directory.
    dir: PathBuf,
    /// Normal (not dev or build) dependencies.
    deps: Vec<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Every workspace member but the test crate (test code may use anything).
fn packages() -> BTreeMap<String, Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "inventory-integration-tests")
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (
                p["name"].as_str().unwrap().to_owned(),
                Package {
                    dir: manifest.parent().unwrap().to_owned(),
                    deps,
                },
            )
        })
        .collect()
}

/// Every Rust file under a package's `src/`, with its text.
fn sources_of(p: &Package) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![p.dir.join("src")];
    while let Some(d) = stack.pop() {
        for f in std::fs::read_dir(&d).into_iter().flatten() {
            let path = f.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out
}

fn users_of(packages: &BTreeMap<String, Package>, dep: &str) -> Vec<String> {
    packages
        .iter()
        .filter(|(_, p)| p.deps.iter().any(|d| d == dep))
        .map(|(n, _)| n.clone())
        .collect()
}

#[test]
fn only_the_bus_talks_to_nats() {
    assert_eq!(users_of(&packages(), "async-nats"), ["inventory-bus"]);
}

#[test]
fn only_the_store_holds_sql() {
    let packages = packages();
    for db in ["tokio-postgres", "deadpool-postgres", "refinery"] {
        assert_eq!(users_of(&packages, db), ["inventory-store"], "{db}");
    }
}

#[test]
fn only_the_api_knows_http_types() {
    assert_eq!(users_of(&packages(), "actix-web"), ["inventory-api"]);
}

/// The API reads through `ReadStore`, which has no writes: it never names
/// the writer handle (`Store`), so it cannot apply a batch, migrate or drop a
/// schema.
#[test]
fn the_api_gets_a_read_only_store() {
    let packages = packages();
    for (path, text) in sources_of(&packages["inventory-api"]) {
        for (at, _) in text.match_indices("Store") {
            let before = text[..at].chars().next_back();
            let after = text[at + 5..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            assert!(
                word(before) || word(after),
                "{} names the store's writer handle",
                path.display()
            );
        }
    }
}

/// Libraries return error types callers can match on; `anyhow` (errors
/// with context, for people) is for the binary's edges.
#[test]
fn libraries_return_their_own_errors() {
    assert_eq!(users_of(&packages(), "anyhow"), ["inventory-cli"]);
}

#[test]
fn the_model_does_no_io() {
    let packages = packages();
    for dep in &packages["inventory-model"].deps {
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
            .contains(&dep.as_str()),
            "inventory-model depends on {dep}"
        );
    }
}

#[test]
fn collectors_never_read_postgres() {
    let packages = packages();
    for (name, p) in &packages {
        if name == "inventory-collector" || p.dir.starts_with(root().join("services/sources")) {
            assert!(!p.deps.iter().any(|d| d == "inventory-store"), "{name}");
        }
    }
}

/// Provider SDKs and HTTP clients are used by the source crates only
/// (`services/sources/<provider>/`), each by its own.
#[test]
fn only_source_crates_call_providers() {
    let packages = packages();
    let sources = root().join("services/sources");
    for (name, p) in &packages {
        let is_source = p.dir.starts_with(&sources);
        for dep in &p.deps {
            let client = dep.starts_with("aws-") || dep == "reqwest" || dep == "quick-xml";
            assert!(
                !client || is_source,
                "{name} depends on {dep}: provider clients belong in services/sources/"
            );
        }
    }
    assert_eq!(users_of(&packages, "aws-sdk-ec2"), ["inventory-source-aws"]);
}

/// Defect 10: the helper that writes parameters into SQL text is for `make
/// bench` only: behind the store's `bench` feature, which only the benchmark
/// crate turns on, and named by no service.
#[test]
fn the_sql_inlining_helper_is_only_for_benchmarks() {
    for (name, p) in &packages() {
        let manifest = std::fs::read_to_string(p.dir.join("Cargo.toml")).unwrap();
        assert!(
            !manifest.contains("\"bench\"") || name == "inventory-store",
            "{name} turns on the bench feature"
        );
        for (path, text) in sources_of(p) {
            assert!(
                path.ends_with("query.rs") || !text.contains("list_sql_inlined"),
                "{} uses the benchmark helper",
                path.display()
            );
        }
    }
    let store = std::fs::read_to_string(root().join("shared/store/src/query.rs")).unwrap();
    let at = store.find("pub fn list_sql_inlined").unwrap();
    assert!(
        store[..at]
            .trim_end()
            .ends_with("#[cfg(feature = \"bench\")]")
    );
}

/// Every error code a client can see is in the README's table.
#[test]
fn every_error_code_is_documented() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for code in inventory_model::ErrorCode::ALL {
        assert!(
            readme.contains(&format!("`{code}`")),
            "error code {code} is not in the README"
        );
    }
}
