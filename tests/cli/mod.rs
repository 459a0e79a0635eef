//! The `plume` binary: `plume secret`, and refusing bad configuration with
//! a message and a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

mod cluster;
mod feathers_config;
mod logging;
mod secret;
mod user;

fn plume() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plume"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PLUME_ENV")
        .env_remove("AUTH_SECRET")
        .env_remove("PORT")
        .env_remove("HOST")
        .env_remove("SQLITE_FILE")
        .env("NO_COLOR", "1");
    command
}

#[test]
fn secret_prints_64_random_bytes_in_base64() {
    let first = plume().arg("secret").output().unwrap();
    let second = plume().arg("secret").output().unwrap();
    assert!(first.status.success());
    let a = String::from_utf8(first.stdout).unwrap();
    let b = String::from_utf8(second.stdout).unwrap();
    assert_eq!(a.trim().len(), 88, "{a}");
    assert_ne!(a, b);
}

#[test]
fn production_without_a_secret_and_no_database_folder_says_so() {
    // A start that cannot store its generated secret stops with the path.
    let mut command = plume();
    command
        .args(["--port", "0"])
        .env("PLUME_ENV", "production")
        .env("SQLITE_FILE", "/proc/plume-no-such-dir/db.sqlite");
    let output = output_within(command, Duration::from_secs(20));
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(log.contains("/proc/plume-no-such-dir"), "{log}");
}

/// Issue 10, point 8: a configured secret that is written in the
/// repository stops the start, in development too, naming the key and
/// `plume secret`.
#[test]
fn a_published_secret_refuses_to_start() {
    let dir = TempDir::new("published");
    for (env, secret) in [
        (None, plume::config::DEVELOPMENT_SECRET),
        (None, plume::auth::secret::TEST_SECRET),
        (Some("production"), plume::auth::secret::TEST_SECRET),
    ] {
        let mut command = plume();
        command
            .args(["--port", "0"])
            .env("AUTH_SECRET", secret)
            .env("SQLITE_FILE", dir.path().join("db.sqlite"));
        if let Some(env) = env {
            command.env("PLUME_ENV", env);
        }
        let output = output_within(command, Duration::from_secs(20));
        assert!(!output.status.success(), "started with {secret}");
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(log.contains("authentication.secret"), "{log}");
        assert!(log.contains("plume secret"), "{log}");
    }
}

#[test]
fn a_bad_port_variable_refuses_to_start() {
    let output = plume().env("PORT", "eighty").output().unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("PORT='eighty' must be a number"), "{log}");
}

#[test]
fn a_missing_config_folder_refuses_to_start() {
    let output = plume()
        .args(["--config", "no-such-folder"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("no-such-folder"), "{log}");
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut child = plume()
        .args(["serve", "--port", "0"])
        .env("PLUME_ENV", "test")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log goes to stderr; wait for the address.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let listening = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => break true,
            Some(Ok(_)) if started.elapsed() < Duration::from_secs(20) => continue,
            _ => break false,
        }
    };
    assert!(listening, "the server did not start");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}

/// A throwaway folder under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("plume-cli-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `command` to its end, killing it after `limit` (a start that
/// should have been refused would otherwise serve forever).
pub(crate) fn output_within(mut command: Command, limit: Duration) -> Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A `plume` server running as a child process, stopped with SIGTERM on
/// drop.
pub(crate) struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// The log lines written before the server listened.
    pub(crate) startup_log: Vec<String>,
    /// The log lines after the start-up line, as they are written.
    log: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Starts `plume serve --port 0` with `SQLITE_FILE=database` and
    /// `PLUME_ENV` unset (development, as a newcomer starts it).
    pub(crate) fn start(database: &Path) -> Self {
        Self::start_with(database, &[])
    }

    /// [`start`](Self::start) with more environment variables.
    pub(crate) fn start_with(database: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = plume();
        command
            .args(["serve", "--port", "0"])
            .env("SQLITE_FILE", database)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Runs `command` (a `plume` that serves) and waits for its start-up
    /// line.
    pub(crate) fn spawn(mut command: Command) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        // Keeps draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    // The test stopped listening; drop the rest.
                }
            }
        });
        let mut startup_log = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = lines_rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the server did not start: {startup_log:?}"));
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                // The URL ends at a space, a colour code or a JSON quote.
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '\u{1b}' || c == '"')
                    .unwrap_or(rest.len());
                break rest[..end].to_owned();
            }
            startup_log.push(line);
        };
        Self {
            child,
            url,
            startup_log,
            log: lines_rx,
        }
    }

    /// Stops the server with SIGTERM, waits for its exit and returns the
    /// log lines written after the start-up line.
    pub(crate) fn stop(mut self) -> Vec<String> {
        self.terminate();
        // The reader ends at the end of stderr, which follows the exit.
        let mut log = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(10)) {
            log.push(line);
        }
        log
    }

    /// Kills the server with SIGKILL (no chance to finish anything) and
    /// waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// Signs up `email` over HTTP and logs in; returns the user's id and the
/// access token.
pub(crate) async fn sign_up_and_log_in(url: &str, email: &str, password: &str) -> (Value, String) {
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{url}/users"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let user: Value = created.json().await.unwrap();
    (user["id"].clone(), log_in(url, email, password).await)
}

/// Logs in with the local strategy; returns the access token.
pub(crate) async fn log_in(url: &str, email: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{url}/authentication"))
        .json(&json!({"strategy": "local", "email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let body: Value = response.json().await.unwrap();
    body["accessToken"].as_str().unwrap().to_owned()
}
