//! A minimal socket.io v5 client over a WebSocket, enough to speak
//! Feathers' socket protocol in tests: connect (with an auth payload and
//! headers), call with an ack, collect server events, send raw packets.
//!
//! Engine.io framing: `0` open, `2`/`3` ping/pong, `4` message. Socket.io
//! framing inside a message: `0` connect, `1` disconnect, `2` event,
//! `3` ack, `4` connect error; an ack id follows the type digit.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for anything from the server; tests fail rather than hang.
const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct SocketClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    events: VecDeque<(String, Value)>,
    closed: bool,
}

/// The handshake of a socket.io session on a WebSocket to `base`
/// (`http://127.0.0.1:port`), with `headers` added (a name given twice is
/// sent twice).
pub(crate) fn handshake(base: &str, headers: &[(&str, &str)]) -> Request {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    request
}

/// What a connection attempt gave.
pub(crate) type Connected = Result<SocketClient, Value>;

impl SocketClient {
    /// Connects to `base` (`http://127.0.0.1:port`), sending `auth` as the
    /// socket.io auth payload and `headers` on the handshake. A refused
    /// connection gives the server's connect-error data.
    pub(crate) async fn connect(
        base: &str,
        auth: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Connected {
        let (ws, _) = tokio_tungstenite::connect_async(handshake(base, headers))
            .await
            .unwrap();
        let mut client = Self {
            ws,
            next_ack: 0,
            events: VecDeque::new(),
            closed: false,
        };
        let open = client.next_text().await.expect("engine.io open packet");
        assert!(open.starts_with('0'), "{open}");
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        client.send_raw(&connect).await;
        loop {
            let packet = client.next_text().await.expect("socket.io connect answer");
            if let Some(rest) = packet.strip_prefix("40") {
                assert!(rest.contains("sid"), "{packet}");
                return Ok(client);
            }
            if let Some(rest) = packet.strip_prefix("44") {
                return Err(serde_json::from_str(rest).unwrap_or(Value::String(rest.to_owned())));
            }
            client.keep(&packet);
        }
    }

    /// Sends an engine.io text frame as is.
    pub(crate) async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Calls `method` with `args` and waits for the ack: `Ok(result)` or
    /// `Err(error)` as Feathers' `(error, result)` callback gets them.
    pub(crate) async fn call(&mut self, method: &str, args: Vec<Value>) -> Result<Value, Value> {
        let mut packet = vec![Value::String(method.to_owned())];
        packet.extend(args);
        self.call_raw(&Value::Array(packet).to_string()).await
    }

    /// Sends an event array (already JSON) with an ack id and waits for the
    /// ack.
    pub(crate) async fn call_raw(&mut self, event_json: &str) -> Result<Value, Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send_raw(&format!("42{id}{event_json}")).await;
        let prefix = format!("43{id}");
        loop {
            let packet = self.next_text().await.expect("an ack");
            if let Some(rest) = packet.strip_prefix(&prefix) {
                let args: Vec<Value> = serde_json::from_str(rest).unwrap();
                return match args.as_slice() {
                    [error] if !error.is_null() => Err(error.clone()),
                    [Value::Null, result] => Ok(result.clone()),
                    other => panic!("unexpected ack {other:?}"),
                };
            }
            self.keep(&packet);
        }
    }

    /// The next server event, waiting up to `wait`; `None` if none came.
    pub(crate) async fn next_event(&mut self, wait: Duration) -> Option<(String, Value)> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(packet)) = tokio::time::timeout_at(deadline, self.next_text()).await {
            self.keep(&packet);
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
        }
        None
    }

    /// Sends one text message of `head`, then `filler` repeated to about
    /// `filler_len` bytes, then `tail`, in frames of about 1 MiB, so that a
    /// message of many megabytes costs this side little memory; false when
    /// the connection went away meanwhile.
    pub(crate) async fn try_send_large(
        &mut self,
        head: &str,
        filler: &str,
        filler_len: usize,
        tail: &str,
    ) -> bool {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        const CHUNK: usize = 1024 * 1024;
        let first = Frame::message(head.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
        if self.ws.send(Message::Frame(first)).await.is_err() {
            return false;
        }
        let chunk = filler.repeat((CHUNK / filler.len().max(1)).max(1));
        let mut left = filler_len;
        while left > 0 {
            left = left.saturating_sub(chunk.len());
            let frame = Frame::message(
                chunk.clone().into_bytes(),
                OpCode::Data(Data::Continue),
                false,
            );
            if self.ws.send(Message::Frame(frame)).await.is_err() {
                return false;
            }
        }
        let last = Frame::message(tail.as_bytes().to_vec(), OpCode::Data(Data::Continue), true);
        self.ws.send(Message::Frame(last)).await.is_ok()
    }

    /// Reads until the server closes the connection; panics if it says
    /// nothing for the longest wait instead.
    pub(crate) async fn wait_closed(&mut self) {
        while let Some(packet) = self.next_text().await {
            self.keep(&packet);
        }
    }

    /// True once the server closed the connection or disconnected the
    /// socket.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Waits up to `wait` for the server to close the connection or
    /// disconnect the socket, keeping the events that come before; true if
    /// it did.
    pub(crate) async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.next_text()).await {
                Ok(Some(packet)) => self.keep(&packet),
                Ok(None) | Err(_) => break,
            }
        }
        self.closed
    }

    /// Closes the connection.
    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Keeps a server event, notes a disconnect.
    fn keep(&mut self, packet: &str) {
        if let Some(rest) = packet.strip_prefix("42") {
            let json = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            if let Ok(Value::Array(mut parts)) = serde_json::from_str::<Value>(json)
                && !parts.is_empty()
                && let Value::String(name) = parts.remove(0)
            {
                let data = parts.into_iter().next().unwrap_or(Value::Null);
                self.events.push_back((name, data));
            }
        } else if packet.starts_with("41") {
            self.closed = true;
        }
    }

    /// The next engine.io text frame that is not a ping (pings are
    /// answered); `None` when the connection is gone.
    async fn next_text(&mut self) -> Option<String> {
        loop {
            let frame = match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(_) => {
                    self.closed = true;
                    return None;
                }
                Err(_) => panic!("nothing from the server for {WAIT:?}"),
            };
            match frame {
                // A pong to a closing server may fail; the next read says so.
                Message::Text(text) if text.as_str() == "2" => {
                    let _ = self.ws.send(Message::text("3")).await;
                }
                Message::Text(text) => return Some(text.as_str().to_owned()),
                Message::Close(_) => {
                    self.closed = true;
                    return None;
                }
                _ => {}
            }
        }
    }
}
