//! The REST transport: Feathers' HTTP mapping on axum.
//!
//! `GET /svc` is `find`, `GET /svc/:id` `get`, `POST /svc` `create` (201),
//! `PUT /svc/:id` `update`, `PATCH` `patch`, `DELETE` `remove`; `POST` with an
//! `X-Service-Method` header calls a custom method (S-REST-1 to S-REST-5).
//! Errors are Feathers error JSON with their status.
//!
//! The router is an ordinary axum [`Router`], so tower layers
//! (`tower-http` tracing, CORS, ...) compose with it.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::AuthenticationService;
use crate::{
    App, ClientAddr, Error, HookContext, Id, Method, Params, Provider, Result, ServiceHandle,
};

/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The deepest nesting a query string may use (`a[b][c]...`), as `qs`.
pub const QUERY_MAX_DEPTH: usize = 5;

/// Options of the REST transport.
#[derive(Debug, Clone)]
pub struct RestOptions {
    /// Largest request body in bytes; larger bodies get 413.
    pub body_limit: usize,
    /// Cross-origin requests to allow; `None` allows none (browsers then
    /// only call from the same origin).
    pub cors: Option<CorsLayer>,
}

impl Default for RestOptions {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            cors: None,
        }
    }
}

/// Builds CORS from the configuration's `cors` object:
/// `{"origins": "*"}` or `{"origins": ["https://app.example"]}`, with
/// optional `"credentials": true` (not allowed together with `"*"`).
/// Methods and headers are those Feathers clients send.
pub fn cors_from_config(config: &Value) -> Result<CorsLayer> {
    let bad = |what: &str| Error::general(format!("cors: {what}"));
    let credentials = match config.get("credentials") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("credentials must be true or false")),
    };
    let origins = match config.get("origins") {
        Some(Value::String(s)) if s == "*" => {
            if credentials {
                return Err(bad("credentials cannot be combined with origins \"*\""));
            }
            AllowOrigin::any()
        }
        Some(Value::Array(list)) => {
            let mut values = Vec::with_capacity(list.len());
            for origin in list {
                let origin = origin
                    .as_str()
                    .and_then(|o| HeaderValue::from_str(o).ok())
                    .ok_or_else(|| bad("origins must be \"*\" or a list of origins like \"https://app.example\""))?;
                values.push(origin);
            }
            AllowOrigin::list(values)
        }
        _ => {
            return Err(bad(
                "origins must be \"*\" or a list of origins like \"https://app.example\"",
            ));
        }
    };
    Ok(CorsLayer::new()
        .allow_origin(origins)
        .allow_credentials(credentials)
        .allow_methods([
            HttpMethod::GET,
            HttpMethod::HEAD,
            HttpMethod::POST,
            HttpMethod::PUT,
            HttpMethod::PATCH,
            HttpMethod::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-service-method"),
        ]))
}

struct RestState {
    app: App,
    options: RestOptions,
    /// The app's authentication service, looked up on the first request
    /// that finds one rather than on every request.
    authentication: std::sync::OnceLock<Arc<AuthenticationService>>,
}

impl RestState {
    fn authentication(&self) -> Option<&Arc<AuthenticationService>> {
        if let Some(service) = self.authentication.get() {
            return Some(service);
        }
        let found = AuthenticationService::from_app(&self.app, None)?;
        Some(self.authentication.get_or_init(|| found))
    }
}

/// A router that serves every service of `app` over REST.
pub fn router(app: App) -> Router {
    router_with(app, RestOptions::default())
}

/// A router that serves every service of `app` over REST, with options.
pub fn router_with(app: App, options: RestOptions) -> Router {
    let cors = options.cors.clone();
    let state = Arc::new(RestState {
        app,
        options,
        authentication: std::sync::OnceLock::new(),
    });
    let router = Router::new().fallback(handle).with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
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

fn json_response(status: StatusCode, body: &Value) -> Response {
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
    match serve(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(state: &RestState, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let Target { service, route, id } = resolve(&state.app, &path).ok_or_else(|| {
        Error::not_found("Page not found").with_data(serde_json::json!({"url": path}))
    })?;
    let method = service_method(&parts.method, &parts.headers, id.is_some())?;
    if !service.allows_external(&method) {
        return Err(crate::method_not_allowed(method.as_str()));
    }

    super::single_authorization(&parts.headers)?;
    let mut ctx = service.context(method.clone());
    ctx.params = Params {
        provider: Some(Provider::Rest),
        query: parse_query(parts.uri.query())?,
        headers: headers_of(&parts.headers),
        route,
        ..Params::default()
    };
    // `Authorization` becomes `params.authentication` through the parse
    // strategies (S-REST-16); whether it is valid is for `authenticate`.
    if let Some(auth) = state.authentication()
        && let Some(authentication) = auth.parse(&ctx.params.headers)?
    {
        ctx.params.authentication = Some(authentication);
    }
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        ctx.params.extensions.insert(ClientAddr(addr.ip()));
    }
    if method.takes_id() {
        ctx.id = id.map(Id::String);
    }
    if method.takes_data() {
        let bytes = read_body(&parts.headers, body, state.options.body_limit).await?;
        ctx.data = parse_body(&bytes, &method)?;
    }
    service.run(&mut ctx).await?;
    Ok(respond(&ctx))
}

/// Where a request goes: a service, the route captures and the id segment.
struct Target {
    service: ServiceHandle,
    route: Map<String, Value>,
    id: Option<String>,
}

/// Finds the service for a request path (S-REST-1): the service path's
/// segments, optionally followed by one id segment. Literal segments win
/// over `:placeholders`; the captures become `params.route`.
fn resolve(app: &App, path: &str) -> Option<Target> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (service, (route, consumed)) = app.best_service(|service_path| {
        let pattern_len = if service_path == "/" {
            0
        } else {
            service_path.split('/').count()
        };
        if segments.len() != pattern_len && segments.len() != pattern_len + 1 {
            return None;
        }
        let pattern = service_path
            .split('/')
            .filter(|s| !s.is_empty() && *s != "/");
        let mut literals = 0;
        let mut route = Map::new();
        for (want, got) in pattern.zip(&segments) {
            if let Some(name) = want.strip_prefix(':') {
                route.insert(name.to_owned(), Value::String(decode(got)));
            } else if want == *got {
                literals += 1;
            } else {
                return None;
            }
        }
        // More literal segments win; on a tie, the match without an id.
        let score = literals * 2 + usize::from(segments.len() == pattern_len);
        Some((score, (route, pattern_len)))
    })?;
    Some(Target {
        service,
        route,
        id: segments.get(consumed).map(|s| decode(s)),
    })
}

/// Percent-decodes a path segment (Feathers passes it raw; Plume decodes so
/// that `/todos/a%20b` gets `a b`). Invalid UTF-8 is kept lossily.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The service method for an HTTP verb (S-REST-3, S-REST-4).
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

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    let too_large =
        || Error::payload_too_large(format!("Request body is larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
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

/// The response for a successful call (S-REST-8 to S-REST-10).
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

/// Percent-encodes what may not appear in a header (S-REST-10: spaces
/// become `%20`).
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
