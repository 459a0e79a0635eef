//! The servers the tests that need PostgreSQL or Redis use (the library's
//! unit tests, and `tests/support/backends.rs` includes this file): named by
//! `PLUME_TEST_POSTGRES_URL` and `PLUME_TEST_REDIS_URL` (`.ci/backends`
//! starts both).

/// The value of `var`, or `None` after saying that `test` was skipped;
/// with `PLUME_REQUIRE_BACKENDS=1` (as in `.ci/run`) a missing server is a
/// failure instead.
pub(crate) fn env_or_skip(var: &str, test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(var) {
        return Some(url);
    }
    assert!(
        std::env::var("PLUME_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "PLUME_REQUIRE_BACKENDS=1 but {var} is not set"
    );
    // Said on purpose: a skipped test must not pass silently.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipped {test}: {var} is not set (see .ci/backends)");
    }
    None
}
