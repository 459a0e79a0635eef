//! The tables of a [`PostgresStore`](super::PostgresStore): Plume's own
//! (kept counts) and one per service, with its id sequence, its count
//! trigger and its declared indexes.
//!
//! Several instances may set the same service up at once, so every change
//! of the schema happens in a transaction that first takes one advisory
//! lock ([`SCHEMA_LOCK`]): `CREATE ... IF NOT EXISTS` alone races in
//! PostgreSQL (two creators can both pass the check).
//!
//! # Kept counts
//!
//! An unfiltered `total` is the sum of a table's rows in `plume_counts`,
//! kept by a trigger in the writing transaction, so it is exact and costs
//! a lookup of a few rows however large the table. A single counter row
//! per table would make every insert wait for the previous inserting
//! transaction to commit (its row lock), so each table has up to
//! [`COUNT_SHARDS`] rows, one chosen by the writing backend's process id:
//! concurrent writers on different connections update different rows.
//!
//! # Index names
//!
//! Plume's indexes are named `plume_<hash>`, the hash (FNV-1a, stable
//! across builds) of the table and the index's definition, so a changed
//! declaration is a new name and names never pass PostgreSQL's 63 bytes.
//! Setting a service up drops Plume's indexes on its table that it no
//! longer declares.

use std::fmt::Write as _;

use deadpool_postgres::Transaction;

use super::db_error;
use super::service::Config;
use super::sql::{key_expr, scalar_predicate};
use crate::store::declared::Index;
use crate::{Error, Result};

/// The advisory lock every schema change takes first (with the schema's
/// name: two schemas of one database do not wait for each other).
const SCHEMA_LOCK: i32 = 0x706c_756d;

/// Takes the schema lock for the transaction, with no time budget (it may
/// wait for another instance building an index).
async fn lock_schema(tx: &Transaction<'_>) -> Result<()> {
    tx.batch_execute("SET LOCAL statement_timeout = 0")
        .await
        .map_err(db_error)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&SCHEMA_LOCK],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Rows per table in `plume_counts`.
const COUNT_SHARDS: u32 = 16;

/// `name` as an SQL identifier (checked to be an identifier by the caller).
pub(super) fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// Plume's own tables and the count trigger's function.
pub(super) async fn ensure_store(tx: &Transaction<'_>) -> Result<()> {
    lock_schema(tx).await?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS plume_counts (
             name text NOT NULL,
             shard integer NOT NULL,
             n bigint NOT NULL,
             PRIMARY KEY (name, shard)
         );
         CREATE OR REPLACE FUNCTION plume_count() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO plume_counts (name, shard, n)
             VALUES (TG_TABLE_NAME, pg_backend_pid() % {COUNT_SHARDS},
                     CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END)
             ON CONFLICT (name, shard) DO UPDATE SET n = plume_counts.n + excluded.n;
             RETURN NULL;
         END $$;
         CREATE TABLE IF NOT EXISTS plume_secrets (
             name text PRIMARY KEY,
             secret text NOT NULL
         );
         {revocations}",
        revocations = super::revocations::TABLES,
    ))
    .await
    .map_err(db_error)
}

/// The name of the table's id sequence: under Plume's prefix (which no
/// service's table may take), from a hash of the table's name.
pub(super) fn sequence(table: &str) -> String {
    quoted(&format!("plume_seq_{:016x}", fnv1a(table)))
}

/// Creates the service's table, sequence, count trigger and declared
/// indexes if missing, and drops the indexes of Plume's no longer
/// declared; all in one transaction.
pub(super) async fn ensure(tx: &Transaction<'_>, config: &Config) -> Result<()> {
    // Building an index over a large table takes what it takes.
    lock_schema(tx).await?;
    let table = &config.table;
    let t = quoted(table);
    let exists = tx
        .query_opt(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
            &[table],
        )
        .await
        .map_err(db_error)?
        .is_some();
    if !exists {
        tx.batch_execute(&format!(
            "CREATE TABLE {t} (
                 seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 id_key text NOT NULL UNIQUE,
                 data jsonb NOT NULL,
                 body text NOT NULL
             );
             CREATE TRIGGER plume_count AFTER INSERT OR DELETE ON {t}
                 FOR EACH ROW EXECUTE FUNCTION plume_count();
             DELETE FROM plume_counts WHERE name = '{table}';
             CREATE SEQUENCE IF NOT EXISTS {sequence} AS bigint
                 MINVALUE -9223372036854775808 START WITH {start}",
            sequence = sequence(table),
            start = config.options.start_id,
        ))
        .await
        .map_err(db_error)?;
    }
    sync_indexes(tx, config).await
}

/// An index to make: its name and its `CREATE` statement.
struct Planned {
    name: String,
    create: String,
    unique: bool,
}

/// FNV-1a, 64 bits: stable across builds and platforms.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn plan(config: &Config) -> Result<Vec<Planned>> {
    let mut planned: Vec<Planned> = Vec::new();
    for index in &config.declared.indexes {
        let one = plan_one(config, index)?;
        if !planned.iter().any(|p| p.name == one.name) {
            planned.push(one);
        }
    }
    Ok(planned)
}

fn plan_one(config: &Config, index: &Index) -> Result<Planned> {
    let t = quoted(&config.table);
    {
        let columns = index
            .fields
            .iter()
            .map(|f| key_expr(f, index.ignore_case))
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        let (unique, predicate) = match (index.unique, index.fields.first()) {
            (true, Some(field)) => ("UNIQUE ", format!(" WHERE {}", scalar_predicate(field)?)),
            _ => ("", String::new()),
        };
        let definition = format!("ON {t} ({columns}){predicate}");
        let name = format!(
            "plume_{:016x}",
            fnv1a(&format!("{}\n{unique}{definition}", config.table))
        );
        let mut create = String::new();
        let _ = write!(
            create,
            "CREATE {unique}INDEX {} {definition}",
            quoted(&name)
        );
        Ok(Planned {
            name,
            create,
            unique: index.unique,
        })
    }
}

/// The field of the declared unique index named `index`, if it is one.
pub(super) fn unique_field(config: &Config, index: &str) -> Option<String> {
    config
        .declared
        .indexes
        .iter()
        .filter(|i| i.unique)
        .find(|i| plan_one(config, i).is_ok_and(|p| p.name == index))
        .and_then(|i| i.fields.first().cloned())
}

async fn sync_indexes(tx: &Transaction<'_>, config: &Config) -> Result<()> {
    let wanted = plan(config)?;
    let existing: Vec<String> = tx
        .query(
            "SELECT indexname FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = $1 AND indexname LIKE 'plume\\_%'",
            &[&config.table],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for name in &existing {
        if !wanted.iter().any(|w| &w.name == name) {
            tx.batch_execute(&format!("DROP INDEX {}", quoted(name)))
                .await
                .map_err(db_error)?;
        }
    }
    for planned in wanted.iter().filter(|w| !existing.contains(&w.name)) {
        tx.batch_execute(&planned.create).await.map_err(|error| {
            let conflict = error
                .as_db_error()
                .is_some_and(|db| *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION);
            if planned.unique && conflict {
                Error::general(format!(
                    "Cannot make a unique index on '{}': records already share a value; \
                     resolve the duplicates first",
                    config.table
                ))
            } else {
                db_error(error)
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_hash_is_stable() {
        // FNV-1a's published test vector.
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
