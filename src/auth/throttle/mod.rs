//! Login throttling: after too many failed logins for one account, or from
//! one client address, within a window, further attempts get 429
//! TooManyRequests with `data: {"retryAfter": <seconds>}` (the REST
//! transport turns that into a `Retry-After` header).
//!
//! Each attempt is reserved before its password is verified, so however
//! many arrive at once, at most the limit are evaluated per account and per
//! address; a success frees its reservation and resets the account. The
//! table is capped in bytes (`MAX_TRACKED_BYTES`), and accounts are
//! stored as fixed-size keyed hashes, so neither long login names nor a
//! spray of them grows the server.
//!
//! Configured under `authentication.throttle`:
//! `{"maxPerUsername": 10, "maxPerAddress": 50, "window": "15m"}` (the
//! defaults), or `false` to switch it off. Only external calls are
//! throttled; the address comes from [`crate::ClientAddr`].

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::json;

use crate::error::poisoned;
use crate::{Error, Result};

mod settings;
mod shared;

pub use settings::ThrottleSettings;
pub use shared::{SharedAttempt, SharedThrottle};

/// What the throttle may hold, in bytes (see [`Throttle::tracked_bytes`]).
/// A fixed cap rather than a count of keys: an entry's size depends on the
/// configured limits, and a spray of random login names or addresses must
/// not grow the server.
pub(crate) const MAX_TRACKED_BYTES: usize = 16 * 1024 * 1024;

/// A full table drops its expired entries at most this often (a scan of
/// the whole table), and otherwise makes room by evicting at random.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// An account is kept as a keyed 128-bit hash of its lower-cased name, so
/// every entry has the same small size whatever the login name, and the
/// table tells nothing about the names it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Account([u64; 2]),
    Address(IpAddr),
}

/// The bytes one entry costs besides its timestamps: the key and the
/// deque in the entry list, the index's hash and slot, doubled for the
/// slack a growing table keeps.
const ENTRY_BYTES: usize = 2
    * (std::mem::size_of::<Key>()
        + std::mem::size_of::<VecDeque<Instant>>()
        + 2 * std::mem::size_of::<usize>());

// The cap holds tens of thousands of entries, so that evicting one
// account's entry at random takes as many fresh attempts.
const _: () = assert!(MAX_TRACKED_BYTES / (ENTRY_BYTES + 4 * 16) > 60_000);

fn entry_bytes(times: &VecDeque<Instant>) -> usize {
    ENTRY_BYTES + times.capacity() * std::mem::size_of::<Instant>()
}

#[derive(Debug)]
struct Table {
    /// Attempt times per key, oldest first: reserved attempts, kept when
    /// they fail.
    entries: IndexMap<Key, VecDeque<Instant>>,
    /// The sum of [`entry_bytes`] over `entries`.
    bytes: usize,
    /// The cap on `bytes`.
    max_bytes: usize,
    last_prune: Option<Instant>,
    /// State of the xorshift generator that picks entries to evict.
    random: u64,
}

impl Table {
    /// How long until `key` is under `limit` again, when it is at it now.
    /// The times are oldest first, so the live ones are a suffix.
    fn wait_for(
        &self,
        key: &Key,
        limit: usize,
        window: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let times = self.entries.get(key)?;
        let start = times
            .iter()
            .position(|t| now.saturating_duration_since(*t) < window)
            .unwrap_or(times.len());
        let live = times.len() - start;
        if live < limit {
            return None;
        }
        // The attempt that unlocks the key is when enough of the live
        // attempts have left the window.
        Some(
            times
                .get(start + live - limit)
                .map_or(window, |t| (*t + window).saturating_duration_since(now)),
        )
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }

    /// Frees memory until `extra` more bytes fit: expired entries first,
    /// then entries picked at random. Random rather than oldest, so that
    /// finding the victim costs nothing and an attacker cannot aim at one
    /// account's entry: clearing a locked account's count takes about as
    /// many fresh attempts (each a password verification) as the table
    /// holds entries.
    fn make_room(&mut self, extra: usize, window: Duration, now: Instant) {
        if self.bytes + extra <= self.max_bytes {
            return;
        }
        if self
            .last_prune
            .is_none_or(|at| now.saturating_duration_since(at) >= PRUNE_EVERY)
        {
            self.last_prune = Some(now);
            let mut freed = 0;
            self.entries.retain(|_, times| {
                let live = times
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < window);
                if !live {
                    freed += entry_bytes(times);
                }
                live
            });
            self.bytes -= freed;
        }
        while self.bytes + extra > self.max_bytes && !self.entries.is_empty() {
            let len = self.entries.len() as u64;
            let index = usize::try_from(self.next_random() % len).unwrap_or(0);
            if let Some((_, times)) = self.entries.swap_remove_index(index) {
                self.bytes -= entry_bytes(&times);
            }
        }
    }

    /// Appends `at` to `key`'s times, dropping expired ones and all but
    /// the newest `cap` (only those matter for any decision).
    fn push(&mut self, key: Key, at: Instant, cap: usize, window: Duration) {
        let mut times = match self.entries.swap_remove(&key) {
            Some(times) => {
                self.bytes -= entry_bytes(&times);
                times
            }
            None => VecDeque::new(),
        };
        while times
            .front()
            .is_some_and(|t| at.saturating_duration_since(*t) >= window)
        {
            times.pop_front();
        }
        times.push_back(at);
        while times.len() > cap.max(1) {
            times.pop_front();
        }
        self.bytes += entry_bytes(&times);
        self.entries.insert(key, times);
    }

    /// Takes back one attempt made at `at` (a reservation that did not
    /// count after all).
    fn remove_one(&mut self, key: &Key, at: Instant) {
        let Some(times) = self.entries.get_mut(key) else {
            return;
        };
        let before = entry_bytes(times);
        if let Some(index) = times.iter().rposition(|t| *t == at) {
            times.remove(index);
        }
        if times.is_empty() {
            self.entries.swap_remove(key);
            self.bytes -= before;
        } else {
            let after = entry_bytes(times);
            self.bytes = self.bytes - before + after;
        }
    }

    fn remove_key(&mut self, key: &Key) {
        if let Some(times) = self.entries.swap_remove(key) {
            self.bytes -= entry_bytes(&times);
        }
    }
}

/// Counts login attempts per account and per address. An attempt is
/// reserved before the password is verified, so
/// however many logins arrive at once, at most the limit of them are
/// evaluated; the rest get 429 at once.
#[derive(Debug)]
pub struct Throttle {
    table: Mutex<Table>,
    /// Two independently keyed hashers, together a 128-bit keyed hash.
    hashers: [RandomState; 2],
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with_max_bytes(MAX_TRACKED_BYTES)
    }
}

/// A reserved login attempt; see [`Throttle::reserve`]. Dropped without
/// being settled (a failed login, or a request that went away while its
/// password was being verified), it stays counted.
#[derive(Debug)]
#[must_use = "a reservation is settled by succeeded() or released()"]
pub(crate) struct Reservation<'a> {
    throttle: Option<&'a Throttle>,
    account: Option<Key>,
    address: Option<Key>,
    at: Instant,
    /// The same attempt in the counters every instance shares.
    shared: Option<(std::sync::Arc<dyn SharedThrottle>, SharedAttempt)>,
}

/// Settles a shared attempt off the request's path: the login's answer
/// does not wait for it, and a failure to settle only leaves the attempt
/// counted until its window ends.
fn settle_shared(
    shared: Option<(std::sync::Arc<dyn SharedThrottle>, SharedAttempt)>,
    succeeded: bool,
) {
    let (Some((throttle, attempt)), Ok(runtime)) = (shared, tokio::runtime::Handle::try_current())
    else {
        return;
    };
    runtime.spawn(async move {
        let settled = if succeeded {
            throttle.succeeded(attempt).await
        } else {
            throttle.released(attempt).await
        };
        if let Err(error) = settled {
            tracing::warn!(%error, "a shared login attempt was not settled; it counts until its window ends");
        }
    });
}

impl Reservation<'_> {
    /// The login succeeded: the account's count is reset (as before
    /// reservations) and this attempt does not count against the address
    /// (the address's failures stay: one good password must not unlock
    /// guessing at other accounts).
    pub(crate) fn succeeded(mut self) {
        settle_shared(self.shared.take(), true);
        if let Some(throttle) = self.throttle.take()
            && let Ok(mut table) = throttle.lock()
        {
            if let Some(account) = &self.account {
                table.remove_key(account);
            }
            if let Some(address) = &self.address {
                table.remove_one(address, self.at);
            }
        }
    }

    /// The attempt did not count after all (an error that is not a failed
    /// login, such as a missing entity service): its slots are freed.
    pub(crate) fn released(mut self) {
        settle_shared(self.shared.take(), false);
        if let Some(throttle) = self.throttle.take()
            && let Ok(mut table) = throttle.lock()
        {
            for key in self.account.iter().chain(&self.address) {
                table.remove_one(key, self.at);
            }
        }
    }
}

impl Throttle {
    /// An empty throttle.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An empty throttle holding at most `max_bytes` (tests use a small
    /// cap; servers use [`MAX_TRACKED_BYTES`]).
    pub(crate) fn with_max_bytes(max_bytes: usize) -> Self {
        let seed = RandomState::new().hash_one(0u8) | 1;
        Self {
            table: Mutex::new(Table {
                entries: IndexMap::new(),
                bytes: 0,
                max_bytes,
                last_prune: None,
                random: seed,
            }),
            hashers: [RandomState::new(), RandomState::new()],
        }
    }

    /// The bytes the tracked entries take, by the same count the cap is
    /// enforced with: never more than the cap.
    pub fn tracked_bytes(&self) -> usize {
        self.lock().map_or(0, |t| t.bytes)
    }

    /// How many accounts and addresses are tracked.
    pub fn tracked_entries(&self) -> usize {
        self.lock().map_or(0, |t| t.entries.len())
    }

    fn account_key(&self, username: &str) -> Key {
        // Accounts are compared case-insensitively so that `Alice` and
        // `alice` share one budget even when the store matches either;
        // lower-cased as a stream, without a copy of the name.
        let [first, second] = self.hashers.each_ref().map(|state| {
            let mut hasher = state.build_hasher();
            for c in username.chars().flat_map(char::to_lowercase) {
                hasher.write_u32(u32::from(c));
            }
            hasher.write_u8(0xff);
            hasher.finish()
        });
        Key::Account([first, second])
    }

    fn keys(&self, username: Option<&str>, address: Option<IpAddr>) -> (Option<Key>, Option<Key>) {
        (
            username.map(|u| self.account_key(u)),
            address.map(Key::Address),
        )
    }

    /// 429 when the account or the address is at its limit at `now`,
    /// without reserving anything (the service reserves instead; the unit
    /// tests look without reserving).
    #[cfg(test)]
    pub(crate) fn check_at(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<()> {
        if !settings.enabled {
            return Ok(());
        }
        let table = self.lock()?;
        let (account, address) = self.keys(username, address);
        over_limit(&table, settings, account.as_ref(), address.as_ref(), now)
    }

    /// Reserves one attempt for the account and the address, or 429
    /// TooManyRequests (`data.retryAfter` in seconds) when either is at
    /// its limit. Check and reservation happen under one lock, so of any
    /// number of concurrent attempts at most the limit get through. Settle
    /// the reservation with [`Reservation::succeeded`] or
    /// [`Reservation::released`]; dropping it keeps the attempt counted.
    pub(crate) fn reserve(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<Reservation<'_>> {
        self.reserve_at(settings, username, address, Instant::now())
    }

    /// [`reserve`](Self::reserve) at a given instant (for tests).
    pub(crate) fn reserve_at(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Reservation<'_>> {
        if !settings.enabled {
            return Ok(Reservation {
                throttle: None,
                account: None,
                address: None,
                at: now,
                shared: None,
            });
        }
        let (account, address) = self.keys(username, address);
        let mut table = self.lock()?;
        over_limit(&table, settings, account.as_ref(), address.as_ref(), now)?;
        // Room for new keys and for deques that double as they grow
        // (a new deque starts with room for four times).
        let growth: usize = [&account, &address]
            .into_iter()
            .flatten()
            .map(|key| {
                table
                    .entries
                    .get(key)
                    .map_or(ENTRY_BYTES + 4 * std::mem::size_of::<Instant>(), |times| {
                        times.capacity() * std::mem::size_of::<Instant>()
                    })
            })
            .sum();
        table.make_room(growth, settings.window, now);
        if let Some(key) = account {
            table.push(key, now, settings.max_per_username, settings.window);
        }
        if let Some(key) = address {
            table.push(key, now, settings.max_per_address, settings.window);
        }
        // A no-op unless the estimate fell short (a cap smaller than one
        // entry).
        table.make_room(0, settings.window, now);
        Ok(Reservation {
            throttle: Some(self),
            account,
            address,
            at: now,
            shared: None,
        })
    }

    /// [`reserve`](Self::reserve), then the same attempt in `shared`, the
    /// counters of every instance: its 429 (or 503 when unreachable)
    /// frees the local reservation.
    pub(crate) async fn reserve_shared(
        &self,
        settings: &ThrottleSettings,
        username: Option<&str>,
        address: Option<IpAddr>,
        shared: Option<&std::sync::Arc<dyn SharedThrottle>>,
    ) -> Result<Reservation<'_>> {
        let mut reservation = self.reserve(settings, username, address)?;
        let Some(shared) = shared.filter(|_| settings.enabled) else {
            return Ok(reservation);
        };
        let account = username.map(str::to_lowercase);
        match shared.reserve(settings, account.as_deref(), address).await {
            Ok(attempt) => {
                reservation.shared = Some((std::sync::Arc::clone(shared), attempt));
                Ok(reservation)
            }
            Err(error) => {
                reservation.released();
                Err(error)
            }
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Table>> {
        self.table.lock().map_err(poisoned)
    }
}

/// 429 when `account` or `address` has its limit of attempts within the
/// window.
fn over_limit(
    table: &Table,
    settings: &ThrottleSettings,
    account: Option<&Key>,
    address: Option<&Key>,
    now: Instant,
) -> Result<()> {
    let mut retry_after: Option<Duration> = None;
    let limited = account
        .map(|k| (k, settings.max_per_username))
        .into_iter()
        .chain(address.map(|k| (k, settings.max_per_address)));
    for (key, limit) in limited {
        if let Some(wait) = table.wait_for(key, limit, settings.window, now) {
            retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
        }
    }
    match retry_after {
        None => Ok(()),
        Some(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Err(
                Error::too_many_requests("Too many failed login attempts, please try again later")
                    .with_data(json!({ "retryAfter": seconds.max(1) })),
            )
        }
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
            let at = start + Duration::from_secs(i * 10);
            drop(throttle.reserve_at(&settings, Some("a"), None, at).unwrap());
        }
        let at = start + Duration::from_secs(25);
        let err = throttle
            .check_at(&settings, Some("A"), None, at)
            .unwrap_err();
        assert_eq!(err.code(), 429);
        assert_eq!(err.data().unwrap()["retryAfter"], json!(35));
        let err = throttle
            .reserve_at(&settings, Some("a"), None, at)
            .unwrap_err();
        assert_eq!(err.data().unwrap()["retryAfter"], json!(35));
        // The first attempt leaves the window at 60 s.
        assert!(
            throttle
                .check_at(&settings, Some("a"), None, start + Duration::from_secs(60))
                .is_ok()
        );
        assert!(throttle.check_at(&settings, Some("b"), None, at).is_ok());
    }

    #[test]
    fn a_reservation_counts_until_it_succeeds_or_is_released() {
        let throttle = Throttle::new();
        let settings = small();
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        // Three attempts in flight: the account is at its limit before any
        // of them is verified.
        let first = throttle.reserve(&settings, Some("ada"), address).unwrap();
        let second = throttle.reserve(&settings, Some("Ada"), address).unwrap();
        let third = throttle.reserve(&settings, Some("ADA"), address).unwrap();
        let err = throttle
            .reserve(&settings, Some("ada"), address)
            .unwrap_err();
        assert_eq!(err.code(), 429);
        assert!(err.data().unwrap()["retryAfter"].as_u64().unwrap() >= 1);
        // A failure (dropped unsettled) keeps its slot.
        drop(first);
        assert!(throttle.reserve(&settings, Some("ada"), address).is_err());
        // A release frees it.
        second.released();
        let fourth = throttle.reserve(&settings, Some("ada"), address).unwrap();
        assert!(throttle.reserve(&settings, Some("ada"), address).is_err());
        // A success resets the account, but takes back only its own
        // attempt from the address, which keeps the first and the fourth.
        third.succeeded();
        for _ in 0..3 {
            drop(throttle.reserve(&settings, Some("ada"), address).unwrap());
        }
        assert!(throttle.reserve(&settings, Some("ada"), address).is_err());
        drop(fourth);
        // The address: first, fourth and three more = 5, its limit.
        let err = throttle
            .reserve(&settings, Some("bob"), address)
            .unwrap_err();
        assert_eq!(err.code(), 429);
        assert!(throttle.reserve(&settings, Some("bob"), None).is_ok());
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let throttle = std::sync::Arc::new(Throttle::new());
        let settings = ThrottleSettings::default();
        let granted = std::sync::atomic::AtomicUsize::new(0);
        let barrier = std::sync::Barrier::new(50);
        std::thread::scope(|scope| {
            for _ in 0..50 {
                scope.spawn(|| {
                    barrier.wait();
                    for _ in 0..4 {
                        if let Ok(reservation) =
                            throttle.reserve(&settings, Some("ada"), Some([127, 0, 0, 1].into()))
                        {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            // A failed login: kept.
                            drop(reservation);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), settings.max_per_username);
    }

    #[test]
    fn huge_and_many_login_names_stay_within_a_fixed_number_of_bytes() {
        let cap = 64 * 1024;
        let throttle = Throttle::with_max_bytes(cap);
        let settings = ThrottleSettings::default();
        let huge = "x".repeat(1024 * 1024);
        drop(throttle.reserve(&settings, Some(&huge), None).unwrap());
        let one_huge = throttle.tracked_bytes();
        let small = Throttle::new();
        drop(small.reserve(&settings, Some("x"), None).unwrap());
        assert_eq!(
            one_huge,
            small.tracked_bytes(),
            "an entry's size ignores the name"
        );
        assert!(one_huge < 512, "{one_huge} bytes for one entry");
        for i in 0..5_000u32 {
            let name = format!("{i}{}", &huge[..256]);
            let address = IpAddr::from(i.to_be_bytes());
            drop(
                throttle
                    .reserve(&settings, Some(&name), Some(address))
                    .unwrap(),
            );
            assert!(throttle.tracked_bytes() <= cap);
        }
        let entries = throttle.tracked_entries();
        assert!(entries > 100 && entries * ENTRY_BYTES <= cap, "{entries}");
    }
}
