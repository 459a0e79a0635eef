//! Revoked tokens: logout records a token's `jti` until its `exp`, and
//! verification refuses it from then on (Feathers only verifies on logout).
//! A password change or a deleted entity revokes every token of that
//! subject issued until then (`iat <= at`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::token::now;
use crate::Result;
use crate::error::poisoned;

/// Where revoked token ids are kept. The in-memory [`MemoryRevocationList`]
/// is the default; a persistent store implements the same methods beside
/// its own code (`store::SqliteRevocations` for SQLite).
#[async_trait]
pub trait RevocationList: Send + Sync + 'static {
    /// Records that the token `jti` is revoked until `expires_at` (Unix
    /// seconds); after that the token is expired anyway and the entry may
    /// be dropped.
    async fn revoke(&self, jti: &str, expires_at: u64) -> Result<()>;

    /// True when `jti` has been revoked. A token stays revoked through
    /// its last second (`exp == now`), when its signature still verifies.
    async fn is_revoked(&self, jti: &str) -> Result<bool>;

    /// Records that every token of the subject `sub` issued at or before
    /// `at` (Unix seconds, its `iat`) is revoked; a later call with an
    /// earlier `at` keeps the later one.
    async fn revoke_subject(&self, sub: &str, at: u64) -> Result<()>;

    /// The time up to which the subject's tokens are revoked, if ever.
    async fn subject_revoked_at(&self, sub: &str) -> Result<Option<u64>>;

    /// Both questions a request asks, at once: whether the token `jti`
    /// is revoked, and up to when the tokens of `sub` are. A store that
    /// answers them in one round trip overrides this; the default asks
    /// [`is_revoked`](Self::is_revoked) and
    /// [`subject_revoked_at`](Self::subject_revoked_at) in turn.
    async fn check(&self, jti: Option<&str>, sub: Option<&str>) -> Result<(bool, Option<u64>)> {
        let revoked = match jti {
            Some(jti) => self.is_revoked(jti).await?,
            None => false,
        };
        if revoked {
            return Ok((true, None));
        }
        let since = match sub {
            Some(sub) => self.subject_revoked_at(sub).await?,
            None => None,
        };
        Ok((false, since))
    }
}

/// Revoked ids in memory, forgotten on restart; entries are dropped once
/// their token has expired.
#[derive(Debug, Default)]
pub struct MemoryRevocationList {
    entries: Mutex<HashMap<String, u64>>,
    subjects: Mutex<HashMap<String, u64>>,
}

impl MemoryRevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many revoked, not yet expired, tokens are held.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }

    /// True when no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl RevocationList for MemoryRevocationList {
    async fn revoke(&self, jti: &str, expires_at: u64) -> Result<()> {
        let mut entries = self.entries.lock().map_err(poisoned)?;
        let now = now();
        // Pruning on every insert keeps the map bounded by the number of
        // logouts within one token lifetime.
        entries.retain(|_, exp| *exp >= now);
        if expires_at >= now {
            entries.insert(jti.to_owned(), expires_at);
        }
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        let entries = self.entries.lock().map_err(poisoned)?;
        Ok(entries.get(jti).is_some_and(|exp| *exp >= now()))
    }

    async fn revoke_subject(&self, sub: &str, at: u64) -> Result<()> {
        let mut subjects = self.subjects.lock().map_err(poisoned)?;
        let entry = subjects.entry(sub.to_owned()).or_insert(at);
        *entry = (*entry).max(at);
        Ok(())
    }

    async fn subject_revoked_at(&self, sub: &str) -> Result<Option<u64>> {
        let subjects = self.subjects.lock().map_err(poisoned)?;
        Ok(subjects.get(sub).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_stays_revoked_through_its_last_second() {
        let list = MemoryRevocationList::new();
        let now = now();
        list.revoke("last-second", now).await.unwrap();
        assert!(list.is_revoked("last-second").await.unwrap());
        list.revoke_subject("7", now).await.unwrap();
        list.revoke_subject("7", now - 10).await.unwrap();
        assert_eq!(list.subject_revoked_at("7").await.unwrap(), Some(now));
        assert_eq!(list.subject_revoked_at("8").await.unwrap(), None);
    }
}
