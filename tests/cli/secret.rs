//! Issue 10, point 8: with no secret configured the server makes one,
//! keeps it beside the database (owner-only) and trusts no secret that is
//! written in the repository.

use serde_json::{Map, Value, json};

use super::{Server, TempDir, sign_up_and_log_in};

/// A token for `sub` that the server would accept if it trusted `secret`:
/// the claims and header of `config/default.json`'s `jwtOptions`.
fn forged(secret: &str, sub: &Value) -> String {
    use plume::auth::token;
    let defaults: Value = serde_json::from_str(include_str!("../../config/default.json")).unwrap();
    let mut options = defaults["authentication"]["jwtOptions"]
        .as_object()
        .unwrap()
        .clone();
    options.insert("subject".to_owned(), json!(sub.to_string()));
    let settings = token::JwtSettings::parse(&options).unwrap();
    let key = token::encoding_key(settings.algorithm, secret).unwrap();
    token::sign(&Map::new(), &settings, &key).unwrap()
}

async fn status_with(url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}/messages"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_first_start_stores_a_secret_that_later_starts_reuse() {
    let dir = TempDir::new("secret");
    let database = dir.path().join("data").join("plume.sqlite");
    let secret_file = dir.path().join("data").join("plume.sqlite.secret");

    let first = Server::start(&database);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    let secret = secret.trim();
    assert_eq!(secret.len(), 88, "64 bytes in base64");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let said: Vec<&String> = first
        .startup_log
        .iter()
        .filter(|line| line.contains("secret"))
        .collect();
    assert_eq!(said.len(), 1, "one line about the secret: {said:?}");
    assert!(said[0].contains("generated"), "{said:?}");
    assert!(said[0].contains("plume.sqlite.secret"), "{said:?}");
    assert!(
        !said[0].contains(secret),
        "the secret itself is never logged"
    );
    let (id, token) = sign_up_and_log_in(&first.url, "ada@example.com", "correct horse").await;
    assert_eq!(status_with(&first.url, &token).await, 200);
    first.stop();

    let second = Server::start(&database);
    let said: Vec<&String> = second
        .startup_log
        .iter()
        .filter(|line| line.contains("secret"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("using the secret stored in"), "{said:?}");
    assert_eq!(
        std::fs::read_to_string(&secret_file).unwrap().trim(),
        secret,
        "the file is kept as it is"
    );
    assert_eq!(
        status_with(&second.url, &token).await,
        200,
        "a token from the first run works in the second"
    );
    // The user exists, so only the signature can fail these.
    assert_eq!(status_with(&second.url, &forged(secret, &id)).await, 200);
    for published in [
        plume::config::DEVELOPMENT_SECRET,
        plume::auth::secret::TEST_SECRET,
    ] {
        assert_eq!(
            status_with(&second.url, &forged(published, &id)).await,
            401,
            "a token signed with {published}"
        );
    }
    second.stop();
}
