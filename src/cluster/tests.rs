//! Against a real Redis: the one named by `PLUME_TEST_REDIS_URL`
//! (`.ci/backends` starts one). Without it the tests say they were
//! skipped, unless `PLUME_REQUIRE_BACKENDS=1` (as in `.ci/run`).

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::auth::throttle::ThrottleSettings;

/// The test Redis and a bus key of this test's own.
async fn test_bus(test: &str) -> Option<RedisBus> {
    let url = crate::test_backends::env_or_skip("PLUME_TEST_REDIS_URL", test)?;
    let key = format!("t{}", uuid::Uuid::new_v4().simple());
    Some(RedisBus::connect_with_key(&url, &key).await.unwrap())
}

fn settings(per_account: usize, per_address: usize) -> ThrottleSettings {
    ThrottleSettings {
        enabled: true,
        max_per_username: per_account,
        max_per_address: per_address,
        window: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn shared_counters_hold_the_limits_across_throttles() {
    let Some(bus) = test_bus("shared_counters_hold_the_limits_across_throttles").await else {
        return;
    };
    // Two instances: two throttles over the same Redis and secret.
    let (a, b) = (bus.throttle("secret"), bus.throttle("secret"));
    let address: Option<IpAddr> = Some("192.0.2.7".parse().unwrap());
    let limits = settings(3, 100);
    a.reserve(&limits, Some("ada"), address).await.unwrap();
    b.reserve(&limits, Some("ada"), address).await.unwrap();
    let third = a.reserve(&limits, Some("ada"), address).await.unwrap();
    let refused = b.reserve(&limits, Some("ada"), address).await.unwrap_err();
    assert_eq!(refused.code(), 429);
    let retry = refused.data().unwrap()["retryAfter"].as_u64().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // A freed attempt makes room; a success resets the account.
    a.released(third).await.unwrap();
    let fourth = b.reserve(&limits, Some("ada"), address).await.unwrap();
    b.succeeded(fourth).await.unwrap();
    for _ in 0..3 {
        a.reserve(&limits, Some("ada"), address).await.unwrap();
    }
    // A throttle with another secret is another set of accounts.
    bus.throttle("other")
        .reserve(&limits, Some("ada"), None)
        .await
        .unwrap();
    // The address limit holds whatever the names.
    let limits = settings(100, 2);
    let elsewhere: Option<IpAddr> = Some("198.51.100.9".parse().unwrap());
    a.reserve(&limits, Some("x1"), elsewhere).await.unwrap();
    b.reserve(&limits, Some("x2"), elsewhere).await.unwrap();
    let error = a.reserve(&limits, Some("x3"), elsewhere).await.unwrap_err();
    assert_eq!(error.code(), 429);
}

#[tokio::test]
async fn bad_urls_and_keys_are_refused_and_an_absent_redis_is_unavailable() {
    let error = RedisBus::connect("http://nope").await.unwrap_err();
    assert!(error.message().starts_with("Invalid Redis URL"), "{error}");
    let error = RedisBus::connect_with_key("redis://127.0.0.1:1/", "a b")
        .await
        .unwrap_err();
    assert!(error.message().starts_with("Invalid Redis key"), "{error}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = RedisBus::connect(&format!("redis://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), 503);
    let Some(bus) = test_bus("bad_urls_and_keys").await else {
        return;
    };
    bus.ping().await.unwrap();
}

#[tokio::test]
async fn a_limit_of_zero_refuses_every_attempt_for_a_window() {
    let Some(bus) = test_bus("a_limit_of_zero_refuses_every_attempt_for_a_window").await else {
        return;
    };
    let throttle = bus.throttle("secret");
    let error = throttle
        .reserve(&settings(0, 10), Some("ada"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), 429, "{error}");
    assert_eq!(error.data().unwrap()["retryAfter"], 60);
}
