//! Setting [`AuthenticationService`] up, the body of its `setup`: the
//! strategies' own setup, the configuration checks (with Feathers'
//! messages), the secret rule and a sign+verify self-test, so that a bad
//! configuration stops start-up rather than the first login; then the
//! hooks it installs on itself and on its entity services.

use std::sync::atomic::Ordering;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::configuration::missing_secret;
use super::{AuthenticationService, DEFAULT_AUTHENTICATION};
use crate::auth::config;
use crate::auth::strategy::StrategyContext;
use crate::error::poisoned;
use crate::{App, Error, HookContext, Hooks, Result};

impl AuthenticationService {
    /// `setup`: see the [`Service`](crate::Service) impl.
    pub(super) async fn run_setup(&self, app: &App, path: &str) -> Result<()> {
        *self.path.write().map_err(poisoned)? = Some(path.to_owned());
        if app.get(DEFAULT_AUTHENTICATION).is_none() {
            app.set(DEFAULT_AUTHENTICATION, Value::String(path.to_owned()));
        }
        self.set_up.store(true, Ordering::Release);
        for (name, strategy) in &self.registered_strategies()? {
            strategy
                .setup(&StrategyContext {
                    name,
                    service: self,
                })
                .await?;
        }
        self.setup_checks(app).await?;
        app.service(path)?
            .hooks(Hooks::new().before(["create", "remove"], no_service_events));
        self.install_entity_hooks()?;
        // A closed connection stops its expiry timer.
        app.on_disconnect(crate::auth::connection::disconnected);
        Ok(())
    }

    fn check_secret(&self, app: &App, config: &Map<String, Value>) -> Result<()> {
        let secret = config
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(missing_secret)?;
        let env = app
            .get("env")
            .and_then(|v| v.as_str().map(str::to_owned))
            .or_else(|| std::env::var("PLUME_ENV").ok())
            .unwrap_or_else(|| "development".to_owned());
        crate::auth::secret::check(secret, &env, &self.config_key)
    }

    async fn setup_checks(&self, app: &App) -> Result<()> {
        let config = self.shared_configuration();
        if !config.get("secret").is_some_and(Value::is_string) {
            return Err(missing_secret());
        }
        config::check_layout(&config, &self.config_key, &self.strategy_names())?;
        // Fails on bad jwtOptions now rather than at the first login.
        self.jwt_settings(&config, None)?;
        self.check_secret(app, &config)?;
        if !matches!(config.get("entity"), Some(Value::Null)) {
            let service = config
                .get("service")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    Error::general(
                        "The 'service' option is not set in the authentication configuration",
                    )
                })?;
            let handle = app
                .service(service)
                .map_err(|_| Error::general(format!("Can not find service '{service}'")))?;
            if !config.get("entityId").is_some_and(Value::is_string)
                && handle.service().id_field().is_none()
            {
                return Err(Error::general(format!(
                    "The '{service}' service does not have an 'id' property and no 'entityId' option is set."
                )));
            }
        }
        for (name, strategy) in &self.registered_strategies()? {
            strategy.verify_configuration(&StrategyContext {
                name,
                service: self,
            })?;
        }
        // Sign and verify once, so a wrong key, a key pair that does not
        // match or a broken crypto backend stops startup, not the first login.
        let probe = self.create_access_token(&Map::new(), None, None)?;
        self.verify_access_token(&probe, None, None)
            .await
            .map_err(|e| Error::general(format!("The token self-test failed: {}", e.message())))?;
        Ok(())
    }

    /// Installs the token lifecycle hooks (see the `lifecycle` module) on
    /// the entity service of every local strategy (its own `service` with
    /// stateless tokens) and on the top-level entity service.
    fn install_entity_hooks(&self) -> Result<()> {
        let app = self.app()?;
        // Entity service path → (password fields, id field).
        let mut targets: IndexMap<String, (Vec<String>, Option<String>)> = IndexMap::new();
        let config = self.shared_configuration();
        if !matches!(config.get("entity"), Some(Value::Null))
            && let Some(path) = config.get("service").and_then(Value::as_str)
        {
            let id = config
                .get("entityId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            targets.insert(path.to_owned(), (Vec::new(), id));
        }
        for name in self.strategy_names() {
            let ctx = StrategyContext {
                name: &name,
                service: self,
            };
            let Some(local) = self.get_strategy_as::<crate::auth::LocalStrategy>(&name) else {
                continue;
            };
            let settings = ctx.entity_settings();
            let (Some(path), Some(field)) = (settings.service, local.entity_password_field(&ctx))
            else {
                continue;
            };
            let entry = targets
                .entry(path)
                .or_insert_with(|| (Vec::new(), settings.entity_id.clone()));
            if !entry.0.contains(&field) {
                entry.0.push(field);
            }
        }
        for (path, (password_fields, id_field)) in targets {
            let id_field = id_field.or_else(|| {
                app.service(&path)
                    .ok()?
                    .service()
                    .id_field()
                    .map(str::to_owned)
            });
            crate::auth::lifecycle::install(self, &path, password_fields, id_field)?;
        }
        Ok(())
    }
}

/// Hides the auth service's own `created`/`removed` events: their data is
/// an access token, which must never be published to other clients
/// (Feathers publishes nothing for this service: `setup` in
/// `@feathersjs/authentication`, `src/service.ts`).
async fn no_service_events(ctx: &mut HookContext) -> Result<()> {
    ctx.event = None;
    Ok(())
}
