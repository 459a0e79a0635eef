//! Services over storage.
//!
//! A store is a [`Service`](crate::Service) that keeps records and answers
//! the six standard methods with Feathers' semantics: queries in the
//! language of [`crate::query`], pagination, `multi` for create, patch and
//! remove on many records. [`MemoryService`] keeps them in memory,
//! [`SqliteService`] in a table of an SQLite database ([`SqliteStore`]),
//! [`PostgresService`] in a table of a PostgreSQL database
//! ([`PostgresStore`]), which several instances of an app can share. The
//! two database stores declare indexes and unique fields the same way.
//!
//! The helpers here are shared by every store so they agree on pagination
//! and on the shape of a page.

mod base;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod declared;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub(crate) use base::many_not_allowed;

/// The SQLite filename that opens a private in-memory database; known
/// without the `sqlite` feature, for configuration and secrets.
pub(crate) const SQLITE_MEMORY: &str = ":memory:";

/// The SQLite database file when the configuration names none.
pub(crate) const SQLITE_DEFAULT_FILENAME: &str = "data/plume.sqlite";

pub use memory::MemoryService;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresRevocations, PostgresService, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteReadiness, SqliteRevocations, SqliteService, SqliteStore};

use serde_json::{Map, Value};

use crate::{Paginate, PaginateParam};

/// The pagination in effect for a call: the call's [`PaginateParam`]
/// overrides the service's setting.
pub(crate) fn effective_paginate(
    service: Option<Paginate>,
    param: PaginateParam,
) -> Option<Paginate> {
    match param {
        PaginateParam::Service => service,
        PaginateParam::Disabled => None,
        PaginateParam::With(paginate) => Some(paginate),
    }
}

/// A page of `find` results, in Feathers' shape and key order:
/// `{"total", "limit", "skip", "data"}`.
pub(crate) fn page(total: usize, limit: usize, skip: usize, data: Vec<Value>) -> Value {
    let mut page = Map::new();
    page.insert("total".to_owned(), Value::from(total));
    page.insert("limit".to_owned(), Value::from(limit));
    page.insert("skip".to_owned(), Value::from(skip));
    page.insert("data".to_owned(), Value::Array(data));
    Value::Object(page)
}

/// The data of `update` and `patch`: an object, else 400 with the same
/// message in every store.
pub(crate) fn data_object<'d>(
    data: &'d Value,
    method: &str,
) -> crate::Result<&'d Map<String, Value>> {
    data.as_object().ok_or_else(|| {
        crate::Error::bad_request(format!(
            "The data of '{method}' must be an object, got {}",
            crate::service::json_type(data)
        ))
    })
}

/// 404 for an id that matches no record (the same message in every store).
pub(crate) fn not_found(id: &crate::Id) -> crate::Error {
    crate::Error::not_found(format!("No record found for id '{id}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_overrides_service_pagination() {
        let service = Some(Paginate {
            default: 10,
            max: 50,
        });
        let call = Paginate { default: 1, max: 2 };
        assert_eq!(effective_paginate(service, PaginateParam::Service), service);
        assert_eq!(effective_paginate(service, PaginateParam::Disabled), None);
        assert_eq!(
            effective_paginate(None, PaginateParam::With(call)),
            Some(call)
        );
    }

    #[test]
    fn page_keys_are_in_feathers_order() {
        let page = page(3, 1, 2, vec![json!({"id": 2})]);
        assert_eq!(
            serde_json::to_string(&page).unwrap(),
            r#"{"total":3,"limit":1,"skip":2,"data":[{"id":2}]}"#
        );
    }
}
