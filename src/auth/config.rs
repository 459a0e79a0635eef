//! The authentication configuration in Feathers' JSON layout, key for key.
//!
//! ```json
//! "authentication": {
//!   "secret": "…", "entity": "user", "service": "users", "entityId": "id",
//!   "authStrategies": ["jwt", "local"], "parseStrategies": ["jwt"],
//!   "jwtOptions": { "header": { "typ": "access" }, "audience": "https://yourdomain.com",
//!                   "issuer": "feathers", "algorithm": "HS256", "expiresIn": "1d" },
//!   "jwt": { "header": "Authorization", "schemes": ["Bearer", "JWT"] },
//!   "local": { "usernameField": "email", "passwordField": "password" },
//!   "throttle": { "maxPerUsername": 10, "maxPerAddress": 50, "window": "15m" }
//! }
//! ```
//!
//! Differences from Feathers, on purpose:
//! - a user's `jwtOptions` are merged **over** the defaults key by key
//!   (Feathers replaces the whole object and so silently drops `typ`,
//!   `audience` and `issuer` when a user sets only `expiresIn`);
//! - a key in the wrong place (`authentication.jwt.expiresIn`,
//!   `authentication.expiresIn`, `authentication.jwtOptions.usernameField`)
//!   stops setup with a message saying where it belongs;
//! - `expiresIn` strings need a unit (`"60"` is refused rather than read
//!   as milliseconds, as node's `ms` would).

use serde_json::{Map, Value, json};

use crate::{Error, Result};

/// The config key read by default (`app.get("authentication")`).
pub const DEFAULT_CONFIG_KEY: &str = "authentication";

/// Keys of `jwtOptions` that Plume understands.
pub const JWT_OPTION_KEYS: &[&str] = &[
    "header",
    "audience",
    "issuer",
    "algorithm",
    "expiresIn",
    "subject",
    "jwtid",
    "notBefore",
];

/// Keys of the jwt strategy's own section (Feathers' `verifyConfiguration`:
/// `@feathersjs/authentication`, `src/jwt.ts`).
pub const JWT_STRATEGY_KEYS: &[&str] = &["entity", "entityId", "service", "header", "schemes"];

/// Keys of the local strategy's own section (the defaults of Feathers' local
/// strategy, `@feathersjs/authentication-local`, `src/strategy.ts`, plus Plume's
/// `maxPasswordLength`, `maxUsernameLength` and `maxHashingPerAddress`;
/// `hashSize` is bcrypt's and is accepted and ignored).
pub const LOCAL_STRATEGY_KEYS: &[&str] = &[
    "entity",
    "entityId",
    "service",
    "usernameField",
    "passwordField",
    "entityUsernameField",
    "entityPasswordField",
    "errorMessage",
    "hashSize",
    "maxPasswordLength",
    "maxUsernameLength",
    "maxHashingPerAddress",
];

/// Top-level keys (`authenticationSettingsSchema` in `@feathersjs/schema`,
/// `src/default-schemas.ts`) plus Plume's `publicKey` and `throttle`.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "secret",
    "publicKey",
    "entity",
    "entityId",
    "service",
    "authStrategies",
    "parseStrategies",
    "jwtOptions",
    "throttle",
    "keepSocketOnExpiry",
];

/// Feathers' default `jwtOptions` (`@feathersjs/authentication`,
/// `src/options.ts`).
pub fn default_jwt_options() -> Map<String, Value> {
    let value = json!({
        "header": { "typ": "access" },
        "audience": "https://yourdomain.com",
        "issuer": "feathers",
        "algorithm": "HS256",
        "expiresIn": "1d"
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The effective configuration: Feathers' defaults (`authStrategies: []`,
/// `jwtOptions`) under the user's settings, with `jwtOptions` merged key by
/// key by the configuration's one merge ([`crate::config::merge_value`]),
/// so `header.typ` survives a user's `header.kid`, and `"audience": null`
/// leaves a null that [`JwtSettings`](super::token::JwtSettings) reads as
/// no audience.
pub(crate) fn effective(raw: Option<&Value>) -> Map<String, Value> {
    let mut config = Map::new();
    config.insert("authStrategies".to_owned(), Value::Array(Vec::new()));
    let mut jwt_options = Value::Object(default_jwt_options());
    let user = raw.and_then(Value::as_object);
    if let Some(user) = user {
        for (key, value) in user {
            if key == "jwtOptions" {
                crate::config::merge_value(&mut jwt_options, value.clone());
            } else {
                config.insert(key.clone(), value.clone());
            }
        }
    }
    config.insert("jwtOptions".to_owned(), jwt_options);
    config
}

/// Where a misplaced key belongs, for the error message.
fn home_of(key: &str, value: &Value, config_key: &str) -> Option<String> {
    if key == "header" {
        // A string header names the HTTP header the jwt strategy reads; an
        // object is the JOSE header of the token.
        return Some(if value.is_string() {
            format!("{config_key}.jwt.header")
        } else {
            format!("{config_key}.jwtOptions.header")
        });
    }
    if JWT_OPTION_KEYS.contains(&key) {
        return Some(format!("{config_key}.jwtOptions.{key}"));
    }
    if key == "schemes" {
        return Some(format!("{config_key}.jwt.schemes"));
    }
    if LOCAL_STRATEGY_KEYS.contains(&key) && !TOP_LEVEL_KEYS.contains(&key) {
        return Some(format!("{config_key}.local.{key}"));
    }
    if key == "secret" {
        return Some(format!("{config_key}.secret"));
    }
    None
}

/// Checks the layout of a configuration; the message of the error says
/// where a misplaced key belongs. `strategies` are the registered strategy
/// names (their sections are checked by the strategies themselves).
pub(crate) fn check_layout(
    config: &Map<String, Value>,
    config_key: &str,
    strategies: &[String],
) -> Result<()> {
    for (key, value) in config {
        if TOP_LEVEL_KEYS.contains(&key.as_str()) || strategies.iter().any(|s| s == key) {
            continue;
        }
        if let Some(home) = home_of(key, value, config_key) {
            return Err(misplaced(&format!("{config_key}.{key}"), &home));
        }
        // Sections of strategies that are not registered (an `oauth`
        // section, say) are left alone; a scalar nobody reads is a typo.
        if !value.is_object() {
            return Err(Error::general(format!(
                "Unknown option '{config_key}.{key}' in the authentication configuration"
            )));
        }
    }
    if let Some(options) = config.get("jwtOptions") {
        let Some(options) = options.as_object() else {
            return Err(Error::general(format!(
                "'{config_key}.jwtOptions' must be an object"
            )));
        };
        for (key, value) in options {
            if JWT_OPTION_KEYS.contains(&key.as_str()) {
                continue;
            }
            if let Some(home) = home_of(key, value, config_key) {
                return Err(misplaced(&format!("{config_key}.jwtOptions.{key}"), &home));
            }
            return Err(Error::general(format!(
                "\"{key}\" is not allowed in \"options\""
            )));
        }
    }
    for list in ["authStrategies", "parseStrategies"] {
        if let Some(value) = config.get(list)
            && !value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string))
        {
            return Err(Error::general(format!(
                "'{config_key}.{list}' must be a list of strategy names"
            )));
        }
    }
    for key in ["entity", "entityId", "service"] {
        match config.get(key) {
            None | Some(Value::String(_)) => {}
            Some(Value::Null) if key == "entity" => {}
            Some(_) => {
                return Err(Error::general(format!(
                    "'{config_key}.{key}' must be a string"
                )));
            }
        }
    }
    Ok(())
}

/// The error for a key in the wrong place.
pub fn misplaced(found: &str, home: &str) -> Error {
    Error::general(format!("Invalid option '{found}': it belongs in '{home}'"))
}

/// The entity settings that apply to a strategy: its own section's
/// `entity`, `service` and `entityId` over the top-level ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitySettings {
    /// The entity name (`user`); `None` when `entity` is `null` (stateless).
    pub entity: Option<String>,
    /// The path of the entity service.
    pub service: Option<String>,
    /// The id property, if configured.
    pub entity_id: Option<String>,
}

impl EntitySettings {
    /// Reads the settings from the effective configuration and a strategy
    /// section. An absent `entity` means `user`; `null` means none.
    pub fn resolve(config: &Map<String, Value>, section: &Map<String, Value>) -> Self {
        let pick = |key: &str| section.get(key).or_else(|| config.get(key));
        let entity = match pick("entity") {
            Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            _ => Some("user".to_owned()),
        };
        let string = |key: &str| {
            pick(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            entity,
            service: string("service"),
            entity_id: string("entityId"),
        }
    }
}

/// Reads a timespan: a JSON number of seconds, or a string with a unit:
/// `"60s"`, `"30m"`, `"2h"`, `"1d"`, `"7 days"`, `"1w"`, `"1y"`, `"500ms"`
/// (rounded down to whole seconds).
pub(crate) fn parse_timespan(value: &Value) -> Result<u64> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
            .ok_or_else(|| bad_timespan(value)),
        Value::String(s) => parse_timespan_str(s).ok_or_else(|| bad_timespan(value)),
        _ => Err(bad_timespan(value)),
    }
}

fn bad_timespan(value: &Value) -> Error {
    Error::general(format!(
        "Invalid timespan {value}: use a number of seconds or a string such as \"60s\", \"30m\", \"2h\", \"1d\" or \"7 days\""
    ))
}

/// Vercel's `ms` syntax, which node-jsonwebtoken reads `expiresIn` with:
/// a number, fractions allowed, then an optional space and a unit in any
/// case (`"1.5h"`, `"7 Days"`). Written here rather than taken from
/// humantime, which reads neither fractions nor capitals and does read
/// compounds (`"1h 30m"`) that Feathers refuses: a Feathers config must
/// mean the same token lifetime in Plume.
fn parse_timespan_str(input: &str) -> Option<u64> {
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let millis_per_unit: f64 = match unit.as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        "w" | "week" | "weeks" => 604_800_000.0,
        "y" | "yr" | "yrs" | "year" | "years" => 31_557_600_000.0,
        _ => return None,
    };
    let seconds = number * millis_per_unit / 1000.0;
    (0.0..1e15).contains(&seconds).then_some(seconds as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        for (input, seconds) in [
            (json!("1d"), 86_400),
            (json!("2h"), 7_200),
            (json!("30m"), 1_800),
            (json!("60s"), 60),
            (json!("7 days"), 604_800),
            (json!("1.5h"), 5_400),
            (json!(3600), 3_600),
            (json!("1500ms"), 1),
            (json!("2 Days"), 172_800),
        ] {
            assert_eq!(parse_timespan(&input).unwrap(), seconds, "{input}");
        }
        for bad in [
            json!("60"),
            json!("soon"),
            json!(-1),
            json!(null),
            json!([1]),
            json!("1 fortnight"),
            json!("1h 30m"),
        ] {
            assert!(parse_timespan(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwt_options_merge_over_defaults() {
        let config = effective(Some(&json!({"jwtOptions": {"expiresIn": "2h"}})));
        assert_eq!(
            config["jwtOptions"],
            json!({"header": {"typ": "access"}, "audience": "https://yourdomain.com",
                   "issuer": "feathers", "algorithm": "HS256", "expiresIn": "2h"})
        );
        let config = effective(Some(&json!({"jwtOptions": {"audience": null}})));
        let options = config["jwtOptions"].as_object().unwrap();
        let settings = crate::auth::token::JwtSettings::parse(options).unwrap();
        assert_eq!(settings.audience, None);
        assert_eq!(settings.issuer.as_deref(), Some("feathers"));
    }
}
