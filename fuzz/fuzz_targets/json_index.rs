//! The JSON member index (src/extract/json_index.rs) against serde_json as the oracle: for
//! every object serde_json accepts, the index must exist and every member must read exactly
//! as serde_json's tree has it (the last of repeated keys); for anything the index reads, what
//! it returns is what serde_json would say the member is. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use userhook::extract::json_index::ObjectIndex;

fuzz_target!(|data: &[u8]| {
    let index = ObjectIndex::build(data);
    let oracle = serde_json::from_slice::<Value>(data);
    match (&oracle, &index) {
        (Ok(Value::Object(map)), Some(index)) => {
            for (key, value) in map {
                assert_eq!(index.member(data, key).as_ref(), Some(value), "member {key:?}");
            }
        }
        (Ok(Value::Object(_)), None) => panic!("serde_json reads an object the index refuses"),
        (Ok(_), Some(_)) => panic!("the index read a non-object"),
        _ => {}
    }
    // Keys nobody wrote are absent.
    if let Some(index) = &index {
        if let Ok(Value::Object(map)) = &oracle {
            if !map.contains_key("\u{0}absent") {
                assert!(index.member(data, "\u{0}absent").is_none());
            }
        }
    }
});
