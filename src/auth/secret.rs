//! The signing secret when none is configured: generated once, kept in a
//! file beside the database, and the secrets that are public because they
//! are written in this repository.
//!
//! A secret that anyone can read in Plume's sources signs tokens anyone can
//! forge, so [`is_published`] secrets are refused everywhere but in the
//! `test` environment. With no secret configured, `stored_or_new` makes a
//! random one on the first start and reuses it on every later one.

use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The secret `config/default.json` used to ship for development. It is
/// public, so it is refused outside the `test` environment.
pub const DEVELOPMENT_SECRET: &str =
    "plume-development-secret-do-not-use-in-production-change-me-0123456789";

/// The secret in `config/test.json`, for the test suite only.
pub const TEST_SECRET: &str = "plume-test-secret-only-for-the-test-suite-0123456789abcdef";

/// Every secret written in the repository's configuration, examples,
/// documentation and benchmarks: whoever has read them can sign tokens
/// with them. A unit test checks that the files hold no other.
pub const PUBLISHED_SECRETS: &[&str] = &[
    DEVELOPMENT_SECRET,
    TEST_SECRET,
    // examples/custom_payload.rs before it generated its own.
    "example-secret-example-secret-example-secret",
    // The AuthenticationService docs, and the README before it generated
    // its own.
    "a long random secret of at least 32 bytes",
    "a-long-random-secret-of-at-least-32-bytes",
    // benches/auth.rs.
    "bench-secret-bench-secret-bench-secret-bench",
];

/// How long a start waits for another process that is writing the secret
/// file at the same moment.
const CONCURRENT_WRITE_WAIT: Duration = Duration::from_secs(2);

/// True when `secret` is one of the [`PUBLISHED_SECRETS`] (surrounding
/// white space ignored, as a copied line may carry some).
pub fn is_published(secret: &str) -> bool {
    PUBLISHED_SECRETS.contains(&secret.trim())
}

/// The shortest secret accepted outside the `test` environment, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Secrets people type when a template asks for one.
const PLACEHOLDERS: &[&str] = &[
    "change_me",
    "changeme",
    "change-me",
    "secret",
    "supersecret",
    "your-secret-key",
    "your-secret",
];

/// Why a signing secret must not protect real data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weakness {
    /// One of the [`PUBLISHED_SECRETS`].
    Published,
    /// A template's placeholder such as `change_me`.
    Placeholder,
    /// Shorter than [`MIN_SECRET_LEN`] bytes; holds the length.
    TooShort(usize),
}

impl std::fmt::Display for Weakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Published => {
                f.write_str("is published in Plume's repository, so anyone can sign tokens with it")
            }
            Self::Placeholder => f.write_str("is a placeholder"),
            Self::TooShort(len) => write!(
                f,
                "is {len} bytes long; at least {MIN_SECRET_LEN} are required"
            ),
        }
    }
}

/// What is wrong with `secret`, if anything.
pub fn weakness(secret: &str) -> Option<Weakness> {
    if is_published(secret) {
        Some(Weakness::Published)
    } else if PLACEHOLDERS.contains(&secret.trim().to_ascii_lowercase().as_str()) {
        Some(Weakness::Placeholder)
    } else if secret.len() < MIN_SECRET_LEN {
        Some(Weakness::TooShort(secret.len()))
    } else {
        None
    }
}

/// The one secret policy, for the configuration the binary loads, the
/// authentication service's setup and a stored secret alike: outside the
/// `test` environment a [`weakness`] is an error, in development too,
/// since development needs no shared secret (one is generated beside the
/// database). The `test` environment accepts any secret, so that a suite
/// can sign with a fixed one. `key` names the setting in the message.
pub fn check(secret: &str, env: &str, key: &str) -> Result<()> {
    if env == "test" {
        return Ok(());
    }
    match weakness(secret) {
        None => Ok(()),
        Some(weakness) => Err(Error::general(format!(
            "{key}.secret {weakness}; it is refused outside the 'test' environment. \
             Generate one with `plume secret`"
        ))),
    }
}

/// A new random secret: 64 bytes from the operating system, base64.
pub fn generate() -> Result<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::internal(format!("no randomness from the operating system: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Where the secret of the database at `database` is kept:
/// `<database>.secret`; `None` for a database that lives in memory only
/// (`:memory:` or the empty name, a temporary database), whose tokens
/// cannot outlive it anyway.
pub(crate) fn file_beside(database: &str) -> Option<PathBuf> {
    if database.is_empty() || database == crate::store::SQLITE_MEMORY {
        return None;
    }
    let mut name = PathBuf::from(database).into_os_string();
    name.push(".secret");
    Some(PathBuf::from(name))
}

/// Whether `stored_or_new` made the secret or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Generated and written by this call.
    Created,
    /// Read from the file.
    Stored,
}

/// The secret kept at `path`, or a new one written there when there is no
/// file yet. The file is created with `create_new` (O_EXCL), readable by
/// its owner only (mode 0600 on Unix), so of two processes starting at
/// once exactly one writes it and the other reads what it wrote.
pub(crate) fn stored_or_new(path: &Path) -> Result<(String, Origin)> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::general(format!("cannot create {}: {e}", parent.display())))?;
    }
    match create_exclusive(path) {
        Ok(mut file) => {
            let secret = generate()?;
            let written = file
                .write_all(format!("{secret}\n").as_bytes())
                .and_then(|()| file.sync_all());
            if let Err(e) = written {
                // A half-written file would stop every later start.
                let _ = std::fs::remove_file(path);
                return Err(Error::general(format!(
                    "cannot write the secret to {}: {e}",
                    path.display()
                )));
            }
            Ok((secret, Origin::Created))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok((read_stored(path)?, Origin::Stored)),
        Err(e) => Err(Error::general(format!(
            "cannot create the secret file {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(unix)]
fn create_exclusive(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_exclusive(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Reads a stored secret. An empty file may be one another process has
/// just created and not yet written, so it is read again for a moment.
fn read_stored(path: &Path) -> Result<String> {
    let started = Instant::now();
    loop {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .map_err(|e| Error::general(format!("cannot read {}: {e}", path.display())))?;
        let secret = text.trim();
        if secret.is_empty() && started.elapsed() < CONCURRENT_WRITE_WAIT {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if weakness(secret).is_some() {
            return Err(Error::general(format!(
                "{} does not hold a usable secret: delete it to have a new one made \
                 (tokens signed with the old one stop working), or set AUTH_SECRET \
                 to one made with `plume secret`",
                path.display()
            )));
        }
        warn_if_readable_by_others(path);
        return Ok(secret.to_owned());
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "{} can be read by other users; `chmod 600` it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plume-secret-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn memory_databases_keep_no_file() {
        assert_eq!(file_beside(":memory:"), None);
        assert_eq!(file_beside(""), None);
        assert_eq!(
            file_beside("data/plume.sqlite"),
            Some(PathBuf::from("data/plume.sqlite.secret"))
        );
    }

    #[test]
    fn the_first_call_creates_an_owner_only_file_and_later_ones_read_it() {
        let dir = temp_dir("create");
        let path = dir.join("nested").join("db.sqlite.secret");
        let (first, origin) = stored_or_new(&path).unwrap();
        assert_eq!(origin, Origin::Created);
        assert_eq!(first.len(), 88);
        let (again, origin) = stored_or_new(&path).unwrap();
        assert_eq!((again.as_str(), origin), (first.as_str(), Origin::Stored));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_secret() {
        let dir = temp_dir("race");
        let path = dir.join("db.sqlite.secret");
        let secrets: Vec<(String, Origin)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| stored_or_new(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created = secrets
            .iter()
            .filter(|(_, o)| *o == Origin::Created)
            .count();
        assert_eq!(created, 1);
        assert!(secrets.iter().all(|(s, _)| *s == secrets[0].0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_or_published_file_is_refused_with_what_to_do() {
        let dir = temp_dir("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite.secret");
        for content in ["short\n", DEVELOPMENT_SECRET] {
            std::fs::write(&path, content).unwrap();
            let err = stored_or_new(&path).unwrap_err();
            assert!(err.message().contains("plume secret"), "{err}");
            assert!(err.message().contains("db.sqlite.secret"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The authentication service refuses them on setup too, for apps
    /// that configure it without `Config` (development included).
    #[tokio::test]
    async fn the_authentication_service_refuses_published_secrets_outside_test() {
        use crate::auth::{AuthenticationService, JwtStrategy};
        use serde_json::json;
        for (env, secret, refused) in [
            ("development", DEVELOPMENT_SECRET, true),
            ("production", TEST_SECRET, true),
            ("test", TEST_SECRET, false),
            (
                "development",
                "a-secret-of-this-app-only-0123456789abcdef",
                false,
            ),
        ] {
            let app = crate::App::new();
            app.set("env", json!(env));
            app.set(
                "authentication",
                json!({"secret": secret, "entity": null, "authStrategies": ["jwt"]}),
            );
            let auth = AuthenticationService::new(&app);
            auth.register("jwt", JwtStrategy::new()).unwrap();
            app.use_service("authentication", auth).unwrap();
            let outcome = app.setup().await;
            assert_eq!(outcome.is_err(), refused, "{env} {secret}: {outcome:?}");
            if let Err(error) = outcome {
                assert!(error.message().contains("authentication.secret"), "{error}");
                assert!(error.message().contains("plume secret"), "{error}");
            }
        }
    }

    /// The repository's configuration, examples, README, benchmarks and
    /// documentation comments hold no secret that is not in
    /// [`PUBLISHED_SECRETS`] (and so refused outside `test`).
    #[test]
    fn every_secret_written_in_the_repository_is_listed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("README.md")];
        // Folders too (examples/todos-feathers), but not installed
        // packages.
        fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "node_modules") {
                        walk(&path, files);
                    }
                } else {
                    files.push(path);
                }
            }
        }
        for dir in ["config", "examples", "benches"] {
            walk(&root.join(dir), &mut files);
        }
        let mut found = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            found.extend(secret_literals(&text));
        }
        collect_doc_secrets(&root.join("src"), &mut found);
        assert!(found.contains(&TEST_SECRET.to_owned()), "{found:?}");
        for secret in &found {
            assert!(
                is_published(secret),
                "{secret:?} is not in PUBLISHED_SECRETS"
            );
        }
    }

    fn collect_doc_secrets(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect_doc_secrets(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let docs: String = text
                    .lines()
                    .filter(|l| {
                        let l = l.trim_start();
                        l.starts_with("///") || l.starts_with("//!")
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                found.extend(secret_literals(&docs));
            }
        }
    }

    /// The string after each `"secret":` or `SECRET: &str =` in `text`,
    /// skipping `null`, `"AUTH_SECRET"`-style variable names and values
    /// computed at run time.
    fn secret_literals(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for marker in ["\"secret\":", "SECRET: &str ="] {
            for (at, _) in text.match_indices(marker) {
                let rest = text[at + marker.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let Some(end) = rest.find('"') else { continue };
                let literal = &rest[..end];
                if literal.len() >= 16 && literal != "AUTH_SECRET" {
                    out.push(literal.to_owned());
                }
            }
        }
        out
    }
}
