//! Ports of `packages/authentication/test/hooks/authenticate.test.ts` and
//! `packages/authentication/test/hooks/event.test.ts`.

use std::sync::{Arc, Mutex};

use plume::auth::{Authenticate, AuthenticationService};
use plume::store::MemoryService;
use plume::{App, Hooks, Params, Provider, authenticate};
use serde_json::{Value, json};

use super::support::{ParamsEcho, Strategy1, Strategy2, configure};

/// The authenticate-hook app: `first` and `second` strategies, and a
/// `users` service (echoing its params) behind `authenticate(first, second)`.
async fn app() -> App {
    let app = App::new();
    configure(
        &app,
        json!({"entity": "user", "service": "users", "entityId": "id", "secret": "supersecret", "authStrategies": ["first", "second"]}),
    );
    let auth = AuthenticationService::new(&app);
    auth.register("first", Strategy1).unwrap();
    auth.register("second", Strategy2).unwrap();
    app.use_service("authentication", auth).unwrap();
    app.use_service("users", ParamsEcho)
        .unwrap()
        .hooks(Hooks::new().before("get", authenticate(["first", "second"])));
    app.setup().await.unwrap();
    app
}

fn with_auth(provider: Option<Provider>, authentication: Value) -> Params {
    let mut params = Params::new();
    params.provider = provider;
    params.authentication = Some(authentication);
    params
}

// "throws an error when no strategies are passed" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn throws_an_error_when_no_strategies_are_passed() {
    let err = Authenticate::try_new(Vec::<String>::new()).unwrap_err();
    assert_eq!(
        err.message(),
        "The authenticate hook needs at least one allowed strategy"
    );
    // The unchecked constructor fails closed on every call.
    let app = app().await;
    let svc = app.use_service("open", ParamsEcho).unwrap();
    svc.hooks(Hooks::new().before("get", authenticate(Vec::<String>::new())));
    assert!(svc.get(1, Params::new()).await.is_err());
}

// "throws an error when not a before hook" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn throws_an_error_when_not_a_before_hook() {
    let app = app().await;
    let svc = app.use_service("after", ParamsEcho).unwrap();
    svc.hooks(Hooks::new().after("get", authenticate(["first"])));
    let err = svc.get(1, Params::new()).await.unwrap_err();
    assert_eq!(
        err.message(),
        "The authenticate hook must be used as a before hook"
    );
    assert_eq!(err.code(), 401);
}

// "throws an error if authentication service is gone" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn throws_an_error_if_authentication_service_is_gone() {
    let app = app().await;
    let svc = app.use_service("gone", ParamsEcho).unwrap();
    svc.hooks(Hooks::new().before("get", authenticate(["first"]).service("nothere")));
    let err = svc.get(1, Params::new()).await.unwrap_err();
    assert_eq!(
        err.message(),
        "Could not find a valid authentication service"
    );
}

// "authenticates with first strategy, merges params" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn authenticates_with_first_strategy_merges_params() {
    let app = app().await;
    let params = with_auth(None, json!({"strategy": "first", "username": "David"}));
    let result = app.service("users").unwrap().get(1, params).await.unwrap();
    let seen = &result["params"];
    assert_eq!(seen["authenticated"], json!(true));
    assert_eq!(seen["entities"]["user"], Strategy1::result()["user"]);
    assert_eq!(
        seen["authentication"],
        json!({"strategy": "first", "username": "David"})
    );
}

// "authenticates with first strategy, keeps references alive (#1629)" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`: every other
// param survives the merge. Rust has no shared references to keep alive; what
// matters is that nothing is dropped.
#[tokio::test]
async fn authenticates_with_first_strategy_keeps_other_params() {
    let app = app().await;
    let mut params = with_auth(None, json!({"strategy": "first", "username": "David"}));
    params.query.insert("kept".into(), json!(true));
    params.entities.insert("other".into(), json!({"id": 9}));
    let result = app.service("users").unwrap().get(1, params).await.unwrap();
    assert_eq!(result["params"]["query"], json!({"kept": true}));
    assert_eq!(result["params"]["entities"]["other"], json!({"id": 9}));
}

// "authenticates with different authentication service" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn authenticates_with_different_authentication_service() {
    let app = app().await;
    app.set(
        "auth2",
        json!({"secret": "supersecret", "entity": null, "authStrategies": ["first"]}),
    );
    let second = AuthenticationService::with_config_key(&app, "auth2");
    second.register("first", Strategy1).unwrap();
    app.use_service("auth2", second).unwrap();
    let svc = app.use_service("other", ParamsEcho).unwrap();
    svc.hooks(Hooks::new().before("get", authenticate(["first"]).service("auth2")));
    let params = with_auth(
        Some(Provider::Rest),
        json!({"strategy": "first", "username": "David"}),
    );
    let result = svc.get(1, params).await.unwrap();
    assert_eq!(result["params"]["entities"]["user"]["name"], json!("Dave"));
}

// "authenticates with second strategy" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn authenticates_with_second_strategy() {
    let app = app().await;
    let params = with_auth(
        None,
        json!({"strategy": "second", "v2": true, "password": "supersecret"}),
    );
    let result = app.service("users").unwrap().get(1, params).await.unwrap();
    assert_eq!(
        result["params"]["entities"]["user"],
        Strategy2::result()["user"]
    );
    assert_eq!(result["params"]["authenticated"], json!(true));
}

// "passes for internal calls without authentication" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn passes_for_internal_calls_without_authentication() {
    let app = app().await;
    let result = app
        .service("users")
        .unwrap()
        .get(1, Params::new())
        .await
        .unwrap();
    assert_eq!(result["params"]["authenticated"], json!(false));
    assert_eq!(result["params"]["entities"], json!({}));
}

// "fails for invalid params.authentication" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn fails_for_invalid_params_authentication() {
    let app = app().await;
    let params = with_auth(None, json!({"strategy": "first", "username": "Steve"}));
    let err = app
        .service("users")
        .unwrap()
        .get(1, params)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Invalid Dave");
}

// "fails for external calls without authentication" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn fails_for_external_calls_without_authentication() {
    let app = app().await;
    let err = app
        .service("users")
        .unwrap()
        .get(1, Params::external(Provider::Rest))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Not authenticated");
}

// "passes with authenticated: true but external call" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn passes_with_authenticated_true_but_external_call() {
    let app = app().await;
    let mut params = Params::external(Provider::Rest);
    params.authenticated = true;
    let result = app.service("users").unwrap().get(1, params).await.unwrap();
    assert_eq!(result["params"]["provider"], json!("rest"));
}

// "errors when used on the authentication service" —
// `@feathersjs/authentication`, `test/hooks/authenticate.test.ts`
#[tokio::test]
async fn errors_when_used_on_the_authentication_service() {
    let app = app().await;
    let auth = app.service("authentication").unwrap();
    auth.hooks(Hooks::new().before("create", authenticate(["first"])));
    let err = auth
        .create(
            json!({"strategy": "first", "username": "David"}),
            Params::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "The authenticate hook does not need to be used on the authentication service"
    );
}

type Seen = Arc<Mutex<Vec<(Value, Option<&'static str>, String)>>>;

fn listen(app: &App, event: &str) -> Seen {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    app.on(event, move |data, ctx| {
        sink.lock().unwrap().push((
            data.clone(),
            ctx.params.provider.map(Provider::as_str),
            ctx.method.to_string(),
        ));
    });
    seen
}

async fn event_app() -> App {
    let app = App::new();
    configure(
        &app,
        json!({"entity": "user", "service": "users", "secret": "supersecret", "authStrategies": ["first"]}),
    );
    app.use_service("users", MemoryService::new()).unwrap();
    let auth = AuthenticationService::new(&app);
    auth.register("first", Strategy1).unwrap();
    app.use_service("authentication", auth).unwrap();
    app.setup().await.unwrap();
    app
}

// "login" —
// `@feathersjs/authentication`, `test/hooks/event.test.ts`: an external login
// emits `login` with the result, the params and the context.
#[tokio::test]
async fn login_event() {
    let app = event_app().await;
    let seen = listen(&app, "login");
    let result = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "first", "username": "David"}),
            Params::external(Provider::Rest),
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0], (result, Some("rest"), "create".to_owned()));
}

// "logout" — `@feathersjs/authentication`, `test/hooks/event.test.ts`
#[tokio::test]
async fn logout_event() {
    let app = event_app().await;
    let seen = listen(&app, "logout");
    let params = with_auth(
        Some(Provider::Rest),
        json!({"strategy": "first", "username": "David"}),
    );
    let result = app
        .service("authentication")
        .unwrap()
        .remove(None, params)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0], (result, Some("rest"), "remove".to_owned()));
}

// "does nothing when provider is not set" —
// `@feathersjs/authentication`, `test/hooks/event.test.ts`
#[tokio::test]
async fn events_do_nothing_when_provider_is_not_set() {
    let app = event_app().await;
    let logins = listen(&app, "login");
    let logouts = listen(&app, "logout");
    let auth = app.service("authentication").unwrap();
    auth.create(
        json!({"strategy": "first", "username": "David"}),
        Params::new(),
    )
    .await
    .unwrap();
    let params = with_auth(None, json!({"strategy": "first", "username": "David"}));
    auth.remove(None, params).await.unwrap();
    assert!(logins.lock().unwrap().is_empty());
    assert!(logouts.lock().unwrap().is_empty());
}
