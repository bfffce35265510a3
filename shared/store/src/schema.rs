//! The tables of the kind catalogue as SQL, generated: `inventory schema`
//! prints it, and the newest `migrations/V<n>__catalogue.sql` must be exactly
//! this text (a test regenerates and compares it). Adding a kind is adding
//! its definition and committing the regenerated file as the next migration.
//!
//! The text is idempotent (`IF NOT EXISTS` throughout), so each regeneration
//! is a complete migration of its own: it creates what is new (kinds, columns,
//! links) and leaves what exists.

use std::fmt::Write;

use inventory_model::{KINDS, KindDef};

use crate::sql::key_columns;

/// Columns every kind table has after its typed ones.
const ROW: &str = "tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, \
     first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, \
     scan_id text NOT NULL, seq bigint NOT NULL";

/// Columns every history table has after its typed ones.
const VERSION: &str = "tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, \
     scan_id text NOT NULL, seq bigint NOT NULL, \
     change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), \
     valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, \
     links jsonb NOT NULL DEFAULT '{}'";

fn kind_ddl(out: &mut String, kind: &KindDef) {
    let t = kind.table;
    let keys = key_columns(kind);
    let key_defs: Vec<String> = keys.iter().map(|k| format!("{k} text NOT NULL")).collect();
    let pk = keys.join(", ");
    let _ = writeln!(out, "\n-- {}/{}", kind.source, kind.plural);
    for (table, rest, key) in [
        (t.to_owned(), ROW, pk.clone()),
        (format!("{t}_version"), VERSION, format!("{pk}, seq")),
    ] {
        let _ = writeln!(
            out,
            "CREATE TABLE IF NOT EXISTS {table} ({}, {rest}, PRIMARY KEY ({key}));",
            key_defs.join(", ")
        );
        if !kind.columns.is_empty() {
            let adds: Vec<String> = kind
                .columns
                .iter()
                .map(|c| format!("ADD COLUMN IF NOT EXISTS {} {}", c.name, c.ty.sql()))
                .collect();
            let _ = writeln!(out, "ALTER TABLE {table} {};", adds.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "CREATE INDEX IF NOT EXISTS {t}_id_idx ON {t} ({});",
        kind.id_column
    );
    let _ = writeln!(
        out,
        "CREATE INDEX IF NOT EXISTS {t}_version_seq_idx ON {t}_version (seq);"
    );
    let _ = writeln!(
        out,
        "CREATE INDEX IF NOT EXISTS {t}_version_valid_to_idx ON {t}_version (valid_to) WHERE valid_to IS NOT NULL;"
    );
    for link in kind.links {
        let l = link.table;
        let _ = writeln!(
            out,
            "CREATE TABLE IF NOT EXISTS {l} PARTITION OF link FOR VALUES IN ('{l}');"
        );
    }
}

/// The catalogue's tables, links and histories as an idempotent migration.
pub fn catalogue_ddl() -> String {
    let mut out = String::from(
        "-- Generated from the kind catalogue (shared/model/src/catalogue/) by\n\
         -- `inventory schema`: do not edit. A test fails when the newest\n\
         -- V<n>__catalogue.sql and the catalogue disagree. Idempotent: each kind's\n\
         -- table and history, their columns, and a partition of `link` per link.\n",
    );
    for kind in KINDS.iter() {
        kind_ddl(&mut out, kind);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest `V<n>__catalogue.sql` of `migrations/`.
    fn newest_catalogue_migration() -> (String, String) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
        let newest = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with("__catalogue.sql"))
            .max_by_key(|n| n[1..n.find("__").unwrap()].parse::<u32>().unwrap())
            .expect("a generated catalogue migration");
        let text = std::fs::read_to_string(format!("{dir}/{newest}")).unwrap();
        (newest, text)
    }

    #[test]
    fn the_newest_catalogue_migration_is_the_catalogue() {
        let (name, text) = newest_catalogue_migration();
        assert!(
            text == catalogue_ddl(),
            "migrations/{name} differs from the catalogue: commit `inventory schema` \
             as the next migration (migrations/V<n+1>__catalogue.sql)"
        );
    }

    #[test]
    fn every_kind_link_and_history_is_in_it() {
        let ddl = catalogue_ddl();
        for kind in KINDS.iter() {
            assert!(ddl.contains(&format!("CREATE TABLE IF NOT EXISTS {} (", kind.table)));
            assert!(ddl.contains(&format!(
                "CREATE TABLE IF NOT EXISTS {}_version (",
                kind.table
            )));
            for c in kind.columns {
                assert!(ddl.contains(&format!(
                    "ADD COLUMN IF NOT EXISTS {} {}",
                    c.name,
                    c.ty.sql()
                )));
            }
            for l in kind.links {
                assert!(ddl.contains(&format!(
                    "{} PARTITION OF link FOR VALUES IN ('{}')",
                    l.table, l.table
                )));
            }
        }
    }
}
