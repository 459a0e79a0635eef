//! Port of `packages/authentication-local/test/strategy.test.ts`
//! ("@feathersjs/authentication-local/strategy").

use plume::auth::{AuthenticationService, LocalStrategy, StrategyContext};
use plume::{App, PaginateParam, Params, Provider};
use serde_json::json;

use super::support::{auth_of, configure, create_user, local_app, local_app_with, login};

const EMAIL: &str = "hello@feathersjs.com";
const PASSWORD: &str = "supersecret";

// "throw error when configuration is not set" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`
#[tokio::test]
async fn throw_error_when_configuration_is_not_set() {
    let app = App::new();
    configure(
        &app,
        json!({"secret": "supersecret", "local": {"passwordField": "password"}}),
    );
    let err = AuthenticationService::new(&app)
        .register("local", LocalStrategy::new())
        .unwrap_err();
    assert_eq!(
        err.message(),
        "'local' authentication strategy requires a 'usernameField' setting"
    );
    configure(
        &app,
        json!({"secret": "supersecret", "local": {"usernameField": "email"}}),
    );
    let err = AuthenticationService::new(&app)
        .register("local", LocalStrategy::new())
        .unwrap_err();
    assert_eq!(
        err.message(),
        "'local' authentication strategy requires a 'passwordField' setting"
    );
}

// "fails when entity not found" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`
#[tokio::test]
async fn fails_when_entity_not_found() {
    let app = local_app().await;
    create_user(&app, EMAIL, PASSWORD).await;
    let err = login(&app, "not in database", PASSWORD).await.unwrap_err();
    assert_eq!(err.message(), "Invalid login");
    assert_eq!(err.code(), 401);
}

// "getEntity" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`: internal callers
// get the record as stored, external ones what an external `get` returns
// (protected, `fromGet`).
#[tokio::test]
async fn get_entity() {
    let app = local_app().await;
    let user = create_user(&app, EMAIL, PASSWORD).await;
    let auth = auth_of(&app);
    let local = auth.get_strategy_as::<LocalStrategy>("local").unwrap();
    let ctx = StrategyContext {
        name: "local",
        service: &auth,
    };
    let internal = local
        .get_entity(&ctx, user.clone(), &Params::new())
        .await
        .unwrap();
    assert_eq!(internal, user);
    let external = local
        .get_entity(&ctx, user.clone(), &Params::external(Provider::Rest))
        .await
        .unwrap();
    assert_eq!(
        external,
        json!({"id": user["id"], "email": EMAIL, "fromGet": true})
    );
}

// "strategy fails when strategy is different" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`: the strategy
// does not look at `data.strategy`; it fails for the wrong password.
#[tokio::test]
async fn strategy_fails_when_strategy_is_different() {
    let app = local_app().await;
    create_user(&app, EMAIL, PASSWORD).await;
    let auth = auth_of(&app);
    let local = auth.get_strategy("local").unwrap();
    let ctx = StrategyContext {
        name: "local",
        service: &auth,
    };
    let err = local
        .authenticate(
            &ctx,
            &json!({"strategy": "not-me", "password": "dummy", "email": EMAIL}),
            &Params::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Invalid login");
}

// "fails when password is wrong" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`
#[tokio::test]
async fn fails_when_password_is_wrong() {
    let app = local_app().await;
    create_user(&app, EMAIL, PASSWORD).await;
    let err = login(&app, EMAIL, "dummy").await.unwrap_err();
    assert_eq!(err.message(), "Invalid login");
}

// "fails when password is not provided" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`
#[tokio::test]
async fn fails_when_password_is_not_provided() {
    let app = local_app().await;
    create_user(&app, EMAIL, PASSWORD).await;
    let err = app
        .service("authentication")
        .unwrap()
        .create(json!({"strategy": "local", "email": EMAIL}), Params::new())
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Invalid login");
}

// "fails when password field is not available" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`
#[tokio::test]
async fn fails_when_password_field_is_not_available() {
    let app = local_app().await;
    app.service("users")
        .unwrap()
        .create(json!({"email": "nopw@x"}), Params::new())
        .await
        .unwrap();
    let err = login(&app, "nopw@x", PASSWORD).await.unwrap_err();
    assert_eq!(err.message(), "Invalid login");
}

// "authenticates an existing user" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`: an internal
// login returns the stored record (hash included) and a token.
#[tokio::test]
async fn authenticates_an_existing_user() {
    let app = local_app().await;
    let user = create_user(&app, EMAIL, PASSWORD).await;
    let result = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "local", "email": EMAIL, "password": PASSWORD}),
            Params::new(),
        )
        .await
        .unwrap();
    assert!(result["accessToken"].is_string());
    assert_eq!(result["user"], user);
    assert_eq!(result["authentication"]["strategy"], json!("local"));
    assert_eq!(
        result["authentication"]["payload"]["sub"],
        json!(user["id"].to_string())
    );
}

// "returns safe result when params.provider is set, works without
// pagination" — `@feathersjs/authentication-local`, `test/strategy.test.ts`
#[tokio::test]
async fn returns_safe_result_when_provider_is_set_works_without_pagination() {
    let app = local_app().await;
    let user = create_user(&app, EMAIL, PASSWORD).await;
    let mut params = Params::external(Provider::Rest);
    params.paginate = PaginateParam::Disabled;
    let result = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "local", "email": EMAIL, "password": PASSWORD}),
            params,
        )
        .await
        .unwrap();
    assert_eq!(
        result["user"],
        json!({"id": user["id"], "email": EMAIL, "fromGet": true})
    );
}

// "passwordHash property resolver" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`. Plume has no
// schema resolvers; what such a resolver calls is the strategy's
// `hash_password`, which must give a hash the strategy accepts.
#[tokio::test]
async fn password_hash_property_resolver() {
    let app = local_app().await;
    let auth = auth_of(&app);
    let local = auth.get_strategy_as::<LocalStrategy>("local").unwrap();
    let ctx = StrategyContext {
        name: "local",
        service: &auth,
    };
    let hash = local.hash_password(&ctx, PASSWORD).await.unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.service("users")
        .unwrap()
        .create(json!({"email": EMAIL, "password": hash}), {
            let mut p = Params::new();
            p.extensions.insert(plume::auth::PrehashedPassword);
            p
        })
        .await
        .unwrap();
    assert!(login(&app, EMAIL, PASSWORD).await.is_ok());
}

// "should allow for nested values in the usernameField" —
// `@feathersjs/authentication-local`, `test/strategy.test.ts`
#[tokio::test]
async fn should_allow_for_nested_values_in_the_username_field() {
    let app = local_app_with(json!({
        "local": {"usernameField": "auth.email", "passwordField": "auth.password",
                  "entityUsernameField": "email", "entityPasswordField": "password"}
    }))
    .await;
    create_user(&app, EMAIL, PASSWORD).await;
    let result = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "local", "auth": {"email": EMAIL, "password": PASSWORD}}),
            Params::new(),
        )
        .await
        .unwrap();
    assert!(result["accessToken"].is_string());
}
