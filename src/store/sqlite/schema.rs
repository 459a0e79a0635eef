//! A service's table as this version of Plume lays it out: created when
//! missing, migrated on start when an older version wrote it, and its
//! declared indexes brought in line with the service's declarations.
//!
//! # Layouts
//!
//! Each table's layout version is kept in `plume_tables`:
//!
//! 1. (up to d80336c; no row in `plume_tables`) `data` holds each record as
//!    JSON text; a plain index is on `json_extract(data, '$.f')` alone; the
//!    row count is not kept.
//! 2. `data` holds SQLite's binary JSON (JSONB): a field is found without
//!    parsing the record's text, about twice as fast per scanned row. The
//!    table's row count is kept in `plume_counts` by triggers, so every
//!    connection's writes (the `plume` CLI's, `sqlite3`'s) keep it exact,
//!    in the same transaction as the write, so a crash cannot tear them
//!    apart. A plain index also holds the field's JSON type, so a filtered
//!    count is answered from the index alone.
//!
//! Moving from 1 to 2 rewrites every record (`jsonb(data)`) and the counts
//! in one transaction on the writer: the old records are either all
//! converted or all left as they were. Reading never depends on the
//! layout: `json(data)` and `json_extract(data, ...)` accept both forms.
//!
//! # Index names
//!
//! Plume's indexes are named after their table and fields, which lets a
//! start find and drop the ones no longer declared:
//! `<table>__index__<f>` (equality, ranges), `<table>__sort__<f>`
//! (`$sort`), `<table>__index__<a>,<b>` (equality on `a`, `$sort` on `b`),
//! `<table>__unique__<f>` and `<table>__uniqueci__<f>`. An index whose
//! definition changed is made again.

use rusqlite::{Connection, OptionalExtension, params};

use super::service::{Config, Index};
use super::{db_error, sql};
use crate::{Error, Result};

/// The layout this version writes (see the module docs).
pub(super) const LAYOUT: i64 = 2;

/// `"name"`: a table or index name (an identifier, or index name made of
/// identifiers, commas and underscores: no quote).
pub(super) fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// Creates the table at the current layout, or migrates an older one,
/// then creates and drops indexes to match `config`, and makes the id
/// counter. Runs in the writer's transaction: all of it or none.
pub(super) fn ensure(tx: &Connection, config: &Config) -> Result<()> {
    let table = &config.table;
    let key = &config.cache_key;
    let t = quoted(table);
    let exists = tx
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            [table],
            |_| Ok(()),
        )
        .optional()
        .map_err(db_error)?
        .is_some();
    if exists {
        check_columns(tx, table)?;
        match layout_of(tx, key)? {
            1 => migrate_from_text(tx, table, key)?,
            LAYOUT => {}
            newer => {
                return Err(Error::general(format!(
                    "The SQLite table '{table}' has layout {newer}, written by a newer Plume \
                     (this one knows layouts up to {LAYOUT}): upgrade Plume"
                )));
            }
        }
    } else {
        tx.execute_batch(&format!(
            "CREATE TABLE {t} (
                 seq INTEGER PRIMARY KEY,
                 id NOT NULL UNIQUE,
                 id_int INTEGER,
                 data BLOB NOT NULL
             );
             CREATE INDEX {} ON {t} (id_int);",
            quoted(&format!("{table}__id_int"))
        ))
        .map_err(db_error)?;
        keep_count(tx, table, key)?;
        set_layout(tx, key)?;
    }
    sync_indexes(tx, config)?;
    tx.execute(
        "INSERT OR IGNORE INTO plume_sequences (name, next_id) VALUES (?1, ?2)",
        params![table, config.options.start_id],
    )
    .map_err(db_error)?;
    Ok(())
}

/// A table of the same name made by something else would fail every
/// call later with an internal error; say what is wrong now instead.
fn check_columns(tx: &Connection, table: &str) -> Result<()> {
    if tx
        .prepare(&format!(
            "SELECT seq, id, id_int, data FROM {} LIMIT 0",
            quoted(table)
        ))
        .is_err()
    {
        return Err(Error::general(format!(
            "The SQLite table '{table}' exists but was not made by Plume's SQLite store \
             (it needs the columns seq, id, id_int and data)"
        )));
    }
    Ok(())
}

/// The table's layout; a table without a row was written before layouts
/// were recorded: layout 1.
fn layout_of(tx: &Connection, key: &str) -> Result<i64> {
    tx.query_row(
        "SELECT layout FROM plume_tables WHERE name = ?1",
        [key],
        |row| row.get(0),
    )
    .optional()
    .map_err(db_error)
    .map(|layout| layout.unwrap_or(1))
}

fn set_layout(tx: &Connection, key: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO plume_tables (name, layout) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET layout = excluded.layout",
        params![key, LAYOUT],
    )
    .map_err(db_error)
    .map(|_| ())
}

/// Layout 1 to 2: records to JSONB, the count kept. The old plain
/// indexes (without the type column) differ from today's statements, so
/// [`sync_indexes`] drops and makes them again.
fn migrate_from_text(tx: &Connection, table: &str, key: &str) -> Result<()> {
    let t = quoted(table);
    let converted = tx
        .execute(
            &format!("UPDATE {t} SET data = jsonb(data) WHERE typeof(data) = 'text'"),
            [],
        )
        .map_err(db_error)?;
    keep_count(tx, table, key)?;
    set_layout(tx, key)?;
    tracing::info!(
        table,
        records = converted,
        "migrated to layout {LAYOUT} (JSONB records, kept count)"
    );
    Ok(())
}

/// The triggers that keep `plume_counts` exact, and the count as it is now.
fn keep_count(tx: &Connection, table: &str, key: &str) -> Result<()> {
    let t = quoted(table);
    // `key` is a lower-cased identifier: no quote can end the literal.
    tx.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS {insert};
         DROP TRIGGER IF EXISTS {delete};
         CREATE TRIGGER {insert} AFTER INSERT ON {t} BEGIN
             UPDATE plume_counts SET rows = rows + 1 WHERE name = '{key}';
         END;
         CREATE TRIGGER {delete} AFTER DELETE ON {t} BEGIN
             UPDATE plume_counts SET rows = rows - 1 WHERE name = '{key}';
         END;",
        insert = quoted(&format!("{table}__count_insert")),
        delete = quoted(&format!("{table}__count_delete")),
    ))
    .map_err(db_error)?;
    tx.execute(
        &format!("INSERT OR REPLACE INTO plume_counts (name, rows) SELECT ?1, count(*) FROM {t}"),
        [key],
    )
    .map_err(db_error)
    .map(|_| ())
}

/// The kept row count of a table (layout 2), `None` when there is none.
pub(super) fn kept_count(tx: &Connection, key: &str) -> Result<Option<i64>> {
    tx.prepare_cached("SELECT rows FROM plume_counts WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
        .map_err(db_error)
}

/// The indexes Plume made on `table` (not the id indexes): their names
/// and the statements that made them, as SQLite keeps them.
fn plume_indexes(tx: &Connection, table: &str) -> Result<Vec<(String, Option<String>)>> {
    let prefix = format!("{table}__").to_ascii_lowercase();
    let mut stmt = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = ?1 COLLATE NOCASE",
        )
        .map_err(db_error)?;
    let indexes = stmt
        .query_map([table], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))
        .map_err(db_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_error)?;
    Ok(indexes
        .into_iter()
        .filter(|(name, _)| {
            let lower = name.to_ascii_lowercase();
            lower.strip_prefix(&prefix).is_some_and(|rest| {
                ["index__", "sort__", "unique__", "uniqueci__"]
                    .iter()
                    .any(|kind| rest.starts_with(kind))
            })
        })
        .collect())
}

/// One SQL index: its name and the statement that makes it.
#[derive(Debug, PartialEq)]
struct Planned {
    name: String,
    create: String,
    unique: bool,
}

/// The SQL indexes that carry a declared index.
fn plan(table: &str, index: &Index) -> Result<Vec<Planned>> {
    let bad_field = |field: &str| {
        Error::general(format!(
            "Invalid field name '{field}' declared as an index of '{table}'"
        ))
    };
    let t = quoted(table);
    let make = |name: String, columns: &[String], unique: bool| Planned {
        create: format!(
            "CREATE {}INDEX {} ON {t} ({})",
            if unique { "UNIQUE " } else { "" },
            quoted(&name),
            columns.join(", ")
        ),
        name,
        unique,
    };
    let fields = &index.fields;
    let (Some(first), Some(last)) = (fields.first(), fields.last()) else {
        return Err(Error::general(format!(
            "An index of '{table}' names no field"
        )));
    };
    let x = |f: &str| sql::value_expr(f).map_err(|_| bad_field(f));
    let sort = |f: &str| -> Result<[String; 2]> {
        Ok([
            sql::rank_expr(f).map_err(|_| bad_field(f))?,
            sql::key_expr(f).map_err(|_| bad_field(f))?,
        ])
    };
    Ok(match (index.unique, index.ignore_case, fields.len()) {
        (true, true, 1) => vec![make(
            format!("{table}__uniqueci__{first}"),
            &[format!("lower({})", x(first)?)],
            true,
        )],
        (true, false, 1) => vec![make(
            format!("{table}__unique__{first}"),
            &[x(first)?],
            true,
        )],
        (true, _, _) => {
            return Err(Error::general(format!(
                "A unique index of '{table}' names one field, not {}",
                fields.join(", ")
            )));
        }
        (false, _, 1) => {
            let typed = [
                x(first)?,
                sql::type_expr(first).map_err(|_| bad_field(first))?,
            ];
            vec![
                make(format!("{table}__index__{first}"), &typed, false),
                make(format!("{table}__sort__{first}"), &sort(first)?, false),
            ]
        }
        (false, _, _) => {
            let mut columns = fields[..fields.len() - 1]
                .iter()
                .map(|f| x(f))
                .collect::<Result<Vec<_>>>()?;
            columns.extend(sort(last)?);
            vec![make(
                format!("{table}__index__{}", fields.join(",")),
                &columns,
                false,
            )]
        }
    })
}

/// Makes the declared indexes that are missing or defined differently,
/// and drops Plume's indexes on the table that are no longer declared.
fn sync_indexes(tx: &Connection, config: &Config) -> Result<()> {
    let table = &config.table;
    let mut wanted: Vec<Planned> = Vec::new();
    for index in &config.declared.indexes {
        for planned in plan(table, index)? {
            if !wanted.iter().any(|w| w.name == planned.name) {
                wanted.push(planned);
            }
        }
    }
    // What exists and is still wanted, as it is, stays; anything else of
    // Plume's goes, and what is missing is made.
    let mut kept: Vec<String> = Vec::new();
    for (name, sql) in plume_indexes(tx, table)? {
        let wanted_as_is = wanted
            .iter()
            .any(|w| w.name.eq_ignore_ascii_case(&name) && sql.as_deref() == Some(&w.create));
        if wanted_as_is {
            kept.push(name);
        } else {
            tx.execute_batch(&format!("DROP INDEX {}", quoted(&name)))
                .map_err(db_error)?;
        }
    }
    for planned in &wanted {
        if kept
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&planned.name))
        {
            continue;
        }
        tx.execute_batch(&planned.create).map_err(|error| {
            // Records written before the field was declared unique (or
            // unique ignoring case) may already collide.
            if planned.unique
                && error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
            {
                Error::general(format!(
                    "Cannot make the unique index '{}': records of '{table}' already share a \
                     value ({error}); resolve the duplicates first",
                    planned.name
                ))
            } else {
                db_error(error)
            }
        })?;
    }
    Ok(())
}
