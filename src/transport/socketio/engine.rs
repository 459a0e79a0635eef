//! Plume's own engine for socket.io sessions that open on a WebSocket
//! (`transport=websocket`, as Feathers clients configured with
//! `transports: ['websocket']` connect): engine.io v4 and socket.io v5 on
//! one task per socket.
//!
//! An event goes from the publisher straight to the socket: its frame is
//! written with a non-blocking write, and only what the kernel does not
//! take is queued, in bytes, for the socket's task to write when the
//! socket is writable. A socket whose queue passes
//! [`MAX_QUEUED_BYTES`] reads too slowly and is dropped. So a delivered
//! event costs little more than its write, and an idle socket holds its
//! task, its connection and no buffer.
//!
//! Sessions that start on long-polling (the default of the JavaScript
//! client, which then upgrades) are served by socketioxide, behind this
//! engine; both reach the app through the same [`SocketState`].

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::{Buf, Bytes};
use hyper::rt::{Read as _, ReadBuf, Write as _};
use hyper::upgrade::Upgraded;
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower::{Layer, Service};
use tungstenite::protocol::frame::coding::Control;

use super::frames::{self, Message, Read, Reader, TextFrame};
use super::packet::{self, MAIN_NAMESPACE, Packet};
use super::{Args, HandshakeHeaders, SocketState};
use crate::channels::{Closer, Connection, Delivery, Outgoing, Sender};
use crate::transport::input::{BUDGET_WAIT, InputPermit, count_values};
use crate::{Error, Result};

/// Bytes of events and acks a socket may have queued beyond what the
/// kernel's send buffer holds (which Linux grows to several MiB for a
/// client that reads), behind the frame being written. A socket past it
/// reads more slowly than events come, and is dropped
/// ([`Delivery::Full`]).
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// How often the server pings a client, and how long it waits for the
/// pong: engine.io's defaults, which the client is told when it connects.
const PING_INTERVAL: Duration = Duration::from_secs(25);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a client may stay connected without connecting to the
/// namespace (socket.io's `connectTimeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);

/// Calls of one socket that run at once; more wait, and the socket is not
/// read meanwhile, so that one client cannot start tasks without bound.
pub const MAX_CALLS_AT_ONCE: usize = 32;

/// Refused connects (a bad token, say) a session may follow with another
/// try; one more closes it, so that a client cannot make the server check
/// credentials over and over on one connection.
const MAX_REFUSED_CONNECTS: u8 = 3;

/// How long a socket the server closes may take to read what was queued
/// for it (a last event, such as an expired login's) before it is closed
/// regardless.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// Most binary attachments one packet may announce (as socketioxide is
/// set up for long-polling sessions).
const MAX_ATTACHMENTS: usize = 16;

/// The close codes for a client that broke a rule of the server's, and
/// for one the server cannot serve now.
const POLICY_VIOLATION: u16 = 1008;
const TRY_AGAIN_LATER: u16 = 1013;

/// Bytes read from a socket at a time, on the stack of the read: a socket
/// keeps none of them between reads.
const READ_BYTES: usize = 4096;

/// What every socket of the engine shares.
pub(super) struct Engine {
    state: SocketState,
    max_message: usize,
}

/// The tower layer that serves WebSocket sessions with Plume's engine and
/// hands every other request to the service it wraps.
#[derive(Clone)]
pub struct EngineLayer {
    engine: Arc<Engine>,
}

impl EngineLayer {
    pub(super) fn new(state: SocketState, max_message: usize) -> Self {
        Self {
            engine: Arc::new(Engine { state, max_message }),
        }
    }
}

impl std::fmt::Debug for EngineLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for EngineLayer {
    type Service = EngineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineService {
            inner,
            engine: self.engine.clone(),
        }
    }
}

/// See [`EngineLayer`].
#[derive(Clone)]
pub struct EngineService<S> {
    inner: S,
    engine: Arc<Engine>,
}

impl<S> std::fmt::Debug for EngineService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineService").finish_non_exhaustive()
    }
}

impl<S> Service<Request> for EngineService<S>
where
    S: Service<Request>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = S::Error;
    type Future = EngineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match websocket_key(&request) {
            Some(key) => EngineFuture {
                answered: Some(accept(&self.engine, request, &key)),
                inner: None,
            },
            None => EngineFuture {
                answered: None,
                inner: Some(self.inner.call(request)),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of [`EngineService`]: a WebSocket session's, answered
    /// at once, or the wrapped service's.
    pub struct EngineFuture<F> {
        answered: Option<Response>,
        #[pin]
        inner: Option<F>,
    }
}

impl<F, R, E> Future for EngineFuture<F>
where
    F: Future<Output = std::result::Result<R, E>>,
    R: IntoResponse,
{
    type Output = std::result::Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => inner
                .poll(cx)
                .map(|outcome| outcome.map(IntoResponse::into_response)),
            None => Poll::Ready(Ok(this
                .answered
                .take()
                .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()))),
        }
    }
}

/// The `Sec-WebSocket-Key` of a request that opens an engine.io v4
/// session on a WebSocket; `None` for anything else (long-polling, an
/// upgrade of a polling session, not a valid WebSocket handshake), which
/// socketioxide answers.
fn websocket_key(request: &Request) -> Option<HeaderValue> {
    if request.method() != Method::GET || !super::is_socket_io_path(request.uri().path()) {
        return None;
    }
    let query = request.uri().query()?;
    if super::has_session(query) {
        return None;
    }
    let (mut version, mut websocket) = (false, false);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("EIO", "4")) => version = true,
            Some(("transport", "websocket")) => websocket = true,
            _ => {}
        }
    }
    let headers = request.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let version_13 = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|value| value == "13");
    if !(version && websocket && upgrade && version_13) {
        return None;
    }
    headers.get(header::SEC_WEBSOCKET_KEY).cloned()
}

/// Answers the handshake and starts the socket's task once the
/// connection is handed over.
fn accept(engine: &Arc<Engine>, mut request: Request, key: &HeaderValue) -> Response {
    let handshake = HandshakeHeaders::of(request.headers());
    let addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let upgrade = hyper::upgrade::on(&mut request);
    drop(request);
    let engine = engine.clone();
    tokio::spawn(async move {
        // No upgrade: the client went away before it got the answer.
        if let Ok(io) = upgrade.await {
            Socket::new(engine, io, handshake, addr).run().await;
        }
    });
    let accept_key = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A random id for a session or a socket.
fn random_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// The write side of a socket, shared by its task and everything that
/// sends to it (publishers, calls answering).
struct Outbox {
    wire: Mutex<Wire>,
    /// Wakes the socket's task: something is queued, or it is to close.
    wake: Notify,
}

struct Wire {
    /// The connection; `None` once it is closed.
    io: Option<Upgraded>,
    /// Frames (the first one maybe partly written) the kernel did not
    /// take yet, in order.
    queue: VecDeque<Bytes>,
    /// Their bytes.
    queued: usize,
    /// The server closes the socket (see [`Outbox::close`]).
    closing: bool,
}

impl Outbox {
    fn new(io: Upgraded) -> Self {
        Self {
            wire: Mutex::new(Wire {
                io: Some(io),
                queue: VecDeque::new(),
                queued: 0,
                closing: false,
            }),
            wake: Notify::new(),
        }
    }

    fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
        // A panic while the lock was held cannot leave a frame half in
        // the queue: every change to it is one push or one pop.
        self.wire
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a frame: written at once when nothing is queued before it
    /// and the kernel takes it, else queued for the socket's task.
    fn send(&self, frame: Bytes) -> Delivery {
        let mut wire = self.wire();
        if wire.closing || wire.io.is_none() {
            return Delivery::Gone;
        }
        if let Some(front) = wire.queue.front() {
            // The frame being written does not count: a large answer the
            // client is reading does not make it slow. What waits behind
            // it does.
            if wire.queued - front.len() > MAX_QUEUED_BYTES {
                return Delivery::Full;
            }
            wire.queued += frame.len();
            wire.queue.push_back(frame);
            return Delivery::Queued;
        }
        let Some(io) = wire.io.as_mut() else {
            return Delivery::Gone;
        };
        match write_now(io, &frame) {
            Ok(written) if written == frame.len() => Delivery::Queued,
            Ok(written) => {
                wire.queued = frame.len() - written;
                wire.queue.push_back(frame.slice(written..));
                drop(wire);
                self.wake.notify_one();
                Delivery::Queued
            }
            Err(_) => {
                wire.io = None;
                drop(wire);
                self.wake.notify_one();
                Delivery::Gone
            }
        }
    }

    /// Asks the socket's task to close the socket.
    fn close(&self) {
        self.wire().closing = true;
        self.wake.notify_one();
    }

    /// Whether the socket is closing (or closed), and whether it has a
    /// queue to write.
    fn status(&self) -> (bool, bool) {
        let wire = self.wire();
        (wire.closing || wire.io.is_none(), !wire.queue.is_empty())
    }

    /// Writes the queue as the socket takes it.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut wire = self.wire();
        let Wire {
            io, queue, queued, ..
        } = &mut *wire;
        let Some(io) = io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        while let Some(front) = queue.front_mut() {
            let written = write_some(io, front, cx)?;
            *queued -= written;
            if written < front.len() {
                // The socket is full; `cx` is woken when it is not.
                front.advance(written);
                return Poll::Pending;
            }
            queue.pop_front();
        }
        Poll::Ready(Ok(()))
    }

    /// Reads what the socket has and gives the messages it completes.
    fn poll_read(
        &self,
        cx: &mut Context<'_>,
        reader: &mut Reader,
    ) -> Poll<io::Result<std::result::Result<Vec<Read>, frames::Violation>>> {
        let mut bytes = [0u8; READ_BYTES];
        let read = {
            let mut wire = self.wire();
            let Some(io) = wire.io.as_mut() else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            let mut buffer = ReadBuf::new(&mut bytes);
            match Pin::new(io).poll_read(cx, buffer.unfilled()) {
                Poll::Ready(Ok(())) => buffer.filled().len(),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        };
        if read == 0 {
            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
        }
        Poll::Ready(Ok(reader.feed(&bytes[..read])))
    }

    /// Writes `last` (a goodbye) if nothing is queued before it and the
    /// kernel takes it now, then closes the connection.
    fn shut(&self, last: &[Bytes]) {
        let mut wire = self.wire();
        let queue_empty = wire.queue.is_empty();
        if let Some(io) = wire.io.as_mut()
            && queue_empty
        {
            for frame in last {
                if !matches!(write_now(io, frame), Ok(n) if n == frame.len()) {
                    break;
                }
            }
        }
        wire.io = None;
        wire.queue.clear();
        wire.queued = 0;
    }
}

/// Writes as much of `frame` as the kernel takes without waiting.
///
/// Outside tokio's cooperative budget: a publish writes to every target
/// socket from one task poll, and once the budget (128 operations) is
/// spent, every further write would report the socket busy and cost a
/// wake-up of the socket's task instead. The writes never wait, and
/// a publish is bounded by its connections, so there is nothing to
/// yield to.
fn write_now(io: &mut Upgraded, frame: &[u8]) -> io::Result<usize> {
    let write = tokio::task::unconstrained(poll_fn(|cx| Poll::Ready(write_some(io, frame, cx))));
    // Nothing waits on this write: when the socket is full, the rest is
    // queued and the socket's task polls the write again with its own
    // waker before it waits.
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(write).poll(&mut cx) {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Ok(0),
    }
}

/// Writes as much of `frame` as the socket takes now; less than all of it
/// means the socket is full, and `cx` is woken when it is not.
fn write_some(io: &mut Upgraded, frame: &[u8], cx: &mut Context<'_>) -> io::Result<usize> {
    let mut written = 0;
    while written < frame.len() {
        match Pin::new(&mut *io).poll_write(cx, &frame[written..]) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => written += n,
            Poll::Ready(Err(error)) => return Err(error),
            Poll::Pending => break,
        }
    }
    Ok(written)
}

/// How a socket's session ended, and so what it says last.
enum End {
    /// The client closed it, or went away.
    ByClient,
    /// The server closes it (a slow socket, a logout, an expired login).
    ByServer,
    /// The client broke the protocol or a limit: a close frame with the
    /// code.
    Violation(u16),
}

/// One socket's session: read by its task, written through its outbox.
struct Socket {
    engine: Arc<Engine>,
    outbox: Arc<Outbox>,
    reader: Reader,
    /// The handshake's headers, until the client connects.
    handshake: Option<HandshakeHeaders>,
    addr: Option<IpAddr>,
    /// Once the client has connected to the namespace.
    connection: Option<Connection>,
    /// Connects refused so far.
    refused: u8,
    /// Slots for the socket's calls running at once.
    calls: Arc<Semaphore>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // However the task ends (even by a panic or the runtime shutting
        // down), the app hears of the disconnect and nothing sends to it
        // any more.
        self.outbox.shut(&[]);
        if let Some(connection) = self.connection.take() {
            self.engine.state.app.disconnected(&connection);
        }
    }
}

impl Socket {
    fn new(
        engine: Arc<Engine>,
        io: Upgraded,
        handshake: HandshakeHeaders,
        addr: Option<IpAddr>,
    ) -> Self {
        let reader = Reader::new(engine.max_message);
        Self {
            engine,
            outbox: Arc::new(Outbox::new(io)),
            reader,
            handshake: Some(handshake),
            addr,
            connection: None,
            refused: 0,
            calls: Arc::new(Semaphore::new(MAX_CALLS_AT_ONCE)),
        }
    }

    fn send_text(&self, text: &str) {
        self.send(frames::text(text));
    }

    /// Sends the socket's own frame (an answer, a ping or pong); a client
    /// that leaves them unread past the queue's bound is closed.
    fn send(&self, frame: Bytes) {
        if self.outbox.send(frame) == Delivery::Full {
            self.outbox.close();
        }
    }

    async fn run(mut self) {
        let open = packet::open(
            &random_id(),
            millis(PING_INTERVAL),
            millis(PING_TIMEOUT),
            self.engine.max_message,
        );
        self.send_text(&open);
        let end = self.serve().await;
        if matches!(end, End::ByServer) {
            // What was sent before the close reaches the client first.
            let outbox = self.outbox.clone();
            let _ = tokio::time::timeout(GOODBYE_WAIT, poll_fn(|cx| outbox.poll_flush(cx))).await;
        }
        let last = match end {
            End::ByClient => vec![frames::close(1000)],
            End::ByServer => vec![frames::text(packet::DISCONNECT), frames::close(1000)],
            End::Violation(code) => vec![frames::close(code)],
        };
        self.outbox.shut(&last);
    }

    /// Reads and answers until the session ends.
    async fn serve(&mut self) -> End {
        let heartbeat = tokio::time::sleep(PING_INTERVAL);
        tokio::pin!(heartbeat);
        let connect_by = tokio::time::sleep(CONNECT_TIMEOUT);
        tokio::pin!(connect_by);
        // When the large message being read must have arrived.
        let large_by = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(large_by);
        let mut awaiting_pong = false;
        loop {
            let (closing, flushing) = self.outbox.status();
            if closing {
                return End::ByServer;
            }
            let large = self.reader.holds_budget();
            let outbox = self.outbox.clone();
            let reader = &mut self.reader;
            // Biased, with the timers before the read: a client that always
            // has something to read cannot keep them from firing.
            tokio::select! {
                biased;
                () = outbox.wake.notified() => {}
                flushed = poll_fn(|cx| outbox.poll_flush(cx)), if flushing => {
                    if flushed.is_err() {
                        return End::ByClient;
                    }
                }
                () = &mut heartbeat => {
                    if awaiting_pong {
                        return End::ByClient;
                    }
                    self.send_text("2");
                    awaiting_pong = true;
                    heartbeat.as_mut().reset(Instant::now() + PING_TIMEOUT);
                }
                () = &mut connect_by, if self.connection.is_none() => {
                    return End::Violation(POLICY_VIOLATION);
                }
                () = &mut large_by, if large => {
                    return End::Violation(POLICY_VIOLATION);
                }
                read = poll_fn(|cx| outbox.poll_read(cx, reader)) => {
                    let Ok(mut read) = read else {
                        return End::ByClient;
                    };
                    loop {
                        let reads = match read {
                            Ok(reads) => reads,
                            Err(violation) => return End::Violation(violation.code()),
                        };
                        for read in reads {
                            match self.on_message(read).await {
                                Flow::Go => {}
                                Flow::Pong => {
                                    awaiting_pong = false;
                                    heartbeat.as_mut().reset(Instant::now() + PING_INTERVAL);
                                }
                                Flow::End(end) => return end,
                            }
                        }
                        if !self.reader.wants_budget() {
                            break;
                        }
                        // The socket is not read while it waits.
                        let state = &self.engine.state;
                        let Ok(permit) = state.budget.take(self.engine.max_message, BUDGET_WAIT).await else {
                            return End::Violation(TRY_AGAIN_LATER);
                        };
                        large_by.as_mut().reset(Instant::now() + state.options.message_timeout);
                        read = self.reader.grant(permit);
                    }
                }
            }
        }
    }

    async fn on_message(&mut self, read: Read) -> Flow {
        let Read { message, permit } = read;
        match message {
            Message::Text(text) => self.on_engine_packet(text, permit).await,
            // An attachment: Plume's services take JSON, and the packet it
            // belongs to was answered already.
            Message::Binary(_) => Flow::Go,
            Message::Ping(payload) => {
                self.send(frames::control(Control::Pong, &payload));
                Flow::Go
            }
            Message::Close => Flow::End(End::ByClient),
        }
    }

    /// An engine.io packet: `1` close, `2` ping, `3` pong, `4` message,
    /// `5` upgrade and `6` noop (neither used on a WebSocket session).
    async fn on_engine_packet(&mut self, text: String, permit: Option<InputPermit>) -> Flow {
        match text.as_bytes().first() {
            Some(b'4') => self.on_packet(&text[1..], permit).await,
            Some(b'3') => Flow::Pong,
            Some(b'2') => {
                self.send_text(&format!("3{}", &text[1..]));
                Flow::Go
            }
            Some(b'1') => Flow::End(End::ByClient),
            Some(b'5' | b'6') => Flow::Go,
            _ => Flow::End(End::Violation(1002)),
        }
    }

    /// A socket.io packet.
    async fn on_packet(&mut self, text: &str, permit: Option<InputPermit>) -> Flow {
        let Some(packet) = packet::parse(text) else {
            return Flow::End(End::Violation(1002));
        };
        match packet {
            Packet::Connect { namespace, .. } if namespace != MAIN_NAMESPACE => {
                self.send_text(&packet::connect_error(namespace, "Invalid namespace"));
            }
            Packet::Connect { auth, .. } => {
                if self.connection.is_none() {
                    if self.refused >= MAX_REFUSED_CONNECTS {
                        return Flow::End(End::Violation(POLICY_VIOLATION));
                    }
                    self.connect(auth).await;
                }
            }
            Packet::Disconnect { namespace } if namespace == MAIN_NAMESPACE => {
                return Flow::End(End::ByClient);
            }
            Packet::Disconnect { .. } => {}
            Packet::Event {
                namespace,
                ack,
                json,
            } if namespace == MAIN_NAMESPACE => self.on_event(ack, json, permit).await,
            Packet::Event { .. } => {}
            Packet::BinaryEvent {
                namespace,
                ack,
                attachments,
            } => {
                if attachments > MAX_ATTACHMENTS {
                    return Flow::End(End::Violation(1009));
                }
                if let (MAIN_NAMESPACE, Some(id), Some(_)) = (namespace, ack, &self.connection) {
                    let error = Error::bad_request("Invalid arguments: expected JSON values");
                    self.send_text(&packet::ack(id, &ack_args(Err(error))));
                }
            }
            Packet::Ack { attachments } => {
                if attachments > MAX_ATTACHMENTS {
                    return Flow::End(End::Violation(1009));
                }
            }
        }
        Flow::Go
    }

    /// Connects the client to the namespace, or says why not.
    async fn connect(&mut self, auth: &str) {
        let Some(handshake) = self.handshake.clone() else {
            return;
        };
        // Auth that is not JSON is no auth (the headers may still log in).
        let auth = (!auth.is_empty())
            .then(|| serde_json::from_str::<Value>(auth).ok())
            .flatten();
        let sid = random_id();
        let outbox = self.outbox.clone();
        let sender: Sender = Arc::new(move |event: &Outgoing<'_>| {
            let EventFrame(frame) = event.encoded(|name, data| {
                let mut frame = TextFrame::with_capacity(256);
                packet::write_event(frame.payload(), name, data);
                EventFrame(frame.finish())
            });
            outbox.send(frame)
        });
        let outbox = self.outbox.clone();
        let closer: Closer = Arc::new(move || outbox.close());
        let opened = self
            .engine
            .state
            .open(
                sid.clone(),
                handshake,
                auth,
                (sender, closer),
                |_| {},
                || {},
            )
            .await;
        match opened {
            Ok(connection) => {
                self.connection = Some(connection);
                self.handshake = None;
                self.send_text(&packet::connected(&sid));
            }
            Err(error) => {
                self.refused = self.refused.saturating_add(1);
                self.send_text(&packet::connect_error(MAIN_NAMESPACE, error.message()));
            }
        }
    }

    /// A call: answered on a task of its own, so that a slow one does not
    /// hold up the socket's other calls (up to [`MAX_CALLS_AT_ONCE`]).
    async fn on_event(&self, ack: Option<u64>, json: &str, permit: Option<InputPermit>) {
        let Some(connection) = self.connection.clone() else {
            // Not connected to the namespace: not for the app.
            return;
        };
        let Some(event) = event_name(json) else {
            if let Some(id) = ack {
                let error = Error::bad_request("Invalid event: expected a name first");
                self.send_text(&packet::ack(id, &ack_args(Err(error))));
            }
            return;
        };
        // At most so many calls of one socket run at once; the socket is
        // not read while it waits for one of them to end.
        let Ok(slot) = Arc::clone(&self.calls).acquire_owned().await else {
            return;
        };
        let engine = self.engine.clone();
        let outbox = self.outbox.clone();
        let addr = self.addr;
        let json = json.to_owned();
        tokio::spawn(async move {
            let _slot = slot;
            let size = (json.len(), count_values(json.as_bytes()));
            let parse = || match serde_json::from_str::<Args>(&json) {
                Ok(Args(mut args)) if !args.is_empty() => {
                    args.remove(0);
                    Some(args)
                }
                _ => None,
            };
            let outcome = engine
                .state
                .answer(&connection, addr, &event, size, permit, parse)
                .await;
            // A call without an ack id gets no answer, as in Feathers.
            if let Some(id) = ack {
                let frame = frames::text(&packet::ack(id, &ack_args(outcome)));
                if outbox.send(frame) == Delivery::Full {
                    // It calls and does not read its answers.
                    outbox.close();
                }
            }
        });
    }
}

/// An event's frame, as this engine shares it between the sockets an
/// event goes to.
#[derive(Clone)]
struct EventFrame(Bytes);

/// What the session does after a message.
enum Flow {
    Go,
    /// The client answered the ping.
    Pong,
    End(End),
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The arguments of a call's ack: `[null, result]` or `[error]`, as
/// Feathers' `(error, result)` callback takes them.
fn ack_args(outcome: Result<Value>) -> Value {
    match outcome {
        Ok(result) => Value::Array(vec![Value::Null, result]),
        Err(error) => Value::Array(vec![error.to_json()]),
    }
}

/// The event name at the start of an event's JSON (`["<name>", ...]`),
/// read without parsing the arguments after it.
fn event_name(json: &str) -> Option<String> {
    let rest = json.trim_start().strip_prefix('[')?.trim_start();
    if !rest.starts_with('"') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut at = 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return serde_json::from_str(&rest[..=at]).ok(),
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_read_with_their_escapes() {
        assert_eq!(event_name("[\"find\",\"x\"]").as_deref(), Some("find"));
        assert_eq!(event_name(" [ \"a\\\"b\\\\\" ]").as_deref(), Some("a\"b\\"));
        assert_eq!(event_name("[\"\\u00e9\"]").as_deref(), Some("é"));
        for json in ["", "[]", "[1]", "{\"a\":1}", "[\"open", "[\"x\\"] {
            assert_eq!(event_name(json), None, "{json}");
        }
    }

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = uri.parse().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        request
    }

    const HANDSHAKE: [(&str, &str); 3] = [
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn only_new_websocket_sessions_are_taken() {
        let taken =
            |uri: &str, headers: &[(&str, &str)]| websocket_key(&request(uri, headers)).is_some();
        assert!(taken("/socket.io/?EIO=4&transport=websocket", &HANDSHAKE));
        assert!(taken("/socket.io?transport=websocket&EIO=4", &HANDSHAKE));
        // An upgrade of a polling session, polling, another version, not
        // a WebSocket handshake, another path: socketioxide's.
        assert!(!taken(
            "/socket.io/?EIO=4&transport=websocket&sid=x",
            &HANDSHAKE
        ));
        assert!(!taken("/socket.io/?EIO=4&transport=polling", &HANDSHAKE));
        assert!(!taken("/socket.io/?EIO=3&transport=websocket", &HANDSHAKE));
        assert!(!taken(
            "/socket.io/?EIO=4&transport=websocket",
            &HANDSHAKE[..2]
        ));
        assert!(!taken(
            "/socket.io/?EIO=4&transport=websocket",
            &HANDSHAKE[1..]
        ));
        assert!(!taken("/messages?EIO=4&transport=websocket", &HANDSHAKE));
    }
}
