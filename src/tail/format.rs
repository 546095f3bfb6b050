//! One line per feed item for a person at a terminal:
//!
//! ```text
//! 2026-12-02T11:51:28.123Z detected  user.created       ID=u-1 Email=a@x.io Name=alice  POST /users 201 -> ok-hook, dead-hook
//! 2026-12-02T11:51:28.180Z delivered ok-hook            user.created user=u-1 HTTP 200 attempt 1
//! 2026-12-02T11:51:28.181Z dead      dead-hook          user.created user=u-1 HTTP 400 attempt 1: HTTP 400: no thanks
//! -- 12 items missed: this reader was too slow; the oldest items were dropped
//! ```
//!
//! Values come from the IAM's traffic: control characters are escaped so a field cannot move
//! the cursor, recolour or retitle the terminal.

use std::fmt::Write as _;

use serde_json::Value;

/// The line for one item (`kind` is the SSE event name), without a newline; `None` for an
/// item this version does not know (a newer instance), which is skipped.
pub fn line(kind: &str, data: &Value) -> Option<String> {
    match kind {
        "detected" => Some(detected(data)),
        "delivery" => Some(delivery(data)),
        "missed" => Some(format!(
            "-- {} item(s) missed: {}",
            data["missed"].as_u64().unwrap_or(0),
            clean(text(&data["reason"]))
        )),
        _ => None,
    }
}

fn detected(d: &Value) -> String {
    let mut out = format!(
        "{} detected  {:<18}",
        clean(text(&d["time"])),
        clean(text(&d["event"]))
    );
    if let Some(user) = d["user"].as_object() {
        for (k, v) in user {
            let _ = write!(out, " {}={}", clean(k), quoted(text(v)));
        }
        if user.is_empty() {
            out.push_str(" (nobody named)");
        }
    }
    let r = &d["request"];
    let _ = write!(
        out,
        "  {} {} {}",
        clean(text(&r["method"])),
        clean(text(&r["path"])),
        r["status"].as_u64().unwrap_or(0)
    );
    let hooks: Vec<String> = d["webhooks"]
        .as_array()
        .map(|a| a.iter().map(|w| clean(text(w))).collect())
        .unwrap_or_default();
    if hooks.is_empty() {
        out.push_str(" -> (no webhook)");
    } else {
        let _ = write!(out, " -> {}", hooks.join(", "));
    }
    out
}

fn delivery(d: &Value) -> String {
    let mut out = format!(
        "{} {:<9} {:<18} {}",
        clean(text(&d["time"])),
        clean(text(&d["outcome"])),
        clean(text(&d["webhook"])),
        clean(text(&d["event"])),
    );
    if let Some(user) = d["user_id"].as_str() {
        let _ = write!(out, " user={}", quoted(user));
    }
    if let Some(status) = d["status"].as_u64() {
        let _ = write!(out, " HTTP {status}");
    }
    if let Some(n) = d["attempt"].as_u64().filter(|n| *n > 0) {
        let _ = write!(out, " attempt {n}");
    }
    if let Some(next) = d["next_attempt"].as_str() {
        let _ = write!(out, " next {}", clean(next));
    }
    if let Some(e) = d["error"].as_str() {
        let _ = write!(out, ": {}", clean(e));
    }
    out
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A value as `value`, or `"va lue"` (JSON-quoted) when it is empty or has spaces or quotes.
fn quoted(v: &str) -> String {
    if v.is_empty() || v.contains([' ', '"', '=']) {
        Value::from(v).to_string()
    } else {
        clean(v)
    }
}

/// `v` with control characters (ESC, CR, BEL, ...) shown as `\u{1b}`.
fn clean(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detected_lines() {
        let d = json!({
            "kind": "detected", "time": "2026-12-02T11:51:28.123Z", "event": "user.created",
            "user": {"ID": "u-1", "Name": "Ann Lee", "Email": ""},
            "request": {"method": "POST", "path": "/users", "status": 201},
            "webhooks": ["ok-hook", "dead-hook"],
        });
        assert_eq!(
            line("detected", &d).unwrap(),
            "2026-12-02T11:51:28.123Z detected  user.created       Email=\"\" ID=u-1 Name=\"Ann Lee\"  POST /users 201 -> ok-hook, dead-hook"
        );
        let nobody = json!({"time": "t", "event": "user.login_failed", "user": {},
            "request": {"method": "POST", "path": "/login", "status": 401}, "webhooks": []});
        assert_eq!(
            line("detected", &nobody).unwrap(),
            "t detected  user.login_failed  (nobody named)  POST /login 401 -> (no webhook)"
        );
    }

    #[test]
    fn delivery_and_missed_lines() {
        let d = json!({"time": "t", "outcome": "retrying", "webhook": "crm", "event": "user.deleted",
            "user_id": "42", "status": 503, "attempt": 2, "next_attempt": "t2", "error": "HTTP 503: busy"});
        assert_eq!(
            line("delivery", &d).unwrap(),
            "t retrying  crm                user.deleted user=42 HTTP 503 attempt 2 next t2: HTTP 503: busy"
        );
        let d = json!({"time": "t", "outcome": "refused", "webhook": "w", "event": "user.login",
            "user_id": null, "status": null, "attempt": 0, "error": "spool full"});
        assert_eq!(
            line("delivery", &d).unwrap(),
            "t refused   w                  user.login: spool full"
        );
        let m = json!({"kind": "missed", "missed": 12, "reason": "too slow"});
        assert_eq!(
            line("missed", &m).unwrap(),
            "-- 12 item(s) missed: too slow"
        );
        assert_eq!(line("future-kind", &m), None);
    }

    #[test]
    fn terminal_controls_in_values_are_escaped() {
        let d = json!({"time": "t", "event": "user.created",
            "user": {"Name": "\u{1b}]0;pwned\u{7}\u{1b}[2J"},
            "request": {"method": "POST", "path": "/u\r\n", "status": 201}, "webhooks": []});
        let l = line("detected", &d).unwrap();
        assert!(!l.chars().any(char::is_control), "{l:?}");
        assert!(l.contains("Name=\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"), "{l}");
        assert!(l.contains("/u\\u{d}\\u{a}"), "{l}");
    }
}
