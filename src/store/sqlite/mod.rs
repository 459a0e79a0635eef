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
//!     data TEXT NOT NULL        -- the whole record, compact JSON, id included
//! );
//! ```
//!
//! Records are schemaless JSON in Feathers, hooks add fields freely, and
//! the query language must treat a missing field as `null` and compare
//! across JSON types exactly like the memory store. A document column keeps
//! every record as it was given (key order, types, nesting) and lets one
//! compiler (the private `sql` module) express the rules with `json_type` and `json_extract`
//! for any field. Declared columns would need a schema per service, a
//! migration for each new field, and would lose the distinction between
//! JSON types (SQLite's affinities turn `"5"` into `5`). What declared
//! columns give, fast lookups and uniqueness, comes from expression indexes
//! on `json_extract(data, '$.field')`: [`SqliteService::index`] and
//! [`SqliteService::unique`] (a unique violation is 409 Conflict). The
//! compiled query uses the same expression, so `{email: "a@x"}` is an index
//! lookup.
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
//! serialised, which SQLite does anyway. Readers are `query_only`. Every
//! call runs on tokio's blocking threads (the private `pool` module), never on an async
//! worker. A `find` reads its count and its page in one transaction, so
//! `total` and `data` agree.
//!
//! `PRAGMA synchronous = FULL`: a commit returns only after the WAL has
//! been synced to disk, so an acknowledged write survives `kill -9` (which
//! `NORMAL` would also survive) and a power cut (which `NORMAL` may lose).
//! The cost is one fsync per write transaction; `create` of an array is one
//! transaction. The integration test `store::durability` kills a writing
//! child process with SIGKILL and reads back every acknowledged record.
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

mod pool;
mod revocations;
mod sql;

pub use revocations::SqliteRevocations;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use self::pool::Pool;
use super::{effective_paginate, page};
use crate::query::{self, ParsedQuery, QueryOptions};
use crate::service::json_type;
use crate::{App, Error, Id, Method, Paginate, Params, Result, Service};

type Record = Map<String, Value>;

/// The filename that opens a private in-memory database.
pub const MEMORY: &str = ":memory:";

/// How long a connection waits for a lock held by another process before
/// it gives up with an error.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
    writer: Arc<Pool>,
    readers: Arc<Pool>,
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
        let writer = Pool::new("writer", vec![writer]);
        let readers = if readers.is_empty() {
            Arc::clone(&writer)
        } else {
            Pool::new("readers", readers)
        };
        Ok(Self {
            shared: Arc::new(Shared {
                filename,
                writer,
                readers,
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
        Ok(SqliteService {
            store: self.clone(),
            config: Arc::new(Config {
                table: table.to_owned(),
                id_field: "id".to_owned(),
                paginate: None,
                multi: Vec::new(),
                protected_fields: Arc::from(Vec::new()),
                indexes: Vec::new(),
                start_id: 0,
            }),
            schema: Arc::new(OnceCell::new()),
        })
    }

    /// Runs `work` in a read transaction on a reader connection, on a
    /// blocking thread: for data kept beside the services (a token
    /// revocation list, say). The connection is `query_only`.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.shared
            .readers
            .run(move |conn| {
                let tx = conn.transaction().map_err(db_error)?;
                work(&tx)
            })
            .await
    }

    /// Runs `work` in a write transaction on the writer connection, on a
    /// blocking thread, and commits when it returns `Ok` (durably: see the
    /// module docs). A constraint violation is 409 Conflict.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.shared
            .writer
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_error)?;
                let value = work(&tx)?;
                tx.commit().map_err(db_error)?;
                Ok(value)
            })
            .await
    }
}

/// Opens the writer and the readers (none for `:memory:`).
fn open_connections(path: &Path, readers: usize) -> Result<(Connection, Vec<Connection>)> {
    if path.as_os_str() == MEMORY {
        let writer = Connection::open_in_memory().map_err(db_error)?;
        init_schema(&writer)?;
        return Ok((writer, Vec::new()));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(Error::internal)?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let writer = Connection::open_with_flags(path, flags).map_err(db_error)?;
    writer.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
    let mode: String = writer
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::internal(format!(
            "SQLite refused WAL mode for {} (journal mode {mode})",
            path.display()
        )));
    }
    writer
        .pragma_update(None, "synchronous", "FULL")
        .map_err(db_error)?;
    init_schema(&writer)?;
    let readers = (0..readers.max(1))
        .map(|_| {
            let reader = Connection::open_with_flags(path, flags).map_err(db_error)?;
            reader.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
            reader
                .pragma_update(None, "query_only", true)
                .map_err(db_error)?;
            Ok(reader)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((writer, readers))
}

/// What every database has: the id counters.
fn init_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS plume_sequences (
             name TEXT PRIMARY KEY,
             next_id INTEGER NOT NULL
         );",
    )
    .map_err(db_error)
}

/// A rusqlite error as a Plume error: a constraint violation is 409
/// Conflict, anything else an internal error (logged, never sent).
fn db_error(error: rusqlite::Error) -> Error {
    if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
        conflict_message(&error.to_string())
    } else {
        Error::internal(error)
    }
}

/// 409 for a failed constraint; names the field when the failed index is a
/// declared unique index (`<table>__unique__<field>`).
fn conflict_message(detail: &str) -> Error {
    let field = detail
        .split_once("__unique__")
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

/// A declared index on a field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Index {
    field: String,
    unique: bool,
}

/// A service's settings, shared with its blocking tasks.
#[derive(Debug, Clone)]
struct Config {
    table: String,
    id_field: String,
    paginate: Option<Paginate>,
    multi: Vec<Method>,
    protected_fields: Arc<[String]>,
    indexes: Vec<Index>,
    start_id: i64,
}

/// A service over one table of a [`SqliteStore`]; see the
/// [module docs](self). Built from [`SqliteStore::service`] with the same
/// options as [`MemoryService`](super::MemoryService), plus declared
/// indexes.
///
/// ```
/// use plume::store::SqliteStore;
/// use plume::{Method, Paginate};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = SqliteStore::open(":memory:").await?;
/// let messages = store
///     .service("messages")?
///     .id_field("_id")
///     .paginate(Paginate { default: 10, max: 50 })
///     .multi_methods([Method::Create])
///     .index(["userId"]);
/// # let _ = messages;
/// # Ok::<(), plume::Error>(())
/// # }).unwrap();
/// ```
pub struct SqliteService {
    store: SqliteStore,
    config: Arc<Config>,
    /// Set once the table and its indexes exist.
    schema: Arc<OnceCell<()>>,
}

impl fmt::Debug for SqliteService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteService")
            .field("config", &self.config)
            .field("schema_ready", &self.schema.initialized())
            .finish_non_exhaustive()
    }
}

impl SqliteService {
    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        // The builder runs before any call shares the config, so this does
        // not copy; the schema must be (re)checked with the new indexes.
        change(Arc::make_mut(&mut self.config));
        self.schema = Arc::new(OnceCell::new());
        self
    }

    /// Sets the id field (Feathers' `id` option), e.g. `"_id"`.
    #[must_use]
    pub fn id_field(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.configure(|c| c.id_field = name)
    }

    /// Paginates `find`: a page of `default` records when the query has no
    /// `$limit`, at most `max`.
    #[must_use]
    pub fn paginate(self, paginate: Paginate) -> Self {
        self.configure(|c| c.paginate = Some(paginate))
    }

    /// Allows (`true`) or refuses (`false`) create, patch and remove on
    /// many records (Feathers' `multi: true`).
    #[must_use]
    pub fn multi(self, enabled: bool) -> Self {
        self.configure(|c| {
            c.multi = if enabled {
                vec![Method::Create, Method::Patch, Method::Remove]
            } else {
                Vec::new()
            };
        })
    }

    /// Allows calls on many records for these methods only (Feathers'
    /// `multi: ['create', 'patch']`).
    #[must_use]
    pub fn multi_methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods = methods.into_iter().collect();
        self.configure(|c| c.multi = methods)
    }

    /// Fields that external callers may not filter, sort or `$select` on
    /// (400); see [`crate::query`'s rule](crate::query#protected-fields).
    #[must_use]
    pub fn protected_fields<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let fields: Arc<[String]> = fields.into_iter().map(Into::into).collect();
        self.configure(|c| c.protected_fields = fields)
    }

    /// The first automatic id (0 by default), used when the table's counter
    /// is created, i.e. the first time the table is.
    #[must_use]
    pub fn start_id(self, first: i64) -> Self {
        self.configure(|c| c.start_id = first)
    }

    /// Declares an index on each of these fields (an expression index on
    /// `json_extract(data, '$.field')`), for fast equality lookups. Field
    /// names are identifiers; a bad one fails the table's creation.
    #[must_use]
    pub fn index<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declare(fields, false)
    }

    /// Declares a unique index on each of these fields: a create, update or
    /// patch that would give two records the same non-null value is 409
    /// Conflict. Records without the field (or with `null`) never conflict.
    #[must_use]
    pub fn unique<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declare(fields, true)
    }

    fn declare<I, S>(self, fields: I, unique: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let new: Vec<Index> = fields
            .into_iter()
            .map(|field| Index {
                field: field.into(),
                unique,
            })
            .collect();
        self.configure(|c| c.indexes.extend(new))
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.config.table
    }

    /// Creates the table, its indexes and its id counter if missing; runs
    /// once (again after a failure).
    pub async fn ensure_schema(&self) -> Result<()> {
        self.schema
            .get_or_try_init(|| {
                let config = Arc::clone(&self.config);
                self.store.write(move |tx| create_table(tx, &config))
            })
            .await
            .map(|_| ())
    }

    fn allows_multi(&self, method: &Method) -> bool {
        self.config.multi.contains(method)
    }

    fn options(&self, params: &Params, paginate: Option<Paginate>) -> QueryOptions {
        QueryOptions::new(self.config.id_field.as_str())
            .paginate(paginate)
            .protected_fields(Arc::clone(&self.config.protected_fields))
            .external(params.is_external())
    }

    /// Parses the query of a call other than `find` (no pagination).
    fn query(&self, params: &Params) -> Result<ParsedQuery> {
        query::parse_query(&params.query, &self.options(params, None))
    }

    /// Runs `work` on the writer, in a transaction, after making sure the
    /// table exists.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Config) -> Result<T> + Send + 'static,
    {
        self.ensure_schema().await?;
        let config = Arc::clone(&self.config);
        self.store.write(move |tx| work(tx, &config)).await
    }

    /// Runs `work` on a reader, in a transaction, after making sure the
    /// table exists.
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Config) -> Result<T> + Send + 'static,
    {
        self.ensure_schema().await?;
        let config = Arc::clone(&self.config);
        self.store.read(move |tx| work(tx, &config)).await
    }
}

/// `"name"`: a table or index name, already checked to be an identifier.
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

fn create_table(tx: &Transaction<'_>, config: &Config) -> Result<()> {
    let table = &config.table;
    let t = quoted(table);
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {t} (
             seq INTEGER PRIMARY KEY,
             id NOT NULL UNIQUE,
             id_int INTEGER,
             data TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS {} ON {t} (id_int);",
        quoted(&format!("{table}__id_int"))
    ))
    .map_err(db_error)?;
    for index in &config.indexes {
        let expr = sql::value_expr(&index.field).map_err(|_| {
            Error::general(format!(
                "Invalid field name '{}' declared as an index of '{table}'",
                index.field
            ))
        })?;
        let (kind, name) = if index.unique {
            ("UNIQUE INDEX", format!("{table}__unique__{}", index.field))
        } else {
            ("INDEX", format!("{table}__index__{}", index.field))
        };
        tx.execute_batch(&format!(
            "CREATE {kind} IF NOT EXISTS {} ON {t} ({expr});",
            quoted(&name)
        ))
        .map_err(db_error)?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO plume_sequences (name, next_id) VALUES (?1, ?2)",
        params![table, config.start_id],
    )
    .map_err(db_error)?;
    Ok(())
}

fn not_found(id: &Id) -> Error {
    Error::not_found(format!("No record found for id '{id}'"))
}

/// The data of update and patch: an object.
fn data_object<'d>(data: &'d Value, method: &str) -> Result<&'d Record> {
    data.as_object().ok_or_else(|| {
        Error::bad_request(format!(
            "The data of '{method}' must be an object, got {}",
            json_type(data)
        ))
    })
}

fn parse_record(text: &str) -> Result<Record> {
    serde_json::from_str(text).map_err(Error::internal)
}

fn to_text(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(Error::internal)
}

fn select(query: &ParsedQuery, record: &Record) -> Value {
    Value::Object(query.filters.project(record))
}

/// The `seq` of the record whose id matches `id`, as the memory store finds
/// it: an exact match first, then one that [`Id::matches`] across types
/// (the first in insertion order).
fn position(tx: &Transaction<'_>, table: &str, id: &Id) -> Result<Option<i64>> {
    let t = quoted(table);
    let found = match id {
        Id::Number(n) => tx
            .prepare_cached(&format!(
                "SELECT seq FROM {t} WHERE id_int = ?1 \
                 ORDER BY typeof(id) = 'integer' DESC, seq LIMIT 1"
            ))
            .and_then(|mut stmt| stmt.query_row([n], |row| row.get(0)).optional()),
        Id::String(s) => tx
            .prepare_cached(&format!(
                "SELECT seq FROM {t} WHERE id = ?1 OR id = ?2 \
                 ORDER BY typeof(id) = 'text' DESC LIMIT 1"
            ))
            .and_then(|mut stmt| {
                let int = s.parse::<i64>().map_or(SqlValue::Null, SqlValue::Integer);
                stmt.query_row(params![s, int], |row| row.get(0)).optional()
            }),
    };
    found.map_err(db_error)
}

/// The record at `seq`.
fn load(tx: &Transaction<'_>, table: &str, seq: i64) -> Result<Option<Record>> {
    let text: Option<String> = tx
        .prepare_cached(&format!(
            "SELECT data FROM {} WHERE seq = ?1",
            quoted(table)
        ))
        .and_then(|mut stmt| stmt.query_row([seq], |row| row.get(0)).optional())
        .map_err(db_error)?;
    text.as_deref().map(parse_record).transpose()
}

/// The record with `id` that matches the query's conditions, or 404. The
/// conditions are checked in Rust, with the memory store's own code.
fn locate(
    tx: &Transaction<'_>,
    config: &Config,
    id: &Id,
    query: &ParsedQuery,
) -> Result<(i64, Record)> {
    let Some(seq) = position(tx, &config.table, id)? else {
        return Err(not_found(id));
    };
    load(tx, &config.table, seq)?
        .filter(|record| query.matches(record))
        .map(|record| (seq, record))
        .ok_or_else(|| not_found(id))
}

/// Every record matching the query's conditions, in insertion order.
fn matching(tx: &Transaction<'_>, table: &str, query: &ParsedQuery) -> Result<Vec<(i64, Record)>> {
    let t = quoted(table);
    let compiled = sql::condition(&query.condition)?;
    let (where_sql, params) = match &compiled {
        Some(c) => (c.sql.as_str(), c.params.as_slice()),
        // Too many values to bind: filter in Rust below.
        None => ("1", &[][..]),
    };
    let mut stmt = tx
        .prepare(&format!(
            "SELECT seq, data FROM {t} WHERE {where_sql} ORDER BY seq"
        ))
        .map_err(db_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(db_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, text) = row.map_err(db_error)?;
        let record = parse_record(&text)?;
        if compiled.is_some() || query.matches(&record) {
            out.push((seq, record));
        }
    }
    Ok(out)
}

/// The integer an id is or reads as, for cross-type matching.
fn id_int(id: &Id) -> Option<i64> {
    match id {
        Id::Number(n) => Some(*n),
        Id::String(s) => s.parse().ok(),
    }
}

/// Inserts a record, giving it an id if it has none (the memory store's
/// rules); returns the stored record.
fn insert(tx: &Transaction<'_>, config: &Config, mut record: Record) -> Result<Record> {
    let supplied = match record.get(&config.id_field) {
        None => None,
        Some(value) => Id::from_value(value)?,
    };
    let id = match supplied {
        Some(id) => {
            if position(tx, &config.table, &id)?.is_some() {
                return Err(Error::conflict(format!(
                    "A record with id '{id}' already exists"
                )));
            }
            id
        }
        None => {
            let id = allocate(tx, config)?;
            record.insert(config.id_field.clone(), Value::from(id));
            Id::Number(id)
        }
    };
    let id_value = match &id {
        Id::Number(n) => SqlValue::Integer(*n),
        Id::String(s) => SqlValue::Text(s.clone()),
    };
    let text = to_text(&record)?;
    tx.prepare_cached(&format!(
        "INSERT INTO {} (id, id_int, data) VALUES (?1, ?2, ?3)",
        quoted(&config.table)
    ))
    .and_then(|mut stmt| stmt.execute(params![id_value, id_int(&id), text]))
    .map_err(db_error)?;
    Ok(record)
}

/// The next free integer id from the table's counter.
fn allocate(tx: &Transaction<'_>, config: &Config) -> Result<i64> {
    let mut next: i64 = tx
        .query_row(
            "SELECT next_id FROM plume_sequences WHERE name = ?1",
            [&config.table],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_error)?
        .unwrap_or(config.start_id);
    let id = loop {
        let candidate = next;
        next = candidate
            .checked_add(1)
            .ok_or_else(|| Error::general("No more ids available"))?;
        if position(tx, &config.table, &Id::Number(candidate))?.is_none() {
            break candidate;
        }
    };
    tx.execute(
        "INSERT INTO plume_sequences (name, next_id) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET next_id = excluded.next_id",
        params![config.table, next],
    )
    .map_err(db_error)?;
    Ok(id)
}

/// Writes a record's new data at `seq`.
fn store(tx: &Transaction<'_>, table: &str, seq: i64, record: &Record) -> Result<()> {
    let text = to_text(record)?;
    tx.prepare_cached(&format!(
        "UPDATE {} SET data = ?1 WHERE seq = ?2",
        quoted(table)
    ))
    .and_then(|mut stmt| stmt.execute(params![text, seq]))
    .map_err(db_error)?;
    Ok(())
}

fn delete(tx: &Transaction<'_>, table: &str, seq: i64) -> Result<()> {
    tx.prepare_cached(&format!("DELETE FROM {} WHERE seq = ?1", quoted(table)))
        .and_then(|mut stmt| stmt.execute([seq]))
        .map_err(db_error)?;
    Ok(())
}

/// `$limit` / `$skip` as SQL integers (`-1` is no limit).
fn sql_count(count: Option<usize>) -> i64 {
    count.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// `find` in SQL: the total (when paginated) and the page.
fn find_sql(
    tx: &Transaction<'_>,
    table: &str,
    query: &ParsedQuery,
    compiled: &sql::Compiled,
    count: bool,
) -> Result<(usize, Vec<Record>)> {
    let t = quoted(table);
    let filters = &query.filters;
    let total = if count {
        let n: i64 = tx
            .prepare(&format!("SELECT count(*) FROM {t} WHERE {}", compiled.sql))
            .and_then(|mut stmt| {
                stmt.query_row(rusqlite::params_from_iter(&compiled.params), |row| {
                    row.get(0)
                })
            })
            .map_err(db_error)?;
        usize::try_from(n).map_err(Error::internal)?
    } else {
        0
    };
    if filters.limit == Some(0) {
        return Ok((total, Vec::new()));
    }
    let n = compiled.params.len();
    let sql = format!(
        "SELECT data FROM {t} WHERE {} ORDER BY {} LIMIT ?{} OFFSET ?{}",
        compiled.sql,
        sql::order_by(&filters.sort)?,
        n + 1,
        n + 2
    );
    let mut values = compiled.params.clone();
    values.push(SqlValue::Integer(sql_count(filters.limit)));
    values.push(SqlValue::Integer(sql_count(Some(filters.skip))));
    let mut stmt = tx.prepare(&sql).map_err(db_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&values), |row| {
            row.get::<_, String>(0)
        })
        .map_err(db_error)?;
    let mut data = Vec::new();
    for row in rows {
        data.push(parse_record(&row.map_err(db_error)?)?);
    }
    Ok((total, data))
}

/// `find` in Rust, for a query too large to compile: the memory store's
/// algorithm over every record.
fn find_rust(
    tx: &Transaction<'_>,
    table: &str,
    query: &ParsedQuery,
) -> Result<(usize, Vec<Record>)> {
    let mut hits: Vec<Record> = matching(tx, table, query)?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    query::sort_records(&mut hits, &query.filters.sort);
    let total = hits.len();
    let data = hits
        .into_iter()
        .skip(query.filters.skip)
        .take(query.filters.limit.unwrap_or(usize::MAX))
        .collect();
    Ok((total, data))
}

#[async_trait]
impl Service for SqliteService {
    async fn find(&self, params: &Params) -> Result<Value> {
        let paginate = effective_paginate(self.config.paginate, params.paginate);
        let query = query::parse_query(&params.query, &self.options(params, paginate))?;
        let compiled = sql::condition(&query.condition)?;
        let limit = query.filters.limit;
        let skip = query.filters.skip;
        let (total, records, query) = self
            .read(move |tx, config| {
                let (total, records) = match &compiled {
                    Some(compiled) => {
                        find_sql(tx, &config.table, &query, compiled, paginate.is_some())?
                    }
                    None => find_rust(tx, &config.table, &query)?,
                };
                Ok((total, records, query))
            })
            .await?;
        let data = records.iter().map(|r| select(&query, r)).collect();
        Ok(match paginate {
            Some(paginate) => page(total, limit.unwrap_or(paginate.max), skip, data),
            None => Value::Array(data),
        })
    }

    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let query = self.query(params)?;
        let id = id.clone();
        self.read(move |tx, config| {
            let (_, record) = locate(tx, config, &id, &query)?;
            Ok(select(&query, &record))
        })
        .await
    }

    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        match data {
            Value::Object(record) => {
                let query = self.query(params)?;
                let record = record.clone();
                self.write(move |tx, config| Ok(select(&query, &insert(tx, config, record)?)))
                    .await
            }
            Value::Array(items) => {
                if !self.allows_multi(&Method::Create) {
                    return Err(Error::method_not_allowed("Can not create multiple entries"));
                }
                let records = items
                    .iter()
                    .map(|item| {
                        item.as_object().cloned().ok_or_else(|| {
                            Error::bad_request(format!(
                                "The data of 'create' must be an object or an array of \
                                 objects, got an array containing {}",
                                json_type(item)
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let query = self.query(params)?;
                // One transaction: an error rolls every insert back.
                self.write(move |tx, config| {
                    records
                        .into_iter()
                        .map(|record| Ok(select(&query, &insert(tx, config, record)?)))
                        .collect::<Result<Vec<_>>>()
                        .map(Value::Array)
                })
                .await
            }
            other => Err(Error::bad_request(format!(
                "The data of 'create' must be an object or an array of objects, got {}",
                json_type(other)
            ))),
        }
    }

    async fn update(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        let (Some(id), false) = (id, data.is_array()) else {
            return Err(Error::bad_request(
                "You can not replace multiple instances. Did you mean 'patch'?",
            ));
        };
        let data = data_object(data, "update")?.clone();
        let query = self.query(params)?;
        let id = id.clone();
        self.write(move |tx, config| {
            let (seq, record) = locate(tx, config, &id, &query)?;
            let stored_id = record.get(&config.id_field).cloned().unwrap_or(Value::Null);
            let mut replacement = data;
            replacement.insert(config.id_field.clone(), stored_id);
            store(tx, &config.table, seq, &replacement)?;
            Ok(select(&query, &replacement))
        })
        .await
    }

    async fn patch(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        if id.is_none() && !self.allows_multi(&Method::Patch) {
            return Err(Error::method_not_allowed("Can not patch multiple entries"));
        }
        let data = data_object(data, "patch")?.clone();
        let query = self.query(params)?;
        let id = id.cloned();
        self.write(move |tx, config| {
            let merge = |seq: i64, mut record: Record| -> Result<Value> {
                for (field, value) in &data {
                    if *field != config.id_field {
                        record.insert(field.clone(), value.clone());
                    }
                }
                store(tx, &config.table, seq, &record)?;
                Ok(select(&query, &record))
            };
            match &id {
                Some(id) => {
                    let (seq, record) = locate(tx, config, id, &query)?;
                    merge(seq, record)
                }
                None => matching(tx, &config.table, &query)?
                    .into_iter()
                    .map(|(seq, record)| merge(seq, record))
                    .collect::<Result<Vec<_>>>()
                    .map(Value::Array),
            }
        })
        .await
    }

    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        if id.is_none() && !self.allows_multi(&Method::Remove) {
            return Err(Error::method_not_allowed("Can not remove multiple entries"));
        }
        let query = self.query(params)?;
        let id = id.cloned();
        self.write(move |tx, config| match &id {
            Some(id) => {
                let (seq, record) = locate(tx, config, id, &query)?;
                delete(tx, &config.table, seq)?;
                Ok(select(&query, &record))
            }
            None => matching(tx, &config.table, &query)?
                .into_iter()
                .map(|(seq, record)| {
                    delete(tx, &config.table, seq)?;
                    Ok(select(&query, &record))
                })
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
        })
        .await
    }

    fn methods(&self) -> &'static [Method] {
        &Method::STANDARD
    }

    /// Creates the table and its indexes, so that a bad declaration or an
    /// unreachable database shows at start rather than on the first call.
    async fn setup(&self, _app: &App, _path: &str) -> Result<()> {
        self.ensure_schema().await
    }
}

#[cfg(test)]
mod tests;
