//! Typed access over real HTTP (issue 13, point 1): a hook reads the data,
//! the verified claims and the user as Rust types; data that does not fit
//! is a Feathers 400 naming the field.

use plume::store::MemoryService;
use plume::{HookContext, Hooks, Result, authenticate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::support::{create_user, local_app, login};
use crate::support::TestServer;

#[derive(Deserialize, Serialize)]
struct NewTodo {
    title: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    email: String,
}

/// Stamps the owner from the token's claims and the user, the way a
/// Feathers hook writes `context.data.owner = context.params.user.id`.
async fn stamp_owner(ctx: &mut HookContext) -> Result<()> {
    let todo: NewTodo = ctx.data_as()?;
    let claims: Claims = ctx.params.claims_as()?;
    let user: User = ctx.params.user_as()?;
    let mut record = serde_json::to_value(&todo).unwrap_or_default();
    record["owner"] = json!(user.id);
    record["ownerEmail"] = json!(user.email);
    record["sub"] = json!(claims.sub);
    ctx.set_data(&record)
}

#[tokio::test]
async fn a_hook_reads_data_claims_and_user_as_types() {
    let app = local_app().await;
    app.use_service("todos", MemoryService::new())
        .unwrap()
        .hooks(Hooks::new().before("create", (authenticate(["jwt"]), stamp_owner)));
    let user = create_user(&app, "ada@example.com", "secret").await;
    let token = login(&app, "ada@example.com", "secret").await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = TestServer::start(app).await;
    let post = |body: Value| {
        server
            .client
            .post(server.url("/todos"))
            .bearer_auth(&token)
            .json(&body)
    };

    let (status, created) = server.send(post(json!({"title": "write tests"}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["owner"], user["id"]);
    assert_eq!(created["ownerEmail"], json!("ada@example.com"));
    assert_eq!(created["sub"], json!(user["id"].to_string()));
    assert_eq!(created["tags"], json!([]));

    let (status, error) = server
        .send(post(json!({"title": "x", "tags": ["a", 5]})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({
            "name": "BadRequest",
            "message": "Invalid data: tags/1: invalid type: integer `5`, expected a string",
            "code": 400,
            "className": "bad-request",
            "data": [{
                "instancePath": "/tags/1",
                "message": "invalid type: integer `5`, expected a string"
            }]
        })
    );
    let (status, error) = server.send(post(json!({"tags": []}))).await;
    assert_eq!(status, 400);
    assert_eq!(
        error["message"],
        json!("Invalid data: missing field `title`")
    );
    server.stop().await;
}
