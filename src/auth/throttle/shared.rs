//! Login attempts counted together by every instance of an app: the
//! [`SharedThrottle`] an [`AuthenticationService`] consults after its own
//! in-process [`Throttle`](super::Throttle) (which still bounds what one
//! instance holds and evaluates at once).
//!
//! [`AuthenticationService`]: crate::auth::AuthenticationService

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;

use super::ThrottleSettings;
use crate::Result;

/// One attempt reserved in a [`SharedThrottle`]: what it was reserved for,
/// to settle it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedAttempt {
    /// The login name, lower-cased (the implementation keeps only a keyed
    /// hash of it).
    pub account: Option<String>,
    /// The client's address.
    pub address: Option<IpAddr>,
    /// The attempt's id within the shared store.
    pub id: String,
}

/// Counters of login attempts shared by several instances (the Redis bus
/// is one: `cluster::RedisBus::throttle`). The rules are the in-process
/// throttle's: at most `max_per_username` attempts per account and
/// `max_per_address` per address within the window, reserved before the
/// password is verified; a success resets the account and frees its
/// attempt on the address; an attempt that was not a guess is freed.
#[async_trait]
pub trait SharedThrottle: fmt::Debug + Send + Sync + 'static {
    /// Reserves an attempt, or 429 TooManyRequests with
    /// `data.retryAfter` (seconds) when the account or the address is at
    /// its limit; 503 Unavailable when the shared counters cannot be
    /// reached (a login that cannot be counted is not evaluated).
    async fn reserve(
        &self,
        settings: &ThrottleSettings,
        account: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<SharedAttempt>;

    /// The login succeeded: the account's attempts are forgotten, and this
    /// one no longer counts against the address.
    async fn succeeded(&self, attempt: SharedAttempt) -> Result<()>;

    /// The attempt did not count after all.
    async fn released(&self, attempt: SharedAttempt) -> Result<()>;
}
