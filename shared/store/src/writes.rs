//! What a batch writes besides rows and versions, gathered while its kinds are
//! folded and written at its end with a fixed number of statements, whatever
//! the number of link types or kinds: the link table's rows, and the change
//! log.

use chrono::{DateTime, Utc};
use inventory_model::{KindDef, Side};
use tokio_postgres::types::ToSql;

use crate::StoreError;
use crate::sql::{CHANGE_LOG_INSERT, links};

type Param = Box<dyn ToSql + Sync + Send>;

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// One row a link statement reads: a link of a declaring resource.
pub(crate) struct LinkRow {
    pub link: &'static str,
    /// The side the declaring resource (the owner) is on.
    pub owner_side: Side,
    pub account_id: String,
    /// Empty for account-wide kinds.
    pub region: String,
    pub owner: String,
    /// The other side's id (links declared); unused to clear or end them.
    pub other: String,
    pub seq: i64,
}

/// The link writes of a batch, per phase. Per resource the fold's order is:
/// the links of a deletion before its latest state end, the latest state's
/// replace its older ones, then a deletion after it ends them. Each link type
/// has one owning kind, so running each phase for every kind at once is the
/// same.
#[derive(Default)]
pub(crate) struct LinkWrites {
    pub ended_before: Vec<LinkRow>,
    pub cleared: Vec<LinkRow>,
    pub declared: Vec<LinkRow>,
    pub ended_after: Vec<LinkRow>,
}

/// One version a batch wrote, as the change log records it.
pub(crate) struct Change {
    pub seq: i64,
    pub kind: &'static KindDef,
    pub account_id: String,
    pub region: Option<String>,
    pub id: String,
    pub change: String,
    pub at: DateTime<Utc>,
    pub scan_id: String,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub content_hash: String,
}

/// Arrays link, account_id, region, owner (and seq, with `with_seq`) of rows.
fn owner_params(rows: &[&LinkRow], with_seq: bool) -> Vec<Param> {
    let mut p: Vec<Param> = vec![
        Box::new(rows.iter().map(|r| r.link).collect::<Vec<_>>()),
        Box::new(
            rows.iter()
                .map(|r| r.account_id.clone())
                .collect::<Vec<_>>(),
        ),
        Box::new(rows.iter().map(|r| r.region.clone()).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| r.owner.clone()).collect::<Vec<_>>()),
    ];
    if with_seq {
        p.push(Box::new(rows.iter().map(|r| r.seq).collect::<Vec<_>>()));
    }
    p
}

/// Run `a` on the rows whose owner is on side A, `b` on the others.
async fn by_side(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[LinkRow],
    (a, b): (&str, &str),
    with_seq: bool,
) -> Result<(), StoreError> {
    for (side, sql) in [(Side::A, a), (Side::B, b)] {
        let of: Vec<&LinkRow> = rows.iter().filter(|r| r.owner_side == side).collect();
        if of.is_empty() {
            continue;
        }
        let stmt = tx.prepare_cached(sql).await?;
        tx.execute(&stmt, &refs(&owner_params(&of, with_seq)))
            .await?;
    }
    Ok(())
}

impl LinkWrites {
    pub(crate) async fn write(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<(), StoreError> {
        let ends = (links::UNLINK_A, links::UNLINK_B);
        by_side(tx, &self.ended_before, ends, true).await?;
        by_side(tx, &self.cleared, (links::CLEAR_A, links::CLEAR_B), false).await?;
        if !self.declared.is_empty() {
            let rows = &self.declared;
            let (a, b): (Vec<String>, Vec<String>) = rows
                .iter()
                .map(|r| match r.owner_side {
                    Side::A => (r.owner.clone(), r.other.clone()),
                    Side::B => (r.other.clone(), r.owner.clone()),
                })
                .unzip();
            let params: Vec<Param> = vec![
                Box::new(rows.iter().map(|r| r.link).collect::<Vec<_>>()),
                Box::new(
                    rows.iter()
                        .map(|r| r.account_id.clone())
                        .collect::<Vec<_>>(),
                ),
                Box::new(rows.iter().map(|r| r.region.clone()).collect::<Vec<_>>()),
                Box::new(a),
                Box::new(b),
                Box::new(rows.iter().map(|r| r.seq).collect::<Vec<_>>()),
            ];
            let stmt = tx.prepare_cached(links::INSERT).await?;
            tx.execute(&stmt, &refs(&params)).await?;
        }
        by_side(tx, &self.ended_after, ends, true).await
    }
}

/// Append a batch's versions to the change log, in stream order (one event
/// may change several resources: then by kind and id).
pub(crate) async fn log_changes(
    tx: &deadpool_postgres::Transaction<'_>,
    mut changes: Vec<Change>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    changes.sort_by(|a, b| {
        (a.seq, a.kind.table, &a.account_id, &a.region, &a.id).cmp(&(
            b.seq,
            b.kind.table,
            &b.account_id,
            &b.region,
            &b.id,
        ))
    });
    let c = &changes;
    let params: Vec<Param> = vec![
        Box::new(c.iter().map(|c| c.seq).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.kind.source).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.kind.name).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.account_id.clone()).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.region.clone()).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.id.clone()).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.change.clone()).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.at).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.scan_id.clone()).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.request_id.clone()).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.trace_id.clone()).collect::<Vec<_>>()),
        Box::new(c.iter().map(|c| c.content_hash.clone()).collect::<Vec<_>>()),
    ];
    let stmt = tx.prepare_cached(CHANGE_LOG_INSERT).await?;
    tx.execute(&stmt, &refs(&params)).await?;
    Ok(())
}
