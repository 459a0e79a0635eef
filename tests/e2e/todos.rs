//! `examples/todos.rs` (issue 13, point 8), the newcomer's app written with
//! schemas and resolvers, driven over HTTP: sign-up checked by its schema
//! and its hash never sent, the owner set from the token, each user seeing
//! only their own todos, a query's URL strings typed, the `role` claim in
//! the token, and `remove` for admins only.

#[path = "../../examples/todos.rs"]
#[allow(dead_code)]
mod example;

use plume::Params;
use serde_json::{Value, json};

use crate::support::TestServer;

async fn log_in(server: &TestServer, email: &str, password: &str) -> String {
    let (status, auth) = server
        .post(
            "/authentication",
            &json!({"strategy": "local", "email": email, "password": password}),
        )
        .await;
    assert_eq!(status, 201, "{auth}");
    auth["accessToken"].as_str().unwrap().to_owned()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_todo_app_works_as_a_newcomer_expects() {
    let app = example::app().await.unwrap();
    app.service("users")
        .unwrap()
        .create(
            json!({"email": "admin@example.com", "password": "admin password", "role": "admin"}),
            Params::new(),
        )
        .await
        .unwrap();
    let server = TestServer::start(app).await;

    // Sign-up: the schema refuses a bad address, a short password and a
    // role; a good one is created without its hash in the answer.
    for bad in [
        json!({"email": "ada", "password": "correct horse"}),
        json!({"email": "ada@example.com", "password": "short"}),
        json!({"email": "ada@example.com", "password": "correct horse", "role": "admin"}),
    ] {
        let (status, error) = server.post("/users", &bad).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error["message"], json!("validation failed"));
    }
    for email in ["ada@example.com", "bob@example.com"] {
        let (status, user) = server
            .post(
                "/users",
                &json!({"email": email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(user.get("password"), None, "{user}");
    }
    let ada = log_in(&server, "ada@example.com", "correct horse").await;
    let bob = log_in(&server, "bob@example.com", "correct horse").await;
    let admin = log_in(&server, "admin@example.com", "admin password").await;
    assert_eq!(claims(&ada)["role"], json!("user"));
    assert_eq!(claims(&admin)["role"], json!("admin"));

    let send = |method: reqwest::Method, token: &str, path: &str, body: Option<Value>| {
        let request = server
            .client
            .request(method, server.url(path))
            .bearer_auth(token);
        match body {
            Some(body) => request.json(&body),
            None => request,
        }
    };
    use reqwest::Method;

    // Todos: the owner is the token's user, whatever the body says.
    let (status, todo) = server
        .send(send(
            Method::POST,
            &ada,
            "/todos",
            Some(json!({"title": "write tests"})),
        ))
        .await;
    assert_eq!(status, 201, "{todo}");
    assert_eq!(todo["owner"], json!(1), "{todo}");
    assert_eq!(todo["done"], json!(false));
    let (status, error) = server
        .send(send(
            Method::POST,
            &ada,
            "/todos",
            Some(json!({"title": "x", "owner": 2})),
        ))
        .await;
    assert_eq!(status, 400, "{error}");
    let (status, _) = server
        .send(send(
            Method::POST,
            &bob,
            "/todos",
            Some(json!({"title": "bob's", "done": true})),
        ))
        .await;
    assert_eq!(status, 201);

    // Each sees their own; `done=false` from the URL is the boolean.
    let (status, page) = server
        .send(send(Method::GET, &ada, "/todos?done=false", None))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], json!(1), "{page}");
    assert_eq!(page["data"][0]["title"], json!("write tests"));
    let (_, page) = server.send(send(Method::GET, &bob, "/todos", None)).await;
    assert_eq!(page["total"], json!(1), "{page}");
    let (status, _) = server
        .send(send(Method::GET, &ada, "/todos?secret=1", None))
        .await;
    assert_eq!(status, 400, "unknown query fields are refused");

    // Bob cannot read or change Ada's todo; Ada can.
    let path = format!("/todos/{}", todo["id"]);
    let (status, _) = server.send(send(Method::GET, &bob, &path, None)).await;
    assert_eq!(status, 404);
    let (status, _) = server
        .send(send(
            Method::PATCH,
            &bob,
            &path,
            Some(json!({"done": true})),
        ))
        .await;
    assert_eq!(status, 404);
    let (status, patched) = server
        .send(send(
            Method::PATCH,
            &ada,
            &path,
            Some(json!({"done": true})),
        ))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["done"], json!(true));

    // Only an admin removes.
    let (status, error) = server.send(send(Method::DELETE, &ada, &path, None)).await;
    assert_eq!(status, 403, "{error}");
    let (status, removed) = server.send(send(Method::DELETE, &admin, &path, None)).await;
    assert_eq!(status, 200, "{removed}");
}
