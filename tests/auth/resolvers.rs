//! Resolvers over real HTTP (issue 13, point 4), as a Feathers v5 app
//! uses them: the password hashed by a data resolver, the hash dropped by
//! the external resolver (internal calls keep it), the owner set from the
//! token, a query resolver keeping each user to their own records, and a
//! virtual field that `$select` decides.

use plume::schema::{
    Resolver, password_hash, resolve_data, resolve_external, resolve_query, resolve_result,
};
use plume::store::MemoryService;
use plume::{App, AuthenticationService, Hooks, Paginate, Params, authenticate};
use serde_json::{Value, json};

use super::support::configure;
use crate::support::TestServer;

async fn app() -> App {
    let app = App::new();
    configure(
        &app,
        json!({
            "entity": "user",
            "service": "users",
            "secret": "supersecret",
            "authStrategies": ["local", "jwt"],
            "local": {"usernameField": "email", "passwordField": "password"}
        }),
    );
    app.use_service("users", MemoryService::new())
        .unwrap()
        .hooks(
            Hooks::new()
                .before(
                    ["create", "patch"],
                    resolve_data(Resolver::new().field("password", password_hash("local"))),
                )
                .after("all", resolve_external(Resolver::new().omit("password"))),
        );
    let owner = Resolver::new().field("userId", |_, _, ctx| async move {
        Ok(ctx.params.user().and_then(|u| u.get("id").cloned()))
    });
    let page = Paginate {
        default: 10,
        max: 50,
    };
    app.use_service("messages", MemoryService::new().paginate(page))
        .unwrap()
        .hooks(
            Hooks::new()
                .before("all", authenticate(["jwt"]))
                .before("create", resolve_data(owner.clone()))
                .before("find", resolve_query(owner))
                .after(
                    "all",
                    resolve_result(Resolver::new().virtual_field(
                        "length",
                        |record, _| async move {
                            Ok(record
                                .get("text")
                                .and_then(Value::as_str)
                                .map(|t| json!(t.chars().count())))
                        },
                    )),
                ),
        );
    let auth = AuthenticationService::new(&app);
    auth.register("jwt", plume::JwtStrategy::new()).unwrap();
    auth.register("local", plume::LocalStrategy::new()).unwrap();
    app.use_service("authentication", auth).unwrap();
    app.setup().await.unwrap();
    app
}

async fn sign_up_and_log_in(server: &TestServer, email: &str) -> String {
    let (status, user) = server
        .send(
            server
                .client
                .post(server.url("/users"))
                .json(&json!({"email": email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user.get("password"), None, "the hash is not sent: {user}");
    let (status, login) = server
        .send(
            server
                .client
                .post(server.url("/authentication"))
                .json(&json!({"strategy": "local", "email": email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 201, "{login}");
    login["accessToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_password_is_hashed_by_a_resolver_and_only_internal_calls_see_the_hash() {
    let app = app().await;
    let server = TestServer::start(app.clone()).await;
    sign_up_and_log_in(&server, "ada@example.com").await;
    let users = app.service("users").unwrap();
    let stored = users.get(0, Params::new()).await.unwrap();
    let hash = stored["password"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{stored}");
    // An external call of the same service: the external resolver ran.
    let external = Params::external(plume::Provider::Rest);
    let seen = users.get(0, external).await.unwrap();
    assert_eq!(seen.get("password"), None, "{seen}");
    // A patch hashes again.
    users
        .patch(
            Some(0.into()),
            json!({"password": "battery staple"}),
            Params::new(),
        )
        .await
        .unwrap();
    let stored = users.get(0, Params::new()).await.unwrap();
    assert_ne!(stored["password"].as_str().unwrap(), hash);
    assert!(
        stored["password"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$")
    );
}

#[tokio::test]
async fn the_owner_comes_from_the_token_and_each_user_finds_only_their_own() {
    let server = TestServer::start(app().await).await;
    let ada = sign_up_and_log_in(&server, "ada@example.com").await;
    let bob = sign_up_and_log_in(&server, "bob@example.com").await;
    let post = |token: &str, body: Value| {
        server
            .client
            .post(server.url("/messages"))
            .bearer_auth(token)
            .json(&body)
    };
    // A client-sent owner is replaced by the resolver.
    let (status, message) = server
        .send(post(&ada, json!({"text": "héllo", "userId": 99})))
        .await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["userId"], json!(0));
    assert_eq!(message["length"], json!(5), "virtual field: {message}");
    let (status, _) = server.send(post(&bob, json!({"text": "bob's"}))).await;
    assert_eq!(status, 201);

    let find = |token: &str, query: &str| {
        server
            .client
            .get(server.url(&format!("/messages{query}")))
            .bearer_auth(token)
    };
    // Asking for Bob's records still gives Ada's own: the query resolver
    // sets userId from the token.
    let (status, page) = server.send(find(&ada, "?userId=1")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], json!(1), "{page}");
    assert_eq!(page["data"][0]["text"], json!("héllo"));
    assert_eq!(page["data"][0]["length"], json!(5));
    // `$select` without the virtual field: it is not computed.
    let (_, page) = server.send(find(&bob, "?$select[]=text")).await;
    assert_eq!(page["data"][0]["text"], json!("bob's"), "{page}");
    assert_eq!(page["data"][0].get("length"), None, "{page}");
    let (_, page) = server
        .send(find(&bob, "?$select[]=text&$select[]=length"))
        .await;
    assert_eq!(page["data"][0]["length"], json!(5), "{page}");
}

#[tokio::test]
async fn a_resolver_error_fails_the_call() {
    let app = App::new();
    app.use_service("items", MemoryService::new())
        .unwrap()
        .hooks(Hooks::new().before(
            "create",
            resolve_data(Resolver::new().field("n", |value, _, _| async move {
                match value {
                    Some(Value::Number(n)) => Ok(Some(json!(n))),
                    _ => Err(plume::Error::bad_request("n must be a number")),
                }
            })),
        ));
    let items = app.service("items").unwrap();
    let error = items
        .create(json!({"n": "x"}), Params::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), 400);
    assert_eq!(error.message(), "n must be a number");
    assert_eq!(
        items.find(Params::new()).await.unwrap(),
        json!([]),
        "nothing was stored"
    );
}
