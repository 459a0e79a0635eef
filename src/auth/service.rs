//! [`AuthenticationService`]: logs in (`create`), logs out (`remove`),
//! signs and verifies access tokens, and holds the registered strategies.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use indexmap::IndexMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value, json};

use super::config::{self, DEFAULT_CONFIG_KEY, EntitySettings};
use super::revocation::{MemoryRevocationList, RevocationList};
use super::strategy::{AuthResult, AuthenticationStrategy, StrategyContext};
use super::throttle::{Throttle, ThrottleSettings};
use super::token::{self, JwtSettings};
use crate::error::poisoned;
use crate::{
    App, ClientAddr, Error, ErrorKind, HookContext, Hooks, Id, Method, Params, Result, Service,
    WeakApp,
};

/// The app setting that names the path of the default authentication
/// service; set by the first authentication service that is set up.
pub const DEFAULT_AUTHENTICATION: &str = "defaultAuthentication";

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
struct Defaults;

impl AuthenticationOverrides for Defaults {}

/// Keys built from the configured secret, kept until the secret changes.
struct Keys {
    algorithm: Algorithm,
    secret: String,
    public_key: Option<String>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

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

/// The effective configuration, shared between calls until a setting
/// changes.
type SharedConfig = Arc<Map<String, Value>>;

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
            keys: RwLock::new(None),
            configuration: RwLock::new(None),
            verified: super::verified::VerifiedTokens::default(),
            set_up: AtomicBool::new(false),
        }
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

    /// A copy of the effective configuration: the defaults under
    /// `app.get(config_key)`, current with the settings so changes to the
    /// setting apply at once (Feathers' `configuration` getter,
    /// `@feathersjs/authentication`, `src/core.ts`). `jwtOptions` are merged
    /// over the defaults key by key (Feathers replaces them). It is derived
    /// again only when a setting has changed since the last call.
    pub fn configuration(&self) -> Map<String, Value> {
        (*self.shared_configuration()).clone()
    }

    /// [`configuration`](Self::configuration) without the copy: the same
    /// map is shared until a setting changes. The authentication layer
    /// reads it several times per authenticated call.
    pub fn shared_configuration(&self) -> Arc<Map<String, Value>> {
        let Some(app) = self.app.upgrade() else {
            return Arc::new(config::effective(None));
        };
        // Read the version before the setting: a change in between leaves a
        // newer value under an older version, which the next call redoes.
        let version = app.settings_version();
        if let Ok(cached) = self.configuration.read()
            && let Some((cached_version, config)) = cached.as_ref()
            && *cached_version == version
        {
            return Arc::clone(config);
        }
        let config = Arc::new(config::effective(app.get(&self.config_key).as_ref()));
        if let Ok(mut cached) = self.configuration.write() {
            *cached = Some((version, Arc::clone(&config)));
        }
        config
    }

    /// The revocation list.
    pub fn revocations(&self) -> &Arc<dyn RevocationList> {
        &self.revocations
    }

    /// The login throttle.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    // ----- strategies -----

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

    // ----- tokens -----

    fn jwt_settings(
        &self,
        config: &Map<String, Value>,
        overrides: Option<&Map<String, Value>>,
    ) -> Result<JwtSettings> {
        let mut options = config
            .get("jwtOptions")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(overrides) = overrides {
            crate::config::merge_value(&mut options, Value::Object(overrides.clone()));
        }
        match options {
            Value::Object(options) => JwtSettings::parse(&options),
            _ => Err(Error::general("'jwtOptions' must be an object")),
        }
    }

    fn keys(&self, config: &Map<String, Value>, settings: &JwtSettings) -> Result<Arc<Keys>> {
        let secret = config
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(missing_secret)?;
        let public_key = config.get("publicKey").and_then(Value::as_str);
        if let Some(keys) = self.keys.read().map_err(poisoned)?.as_ref()
            && keys.algorithm == settings.algorithm
            && keys.secret == secret
            && keys.public_key.as_deref() == public_key
        {
            return Ok(Arc::clone(keys));
        }
        let decoding = if settings.is_symmetric() {
            token::decoding_key(settings.algorithm, secret)?
        } else {
            let public = public_key.ok_or_else(|| {
                Error::general(format!(
                    "The {:?} algorithm needs a PEM public key in '{}.publicKey' to verify tokens ('secret' is the private key)",
                    settings.algorithm, self.config_key
                ))
            })?;
            token::decoding_key(settings.algorithm, public)?
        };
        let keys = Arc::new(Keys {
            algorithm: settings.algorithm,
            secret: secret.to_owned(),
            public_key: public_key.map(str::to_owned),
            encoding: token::encoding_key(settings.algorithm, secret)?,
            decoding,
        });
        *self.keys.write().map_err(poisoned)? = Some(Arc::clone(&keys));
        Ok(keys)
    }

    /// Signs a new access token with `payload` as its custom claims, the
    /// configured `jwtOptions` merged with `options`, and the configured
    /// secret or `secret` (Feathers' `createAccessToken`,
    /// `@feathersjs/authentication`, `src/core.ts`). Registered claims in
    /// `payload` are refused.
    pub fn create_access_token(
        &self,
        payload: &Map<String, Value>,
        options: Option<&Map<String, Value>>,
        secret: Option<&str>,
    ) -> Result<String> {
        let config = self.shared_configuration();
        let settings = self.jwt_settings(&config, options)?;
        match secret {
            Some(secret) => token::sign(
                payload,
                &settings,
                &token::encoding_key(settings.algorithm, secret)?,
            ),
            None => token::sign(payload, &settings, &self.keys(&config, &settings)?.encoding),
        }
    }

    /// Verifies an access token against the configured `jwtOptions` merged
    /// with `options`, with the configured key or `secret` (for asymmetric
    /// algorithms, a PEM public key), and refuses revoked tokens; returns
    /// the claims (Feathers' `verifyAccessToken`, `@feathersjs/authentication`,
    /// `src/core.ts`).
    pub async fn verify_access_token(
        &self,
        token: &str,
        options: Option<&Map<String, Value>>,
        secret: Option<&str>,
    ) -> Result<Map<String, Value>> {
        let config = self.shared_configuration();
        // The common case, the configured options and key, remembers the
        // tokens it verified (the private `verified` module says why that
        // is safe); revocation is checked below every time.
        let cacheable = options.is_none() && secret.is_none();
        let remembered = cacheable
            .then(|| self.verified.get(&config, token))
            .flatten();
        let claims = if let Some(claims) = remembered {
            (*claims).clone()
        } else {
            let settings = self.jwt_settings(&config, options)?;
            let claims = match secret {
                Some(secret) => token::verify(
                    token,
                    &settings,
                    &token::decoding_key(settings.algorithm, secret)?,
                )?,
                None => token::verify(token, &settings, &self.keys(&config, &settings)?.decoding)?,
            };
            if cacheable {
                self.verified
                    .insert(&config, token, Arc::new(claims.clone()));
            }
            claims
        };
        if let Some(jti) = claims.get("jti").and_then(Value::as_str)
            && self.revocations.is_revoked(jti).await?
        {
            return Err(revoked());
        }
        // A password change or a removed entity revokes every token of the
        // subject issued until then.
        if let Some(sub) = claims.get("sub").and_then(Value::as_str)
            && let Some(at) = self.revocations.subject_revoked_at(sub).await?
            && claims
                .get("iat")
                .and_then(Value::as_u64)
                .is_none_or(|iat| iat <= at)
        {
            return Err(revoked());
        }
        Ok(claims)
    }

    /// Revokes every token of the subject `sub` (an entity id as a token
    /// subject) issued until now, and makes the real-time connections
    /// logged in with one leave every channel. Called when the entity's
    /// password changes or the entity is removed; an app may call it too
    /// (to sign a user out everywhere).
    pub async fn revoke_subject(&self, sub: &str) -> Result<()> {
        let at = token::now();
        self.revocations.revoke_subject(sub, at).await?;
        if let Ok(app) = self.app() {
            super::connection::revoke(&app, None, |claims| {
                claims.get("sub").and_then(Value::as_str) == Some(sub)
                    && claims
                        .get("iat")
                        .and_then(Value::as_u64)
                        .is_none_or(|iat| iat <= at)
            });
        }
        Ok(())
    }

    /// A token issued in the second its subject was revoked would carry
    /// the same `iat` as the revoked ones and be refused with them; such
    /// a login waits for the next second (at most about one).
    async fn wait_past_revocation(&self, options: &Map<String, Value>) -> Result<()> {
        let Some(sub) = options.get("subject").and_then(Value::as_str) else {
            return Ok(());
        };
        for _ in 0..30 {
            match self.revocations.subject_revoked_at(sub).await? {
                Some(at) if at >= token::now() => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

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

    fn allowed_strategies(&self, config: &Map<String, Value>, params: &Params) -> Vec<String> {
        params
            .extensions
            .get::<AuthCallOptions>()
            .and_then(|o| o.auth_strategies.clone())
            .or_else(|| string_list(config.get("authStrategies")))
            .unwrap_or_default()
    }

    fn emit(
        &self,
        event: &str,
        method: Method,
        data: Option<&Value>,
        params: &Params,
        result: &Value,
    ) {
        let (Ok(app), Some(path)) = (self.app(), self.path()) else {
            return;
        };
        let mut ctx = HookContext::new(app.clone(), path, method);
        ctx.params = params.clone();
        ctx.data = data.cloned();
        ctx.result = Some(result.clone());
        app.emit(event, result, &ctx);
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
        super::secret::check(secret, &env, &self.config_key)
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
        let strategies: Vec<(String, Arc<dyn AuthenticationStrategy>)> = self
            .strategies
            .read()
            .map_err(poisoned)?
            .iter()
            .map(|(n, s)| (n.clone(), Arc::clone(s)))
            .collect();
        for (name, strategy) in &strategies {
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
}

impl AuthenticationService {
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
            let Some(local) = self.get_strategy_as::<super::LocalStrategy>(&name) else {
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
            super::lifecycle::install(self, &path, password_fields, id_field)?;
        }
        Ok(())
    }
}

fn revoked() -> Error {
    Error::not_authenticated("jwt revoked").with_data(json!({"name": "JsonWebTokenError"}))
}

fn missing_secret() -> Error {
    Error::general("A 'secret' must be provided in your authentication configuration")
}

fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    value?.as_array().map(|items| {
        items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect()
    })
}

/// Hides the auth service's own `created`/`removed` events: their data is
/// an access token, which must never be published to other clients
/// (Feathers publishes nothing for this service: `setup` in
/// `@feathersjs/authentication`, `src/service.ts`).
async fn no_service_events(ctx: &mut HookContext) -> Result<()> {
    ctx.event = None;
    Ok(())
}

#[async_trait]
impl Service for AuthenticationService {
    /// Logs in (Feathers' `create`, `@feathersjs/authentication`,
    /// `src/service.ts`): authenticates `data` with the strategy it names
    /// and returns `{accessToken, authentication: {strategy, payload}, <entity>}`.
    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        let config = self.shared_configuration();
        let allowed = self.allowed_strategies(&config, params);
        if allowed.is_empty() {
            return Err(Error::not_authenticated(
                "No authentication strategies allowed for creating a JWT (`authStrategies`)",
            ));
        }
        // Throttle external login attempts per account and per address.
        let throttled = params.is_external();
        let throttle = ThrottleSettings::from_config(&config, &self.config_key)?;
        let address = params.extensions.get::<ClientAddr>().map(|a| a.0);
        let named = data
            .get("strategy")
            .and_then(Value::as_str)
            .and_then(|name| Some((name, self.get_strategy(name)?)));
        let account = match &named {
            Some((name, strategy)) => {
                let ctx = StrategyContext {
                    name,
                    service: self,
                };
                // Before the throttle, so hopeless attempts (an over-long
                // login name) take no room in it.
                strategy.screen(&ctx, data)?;
                strategy.throttle_key(&ctx, data)
            }
            None => None,
        };
        // The attempt is reserved before any password is verified: of any
        // number of concurrent logins, at most the limit are evaluated.
        let throttled = throttled && named.as_ref().is_none_or(|(_, s)| s.throttled());
        let reservation = if throttled {
            Some(
                self.throttle
                    .reserve(&throttle, account.as_deref(), address)?,
            )
        } else {
            None
        };
        let auth_result = match self.authenticate(data, params, &allowed).await {
            Ok(result) => {
                if let Some(reservation) = reservation {
                    reservation.succeeded();
                }
                result
            }
            Err(error) => {
                // A failed login keeps its reservation (dropped below);
                // any other error was not a guess and frees it.
                if let Some(reservation) = reservation
                    && error.kind() != ErrorKind::NotAuthenticated
                {
                    reservation.released();
                }
                return Err(error);
            }
        };
        let has_token = auth_result
            .get("accessToken")
            .is_some_and(|t| t.as_str().is_some_and(|s| !s.is_empty()));
        let result = if has_token {
            // The jwt strategy: the same token back, never a longer-lived one.
            Value::Object(auth_result)
        } else {
            let payload = self.get_payload(&auth_result, params).await?;
            let options = self.get_token_options(&auth_result, params).await?;
            let secret = params
                .extensions
                .get::<AuthCallOptions>()
                .and_then(|o| o.secret.clone());
            self.wait_past_revocation(&options).await?;
            let access_token =
                self.create_access_token(&payload, Some(&options), secret.as_deref())?;
            let decoded = token::peek_claims(&access_token).unwrap_or_default();
            let mut result = Map::new();
            result.insert("accessToken".to_owned(), Value::String(access_token));
            let mut authentication = Map::new();
            for (key, value) in auth_result {
                if key == "authentication" {
                    if let Value::Object(map) = value {
                        authentication = map;
                    }
                } else {
                    result.insert(key, value);
                }
            }
            authentication.insert("payload".to_owned(), Value::Object(decoded));
            result.insert("authentication".to_owned(), Value::Object(authentication));
            Value::Object(result)
        };
        // The connection learns its login before `login` listeners run, so
        // they see it authenticated, as in Feathers, whose
        // `@feathersjs/authentication` `src/service.ts` runs the connection
        // hook before the `login` event (#2908).
        if let (Some(connection), Ok(app)) = (&params.connection, self.app()) {
            let entity = config.get("entity").and_then(Value::as_str);
            let keep_open = config
                .get("keepSocketOnExpiry")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            super::connection::login(&app, connection, &result, entity, keep_open);
        }
        if params.is_external() {
            self.emit("login", Method::Create, Some(data), params, &result);
        }
        Ok(result)
    }

    /// Logs out (Feathers' `remove`, `@feathersjs/authentication`,
    /// `src/service.ts`): verifies `params.authentication` (whose token
    /// must equal `id` when one is given), then revokes that token until
    /// it expires (Plume; Feathers only verifies).
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let authentication = params.authentication.clone().unwrap_or(Value::Null);
        if let Some(id) = id {
            let token = authentication.get("accessToken").and_then(Value::as_str);
            if token != Some(id.to_string().as_str()) {
                return Err(Error::not_authenticated("Invalid access token"));
            }
        }
        let config = self.shared_configuration();
        let allowed = string_list(config.get("authStrategies")).unwrap_or_default();
        let result = self.authenticate(&authentication, params, &allowed).await?;
        let payload = result.get("authentication").and_then(|a| a.get("payload"));
        if let Some(payload) = payload
            && let (Some(jti), Some(exp)) = (
                payload.get("jti").and_then(Value::as_str),
                payload.get("exp").and_then(Value::as_u64),
            )
        {
            self.revocations.revoke(jti, exp).await?;
            // The same token on other connections (a REST logout of a
            // token a socket logged in with) stops receiving events now.
            if let Ok(app) = self.app() {
                super::connection::revoke(&app, params.connection.as_ref(), |claims| {
                    claims.get("jti").and_then(Value::as_str) == Some(jti)
                });
            }
        }
        let result = Value::Object(result);
        if let Some(connection) = &params.connection {
            super::connection::logout(connection, &result);
        }
        if params.is_external() {
            self.emit("logout", Method::Remove, None, params, &result);
        }
        Ok(result)
    }

    fn methods(&self) -> &'static [Method] {
        &[Method::Create, Method::Remove]
    }

    /// Checks the configuration with Feathers' messages (`setup` in
    /// `@feathersjs/authentication`, `src/service.ts`), runs
    /// the strategies' setup and a sign+verify self-test, and makes this
    /// the app's default authentication service if there is none yet.
    async fn setup(&self, app: &App, path: &str) -> Result<()> {
        *self.path.write().map_err(poisoned)? = Some(path.to_owned());
        if app.get(DEFAULT_AUTHENTICATION).is_none() {
            app.set(DEFAULT_AUTHENTICATION, Value::String(path.to_owned()));
        }
        self.set_up.store(true, Ordering::Release);
        let strategies: Vec<(String, Arc<dyn AuthenticationStrategy>)> = self
            .strategies
            .read()
            .map_err(poisoned)?
            .iter()
            .map(|(n, s)| (n.clone(), Arc::clone(s)))
            .collect();
        for (name, strategy) in &strategies {
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
        app.on_disconnect(super::connection::disconnected);
        Ok(())
    }
}
