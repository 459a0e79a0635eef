//! The bounds on a query's size: the `MAX_*` defaults, [`QueryLimits`],
//! and the tally that holds a query to them while it is parsed.

use crate::{Error, Result};

/// The deepest nesting of `$or` / `$and`: a top-level `$or` is level 1, an
/// `$or` inside one of its entries level 2, and so on.
pub const MAX_DEPTH: usize = 4;

/// The most conditions in one query. Each field comparison (one per
/// operator), each `$or` / `$and` and each of their entries counts as one.
pub const MAX_CONDITIONS: usize = 200;

/// The most field comparisons in one query (one per operator, wherever it
/// is nested). A store with no index to use tests each of them on every
/// row, so this, not the number of values, sets the cost of a scan.
pub const MAX_COMPARISONS: usize = 10;

/// The most values in one `$in` or `$nin` list.
pub const MAX_IN_VALUES: usize = 500;

/// The most query values in all of a query's comparisons together: a plain
/// value counts one, an `$in` / `$nin` list its length.
pub const MAX_VALUES: usize = 1000;

/// The most fields in `$select`.
pub const MAX_SELECT: usize = 50;

/// The most keys in `$sort`. A sort no index serves computes every
/// matching row's key, so each key adds to the cost of a full scan; five
/// keep the worst query the other limits admit affordable (measured in
/// BENCHMARKS.md, "Conditions and sorts tested in Rust").
pub const MAX_SORT: usize = 5;

/// The bounds that keep one query's cost bounded; a query over any of them
/// is 400 BadRequest naming the bound. Every store parses with
/// [`parse_query`](super::parse_query), so they hold for each store alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Levels of `$or` / `$and` nesting ([`MAX_DEPTH`]).
    pub depth: usize,
    /// Conditions, groups and their entries included ([`MAX_CONDITIONS`]).
    pub conditions: usize,
    /// Field comparisons ([`MAX_COMPARISONS`]).
    pub comparisons: usize,
    /// Values in one `$in` / `$nin` list ([`MAX_IN_VALUES`]).
    pub in_values: usize,
    /// Values in all comparisons together ([`MAX_VALUES`]).
    pub values: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            depth: MAX_DEPTH,
            conditions: MAX_CONDITIONS,
            comparisons: MAX_COMPARISONS,
            in_values: MAX_IN_VALUES,
            values: MAX_VALUES,
        }
    }
}

/// Counts conditions, comparisons and values against the
/// [`QueryLimits`] while parsing, so that an oversized query is refused
/// before more of it is copied.
pub(super) struct Tally {
    conditions: usize,
    comparisons: usize,
    values: usize,
    limits: QueryLimits,
}

impl Tally {
    pub(super) fn new(limits: QueryLimits) -> Self {
        Self {
            conditions: 0,
            comparisons: 0,
            values: 0,
            limits,
        }
    }

    pub(super) fn count(&mut self) -> Result<()> {
        self.conditions += 1;
        let max = self.limits.conditions;
        if self.conditions > max {
            return Err(Error::bad_request(format!(
                "Query has too many conditions: at most {max} are allowed"
            )));
        }
        Ok(())
    }

    /// Counts one comparison of `values` query values.
    pub(super) fn compare(&mut self, values: usize) -> Result<()> {
        self.count()?;
        self.comparisons += 1;
        let limits = &self.limits;
        if self.comparisons > limits.comparisons {
            return Err(Error::bad_request(format!(
                "Query has too many comparisons: at most {} are allowed",
                limits.comparisons
            )));
        }
        self.values = self.values.saturating_add(values);
        if self.values > limits.values {
            return Err(Error::bad_request(format!(
                "Query has too many values: at most {} in all its comparisons are allowed",
                limits.values
            )));
        }
        Ok(())
    }

    /// Refuses an `$or` / `$and` at nesting level `depth` (1 at the top)
    /// past the bound.
    pub(super) fn check_depth(&self, depth: usize) -> Result<()> {
        let max = self.limits.depth;
        if depth > max {
            return Err(Error::bad_request(format!(
                "Query is nested too deeply: at most {max} levels of $or/$and are allowed"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_support::{error, obj, parse};
    use crate::query::{QueryOptions, parse_query};
    use serde_json::{Map, Value, json};

    #[test]
    fn depth_is_bounded() {
        fn nested(levels: usize) -> Value {
            let mut query = json!({"a": 1});
            for _ in 0..levels {
                query = json!({"$or": [query]});
            }
            query
        }
        assert!(parse(nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            error(nested(MAX_DEPTH + 1)),
            "Query is nested too deeply: at most 4 levels of $or/$and are allowed"
        );
    }

    #[test]
    fn condition_count_is_bounded() {
        let message = "Query has too many conditions: at most 200 are allowed";
        // Empty entries count too.
        let entries: Vec<Value> = (0..MAX_CONDITIONS).map(|_| json!({})).collect();
        assert_eq!(error(json!({"$or": entries})), message);
        // Comparisons count, with the comparison bound lifted.
        let options = QueryOptions::default().limits(QueryLimits {
            comparisons: usize::MAX,
            values: usize::MAX,
            ..QueryLimits::default()
        });
        let fields = |n: usize| -> Map<String, Value> {
            (0..n).map(|i| (format!("f{i}"), json!(i))).collect()
        };
        assert!(parse_query(&fields(MAX_CONDITIONS), &options).is_ok());
        let err = parse_query(&fields(MAX_CONDITIONS + 1), &options).unwrap_err();
        assert_eq!(err.message(), message);
    }

    #[test]
    fn comparisons_and_values_are_bounded() {
        let fields = |n: usize, values: usize| -> Value {
            let list: Vec<String> = (0..values).map(|v| v.to_string()).collect();
            Value::Object(
                (0..n)
                    .map(|i| (format!("f{i}"), json!({ "$nin": list })))
                    .collect(),
            )
        };
        // At the bounds: 10 comparisons, 1000 values.
        assert!(parse(fields(MAX_COMPARISONS, MAX_VALUES / MAX_COMPARISONS)).is_ok());
        assert!(parse(fields(2, MAX_IN_VALUES)).is_ok());
        let comparisons = "Query has too many comparisons: at most 10 are allowed";
        assert_eq!(error(fields(MAX_COMPARISONS + 1, 1)), comparisons);
        // Each operator is a comparison, wherever it is nested.
        let ops: Vec<Value> = (0..MAX_COMPARISONS / 2 + 1)
            .map(|i| json!({"a": {"$gt": i, "$lt": i}}))
            .collect();
        assert_eq!(error(json!({"$or": [{"$and": ops}]})), comparisons);
        let values = "Query has too many values: at most 1000 in all its comparisons are allowed";
        assert_eq!(error(fields(3, MAX_IN_VALUES)), values);
        // The probe of the issue: 31 fields x $nin of 500.
        assert_eq!(error(fields(31, 500)), values);
        let err = parse(fields(31, 500)).unwrap_err();
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn limits_are_configurable() {
        let tight = QueryOptions::default().limits(QueryLimits {
            depth: 1,
            comparisons: 2,
            in_values: 3,
            values: 4,
            ..QueryLimits::default()
        });
        let run =
            |query: Value| parse_query(&obj(query), &tight).map_err(|e| e.message().to_owned());
        assert!(run(json!({"a": 1, "b": {"$in": [1, 2, 3]}})).is_ok());
        assert_eq!(
            run(json!({"a": 1, "b": 2, "c": 3})).unwrap_err(),
            "Query has too many comparisons: at most 2 are allowed"
        );
        assert_eq!(
            run(json!({"b": {"$in": [1, 2, 3, 4]}})).unwrap_err(),
            "$in on 'b' has too many values: at most 3 are allowed"
        );
        assert_eq!(
            run(json!({"a": {"$in": [1, 2]}, "b": {"$nin": [1, 2, 3]}})).unwrap_err(),
            "Query has too many values: at most 4 in all its comparisons are allowed"
        );
        assert_eq!(
            run(json!({"$or": [{"$or": [{"a": 1}]}]})).unwrap_err(),
            "Query is nested too deeply: at most 1 levels of $or/$and are allowed"
        );
    }

    #[test]
    fn list_select_and_sort_sizes_are_bounded() {
        let list: Vec<usize> = (0..MAX_IN_VALUES).collect();
        assert!(parse(json!({"a": {"$in": list}})).is_ok());
        let list: Vec<usize> = (0..=MAX_IN_VALUES).collect();
        assert_eq!(
            error(json!({"a": {"$nin": list}})),
            "$nin on 'a' has too many values: at most 500 are allowed"
        );
        let names: Vec<String> = (0..MAX_SELECT).map(|i| format!("f{i}")).collect();
        assert!(parse(json!({ "$select": names })).is_ok());
        let names: Vec<String> = (0..=MAX_SELECT).map(|i| format!("f{i}")).collect();
        assert_eq!(
            error(json!({ "$select": names })),
            "$select has too many fields: at most 50 are allowed"
        );
        let sort: Map<String, Value> = (0..MAX_SORT).map(|i| (format!("f{i}"), json!(1))).collect();
        assert!(parse(json!({ "$sort": sort })).is_ok());
        let sort: Map<String, Value> = (0..=MAX_SORT)
            .map(|i| (format!("f{i}"), json!(1)))
            .collect();
        assert_eq!(
            error(json!({ "$sort": sort })),
            "$sort has too many fields: at most 5 are allowed"
        );
    }
}
