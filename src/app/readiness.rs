//! Readiness: whether every backing system the app depends on (its
//! database, a message bus) answers, what `GET /ready` reports.
//!
//! A store or a bus registers a [`ReadinessCheck`] with
//! [`App::add_readiness_check`]; [`App::readiness`] runs them all at once,
//! each bounded by its [`timeout`](ReadinessCheck::timeout), so a hung
//! database makes the app not ready instead of hanging the caller. Calls
//! that arrive while a run is in progress share its result: a flood of
//! `/ready` costs one run at a time, never one per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::App;
use crate::{Error, Result};

/// How long a check may take by default before it counts as failed.
pub const DEFAULT_READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// A backing system the app needs to serve: checked by `GET /ready`.
///
/// ```
/// use plume::{App, ReadinessCheck, Result, async_trait};
///
/// struct Upstream;
///
/// #[async_trait]
/// impl ReadinessCheck for Upstream {
///     fn name(&self) -> &str {
///         "upstream"
///     }
///     async fn check(&self) -> Result<()> {
///         // A cheap round trip to the system.
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let app = App::new();
/// app.add_readiness_check(Upstream);
/// assert!(app.readiness().await.is_ready());
/// # });
/// ```
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    /// A short name, shown in the `/ready` answer (`sqlite`, `redis`).
    fn name(&self) -> &str;

    /// `Ok` when the system answers. The error's message is shown to
    /// whoever calls `/ready`: say what failed, never a connection string,
    /// a password or a host (log those instead).
    async fn check(&self) -> Result<()>;

    /// How long [`check`](Self::check) may take before it counts as
    /// failed ([`DEFAULT_READINESS_TIMEOUT`] unless overridden).
    fn timeout(&self) -> Duration {
        DEFAULT_READINESS_TIMEOUT
    }
}

/// A check that did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// The check's [`name`](ReadinessCheck::name).
    pub name: String,
    /// Why: the check's error message, or that it timed out.
    pub reason: String,
}

/// What [`App::readiness`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    /// The name of every check run, in registration order.
    pub checked: Vec<String>,
    /// The checks that failed, in registration order.
    pub failures: Vec<CheckFailure>,
}

impl Readiness {
    /// True when every check passed (or there is none).
    pub fn is_ready(&self) -> bool {
        self.failures.is_empty()
    }

    /// The `/ready` answer: `{"status": "ready", "checks": [names]}`, or
    /// 503 Unavailable naming each failed check and why in
    /// `data.failed` (`[{"name", "reason"}]`).
    pub fn into_result(self) -> Result<Value> {
        if self.is_ready() {
            return Ok(json!({"status": "ready", "checks": self.checked}));
        }
        let names: Vec<&str> = self.failures.iter().map(|f| f.name.as_str()).collect();
        let message = format!("Not ready: {}", names.join(", "));
        let failed: Vec<Value> = self
            .failures
            .iter()
            .map(|f| json!({"name": f.name, "reason": f.reason}))
            .collect();
        Err(Error::unavailable(message).with_data(json!({ "failed": failed })))
    }
}

/// The registered checks and the last run.
#[derive(Default)]
pub(super) struct Checks {
    checks: std::sync::RwLock<Vec<Arc<dyn ReadinessCheck>>>,
    /// When the last run finished, and what it found.
    last: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
    /// Whether the last run found a failure, so that a change is logged
    /// once rather than on every call.
    failing: AtomicBool,
}

impl App {
    /// Registers a check that `GET /ready` (and [`readiness`](Self::readiness))
    /// runs: a store or a message bus registers one for its connection.
    pub fn add_readiness_check(&self, check: impl ReadinessCheck) -> &Self {
        self.add_arc_readiness_check(Arc::new(check))
    }

    /// [`add_readiness_check`](Self::add_readiness_check) for a shared
    /// check.
    pub fn add_arc_readiness_check(&self, check: Arc<dyn ReadinessCheck>) -> &Self {
        if let Ok(mut checks) = self.inner.readiness.checks.write() {
            checks.push(check);
        }
        self
    }

    /// Runs every readiness check at once, each within its timeout. A
    /// call made while a run is in progress waits for that run and shares
    /// its result.
    pub async fn readiness(&self) -> Readiness {
        let state = &self.inner.readiness;
        let arrived = Instant::now();
        let mut last = state.last.lock().await;
        if let Some((finished, report)) = &*last
            && *finished >= arrived
        {
            return report.clone();
        }
        let checks: Vec<Arc<dyn ReadinessCheck>> = state
            .checks
            .read()
            .map(|checks| checks.clone())
            .unwrap_or_default();
        let report = run(checks).await;
        let failing = !report.is_ready();
        if state.failing.swap(failing, Ordering::Relaxed) != failing {
            if failing {
                for failure in &report.failures {
                    tracing::warn!(
                        check = %failure.name,
                        reason = %failure.reason,
                        "not ready: a readiness check failed"
                    );
                }
            } else {
                tracing::info!("ready again: every readiness check passed");
            }
        }
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

/// Runs `checks` concurrently, each on a task of its own (a check that
/// blocks its thread or panics fails alone) and within its timeout.
async fn run(checks: Vec<Arc<dyn ReadinessCheck>>) -> Readiness {
    let tasks: Vec<(
        String,
        tokio::task::JoinHandle<std::result::Result<(), String>>,
    )> = checks
        .into_iter()
        .map(|check| {
            let name = check.name().to_owned();
            let task = tokio::spawn(async move {
                let timeout = check.timeout();
                match tokio::time::timeout(timeout, check.check()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(error.message().to_owned()),
                    Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
                }
            });
            (name, task)
        })
        .collect();
    let mut report = Readiness::default();
    for (name, task) in tasks {
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(_) => Err("the check failed unexpectedly".to_owned()),
        };
        if let Err(reason) = outcome {
            report.failures.push(CheckFailure {
                name: name.clone(),
                reason,
            });
        }
        report.checked.push(name);
    }
    report
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::ErrorKind;

    struct Fixed {
        name: &'static str,
        answer: Option<&'static str>,
        delay: Duration,
        runs: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl ReadinessCheck for Fixed {
        fn name(&self) -> &str {
            self.name
        }
        async fn check(&self) -> Result<()> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            match self.answer {
                None => Ok(()),
                Some(reason) => Err(Error::unavailable(reason)),
            }
        }
        fn timeout(&self) -> Duration {
            Duration::from_millis(200)
        }
    }

    fn fixed(name: &'static str, answer: Option<&'static str>, delay_ms: u64) -> Fixed {
        Fixed {
            name,
            answer,
            delay: Duration::from_millis(delay_ms),
            runs: Arc::default(),
        }
    }

    #[tokio::test]
    async fn failures_and_hangs_are_named_and_the_rest_pass() {
        let app = App::new();
        assert!(app.readiness().await.is_ready());
        app.add_readiness_check(fixed("db", None, 0))
            .add_readiness_check(fixed("bus", Some("connection refused"), 0))
            .add_readiness_check(fixed("slow", None, 10_000));
        let started = Instant::now();
        let report = app.readiness().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the hang is cut short"
        );
        assert_eq!(report.checked, ["db", "bus", "slow"]);
        assert_eq!(
            report.failures,
            [
                CheckFailure {
                    name: "bus".into(),
                    reason: "connection refused".into()
                },
                CheckFailure {
                    name: "slow".into(),
                    reason: "no answer within 200 ms".into()
                },
            ]
        );
        let error = report.into_result().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(error.message(), "Not ready: bus, slow");
        assert_eq!(error.data().unwrap()["failed"][1]["name"], "slow");
    }

    #[tokio::test]
    async fn concurrent_calls_share_one_run_and_later_ones_run_again() {
        let app = App::new();
        let check = fixed("db", None, 50);
        let runs = Arc::clone(&check.runs);
        app.add_readiness_check(check);
        let (a, b, c) = tokio::join!(app.readiness(), app.readiness(), app.readiness());
        assert!(a.is_ready() && b.is_ready() && c.is_ready());
        // The first runs; the two waiting behind it share its result.
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        app.readiness().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
