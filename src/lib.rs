//! Plume: a Feathers-style service runtime for Rust.
//!
//! An application ([`App`]) is a set of services ([`Service`]) at paths.
//! Every call of a service method runs inside a hook chain: around hooks,
//! then before hooks, the method, after hooks, with error hooks catching
//! failures, at the app level and at the service level, in the order
//! Feathers v5 uses. Hooks read and change one [`HookContext`]: the
//! arguments, the [`Params`], the result.
//!
//! # Layout
//!
//! Data flows one way: transport, app, hook chain, service, store. Nothing
//! lower knows about anything higher.
//!
//! - `plume-hooks` (the `hooks/` crate): the hook engine, generic over the
//!   context; knows nothing of services.
//! - [`app`]: [`App`], the service registry, app-level hooks, settings,
//!   events, setup and teardown; [`ServiceHandle`] to call a service.
//! - [`service`]: the [`Service`] trait, [`Method`] and [`Id`];
//!   [`TypedService`] and [`Typed`] for a service written with Rust
//!   types.
//! - [`context`]: [`HookContext`] and [`Params`]; their typed accessors
//!   ([`HookContext::data_as`], [`HookContext::set_data`],
//!   [`HookContext::result_as`], [`HookContext::query_as`],
//!   [`HookContext::items`] for each record whatever the shape,
//!   [`Params::claims_as`] for the verified token claims,
//!   [`Params::user_as`]) read and write the call's JSON as Rust types.
//! - [`error`]: [`Error`], Feathers' error classes and their JSON.
//! - [`query`]: the Feathers query language, shared by every store.
//! - [`schema`]: JSON Schemas for data and queries (from Rust types or
//!   JSON), the `validate_data` / `validate_query` hooks, and resolvers.
//! - [`store`]: services over storage: [`store::MemoryService`] and
//!   [`store::SqliteService`].
//! - [`auth`]: the authentication service, the `jwt` and `local`
//!   strategies and the `authenticate`, `hash_password` and `protect` hooks.
//! - [`channels`]: real-time connections, channels and publishers.
//! - [`transport`]: REST (axum) and socket.io (socketioxide).
//! - [`config`]: configuration files and environment variables.
//! - [`server`]: serving an app on a listener. The app the `plume` binary
//!   serves is the binary's own (`src/bin/plume/default_app/`), built on
//!   this public API only.
//! - [`logging`]: the access log and the log writer, off the request
//!   path; request ids.
//! - [`metrics`]: Prometheus metrics of an app (`GET /metrics`).
//!
//! Crate-private, so not part of the API: `events` (listeners), `fields`
//! (dotted paths into JSON), `workers` (the one worker pool: SQLite
//! readers, password hashing), the transports' shared `dispatch` and
//! `input`, the query evaluator's helpers and the stores' shared base.
//!
//! # Example
//!
//! ```
//! use plume::{App, Hooks, HookContext, Params, Result};
//! use plume::store::MemoryService;
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize)]
//! struct NewMessage {
//!     text: String,
//! }
//!
//! async fn require_text(ctx: &mut HookContext) -> Result<()> {
//!     // 400 BadRequest naming the field when the data does not fit.
//!     let message: NewMessage = ctx.data_as()?;
//!     if message.text.trim().is_empty() {
//!         return Err(plume::Error::bad_request("text is required"));
//!     }
//!     Ok(())
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let app = App::new();
//! app.use_service("messages", MemoryService::new())?
//!     .hooks(Hooks::new().before("create", require_text));
//! let messages = app.service("messages")?;
//! assert!(messages.create(json!({"text": " "}), Params::new()).await.is_err());
//! let created = messages.create(json!({"text": "hello"}), Params::new()).await?;
//! assert_eq!(created["id"], json!(0));
//! # Ok::<(), plume::Error>(())
//! # }).unwrap();
//! ```

pub mod app;
pub mod auth;
pub mod channels;
#[cfg(feature = "redis")]
pub mod cluster;
pub mod config;
pub mod context;
pub mod error;
mod events;
mod fields;
pub mod logging;
pub mod metrics;
pub mod query;
pub mod schema;
#[cfg(feature = "rest")]
pub mod server;
pub mod service;
pub mod store;
#[cfg(all(test, any(feature = "postgres", feature = "redis")))]
mod test_backends;
pub mod transport;
mod typed;
mod workers;

pub use app::{
    App, CheckFailure, Hooks, Readiness, ReadinessCheck, ServiceHandle, ServiceOptions, WeakApp,
};
pub use auth::{
    AuthenticationService, JwtStrategy, LocalStrategy, authenticate, hash_password, protect,
};
pub use channels::{Channel, Connection, Delivery, Outgoing, WeakConnection};
pub use context::{
    ClientAddr, Extensions, HookContext, HttpOptions, Paginate, PaginateParam, Params, Provider,
};
pub use error::{Error, ErrorKind, Result};
pub use events::{AnyListener, Listener};
pub use plume_hooks::{AroundHook, BoxFuture, Hook, HookType, Methods, Next, around_fn, hook_fn};
// The crates an app's own code names, so that its `Cargo.toml` needs only
// `plume` and `tokio` (`examples/readme` builds the README's examples that
// way). A derive through a re-export names it: `#[serde(crate =
// "plume::serde")]`, `#[schemars(crate = "plume::schemars")]`.
/// `#[async_trait]`, for implementing Plume's async traits.
pub use async_trait::async_trait;
/// The schemars crate, whose `JsonSchema` derive gives [`schema::Schema::of`]
/// its types.
pub use schemars;
/// The serde crate, for `Serialize` / `Deserialize` on an app's types.
pub use serde;
/// The serde_json crate: `json!`, `Value`, `Map`.
pub use serde_json;
pub use service::{Id, Method, Service, method_not_allowed};
pub use typed::{Found, Typed, TypedService};

// The README's examples are compiled and run as doc tests so they cannot
// drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
