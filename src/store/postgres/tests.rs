//! Tests against a real PostgreSQL server: the one named by
//! `PLUME_TEST_POSTGRES_URL` (`.ci/backends` starts one), each test in a
//! schema of its own. Without it they say they were skipped, unless
//! `PLUME_REQUIRE_BACKENDS=1` (as in `.ci/run`) makes that a failure.

use serde_json::{Value, json};

use super::*;
use crate::{Id, Params, Service};

/// A store over a new, empty schema of the test server, or `None` (after
/// saying why) when there is no server to test against.
pub(crate) async fn test_store(test: &str) -> Option<PostgresStore> {
    let url = isolated_url(test).await?;
    Some(PostgresStore::connect(&url).await.unwrap())
}

/// A URL of the test server whose connections use a new, empty schema.
pub(crate) async fn isolated_url(test: &str) -> Option<String> {
    let url = crate::test_backends::env_or_skip("PLUME_TEST_POSTGRES_URL", test)?;
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

async fn explain(store: &PostgresStore, service: &PostgresService, query: Value) -> String {
    let parsed = query::parse_query(
        query.as_object().unwrap(),
        &service.options(
            &Params::new(),
            Some(crate::Paginate {
                default: 10,
                max: 50,
            }),
        ),
    )
    .unwrap();
    let compiled = service.compile(&parsed).unwrap();
    let statement = service::find_statement(service.table(), &parsed, &compiled, true).unwrap();
    let client = store.reader().await.unwrap();
    let params: Vec<(
        &(dyn tokio_postgres::types::ToSql + Sync),
        tokio_postgres::types::Type,
    )> = compiled
        .params
        .iter()
        .map(|p| {
            (
                p as &(dyn tokio_postgres::types::ToSql + Sync),
                tokio_postgres::types::Type::TEXT,
            )
        })
        .collect();
    let rows = client
        .query_typed(&format!("EXPLAIN {statement}"), &params)
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn indexed_filters_and_sorts_read_the_index() {
    let Some(store) = test_store("indexed_filters_and_sorts_read_the_index").await else {
        return;
    };
    let messages = store
        .service("messages")
        .unwrap()
        .multi(true)
        .index(["createdAt"])
        .compound_index(["userId", "createdAt"]);
    let records: Vec<Value> = (0..3000)
        .map(|i| json!({"text": format!("m{i}"), "userId": i % 30, "createdAt": 1_700_000_000_000_i64 + i}))
        .collect();
    messages
        .create(&Value::Array(records), &Params::new())
        .await
        .unwrap();
    store
        .client()
        .await
        .unwrap()
        .batch_execute("ANALYZE messages")
        .await
        .unwrap();
    let newest = explain(
        &store,
        &messages,
        json!({"$sort": {"createdAt": -1}, "$limit": 10}),
    )
    .await;
    assert!(newest.contains("Index Scan Backward"), "{newest}");
    assert!(!newest.contains("Seq Scan on messages"), "{newest}");
    let own = explain(
        &store,
        &messages,
        json!({"userId": 7, "$sort": {"createdAt": -1}, "$limit": 10}),
    )
    .await;
    assert!(own.contains("Index Scan Backward"), "{own}");
    assert!(!own.contains("Seq Scan on messages"), "{own}");
    // No index on `text`: a scan, and the plan says so.
    let text = explain(&store, &messages, json!({"text": "m5"})).await;
    assert!(text.contains("Seq Scan on messages"), "{text}");
    // And the answers are the memory store's.
    let page = messages
        .find(&Params::with_query(
            json!({"userId": 7, "$sort": {"createdAt": -1}, "$limit": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["createdAt"], json!(1_700_000_000_000_i64 + 2977));
}

#[tokio::test]
async fn ids_are_never_reused_and_supplied_ids_are_skipped() {
    let Some(store) = test_store("ids_are_never_reused_and_supplied_ids_are_skipped").await else {
        return;
    };
    let items = store.service("items").unwrap().start_id(1);
    let a = items
        .create(&json!({"n": 1}), &Params::new())
        .await
        .unwrap();
    assert_eq!(a["id"], json!(1));
    // A client's id where the sequence will arrive, and one as text.
    items
        .create(&json!({"id": 2}), &Params::new())
        .await
        .unwrap();
    items
        .create(&json!({"id": "3"}), &Params::new())
        .await
        .unwrap();
    let b = items
        .create(&json!({"n": 2}), &Params::new())
        .await
        .unwrap();
    assert_eq!(b["id"], json!(4));
    // 3 and "3" are one id.
    let error = items
        .create(&json!({"id": 3}), &Params::new())
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (409, "A record with id '3' already exists")
    );
    items
        .remove(Some(&Id::Number(4)), &Params::new())
        .await
        .unwrap();
    let c = items
        .create(&json!({"n": 3}), &Params::new())
        .await
        .unwrap();
    assert_eq!(c["id"], json!(5));
    assert_eq!(
        items
            .get(&Id::String("3".into()), &Params::new())
            .await
            .unwrap()["id"],
        json!("3")
    );
}

#[tokio::test]
async fn unique_fields_conflict_across_stores_and_name_the_field() {
    let Some(url) = isolated_url("unique_fields_conflict_across_stores_and_name_the_field").await
    else {
        return;
    };
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url).await.unwrap();
    let users = |store: &PostgresStore| {
        store
            .service("users")
            .unwrap()
            .unique_ignoring_case(["email"])
            .unique(["login"])
    };
    let (on_a, on_b) = (users(&a), users(&b));
    on_a.create(&json!({"email": "Ada@x", "login": 1}), &Params::new())
        .await
        .unwrap();
    let error = on_b
        .create(&json!({"email": "ada@X"}), &Params::new())
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (409, "A record with this 'email' already exists")
    );
    let error = on_b
        .create(&json!({"login": 1.0}), &Params::new())
        .await
        .unwrap_err();
    assert_eq!(error.message(), "A record with this 'login' already exists");
    // Nulls, missing fields and other types never conflict.
    for record in [
        json!({"login": null}),
        json!({"login": null}),
        json!({}),
        json!({"login": "1"}),
    ] {
        on_b.create(&record, &Params::new()).await.unwrap();
    }
    // The lookup ignores case, through the unique index.
    let found = on_b
        .find(&Params::with_query(json!({"email": "ADA@x"})))
        .await
        .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_creates_on_two_stores_get_distinct_ids_and_exact_totals() {
    let Some(url) =
        isolated_url("concurrent_creates_on_two_stores_get_distinct_ids_and_exact_totals").await
    else {
        return;
    };
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url).await.unwrap();
    let paginate = crate::Paginate {
        default: 10,
        max: 50,
    };
    let sa = a.service("items").unwrap().paginate(paginate);
    let sb = b.service("items").unwrap().paginate(paginate);
    sa.ensure_schema().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let service = if i % 2 == 0 {
            a.service("items").unwrap()
        } else {
            b.service("items").unwrap()
        };
        tasks.push(tokio::spawn(async move {
            service
                .create(&json!({"i": i}), &Params::new())
                .await
                .unwrap()["id"]
                .as_i64()
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    for service in [&sa, &sb] {
        let page = service
            .find(&Params::with_query(json!({"$limit": 0})))
            .await
            .unwrap();
        assert_eq!(page["total"], json!(200));
    }
    sa.remove(Some(&Id::Number(ids[0])), &Params::new())
        .await
        .unwrap();
    let page = sb
        .find(&Params::with_query(json!({"$limit": 1})))
        .await
        .unwrap();
    assert_eq!(page["total"], json!(199));
}

#[tokio::test]
async fn text_postgres_cannot_hold_is_a_bad_request() {
    let Some(store) = test_store("text_postgres_cannot_hold_is_a_bad_request").await else {
        return;
    };
    let items = store.service("items").unwrap();
    let error = items
        .create(&json!({"s": "a\u{0}b"}), &Params::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), 400, "{error}");
    let found = items
        .find(&Params::with_query(json!({"s": "a\u{0}b"})))
        .await
        .unwrap();
    assert_eq!(found, json!([]));
    let error = items
        .get(&Id::String("a\u{0}".into()), &Params::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), 404);
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = PostgresOptions {
        wait_timeout: Duration::from_millis(500),
        ..PostgresOptions::default()
    };
    let error =
        PostgresStore::connect_with(&format!("postgres://plume@127.0.0.1:{port}/x"), options)
            .await
            .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (503, "The database is unavailable")
    );
    let error = PostgresStore::connect("postgres://plume@127.0.0.1:notaport/x")
        .await
        .unwrap_err();
    assert_eq!(error.code(), 500);
    assert!(
        error.message().starts_with("Invalid PostgreSQL URL"),
        "{error}"
    );
}

#[tokio::test]
async fn a_query_past_its_budget_is_a_bad_request() {
    let Some(url) = isolated_url("a_query_past_its_budget_is_a_bad_request").await else {
        return;
    };
    let options = PostgresOptions {
        query_timeout: Duration::from_millis(50),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(&url, options).await.unwrap();
    let client = store.reader().await.unwrap();
    let error = client
        .simple_query("SELECT pg_sleep(1)")
        .await
        .map_err(db_error)
        .unwrap_err();
    assert_eq!(error.code(), 400);
    assert!(
        error.message().contains("postgres.queryTimeoutMs"),
        "{error}"
    );
}

#[tokio::test]
async fn a_connection_prepares_a_bounded_number_of_query_shapes() {
    let Some(url) = isolated_url("a_connection_prepares_a_bounded_number_of_query_shapes").await
    else {
        return;
    };
    let options = PostgresOptions {
        pool_size: 1,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(&url, options).await.unwrap();
    let items = store.service("items").unwrap();
    items
        .create(&json!({"n": 1}), &Params::new())
        .await
        .unwrap();
    // 200 different shapes (one more condition each time) on the one
    // reading connection: each answered, at most the bound prepared.
    for shape in 1..=200 {
        let mut query = serde_json::Map::new();
        query.insert("n".to_owned(), json!({"$lt": shape + 10}));
        query.insert("$sort".to_owned(), json!({format!("f{shape}"): 1}));
        let found = items
            .find(&Params::with_query(Value::Object(query)))
            .await
            .unwrap();
        assert_eq!(found.as_array().unwrap().len(), 1, "shape {shape}");
    }
    let reader = store.reader().await.unwrap();
    assert_eq!(
        reader.statement_cache.size(),
        service::PREPARED_PER_CONNECTION
    );
}

#[tokio::test]
async fn automatic_ids_are_written_where_the_memory_store_writes_them() {
    let Some(store) =
        test_store("automatic_ids_are_written_where_the_memory_store_writes_them").await
    else {
        return;
    };
    let memory = crate::store::MemoryService::new().id_field("_id");
    let items = store.service("items").unwrap().id_field("_id");
    for record in [
        json!({}),
        json!({"a": "x\"y", "b": [1, {"c": null}]}),
        // Named as null: the id takes that place, not the end.
        json!({"_id": null, "z": 1}),
    ] {
        let expected = memory.create(&record, &Params::new()).await.unwrap();
        let made = items.create(&record, &Params::new()).await.unwrap();
        assert_eq!(made.to_string(), expected.to_string());
        let id = Id::from_value(&made["_id"]).unwrap().unwrap();
        let read = items.get(&id, &Params::new()).await.unwrap();
        assert_eq!(read.to_string(), expected.to_string());
    }
}

#[tokio::test]
async fn hostile_edges_answer_as_the_memory_store_does() {
    let Some(store) = test_store("hostile_edges_answer_as_the_memory_store_does").await else {
        return;
    };
    let memory = crate::store::MemoryService::new();
    let items = store.service("items").unwrap();
    for name in ["a", "b", "b\u{1}", "c"] {
        memory
            .create(&json!({ "name": name }), &Params::new())
            .await
            .unwrap();
        items
            .create(&json!({ "name": name }), &Params::new())
            .await
            .unwrap();
    }
    // Ranges past a string PostgreSQL cannot hold, and a skip past bigint.
    for query in [
        json!({"name": {"$lt": "b\u{0}x"}}),
        json!({"name": {"$lte": "b\u{0}"}}),
        json!({"name": {"$gt": "b\u{0}"}}),
        json!({"name": {"$gte": "b\u{0}zz"}}),
        json!({"$skip": "18446744073709551615"}),
        json!({"$limit": "18446744073709551615"}),
    ] {
        let params = Params::with_query(query.clone());
        let expected = memory.find(&params).await.map(|v| v.to_string());
        let actual = items.find(&params).await.map(|v| v.to_string());
        assert_eq!(
            actual.as_ref().map_err(|e| e.code()),
            expected.as_ref().map_err(|e| e.code()),
            "{query}"
        );
    }
    // Names PostgreSQL would cut, and Plume's own prefix, are refused.
    assert!(store.service(&"t".repeat(MAX_TABLE_NAME_LEN)).is_ok());
    assert!(store.service(&"t".repeat(MAX_TABLE_NAME_LEN + 1)).is_err());
    assert!(store.service("plume_seq_x").is_err());
    // A table named like another's former sequence is just a table.
    let a = store.service("a").unwrap();
    let shadow = store.service("a__plume_id").unwrap();
    shadow.create(&json!({}), &Params::new()).await.unwrap();
    assert_eq!(
        a.create(&json!({}), &Params::new()).await.unwrap()["id"],
        json!(0)
    );
}
