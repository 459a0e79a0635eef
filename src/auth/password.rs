//! Password hashing with argon2id (the argon2 crate's defaults: m = 19 MiB,
//! t = 2, p = 1, the OWASP minimum), stored as PHC strings.
//!
//! Hashing and verifying run on tokio's blocking pool behind a semaphore
//! with one permit per CPU, so a burst of logins queues instead of
//! stalling the async workers or spawning unbounded blocking threads.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::{OnceCell, Semaphore};

use crate::{Error, Result};

/// Passwords longer than this (in bytes) are refused: hashing cost does
/// not grow much with length, but there is no reason to accept megabytes.
pub const DEFAULT_MAX_PASSWORD_LEN: usize = 1024;

fn permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    Arc::clone(PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Arc::new(Semaphore::new(cpus))
    }))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let permit = permits()
        .acquire_owned()
        .await
        .map_err(|e| Error::internal(format!("password hashing semaphore closed: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash_password(password: String) -> Result<String> {
    blocking(move || {
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
    blocking(move || {
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
pub async fn burn_verification(password: String) -> Result<()> {
    let dummy = dummy_hash().await?;
    blocking(move || {
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
            hash_password(password).await.map(Arc::from)
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
