//! Memory attacks by anonymous clients against the default app: socket.io
//! packets far over the body limit, and many large bodies at once. Each
//! reports the peak RSS it saw (the server runs in this process, so
//! `/proc/self/status` is the server's) and checks it against a generous
//! bound; the other tests of the binary share the process, so the bound
//! is loose on purpose. Linux only, like `/proc`.

use std::time::{Duration, Instant};

use serde_json::json;

use super::support::{BODY_LIMIT, server};
use crate::support::{SocketClient, TestServer};

/// Starts a new peak: `VmHWM` becomes the RSS of now (Linux's
/// `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM` (peak) and `VmRSS` (now) of this process, in MiB.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Peak growth the attacks may cause: far below the gigabytes they used to.
const BOUND_MIB: u64 = 200;

#[tokio::test]
async fn socket_packets_over_the_body_limit_close_the_connection_unparsed() {
    let server = server().await;
    reset_peak();
    let (_, before) = memory_mib();
    let started = Instant::now();
    // Four anonymous packets of 14 MB, each on its own connection, at once.
    let attacks = (0..4).map(|_| {
        let base = server.base.clone();
        tokio::spawn(async move {
            let mut socket = SocketClient::connect(&base, None, &[]).await.unwrap();
            // `0,` is the JSON that costs the most memory once parsed.
            let head = r#"42["create","users",{"email":"a@b.c","pad":["#;
            socket.try_send_large(head, "0,", 14_000_000, "0]}]").await;
            socket.wait_closed().await;
            assert!(socket.is_closed());
        })
    });
    for attack in attacks.collect::<Vec<_>>() {
        attack.await.unwrap();
    }
    let (peak, _) = memory_mib();
    let growth = peak.saturating_sub(before);
    eprintln!(
        "4 x 14 MB socket.io packets: RSS before {before} MiB, peak {peak} MiB, growth {growth} MiB, {:?}",
        started.elapsed()
    );
    assert!(growth < BOUND_MIB, "peak grew by {growth} MiB");

    // The server still answers, over both transports.
    let (status, _) = server.get("/messages").await;
    assert_eq!(status, 401);
    let mut socket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();
    // Just over the argument limit but within the packet: a 413 ack, still
    // connected.
    let big = json!({"email": "a@b.c", "password": "x".repeat(BODY_LIMIT)});
    let error = socket
        .call("create", vec![json!("users"), big])
        .await
        .unwrap_err();
    assert_eq!(error["code"], json!(413), "{error}");
    let error = socket
        .call("find", vec![json!("messages")])
        .await
        .unwrap_err();
    assert_eq!(error["code"], json!(401), "{error}");
    assert!(!socket.is_closed());
    socket.close().await;
}

/// Sends 64 anonymous `POST path` with `body` at once; the statuses, and
/// the peak growth in MiB.
async fn flood(server: &TestServer, path: &str, body: String) -> (Vec<u16>, u64) {
    assert!(body.len() <= BODY_LIMIT);
    reset_peak();
    let (_, before) = memory_mib();
    // Shared, not copied, by every request.
    let body = axum::body::Bytes::from(body);
    let requests = (0..64).map(|_| {
        let request = server
            .client
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .timeout(Duration::from_secs(60));
        tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
    });
    let mut statuses = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        statuses.push(request.await.unwrap().unwrap());
    }
    let (peak, _) = memory_mib();
    (statuses, peak.saturating_sub(before))
}

#[tokio::test]
async fn concurrent_large_bodies_do_not_add_up() {
    let server = server().await;
    // Sign-ups just under the body limit, padded with the JSON that costs
    // the most memory per byte once parsed: refused before it is parsed.
    let zeros = vec![0; (BODY_LIMIT - 200) / 2];
    let dense = json!({"email": "pad@example.com", "password": "p4ssw0rd!", "pad": zeros});
    let started = Instant::now();
    let (statuses, growth) = flood(&server, "/users", dense.to_string()).await;
    eprintln!(
        "64 concurrent 1 MiB bodies of [0,0,...]: peak growth {growth} MiB, {:?}",
        started.elapsed()
    );
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    assert!(growth < BOUND_MIB, "peak grew by {growth} MiB");

    // Within the value bound: parsed (before authentication refuses an
    // anonymous `POST /messages`), at most the input budget at once.
    let strings = vec!["xxxxxxxxxxxx"; 60_000];
    let sparse = json!({"email": "pad@example.com", "password": "p4ssw0rd!", "pad": strings});
    let started = Instant::now();
    let (statuses, growth) = flood(&server, "/messages", sparse.to_string()).await;
    eprintln!(
        "64 concurrent 1 MiB bodies of 60k strings: peak growth {growth} MiB, {:?}, statuses {statuses:?}",
        started.elapsed()
    );
    // Each is answered: refused, or told to come back; never lost.
    assert!(
        statuses.iter().all(|s| [401, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(growth < BOUND_MIB, "peak grew by {growth} MiB");
    let (status, _) = server.get("/messages").await;
    assert_eq!(status, 401);
}
