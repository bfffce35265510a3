//! Small reads for metrics and the console: where each projection stands,
//! and the counts the fold keeps (`resource_count`). Each is one query over a
//! table of a few rows per projection, kind and scope, never a count over the
//! resources.

use crate::{ReadStore, StoreError};

/// Where a projection stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectionStats {
    pub projection: String,
    /// The last stream sequence it applied.
    pub checkpoint: u64,
    /// Events it dead-lettered.
    pub dead_letters: u64,
}

/// Live resources and changes so far of one (source, kind, account, region).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceCount {
    pub source: String,
    pub kind: String,
    pub account_id: String,
    /// Empty for kinds scanned per account.
    pub region: String,
    pub live: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl ReadStore {
    /// Every projection of this schema, by name.
    pub async fn projection_stats(&self) -> Result<Vec<ProjectionStats>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT p.projection, p.last_seq, coalesce(d.n, 0) \
                 FROM projection_checkpoint p \
                 LEFT JOIN (SELECT projection, count(*) AS n FROM dead_letter GROUP BY 1) d \
                 USING (projection) ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ProjectionStats {
                projection: r.get(0),
                checkpoint: r.get::<_, i64>(1) as u64,
                dead_letters: r.get::<_, i64>(2) as u64,
            })
            .collect())
    }

    /// The counts of every (source, kind, account, region) that had a change.
    pub async fn resource_counts(&self) -> Result<Vec<ResourceCount>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT source, kind, account_id, region, live, created, updated, deleted \
                 FROM resource_count ORDER BY 1, 2, 3, 4",
                &[],
            )
            .await?;
        let n = |r: &tokio_postgres::Row, i: usize| r.get::<_, i64>(i).max(0) as u64;
        Ok(rows
            .iter()
            .map(|r| ResourceCount {
                source: r.get(0),
                kind: r.get(1),
                account_id: r.get(2),
                region: r.get(3),
                live: n(r, 4),
                created: n(r, 5),
                updated: n(r, 6),
                deleted: n(r, 7),
            })
            .collect())
    }
}

/// A scope whose last finished scan failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailingScan {
    pub source: String,
    pub kind: String,
    pub account_id: String,
    /// Empty for kinds scanned per account.
    pub region: String,
    pub scan_id: String,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub error: Option<String>,
}

impl ReadStore {
    /// The scopes whose last finished scan failed (not a cancelled one), the
    /// most recent first, at most `limit`.
    pub async fn failing_scans(&self, limit: i64) -> Result<Vec<FailingScan>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT source, kind, account_id, region, scan_id, finished_at, error FROM ( \
                   SELECT DISTINCT ON (source, kind, account_id, region) \
                          source, kind, account_id, region, scan_id, finished_at, error, state \
                   FROM scan WHERE finished_at IS NOT NULL \
                   ORDER BY source, kind, account_id, region, finished_at DESC \
                 ) last WHERE state = 'failed' ORDER BY finished_at DESC LIMIT $1",
                &[&limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FailingScan {
                source: r.get(0),
                kind: r.get(1),
                account_id: r.get(2),
                region: r.get(3),
                scan_id: r.get(4),
                finished_at: r.get(5),
                error: r.get(6),
            })
            .collect())
    }
}
