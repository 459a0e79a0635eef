//! The `protect_query(fields)` hook: external callers cannot filter, sort
//! or select on these fields. A filter on a password hash would let a
//! logged-in user read the stored hashes one range query at a time
//! (`?password[$gt]=$argon2id$v=19$m=19456`), so the authentication
//! service installs this hook on its entity service for the local
//! strategy's password field by itself, whether or not the store was told
//! `.protected_fields(["password"])`.

use serde_json::{Map, Value};

use crate::{BoxFuture, Error, Hook, HookContext, Result};

/// Refuses queries that name protected fields; see [`protect_query`].
#[derive(Debug, Clone)]
pub struct ProtectQuery {
    fields: Vec<String>,
}

/// `protect_query(["password"])`: an external call whose query names one
/// of these fields (or a dotted path inside one) as a filter, at any depth
/// of `$or`/`$and`, in `$sort` or in `$select` is 400 BadRequest. Internal
/// calls are not restricted.
pub fn protect_query<I, S>(fields: I) -> ProtectQuery
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    ProtectQuery {
        fields: fields.into_iter().map(Into::into).collect(),
    }
}

/// Nesting deeper than this is refused outright: the query parser has its
/// own limits, and this walk must not be the place that recursion costs.
const MAX_DEPTH: usize = 32;

impl ProtectQuery {
    /// True when `name` is a protected field or a path into one.
    fn names_protected(&self, name: &str) -> bool {
        self.fields.iter().any(|field| {
            name == field
                || (name.starts_with(field.as_str())
                    && name.as_bytes().get(field.len()) == Some(&b'.'))
                || (field.starts_with(name) && field.as_bytes().get(name.len()) == Some(&b'.'))
        })
    }

    fn refuse(field: &str) -> Error {
        Error::bad_request(format!(
            "The field '{field}' is protected: it cannot be used to filter, sort or select"
        ))
    }

    fn check(&self, query: &Map<String, Value>, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::bad_request("The query is nested too deeply"));
        }
        for (key, value) in query {
            match key.as_str() {
                "$or" | "$and" => match value {
                    Value::Array(items) => {
                        for item in items {
                            if let Value::Object(inner) = item {
                                self.check(inner, depth + 1)?;
                            }
                        }
                    }
                    // `qs` gives `$or[0][a]=1` as an object keyed by index.
                    Value::Object(items) => {
                        for item in items.values() {
                            if let Value::Object(inner) = item {
                                self.check(inner, depth + 1)?;
                            }
                        }
                    }
                    _ => {}
                },
                "$sort" => {
                    if let Value::Object(keys) = value
                        && let Some(field) = keys.keys().find(|k| self.names_protected(k))
                    {
                        return Err(Self::refuse(field));
                    }
                }
                "$select" => {
                    let names: Vec<&str> = match value {
                        Value::String(name) => vec![name.as_str()],
                        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                        Value::Object(items) => items.values().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    };
                    if let Some(field) = names.into_iter().find(|n| self.names_protected(n)) {
                        return Err(Self::refuse(field));
                    }
                }
                other if other.starts_with('$') => {}
                field => {
                    if self.names_protected(field) {
                        return Err(Self::refuse(field));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Hook<HookContext> for ProtectQuery {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if ctx.params.is_external() {
                self.check(&ctx.params.query, 0)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(query: Value) -> Result<()> {
        let Value::Object(query) = query else {
            unreachable!()
        };
        protect_query(["password", "auth.secret"]).check(&query, 0)
    }

    #[test]
    fn filters_sorts_and_selects_are_refused_at_any_depth() {
        for query in [
            json!({"password": {"$gt": "$argon2id$v=19$m=19456"}}),
            json!({"$or": [{"email": "a"}, {"password.x": "b"}]}),
            json!({"$and": {"0": {"$or": [{"auth": {"secret": 1}}]}}}),
            json!({"$sort": {"password": 1}}),
            json!({"$select": ["email", "password"]}),
            json!({"$select": {"0": "auth.secret"}}),
        ] {
            let error = check(query.clone()).unwrap_err();
            assert_eq!(error.code(), 400, "{query}");
        }
        check(
            json!({"email": "a", "$sort": {"email": 1}, "$select": ["email"], "passwordHint": 1}),
        )
        .unwrap();
    }
}
