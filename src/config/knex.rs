//! Where the database is, read from Plume's own keys or from the knex
//! shape that every generated Feathers app has:
//!
//! ```json
//! "sqlite": { "client": "sqlite3", "connection": "feathers-chat.sqlite", "useNullAsDefault": true }
//! "postgresql": { "client": "pg", "connection": "postgres://user:pw@host:5432/app" }
//! ```
//!
//! `connection` may also be an object (`{"filename": ...}` for SQLite,
//! `{host, port, user, password, database}` for PostgreSQL), as knex
//! accepts.

use serde_json::{Map, Value};

use super::Config;
use crate::store::SQLITE_DEFAULT_FILENAME as DEFAULT_FILENAME;
use crate::{Error, Result};

/// The `client` names knex uses for SQLite.
const SQLITE_CLIENTS: [&str; 2] = ["sqlite3", "better-sqlite3"];

/// The `client` names knex uses for PostgreSQL.
const POSTGRES_CLIENTS: [&str; 3] = ["pg", "postgres", "postgresql"];

/// The SQLite file of a configuration: `sqlite.filename` (Plume's key) or
/// `sqlite.connection` (knex's, a file name or `{"filename": ...}`);
/// `DEFAULT_FILENAME` when neither is set. Both set to different files,
/// a `client` that is not SQLite, or a value of the wrong type is an error
/// that names the key.
pub fn sqlite_filename(config: &Config) -> Result<String> {
    let Some(section) = config.get("sqlite") else {
        return Ok(DEFAULT_FILENAME.to_owned());
    };
    let Some(section) = section.as_object() else {
        return Err(Error::general(format!(
            "sqlite must be an object such as {{\"filename\": \"data/app.sqlite\"}}, not {section}"
        )));
    };
    check_client(section, "sqlite", &SQLITE_CLIENTS)?;
    let own = match section.get("filename") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.as_str()),
        Some(other) => {
            return Err(Error::general(format!(
                "sqlite.filename must be a file name or \":memory:\", not {other}"
            )));
        }
    };
    let knex = match section.get("connection") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.as_str()),
        Some(Value::Object(connection)) => match connection.get("filename") {
            Some(Value::String(name)) => Some(name.as_str()),
            _ => {
                return Err(Error::general(
                    "sqlite.connection must be a file name or {\"filename\": \"<file>\"}",
                ));
            }
        },
        Some(other) => {
            return Err(Error::general(format!(
                "sqlite.connection must be a file name or {{\"filename\": \"<file>\"}}, not {other}"
            )));
        }
    };
    match (own, knex) {
        (Some(own), Some(knex)) if own != knex => Err(Error::general(format!(
            "sqlite.filename ('{own}') and sqlite.connection ('{knex}') name different \
             databases: keep one of them"
        ))),
        (Some(name), _) | (None, Some(name)) if name.is_empty() => Err(Error::general(
            "the SQLite file name (sqlite.filename or sqlite.connection) is empty",
        )),
        (Some(name), _) | (None, Some(name)) => Ok(name.to_owned()),
        (None, None) => Ok(DEFAULT_FILENAME.to_owned()),
    }
}

/// The PostgreSQL connection URL of `postgresql` in knex's shape, if the
/// configuration has that section: `connection` as a URL, or as
/// `{host, port, user, password, database}` turned into one (user and
/// password percent-encoded).
///
/// The default app keeps its records there when it is set (see
/// `store::PostgresStore`).
pub fn postgres_url(config: &Config) -> Result<Option<String>> {
    let Some(section) = config.get("postgresql") else {
        return Ok(None);
    };
    let Some(section) = section.as_object() else {
        return Err(Error::general(format!(
            "postgresql must be an object such as {{\"client\": \"pg\", \"connection\": \"postgres://...\"}}, not {section}"
        )));
    };
    check_client(section, "postgresql", &POSTGRES_CLIENTS)?;
    match section.get("connection") {
        Some(Value::String(url))
            if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
        {
            Ok(Some(url.clone()))
        }
        Some(Value::Object(parts)) => url_of(parts).map(Some),
        _ => Err(Error::general(
            "postgresql.connection must be a URL (postgres://user:password@host:5432/database) \
             or {host, port, user, password, database}",
        )),
    }
}

fn url_of(parts: &Map<String, Value>) -> Result<String> {
    let text = |key: &str| match parts.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.as_str())),
        Some(other) => Err(Error::general(format!(
            "postgresql.connection.{key} must be a string, not {other}"
        ))),
    };
    let host = text("host")?.unwrap_or("localhost");
    let port = match parts.get("port") {
        None | Some(Value::Null) => 5432,
        Some(Value::Number(port)) => port
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| {
                Error::general(format!("postgresql.connection.port {port} is not a port"))
            })?,
        // node-config turns environment variables into strings.
        Some(Value::String(port)) => port.parse::<u16>().map_err(|_| {
            Error::general(format!("postgresql.connection.port '{port}' is not a port"))
        })?,
        Some(other) => {
            return Err(Error::general(format!(
                "postgresql.connection.port must be a number, not {other}"
            )));
        }
    };
    let mut url = String::from("postgres://");
    if let Some(user) = text("user")? {
        url.push_str(&percent_encode(user));
        if let Some(password) = text("password")? {
            url.push(':');
            url.push_str(&percent_encode(password));
        }
        url.push('@');
    }
    // An IPv6 literal needs brackets in a URL.
    if host.contains(':') && !host.starts_with('[') {
        url.push_str(&format!("[{host}]:{port}"));
    } else {
        url.push_str(&format!("{host}:{port}"));
    }
    if let Some(database) = text("database")? {
        url.push('/');
        url.push_str(&percent_encode(database));
    }
    Ok(url)
}

/// Everything but RFC 3986's unreserved characters (letters, digits,
/// `-`, `.`, `_`, `~`) is encoded in a URL's user, password and database.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

fn check_client(section: &Map<String, Value>, key: &str, clients: &[&str]) -> Result<()> {
    match section.get("client") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(client)) if clients.contains(&client.as_str()) => Ok(()),
        Some(other) => Err(Error::general(format!(
            "{key}.client must be one of {} (knex's names), not {other}",
            clients.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(values: Value) -> Config {
        match values {
            Value::Object(values) => Config::from_value("test", values),
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn the_sqlite_file_comes_from_either_shape() {
        for (values, file) in [
            (json!({}), DEFAULT_FILENAME),
            (json!({"sqlite": {"filename": "a.sqlite"}}), "a.sqlite"),
            (
                json!({"sqlite": {"client": "sqlite3", "connection": "feathers-chat.sqlite", "useNullAsDefault": true}}),
                "feathers-chat.sqlite",
            ),
            (
                json!({"sqlite": {"client": "better-sqlite3", "connection": {"filename": "b.sqlite"}}}),
                "b.sqlite",
            ),
            (
                json!({"sqlite": {"filename": "same.sqlite", "connection": "same.sqlite"}}),
                "same.sqlite",
            ),
            (json!({"sqlite": {"recordCacheMs": 0}}), DEFAULT_FILENAME),
            (json!({"sqlite": {"connection": ":memory:"}}), ":memory:"),
        ] {
            assert_eq!(
                sqlite_filename(&config(values.clone())).unwrap(),
                file,
                "{values}"
            );
        }
    }

    #[test]
    fn a_wrong_sqlite_shape_names_the_key() {
        for (values, says) in [
            (json!({"sqlite": "a.sqlite"}), "sqlite must be an object"),
            (
                json!({"sqlite": {"client": "pg", "connection": "x"}}),
                "sqlite.client",
            ),
            (json!({"sqlite": {"connection": 3}}), "sqlite.connection"),
            (
                json!({"sqlite": {"connection": {"file": "x"}}}),
                "sqlite.connection",
            ),
            (json!({"sqlite": {"filename": ["x"]}}), "sqlite.filename"),
            (
                json!({"sqlite": {"filename": "a.sqlite", "connection": "b.sqlite"}}),
                "name different databases",
            ),
            (json!({"sqlite": {"connection": ""}}), "empty"),
        ] {
            let error = sqlite_filename(&config(values.clone())).unwrap_err();
            assert!(error.message().contains(says), "{values}: {error}");
        }
    }

    #[test]
    fn the_postgres_url_comes_from_a_url_or_its_parts() {
        assert_eq!(postgres_url(&config(json!({}))).unwrap(), None);
        let url = "postgres://app:pw@db.example:5433/chat";
        assert_eq!(
            postgres_url(&config(
                json!({"postgresql": {"client": "pg", "connection": url}})
            ))
            .unwrap()
            .as_deref(),
            Some(url)
        );
        let parts = json!({"postgresql": {"client": "pg", "connection": {
            "host": "db.example", "port": "5433", "user": "app", "password": "p@ss/w:rd", "database": "chat"
        }}});
        assert_eq!(
            postgres_url(&config(parts)).unwrap().as_deref(),
            Some("postgres://app:p%40ss%2Fw%3Ard@db.example:5433/chat")
        );
        let minimal = json!({"postgresql": {"connection": {"host": "::1", "database": "x"}}});
        assert_eq!(
            postgres_url(&config(minimal)).unwrap().as_deref(),
            Some("postgres://[::1]:5432/x")
        );
        for bad in [
            json!({"postgresql": {"client": "mysql", "connection": url}}),
            json!({"postgresql": {"connection": "mysql://x"}}),
            json!({"postgresql": {"connection": {"port": 70000}}}),
            json!({"postgresql": true}),
        ] {
            assert!(postgres_url(&config(bad.clone())).is_err(), "{bad}");
        }
    }
}
