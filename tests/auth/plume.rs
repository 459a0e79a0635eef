//! Behaviour Plume adds or tightens over Feathers (DESIGN.md "Where Plume is
//! deliberately stricter"; issue 3 points 2, 3, 5, 7, 8, 9).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use plume::auth::{
    AuthResult, AuthenticationOverrides, AuthenticationService, JwtStrategy, LocalStrategy,
};
use plume::store::MemoryService;
use plume::{App, ClientAddr, HookContext, Hooks, Id, Params, Provider, Result};
use serde_json::{Map, Value, json};

use super::support::{
    STRONG_SECRET, assert_401, auth_of, claims, configure, create_user, header, local_app,
    local_app_with, login, with_token,
};

async fn setup_error(config: Value) -> String {
    let app = App::new();
    configure(&app, config);
    app.use_service("users", MemoryService::new()).unwrap();
    let auth = AuthenticationService::new(&app);
    if let Err(e) = auth.register("jwt", JwtStrategy::new()) {
        return e.message().to_owned();
    }
    if let Err(e) = auth.register("local", LocalStrategy::new()) {
        return e.message().to_owned();
    }
    app.use_service("authentication", auth).unwrap();
    app.setup()
        .await
        .err()
        .map(|e| e.message().to_owned())
        .unwrap_or_default()
}

fn base() -> Value {
    json!({"secret": "supersecret", "entity": "user", "service": "users",
           "authStrategies": ["jwt", "local"],
           "local": {"usernameField": "email", "passwordField": "password"}})
}

fn with(mut config: Value, path: &[&str], value: Value) -> Value {
    let mut target = &mut config;
    for key in &path[..path.len() - 1] {
        target = target
            .as_object_mut()
            .unwrap()
            .entry(key.to_string())
            .or_insert(json!({}));
    }
    target[path[path.len() - 1]] = value;
    config
}

// Point 2: misplaced keys stop startup and say where they belong.
#[tokio::test]
async fn misplaced_keys_say_where_they_belong() {
    assert_eq!(setup_error(base()).await, "");
    assert_eq!(
        setup_error(with(base(), &["expiresIn"], json!("1d"))).await,
        "Invalid option 'authentication.expiresIn': it belongs in 'authentication.jwtOptions.expiresIn'"
    );
    assert_eq!(
        setup_error(with(base(), &["jwt", "expiresIn"], json!("1d"))).await,
        "Invalid JwtStrategy option 'authentication.jwt.expiresIn'. Did you mean to set it in 'authentication.jwtOptions'?"
    );
    assert_eq!(
        setup_error(with(base(), &["local", "expiresIn"], json!("1d"))).await,
        "Invalid option 'authentication.local.expiresIn': it belongs in 'authentication.jwtOptions.expiresIn'"
    );
    assert_eq!(
        setup_error(with(
            base(),
            &["jwtOptions", "usernameField"],
            json!("email")
        ))
        .await,
        "Invalid option 'authentication.jwtOptions.usernameField': it belongs in 'authentication.local.usernameField'"
    );
    assert_eq!(
        setup_error(with(base(), &["schemes"], json!(["Bearer"]))).await,
        "Invalid option 'authentication.schemes': it belongs in 'authentication.jwt.schemes'"
    );
    assert_eq!(
        setup_error(with(base(), &["jwtOptions", "bogus"], json!(1))).await,
        "\"bogus\" is not allowed in \"options\""
    );
    assert_eq!(
        setup_error(with(base(), &["jwtOptions", "expiresIn"], json!("60"))).await,
        "Invalid timespan \"60\": use a number of seconds or a string such as \"60s\", \"30m\", \"2h\", \"1d\" or \"7 days\""
    );
}

// Point 2: `expiresIn` forms.
#[tokio::test]
async fn expires_in_forms() {
    for (value, seconds) in [
        (json!("1d"), 86_400),
        (json!("2h"), 7_200),
        (json!("30m"), 1_800),
        (json!("60s"), 60),
        (json!("7 days"), 604_800),
        (json!(90), 90),
    ] {
        let app = App::new();
        configure(
            &app,
            json!({"secret": "supersecret", "jwtOptions": {"expiresIn": value}}),
        );
        let token = AuthenticationService::new(&app)
            .create_access_token(&Map::new(), None, None)
            .unwrap();
        let c = claims(&token);
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
            seconds,
            "{value}"
        );
    }
}

// Point 2/DESIGN: a short, placeholder or published secret stops setup
// everywhere but in the `test` environment (development included: the
// binary generates one there), with a message that names the setting and
// says how to make one. One policy (`auth::secret::check`) for the service
// and the binary's configuration.
#[tokio::test]
async fn weak_secrets_stop_setup_outside_test() {
    let weak = [
        "supersecret",
        "CHANGE_ME",
        "short-but-not-a-placeholder",
        plume::config::DEVELOPMENT_SECRET,
    ];
    for env in ["production", "development"] {
        for secret in weak {
            let app = App::new();
            app.set("env", json!(env));
            configure(&app, json!({"secret": secret, "entity": null}));
            app.use_service("authentication", AuthenticationService::new(&app))
                .unwrap();
            let err = app.setup().await.unwrap_err();
            assert!(err.message().contains("plume secret"), "{}", err.message());
            assert!(
                err.message().contains("authentication.secret"),
                "{}",
                err.message()
            );
        }
    }
    for (env, secret) in [("production", STRONG_SECRET), ("test", "supersecret")] {
        let app = App::new();
        app.set("env", json!(env));
        configure(&app, json!({"secret": secret, "entity": null}));
        app.use_service("authentication", AuthenticationService::new(&app))
            .unwrap();
        app.setup().await.unwrap();
    }
}

// Point 3: every supported key type signs with the private key and
// verifies with the public one; a public key of another pair fails the
// startup self-test.
#[tokio::test]
async fn asymmetric_algorithms_sign_and_verify_with_pem_keys() {
    let pairs = [
        (
            "RS256",
            include_str!("keys/rsa_private.pem"),
            include_str!("keys/rsa_public.pem"),
        ),
        (
            "RS512",
            include_str!("keys/rsa_private.pem"),
            include_str!("keys/rsa_public.pem"),
        ),
        (
            "PS256",
            include_str!("keys/rsa_private.pem"),
            include_str!("keys/rsa_public.pem"),
        ),
        (
            "ES256",
            include_str!("keys/ec_private.pem"),
            include_str!("keys/ec_public.pem"),
        ),
        (
            "EdDSA",
            include_str!("keys/ed_private.pem"),
            include_str!("keys/ed_public.pem"),
        ),
    ];
    for (alg, private, public) in pairs {
        let app = App::new();
        configure(
            &app,
            json!({"secret": private, "publicKey": public, "entity": null, "jwtOptions": {"algorithm": alg}}),
        );
        app.use_service("authentication", AuthenticationService::new(&app))
            .unwrap();
        app.setup().await.unwrap();
        let auth = auth_of(&app);
        let token = auth.create_access_token(&Map::new(), None, None).unwrap();
        assert_eq!(header(&token)["alg"], json!(alg));
        auth.verify_access_token(&token, None, None).await.unwrap();
    }
    let app = App::new();
    configure(
        &app,
        json!({"secret": include_str!("keys/rsa_private.pem"), "publicKey": include_str!("keys/rsa_other_public.pem"),
               "entity": null, "jwtOptions": {"algorithm": "RS256"}}),
    );
    app.use_service("authentication", AuthenticationService::new(&app))
        .unwrap();
    let err = app.setup().await.unwrap_err();
    assert_eq!(
        err.message(),
        "The token self-test failed: invalid signature"
    );
}

// Point 3: custom claims can never override the registered ones.
#[tokio::test]
async fn custom_claims_never_override_registered_ones() {
    let app = local_app().await;
    create_user(&app, "a@x", "pw").await;
    for claim in ["exp", "iat", "nbf", "aud", "iss", "sub", "jti"] {
        let auth = app.service("authentication").unwrap();
        let mut params = Params::external(Provider::Rest);
        params.payload.insert(claim.to_owned(), json!(1));
        let err = auth
            .create(
                json!({"strategy": "local", "email": "a@x", "password": "pw"}),
                params,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), 500, "{claim}");
        assert!(
            err.message().contains(&format!("\"{claim}\"")),
            "{}",
            err.message()
        );
    }
}

/// The Auk recipe: a before hook on `authentication.create` that adds a
/// claim to `params.payload`.
async fn add_test_claim(ctx: &mut HookContext) -> Result<()> {
    ctx.params.payload.insert("test".into(), json!("test"));
    Ok(())
}

// Point 7, route 1 (seed: Auk recipe).
#[tokio::test]
async fn payload_route_before_hook_writes_params_payload() {
    let app = local_app().await;
    create_user(&app, "a@x", "pw").await;
    app.service("authentication")
        .unwrap()
        .hooks(Hooks::new().before("create", add_test_claim));
    let result = login(&app, "a@x", "pw").await.unwrap();
    let c = claims(result["accessToken"].as_str().unwrap());
    assert_eq!(c["test"], json!("test"));
    assert_eq!(result["authentication"]["payload"]["test"], json!("test"));
    assert_eq!(c["sub"], json!("0"));
}

/// The Dove recipe: a custom authentication service whose `get_payload`
/// calls the default and adds the user's permissions.
struct WithPermissions;

#[async_trait]
impl AuthenticationOverrides for WithPermissions {
    async fn get_payload(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let mut payload = service.base_get_payload(auth_result, params).await?;
        if let Some(permissions) = auth_result.get("user").and_then(|u| u.get("permissions")) {
            payload.insert("permissions".into(), permissions.clone());
        }
        Ok(payload)
    }
}

// Point 7, route 2 (seed: Dove recipe); `super.getPayload` still applies,
// so a hook's claims and the override's are both signed.
#[tokio::test]
async fn payload_route_custom_service_overrides_get_payload() {
    let app = App::new();
    configure(
        &app,
        json!({"secret": "supersecret", "entity": "user", "service": "users", "authStrategies": ["local", "jwt"],
               "local": {"usernameField": "email", "passwordField": "password"}}),
    );
    app.use_service("users", MemoryService::new())
        .unwrap()
        .hooks(Hooks::new().before("create", plume::hash_password("password")));
    let auth = AuthenticationService::new(&app).with_overrides(WithPermissions);
    auth.register("local", LocalStrategy::new()).unwrap();
    auth.register("jwt", JwtStrategy::new()).unwrap();
    app.use_service("authentication", auth)
        .unwrap()
        .hooks(Hooks::new().before("create", add_test_claim));
    app.setup().await.unwrap();
    app.service("users")
        .unwrap()
        .create(
            json!({"email": "a@x", "password": "pw", "permissions": ["admin"]}),
            Params::new(),
        )
        .await
        .unwrap();
    let result = login(&app, "a@x", "pw").await.unwrap();
    let c = claims(result["accessToken"].as_str().unwrap());
    assert_eq!(c["permissions"], json!(["admin"]));
    assert_eq!(c["test"], json!("test"));
}

// Point 4/7: stateless tokens (`entity: null`) with the local strategy
// keeping its own entity (the cookbook setup): no subject, no lookup.
#[tokio::test]
async fn stateless_tokens_with_local_entity() {
    let app = local_app_with(json!({
        "entity": null,
        "local": {"usernameField": "email", "passwordField": "password", "entity": "user", "service": "users"}
    }))
    .await;
    create_user(&app, "a@x", "pw").await;
    let result = login(&app, "a@x", "pw").await.unwrap();
    let token = result["accessToken"].as_str().unwrap();
    assert!(claims(token).get("sub").is_none());
    assert!(result["user"].get("password").is_none());
    // The user can go away; a stateless token stays valid until it expires.
    app.service("users")
        .unwrap()
        .remove(Some(Id::from(0)), Params::new())
        .await
        .unwrap();
    let seen = app
        .service("protected")
        .unwrap()
        .get("x", with_token(token))
        .await
        .unwrap();
    assert_eq!(seen["params"]["entities"], json!({}));
    assert_eq!(seen["params"]["authenticated"], json!(true));
}

// Point 8: logout revokes the token everywhere until it expires.
#[tokio::test]
async fn logout_revokes_the_token() {
    let app = local_app().await;
    create_user(&app, "a@x", "pw").await;
    let token = login(&app, "a@x", "pw").await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = login(&app, "a@x", "pw").await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = app.service("authentication").unwrap();
    assert!(
        app.service("protected")
            .unwrap()
            .get("x", with_token(&token))
            .await
            .is_ok()
    );
    auth.remove(Some(Id::from(token.as_str())), with_token(&token))
        .await
        .unwrap();
    let err = app
        .service("protected")
        .unwrap()
        .get("x", with_token(&token))
        .await
        .unwrap_err();
    assert_401(&err);
    assert_eq!(err.message(), "jwt revoked");
    let err = auth
        .create(
            json!({"strategy": "jwt", "accessToken": token}),
            Params::external(Provider::Rest),
        )
        .await
        .unwrap_err();
    assert_401(&err);
    assert_401(&auth.remove(None, with_token(&token)).await.unwrap_err());
    // Another session of the same user is unaffected.
    assert!(
        app.service("protected")
            .unwrap()
            .get("x", with_token(&other))
            .await
            .is_ok()
    );
}

fn throttled_app_config() -> Value {
    json!({"throttle": {"maxPerUsername": 3, "maxPerAddress": 5, "window": "15m"}})
}

fn from(addr: [u8; 4]) -> Params {
    let mut params = Params::external(Provider::Rest);
    params
        .extensions
        .insert(ClientAddr(IpAddr::V4(Ipv4Addr::from(addr))));
    params
}

async fn attempt(app: &App, email: &str, password: &str, params: Params) -> Result<Value> {
    app.service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "local", "email": email, "password": password}),
            params,
        )
        .await
}

// Point 9: failed logins per account are limited; the account is locked
// even for the right password; other accounts are unaffected.
#[tokio::test]
async fn throttle_per_username() {
    let app = local_app_with(throttled_app_config()).await;
    create_user(&app, "alice@x", "right").await;
    create_user(&app, "bob@x", "right").await;
    for _ in 0..3 {
        assert_401(
            &attempt(&app, "alice@x", "wrong", Params::external(Provider::Rest))
                .await
                .unwrap_err(),
        );
    }
    let err = attempt(&app, "ALICE@x", "right", Params::external(Provider::Rest))
        .await
        .unwrap_err();
    let wire = serde_json::to_value(&err).unwrap();
    assert_eq!(wire["name"], json!("TooManyRequests"));
    assert_eq!(wire["code"], json!(429));
    let retry = wire["data"]["retryAfter"].as_u64().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(
        attempt(&app, "bob@x", "right", Params::external(Provider::Rest))
            .await
            .is_ok()
    );
    // Internal calls are never throttled.
    assert!(
        attempt(&app, "alice@x", "right", Params::new())
            .await
            .is_ok()
    );
}

// Point 9: a success resets the account's count.
#[tokio::test]
async fn throttle_success_resets_the_username_count() {
    let app = local_app_with(throttled_app_config()).await;
    create_user(&app, "alice@x", "right").await;
    for _ in 0..2 {
        assert!(
            attempt(&app, "alice@x", "wrong", Params::external(Provider::Rest))
                .await
                .is_err()
        );
    }
    assert!(
        attempt(&app, "alice@x", "right", Params::external(Provider::Rest))
            .await
            .is_ok()
    );
    for _ in 0..2 {
        assert_401(
            &attempt(&app, "alice@x", "wrong", Params::external(Provider::Rest))
                .await
                .unwrap_err(),
        );
    }
    assert!(
        attempt(&app, "alice@x", "right", Params::external(Provider::Rest))
            .await
            .is_ok()
    );
}

// Point 9: failed logins per client address are limited across accounts;
// other addresses are unaffected.
#[tokio::test]
async fn throttle_per_address() {
    let app = local_app_with(throttled_app_config()).await;
    create_user(&app, "alice@x", "right").await;
    for i in 0..5 {
        let _ = attempt(&app, &format!("nobody{i}@x"), "wrong", from([10, 0, 0, 1])).await;
    }
    let err = attempt(&app, "alice@x", "right", from([10, 0, 0, 1]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), 429);
    assert!(
        attempt(&app, "alice@x", "right", from([10, 0, 0, 2]))
            .await
            .is_ok()
    );
}

// Token logins are not throttled: a signed token cannot be guessed, and
// every socket of a page (or of an office behind one address) logs in
// with one at once (issue 15: 10,000 sockets logging in from one
// address were refused 429 while 50 were in flight).
#[tokio::test]
async fn token_logins_are_not_throttled() {
    let app = local_app_with(throttled_app_config()).await;
    create_user(&app, "alice@x", "right").await;
    let token = attempt(&app, "alice@x", "right", from([10, 0, 0, 2]))
        .await
        .unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_token = |token: &str| json!({"strategy": "jwt", "accessToken": token});
    let authentication = app.service("authentication").unwrap();
    // Failed token logins are 401s, never counted against the address.
    for _ in 0..10 {
        let err = authentication
            .create(with_token("not.a.token"), from([10, 0, 0, 1]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), 401);
    }
    assert!(
        attempt(&app, "alice@x", "right", from([10, 0, 0, 1]))
            .await
            .is_ok()
    );
    // An address throttled for passwords still logs in with a token.
    for i in 0..5 {
        let _ = attempt(&app, &format!("nobody{i}@x"), "wrong", from([10, 0, 0, 1])).await;
    }
    let err = attempt(&app, "alice@x", "right", from([10, 0, 0, 1]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), 429);
    let result = authentication
        .create(with_token(&token), from([10, 0, 0, 1]))
        .await
        .unwrap();
    assert_eq!(result["accessToken"], json!(token));
}

// Point 9: throttling can be switched off.
#[tokio::test]
async fn throttle_can_be_switched_off() {
    let app = local_app_with(json!({"throttle": false})).await;
    create_user(&app, "alice@x", "right").await;
    for _ in 0..12 {
        assert_401(
            &attempt(&app, "alice@x", "wrong", Params::external(Provider::Rest))
                .await
                .unwrap_err(),
        );
    }
    assert!(
        attempt(&app, "alice@x", "right", Params::external(Provider::Rest))
            .await
            .is_ok()
    );
}

// Point 5: a hash made with other parameters is replaced on login.
#[tokio::test]
async fn rehash_on_login() {
    use argon2::{Algorithm, Argon2, Params as ArgonParams, PasswordHasher, Version};
    let app = local_app().await;
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        ArgonParams::new(8192, 1, 1, None).unwrap(),
    )
    .hash_password(b"pw")
    .unwrap()
    .to_string();
    assert!(weak.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
    let mut params = Params::new();
    params.extensions.insert(plume::auth::PrehashedPassword);
    app.service("users")
        .unwrap()
        .create(json!({"email": "a@x", "password": weak}), params)
        .await
        .unwrap();
    login(&app, "a@x", "pw").await.unwrap();
    let stored = app
        .service("users")
        .unwrap()
        .get(0, Params::new())
        .await
        .unwrap();
    let stored = stored["password"].as_str().unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(login(&app, "a@x", "pw").await.is_ok());
}

// Point 5: an unknown user and a wrong password give the identical error.
// (That they cost the same work is by construction: both run one argon2
// verification; no timing is asserted.)
#[tokio::test]
async fn unknown_user_and_wrong_password_give_the_same_error() {
    let app = local_app().await;
    create_user(&app, "a@x", "pw").await;
    let unknown = serde_json::to_value(login(&app, "nobody@x", "pw").await.unwrap_err()).unwrap();
    let wrong = serde_json::to_value(login(&app, "a@x", "nope").await.unwrap_err()).unwrap();
    assert_eq!(unknown, wrong);
    assert_eq!(
        unknown,
        json!({"name": "NotAuthenticated", "message": "Invalid login", "code": 401, "className": "not-authenticated"})
    );
}

// Point 5: missing, empty, non-string or over-long credentials are the
// same 401 without touching the store.
#[tokio::test]
async fn bad_credentials_never_reach_the_store() {
    let app = local_app().await;
    create_user(&app, "a@x", "pw").await;
    let finds = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&finds);
    app.service("users").unwrap().hooks(Hooks::new().before(
        "find",
        plume::hook_fn(move |_ctx: &mut HookContext| {
            *counter.lock().unwrap() += 1;
            Box::pin(async { Ok(()) })
        }),
    ));
    let long = "x".repeat(1024 * 1024);
    for data in [
        json!({"strategy": "local", "email": "a@x"}),
        json!({"strategy": "local", "email": "a@x", "password": ""}),
        json!({"strategy": "local", "email": "a@x", "password": 12345}),
        json!({"strategy": "local", "email": "a@x", "password": {"$ne": ""}}),
        json!({"strategy": "local", "password": "pw"}),
        json!({"strategy": "local", "email": {"$ne": null}, "password": "pw"}),
        json!({"strategy": "local", "email": "", "password": "pw"}),
        json!({"strategy": "local", "email": "a@x", "password": long}),
    ] {
        let err = app
            .service("authentication")
            .unwrap()
            .create(data, Params::external(Provider::Rest))
            .await
            .unwrap_err();
        assert_eq!(err.message(), "Invalid login");
        assert_401(&err);
    }
    assert_eq!(*finds.lock().unwrap(), 0);
    assert!(login(&app, "a@x", "pw").await.is_ok());
    assert_eq!(*finds.lock().unwrap(), 1, "the counter counts");
}

// Point 5: hash_password refuses over-long passwords (400).
#[tokio::test]
async fn password_length_is_bounded_when_hashing() {
    let app = local_app().await;
    let err = app
        .service("users")
        .unwrap()
        .create(
            json!({"email": "a@x", "password": "x".repeat(1025)}),
            Params::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.message(),
        "The password is too long (at most 1024 bytes)"
    );
}

// The REST transport's entry point: `parse` with lower-case header names,
// reached through `defaultAuthentication` and `downcast`.
#[tokio::test]
async fn transport_entry_point_parse() {
    let app = local_app().await;
    let path = app.get("defaultAuthentication").unwrap();
    let auth = app
        .service(path.as_str().unwrap())
        .unwrap()
        .downcast::<AuthenticationService>()
        .unwrap();
    let mut headers = std::collections::HashMap::new();
    headers.insert("authorization".to_owned(), "Bearer abc.def.ghi".to_owned());
    assert_eq!(
        auth.parse(&headers).unwrap(),
        Some(json!({"strategy": "jwt", "accessToken": "abc.def.ghi"}))
    );
}

// The authentication service's own `created`/`removed` events carry
// tokens and are never emitted (Feathers never publishes them: `setup` in
// `@feathersjs/authentication`, `src/service.ts`).
#[tokio::test]
async fn login_results_are_not_service_events() {
    let app = local_app().await;
    create_user(&app, "a@x", "pw").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    app.on_service_event(move |path, event, _data, _ctx| {
        sink.lock().unwrap().push(format!("{path} {event}"));
    });
    login(&app, "a@x", "pw").await.unwrap();
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|e| !e.starts_with("authentication")),
        "{:?}",
        seen.lock().unwrap()
    );
}
