//! The query plans of the statements `find` runs, read with
//! `EXPLAIN QUERY PLAN`: declared indexes must serve filters, `$sort` and
//! counts, or a table of a million records is read for every page.

use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};

use super::table::{count_statement, page_statement};
use super::*;
use crate::query::{QueryOptions, parse_query};
use crate::{Paginate, Params, Service};

async fn memory() -> SqliteStore {
    SqliteStore::open(MEMORY).await.unwrap()
}

/// The default app's messages: a sort index on `createdAt` and one page
/// of one user's messages, newest first.
async fn messages(store: &SqliteStore) -> SqliteService {
    let messages = store
        .service("messages")
        .unwrap()
        .paginate(Paginate {
            default: 10,
            max: 50,
        })
        .index(["createdAt"])
        .compound_index(["userId", "createdAt"]);
    messages.ensure_schema().await.unwrap();
    messages
}

/// The plan of `sql` (with the query's bound values), one line per step.
async fn plan_of(store: &SqliteStore, sql: String, params: Vec<SqlValue>) -> Vec<String> {
    store
        .read(move |tx| {
            let mut stmt = tx
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .map_err(db_error)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&params), |row| {
                    row.get::<_, String>(3)
                })
                .map_err(db_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
        })
        .await
        .unwrap()
}

/// The plans of a find's page and count statements for `query`.
async fn find_plans(
    store: &SqliteStore,
    service: &SqliteService,
    query: Value,
) -> (Vec<String>, Vec<String>) {
    let table = service.config.table.as_str();
    let options = QueryOptions::new("id").paginate(Some(Paginate {
        default: 10,
        max: 50,
    }));
    let parsed = parse_query(query.as_object().unwrap(), &options).unwrap();
    let compiled = sql::condition(&parsed.condition, &|f| service.config.indexed(f)).unwrap();
    let page = page_statement(table, &parsed, &compiled, &|f| service.config.sortable(f)).unwrap();
    let count = count_statement(table, &compiled);
    (
        plan_of(store, page, compiled.params.clone()).await,
        plan_of(store, count, compiled.params).await,
    )
}

/// True when the plan sorts all the rows it reads (not only the ties of
/// one key, which SQLite calls the last term or right part).
fn sorts_everything(plan: &[String]) -> bool {
    plan.iter()
        .any(|line| line == "USE TEMP B-TREE FOR ORDER BY")
}

fn reads_the_table(plan: &[String]) -> bool {
    plan.iter()
        .any(|line| line.starts_with("SCAN") && !line.contains("INDEX"))
}

#[tokio::test]
async fn the_newest_page_walks_the_sort_index_in_both_directions() {
    let store = memory().await;
    let messages = messages(&store).await;
    for direction in [-1, 1] {
        let (page, _) = find_plans(
            &store,
            &messages,
            json!({"$limit": 10, "$sort": {"createdAt": direction}}),
        )
        .await;
        assert!(
            page.iter()
                .any(|line| line.contains("USING INDEX messages__sort__createdAt")),
            "{direction}: {page:?}"
        );
        assert!(!sorts_everything(&page), "{direction}: {page:?}");
    }
}

#[tokio::test]
async fn one_users_newest_page_walks_the_compound_index() {
    let store = memory().await;
    let messages = messages(&store).await;
    // A number (JSON bodies, socket.io), and the string a REST query
    // string gives. The string also matches a stored "7" (the coercion
    // rules), so the index is searched for two values and only that
    // user's records are sorted: the same plan for a page, more work for
    // a user with very many records.
    for (user, sorted) in [(json!(7), false), (json!("7"), true)] {
        let (page, count) = find_plans(
            &store,
            &messages,
            json!({"userId": user, "$limit": 10, "$sort": {"createdAt": -1}}),
        )
        .await;
        assert!(
            page.iter()
                .any(|line| line.contains("USING INDEX messages__index__userId,createdAt")),
            "{user}: {page:?}"
        );
        assert_eq!(sorts_everything(&page), sorted, "{user}: {page:?}");
        assert!(!reads_the_table(&count), "{user}: {count:?}");
    }
}

#[tokio::test]
async fn a_filtered_count_is_read_from_the_index_alone() {
    let store = memory().await;
    let items = store
        .service("items")
        .unwrap()
        .index(["userId", "createdAt"]);
    items.ensure_schema().await.unwrap();
    for (query, index) in [
        (json!({"userId": 7}), "items__index__userId"),
        (json!({"userId": "7"}), "items__index__userId"),
        (
            json!({"userId": {"$in": [1, 2, 3]}}),
            "items__index__userId",
        ),
        (
            json!({"createdAt": {"$gt": 1_700_000_000_000_i64}}),
            "items__index__createdAt",
        ),
    ] {
        let (_, count) = find_plans(&store, &items, query.clone()).await;
        assert!(
            count
                .iter()
                .any(|line| line.contains(&format!("USING COVERING INDEX {index}"))),
            "{query}: {count:?}"
        );
    }
}

#[tokio::test]
async fn ranges_and_sorts_on_an_indexed_field_use_its_indexes() {
    let store = memory().await;
    let messages = messages(&store).await;
    let (page, _) = find_plans(
        &store,
        &messages,
        json!({"createdAt": {"$gte": 5}, "$sort": {"createdAt": 1}}),
    )
    .await;
    assert!(!reads_the_table(&page), "{page:?}");
    assert!(!sorts_everything(&page), "{page:?}");
}

#[tokio::test]
async fn an_unindexed_field_is_a_scan_and_the_plans_say_so() {
    // The check above would pass for any plan if it never saw a scan.
    let store = memory().await;
    let messages = messages(&store).await;
    let (page, count) = find_plans(
        &store,
        &messages,
        json!({"text": "x", "$sort": {"text": -1}}),
    )
    .await;
    assert!(reads_the_table(&page), "{page:?}");
    assert!(sorts_everything(&page), "{page:?}");
    assert!(reads_the_table(&count), "{count:?}");
}

/// The count of `table` as SQLite counts it, and as Plume keeps it.
async fn counts(store: &SqliteStore, table: &'static str) -> (i64, Option<i64>) {
    store
        .read(move |tx| {
            let counted = tx
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get(0)
                })
                .map_err(db_error)?;
            Ok((counted, schema::kept_count(tx, table)?))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unfiltered_total_is_the_kept_count_and_stays_exact() {
    let dir = std::env::temp_dir().join(format!("plume-counts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("db.sqlite");
    let store = SqliteStore::open(&file).await.unwrap();
    let items = store
        .service("items")
        .unwrap()
        .paginate(Paginate {
            default: 10,
            max: 50,
        })
        .multi(true);
    let many: Vec<Value> = (0..25).map(|i| json!({"n": i})).collect();
    items
        .create(&Value::Array(many), &Params::new())
        .await
        .unwrap();
    items
        .remove(None, &Params::with_query(json!({"n": {"$lt": 5}})))
        .await
        .unwrap();
    // A create that fails rolls its count back with it.
    let failing = json!([{"id": 100}, {"id": 100}]);
    assert!(items.create(&failing, &Params::new()).await.is_err());
    assert_eq!(counts(&store, "items").await, (20, Some(20)));

    // Writes from another connection (the sqlite3 shell, another
    // process) go through the same triggers.
    let other = rusqlite::Connection::open(&file).unwrap();
    other
        .execute_batch(
            "INSERT INTO items (id, id_int, data) VALUES ('x', NULL, jsonb('{\"id\":\"x\"}'));
             INSERT INTO items (id, id_int, data) VALUES ('y', NULL, '{\"id\":\"y\"}');
             DELETE FROM items WHERE id = 10;",
        )
        .unwrap();
    drop(other);
    assert_eq!(counts(&store, "items").await, (21, Some(21)));

    // The kept count is what an unfiltered page says; `$limit=0` too.
    let page = items
        .find(&Params::with_query(json!({"$limit": 0})))
        .await
        .unwrap();
    assert_eq!(page["total"], json!(21));
    let page = items.find(&Params::new()).await.unwrap();
    assert_eq!(
        (
            page["total"].clone(),
            page["data"].as_array().unwrap().len()
        ),
        (json!(21), 10)
    );
    // A filtered total is counted, or read off a short page.
    for (query, total) in [
        (json!({"n": {"$gte": 20}}), 5),
        (json!({"n": {"$gte": 5}, "$limit": 3}), 19),
        (json!({"n": {"$gte": 5}, "$skip": 30}), 19),
        (json!({"n": {"$gte": 5}, "$skip": 17}), 19),
        (json!({"n": "none"}), 0),
    ] {
        let page = items
            .find(&Params::with_query(query.clone()))
            .await
            .unwrap();
        assert_eq!(page["total"], json!(total), "{query}");
    }
    drop(items);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn indexes_follow_the_declarations() {
    let store = memory().await;
    let names = |store: SqliteStore| async move {
        store
            .read(|tx| {
                let mut stmt = tx
                    .prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items' \
                         AND name LIKE 'items%' ORDER BY name",
                    )
                    .map_err(db_error)?;
                let rows = stmt
                    .query_map([], |row| row.get::<_, String>(0))
                    .map_err(db_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
            })
            .await
            .unwrap()
    };
    let first = store
        .service("items")
        .unwrap()
        .index(["a"])
        .compound_index(["b", "c"])
        .unique(["d"]);
    first.ensure_schema().await.unwrap();
    assert_eq!(
        names(store.clone()).await,
        [
            "items__id_int",
            "items__index__a",
            "items__index__b,c",
            "items__sort__a",
            "items__unique__d"
        ]
    );
    // A later start without `a` and with `d` ignoring case drops what is
    // no longer declared.
    let second = store
        .service("items")
        .unwrap()
        .compound_index(["b", "c"])
        .unique_ignoring_case(["d"]);
    second.ensure_schema().await.unwrap();
    assert_eq!(
        names(store.clone()).await,
        ["items__id_int", "items__index__b,c", "items__uniqueci__d"]
    );
}

#[tokio::test]
async fn indexes_from_the_configuration() {
    let store = memory().await;
    let service = store
        .service("items")
        .unwrap()
        .indexes_from_config(&json!([
            "a",
            ["b", "c"],
            ["e"],
            {"unique": "d", "ignoreCase": true}
        ]))
        .unwrap();
    service.ensure_schema().await.unwrap();
    service
        .create(&json!({"d": "X"}), &Params::new())
        .await
        .unwrap();
    let error = service
        .create(&json!({"d": "x"}), &Params::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), 409);
    for bad in [
        json!("a"),
        json!([1]),
        json!([[]]),
        json!([["a", 2]]),
        json!([{"unique": "d", "ignoreCase": "yes"}]),
        json!([{"unique": "d", "other": true}]),
        json!([{"index": "d"}]),
    ] {
        let error = store
            .service("items")
            .unwrap()
            .indexes_from_config(&bad)
            .unwrap_err();
        assert!(error.message().contains("Invalid index"), "{bad}: {error}");
    }
}
