//! The attacks of the "secure by default" issue, run against the default
//! app on 127.0.0.1 as a hostile logged-in stranger or an anonymous client
//! would. Each worked on the app before the fix. Where each attack of the
//! issue is run:
//!
//! | attack | test |
//! |---|---|
//! | PATCH/PUT/DELETE someone else's user | here: `a_stranger_cannot_take_over_replace_or_delete_an_account` |
//! | sign-up with `role`/`permissions`, a 300 kB blob | here: `sign_up_cannot_grant_a_role_or_store_anything_but_email_and_password` |
//! | edit, replace, delete, create as or re-own someone's message | here: `messages_are_changed_only_by_their_author_who_comes_from_the_token` |
//! | `GET /users` lists everyone, unpaginated | here: `users_find_only_themselves_in_pages` |
//! | range queries on password hashes | here: `password_hashes_cannot_be_range_queried_even_when_the_store_forgot_to_protect_them` |
//! | 200 concurrent wrong logins, the right one among them | `e2e::throttle::of_200_concurrent_logins_on_one_account_at_most_the_limit_are_evaluated` |
//! | 300 logins with 1 MB names | `e2e::throttle::over_long_login_names_are_refused_before_the_throttle_and_take_no_memory` |
//! | 4 × 14 MB socket.io packets | `e2e::memory::socket_packets_over_the_body_limit_close_the_connection_unparsed` |
//! | events after a REST logout or deletion; a token from before a password change | here: `a_rest_logout_a_password_change_and_a_deletion_silence_the_users_sockets` |
//! | `ADA@x` after `ada@x` | here: `emails_are_one_account_whatever_their_case` |
//! | a login during 150 sign-ups | `e2e::throttle::sign_ups_from_one_address_are_limited_and_do_not_delay_a_login`, `..._from_many_addresses_...` |
//! | 31 fields × `$nin` of 500 | `e2e::queries::thirty_one_fields_of_nin_500_is_400_naming_the_limit` |
//! | `PLUME_ENV` unset trusts the committed secret | `cli::secret::a_first_start_stores_a_secret_that_later_starts_reuse` |
//! | `iss` as an array; two `Authorization` headers | here: `forged_issuers_subjects_and_doubled_authorization_headers_are_401` |
//! | an expired socket stays open | `realtime::auth::an_expired_token_is_announced_and_closes_the_connection` |
//!
//! More of the same class, found on the way and fixed: a user's own events
//! reached every socket; a socket that logged in as someone else kept the
//! first user's channel; a role change kept old claims alive; a closed
//! socket and its connection kept each other in memory for good.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    PASSWORD, account, assert_status_error, assert_unwritable, call, jwt_claims, login,
    message_path, post_message, server, sign_up,
};
use crate::support::{SocketClient, still_alive};

fn user_path(id: &Value) -> String {
    format!("/users/{}", super::support::id_text(id))
}

#[tokio::test]
async fn a_stranger_cannot_take_over_replace_or_delete_an_account() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let eve = account(&server, "eve@example.com").await;
    let victim = user_path(&ada.id);

    let take_over = json!({"password": "eve owns this now"});
    let answer = call(
        &server,
        Method::PATCH,
        &victim,
        Some(&eve.token),
        Some(&take_over),
    )
    .await;
    assert_status_error(&answer, "NotFound", 404);
    let answer = call(
        &server,
        Method::PUT,
        &victim,
        Some(&eve.token),
        Some(&json!({"email": "eve2@example.com", "password": "locked out"})),
    )
    .await;
    assert_status_error(&answer, "NotFound", 404);
    let answer = call(&server, Method::GET, &victim, Some(&eve.token), None).await;
    assert_status_error(&answer, "NotFound", 404);
    let answer = call(&server, Method::DELETE, &victim, Some(&eve.token), None).await;
    assert_status_error(&answer, "NotFound", 404);
    // Multi-record forms reach nothing either.
    let answer = call(&server, Method::DELETE, "/users", Some(&eve.token), None).await;
    assert!(answer.0 >= 400, "{answer:?}");

    // Ada still logs in with her password; Eve's does not work for her.
    assert_eq!(login(&server, "ada@example.com", PASSWORD).await.0, 201);
    assert_eq!(
        login(&server, "ada@example.com", "eve owns this now")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn sign_up_cannot_grant_a_role_or_store_anything_but_email_and_password() {
    let server = server().await;
    for extra in [
        json!({"role": "admin"}),
        json!({"permissions": ["*"]}),
        json!({"blob": "x".repeat(300 * 1024)}),
        json!({"authenticated": true}),
    ] {
        let mut body = json!({"email": "mallory@example.com", "password": PASSWORD});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let answer = server.post("/users", &body).await;
        let field = extra.as_object().unwrap().keys().next().unwrap();
        assert_unwritable(&answer, field);
    }
    // Nothing was stored: the email is still free.
    sign_up(
        &server,
        &json!({"email": "mallory@example.com", "password": PASSWORD}),
    )
    .await;
    let (status, auth) = login(&server, "mallory@example.com", PASSWORD).await;
    assert_eq!(status, 201);
    let claims = jwt_claims(auth["accessToken"].as_str().unwrap());
    assert_eq!(claims["role"], json!("user"));
    assert!(claims.get("permissions").is_none(), "{claims}");

    // A logged-in user cannot grant themselves a role either.
    let me = account(&server, "eve@example.com").await;
    let path = user_path(&me.id);
    for change in [json!({"role": "admin"}), json!({"permissions": ["*"]})] {
        let answer = call(
            &server,
            Method::PATCH,
            &path,
            Some(&me.token),
            Some(&change),
        )
        .await;
        assert_status_error(&answer, "BadRequest", 400);
        let mut replace = change.clone();
        replace["email"] = json!("eve@example.com");
        let answer = call(&server, Method::PUT, &path, Some(&me.token), Some(&replace)).await;
        assert_status_error(&answer, "BadRequest", 400);
    }
}

#[tokio::test]
async fn a_role_set_by_the_server_survives_the_users_own_update() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let users = server.app.service("users").unwrap();
    let id = plume::Id::from_value(&ada.id).unwrap().unwrap();
    users
        .patch(
            Some(id.clone()),
            json!({"role": "admin", "permissions": ["messages:remove"]}),
            plume::Params::new(),
        )
        .await
        .unwrap();
    // The grant revoked the token with the old claims; log in again.
    let (_, auth) = login(&server, "ada@example.com", PASSWORD).await;
    let token = auth["accessToken"].as_str().unwrap().to_owned();
    let (status, replaced) = call(
        &server,
        Method::PUT,
        &user_path(&ada.id),
        Some(&token),
        Some(&json!({"email": "ada@example.org"})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["role"], json!("admin"));
    let stored = users.get(id, plume::Params::new()).await.unwrap();
    assert_eq!(stored["permissions"], json!(["messages:remove"]));
    assert_eq!(stored["email"], json!("ada@example.org"));
}

#[tokio::test]
async fn users_find_only_themselves_in_pages() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    for n in 0..3 {
        account(&server, &format!("user{n}@example.com")).await;
    }
    for query in [
        "/users",
        "/users?$limit=50",
        "/users?id[$ne]=-1",
        "/users?$or[0][id][$gte]=0",
        "/users?email=user0@example.com",
    ] {
        let (status, page) = call(&server, Method::GET, query, Some(&ada.token), None).await;
        assert_eq!(status, 200, "{query}: {page}");
        let data = page["data"].as_array().unwrap_or_else(|| panic!("{page}"));
        assert!(data.len() <= 1, "{query}: {page}");
        assert!(
            data.iter().all(|user| user["id"] == ada.id),
            "{query}: {page}"
        );
        assert_eq!(page["limit"].as_u64().map(|l| l <= 50), Some(true));
    }
}

#[tokio::test]
async fn messages_are_changed_only_by_their_author_who_comes_from_the_token() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let eve = account(&server, "eve@example.com").await;
    let message = post_message(&server, &ada.token, &json!({"text": "mine"})).await;
    let path = message_path(&message);

    // Everyone logged in reads it (a chat), nobody else changes it.
    let (status, _) = call(&server, Method::GET, &path, Some(&eve.token), None).await;
    assert_eq!(status, 200);
    for (method, body) in [
        (Method::PATCH, Some(json!({"text": "pwned"}))),
        (Method::PUT, Some(json!({"text": "pwned"}))),
        (Method::DELETE, None),
    ] {
        let answer = call(
            &server,
            method.clone(),
            &path,
            Some(&eve.token),
            body.as_ref(),
        )
        .await;
        assert_status_error(&answer, "NotFound", 404);
    }
    // Creating as someone else: the owner comes from the token.
    let forged = post_message(
        &server,
        &eve.token,
        &json!({"text": "from ada, honest", "userId": ada.id}),
    )
    .await;
    assert_eq!(forged["userId"], eve.id);
    // Re-owning one's own message, or backdating it: 400, nothing changes.
    let own = message_path(&forged);
    for change in [
        json!({"userId": ada.id}),
        json!({"createdAt": 0}),
        json!({"text": "x", "extra": 1}),
    ] {
        let answer = call(
            &server,
            Method::PATCH,
            &own,
            Some(&eve.token),
            Some(&change),
        )
        .await;
        assert_status_error(&answer, "BadRequest", 400);
    }
    // A replace keeps the owner and the time.
    let (status, replaced) = call(
        &server,
        Method::PUT,
        &own,
        Some(&eve.token),
        Some(&json!({"text": "replaced"})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["userId"], eve.id);
    assert_eq!(replaced["createdAt"], forged["createdAt"]);
    let (status, got) = call(&server, Method::GET, &path, Some(&ada.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(got, message, "Ada's message is untouched");
}

#[tokio::test]
async fn password_hashes_cannot_be_range_queried_even_when_the_store_forgot_to_protect_them() {
    // An app whose users store does not declare `protected_fields`: the
    // authentication service protects the local strategy's field itself.
    use plume::store::MemoryService;
    use plume::{App, Hooks, JwtStrategy, LocalStrategy, authenticate, hash_password, protect};

    let app = App::new();
    app.set(
        "authentication",
        json!({
            "secret": "a-test-secret-that-is-long-enough-for-hs256-0123456789",
            "entity": "user",
            "service": "users",
            "authStrategies": ["jwt", "local"],
            "local": {"usernameField": "email", "passwordField": "password"}
        }),
    );
    app.use_service("users", MemoryService::new())
        .unwrap()
        .hooks(
            Hooks::new()
                .before(["find", "get"], authenticate(["jwt"]))
                .before("create", hash_password("password"))
                .around("all", protect(["password"])),
        );
    let auth = plume::AuthenticationService::new(&app);
    auth.register("jwt", JwtStrategy::new()).unwrap();
    auth.register("local", LocalStrategy::new()).unwrap();
    app.use_service("authentication", auth).unwrap();
    let server = crate::support::TestServer::start(app).await;
    server
        .post("/users", &json!({"email": "a@x", "password": PASSWORD}))
        .await;
    let (_, auth) = server
        .post(
            "/authentication",
            &json!({"strategy": "local", "email": "a@x", "password": PASSWORD}),
        )
        .await;
    let token = auth["accessToken"].as_str().unwrap();
    for query in [
        "/users?password[$gt]=$argon2id$v=19$m=19456",
        "/users?$sort[password]=1",
        "/users?$select[]=password",
        "/users?$or[0][password][$lt]=z",
    ] {
        let request = server.client.get(server.url(query)).bearer_auth(token);
        let answer = server.send(request).await;
        assert_status_error(&answer, "BadRequest", 400);
    }
}

/// A `messages created` event within `wait`, skipping other events.
async fn next_created(socket: &mut SocketClient, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (name, data) = socket.next_event(left).await?;
        if name == "messages created" {
            return Some(data);
        }
    }
}

async fn logged_in_socket(server: &crate::support::TestServer, token: &str) -> SocketClient {
    SocketClient::connect(
        &server.base,
        Some(json!({"strategy": "jwt", "accessToken": token})),
        &[],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_rest_logout_a_password_change_and_a_deletion_silence_the_users_sockets() {
    let server = server().await;
    let author = account(&server, "author@example.com").await;
    let ada = account(&server, "ada@example.com").await;

    // Logout over REST of the token a socket logged in with.
    let mut socket = logged_in_socket(&server, &ada.token).await;
    post_message(&server, &author.token, &json!({"text": "one"})).await;
    assert!(
        next_created(&mut socket, Duration::from_secs(5))
            .await
            .is_some()
    );
    let logout = server
        .client
        .delete(server.url("/authentication"))
        .bearer_auth(&ada.token);
    assert_eq!(server.send(logout).await.0, 200);
    post_message(&server, &author.token, &json!({"text": "two"})).await;
    assert_eq!(
        next_created(&mut socket, Duration::from_millis(500)).await,
        None
    );

    // A password change revokes every earlier token, over every transport.
    let (_, auth) = login(&server, "ada@example.com", PASSWORD).await;
    let old = auth["accessToken"].as_str().unwrap().to_owned();
    let mut socket = logged_in_socket(&server, &old).await;
    let (status, _) = call(
        &server,
        Method::PATCH,
        &user_path(&ada.id),
        Some(&old),
        Some(&json!({"password": "a brand new password"})),
    )
    .await;
    assert_eq!(status, 200);
    let answer = call(&server, Method::GET, "/messages", Some(&old), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    assert_eq!(answer.1["message"], json!("jwt revoked"));
    post_message(&server, &author.token, &json!({"text": "three"})).await;
    assert_eq!(
        next_created(&mut socket, Duration::from_millis(500)).await,
        None
    );
    // The new password logs in at once and its token works.
    let (status, fresh) = login(&server, "ada@example.com", "a brand new password").await;
    assert_eq!(status, 201, "{fresh}");
    let fresh = fresh["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&server, Method::GET, "/messages", Some(&fresh), None)
            .await
            .0,
        200
    );

    // Deleting the user revokes their tokens and silences their sockets.
    let mut socket = logged_in_socket(&server, &fresh).await;
    let (status, _) = call(
        &server,
        Method::DELETE,
        &user_path(&ada.id),
        Some(&fresh),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let answer = call(&server, Method::GET, "/messages", Some(&fresh), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    post_message(&server, &author.token, &json!({"text": "four"})).await;
    assert_eq!(
        next_created(&mut socket, Duration::from_millis(500)).await,
        None
    );
}

#[tokio::test]
async fn a_users_own_events_reach_only_that_users_sockets() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let eve = account(&server, "eve@example.com").await;
    let mut ada_socket = logged_in_socket(&server, &ada.token).await;
    let mut eve_socket = logged_in_socket(&server, &eve.token).await;
    let (status, _) = call(
        &server,
        Method::PATCH,
        &user_path(&ada.id),
        Some(&ada.token),
        Some(&json!({"email": "ada@example.org"})),
    )
    .await;
    assert_eq!(status, 200);
    // A sign-up is nobody's event either.
    sign_up(
        &server,
        &json!({"email": "new@example.com", "password": PASSWORD}),
    )
    .await;
    let (name, data) = ada_socket
        .next_event(Duration::from_secs(5))
        .await
        .expect("Ada hears of her own change");
    assert_eq!(name, "users patched");
    assert_eq!(data["email"], json!("ada@example.org"));
    assert!(data.get("password").is_none());
    let heard = eve_socket.next_event(Duration::from_millis(500)).await;
    assert_eq!(heard, None, "Eve hears nothing of Ada or of sign-ups");
}

/// Re-signs the claims of `token` with `change` applied, with the test
/// secret (so only the change can make it fail).
fn resign(token: &str, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let mut claims: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
    change(&mut claims);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("access".to_owned());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = plume::config::Config::load_with(&dir, "test", |_| None).unwrap();
    let secret = config
        .get("authentication.secret")
        .unwrap()
        .as_str()
        .unwrap();
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_issuers_subjects_and_doubled_authorization_headers_are_401() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    // The re-signing itself is sound: an unchanged copy is accepted.
    let same = resign(&ada.token, |_| {});
    assert_eq!(
        call(&server, Method::GET, "/messages", Some(&same), None)
            .await
            .0,
        200
    );
    let array_iss = resign(&ada.token, |claims| {
        claims.insert("iss".into(), json!(["feathers", "evil"]));
    });
    let answer = call(&server, Method::GET, "/messages", Some(&array_iss), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    let number_sub = resign(&ada.token, |claims| {
        claims.insert("sub".into(), json!(0));
    });
    let answer = call(&server, Method::GET, "/messages", Some(&number_sub), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);

    // Garbage first, a valid token second (and the reverse): 401.
    for (first, second) in [
        ("Bearer garbage".to_owned(), format!("Bearer {}", ada.token)),
        (format!("Bearer {}", ada.token), "Bearer garbage".to_owned()),
    ] {
        let request = server
            .client
            .get(server.url("/messages"))
            .header("authorization", first)
            .header("authorization", second);
        let answer = server.send(request).await;
        assert_status_error(&answer, "NotAuthenticated", 401);
    }
}

#[tokio::test]
async fn a_socket_that_logs_in_as_someone_else_leaves_the_first_users_channel() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    account(&server, "eve@example.com").await;
    let mut socket = logged_in_socket(&server, &ada.token).await;
    socket
        .call(
            "create",
            vec![
                json!("authentication"),
                json!({"strategy": "local", "email": "eve@example.com", "password": PASSWORD}),
            ],
        )
        .await
        .unwrap();
    let (status, _) = call(
        &server,
        Method::PATCH,
        &user_path(&ada.id),
        Some(&ada.token),
        Some(&json!({"email": "ada@example.org"})),
    )
    .await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Some((name, data)) = socket
        .next_event(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        assert_ne!(name, "users patched", "Ada's change reached Eve: {data}");
    }
}

#[tokio::test]
async fn a_role_change_revokes_the_tokens_that_carry_the_old_claims() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let id = plume::Id::from_value(&ada.id).unwrap().unwrap();
    let users = server.app.service("users").unwrap();
    users
        .patch(
            Some(id.clone()),
            json!({"role": "admin"}),
            plume::Params::new(),
        )
        .await
        .unwrap();
    let (_, admin) = login(&server, "ada@example.com", PASSWORD).await;
    let admin = admin["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&admin)["role"], json!("admin"));
    // The operator takes the role away: the admin token must not outlive it.
    users
        .patch(Some(id), json!({"role": "user"}), plume::Params::new())
        .await
        .unwrap();
    let answer = call(&server, Method::GET, "/messages", Some(&admin), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    let (status, fresh) = login(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 201);
    assert_eq!(
        jwt_claims(fresh["accessToken"].as_str().unwrap())["role"],
        json!("user")
    );
}

#[tokio::test]
async fn emails_are_one_account_whatever_their_case() {
    let server = server().await;
    let first = sign_up(
        &server,
        &json!({"email": "Ada@Example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(first["email"], json!("Ada@Example.com"), "stored as given");
    for other in ["ada@example.com", "ADA@EXAMPLE.COM"] {
        let answer = server
            .post(
                "/users",
                &json!({"email": other, "password": "another password"}),
            )
            .await;
        assert_status_error(&answer, "Conflict", 409);
    }
    // Login matches ignoring case, and finds the one account.
    for typed in ["ada@example.com", "ADA@example.COM", "Ada@Example.com"] {
        let (status, auth) = login(&server, typed, PASSWORD).await;
        assert_eq!(status, 201, "{typed}: {auth}");
        assert_eq!(auth["user"]["id"], first["id"]);
    }
    assert_eq!(
        login(&server, "ada@example.com", "another password")
            .await
            .0,
        401
    );
    // An email change into someone else's address in another case: 409.
    let eve = account(&server, "eve@example.com").await;
    let answer = call(
        &server,
        Method::PATCH,
        &user_path(&eve.id),
        Some(&eve.token),
        Some(&json!({"email": "ADA@example.com"})),
    )
    .await;
    assert_status_error(&answer, "Conflict", 409);
}

#[tokio::test]
async fn closed_logged_in_sockets_are_freed() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let weak = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&weak);
    server
        .app
        .on_connection(move |connection| seen.lock().unwrap().push(connection.downgrade()));
    for _ in 0..5 {
        logged_in_socket(&server, &ada.token).await.close().await;
    }
    assert_eq!(weak.lock().unwrap().len(), 5);
    assert_eq!(
        still_alive(&weak).await,
        0,
        "closed logged-in connections stay alive"
    );
}
