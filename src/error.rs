//! Feathers' error classes as one Rust error type, and their wire JSON.
//!
//! Every failure a client can see is an [`Error`] with an [`ErrorKind`]
//! (BadRequest 400, NotAuthenticated 401, ...). It serialises to the JSON
//! Feathers clients expect: `{name, message, code, className, data?, errors?}`
//! (`@feathersjs/errors`, `src/index.ts`). Failures that are not meant for
//! clients (I/O, a database, a
//! bug) become [`ErrorKind::GeneralError`] with a generic message; their
//! detail is logged and kept as the source, never sent.

use std::fmt;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// A `Result` whose error is Plume's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Feathers error classes (`@feathersjs/errors`, `src/index.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400: the request is malformed or invalid.
    BadRequest,
    /// 401: credentials are missing or wrong.
    NotAuthenticated,
    /// 402
    PaymentError,
    /// 403: authenticated, but not allowed.
    Forbidden,
    /// 404: no such record or path.
    NotFound,
    /// 405: the method does not exist or is not allowed here.
    MethodNotAllowed,
    /// 406
    NotAcceptable,
    /// 408
    Timeout,
    /// 409: the write conflicts with existing data.
    Conflict,
    /// 410
    Gone,
    /// 411
    LengthRequired,
    /// 413: the request body is over the limit. Not one of Feathers' own
    /// classes; rendered the same way.
    PayloadTooLarge,
    /// 422: well-formed but semantically invalid data.
    Unprocessable,
    /// 429: rate limited.
    TooManyRequests,
    /// 500: anything unexpected.
    GeneralError,
    /// 501
    NotImplemented,
    /// 502
    BadGateway,
    /// 503
    Unavailable,
}

impl ErrorKind {
    /// Every kind, in status-code order.
    pub const ALL: [Self; 18] = [
        Self::BadRequest,
        Self::NotAuthenticated,
        Self::PaymentError,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::NotAcceptable,
        Self::Timeout,
        Self::Conflict,
        Self::Gone,
        Self::LengthRequired,
        Self::PayloadTooLarge,
        Self::Unprocessable,
        Self::TooManyRequests,
        Self::GeneralError,
        Self::NotImplemented,
        Self::BadGateway,
        Self::Unavailable,
    ];

    /// The class name, e.g. `"BadRequest"` (the JSON `name`).
    pub fn name(self) -> &'static str {
        self.parts().0
    }

    /// The HTTP status code (the JSON `code`).
    pub fn code(self) -> u16 {
        self.parts().1
    }

    /// The kebab-case class name, e.g. `"bad-request"` (the JSON `className`).
    pub fn class_name(self) -> &'static str {
        self.parts().2
    }

    /// The kind whose [`name`](Self::name) is `name`, for reviving errors.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind for an HTTP status code, if there is one.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }

    fn parts(self) -> (&'static str, u16, &'static str) {
        match self {
            Self::BadRequest => ("BadRequest", 400, "bad-request"),
            Self::NotAuthenticated => ("NotAuthenticated", 401, "not-authenticated"),
            Self::PaymentError => ("PaymentError", 402, "payment-error"),
            Self::Forbidden => ("Forbidden", 403, "forbidden"),
            Self::NotFound => ("NotFound", 404, "not-found"),
            Self::MethodNotAllowed => ("MethodNotAllowed", 405, "method-not-allowed"),
            Self::NotAcceptable => ("NotAcceptable", 406, "not-acceptable"),
            Self::Timeout => ("Timeout", 408, "timeout"),
            Self::Conflict => ("Conflict", 409, "conflict"),
            Self::Gone => ("Gone", 410, "gone"),
            Self::LengthRequired => ("LengthRequired", 411, "length-required"),
            Self::PayloadTooLarge => ("PayloadTooLarge", 413, "payload-too-large"),
            Self::Unprocessable => ("Unprocessable", 422, "unprocessable"),
            Self::TooManyRequests => ("TooManyRequests", 429, "too-many-requests"),
            Self::GeneralError => ("GeneralError", 500, "general-error"),
            Self::NotImplemented => ("NotImplemented", 501, "not-implemented"),
            Self::BadGateway => ("BadGateway", 502, "bad-gateway"),
            Self::Unavailable => ("Unavailable", 503, "unavailable"),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A Feathers error: a class, a message, optional `data` and `errors`, and
/// an optional source that never reaches the wire.
///
/// ```
/// use plume::{Error, ErrorKind};
/// use serde_json::json;
///
/// let err = Error::bad_request("Invalid email").with_errors(json!({"email": "taken"}));
/// assert_eq!(err.kind(), ErrorKind::BadRequest);
/// assert_eq!(
///     serde_json::to_value(&err).unwrap(),
///     json!({"name": "BadRequest", "message": "Invalid email", "code": 400,
///            "className": "bad-request", "errors": {"email": "taken"}})
/// );
/// ```
#[derive(Clone)]
pub struct Error {
    // Boxed so that `Result<Value, Error>` stays small on the happy path.
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    data: Option<Value>,
    errors: Option<Value>,
    source: Option<Source>,
}

/// The message clients see for internal failures.
pub(crate) const INTERNAL_MESSAGE: &str = "Internal server error";

macro_rules! constructors {
    ($($fn_name:ident => $kind:ident),+ $(,)?) => {
        $(
            #[doc = concat!("A `", stringify!($kind), "` error with this message.")]
            pub fn $fn_name(message: impl Into<String>) -> Self {
                Self::new(ErrorKind::$kind, message)
            }
        )+
    };
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                data: None,
                errors: None,
                source: None,
            }),
        }
    }

    constructors! {
        bad_request => BadRequest,
        not_authenticated => NotAuthenticated,
        payment_error => PaymentError,
        forbidden => Forbidden,
        not_found => NotFound,
        method_not_allowed => MethodNotAllowed,
        not_acceptable => NotAcceptable,
        timeout => Timeout,
        conflict => Conflict,
        gone => Gone,
        length_required => LengthRequired,
        payload_too_large => PayloadTooLarge,
        unprocessable => Unprocessable,
        too_many_requests => TooManyRequests,
        general => GeneralError,
        not_implemented => NotImplemented,
        bad_gateway => BadGateway,
        unavailable => Unavailable,
    }

    /// Wraps an internal failure: a GeneralError whose message is generic so
    /// that nothing about the server's insides reaches a client. The detail
    /// is logged here and kept as [`std::error::Error::source`].
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        let source: Source = Arc::from(source.into());
        tracing::error!(error = %source, "internal error");
        let mut error = Self::new(ErrorKind::GeneralError, INTERNAL_MESSAGE);
        error.inner.source = Some(source);
        error
    }

    /// Sets `data` (any extra information for the client).
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.inner.data = Some(data);
        self
    }

    /// Sets `errors` (usually per-field validation messages).
    #[must_use]
    pub fn with_errors(mut self, errors: Value) -> Self {
        self.inner.errors = Some(errors);
        self
    }

    /// The class.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status code of the class.
    pub fn code(&self) -> u16 {
        self.inner.kind.code()
    }

    /// The message sent to clients.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The `data` field, if set.
    pub fn data(&self) -> Option<&Value> {
        self.inner.data.as_ref()
    }

    /// The `errors` field, if set.
    pub fn errors(&self) -> Option<&Value> {
        self.inner.errors.as_ref()
    }

    /// The Feathers JSON form of the error (`toJSON` in `@feathersjs/errors`,
    /// `src/index.ts`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Revives an error from its Feathers JSON, as a client would (`convert`
    /// in `@feathersjs/errors`, `src/index.ts`).
    /// Unknown names become GeneralError.
    pub fn from_json(value: &Value) -> Self {
        let kind = value
            .get("name")
            .and_then(Value::as_str)
            .and_then(ErrorKind::from_name)
            .unwrap_or(ErrorKind::GeneralError);
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Error");
        let mut error = Self::new(kind, message);
        error.inner.data = value.get("data").cloned();
        error.inner.errors = value.get("errors").cloned();
        error
    }
}

impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let len =
            4 + usize::from(self.inner.data.is_some()) + usize::from(self.inner.errors.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("name", self.inner.kind.name())?;
        map.serialize_entry("message", &self.inner.message)?;
        map.serialize_entry("code", &self.inner.kind.code())?;
        map.serialize_entry("className", self.inner.kind.class_name())?;
        if let Some(data) = &self.inner.data {
            map.serialize_entry("data", data)?;
        }
        if let Some(errors) = &self.inner.errors {
            map.serialize_entry("errors", errors)?;
        }
        map.end()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(data) = &self.inner.data {
            s.field("data", data);
        }
        if let Some(errors) = &self.inner.errors {
            s.field("errors", errors);
        }
        if let Some(source) = &self.inner.source {
            s.field("source", &format_args!("{source}"));
        }
        s.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind.name(), self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for Error {
    /// Two errors are equal when a client could not tell them apart: same
    /// class, message, `data` and `errors`. The source is not compared.
    fn eq(&self, other: &Self) -> bool {
        self.inner.kind == other.inner.kind
            && self.inner.message == other.inner.message
            && self.inner.data == other.inner.data
            && self.inner.errors == other.inner.errors
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Self::internal(error)
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::internal(error)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::internal(error)
    }
}

/// The error for a lock that a panic poisoned (the one way Plume answers
/// it): 500, since the state behind the lock may be half-written.
/// `lock.read().map_err(poisoned)?`.
pub(crate) fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::internal("a lock was poisoned by a panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_a_500_general_error() {
        let lock = std::sync::Arc::new(std::sync::RwLock::new(0));
        let holder = std::sync::Arc::clone(&lock);
        let _ = std::thread::spawn(move || {
            let _guard = holder.write();
            panic!("poison it");
        })
        .join();
        let error = lock.read().map(|_| ()).map_err(poisoned).unwrap_err();
        // The client sees a plain 500; the cause stays in the logs.
        assert_eq!(error.code(), 500);
        assert_eq!(error.message(), "Internal server error");
        assert!(format!("{error:?}").contains("poisoned"), "{error:?}");
    }
    use serde_json::json;

    #[test]
    fn every_class_has_feathers_name_code_and_class_name() {
        // The classes of `@feathersjs/errors`, `src/index.ts`.
        let expected = [
            ("BadRequest", 400, "bad-request"),
            ("NotAuthenticated", 401, "not-authenticated"),
            ("PaymentError", 402, "payment-error"),
            ("Forbidden", 403, "forbidden"),
            ("NotFound", 404, "not-found"),
            ("MethodNotAllowed", 405, "method-not-allowed"),
            ("NotAcceptable", 406, "not-acceptable"),
            ("Timeout", 408, "timeout"),
            ("Conflict", 409, "conflict"),
            ("Gone", 410, "gone"),
            ("LengthRequired", 411, "length-required"),
            ("PayloadTooLarge", 413, "payload-too-large"),
            ("Unprocessable", 422, "unprocessable"),
            ("TooManyRequests", 429, "too-many-requests"),
            ("GeneralError", 500, "general-error"),
            ("NotImplemented", 501, "not-implemented"),
            ("BadGateway", 502, "bad-gateway"),
            ("Unavailable", 503, "unavailable"),
        ];
        for (kind, (name, code, class)) in ErrorKind::ALL.into_iter().zip(expected) {
            assert_eq!(
                (kind.name(), kind.code(), kind.class_name()),
                (name, code, class)
            );
            assert_eq!(ErrorKind::from_name(name), Some(kind));
            assert_eq!(ErrorKind::from_code(code), Some(kind));
        }
    }

    #[test]
    fn json_has_feathers_key_order_and_optional_fields() {
        // `toJSON` of `@feathersjs/errors` (`src/index.ts`), key for key.
        let err = Error::general("Custom Error")
            .with_data(json!({"foo": "bar"}))
            .with_errors(json!({"email": "Email Taken", "password": "Invalid Password"}));
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"name":"GeneralError","message":"Custom Error","code":500,"className":"general-error","data":{"foo":"bar"},"errors":{"email":"Email Taken","password":"Invalid Password"}}"#
        );
        let bare = Error::not_found("No record found for id '1'");
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"name":"NotFound","message":"No record found for id '1'","code":404,"className":"not-found"}"#
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_detail() {
        let io = std::io::Error::other("disk /secret/path is full");
        let err = Error::from(io);
        assert_eq!(err.kind(), ErrorKind::GeneralError);
        assert_eq!(err.message(), INTERNAL_MESSAGE);
        let wire = serde_json::to_string(&err).unwrap();
        assert!(!wire.contains("secret"), "{wire}");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk /secret/path is full"));
    }

    #[test]
    fn revives_from_json() {
        let err = Error::conflict("taken").with_data(json!({"field": "email"}));
        assert_eq!(Error::from_json(&err.to_json()), err);
        let unknown = Error::from_json(&json!({"name": "Weird", "message": "m"}));
        assert_eq!(unknown.kind(), ErrorKind::GeneralError);
    }
}
