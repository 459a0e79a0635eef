//! The hooks that check a call against a [`Schema`], as
//! `validateData` and `validateQuery` in `@feathersjs/schema`'s
//! `hooks/validate.ts`.

use serde_json::Value;

use super::{Schema, query};
use crate::{BoxFuture, Hook, HookContext, Result};

/// Checks `data` against a schema; see [`validate_data`].
#[derive(Debug, Clone)]
pub struct ValidateData {
    schema: Schema,
    /// What external calls are checked against instead, when set.
    clients: Option<Schema>,
    external_only: bool,
}

/// A before hook for `create`, `update` and `patch`: `data` (each record,
/// when it is an array) must fit `schema`, else 400 BadRequest
/// `validation failed` listing every error of every record (a record's
/// errors have its index in front of their `instancePath`: `/1/text`).
/// Internal calls are checked too, as in Feathers. A call without data
/// (`find`, `get`, `remove`) is left alone.
pub fn validate_data(schema: Schema) -> ValidateData {
    ValidateData {
        schema,
        clients: None,
        external_only: false,
    }
}

impl ValidateData {
    /// Checks only calls from a transport (a client), so that server code
    /// may write what clients may not: the default app's schema for
    /// `users` allows a client `email` and `password` only, while
    /// `plume user add --role admin` creates a user with a role.
    #[must_use]
    pub fn external_only(mut self) -> Self {
        self.external_only = true;
        self
    }

    /// Checks external calls against `schema` instead (one check a call):
    /// the default app's messages take any field from server code but
    /// only `text` (and the owner it overwrites) from a client, and both
    /// need a good text.
    #[must_use]
    pub fn for_clients(mut self, schema: Schema) -> Self {
        self.clients = Some(schema);
        self
    }

    fn apply(&self, ctx: &HookContext) -> Result<()> {
        let external = ctx.params.is_external();
        if self.external_only && !external {
            return Ok(());
        }
        let schema = match &self.clients {
            Some(clients) if external => clients,
            _ => &self.schema,
        };
        match &ctx.data {
            Some(Value::Array(records)) => {
                let errors: Vec<Value> = records
                    .iter()
                    .enumerate()
                    .flat_map(|(i, record)| schema.errors(record, &format!("/{i}")))
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(crate::Error::bad_request("validation failed")
                        .with_data(Value::Array(errors)))
                }
            }
            Some(data) => schema.validate(data),
            None => Ok(()),
        }
    }
}

impl Hook<HookContext> for ValidateData {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.apply(ctx) })
    }
}

/// Checks the query against a schema; see [`validate_query`].
#[derive(Debug, Clone)]
pub struct ValidateQuery {
    schema: Schema,
}

/// A before hook: converts the strings of `params.query` to the types
/// `schema` declares (a URL query only has strings: `?age[$gt]=30` becomes
/// `{"age": {"$gt": 30}}`), then checks it, else 400 BadRequest
/// `validation failed`. The converted query is what the service sees.
/// Use [`query_syntax`](super::query_syntax) or
/// [`Schema::query_of`] for a schema that admits Feathers' operators.
pub fn validate_query(schema: Schema) -> ValidateQuery {
    ValidateQuery { schema }
}

impl ValidateQuery {
    fn apply(&self, ctx: &mut HookContext) -> Result<()> {
        let mut query = Value::Object(std::mem::take(&mut ctx.params.query));
        let root = self.schema.json();
        query::coerce(&mut query, root, root);
        let checked = self.schema.validate(&query);
        if let Value::Object(query) = query {
            ctx.params.query = query;
        }
        checked
    }
}

impl Hook<HookContext> for ValidateQuery {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.apply(ctx) })
    }
}
