//! Port of `packages/authentication/test/core.test.ts` ("authentication/core").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use plume::auth::{AuthResult, AuthenticationService, AuthenticationStrategy, StrategyContext};
use plume::{App, Params, Result};
use serde_json::{Map, Value, json};

use super::support::{Strategy1, Strategy2, claims, configure, core_app, header, hmac_token, now};

fn allowed(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

// "infers configuration from settings schema" —
// `@feathersjs/authentication`, `test/core.test.ts`: the configuration is the
// defaults under the app setting, recomputed on every access.
#[tokio::test]
async fn infers_configuration_from_settings() {
    let (app, auth) = core_app();
    let config = auth.configuration();
    assert_eq!(config["entity"], json!("user"));
    assert_eq!(config["authStrategies"], json!(["first"]));
    app.set("authentication", json!({"entity": "member", "secret": "x"}));
    let config = auth.configuration();
    assert_eq!(config["entity"], json!("member"));
    assert_eq!(config["authStrategies"], json!([]), "default list");
}

// "throws an error when app is not provided" —
// `@feathersjs/authentication`, `test/core.test.ts`. Rust cannot build the
// service without an app; what can still go wrong is the app being dropped
// while the service lives on, which must be an error, not a panic.
#[tokio::test]
async fn throws_an_error_when_app_is_not_provided() {
    let app = App::new();
    let auth = AuthenticationService::new(&app);
    drop(app);
    let err = auth.app().unwrap_err();
    assert_eq!(err.code(), 500);
}

// "sets defaults" — `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn sets_defaults() {
    let app = App::new();
    let auth = AuthenticationService::new(&app);
    let config = auth.configuration();
    assert_eq!(config["authStrategies"], json!([]));
    assert_eq!(
        config["jwtOptions"],
        json!({"header": {"typ": "access"}, "audience": "https://yourdomain.com",
               "issuer": "feathers", "algorithm": "HS256", "expiresIn": "1d"})
    );
    assert!(config.get("entity").is_none() && config.get("secret").is_none());
    // Each access is a new copy.
    let mut copy = auth.configuration();
    copy.insert("entity".into(), json!("changed"));
    assert!(auth.configuration().get("entity").is_none());
}

// "allows to override jwtOptions, does not merge" —
// `@feathersjs/authentication`, `test/core.test.ts`. Plume is stricter
// (DESIGN.md, README): a user's jwtOptions are merged over the defaults, so
// `expiresIn: "2h"` keeps `typ`, `aud` and `iss`.
#[tokio::test]
async fn allows_to_override_jwt_options_and_merges_them() {
    let app = App::new();
    configure(
        &app,
        json!({"secret": "supersecret", "jwtOptions": {"expiresIn": "2h"}}),
    );
    let auth = AuthenticationService::new(&app);
    let token = auth.create_access_token(&Map::new(), None, None).unwrap();
    let c = claims(&token);
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        7200
    );
    assert_eq!(c["aud"], json!("https://yourdomain.com"));
    assert_eq!(c["iss"], json!("feathers"));
    assert_eq!(header(&token)["typ"], json!("access"));
}

// "sets configKey and defaultAuthentication" —
// `@feathersjs/authentication`, `test/core.test.ts`. Plume stores the path of
// the first authentication service set up.
#[tokio::test]
async fn sets_config_key_and_default_authentication() {
    let app = App::new();
    app.set("env", json!("test"));
    app.set("other", json!({"secret": "supersecret", "entity": null}));
    let auth = AuthenticationService::with_config_key(&app, "other");
    assert_eq!(auth.config_key(), "other");
    app.use_service("login", auth).unwrap();
    let second = AuthenticationService::with_config_key(&app, "other");
    app.use_service("login2", second).unwrap();
    app.setup().await.unwrap();
    assert_eq!(app.get("defaultAuthentication"), Some(json!("login")));
    let found = AuthenticationService::from_app(&app, None).unwrap();
    assert_eq!(found.path().as_deref(), Some("login"));
}

// "uses default configKey" — `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn uses_default_config_key() {
    let app = App::new();
    let auth = AuthenticationService::new(&app);
    assert_eq!(auth.config_key(), "authentication");
    assert_eq!(app.get("authentication"), Some(json!({})));
}

// "strategyNames" — `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn strategy_names() {
    let (_app, auth) = core_app();
    assert_eq!(auth.strategy_names(), ["first", "second"]);
}

// "getStrategies" —
// `@feathersjs/authentication`, `test/core.test.ts`: in the given order,
// unknown names skipped.
#[tokio::test]
async fn get_strategies() {
    let (_app, auth) = core_app();
    let found = auth.get_strategies(&["second", "missing", "first"]);
    assert_eq!(found.len(), 2);
    let first = auth.get_strategy("first").unwrap();
    assert!(Arc::ptr_eq(&found[1], &first));
}

// "getStrategy" — `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn get_strategy() {
    let (_app, auth) = core_app();
    assert!(auth.get_strategy("first").is_some());
    assert!(auth.get_strategy_as::<Strategy1>("first").is_some());
    assert!(auth.get_strategy_as::<Strategy2>("first").is_none());
    assert!(auth.get_strategy("missing").is_none());
}

/// Records what `verify_configuration` was handed.
struct Recorder(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl AuthenticationStrategy for Recorder {
    fn verify_configuration(&self, ctx: &StrategyContext<'_>) -> Result<()> {
        let app = ctx.app()?;
        let same_app = AuthenticationService::from_app(&app, Some("authentication")).is_none();
        self.0.lock().unwrap().push(format!(
            "{} {same_app} {}",
            ctx.name,
            ctx.service.config_key()
        ));
        Ok(())
    }
    async fn authenticate(
        &self,
        _: &StrategyContext<'_>,
        _: &Value,
        _: &Params,
    ) -> Result<AuthResult> {
        Ok(Map::new())
    }
}

// "calls setName, setApplication and setAuthentication if available" —
// `@feathersjs/authentication`, `test/core.test.ts`: Plume hands the name, the
// service and (through it) the app to every strategy call instead of setters.
#[tokio::test]
async fn calls_set_name_set_application_and_set_authentication() {
    let app = App::new();
    let auth = AuthenticationService::new(&app);
    let seen = Arc::new(Mutex::new(Vec::new()));
    auth.register("named", Recorder(Arc::clone(&seen))).unwrap();
    assert_eq!(*seen.lock().unwrap(), ["named true authentication"]);
}

/// Reports its own configuration section and entity service.
struct Inspector(Arc<Mutex<Vec<Value>>>);

#[async_trait]
impl AuthenticationStrategy for Inspector {
    fn verify_configuration(&self, ctx: &StrategyContext<'_>) -> Result<()> {
        let service = ctx.entity_service()?.map(|s| s.path().to_owned());
        self.0
            .lock()
            .unwrap()
            .push(json!({"section": ctx.section(), "service": service}));
        Ok(())
    }
    async fn authenticate(
        &self,
        _: &StrategyContext<'_>,
        _: &Value,
        _: &Params,
    ) -> Result<AuthResult> {
        Ok(Map::new())
    }
}

// "strategy configuration getter" —
// `@feathersjs/authentication`, `test/core.test.ts`: a strategy's configuration
// is its own section.
#[tokio::test]
async fn strategy_configuration_getter() {
    let (app, auth) = core_app();
    app.set(
        "authentication",
        json!({"entity": "user", "service": "users", "secret": "s", "inspect": {"hello": "there"}}),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    auth.register("inspect", Inspector(Arc::clone(&seen)))
        .unwrap();
    assert_eq!(
        seen.lock().unwrap()[0],
        json!({"section": {"hello": "there"}, "service": "users"})
    );
}

// "strategy configuration getter" (second case) —
// `@feathersjs/authentication`, `test/core.test.ts`: no entity service when
// `service` is not configured.
#[tokio::test]
async fn strategy_configuration_getter_without_service() {
    let app = App::new();
    configure(&app, json!({"secret": "s"}));
    let auth = AuthenticationService::new(&app);
    let seen = Arc::new(Mutex::new(Vec::new()));
    auth.register("inspect", Inspector(Arc::clone(&seen)))
        .unwrap();
    assert_eq!(
        seen.lock().unwrap()[0],
        json!({"section": {}, "service": null})
    );
}

// "returns first success" — `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn returns_first_success() {
    let (_app, auth) = core_app();
    let result = auth
        .authenticate(
            &json!({"strategy": "first", "username": "David"}),
            &Params::new(),
            &allowed(&["first", "second"]),
        )
        .await
        .unwrap();
    assert_eq!(Value::Object(result), Strategy1::result());
}

// "returns error when failed" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn returns_error_when_failed() {
    let (_app, auth) = core_app();
    let err = auth
        .authenticate(
            &json!({"strategy": "first", "username": "Steve"}),
            &Params::new(),
            &allowed(&["first", "second"]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Invalid Dave");
    assert_eq!(err.code(), 401);
}

// "returns second success" — `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn returns_second_success() {
    let (_app, auth) = core_app();
    let data = json!({"strategy": "second", "v2": true, "password": "supersecret"});
    let result = auth
        .authenticate(&data, &Params::new(), &allowed(&["first", "second"]))
        .await
        .unwrap();
    assert_eq!(result["user"], json!({"name": "V2", "version": 2}));
    assert_eq!(result["authentication"], data);
}

// "passes params" —
// `@feathersjs/authentication`, `test/core.test.ts`: the strategy sees the
// caller's params with `authenticated: true`.
#[tokio::test]
async fn passes_params() {
    let (_app, auth) = core_app();
    let params = Params::with_query(json!({"some": "thing"}));
    let data = json!({"strategy": "second", "v2": true, "password": "supersecret"});
    let result = auth
        .authenticate(&data, &params, &allowed(&["first", "second"]))
        .await
        .unwrap();
    assert_eq!(
        result["params"],
        json!({"authenticated": true, "query": {"some": "thing"}})
    );
}

// "throws error when allowed and passed strategy does not match" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn throws_error_when_allowed_and_passed_strategy_does_not_match() {
    let (_app, auth) = core_app();
    let err = auth
        .authenticate(
            &json!({"strategy": "first", "username": "David"}),
            &Params::new(),
            &allowed(&["second"]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Invalid authentication information (strategy not allowed in authStrategies)"
    );
    assert_eq!(err.code(), 401);
}

// "throws error when strategy is not set" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn throws_error_when_strategy_is_not_set() {
    let (_app, auth) = core_app();
    let err = auth
        .authenticate(
            &json!({"username": "David"}),
            &Params::new(),
            &allowed(&["first"]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Invalid authentication information (no `strategy` set)"
    );
}

fn headers(names: &[&str]) -> HashMap<String, String> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), "1".to_owned()))
        .collect()
}

// "returns null when no names are given" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn parse_returns_null_when_no_names_are_given() {
    let (_app, auth) = core_app();
    assert_eq!(
        auth.parse_with(&headers(&["x-is-dave"]), &[]).unwrap(),
        None
    );
}

// "successfully parses a request (first)" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn successfully_parses_a_request_first() {
    let (_app, auth) = core_app();
    let found = auth
        .parse_with(&headers(&["x-is-dave"]), &["first", "second"])
        .unwrap();
    assert_eq!(found, Some(Strategy1::result()));
}

// "successfully parses a request (second)" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn successfully_parses_a_request_second() {
    let (_app, auth) = core_app();
    let found = auth
        .parse_with(&headers(&["x-is-v2"]), &["first", "second"])
        .unwrap();
    assert_eq!(found, Some(Strategy2::result()));
}

// "null when no success" — `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn parse_null_when_no_success() {
    let (_app, auth) = core_app();
    assert_eq!(
        auth.parse_with(&headers(&["x-other"]), &["first", "second"])
            .unwrap(),
        None
    );
}

// "with default options" —
// `@feathersjs/authentication`, `test/core.test.ts`: header
// `{alg: HS256, typ: access}`, claims `iat, exp, aud, iss, jti` in that order,
// a day apart.
#[tokio::test]
async fn create_access_token_with_default_options() {
    let (_app, auth) = core_app();
    let mut payload = Map::new();
    payload.insert("message".into(), json!("Hi"));
    let token = auth.create_access_token(&payload, None, None).unwrap();
    assert_eq!(header(&token), json!({"typ": "access", "alg": "HS256"}));
    let c = claims(&token);
    let keys: Vec<&str> = c.keys().map(String::as_str).collect();
    assert_eq!(keys, ["message", "iat", "exp", "aud", "iss", "jti"]);
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        86_400
    );
    assert!(uuid::Uuid::parse_str(c["jti"].as_str().unwrap()).is_ok());
    let verified = auth.verify_access_token(&token, None, None).await.unwrap();
    assert_eq!(verified, c);
}

// "with default and overriden options" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn create_access_token_with_default_and_overridden_options() {
    let (_app, auth) = core_app();
    let overrides =
        json!({"audience": "someone", "subject": "Dave", "jwtid": "1234", "expiresIn": "1w"});
    let token = auth
        .create_access_token(&Map::new(), overrides.as_object(), None)
        .unwrap();
    let c = claims(&token);
    assert_eq!(c["aud"], json!("someone"));
    assert_eq!(c["sub"], json!("Dave"));
    assert_eq!(c["jti"], json!("1234"));
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        604_800
    );
}

// "errors with invalid options" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn create_access_token_errors_with_invalid_options() {
    let (_app, auth) = core_app();
    let bad = json!({"algorithm": "fdjsklfsndkl"});
    let err = auth
        .create_access_token(&Map::new(), bad.as_object(), None)
        .unwrap_err();
    assert_eq!(
        err.message(),
        "\"algorithm\" must be a valid string enum value"
    );
    let bad = json!({"nonsense": 1});
    let err = auth
        .create_access_token(&Map::new(), bad.as_object(), None)
        .unwrap_err();
    assert_eq!(err.message(), "\"nonsense\" is not allowed in \"options\"");
    let bad = json!({"algorithm": "none"});
    assert!(
        auth.create_access_token(&Map::new(), bad.as_object(), None)
            .is_err()
    );
}

// "returns payload when token is valid" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn verify_returns_payload_when_token_is_valid() {
    let (_app, auth) = core_app();
    let mut payload = Map::new();
    payload.insert("message".into(), json!("Hi"));
    let token = auth.create_access_token(&payload, None, None).unwrap();
    let verified = auth.verify_access_token(&token, None, None).await.unwrap();
    assert_eq!(verified["message"], json!("Hi"));
}

// "errors when custom algorithm property does not match" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn verify_errors_when_custom_algorithm_does_not_match() {
    let (_app, auth) = core_app();
    let token = auth
        .create_access_token(&Map::new(), json!({"algorithm": "HS512"}).as_object(), None)
        .unwrap();
    let err = auth
        .verify_access_token(&token, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "invalid algorithm");
    assert_eq!(err.code(), 401);
}

// "errors when algorithms property does not match" —
// `@feathersjs/authentication`, `test/core.test.ts`. Plume has no `algorithms`
// list: verification pins the one configured algorithm, here overridden per
// call.
#[tokio::test]
async fn verify_errors_when_algorithms_property_does_not_match() {
    let (_app, auth) = core_app();
    let token = auth.create_access_token(&Map::new(), None, None).unwrap();
    let err = auth
        .verify_access_token(&token, json!({"algorithm": "HS512"}).as_object(), None)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "invalid algorithm");
}

// "errors when secret is different" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn verify_errors_when_secret_is_different() {
    let (_app, auth) = core_app();
    let token = auth.create_access_token(&Map::new(), None, None).unwrap();
    let err = auth
        .verify_access_token(&token, None, Some("fdjskl"))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "invalid signature");
}

// "errors when other custom options do not match" —
// `@feathersjs/authentication`, `test/core.test.ts`
#[tokio::test]
async fn verify_errors_when_other_custom_options_do_not_match() {
    let (_app, auth) = core_app();
    let token = auth.create_access_token(&Map::new(), None, None).unwrap();
    let err = auth
        .verify_access_token(&token, json!({"issuer": "someonelse"}).as_object(), None)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "jwt issuer invalid. expected: someonelse");
}

// "errors when token is expired" —
// `@feathersjs/authentication`, `test/core.test.ts`: 401 'jwt expired' with
// data `{name: TokenExpiredError, expiredAt}`. The token is built with a past
// `exp` instead of waiting.
#[tokio::test]
async fn verify_errors_when_token_is_expired() {
    let (_app, auth) = core_app();
    let exp = now() - 10;
    let claims = json!({"iat": exp - 60, "exp": exp, "aud": "https://yourdomain.com", "iss": "feathers", "jti": "x"});
    let token = hmac_token(
        jsonwebtoken::Algorithm::HS256,
        Some("access"),
        &claims,
        b"supersecret",
    );
    let err = auth
        .verify_access_token(&token, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "jwt expired");
    let data = err.data().unwrap();
    assert_eq!(data["name"], json!("TokenExpiredError"));
    assert_eq!(data["expiredAt"], json!(plume::auth::token::iso8601(exp)));
}
