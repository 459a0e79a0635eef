//! Typed reads and writes of a hook context and its params (see the
//! [module docs](super)).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::{Error, HookContext, Params, Result};

/// `value` as `T`, or 400 BadRequest naming where it does not fit;
/// `what` names the value in the message (`data`, `query`).
pub(super) fn parse<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let pointer = pointer(error.path());
        let inner = error.into_inner().to_string();
        let message = if pointer.is_empty() {
            format!("Invalid {what}: {inner}")
        } else {
            format!(
                "Invalid {what}: {}: {inner}",
                pointer.trim_start_matches('/')
            )
        };
        Error::bad_request(message)
            .with_data(json!([{ "instancePath": pointer, "message": inner }]))
    })
}

/// A serde path as a JSON pointer (`/items/2/name`); empty for the root.
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                // RFC 6901: `~` and `/` are escaped in a pointer.
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { variant } => {
                out.push('/');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str("/?"),
        }
    }
    out
}

/// `value` as JSON; a type that cannot be JSON (a map with non-string
/// keys) is a server bug, so a 500.
pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|error| Error::general(format!("A value could not become JSON: {error}")))
}

/// True for a page: `{total, limit, skip, data: [...]}`.
fn is_page(value: &Value) -> bool {
    value.get("total").is_some() && value.get("data").is_some_and(Value::is_array)
}

impl HookContext {
    /// `data` as `T`: 400 BadRequest naming the field that does not fit,
    /// and when there is no data.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T> {
        parse(self.data.as_ref().unwrap_or(&Value::Null), "data")
    }

    /// Replaces `data` with `value` as JSON.
    pub fn set_data<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.data = Some(to_json(value)?);
        Ok(())
    }

    /// `result` as `T` (a record, an array or a page, as the method gave
    /// it); 400 BadRequest naming the field that does not fit.
    pub fn result_as<T: DeserializeOwned>(&self) -> Result<T> {
        parse(self.result.as_ref().unwrap_or(&Value::Null), "result")
    }

    /// Replaces `result` with `value` as JSON (in a before hook, this
    /// skips the method).
    pub fn set_result<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.result = Some(to_json(value)?);
        Ok(())
    }

    /// The query (`params.query`) as `Q`; 400 BadRequest naming the field
    /// that does not fit. Over REST every query value arrives as a string
    /// (`?limit=5` is `"5"`), so declare such fields as strings, or accept
    /// both.
    pub fn query_as<Q: DeserializeOwned>(&self) -> Result<Q> {
        parse(&Value::Object(self.params.query.clone()), "query")
    }

    /// The records a hook works on, whatever their shape, as
    /// feathers-hooks-common's `getItems`: those of `result` once there is
    /// one (a record, each record of an array, each record of a page's
    /// `data`), else those of `data` (a record, each of an array).
    pub fn items(&self) -> Vec<&Value> {
        let Some(value) = self.result.as_ref().or(self.data.as_ref()) else {
            return Vec::new();
        };
        match value {
            Value::Array(records) => records.iter().collect(),
            page if is_page(page) => page["data"]
                .as_array()
                .map(|records| records.iter().collect())
                .unwrap_or_default(),
            record => vec![record],
        }
    }

    /// [`items`](Self::items), to change in place (feathers-hooks-common's
    /// `replaceItems` without the copy): the changes land in `result` or
    /// `data`, in their shape.
    pub fn items_mut(&mut self) -> Vec<&mut Value> {
        let value = match (self.result.as_mut(), self.data.as_mut()) {
            (Some(result), _) => result,
            (None, Some(data)) => data,
            (None, None) => return Vec::new(),
        };
        if is_page(value) {
            return match value.get_mut("data") {
                Some(Value::Array(records)) => records.iter_mut().collect(),
                _ => Vec::new(),
            };
        }
        match value {
            Value::Array(records) => records.iter_mut().collect(),
            record => vec![record],
        }
    }

    /// Each of [`items`](Self::items) as `T`; 400 BadRequest naming the
    /// record and field that do not fit.
    pub fn items_as<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.items()
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                parse(item, "record").map_err(|error| {
                    let message = error.message().replacen(
                        "Invalid record",
                        &format!("Invalid record {index}"),
                        1,
                    );
                    Error::bad_request(message).with_data(error.data().cloned().unwrap_or_default())
                })
            })
            .collect()
    }
}

impl Params {
    /// The verified claims of the access token the call authenticated
    /// with: set by the `authenticate` hook (jwt strategy) as
    /// `params.authentication.payload`, as in Feathers. `None` before
    /// `authenticate` ran, or for a call it did not authenticate.
    pub fn claims(&self) -> Option<&Map<String, Value>> {
        self.authentication.as_ref()?.get("payload")?.as_object()
    }

    /// [`claims`](Self::claims) as `T`: 401 NotAuthenticated when the call
    /// carries none, or when they do not fit `T` (a token signed before a
    /// claim existed: the client logs in again).
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T> {
        let claims = self
            .authentication
            .as_ref()
            .and_then(|a| a.get("payload"))
            .ok_or_else(|| Error::not_authenticated("Not authenticated"))?;
        parse(claims, "token claims").map_err(|error| Error::not_authenticated(error.message()))
    }

    /// The authenticated `user` as `U`: 401 NotAuthenticated when the call
    /// has none; a user record that does not fit `U` is the server's own
    /// data, so a 500.
    pub fn user_as<U: DeserializeOwned>(&self) -> Result<U> {
        let user = self
            .user()
            .ok_or_else(|| Error::not_authenticated("Not authenticated"))?;
        parse(user, "user").map_err(|error| Error::general(error.message()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::{App, Method};

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Item {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn ctx() -> HookContext {
        HookContext::new(App::new(), "items", Method::Create)
    }

    #[test]
    fn data_reads_and_writes_as_a_type() {
        let mut ctx = ctx();
        ctx.data = Some(json!({"name": "a", "extra": 1}));
        let mut item: Item = ctx.data_as().unwrap();
        assert_eq!(item.name, "a");
        item.tags.push("t".into());
        ctx.set_data(&item).unwrap();
        assert_eq!(ctx.data, Some(json!({"name": "a", "tags": ["t"]})));
    }

    #[test]
    fn a_mismatch_is_a_400_naming_the_field() {
        let mut ctx = ctx();
        ctx.data = Some(json!({"name": "a", "tags": ["x", 5]}));
        let error = ctx.data_as::<Item>().unwrap_err();
        assert_eq!(error.code(), 400);
        assert_eq!(
            error.message(),
            "Invalid data: tags/1: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            error.data(),
            Some(&json!([{
                "instancePath": "/tags/1",
                "message": "invalid type: integer `5`, expected a string"
            }]))
        );
        ctx.data = Some(json!({"tags": []}));
        let error = ctx.data_as::<Item>().unwrap_err();
        assert_eq!(error.message(), "Invalid data: missing field `name`");
        ctx.data = None;
        assert_eq!(ctx.data_as::<Item>().unwrap_err().code(), 400);
    }

    #[test]
    fn items_are_the_records_whatever_the_shape() {
        let mut ctx = ctx();
        ctx.data = Some(json!([{"name": "a"}, {"name": "b"}]));
        assert_eq!(ctx.items().len(), 2);
        // Once there is a result, its records.
        ctx.result = Some(
            json!({"total": 3, "limit": 2, "skip": 0, "data": [{"name": "x"}, {"name": "y"}]}),
        );
        let names: Vec<Item> = ctx.items_as().unwrap();
        assert_eq!(names[1].name, "y");
        for item in ctx.items_mut() {
            item["seen"] = json!(true);
        }
        assert_eq!(ctx.result.as_ref().unwrap()["data"][0]["seen"], json!(true));
        assert_eq!(ctx.result.as_ref().unwrap()["total"], json!(3));
        ctx.result = Some(json!({"name": "one"}));
        assert_eq!(ctx.items(), vec![&json!({"name": "one"})]);
        ctx.result = Some(json!([{"name": "ok"}, {"nope": 1}]));
        let error = ctx.items_as::<Item>().unwrap_err();
        assert_eq!(error.message(), "Invalid record 1: missing field `name`");
    }

    #[test]
    fn the_query_reads_as_a_type() {
        #[derive(Debug, Deserialize)]
        struct Query {
            owner: String,
        }
        let mut ctx = ctx();
        ctx.params.query = json!({"owner": "ada"}).as_object().cloned().unwrap();
        assert_eq!(ctx.query_as::<Query>().unwrap().owner, "ada");
        ctx.params.query = Map::new();
        let error = ctx.query_as::<Query>().unwrap_err();
        assert_eq!(error.message(), "Invalid query: missing field `owner`");
    }

    #[test]
    fn claims_and_user_are_typed() {
        #[derive(Debug, Deserialize)]
        struct Claims {
            sub: String,
            role: Option<String>,
        }
        #[derive(Debug, Deserialize)]
        struct User {
            id: u64,
        }
        let mut params = Params::new();
        assert!(params.claims().is_none());
        assert_eq!(params.claims_as::<Claims>().unwrap_err().code(), 401);
        assert_eq!(params.user_as::<User>().unwrap_err().code(), 401);
        params.authentication =
            Some(json!({"strategy": "jwt", "payload": {"sub": "7", "role": "admin"}}));
        params
            .entities
            .insert("user".into(), json!({"id": 7, "email": "a@x"}));
        let claims: Claims = params.claims_as().unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role.as_deref()),
            ("7", Some("admin"))
        );
        assert_eq!(params.claims().unwrap()["sub"], json!("7"));
        assert_eq!(params.user_as::<User>().unwrap().id, 7);
        params
            .entities
            .insert("user".into(), json!({"id": "not a number"}));
        assert_eq!(params.user_as::<User>().unwrap_err().code(), 500);
    }
}
