//! [`PostgresService`]: the service over one table, its options and
//! declarations, and the six methods.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use tokio_postgres::types::{ToSql, Type};

use super::schema::{self, quoted, sequence};
use super::sql::{self, Compiled};
use super::{PostgresStore, db_error};
use crate::query::{self, ParsedQuery, QueryOptions};
use crate::store::base::{StoreOptions, ToCreate, store_builder};
use crate::store::declared::{Declared, declared_builder};
use crate::store::{data_object, effective_paginate, not_found, page};
use crate::{App, Error, Id, Method, Paginate, Params, Result, Service};

/// A record: a JSON object.
type Record = Map<String, Value>;

/// The most statements a connection keeps prepared (see `find`).
pub(super) const PREPARED_PER_CONNECTION: usize = 64;

/// A service's settings, shared by its calls.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) table: String,
    pub(super) options: StoreOptions,
    pub(super) declared: Declared,
    /// The table's fixed statements, written once rather than per call.
    sql: Statements,
}

/// The statements of one table that do not depend on a query.
#[derive(Debug, Clone)]
struct Statements {
    /// The table's name, quoted.
    table: String,
    get: String,
    /// Inserts a record under a given id key (`$1`) and text (`$2`).
    insert: String,
    /// Inserts a record whose text up to its id is `$1`, taking the id
    /// from the sequence: one round trip.
    insert_numbered: String,
    nextval: String,
    store: String,
    delete: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        let t = quoted(table);
        let sequence = sequence(table);
        Self {
            get: format!("SELECT body FROM {t} WHERE id_key = $1"),
            insert: format!(
                "INSERT INTO {t} (id_key, data, body) VALUES ($1, $2::jsonb, $2) \
                 ON CONFLICT (id_key) DO NOTHING RETURNING seq"
            ),
            insert_numbered: format!(
                "WITH next AS (SELECT nextval('{sequence}')::text AS n) \
                 INSERT INTO {t} (id_key, data, body) \
                 SELECT n, ($1 || n || '}}')::jsonb, $1 || n || '}}' FROM next \
                 ON CONFLICT (id_key) DO NOTHING RETURNING id_key"
            ),
            nextval: format!("SELECT nextval('{sequence}')"),
            store: format!(
                "UPDATE {t} AS r SET body = u.body, data = u.body::jsonb \
                 FROM unnest($1::bigint[], $2::text[]) AS u(seq, body) WHERE r.seq = u.seq"
            ),
            delete: format!("DELETE FROM {t} WHERE seq = ANY($1)"),
            table: t,
        }
    }
}

/// How many numbers a create takes from the sequence before giving up:
/// each one taken is a client-chosen id standing in the way.
const MAX_ID_TRIES: usize = 10_000;

/// A service over one table of a [`PostgresStore`]; see the
/// [module docs](crate::store::postgres). Built from
/// [`PostgresStore::service`] with the same options as
/// [`MemoryService`](crate::store::MemoryService), plus declared indexes.
///
/// ```no_run
/// use plume::store::PostgresStore;
/// use plume::Paginate;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = PostgresStore::connect("postgres://app@127.0.0.1:5432/app").await?;
/// let messages = store
///     .service("messages")?
///     .paginate(Paginate { default: 10, max: 50 })
///     .compound_index(["userId", "createdAt"]);
/// messages.ensure_schema().await?;
/// # Ok::<(), plume::Error>(())
/// # }).unwrap();
/// ```
pub struct PostgresService {
    store: PostgresStore,
    config: Arc<Config>,
    /// Set once the table and its indexes exist.
    schema: Arc<OnceCell<()>>,
}

impl fmt::Debug for PostgresService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresService")
            .field("config", &self.config)
            .field("schema_ready", &self.schema.initialized())
            .finish_non_exhaustive()
    }
}

store_builder!(PostgresService);
declared_builder!(PostgresService);

/// Bound values: every one is `text`.
fn text_params(values: &[String]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    values
        .iter()
        .map(|v| (v as &(dyn ToSql + Sync), Type::TEXT))
        .collect()
}

fn parse(body: &str) -> Result<Record> {
    serde_json::from_str(body).map_err(Error::internal)
}

fn to_text(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(Error::internal)
}

fn select(query: &ParsedQuery, record: &Record) -> Value {
    Value::Object(query.filters.project(record))
}

/// The id's key in `id_key`: ids that [`Id::matches`] across types share
/// one (`5` and `"5"`), so the unique constraint refuses both at once,
/// across instances. `None` for a text PostgreSQL cannot hold (it matches
/// no record).
fn id_key(id: &Id) -> Option<String> {
    match id {
        Id::Number(n) => Some(n.to_string()),
        Id::String(s) if s.contains('\0') => None,
        Id::String(s) => Some(match Id::canonical_int(s) {
            Some(n) => n.to_string(),
            None => format!("s{s}"),
        }),
    }
}

impl PostgresService {
    pub(super) fn new(store: PostgresStore, table: &str) -> Self {
        Self {
            store,
            config: Arc::new(Config {
                table: table.to_owned(),
                options: StoreOptions::default(),
                declared: Declared::default(),
                sql: Statements::new(table),
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

    fn with_options(self, change: impl FnOnce(&mut StoreOptions)) -> Self {
        self.configure(|c| change(&mut c.options))
    }

    fn with_declared(self, change: impl FnOnce(&mut Declared)) -> Self {
        self.configure(|c| change(&mut c.declared))
    }

    fn declared(&self) -> &Declared {
        &self.config.declared
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.config.table
    }

    /// Creates the table, its sequence, its count trigger and its indexes
    /// if missing (and drops Plume's indexes it no longer declares); runs
    /// once (again after a failure).
    pub async fn ensure_schema(&self) -> Result<()> {
        self.schema
            .get_or_try_init(|| async {
                let mut client = self.store.client().await?;
                let tx = client.transaction().await.map_err(db_error)?;
                schema::ensure(&tx, &self.config).await?;
                tx.commit().await.map_err(db_error)
            })
            .await
            .map(|_| ())
    }

    pub(super) fn options(&self, params: &Params, paginate: Option<Paginate>) -> QueryOptions {
        self.config
            .options
            .query_options(params, paginate)
            .fold_case(Arc::clone(&self.config.declared.fold_case))
    }

    /// Parses the query of a call other than `find` (no pagination).
    fn query(&self, params: &Params) -> Result<ParsedQuery> {
        query::parse_query(&params.query, &self.options(params, None))
    }

    pub(super) fn compile(&self, query: &ParsedQuery) -> Result<Compiled> {
        let declared = &self.config.declared;
        // A field with only a (partial) unique index needs its condition
        // written out for the planner to use it.
        sql::condition(&query.condition, &|f| {
            declared.unique(f)
                && !declared
                    .indexes
                    .iter()
                    .any(|i| !i.unique && i.fields.iter().any(|x| x == f))
        })
    }

    /// A unique violation names the field when it is a declared unique
    /// index's.
    fn conflict(&self, error: tokio_postgres::Error) -> Error {
        let field = error
            .as_db_error()
            .filter(|db| *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            .and_then(|db| db.constraint())
            .and_then(|name| schema::unique_field(&self.config, name));
        match field {
            Some(field) => Error::conflict(format!("A record with this '{field}' already exists")),
            None => db_error(error),
        }
    }

    /// Inserts one record in `client`'s current transaction (or alone),
    /// giving it the next free id from the sequence when it has none.
    async fn insert(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        mut record: Record,
    ) -> Result<Record> {
        let id_field = &self.config.options.id_field;
        match record
            .get(id_field)
            .map(Id::from_value)
            .transpose()?
            .flatten()
        {
            Some(id) => {
                let key = id_key(&id).ok_or_else(|| {
                    Error::bad_request(
                        "A string holds a character PostgreSQL cannot store (U+0000)",
                    )
                })?;
                if self.insert_as(client, &key, &record).await? {
                    Ok(record)
                } else {
                    Err(Error::conflict(format!(
                        "A record with id '{id}' already exists"
                    )))
                }
            }
            // Named as null: the id takes that place, so the record's text
            // is written after the number is taken (two round trips).
            None if record.contains_key(id_field) => {
                let next = client
                    .prepare_cached(&self.config.sql.nextval)
                    .await
                    .map_err(db_error)?;
                for _ in 0..MAX_ID_TRIES {
                    let id: i64 = client.query_one(&next, &[]).await.map_err(db_error)?.get(0);
                    record.insert(id_field.clone(), Value::from(id));
                    if self.insert_as(client, &id.to_string(), &record).await? {
                        return Ok(record);
                    }
                }
                Err(Error::general("No free id found for the record"))
            }
            // The id goes last (a new key), so the record's text is known
            // up to it: the statement takes the number and writes it in.
            None => {
                let numbered = client
                    .prepare_typed_cached(&self.config.sql.insert_numbered, &[Type::TEXT])
                    .await
                    .map_err(db_error)?;
                let mut prefix = to_text(&record)?;
                prefix.pop();
                if !record.is_empty() {
                    prefix.push(',');
                }
                prefix.push_str(&serde_json::to_string(id_field).map_err(Error::internal)?);
                prefix.push(':');
                // A client-chosen id where the sequence arrives: the next
                // try takes the next number (none is ever given twice).
                for _ in 0..MAX_ID_TRIES {
                    let inserted = client
                        .query_opt(&numbered, &[&prefix])
                        .await
                        .map_err(|e| self.conflict(e))?;
                    if let Some(row) = inserted {
                        let id: i64 = row.get::<_, &str>(0).parse().map_err(Error::internal)?;
                        record.insert(id_field.clone(), Value::from(id));
                        return Ok(record);
                    }
                }
                Err(Error::general("No free id found for the record"))
            }
        }
    }

    /// Inserts `record` under the id key `key`; false when the key is
    /// taken.
    async fn insert_as(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        key: &str,
        record: &Record,
    ) -> Result<bool> {
        let insert = client
            .prepare_typed_cached(&self.config.sql.insert, &[Type::TEXT, Type::TEXT])
            .await
            .map_err(db_error)?;
        let body = to_text(record)?;
        let inserted = client
            .query_opt(&insert, &[&key, &body])
            .await
            .map_err(|e| self.conflict(e))?;
        Ok(inserted.is_some())
    }

    /// The records with `id` (one at most) or matching the query,
    /// locked for an update, in insertion order.
    async fn locate(
        &self,
        client: &deadpool_postgres::Transaction<'_>,
        id: Option<&Id>,
        query: &ParsedQuery,
    ) -> Result<Vec<(i64, Record)>> {
        let mut compiled = self.compile(query)?;
        if let Some(id) = id {
            let Some(key) = id_key(id) else {
                return Ok(Vec::new());
            };
            compiled.params.push(key);
            compiled.sql = format!("id_key = ${} AND ({})", compiled.params.len(), compiled.sql);
        }
        let rows = client
            .query_typed(
                &format!(
                    "SELECT seq, body FROM {} WHERE {} ORDER BY seq FOR UPDATE",
                    self.config.sql.table, compiled.sql
                ),
                &text_params(&compiled.params),
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((row.get::<_, i64>(0), parse(row.get::<_, &str>(1))?)))
            .collect()
    }

    /// Writes records' new bodies, in one statement.
    async fn store_all(
        &self,
        client: &deadpool_postgres::Transaction<'_>,
        rows: &[(i64, Record)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
        let bodies = rows
            .iter()
            .map(|(_, record)| to_text(record))
            .collect::<Result<Vec<_>>>()?;
        let statement = client
            .prepare_cached(&self.config.sql.store)
            .await
            .map_err(db_error)?;
        client
            .execute(&statement, &[&seqs, &bodies])
            .await
            .map_err(|e| self.conflict(e))?;
        Ok(())
    }

    /// Runs `work` in a transaction on a pooled connection; rolled back
    /// when `work` fails. A transaction dropped unfinished (the call was
    /// cancelled) is rolled back by tokio-postgres before the connection
    /// is used again.
    async fn in_transaction<T>(
        &self,
        work: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.ensure_schema().await?;
        let mut client = self.store.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let out = work(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(out)
    }
}

#[async_trait]
impl Service for PostgresService {
    fn id_field(&self) -> Option<&str> {
        Some(&self.config.options.id_field)
    }

    async fn find(&self, params: &Params) -> Result<Value> {
        let paginate = effective_paginate(self.config.options.paginate, params.paginate);
        let query = query::parse_query(&params.query, &self.options(params, paginate))?;
        let compiled = self.compile(&query)?;
        self.ensure_schema().await?;
        let filters = &query.filters;
        let statement = find_statement(&self.config.table, &query, &compiled, paginate.is_some())?;
        let client = self.store.reader().await?;
        // A query shape seen before runs as a prepared statement (planned
        // once per connection); past PREPARED_PER_CONNECTION shapes a
        // connection plans each new one every time, so a client sending
        // endless different queries fills no cache.
        let rows = if client.statement_cache.size() < PREPARED_PER_CONNECTION {
            let prepared = client
                .prepare_typed_cached(&statement, &vec![Type::TEXT; compiled.params.len()])
                .await
                .map_err(db_error)?;
            let params: Vec<&(dyn ToSql + Sync)> = compiled
                .params
                .iter()
                .map(|p| p as &(dyn ToSql + Sync))
                .collect();
            client.query(&prepared, &params).await
        } else {
            client
                .query_typed(&statement, &text_params(&compiled.params))
                .await
        }
        .map_err(db_error)?;
        let mut data = Vec::with_capacity(rows.len());
        let mut total: Option<i64> = None;
        for row in &rows {
            match row.get::<_, Option<&str>>(0) {
                Some(body) => data.push(Value::Object(filters.project_owned(parse(body)?))),
                None => total = row.get(1),
            }
        }
        Ok(match paginate {
            Some(paginate) => {
                // No total: the page was shorter than `$limit` and told it.
                let total = match total {
                    Some(n) => usize::try_from(n).map_err(Error::internal)?,
                    None => filters.skip + data.len(),
                };
                page(
                    total,
                    filters.limit.unwrap_or(paginate.max),
                    filters.skip,
                    data,
                )
            }
            None => Value::Array(data),
        })
    }

    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let query = self.query(params)?;
        self.ensure_schema().await?;
        let Some(key) = id_key(id) else {
            return Err(not_found(id));
        };
        let client = self.store.reader().await?;
        let statement = client
            .prepare_typed_cached(&self.config.sql.get, &[Type::TEXT])
            .await
            .map_err(db_error)?;
        let row = client
            .query_opt(&statement, &[&key])
            .await
            .map_err(db_error)?
            .ok_or_else(|| not_found(id))?;
        let record = parse(row.get::<_, &str>(0))?;
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
                self.ensure_schema().await?;
                let client = self.store.client().await?;
                let record = self.insert(&client, record.clone()).await?;
                Ok(select(&query, &record))
            }
            ToCreate::Many(records) => {
                let records: Vec<Record> = records.into_iter().cloned().collect();
                let query = self.query(params)?;
                // One transaction: an error rolls every insert back.
                self.in_transaction(async |tx| {
                    let mut out = Vec::with_capacity(records.len());
                    for record in records {
                        out.push(select(&query, &self.insert(tx, record).await?));
                    }
                    Ok(Value::Array(out))
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
        self.in_transaction(async |tx| {
            let Some((seq, record)) = self.locate(tx, Some(id), &query).await?.pop() else {
                return Err(not_found(id));
            };
            let id_field = &self.config.options.id_field;
            let stored_id = record.get(id_field).cloned().unwrap_or(Value::Null);
            let mut replacement = data;
            replacement.insert(id_field.clone(), stored_id);
            self.store_all(tx, std::slice::from_ref(&(seq, replacement.clone())))
                .await?;
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
        self.in_transaction(async |tx| {
            let mut rows = self.locate(tx, id, &query).await?;
            if rows.is_empty()
                && let Some(id) = id
            {
                return Err(not_found(id));
            }
            let id_field = &self.config.options.id_field;
            for (_, record) in &mut rows {
                for (field, value) in &data {
                    if field != id_field {
                        record.insert(field.clone(), value.clone());
                    }
                }
            }
            self.store_all(tx, &rows).await?;
            let mut out: Vec<Value> = rows.iter().map(|(_, r)| select(&query, r)).collect();
            Ok(match id {
                Some(_) => out.pop().unwrap_or(Value::Null),
                None => Value::Array(out),
            })
        })
        .await
    }

    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        if id.is_none() {
            self.config.options.check_many(&Method::Remove)?;
        }
        let query = self.query(params)?;
        self.in_transaction(async |tx| {
            let rows = self.locate(tx, id, &query).await?;
            if rows.is_empty()
                && let Some(id) = id
            {
                return Err(not_found(id));
            }
            let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
            let statement = tx
                .prepare_cached(&self.config.sql.delete)
                .await
                .map_err(db_error)?;
            tx.execute(&statement, &[&seqs]).await.map_err(db_error)?;
            let mut out: Vec<Value> = rows.iter().map(|(_, r)| select(&query, r)).collect();
            Ok(match id {
                Some(_) => out.pop().unwrap_or(Value::Null),
                None => Value::Array(out),
            })
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

/// `$limit` / `$skip` as SQL (`ALL` is no limit), within PostgreSQL's
/// `bigint`: a larger `$skip` is past any table anyway.
fn sql_count(count: Option<usize>) -> String {
    count.map_or_else(
        || "ALL".to_owned(),
        |n| i64::try_from(n).unwrap_or(i64::MAX).to_string(),
    )
}

/// `find` in one statement, so that the page and its total are read from
/// one snapshot: the page's rows (`body`, `NULL`), then, when `count`,
/// one row (`NULL`, total). The total is `NULL` when the page already
/// tells it (shorter than `$limit`, and not empty or from the first
/// record): PostgreSQL evaluates the count's subquery only in the branch
/// that uses it. Unfiltered, the total is the table's kept count.
pub(super) fn find_statement(
    table: &str,
    query: &ParsedQuery,
    compiled: &Compiled,
    count: bool,
) -> Result<String> {
    let filters = &query.filters;
    let t = quoted(table);
    let page = if filters.limit == Some(0) {
        "SELECT NULL::text AS body WHERE FALSE".to_owned()
    } else {
        format!(
            "SELECT body FROM {t} WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
            compiled.sql,
            sql::order_by(&filters.sort)?,
            sql_count(filters.limit),
            sql_count(Some(filters.skip)),
        )
    };
    if !count {
        return Ok(format!("SELECT body, NULL::bigint FROM ({page}) AS page"));
    }
    let total = if compiled.is_unconditional() {
        format!("(SELECT coalesce(sum(n), 0)::bigint FROM plume_counts WHERE name = '{table}')")
    } else {
        format!("(SELECT count(*) FROM {t} WHERE {})", compiled.sql)
    };
    let short = match filters.limit {
        Some(limit) if limit > 0 => format!(
            "(SELECT count(*) FROM page) < {} AND ((SELECT count(*) FROM page) > 0 OR {} = 0)",
            sql_count(Some(limit)),
            sql_count(Some(filters.skip))
        ),
        _ => "FALSE".to_owned(),
    };
    Ok(format!(
        "WITH page AS MATERIALIZED ({page}) \
         SELECT body, NULL::bigint FROM page \
         UNION ALL SELECT NULL, CASE WHEN {short} THEN NULL ELSE {total} END"
    ))
}
