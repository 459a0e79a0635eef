//! Query strings and JSON queries: results or 400, never a panic or a 500.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Uri};
use plume::store::{MemoryService, SqliteStore};
use plume::{App, Paginate, Params, Provider, Service};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::json;
use tower::ServiceExt as _;

use super::{cases, json_map, runtime, word};

const PAGINATE: Paginate = Paginate { default: 5, max: 8 };

fn records() -> Vec<serde_json::Value> {
    vec![
        json!({"name": "a", "n": 1, "password": "x"}),
        json!({"name": "b", "n": 2.5, "tags": ["x", 1]}),
        json!({"name": null, "n": "3", "a": {"b": true}}),
        json!({"n": -9_007_199_254_740_993_i64}),
        json!({"name": "%_\\'", "n": 1e300}),
    ]
}

/// An app with the same records in a paginated SQLite service and an
/// unpaginated memory service, both protecting `password`.
async fn app() -> App {
    let app = App::new();
    let store = SqliteStore::open(":memory:").await.unwrap();
    app.use_service(
        "items",
        store
            .service("items")
            .unwrap()
            .paginate(PAGINATE)
            .protected_fields(["password"])
            .index(["name"]),
    )
    .unwrap();
    app.use_service(
        "memory",
        MemoryService::new().protected_fields(["password"]),
    )
    .unwrap();
    app.setup().await.unwrap();
    for path in ["items", "memory"] {
        for record in records() {
            app.service(path)
                .unwrap()
                .create(record, Params::new())
                .await
                .unwrap();
        }
    }
    app
}

/// A query string: `qs`-style pieces (brackets, operators, percent
/// escapes) joined with `&`, or arbitrary bytes percent-encoded.
fn query_string() -> impl Strategy<Value = String> {
    let piece = (
        word(),
        prop::collection::vec(prop_oneof![word(), Just(String::new())], 0..4),
        word(),
    )
        .prop_map(|(key, path, value)| {
            let mut piece = encode(key.as_bytes(), true);
            for step in path {
                piece.push('[');
                piece.push_str(&encode(step.as_bytes(), true));
                piece.push(']');
            }
            piece.push('=');
            piece.push_str(&encode(value.as_bytes(), true));
            piece
        });
    prop_oneof![
        3 => prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.join("&")),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| encode(&bytes, false)),
        1 => "[a-z0-9$\\[\\]=&%.+-]{0,80}",
    ]
}

/// Percent-encodes what a URI may not hold; with `keep_qs`, `$` `[` `]`
/// stay as they are (as browsers and `qs` send them), and `%` stays when
/// it starts an escape (so malformed escapes reach the parser too).
fn encode(bytes: &[u8], keep_qs: bool) -> String {
    let mut out = String::new();
    for &b in bytes {
        let plain = b.is_ascii_alphanumeric()
            || b"-._~".contains(&b)
            || (keep_qs && b"$[],+%".contains(&b));
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn query_strings_over_rest_answer_200_or_400() {
    let rt = runtime();
    let app = rt.block_on(app());
    let router = plume::transport::rest::router(app);
    let mut runner = TestRunner::new(cases(384));
    runner
        .run(&(query_string(), any::<bool>()), |(query, memory)| {
            let path = if memory { "/memory" } else { "/items" };
            let Ok(uri) = Uri::try_from(format!("{path}?{query}")) else {
                return Ok(());
            };
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let response = rt.block_on(router.clone().oneshot(request)).unwrap();
            let status = response.status().as_u16();
            let body = rt
                .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
                .unwrap();
            let text = String::from_utf8_lossy(&body);
            prop_assert!(
                status == 200 || status == 400,
                "{status} for ?{query}: {text}"
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn json_queries_find_or_answer_400_on_both_stores() {
    let rt = runtime();
    let sqlite = rt.block_on(async {
        let store = SqliteStore::open(":memory:").await.unwrap();
        let service = store
            .service("items")
            .unwrap()
            .paginate(PAGINATE)
            .protected_fields(["password"]);
        for record in records() {
            service.create(&record, &Params::new()).await.unwrap();
        }
        service
    });
    let memory = rt.block_on(async {
        let service = MemoryService::new().protected_fields(["password"]);
        for record in records() {
            service.create(&record, &Params::new()).await.unwrap();
        }
        service
    });
    let stores: Vec<(&str, Arc<dyn Service>)> =
        vec![("sqlite", Arc::new(sqlite)), ("memory", Arc::new(memory))];
    let mut runner = TestRunner::new(cases(384));
    runner
        .run(&json_map(), |query| {
            let mut params = Params::external(Provider::Rest);
            params.query = query.clone();
            for (name, service) in &stores {
                match rt.block_on(service.find(&params)) {
                    Ok(_) => {}
                    Err(error) => prop_assert_eq!(
                        error.code(),
                        400,
                        "{} on {}: {}",
                        name,
                        serde_json::Value::Object(query),
                        error.message()
                    ),
                }
            }
            Ok(())
        })
        .unwrap();
}
