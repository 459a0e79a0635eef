//! The `protect(fields)` hook (Feathers: `@feathersjs/authentication-local`,
//! `src/hooks/protect.ts`).

use serde_json::Value;

use crate::fields::remove_path;
use crate::{AroundHook, BoxFuture, Hook, HookContext, Method, Next, Result};

/// Removes `fields` (dotted paths) from what is sent to callers, whatever
/// the shape: an object, an array of objects, or a page of `find`. Sets
/// `ctx.dispatch`; for external calls `ctx.result` too (so nothing later
/// can send the hash by mistake). Use it as an after hook or an around
/// hook on every method.
#[derive(Debug, Clone)]
pub struct Protect {
    fields: Vec<String>,
}

/// `protect(["password"])`.
pub fn protect<I, S>(fields: I) -> Protect
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Protect {
        fields: fields.into_iter().map(Into::into).collect(),
    }
}

impl Protect {
    fn omit(&self, value: &Value) -> Value {
        match value {
            Value::Object(_) => {
                let mut copy = value.clone();
                for field in &self.fields {
                    remove_path(&mut copy, field);
                }
                copy
            }
            other => other.clone(),
        }
    }

    fn omit_all(&self, value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|i| self.omit(i)).collect()),
            other => self.omit(other),
        }
    }

    fn apply(&self, ctx: &mut HookContext) {
        let Some(source) = ctx.dispatch.as_ref().or(ctx.result.as_ref()) else {
            return;
        };
        let is_page = ctx.method == Method::Find
            && source
                .get("data")
                .is_some_and(|d| !d.is_null() && d != &Value::Bool(false));
        let protected = if is_page {
            let mut page = source.clone();
            if let Some(data) = source.get("data") {
                page["data"] = self.omit_all(data);
            }
            page
        } else {
            self.omit_all(source)
        };
        if ctx.params.is_external() {
            ctx.result = Some(protected.clone());
        }
        ctx.dispatch = Some(protected);
    }
}

impl Hook<HookContext> for Protect {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.apply(ctx);
            Ok(())
        })
    }
}

impl AroundHook<HookContext> for Protect {
    fn run<'a>(
        &'a self,
        ctx: &'a mut HookContext,
        next: Next<'a, HookContext>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            next.run(ctx).await?;
            self.apply(ctx);
            Ok(())
        })
    }
}
