//! The PostgreSQL server the tests that need one use: the one named by
//! `PLUME_TEST_POSTGRES_URL` (`.ci/backends` starts it), each test in a
//! schema of its own. Without it those tests say they were skipped, unless
//! `PLUME_REQUIRE_BACKENDS=1` (as in `.ci/run`) makes that a failure.

use tokio_postgres::NoTls;

// The library's unit tests skip or fail the same way: one file for both.
#[path = "../../src/test_backends.rs"]
mod shared;
use shared::env_or_skip;

/// A URL of the test server whose connections use a new, empty schema, or
/// `None` (after saying why) when there is no server.
pub(crate) async fn postgres_url(test: &str) -> Option<String> {
    let url = env_or_skip("PLUME_TEST_POSTGRES_URL", test)?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// The Redis of the tests (`PLUME_TEST_REDIS_URL`) and a bus key of this
/// test's own (Redis channels are seen across database numbers), or
/// `None` (after saying why) when there is none.
pub(crate) fn redis_url(test: &str) -> Option<(String, String)> {
    let url = env_or_skip("PLUME_TEST_REDIS_URL", test)?;
    Some((url, format!("t{}", uuid::Uuid::new_v4().simple())))
}
