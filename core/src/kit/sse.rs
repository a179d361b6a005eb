//! Streamed answers, decoded bounded and total: lines ([`LineDecoder`],
//! for newline-delimited JSON such as Ollama's native streams) and
//! server-sent events ([`SseDecoder`], OpenAI-compatible streams).
//!
//! Bytes arrive in chunks cut anywhere (inside a line, inside a UTF-8
//! character, between `\r` and `\n`). [`SseDecoder::feed`] keeps the
//! unfinished line and returns the events completed so far: `data:` lines
//! joined by `\n` up to a blank line, with the `event:` name. Comments
//! (`: keepalive`), `id:` and `retry:` lines are ignored. A line or an
//! event larger than the bound is an [`ErrorKind::Protocol`] error (the
//! decoder never holds more than the bound plus one chunk), as is data that
//! is not UTF-8.

use crate::{Error, ErrorKind, Result};

/// Splits a byte stream into lines ended by `\n`, `\r\n` or `\r`, holding
/// at most `max_bytes` of an unfinished line (a longer line is an
/// [`ErrorKind::Protocol`] error).
#[derive(Debug)]
pub struct LineDecoder {
    max_bytes: usize,
    /// The setting that bounds it, named in the error.
    limit_name: Option<&'static str>,
    line: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
}

impl LineDecoder {
    /// A decoder accepting lines of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        LineDecoder {
            max_bytes,
            limit_name: None,
            line: Vec::new(),
            after_cr: false,
        }
    }

    /// The lines the chunk completes (without their line ends).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        if std::mem::take(&mut self.after_cr) && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&rest[..end])?;
            lines.push(std::mem::take(&mut self.line));
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            self.after_cr = rest[end] == b'\r' && end + 1 == rest.len();
            rest = &rest[end + 1 + usize::from(crlf)..];
        }
        self.extend_line(rest)?;
        Ok(lines)
    }

    /// The last line when the stream ended without its line end, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let line = std::mem::take(&mut self.line);
        (!line.is_empty()).then_some(line)
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<()> {
        if self.line.len() + bytes.len() > self.max_bytes {
            return Err(too_large("line", self.max_bytes, self.limit_name));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }
}

/// One event: its name (`None` for the default `message`) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when given.
    pub name: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// The decoder state between chunks.
#[derive(Debug)]
pub struct SseDecoder {
    max_bytes: usize,
    lines: LineDecoder,
    data: Option<String>,
    name: Option<String>,
}

impl SseDecoder {
    /// The same decoder naming `setting` (the key that sets the bound) in
    /// its errors about a line or an event too long.
    pub fn with_limit_name(mut self, setting: &'static str) -> Self {
        self.lines.limit_name = Some(setting);
        self
    }

    /// A decoder accepting lines and events of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        SseDecoder {
            max_bytes,
            lines: LineDecoder::new(max_bytes),
            data: None,
            name: None,
        }
    }

    /// The events the chunk completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>> {
        let mut events = Vec::new();
        for line in self.lines.feed(chunk)? {
            if let Some(event) = self.line_done(&line)? {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// The event still open when the body ended without its blank line
    /// (servers that end with `data: [DONE]\n`), if any.
    pub fn finish(&mut self) -> Result<Option<SseEvent>> {
        if let Some(line) = self.lines.finish() {
            self.line_done(&line)?;
        }
        Ok(self.dispatch())
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<SseEvent>> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::new(ErrorKind::Protocol, "an event-stream line is not UTF-8"))?;
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                if data.len() + value.len() + 1 > self.max_bytes {
                    return Err(too_large("event", self.max_bytes, self.lines.limit_name));
                }
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            "event" => self.name = Some(value.to_owned()),
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let name = self.name.take();
        self.data.take().map(|data| SseEvent { name, data })
    }
}

fn too_large(what: &str, max: usize, setting: Option<&str>) -> Error {
    let hint = setting.map(|s| format!(" ({s})")).unwrap_or_default();
    Error::new(
        ErrorKind::Protocol,
        format!("a streamed {what} is longer than {max} bytes{hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn events_survive_any_chunking() {
        let stream = "data: {\"a\":1}\r\n\r\n: keepalive\n\nevent: error\ndata: x\ndata: y\n\n\
                      id: 7\nretry: 10\ndata: é\r\rdata: [DONE]\n\n";
        let whole = SseDecoder::new(1024).feed(stream.as_bytes()).unwrap();
        assert_eq!(data(&whole), vec!["{\"a\":1}", "x\ny", "é", "[DONE]"]);
        assert_eq!(whole[1].name.as_deref(), Some("error"));
        // Every split point, including inside `\r\n` and inside `é`.
        for cut in 0..stream.len() {
            let mut d = SseDecoder::new(1024);
            let mut events = d.feed(&stream.as_bytes()[..cut]).unwrap();
            events.extend(d.feed(&stream.as_bytes()[cut..]).unwrap());
            assert_eq!(events, whole, "cut at {cut}");
        }
        // Byte by byte.
        let mut d = SseDecoder::new(1024);
        let events: Vec<SseEvent> = stream
            .as_bytes()
            .iter()
            .flat_map(|b| d.feed(std::slice::from_ref(b)).unwrap())
            .collect();
        assert_eq!(events, whole);
    }

    #[test]
    fn an_unfinished_event_is_handed_out_at_the_end() {
        let mut d = SseDecoder::new(64);
        assert!(d.feed(b"data: [DONE]").unwrap().is_empty());
        assert_eq!(d.finish().unwrap().unwrap().data, "[DONE]");
        assert_eq!(SseDecoder::new(64).finish().unwrap(), None);
    }

    #[test]
    fn long_lines_and_events_are_refused() {
        let mut d = SseDecoder::new(16);
        let e = d
            .feed(&[b'a'; 10])
            .and_then(|_| d.feed(&[b'a'; 10]))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("line"), "{e}");
        let mut d = SseDecoder::new(16);
        let e = d.feed(b"data: 0123456789\ndata: 0123456789\n").unwrap_err();
        assert!(e.message().contains("event"), "{e}");
        let mut named = SseDecoder::new(4).with_limit_name("stream_max_event_bytes");
        let e = named.feed(b"data: 0123\n").unwrap_err();
        assert!(e.message().ends_with("(stream_max_event_bytes)"), "{e}");
        let e = SseDecoder::new(16).feed(b"data: \xff\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }
}
