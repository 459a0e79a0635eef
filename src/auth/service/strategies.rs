//! The strategy registry of [`AuthenticationService`]: registering and
//! looking up strategies, authenticating with the one a request names,
//! and parsing credentials out of request headers.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::AuthenticationService;
use crate::auth::strategy::{AuthResult, AuthenticationStrategy, StrategyContext};
use crate::error::poisoned;
use crate::{Error, Params, Result};

impl AuthenticationService {
    /// Registers `strategy` under `name` after checking its configuration
    /// (Feathers' `register`, `@feathersjs/authentication`, `src/core.ts`);
    /// replaces a strategy of the same name.
    pub fn register(&self, name: &str, strategy: impl AuthenticationStrategy) -> Result<()> {
        self.register_arc(name, Arc::new(strategy))
    }

    /// Registers a shared strategy.
    pub fn register_arc(
        &self,
        name: &str,
        strategy: Arc<dyn AuthenticationStrategy>,
    ) -> Result<()> {
        strategy.verify_configuration(&StrategyContext {
            name,
            service: self,
        })?;
        self.strategies
            .write()
            .map_err(poisoned)?
            .insert(name.to_owned(), strategy);
        Ok(())
    }

    /// The registered names, in registration order.
    pub fn strategy_names(&self) -> Vec<String> {
        self.strategies
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The registered strategies with their names, copied out so that no
    /// lock is held while they run.
    pub(super) fn registered_strategies(
        &self,
    ) -> Result<Vec<(String, Arc<dyn AuthenticationStrategy>)>> {
        Ok(self
            .strategies
            .read()
            .map_err(poisoned)?
            .iter()
            .map(|(n, s)| (n.clone(), Arc::clone(s)))
            .collect())
    }

    /// The strategies for `names`, in that order; unknown names are
    /// skipped (Feathers' `getStrategies`, `@feathersjs/authentication`,
    /// `src/core.ts`).
    pub fn get_strategies(&self, names: &[&str]) -> Vec<Arc<dyn AuthenticationStrategy>> {
        names.iter().filter_map(|n| self.get_strategy(n)).collect()
    }

    /// The strategy registered as `name`.
    pub fn get_strategy(&self, name: &str) -> Option<Arc<dyn AuthenticationStrategy>> {
        self.strategies.read().ok()?.get(name).cloned()
    }

    /// The strategy registered as `name`, as its concrete type.
    pub fn get_strategy_as<T: AuthenticationStrategy>(&self, name: &str) -> Option<Arc<T>> {
        let strategy: Arc<dyn std::any::Any + Send + Sync> = self.get_strategy(name)?;
        strategy.downcast::<T>().ok()
    }

    /// Authenticates `authentication` with the strategy it names, which
    /// must be in `allowed` (Feathers' `authenticate`,
    /// `@feathersjs/authentication`, `src/core.ts`). The strategy sees
    /// `params.authenticated == true`.
    pub async fn authenticate(
        &self,
        authentication: &Value,
        params: &Params,
        allowed: &[String],
    ) -> Result<AuthResult> {
        let name = authentication
            .get("strategy")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let Some(name) = name else {
            return Err(Error::not_authenticated(
                "Invalid authentication information (no `strategy` set)",
            ));
        };
        if !allowed.iter().any(|a| a == name) {
            return Err(Error::not_authenticated(
                "Invalid authentication information (strategy not allowed in authStrategies)",
            ));
        }
        let Some(strategy) = self.get_strategy(name) else {
            return Err(Error::not_authenticated(
                "Invalid authentication information",
            ));
        };
        let mut params = params.clone();
        params.authenticated = true;
        strategy
            .authenticate(
                &StrategyContext {
                    name,
                    service: self,
                },
                authentication,
                &params,
            )
            .await
    }

    /// Reads credentials from request headers (lower-case names) with the
    /// `parseStrategies` (or `authStrategies`): the first strategy that
    /// finds some wins, e.g. `{"strategy": "jwt", "accessToken": "..."}`.
    /// This is what the REST transport calls (Feathers' `parse` in
    /// `@feathersjs/authentication`, `src/core.ts`, called by
    /// `parseAuthentication` in `@feathersjs/express`, `src/authentication.ts`).
    pub fn parse(&self, headers: &HashMap<String, String>) -> Result<Option<Value>> {
        let config = self.shared_configuration();
        let names = string_list(config.get("parseStrategies"))
            .or_else(|| string_list(config.get("authStrategies")))
            .unwrap_or_default();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.parse_with(headers, &names)
    }

    /// [`parse`](Self::parse) with an explicit list of strategy names.
    pub fn parse_with(
        &self,
        headers: &HashMap<String, String>,
        names: &[&str],
    ) -> Result<Option<Value>> {
        for name in names {
            if let Some(strategy) = self.get_strategy(name)
                && let Some(found) = strategy.parse(
                    &StrategyContext {
                        name,
                        service: self,
                    },
                    headers,
                )?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// A configured list of strategy names (`authStrategies`,
/// `parseStrategies`); entries that are not strings are skipped.
pub(super) fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    value?.as_array().map(|items| {
        items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect()
    })
}
