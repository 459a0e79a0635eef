//! Login throttling over HTTP on the default app: with the shipped
//! configuration, ten failed logins for one email make the eleventh
//! attempt 429 TooManyRequests with a `Retry-After` header, even with the
//! right password, while other accounts log in as before; and (with a
//! smaller limit from a configuration override) a successful login resets
//! the account's count.

use serde_json::{Value, json};

use super::support::{PASSWORD, account, assert_error, login, server, server_with};
use crate::support::TestServer;

/// `POST /authentication` (local) returning the status, the `Retry-After`
/// header and the body.
async fn attempt(server: &TestServer, email: &str, password: &str) -> (u16, Option<u64>, Value) {
    let response = server
        .client
        .post(server.url("/authentication"))
        .json(&json!({"strategy": "local", "email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body: Value = response.json().await.unwrap();
    (status, retry_after, body)
}

fn assert_throttled(answer: &(u16, Option<u64>, Value)) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 429, "{body}");
    assert_error(body, "TooManyRequests", 429);
    assert!(body.get("accessToken").is_none(), "{body}");
    let seconds = retry_after.unwrap_or_else(|| panic!("no Retry-After: {body}"));
    assert!(
        (1..=15 * 60).contains(&seconds),
        "within the 15 minute window: {seconds}"
    );
    assert_eq!(body["data"]["retryAfter"], json!(seconds), "{body}");
}

fn assert_refused(answer: &(u16, Option<u64>, Value), attempt: usize) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 401, "attempt {attempt}: {body}");
    assert_eq!(body["message"], json!("Invalid login"), "attempt {attempt}");
    assert_eq!(*retry_after, None, "attempt {attempt}");
}

#[tokio::test]
async fn the_eleventh_failed_login_for_an_email_is_429() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let bob = account(&server, "bob@example.com").await;
    for i in 1..=10 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    assert_throttled(&attempt(&server, &ada.email, "guess").await);
    // Locked means locked: the right password is not even checked.
    assert_throttled(&attempt(&server, &ada.email, PASSWORD).await);
    // The count is per account whatever the case of the email.
    assert_throttled(&attempt(&server, "ADA@example.com", PASSWORD).await);

    // Another account is unaffected: its failures are 401, its login works.
    assert_refused(&attempt(&server, &bob.email, "guess").await, 1);
    let (status, _, body) = attempt(&server, &bob.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    // So is an email nobody has.
    assert_refused(&attempt(&server, "nobody@example.com", "guess").await, 1);

    // Ada's token from before the lock still works: only logins are
    // throttled.
    let (status, page) = server
        .send(
            server
                .client
                .get(server.url("/messages"))
                .bearer_auth(&ada.token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
}

#[tokio::test]
async fn a_successful_login_resets_the_accounts_count() {
    let server = server_with(json!({"authentication": {"throttle": {"maxPerUsername": 3}}})).await;
    let ada = account(&server, "ada@example.com").await;
    for i in 1..=2 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    let (status, _, body) = attempt(&server, &ada.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    // Three more failures are allowed again, not one.
    for i in 1..=3 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    assert_throttled(&attempt(&server, &ada.email, PASSWORD).await);
}

#[tokio::test]
async fn the_throttle_can_be_switched_off_in_the_configuration() {
    let server = server_with(json!({"authentication": {"throttle": false}})).await;
    let ada = account(&server, "ada@example.com").await;
    for i in 1..=12 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    let (status, body) = login(&server, &ada.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
}
