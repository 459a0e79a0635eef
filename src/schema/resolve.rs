//! Resolvers, as in `@feathersjs/schema` (`resolver.ts`, `hooks/resolve.ts`):
//! a [`Resolver`] computes fields of a record, one async function per
//! field, and four hooks apply it to a call:
//!
//! - [`resolve_data`]: each record of `data`, before the method (set an
//!   owner, a creation time, a password hash with [`password_hash`]);
//! - [`resolve_query`]: the query, before the method (restrict a `find`
//!   to the caller's records);
//! - [`resolve_result`]: each record of the result (an object, an array
//!   or a page), after the method, for every caller;
//! - [`resolve_external`]: each record of what is sent to an external
//!   caller (`ctx.dispatch`, and the result of an external call), so
//!   internal callers keep the full record: the place to drop protected
//!   fields with [`Resolver::omit`].
//!
//! A field resolver gets the field's value (`None` when absent), the whole
//! record as it was before this resolver ran, and a [`ResolverContext`];
//! it answers the new value, or `None` to remove the field. A virtual
//! field ([`Resolver::virtual_field`]) is computed from the record alone
//! and, in a result, only when `$select` asks for it or there is no
//! `$select`. Fields resolve in the order they were declared, one record
//! after the other.
//!
//! ```
//! use plume::schema::{Resolver, resolve_data, resolve_external};
//! use plume::{App, Hooks, store::MemoryService};
//! use serde_json::json;
//!
//! let data = Resolver::new()
//!     .field("userId", |_, _, ctx| async move {
//!         Ok(ctx.params.user().and_then(|u| u.get("id").cloned()))
//!     })
//!     .field("createdAt", |_, _, _| async { Ok(Some(json!(1_700_000_000_000_i64))) });
//! let external = Resolver::new()
//!     .omit("secret")
//!     .virtual_field("summary", |record, _| async move {
//!         Ok(record.get("text").map(|t| json!(format!("{t:.10}"))))
//!     });
//! let app = App::new();
//! app.use_service("messages", MemoryService::new())?.hooks(
//!     Hooks::new()
//!         .before("create", resolve_data(data))
//!         .after("all", resolve_external(external)),
//! );
//! # Ok::<(), plume::Error>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::auth::{AuthenticationService, LocalStrategy, StrategyContext};
use crate::{App, BoxFuture, Error, Hook, HookContext, Id, Method, Params, Result};

type FieldFuture = Pin<Box<dyn Future<Output = Result<Option<Value>>> + Send>>;
type FieldFn = Arc<
    dyn Fn(Option<Value>, Arc<Map<String, Value>>, ResolverContext) -> FieldFuture + Send + Sync,
>;

/// What a field resolver knows of the call; cheap to clone.
#[derive(Clone)]
pub struct ResolverContext {
    /// The app, for calls to other services.
    pub app: App,
    /// The call's params (the authenticated user is `params.user()`).
    pub params: Arc<Params>,
    /// The service's path.
    pub path: Arc<str>,
    /// The method.
    pub method: Method,
    /// The id of a `get`, `update`, `patch` or `remove`.
    pub id: Option<Id>,
}

impl std::fmt::Debug for ResolverContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolverContext")
            .field("path", &self.path)
            .field("method", &self.method)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ResolverContext {
    fn of(ctx: &HookContext) -> Self {
        Self {
            app: ctx.app.clone(),
            params: Arc::new(ctx.params.clone()),
            path: Arc::clone(&ctx.path),
            method: ctx.method.clone(),
            id: ctx.id.clone(),
        }
    }
}

#[derive(Clone)]
struct Field {
    name: String,
    is_virtual: bool,
    resolve: FieldFn,
}

/// The field resolvers of one kind of record; cheap to clone.
#[derive(Clone, Default)]
pub struct Resolver {
    fields: Vec<Field>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        f.debug_struct("Resolver").field("fields", &names).finish()
    }
}

impl Resolver {
    /// A resolver without fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves `name` with `resolve(value, record, context)`: `Some` sets
    /// the field, `None` removes it.
    #[must_use]
    pub fn field<F, Fut>(mut self, name: impl Into<String>, resolve: F) -> Self
    where
        F: Fn(Option<Value>, Arc<Map<String, Value>>, ResolverContext) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = Result<Option<Value>>> + Send + 'static,
    {
        self.fields.push(Field {
            name: name.into(),
            is_virtual: false,
            resolve: Arc::new(move |value, record, ctx| Box::pin(resolve(value, record, ctx))),
        });
        self
    }

    /// A field computed from the record (`resolve(record, context)`); in a
    /// result it is only computed when `$select` is absent or names it.
    #[must_use]
    pub fn virtual_field<F, Fut>(mut self, name: impl Into<String>, resolve: F) -> Self
    where
        F: Fn(Arc<Map<String, Value>>, ResolverContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Value>>> + Send + 'static,
    {
        self.fields.push(Field {
            name: name.into(),
            is_virtual: true,
            resolve: Arc::new(move |_, record, ctx| Box::pin(resolve(record, ctx))),
        });
        self
    }

    /// Removes `name` (a protected field, such as a password hash).
    #[must_use]
    pub fn omit(self, name: impl Into<String>) -> Self {
        self.field(name, |_, _, _| async { Ok(None) })
    }

    /// Resolves one record in place. `select` is the query's `$select`,
    /// which decides the virtual fields of a result.
    pub async fn resolve(
        &self,
        record: &mut Map<String, Value>,
        context: &ResolverContext,
        select: Option<&[String]>,
    ) -> Result<()> {
        if self.fields.is_empty() {
            return Ok(());
        }
        let original = Arc::new(record.clone());
        for field in &self.fields {
            if field.is_virtual && select.is_some_and(|s| !s.contains(&field.name)) {
                continue;
            }
            let value = original.get(&field.name).cloned();
            match (field.resolve)(value, Arc::clone(&original), context.clone()).await? {
                Some(value) => {
                    record.insert(field.name.clone(), value);
                }
                None => {
                    record.shift_remove(&field.name);
                }
            }
        }
        Ok(())
    }

    /// Resolves every record of `value`: an object, an array of them, or
    /// a page (`{total, limit, skip, data}`) of a `find`.
    async fn resolve_all(
        &self,
        value: &mut Value,
        context: &ResolverContext,
        select: Option<&[String]>,
        pages: bool,
    ) -> Result<()> {
        let records: Vec<&mut Value> = match value {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(page) if pages && page.get("data").is_some_and(Value::is_array) => {
                match page.get_mut("data") {
                    Some(Value::Array(items)) => items.iter_mut().collect(),
                    _ => Vec::new(),
                }
            }
            record => vec![record],
        };
        for record in records {
            if let Value::Object(record) = record {
                self.resolve(record, context, select).await?;
            }
        }
        Ok(())
    }
}

/// The query's `$select`, when it is a list of names.
fn select_of(params: &Params) -> Option<Vec<String>> {
    params
        .query
        .get("$select")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
}

/// Where a resolver hook applies it.
#[derive(Debug, Clone, Copy)]
enum Target {
    Data,
    Query,
    Result,
    External,
}

/// A resolver hook; see [`resolve_data`], [`resolve_query`],
/// [`resolve_result`] and [`resolve_external`].
#[derive(Debug, Clone)]
pub struct Resolve {
    resolver: Resolver,
    target: Target,
}

/// A before hook: resolves each record of `ctx.data`.
pub fn resolve_data(resolver: Resolver) -> Resolve {
    Resolve {
        resolver,
        target: Target::Data,
    }
}

/// A before hook: resolves `params.query` as one record.
pub fn resolve_query(resolver: Resolver) -> Resolve {
    Resolve {
        resolver,
        target: Target::Query,
    }
}

/// An after hook: resolves each record of `ctx.result`, for every caller.
pub fn resolve_result(resolver: Resolver) -> Resolve {
    Resolve {
        resolver,
        target: Target::Result,
    }
}

/// An after hook: resolves each record of what an external caller
/// receives: `ctx.dispatch` (made from the result when unset, and what
/// real-time events carry), and for an external call `ctx.result` too,
/// so that nothing later sends the unresolved record by mistake.
/// Internal calls get the full result.
pub fn resolve_external(resolver: Resolver) -> Resolve {
    Resolve {
        resolver,
        target: Target::External,
    }
}

impl Resolve {
    async fn apply(&self, ctx: &mut HookContext) -> Result<()> {
        let context = ResolverContext::of(ctx);
        let select = select_of(&ctx.params);
        match self.target {
            Target::Data => {
                if let Some(data) = ctx.data.as_mut() {
                    self.resolver
                        .resolve_all(data, &context, None, false)
                        .await?;
                }
            }
            Target::Query => {
                let mut query = std::mem::take(&mut ctx.params.query);
                let resolved = self.resolver.resolve(&mut query, &context, None).await;
                ctx.params.query = query;
                resolved?;
            }
            Target::Result => {
                let pages = ctx.method == Method::Find;
                if let Some(result) = ctx.result.as_mut() {
                    self.resolver
                        .resolve_all(result, &context, select.as_deref(), pages)
                        .await?;
                }
            }
            Target::External => {
                let pages = ctx.method == Method::Find;
                let Some(mut dispatch) = ctx.dispatch.clone().or_else(|| ctx.result.clone()) else {
                    return Ok(());
                };
                self.resolver
                    .resolve_all(&mut dispatch, &context, select.as_deref(), pages)
                    .await?;
                if ctx.params.is_external() {
                    ctx.result = Some(dispatch.clone());
                }
                ctx.dispatch = Some(dispatch);
            }
        }
        Ok(())
    }
}

impl Hook<HookContext> for Resolve {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.apply(ctx))
    }
}

/// A field resolver for [`Resolver::field`] that replaces a password by
/// its argon2id hash through the app's local strategy (`strategy`,
/// usually `"local"`), as Feathers' `passwordHash({ strategy })` does: the
/// same hash and the same per-address limit on concurrent hashing as the
/// `hash_password` hook. A missing field stays missing; a value that is not
/// a string is 400.
///
/// ```
/// use plume::schema::{Resolver, password_hash};
///
/// let data = Resolver::new().field("password", password_hash("local"));
/// ```
pub fn password_hash(
    strategy: &str,
) -> impl Fn(Option<Value>, Arc<Map<String, Value>>, ResolverContext) -> FieldFuture
+ Send
+ Sync
+ 'static {
    let strategy: Arc<str> = Arc::from(strategy);
    move |value, _, ctx| {
        let strategy = Arc::clone(&strategy);
        Box::pin(async move {
            let Some(value) = value else {
                return Ok(None);
            };
            let Some(password) = value.as_str() else {
                return Err(Error::bad_request("The password must be a string"));
            };
            let service = AuthenticationService::from_app(&ctx.app, None).ok_or_else(|| {
                Error::bad_request("Could not find an authentication service to hash password")
            })?;
            let local = service
                .get_strategy_as::<LocalStrategy>(&strategy)
                .ok_or_else(|| {
                    Error::bad_request(format!(
                        "Could not find '{strategy}' strategy to hash password"
                    ))
                })?;
            let strategy_ctx = StrategyContext {
                name: &strategy,
                service: &service,
            };
            let _slot = local.enter_hashing_for(&strategy_ctx, &ctx.params)?;
            let hash = local.hash_password(&strategy_ctx, password).await?;
            Ok(Some(Value::String(hash)))
        })
    }
}
