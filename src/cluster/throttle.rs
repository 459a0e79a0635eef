//! [`RedisThrottle`]: the login throttle's counters in Redis, shared by
//! every instance.
//!
//! Each account and each address is a sorted set of attempt ids scored by
//! the time they were made, in milliseconds of the Redis server's clock
//! (one clock for every instance). Reserving is one Lua script, atomic in
//! Redis: drop the attempts older than the window, refuse when a set is at
//! its limit (answering when its oldest counted attempt leaves the
//! window), else add the attempt to both sets and let them expire with
//! the window. A set never holds more than its limit, and an idle one
//! expires, so a spray of names costs Redis at most one small set per
//! attempt for one window.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use blake2::{Blake2b512, Digest};
use redis::Script;
use redis::aio::ConnectionManager;
use serde_json::json;

use crate::auth::throttle::{SharedAttempt, SharedThrottle, ThrottleSettings};
use crate::{Error, Result};

/// KEYS: the sets (account and/or address); ARGV: window in ms, the
/// attempt's id, then each set's limit. Returns 0 when reserved, else the
/// milliseconds until an attempt is allowed.
const RESERVE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local limit = tonumber(ARGV[2 + i])
    local count = redis.call('ZCARD', key)
    if limit < 1 then
        -- No attempt allowed at all: wait a whole window.
        wait = window
    elseif count >= limit then
        local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
        local until_free = tonumber(oldest[2]) + window - now
        if until_free < 1 then until_free = 1 end
        if until_free > wait then wait = until_free end
    end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, window)
end
return 0
";

/// The login throttle's counters in Redis, shared by every instance
/// ([`RedisBus::throttle`](super::RedisBus::throttle) makes one). Each
/// account and each address is a sorted set of attempts scored by the
/// Redis server's clock; a reservation is one atomic Lua script that drops
/// what left the window, refuses at the limit (saying when to retry) and
/// otherwise adds the attempt. Accounts are keyed hashes of their names.
#[derive(Debug)]
pub struct RedisThrottle {
    commands: ConnectionManager,
    /// A digest of the authentication secret: the key of account hashes.
    key: [u8; 64],
    /// `<bus key>:throttle:`.
    prefix: String,
    instance: String,
    next: AtomicU64,
    reserve: Script,
}

impl RedisThrottle {
    /// Counters over `commands`; accounts hashed with a key derived from
    /// `secret`; attempt ids made unique by `instance`.
    pub(super) fn new(
        commands: ConnectionManager,
        secret: &str,
        bus_key: &str,
        instance: String,
    ) -> Self {
        let mut key = [0; 64];
        key.copy_from_slice(&Blake2b512::digest(secret.as_bytes()));
        Self {
            commands,
            key,
            prefix: format!("{bus_key}:throttle:"),
            instance,
            next: AtomicU64::new(0),
            reserve: Script::new(RESERVE),
        }
    }

    /// The Redis key of an account: a keyed hash of its lower-cased name
    /// (the same on every instance, which share the secret), so Redis
    /// never holds a login name.
    fn account_key(&self, account: &str) -> String {
        let digest = Blake2b512::new()
            .chain_update(self.key)
            .chain_update(account.to_lowercase().as_bytes())
            .finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}account:{hex}", self.prefix)
    }

    fn address_key(&self, address: IpAddr) -> String {
        format!("{}address:{address}", self.prefix)
    }

    fn keys(&self, account: Option<&str>, address: Option<IpAddr>) -> Vec<String> {
        account
            .map(|a| self.account_key(a))
            .into_iter()
            .chain(address.map(|a| self.address_key(a)))
            .collect()
    }
}

fn unavailable(error: &redis::RedisError) -> Error {
    tracing::warn!(%error, "Redis unavailable for the login throttle");
    Error::unavailable("The login throttle's shared counters (Redis) are unavailable")
}

#[async_trait]
impl SharedThrottle for RedisThrottle {
    async fn reserve(
        &self,
        settings: &ThrottleSettings,
        account: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<SharedAttempt> {
        let id = format!(
            "{}:{}",
            self.instance,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let keys = self.keys(account, address);
        let attempt = SharedAttempt {
            account: account.map(str::to_owned),
            address,
            id,
        };
        if keys.is_empty() {
            return Ok(attempt);
        }
        let mut invocation = self.reserve.prepare_invoke();
        for key in &keys {
            invocation.key(key);
        }
        let window_ms = u64::try_from(settings.window.as_millis()).unwrap_or(u64::MAX);
        invocation.arg(window_ms.max(1)).arg(&attempt.id);
        if account.is_some() {
            invocation.arg(settings.max_per_username);
        }
        if address.is_some() {
            invocation.arg(settings.max_per_address);
        }
        let mut commands = self.commands.clone();
        let wait_ms: u64 = invocation
            .invoke_async(&mut commands)
            .await
            .map_err(|e| unavailable(&e))?;
        if wait_ms == 0 {
            Ok(attempt)
        } else {
            Err(
                Error::too_many_requests("Too many failed login attempts, please try again later")
                    .with_data(json!({ "retryAfter": wait_ms.div_ceil(1000).max(1) })),
            )
        }
    }

    async fn succeeded(&self, attempt: SharedAttempt) -> Result<()> {
        let mut pipe = redis::pipe();
        if let Some(account) = &attempt.account {
            pipe.del(self.account_key(account)).ignore();
        }
        if let Some(address) = attempt.address {
            pipe.zrem(self.address_key(address), &attempt.id).ignore();
        }
        let mut commands = self.commands.clone();
        pipe.query_async::<()>(&mut commands)
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn released(&self, attempt: SharedAttempt) -> Result<()> {
        let mut pipe = redis::pipe();
        for key in self.keys(attempt.account.as_deref(), attempt.address) {
            pipe.zrem(key, &attempt.id).ignore();
        }
        let mut commands = self.commands.clone();
        pipe.query_async::<()>(&mut commands)
            .await
            .map_err(|e| unavailable(&e))
    }
}
