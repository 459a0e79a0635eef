//! The Feathers query language, shared by every store.
//!
//! A query is a JSON object, usually [`Params::query`](crate::Params::query).
//! [`parse_query`] validates it and turns it into a [`ParsedQuery`]: the
//! [`Filters`] (`$limit`, `$skip`, `$sort`, `$select`) and a [`Condition`]
//! tree. The parsed form is plain data so that each store can evaluate it
//! in its own way: the memory store with `matches()`, `sort_records` and
//! [`Filters::project`]; an SQL store by compiling the same tree. Every rule
//! below is chosen so that it can be written in SQL.
//!
//! # Grammar
//!
//! At the top level:
//!
//! | key | value |
//! |---|---|
//! | `$limit` | a non-negative integer, or a string of decimal digits |
//! | `$skip` | the same |
//! | `$sort` | an object of field names to `1` (ascending) or `-1` (descending), numbers or strings; keys apply in order |
//! | `$select` | a field name or an array of field names |
//! | `$or` | an array of objects; a record matches when it matches any of them |
//! | `$and` | an array of objects; a record matches when it matches all of them |
//! | `field` | a condition on the field (below) |
//!
//! Any other `$key` is 400 BadRequest `Invalid filter value $key`, as in
//! Feathers. The objects inside `$or` and `$and` have the same shape as the
//! top level but hold conditions only: fields, and nested `$or` / `$and`.
//! Any other `$key` there is `Invalid query parameter $key`. An empty `$or`
//! matches nothing and an empty `$and` matches everything (as `OR` and
//! `AND` over no terms).
//!
//! A field condition is one of:
//!
//! - a string, number, boolean or `null`: equality;
//! - an object whose keys are all operators: `$ne`, `$lt`, `$lte`, `$gt`,
//!   `$gte` with a string, number, boolean or `null`; `$in`, `$nin` with an
//!   array of those, or a single one (read as a one-element list). Several
//!   operators on one field must all hold. Any other `$key` is
//!   `Invalid query parameter $key`.
//!
//! An array, an empty object, or an object with a key that is not an
//! operator is 400: there is no deep-equality matching of objects or
//! arrays.
//!
//! Field names (in conditions, `$sort` and `$select`) are identifiers,
//! `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_FIELD_NAME_LEN`] characters;
//! anything else is 400. This keeps an SQL compilation safe and every store
//! in agreement.
//!
//! # Comparison
//!
//! A condition compares the *stored* value of a field with the *query*
//! value (see `compare`):
//!
//! - Values of the same JSON type compare naturally: numbers numerically
//!   (as `f64`), strings by Unicode code point (which is byte order of
//!   UTF-8, SQL's `BINARY` collation), booleans with `false < true`.
//! - Query values from a URL are strings, so: when the query value is a
//!   string and the stored value a number, the string is read as a number
//!   if `str::parse::<f64>` reads it as a finite number (`coerce_number`):
//!   `"5"` equals `5`, `"2.5"` is less than `3`. When the query value is
//!   `"true"` or `"false"` and the stored value a boolean, it is read as
//!   that boolean (`coerce_bool`). The string `"null"` is never `null`,
//!   and a number in the query never matches a stored string.
//! - Otherwise values of different types are never equal and never
//!   ordered: `$lt`, `$lte`, `$gt`, `$gte` are false, `$ne` is true.
//! - A missing field is `null`. `{x: null}` matches a missing or `null`
//!   field; `{x: {$ne: null}}` a present, non-null one. `$lt`, `$lte`,
//!   `$gt` and `$gte` are false whenever either side is `null` (as in
//!   SQL). `$in` holds when the value equals any element, `$nin` when it
//!   equals none, so `$nin` holds on a missing field unless the list
//!   contains `null`.
//!
//! # Sorting
//!
//! `sort_records` orders values of different types as: missing or `null`
//! < booleans < numbers < strings < arrays < objects (`sort_cmp`). Within
//! a type, values compare as above; arrays and objects by their compact
//! JSON text. A descending key reverses this order. Later keys break ties
//! of earlier ones; records still tied keep their insertion order (the
//! sort is stable).
//!
//! # Pagination
//!
//! With [`QueryOptions::paginate`] set, a query without `$limit` gets the
//! default page size and `$limit` is clamped to the maximum (the default
//! too). `$limit: 0` is allowed: a page with only the total. Without
//! pagination, no `$limit` means no limit.
//!
//! # Protected fields
//!
//! [`QueryOptions::protected_fields`] names fields that external callers
//! ([`QueryOptions::external`], set from `params.provider`) may not filter,
//! sort or `$select` on: 400 BadRequest. Otherwise a client could learn a
//! password hash one comparison at a time (`?password[$gt]=$2`). Internal
//! calls may use them (a login strategy looks a user up by email and reads
//! the hash). Stores only return such fields; hiding them from results is
//! the job of a hook (`protect`).
//!
//! # Bounds
//!
//! To keep a query's cost bounded, a query over these limits is 400:
//! [`MAX_DEPTH`] levels of `$or`/`$and`, [`MAX_CONDITIONS`] conditions,
//! [`MAX_COMPARISONS`] field comparisons, [`MAX_IN_VALUES`] values in one
//! `$in`/`$nin` and [`MAX_VALUES`] in all comparisons together,
//! [`MAX_SORT`] `$sort` keys, [`MAX_SELECT`] `$select` fields. The first
//! five are the defaults of [`QueryLimits`], which a store may change.
//! Every query that passes them runs in the store's own query language:
//! none falls back to reading a whole table.
//!
//! ```
//! use plume::query::{Condition, Op, QueryOptions, SortOrder, parse_query};
//! use serde_json::json;
//!
//! let query = json!({"$limit": "5", "$sort": {"createdAt": "-1"}, "name": {"$in": ["a", "b"]}});
//! let parsed = parse_query(query.as_object().unwrap(), &QueryOptions::default()).unwrap();
//! assert_eq!(parsed.filters.limit, Some(5));
//! assert_eq!(parsed.filters.sort, vec![("createdAt".to_owned(), SortOrder::Desc)]);
//! assert_eq!(
//!     parsed.condition,
//!     Condition::And(vec![Condition::Field {
//!         field: "name".to_owned(),
//!         op: Op::In,
//!         value: json!(["a", "b"]),
//!         fold_case: false,
//!     }])
//! );
//! assert!(parsed.matches(json!({"name": "b"}).as_object().unwrap()));
//! ```

mod limits;
mod matching;
mod options;
mod parse;
mod parsed;
mod select;
mod sort;
#[cfg(test)]
mod test_support;

pub use limits::{
    MAX_COMPARISONS, MAX_CONDITIONS, MAX_DEPTH, MAX_IN_VALUES, MAX_SELECT, MAX_SORT, MAX_VALUES,
    QueryLimits,
};
// For the database stores, which compile the same rules to SQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use matching::{coerce_bool, coerce_number};
// For the SQLite store, which evaluates what no index serves the same way.
#[cfg(feature = "sqlite")]
pub(crate) use matching::matches;
pub use options::QueryOptions;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use parse::is_field_name;
pub use parse::{MAX_FIELD_NAME_LEN, parse_query};
pub use parsed::{Condition, Filters, Op, ParsedQuery, SortOrder};
// The SQLite store's tests check its sort keys against the memory store's order.
#[cfg(all(test, feature = "sqlite"))]
pub(crate) use sort::compare_records;
pub(crate) use sort::sort_records;
