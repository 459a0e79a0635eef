//! Port of `packages/feathers/test/hooks/before.test.ts` ("`before` hooks").

use std::sync::Arc;

use plume::{App, Error, Hook, HookContext, HookType, Hooks, Id, Params, Service, hook_fn};
use serde_json::{Value, json};

use super::support::{
    Fail, FnService, Log, Numbered, assert_rejects, bag, bag_push, bag_set, data_obj, is_this,
    later, log, logged, params_with,
};

/// `get` that requires `params.ran`, and a `remove` that must not run.
fn get_requiring_ran() -> FnService {
    FnService::new()
        .on("get", |call| async move {
            assert_eq!(
                bag(&call.params).get("ran"),
                Some(&json!(true)),
                "Ran through promise hook"
            );
            let id = call.id();
            Ok(json!({"id": id, "description": format!("You have to do {}", id.as_str().unwrap_or_default())}))
        })
        .on("remove", |_call| async move {
            Err(Error::general("Should never get here"))
        })
}

// ".before hooks can return a promise" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn before_hooks_can_return_a_promise() {
    let app = App::new();
    let service = app.use_service("/dummy", get_requiring_ran()).unwrap();
    service.hooks(
        Hooks::new()
            .before("get", async |ctx: &mut HookContext| {
                // Settles only after another task ran: the method must wait.
                let ran = later(true).await;
                bag_set(&mut ctx.params, "ran", json!(ran));
                Ok(())
            })
            .before("remove", async |_ctx: &mut HookContext| {
                Err(later(Error::general("This did not work")).await)
            }),
    );

    let data = service.get("dishes", Params::new()).await.unwrap();
    assert_eq!(
        data,
        json!({"id": "dishes", "description": "You have to do dishes"})
    );
    let outcome = service.remove(Some(Id::from(10_i64)), Params::new()).await;
    assert_rejects(outcome, "This did not work");
}

// ".before hooks do not need to return anything" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn before_hooks_do_not_need_to_return_anything() {
    let app = App::new();
    let service = app.use_service("/dummy", get_requiring_ran()).unwrap();
    service.hooks(
        Hooks::new()
            .before("get", async |ctx: &mut HookContext| {
                bag_set(&mut ctx.params, "ran", json!(true));
                Ok(())
            })
            .before("remove", Fail("This did not work")),
    );

    let data = service.get("dishes", Params::new()).await.unwrap();
    assert_eq!(
        data,
        json!({"id": "dishes", "description": "You have to do dishes"})
    );
    let outcome = service.remove(Some(Id::from(10_i64)), Params::new()).await;
    assert_rejects(outcome, "This did not work");
}

// ".before hooks can set context.result which will skip service method" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn before_hooks_can_set_context_result_which_will_skip_service_method() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |_call| async move {
                Err(Error::general("This should never run"))
            }),
        )
        .unwrap();
    service.hooks(Hooks::new().before("get", async |ctx: &mut HookContext| {
        let id = ctx.id.as_ref().map(Id::to_value);
        ctx.result = Some(json!({"id": id, "message": "Set from hook"}));
        Ok(())
    }));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "message": "Set from hook"}));
}

/// `create(data, params)` that checks it got the modified data and params,
/// then returns the data.
fn create_expecting(expected_data: Value, expected_params: Value) -> FnService {
    FnService::new().on("create", move |call| {
        let (expected_data, expected_params) = (expected_data.clone(), expected_params.clone());
        async move {
            assert_eq!(call.data(), expected_data, "Data modified");
            assert_eq!(call.params(), expected_params, "Params modified");
            Ok(call.data())
        }
    })
}

// "gets mixed into a service and modifies data" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn gets_mixed_into_a_service_and_modifies_data() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            create_expecting(
                json!({"some": "thing", "modified": "data"}),
                json!({"modified": "params"}),
            ),
        )
        .unwrap();
    service.hooks(
        Hooks::new().before("create", async |ctx: &mut HookContext| {
            assert_eq!(ctx.hook_type, HookType::Before);
            data_obj(ctx).insert("modified".to_owned(), json!("data"));
            bag_set(&mut ctx.params, "modified", json!("params"));
            Ok(())
        }),
    );

    let data = service
        .create(json!({"some": "thing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"some": "thing", "modified": "data"}),
        "Data got modified"
    );
}

// "contains the app object at context.app" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn contains_the_app_object_at_context_app() {
    let app = App::new();
    let service = app
        .use_service(
            "/some-service",
            FnService::new().on("create", |call| async move { Ok(call.data()) }),
        )
        .unwrap();
    service.hooks(
        Hooks::new().before("create", async |ctx: &mut HookContext| {
            // `context.app` is the app this service is registered in.
            let app_present = ctx.app.service(&ctx.path).is_ok();
            log(&ctx.app, "before create");
            data_obj(ctx).insert("appPresent".to_owned(), json!(app_present));
            Ok(())
        }),
    );

    let data = service
        .create(json!({"some": "thing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"some": "thing", "appPresent": true}),
        "App object was present"
    );
    assert_eq!(logged(&app), ["before create"]);
}

// "passes errors" — `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn passes_errors() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("update", |_call| async move {
                Err(Error::general("Never should be called"))
            }),
        )
        .unwrap();
    service.hooks(
        Hooks::new().before("update", async |_ctx: &mut HookContext| {
            Err(Error::general("You are not allowed to update"))
        }),
    );

    let outcome = service
        .update(Some(Id::from(1_i64)), json!({}), Params::new())
        .await;
    assert_rejects(outcome, "You are not allowed to update");
}

// "calling back with no arguments uses the old ones" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn calling_back_with_no_arguments_uses_the_old_ones() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("remove", |call| async move {
                assert_eq!(call.id, Some(Id::from(1_i64)), "Got id");
                assert_eq!(call.params(), json!({"my": "param"}));
                Ok(json!({"id": call.id()}))
            }),
        )
        .unwrap();
    // A hook that changes nothing.
    service.hooks(Hooks::new().before("remove", Log("remove hook")));

    let data = service
        .remove(Some(Id::from(1_i64)), params_with(json!({"my": "param"})))
        .await
        .unwrap();
    assert_eq!(data, json!({"id": 1}));
    assert_eq!(logged(&app), ["remove hook"]);
}

// "adds .hooks() and chains multiple hooks for the same method" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn adds_hooks_and_chains_multiple_hooks_for_the_same_method() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            create_expecting(
                json!({"some": "thing", "modified": "second data"}),
                json!({"modified": "params"}),
            ),
        )
        .unwrap();
    service.hooks(
        Hooks::new().before("create", async |ctx: &mut HookContext| {
            bag_set(&mut ctx.params, "modified", json!("params"));
            Ok(())
        }),
    );
    service.hooks(
        Hooks::new().before("create", async |ctx: &mut HookContext| {
            data_obj(ctx).insert("modified".to_owned(), json!("second data"));
            Ok(())
        }),
    );

    let data = service
        .create(json!({"some": "thing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(data, json!({"some": "thing", "modified": "second data"}));
}

// "chains multiple before hooks using array syntax" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn chains_multiple_before_hooks_using_array_syntax() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            create_expecting(
                json!({"some": "thing", "modified": "second data"}),
                json!({"modified": "params"}),
            ),
        )
        .unwrap();
    let array: Vec<Arc<dyn Hook<HookContext>>> = vec![
        Arc::new(async |ctx: &mut HookContext| {
            bag_set(&mut ctx.params, "modified", json!("params"));
            Ok(())
        }),
        Arc::new(async |ctx: &mut HookContext| {
            data_obj(ctx).insert("modified".to_owned(), json!("second data"));
            Ok(())
        }),
    ];
    service.hooks(Hooks::new().before("create", array));

    let data = service
        .create(json!({"some": "thing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(data, json!({"some": "thing", "modified": "second data"}));
}

// ".before hooks run in the correct order (#13)" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn before_hooks_run_in_the_correct_order_13() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |call| async move {
                assert_eq!(
                    bag(&call.params).get("items"),
                    Some(&json!(["first", "second", "third"]))
                );
                Ok(json!({"id": call.id(), "items": []}))
            }),
        )
        .unwrap();
    service.hooks(Hooks::new().before("get", async |ctx: &mut HookContext| {
        bag_set(&mut ctx.params, "items", json!(["first"]));
        Ok(())
    }));
    service.hooks(Hooks::new().before(
        "get",
        (
            async |ctx: &mut HookContext| {
                bag_push(&mut ctx.params, "items", json!("second"));
                Ok(())
            },
            async |ctx: &mut HookContext| {
                bag_push(&mut ctx.params, "items", json!("third"));
                Ok(())
            },
        ),
    ));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "items": []}));
}

// "before all hooks (#11)" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn before_all_hooks_11() {
    let check = |params: &Params| {
        let bag = bag(params);
        assert_eq!(bag.get("beforeAllObject"), Some(&json!(true)));
        assert_eq!(bag.get("beforeAllMethodArray"), Some(&json!(true)));
    };
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new()
                .on("get", move |call| async move {
                    check(&call.params);
                    Ok(json!({"id": call.id(), "items": []}))
                })
                .on("find", move |call| async move {
                    check(&call.params);
                    Ok(json!([]))
                }),
        )
        .unwrap();
    // `before: { all: hook }`
    service.hooks(Hooks::new().before("all", async |ctx: &mut HookContext| {
        bag_set(&mut ctx.params, "beforeAllObject", json!(true));
        Ok(())
    }));
    // `before: [hook]`: an array under a type is `all`.
    let array: Vec<Arc<dyn Hook<HookContext>>> = vec![Arc::new(async |ctx: &mut HookContext| {
        bag_set(&mut ctx.params, "beforeAllMethodArray", json!(true));
        Ok(())
    })];
    service.hooks(Hooks::new().before(plume::Methods::All, array));

    assert_eq!(service.find(Params::new()).await.unwrap(), json!([]));
    assert_eq!(
        service.get(1_i64, Params::new()).await.unwrap(),
        json!({"id": 1, "items": []})
    );
}

// "before hooks have service as context and keep it in service method (#17)" —
// `@feathersjs/feathers`, `test/hooks/before.test.ts`
#[tokio::test]
async fn before_hooks_have_service_as_context_and_keep_it_in_service_method_17() {
    let app = App::new();
    let dummy = Arc::new(Numbered { number: 42 });
    let registered: Arc<dyn Service> = dummy.clone();
    let service = app
        .use_arc_service("/dummy", Arc::clone(&registered), Default::default())
        .unwrap();
    service.hooks(Hooks::new().before(
        "get",
        hook_fn(move |ctx: &mut HookContext| {
            let (dummy, registered) = (Arc::clone(&dummy), Arc::clone(&registered));
            Box::pin(async move {
                // `this` is the service the call is on.
                assert!(is_this(ctx, &registered));
                bag_set(&mut ctx.params, "test", json!(dummy.number + 2));
                Ok(())
            })
        }),
    ));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "number": 42, "test": 44}));
}
