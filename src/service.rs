//! The [`Service`] trait, the methods it answers ([`Method`]) and record
//! ids ([`Id`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::{App, Error, Params, Result};

/// A record id: a number or a string, as in Feathers.
///
/// Ids that arrive from a URL are strings; a string id matches a numeric
/// record id when it is that number written canonically in decimal (`"7"`
/// matches `7`; `"07"` and `"+7"` do not),
/// see [`Id::matches`]. An object or an array is never an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(String),
}

impl Id {
    /// Reads an id from JSON: an integer or a string. `null` is `None` (a
    /// call on many records for update, patch and remove). Anything else,
    /// objects and arrays included, is 400 BadRequest, so that an id can
    /// never turn into a query that matches many records.
    pub fn from_value(value: &Value) -> Result<Option<Self>> {
        match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(Self::String(s.clone()))),
            Value::Number(n) => n
                .as_i64()
                .map(|n| Some(Self::Number(n)))
                .ok_or_else(|| Error::bad_request(format!("Invalid id '{n}'"))),
            other => Err(Error::bad_request(format!(
                "Invalid id: expected a string or a number, got {}",
                json_type(other)
            ))),
        }
    }

    /// The integer a string id stands for, when it is that integer written
    /// canonically in decimal: `"7"` and `"-3"`, but not `"07"`, `"+7"` or
    /// `"-0"`, so that one record is never reachable under many spellings.
    pub fn canonical_int(s: &str) -> Option<i64> {
        let n = s.parse::<i64>().ok()?;
        (n.to_string() == s).then_some(n)
    }

    /// The id as JSON.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Number(n) => Value::from(*n),
            Self::String(s) => Value::from(s.as_str()),
        }
    }

    /// True when a stored id value is this id. A string id matches a
    /// number written canonically in decimal ([`Id::canonical_int`]),
    /// because ids from URLs are always strings.
    pub fn matches(&self, stored: &Value) -> bool {
        match (self, stored) {
            (Self::Number(a), Value::Number(b)) => b.as_i64() == Some(*a),
            (Self::String(a), Value::String(b)) => a == b,
            (Self::String(a), Value::Number(b)) => b
                .as_i64()
                .is_some_and(|b| Self::canonical_int(a) == Some(b)),
            (Self::Number(a), Value::String(b)) => Self::canonical_int(b) == Some(*a),
            _ => false,
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

/// The JSON type of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A service method: one of the six standard ones or a custom one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `find(params)`
    Find,
    /// `get(id, params)`
    Get,
    /// `create(data, params)`
    Create,
    /// `update(id, data, params)`
    Update,
    /// `patch(id, data, params)`
    Patch,
    /// `remove(id, params)`
    Remove,
    /// A custom method `(data, params)`, declared when the service is
    /// registered.
    Custom(Arc<str>),
}

impl Method {
    /// The six standard methods.
    pub const STANDARD: [Self; 6] = [
        Self::Find,
        Self::Get,
        Self::Create,
        Self::Update,
        Self::Patch,
        Self::Remove,
    ];

    /// The method's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Find => "find",
            Self::Get => "get",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Remove => "remove",
            Self::Custom(name) => name,
        }
    }

    /// The standard method called `name`, or a custom method.
    pub fn parse(name: &str) -> Self {
        match name {
            "find" => Self::Find,
            "get" => Self::Get,
            "create" => Self::Create,
            "update" => Self::Update,
            "patch" => Self::Patch,
            "remove" => Self::Remove,
            other => Self::Custom(Arc::from(other)),
        }
    }

    /// True for the six standard methods.
    pub fn is_standard(&self) -> bool {
        !matches!(self, Self::Custom(_))
    }

    /// The event emitted after the method succeeds (`defaultEventMap` in
    /// `@feathersjs/feathers`, `src/service.ts`).
    pub fn event(&self) -> Option<&'static str> {
        match self {
            Self::Create => Some("created"),
            Self::Update => Some("updated"),
            Self::Patch => Some("patched"),
            Self::Remove => Some("removed"),
            _ => None,
        }
    }

    /// True when the method takes an id.
    pub fn takes_id(&self) -> bool {
        matches!(self, Self::Get | Self::Update | Self::Patch | Self::Remove)
    }

    /// True when the method takes data.
    pub fn takes_data(&self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Patch | Self::Custom(_)
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 405 a service answers for a method it does not implement.
pub fn method_not_allowed(method: &str) -> Error {
    Error::method_not_allowed(format!(
        "Method `{method}` is not supported by this endpoint."
    ))
}

/// A service: the methods an app exposes at one path.
///
/// Every method defaults to 405 MethodNotAllowed, so a service implements
/// only what it supports. Hooks see and change the arguments before the
/// method runs, so a method receives them by reference.
///
/// ```
/// use async_trait::async_trait;
/// use plume::{Params, Result, Service};
/// use serde_json::{Value, json};
///
/// struct Greeter;
///
/// #[async_trait]
/// impl Service for Greeter {
///     async fn find(&self, _params: &Params) -> Result<Value> {
///         Ok(json!([{"text": "hello"}]))
///     }
/// }
/// ```
#[async_trait]
pub trait Service: Any + Send + Sync + 'static {
    /// Finds records matching `params.query`.
    async fn find(&self, params: &Params) -> Result<Value> {
        let _ = params;
        Err(method_not_allowed("find"))
    }

    /// Gets one record.
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let _ = (id, params);
        Err(method_not_allowed("get"))
    }

    /// Creates one record, or several when `data` is an array.
    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        let _ = (data, params);
        Err(method_not_allowed("create"))
    }

    /// Replaces one record (`id` is `None` for many, which most services
    /// refuse).
    async fn update(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        let _ = (id, data, params);
        Err(method_not_allowed("update"))
    }

    /// Merges `data` into one record, or into every record matching the
    /// query when `id` is `None`.
    async fn patch(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        let _ = (id, data, params);
        Err(method_not_allowed("patch"))
    }

    /// Removes one record, or every record matching the query when `id` is
    /// `None`.
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let _ = (id, params);
        Err(method_not_allowed("remove"))
    }

    /// Runs a custom method declared at registration.
    async fn custom(&self, method: &str, data: &Value, params: &Params) -> Result<Value> {
        let _ = (data, params);
        Err(method_not_allowed(method))
    }

    /// The standard methods this service implements, used as the default
    /// list of methods a transport may call. Implementations list what they
    /// override; the default is all six.
    fn methods(&self) -> &'static [Method] {
        &Method::STANDARD
    }

    /// The name of the id property of this service's records (Feathers'
    /// `service.id`), if the service has one. The authentication service
    /// reads it to set a token's subject and to check its configuration.
    fn id_field(&self) -> Option<&str> {
        None
    }

    /// Called once when the app is set up (`app.setup` in
    /// `@feathersjs/feathers`, `src/application.ts`).
    async fn setup(&self, app: &App, path: &str) -> Result<()> {
        let _ = (app, path);
        Ok(())
    }

    /// Called once when the app is torn down (`app.teardown` in
    /// `@feathersjs/feathers`, `src/application.ts`).
    async fn teardown(&self, app: &App, path: &str) -> Result<()> {
        let _ = (app, path);
        Ok(())
    }
}
