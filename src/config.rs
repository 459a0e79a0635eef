//! Configuration files in the layout of `@feathersjs/configuration`
//! (node-config): `config/default.json`, then `config/<PLUME_ENV>.json`
//! deep-merged over it, then environment variables mapped onto keys by
//! `config/custom-environment-variables.json`.
//!
//! `PLUME_ENV` defaults to `development`. A mapping file names a variable
//! per key, either as a string (`"host": "HOST"`) or as
//! `{"__name": "PORT", "__format": "number"}` (`number`, `boolean` or
//! `json`) when the value must not stay a string.
//!
//! The loaded values become app settings ([`Config::apply_to`]), so hooks
//! and services read them with `app.get("paginate")` as in Feathers.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{App, Error, Result};

mod knex;

pub use knex::{postgres_url, sqlite_filename};

/// The environment used when `PLUME_ENV` is not set.
pub const DEFAULT_ENV: &str = "development";

pub use crate::auth::secret::{DEVELOPMENT_SECRET, MIN_SECRET_LEN};

/// Loaded configuration: the merged JSON object and the environment name.
#[derive(Debug, Clone)]
pub struct Config {
    env: String,
    values: Map<String, Value>,
}

impl Config {
    /// Loads `dir` for the environment in `PLUME_ENV`, reading the process
    /// environment for overrides.
    pub fn load(dir: &Path) -> Result<Self> {
        let env = std::env::var("PLUME_ENV").unwrap_or_else(|_| DEFAULT_ENV.to_owned());
        Self::load_with(dir, &env, |name| std::env::var(name).ok())
    }

    /// Loads `dir` for `env`, taking environment variables from `var`
    /// (tests pass a map instead of touching the process environment).
    pub fn load_with(dir: &Path, env: &str, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::general(format!(
                "configuration folder '{}' not found: run from the project folder or pass --config DIR",
                dir.display()
            )));
        }
        if env.is_empty()
            || !env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::general(format!(
                "PLUME_ENV '{env}' is not a valid environment name"
            )));
        }
        let mut values = read_object(&dir.join("default.json"))?.unwrap_or_default();
        if let Some(overlay) = read_object(&dir.join(format!("{env}.json")))? {
            merge(&mut values, overlay);
        }
        let mapping_file = dir.join("custom-environment-variables.json");
        if let Some(mapping) = read_object(&mapping_file)? {
            let overrides = env_overrides(&mapping, &var, &mapping_file, "")?;
            merge(&mut values, overrides);
        }
        Ok(Self {
            env: env.to_owned(),
            values,
        })
    }

    /// A configuration from a JSON object, for tests and embedding.
    pub fn from_value(env: &str, values: Map<String, Value>) -> Self {
        Self {
            env: env.to_owned(),
            values,
        }
    }

    /// The environment name (`development`, `test`, `production`, ...).
    pub fn env(&self) -> &str {
        &self.env
    }

    /// The merged values.
    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    /// The value at a dotted path such as `sqlite.filename`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        crate::fields::get_in(&self.values, path)
    }

    /// Stores every top-level key as an app setting, and the environment
    /// name as `env` (which the authentication service's secret check
    /// reads) unless the files set one.
    pub fn apply_to(&self, app: &App) {
        for (key, value) in &self.values {
            app.set(key, value.clone());
        }
        if !self.values.contains_key("env") {
            app.set("env", Value::String(self.env.clone()));
        }
    }

    /// Refuses secrets that must not protect real data outside `test`: a
    /// secret written in this repository (see
    /// [`PUBLISHED_SECRETS`](crate::auth::secret::PUBLISHED_SECRETS)) or
    /// one shorter than [`MIN_SECRET_LEN`] bytes (an empty `AUTH_SECRET=`
    /// included) or a placeholder, by the one policy of
    /// [`auth::secret::check`](crate::auth::secret::check). A missing secret is not an error here:
    /// [`with_secret`](Self::with_secret) makes one. The message names the
    /// key and says how to make a good secret.
    pub fn check_secret(&self, key: &str) -> Result<()> {
        let how = "generate one with `plume secret` and set it in AUTH_SECRET, \
                   or remove it to have one generated beside the database";
        let secret = match self.get(key).and_then(|auth| auth.get("secret")) {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::String(secret)) => secret,
            Some(_) => {
                return Err(Error::general(format!(
                    "{key}.secret must be a string: {how}"
                )));
            }
        };
        crate::auth::secret::check(secret, &self.env, key).map_err(|e| {
            Error::general(format!(
                "{} and set it in AUTH_SECRET, or remove it to have one generated \
                 beside the database",
                e.message()
            ))
        })
    }

    /// This configuration with `<key>.secret` filled in when it is not set
    /// (outside `test`, whose suite configures its own): the secret kept
    /// in `<database>.secret`, made on the first start (see
    /// `stored_or_new`), or for a
    /// database in memory a random one kept in memory only. Says which in
    /// one info log line, with the path, never the secret. A configured
    /// secret is checked ([`check_secret`](Self::check_secret)); a stored one
    /// is checked as it is read.
    pub fn with_secret(&self, key: &str, database: &str) -> Result<Self> {
        use crate::auth::secret;
        if !self.needs_secret(key) {
            self.check_secret(key)?;
            return Ok(self.clone());
        }
        let generated = match secret::file_beside(database) {
            Some(path) => {
                let (value, origin) = secret::stored_or_new(&path)?;
                match origin {
                    secret::Origin::Created => tracing::info!(
                        "{key}.secret is not set: generated a random secret and stored it in {} \
                         (owner-only), used from now on",
                        path.display()
                    ),
                    secret::Origin::Stored => tracing::info!(
                        "{key}.secret is not set: using the secret stored in {}",
                        path.display()
                    ),
                }
                value
            }
            None => {
                tracing::info!(
                    "{key}.secret is not set and the database is in memory: using a random \
                     secret kept in memory only (its tokens end with this process)"
                );
                secret::generate()?
            }
        };
        self.with_generated_secret(key, generated)
    }

    /// True when `key.secret` must be found or made: it is not
    /// configured and the environment is not `test` (see
    /// [`with_secret`](Self::with_secret)).
    pub fn needs_secret(&self, key: &str) -> bool {
        let configured = self
            .get(key)
            .and_then(|auth| auth.get("secret"))
            .is_some_and(|s| !s.is_null());
        !configured && self.env != "test"
    }

    /// This configuration with `secret` as `key.secret`: one generated by
    /// Plume, or kept where Plume keeps them (checked as it was read).
    pub fn with_generated_secret(&self, key: &str, generated: String) -> Result<Self> {
        let mut values = self.values.clone();
        let auth = values
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        match auth {
            Value::Object(auth) => {
                auth.insert("secret".to_owned(), Value::String(generated));
            }
            other => {
                return Err(Error::general(format!(
                    "{key} must be an object, not {other}"
                )));
            }
        }
        // A stored secret was checked as it was read; a new one is sound.
        Ok(Self {
            env: self.env.clone(),
            values,
        })
    }
}

/// A new random secret: 64 bytes from the operating system, base64.
pub fn generate_secret() -> Result<String> {
    crate::auth::secret::generate()
}

fn read_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::general(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(Error::general(format!(
            "{} must hold a JSON object",
            path.display()
        ))),
        Err(e) => Err(Error::general(format!(
            "{} is not valid JSON: {e}",
            path.display()
        ))),
    }
}

/// Deep-merges `overlay` into `base`: objects merge key by key, anything
/// else (arrays and `null` included) replaces, as node-config does. This
/// is the one merge of settings: the config files, the environment, and
/// the authentication service's `jwtOptions` over Feathers' defaults. A
/// `null` stays in the result, because some settings tell `null` from
/// absent (`authentication.entity: null` means no entity, absent means
/// `user`); readers that have no such meaning take `null` as unset.
pub fn merge(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match base.get_mut(&key) {
            Some(child) => merge_value(child, value),
            None => {
                base.insert(key, value);
            }
        }
    }
}

/// [`merge`] for any two values: two objects merge, otherwise `overlay`
/// replaces `base`.
pub(crate) fn merge_value(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => merge(base, overlay),
        (base, overlay) => *base = overlay,
    }
}

fn env_overrides(
    mapping: &Map<String, Value>,
    var: &impl Fn(&str) -> Option<String>,
    file: &PathBuf,
    prefix: &str,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (key, spec) in mapping {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let bad = || {
            Error::general(format!(
                "{}: '{path}' must name an environment variable or be {{\"__name\", \"__format\"}}",
                file.display()
            ))
        };
        let (name, format) = match spec {
            Value::String(name) => (name.as_str(), None),
            Value::Object(obj) if obj.contains_key("__name") => (
                obj.get("__name").and_then(Value::as_str).ok_or_else(bad)?,
                obj.get("__format").and_then(Value::as_str),
            ),
            Value::Object(nested) => {
                let child = env_overrides(nested, var, file, &path)?;
                if !child.is_empty() {
                    out.insert(key.clone(), Value::Object(child));
                }
                continue;
            }
            _ => return Err(bad()),
        };
        let Some(raw) = var(name) else { continue };
        let value = match format {
            None | Some("string") => Value::String(raw),
            Some("number") => raw
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| raw.trim().parse::<f64>().map(Value::from))
                .map_err(|_| {
                    Error::general(format!("{name}='{raw}' must be a number (for {path})"))
                })?,
            Some("boolean") => match raw.trim() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => {
                    return Err(Error::general(format!(
                        "{name}='{raw}' must be true or false (for {path})"
                    )));
                }
            },
            Some("json") => serde_json::from_str(&raw)
                .map_err(|e| Error::general(format!("{name} must be JSON (for {path}): {e}")))?,
            Some(other) => {
                return Err(Error::general(format!(
                    "{}: unknown __format '{other}' for '{path}'",
                    file.display()
                )));
            }
        };
        out.insert(key.clone(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn folder(files: &[(&str, Value)]) -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        for (name, value) in files {
            std::fs::write(dir.path().join(name), value.to_string()).unwrap();
        }
        dir
    }

    /// A throwaway folder under the system temp dir, removed on drop.
    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub(super) struct Dir(PathBuf);
        static NEXT: AtomicUsize = AtomicUsize::new(0);

        impl Dir {
            pub(super) fn new() -> Self {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let path =
                    std::env::temp_dir().join(format!("plume-config-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
            pub(super) fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn env_file_deep_merges_over_default_and_variables_win() {
        let dir = folder(&[
            (
                "default.json",
                json!({"host": "127.0.0.1", "port": 3030, "sqlite": {"filename": "data/a.sqlite", "readers": 2},
                       "authentication": {"secret": "s", "authStrategies": ["jwt", "local"]}}),
            ),
            (
                "production.json",
                json!({"sqlite": {"filename": "/srv/p.sqlite"}, "authentication": {"authStrategies": ["jwt"]}}),
            ),
            (
                "custom-environment-variables.json",
                json!({"port": {"__name": "PORT", "__format": "number"}, "host": "HOST",
                       "sqlite": {"filename": "SQLITE_FILE"}, "authentication": {"secret": "AUTH_SECRET"}}),
            ),
        ]);
        let config = Config::load_with(
            dir.path(),
            "production",
            vars(&[("PORT", "8080"), ("AUTH_SECRET", "x")]),
        )
        .unwrap();
        assert_eq!(config.get("port"), Some(&json!(8080)));
        assert_eq!(
            config.get("host"),
            Some(&json!("127.0.0.1")),
            "unset variables change nothing"
        );
        assert_eq!(config.get("sqlite.filename"), Some(&json!("/srv/p.sqlite")));
        assert_eq!(
            config.get("sqlite.readers"),
            Some(&json!(2)),
            "merged, not replaced"
        );
        assert_eq!(
            config.get("authentication.authStrategies"),
            Some(&json!(["jwt"])),
            "arrays replace"
        );
        assert_eq!(config.get("authentication.secret"), Some(&json!("x")));

        let config = Config::load_with(
            dir.path(),
            "development",
            vars(&[("SQLITE_FILE", ":memory:")]),
        )
        .unwrap();
        assert_eq!(config.get("sqlite.filename"), Some(&json!(":memory:")));
        assert_eq!(config.get("port"), Some(&json!(3030)));
    }

    #[test]
    fn bad_files_and_values_say_what_to_fix() {
        let dir = folder(&[("default.json", json!([1]))]);
        let err = Config::load_with(dir.path(), "development", vars(&[])).unwrap_err();
        assert!(err.message().contains("must hold a JSON object"), "{err}");

        let dir = folder(&[
            ("default.json", json!({})),
            (
                "custom-environment-variables.json",
                json!({"port": {"__name": "PORT", "__format": "number"}}),
            ),
        ]);
        let err =
            Config::load_with(dir.path(), "development", vars(&[("PORT", "eighty")])).unwrap_err();
        assert_eq!(err.message(), "PORT='eighty' must be a number (for port)");

        let err = Config::load_with(
            Path::new("/nonexistent-plume-config"),
            "development",
            vars(&[]),
        )
        .unwrap_err();
        assert!(err.message().contains("--config"), "{err}");
        let err = Config::load_with(dir.path(), "../etc", vars(&[])).unwrap_err();
        assert!(
            err.message().contains("not a valid environment name"),
            "{err}"
        );
    }

    fn with(env: &str, secret: &Value) -> Config {
        Config::from_value(
            env,
            json!({"sqlite": {"filename": ":memory:"}, "authentication": {"secret": secret}})
                .as_object()
                .unwrap()
                .clone(),
        )
    }

    #[test]
    fn published_secrets_are_refused_outside_test() {
        use crate::auth::secret::{PUBLISHED_SECRETS, TEST_SECRET};
        for env in ["development", "production", "staging"] {
            for secret in PUBLISHED_SECRETS {
                let err = with(env, &json!(secret))
                    .check_secret("authentication")
                    .unwrap_err();
                assert!(err.message().contains("authentication.secret"), "{err}");
                assert!(err.message().contains("plume secret"), "{err}");
            }
        }
        with("test", &json!(TEST_SECRET))
            .check_secret("authentication")
            .unwrap();
        with("test", &json!(DEVELOPMENT_SECRET))
            .check_secret("authentication")
            .unwrap();
    }

    #[test]
    fn short_secrets_are_refused_outside_test() {
        let err = with("production", &json!("short"))
            .check_secret("authentication")
            .unwrap_err();
        assert!(err.message().contains("at least 32"), "{err}");
        assert!(err.message().contains("plume secret"), "{err}");
        for env in ["development", "staging"] {
            for short in ["short", ""] {
                let err = with(env, &json!(short))
                    .check_secret("authentication")
                    .unwrap_err();
                assert!(err.message().contains("at least 32"), "{err}");
            }
        }
        with("test", &json!("short"))
            .check_secret("authentication")
            .unwrap();
        let err = with("production", &json!(42))
            .check_secret("authentication")
            .unwrap_err();
        assert!(err.message().contains("must be a string"), "{err}");
        with("production", &json!(generate_secret().unwrap()))
            .check_secret("authentication")
            .unwrap();
    }

    #[test]
    fn a_missing_secret_is_made_outside_test() {
        let memory = with("production", &Value::Null)
            .with_secret("authentication", ":memory:")
            .unwrap();
        let made = memory
            .get("authentication.secret")
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(made.len(), 88);
        let other = with("development", &Value::Null)
            .with_secret("authentication", ":memory:")
            .unwrap();
        assert_ne!(other.get("authentication.secret").unwrap(), made);

        let dir = tempdir::Dir::new();
        let db = dir.path().join("app.sqlite");
        let db = db.to_str().unwrap();
        let first = with("development", &Value::Null)
            .with_secret("authentication", db)
            .unwrap();
        let second = with("production", &Value::Null)
            .with_secret("authentication", db)
            .unwrap();
        assert_eq!(
            first.get("authentication.secret"),
            second.get("authentication.secret")
        );
        assert!(dir.path().join("app.sqlite.secret").is_file());

        let test = with("test", &Value::Null)
            .with_secret("authentication", ":memory:")
            .unwrap();
        assert_eq!(test.get("authentication.secret"), Some(&Value::Null));
        let err = with("development", &json!(DEVELOPMENT_SECRET))
            .with_secret("authentication", db)
            .unwrap_err();
        assert!(err.message().contains("plume secret"), "{err}");
    }

    #[test]
    fn the_shipped_config_folder_loads_in_every_environment() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let dev = Config::load_with(&dir, "development", vars(&[])).unwrap();
        assert_eq!(dev.get("port"), Some(&json!(3030)));
        assert!(
            dev.get("authentication.secret").is_none(),
            "no secret is committed for development"
        );
        dev.check_secret("authentication").unwrap();
        let test = Config::load_with(&dir, "test", vars(&[])).unwrap();
        assert_eq!(test.get("sqlite.filename"), Some(&json!(":memory:")));
        assert_eq!(
            test.get("authentication.secret"),
            Some(&json!(crate::auth::secret::TEST_SECRET))
        );
        test.check_secret("authentication").unwrap();
        let prod = Config::load_with(&dir, "production", vars(&[])).unwrap();
        prod.check_secret("authentication").unwrap();
        for published in [DEVELOPMENT_SECRET, crate::auth::secret::TEST_SECRET] {
            let prod =
                Config::load_with(&dir, "production", vars(&[("AUTH_SECRET", published)])).unwrap();
            assert!(prod.check_secret("authentication").is_err());
        }
        let secret = generate_secret().unwrap();
        let prod =
            Config::load_with(&dir, "production", vars(&[("AUTH_SECRET", &secret)])).unwrap();
        prod.check_secret("authentication").unwrap();
    }

    #[test]
    fn generated_secrets_are_long_and_different() {
        use base64::Engine as _;
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .unwrap();
        assert_eq!(bytes.len(), 64);
    }
}
