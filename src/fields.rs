//! Dotted paths into JSON values (`"auth.email"`), as Feathers reads and
//! writes fields with lodash `get`/`set`/`omit`: the one path getter of
//! the crate, for settings (`Config::get`), hooks and strategies alike.

use serde_json::{Map, Value};

/// The value at `path` (segments separated by `.`), if every segment exists.
pub(crate) fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| current.as_object()?.get(segment))
}

/// [`get_path`] from an object's fields: the first segment names a key
/// of `map`.
pub(crate) fn get_in<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    let value = map.get(head)?;
    if rest.is_empty() {
        Some(value)
    } else {
        get_path(value, rest)
    }
}

/// Replaces the value at `path` when its parent object exists; true if it
/// was replaced. Missing parents are not created: the hooks only replace
/// fields that are present.
pub(crate) fn set_path(value: &mut Value, path: &str, new: Value) -> bool {
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
pub(crate) fn remove_path(value: &mut Value, path: &str) {
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
        let map = value.as_object().unwrap();
        assert_eq!(get_in(map, "auth.email"), Some(&json!("a@b")));
        assert_eq!(get_in(map, "n"), Some(&json!(1)));
        assert_eq!(get_in(map, "auth.missing"), None);
        assert!(set_path(&mut value, "auth.password", json!("h")));
        assert!(!set_path(&mut value, "nope.password", json!("h")));
        remove_path(&mut value, "auth.email");
        remove_path(&mut value, "n");
        assert_eq!(value, json!({"auth": {"password": "h"}}));
    }
}
