//! Logging off the request path: an access log line per request, written
//! by a background thread, as text or as JSON.
//!
//! [`init`] installs the process's log subscriber. Events are formatted
//! where they happen and appended to a bounded buffer that one thread
//! writes to stderr every 100 ms, or as soon as it holds 64 KiB, in one
//! write: a request never waits for the terminal, the pipe or the log
//! shipper behind stderr, and does not wake a thread either.
//!
//! When lines come faster than the writer takes them and the queue
//! ([`LogOptions::buffered_lines`]) is full, new lines are **dropped and
//! counted**, never waited for: memory stays bounded and requests keep
//! their pace. Every [`LogOptions::drop_report_interval`] in which the
//! count grew, and once more at shutdown, a `warn` line from the target
//! `plume::logging` says how many lines were lost (that line is kept even
//! when the buffer is full, so no count is lost).
//! [`LogGuard::dropped_lines`] reads the total.
//!
//! [`AccessLogLayer`] writes the access log: one `info` event per request
//! with the target [`ACCESS_TARGET`] and the fields `method`, `path` (the
//! query string is left out: its values may hold tokens or personal data),
//! `status`, `latency_us` (microseconds to the response head) and
//! `request_id`. It opens no span. Under the subscriber [`init`] installs (without colours) the
//! line is formatted by hand straight into the writer's buffer, the same
//! line `fmt` would write, at a fraction of the cost; the filter's level
//! and target still decide whether it is written. Under any other subscriber it is an
//! ordinary event.
//!
//! Every HTTP request has an id ([`RequestId`]): its `x-request-id`
//! header when sane (at most [`MAX_REQUEST_ID_LEN`] visible ASCII
//! characters), else a new one. It is returned in the response's
//! `x-request-id`, written in the access line, and added (`request_id`)
//! to every other line logged on the request's task;
//! [`request_id()`](fn@request_id) reads it there.
//!
//! # Configuration
//!
//! - `logging.format` (`PLUME_LOG_FORMAT`): `text` (default), one
//!   human-readable line per event; or `json`, one JSON object per line
//!   with the event's fields at the top level (`timestamp`, `level`,
//!   `target`, `message` and the fields), for log shippers. Anything else
//!   stops the start with a message.
//! - `RUST_LOG`, or `logging.level` when `RUST_LOG` is not set: the
//!   filter, in [`EnvFilter`]'s syntax (`info` by default;
//!   `warn` turns the access log off, `info,plume::access=off` too).
//!
//! Lines are written when the [`LogGuard`] is dropped at the latest: keep
//! it alive until the program ends.
//!
//! # Example
//!
//! ```
//! use plume::logging::{self, LogFormat, LogOptions};
//!
//! let options = LogOptions { format: LogFormat::Json, ..LogOptions::default() };
//! // Into `sink()` here; `logging::init(&options)` would log to stderr
//! // for the whole process.
//! let (dispatch, guard) = logging::dispatch(&options, std::io::sink())?;
//! tracing::dispatcher::with_default(&dispatch, || tracing::info!("hello"));
//! drop(guard); // writes what is queued
//! # Ok::<(), plume::Error>(())
//! ```

use std::io::{IsTerminal as _, Write};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::Config;
use crate::{Error, Result};

mod access;
mod batch;
#[cfg(feature = "rest")]
mod layer;
mod request_id;

use access::AccessLines;
use batch::DroppedCount;
#[cfg(feature = "rest")]
pub use layer::{AccessLog, AccessLogFuture, AccessLogLayer};
use request_id::WithRequestId;
pub use request_id::{MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER, RequestId, current as request_id};

/// The target of the access log events (one per request).
pub const ACCESS_TARGET: &str = "plume::access";

/// The target of the "log lines dropped" reports.
pub const DROPS_TARGET: &str = "plume::logging";

/// How many formatted lines may wait for the writer by default. At a few
/// hundred bytes a line this bounds the buffer to a few MiB; at the request
/// rate one core serves (BENCHMARKS.md) it rides out a reader of stderr
/// that stalls for a fraction of a second.
pub const DEFAULT_BUFFERED_LINES: usize = 16_384;

/// How often dropped lines are reported by default (only when some were).
pub const DEFAULT_DROP_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The filter used when neither `RUST_LOG` nor `logging.level` is set.
pub const DEFAULT_FILTER: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (tracing-subscriber's `fmt`).
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(Error::general(format!(
                "logging.format (PLUME_LOG_FORMAT) must be \"text\" or \"json\", not \"{other}\""
            ))),
        }
    }
}

/// What [`init`] and [`dispatch`] set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// Which events are written, in [`EnvFilter`]'s syntax (`info`,
    /// `warn,plume=debug`, ...).
    pub filter: String,
    /// How many lines may wait for the writer; past that, lines are
    /// dropped and counted (at least 1).
    pub buffered_lines: usize,
    /// How often a count of dropped lines is logged, when it grew.
    pub drop_report_interval: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: DEFAULT_FILTER.to_owned(),
            buffered_lines: DEFAULT_BUFFERED_LINES,
            drop_report_interval: DEFAULT_DROP_REPORT_INTERVAL,
        }
    }
}

impl LogOptions {
    /// The options of a configuration: `logging.format` and
    /// `logging.level`, with `RUST_LOG` (when set and not empty) taking
    /// the level's place, as it always did. An unknown format, a filter
    /// that does not parse or a `logging` that is not an object is an
    /// error that names the key.
    pub fn from_config(config: &Config) -> Result<Self> {
        Self::from_config_and_rust_log(config, std::env::var("RUST_LOG").ok().as_deref())
    }

    /// [`from_config`](Self::from_config) with `RUST_LOG`'s value passed in
    /// (tests do not touch the process environment).
    pub fn from_config_and_rust_log(config: &Config, rust_log: Option<&str>) -> Result<Self> {
        let mut options = Self::default();
        let logging = match config.get("logging") {
            None | Some(Value::Null) => None,
            Some(Value::Object(logging)) => Some(logging),
            Some(other) => {
                return Err(Error::general(format!(
                    "logging must be an object such as {{\"format\": \"json\"}}, not {other}"
                )));
            }
        };
        let string = |key: &str| match logging.and_then(|l| l.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.as_str())),
            Some(other) => Err(Error::general(format!(
                "logging.{key} must be a string, not {other}"
            ))),
        };
        if let Some(format) = string("format")? {
            options.format = format.parse()?;
        }
        let level = string("level")?;
        match rust_log.filter(|filter| !filter.trim().is_empty()) {
            Some(filter) => {
                parse_filter(filter)
                    .map_err(|e| Error::general(format!("RUST_LOG='{filter}' {e}")))?;
                filter.clone_into(&mut options.filter);
            }
            None => {
                if let Some(level) = level {
                    parse_filter(level)
                        .map_err(|e| Error::general(format!("logging.level '{level}' {e}")))?;
                    level.clone_into(&mut options.filter);
                }
            }
        }
        Ok(options)
    }
}

/// Parses a filter, saying what is wrong without the value (the caller
/// names it).
fn parse_filter(filter: &str) -> std::result::Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(filter)
        .map_err(|e| format!("is not a log filter such as 'info' or 'warn,plume=debug': {e}"))
}

/// Installs the log subscriber of the process: `options` formatted onto
/// stderr through the background writer, with colours when stderr is a
/// terminal and `NO_COLOR` is not set. Records of the `log` crate are
/// forwarded too.
///
/// Keep the guard until the end: dropping it reports the last dropped
/// lines and writes what is queued (waiting a second at most).
pub fn init(options: &LogOptions) -> Result<LogGuard> {
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let (dispatch, guard) = build(options, std::io::stderr(), ansi)?;
    dispatch
        .try_init()
        .map_err(|e| Error::general(format!("cannot install the log subscriber: {e}")))?;
    Ok(guard)
}

/// A subscriber for `options` that writes to `writer` on a background
/// thread (without colours), for a scope
/// ([`tracing::dispatcher::with_default`]) or to install as the global
/// default. [`init`] is this with stderr, installed.
pub fn dispatch<W: Write + Send + 'static>(
    options: &LogOptions,
    writer: W,
) -> Result<(Dispatch, LogGuard)> {
    build(options, writer, false)
}

fn build<W: Write + Send + 'static>(
    options: &LogOptions,
    writer: W,
    ansi: bool,
) -> Result<(Dispatch, LogGuard)> {
    let filter = parse_filter(&options.filter)
        .map_err(|e| Error::general(format!("the log filter '{}' {e}", options.filter)))?;
    let (writer, worker) = batch::start(writer, options.buffered_lines)
        .map_err(|e| Error::general(format!("cannot start the log writer: {e}")))?;
    let dropped = writer.dropped();
    // Access lines are written by hand (see `access`), except in colour:
    // on a terminal, `fmt` writes them like every other line.
    let access = (!ansi).then(|| AccessLines::new(writer.clone(), options.format));
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter);
    // Every line logged while a request is handled carries its id.
    let dispatch = match options.format {
        LogFormat::Text => Dispatch::new(
            builder
                .with_ansi(ansi)
                .map_event_format(|format| WithRequestId::text(format.with_ansi(ansi)))
                .finish()
                .with(access),
        ),
        LogFormat::Json => Dispatch::new(
            builder
                .json()
                .flatten_event(true)
                .map_event_format(WithRequestId::json)
                .finish()
                .with(access),
        ),
    };
    let guard = LogGuard::start(
        dispatch.clone(),
        dropped,
        worker,
        options.drop_report_interval,
    )?;
    Ok((dispatch, guard))
}

/// Keeps the log writer alive and reports dropped lines; see the
/// [module documentation](self).
///
/// Dropping it stops the reports (logging one last count if lines were
/// dropped since the previous one) and writes the queued lines.
#[derive(Debug)]
pub struct LogGuard {
    dispatch: Dispatch,
    dropped: DroppedCount,
    reported: Arc<AtomicUsize>,
    // Dropping the sender wakes the reporter and ends it.
    stop: Option<mpsc::Sender<()>>,
    reporter: Option<JoinHandle<()>>,
    worker: Option<batch::Worker>,
}

impl LogGuard {
    fn start(
        dispatch: Dispatch,
        dropped: DroppedCount,
        worker: batch::Worker,
        interval: Duration,
    ) -> Result<Self> {
        let reported = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = mpsc::channel::<()>();
        let reporter = {
            let dispatch = dispatch.clone();
            let dropped = dropped.clone();
            let reported = Arc::clone(&reported);
            // A thread, not a task: logging starts before (and may outlive)
            // any runtime, and this thread sleeps almost always.
            std::thread::Builder::new()
                .name("plume-log-drops".to_owned())
                .spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        while let Err(mpsc::RecvTimeoutError::Timeout) =
                            stopped.recv_timeout(interval)
                        {
                            report_drops(&dropped, &reported);
                        }
                    });
                })
                .map_err(|e| Error::general(format!("cannot start the log reporter: {e}")))?
        };
        Ok(Self {
            dispatch,
            dropped,
            reported,
            stop: Some(stop),
            reporter: Some(reporter),
            worker: Some(worker),
        })
    }

    /// How many log lines were dropped so far because the writer could not
    /// keep up (the queue was full).
    pub fn dropped_lines(&self) -> usize {
        self.dropped.get()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(reporter) = self.reporter.take() {
            let _ = reporter.join();
        }
        tracing::dispatcher::with_default(&self.dispatch, || {
            report_drops(&self.dropped, &self.reported);
        });
        // Last: the worker writes everything queued before it stops.
        drop(self.worker.take());
    }
}

/// Logs how many lines were dropped since the last report, if any. The
/// report itself is never dropped (see `batch::beyond_limit`), so every
/// count reaches the log.
fn report_drops(dropped: &DroppedCount, reported: &AtomicUsize) {
    let total = dropped.get();
    let before = reported.swap(total, Ordering::Relaxed);
    if total > before {
        let lost = total - before;
        let lines = if lost == 1 { "line" } else { "lines" };
        batch::beyond_limit(|| {
            tracing::warn!(
                target: DROPS_TARGET,
                dropped = lost,
                total,
                "{lost} log {lines} dropped: the log writer could not keep up"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use serde_json::json;

    use super::*;

    /// A writer that blocks in `write` until its gate is opened (the
    /// sender dropped), then keeps what it is given.
    struct GatedWriter {
        gate: mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for GatedWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            // Returns once the sender is gone: the gate is open for good.
            while self.gate.recv().is_ok() {}
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn gated() -> (GatedWriter, mpsc::Sender<()>, Arc<Mutex<Vec<u8>>>) {
        let (open, gate) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let writer = GatedWriter {
            gate,
            written: Arc::clone(&written),
        };
        (writer, open, written)
    }

    fn text(written: &Mutex<Vec<u8>>) -> String {
        String::from_utf8(written.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_stuck_writer_blocks_no_caller_and_lost_lines_are_counted() {
        const QUEUE: usize = 8;
        const EVENTS: usize = 1_000;
        let (writer, open, written) = gated();
        let options = LogOptions {
            format: LogFormat::Json,
            buffered_lines: QUEUE,
            drop_report_interval: Duration::from_millis(20),
            ..LogOptions::default()
        };
        let (dispatch, guard) = dispatch(&options, writer).unwrap();
        // On a thread, so that a logging call that blocks fails the test
        // instead of hanging it.
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                for n in 0..EVENTS {
                    tracing::info!(target: ACCESS_TARGET, n, "request");
                }
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("logging blocked on a stuck writer");
        // At most QUEUE lines wait (the writer takes its first batch after
        // the burst); every other line was dropped and counted (the
        // reporter's own lines may add to both while the writer is stuck).
        let dropped = guard.dropped_lines();
        assert!(dropped >= EVENTS - QUEUE - 1, "{dropped}");
        assert!(text(&written).is_empty());

        drop(open);
        // Once the writer moves, the reporter says how many were lost.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !text(&written).contains("log lines dropped") {
            assert!(Instant::now() < deadline, "no report: {}", text(&written));
            std::thread::sleep(Duration::from_millis(10));
        }
        let guard_dropped_at_end = guard.dropped_lines();
        drop(guard);
        let out = text(&written);
        let lines: Vec<Value> = out
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let kept = lines
            .iter()
            .filter(|line| line["target"] == ACCESS_TARGET)
            .count();
        assert!((1..=QUEUE + 1).contains(&kept), "{kept} kept: {out}");
        // Each request line was either written or counted as dropped.
        assert!(
            kept + guard_dropped_at_end >= EVENTS,
            "{kept} + {guard_dropped_at_end}"
        );
        // The reporter may run during the burst too (a slow machine), so
        // the lines dropped may be told in several reports: each counts
        // those since the one before, and together they count them all.
        let reports: Vec<&Value> = lines
            .iter()
            .filter(|line| line["target"] == DROPS_TARGET)
            .collect();
        assert!(!reports.is_empty());
        assert!(reports.iter().all(|report| report["level"] == "WARN"));
        let reported: u64 = reports
            .iter()
            .map(|report| report["dropped"].as_u64().unwrap())
            .sum();
        assert!(reported >= (EVENTS - QUEUE - 1) as u64, "{reported}");
        assert_eq!(reported, guard_dropped_at_end as u64);
    }

    #[test]
    fn drops_are_reported_at_shutdown_and_nothing_queued_is_lost() {
        let (writer, open, written) = gated();
        let options = LogOptions {
            buffered_lines: 2,
            // Never during the test: only the report at shutdown.
            drop_report_interval: Duration::from_secs(3600),
            ..LogOptions::default()
        };
        let (dispatch, guard) = dispatch(&options, writer).unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            for n in 0..50 {
                tracing::info!(n, "burst");
            }
        });
        assert!(guard.dropped_lines() >= 47, "{}", guard.dropped_lines());
        drop(open);
        // Give the queue a moment to drain so the final report fits.
        std::thread::sleep(Duration::from_millis(100));
        drop(guard);
        let out = text(&written);
        assert!(out.contains("log lines dropped"), "{out}");
        assert!(out.lines().all(|line| !line.contains('\u{1b}')), "{out}");
    }

    #[test]
    fn the_text_format_writes_one_line_per_event() {
        let (writer, open, written) = gated();
        drop(open);
        let (dispatch, guard) = dispatch(&LogOptions::default(), writer).unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(
                target: ACCESS_TARGET,
                method = %"GET",
                path = %"/messages",
                status = 401_u16,
                latency_us = 12_u64,
            );
            tracing::debug!("filtered out at info");
        });
        drop(guard);
        let out = text(&written);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        for part in [
            "INFO",
            "plume::access",
            "method=GET",
            "path=/messages",
            "status=401",
            "latency_us=12",
        ] {
            assert!(lines[0].contains(part), "{part} in {out}");
        }
    }

    #[test]
    fn events_in_a_request_carry_its_id_in_both_formats() {
        for format in [LogFormat::Text, LogFormat::Json] {
            let (writer, open, written) = gated();
            drop(open);
            let options = LogOptions {
                format,
                ..LogOptions::default()
            };
            let (dispatch, guard) = dispatch(&options, writer).unwrap();
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!("outside");
                let mut id = RequestId::parse(b"req-\"42\"");
                let _entered = request_id::Entered::new(&mut id);
                tracing::warn!(user = 7, "inside");
            });
            drop(guard);
            let out = text(&written);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 2, "{out}");
            match format {
                LogFormat::Text => {
                    assert!(!lines[0].contains("request_id"), "{out}");
                    assert!(
                        lines[1].ends_with("inside user=7 request_id=req-\"42\""),
                        "{out}"
                    );
                }
                LogFormat::Json => {
                    let outside: Value = serde_json::from_str(lines[0]).unwrap();
                    assert!(outside.get("request_id").is_none(), "{out}");
                    let inside: Value = serde_json::from_str(lines[1]).unwrap();
                    assert_eq!(inside["request_id"], "req-\"42\"", "{out}");
                    assert_eq!(inside["message"], "inside", "{out}");
                    assert_eq!(inside["user"], 7, "{out}");
                }
            }
        }
    }

    fn config(values: Value) -> Config {
        let Value::Object(values) = values else {
            panic!("not an object: {values}")
        };
        Config::from_value("test", values)
    }

    #[test]
    fn options_come_from_the_configuration_and_rust_log() {
        let options = LogOptions::from_config_and_rust_log(&config(json!({})), None).unwrap();
        assert_eq!(options, LogOptions::default());
        assert_eq!(options.format, LogFormat::Text);
        assert_eq!(options.filter, "info");

        let configured = config(json!({"logging": {"format": "json", "level": "warn"}}));
        let options = LogOptions::from_config_and_rust_log(&configured, None).unwrap();
        assert_eq!(options.format, LogFormat::Json);
        assert_eq!(options.filter, "warn");
        let options =
            LogOptions::from_config_and_rust_log(&configured, Some("debug,hyper=off")).unwrap();
        assert_eq!(options.filter, "debug,hyper=off", "RUST_LOG wins");
        let options = LogOptions::from_config_and_rust_log(&configured, Some(" ")).unwrap();
        assert_eq!(options.filter, "warn", "an empty RUST_LOG is unset");
    }

    #[test]
    fn bad_logging_settings_say_what_to_fix() {
        let err = LogOptions::from_config_and_rust_log(
            &config(json!({"logging": {"format": "xml"}})),
            None,
        )
        .unwrap_err();
        assert!(err.message().contains("logging.format"), "{err}");
        assert!(err.message().contains("PLUME_LOG_FORMAT"), "{err}");
        assert!(err.message().contains("\"xml\""), "{err}");

        for (values, key) in [
            (json!({"logging": "json"}), "logging must be an object"),
            (
                json!({"logging": {"format": 1}}),
                "logging.format must be a string",
            ),
            (
                json!({"logging": {"level": "info=="}}),
                "logging.level 'info=='",
            ),
        ] {
            let err = LogOptions::from_config_and_rust_log(&config(values), None).unwrap_err();
            assert!(err.message().contains(key), "{err}");
        }
        let err = LogOptions::from_config_and_rust_log(&config(json!({})), Some("plume=loud"))
            .unwrap_err();
        assert!(err.message().contains("RUST_LOG='plume=loud'"), "{err}");
    }
}
