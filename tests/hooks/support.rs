//! Small fixtures shared by the hook tests.
//!
//! - [`FnService`]: a service whose methods are closures, so each test states
//!   what its service does, as the Feathers tests do with object literals.
//! - [`Numbered`]: a service with state (`number = 42`), for the "`this` is
//!   the service" tests (#17).
//! - A "bag" of free-form params ([`bag`], [`bag_set`], ...): Feathers tests
//!   put arbitrary keys on `params` (`params.ran = true`); Plume's typed
//!   [`Params`] carries them as an extension, and [`params_json`] shows them
//!   (plus `query` and `provider` when set) the way `deepStrictEqual(params,
//!   ...)` sees them.
//! - A call log kept in the app's settings ([`log`], [`logged`]): a hook that
//!   logs through `ctx.app` and a test that reads it back through its own
//!   `app` also prove that `ctx.app` is that app.
//! - Tiny hooks: [`Log`], [`Wrap`], [`Fail`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use plume::{
    App, AroundHook, BoxFuture, Error, Hook, HookContext, Id, Method, Next, Params, Result,
    Service, ServiceHandle, method_not_allowed,
};
use serde_json::{Map, Value, json};

/// The arguments a [`FnService`] method was called with.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) id: Option<Id>,
    pub(crate) data: Option<Value>,
    pub(crate) params: Params,
}

impl Call {
    /// The id as JSON (`null` when there is none).
    pub(crate) fn id(&self) -> Value {
        self.id.as_ref().map_or(Value::Null, Id::to_value)
    }

    /// The data (`null` when there is none).
    pub(crate) fn data(&self) -> Value {
        self.data.clone().unwrap_or(Value::Null)
    }

    /// The params as JSON, see [`params_json`].
    pub(crate) fn params(&self) -> Value {
        params_json(&self.params)
    }
}

type Handler = Arc<dyn Fn(Call) -> BoxFuture<'static, Result<Value>> + Send + Sync>;

/// A service whose methods are closures; a method without one answers 405.
#[derive(Default)]
pub(crate) struct FnService {
    handlers: HashMap<String, Handler>,
}

impl FnService {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Implements `method` (a standard or a custom method name).
    pub(crate) fn on<F, Fut>(mut self, method: &str, handler: F) -> Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |call| Box::pin(handler(call)));
        self.handlers.insert(method.to_owned(), handler);
        self
    }

    async fn dispatch(
        &self,
        method: &str,
        id: Option<&Id>,
        data: Option<&Value>,
        params: &Params,
    ) -> Result<Value> {
        let Some(handler) = self.handlers.get(method) else {
            return Err(method_not_allowed(method));
        };
        handler(Call {
            id: id.cloned(),
            data: data.cloned(),
            params: params.clone(),
        })
        .await
    }
}

#[async_trait]
impl Service for FnService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.dispatch("find", None, None, params).await
    }

    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.dispatch("get", Some(id), None, params).await
    }

    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        self.dispatch("create", None, Some(data), params).await
    }

    async fn update(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        self.dispatch("update", id, Some(data), params).await
    }

    async fn patch(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        self.dispatch("patch", id, Some(data), params).await
    }

    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        self.dispatch("remove", id, None, params).await
    }

    async fn custom(&self, method: &str, data: &Value, params: &Params) -> Result<Value> {
        self.dispatch(method, None, Some(data), params).await
    }
}

/// Feathers' `class Dummy { number = 42; get(id, params) {...} }`: `get`
/// answers `{id, number}` plus `test` when a hook put it in the params.
#[derive(Debug)]
pub(crate) struct Numbered {
    pub(crate) number: i64,
}

#[async_trait]
impl Service for Numbered {
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let mut result = json!({"id": id.to_value(), "number": self.number});
        if let Some(test) = bag(params).get("test") {
            result["test"] = test.clone();
        }
        Ok(result)
    }
}

/// The free-form part of [`Params`], as an extension.
#[derive(Debug, Clone, Default)]
struct Bag(Map<String, Value>);

/// The free-form params (empty when none were set).
pub(crate) fn bag(params: &Params) -> Map<String, Value> {
    params
        .extensions
        .get::<Bag>()
        .map(|bag| bag.0.clone())
        .unwrap_or_default()
}

/// One free-form param, `null` when unset.
pub(crate) fn bag_get(params: &Params, key: &str) -> Value {
    bag(params).get(key).cloned().unwrap_or(Value::Null)
}

/// Sets one free-form param.
pub(crate) fn bag_set(params: &mut Params, key: &str, value: Value) {
    let mut map = bag(params);
    map.insert(key.to_owned(), value);
    params.extensions.insert(Bag(map));
}

/// Pushes onto a free-form param that must already be an array (as
/// `params.items.push(...)` would throw in JavaScript if it were not).
pub(crate) fn bag_push(params: &mut Params, key: &str, value: Value) {
    let mut map = bag(params);
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| unreachable!("params.{key} is not an array"))
        .push(value);
    params.extensions.insert(Bag(map));
}

/// Params whose free-form part is the JSON object `value`.
pub(crate) fn params_with(value: Value) -> Params {
    let Value::Object(map) = value else {
        unreachable!("params_with takes an object");
    };
    let mut params = Params::new();
    params.extensions.insert(Bag(map));
    params
}

/// Params as Feathers' tests compare them: the free-form keys, plus `query`
/// when it is not empty and `provider` when set. `{}` for `Params::new()`.
pub(crate) fn params_json(params: &Params) -> Value {
    let mut map = bag(params);
    if !params.query.is_empty() {
        map.insert("query".to_owned(), Value::Object(params.query.clone()));
    }
    if let Some(provider) = params.provider {
        map.insert("provider".to_owned(), json!(provider.as_str()));
    }
    Value::Object(map)
}

/// The result as a mutable JSON object (after hooks edit it in place, as
/// `context.result.ran = true` does).
pub(crate) fn result_obj(ctx: &mut HookContext) -> &mut Map<String, Value> {
    ctx.result
        .as_mut()
        .and_then(Value::as_object_mut)
        .expect("context.result is an object")
}

/// The data as a mutable JSON object.
pub(crate) fn data_obj(ctx: &mut HookContext) -> &mut Map<String, Value> {
    ctx.data
        .as_mut()
        .and_then(Value::as_object_mut)
        .expect("context.data is an object")
}

const LOG: &str = "test log";

/// Appends `entry` to the log kept in `app`'s settings.
pub(crate) fn log(app: &App, entry: impl Into<String>) {
    let mut entries = app
        .get(LOG)
        .and_then(|log| log.as_array().cloned())
        .unwrap_or_default();
    entries.push(Value::String(entry.into()));
    app.set(LOG, Value::Array(entries));
}

/// Everything logged so far in `app`.
pub(crate) fn logged(app: &App) -> Vec<String> {
    app.get(LOG)
        .and_then(|log| log.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| entry.as_str().map(str::to_owned))
        .collect()
}

/// The service the context's call is on, as the app has it registered
/// (Feathers' `this` / `context.service`).
pub(crate) fn this(ctx: &HookContext) -> Arc<dyn Service> {
    Arc::clone(
        ctx.app
            .service(&ctx.path)
            .expect("context.path is registered in context.app")
            .service(),
    )
}

/// True when the context's service is `service` (the same object).
pub(crate) fn is_this(ctx: &HookContext, service: &Arc<dyn Service>) -> bool {
    Arc::ptr_eq(&this(ctx), service)
}

/// Runs a call with a context the caller keeps (Feathers: passing a context
/// made by `createContext` as the last argument, `@feathersjs/feathers`,
/// `src/hooks.ts`).
pub(crate) async fn run_ctx(
    handle: &ServiceHandle,
    method: Method,
    id: Option<Id>,
    data: Option<Value>,
    params: Params,
) -> (HookContext, Result<()>) {
    let mut ctx = handle.context(method);
    ctx.id = id;
    ctx.data = data;
    ctx.params = params;
    let outcome = handle.run(&mut ctx).await;
    (ctx, outcome)
}

/// Asserts that a call failed with `message`, and returns the error.
#[track_caller]
pub(crate) fn assert_rejects<T: std::fmt::Debug>(outcome: Result<T>, message: &str) -> Error {
    let error = outcome.expect_err("the call should fail");
    assert_eq!(error.message(), message, "{error:?}");
    error
}

/// `value`, handed back by another task: awaiting it really suspends, like
/// a promise that settles later (without any timing).
pub(crate) async fn later<T: Send + 'static>(value: T) -> T {
    tokio::spawn(async move { value })
        .await
        .expect("the task completes")
}

/// A regular hook that logs its label through `ctx.app`.
pub(crate) struct Log(pub(crate) &'static str);

impl Hook<HookContext> for Log {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            log(&ctx.app, self.0);
            Ok(())
        })
    }
}

/// An around hook that logs `<label> before` and `<label> after`.
pub(crate) struct Wrap(pub(crate) &'static str);

impl AroundHook<HookContext> for Wrap {
    fn run<'a>(
        &'a self,
        ctx: &'a mut HookContext,
        next: Next<'a, HookContext>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            log(&ctx.app, format!("{} before", self.0));
            next.run(ctx).await?;
            log(&ctx.app, format!("{} after", self.0));
            Ok(())
        })
    }
}

/// A regular hook that fails with a GeneralError carrying its message.
pub(crate) struct Fail(pub(crate) &'static str);

impl Hook<HookContext> for Fail {
    fn run<'a>(&'a self, _ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Err(Error::general(self.0)) })
    }
}
