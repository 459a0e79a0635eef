//! Real-time fan-out: N logged-in socket.io connections, then service
//! events delivered to all of them. The client of `bench/realtime`, which
//! runs it against Plume and Feathers side by side; it speaks engine.io 4
//! over WebSocket itself, so one process holds 10,000 sockets on one core.
//!
//! ```sh
//! cargo run --release &                      # the server, on 127.0.0.1:3030
//! cargo run --release --example fanout -- --sockets 1000 --rounds 20
//! ```
//!
//! What it does, in order:
//!
//! 1. signs a user up and logs in over REST (`POST /users`,
//!    `POST /authentication` with the local strategy);
//! 2. connects `--sockets` WebSockets, at most `--in-flight` at a time, and
//!    logs each in the way the official authentication client does:
//!    `create` on `authentication` with `{strategy: "jwt", accessToken}`
//!    (`--login handshake` sends the token in the connect packet instead);
//!    (with `--create-port`, messages are created on that port: another
//!    instance of a cluster, whose events arrive through Redis);
//! 3. rounds: creates a message over REST and waits until every socket has
//!    its `messages created` event, one round after the other, at least
//!    `--rounds` times and `--seconds` long;
//! 4. rates: for each of `--rates` (events a second), creates messages at
//!    that pace for `--rate-seconds` and records, per event, the time from
//!    its create until the last socket had it; stops at the first rate
//!    whose 99th percentile is over 100 ms or that loses an event.
//!
//! With `--pid` (the server's process id, on this machine) it reads the
//! server's CPU time and memory from `/proc`: CPU per connect and login,
//! per round, the share of a core at each rate, RSS per connected socket.
//! The last line of its output, `RESULT {json}`, is what `bench/realtime`
//! reads.
//!
//! A measurement, not a test; loopback only; it stops by itself.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long any one step may take before the run gives up.
const WAIT: Duration = Duration::from_secs(60);
/// Events a run can number: rounds plus every rate's events.
const MAX_EVENTS: usize = 200_000;
/// Delivery to all within this is what a rate must keep (99th percentile).
const DEADLINE: Duration = Duration::from_millis(100);
/// What each socket reads at a time; an event is a few hundred bytes.
const CLIENT_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Linux's USER_HZ, the unit of the CPU times in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Clone, Copy, PartialEq)]
enum Login {
    /// `create` on `authentication` over the socket, as the official
    /// authentication client does.
    Emit,
    /// The token in the socket.io connect packet's auth payload.
    Handshake,
}

struct Options {
    port: u16,
    /// Where the messages are created, when not on `port`: another
    /// instance of a cluster (`bench/cluster`), whose events reach the
    /// sockets through Redis.
    create_port: Option<u16>,
    sockets: usize,
    rounds: usize,
    seconds: f64,
    rates: Vec<u32>,
    rate_seconds: u32,
    in_flight: usize,
    login: Login,
    pid: Option<u32>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 3030,
        create_port: None,
        sockets: 1000,
        rounds: 20,
        seconds: 0.0,
        rates: Vec::new(),
        rate_seconds: 5,
        in_flight: 100,
        login: Login::Emit,
        pid: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || -> Result<usize, String> {
            value
                .parse()
                .map_err(|_| format!("{flag} {value}: not a number"))
        };
        match flag.as_str() {
            "--port" => options.port = u16::try_from(number()?).map_err(|e| e.to_string())?,
            "--create-port" => {
                options.create_port = Some(u16::try_from(number()?).map_err(|e| e.to_string())?);
            }
            "--sockets" => options.sockets = number()?.clamp(1, 15_000),
            "--rounds" => options.rounds = number()?.clamp(1, 10_000),
            "--seconds" => {
                options.seconds = value
                    .parse::<f64>()
                    .map_err(|_| format!("--seconds {value}: not a number"))?
                    .clamp(0.0, 600.0);
            }
            "--rates" => {
                options.rates = value
                    .split(',')
                    .filter(|rate| !rate.is_empty())
                    .map(|rate| {
                        rate.parse::<u32>()
                            .ok()
                            .filter(|rate| (1..=10_000).contains(rate))
                            .ok_or_else(|| format!("--rates: '{rate}' is not 1..=10000"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--rate-seconds" => {
                options.rate_seconds = u32::try_from(number()?.clamp(1, 120)).unwrap_or(5);
            }
            "--in-flight" => options.in_flight = number()?.clamp(1, 10_000),
            "--pid" => options.pid = Some(u32::try_from(number()?).map_err(|e| e.to_string())?),
            "--login" => {
                options.login = match value.as_str() {
                    "emit" => Login::Emit,
                    "handshake" => Login::Handshake,
                    other => return Err(format!("--login {other}: emit or handshake")),
                }
            }
            other => {
                return Err(format!(
                    "unknown option {other} (--port, --sockets, --rounds, --seconds, --rates, \
                     --rate-seconds, --in-flight, --login, --pid)"
                ));
            }
        }
    }
    let events = options.rounds
        + 10
        + options
            .rates
            .iter()
            .map(|rate| *rate as usize * options.rate_seconds as usize)
            .sum::<usize>();
    if events > MAX_EVENTS {
        return Err(format!(
            "{events} events asked for; at most {MAX_EVENTS} in one run"
        ));
    }
    Ok(options)
}

/// A process's CPU time and memory, from `/proc`.
#[derive(Clone, Copy, Default)]
struct Usage {
    /// User and system time, in seconds.
    cpu: f64,
    /// Resident set, in KiB.
    rss_kib: u64,
}

fn usage(pid: Option<u32>) -> Option<Usage> {
    let pid = pid.map_or_else(|| "self".to_owned(), |pid| pid.to_string());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is the
    // first, utime the 12th, stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())?;
    Some(Usage {
        cpu: ticks / TICKS_PER_SECOND,
        rss_kib,
    })
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

/// Counts each event's arrivals and reports the moment the last socket
/// had it.
struct Tracker {
    sockets: u32,
    counts: Vec<AtomicU32>,
    complete: mpsc::UnboundedSender<(usize, Instant)>,
}

impl Tracker {
    fn arrived(&self, seq: usize) {
        let Some(count) = self.counts.get(seq) else {
            return;
        };
        if count.fetch_add(1, Ordering::Relaxed) + 1 == self.sockets {
            let _ = self.complete.send((seq, Instant::now()));
        }
    }
}

/// The event number in a `messages created` packet: its text is `e<seq>`.
/// A substring search, not a JSON parse, so that the client's core is
/// spent on reading sockets rather than on building values.
fn event_seq(packet: &str) -> Option<usize> {
    let rest = packet.strip_prefix("42[\"messages created\",")?;
    let at = rest.find("\"text\":\"e")? + "\"text\":\"e".len();
    let digits = &rest[at..];
    let end = digits.find('"')?;
    digits[..end].parse().ok()
}

/// One connection: opens, logs in, reports that it is ready, then counts
/// every `messages created` event it receives.
async fn socket(
    port: u16,
    token: Arc<str>,
    login: Login,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    tracker: Arc<Tracker>,
) {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    // tungstenite zero-fills up to its read buffer's size (128 KiB by
    // default) before every read: at 10,000 sockets that made this client,
    // not the server, the slower end of a round.
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER_BYTES);
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
    let (mut ws, _) = match connecting.await {
        Ok(connected) => connected,
        Err(error) => {
            let _ = ready.send(Err(format!("connect: {error}")));
            return;
        }
    };
    let credentials = json!({"strategy": "jwt", "accessToken": &*token});
    let mut waiting = Some(ready);
    let fail = |waiting: &mut Option<mpsc::UnboundedSender<_>>, why: String| {
        if let Some(ready) = waiting.take() {
            let _ = ready.send(Err(why));
        }
    };
    while let Some(frame) = ws.next().await {
        let Ok(frame) = frame else {
            fail(&mut waiting, "connection lost".to_owned());
            return;
        };
        let Message::Text(text) = frame else { continue };
        let text = text.as_str();
        let reply = if let Some(seq) = event_seq(text) {
            tracker.arrived(seq);
            None
        } else if text == "2" {
            Some("3".to_owned())
        } else if text.starts_with('0') {
            Some(match login {
                Login::Emit => "40".to_owned(),
                Login::Handshake => format!("40{credentials}"),
            })
        } else if text.starts_with("40") {
            match login {
                Login::Emit => Some(format!(
                    "420{}",
                    json!(["create", "authentication", credentials])
                )),
                Login::Handshake => {
                    if let Some(ready) = waiting.take() {
                        let _ = ready.send(Ok(()));
                    }
                    None
                }
            }
        } else if let Some(answer) = text.strip_prefix("430") {
            if answer.starts_with("[null") {
                if let Some(ready) = waiting.take() {
                    let _ = ready.send(Ok(()));
                }
            } else {
                fail(&mut waiting, format!("login refused: {answer}"));
            }
            None
        } else if text.starts_with("44") {
            fail(&mut waiting, format!("connection refused: {text}"));
            return;
        } else {
            None
        };
        if let Some(reply) = reply
            && ws.send(Message::text(reply)).await.is_err()
        {
            fail(&mut waiting, "connection lost".to_owned());
            return;
        }
    }
    fail(&mut waiting, "closed by the server".to_owned());
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The value at fraction `q` of sorted `values`.
fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let at = ((values.len() - 1) as f64 * q).round() as usize;
    values[at.min(values.len() - 1)]
}

async fn run() -> Result<(), String> {
    let options = options()?;
    let base = format!("http://127.0.0.1:{}", options.port);
    let messages = format!(
        "http://127.0.0.1:{}/messages",
        options.create_port.unwrap_or(options.port)
    );
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
    let token: Arc<str> = login["accessToken"]
        .as_str()
        .ok_or("no accessToken in the login")?
        .into();
    let mut result = serde_json::Map::new();
    result.insert("sockets".into(), json!(options.sockets));

    // ------------------------------------------------------ connect + login
    let idle = usage(options.pid);
    let (complete, mut completed) = mpsc::unbounded_channel();
    let tracker = Arc::new(Tracker {
        sockets: u32::try_from(options.sockets).unwrap_or(u32::MAX),
        counts: (0..MAX_EVENTS).map(|_| AtomicU32::new(0)).collect(),
        complete,
    });
    let (ready, mut readies) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(options.in_flight));
    let started = Instant::now();
    let before = usage(options.pid);
    let spawner = {
        let (gate, token, tracker) = (Arc::clone(&gate), Arc::clone(&token), Arc::clone(&tracker));
        let (sockets, port, login) = (options.sockets, options.port, options.login);
        tokio::spawn(async move {
            for _ in 0..sockets {
                let Ok(permit) = Arc::clone(&gate).acquire_owned().await else {
                    return;
                };
                let (token, tracker, ready) =
                    (Arc::clone(&token), Arc::clone(&tracker), ready.clone());
                // The permit goes back when this socket is ready (or failed).
                let (done, mut told) = mpsc::unbounded_channel();
                tokio::spawn(socket(port, token, login, done, tracker));
                tokio::spawn(async move {
                    let outcome = told
                        .recv()
                        .await
                        .unwrap_or_else(|| Err("socket task ended".to_owned()));
                    drop(permit);
                    let _ = ready.send(outcome);
                });
            }
        })
    };
    let mut failures = 0usize;
    let mut first_failure = None;
    for _ in 0..options.sockets {
        match tokio::time::timeout(WAIT, readies.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(why))) => {
                failures += 1;
                first_failure.get_or_insert(why);
            }
            _ => return Err(format!("sockets not ready within {WAIT:?}")),
        }
    }
    spawner.await.map_err(|e| e.to_string())?;
    let connect = started.elapsed();
    let after = usage(options.pid);
    if failures > 0 {
        return Err(format!(
            "{failures} of {} sockets failed; the first: {}",
            options.sockets,
            first_failure.unwrap_or_default()
        ));
    }
    println!(
        "{} sockets connected and logged in in {:.2} s ({:.0} a second)",
        options.sockets,
        connect.as_secs_f64(),
        options.sockets as f64 / connect.as_secs_f64()
    );
    result.insert("connect_s".into(), json!(connect.as_secs_f64()));
    if let (Some(before), Some(after)) = (before, after) {
        let per = (after.cpu - before.cpu) / options.sockets as f64 * 1e6;
        println!("server CPU per connect + login: {per:.0} µs");
        result.insert("connect_cpu_us".into(), json!(per));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let (Some(idle), Some(now)) = (idle, usage(options.pid)) {
        let per = now.rss_kib.saturating_sub(idle.rss_kib) as f64 * 1024.0 / options.sockets as f64;
        println!(
            "server RSS: {} KiB before, {} KiB with the sockets idle: {:.1} KiB a socket",
            idle.rss_kib,
            now.rss_kib,
            per / 1024.0
        );
        result.insert("rss_idle_kib".into(), json!(idle.rss_kib));
        result.insert("rss_connected_kib".into(), json!(now.rss_kib));
        result.insert("rss_per_socket_kib".into(), json!(per / 1024.0));
    }

    // ---------------------------------------------------------------- rounds
    let mut seq = 0usize;
    let mut round = async |seq: usize| -> Result<Duration, String> {
        let sent = Instant::now();
        post(
            &client,
            &messages,
            Some(&token),
            json!({"text": format!("e{seq}")}),
        )
        .await?;
        loop {
            match tokio::time::timeout(WAIT, completed.recv()).await {
                Ok(Some((done, at))) if done == seq => return Ok(at - sent),
                Ok(Some(_)) => {}
                _ => {
                    return Err(format!(
                        "event {seq}: not every socket had it within {WAIT:?}"
                    ));
                }
            }
        }
    };
    // Warm-up rounds, not measured.
    for _ in 0..3 {
        round(seq).await?;
        seq += 1;
    }
    let mut times = Vec::new();
    let before = usage(options.pid);
    let started = Instant::now();
    while times.len() < options.rounds || started.elapsed().as_secs_f64() < options.seconds {
        times.push(round(seq).await?);
        seq += 1;
    }
    let after = usage(options.pid);
    times.sort_unstable();
    println!(
        "{} rounds: create + event to all {} sockets: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times.len(),
        options.sockets,
        ms(times[0]),
        ms(quantile(&times, 0.5)),
        ms(times[times.len() - 1])
    );
    result.insert("rounds".into(), json!(times.len()));
    result.insert("round_median_ms".into(), json!(ms(quantile(&times, 0.5))));
    result.insert("round_p90_ms".into(), json!(ms(quantile(&times, 0.9))));
    if let (Some(before), Some(after)) = (before, after) {
        let per_round = (after.cpu - before.cpu) / times.len() as f64;
        println!(
            "server CPU per round: {:.2} ms ({:.2} µs per delivered event)",
            per_round * 1e3,
            per_round * 1e6 / options.sockets as f64
        );
        result.insert("round_cpu_ms".into(), json!(per_round * 1e3));
        result.insert(
            "cpu_per_delivery_us".into(),
            json!(per_round * 1e6 / options.sockets as f64),
        );
    }

    // ----------------------------------------------------------------- rates
    let mut rates = Vec::new();
    for &rate in &options.rates {
        let count = rate as usize * options.rate_seconds as usize;
        let first = seq;
        seq += count;
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let before = usage(options.pid);
        let started = tokio::time::Instant::now();
        let mut sent = Vec::with_capacity(count);
        let mut posts = tokio::task::JoinSet::new();
        for n in 0..count {
            tokio::time::sleep_until(started + interval * u32::try_from(n).unwrap_or(u32::MAX))
                .await;
            sent.push(Instant::now());
            let (client, url, token) = (client.clone(), messages.clone(), Arc::clone(&token));
            posts.spawn(async move {
                post(
                    &client,
                    &url,
                    Some(&token),
                    json!({"text": format!("e{}", first + n)}),
                )
                .await
            });
        }
        let wall = started.elapsed();
        let mut done: Vec<Option<Instant>> = vec![None; count];
        let mut left = count;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while left > 0 {
            match tokio::time::timeout_at(deadline, completed.recv()).await {
                Ok(Some((event, at))) if (first..first + count).contains(&event) => {
                    done[event - first] = Some(at);
                    left -= 1;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        let after = usage(options.pid);
        let mut failed_posts = 0;
        while let Some(outcome) = posts.join_next().await {
            if !matches!(outcome, Ok(Ok(_))) {
                failed_posts += 1;
            }
        }
        let mut latencies: Vec<Duration> = done
            .iter()
            .zip(&sent)
            .filter_map(|(done, sent)| done.map(|done| done - *sent))
            .collect();
        latencies.sort_unstable();
        let (p50, p99) = (quantile(&latencies, 0.5), quantile(&latencies, 0.99));
        let max = latencies.last().copied().unwrap_or_default();
        let busy = match (before, after) {
            (Some(before), Some(after)) => (after.cpu - before.cpu) / wall.as_secs_f64(),
            _ => f64::NAN,
        };
        let kept = left == 0 && failed_posts == 0 && p99 <= DEADLINE;
        println!(
            "{rate} events/s for {} s: to all sockets p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             {left} not delivered to all, {failed_posts} creates failed; server {:.0} % of a core{}",
            options.rate_seconds,
            ms(p50),
            ms(p99),
            ms(max),
            busy * 100.0,
            if kept { "" } else { " (over)" }
        );
        rates.push(json!({
            "rate": rate, "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max),
            "undelivered": left, "failed_creates": failed_posts, "server_core": busy, "kept": kept,
        }));
        if !kept {
            break;
        }
    }
    if !rates.is_empty() {
        result.insert("rates".into(), Value::Array(rates));
    }
    if let Some(own) = usage(None) {
        result.insert("client_cpu_s".into(), json!(own.cpu));
    }
    println!("RESULT {}", Value::Object(result));
    Ok(())
}
