//! Whether a record matches a [`Condition`], by the comparison rules of the
//! [module docs](crate::query#comparison): the memory store's evaluation,
//! and the rules other stores' compilations must agree with.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{Condition, Op, ParsedQuery};

impl Condition {
    /// True when `record` satisfies the condition; see `matches()`.
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        matches(self, record)
    }
}

impl ParsedQuery {
    /// True when `record` satisfies the query's conditions.
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        matches(&self.condition, record)
    }
}

/// True when `record` satisfies `condition`. A missing field is `null`;
/// the comparison rules are in the [module docs](crate::query).
pub(crate) fn matches(condition: &Condition, record: &Map<String, Value>) -> bool {
    match condition {
        Condition::And(conditions) => conditions.iter().all(|c| matches(c, record)),
        Condition::Or(conditions) => conditions.iter().any(|c| matches(c, record)),
        Condition::Field {
            field,
            op,
            value,
            fold_case,
        } => {
            let stored = record.get(field).unwrap_or(&Value::Null);
            match stored {
                // The parser lowered the query's strings already.
                Value::String(text) if *fold_case => {
                    compare_op(*op, &Value::String(text.to_ascii_lowercase()), value)
                }
                _ => compare_op(*op, stored, value),
            }
        }
    }
}

/// True when a stored value (`null` when missing) satisfies `op` with the
/// query value `query`. For `$in` / `$nin` a non-array `query` is a
/// one-element list.
pub(crate) fn compare_op(op: Op, stored: &Value, query: &Value) -> bool {
    match op {
        Op::Eq => equals(stored, query),
        Op::Ne => !equals(stored, query),
        Op::Lt => ordered(stored, query) == Some(Ordering::Less),
        Op::Lte => matches!(
            ordered(stored, query),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Op::Gt => ordered(stored, query) == Some(Ordering::Greater),
        Op::Gte => matches!(
            ordered(stored, query),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::In => list(query).iter().any(|q| equals(stored, q)),
        Op::Nin => !list(query).iter().any(|q| equals(stored, q)),
    }
}

fn list(query: &Value) -> &[Value] {
    match query {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    }
}

fn equals(stored: &Value, query: &Value) -> bool {
    compare(stored, query) == Some(Ordering::Equal)
}

/// [`compare`] for `$lt` and friends: never ordered when a side is null.
fn ordered(stored: &Value, query: &Value) -> Option<Ordering> {
    if stored.is_null() || query.is_null() {
        None
    } else {
        compare(stored, query)
    }
}

/// Compares a stored value with a query value by the comparison rules of
/// the [module docs](crate::query): `None` when they cannot be compared. `null`
/// equals `null`; arrays and objects (which queries never contain) are only
/// equal to an identical value.
pub(crate) fn compare(stored: &Value, query: &Value) -> Option<Ordering> {
    match (stored, query) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        (Value::Number(a), Value::String(b)) => a.as_f64()?.partial_cmp(&coerce_number(b)?),
        (Value::Bool(a), Value::String(b)) => Some(a.cmp(&coerce_bool(b)?)),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            (stored == query).then_some(Ordering::Equal)
        }
        _ => None,
    }
}

/// A query string read as a number, for comparison with a stored number:
/// whatever `str::parse::<f64>` reads as a finite number (`"5"`, `"-2.5"`,
/// `"1e3"`, `"+4"`, `".5"`; not `" 5"`, `"NaN"`, `"inf"`).
pub(crate) fn coerce_number(query: &str) -> Option<f64> {
    query.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A query string read as a boolean, for comparison with a stored boolean:
/// exactly `"true"` or `"false"`.
pub(crate) fn coerce_bool(query: &str) -> Option<bool> {
    match query {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::query::test_support::{hit, obj};
    use crate::query::{QueryOptions, parse_query};
    use serde_json::json;

    #[test]
    fn declared_fields_compare_ignoring_case() {
        let options = QueryOptions::default().fold_case(Arc::from(vec!["email".to_owned()]));
        let query = |q: Value| parse_query(&obj(q), &options).unwrap();
        let record = obj(json!({"email": "Ada@Example.com", "name": "Ada"}));
        assert!(query(json!({"email": "ada@example.COM"})).matches(&record));
        assert!(query(json!({"email": {"$in": ["x", "ADA@example.com"]}})).matches(&record));
        assert!(!query(json!({"email": {"$ne": "ada@example.com"}})).matches(&record));
        // Only the declared field, and only equality.
        assert!(!query(json!({"name": "ada"})).matches(&record));
        assert!(!query(json!({"email": {"$gte": "b"}})).matches(&record));
    }

    #[test]
    fn empty_or_matches_nothing_and_empty_and_everything() {
        assert!(!hit(json!({"$or": []}), json!({"a": 1})));
        assert!(hit(json!({"$and": []}), json!({"a": 1})));
        assert!(hit(json!({"$or": [{}]}), json!({"a": 1})));
    }

    #[test]
    fn every_operator_on_numbers() {
        let rec = json!({"n": 5});
        let cases = [
            (json!(5), true),
            (json!({"$ne": 5}), false),
            (json!({"$ne": 4}), true),
            (json!({"$lt": 6}), true),
            (json!({"$lt": 5}), false),
            (json!({"$lte": 5}), true),
            (json!({"$lte": 4.5}), false),
            (json!({"$gt": 4}), true),
            (json!({"$gt": 5}), false),
            (json!({"$gte": 5}), true),
            (json!({"$gte": 5.5}), false),
            (json!({"$in": [1, 5]}), true),
            (json!({"$in": [1, 2]}), false),
            (json!({"$nin": [1, 5]}), false),
            (json!({"$nin": [1, 2]}), true),
            (json!({"$gt": 1, "$lt": 10}), true),
            (json!({"$gt": 1, "$lt": 3}), false),
            (json!(5.0), true),
        ];
        for (condition, expected) in cases {
            assert_eq!(
                hit(json!({ "n": condition.clone() }), rec.clone()),
                expected,
                "{condition}"
            );
        }
    }

    #[test]
    fn strings_and_booleans_compare_naturally() {
        assert!(hit(json!({"s": {"$lt": "b"}}), json!({"s": "a"})));
        assert!(
            hit(json!({"s": {"$gt": "B"}}), json!({"s": "a"})),
            "code point order"
        );
        assert!(hit(json!({"s": {"$gt": "z"}}), json!({"s": "é"})));
        assert!(hit(json!({"s": {"$gte": "ab"}}), json!({"s": "abc"})));
        assert!(hit(json!({"b": {"$lt": true}}), json!({"b": false})));
        assert!(!hit(json!({"b": {"$gt": true}}), json!({"b": true})));
        assert!(hit(json!({"b": false}), json!({"b": false})));
    }

    #[test]
    fn numeric_strings_coerce_against_stored_numbers() {
        assert!(hit(json!({"n": "5"}), json!({"n": 5})));
        assert!(hit(json!({"n": "5.0"}), json!({"n": 5})));
        assert!(hit(json!({"n": {"$lt": "3"}}), json!({"n": 2.5})));
        assert!(hit(json!({"n": {"$gt": "2.5"}}), json!({"n": 3})));
        assert!(hit(json!({"n": {"$in": ["1", "5"]}}), json!({"n": 5})));
        assert!(!hit(json!({"n": {"$nin": ["5"]}}), json!({"n": 5})));
        assert!(hit(json!({"n": "1e3"}), json!({"n": 1000})));
        assert!(hit(json!({"n": "-2"}), json!({"n": -2})));
        // Not numbers: never equal, never ordered.
        for text in ["abc", " 5", "5 ", "NaN", "inf", "", "0x5"] {
            assert!(!hit(json!({ "n": text }), json!({"n": 5})), "{text}");
            assert!(hit(json!({"n": {"$ne": text}}), json!({"n": 5})), "{text}");
            assert!(!hit(json!({"n": {"$lt": text}}), json!({"n": 5})), "{text}");
            assert!(
                !hit(json!({"n": {"$gte": text}}), json!({"n": 5})),
                "{text}"
            );
        }
        // A number in the query never matches a stored string.
        assert!(!hit(json!({"s": 5}), json!({"s": "5"})));
        assert!(!hit(json!({"s": {"$lt": 6}}), json!({"s": "5"})));
        assert!(hit(json!({"s": {"$ne": 5}}), json!({"s": "5"})));
        assert!(hit(json!({"s": "5"}), json!({"s": "5"})));
        assert_eq!(coerce_number("2.5"), Some(2.5));
        assert_eq!(coerce_number("1e999"), None);
    }

    #[test]
    fn boolean_strings_coerce_against_stored_booleans() {
        assert!(hit(json!({"b": "true"}), json!({"b": true})));
        assert!(hit(json!({"b": "false"}), json!({"b": false})));
        assert!(!hit(json!({"b": "true"}), json!({"b": false})));
        assert!(hit(json!({"b": {"$lt": "true"}}), json!({"b": false})));
        assert!(hit(json!({"b": {"$in": ["true"]}}), json!({"b": true})));
        assert!(!hit(json!({"b": "TRUE"}), json!({"b": true})));
        assert!(!hit(json!({"b": "1"}), json!({"b": true})));
        assert!(!hit(json!({"b": 1}), json!({"b": true})));
        // A boolean string is a plain string for stored strings.
        assert!(hit(json!({"s": "true"}), json!({"s": "true"})));
        assert!(!hit(json!({"s": true}), json!({"s": "true"})));
    }

    #[test]
    fn different_types_are_never_equal_or_ordered() {
        let records = [
            json!({"v": "x"}),
            json!({"v": 1}),
            json!({"v": true}),
            json!({"v": [1]}),
            json!({"v": {"a": 1}}),
        ];
        for record in records {
            for query in [json!(false), json!(2)] {
                if record["v"] == json!(true) && query == json!(false)
                    || record["v"] == json!(1) && query == json!(2)
                {
                    continue;
                }
                assert!(!hit(json!({ "v": query.clone() }), record.clone()));
                assert!(hit(json!({"v": {"$ne": query.clone()}}), record.clone()));
                for op in ["$lt", "$lte", "$gt", "$gte"] {
                    assert!(
                        !hit(json!({"v": { op: query.clone() }}), record.clone()),
                        "{op} {query} on {record}"
                    );
                }
            }
        }
    }

    #[test]
    fn null_is_not_coerced_and_missing_is_null() {
        assert!(hit(json!({"x": null}), json!({})));
        assert!(hit(json!({"x": null}), json!({"x": null})));
        assert!(!hit(json!({"x": null}), json!({"x": 0})));
        assert!(!hit(json!({"x": "null"}), json!({})));
        assert!(!hit(json!({"x": "null"}), json!({"x": null})));
        assert!(!hit(json!({"x": {"$ne": null}}), json!({})));
        assert!(!hit(json!({"x": {"$ne": null}}), json!({"x": null})));
        assert!(hit(json!({"x": {"$ne": null}}), json!({"x": false})));
        assert!(hit(json!({"x": {"$ne": 1}}), json!({})));
        for op in ["$lt", "$lte", "$gt", "$gte"] {
            assert!(!hit(json!({"x": { op: 1 }}), json!({})), "{op}");
            assert!(!hit(json!({"x": { op: null }}), json!({})), "{op}");
            assert!(!hit(json!({"x": { op: null }}), json!({"x": null})), "{op}");
            assert!(!hit(json!({"x": { op: null }}), json!({"x": 1})), "{op}");
        }
        assert!(hit(json!({"x": {"$nin": [1]}}), json!({})));
        assert!(!hit(json!({"x": {"$nin": [1, null]}}), json!({})));
        assert!(hit(json!({"x": {"$in": [null]}}), json!({})));
        assert!(!hit(json!({"x": {"$in": [1]}}), json!({})));
    }

    #[test]
    fn or_and_and_combine() {
        let query = json!({"$or": [{"a": 1}, {"b": {"$gt": 5}}], "c": {"$ne": "x"}});
        assert!(hit(query.clone(), json!({"a": 1})));
        assert!(hit(query.clone(), json!({"b": 6})));
        assert!(!hit(query.clone(), json!({"b": 5})));
        assert!(!hit(query, json!({"a": 1, "c": "x"})));
        let query = json!({"$and": [{"a": {"$gt": 1}}, {"a": {"$lt": 3}}]});
        assert!(hit(query.clone(), json!({"a": 2})));
        assert!(!hit(query, json!({"a": 3})));
        let nested =
            json!({"$or": [{"$or": [{"a": 1}, {"a": 2}]}, {"$and": [{"b": 1}, {"c": 1}]}]});
        assert!(hit(nested.clone(), json!({"a": 2})));
        assert!(hit(nested.clone(), json!({"b": 1, "c": 1})));
        assert!(!hit(nested, json!({"b": 1})));
    }
}
