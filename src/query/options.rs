//! [`QueryOptions`]: what a store tells the parser about itself and the
//! call (pagination, id field, protected and case-insensitive fields,
//! bounds).

use std::sync::Arc;

use super::QueryLimits;
use crate::{Error, Paginate, Result};

/// How a store parses queries: its pagination, its id field and its
/// protected fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    /// The pagination in effect for this call, if any: it decides the
    /// default and the largest `$limit`.
    pub paginate: Option<Paginate>,
    /// The id field, which `$select` always keeps.
    pub id_field: String,
    /// Fields an external caller may not filter, sort or select on (see
    /// the [module docs](crate::query#protected-fields)). Shared, because a store
    /// builds options on every call.
    pub protected_fields: Arc<[String]>,
    /// True when a transport made the call (`params.provider` is set):
    /// only then are [`protected_fields`](Self::protected_fields) refused.
    pub external: bool,
    /// The bounds on a query's size, for every caller.
    pub limits: QueryLimits,
    /// Fields whose strings compare ignoring ASCII case in equality,
    /// `$ne`, `$in` and `$nin` (a store's case-insensitive unique fields).
    pub fold_case: Arc<[String]>,
}

impl QueryOptions {
    /// Options for a store whose id field is `id_field`, without pagination
    /// or protected fields, for an internal call.
    pub fn new(id_field: impl Into<String>) -> Self {
        Self {
            paginate: None,
            id_field: id_field.into(),
            protected_fields: Arc::from(Vec::new()),
            external: false,
            limits: QueryLimits::default(),
            fold_case: Arc::from(Vec::new()),
        }
    }

    /// Sets the fields compared ignoring case.
    #[must_use]
    pub fn fold_case(mut self, fields: Arc<[String]>) -> Self {
        self.fold_case = fields;
        self
    }

    /// Sets the bounds on a query's size.
    #[must_use]
    pub fn limits(mut self, limits: QueryLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the pagination.
    #[must_use]
    pub fn paginate(mut self, paginate: Option<Paginate>) -> Self {
        self.paginate = paginate;
        self
    }

    /// Sets the protected fields.
    #[must_use]
    pub fn protected_fields(mut self, fields: Arc<[String]>) -> Self {
        self.protected_fields = fields;
        self
    }

    /// Marks the call as external (made by a transport) or internal.
    #[must_use]
    pub fn external(mut self, external: bool) -> Self {
        self.external = external;
        self
    }

    /// 400 when an external call names a protected field.
    pub(super) fn check_protected(&self, field: &str) -> Result<()> {
        if self.external && self.protected_fields.iter().any(|f| f == field) {
            return Err(Error::bad_request(format!(
                "The field '{field}' is protected: it cannot be used to filter, sort or select"
            )));
        }
        Ok(())
    }
}

impl Default for QueryOptions {
    /// Id field `id`, no pagination.
    fn default() -> Self {
        Self::new("id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::query::parse_query;
    use crate::query::test_support::obj;
    use serde_json::json;

    #[test]
    fn protected_fields_are_refused_to_external_callers_only() {
        let protected: Arc<[String]> = Arc::from(vec!["password".to_owned()]);
        let external = QueryOptions::default()
            .protected_fields(Arc::clone(&protected))
            .external(true);
        let message = "The field 'password' is protected: it cannot be used to filter, sort or \
                       select";
        for query in [
            json!({"password": "x"}),
            json!({"password": {"$gt": "$2"}}),
            json!({"$or": [{"a": 1}, {"$and": [{"password": {"$lt": "$3"}}]}]}),
            json!({"$sort": {"password": 1}}),
            json!({"$select": ["name", "password"]}),
            json!({"$select": "password"}),
        ] {
            let err = parse_query(&obj(query.clone()), &external).expect_err("refused");
            assert_eq!(
                (err.kind(), err.message()),
                (ErrorKind::BadRequest, message)
            );
            let internal = QueryOptions::default().protected_fields(Arc::clone(&protected));
            assert!(parse_query(&obj(query), &internal).is_ok());
        }
        assert!(parse_query(&obj(json!({"email": "a", "$sort": {"name": 1}})), &external).is_ok());
    }
}
