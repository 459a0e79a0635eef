//! What the engine needs to know about a context: where the result and the
//! error live, and which kind of hook is running.

use std::fmt;

/// The kind of hook currently running, mirrored into the context so that a
/// hook can ask "am I running as a before hook?".
///
/// The engine sets it while a regular hook runs and restores the previous
/// value when that hook succeeds; when a hook fails the value is left as it
/// was, so an error hook can see where the error came from (as `runHook` in
/// `@feathersjs/hooks`, `src/regular.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HookType {
    /// Outside any regular hook: around hooks and the method itself.
    #[default]
    Around,
    /// A before hook is running.
    Before,
    /// An after hook is running.
    After,
    /// An error hook is running.
    Error,
}

impl HookType {
    /// The lowercase name Feathers uses (`"around"`, `"before"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Around => "around",
            Self::Before => "before",
            Self::After => "after",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for HookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A context that hook chains can run over.
///
/// The engine never looks inside the context beyond these accessors, which
/// is what keeps it independent of services, HTTP or authentication.
pub trait Context: Send + 'static {
    /// The error type hooks and methods fail with.
    ///
    /// It is `Clone` because an error stays on the context (`context.error`)
    /// while it also travels up the chain as the `Err` value.
    type Error: Clone + Send + Sync + 'static;

    /// The hook type currently recorded on the context.
    fn hook_type(&self) -> HookType;

    /// Records the hook type that is about to run.
    fn set_hook_type(&mut self, hook_type: HookType);

    /// True when a result has been set, even to a null value. The method is
    /// skipped when this holds as the chain reaches it (as in
    /// `@feathersjs/hooks`, `src/hooks.ts`).
    fn has_result(&self) -> bool;

    /// Removes the result (an error block does this when it catches).
    fn clear_result(&mut self);

    /// The error an error block caught, if any.
    fn error(&self) -> Option<&Self::Error>;

    /// Replaces the error stored on the context.
    fn set_error(&mut self, error: Option<Self::Error>);

    /// Takes a snapshot of the context as it was when an error was first
    /// caught (Feathers' `context.original`).
    fn save_original(&mut self);
}
