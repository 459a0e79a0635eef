//! The service registry: registering a service at a path with its
//! options, the rules a path and a custom method name must follow, and
//! finding a registered service again.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use plume_hooks::Chain;

use super::routes::{RouteTable, Routed};
use super::{App, Hooks, ServiceHandle};
use crate::error::poisoned;
use crate::events::Emitter;
use crate::metrics::ServiceMetrics;
use crate::{Error, HookContext, Method, Result, Service};

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
pub(crate) fn normalize_path(path: &str) -> Result<String> {
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
pub(super) struct ServiceEntry {
    pub(super) path: Arc<str>,
    pub(super) service: Arc<dyn Service>,
    /// Methods transports may call.
    pub(super) external: Vec<Method>,
    /// Declared custom methods (hook-enabled, callable internally).
    pub(super) custom: Vec<Arc<str>>,
    pub(super) own_events: Vec<String>,
    pub(super) hooks: RwLock<Hooks>,
    pub(super) chains: RwLock<HashMap<String, (u64, Chain<HookContext>)>>,
    pub(super) emitter: Emitter,
    /// What the OpenAPI document says of the service.
    pub(super) docs: RwLock<Option<Arc<crate::schema::ServiceDocs>>>,
    /// Its calls over the transports and its events, for `/metrics`.
    pub(super) metrics: Arc<ServiceMetrics>,
}

impl App {
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
        let metrics = Arc::new(ServiceMetrics::new(&path, &custom));
        let entry = Arc::new(ServiceEntry {
            path: Arc::from(path.as_str()),
            service,
            external,
            custom,
            own_events: options.events,
            hooks: RwLock::new(Hooks::new()),
            chains: RwLock::new(HashMap::new()),
            emitter: Emitter::default(),
            docs: RwLock::new(None),
            metrics,
        });
        {
            let mut services = self.inner.services.write().map_err(poisoned)?;
            if services.contains_key(&path) {
                return Err(Error::general(format!(
                    "A service is already registered at '{path}'"
                )));
            }
            services.insert(path, Arc::clone(&entry));
            *self.inner.routes.write().map_err(poisoned)? = RouteTable::build(services.values());
        }
        self.set_up_if_late(&entry);
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

    /// True when a service is registered at exactly `path` (normalised).
    pub fn has_service(&self, path: &str) -> bool {
        let normalized = path.trim_matches('/');
        let normalized = if normalized.is_empty() {
            "/"
        } else {
            normalized
        };
        self.inner
            .services
            .read()
            .is_ok_and(|services| services.contains_key(normalized))
    }

    /// The paths of every registered service, in registration order.
    pub fn service_paths(&self) -> Vec<String> {
        self.inner
            .services
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The service `path` leads to through the route table (see
    /// `routes`), with the raw text of its placeholders and of its id
    /// segment when `id_segment` lets the path end with one.
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    pub(crate) fn route(&self, path: &str, id_segment: bool) -> Option<Routed<ServiceHandle>> {
        let found = self.inner.routes.read().ok()?.at(path, id_segment)?;
        Some(Routed {
            service: ServiceHandle {
                app: self.clone(),
                entry: found.service,
            },
            params: found.params,
            id: found.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::app::testing::Echo;
    use crate::{ErrorKind, Params};

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
}
