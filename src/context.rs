//! [`HookContext`] and [`Params`]: what every hook reads and writes.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use plume_hooks::HookType;
use serde_json::{Map, Value};

use crate::{App, Error, Id, Method};

/// Who made a call. `None` in [`Params::provider`] means an internal call
/// from server code, which hooks such as `authenticate` trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// The REST transport.
    Rest,
    /// The socket.io transport.
    SocketIo,
}

impl Provider {
    /// The name Feathers uses (`"rest"`, `"socketio"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::SocketIo => "socketio",
        }
    }
}

/// The network address of the client that made a call; transports store it
/// in [`Params::extensions`] so that hooks (login throttling, logging) can
/// read it. Internal calls have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub std::net::IpAddr);

/// How a call paginates, overriding the service's own setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaginateParam {
    /// Use the service's setting.
    #[default]
    Service,
    /// Return a plain array (Feathers' `paginate: false`).
    Disabled,
    /// Paginate with these settings.
    With(Paginate),
}

/// Pagination settings: the page size when `$limit` is absent and the
/// largest page a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paginate {
    /// Page size when the query has no `$limit`.
    pub default: usize,
    /// Upper bound for `$limit`.
    pub max: usize,
}

/// Typed values that hooks pass along to later hooks and services.
///
/// Keyed by type, like `http::Extensions`; values are shared, so a clone of
/// the params is cheap.
#[derive(Clone, Default)]
pub struct Extensions {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Extensions {
    /// Stores a value, replacing one of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref())
    }

    /// Removes the value of type `T`; true if there was one.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> bool {
        self.map.remove(&TypeId::of::<T>()).is_some()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.map.len())
            .finish()
    }
}

/// The parameters of a service call.
///
/// Transports build them from a request: the query string goes to `query`,
/// headers to `headers`. The fields that decide security (`provider`,
/// `authenticated`, `entities`, `payload`) are never filled from a request
/// body or query; only server code and hooks set them.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Who called: `None` for an internal call.
    pub provider: Option<Provider>,
    /// The query (`$limit`, filters, ...), a JSON object.
    pub query: Map<String, Value>,
    /// Request headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// Values captured from the route (`/:org/items`) and the service's
    /// route options.
    pub route: Map<String, Value>,
    /// Credentials parsed from the request (`{strategy, accessToken}`),
    /// checked by the `authenticate` hook, which adds the verified claims
    /// as `payload` (read them with [`Params::claims`] or
    /// [`Params::claims_as`]).
    pub authentication: Option<Value>,
    /// True once a hook has authenticated the call.
    pub authenticated: bool,
    /// Authenticated entities by name (`user` by default).
    pub entities: Map<String, Value>,
    /// Extra claims to sign into an access token; starts empty.
    pub payload: Map<String, Value>,
    /// Overrides the service's pagination for this call.
    pub paginate: PaginateParam,
    /// The real-time connection the call came through, if any.
    pub connection: Option<crate::channels::Connection>,
    /// Typed values for later hooks and the service.
    pub extensions: Extensions,
}

impl Params {
    /// Params for an internal call (no provider).
    pub fn new() -> Self {
        Self::default()
    }

    /// Params for an internal call with a query.
    pub fn with_query(query: Value) -> Self {
        let query = match query {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self {
            query,
            ..Self::default()
        }
    }

    /// Params for a call made by a transport.
    pub fn external(provider: Provider) -> Self {
        Self {
            provider: Some(provider),
            ..Self::default()
        }
    }

    /// True when a transport made the call.
    pub fn is_external(&self) -> bool {
        self.provider.is_some()
    }

    /// The authenticated entity called `name`.
    pub fn entity(&self, name: &str) -> Option<&Value> {
        self.entities.get(name)
    }

    /// The authenticated `user`, the default entity name.
    pub fn user(&self) -> Option<&Value> {
        self.entity("user")
    }
}

/// Transport options a hook may set: status, headers and a redirect
/// location (Feathers' `context.http`, which `@feathersjs/transport-commons`,
/// `src/http.ts`, turns into the response).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpOptions {
    /// Status code to answer with instead of the default.
    pub status: Option<u16>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// A `Location` to redirect to.
    pub location: Option<String>,
}

/// The context of one service call, shared by every hook in its chain.
///
/// A before hook that sets [`result`](Self::result) skips the method (but
/// not the other hooks; Feathers: `@feathersjs/hooks`, `src/hooks.ts`).
#[derive(Clone)]
pub struct HookContext {
    /// The application.
    pub app: App,
    /// The normalised path of the service.
    pub path: Arc<str>,
    /// The method being called.
    pub method: Method,
    /// The kind of hook running now.
    pub hook_type: HookType,
    /// The call's parameters.
    pub params: Params,
    /// The id argument, for get, update, patch and remove (`None` means
    /// "many" for update, patch and remove).
    pub id: Option<Id>,
    /// The data argument, for create, update, patch and custom methods.
    pub data: Option<Value>,
    /// The result; set by the method, or by a hook to skip the method.
    pub result: Option<Value>,
    /// A safe version of the result for external callers; when set,
    /// transports send it instead of `result`.
    pub dispatch: Option<Value>,
    /// The error an error block caught.
    pub error: Option<Error>,
    /// The context as it was when the error was first caught.
    pub original: Option<Box<HookContext>>,
    /// Transport options (status, headers, location).
    pub http: HttpOptions,
    /// The event emitted after success (`created`, ...); hooks may rename
    /// it or set `None` to suppress it.
    pub event: Option<String>,
}

impl HookContext {
    /// A fresh context for a call of `method` on the service at `path`.
    pub fn new(app: App, path: impl Into<Arc<str>>, method: Method) -> Self {
        let event = method.event().map(str::to_owned);
        Self {
            app,
            path: path.into(),
            method,
            hook_type: HookType::Around,
            params: Params::default(),
            id: None,
            data: None,
            result: None,
            dispatch: None,
            error: None,
            original: None,
            http: HttpOptions::default(),
            event,
        }
    }

    /// What a transport sends: `dispatch` when set, else `result`.
    pub fn response(&self) -> Option<&Value> {
        self.dispatch.as_ref().or(self.result.as_ref())
    }
}

impl fmt::Debug for HookContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookContext")
            .field("path", &self.path)
            .field("method", &self.method)
            .field("hook_type", &self.hook_type)
            .field("params", &self.params)
            .field("id", &self.id)
            .field("data", &self.data)
            .field("result", &self.result)
            .field("dispatch", &self.dispatch)
            .field("error", &self.error)
            .field("http", &self.http)
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

impl plume_hooks::Context for HookContext {
    type Error = Error;

    fn hook_type(&self) -> HookType {
        self.hook_type
    }

    fn set_hook_type(&mut self, hook_type: HookType) {
        self.hook_type = hook_type;
    }

    fn has_result(&self) -> bool {
        self.result.is_some()
    }

    fn clear_result(&mut self) {
        self.result = None;
    }

    fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    fn set_error(&mut self, error: Option<Error>) {
        self.error = error;
    }

    fn save_original(&mut self) {
        let mut snapshot = self.clone();
        snapshot.original = None;
        self.original = Some(Box::new(snapshot));
    }
}
