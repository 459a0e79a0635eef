//! The `authenticate(...)` hook (Feathers: `@feathersjs/authentication`,
//! `src/hooks/authenticate.ts`).

use crate::auth::AuthenticationService;
use crate::{AroundHook, BoxFuture, Error, Hook, HookContext, Next, Result};
use plume_hooks::HookType;

/// Requires that an external call carries valid credentials
/// (`params.authentication`) for one of its strategies; sets the entity
/// (`params.entities["user"]`), `params.authentication` and
/// `params.authenticated`. Works as a before hook and as an around hook.
#[derive(Debug, Clone)]
pub struct Authenticate {
    service: Option<String>,
    strategies: Vec<String>,
}

/// `authenticate(["jwt"])`: the hook for the default authentication
/// service. With an empty list every call fails (fail closed); use
/// [`Authenticate::try_new`] to get that error up front.
pub fn authenticate<I, S>(strategies: I) -> Authenticate
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Authenticate {
        service: None,
        strategies: strategies.into_iter().map(Into::into).collect(),
    }
}

impl Authenticate {
    /// The hook, or an error when no strategy is given (`@feathersjs/authentication`,
    /// `src/hooks/authenticate.ts`).
    pub fn try_new<I, S>(strategies: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let hook = authenticate(strategies);
        if hook.strategies.is_empty() {
            return Err(no_strategies());
        }
        Ok(hook)
    }

    /// Uses the authentication service at `path` instead of the default
    /// (Feathers' `authenticate({service, strategies})`).
    #[must_use]
    pub fn service(mut self, path: impl Into<String>) -> Self {
        self.service = Some(path.into());
        self
    }

    async fn check(&self, ctx: &mut HookContext) -> Result<()> {
        if self.strategies.is_empty() {
            return Err(no_strategies());
        }
        if !matches!(ctx.hook_type, HookType::Before | HookType::Around) {
            return Err(Error::not_authenticated(
                "The authenticate hook must be used as a before hook",
            ));
        }
        let service = AuthenticationService::from_app(&ctx.app, self.service.as_deref())
            .ok_or_else(|| {
                Error::not_authenticated("Could not find a valid authentication service")
            })?;
        if service.path().as_deref() == Some(&*ctx.path) {
            return Err(Error::not_authenticated(
                "The authenticate hook does not need to be used on the authentication service",
            ));
        }
        if ctx.params.authenticated {
            return Ok(());
        }
        if let Some(authentication) = ctx.params.authentication.clone() {
            let mut params = ctx.params.clone();
            params.provider = None;
            params.authentication = None;
            let result = service
                .authenticate(&authentication, &params, &self.strategies)
                .await?;
            for (key, value) in result {
                match key.as_str() {
                    // The token stays in `authentication`, not in params.
                    "accessToken" | "authenticated" => {}
                    "authentication" => ctx.params.authentication = Some(value),
                    _ => {
                        ctx.params.entities.insert(key, value);
                    }
                }
            }
            ctx.params.authenticated = true;
            return Ok(());
        }
        if ctx.params.is_external() {
            return Err(Error::not_authenticated("Not authenticated"));
        }
        Ok(())
    }
}

fn no_strategies() -> Error {
    Error::general("The authenticate hook needs at least one allowed strategy")
}

impl Hook<HookContext> for Authenticate {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.check(ctx))
    }
}

impl AroundHook<HookContext> for Authenticate {
    fn run<'a>(
        &'a self,
        ctx: &'a mut HookContext,
        next: Next<'a, HookContext>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.check(ctx).await?;
            next.run(ctx).await
        })
    }
}
