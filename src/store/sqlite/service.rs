//! [`SqliteService`]: the service, its store options and the six methods;
//! what it declares (indexes, unique fields) is in `declared`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::OnceCell;

pub(super) use super::declared::{Config, Index};
use super::table::{self, Record, fetch, find_sql, insert, locate, matching, select};
use super::{SqliteStore, schema, sql};
use crate::query::{self, ParsedQuery, QueryOptions};
use crate::store::base::{StoreOptions, ToCreate, store_builder};
use crate::store::{data_object, effective_paginate, not_found, page};
use crate::{App, Error, Id, Method, Paginate, Params, Result, Service};

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
                declared: Default::default(),
            }),
            schema: Arc::new(OnceCell::new()),
        }
    }

    pub(super) fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
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
            .fold_case(self.config.fold_case())
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
