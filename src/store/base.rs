//! What every store shares, so that the memory store, the SQLite store and
//! the stores to come answer alike: their options (id field, pagination,
//! `multi`, protected fields, query limits, first id), their builder
//! methods, the rule on calls over many records with Feathers' messages
//! (`@feathersjs/adapter-commons`, `service.ts`: "Can not create multiple
//! entries"), the shape `create` accepts, and the query options of a call.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::query::{QueryLimits, QueryOptions};
use crate::service::json_type;
use crate::{Error, Method, Paginate, Params, Result};

/// A store's options, set through its builder methods.
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    pub(crate) id_field: String,
    pub(crate) paginate: Option<Paginate>,
    /// The methods that may touch many records.
    pub(crate) multi: Vec<Method>,
    pub(crate) protected_fields: Arc<[String]>,
    pub(crate) limits: QueryLimits,
    /// The first automatic id.
    pub(crate) start_id: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            id_field: "id".to_owned(),
            paginate: None,
            multi: Vec::new(),
            protected_fields: Arc::from(Vec::new()),
            limits: QueryLimits::default(),
            start_id: 0,
        }
    }
}

/// The records `create` was given.
pub(crate) enum ToCreate<'d> {
    One(&'d Map<String, Value>),
    Many(Vec<&'d Map<String, Value>>),
}

impl StoreOptions {
    /// The query options of a call, with this pagination.
    pub(crate) fn query_options(
        &self,
        params: &Params,
        paginate: Option<Paginate>,
    ) -> QueryOptions {
        QueryOptions::new(self.id_field.as_str())
            .paginate(paginate)
            .protected_fields(Arc::clone(&self.protected_fields))
            .external(params.is_external())
            .limits(self.limits)
    }

    /// 405 unless `multi` allows `method` on many records.
    pub(crate) fn check_many(&self, method: &Method) -> Result<()> {
        if self.multi.contains(method) {
            Ok(())
        } else {
            Err(many_not_allowed(method.as_str()))
        }
    }

    /// `create`'s data: one object, or an array of objects when `multi`
    /// allows it (405 before the array's items are looked at, as in
    /// Feathers); anything else is 400.
    pub(crate) fn to_create<'d>(&self, data: &'d Value) -> Result<ToCreate<'d>> {
        match data {
            Value::Object(record) => Ok(ToCreate::One(record)),
            Value::Array(items) => {
                self.check_many(&Method::Create)?;
                items
                    .iter()
                    .map(|item| {
                        item.as_object().ok_or_else(|| {
                            Error::bad_request(format!(
                                "The data of 'create' must be an object or an array of \
                                 objects, got an array with an item of type {}",
                                json_type(item)
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(ToCreate::Many)
            }
            other => Err(Error::bad_request(format!(
                "The data of 'create' must be an object or an array of objects, got {}",
                json_type(other)
            ))),
        }
    }
}

/// Feathers' 405 for a call on many records that `multi` does not allow
/// (`method` is `create`, `update`, `patch` or `remove`).
pub(crate) fn many_not_allowed(method: &str) -> Error {
    Error::method_not_allowed(format!("Can not {method} multiple entries"))
}

/// The builder methods of every store, written once: a store type
/// implements `fn with_options(self, change: impl FnOnce(&mut
/// StoreOptions)) -> Self` and gets these as its own methods.
macro_rules! store_builder {
    ($store:ty) => {
        impl $store {
            /// Sets the id field (Feathers' `id` option), e.g. `"_id"`.
            #[must_use]
            pub fn id_field(self, name: impl Into<String>) -> Self {
                let name = name.into();
                self.with_options(|o| o.id_field = name)
            }

            /// Paginates `find`: a page of `default` records when the
            /// query has no `$limit`, at most `max`.
            #[must_use]
            pub fn paginate(self, paginate: $crate::Paginate) -> Self {
                self.with_options(|o| o.paginate = Some(paginate))
            }

            /// Allows (`true`) or refuses (`false`) create, patch and
            /// remove on many records (Feathers' `multi: true`).
            #[must_use]
            pub fn multi(self, enabled: bool) -> Self {
                self.with_options(|o| {
                    o.multi = if enabled {
                        vec![
                            $crate::Method::Create,
                            $crate::Method::Patch,
                            $crate::Method::Remove,
                        ]
                    } else {
                        Vec::new()
                    };
                })
            }

            /// Allows calls on many records for these methods only
            /// (Feathers' `multi: ['create', 'patch']`). Only create, patch
            /// and remove take many records.
            #[must_use]
            pub fn multi_methods(self, methods: impl IntoIterator<Item = $crate::Method>) -> Self {
                let methods = methods.into_iter().collect();
                self.with_options(|o| o.multi = methods)
            }

            /// Fields that external callers (`params.provider` set) may not
            /// filter, sort or `$select` on: such a query is 400
            /// BadRequest. Internal calls may use them. See
            /// [`crate::query`'s rule](crate::query#protected-fields).
            #[must_use]
            pub fn protected_fields<I, S>(self, fields: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                let fields: std::sync::Arc<[String]> = fields.into_iter().map(Into::into).collect();
                self.with_options(|o| o.protected_fields = fields)
            }

            /// The bounds on a query's size (400 past them); the defaults
            /// are [`QueryLimits::default`](crate::query::QueryLimits), the
            /// same in every store.
            #[must_use]
            pub fn query_limits(self, limits: $crate::query::QueryLimits) -> Self {
                self.with_options(|o| o.limits = limits)
            }

            /// The first automatic id (0 by default).
            #[must_use]
            pub fn start_id(self, first: i64) -> Self {
                self.with_options(|o| o.start_id = first)
            }
        }
    };
}

pub(crate) use store_builder;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn many_records_need_multi_before_their_shape_is_checked() {
        let options = StoreOptions::default();
        let error = options.to_create(&json!([1])).err().unwrap();
        assert_eq!(
            (error.code(), error.message()),
            (405, "Can not create multiple entries")
        );
        let options = StoreOptions {
            multi: vec![Method::Create],
            ..StoreOptions::default()
        };
        let error = options.to_create(&json!([{}, 1])).err().unwrap();
        assert_eq!(
            error.message(),
            "The data of 'create' must be an object or an array of objects, got an array with an item of type number"
        );
        assert!(
            matches!(options.to_create(&json!([{}, {}])), Ok(ToCreate::Many(records)) if records.len() == 2)
        );
        assert!(options.check_many(&Method::Patch).is_err());
    }
}
