//! Plume's own engine (sessions that open on a WebSocket) at the edges of
//! the protocols, and beside socketioxide, which serves long-polling
//! sessions: both reach the same app and channels.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use plume::{App, Params};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{SocketClient, TestServer};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

use super::notes_to_everyone as app;

/// A WebSocket session past the engine.io open packet, not yet connected
/// to a namespace.
async fn opened(base: &str) -> Ws {
    opened_with(base, &[]).await
}

/// A session with `headers` on its handshake, past the open packet.
async fn opened_with(base: &str, headers: &[(&str, &str)]) -> Ws {
    let request = crate::support::socket::handshake(base, headers);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let open = next_text(&mut ws).await.expect("the open packet");
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    assert_eq!(open["upgrades"], json!([]), "{open}");
    assert_eq!(open["pingInterval"], json!(25000));
    ws
}

/// A WebSocket session connected to the main namespace.
async fn connected(base: &str) -> Ws {
    let mut ws = opened(base).await;
    send(&mut ws, "40").await;
    let answer = next_text(&mut ws).await.unwrap();
    assert!(answer.starts_with("40{\"sid\":"), "{answer}");
    ws
}

/// The code of the close frame that comes next.
async fn close_code(ws: &mut Ws) -> u16 {
    match next(ws).await {
        Some(Message::Close(Some(frame))) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// The next frame, or `None` when the connection ended or nothing came
/// for two seconds.
async fn next(ws: &mut Ws) -> Option<Message> {
    match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
        Ok(Some(Ok(message))) => Some(message),
        _ => None,
    }
}

async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match next(ws).await? {
            Message::Text(text) => return Some(text.as_str().to_owned()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

#[tokio::test]
async fn calls_before_connecting_go_unanswered_and_other_namespaces_are_refused() {
    let server = TestServer::start(app()).await;
    let mut ws = opened(&server.base).await;

    send(&mut ws, "420[\"find\",\"notes\"]").await;
    send(&mut ws, "40/admin,").await;
    assert_eq!(
        next_text(&mut ws).await.as_deref(),
        Some("44/admin,{\"message\":\"Invalid namespace\"}"),
        "the call before connecting got no answer"
    );
    send(&mut ws, "40").await;
    let connected = next_text(&mut ws).await.unwrap();
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    send(&mut ws, "421[\"find\",\"notes\"]").await;
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("431[null,[]]"));
    server.stop().await;
}

#[tokio::test]
async fn a_binary_event_is_refused_with_a_400_and_its_attachment_skipped() {
    let server = TestServer::start(app()).await;
    let mut ws = connected(&server.base).await;

    send(
        &mut ws,
        "451-7[\"create\",\"notes\",{\"_placeholder\":true,\"num\":0}]",
    )
    .await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let ack = next_text(&mut ws).await.unwrap();
    let args: Value = serde_json::from_str(ack.strip_prefix("437").unwrap()).unwrap();
    assert_eq!(args[0]["code"], json!(400), "{ack}");
    // The attachment was not taken for anything else; calls go on.
    send(&mut ws, "428[\"create\",\"notes\",{\"text\":\"hi\"}]").await;
    let ack = loop {
        // The create's event may come first.
        let packet = next_text(&mut ws).await.unwrap();
        if !packet.starts_with("42[") {
            break packet;
        }
    };
    assert!(ack.starts_with("438[null,{"), "{ack}");
    server.stop().await;
}

#[tokio::test]
async fn websocket_and_engine_pings_are_answered() {
    let server = TestServer::start(app()).await;
    let mut ws = opened(&server.base).await;
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    match next(&mut ws).await {
        Some(Message::Pong(payload)) => assert_eq!(&payload[..], b"hi"),
        other => panic!("expected a pong, got {other:?}"),
    }
    send(&mut ws, "2probe").await;
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("3probe"));
    server.stop().await;
}

#[tokio::test]
async fn a_frame_that_breaks_the_protocol_closes_the_connection() {
    let app = app();
    let server = TestServer::start(app.clone()).await;
    let mut ws = connected(&server.base).await;
    assert_eq!(everyone(&app, 1).await, 1);
    // Not an engine.io packet.
    send(&mut ws, "9nonsense").await;
    assert_eq!(close_code(&mut ws).await, 1002);
    assert_eq!(everyone(&app, 0).await, 0);
    server.stop().await;
}

/// How many connections are in the app's `everyone` channel once they
/// settle (a connection leaves when its socket ends).
async fn everyone(app: &App, expected: usize) -> usize {
    for _ in 0..100 {
        let count = app.channel("everyone").connections().len();
        if count == expected {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.channel("everyone").connections().len()
}

/// A long-polling session (socketioxide), connected to the namespace.
struct Polling {
    http: reqwest::Client,
    url: String,
}

impl Polling {
    async fn connect(base: &str) -> Self {
        let http = reqwest::Client::new();
        let open = http
            .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let open: Value = serde_json::from_str(&open[1..]).unwrap();
        let sid = open["sid"].as_str().unwrap();
        let polling = Self {
            http,
            url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}"),
        };
        polling.post("40").await;
        let packets = polling.poll().await;
        assert!(
            packets.iter().any(|p| p.starts_with("40{\"sid\":")),
            "{packets:?}"
        );
        polling
    }

    async fn post(&self, packet: &str) {
        let answer = self
            .http
            .post(&self.url)
            .body(packet.to_owned())
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }

    /// The packets of one long poll; a ping among them is answered.
    async fn poll(&self) -> Vec<String> {
        let request = self.http.get(&self.url).send();
        let body = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("a long poll answered")
            .unwrap()
            .text()
            .await
            .unwrap();
        let packets: Vec<String> = body.split('\u{1e}').map(str::to_owned).collect();
        if packets.iter().any(|packet| packet == "2") {
            self.post("3").await;
        }
        packets
    }
}

#[tokio::test]
async fn polling_and_websocket_sessions_get_the_same_events() {
    let app = app();
    let server = TestServer::start(app.clone()).await;
    let mut websocket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    let polling = Polling::connect(&server.base).await;
    assert_eq!(app.channel("everyone").connections().len(), 2);

    app.service("notes")
        .unwrap()
        .create(json!({"text": "to both"}), Params::default())
        .await
        .unwrap();
    let (name, data) = websocket
        .next_event(Duration::from_secs(5))
        .await
        .expect("the WebSocket session's event");
    assert_eq!(
        (name.as_str(), &data["text"]),
        ("notes created", &json!("to both"))
    );
    let packets = polling.poll().await;
    let event = packets
        .iter()
        .find(|packet| packet.starts_with("42"))
        .expect("the polling session's event");
    let event: Value = serde_json::from_str(&event[2..]).unwrap();
    assert_eq!(event[0], json!("notes created"));
    assert_eq!(event[1]["text"], json!("to both"));

    // Calls over long-polling are answered by the same app.
    polling.post("425[\"find\",\"notes\"]").await;
    let packets = polling.poll().await;
    let ack = packets.iter().find(|p| p.starts_with("435")).unwrap();
    let args: Value = serde_json::from_str(&ack[3..]).unwrap();
    assert_eq!(args[1][0]["text"], json!("to both"));
    websocket.close().await;
    server.stop().await;
}

/// A large message is read only with its share of the input budget, as a
/// large REST body is: a socket that holds the share and stalls is closed
/// once the body timeout passes, and a socket waiting for the share is
/// not read until then.
#[tokio::test]
async fn large_messages_share_the_input_budget_and_a_stalled_one_is_closed() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    const LARGE: usize = 100 * 1024;
    let options = plume::transport::rest::RestOptions {
        body_limit: 2 * LARGE,
        // One large input in flight at a time.
        budget: Some(plume::transport::rest::InputBudget::new(2 * LARGE)),
        body_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let server = TestServer::start_with(app(), options).await;
    let mut stalled = connected(&server.base).await;
    let mut waiting = connected(&server.base).await;

    // The first frame of a large message, and nothing after it.
    let head = format!(
        "420[\"create\",\"notes\",{{\"text\":\"{}",
        "x".repeat(LARGE)
    );
    let frame = Frame::message(head.into_bytes(), OpCode::Data(Data::Text), false);
    stalled.send(Message::Frame(frame)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A whole large call, which waits for the share the stalled one holds.
    let call = format!(
        "421[\"create\",\"notes\",{{\"text\":\"{}\"}}]",
        "y".repeat(LARGE)
    );
    send(&mut waiting, &call).await;

    let closed = async {
        let code = close_code(&mut stalled).await;
        (code, tokio::time::Instant::now())
    };
    let answered = async {
        let ack = loop {
            let packet = tokio::time::timeout(Duration::from_secs(5), waiting.next())
                .await
                .expect("an answer")
                .unwrap()
                .unwrap();
            let text = packet.into_text().unwrap();
            if text.starts_with("431") {
                break text;
            }
        };
        (ack, tokio::time::Instant::now())
    };
    let ((code, closed_at), (ack, answered_at)) = tokio::join!(closed, answered);
    assert_eq!(code, 1008, "closed for holding the budget too long");
    assert!(
        ack.starts_with("431[null,{"),
        "{}",
        &ack[..40.min(ack.len())]
    );
    assert!(
        answered_at >= closed_at,
        "answered only once the share was free"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_session_that_keeps_being_refused_is_closed() {
    let server = TestServer::start(app()).await;
    let twice = [("authorization", "Bearer a"), ("authorization", "Bearer b")];
    let mut ws = opened_with(&server.base, &twice).await;
    for _ in 0..3 {
        send(&mut ws, "40").await;
        let refused = next_text(&mut ws).await.unwrap();
        assert!(refused.starts_with("44{\"message\":"), "{refused}");
    }
    send(&mut ws, "40").await;
    assert_eq!(close_code(&mut ws).await, 1008);
    server.stop().await;
}

/// A frame's text, however the client's reads split it.
async fn next_large_text(ws: &mut Ws) -> String {
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_large_answer_being_read_does_not_make_its_client_slow() {
    let app = app();
    let notes = app.service("notes").unwrap();
    // Past what the kernel's buffers take (at most 4 MiB to send and 6 MiB
    // to receive on Linux by default) while the client does not read.
    let megabyte = "x".repeat(1024 * 1024);
    for _ in 0..12 {
        notes
            .create(json!({"text": megabyte}), Params::default())
            .await
            .unwrap();
    }
    let server = TestServer::start(app.clone()).await;
    let mut ws = connected(&server.base).await;

    // A 12 MiB answer the client does not read yet, then events behind it.
    send(&mut ws, "420[\"find\",\"notes\"]").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..10 {
        notes
            .create(json!({"n": n}), Params::default())
            .await
            .unwrap();
    }
    let ack = next_large_text(&mut ws).await;
    assert!(ack.starts_with("430[null,["), "{}", &ack[..20]);
    assert!(ack.len() > 12 * 1024 * 1024);
    for n in 0..10 {
        let event = next_large_text(&mut ws).await;
        assert!(event.starts_with("42[\"notes created\""), "{event}");
        let event: Value = serde_json::from_str(&event[2..]).unwrap();
        assert_eq!(event[1]["n"], json!(n));
    }
    assert_eq!(app.slow_connections_dropped(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_socket_the_server_closes_gets_what_was_sent_before_the_close() {
    let app = app();
    let server = TestServer::start(app.clone()).await;
    let mut ws = connected(&server.base).await;

    // More than the kernel's buffers take while the client does not read,
    // then the server closes the socket (as an expired login does).
    let text = "y".repeat(12 * 1024 * 1024);
    app.service("notes")
        .unwrap()
        .create(json!({"text": text}), Params::default())
        .await
        .unwrap();
    let connections = app.channel("everyone").connections();
    assert_eq!(connections.len(), 1);
    connections[0].close();

    let event = next_large_text(&mut ws).await;
    let event: Value = serde_json::from_str(&event[2..]).unwrap();
    assert_eq!(event[1]["text"].as_str().map(str::len), Some(text.len()));
    assert_eq!(next_large_text(&mut ws).await, "41");
    server.stop().await;
}

#[tokio::test]
async fn a_socket_runs_a_bounded_number_of_calls_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use plume::transport::socketio::MAX_CALLS_AT_ONCE;
    use plume::{HookContext, Hooks};

    let app = app();
    let running = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (counting, waiting) = (Arc::clone(&running), Arc::clone(&gate));
    app.service("notes").unwrap().hooks(Hooks::new().before(
        "find",
        plume::hook_fn(move |_ctx: &mut HookContext| {
            let (running, gate) = (Arc::clone(&counting), Arc::clone(&waiting));
            Box::pin(async move {
                running.fetch_add(1, Ordering::SeqCst);
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        }),
    ));
    let server = TestServer::start(app).await;
    let mut ws = connected(&server.base).await;
    let calls = MAX_CALLS_AT_ONCE + 8;
    for id in 0..calls {
        send(&mut ws, &format!("42{id}[\"find\",\"notes\"]")).await;
    }
    for _ in 0..100 {
        if running.load(Ordering::SeqCst) == MAX_CALLS_AT_ONCE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give the others every chance to start, had they been allowed to.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(running.load(Ordering::SeqCst), MAX_CALLS_AT_ONCE);

    gate.add_permits(calls);
    let mut answered = 0;
    while answered < calls {
        let ack = next_text(&mut ws).await.expect("every call answered");
        assert!(ack.starts_with("43"), "{ack}");
        answered += 1;
    }
    server.stop().await;
}
