//! Login throttling: after too many failed logins for one account, or from
//! one client address, within a window, further attempts get 429
//! TooManyRequests with `data: {"retryAfter": <seconds>}` (the REST
//! transport turns that into a `Retry-After` header).
//!
//! Configured under `authentication.throttle`:
//! `{"maxPerUsername": 10, "maxPerAddress": 50, "window": "15m"}` (the
//! defaults), or `false` to switch it off. Only external calls are
//! throttled; the address comes from [`crate::ClientAddr`].

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::config::parse_timespan;
use crate::{Error, Result};

/// At most this many accounts and addresses are tracked; beyond it,
/// expired entries are pruned, and if that is not enough new keys are not
/// tracked (memory stays bounded under a spray of random usernames).
const MAX_TRACKED: usize = 100_000;

/// The throttle's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// False when throttling is switched off.
    pub enabled: bool,
    /// Failed logins allowed per account within the window.
    pub max_per_username: usize,
    /// Failed logins allowed per client address within the window.
    pub max_per_address: usize,
    /// The window.
    pub window: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_per_username: 10,
            max_per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl ThrottleSettings {
    /// Reads `throttle` from the effective configuration.
    pub fn from_config(config: &Map<String, Value>, config_key: &str) -> Result<Self> {
        let mut settings = Self::default();
        match config.get("throttle") {
            None | Some(Value::Null | Value::Bool(true)) => {}
            Some(Value::Bool(false)) => settings.enabled = false,
            Some(Value::Object(options)) => {
                for (key, value) in options {
                    match key.as_str() {
                        "enabled" => {
                            settings.enabled =
                                value.as_bool().ok_or_else(|| bad(config_key, key))?;
                        }
                        "maxPerUsername" => {
                            settings.max_per_username =
                                count(value).ok_or_else(|| bad(config_key, key))?;
                        }
                        "maxPerAddress" => {
                            settings.max_per_address =
                                count(value).ok_or_else(|| bad(config_key, key))?;
                        }
                        "window" => settings.window = Duration::from_secs(parse_timespan(value)?),
                        other => {
                            return Err(Error::general(format!(
                                "Unknown option '{config_key}.throttle.{other}'"
                            )));
                        }
                    }
                }
            }
            Some(_) => {
                return Err(Error::general(format!(
                    "'{config_key}.throttle' must be an object or false"
                )));
            }
        }
        Ok(settings)
    }
}

fn count(value: &Value) -> Option<usize> {
    value.as_u64().and_then(|n| usize::try_from(n).ok())
}

fn bad(config_key: &str, key: &str) -> Error {
    Error::general(format!("'{config_key}.throttle.{key}' has the wrong type"))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Counts failed logins per account and per address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

fn keys(username: Option<&str>, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
    // Accounts are compared case-insensitively so that `Alice` and `alice`
    // share one budget even when the store matches either.
    username
        .map(|u| Key::Account(u.to_lowercase()))
        .into_iter()
        .chain(address.map(Key::Address))
}

impl Throttle {
    /// An empty throttle.
    pub fn new() -> Self {
        Self::default()
    }

    /// 429 when the account or the address is over its limit.
    pub fn check(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<()> {
        self.check_at(settings, username, address, Instant::now())
    }

    /// [`check`](Self::check) at a given instant (for tests).
    pub fn check_at(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<()> {
        if !settings.enabled {
            return Ok(());
        }
        let failures = self.lock()?;
        let mut retry_after: Option<Duration> = None;
        for key in keys(username, address) {
            let limit = match key {
                Key::Account(_) => settings.max_per_username,
                Key::Address(_) => settings.max_per_address,
            };
            let Some(times) = failures.get(&key) else {
                continue;
            };
            let recent: Vec<&Instant> = times
                .iter()
                .filter(|t| now.saturating_duration_since(**t) < settings.window)
                .collect();
            if recent.len() >= limit {
                // The attempt that unlocks the key is when enough of the
                // recent failures have left the window.
                let index = recent.len() - limit;
                let wait = recent.get(index).map_or(settings.window, |t| {
                    (**t + settings.window).saturating_duration_since(now)
                });
                retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
            }
        }
        match retry_after {
            None => Ok(()),
            Some(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Error::too_many_requests(
                    "Too many failed login attempts, please try again later",
                )
                .with_data(json!({ "retryAfter": seconds.max(1) })))
            }
        }
    }

    /// Records a failed login.
    pub fn record_failure(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
    ) {
        self.record_failure_at(settings, username, address, Instant::now());
    }

    /// [`record_failure`](Self::record_failure) at a given instant.
    pub fn record_failure_at(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
        now: Instant,
    ) {
        if !settings.enabled {
            return;
        }
        let Ok(mut failures) = self.lock() else {
            return;
        };
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < settings.window)
            });
        }
        let cap = settings
            .max_per_username
            .max(settings.max_per_address)
            .max(1);
        for key in keys(username, address) {
            if failures.len() >= MAX_TRACKED && !failures.contains_key(&key) {
                tracing::warn!("login throttle is full; not tracking a new key");
                continue;
            }
            let times = failures.entry(key).or_default();
            while times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= settings.window)
            {
                times.pop_front();
            }
            times.push_back(now);
            // Only the newest `cap` failures matter for any decision.
            while times.len() > cap {
                times.pop_front();
            }
        }
    }

    /// A successful login resets the account's count (not the address's:
    /// one good password must not unlock guessing at other accounts).
    pub fn record_success(&self, username: Option<&str>) {
        if let (Some(key), Ok(mut failures)) = (keys(username, None).next(), self.lock()) {
            failures.remove(&key);
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>>> {
        self.failures
            .lock()
            .map_err(|_| Error::internal("the login throttle's lock was poisoned"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ThrottleSettings {
        ThrottleSettings {
            enabled: true,
            max_per_username: 3,
            max_per_address: 5,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn window_slides() {
        let throttle = Throttle::new();
        let settings = small();
        let start = Instant::now();
        for i in 0..3 {
            throttle.record_failure_at(
                &settings,
                Some("a"),
                None,
                start + Duration::from_secs(i * 10),
            );
        }
        let at = start + Duration::from_secs(25);
        let err = throttle
            .check_at(&settings, Some("A"), None, at)
            .unwrap_err();
        assert_eq!(err.code(), 429);
        assert_eq!(err.data().unwrap()["retryAfter"], json!(35));
        // The first failure leaves the window at 60 s.
        assert!(
            throttle
                .check_at(&settings, Some("a"), None, start + Duration::from_secs(60))
                .is_ok()
        );
        assert!(throttle.check_at(&settings, Some("b"), None, at).is_ok());
    }
}
