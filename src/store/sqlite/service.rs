//! [`SqliteService`]: the builder and the six methods.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::table::{self, Record, fetch, find_sql, insert, locate, matching, select};
use super::{SqliteStore, schema, sql};
use crate::query::{self, ParsedQuery, QueryOptions};
use crate::store::base::{StoreOptions, ToCreate, store_builder};
use crate::store::{data_object, effective_paginate, not_found, page};
use crate::{App, Error, Id, Method, Paginate, Params, Result, Service};

/// A declared index: on one field, or (not unique) compound over several,
/// equality on all but the last and `$sort` on the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Index {
    pub(super) fields: Vec<String>,
    pub(super) unique: bool,
    /// Made on `lower(value)`: values differing only in ASCII case collide.
    pub(super) ignore_case: bool,
}

/// A service's settings, shared with its blocking tasks.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) table: String,
    /// The table's key in the record cache: its name in lower case, since
    /// SQLite's names ignore case (`Users` and `users` are one table).
    pub(super) cache_key: String,
    /// What every store has (`store::base`); its first id is used when the
    /// table's id counter is created, i.e. the first time the table is.
    pub(super) options: StoreOptions,
    pub(super) indexes: Vec<Index>,
    /// Fields whose equality ignores case (from the case-insensitive
    /// unique indexes), shared with every call's query options.
    pub(super) fold_case: Arc<[String]>,
}

impl Config {
    /// True when a declared index covers `field`: a comparison of it is
    /// left in SQL, where the planner can use the index (see
    /// [`sql::condition`]).
    pub(super) fn indexed(&self, field: &str) -> bool {
        self.indexes
            .iter()
            .any(|index| index.fields.iter().any(|f| f == field))
    }

    /// True when a declared index sorts by `field`: a plain index on it,
    /// or a compound index ending with it (see `schema`).
    pub(super) fn sortable(&self, field: &str) -> bool {
        self.indexes
            .iter()
            .any(|index| !index.unique && index.fields.last().is_some_and(|f| f == field))
    }
}

/// A service over one table of a [`SqliteStore`]; see the
/// [module docs](crate::store::sqlite). Built from [`SqliteStore::service`] with the same
/// options as [`MemoryService`](crate::store::MemoryService), plus declared
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
    pub(super) config: Arc<Config>,
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

store_builder!(SqliteService);

impl SqliteService {
    /// A service over `table` (already checked) with default options.
    pub(super) fn new(store: SqliteStore, table: &str) -> Self {
        Self {
            store,
            config: Arc::new(Config {
                table: table.to_owned(),
                cache_key: table.to_ascii_lowercase(),
                options: StoreOptions::default(),
                indexes: Vec::new(),
                fold_case: Arc::from(Vec::new()),
            }),
            schema: Arc::new(OnceCell::new()),
        }
    }

    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        // The builder runs before any call shares the config, so this does
        // not copy; the schema must be (re)checked with the new indexes.
        change(Arc::make_mut(&mut self.config));
        self.schema = Arc::new(OnceCell::new());
        self
    }

    /// Changes the options every store has (its builder methods, from
    /// `store::base`).
    fn with_options(self, change: impl FnOnce(&mut StoreOptions)) -> Self {
        self.configure(|c| change(&mut c.options))
    }

    /// Declares an index on each of these fields, for fast equality,
    /// `$in` and range lookups and `$sort` on the field: two expression
    /// indexes, on `json_extract(data, '$.field')` with the value's JSON
    /// type (a filtered `total` is counted from the index alone) and on
    /// the field's sort key. Field names are identifiers; a bad one fails
    /// the table's creation.
    ///
    /// An index no longer declared is dropped when the service is set up:
    /// the declarations of the last service set up over a table decide its
    /// indexes.
    #[must_use]
    pub fn index<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declare(fields, false)
    }

    /// Declares one index over these fields together: equality (`field:
    /// value`) on every field but the last, and `$sort` on the last. For a
    /// page of one user's messages, newest first (`{userId: 7, $sort:
    /// {createdAt: -1}}`), `compound_index(["userId", "createdAt"])` reads
    /// `$limit` records, however many the user has.
    ///
    /// ```
    /// # use plume::store::SqliteStore;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = SqliteStore::open(":memory:").await?;
    /// let messages = store.service("messages")?.compound_index(["userId", "createdAt"]);
    /// messages.ensure_schema().await?;
    /// # Ok::<(), plume::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn compound_index<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let index = Index {
            fields: fields.into_iter().map(Into::into).collect(),
            unique: false,
            ignore_case: false,
        };
        self.configure(|c| c.indexes.push(index))
    }

    /// Declares the indexes a configuration lists for this service (as
    /// `sqlite.indexes.<service>` in the default app's config), on top of
    /// those declared in code. Each entry is a field name (as
    /// [`index`](Self::index)), an array of field names (as
    /// [`compound_index`](Self::compound_index)), or
    /// `{"unique": "field"}`, optionally with `"ignoreCase": true` (as
    /// [`unique`](Self::unique) and
    /// [`unique_ignoring_case`](Self::unique_ignoring_case)):
    ///
    /// ```json
    /// ["createdAt", ["userId", "createdAt"], {"unique": "email", "ignoreCase": true}]
    /// ```
    ///
    /// Anything else is a GeneralError naming the entry.
    pub fn indexes_from_config(self, entries: &Value) -> Result<Self> {
        let table = self.config.table.clone();
        let bad = |entry: &Value| {
            Error::general(format!(
                "Invalid index {entry} for '{table}': use a field name, an array of field names, \
                 or {{\"unique\": \"field\", \"ignoreCase\": true}}"
            ))
        };
        let Value::Array(entries) = entries else {
            return Err(bad(entries));
        };
        let mut service = self;
        for entry in entries {
            service = match entry {
                Value::String(field) => service.index([field.as_str()]),
                Value::Array(fields) if !fields.is_empty() => {
                    let fields = fields
                        .iter()
                        .map(|f| f.as_str().map(str::to_owned).ok_or_else(|| bad(entry)))
                        .collect::<Result<Vec<_>>>()?;
                    if fields.len() == 1 {
                        service.index(fields)
                    } else {
                        service.compound_index(fields)
                    }
                }
                Value::Object(object) => {
                    let field = object.get("unique").and_then(Value::as_str);
                    let ignore_case = match object.get("ignoreCase") {
                        None => Some(false),
                        Some(flag) => flag.as_bool(),
                    };
                    let known = object.keys().all(|k| k == "unique" || k == "ignoreCase");
                    match (field, ignore_case, known) {
                        (Some(field), Some(true), true) => service.unique_ignoring_case([field]),
                        (Some(field), Some(false), true) => service.unique([field]),
                        _ => return Err(bad(entry)),
                    }
                }
                _ => return Err(bad(entry)),
            };
        }
        Ok(service)
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

    /// Declares a unique index on each of these fields that ignores ASCII
    /// case, for emails and login names: `ADA@x` conflicts with `ada@x`
    /// (409), the value is stored as given, and equality, `$ne`, `$in` and
    /// `$nin` on the field ignore case too, so a lookup finds the record
    /// whatever case it is typed in (through the same index). Characters
    /// outside ASCII are compared as they are (SQLite's `lower()`).
    #[must_use]
    pub fn unique_ignoring_case<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let fields: Vec<String> = fields.into_iter().map(Into::into).collect();
        self.configure(|c| {
            let mut folded: Vec<String> = c.fold_case.to_vec();
            for field in &fields {
                c.indexes.push(Index {
                    fields: vec![field.clone()],
                    unique: true,
                    ignore_case: true,
                });
                if !folded.contains(field) {
                    folded.push(field.clone());
                }
            }
            c.fold_case = Arc::from(folded);
        })
    }

    fn declare<I, S>(self, fields: I, unique: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let new: Vec<Index> = fields
            .into_iter()
            .map(|field| Index {
                fields: vec![field.into()],
                unique,
                ignore_case: false,
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
                self.store.write(move |tx| schema::ensure(tx, &config))
            })
            .await
            .map(|_| ())
    }

    fn options(&self, params: &Params, paginate: Option<Paginate>) -> QueryOptions {
        self.config
            .options
            .query_options(params, paginate)
            .fold_case(Arc::clone(&self.config.fold_case))
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
        F: FnOnce(&Connection, &Config) -> Result<T> + Send + 'static,
    {
        self.ensure_schema().await?;
        let config = Arc::clone(&self.config);
        self.store
            .write_table(Some(self.config.cache_key.clone()), move |tx| {
                work(tx, &config)
            })
            .await
    }

    /// Runs `work` on a reader, in a transaction, after making sure the
    /// table exists.
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Config) -> Result<T> + Send + 'static,
    {
        self.ensure_schema().await?;
        let config = Arc::clone(&self.config);
        self.store
            .read_client_query(move |tx| work(tx, &config))
            .await
    }
}

#[async_trait]
impl Service for SqliteService {
    fn id_field(&self) -> Option<&str> {
        Some(&self.config.options.id_field)
    }

    async fn find(&self, params: &Params) -> Result<Value> {
        let paginate = effective_paginate(self.config.options.paginate, params.paginate);
        let query = query::parse_query(&params.query, &self.options(params, paginate))?;
        let compiled = sql::condition(&query.condition, &|f| self.config.indexed(f))?;
        let limit = query.filters.limit;
        let skip = query.filters.skip;
        let (total, records, query) = self
            .read(move |tx, config| {
                let (total, records) = find_sql(tx, config, &query, &compiled, paginate.is_some())?;
                Ok((total, records, query))
            })
            .await?;
        let data = records
            .into_iter()
            .map(|r| Value::Object(query.filters.project_owned(r)))
            .collect();
        Ok(match paginate {
            Some(paginate) => page(total, limit.unwrap_or(paginate.max), skip, data),
            None => Value::Array(data),
        })
    }

    /// Reads the record from the store's record cache when it is there
    /// (see the [module docs](crate::store::sqlite)), from a reader
    /// otherwise; the query's conditions are checked in Rust either way,
    /// with the same code.
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let query = self.query(params)?;
        let cache = &self.store.shared.records;
        let table = self.config.cache_key.as_str();
        let record = match cache.get(table, id) {
            Some(record) => record,
            None => {
                let seen = cache.generation(table);
                let key = id.clone();
                let found = self
                    .read(move |tx, config| fetch(tx, &config.table, &key))
                    .await?;
                let Some((_, record)) = found else {
                    return Err(not_found(id));
                };
                let record = Arc::new(record);
                cache.insert(table, id.clone(), Arc::clone(&record), seen);
                record
            }
        };
        if query.matches(&record) {
            Ok(select(&query, &record))
        } else {
            Err(not_found(id))
        }
    }

    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        match self.config.options.to_create(data)? {
            ToCreate::One(record) => {
                let query = self.query(params)?;
                let record = record.clone();
                self.write(move |tx, config| Ok(select(&query, &insert(tx, config, record)?)))
                    .await
            }
            ToCreate::Many(records) => {
                let records: Vec<_> = records.into_iter().cloned().collect();
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
            let stored_id = record
                .get(&config.options.id_field)
                .cloned()
                .unwrap_or(Value::Null);
            let mut replacement = data;
            replacement.insert(config.options.id_field.clone(), stored_id);
            table::store(tx, &config.table, seq, &replacement)?;
            Ok(select(&query, &replacement))
        })
        .await
    }

    async fn patch(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        if id.is_none() {
            self.config.options.check_many(&Method::Patch)?;
        }
        let data = data_object(data, "patch")?.clone();
        let query = self.query(params)?;
        let id = id.cloned();
        self.write(move |tx, config| {
            let merge = |seq: i64, mut record: Record| -> Result<Value> {
                for (field, value) in &data {
                    if *field != config.options.id_field {
                        record.insert(field.clone(), value.clone());
                    }
                }
                table::store(tx, &config.table, seq, &record)?;
                Ok(select(&query, &record))
            };
            match &id {
                Some(id) => {
                    let (seq, record) = locate(tx, config, id, &query)?;
                    merge(seq, record)
                }
                None => matching(tx, config, &query)?
                    .into_iter()
                    .map(|(seq, record)| merge(seq, record))
                    .collect::<Result<Vec<_>>>()
                    .map(Value::Array),
            }
        })
        .await
    }

    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        if id.is_none() {
            self.config.options.check_many(&Method::Remove)?;
        }
        let query = self.query(params)?;
        let id = id.cloned();
        self.write(move |tx, config| match &id {
            Some(id) => {
                let (seq, record) = locate(tx, config, id, &query)?;
                table::delete(tx, &config.table, seq)?;
                Ok(select(&query, &record))
            }
            None => matching(tx, config, &query)?
                .into_iter()
                .map(|(seq, record)| {
                    table::delete(tx, &config.table, seq)?;
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
