//! [`AuthenticationService`]: logs in (`create`), logs out (`remove`),
//! signs and verifies access tokens, and holds the registered strategies.
//!
//! This file holds the type, its constructors and accessors, and its
//! [`Service`] impl; the rest is split by job:
//!
//! - `strategies`: the strategy registry, `authenticate` and `parse`.
//! - `configuration`: the effective configuration and the key cache.
//! - `tokens`: signing, verifying and revoking access tokens.
//! - `overrides`: [`AuthenticationOverrides`] and [`AuthCallOptions`], the
//!   payload and options of new tokens.
//! - `login`: `create` and `remove` (throttling, connections, events).
//! - `setup`: the set-up checks, the token self-test and the entity hooks.

mod configuration;
mod login;
mod overrides;
mod setup;
mod strategies;
mod tokens;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::config::DEFAULT_CONFIG_KEY;
use super::revocation::{MemoryRevocationList, RevocationList};
use super::strategy::AuthenticationStrategy;
use super::throttle::{SharedThrottle, Throttle};
use crate::{App, Error, Id, Method, Params, Result, Service, WeakApp};
use configuration::{Keys, SharedConfig};
use overrides::Defaults;

pub use overrides::{AuthCallOptions, AuthenticationOverrides};

/// The app setting that names the path of the default authentication
/// service; set by the first authentication service that is set up.
pub const DEFAULT_AUTHENTICATION: &str = "defaultAuthentication";

/// The authentication service: a [`Service`] with `create` (log in) and
/// `remove` (log out), plus the methods strategies and hooks use.
///
/// ```
/// use plume::App;
/// use plume::auth::{AuthenticationService, JwtStrategy, LocalStrategy};
/// use plume::store::MemoryService;
/// use serde_json::json;
///
/// # fn main() -> plume::Result<()> {
/// let app = App::new();
/// app.set("authentication", json!({
///     "secret": "a long random secret of at least 32 bytes",
///     "entity": "user", "service": "users",
///     "authStrategies": ["jwt", "local"],
///     "local": {"usernameField": "email", "passwordField": "password"}
/// }));
/// app.use_service("users", MemoryService::new())?;
/// let auth = AuthenticationService::new(&app);
/// auth.register("jwt", JwtStrategy::new())?;
/// auth.register("local", LocalStrategy::new())?;
/// app.use_service("authentication", auth)?;
/// # Ok(())
/// # }
/// ```
pub struct AuthenticationService {
    app: WeakApp,
    config_key: String,
    path: RwLock<Option<String>>,
    strategies: RwLock<IndexMap<String, Arc<dyn AuthenticationStrategy>>>,
    overrides: Arc<dyn AuthenticationOverrides>,
    revocations: Arc<dyn RevocationList>,
    throttle: Throttle,
    /// The counters every instance shares, when clustered.
    shared_throttle: Option<Arc<dyn SharedThrottle>>,
    keys: RwLock<Option<Arc<Keys>>>,
    /// The effective configuration and the app settings version it was
    /// derived from: every authenticated call reads it.
    configuration: RwLock<Option<(u64, SharedConfig)>>,
    /// Tokens that passed [`verify_access_token`](Self::verify_access_token).
    verified: super::verified::VerifiedTokens,
    set_up: AtomicBool,
}

impl fmt::Debug for AuthenticationService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationService")
            .field("config_key", &self.config_key)
            .field("path", &self.path())
            .field("strategies", &self.strategy_names())
            .finish_non_exhaustive()
    }
}

impl AuthenticationService {
    /// A service reading `app.get("authentication")`.
    pub fn new(app: &App) -> Self {
        Self::with_config_key(app, DEFAULT_CONFIG_KEY)
    }

    /// A service reading `app.get(config_key)`; two services with
    /// different keys can coexist. Makes sure the setting exists (as the
    /// constructor in `@feathersjs/authentication`, `src/core.ts`, does).
    pub fn with_config_key(app: &App, config_key: &str) -> Self {
        if app.get(config_key).is_none() {
            app.set(config_key, Value::Object(Map::new()));
        }
        Self {
            app: app.downgrade(),
            config_key: config_key.to_owned(),
            path: RwLock::new(None),
            strategies: RwLock::new(IndexMap::new()),
            overrides: Arc::new(Defaults),
            revocations: Arc::new(MemoryRevocationList::new()),
            throttle: Throttle::new(),
            shared_throttle: None,
            keys: RwLock::new(None),
            configuration: RwLock::new(None),
            verified: super::verified::VerifiedTokens::default(),
            set_up: AtomicBool::new(false),
        }
    }

    /// Counts login attempts in `shared` too, the counters every instance
    /// of the app shares (e.g. `cluster::RedisBus::throttle`), so that the
    /// limits of `authentication.throttle` hold across instances together.
    #[must_use]
    pub fn with_shared_throttle(mut self, shared: Arc<dyn SharedThrottle>) -> Self {
        self.shared_throttle = Some(shared);
        self
    }

    /// Replaces the overridable steps (a custom authentication service).
    #[must_use]
    pub fn with_overrides(mut self, overrides: impl AuthenticationOverrides) -> Self {
        self.overrides = Arc::new(overrides);
        self
    }

    /// Keeps revoked tokens in `list` instead of memory.
    #[must_use]
    pub fn with_revocation_list(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocations = list;
        self
    }

    /// The authentication service of `app` at `path`, or at the path named
    /// by the `defaultAuthentication` setting, or at `authentication`.
    /// `None` when there is no such service or it is of another type.
    pub fn from_app(app: &App, path: Option<&str>) -> Option<Arc<Self>> {
        let default = app
            .get(DEFAULT_AUTHENTICATION)
            .and_then(|v| v.as_str().map(str::to_owned));
        let path = path
            .map(str::to_owned)
            .or(default)
            .unwrap_or_else(|| DEFAULT_CONFIG_KEY.to_owned());
        app.service(&path).ok()?.downcast::<Self>()
    }

    /// The config key this service reads.
    pub fn config_key(&self) -> &str {
        &self.config_key
    }

    /// The path the service is registered at, once set up.
    pub fn path(&self) -> Option<String> {
        self.path.read().ok().and_then(|p| p.clone())
    }

    /// The app.
    pub fn app(&self) -> Result<App> {
        self.app
            .upgrade()
            .ok_or_else(|| Error::internal("the authentication service outlived its app"))
    }

    /// The revocation list.
    pub fn revocations(&self) -> &Arc<dyn RevocationList> {
        &self.revocations
    }

    /// The login throttle.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }
}

#[async_trait]
impl Service for AuthenticationService {
    /// Logs in (Feathers' `create`, `@feathersjs/authentication`,
    /// `src/service.ts`): authenticates `data` with the strategy it names
    /// and returns `{accessToken, authentication: {strategy, payload}, <entity>}`.
    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        self.log_in(data, params).await
    }

    /// Logs out (Feathers' `remove`, `@feathersjs/authentication`,
    /// `src/service.ts`): verifies `params.authentication` (whose token
    /// must equal `id` when one is given), then revokes that token until
    /// it expires (Plume; Feathers only verifies).
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        self.log_out(id, params).await
    }

    fn methods(&self) -> &'static [Method] {
        &[Method::Create, Method::Remove]
    }

    /// Checks the configuration with Feathers' messages (`setup` in
    /// `@feathersjs/authentication`, `src/service.ts`), runs
    /// the strategies' setup and a sign+verify self-test, and makes this
    /// the app's default authentication service if there is none yet.
    async fn setup(&self, app: &App, path: &str) -> Result<()> {
        self.run_setup(app, path).await
    }
}
