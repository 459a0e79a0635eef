//! Port of `packages/feathers/test/hooks/error.test.ts` ("`error` hooks").

use plume::{
    App, Error, Hook, HookContext, HookType, Hooks, Id, Method, Params, ServiceHandle, hook_fn,
};
use serde_json::{Value, json};

use super::support::{FnService, assert_rejects, bag, bag_set, later, log, logged, run_ctx};

const SOMETHING_ELSE: &str = "Something else went wrong";

/// "on direct service method errors": `get` always fails.
fn failing_get() -> (App, ServiceHandle) {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |_call| async move {
                Err(Error::general("Something went wrong"))
            }),
        )
        .unwrap();
    (app, service)
}

// "basic error hook" — `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn basic_error_hook() {
    let (app, service) = failing_get();
    service.hooks(Hooks::new().error("get", async |ctx: &mut HookContext| {
        log(&ctx.app, "error hook");
        assert_eq!(ctx.hook_type, HookType::Error);
        assert_eq!(ctx.id, Some(Id::from("test")));
        assert_eq!(ctx.method, Method::Get);
        assert_eq!(
            ctx.error.as_ref().map(Error::message),
            Some("Something went wrong")
        );
        Ok(())
    }));

    assert_rejects(
        service.get("test", Params::new()).await,
        "Something went wrong",
    );
    // Logged through `context.app`: it is `app`.
    assert_eq!(logged(&app), ["error hook"]);
}

// "can change the error" — `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn can_change_the_error() {
    let (_app, service) = failing_get();
    service.hooks(Hooks::new().error("get", async |ctx: &mut HookContext| {
        ctx.error = Some(Error::general(SOMETHING_ELSE));
        Ok(())
    }));

    assert_rejects(service.get("test", Params::new()).await, SOMETHING_ELSE);
}

// "throwing an error" — `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn throwing_an_error() {
    let (_app, service) = failing_get();
    service.hooks(Hooks::new().error("get", async |_ctx: &mut HookContext| {
        Err(Error::general(SOMETHING_ELSE))
    }));

    assert_rejects(service.get("test", Params::new()).await, SOMETHING_ELSE);
}

// "rejecting a promise" — `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn rejecting_a_promise() {
    let (_app, service) = failing_get();
    service.hooks(Hooks::new().error("get", async |_ctx: &mut HookContext| {
        // Fails only after another task ran.
        Err(later(Error::general(SOMETHING_ELSE)).await)
    }));

    assert_rejects(service.get("test", Params::new()).await, SOMETHING_ELSE);
}

/// An error hook: `context.error.<flag> = true` (flags live in the error's
/// `data`).
fn flag_error(flag: &'static str) -> impl Hook<HookContext> {
    hook_fn(move |ctx: &mut HookContext| {
        Box::pin(async move {
            let error = ctx.error.take().expect("context.error");
            let mut data = error.data().cloned().unwrap_or_else(|| json!({}));
            data[flag] = json!(true);
            ctx.error = Some(error.with_data(data));
            Ok(())
        })
    })
}

// "can chain multiple hooks" —
// `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn can_chain_multiple_hooks() {
    let (_app, service) = failing_get();
    service.hooks(Hooks::new().error(
        "get",
        (
            async |ctx: &mut HookContext| {
                ctx.error = Some(Error::general(SOMETHING_ELSE).with_data(json!({"first": true})));
                Ok(())
            },
            flag_error("second"),
            flag_error("third"),
        ),
    ));

    let error = assert_rejects(service.get("test", Params::new()).await, SOMETHING_ELSE);
    assert_eq!(
        error.data(),
        Some(&json!({"first": true, "second": true, "third": true}))
    );
}

// "setting `context.result` will return result" —
// `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn setting_context_result_will_return_result() {
    let (_app, service) = failing_get();
    service.hooks(Hooks::new().error("get", async |ctx: &mut HookContext| {
        ctx.result = Some(json!({"message": "It worked"}));
        Ok(())
    }));

    let result = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(result, json!({"message": "It worked"}));
}

// "allows to set `context.result = null` in error hooks (#865)" —
// `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn allows_to_set_context_result_null_in_error_hooks_865() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |_call| async move { Err(Error::general("Damnit")) }),
        )
        .unwrap();
    service.hooks(Hooks::new().error("get", async |ctx: &mut HookContext| {
        ctx.result = Some(Value::Null);
        Ok(())
    }));

    let result = service.get(1_i64, Params::new()).await.unwrap();
    assert_eq!(result, Value::Null);
    // A `null` result is a result: the context holds `Some(null)`.
    let (ctx, outcome) = run_ctx(
        &service,
        Method::Get,
        Some(Id::from(1_i64)),
        None,
        Params::new(),
    )
    .await;
    outcome.unwrap();
    assert_eq!(ctx.result, Some(Value::Null));
}

// "uses the current hook object if thrown in a service method" —
// `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn uses_the_current_hook_object_if_thrown_in_a_service_method() {
    let (app, service) = failing_get();
    service.hooks(
        Hooks::new()
            .before("all", async |ctx: &mut HookContext| {
                ctx.id = Some(Id::from(42_i64));
                Ok(())
            })
            .error("all", async |ctx: &mut HookContext| {
                log(&ctx.app, "error hook");
                assert_eq!(ctx.id, Some(Id::from(42_i64)));
                Ok(())
            }),
    );

    assert_rejects(
        service.get(1_i64, Params::new()).await,
        "Something went wrong",
    );
    assert_eq!(logged(&app), ["error hook"]);
}

const BEFORE_HOOK_BROKE: &str = "before hook broke";

/// "error in hooks": `get(id)` answers `{id, text}`.
fn dishes() -> (App, ServiceHandle) {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |call| async move {
                let id = call.id();
                let text = format!("You have to do {}", id.as_str().unwrap_or_default());
                Ok(json!({"id": id, "text": text}))
            }),
        )
        .unwrap();
    (app, service)
}

// "in before hook" — `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn in_before_hook() {
    let (app, service) = dishes();
    service
        .hooks(Hooks::new().before("all", async |_ctx: &mut HookContext| {
            Err(Error::general(BEFORE_HOOK_BROKE))
        }))
        .hooks(Hooks::new().error("all", async |ctx: &mut HookContext| {
            log(&ctx.app, "error hook");
            let original = ctx.original.as_deref().expect("context.original");
            assert_eq!(
                original.hook_type,
                HookType::Before,
                "Original hook still set"
            );
            assert_eq!(ctx.id, Some(Id::from("dishes")));
            assert_eq!(
                ctx.error.as_ref().map(Error::message),
                Some(BEFORE_HOOK_BROKE)
            );
            Ok(())
        }));

    assert_rejects(
        service.get("dishes", Params::new()).await,
        BEFORE_HOOK_BROKE,
    );
    assert_eq!(logged(&app), ["error hook"]);
}

// "in after hook" — `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn in_after_hook() {
    let (app, service) = dishes();
    service.hooks(
        Hooks::new()
            .after("all", async |_ctx: &mut HookContext| {
                Err(Error::general(BEFORE_HOOK_BROKE))
            })
            .error("all", async |ctx: &mut HookContext| {
                log(&ctx.app, "error hook");
                let original = ctx.original.as_deref().expect("context.original");
                assert_eq!(
                    original.hook_type,
                    HookType::After,
                    "Original hook still set"
                );
                assert_eq!(ctx.id, Some(Id::from("dishes")));
                assert_eq!(
                    original.result,
                    Some(json!({"id": "dishes", "text": "You have to do dishes"}))
                );
                assert_eq!(
                    ctx.error.as_ref().map(Error::message),
                    Some(BEFORE_HOOK_BROKE)
                );
                Ok(())
            }),
    );

    assert_rejects(
        service.get("dishes", Params::new()).await,
        BEFORE_HOOK_BROKE,
    );
    assert_eq!(logged(&app), ["error hook"]);
}

// "uses the current hook object if thrown in a hook and sets context.original" —
// `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn uses_the_current_hook_object_if_thrown_in_a_hook_and_sets_context_original() {
    let (app, service) = dishes();
    service.hooks(
        Hooks::new()
            .after("all", async |ctx: &mut HookContext| {
                // `context.modified = true`: an extra property, here a param.
                bag_set(&mut ctx.params, "modified", json!(true));
                Err(Error::general(BEFORE_HOOK_BROKE))
            })
            .error("all", async |ctx: &mut HookContext| {
                log(&ctx.app, "error hook");
                assert_eq!(bag(&ctx.params).get("modified"), Some(&json!(true)));
                let original = ctx.original.as_deref().expect("context.original");
                assert_eq!(original.hook_type, HookType::After);
                Ok(())
            }),
    );

    assert_rejects(
        service.get("laundry", Params::new()).await,
        BEFORE_HOOK_BROKE,
    );
    assert_eq!(logged(&app), ["error hook"]);
}

// "Error in before hook causes inter-service calls to have wrong hook context (#841)" —
// `@feathersjs/feathers`, `test/hooks/error.test.ts`
#[tokio::test]
async fn error_in_before_hook_causes_inter_service_calls_to_have_wrong_hook_context_841() {
    let app = App::new();
    app.use_service(
        "/service1",
        FnService::new().on("find", |_call| async move {
            Ok(json!({"message": "service1 success"}))
        }),
    )
    .unwrap();
    app.service("service1").unwrap().hooks(Hooks::new().before(
        "all",
        async |ctx: &mut HookContext| {
            log(&ctx.app, "service1 before");
            bag_set(&mut ctx.params, "owner", json!("service1"));
            Err(Error::general("Error in service1 before hook"))
        },
    ));

    // Service 2's method calls service 1 (the app is captured the way a
    // Feathers service closes over `app`).
    let inner = app.clone();
    app.use_service(
        "/service2",
        FnService::new().on("find", move |_call| {
            let app = inner.clone();
            async move {
                app.service("/service1")?.find(Params::new()).await?;
                Ok(json!({"message": "service2 success"}))
            }
        }),
    )
    .unwrap();
    app.service("service2").unwrap().hooks(
        Hooks::new()
            .before("all", async |ctx: &mut HookContext| {
                log(&ctx.app, "service2 before");
                bag_set(&mut ctx.params, "owner", json!("service2"));
                bag_set(&mut ctx.params, "foo", json!("bar"));
                Ok(())
            })
            .error("all", async |ctx: &mut HookContext| {
                log(&ctx.app, "service2 error");
                // Service 2's own context, not service 1's.
                assert_eq!(&*ctx.path, "service2");
                assert_eq!(ctx.method, Method::Find);
                assert_eq!(bag(&ctx.params).get("owner"), Some(&json!("service2")));
                assert_eq!(bag(&ctx.params).get("foo"), Some(&json!("bar")));
                assert_eq!(
                    ctx.error.as_ref().map(Error::message),
                    Some("Error in service1 before hook")
                );
                Ok(())
            }),
    );

    let outcome = app.service("/service2").unwrap().find(Params::new()).await;
    assert_rejects(outcome, "Error in service1 before hook");
    assert_eq!(
        logged(&app),
        ["service2 before", "service1 before", "service2 error"]
    );
}
