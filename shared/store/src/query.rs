//! Read queries for the API besides lists (see `list.rs`): single lookups and
//! table checksums.

use chrono::{DateTime, Utc};
use inventory_model::{KINDS, KindDef};
use serde_json::Value;

#[cfg(feature = "bench")]
use crate::ListQuery;
use crate::list::valid_at;
use crate::{ReadStore, Store, StoreError};

/// Result of looking a resource up by its id.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    None,
    One(Value),
    /// The id exists in several scopes: the caller must narrow by account or region.
    Many(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChecksum {
    pub table: String,
    pub rows: i64,
    pub digest: String,
}

impl ReadStore {
    /// Look a resource up by id, optionally narrowed by account and region.
    /// Deleted resources are found too (their `deleted_at` is set). With `at`,
    /// the version valid at that instant, shaped like a row (a deletion version
    /// has `deleted_at`, its last state, and `change`).
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "get"))]
    pub async fn get(
        &self,
        kind: &'static KindDef,
        id: &str,
        account_id: Option<&str>,
        region: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> Result<Found, StoreError> {
        let region_pred = if kind.regional() {
            "AND ($3::text IS NULL OR t.region = $3)"
        } else {
            "AND $3::text IS NULL"
        };
        let sql = match at {
            None => format!(
                "SELECT to_jsonb(t) - 'seq' - 'search_doc' - 'search_text' FROM {} t WHERE t.{} = $1 \
                 AND ($2::text IS NULL OR t.account_id = $2) {region_pred} \
                 AND $4::text IS NULL LIMIT 20",
                kind.table, kind.id_column
            ),
            Some(_) => format!(
                "SELECT to_jsonb(t) - 'seq' - 'links' - 'valid_to' - 'request_id' - 'trace_id' \
                 || jsonb_build_object('deleted_at', CASE WHEN t.change = 'deleted' THEN t.valid_from END) \
                 FROM {}_version t WHERE t.{} = $1 \
                 AND ($2::text IS NULL OR t.account_id = $2) {region_pred} AND {} LIMIT 20",
                kind.table,
                kind.id_column,
                valid_at("t", 4)
            ),
        };
        let at = at.map(|t| t.to_rfc3339());
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&sql).await?;
        let mut rows: Vec<Value> = client
            .query(&stmt, &[&id, &account_id, &region, &at])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(match rows.len() {
            0 => Found::None,
            1 => Found::One(rows.pop().expect("one row")),
            _ => Found::Many(rows),
        })
    }

    /// Order-independent checksum over a table's rows (count and digest).
    pub async fn checksum(&self, table: &str) -> Result<TableChecksum, StoreError> {
        if !Store::projection_tables().iter().any(|t| t == table) {
            return Err(StoreError::UnknownKind(table.to_owned()));
        }
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') \
                     FROM (SELECT md5({}::text) AS h FROM {table} t) s",
                    row_json(table)
                ),
                &[],
            )
            .await?;
        Ok(TableChecksum {
            table: table.to_owned(),
            rows: row.get(0),
            digest: row.get(1),
        })
    }

    /// Every row of a projection table as JSON, in a stable order: where two
    /// checksums differ, this shows which rows.
    pub async fn table_rows(&self, table: &str) -> Result<Vec<Value>, StoreError> {
        if !Store::projection_tables().iter().any(|t| t == table) {
            return Err(StoreError::UnknownKind(table.to_owned()));
        }
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {row} FROM {table} t ORDER BY md5({row}::text)",
                    row = row_json(table)
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// A projection row as JSON, for checksums: what the events decide. The
/// change log's positions come from a sequence, which a retried batch leaves
/// gaps in: their order is the events', their numbers are not.
fn row_json(table: &str) -> &'static str {
    if table == "change_log" {
        "(to_jsonb(t) - 'position')"
    } else {
        // the search columns are made from the others
        "(to_jsonb(t) - 'search_doc' - 'search_text')"
    }
}

impl Store {
    /// The SQL a list runs with its parameters written in as literals, for
    /// benchmarks and EXPLAIN (e.g. pgbench running exactly what the API runs).
    /// Behind the `bench` feature: text with inlined values is never run by
    /// the services.
    #[cfg(feature = "bench")]
    pub fn list_sql_inlined(q: &ListQuery) -> Result<String, StoreError> {
        let (mut sql, params) = crate::list::list_sql(q)?;
        let limit = format!("{}", q.limit + 1);
        let literals: Vec<String> = params
            .iter()
            .map(|p| format!("'{}'", p.replace('\'', "''")))
            .chain([limit])
            .collect();
        // Highest numbers first, so that $1 does not match the start of $10.
        for (i, lit) in literals.iter().enumerate().rev() {
            sql = sql.replace(&format!("${}", i + 1), lit);
        }
        Ok(sql)
    }

    /// Every table the projection writes (kinds, their histories, links,
    /// scans, the change log).
    pub fn projection_tables() -> Vec<String> {
        KINDS
            .iter()
            .flat_map(|k| [k.table.to_owned(), format!("{}_version", k.table)])
            .chain(
                KINDS
                    .iter()
                    .flat_map(|k| k.links.iter().map(|l| l.table.to_owned())),
            )
            .chain(["scan".to_owned(), "change_log".to_owned()])
            .collect()
    }
}

#[cfg(all(test, feature = "bench"))]
mod tests {
    use super::*;
    use crate::Filter;

    #[test]
    fn inlined_list_sql_has_no_placeholders_left() {
        let q = ListQuery {
            filters: vec![Filter::eq("state", "it's")],
            ..ListQuery::of(
                inventory_model::kind_by_name("aws", "instance").unwrap(),
                100,
            )
        };
        let sql = Store::list_sql_inlined(&q).unwrap();
        assert!(
            sql.contains("t.state = 'it''s'") && sql.contains(" LIMIT 101) p "),
            "{sql}"
        );
        assert!(!sql.contains('$') && !sql.contains("t.raw"), "{sql}");
    }
}
