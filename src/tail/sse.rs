//! An incremental Server-Sent Events parser (the WHATWG rules): bytes in as they arrive, whole
//! events out. Lines end with LF, CRLF or CR; `:` starts a comment; a blank line dispatches;
//! `data:` lines join with newlines; an `id:` (without NUL) sets the last event id, which the
//! client sends back as `Last-Event-ID` when it reconnects; `retry:` sets the reconnect delay.
//! Holds at most one unfinished line beyond what it parsed, and refuses lines longer than
//! [`MAX_LINE`] (a stream that is not SSE, or a broken one).

/// Longest line accepted; a longer one is an error (nothing userhook sends comes close).
pub const MAX_LINE: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event:`, or `message` when none was given.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event id as of this event (the stream's, not only this event's).
    pub id: Option<String>,
}

/// A line over [`MAX_LINE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stream sent a line longer than {MAX_LINE} bytes: not an event stream")]
pub struct LineTooLong;

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// A CR ended the last line: an LF right after it belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
    retry_ms: Option<u64>,
}

impl Parser {
    /// A parser at the start of a stream, resuming with `last_id` (kept across reconnects).
    pub fn new(last_id: Option<String>) -> Parser {
        Parser {
            last_id,
            ..Parser::default()
        }
    }

    /// The last event id seen (what a reconnect sends as `Last-Event-ID`).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The server's `retry:` in milliseconds, if it sent one.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Feeds a chunk; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, LineTooLong> {
        let mut out = Vec::new();
        for &b in chunk {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.line_done(&line) {
                        out.push(ev);
                    }
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.first() == Some(&b':') {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        let data = self.data.take()?;
        Some(Event {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".into()),
            data,
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn events_comments_ids_and_retry() {
        let mut p = Parser::new(None);
        let got = p
            .feed(b"retry: 2000\n: hello\n\nid: a-1\nevent: detected\ndata: {\"x\":1}\n\n")
            .unwrap();
        assert_eq!(got, [ev("detected", "{\"x\":1}", Some("a-1"))]);
        assert_eq!(p.retry_ms(), Some(2000));
        // An event without id keeps the last one; no event name is `message`.
        let got = p.feed(b"data: a\ndata: b\n\n").unwrap();
        assert_eq!(got, [ev("message", "a\nb", Some("a-1"))]);
        assert_eq!(p.last_id(), Some("a-1"));
        // Comments and blocks without data dispatch nothing.
        assert!(p.feed(b": heartbeat\n\nevent: x\n\n").unwrap().is_empty());
        // ...and the dropped event name does not leak into the next one.
        assert_eq!(
            p.feed(b"data:z\n\n").unwrap(),
            [ev("message", "z", Some("a-1"))]
        );
    }

    #[test]
    fn any_chunking_and_line_ending_gives_the_same_events() {
        let stream = "id: i-1\nevent: delivery\ndata: {\"a\":\"b\"}\n\n: beat\n\nid: i-2\r\ndata: two\r\n\r\nid: i-3\rdata: three\r\r";
        let want = [
            ev("delivery", "{\"a\":\"b\"}", Some("i-1")),
            ev("message", "two", Some("i-2")),
            ev("message", "three", Some("i-3")),
        ];
        for size in 1..stream.len() {
            let mut p = Parser::new(None);
            let mut got = Vec::new();
            for chunk in stream.as_bytes().chunks(size) {
                got.extend(p.feed(chunk).unwrap());
            }
            assert_eq!(got, want, "chunks of {size}");
            assert_eq!(p.last_id(), Some("i-3"));
        }
    }

    #[test]
    fn a_resumed_parser_keeps_its_id_and_an_id_with_nul_is_ignored() {
        let mut p = Parser::new(Some("x-9".into()));
        assert_eq!(
            p.feed(b"data: d\n\n").unwrap(),
            [ev("message", "d", Some("x-9"))]
        );
        p.feed(b"id: bad\0id\ndata: e\n\n").unwrap();
        assert_eq!(p.last_id(), Some("x-9"));
    }

    #[test]
    fn endless_lines_are_refused() {
        let mut p = Parser::new(None);
        let big = vec![b'a'; MAX_LINE];
        assert!(p.feed(&big).is_ok());
        assert_eq!(p.feed(b"a"), Err(LineTooLong));
    }
}
