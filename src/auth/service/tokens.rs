//! Access tokens of [`AuthenticationService`]: signing, verifying
//! (remembering verified tokens, refusing revoked ones) and revoking every
//! token of a subject.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::AuthenticationService;
use crate::auth::token;
use crate::{Error, Result};

impl AuthenticationService {
    /// Signs a new access token with `payload` as its custom claims, the
    /// configured `jwtOptions` merged with `options`, and the configured
    /// secret or `secret` (Feathers' `createAccessToken`,
    /// `@feathersjs/authentication`, `src/core.ts`). Registered claims in
    /// `payload` are refused.
    pub fn create_access_token(
        &self,
        payload: &Map<String, Value>,
        options: Option<&Map<String, Value>>,
        secret: Option<&str>,
    ) -> Result<String> {
        let config = self.shared_configuration();
        let settings = self.jwt_settings(&config, options)?;
        match secret {
            Some(secret) => token::sign(
                payload,
                &settings,
                &token::encoding_key(settings.algorithm, secret)?,
            ),
            None => token::sign(payload, &settings, &self.keys(&config, &settings)?.encoding),
        }
    }

    /// Verifies an access token against the configured `jwtOptions` merged
    /// with `options`, with the configured key or `secret` (for asymmetric
    /// algorithms, a PEM public key), and refuses revoked tokens; returns
    /// the claims (Feathers' `verifyAccessToken`, `@feathersjs/authentication`,
    /// `src/core.ts`).
    pub async fn verify_access_token(
        &self,
        token: &str,
        options: Option<&Map<String, Value>>,
        secret: Option<&str>,
    ) -> Result<Map<String, Value>> {
        let config = self.shared_configuration();
        // The common case, the configured options and key, remembers the
        // tokens it verified (the private `verified` module says why that
        // is safe); revocation is checked below every time.
        let cacheable = options.is_none() && secret.is_none();
        let remembered = cacheable
            .then(|| self.verified.get(&config, token))
            .flatten();
        let claims = if let Some(claims) = remembered {
            (*claims).clone()
        } else {
            let settings = self.jwt_settings(&config, options)?;
            let claims = match secret {
                Some(secret) => token::verify(
                    token,
                    &settings,
                    &token::decoding_key(settings.algorithm, secret)?,
                )?,
                None => token::verify(token, &settings, &self.keys(&config, &settings)?.decoding)?,
            };
            if cacheable {
                self.verified
                    .insert(&config, token, Arc::new(claims.clone()));
            }
            claims
        };
        let (jti_revoked, subject_revoked_at) = self
            .revocations
            .check(
                claims.get("jti").and_then(Value::as_str),
                claims.get("sub").and_then(Value::as_str),
            )
            .await?;
        if jti_revoked {
            return Err(revoked());
        }
        // A password change or a removed entity revokes every token of the
        // subject issued until then.
        if let Some(at) = subject_revoked_at
            && claims
                .get("iat")
                .and_then(Value::as_u64)
                .is_none_or(|iat| iat <= at)
        {
            return Err(revoked());
        }
        Ok(claims)
    }

    /// Revokes every token of the subject `sub` (an entity id as a token
    /// subject) issued until now, and makes the real-time connections
    /// logged in with one leave every channel. Called when the entity's
    /// password changes or the entity is removed; an app may call it too
    /// (to sign a user out everywhere).
    pub async fn revoke_subject(&self, sub: &str) -> Result<()> {
        let at = token::now();
        self.revocations.revoke_subject(sub, at).await?;
        if let Ok(app) = self.app() {
            crate::auth::connection::revoke(&app, None, |claims| {
                claims.get("sub").and_then(Value::as_str) == Some(sub)
                    && claims
                        .get("iat")
                        .and_then(Value::as_u64)
                        .is_none_or(|iat| iat <= at)
            });
        }
        Ok(())
    }
}

fn revoked() -> Error {
    Error::not_authenticated("jwt revoked").with_data(json!({"name": "JsonWebTokenError"}))
}
