//! Compiles a [`ParsedQuery`](crate::query::ParsedQuery)'s conditions and
//! `$sort` to SQL over the JSON documents of a table (`data` column).
//!
//! A query's conditions take two routes. The top-level equalities, `$in`s
//! and ranges on a field that has a declared index are written as SQL
//! below, in the form the index is made on, so that SQLite's planner uses
//! it. Everything else (unindexed fields, `$ne`, `$nin`, `$or`) is one
//! term, `plume_match(data, ?N)`, which [`matcher`] evaluates in Rust in
//! one pass over each row the SQL terms let through: a comparison written
//! as SQL costs one or two `json_extract`/`json_type` calls per row, each a
//! lookup in the record, so many comparisons cost many lookups per row
//! where the matcher walks the record once (BENCHMARKS.md, "Conditions and
//! sorts tested in Rust"). Both routes follow the rules of
//! [`crate::query`]; a query never reads the table into Rust.
//!
//! Values are always bound parameters (`?1`, `?2`, ...). Field names are
//! spliced into JSON paths (`'$.name'`) because an expression index only
//! serves a query whose expression is literally the same; that is safe
//! because every name is checked again here with
//! [`query::is_field_name`] (`[A-Za-z_][A-Za-z0-9_]*`), which admits no
//! quote, dot, bracket or space.
//!
//! # How each indexed comparison is written
//!
//! For a field `f`, `T` is `coalesce(json_type(data, '$.f'), 'null')`: the
//! JSON type, with a missing field reading as `'null'` (missing is null),
//! and `X` is `json_extract(data, '$.f')`: the value (`NULL` for null or
//! missing, `1`/`0` for booleans, the JSON text for arrays and objects).
//!
//! - Equality, `$in` (equality is `$in` with one value), per query value,
//!   by the coercion rules, in Rust, before any SQL is written:
//!   - `null`: `T = 'null'` (null or missing);
//!   - a boolean, or the string `"true"`/`"false"`: `X = 1 AND T = 'true'` /
//!     `X = 0 AND T = 'false'` (`X` first: one lookup rejects other rows);
//!   - a string: `X IN (?..) AND T IN ('text')` (SQLite's `BINARY`
//!     collation is byte order of UTF-8, the code point order of Rust's
//!     `str`);
//!   - a number, or a string that [`query::coerce_number`] reads as one:
//!     `X IN (?..) AND T IN ('integer','real')`.
//!
//!   Values of a JSON type other than the ones named never match, which is
//!   "different types are never equal".
//! - `$lt`, `$lte`, `$gt`, `$gte`: the same type-guarded terms with `<`,
//!   `<=`, `>`, `>=`; a `null` query value is `0` (never ordered), and a
//!   stored null fails every type guard.
//! - Numbers: the memory store compares `f64`s. SQLite compares an integer
//!   with a real exactly, which gives the same answer whenever the query
//!   number's magnitude is below 2^53 (a stored integer beyond 2^53 is
//!   beyond the query value both ways). A query number at or beyond 2^53 is
//!   compared as `CAST(X AS REAL)` with a bound real, which is the `f64`
//!   comparison exactly.
//! - Sorting: per key, a type rank (`null` 0 < booleans 1 < numbers 2 <
//!   strings 3 < arrays 4 < objects 5), then the value within the rank
//!   (numbers as `CAST(X AS REAL)`, like `f64`; arrays and objects by
//!   their compact JSON text, which SQLite renders exactly as `serde_json`
//!   wrote it), both `ASC` or `DESC`; finally `seq ASC`, the insertion
//!   order, for stable ties in both directions.
//!
//! Each term tests `X` first and `T` after it (`X IN (...) AND T IN
//! ('text')`), and the strings and numbers of one comparison share one
//! `X IN (...)`: SQLite stops at the first false operand of `AND`, so a
//! row that matches no value costs one JSON lookup per comparison.
//!
//! The parser's [`QueryLimits`](crate::query::QueryLimits) keep the bound
//! values far below [`MAX_PARAMS`]; a store configured past them gets 400
//! rather than a statement SQLite refuses.

use std::fmt::Write as _;

use rusqlite::types::Value as SqlValue;
use serde_json::{Number, Value};

use super::{matcher, sort_key};
use crate::query::{self, Condition, Op, SortOrder};
use crate::{Error, Result};

/// The most values bound in one statement; SQLite allows 32,766.
pub(super) const MAX_PARAMS: usize = 30_000;

/// 2^53: below this magnitude an exact comparison and an `f64` comparison
/// agree (see the module docs).
const EXACT: f64 = 9_007_199_254_740_992.0;

/// A compiled condition: SQL text and the values it binds, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Compiled {
    /// An SQL expression that is `0` or `1` for each row.
    pub(super) sql: String,
    /// The values for `?1`, `?2`, ...
    pub(super) params: Vec<SqlValue>,
}

/// Compiles a condition tree. The comparisons an index can serve (a
/// top-level equality, `$in` or range on a field `indexed` says has an
/// index) are written as SQL, for SQLite's planner; the rest go to
/// [`matcher`] as one `plume_match(data, ?N)` term after them, which tests
/// them all in one pass over each row the SQL terms let through.
///
/// 400 when it needs more than [`MAX_PARAMS`] values, or for a field name
/// that is not an identifier (the query parser has already refused those;
/// this is a second lock).
pub(super) fn condition(condition: &Condition, indexed: &dyn Fn(&str) -> bool) -> Result<Compiled> {
    let servable = |c: &Condition| match c {
        Condition::Field { field, op, .. } => !matches!(op, Op::Ne | Op::Nin) && indexed(field),
        Condition::And(_) | Condition::Or(_) => false,
    };
    let (in_sql, rest): (Vec<&Condition>, Vec<&Condition>) = match condition {
        Condition::And(items) => items.iter().partition(|c| servable(c)),
        single if servable(single) => (vec![single], Vec::new()),
        single => (Vec::new(), vec![single]),
    };
    let mut out = Compiled {
        sql: String::new(),
        params: Vec::new(),
    };
    for (i, item) in in_sql.iter().enumerate() {
        if i > 0 {
            out.sql.push_str(" AND ");
        }
        out.condition(item)?;
    }
    if !rest.is_empty() {
        for item in &rest {
            check_fields(item)?;
        }
        let program = match rest.as_slice() {
            [single] => matcher::encode(single)?,
            several => matcher::encode(&Condition::And(
                several.iter().map(|c| (*c).clone()).collect(),
            ))?,
        };
        if !out.sql.is_empty() {
            out.sql.push_str(" AND ");
        }
        let _ = write!(out.sql, "{}(data, ", matcher::FUNCTION);
        out.bind(SqlValue::Text(program));
        out.sql.push(')');
    }
    if out.sql.is_empty() {
        out.sql.push('1');
    }
    if out.params.len() > MAX_PARAMS {
        return Err(Error::bad_request(format!(
            "Query has too many values: at most {MAX_PARAMS} can be bound in one statement"
        )));
    }
    Ok(out)
}

/// Every field name in `condition` is an identifier (see [`checked`]).
fn check_fields(condition: &Condition) -> Result<()> {
    match condition {
        Condition::And(items) | Condition::Or(items) => items.iter().try_for_each(check_fields),
        Condition::Field { field, .. } => checked(field).map(|_| ()),
    }
}

/// The `ORDER BY` list for `$sort` keys, always ending with `seq` (the
/// insertion order) so that ties keep their order.
///
/// When `sortable` says an index sorts by the first key, each key is the
/// pair [`rank_expr`], [`key_expr`], the expressions a sort index is made
/// on, so the index serves the sort (descending keys read the index
/// backwards; SQLite then sorts only the rows of one key, for the `seq`
/// tie-break). Otherwise every row is sorted, by one
/// [`plume_sort_key`](sort_key) BLOB computed in one pass over the record
/// rather than three JSON lookups per key.
pub(super) fn order_by(
    sort: &[(String, SortOrder)],
    sortable: &dyn Fn(&str) -> bool,
) -> Result<String> {
    let mut sql = String::new();
    match sort.first() {
        None => {}
        Some((first, _)) if sortable(first) => {
            for (field, order) in sort {
                let dir = match order {
                    SortOrder::Asc => "ASC",
                    SortOrder::Desc => "DESC",
                };
                let _ = write!(
                    sql,
                    "{} {dir}, {} {dir}, ",
                    rank_expr(field)?,
                    key_expr(field)?
                );
            }
        }
        Some(_) => {
            // Identifiers, '+', '-' and ',': nothing to quote.
            let _ = write!(
                sql,
                "{}(data, '{}'), ",
                sort_key::FUNCTION,
                sort_key::encode(sort)?
            );
        }
    }
    sql.push_str("seq ASC");
    Ok(sql)
}

/// The sort rank of a field's JSON type: `null` (or missing) 0, booleans
/// 1, numbers 2, strings 3, arrays 4, objects 5.
pub(super) fn rank_expr(field: &str) -> Result<String> {
    let t = type_expr(field)?;
    Ok(format!(
        "CASE {t} WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 1 \
         WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 \
         WHEN 'array' THEN 4 ELSE 5 END"
    ))
}

/// The value a field sorts by within its rank: numbers as reals (the
/// memory store compares `f64`s), anything else as extracted.
pub(super) fn key_expr(field: &str) -> Result<String> {
    let (t, x) = (type_expr(field)?, value_expr(field)?);
    Ok(format!(
        "CASE WHEN {t} IN ('integer', 'real') THEN CAST({x} AS REAL) ELSE {x} END"
    ))
}

/// `json_extract(data, '$.field')`: the expression that declared indexes
/// are built on, so it must be written the same way everywhere.
pub(super) fn value_expr(field: &str) -> Result<String> {
    checked(field).map(|field| format!("json_extract(data, '$.{field}')"))
}

/// The JSON type of a field, `'null'` when it is missing; never `NULL`.
pub(super) fn type_expr(field: &str) -> Result<String> {
    checked(field).map(|field| format!("coalesce(json_type(data, '$.{field}'), 'null')"))
}

fn checked(field: &str) -> Result<&str> {
    if query::is_field_name(field) {
        Ok(field)
    } else {
        Err(Error::bad_request(format!(
            "Invalid field name '{}'",
            field.chars().take(64).collect::<String>()
        )))
    }
}

/// How a number is compared: exactly as bound, or as a real (see the
/// module docs).
enum Num {
    Exact(SqlValue),
    Real(f64),
}

impl Num {
    fn of(number: &Number) -> Option<Self> {
        let float = number.as_f64()?;
        if float.abs() >= EXACT {
            return Some(Self::Real(float));
        }
        Some(Self::Exact(match number.as_i64() {
            Some(int) => SqlValue::Integer(int),
            None => SqlValue::Real(float),
        }))
    }

    fn of_f64(float: f64) -> Self {
        if float.abs() >= EXACT {
            Self::Real(float)
        } else {
            Self::Exact(SqlValue::Real(float))
        }
    }
}

impl Compiled {
    /// True when the condition holds for every row (a query without
    /// conditions): such a count is the table's kept row count.
    pub(super) fn is_unconditional(&self) -> bool {
        self.sql == "1"
    }

    /// Appends `?N` for a new parameter.
    fn bind(&mut self, value: SqlValue) {
        self.params.push(value);
        let _ = write!(self.sql, "?{}", self.params.len());
    }

    /// One comparison an index can serve: equality, `$in` or a range
    /// ([`condition`] gives nothing else).
    fn condition(&mut self, condition: &Condition) -> Result<()> {
        let Condition::Field {
            field,
            op,
            value,
            fold_case,
        } = condition
        else {
            return Err(Error::internal("only comparisons are written as SQL"));
        };
        let list = match value {
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        match op {
            Op::Eq | Op::In => self.any_equal(field, list, *fold_case),
            Op::Lt => self.ordered(field, "<", value),
            Op::Lte => self.ordered(field, "<=", value),
            Op::Gt => self.ordered(field, ">", value),
            Op::Gte => self.ordered(field, ">=", value),
            Op::Ne | Op::Nin => Err(Error::internal("no index serves a negation")),
        }
    }

    /// True when the field equals any of `values`, with coercion: a
    /// parenthesised OR of at most one term per JSON type. With
    /// `fold_case`, strings compare as `lower(X) IN (...)`, the expression a
    /// case-insensitive unique index is made on, so such a lookup uses it.
    fn any_equal(&mut self, field: &str, values: &[Value], fold_case: bool) -> Result<()> {
        let (t, x) = (type_expr(field)?, value_expr(field)?);
        let mut null = false;
        let mut bools = [false; 2];
        let mut texts = Vec::new();
        let mut exact = Vec::new();
        let mut reals = Vec::new();
        let mut number = |num: Num| match num {
            Num::Exact(value) => exact.push(value),
            Num::Real(float) => reals.push(SqlValue::Real(float)),
        };
        for value in values {
            match value {
                Value::Null => null = true,
                Value::Bool(b) => bools[usize::from(*b)] = true,
                Value::Number(n) => {
                    if let Some(num) = Num::of(n) {
                        number(num);
                    }
                }
                Value::String(s) => {
                    texts.push(SqlValue::Text(s.clone()));
                    if let Some(float) = query::coerce_number(s) {
                        number(Num::of_f64(float));
                    }
                    if let Some(b) = query::coerce_bool(s) {
                        bools[usize::from(b)] = true;
                    }
                }
                // The parser admits only scalars; an array or object can
                // equal nothing a query can say.
                Value::Array(_) | Value::Object(_) => {}
            }
        }
        let mut terms = 0;
        self.sql.push('(');
        let mut next = |sql: &mut String| {
            if terms > 0 {
                sql.push_str(" OR ");
            }
            terms += 1;
        };
        if null {
            next(&mut self.sql);
            let _ = write!(self.sql, "{t} = 'null'");
        }
        // `X` of a boolean is 1 or 0: testing it first rejects every
        // other row with one lookup instead of two.
        for ((flag, name), int) in bools.iter().zip(["false", "true"]).zip([0, 1]) {
            if *flag {
                next(&mut self.sql);
                let _ = write!(self.sql, "({x} = {int} AND {t} = '{name}')");
            }
        }
        // Strings and numbers share one `X IN (...)`: a text `X` never
        // equals a bound number nor a numeric `X` a bound string, so the
        // type guard after it only has to keep out arrays and objects
        // (whose `X` is JSON text) and booleans (whose `X` is 1 or 0).
        let mut guard = Vec::new();
        if !texts.is_empty() {
            guard.push("'text'");
        }
        if !exact.is_empty() {
            guard.extend(["'integer'", "'real'"]);
        }
        // The parser gives a folded field's strings in lower case already.
        let folded_texts = if fold_case {
            guard.retain(|g| *g != "'text'");
            std::mem::take(&mut texts)
        } else {
            Vec::new()
        };
        let groups = [
            (folded_texts, "'text'".to_owned(), format!("lower({x})")),
            (
                texts.into_iter().chain(exact).collect::<Vec<_>>(),
                guard.join(", "),
                x.clone(),
            ),
            (
                reals,
                "'integer', 'real'".to_owned(),
                format!("CAST({x} AS REAL)"),
            ),
        ];
        for (values, guard, left) in groups {
            if values.is_empty() {
                continue;
            }
            next(&mut self.sql);
            let _ = write!(self.sql, "({left} IN (");
            for (i, value) in values.into_iter().enumerate() {
                if i > 0 {
                    self.sql.push_str(", ");
                }
                self.bind(value);
            }
            let _ = write!(self.sql, ") AND {t} IN ({guard}))");
        }
        if terms == 0 {
            self.sql.push('0');
        }
        self.sql.push(')');
        Ok(())
    }

    /// `$lt` and friends: only values of the query value's type (after
    /// coercion) are ordered; `null` orders nothing.
    fn ordered(&mut self, field: &str, op: &str, value: &Value) -> Result<()> {
        let (t, x) = (type_expr(field)?, value_expr(field)?);
        let mut terms: Vec<(&str, String, SqlValue)> = Vec::new();
        let numeric = |num: Num| match num {
            Num::Exact(value) => ("IN ('integer', 'real')", x.clone(), value),
            Num::Real(float) => (
                "IN ('integer', 'real')",
                format!("CAST({x} AS REAL)"),
                SqlValue::Real(float),
            ),
        };
        let boolean = |b: bool| {
            (
                "IN ('true', 'false')",
                x.clone(),
                SqlValue::Integer(i64::from(b)),
            )
        };
        match value {
            Value::Bool(b) => terms.push(boolean(*b)),
            Value::Number(n) => terms.extend(Num::of(n).map(numeric)),
            Value::String(s) => {
                terms.push(("= 'text'", x.clone(), SqlValue::Text(s.clone())));
                terms.extend(query::coerce_number(s).map(|f| numeric(Num::of_f64(f))));
                terms.extend(query::coerce_bool(s).map(boolean));
            }
            Value::Null | Value::Array(_) | Value::Object(_) => {}
        }
        if terms.is_empty() {
            self.sql.push('0');
            return Ok(());
        }
        self.sql.push('(');
        for (i, (guard, left, bound)) in terms.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(" OR ");
            }
            let _ = write!(self.sql, "({left} {op} ");
            self.bind(bound);
            let _ = write!(self.sql, " AND {t} {guard})");
        }
        self.sql.push(')');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{QueryOptions, parse_query};
    use serde_json::{Map, json};

    /// Compiled as if every field had an index: all of it in SQL.
    fn compile(query: &Value) -> Compiled {
        let parsed = parse_query(query.as_object().unwrap(), &QueryOptions::default()).unwrap();
        condition(&parsed.condition, &|_| true).unwrap()
    }

    const ALL: &dyn Fn(&str) -> bool = &|_| true;

    #[test]
    fn what_no_index_serves_goes_to_the_matcher_in_one_term() {
        let parsed = parse_query(
            json!({"a": 1, "b": {"$gt": 2}, "c": {"$ne": 3}, "$or": [{"a": 4}, {"d": 5}]})
                .as_object()
                .unwrap(),
            &QueryOptions::default(),
        )
        .unwrap();
        // `a` has an index: its equality stays SQL; its `$or` does not
        // (an index serves a top-level comparison), nor does `$ne`.
        let compiled = condition(&parsed.condition, &|f| f == "a" || f == "c").unwrap();
        assert!(
            compiled
                .sql
                .starts_with("((json_extract(data, '$.a') IN (?1)"),
            "{}",
            compiled.sql
        );
        assert!(
            compiled.sql.ends_with(" AND plume_match(data, ?2)"),
            "{}",
            compiled.sql
        );
        assert_eq!(
            compiled.sql.matches("json_extract").count(),
            1,
            "{}",
            compiled.sql
        );
        let SqlValue::Text(program) = &compiled.params[1] else {
            panic!("{:?}", compiled.params);
        };
        let rest: Condition = serde_json::from_str(program).unwrap();
        let Condition::And(rest) = rest else {
            panic!("{rest:?}");
        };
        assert_eq!(rest.len(), 3, "{rest:?}");
        // Nothing indexed: one function call, whatever the query.
        let compiled = condition(&parsed.condition, &|_| false).unwrap();
        assert_eq!(compiled.sql, "plume_match(data, ?1)");
        // No conditions: no call.
        let none = parse_query(&Map::new(), &QueryOptions::default()).unwrap();
        assert!(
            condition(&none.condition, &|_| false)
                .unwrap()
                .is_unconditional()
        );
    }

    #[test]
    fn a_plain_string_is_one_indexable_term() {
        let compiled = compile(&json!({"email": "a@x"}));
        assert_eq!(
            compiled.sql,
            "((json_extract(data, '$.email') IN (?1) AND \
             coalesce(json_type(data, '$.email'), 'null') IN ('text')))"
        );
        assert_eq!(compiled.params, [SqlValue::Text("a@x".to_owned())]);
    }

    #[test]
    fn strings_bind_their_coercions() {
        let compiled = compile(&json!({"n": {"$in": ["5", "true", null]}}));
        assert_eq!(
            compiled.params,
            [
                SqlValue::Text("5".to_owned()),
                SqlValue::Text("true".to_owned()),
                SqlValue::Real(5.0)
            ]
        );
        assert!(compiled.sql.contains("= 'null'"));
        assert!(compiled.sql.contains("= 1 AND coalesce("));
        assert!(compiled.sql.contains("= 'true'"));
        assert!(!compiled.sql.contains("= 'false'"));
    }

    #[test]
    fn empty_lists_and_null_orderings_are_constants() {
        assert_eq!(compile(&json!({})).sql, "1");
        assert_eq!(compile(&json!({"a": {"$lt": null}})).sql, "0");
        assert_eq!(compile(&json!({"a": {"$in": []}})).sql, "(0)");
    }

    #[test]
    fn large_numbers_compare_as_reals() {
        let compiled = compile(&json!({"n": {"$gt": 9_007_199_254_740_993_i64}}));
        assert!(
            compiled
                .sql
                .contains("CAST(json_extract(data, '$.n') AS REAL) > ?1")
        );
        assert_eq!(compiled.params, [SqlValue::Real(9_007_199_254_740_992.0)]);
        let compiled = compile(&json!({"n": 3}));
        assert_eq!(compiled.params, [SqlValue::Integer(3)]);
    }

    #[test]
    fn values_never_reach_the_sql_text() {
        let evil = "x'); DROP TABLE users; --";
        let compiled = compile(&json!({"name": evil, "$or": [{"a": {"$gt": evil}}]}));
        assert!(!compiled.sql.contains("DROP"));
        assert_eq!(compiled.params.len(), 2);
        let parsed = parse_query(
            json!({"name": evil}).as_object().unwrap(),
            &QueryOptions::default(),
        )
        .unwrap();
        let compiled = condition(&parsed.condition, &|_| false).unwrap();
        assert!(!compiled.sql.contains("DROP"));
    }

    #[test]
    fn field_names_are_checked_again() {
        let bad = Condition::Field {
            fold_case: false,
            field: "a') OR 1=1 --".to_owned(),
            op: Op::Eq,
            value: json!(1),
        };
        assert!(condition(&bad, ALL).is_err());
        assert!(condition(&bad, &|_| false).is_err());
        assert!(order_by(&[("a b".to_owned(), SortOrder::Asc)], ALL).is_err());
        assert!(order_by(&[("a'b".to_owned(), SortOrder::Asc)], &|_| false).is_err());
        assert!(value_expr("a.b").is_err());
    }

    #[test]
    fn too_many_values_are_400_not_left_to_rust() {
        let many: Vec<Condition> = (0..61)
            .map(|i| Condition::Field {
                fold_case: false,
                field: format!("f{i}"),
                op: Op::In,
                value: Value::Array((0..500).map(|v| json!(v.to_string())).collect()),
            })
            .collect();
        let error = condition(&Condition::And(many), ALL).unwrap_err();
        assert_eq!(error.code(), 400);
        assert!(
            error.message().contains("too many values"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn order_by_ends_with_insertion_order() {
        assert_eq!(order_by(&[], ALL).unwrap(), "seq ASC");
        let sort = [
            ("a".to_owned(), SortOrder::Desc),
            ("b".to_owned(), SortOrder::Asc),
        ];
        let sql = order_by(&sort, ALL).unwrap();
        assert!(sql.ends_with("END ASC, seq ASC"), "{sql}");
        assert!(sql.starts_with(&rank_expr("a").unwrap()), "{sql}");
        // No index sorts by `a`: one key per row, computed in Rust.
        assert_eq!(
            order_by(&sort, &|f| f == "b").unwrap(),
            "plume_sort_key(data, '-a,+b'), seq ASC"
        );
    }
}
