//! Cross-origin requests, from Plume's `cors` object or Feathers'
//! `origins` list.
//!
//! A response that does not allow the request's origin carries no CORS
//! header at all: tower-http's layer still adds `allow-credentials`,
//! `allow-methods` and `allow-headers` when the origin is not allowed,
//! which tells a stranger's page more than it needs and reads as if the
//! origin were half allowed.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method as HttpMethod, header};
use axum::response::Response;
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{Error, Result};

/// The CORS of a configuration: its `cors` object when there is one
/// ([`cors_from_config`]), else Feathers' `origins` list (those origins,
/// credentials allowed), else none. With both, `cors` decides and a
/// warning says that `origins` is not used for CORS.
pub fn cors_of(cors: Option<&Value>, origins: Option<&Value>) -> Result<Option<CorsLayer>> {
    match (cors, origins) {
        (Some(cors), origins) => {
            if origins.is_some() {
                tracing::warn!("cors is set, so origins is not used for CORS");
            }
            cors_from_config(cors).map(Some)
        }
        (None, Some(Value::Array(list))) => Ok(Some(layer(origin_list(list, "origins")?, true))),
        (None, Some(other)) => Err(Error::general(format!(
            "origins must be a list of origins like [\"https://app.example\"], not {other}"
        ))),
        (None, None) => Ok(None),
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
        Some(Value::Array(list)) => origin_list(list, "cors.origins")?,
        _ => {
            return Err(bad(
                "origins must be \"*\" or a list of origins like \"https://app.example\"",
            ));
        }
    };
    Ok(layer(origins, credentials))
}

/// The origins of a list (`key` names it in errors).
fn origin_list(list: &[Value], key: &str) -> Result<AllowOrigin> {
    let mut values = Vec::with_capacity(list.len());
    for origin in list {
        // tower-http refuses (panics on) a wildcard inside a list.
        if origin.as_str() == Some("*") {
            return Err(Error::general(format!(
                "{key}: \"*\" cannot be one origin of a list: use \"cors\": \
                 {{\"origins\": \"*\"}} (without credentials) or name the origins"
            )));
        }
        let origin = origin
            .as_str()
            .and_then(|o| HeaderValue::from_str(o).ok())
            .ok_or_else(|| {
                Error::general(format!(
                    "{key} must list origins like \"https://app.example\", not {origin}"
                ))
            })?;
        values.push(origin);
    }
    Ok(AllowOrigin::list(values))
}

/// CORS for `origins`, with the methods and headers Feathers clients send.
fn layer(origins: AllowOrigin, credentials: bool) -> CorsLayer {
    CorsLayer::new()
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
        ])
}

/// `router` behind `cors`, with the CORS headers of responses that do not
/// allow the origin removed (see the [module documentation](self)).
pub(crate) fn apply<S>(router: Router<S>, cors: CorsLayer) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(cors)
        .layer(axum::middleware::map_response(only_for_allowed_origins))
}

/// The response headers tower-http's layer may add besides
/// `allow-origin`.
const OTHER_CORS_HEADERS: [HeaderName; 5] = [
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
];

async fn only_for_allowed_origins(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in OTHER_CORS_HEADERS {
            headers.remove(name);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_wildcard_in_a_list_is_an_error_not_a_panic() {
        for config in [
            cors_of(None, Some(&json!(["*"]))),
            cors_of(Some(&json!({"origins": ["https://a.example", "*"]})), None),
        ] {
            let error = config.unwrap_err();
            assert!(error.message().contains("\"*\""), "{error}");
        }
        assert!(cors_of(None, Some(&json!("https://a.example"))).is_err());
        assert!(cors_of(None, Some(&json!([]))).unwrap().is_some());
        assert!(cors_of(None, None).unwrap().is_none());
    }
}
