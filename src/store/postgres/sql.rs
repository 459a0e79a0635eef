//! Compiles a [`ParsedQuery`](crate::query::ParsedQuery)'s conditions and
//! `$sort` to PostgreSQL over the `data` column (`jsonb`) of a table, by
//! the rules of [`crate::query`].
//!
//! # One ordered key per field
//!
//! Every comparison and every sort of a field `f` goes through one text
//! expression, its key `K(f)`, compared under the `"C"` collation (byte
//! order, which for UTF-8 is the code point order of Rust's `str`):
//!
//! | stored value | key |
//! |---|---|
//! | missing or `null` | `0` |
//! | `false` / `true` | `1false` / `1true` |
//! | a number `x` | `2` and 16 hex digits: the bits of `x` as an `f64`, the sign bit set for `x >= 0`, every bit inverted for `x < 0` |
//! | a string `s` | `3` and `s` |
//! | an array / an object | `4` / `5` |
//!
//! The first character is the type's rank in the sort order (`null` <
//! booleans < numbers < strings < arrays < objects), and within a rank the
//! keys order as the values do: the hex digits of the transformed bits
//! order exactly as the `f64`s, so a number compares as the memory store's
//! `f64` does, whatever the stored integer's size. Arrays and objects are
//! then ordered by their compact JSON text (read from the record's text,
//! `body`, only for those rows), and ties by `seq`, the insertion order.
//!
//! The query side is computed in Rust: a query value becomes the keys it
//! may equal, one per type it is compared with (the string `"5"` is the
//! keys of `"5"` and of `5`, by the coercion rules), so equality and `$in`
//! are `K(f) IN (...)`, `$ne` and `$nin` its negation (a key is never
//! `NULL`), and a range is `K(f) < key` bounded to the key's rank. One key
//! for every type is what lets one index serve them all: a declared index
//! is made on `K(f)` (on `K(u), K(c)` for a compound one), so equality on
//! `u` followed by `$sort` on `c` reads the index in order, which two
//! columns per field (a number's and a string's) could not, the planner
//! seeing the unused one as free.
//!
//! Values are always bound parameters (`$1`, `$2`, ..., all `text`).
//! Field names are spliced into the expressions (`data->'name'`), since an
//! expression index serves only a query that has literally the same
//! expression; every name is checked again with
//! [`query::is_field_name`], which admits no quote.

use std::fmt::Write as _;

use serde_json::Value;

use crate::query::{self, Condition, Op, SortOrder};
use crate::{Error, Result};

/// The most values bound in one statement; PostgreSQL's protocol allows
/// 65,535.
const MAX_PARAMS: usize = 60_000;

/// A compiled condition: SQL text and the values it binds, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Compiled {
    /// An SQL boolean expression.
    pub(super) sql: String,
    /// The values for `$1`, `$2`, ... (all bound as `text`).
    pub(super) params: Vec<String>,
}

impl Compiled {
    /// True when the condition is `TRUE` (no filter).
    pub(super) fn is_unconditional(&self) -> bool {
        self.sql == "TRUE"
    }
}

/// `name`, checked to be an identifier, for splicing.
fn checked(name: &str) -> Result<&str> {
    if query::is_field_name(name) {
        Ok(name)
    } else {
        Err(Error::bad_request(format!(
            "Invalid field name '{name}': a field name is letters, digits and _"
        )))
    }
}

/// The key of field `f` (see the module docs); `fold` lowers ASCII letters
/// of strings, for fields whose equality ignores case.
pub(super) fn key_expr(field: &str, fold: bool) -> Result<String> {
    let f = checked(field)?;
    let text = format!("(data->>'{f}')");
    let string = if fold {
        format!("translate({text}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')")
    } else {
        text.clone()
    };
    let hex = format!("encode(float8send({text}::float8), 'hex')");
    Ok(format!(
        "((CASE jsonb_typeof(data->'{f}') \
         WHEN 'string' THEN '3' || {string} \
         WHEN 'number' THEN '2' || CASE WHEN {text}::float8 < 0 \
         THEN translate({hex}, '0123456789abcdef', 'fedcba9876543210') \
         ELSE translate(left({hex}, 1), '01234567', '89abcdef') || substr({hex}, 2) END \
         WHEN 'boolean' THEN '1' || {text} \
         WHEN 'array' THEN '4' WHEN 'object' THEN '5' ELSE '0' END) COLLATE \"C\")"
    ))
}

/// The compact JSON text of an array or object value of `f`, for ordering
/// those among themselves; `NULL` for every other value.
fn json_text_expr(field: &str) -> Result<String> {
    let f = checked(field)?;
    Ok(format!(
        "(CASE WHEN jsonb_typeof(data->'{f}') IN ('array', 'object') \
         THEN (body::json->'{f}')::text END COLLATE \"C\")"
    ))
}

/// The key of an `f64` (see the module docs).
pub(super) fn number_key(x: f64) -> String {
    let bits = x.to_bits();
    let ordered = if x < 0.0 { !bits } else { bits | (1 << 63) };
    format!("2{ordered:016x}")
}

fn string_key(s: &str) -> String {
    format!("3{s}")
}

fn bool_key(b: bool) -> &'static str {
    if b { "1true" } else { "1false" }
}

/// The keys a stored value may have to equal the query value `q`, by the
/// coercion rules: a string also equals the number and the boolean it
/// reads as. `None` for an array or object (compared as a whole).
fn equal_keys(q: &Value) -> Option<Vec<String>> {
    Some(match q {
        Value::Null => vec!["0".to_owned()],
        Value::Bool(b) => vec![bool_key(*b).to_owned()],
        Value::Number(n) => n.as_f64().map(number_key).into_iter().collect(),
        Value::String(s) => {
            let mut keys = Vec::with_capacity(2);
            // PostgreSQL cannot hold U+0000 in text, so no stored string
            // has one and the key could not even be bound.
            if !s.contains('\0') {
                keys.push(string_key(s));
            }
            if let Some(n) = query::coerce_number(s) {
                keys.push(number_key(n));
            }
            if let Some(b) = query::coerce_bool(s) {
                keys.push(bool_key(b).to_owned());
            }
            keys
        }
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// The rank bounds of a key: every key of its type is in `lower..upper`.
fn rank_bounds(key: &str) -> (&'static str, &'static str) {
    match key.as_bytes().first() {
        Some(b'1') => ("1", "2"),
        Some(b'2') => ("2", "3"),
        Some(b'3') => ("3", "4"),
        _ => ("0", "0"),
    }
}

/// Compiles a condition tree; `unique_scalar(f)` is true for a field
/// whose unique index is partial (only strings, numbers and booleans), so
/// that an equality that implies it says so and the index serves it.
///
/// 400 when it needs more than [`MAX_PARAMS`] values, or for a field name
/// that is not an identifier (the query parser has already refused those;
/// this is a second lock).
pub(super) fn condition(
    condition: &Condition,
    unique_scalar: &dyn Fn(&str) -> bool,
) -> Result<Compiled> {
    let mut out = Compiled {
        sql: String::new(),
        params: Vec::new(),
    };
    out.write(condition, unique_scalar, true)?;
    if out.params.len() > MAX_PARAMS {
        return Err(Error::bad_request(format!(
            "Query has too many values: at most {MAX_PARAMS} can be bound in one statement"
        )));
    }
    Ok(out)
}

impl Compiled {
    fn bind(&mut self, value: String) {
        self.params.push(value);
        let _ = write!(self.sql, "${}", self.params.len());
    }

    fn write(
        &mut self,
        condition: &Condition,
        unique_scalar: &dyn Fn(&str) -> bool,
        top: bool,
    ) -> Result<()> {
        match condition {
            Condition::And(items) | Condition::Or(items) if items.is_empty() => {
                let all = matches!(condition, Condition::And(_));
                self.sql.push_str(if all { "TRUE" } else { "FALSE" });
            }
            Condition::And(items) | Condition::Or(items) => {
                let joint = if matches!(condition, Condition::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                if !top || joint == " OR " {
                    self.sql.push('(');
                }
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(joint);
                    }
                    self.write(item, unique_scalar, false)?;
                }
                if !top || joint == " OR " {
                    self.sql.push(')');
                }
            }
            Condition::Field {
                field,
                op,
                value,
                fold_case,
            } => self.field(field, *op, value, *fold_case, unique_scalar(field))?,
        }
        Ok(())
    }

    fn field(
        &mut self,
        field: &str,
        op: Op,
        value: &Value,
        fold: bool,
        unique_scalar: bool,
    ) -> Result<()> {
        let key = key_expr(field, fold)?;
        match op {
            Op::Eq | Op::In | Op::Ne | Op::Nin => {
                let values = match value {
                    Value::Array(items) if matches!(op, Op::In | Op::Nin) => items.as_slice(),
                    single => std::slice::from_ref(single),
                };
                if matches!(op, Op::Ne | Op::Nin) {
                    self.sql.push_str("NOT ");
                }
                self.any_equal(
                    field,
                    &key,
                    values,
                    unique_scalar && matches!(op, Op::Eq | Op::In),
                )
            }
            Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
                let sign = match op {
                    Op::Lt => "<",
                    Op::Lte => "<=",
                    Op::Gt => ">",
                    _ => ">=",
                };
                // A null never orders; arrays and objects are never in a
                // query's range.
                let keys: Vec<(String, &str)> = match value {
                    Value::Null => Vec::new(),
                    // No stored string holds U+0000 (PostgreSQL cannot), so
                    // below "p\0..." is up to "p", and above it is above "p".
                    Value::String(text) if text.contains('\0') => {
                        let prefix = text.split('\0').next().unwrap_or_default();
                        let sign = if sign.starts_with('<') { "<=" } else { ">" };
                        vec![(string_key(prefix), sign)]
                    }
                    other => equal_keys(other)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|k| (k, sign))
                        .collect(),
                };
                if keys.is_empty() {
                    self.sql.push_str("FALSE");
                    return Ok(());
                }
                self.sql.push('(');
                for (i, (k, sign)) in keys.into_iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(" OR ");
                    }
                    let (lower, upper) = rank_bounds(&k);
                    let _ = write!(self.sql, "({key} {sign} ");
                    self.bind(k);
                    // The other side of the rank: `<` needs a floor, `>`
                    // a ceiling, so that no other type is in range.
                    if sign.starts_with('<') {
                        let _ = write!(self.sql, " AND {key} >= '{lower}')");
                    } else {
                        let _ = write!(self.sql, " AND {key} < '{upper}')");
                    }
                }
                self.sql.push(')');
                Ok(())
            }
        }
    }

    /// `(K(f) IN (...) OR data->'f' = ...)` for a list of query values.
    fn any_equal(
        &mut self,
        field: &str,
        key: &str,
        values: &[Value],
        scalar_only: bool,
    ) -> Result<()> {
        let mut keys: Vec<String> = Vec::new();
        let mut wholes: Vec<String> = Vec::new();
        for value in values {
            match equal_keys(value) {
                Some(found) => {
                    for k in found {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                }
                None => wholes.push(value.to_string()),
            }
        }
        if keys.is_empty() && wholes.is_empty() {
            self.sql.push_str("FALSE");
            return Ok(());
        }
        self.sql.push('(');
        let mut first = true;
        if !keys.is_empty() {
            first = false;
            // The partial unique index (strings, numbers, booleans) serves
            // only a query that implies its condition.
            let scalar = scalar_only && !keys.iter().any(|k| k == "0");
            if scalar {
                self.sql.push('(');
            }
            match keys.len() {
                1 => {
                    let _ = write!(self.sql, "{key} = ");
                    if let Some(k) = keys.pop() {
                        self.bind(k);
                    }
                }
                _ => {
                    let _ = write!(self.sql, "{key} IN (");
                    for (i, k) in keys.into_iter().enumerate() {
                        if i > 0 {
                            self.sql.push_str(", ");
                        }
                        self.bind(k);
                    }
                    self.sql.push(')');
                }
            }
            if scalar {
                let _ = write!(self.sql, " AND {})", scalar_predicate(field)?);
            }
        }
        for whole in wholes {
            if !first {
                self.sql.push_str(" OR ");
            }
            first = false;
            let _ = write!(self.sql, "data->'{}' = ", checked(field)?);
            self.bind(whole);
            self.sql.push_str("::jsonb");
        }
        self.sql.push(')');
        Ok(())
    }
}

/// The condition of a partial unique index on `field`: the value is a
/// string, a number or a boolean (nulls, missing fields, arrays and
/// objects never conflict).
pub(super) fn scalar_predicate(field: &str) -> Result<String> {
    Ok(format!(
        "jsonb_typeof(data->'{}') IN ('string', 'number', 'boolean')",
        checked(field)?
    ))
}

/// The `ORDER BY` list for `$sort` keys, always ending with `seq` (the
/// insertion order) so that ties keep their order.
pub(super) fn order_by(sort: &[(String, SortOrder)]) -> Result<String> {
    let mut sql = String::new();
    for (field, order) in sort {
        let dir = match order {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        };
        let _ = write!(
            sql,
            "{} {dir}, {} {dir}, ",
            key_expr(field, false)?,
            json_text_expr(field)?
        );
    }
    sql.push_str("seq ASC");
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_order_as_the_numbers() {
        let numbers = [
            f64::MIN,
            -1e300,
            -2.5,
            -1.0,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            2.5,
            9_007_199_254_740_992.0,
            1e300,
            f64::MAX,
        ];
        for pair in numbers.windows(2) {
            assert!(number_key(pair[0]) < number_key(pair[1]), "{pair:?}");
        }
        assert_eq!(number_key(-0.0), number_key(0.0));
        assert!(number_key(1.5).starts_with('2') && number_key(1.5).len() == 17);
    }

    #[test]
    fn keys_order_types_by_rank() {
        let keys = [
            "0".to_owned(),
            bool_key(false).to_owned(),
            bool_key(true).to_owned(),
            number_key(-5.0),
            number_key(1e308),
            string_key(""),
            string_key("B"),
            string_key("a"),
            string_key("é"),
            "4".to_owned(),
            "5".to_owned(),
        ];
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
    }

    #[test]
    fn strings_equal_the_numbers_and_booleans_they_read_as() {
        let keys = equal_keys(&Value::from("5")).unwrap();
        assert_eq!(keys, vec![string_key("5"), number_key(5.0)]);
        let keys = equal_keys(&Value::from("true")).unwrap();
        assert_eq!(keys, vec![string_key("true"), bool_key(true).to_owned()]);
        assert_eq!(
            equal_keys(&Value::from("a\0b")).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(equal_keys(&serde_json::json!([1])), None);
    }

    #[test]
    fn field_names_are_checked_again() {
        assert!(key_expr("a'b", false).is_err());
        assert!(order_by(&[("x y".to_owned(), SortOrder::Asc)]).is_err());
    }
}
