//! JSON Schemas for a service's data and queries, as Feathers v5's
//! `@feathersjs/schema` gives them: a [`Schema`] is derived from a Rust type
//! ([`Schema::of`], through schemars) or written as JSON ([`Schema::new`]),
//! compiled once (draft 2020-12, the jsonschema crate, formats such as
//! `email` checked), and used by two hooks:
//!
//! - [`validate_data`] checks `data` (each record of an array) before a
//!   `create`, `update` or `patch`;
//! - [`validate_query`] checks the query, after converting the strings a
//!   URL query gives (`?age[$gt]=30`) to the types the schema declares.
//!
//! A value that does not fit is 400 BadRequest `validation failed` (ajv's
//! message, which Feathers passes on), whose `data` lists each error as
//! ajv does: `instancePath` (a JSON pointer into the value), `schemaPath`,
//! `keyword` and `message`. Messages never repeat the client's values (a
//! password sent in the wrong place is not echoed back or logged).
//!
//! [`Resolver`]s compute fields of data, queries and results (see
//! [`resolve_data`] and its siblings).
//!
//! [`query_syntax`] builds a query schema from the fields a client may
//! query, with Feathers' operators, as `querySyntax` does;
//! [`Schema::query_of`] does it from a Rust type.
//!
//! ```
//! use plume::schema::{Schema, validate_data, validate_query};
//! use plume::{App, Hooks, store::MemoryService};
//! use schemars::JsonSchema;
//!
//! #[derive(JsonSchema)]
//! #[allow(dead_code)]
//! struct Message {
//!     #[schemars(length(min = 1, max = 400))]
//!     text: String,
//! }
//!
//! #[derive(JsonSchema)]
//! #[allow(dead_code)]
//! struct MessageQuery {
//!     #[serde(rename = "userId")]
//!     user_id: i64,
//! }
//!
//! let data = Schema::of::<Message>()?;
//! let app = App::new();
//! app.use_service("messages", MemoryService::new())?.hooks(
//!     Hooks::new()
//!         .before(["create", "update"], validate_data(data.clone()))
//!         .before("patch", validate_data(data.for_patch()?))
//!         .before("find", validate_query(Schema::query_of::<MessageQuery>()?)),
//! );
//! # Ok::<(), plume::Error>(())
//! ```

mod hooks;
mod openapi;
mod query;
mod resolve;

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::{Error, Result};

pub use hooks::{ValidateData, ValidateQuery, validate_data, validate_query};
pub use openapi::{ServiceDocs, document as openapi};
pub use query::query_syntax;
pub use resolve::{
    Resolve, Resolver, ResolverContext, password_hash, resolve_data, resolve_external,
    resolve_query, resolve_result,
};

/// The longest message kept for one error: a message may name the
/// client's property names, which are only bounded by the body limit.
const MAX_MESSAGE: usize = 200;

/// A compiled JSON Schema (draft 2020-12); cheap to clone.
#[derive(Clone)]
pub struct Schema {
    json: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").field("json", &self.json).finish()
    }
}

impl Schema {
    /// Compiles `json`; 500 GeneralError naming the problem when it is not
    /// a valid schema (a mistake in the app, found when it starts).
    pub fn new(json: Value) -> Result<Self> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&json)
            .map_err(|e| Error::general(format!("Invalid JSON schema: {e}")))?;
        Ok(Self {
            json: Arc::new(json),
            validator: Arc::new(validator),
        })
    }

    /// The schema of the Rust type `T`, as schemars derives it (serde's
    /// renames and defaults included).
    pub fn of<T: schemars::JsonSchema>() -> Result<Self> {
        Self::new(schemars::schema_for!(T).to_value())
    }

    /// A query schema for the fields of the Rust type `T` (a struct):
    /// [`query_syntax`] of its properties, so each field takes its type or
    /// Feathers' operators on it, and `$limit`, `$skip`, `$sort`,
    /// `$select`, `$or` and `$and` over those fields.
    pub fn query_of<T: schemars::JsonSchema>() -> Result<Self> {
        let schema = schemars::schema_for!(T).to_value();
        let Some(properties) = schema.get("properties") else {
            return Err(Error::general(
                "A query schema is made from a struct with named fields",
            ));
        };
        let mut query = query_syntax(properties);
        // Field types that schemars put aside (nested structs, enums).
        if let (Some(defs), Some(out)) = (schema.get("$defs"), query.as_object_mut()) {
            out.insert("$defs".to_owned(), defs.clone());
        }
        Self::new(query)
    }

    /// The same schema with nothing required: what a `patch` (which
    /// carries only the fields it changes) is checked against, as
    /// Feathers derives its patch validator.
    pub fn for_patch(&self) -> Result<Self> {
        let mut json = (*self.json).clone();
        if let Some(object) = json.as_object_mut() {
            object.remove("required");
        }
        Self::new(json)
    }

    /// The schema as JSON.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// Ok when `value` fits, else 400 BadRequest `validation failed` with
    /// each error in `data` (see the [module docs](self)).
    pub fn validate(&self, value: &Value) -> Result<()> {
        let errors = self.errors(value, "");
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::bad_request("validation failed").with_data(Value::Array(errors)))
        }
    }

    /// The errors of `value`, their instance paths under `prefix`.
    fn errors(&self, value: &Value, prefix: &str) -> Vec<Value> {
        if self.validator.is_valid(value) {
            return Vec::new();
        }
        self.validator
            .iter_errors(value)
            .map(|error| {
                let mut message = error.masked().to_string();
                if message.len() > MAX_MESSAGE {
                    let mut end = MAX_MESSAGE;
                    while !message.is_char_boundary(end) {
                        end -= 1;
                    }
                    message.truncate(end);
                    message.push('…');
                }
                let mut entry = Map::new();
                entry.insert(
                    "instancePath".to_owned(),
                    json!(format!("{prefix}{}", error.instance_path().as_str())),
                );
                entry.insert(
                    "schemaPath".to_owned(),
                    json!(format!("#{}", error.schema_path().as_str())),
                );
                entry.insert("keyword".to_owned(), json!(error.kind().keyword()));
                entry.insert("message".to_owned(), json!(message));
                Value::Object(entry)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::JsonSchema;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct User {
        #[schemars(email)]
        email: String,
        #[schemars(length(min = 8))]
        password: String,
        age: Option<u8>,
    }

    #[test]
    fn a_derived_schema_checks_types_formats_and_required_fields() {
        let schema = Schema::of::<User>().unwrap();
        assert!(
            schema
                .validate(&json!({"email": "a@x.org", "password": "long enough"}))
                .is_ok()
        );
        let error = schema
            .validate(&json!({"email": "not an address", "password": "tiny7", "age": 300}))
            .unwrap_err();
        assert_eq!(error.code(), 400);
        assert_eq!(error.message(), "validation failed");
        let data = error.data().unwrap().as_array().unwrap().clone();
        let paths: Vec<&str> = data
            .iter()
            .map(|e| e["instancePath"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"/email"), "{data:?}");
        assert!(paths.contains(&"/password"), "{data:?}");
        assert!(paths.contains(&"/age"), "{data:?}");
        // The client's values are not repeated.
        let text = serde_json::to_string(&data).unwrap();
        assert!(
            !text.contains("tiny7") && !text.contains("not an address"),
            "{text}"
        );
        let missing = schema.validate(&json!({"email": "a@x.org"})).unwrap_err();
        assert_eq!(missing.data().unwrap()[0]["keyword"], json!("required"));
    }

    #[test]
    fn the_patch_schema_requires_nothing_but_checks_what_is_there() {
        let patch = Schema::of::<User>().unwrap().for_patch().unwrap();
        assert!(patch.validate(&json!({"age": 30})).is_ok());
        assert!(patch.validate(&json!({"email": "nope"})).is_err());
    }

    #[test]
    fn a_bad_schema_is_refused_when_it_is_made() {
        let error = Schema::new(json!({"type": 12})).unwrap_err();
        assert_eq!(error.code(), 500);
        assert!(
            error.message().starts_with("Invalid JSON schema"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let schema = Schema::new(json!({"type": "object", "additionalProperties": false})).unwrap();
        let key = "k".repeat(10_000);
        let error = schema.validate(&json!({ key: 1 })).unwrap_err();
        let message = error.data().unwrap()[0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.len() <= MAX_MESSAGE + 3, "{}", message.len());
    }
}
