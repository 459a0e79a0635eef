//! Who a record is and who the caller is cannot be changed from the
//! request: an id given as an object (in the URL it is a plain string id,
//! in a body it is 400 on create and ignored on patch and update), a
//! client-chosen user id (ignored: the server assigns user ids), and keys
//! named `provider`, `user`, `payload` or `authenticated` (in a query plain
//! filters; in a body refused unless the service allows the field; stored
//! by the server, plain data), never credentials or claims.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    Fixture, PASSWORD, assert_no_secret, assert_status_error, assert_unwritable, call, id_text,
    jwt_claims, login, message_path, post_message, sign_up,
};

#[tokio::test]
async fn an_object_id_in_the_url_is_a_string_id_that_matches_nothing() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    // Bodies each service accepts, so that only the id decides the answer.
    // The users body changes the password: a 404 must not revoke Alice's
    // token either (every later call here is still hers).
    for (service, body) in [
        ("/messages", json!({"text": "pwned"})),
        (
            "/users",
            json!({"email": "pwned@example.com", "password": "pwned"}),
        ),
    ] {
        for id in [
            "%7B%22%24ne%22%3A1%7D",      // {"$ne":1}
            "%7B%22%24ne%22%3Anull%7D",   // {"$ne":null}
            "%7B%22%24gt%22%3A-1%7D",     // {"$gt":-1}
            "%5B0%2C1%5D",                // [0,1]
            "%2A",                        // *
            "1%20OR%201%3D1",             // 1 OR 1=1
            "0%27%20OR%20%271%27%3D%271", // 0' OR '1'='1
        ] {
            let path = format!("{service}/{id}");
            let answer = f.as_alice(Method::GET, &path, None).await;
            assert_status_error(&answer, "NotFound", 404);
            let answer = f.as_alice(Method::PATCH, &path, Some(&body)).await;
            assert_status_error(&answer, "NotFound", 404);
            let answer = f.as_alice(Method::PUT, &path, Some(&body)).await;
            assert_status_error(&answer, "NotFound", 404);
            let answer = f.as_alice(Method::DELETE, &path, None).await;
            assert_status_error(&answer, "NotFound", 404);
        }
    }
    // The 404 names the id as the string it was.
    let answer = f
        .as_alice(Method::GET, "/messages/%7B%22%24ne%22%3A1%7D", None)
        .await;
    assert_eq!(
        answer.1["message"],
        json!(r#"No record found for id '{"$ne":1}'"#)
    );
    f.assert_unchanged(&before).await;
    f.assert_logins_work().await;
}

#[tokio::test]
async fn an_object_id_in_a_body_is_400_and_touches_nothing() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    for id in [
        json!({"$ne": 1}),
        json!({"$ne": null}),
        json!({"$in": [0, 1]}),
        json!([0, 1]),
        json!(1.5),
        json!(true),
    ] {
        // On create, the id is refused (and the error hook tags it).
        let answer = f
            .as_alice(
                Method::POST,
                "/messages",
                Some(&json!({"text": "x", "id": id})),
            )
            .await;
        assert_status_error(&answer, "BadRequest", 400);
        assert_eq!(
            answer.1["data"],
            json!({"hook": "messages.error.create"}),
            "{id}"
        );
    }
    // (On `users` the server ignores a client's id altogether: see
    // `anonymous_sign_up_naming_an_existing_id_gets_a_new_account_and_the_victim_keeps_theirs`.)
    f.assert_unchanged(&before).await;

    // On patch and update the URL names the record; an id in the body
    // changes neither which record nor its id.
    let path = message_path(&f.alice_message);
    let (status, patched) = f
        .as_alice(
            Method::PATCH,
            &path,
            Some(&json!({"id": {"$ne": 1}, "text": "patched"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["id"], f.alice_message["id"]);
    let (status, updated) = f
        .as_alice(
            Method::PUT,
            &path,
            Some(&json!({"id": {"$ne": 1}, "text": "updated"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], f.alice_message["id"]);
    let after = f.snapshot().await;
    assert_eq!(after.messages.len(), before.messages.len());
    let mut expected = f.alice_message.clone();
    expected["text"] = json!("updated");
    assert_eq!(after.messages[0], expected, "the named record, id kept");
    assert_eq!(
        after.messages[1], f.bob_message,
        "only the named record changed"
    );
    assert_eq!(after.users, before.users);

    // Nor does an id in the body reach someone else's message: Bob's is
    // 404 to Alice.
    let path = message_path(&f.bob_message);
    for method in [Method::PATCH, Method::PUT] {
        let body = json!({"id": f.alice_message["id"], "text": "pwned"});
        let answer = f.as_alice(method, &path, Some(&body)).await;
        assert_status_error(&answer, "NotFound", 404);
    }
    f.assert_unchanged(&after).await;
}

#[tokio::test]
async fn anonymous_sign_up_naming_an_existing_id_gets_a_new_account_and_the_victim_keeps_theirs() {
    // The default app assigns user ids itself (Feathers' memory adapter
    // would replace the victim's account; a plain Plume store answers 409).
    let f = Fixture::new().await;
    let victim = f.alice.id.clone();
    for (n, id) in [victim.clone(), json!(id_text(&victim))]
        .into_iter()
        .enumerate()
    {
        let email = format!("mallory{n}@example.com");
        let (status, created) = f
            .server
            .post(
                "/users",
                &json!({"id": id, "email": email, "password": "mallory's"}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_ne!(created["id"], victim, "{created}");
        assert_ne!(created["id"], json!(id_text(&victim)), "{created}");
        assert_no_secret(&created);
    }
    // Not with the victim's own email either: that is taken.
    let answer = f
        .server
        .post(
            "/users",
            &json!({"id": victim, "email": f.alice.email, "password": "mallory's"}),
        )
        .await;
    assert_status_error(&answer, "Conflict", 409);
    // Many at once is no way around it.
    let answer = f
        .server
        .post(
            "/users",
            &json!([{"id": victim, "email": "mallory@example.com", "password": "mallory's"}]),
        )
        .await;
    assert_status_error(&answer, "MethodNotAllowed", 405);
    assert_eq!(
        answer.1["message"],
        json!("Can not create multiple entries")
    );
    f.assert_logins_work().await;
    let (status, _) = login(&f.server, &f.alice.email, "mallory's").await;
    assert_eq!(status, 401);
    let (status, _) = login(&f.server, "mallory@example.com", "mallory's").await;
    assert_eq!(status, 401, "no account was made");
}

#[tokio::test]
async fn query_keys_named_like_params_do_not_authenticate() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let message = message_path(&f.alice_message);
    let tricks = [
        "provider=x&authenticated=true",
        "authenticated=true",
        "authenticated=1",
        "provider=",
        "user[id]=0&user[email]=alice%40example.com",
        "payload[sub]=0&payload[role]=admin",
        "authentication[strategy]=jwt&authentication[accessToken]=x",
        "entities[user][id]=0",
    ];
    for query in tricks {
        for (method, path, body) in [
            (Method::GET, "/messages", None),
            (Method::GET, message.as_str(), None),
            (
                Method::POST,
                "/messages",
                Some(json!({"text": "anonymous"})),
            ),
            (
                Method::PATCH,
                message.as_str(),
                Some(json!({"text": "anonymous"})),
            ),
            (Method::DELETE, message.as_str(), None),
            (Method::GET, "/users", None),
        ] {
            let path = format!("{path}?{query}");
            let answer = call(&f.server, method.clone(), &path, None, body.as_ref()).await;
            assert_status_error(&answer, "NotAuthenticated", 401);
        }
    }
    f.assert_unchanged(&before).await;

    // With a token they are ordinary filters on fields of those names.
    for query in ["authenticated=true", "provider=rest", "payload=x"] {
        let (status, page) = f
            .as_alice(Method::GET, &format!("/messages?{query}"), None)
            .await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(page["total"], json!(0), "{query}: {page}");
    }
}

/// Keys named like params in a message body are never credentials: a
/// client may not write them (400 naming the field, not taken for
/// someone's identity, nothing stored), `userId` comes from the token
/// whatever the body says, and the same keys written by the server are
/// kept as plain data.
#[tokio::test]
async fn body_keys_named_like_params_are_refused_or_kept_as_plain_data() {
    let f = Fixture::new().await;
    // A message body that claims to be Bob's.
    let claims = json!({
        "text": "who am I",
        "userId": f.bob.id,
        "user": {"id": f.bob.id, "email": f.bob.email},
        "provider": null,
        "authenticated": false,
        "payload": {"sub": id_text(&f.bob.id), "role": "admin"},
        "authentication": {"strategy": "jwt", "accessToken": f.bob.token},
    });
    let keys = [
        "user",
        "provider",
        "authenticated",
        "payload",
        "authentication",
    ];
    let before = f.snapshot().await;
    for key in keys {
        let body = json!({"text": "who am I", key: claims[key]});
        let answer = f.as_alice(Method::POST, "/messages", Some(&body)).await;
        assert_unwritable(&answer, key);
    }
    // Without a token, the same body is refused before anything else.
    let answer = call(&f.server, Method::POST, "/messages", None, Some(&claims)).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    f.assert_unchanged(&before).await;

    // The one claim a client may send is overwritten from the token.
    let message = post_message(
        &f.server,
        &f.alice.token,
        &json!({"text": "who am I", "userId": f.bob.id}),
    )
    .await;
    assert_eq!(
        message["userId"], f.alice.id,
        "the token decides, not the body"
    );

    // Written by the server, such keys are data like any other: stored and
    // served as given.
    let written = f
        .server
        .app
        .service("messages")
        .unwrap()
        .create(claims.clone(), plume::Params::new())
        .await
        .unwrap();
    let (status, got) = f.as_alice(Method::GET, &message_path(&written), None).await;
    assert_eq!(status, 200, "{got}");
    for key in keys {
        assert_eq!(got[key], claims[key], "{key} is stored as given");
    }
}

/// Sign-up bodies with keys named like params (`authenticated`, `user`,
/// `payload`, `provider`) are 400 naming the field and make no account and
/// no token; a plain sign-up then logs in as itself with the default role.
#[tokio::test]
async fn sign_up_with_authenticated_and_user_keys_authenticates_nobody() {
    let f = Fixture::new().await;
    let extras = json!({
        "authenticated": true,
        "user": {"id": f.alice.id, "email": f.alice.email, "role": "admin"},
        "payload": {"role": "admin", "sub": id_text(&f.alice.id)},
        "provider": "server",
    });
    let before = f.snapshot().await;
    for (key, value) in extras.as_object().unwrap() {
        let body = json!({
            "email": "mallory@example.com",
            "password": "mallory's password",
            key: value,
        });
        let answer = f.server.post("/users", &body).await;
        assert_unwritable(&answer, key);
        assert!(answer.1.get("accessToken").is_none(), "{}", answer.1);
    }
    f.assert_unchanged(&before).await;
    let (status, _) = login(&f.server, "mallory@example.com", "mallory's password").await;
    assert_eq!(status, 401, "no account was made");

    let mallory = sign_up(
        &f.server,
        &json!({"email": "mallory@example.com", "password": "mallory's password"}),
    )
    .await;
    assert!(mallory.get("accessToken").is_none(), "{mallory}");
    assert_ne!(mallory["id"], f.alice.id);

    // Signing up gave no token; Mallory still needs one.
    let answer = call(&f.server, Method::GET, "/messages", None, None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);

    // Her login is hers, with the default role.
    let (status, auth) = login(&f.server, "mallory@example.com", "mallory's password").await;
    assert_eq!(status, 201, "{auth}");
    let token = auth["accessToken"].as_str().unwrap();
    let claims = jwt_claims(token);
    assert_eq!(claims["sub"], json!(id_text(&mallory["id"])));
    assert_eq!(claims["role"], json!("user"));
    let message = post_message(&f.server, token, &json!({"text": "hi"})).await;
    assert_eq!(message["userId"], mallory["id"]);
}

#[tokio::test]
async fn a_payload_in_the_login_body_sets_no_claims() {
    let f = Fixture::new().await;
    let (status, auth) = f
        .server
        .post(
            "/authentication",
            &json!({"strategy": "local", "email": f.bob.email, "password": PASSWORD,
                    "payload": {"role": "admin", "sub": id_text(&f.alice.id),
                                "permissions": ["*"]},
                    "authenticated": true, "user": {"id": f.alice.id}}),
        )
        .await;
    assert_eq!(status, 201, "{auth}");
    let claims = jwt_claims(auth["accessToken"].as_str().unwrap());
    assert_eq!(claims["role"], json!("user"));
    assert_eq!(claims["sub"], json!(id_text(&f.bob.id)));
    assert!(claims.get("permissions").is_none(), "{claims}");
    assert_eq!(auth["user"]["id"], f.bob.id);

    // A jwt re-authentication with such a body returns the same token.
    let (status, again) = f
        .server
        .post(
            "/authentication",
            &json!({"strategy": "jwt", "accessToken": auth["accessToken"],
                    "payload": {"role": "admin"}}),
        )
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["accessToken"], auth["accessToken"]);

    // Operators where strings belong are no login.
    for (email, password) in [
        (json!({"$ne": null}), json!(PASSWORD)),
        (json!(f.bob.email), json!({"$ne": null})),
        (json!({"$gt": ""}), json!({"$gt": ""})),
        (json!([f.bob.email]), json!([PASSWORD])),
    ] {
        let answer = f
            .server
            .post(
                "/authentication",
                &json!({"strategy": "local", "email": email, "password": password}),
            )
            .await;
        assert_status_error(&answer, "NotAuthenticated", 401);
        assert_eq!(answer.1["message"], json!("Invalid login"));
    }
}

#[tokio::test]
async fn only_the_users_own_role_becomes_the_role_claim() {
    // Clients cannot write `role` or `permissions` (see the module docs of
    // `default_app`); the server sets them (as `plume user grant` does,
    // with an internal call), and the login signs the user's own role and
    // permissions into the token.
    let f = Fixture::new().await;
    let root = sign_up(
        &f.server,
        &json!({"email": "root@example.com", "password": PASSWORD}),
    )
    .await;
    let id = plume::Id::from_value(&root["id"]).unwrap().unwrap();
    f.server
        .app
        .service("users")
        .unwrap()
        .patch(
            Some(id),
            json!({"role": "admin", "permissions": ["messages:remove"]}),
            plume::Params::new(),
        )
        .await
        .unwrap();
    let (status, auth) = login(&f.server, "root@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{auth}");
    let claims: Value = jwt_claims(auth["accessToken"].as_str().unwrap());
    assert_eq!(claims["sub"], json!(id_text(&root["id"])));
    assert_eq!(claims["role"], json!("admin"));
    assert_eq!(claims["permissions"], json!(["messages:remove"]));
    // Everybody else's is `user`.
    let (_, auth) = login(&f.server, &f.alice.email, PASSWORD).await;
    let claims = jwt_claims(auth["accessToken"].as_str().unwrap());
    assert_eq!(claims["role"], json!("user"));
    assert!(claims.get("permissions").is_none(), "{claims}");
}

#[tokio::test]
async fn a_deleted_users_token_does_not_authenticate_a_new_account_with_its_id() {
    let f = Fixture::new().await;
    let old_token = f.bob.token.clone();
    let (status, removed) = call(
        &f.server,
        Method::DELETE,
        &f.bob.path(),
        Some(&old_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    let answer = call(&f.server, Method::GET, "/messages", Some(&old_token), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);

    let (status, mallory) = f
        .server
        .post(
            "/users",
            &json!({"id": f.bob.id, "email": "mallory@example.com", "password": "mallory's"}),
        )
        .await;
    // Refusing the id is one fix; keeping the old token dead is another.
    if status == 409 {
        return;
    }
    assert_eq!(status, 201, "{mallory}");
    let answer = call(&f.server, Method::GET, "/messages", Some(&old_token), None).await;
    assert_status_error(&answer, "NotAuthenticated", 401);
    let answer = f
        .server
        .post(
            "/authentication",
            &json!({"strategy": "jwt", "accessToken": old_token}),
        )
        .await;
    assert_status_error(&answer, "NotAuthenticated", 401);
}

#[tokio::test]
async fn url_ids_match_numeric_ids_only_in_canonical_decimal() {
    let f = Fixture::new().await;
    assert_eq!(f.alice_message["id"], json!(0));
    assert_eq!(f.bob_message["id"], json!(1));
    for path in ["/messages/0", "/messages/1"] {
        let (status, body) = f.as_alice(Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    for path in [
        "/messages/+1",
        "/messages/01",
        "/messages/00",
        "/messages/-0",
        "/messages/+0",
    ] {
        let answer = f.as_alice(Method::GET, path, None).await;
        assert_status_error(&answer, "NotFound", 404);
    }
}

#[tokio::test]
async fn a_login_name_finds_only_the_account_with_that_string() {
    let server = super::support::server().await;
    // An email is a string holding an address: a number (which a lookup
    // by the string "5" could match) never makes an account, nor does a
    // string that is not an address.
    for email in [json!(5), json!("5")] {
        let (status, answer) = server
            .post("/users", &json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(status, 400, "{email}: {answer}");
        assert_eq!(
            answer["data"][0]["instancePath"],
            json!("/email"),
            "{answer}"
        );
    }
    let (status, _) = login(&server, "5", PASSWORD).await;
    assert_eq!(status, 401);
}
