//! Password hashing with argon2id (the argon2 crate's defaults: m = 19 MiB,
//! t = 2, p = 1, the OWASP minimum), stored as PHC strings.
//!
//! Hashing and verifying run on a small pool of dedicated threads, one per
//! CPU, fed from two queues: login verifications first, then hashes for
//! storage (sign-ups, password changes), so that a flood of sign-ups
//! delays a login by at most the hashes already running, never by the
//! queue of sign-ups behind them. Callers wait asynchronously, so a burst
//! queues without stalling the async workers. Dedicated threads rather
//! than tokio's blocking pool because each argon2 run allocates 19 MiB: on
//! the blocking pool (up to 512 threads) every thread that ever hashed kept
//! its own malloc arena with that memory, and a login storm took the
//! server's resident memory without bound. With one thread per CPU the memory
//! in use stays at a few hashes' worth.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::OnceCell;

use crate::error::poisoned;
use crate::workers::{Lane, Workers};
use crate::{Error, Result};

/// Passwords longer than this (in bytes) are refused: hashing cost does
/// not grow much with length, but there is no reason to accept megabytes.
pub const DEFAULT_MAX_PASSWORD_LEN: usize = 1024;

/// Which queue a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// A login's verification (and the dummy hash it may need): taken
    /// first, though after
    /// [`FIRSTS_BEFORE_A_SECOND`](crate::workers::FIRSTS_BEFORE_A_SECOND) logins taken ahead
    /// of a waiting storage hash, that one goes, so a steady stream of
    /// logins cannot hold sign-ups and password changes back for ever.
    Login,
    /// A hash to store: sign-ups, password changes, rehashes.
    Storage,
}

impl Priority {
    fn lane(self) -> Lane {
        match self {
            Self::Login => Lane::First,
            Self::Storage => Lane::Second,
        }
    }
}

/// The hashing threads, one per CPU, started on first use; they live as
/// long as the process.
fn pool() -> Result<&'static Workers<()>> {
    static POOL: OnceLock<Result<Workers<()>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Workers::start(
            "the password hashing threads",
            "plume-argon2",
            vec![(); cpus],
            lower_priority,
        )
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// How much nicer than the rest of the process the hashing threads run
/// (nice values stop at 19): see `lower_priority` in this module.
pub(crate) const HASHING_NICE: i32 = 19;

/// Runs the calling thread [`HASHING_NICE`] steps nicer than the process,
/// stopping at 19 (the lowest priority a normal thread can take), so that a burst of logins cannot
/// slow everything else down: the kernel runs a hashing thread in the time
/// the async workers leave idle, and when they keep a core busy gives it
/// a small share of that core (nice 19 weighs 15 against nice 0's 1024).
/// Without this, a login storm multiplied the p99 latency of authenticated
/// GETs on a one-core server, and nice 10 was not enough (BENCHMARKS.md,
/// "GETs during a login storm"). The price: on a core
/// saturated by other requests, logins queue for a long time, which is the
/// better trade (logins are rare, already take tens of milliseconds, and a
/// saturated server must shed something). Linux only (elsewhere the threads
/// keep the normal priority); a refusal is logged, not fatal.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value belongs to the thread, not the process.
        let thread = rustix::thread::gettid();
        let inherited = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
        let nice = inherited.saturating_add(HASHING_NICE).min(19);
        if let Err(error) = rustix::process::setpriority_process(Some(thread), nice) {
            tracing::warn!(%error, "cannot lower the priority of a password hashing thread");
        }
    }
}

/// Runs `work` on a hashing thread at `priority`. A job whose caller has
/// gone away by the time a thread takes it is skipped.
async fn blocking<T: Send + 'static>(
    priority: Priority,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    pool()?
        .run(priority.lane(), move |_: &mut ()| Ok(work()))
        .await
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`),
/// after the logins waiting for a hashing thread.
pub async fn hash_password(password: String) -> Result<String> {
    hash_with(Priority::Storage, password).await
}

/// Hashes `password` at `priority`: a login's own rehash is part of its
/// answer, so it does not wait behind sign-ups either.
pub(crate) async fn hash_with(priority: Priority, password: String) -> Result<String> {
    blocking(priority, move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| Error::internal(format!("argon2 hashing failed: {e}")))
    })
    .await?
}

/// True when `password` matches the PHC string `hash`. A hash that cannot
/// be parsed does not match (after the same work as a real check, so a
/// broken record does not answer faster).
pub async fn verify_password(password: String, hash: String) -> Result<bool> {
    let dummy = dummy_hash().await?;
    blocking(Priority::Login, move || {
        let argon2 = hasher();
        match PasswordHash::new(&hash) {
            Ok(parsed) => argon2.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => {
                let _ = argon2.verify_password(password.as_bytes(), &*dummy);
                false
            }
        }
    })
    .await
}

/// Does the work of one verification against a dummy hash and returns
/// nothing: what an unknown user costs, so that it costs the same as a
/// wrong password.
pub(crate) async fn burn_verification(password: String) -> Result<()> {
    let dummy = dummy_hash().await?;
    blocking(Priority::Login, move || {
        let _ = hasher().verify_password(password.as_bytes(), &*dummy);
    })
    .await
}

/// A hash of a random password with the current parameters, made once.
async fn dummy_hash() -> Result<Arc<str>> {
    static DUMMY: OnceCell<Arc<str>> = OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let mut random = [0u8; 32];
            getrandom::fill(&mut random)
                .map_err(|e| Error::internal(format!("no randomness for the dummy hash: {e}")))?;
            let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
            hash_with(Priority::Login, password).await.map(Arc::from)
        })
        .await
        .cloned()
}

/// True when `hash` was not made with the current algorithm and parameters
/// (or cannot be read), so it should be replaced after a successful login.
pub fn needs_rehash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return true;
    };
    if parsed.algorithm.as_str() != Algorithm::Argon2id.ident().as_str()
        || parsed.version != Some(Version::V0x13.into())
    {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(params) => {
            let current = Params::default();
            params.m_cost() != current.m_cost()
                || params.t_cost() != current.t_cost()
                || params.p_cost() != current.p_cost()
                || params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
                    != current.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let (mine, theirs) = (
            rustix::process::getpriority_process(None).unwrap(),
            blocking(Priority::Login, || {
                rustix::process::getpriority_process(Some(rustix::thread::gettid()))
            })
            .await
            .unwrap()
            .unwrap(),
        );
        assert_eq!(theirs, (mine + HASHING_NICE).min(19));
    }

    #[tokio::test]
    async fn a_login_is_verified_before_queued_storage_hashes() {
        let hash = hash_password("hunter42".to_owned()).await.unwrap();
        // Sign-ups queued first...
        let workers = pool().unwrap();
        let threads = workers.threads();
        let queued: Vec<_> = (0..4 * threads + 4)
            .map(|i| {
                let password = format!("sign-up {i}");
                let (task, done) =
                    crate::workers::task("the password hashing threads", move |_: &mut ()| {
                        let _ = hasher().hash_password(password.as_bytes());
                        Ok(())
                    });
                workers.submit(Lane::Second, task).unwrap();
                done
            })
            .collect();
        // ...a login after them is taken as soon as a thread is free.
        assert!(verify_password("hunter42".to_owned(), hash).await.unwrap());
        let mut waiting = 0;
        for mut done in queued {
            if done.try_recv().is_err() {
                waiting += 1;
            }
        }
        // At most the hashes already running (one per thread) finished
        // before the login; other tests may share the pool, so leave room.
        assert!(
            waiting >= 2 * threads,
            "{waiting} of {} still queued",
            4 * threads + 4
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_carry_default_parameters() {
        let hash = hash_password("hunter42".to_owned()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password("hunter42".to_owned(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify_password("hunter43".to_owned(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify_password("x".to_owned(), "not a hash".to_owned())
                .await
                .unwrap()
        );
        assert!(!needs_rehash(&hash));
        assert!(needs_rehash(
            "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        assert!(needs_rehash("$2b$10$abcdefghijklmnopqrstuv"));
    }
}

/// Hashes in progress per client address; an address leaves the map when
/// its last hash ends, so the map is never larger than the number of
/// calls in flight.
#[derive(Debug, Default)]
pub(crate) struct HashingLimiter(
    std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
);

/// One hashing call in progress for an address, counted until dropped
/// (also when the caller goes away).
#[derive(Debug)]
pub(crate) struct HashingSlot {
    limiter: Arc<HashingLimiter>,
    address: std::net::IpAddr,
}

impl HashingLimiter {
    pub(crate) fn enter(
        self: &Arc<Self>,
        address: std::net::IpAddr,
        limit: usize,
    ) -> Result<HashingSlot> {
        let mut counts = self.0.lock().map_err(poisoned)?;
        let count = counts.entry(address).or_insert(0);
        if *count >= limit {
            return Err(Error::too_many_requests(
                "Too many passwords are being hashed for this address, please try again later",
            )
            // A hash takes a fraction of a second: the slot frees soon.
            .with_data(serde_json::json!({ "retryAfter": 1 })));
        }
        *count += 1;
        Ok(HashingSlot {
            limiter: Arc::clone(self),
            address,
        })
    }
}

impl Drop for HashingSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.limiter.0.lock()
            && let Some(count) = counts.get_mut(&self.address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}
