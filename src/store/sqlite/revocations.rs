//! [`SqliteRevocations`]: a persistent list of revoked access tokens, for
//! logout.
//!
//! A token is known by its id (the `jti` claim) and kept until it would
//! have expired anyway (its `exp`); after that its signature check fails
//! on its own, so the row is useless and is deleted on a later
//! [`revoke`](SqliteRevocations::revoke). The list therefore never holds
//! more than the tokens revoked within one token lifetime. It lives in
//! the store's database (table `plume_revoked_tokens`), so a logout
//! survives a restart. It implements the authentication layer's
//! [`RevocationList`], the one way the service reaches revocations.
//!
//! Every authenticated request asks whether its token is revoked, so the
//! list is also kept in memory, loaded from the table on first use and
//! updated by every [`revoke`](SqliteRevocations::revoke) through the same
//! [`SqliteStore`]: a check costs a hash lookup instead of a trip to a
//! database thread. The table stays the source of truth: the mirror is
//! read again from it once it is older than the store's record-cache time
//! to live (`sqlite.recordCacheMs`, 1 s by default), so that a revocation
//! written by another process on the same database file (`plume user
//! grant` while the server runs) is seen within that time.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, params};
use tokio::sync::OnceCell;

use super::{SqliteStore, db_error};
use crate::auth::RevocationList;
use crate::error::poisoned;
use crate::{Error, Result};

/// The table of revoked tokens (also its record-cache key).
const TABLE: &str = "plume_revoked_tokens";

/// Revoked token ids in an SQLite database, kept until they expire.
///
/// ```
/// use plume::auth::RevocationList;
/// use plume::store::{SqliteRevocations, SqliteStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = SqliteStore::open(":memory:").await?;
/// let revoked = SqliteRevocations::new(&store);
/// let in_an_hour = 4_000_000_000;
/// revoked.revoke("4f6c…", in_an_hour).await?;
/// assert!(revoked.is_revoked("4f6c…").await?);
/// assert!(!revoked.is_revoked("other").await?);
/// # Ok::<(), plume::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct SqliteRevocations {
    store: SqliteStore,
}

/// The in-memory mirror of the table, one per store (shared by every
/// [`SqliteRevocations`] over it): jti → expiry, loaded on first use.
#[derive(Debug, Default)]
pub(super) struct Cache {
    loaded: OnceCell<()>,
    /// When the mirror was last read, in [`clock_ms`] (0: never).
    /// An atomic, not a lock: every authenticated request looks at it.
    refreshed: std::sync::atomic::AtomicU64,
    entries: RwLock<HashMap<String, i64>>,
    /// Subject → the `iat` up to which its tokens are revoked.
    subjects: RwLock<HashMap<String, i64>>,
}

impl SqliteRevocations {
    /// The revocation list of `store`'s database (shared by every
    /// `SqliteRevocations` over the same database).
    pub fn new(store: &SqliteStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    fn cache(&self) -> &Cache {
        &self.store.shared.revoked
    }

    /// Creates the table if needed and loads the unexpired entries into
    /// memory, once per store.
    async fn ensure_loaded(&self) -> Result<()> {
        let cache = self.cache();
        cache
            .loaded
            .get_or_try_init(|| async {
                let now = unix_now()?;
                let rows = self
                    .store
                    .write_table(Some(TABLE.to_owned()), move |tx| read_tables(tx, now))
                    .await?;
                let (rows, subjects) = rows;
                cache.refreshed.store(clock_ms(), Ordering::Relaxed);
                merge_max(&cache.entries, rows)?;
                merge_max(&cache.subjects, subjects)
            })
            .await
            .map(|_| ())
    }

    /// Reads the table again when the mirror is older than the record
    /// cache's time to live (every time when that cache is off), adding
    /// what other processes revoked; entries are only ever added here.
    async fn refresh_if_stale(&self) -> Result<()> {
        let ttl_ms = self
            .store
            .shared
            .records
            .ttl()
            .map_or(0, |ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let cache = self.cache();
        let last = cache.refreshed.load(Ordering::Relaxed);
        let now_ms = clock_ms();
        if last != 0 && ttl_ms > 0 && now_ms.saturating_sub(last) < ttl_ms {
            return Ok(());
        }
        // One caller reads; the others go on with the mirror as it is.
        if cache
            .refreshed
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Ok(());
        }
        let now = unix_now()?;
        let (rows, subjects) = match self.store.read(move |tx| read_tables(tx, now)).await {
            Ok(tables) => tables,
            Err(error) => {
                // Let the next caller try again rather than a whole TTL later.
                cache.refreshed.store(last, Ordering::Relaxed);
                return Err(error);
            }
        };
        cache
            .entries
            .write()
            .map_err(poisoned)?
            .retain(|_, expiry| *expiry >= now);
        merge_max(&cache.entries, rows)?;
        merge_max(&cache.subjects, subjects)
    }
}

/// The authentication service's revocation storage (see
/// [`RevocationList`]), kept in this store's database.
#[async_trait]
impl RevocationList for SqliteRevocations {
    /// Revokes the token `jti` until `expires_at` (its `exp`, seconds since
    /// the Unix epoch), durably; revoking twice keeps the later expiry.
    /// Also forgets tokens whose expiry has passed.
    async fn revoke(&self, jti: &str, expires_at: u64) -> Result<()> {
        // Expiry times past i64::MAX seconds do not occur; clamp rather than wrap.
        let expires_at = i64::try_from(expires_at).unwrap_or(i64::MAX);
        self.ensure_loaded().await?;
        let now = unix_now()?;
        {
            // Memory first: from this moment on the token is refused, even
            // while the write is on its way to disk.
            let mut entries = self.cache().entries.write().map_err(poisoned)?;
            entries.retain(|_, expiry| *expiry >= now);
        }
        merge_max(&self.cache().entries, vec![(jti.to_owned(), expires_at)])?;
        let jti = jti.to_owned();
        // Only the revocation table: a logout must not empty the record
        // cache of every table.
        self.store
            .write_table(Some(TABLE.to_owned()), move |tx: &Connection| {
                tx.execute(
                    "DELETE FROM plume_revoked_tokens WHERE expires_at < ?1",
                    [now],
                )
                .map_err(db_error)?;
                tx.execute(
                    "INSERT INTO plume_revoked_tokens (jti, expires_at) VALUES (?1, ?2)
                     ON CONFLICT (jti) DO UPDATE
                     SET expires_at = max(expires_at, excluded.expires_at)",
                    params![jti, expires_at],
                )
                .map_err(db_error)?;
                Ok(())
            })
            .await
    }

    /// True when the token `jti` was revoked (and has not expired since;
    /// a token is still revoked in its last second, `exp == now`, when its
    /// signature still verifies).
    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        self.ensure_loaded().await?;
        self.refresh_if_stale().await?;
        let now = unix_now()?;
        let entries = self.cache().entries.read().map_err(poisoned)?;
        Ok(entries.get(jti).is_some_and(|expiry| *expiry >= now))
    }

    /// Revokes every token of the subject `sub` issued at or before `at`
    /// (its `iat`, seconds since the Unix epoch), durably; a later `at`
    /// wins. One row per subject, kept for good (subjects are never
    /// reused by the stores' id counters).
    async fn revoke_subject(&self, sub: &str, at: u64) -> Result<()> {
        let at = i64::try_from(at).unwrap_or(i64::MAX);
        self.ensure_loaded().await?;
        merge_max(&self.cache().subjects, vec![(sub.to_owned(), at)])?;
        let sub = sub.to_owned();
        self.store
            .write_table(Some(TABLE.to_owned()), move |tx: &Connection| {
                tx.execute(
                    "INSERT INTO plume_revoked_subjects (sub, revoked_at) VALUES (?1, ?2)
                     ON CONFLICT (sub) DO UPDATE
                     SET revoked_at = max(revoked_at, excluded.revoked_at)",
                    params![sub, at],
                )
                .map_err(db_error)?;
                Ok(())
            })
            .await
    }

    /// The `iat` up to which the subject's tokens are revoked, if ever.
    /// Reads the mirror as it is: the verification of a token asks
    /// [`is_revoked`](RevocationList::is_revoked) first, which refreshes it.
    async fn subject_revoked_at(&self, sub: &str) -> Result<Option<u64>> {
        self.ensure_loaded().await?;
        let subjects = self.cache().subjects.read().map_err(poisoned)?;
        Ok(subjects.get(sub).and_then(|at| u64::try_from(*at).ok()))
    }
}

type Rows = Vec<(String, i64)>;

/// The unexpired revoked tokens and every revoked subject.
fn read_tables(tx: &Connection, now: i64) -> Result<(Rows, Rows)> {
    let read = |sql: &str, bind: Option<i64>| -> Result<Rows> {
        let mut stmt = tx.prepare_cached(sql).map_err(db_error)?;
        let map = |row: &rusqlite::Row<'_>| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?));
        let rows = match bind {
            Some(value) => stmt.query_map([value], map),
            None => stmt.query_map([], map),
        }
        .map_err(db_error)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(db_error)?;
        Ok(rows)
    };
    Ok((
        read(
            "SELECT jti, expires_at FROM plume_revoked_tokens WHERE expires_at >= ?1",
            Some(now),
        )?,
        read("SELECT sub, revoked_at FROM plume_revoked_subjects", None)?,
    ))
}

/// Adds `rows` to `map`, keeping the later time for a key present in both.
fn merge_max(map: &RwLock<HashMap<String, i64>>, rows: Rows) -> Result<()> {
    let mut map = map.write().map_err(poisoned)?;
    for (key, at) in rows {
        let entry = map.entry(key).or_insert(at);
        *entry = (*entry).max(at);
    }
    Ok(())
}

/// Milliseconds on a monotonic clock, never 0.
fn clock_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = ORIGIN.get_or_init(std::time::Instant::now);
    u64::try_from(origin.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

fn unix_now() -> Result<i64> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(Error::internal)?;
    i64::try_from(since.as_secs()).map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revocations_persist_and_expire() {
        let dir = std::env::temp_dir().join(format!("plume-revoked-{}", uuid::Uuid::new_v4()));
        let path = dir.join("db.sqlite");
        let now = unix_now().unwrap().cast_unsigned();
        {
            let store = SqliteStore::open(&path).await.unwrap();
            let revoked = SqliteRevocations::new(&store);
            revoked.revoke("live", now + 3600).await.unwrap();
            revoked.revoke("live", now + 60).await.unwrap();
            revoked.revoke("expired", now - 1).await.unwrap();
            revoked.revoke_subject("7", now).await.unwrap();
            assert!(!revoked.is_revoked("expired").await.unwrap());
            // A later revoke forgets the expired one.
            revoked.revoke("other", now + 3600).await.unwrap();
            let rows: i64 = store
                .read(|tx| {
                    tx.query_row("SELECT count(*) FROM plume_revoked_tokens", [], |r| {
                        r.get(0)
                    })
                    .map_err(db_error)
                })
                .await
                .unwrap();
            assert_eq!(rows, 2);
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let revoked = SqliteRevocations::new(&store);
        assert!(revoked.is_revoked("live").await.unwrap());
        assert!(!revoked.is_revoked("never").await.unwrap());
        assert_eq!(revoked.subject_revoked_at("7").await.unwrap(), Some(now));
        assert_eq!(revoked.subject_revoked_at("8").await.unwrap(), None);
        let expiry: i64 = store
            .read(|tx| {
                tx.query_row(
                    "SELECT expires_at FROM plume_revoked_tokens WHERE jti = 'live'",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_error)
            })
            .await
            .unwrap();
        assert_eq!(
            expiry.cast_unsigned(),
            now + 3600,
            "the later expiry is kept"
        );
        drop(revoked);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn another_process_revocations_are_seen_within_the_cache_lifetime() {
        let dir = std::env::temp_dir().join(format!("plume-revoked-{}", uuid::Uuid::new_v4()));
        let path = dir.join("db.sqlite");
        let server = SqliteStore::open(&path).await.unwrap();
        server.set_record_cache_ttl(std::time::Duration::from_millis(50));
        let serving = SqliteRevocations::new(&server);
        assert!(!serving.is_revoked("t").await.unwrap());
        assert_eq!(serving.subject_revoked_at("7").await.unwrap(), None);
        // A second store on the same file stands for another process
        // (`plume user grant`).
        let other = SqliteStore::open(&path).await.unwrap();
        let writing = SqliteRevocations::new(&other);
        let now = unix_now().unwrap().cast_unsigned();
        writing.revoke("t", now + 3600).await.unwrap();
        writing.revoke_subject("7", now).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        assert!(serving.is_revoked("t").await.unwrap());
        assert_eq!(serving.subject_revoked_at("7").await.unwrap(), Some(now));
        drop((serving, writing, server, other));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn every_handle_on_a_store_sees_a_revocation_at_once() {
        let store = SqliteStore::open(":memory:").await.unwrap();
        let first = SqliteRevocations::new(&store);
        let second = SqliteRevocations::new(&store);
        assert!(!second.is_revoked("t1").await.unwrap());
        first.revoke("t1", u64::MAX).await.unwrap();
        assert!(second.is_revoked("t1").await.unwrap());
        // Expired entries are not revoked (the token fails on its own).
        first.revoke("old", 1).await.unwrap();
        assert!(!second.is_revoked("old").await.unwrap());
        // In its last second a token is still revoked.
        let now = unix_now().unwrap().cast_unsigned();
        first.revoke("last", now).await.unwrap();
        assert!(second.is_revoked("last").await.unwrap());
    }
}
