//! `Authorization` headers and tokens: a token or nothing, else 401.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plume::auth::{AuthenticationService, token};
use plume::store::MemoryService;
use plume::{App, JwtStrategy, LocalStrategy};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use super::{cases, json_map, json_value, runtime, word};

const SECRET: &str = "a-fuzzing-secret-that-is-long-enough-0123456789";

fn service() -> (App, Arc<AuthenticationService>) {
    let rt = runtime();
    rt.block_on(async {
        let app = App::new();
        app.set("env", json!("test"));
        app.set(
            "authentication",
            json!({"secret": SECRET, "entity": null, "authStrategies": ["jwt", "local"],
                   "local": {"usernameField": "email", "passwordField": "password",
                             "entity": "user", "service": "users"}}),
        );
        app.use_service("users", MemoryService::new()).unwrap();
        let auth = AuthenticationService::new(&app);
        auth.register("jwt", JwtStrategy::new()).unwrap();
        auth.register("local", LocalStrategy::new()).unwrap();
        app.use_service("authentication", auth).unwrap();
        app.setup().await.unwrap();
        let auth = AuthenticationService::from_app(&app, None).unwrap();
        (app, auth)
    })
}

/// A header value: a scheme and a token-like word, several of them, or
/// anything.
fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        (word(), word()).prop_map(|(scheme, token)| format!("{scheme} {token}")),
        prop::collection::vec(word(), 0..4).prop_map(|words| words.join(" ")),
        any::<String>(),
    ]
}

/// Three dot-separated parts with JSON (or junk) inside, as a forger
/// would try: `alg: none`, odd `typ`s, claims of every type.
fn token_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        json_value().prop_map(|v| URL_SAFE_NO_PAD.encode(v.to_string())),
        json_map().prop_map(|mut m| {
            m.insert("alg".to_owned(), json!("HS256"));
            URL_SAFE_NO_PAD.encode(Value::Object(m).to_string())
        }),
        word(),
    ];
    prop_oneof![
        (part.clone(), part.clone(), part).prop_map(|(h, p, s)| format!("{h}.{p}.{s}")),
        word(),
        any::<String>(),
    ]
}

#[test]
fn authorization_headers_parse_to_a_token_nothing_or_401() {
    let (_app, auth) = service();
    let rt = runtime();
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(&header(), |value| {
            let headers = HashMap::from([("authorization".to_owned(), value.clone())]);
            match auth.parse(&headers) {
                Ok(None) => {}
                Ok(Some(request)) => {
                    let token = request["accessToken"].as_str().unwrap_or_default();
                    let verified = rt.block_on(auth.verify_access_token(token, None, None));
                    prop_assert!(verified.is_err(), "{value} was accepted");
                    prop_assert_eq!(verified.unwrap_err().code(), 401);
                }
                Err(error) => prop_assert_eq!(error.code(), 401, "{}", error.message()),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn forged_tokens_are_refused_with_401() {
    let (_app, auth) = service();
    let settings = token::JwtSettings::parse(&serde_json::Map::new()).unwrap();
    let key = token::decoding_key(settings.algorithm, SECRET).unwrap();
    let rt = runtime();
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(&token_like(), |candidate| {
            let _ = token::peek_claims(&candidate);
            let verified = token::verify(&candidate, &settings, &key);
            prop_assert!(verified.is_err(), "{candidate}");
            prop_assert_eq!(verified.unwrap_err().code(), 401);
            let through_service = rt.block_on(auth.verify_access_token(&candidate, None, None));
            prop_assert_eq!(through_service.map_err(|e| e.code()), Err(401));
            Ok(())
        })
        .unwrap();
}
