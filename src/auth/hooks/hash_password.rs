//! The `hash_password(field)` hook (Feathers: `@feathersjs/authentication-local`,
//! `src/hooks/hash-password.ts`).
//!
//! Plume adds a limit per client address: an external call from an
//! address that already has `maxHashingPerAddress` (local strategy
//! setting, default 2) hashes in progress gets 429 TooManyRequests with
//! `data.retryAfter`, before any hashing, so one address cannot fill the
//! hashing queue with sign-ups. Logins do not wait behind sign-ups in any
//! case (see [`crate::auth::password`]).

use serde_json::Value;

use crate::auth::{AuthenticationService, LocalStrategy, PrehashedPassword, StrategyContext};
use crate::fields::{get_path, set_path};
use crate::{BoxFuture, Error, Hook, HookContext, Result};

/// Replaces the password at `field` (a dotted path) in `ctx.data` by its
/// argon2id hash, for every item when the data is an array. Data without
/// the field is left alone. Use it before `create`, `update` and `patch`.
/// The count of hashes in progress per address belongs to the local
/// strategy, so every `hash_password` hook of an app shares it.
#[derive(Debug, Clone)]
pub struct HashPassword {
    field: String,
    service: Option<String>,
    strategy: String,
}

/// `hash_password("password")`. An empty field name fails every call; use
/// [`HashPassword::try_new`] to get that error up front.
pub fn hash_password(field: impl Into<String>) -> HashPassword {
    HashPassword {
        field: field.into(),
        service: None,
        strategy: "local".to_owned(),
    }
}

impl HashPassword {
    /// The hook, or an error when `field` is empty.
    pub fn try_new(field: impl Into<String>) -> Result<Self> {
        let hook = hash_password(field);
        if hook.field.is_empty() {
            return Err(no_field());
        }
        Ok(hook)
    }

    /// Uses the authentication service at `path`.
    #[must_use]
    pub fn service(mut self, path: impl Into<String>) -> Self {
        self.service = Some(path.into());
        self
    }

    /// Uses the local strategy registered as `name` (default `local`).
    #[must_use]
    pub fn strategy(mut self, name: impl Into<String>) -> Self {
        self.strategy = name.into();
        self
    }

    async fn hash_item(
        &self,
        ctx: &StrategyContext<'_>,
        local: &LocalStrategy,
        item: &mut Value,
    ) -> Result<()> {
        let Some(value) = get_path(item, &self.field) else {
            return Ok(());
        };
        let Some(password) = value.as_str() else {
            return Err(Error::bad_request(format!(
                "'{}' must be a string",
                self.field
            )));
        };
        let hash = local.hash_password(ctx, password).await?;
        set_path(item, &self.field, Value::String(hash));
        Ok(())
    }

    async fn hash(&self, ctx: &mut HookContext) -> Result<()> {
        if self.field.is_empty() {
            return Err(no_field());
        }
        if ctx.data.is_none() {
            return Ok(());
        }
        // The local strategy's own rehash already stores a hash.
        if !ctx.params.is_external() && ctx.params.extensions.get::<PrehashedPassword>().is_some() {
            return Ok(());
        }
        let service = AuthenticationService::from_app(&ctx.app, self.service.as_deref())
            .ok_or_else(|| {
                Error::bad_request("Could not find an authentication service to hash password")
            })?;
        let local = service
            .get_strategy_as::<LocalStrategy>(&self.strategy)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "Could not find '{}' strategy to hash password",
                    self.strategy
                ))
            })?;
        let strategy_ctx = StrategyContext {
            name: &self.strategy,
            service: &service,
        };
        let Some(data) = ctx.data.as_mut() else {
            return Ok(());
        };
        // Only external calls from a known address, carrying a password,
        // are limited; everything else skips reading the setting.
        let has_password = match &*data {
            Value::Array(items) => items.iter().any(|i| get_path(i, &self.field).is_some()),
            item => get_path(item, &self.field).is_some(),
        };
        // Held while this call hashes.
        let _slot = if has_password {
            local.enter_hashing_for(&strategy_ctx, &ctx.params)?
        } else {
            None
        };
        match data {
            Value::Array(items) => {
                for item in items {
                    self.hash_item(&strategy_ctx, &local, item).await?;
                }
            }
            item => self.hash_item(&strategy_ctx, &local, item).await?,
        }
        Ok(())
    }
}

fn no_field() -> Error {
    Error::general("The hashPassword hook requires a field name option")
}

impl Hook<HookContext> for HashPassword {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.hash(ctx))
    }
}
