//! The throttle's limits, read from `authentication.throttle`.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::auth::config::parse_timespan;
use crate::{Error, Result};

/// The throttle's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// False when throttling is switched off.
    pub enabled: bool,
    /// Failed logins allowed per account within the window.
    pub max_per_username: usize,
    /// Failed logins allowed per client address within the window.
    pub max_per_address: usize,
    /// The window.
    pub window: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_per_username: 10,
            max_per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl ThrottleSettings {
    /// Reads `throttle` from the effective configuration.
    pub(crate) fn from_config(config: &Map<String, Value>, config_key: &str) -> Result<Self> {
        let mut settings = Self::default();
        match config.get("throttle") {
            None | Some(Value::Null | Value::Bool(true)) => {}
            Some(Value::Bool(false)) => settings.enabled = false,
            Some(Value::Object(options)) => {
                for (key, value) in options {
                    match key.as_str() {
                        "enabled" => {
                            settings.enabled =
                                value.as_bool().ok_or_else(|| bad(config_key, key))?;
                        }
                        "maxPerUsername" => {
                            settings.max_per_username =
                                count(value).ok_or_else(|| bad(config_key, key))?;
                        }
                        "maxPerAddress" => {
                            settings.max_per_address =
                                count(value).ok_or_else(|| bad(config_key, key))?;
                        }
                        "window" => settings.window = Duration::from_secs(parse_timespan(value)?),
                        other => {
                            return Err(Error::general(format!(
                                "Unknown option '{config_key}.throttle.{other}'"
                            )));
                        }
                    }
                }
            }
            Some(_) => {
                return Err(Error::general(format!(
                    "'{config_key}.throttle' must be an object or false"
                )));
            }
        }
        Ok(settings)
    }
}

fn count(value: &Value) -> Option<usize> {
    value.as_u64().and_then(|n| usize::try_from(n).ok())
}

fn bad(config_key: &str, key: &str) -> Error {
    Error::general(format!("'{config_key}.throttle.{key}' has the wrong type"))
}
