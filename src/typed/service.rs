//! Services written with Rust types: [`TypedService`] declares the types
//! of its data, patch, query and result, and [`Typed`] makes it a
//! [`Service`] that registers like any other. Hooks and transports still
//! see JSON; each call converts its arguments from JSON once and its
//! result to JSON once.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::access::{parse, to_json};
use crate::store::many_not_allowed;
use crate::{Id, Method, Params, Result, Service, method_not_allowed};

/// What `find` gives: every record, or one page of them (Feathers'
/// `{total, limit, skip, data}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<T> {
    /// The records, answered as a JSON array.
    All(Vec<T>),
    /// One page of the records.
    Page {
        /// How many records match, in all.
        total: usize,
        /// The page size asked for.
        limit: usize,
        /// How many matching records come before this page.
        skip: usize,
        /// The page's records.
        data: Vec<T>,
    },
}

impl<T> From<Vec<T>> for Found<T> {
    fn from(records: Vec<T>) -> Self {
        Self::All(records)
    }
}

impl<T: Serialize> Serialize for Found<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::All(records) => records.serialize(serializer),
            Self::Page {
                total,
                limit,
                skip,
                data,
            } => {
                // Feathers' key order.
                let mut page = serializer.serialize_map(Some(4))?;
                page.serialize_entry("total", total)?;
                page.serialize_entry("limit", limit)?;
                page.serialize_entry("skip", skip)?;
                page.serialize_entry("data", data)?;
                page.end()
            }
        }
    }
}

/// A service written with Rust types. Wrap it in [`Typed`] to register it:
///
/// ```
/// use plume::{App, Found, Id, Params, Result, Typed, TypedService};
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
///
/// #[derive(Deserialize)]
/// struct NewTodo { title: String }
///
/// #[derive(Serialize)]
/// struct Todo { id: u64, title: String }
///
/// #[derive(Deserialize)]
/// struct TodoQuery { title: Option<String> }
///
/// struct Todos;
///
/// #[async_trait::async_trait]
/// impl TypedService for Todos {
///     type Data = NewTodo;
///     type Patch = NewTodo;
///     type Query = TodoQuery;
///     type Result = Todo;
///
///     async fn create(&self, data: NewTodo, _params: &Params) -> Result<Todo> {
///         Ok(Todo { id: 1, title: data.title })
///     }
///
///     async fn find(&self, query: TodoQuery, _params: &Params) -> Result<Found<Todo>> {
///         let title = query.title.unwrap_or_default();
///         Ok(vec![Todo { id: 1, title }].into())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let app = App::new();
/// app.use_service("todos", Typed(Todos))?;
/// let todos = app.service("todos")?;
/// let created = todos.create(json!({"title": "write docs"}), Params::new()).await?;
/// assert_eq!(created, json!({"id": 1, "title": "write docs"}));
/// // Data that does not fit is 400 BadRequest naming the field.
/// let error = todos.create(json!({"title": 5}), Params::new()).await.unwrap_err();
/// assert_eq!(error.code(), 400);
/// # Ok::<(), plume::Error>(())
/// # }).unwrap();
/// ```
///
/// Every method defaults to 405, as with [`Service`]; list the ones you
/// implement in [`methods`](Self::methods) so that transports offer only
/// those. A call on many records (`create` with an array, `update`,
/// `patch` or `remove` without an id) is 405, as a store without `multi`
/// answers it. The query is `params.query` without Feathers' filters
/// (`$limit`, `$skip`, `$sort`, `$select`), which stay in `params.query`;
/// over REST every query value is a string.
#[async_trait]
pub trait TypedService: Send + Sync + 'static {
    /// What `create` and `update` take.
    type Data: DeserializeOwned + Send;
    /// What `patch` takes (often a struct of `Option`s).
    type Patch: DeserializeOwned + Send;
    /// The query `find` takes.
    type Query: DeserializeOwned + Send;
    /// A record, as every method answers it.
    type Result: Serialize + Send;

    /// Finds the records matching `query`.
    async fn find(&self, query: Self::Query, params: &Params) -> Result<Found<Self::Result>> {
        let _ = (query, params);
        Err(method_not_allowed("find"))
    }

    /// Gets one record.
    async fn get(&self, id: &Id, params: &Params) -> Result<Self::Result> {
        let _ = (id, params);
        Err(method_not_allowed("get"))
    }

    /// Creates one record.
    async fn create(&self, data: Self::Data, params: &Params) -> Result<Self::Result> {
        let _ = (data, params);
        Err(method_not_allowed("create"))
    }

    /// Replaces one record.
    async fn update(&self, id: &Id, data: Self::Data, params: &Params) -> Result<Self::Result> {
        let _ = (id, data, params);
        Err(method_not_allowed("update"))
    }

    /// Changes one record.
    async fn patch(&self, id: &Id, data: Self::Patch, params: &Params) -> Result<Self::Result> {
        let _ = (id, data, params);
        Err(method_not_allowed("patch"))
    }

    /// Removes one record and answers it.
    async fn remove(&self, id: &Id, params: &Params) -> Result<Self::Result> {
        let _ = (id, params);
        Err(method_not_allowed("remove"))
    }

    /// The methods this service implements (default: all six).
    fn methods(&self) -> &'static [Method] {
        &Method::STANDARD
    }

    /// The name of its records' id field, if they have one.
    fn id_field(&self) -> Option<&str> {
        None
    }
}

/// A [`TypedService`] as a [`Service`]: `app.use_service("todos",
/// Typed(Todos))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Typed<S>(pub S);

/// `params.query` without Feathers' filters, which are not conditions.
fn conditions(params: &Params) -> Value {
    Value::Object(
        params
            .query
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "$limit" | "$skip" | "$sort" | "$select"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

#[async_trait]
impl<S: TypedService> Service for Typed<S> {
    async fn find(&self, params: &Params) -> Result<Value> {
        let query = parse(&conditions(params), "query")?;
        to_json(&self.0.find(query, params).await?)
    }

    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        to_json(&self.0.get(id, params).await?)
    }

    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(many_not_allowed("create"));
        }
        to_json(&self.0.create(parse(data, "data")?, params).await?)
    }

    async fn update(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        let id = id.ok_or_else(|| many_not_allowed("update"))?;
        to_json(&self.0.update(id, parse(data, "data")?, params).await?)
    }

    async fn patch(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        let id = id.ok_or_else(|| many_not_allowed("patch"))?;
        to_json(&self.0.patch(id, parse(data, "data")?, params).await?)
    }

    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let id = id.ok_or_else(|| many_not_allowed("remove"))?;
        to_json(&self.0.remove(id, params).await?)
    }

    fn methods(&self) -> &'static [Method] {
        self.0.methods()
    }

    fn id_field(&self) -> Option<&str> {
        self.0.id_field()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::{App, Error};

    #[derive(Debug, Deserialize)]
    struct NewNote {
        text: String,
    }

    #[derive(Debug, Deserialize)]
    struct NotePatch {
        text: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    struct NoteQuery {
        text: Option<String>,
    }

    #[derive(Debug, Clone, Serialize)]
    struct Note {
        id: i64,
        text: String,
    }

    #[derive(Default)]
    struct Notes(Mutex<Vec<Note>>);

    impl Notes {
        fn with(&self, id: &Id) -> Result<usize> {
            let notes = self.0.lock().map_err(crate::error::poisoned)?;
            notes
                .iter()
                .position(|note| id.matches(&json!(note.id)))
                .ok_or_else(|| Error::not_found(format!("No record found for id '{id}'")))
        }
    }

    #[async_trait]
    impl TypedService for Notes {
        type Data = NewNote;
        type Patch = NotePatch;
        type Query = NoteQuery;
        type Result = Note;

        async fn find(&self, query: NoteQuery, _params: &Params) -> Result<Found<Note>> {
            let notes = self.0.lock().map_err(crate::error::poisoned)?;
            let data: Vec<Note> = notes
                .iter()
                .filter(|note| query.text.as_ref().is_none_or(|text| &note.text == text))
                .cloned()
                .collect();
            Ok(Found::Page {
                total: data.len(),
                limit: 10,
                skip: 0,
                data,
            })
        }

        async fn create(&self, data: NewNote, _params: &Params) -> Result<Note> {
            let mut notes = self.0.lock().map_err(crate::error::poisoned)?;
            let note = Note {
                id: i64::try_from(notes.len()).unwrap_or_default(),
                text: data.text,
            };
            notes.push(note.clone());
            Ok(note)
        }

        async fn patch(&self, id: &Id, data: NotePatch, _params: &Params) -> Result<Note> {
            let at = self.with(id)?;
            let mut notes = self.0.lock().map_err(crate::error::poisoned)?;
            if let Some(text) = data.text {
                notes[at].text = text;
            }
            Ok(notes[at].clone())
        }

        fn methods(&self) -> &'static [Method] {
            &[Method::Find, Method::Create, Method::Patch]
        }

        fn id_field(&self) -> Option<&str> {
            Some("id")
        }
    }

    #[tokio::test]
    async fn a_typed_service_registers_and_answers_json() {
        let app = App::new();
        app.use_service("notes", Typed(Notes::default())).unwrap();
        let notes = app.service("notes").unwrap();
        let created = notes
            .create(json!({"text": "a"}), Params::new())
            .await
            .unwrap();
        assert_eq!(created, json!({"id": 0, "text": "a"}));
        notes
            .create(json!({"text": "b"}), Params::new())
            .await
            .unwrap();
        let patched = notes
            .patch(Some(Id::from(1)), json!({"text": "B"}), Params::new())
            .await
            .unwrap();
        assert_eq!(patched, json!({"id": 1, "text": "B"}));
        let page = notes
            .find(Params::with_query(json!({"text": "B", "$limit": "5"})))
            .await
            .unwrap();
        assert_eq!(
            page,
            json!({"total": 1, "limit": 10, "skip": 0, "data": [{"id": 1, "text": "B"}]})
        );
    }

    #[tokio::test]
    async fn bad_input_many_records_and_missing_methods_are_errors() {
        let app = App::new();
        app.use_service("notes", Typed(Notes::default())).unwrap();
        let notes = app.service("notes").unwrap();
        let error = notes
            .create(json!({"text": 1}), Params::new())
            .await
            .unwrap_err();
        assert_eq!(error.code(), 400);
        assert_eq!(
            error.message(),
            "Invalid data: text: invalid type: integer `1`, expected a string"
        );
        let error = notes
            .create(json!([{"text": "a"}]), Params::new())
            .await
            .unwrap_err();
        assert_eq!(
            (error.code(), error.message()),
            (405, "Can not create multiple entries")
        );
        let error = notes
            .patch(None, json!({}), Params::new())
            .await
            .unwrap_err();
        assert_eq!(error.message(), "Can not patch multiple entries");
        let error = notes.get(Id::from(0), Params::new()).await.unwrap_err();
        assert_eq!(error.code(), 405);
        let error = notes
            .find(Params::with_query(json!({"text": ["a"]})))
            .await
            .unwrap_err();
        assert_eq!(error.code(), 400);
        assert!(
            error.message().starts_with("Invalid query: text: "),
            "{}",
            error.message()
        );
        assert!(!app.service("notes").unwrap().allows_external(&Method::Get));
    }
}
