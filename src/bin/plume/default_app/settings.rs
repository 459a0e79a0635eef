//! Which configuration keys the `plume` binary and its default app read,
//! so that nothing in a configuration is ignored without a word: a
//! Feathers setting Plume does not implement, and a key nobody reads
//! (usually a misspelling), are each named in one warning at start-up.

use serde_json::{Map, Value};

use plume::auth::config::TOP_LEVEL_KEYS;
use plume::config::Config;

/// The strategies the default app registers: their sections under
/// `authentication` are read by the strategies.
const STRATEGIES: [&str; 2] = ["jwt", "local"];

/// Top-level keys, and for a section the keys read inside it (`None`: the
/// section's contents are checked where they are read).
const KEYS: &[(&str, Option<&[&str]>)] = &[
    ("host", None),
    ("port", None),
    ("bodyLimit", None),
    ("public", None),
    ("origins", None),
    ("env", None),
    ("cors", Some(&["origins", "credentials"])),
    ("paginate", Some(&["default", "max"])),
    ("logging", Some(&["format", "level"])),
    ("metrics", Some(&["enabled"])),
    (
        "sqlite",
        Some(&[
            "filename",
            "client",
            "connection",
            // knex's switch for inserting NULL where a column has no
            // default: what Plume always does.
            "useNullAsDefault",
            "recordCacheMs",
            "queryTimeoutMs",
            "indexes",
        ]),
    ),
    (
        "postgres",
        Some(&["url", "poolSize", "queryTimeoutMs", "indexes"]),
    ),
    // knex's shape, as a Feathers app configures it.
    ("postgresql", Some(&["client", "connection"])),
    // Checked by the authentication service (misplaced keys are errors);
    // only sections of strategies nobody registered are named here.
    ("authentication", None),
];

/// Settings of a Feathers app that Plume does not implement, with what
/// they would have done.
const NOT_BUILT: &[(&str, &str)] = &[
    ("authentication.oauth", "OAuth login"),
    ("mongodb", "the MongoDB adapter"),
    ("mysql", "the MySQL adapter"),
    ("mssql", "the SQL Server adapter"),
];

/// What a configuration holds that nothing reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Unused {
    /// Feathers settings Plume does not implement (dotted paths).
    pub not_built: Vec<String>,
    /// Keys Plume does not know at all (dotted paths).
    pub unknown: Vec<String>,
}

impl Unused {
    /// The start-up warnings: one naming every setting that is not built,
    /// one naming every unknown key; none when all is read.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.not_built.is_empty() {
            let named: Vec<String> = self
                .not_built
                .iter()
                .map(|key| {
                    let what = NOT_BUILT
                        .iter()
                        .find(|(known, _)| known == key)
                        .map_or("", |(_, what)| *what);
                    format!("{key} ({what})")
                })
                .collect();
            warnings.push(format!(
                "These Feathers settings are not implemented by Plume and are ignored: {}",
                named.join(", ")
            ));
        }
        if !self.unknown.is_empty() {
            warnings.push(format!(
                "These configuration keys are not used by Plume and are ignored (misspelt?): {}",
                self.unknown.join(", ")
            ));
        }
        warnings
    }
}

/// The keys of `config` that neither the binary nor the default app read.
pub(crate) fn unused(config: &Config) -> Unused {
    let mut unused = Unused::default();
    for (key, value) in config.values() {
        if NOT_BUILT.iter().any(|(known, _)| known == key) {
            unused.not_built.push(key.clone());
            continue;
        }
        match KEYS.iter().find(|(known, _)| known == key) {
            None => unused.unknown.push(key.clone()),
            Some((_, Some(inner))) => {
                if let Value::Object(section) = value {
                    for name in section.keys() {
                        if !inner.contains(&name.as_str()) {
                            unused.unknown.push(format!("{key}.{name}"));
                        }
                    }
                }
            }
            Some((_, None)) => {
                if key == "authentication"
                    && let Value::Object(section) = value
                {
                    authentication(section, &mut unused);
                }
            }
        }
    }
    unused
}

/// Sections under `authentication` that no registered strategy reads
/// (scalars in the wrong place are already errors there).
fn authentication(section: &Map<String, Value>, unused: &mut Unused) {
    for (name, value) in section {
        if TOP_LEVEL_KEYS.contains(&name.as_str())
            || STRATEGIES.contains(&name.as_str())
            || !value.is_object()
        {
            continue;
        }
        let path = format!("authentication.{name}");
        if NOT_BUILT.iter().any(|(known, _)| *known == path) {
            unused.not_built.push(path);
        } else {
            unused.unknown.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn unused_in(values: Value) -> Unused {
        match values {
            Value::Object(values) => unused(&Config::from_value("test", values)),
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn plumes_own_configuration_is_all_read() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        for env in ["development", "production", "test"] {
            let config = Config::load_with(&dir, env, |_| None).unwrap();
            assert_eq!(unused(&config), Unused::default(), "{env}");
        }
    }

    #[test]
    fn a_feathers_configuration_names_what_is_not_built_and_what_is_unknown() {
        let found = unused_in(json!({
            "host": "localhost",
            "port": 3030,
            "public": "./public/",
            "origins": ["http://localhost:3030"],
            "paginate": {"default": 10, "max": 50, "maximum": 60},
            "sqlite": {"client": "sqlite3", "connection": "chat.sqlite", "useNullAsDefault": true,
                       "filname": "typo.sqlite"},
            "mongodb": "mongodb://127.0.0.1:27017/chat",
            "authentication": {
                "entity": "user",
                "authStrategies": ["jwt", "local"],
                "local": {"usernameField": "email"},
                "oauth": {"github": {"key": "k", "secret": "s"}},
                "google": {"key": "k"}
            },
            "mailer": {"host": "smtp.example"}
        }));
        assert_eq!(found.not_built, ["mongodb", "authentication.oauth"]);
        assert_eq!(
            found.unknown,
            [
                "paginate.maximum",
                "sqlite.filname",
                "authentication.google",
                "mailer"
            ]
        );
        let warnings = found.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("authentication.oauth (OAuth login)"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("sqlite.filname"), "{warnings:?}");
    }

    #[test]
    fn nothing_unused_means_no_warning() {
        assert!(unused_in(json!({"port": 1})).warnings().is_empty());
    }
}
