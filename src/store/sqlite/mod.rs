//! [`SqliteStore`] and [`SqliteService`]: services over an SQLite database
//! (rusqlite, SQLite bundled), with the same behaviour as
//! [`MemoryService`](super::MemoryService).
//!
//! # Mapping: JSON documents
//!
//! Each service has one table:
//!
//! ```sql
//! CREATE TABLE "users" (
//!     seq INTEGER PRIMARY KEY,  -- insertion order: find's order and sort ties
//!     id NOT NULL UNIQUE,       -- the id as stored: an integer or a text
//!     id_int INTEGER,           -- the integer the id is or reads as, for "7" = 7
//!     data BLOB NOT NULL        -- the whole record, as SQLite's binary JSON
//! );
//! ```
//!
//! Records are schemaless JSON in Feathers, hooks add fields freely, and
//! the query language must treat a missing field as `null` and compare
//! across JSON types exactly like the memory store. A document column keeps
//! every record as it was given (key order, types, nesting) and lets one
//! compiler (the private `sql` module) express the rules with `json_type`
//! and `json_extract` for any field. Declared columns would need a schema
//! per service, a migration for each new field, and would lose the
//! distinction between JSON types (SQLite's affinities turn `"5"` into
//! `5`). The document is kept as JSONB, SQLite's binary JSON, so finding
//! a field in a scanned row does not parse the row's text: about half the
//! cost per row of JSON text (see BENCHMARKS.md).
//!
//! What declared columns give, fast lookups, sorts and uniqueness, comes
//! from expression indexes: [`SqliteService::index`] (equality, ranges
//! and `$sort` on a field), [`SqliteService::compound_index`] (equality on
//! some fields, `$sort` on the last: one user's newest messages) and
//! [`SqliteService::unique`] (a unique violation is 409 Conflict). The
//! compiled query uses the same expressions, so `{email: "a@x"}` is an
//! index lookup and `$sort: {createdAt: -1}` walks an index; the tests in
//! the private `plan_tests` module check the plans SQLite chooses.
//!
//! Each table's row count is kept in `plume_counts` (by triggers, in the
//! writing transaction), so an unfiltered `total` costs one lookup however
//! large the table. A filtered `total` is a `count(*)`: from an index
//! alone when one covers the filter, a scan otherwise; it is skipped when
//! the page is shorter than `$limit`, since the page then tells it. What
//! still reads every row: a filter or `$sort` on a field no index covers.
//!
//! Tables written by an older version are migrated when their service is
//! set up (the private `schema` module); Plume's own tables are versioned
//! with `rusqlite_migration`.
//!
//! Automatic ids come from a counter per table in `plume_sequences`, kept in
//! the same transaction as the insert, so that ids are never reused after a
//! remove, as in the memory store, and survive a restart.
//!
//! # Connections, threads and durability
//!
//! A file database runs in WAL mode with ONE writer connection and a pool
//! of reader connections (by default one per core, at least two): readers
//! never wait for the writer, so reads use every core while writes are
//! serialised, which SQLite does anyway. Readers are `query_only`. Each
//! connection has a thread of its own (the private `pool` and `writer`
//! modules): no call runs on an async worker. A `find` reads its count and its page in one transaction, so
//! `total` and `data` agree.
//!
//! `PRAGMA synchronous = FULL`: a commit returns only after the WAL has
//! been synced to disk, so an acknowledged write survives `kill -9` (which
//! `NORMAL` would also survive) and a power cut (which `NORMAL` may lose).
//! The cost is one fsync per write transaction, so writes that arrive
//! while one commits are committed together (group commit), each under its
//! own savepoint so that one failing write fails alone; every write is
//! answered only after the commit that holds it. `create` of an array is
//! one write. The integration test `store::durability` kills a writing
//! child process with SIGKILL and reads back every acknowledged record.
//!
//! Records read by [`get`](SqliteService) are kept in a small cache per
//! table (the private `cache` module), emptied by every write to the table
//! before the write is answered: a hot record, such as the user behind
//! every authenticated request, is read from memory. This assumes the
//! process is the database's only writer, as the revocation list below
//! does; a change made by another process shows within the cache's time
//! to live, one second unless set with
//! [`set_record_cache_ttl`](SqliteStore::set_record_cache_ttl).
//!
//! `:memory:` opens ONE connection used for reads and writes: every
//! connection to `:memory:` is a separate database, and a shared-cache
//! memory database would bring table-level locking errors that a busy
//! timeout does not retry. It is meant for tests.
//!
//! [`SqliteRevocations`] keeps revoked access tokens (logout) in the same
//! database.
//!
//! # Behaviour
//!
//! As [`MemoryService`](super::MemoryService) (same messages): `find`
//! pages `{total, limit, skip, data}`; `get`, `update`, `patch`, `remove`
//! with an id honour the query's conditions (404 otherwise); `patch` and
//! `remove` without an id need `multi` and act on every record matching
//! the conditions, in insertion order; `create` never overwrites (409), and
//! an array is created in one transaction, all or nothing; `$select`
//! applies to every result; protected fields are refused to external
//! callers. One difference: with [`unique`](SqliteService::unique), values
//! are compared as SQLite values, so `true` and `1` in a unique field
//! conflict (both are the integer 1 to SQLite), as do `5` and `5.0`.
//!
//! ```
//! use plume::store::SqliteStore;
//! use plume::{Params, Provider, Service};
//! use serde_json::json;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = SqliteStore::open(":memory:").await?;
//! let users = store
//!     .service("users")?
//!     .unique(["email"])
//!     .protected_fields(["password"]);
//! users.create(&json!({"email": "a@x", "password": "hash"}), &Params::new()).await?;
//! let err = users.create(&json!({"email": "a@x"}), &Params::new()).await.unwrap_err();
//! assert_eq!(err.code(), 409);
//! let mut external = Params::with_query(json!({"password": {"$gt": "$2"}}));
//! external.provider = Some(Provider::Rest);
//! assert_eq!(users.find(&external).await.unwrap_err().code(), 400);
//! # Ok::<(), plume::Error>(())
//! # }).unwrap();
//! ```

mod budget;
mod cache;
mod connections;
mod declared;
mod jsonb;
mod matcher;
mod pool;
mod readiness;
mod revocations;
mod schema;
mod service;
mod sort_key;
mod sql;
mod table;
mod writer;

pub use budget::DEFAULT_QUERY_BUDGET;
pub use readiness::SqliteReadiness;
pub use revocations::SqliteRevocations;
pub use service::SqliteService;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, ErrorCode};

use self::cache::RecordCache;
use self::connections::open_connections;
use self::pool::Pool;
use self::writer::Writer;
use crate::query;
use crate::{Error, Result};

/// The filename that opens a private in-memory database.
pub const MEMORY: &str = super::SQLITE_MEMORY;

/// The database file when the configuration names none
/// (`sqlite.filename`), relative to the working directory.
pub const DEFAULT_FILENAME: &str = super::SQLITE_DEFAULT_FILENAME;

/// How long a connection waits for a lock held by another process before
/// it gives up with an error.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Prepared statements kept per connection. Queries are compiled to SQL
/// with their values bound as parameters, so the statements of a service
/// are a few shapes (a get, a find with a filter, ...) repeated: parsing
/// them again was about an eighth of a `find`.
const STATEMENT_CACHE: usize = 128;

/// An SQLite database: one writer connection, a pool of readers, and the
/// services over its tables; see the [module docs](self).
///
/// Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    filename: PathBuf,
    writer: Writer,
    /// `None` for `:memory:`, read on the writer's connection.
    readers: Option<Pool>,
    records: RecordCache,
    /// The time budget of one read, in milliseconds (0: none).
    read_budget_ms: std::sync::atomic::AtomicU64,
    /// Revoked token ids and their expiry, mirrored from the
    /// `plume_revoked_tokens` table (see [`SqliteRevocations`]).
    revoked: revocations::Cache,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("filename", &self.shared.filename)
            .field("writer", &self.shared.writer)
            .field("readers", &self.shared.readers)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it, and its folder, if needed) the database at
    /// `filename`, or a private in-memory database for `":memory:"`, with
    /// one reader per core (at least two).
    pub async fn open(filename: impl AsRef<Path>) -> Result<Self> {
        let readers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        Self::open_with_readers(filename, readers).await
    }

    /// [`open`](Self::open) with `readers` reader connections (at least
    /// one). Ignored for `:memory:`, which has a single connection.
    pub async fn open_with_readers(filename: impl AsRef<Path>, readers: usize) -> Result<Self> {
        let filename = filename.as_ref().to_path_buf();
        let path = filename.clone();
        let (writer, readers) =
            tokio::task::spawn_blocking(move || open_connections(&path, readers))
                .await
                .map_err(Error::internal)??;
        let writer = Writer::start(writer)?;
        let readers = if readers.is_empty() {
            None
        } else {
            Some(Pool::start(readers)?)
        };
        Ok(Self {
            shared: Arc::new(Shared {
                filename,
                writer,
                readers,
                records: RecordCache::default(),
                read_budget_ms: std::sync::atomic::AtomicU64::new(
                    u64::try_from(budget::DEFAULT_QUERY_BUDGET.as_millis()).unwrap_or(u64::MAX),
                ),
                revoked: revocations::Cache::default(),
            }),
        })
    }

    /// The filename the store was opened with.
    pub fn filename(&self) -> &Path {
        &self.shared.filename
    }

    /// A service over the table `table`, created (with its indexes) when
    /// the app is set up or on the service's first call. The table name
    /// is an identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters)
    /// not starting with `sqlite_` or `plume_`; another name is a
    /// GeneralError (the program's mistake, not a client's).
    pub fn service(&self, table: &str) -> Result<SqliteService> {
        let lower = table.to_ascii_lowercase();
        if !query::is_field_name(table)
            || lower.starts_with("sqlite_")
            || lower.starts_with("plume_")
        {
            return Err(Error::general(format!(
                "Invalid SQLite table name '{table}': use letters, digits and _, not starting \
                 with a digit, sqlite_ or plume_"
            )));
        }
        Ok(SqliteService::new(self.clone(), table))
    }

    /// Runs `work` in a read transaction on a reader connection, on a
    /// reader thread: for data kept beside the services (a token
    /// revocation list, say). The connection is `query_only`, except for
    /// `:memory:`, whose single connection also writes.
    ///
    /// The transaction is begun and ended with cached statements: rusqlite's
    /// `transaction()` parses `BEGIN` and `ROLLBACK` again every time, a
    /// cost an authenticated GET pays on every call.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.read_within(std::time::Duration::ZERO, work).await
    }

    /// [`read`](Self::read) for a client's query: stopped, and answered
    /// 400, once it has run for the query time budget
    /// ([`set_query_timeout`](Self::set_query_timeout)). The store's own
    /// reads (the revocation list) are never cut short.
    pub(super) async fn read_client_query<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let budget = std::time::Duration::from_millis(
            self.shared
                .read_budget_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        self.read_within(budget, work).await
    }

    /// A read with a time budget (none when zero).
    async fn read_within<T, F>(&self, budget: std::time::Duration, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Dropped with this future, answered or not.
        let _waiting = budget::Waiting(Arc::clone(&abandoned));
        let read = move |conn: &mut Connection| {
            // A read that waited in the queue longer than its caller did
            // is not started at all.
            if abandoned.load(std::sync::atomic::Ordering::Relaxed) {
                // Nobody receives this; an internal error would be logged.
                return Err(Error::general("the caller stopped waiting for this read"));
            }
            let _deadline = budget::Deadline::start(budget, abandoned);
            let snapshot = ReadTransaction::begin(conn)?;
            work(snapshot.0)
        };
        match &self.shared.readers {
            Some(readers) => readers.run(read).await,
            None => self.shared.writer.alone(read).await,
        }
    }

    /// Runs `work` in a write transaction on the writer connection (its
    /// own thread) and answers once the transaction has committed
    /// (durably: see the module docs); when `work` fails, nothing it did
    /// is kept. A constraint violation is 409 Conflict. Writes that arrive
    /// together share a transaction, each under its own savepoint: `work`
    /// may not begin or end transactions or savepoints itself (SQLite
    /// refuses such statements while it runs; the write fails with an
    /// internal error).
    ///
    /// Empties the whole record cache, since `work` may touch any table.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.write_table(None, work).await
    }

    /// [`write`](Self::write) that empties only `table`'s cached records
    /// (every table's for `None`); `table` is the cache's key, the table
    /// name in lower case.
    async fn write_table<T, F>(&self, table: Option<String>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let shared = Arc::downgrade(&self.shared);
        let invalidate = Box::new(move || {
            if let Some(shared) = shared.upgrade() {
                shared.records.invalidate(table.as_deref());
            }
        });
        self.shared.writer.write(work, Some(invalidate)).await
    }

    /// How long a record read through a service stays cached (one second
    /// unless set): see `get` on [`SqliteService`]. Zero turns the cache off.
    pub fn set_record_cache_ttl(&self, ttl: std::time::Duration) {
        self.shared.records.set_ttl(ttl);
    }

    /// Sets the time budget of one read (default 1 s,
    /// `sqlite.queryTimeoutMs`): a query still running after it is stopped
    /// and answered 400 BadRequest. Zero turns the budget off.
    pub fn set_query_timeout(&self, budget: std::time::Duration) {
        let ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        self.shared
            .read_budget_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A rusqlite error as a Plume error: a constraint violation is 409
/// Conflict, anything else an internal error (logged, never sent).
fn db_error(error: rusqlite::Error) -> Error {
    if error.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
        // Only a read past its time budget is interrupted.
        Error::bad_request(
            "The query ran out of its time budget (sqlite.queryTimeoutMs): narrow it, or \
             filter and sort on indexed fields",
        )
    } else if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
        conflict_message(&error.to_string())
    } else {
        Error::internal(error)
    }
}

/// 409 for a failed constraint; names the field when the failed index is a
/// declared unique index (`<table>__unique__<field>`, or
/// `<table>__uniqueci__<field>` when it ignores case).
fn conflict_message(detail: &str) -> Error {
    let field = detail
        .split_once("__unique__")
        .or_else(|| detail.split_once("__uniqueci__"))
        .map(|(_, rest)| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
        })
        .filter(|field| !field.is_empty());
    match field {
        Some(field) => Error::conflict(format!("A record with this '{field}' already exists")),
        None => Error::conflict("The record conflicts with an existing record"),
    }
}

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;

/// A read transaction that ends when dropped, also if `work` panics, so the
/// connection goes back to the pool without an open transaction.
struct ReadTransaction<'c>(&'c Connection);

impl<'c> ReadTransaction<'c> {
    fn begin(conn: &'c Connection) -> Result<Self> {
        conn.prepare_cached("BEGIN")
            .and_then(|mut begin| begin.execute([]))
            .map_err(db_error)?;
        Ok(Self(conn))
    }
}

impl Drop for ReadTransaction<'_> {
    fn drop(&mut self) {
        // Nothing was written; ending the snapshot cannot lose anything.
        let _ = self
            .0
            .prepare_cached("ROLLBACK")
            .and_then(|mut rollback| rollback.execute([]));
    }
}
