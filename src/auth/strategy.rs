//! The [`AuthenticationStrategy`] trait: how credentials become an
//! authentication result.

use std::any::Any;
use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::AuthenticationService;
use super::config::EntitySettings;
use crate::{App, Params, Result, ServiceHandle};

/// What a strategy returns: a JSON object such as
/// `{"authentication": {"strategy": "local"}, "user": {...}}` or, for the
/// jwt strategy, `{"accessToken", "authentication": {...}, "user"}`.
pub type AuthResult = Map<String, Value>;

/// What a strategy knows about where it runs: the name it was registered
/// under and the authentication service (Feathers' `setName`,
/// `setAuthentication`, `setApplication`, passed on every call instead of
/// stored, so one strategy value can serve several services).
#[derive(Debug, Clone, Copy)]
pub struct StrategyContext<'a> {
    /// The name the strategy is registered under.
    pub name: &'a str,
    /// The authentication service it is registered on.
    pub service: &'a AuthenticationService,
}

impl StrategyContext<'_> {
    /// The strategy's own section of the configuration
    /// (`authentication.<name>`), empty when absent (Feathers:
    /// `@feathersjs/authentication`, `src/strategy.ts`).
    pub fn section(&self) -> Map<String, Value> {
        self.service
            .shared_configuration()
            .get(self.name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// `entity`, `service` and `entityId`: the strategy's section over the
    /// top-level settings.
    pub fn entity_settings(&self) -> EntitySettings {
        EntitySettings::resolve(&self.service.shared_configuration(), &self.section())
    }

    /// The app.
    pub fn app(&self) -> Result<App> {
        self.service.app()
    }

    /// The entity service, `None` when no `service` is configured; an error
    /// when it is configured but not registered (Feathers:
    /// `@feathersjs/authentication`, `src/strategy.ts`).
    pub fn entity_service(&self) -> Result<Option<ServiceHandle>> {
        match self.entity_settings().service {
            None => Ok(None),
            Some(path) => self.app()?.service(&path).map(Some),
        }
    }
}

/// A way to authenticate: `local` (username and password), `jwt` (an access
/// token), or your own.
///
/// Strategies are registered on an [`AuthenticationService`] under a name;
/// `create` picks one by `data.strategy`. Only `authenticate` is required.
#[async_trait]
pub trait AuthenticationStrategy: Any + Send + Sync {
    /// Checks the strategy's configuration when it is registered; an error
    /// stops the registration (Feathers' `register`,
    /// `@feathersjs/authentication`, `src/core.ts`).
    fn verify_configuration(&self, ctx: &StrategyContext<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Called once when the authentication service is set up.
    async fn setup(&self, ctx: &StrategyContext<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Authenticates `authentication` (the request data or
    /// `params.authentication`). The params always carry
    /// `authenticated: true` (Feathers' `authenticate`,
    /// `@feathersjs/authentication`, `src/core.ts`).
    async fn authenticate(
        &self,
        ctx: &StrategyContext<'_>,
        authentication: &Value,
        params: &Params,
    ) -> Result<AuthResult>;

    /// Reads credentials from request headers (lower-case names), e.g.
    /// `{"strategy": "jwt", "accessToken": "..."}`; `None` when there are
    /// none for this strategy (Feathers' `parse`, `@feathersjs/authentication`,
    /// `src/core.ts`).
    fn parse(
        &self,
        ctx: &StrategyContext<'_>,
        headers: &HashMap<String, String>,
    ) -> Result<Option<Value>> {
        let _ = (ctx, headers);
        Ok(None)
    }

    /// Refuses a login attempt that cannot succeed before it is throttled
    /// or verified (the local strategy: an over-long login name), so that
    /// such attempts cost neither a throttle entry nor a hash.
    fn screen(&self, ctx: &StrategyContext<'_>, data: &Value) -> Result<()> {
        let _ = (ctx, data);
        Ok(())
    }

    /// The account a login attempt is for, used to throttle failed logins
    /// per account; `None` when the strategy has no such notion.
    fn throttle_key(&self, ctx: &StrategyContext<'_>, data: &Value) -> Option<String> {
        let _ = (ctx, data);
        None
    }

    /// Whether logins with this strategy go through the login throttle
    /// (failed attempts counted per account and per address, and at most
    /// that many evaluated at once). True unless the secret it checks
    /// cannot be guessed, as a signed token cannot: then throttling only
    /// refuses legitimate crowds, such as every socket of a page (or of an
    /// office behind one address) logging in again after a restart.
    fn throttled(&self) -> bool {
        true
    }
}
