//! The tower layer of the access log (with the REST transport): one line
//! per request when the response head is ready, written by
//! [`super::access`]; and each request's id ([`super::request_id`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, Method, Uri};
use tracing::Level;

use super::ACCESS_TARGET;
use super::access::{AccessLine, log};
use super::request_id::{Entered, REQUEST_ID_HEADER, RequestId};

const X_REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// A tower layer that logs one `info` event per request with the target
/// [`ACCESS_TARGET`]: `method`, `path` (no query string), `status`,
/// `latency_us` and `request_id`, when the response head is ready. No span
/// is opened.
///
/// It also gives every request its id, logged or not: the request's sane
/// `x-request-id` or a new one ([`RequestId`]), returned in the response's
/// `x-request-id` header and [current](super::request_id::current) while
/// the request's future is polled.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for AccessLog<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let given = request.headers().get(X_REQUEST_ID);
        // A sane id comes back as the client sent it, sharing its bytes.
        let (id, header) = match given.and_then(|value| RequestId::parse(value.as_bytes())) {
            Some(id) => (id, given.cloned()),
            None => (RequestId::make(), None),
        };
        // With the access log filtered out, not even the clock is read.
        let request_line = tracing::enabled!(target: ACCESS_TARGET, Level::INFO).then(|| {
            // Both clones are cheap: a standard method is a tag, a URI
            // shares its bytes.
            (
                request.method().clone(),
                request.uri().clone(),
                Instant::now(),
            )
        });
        let mut id = Some(id);
        // The inner service starts work on `call` too (axum's router
        // does): the id is current for that as well.
        let inner = {
            let _entered = Entered::new(&mut id);
            self.inner.call(request)
        };
        AccessLogFuture {
            inner,
            request_line,
            id,
            header,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`AccessLog`]: the inner service's, which logs its
    /// request's line once the response head is ready. Not boxed: one
    /// allocation less per request, logged or not.
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        request_line: Option<(Method, Uri, Instant)>,
        // Always `Some` but while the inner future is polled (it is then
        // the thread's current id).
        id: Option<RequestId>,
        // The client's own header when its id was taken.
        header: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for AccessLogFuture<F>
where
    F: Future<Output = std::result::Result<axum::http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _entered = Entered::new(this.id);
            this.inner.poll(cx)
        };
        let mut response = std::task::ready!(polled);
        let Some(id) = this.id.as_ref() else {
            return Poll::Ready(response);
        };
        if let Ok(response) = &mut response {
            let value = match this.header.take() {
                Some(given) => Some(given),
                None => HeaderValue::from_bytes(id.as_bytes()).ok(),
            };
            if let Some(value) = value {
                response.headers_mut().insert(X_REQUEST_ID, value);
            }
            if let Some((method, uri, started)) = this.request_line.take() {
                let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                log(&AccessLine {
                    method: method.as_str(),
                    path: uri.path(),
                    status: response.status().as_u16(),
                    latency_us,
                    request_id: id.as_str(),
                });
            }
        }
        Poll::Ready(response)
    }
}
