//! The `jwt` strategy: authenticates with an access token, read from the
//! `Authorization` header or sent as `{strategy: "jwt", accessToken}`.
//!
//! Stricter than Feathers: the scheme must be one of the configured
//! `schemes` as a whole word (case-insensitive; Feathers matches a
//! substring, so `XBearerY tok` passes there), a header with more than two
//! words is refused, and a valid token whose entity is gone is 401
//! NotAuthenticated (Feathers: 404).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::config::JWT_STRATEGY_KEYS;
use super::strategy::{AuthResult, AuthenticationStrategy, StrategyContext};
use crate::{Error, ErrorKind, Id, Params, Result};

/// The overridable steps of the jwt strategy (Feathers: subclassing
/// `JWTStrategy`). Each default calls the strategy's `base_*` method, so an
/// override can call it first, like `super.getEntity(id, params)`.
#[async_trait]
pub trait JwtOverrides: Send + Sync + 'static {
    /// The query used to load the entity (default `{}`; any caller query is
    /// dropped, as by Feathers' `getEntityQuery`: `@feathersjs/authentication`,
    /// `src/jwt.ts`).
    async fn get_entity_query(
        &self,
        strategy: &JwtStrategy,
        ctx: &StrategyContext<'_>,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        strategy.base_get_entity_query(ctx, params).await
    }

    /// The id of the entity (default: the `sub` claim).
    async fn get_entity_id(
        &self,
        strategy: &JwtStrategy,
        ctx: &StrategyContext<'_>,
        result: &AuthResult,
        params: &Params,
    ) -> Result<Id> {
        strategy.base_get_entity_id(ctx, result, params).await
    }

    /// Loads the entity.
    async fn get_entity(
        &self,
        strategy: &JwtStrategy,
        ctx: &StrategyContext<'_>,
        id: &Id,
        params: &Params,
    ) -> Result<Value> {
        strategy.base_get_entity(ctx, id, params).await
    }
}

struct Defaults;

impl JwtOverrides for Defaults {}

/// The jwt strategy. Register it as `"jwt"`.
pub struct JwtStrategy {
    overrides: Arc<dyn JwtOverrides>,
}

impl std::fmt::Debug for JwtStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtStrategy").finish_non_exhaustive()
    }
}

impl Default for JwtStrategy {
    fn default() -> Self {
        Self::new()
    }
}

/// The jwt strategy's settings: Feathers' defaults (`@feathersjs/authentication`,
/// `src/jwt.ts`) under its section.
#[derive(Debug, Clone)]
struct Settings {
    header: String,
    schemes: Vec<String>,
}

impl JwtStrategy {
    /// The strategy with Feathers' behaviour.
    pub fn new() -> Self {
        Self {
            overrides: Arc::new(Defaults),
        }
    }

    /// The strategy with overridden steps.
    pub fn with_overrides(overrides: impl JwtOverrides) -> Self {
        Self {
            overrides: Arc::new(overrides),
        }
    }

    fn settings(ctx: &StrategyContext<'_>) -> Settings {
        let section = ctx.section();
        let header = section
            .get("header")
            .and_then(Value::as_str)
            .unwrap_or("Authorization")
            .to_owned();
        let schemes = section
            .get("schemes")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec!["Bearer".to_owned(), "JWT".to_owned()]);
        Settings { header, schemes }
    }

    /// The query to load the entity with, through the overrides.
    pub async fn get_entity_query(
        &self,
        ctx: &StrategyContext<'_>,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        self.overrides.get_entity_query(self, ctx, params).await
    }

    /// The entity id, through the overrides.
    pub async fn get_entity_id(
        &self,
        ctx: &StrategyContext<'_>,
        result: &AuthResult,
        params: &Params,
    ) -> Result<Id> {
        self.overrides
            .get_entity_id(self, ctx, result, params)
            .await
    }

    /// The entity, through the overrides.
    pub async fn get_entity(
        &self,
        ctx: &StrategyContext<'_>,
        id: &Id,
        params: &Params,
    ) -> Result<Value> {
        self.overrides.get_entity(self, ctx, id, params).await
    }

    /// Default entity query: empty.
    pub async fn base_get_entity_query(
        &self,
        ctx: &StrategyContext<'_>,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let _ = (ctx, params);
        Ok(Map::new())
    }

    /// Default entity id: the `sub` claim of the verified payload.
    pub async fn base_get_entity_id(
        &self,
        ctx: &StrategyContext<'_>,
        result: &AuthResult,
        params: &Params,
    ) -> Result<Id> {
        let _ = (ctx, params);
        result
            .get("authentication")
            .and_then(|a| a.get("payload"))
            .and_then(|p| p.get("sub"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Id::from)
            .ok_or_else(|| Error::not_authenticated("The access token has no subject"))
    }

    /// Default entity lookup (Feathers' `getEntity`, `@feathersjs/authentication`,
    /// `src/jwt.ts`): an internal `get` with the entity query; for an external
    /// call a second `get` with the caller's params returns the version that
    /// caller may see. A missing entity is 401.
    pub async fn base_get_entity(
        &self,
        ctx: &StrategyContext<'_>,
        id: &Id,
        params: &Params,
    ) -> Result<Value> {
        let settings = ctx.entity_settings();
        let service = ctx
            .entity_service()?
            .ok_or_else(|| Error::not_authenticated("Could not find entity service"))?;
        let mut internal = params.clone();
        internal.provider = None;
        internal.query = self.get_entity_query(ctx, params).await?;
        let entity = service
            .get(id.clone(), internal)
            .await
            .map_err(entity_gone)?;
        if !params.is_external() {
            return Ok(entity);
        }
        let mut external = params.clone();
        if let Some(name) = &settings.entity {
            external.entities.insert(name.clone(), entity);
        }
        service.get(id.clone(), external).await.map_err(entity_gone)
    }

    fn parse_header(settings: &Settings, value: &str) -> Option<String> {
        // A header value is visible ASCII, spaces and tabs (`to_str`), so
        // ASCII whitespace is all the whitespace it can hold; Unicode's
        // test per char cost about 1 % of an authenticated request.
        let words: Vec<&str> = value.split_ascii_whitespace().collect();
        match words.as_slice() {
            [token] => Some((*token).to_owned()),
            [scheme, token] => settings
                .schemes
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
                .then(|| (*token).to_owned()),
            _ => None,
        }
    }
}

/// A token whose entity cannot be loaded is not a valid login (Feathers
/// answers 404 here).
fn entity_gone(error: Error) -> Error {
    if error.kind() == ErrorKind::NotFound {
        Error::not_authenticated("Could not find the entity of this access token")
    } else {
        error
    }
}

#[async_trait]
impl AuthenticationStrategy for JwtStrategy {
    /// A signed token cannot be guessed: token logins are not throttled.
    fn throttled(&self) -> bool {
        false
    }

    /// As Feathers' `verifyConfiguration` (`@feathersjs/authentication`,
    /// `src/jwt.ts`): only `entity`, `entityId`, `service`, `header`,
    /// `schemes`; `header` must be a string.
    fn verify_configuration(&self, ctx: &StrategyContext<'_>) -> Result<()> {
        let key = ctx.service.config_key();
        let name = ctx.name;
        for (option, value) in &ctx.section() {
            if !JWT_STRATEGY_KEYS.contains(&option.as_str()) {
                return Err(Error::general(format!(
                    "Invalid JwtStrategy option '{key}.{name}.{option}'. Did you mean to set it in '{key}.jwtOptions'?"
                )));
            }
            if option == "header" && !value.is_string() {
                return Err(Error::general(format!(
                    "The 'header' option for the {name} strategy must be a string"
                )));
            }
            if option == "schemes"
                && !value
                    .as_array()
                    .is_some_and(|s| s.iter().all(Value::is_string))
            {
                return Err(Error::general(format!(
                    "The 'schemes' option for the {name} strategy must be a list of strings"
                )));
            }
        }
        Ok(())
    }

    async fn authenticate(
        &self,
        ctx: &StrategyContext<'_>,
        authentication: &Value,
        params: &Params,
    ) -> Result<AuthResult> {
        let token = authentication
            .get("accessToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::not_authenticated("No access token"))?;
        let payload = ctx.service.verify_access_token(token, None, None).await?;
        let mut authentication = Map::new();
        authentication.insert("strategy".to_owned(), Value::from("jwt"));
        authentication.insert("accessToken".to_owned(), Value::from(token));
        // Moved in: `json!` would copy the claims by serialising them again.
        authentication.insert("payload".to_owned(), Value::Object(payload));
        let mut result = Map::new();
        result.insert("accessToken".to_owned(), Value::from(token));
        result.insert("authentication".to_owned(), Value::Object(authentication));
        let Some(entity_name) = ctx.entity_settings().entity else {
            return Ok(result);
        };
        let id = self.get_entity_id(ctx, &result, params).await?;
        let entity = self.get_entity(ctx, &id, params).await?;
        result.insert(entity_name, entity);
        Ok(result)
    }

    fn parse(
        &self,
        ctx: &StrategyContext<'_>,
        headers: &HashMap<String, String>,
    ) -> Result<Option<Value>> {
        let settings = Self::settings(ctx);
        let Some(value) = headers.get(&settings.header.to_ascii_lowercase()) else {
            return Ok(None);
        };
        Ok(Self::parse_header(&settings, value)
            .map(|token| json!({"strategy": ctx.name, "accessToken": token})))
    }
}
