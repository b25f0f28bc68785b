//! An incremental Server-Sent-Events parser: feed it byte chunks exactly as they arrive (split
//! anywhere, even inside a line ending or a UTF-8 character) and it returns each complete event.
//! Lines are decoded only once whole, so a character split across chunks is never damaged.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when one was given.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

impl SseEvent {
    /// The OpenAI-style end marker `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.trim() == "[DONE]"
    }
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, not yet complete line.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to that line end.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.end_line(&mut out);
                    self.after_cr = true;
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// The stream ended: a last event without its blank line is still delivered (lenient servers).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.dispatch(&mut out);
        out.pop()
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return; // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {} // id, retry and unknown fields do not matter here
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if std::mem::take(&mut self.has_data) {
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = concat!(
        ": keep-alive\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}\n\n",
        "event: message\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"llo 世界 🌍\"}}]}\r\n\r\n",
        "data: line one\rdata: line two\r\r",
        "id: 7\nretry: 10\ndata:no-space\n\n",
        "data: [DONE]\n\n",
    );

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut events: Vec<SseEvent> = chunks.iter().flat_map(|c| p.feed(c)).collect();
        events.extend(p.finish());
        events
    }

    fn expected() -> Vec<SseEvent> {
        let ev = |event: Option<&str>, data: &str| SseEvent {
            event: event.map(Into::into),
            data: data.into(),
        };
        vec![
            ev(None, "{\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}"),
            ev(
                Some("message"),
                "{\"choices\":[{\"delta\":{\"content\":\"llo 世界 🌍\"}}]}",
            ),
            ev(None, "line one\nline two"),
            ev(None, "no-space"),
            ev(None, "[DONE]"),
        ]
    }

    #[test]
    fn whole_stream() {
        let events = parse_all(&[SAMPLE.as_bytes()]);
        assert_eq!(events, expected());
        assert!(events.last().unwrap().is_done());
    }

    #[test]
    fn every_single_split_point_gives_the_same_events() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            assert_eq!(
                parse_all(&[&bytes[..i], &bytes[i..]]),
                expected(),
                "split at {i}"
            );
        }
    }

    #[test]
    fn every_pair_of_split_points_gives_the_same_events() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let got = parse_all(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, expected(), "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let chunks: Vec<&[u8]> = SAMPLE.as_bytes().chunks(1).collect();
        assert_eq!(parse_all(&chunks), expected());
    }

    #[test]
    fn a_last_event_without_blank_line_is_delivered_at_finish() {
        let events = parse_all(&[b"data: a\n\ndata: [DONE]"]);
        assert_eq!(events.len(), 2);
        assert!(events[1].is_done());
    }

    #[test]
    fn comments_and_empty_events_produce_nothing() {
        assert!(parse_all(&[b": ping\n\n:\n\n\n\nevent: x\n\n"]).is_empty());
    }
}
