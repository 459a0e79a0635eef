//! The tower layer of the access log (with the REST transport): one line
//! per request when the response head is ready, written by
//! [`super::access`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{Method, Uri};
use tracing::Level;

use super::ACCESS_TARGET;
use super::access::{AccessLine, log};

/// A tower layer that logs one `info` event per request with the target
/// [`ACCESS_TARGET`]: `method`, `path` (no query string), `status` and
/// `latency_us`, when the response head is ready. No span is opened.
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
        AccessLogFuture {
            inner: self.inner.call(request),
            request_line,
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
    }
}

impl<F, R, E> Future for AccessLogFuture<F>
where
    F: Future<Output = std::result::Result<axum::http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some((method, uri, started))) = (&response, this.request_line.take())
        {
            let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            log(&AccessLine {
                method: method.as_str(),
                path: uri.path(),
                status: response.status().as_u16(),
                latency_us,
            });
        }
        Poll::Ready(response)
    }
}
