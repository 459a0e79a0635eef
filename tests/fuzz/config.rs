//! Configuration folders with arbitrary files and variables: a loaded
//! configuration or a GeneralError that says what is wrong.

use std::collections::HashMap;

use plume::config::Config;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use super::{cases, json_map, json_value, word};
use crate::cli::TempDir;

/// A file's content: JSON (often an object), broken JSON or any bytes.
fn file() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        3 => json_map().prop_map(|m| Some(Value::Object(m).to_string().into_bytes())),
        1 => json_value().prop_map(|v| Some(v.to_string().into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
    ]
}

/// A variable mapping: keys to names, to `{"__name", "__format"}`, or
/// nested, with formats known and unknown.
fn mapping() -> impl Strategy<Value = Option<Vec<u8>>> {
    let spec = prop_oneof![
        prop::sample::select(&["A", "B", "C"][..]).prop_map(|n| json!(n)),
        (
            prop::sample::select(&["A", "B", "C"][..]),
            prop::sample::select(&["number", "boolean", "json", "string", "date", ""][..])
        )
            .prop_map(|(name, format)| json!({"__name": name, "__format": format})),
        json_value(),
    ];
    let nested = spec.prop_recursive(3, 12, 4, |inner| {
        prop::collection::vec((word(), inner), 0..4)
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
    });
    prop_oneof![
        1 => Just(None),
        3 => prop::collection::vec((word(), nested), 0..5).prop_map(|pairs| {
            Some(Value::Object(pairs.into_iter().collect()).to_string().into_bytes())
        }),
    ]
}

#[test]
fn config_folders_load_or_say_what_is_wrong() {
    let dir = TempDir::new("fuzz-config");
    let mut runner = TestRunner::new(cases(256));
    let strategy = (
        file(),
        file(),
        mapping(),
        prop_oneof![Just("production".to_owned()), word()],
        prop::collection::hash_map(
            prop::sample::select(&["A", "B", "C"][..]).prop_map(str::to_owned),
            prop_oneof![word(), json_value().prop_map(|v| v.to_string())],
            0..3,
        ),
    );
    runner
        .run(&strategy, |(default, overlay, mapping, env, vars)| {
            let files = [
                ("default.json", default),
                ("production.json", overlay.clone()),
                ("test.json", overlay),
                ("custom-environment-variables.json", mapping),
            ];
            for (name, content) in &files {
                let path = dir.path().join(name);
                match content {
                    Some(bytes) => std::fs::write(&path, bytes).unwrap(),
                    None => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            let vars: HashMap<String, String> = vars;
            match Config::load_with(dir.path(), &env, |name| vars.get(name).cloned()) {
                Ok(config) => {
                    let _ = config.get("authentication.secret");
                    if let Err(error) = config.check_secret("authentication") {
                        prop_assert!(error.message().contains("authentication.secret"));
                    }
                    if let Err(error) = config.with_secret("authentication", ":memory:") {
                        prop_assert!(error.message().contains("authentication"));
                    }
                }
                Err(error) => {
                    prop_assert_eq!(error.code(), 500);
                    prop_assert!(!error.message().is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}
