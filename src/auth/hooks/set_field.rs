//! The `set_field(from, as)` hook, after feathers-authentication-hooks'
//! `setField`: copies a value the server knows (the authenticated user's
//! id, a claim) into the data or the query of a call.
//!
//! On `create` it stamps the owner: `set_field("user.id", "data.userId")`.
//! On `find`, `get`, `update`, `patch` and `remove` it restricts the call to
//! the caller's own records: `set_field("user.id", "query.userId")` makes
//! the store look only at records whose `userId` is the caller's, so
//! someone else's record is 404 NotFound and its existence is not revealed.
//! Whatever the client sent in that place is overwritten.

use serde_json::Value;

use crate::fields::get_path;
use crate::{BoxFuture, Error, Hook, HookContext, Result};

/// Where [`SetField`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A top-level field of the data (of every record when it is an array).
    Data(String),
    /// A top-level field of `params.query`.
    Query(String),
}

/// Copies a value from the call's params into its data or query; see
/// [`set_field`].
#[derive(Debug, Clone)]
pub struct SetField {
    from: Vec<String>,
    to: Target,
}

/// `set_field(from, as)`: `from` is a dotted path into the params
/// (`user.id` or `params.user.id` for the authenticated entity `user`,
/// `authentication.payload.sub` for a verified claim, `payload.x`,
/// `route.x`); `as` is `data.<field>` or `query.<field>` (`params.query.`
/// works too).
///
/// An external call without the value is 401 NotAuthenticated (run the
/// hook after `authenticate`). Internal calls are never restricted: a
/// `query.` target applies to external calls only (the local strategy's
/// own lookup of a user, say, must see every user even when the call that
/// caused it carries someone's login), and a `data.` target stamps an
/// internal call only when the value is there.
///
/// A target that is neither `data.<field>` nor `query.<field>` fails every
/// call with 500 (fail closed); [`SetField::try_new`] reports it up front.
///
/// ```
/// use plume::{App, Hooks, auth::hooks::set_field, authenticate, store::MemoryService};
///
/// let app = App::new();
/// app.use_service("messages", MemoryService::new())?.hooks(
///     Hooks::new()
///         .before("all", authenticate(["jwt"]))
///         .before("create", set_field("user.id", "data.userId"))
///         .before(["update", "patch", "remove"], set_field("user.id", "query.userId")),
/// );
/// # Ok::<(), plume::Error>(())
/// ```
pub fn set_field(from: &str, to: &str) -> SetField {
    SetField::try_new(from, to).unwrap_or_else(|_| SetField {
        from: vec![from.to_owned()],
        to: Target::Data(String::new()),
    })
}

impl SetField {
    /// The hook, or 500 GeneralError when `to` is not `data.<field>` or
    /// `query.<field>`.
    pub fn try_new(from: &str, to: &str) -> Result<Self> {
        let to_path = to.strip_prefix("params.").unwrap_or(to);
        let target = if let Some(field) = to_path.strip_prefix("data.") {
            Target::Data(field.to_owned())
        } else if let Some(field) = to_path.strip_prefix("query.") {
            Target::Query(field.to_owned())
        } else {
            return Err(bad_target(to));
        };
        let (Target::Data(field) | Target::Query(field)) = &target;
        if field.is_empty() || field.contains('.') {
            return Err(bad_target(to));
        }
        Ok(Self {
            from: vec![from.strip_prefix("params.").unwrap_or(from).to_owned()],
            to: target,
        })
    }

    /// Where to look when the sources before have no value, e.g.
    /// `set_field("user.id", "query.userId").or_from("authentication.payload.sub")`
    /// for apps that also accept stateless tokens (no `user` is loaded).
    #[must_use]
    pub fn or_from(mut self, from: &str) -> Self {
        self.from
            .push(from.strip_prefix("params.").unwrap_or(from).to_owned());
        self
    }

    fn value(&self, ctx: &HookContext) -> Option<Value> {
        self.from.iter().find_map(|from| Self::value_at(ctx, from))
    }

    fn value_at(ctx: &HookContext, from: &str) -> Option<Value> {
        let (head, rest) = from.split_once('.').unwrap_or((from, ""));
        let root = match head {
            "authentication" => ctx.params.authentication.as_ref()?,
            "route" => return lookup_map(&ctx.params.route, rest),
            "payload" => return lookup_map(&ctx.params.payload, rest),
            entity => ctx.params.entities.get(entity)?,
        };
        let found = if rest.is_empty() {
            Some(root)
        } else {
            get_path(root, rest)
        };
        found.filter(|v| !v.is_null()).cloned()
    }

    fn apply(&self, ctx: &mut HookContext) -> Result<()> {
        let (Target::Data(field) | Target::Query(field)) = &self.to;
        if field.is_empty() {
            return Err(Error::general(
                "set_field needs a target of the form 'data.<field>' or 'query.<field>'",
            ));
        }
        if matches!(self.to, Target::Query(_)) && !ctx.params.is_external() {
            return Ok(());
        }
        let Some(value) = self.value(ctx) else {
            if ctx.params.is_external() {
                return Err(Error::not_authenticated(format!(
                    "Expected field '{}' is not available",
                    self.from.join("' or '")
                )));
            }
            return Ok(());
        };
        match &self.to {
            Target::Query(field) => {
                ctx.params.query.insert(field.clone(), value);
            }
            Target::Data(field) => match ctx.data.as_mut() {
                Some(Value::Object(record)) => {
                    record.insert(field.clone(), value);
                }
                Some(Value::Array(records)) => {
                    for record in records.iter_mut().filter_map(Value::as_object_mut) {
                        record.insert(field.clone(), value.clone());
                    }
                }
                _ => {}
            },
        }
        Ok(())
    }
}

fn lookup_map(map: &serde_json::Map<String, Value>, path: &str) -> Option<Value> {
    crate::fields::get_in(map, path)
        .filter(|v| !v.is_null())
        .cloned()
}

fn bad_target(to: &str) -> Error {
    Error::general(format!(
        "set_field cannot write to '{to}': use 'data.<field>' or 'query.<field>'"
    ))
}

impl Hook<HookContext> for SetField {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.apply(ctx) })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{App, Method, Params, Provider};

    fn ctx(method: Method) -> HookContext {
        let mut ctx = HookContext::new(App::new(), "messages", method);
        ctx.params = Params::external(Provider::Rest);
        ctx
    }

    #[test]
    fn stamps_data_and_overwrites_the_clients_value() {
        let mut ctx = ctx(Method::Create);
        ctx.params.entities.insert("user".into(), json!({"id": 7}));
        ctx.data = Some(json!([{"text": "a", "userId": 1}, {"text": "b"}]));
        set_field("params.user.id", "data.userId")
            .apply(&mut ctx)
            .unwrap();
        assert_eq!(
            ctx.data,
            Some(json!([{"text": "a", "userId": 7}, {"text": "b", "userId": 7}]))
        );
    }

    #[test]
    fn restricts_the_query_from_a_claim() {
        let mut ctx = ctx(Method::Patch);
        ctx.params.authentication = Some(json!({"payload": {"sub": "7"}}));
        ctx.params.query.insert("userId".into(), json!({"$ne": 7}));
        set_field("user.id", "params.query.userId")
            .or_from("authentication.payload.sub")
            .apply(&mut ctx)
            .unwrap();
        assert_eq!(ctx.params.query["userId"], json!("7"));
        ctx.params.entities.insert("user".into(), json!({"id": 7}));
        set_field("user.id", "params.query.userId")
            .or_from("authentication.payload.sub")
            .apply(&mut ctx)
            .unwrap();
        assert_eq!(
            ctx.params.query["userId"],
            json!(7),
            "the first source wins"
        );
    }

    #[test]
    fn a_missing_value_fails_external_calls_only() {
        let hook = set_field("user.id", "query.userId");
        let mut external = ctx(Method::Find);
        let error = hook.apply(&mut external).unwrap_err();
        assert_eq!(error.code(), 401);
        let mut internal = ctx(Method::Find);
        internal.params.provider = None;
        hook.apply(&mut internal).unwrap();
        assert!(internal.params.query.is_empty());
        // Not even with a user: server code sees every record.
        internal
            .params
            .entities
            .insert("user".into(), json!({"id": 7}));
        hook.apply(&mut internal).unwrap();
        assert!(internal.params.query.is_empty());
    }

    #[test]
    fn a_bad_target_fails_closed() {
        assert!(SetField::try_new("user.id", "userId").is_err());
        assert!(SetField::try_new("user.id", "data.a.b").is_err());
        let mut ctx = ctx(Method::Create);
        ctx.params.entities.insert("user".into(), json!({"id": 7}));
        assert_eq!(
            set_field("user.id", "result.x")
                .apply(&mut ctx)
                .unwrap_err()
                .code(),
            500
        );
    }
}
