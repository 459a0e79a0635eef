//! A load generator for the default app: many keep-alive connections doing
//! authenticated `GET /messages/:id` on loopback for a fixed time, then the
//! throughput, latency percentiles and error count.
//!
//! It signs up a user, logs in and creates one message first, so it needs
//! nothing but a running server:
//!
//! ```sh
//! cargo run --release &                      # the server, on 127.0.0.1:3030
//! cargo run --release --example load -- --connections 1000 --seconds 10
//! ```
//!
//! It is a measurement, not a test: it never fails on numbers, and it stops
//! by itself after `--seconds`. It only talks to 127.0.0.1.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Options {
    port: u16,
    connections: usize,
    seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 3030,
        connections: 1000,
        seconds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} {value}: not a number"))
        };
        match flag.as_str() {
            "--port" => options.port = u16::try_from(number()?).map_err(|e| e.to_string())?,
            "--connections" => {
                options.connections = usize::try_from(number()?).map_err(|e| e.to_string())?;
            }
            "--seconds" => options.seconds = number()?.clamp(1, 300),
            other => {
                return Err(format!(
                    "unknown option {other} (--port, --connections, --seconds)"
                ));
            }
        }
    }
    Ok(options)
}

/// One HTTP/1.1 request on a kept-alive connection; the status and body.
async fn request(
    stream: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.get_mut().write_all(head.as_bytes()).await?;
    stream.get_mut().write_all(body.as_bytes()).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok((status, body))
}

async fn connect(port: u16) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// Signs up a fresh user, logs in, creates a message: (token, path).
async fn prepare(port: u16) -> Result<(String, String), String> {
    let mut stream = connect(port)
        .await
        .map_err(|e| format!("cannot connect to 127.0.0.1:{port}: {e}"))?;
    let email = format!("load-{}@example.com", std::process::id());
    let credentials = json!({"email": email, "password": "load test password"});
    let json_of = |body: &[u8]| serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let (status, body) = request(&mut stream, "POST", "/users", None, Some(&credentials))
        .await
        .map_err(|e| e.to_string())?;
    if status != 201 {
        return Err(format!(
            "sign-up answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let login = json!({"strategy": "local", "email": email, "password": "load test password"});
    let (status, body) = request(&mut stream, "POST", "/authentication", None, Some(&login))
        .await
        .map_err(|e| e.to_string())?;
    let token = json_of(&body)["accessToken"].as_str().map(str::to_owned);
    let token = token.ok_or_else(|| {
        format!(
            "login answered {status}: {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    let (status, body) = request(
        &mut stream,
        "POST",
        "/messages",
        Some(&token),
        Some(&json!({"text": "load"})),
    )
    .await
    .map_err(|e| e.to_string())?;
    let id = json_of(&body)["id"].clone();
    if status != 201 {
        return Err(format!("create answered {status}"));
    }
    Ok((token, format!("/messages/{id}")))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (token, path) = match prepare(options.port).await {
        Ok(prepared) => prepared,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let token: Arc<str> = Arc::from(token);
    let path: Arc<str> = Arc::from(path);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let connect_errors = Arc::new(AtomicU64::new(0));

    let mut tasks = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let (token, path, stop, errors, connect_errors) = (
            Arc::clone(&token),
            Arc::clone(&path),
            Arc::clone(&stop),
            Arc::clone(&errors),
            Arc::clone(&connect_errors),
        );
        let port = options.port;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let Ok(mut stream) = connect(port).await else {
                connect_errors.fetch_add(1, Ordering::Relaxed);
                return latencies;
            };
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match request(&mut stream, "GET", &path, Some(&token), None).await {
                    Ok((200, _)) => latencies.push(started.elapsed()),
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        match connect(port).await {
                            Ok(fresh) => stream = fresh,
                            Err(_) => break,
                        }
                    }
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        if let Ok(mut mine) = task.await {
            latencies.append(&mut mine);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!("connections:     {}", options.connections);
    println!("duration:        {elapsed:.1} s");
    println!("successful GETs: {}", latencies.len());
    println!(
        "throughput:      {:.0} requests/s",
        latencies.len() as f64 / elapsed
    );
    println!("latency p50:     {:.2} ms", percentile(0.50));
    println!("latency p99:     {:.2} ms", percentile(0.99));
    println!("errors:          {}", errors.load(Ordering::Relaxed));
    println!(
        "connect errors:  {}",
        connect_errors.load(Ordering::Relaxed)
    );
    std::process::ExitCode::SUCCESS
}
