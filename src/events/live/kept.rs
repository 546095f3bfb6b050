//! A detected event as the live feed keeps it until a reader asks for its frame.
//!
//! The ring holds the last `RING_ITEMS` items, and nobody may read them for hours.
//! Kept as a [`UserEvent`] behind an `Arc`, each was about twenty separate allocations (a
//! kilobyte and a half with the map's node), all of them cold by the time the ring let go of
//! them, and freeing them cost a matched request about 0.8 µs of CPU (the benchmark's
//! matched-create row). A [`KeptEvent`] holds only what the frame and the filters read, packed
//! into one buffer that lives inside the ring's own slot: the ends of its pieces, then the
//! pieces' text. A usual event fits in [`INLINE`] bytes and costs no allocation at all, the
//! event itself is freed while it is still in cache, and the ring is one contiguous block that
//! is written and dropped in order. A larger one spills into one allocation.
//!
//! A value longer than the frame shows is cut when it is packed (the frame would cut it
//! anyway), so no large field sits in the ring; `ID`, `Email` and `Name` are kept whole,
//! because the user filter compares them.

use std::borrow::Cow;

use serde::ser::{Serialize, Serializer};

use crate::event::{Action, Attribution, UserEvent};
use crate::redact::{is_credential_name, redact_url, REDACTED};

/// Longest user field value shown; longer ones are cut (a live view, not a record).
pub const MAX_VALUE_CHARS: usize = 256;

/// `value`, cut to [`MAX_VALUE_CHARS`] characters with `…` when longer.
pub(super) fn cut(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(MAX_VALUE_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &value[..end])),
        None => Cow::Borrowed(value),
    }
}

/// The user fields the `?user=` filter compares, in the order it reads them.
pub(super) const FILTER_KEYS: [&str; 3] = ["ID", "Email", "Name"];

/// Pieces before the user fields: id, time, method, path, request id, remote address.
const HEAD: usize = 6;

/// Bytes a packed event holds in its slot (ends and text); a larger one spills. A create with
/// three fields and no targets packs into about 210; an update with DCE's seven fields, two
/// `Changed` names, UUIDs in the path and the request id, an IPv6 client and two webhooks
/// into about 470.
pub(super) const INLINE: usize = 512;

/// Bytes of one piece's end.
const END: usize = size_of::<u32>();

/// What the feed keeps of a detected event: its frame's and its filters' values, packed.
#[derive(Debug, Clone)]
pub(super) struct KeptEvent {
    /// The event's action (built-in ones own nothing).
    pub(super) action: Action,
    event_type: Cow<'static, str>,
    seq: u64,
    status: u16,
    truncated: bool,
    attribution: Attribution,
    /// How many user fields, `Changed` names and pieces in all (the rest are the targets).
    fields: u32,
    changed: u32,
    pieces: u32,
    /// Bytes of `inline` in use, when nothing spilled.
    len: u32,
    /// Each piece's end (`u32`, little-endian, counted from the text's start), then the text
    /// of every piece: [`HEAD`] request values, each user field's name and value, the
    /// `Changed` names, the targets.
    inline: [u8; INLINE],
    /// The same layout, when it does not fit in `inline`.
    spill: Option<Box<[u8]>>,
}

impl KeptEvent {
    /// Packs what the frame and the filters read of `event`, dispatched to `targets`.
    pub(super) fn pack(event: &UserEvent, targets: &[String]) -> KeptEvent {
        let mut kept = KeptEvent {
            action: Action::Created,
            event_type: Cow::Borrowed(""),
            seq: 0,
            status: 0,
            truncated: false,
            attribution: Attribution::None,
            fields: 0,
            changed: 0,
            pieces: 0,
            len: 0,
            inline: [0; INLINE],
            spill: None,
        };
        kept.repack(event, targets);
        kept
    }

    /// [`KeptEvent::pack`] into this one's place (the ring's slot), reusing its buffer.
    pub(super) fn repack(&mut self, event: &UserEvent, targets: &[String]) {
        let request = &event.request;
        let head: [&str; HEAD] = [
            &event.id,
            &event.occurred_at,
            &request.method,
            &request.path,
            &request.request_id,
            &request.remote_addr,
        ];
        let pieces = HEAD + 2 * event.user.len() + event.changed.len() + targets.len();
        self.action.clone_from(&event.action);
        self.event_type.clone_from(&event.event_type);
        self.seq = event.seq;
        self.status = request.status;
        self.truncated = event.truncated;
        self.attribution = event.attribution;
        self.fields = count(event.user.len());
        self.changed = count(event.changed.len());
        self.pieces = count(pieces);
        let ends = END * pieces;
        let write = |buf: &mut [u8]| -> Option<usize> {
            let (ends, text) = buf.split_at_mut_checked(ends)?;
            let mut writer = Writer {
                ends: ends.as_chunks_mut::<END>().0.iter_mut(),
                text,
                at: 0,
                fits: true,
            };
            head.into_iter().for_each(|p| writer.push(p));
            for (k, v) in &event.user {
                writer.push(k);
                writer.push(kept_value(k, v));
            }
            event.changed.iter().for_each(|c| writer.push(c));
            targets.iter().for_each(|t| writer.push(t));
            writer.fits.then_some(writer.at)
        };
        // A usual event fits in the slot: written there in one pass. Only one that does not
        // is measured and written again, into a spill of its exact size.
        if let Some(text) = write(&mut self.inline) {
            self.len = count(ends + text);
            self.spill = None;
            return;
        }
        let text = head.iter().map(|s| s.len()).sum::<usize>()
            + event
                .user
                .iter()
                .map(|(k, v)| k.len() + kept_value(k, v).len())
                .sum::<usize>()
            + event.changed.iter().map(String::len).sum::<usize>()
            + targets.iter().map(String::len).sum::<usize>();
        let mut spill = vec![0; ends + text].into_boxed_slice();
        write(&mut spill);
        self.len = 0;
        self.spill = Some(spill);
    }

    /// The packed bytes: the ends, then the text.
    fn bytes(&self) -> &[u8] {
        match &self.spill {
            Some(spill) => spill,
            None => self.inline.get(..self.len as usize).unwrap_or_default(),
        }
    }

    /// The pieces, in order (none if the buffer were not what packing wrote, which it is).
    fn pieces(&self) -> Pieces<'_> {
        let bytes = self.bytes();
        let (ends, text) = bytes.split_at(bytes.len().min(END * self.pieces as usize));
        Pieces {
            ends: ends.as_chunks::<END>().0.iter(),
            text: std::str::from_utf8(text).unwrap_or_default(),
            at: 0,
        }
    }

    /// The [`HEAD`] request values, each `""` if missing.
    fn head(&self) -> [&str; HEAD] {
        let mut head = [""; HEAD];
        for (slot, piece) in head.iter_mut().zip(self.pieces()) {
            *slot = piece;
        }
        head
    }

    /// The user fields, name and kept value, in the event's (sorted) order.
    fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut pieces = self.pieces().skip(HEAD);
        (0..self.fields).map_while(move |_| Some((pieces.next()?, pieces.next()?)))
    }

    /// The `Changed` names of an update.
    fn changed(&self) -> impl Iterator<Item = &str> {
        self.pieces()
            .skip(HEAD + 2 * self.fields as usize)
            .take(self.changed as usize)
    }

    /// The webhooks and sinks the event was dispatched to.
    pub(super) fn targets(&self) -> impl Iterator<Item = &str> {
        self.pieces()
            .skip(HEAD + 2 * self.fields as usize + self.changed as usize)
    }

    /// `ID`, `Email` and `Name`, those present and not empty, for the user filter (one pass
    /// over the fields).
    pub(super) fn user_values(&self) -> impl Iterator<Item = &str> {
        let mut found = [""; FILTER_KEYS.len()];
        for (k, v) in self.fields() {
            if let Some(i) = FILTER_KEYS.iter().position(|key| *key == k) {
                found[i] = v;
            }
        }
        found.into_iter().filter(|v| !v.is_empty())
    }

    /// About how long the frame will be (its values plus the frame's and the JSON's own text),
    /// without rendering it: what the item counts against `RING_BYTES`.
    pub(super) fn estimated_frame_len(&self) -> usize {
        const FIXED: usize = 320;
        let text = self.bytes().len() - END * self.pieces as usize;
        // Quotes, colons and commas around each piece.
        FIXED + text + self.event_type.len() + 6 * self.pieces as usize
    }

    /// The `data:` JSON of the detected event; `webhooks` are its [`KeptEvent::targets`].
    pub(super) fn json(&self, webhooks: &[String]) -> serde_json::Result<String> {
        let [id, time, method, path, request_id, remote_addr] = self.head();
        serde_json::to_string(&DetectedJson {
            kind: "detected",
            id,
            seq: self.seq,
            action: self.action.as_str(),
            event: &self.event_type,
            time,
            attribution: self.attribution.as_str(),
            user: ShownFields(self),
            changed: Changed(self),
            truncated: self.truncated,
            request: RequestJson {
                method,
                path: redact_url(path),
                status: self.status,
                request_id,
                remote_addr,
            },
            webhooks,
        })
    }
}

/// A count as packed (no event has four billion fields; one that did would show fewer).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Writes pieces into a slot's buffer or a spill; says when they do not fit.
struct Writer<'a> {
    ends: std::slice::IterMut<'a, [u8; END]>,
    text: &'a mut [u8],
    at: usize,
    /// False once a piece did not fit.
    fits: bool,
}

impl Writer<'_> {
    fn push(&mut self, piece: &str) {
        let end = self.at + piece.len();
        match (self.ends.next(), self.text.get_mut(self.at..end)) {
            (Some(slot), Some(dst)) => {
                dst.copy_from_slice(piece.as_bytes());
                *slot = count(end).to_le_bytes();
                self.at = end;
            }
            _ => self.fits = false,
        }
    }
}

/// Reads the pieces back.
struct Pieces<'a> {
    ends: std::slice::Iter<'a, [u8; END]>,
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let end = self.ends.next()?;
        let end = u32::from_le_bytes(*end) as usize;
        let piece = self.text.get(self.at..end)?;
        self.at = end;
        Some(piece)
    }
}

/// The part of `value` the feed keeps: all of it for the filter's keys and for values no
/// longer than the frame shows; otherwise one character more than it shows, so the frame
/// still cuts it and marks the cut.
fn kept_value<'a>(key: &str, value: &'a str) -> &'a str {
    if value.len() <= MAX_VALUE_CHARS || FILTER_KEYS.contains(&key) {
        return value;
    }
    match value.char_indices().nth(MAX_VALUE_CHARS + 1) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

#[derive(serde::Serialize)]
struct DetectedJson<'a> {
    kind: &'static str,
    id: &'a str,
    seq: u64,
    action: &'a str,
    event: &'a str,
    time: &'a str,
    attribution: &'static str,
    user: ShownFields<'a>,
    #[serde(skip_serializing_if = "Changed::is_empty")]
    changed: Changed<'a>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    request: RequestJson<'a>,
    webhooks: &'a [String],
}

#[derive(serde::Serialize)]
struct RequestJson<'a> {
    method: &'a str,
    path: String,
    status: u16,
    request_id: &'a str,
    remote_addr: &'a str,
}

/// The user fields as the feed shows them: credentials masked, long values cut.
struct ShownFields<'a>(&'a KeptEvent);

impl Serialize for ShownFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.fields().map(|(k, v)| {
            let shown = if is_credential_name(k) {
                Cow::Borrowed(REDACTED)
            } else {
                cut(v)
            };
            (k, shown)
        }))
    }
}

/// The `Changed` names, as a JSON list.
struct Changed<'a>(&'a KeptEvent);

impl Changed<'_> {
    fn is_empty(&self) -> bool {
        self.0.changed().next().is_none()
    }
}

impl Serialize for Changed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserFields};

    fn event(user: &[(&str, &str)], changed: &[&str]) -> UserEvent {
        let fields: UserFields = user
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let request = RequestInfo {
            method: "PATCH".into(),
            path: "/users/42".into(),
            status: 200,
            remote_addr: "10.0.0.7".into(),
            request_id: "req-1".into(),
            user_agent: "agent".into(),
        };
        let mut ev = UserEvent::new(7, Action::Updated, fields, request, true);
        ev.changed = changed.iter().map(|c| (*c).to_owned()).collect();
        ev.attribution = Attribution::Session;
        ev
    }

    /// The frame's JSON as the feed rendered it when it kept the event itself: the oracle
    /// the packed form must match byte for byte.
    fn reference(ev: &UserEvent, webhooks: &[String]) -> String {
        #[derive(serde::Serialize)]
        struct Old<'a> {
            kind: &'static str,
            id: &'a str,
            seq: u64,
            action: &'a str,
            event: &'a str,
            time: &'a str,
            attribution: &'static str,
            user: std::collections::BTreeMap<&'a str, String>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            changed: &'a [String],
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            truncated: bool,
            request: RequestJson<'a>,
            webhooks: &'a [String],
        }
        let user = ev
            .user
            .iter()
            .map(|(k, v)| {
                let shown = if is_credential_name(k) {
                    REDACTED.to_owned()
                } else {
                    cut(v).into_owned()
                };
                (k.as_str(), shown)
            })
            .collect();
        serde_json::to_string(&Old {
            kind: "detected",
            id: &ev.id,
            seq: ev.seq,
            action: ev.action.as_str(),
            event: &ev.event_type,
            time: &ev.occurred_at,
            attribution: ev.attribution.as_str(),
            user,
            changed: &ev.changed,
            truncated: ev.truncated,
            request: RequestJson {
                method: &ev.request.method,
                path: redact_url(&ev.request.path),
                status: ev.request.status,
                request_id: &ev.request.request_id,
                remote_addr: &ev.request.remote_addr,
            },
            webhooks,
        })
        .unwrap()
    }

    #[test]
    fn renders_what_the_event_itself_rendered() {
        let long = "é".repeat(MAX_VALUE_CHARS * 3);
        let mut untruncated = event(&[("ID", "1")], &[]);
        untruncated.truncated = false;
        untruncated.request.path = "/reset/abcdef0123456789abcdef0123456789?token=t".into();
        let mut custom = event(&[("ID", "1")], &[]);
        custom.action = "password_changed".parse().unwrap();
        custom.event_type = custom.action.event_type().to_owned().into();
        let cases = [
            event(&[], &[]),
            untruncated,
            custom,
            event(&[("ID", "42"), ("Email", "a@example.com")], &[]),
            event(
                &[
                    ("ID", "42"),
                    ("Bio", &long),
                    ("password", "CANARY"),
                    ("Name", ""),
                ],
                &["Email", "Name"],
            ),
            event(
                &[("ID", &long), ("empty", ""), ("quote\"d", "a\"\n\u{0}b")],
                &["ID"],
            ),
        ];
        let many: Vec<String> = (0..40).map(|i| format!("webhook-{i}")).collect();
        for webhooks in [vec![], vec!["ops".to_owned(), "audit".to_owned()], many] {
            for ev in &cases {
                let kept = KeptEvent::pack(ev, &webhooks);
                assert_eq!(kept.targets().collect::<Vec<_>>(), webhooks);
                let json = kept.json(&webhooks).unwrap();
                assert_eq!(json, reference(ev, &webhooks));
                assert!(!json.contains("CANARY"), "{json}");
            }
        }
    }

    #[test]
    fn a_usual_event_packs_inline_and_a_large_one_spills() {
        let create = event(
            &[
                ("ID", "u-1"),
                ("Name", "alice"),
                ("Email", "alice@example.com"),
            ],
            &[],
        );
        let kept = KeptEvent::pack(&create, &[]);
        assert!(kept.spill.is_none(), "{} bytes", kept.bytes().len());
        let dce: Vec<(&str, &str)> = vec![
            ("ID", "0b9c2f4e-7a51-4d0a-9f3e-2c8d1b6a5e47"),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("FirstName", "Alice"),
            ("LastName", "Liddell"),
            ("CreatedAt", "2026-12-02T10:00:00Z"),
            ("Enabled", "true"),
        ];
        let mut dce = event(&dce, &["Email", "Name"]);
        dce.request.request_id = "019ae0c4-5b7e-7c3a-9d21-4f6e8a2b1c0d".into();
        dce.request.path =
            "/apis/ghippo.io/v1alpha1/users/0b9c2f4e-7a51-4d0a-9f3e-2c8d1b6a5e47".into();
        dce.request.remote_addr = "2001:db8:85a3::8a2e:370:7334".into();
        let kept = KeptEvent::pack(&dce, &["wecom-ops".to_owned(), "audit-sink".to_owned()]);
        assert!(kept.spill.is_none(), "{} bytes", kept.bytes().len());
        let bio = "b".repeat(MAX_VALUE_CHARS);
        let big = event(&[("ID", "1"), ("Bio", &bio), ("Note", &bio)], &[]);
        let kept = KeptEvent::pack(&big, &[]);
        assert!(kept.spill.is_some());
        assert_eq!(kept.fields().next(), Some(("Bio", bio.as_str())));
        assert_eq!(kept.user_values().collect::<Vec<_>>(), ["1"]);
    }

    #[test]
    fn repacking_in_place_leaves_nothing_of_the_event_before() {
        let bio = "b".repeat(MAX_VALUE_CHARS);
        let big = event(
            &[
                ("ID", "1"),
                ("Bio", &bio),
                ("Note", &bio),
                ("password", "CANARY"),
            ],
            &["Bio"],
        );
        let mut custom = event(&[("ID", "2")], &[]);
        custom.action = "mfa_enrolled".parse().unwrap();
        custom.event_type = custom.action.event_type().to_owned().into();
        let small = event(&[("ID", "3"), ("Email", "c@x")], &[]);
        let targets = ["ops".to_owned()];
        let mut slot = KeptEvent::pack(&small, &[]);
        for ev in [&big, &small, &custom, &big, &custom, &small] {
            slot.repack(ev, &targets);
            assert_eq!(slot.spill.is_some(), std::ptr::eq(ev, &big));
            assert_eq!(slot.json(&targets).unwrap(), reference(ev, &targets));
            assert_eq!(
                slot.user_values().collect::<Vec<_>>(),
                KeptEvent::pack(ev, &targets)
                    .user_values()
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn long_values_are_cut_when_packed_but_filter_keys_stay_whole() {
        let long = "x".repeat(10_000);
        let ev = event(&[("ID", &long), ("Bio", &long), ("Email", "e@x")], &[]);
        let kept = KeptEvent::pack(&ev, &[]);
        let len = kept.bytes().len();
        assert!(len < 10_000 + 2 * MAX_VALUE_CHARS, "{len}");
        let bio = kept.fields().find(|(k, _)| *k == "Bio").unwrap().1;
        assert_eq!(bio.len(), MAX_VALUE_CHARS + 1);
        assert_eq!(
            kept.user_values().collect::<Vec<_>>(),
            [long.as_str(), "e@x"]
        );
        let shown: serde_json::Value = serde_json::from_str(&kept.json(&[]).unwrap()).unwrap();
        let bio = shown["user"]["Bio"].as_str().unwrap();
        assert_eq!(bio.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(bio.ends_with('…'));
        assert_eq!(
            shown["user"]["ID"].as_str().unwrap().chars().count(),
            MAX_VALUE_CHARS + 1
        );
    }

    #[test]
    fn a_value_just_over_the_limit_in_bytes_but_not_in_characters_is_kept_whole() {
        let value = "é".repeat(MAX_VALUE_CHARS / 2 + 1);
        assert!(value.len() > MAX_VALUE_CHARS);
        let kept = KeptEvent::pack(&event(&[("Bio", &value)], &[]), &[]);
        assert_eq!(kept.fields().next(), Some(("Bio", value.as_str())));
    }

    #[test]
    fn the_estimate_grows_with_what_the_frame_holds() {
        let small = KeptEvent::pack(&event(&[("ID", "1")], &[]), &[]);
        let big = KeptEvent::pack(
            &event(&[("ID", "1"), ("Bio", &"b".repeat(200))], &["Bio"]),
            &[],
        );
        let frame_len = |k: &KeptEvent| k.json(&[]).unwrap().len() + 40;
        for k in [&small, &big] {
            let estimate = k.estimated_frame_len();
            assert!(estimate >= frame_len(k), "{estimate} < {}", frame_len(k));
        }
        assert!(big.estimated_frame_len() > small.estimated_frame_len() + 200);
    }
}
