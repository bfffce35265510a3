//! The fold: one transaction per batch writes rows, links, scans, dead letters and
//! the projection's checkpoint. The caller acks the batch only after this returns.

use chrono::{DateTime, Utc};
use inventory_model::{Cell, ColumnType, KindDef, Projected, Scope};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use crate::{Store, StoreError};

type Param = Box<dyn ToSql + Sync + Send>;

/// A resource event, already checked against the contract and projected.
#[derive(Debug, Clone)]
pub struct ResourceChange {
    pub kind: &'static KindDef,
    pub scope: Scope,
    pub key: String,
    pub observed_at: DateTime<Utc>,
    pub scan_id: String,
    /// `Some` for created/updated (projection, raw payload, content hash); `None` for deleted.
    pub state: Option<(Projected, Value, String)>,
}

/// An event that broke the contract.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub subject: String,
    pub reason: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// One event of a batch, with its stream sequence.
#[derive(Debug, Clone)]
pub enum BatchItem {
    Resource {
        seq: u64,
        change: ResourceChange,
    },
    ScanStarted {
        seq: u64,
        scan_id: String,
        kind: &'static KindDef,
        scope: Scope,
        request_id: Option<String>,
        at: DateTime<Utc>,
    },
    ScanFinished {
        seq: u64,
        scan_id: String,
        kind: &'static KindDef,
        scope: Scope,
        at: DateTime<Utc>,
        /// `Ok(resources seen)` for a completed scan, `Err(reason)` for a failed one.
        result: Result<u64, String>,
    },
    Dead {
        seq: u64,
        letter: DeadLetter,
    },
}

impl BatchItem {
    pub fn seq(&self) -> u64 {
        match self {
            BatchItem::Resource { seq, .. }
            | BatchItem::ScanStarted { seq, .. }
            | BatchItem::ScanFinished { seq, .. }
            | BatchItem::Dead { seq, .. } => *seq,
        }
    }
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events that changed a row, link or scan.
    pub applied: usize,
    /// Events at or below the checkpoint, or older than the row they address.
    pub unchanged: usize,
    pub dead_lettered: usize,
    /// The checkpoint after the batch.
    pub checkpoint: u64,
}

fn cell_param(cell: &Cell, ty: ColumnType) -> Param {
    match (cell, ty) {
        (Cell::Text(s), _) => Box::new(s.clone()),
        (Cell::Integer(i), _) => Box::new(*i),
        (Cell::Boolean(b), _) => Box::new(*b),
        (Cell::Timestamp(t), _) => Box::new(*t),
        (Cell::Null, ColumnType::Text) => Box::new(None::<String>),
        (Cell::Null, ColumnType::Integer) => Box::new(None::<i64>),
        (Cell::Null, ColumnType::Boolean) => Box::new(None::<bool>),
        (Cell::Null, ColumnType::Timestamp) => Box::new(None::<DateTime<Utc>>),
    }
}

fn key_params(kind: &KindDef, scope: &Scope, id: &str) -> Vec<Param> {
    let mut p: Vec<Param> = vec![Box::new(scope.account_id.clone())];
    if kind.regional {
        p.push(Box::new(scope.region.clone().unwrap_or_default()));
    }
    p.push(Box::new(id.to_owned()));
    p
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl Store {
    /// Apply a batch in one transaction and advance `projection`'s checkpoint to
    /// the batch's highest sequence. Items at or below the checkpoint are skipped,
    /// so a redelivered batch changes nothing.
    pub async fn apply_batch(
        &self,
        projection: &str,
        items: &[BatchItem],
    ) -> Result<BatchOutcome, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO projection_checkpoint (projection) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&projection],
        )
        .await?;
        // FOR UPDATE: two projector replicas of one projection take turns per batch.
        let last: i64 = tx
            .query_one(
                "SELECT last_seq FROM projection_checkpoint WHERE projection = $1 FOR UPDATE",
                &[&projection],
            )
            .await?
            .get(0);
        let mut out = BatchOutcome {
            checkpoint: last as u64,
            ..Default::default()
        };
        for item in items {
            let seq = item.seq();
            if seq <= last as u64 {
                out.unchanged += 1;
                continue;
            }
            out.checkpoint = out.checkpoint.max(seq);
            let seq_i = seq as i64;
            let changed = match item {
                BatchItem::Resource { change, .. } => self.apply_change(&tx, change, seq_i).await?,
                BatchItem::ScanStarted {
                    scan_id,
                    kind,
                    scope,
                    request_id,
                    at,
                    ..
                } => {
                    tx.execute(
                        "INSERT INTO scan (scan_id, source, kind, account_id, region, request_id, state, started_at, seq) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8) ON CONFLICT (scan_id) DO NOTHING",
                        &[scan_id, &kind.source, &kind.name, &scope.account_id,
                          &scope.region.clone().unwrap_or_default(), request_id, at, &seq_i],
                    )
                    .await?
                        > 0
                }
                BatchItem::ScanFinished {
                    scan_id,
                    kind,
                    scope,
                    at,
                    result,
                    ..
                } => {
                    let (state, seen, error) = match result {
                        Ok(n) => ("completed", Some(*n as i64), None),
                        Err(e) => ("failed", None, Some(e.clone())),
                    };
                    let n = tx
                        .execute(
                            "INSERT INTO scan (scan_id, source, kind, account_id, region, state, finished_at, resources_seen, error, seq) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                             ON CONFLICT (scan_id) DO UPDATE SET state = EXCLUDED.state, finished_at = EXCLUDED.finished_at, \
                             resources_seen = EXCLUDED.resources_seen, error = EXCLUDED.error, seq = EXCLUDED.seq \
                             WHERE scan.seq < EXCLUDED.seq",
                            &[scan_id, &kind.source, &kind.name, &scope.account_id,
                              &scope.region.clone().unwrap_or_default(), &state, at, &seen, &error, &seq_i],
                        )
                        .await?;
                    if result.is_ok() {
                        let sql = &self.kind_sql(kind).touch_scope;
                        let mut p: Vec<Param> = vec![Box::new(scope.account_id.clone())];
                        if kind.regional {
                            p.push(Box::new(scope.region.clone().unwrap_or_default()));
                        }
                        p.push(Box::new(*at));
                        let stmt = tx.prepare_cached(sql).await?;
                        tx.execute(&stmt, &refs(&p)).await?;
                    }
                    n > 0
                }
                BatchItem::Dead { letter, .. } => {
                    let headers: serde_json::Map<String, Value> = letter
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    tx.execute(
                        "INSERT INTO dead_letter (projection, stream_seq, subject, reason, payload, headers) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (projection, stream_seq) DO NOTHING",
                        &[&projection, &seq_i, &letter.subject, &letter.reason, &letter.payload,
                          &Value::Object(headers)],
                    )
                    .await?;
                    out.dead_lettered += 1;
                    continue;
                }
            };
            if changed {
                out.applied += 1;
            } else {
                out.unchanged += 1;
            }
        }
        tx.execute(
            "UPDATE projection_checkpoint SET last_seq = $2, updated_at = now() WHERE projection = $1",
            &[&projection, &(out.checkpoint as i64)],
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn apply_change(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        c: &ResourceChange,
        seq: i64,
    ) -> Result<bool, StoreError> {
        let sql = self.kind_sql(c.kind);
        let region = c.scope.region.clone().unwrap_or_default();
        let mut params = key_params(c.kind, &c.scope, &c.key);
        let Some((projected, raw, hash)) = &c.state else {
            params.push(Box::new(c.observed_at));
            params.push(Box::new(c.scan_id.clone()));
            params.push(Box::new(seq));
            let stmt = tx.prepare_cached(&sql.delete).await?;
            if tx.query_opt(&stmt, &refs(&params)).await?.is_none() {
                return Ok(false);
            }
            let unlink = key_params(c.kind, &c.scope, &c.key);
            for q in &sql.unlink_all {
                let stmt = tx.prepare_cached(q).await?;
                tx.execute(&stmt, &refs(&unlink)).await?;
            }
            return Ok(true);
        };
        for (cell, col) in projected.cells.iter().zip(c.kind.columns) {
            params.push(cell_param(cell, col.ty));
        }
        params.push(Box::new(Value::Object(projected.tags.clone())));
        params.push(Box::new(raw.clone()));
        params.push(Box::new(hash.clone()));
        params.push(Box::new(c.observed_at));
        params.push(Box::new(c.scan_id.clone()));
        params.push(Box::new(seq));
        let stmt = tx.prepare_cached(&sql.upsert).await?;
        if tx.query_opt(&stmt, &refs(&params)).await?.is_none() {
            return Ok(false);
        }
        for (link, other) in sql.owned_links.iter().zip(&projected.links) {
            let clear = tx.prepare_cached(&link.clear).await?;
            tx.execute(&clear, &[&c.scope.account_id, &region, &c.key])
                .await?;
            if let Some(other) = other {
                let insert = tx.prepare_cached(&link.insert).await?;
                tx.execute(
                    &insert,
                    &[&c.scope.account_id, &region, &c.key, other, &seq],
                )
                .await?;
            }
        }
        Ok(true)
    }
}
