//! Channels and publishing: service events reach the connections in the
//! channels a publisher picks, nothing else; and only what a client may see.

use std::time::Duration;

use plume::store::MemoryService;
use plume::{App, HookContext, Hooks};
use serde_json::{Value, json};

use crate::support::{SocketClient, TestServer, still_alive};

/// No event is expected: how long to listen before concluding so.
const QUIET: Duration = Duration::from_millis(300);

fn app() -> App {
    let app = App::new();
    app.use_service("notes", MemoryService::new()).unwrap();
    app.use_service("secrets", MemoryService::new()).unwrap();
    // Connections that say they are in team A join its channel; everyone
    // joins `everyone`.
    let joining = app.clone();
    app.on_connection(move |connection| {
        joining.channel("everyone").join(connection);
        if connection.headers().get("x-team").map(String::as_str) == Some("a") {
            joining.channel("team-a").join(connection);
        }
    });
    app.publish(|_data, _ctx| vec!["everyone".to_owned()]);
    app.service("secrets")
        .unwrap()
        .publish(|_data, _ctx| vec!["team-a".to_owned()])
        .hooks(Hooks::new().after("all", async |ctx: &mut HookContext| {
            // What `protect` does: the safe copy goes to `dispatch`.
            if let Some(Value::Object(record)) = &ctx.result {
                let mut safe = record.clone();
                safe.remove("password");
                ctx.dispatch = Some(Value::Object(safe));
            }
            Ok(())
        }));
    app
}

#[tokio::test]
async fn events_reach_the_published_channels_only() {
    let server = TestServer::start(app()).await;
    let mut anyone = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    let mut team_a = SocketClient::connect(&server.base, None, &[("x-team", "a")])
        .await
        .unwrap();

    // Created over REST, seen over sockets.
    let (status, _) = server.post("/notes", &json!({"text": "hi"})).await;
    assert_eq!(status, 201);
    for socket in [&mut anyone, &mut team_a] {
        let (name, data) = socket.next_event(Duration::from_secs(5)).await.unwrap();
        assert_eq!(name, "notes created");
        assert_eq!(data, json!({"text": "hi", "id": 0}));
    }

    // Patched and removed over the socket itself.
    anyone
        .call(
            "patch",
            vec![json!("notes"), json!(0), json!({"text": "p"})],
        )
        .await
        .unwrap();
    anyone
        .call("remove", vec![json!("notes"), json!(0)])
        .await
        .unwrap();
    let names: Vec<String> = [
        team_a.next_event(Duration::from_secs(5)).await.unwrap().0,
        team_a.next_event(Duration::from_secs(5)).await.unwrap().0,
    ]
    .into();
    assert_eq!(names, ["notes patched", "notes removed"]);

    // The service's own publisher: team A only, and the safe copy.
    let (status, _) = server
        .post("/secrets", &json!({"name": "n", "password": "hash"}))
        .await;
    assert_eq!(status, 201);
    let (name, data) = team_a.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(name, "secrets created");
    assert_eq!(data, json!({"name": "n", "id": 0}), "no password in events");
    let mut seen_by_anyone = Vec::new();
    while let Some((name, _)) = anyone.next_event(QUIET).await {
        seen_by_anyone.push(name);
    }
    assert_eq!(seen_by_anyone, ["notes patched", "notes removed"]);
}

#[tokio::test]
async fn disconnected_connections_leave_their_channels() {
    let app = app();
    let server = TestServer::start(app.clone()).await;
    let socket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    let mut other = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    assert_eq!(app.channel("everyone").connections().len(), 2);
    socket.close().await;
    // The server notices the close asynchronously; wait for it, bounded.
    for _ in 0..100 {
        if app.channel("everyone").connections().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.channel("everyone").connections().len(), 1);
    server.post("/notes", &json!({"text": "after"})).await;
    assert_eq!(
        other.next_event(Duration::from_secs(5)).await.unwrap().0,
        "notes created"
    );
}

#[tokio::test]
async fn closed_sockets_are_freed() {
    // Before, a socket and its connection held each other: every socket
    // that ever connected stayed in memory, a leak any anonymous client
    // could drive by connecting in a loop.
    let app = app();
    let weak = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&weak);
    app.on_connection(move |connection| seen.lock().unwrap().push(connection.downgrade()));
    let server = TestServer::start(app.clone()).await;
    for _ in 0..10 {
        let socket = SocketClient::connect(&server.base, None, &[])
            .await
            .unwrap();
        socket.close().await;
    }
    assert_eq!(weak.lock().unwrap().len(), 10);
    assert_eq!(still_alive(&weak).await, 0, "closed connections stay alive");
}
