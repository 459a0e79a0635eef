//! Several `plume` processes over one PostgreSQL database (the test server
//! of `tests/support/backends.rs`): what one instance writes, the others
//! read; a token one signs, the others accept; a logout on one is refused
//! by all at once; a database that goes away is 503 until it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::{Server, TempDir, sign_up_and_log_in};
use crate::support::backends::postgres_url;

/// A `plume serve` on the database at `url`, in development (the secret is
/// made once and kept in the database).
fn start(url: &str, dir: &TempDir) -> Server {
    Server::start_with(&dir.path().join("unused.sqlite"), &[("DATABASE_URL", url)])
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_records_tokens_and_logouts() {
    let Some(url) = postgres_url("two_instances_share_records_tokens_and_logouts").await else {
        return;
    };
    let dir = TempDir::new("cluster");
    let a = start(&url, &dir);
    let b = start(&url, &dir);
    assert!(
        a.startup_log
            .iter()
            .chain(&b.startup_log)
            .any(|l| l.contains("kept in PostgreSQL")),
        "{:?}",
        a.startup_log
    );
    let (user, token) = sign_up_and_log_in(&a.url, "ada@example.com", "correct horse").await;

    // Created on A, read on B with A's token.
    let (status, created) = call(
        reqwest::Method::POST,
        format!("{}/messages", a.url),
        &token,
        Some(json!({"text": "hello from A"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["userId"], user);
    let (status, read) = call(
        reqwest::Method::GET,
        format!("{}/messages/{}", b.url, created["id"]),
        &token,
        None,
    )
    .await;
    assert_eq!((status, &read), (StatusCode::OK, &created));
    // The same email signs up on neither instance again.
    let again = reqwest::Client::new()
        .post(format!("{}/users", b.url))
        .json(&json!({"email": "ADA@example.com", "password": "another one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    // Ids from both instances never collide.
    let mut ids = vec![created["id"].as_i64().unwrap()];
    for (i, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (status, made) = call(
            reqwest::Method::POST,
            format!("{}/messages", server.url),
            &token,
            Some(json!({"text": format!("m{i}")})),
        )
        .await;
        assert_eq!(status, 201);
        ids.push(made["id"].as_i64().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    let (_, page) = call(
        reqwest::Method::GET,
        format!("{}/messages?$limit=2", b.url),
        &token,
        None,
    )
    .await;
    assert_eq!(page["total"], 5, "{page}");

    // Logged out on A: refused by B at once.
    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("{}/authentication", a.url),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, refused) = call(
        reqwest::Method::GET,
        format!("{}/messages", b.url),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["message"], "jwt revoked");
    a.stop();
    b.stop();
}

/// A TCP relay to the database that can be cut (every connection closed,
/// new ones refused) and restored on the same port.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(tokio::sync::Notify::new());
        let (relay_up, relay_cut) = (Arc::clone(&up), Arc::clone(&cut));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !relay_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let cut = Arc::clone(&relay_cut);
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_unavailable_until_it_is_back() {
    let Some(url) = postgres_url("a_database_that_goes_away_is_unavailable_until_it_is_back").await
    else {
        return;
    };
    // postgres://user@127.0.0.1:PORT/db?options=...: the relay stands in
    // for 127.0.0.1:PORT.
    let parsed = reqwest::Url::parse(&url).unwrap();
    let target = format!("127.0.0.1:{}", parsed.port().unwrap());
    let relay = Relay::start(target).await;
    let mut through = parsed.clone();
    through.set_port(Some(relay.port)).unwrap();
    let dir = TempDir::new("cluster-fault");
    let server = start(through.as_str(), &dir);
    let (_, token) = sign_up_and_log_in(&server.url, "bo@example.com", "correct horse").await;
    let list = || {
        call(
            reqwest::Method::GET,
            format!("{}/messages", server.url),
            &token,
            None,
        )
    };
    assert_eq!(list().await.0, 200);

    relay.cut();
    let (status, body) = list().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["name"], "Unavailable");
    assert_eq!(body["message"], "The database is unavailable");
    // A write is refused the same way, not half done.
    let (status, _) = call(
        reqwest::Method::POST,
        format!("{}/messages", server.url),
        &token,
        Some(json!({"text": "while down"})),
    )
    .await;
    assert_eq!(status, 503);

    relay.restore();
    let mut back = false;
    for _ in 0..50 {
        if list().await.0 == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        back,
        "the server did not recover after the database came back"
    );
    let (status, page) = list().await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 0, "the refused write left nothing: {page}");
    let log = server.stop();
    assert!(!log.iter().any(|l| l.contains("panicked")), "{log:?}");
}
