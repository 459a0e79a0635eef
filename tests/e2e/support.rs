//! Helpers for the end-to-end tests: the default app on `:memory:` behind a
//! [`TestServer`], accounts, authenticated calls, snapshots of both tables
//! and checks of the Feathers error JSON.

use std::path::Path;

use base64::Engine as _;
use plume::config::{Config, merge};
use plume::store::SqliteStore;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

/// Every account in these tests signs up with this password.
pub(super) const PASSWORD: &str = "correct horse battery staple";

/// The default body limit the default app is served with (1 MiB).
pub(super) const BODY_LIMIT: usize = 1024 * 1024;

/// The default app on `:memory:`, configured as `config/test.json`, with
/// `overrides` deep-merged over the configuration.
pub(super) async fn server_with(overrides: Value) -> TestServer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let loaded = Config::load_with(&dir, "test", |_| None).unwrap();
    let mut values = loaded.values().clone();
    if let Value::Object(overrides) = overrides {
        merge(&mut values, overrides);
    }
    let config = Config::from_value("test", values);
    let store = SqliteStore::open(":memory:").await.unwrap();
    let app = crate::default_app::build_with_store(&config, &store).unwrap();
    TestServer::start(app).await
}

/// The default app with the test configuration as it is.
pub(super) async fn server() -> TestServer {
    server_with(json!({})).await
}

/// A signed-up, logged-in user.
#[derive(Debug, Clone)]
pub(super) struct Account {
    pub(super) id: Value,
    pub(super) email: String,
    pub(super) token: String,
}

impl Account {
    /// The id as it appears in a URL.
    pub(super) fn path(&self) -> String {
        format!("/users/{}", id_text(&self.id))
    }
}

/// An id as it appears in a URL or in the `sub` claim.
pub(super) fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sends `method path` with an optional bearer token and JSON body.
pub(super) async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    server.send(request).await
}

/// Sends raw bytes as an `application/json` body.
pub(super) async fn call_raw(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    server.send(request).await
}

/// `POST /users`: 201, and the password is not in the answer.
pub(super) async fn sign_up(server: &TestServer, body: &Value) -> Value {
    let (status, user) = server.post("/users", body).await;
    assert_eq!(status, 201, "{user}");
    assert_no_secret(&user);
    user
}

/// `POST /authentication` with the local strategy.
pub(super) async fn login(server: &TestServer, email: &str, password: &str) -> (u16, Value) {
    server
        .post(
            "/authentication",
            &json!({"strategy": "local", "email": email, "password": password}),
        )
        .await
}

/// Signs `email` up with [`PASSWORD`] and logs in.
pub(super) async fn account(server: &TestServer, email: &str) -> Account {
    let user = sign_up(server, &json!({"email": email, "password": PASSWORD})).await;
    let (status, auth) = login(server, email, PASSWORD).await;
    assert_eq!(status, 201, "{auth}");
    Account {
        id: user["id"].clone(),
        email: email.to_owned(),
        token: auth["accessToken"].as_str().unwrap().to_owned(),
    }
}

/// `POST /messages` as `token`: 201.
pub(super) async fn post_message(server: &TestServer, token: &str, body: &Value) -> Value {
    let (status, message) = call(server, Method::POST, "/messages", Some(token), Some(body)).await;
    assert_eq!(status, 201, "{message}");
    message
}

/// `/messages/<id>`.
pub(super) fn message_path(message: &Value) -> String {
    format!("/messages/{}", id_text(&message["id"]))
}

/// Feathers error JSON: `name`, `code`, `className` and a string `message`.
pub(super) fn assert_error(body: &Value, name: &str, code: u16) {
    assert_eq!(body["name"], json!(name), "{body}");
    assert_eq!(body["code"], json!(code), "{body}");
    let class_name = body["className"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let kebab: String = name
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let lower = c.to_ascii_lowercase();
            if c.is_ascii_uppercase() && i > 0 {
                vec!['-', lower]
            } else {
                vec![lower]
            }
        })
        .collect();
    assert_eq!(class_name, kebab, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

/// The status and the error JSON together.
pub(super) fn assert_status_error(answer: &(u16, Value), name: &str, code: u16) {
    assert_eq!(answer.0, code, "{}", answer.1);
    assert_error(&answer.1, name, code);
}

/// A 400 from the default app's schemas refusing `field`: `validation
/// failed`, with an `additionalProperties` error naming it in `data`.
#[track_caller]
pub(super) fn assert_unwritable(answer: &(u16, Value), field: &str) {
    assert_status_error(answer, "BadRequest", 400);
    assert_eq!(
        answer.1["message"],
        json!("validation failed"),
        "{}",
        answer.1
    );
    let named = answer.1["data"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            e["keyword"] == json!("additionalProperties")
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("'{field}' was unexpected")))
        })
    });
    assert!(named, "'{field}' is not named: {}", answer.1);
}

/// No `password` key anywhere and no argon2 hash anywhere.
pub(super) fn assert_no_secret(value: &Value) {
    fn walk(value: &Value, whole: &Value) {
        match value {
            Value::Object(map) => {
                assert!(!map.contains_key("password"), "password leaked: {whole}");
                for child in map.values() {
                    walk(child, whole);
                }
            }
            Value::Array(items) => {
                for child in items {
                    walk(child, whole);
                }
            }
            Value::String(s) => assert!(!s.starts_with("$argon2"), "hash leaked: {whole}"),
            _ => {}
        }
    }
    walk(value, value);
}

/// Both tables as an authenticated caller sees them, in id order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Snapshot {
    pub(super) users: Vec<Value>,
    pub(super) messages: Vec<Value>,
}

/// Reads every user and every message (at most 50) with internal calls,
/// which see every record (external callers see only their own users),
/// without the password hashes.
pub(super) async fn snapshot(server: &TestServer, _token: &str) -> Snapshot {
    let read = |path: &'static str| async move {
        let query = json!({"$limit": 50, "$sort": {"id": 1}});
        let page = server
            .app
            .service(path)
            .unwrap()
            .find(plume::Params::with_query(query))
            .await
            .unwrap();
        let mut data = page["data"].as_array().unwrap().clone();
        assert_eq!(page["total"], json!(data.len()), "snapshot too big: {page}");
        for record in &mut data {
            record.as_object_mut().unwrap().remove("password");
        }
        data
    };
    Snapshot {
        users: read("users").await,
        messages: read("messages").await,
    }
}

/// Asserts that both tables are exactly as in `before`.
pub(super) async fn assert_unchanged(server: &TestServer, token: &str, before: &Snapshot) {
    let after = snapshot(server, token).await;
    assert_eq!(after.users.len(), before.users.len(), "user count changed");
    assert_eq!(
        after.messages.len(),
        before.messages.len(),
        "message count changed"
    );
    assert_eq!(&after, before, "data changed");
}

/// A server with two users who each wrote a message.
pub(super) struct Fixture {
    pub(super) server: TestServer,
    pub(super) alice: Account,
    pub(super) bob: Account,
    pub(super) alice_message: Value,
    pub(super) bob_message: Value,
}

impl Fixture {
    pub(super) async fn new() -> Self {
        let server = server().await;
        let alice = account(&server, "alice@example.com").await;
        let bob = account(&server, "bob@example.com").await;
        let alice_message =
            post_message(&server, &alice.token, &json!({"text": "from alice"})).await;
        let bob_message = post_message(&server, &bob.token, &json!({"text": "from bob"})).await;
        Self {
            server,
            alice,
            bob,
            alice_message,
            bob_message,
        }
    }

    pub(super) async fn snapshot(&self) -> Snapshot {
        snapshot(&self.server, &self.alice.token).await
    }

    pub(super) async fn assert_unchanged(&self, before: &Snapshot) {
        assert_unchanged(&self.server, &self.alice.token, before).await;
    }

    /// A call as Alice.
    pub(super) async fn as_alice(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        call(&self.server, method, path, Some(&self.alice.token), body).await
    }

    /// Both accounts still log in with their own password.
    pub(super) async fn assert_logins_work(&self) {
        for account in [&self.alice, &self.bob] {
            let (status, body) = login(&self.server, &account.email, PASSWORD).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["user"]["id"], account.id, "{body}");
        }
    }
}

fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The JOSE header of a JWT, unverified.
pub(super) fn jwt_header(token: &str) -> Value {
    segment(token, 0)
}

/// The claims of a JWT, unverified.
pub(super) fn jwt_claims(token: &str) -> Value {
    segment(token, 1)
}
