//! What the app's unit tests share: [`Echo`], a service every file's tests
//! call.

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::{Error, Id, Params, Result, Service};

/// Echoes its arguments; `create` of `{"fail": true}` fails.
pub(super) struct Echo;

#[async_trait]
impl Service for Echo {
    async fn find(&self, _params: &Params) -> Result<Value> {
        Ok(json!([]))
    }
    async fn get(&self, id: &Id, _params: &Params) -> Result<Value> {
        Ok(json!({"id": id.to_value()}))
    }
    async fn create(&self, data: &Value, _params: &Params) -> Result<Value> {
        if data.get("fail").is_some() {
            return Err(Error::bad_request("asked to fail"));
        }
        Ok(data.clone())
    }
    async fn update(&self, id: Option<&Id>, data: &Value, _params: &Params) -> Result<Value> {
        Ok(json!({"id": id.map(Id::to_value), "data": data}))
    }
    async fn patch(&self, id: Option<&Id>, data: &Value, _params: &Params) -> Result<Value> {
        Ok(json!({"id": id.map(Id::to_value), "data": data}))
    }
    async fn remove(&self, id: Option<&Id>, _params: &Params) -> Result<Value> {
        Ok(json!({"id": id.map(Id::to_value)}))
    }
    async fn custom(&self, method: &str, data: &Value, _params: &Params) -> Result<Value> {
        Ok(json!({"method": method, "data": data}))
    }
}
