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
mod graph;
mod history;
mod list;
mod query;
mod reports;
pub mod schema;
mod search;
mod sql;
mod stats;
mod writes;

use std::collections::HashMap;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use inventory_model::{KINDS, KindDef};
use tokio_postgres::NoTls;

pub use fold::{BatchItem, BatchOutcome, DeadLetter, Hole, JsonText, ResourceChange};
pub use graph::{Direction, Graph, GraphQuery};
pub use history::{Changes, ChangesQuery, Point, Removed, ResourceKey};
pub use list::{
    ColumnPage, Filter, Groups, ListQuery, Op, Page, Sort, TagFilter, TagOp, Via, filterable,
    item_fields, like_pattern, parses_as,
};
pub use query::{Found, TableChecksum};
pub use reports::{REPORTS, ReportDef, ReportParam, Rule, report};
pub use search::{MAX_OFFSET, SearchPage, SearchQuery, search_fields};
pub use stats::{FailingScan, ProjectionStats, ResourceCount};

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
    #[error("database error: {}", db_message(.0))]
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
    /// A batch would leave events between the checkpoint and its first event
    /// unapplied: nothing was written; fetch again from the checkpoint.
    #[error("batch starts at sequence {first} but the projection is at {checkpoint}")]
    Gap { checkpoint: u64, first: u64 },
}

/// What PostgreSQL said (`db error` alone says nothing).
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl StoreError {
    /// PostgreSQL cancelled the statement (its `statement_timeout` ran out).
    pub fn is_timeout(&self) -> bool {
        match self {
            StoreError::Database(e) => {
                e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
            }
            _ => false,
        }
    }

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

/// A handle that can only read the projection: a pool of connections and the
/// SQL generated for every kind. This is what the API gets; nothing within
/// its reach applies a batch, migrates or drops a schema.
#[derive(Clone)]
pub struct ReadStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The schema the projection lives in (`None`: the database's default).
    schema: Option<String>,
    /// Every statement is cancelled after this long (`None`: no limit).
    statement_timeout: Option<std::time::Duration>,
    kinds: std::sync::Arc<HashMap<&'static str, sql::KindSql>>,
}

/// The projection's one writer handle (the fold, migrations, replays,
/// retention). It reads as a [`ReadStore`] too.
#[derive(Clone)]
pub struct Store {
    read: ReadStore,
}

impl std::ops::Deref for Store {
    type Target = ReadStore;

    fn deref(&self) -> &ReadStore {
        &self.read
    }
}

/// Where the pointer to the schema the API serves lives (outside any
/// projection schema, so a switch is one row update).
const SERVING_TABLE: &str = "public.inventory_serving";

/// Whether `name` can be a projection schema: a lowercase identifier that needs
/// no quoting.
pub fn valid_schema_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.len() <= 63
        && !name.starts_with("pg_")
}

impl ReadStore {
    /// The same database, in another projection schema.
    pub fn in_schema(&self, schema: Option<&str>) -> Result<ReadStore, StoreError> {
        Ok(Store::reopened(
            &self.config,
            schema,
            self.statement_timeout,
            self.pool.status().max_size,
            self.kinds.clone(),
        )?
        .read)
    }

    /// The same store on new connections whose every statement PostgreSQL
    /// cancels after `timeout` ([`StoreError::is_timeout`]); kept across
    /// [`ReadStore::in_schema`].
    pub fn with_statement_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Result<ReadStore, StoreError> {
        Ok(Store::reopened(
            &self.config,
            self.schema.as_deref(),
            Some(timeout),
            self.pool.status().max_size,
            self.kinds.clone(),
        )?
        .read)
    }

    /// The schema this store reads (`None`: the default).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The schema the API is told to serve (`None`: the default schema).
    pub async fn serving_schema(&self) -> Result<Option<String>, StoreError> {
        let client = self.pool.get().await?;
        // The pointer table may not exist yet: then nothing was ever switched.
        let exists: bool = client
            .query_one(
                &format!("SELECT to_regclass('{SERVING_TABLE}') IS NOT NULL"),
                &[],
            )
            .await?
            .get(0);
        if !exists {
            return Ok(None);
        }
        let row = client
            .query_opt(&format!("SELECT schema_name FROM {SERVING_TABLE}"), &[])
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
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

    /// The change log position up to which `projection`'s change notifier
    /// has published every change; `None` if it never recorded one.
    pub async fn notified_up_to(&self, projection: &str) -> Result<Option<u64>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT last_position FROM change_notifier WHERE projection = $1",
                &[&projection],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    fn kind_sql(&self, kind: &KindDef) -> &sql::KindSql {
        &self.kinds[kind.table]
    }
}

impl Store {
    /// A pool on `url` (a `postgres://` url); connects lazily.
    pub fn connect(url: &str, max_connections: usize) -> Result<Store, StoreError> {
        Store::connect_in(url, max_connections, None)
    }

    /// A pool whose connections read and write the projection in `schema`
    /// (blue/green rebuilds); `None`: the database's default schema.
    pub fn connect_in(
        url: &str,
        max_connections: usize,
        schema: Option<&str>,
    ) -> Result<Store, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
        let kinds = KINDS
            .iter()
            .map(|k| (k.table, sql::KindSql::new(k)))
            .collect();
        Store::pooled(
            config,
            schema,
            None,
            max_connections,
            std::sync::Arc::new(kinds),
        )
    }

    /// The same database, in another projection schema.
    pub fn in_schema(&self, schema: Option<&str>) -> Result<Store, StoreError> {
        Store::reopened(
            &self.config,
            schema,
            self.statement_timeout,
            self.pool.status().max_size,
            self.kinds.clone(),
        )
    }

    fn reopened(
        config: &tokio_postgres::Config,
        schema: Option<&str>,
        statement_timeout: Option<std::time::Duration>,
        max_connections: usize,
        kinds: std::sync::Arc<HashMap<&'static str, sql::KindSql>>,
    ) -> Result<Store, StoreError> {
        let mut config = config.clone();
        config.options("");
        Store::pooled(config, schema, statement_timeout, max_connections, kinds)
    }

    fn pooled(
        mut config: tokio_postgres::Config,
        schema: Option<&str>,
        statement_timeout: Option<std::time::Duration>,
        max_connections: usize,
        kinds: std::sync::Arc<HashMap<&'static str, sql::KindSql>>,
    ) -> Result<Store, StoreError> {
        let mut options = Vec::new();
        if let Some(schema) = schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::Config(format!(
                    "invalid schema name {schema:?}: use lowercase letters, digits and _"
                )));
            }
            options.push(format!("-c search_path={schema}"));
        }
        if let Some(t) = statement_timeout {
            options.push(format!("-c statement_timeout={}", t.as_millis().max(1)));
        }
        if !options.is_empty() {
            config.options(options.join(" "));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Store {
            read: ReadStore {
                pool,
                config,
                schema: schema.map(str::to_owned),
                statement_timeout,
                kinds,
            },
        })
    }

    /// The read-only handle on the same pool.
    pub fn reader(&self) -> ReadStore {
        self.read.clone()
    }

    /// Point the API at `schema` (one row update, so every API instance switches
    /// at its next check). The schema must hold a migrated projection.
    pub async fn set_serving_schema(&self, schema: &str) -> Result<(), StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::Config(format!(
                "invalid schema name {schema:?}"
            )));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let migrated: bool = tx
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{schema}.projection_checkpoint")],
            )
            .await?
            .get(0);
        if !migrated {
            return Err(StoreError::UnknownKind(format!(
                "schema {schema} holds no projection (replay into it first)"
            )));
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {SERVING_TABLE} (
                 one boolean PRIMARY KEY DEFAULT true CHECK (one),
                 schema_name text NOT NULL,
                 switched_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await?;
        tx.execute(
            &format!(
                "INSERT INTO {SERVING_TABLE} (schema_name) VALUES ($1) \
                 ON CONFLICT (one) DO UPDATE SET schema_name = EXCLUDED.schema_name, switched_at = now()"
            ),
            &[&schema],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drop a projection schema that is not being served.
    pub async fn drop_schema(&self, schema: &str) -> Result<(), StoreError> {
        if !valid_schema_name(schema) || schema == "public" {
            return Err(StoreError::Config(format!(
                "refusing to drop schema {schema:?}"
            )));
        }
        if self.serving_schema().await?.as_deref() == Some(schema) {
            return Err(StoreError::Config(format!(
                "schema {schema} is being served; switch to another one first"
            )));
        }
        let client = self.pool.get().await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await?;
        Ok(())
    }

    /// Apply the migrations in `migrations/` (idempotent; serialized across
    /// processes with an advisory lock).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let (mut client, conn) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let conn = tokio::spawn(conn);
        client
            .execute("SELECT pg_advisory_lock(73612026)", &[])
            .await?;
        if let Some(schema) = &self.schema {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
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

    /// Record that every change up to log position `position` has been published.
    pub async fn set_notified_up_to(
        &self,
        projection: &str,
        position: u64,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO change_notifier (projection, last_position) VALUES ($1, $2) \
                 ON CONFLICT (projection) DO UPDATE SET last_position = greatest(change_notifier.last_position, EXCLUDED.last_position), updated_at = now()",
                &[&projection, &(position as i64)],
            )
            .await?;
        Ok(())
    }

    /// Make a projection that has applied nothing yet start at `seq` (a partial
    /// replay); a projection that has already started keeps its checkpoint.
    pub async fn start_projection_at(&self, projection: &str, seq: u64) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO projection_checkpoint (projection, last_seq) VALUES ($1, $2) \
                 ON CONFLICT (projection) DO UPDATE SET last_seq = EXCLUDED.last_seq \
                 WHERE projection_checkpoint.last_seq = 0",
                &[&projection, &(seq.saturating_sub(1) as i64)],
            )
            .await?;
        drop(client);
        self.checkpoint(projection).await
    }
}
