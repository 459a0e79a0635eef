//! Opening a database: the writer and reader connections with their
//! settings, and Plume's own tables brought to their latest migration.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, MEMORY, STATEMENT_CACHE, budget, db_error, matcher, sort_key};
use crate::{Error, Result};

/// Opens the writer and the readers (none for `:memory:`).
pub(super) fn open_connections(
    path: &Path,
    readers: usize,
) -> Result<(Connection, Vec<Connection>)> {
    if path.as_os_str() == MEMORY {
        let mut writer = Connection::open_in_memory().map_err(db_error)?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        budget::install(&writer)?;
        matcher::install(&writer)?;
        sort_key::install(&writer)?;
        init_schema(&mut writer)?;
        return Ok((writer, Vec::new()));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(Error::internal)?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut writer = Connection::open_with_flags(path, flags).map_err(db_error)?;
    writer.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
    writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
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
    matcher::install(&writer)?;
    sort_key::install(&writer)?;
    init_schema(&mut writer)?;
    let readers = (0..readers.max(1))
        .map(|_| {
            let reader = Connection::open_with_flags(path, flags).map_err(db_error)?;
            reader.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            reader
                .pragma_update(None, "query_only", true)
                .map_err(db_error)?;
            budget::install(&reader)?;
            matcher::install(&reader)?;
            sort_key::install(&reader)?;
            Ok(reader)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((writer, readers))
}

/// Plume's own tables, in order: a database is brought to the last one
/// on open (its `PRAGMA user_version` says how many ran). Databases
/// written before this list existed have version 0 and some of these
/// tables already, hence `IF NOT EXISTS` in the first two.
const MIGRATIONS: &[rusqlite_migration::M<'static>] = &[
    // The id counters.
    rusqlite_migration::M::up(
        "CREATE TABLE IF NOT EXISTS plume_sequences (
             name TEXT PRIMARY KEY,
             next_id INTEGER NOT NULL
         );",
    ),
    // Logout and password-change revocations (SqliteRevocations).
    rusqlite_migration::M::up(
        "CREATE TABLE IF NOT EXISTS plume_revoked_tokens (
             jti TEXT PRIMARY KEY,
             expires_at INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS plume_revoked_tokens__expires_at
             ON plume_revoked_tokens (expires_at);
         CREATE TABLE IF NOT EXISTS plume_revoked_subjects (
             sub TEXT PRIMARY KEY,
             revoked_at INTEGER NOT NULL
         );",
    ),
    // Each service table's layout and kept row count (the schema module).
    rusqlite_migration::M::up(
        "CREATE TABLE plume_tables (
             name TEXT PRIMARY KEY,
             layout INTEGER NOT NULL
         );
         CREATE TABLE plume_counts (
             name TEXT PRIMARY KEY,
             rows INTEGER NOT NULL
         );",
    ),
];

/// Brings Plume's own tables to the latest migration.
fn init_schema(conn: &mut Connection) -> Result<()> {
    rusqlite_migration::Migrations::from_slice(MIGRATIONS)
        .to_latest(conn)
        .map_err(|error| match error {
            rusqlite_migration::Error::RusqliteError { err, .. } => db_error(err),
            other => Error::general(format!(
                "Cannot bring the database's Plume tables up to date: {other}"
            )),
        })
}
