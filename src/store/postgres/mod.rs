//! [`PostgresStore`] and [`PostgresService`]: services over a PostgreSQL
//! database, with the same behaviour as
//! [`MemoryService`](super::MemoryService) and the SQLite store, for apps
//! that run several instances over one database.
//!
//! # Why tokio-postgres and deadpool
//!
//! tokio-postgres is the asynchronous PostgreSQL client the Rust
//! ecosystem's others build on; it runs on the app's tokio runtime, binds
//! every value as a parameter, and pipelines what is sent on one
//! connection. deadpool-postgres is a small pool over it. sqlx was the
//! other choice: it would bring a second SQLite driver beside rusqlite, a
//! compile-time query checker that dynamic queries (the whole query
//! language) cannot use, and more build time, for nothing this store
//! needs.
//!
//! # Mapping: JSON documents
//!
//! Each service has one table:
//!
//! ```sql
//! CREATE TABLE "messages" (
//!     seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- insertion order
//!     id_key text NOT NULL UNIQUE, -- the id, "5" for 5 and "5", "s" + text otherwise
//!     data jsonb NOT NULL,         -- the record, for queries and indexes
//!     body text NOT NULL           -- the record as serde_json wrote it
//! );
//! ```
//!
//! `data` is what queries read (`jsonb`, parsed once on write); `body` is
//! what is returned, because `jsonb` does not keep the order of an object's
//! keys, and a record must come back as it was written, byte for byte the
//! memory store's answer. That costs each record's text twice on disk.
//!
//! The query language is compiled to SQL by the private `sql` module
//! (every comparison and sort through one ordered text key per field, so
//! that one expression index serves equality, ranges and `$sort`, the
//! memory store's comparison rules exactly); indexes and unique fields are
//! declared as for SQLite ([`index`](PostgresService::index),
//! [`compound_index`](PostgresService::compound_index),
//! [`unique`](PostgresService::unique),
//! [`unique_ignoring_case`](PostgresService::unique_ignoring_case)); a
//! unique violation is 409.
//!
//! An unfiltered `total` is read from counts kept by a trigger in the
//! writing transaction (exact, a few rows whatever the table's size); a
//! filtered one is a `count(*)`, from an index when one covers the filter.
//! The page and its total are one statement, so they agree. What still
//! reads every row: a filter or `$sort` on a field no index covers.
//!
//! Automatic ids come from a sequence per table: never reused, also after
//! a remove, a rollback or a crash, and unique across every instance
//! writing the table. An id a client supplied is skipped when the
//! sequence reaches it.
//!
//! # Differences from the other stores
//!
//! - PostgreSQL's text cannot hold the character U+0000: a record with
//!   one in a string is 400 BadRequest.
//! - A unique field compares values by type: `true` and `1` do not
//!   conflict (they do in SQLite), `5` and `5.0` do; arrays and objects
//!   never conflict.
//! - There is no record cache: several instances write the same tables.
//! - Connections are plain TCP (no TLS yet).
//!
//! # Faults
//!
//! A database that cannot be reached makes calls fail with 503
//! Unavailable (not 500), and the pool connects again once it is back; no
//! call waits for a connection longer than the pool's wait timeout. A
//! read past its time budget (`statement_timeout`, set on the reading
//! connections) is 400, as in SQLite; writes have no budget, as in SQLite.

mod revocations;
mod schema;
mod service;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

pub use revocations::PostgresRevocations;
pub use service::PostgresService;

use crate::{Error, Result, query};

/// The longest table name a service may have (PostgreSQL's identifiers
/// end at 63 bytes).
pub const MAX_TABLE_NAME_LEN: usize = 63;

/// How a [`PostgresStore`] connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections open at once in each of the store's two pools
    /// (reads and writes; 16 by default).
    pub pool_size: usize,
    /// How long a call waits for a free connection (or to open one)
    /// before it fails with 503 (5 s by default).
    pub wait_timeout: Duration,
    /// A statement running longer is cancelled and its call is 400
    /// BadRequest (250 ms by default, as `sqlite.queryTimeoutMs`).
    pub query_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            wait_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_millis(250),
        }
    }
}

/// A PostgreSQL database holding services' tables; cheap to clone (one
/// pool behind every clone). See the [module docs](self).
///
/// It keeps two pools of connections: reads, whose statements are
/// cancelled past the query budget, and writes, which are not (a write
/// waiting for a row lock or building an index must not fail for it).
#[derive(Clone)]
pub struct PostgresStore {
    reads: Pool,
    writes: Pool,
    options: Arc<PostgresOptions>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("PostgresStore")
            .field("options", &self.options)
            .field("reads", &self.reads.status())
            .field("writes", &self.writes.status())
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:5432/db`,
    /// or key=value pairs) with default options, and creates Plume's own
    /// tables if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with these options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|error| {
            // The parser's message does not repeat the URL.
            Error::general(format!("Invalid PostgreSQL URL: {error}"))
        })?;
        let timeout_ms = options.query_timeout.as_millis().max(1);
        let store = Self {
            reads: pool(config.clone(), &options, Some(timeout_ms))?,
            writes: pool(config, &options, None)?,
            options: Arc::new(options),
        };
        let mut client = store.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        schema::ensure_store(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(store)
    }

    /// A service over `table`, created when the service is set up (or on
    /// its first call). The name is an identifier (letters, digits and
    /// `_`, not starting with a digit) and does not start with `plume_`,
    /// which Plume's own tables use.
    pub fn service(&self, table: &str) -> Result<PostgresService> {
        // PostgreSQL cuts names at 63 bytes: a longer one would be found
        // under another name than it was made with.
        if !query::is_field_name(table)
            || table.len() > MAX_TABLE_NAME_LEN
            || table.to_ascii_lowercase().starts_with("plume_")
            || table.to_ascii_lowercase().starts_with("pg_")
        {
            return Err(Error::general(format!(
                "Invalid PostgreSQL table name '{table}': use at most {MAX_TABLE_NAME_LEN} \
                 letters, digits and _, not starting with a digit, pg_ or plume_"
            )));
        }
        Ok(PostgresService::new(self.clone(), table))
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &PostgresOptions {
        &self.options
    }

    /// Succeeds when the database answers a trivial query: for readiness
    /// checks. 503 Unavailable otherwise.
    pub async fn ping(&self) -> Result<()> {
        let client = self.reader().await?;
        client.simple_query("SELECT 1").await.map_err(db_error)?;
        Ok(())
    }

    /// The secret named `name` kept in the database (table
    /// `plume_secrets`), made on first use: several instances of an app
    /// over one database then sign and verify with the same secret without
    /// it being configured. Whoever reads the database can sign tokens, as
    /// with the SQLite store's secret file; configure the secret where
    /// that matters. A kept secret that [`auth::secret`](crate::auth::secret)
    /// finds weak (written there by hand) is refused.
    pub async fn shared_secret(&self, name: &str) -> Result<String> {
        let client = self.client().await?;
        let fresh = crate::auth::secret::generate()?;
        client
            .execute(
                "INSERT INTO plume_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &fresh],
            )
            .await
            .map_err(db_error)?;
        let kept: String = client
            .query_one("SELECT secret FROM plume_secrets WHERE name = $1", &[&name])
            .await
            .map_err(db_error)?
            .get(0);
        crate::auth::secret::check(&kept, "production", &format!("plume_secrets.{name}"))?;
        Ok(kept)
    }

    /// A connection for writing.
    async fn client(&self) -> Result<Object> {
        self.writes.get().await.map_err(pool_error)
    }

    /// A connection for reading, its statements bounded by the query
    /// budget.
    async fn reader(&self) -> Result<Object> {
        self.reads.get().await.map_err(pool_error)
    }
}

/// A pool of connections to the database of `config`; `budget_ms` sets
/// their `statement_timeout`.
fn pool(
    mut config: tokio_postgres::Config,
    options: &PostgresOptions,
    budget_ms: Option<u128>,
) -> Result<Pool> {
    if let Some(ms) = budget_ms {
        let inherited = config.get_options().unwrap_or("").to_owned();
        config.options(format!("{inherited} -c statement_timeout={ms}").trim());
    }
    if config.get_application_name().is_none() {
        config.application_name("plume");
    }
    config.connect_timeout(options.wait_timeout);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.wait_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|error| Error::general(format!("PostgreSQL pool: {error}")))
}

/// `/ready` asks the database for a trivial query (through a reading
/// connection, under the query budget and the check's timeout). The cause
/// of a failure goes to the log, not to whoever asked.
#[async_trait::async_trait]
impl crate::ReadinessCheck for PostgresStore {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn check(&self) -> Result<()> {
        self.ping()
            .await
            .map_err(|_| Error::unavailable("the database cannot be reached"))
    }
}

/// 503 for a pool that could not give a connection in time.
fn pool_error(error: PoolError) -> Error {
    match error {
        PoolError::Backend(error) => db_error(error),
        other => {
            tracing::warn!(error = %other, "no PostgreSQL connection");
            Error::unavailable("The database is unavailable")
        }
    }
}

/// A tokio-postgres error as a Feathers error: 409 for a unique
/// violation, 400 for a statement past its time budget or a character
/// PostgreSQL cannot store, 503 when the database cannot be reached, 500
/// for anything else.
fn db_error(error: tokio_postgres::Error) -> Error {
    let Some(db) = error.as_db_error() else {
        // No answer from the server: the connection failed or closed.
        tracing::warn!(error = %error, "PostgreSQL unreachable");
        return Error::unavailable("The database is unavailable");
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        return conflict(db.constraint());
    }
    if *code == SqlState::QUERY_CANCELED {
        return Error::bad_request(
            "The query ran out of its time budget (postgres.queryTimeoutMs): narrow it, or \
             filter and sort on indexed fields",
        );
    }
    if *code == SqlState::UNTRANSLATABLE_CHARACTER || *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
    {
        return Error::bad_request("A string holds a character PostgreSQL cannot store (U+0000)");
    }
    let class = code.code().get(..2).unwrap_or("");
    if matches!(class, "08" | "28" | "40" | "53" | "57") {
        // Connection exceptions, refused credentials, a transaction the
        // server rolled back (deadlock, serialisation: worth a retry),
        // insufficient resources, operator intervention (a shutting down
        // server).
        tracing::warn!(error = %error, "PostgreSQL unavailable");
        return Error::unavailable("The database is unavailable");
    }
    Error::internal(error)
}

/// 409 for a unique violation; names the field of a declared unique
/// index (whose name the schema module records), the id otherwise.
fn conflict(constraint: Option<&str>) -> Error {
    match constraint {
        Some(name) if name.ends_with("_id_key_key") => {
            Error::conflict("A record with this id already exists")
        }
        _ => Error::conflict("The record conflicts with an existing record"),
    }
}

#[cfg(test)]
mod tests;
