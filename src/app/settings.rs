//! Settings: values stored on the app by name (`app.set` and `app.get`),
//! with a version number that changes whenever one does.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::App;

impl App {
    /// Stores a setting (`app.set` in `@feathersjs/feathers`,
    /// `src/application.ts`).
    pub fn set(&self, key: &str, value: Value) -> &Self {
        if let Ok(mut settings) = self.inner.settings.write() {
            settings.insert(key.to_owned(), value);
        }
        self.inner.settings_version.fetch_add(1, Ordering::AcqRel);
        self
    }

    /// A number that changes whenever a setting changes: what code that
    /// derives something from the settings compares to know its copy is
    /// still current.
    pub(crate) fn settings_version(&self) -> u64 {
        self.inner.settings_version.load(Ordering::Acquire)
    }

    /// A copy of the setting `key`, if set.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.inner.settings.read().ok()?.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn app_settings() {
        // Feathers: `app.get`/`app.set` in `@feathersjs/feathers`,
        // `src/application.ts`.
        let app = App::new();
        assert_eq!(app.get("missing"), None);
        app.set("paginate", json!({"default": 10}));
        assert_eq!(app.get("paginate"), Some(json!({"default": 10})));
    }
}
