//! [`App`]: the service registry, app-level hooks, configuration, events,
//! setup and teardown; and [`ServiceHandle`], through which services are
//! called.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use indexmap::IndexMap;
use plume_hooks::{BoxFuture, Chain, HookMap, Terminal};
use serde_json::{Map, Value};

use crate::channels::{Channel, Channels, Connection, Publisher};
use crate::error::poisoned;
use crate::events::{AnyListener, Emitter, Listener};
use crate::transport::dispatch::Route;
use crate::{Error, HookContext, Id, Method, Params, Result, Service};

/// The hook registry of an app or a service, over Plume's [`HookContext`].
pub type Hooks = HookMap<HookContext>;

impl From<Method> for plume_hooks::Methods {
    fn from(method: Method) -> Self {
        Self::Only(vec![method.as_str().to_owned()])
    }
}

/// Options for registering a service.
#[derive(Debug, Clone, Default)]
pub struct ServiceOptions {
    methods: Option<Vec<String>>,
    events: Vec<String>,
}

impl ServiceOptions {
    /// Default options: the service's standard methods, no custom events.
    pub fn new() -> Self {
        Self::default()
    }

    /// The methods transports may call. Names that are not standard methods
    /// declare custom methods, which also get hooks and can be called
    /// internally. Without this, every standard method the service lists in
    /// [`Service::methods`] is callable.
    #[must_use]
    pub fn methods<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.methods = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Events the service emits itself. An event named here is not emitted
    /// automatically after a method (Feathers' `eventHook`,
    /// `@feathersjs/feathers`, `src/events.ts`).
    #[must_use]
    pub fn events<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events = names.into_iter().map(Into::into).collect();
        self
    }
}

/// Names that cannot be custom methods: hook and lifecycle names, and the
/// names Feathers' clients treat as JavaScript object or emitter methods.
const RESERVED_METHOD_NAMES: &[&str] = &[
    "all",
    "around",
    "before",
    "after",
    "error",
    "hooks",
    "setup",
    "teardown",
    "publish",
    "on",
    "once",
    "off",
    "emit",
    "addListener",
    "removeListener",
    "removeAllListeners",
    "prependListener",
    "prependOnceListener",
    "listeners",
    "rawListeners",
    "listenerCount",
    "eventNames",
    "setMaxListeners",
    "getMaxListeners",
    "constructor",
    "toString",
    "toLocaleString",
    "valueOf",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "__proto__",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
];

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Normalises a service path as Feathers does (`stripSlashes` in
/// `@feathersjs/commons`, `src/index.ts`, as used by `@feathersjs/feathers`,
/// `src/application.ts`): leading and trailing slashes are stripped and
/// the empty path is `/`. Segments are
/// URL-safe names, or `:name` placeholders for route parameters.
pub fn normalize_path(path: &str) -> Result<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_owned());
    }
    let valid = trimmed.split('/').all(|segment| {
        let name = segment.strip_prefix(':').unwrap_or(segment);
        !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Error::general(format!(
            "'{path}' is not a valid service path."
        )))
    }
}

/// A registered service with its options, hooks and listeners.
struct ServiceEntry {
    path: Arc<str>,
    /// The path's segments, parsed once here for every call's lookup.
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    route: Route,
    service: Arc<dyn Service>,
    /// Methods transports may call.
    external: Vec<Method>,
    /// Declared custom methods (hook-enabled, callable internally).
    custom: Vec<Arc<str>>,
    own_events: Vec<String>,
    hooks: RwLock<Hooks>,
    chains: RwLock<HashMap<String, (u64, Chain<HookContext>)>>,
    emitter: Emitter,
    /// What the OpenAPI document says of the service.
    docs: RwLock<Option<Arc<crate::schema::ServiceDocs>>>,
}

struct AppInner {
    services: RwLock<IndexMap<String, Arc<ServiceEntry>>>,
    hooks: RwLock<Hooks>,
    lifecycle_hooks: RwLock<Hooks>,
    /// Bumped on every hook registration so cached chains are rebuilt and
    /// hooks added after a service was used take effect (Feathers collects
    /// the chain on every call: `@feathersjs/feathers`, `src/hooks.ts`).
    hooks_generation: AtomicU64,
    settings: RwLock<Map<String, Value>>,
    /// Bumped on every [`App::set`], so derived values can be cached.
    settings_version: AtomicU64,
    emitter: Emitter,
    any_listeners: RwLock<Vec<AnyListener>>,
    channels: Channels,
    connection_listeners: RwLock<Vec<ConnectionListener>>,
    disconnect_listeners: RwLock<Vec<ConnectionListener>>,
    set_up: AtomicBool,
}

/// Called when a real-time client connects or disconnects.
pub type ConnectionListener = Arc<dyn Fn(&Connection) + Send + Sync>;

/// A Plume application: services at paths, hooks, settings and events.
///
/// Cloning is cheap and every clone is the same app.
///
/// ```
/// use plume::{App, Hooks, HookContext, Params, Result};
/// use plume::store::MemoryService;
/// use serde_json::json;
///
/// async fn stamp(ctx: &mut HookContext) -> Result<()> {
///     if let Some(data) = ctx.data.as_mut().and_then(|d| d.as_object_mut()) {
///         data.insert("stamped".into(), json!(true));
///     }
///     Ok(())
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let app = App::new();
/// app.use_service("messages", MemoryService::new())?
///     .hooks(Hooks::new().before("create", stamp));
/// let created = app.service("messages")?.create(json!({"text": "hi"}), Params::new()).await?;
/// assert_eq!(created["stamped"], json!(true));
/// # Ok::<(), plume::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paths: Vec<String> = self
            .inner
            .services
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("App")
            .field("services", &paths)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An empty application.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(AppInner {
                services: RwLock::new(IndexMap::new()),
                hooks: RwLock::new(Hooks::new()),
                lifecycle_hooks: RwLock::new(Hooks::new()),
                hooks_generation: AtomicU64::new(0),
                settings: RwLock::new(Map::new()),
                settings_version: AtomicU64::new(0),
                emitter: Emitter::default(),
                any_listeners: RwLock::new(Vec::new()),
                channels: Channels::default(),
                connection_listeners: RwLock::new(Vec::new()),
                disconnect_listeners: RwLock::new(Vec::new()),
                set_up: AtomicBool::new(false),
            }),
        }
    }

    /// A handle that does not keep the app alive: what a service that
    /// needs its app (the authentication service) keeps, so that the app,
    /// which owns the service, and the service do not own each other.
    pub fn downgrade(&self) -> WeakApp {
        WeakApp {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// True when both handles are the same app.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Registers `service` at `path` with default options.
    pub fn use_service(&self, path: &str, service: impl Service) -> Result<ServiceHandle> {
        self.use_service_with(path, service, ServiceOptions::new())
    }

    /// Registers `service` at `path`.
    ///
    /// Fails when the path is not valid, is already taken, or a custom
    /// method name is not allowed.
    pub fn use_service_with(
        &self,
        path: &str,
        service: impl Service,
        options: ServiceOptions,
    ) -> Result<ServiceHandle> {
        self.use_arc_service(path, Arc::new(service), options)
    }

    /// Registers a shared service at `path`.
    pub fn use_arc_service(
        &self,
        path: &str,
        service: Arc<dyn Service>,
        options: ServiceOptions,
    ) -> Result<ServiceHandle> {
        let path = normalize_path(path)?;
        let (external, custom) = match &options.methods {
            None => (service.methods().to_vec(), Vec::new()),
            Some(names) => {
                let mut external = Vec::new();
                let mut custom = Vec::new();
                for name in names {
                    let method = Method::parse(name);
                    if let Method::Custom(custom_name) = &method {
                        if !is_identifier(name) || RESERVED_METHOD_NAMES.contains(&name.as_str()) {
                            return Err(Error::general(format!(
                                "'{name}' on service '{path}' is not allowed as a custom method name"
                            )));
                        }
                        custom.push(Arc::clone(custom_name));
                    }
                    external.push(method);
                }
                (external, custom)
            }
        };
        let entry = Arc::new(ServiceEntry {
            route: Route::parse(&path),
            path: Arc::from(path.as_str()),
            service,
            external,
            custom,
            own_events: options.events,
            hooks: RwLock::new(Hooks::new()),
            chains: RwLock::new(HashMap::new()),
            emitter: Emitter::default(),
            docs: RwLock::new(None),
        });
        {
            let mut services = self.inner.services.write().map_err(poisoned)?;
            if services.contains_key(&path) {
                return Err(Error::general(format!(
                    "A service is already registered at '{path}'"
                )));
            }
            services.insert(path, Arc::clone(&entry));
        }
        if self.inner.set_up.load(Ordering::Acquire) {
            // Registered after setup: set up now (as `use` in
            // `@feathersjs/feathers`, `src/application.ts`), without making
            // registration async.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let app = self.clone();
                let entry = Arc::clone(&entry);
                runtime.spawn(async move {
                    if let Err(error) = entry.service.setup(&app, &entry.path).await {
                        tracing::error!(path = %entry.path, %error, "service setup failed");
                    }
                });
            }
        }
        Ok(ServiceHandle {
            app: self.clone(),
            entry,
        })
    }

    /// The service at `path` (normalised), or 404 NotFound.
    pub fn service(&self, path: &str) -> Result<ServiceHandle> {
        let normalized = path.trim_matches('/');
        let normalized = if normalized.is_empty() {
            "/"
        } else {
            normalized
        };
        let entry = self
            .inner
            .services
            .read()
            .map_err(poisoned)?
            .get(normalized)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("Can not find service '{normalized}'")))?;
        Ok(ServiceHandle {
            app: self.clone(),
            entry,
        })
    }

    /// The paths of every registered service, in registration order.
    pub fn service_paths(&self) -> Vec<String> {
        self.inner
            .services
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The service whose route `score` ranks highest (the first one on a
    /// tie), with what `score` returned for it; `None` when it ranks none.
    /// Transports route with this (see `transport::dispatch`): it reads the
    /// registry in place, each service's route parsed at registration.
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    pub(crate) fn best_service<T>(
        &self,
        mut score: impl FnMut(&Route) -> Option<(usize, T)>,
    ) -> Option<(ServiceHandle, T)> {
        let services = self.inner.services.read().ok()?;
        let mut best: Option<(usize, &Arc<ServiceEntry>, T)> = None;
        for entry in services.values() {
            if let Some((rank, found)) = score(&entry.route)
                && best.as_ref().is_none_or(|(top, ..)| rank > *top)
            {
                best = Some((rank, entry, found));
            }
        }
        best.map(|(_, entry, found)| {
            (
                ServiceHandle {
                    app: self.clone(),
                    entry: Arc::clone(entry),
                },
                found,
            )
        })
    }

    /// Adds app-level hooks: they wrap every method of every service,
    /// including services registered later (`app.hooks` in
    /// `@feathersjs/feathers`, `src/application.ts`).
    pub fn hooks(&self, hooks: &Hooks) -> &Self {
        if let Ok(mut current) = self.inner.hooks.write() {
            current.extend(hooks);
        }
        self.inner.hooks_generation.fetch_add(1, Ordering::AcqRel);
        self
    }

    /// Adds around hooks for the app's own lifecycle: register them for the
    /// methods `"setup"` and `"teardown"` (Feathers: `@feathersjs/feathers`,
    /// `src/application.ts`).
    pub fn lifecycle_hooks(&self, hooks: &Hooks) -> &Self {
        if let Ok(mut current) = self.inner.lifecycle_hooks.write() {
            current.extend(hooks);
        }
        self
    }

    /// Stores a setting (`app.set` in `@feathersjs/feathers`,
    /// `src/application.ts`).
    pub fn set(&self, key: &str, value: Value) -> &Self {
        if let Ok(mut settings) = self.inner.settings.write() {
            settings.insert(key.to_owned(), value);
        }
        self.inner.settings_version.fetch_add(1, Ordering::AcqRel);
        self
    }

    /// A number that changes whenever a setting changes: what code that
    /// derives something from the settings compares to know its copy is
    /// still current.
    pub fn settings_version(&self) -> u64 {
        self.inner.settings_version.load(Ordering::Acquire)
    }

    /// A copy of the setting `key`, if set.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.inner.settings.read().ok()?.get(key).cloned()
    }

    /// Listens to an app event such as `login`.
    pub fn on(&self, event: &str, listener: impl Fn(&Value, &HookContext) + Send + Sync + 'static) {
        self.inner.emitter.on(event, Arc::new(listener) as Listener);
    }

    /// Emits an app event.
    pub fn emit(&self, event: &str, data: &Value, ctx: &HookContext) {
        self.inner.emitter.emit(event, data, ctx);
    }

    /// Listens to every event of every service, with the service's path.
    /// The data is what a client would see (`ctx.dispatch` when set).
    pub fn on_service_event(
        &self,
        listener: impl Fn(&str, &str, &Value, &HookContext) + Send + Sync + 'static,
    ) {
        if let Ok(mut listeners) = self.inner.any_listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// The channel called `name` (created when first joined).
    pub fn channel(&self, name: &str) -> Channel {
        Channel::new(self.clone(), name)
    }

    pub(crate) fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    /// Sets the app-wide publisher: which channels receive a service event.
    /// Without one, events go to the `authenticated` channel. A service's
    /// own publisher ([`ServiceHandle::publish`]) takes precedence.
    pub fn publish(
        &self,
        publisher: impl Fn(&Value, &HookContext) -> Vec<String> + Send + Sync + 'static,
    ) {
        self.inner
            .channels
            .set_app_publisher(Arc::new(publisher) as Publisher);
    }

    /// Listens for new real-time connections (Feathers' `connection`
    /// event): where an app puts them into channels.
    pub fn on_connection(&self, listener: impl Fn(&Connection) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.inner.connection_listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// Listens for real-time connections going away (Feathers'
    /// `disconnect` event). The connection has already left every channel.
    pub fn on_disconnect(&self, listener: impl Fn(&Connection) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.inner.disconnect_listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// A transport reports a new connection.
    pub fn connected(&self, connection: &Connection) {
        self.inner.channels.open(connection);
        let listeners = self
            .inner
            .connection_listeners
            .read()
            .map(|l| l.clone())
            .unwrap_or_default();
        for listener in listeners {
            listener(connection);
        }
    }

    /// A transport reports a closed connection: it leaves every channel,
    /// then the disconnect listeners run.
    pub fn disconnected(&self, connection: &Connection) {
        self.inner.channels.close(connection);
        self.detach(connection);
    }

    /// Every open real-time connection.
    pub(crate) fn live_connections(&self) -> Vec<Connection> {
        self.inner.channels.live()
    }

    /// How many real-time connections were dropped for reading too slowly:
    /// their queue of unsent events was full when an event came (see
    /// [`Delivery::Full`](crate::channels::Delivery::Full)).
    pub fn slow_connections_dropped(&self) -> u64 {
        self.inner.channels.slow_connections_dropped()
    }

    /// Takes a connection out of every channel, and nothing else.
    pub(crate) fn forget_channels(&self, connection: &Connection) {
        self.inner.channels.forget(connection);
    }

    /// A connection stops receiving events while it stays open (its login
    /// expired and `keepSocketOnExpiry` is set): it leaves every channel
    /// and the disconnect listeners run, as Feathers does on expiry.
    pub(crate) fn detach(&self, connection: &Connection) {
        self.inner.channels.forget(connection);
        let listeners = self
            .inner
            .disconnect_listeners
            .read()
            .map(|l| l.clone())
            .unwrap_or_default();
        for listener in listeners {
            listener(connection);
        }
    }

    /// True once [`setup`](Self::setup) has run and until
    /// [`teardown`](Self::teardown).
    pub fn is_set_up(&self) -> bool {
        self.inner.set_up.load(Ordering::Acquire)
    }

    /// Sets up every service in registration order, each awaited
    /// (`app.setup` in `@feathersjs/feathers`, `src/application.ts`), inside
    /// the app's `setup` lifecycle hooks.
    pub async fn setup(&self) -> Result<()> {
        self.run_lifecycle("setup").await
    }

    /// Tears down every service in registration order (`app.teardown` in
    /// `@feathersjs/feathers`, `src/application.ts`), inside the app's
    /// `teardown` lifecycle hooks.
    pub async fn teardown(&self) -> Result<()> {
        self.run_lifecycle("teardown").await
    }

    async fn run_lifecycle(&self, name: &str) -> Result<()> {
        let chain = {
            let hooks = self.inner.lifecycle_hooks.read().map_err(poisoned)?;
            Chain::compile(&[&hooks], name)
        };
        let mut ctx = HookContext::new(self.clone(), "", Method::parse(name));
        chain.run(&mut ctx, &Lifecycle).await
    }

    /// Emits one service event: service listeners get the raw `data`;
    /// app-wide listeners and channels get `safe`, the data as a client
    /// would see it (from `ctx.dispatch` when a hook set one).
    fn emit_service_event(
        &self,
        entry: &ServiceEntry,
        event: &str,
        data: &Value,
        safe: &Value,
        ctx: &HookContext,
    ) {
        entry.emitter.emit(event, data, ctx);
        let listeners = match self.inner.any_listeners.read() {
            Ok(listeners) => listeners.clone(),
            Err(_) => return,
        };
        for listener in listeners {
            listener(&entry.path, event, safe, ctx);
        }
        self.inner.channels.publish(&entry.path, event, safe, ctx);
    }
}

/// A weak handle to an [`App`]; see [`App::downgrade`].
#[derive(Clone)]
pub struct WeakApp {
    inner: Weak<AppInner>,
}

impl WeakApp {
    /// The app, unless it has been dropped.
    pub fn upgrade(&self) -> Option<App> {
        self.inner.upgrade().map(|inner| App { inner })
    }
}

impl fmt::Debug for WeakApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakApp")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

/// The innermost step of the lifecycle chains.
struct Lifecycle;

impl Terminal<HookContext> for Lifecycle {
    fn call<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let app = ctx.app.clone();
            let entries: Vec<Arc<ServiceEntry>> = app
                .inner
                .services
                .read()
                .map_err(poisoned)?
                .values()
                .cloned()
                .collect();
            let setup = ctx.method.as_str() == "setup";
            for entry in entries {
                if setup {
                    entry.service.setup(&app, &entry.path).await?;
                } else {
                    entry.service.teardown(&app, &entry.path).await?;
                }
            }
            app.inner.set_up.store(setup, Ordering::Release);
            Ok(())
        })
    }
}

/// A registered service: call its methods through its hooks, add hooks,
/// listen to its events.
#[derive(Clone)]
pub struct ServiceHandle {
    app: App,
    entry: Arc<ServiceEntry>,
}

impl fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHandle")
            .field("path", &self.entry.path)
            .field("methods", &self.entry.external)
            .finish()
    }
}

impl ServiceHandle {
    /// The normalised path the service is registered at.
    pub fn path(&self) -> &str {
        &self.entry.path
    }

    /// The app the service belongs to.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The service implementation.
    pub fn service(&self) -> &Arc<dyn Service> {
        &self.entry.service
    }

    /// The service implementation as its concrete type, if it is a `T`;
    /// how built-in hooks reach, say, the authentication service.
    pub fn downcast<T: Service>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn std::any::Any + Send + Sync> = Arc::clone(&self.entry.service) as _;
        any.downcast::<T>().ok()
    }

    /// Methods that transports may call.
    pub fn external_methods(&self) -> &[Method] {
        &self.entry.external
    }

    /// True when a transport may call `method`.
    pub fn allows_external(&self, method: &Method) -> bool {
        self.entry.external.contains(method)
    }

    /// Describes the service in the app's OpenAPI document
    /// ([`schema::openapi`](crate::schema::openapi), served at
    /// `GET /openapi.json`): its schemas and its public methods.
    pub fn docs(&self, docs: crate::schema::ServiceDocs) -> &Self {
        if let Ok(mut current) = self.entry.docs.write() {
            *current = Some(Arc::new(docs));
        }
        self
    }

    /// The service's docs, when [`docs`](Self::docs) set them.
    pub fn service_docs(&self) -> Option<Arc<crate::schema::ServiceDocs>> {
        self.entry.docs.read().ok().and_then(|docs| docs.clone())
    }

    /// Adds service-level hooks (cumulative, as `service.hooks` in
    /// `@feathersjs/feathers`, `src/hooks.ts`).
    pub fn hooks(&self, hooks: &Hooks) -> &Self {
        if let Ok(mut current) = self.entry.hooks.write() {
            current.extend(hooks);
        }
        self.app
            .inner
            .hooks_generation
            .fetch_add(1, Ordering::AcqRel);
        self
    }

    /// Sets this service's publisher: which channels receive its events
    /// (for example only the owner's). Overrides the app-wide publisher.
    pub fn publish(
        &self,
        publisher: impl Fn(&Value, &HookContext) -> Vec<String> + Send + Sync + 'static,
    ) -> &Self {
        self.app
            .inner
            .channels
            .set_service_publisher(&self.entry.path, Arc::new(publisher));
        self
    }

    /// Listens to an event of this service (`created`, ...).
    pub fn on(
        &self,
        event: &str,
        listener: impl Fn(&Value, &HookContext) + Send + Sync + 'static,
    ) -> &Self {
        self.entry.emitter.on(event, Arc::new(listener));
        self
    }

    /// A fresh context for a call of `method` on this service.
    pub fn context(&self, method: Method) -> HookContext {
        HookContext::new(self.app.clone(), Arc::clone(&self.entry.path), method)
    }

    /// Runs a call described by `ctx` through the hook chain, then emits its
    /// event. The outcome stays on the context (`result`, `error`,
    /// `http`), which is what transports need.
    pub async fn run(&self, ctx: &mut HookContext) -> Result<()> {
        let hook_enabled = match &ctx.method {
            Method::Custom(name) => self.entry.custom.iter().any(|c| c == name),
            standard => self.entry.service.methods().contains(standard),
        };
        if !hook_enabled {
            return Err(crate::service::method_not_allowed(ctx.method.as_str()));
        }
        let chain = self.chain(ctx.method.as_str())?;
        let terminal = Call {
            service: self.entry.service.as_ref(),
        };
        if let Err(error) = chain.run(ctx, &terminal).await {
            // Error blocks record the error on the context, but a chain
            // without error hooks (or an error raised outside them, in an
            // around hook) has none: record the error the call fails with.
            ctx.error = Some(error.clone());
            return Err(error);
        }
        self.emit_event(ctx);
        Ok(())
    }

    fn chain(&self, method: &str) -> Result<Chain<HookContext>> {
        let generation = self.app.inner.hooks_generation.load(Ordering::Acquire);
        if let Some((built, chain)) = self.entry.chains.read().map_err(poisoned)?.get(method)
            && *built == generation
        {
            return Ok(chain.clone());
        }
        let chain = {
            let app_hooks = self.app.inner.hooks.read().map_err(poisoned)?;
            let service_hooks = self.entry.hooks.read().map_err(poisoned)?;
            Chain::compile(&[&app_hooks, &service_hooks], method)
        };
        self.entry
            .chains
            .write()
            .map_err(poisoned)?
            .insert(method.to_owned(), (generation, chain.clone()));
        Ok(chain)
    }

    /// Emits `ctx.event` once per element of an array result, or once
    /// (Feathers' `eventHook`, `@feathersjs/feathers`, `src/events.ts`);
    /// events the service emits itself are skipped.
    fn emit_event(&self, ctx: &HookContext) {
        let (Some(event), Some(result)) = (ctx.event.as_deref(), ctx.result.as_ref()) else {
            return;
        };
        if self.entry.own_events.iter().any(|e| e == event) {
            return;
        }
        // What clients may see: `dispatch` mirrors the result's shape when
        // a hook such as `protect` set it.
        match (result, ctx.dispatch.as_ref()) {
            (Value::Array(items), dispatch) => {
                let safe_items = match dispatch {
                    Some(Value::Array(safe)) if safe.len() == items.len() => Some(safe),
                    _ => None,
                };
                for (i, item) in items.iter().enumerate() {
                    let safe = safe_items.map_or(item, |safe| &safe[i]);
                    self.app
                        .emit_service_event(&self.entry, event, item, safe, ctx);
                }
            }
            (single, dispatch) => {
                let safe = dispatch.unwrap_or(single);
                self.app
                    .emit_service_event(&self.entry, event, single, safe, ctx);
            }
        }
    }

    async fn call(&self, mut ctx: HookContext) -> Result<Value> {
        self.run(&mut ctx).await?;
        Ok(ctx.result.unwrap_or(Value::Null))
    }

    /// Calls `find` through the hooks.
    pub async fn find(&self, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Find);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `get` through the hooks.
    pub async fn get(&self, id: impl Into<Id>, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Get);
        ctx.id = Some(id.into());
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `create` through the hooks.
    pub async fn create(&self, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Create);
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `update` through the hooks (`None` for many).
    pub async fn update(&self, id: Option<Id>, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Update);
        ctx.id = id;
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `patch` through the hooks (`None` for many).
    pub async fn patch(&self, id: Option<Id>, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Patch);
        ctx.id = id;
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `remove` through the hooks (`None` for many).
    pub async fn remove(&self, id: Option<Id>, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Remove);
        ctx.id = id;
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls a declared custom method through the hooks.
    pub async fn custom(&self, method: &str, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::parse(method));
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }
}

/// The innermost step of a service call: the method itself.
struct Call<'s> {
    service: &'s dyn Service,
}

impl Terminal<HookContext> for Call<'_> {
    fn call<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let service = self.service;
            let method = ctx.method.clone();
            let result = match &method {
                Method::Find => service.find(&ctx.params).await?,
                Method::Get => {
                    let id = ctx.id.as_ref().ok_or_else(|| missing_id(&method))?;
                    service.get(id, &ctx.params).await?
                }
                Method::Create => service.create(data(ctx, &method)?, &ctx.params).await?,
                Method::Update => {
                    service
                        .update(ctx.id.as_ref(), data(ctx, &method)?, &ctx.params)
                        .await?
                }
                Method::Patch => {
                    service
                        .patch(ctx.id.as_ref(), data(ctx, &method)?, &ctx.params)
                        .await?
                }
                Method::Remove => service.remove(ctx.id.as_ref(), &ctx.params).await?,
                Method::Custom(name) => {
                    service
                        .custom(name, ctx.data.as_ref().unwrap_or(&Value::Null), &ctx.params)
                        .await?
                }
            };
            ctx.result = Some(result);
            Ok(())
        })
    }
}

fn data<'c>(ctx: &'c HookContext, method: &Method) -> Result<&'c Value> {
    ctx.data.as_ref().ok_or_else(|| {
        Error::bad_request(format!(
            "A data object must be provided to the '{method}' method"
        ))
    })
}

fn missing_id(method: &Method) -> Error {
    Error::bad_request(format!("An id must be provided to the '{method}' method"))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    /// Echoes its arguments; `create` of `{"fail": true}` fails.
    struct Echo;

    #[async_trait]
    impl Service for Echo {
        async fn find(&self, _params: &Params) -> Result<Value> {
            Ok(json!([]))
        }
        async fn get(&self, id: &Id, _params: &Params) -> Result<Value> {
            Ok(json!({"id": id.to_value()}))
        }
        async fn create(&self, data: &Value, _params: &Params) -> Result<Value> {
            if data.get("fail").is_some() {
                return Err(Error::bad_request("asked to fail"));
            }
            Ok(data.clone())
        }
        async fn update(&self, id: Option<&Id>, data: &Value, _params: &Params) -> Result<Value> {
            Ok(json!({"id": id.map(Id::to_value), "data": data}))
        }
        async fn patch(&self, id: Option<&Id>, data: &Value, _params: &Params) -> Result<Value> {
            Ok(json!({"id": id.map(Id::to_value), "data": data}))
        }
        async fn remove(&self, id: Option<&Id>, _params: &Params) -> Result<Value> {
            Ok(json!({"id": id.map(Id::to_value)}))
        }
        async fn custom(&self, method: &str, data: &Value, _params: &Params) -> Result<Value> {
            Ok(json!({"method": method, "data": data}))
        }
    }

    type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

    fn record(app: &App) -> Seen {
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        app.on_service_event(move |path, event, data, _ctx| {
            if let Ok(mut seen) = sink.lock() {
                seen.push((path.to_owned(), event.to_owned(), data.clone()));
            }
        });
        seen
    }

    fn taken(seen: &Seen) -> Vec<(String, String, Value)> {
        seen.lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    #[test]
    fn paths_are_normalised_and_validated() {
        // Feathers: `stripSlashes` in `@feathersjs/commons`, `src/index.ts`;
        // `app.service` in `@feathersjs/feathers`, `src/application.ts`.
        assert_eq!(normalize_path("/todos/").unwrap(), "todos");
        assert_eq!(normalize_path("").unwrap(), "/");
        assert_eq!(normalize_path("///").unwrap(), "/");
        assert_eq!(normalize_path("/:org/items").unwrap(), ":org/items");
        for bad in ["a//b", "a b", "../etc", "a/./b", "x?y", "ü"] {
            let err = normalize_path(bad).unwrap_err();
            assert_eq!(
                err.message(),
                format!("'{bad}' is not a valid service path.")
            );
        }
    }

    #[tokio::test]
    async fn services_are_found_by_any_spelling_of_their_path() {
        let app = App::new();
        app.use_service("/todos/", Echo).unwrap();
        for spelling in ["todos", "/todos", "todos/", "/todos/"] {
            assert_eq!(app.service(spelling).unwrap().path(), "todos");
        }
        let err = app.service("toString").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.message(), "Can not find service 'toString'");
        let dup = app.use_service("todos", Echo).unwrap_err();
        assert!(dup.message().contains("already registered"), "{dup}");
    }

    #[tokio::test]
    async fn custom_methods_are_declared_and_validated() {
        // Feathers: `app.use` in `@feathersjs/feathers`, `src/application.ts`;
        // `protectedMethods` and `getHookMethods` in `src/service.ts`.
        let app = App::new();
        for bad in [
            "setup",
            "hooks",
            "on",
            "toString",
            "__proto__",
            "with space",
            "9lives",
        ] {
            let err = app
                .use_service_with("x", Echo, ServiceOptions::new().methods(["find", bad]))
                .unwrap_err();
            assert_eq!(
                err.message(),
                format!("'{bad}' on service 'x' is not allowed as a custom method name")
            );
        }
        let svc = app
            .use_service_with(
                "x",
                Echo,
                ServiceOptions::new().methods(["find", "archive"]),
            )
            .unwrap();
        assert!(svc.allows_external(&Method::Find));
        assert!(!svc.allows_external(&Method::Get));
        let out = svc
            .custom("archive", json!({"a": 1}), Params::new())
            .await
            .unwrap();
        assert_eq!(out, json!({"method": "archive", "data": {"a": 1}}));
        // Internal callers may still use standard methods outside `methods`.
        assert_eq!(svc.get(1, Params::new()).await.unwrap(), json!({"id": 1}));
        let err = svc
            .custom("undeclared", json!({}), Params::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MethodNotAllowed);
        assert_eq!(
            err.message(),
            "Method `undeclared` is not supported by this endpoint."
        );
    }

    #[tokio::test]
    async fn services_downcast_to_their_type() {
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        assert!(svc.downcast::<Echo>().is_some());
        assert!(svc.downcast::<crate::store::MemoryService>().is_none());
        assert!(svc.app().ptr_eq(&app));
        assert!(!App::new().ptr_eq(&app));
    }

    #[tokio::test]
    async fn unimplemented_methods_are_405() {
        struct OnlyFind;
        #[async_trait]
        impl Service for OnlyFind {
            async fn find(&self, _params: &Params) -> Result<Value> {
                Ok(json!([]))
            }
            fn methods(&self) -> &'static [Method] {
                &[Method::Find]
            }
        }
        let app = App::new();
        let svc = app.use_service("only", OnlyFind).unwrap();
        assert_eq!(svc.external_methods(), &[Method::Find]);
        let err = svc.create(json!({}), Params::new()).await.unwrap_err();
        assert_eq!(err.code(), 405);
        assert_eq!(
            err.message(),
            "Method `create` is not supported by this endpoint."
        );
    }

    #[tokio::test]
    async fn events_follow_success_once_per_element() {
        // Feathers' `eventHook`, `@feathersjs/feathers`, `src/events.ts`.
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        let seen = record(&app);
        let own: Seen = Arc::default();
        let sink = Arc::clone(&own);
        svc.on("created", move |data, ctx| {
            sink.lock()
                .unwrap()
                .push((ctx.path.to_string(), "created".to_owned(), data.clone()));
        });

        svc.create(json!({"n": 1}), Params::new()).await.unwrap();
        svc.create(json!([{"n": 2}, {"n": 3}]), Params::new())
            .await
            .unwrap();
        svc.update(Some(Id::from(1)), json!({}), Params::new())
            .await
            .unwrap();
        svc.patch(None, json!({}), Params::new()).await.unwrap();
        svc.remove(Some(Id::from(4)), Params::new()).await.unwrap();
        svc.find(Params::new()).await.unwrap();
        svc.get(1, Params::new()).await.unwrap();
        assert!(
            svc.create(json!({"fail": true}), Params::new())
                .await
                .is_err()
        );

        let names: Vec<(String, Value)> =
            taken(&seen).into_iter().map(|(_, e, d)| (e, d)).collect();
        assert_eq!(
            names,
            vec![
                ("created".to_owned(), json!({"n": 1})),
                ("created".to_owned(), json!({"n": 2})),
                ("created".to_owned(), json!({"n": 3})),
                ("updated".to_owned(), json!({"id": 1, "data": {}})),
                ("patched".to_owned(), json!({"id": null, "data": {}})),
                ("removed".to_owned(), json!({"id": 4})),
            ]
        );
        assert_eq!(own.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn hooks_can_rename_or_suppress_events() {
        // Feathers' `eventHook` (`@feathersjs/feathers`, `src/events.ts`): its
        // test "allows to skip event emitting", custom method events.
        let app = App::new();
        let svc = app
            .use_service_with(
                "echo",
                Echo,
                ServiceOptions::new().methods(["create", "archive"]),
            )
            .unwrap();
        svc.hooks(
            Hooks::new()
                .before("create", async |ctx: &mut HookContext| {
                    if ctx.data.as_ref().is_some_and(|d| d.get("quiet").is_some()) {
                        ctx.event = None;
                    }
                    Ok(())
                })
                .before("archive", async |ctx: &mut HookContext| {
                    ctx.event = Some("archived".to_owned());
                    Ok(())
                }),
        );
        let seen = record(&app);
        svc.create(json!({"quiet": true}), Params::new())
            .await
            .unwrap();
        svc.custom("archive", json!({"a": 1}), Params::new())
            .await
            .unwrap();
        let events: Vec<String> = taken(&seen).into_iter().map(|(_, e, _)| e).collect();
        assert_eq!(events, ["archived"]);
    }

    #[tokio::test]
    async fn events_the_service_emits_itself_are_not_sent_twice() {
        let app = App::new();
        let svc = app
            .use_service_with("echo", Echo, ServiceOptions::new().events(["created"]))
            .unwrap();
        let seen = record(&app);
        svc.create(json!({}), Params::new()).await.unwrap();
        assert!(taken(&seen).is_empty());
    }

    #[tokio::test]
    async fn app_events_and_settings() {
        // Feathers: `app.get`/`app.set` in `@feathersjs/feathers`,
        // `src/application.ts`.
        let app = App::new();
        assert_eq!(app.get("missing"), None);
        app.set("paginate", json!({"default": 10}));
        assert_eq!(app.get("paginate"), Some(json!({"default": 10})));
        let logins = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logins);
        app.on("login", move |data, _ctx| {
            sink.lock().unwrap().push(data.clone());
        });
        let ctx = HookContext::new(app.clone(), "authentication", Method::Create);
        app.emit("login", &json!({"user": 1}), &ctx);
        app.emit("logout", &json!({"user": 1}), &ctx);
        assert_eq!(*logins.lock().unwrap(), vec![json!({"user": 1})]);
    }

    #[tokio::test]
    async fn setup_and_teardown_call_services_in_order() {
        // Feathers: `app.setup`/`app.teardown` in `@feathersjs/feathers`,
        // `src/application.ts`.
        struct Tracked(&'static str, Arc<Mutex<Vec<String>>>);
        #[async_trait]
        impl Service for Tracked {
            async fn setup(&self, _app: &App, path: &str) -> Result<()> {
                self.1
                    .lock()
                    .unwrap()
                    .push(format!("setup {} at {path}", self.0));
                Ok(())
            }
            async fn teardown(&self, _app: &App, path: &str) -> Result<()> {
                self.1
                    .lock()
                    .unwrap()
                    .push(format!("teardown {} at {path}", self.0));
                Ok(())
            }
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = App::new();
        app.use_service("first", Tracked("a", Arc::clone(&log)))
            .unwrap();
        app.use_service("/second/", Tracked("b", Arc::clone(&log)))
            .unwrap();
        assert!(!app.is_set_up());
        app.setup().await.unwrap();
        assert!(app.is_set_up());
        app.teardown().await.unwrap();
        assert!(!app.is_set_up());
        assert_eq!(
            *log.lock().unwrap(),
            [
                "setup a at first",
                "setup b at second",
                "teardown a at first",
                "teardown b at second"
            ]
        );
    }

    #[tokio::test]
    async fn ids_of_the_wrong_shape_never_reach_a_service() {
        assert_eq!(Id::from_value(&json!(null)).unwrap(), None);
        assert_eq!(Id::from_value(&json!(3)).unwrap(), Some(Id::Number(3)));
        for bad in [json!({"$ne": 1}), json!([1, 2]), json!(true), json!(1.5)] {
            assert_eq!(Id::from_value(&bad).unwrap_err().code(), 400, "{bad}");
        }
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        let mut ctx = svc.context(Method::Get);
        let err = svc.run(&mut ctx).await.unwrap_err();
        assert_eq!(err.message(), "An id must be provided to the 'get' method");
    }

    #[tokio::test]
    async fn hooks_added_after_use_take_effect() {
        // Feathers collects the chain on every call (`@feathersjs/feathers`,
        // `src/hooks.ts`); Plume caches chains and rebuilds them when hooks
        // change.
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        assert_eq!(
            svc.create(json!({}), Params::new()).await.unwrap(),
            json!({})
        );
        app.hooks(
            Hooks::new().before("create", async |ctx: &mut HookContext| {
                ctx.data = Some(json!({"by": "app hook"}));
                Ok(())
            }),
        );
        assert_eq!(
            svc.create(json!({}), Params::new()).await.unwrap(),
            json!({"by": "app hook"})
        );
    }
}
