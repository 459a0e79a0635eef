//! Hooks: adding them to the app and to a service, and the chain a call
//! runs, compiled from both once per service and method and compiled again
//! only after hooks change.

use std::sync::atomic::Ordering;

use plume_hooks::{Chain, HookMap};

use super::{App, ServiceHandle};
use crate::error::poisoned;
use crate::{HookContext, Method, Result};

/// The hook registry of an app or a service, over Plume's [`HookContext`].
pub type Hooks = HookMap<HookContext>;

impl From<Method> for plume_hooks::Methods {
    fn from(method: Method) -> Self {
        Self::Only(vec![method.as_str().to_owned()])
    }
}

impl App {
    /// Adds app-level hooks: they wrap every method of every service,
    /// including services registered later (`app.hooks` in
    /// `@feathersjs/feathers`, `src/application.ts`).
    pub fn hooks(&self, hooks: &Hooks) -> &Self {
        if let Ok(mut current) = self.inner.hooks.write() {
            current.extend(hooks);
        }
        self.inner.hooks_generation.fetch_add(1, Ordering::AcqRel);
        self
    }
}

impl ServiceHandle {
    /// Adds service-level hooks (cumulative, as `service.hooks` in
    /// `@feathersjs/feathers`, `src/hooks.ts`).
    pub fn hooks(&self, hooks: &Hooks) -> &Self {
        if let Ok(mut current) = self.entry.hooks.write() {
            current.extend(hooks);
        }
        self.app
            .inner
            .hooks_generation
            .fetch_add(1, Ordering::AcqRel);
        self
    }

    pub(super) fn chain(&self, method: &str) -> Result<Chain<HookContext>> {
        let generation = self.app.inner.hooks_generation.load(Ordering::Acquire);
        if let Some((built, chain)) = self.entry.chains.read().map_err(poisoned)?.get(method)
            && *built == generation
        {
            return Ok(chain.clone());
        }
        let chain = {
            let app_hooks = self.app.inner.hooks.read().map_err(poisoned)?;
            let service_hooks = self.entry.hooks.read().map_err(poisoned)?;
            Chain::compile(&[&app_hooks, &service_hooks], method)
        };
        self.entry
            .chains
            .write()
            .map_err(poisoned)?
            .insert(method.to_owned(), (generation, chain.clone()));
        Ok(chain)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Params;
    use crate::app::testing::Echo;

    #[tokio::test]
    async fn hooks_added_after_use_take_effect() {
        // Feathers collects the chain on every call (`@feathersjs/feathers`,
        // `src/hooks.ts`); Plume caches chains and rebuilds them when hooks
        // change.
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        assert_eq!(
            svc.create(json!({}), Params::new()).await.unwrap(),
            json!({})
        );
        app.hooks(
            Hooks::new().before("create", async |ctx: &mut HookContext| {
                ctx.data = Some(json!({"by": "app hook"}));
                Ok(())
            }),
        );
        assert_eq!(
            svc.create(json!({}), Params::new()).await.unwrap(),
            json!({"by": "app hook"})
        );
    }
}
