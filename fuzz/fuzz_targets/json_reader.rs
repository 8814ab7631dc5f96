//! The strict JSON reader every JSON vendor adapter uses
//! (`leash::adapters::json::parse`): arbitrary bytes.
//!
//! Checks: never panics; whatever it accepts serde_json accepts too; every
//! number it returns is the exact text serde_json would read as a number;
//! no object it returns has a key twice.

#![no_main]

use leash::adapters::json::{parse, Json};
use libfuzzer_sys::fuzz_target;

fn check(value: &Json) {
    match value {
        Json::Number(text) => {
            assert!(serde_json::from_str::<serde_json::Number>(text).is_ok(), "{text}");
        }
        Json::Array(items) => items.iter().for_each(check),
        Json::Object(members) => {
            for (i, (key, value)) in members.iter().enumerate() {
                assert!(members[..i].iter().all(|(k, _)| k != key), "duplicate {key}");
                check(value);
            }
        }
        Json::Null | Json::Bool(_) | Json::String(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = parse(data) {
        assert!(serde_json::from_slice::<serde_json::Value>(data).is_ok());
        check(&value);
        // Pointers on anything never panic.
        for pointer in ["", "/a", "/0", "/a/b/0", "/~1", "/~0x", "/-"] {
            let _ = value.pointer(pointer);
        }
    }
});
