//! Template parse and render (src/template): any text either compiles or is refused, never a
//! panic. A JSON body renders valid JSON whatever the values; a text body renders the values
//! as they are; a URL renders with every value unable to change its structure: when both the
//! rendering and a sample rendering (every value `x`) parse as URLs, they have the same scheme,
//! host, port and number of path segments, and a path segment is never `.` or `..`.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use userhook::template::{BodyKind, BodyTemplate, UrlTemplate};

const NAMES: [&str; 4] = ["ID", "Name", "Email", "Dept"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The template, then NUL-separated values for ID, Name, Email and the custom field Dept.
    let mut parts = text.split('\0');
    let template = parts.next().unwrap_or("");
    let vars: BTreeMap<String, String> = NAMES
        .iter()
        .zip(parts)
        .map(|(k, v)| ((*k).to_string(), v.to_string()))
        .collect();
    let known = |name: &str| name == "Dept";

    if let Ok(body) = BodyTemplate::compile(template, BodyKind::Json, &known) {
        let out = body.render(&vars);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&out) {
            panic!("a JSON body rendered invalid JSON ({e}): {}", String::from_utf8_lossy(&out));
        }
    }
    if let Ok(body) = BodyTemplate::compile(template, BodyKind::Text, &known) {
        let _ = body.render(&vars);
    }
    if let Ok(url) = UrlTemplate::compile(template, &known) {
        let sample = |v: &str| -> Option<url::Url> {
            let all: BTreeMap<String, String> =
                NAMES.iter().map(|k| ((*k).to_string(), v.to_string())).collect();
            url.render(&all).ok().and_then(|s| url::Url::parse(&s).ok())
        };
        let (Some(x), Some(y)) = (sample("x"), sample("y")) else {
            return;
        };
        let Ok(rendered) = url.render(&vars) else {
            return;
        };
        let Ok(parsed) = url::Url::parse(&rendered) else {
            return;
        };
        if parsed.cannot_be_a_base() || x.cannot_be_a_base() {
            return;
        }
        // Where the scheme and host do not depend on the values (x and y give the same), no
        // value may change them (a variable in the scheme or host is the operator's
        // choice, and the config refuses one in the scheme); the path never gains or loses
        // a segment.
        if x.scheme() == y.scheme() {
            assert_eq!(parsed.scheme(), x.scheme(), "{rendered}");
        }
        if x.host_str() == y.host_str() && x.port() == y.port() {
            assert_eq!(parsed.host_str(), x.host_str(), "{rendered}");
            assert_eq!(parsed.port(), x.port(), "{rendered}");
        }
        let segments = |u: &url::Url| u.path_segments().map(|s| s.count());
        assert_eq!(segments(&parsed), segments(&x), "{rendered}");
    }
});
