//! Port of `packages/authentication-local/test/hooks/hash-password.test.ts`.

use plume::auth::HashPassword;
use plume::{Hooks, Params, hash_password};
use serde_json::json;

use super::support::{local_app, login};

// "throws error when no field provided" —
// `@feathersjs/authentication-local`, `test/hooks/hash-password.test.ts`
#[tokio::test]
async fn throws_error_when_no_field_provided() {
    let err = HashPassword::try_new("").unwrap_err();
    assert_eq!(
        err.message(),
        "The hashPassword hook requires a field name option"
    );
}

// "errors when authentication service does not exist" —
// `@feathersjs/authentication-local`, `test/hooks/hash-password.test.ts`
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

// "errors when authentication strategy does not exist" —
// `@feathersjs/authentication-local`, `test/hooks/hash-password.test.ts`
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

// "hashes password on field" —
// `@feathersjs/authentication-local`, `test/hooks/hash-password.test.ts`
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

// "hashes password on array data" —
// `@feathersjs/authentication-local`, `test/hooks/hash-password.test.ts`
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

// "does nothing when field is not present" —
// `@feathersjs/authentication-local`, `test/hooks/hash-password.test.ts`
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

/// External params from `address`.
fn from_address(address: [u8; 4]) -> Params {
    let mut params = Params::external(plume::Provider::Rest);
    params
        .extensions
        .insert(plume::ClientAddr(std::net::IpAddr::from(address)));
    params
}

// Plume (issue 10, point 7): hashes in progress are limited per client
// address; other addresses and internal calls are not affected, and the
// slot frees when the hash is done.
#[tokio::test]
async fn hashes_in_progress_are_limited_per_client_address() {
    let app = super::support::local_app_with(json!({
        "local": {"usernameField": "email", "passwordField": "password", "maxHashingPerAddress": 1}
    }))
    .await;
    let users = app.service("users").unwrap();
    let sign_up = |email: &str, params: Params| {
        users.create(json!({"email": email, "password": "pw"}), params)
    };
    let (first, second, other, internal) = tokio::join!(
        sign_up("a1@x", from_address([10, 0, 0, 1])),
        sign_up("a2@x", from_address([10, 0, 0, 1])),
        sign_up("b1@x", from_address([10, 0, 0, 2])),
        sign_up("i1@x", Params::new()),
    );
    assert!(first.is_ok(), "{first:?}");
    let refused = second.unwrap_err();
    assert_eq!(refused.code(), 429);
    assert_eq!(refused.data().unwrap()["retryAfter"], json!(1));
    assert!(other.is_ok(), "{other:?}");
    assert!(internal.is_ok(), "{internal:?}");
    // The first hash is done: the address may hash again.
    assert!(sign_up("a3@x", from_address([10, 0, 0, 1])).await.is_ok());
    // A call without a password takes no slot.
    assert!(
        app.service("users")
            .unwrap()
            .create(json!({"email": "nopw@x"}), from_address([10, 0, 0, 1]))
            .await
            .is_ok()
    );
}

// The setting must be a whole number.
#[tokio::test]
async fn the_hashing_limit_must_be_a_whole_number() {
    let app = plume::App::new();
    super::support::configure(
        &app,
        json!({
            "entity": "user", "service": "users", "secret": "supersecret",
            "authStrategies": ["local"],
            "local": {"usernameField": "email", "passwordField": "password", "maxHashingPerAddress": "2"}
        }),
    );
    app.use_service("users", plume::store::MemoryService::new())
        .unwrap();
    let auth = plume::auth::AuthenticationService::new(&app);
    let err = auth
        .register("local", plume::LocalStrategy::new())
        .unwrap_err();
    assert!(err.message().contains("maxHashingPerAddress"), "{err:?}");
}

// The limit is the local strategy's: hooks installed separately (here on
// two services) share one count per address, not one count each.
#[tokio::test]
async fn separate_hash_password_hooks_share_the_limit_per_address() {
    let app = super::support::local_app_with(json!({
        "local": {"usernameField": "email", "passwordField": "password", "maxHashingPerAddress": 1}
    }))
    .await;
    app.use_service("accounts", plume::store::MemoryService::new())
        .unwrap()
        .hooks(plume::Hooks::new().before("create", plume::hash_password("password")));
    let users = app.service("users").unwrap();
    let accounts = app.service("accounts").unwrap();
    let (first, second) = tokio::join!(
        users.create(
            json!({"email": "a1@x", "password": "pw"}),
            from_address([10, 0, 0, 1])
        ),
        accounts.create(
            json!({"email": "a2@x", "password": "pw"}),
            from_address([10, 0, 0, 1])
        ),
    );
    let refused = [&first, &second]
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.code() == 429))
        .count();
    assert_eq!(refused, 1, "{first:?} {second:?}");
}
