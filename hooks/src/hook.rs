//! The two hook traits and the blanket impls that let plain functions and
//! closures register without wrapping.

use std::future::Future;
use std::pin::Pin;

use crate::{Context, Next};

/// A boxed, `Send` future borrowing for `'a`; what hooks return once erased.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result every hook and method produces.
pub type HookResult<C> = Result<(), <C as Context>::Error>;

/// A regular hook: runs before, after, or on error of a method.
///
/// Implemented for:
/// - any `async fn(&mut C) -> Result<(), C::Error>`,
/// - non-capturing async closures `async |ctx: &mut C| { .. }`,
/// - closures returning a boxed future, via [`hook_fn`] (use that for
///   closures that capture state),
/// - structs with configuration, by implementing the trait directly.
pub trait Hook<C: Context>: Send + Sync + 'static {
    /// Runs the hook on the context.
    fn run<'a>(&'a self, ctx: &'a mut C) -> BoxFuture<'a, HookResult<C>>;
}

/// An around hook: middleware that decides whether and when the rest of the
/// chain runs by calling [`Next::run`].
///
/// Implemented for `async fn(&mut C, Next<'_, C>) -> Result<(), C::Error>`,
/// for closures via [`around_fn`], and for structs implementing it directly.
pub trait AroundHook<C: Context>: Send + Sync + 'static {
    /// Runs the hook; `next` continues the chain.
    fn run<'a>(&'a self, ctx: &'a mut C, next: Next<'a, C>) -> BoxFuture<'a, HookResult<C>>;
}

/// Helper trait that names the future a hook function returns for one
/// lifetime. It is what lets `async fn hook(ctx: &mut C)` satisfy a
/// higher-ranked bound; users never implement it.
pub trait HookFn<'a, C: Context>: Send + Sync + 'static {
    /// The future returned for a context borrowed for `'a`.
    type Fut: Future<Output = HookResult<C>> + Send + 'a;
    /// Calls the function.
    fn call(&self, ctx: &'a mut C) -> Self::Fut;
}

impl<'a, C, F, Fut> HookFn<'a, C> for F
where
    C: Context,
    F: Fn(&'a mut C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HookResult<C>> + Send + 'a,
{
    type Fut = Fut;
    fn call(&self, ctx: &'a mut C) -> Fut {
        self(ctx)
    }
}

impl<C, F> Hook<C> for F
where
    C: Context,
    F: for<'a> HookFn<'a, C>,
{
    fn run<'a>(&'a self, ctx: &'a mut C) -> BoxFuture<'a, HookResult<C>> {
        Box::pin(self.call(ctx))
    }
}

/// Helper trait for around hook functions, as [`HookFn`] is for regular ones.
pub trait AroundFn<'a, C: Context>: Send + Sync + 'static {
    /// The future returned for a context borrowed for `'a`.
    type Fut: Future<Output = HookResult<C>> + Send + 'a;
    /// Calls the function.
    fn call(&self, ctx: &'a mut C, next: Next<'a, C>) -> Self::Fut;
}

impl<'a, C, F, Fut> AroundFn<'a, C> for F
where
    C: Context,
    F: Fn(&'a mut C, Next<'a, C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HookResult<C>> + Send + 'a,
{
    type Fut = Fut;
    fn call(&self, ctx: &'a mut C, next: Next<'a, C>) -> Fut {
        self(ctx, next)
    }
}

impl<C, F> AroundHook<C> for F
where
    C: Context,
    F: for<'a> AroundFn<'a, C>,
{
    fn run<'a>(&'a self, ctx: &'a mut C, next: Next<'a, C>) -> BoxFuture<'a, HookResult<C>> {
        Box::pin(self.call(ctx, next))
    }
}

/// Types a closure as a hook.
///
/// A capturing closure cannot name the lifetime of the future it returns,
/// so it returns a boxed one; this function only pins down that signature
/// for type inference and hands the closure back, which is then a [`Hook`]
/// like any function:
///
/// ```
/// # use plume_hooks::{hook_fn, Hook};
/// # use plume_hooks::test_support::TestContext;
/// let label = String::from("audited");
/// let hook = hook_fn(move |ctx: &mut TestContext| {
///     let label = label.clone();
///     Box::pin(async move {
///         ctx.log.push(label);
///         Ok(())
///     })
/// });
/// # fn assert_hook<H: Hook<TestContext>>(_: &H) {}
/// # assert_hook(&hook);
/// ```
pub fn hook_fn<C, F>(f: F) -> F
where
    C: Context,
    F: for<'a> Fn(&'a mut C) -> BoxFuture<'a, HookResult<C>> + Send + Sync + 'static,
{
    f
}

/// Types a closure as an around hook; the around counterpart of [`hook_fn`].
pub fn around_fn<C, F>(f: F) -> F
where
    C: Context,
    F: for<'a> Fn(&'a mut C, Next<'a, C>) -> BoxFuture<'a, HookResult<C>> + Send + Sync + 'static,
{
    f
}
