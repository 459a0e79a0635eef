//! A minimal [`Context`] for examples and tests of the engine itself.
//!
//! Plume's real context lives in the `plume` crate; this one records what
//! ran so that ordering can be asserted.

use crate::{Context, HookType};

/// A context whose result is a number and whose error is a string.
#[derive(Debug, Clone, Default)]
pub struct TestContext {
    /// Free-form trace that hooks append to.
    pub log: Vec<String>,
    /// The result; `Some` skips the method.
    pub result: Option<i64>,
    /// The caught error, as error hooks see it.
    pub error: Option<String>,
    /// The hook type recorded by the engine.
    pub hook_type: HookType,
    /// The snapshot taken when an error was first caught.
    pub original: Option<Box<TestContext>>,
}

impl Context for TestContext {
    type Error = String;

    fn hook_type(&self) -> HookType {
        self.hook_type
    }
    fn set_hook_type(&mut self, hook_type: HookType) {
        self.hook_type = hook_type;
    }
    fn has_result(&self) -> bool {
        self.result.is_some()
    }
    fn clear_result(&mut self) {
        self.result = None;
    }
    fn error(&self) -> Option<&String> {
        self.error.as_ref()
    }
    fn set_error(&mut self, error: Option<String>) {
        self.error = error;
    }
    fn save_original(&mut self) {
        let mut snapshot = self.clone();
        snapshot.original = None;
        self.original = Some(Box::new(snapshot));
    }
}
