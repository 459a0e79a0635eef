//! Fixtures shared by the authentication tests.
//!
//! - [`Strategy1`] and [`Strategy2`]: Feathers' mock strategies from
//!   `packages/authentication/test/fixtures.ts`.
//! - [`local_app`]: the app of `packages/authentication-local/test/fixture.ts`.
//! - [`ParamsEcho`]: a service whose `get`/`find` answer with the params
//!   they saw, so tests can look at what hooks set.
//! - Token forging helpers for the attack battery.

use std::collections::HashMap;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plume::auth::{AuthResult, AuthenticationService, AuthenticationStrategy, StrategyContext};
use plume::store::MemoryService;
use plume::{
    App, Error, HookContext, Hooks, Id, Method, Paginate, Params, Provider, Result, Service,
    authenticate, hash_password, protect,
};
use serde_json::{Map, Value, json};

/// A secret that passes the production checks (48 bytes).
pub(crate) const STRONG_SECRET: &str = "a-test-secret-that-is-long-enough-for-production!";

/// Feathers' `Strategy1`: succeeds for `username: "David"` or `both: true`.
pub(crate) struct Strategy1;

impl Strategy1 {
    pub(crate) fn result() -> Value {
        json!({"user": {"id": 123, "name": "Dave"}, "authenticated": true})
    }
}

#[async_trait]
impl AuthenticationStrategy for Strategy1 {
    async fn authenticate(
        &self,
        _ctx: &StrategyContext<'_>,
        data: &Value,
        _params: &Params,
    ) -> Result<AuthResult> {
        if data.get("username") == Some(&json!("David")) || data.get("both").is_some() {
            return Ok(Self::result().as_object().cloned().unwrap_or_default());
        }
        Err(Error::not_authenticated("Invalid Dave"))
    }

    fn parse(
        &self,
        _ctx: &StrategyContext<'_>,
        headers: &HashMap<String, String>,
    ) -> Result<Option<Value>> {
        Ok(headers.contains_key("x-is-dave").then(Self::result))
    }
}

/// Feathers' `Strategy2`: succeeds for `v2: true, password: "supersecret"`
/// and answers with the params it saw.
pub(crate) struct Strategy2;

impl Strategy2 {
    pub(crate) fn result() -> Value {
        json!({"user": {"name": "V2", "version": 2}, "authenticated": true})
    }
}

#[async_trait]
impl AuthenticationStrategy for Strategy2 {
    async fn authenticate(
        &self,
        _ctx: &StrategyContext<'_>,
        data: &Value,
        params: &Params,
    ) -> Result<AuthResult> {
        let ok = data.get("v2") == Some(&json!(true))
            && data.get("password") == Some(&json!("supersecret"));
        if !ok {
            return Err(Error::not_authenticated("Invalid v2 user"));
        }
        let mut result = Self::result().as_object().cloned().unwrap_or_default();
        result.insert("authentication".into(), data.clone());
        result.insert(
            "params".into(),
            json!({"authenticated": params.authenticated, "query": params.query}),
        );
        Ok(result)
    }

    fn parse(
        &self,
        _ctx: &StrategyContext<'_>,
        headers: &HashMap<String, String>,
    ) -> Result<Option<Value>> {
        Ok(headers.contains_key("x-is-v2").then(Self::result))
    }
}

/// A service whose `get` and `find` answer with what they saw in the params.
pub(crate) struct ParamsEcho;

pub(crate) fn params_json(params: &Params) -> Value {
    json!({
        "provider": params.provider.map(Provider::as_str),
        "authenticated": params.authenticated,
        "authentication": params.authentication,
        "entities": params.entities,
        "query": params.query,
    })
}

#[async_trait]
impl Service for ParamsEcho {
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        Ok(json!({"id": id.to_value(), "params": params_json(params)}))
    }
    async fn find(&self, params: &Params) -> Result<Value> {
        Ok(json!({"params": params_json(params)}))
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Get, Method::Find]
    }
}

/// A service without an id property (Feathers: an object without `id`).
pub(crate) struct NoIdService;

#[async_trait]
impl Service for NoIdService {}

/// Sets the authentication config of `app`, in the `test` environment
/// unless the test chose another: Feathers' suites sign with
/// `supersecret`, which Plume refuses everywhere else.
pub(crate) fn configure(app: &App, config: Value) {
    if app.get("env").is_none() {
        app.set("env", json!("test"));
    }
    app.set("authentication", config);
}

/// The core-test app: `users` (memory), the auth service with `first`
/// and `second`, config `{entity: user, service: users, authStrategies:
/// [first], secret: supersecret}`.
pub(crate) fn core_app() -> (App, std::sync::Arc<AuthenticationService>) {
    let app = App::new();
    configure(
        &app,
        json!({"entity": "user", "service": "users", "secret": "supersecret", "authStrategies": ["first"]}),
    );
    app.use_service("users", MemoryService::new()).unwrap();
    let auth = AuthenticationService::new(&app);
    auth.register("first", Strategy1).unwrap();
    auth.register("second", Strategy2).unwrap();
    let handle = app.use_service("authentication", auth).unwrap();
    let auth = handle.downcast::<AuthenticationService>().unwrap();
    (app, auth)
}

/// The auth service registered in `app` at `authentication`.
pub(crate) fn auth_of(app: &App) -> std::sync::Arc<AuthenticationService> {
    AuthenticationService::from_app(app, None).expect("an authentication service")
}

/// Marks `ctx.result` of external `get`s with `fromGet: true` (the
/// fixture's get hook).
async fn from_get(ctx: &mut HookContext) -> Result<()> {
    if ctx.params.is_external()
        && let Some(Value::Object(result)) = ctx.result.as_mut()
    {
        result.insert("fromGet".into(), json!(true));
    }
    Ok(())
}

/// The authentication-local fixture app, with `extra` merged into the
/// authentication config. Set up and ready.
pub(crate) async fn local_app_with(extra: Value) -> App {
    let app = App::new();
    app.set("env", json!("test"));
    let mut config = json!({
        "entity": "user",
        "service": "users",
        "secret": "supersecret",
        "authStrategies": ["local", "jwt"],
        "parseStrategies": ["jwt"],
        "local": {"usernameField": "email", "passwordField": "password"}
    });
    if let (Some(base), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    configure(&app, config);
    let users = app
        .use_service(
            "users",
            MemoryService::new()
                .multi_methods([Method::Create])
                .paginate(Paginate {
                    default: 10,
                    max: 20,
                }),
        )
        .unwrap();
    users.hooks(
        Hooks::new()
            .around("all", protect(["password"]))
            .before("create", hash_password("password"))
            .after("get", from_get),
    );
    let auth = AuthenticationService::new(&app);
    auth.register("jwt", plume::JwtStrategy::new()).unwrap();
    auth.register("local", plume::LocalStrategy::new()).unwrap();
    app.use_service("authentication", auth).unwrap();
    app.use_service("protected", ParamsEcho)
        .unwrap()
        .hooks(Hooks::new().before("all", authenticate(["jwt"])));
    app.setup().await.unwrap();
    app
}

/// [`local_app_with`] and no extra config.
pub(crate) async fn local_app() -> App {
    local_app_with(json!({})).await
}

/// Creates the fixture user `{email, password}` and returns it (internal).
pub(crate) async fn create_user(app: &App, email: &str, password: &str) -> Value {
    app.service("users")
        .unwrap()
        .create(json!({"email": email, "password": password}), Params::new())
        .await
        .unwrap()
}

/// Logs in with the local strategy as an external (REST) caller.
pub(crate) async fn login(app: &App, email: &str, password: &str) -> Result<Value> {
    app.service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "local", "email": email, "password": password}),
            Params::external(Provider::Rest),
        )
        .await
}

/// Params of an external call that carries `{strategy: jwt, accessToken}`.
pub(crate) fn with_token(token: &str) -> Params {
    let mut params = Params::external(Provider::Rest);
    params.authentication = Some(json!({"strategy": "jwt", "accessToken": token}));
    params
}

/// Asserts the error is a 401 NotAuthenticated on the wire.
#[track_caller]
pub(crate) fn assert_401(error: &Error) {
    let wire = serde_json::to_value(error).unwrap();
    assert_eq!(wire["name"], json!("NotAuthenticated"), "{wire}");
    assert_eq!(wire["code"], json!(401), "{wire}");
    assert_eq!(wire["className"], json!("not-authenticated"), "{wire}");
}

/// The claims of a token, without verification.
pub(crate) fn claims(token: &str) -> Map<String, Value> {
    plume::auth::token::peek_claims(token).unwrap()
}

/// The header of a token, without verification.
pub(crate) fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// base64url of a JSON value.
pub(crate) fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Signs `claims` with HMAC `alg` and `secret`, with header `typ`.
pub(crate) fn hmac_token(
    alg: jsonwebtoken::Algorithm,
    typ: Option<&str>,
    claims: &Value,
    secret: &[u8],
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    plume::auth::token::now()
}

/// Valid claims for the default config (`aud`, `iss`, `exp` in an hour).
pub(crate) fn good_claims(sub: &str) -> Value {
    json!({
        "iat": now(), "exp": now() + 3600, "aud": "https://yourdomain.com",
        "iss": "feathers", "sub": sub, "jti": uuid::Uuid::new_v4().to_string()
    })
}
