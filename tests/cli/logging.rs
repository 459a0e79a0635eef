//! Issue 11, point 4: the access log of the `plume` binary, one line per
//! request in either format, flushed at exit; a bad format stops the start.
//! Issue 14, point 3: each access line carries the request's id, the one
//! the client sent or the one returned to it; `PLUME_METRICS=false`.

use std::time::Duration;

use serde_json::Value;

use super::{Server, TempDir, output_within, plume};

/// The request id the first of [`two_requests_then_stop`] sends.
const GIVEN_ID: &str = "trace-me-42";

/// Makes two requests, one with a query string holding a would-be token
/// and the request id [`GIVEN_ID`], one without an id; returns the
/// server's log after a graceful stop and the id made for the second.
async fn two_requests_then_stop(server: Server) -> (Vec<String>, String) {
    let client = reqwest::Client::new();
    let refused = client
        .get(format!(
            "{}/messages?$limit=1&access_token=hunter2",
            server.url
        ))
        .header("x-request-id", GIVEN_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-request-id"], GIVEN_ID);
    let missing = client
        .get(format!("{}/nowhere", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let made = missing.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (server.stop(), made)
}

#[tokio::test]
async fn the_json_access_log_has_one_parseable_line_per_request() {
    let dir = TempDir::new("log-json");
    let server = Server::start_with(
        &dir.path().join("db.sqlite"),
        &[("PLUME_LOG_FORMAT", "json")],
    );
    for line in &server.startup_log {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let (log, made) = two_requests_then_stop(server).await;
    let lines: Vec<Value> = log
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|line| line["target"] == "plume::access")
        .collect();
    assert_eq!(access.len(), 2, "{log:#?}");
    for (line, path, status) in [(access[0], "/messages", 401), (access[1], "/nowhere", 404)] {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["path"], path, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert!(line["latency_us"].is_u64(), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    assert_eq!(access[0]["request_id"], GIVEN_ID, "{log:#?}");
    assert_eq!(access[1]["request_id"], made.as_str(), "{log:#?}");
    assert!(
        log.iter().all(|line| !line.contains("hunter2")),
        "the query string is not logged: {log:#?}"
    );
    // Written at exit: the writer's queue is flushed before the process ends.
    assert!(
        lines.iter().any(|line| line["message"] == "shutting down"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn the_text_access_log_is_the_default_with_one_line_per_request() {
    let dir = TempDir::new("log-text");
    let server = Server::start(&dir.path().join("db.sqlite"));
    let (log, made) = two_requests_then_stop(server).await;
    let access: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("plume::access"))
        .collect();
    assert_eq!(access.len(), 2, "{log:#?}");
    for (line, path, status) in [(access[0], "/messages", 401), (access[1], "/nowhere", 404)] {
        assert!(line.contains("INFO"), "{line}");
        assert!(line.contains("method=GET"), "{line}");
        assert!(line.contains(&format!("path={path} ")), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(line.contains("latency_us="), "{line}");
        assert!(!line.starts_with('{'), "{line}");
    }
    assert!(
        access[0].ends_with(&format!(" request_id={GIVEN_ID}")),
        "{log:#?}"
    );
    assert!(
        access[1].ends_with(&format!(" request_id={made}")),
        "{log:#?}"
    );
    assert!(log.iter().all(|line| !line.contains("hunter2")), "{log:#?}");
    assert!(
        log.iter().any(|line| line.contains("shutting down")),
        "{log:#?}"
    );
}

/// The access lines are written by hand (not through `fmt`), but the
/// filter still decides whether they are written.
#[tokio::test]
async fn the_filter_turns_the_access_log_off_and_keeps_the_rest() {
    let dir = TempDir::new("log-filter");
    for format in ["text", "json"] {
        let server = Server::start_with(
            &dir.path().join(format!("{format}.sqlite")),
            &[
                ("PLUME_LOG_FORMAT", format),
                ("RUST_LOG", "info,plume::access=off"),
            ],
        );
        let (log, _) = two_requests_then_stop(server).await;
        assert!(
            log.iter().all(|line| !line.contains("plume::access")),
            "{format}: {log:#?}"
        );
        assert!(
            log.iter().any(|line| line.contains("shutting down")),
            "{format}: {log:#?}"
        );
    }
}

/// `PLUME_METRICS=false` turns `/metrics` off; `/health` and `/ready`
/// (which reads the database) stay.
#[tokio::test]
async fn plume_metrics_false_turns_the_metrics_route_off() {
    let dir = TempDir::new("metrics-off");
    let server = Server::start_with(&dir.path().join("db.sqlite"), &[("PLUME_METRICS", "false")]);
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let request = client.get(format!("{}{path}", server.url));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/metrics").await, 404);
    assert_eq!(status("/health").await, 200);
    assert_eq!(status("/ready").await, 200);
    server.stop();
}

#[test]
fn an_unknown_log_format_refuses_to_start() {
    let dir = TempDir::new("log-bad");
    let mut command = plume();
    command
        .args(["--port", "0"])
        .env("PLUME_LOG_FORMAT", "xml")
        .env("SQLITE_FILE", dir.path().join("db.sqlite"));
    let output = output_within(command, Duration::from_secs(20));
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(log.contains("logging.format"), "{log}");
    assert!(log.contains("PLUME_LOG_FORMAT"), "{log}");
    assert!(log.contains("\"xml\""), "{log}");
    assert!(!log.contains("listening"), "{log}");
}
