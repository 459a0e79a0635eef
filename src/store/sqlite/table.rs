//! Row-level operations on a service's table, inside a transaction: the
//! memory store's algorithms (id lookup, automatic ids, conflicts) written
//! against SQLite.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::schema::{self, quoted};
use super::service::Config;
use super::{db_error, sql};
use crate::query::ParsedQuery;
use crate::store::not_found;
use crate::{Error, Id, Result};

/// A record: a JSON object.
pub(super) type Record = Map<String, Value>;

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
            "SELECT json(data) FROM {} WHERE seq = ?1",
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
    config: &Config,
    query: &ParsedQuery,
) -> Result<Vec<(i64, Record)>> {
    let t = quoted(&config.table);
    let compiled = sql::condition(&query.condition, &|f| config.indexed(f))?;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT seq, json(data) FROM {t} WHERE {} ORDER BY seq",
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
    let supplied = match record.get(&config.options.id_field) {
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
            record.insert(config.options.id_field.clone(), Value::from(id));
            Id::Number(id)
        }
    };
    let id_value = match &id {
        Id::Number(n) => SqlValue::Integer(*n),
        Id::String(s) => SqlValue::Text(s.clone()),
    };
    let text = to_text(&record)?;
    tx.prepare_cached(&format!(
        "INSERT INTO {} (id, id_int, data) VALUES (?1, ?2, jsonb(?3))",
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
        .unwrap_or(config.options.start_id);
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
        "UPDATE {} SET data = jsonb(?1) WHERE seq = ?2",
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

/// The statement that reads a page of `find`.
pub(super) fn page_statement(
    table: &str,
    query: &ParsedQuery,
    compiled: &sql::Compiled,
    sortable: &dyn Fn(&str) -> bool,
) -> Result<String> {
    // LIMIT and OFFSET are written into the statement (they are integers
    // of our own), not bound: SQLite's planner looks at a bound LIMIT, so
    // a cached statement was prepared again on every call.
    Ok(format!(
        "SELECT json(data) FROM {} WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        quoted(table),
        compiled.sql,
        sql::order_by(&query.filters.sort, sortable)?,
        sql_count(query.filters.limit),
        sql_count(Some(query.filters.skip)),
    ))
}

/// The statement that counts the records matching a condition.
pub(super) fn count_statement(table: &str, compiled: &sql::Compiled) -> String {
    format!(
        "SELECT count(*) FROM {} WHERE {}",
        quoted(table),
        compiled.sql
    )
}

/// `find` in SQL: the total (when `count`) and the page.
///
/// The total costs nothing without conditions (the table's kept count,
/// see [`schema`]); with conditions it is a `count(*)`, read from an
/// index when one covers them, and skipped when the page already tells
/// it: a page shorter than `$limit` that is not empty, or starts at the
/// first record, ends the results.
pub(super) fn find_sql(
    tx: &Connection,
    config: &Config,
    query: &ParsedQuery,
    compiled: &sql::Compiled,
    count: bool,
) -> Result<(usize, Vec<Record>)> {
    let filters = &query.filters;
    let data = if filters.limit == Some(0) {
        Vec::new()
    } else {
        let sql = page_statement(&config.table, query, compiled, &|f| config.sortable(f))?;
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
        data
    };
    if !count {
        return Ok((0, data));
    }
    let short_page = filters.limit.is_some_and(|limit| data.len() < limit)
        && (!data.is_empty() || filters.skip == 0);
    if short_page {
        return Ok((filters.skip + data.len(), data));
    }
    let kept = if compiled.is_unconditional() {
        schema::kept_count(tx, &config.cache_key)?
    } else {
        None
    };
    let total = match kept {
        Some(n) => n,
        None => tx
            .prepare_cached(&count_statement(&config.table, compiled))
            .and_then(|mut stmt| {
                stmt.query_row(rusqlite::params_from_iter(&compiled.params), |row| {
                    row.get(0)
                })
            })
            .map_err(db_error)?,
    };
    Ok((usize::try_from(total).map_err(Error::internal)?, data))
}
