//! The app's lifecycle: [`App::setup`] and [`App::teardown`] run every
//! service's own, inside the app's lifecycle hooks; a service registered
//! after setup is set up on its own.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use plume_hooks::{BoxFuture, Chain, Terminal};

use super::registry::ServiceEntry;
use super::{App, Hooks};
use crate::error::poisoned;
use crate::{HookContext, Method, Result};

impl App {
    /// Adds around hooks for the app's own lifecycle: register them for the
    /// methods `"setup"` and `"teardown"` (Feathers: `@feathersjs/feathers`,
    /// `src/application.ts`).
    pub fn lifecycle_hooks(&self, hooks: &Hooks) -> &Self {
        if let Ok(mut current) = self.inner.lifecycle_hooks.write() {
            current.extend(hooks);
        }
        self
    }

    /// True once [`setup`](Self::setup) has run and until
    /// [`teardown`](Self::teardown).
    pub fn is_set_up(&self) -> bool {
        self.inner.set_up.load(Ordering::Acquire)
    }

    /// Sets up every service in registration order, each awaited
    /// (`app.setup` in `@feathersjs/feathers`, `src/application.ts`), inside
    /// the app's `setup` lifecycle hooks.
    pub async fn setup(&self) -> Result<()> {
        self.run_lifecycle("setup").await
    }

    /// Tears down every service in registration order (`app.teardown` in
    /// `@feathersjs/feathers`, `src/application.ts`), inside the app's
    /// `teardown` lifecycle hooks.
    pub async fn teardown(&self) -> Result<()> {
        self.run_lifecycle("teardown").await
    }

    async fn run_lifecycle(&self, name: &str) -> Result<()> {
        let chain = {
            let hooks = self.inner.lifecycle_hooks.read().map_err(poisoned)?;
            Chain::compile(&[&hooks], name)
        };
        let mut ctx = HookContext::new(self.clone(), "", Method::parse(name));
        chain.run(&mut ctx, &Lifecycle).await
    }

    /// Sets up a service just registered, when the app was already set up.
    pub(super) fn set_up_if_late(&self, entry: &Arc<ServiceEntry>) {
        if self.inner.set_up.load(Ordering::Acquire) {
            // Registered after setup: set up now (as `use` in
            // `@feathersjs/feathers`, `src/application.ts`), without making
            // registration async.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let app = self.clone();
                let entry = Arc::clone(entry);
                runtime.spawn(async move {
                    if let Err(error) = entry.service.setup(&app, &entry.path).await {
                        tracing::error!(path = %entry.path, %error, "service setup failed");
                    }
                });
            }
        }
    }
}

/// The innermost step of the lifecycle chains.
struct Lifecycle;

impl Terminal<HookContext> for Lifecycle {
    fn call<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let app = ctx.app.clone();
            let entries: Vec<Arc<ServiceEntry>> = app
                .inner
                .services
                .read()
                .map_err(poisoned)?
                .values()
                .cloned()
                .collect();
            let setup = ctx.method.as_str() == "setup";
            for entry in entries {
                if setup {
                    entry.service.setup(&app, &entry.path).await?;
                } else {
                    entry.service.teardown(&app, &entry.path).await?;
                }
            }
            app.inner.set_up.store(setup, Ordering::Release);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::Service;

    #[tokio::test]
    async fn setup_and_teardown_call_services_in_order() {
        // Feathers: `app.setup`/`app.teardown` in `@feathersjs/feathers`,
        // `src/application.ts`.
        struct Tracked(&'static str, Arc<Mutex<Vec<String>>>);
        #[async_trait]
        impl Service for Tracked {
            async fn setup(&self, _app: &App, path: &str) -> Result<()> {
                self.1
                    .lock()
                    .unwrap()
                    .push(format!("setup {} at {path}", self.0));
                Ok(())
            }
            async fn teardown(&self, _app: &App, path: &str) -> Result<()> {
                self.1
                    .lock()
                    .unwrap()
                    .push(format!("teardown {} at {path}", self.0));
                Ok(())
            }
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = App::new();
        app.use_service("first", Tracked("a", Arc::clone(&log)))
            .unwrap();
        app.use_service("/second/", Tracked("b", Arc::clone(&log)))
            .unwrap();
        assert!(!app.is_set_up());
        app.setup().await.unwrap();
        assert!(app.is_set_up());
        app.teardown().await.unwrap();
        assert!(!app.is_set_up());
        assert_eq!(
            *log.lock().unwrap(),
            [
                "setup a at first",
                "setup b at second",
                "teardown a at first",
                "teardown b at second"
            ]
        );
    }
}
