//! The stores that the query tests run against, filled with the same
//! records.

use plume::store::{MemoryService, PostgresStore, SqliteStore};
use plume::{Paginate, Params, Service};
use serde_json::Value;

/// A store under test and its name for failure messages.
pub(crate) struct Store {
    pub(crate) name: &'static str,
    pub(crate) service: Box<dyn Service>,
}

/// A MemoryService, a SqliteService over `:memory:` and, when a test
/// server is configured (`tests/support/backends.rs`), a PostgresService
/// in a schema of its own, all with `protected_fields(["secret"])`, the
/// given pagination, and `records` created in order (so all give the same
/// automatic ids). PostgreSQL is left out for records holding U+0000,
/// which it cannot store (its own tests check the 400).
pub(crate) async fn every(paginate: Option<Paginate>, records: &[Value]) -> Vec<Store> {
    let mut memory = MemoryService::new().protected_fields(["secret"]);
    let sqlite = SqliteStore::open(":memory:").await.unwrap();
    let mut sqlite = sqlite
        .service("items")
        .unwrap()
        .protected_fields(["secret"])
        .index(["name"]);
    if let Some(paginate) = paginate {
        memory = memory.paginate(paginate);
        sqlite = sqlite.paginate(paginate);
    }
    let mut stores = vec![
        Store {
            name: "memory",
            service: Box::new(memory),
        },
        Store {
            name: "sqlite",
            service: Box::new(sqlite),
        },
    ];
    let storable = !records.iter().any(|r| r.to_string().contains("\\u0000"));
    if storable && let Some(url) = crate::support::backends::postgres_url("the query suite").await {
        let store = PostgresStore::connect(&url).await.unwrap();
        let mut postgres = store
            .service("items")
            .unwrap()
            .protected_fields(["secret"])
            .index(["name"]);
        if let Some(paginate) = paginate {
            postgres = postgres.paginate(paginate);
        }
        stores.push(Store {
            name: "postgres",
            service: Box::new(postgres),
        });
    }
    for store in &stores {
        for record in records {
            store.service.create(record, &Params::new()).await.unwrap();
        }
    }
    stores
}
