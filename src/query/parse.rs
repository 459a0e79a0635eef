//! [`parse_query`]: validates a JSON query against the grammar of the
//! [module docs](crate::query) and turns it into a [`ParsedQuery`].

use serde_json::{Map, Value};

use super::limits::Tally;
use super::{Condition, Filters, MAX_SELECT, MAX_SORT, Op, ParsedQuery, QueryOptions, SortOrder};
use crate::{Error, Result};

/// The longest field name, in characters.
pub const MAX_FIELD_NAME_LEN: usize = 64;

/// Validates a Feathers query and parses it; 400 BadRequest for anything
/// outside the grammar or the bounds (see the [module docs](crate::query)).
pub fn parse_query(query: &Map<String, Value>, options: &QueryOptions) -> Result<ParsedQuery> {
    let mut parser = Parser {
        tally: Tally::new(options.limits),
        options,
    };
    let mut filters = Filters::default();
    let mut limit = None;
    let mut conditions = Vec::new();
    for (key, value) in query {
        match key.as_str() {
            "$limit" => limit = Some(parse_count("$limit", value)?),
            "$skip" => filters.skip = parse_count("$skip", value)?,
            "$sort" => filters.sort = parse_sort(value, options)?,
            "$select" => filters.select = Some(parse_select(value, options)?),
            "$or" | "$and" => conditions.push(parser.group(key, value, 1)?),
            other if other.starts_with('$') => {
                return Err(Error::bad_request(format!(
                    "Invalid filter value {}",
                    shown(other)
                )));
            }
            field => parser.field(field, value, &mut conditions)?,
        }
    }
    filters.limit = match options.paginate {
        Some(paginate) => Some(limit.unwrap_or(paginate.default).min(paginate.max)),
        None => limit,
    };
    Ok(ParsedQuery {
        filters,
        condition: Condition::And(conditions),
    })
}

/// Walks a query's conditions into a [`Condition`] tree, keeping the
/// [`Tally`] of its size as it goes.
struct Parser<'o> {
    tally: Tally,
    options: &'o QueryOptions,
}

impl Parser<'_> {
    /// `$or` / `$and` at nesting level `depth`.
    fn group(&mut self, key: &str, value: &Value, depth: usize) -> Result<Condition> {
        self.tally.check_depth(depth)?;
        self.tally.count()?;
        let Value::Array(entries) = value else {
            return Err(Error::bad_request(format!(
                "{key} must be an array of objects"
            )));
        };
        let mut parsed = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Object(entry) = entry else {
                return Err(Error::bad_request(format!(
                    "{key} must be an array of objects"
                )));
            };
            self.tally.count()?;
            let mut conditions = Vec::with_capacity(entry.len());
            for (key, value) in entry {
                match key.as_str() {
                    "$or" | "$and" => conditions.push(self.group(key, value, depth + 1)?),
                    other if other.starts_with('$') => {
                        return Err(invalid_parameter(other, entry));
                    }
                    field => self.field(field, value, &mut conditions)?,
                }
            }
            parsed.push(Condition::And(conditions));
        }
        Ok(if key == "$or" {
            Condition::Or(parsed)
        } else {
            Condition::And(parsed)
        })
    }

    /// True when `op` on `field` compares strings ignoring case.
    fn folds(&self, field: &str, op: Op) -> bool {
        matches!(op, Op::Eq | Op::Ne | Op::In | Op::Nin)
            && self.options.fold_case.iter().any(|f| f == field)
    }

    /// A condition on `field`, pushed onto `out` (one per operator).
    fn field(&mut self, field: &str, value: &Value, out: &mut Vec<Condition>) -> Result<()> {
        check_field_name(field)?;
        self.options.check_protected(field)?;
        match value {
            Value::Array(_) => Err(Error::bad_request(format!(
                "Invalid value for '{field}': an array is not a query value (use $in)"
            ))),
            Value::Object(operators) => {
                if operators.is_empty() || operators.keys().any(|key| !key.starts_with('$')) {
                    return Err(Error::bad_request(format!(
                        "Invalid value for '{field}': an object must contain only operators \
                         ($in, $nin, $lt, $lte, $gt, $gte, $ne)"
                    )));
                }
                for (key, operand) in operators {
                    let op = Op::from_key(key).ok_or_else(|| invalid_parameter(key, operators))?;
                    let value = if op.takes_list() {
                        let list = parse_list(field, key, operand, self.options.limits.in_values)?;
                        self.tally.compare(list.as_array().map_or(1, Vec::len))?;
                        list
                    } else if is_scalar(operand) {
                        self.tally.compare(1)?;
                        operand.clone()
                    } else {
                        return Err(Error::bad_request(format!(
                            "Invalid value for {key} on '{field}': expected a string, number, \
                             boolean or null"
                        )));
                    };
                    let fold_case = self.folds(field, op);
                    out.push(Condition::Field {
                        field: field.to_owned(),
                        op,
                        value: if fold_case { folded(&value) } else { value },
                        fold_case,
                    });
                }
                Ok(())
            }
            scalar => {
                self.tally.compare(1)?;
                let fold_case = self.folds(field, Op::Eq);
                out.push(Condition::Field {
                    field: field.to_owned(),
                    op: Op::Eq,
                    value: if fold_case {
                        folded(scalar)
                    } else {
                        scalar.clone()
                    },
                    fold_case,
                });
                Ok(())
            }
        }
    }
}

/// Feathers' error for an unknown operator (adapter-commons `query.ts`,
/// `validateQueryProperty`): its data is the object that holds the key.
fn invalid_parameter(key: &str, within: &Map<String, Value>) -> Error {
    Error::bad_request(format!("Invalid query parameter {}", shown(key)))
        .with_data(Value::Object(within.clone()))
}

/// A string for an error message, cut short if a client sent a long one.
fn shown(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// True when `name` is a valid field name (see the [module docs](crate::query)).
pub(crate) fn is_field_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_FIELD_NAME_LEN
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_field_name(name: &str) -> Result<()> {
    if is_field_name(name) {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "Invalid field name '{}': a field name is letters, digits and _, not starting with a \
             digit, at most {MAX_FIELD_NAME_LEN} characters",
            shown(name)
        )))
    }
}

/// `$limit` / `$skip`: a non-negative integer or a string of digits.
fn parse_count(name: &str, value: &Value) -> Result<usize> {
    let parsed = match value {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<usize>().ok()
        }
        _ => None,
    };
    parsed.ok_or_else(|| Error::bad_request(format!("{name} must be a non-negative integer")))
}

fn parse_sort(value: &Value, options: &QueryOptions) -> Result<Vec<(String, SortOrder)>> {
    let Value::Object(keys) = value else {
        return Err(Error::bad_request(
            "$sort must be an object of field names to 1 or -1",
        ));
    };
    if keys.len() > MAX_SORT {
        return Err(Error::bad_request(format!(
            "$sort has too many fields: at most {MAX_SORT} are allowed"
        )));
    }
    keys.iter()
        .map(|(field, order)| {
            check_field_name(field)?;
            options.check_protected(field)?;
            let order = match order {
                Value::Number(n) if n.as_i64() == Some(1) => SortOrder::Asc,
                Value::Number(n) if n.as_i64() == Some(-1) => SortOrder::Desc,
                Value::String(s) if s == "1" => SortOrder::Asc,
                Value::String(s) if s == "-1" => SortOrder::Desc,
                _ => {
                    return Err(Error::bad_request(format!(
                        "Invalid $sort value for '{field}': expected 1 or -1"
                    )));
                }
            };
            Ok((field.clone(), order))
        })
        .collect()
}

fn parse_select(value: &Value, options: &QueryOptions) -> Result<Vec<String>> {
    let id_field = options.id_field.as_str();
    let invalid = || Error::bad_request("$select must be a field name or an array of field names");
    let names: Vec<&str> = match value {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names
            .iter()
            .map(|name| name.as_str().ok_or_else(invalid))
            .collect::<Result<_>>()?,
        _ => return Err(invalid()),
    };
    if names.len() > MAX_SELECT {
        return Err(Error::bad_request(format!(
            "$select has too many fields: at most {MAX_SELECT} are allowed"
        )));
    }
    let mut fields: Vec<String> = Vec::with_capacity(names.len() + 1);
    for name in names {
        check_field_name(name)?;
        options.check_protected(name)?;
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_owned());
        }
    }
    if !fields.iter().any(|f| f == id_field) {
        fields.push(id_field.to_owned());
    }
    Ok(fields)
}

/// `$in` / `$nin`: an array of scalars, or one scalar.
fn parse_list(field: &str, key: &str, value: &Value, max: usize) -> Result<Value> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    if items.len() > max {
        return Err(Error::bad_request(format!(
            "{key} on '{field}' has too many values: at most {max} are allowed"
        )));
    }
    if !items.iter().all(is_scalar) {
        return Err(Error::bad_request(format!(
            "Invalid value for {key} on '{field}': expected an array of strings, numbers, \
             booleans or nulls"
        )));
    }
    Ok(Value::Array(items.to_vec()))
}

/// A value with its strings (and those of a list) in ASCII lower case,
/// as SQLite's `lower()` folds them.
fn folded(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_ascii_lowercase()),
        Value::Array(items) => Value::Array(items.iter().map(folded).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Paginate;
    use crate::query::test_support::{error, hit, obj, parse};
    use serde_json::json;

    fn parse_paginated(query: Value, default: usize, max: usize) -> Result<ParsedQuery> {
        let options = QueryOptions::default().paginate(Some(Paginate { default, max }));
        parse_query(&obj(query), &options)
    }

    fn field(field: &str, op: Op, value: Value) -> Condition {
        Condition::Field {
            field: field.to_owned(),
            op,
            value,
            fold_case: false,
        }
    }

    #[test]
    fn parses_the_url_form() {
        let parsed = parse(json!({
            "$limit": "5", "$skip": "2", "$sort": {"createdAt": "-1", "name": 1},
            "$select": ["name", "name", "age"], "name": {"$in": ["a", "b"]}, "age": {"$gte": "18", "$lt": 65}
        }))
        .unwrap();
        assert_eq!(
            parsed.filters,
            Filters {
                limit: Some(5),
                skip: 2,
                sort: vec![
                    ("createdAt".to_owned(), SortOrder::Desc),
                    ("name".to_owned(), SortOrder::Asc)
                ],
                select: Some(vec!["name".to_owned(), "age".to_owned(), "id".to_owned()]),
            }
        );
        assert_eq!(
            parsed.condition,
            Condition::And(vec![
                field("name", Op::In, json!(["a", "b"])),
                field("age", Op::Gte, json!("18")),
                field("age", Op::Lt, json!(65)),
            ])
        );
    }

    #[test]
    fn parses_or_and_nested_groups() {
        let parsed = parse(json!({
            "$or": [{"a": 1}, {"b": {"$ne": null}, "$and": [{"c": true}]}],
            "d": "x"
        }))
        .unwrap();
        assert_eq!(
            parsed.condition,
            Condition::And(vec![
                Condition::Or(vec![
                    Condition::And(vec![field("a", Op::Eq, json!(1))]),
                    Condition::And(vec![
                        field("b", Op::Ne, Value::Null),
                        Condition::And(vec![Condition::And(vec![field("c", Op::Eq, json!(true))])]),
                    ]),
                ]),
                field("d", Op::Eq, json!("x")),
            ])
        );
        assert!(parse(json!({"$and": [{"$or": [{"a": 1}]}]})).is_ok());
    }

    #[test]
    fn empty_query_matches_everything() {
        let parsed = parse(json!({})).unwrap();
        assert_eq!(parsed.filters, Filters::default());
        assert_eq!(parsed.condition, Condition::And(vec![]));
        assert!(parsed.matches(&obj(json!({"a": 1}))));
    }

    #[test]
    fn unknown_filter_and_operator_messages() {
        assert_eq!(error(json!({"$foo": 1})), "Invalid filter value $foo");
        assert_eq!(error(json!({"$eq": 1})), "Invalid filter value $eq");
        assert_eq!(
            error(json!({"age": {"$foo": 1}})),
            "Invalid query parameter $foo"
        );
        assert_eq!(
            error(json!({"age": {"$eq": 1}})),
            "Invalid query parameter $eq"
        );
        assert_eq!(
            error(json!({"age": {"$or": []}})),
            "Invalid query parameter $or"
        );
        assert_eq!(
            error(json!({"$or": [{"$limit": 1}]})),
            "Invalid query parameter $limit"
        );
        assert_eq!(
            error(json!({"$or": [{"a": {"$bar": 1}}]})),
            "Invalid query parameter $bar"
        );
        let long = format!("${}", "x".repeat(500));
        let message = error(json!({ long: 1 }));
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn limit_and_skip_accept_integers_and_digit_strings() {
        for (value, expected) in [
            (json!(5), 5),
            (json!("5"), 5),
            (json!(0), 0),
            (json!("0"), 0),
        ] {
            let parsed = parse(json!({"$limit": value.clone(), "$skip": value})).unwrap();
            assert_eq!(parsed.filters.limit, Some(expected));
            assert_eq!(parsed.filters.skip, expected);
        }
        for bad in [
            json!(-1),
            json!("-1"),
            json!(1.5),
            json!("1.5"),
            json!(""),
            json!("+5"),
            json!(" 5"),
            json!("abc"),
            json!(null),
            json!(true),
            json!([5]),
            json!({"a": 1}),
            json!("99999999999999999999999999"),
        ] {
            assert_eq!(
                error(json!({"$limit": bad.clone()})),
                "$limit must be a non-negative integer"
            );
            assert_eq!(
                error(json!({"$skip": bad})),
                "$skip must be a non-negative integer"
            );
        }
    }

    #[test]
    fn sort_accepts_one_and_minus_one() {
        let parsed = parse(json!({"$sort": {"a": 1, "b": -1, "c": "1", "d": "-1"}})).unwrap();
        let orders: Vec<SortOrder> = parsed.filters.sort.iter().map(|(_, o)| *o).collect();
        assert_eq!(
            orders,
            [
                SortOrder::Asc,
                SortOrder::Desc,
                SortOrder::Asc,
                SortOrder::Desc
            ]
        );
        for bad in [json!(0), json!(2), json!("asc"), json!(1.5), json!(null)] {
            assert_eq!(
                error(json!({"$sort": {"a": bad}})),
                "Invalid $sort value for 'a': expected 1 or -1"
            );
        }
        for bad in [json!("a"), json!(["a"]), json!(1)] {
            assert_eq!(
                error(json!({"$sort": bad})),
                "$sort must be an object of field names to 1 or -1"
            );
        }
        assert!(error(json!({"$sort": {"a-b": 1}})).starts_with("Invalid field name 'a-b'"));
    }

    #[test]
    fn select_accepts_a_string_or_an_array_and_keeps_the_id() {
        let parsed = parse(json!({"$select": "name"})).unwrap();
        assert_eq!(
            parsed.filters.select,
            Some(vec!["name".to_owned(), "id".to_owned()])
        );
        let parsed = parse(json!({"$select": ["id", "name"]})).unwrap();
        assert_eq!(
            parsed.filters.select,
            Some(vec!["id".to_owned(), "name".to_owned()])
        );
        let parsed = parse_query(&obj(json!({"$select": []})), &QueryOptions::new("_id")).unwrap();
        assert_eq!(parsed.filters.select, Some(vec!["_id".to_owned()]));
        for bad in [json!(1), json!([1]), json!(["a", null]), json!({"a": 1})] {
            assert_eq!(
                error(json!({"$select": bad})),
                "$select must be a field name or an array of field names"
            );
        }
        assert!(error(json!({"$select": ["a.b"]})).starts_with("Invalid field name 'a.b'"));
    }

    #[test]
    fn or_and_and_must_be_arrays_of_objects() {
        for key in ["$or", "$and"] {
            for bad in [
                json!({"a": 1}),
                json!("a"),
                json!([1]),
                json!([{"a": 1}, []]),
            ] {
                assert_eq!(
                    error(json!({ key: bad })),
                    format!("{key} must be an array of objects")
                );
            }
        }
    }

    #[test]
    fn field_values_must_be_scalars_or_operator_objects() {
        assert_eq!(
            error(json!({"tags": ["a"]})),
            "Invalid value for 'tags': an array is not a query value (use $in)"
        );
        let plain = "Invalid value for 'address': an object must contain only operators \
                     ($in, $nin, $lt, $lte, $gt, $gte, $ne)";
        assert_eq!(error(json!({"address": {"city": "x"}})), plain);
        assert_eq!(error(json!({"address": {"$ne": 1, "city": "x"}})), plain);
        assert_eq!(error(json!({"address": {}})), plain);
        for op in ["$ne", "$lt", "$lte", "$gt", "$gte"] {
            assert_eq!(
                error(json!({"a": { op: [1] }})),
                format!(
                    "Invalid value for {op} on 'a': expected a string, number, boolean or null"
                )
            );
            assert!(parse(json!({"a": { op: {"b": 1} }})).is_err());
        }
        for op in ["$in", "$nin"] {
            assert_eq!(
                error(json!({"a": { op: [1, [2]] }})),
                format!(
                    "Invalid value for {op} on 'a': expected an array of strings, numbers, \
                     booleans or nulls"
                )
            );
            assert!(parse(json!({"a": { op: {"b": 1} }})).is_err());
        }
    }

    #[test]
    fn field_names_must_be_identifiers() {
        for good in ["a", "_", "_id", "createdAt", "a1_b2", &"x".repeat(64)] {
            assert!(is_field_name(good), "{good}");
            assert!(parse(json!({ good: 1 })).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1a",
            "a-b",
            "a.b",
            "a b",
            "é",
            "a;drop",
            &"x".repeat(65),
        ] {
            assert!(!is_field_name(bad), "{bad}");
            let message = error(json!({ bad: 1 }));
            assert!(message.starts_with("Invalid field name"), "{message}");
        }
        assert!(error(json!({"$or": [{"a.b": 1}]})).starts_with("Invalid field name 'a.b'"));
    }

    #[test]
    fn in_and_nin_take_a_list_or_one_value() {
        let parsed = parse(json!({"a": {"$in": "x", "$nin": 5}})).unwrap();
        assert_eq!(
            parsed.condition,
            Condition::And(vec![
                field("a", Op::In, json!(["x"])),
                field("a", Op::Nin, json!([5])),
            ])
        );
        assert!(hit(json!({"a": {"$in": "x"}}), json!({"a": "x"})));
        assert!(!hit(json!({"a": {"$in": []}}), json!({"a": "x"})));
        assert!(hit(json!({"a": {"$nin": []}}), json!({"a": "x"})));
    }

    #[test]
    fn pagination_defaults_and_clamps_the_limit() {
        let page = |query| parse_paginated(query, 10, 50).unwrap().filters.limit;
        assert_eq!(page(json!({})), Some(10));
        assert_eq!(page(json!({"$limit": 20})), Some(20));
        assert_eq!(page(json!({"$limit": "1000"})), Some(50));
        assert_eq!(page(json!({"$limit": 0})), Some(0));
        // A default above the maximum is clamped too.
        let limit = parse_paginated(json!({}), 100, 20).unwrap().filters.limit;
        assert_eq!(limit, Some(20));
        // Without pagination there is no default limit.
        assert_eq!(parse(json!({})).unwrap().filters.limit, None);
        assert_eq!(
            parse(json!({"$limit": 1000})).unwrap().filters.limit,
            Some(1000)
        );
    }
}
