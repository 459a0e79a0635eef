//! Engine tests over the minimal `TestContext`: registration forms, order,
//! short-circuit and error semantics, independent of Plume's services.

use plume_hooks::test_support::TestContext;
use plume_hooks::{
    AroundHook, BoxFuture, Chain, Hook, HookMap, HookResult, HookType, Next, Terminal, around_fn,
    hook_fn,
};

type Ctx = TestContext;

/// The method: records itself and returns 1, or fails when asked to.
struct Method {
    fail: bool,
}

impl Terminal<Ctx> for Method {
    fn call<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, HookResult<Ctx>> {
        Box::pin(async move {
            ctx.log.push("method".to_owned());
            if self.fail {
                return Err("method failed".to_owned());
            }
            ctx.result = Some(1);
            Ok(())
        })
    }
}

const OK: Method = Method { fail: false };
const FAIL: Method = Method { fail: true };

/// A configurable struct hook: appends its label.
struct Log(&'static str);

impl Hook<Ctx> for Log {
    fn run<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, HookResult<Ctx>> {
        Box::pin(async move {
            ctx.log.push(self.0.to_owned());
            Ok(())
        })
    }
}

/// A struct around hook: labels entry and exit.
struct Wrap(&'static str);

impl AroundHook<Ctx> for Wrap {
    fn run<'a>(&'a self, ctx: &'a mut Ctx, next: Next<'a, Ctx>) -> BoxFuture<'a, HookResult<Ctx>> {
        Box::pin(async move {
            ctx.log.push(format!("{} in", self.0));
            next.run(ctx).await?;
            ctx.log.push(format!("{} out", self.0));
            Ok(())
        })
    }
}

/// Fails with its label.
struct Fail(&'static str);

impl Hook<Ctx> for Fail {
    fn run<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, HookResult<Ctx>> {
        Box::pin(async move {
            ctx.log.push(self.0.to_owned());
            Err(format!("{} failed", self.0))
        })
    }
}

async fn plain_fn(ctx: &mut Ctx) -> HookResult<Ctx> {
    ctx.log.push("plain fn".to_owned());
    Ok(())
}

async fn around_plain(ctx: &mut Ctx, next: Next<'_, Ctx>) -> HookResult<Ctx> {
    ctx.log.push("around fn in".to_owned());
    next.run(ctx).await?;
    ctx.log.push("around fn out".to_owned());
    Ok(())
}

async fn run(levels: &[&HookMap<Ctx>], method: &Method) -> (Ctx, HookResult<Ctx>) {
    let chain = Chain::compile(levels, "get");
    let mut ctx = Ctx::default();
    let outcome = chain.run(&mut ctx, method).await;
    (ctx, outcome)
}

#[tokio::test]
async fn every_registration_form_is_one_line() {
    let suffix = String::from("captured");
    let mut hooks = HookMap::new();
    hooks
        .before("get", plain_fn)
        .before("get", async |ctx: &mut Ctx| {
            ctx.log.push("async closure".to_owned());
            Ok(())
        })
        .before(
            "get",
            hook_fn(move |ctx: &mut Ctx| {
                let suffix = suffix.clone();
                Box::pin(async move {
                    ctx.log.push(suffix);
                    Ok(())
                })
            }),
        )
        .before("get", Log("struct"))
        .before("get", (Log("tuple a"), plain_fn, Log("tuple b")))
        .around("get", around_plain)
        .around(
            "get",
            around_fn(|ctx: &mut Ctx, next| {
                Box::pin(async move {
                    ctx.log.push("around closure".to_owned());
                    next.run(ctx).await
                })
            }),
        );
    let (ctx, outcome) = run(&[&hooks], &OK).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(
        ctx.log,
        [
            "around fn in",
            "around closure",
            "plain fn",
            "async closure",
            "captured",
            "struct",
            "tuple a",
            "plain fn",
            "tuple b",
            "method",
            "around fn out",
        ]
    );
}

#[tokio::test]
async fn several_methods_at_once_and_cumulative() {
    let mut hooks = HookMap::new();
    hooks.before(["get", "find"], Log("both"));
    hooks.before("get", Log("later"));
    hooks.before("find", Log("find only"));
    let (ctx, _) = run(&[&hooks], &OK).await;
    assert_eq!(ctx.log, ["both", "later", "method"]);
}

#[tokio::test]
async fn order_of_levels_and_kinds() {
    // Feathers' order (`@feathersjs/feathers`, `src/hooks.ts`); registration
    // order mixed on purpose.
    let mut app = HookMap::new();
    app.after("get", Log("app after get"))
        .after("all", Log("app after all"))
        .before("get", Log("app before get"))
        .before("all", Log("app before all"))
        .around("get", Wrap("app around get"))
        .around("all", Wrap("app around all"));
    let mut svc = HookMap::new();
    svc.after("get", Log("svc after get"))
        .after("all", Log("svc after all"))
        .before("get", Log("svc before get"))
        .before("all", Log("svc before all"))
        .around("get", Wrap("svc around get"))
        .around("all", Wrap("svc around all"));
    let (ctx, outcome) = run(&[&app, &svc], &OK).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(
        ctx.log,
        [
            "app around all in",
            "app around get in",
            "app before all",
            "app before get",
            "svc around all in",
            "svc around get in",
            "svc before all",
            "svc before get",
            "method",
            "svc after all",
            "svc after get",
            "svc around get out",
            "svc around all out",
            "app after all",
            "app after get",
            "app around get out",
            "app around all out",
        ]
    );
    assert_eq!(ctx.hook_type, HookType::Around);
}

#[tokio::test]
async fn result_skips_only_the_method() {
    // A result skips the method, not the other hooks (`@feathersjs/hooks`,
    // `src/hooks.ts`).
    let mut app = HookMap::new();
    app.before("all", async |ctx: &mut Ctx| {
        ctx.result = Some(7);
        Ok(())
    })
    .after("all", Log("app after"));
    let mut svc = HookMap::new();
    svc.before("get", Log("svc before"))
        .after("get", Log("svc after"));
    let (ctx, outcome) = run(&[&app, &svc], &OK).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(ctx.result, Some(7));
    assert_eq!(ctx.log, ["svc before", "svc after", "app after"]);
}

fn error_hooks(app: &mut HookMap<Ctx>, svc: &mut HookMap<Ctx>) {
    app.error("all", Log("app error all"))
        .error("get", Log("app error get"));
    svc.error("all", Log("svc error all"))
        .error("get", Log("svc error get"));
}

async fn errors_seen(place: &str) -> Vec<String> {
    let mut app = HookMap::new();
    let mut svc = HookMap::new();
    error_hooks(&mut app, &mut svc);
    match place {
        "app before all" => app.before("all", Fail("x")),
        "app before get" => app.before("get", Fail("x")),
        "svc around" => svc.around(
            "all",
            around_fn(|_ctx: &mut Ctx, _next| Box::pin(async { Err("around".to_owned()) })),
        ),
        "svc before all" => svc.before("all", Fail("x")),
        "svc before get" => svc.before("get", Fail("x")),
        "svc after all" => svc.after("all", Fail("x")),
        "svc after get" => svc.after("get", Fail("x")),
        "app after all" => app.after("all", Fail("x")),
        "app after get" => app.after("get", Fail("x")),
        _ => &mut app,
    };
    let method = if place == "method" { &FAIL } else { &OK };
    let (ctx, outcome) = run(&[&app, &svc], method).await;
    assert!(outcome.is_err(), "{place} should fail");
    ctx.log
        .into_iter()
        .filter(|l| l.contains("error"))
        .collect()
}

#[tokio::test]
async fn which_error_hooks_run_depends_on_where() {
    // Which error hooks run, for every place an error can be thrown
    // (`@feathersjs/feathers`, `src/hooks.ts`; `@feathersjs/hooks`,
    // `src/regular.ts`).
    let all4 = [
        "svc error get",
        "svc error all",
        "app error get",
        "app error all",
    ];
    let app2 = ["app error get", "app error all"];
    assert_eq!(errors_seen("app before all").await, ["app error all"]);
    assert_eq!(errors_seen("app before get").await, app2);
    assert_eq!(errors_seen("svc around").await, app2);
    assert_eq!(
        errors_seen("svc before all").await,
        ["svc error all", "app error get", "app error all"]
    );
    assert_eq!(errors_seen("svc before get").await, all4);
    assert_eq!(errors_seen("method").await, all4);
    assert_eq!(errors_seen("svc after all").await, all4);
    assert_eq!(errors_seen("svc after get").await, all4);
    assert_eq!(errors_seen("app after all").await, app2);
    assert_eq!(errors_seen("app after get").await, app2);
}

#[tokio::test]
async fn error_hook_replaces_recovers_and_keeps_original() {
    // `fromErrorHook` and `runHook` in `@feathersjs/hooks`, `src/regular.ts`.
    let mut svc = HookMap::new();
    svc.after("get", Fail("after"))
        .error("get", async |ctx: &mut Ctx| {
            ctx.error = Some("replaced".to_owned());
            Ok(())
        });
    let (ctx, outcome) = run(&[&svc], &OK).await;
    assert_eq!(outcome, Err("replaced".to_owned()));
    let original = ctx.original.as_deref().expect("original snapshot");
    assert_eq!(original.hook_type, HookType::After);
    assert_eq!(original.result, Some(1));
    assert_eq!(ctx.hook_type, HookType::After);

    let mut app = HookMap::new();
    app.after("all", Log("app after runs after recovery"))
        .error("all", Log("app error must not run"));
    let mut svc = HookMap::new();
    svc.error("get", async |ctx: &mut Ctx| {
        ctx.result = Some(0);
        Ok(())
    });
    let (ctx, outcome) = run(&[&app, &svc], &FAIL).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(ctx.result, Some(0));
    assert_eq!(ctx.error.as_deref(), Some("method failed"));
    assert_eq!(ctx.log, ["method", "app after runs after recovery"]);
}

#[tokio::test]
async fn throwing_error_hook_skips_the_rest_of_its_block() {
    let mut svc = HookMap::new();
    svc.error("get", (Fail("first"), Log("skipped")))
        .error("all", Log("outer sees it"));
    let (ctx, outcome) = run(&[&svc], &FAIL).await;
    assert_eq!(outcome, Err("first failed".to_owned()));
    assert_eq!(ctx.log, ["method", "first", "outer sees it"]);
    assert_eq!(ctx.error.as_deref(), Some("first failed"));
}

#[tokio::test]
async fn clearing_the_error_resolves_without_result() {
    let mut svc = HookMap::new();
    svc.error("get", async |ctx: &mut Ctx| {
        ctx.error = None;
        Ok(())
    });
    let (ctx, outcome) = run(&[&svc], &FAIL).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(ctx.result, None);
}

#[tokio::test]
async fn around_without_next_stops_the_chain() {
    // An around hook that never calls `next` stops the chain
    // (`@feathersjs/hooks`, `src/compose.ts`).
    let mut svc = HookMap::new();
    svc.around(
        "get",
        around_fn(|_ctx: &mut Ctx, _next| Box::pin(async { Ok(()) })),
    )
    .before("get", Log("never"));
    let (ctx, outcome) = run(&[&svc], &OK).await;
    assert_eq!(outcome, Ok(()));
    assert!(ctx.log.is_empty());
}

#[tokio::test]
async fn hooks_of_other_methods_do_not_run() {
    let mut svc = HookMap::new();
    svc.before("find", Log("find"))
        .after("create", Log("create"));
    let (ctx, _) = run(&[&svc], &OK).await;
    assert_eq!(ctx.log, ["method"]);
    assert!(Chain::compile(&[&svc], "get").is_empty());
}
