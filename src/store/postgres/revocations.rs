//! [`PostgresRevocations`]: revoked access tokens (logout, a password
//! change, a removed user) in the store's database, so that every instance
//! over the same database refuses a token the moment one of them revoked
//! it.
//!
//! Unlike the SQLite list there is no in-memory mirror: a mirror would let
//! an instance accept a token another instance revoked until its next
//! refresh. A request's two questions (its token, its subject) are one
//! statement on a prepared statement, two indexed lookups.

use async_trait::async_trait;
use tokio_postgres::types::Type;

use super::{PostgresStore, db_error};
use crate::auth::RevocationList;
use crate::{Error, Result};

/// Revoked token ids and subjects in a PostgreSQL database (tables
/// `plume_revoked_tokens` and `plume_revoked_subjects`), kept until the
/// tokens expire.
///
/// ```no_run
/// use plume::auth::RevocationList;
/// use plume::store::{PostgresRevocations, PostgresStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = PostgresStore::connect("postgres://app@127.0.0.1:5432/app").await?;
/// let revoked = PostgresRevocations::new(&store);
/// revoked.revoke("4f6c…", 4_000_000_000).await?;
/// assert!(revoked.is_revoked("4f6c…").await?);
/// # Ok::<(), plume::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct PostgresRevocations {
    store: PostgresStore,
}

/// Plume's revocation tables (made with the store's own tables).
pub(super) const TABLES: &str = "
    CREATE TABLE IF NOT EXISTS plume_revoked_tokens (
        jti text PRIMARY KEY,
        expires_at bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS plume_revoked_tokens_expiry
        ON plume_revoked_tokens (expires_at);
    CREATE TABLE IF NOT EXISTS plume_revoked_subjects (
        sub text PRIMARY KEY,
        at bigint NOT NULL
    );";

fn unix_now() -> Result<i64> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(Error::internal)?
        .as_secs();
    i64::try_from(seconds).map_err(Error::internal)
}

/// A read past the query budget here is a database too slow to answer
/// (503), not a query to narrow (the 400 a `find` gets).
fn read_error(error: tokio_postgres::Error) -> Error {
    let cancelled = error
        .as_db_error()
        .is_some_and(|db| *db.code() == tokio_postgres::error::SqlState::QUERY_CANCELED);
    if cancelled {
        Error::unavailable("The database is too slow to answer")
    } else {
        db_error(error)
    }
}

fn as_i64(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

impl PostgresRevocations {
    /// The revocation list of `store`'s database.
    pub fn new(store: &PostgresStore) -> Self {
        Self {
            store: store.clone(),
        }
    }
}

#[async_trait]
impl RevocationList for PostgresRevocations {
    async fn revoke(&self, jti: &str, expires_at: u64) -> Result<()> {
        let now = unix_now()?;
        let expires_at = as_i64(expires_at);
        if expires_at < now {
            return Ok(());
        }
        let client = self.store.client().await?;
        // Expired entries go with each new one, so the table holds only
        // the tokens revoked within one token lifetime.
        let prune = client
            .prepare_typed_cached(
                "DELETE FROM plume_revoked_tokens WHERE expires_at < $1",
                &[Type::INT8],
            )
            .await
            .map_err(db_error)?;
        let insert = client
            .prepare_typed_cached(
                "INSERT INTO plume_revoked_tokens (jti, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (jti) DO UPDATE SET expires_at = \
                 greatest(plume_revoked_tokens.expires_at, excluded.expires_at)",
                &[Type::TEXT, Type::INT8],
            )
            .await
            .map_err(db_error)?;
        let prune_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&now];
        let insert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&jti, &expires_at];
        // Sent together: one round trip.
        let (pruned, inserted) = tokio::join!(
            client.execute(&prune, &prune_params),
            client.execute(&insert, &insert_params)
        );
        pruned.map_err(db_error)?;
        inserted.map_err(db_error)?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        let client = self.store.reader().await?;
        let statement = client
            .prepare_typed_cached(
                "SELECT 1 FROM plume_revoked_tokens WHERE jti = $1 AND expires_at >= $2",
                &[Type::TEXT, Type::INT8],
            )
            .await
            .map_err(read_error)?;
        let found = client
            .query_opt(&statement, &[&jti, &unix_now()?])
            .await
            .map_err(read_error)?;
        Ok(found.is_some())
    }

    async fn revoke_subject(&self, sub: &str, at: u64) -> Result<()> {
        let client = self.store.client().await?;
        let statement = client
            .prepare_typed_cached(
                "INSERT INTO plume_revoked_subjects (sub, at) VALUES ($1, $2) \
                 ON CONFLICT (sub) DO UPDATE SET at = greatest(plume_revoked_subjects.at, excluded.at)",
                &[Type::TEXT, Type::INT8],
            )
            .await
            .map_err(db_error)?;
        client
            .execute(&statement, &[&sub, &as_i64(at)])
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn check(&self, jti: Option<&str>, sub: Option<&str>) -> Result<(bool, Option<u64>)> {
        let client = self.store.reader().await?;
        let statement = client
            .prepare_typed_cached(
                "SELECT EXISTS (SELECT 1 FROM plume_revoked_tokens \
                                WHERE jti = $1 AND expires_at >= $3), \
                        (SELECT at FROM plume_revoked_subjects WHERE sub = $2)",
                &[Type::TEXT, Type::TEXT, Type::INT8],
            )
            .await
            .map_err(read_error)?;
        let row = client
            .query_one(&statement, &[&jti, &sub, &unix_now()?])
            .await
            .map_err(read_error)?;
        let since: Option<i64> = row.get(1);
        Ok((row.get(0), since.map(|at| u64::try_from(at).unwrap_or(0))))
    }

    async fn subject_revoked_at(&self, sub: &str) -> Result<Option<u64>> {
        let client = self.store.reader().await?;
        let statement = client
            .prepare_typed_cached(
                "SELECT at FROM plume_revoked_subjects WHERE sub = $1",
                &[Type::TEXT],
            )
            .await
            .map_err(read_error)?;
        let row = client
            .query_opt(&statement, &[&sub])
            .await
            .map_err(read_error)?;
        Ok(row.map(|row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::tests::isolated_url;

    #[tokio::test]
    async fn a_revocation_on_one_store_is_seen_by_another_at_once() {
        let Some(url) = isolated_url("a_revocation_on_one_store_is_seen").await else {
            return;
        };
        let a = PostgresRevocations::new(&PostgresStore::connect(&url).await.unwrap());
        let b = PostgresRevocations::new(&PostgresStore::connect(&url).await.unwrap());
        let later = u64::try_from(unix_now().unwrap()).unwrap() + 3600;
        assert!(!b.is_revoked("t1").await.unwrap());
        a.revoke("t1", later).await.unwrap();
        assert!(b.is_revoked("t1").await.unwrap());
        // Already expired: nothing to keep.
        a.revoke("t2", 1).await.unwrap();
        assert!(!b.is_revoked("t2").await.unwrap());
        assert_eq!(b.subject_revoked_at("7").await.unwrap(), None);
        a.revoke_subject("7", 100).await.unwrap();
        a.revoke_subject("7", 50).await.unwrap();
        assert_eq!(b.subject_revoked_at("7").await.unwrap(), Some(100));
        // Both at once, as a request asks.
        assert_eq!(
            b.check(Some("t1"), Some("7")).await.unwrap(),
            (true, Some(100))
        );
        assert_eq!(b.check(Some("t2"), Some("8")).await.unwrap(), (false, None));
        assert_eq!(b.check(None, Some("7")).await.unwrap(), (false, Some(100)));
        assert_eq!(b.check(None, None).await.unwrap(), (false, None));
    }
}
