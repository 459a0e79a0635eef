//! [`App`]: the service registry, app-level hooks, configuration, events,
//! setup and teardown; and [`ServiceHandle`], through which services are
//! called.
//!
//! This file holds the state they all share ([`App`] and [`WeakApp`]); each
//! job has a file of its own, so that one can be read without the others:
//!
//! - `registry`: registering a service at a path, the rules for paths and
//!   custom method names, finding a service again;
//! - `hooks`: app and service hooks, and the chains compiled from them;
//! - `call`: running a call through its chain to the method, and the
//!   `find`, `get`, ... shortcuts;
//! - `handle`: [`ServiceHandle`] and what it tells of its service;
//! - `events`: app events and the events a service call emits;
//! - `realtime`: real-time connections, channels and publishers;
//! - `settings`: `app.set` and `app.get`;
//! - `lifecycle`: setup and teardown;
//! - `readiness`: the checks behind `GET /ready` ([`ReadinessCheck`]).

mod call;
mod events;
mod handle;
mod hooks;
mod lifecycle;
mod readiness;
mod realtime;
mod registry;
mod routes;
mod settings;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, RwLock, Weak};

use indexmap::IndexMap;
use serde_json::{Map, Value};

pub use handle::ServiceHandle;
pub use hooks::Hooks;
pub use readiness::{CheckFailure, DEFAULT_READINESS_TIMEOUT, Readiness, ReadinessCheck};
pub(crate) use realtime::ConnectionListener;
pub use registry::ServiceOptions;

use crate::channels::Channels;
use crate::events::{AnyListener, Emitter};
use crate::metrics::{AppMetrics, ServiceMetrics};
use registry::ServiceEntry;
use routes::RouteTable;

struct AppInner {
    services: RwLock<IndexMap<String, Arc<ServiceEntry>>>,
    /// Rebuilt from `services` on every registration, under its lock.
    routes: RwLock<RouteTable>,
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
    /// When each logged-in connection's token expires.
    expiries: crate::auth::expiry::Expiries,
    connection_listeners: RwLock<Vec<ConnectionListener>>,
    disconnect_listeners: RwLock<Vec<ConnectionListener>>,
    set_up: AtomicBool,
    metrics: AppMetrics,
    readiness: readiness::Checks,
}

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
                routes: RwLock::new(RouteTable::default()),
                hooks: RwLock::new(Hooks::new()),
                lifecycle_hooks: RwLock::new(Hooks::new()),
                hooks_generation: AtomicU64::new(0),
                settings: RwLock::new(Map::new()),
                settings_version: AtomicU64::new(0),
                emitter: Emitter::default(),
                any_listeners: RwLock::new(Vec::new()),
                channels: Channels::default(),
                expiries: Default::default(),
                connection_listeners: RwLock::new(Vec::new()),
                disconnect_listeners: RwLock::new(Vec::new()),
                set_up: AtomicBool::new(false),
                metrics: AppMetrics::default(),
                readiness: readiness::Checks::default(),
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

    /// The app-wide counters of [`metrics_text`](Self::metrics_text).
    pub(crate) fn metrics(&self) -> &AppMetrics {
        &self.inner.metrics
    }

    /// The request counters of every registered service, in registration
    /// order.
    pub(crate) fn service_metrics(&self) -> Vec<Arc<ServiceMetrics>> {
        self.inner
            .services
            .read()
            .map(|s| s.values().map(|entry| Arc::clone(&entry.metrics)).collect())
            .unwrap_or_default()
    }

    /// True when both handles are the same app.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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

#[cfg(test)]
mod testing;
