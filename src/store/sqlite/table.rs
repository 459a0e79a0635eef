//! Row-level operations on a service's table, inside a transaction: the
//! memory store's algorithms (id lookup, automatic ids, conflicts) written
//! against SQLite.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::service::Config;
use super::{db_error, sql};
use crate::query::ParsedQuery;
use crate::store::not_found;
use crate::{Error, Id, Result};

/// A record: a JSON object.
pub(super) type Record = Map<String, Value>;

/// `"name"`: a table or index name, already checked to be an identifier.
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// Creates the table, its indexes and its id counter when missing, and
/// checks that an existing table has the layout this store expects.
pub(super) fn create(tx: &Connection, config: &Config) -> Result<()> {
    let table = &config.table;
    let t = quoted(table);
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {t} (
             seq INTEGER PRIMARY KEY,
             id NOT NULL UNIQUE,
             id_int INTEGER,
             data TEXT NOT NULL
         );"
    ))
    .map_err(db_error)?;
    // A table of the same name made by something else would fail every
    // call later with an internal error; say what is wrong now instead.
    if tx
        .prepare(&format!("SELECT seq, id, id_int, data FROM {t} LIMIT 0"))
        .is_err()
    {
        return Err(Error::general(format!(
            "The SQLite table '{table}' exists but was not made by Plume's SQLite store \
             (it needs the columns seq, id, id_int and data)"
        )));
    }
    tx.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS {} ON {t} (id_int);",
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
        let (kind, name, expr) = match (index.unique, index.ignore_case) {
            (true, true) => (
                "UNIQUE INDEX",
                format!("{table}__uniqueci__{}", index.field),
                format!("lower({expr})"),
            ),
            (true, false) => (
                "UNIQUE INDEX",
                format!("{table}__unique__{}", index.field),
                expr,
            ),
            (false, _) => ("INDEX", format!("{table}__index__{}", index.field), expr),
        };
        tx.execute_batch(&format!(
            "CREATE {kind} IF NOT EXISTS {} ON {t} ({expr});",
            quoted(&name)
        ))
        .map_err(|error| {
            // Records written before the field was declared unique (or
            // unique ignoring case) may already collide.
            if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                Error::general(format!(
                    "Cannot declare '{}' of '{table}' unique{}: records already share a value \
                     ({error}); resolve the duplicates first",
                    index.field,
                    if index.ignore_case {
                        " ignoring case"
                    } else {
                        ""
                    }
                ))
            } else {
                db_error(error)
            }
        })?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO plume_sequences (name, next_id) VALUES (?1, ?2)",
        params![table, config.start_id],
    )
    .map_err(db_error)?;
    Ok(())
}

fn parse_record(text: &str) -> Result<Record> {
    serde_json::from_str(text).map_err(Error::internal)
}

fn to_text(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(Error::internal)
}

pub(super) fn select(query: &ParsedQuery, record: &Record) -> Value {
    Value::Object(query.filters.project(record))
}

/// The `seq` of the record whose id matches `id`, as the memory store finds
/// it: an exact match first, then one that [`Id::matches`] across types
/// (the first in insertion order).
fn position(tx: &Connection, table: &str, id: &Id) -> Result<Option<i64>> {
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
                let int = Id::canonical_int(s).map_or(SqlValue::Null, SqlValue::Integer);
                stmt.query_row(params![s, int], |row| row.get(0)).optional()
            }),
    };
    found.map_err(db_error)
}

/// The record at `seq`.
fn load(tx: &Connection, table: &str, seq: i64) -> Result<Option<Record>> {
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
pub(super) fn locate(
    tx: &Connection,
    config: &Config,
    id: &Id,
    query: &ParsedQuery,
) -> Result<(i64, Record)> {
    fetch(tx, &config.table, id)?
        .filter(|(_, record)| query.matches(record))
        .ok_or_else(|| not_found(id))
}

/// The record with `id`, whatever the query, and its `seq`.
pub(super) fn fetch(tx: &Connection, table: &str, id: &Id) -> Result<Option<(i64, Record)>> {
    let Some(seq) = position(tx, table, id)? else {
        return Ok(None);
    };
    Ok(load(tx, table, seq)?.map(|record| (seq, record)))
}

/// Every record matching the query's conditions, in insertion order,
/// selected in SQL.
pub(super) fn matching(
    tx: &Connection,
    table: &str,
    query: &ParsedQuery,
) -> Result<Vec<(i64, Record)>> {
    let t = quoted(table);
    let compiled = sql::condition(&query.condition)?;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT seq, data FROM {t} WHERE {} ORDER BY seq",
            compiled.sql
        ))
        .map_err(db_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&compiled.params), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(db_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, text) = row.map_err(db_error)?;
        out.push((seq, parse_record(&text)?));
    }
    Ok(out)
}

/// The integer an id is or reads as, for cross-type matching.
fn id_int(id: &Id) -> Option<i64> {
    match id {
        Id::Number(n) => Some(*n),
        Id::String(s) => Id::canonical_int(s),
    }
}

/// Inserts a record, giving it an id if it has none (the memory store's
/// rules); returns the stored record.
pub(super) fn insert(tx: &Connection, config: &Config, mut record: Record) -> Result<Record> {
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
fn allocate(tx: &Connection, config: &Config) -> Result<i64> {
    let mut next: i64 = tx
        .prepare_cached("SELECT next_id FROM plume_sequences WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([&config.table], |row| row.get(0)))
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
    tx.prepare_cached(
        "INSERT INTO plume_sequences (name, next_id) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET next_id = excluded.next_id",
    )
    .and_then(|mut stmt| stmt.execute(params![config.table, next]))
    .map_err(db_error)?;
    Ok(id)
}

/// Writes a record's new data at `seq`.
pub(super) fn store(tx: &Connection, table: &str, seq: i64, record: &Record) -> Result<()> {
    let text = to_text(record)?;
    tx.prepare_cached(&format!(
        "UPDATE {} SET data = ?1 WHERE seq = ?2",
        quoted(table)
    ))
    .and_then(|mut stmt| stmt.execute(params![text, seq]))
    .map_err(db_error)?;
    Ok(())
}

pub(super) fn delete(tx: &Connection, table: &str, seq: i64) -> Result<()> {
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
pub(super) fn find_sql(
    tx: &Connection,
    table: &str,
    query: &ParsedQuery,
    compiled: &sql::Compiled,
    count: bool,
) -> Result<(usize, Vec<Record>)> {
    let t = quoted(table);
    let filters = &query.filters;
    let total = if count {
        let n: i64 = tx
            .prepare_cached(&format!("SELECT count(*) FROM {t} WHERE {}", compiled.sql))
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
    // LIMIT and OFFSET are written into the statement (they are integers
    // of our own), not bound: SQLite's planner looks at a bound LIMIT, so
    // a cached statement was prepared again on every call.
    let sql = format!(
        "SELECT data FROM {t} WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        compiled.sql,
        sql::order_by(&filters.sort)?,
        sql_count(filters.limit),
        sql_count(Some(filters.skip)),
    );
    let mut stmt = tx.prepare_cached(&sql).map_err(db_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&compiled.params), |row| {
            row.get::<_, String>(0)
        })
        .map_err(db_error)?;
    let mut data = Vec::new();
    for row in rows {
        data.push(parse_record(&row.map_err(db_error)?)?);
    }
    Ok((total, data))
}
