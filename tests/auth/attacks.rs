//! The attack battery (issue 3, point 10): forged, tampered, expired and
//! malformed tokens. Each must give 401 NotAuthenticated (checked on the
//! wire JSON), through the `authenticate` hook of a protected service and
//! through a jwt login, and never panic. Plume is stricter than Feathers
//! here (DESIGN.md): the algorithm is pinned, `exp` is required, `aud`,
//! `iss` and `typ` are checked when configured.

use jsonwebtoken::Algorithm;
use plume::{App, Params, Provider};
use serde_json::{Value, json};

use super::support::{
    STRONG_SECRET, assert_401, b64, good_claims, hmac_token, local_app_with, now, with_token,
};

/// The app, with the user the forged tokens name (`sub: "0"`), so that a
/// token is refused for what is wrong with it, not for a missing user.
async fn app() -> App {
    let app = local_app_with(json!({"secret": STRONG_SECRET})).await;
    super::support::create_user(&app, "a@x", "pw").await;
    app
}

/// Asserts that `token` is refused everywhere a token is accepted.
async fn refused(app: &App, token: &str) {
    let err = app
        .service("protected")
        .unwrap()
        .get("x", with_token(token))
        .await
        .unwrap_err();
    assert_401(&err);
    let err = app
        .service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "jwt", "accessToken": token}),
            Params::external(Provider::Rest),
        )
        .await
        .unwrap_err();
    assert_401(&err);
}

fn signed(claims: &Value) -> String {
    hmac_token(
        Algorithm::HS256,
        Some("access"),
        claims,
        STRONG_SECRET.as_bytes(),
    )
}

/// A token that passes, to prove the fixture is sound (the battery would
/// pass vacuously if every token were refused).
#[tokio::test]
async fn control_a_well_formed_token_is_accepted() {
    let app = app().await;
    let token = signed(&good_claims("0"));
    assert!(
        app.service("protected")
            .unwrap()
            .get("x", with_token(&token))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn alg_none() {
    let app = app().await;
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "access"})),
        b64(&good_claims("0"))
    );
    refused(&app, &token).await;
    // node-jsonwebtoken's message, as a Feathers client sees it.
    let err = app
        .service("protected")
        .unwrap()
        .get("x", with_token(&token))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "jwt signature is required");
    let unsigned = format!(
        "{}.{}",
        b64(&json!({"alg": "none", "typ": "access"})),
        b64(&good_claims("0"))
    );
    refused(&app, &unsigned).await;
}

#[tokio::test]
async fn signed_with_another_algorithm() {
    let app = app().await;
    let token = hmac_token(
        Algorithm::HS512,
        Some("access"),
        &good_claims("0"),
        STRONG_SECRET.as_bytes(),
    );
    refused(&app, &token).await;
}

#[tokio::test]
async fn hs256_macd_with_the_rsa_public_key_when_rs256_is_configured() {
    let public = include_str!("keys/rsa_public.pem");
    let app = local_app_with(json!({
        "secret": include_str!("keys/rsa_private.pem"),
        "publicKey": public,
        "jwtOptions": {"algorithm": "RS256"}
    }))
    .await;
    super::support::create_user(&app, "a@x", "pw").await;
    let good = plume::auth::AuthenticationService::from_app(&app, None)
        .unwrap()
        .create_access_token(
            &serde_json::Map::new(),
            json!({"subject": "0"}).as_object(),
            None,
        )
        .unwrap();
    assert!(
        app.service("protected")
            .unwrap()
            .get("x", with_token(&good))
            .await
            .is_ok()
    );
    let token = hmac_token(
        Algorithm::HS256,
        Some("access"),
        &good_claims("0"),
        public.as_bytes(),
    );
    refused(&app, &token).await;
}

fn flip(token: &str, part: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let bytes = unsafe_free_flip(&parts[part]);
    parts[part] = bytes;
    parts.join(".")
}

/// Changes one base64url character in the middle of a part.
fn unsafe_free_flip(part: &str) -> String {
    let mut chars: Vec<char> = part.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn flipped_byte_in_header() {
    let app = app().await;
    refused(&app, &flip(&signed(&good_claims("0")), 0)).await;
}

#[tokio::test]
async fn flipped_byte_in_payload() {
    let app = app().await;
    refused(&app, &flip(&signed(&good_claims("0")), 1)).await;
}

#[tokio::test]
async fn flipped_byte_in_signature() {
    let app = app().await;
    refused(&app, &flip(&signed(&good_claims("0")), 2)).await;
}

#[tokio::test]
async fn another_secret() {
    let app = app().await;
    let token = hmac_token(
        Algorithm::HS256,
        Some("access"),
        &good_claims("0"),
        b"another-secret-that-is-also-long-enough",
    );
    refused(&app, &token).await;
}

#[tokio::test]
async fn expired_by_one_second() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["exp"] = json!(now() - 1);
    refused(&app, &signed(&claims)).await;
}

/// A token accepted (and so remembered as verified) is refused once its
/// `exp` has passed, and one accepted under a secret is refused after the
/// secret changes: the verified-token cache re-checks the clock and
/// belongs to one configuration.
#[tokio::test]
async fn a_remembered_token_still_expires_and_follows_the_secret() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["exp"] = json!(now() + 1);
    let token = signed(&claims);
    let protected = app.service("protected").unwrap();
    protected.get("x", with_token(&token)).await.unwrap();
    protected.get("x", with_token(&token)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    refused(&app, &token).await;

    let token = signed(&good_claims("0"));
    protected.get("x", with_token(&token)).await.unwrap();
    let mut settings = app.get("authentication").unwrap();
    settings["secret"] = json!("a-different-secret-that-is-long-enough-0123456789");
    app.set("authentication", settings);
    refused(&app, &token).await;
}

#[tokio::test]
async fn nbf_in_the_future() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["nbf"] = json!(now() + 600);
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn wrong_aud() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["aud"] = json!("https://evil.example");
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn missing_aud() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims.as_object_mut().unwrap().remove("aud");
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn wrong_iss() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["iss"] = json!("someone-else");
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn missing_iss() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims.as_object_mut().unwrap().remove("iss");
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn exp_as_string() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["exp"] = json!((now() + 3600).to_string());
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn exp_as_null() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["exp"] = Value::Null;
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn exp_as_array() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims["exp"] = json!([now() + 3600]);
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn missing_exp() {
    let app = app().await;
    let mut claims = good_claims("0");
    claims.as_object_mut().unwrap().remove("exp");
    refused(&app, &signed(&claims)).await;
}

#[tokio::test]
async fn wrong_typ() {
    let app = app().await;
    refused(
        &app,
        &hmac_token(
            Algorithm::HS256,
            Some("JWT"),
            &good_claims("0"),
            STRONG_SECRET.as_bytes(),
        ),
    )
    .await;
    refused(
        &app,
        &hmac_token(
            Algorithm::HS256,
            None,
            &good_claims("0"),
            STRONG_SECRET.as_bytes(),
        ),
    )
    .await;
}

#[tokio::test]
async fn malformed_empty() {
    let app = app().await;
    // An empty token is "no token" to the jwt strategy.
    refused(&app, "").await;
}

#[tokio::test]
async fn malformed_two_parts() {
    let app = app().await;
    refused(&app, "a.b").await;
}

#[tokio::test]
async fn malformed_four_parts() {
    let app = app().await;
    let token = format!("{}.extra", signed(&good_claims("0")));
    refused(&app, &token).await;
}

#[tokio::test]
async fn malformed_not_base64url() {
    let app = app().await;
    refused(&app, "@@@.###.$$$").await;
    refused(&app, "eyJ+/=.eyJ+/=.c2ln").await;
}

#[tokio::test]
async fn malformed_one_megabyte() {
    let app = app().await;
    let big = "A".repeat(1024 * 1024);
    refused(&app, &format!("{big}.{big}.{big}")).await;
}
