//! Bad requests: each gets Feathers error JSON with the right status, the
//! server keeps serving and nothing is lost (Feathers: `@feathersjs/express`,
//! `src/rest.ts` and `src/handlers.ts`).

use plume::store::MemoryService;
use plume::transport::rest::RestOptions;
use plume::{App, Error, HookContext, Hooks, ServiceOptions};
use serde_json::{Value, json};

use crate::support::TestServer;

fn notes_app() -> App {
    let app = App::new();
    app.use_service("notes", MemoryService::new()).unwrap();
    app.use_service_with(
        "limited",
        MemoryService::new(),
        ServiceOptions::new().methods(["find", "archive"]),
    )
    .unwrap();
    app
}

fn assert_error(body: &Value, name: &str, code: u16) {
    assert_eq!(body["name"], json!(name), "{body}");
    assert_eq!(body["code"], json!(code), "{body}");
    assert!(body["className"].is_string(), "{body}");
    assert!(body["message"].is_string(), "{body}");
}

async fn count(server: &TestServer) -> usize {
    server.get("/notes").await.1.as_array().unwrap().len()
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = TestServer::start(notes_app()).await;
    let (status, body) = server.get("/nowhere").await;
    assert_eq!(status, 404);
    assert_error(&body, "NotFound", 404);
    assert_eq!(body["message"], json!("Page not found"));
    assert_eq!(body["data"], json!({"url": "/nowhere"}));
}

#[tokio::test]
async fn methods_not_offered_are_405() {
    // `getServiceMethod` (`@feathersjs/transport-commons`, `src/http.ts`) and
    // the `methods` check (`@feathersjs/express`, `src/rest.ts`).
    let server = TestServer::start(notes_app()).await;
    let c = &server.client;
    let (status, body) = server
        .send(c.request(reqwest::Method::OPTIONS, server.url("/notes")))
        .await;
    assert_eq!(status, 405);
    assert_eq!(body["message"], json!("Method OPTIONS not allowed"));

    let (status, body) = server.post("/limited", &json!({})).await;
    assert_eq!(status, 405);
    assert_eq!(
        body["message"],
        json!("Method `create` is not supported by this endpoint.")
    );

    for method in ["find", "create", "setup", "nonExisting"] {
        let (status, body) = server
            .send(
                c.post(server.url("/limited"))
                    .header("X-Service-Method", method)
                    .json(&json!({})),
            )
            .await;
        assert_eq!(status, 405, "{method}");
        assert_eq!(
            body["message"],
            json!(format!(
                "Method `{method}` is not supported by this endpoint."
            ))
        );
    }
}

#[tokio::test]
async fn malformed_json_is_400_and_nothing_is_stored() {
    let server = TestServer::start(notes_app()).await;
    let (status, body) = server
        .send(
            server
                .client
                .post(server.url("/notes"))
                .header("content-type", "application/json")
                .body("{\"text\": "),
        )
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "BadRequest", 400);
    assert_eq!(count(&server).await, 0);
}

#[tokio::test]
async fn nesting_bomb_is_400_without_stack_overflow() {
    let server = TestServer::start(notes_app()).await;
    let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, body) = server
        .send(server.client.post(server.url("/notes")).body(bomb))
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "BadRequest", 400);
    // Still serving.
    assert_eq!(server.post("/notes", &json!({"ok": true})).await.0, 201);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = TestServer::start_with(
        notes_app(),
        RestOptions {
            body_limit: 1024,
            ..RestOptions::default()
        },
    )
    .await;
    let big = json!({"text": "x".repeat(2048)});
    let (status, body) = server.post("/notes", &big).await;
    assert_eq!(status, 413);
    assert_error(&body, "PayloadTooLarge", 413);
    // Without a Content-Length (chunked), the limit still holds.
    let status_line = raw_chunked_post(&server, "/notes", &[&[b' '; 800], &[b' '; 800]]).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert_eq!(count(&server).await, 0);
}

/// Sends a chunked POST over a raw socket and returns the status line.
async fn raw_chunked_post(server: &TestServer, path: &str, chunks: &[&[u8]]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = stream.write_all(&request).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn bad_queries_and_ids_are_400() {
    let server = TestServer::start(notes_app()).await;
    let (status, body) = server.get("/notes?$foo=1").await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], json!("Invalid filter value $foo"));
    let (status, body) = server.get("/notes?age[$bad]=1").await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], json!("Invalid query parameter $bad"));
    // As Feathers: the data is the object that holds the unknown operator.
    assert_eq!(body["data"], json!({"$bad": "1"}));
}

#[tokio::test]
async fn internal_errors_are_500_without_detail() {
    let app = notes_app();
    app.service("notes").unwrap().hooks(Hooks::new().before(
        "find",
        async |_ctx: &mut HookContext| -> plume::Result<()> {
            Err(Error::internal(std::io::Error::other(
                "db at /var/secret failed",
            )))
        },
    ));
    let server = TestServer::start(app).await;
    let (status, body) = server.get("/notes").await;
    assert_eq!(status, 500);
    assert_error(&body, "GeneralError", 500);
    assert!(!body.to_string().contains("secret"), "{body}");
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let app = notes_app();
    app.service("notes").unwrap().hooks(Hooks::new().before(
        "find",
        async |_ctx: &mut HookContext| -> plume::Result<()> {
            Err(Error::too_many_requests("Slow down").with_data(json!({"retryAfter": 30})))
        },
    ));
    let server = TestServer::start(app).await;
    let response = server
        .client
        .get(server.url("/notes"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_and_frees_its_budget() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(
        notes_app(),
        RestOptions {
            body_timeout: std::time::Duration::from_millis(300),
            ..RestOptions::default()
        },
    )
    .await;
    // Headers and one chunk, then nothing: a slow sender.
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /notes HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{{\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers a stalled body by itself")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""name":"Timeout""#), "{answer}");
    // Its share of the budget is back: a whole-limit body goes through.
    let big = json!({"text": "x".repeat(900_000)});
    assert_eq!(server.post("/notes", &big).await.0, 201);
}
