//! What [`AuthenticationService`] derives from its app setting, cached
//! until the setting changes: the effective configuration, the parsed
//! `jwtOptions` and the signing and verifying keys.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value};

use super::AuthenticationService;
use crate::auth::config;
use crate::auth::token::{self, JwtSettings};
use crate::error::poisoned;
use crate::{Error, Result};

/// The effective configuration, shared between calls until a setting
/// changes.
pub(super) type SharedConfig = Arc<Map<String, Value>>;

/// Keys built from the configured secret, kept until the secret changes.
pub(super) struct Keys {
    algorithm: Algorithm,
    secret: String,
    public_key: Option<String>,
    pub(super) encoding: EncodingKey,
    pub(super) decoding: DecodingKey,
}

impl AuthenticationService {
    /// A copy of the effective configuration: the defaults under
    /// `app.get(config_key)`, current with the settings so changes to the
    /// setting apply at once (Feathers' `configuration` getter,
    /// `@feathersjs/authentication`, `src/core.ts`). `jwtOptions` are merged
    /// over the defaults key by key (Feathers replaces them). It is derived
    /// again only when a setting has changed since the last call.
    pub fn configuration(&self) -> Map<String, Value> {
        (*self.shared_configuration()).clone()
    }

    /// [`configuration`](Self::configuration) without the copy: the same
    /// map is shared until a setting changes. The authentication layer
    /// reads it several times per authenticated call.
    pub fn shared_configuration(&self) -> Arc<Map<String, Value>> {
        let Some(app) = self.app.upgrade() else {
            return Arc::new(config::effective(None));
        };
        // Read the version before the setting: a change in between leaves a
        // newer value under an older version, which the next call redoes.
        let version = app.settings_version();
        if let Ok(cached) = self.configuration.read()
            && let Some((cached_version, config)) = cached.as_ref()
            && *cached_version == version
        {
            return Arc::clone(config);
        }
        let config = Arc::new(config::effective(app.get(&self.config_key).as_ref()));
        if let Ok(mut cached) = self.configuration.write() {
            *cached = Some((version, Arc::clone(&config)));
        }
        config
    }

    /// The configured `jwtOptions` with a call's `overrides` merged over
    /// them.
    pub(super) fn jwt_settings(
        &self,
        config: &Map<String, Value>,
        overrides: Option<&Map<String, Value>>,
    ) -> Result<JwtSettings> {
        let mut options = config
            .get("jwtOptions")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(overrides) = overrides {
            crate::config::merge_value(&mut options, Value::Object(overrides.clone()));
        }
        match options {
            Value::Object(options) => JwtSettings::parse(&options),
            _ => Err(Error::general("'jwtOptions' must be an object")),
        }
    }

    /// The keys for the configured secret (and public key), built again
    /// only when the algorithm or a key has changed.
    pub(super) fn keys(
        &self,
        config: &Map<String, Value>,
        settings: &JwtSettings,
    ) -> Result<Arc<Keys>> {
        let secret = config
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(missing_secret)?;
        let public_key = config.get("publicKey").and_then(Value::as_str);
        if let Some(keys) = self.keys.read().map_err(poisoned)?.as_ref()
            && keys.algorithm == settings.algorithm
            && keys.secret == secret
            && keys.public_key.as_deref() == public_key
        {
            return Ok(Arc::clone(keys));
        }
        let decoding = if settings.is_symmetric() {
            token::decoding_key(settings.algorithm, secret)?
        } else {
            let public = public_key.ok_or_else(|| {
                Error::general(format!(
                    "The {:?} algorithm needs a PEM public key in '{}.publicKey' to verify tokens ('secret' is the private key)",
                    settings.algorithm, self.config_key
                ))
            })?;
            token::decoding_key(settings.algorithm, public)?
        };
        let keys = Arc::new(Keys {
            algorithm: settings.algorithm,
            secret: secret.to_owned(),
            public_key: public_key.map(str::to_owned),
            encoding: token::encoding_key(settings.algorithm, secret)?,
            decoding,
        });
        *self.keys.write().map_err(poisoned)? = Some(Arc::clone(&keys));
        Ok(keys)
    }
}

pub(super) fn missing_secret() -> Error {
    Error::general("A 'secret' must be provided in your authentication configuration")
}
