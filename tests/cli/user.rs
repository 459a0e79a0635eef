//! Issue 10, point 1: `plume user add` and `plume user grant` make and
//! change users through internal calls, beside a running server on the
//! same database file.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Server, TempDir, log_in, plume};

/// Runs `plume user ...` on `database`; returns the printed JSON.
fn user_command(database: &Path, args: &[&str]) -> Value {
    let output = plume()
        .arg("user")
        .args(args)
        .env("SQLITE_FILE", database)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains("password"), "{stdout}");
    assert!(!stdout.contains("$argon2"), "{stdout}");
    serde_json::from_str(&stdout).unwrap()
}

fn claims(token: &str) -> serde_json::Map<String, Value> {
    plume::auth::token::peek_claims(token).unwrap()
}

#[tokio::test]
async fn user_add_and_grant_reach_a_running_server() {
    let dir = TempDir::new("user");
    let database = dir.path().join("plume.sqlite");
    let server = Server::start(&database);

    let added = user_command(
        &database,
        &[
            "add",
            "--email",
            "root@example.com",
            "--password",
            "a long pass phrase",
            "--role",
            "editor",
            "--permission",
            "messages:read",
        ],
    );
    assert_eq!(added["email"], "root@example.com");
    assert_eq!(added["role"], "editor");
    assert_eq!(added["permissions"], json!(["messages:read"]));
    let token = log_in(&server.url, "root@example.com", "a long pass phrase").await;
    let first = claims(&token);
    assert_eq!(first["role"], "editor", "{first:?}");
    assert_eq!(first["sub"], json!(added["id"].to_string()));

    let granted = user_command(
        &database,
        &[
            "grant",
            "--email",
            "root@example.com",
            "--role",
            "admin",
            "--permission",
            "*",
            "--permission",
            "users:write",
        ],
    );
    assert_eq!(granted["id"], added["id"]);
    assert_eq!(granted["role"], "admin");
    assert_eq!(granted["permissions"], json!(["*", "users:write"]));
    // The server may serve the user from its record cache for
    // `sqlite.recordCacheMs` (1 s by default); the change shows after it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let claims = loop {
        let token = log_in(&server.url, "root@example.com", "a long pass phrase").await;
        let claims = claims(&token);
        if claims["role"] == "admin" || Instant::now() > deadline {
            break claims;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(claims["role"], "admin", "{claims:?}");
    assert_eq!(claims["permissions"], json!(["*", "users:write"]));

    // Mistakes are errors with a message, not a changed user.
    let missing = plume()
        .args([
            "user",
            "grant",
            "--email",
            "nobody@example.com",
            "--role",
            "x",
        ])
        .env("SQLITE_FILE", &database)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nobody@example.com"));
    let nothing = plume()
        .args(["user", "grant", "--email", "root@example.com"])
        .env("SQLITE_FILE", &database)
        .output()
        .unwrap();
    assert!(!nothing.status.success());
    server.stop();
}
