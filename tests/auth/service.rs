//! Port of `packages/authentication/test/service.test.ts`
//! ("authentication/service").

use plume::auth::{AuthCallOptions, AuthenticationService};
use plume::store::MemoryService;
use plume::{App, Id, Params};
use serde_json::{Map, Value, json};

use super::support::{NoIdService, Strategy1, claims, configure, core_app};

// "settings returns authentication options" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn settings_returns_authentication_options() {
    let (app, auth) = core_app();
    let mut expected = app
        .get("authentication")
        .unwrap()
        .as_object()
        .cloned()
        .unwrap();
    expected.insert(
        "jwtOptions".into(),
        Value::Object(plume::auth::config::default_jwt_options()),
    );
    assert_eq!(auth.configuration(), expected);
}

// The configuration is live (Feathers' `configuration` getter,
// `@feathersjs/authentication`, `src/core.ts`). Plume keeps the derived copy
// until a setting changes, so a change must show on the very next call.
#[tokio::test]
async fn configuration_follows_every_change_of_the_setting() {
    let (app, auth) = core_app();
    let before = auth.configuration();
    assert_eq!(
        auth.configuration(),
        before,
        "unchanged settings, same copy"
    );
    let mut changed = app.get("authentication").unwrap();
    changed["entity"] = json!("account");
    changed["jwtOptions"] = json!({"expiresIn": "2h"});
    app.set("authentication", changed);
    let after = auth.configuration();
    assert_eq!(after["entity"], json!("account"));
    assert_eq!(after["jwtOptions"]["expiresIn"], json!("2h"));
    assert_eq!(
        after["jwtOptions"]["issuer"],
        json!("feathers"),
        "defaults still merged"
    );
    // Another setting changing does not disturb it.
    app.set("unrelated", json!(1));
    assert_eq!(auth.configuration(), after);
}

// "app.defaultAuthentication()" —
// `@feathersjs/authentication`, `test/service.test.ts`: the service named by
// the `defaultAuthentication` setting (a path in Plume), or an explicit path.
#[tokio::test]
async fn app_default_authentication() {
    let (app, _auth) = core_app();
    app.setup().await.unwrap();
    assert_eq!(
        app.get("defaultAuthentication"),
        Some(json!("authentication"))
    );
    assert!(AuthenticationService::from_app(&app, None).is_some());
    assert!(AuthenticationService::from_app(&app, Some("authentication")).is_some());
    assert!(AuthenticationService::from_app(&app, Some("users")).is_none());
    assert!(AuthenticationService::from_app(&app, Some("missing")).is_none());
}

fn david() -> Value {
    json!({"strategy": "first", "username": "David"})
}

// "creates a valid accessToken and includes strategy result" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn creates_a_valid_access_token_and_includes_strategy_result() {
    let (app, auth) = core_app();
    let result = app
        .service("authentication")
        .unwrap()
        .create(david(), Params::new())
        .await
        .unwrap();
    let token = result["accessToken"].as_str().unwrap();
    let verified = auth.verify_access_token(token, None, None).await.unwrap();
    assert_eq!(result["user"], Strategy1::result()["user"]);
    assert_eq!(result["authenticated"], json!(true));
    assert_eq!(
        result["authentication"]["payload"],
        Value::Object(verified.clone())
    );
    assert_eq!(verified["sub"], json!("123"));
    let keys: Vec<&String> = result.as_object().unwrap().keys().collect();
    assert_eq!(keys[0], "accessToken");
}

// "fails when strategy fails" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn fails_when_strategy_fails() {
    let (app, _auth) = core_app();
    let err = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "first", "username": "Dave"}),
            Params::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Invalid Dave");
}

// "creates a valid accessToken with strategy and params.payload" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn creates_a_valid_access_token_with_strategy_and_params_payload() {
    let (app, _auth) = core_app();
    let mut params = Params::new();
    params
        .payload
        .insert("message".into(), json!("Custom payload"));
    let result = app
        .service("authentication")
        .unwrap()
        .create(david(), params)
        .await
        .unwrap();
    let c = claims(result["accessToken"].as_str().unwrap());
    assert_eq!(c["message"], json!("Custom payload"));
    assert_eq!(
        result["authentication"]["payload"]["message"],
        json!("Custom payload")
    );
}

// "sets the subject authResult[entity][entityService.id]" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn sets_the_subject_from_the_entity_service_id() {
    let app = App::new();
    configure(
        &app,
        json!({"entity": "user", "service": "users", "secret": "supersecret", "authStrategies": ["first"]}),
    );
    app.use_service("users", MemoryService::new().id_field("name"))
        .unwrap();
    let auth = AuthenticationService::new(&app);
    auth.register("first", Strategy1).unwrap();
    app.use_service("authentication", auth).unwrap();
    let result = app
        .service("authentication")
        .unwrap()
        .create(david(), Params::new())
        .await
        .unwrap();
    assert_eq!(
        claims(result["accessToken"].as_str().unwrap())["sub"],
        json!("Dave")
    );
}

// "sets the subject authResult[entity][entityId]" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn sets_the_subject_from_entity_id() {
    let (app, _auth) = core_app();
    let mut config = app.get("authentication").unwrap();
    config["entityId"] = json!("name");
    app.set("authentication", config);
    let result = app
        .service("authentication")
        .unwrap()
        .create(david(), Params::new())
        .await
        .unwrap();
    assert_eq!(
        claims(result["accessToken"].as_str().unwrap())["sub"],
        json!("Dave")
    );
}

// "does not override the subject if already set" —
// `@feathersjs/authentication`, `test/service.test.ts`
// (`params.jwt` is `AuthCallOptions`, settable only by server code).
#[tokio::test]
async fn does_not_override_the_subject_if_already_set() {
    let (app, _auth) = core_app();
    let mut params = Params::new();
    let mut options = Map::new();
    options.insert("subject".into(), json!("Davester"));
    params.extensions.insert(AuthCallOptions {
        jwt_options: Some(options),
        ..AuthCallOptions::default()
    });
    let result = app
        .service("authentication")
        .unwrap()
        .create(david(), params)
        .await
        .unwrap();
    assert_eq!(
        claims(result["accessToken"].as_str().unwrap())["sub"],
        json!("Davester")
    );
}

// "errors when subject can not be found" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn errors_when_subject_can_not_be_found() {
    let (app, _auth) = core_app();
    let mut config = app.get("authentication").unwrap();
    config["entityId"] = json!("somethingElse");
    app.set("authentication", config);
    let err = app
        .service("authentication")
        .unwrap()
        .create(david(), Params::new())
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Can not set subject from user.somethingElse");
    assert_eq!(err.code(), 401);
}

// "errors when no allowed strategies are set" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn errors_when_no_allowed_strategies_are_set() {
    let (app, _auth) = core_app();
    let mut config = app.get("authentication").unwrap();
    config["authStrategies"] = json!([]);
    app.set("authentication", config);
    let err = app
        .service("authentication")
        .unwrap()
        .create(david(), Params::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "No authentication strategies allowed for creating a JWT (`authStrategies`)"
    );
}

// "can remove with authentication strategy set" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn can_remove_with_authentication_strategy_set() {
    let (app, _auth) = core_app();
    let mut params = Params::new();
    params.authentication = Some(david());
    let removed = app
        .service("authentication")
        .unwrap()
        .remove(None, params)
        .await
        .unwrap();
    assert_eq!(removed, Strategy1::result());
}

// "passes when id is set and matches accessToken" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn passes_when_id_is_set_and_matches_access_token() {
    let (app, _auth) = core_app();
    let mut params = Params::new();
    params.authentication =
        Some(json!({"strategy": "first", "username": "David", "accessToken": "testing"}));
    let removed = app
        .service("authentication")
        .unwrap()
        .remove(Some(Id::from("testing")), params)
        .await
        .unwrap();
    assert_eq!(removed, Strategy1::result());
}

// "fails when id is set and does not match accessToken" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn fails_when_id_is_set_and_does_not_match_access_token() {
    let (app, _auth) = core_app();
    let mut params = Params::new();
    params.authentication =
        Some(json!({"strategy": "first", "username": "David", "accessToken": "testing"}));
    let err = app
        .service("authentication")
        .unwrap()
        .remove(Some(Id::from("test")), params)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Invalid access token");
    assert_eq!(err.code(), 401);
}

// "errors when trying to remove with nothing" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn errors_when_trying_to_remove_with_nothing() {
    let (app, _auth) = core_app();
    let err = app
        .service("authentication")
        .unwrap()
        .remove(None, Params::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Invalid authentication information (no `strategy` set)"
    );
}

async fn setup_error(config: Value, users: Option<bool>) -> String {
    let app = App::new();
    configure(&app, config);
    match users {
        Some(true) => drop(app.use_service("users", MemoryService::new()).unwrap()),
        Some(false) => drop(app.use_service("users", NoIdService).unwrap()),
        None => {}
    }
    app.use_service("authentication", AuthenticationService::new(&app))
        .unwrap();
    app.setup()
        .await
        .err()
        .map(|e| e.message().to_owned())
        .unwrap_or_default()
}

// "errors when there is no secret" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn setup_errors_when_there_is_no_secret() {
    let message = setup_error(json!({"entity": "user", "service": "users"}), Some(true)).await;
    assert_eq!(
        message,
        "A 'secret' must be provided in your authentication configuration"
    );
}

// "throws an error if service name is not set" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn setup_throws_an_error_if_service_name_is_not_set() {
    let message = setup_error(
        json!({"secret": "supersecret", "entity": "user"}),
        Some(true),
    )
    .await;
    assert_eq!(
        message,
        "The 'service' option is not set in the authentication configuration"
    );
}

// "throws an error if entity service does not exist" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn setup_throws_an_error_if_entity_service_does_not_exist() {
    let message = setup_error(
        json!({"secret": "supersecret", "entity": "user", "service": "users"}),
        None,
    )
    .await;
    assert_eq!(message, "Can not find service 'users'");
}

// "throws an error if entity service exists but has no `id`" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn setup_throws_an_error_if_entity_service_has_no_id() {
    let message = setup_error(
        json!({"secret": "supersecret", "entity": "user", "service": "users"}),
        Some(false),
    )
    .await;
    assert_eq!(
        message,
        "The 'users' service does not have an 'id' property and no 'entityId' option is set."
    );
}

// "passes when entity service exists and `entityId` property is set" —
// `@feathersjs/authentication`, `test/service.test.ts`
#[tokio::test]
async fn setup_passes_when_entity_service_exists_and_entity_id_is_set() {
    let message = setup_error(
        json!({"secret": "supersecret", "entity": "user", "service": "users", "entityId": "id"}),
        Some(false),
    )
    .await;
    assert_eq!(message, "");
}

// "does nothing when `entity` is explicitly `null`" —
// `@feathersjs/authentication`, `test/service.test.ts`: null is not the same as
// absent (absent still runs the checks).
#[tokio::test]
async fn setup_does_nothing_when_entity_is_explicitly_null() {
    assert_eq!(
        setup_error(json!({"secret": "supersecret", "entity": null}), None).await,
        ""
    );
    let absent = setup_error(json!({"secret": "supersecret"}), None).await;
    assert_eq!(
        absent,
        "The 'service' option is not set in the authentication configuration"
    );
}
