//! Prometheus metrics of an app: what the REST and socket.io transports
//! answered, how long it took, logins, open real-time connections and
//! published events, rendered in Prometheus' text exposition format
//! ([`App::metrics_text`], served at `GET /metrics`).
//!
//! Hand-rolled on atomics rather than a metrics crate. Every label set is
//! known when a service is registered (its path, its methods), so each
//! series lives beside its service and a request finds its counters
//! through the route lookup it already did: no map, no lock and no
//! allocation per request. `prometheus-client` keeps a family's series in
//! a locked hash map keyed by the label set (a hash, a lock and, for
//! string labels, a key to build on every request) and its histogram
//! locks on every observation; `metrics` records through one global
//! recorder, while every [`App`] here (tests start many in one process)
//! must count alone. The text format is a few lines of code.
//!
//! Label values are bounded by construction, so a flood of random paths
//! or methods cannot grow memory: `service` is a registered service's
//! path or `(none)` (a request no service takes), `method` a standard
//! method, a custom method the service declared, or `(none)`, `status` a
//! number, `transport` `rest` or `socketio`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::{App, Method};

/// The label of a request no service takes, or of a method the service
/// does not declare.
pub const NONE_LABEL: &str = "(none)";

/// The transport a call came over: a label of the request series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP requests (the REST transport).
    Rest,
    /// Calls over socket.io.
    SocketIo,
}

impl Transport {
    const ALL: [Self; 2] = [Self::Rest, Self::SocketIo];

    fn label(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::SocketIo => "socketio",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Rest => 0,
            Self::SocketIo => 1,
        }
    }
}

/// Upper bounds of the latency histogram's buckets, in microseconds
/// (0.5 ms to 10 s: a cached `get` to a query stopped by its budget).
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// The statuses one series keeps without a lock. A series sees a handful
/// (200, 201, 400, 401, 404, ...); more go to a locked list.
const STATUS_CELLS: usize = 16;

/// A cell packs a status (high 16 bits) and its count (low 48 bits: at a
/// million requests a second, nine years).
const COUNT_BITS: u32 = 48;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// The counters of one (service, method, transport): answers by status
/// and the latency histogram.
#[derive(Default)]
struct CallStats {
    statuses: [AtomicU64; STATUS_CELLS],
    /// Statuses past the cells, rarely used.
    more_statuses: Mutex<Vec<(u16, u64)>>,
    /// Not cumulative: each observation counts in its first bucket only.
    buckets: [AtomicU64; BUCKETS_US.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl CallStats {
    fn record(&self, status: u16, latency: Duration) {
        self.count_status(status);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = BUCKETS_US.iter().position(|&le| us <= le) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn count_status(&self, status: u16) {
        let tag = u64::from(status) << COUNT_BITS;
        for cell in &self.statuses {
            let mut current = cell.load(Ordering::Relaxed);
            if current == 0 {
                // Claim the free cell; another thread may claim it first,
                // for this status or another.
                match cell.compare_exchange(0, tag | 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return,
                    Err(now) => current = now,
                }
            }
            if current & !COUNT_MASK == tag {
                cell.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut more) = self.more_statuses.lock() {
            match more.iter_mut().find(|(known, _)| *known == status) {
                Some((_, count)) => *count += 1,
                None => more.push((status, 1)),
            }
        }
    }

    /// Each status seen and its count, by status.
    fn statuses(&self) -> Vec<(u16, u64)> {
        let mut all: Vec<(u16, u64)> = self
            .statuses
            .iter()
            .map(|cell| cell.load(Ordering::Relaxed))
            .filter(|&cell| cell != 0)
            .map(|cell| {
                let status = u16::try_from(cell >> COUNT_BITS).unwrap_or(u16::MAX);
                (status, cell & COUNT_MASK)
            })
            .collect();
        if let Ok(more) = self.more_statuses.lock() {
            all.extend(more.iter().copied());
        }
        all.sort_unstable();
        all
    }
}

/// The request counters of one service (or of requests no service takes):
/// a series per method it may be called with and per transport, made on
/// first use.
pub(crate) struct ServiceMetrics {
    service: Arc<str>,
    /// The standard methods, the declared custom ones, then `(none)`.
    methods: Vec<Arc<str>>,
    /// `methods.len()` series per transport.
    series: Box<[OnceLock<Box<CallStats>>]>,
    events: AtomicU64,
}

const STANDARD: [Method; 6] = [
    Method::Find,
    Method::Get,
    Method::Create,
    Method::Update,
    Method::Patch,
    Method::Remove,
];

impl ServiceMetrics {
    /// The metrics of the service at `path` with its declared `custom`
    /// methods.
    pub(crate) fn new(path: &str, custom: &[Arc<str>]) -> Self {
        let methods: Vec<Arc<str>> = STANDARD
            .iter()
            .map(|method| Arc::from(method.as_str()))
            .chain(custom.iter().cloned())
            .chain(std::iter::once(Arc::from(NONE_LABEL)))
            .collect();
        let series = (0..methods.len() * Transport::ALL.len())
            .map(|_| OnceLock::new())
            .collect();
        Self {
            service: Arc::from(path),
            methods,
            series,
            events: AtomicU64::new(0),
        }
    }

    /// The metrics of requests no service takes.
    pub(crate) fn unrouted() -> Self {
        Self::new(NONE_LABEL, &[])
    }

    /// Counts one answer with `status` after `latency` to a call of
    /// `method` (`None`: not a method the service has) over `transport`.
    pub(crate) fn record(
        &self,
        method: Option<&Method>,
        transport: Transport,
        status: u16,
        latency: Duration,
    ) {
        self.series[self.index_of(method, transport)]
            .get_or_init(Box::default)
            .record(status, latency);
    }

    fn index_of(&self, method: Option<&Method>, transport: Transport) -> usize {
        let none = self.methods.len() - 1;
        let at = match method {
            Some(Method::Find) => 0,
            Some(Method::Get) => 1,
            Some(Method::Create) => 2,
            Some(Method::Update) => 3,
            Some(Method::Patch) => 4,
            Some(Method::Remove) => 5,
            Some(Method::Custom(name)) => self.methods[STANDARD.len()..none]
                .iter()
                .position(|custom| custom == name)
                .map_or(none, |at| STANDARD.len() + at),
            None => none,
        };
        transport.index() * self.methods.len() + at
    }

    /// Counts one service event handed to the publishers.
    pub(crate) fn event_published(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// Each series used so far: its labels and counters.
    fn used(&self) -> impl Iterator<Item = (Transport, &str, &CallStats)> {
        self.series.iter().enumerate().filter_map(|(index, slot)| {
            let stats = slot.get()?;
            let transport = Transport::ALL[index / self.methods.len()];
            Some((
                transport,
                &*self.methods[index % self.methods.len()],
                &**stats,
            ))
        })
    }
}

/// The app-wide counters: logins and requests no service takes.
pub(crate) struct AppMetrics {
    pub(crate) unrouted: ServiceMetrics,
    logins: AtomicU64,
    login_failures: AtomicU64,
    logins_throttled: AtomicU64,
    /// The counts of the bus to other instances, once the app joined one.
    pub(crate) bus: std::sync::OnceLock<Arc<BusStats>>,
}

/// Counts of the traffic on the bus between an app's instances
/// (`cluster::RedisBus`).
#[derive(Debug, Default)]
pub struct BusStats {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

impl BusStats {
    /// Events this instance published to the others.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Events of other instances this one delivered to its channels.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Events of this instance the others never got (the bus unreachable,
    /// or its outbox full).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// How a login attempt ended, for the login counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    Succeeded,
    /// Refused: wrong credentials (NotAuthenticated).
    Failed,
    /// Refused by the throttle before any password was checked.
    Throttled,
}

impl Default for AppMetrics {
    fn default() -> Self {
        Self {
            unrouted: ServiceMetrics::unrouted(),
            logins: AtomicU64::new(0),
            login_failures: AtomicU64::new(0),
            logins_throttled: AtomicU64::new(0),
            bus: std::sync::OnceLock::new(),
        }
    }
}

impl AppMetrics {
    pub(crate) fn login(&self, outcome: Login) {
        let counter = match outcome {
            Login::Succeeded => &self.logins,
            Login::Failed => &self.login_failures,
            Login::Throttled => &self.logins_throttled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The content type of [`App::metrics_text`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl App {
    /// The app's metrics in Prometheus' text exposition format (version
    /// 0.0.4): what `GET /metrics` serves. See the [module
    /// documentation](self) for the labels.
    ///
    /// - `plume_requests_total{transport, service, method, status}`
    ///   (counter): requests answered; over socket.io, status is 200 for
    ///   an answer and the error's code otherwise.
    /// - `plume_request_duration_seconds{transport, service, method}`
    ///   (histogram): time to the answer.
    /// - `plume_logins_total`, `plume_login_failures_total`,
    ///   `plume_logins_throttled_total` (counters): logins through the
    ///   authentication service's `create`: succeeded, refused
    ///   (NotAuthenticated), refused by the login throttle.
    /// - `plume_socket_connections` (gauge): open real-time connections.
    /// - `plume_socket_slow_dropped_total` (counter): connections dropped
    ///   for reading too slowly.
    /// - `plume_events_published_total{service}` (counter): service events
    ///   handed to the publishers.
    /// - `plume_bus_events_published_total`, `plume_bus_events_received_total`,
    ///   `plume_bus_events_dropped_total` (counters), once the app joined
    ///   other instances (`cluster::RedisBus`): its events sent to them,
    ///   theirs delivered here, and its events they never got.
    pub fn metrics_text(&self) -> String {
        let app = self.metrics();
        let services = self.service_metrics();
        let all: Vec<&ServiceMetrics> = services
            .iter()
            .map(|metrics| &**metrics)
            .chain(std::iter::once(&app.unrouted))
            .collect();
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "plume_requests_total",
            "counter",
            "Requests answered, by transport, service, method and status.",
        );
        for metrics in &all {
            for (transport, method, stats) in metrics.used() {
                for (status, count) in stats.statuses() {
                    let _ = writeln!(
                        out,
                        "plume_requests_total{{transport=\"{}\",service=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                        transport.label(),
                        Escaped(&metrics.service),
                        Escaped(method),
                    );
                }
            }
        }
        header(
            &mut out,
            "plume_request_duration_seconds",
            "histogram",
            "Time from a request to its answer, by transport, service and method.",
        );
        for metrics in &all {
            for (transport, method, stats) in metrics.used() {
                let labels = format!(
                    "transport=\"{}\",service=\"{}\",method=\"{}\"",
                    transport.label(),
                    Escaped(&metrics.service),
                    Escaped(method),
                );
                let mut cumulative = 0;
                for (le, bucket) in BUCKETS_US.iter().zip(&stats.buckets) {
                    cumulative += bucket.load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "plume_request_duration_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}",
                        Seconds(*le)
                    );
                }
                let count = stats.count.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "plume_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
                );
                let _ = writeln!(
                    out,
                    "plume_request_duration_seconds_sum{{{labels}}} {}",
                    Seconds(stats.sum_us.load(Ordering::Relaxed))
                );
                let _ = writeln!(
                    out,
                    "plume_request_duration_seconds_count{{{labels}}} {count}"
                );
            }
        }
        for (name, help, counter) in [
            ("plume_logins_total", "Successful logins.", &app.logins),
            (
                "plume_login_failures_total",
                "Logins refused for wrong credentials.",
                &app.login_failures,
            ),
            (
                "plume_logins_throttled_total",
                "Logins refused by the login throttle.",
                &app.logins_throttled,
            ),
        ] {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        header(
            &mut out,
            "plume_socket_connections",
            "gauge",
            "Open real-time (socket.io) connections.",
        );
        let _ = writeln!(out, "plume_socket_connections {}", self.open_connections());
        header(
            &mut out,
            "plume_socket_slow_dropped_total",
            "counter",
            "Real-time connections dropped for reading too slowly.",
        );
        let _ = writeln!(
            out,
            "plume_socket_slow_dropped_total {}",
            self.slow_connections_dropped()
        );
        header(
            &mut out,
            "plume_events_published_total",
            "counter",
            "Service events handed to the publishers, by service.",
        );
        for metrics in &services {
            let _ = writeln!(
                out,
                "plume_events_published_total{{service=\"{}\"}} {}",
                Escaped(&metrics.service),
                metrics.events.load(Ordering::Relaxed)
            );
        }
        if let Some(bus) = app.bus.get() {
            for (name, help, value) in [
                (
                    "plume_bus_events_published_total",
                    "Service events sent to the other instances.",
                    bus.published(),
                ),
                (
                    "plume_bus_events_received_total",
                    "Service events of other instances delivered here.",
                    bus.received(),
                ),
                (
                    "plume_bus_events_dropped_total",
                    "Service events the other instances never got.",
                    bus.dropped(),
                ),
            ] {
                header(&mut out, name, "counter", help);
                let _ = writeln!(out, "{name} {value}");
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped, as the format wants.
/// Service paths and method names hold none of them; this keeps the
/// output well-formed whatever they become.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Microseconds written as seconds, exactly (`0.0005`, `2.5`, `10`).
struct Seconds(u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, micros) = (self.0 / 1_000_000, self.0 % 1_000_000);
        if micros == 0 {
            return write!(f, "{whole}");
        }
        let fraction = format!("{micros:06}");
        write!(f, "{whole}.{}", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_past_the_lock_free_cells() {
        let stats = CallStats::default();
        for status in 100..140_u16 {
            for _ in 0..=(status - 100) % 3 {
                stats.record(status, Duration::from_micros(700));
            }
        }
        let statuses = stats.statuses();
        assert_eq!(statuses.len(), 40);
        assert_eq!(statuses[0], (100, 1));
        assert_eq!(statuses[2], (102, 3));
        assert_eq!(statuses[39], (139, 1));
        assert_eq!(stats.count.load(Ordering::Relaxed), 79);
        // 700 µs lands in the 1 ms bucket.
        assert_eq!(stats.buckets[1].load(Ordering::Relaxed), 79);
    }

    #[test]
    fn seconds_are_written_exactly() {
        let text: Vec<String> = [500, 1_000, 2_500, 1_000_000, 2_500_000, 0, 1]
            .iter()
            .map(|&us| Seconds(us).to_string())
            .collect();
        assert_eq!(
            text,
            ["0.0005", "0.001", "0.0025", "1", "2.5", "0", "0.000001"]
        );
    }

    #[test]
    fn only_declared_methods_get_a_series_of_their_own() {
        let metrics = ServiceMetrics::new("todos", &[Arc::from("archive")]);
        let archive = Method::parse("archive");
        let other = Method::parse("random");
        let index = |method: Option<&Method>, transport| metrics.index_of(method, transport);
        assert_eq!(index(Some(&Method::Find), Transport::Rest), 0);
        assert_eq!(index(Some(&archive), Transport::Rest), 6);
        assert_eq!(index(Some(&other), Transport::Rest), 7);
        assert_eq!(index(None, Transport::Rest), 7);
        assert_eq!(index(Some(&Method::Get), Transport::SocketIo), 9);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(Escaped("a\"b\\c\nd").to_string(), "a\\\"b\\\\c\\nd");
    }
}
