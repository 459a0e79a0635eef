//! Stateless tokens: `entity: null`, so the jwt strategy trusts the
//! verified payload and looks nothing up, while the local strategy keeps
//! its own entity (`authentication.local.entity`) to check passwords (the
//! Feathers cookbook setup). The token carries what the app needs
//! (`email`, `role`) through a custom `get_payload`.
//!
//! `build_app` returns the set-up app, ready to be served by a transport.
//!
//! Run: `cargo run --example stateless`

#![allow(clippy::print_stdout)]

use async_trait::async_trait;
use plume::auth::{AuthResult, AuthenticationOverrides, AuthenticationService};
use plume::store::MemoryService;
use plume::{
    App, Hooks, JwtStrategy, LocalStrategy, Params, Provider, Result, authenticate, hash_password,
    protect,
};
use serde_json::{Map, Value, json};

/// Puts what requests need into the token, since nothing is looked up later.
struct StatelessPayload;

#[async_trait]
impl AuthenticationOverrides for StatelessPayload {
    async fn get_payload(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let mut payload = service.base_get_payload(auth_result, params).await?;
        if let Some(user) = auth_result.get("user") {
            for key in ["email", "role"] {
                if let Some(value) = user.get(key) {
                    payload.insert(key.into(), value.clone());
                }
            }
        }
        Ok(payload)
    }
}

/// Builds and sets up the app.
pub async fn build_app() -> Result<App> {
    let app = App::new();
    app.set(
        "authentication",
        json!({
            // Example only: use `plume secret` for a real one.
            "secret": "example-secret-example-secret-example-secret",
            "entity": null,
            "authStrategies": ["jwt", "local"],
            "jwtOptions": {"expiresIn": "1h"},
            "local": {
                "entity": "user", "service": "users",
                "usernameField": "email", "passwordField": "password"
            }
        }),
    );
    app.use_service("users", MemoryService::new())?.hooks(
        Hooks::new()
            .before(["create", "update", "patch"], hash_password("password"))
            .around("all", protect(["password"])),
    );
    let auth = AuthenticationService::new(&app).with_overrides(StatelessPayload);
    auth.register("jwt", JwtStrategy::new())?;
    auth.register("local", LocalStrategy::new())?;
    app.use_service("authentication", auth)?;
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
            json!({"email": "ada@example.com", "password": "correct horse", "role": "editor"}),
            Params::external(Provider::Rest),
        )
        .await?;
    let login = app
        .service("authentication")?
        .create(
            json!({"strategy": "local", "email": "ada@example.com", "password": "correct horse"}),
            Params::external(Provider::Rest),
        )
        .await?;
    println!("claims: {}", login["authentication"]["payload"]);

    // A request with the token: no user lookup, the payload is the identity.
    let mut params = Params::external(Provider::Rest);
    params.authentication = Some(json!({"strategy": "jwt", "accessToken": login["accessToken"]}));
    let message = app
        .service("messages")?
        .create(json!({"text": "hi"}), params)
        .await?;
    println!("created with a stateless token: {message}");
    Ok(())
}
