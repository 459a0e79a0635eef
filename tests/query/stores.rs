//! The stores that the query tests run against, filled with the same
//! records.

use plume::store::{MemoryService, SqliteStore};
use plume::{Paginate, Params, Service};
use serde_json::Value;

/// A store under test and its name for failure messages.
pub(crate) struct Store {
    pub(crate) name: &'static str,
    pub(crate) service: Box<dyn Service>,
}

/// A MemoryService and a SqliteService over `:memory:`, both with
/// `protected_fields(["secret"])`, the given pagination, and `records`
/// created in order (so both give the same automatic ids).
pub(crate) async fn both(paginate: Option<Paginate>, records: &[Value]) -> Vec<Store> {
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
    let stores = vec![
        Store {
            name: "memory",
            service: Box::new(memory),
        },
        Store {
            name: "sqlite",
            service: Box::new(sqlite),
        },
    ];
    for store in &stores {
        for record in records {
            store.service.create(record, &Params::new()).await.unwrap();
        }
    }
    stores
}
