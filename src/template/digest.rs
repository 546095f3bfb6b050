//! Digest messages: several pending events of one webhook in one message, bounded in count and
//! size, that still name every event across the digests of a burst.
//!
//! Two shapes. A *list* (the chat robots, and any webhook given a `digest.body`): one line per
//! event rendered from a line template with the event's variables, joined with newlines into
//! `{{$$.DigestItems$$}}` of a message body that may also use `{{$$.DigestCount$$}}` (events in
//! this message), `{{$$.DigestRest$$}}` (events still waiting after it) and
//! `{{$$.DigestMore$$}}` (the sentence "…and N more in the next message", empty when none). A
//! *JSON array* (plain HTTP with a JSON body): the webhook's own per-event bodies, as they
//! would be sent one by one, in one array.
//!
//! The promise that keeps digests truthful: a rendering reports how many of the offered events
//! it *included*; only those are delivered by this message. The rest are not dropped or
//! summarised away: they stay pending and lead the next digest, which the "and N more" names.
//! At least one event is always included, so every digest makes progress; a single line too
//! long for the message is cut (with `…`), never left out.

use std::borrow::Cow;

use super::body::{BodyKind, BodyTemplate};
use super::error::TemplateError;
use super::vars::VarSource;

/// The variables only a digest body has.
pub const DIGEST_VARIABLES: &[&str] = &["DigestCount", "DigestItems", "DigestMore", "DigestRest"];

/// Events named in one digest by default.
pub const DEFAULT_MAX_ITEMS: usize = 50;

/// Largest digest body by default for plain HTTP receivers.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;

/// One event's line by default: what happened to whom, as the robot presets say it.
pub const DEFAULT_LINE: &str = "- {{$$.Event$$}}: {{$$.Name$$}} ({{$$.Email$$}}) id={{$$.ID$$}}";

/// A robot preset's digest: a markdown-style list message, and the robot's size limit for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetDigest {
    /// The message body (JSON), using the digest variables.
    pub body: &'static str,
    /// Body bytes at most: under the robot's documented message limit.
    pub max_bytes: usize,
}

const WECOM: PresetDigest = PresetDigest {
    body: r#"{"msgtype":"markdown","markdown":{"content":"**[userhook] {{$$.DigestCount$$}} events**\n{{$$.DigestItems$$}}{{$$.DigestMore$$}}"}}"#,
    // WeCom: markdown content at most 4096 bytes.
    max_bytes: 4000,
};

/// The digest of a preset, when it is a chat robot (`default` is plain HTTP: a JSON array).
pub fn preset_digest(preset: &str) -> Option<PresetDigest> {
    Some(match preset {
        "wecom-text" | "wecom-markdown" => WECOM,
        "dingtalk" => PresetDigest {
            body: r#"{"msgtype":"markdown","markdown":{"title":"[userhook] {{$$.DigestCount$$}} events","text":"**[userhook] {{$$.DigestCount$$}} events**\n{{$$.DigestItems$$}}{{$$.DigestMore$$}}"}}"#,
            // DingTalk: 20000 bytes per message.
            max_bytes: 18_000,
        },
        "feishu" => PresetDigest {
            body: r#"{"msg_type":"text","content":{"text":"[userhook] {{$$.DigestCount$$}} events\n{{$$.DigestItems$$}}{{$$.DigestMore$$}}"}}"#,
            // Feishu: a request body of at most 20 KB.
            max_bytes: 18_000,
        },
        "slack" => PresetDigest {
            body: r#"{"text":"*[userhook] {{$$.DigestCount$$}} events*\n{{$$.DigestItems$$}}{{$$.DigestMore$$}}"}"#,
            // Slack truncates message text past 40000 characters; stay well below.
            max_bytes: 12_000,
        },
        _ => return None,
    })
}

/// How a digest is put together.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// A message body with the events' lines in `DigestItems`.
    List {
        body: BodyTemplate,
        line: BodyTemplate,
    },
    /// The per-event bodies in one JSON array.
    JsonArray,
}

/// A webhook's digest, compiled once per config load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTemplate {
    shape: Shape,
    max_items: usize,
    max_bytes: usize,
}

/// One rendered digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The message body.
    pub body: Vec<u8>,
    /// How many of the offered events (a prefix) this message names; the rest stay pending.
    pub included: usize,
    /// Events still waiting after this message (offered but not included, and `rest`).
    pub rest: usize,
}

impl DigestTemplate {
    /// A list digest: `body` (JSON or text, by `kind`) may use the digest variables only;
    /// `line` is text with the event variables `known` accepts besides the built-ins.
    pub fn list(
        body: &str,
        kind: BodyKind,
        line: &str,
        known: &dyn Fn(&str) -> bool,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Self, DigestError> {
        let body = BodyTemplate::compile(body, kind, &|n| DIGEST_VARIABLES.contains(&n))
            .map_err(DigestError::Body)?;
        if let Some(name) = body.variables().find(|n| !DIGEST_VARIABLES.contains(n)) {
            return Err(DigestError::EventVariableInBody(name.to_string()));
        }
        // Digest variables parse here so the error below can say where they belong.
        let line_known = |n: &str| DIGEST_VARIABLES.contains(&n) || known(n);
        let line =
            BodyTemplate::compile(line, BodyKind::Text, &line_known).map_err(DigestError::Line)?;
        if let Some(name) = line.variables().find(|n| DIGEST_VARIABLES.contains(n)) {
            return Err(DigestError::DigestVariableInLine(name.to_string()));
        }
        let t = DigestTemplate {
            shape: Shape::List { body, line },
            max_items: max_items.max(1),
            max_bytes,
        };
        // The message without any line must leave room for at least a short one.
        let empty = t.render_list(&[], usize::MAX / 2, 0).len();
        if empty + 16 > max_bytes {
            return Err(DigestError::TooSmall {
                max_bytes,
                overhead: empty,
            });
        }
        Ok(t)
    }

    /// A JSON-array digest of the webhook's own bodies.
    pub fn json_array(max_items: usize, max_bytes: usize) -> Self {
        DigestTemplate {
            shape: Shape::JsonArray,
            max_items: max_items.max(1),
            max_bytes,
        }
    }

    /// Events named in one message at most.
    pub fn max_items(&self) -> usize {
        self.max_items
    }

    /// Renders one digest of (a prefix of) `events`, oldest first; `rest` counts the webhook's
    /// pending events not offered here. `item` renders one event's own body (the JSON-array
    /// shape uses it). Includes as many events as `max_items` and `max_bytes` allow, at least
    /// one.
    pub fn render(
        &self,
        events: &[&dyn VarSource],
        rest: usize,
        item: &dyn Fn(&dyn VarSource) -> Vec<u8>,
    ) -> Digest {
        let offered = events.len();
        let mut n = offered.min(self.max_items).max(1).min(offered);
        match &self.shape {
            Shape::List { line, .. } => {
                let lines: Vec<Vec<u8>> = events[..n].iter().map(|e| line.render(*e)).collect();
                loop {
                    let rest_after = rest + offered - n;
                    let body = self.render_list(&lines[..n], rest_after, n);
                    if body.len() <= self.max_bytes || n == 0 {
                        return Digest {
                            body,
                            included: n,
                            rest: rest_after,
                        };
                    }
                    if n == 1 {
                        // One line alone is too long: cut it to what fits.
                        let over = body.len() - self.max_bytes;
                        let cut = cut_line(&lines[0], over + 8);
                        let body = self.render_list(std::slice::from_ref(&cut), rest_after, 1);
                        return Digest {
                            body,
                            included: 1,
                            rest: rest_after,
                        };
                    }
                    // Shrink in proportion, at least by one.
                    let guess = n * self.max_bytes / body.len().max(1);
                    n = guess.clamp(1, n - 1);
                }
            }
            Shape::JsonArray => {
                let mut body = Vec::with_capacity(1024);
                body.push(b'[');
                let mut included = 0;
                for e in events.iter().take(n) {
                    let one = item(*e);
                    let sep = usize::from(included > 0);
                    if included > 0 && body.len() + sep + one.len() + 1 > self.max_bytes {
                        break;
                    }
                    if sep == 1 {
                        body.push(b',');
                    }
                    body.extend_from_slice(&one);
                    included += 1;
                }
                body.push(b']');
                n = included;
                Digest {
                    body,
                    included: n,
                    rest: rest + offered - n,
                }
            }
        }
    }

    /// The list message for `lines` with `rest` still waiting after it.
    fn render_list(&self, lines: &[Vec<u8>], rest: usize, count: usize) -> Vec<u8> {
        let Shape::List { body, .. } = &self.shape else {
            return Vec::new();
        };
        let mut items = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                items.push(b'\n');
            }
            items.extend_from_slice(l);
        }
        let vars = DigestVars {
            count,
            rest,
            items: String::from_utf8_lossy(&items),
        };
        body.render(&vars)
    }
}

/// The values of the digest variables for one message.
struct DigestVars<'a> {
    count: usize,
    rest: usize,
    items: Cow<'a, str>,
}

impl VarSource for DigestVars<'_> {
    fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        match name {
            "DigestCount" => Some(Cow::Owned(self.count.to_string())),
            "DigestRest" => Some(Cow::Owned(self.rest.to_string())),
            "DigestItems" => Some(Cow::Borrowed(&self.items)),
            "DigestMore" if self.rest == 0 => None,
            "DigestMore" => Some(Cow::Owned(format!(
                "\n…and {} more in the next message",
                self.rest
            ))),
            _ => None,
        }
    }
}

/// `line` shortened by at least `by` bytes (at a character boundary), ending in `…`.
fn cut_line(line: &[u8], by: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let mut keep = text.len().saturating_sub(by + '…'.len_utf8());
    while keep > 0 && !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut out = text.get(..keep).unwrap_or("").as_bytes().to_vec();
    out.extend_from_slice("…".as_bytes());
    out
}

/// Why a digest could not be compiled; the caller prefixes the key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The digest body is not a valid template.
    #[error("digest body: {0}")]
    Body(TemplateError),
    /// The line template is not a valid template.
    #[error("digest line: {0}")]
    Line(TemplateError),
    /// The digest body named an event variable: a message of many events has no one value.
    #[error("the digest body names {{{{$$.{0}$$}}}}, which differs per event; use it in digest.line, and only DigestCount, DigestItems, DigestMore and DigestRest in the body")]
    EventVariableInBody(String),
    /// A line named a digest variable.
    #[error("digest.line names {{{{$$.{0}$$}}}}, which only the digest body has")]
    DigestVariableInLine(String),
    /// Not even one short line fits.
    #[error("digest.max_bytes {max_bytes} leaves no room for a line (the message alone takes {overhead} bytes)")]
    TooSmall {
        /// As configured.
        max_bytes: usize,
        /// The message without lines.
        overhead: usize,
    },
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn user(i: usize) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("Event".into(), "user.created".into());
        m.insert("Name".into(), format!("user{i}"));
        m.insert("Email".into(), format!("user{i}@example.com"));
        m.insert("ID".into(), i.to_string());
        m
    }

    fn list(preset: &str, max_items: usize, max_bytes: Option<usize>) -> DigestTemplate {
        let p = preset_digest(preset).expect("robot preset");
        DigestTemplate::list(
            p.body,
            BodyKind::Json,
            DEFAULT_LINE,
            &|_| false,
            max_items,
            max_bytes.unwrap_or(p.max_bytes),
        )
        .expect("compiles")
    }

    fn no_item(_: &dyn VarSource) -> Vec<u8> {
        Vec::new()
    }

    #[test]
    fn a_list_names_each_event_and_says_how_many_follow() {
        let users: Vec<_> = (0..3).map(user).collect();
        let refs: Vec<&dyn VarSource> = users.iter().map(|u| u as &dyn VarSource).collect();
        let t = list("dingtalk", 50, None);
        let d = t.render(&refs, 0, &no_item);
        assert_eq!(d.included, 3);
        assert_eq!(d.rest, 0);
        let doc: serde_json::Value = serde_json::from_slice(&d.body).expect("JSON");
        assert_eq!(doc["msgtype"], "markdown");
        assert_eq!(doc["markdown"]["title"], "[userhook] 3 events");
        assert_eq!(
            doc["markdown"]["text"],
            "**[userhook] 3 events**\n- user.created: user0 (user0@example.com) id=0\n- user.created: user1 (user1@example.com) id=1\n- user.created: user2 (user2@example.com) id=2"
        );
        // Seven offered, five per message, four more pending elsewhere: 2 + 4 follow.
        let users: Vec<_> = (0..7).map(user).collect();
        let refs: Vec<&dyn VarSource> = users.iter().map(|u| u as &dyn VarSource).collect();
        let d = list("slack", 5, None).render(&refs, 4, &no_item);
        assert_eq!((d.included, d.rest), (5, 6));
        let doc: serde_json::Value = serde_json::from_slice(&d.body).expect("JSON");
        let text = doc["text"].as_str().expect("text");
        assert!(
            text.starts_with("*[userhook] 5 events*\n- user.created: user0 "),
            "{text}"
        );
        assert!(
            text.ends_with("id=4\n…and 6 more in the next message"),
            "{text}"
        );
        assert!(!text.contains("user5"), "{text}");
    }

    #[test]
    fn size_bounds_hold_and_the_rest_follows_in_later_messages() {
        let users: Vec<_> = (0..500).map(user).collect();
        let t = list("wecom-markdown", 500, None);
        let mut named = Vec::new();
        let mut start = 0;
        let mut messages = 0;
        while start < users.len() {
            let refs: Vec<&dyn VarSource> =
                users[start..].iter().map(|u| u as &dyn VarSource).collect();
            let d = t.render(&refs, 0, &no_item);
            assert!(d.body.len() <= 4000, "{} bytes", d.body.len());
            assert!(d.included >= 1);
            assert_eq!(d.rest, users.len() - start - d.included);
            let doc: serde_json::Value = serde_json::from_slice(&d.body).expect("JSON");
            let content = doc["markdown"]["content"].as_str().expect("content");
            for i in start..start + d.included {
                assert!(
                    content.contains(&format!("user{i} ")),
                    "user{i} in {content}"
                );
                named.push(i);
            }
            if d.rest > 0 {
                assert!(content.ends_with(&format!("…and {} more in the next message", d.rest)));
            }
            start += d.included;
            messages += 1;
        }
        assert_eq!(named, (0..500).collect::<Vec<_>>());
        assert!(messages > 1 && messages < 20, "{messages} messages");
    }

    #[test]
    fn an_overlong_line_is_cut_not_dropped() {
        let mut big = user(1);
        big.insert("Name".into(), "é".repeat(5000));
        let refs: Vec<&dyn VarSource> = vec![&big];
        let d = list("wecom-text", 50, None).render(&refs, 0, &no_item);
        assert_eq!(d.included, 1);
        assert!(d.body.len() <= 4000, "{}", d.body.len());
        let doc: serde_json::Value = serde_json::from_slice(&d.body).expect("JSON");
        assert!(doc["markdown"]["content"]
            .as_str()
            .expect("content")
            .ends_with('…'));
    }

    #[test]
    fn json_arrays_hold_the_per_event_bodies_within_the_bound() {
        let users: Vec<_> = (0..10).map(user).collect();
        let refs: Vec<&dyn VarSource> = users.iter().map(|u| u as &dyn VarSource).collect();
        let item = |v: &dyn VarSource| {
            format!(r#"{{"id":"{}"}}"#, v.var("ID").unwrap_or_default()).into_bytes()
        };
        let d = DigestTemplate::json_array(4, 1024).render(&refs, 0, &item);
        assert_eq!(d.body, br#"[{"id":"0"},{"id":"1"},{"id":"2"},{"id":"3"}]"#);
        assert_eq!((d.included, d.rest), (4, 6));
        // 30 bytes: two items fit, the third would not.
        let d = DigestTemplate::json_array(50, 30).render(&refs, 0, &item);
        assert_eq!(d.body, br#"[{"id":"0"},{"id":"1"}]"#);
        assert_eq!((d.included, d.rest), (2, 8));
        // One item always goes, even past the bound.
        let d = DigestTemplate::json_array(50, 5).render(&refs[..1], 0, &item);
        assert_eq!((d.included, d.rest), (1, 0));
    }

    #[test]
    fn bad_digest_templates_are_refused() {
        let e = |body: &str, line: &str, max: usize| {
            DigestTemplate::list(body, BodyKind::Json, line, &|_| false, 10, max).unwrap_err()
        };
        assert_eq!(
            e(r#"{"t":"{{$$.Name$$}}"}"#, DEFAULT_LINE, 1000),
            DigestError::EventVariableInBody("Name".into())
        );
        assert_eq!(
            e(
                r#"{"t":"{{$$.DigestItems$$}}"}"#,
                "{{$$.DigestCount$$}}",
                1000
            ),
            DigestError::DigestVariableInLine("DigestCount".into())
        );
        assert!(matches!(
            e(r#"{"t":"{{$$.DigestItems$$}}"}"#, DEFAULT_LINE, 10),
            DigestError::TooSmall { .. }
        ));
        assert!(matches!(
            e(r#"{"t":{{$$.DigestItems$$}"#, DEFAULT_LINE, 1000),
            DigestError::Body(_)
        ));
    }

    #[test]
    fn every_robot_preset_digest_compiles_and_renders_json() {
        for name in [
            "wecom-text",
            "wecom-markdown",
            "dingtalk",
            "feishu",
            "slack",
        ] {
            let u = user(7);
            let d = list(name, 50, None).render(&[&u], 2, &no_item);
            let doc: serde_json::Value = serde_json::from_slice(&d.body).expect("JSON");
            let text = doc.to_string();
            assert!(
                text.contains("userhook") && text.contains("user7"),
                "{name}: {text}"
            );
            assert!(text.contains("and 2 more"), "{name}: {text}");
        }
        assert_eq!(preset_digest("default"), None);
    }
}
