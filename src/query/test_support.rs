//! What the query module's unit tests share: records from `json!`
//! objects, and short ways to parse a query, match it or read its refusal.

use serde_json::{Map, Value};

use super::{ParsedQuery, QueryOptions, parse_query};
use crate::{ErrorKind, Result};

pub(super) fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub(super) fn parse(query: Value) -> Result<ParsedQuery> {
    parse_query(&obj(query), &QueryOptions::default())
}

pub(super) fn error(query: Value) -> String {
    let err = parse(query).expect_err("query should be rejected");
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    err.message().to_owned()
}

/// True when `query` matches `record`.
pub(super) fn hit(query: Value, record: Value) -> bool {
    parse(query).expect("valid query").matches(&obj(record))
}
