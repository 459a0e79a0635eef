//! Port of `packages/authentication/test/jwt.test.ts` ("authentication/jwt").
//!
//! The `handleConnection` cases (of `@feathersjs/authentication`,
//! `src/jwt.ts`) are in `connection.rs`.
//! "resolves safe dispatch data in authentication result" is ported as what
//! it protects: the entity in a login result is the version an external
//! caller may see.

use std::collections::HashMap;

use plume::auth::{AuthenticationService, JwtStrategy, StrategyContext};
use plume::store::MemoryService;
use plume::{App, Hooks, Id, Params, Provider, authenticate, protect};
use serde_json::{Value, json};

use super::support::{
    auth_of, configure, create_user, local_app, local_app_with, login, with_token,
};

/// The jwt test app: users, auth with jwt (and local to get a token), and
/// a `protected` service behind `authenticate("jwt")`.
async fn app() -> (App, String, Value) {
    let app = local_app().await;
    let user = create_user(&app, "david@feathersjs.com", "supersecret").await;
    let token = login(&app, "david@feathersjs.com", "supersecret")
        .await
        .unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, token, user)
}

// "getEntity" —
// `@feathersjs/authentication`, `test/jwt.test.ts`: an internal lookup (the
// caller's query dropped), then for an external caller a second, external get
// that runs the service's external hooks.
#[tokio::test]
async fn get_entity() {
    let (app, _token, user) = app().await;
    let auth = auth_of(&app);
    let jwt = auth.get_strategy_as::<JwtStrategy>("jwt").unwrap();
    let ctx = StrategyContext {
        name: "jwt",
        service: &auth,
    };
    let id = Id::from_value(&user["id"]).unwrap().unwrap();
    let internal = jwt
        .get_entity(&ctx, &id, &Params::with_query(json!({"email": "nobody"})))
        .await
        .unwrap();
    assert!(internal.get("password").is_some() && internal.get("fromGet").is_none());
    let external = jwt
        .get_entity(&ctx, &id, &Params::external(Provider::Rest))
        .await
        .unwrap();
    assert_eq!(external["fromGet"], json!(true));
    assert!(external.get("password").is_none());
}

// "resolves safe dispatch data in authentication result" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn resolves_safe_dispatch_data_in_authentication_result() {
    let (app, token, _user) = app().await;
    let result = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "jwt", "accessToken": token}),
            Params::external(Provider::Rest),
        )
        .await
        .unwrap();
    assert!(result["user"].get("password").is_none());
    assert_eq!(result["user"]["fromGet"], json!(true));
}

// "fails for protected service and external call when not set" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn fails_for_protected_service_and_external_call_when_not_set() {
    let (app, _token, _user) = app().await;
    let err = app
        .service("protected")
        .unwrap()
        .get("test", Params::external(Provider::Rest))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Not authenticated");
    assert_eq!(err.code(), 401);
}

// "fails for protected service and external call when not strategy" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn fails_for_protected_service_and_external_call_when_not_strategy() {
    let (app, _token, _user) = app().await;
    let mut params = Params::external(Provider::Rest);
    params.authentication = Some(json!({"username": "Dave"}));
    let err = app
        .service("protected")
        .unwrap()
        .get("test", params)
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Invalid authentication information (no `strategy` set)"
    );
}

// "fails when entity service was not found" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn fails_when_entity_service_was_not_found() {
    let (app, token, _user) = app().await;
    let mut config = app.get("authentication").unwrap();
    config["service"] = json!("not-users");
    app.set("authentication", config);
    let err = app
        .service("protected")
        .unwrap()
        .get("test", with_token(&token))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Can not find service 'not-users'");
}

// "fails when accessToken is not set" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn fails_when_access_token_is_not_set() {
    let (app, _token, _user) = app().await;
    let mut params = Params::external(Provider::Rest);
    params.authentication = Some(json!({"strategy": "jwt"}));
    let err = app
        .service("protected")
        .unwrap()
        .get("test", params)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "No access token");
    assert_eq!(err.code(), 401);
}

// "passes when authentication is set and merges params" —
// `@feathersjs/authentication`, `test/jwt.test.ts`: the service sees provider,
// authentication `{strategy, accessToken, payload}`, the internal user (hash
// included) and `authenticated`.
#[tokio::test]
async fn passes_when_authentication_is_set_and_merges_params() {
    let (app, token, user) = app().await;
    let result = app
        .service("protected")
        .unwrap()
        .get("test", with_token(&token))
        .await
        .unwrap();
    let params = &result["params"];
    assert_eq!(params["provider"], json!("rest"));
    assert_eq!(params["authenticated"], json!(true));
    assert_eq!(params["authentication"]["strategy"], json!("jwt"));
    assert_eq!(params["authentication"]["accessToken"], json!(token));
    assert_eq!(
        params["authentication"]["payload"]["sub"],
        json!(user["id"].to_string())
    );
    assert_eq!(params["entities"]["user"], user);
    assert_eq!(
        params["entities"].as_object().unwrap().len(),
        1,
        "no accessToken key"
    );
}

// "works with entity set to null" —
// `@feathersjs/authentication`, `test/jwt.test.ts`: stateless tokens, no
// lookup, no user.
#[tokio::test]
async fn works_with_entity_set_to_null() {
    let (app, token, _user) = app().await;
    let mut config = app.get("authentication").unwrap();
    config["entity"] = json!(null);
    app.set("authentication", config);
    let result = app
        .service("protected")
        .unwrap()
        .get("test", with_token(&token))
        .await
        .unwrap();
    let params = &result["params"];
    assert_eq!(params["authenticated"], json!(true));
    assert_eq!(params["entities"], json!({}));
    assert!(params["authentication"]["payload"]["sub"].is_string());
}

// "authenticates but does not return a new accessToken" —
// `@feathersjs/authentication`, `test/jwt.test.ts`: the same token back, never
// a longer-lived one.
#[tokio::test]
async fn authenticates_but_does_not_return_a_new_access_token() {
    let (app, token, user) = app().await;
    let result = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "jwt", "accessToken": token}),
            Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(result["accessToken"], json!(token));
    assert_eq!(result["authentication"]["strategy"], json!("jwt"));
    assert_eq!(
        result["authentication"]["payload"]["sub"],
        json!(user["id"].to_string())
    );
    assert_eq!(result["user"]["email"], user["email"]);
}

// "errors when trying to set invalid option" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn errors_when_trying_to_set_invalid_option() {
    let app = App::new();
    configure(
        &app,
        json!({"secret": "supersecret", "jwt": {"expiresIn": "1d"}}),
    );
    let auth = AuthenticationService::new(&app);
    let err = auth.register("jwt", JwtStrategy::new()).unwrap_err();
    assert_eq!(
        err.message(),
        "Invalid JwtStrategy option 'authentication.jwt.expiresIn'. Did you mean to set it in 'authentication.jwtOptions'?"
    );
}

// "errors when `header` option is an object" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn errors_when_header_option_is_an_object() {
    let app = App::new();
    configure(
        &app,
        json!({"secret": "supersecret", "jwt": {"header": {"not": "allowed"}}}),
    );
    let err = AuthenticationService::new(&app)
        .register("jwt", JwtStrategy::new())
        .unwrap_err();
    assert_eq!(
        err.message(),
        "The 'header' option for the jwt strategy must be a string"
    );
}

fn parse(app: &App, value: Option<&str>) -> Option<Value> {
    let mut headers = HashMap::new();
    if let Some(value) = value {
        headers.insert("authorization".to_owned(), value.to_owned());
    }
    auth_of(app).parse(&headers).unwrap()
}

// "returns null when header not set" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn parse_returns_null_when_header_not_set() {
    let (app, _token, _user) = app().await;
    assert_eq!(parse(&app, None), None);
}

// "parses plain Authorization header" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn parses_plain_authorization_header() {
    let (app, token, _user) = app().await;
    assert_eq!(
        parse(&app, Some(&token)),
        Some(json!({"strategy": "jwt", "accessToken": token}))
    );
}

// "parses Authorization header with Bearer scheme" —
// `@feathersjs/authentication`, `test/jwt.test.ts`; schemes are matched
// case-insensitively, whitespace is free.
#[tokio::test]
async fn parses_authorization_header_with_bearer_scheme() {
    let (app, token, _user) = app().await;
    for value in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!(" JWT   {token} "),
    ] {
        assert_eq!(
            parse(&app, Some(&value)),
            Some(json!({"strategy": "jwt", "accessToken": token})),
            "{value}"
        );
    }
}

// "return null when scheme does not match" —
// `@feathersjs/authentication`, `test/jwt.test.ts`. Plume is stricter
// (DESIGN.md): the scheme must be a whole word, so `Bearer:` and `XBearerY`,
// which Feathers accepts by substring, are refused, and so is a header of three
// words.
#[tokio::test]
async fn parse_returns_null_when_scheme_does_not_match() {
    let (app, token, _user) = app().await;
    for value in [
        format!("Basic {token}"),
        format!("Token {token}"),
        format!("Bearer: {token}"),
        format!("XBearerY {token}"),
        format!("Bearer {token} extra"),
    ] {
        assert_eq!(parse(&app, Some(&value)), None, "{value}");
    }
}

// Plume: the jwt strategy's header and schemes are configurable.
#[tokio::test]
async fn parse_uses_configured_header_and_schemes() {
    let app = local_app_with(json!({"jwt": {"header": "X-Auth", "schemes": ["Token"]}})).await;
    let auth = auth_of(&app);
    let mut headers = HashMap::new();
    headers.insert("x-auth".to_owned(), "token abc".to_owned());
    assert_eq!(
        auth.parse(&headers).unwrap(),
        Some(json!({"strategy": "jwt", "accessToken": "abc"}))
    );
    headers.insert("x-auth".to_owned(), "Bearer abc".to_owned());
    assert_eq!(auth.parse(&headers).unwrap(), None);
}

// Plume is stricter (DESIGN.md): a valid token whose user no longer exists
// is 401 NotAuthenticated (Feathers: 404 NotFound).
#[tokio::test]
async fn token_of_a_removed_user_is_401() {
    let (app, token, user) = app().await;
    let id = Id::from_value(&user["id"]).unwrap();
    app.service("users")
        .unwrap()
        .remove(id, Params::new())
        .await
        .unwrap();
    let err = app
        .service("protected")
        .unwrap()
        .get("x", with_token(&token))
        .await
        .unwrap_err();
    super::support::assert_401(&err);
}

// The app of the jwt tests also works with `protect` on a plain memory
// service behind `authenticate`: hashes never leave.
#[tokio::test]
async fn protected_memory_service_with_token() {
    let (app, token, _user) = app().await;
    let notes = app.use_service("notes", MemoryService::new()).unwrap();
    notes.hooks(
        Hooks::new()
            .before("all", authenticate(["jwt"]))
            .around("all", protect(["secret"])),
    );
    let created = notes
        .create(json!({"text": "hi", "secret": "s"}), with_token(&token))
        .await
        .unwrap();
    assert!(created.get("secret").is_none());
}
