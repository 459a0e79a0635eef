//! The newcomer's todo app (issue 13): users who sign up and log in with
//! email and password, todos owned by whoever created them (the owner comes
//! from the token), a `role` claim signed into the token, and a `remove`
//! only admins may call. Written with schemas and resolvers: no JSON
//! plumbing.
//!
//! Run: `cargo run --example todos`, then (an admin, `admin@example.com`
//! with the password `admin password`, is made at start):
//!
//! ```sh
//! curl -s -X POST localhost:3030/users -H 'content-type: application/json' \
//!   -d '{"email":"ada@example.com","password":"correct horse"}'
//! ```

#![allow(clippy::print_stdout)]

use async_trait::async_trait;
use plume::auth::{AuthResult, AuthenticationOverrides, AuthenticationService};
use plume::schema::{
    Resolver, Schema, password_hash, resolve_data, resolve_external, resolve_query, validate_data,
    validate_query,
};
use plume::store::MemoryService;
use plume::{
    App, Error, HookContext, Hooks, JwtStrategy, LocalStrategy, Paginate, Params, Result,
    authenticate,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// What a client may send to sign up; nothing else (no `role`).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SignUp {
    #[schemars(email)]
    email: String,
    #[schemars(length(min = 8, max = 1024))]
    password: String,
}

/// What a client may write to a todo.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TodoData {
    #[schemars(length(min = 1, max = 200))]
    title: String,
    #[serde(default)]
    done: bool,
}

/// What a client may ask about todos (with Feathers' operators).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct TodoQuery {
    title: String,
    done: bool,
}

/// The claims a hook reads from the verified token.
#[derive(Deserialize)]
struct Claims {
    role: String,
}

/// Only a token with the `admin` role may remove a todo.
async fn admins_only(ctx: &mut HookContext) -> Result<()> {
    let claims: Claims = ctx.params.claims_as()?;
    if claims.role == "admin" {
        Ok(())
    } else {
        Err(Error::forbidden("Only admins may remove todos"))
    }
}

/// Signs the user's role into the token (`user` unless one was set).
struct RoleClaim;

#[async_trait]
impl AuthenticationOverrides for RoleClaim {
    async fn get_payload(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let mut payload = service.base_get_payload(auth_result, params).await?;
        let role = auth_result.get("user").and_then(|user| user.get("role"));
        payload.insert("role".into(), role.cloned().unwrap_or(json!("user")));
        Ok(payload)
    }
}

/// Sets `owner` to the authenticated user's id, in data or in a query.
fn owner() -> Resolver {
    Resolver::new().field("owner", |_, _, ctx| async move {
        Ok(ctx.params.user().and_then(|user| user.get("id").cloned()))
    })
}

/// The app, set up and ready to serve.
pub(crate) async fn app() -> Result<App> {
    let app = App::new();
    app.set(
        "authentication",
        json!({
            // A new secret per run: tokens end with the process.
            "secret": plume::config::generate_secret()?,
            "entity": "user",
            "service": "users",
            "authStrategies": ["jwt", "local"],
            "local": {"usernameField": "email", "passwordField": "password"}
        }),
    );

    app.use_service("users", MemoryService::new())?.hooks(
        Hooks::new()
            .before(["find", "get", "patch", "remove"], authenticate(["jwt"]))
            .before(
                "create",
                validate_data(Schema::of::<SignUp>()?).external_only(),
            )
            .before(
                ["create", "patch"],
                resolve_data(Resolver::new().field("password", password_hash("local"))),
            )
            .after("all", resolve_external(Resolver::new().omit("password"))),
    );

    let pages = Paginate {
        default: 10,
        max: 50,
    };
    app.use_service("todos", MemoryService::new().paginate(pages))?
        .hooks(
            Hooks::new()
                .before("all", authenticate(["jwt"]))
                .before(
                    "create",
                    (
                        validate_data(Schema::of::<TodoData>()?),
                        resolve_data(owner().field("done", |done, _, _| async move {
                            Ok(Some(done.unwrap_or(json!(false))))
                        })),
                    ),
                )
                .before(
                    "patch",
                    validate_data(Schema::of::<TodoData>()?.for_patch()?),
                )
                .before("find", validate_query(Schema::query_of::<TodoQuery>()?))
                // Each user reads and changes only their own todos.
                .before(["find", "get", "patch"], resolve_query(owner()))
                .before("remove", admins_only),
        );

    let auth = AuthenticationService::new(&app).with_overrides(RoleClaim);
    auth.register("jwt", JwtStrategy::new())?;
    auth.register("local", LocalStrategy::new())?;
    app.use_service("authentication", auth)?;
    app.setup().await?;
    Ok(app)
}

#[tokio::main]
async fn main() -> Result<()> {
    let app = app().await?;
    // Server code may set what clients may not.
    app.service("users")?
        .create(
            json!({"email": "admin@example.com", "password": "admin password", "role": "admin"}),
            Params::new(),
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3030")
        .await
        .map_err(Error::internal)?;
    println!("todos on http://127.0.0.1:3030");
    plume::server::serve(app, listener, Default::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
