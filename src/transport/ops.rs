//! Plume's own routes for operators, served by the REST transport:
//!
//! - `GET /health`: the process is alive and serving (200
//!   `{"status":"ok"}`); touches nothing else.
//! - `GET /ready`: every [`ReadinessCheck`](crate::ReadinessCheck) of the
//!   app passes (200 `{"status":"ready","checks":[..]}`), else 503
//!   Unavailable naming the failed checks ([`App::readiness`]).
//! - `GET /metrics`: [`App::metrics_text`], unless
//!   [`RestOptions::metrics`](super::rest::RestOptions::metrics) is off.
//!
//! Precedence: a service registered at exactly `health`, `ready` or
//! `metrics` takes that path (as a service at `openapi.json` does), and
//! the server warns at start that it does; otherwise these routes come
//! before the route table, so a placeholder (`:org`) or the root service's
//! id segment never answers them.

use axum::body::Body;
use axum::http::{HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::App;

/// One of Plume's own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpsRoute {
    Health,
    Ready,
    Metrics,
}

impl OpsRoute {
    /// Every route, for the start-up check of services that take them.
    pub(crate) const ALL: [Self; 3] = [Self::Health, Self::Ready, Self::Metrics];

    /// The route a request is for, if any: `GET` or `HEAD` of exactly
    /// `/health`, `/ready` or `/metrics` (when `metrics` is on).
    pub(crate) fn of(method: &HttpMethod, path: &str, metrics: bool) -> Option<Self> {
        // Every request passes here: the length rules out most at once.
        if !(6..=8).contains(&path.len()) || !matches!(*method, HttpMethod::GET | HttpMethod::HEAD)
        {
            return None;
        }
        match path {
            "/health" => Some(Self::Health),
            "/ready" => Some(Self::Ready),
            "/metrics" if metrics => Some(Self::Metrics),
            _ => None,
        }
    }

    /// The service path that would take the route instead.
    pub(crate) fn service_path(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Ready => "ready",
            Self::Metrics => "metrics",
        }
    }

    /// The route's answer.
    pub(crate) async fn answer(self, app: &App) -> Response {
        match self {
            Self::Health => super::rest::json_response(StatusCode::OK, &json!({"status": "ok"})),
            Self::Ready => match app.readiness().await.into_result() {
                Ok(body) => super::rest::json_response(StatusCode::OK, &body),
                Err(error) => error.into_response(),
            },
            Self::Metrics => {
                let mut response = Response::new(Body::from(app.metrics_text()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                );
                response
            }
        }
    }
}

/// Warns, once at start, of each of these routes a service takes.
pub(crate) fn warn_if_shadowed(app: &App, metrics: bool) {
    for route in OpsRoute::ALL {
        if route == OpsRoute::Metrics && !metrics {
            continue;
        }
        let path = route.service_path();
        if app.has_service(path) {
            tracing::warn!(
                "the service at '{path}' answers GET /{path}, not Plume's own /{path} route"
            );
        }
    }
}
