//! `plume-hooks`: async hook chains over any context type.
//!
//! This is the engine under Plume, the way `@feathersjs/hooks` is the engine
//! under Feathers. It knows nothing of services, HTTP or authentication: it
//! runs a chain of hooks around a method over a context that implements
//! [`Context`].
//!
//! # Layout
//!
//! - `context`: the [`Context`] trait (where result and error live) and
//!   [`HookType`].
//! - `hook`: the [`Hook`] and [`AroundHook`] traits, implemented for plain
//!   `async fn`s, for closures through [`hook_fn`] / [`around_fn`], and by
//!   configurable structs.
//! - `registry`: [`HookMap`], the hooks of one level (an app or a service)
//!   per kind and per method.
//! - `chain`: [`Chain`], the hooks of every level compiled for one method,
//!   and [`Next`], the rest of a chain as an around hook sees it.
//!
//! # Semantics (Feathers v5)
//!
//! - Around hooks wrap everything inside them; before, after and error hooks
//!   are compiled into blocks between them (see [`Chain::compile`]).
//! - Outer levels (the app) wrap inner ones (a service); `all` hooks run
//!   before a method's own.
//! - A hook that sets a result skips the method, and only the method: every
//!   other hook still runs.
//! - An error is seen by the error hooks of every block it passes through;
//!   an error hook may replace the error, or set a result and so recover.
//!
//! # Example
//!
//! ```
//! use plume_hooks::{Chain, HookMap, HookResult, Next, Terminal, BoxFuture};
//! use plume_hooks::test_support::TestContext;
//!
//! async fn log_before(ctx: &mut TestContext) -> HookResult<TestContext> {
//!     ctx.log.push("before".into());
//!     Ok(())
//! }
//!
//! async fn timing(ctx: &mut TestContext, next: Next<'_, TestContext>) -> HookResult<TestContext> {
//!     ctx.log.push("around in".into());
//!     next.run(ctx).await?;
//!     ctx.log.push("around out".into());
//!     Ok(())
//! }
//!
//! struct Method;
//! impl Terminal<TestContext> for Method {
//!     fn call<'a>(&'a self, ctx: &'a mut TestContext) -> BoxFuture<'a, HookResult<TestContext>> {
//!         Box::pin(async move {
//!             ctx.log.push("method".into());
//!             ctx.result = Some(42);
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # tokio_test_block_on(async {
//! let mut hooks = HookMap::new();
//! hooks.around("all", timing).before("get", log_before);
//! let chain = Chain::compile(&[&hooks], "get");
//! let mut ctx = TestContext::default();
//! chain.run(&mut ctx, &Method).await.unwrap();
//! assert_eq!(ctx.log, ["around in", "before", "method", "around out"]);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod chain;
mod context;
mod hook;
mod registry;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use chain::{Chain, Next, Terminal};
pub use context::{Context, HookType};
pub use hook::{AroundFn, AroundHook, BoxFuture, Hook, HookFn, HookResult, around_fn, hook_fn};
pub use registry::{BoxAroundHook, BoxHook, HookMap, IntoAroundHooks, IntoHooks, Methods};
