//! What the default app's OpenAPI document (`GET /openapi.json`) says of
//! its services: the schemas its hooks check, and what each answers.

use serde_json::json;

use super::schemas::ClientSchemas;
use plume::schema::{Schema, ServiceDocs, query_syntax};
use plume::{App, Method, Result};

/// Registers the docs of `users`, `messages` and `authentication`.
pub(super) fn register(app: &App, schemas: ClientSchemas) -> Result<()> {
    let user = Schema::new(json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string", "format": "email"},
            "role": {"type": "string"},
            "permissions": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "email"],
    }))?;
    app.service("users")?.docs(
        ServiceDocs::new()
            .description("Sign-up is public; a token reaches only its own user.")
            .data(schemas.sign_up)
            .patch(schemas.user_patch)
            .query(Schema::new(query_syntax(&json!({
                "id": {"type": "integer"},
                "email": {"type": "string"},
            })))?)
            .result(user)
            .public([Method::Create]),
    );
    let fields = json!({
        "id": {"type": "integer"},
        "text": {"type": "string"},
        "userId": {"type": "integer"},
        "createdAt": {"type": "integer", "description": "milliseconds since the Unix epoch"},
    });
    app.service("messages")?.docs(
        ServiceDocs::new()
            .description("Everyone logged in reads all messages; only the author changes one.")
            .data(schemas.message)
            .patch(schemas.message_patch)
            .query(Schema::new(query_syntax(&fields))?)
            .result(Schema::new(json!({
                "type": "object",
                "properties": fields,
                "required": ["id", "text", "userId", "createdAt"],
            }))?),
    );
    app.service("authentication")?.docs(
        ServiceDocs::new()
            .description("Log in (create) and log out (remove).")
            .data(Schema::new(json!({
                "type": "object",
                "properties": {
                    "strategy": {"enum": ["local", "jwt"]},
                    "email": {"type": "string"},
                    "password": {"type": "string"},
                    "accessToken": {"type": "string"},
                },
                "required": ["strategy"],
            }))?)
            .result(Schema::new(json!({
                "type": "object",
                "properties": {
                    "accessToken": {"type": "string"},
                    "authentication": {"type": "object"},
                    "user": {"type": "object"},
                },
            }))?)
            .public([Method::Create]),
    );
    Ok(())
}
