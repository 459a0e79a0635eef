//! Several `plume` processes over one PostgreSQL database and one Redis
//! (the test servers of `tests/support/backends.rs`): what one instance
//! writes, the others read; a token one signs, the others accept; a
//! logout on one is refused by all at once; an event on one reaches the
//! sockets of the others; failed logins count together; a database or a
//! Redis that goes away is 503 until it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::{Server, TempDir, log_in, sign_up_and_log_in};
use crate::support::SocketClient;
use crate::support::backends::{postgres_url, redis_url};

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
    let (status, created) = create_message(&a.url, &token, json!({"text": "hello from A"})).await;
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
        let (status, made) =
            create_message(&server.url, &token, json!({"text": format!("m{i}")})).await;
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

/// `POST /messages` with `body`: the status and the answer.
async fn create_message(base: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(
        reqwest::Method::POST,
        format!("{base}/messages"),
        token,
        Some(body),
    )
    .await
}

/// `GET /ready`: the status and the names of the failed checks.
async fn ready(base: &str) -> (u16, Vec<String>) {
    let response = reqwest::get(format!("{base}/ready")).await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let failed = body["data"]["failed"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (status, failed)
}

/// The value of a metric without labels in `GET /metrics`.
async fn metric(base: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// A `plume serve` on the database at `url` and the Redis at `redis` with
/// the bus key `key`.
fn start_clustered(url: &str, redis: &str, key: &str, dir: &TempDir) -> Server {
    Server::start_with(
        &dir.path().join("unused.sqlite"),
        &[
            ("DATABASE_URL", url),
            ("REDIS_URL", redis),
            ("PLUME_REDIS_KEY", key),
        ],
    )
}

/// Waits (bounded) for the socket's next `messages created`.
async fn next_created(socket: &mut SocketClient) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        match socket.next_event(Duration::from_millis(200)).await {
            Some((name, data)) if name == "messages created" => return Some(data),
            _ => {}
        }
    }
    None
}

/// A socket on `base` logged in with `token` (the jwt strategy, as the
/// official authentication client does).
async fn logged_in_socket(base: &str, token: &str) -> SocketClient {
    let mut socket = SocketClient::connect(base, None, &[]).await.unwrap();
    socket
        .call(
            "create",
            vec![
                json!("authentication"),
                json!({"strategy": "jwt", "accessToken": token}),
            ],
        )
        .await
        .unwrap();
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_on_one_instance_reaches_the_sockets_of_every_instance_once() {
    let test = "an_event_on_one_instance_reaches_the_sockets_of_every_instance_once";
    let (Some(url), Some((redis, key))) = (postgres_url(test).await, redis_url(test)) else {
        return;
    };
    let dir = TempDir::new("cluster-events");
    let a = start_clustered(&url, &redis, &key, &dir);
    let b = start_clustered(&url, &redis, &key, &dir);
    assert!(
        b.startup_log
            .iter()
            .any(|l| l.contains("joined the other instances on Redis")),
        "{:?}",
        b.startup_log
    );
    let (_, token) = sign_up_and_log_in(&a.url, "cy@example.com", "correct horse").await;
    let mut on_a = logged_in_socket(&a.url, &token).await;
    let mut on_b = logged_in_socket(&b.url, &token).await;
    // In order, each once, on both instances.
    let mut sent = Vec::new();
    for i in 0..5 {
        let (status, made) =
            create_message(&a.url, &token, json!({"text": format!("event {i}")})).await;
        assert_eq!(status, 201);
        sent.push(made);
    }
    for socket in [&mut on_a, &mut on_b] {
        for made in &sent {
            assert_eq!(next_created(socket).await.as_ref(), Some(made));
        }
        // Nothing twice.
        assert_eq!(
            socket
                .next_event(Duration::from_millis(300))
                .await
                .map(|e| e.0),
            None
        );
    }
    // The counts agree: what A sent, B delivered.
    assert_eq!(
        metric(&a.url, "plume_bus_events_published_total").await,
        metric(&b.url, "plume_bus_events_received_total").await
    );
    assert_eq!(metric(&a.url, "plume_bus_events_dropped_total").await, 0);
    assert_eq!(ready(&a.url).await, (200, vec![]));
    // And from B to A.
    let (_, made) = create_message(&b.url, &token, json!({"text": "from B"})).await;
    assert_eq!(next_created(&mut on_a).await, Some(made));
    assert!(next_created(&mut on_b).await.is_some());

    // A REST logout on A is seen by the socket on B at once: it hears no
    // more events, while another user's socket on B does.
    let (_, other) = sign_up_and_log_in(&a.url, "cy2@example.com", "correct horse").await;
    let mut other_on_b = logged_in_socket(&b.url, &other).await;
    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("{}/authentication", a.url),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, after) = create_message(&a.url, &other, json!({"text": "after the logout"})).await;
    assert_eq!(next_created(&mut other_on_b).await, Some(after));
    assert_eq!(
        on_b.next_event(Duration::from_millis(500))
            .await
            .map(|e| e.0),
        None,
        "a socket whose token was revoked on another instance still hears events"
    );
    // A password change on A (every token of the user revoked) is seen
    // by the user's socket on B the same way.
    let (status, me) = call(
        reqwest::Method::GET,
        format!("{}/users?$limit=1", a.url),
        &other,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let user2 = me["data"][0]["id"].clone();
    let (status, _) = call(
        reqwest::Method::PATCH,
        format!("{}/users/{user2}", a.url),
        &other,
        Some(json!({"password": "a new password"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, third_token) = sign_up_and_log_in(&a.url, "cy3@example.com", "correct horse").await;
    let (status, _) = create_message(
        &a.url,
        &third_token,
        json!({"text": "after the password change"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        other_on_b
            .next_event(Duration::from_millis(500))
            .await
            .map(|e| e.0),
        None,
        "a socket whose user changed password on another instance still hears events"
    );
    other_on_b.close().await;
    on_a.close().await;
    on_b.close().await;
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_on_two_instances_count_together() {
    let test = "failed_logins_on_two_instances_count_together";
    let (Some(url), Some((redis, key))) = (postgres_url(test).await, redis_url(test)) else {
        return;
    };
    let dir = TempDir::new("cluster-throttle");
    let a = start_clustered(&url, &redis, &key, &dir);
    let b = start_clustered(&url, &redis, &key, &dir);
    sign_up_and_log_in(&a.url, "dee@example.com", "correct horse").await;
    let attempt = |base: String| async move {
        reqwest::Client::new()
            .post(format!("{base}/authentication"))
            .json(&json!({"strategy": "local", "email": "dee@example.com", "password": "wrong"}))
            .send()
            .await
            .unwrap()
    };
    // The default limit is 10 per account: 5 on each instance use it up.
    for i in 0..10 {
        let base = if i % 2 == 0 { &a.url } else { &b.url };
        assert_eq!(attempt(base.clone()).await.status(), 401, "attempt {i}");
    }
    for base in [&a.url, &b.url] {
        let refused = attempt(base.clone()).await;
        assert_eq!(refused.status(), 429);
        assert!(refused.headers().contains_key("retry-after"));
    }
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_goes_away_is_unavailable_for_logins_and_events_flow_again() {
    let test = "a_redis_that_goes_away_is_unavailable_for_logins_and_events_flow_again";
    let (Some(url), Some((redis, key))) = (postgres_url(test).await, redis_url(test)) else {
        return;
    };
    let (relay, through) = Relay::in_front_of(&redis).await;
    let dir = TempDir::new("cluster-redis-fault");
    let a = start_clustered(&url, &through, &key, &dir);
    let b = start_clustered(&url, &redis, &key, &dir);
    let (_, token) = sign_up_and_log_in(&b.url, "eve@example.com", "correct horse").await;
    let mut on_b = logged_in_socket(&b.url, &token).await;

    relay.cut();
    assert_eq!(ready(&a.url).await, (503, vec!["redis".to_owned()]));
    assert_eq!(ready(&b.url).await, (200, vec![]));
    let login = reqwest::Client::new()
        .post(format!("{}/authentication", a.url))
        .json(
            &json!({"strategy": "local", "email": "eve@example.com", "password": "correct horse"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 503);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["name"], "Unavailable");
    // Calls that do not need Redis go on; their events stay on A.
    let (status, _) = create_message(&a.url, &token, json!({"text": "while Redis is away"})).await;
    assert_eq!(status, 201);

    relay.restore();
    // The publisher connects again by itself; events sent meanwhile may be
    // lost (Redis keeps nothing for later), then they flow again, in order.
    let mut sent: Vec<String> = Vec::new();
    let mut delivered = None;
    for i in 0..40 {
        let (_, made) = create_message(&a.url, &token, json!({"text": format!("after {i}")})).await;
        sent.push(made["text"].as_str().unwrap().to_owned());
        if let Some(got) = next_created(&mut on_b).await
            && got["text"].as_str().is_some_and(|t| t.starts_with("after"))
        {
            delivered = Some(got);
            break;
        }
    }
    let got = delivered.expect("events did not flow again after Redis came back");
    assert!(
        sent.iter().any(|t| got["text"] == *t),
        "{got} not in {sent:?}"
    );
    assert_eq!(ready(&a.url).await, (200, vec![]));
    // And logins work again.
    assert!(
        !log_in(&a.url, "eve@example.com", "correct horse")
            .await
            .is_empty()
    );
    on_b.close().await;
    let log = a.stop();
    assert!(!log.iter().any(|l| l.contains("panicked")), "{log:?}");
    b.stop();
}

/// A TCP relay to the database that can be cut (every connection closed,
/// new ones refused) and restored on the same port.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
    /// The open connections' switches: set, a connection stays open and
    /// forwards nothing (a peer gone without a word).
    silenced: Arc<std::sync::Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Relay {
    /// A relay in front of the server `url` names on 127.0.0.1
    /// (`postgres://user@127.0.0.1:PORT/db?...`, `redis://127.0.0.1:PORT`),
    /// and the same URL through the relay.
    async fn in_front_of(url: &str) -> (Self, String) {
        let mut through = reqwest::Url::parse(url).unwrap();
        let relay = Self::start(format!("127.0.0.1:{}", through.port().unwrap())).await;
        through.set_port(Some(relay.port)).unwrap();
        (relay, through.into())
    }

    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(tokio::sync::Notify::new());
        let silenced = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (relay_up, relay_cut) = (Arc::clone(&up), Arc::clone(&cut));
        let relay_silenced = Arc::clone(&silenced);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !relay_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let cut = Arc::clone(&relay_cut);
                let silent = Arc::new(AtomicBool::new(false));
                relay_silenced.lock().unwrap().push(Arc::clone(&silent));
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = forward(client_read, server_write, Arc::clone(&silent)) => {}
                        () = forward(server_read, client_write, silent) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            cut,
            silenced,
        }
    }

    /// The connections open now stay open and forward nothing, forever;
    /// new ones work.
    fn silence(&self) {
        for silent in self.silenced.lock().unwrap().iter() {
            silent.store(true, Ordering::SeqCst);
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either ends; bytes read while `silent` is
/// set are dropped.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if !silent.load(Ordering::SeqCst) && to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_gone_silent_is_made_again() {
    let test = "a_subscription_gone_silent_is_made_again";
    let (Some(url), Some((redis, key))) = (postgres_url(test).await, redis_url(test)) else {
        return;
    };
    let (relay, through) = Relay::in_front_of(&redis).await;
    let dir = TempDir::new("cluster-silent");
    let a = start_clustered(&url, &redis, &key, &dir);
    let b = start_clustered(&url, &through, &key, &dir);
    let (_, token) = sign_up_and_log_in(&a.url, "gus@example.com", "correct horse").await;
    let mut on_b = logged_in_socket(&b.url, &token).await;
    // B's connections to Redis go quiet without closing: its subscription
    // hears nothing, not even its own heartbeat, until it is made again
    // (within 15 s of silence).
    relay.silence();
    let started = tokio::time::Instant::now();
    let mut heard = false;
    while started.elapsed() < Duration::from_secs(40) {
        let (status, _) = create_message(&a.url, &token, json!({"text": "anyone there?"})).await;
        assert_eq!(status, 201);
        if next_created(&mut on_b).await.is_some() {
            heard = true;
            break;
        }
    }
    assert!(
        heard,
        "B never subscribed again after its connection went silent"
    );
    on_b.close().await;
    a.stop();
    let log = b.stop();
    assert!(
        log.iter()
            .any(|l| l.contains("nothing heard on the Redis subscription")),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_unavailable_until_it_is_back() {
    let Some(url) = postgres_url("a_database_that_goes_away_is_unavailable_until_it_is_back").await
    else {
        return;
    };
    let (relay, through) = Relay::in_front_of(&url).await;
    let dir = TempDir::new("cluster-fault");
    let server = start(&through, &dir);
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

    assert_eq!(ready(&server.url).await, (200, vec![]));
    relay.cut();
    assert_eq!(ready(&server.url).await, (503, vec!["postgres".to_owned()]));
    let (status, body) = list().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["name"], "Unavailable");
    assert_eq!(body["message"], "The database is unavailable");
    // A write is refused the same way, not half done.
    let (status, _) = create_message(&server.url, &token, json!({"text": "while down"})).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_write_load_loses_no_acknowledged_write() {
    let test = "an_instance_killed_under_write_load_loses_no_acknowledged_write";
    let Some(url) = postgres_url(test).await else {
        return;
    };
    let dir = TempDir::new("cluster-kill");
    let mut a = start(&url, &dir);
    let b = start(&url, &dir);
    let (_, token) = sign_up_and_log_in(&b.url, "flo@example.com", "correct horse").await;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (base, token, acknowledged) = (a.url.clone(), token.clone(), Arc::clone(&acknowledged));
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                let sent = client
                    .post(format!("{base}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("w{w} n{i}")}))
                    .send()
                    .await;
                // The server is gone: whatever was not answered was not
                // acknowledged.
                let Ok(response) = sent else { return };
                if response.status() != 201 {
                    return;
                }
                let Ok(made) = response.json::<Value>().await else {
                    return;
                };
                acknowledged.lock().unwrap().push(made);
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 200,
        "only {} writes before the deadline",
        acknowledged.len()
    );
    // Every acknowledged message is there, as it was answered, read
    // through the instance that lives on.
    for made in &acknowledged {
        let (status, read) = call(
            reqwest::Method::GET,
            format!("{}/messages/{}", b.url, made["id"]),
            &token,
            None,
        )
        .await;
        assert_eq!((status, &read), (StatusCode::OK, made));
    }
    b.stop();
}
