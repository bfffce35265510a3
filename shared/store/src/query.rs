//! Read queries for the API: keyset-paged lists with filters, nested collections
//! through link tables, single lookups, and table checksums.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use inventory_model::{ColumnType, KINDS, KindDef, LinkDef, Side};
use serde_json::Value;

use crate::sql::key_columns;
use crate::{ReadStore, Store, StoreError};

/// `column = value` on a kind's key or typed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub value: String,
}

/// Restrict a list to the resources linked to one parent resource.
#[derive(Debug, Clone)]
pub struct Via {
    pub link: &'static LinkDef,
    pub parent: &'static KindDef,
    pub parent_id: String,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub kind: &'static KindDef,
    pub filters: Vec<Filter>,
    pub include_deleted: bool,
    /// Opaque cursor from a previous page's `next`.
    pub cursor: Option<String>,
    pub limit: usize,
    pub via: Option<Via>,
    /// Answer as the inventory stood at this instant (from history).
    pub at: Option<DateTime<Utc>>,
}

/// A page of items. Each item is a JSON object's text as PostgreSQL built it
/// (`row_to_json`), to be passed through to clients without being parsed,
/// checked or serialized again.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<String>,
    pub next: Option<String>,
}

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

/// Whether `value` is valid input for a column of type `ty` (filters are sent as
/// text and cast on the server).
pub fn parses_as(ty: ColumnType, value: &str) -> bool {
    !value.contains('\0')
        && match ty {
            ColumnType::Text => true,
            ColumnType::Integer => value.parse::<i64>().is_ok(),
            ColumnType::Boolean => matches!(value, "true" | "false"),
            ColumnType::Timestamp => chrono::DateTime::parse_from_rfc3339(value).is_ok(),
            ColumnType::Json => false,
        }
}

/// Columns a kind can be filtered on.
pub fn filterable(kind: &KindDef) -> impl Iterator<Item = (&'static str, ColumnType)> + '_ {
    key_columns(kind)
        .into_iter()
        .map(|c| (c, ColumnType::Text))
        .chain(
            kind.columns
                .iter()
                .filter(|c| c.ty.filterable())
                .map(|c| (c.name, c.ty)),
        )
}

fn encode_cursor(keys: &[String]) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(keys).expect("strings serialize"))
}

fn decode_cursor(cursor: &str, n: usize) -> Result<Vec<String>, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let keys: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    if keys.len() != n || keys.iter().any(|k| k.contains('\0')) {
        return Err(StoreError::BadCursor);
    }
    Ok(keys)
}

/// `alias`'s version was valid at the instant in text parameter `$param`.
fn valid_at(alias: &str, param: usize) -> String {
    format!(
        "{alias}.valid_from <= ${param}::text::timestamptz \
         AND ({alias}.valid_to IS NULL OR {alias}.valid_to > ${param}::text::timestamptz)"
    )
}

/// The statement a list runs and its text parameters (the last parameter, the
/// limit, is added by the caller).
fn list_statement(q: &ListQuery) -> Result<(String, Vec<String>), StoreError> {
    let kind = q.kind;
    let keys = key_columns(kind);
    let mut params: Vec<String> = Vec::new();
    // `alias.key, …`: the order of a page and of its cursor.
    let key_list = |alias: &str| {
        keys.iter()
            .map(|k| format!("{alias}.{k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Items: the row's columns without the raw payload and the sequence (the raw
    // payload is the bulk of a row; a list never reads it). As of an instant, the
    // version valid then, with its change and start instead of the row's times.
    let meta: &[&str] = match q.at {
        None => &[
            "tags",
            "content_hash",
            "first_seen_at",
            "last_seen_at",
            "deleted_at",
            "scan_id",
        ],
        Some(_) => &["tags", "content_hash", "scan_id", "change", "valid_from"],
    };
    let item_columns: Vec<String> = keys
        .iter()
        .copied()
        .chain(kind.columns.iter().map(|c| c.name))
        .chain(meta.iter().copied())
        .map(|c| format!("t.{c}"))
        .collect();
    let table = match q.at {
        None => kind.table.to_owned(),
        Some(_) => format!("{}_version", kind.table),
    };
    // The page is selected here; the statement around it turns each row into
    // JSON text (below).
    let mut sql = format!("SELECT {} FROM {table} t", item_columns.join(", "));
    let mut preds: Vec<String> = Vec::new();
    if let Some(at) = q.at {
        params.push(at.to_rfc3339());
        preds.push(valid_at("t", params.len()));
    }
    match (&q.via, q.at) {
        (Some(via), None) => {
            let (child_col, parent_col) = match via.link.side_of(kind) {
                Some(Side::A) => ("a_id", "b_id"),
                _ => ("b_id", "a_id"),
            };
            let region_join = if kind.regional() {
                " AND l.region = t.region"
            } else {
                ""
            };
            // The link name is a constant: the planner reads its one partition.
            sql.push_str(&format!(
                " JOIN link l ON l.link = '{}' AND l.account_id = t.account_id{region_join} \
                 AND l.{child_col} = t.{}",
                via.link.table, kind.id_column
            ));
            params.push(via.parent_id.clone());
            preds.push(format!("l.{parent_col} = ${}", params.len()));
        }
        // As of an instant, links come from the owner's version valid then.
        (Some(via), Some(_)) => {
            params.push(via.parent_id.clone());
            let parent_id = params.len();
            let at = parent_id - 1;
            if via.link.other_end() == kind.end() {
                // The parent declares the link: its version lists the children.
                let region = if kind.regional() && via.parent.regional() {
                    " AND p.region = t.region"
                } else {
                    ""
                };
                preds.push(format!(
                    "t.{id} IN (SELECT jsonb_array_elements_text(p.links->'{link}') FROM {pt}_version p \
                     WHERE p.{pid} = ${parent_id} AND p.account_id = t.account_id{region} \
                     AND {valid} AND p.change <> 'deleted')",
                    id = kind.id_column,
                    link = via.link.table,
                    pt = via.parent.table,
                    pid = via.parent.id_column,
                    valid = valid_at("p", at),
                ));
            } else {
                preds.push(format!("t.links->'{}' ? ${parent_id}", via.link.table));
            }
        }
        (None, _) => {}
    }
    if !q.include_deleted {
        preds.push(match q.at {
            None => "t.deleted_at IS NULL".into(),
            Some(_) => "t.change <> 'deleted'".into(),
        });
    }
    // Sorted, so that one set of filters is one statement (prepared once).
    let mut filters: Vec<&Filter> = q.filters.iter().collect();
    filters.sort_by(|a, b| (&a.column, &a.value).cmp(&(&b.column, &b.value)));
    for f in filters {
        let (col, ty) = filterable(kind)
            .find(|(c, _)| *c == f.column)
            .ok_or_else(|| StoreError::UnknownColumn {
                kind: kind.name.into(),
                column: f.column.clone(),
            })?;
        params.push(f.value.clone());
        // Text in, the column's type on the server: values must parse as it
        // (the API checks with `parses_as`).
        let cast = match ty {
            ColumnType::Text => String::new(),
            other => format!("::text::{}", other.sql()),
        };
        preds.push(format!("t.{col} = ${}{cast}", params.len()));
    }
    if let Some(cursor) = &q.cursor {
        let after = decode_cursor(cursor, keys.len())?;
        let first = params.len() + 1;
        params.extend(after);
        preds.push(format!(
            "({}) > ({})",
            key_list("t"),
            (first..first + keys.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !preds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&preds.join(" AND "));
    }
    sql.push_str(&format!(
        " ORDER BY {} LIMIT ${}",
        key_list("t"),
        params.len() + 1
    ));
    // `row_to_json` over the page (names are the columns'): about twice as
    // cheap for the server as `jsonb_build_object` with the same fields, and
    // compact.
    let sql = format!(
        "SELECT row_to_json(p)::text, {keys} FROM ({sql}) p ORDER BY {keys}",
        keys = key_list("p"),
    );
    Ok((sql, params))
}

impl ReadStore {
    /// One page of a kind, optionally through a link from a parent resource.
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "list"))]
    pub async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let keys = key_columns(q.kind);
        let (sql, params) = list_statement(q)?;
        let limit = (q.limit + 1) as i64;
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&sql).await?;
        let mut refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        refs.push(&limit);
        let rows = client.query(&stmt, &refs).await?;
        let page = &rows[..rows.len().min(q.limit)];
        // More rows than the limit: the next page starts after this one's last.
        let next = page.last().filter(|_| rows.len() > q.limit).map(|last| {
            encode_cursor(
                &(1..=keys.len())
                    .map(|i| last.get(i))
                    .collect::<Vec<String>>(),
            )
        });
        Ok(Page {
            items: page.iter().map(|row| row.get(0)).collect(),
            next,
        })
    }

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
                "SELECT to_jsonb(t) - 'seq' FROM {} t WHERE t.{} = $1 \
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
        "to_jsonb(t)"
    }
}

impl Store {
    /// The SQL a list runs with its parameters written in as literals, for
    /// benchmarks and EXPLAIN (e.g. pgbench running exactly what the API runs).
    /// Behind the `bench` feature: text with inlined values is never run by
    /// the services.
    #[cfg(feature = "bench")]
    pub fn list_sql_inlined(q: &ListQuery) -> Result<String, StoreError> {
        let (mut sql, params) = list_statement(q)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_roundtrip_and_reject_garbage() {
        let keys = vec!["1".to_string(), "eu-west-1".into(), "i-1".into()];
        assert_eq!(decode_cursor(&encode_cursor(&keys), 3).unwrap(), keys);
        assert!(matches!(decode_cursor("!!", 3), Err(StoreError::BadCursor)));
        assert!(matches!(
            decode_cursor(&encode_cursor(&keys), 2),
            Err(StoreError::BadCursor)
        ));
        let nul = vec!["1".to_string(), "a\0".into(), "i".into()];
        assert!(matches!(
            decode_cursor(&encode_cursor(&nul), 3),
            Err(StoreError::BadCursor)
        ));
    }

    #[cfg(feature = "bench")]
    #[test]
    fn inlined_list_sql_has_no_placeholders_left() {
        let q = ListQuery {
            kind: inventory_model::kind_by_name("aws", "instance").unwrap(),
            filters: vec![Filter {
                column: "state".into(),
                value: "it's".into(),
            }],
            include_deleted: false,
            cursor: None,
            limit: 100,
            via: None,
            at: None,
        };
        let sql = Store::list_sql_inlined(&q).unwrap();
        assert!(
            sql.contains("t.state = 'it''s'") && sql.contains(" LIMIT 101) p "),
            "{sql}"
        );
        assert!(!sql.contains('$') && !sql.contains("t.raw"), "{sql}");
    }

    #[test]
    fn filter_values_are_checked_against_the_column_type() {
        assert!(parses_as(ColumnType::Integer, "42") && !parses_as(ColumnType::Integer, "x"));
        assert!(parses_as(ColumnType::Boolean, "true") && !parses_as(ColumnType::Boolean, "yes"));
        assert!(parses_as(ColumnType::Timestamp, "2026-11-01T12:00:00Z"));
        assert!(!parses_as(ColumnType::Timestamp, "yesterday"));
        assert!(!parses_as(ColumnType::Text, "a\0b"));
    }
}
