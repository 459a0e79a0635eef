//! Request bodies the server must refuse without losing or changing data:
//! malformed JSON (400), bodies over the 1 MiB limit with or without a
//! `Content-Length` (413), and JSON nesting bombs (400, no stack
//! overflow, the server keeps serving).

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::{BODY_LIMIT, Fixture, assert_status_error, call_raw, message_path};
use crate::support::TestServer;

#[tokio::test]
async fn malformed_json_is_400_and_changes_nothing() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let victim = message_path(&f.bob_message);
    let bodies: [&[u8]; 6] = [
        b"{\"text\": ",
        b"{\"text\": \"a\"} trailing",
        b"{'text': 'single quotes'}",
        b"{\"text\": \"\\uD800\"}",
        b"\xff\xfe{}",
        b"not json at all",
    ];
    for body in bodies {
        for (method, path) in [
            (Method::POST, "/messages"),
            (Method::PATCH, victim.as_str()),
            (Method::PUT, victim.as_str()),
            (Method::POST, "/users"),
            (Method::POST, "/authentication"),
        ] {
            let answer = call_raw(
                &f.server,
                method.clone(),
                path,
                Some(&f.alice.token),
                body.to_vec(),
            )
            .await;
            assert_status_error(&answer, "BadRequest", 400);
            assert!(
                answer.1["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Invalid JSON body"),
                "{method} {path}: {}",
                answer.1
            );
        }
    }
    f.assert_unchanged(&before).await;
    f.assert_logins_work().await;
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413_and_change_nothing() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let victim = message_path(&f.bob_message);
    // Valid JSON, one byte over: only the size is wrong.
    let over = message_of_length(BODY_LIMIT + 1);
    for (method, path) in [
        (Method::POST, "/messages"),
        (Method::PATCH, victim.as_str()),
        (Method::PUT, victim.as_str()),
        (Method::POST, "/users"),
        (Method::POST, "/authentication"),
    ] {
        let answer = call_raw(
            &f.server,
            method.clone(),
            path,
            Some(&f.alice.token),
            over.clone(),
        )
        .await;
        assert_status_error(&answer, "PayloadTooLarge", 413);
    }
    // Without a Content-Length the limit holds all the same.
    let (status, body) = chunked_post(&f.server, "/messages", &f.alice.token, &over).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_status_error(&(status, body), "PayloadTooLarge", 413);
    f.assert_unchanged(&before).await;

    // Exactly the limit is read and parsed: the answer is the message
    // schema's (its text is bounded far below a mebibyte), not 413.
    let exact = message_of_length(BODY_LIMIT);
    let (status, answer) = call_raw(
        &f.server,
        Method::POST,
        "/messages",
        Some(&f.alice.token),
        exact,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["data"][0]["keyword"], json!("maxLength"), "{answer}");
    f.assert_unchanged(&before).await;
}

/// `{"text":"xxx…"}`, exactly `len` bytes long.
fn message_of_length(len: usize) -> Vec<u8> {
    let overhead = r#"{"text":""}"#.len();
    let body = format!(r#"{{"text":"{}"}}"#, "x".repeat(len - overhead));
    assert_eq!(body.len(), len);
    body.into_bytes()
}

/// POSTs `body` with `Transfer-Encoding: chunked` over a raw socket and
/// returns the status and the response body. The final empty chunk is not
/// sent: the server has read every byte by the time it refuses, so closing
/// does not reset the connection under the answer.
async fn chunked_post(server: &TestServer, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(64 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    let (mut reader, mut writer) = stream.split();
    let write = async {
        // The server may answer before it has read the last chunk.
        let _ = writer.write_all(&request).await;
    };
    let read = async {
        let mut response = Vec::new();
        let _ = reader.read_to_end(&mut response).await;
        response
    };
    let ((), response) = tokio::join!(write, read);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn nesting_bombs_are_400_and_the_server_keeps_serving() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let in_text = format!(r#"{{"text":{arrays}}}"#);
    // Unclosed: the parser must stop at the depth limit, not at the end.
    let unclosed = "[".repeat(BODY_LIMIT - 1);
    for bomb in [&arrays, &objects, &in_text, &unclosed] {
        for path in ["/messages", "/users", "/authentication"] {
            let answer = call_raw(
                &f.server,
                Method::POST,
                path,
                Some(&f.alice.token),
                bomb.clone().into_bytes(),
            )
            .await;
            assert_status_error(&answer, "BadRequest", 400);
        }
    }
    // A bomb in the query string is refused too.
    let deep_query = format!("/messages?text{}=1", "[a]".repeat(1000));
    let answer = f.as_alice(Method::GET, &deep_query, None).await;
    assert_status_error(&answer, "BadRequest", 400);

    f.assert_unchanged(&before).await;
    let answer = f
        .as_alice(
            Method::POST,
            "/messages",
            Some(&json!({"text": "still here"})),
        )
        .await;
    assert_eq!(answer.0, 201, "{}", answer.1);
}
