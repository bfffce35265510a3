//! Reads of history: the versions of one resource, the version at a point in
//! time or in the stream, and the change feed across kinds in stream order.

use chrono::{DateTime, Utc};
use inventory_model::KindDef;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_postgres::types::ToSql;

use crate::sql::key_columns;
use crate::{ReadStore, Store, StoreError};

/// A point in history: a stream sequence or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Seq(u64),
    Time(DateTime<Utc>),
}

impl std::str::FromStr for Point {
    type Err = String;

    /// A non-negative integer is a sequence; anything else must be RFC 3339.
    fn from_str(s: &str) -> Result<Point, String> {
        if let Ok(seq) = s.parse::<u64>() {
            return Ok(Point::Seq(seq));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Point::Time(t.with_timezone(&Utc)))
            .map_err(|_| format!("{s:?} is neither a stream sequence nor an RFC 3339 time"))
    }
}

/// The natural key of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceKey {
    pub account_id: String,
    /// Empty for account-wide kinds.
    pub region: String,
    pub id: String,
}

impl ResourceKey {
    /// The key of a row or version as the API returns it.
    pub fn of(kind: &KindDef, item: &Value) -> Option<ResourceKey> {
        let text = |c: &str| item.get(c).and_then(Value::as_str).map(str::to_owned);
        Some(ResourceKey {
            account_id: text("account_id")?,
            region: if kind.regional() {
                text("region")?
            } else {
                String::new()
            },
            id: text(kind.id_column)?,
        })
    }

    fn params(&self, kind: &KindDef) -> Vec<&(dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = vec![&self.account_id];
        if kind.regional() {
            p.push(&self.region);
        }
        p.push(&self.id);
        p
    }
}

/// `t.k1 = $1 AND …` over a kind's key columns; returns the predicate and the
/// next free parameter number.
fn key_predicate(kind: &KindDef) -> (String, usize) {
    let keys = key_columns(kind);
    let pred = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("t.{k} = ${}", i + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    (pred, keys.len() + 1)
}

/// A version as the API shows it (its declared links are internal).
const VERSION_JSON: &str = "to_jsonb(t) - 'links'";

/// What the change feed returns.
#[derive(Debug, Clone, Default)]
pub struct ChangesQuery {
    /// Changes with a stream sequence above this.
    pub after_seq: u64,
    /// Changes valid from this instant on (the first page of a feed by time).
    pub since: Option<DateTime<Utc>>,
    /// Kinds to read; empty: none.
    pub kinds: Vec<&'static KindDef>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// `created`, `updated` or `deleted`.
    pub change: Option<String>,
    pub limit: usize,
}

/// One page of the change feed; `last_seq` is the cursor to resume after.
#[derive(Debug)]
pub struct Changes {
    pub items: Vec<Box<RawValue>>,
    pub last_seq: Option<u64>,
}

impl ReadStore {
    /// Versions of a resource, newest first, below `before_seq` if given.
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "history"))]
    pub async fn history(
        &self,
        kind: &'static KindDef,
        key: &ResourceKey,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        let (pred, n) = key_predicate(kind);
        let sql = format!(
            "SELECT {VERSION_JSON} FROM {}_version t WHERE {pred} \
             AND (${n}::bigint IS NULL OR t.seq < ${n}) ORDER BY t.seq DESC LIMIT ${}",
            kind.table,
            n + 1
        );
        let before = before_seq.map(|s| s as i64);
        let limit = limit as i64;
        let mut params = key.params(kind);
        params.push(&before);
        params.push(&limit);
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&sql).await?;
        let rows = client.query(&stmt, &params).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The version of a resource at `point` (the newest at or before it), or its
    /// latest version; with `before`, the one preceding that instead.
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "version"))]
    pub async fn version(
        &self,
        kind: &'static KindDef,
        key: &ResourceKey,
        point: Option<Point>,
        before: bool,
    ) -> Result<Option<Value>, StoreError> {
        let (pred, n) = key_predicate(kind);
        let (seq, time) = match point {
            None => (None, None),
            Some(Point::Seq(s)) => (Some(s as i64), None),
            Some(Point::Time(t)) => (None, Some(t)),
        };
        let sql = format!(
            "SELECT {VERSION_JSON} FROM {v}_version t WHERE {pred} \
             AND (${n}::bigint IS NULL OR t.seq <= ${n}) \
             AND (${m}::timestamptz IS NULL OR t.valid_from <= ${m}) \
             ORDER BY t.seq DESC LIMIT 1 OFFSET ${o}",
            v = kind.table,
            m = n + 1,
            o = n + 2,
        );
        let offset: i64 = if before { 1 } else { 0 };
        let mut params = key.params(kind);
        params.push(&seq);
        params.push(&time);
        params.push(&offset);
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&sql).await?;
        Ok(client.query_opt(&stmt, &params).await?.map(|r| r.get(0)))
    }

    /// A page of the change feed: every change of the given kinds in stream
    /// order, after a sequence, optionally narrowed (from the change log).
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "changes"))]
    pub async fn changes(&self, q: &ChangesQuery) -> Result<Changes, StoreError> {
        if q.kinds.is_empty() {
            return Ok(Changes {
                items: Vec::new(),
                last_seq: None,
            });
        }
        let sources: Vec<&str> = q.kinds.iter().map(|k| k.source).collect();
        let names: Vec<&str> = q.kinds.iter().map(|k| k.name).collect();
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(CHANGES).await?;
        let run = |after: u64, until: Option<u64>, limit: usize| {
            let (client, stmt, sources, names) = (&client, &stmt, &sources, &names);
            async move {
                let (after, until, limit) = (after as i64, until.map(|u| u as i64), limit as i64);
                client
                    .query(
                        stmt,
                        &[
                            &after,
                            &q.since,
                            &q.account_id,
                            &q.region,
                            &q.change,
                            &limit,
                            &until,
                            sources,
                            names,
                        ],
                    )
                    .await
            }
        };
        let mut rows = run(q.after_seq, None, q.limit).await?;
        // One event may change several resources (a completed scan deleting
        // those it could not have known): a full page ends with every change
        // of its last event, so that resuming after it skips none.
        if rows.len() == q.limit
            && let Some(last) = rows.last().map(|r| r.get::<_, i64>(1) as u64)
        {
            rows.retain(|r| r.get::<_, i64>(1) as u64 != last);
            rows.extend(run(last - 1, Some(last), usize::MAX >> 1).await?);
        }
        let mut items = Vec::with_capacity(rows.len());
        let mut last_seq = None;
        for row in rows {
            let text: String = row.get(0);
            items
                .push(RawValue::from_string(text).map_err(|e| StoreError::Corrupt(e.to_string()))?);
            last_seq = Some(row.get::<_, i64>(1) as u64);
        }
        Ok(Changes { items, last_seq })
    }

    /// Up to `limit` changes after position `after` of the change log, in
    /// order: `(position, feed item)`. What the change notifier publishes.
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "changes_after"))]
    pub async fn changes_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Box<RawValue>)>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(CHANGES_AFTER).await?;
        let rows = client
            .query(&stmt, &[&(after as i64), &(limit as i64)])
            .await?;
        rows.iter()
            .map(|r| {
                let item = RawValue::from_string(r.get(0))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((r.get::<_, i64>(1) as u64, item))
            })
            .collect()
    }

    /// The position of the change log's last entry at or before event `seq`.
    pub async fn change_position_at(&self, seq: u64) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT coalesce(max(position), 0) FROM change_log WHERE seq <= $1",
                &[&(seq as i64)],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

/// A change as the feed (and a notification's body) shows it.
macro_rules! feed_item {
    () => {
        "jsonb_build_object('seq', seq, 'source', source, 'kind', kind, \
         'account_id', account_id, 'region', region, 'id', id, 'change', change, 'at', at, \
         'scan_id', scan_id, 'request_id', request_id, 'trace_id', trace_id, \
         'content_hash', content_hash)::text"
    };
}

/// A page of the feed: `$1` after seq, `$2` from instant, `$3` account, `$4`
/// region, `$5` change, `$6` limit, `$7` up to seq, `$8`/`$9` (source, kind) pairs.
const CHANGES: &str = concat!(
    "SELECT ",
    feed_item!(),
    ", seq FROM change_log \
     WHERE seq > $1 AND ($7::bigint IS NULL OR seq <= $7) \
     AND ($2::timestamptz IS NULL OR at >= $2) \
     AND (source, kind) IN (SELECT * FROM unnest($8::text[], $9::text[])) \
     AND ($3::text IS NULL OR account_id = $3) AND ($4::text IS NULL OR region = $4) \
     AND ($5::text IS NULL OR change = $5) ORDER BY seq, position LIMIT $6"
);

/// The notifier's page: `$1` after position, `$2` limit.
const CHANGES_AFTER: &str = concat!(
    "SELECT ",
    feed_item!(),
    ", position FROM change_log WHERE position > $1 ORDER BY position LIMIT $2"
);

/// What housekeeping removed from one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// Superseded versions (and versions of removed resources).
    pub versions: u64,
    /// Deleted resources removed with their history.
    pub resources: u64,
}

impl Store {
    /// Remove resources deleted before `deleted_before` (row and history) and
    /// versions whose validity ended before `versions_before`; record the run
    /// in `retention_run`. Live resources always keep their current version.
    pub async fn apply_retention(
        &self,
        kind: &'static KindDef,
        versions_before: Option<DateTime<Utc>>,
        deleted_before: Option<DateTime<Utc>>,
    ) -> Result<Removed, StoreError> {
        let keys = key_columns(kind);
        let cols = keys.join(", ");
        let join = keys
            .iter()
            .map(|k| format!("x.{k} = g.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let t = kind.table;
        // The change log forgets what the history forgets.
        let returning = format!(
            "{}, x.seq",
            keys.iter()
                .map(|k| format!("x.{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let logged = format!(
            "c AS (DELETE FROM change_log l USING v WHERE l.source = '{}' AND l.kind = '{}' \
             AND l.account_id = v.account_id AND l.id = v.{} AND l.seq = v.seq{})",
            kind.source,
            kind.name,
            kind.id_column,
            if kind.regional() {
                " AND l.region = v.region"
            } else {
                ""
            }
        );
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut removed = Removed::default();
        if let Some(cutoff) = deleted_before {
            let row = tx
                .query_one(
                    &format!(
                        "WITH gone AS (DELETE FROM {t} WHERE deleted_at < $1 RETURNING {cols}), \
                         v AS (DELETE FROM {t}_version x USING gone g WHERE {join} RETURNING {returning}), \
                         {logged} SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM v)"
                    ),
                    &[&cutoff],
                )
                .await?;
            removed.resources += row.get::<_, i64>(0) as u64;
            removed.versions += row.get::<_, i64>(1) as u64;
        }
        if let Some(cutoff) = versions_before {
            let row = tx
                .query_one(
                    &format!(
                        "WITH v AS (DELETE FROM {t}_version x WHERE valid_to < $1 RETURNING {returning}), \
                         {logged} SELECT count(*) FROM v"
                    ),
                    &[&cutoff],
                )
                .await?;
            removed.versions += row.get::<_, i64>(0) as u64;
        }
        tx.execute(
            "INSERT INTO retention_run (table_name, versions_cutoff, deleted_cutoff, versions, resources) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &t,
                &versions_before,
                &deleted_before,
                &(removed.versions as i64),
                &(removed.resources as i64),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_sequences_or_times() {
        assert_eq!("42".parse::<Point>(), Ok(Point::Seq(42)));
        assert!(matches!(
            "2026-11-23T10:00:00Z".parse::<Point>(),
            Ok(Point::Time(_))
        ));
        assert!("yesterday".parse::<Point>().is_err());
        assert!("-1".parse::<Point>().is_err());
    }
}
