//! Authentication over the socket on the default app: logging a connection
//! in (by `create` on `authentication`, by the handshake's `auth` payload
//! or `Authorization` header), logging out, expiry, revocation, and the
//! `anonymous` / `authenticated` channels.

use std::path::Path;
use std::time::Duration;

use plume::config::{Config, merge};
use plume::store::SqliteStore;
use serde_json::{Value, json};

use crate::support::{SocketClient, TestServer};

const QUIET: Duration = Duration::from_millis(300);
const EVENT: Duration = Duration::from_secs(5);

/// The default app on `:memory:`, configured for tests, with `overrides`
/// merged over the configuration.
async fn server(overrides: Value) -> TestServer {
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

/// Signs a user up over REST and logs in; returns the access token.
async fn sign_up(server: &TestServer, email: &str) -> String {
    let (status, user) = server
        .post(
            "/users",
            &json!({"email": email, "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert!(user.get("password").is_none(), "{user}");
    let (status, login) = server
        .post(
            "/authentication",
            &json!({"strategy": "local", "email": email, "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 201, "{login}");
    login["accessToken"].as_str().unwrap().to_owned()
}

async fn create_message(server: &TestServer, token: &str, text: &str) -> Value {
    let (status, message) = server
        .send(
            server
                .client
                .post(server.url("/messages"))
                .bearer_auth(token)
                .json(&json!({"text": text})),
        )
        .await;
    assert_eq!(status, 201, "{message}");
    message
}

async fn drain(socket: &mut SocketClient) -> Vec<String> {
    let mut names = Vec::new();
    while let Some((name, _)) = socket.next_event(QUIET).await {
        names.push(name);
    }
    names
}

#[tokio::test]
async fn login_over_the_socket_authenticates_the_connection() {
    let server = server(json!({})).await;
    let token = sign_up(&server, "ada@example.com").await;
    let mut anonymous = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    let mut socket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();

    let error = socket
        .call("find", vec![json!("messages")])
        .await
        .unwrap_err();
    assert_eq!(error["name"], json!("NotAuthenticated"));

    let login = socket
        .call(
            "create",
            vec![
                json!("authentication"),
                json!({"strategy": "local", "email": "ada@example.com", "password": "correct horse"}),
            ],
        )
        .await
        .unwrap();
    assert!(login["accessToken"].is_string());
    assert!(login["user"].get("password").is_none());

    // Later calls carry the login without sending the token again.
    let page = socket.call("find", vec![json!("messages")]).await.unwrap();
    assert_eq!(page["total"], json!(0));
    let mine = socket
        .call(
            "create",
            vec![json!("messages"), json!({"text": "from the socket"})],
        )
        .await
        .unwrap();
    assert_eq!(mine["userId"], login["user"]["id"]);
    assert_eq!(
        socket.next_event(EVENT).await.unwrap().0,
        "messages created"
    );

    // A message created over REST reaches the authenticated socket only.
    let message = create_message(&server, &token, "over REST").await;
    let (name, data) = socket.next_event(EVENT).await.unwrap();
    assert_eq!((name.as_str(), &data), ("messages created", &message));
    let id = message["id"].clone();
    let patch = server
        .client
        .patch(server.url(&format!("/messages/{id}")))
        .bearer_auth(&token)
        .json(&json!({"text": "edited"}));
    assert_eq!(server.send(patch).await.0, 200);
    assert_eq!(
        socket.next_event(EVENT).await.unwrap().0,
        "messages patched"
    );
    let remove = server
        .client
        .delete(server.url(&format!("/messages/{id}")))
        .bearer_auth(&token);
    assert_eq!(server.send(remove).await.0, 200);
    assert_eq!(
        socket.next_event(EVENT).await.unwrap().0,
        "messages removed"
    );
    assert!(
        drain(&mut anonymous).await.is_empty(),
        "anonymous connections get no events"
    );

    // A user's events reach only that user's connections: Bob's sign-up
    // is not Ada's business, her own change is hers, without the hash.
    sign_up(&server, "bob@example.com").await;
    assert!(
        drain(&mut socket).await.is_empty(),
        "another user's sign-up reaches nobody else"
    );
    let me = format!("/users/{}", login["user"]["id"]);
    let change = server
        .client
        .patch(server.url(&me))
        .bearer_auth(&token)
        .json(&json!({"email": "ada@example.org"}));
    let (status, changed) = server.send(change).await;
    assert_eq!(status, 200, "{changed}");
    let (name, user) = socket.next_event(EVENT).await.unwrap();
    assert_eq!(name, "users patched");
    assert_eq!(user["email"], json!("ada@example.org"));
    assert!(user.get("password").is_none(), "{user}");
    assert!(drain(&mut anonymous).await.is_empty());

    // Logout: the connection is anonymous again.
    socket
        .call("remove", vec![json!("authentication"), Value::Null])
        .await
        .unwrap();
    let error = socket
        .call("find", vec![json!("messages")])
        .await
        .unwrap_err();
    assert_eq!(error["name"], json!("NotAuthenticated"));
    create_message(&server, &token, "after logout").await;
    assert!(drain(&mut socket).await.is_empty());
}

#[tokio::test]
async fn the_handshake_can_authenticate_and_a_bad_token_is_refused() {
    let server = server(json!({})).await;
    let token = sign_up(&server, "ada@example.com").await;

    let mut by_payload = SocketClient::connect(
        &server.base,
        Some(json!({"strategy": "jwt", "accessToken": token})),
        &[],
    )
    .await
    .unwrap();
    let bearer = format!("Bearer {token}");
    let mut by_header = SocketClient::connect(&server.base, None, &[("authorization", &bearer)])
        .await
        .unwrap();
    for socket in [&mut by_payload, &mut by_header] {
        let page = socket.call("find", vec![json!("messages")]).await.unwrap();
        assert_eq!(page["total"], json!(0));
    }
    create_message(&server, &token, "hello").await;
    assert_eq!(
        by_payload.next_event(EVENT).await.unwrap().0,
        "messages created"
    );
    assert_eq!(
        by_header.next_event(EVENT).await.unwrap().0,
        "messages created"
    );

    let mut forged = token.clone();
    forged.push('x');
    let refused = SocketClient::connect(
        &server.base,
        Some(json!({"strategy": "jwt", "accessToken": forged})),
        &[],
    )
    .await;
    let error = refused.err().expect("a forged token is refused");
    // The error's own message, as Feathers sends it (no class name).
    assert_eq!(error, json!({"message": "invalid signature"}));
    let refused = SocketClient::connect(
        &server.base,
        None,
        &[("authorization", "Bearer not.a.token")],
    )
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn revoked_tokens_stop_working_on_sockets() {
    let server = server(json!({})).await;
    let token = sign_up(&server, "ada@example.com").await;
    let mut socket = SocketClient::connect(
        &server.base,
        Some(json!({"strategy": "jwt", "accessToken": token})),
        &[],
    )
    .await
    .unwrap();
    socket.call("find", vec![json!("messages")]).await.unwrap();
    let logout = server
        .client
        .delete(server.url("/authentication"))
        .bearer_auth(&token);
    assert_eq!(server.send(logout).await.0, 200);
    // The socket forgot its login at once ...
    let error = socket
        .call("find", vec![json!("messages")])
        .await
        .unwrap_err();
    assert_eq!(error["name"], json!("NotAuthenticated"), "{error}");
    // ... left its channels: no more events ...
    let other = sign_up(&server, "bob@example.com").await;
    create_message(&server, &other, "after the logout").await;
    assert!(drain(&mut socket).await.is_empty());
    // ... and cannot log in again with the revoked token.
    let error = socket
        .call(
            "create",
            vec![
                json!("authentication"),
                json!({"strategy": "jwt", "accessToken": token}),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(error["name"], json!("NotAuthenticated"), "{error}");
    assert_eq!(error["message"], json!("jwt revoked"));
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Logs a fresh socket in with `token` over `create` on `authentication`;
/// returns the socket and the token's `exp`.
async fn logged_in(server: &TestServer, token: &str) -> (SocketClient, u64) {
    let mut socket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    let login = socket
        .call(
            "create",
            vec![
                json!("authentication"),
                json!({"strategy": "jwt", "accessToken": token}),
            ],
        )
        .await
        .unwrap();
    let exp = login["authentication"]["payload"]["exp"]
        .as_u64()
        .unwrap_or_else(|| panic!("{login}"));
    (socket, exp)
}

/// Seed 002: when the token expires the client is told why (the
/// `authentication expired` event with the NotAuthenticated error) and
/// the connection is closed, so the client re-authenticates. `exp` is the
/// last valid second: the socket works through it and is told one second
/// after it.
#[tokio::test]
async fn an_expired_token_is_announced_and_closes_the_connection() {
    let server = server(json!({"authentication": {"jwtOptions": {"expiresIn": "2s"}}})).await;
    let token = sign_up(&server, "ada@example.com").await;
    let (mut socket, exp) = logged_in(&server, &token).await;
    socket.call("find", vec![json!("messages")]).await.unwrap();

    // In the last valid second the login still holds.
    let exp = Duration::from_secs(exp).as_secs_f64();
    let left = exp + 0.5 - unix_now();
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
    socket.call("find", vec![json!("messages")]).await.unwrap();

    let (name, error) = socket
        .next_event(Duration::from_secs(4))
        .await
        .expect("the client is told that its authentication expired");
    let told_at = unix_now();
    assert_eq!(name, "authentication expired", "{error}");
    assert_eq!(error["name"], json!("NotAuthenticated"), "{error}");
    assert_eq!(error["code"], json!(401), "{error}");
    assert_eq!(error["message"], json!("jwt expired"), "{error}");
    assert!(
        told_at >= exp + 0.95,
        "told at {told_at}, before the end of the last valid second {exp}"
    );
    assert!(
        socket.closed_within(EVENT).await,
        "the server closes the connection"
    );
}

/// With `authentication.keepSocketOnExpiry: true` the old behaviour stays
/// available: the expired connection is anonymous again (no events), but
/// open and able to log in with a fresh token.
#[tokio::test]
async fn with_keep_socket_on_expiry_an_expired_token_ends_only_the_connections_authentication() {
    let server = server(json!({"authentication": {
        "jwtOptions": {"expiresIn": "2s"},
        "keepSocketOnExpiry": true
    }}))
    .await;
    let token = sign_up(&server, "ada@example.com").await;
    let (mut socket, _) = logged_in(&server, &token).await;
    socket.call("find", vec![json!("messages")]).await.unwrap();

    // Past `exp` (whole seconds, so up to 3 s from now).
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let error = socket
        .call("find", vec![json!("messages")])
        .await
        .unwrap_err();
    assert_eq!(error["name"], json!("NotAuthenticated"), "{error}");
    assert!(!socket.is_closed(), "the connection stays open");

    // No more events for it, but the socket stays usable and can log in
    // again with a fresh token.
    let fresh = {
        let (_, login) = server
            .post(
                "/authentication",
                &json!({"strategy": "local", "email": "ada@example.com", "password": "correct horse"}),
            )
            .await;
        login["accessToken"].as_str().unwrap().to_owned()
    };
    create_message(&server, &fresh, "while expired").await;
    assert!(drain(&mut socket).await.is_empty());
    socket
        .call(
            "create",
            vec![
                json!("authentication"),
                json!({"strategy": "jwt", "accessToken": fresh}),
            ],
        )
        .await
        .unwrap();
    create_message(&server, &fresh, "after re-login").await;
    assert_eq!(
        socket.next_event(EVENT).await.unwrap().0,
        "messages created"
    );
}

#[tokio::test]
async fn stateless_tokens_identify_the_user_without_a_lookup() {
    // `examples/stateless.rs`: the default app with `entity: null`.
    let server = server(json!({"authentication": {
        "entity": null,
        "local": {"entity": "user", "service": "users"}
    }}))
    .await;
    let (status, user) = server
        .post(
            "/users",
            &json!({"email": "ada@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    // Clients cannot write a role; the server sets one.
    let id = plume::Id::from_value(&user["id"]).unwrap().unwrap();
    server
        .app
        .service("users")
        .unwrap()
        .patch(Some(id), json!({"role": "editor"}), plume::Params::new())
        .await
        .unwrap();
    let (status, login) = server
        .post(
            "/authentication",
            &json!({"strategy": "local", "email": "ada@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 201, "{login}");
    let payload = &login["authentication"]["payload"];
    assert_eq!(payload["sub"], json!(user["id"].to_string()));
    assert_eq!(payload["role"], json!("editor"));
    let token = login["accessToken"].as_str().unwrap();
    let message = create_message(&server, token, "stateless").await;
    assert_eq!(message["userId"], user["id"]);
    // Over the socket too: the connection is authenticated by the payload.
    let mut socket = SocketClient::connect(
        &server.base,
        Some(json!({"strategy": "jwt", "accessToken": token})),
        &[],
    )
    .await
    .unwrap();
    let page = socket.call("find", vec![json!("messages")]).await.unwrap();
    assert_eq!(page["total"], json!(1));
}

/// The app hears an expired socket's disconnect once, when it closes (not
/// once at expiry and again at the close).
#[tokio::test]
async fn an_expired_socket_is_reported_disconnected_once() {
    let server = server(json!({"authentication": {"jwtOptions": {"expiresIn": "1s"}}})).await;
    let heard = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&heard);
    server.app.on_disconnect(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let token = sign_up(&server, "ada@example.com").await;
    let (mut socket, _) = logged_in(&server, &token).await;
    assert!(socket.closed_within(Duration::from_secs(6)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(heard.load(std::sync::atomic::Ordering::SeqCst), 1);
}
