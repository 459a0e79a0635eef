//! How an app customises what a login issues: per service with
//! [`AuthenticationOverrides`] (the payload and options of new tokens,
//! with Feathers' defaults as the `base_*` methods) and per call with
//! [`AuthCallOptions`].

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::AuthenticationService;
use crate::auth::config::EntitySettings;
use crate::auth::strategy::AuthResult;
use crate::auth::token;
use crate::{Error, Params, Result};

/// Per-call overrides that only server code can set (they live in
/// [`Params::extensions`], which no transport fills from a request):
/// Feathers' `params.jwtOptions`/`params.jwt`, `params.secret` and
/// `params.authStrategies` (`@feathersjs/authentication`, `src/service.ts`).
#[derive(Debug, Clone, Default)]
pub struct AuthCallOptions {
    /// Token options for this call (`subject`, `expiresIn`, ...).
    pub jwt_options: Option<Map<String, Value>>,
    /// Signs with this secret instead of the configured one.
    pub secret: Option<String>,
    /// The strategies `create` allows instead of `authStrategies`.
    pub auth_strategies: Option<Vec<String>>,
}

/// The overridable steps of token creation: the Rust form of extending
/// Feathers' `AuthenticationService` class.
///
/// Every method has a default that calls the service's `base_*` method,
/// so an override can call the default first, the way
/// `super.getPayload(authResult, params)` does:
///
/// ```
/// use async_trait::async_trait;
/// use plume::auth::{AuthResult, AuthenticationOverrides, AuthenticationService};
/// use plume::{Params, Result};
/// use serde_json::{Map, Value};
///
/// struct WithPermissions;
///
/// #[async_trait]
/// impl AuthenticationOverrides for WithPermissions {
///     async fn get_payload(
///         &self,
///         service: &AuthenticationService,
///         auth_result: &AuthResult,
///         params: &Params,
///     ) -> Result<Map<String, Value>> {
///         let mut payload = service.base_get_payload(auth_result, params).await?;
///         if let Some(permissions) = auth_result.get("user").and_then(|u| u.get("permissions")) {
///             payload.insert("permissions".into(), permissions.clone());
///         }
///         Ok(payload)
///     }
/// }
/// ```
#[async_trait]
pub trait AuthenticationOverrides: Send + Sync + 'static {
    /// The custom claims of a new token (Feathers' `getPayload`,
    /// `@feathersjs/authentication`, `src/service.ts`).
    async fn get_payload(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        service.base_get_payload(auth_result, params).await
    }

    /// The options of a new token (Feathers' `getTokenOptions`,
    /// `@feathersjs/authentication`, `src/service.ts`).
    async fn get_token_options(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        service.base_get_token_options(auth_result, params).await
    }
}

/// No overrides: Feathers' behaviour.
pub(super) struct Defaults;

impl AuthenticationOverrides for Defaults {}

impl AuthenticationService {
    /// The custom claims of a new token, through the overrides.
    pub async fn get_payload(
        &self,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        self.overrides.get_payload(self, auth_result, params).await
    }

    /// The options of a new token, through the overrides.
    pub async fn get_token_options(
        &self,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        self.overrides
            .get_token_options(self, auth_result, params)
            .await
    }

    /// The default payload: `params.payload` (`@feathersjs/authentication`,
    /// `src/service.ts`). What an override calls as `super.getPayload`.
    pub async fn base_get_payload(
        &self,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let _ = auth_result;
        Ok(params.payload.clone())
    }

    /// The default token options (`@feathersjs/authentication`,
    /// `src/service.ts`): the call's
    /// [`AuthCallOptions::jwt_options`], plus `subject` = the entity's id
    /// when an entity service is configured and the result has the entity.
    pub async fn base_get_token_options(
        &self,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let mut options = params
            .extensions
            .get::<AuthCallOptions>()
            .and_then(|o| o.jwt_options.clone())
            .unwrap_or_default();
        let config = self.shared_configuration();
        let settings = EntitySettings::resolve(&config, &Map::new());
        if let (Some(entity_name), Some(service)) = (&settings.entity, &settings.service)
            && let Some(entity) = auth_result.get(entity_name).filter(|e| !e.is_null())
            && !options.contains_key("subject")
        {
            let id_field = match &settings.entity_id {
                Some(field) => field.clone(),
                None => self
                    .app()?
                    .service(service)?
                    .service()
                    .id_field()
                    .unwrap_or("id")
                    .to_owned(),
            };
            let subject = entity
                .get(&id_field)
                .and_then(token::subject_of)
                .ok_or_else(|| {
                    Error::not_authenticated(format!(
                        "Can not set subject from {entity_name}.{id_field}"
                    ))
                })?;
            options.insert("subject".to_owned(), Value::String(subject));
        }
        Ok(options)
    }
}
