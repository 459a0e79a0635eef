//! Slow consumers (issue 15, point 4): a socket that does not read holds
//! at most its queue of unsent events, is dropped and counted, and the
//! other sockets get every event.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use plume::Params;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{SocketClient, TestServer};

/// Bytes of each event: with the slow socket's small receive buffer, the
/// server's send buffer (at most 4 MiB here) and the socket's queue of
/// `MAX_QUEUED_BYTES` fill well before `EVENTS` events.
const EVENT_BYTES: usize = 16 * 1024;
const EVENTS: usize = 2000;
/// The healthy socket is never further behind than this.
const BATCH: usize = 50;

use super::notes_to_everyone as app;

/// A socket.io connection over a TCP socket with a 4 KiB receive buffer,
/// connected, that is then never read again.
async fn silent_socket(base: &str) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "{open:?}");
    ws.send(Message::text("40")).await.unwrap();
    // The connect answer, past anything else the server sends first.
    loop {
        let frame = ws.next().await.unwrap().unwrap();
        let text = frame.to_text().unwrap_or_default();
        if text.starts_with("40") {
            break;
        }
        assert!(!text.starts_with("44"), "refused: {text}");
    }
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_does_not_read_is_dropped_and_the_others_get_every_event() {
    let app = app();
    let server = TestServer::start(app.clone()).await;
    let silent = silent_socket(&server.base).await;
    let mut healthy = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    assert_eq!(app.channel("everyone").connections().len(), 2);

    let notes = app.service("notes").unwrap();
    let text = "x".repeat(EVENT_BYTES);
    let mut received = 0;
    for batch in 0..EVENTS / BATCH {
        for n in 0..BATCH {
            notes
                .create(
                    json!({"text": text, "n": batch * BATCH + n}),
                    Params::default(),
                )
                .await
                .unwrap();
        }
        while received < (batch + 1) * BATCH {
            let (name, data) = healthy
                .next_event(Duration::from_secs(10))
                .await
                .expect("the healthy socket gets every event");
            assert_eq!(name, "notes created");
            assert_eq!(data["n"], json!(received));
            received += 1;
        }
    }

    assert_eq!(app.slow_connections_dropped(), 1);
    let left = app.channel("everyone").connections();
    assert_eq!(
        left.len(),
        1,
        "only the healthy socket is still published to"
    );
    // Still published to after the drop.
    notes
        .create(json!({"text": "after"}), Params::default())
        .await
        .unwrap();
    let (_, data) = healthy.next_event(Duration::from_secs(10)).await.unwrap();
    assert_eq!(data["text"], "after");
    drop(silent);
    server.stop().await;
}
