//! Operating the server (issue 14, point 3): `GET /health`, `GET /ready`
//! (200, then 503 Unavailable naming a failing or hanging check, within
//! its timeout), `GET /metrics` (request, login, socket and event counts
//! that move by exactly what was done; bounded under a flood of random
//! paths), request ids (echoed when sane, replaced when not, made when
//! missing) and which of a service and Plume's own routes answers a path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plume::store::MemoryService;
use plume::transport::rest::RestOptions;
use plume::{App, Error, ReadinessCheck, Result, async_trait};
use serde_json::{Value, json};

use super::support::{PASSWORD, account, assert_status_error, login, server, server_with};
use crate::support::TestServer;
use crate::support::socket::SocketClient;

/// The value of the sample `name{labels}` (labels exactly as written), or
/// 0 when the body has no such line.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

async fn metrics(server: &TestServer) -> String {
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn health_answers_without_touching_anything() {
    let server = server().await;
    let response = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    // Only GET and HEAD: anything else is an ordinary request no service takes.
    let (status, _) = server.post("/health", &json!({})).await;
    assert_eq!(status, 404);
}

/// A check that fails while its switch is on.
struct Switch(Arc<AtomicBool>);

#[async_trait]
impl ReadinessCheck for Switch {
    fn name(&self) -> &str {
        "switch"
    }
    async fn check(&self) -> Result<()> {
        if self.0.load(Ordering::SeqCst) {
            Err(Error::unavailable("switched off"))
        } else {
            Ok(())
        }
    }
}

/// A check that never answers, with a short timeout.
struct Hang;

#[async_trait]
impl ReadinessCheck for Hang {
    fn name(&self) -> &str {
        "hang"
    }
    async fn check(&self) -> Result<()> {
        std::future::pending().await
    }
    fn timeout(&self) -> Duration {
        Duration::from_millis(300)
    }
}

#[tokio::test]
async fn ready_passes_then_names_a_failing_and_a_hanging_check() {
    let server = server().await;
    let off = Arc::new(AtomicBool::new(false));
    server.app.add_readiness_check(Switch(Arc::clone(&off)));
    let (status, body) = server.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": ["sqlite", "switch"]})
    );

    off.store(true, Ordering::SeqCst);
    let answer = server.get("/ready").await;
    assert_status_error(&answer, "Unavailable", 503);
    assert_eq!(answer.1["message"], "Not ready: switch", "{}", answer.1);
    assert_eq!(
        answer.1["data"],
        json!({"failed": [{"name": "switch", "reason": "switched off"}]})
    );

    off.store(false, Ordering::SeqCst);
    server.app.add_readiness_check(Hang);
    let started = Instant::now();
    let answer = server.get("/ready").await;
    let took = started.elapsed();
    assert_status_error(&answer, "Unavailable", 503);
    assert_eq!(
        answer.1["data"]["failed"],
        json!([{"name": "hang", "reason": "no answer within 300 ms"}])
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Liveness does not depend on readiness.
    assert_eq!(server.get("/health").await.0, 200);
}

const FIND_OK: &str =
    r#"plume_requests_total{transport="rest",service="messages",method="find",status="200"}"#;

#[tokio::test]
async fn metrics_count_requests_by_service_method_and_status() {
    let server = server().await;
    let user = account(&server, "metrics@example.com").await;
    let before = metrics(&server).await;
    for _ in 0..3 {
        let response = server
            .client
            .get(server.url("/messages"))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let (status, _) = server.get("/messages").await;
    assert_eq!(status, 401);
    let after = metrics(&server).await;
    assert_eq!(
        sample(&after, FIND_OK) - sample(&before, FIND_OK),
        3.0,
        "{after}"
    );
    let refused =
        r#"plume_requests_total{transport="rest",service="messages",method="find",status="401"}"#;
    assert_eq!(
        sample(&after, refused) - sample(&before, refused),
        1.0,
        "{after}"
    );
    let count = r#"plume_request_duration_seconds_count{transport="rest",service="messages",method="find"}"#;
    assert_eq!(
        sample(&after, count) - sample(&before, count),
        4.0,
        "{after}"
    );
    let inf = r#"plume_request_duration_seconds_bucket{transport="rest",service="messages",method="find",le="+Inf"}"#;
    assert_eq!(sample(&after, inf), sample(&after, count), "{after}");
    // The sign-up's `created` event was handed to the publishers.
    assert_eq!(
        sample(&after, r#"plume_events_published_total{service="users"}"#),
        1.0,
        "{after}"
    );
    // A custom method nobody declared counts under `(none)`, not its name.
    let response = server
        .client
        .post(server.url("/messages"))
        .header("x-service-method", "made_up_method")
        .bearer_auth(&user.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let after = metrics(&server).await;
    assert!(!after.contains("made_up_method"), "{after}");
    assert_eq!(
        sample(
            &after,
            r#"plume_requests_total{transport="rest",service="messages",method="(none)",status="405"}"#
        ),
        1.0,
        "{after}"
    );
}

#[tokio::test]
async fn metrics_count_logins_failures_and_throttled_logins() {
    let server = server_with(json!({"authentication": {"throttle": {"maxPerUsername": 2}}})).await;
    let user = account(&server, "counted@example.com").await;
    let logins = |body: &str| {
        [
            "plume_logins_total",
            "plume_login_failures_total",
            "plume_logins_throttled_total",
        ]
        .map(|name| sample(body, name))
    };
    let before = logins(&metrics(&server).await);
    assert_eq!(login(&server, &user.email, PASSWORD).await.0, 201);
    for _ in 0..2 {
        assert_eq!(login(&server, &user.email, "wrong password").await.0, 401);
    }
    assert_eq!(login(&server, &user.email, "wrong password").await.0, 429);
    let after = logins(&metrics(&server).await);
    let moved: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(moved, [1.0, 2.0, 1.0]);
}

#[tokio::test]
async fn the_socket_gauge_follows_connections_and_socket_calls_are_counted() {
    let server = server().await;
    let user = account(&server, "socket@example.com").await;
    let gauge = |body: &str| sample(body, "plume_socket_connections");
    assert_eq!(gauge(&metrics(&server).await), 0.0);
    let mut socket = SocketClient::connect(
        &server.base,
        Some(json!({"strategy": "jwt", "accessToken": user.token})),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(gauge(&metrics(&server).await), 1.0);
    socket.call("find", vec![json!("messages")]).await.unwrap();
    socket
        .call("find", vec![json!("nowhere")])
        .await
        .unwrap_err();
    let body = metrics(&server).await;
    let series = r#"plume_requests_total{transport="socketio",service="messages",method="find",status="200"}"#;
    assert_eq!(sample(&body, series), 1.0, "{body}");
    let unrouted = r#"plume_requests_total{transport="socketio",service="(none)",method="(none)",status="404"}"#;
    assert_eq!(sample(&body, unrouted), 1.0, "{body}");
    socket.close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while gauge(&metrics(&server).await) != 0.0 {
        assert!(Instant::now() < deadline, "the gauge never went down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_flood_of_random_paths_adds_no_series() {
    let server = server().await;
    assert_eq!(server.get("/warm-up").await.0, 404);
    let before = metrics(&server).await;
    for n in 0..1000 {
        let path = format!("/random-{n}-{}", n * 7919 % 1013);
        assert_eq!(server.get(&path).await.0, 404);
    }
    let after = metrics(&server).await;
    assert_eq!(after.lines().count(), before.lines().count(), "{after}");
    // Only counts grew: a few digits, not a line per path.
    assert!(
        after.len() <= before.len() + 64,
        "{} -> {}",
        before.len(),
        after.len()
    );
    assert!(!after.contains("random-"), "{after}");
    let unrouted =
        r#"plume_requests_total{transport="rest",service="(none)",method="(none)",status="404"}"#;
    assert_eq!(sample(&after, unrouted) - sample(&before, unrouted), 1000.0);
}

/// The `x-request-id` a request with `given` gets back.
async fn id_for(server: &TestServer, given: Option<&str>) -> String {
    let mut request = server.client.get(server.url("/health"));
    if let Some(given) = given {
        request = request.header("x-request-id", given);
    }
    let response = request.send().await.unwrap();
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_made_otherwise() {
    let server = server().await;
    for sane in [
        "abc-123",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        &"x".repeat(128),
    ] {
        assert_eq!(id_for(&server, Some(sane)).await, sane);
    }
    for insane in [
        "x".repeat(129),
        "with space".to_owned(),
        "tab\there".to_owned(),
    ] {
        let got = id_for(&server, Some(&insane)).await;
        assert_ne!(got, insane);
        assert!(is_sane(&got), "{got:?}");
    }
    let mut made = Vec::new();
    for _ in 0..50 {
        let id = id_for(&server, None).await;
        assert!(is_sane(&id), "{id:?}");
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 50, "made ids are unique");
    // Errors carry one too.
    let response = server
        .client
        .get(server.url("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(is_sane(
        response.headers()["x-request-id"].to_str().unwrap()
    ));
}

#[tokio::test]
async fn a_service_at_exactly_an_ops_path_wins_and_placeholders_do_not() {
    let app = App::new();
    app.use_service("health", MemoryService::new()).unwrap();
    app.use_service(":org", MemoryService::new()).unwrap();
    let server = TestServer::start(app).await;
    // The service registered at `health` answers it (a warning at start
    // says so); `/ready` and `/metrics` stay Plume's although `:org`
    // would match them.
    assert_eq!(server.get("/health").await, (200, json!([])));
    assert_eq!(
        server.get("/ready").await,
        (200, json!({"status": "ready", "checks": []}))
    );
    assert!(
        metrics(&server)
            .await
            .contains("# TYPE plume_requests_total counter")
    );
    assert_eq!(server.get("/acme").await, (200, json!([])));
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let options = RestOptions {
        metrics: false,
        ..RestOptions::default()
    };
    let server = TestServer::start_with(App::new(), options).await;
    assert_status_error(&server.get("/metrics").await, "NotFound", 404);
    assert_eq!(server.get("/health").await.0, 200);
}
