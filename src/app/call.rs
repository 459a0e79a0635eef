//! Calling a service: a call's context runs through the service's hook
//! chain to the method itself, then the call's event is emitted; `find`,
//! `get`, ... build that context from their arguments.

use std::sync::Arc;

use plume_hooks::{BoxFuture, Terminal};
use serde_json::Value;

use super::ServiceHandle;
use crate::{Error, HookContext, Id, Method, Params, Result, Service};

impl ServiceHandle {
    /// A fresh context for a call of `method` on this service.
    pub fn context(&self, method: Method) -> HookContext {
        HookContext::new(self.app.clone(), Arc::clone(&self.entry.path), method)
    }

    /// Runs a call described by `ctx` through the hook chain, then emits its
    /// event. The outcome stays on the context (`result`, `error`,
    /// `http`), which is what transports need.
    pub async fn run(&self, ctx: &mut HookContext) -> Result<()> {
        let hook_enabled = match &ctx.method {
            Method::Custom(name) => self.entry.custom.iter().any(|c| c == name),
            standard => self.entry.service.methods().contains(standard),
        };
        if !hook_enabled {
            return Err(crate::service::method_not_allowed(ctx.method.as_str()));
        }
        let chain = self.chain(ctx.method.as_str())?;
        let terminal = Call {
            service: self.entry.service.as_ref(),
        };
        if let Err(error) = chain.run(ctx, &terminal).await {
            // Error blocks record the error on the context, but a chain
            // without error hooks (or an error raised outside them, in an
            // around hook) has none: record the error the call fails with.
            ctx.error = Some(error.clone());
            return Err(error);
        }
        self.emit_event(ctx);
        Ok(())
    }

    async fn call(&self, mut ctx: HookContext) -> Result<Value> {
        self.run(&mut ctx).await?;
        Ok(ctx.result.unwrap_or(Value::Null))
    }

    /// Calls `find` through the hooks.
    pub async fn find(&self, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Find);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `get` through the hooks.
    pub async fn get(&self, id: impl Into<Id>, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Get);
        ctx.id = Some(id.into());
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `create` through the hooks.
    pub async fn create(&self, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Create);
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `update` through the hooks (`None` for many).
    pub async fn update(&self, id: Option<Id>, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Update);
        ctx.id = id;
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `patch` through the hooks (`None` for many).
    pub async fn patch(&self, id: Option<Id>, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Patch);
        ctx.id = id;
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls `remove` through the hooks (`None` for many).
    pub async fn remove(&self, id: Option<Id>, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::Remove);
        ctx.id = id;
        ctx.params = params;
        self.call(ctx).await
    }

    /// Calls a declared custom method through the hooks.
    pub async fn custom(&self, method: &str, data: Value, params: Params) -> Result<Value> {
        let mut ctx = self.context(Method::parse(method));
        ctx.data = Some(data);
        ctx.params = params;
        self.call(ctx).await
    }
}

/// The innermost step of a service call: the method itself.
struct Call<'s> {
    service: &'s dyn Service,
}

impl Terminal<HookContext> for Call<'_> {
    fn call<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let service = self.service;
            let method = ctx.method.clone();
            let result = match &method {
                Method::Find => service.find(&ctx.params).await?,
                Method::Get => {
                    let id = ctx.id.as_ref().ok_or_else(|| missing_id(&method))?;
                    service.get(id, &ctx.params).await?
                }
                Method::Create => service.create(data(ctx, &method)?, &ctx.params).await?,
                Method::Update => {
                    service
                        .update(ctx.id.as_ref(), data(ctx, &method)?, &ctx.params)
                        .await?
                }
                Method::Patch => {
                    service
                        .patch(ctx.id.as_ref(), data(ctx, &method)?, &ctx.params)
                        .await?
                }
                Method::Remove => service.remove(ctx.id.as_ref(), &ctx.params).await?,
                Method::Custom(name) => {
                    service
                        .custom(name, ctx.data.as_ref().unwrap_or(&Value::Null), &ctx.params)
                        .await?
                }
            };
            ctx.result = Some(result);
            Ok(())
        })
    }
}

fn data<'c>(ctx: &'c HookContext, method: &Method) -> Result<&'c Value> {
    ctx.data.as_ref().ok_or_else(|| {
        Error::bad_request(format!(
            "A data object must be provided to the '{method}' method"
        ))
    })
}

fn missing_id(method: &Method) -> Error {
    Error::bad_request(format!("An id must be provided to the '{method}' method"))
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::App;
    use crate::app::testing::Echo;

    #[tokio::test]
    async fn unimplemented_methods_are_405() {
        struct OnlyFind;
        #[async_trait]
        impl Service for OnlyFind {
            async fn find(&self, _params: &Params) -> Result<Value> {
                Ok(json!([]))
            }
            fn methods(&self) -> &'static [Method] {
                &[Method::Find]
            }
        }
        let app = App::new();
        let svc = app.use_service("only", OnlyFind).unwrap();
        assert_eq!(svc.external_methods(), &[Method::Find]);
        let err = svc.create(json!({}), Params::new()).await.unwrap_err();
        assert_eq!(err.code(), 405);
        assert_eq!(
            err.message(),
            "Method `create` is not supported by this endpoint."
        );
    }

    #[tokio::test]
    async fn ids_of_the_wrong_shape_never_reach_a_service() {
        assert_eq!(Id::from_value(&json!(null)).unwrap(), None);
        assert_eq!(Id::from_value(&json!(3)).unwrap(), Some(Id::Number(3)));
        for bad in [json!({"$ne": 1}), json!([1, 2]), json!(true), json!(1.5)] {
            assert_eq!(Id::from_value(&bad).unwrap_err().code(), 400, "{bad}");
        }
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        let mut ctx = svc.context(Method::Get);
        let err = svc.run(&mut ctx).await.unwrap_err();
        assert_eq!(err.message(), "An id must be provided to the 'get' method");
    }
}
