//! Query schemas: Feathers' query syntax for a set of fields
//! ([`query_syntax`], as `querySyntax` in `@feathersjs/schema`'s
//! `json-schema.ts`), and the conversion of a URL query's strings to the
//! types a schema declares ([`coerce`], what ajv's `coerceTypes` does for
//! a Feathers query validator).

use serde_json::{Map, Value, json};

/// How deep [`coerce`] follows a query into nested values and `$ref`s: a
/// query has at most a few levels (`$or` of fields of operators).
const MAX_DEPTH: usize = 16;

/// The query schema for `properties` (an object of field name → field
/// schema): each field takes a value of its schema, or an object of
/// `$gt`, `$gte`, `$lt`, `$lte`, `$ne` (each of the field's schema) and
/// `$in`, `$nin` (arrays of it); `$limit` and `$skip` are non-negative
/// integers, `$sort` takes `1` or `-1` per field, `$select` the field
/// names, `$or` and `$and` lists of field conditions. Nothing else is
/// allowed: an unknown field or operator is 400.
///
/// Stricter than Feathers in two places: `$sort` names only these fields,
/// and `$and` is described (Plume's query language has it).
///
/// ```
/// use plume::schema::{Schema, query_syntax};
/// use serde_json::json;
///
/// let schema = Schema::new(query_syntax(&json!({"age": {"type": "integer"}})))?;
/// assert!(schema.validate(&json!({"age": {"$gt": 30}, "$limit": 10})).is_ok());
/// assert!(schema.validate(&json!({"name": "x"})).is_err());
/// # Ok::<(), plume::Error>(())
/// ```
pub fn query_syntax(properties: &Value) -> Value {
    let empty = Map::new();
    let properties = properties.as_object().unwrap_or(&empty);
    let mut fields = Map::new();
    for (name, definition) in properties {
        let mut definition = definition.clone();
        if let Some(object) = definition.as_object_mut() {
            // A default fills data, not a query.
            object.remove("default");
        }
        let operators = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "$gt": definition,
                "$gte": definition,
                "$lt": definition,
                "$lte": definition,
                "$ne": definition,
                "$in": {"type": "array", "items": definition},
                "$nin": {"type": "array", "items": definition},
            },
        });
        fields.insert(name.clone(), json!({"anyOf": [definition, operators]}));
    }
    let names: Vec<&String> = properties.keys().collect();
    let sort: Map<String, Value> = names
        .iter()
        .map(|name| ((*name).clone(), json!({"type": "integer", "enum": [1, -1]})))
        .collect();
    let group = json!({
        "type": "array",
        "items": {"type": "object", "additionalProperties": false, "properties": fields},
    });
    let mut select_items = json!({"type": "string"});
    if !names.is_empty() {
        select_items["enum"] = json!(names);
    }
    let mut all = fields.clone();
    all.insert("$limit".into(), json!({"type": "integer", "minimum": 0}));
    all.insert("$skip".into(), json!({"type": "integer", "minimum": 0}));
    all.insert(
        "$sort".into(),
        json!({"type": "object", "additionalProperties": false, "properties": sort}),
    );
    all.insert(
        "$select".into(),
        json!({"type": "array", "maxItems": names.len(), "items": select_items}),
    );
    all.insert("$or".into(), group.clone());
    all.insert("$and".into(), group);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "properties": all,
    })
}

/// Converts, in place, the strings of `value` that sit where `schema`
/// (whose document is `root`, for `$ref`s) declares a number, an integer,
/// a boolean or `null` and that spell one (`"30"`, `"true"`, `""` for
/// `null`), and wraps a single value where an array is declared; what
/// does not convert is left for validation to refuse. A schema that
/// allows strings keeps strings.
pub(super) fn coerce(value: &mut Value, schema: &Value, root: &Value) {
    coerce_at(value, schema, root, 0);
}

fn coerce_at(value: &mut Value, schema: &Value, root: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let schema = resolve(schema, root);
    let types = types(schema);
    if types.contains(&"array") && !value.is_array() {
        *value = Value::Array(vec![value.take()]);
    }
    match value {
        Value::String(text) => {
            if let Some(converted) = scalar(text, &types) {
                *value = converted;
            } else if types.is_empty() {
                // A union (`anyOf`, the query syntax's "value or
                // operators"): the first alternative that converts it.
                for branch in alternatives(schema) {
                    let branch = resolve(branch, root);
                    if let Some(converted) = scalar(text, &self::types(branch)) {
                        *value = converted;
                        break;
                    }
                }
            }
        }
        Value::Object(object) => {
            let schemas = std::iter::once(schema).chain(
                alternatives(schema)
                    .iter()
                    .map(|b| resolve(b, root))
                    .filter(|b| b.get("properties").is_some()),
            );
            // The first schema that describes properties describes these.
            if let Some(properties) = schemas.filter_map(|s| s.get("properties")).next() {
                for (key, item) in object.iter_mut() {
                    if let Some(sub) = properties.get(key) {
                        coerce_at(item, sub, root, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) => {
            let items_schema = std::iter::once(schema)
                .chain(alternatives(schema).iter().map(|b| resolve(b, root)))
                .find_map(|s| s.get("items"));
            if let Some(items_schema) = items_schema {
                for item in items {
                    coerce_at(item, items_schema, root, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// `schema`, or what its local `$ref` (`#/$defs/Name`) points to.
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..MAX_DEPTH {
        match current.get("$ref").and_then(Value::as_str) {
            Some(reference) if reference.starts_with('#') => match root.pointer(&reference[1..]) {
                Some(target) => current = target,
                None => return current,
            },
            _ => return current,
        }
    }
    current
}

fn alternatives(schema: &Value) -> &[Value] {
    ["anyOf", "oneOf"]
        .iter()
        .find_map(|k| schema.get(*k).and_then(Value::as_array))
        .map_or(&[], Vec::as_slice)
}

/// The types `type` names (one, or a list).
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `text` as the first of `types` it spells, unless strings are allowed.
fn scalar(text: &str, types: &[&str]) -> Option<Value> {
    if types.contains(&"string") {
        return None;
    }
    for t in types {
        let converted = match *t {
            "integer" => text.parse::<i64>().ok().map(Value::from),
            "number" => text
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .and_then(|n| {
                    // Integers stay integers, as JSON would have sent them.
                    text.parse::<i64>()
                        .ok()
                        .map(Value::from)
                        .or_else(|| serde_json::Number::from_f64(n).map(Value::Number))
                }),
            "boolean" => match text {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            "null" if text.is_empty() => Some(Value::Null),
            _ => None,
        };
        if converted.is_some() {
            return converted;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    fn people() -> Value {
        query_syntax(&json!({
            "age": {"type": "integer"},
            "score": {"type": ["number", "null"]},
            "active": {"type": "boolean"},
            "name": {"type": "string"},
        }))
    }

    fn coerced(query: Value) -> Value {
        let schema = people();
        let mut query = query;
        coerce(&mut query, &schema, &schema);
        query
    }

    #[test]
    fn url_strings_become_the_declared_types() {
        assert_eq!(
            coerced(json!({
                "age": {"$gt": "30", "$in": ["1", "2"]},
                "score": "2.5",
                "active": "true",
                "name": "42",
                "$limit": "10",
                "$sort": {"age": "-1"},
                "$or": [{"age": "7"}, {"score": ""}],
            })),
            json!({
                "age": {"$gt": 30, "$in": [1, 2]},
                "score": 2.5,
                "active": true,
                "name": "42",
                "$limit": 10,
                "$sort": {"age": -1},
                "$or": [{"age": 7}, {"score": null}],
            })
        );
    }

    #[test]
    fn a_single_value_where_a_list_is_declared_becomes_a_list() {
        assert_eq!(
            coerced(json!({"age": {"$in": "3"}, "$select": "name"})),
            json!({"age": {"$in": [3]}, "$select": ["name"]})
        );
    }

    #[test]
    fn what_does_not_convert_is_left_for_validation() {
        let query = coerced(json!({"age": "thirty", "active": "yes"}));
        assert_eq!(query, json!({"age": "thirty", "active": "yes"}));
        let schema = Schema::new(people()).unwrap();
        let error = schema.validate(&query).unwrap_err();
        assert_eq!(error.code(), 400);
    }

    #[test]
    fn the_query_syntax_refuses_unknown_fields_operators_and_sorts() {
        let schema = Schema::new(people()).unwrap();
        for bad in [
            json!({"password": "x"}),
            json!({"age": {"$regex": "1"}}),
            json!({"$sort": {"password": 1}}),
            json!({"$select": ["password"]}),
            json!({"$limit": -1}),
            json!({"$or": [{"password": "x"}]}),
        ] {
            assert!(schema.validate(&bad).is_err(), "{bad}");
        }
        assert!(
            schema
                .validate(&json!({"age": {"$gte": 1, "$nin": [5]}, "$sort": {"age": 1}, "$select": ["name"]}))
                .is_ok()
        );
    }

    #[test]
    fn refs_are_followed() {
        let root = json!({
            "$defs": {"Age": {"type": "integer"}},
            "type": "object",
            "properties": {"age": {"$ref": "#/$defs/Age"}},
        });
        let mut query = json!({"age": "5"});
        coerce(&mut query, &root, &root);
        assert_eq!(query, json!({"age": 5}));
    }
}
