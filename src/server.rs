//! Serving an app over HTTP: the entry point that the binary and the
//! integration tests share.

use std::future::Future;

use tokio::net::TcpListener;

use crate::logging::AccessLogLayer;
use crate::transport::rest::{self, RestOptions};
use crate::transport::socketio::{self, SocketOptions};
use crate::{App, Result};

/// Serves `app` on `listener` until `shutdown` completes, then finishes the
/// requests in flight and tears the app down.
///
/// Tests bind `127.0.0.1:0` and pass the listener in, so they never race
/// for a port.
pub async fn serve(
    app: App,
    listener: TcpListener,
    options: RestOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    app.setup().await?;
    // One body limit and one allowance of large inputs for both
    // transports.
    let budget = options.input_budget();
    let socket = SocketOptions::for_body_limit(options.body_limit, budget.clone());
    let options = RestOptions {
        budget: Some(budget),
        ..options
    };
    let router = rest::router_with(app.clone(), options)
        .layer(socketio::layer(app.clone(), socket))
        // Outermost, so socket.io requests and refusals are logged too: one
        // INFO event per request, no span (see `logging`).
        .layer(AccessLogLayer);
    // Connection info gives the REST transport each client's address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await?;
    app.teardown().await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is
/// first polled, so a signal that arrives right after start-up (once the
/// "listening" line is out) already shuts down gracefully instead of
/// killing the process.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {},
                        _ = terminate.recv() => {},
                    }
                }
                (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                    only.recv().await;
                }
                (Err(_), Err(_)) => std::future::pending::<()>().await,
            }
            tracing::info!("shutting down");
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!("shutting down");
        }
    }
}
