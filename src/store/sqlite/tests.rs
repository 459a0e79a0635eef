//! Unit tests of the SQLite store. The query semantics shared with the
//! memory store are tested against both in `tests/query/`.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::*;
use crate::auth::RevocationList as _;
use crate::query::{self, QueryLimits, QueryOptions};
use crate::{ErrorKind, Id, Paginate, PaginateParam, Params, Provider, Result, Service};

fn params(query: Value) -> Params {
    Params::with_query(query)
}

fn none() -> Params {
    Params::new()
}

async fn memory() -> SqliteStore {
    SqliteStore::open(MEMORY).await.unwrap()
}

async fn seeded(service: SqliteService) -> SqliteService {
    for (name, age) in [("alice", 30), ("bob", 20), ("carol", 40), ("dave", 20)] {
        service
            .create(&json!({"name": name, "age": age}), &none())
            .await
            .unwrap();
    }
    service
}

fn assert_error(result: Result<Value>, kind: ErrorKind, message: &str) {
    let err = result.expect_err("call should fail");
    assert_eq!((err.kind(), err.message()), (kind, message));
}

fn names(value: &Value) -> Vec<&str> {
    let items = match value {
        Value::Array(items) => items,
        other => other["data"].as_array().unwrap(),
    };
    items.iter().map(|r| r["name"].as_str().unwrap()).collect()
}

/// A fresh folder under the target directory's temp folder.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plume-sqlite-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn create_assigns_ids_and_keeps_key_order() {
    let items = memory().await.service("items").unwrap();
    let first = items.create(&json!({"text": "a"}), &none()).await.unwrap();
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        r#"{"text":"a","id":0}"#
    );
    let explicit_null = items
        .create(&json!({"id": null, "t": 1}), &none())
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_string(&explicit_null).unwrap(),
        r#"{"id":1,"t":1}"#
    );
    let found = items.find(&none()).await.unwrap();
    assert_eq!(
        serde_json::to_string(&found).unwrap(),
        r#"[{"text":"a","id":0},{"id":1,"t":1}]"#
    );
}

#[tokio::test]
async fn ids_skip_client_ids_and_are_never_reused() {
    let items = memory().await.service("items").unwrap().start_id(1);
    items.create(&json!({"id": 1}), &none()).await.unwrap();
    items.create(&json!({"id": "2"}), &none()).await.unwrap();
    assert_eq!(
        items.create(&json!({}), &none()).await.unwrap()["id"],
        json!(3)
    );
    items.remove(Some(&Id::from(3)), &none()).await.unwrap();
    assert_eq!(
        items.create(&json!({}), &none()).await.unwrap()["id"],
        json!(4)
    );
}

#[tokio::test]
async fn create_with_a_taken_id_is_a_conflict_and_overwrites_nothing() {
    let items = memory().await.service("items").unwrap();
    items
        .create(&json!({"id": 7, "v": 1}), &none())
        .await
        .unwrap();
    for id in [json!(7), json!("7")] {
        assert_error(
            items.create(&json!({"id": id, "v": 2}), &none()).await,
            ErrorKind::Conflict,
            "A record with id '7' already exists",
        );
    }
    items.create(&json!({"id": "x"}), &none()).await.unwrap();
    assert_error(
        items.create(&json!({"id": "x"}), &none()).await,
        ErrorKind::Conflict,
        "A record with id 'x' already exists",
    );
    assert_eq!(
        items.get(&Id::from(7), &none()).await.unwrap()["v"],
        json!(1)
    );
    for id in [json!({"a": 1}), json!([1]), json!(1.5), json!(true)] {
        let err = items.create(&json!({"id": id}), &none()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{err:?}");
    }
}

#[tokio::test]
async fn string_ids_in_canonical_decimal_match_numeric_ids() {
    let items = memory().await.service("items").unwrap();
    items
        .create(&json!({"id": "7", "v": 1}), &none())
        .await
        .unwrap();
    assert_eq!(
        items.get(&Id::from(7), &none()).await.unwrap()["v"],
        json!(1)
    );
    items
        .create(&json!({"id": "07", "v": 3}), &none())
        .await
        .unwrap();
    assert_eq!(
        items.get(&Id::from("07"), &none()).await.unwrap()["v"],
        json!(3),
        "a non-canonical string id is just a string"
    );
    items
        .create(&json!({"id": 8, "v": 2}), &none())
        .await
        .unwrap();
    assert_eq!(
        items.get(&Id::from("8"), &none()).await.unwrap()["v"],
        json!(2)
    );
    for spelling in ["08", "+8", " 8"] {
        assert!(
            items.get(&Id::from(spelling), &none()).await.is_err(),
            "{spelling}"
        );
    }
    items.remove(Some(&Id::from(7)), &none()).await.unwrap();
    assert!(items.get(&Id::from(7), &none()).await.is_err());
    assert!(items.get(&Id::from("07"), &none()).await.is_ok());
}

#[tokio::test]
async fn create_many_is_one_transaction() {
    let items = memory().await.service("items").unwrap().multi(true);
    items.create(&json!({"id": 5}), &none()).await.unwrap();
    let err = items
        .create(&json!([{"a": 1}, {"id": "s"}, {"id": "5"}]), &none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = items
        .create(&json!([{"id": "d"}, {"id": "d"}]), &none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(items.find(&none()).await.unwrap(), json!([{"id": 5}]));
    // The counter was rolled back with the records.
    assert_eq!(
        items.create(&json!({}), &none()).await.unwrap()["id"],
        json!(0)
    );
    let no_multi = memory().await.service("items").unwrap();
    assert_error(
        no_multi.create(&json!([{"a": 1}]), &none()).await,
        ErrorKind::MethodNotAllowed,
        "Can not create multiple entries",
    );
}

#[tokio::test]
async fn unique_fields_conflict_on_create_update_and_patch() {
    let users = memory()
        .await
        .service("users")
        .unwrap()
        .unique(["email"])
        .multi(true);
    users
        .create(&json!({"email": "a@x"}), &none())
        .await
        .unwrap();
    users
        .create(&json!({"email": "b@x"}), &none())
        .await
        .unwrap();
    // Missing and null values never conflict.
    users.create(&json!({}), &none()).await.unwrap();
    users
        .create(&json!({"email": null}), &none())
        .await
        .unwrap();
    let message = "A record with this 'email' already exists";
    assert_error(
        users.create(&json!({"email": "a@x"}), &none()).await,
        ErrorKind::Conflict,
        message,
    );
    assert_error(
        users
            .patch(Some(&Id::from(1)), &json!({"email": "a@x"}), &none())
            .await,
        ErrorKind::Conflict,
        message,
    );
    assert_error(
        users
            .update(Some(&Id::from(1)), &json!({"email": "a@x"}), &none())
            .await,
        ErrorKind::Conflict,
        message,
    );
    // A multi patch that would make two equal changes nothing.
    assert_error(
        users.patch(None, &json!({"email": "same"}), &none()).await,
        ErrorKind::Conflict,
        message,
    );
    assert_error(
        users
            .create(&json!([{"email": "new"}, {"email": "b@x"}]), &none())
            .await,
        ErrorKind::Conflict,
        message,
    );
    let emails: Vec<Value> = users
        .find(&none())
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("email").cloned().unwrap_or(Value::Null))
        .collect();
    assert_eq!(
        emails,
        [json!("a@x"), json!("b@x"), Value::Null, Value::Null]
    );
}

/// SQLite's plan for reading `users` with `compiled` as the condition.
async fn users_plan(store: &SqliteStore, compiled: sql::Compiled) -> Vec<String> {
    store
        .read(move |tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT data FROM users WHERE {}",
                    compiled.sql
                ))
                .map_err(db_error)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&compiled.params), |row| {
                    row.get::<_, String>(3)
                })
                .map_err(db_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn case_insensitive_unique_fields_conflict_ignoring_case_and_lookups_use_the_index() {
    let store = memory().await;
    let users = store
        .service("users")
        .unwrap()
        .unique_ignoring_case(["email"]);
    users
        .create(&json!({"email": "Ada@X.org"}), &Params::new())
        .await
        .unwrap();
    let err = users
        .create(&json!({"email": "ada@x.ORG"}), &Params::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(err.message(), "A record with this 'email' already exists");
    let found = users
        .find(&Params::with_query(json!({"email": "ADA@x.org"})))
        .await
        .unwrap();
    assert_eq!(
        found,
        json!([{"email": "Ada@X.org", "id": 0}]),
        "stored as given"
    );
    let options = QueryOptions::default().fold_case(std::sync::Arc::from(vec!["email".to_owned()]));
    let query =
        query::parse_query(json!({"email": "ADA@x.org"}).as_object().unwrap(), &options).unwrap();
    let plan = users_plan(
        &store,
        sql::condition(&query.condition, &|f| users.config.indexed(f)).unwrap(),
    )
    .await;
    assert!(
        plan.iter()
            .any(|line| line.contains("users__uniqueci__email")),
        "{plan:?}"
    );
}

#[tokio::test]
async fn declared_indexes_serve_equality_lookups() {
    let store = memory().await;
    let users = store
        .service("users")
        .unwrap()
        .unique(["email"])
        .index(["role"]);
    users.ensure_schema().await.unwrap();
    let query = query::parse_query(
        json!({"email": "a@x"}).as_object().unwrap(),
        &QueryOptions::default(),
    )
    .unwrap();
    let plan = users_plan(
        &store,
        sql::condition(&query.condition, &|f| users.config.indexed(f)).unwrap(),
    )
    .await;
    assert!(
        plan.iter()
            .any(|line| line.contains("users__unique__email")),
        "{plan:?}"
    );
}

#[tokio::test]
async fn bad_names_are_refused() {
    let store = memory().await;
    for bad in [
        "a b",
        "users;--",
        "1a",
        "sqlite_master",
        "plume_sequences",
        "",
    ] {
        assert!(store.service(bad).is_err(), "{bad}");
    }
    let bad_index = store.service("t").unwrap().index(["a.b"]);
    assert!(bad_index.ensure_schema().await.is_err());
    assert!(bad_index.find(&none()).await.is_err());
}

#[tokio::test]
async fn a_foreign_table_of_the_same_name_is_reported() {
    let store = memory().await;
    store
        .write(|tx| {
            tx.execute_batch("CREATE TABLE users (name TEXT)")
                .map_err(db_error)
        })
        .await
        .unwrap();
    let err = store
        .service("users")
        .unwrap()
        .ensure_schema()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GeneralError);
    assert!(
        err.message().contains("not made by Plume"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn find_filters_sorts_pages_and_selects() {
    let people = seeded(
        memory()
            .await
            .service("people")
            .unwrap()
            .paginate(Paginate { default: 2, max: 3 }),
    )
    .await;
    let page = people.find(&none()).await.unwrap();
    assert_eq!(
        serde_json::to_string(&page).unwrap(),
        r#"{"total":4,"limit":2,"skip":0,"data":[{"name":"alice","age":30,"id":0},{"name":"bob","age":20,"id":1}]}"#
    );
    let found = people
        .find(&params(json!({
            "age": {"$lte": "30"}, "$sort": {"age": "-1", "name": 1},
            "$skip": "1", "$limit": "1", "$select": "name"
        })))
        .await
        .unwrap();
    assert_eq!(
        found,
        json!({"total": 3, "limit": 1, "skip": 1, "data": [{"name": "bob", "id": 1}]})
    );
    let page = people
        .find(&params(json!({"$limit": 0, "age": 20})))
        .await
        .unwrap();
    assert_eq!(page, json!({"total": 2, "limit": 0, "skip": 0, "data": []}));
    let mut plain = params(json!({"$sort": {"age": 1}}));
    plain.paginate = PaginateParam::Disabled;
    assert_eq!(
        names(&people.find(&plain).await.unwrap()),
        ["bob", "dave", "alice", "carol"]
    );
}

#[tokio::test]
async fn get_update_patch_remove_honour_the_query() {
    let people = seeded(memory().await.service("people").unwrap()).await;
    assert_error(
        people
            .get(&Id::from(1), &params(json!({"age": {"$gt": 20}})))
            .await,
        ErrorKind::NotFound,
        "No record found for id '1'",
    );
    assert_error(
        people.get(&Id::from(1), &params(json!({"$bad": 1}))).await,
        ErrorKind::BadRequest,
        "Invalid filter value $bad",
    );
    let updated = people
        .update(
            Some(&Id::from("1")),
            &json!({"name": "bobby", "id": 99}),
            &none(),
        )
        .await
        .unwrap();
    assert_eq!(updated, json!({"name": "bobby", "id": 1}));
    assert!(people.get(&Id::from(99), &none()).await.is_err());
    assert_error(
        people.update(None, &json!({}), &none()).await,
        ErrorKind::BadRequest,
        "You can not replace multiple instances. Did you mean 'patch'?",
    );
    assert_error(
        people
            .update(Some(&Id::from(1)), &json!("x"), &none())
            .await,
        ErrorKind::BadRequest,
        "The data of 'update' must be an object, got string",
    );
    let patched = people
        .patch(
            Some(&Id::from(0)),
            &json!({"age": 31, "id": 5, "x": null}),
            &params(json!({"$select": ["age"]})),
        )
        .await
        .unwrap();
    assert_eq!(patched, json!({"age": 31, "id": 0}));
    assert_error(
        people.patch(None, &json!({}), &none()).await,
        ErrorKind::MethodNotAllowed,
        "Can not patch multiple entries",
    );
    assert_error(
        people
            .remove(Some(&Id::from(1)), &params(json!({"age": 30})))
            .await,
        ErrorKind::NotFound,
        "No record found for id '1'",
    );
    let removed = people
        .remove(Some(&Id::from("2")), &params(json!({"$select": "name"})))
        .await
        .unwrap();
    assert_eq!(removed, json!({"name": "carol", "id": 2}));
    assert_error(
        people.remove(None, &none()).await,
        ErrorKind::MethodNotAllowed,
        "Can not remove multiple entries",
    );
    assert_eq!(
        names(&people.find(&none()).await.unwrap()),
        ["alice", "bobby", "dave"]
    );
}

#[tokio::test]
async fn patch_and_remove_many_use_only_conditions() {
    let people = seeded(memory().await.service("people").unwrap().multi(true)).await;
    let patched = people
        .patch(
            None,
            &json!({"young": true}),
            &params(json!({"age": "20", "$limit": 1, "$select": ["young"]})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched,
        json!([{"young": true, "id": 1}, {"young": true, "id": 3}])
    );
    assert_eq!(
        names(
            &people
                .find(&params(json!({"young": "true"})))
                .await
                .unwrap()
        ),
        ["bob", "dave"]
    );
    let removed = people
        .remove(None, &params(json!({"age": {"$lt": 35}, "$skip": 5})))
        .await
        .unwrap();
    assert_eq!(names(&removed), ["alice", "bob", "dave"]);
    assert_eq!(names(&people.find(&none()).await.unwrap()), ["carol"]);
}

#[tokio::test]
async fn protected_fields_are_refused_to_external_callers() {
    let users = memory()
        .await
        .service("users")
        .unwrap()
        .protected_fields(["password"]);
    users
        .create(&json!({"email": "a@x", "password": "$2hash"}), &none())
        .await
        .unwrap();
    for query in [
        json!({"password": {"$gt": "$2"}}),
        json!({"$sort": {"password": 1}}),
        json!({"$select": ["password"]}),
    ] {
        let mut external = params(query);
        external.provider = Some(Provider::Rest);
        assert_eq!(
            users.find(&external).await.unwrap_err().kind(),
            ErrorKind::BadRequest
        );
        assert_eq!(
            users.get(&Id::from(0), &external).await.unwrap_err().kind(),
            ErrorKind::BadRequest
        );
    }
    let found = users
        .find(&params(json!({"email": "a@x", "password": {"$gt": "$2"}})))
        .await
        .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn sql_metacharacters_in_values_are_literal() {
    let items = memory().await.service("items").unwrap();
    let nasty = [
        "100%",
        "a_b",
        "it's",
        "x'; DROP TABLE items; --",
        "\"q\"",
        "back\\slash",
        "%",
        "_",
        "\u{0}nul",
    ];
    for text in nasty {
        items.create(&json!({"s": text}), &none()).await.unwrap();
    }
    items.create(&json!({"s": "abc"}), &none()).await.unwrap();
    for (i, text) in nasty.iter().enumerate() {
        let found = items.find(&params(json!({"s": text}))).await.unwrap();
        assert_eq!(found, json!([{"s": text, "id": i}]), "{text}");
    }
    let found = items
        .find(&params(json!({"s": {"$in": ["%", "_"]}})))
        .await
        .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 2);
    assert_eq!(
        items.find(&none()).await.unwrap().as_array().unwrap().len(),
        nasty.len() + 1
    );
}

#[tokio::test]
async fn injection_through_names_is_refused_and_the_table_survives() {
    let users = seeded(memory().await.service("users").unwrap()).await;
    for query in [
        json!({"$select": ["name AS x"]}),
        json!({"$select": "1;--"}),
        json!({"$sort": {"name;DROP TABLE users": 1}}),
        json!({"name) OR 1=1 --": "x"}),
        json!({"$or": [{"a' OR '1'='1": 1}]}),
    ] {
        let err = users.find(&params(query.clone())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{query}");
    }
    assert_eq!(names(&users.find(&none()).await.unwrap()).len(), 4);
}

#[tokio::test]
async fn arrays_and_objects_sort_by_the_same_json_text_as_serde() {
    let items = memory().await.service("items").unwrap();
    let values = [
        json!({"b": 1, "a": [1, 2]}),
        json!(["é", "\u{1f}", "\"", "\\", 1.5, -0.0, 1e20, null, true]),
        json!({"a": "z"}),
        json!([]),
        json!({}),
        json!([[1], {"x": "\u{7f}"}]),
        json!({"k": "line\nbreak\t"}),
    ];
    for v in &values {
        items.create(&json!({"v": v}), &none()).await.unwrap();
    }
    let expected: Vec<String> = {
        let mut texts: Vec<(u8, String)> = values
            .iter()
            .map(|v| (u8::from(v.is_object()), v.to_string()))
            .collect();
        texts.sort();
        texts.into_iter().map(|(_, t)| t).collect()
    };
    let found = items
        .find(&params(json!({"$sort": {"v": 1}})))
        .await
        .unwrap();
    let actual: Vec<String> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["v"].to_string())
        .collect();
    assert_eq!(actual, expected);
}

/// The shape that used to be filtered in Rust after reading the whole
/// table (more values than one statement binds) is now 400, with the
/// default bounds and with bounds lifted past what SQLite can bind; at the
/// default bounds a query runs in SQL.
#[tokio::test]
async fn a_query_past_the_limits_is_400_and_one_the_store_allows_is_answered_in_sql() {
    let store = memory().await;
    let page = Paginate {
        default: 10,
        max: 10,
    };
    let items = store.service("items").unwrap().paginate(page);
    for n in 0..30 {
        items
            .create(&json!({"n": n, "s": n.to_string()}), &none())
            .await
            .unwrap();
    }
    // 61 lists of 500 numeric strings: over 30,000 bound values.
    let mut query = Map::new();
    let mut entries = Vec::new();
    for i in 0..61 {
        let list: Vec<String> = (0..500).map(|v| (v * (i + 1) % 1000).to_string()).collect();
        entries.push(json!({"n": {"$in": list}}));
    }
    query.insert("$or".to_owned(), Value::Array(entries));
    query.insert("s".to_owned(), json!({"$nin": ["3"]}));
    query.insert("$sort".to_owned(), json!({"n": -1}));
    let query = Value::Object(query);
    let error = items
        .find(&Params::with_query(query.clone()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), 400);
    assert_eq!(
        error.message(),
        "Query has too many values: at most 1000 in all its comparisons are allowed"
    );
    let unbounded = store
        .service("items")
        .unwrap()
        .paginate(page)
        .query_limits(QueryLimits {
            comparisons: usize::MAX,
            values: usize::MAX,
            ..QueryLimits::default()
        });
    // Past the default limits by configuration: the conditions no index
    // serves are one bound program, not 30,500 bound values, so SQLite
    // answers it (every `n` is in the first list; `s` "3" is left out).
    let found = unbounded.find(&Params::with_query(query)).await.unwrap();
    assert_eq!(found["total"], json!(29));
    // At the default bounds: 10 comparisons, 1000 values, answered in SQL.
    let mut query = Map::new();
    let list: Vec<String> = (0..100).map(|v| (v * 2).to_string()).collect();
    query.insert("n".to_owned(), json!({ "$nin": list }));
    for i in 0..9 {
        let list: Vec<i64> = (0..100).map(|v| 1000 + v).collect();
        query.insert(format!("f{i}"), json!({ "$in": list.clone() }));
    }
    let found = items
        .find(&Params::with_query(Value::Object(query.clone())))
        .await
        .unwrap();
    assert_eq!(found["total"], json!(0));
    for i in 0..9 {
        query.insert(format!("f{i}"), json!({ "$nin": [1000] }));
    }
    let found = items
        .find(&Params::with_query(Value::Object(query)))
        .await
        .unwrap();
    assert_eq!(found["total"], json!(15), "the odd numbers below 30");
}

#[tokio::test]
async fn a_file_database_persists_in_wal_mode_with_readers() {
    let dir = temp_dir("file");
    let path = dir.join("nested/folder/app.sqlite");
    {
        let store = SqliteStore::open_with_readers(&path, 2).await.unwrap();
        let items = store.service("items").unwrap().unique(["k"]);
        items.create(&json!({"k": "a"}), &none()).await.unwrap();
        items.create(&json!({"k": "b"}), &none()).await.unwrap();
        items.remove(Some(&Id::from(1)), &none()).await.unwrap();
        let (mode, sync): (String, i64) = store
            .write(|tx| {
                let mode = tx
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(db_error)?;
                let sync = tx
                    .query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(db_error)?;
                Ok((mode, sync))
            })
            .await
            .unwrap();
        assert_eq!(
            (mode.as_str(), sync),
            ("wal", 2),
            "WAL and synchronous = FULL"
        );
        // Readers cannot write.
        let err = store
            .read(|tx| tx.execute("DELETE FROM items", []).map_err(db_error))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GeneralError);
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let items = store.service("items").unwrap().unique(["k"]);
    assert_eq!(
        items.find(&none()).await.unwrap(),
        json!([{"k": "a", "id": 0}])
    );
    // The counter survived: id 1 is not handed out again.
    assert_eq!(
        items.create(&json!({}), &none()).await.unwrap()["id"],
        json!(2)
    );
    assert_eq!(
        items
            .create(&json!({"k": "a"}), &none())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_and_writes() {
    let dir = temp_dir("concurrent");
    let store = SqliteStore::open_with_readers(dir.join("db.sqlite"), 2)
        .await
        .unwrap();
    let items = Arc::new(
        store
            .service("items")
            .unwrap()
            .paginate(Paginate { default: 5, max: 5 }),
    );
    let mut tasks = Vec::new();
    for t in 0..4 {
        let items = Arc::clone(&items);
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                items
                    .create(&json!({"t": t, "i": i}), &Params::new())
                    .await
                    .unwrap();
                let page = items
                    .find(&Params::with_query(json!({"t": t})))
                    .await
                    .unwrap();
                assert_eq!(page["total"], json!(i + 1));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(items.find(&none()).await.unwrap()["total"], json!(40));
    drop(items);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn works_through_an_app_and_creates_tables_on_setup() {
    let store = memory().await;
    let app = crate::App::new();
    app.use_service("items", store.service("items").unwrap().multi(true))
        .unwrap();
    app.setup().await.unwrap();
    let exists: i64 = store
        .read(|tx| {
            tx.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'items'",
                [],
                |r| r.get(0),
            )
            .map_err(db_error)
        })
        .await
        .unwrap();
    assert_eq!(exists, 1);
    let items = app.service("items").unwrap();
    items
        .create(json!([{"n": 1}, {"n": 2}]), none())
        .await
        .unwrap();
    let found = items
        .find(params(json!({"n": {"$gt": "1"}})))
        .await
        .unwrap();
    assert_eq!(found, json!([{"n": 2, "id": 1}]));
}

#[test]
fn conflict_messages_name_declared_unique_fields() {
    let err = conflict_message("UNIQUE constraint failed: index 'users__unique__email'");
    assert_eq!(err.message(), "A record with this 'email' already exists");
    let err = conflict_message("UNIQUE constraint failed: users.id");
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

/// A file store (in a fresh folder, returned for removal) with a table
/// `t (n INTEGER PRIMARY KEY)` made through a raw write.
async fn with_table_t(name: &str) -> (PathBuf, SqliteStore) {
    let dir = temp_dir(name);
    let store = SqliteStore::open(dir.join("t.sqlite")).await.unwrap();
    store
        .write(|tx| {
            tx.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
                .map_err(db_error)
        })
        .await
        .unwrap();
    (dir, store)
}

/// The numbers in table `t`, in order.
async fn numbers_in_t(store: &SqliteStore) -> Vec<i64> {
    store
        .read(|tx| {
            let mut stmt = tx.prepare("SELECT n FROM t ORDER BY n").map_err(db_error)?;
            let rows = stmt.query_map([], |row| row.get(0)).map_err(db_error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_error)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_queue_together_commit_together_and_a_failure_fails_alone() {
    let (dir, store) = with_table_t("group").await;
    // Holds the writer thread so that the writes below queue up and run
    // as one batch.
    let (started, wait_started) = tokio::sync::oneshot::channel();
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |_| {
                    let _ = started.send(());
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    Ok(())
                })
                .await
        })
    };
    wait_started.await.unwrap();
    let mut writes = Vec::new();
    for n in 0..20_i64 {
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    tx.execute("INSERT INTO t (n) VALUES (?1)", [n])
                        .map_err(db_error)?;
                    if n == 7 {
                        // After its insert: a failing write must leave nothing.
                        return Err(Error::bad_request("seven fails"));
                    }
                    Ok(n)
                })
                .await
        }));
    }
    blocker.await.unwrap().unwrap();
    for (n, write) in writes.into_iter().enumerate() {
        let result = write.await.unwrap();
        if n == 7 {
            assert_eq!(result.unwrap_err().message(), "seven fails");
        } else {
            assert_eq!(result.unwrap(), i64::try_from(n).unwrap());
        }
    }
    let stored = numbers_in_t(&store).await;
    let expected: Vec<i64> = (0..20).filter(|n| *n != 7).collect();
    assert_eq!(stored, expected);
    // A panicking write fails alone too, and the writer keeps going.
    let panicked = store
        .write(|_| -> Result<()> { panic!("a bug in a write") })
        .await;
    assert_eq!(panicked.unwrap_err().kind(), ErrorKind::GeneralError);
    assert_eq!(store.write(|_| Ok(5)).await.unwrap(), 5);
    drop(store);
    std::fs::remove_dir_all(dir).ok();
}

/// The `name` of record `id`, read with `get`.
async fn name_of(service: &SqliteService, id: &Id) -> Value {
    service.get(id, &none()).await.unwrap()["name"].clone()
}

/// Sets the `name` of record `id` with `patch`.
async fn rename(service: &SqliteService, id: &Id, name: &str) {
    service
        .patch(Some(id), &json!({"name": name}), &none())
        .await
        .unwrap();
}

/// A file store (its folder, its file) whose `items` hold record 0 named
/// `name`, read once so that it is cached.
async fn one_cached_item(
    folder: &str,
    name: &str,
) -> (PathBuf, PathBuf, SqliteStore, SqliteService) {
    let dir = temp_dir(folder);
    let file = dir.join("items.sqlite");
    let store = SqliteStore::open(&file).await.unwrap();
    let items = store.service("items").unwrap();
    items.create(&json!({"name": name}), &none()).await.unwrap();
    assert_eq!(name_of(&items, &Id::Number(0)).await, name);
    (dir, file, store, items)
}

#[tokio::test]
async fn cached_records_never_outlive_a_write_through_the_store() {
    let (dir, file, store, items) = one_cached_item("cache", "a").await;
    let id = Id::Number(0);

    // Through the service: the next get sees the change.
    rename(&items, &id, "b").await;
    assert_eq!(name_of(&items, &id).await, "b");
    // The query's conditions apply to a cached record as to a read one.
    let get = items.get(&id, &params(json!({"name": "a"}))).await;
    assert_error(get, ErrorKind::NotFound, "No record found for id '0'");
    // Raw SQL through the store empties every table's cache.
    store
        .write(|tx| {
            tx.execute_batch("UPDATE items SET data = json_set(data, '$.name', 'c') WHERE id = 0")
                .map_err(db_error)
        })
        .await
        .unwrap();
    assert_eq!(name_of(&items, &id).await, "c");
    items.remove(Some(&id), &none()).await.unwrap();
    assert_eq!(
        items.get(&id, &none()).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Another connection (another process, say) is not seen until the
    // entry expires: the cache is in use, and the TTL bounds it.
    items.create(&json!({"name": "x"}), &none()).await.unwrap();
    let id = Id::Number(1);
    assert_eq!(name_of(&items, &id).await, "x");
    let other = SqliteStore::open(&file).await.unwrap();
    let elsewhere = other.service("items").unwrap();
    rename(&elsewhere, &id, "y").await;
    assert_eq!(name_of(&items, &id).await, "x");
    store.set_record_cache_ttl(std::time::Duration::ZERO);
    assert_eq!(name_of(&items, &id).await, "y");
    drop((store, other));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_write_may_not_end_or_nest_the_shared_transaction() {
    let (dir, store) = with_table_t("authorizer").await;
    for statement in [
        "COMMIT",
        "ROLLBACK",
        "BEGIN",
        "SAVEPOINT mine",
        "RELEASE plume_batch_write",
    ] {
        let result = store
            .write(move |tx| {
                tx.execute("INSERT INTO t (n) VALUES (1)", [])
                    .map_err(db_error)?;
                tx.execute_batch(statement).map_err(db_error)
            })
            .await;
        let error = result.expect_err(statement);
        assert_eq!(error.kind(), ErrorKind::GeneralError, "{statement}");
    }
    // Nothing of the refused writes was kept, and writing still works.
    store
        .write(|tx| {
            tx.execute("INSERT INTO t (n) VALUES (2)", [])
                .map_err(db_error)
        })
        .await
        .unwrap();
    let rows = numbers_in_t(&store).await;
    assert_eq!(rows, vec![2]);
    drop(store);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_cache_knows_that_table_names_ignore_case() {
    let store = memory().await;
    let lower = store.service("items").unwrap();
    let upper = store.service("Items").unwrap();
    lower.create(&json!({"name": "a"}), &none()).await.unwrap();
    let id = Id::Number(0);
    assert_eq!(name_of(&upper, &id).await, "a");
    rename(&lower, &id, "b").await;
    assert_eq!(name_of(&upper, &id).await, "b");
}

#[tokio::test]
async fn a_logout_leaves_the_other_tables_cached() {
    let (dir, file, store, items) = one_cached_item("logout-cache", "x").await;
    let id = Id::Number(0);
    // A change the cache cannot know of (another connection)...
    let other = SqliteStore::open(&file).await.unwrap();
    rename(&other.service("items").unwrap(), &id, "y").await;
    // ...stays hidden after a revocation: only the revocation table's
    // entries were dropped.
    SqliteRevocations::new(&store)
        .revoke("jti", 4_000_000_000)
        .await
        .unwrap();
    assert_eq!(name_of(&items, &id).await, "x");
    drop((store, other));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_read_whose_caller_stops_waiting_is_stopped_and_frees_its_connection() {
    for store in [
        memory().await,
        SqliteStore::open_with_readers(temp_dir("abandoned").join("db.sqlite"), 1)
            .await
            .unwrap(),
    ] {
        // No time budget: only the caller's giving up can stop it.
        store.set_query_timeout(std::time::Duration::ZERO);
        let endless = store.read_client_query(|tx| {
            tx.query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                 SELECT count(*) FROM c",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(db_error)
        });
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), endless).await;
        assert!(gave_up.is_err(), "the endless read cannot have finished");
        // The only connection that reads is free again: without the stop,
        // this would wait for ever (bounded here, so the test fails).
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            store.read(|tx| {
                tx.query_row("SELECT 7", [], |row| row.get::<_, i64>(0))
                    .map_err(db_error)
            }),
        )
        .await;
        assert_eq!(next.expect("the connection was freed").unwrap(), 7);
    }
}

#[tokio::test]
async fn a_read_past_its_time_budget_is_stopped_with_400_and_the_store_goes_on() {
    for store in [
        memory().await,
        SqliteStore::open(temp_dir("budget").join("db.sqlite"))
            .await
            .unwrap(),
    ] {
        store.set_query_timeout(std::time::Duration::from_millis(20));
        let started = std::time::Instant::now();
        // Never ends on its own.
        let endless = |tx: &rusqlite::Connection| {
            tx.query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                 WHERE x < 1000000) SELECT count(*) FROM c",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(db_error)
        };
        // The store's own reads have no budget (a million rows take
        // longer than 20 ms in any build).
        assert_eq!(store.read(endless).await.unwrap(), 1_000_000);
        let error = store
            .read_client_query(|tx| {
                tx.query_row(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                     SELECT count(*) FROM c",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(db_error)
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), 400, "{error}");
        assert!(error.message().contains("queryTimeoutMs"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The connection serves the next read and writes are never cut.
        let items = store.service("items").unwrap();
        items
            .create(&json!({"a": 1}), &Params::new())
            .await
            .unwrap();
        let found = items.find(&Params::new()).await.unwrap();
        assert_eq!(found, json!([{"a": 1, "id": 0}]));
    }
}

/// Reads run on threads under `SCHED_BATCH` (see `pool::batch_scheduling`),
/// so a woken reader does not preempt the async worker that woke it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn reads_run_on_threads_that_do_not_preempt_the_async_workers() {
    let dir = temp_dir("batch");
    let store = SqliteStore::open(dir.join("db.sqlite")).await.unwrap();
    assert!(store.read(|_| Ok(pool::runs_batch())).await.unwrap());
    // Only the readers: the calling thread keeps the normal policy.
    assert!(!pool::runs_batch());
    let _ = std::fs::remove_dir_all(dir);
}
