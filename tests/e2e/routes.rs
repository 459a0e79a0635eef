//! Every route of the default app over real HTTP: the status and the shape
//! of the body for sign-up, login, re-authentication, logout, the users
//! and messages services, and the paths and verbs that do not exist.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    Account, Fixture, PASSWORD, account, assert_error, assert_no_secret, assert_status_error,
    assert_unwritable, call, id_text, jwt_claims, jwt_header, login, message_path, post_message,
    server, sign_up, snapshot,
};
use crate::support::TestServer;

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn sign_up_is_201_without_the_password_and_a_duplicate_email_is_409() {
    let server = server().await;
    // Sign-up takes an email and a password, nothing else: any other field
    // is 400 naming it, and nothing is stored.
    let answer = server
        .post(
            "/users",
            &json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}),
        )
        .await;
    assert_unwritable(&answer, "name");
    assert_no_secret(&answer.1);
    let user = sign_up(
        &server,
        &json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(keys(&user), ["email", "id"], "{user}");
    assert_eq!(user["email"], json!("ada@example.com"));
    assert!(user["id"].is_i64() || user["id"].is_string(), "{user}");

    let answer = server
        .post(
            "/users",
            &json!({"email": "ada@example.com", "password": "another one"}),
        )
        .await;
    assert_status_error(&answer, "Conflict", 409);
    assert_no_secret(&answer.1);

    // The first account is the one that still logs in.
    let (status, body) = login(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"], user);
    let (status, body) = login(&server, "ada@example.com", "another one").await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn local_login_is_201_with_token_authentication_and_user() {
    let server = server().await;
    let user = sign_up(
        &server,
        &json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    let (status, body) = login(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    assert_no_secret(&body);
    assert_eq!(keys(&body), ["accessToken", "authentication", "user"]);
    assert_eq!(body["user"], user);
    assert_eq!(keys(&body["authentication"]), ["payload", "strategy"]);
    assert_eq!(body["authentication"]["strategy"], json!("local"));

    let token = body["accessToken"].as_str().unwrap();
    let payload = &body["authentication"]["payload"];
    assert_eq!(
        keys(payload),
        ["aud", "exp", "iat", "iss", "jti", "role", "sub"],
        "{payload}"
    );
    assert_eq!(payload, &jwt_claims(token), "the payload is the token's");
    assert_eq!(payload["aud"], json!("https://yourdomain.com"));
    assert_eq!(payload["iss"], json!("feathers"));
    assert_eq!(payload["sub"], json!(id_text(&user["id"])));
    assert_eq!(payload["role"], json!("user"));
    assert!(!payload["jti"].as_str().unwrap().is_empty(), "{payload}");
    let (iat, exp) = (
        payload["iat"].as_u64().unwrap(),
        payload["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 86_400, "expiresIn is 1d");
    let header = jwt_header(token);
    assert_eq!(header["typ"], json!("access"), "{header}");
    assert_eq!(header["alg"], json!("HS256"), "{header}");

    // Each login is a new token with its own jti.
    let (_, again) = login(&server, "ada@example.com", PASSWORD).await;
    assert_ne!(
        again["authentication"]["payload"]["jti"], payload["jti"],
        "{again}"
    );
}

#[tokio::test]
async fn jwt_reauthentication_returns_the_same_token() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let (status, body) = server
        .post(
            "/authentication",
            &json!({"strategy": "jwt", "accessToken": ada.token}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_no_secret(&body);
    assert_eq!(body["accessToken"], json!(ada.token), "never a new token");
    assert_eq!(body["authentication"]["strategy"], json!("jwt"));
    assert_eq!(
        body["authentication"]["payload"],
        jwt_claims(&ada.token),
        "{body}"
    );
    assert_eq!(body["user"]["id"], ada.id);
    assert_eq!(body["user"]["email"], json!("ada@example.com"));
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let server = server().await;
    account(&server, "ada@example.com").await;
    let (status, wrong) = login(&server, "ada@example.com", "not the password").await;
    assert_eq!(status, 401);
    assert_error(&wrong, "NotAuthenticated", 401);
    assert_eq!(wrong["message"], json!("Invalid login"));
    let (status, unknown) = login(&server, "nobody@example.com", PASSWORD).await;
    assert_eq!(status, 401);
    assert_eq!(unknown, wrong, "the two failures must be indistinguishable");
    // A missing strategy field is no login either.
    let (status, body) = server
        .post(
            "/authentication",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body.get("accessToken").is_none(), "{body}");
}

/// A user gets, patches, replaces, finds and removes their own record
/// with a token and never sees a password; a password change revokes the
/// token it was made with (a new login works at once); the removed user's
/// token authenticates nobody.
#[tokio::test]
async fn users_get_patch_put_delete_with_a_token_never_show_a_password() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let bob = account(&server, "bob@example.com").await;
    let path = ada.path();
    let id = plume::Id::from_value(&ada.id).unwrap().unwrap();

    let (status, got) = call(&server, Method::GET, &path, Some(&ada.token), None).await;
    assert_eq!(status, 200, "{got}");
    assert_no_secret(&got);
    assert_eq!(got, json!({"id": ada.id, "email": "ada@example.com"}));

    // Only `email` and `password` are writable.
    let answer = call(
        &server,
        Method::PATCH,
        &path,
        Some(&ada.token),
        Some(&json!({"name": "Ada", "password": "a new password"})),
    )
    .await;
    assert_unwritable(&answer, "name");
    assert_eq!(login(&server, "ada@example.com", PASSWORD).await.0, 201);

    let patch = json!({"password": "a new password"});
    let (status, patched) = call(
        &server,
        Method::PATCH,
        &path,
        Some(&ada.token),
        Some(&patch),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_no_secret(&patched);
    assert_eq!(patched, json!({"id": ada.id, "email": "ada@example.com"}));
    // The patched password is hashed and is the one that works now.
    assert_eq!(login(&server, "ada@example.com", PASSWORD).await.0, 401);
    let (status, auth) = login(&server, "ada@example.com", "a new password").await;
    assert_eq!(status, 201, "{auth}");
    let token = auth["accessToken"].as_str().unwrap().to_owned();
    // The change revoked the token it was made with.
    let answer = call(&server, Method::GET, &path, Some(&ada.token), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    assert_eq!(answer.1["message"], json!("jwt revoked"));

    let update = json!({"email": "ada@example.org", "password": "third password"});
    let (status, updated) = call(&server, Method::PUT, &path, Some(&token), Some(&update)).await;
    assert_eq!(status, 200, "{updated}");
    assert_no_secret(&updated);
    assert_eq!(
        updated,
        json!({"id": ada.id, "email": "ada@example.org"}),
        "update replaces the record and keeps the id"
    );
    let answer = call(&server, Method::GET, &path, Some(&token), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    let (status, auth) = login(&server, "ada@example.org", "third password").await;
    assert_eq!(status, 201, "{auth}");
    let token = auth["accessToken"].as_str().unwrap().to_owned();

    // A find is a page with the caller only.
    let (status, all) = call(&server, Method::GET, "/users", Some(&bob.token), None).await;
    assert_eq!(status, 200, "{all}");
    assert_no_secret(&all);
    assert_eq!(
        all,
        json!({"total": 1, "limit": 10, "skip": 0,
               "data": [{"id": bob.id, "email": "bob@example.com"}]})
    );
    let (status, mine) = call(&server, Method::GET, "/users", Some(&token), None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["data"], json!([updated]));

    let (status, removed) = call(&server, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{removed}");
    assert_no_secret(&removed);
    assert_eq!(removed, updated);
    let gone = server
        .app
        .service("users")
        .unwrap()
        .get(id, plume::Params::new())
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), plume::ErrorKind::NotFound, "{gone}");
    // The removed user's token no longer authenticates anybody.
    let answer = call(&server, Method::GET, "/users", Some(&token), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    // Bob is untouched.
    assert_eq!(login(&server, "bob@example.com", PASSWORD).await.0, 201);
}

#[tokio::test]
async fn users_need_a_token_except_for_sign_up() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let path = ada.path();
    let body = json!({"name": "x"});
    for (method, path, body) in [
        (Method::GET, "/users", None),
        (Method::GET, path.as_str(), None),
        (Method::PATCH, path.as_str(), Some(&body)),
        (Method::PUT, path.as_str(), Some(&body)),
        (Method::DELETE, path.as_str(), None),
    ] {
        let answer = call(&server, method.clone(), path, None, body).await;
        assert_status_error(&answer, "NotAuthenticated", 401);
        assert_eq!(
            answer.1["message"],
            json!("Not authenticated"),
            "{method} {path}"
        );
        let answer = call(&server, method.clone(), path, Some("not.a.token"), body).await;
        assert_status_error(&answer, "NotAuthenticated", 401);
    }
    // Nothing happened to the account.
    let (status, got) = call(&server, Method::GET, &path, Some(&ada.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(got, json!({"id": ada.id, "email": "ada@example.com"}));
}

async fn find(server: &TestServer, token: &str, query: &str) -> Value {
    let path = format!("/messages{query}");
    let (status, page) = call(server, Method::GET, &path, Some(token), None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(keys(&page), ["data", "limit", "skip", "total"], "{page}");
    page
}

#[tokio::test]
async fn messages_find_pages_by_10_and_at_most_50() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    assert_eq!(
        find(&server, &ada.token, "").await,
        json!({"total": 0, "limit": 10, "skip": 0, "data": []})
    );
    for i in 0..55 {
        post_message(
            &server,
            &ada.token,
            &json!({"text": format!("message {i}")}),
        )
        .await;
    }
    let page = find(&server, &ada.token, "").await;
    assert_eq!(page["total"], json!(55));
    assert_eq!(page["limit"], json!(10));
    assert_eq!(page["data"].as_array().unwrap().len(), 10);
    assert_eq!(page["data"][0]["text"], json!("message 0"));

    let page = find(&server, &ada.token, "?$limit=100").await;
    assert_eq!(page["limit"], json!(50), "clamped to paginate.max");
    assert_eq!(page["data"].as_array().unwrap().len(), 50);

    let page = find(&server, &ada.token, "?$skip=50").await;
    assert_eq!(page["skip"], json!(50));
    assert_eq!(page["data"].as_array().unwrap().len(), 5);

    let page = find(&server, &ada.token, "?$limit=0").await;
    assert_eq!(page["total"], json!(55));
    assert_eq!(page["data"], json!([]));

    let page = find(&server, &ada.token, "?text=message%2042").await;
    assert_eq!(page["total"], json!(1));
    assert_eq!(page["data"][0]["text"], json!("message 42"));
}

#[tokio::test]
async fn message_create_stamps_the_caller_and_the_time() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let bob = account(&server, "bob@example.com").await;
    // The creation time is the server's: a client may not send one.
    let answer = call(
        &server,
        Method::POST,
        "/messages",
        Some(&ada.token),
        Some(&json!({"text": "hello", "createdAt": 1})),
    )
    .await;
    assert_unwritable(&answer, "createdAt");
    assert!(snapshot(&server, &ada.token).await.messages.is_empty());
    // The owner may be sent (the official client examples do) and is
    // overwritten from the token.
    let message = post_message(
        &server,
        &ada.token,
        &json!({"text": "hello", "userId": bob.id}),
    )
    .await;
    assert_eq!(
        keys(&message),
        ["createdAt", "id", "text", "userId"],
        "{message}"
    );
    assert_eq!(message["text"], json!("hello"));
    assert_eq!(message["userId"], ada.id, "the caller, not the body");
    let created = message["createdAt"]
        .as_u64()
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        created > 1_500_000_000_000,
        "milliseconds since the epoch: {message}"
    );

    let path = message_path(&message);
    let (status, got) = call(&server, Method::GET, &path, Some(&bob.token), None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, message);
}

#[tokio::test]
async fn blank_message_text_is_400_naming_the_field() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    for body in [
        json!({"text": "   "}),
        json!({"text": ""}),
        json!({"text": 5}),
        json!({"text": null}),
        json!({}),
        // Each record of an array is checked (a valid array is the
        // store's 405: `messages_refuse_calls_on_many_records`).
        json!([{"text": "many"}, {"text": ""}]),
    ] {
        let answer = call(
            &server,
            Method::POST,
            "/messages",
            Some(&ada.token),
            Some(&body),
        )
        .await;
        assert_status_error(&answer, "BadRequest", 400);
        assert_eq!(answer.1["message"], json!("validation failed"), "{body}");
        // The schema's error names the text, or that it is missing.
        let error = &answer.1["data"][0];
        let path = error["instancePath"].as_str().unwrap_or_default();
        assert!(
            path.ends_with("/text") || error["keyword"] == json!("required"),
            "{body}: {}",
            answer.1
        );
    }
    // Bounded: one character over the limit is refused, the limit is not.
    let at = |n: usize| json!({"text": "x".repeat(n)});
    let answer = call(
        &server,
        Method::POST,
        "/messages",
        Some(&ada.token),
        Some(&at(crate::default_app::MAX_TEXT + 1)),
    )
    .await;
    assert_status_error(&answer, "BadRequest", 400);
    assert_eq!(
        answer.1["data"][0]["keyword"],
        json!("maxLength"),
        "{}",
        answer.1
    );
    assert!(snapshot(&server, &ada.token).await.messages.is_empty());
    let (status, _) = call(
        &server,
        Method::POST,
        "/messages",
        Some(&ada.token),
        Some(&at(crate::default_app::MAX_TEXT)),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn message_get_patch_update_remove() {
    let f = Fixture::new().await;
    let path = message_path(&f.alice_message);

    let (status, patched) = f
        .as_alice(Method::PATCH, &path, Some(&json!({"text": "edited"})))
        .await;
    assert_eq!(status, 200, "{patched}");
    let mut expected = f.alice_message.clone();
    expected["text"] = json!("edited");
    assert_eq!(patched, expected, "patch merges");

    let (status, updated) = f
        .as_alice(Method::PUT, &path, Some(&json!({"text": "replaced"})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], f.alice_message["id"]);
    assert_eq!(updated["text"], json!("replaced"));
    let (status, got) = f.as_alice(Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(got, updated, "what update answered is what is stored");

    let (status, removed) = f.as_alice(Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed, updated);
    let answer = f.as_alice(Method::GET, &path, None).await;
    assert_status_error(&answer, "NotFound", 404);
    let answer = f.as_alice(Method::DELETE, &path, None).await;
    assert_status_error(&answer, "NotFound", 404);

    // Bob's message was not touched by any of it.
    let bob_path = message_path(&f.bob_message);
    let (status, bobs) = f.as_alice(Method::GET, &bob_path, None).await;
    assert_eq!(status, 200);
    assert_eq!(bobs, f.bob_message);
}

#[tokio::test]
async fn messages_need_a_token_for_every_method() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let path = message_path(&f.alice_message);
    let body = json!({"text": "anonymous"});
    for (method, path, body) in [
        (Method::GET, "/messages", None),
        (Method::GET, path.as_str(), None),
        (Method::POST, "/messages", Some(&body)),
        (Method::PATCH, path.as_str(), Some(&body)),
        (Method::PUT, path.as_str(), Some(&body)),
        (Method::DELETE, path.as_str(), None),
    ] {
        let answer = call(&f.server, method.clone(), path, None, body).await;
        assert_status_error(&answer, "NotAuthenticated", 401);
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn messages_refuse_calls_on_many_records() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let answer = f
        .as_alice(Method::PATCH, "/messages", Some(&json!({"text": "all"})))
        .await;
    assert_status_error(&answer, "MethodNotAllowed", 405);
    assert_eq!(answer.1["message"], json!("Can not patch multiple entries"));
    let answer = f.as_alice(Method::DELETE, "/messages", None).await;
    assert_status_error(&answer, "MethodNotAllowed", 405);
    assert_eq!(
        answer.1["message"],
        json!("Can not remove multiple entries")
    );
    // The same with a query that matches everything.
    let answer = f
        .as_alice(Method::DELETE, "/messages?text[$ne]=x", None)
        .await;
    assert_status_error(&answer, "MethodNotAllowed", 405);
    // And update needs an id.
    let answer = f
        .as_alice(Method::PUT, "/messages", Some(&json!({"text": "all"})))
        .await;
    assert_status_error(&answer, "BadRequest", 400);
    // Creating many valid messages is the store's 405, as in Feathers
    // (issue 12): the validation hooks check each record and leave the
    // decision to the store; an invalid record is still a 400.
    let many = json!([{"text": "one"}, {"text": "two"}]);
    let answer = f.as_alice(Method::POST, "/messages", Some(&many)).await;
    assert_status_error(&answer, "MethodNotAllowed", 405);
    assert_eq!(
        answer.1["message"],
        json!("Can not create multiple entries")
    );
    let blank = json!([{"text": "one"}, {"text": " "}]);
    let answer = f.as_alice(Method::POST, "/messages", Some(&blank)).await;
    assert_status_error(&answer, "BadRequest", 400);
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn logout_is_200_and_revokes_that_token_only() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let (status, second) = login(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 201);
    let other_session = second["accessToken"].as_str().unwrap().to_owned();

    let (status, body) = call(
        &server,
        Method::DELETE,
        "/authentication",
        Some(&ada.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_no_secret(&body);
    assert_eq!(body["user"]["id"], ada.id, "{body}");
    assert_eq!(body["authentication"]["strategy"], json!("jwt"), "{body}");

    let answer = call(&server, Method::GET, "/messages", Some(&ada.token), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    let answer = server
        .post(
            "/authentication",
            &json!({"strategy": "jwt", "accessToken": ada.token}),
        )
        .await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    let answer = call(
        &server,
        Method::DELETE,
        "/authentication",
        Some(&ada.token),
        None,
    )
    .await;
    assert_status_error(&answer, "NotAuthenticated", 401);

    // Another login of the same user is another session.
    let (status, page) = call(
        &server,
        Method::GET,
        "/messages",
        Some(&other_session),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // Logging out needs a token.
    let answer = call(&server, Method::DELETE, "/authentication", None, None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
}

#[tokio::test]
async fn logout_by_id_must_name_the_callers_token() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let bob = account(&server, "bob@example.com").await;
    // Ada cannot log Bob out by naming his token.
    let answer = call(
        &server,
        Method::DELETE,
        &format!("/authentication/{}", bob.token),
        Some(&ada.token),
        None,
    )
    .await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    let (status, _) = call(&server, Method::GET, "/messages", Some(&bob.token), None).await;
    assert_eq!(status, 200, "Bob is still logged in");
    let (status, _) = call(&server, Method::GET, "/messages", Some(&ada.token), None).await;
    assert_eq!(status, 200, "Ada is still logged in");
    // Naming her own token works.
    let (status, body) = call(
        &server,
        Method::DELETE,
        &format!("/authentication/{}", ada.token),
        Some(&ada.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(&server, Method::GET, "/messages", Some(&ada.token), None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_authentication_service_has_no_other_methods() {
    let server = server().await;
    let ada: Account = account(&server, "ada@example.com").await;
    for (method, path) in [
        (Method::GET, "/authentication"),
        (Method::GET, "/authentication/1"),
        (Method::PATCH, "/authentication/1"),
        (Method::PUT, "/authentication/1"),
    ] {
        let answer = call(
            &server,
            method.clone(),
            path,
            Some(&ada.token),
            Some(&json!({})),
        )
        .await;
        assert_status_error(&answer, "MethodNotAllowed", 405);
    }
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_verbs_405() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    for path in ["/nowhere", "/messages/1/extra", "/users/1/2/3", "/"] {
        let answer = call(&server, Method::GET, path, Some(&ada.token), None).await;
        assert_status_error(&answer, "NotFound", 404);
        assert_eq!(answer.1["message"], json!("Page not found"), "{path}");
    }
    for method in [
        Method::OPTIONS,
        Method::from_bytes(b"PROPFIND").unwrap(),
        Method::TRACE,
    ] {
        let answer = call(&server, method.clone(), "/messages", Some(&ada.token), None).await;
        assert_status_error(&answer, "MethodNotAllowed", 405);
        assert_eq!(
            answer.1["message"],
            json!(format!("Method {method} not allowed"))
        );
    }
    // Standard methods are not reachable through X-Service-Method.
    let (status, body) = server
        .send(
            server
                .client
                .post(server.url("/messages"))
                .bearer_auth(&ada.token)
                .header("X-Service-Method", "remove")
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, 405, "{body}");
    assert_error(&body, "MethodNotAllowed", 405);
}
