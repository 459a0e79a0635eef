//! Port of `packages/authentication-local/test/hooks/hash-password.test.ts`.

use plume::auth::HashPassword;
use plume::{Hooks, Params, hash_password};
use serde_json::json;

use super::support::{local_app, login};

// "throws error when no field provided" — S-LOCAL-11
#[tokio::test]
async fn throws_error_when_no_field_provided() {
    let err = HashPassword::try_new("").unwrap_err();
    assert_eq!(
        err.message(),
        "The hashPassword hook requires a field name option"
    );
}

// "errors when authentication service does not exist" — S-LOCAL-11
#[tokio::test]
async fn errors_when_authentication_service_does_not_exist() {
    let app = local_app().await;
    let svc = app
        .use_service("people", plume::store::MemoryService::new())
        .unwrap();
    svc.hooks(Hooks::new().before("create", hash_password("password").service("nothere")));
    let err = svc
        .create(json!({"password": "x"}), Params::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Could not find an authentication service to hash password"
    );
    assert_eq!(err.code(), 400);
}

// "errors when authentication strategy does not exist" — S-LOCAL-11
#[tokio::test]
async fn errors_when_authentication_strategy_does_not_exist() {
    let app = local_app().await;
    let svc = app
        .use_service("people", plume::store::MemoryService::new())
        .unwrap();
    svc.hooks(Hooks::new().before("create", hash_password("password").strategy("fdjsklfsd")));
    let err = svc
        .create(json!({"password": "x"}), Params::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Could not find 'fdjsklfsd' strategy to hash password"
    );
}

// "hashes password on field" — S-LOCAL-11
#[tokio::test]
async fn hashes_password_on_field() {
    let app = local_app().await;
    let user = app
        .service("users")
        .unwrap()
        .create(json!({"email": "a@x", "password": "pw-one"}), Params::new())
        .await
        .unwrap();
    let hash = user["password"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(login(&app, "a@x", "pw-one").await.is_ok());
}

// "hashes password on array data" — S-LOCAL-11
#[tokio::test]
async fn hashes_password_on_array_data() {
    let app = local_app().await;
    let users = app
        .service("users")
        .unwrap()
        .create(
            json!([{"email": "a@x", "password": "pw-one"}, {"email": "b@x", "password": "pw-two"}]),
            Params::new(),
        )
        .await
        .unwrap();
    for user in users.as_array().unwrap() {
        assert!(user["password"].as_str().unwrap().starts_with("$argon2id$"));
    }
    assert!(login(&app, "b@x", "pw-two").await.is_ok());
}

// "does nothing when field is not present" — S-LOCAL-11
#[tokio::test]
async fn does_nothing_when_field_is_not_present() {
    let app = local_app().await;
    let user = app
        .service("users")
        .unwrap()
        .create(json!({"email": "a@x"}), Params::new())
        .await
        .unwrap();
    assert_eq!(user, json!({"email": "a@x", "id": 0}));
}
