//! Port of `packages/feathers/test/hooks/hooks.test.ts` ("hooks basics").

use std::sync::Arc;

use plume::{
    App, Error, HookContext, HookType, Hooks, Id, Method, Next, Params, Result, Service,
    ServiceOptions, around_fn, hook_fn,
};
use serde_json::{Value, json};

use super::support::{
    FnService, Log, Wrap, bag, bag_get, bag_set, data_obj, is_this, log, logged, params_with,
    result_obj, run_ctx, this,
};

/// `get(id, params)` answering `{id, params}`.
fn echo_get() -> FnService {
    FnService::new().on("get", |call| async move {
        Ok(json!({"id": call.id(), "params": call.params()}))
    })
}

// "mix @feathersjs/hooks and .hooks" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
//
// Plume has no hooks built into a service implementation (the
// `@feathersjs/hooks` decorators, placed in the chain by `collectMiddleware`
// in `@feathersjs/feathers`, `src/hooks.ts`); the `@hooks` around hooks
// are service-level around hooks registered first, which is where Feathers
// runs them when the service has no `service.hooks([...])` arrays.
#[tokio::test]
async fn mix_feathersjs_hooks_and_hooks() {
    let app = App::new();
    let registered: Arc<dyn Service> = Arc::new(echo_get());
    let service = app
        .use_arc_service("/dummy", Arc::clone(&registered), ServiceOptions::new())
        .unwrap();

    // `@hooks` on the class: an around-all and an around-get hook.
    service.hooks(Hooks::new().around("all", Wrap("@hooks all")));
    service.hooks(Hooks::new().around(
        "get",
        around_fn(move |ctx: &mut HookContext, next| {
            let registered = Arc::clone(&registered);
            Box::pin(async move {
                // `ctx.app` and `ctx.service` are set.
                assert!(is_this(ctx, &registered));
                log(&ctx.app, "@hooks get before");
                next.run(ctx).await?;
                log(&ctx.app, "@hooks get after");
                Ok(())
            })
        }),
    ));

    app.hooks(Hooks::new().around("all", Wrap("app.hooks")));
    app.hooks(
        Hooks::new()
            .before("all", Log("app.hooks regular before"))
            .after("all", Log("app.hooks regular after")),
    );
    service.hooks(
        Hooks::new()
            .before("get", Log("service.hooks regular before"))
            .after("get", Log("service.hooks regular after")),
    );
    service.hooks(Hooks::new().around("get", Wrap("service.hooks get")));
    service.hooks(
        Hooks::new()
            .before("get", Log("service.hooks 2 regular before"))
            .after("get", Log("service.hooks 2 regular after")),
    );

    let data = service.get(1_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 1, "params": {}}));
    assert_eq!(
        logged(&app),
        [
            "app.hooks before",
            "app.hooks regular before",
            "@hooks all before",
            "@hooks get before",
            "service.hooks get before",
            "service.hooks regular before",
            "service.hooks 2 regular before",
            "service.hooks regular after",
            "service.hooks 2 regular after",
            "service.hooks get after",
            "@hooks get after",
            "@hooks all after",
            "app.hooks regular after",
            "app.hooks after",
        ]
    );
}

// "works with services that return a promise (feathers-hooks#28)" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn works_with_services_that_return_a_promise_feathers_hooks_28() {
    let app = App::new();
    let service = app
        .use_service(
            "dummy",
            FnService::new().on("get", |call| async move {
                Ok(json!({"id": call.id(), "user": bag_get(&call.params, "user")}))
            }),
        )
        .unwrap();
    service.hooks(
        Hooks::new()
            .before("get", async |ctx: &mut HookContext| {
                bag_set(&mut ctx.params, "user", json!("David"));
                Ok(())
            })
            .after("get", async |ctx: &mut HookContext| {
                result_obj(ctx).insert("after".to_owned(), json!(true));
                Ok(())
            }),
    );

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "user": "David", "after": true}));
}

// "has context.app, context.service and context.path" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn has_context_app_context_service_and_context_path() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |call| async move { Ok(json!({"id": call.id()})) }),
        )
        .unwrap();
    let registered = Arc::clone(service.service());
    service.hooks(Hooks::new().before(
        "all",
        hook_fn(move |ctx: &mut HookContext| {
            let registered = Arc::clone(&registered);
            Box::pin(async move {
                log(&ctx.app, "before");
                assert!(is_this(ctx, &registered), "context.service is the service");
                assert_eq!(&*ctx.path, "dummy");
                Ok(())
            })
        }),
    ));

    service.get("test", Params::new()).await.unwrap();
    // Logged through `context.app`: it is `app`.
    assert_eq!(logged(&app), ["before"]);
}

// "does not error when result is null" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn does_not_error_when_result_is_null() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |call| async move { Ok(json!({"id": call.id()})) }),
        )
        .unwrap();
    service.hooks(Hooks::new().after("get", async |ctx: &mut HookContext| {
        ctx.result = Some(Value::Null);
        Ok(())
    }));

    let result = service.get(1_i64, Params::new()).await.unwrap();
    assert_eq!(result, Value::Null);
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

// "registering an already hooked service works (#154)" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn registering_an_already_hooked_service_works_154() {
    let app = App::new();
    let dummy = app.use_service("/dummy", echo_get()).unwrap();
    dummy.hooks(Hooks::new().before("get", async |ctx: &mut HookContext| {
        bag_set(&mut ctx.params, "hooked", json!(ctx.path.as_ref()));
        Ok(())
    }));

    // `app.use('/dummy2', app.service('dummy'))`
    let shared = Arc::clone(app.service("dummy").unwrap().service());
    let dummy2 = app
        .use_arc_service("/dummy2", shared, ServiceOptions::new())
        .unwrap();
    assert!(Arc::ptr_eq(dummy.service(), dummy2.service()));
    dummy2.hooks(Hooks::new().after("get", async |ctx: &mut HookContext| {
        let path = json!(ctx.path.as_ref());
        result_obj(ctx).insert("after".to_owned(), path);
        Ok(())
    }));

    // Each path keeps its own hooks.
    assert_eq!(
        dummy.get(1_i64, Params::new()).await.unwrap(),
        json!({"id": 1, "params": {"hooked": "dummy"}})
    );
    assert_eq!(
        dummy2.get(1_i64, Params::new()).await.unwrap(),
        json!({"id": 1, "params": {}, "after": "dummy2"})
    );
}

// "returns the context when passing it as last parameter › on normal method call" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn returns_the_context_when_passing_it_as_last_parameter_on_normal_method_call() {
    let app = App::new();
    let service = app.use_service("/dummy", echo_get()).unwrap();

    let mut ctx = service.context(Method::Get);
    ctx.id = Some(Id::from(10_i64));
    service.run(&mut ctx).await.unwrap();

    assert!(Arc::ptr_eq(
        &this(&ctx),
        app.service("dummy").unwrap().service()
    ));
    assert_eq!(ctx.hook_type, HookType::Around);
    assert_eq!(&*ctx.path, "dummy");
    assert_eq!(ctx.result, Some(json!({"id": 10, "params": {}})));
}

// "returns the context when passing it as last parameter › on error" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
//
// Skipped in Feathers; in Plume the caller keeps the context, and `run`
// fails with the error while the context holds it too.
#[tokio::test]
async fn returns_the_context_when_passing_it_as_last_parameter_on_error() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |_call| async move {
                Err(Error::general("Something went wrong"))
            }),
        )
        .unwrap();

    let mut ctx = service.context(Method::Get);
    ctx.id = Some(Id::from(10_i64));
    let error = service.run(&mut ctx).await.unwrap_err();

    assert_eq!(error.message(), "Something went wrong");
    assert!(Arc::ptr_eq(
        &this(&ctx),
        app.service("dummy").unwrap().service()
    ));
    assert_eq!(ctx.hook_type, HookType::Around);
    assert_eq!(&*ctx.path, "dummy");
    assert_eq!(ctx.error.as_ref(), Some(&error));
    assert_eq!(ctx.result, None);
}

// "returns the context when passing it as last parameter › still swallows error if context.result is set" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn returns_the_context_when_passing_it_as_last_parameter_still_swallows_error_if_context_result_is_set()
 {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |_call| async move {
                Err(Error::general("Something went wrong"))
            }),
        )
        .unwrap();
    service.hooks(Hooks::new().error("all", async |ctx: &mut HookContext| {
        ctx.result = Some(json!({"message": "this is a test"}));
        Ok(())
    }));

    let mut ctx = service.context(Method::Get);
    ctx.id = Some(Id::from(10_i64));
    service.run(&mut ctx).await.unwrap();

    assert_eq!(
        ctx.error.as_ref().map(Error::message),
        Some("Something went wrong")
    );
    assert_eq!(ctx.result, Some(json!({"message": "this is a test"})));
}

async fn from_hook(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    data_obj(ctx).insert("fromHook".to_owned(), json!(true));
    next.run(ctx).await
}

// "can register hooks on a custom method, still adds hooks to default methods" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn can_register_hooks_on_a_custom_method_still_adds_hooks_to_default_methods() {
    let app = App::new();
    let service = app
        .use_service_with(
            "dummy",
            FnService::new()
                .on("get", |call| async move { Ok(json!({"id": call.id()})) })
                .on("create", |call| async move { Ok(call.data()) })
                .on("custom", |call| async move { Ok(call.data()) }),
            ServiceOptions::new().methods(["get", "custom"]),
        )
        .unwrap();
    service.hooks(
        Hooks::new()
            .around("custom", from_hook)
            .around("create", Wrap("create")),
    );

    let result = service
        .custom("custom", json!({"message": "testing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(result, json!({"message": "testing", "fromHook": true}));

    // `create` is not in `methods` (not callable by transports) but is
    // still hook-enabled.
    assert!(!service.allows_external(&Method::Create));
    assert!(service.allows_external(&Method::parse("custom")));
    let created = service
        .create(json!({"message": "created"}), Params::new())
        .await
        .unwrap();
    assert_eq!(created, json!({"message": "created"}));
    assert_eq!(logged(&app), ["create before", "create after"]);
}

// "normalizes params to object even when it is falsy (#1001)" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn normalizes_params_to_object_even_when_it_is_falsy_1001() {
    let app = App::new();
    let service = app.use_service("/dummy", echo_get()).unwrap();
    service.hooks(Hooks::new().before("get", async |ctx: &mut HookContext| {
        log(&ctx.app, "before");
        // The hook gets an empty query object to work with.
        assert!(ctx.params.query.is_empty());
        assert!(!ctx.params.is_external());
        Ok(())
    }));

    let result = service.get("test", Params::new()).await.unwrap();
    assert_eq!(result, json!({"id": "test", "params": {}}));
    assert_eq!(logged(&app), ["before"]);
}

// "allows to return new context in basic hooks (#2451)" —
// `@feathersjs/feathers`, `test/hooks/hooks.test.ts`
#[tokio::test]
async fn allows_to_return_new_context_in_basic_hooks_2451() {
    let app = App::new();
    let service = app.use_service("/dummy", echo_get()).unwrap();
    service.hooks(
        Hooks::new()
            .before(
                "get",
                (
                    // `return {...context, value: 'something'}`: replaces
                    // the params and the id wholesale.
                    async |ctx: &mut HookContext| {
                        ctx.params = params_with(json!({"value": "something"}));
                        ctx.id = Some(Id::from(99_i64));
                        Ok(())
                    },
                    async |ctx: &mut HookContext| {
                        assert_eq!(bag(&ctx.params).get("value"), Some(&json!("something")));
                        assert_eq!(ctx.id, Some(Id::from(99_i64)));
                        Ok(())
                    },
                ),
            )
            .after("get", async |ctx: &mut HookContext| {
                // What the method received, and `context.value` as the
                // after hook sees it.
                let received = ctx.result.take();
                ctx.result = Some(json!({
                    "value": bag_get(&ctx.params, "value"),
                    "received": received,
                }));
                Ok(())
            }),
    );

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(
        data,
        json!({
            "value": "something",
            "received": {"id": 99, "params": {"value": "something"}}
        })
    );
}
