//! Where the default app keeps its records: the embedded SQLite file, or
//! a PostgreSQL database when one is configured (`postgres.url`,
//! `DATABASE_URL`, or knex's `postgresql` section), which several
//! instances can share.

use std::sync::Arc;

use serde_json::Value;

use plume::auth::RevocationList;
use plume::config::Config;
use plume::store::{
    PostgresOptions, PostgresRevocations, PostgresService, PostgresStore, SqliteRevocations,
    SqliteService, SqliteStore,
};
use plume::{App, Error, Result, ServiceHandle};

/// The database behind the default app's services.
#[derive(Debug, Clone)]
pub(crate) enum Database {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// One service's table, in either database.
#[derive(Debug)]
pub(crate) enum Table {
    Sqlite(SqliteService),
    Postgres(PostgresService),
}

/// `$db`'s service over the table `$name`, built by `$body` from `$s`
/// (the same builder calls for both stores, which have the same builder
/// methods).
macro_rules! table {
    ($db:expr, $name:expr, |$s:ident| $body:expr) => {
        match $db {
            $crate::default_app::database::Database::Sqlite(store) => {
                let $s = store.service($name)?;
                $crate::default_app::database::Table::Sqlite($body)
            }
            $crate::default_app::database::Database::Postgres(store) => {
                let $s = store.service($name)?;
                $crate::default_app::database::Table::Postgres($body)
            }
        }
    };
}

pub(crate) use table;

impl Table {
    /// Adds the indexes a configuration lists.
    pub(crate) fn indexes_from_config(self, entries: &Value) -> Result<Self> {
        Ok(match self {
            Self::Sqlite(s) => Self::Sqlite(s.indexes_from_config(entries)?),
            Self::Postgres(s) => Self::Postgres(s.indexes_from_config(entries)?),
        })
    }

    /// Registers the service at `path`.
    pub(crate) fn mount(self, app: &App, path: &str) -> Result<ServiceHandle> {
        match self {
            Self::Sqlite(s) => app.use_service(path, s),
            Self::Postgres(s) => app.use_service(path, s),
        }
    }
}

impl Database {
    /// The database's revocation list (logouts, password changes).
    pub(crate) fn revocations(&self) -> Arc<dyn RevocationList> {
        match self {
            Self::Sqlite(store) => Arc::new(SqliteRevocations::new(store)),
            Self::Postgres(store) => Arc::new(PostgresRevocations::new(store)),
        }
    }

    /// Registers the database's readiness check with `app` (`/ready`).
    pub(crate) fn add_readiness_check(&self, app: &App) {
        match self {
            Self::Sqlite(store) => app.add_readiness_check(store.readiness_check()),
            Self::Postgres(store) => app.add_readiness_check(store.clone()),
        };
    }

    /// The configuration section of this database (`sqlite` or
    /// `postgres`), where its `indexes` are listed.
    pub(crate) fn section(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// The PostgreSQL URL the configuration names: `postgres.url` (also
/// `DATABASE_URL`), else knex's `postgresql` section; both at once is an
/// error, since one would be silently ignored.
pub(crate) fn postgres_url(config: &Config) -> Result<Option<String>> {
    let own = match config.get("postgres.url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) if !url.is_empty() => Some(url.clone()),
        Some(other) => {
            return Err(Error::general(format!(
                "postgres.url must be a URL such as postgres://user:password@host:5432/database, \
                 not {other}"
            )));
        }
    };
    let knex = plume::config::postgres_url(config)?;
    match (own, knex) {
        (Some(_), Some(_)) => Err(Error::general(
            "Both postgres.url (or DATABASE_URL) and the postgresql section name a database: \
             keep one",
        )),
        (own, knex) => Ok(own.or(knex)),
    }
}

/// `redis.key`: the prefix of the bus's Redis names (`plume` by default).
pub(crate) fn redis_key(config: &Config) -> Result<String> {
    match config.get("redis.key") {
        None | Some(Value::Null) => Ok(plume::cluster::DEFAULT_KEY.to_owned()),
        Some(Value::String(key)) => Ok(key.clone()),
        Some(other) => Err(Error::general(format!(
            "redis.key must be a string, not {other}"
        ))),
    }
}

/// `redis.url` (also `REDIS_URL`): the bus between instances, if set.
pub(crate) fn redis_url(config: &Config) -> Result<Option<String>> {
    match config.get("redis.url") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) if !url.is_empty() => Ok(Some(url.clone())),
        Some(other) => Err(Error::general(format!(
            "redis.url must be a URL such as redis://127.0.0.1:6379/, not {other}"
        ))),
    }
}

/// `postgres.poolSize` and `postgres.queryTimeoutMs`, over the defaults.
pub(crate) fn postgres_options(config: &Config) -> Result<PostgresOptions> {
    let mut options = PostgresOptions::default();
    if let Some(size) = config.get("postgres.poolSize") {
        options.pool_size = size
            .as_u64()
            .filter(|&n| (1..=1000).contains(&n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                Error::general(format!(
                    "postgres.poolSize must be a whole number from 1 to 1000, not {size}"
                ))
            })?;
    }
    if let Some(ms) = super::milliseconds(config, "postgres.queryTimeoutMs")? {
        options.query_timeout = ms;
    }
    Ok(options)
}

/// Opens the configured database; the configuration comes back with the
/// authentication secret filled in when it was not set: kept in the
/// PostgreSQL database (shared by every instance), or beside the SQLite
/// file.
pub(crate) async fn open(config: &Config) -> Result<(Database, Config)> {
    if let Some(url) = postgres_url(config)? {
        let store = PostgresStore::connect_with(&url, postgres_options(config)?).await?;
        let config = if config.needs_secret("authentication") {
            tracing::info!(
                "authentication.secret is not set: using the secret kept in the PostgreSQL \
                 database (table plume_secrets), shared by every instance over it"
            );
            let secret = store.shared_secret("authentication").await?;
            config.with_generated_secret("authentication", secret)?
        } else {
            config.check_secret("authentication")?;
            config.clone()
        };
        tracing::info!("records are kept in PostgreSQL");
        return Ok((Database::Postgres(store), config));
    }
    let filename = plume::config::sqlite_filename(config)?;
    let config = config.with_secret("authentication", &filename)?;
    let store = SqliteStore::open(&filename).await?;
    if let Some(ttl) = super::milliseconds(&config, "sqlite.recordCacheMs")? {
        store.set_record_cache_ttl(ttl);
    }
    if let Some(budget) = super::milliseconds(&config, "sqlite.queryTimeoutMs")? {
        store.set_query_timeout(budget);
    }
    Ok((Database::Sqlite(store), config))
}
