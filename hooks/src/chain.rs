//! A compiled hook chain for one method, and running it.
//!
//! Regular hooks are compiled onto a flat list of layers so that a call costs
//! one boxed future per layer, not per hook: a layer of ten before hooks runs
//! them in a loop.

use std::fmt;
use std::sync::Arc;

use crate::registry::{BoxAroundHook, BoxHook, HookMap};
use crate::{BoxFuture, Context, HookResult, HookType};

/// The innermost step of a chain: the method the hooks wrap.
///
/// It runs only when no hook has set a result (as in `@feathersjs/hooks`,
/// `src/hooks.ts`).
pub trait Terminal<C: Context>: Send + Sync {
    /// Runs the method, storing its result on the context.
    fn call<'a>(&'a self, ctx: &'a mut C) -> BoxFuture<'a, HookResult<C>>;
}

enum Layer<C: Context> {
    Around(BoxAroundHook<C>),
    Before(Vec<BoxHook<C>>),
    After(Vec<BoxHook<C>>),
    /// Catches errors from everything inside it and runs its error hooks.
    Error(Vec<BoxHook<C>>),
}

impl<C: Context> Clone for Layer<C> {
    fn clone(&self) -> Self {
        match self {
            Self::Around(h) => Self::Around(Arc::clone(h)),
            Self::Before(h) => Self::Before(h.clone()),
            Self::After(h) => Self::After(h.clone()),
            Self::Error(h) => Self::Error(h.clone()),
        }
    }
}

/// The hooks of every level for one method, in the order they run.
///
/// Built by [`Chain::compile`] from the registries of each level, outermost
/// (the application) first. Compiling is cheap but not free, so callers
/// cache chains and recompile when a registry changes.
pub struct Chain<C: Context> {
    layers: Arc<[Layer<C>]>,
}

impl<C: Context> Clone for Chain<C> {
    fn clone(&self) -> Self {
        Self {
            layers: Arc::clone(&self.layers),
        }
    }
}

impl<C: Context> fmt::Debug for Chain<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self
            .layers
            .iter()
            .map(|layer| match layer {
                Layer::Around(_) => "around".to_owned(),
                Layer::Before(h) => format!("before x{}", h.len()),
                Layer::After(h) => format!("after x{}", h.len()),
                Layer::Error(h) => format!("error x{}", h.len()),
            })
            .collect();
        f.debug_struct("Chain").field("layers", &kinds).finish()
    }
}

impl<C: Context> Chain<C> {
    /// Compiles the chain for `method` from the registries of each level,
    /// outermost first.
    ///
    /// For each level the order is Feathers' (`collectHooks` and
    /// `collectMiddleware` in `@feathersjs/feathers`, `src/hooks.ts`): around
    /// `all`, around for the method, then the regular hooks as three nested
    /// blocks: `error.all` around `before.all`; `error[m]` around
    /// `before[m]`, the inner levels and `after[m]`; and innermost
    /// `after.all`. So `all` hooks run before the method's own both before
    /// and after the method, and an error is seen by the error hooks of the
    /// blocks it was thrown in (each block as `collect` in
    /// `@feathersjs/hooks`, `src/regular.ts`).
    pub fn compile(levels: &[&HookMap<C>], method: &str) -> Self {
        let mut layers = Vec::new();
        for level in levels {
            layers.extend(level.around_all().iter().cloned().map(Layer::Around));
            layers.extend(
                level
                    .around_method(method)
                    .iter()
                    .cloned()
                    .map(Layer::Around),
            );
            push_nonempty(&mut layers, Layer::Error, level.error_all());
            push_nonempty(&mut layers, Layer::Before, level.before_all());
            push_nonempty(&mut layers, Layer::Error, level.error_method(method));
            push_nonempty(&mut layers, Layer::Before, level.before_method(method));
            push_nonempty(&mut layers, Layer::After, level.after_method(method));
            push_nonempty(&mut layers, Layer::After, level.after_all());
        }
        Self {
            layers: layers.into(),
        }
    }

    /// True when no hook is registered for this method at any level.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Runs the chain around `method`.
    pub async fn run(&self, ctx: &mut C, method: &dyn Terminal<C>) -> HookResult<C> {
        run_from(&self.layers, ctx, method).await
    }
}

fn push_nonempty<C: Context>(
    layers: &mut Vec<Layer<C>>,
    make: fn(Vec<BoxHook<C>>) -> Layer<C>,
    hooks: &[BoxHook<C>],
) {
    if !hooks.is_empty() {
        layers.push(make(hooks.to_vec()));
    }
}

/// The rest of the chain, handed to an around hook.
///
/// `Next` is consumed by [`Next::run`], so continuing the chain twice is a
/// compile error rather than Feathers' run-time "next() called multiple
/// times":
///
/// ```compile_fail,E0382
/// # use plume_hooks::{Next, HookResult};
/// # use plume_hooks::test_support::TestContext;
/// async fn twice(ctx: &mut TestContext, next: Next<'_, TestContext>) -> HookResult<TestContext> {
///     next.run(ctx).await?;
///     next.run(ctx).await
/// }
/// ```
pub struct Next<'a, C: Context> {
    rest: &'a [Layer<C>],
    method: &'a dyn Terminal<C>,
}

impl<C: Context> fmt::Debug for Next<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("remaining_layers", &self.rest.len())
            .finish()
    }
}

impl<'a, C: Context> Next<'a, C> {
    /// Runs the rest of the chain, including the method unless a result is
    /// already set.
    pub async fn run(self, ctx: &mut C) -> HookResult<C> {
        run_from(self.rest, ctx, self.method).await
    }
}

async fn run_regular<C: Context>(hook: &BoxHook<C>, kind: HookType, ctx: &mut C) -> HookResult<C> {
    let previous = ctx.hook_type();
    ctx.set_hook_type(kind);
    hook.run(ctx).await?;
    // Restored only on success, so an error hook can still see where the
    // error was raised (as `runHook` in `@feathersjs/hooks`, `src/regular.ts`).
    ctx.set_hook_type(previous);
    Ok(())
}

fn run_from<'a, C: Context>(
    mut layers: &'a [Layer<C>],
    ctx: &'a mut C,
    method: &'a dyn Terminal<C>,
) -> BoxFuture<'a, HookResult<C>> {
    Box::pin(async move {
        // Before layers need nothing after the rest has run, so they are
        // handled in this loop instead of by recursion.
        loop {
            match layers.split_first() {
                None => {
                    if ctx.has_result() {
                        return Ok(());
                    }
                    return method.call(ctx).await;
                }
                Some((Layer::Before(hooks), rest)) => {
                    for hook in hooks {
                        run_regular(hook, HookType::Before, ctx).await?;
                    }
                    layers = rest;
                }
                Some((Layer::Around(hook), rest)) => {
                    return hook.run(ctx, Next { rest, method }).await;
                }
                Some((Layer::After(hooks), rest)) => {
                    run_from(rest, ctx, method).await?;
                    for hook in hooks {
                        run_regular(hook, HookType::After, ctx).await?;
                    }
                    return Ok(());
                }
                Some((Layer::Error(hooks), rest)) => {
                    return match run_from(rest, ctx, method).await {
                        Ok(()) => Ok(()),
                        Err(error) => handle_error(hooks, ctx, error).await,
                    };
                }
            }
        }
    })
}

/// One error block catching `error` (`fromErrorHook` in `@feathersjs/hooks`,
/// `src/regular.ts`).
async fn handle_error<C: Context>(
    hooks: &[BoxHook<C>],
    ctx: &mut C,
    error: C::Error,
) -> HookResult<C> {
    // Errors are values, so "is this the error already on the context" is
    // approximated by "an error is already recorded and nothing recovered
    // since": the snapshot then stays the one taken where the error began.
    if ctx.error().is_none() || ctx.has_result() {
        ctx.save_original();
    }
    ctx.set_error(Some(error));
    ctx.clear_result();
    for hook in hooks {
        if let Err(thrown) = run_regular(hook, HookType::Error, ctx).await {
            ctx.set_error(Some(thrown.clone()));
            return Err(thrown);
        }
    }
    match ctx.error() {
        Some(error) if !ctx.has_result() => Err(error.clone()),
        _ => Ok(()),
    }
}
