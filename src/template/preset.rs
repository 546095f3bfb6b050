//! Ready-made bodies for DCE and the chat robots people actually use, and how each robot says
//! "delivered".
//!
//! Robots such as WeCom and DingTalk answer HTTP 200 even when they reject a message, with the
//! verdict in the JSON body; a preset's [`SuccessCheck`] reads it so such a failure is never
//! recorded as a success. Preset bodies use built-in variables only, so they always compile.

use super::body::{BodyKind, BodyTemplate};
use super::error::TemplateError;

/// DCE 5.0's default webhook message body, byte for byte (README "Templates and variables"): receivers
/// written for DCE keep working when nothing else is configured.
pub const DCE_DEFAULT_BODY: &str = r#"{"id":"{{$$.ID$$}}","email":"{{$$.Email$$}}","username":"{{$$.Name$$}}","last_name":"{{$$.LastName$$}}","first_name":"{{$$.FirstName$$}}","created_at":"{{$$.CreatedAt$$}}","enabled":"{{$$.Enabled$$}}"}"#;

/// One line saying what happened to whom; a literal so `concat!` can embed it.
macro_rules! summary {
    () => {
        "[userhook] {{$$.Event$$}}: {{$$.Name$$}} ({{$$.Email$$}}) id={{$$.ID$$}}"
    };
}

const WECOM_TEXT: &str = concat!(
    r#"{"msgtype":"text","text":{"content":""#,
    summary!(),
    r#""}}"#
);

const WECOM_MARKDOWN: &str = concat!(
    r#"{"msgtype":"markdown","markdown":{"content":""#,
    r"**[userhook] {{$$.Event$$}}**\n",
    r"> user: {{$$.Name$$}}\n",
    r"> email: {{$$.Email$$}}\n",
    r"> id: {{$$.ID$$}}\n",
    r"> from: {{$$.SourceIP$$}} at {{$$.Timestamp$$}}",
    r#""}}"#
);

const FEISHU: &str = concat!(
    r#"{"msg_type":"text","content":{"text":""#,
    summary!(),
    r#""}}"#
);

const SLACK: &str = concat!(r#"{"text":""#, summary!(), r#""}"#);

/// How a target's reply is judged a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuccessCheck {
    /// Any 2xx status.
    Http2xx,
    /// 2xx and a JSON body with `errcode == 0` (WeCom and DingTalk group robots).
    ErrCodeZero,
    /// 2xx and a JSON body with `code == 0`, or `StatusCode == 0` from Feishu's older API.
    FeishuCodeZero,
    /// 2xx (Slack answers `ok`), unless the body is Slack-API JSON saying `"ok": false`.
    SlackOk,
}

impl SuccessCheck {
    /// Judges one reply. Non-2xx is always an error naming the status; a robot check also
    /// fails when the body is not the robot's JSON reply, since a 200 from anything else (a
    /// login page, a proxy) does not mean the message was posted. The error is short, for
    /// delivery records and logs, and carries the robot's own message.
    pub fn judge(&self, status: u16, body: &[u8]) -> Result<(), String> {
        if !(200..300).contains(&status) {
            let ex = excerpt(body);
            return Err(if ex.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {ex}")
            });
        }
        match self {
            SuccessCheck::Http2xx => Ok(()),
            SuccessCheck::ErrCodeZero => robot_code(body, &["errcode"], &["errmsg"]),
            SuccessCheck::FeishuCodeZero => {
                robot_code(body, &["code", "StatusCode"], &["msg", "StatusMessage"])
            }
            SuccessCheck::SlackOk => slack(body),
        }
    }
}

/// Reads the first present of `code_keys` from a JSON object reply; 0 is success.
fn robot_code(body: &[u8], code_keys: &[&str], msg_keys: &[&str]) -> Result<(), String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return Err(format!(
            "reply is not the robot's JSON: `{}`",
            excerpt(body)
        ));
    };
    let Some((key, code)) = code_keys.iter().find_map(|k| map.get(*k).map(|v| (*k, v))) else {
        let expected = code_keys.join(" or ");
        return Err(format!("reply has no {expected}: `{}`", excerpt(body)));
    };
    if code.as_i64() == Some(0) || code.as_str() == Some("0") {
        return Ok(());
    }
    let msg = msg_keys
        .iter()
        .find_map(|k| map.get(*k).and_then(|m| m.as_str()))
        .unwrap_or("");
    Err(format!("{key} {code}: {}", excerpt(msg.as_bytes())))
}

fn slack(body: &[u8]) -> Result<(), String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return Ok(());
    };
    if map.get("ok").and_then(|v| v.as_bool()) == Some(false) {
        let error = map.get("error").and_then(|e| e.as_str()).unwrap_or("");
        return Err(format!("slack error: {}", excerpt(error.as_bytes())));
    }
    Ok(())
}

/// At most 160 characters of a reply, on one line, for records and logs.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 160;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// A named body, content type and success check, chosen with `preset:` in a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The config spelling: `default`, `wecom-text`, ...
    pub name: &'static str,
    /// A JSON body template using built-in variables only.
    pub body: &'static str,
    /// What the robot expects as `content-type`.
    pub content_type: &'static str,
    /// How the robot says a message was posted.
    pub success: SuccessCheck,
    /// The body is the event in a CloudEvents envelope (`body` is unused).
    pub cloudevents: bool,
}

impl Preset {
    /// The compiled body; built-in variables only, so this fails only if a preset is broken
    /// (which the tests rule out).
    pub fn template(&self) -> Result<BodyTemplate, TemplateError> {
        BodyTemplate::compile(self.body, BodyKind::Json, &|_| false)
    }
}

const JSON: &str = "application/json";

/// Every preset, in the order the docs list them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "default",
        body: DCE_DEFAULT_BODY,
        content_type: JSON,
        success: SuccessCheck::Http2xx,
        cloudevents: false,
    },
    Preset {
        name: "wecom-text",
        body: WECOM_TEXT,
        content_type: JSON,
        success: SuccessCheck::ErrCodeZero,
        cloudevents: false,
    },
    Preset {
        name: "wecom-markdown",
        body: WECOM_MARKDOWN,
        content_type: JSON,
        success: SuccessCheck::ErrCodeZero,
        cloudevents: false,
    },
    Preset {
        name: "dingtalk",
        // Same shape as WeCom's text message. A DingTalk robot secured by keyword needs the
        // keyword in the text: `userhook` is in every message.
        body: WECOM_TEXT,
        content_type: JSON,
        success: SuccessCheck::ErrCodeZero,
        cloudevents: false,
    },
    Preset {
        name: "feishu",
        body: FEISHU,
        content_type: JSON,
        success: SuccessCheck::FeishuCodeZero,
        cloudevents: false,
    },
    Preset {
        name: "slack",
        body: SLACK,
        content_type: JSON,
        success: SuccessCheck::SlackOk,
        cloudevents: false,
    },
    Preset {
        name: "cloudevents",
        // Not rendered: the body is the event in its envelope (`message::CloudEventBody`).
        body: DCE_DEFAULT_BODY,
        content_type: super::message::CLOUDEVENTS_CONTENT_TYPE,
        success: SuccessCheck::Http2xx,
        cloudevents: true,
    },
];

/// The preset called `name`, or `None` (the caller lists [`PRESETS`] in its error).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::event::{Action, RequestInfo, UserEvent, UserFields};
    use crate::template::EventVars;

    fn sample() -> UserEvent {
        let mut user = UserFields::new();
        for (k, v) in [
            ("ID", "42"),
            ("Email", "alice@example.com"),
            ("Name", "alice"),
            ("FirstName", "Alice"),
            ("LastName", "Liddell"),
            ("CreatedAt", "2026-11-30T03:36:46Z"),
            ("Enabled", "true"),
        ] {
            user.insert(k.into(), v.into());
        }
        let request = RequestInfo {
            method: "POST".into(),
            path: "/api/v1/users".into(),
            status: 201,
            remote_addr: "192.0.2.7:40000".into(),
            request_id: "r-1".into(),
            user_agent: "test".into(),
        };
        let mut ev = UserEvent::new(1, Action::Created, user, request, false);
        ev.occurred_at = "2026-11-30T03:36:46.123Z".into();
        ev
    }

    fn render(p: &Preset, ev: &UserEvent) -> String {
        let t = p.template().expect("preset compiles");
        String::from_utf8(t.render(&EventVars(ev))).expect("utf-8")
    }

    #[test]
    fn dce_default_body_renders_exactly() {
        let out = render(preset("default").expect("exists"), &sample());
        assert_eq!(
            out,
            r#"{"id":"42","email":"alice@example.com","username":"alice","last_name":"Liddell","first_name":"Alice","created_at":"2026-11-30T03:36:46Z","enabled":"true"}"#
        );
    }

    #[test]
    fn robot_presets_render_exactly() {
        let ev = sample();
        let line = "[userhook] user.created: alice (alice@example.com) id=42";
        let expect = [
            (
                "wecom-text",
                format!(r#"{{"msgtype":"text","text":{{"content":"{line}"}}}}"#),
            ),
            (
                "dingtalk",
                format!(r#"{{"msgtype":"text","text":{{"content":"{line}"}}}}"#),
            ),
            (
                "feishu",
                format!(r#"{{"msg_type":"text","content":{{"text":"{line}"}}}}"#),
            ),
            ("slack", format!(r#"{{"text":"{line}"}}"#)),
            (
                "wecom-markdown",
                concat!(
                    r#"{"msgtype":"markdown","markdown":{"content":"**[userhook] user.created**\n"#,
                    r#"> user: alice\n> email: alice@example.com\n> id: 42\n"#,
                    r#"> from: 192.0.2.7 at 2026-11-30T03:36:46.123Z"}}"#
                )
                .to_owned(),
            ),
        ];
        for (name, want) in expect {
            assert_eq!(render(preset(name).expect("exists"), &ev), want, "{name}");
        }
    }

    #[test]
    fn every_preset_renders_valid_json_of_its_robot_shape() {
        let mut user = UserFields::new();
        user.insert("Name".into(), "evil\"}\n,{\"x\":1".into());
        let ev = UserEvent::new(1, Action::Deleted, user, RequestInfo::default(), false);
        for p in PRESETS.iter().filter(|p| !p.cloudevents) {
            assert_eq!(p.content_type, "application/json");
            let doc: serde_json::Value = serde_json::from_str(&render(p, &ev)).expect("valid JSON");
            let text = match p.name {
                "default" => doc["username"].as_str(),
                "wecom-text" | "dingtalk" => doc["text"]["content"].as_str(),
                "wecom-markdown" => doc["markdown"]["content"].as_str(),
                "feishu" => doc["content"]["text"].as_str(),
                "slack" => doc["text"].as_str(),
                other => panic!("untested preset {other}"),
            };
            // (`cloudevents` is the event itself in an envelope: template::message tests it.)
            assert!(
                text.expect("message text").contains("evil\"}\n,{\"x\":1"),
                "{}",
                p.name
            );
        }
        assert_eq!(preset("teams"), None);
    }

    #[test]
    fn presets_render_from_plain_maps_too() {
        let vars: BTreeMap<String, String> = BTreeMap::new();
        let out = preset("slack")
            .expect("exists")
            .template()
            .expect("ok")
            .render(&vars);
        assert_eq!(out, br#"{"text":"[userhook] :  () id="}"#);
    }

    #[test]
    fn http2xx_judges_status_only() {
        let c = SuccessCheck::Http2xx;
        assert_eq!(c.judge(204, b""), Ok(()));
        assert_eq!(c.judge(200, b"<html>"), Ok(()));
        assert_eq!(c.judge(500, b""), Err("HTTP 500".into()));
        assert_eq!(
            c.judge(404, b"not\nfound\n"),
            Err("HTTP 404: not found".into())
        );
    }

    #[test]
    fn errcode_zero_reads_the_robot_verdict() {
        let c = SuccessCheck::ErrCodeZero;
        assert_eq!(c.judge(200, br#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        assert_eq!(
            c.judge(200, br#"{"errcode":93000,"errmsg":"invalid webhook url"}"#),
            Err("errcode 93000: invalid webhook url".into())
        );
        assert_eq!(
            c.judge(200, b"<html>login</html>"),
            Err("reply is not the robot's JSON: `<html>login</html>`".into())
        );
        assert_eq!(
            c.judge(200, br#"{"ok":true}"#),
            Err(r#"reply has no errcode: `{"ok":true}`"#.into())
        );
        assert_eq!(
            c.judge(502, br#"{"errcode":0}"#),
            Err(r#"HTTP 502: {"errcode":0}"#.into())
        );
    }

    #[test]
    fn feishu_reads_code_or_old_status_code() {
        let c = SuccessCheck::FeishuCodeZero;
        assert_eq!(
            c.judge(200, br#"{"code":0,"msg":"success","data":{}}"#),
            Ok(())
        );
        assert_eq!(
            c.judge(200, br#"{"StatusCode":0,"StatusMessage":"success"}"#),
            Ok(())
        );
        assert_eq!(
            c.judge(200, br#"{"code":19021,"msg":"sign match fail"}"#),
            Err("code 19021: sign match fail".into())
        );
        assert_eq!(
            c.judge(200, br#"{"StatusCode":9499,"StatusMessage":"Bad Request"}"#),
            Err("StatusCode 9499: Bad Request".into())
        );
        assert!(c.judge(200, b"ok").is_err());
        assert_eq!(c.judge(400, b""), Err("HTTP 400".into()));
    }

    #[test]
    fn slack_accepts_ok_and_reports_api_errors() {
        let c = SuccessCheck::SlackOk;
        assert_eq!(c.judge(200, b"ok"), Ok(()));
        assert_eq!(c.judge(200, br#"{"ok":true}"#), Ok(()));
        assert_eq!(
            c.judge(200, br#"{"ok":false,"error":"invalid_auth"}"#),
            Err("slack error: invalid_auth".into())
        );
        assert_eq!(
            c.judge(404, b"no_service"),
            Err("HTTP 404: no_service".into())
        );
    }

    #[test]
    fn long_replies_are_cut() {
        let body = "é".repeat(500);
        let Err(e) = SuccessCheck::Http2xx.judge(500, body.as_bytes()) else {
            panic!("500 must fail");
        };
        assert_eq!(e.chars().count(), "HTTP 500: ".len() + 160 + 1);
        assert!(e.ends_with('…'));
    }
}
