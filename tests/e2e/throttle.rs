//! Login throttling over HTTP on the default app: with the shipped
//! configuration, ten failed logins for one email make the eleventh
//! attempt 429 TooManyRequests with a `Retry-After` header, even with the
//! right password, while other accounts log in as before; and (with a
//! smaller limit from a configuration override) a successful login resets
//! the account's count. Under concurrency (issue 10, points 4 and 7):
//! attempts are reserved before the password is verified, over-long login
//! names never reach the throttle, and sign-ups neither starve logins nor
//! run without a limit per address.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use plume::App;
use plume::auth::AuthenticationService;
use plume::config::{Config, merge};
use plume::store::SqliteStore;
use serde_json::{Value, json};

use super::support::{PASSWORD, account, assert_error, login, server, server_with};
use crate::support::TestServer;

/// Taken by the heavy tests below (floods, 1 MB bodies), so that they do
/// not run at the same time: each would slow the others' timed logins.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Like [`server_with`], also returning the app, so a test can look at the
/// login throttle from the inside.
async fn server_and_app(overrides: Value) -> (TestServer, App) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let loaded = Config::load_with(&dir, "test", |_| None).unwrap();
    let mut values = loaded.values().clone();
    if let Value::Object(overrides) = overrides {
        merge(&mut values, overrides);
    }
    let config = Config::from_value("test", values);
    let store = SqliteStore::open(":memory:").await.unwrap();
    let app = crate::default_app::build_with_store(&config, &store).unwrap();
    (TestServer::start(app.clone()).await, app)
}

/// `POST /authentication` (local) returning the status, the `Retry-After`
/// header and the body.
async fn attempt(server: &TestServer, email: &str, password: &str) -> (u16, Option<u64>, Value) {
    let response = server
        .client
        .post(server.url("/authentication"))
        .json(&json!({"strategy": "local", "email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body: Value = response.json().await.unwrap();
    (status, retry_after, body)
}

fn assert_throttled(answer: &(u16, Option<u64>, Value)) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 429, "{body}");
    assert_error(body, "TooManyRequests", 429);
    assert!(body.get("accessToken").is_none(), "{body}");
    let seconds = retry_after.unwrap_or_else(|| panic!("no Retry-After: {body}"));
    assert!(
        (1..=15 * 60).contains(&seconds),
        "within the 15 minute window: {seconds}"
    );
    assert_eq!(body["data"]["retryAfter"], json!(seconds), "{body}");
}

fn assert_refused(answer: &(u16, Option<u64>, Value), attempt: usize) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 401, "attempt {attempt}: {body}");
    assert_eq!(body["message"], json!("Invalid login"), "attempt {attempt}");
    assert_eq!(*retry_after, None, "attempt {attempt}");
}

#[tokio::test]
async fn the_eleventh_failed_login_for_an_email_is_429() {
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let bob = account(&server, "bob@example.com").await;
    for i in 1..=10 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    assert_throttled(&attempt(&server, &ada.email, "guess").await);
    // Locked means locked: the right password is not even checked.
    assert_throttled(&attempt(&server, &ada.email, PASSWORD).await);
    // The count is per account whatever the case of the email.
    assert_throttled(&attempt(&server, "ADA@example.com", PASSWORD).await);

    // Another account is unaffected: its failures are 401, its login works.
    assert_refused(&attempt(&server, &bob.email, "guess").await, 1);
    let (status, _, body) = attempt(&server, &bob.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    // So is an email nobody has.
    assert_refused(&attempt(&server, "nobody@example.com", "guess").await, 1);

    // Ada's token from before the lock still works: only logins are
    // throttled.
    let (status, page) = server
        .send(
            server
                .client
                .get(server.url("/messages"))
                .bearer_auth(&ada.token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
}

#[tokio::test]
async fn a_successful_login_resets_the_accounts_count() {
    let server = server_with(json!({"authentication": {"throttle": {"maxPerUsername": 3}}})).await;
    let ada = account(&server, "ada@example.com").await;
    for i in 1..=2 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    let (status, _, body) = attempt(&server, &ada.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    // Three more failures are allowed again, not one.
    for i in 1..=3 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    assert_throttled(&attempt(&server, &ada.email, PASSWORD).await);
}

#[tokio::test]
async fn the_throttle_can_be_switched_off_in_the_configuration() {
    let server = server_with(json!({"authentication": {"throttle": false}})).await;
    let ada = account(&server, "ada@example.com").await;
    for i in 1..=12 {
        assert_refused(&attempt(&server, &ada.email, "guess").await, i);
    }
    let (status, body) = login(&server, &ada.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
}

/// How many answers had each status.
fn count(answers: &[(u16, Option<u64>, Value)], status: u16) -> usize {
    answers.iter().filter(|a| a.0 == status).count()
}

#[tokio::test]
async fn of_200_concurrent_logins_on_one_account_at_most_the_limit_are_evaluated() {
    let _heavy = HEAVY.lock().await;
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let bob = account(&server, "bob@example.com").await;
    let flood = join_all((0..150).map(|_| attempt(&server, &ada.email, "guess")));
    let after_the_limit = async {
        // Probe (each probe is one more concurrent attempt) until the
        // account is at its limit; only then send the right password,
        // amid more wrong ones.
        let mut probes = Vec::new();
        loop {
            let answer = attempt(&server, &ada.email, "guess").await;
            let limited = answer.0 == 429;
            probes.push(answer);
            if limited {
                break;
            }
        }
        let right = attempt(&server, &ada.email, PASSWORD);
        let more = join_all((0..49).map(|_| attempt(&server, &ada.email, "guess")));
        let (right, more) = tokio::join!(right, more);
        (probes, right, more)
    };
    let (flood, (probes, right, more)) = tokio::join!(flood, after_the_limit);
    let mut answers = flood;
    answers.extend(probes);
    answers.extend(more);
    assert!(answers.len() >= 200);
    // At most ten passwords were verified: ten 401s (all wrong), and every
    // other attempt was refused at once with Retry-After.
    assert_eq!(count(&answers, 401), 10, "evaluated");
    for (i, answer) in answers.iter().enumerate() {
        if answer.0 == 401 {
            assert_refused(answer, i);
        } else {
            assert_throttled(answer);
        }
    }
    // The right password came after the limit: refused, not logged in.
    assert_throttled(&right);
    // The address has its ten failures, below its own limit of 50: other
    // accounts log in from it.
    let (status, body) = login(&server, &bob.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
}

/// The peak and current resident memory of this process in KiB
/// (`VmHWM`, `VmRSS`), where Linux reports them.
fn memory_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

#[tokio::test]
async fn over_long_login_names_are_refused_before_the_throttle_and_take_no_memory() {
    let _heavy = HEAVY.lock().await;
    let (server, app) = server_and_app(json!({})).await;
    let ada = account(&server, "ada@example.com").await;
    let auth = AuthenticationService::from_app(&app, None).unwrap();
    let throttle = || auth.throttle().tracked_bytes();
    let before = memory_kib();
    let bytes_before = throttle();
    // Logins with 1 MB login names (the issue sent 300; 40 keep this test
    // short, and the throttle's cap is shown in its unit tests), four at a
    // time.
    let huge = format!("{}@example.com", "x".repeat(1_000_000 - 12));
    let started = Instant::now();
    for round in 0..10 {
        let answers = join_all((0..4).map(|i| {
            let name = format!("{round}-{i}{huge}");
            let server = &server;
            async move { attempt(server, &name, "guess").await }
        }))
        .await;
        for (i, answer) in answers.iter().enumerate() {
            assert_refused(answer, round * 4 + i);
        }
    }
    let after = memory_kib();
    // Nothing was tracked: not the names, not even the address.
    assert_eq!(throttle(), bytes_before);
    // So the address was not charged 40 failures (its limit is 50): the
    // next ten wrong logins from it are still evaluated.
    for i in 0..10 {
        assert_refused(
            &attempt(&server, &format!("nobody{i}@example.com"), "guess").await,
            i,
        );
    }
    let (status, body) = login(&server, &ada.email, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    // A name at the limit counts against its account as usual.
    let entries = auth.throttle().tracked_entries();
    let at_limit = format!("{}@example.com", "y".repeat(256 - 12));
    assert_refused(&attempt(&server, &at_limit, "guess").await, 0);
    assert_eq!(auth.throttle().tracked_entries(), entries + 1);
    if let (Some((hwm0, rss0)), Some((hwm1, rss1))) = (before, after) {
        // A report, not an assertion: other tests share this process.
        println!(
            "40 logins with 1 MB names in {:?}: VmHWM {hwm0} -> {hwm1} KiB, VmRSS {rss0} -> {rss1} KiB",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn the_login_name_limit_is_a_local_strategy_setting() {
    let server = server_with(json!({"authentication": {"local": {"maxUsernameLength": 20}}})).await;
    // 21 bytes: signs up (the users service does not know the setting) but
    // cannot log in, even with the right password.
    let email = "ada-lovelace@cam.org";
    let long = "ada-lovelace1@cam.org";
    let _ = account(&server, email).await;
    let (status, _, body) = sign_up_from(&server, &server.client, long).await;
    assert_eq!(status, 201, "{body}");
    assert_refused(&attempt(&server, long, PASSWORD).await, 0);
}

/// `POST /users` from `client`.
async fn sign_up_from(
    server: &TestServer,
    client: &reqwest::Client,
    email: &str,
) -> (u16, Option<u64>, Value) {
    let response = client
        .post(server.url("/users"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (status, retry_after, response.json().await.unwrap())
}

/// A login that must answer within a second (the generous bound)
/// while sign-ups flood the server; started once the flood is on its way.
async fn timed_login(server: &TestServer, email: &str) -> Duration {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let (status, body) = login(server, email, PASSWORD).await;
    let took = started.elapsed();
    assert_eq!(status, 201, "{body}");
    took
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited_and_do_not_delay_a_login() {
    let _heavy = HEAVY.lock().await;
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let flood = join_all((0..150).map(|i| {
        let (server, email) = (&server, format!("flood{i}@example.com"));
        async move { sign_up_from(server, &server.client, &email).await }
    }));
    let (answers, took) = tokio::join!(flood, timed_login(&server, &ada.email));
    assert!(took < Duration::from_secs(1), "the login took {took:?}");
    let created = count(&answers, 201);
    let limited = count(&answers, 429);
    assert_eq!(created + limited, 150, "{answers:?}");
    // Loopback is one address: beyond the two hashes it may have in
    // progress, its sign-ups are refused at once.
    assert!(
        limited > 0 && created >= 2,
        "{created} created, {limited} refused"
    );
    for (status, retry_after, body) in &answers {
        if *status == 429 {
            assert_error(body, "TooManyRequests", 429);
            assert_eq!(*retry_after, Some(1), "{body}");
            assert_eq!(body["data"]["retryAfter"], json!(1), "{body}");
        }
    }
    // Once the flood is over, the address signs up again.
    let (status, _, body) = sign_up_from(&server, &server.client, "later@example.com").await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn sign_ups_from_many_addresses_do_not_delay_a_login() {
    // All of 127.0.0.0/8 is loopback on Linux, so each client below
    // connects from its own address; elsewhere only 127.0.0.1 is certain.
    if !cfg!(target_os = "linux") {
        return;
    }
    let _heavy = HEAVY.lock().await;
    let server = server().await;
    let ada = account(&server, "ada@example.com").await;
    let clients: Vec<reqwest::Client> = (0..75u8)
        .map(|n| {
            reqwest::Client::builder()
                .local_address(IpAddr::from([127, 0, 1, n + 1]))
                .build()
                .unwrap()
        })
        .collect();
    // Two sign-ups from each of 75 addresses: within every address's
    // limit, so all 150 hashes queue at once.
    let flood = join_all((0..150).map(|i| {
        let (server, client) = (&server, &clients[i % 75]);
        let email = format!("many{i}@example.com");
        async move {
            let answer = sign_up_from(server, client, &email).await;
            (answer, Instant::now())
        }
    }));
    let login = async {
        let took = timed_login(&server, &ada.email).await;
        (took, Instant::now())
    };
    let (answers, (took, logged_in)) = tokio::join!(flood, login);
    assert!(took < Duration::from_secs(1), "the login took {took:?}");
    let (answers, finished): (Vec<_>, Vec<_>) = answers.into_iter().unzip();
    assert_eq!(count(&answers, 201), 150, "{answers:?}");
    // However loaded the machine, the login went ahead of the queue: most
    // sign-ups were still waiting for their hash when it answered.
    let before_the_login = finished.iter().filter(|at| **at < logged_in).count();
    assert!(
        before_the_login < 75,
        "{before_the_login} sign-ups answered first"
    );
}
