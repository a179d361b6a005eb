//! Streamed generation through a blueprint: the `stream:` section of a
//! `generate` or `chat` action, and the decoding of the answer's events.
//!
//! ```yaml
//! stream:
//!   format: sse                 # sse (server-sent events) or ndjson (one JSON object a line)
//!   done: "[DONE]"              # sse: the data that ends the stream
//!   set: {stream: true}         # members set on the body's top level when streaming
//!   response:
//!     text: choices[0].delta.content       # the text delta (absent: no text in that event)
//!     finish_reason: choices[0].finish_reason
//!     completion_tokens: usage.completion_tokens
//!     error: error              # present in an event: a ModelError item ends the stream
//!     end: done                 # true in an event: it is the last (ndjson)
//!   max_line_bytes: 1048576     # longest line or event (default 1 MiB)
//!   max_events: 100000          # most events in one stream (default 100 000)
//! ```

use std::collections::{BTreeMap, VecDeque};

use inferlink_core::kit::sse::{LineDecoder, SseDecoder};
use inferlink_core::{Error, ErrorKind, FinishReason, GenerateDelta, Result, Usage};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::path::ResponsePath;

/// The default bound of one line or event, in bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;
/// The default bound of events in one stream.
pub const DEFAULT_MAX_EVENTS: usize = 100_000;
/// The largest `max_line_bytes` a blueprint may set (64 MiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;
/// The largest `max_events` a blueprint may set.
pub const MAX_EVENTS: usize = 10_000_000;

/// Why a stream that stopped early fails.
const CUT_SHORT: &str = "the stream ended before its end marker and before a finish reason";

/// The response keys of a stream, all optional but `text`.
pub const STREAM_KEYS: &[&str] = &[
    "text",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "error",
    "end",
];

/// How events are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamFormat {
    /// Server-sent events: `data:` lines up to a blank line.
    Sse,
    /// Newline-delimited JSON: one object per line.
    Ndjson,
}

/// A `stream:` section as written (`format` required, the rest optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StreamDoc {
    format: Option<StreamFormat>,
    done: Option<String>,
    set: Map<String, Value>,
    response: BTreeMap<String, String>,
    max_line_bytes: Option<usize>,
    max_events: Option<usize>,
}

/// A checked `stream:` section.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// How events are framed.
    pub format: StreamFormat,
    /// SSE: the data that ends the stream (`[DONE]`).
    pub done: Option<String>,
    /// Members set on the body's top level when streaming (constants).
    pub set: Map<String, Value>,
    /// Response key → path, read in each event.
    pub response: BTreeMap<String, ResponsePath>,
    /// Longest line or event.
    pub max_line_bytes: usize,
    /// Most events in one stream.
    pub max_events: usize,
}

impl StreamSpec {
    /// Checks a section; a problem is `(location under the section, why)`.
    pub(crate) fn check(doc: &StreamDoc) -> std::result::Result<StreamSpec, (String, String)> {
        let problem = |at: &str, why: &str| Err((at.to_owned(), why.to_owned()));
        let Some(format) = doc.format else {
            return problem("format", "say how events are framed: sse or ndjson");
        };
        if doc.done.is_some() && format != StreamFormat::Sse {
            return problem(
                "done",
                "an end marker is for sse streams (ndjson: response.end)",
            );
        }
        if doc.set.values().any(holds_placeholder) {
            return problem("set", "set holds constants only, no `${...}`");
        }
        let mut response = BTreeMap::new();
        for (key, text) in &doc.response {
            let here = format!("response.{key}");
            if !STREAM_KEYS.contains(&key.as_str()) {
                let why = format!("unknown stream key; it has: {}", STREAM_KEYS.join(", "));
                return Err((here, why));
            }
            let parsed = ResponsePath::parse(text).map_err(|e| (here.clone(), e.to_string()))?;
            if parsed.is_many() {
                return problem(&here, "this path selects one value: no `[*]`");
            }
            response.insert(key.clone(), parsed);
        }
        if !response.contains_key("text") {
            return problem("response", "maps no `text`");
        }
        let bounded = |value: Option<usize>, default: usize, max: usize, at: &str| match value {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(_) => Err((at.to_owned(), format!("a whole number from 1 to {max}"))),
        };
        Ok(StreamSpec {
            format,
            done: doc.done.clone(),
            set: doc.set.clone(),
            response,
            max_line_bytes: bounded(
                doc.max_line_bytes,
                DEFAULT_MAX_LINE_BYTES,
                MAX_LINE_BYTES,
                "max_line_bytes",
            )?,
            max_events: bounded(doc.max_events, DEFAULT_MAX_EVENTS, MAX_EVENTS, "max_events")?,
        })
    }

    /// The body to send: the rendered one with `set`'s members over it.
    pub fn body(&self, rendered: Value) -> Value {
        match rendered {
            Value::Object(mut members) => {
                members.extend(self.set.clone());
                Value::Object(members)
            }
            other => other,
        }
    }
}

fn holds_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${"),
        Value::Array(items) => items.iter().any(holds_placeholder),
        Value::Object(members) => members.values().any(holds_placeholder),
        _ => false,
    }
}

/// The framing decoder of one stream.
#[derive(Debug)]
enum Framing {
    Sse(SseDecoder),
    Lines(LineDecoder),
}

/// Turns a stream's bytes into pieces: fed chunk by chunk, bounded in
/// line length and event count; every problem is an error item that ends
/// the stream.
#[derive(Debug)]
pub struct StreamDecoder {
    spec: StreamSpec,
    framing: Framing,
    events: usize,
    /// Pieces decoded and not yet handed out.
    ready: VecDeque<Result<GenerateDelta>>,
    /// Nothing more is read: the end marker, an error, or the body's end.
    ended: bool,
    /// A finish reason came.
    finished: bool,
}

impl StreamDecoder {
    /// A decoder for streams of `spec`.
    pub fn new(spec: StreamSpec) -> Self {
        let framing = match spec.format {
            StreamFormat::Sse => Framing::Sse(SseDecoder::new(spec.max_line_bytes)),
            StreamFormat::Ndjson => Framing::Lines(LineDecoder::new(spec.max_line_bytes)),
        };
        StreamDecoder {
            spec,
            framing,
            events: 0,
            ready: VecDeque::new(),
            ended: false,
            finished: false,
        }
    }

    /// True when nothing more is to be read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next decoded piece, if one is ready.
    pub fn pop(&mut self) -> Option<Result<GenerateDelta>> {
        self.ready.pop_front()
    }

    /// Decodes a chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.ended {
            return;
        }
        let datas: Result<Vec<String>> = match &mut self.framing {
            Framing::Sse(d) => d
                .feed(chunk)
                .map(|events| events.into_iter().map(|e| e.data).collect()),
            Framing::Lines(d) => d.feed(chunk).and_then(lines_text),
        };
        self.take(datas);
    }

    /// The body ended (or failed with `error`).
    pub fn finish(&mut self, error: Option<Error>) {
        let last: Result<Vec<String>> = match (error, &mut self.framing) {
            (Some(e), _) => Err(e),
            (None, Framing::Sse(d)) => d.finish().map(|e| e.into_iter().map(|e| e.data).collect()),
            (None, Framing::Lines(d)) => lines_text(d.finish().into_iter().collect()),
        };
        self.take(last);
        let cut_short = !(self.ended || self.finished);
        if cut_short {
            self.fail(Error::new(ErrorKind::Protocol, CUT_SHORT));
        }
        self.ended = true;
    }

    fn fail(&mut self, e: Error) {
        if !std::mem::replace(&mut self.ended, true) {
            self.ready.push_back(Err(e));
        }
    }

    fn take(&mut self, datas: Result<Vec<String>>) {
        match datas {
            Err(e) => self.fail(e),
            Ok(datas) => {
                let events = datas.iter().map(|d| d.trim()).filter(|d| !d.is_empty());
                for data in events {
                    if self.ended {
                        break;
                    }
                    self.take_event(data);
                }
            }
        }
    }

    /// One event's data: the end marker, or a piece (or an error).
    fn take_event(&mut self, data: &str) {
        if self.spec.done.as_deref() == Some(data) {
            self.ended = true;
            return;
        }
        self.events += 1;
        if self.events > self.spec.max_events {
            let why = format!("the stream has more than {} events", self.spec.max_events);
            return self.fail(Error::new(ErrorKind::Protocol, why));
        }
        match self.event(data) {
            Err(e) => self.fail(e),
            Ok((piece, end)) => {
                self.finished |= piece.finish_reason.is_some();
                // An event that carries nothing (a role-only delta) is no piece.
                let carries = !piece.text.is_empty()
                    || piece.finish_reason.is_some()
                    || piece.usage.is_some();
                if carries {
                    self.ready.push_back(Ok(piece));
                }
                self.ended |= end;
            }
        }
    }

    /// One event's piece, and whether it is the last.
    fn event(&self, data: &str) -> Result<(GenerateDelta, bool)> {
        let event: Value = serde_json::from_str(data).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("a streamed event is not JSON ({e})"),
            )
        })?;
        let at = |key: &str| {
            self.spec
                .response
                .get(key)
                .and_then(|p| p.select_optional(&event))
        };
        if let Some(message) = at("error") {
            let text = match message {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            return Err(
                Error::new(ErrorKind::ModelError, "the server sent an error mid-stream")
                    .with_vendor_message(text),
            );
        }
        let text = match at("text") {
            None => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => {
                let path = &self.spec.response["text"];
                let why = format!(
                    "{} instead of a text",
                    inferlink_core::kit::json_kind(other)
                );
                return Err(path.mismatch(&why));
            }
        };
        let finish = at("finish_reason")
            .and_then(Value::as_str)
            .map(FinishReason::from_word);
        let count = |key: &str| at(key).and_then(Value::as_u64);
        let usage = Usage {
            prompt_tokens: count("prompt_tokens"),
            completion_tokens: count("completion_tokens"),
            total_tokens: count("total_tokens"),
        };
        let usage = (usage != Usage::default()).then_some(usage);
        let end = at("end").and_then(Value::as_bool) == Some(true);
        Ok((GenerateDelta::new(text, finish, usage), end))
    }
}

/// Lines as UTF-8 text.
fn lines_text(lines: Vec<Vec<u8>>) -> Result<Vec<String>> {
    lines
        .into_iter()
        .map(|line| {
            String::from_utf8(line)
                .map_err(|_| Error::new(ErrorKind::Protocol, "a streamed line is not UTF-8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> StreamSpec {
        let doc: StreamDoc = serde_saphyr::from_str(yaml).unwrap();
        StreamSpec::check(&doc).unwrap()
    }

    fn ndjson() -> StreamSpec {
        spec(
            "format: ndjson\nresponse: {text: response, finish_reason: done_reason, end: done, completion_tokens: eval_count, error: error}\nmax_line_bytes: 64\nmax_events: 3\n",
        )
    }

    fn drain(d: &mut StreamDecoder) -> Vec<Result<GenerateDelta>> {
        std::iter::from_fn(|| d.pop()).collect()
    }

    #[test]
    fn ndjson_pieces_survive_any_chunking_and_end_at_done() {
        let body = "{\"response\":\"Hel\",\"done\":false}\n{\"response\":\"lo\",\"done\":false}\r\n{\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"eval_count\":2}\n{\"response\":\"after\"}\n";
        for cut in 0..body.len() {
            let mut d = StreamDecoder::new(ndjson());
            d.feed(&body.as_bytes()[..cut]);
            d.feed(&body.as_bytes()[cut..]);
            assert!(d.ended(), "cut at {cut}");
            let pieces: Vec<GenerateDelta> =
                drain(&mut d).into_iter().map(Result::unwrap).collect();
            let text: String = pieces.iter().map(|p| p.text.as_str()).collect();
            assert_eq!(text, "Hello", "cut at {cut}");
            let last = pieces.last().unwrap();
            assert_eq!(last.finish_reason, Some(FinishReason::Stop));
            assert_eq!(last.usage.unwrap().completion_tokens, Some(2));
        }
    }

    #[test]
    fn hostile_streams_end_with_one_typed_error() {
        let cases: [(&[u8], ErrorKind); 5] = [
            (b"{\"response\":\"x\"}\nnot json\n", ErrorKind::Protocol),
            (b"{\"response\":7}\n", ErrorKind::Protocol),
            (b"{\"error\":\"model crashed\"}\n", ErrorKind::ModelError),
            (&[b'{'; 100], ErrorKind::Protocol),
            (b"{}\n{}\n{}\n{}\n", ErrorKind::Protocol),
        ];
        for (body, kind) in cases {
            let mut d = StreamDecoder::new(ndjson());
            d.feed(body);
            d.finish(None);
            let items = drain(&mut d);
            let errors: Vec<&Error> = items.iter().filter_map(|i| i.as_ref().err()).collect();
            assert_eq!(errors.len(), 1, "{items:?}");
            assert_eq!(errors[0].kind(), kind, "{}", errors[0]);
            assert!(items.last().unwrap().is_err());
        }
        // A body that stops before the end: a Protocol error after the pieces.
        let mut d = StreamDecoder::new(ndjson());
        d.feed(b"{\"response\":\"Hel\",\"done\":false}\n");
        d.finish(None);
        let items = drain(&mut d);
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].as_ref().unwrap_err().kind(), ErrorKind::Protocol);
    }

    #[test]
    fn sse_ends_at_its_marker() {
        let s = spec(
            "format: sse\ndone: \"[DONE]\"\nset: {stream: true}\nresponse: {text: \"choices[0].delta.content\"}\n",
        );
        let mut d = StreamDecoder::new(s.clone());
        d.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n");
        assert!(d.ended());
        let text: String = drain(&mut d).into_iter().map(|p| p.unwrap().text).collect();
        assert_eq!(text, "Hi");
        let body = s.body(serde_json::json!({"model": "m", "stream": false}));
        assert_eq!(body["stream"], true);
    }

    #[test]
    fn bad_sections_are_refused_where_they_are() {
        let refused = |yaml: &str| {
            let doc: StreamDoc = serde_saphyr::from_str(yaml).unwrap();
            StreamSpec::check(&doc).unwrap_err().0
        };
        assert_eq!(refused("format: ndjson\nresponse: {}\n"), "response");
        assert_eq!(refused("response: {text: a}\n"), "format");
        assert_eq!(
            refused("format: ndjson\ndone: x\nresponse: {text: a}\n"),
            "done"
        );
        assert_eq!(
            refused("format: sse\nset: {model: \"${model}\"}\nresponse: {text: a}\n"),
            "set"
        );
        assert_eq!(
            refused("format: sse\nresponse: {text: a, vectors: b}\n"),
            "response.vectors"
        );
        assert_eq!(
            refused("format: sse\nresponse: {text: a}\nmax_events: 0\n"),
            "max_events"
        );
    }
}
