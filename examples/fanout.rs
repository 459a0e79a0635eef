//! Real-time fan-out: N authenticated socket.io connections to the default
//! app, then the time from creating a message over REST until its
//! `messages created` event has reached every connection, repeated.
//!
//! ```sh
//! cargo run --release &                      # the server, on 127.0.0.1:3030
//! cargo run --release --example fanout -- --sockets 1000 --rounds 20
//! ```
//!
//! A measurement, not a test; loopback only; it stops by itself.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Barrier, mpsc};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

struct Options {
    port: u16,
    sockets: usize,
    rounds: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 3030,
        sockets: 1000,
        rounds: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: usize = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--port" => options.port = u16::try_from(number).map_err(|e| e.to_string())?,
            "--sockets" => options.sockets = number.clamp(1, 10_000),
            "--rounds" => options.rounds = number.clamp(1, 1000),
            other => {
                return Err(format!(
                    "unknown option {other} (--port, --sockets, --rounds)"
                ));
            }
        }
    }
    Ok(options)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value, String> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{url} answered {status}: {body}"))
    }
}

/// One connection: connects with the token in the auth payload, then
/// reports each `messages created` event's text on `events`.
async fn socket(
    port: u16,
    token: String,
    ready: Arc<Barrier>,
    events: mpsc::UnboundedSender<String>,
) -> Result<(), String> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let auth = json!({"strategy": "jwt", "accessToken": token});
    let mut connected = false;
    let mut announced = false;
    loop {
        let Ok(Some(Ok(frame))) = tokio::time::timeout(WAIT * 4, ws.next()).await else {
            return Ok(());
        };
        let Message::Text(text) = frame else { continue };
        let text = text.as_str();
        if text.starts_with('0') && !connected {
            ws.send(Message::text(format!("40{auth}")))
                .await
                .map_err(|e| e.to_string())?;
            connected = true;
        } else if text == "2" {
            ws.send(Message::text("3"))
                .await
                .map_err(|e| e.to_string())?;
        } else if text.starts_with("40") && !announced {
            announced = true;
            ready.wait().await;
        } else if text.starts_with("44") {
            return Err(format!("connection refused: {text}"));
        } else if let Some(event) = text.strip_prefix("42")
            && let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(event)
            && parts.first() == Some(&json!("messages created"))
        {
            let label = parts
                .get(1)
                .and_then(|m| m["text"].as_str())
                .unwrap_or_default()
                .to_owned();
            if events.send(label).is_err() {
                return Ok(());
            }
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let options = options()?;
    let base = format!("http://127.0.0.1:{}", options.port);
    let client = reqwest::Client::new();
    let email = format!("fanout-{}@example.com", std::process::id());
    post(
        &client,
        &format!("{base}/users"),
        None,
        json!({"email": email, "password": "fan out password"}),
    )
    .await?;
    let login = post(
        &client,
        &format!("{base}/authentication"),
        None,
        json!({"strategy": "local", "email": email, "password": "fan out password"}),
    )
    .await?;
    let token = login["accessToken"]
        .as_str()
        .ok_or("no accessToken in the login")?
        .to_owned();

    let ready = Arc::new(Barrier::new(options.sockets + 1));
    let (events, mut received) = mpsc::unbounded_channel();
    let started = Instant::now();
    for _ in 0..options.sockets {
        let (token, ready, events) = (token.clone(), Arc::clone(&ready), events.clone());
        let port = options.port;
        tokio::spawn(async move {
            if let Err(error) = socket(port, token, ready, events).await {
                eprintln!("{error}");
            }
        });
    }
    drop(events);
    if tokio::time::timeout(WAIT, ready.wait()).await.is_err() {
        return Err(format!(
            "not all {} sockets connected within {WAIT:?}",
            options.sockets
        ));
    }
    println!(
        "{} authenticated sockets connected in {:.2} s",
        options.sockets,
        started.elapsed().as_secs_f64()
    );

    let mut times = Vec::with_capacity(options.rounds);
    for round in 0..options.rounds {
        let label = format!("round {round}");
        let sent = Instant::now();
        post(
            &client,
            &format!("{base}/messages"),
            Some(&token),
            json!({"text": label}),
        )
        .await?;
        let mut seen = 0;
        while seen < options.sockets {
            match tokio::time::timeout(WAIT, received.recv()).await {
                Ok(Some(text)) if text == label => seen += 1,
                Ok(Some(_)) => {}
                _ => {
                    return Err(format!(
                        "{label}: only {seen} of {} sockets got the event",
                        options.sockets
                    ));
                }
            }
        }
        times.push(sent.elapsed());
    }
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("rounds: {}", options.rounds);
    println!(
        "create + event to all {} sockets: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        options.sockets,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    Ok(())
}
