//! An in-memory DogRS service, in the spirit of `@feathersjs/memory`.
//!
//! DogRS 0.4 ships no storage adapter (`dog-core`'s `adapters` feature only
//! has a macro that forwards to `_find`/`_get`/... methods you write), so
//! this is the smallest store that does what the benchmark needs: records in
//! a `BTreeMap` behind an `RwLock`, ids counted from 0, `find` with equality
//! filters on query fields plus `$limit`/`$skip` (clamped by an optional
//! paginate setting).
//!
//! `find` returns a plain list: DogRS's `DogService::find` returns `Vec<R>`,
//! so it cannot answer Feathers' page object `{total, limit, skip, data}`.

use std::collections::BTreeMap;
use std::sync::RwLock;

use anyhow::Result;
use async_trait::async_trait;
use dog_core::errors::DogError;
use dog_core::{DogService, TenantContext};
use serde_json::{Map, Value};

use crate::Params;

/// `{default, max}` of Feathers' `paginate` option.
#[derive(Clone, Copy, Debug)]
pub struct Paginate {
    pub default: usize,
    pub max: usize,
}

struct Store {
    next_id: u64,
    records: BTreeMap<u64, Value>,
}

pub struct MemoryService {
    store: RwLock<Store>,
    /// Ids are stored as JSON strings ("0") rather than numbers (0).
    string_ids: bool,
    paginate: Option<Paginate>,
}

impl MemoryService {
    pub fn new(string_ids: bool, paginate: Option<Paginate>) -> Self {
        Self {
            store: RwLock::new(Store {
                next_id: 0,
                records: BTreeMap::new(),
            }),
            string_ids,
            paginate,
        }
    }

    fn id_value(&self, id: u64) -> Value {
        if self.string_ids {
            Value::String(id.to_string())
        } else {
            Value::from(id)
        }
    }

    fn parse_id(id: &str) -> Result<u64> {
        id.parse::<u64>().map_err(|_| not_found(id))
    }

    fn object(data: Value) -> Result<Map<String, Value>> {
        match data {
            Value::Object(map) => Ok(map),
            _ => Err(DogError::bad_request("Data must be an object").into_anyhow()),
        }
    }
}

fn not_found(id: &str) -> anyhow::Error {
    DogError::not_found(format!("No record found for id '{id}'")).into_anyhow()
}

fn matches(record: &Value, field: &str, wanted: &str) -> bool {
    match record.get(field) {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Number(n)) => n.to_string() == wanted,
        Some(Value::Bool(b)) => b.to_string() == wanted,
        Some(Value::Null) => wanted == "null",
        _ => false,
    }
}

#[async_trait]
impl DogService<Value, Params> for MemoryService {
    async fn find(&self, _ctx: &TenantContext, params: Params) -> Result<Vec<Value>> {
        let query = &params.inner.query;
        let number = |key: &str| -> Result<Option<usize>> {
            match query.get(key) {
                None => Ok(None),
                Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
                    DogError::bad_request(format!("Invalid query parameter {key}")).into_anyhow()
                }),
            }
        };
        let skip = number("$skip")?.unwrap_or(0);
        let mut limit = number("$limit")?;
        if let Some(p) = self.paginate {
            limit = Some(limit.unwrap_or(p.default).min(p.max));
        }
        let filters: Vec<(&String, &String)> =
            query.iter().filter(|(k, _)| !k.starts_with('$')).collect();

        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        let found = store
            .records
            .values()
            .filter(|r| filters.iter().all(|(k, v)| matches(r, k, v)))
            .skip(skip)
            .take(limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok(found)
    }

    async fn get(&self, _ctx: &TenantContext, id: &str, _params: Params) -> Result<Value> {
        let key = Self::parse_id(id)?;
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        store
            .records
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn create(&self, _ctx: &TenantContext, data: Value, _params: Params) -> Result<Value> {
        let mut map = Self::object(data)?;
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        let id = store.next_id;
        store.next_id += 1;
        map.insert("id".to_string(), self.id_value(id));
        let record = Value::Object(map);
        store.records.insert(id, record.clone());
        Ok(record)
    }

    async fn update(
        &self,
        _ctx: &TenantContext,
        id: &str,
        data: Value,
        _params: Params,
    ) -> Result<Value> {
        let key = Self::parse_id(id)?;
        let mut map = Self::object(data)?;
        map.insert("id".to_string(), self.id_value(key));
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        let slot = store.records.get_mut(&key).ok_or_else(|| not_found(id))?;
        *slot = Value::Object(map);
        Ok(slot.clone())
    }

    async fn patch(
        &self,
        _ctx: &TenantContext,
        id: Option<&str>,
        data: Value,
        _params: Params,
    ) -> Result<Value> {
        let id = id.ok_or_else(|| {
            DogError::method_not_allowed("Can not patch multiple entries").into_anyhow()
        })?;
        let key = Self::parse_id(id)?;
        let changes = Self::object(data)?;
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        let slot = store.records.get_mut(&key).ok_or_else(|| not_found(id))?;
        if let Value::Object(record) = slot {
            for (k, v) in changes {
                if k != "id" {
                    record.insert(k, v);
                }
            }
        }
        Ok(slot.clone())
    }

    async fn remove(
        &self,
        _ctx: &TenantContext,
        id: Option<&str>,
        _params: Params,
    ) -> Result<Value> {
        let id = id.ok_or_else(|| {
            DogError::method_not_allowed("Can not remove multiple entries").into_anyhow()
        })?;
        let key = Self::parse_id(id)?;
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        store.records.remove(&key).ok_or_else(|| not_found(id))
    }
}
