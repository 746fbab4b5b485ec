//! `validate` on arbitrary bytes: never panics, and calls JSON exactly what is JSON text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let inspection = hookscope::inspect(data);
    let is_json = std::str::from_utf8(data).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    assert_eq!(inspection.verdict.is_json, is_json);
    if !is_json {
        assert!(!inspection.verdict.is_valid());
    }
});
