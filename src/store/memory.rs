//! [`MemoryService`]: a store that keeps records in memory, like
//! Feathers' `@feathersjs/memory`.
//!
//! Records are JSON objects kept in insertion order, which is the order of
//! `find` results without `$sort` and the tie-break with it. A record
//! without an id gets the next integer of a counter (from 0, or
//! [`MemoryService::start_id`]), skipping ids already taken.
//!
//! Every method reads `params.query` with [`crate::query::parse_query`], so
//! an invalid query is 400 BadRequest whatever the method, and applies
//! `$select` to what it returns (the id field is always kept).
//!
//! - `find`: the records matching the query, sorted, skipped and limited;
//!   a page `{total, limit, skip, data}` when paginated, else an array.
//! - `get`, `update`, `patch` and `remove` with an id: the record with that
//!   id (a string id matches a number written the same way, see
//!   [`Id::matches`]) that also matches the query's conditions, else 404.
//!   So a hook that narrows the query (say to the user's own records)
//!   protects every method.
//! - `patch` and `remove` without an id: every record matching the query's
//!   conditions (`$limit`, `$skip` and `$sort` do not apply), in insertion
//!   order, when `multi` allows it.
//! - `create` never overwrites: a client-supplied id that is taken is 409.
//! - [`MemoryService::protected_fields`]: fields that external callers may
//!   not filter, sort or select on (400), see
//!   [`crate::query`'s rule](crate::query#protected-fields).
//!
//! ```
//! use plume::store::MemoryService;
//! use plume::{Paginate, Params, Service};
//! use serde_json::json;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryService::new().paginate(Paginate { default: 10, max: 100 });
//! store.create(&json!({"name": "a", "age": 30}), &Params::new()).await?;
//! store.create(&json!({"name": "b", "age": 20}), &Params::new()).await?;
//! let page = store
//!     .find(&Params::with_query(json!({"age": {"$gt": "25"}, "$select": ["name"]})))
//!     .await?;
//! assert_eq!(
//!     page,
//!     json!({"total": 1, "limit": 10, "skip": 0, "data": [{"name": "a", "id": 0}]})
//! );
//! # Ok::<(), plume::Error>(())
//! # }).unwrap();
//! ```

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::base::{StoreOptions, ToCreate, store_builder};
use super::{data_object, effective_paginate, not_found, page};
use crate::error::poisoned;
use crate::query::{self, ParsedQuery};
use crate::{Error, Id, Method, Params, Result, Service};

type Record = Map<String, Value>;

/// A record's id as a map key. Stored ids are integers or strings (what
/// [`Id::from_value`] accepts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Str(String),
}

impl Key {
    fn of(id: &Id) -> Self {
        match id {
            Id::Number(n) => Self::Int(*n),
            Id::String(s) => Self::Str(s.clone()),
        }
    }

    /// A string key that a numeric id also matches (`"7"` for `7`).
    fn is_numeric_string(&self) -> bool {
        matches!(self, Self::Str(s) if Id::canonical_int(s).is_some())
    }
}

/// The records and the id counter, behind the service's lock.
#[derive(Debug)]
struct State {
    records: IndexMap<Key, Record>,
    next_id: i64,
    /// How many keys are strings that parse as integers: only then can a
    /// numeric id match a string key, which needs a scan.
    numeric_strings: usize,
}

/// What [`State::rollback`] restores.
struct Checkpoint {
    len: usize,
    next_id: i64,
    numeric_strings: usize,
}

impl State {
    /// The index of the record whose id matches `id`: an exact match first,
    /// then one that [`Id::matches`] across types.
    fn position(&self, id: &Id) -> Option<usize> {
        if let Some(index) = self.records.get_index_of(&Key::of(id)) {
            return Some(index);
        }
        match id {
            Id::String(s) => {
                Id::canonical_int(s).and_then(|n| self.records.get_index_of(&Key::Int(n)))
            }
            Id::Number(n) if self.numeric_strings > 0 => self
                .records
                .keys()
                .position(|key| matches!(key, Key::Str(s) if Id::canonical_int(s) == Some(*n))),
            Id::Number(_) => None,
        }
    }

    /// Inserts a record, giving it an id if it has none; returns its index.
    fn insert(&mut self, mut record: Record, id_field: &str) -> Result<usize> {
        let supplied = match record.get(id_field) {
            None => None,
            Some(value) => Id::from_value(value)?,
        };
        let key = match supplied {
            Some(id) => {
                if self.position(&id).is_some() {
                    return Err(Error::conflict(format!(
                        "A record with id '{id}' already exists"
                    )));
                }
                Key::of(&id)
            }
            None => {
                let id = self.allocate()?;
                record.insert(id_field.to_owned(), Value::from(id));
                Key::Int(id)
            }
        };
        if key.is_numeric_string() {
            self.numeric_strings += 1;
        }
        Ok(self.records.insert_full(key, record).0)
    }

    /// The next free integer id.
    fn allocate(&mut self) -> Result<i64> {
        loop {
            let candidate = self.next_id;
            self.next_id = candidate
                .checked_add(1)
                .ok_or_else(|| Error::general("No more ids available"))?;
            if self.position(&Id::Number(candidate)).is_none() {
                return Ok(candidate);
            }
        }
    }

    fn remove(&mut self, index: usize) -> Option<Record> {
        let (key, record) = self.records.shift_remove_index(index)?;
        if key.is_numeric_string() {
            self.numeric_strings -= 1;
        }
        Some(record)
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.records.len(),
            next_id: self.next_id,
            numeric_strings: self.numeric_strings,
        }
    }

    /// Undoes the inserts made since `checkpoint`.
    fn rollback(&mut self, checkpoint: &Checkpoint) {
        self.records.truncate(checkpoint.len);
        self.next_id = checkpoint.next_id;
        self.numeric_strings = checkpoint.numeric_strings;
    }
}

/// A service that keeps its records in memory; see the
/// [module docs](self).
///
/// ```
/// use plume::store::MemoryService;
/// use plume::{Method, Paginate};
///
/// let users = MemoryService::new()
///     .id_field("_id")
///     .paginate(Paginate { default: 10, max: 50 })
///     .multi_methods([Method::Create, Method::Patch])
///     .start_id(1);
/// # let _ = users;
/// ```
#[derive(Debug)]
pub struct MemoryService {
    options: StoreOptions,
    state: RwLock<State>,
}

impl Default for MemoryService {
    fn default() -> Self {
        Self::new()
    }
}

store_builder!(MemoryService);

impl MemoryService {
    /// An empty store: id field `id`, no pagination, no calls on many
    /// records, ids from 0.
    pub fn new() -> Self {
        Self {
            options: StoreOptions::default(),
            state: RwLock::new(State {
                records: IndexMap::new(),
                next_id: 0,
                numeric_strings: 0,
            }),
        }
    }

    /// Changes the options (the builder methods); the store is not shared
    /// yet, so its first id can follow them.
    fn with_options(mut self, change: impl FnOnce(&mut StoreOptions)) -> Self {
        change(&mut self.options);
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if state.records.is_empty() {
            state.next_id = self.options.start_id;
        }
        self
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.state.read().map_err(poisoned)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(poisoned)
    }

    /// Parses the query of a call other than `find` (no pagination).
    fn query(&self, params: &Params) -> Result<ParsedQuery> {
        query::parse_query(&params.query, &self.options.query_options(params, None))
    }

    /// The index of the record with `id` that matches the query, or 404.
    fn locate(&self, state: &State, id: &Id, query: &ParsedQuery) -> Result<usize> {
        state
            .position(id)
            .filter(|&index| {
                state
                    .records
                    .get_index(index)
                    .is_some_and(|(_, record)| query.matches(record))
            })
            .ok_or_else(|| not_found(id))
    }

    fn select(query: &ParsedQuery, record: &Record) -> Value {
        Value::Object(query.filters.project(record))
    }
}

#[async_trait]
impl Service for MemoryService {
    fn id_field(&self) -> Option<&str> {
        Some(&self.options.id_field)
    }

    async fn find(&self, params: &Params) -> Result<Value> {
        let paginate = effective_paginate(self.options.paginate, params.paginate);
        let query =
            query::parse_query(&params.query, &self.options.query_options(params, paginate))?;
        let filters = &query.filters;
        let state = self.read()?;
        let mut hits: Vec<&Record> = state
            .records
            .values()
            .filter(|record| query.matches(record))
            .collect();
        query::sort_records(&mut hits, &filters.sort);
        let total = hits.len();
        let data: Vec<Value> = hits
            .into_iter()
            .skip(filters.skip)
            .take(filters.limit.unwrap_or(usize::MAX))
            .map(|record| Self::select(&query, record))
            .collect();
        drop(state);
        Ok(match paginate {
            Some(paginate) => page(
                total,
                filters.limit.unwrap_or(paginate.max),
                filters.skip,
                data,
            ),
            None => Value::Array(data),
        })
    }

    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let query = self.query(params)?;
        let state = self.read()?;
        let index = self.locate(&state, id, &query)?;
        let (_, record) = state
            .records
            .get_index(index)
            .ok_or_else(|| not_found(id))?;
        Ok(Self::select(&query, record))
    }

    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        let id_field = self.options.id_field.as_str();
        match self.options.to_create(data)? {
            ToCreate::One(record) => {
                let query = self.query(params)?;
                let mut state = self.write()?;
                let index = state.insert(record.clone(), id_field)?;
                let (_, record) = state
                    .records
                    .get_index(index)
                    .ok_or_else(|| Error::internal("a created record vanished"))?;
                Ok(Self::select(&query, record))
            }
            ToCreate::Many(records) => {
                let query = self.query(params)?;
                let mut state = self.write()?;
                // All or nothing: a conflict undoes the records inserted
                // before it.
                let checkpoint = state.checkpoint();
                let mut created = Vec::with_capacity(records.len());
                for record in records {
                    match state.insert(record.clone(), id_field) {
                        Ok(index) => created.push(index),
                        Err(error) => {
                            state.rollback(&checkpoint);
                            return Err(error);
                        }
                    }
                }
                Ok(Value::Array(
                    created
                        .into_iter()
                        .filter_map(|index| state.records.get_index(index))
                        .map(|(_, record)| Self::select(&query, record))
                        .collect(),
                ))
            }
        }
    }

    async fn update(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        let (Some(id), false) = (id, data.is_array()) else {
            return Err(Error::bad_request(
                "You can not replace multiple instances. Did you mean 'patch'?",
            ));
        };
        let data = data_object(data, "update")?;
        let query = self.query(params)?;
        let mut state = self.write()?;
        let index = self.locate(&state, id, &query)?;
        let (_, record) = state
            .records
            .get_index_mut(index)
            .ok_or_else(|| not_found(id))?;
        let stored_id = record
            .get(&self.options.id_field)
            .cloned()
            .unwrap_or(Value::Null);
        let mut replacement = data.clone();
        replacement.insert(self.options.id_field.clone(), stored_id);
        *record = replacement;
        Ok(Self::select(&query, record))
    }

    async fn patch(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        if id.is_none() {
            self.options.check_many(&Method::Patch)?;
        }
        let data = data_object(data, "patch")?;
        let query = self.query(params)?;
        let merge = |record: &mut Record| {
            for (field, value) in data {
                if *field != self.options.id_field {
                    record.insert(field.clone(), value.clone());
                }
            }
            Self::select(&query, record)
        };
        let mut state = self.write()?;
        match id {
            Some(id) => {
                let index = self.locate(&state, id, &query)?;
                let (_, record) = state
                    .records
                    .get_index_mut(index)
                    .ok_or_else(|| not_found(id))?;
                Ok(merge(record))
            }
            None => Ok(Value::Array(
                state
                    .records
                    .values_mut()
                    .filter(|record| query.matches(record))
                    .map(merge)
                    .collect(),
            )),
        }
    }

    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        if id.is_none() {
            self.options.check_many(&Method::Remove)?;
        }
        let query = self.query(params)?;
        let mut state = self.write()?;
        match id {
            Some(id) => {
                let index = self.locate(&state, id, &query)?;
                let record = state.remove(index).ok_or_else(|| not_found(id))?;
                Ok(Self::select(&query, &record))
            }
            None => {
                let mut removed = Vec::new();
                let mut kept = IndexMap::with_capacity(state.records.len());
                for (key, record) in std::mem::take(&mut state.records) {
                    if query.matches(&record) {
                        removed.push(Self::select(&query, &record));
                    } else {
                        kept.insert(key, record);
                    }
                }
                state.numeric_strings = kept.keys().filter(|k| k.is_numeric_string()).count();
                state.records = kept;
                Ok(Value::Array(removed))
            }
        }
    }

    fn methods(&self) -> &'static [Method] {
        &Method::STANDARD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, Paginate, PaginateParam};
    use serde_json::json;

    fn params(query: Value) -> Params {
        Params::with_query(query)
    }

    fn none() -> Params {
        Params::new()
    }

    async fn seeded(store: MemoryService) -> MemoryService {
        for (name, age) in [("alice", 30), ("bob", 20), ("carol", 40), ("dave", 20)] {
            store
                .create(&json!({"name": name, "age": age}), &none())
                .await
                .unwrap();
        }
        store
    }

    fn assert_error(result: Result<Value>, kind: ErrorKind, message: &str) {
        let err = result.expect_err("call should fail");
        assert_eq!((err.kind(), err.message()), (kind, message));
    }

    fn names(value: &Value) -> Vec<&str> {
        let items = match value {
            Value::Array(items) => items,
            other => other["data"].as_array().unwrap(),
        };
        items.iter().map(|r| r["name"].as_str().unwrap()).collect()
    }

    #[tokio::test]
    async fn create_assigns_increasing_ids_and_keeps_key_order() {
        let store = MemoryService::new();
        let first = store.create(&json!({"text": "a"}), &none()).await.unwrap();
        let second = store.create(&json!({"text": "b"}), &none()).await.unwrap();
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            r#"{"text":"a","id":0}"#
        );
        assert_eq!(second["id"], json!(1));
        let explicit_null = store
            .create(&json!({"id": null, "t": 1}), &none())
            .await
            .unwrap();
        assert_eq!(explicit_null, json!({"id": 2, "t": 1}));
    }

    #[tokio::test]
    async fn start_id_and_id_field_are_configurable() {
        let store = MemoryService::new().id_field("_id").start_id(100);
        let created = store.create(&json!({"a": 1}), &none()).await.unwrap();
        assert_eq!(created, json!({"a": 1, "_id": 100}));
        let got = store.get(&Id::from("100"), &none()).await.unwrap();
        assert_eq!(got, created);
    }

    #[tokio::test]
    async fn automatic_ids_skip_client_ids() {
        let store = MemoryService::new();
        store.create(&json!({"id": 0}), &none()).await.unwrap();
        store.create(&json!({"id": "1"}), &none()).await.unwrap();
        let created = store.create(&json!({}), &none()).await.unwrap();
        assert_eq!(created["id"], json!(2));
    }

    #[tokio::test]
    async fn create_with_a_taken_id_is_a_conflict() {
        let store = MemoryService::new();
        store
            .create(&json!({"id": 7, "v": 1}), &none())
            .await
            .unwrap();
        for id in [json!(7), json!("7")] {
            assert_error(
                store.create(&json!({"id": id, "v": 2}), &none()).await,
                ErrorKind::Conflict,
                "A record with id '7' already exists",
            );
        }
        store.create(&json!({"id": "x"}), &none()).await.unwrap();
        assert_error(
            store.create(&json!({"id": "x"}), &none()).await,
            ErrorKind::Conflict,
            "A record with id 'x' already exists",
        );
        // Nothing was overwritten.
        assert_eq!(
            store.get(&Id::from(7), &none()).await.unwrap()["v"],
            json!(1)
        );
    }

    #[tokio::test]
    async fn create_rejects_invalid_data_and_ids() {
        let store = MemoryService::new().multi(true);
        for data in [json!("text"), json!(1), json!(null)] {
            let err = store.create(&data, &none()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadRequest);
            assert!(
                err.message()
                    .starts_with("The data of 'create' must be an object")
            );
        }
        let err = store
            .create(&json!([{"a": 1}, 2]), &none())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        for id in [json!({"a": 1}), json!([1]), json!(1.5), json!(true)] {
            let err = store.create(&json!({"id": id}), &none()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{err:?}");
        }
        assert_eq!(store.find(&none()).await.unwrap(), json!([]));
    }

    #[tokio::test]
    async fn create_many_needs_multi() {
        let store = MemoryService::new();
        assert_error(
            store.create(&json!([{"a": 1}]), &none()).await,
            ErrorKind::MethodNotAllowed,
            "Can not create multiple entries",
        );
        let store = MemoryService::new().multi_methods([Method::Create]);
        let created = store
            .create(&json!([{"a": 1}, {"a": 2}]), &none())
            .await
            .unwrap();
        assert_eq!(created, json!([{"a": 1, "id": 0}, {"a": 2, "id": 1}]));
    }

    #[tokio::test]
    async fn create_many_is_all_or_nothing() {
        let store = MemoryService::new().multi(true);
        store.create(&json!({"id": 5}), &none()).await.unwrap();
        let err = store
            .create(&json!([{"a": 1}, {"id": "s"}, {"id": "5"}]), &none())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        // A duplicate within the batch conflicts too.
        let err = store
            .create(&json!([{"id": "d"}, {"id": "d"}]), &none())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(store.find(&none()).await.unwrap(), json!([{"id": 5}]));
        // The counter was rolled back as well.
        assert_eq!(
            store.create(&json!({}), &none()).await.unwrap()["id"],
            json!(0)
        );
    }

    #[tokio::test]
    async fn create_applies_select() {
        let store = MemoryService::new().multi(true);
        let q = params(json!({"$select": ["a"]}));
        let created = store.create(&json!({"a": 1, "b": 2}), &q).await.unwrap();
        assert_eq!(created, json!({"a": 1, "id": 0}));
        let created = store.create(&json!([{"a": 1, "b": 2}]), &q).await.unwrap();
        assert_eq!(created, json!([{"a": 1, "id": 1}]));
        assert_eq!(
            store.get(&Id::from(0), &none()).await.unwrap()["b"],
            json!(2)
        );
    }

    #[tokio::test]
    async fn find_filters_sorts_skips_limits_and_selects() {
        let store = seeded(MemoryService::new()).await;
        let all = store.find(&none()).await.unwrap();
        assert_eq!(names(&all), ["alice", "bob", "carol", "dave"]);
        let found = store
            .find(&params(json!({
                "age": {"$lte": "30"}, "$sort": {"age": "-1", "name": 1},
                "$skip": "1", "$limit": "1", "$select": "name"
            })))
            .await
            .unwrap();
        assert_eq!(found, json!([{"name": "bob", "id": 1}]));
        let found = store
            .find(&params(json!({"$or": [{"name": "carol"}, {"age": 20}]})))
            .await
            .unwrap();
        assert_eq!(names(&found), ["bob", "carol", "dave"]);
        let sorted = store
            .find(&params(json!({"$sort": {"age": 1}})))
            .await
            .unwrap();
        assert_eq!(names(&sorted), ["bob", "dave", "alice", "carol"]);
    }

    #[tokio::test]
    async fn find_paginates() {
        let store = seeded(MemoryService::new().paginate(Paginate { default: 2, max: 3 })).await;
        let page = store.find(&none()).await.unwrap();
        assert_eq!(
            serde_json::to_string(&page).unwrap(),
            r#"{"total":4,"limit":2,"skip":0,"data":[{"name":"alice","age":30,"id":0},{"name":"bob","age":20,"id":1}]}"#
        );
        let page = store
            .find(&params(json!({"$limit": 100, "$skip": 1})))
            .await
            .unwrap();
        assert_eq!(page["limit"], json!(3));
        assert_eq!(names(&page), ["bob", "carol", "dave"]);
        let page = store
            .find(&params(json!({"$limit": 0, "age": 20})))
            .await
            .unwrap();
        assert_eq!(page, json!({"total": 2, "limit": 0, "skip": 0, "data": []}));
    }

    #[tokio::test]
    async fn params_paginate_overrides_the_service() {
        let store = seeded(MemoryService::new().paginate(Paginate { default: 2, max: 3 })).await;
        let mut p = none();
        p.paginate = PaginateParam::Disabled;
        let plain = store.find(&p).await.unwrap();
        assert_eq!(names(&plain).len(), 4);
        let store = seeded(MemoryService::new()).await;
        let mut p = params(json!({"$skip": 3}));
        p.paginate = PaginateParam::With(Paginate { default: 1, max: 1 });
        let page = store.find(&p).await.unwrap();
        assert_eq!(page["total"], json!(4));
        assert_eq!(page["limit"], json!(1));
        assert_eq!(names(&page), ["dave"]);
    }

    #[tokio::test]
    async fn find_rejects_invalid_queries() {
        let store = MemoryService::new();
        assert_error(
            store.find(&params(json!({"$foo": 1}))).await,
            ErrorKind::BadRequest,
            "Invalid filter value $foo",
        );
        assert_error(
            store.find(&params(json!({"age": {"$foo": 1}}))).await,
            ErrorKind::BadRequest,
            "Invalid query parameter $foo",
        );
    }

    #[tokio::test]
    async fn get_matches_ids_across_types_and_the_query() {
        let store = seeded(MemoryService::new()).await;
        let bob = store.get(&Id::from("1"), &none()).await.unwrap();
        assert_eq!(bob["name"], json!("bob"));
        let bob = store
            .get(&Id::from(1), &params(json!({"$select": ["age"]})))
            .await
            .unwrap();
        assert_eq!(bob, json!({"age": 20, "id": 1}));
        assert_error(
            store
                .get(&Id::from(1), &params(json!({"age": {"$gt": 20}})))
                .await,
            ErrorKind::NotFound,
            "No record found for id '1'",
        );
        assert_error(
            store.get(&Id::from("nope"), &none()).await,
            ErrorKind::NotFound,
            "No record found for id 'nope'",
        );
        assert_error(
            store.get(&Id::from(1), &params(json!({"$bad": 1}))).await,
            ErrorKind::BadRequest,
            "Invalid filter value $bad",
        );
    }

    #[tokio::test]
    async fn string_ids_in_canonical_decimal_match_numeric_ids() {
        let store = MemoryService::new();
        store
            .create(&json!({"id": "7", "v": 1}), &none())
            .await
            .unwrap();
        store
            .create(&json!({"id": "07", "v": 2}), &none())
            .await
            .unwrap();
        assert_eq!(
            store.get(&Id::from(7), &none()).await.unwrap()["v"],
            json!(1)
        );
        assert_eq!(
            store.get(&Id::from("07"), &none()).await.unwrap()["v"],
            json!(2)
        );
        store.create(&json!({"id": 9}), &none()).await.unwrap();
        for spelling in ["09", "+9", "-0"] {
            assert!(
                store.get(&Id::from(spelling), &none()).await.is_err(),
                "{spelling}"
            );
        }
        assert!(store.get(&Id::from("9"), &none()).await.is_ok());
        store.remove(Some(&Id::from(7)), &none()).await.unwrap();
        assert!(store.get(&Id::from(7), &none()).await.is_err());
    }

    #[tokio::test]
    async fn update_replaces_and_keeps_the_id() {
        let store = seeded(MemoryService::new()).await;
        let updated = store
            .update(
                Some(&Id::from("1")),
                &json!({"name": "bobby", "id": 99}),
                &none(),
            )
            .await
            .unwrap();
        assert_eq!(updated, json!({"name": "bobby", "id": 1}));
        assert_eq!(
            store.get(&Id::from(1), &none()).await.unwrap(),
            json!({"name": "bobby", "id": 1})
        );
        assert!(store.get(&Id::from(99), &none()).await.is_err());
        let selected = store
            .update(
                Some(&Id::from(1)),
                &json!({"a": 1, "b": 2}),
                &params(json!({"$select": "b"})),
            )
            .await
            .unwrap();
        assert_eq!(selected, json!({"b": 2, "id": 1}));
    }

    #[tokio::test]
    async fn update_errors() {
        let store = seeded(MemoryService::new().multi(true)).await;
        let message = "You can not replace multiple instances. Did you mean 'patch'?";
        assert_error(
            store.update(None, &json!({"a": 1}), &none()).await,
            ErrorKind::BadRequest,
            message,
        );
        assert_error(
            store
                .update(Some(&Id::from(1)), &json!([{"a": 1}]), &none())
                .await,
            ErrorKind::BadRequest,
            message,
        );
        assert_error(
            store.update(Some(&Id::from(1)), &json!("x"), &none()).await,
            ErrorKind::BadRequest,
            "The data of 'update' must be an object, got string",
        );
        assert_error(
            store.update(Some(&Id::from(42)), &json!({}), &none()).await,
            ErrorKind::NotFound,
            "No record found for id '42'",
        );
        assert_error(
            store
                .update(
                    Some(&Id::from(1)),
                    &json!({}),
                    &params(json!({"name": "alice"})),
                )
                .await,
            ErrorKind::NotFound,
            "No record found for id '1'",
        );
    }

    #[tokio::test]
    async fn patch_merges_one_record() {
        let store = seeded(MemoryService::new()).await;
        let patched = store
            .patch(
                Some(&Id::from(0)),
                &json!({"age": 31, "id": 5, "x": null}),
                &none(),
            )
            .await
            .unwrap();
        assert_eq!(
            patched,
            json!({"name": "alice", "age": 31, "id": 0, "x": null})
        );
        let selected = store
            .patch(
                Some(&Id::from(0)),
                &json!({"age": 32}),
                &params(json!({"$select": ["age"]})),
            )
            .await
            .unwrap();
        assert_eq!(selected, json!({"age": 32, "id": 0}));
        assert_error(
            store
                .patch(
                    Some(&Id::from(0)),
                    &json!({"age": 1}),
                    &params(json!({"age": 20})),
                )
                .await,
            ErrorKind::NotFound,
            "No record found for id '0'",
        );
        assert_error(
            store.patch(Some(&Id::from(0)), &json!([1]), &none()).await,
            ErrorKind::BadRequest,
            "The data of 'patch' must be an object, got array",
        );
    }

    #[tokio::test]
    async fn patch_many_needs_multi_and_uses_only_conditions() {
        let store = seeded(MemoryService::new()).await;
        assert_error(
            store.patch(None, &json!({"a": 1}), &none()).await,
            ErrorKind::MethodNotAllowed,
            "Can not patch multiple entries",
        );
        let store = seeded(MemoryService::new().multi_methods([Method::Patch])).await;
        let patched = store
            .patch(
                None,
                &json!({"young": true}),
                &params(json!({"age": "20", "$limit": 1, "$select": ["young"]})),
            )
            .await
            .unwrap();
        assert_eq!(
            patched,
            json!([{"young": true, "id": 1}, {"young": true, "id": 3}])
        );
        let young = store.find(&params(json!({"young": "true"}))).await.unwrap();
        assert_eq!(names(&young), ["bob", "dave"]);
    }

    #[tokio::test]
    async fn remove_one_record() {
        let store = seeded(MemoryService::new()).await;
        let removed = store
            .remove(Some(&Id::from("2")), &params(json!({"$select": "name"})))
            .await
            .unwrap();
        assert_eq!(removed, json!({"name": "carol", "id": 2}));
        assert_error(
            store.remove(Some(&Id::from(2)), &none()).await,
            ErrorKind::NotFound,
            "No record found for id '2'",
        );
        assert_error(
            store
                .remove(Some(&Id::from(1)), &params(json!({"age": 30})))
                .await,
            ErrorKind::NotFound,
            "No record found for id '1'",
        );
        assert_eq!(
            names(&store.find(&none()).await.unwrap()),
            ["alice", "bob", "dave"]
        );
    }

    #[tokio::test]
    async fn remove_many_needs_multi() {
        let store = seeded(MemoryService::new().multi_methods([Method::Create])).await;
        assert_error(
            store.remove(None, &none()).await,
            ErrorKind::MethodNotAllowed,
            "Can not remove multiple entries",
        );
        let store = seeded(MemoryService::new().multi(true)).await;
        let removed = store
            .remove(None, &params(json!({"age": {"$lt": 35}, "$skip": 5})))
            .await
            .unwrap();
        assert_eq!(names(&removed), ["alice", "bob", "dave"]);
        assert_eq!(names(&store.find(&none()).await.unwrap()), ["carol"]);
        let removed = store.remove(None, &none()).await.unwrap();
        assert_eq!(names(&removed), ["carol"]);
        assert_eq!(store.find(&none()).await.unwrap(), json!([]));
    }

    #[tokio::test]
    async fn multi_false_refuses_everything() {
        let store = MemoryService::new().multi(true).multi(false);
        assert!(store.create(&json!([]), &none()).await.is_err());
        assert!(store.patch(None, &json!({}), &none()).await.is_err());
        assert!(store.remove(None, &none()).await.is_err());
    }

    #[tokio::test]
    async fn protected_fields_are_refused_to_external_callers() {
        let store = MemoryService::new().protected_fields(["password"]);
        store
            .create(&json!({"email": "a@x", "password": "$2hash"}), &none())
            .await
            .unwrap();
        let mut external = params(json!({"password": {"$gt": "$2"}}));
        external.provider = Some(crate::Provider::Rest);
        let err = store.find(&external).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        let err = store.get(&Id::from(0), &external).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        // An internal call (the login strategy) may look the hash up.
        let found = store
            .find(&params(json!({"email": "a@x", "$select": ["password"]})))
            .await
            .unwrap();
        assert_eq!(found, json!([{"password": "$2hash", "id": 0}]));
    }

    #[tokio::test]
    async fn all_six_methods_are_listed() {
        assert_eq!(MemoryService::new().methods(), &Method::STANDARD);
    }

    #[tokio::test]
    async fn works_through_an_app() {
        let app = crate::App::new();
        app.use_service("items", MemoryService::new().multi(true))
            .unwrap();
        let items = app.service("items").unwrap();
        items
            .create(json!([{"n": 1}, {"n": 2}]), none())
            .await
            .unwrap();
        let found = items
            .find(params(json!({"n": {"$gt": "1"}})))
            .await
            .unwrap();
        assert_eq!(found, json!([{"n": 2, "id": 1}]));
        let removed = items.remove(Some(Id::from(0)), none()).await.unwrap();
        assert_eq!(removed, json!({"n": 1, "id": 0}));
    }
}
