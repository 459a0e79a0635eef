//! DogRS 0.4 equivalent of Plume's default app, for `bench/run`.
//!
//! `users` (public sign-up, bcrypt-hashed password, JWT on everything else,
//! password stripped from results), `messages` (JWT on everything, `$limit`
//! 10 by default and 50 at most, text required, `userId` and `createdAt`
//! stamped, an error hook on create) and `authentication` (jwt + local), on
//! an in-memory store, served over DogRS's axum transport (`dog-axum`).
//! Where this differs from Plume's app, and why: README.md beside this file.
//!
//!     PORT=3032 cargo run --release      (listens on 127.0.0.1 only)

mod memory;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use async_trait::async_trait;
use dog_auth::hooks::authenticate::{AuthParams, AuthenticateHook};
use dog_auth::jwt::JwtStrategy;
use dog_auth::options::{AuthOptions, JwtAlgorithm, JwtOptions};
use dog_auth::service::AuthenticationService;
use dog_auth_local::hooks::{HashPasswordHook, ProtectHook};
use dog_auth_local::strategy::{LocalEntityQueryBuilder, LocalStrategy, LocalStrategyOptions};
use dog_axum::params::RestParams;
use dog_core::errors::{DogError, ErrorKind};
use dog_core::{
    DogAppBuilder, DogBeforeHook, DogErrorHook, DogService, HookContext, ServiceMethodKind,
};
use serde_json::{json, Value};

use memory::{MemoryService, Paginate};

/// The params every service call carries: what the REST transport parsed,
/// plus what `AuthenticateHook` needs (provider, headers) and leaves
/// (`auth_result`, `authenticated`).
pub type Params = AuthParams<RestParams>;
type Ctx = HookContext<Value, Params>;

/// Plume's development secret (config/default.json); `AUTH_SECRET` overrides.
const DEV_SECRET: &str = "plume-development-secret-do-not-use-in-production-change-me-0123456789";

/// messages, before create: `text` must be a non-blank string.
struct RequireText;

#[async_trait]
impl DogBeforeHook<Value, Params> for RequireText {
    async fn run(&self, ctx: &mut Ctx) -> Result<()> {
        let text = ctx
            .data
            .as_ref()
            .and_then(|d| d.get("text"))
            .and_then(Value::as_str);
        match text {
            Some(t) if !t.trim().is_empty() => Ok(()),
            _ => Err(DogError::bad_request("Message text is required").into_anyhow()),
        }
    }
}

/// messages, before create: `userId` = the authenticated user's id,
/// `createdAt` = now in milliseconds.
struct Stamp;

#[async_trait]
impl DogBeforeHook<Value, Params> for Stamp {
    async fn run(&self, ctx: &mut Ctx) -> Result<()> {
        let user_id = ctx
            .params
            .auth_result
            .as_ref()
            .and_then(|r| r.get("user"))
            .and_then(|u| u.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if let Some(Value::Object(data)) = ctx.data.as_mut() {
            data.insert("userId".to_string(), user_id);
            data.insert("createdAt".to_string(), Value::from(now));
        }
        Ok(())
    }
}

/// messages, error hook on create: BadRequest errors get
/// `data: {hook: "messages.error.create"}`.
struct TagCreateError;

#[async_trait]
impl DogErrorHook<Value, Params> for TagCreateError {
    async fn run(&self, ctx: &mut Ctx) -> Result<()> {
        let Some(err) = ctx.error.as_ref() else {
            return Ok(());
        };
        let Some(dog) = DogError::from_anyhow(err) else {
            return Ok(());
        };
        if dog.kind != ErrorKind::BadRequest {
            return Ok(());
        }
        let mut data = match dog.data.clone() {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        data.insert("hook".to_string(), json!("messages.error.create"));
        let mut tagged =
            DogError::new(dog.kind, dog.message.clone()).with_data(Value::Object(data));
        if let Some(errors) = dog.errors.clone() {
            tagged = tagged.with_errors(errors);
        }
        ctx.error = Some(tagged.into_anyhow());
        Ok(())
    }
}

/// The local strategy looks the user up with `users.find`; this puts the
/// e-mail into the query so the store filters instead of returning all users.
struct FindByUsername;

impl LocalEntityQueryBuilder<Params> for FindByUsername {
    fn build_find_params(&self, base: &Params, username_field: &str, username: &str) -> Params {
        let mut params = base.clone();
        params.inner.query.clear();
        params
            .inner
            .query
            .insert(username_field.to_string(), username.to_string());
        params
            .inner
            .query
            .insert("$limit".to_string(), "1".to_string());
        params
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3030);
    let secret = std::env::var("AUTH_SECRET").unwrap_or_else(|_| DEV_SECRET.to_string());

    let mut builder = DogAppBuilder::<Value, Params>::new();

    // authentication: jwt + local, Plume's jwtOptions where DogRS has them.
    let mut options = AuthOptions::default();
    options.entity = Some("user".to_string());
    options.service = Some("users".to_string());
    options.jwt = JwtOptions {
        algorithm: JwtAlgorithm::HS256,
        issuer: "feathers".to_string(),
        audience: vec!["https://yourdomain.com".to_string()],
        access_token_expires_in: Duration::from_secs(24 * 60 * 60),
        secret: Some(secret),
        // Plume's app puts role "user" in every token (a create hook sets
        // params.payload.role); DogRS's authentication service ignores
        // params.payload, and a configured custom claim is the closest.
        custom_claims: [("role".to_string(), json!("user"))].into_iter().collect(),
        ..JwtOptions::default()
    };
    options.validate().map_err(anyhow::Error::msg)?;

    let local = Arc::new(
        LocalStrategy::<Params>::new()
            .with_options(LocalStrategyOptions {
                username_field: "email".to_string(),
                password_field: "password".to_string(),
                entity_username_field: "email".to_string(),
                entity_password_field: "password".to_string(),
                error_message: "Invalid login".to_string(),
                hash_size: 10,
            })
            .with_entity_query_builder(Arc::new(FindByUsername)),
    );

    let mut auth_builder = AuthenticationService::builder(&mut builder, Some(options))?;
    auth_builder.register("jwt", Arc::new(JwtStrategy::<Params>::new()));
    auth_builder.register("local", local.clone());
    let auth = Arc::new(AuthenticationService::new(Arc::new(auth_builder.build())));
    auth.setup_validate().await?;
    let auth_adapter = AuthenticationService::install(&mut builder, auth.clone());

    let jwt = || Arc::new(AuthenticateHook::new(auth.clone(), vec!["jwt".to_string()]));
    let hash = || Arc::new(HashPasswordHook::new("password", local.clone()));

    // users: string ids, because dog-auth only puts the user's id into the
    // token's `sub` when it is a JSON string.
    let users: Arc<dyn DogService<Value, Params>> = Arc::new(MemoryService::new(true, None));
    builder.register_service("users", users.clone());
    builder.service_hooks("users", |h| {
        use ServiceMethodKind::*;
        h.before(Create, hash());
        for method in [Find, Get, Update, Patch, Remove] {
            h.before(method, jwt());
        }
        h.before(Update, hash());
        h.before(Patch, hash());
        h.after_all(Arc::new(ProtectHook::<Params>::from_fields(&["password"])));
    });

    // messages: JWT on every method, paginated 10 / 50.
    let messages: Arc<dyn DogService<Value, Params>> = Arc::new(MemoryService::new(
        false,
        Some(Paginate {
            default: 10,
            max: 50,
        }),
    ));
    builder.register_service("messages", messages.clone());
    builder.service_hooks("messages", |h| {
        h.before_all(jwt());
        h.before_create(Arc::new(RequireText));
        h.before_create(Arc::new(Stamp));
        h.error(ServiceMethodKind::Create, Arc::new(TagCreateError));
    });

    let app = builder.build();
    auth_adapter.setup(app.clone());

    let server = dog_axum::axum(app)
        .use_service("/users", users)
        .use_service("/messages", messages)
        .use_service(
            "/authentication",
            auth_adapter as Arc<dyn DogService<Value, Params>>,
        );

    let addr = format!("{host}:{port}");
    eprintln!("dogrs listening on http://{addr}");
    server.listen(addr).await
}
