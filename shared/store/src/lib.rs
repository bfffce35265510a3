//! The store: everything Inventory says to PostgreSQL.
//!
//! Architecture invariant: this is the only crate that contains SQL or depends on
//! `tokio_postgres`. Table and link SQL is generated from the model's kind
//! catalogue, so a new kind needs its migration and no code here.
//!
//! Architecture invariant: every projection table has exactly one writer, the
//! fold ([`Store::apply_batch`]); it writes rows, links and the projection's
//! checkpoint in one transaction, and only applies an event whose stream
//! sequence is above the row's (`seq`), so a redelivered or replayed event
//! changes nothing.

mod fold;
mod history;
mod query;
mod sql;

use std::collections::HashMap;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use inventory_model::{KINDS, KindDef};
use tokio_postgres::NoTls;

pub use fold::{BatchItem, BatchOutcome, DeadLetter, ResourceChange};
pub use history::{Changes, ChangesQuery, Point, ResourceKey};
pub use query::{Filter, Found, ListQuery, Page, TableChecksum, Via, filterable, parses_as};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// What went wrong in the store. Callers branch on the kind: bad input is the
/// client's fault (4xx), unavailability is transient (retry), the rest are bugs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url: {0}")]
    Config(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("unknown column {column} for {kind}")]
    UnknownColumn { kind: String, column: String },
    #[error("invalid cursor")]
    BadCursor,
    #[error("unknown kind {0}")]
    UnknownKind(String),
    #[error("the database returned malformed json: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// PostgreSQL rejected the data itself (SQLSTATE classes 22 and 23): retrying
    /// the same input fails again.
    pub fn is_data_error(&self) -> bool {
        match self {
            StoreError::Database(e) => e
                .code()
                .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23")),
            _ => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Database(e),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// A pool of connections and the SQL generated for every kind.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    url: String,
    kinds: std::sync::Arc<HashMap<&'static str, sql::KindSql>>,
}

impl Store {
    /// A pool on `url` (a `postgres://` url); connects lazily.
    pub fn connect(url: &str, max_connections: usize) -> Result<Store, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let kinds = KINDS
            .iter()
            .map(|k| (k.table, sql::KindSql::new(k)))
            .collect();
        Ok(Store {
            pool,
            url: url.to_owned(),
            kinds: std::sync::Arc::new(kinds),
        })
    }

    /// Apply the migrations in `migrations/` (idempotent; serialized across
    /// processes with an advisory lock).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let (mut client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let conn = tokio::spawn(conn);
        client
            .execute("SELECT pg_advisory_lock(73612026)", &[])
            .await?;
        let report = embedded::migrations::runner()
            .run_async(&mut client)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()));
        client
            .execute("SELECT pg_advisory_unlock(73612026)", &[])
            .await?;
        drop(client);
        let _ = conn.await;
        Ok(report?.applied_migrations().len())
    }

    /// True when a connection answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The last stream sequence a projection has applied (0 if none).
    pub async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT last_seq FROM projection_checkpoint WHERE projection = $1",
                &[&projection],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
    }

    fn kind_sql(&self, kind: &KindDef) -> &sql::KindSql {
        &self.kinds[kind.table]
    }
}
