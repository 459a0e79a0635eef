//! A database written by d80336c (records as JSON text, no layout
//! recorded; `tests/fixtures/make-d80336c.sh` says how it was made) opens
//! in today's default app: every record is still there, byte for byte the
//! same JSON, now stored as JSONB, with its count kept, and the app works
//! on it (logins, pages, ids that continue).

use std::path::{Path, PathBuf};

use plume::config::{Config, merge};
use plume::store::SqliteStore;
use reqwest::Method;
use rusqlite::Connection;
use serde_json::{Value, json};

use crate::support::TestServer;

const FIXTURE: &str = "tests/fixtures/d80336c.sqlite";
const PASSWORD: &str = "correct horse battery staple";

/// A copy of the fixture in a directory of its own.
fn copy_of_fixture() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("plume-migration-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plume.sqlite");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE), &file).unwrap();
    (dir, file)
}

/// Every record of `table` in insertion order, read without Plume, as JSON.
fn raw_records(file: &Path, table: &str) -> Vec<Value> {
    let conn = Connection::open(file).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT json(data) FROM {table} ORDER BY seq"))
        .unwrap();
    stmt.query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|text| serde_json::from_str(&text.unwrap()).unwrap())
        .collect()
}

/// Rows of `SELECT <sql>` with one text column each.
fn texts(file: &Path, sql: &str) -> Vec<String> {
    let conn = Connection::open(file).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn default_app_on(file: &Path) -> TestServer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let loaded = Config::load_with(&dir, "test", |_| None).unwrap();
    let mut values = loaded.values().clone();
    merge(
        &mut values,
        json!({"sqlite": {"filename": file.to_str().unwrap()}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let config = Config::from_value("test", values);
    let store = SqliteStore::open(file).await.unwrap();
    let app = crate::default_app::build_with_store(&config, &store).unwrap();
    TestServer::start(app).await
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    server.send(request).await
}

#[tokio::test]
async fn a_database_written_by_d80336c_migrates_on_start_without_losing_a_record() {
    let (dir, file) = copy_of_fixture();
    let users_before = raw_records(&file, "users");
    let messages_before = raw_records(&file, "messages");
    assert_eq!((users_before.len(), messages_before.len()), (2, 25));
    assert_eq!(
        texts(&file, "SELECT DISTINCT typeof(data) FROM messages"),
        ["text"]
    );

    let server = default_app_on(&file).await;

    // The app works on the old records: a login checks the old hash, and
    // pages count and return every message as it was written.
    let (status, login) = call(
        &server,
        Method::POST,
        "/authentication",
        None,
        Some(json!({"strategy": "local", "email": "ada@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{login}");
    let token = login["accessToken"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for skip in [0, 10, 20] {
        let (status, page) = call(
            &server,
            Method::GET,
            &format!("/messages?$skip={skip}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], json!(25));
        seen.extend(page["data"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(seen, messages_before, "every message, as it was written");
    // The newest page walks the new createdAt index over the old records.
    let (_, newest) = call(
        &server,
        Method::GET,
        "/messages?$limit=1&$sort[createdAt]=-1",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(newest["data"][0], messages_before[24]);
    // Ids continue after the old ones.
    let (status, created) = call(
        &server,
        Method::POST,
        "/messages",
        Some(&token),
        Some(json!({"text": "after the migration"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], json!(25));
    server.stop().await;

    // On disk: JSONB records equal to the old text, exact kept counts,
    // the layout recorded, the indexes of today's declarations, and
    // Plume's own tables at the last migration.
    let users_after = raw_records(&file, "users");
    let messages_after = raw_records(&file, "messages");
    assert_eq!(users_after, users_before);
    assert_eq!(&messages_after[..25], messages_before.as_slice());
    assert_eq!(
        texts(
            &file,
            "SELECT DISTINCT typeof(data) FROM messages UNION SELECT DISTINCT typeof(data) FROM users"
        ),
        ["blob"]
    );
    assert_eq!(
        texts(
            &file,
            "SELECT name || ':' || rows FROM plume_counts ORDER BY name"
        ),
        ["messages:26", "users:2"]
    );
    assert_eq!(
        texts(
            &file,
            "SELECT name || ':' || layout FROM plume_tables ORDER BY name"
        ),
        ["messages:2", "users:2"]
    );
    assert_eq!(
        texts(
            &file,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%\\_\\_%' ESCAPE '\\' ORDER BY name"
        ),
        [
            "messages__id_int",
            "messages__index__createdAt",
            "messages__index__userId,createdAt",
            "messages__sort__createdAt",
            "plume_revoked_tokens__expires_at",
            "users__id_int",
            "users__uniqueci__email",
        ]
    );
    assert_eq!(
        texts(
            &file,
            "SELECT CAST(user_version AS TEXT) FROM pragma_user_version"
        ),
        ["3"]
    );
    // The revocation kept by d80336c is still there.
    assert_eq!(
        texts(
            &file,
            "SELECT CAST(count(*) AS TEXT) FROM plume_revoked_tokens"
        ),
        ["1"]
    );

    // A second start changes nothing.
    let server = default_app_on(&file).await;
    server.stop().await;
    assert_eq!(raw_records(&file, "messages"), messages_after);
    std::fs::remove_dir_all(dir).unwrap();
}
