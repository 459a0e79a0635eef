//! Serving an app over HTTP: the entry point that the binary and the
//! integration tests share, and binding the configured host (an IP
//! literal, or a name listened on at every address it resolves to).
//!
//! Besides the app's services the server answers `GET /health`, `/ready`
//! and `/metrics` (see `transport::ops`), and gives every request an id
//! (`x-request-id`, see [`crate::logging`]).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::task::Poll;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::{TcpListener, TcpStream};

use crate::logging::AccessLogLayer;
use crate::transport::rest::{self, RestOptions};
#[cfg(feature = "socketio")]
use crate::transport::socketio::{self, SocketOptions};
use crate::{App, Error, Result};

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
    serve_on(app, Listeners::from(listener), options, shutdown).await
}

/// [`serve`] on several listeners at once (those [`bind`] returns for a
/// host name with several addresses), one app behind them all.
pub async fn serve_on(
    app: App,
    listeners: Listeners,
    options: RestOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    app.setup().await?;
    crate::transport::ops::warn_if_shadowed(&app, options.metrics);
    // One body limit and one allowance of large inputs for both
    // transports.
    let budget = options.input_budget();
    #[cfg(feature = "socketio")]
    let socket = SocketOptions {
        message_timeout: options.body_timeout,
        ..SocketOptions::for_body_limit(options.body_limit, budget.clone())
    };
    // CORS goes around socket.io too (its polling requests come from the
    // browser's page like any other), so not inside the REST router.
    let cors = options.cors.clone();
    let options = RestOptions {
        budget: Some(budget),
        cors: None,
        ..options
    };
    let router = rest::router_with(app.clone(), options);
    // socket.io, when built in, takes its requests before REST sees them.
    #[cfg(feature = "socketio")]
    let router = router.layer(socketio::layer(app.clone(), socket));
    let router = match cors {
        Some(cors) => crate::transport::cors::apply(router, cors),
        None => router,
    };
    let router = router
        // Outermost, so socket.io requests and refusals are logged too: one
        // INFO event per request, no span (see `logging`).
        .layer(AccessLogLayer);
    // Connection info gives the REST transport each client's address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // `tap_io` (doing nothing) is how axum gives a listener of its own
    // the clients' addresses.
    axum::serve(listeners.tap_io(|_| {}), service)
        .with_graceful_shutdown(shutdown)
        .await?;
    app.teardown().await
}

/// Listening sockets served as one: a connection accepted on any of them
/// goes to the same app.
#[derive(Debug)]
pub struct Listeners {
    sockets: Vec<TcpListener>,
    /// Where the next accept starts looking, so that a flood on one
    /// address does not starve the others.
    next: usize,
}

impl Listeners {
    /// The addresses listened on, in the order of [`bind`].
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.sockets.iter().map(TcpListener::local_addr).collect()
    }
}

impl From<TcpListener> for Listeners {
    fn from(listener: TcpListener) -> Self {
        Self {
            sockets: vec![listener],
            next: 0,
        }
    }
}

impl axum::serve::Listener for Listeners {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let accepted = std::future::poll_fn(|cx| {
                let count = self.sockets.len();
                for offset in 0..count {
                    let index = (self.next + offset) % count;
                    if let Poll::Ready(result) = self.sockets[index].poll_accept(cx) {
                        self.next = (index + 1) % count;
                        return Poll::Ready(result);
                    }
                }
                Poll::Pending
            })
            .await;
            match accepted {
                Ok(connection) => return connection,
                // The client gave up before it was accepted: next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionRefused
                    ) => {}
                // Out of file descriptors, say: connections will close and
                // free some, so wait rather than spin (as axum does).
                Err(e) => {
                    tracing::error!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sockets
            .first()
            .ok_or_else(|| io::Error::other("no listener"))?
            .local_addr()
    }
}

/// Listens on `host` at `port`: an IP literal (v4, or v6 with or without
/// brackets) or a name, which may resolve to several addresses
/// (`localhost` to `127.0.0.1` and `::1`, say), each listened on, all on
/// one port. A name that does not resolve is an error that names it; so
/// is an address of it that is in use. An address the machine does not
/// have (`::1` where IPv6 is off) is skipped with a warning, as long as one
/// could be listened on.
pub async fn bind(host: &str, port: u16) -> Result<Listeners> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let resolved = tokio::net::lookup_host((host, port)).await.map_err(|e| {
                Error::general(format!(
                    "cannot listen on '{host}': the name does not resolve ({e})"
                ))
            })?;
            let mut unique = Vec::new();
            for address in resolved {
                if !unique.contains(&address) {
                    unique.push(address);
                }
            }
            unique
        }
    };
    bind_all(host, &addresses).await
}

/// How often port 0 is tried again when the free port the first address
/// got is taken on another one.
const PORT_ATTEMPTS: usize = 8;

/// Binds each of `addresses` (of `host`, for messages) on one port; see
/// [`bind`]. With port 0 the first address gets a free port and the
/// others the same one; when that port is taken on another address, all
/// are tried again with a new one.
pub async fn bind_all(host: &str, addresses: &[SocketAddr]) -> Result<Listeners> {
    let any_port = addresses.iter().all(|address| address.port() == 0);
    let mut attempt = 1;
    loop {
        match bind_once(host, addresses).await {
            Err(Bind::PortTaken(_)) if any_port && attempt < PORT_ATTEMPTS => attempt += 1,
            Err(Bind::PortTaken(error) | Bind::Failed(error)) => return Err(error),
            Ok(listeners) => return Ok(listeners),
        }
    }
}

enum Bind {
    /// The port one address got is in use on a later one.
    PortTaken(Error),
    Failed(Error),
}

async fn bind_once(host: &str, addresses: &[SocketAddr]) -> std::result::Result<Listeners, Bind> {
    let mut listeners: Vec<TcpListener> = Vec::new();
    let mut skipped = None;
    for &address in addresses {
        let mut address = address;
        if let Some(first) = listeners.first() {
            let port = first
                .local_addr()
                .map_err(|e| Bind::Failed(e.into()))?
                .port();
            address.set_port(port);
        }
        let error = match TcpListener::bind(address).await {
            Ok(listener) => {
                listeners.push(listener);
                continue;
            }
            Err(error) => error,
        };
        let message = Error::general(format!(
            "cannot listen on {address} (for '{host}'): {error}"
        ));
        // An address this machine does not have, or IPv6 switched off.
        let missing = error.kind() == io::ErrorKind::AddrNotAvailable
            || (address.is_ipv6()
                && !matches!(
                    error.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ));
        if missing && addresses.len() > 1 {
            tracing::warn!("'{host}' resolves to {address}, which cannot be listened on: {error}");
            skipped.get_or_insert(message);
        } else if error.kind() == io::ErrorKind::AddrInUse && !listeners.is_empty() {
            return Err(Bind::PortTaken(message));
        } else {
            return Err(Bind::Failed(message));
        }
    }
    if listeners.is_empty() {
        return Err(Bind::Failed(skipped.unwrap_or_else(|| {
            Error::general(format!(
                "cannot listen on '{host}': it resolves to no address"
            ))
        })));
    }
    Ok(Listeners {
        sockets: listeners,
        next: 0,
    })
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
