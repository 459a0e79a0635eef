//! The real-time transport: Feathers' socket protocol over socket.io, on
//! the same server and port as REST.
//!
//! Sessions that open on a WebSocket (Feathers clients set up with
//! `transports: ['websocket']`) run on Plume's own engine, built for
//! delivering events to many sockets ([`EngineLayer`]); sessions that
//! start on long-polling, the JavaScript client's default, run on
//! socketioxide, upgrade included. Both reach the app the same way.
//!
//! A client calls a method with `emit(method, path, ...args, ack)` and gets
//! `ack(error)` or `ack(null, result)` back. The arguments after the path
//! are, per method: find `(query)`, get `(id, query)`, create `(data,
//! query)`, update and patch `(id, data, query)`, remove `(id, query)`, a
//! custom method `(data, query)`. Service events reach the connection as
//! `"<path> <event>"` when a publisher sends them to one of its channels.
//!
//! Bad input (wrong arity or types, unknown services or methods, oversized
//! arguments) gets an error ack; the connection and the server keep going.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, Event, Extension, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessage, FromMessageParts, Value as PacketValue};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::{ParserConfig, SendError, SocketError, SocketIo};
use tower::layer::util::Stack;
use tower::util::MapRequestLayer;

use super::dispatch::{self, AuthLookup, Caller, IdSegment};
use super::rest::DEFAULT_BODY_TIMEOUT;

mod engine;
mod frames;
mod packet;

use crate::channels::{Closer, Connection, Delivery, Outgoing, Sender};
use crate::metrics::Transport;
use crate::transport::input::{InputBudget, InputPermit, check_value_count, count_values};
use crate::{App, Error, Id, Method, Params, Provider, Result};
pub use engine::{EngineFuture, EngineLayer, EngineService, MAX_CALLS_AT_ONCE, MAX_QUEUED_BYTES};

/// Largest arguments of one call, serialised, in bytes. Larger calls get a
/// 413 error ack. The server sets it to the REST body limit (`bodyLimit`),
/// so one setting bounds both transports.
pub const DEFAULT_MAX_ARGS_BYTES: usize = 1024 * 1024;

/// What a socket.io packet may carry besides a call's arguments: its type,
/// ack id, event name and brackets. A packet up to `max_args_bytes` plus
/// this gets a 413 ack when its arguments are too large; a bigger one is
/// refused by the engine while it is read, before anything is parsed or
/// buffered whole, and the connection is closed, as any socket.io server
/// does.
pub(crate) const PACKET_OVERHEAD_BYTES: usize = 4 * 1024;

/// The WebSocket read buffer of each socket (socketioxide's default is
/// 4 KiB); see `bench/realtime` in BENCHMARKS.md for what a socket holds.
const WS_READ_BUFFER_BYTES: usize = 1024;

/// Packets (events, acks) queued for one socket and not yet written. A
/// socket whose queue is full when an event comes reads too slowly: it is
/// dropped ([`Delivery::Full`]). socketioxide's default is 128, which a
/// healthy client meets in one bulk operation (a multi `create` publishes
/// one event per record); at this size, a slow socket holds at most this
/// many events besides what the kernel buffers.
pub const MAX_QUEUED_PACKETS: usize = 1024;

/// Options of the socket.io transport.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// Largest serialised arguments of one call; packets larger than this
    /// plus `PACKET_OVERHEAD_BYTES` close the connection.
    pub max_args_bytes: usize,
    /// The allowance of large inputs in flight, shared with REST; `None`
    /// gives the transport its own.
    pub budget: Option<InputBudget>,
    /// How long a WebSocket message larger than 64 KiB may take to arrive
    /// once it holds its share of the budget (REST's `body_timeout`); a
    /// slower one closes the connection, so slow senders cannot keep the
    /// budget from everyone else.
    pub message_timeout: Duration,
}

impl SocketOptions {
    /// Options whose argument limit is `body_limit`, the REST body limit,
    /// drawing on the same `budget`.
    pub fn for_body_limit(body_limit: usize, budget: InputBudget) -> Self {
        Self {
            max_args_bytes: body_limit,
            budget: Some(budget),
            message_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }

    /// The allowance of large inputs: [`budget`](Self::budget), else one
    /// for [`max_args_bytes`](Self::max_args_bytes).
    pub fn input_budget(&self) -> InputBudget {
        self.budget
            .clone()
            .unwrap_or_else(|| InputBudget::for_body_limit(self.max_args_bytes))
    }

    /// The largest engine.io packet read at all.
    fn max_packet_bytes(&self) -> usize {
        self.max_args_bytes.saturating_add(PACKET_OVERHEAD_BYTES)
    }
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            max_args_bytes: DEFAULT_MAX_ARGS_BYTES,
            budget: None,
            message_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

#[derive(Clone)]
struct SocketState {
    app: App,
    options: Arc<SocketOptions>,
    budget: InputBudget,
    authentication: AuthLookup,
}

/// The tower layer [`layer`] returns: Plume's engine for sessions that
/// open on a WebSocket, in front of socketioxide for the others (behind
/// the step that gives each of its requests a head of its own, copied
/// out of the HTTP server's read buffer).
pub type SocketLayer =
    Stack<Stack<SocketIoLayer, MapRequestLayer<fn(Request) -> Request>>, EngineLayer>;

/// The tower layer that serves socket.io for `app`; add it to the router
/// that serves REST so both share one port.
pub fn layer(app: App, options: SocketOptions) -> SocketLayer {
    let max_packet = options.max_packet_bytes();
    let budget = options.input_budget();
    let state = SocketState {
        app,
        options: Arc::new(options),
        budget,
        authentication: AuthLookup::default(),
    };
    // One bound for every way a packet arrives: a polling request body, a
    // WebSocket message and each of its frames, binary attachments.
    let (layer, io) = SocketIo::builder()
        .max_payload(u64::try_from(max_packet).unwrap_or(u64::MAX))
        .ws_max_message_size(max_packet)
        .ws_max_frame_size(max_packet)
        // What a socket reads at a time, held for the socket's life. Calls
        // are small; a larger message grows the buffer while it is read.
        .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_buffer_size(MAX_QUEUED_PACKETS)
        .with_parser(
            ParserConfig::common()
                .max_incoming_binary_buf_size(max_packet)
                .max_incoming_binaries(16),
        )
        .with_state(state.clone())
        .build_layer();
    io.ns("/", on_connect.with(handshake));
    let polling = Stack::new(
        layer,
        MapRequestLayer::new(own_head as fn(Request) -> Request),
    );
    Stack::new(polling, EngineLayer::new(state, max_packet))
}

/// The path under which socketioxide serves (its default).
const SOCKET_IO_PATH: &str = "/socket.io/";

/// True for a path the socket.io engines serve (the path without its
/// trailing slash too).
fn is_socket_io_path(path: &str) -> bool {
    path.starts_with(SOCKET_IO_PATH) || path == SOCKET_IO_PATH.trim_end_matches('/')
}

/// True when a socket.io request's query names an open session (`sid=`):
/// not a handshake.
fn has_session(query: &str) -> bool {
    query.split('&').any(|pair| pair.starts_with("sid="))
}

/// The headers of a socket's handshake request, as its [`Connection`]
/// keeps them: taken out of the request by [`own_head`], so that a socket
/// holds them once.
#[derive(Clone)]
struct HandshakeHeaders {
    /// Lower-case names; values that are not text are left out.
    headers: Arc<HashMap<String, String>>,
    /// Why the headers' credentials refuse the connection (more than one
    /// `Authorization` header, or one that is not text).
    refusal: Option<Error>,
}

impl HandshakeHeaders {
    fn of(headers: &HeaderMap) -> Self {
        let map = headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        Self {
            headers: Arc::new(map),
            refusal: super::single_authorization(headers).err(),
        }
    }
}

/// The headers the socket.io engine reads itself: the WebSocket key it
/// answers the upgrade with, and the type of a polling request's body.
const ENGINE_HEADERS: [header::HeaderName; 2] = [header::SEC_WEBSOCKET_KEY, header::CONTENT_TYPE];

/// Gives a socket.io request a head of its own before the engine sees it.
///
/// socketioxide keeps the head of a socket's first request for the
/// socket's whole life (and engineioxide that of a WebSocket upgrade from
/// polling), while hyper parses without copying: each header value is a
/// slice of the connection's read buffer (16 KiB), which an idle socket
/// would hold for a few hundred bytes of headers. So the head keeps only
/// owned copies of what the engine reads ([`ENGINE_HEADERS`]), the client's
/// address and the upgrade; a handshake request (one without a session id)
/// also carries every header, once, for the [`Connection`]
/// ([`HandshakeHeaders`]). The router's other extensions go (one of them
/// is a copy of the URI as it arrived).
fn own_head(mut request: Request) -> Request {
    if !is_socket_io_path(request.uri().path()) {
        return request;
    }
    let headers = std::mem::take(request.headers_mut());
    let handshake = !request.uri().query().is_some_and(has_session);
    let mut owned = HeaderMap::new();
    for name in ENGINE_HEADERS {
        // `from_bytes` copies; the value was valid, so it still is.
        if let Some(copy) = headers
            .get(&name)
            .and_then(|value| HeaderValue::from_bytes(value.as_bytes()).ok())
        {
            owned.insert(name, copy);
        }
    }
    *request.headers_mut() = owned;
    let mut extensions = std::mem::take(request.extensions_mut());
    if handshake {
        request
            .extensions_mut()
            .insert(HandshakeHeaders::of(&headers));
    }
    if let Some(addr) = extensions.remove::<ConnectInfo<SocketAddr>>() {
        request.extensions_mut().insert(addr);
    }
    if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
        request.extensions_mut().insert(upgrade);
    }
    if let Ok(uri) = Uri::try_from(request.uri().to_string()) {
        *request.uri_mut() = uri;
    }
    request
}

/// Runs before a connection is accepted, so that everything is in place
/// when the client hears it is connected (see [`SocketState::open`]).
/// A refusal's text reaches the client as its `connect_error`.
async fn handshake(
    socket: SocketRef,
    State(state): State<SocketState>,
    TryData(auth): TryData<Value>,
) -> std::result::Result<(), Refusal> {
    let handshake = socket
        .req_parts()
        .extensions
        .get::<HandshakeHeaders>()
        .cloned()
        // Every handshake passes `own_head`; this is for one that did not.
        .unwrap_or_else(|| HandshakeHeaders::of(&socket.req_parts().headers));
    let emitter = socket.clone();
    let sender: Sender = Arc::new(move |event: &Outgoing<'_>| {
        match emitter.emit(event.name(), event.data()) {
            Ok(()) => Delivery::Queued,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Delivery::Full,
            // Gone, or (never with JSON values) not serialisable.
            Err(_) => Delivery::Gone,
        }
    });
    let closing = socket.clone();
    let closer: Closer = Arc::new(move || {
        // Already gone is as good as closed.
        let _ = closing.clone().disconnect();
    });
    let attached = socket.clone();
    let attach = move |connection: &Connection| {
        attached.extensions.insert(connection.clone());
        attached.on_fallback(on_message);
        attached.on_disconnect(on_disconnect);
    };
    let detach = || {
        socket.extensions.remove::<Connection>();
    };
    state
        .open(
            socket.id.to_string(),
            handshake,
            auth.ok(),
            (sender, closer),
            attach,
            detach,
        )
        .await?;
    Ok(())
}

impl SocketState {
    /// Sets up the [`Connection`] of a client that asked to connect: its
    /// handlers (`attach`), Feathers' `connection` event and, when the
    /// client authenticates while connecting, its login (undone with
    /// `detach` if the login fails). A bad token refuses the connection
    /// before the app hears of it.
    ///
    /// Credentials come from the socket.io `auth` payload `{strategy:
    /// "jwt", accessToken}` (as the JWT strategy docs show; Feathers 5
    /// ignores it) or from an `Authorization` header on the handshake (as
    /// Feathers 5 does).
    async fn open(
        &self,
        id: String,
        handshake: HandshakeHeaders,
        auth: Option<Value>,
        (sender, closer): (Sender, Closer),
        attach: impl FnOnce(&Connection),
        detach: impl FnOnce(),
    ) -> Result<Connection> {
        let HandshakeHeaders { headers, refusal } = handshake;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let connection = Connection::new(id, Provider::SocketIo, headers, sender);
        connection.set_closer(closer);

        let service = self.authentication.get(&self.app);
        let credentials = match &service {
            None => None,
            Some(service) => match auth
                .filter(|a| a.get("strategy").is_some() || a.get("accessToken").is_some())
            {
                Some(credentials) => Some(credentials),
                None => service.parse(connection.headers())?,
            },
        };
        // Refuse a bad token before the app hears of the connection.
        if let (Some(service), Some(credentials)) = (&service, &credentials) {
            let params = Params::external(Provider::SocketIo);
            service
                .authenticate(credentials, &params, &["jwt".to_owned()])
                .await?;
        }

        attach(&connection);
        // Feathers' order: the `connection` event, then the login.
        self.app.connected(&connection);
        if let (Some(service), Some(credentials)) = (service, credentials) {
            let login = async {
                let path = service.path().ok_or_else(|| {
                    Error::not_authenticated("The authentication service is not set up")
                })?;
                let mut params = Params::external(Provider::SocketIo);
                params.headers = connection.headers().clone();
                params.connection = Some(connection.clone());
                self.app.service(&path)?.create(credentials, params).await
            };
            if let Err(error) = login.await {
                detach();
                self.app.disconnected(&connection);
                return Err(error);
            }
        }
        Ok(connection)
    }

    /// Answers one call of `event` over `connection`: the packet's size
    /// (`bytes`, text and attachments) and how many JSON `values` it holds
    /// are checked and an allowance taken (unless the packet `held` one
    /// while it was read) before `parse` turns its
    /// arguments (those after the event name) into values, which take
    /// several times the packet's bytes. Refusals are counted for
    /// `/metrics`.
    async fn answer(
        &self,
        connection: &Connection,
        addr: Option<std::net::IpAddr>,
        event: &str,
        (bytes, values): (usize, usize),
        held: Option<InputPermit>,
        parse: impl FnOnce() -> Option<Vec<Value>>,
    ) -> Result<Value> {
        let started = Instant::now();
        let read = || {
            // The packet's JSON is `["<event>", ...args]`.
            let args_bytes = bytes.saturating_sub(event.len() + 2);
            let max = self.options.max_args_bytes;
            if args_bytes > max {
                return Err(Error::payload_too_large(format!(
                    "The arguments are larger than {max} bytes"
                )));
            }
            check_value_count(values, max)?;
            // Held until the call has answered: its arguments live that
            // long. A packet read with its share already holds it.
            let permit = match held {
                Some(permit) => permit,
                None => self.budget.try_take(bytes)?,
            };
            let args = parse()
                .ok_or_else(|| Error::bad_request("Invalid arguments: expected JSON values"))?;
            Ok((permit, args))
        };
        match read() {
            Ok((_permit, args)) => call(self, connection, addr, event, args, started).await,
            Err(error) => {
                self.app.metrics().unrouted.record(
                    None,
                    Transport::SocketIo,
                    error.code(),
                    started.elapsed(),
                );
                Err(error)
            }
        }
    }
}

/// Why a connection was refused. socket.io sends the client its text as
/// the `connect_error` message: the error's own message, as Feathers
/// sends it, without the class name Plume's errors display with.
struct Refusal(Error);

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.message())
    }
}

/// Everything happens in [`handshake`]; socket.io needs a handler.
async fn on_connect() {}

async fn on_disconnect(
    socket: SocketRef,
    State(state): State<SocketState>,
    Extension(connection): Extension<Connection>,
) {
    // The connection holds the socket (to send and to close) and the
    // socket's extensions hold the connection: without this the pair
    // would keep each other alive after every disconnect.
    socket.extensions.remove::<Connection>();
    state.app.disconnected(&connection);
}

async fn on_message(
    socket: SocketRef,
    State(state): State<SocketState>,
    Extension(connection): Extension<Connection>,
    Event(event): Event,
    ack: AckSender,
    packet: Packet,
) {
    let addr = socket
        .req_parts()
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let outcome = state
        .answer(
            &connection,
            addr,
            &event,
            (packet.bytes, packet.values),
            None,
            || (packet.parse)().map(|Args(args)| args),
        )
        .await;
    // A call without an ack callback gets no answer, as in Feathers.
    let _ = match outcome {
        Ok(result) => ack.send(&(Value::Null, result)),
        Err(error) => ack.send(&(error.to_json(),)),
    };
}

/// An event's packet, not yet parsed: its size is checked and an
/// allowance taken before its arguments become JSON values, which take
/// several times the packet's bytes.
struct Packet {
    /// The packet's text and binary attachments, in bytes.
    bytes: usize,
    /// How many JSON values its text holds at most.
    values: usize,
    /// Parses the arguments.
    parse: Box<dyn FnOnce() -> Option<Args> + Send + Sync>,
}

impl<A: Adapter> FromMessage<A> for Packet {
    type Error = std::convert::Infallible;

    fn from_message(
        socket: Arc<Socket<A>>,
        mut value: PacketValue,
        ack_id: Option<i64>,
    ) -> std::result::Result<Self, Self::Error> {
        let bytes = match &value {
            PacketValue::Str(text, binaries) => binaries
                .iter()
                .flatten()
                .fold(text.len(), |sum, b| sum.saturating_add(b.len())),
            PacketValue::Bytes(bytes) => bytes.len(),
        };
        let values = value
            .as_str()
            .map_or(0, |text| count_values(text.as_bytes()));
        let parse = Box::new(move || {
            Data::<Args>::from_message_parts(&socket, &mut value, &ack_id)
                .ok()
                .map(|Data(args)| args)
        });
        Ok(Self {
            bytes,
            values,
            parse,
        })
    }
}

/// The arguments of an event, however many there are.
struct Args(Vec<Value>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> std::result::Result<Args, S::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<Value>()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        // A tuple, so socketioxide hands over every argument, not only the
        // first; the visitor takes as many as there are.
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

/// Calls the service the arguments name and counts the answer (200, or
/// the error's code) for `/metrics`.
async fn call(
    state: &SocketState,
    connection: &Connection,
    addr: Option<std::net::IpAddr>,
    event: &str,
    args: Vec<Value>,
    started: Instant,
) -> Result<Value> {
    let mut args = args.into_iter();
    // Feathers' messages (`runMethod` in transport-commons).
    let target = match args.next() {
        Some(Value::String(path)) => match dispatch::resolve(&state.app, &path, IdSegment::Never) {
            Some(target) => Ok((target, path)),
            None => Err(Error::not_found(format!("Service '{path}' not found"))),
        },
        _ => Err(Error::not_found("Invalid service path")),
    };
    let (target, path) = match target {
        Ok(found) => found,
        Err(error) => {
            let metrics = &state.app.metrics().unrouted;
            metrics.record(None, Transport::SocketIo, error.code(), started.elapsed());
            return Err(error);
        }
    };
    let method = Method::parse(event);
    let outcome = call_target(connection, addr, &target, &path, &method, args).await;
    let status = outcome.as_ref().map_or_else(Error::code, |_| 200);
    target.service.record(
        Some(&method),
        Transport::SocketIo,
        status,
        started.elapsed(),
    );
    outcome
}

async fn call_target(
    connection: &Connection,
    addr: Option<std::net::IpAddr>,
    target: &dispatch::Target,
    path: &str,
    method: &Method,
    args: std::vec::IntoIter<Value>,
) -> Result<Value> {
    dispatch::external_method(&target.service, method, Provider::SocketIo, path)?;
    let CallArgs { id, data, query } = split_args(method, args.collect())?;

    let mut ctx = dispatch::context(
        target,
        method.clone(),
        Caller::over(connection, addr),
        query,
    );
    if method.takes_id() {
        ctx.id = match id {
            Some(value) => Id::from_value(&value)?,
            None => None,
        };
    }
    if method.takes_data() {
        ctx.data = Some(data.unwrap_or(Value::Null));
    }
    target.service.run(&mut ctx).await?;
    Ok(ctx.response().cloned().unwrap_or(Value::Null))
}

/// The arguments of one call after the path.
#[derive(Debug)]
struct CallArgs {
    id: Option<Value>,
    data: Option<Value>,
    query: Map<String, Value>,
}

/// Splits the arguments after the path by the method's shape.
fn split_args(method: &Method, args: Vec<Value>) -> Result<CallArgs> {
    let (takes_id, takes_data) = (method.takes_id(), method.takes_data());
    let expected = usize::from(takes_id) + usize::from(takes_data) + 1;
    if args.len() > expected {
        return Err(Error::bad_request(format!(
            "Too many arguments for '{method}' method"
        )));
    }
    let mut args = args.into_iter();
    let id = if takes_id { args.next() } else { None };
    let data = if takes_data { args.next() } else { None };
    let query = match args.next() {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(query)) => query,
        Some(_) => return Err(Error::bad_request("The query must be an object")),
    };
    Ok(CallArgs { id, data, query })
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use serde_json::json;

    use super::*;

    /// A request as hyper hands it over: URI and header values are slices
    /// of one read buffer. Returns the request and the buffer's range.
    fn read_from_one_buffer(path: &str) -> (Request, std::ops::Range<usize>) {
        let text = format!("{path}secret-tokendGhlIHNhbXBsZSBub25jZQ==");
        let mut bytes = text.into_bytes();
        bytes.resize(16 * 1024, b' ');
        let buffer = Bytes::from(bytes);
        let at = path.len();
        let uri = Uri::from_maybe_shared(buffer.slice(..at)).unwrap();
        let token = HeaderValue::from_maybe_shared(buffer.slice(at..at + 12)).unwrap();
        let key = HeaderValue::from_maybe_shared(buffer.slice(at + 12..at + 36)).unwrap();
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = uri;
        request.headers_mut().insert("authorization", token);
        request.headers_mut().insert("sec-websocket-key", key);
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        request.extensions_mut().insert("a router's extension");
        let start = buffer.as_ptr() as usize;
        (request, start..start + buffer.len())
    }

    #[test]
    fn a_socket_io_request_keeps_nothing_of_the_read_buffer() {
        let (request, buffer) = read_from_one_buffer("/socket.io/?EIO=4&transport=websocket");
        let request = own_head(request);
        // The engine's header, copied; the others are not in the head.
        let key = &request.headers()["sec-websocket-key"];
        assert_eq!(key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert!(!buffer.contains(&(key.as_bytes().as_ptr() as usize)));
        assert_eq!(request.headers().len(), 1);
        assert_eq!(request.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert!(!buffer.contains(&(request.uri().path().as_ptr() as usize)));
        // Every header, once, for the connection.
        let handshake = request.extensions().get::<HandshakeHeaders>().unwrap();
        assert_eq!(handshake.headers["authorization"], "secret-token");
        assert_eq!(handshake.headers.len(), 2);
        assert!(handshake.refusal.is_none());
        // The client's address stays; the router's other extensions go.
        assert!(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .is_some()
        );
        assert!(request.extensions().get::<&str>().is_none());
    }

    #[test]
    fn a_request_of_an_open_session_carries_no_handshake_headers() {
        let (request, _) = read_from_one_buffer("/socket.io/?EIO=4&transport=websocket&sid=abc");
        let request = own_head(request);
        assert!(request.extensions().get::<HandshakeHeaders>().is_none());
        assert_eq!(request.headers().len(), 1);
    }

    #[test]
    fn two_authorization_headers_refuse_the_handshake() {
        let (mut request, _) = read_from_one_buffer("/socket.io/?EIO=4&transport=websocket");
        request
            .headers_mut()
            .append("authorization", HeaderValue::from_static("Bearer other"));
        let request = own_head(request);
        let handshake = request.extensions().get::<HandshakeHeaders>().unwrap();
        let refusal = handshake.refusal.as_ref().unwrap();
        assert_eq!(
            refusal.message(),
            "Only one Authorization header may be sent"
        );
    }

    #[test]
    fn other_requests_pass_untouched() {
        let (request, buffer) = read_from_one_buffer("/messages?x=1");
        let request = own_head(request);
        let value = &request.headers()["authorization"];
        assert!(buffer.contains(&(value.as_bytes().as_ptr() as usize)));
        assert!(request.extensions().get::<&str>().is_some());
    }

    #[test]
    fn arguments_split_by_method_shape() {
        let CallArgs { id, data, query } = split_args(
            &Method::Patch,
            vec![json!(1), json!({"a": 1}), json!({"x": "y"})],
        )
        .unwrap();
        assert_eq!((id, data), (Some(json!(1)), Some(json!({"a": 1}))));
        assert_eq!(Value::Object(query), json!({"x": "y"}));
        let CallArgs { id, data, query } = split_args(&Method::Find, vec![]).unwrap();
        assert_eq!((id, data, query.len()), (None, None, 0));
        let err = split_args(&Method::Find, vec![json!({}), json!({})]).unwrap_err();
        assert_eq!(err.code(), 400);
        let err = split_args(&Method::Get, vec![json!(1), json!("not an object")]).unwrap_err();
        assert_eq!(err.message(), "The query must be an object");
    }
}

/// Issue 10, point 10: argument decoding and splitting on arbitrary input
/// give arguments or a 400, never a panic (the whole path over a real
/// socket is fuzzed in `tests/fuzz/socket.rs`).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..5)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            prop::sample::select(&["find", "get", "create", "update", "patch", "remove"][..])
                .prop_map(Method::parse),
            any::<String>().prop_map(|name| Method::parse(&name)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arguments_split_or_answer_400(method in method(), args in prop::collection::vec(json(), 0..6)) {
            match split_args(&method, args) {
                Ok(CallArgs { id, .. }) => {
                    if let Some(id) = id
                        && let Err(error) = Id::from_value(&id)
                    {
                        prop_assert_eq!(error.code(), 400);
                    }
                }
                Err(error) => prop_assert_eq!(error.code(), 400),
            }
        }

        #[test]
        fn argument_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256), value in json()) {
            let _ = serde_json::from_slice::<Args>(&bytes);
            let text = Value::Array(vec![value]).to_string();
            let decoded = serde_json::from_str::<Args>(&text);
            prop_assert!(decoded.is_ok(), "{}", text);
        }
    }
}
