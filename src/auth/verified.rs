//! Access tokens already verified, so that a client sending the same token
//! on every request pays for its signature check and claim parsing once.
//!
//! An entry holds what a full verification returned for the exact token
//! text under one configuration (the `Arc` that
//! [`AuthenticationService::shared_configuration`](super::AuthenticationService::shared_configuration)
//! handed out); a new configuration starts an empty cache. The signature,
//! algorithm, `typ`, `aud`, `iss` and `sub` checks depend only on the text
//! and the configuration, so they hold for as long as the entry; what
//! depends on the clock, `exp` and `nbf`, is checked again on every use,
//! with the same rule as the full check (no leeway), and a failing entry
//! sends the caller through the full check, which gives the error. Revocation
//! is not cached: the caller checks it every time. Only tokens that
//! verified are stored, so a forged or altered token always takes the full
//! path.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::token::now;

/// Tokens kept; a full cache starts over empty.
const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct VerifiedTokens {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    config: Option<Arc<Map<String, Value>>>,
    tokens: HashMap<String, Arc<Map<String, Value>>>,
}

/// The clock checks of a full verification: not expired (`exp` not
/// before now) and already valid (`nbf`, when present, not after now).
fn current(claims: &Map<String, Value>, now: u64) -> bool {
    let exp_ok = claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_some_and(|exp| exp >= now);
    let nbf_ok = claims
        .get("nbf")
        .is_none_or(|nbf| nbf.as_u64().is_some_and(|nbf| nbf <= now));
    exp_ok && nbf_ok
}

impl VerifiedTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every critical section leaves the map consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The claims of `token` if it verified under `config` and is still
    /// within its `nbf`..`exp` window.
    pub(super) fn get(
        &self,
        config: &Arc<Map<String, Value>>,
        token: &str,
    ) -> Option<Arc<Map<String, Value>>> {
        let inner = self.lock();
        if !inner
            .config
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, config))
        {
            return None;
        }
        let claims = inner.tokens.get(token)?;
        current(claims, now()).then(|| Arc::clone(claims))
    }

    /// Remembers that `token` verified under `config` with `claims`.
    pub(super) fn insert(
        &self,
        config: &Arc<Map<String, Value>>,
        token: &str,
        claims: Arc<Map<String, Value>>,
    ) {
        let mut inner = self.lock();
        if !inner
            .config
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, config))
        {
            inner.config = Some(Arc::clone(config));
            inner.tokens.clear();
        }
        if inner.tokens.len() >= CAPACITY {
            inner.tokens.clear();
        }
        inner.tokens.insert(token.to_owned(), claims);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Arc<Map<String, Value>> {
        match value {
            Value::Object(map) => Arc::new(map),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_clock_is_checked_on_every_use() {
        let now = 1_000;
        assert!(current(&claims(json!({"exp": 1_000})), now));
        assert!(!current(&claims(json!({"exp": 999})), now));
        assert!(!current(&claims(json!({})), now));
        assert!(current(&claims(json!({"exp": 2_000, "nbf": 1_000})), now));
        assert!(!current(&claims(json!({"exp": 2_000, "nbf": 1_001})), now));
    }

    #[test]
    fn entries_belong_to_one_configuration_and_expire() {
        let cache = VerifiedTokens::default();
        let config = Arc::new(Map::new());
        let later = now() + 3_600;
        cache.insert(&config, "a.b.c", claims(json!({"exp": later, "sub": "1"})));
        assert_eq!(cache.get(&config, "a.b.c").unwrap()["sub"], "1");
        assert!(cache.get(&config, "a.b.d").is_none());

        // Same content, another configuration: not trusted.
        let changed = Arc::new(Map::new());
        assert!(cache.get(&changed, "a.b.c").is_none());

        cache.insert(&config, "old", claims(json!({"exp": now() - 1})));
        assert!(cache.get(&config, "old").is_none());
    }
}
