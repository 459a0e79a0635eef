//! Customising the access token's payload, both ways Feathers documents:
//!
//! 1. a before hook on `authentication.create` that writes
//!    `params.payload` (the Auk recipe), and
//! 2. a custom authentication service whose `get_payload` calls the
//!    default (`super.getPayload`) and adds the user's `permissions` (the
//!    Dove recipe).
//!
//! `build_app` returns the set-up app, ready to be served by a transport.
//!
//! Run: `cargo run --example custom_payload`

#![allow(clippy::print_stdout)]

use async_trait::async_trait;
use plume::auth::{AuthResult, AuthenticationOverrides, AuthenticationService};
use plume::store::MemoryService;
use plume::{
    App, HookContext, Hooks, JwtStrategy, LocalStrategy, Params, Provider, Result, authenticate,
    hash_password, protect,
};
use serde_json::{Map, Value, json};

/// Route 1: a before hook adds a claim.
async fn add_tenant_claim(ctx: &mut HookContext) -> Result<()> {
    ctx.params.payload.insert("tenant".into(), json!("acme"));
    Ok(())
}

/// Route 2: the custom service's `get_payload`.
struct WithPermissions;

#[async_trait]
impl AuthenticationOverrides for WithPermissions {
    async fn get_payload(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        // Call the default first, as `super.getPayload(authResult, params)`.
        let mut payload = service.base_get_payload(auth_result, params).await?;
        if let Some(permissions) = auth_result.get("user").and_then(|u| u.get("permissions")) {
            payload.insert("permissions".into(), permissions.clone());
        }
        Ok(payload)
    }
}

/// Builds and sets up the app: `users` (passwords hashed and never sent),
/// `authentication` with both payload routes, `messages` behind a token.
pub async fn build_app() -> Result<App> {
    let app = App::new();
    app.set(
        "authentication",
        json!({
            // A new one per run: tokens end with the process. A real app
            // configures one made with `plume secret`.
            "secret": plume::config::generate_secret()?,
            "entity": "user",
            "service": "users",
            "authStrategies": ["jwt", "local"],
            "local": {"usernameField": "email", "passwordField": "password"}
        }),
    );
    app.use_service("users", MemoryService::new())?.hooks(
        Hooks::new()
            .before(["create", "update", "patch"], hash_password("password"))
            .around("all", protect(["password"])),
    );
    let auth = AuthenticationService::new(&app).with_overrides(WithPermissions);
    auth.register("jwt", JwtStrategy::new())?;
    auth.register("local", LocalStrategy::new())?;
    app.use_service("authentication", auth)?
        .hooks(Hooks::new().before("create", add_tenant_claim));
    app.use_service("messages", MemoryService::new())?
        .hooks(Hooks::new().before("all", authenticate(["jwt"])));
    app.setup().await?;
    Ok(app)
}

#[tokio::main]
async fn main() -> Result<()> {
    let app = build_app().await?;
    app.service("users")?
        .create(
            json!({"email": "dove@example.com", "password": "correct horse", "permissions": ["admin"]}),
            Params::external(Provider::Rest),
        )
        .await?;
    let login = app
        .service("authentication")?
        .create(
            json!({"strategy": "local", "email": "dove@example.com", "password": "correct horse"}),
            Params::external(Provider::Rest),
        )
        .await?;
    let token = login["accessToken"].as_str().unwrap_or_default();
    let auth = AuthenticationService::from_app(&app, None)
        .ok_or_else(|| plume::Error::general("no authentication service"))?;
    let claims = auth.verify_access_token(token, None, None).await?;
    println!("user:   {}", login["user"]);
    println!("claims: {}", Value::Object(claims));
    Ok(())
}
