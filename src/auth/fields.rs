//! Dotted paths into JSON values (`"auth.email"`), as Feathers reads and
//! writes fields with lodash `get`/`set`/`omit`.

use serde_json::Value;

/// The value at `path` (segments separated by `.`), if every segment exists.
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| current.as_object()?.get(segment))
}

/// Replaces the value at `path` when its parent object exists; true if it
/// was replaced. Missing parents are not created: the hooks only replace
/// fields that are present.
pub fn set_path(value: &mut Value, path: &str, new: Value) -> bool {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (get_path_mut(value, parent), last),
        None => (Some(value), path),
    };
    match parent.and_then(Value::as_object_mut) {
        Some(object) => {
            object.insert(last.to_owned(), new);
            true
        }
        None => false,
    }
}

/// Removes the value at `path`, if present.
pub fn remove_path(value: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (get_path_mut(value, parent), last),
        None => (Some(value), path),
    };
    if let Some(object) = parent.and_then(Value::as_object_mut) {
        object.shift_remove(last);
    }
}

fn get_path_mut<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(value, |current, segment| {
        current.as_object_mut()?.get_mut(segment)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_read_write_and_remove() {
        let mut value = json!({"auth": {"email": "a@b", "password": "x"}, "n": 1});
        assert_eq!(get_path(&value, "auth.email"), Some(&json!("a@b")));
        assert_eq!(get_path(&value, "auth.missing"), None);
        assert_eq!(get_path(&value, "n.deeper"), None);
        assert!(set_path(&mut value, "auth.password", json!("h")));
        assert!(!set_path(&mut value, "nope.password", json!("h")));
        remove_path(&mut value, "auth.email");
        remove_path(&mut value, "n");
        assert_eq!(value, json!({"auth": {"password": "h"}}));
    }
}
