//! The REST transport: Feathers' HTTP mapping on axum.
//!
//! `GET /svc` is `find`, `GET /svc/:id` `get`, `POST /svc` `create` (201),
//! `PUT /svc/:id` `update`, `PATCH` `patch`, `DELETE` `remove`; `POST` with an
//! `X-Service-Method` header calls a custom method (Feathers:
//! `@feathersjs/transport-commons`, `src/routing/router.ts` and
//! `src/http.ts`; `@feathersjs/express`, `src/rest.ts`).
//! Errors are Feathers error JSON with their status.
//!
//! The router is an ordinary axum [`Router`], so tower layers
//! (`tower-http` tracing, CORS, ...) compose with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;

pub use super::cors::{cors_from_config, cors_of};
use super::dispatch::{self, AuthLookup, Caller, IdSegment};
pub use super::input::InputBudget;
use super::input::{BUDGET_WAIT, check_value_count, count_values};
use super::ops::OpsRoute;
use crate::metrics::Transport;
use crate::{App, Error, HookContext, Id, Method, Provider, Result};

/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The deepest nesting a query string may use (`a[b][c]...`), as `qs`.
pub const QUERY_MAX_DEPTH: usize = 5;

/// How long a request body may take to arrive once it holds its share of
/// the input budget ([`RestOptions::body_timeout`]): a 1 MiB body needs
/// well under a second on any link a client of this server has.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of the REST transport.
#[derive(Debug, Clone)]
pub struct RestOptions {
    /// Largest request body in bytes; larger bodies get 413. The server
    /// uses it for socket.io packets too.
    pub body_limit: usize,
    /// The allowance of large inputs in flight; `None` gives
    /// [`InputBudget::for_body_limit`] of [`body_limit`](Self::body_limit).
    pub budget: Option<InputBudget>,
    /// How long a body may take to arrive once it holds its share of the
    /// budget (default 10 s); a slower one gets 408 Timeout, so slow
    /// senders cannot keep the budget from everyone else.
    pub body_timeout: Duration,
    /// Cross-origin requests to allow; `None` allows none (browsers then
    /// only call from the same origin). See [`cors_of`].
    pub cors: Option<CorsLayer>,
    /// A folder served as static files under `/` to `GET` and `HEAD`
    /// requests that no service takes (Feathers' `public`): `index.html`
    /// for a folder, no listings, no dotfiles, no `..` (symbolic links
    /// inside the folder are followed).
    pub public: Option<PathBuf>,
    /// Serves the app's OpenAPI 3.1 document at `GET /openapi.json`
    /// ([`crate::schema::openapi`]) unless a service takes that path
    /// (default on: it describes what any client can find out by calling).
    pub openapi: bool,
    /// Serves [`App::metrics_text`] at `GET /metrics` unless a service
    /// takes that path (default on: counts by service path and method,
    /// which the OpenAPI document already lists; see the README's
    /// "Operating it" for keeping it private).
    pub metrics: bool,
}

impl RestOptions {
    /// The allowance of large inputs: [`budget`](Self::budget), else one
    /// for [`body_limit`](Self::body_limit).
    pub fn input_budget(&self) -> InputBudget {
        self.budget
            .clone()
            .unwrap_or_else(|| InputBudget::for_body_limit(self.body_limit))
    }
}

impl Default for RestOptions {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            budget: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            cors: None,
            public: None,
            openapi: true,
            metrics: true,
        }
    }
}

struct RestState {
    app: App,
    options: RestOptions,
    budget: InputBudget,
    authentication: AuthLookup,
    /// `options.public`, ready to serve.
    public: Option<ServeDir>,
}

/// A router that serves every service of `app` over REST.
pub fn router(app: App) -> Router {
    router_with(app, RestOptions::default())
}

/// A router that serves every service of `app` over REST, with options.
pub fn router_with(app: App, options: RestOptions) -> Router {
    let cors = options.cors.clone();
    let budget = options.input_budget();
    let public = options.public.as_ref().map(ServeDir::new);
    let state = Arc::new(RestState {
        app,
        options,
        budget,
        authentication: AuthLookup::default(),
        public,
    });
    let router = Router::new().fallback(handle).with_state(state);
    match cors {
        Some(cors) => super::cors::apply(router, cors),
        None => router,
    }
}

/// An error as an HTTP response: its status and its Feathers JSON.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(status, &self.to_json());
        // Rate limiting says when to come back in `data.retryAfter` (seconds).
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(seconds) = self
                .data()
                .and_then(|d| d.get("retryAfter"))
                .and_then(Value::as_u64)
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

async fn handle(State(state): State<Arc<RestState>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if let Some(route) = OpsRoute::of(&parts.method, &path, state.options.metrics)
        && !state.app.has_service(route.service_path())
    {
        return route.answer(&state.app).await;
    }
    let Some(target) = dispatch::resolve(&state.app, &path, IdSegment::Allowed) else {
        let response = unrouted(&state, &path, parts, body)
            .await
            .unwrap_or_else(IntoResponse::into_response);
        state.app.metrics().unrouted.record(
            None,
            Transport::Rest,
            response.status().as_u16(),
            started.elapsed(),
        );
        return response;
    };
    let (method, response) =
        match service_method(&parts.method, &parts.headers, target.id.is_some()) {
            Ok(method) => {
                let response = serve(&state, &target, &method, &path, parts, body).await;
                (
                    Some(method),
                    response.unwrap_or_else(IntoResponse::into_response),
                )
            }
            Err(error) => (None, error.into_response()),
        };
    target.service.record(
        method.as_ref(),
        Transport::Rest,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A request no service takes: the OpenAPI document, a static file or
/// the Feathers 404.
async fn unrouted(
    state: &RestState,
    path: &str,
    parts: axum::http::request::Parts,
    body: Body,
) -> Result<Response> {
    if state.options.openapi && path == "/openapi.json" && parts.method == HttpMethod::GET {
        let document = crate::schema::openapi(&state.app);
        return Ok(json_response(StatusCode::OK, &document));
    }
    static_file(state, Request::from_parts(parts, body)).await
}

async fn serve(
    state: &RestState,
    target: &dispatch::Target,
    method: &Method,
    path: &str,
    parts: axum::http::request::Parts,
    body: Body,
) -> Result<Response> {
    dispatch::external_method(&target.service, method, Provider::Rest, path)?;

    super::single_authorization(&parts.headers)?;
    let caller = Caller {
        provider: Provider::Rest,
        headers: headers_of(&parts.headers),
        authentication: None,
        entities: Map::new(),
        connection: None,
        address: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
    };
    let query = parse_query(parts.uri.query())?;
    let mut ctx = dispatch::context(target, method.clone(), caller, query);
    // `Authorization` becomes `params.authentication` through the parse
    // strategies (Feathers' `parseAuthentication`, `@feathersjs/express`,
    // `src/authentication.ts`); whether it is valid is for `authenticate`.
    if let Some(auth) = state.authentication.get(&state.app)
        && let Some(authentication) = auth.parse(&ctx.params.headers)?
    {
        ctx.params.authentication = Some(authentication);
    }
    if method.takes_id() {
        ctx.id = target.id.clone().map(Id::String);
    }
    // Held until the answer is built: the body and its parsed data live
    // that long.
    let mut _permit = None;
    if method.takes_data() {
        let limit = state.options.body_limit;
        let declared = declared_length(&parts.headers);
        // Refused before it may hold any of the shared budget.
        if declared.is_some_and(|len| len > limit) {
            return Err(too_large(limit));
        }
        // Without a length the body may be as large as the limit.
        let expected = declared.unwrap_or(limit);
        _permit = Some(state.budget.take(expected, BUDGET_WAIT).await?);
        // A slow sender would hold its share of the budget for as long as
        // it liked, and a few of them would starve every other large input.
        let wait = state.options.body_timeout;
        let bytes = tokio::time::timeout(wait, read_body(body, limit))
            .await
            .map_err(|_| {
                Error::timeout(format!(
                    "The request body did not arrive within {} ms",
                    wait.as_millis()
                ))
            })??;
        check_value_count(count_values(&bytes), limit)?;
        ctx.data = parse_body(&bytes, method)?;
    }
    target.service.run(&mut ctx).await?;
    Ok(respond(&ctx))
}

/// A file of the `public` folder for a request no service takes, or the
/// Feathers 404. Paths with a segment that starts with a dot are refused
/// (like `serve-static`'s default), so `.env` or `.git` left in the folder
/// stay private; so are paths with an empty segment (`//name` would be
/// redirected to `//name/`, which a browser reads as another host).
async fn static_file(state: &RestState, request: Request) -> Result<Response> {
    use tower::ServiceExt as _;
    let path = request.uri().path().to_owned();
    let not_found =
        || Error::not_found("Page not found").with_data(serde_json::json!({"url": path}));
    let Some(public) = &state.public else {
        return Err(not_found());
    };
    let readable = matches!(*request.method(), HttpMethod::GET | HttpMethod::HEAD);
    if !readable || !servable(&path) {
        return Err(not_found());
    }
    let response = match public.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.status() == StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    Ok(response.map(Body::new))
}

/// Whether a request path may name a file of `public`: decoded whole
/// first, as ServeDir decodes it (`%2e` is a dot, `%2F` a separator to
/// it), no segment may start with a dot or be empty (but the last, for a
/// folder's `index.html`).
fn servable(path: &str) -> bool {
    let decoded = dispatch::decode(path);
    let Some(relative) = decoded.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = relative.split(['/', '\\']).collect();
    let last = segments.len() - 1;
    segments
        .iter()
        .enumerate()
        .all(|(index, segment)| !segment.starts_with('.') && (index == last || !segment.is_empty()))
}

/// The service method for an HTTP verb (`getServiceMethod` in
/// `@feathersjs/transport-commons`, `src/http.ts`, and the `methods` check
/// of `@feathersjs/express`, `src/rest.ts`).
fn service_method(verb: &HttpMethod, headers: &HeaderMap, has_id: bool) -> Result<Method> {
    let method = match *verb {
        HttpMethod::GET | HttpMethod::HEAD if has_id => Method::Get,
        HttpMethod::GET | HttpMethod::HEAD => Method::Find,
        HttpMethod::POST => match headers.get("x-service-method") {
            None => Method::Create,
            Some(value) => {
                let name = value.to_str().unwrap_or_default();
                let method = Method::parse(name);
                // Standard methods are reached by their verbs only.
                if method.is_standard() || name.is_empty() {
                    return Err(crate::method_not_allowed(name));
                }
                method
            }
        },
        HttpMethod::PUT => Method::Update,
        HttpMethod::PATCH => Method::Patch,
        HttpMethod::DELETE => Method::Remove,
        ref other => {
            return Err(Error::method_not_allowed(format!(
                "Method {other} not allowed"
            )));
        }
    };
    Ok(method)
}

/// Parses a query string the `qs` way: brackets (also percent-encoded)
/// nest, `[]` appends, every value is a string, depth at most
/// [`QUERY_MAX_DEPTH`].
fn parse_query(query: Option<&str>) -> Result<Map<String, Value>> {
    match query {
        None | Some("") => Ok(Map::new()),
        Some(query) => serde_qs::Config::new()
            .max_depth(QUERY_MAX_DEPTH)
            .use_form_encoding(true)
            .deserialize_str::<Map<String, Value>>(query)
            .map_err(|e| Error::bad_request(format!("Invalid query string: {e}"))),
    }
}

fn headers_of(headers: &HeaderMap) -> std::collections::HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit))
}

fn too_large(limit: usize) -> Error {
    Error::payload_too_large(format!("Request body is larger than {limit} bytes"))
}

/// The body length the client declared, if it did.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Parses a JSON body. An empty body is no data, except for custom methods,
/// which get `null`. serde_json's recursion limit turns a nesting bomb into
/// a 400 instead of a stack overflow.
fn parse_body(bytes: &[u8], method: &Method) -> Result<Option<Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(match method {
            Method::Custom(_) => Some(Value::Null),
            _ => None,
        });
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")))
}

/// The response for a successful call (Feathers:
/// `@feathersjs/transport-commons`, `src/http.ts`).
fn respond(ctx: &HookContext) -> Response {
    let body = ctx.response().unwrap_or(&Value::Null);
    let location = ctx.http.location.as_deref();
    let falsy = match body {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    let status = match ctx.http.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(status) => status,
        None if location.is_some() => StatusCode::SEE_OTHER,
        None if falsy => StatusCode::NO_CONTENT,
        None if ctx.method == Method::Create => StatusCode::CREATED,
        None => StatusCode::OK,
    };
    let mut response = if status == StatusCode::NO_CONTENT {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        response
    } else {
        json_response(status, body)
    };
    let headers = response.headers_mut();
    for (name, value) in &ctx.http.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(location) = location
        && let Ok(value) = HeaderValue::try_from(encode_location(location))
    {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// Percent-encodes what may not appear in a header (as
/// `@feathersjs/transport-commons`, `src/http.ts`, does: spaces become
/// `%20`).
fn encode_location(location: &str) -> String {
    let mut out = String::with_capacity(location.len());
    for byte in location.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod input_tests {
    use super::*;
    use crate::transport::input::{BYTES_PER_VALUE, MIN_VALUES, SMALL_INPUT_BYTES};

    #[test]
    fn only_plain_paths_may_name_public_files() {
        for plain in [
            "/",
            "/index.html",
            "/assets/",
            "/assets/logo.png",
            "/a%20b.txt",
        ] {
            assert!(servable(plain), "{plain}");
        }
        for hidden in [
            "/.env",
            "/%2eenv",
            "/assets/.env",
            "/assets%2F.env",
            "/assets%2f.git/config",
            "//assets",
            "/assets//logo.png",
            "/a\\.env",
            "/a%5C.env",
            "/../outside.txt",
            "/%2e%2e/outside.txt",
            "",
        ] {
            assert!(!servable(hidden), "{hidden}");
        }
    }

    #[test]
    fn values_are_counted_outside_strings() {
        assert_eq!(count_values(b"1"), 1);
        assert_eq!(count_values(br#"[0,0,0]"#), 4);
        // An upper bound: an opening bracket and the comma after it both count.
        assert_eq!(count_values(br#"{"a":[{},{}]}"#), 6);
        assert_eq!(count_values(br#"{"a":"[,{\",]"}"#), 2);
        assert!(check_value_count(MIN_VALUES, 0).is_ok());
        let err = check_value_count(1024 * 1024 / BYTES_PER_VALUE + 1, 1024 * 1024).unwrap_err();
        assert_eq!(err.code(), 400);
        assert_eq!(err.message(), "Invalid JSON: more than 65536 values");
    }

    #[tokio::test]
    async fn large_inputs_share_the_budget_and_small_ones_pass() {
        let budget = InputBudget::new(2 * 1024 * 1024);
        let first = budget.try_take(1024 * 1024).unwrap();
        let _second = budget.try_take(1024 * 1024).unwrap();
        assert_eq!(budget.try_take(1024 * 1024).unwrap_err().code(), 503);
        assert!(budget.try_take(SMALL_INPUT_BYTES).is_ok());
        let wait = Duration::from_millis(10);
        assert_eq!(budget.take(200_000, wait).await.unwrap_err().code(), 503);
        drop(first);
        assert!(budget.take(200_000, wait).await.is_ok());
        // Larger than the whole budget: takes all of it, never waits forever.
        let all = InputBudget::new(100_000);
        assert!(all.take(10 * 1024 * 1024, wait).await.is_ok());
    }
}
