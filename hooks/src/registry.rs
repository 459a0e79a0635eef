//! Registration: which hooks one level (an app, a service) has, per kind and
//! per method.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::{AroundHook, Context, Hook};

/// A regular hook behind a shared pointer, as stored in a registry.
pub type BoxHook<C> = Arc<dyn Hook<C>>;

/// An around hook behind a shared pointer, as stored in a registry.
pub type BoxAroundHook<C> = Arc<dyn AroundHook<C>>;

/// Which methods a registration applies to.
///
/// Built from a method name (`"create"`), a list of names
/// (`["create", "patch"]`) or [`Methods::All`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Methods {
    /// Every method, including custom methods and ones added later. `all`
    /// hooks always run before the method's own hooks (as in
    /// `@feathersjs/feathers`, `src/hooks.ts`).
    All,
    /// The named methods.
    Only(Vec<String>),
}

impl From<&str> for Methods {
    fn from(name: &str) -> Self {
        if name == "all" {
            Self::All
        } else {
            Self::Only(vec![name.to_owned()])
        }
    }
}

impl From<String> for Methods {
    fn from(name: String) -> Self {
        Self::from(name.as_str())
    }
}

impl<const N: usize> From<[&str; N]> for Methods {
    fn from(names: [&str; N]) -> Self {
        Self::from(&names[..])
    }
}

impl From<&[&str]> for Methods {
    fn from(names: &[&str]) -> Self {
        if names.contains(&"all") {
            Self::All
        } else {
            Self::Only(names.iter().map(|n| (*n).to_owned()).collect())
        }
    }
}

/// Something that turns into a list of regular hooks: one hook, a tuple of
/// hooks of different types, an array or a `Vec` of boxed hooks.
///
/// The `Marker` parameter only keeps the impls apart; callers never name it.
pub trait IntoHooks<C: Context, Marker> {
    /// The hooks, in order.
    fn into_hooks(self) -> Vec<BoxHook<C>>;
}

/// Marker for [`IntoHooks`] on a single hook.
#[derive(Debug)]
pub enum One {}
/// Marker for [`IntoHooks`] on a `Vec` or array of boxed hooks.
#[derive(Debug)]
pub enum Many {}

impl<C: Context, H: Hook<C>> IntoHooks<C, One> for H {
    fn into_hooks(self) -> Vec<BoxHook<C>> {
        vec![Arc::new(self)]
    }
}

impl<C: Context> IntoHooks<C, Many> for Vec<BoxHook<C>> {
    fn into_hooks(self) -> Vec<BoxHook<C>> {
        self
    }
}

/// Something that turns into a list of around hooks; see [`IntoHooks`].
pub trait IntoAroundHooks<C: Context, Marker> {
    /// The hooks, in order.
    fn into_around_hooks(self) -> Vec<BoxAroundHook<C>>;
}

impl<C: Context, H: AroundHook<C>> IntoAroundHooks<C, One> for H {
    fn into_around_hooks(self) -> Vec<BoxAroundHook<C>> {
        vec![Arc::new(self)]
    }
}

impl<C: Context> IntoAroundHooks<C, Many> for Vec<BoxAroundHook<C>> {
    fn into_around_hooks(self) -> Vec<BoxAroundHook<C>> {
        self
    }
}

macro_rules! tuple_hooks {
    ($marker:ident; $($name:ident),+) => {
        /// Marker for [`IntoHooks`] on a tuple.
        #[derive(Debug)]
        pub enum $marker {}

        impl<C: Context, $($name: Hook<C>),+> IntoHooks<C, $marker> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_hooks(self) -> Vec<BoxHook<C>> {
                let ($($name,)+) = self;
                vec![$(Arc::new($name) as BoxHook<C>),+]
            }
        }

        impl<C: Context, $($name: AroundHook<C>),+> IntoAroundHooks<C, $marker> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_around_hooks(self) -> Vec<BoxAroundHook<C>> {
                let ($($name,)+) = self;
                vec![$(Arc::new($name) as BoxAroundHook<C>),+]
            }
        }
    };
}

tuple_hooks!(Tuple1; A);
tuple_hooks!(Tuple2; A, B);
tuple_hooks!(Tuple3; A, B, C2);
tuple_hooks!(Tuple4; A, B, C2, D);
tuple_hooks!(Tuple5; A, B, C2, D, E);
tuple_hooks!(Tuple6; A, B, C2, D, E, F);
tuple_hooks!(Tuple7; A, B, C2, D, E, F, G);
tuple_hooks!(Tuple8; A, B, C2, D, E, F, G, H);

/// Hooks of one kind: the `all` list and one list per method.
struct Lists<T> {
    all: Vec<T>,
    by_method: HashMap<String, Vec<T>>,
}

impl<T> Default for Lists<T> {
    fn default() -> Self {
        Self {
            all: Vec::new(),
            by_method: HashMap::new(),
        }
    }
}

impl<T: Clone> Lists<T> {
    fn add(&mut self, methods: Methods, hooks: Vec<T>) {
        match methods {
            Methods::All => self.all.extend(hooks),
            Methods::Only(names) => {
                for name in names {
                    self.by_method
                        .entry(name)
                        .or_default()
                        .extend(hooks.iter().cloned());
                }
            }
        }
    }

    fn method(&self, method: &str) -> &[T] {
        self.by_method.get(method).map_or(&[], Vec::as_slice)
    }

    fn len(&self) -> usize {
        self.all.len() + self.by_method.values().map(Vec::len).sum::<usize>()
    }
}

/// The hooks registered at one level: an application, or one service.
///
/// Registration is cumulative: every call appends (as in
/// `@feathersjs/feathers`, `src/hooks.ts`).
pub struct HookMap<C: Context> {
    around: Lists<BoxAroundHook<C>>,
    before: Lists<BoxHook<C>>,
    after: Lists<BoxHook<C>>,
    error: Lists<BoxHook<C>>,
}

impl<C: Context> Default for HookMap<C> {
    fn default() -> Self {
        Self {
            around: Lists::default(),
            before: Lists::default(),
            after: Lists::default(),
            error: Lists::default(),
        }
    }
}

impl<C: Context> fmt::Debug for HookMap<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookMap")
            .field("around", &self.around.len())
            .field("before", &self.before.len())
            .field("after", &self.after.len())
            .field("error", &self.error.len())
            .finish()
    }
}

impl<C: Context> HookMap<C> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds around hooks for the given methods.
    pub fn around<M>(
        &mut self,
        methods: impl Into<Methods>,
        hooks: impl IntoAroundHooks<C, M>,
    ) -> &mut Self {
        self.around.add(methods.into(), hooks.into_around_hooks());
        self
    }

    /// Adds before hooks for the given methods.
    pub fn before<M>(
        &mut self,
        methods: impl Into<Methods>,
        hooks: impl IntoHooks<C, M>,
    ) -> &mut Self {
        self.before.add(methods.into(), hooks.into_hooks());
        self
    }

    /// Adds after hooks for the given methods.
    pub fn after<M>(
        &mut self,
        methods: impl Into<Methods>,
        hooks: impl IntoHooks<C, M>,
    ) -> &mut Self {
        self.after.add(methods.into(), hooks.into_hooks());
        self
    }

    /// Adds error hooks for the given methods.
    pub fn error<M>(
        &mut self,
        methods: impl Into<Methods>,
        hooks: impl IntoHooks<C, M>,
    ) -> &mut Self {
        self.error.add(methods.into(), hooks.into_hooks());
        self
    }

    /// Appends everything registered in `other`, keeping its order.
    pub fn extend(&mut self, other: &Self) {
        fn merge<T: Clone>(into: &mut Lists<T>, from: &Lists<T>) {
            into.all.extend(from.all.iter().cloned());
            for (name, hooks) in &from.by_method {
                into.by_method
                    .entry(name.clone())
                    .or_default()
                    .extend(hooks.iter().cloned());
            }
        }
        merge(&mut self.around, &other.around);
        merge(&mut self.before, &other.before);
        merge(&mut self.after, &other.after);
        merge(&mut self.error, &other.error);
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.around.len() + self.before.len() + self.after.len() + self.error.len() == 0
    }

    pub(crate) fn around_all(&self) -> &[BoxAroundHook<C>] {
        &self.around.all
    }
    pub(crate) fn around_method(&self, method: &str) -> &[BoxAroundHook<C>] {
        self.around.method(method)
    }
    pub(crate) fn before_all(&self) -> &[BoxHook<C>] {
        &self.before.all
    }
    pub(crate) fn before_method(&self, method: &str) -> &[BoxHook<C>] {
        self.before.method(method)
    }
    pub(crate) fn after_all(&self) -> &[BoxHook<C>] {
        &self.after.all
    }
    pub(crate) fn after_method(&self, method: &str) -> &[BoxHook<C>] {
        self.after.method(method)
    }
    pub(crate) fn error_all(&self) -> &[BoxHook<C>] {
        &self.error.all
    }
    pub(crate) fn error_method(&self, method: &str) -> &[BoxHook<C>] {
        self.error.method(method)
    }
}
