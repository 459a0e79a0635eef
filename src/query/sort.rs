//! The order of `$sort`: [`sort_cmp`] between two values of any types,
//! and records compared and sorted by a query's sort keys.

use std::borrow::Borrow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::SortOrder;

/// The total order used for sorting: missing or `null` < booleans <
/// numbers < strings < arrays < objects; within a type, natural order
/// (arrays and objects by their compact JSON text). `None` is a missing
/// field.
pub(crate) fn sort_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.unwrap_or(&Value::Null);
    let b = b.unwrap_or(&Value::Null);
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        },
        (Value::String(x), Value::String(y)) => x.as_str().cmp(y.as_str()),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            a.to_string().cmp(&b.to_string())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Compares two records by the `$sort` keys, in order.
pub(crate) fn compare_records(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    sort: &[(String, SortOrder)],
) -> Ordering {
    for (field, order) in sort {
        let ordering = sort_cmp(a.get(field), b.get(field));
        let ordering = match order {
            SortOrder::Asc => ordering,
            SortOrder::Desc => ordering.reverse(),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Sorts records by the `$sort` keys; a stable sort, so ties keep their
/// order.
pub(crate) fn sort_records<R: Borrow<Map<String, Value>>>(
    records: &mut [R],
    sort: &[(String, SortOrder)],
) {
    if !sort.is_empty() {
        records.sort_by(|a, b| compare_records(a.borrow(), b.borrow(), sort));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_support::{obj, parse};
    use serde_json::json;

    #[test]
    fn sorting_orders_types_and_is_stable() {
        let records: Vec<Map<String, Value>> = [
            json!({"i": 0, "v": "b"}),
            json!({"i": 1, "v": 2}),
            json!({"i": 2}),
            json!({"i": 3, "v": {"a": 1}}),
            json!({"i": 4, "v": [1]}),
            json!({"i": 5, "v": true}),
            json!({"i": 6, "v": null}),
            json!({"i": 7, "v": "a"}),
            json!({"i": 8, "v": 1.5}),
            json!({"i": 9, "v": false}),
            json!({"i": 10, "v": 2}),
        ]
        .into_iter()
        .map(obj)
        .collect();
        let order = |sort: Value| -> Vec<i64> {
            let parsed = parse(json!({ "$sort": sort })).unwrap();
            let mut refs: Vec<&Map<String, Value>> = records.iter().collect();
            sort_records(&mut refs, &parsed.filters.sort);
            refs.iter().map(|r| r["i"].as_i64().unwrap()).collect()
        };
        assert_eq!(order(json!({"v": 1})), [2, 6, 9, 5, 8, 1, 10, 7, 0, 4, 3]);
        assert_eq!(order(json!({"v": -1})), [3, 4, 0, 7, 1, 10, 8, 5, 9, 2, 6]);
        assert_eq!(order(json!({})), (0..=10).collect::<Vec<_>>());
    }

    #[test]
    fn multiple_sort_keys_apply_in_order() {
        let records: Vec<Map<String, Value>> = [
            json!({"i": 0, "a": 1, "b": "x"}),
            json!({"i": 1, "a": 2, "b": "y"}),
            json!({"i": 2, "a": 1, "b": "z"}),
            json!({"i": 3, "a": 2, "b": "x"}),
            json!({"i": 4, "a": 1, "b": "x"}),
        ]
        .into_iter()
        .map(obj)
        .collect();
        let parsed = parse(json!({"$sort": {"a": -1, "b": 1}})).unwrap();
        let mut sorted = records;
        sort_records(&mut sorted, &parsed.filters.sort);
        let ids: Vec<i64> = sorted.iter().map(|r| r["i"].as_i64().unwrap()).collect();
        assert_eq!(ids, [3, 1, 0, 4, 2]);
    }
}
