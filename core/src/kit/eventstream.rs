//! The AWS event-stream framing (`application/vnd.amazon.eventstream`), shared
//! by every connector whose AWS API streams answers: SageMaker's
//! `InvokeEndpointWithResponseStream`, Bedrock's
//! `InvokeModelWithResponseStream` and `ConverseStream` (feature `eventstream`).
//!
//! A message is, big-endian:
//!
//! ```text
//! total_len u32 | headers_len u32 | prelude_crc u32 | headers | payload | message_crc u32
//! ```
//!
//! `prelude_crc` is the CRC32 of the first 8 bytes and `message_crc` the CRC32
//! of everything before it, so a message has 16 bytes of overhead. A header is
//! `name_len u8 | name | type u8 | value`; the value types are listed in
//! [`HeaderValue`].
//!
//! [`decode_message`] reads one complete message; [`MessageDecoder`] reads
//! messages from a byte stream cut at arbitrary points (as HTTP chunks are);
//! [`messages`] turns a response body into a stream of messages;
//! [`Message::kind`] says whether a message is an event, a modelled
//! exception or an error; [`encode_message`] writes one (for tests and test
//! servers). Every check that fails is an [`ErrorKind::Protocol`] error
//! saying what and at which offset.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt as _;

use crate::connector::ByteStream;
use crate::error::{Error, ErrorKind, Result};

/// The media type of an event stream.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Bytes before the headers: total length, headers length, prelude CRC.
pub const PRELUDE_LEN: usize = 12;
/// Bytes a message has besides its headers and payload.
pub const OVERHEAD: usize = PRELUDE_LEN + 4;
/// The largest message accepted (AWS caps messages at 16 MiB).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
/// The largest headers section accepted (AWS caps it at 128 KiB).
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

/// A header value, by its wire type code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Type 0 (`true`) or 1 (`false`): no value bytes.
    Bool(bool),
    /// Type 2: one byte.
    Byte(i8),
    /// Type 3: two bytes.
    Int16(i16),
    /// Type 4: four bytes.
    Int32(i32),
    /// Type 5: eight bytes.
    Int64(i64),
    /// Type 6: a u16 length, then the bytes.
    Bytes(Bytes),
    /// Type 7: a u16 length, then UTF-8 text.
    String(String),
    /// Type 8: milliseconds since the Unix epoch, eight bytes.
    Timestamp(i64),
    /// Type 9: sixteen bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The text of a `String` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn type_code(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => 0,
            HeaderValue::Bool(false) => 1,
            HeaderValue::Byte(_) => 2,
            HeaderValue::Int16(_) => 3,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) => 5,
            HeaderValue::Bytes(_) => 6,
            HeaderValue::String(_) => 7,
            HeaderValue::Timestamp(_) => 8,
            HeaderValue::Uuid(_) => 9,
        }
    }
}

/// One event-stream message: headers in wire order, and the payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The headers, in the order they were sent.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload (shared with the buffer it was read from).
    pub payload: Bytes,
}

impl Message {
    /// A message with a payload and no headers.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Message {
            headers: Vec::new(),
            payload: payload.into(),
        }
    }

    /// An `event` message of type `event_type` with a JSON payload (the
    /// headers AWS services send: `:event-type`, `:content-type:
    /// application/json`, `:message-type: event`).
    pub fn json_event(event_type: &str, payload: impl Into<Bytes>) -> Self {
        Message::new(payload)
            .with_string_header(":event-type", event_type)
            .with_string_header(":content-type", "application/json")
            .with_string_header(":message-type", "event")
    }

    /// An `exception` message of type `exception_type` with a JSON payload
    /// (`:exception-type`, `:content-type: application/json`,
    /// `:message-type: exception`).
    pub fn json_exception(exception_type: &str, payload: impl Into<Bytes>) -> Self {
        Message::new(payload)
            .with_string_header(":exception-type", exception_type)
            .with_string_header(":content-type", "application/json")
            .with_string_header(":message-type", "exception")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: HeaderValue) -> Self {
        self.headers.push((name.into(), value));
        self
    }

    /// Adds a string header.
    pub fn with_string_header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_header(name, HeaderValue::String(value.into()))
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
    }

    /// The text of the first string header called `name`.
    pub fn string_header(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// What the message is, by its `:message-type` header (a message
    /// without one is an event, as AWS's decoders treat it).
    pub fn kind(&self) -> MessageKind<'_> {
        match self.string_header(":message-type") {
            Some("exception") => MessageKind::Exception {
                exception_type: self.string_header(":exception-type").unwrap_or("unknown"),
            },
            Some("error") => MessageKind::Error {
                code: self.string_header(":error-code").unwrap_or("unknown"),
                message: self.string_header(":error-message").unwrap_or_default(),
            },
            _ => MessageKind::Event {
                event_type: self.string_header(":event-type").unwrap_or_default(),
            },
        }
    }
}

/// What an event-stream message carries ([`Message::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind<'a> {
    /// `:message-type: event`: a member of the stream, named by `:event-type`
    /// (`PayloadPart`, `chunk`, `contentBlockDelta`, …; empty when absent).
    Event {
        /// The `:event-type` header.
        event_type: &'a str,
    },
    /// `:message-type: exception`: a modelled error named by
    /// `:exception-type`; its payload is the exception's JSON body.
    Exception {
        /// The `:exception-type` header (`unknown` when absent).
        exception_type: &'a str,
    },
    /// `:message-type: error`: an unmodelled error with `:error-code` and
    /// `:error-message` headers.
    Error {
        /// The `:error-code` header (`unknown` when absent).
        code: &'a str,
        /// The `:error-message` header (may be empty).
        message: &'a str,
    },
}

fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

/// Writes one message. Errors ([`ErrorKind::InvalidInput`]): a header name
/// longer than 255 bytes, a string or bytes value longer than 65535 bytes,
/// or a message over [`MAX_MESSAGE_LEN`].
pub fn encode_message(message: &Message) -> Result<Bytes> {
    let mut headers = Vec::new();
    for (name, value) in &message.headers {
        let name_len = u8::try_from(name.len()).map_err(|_| {
            Error::invalid(format!(
                "event-stream header name of {} bytes (at most 255)",
                name.len()
            ))
        })?;
        headers.push(name_len);
        headers.extend_from_slice(name.as_bytes());
        headers.push(value.type_code());
        match value {
            HeaderValue::Bool(_) => {}
            HeaderValue::Byte(v) => headers.extend_from_slice(&v.to_be_bytes()),
            HeaderValue::Int16(v) => headers.extend_from_slice(&v.to_be_bytes()),
            HeaderValue::Int32(v) => headers.extend_from_slice(&v.to_be_bytes()),
            HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => {
                headers.extend_from_slice(&v.to_be_bytes())
            }
            HeaderValue::Bytes(b) => push_sized(&mut headers, name, b)?,
            HeaderValue::String(s) => push_sized(&mut headers, name, s.as_bytes())?,
            HeaderValue::Uuid(u) => headers.extend_from_slice(u),
        }
    }
    let total = OVERHEAD + headers.len() + message.payload.len();
    if total > MAX_MESSAGE_LEN || headers.len() > MAX_HEADERS_LEN {
        return Err(Error::invalid(format!(
            "event-stream message of {total} bytes with {} bytes of headers is too large",
            headers.len()
        )));
    }
    let mut out = BytesMut::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&message.payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Ok(out.freeze())
}

fn push_sized(out: &mut Vec<u8>, name: &str, value: &[u8]) -> Result<()> {
    let len = u16::try_from(value.len()).map_err(|_| {
        Error::invalid(format!(
            "event-stream header `{name}` has a value of {} bytes (at most 65535)",
            value.len()
        ))
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Reads the prelude at the start of `buf` (at least [`PRELUDE_LEN`] bytes):
/// checks its CRC and the lengths, and returns the total message length.
fn check_prelude(buf: &[u8], offset: u64) -> Result<usize> {
    let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let headers_len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let sent_crc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let crc = crc32fast::hash(&buf[..8]);
    if crc != sent_crc {
        return Err(protocol(format!(
            "event-stream message at byte {offset}: prelude CRC32 mismatch (computed {crc:08x}, \
             the message says {sent_crc:08x})"
        )));
    }
    if !(OVERHEAD..=MAX_MESSAGE_LEN).contains(&total) {
        return Err(protocol(format!(
            "event-stream message at byte {offset}: total length {total} is outside \
             {OVERHEAD}..={MAX_MESSAGE_LEN}"
        )));
    }
    if headers_len > MAX_HEADERS_LEN || headers_len > total - OVERHEAD {
        return Err(protocol(format!(
            "event-stream message at byte {offset}: headers length {headers_len} does not fit a \
             message of {total} bytes"
        )));
    }
    Ok(total)
}

/// Decodes exactly one complete message (`frame` holds it and nothing
/// else), checking both CRCs and every header.
pub fn decode_message(frame: Bytes) -> Result<Message> {
    decode_at(frame, 0)
}

fn decode_at(frame: Bytes, offset: u64) -> Result<Message> {
    if frame.len() < PRELUDE_LEN {
        return Err(protocol(format!(
            "event-stream message at byte {offset}: {} bytes is shorter than a prelude",
            frame.len()
        )));
    }
    let total = check_prelude(&frame, offset)?;
    if frame.len() != total {
        return Err(protocol(format!(
            "event-stream message at byte {offset}: the prelude says {total} bytes, the frame has {}",
            frame.len()
        )));
    }
    let body_end = total - 4;
    let sent_crc = u32::from_be_bytes([
        frame[body_end],
        frame[body_end + 1],
        frame[body_end + 2],
        frame[body_end + 3],
    ]);
    let crc = crc32fast::hash(&frame[..body_end]);
    if crc != sent_crc {
        return Err(protocol(format!(
            "event-stream message at byte {offset}: message CRC32 mismatch (computed {crc:08x}, \
             the message says {sent_crc:08x})"
        )));
    }
    let headers_len = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) as usize;
    let headers_end = PRELUDE_LEN + headers_len;
    let headers = decode_headers(&frame[PRELUDE_LEN..headers_end], offset)?;
    Ok(Message {
        headers,
        payload: frame.slice(headers_end..body_end),
    })
}

fn decode_headers(mut buf: &[u8], offset: u64) -> Result<Vec<(String, HeaderValue)>> {
    let base = offset + PRELUDE_LEN as u64;
    let start_len = buf.len();
    let mut headers = Vec::new();
    while !buf.is_empty() {
        let at = base + (start_len - buf.len()) as u64;
        let short = || {
            protocol(format!(
                "event-stream header at byte {at} runs past the headers section"
            ))
        };
        let name_len = buf.get_u8() as usize;
        if name_len == 0 || buf.len() < name_len + 1 {
            return Err(if name_len == 0 {
                protocol(format!(
                    "event-stream header at byte {at} has an empty name"
                ))
            } else {
                short()
            });
        }
        let name = std::str::from_utf8(&buf[..name_len])
            .map_err(|_| {
                protocol(format!(
                    "event-stream header name at byte {at} is not UTF-8"
                ))
            })?
            .to_owned();
        buf.advance(name_len);
        let type_code = buf.get_u8();
        let fixed = |buf: &mut &[u8], n: usize| -> Result<Vec<u8>> {
            if buf.len() < n {
                return Err(short());
            }
            let v = buf[..n].to_vec();
            buf.advance(n);
            Ok(v)
        };
        let value = match type_code {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(fixed(&mut buf, 1)?[0] as i8),
            3 => {
                let b = fixed(&mut buf, 2)?;
                HeaderValue::Int16(i16::from_be_bytes([b[0], b[1]]))
            }
            4 => {
                let b = fixed(&mut buf, 4)?;
                HeaderValue::Int32(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            5 | 8 => {
                let b = fixed(&mut buf, 8)?;
                let v = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                if type_code == 5 {
                    HeaderValue::Int64(v)
                } else {
                    HeaderValue::Timestamp(v)
                }
            }
            6 | 7 => {
                let b = fixed(&mut buf, 2)?;
                let len = u16::from_be_bytes([b[0], b[1]]) as usize;
                let v = fixed(&mut buf, len)?;
                if type_code == 6 {
                    HeaderValue::Bytes(Bytes::from(v))
                } else {
                    HeaderValue::String(String::from_utf8(v).map_err(|_| {
                        protocol(format!(
                            "event-stream header `{name}` at byte {at} is not UTF-8 text"
                        ))
                    })?)
                }
            }
            9 => {
                let b = fixed(&mut buf, 16)?;
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(&b);
                HeaderValue::Uuid(uuid)
            }
            other => {
                return Err(protocol(format!(
                    "event-stream header `{name}` at byte {at} has unknown value type {other}"
                )));
            }
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Splits a byte stream into messages, whatever the chunk boundaries.
///
/// Feed chunks with [`MessageDecoder::push`], then take complete messages
/// with [`MessageDecoder::next_message`]; at the end of the stream,
/// [`MessageDecoder::finish`] says whether bytes of an unfinished message
/// are left (a truncated stream). A bad prelude is reported as soon as its
/// 12 bytes are in, without waiting for the length it claims.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    buf: BytesMut,
    consumed: u64,
}

impl MessageDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        MessageDecoder::default()
    }

    /// Appends a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        if self.buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let total = check_prelude(&self.buf, self.consumed)?;
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        let offset = self.consumed;
        self.consumed += total as u64;
        decode_at(frame, offset).map(Some)
    }

    /// Bytes received but not yet part of a complete message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Checks the end of the stream: an error when an unfinished message is left.
    pub fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(protocol(format!(
                "the event stream ended inside a message: {} bytes after byte {} are left over",
                self.buf.len(),
                self.consumed
            )))
        }
    }
}

/// The messages of an event-stream response body, decoded as the chunks
/// arrive (whatever their boundaries). A framing error (a CRC mismatch, a
/// bad length, a header past its section) or a body that ends inside a
/// message is an `Err` item passed through `tag`; a transport error is
/// passed on as it is; either ends the stream.
pub fn messages(
    body: ByteStream,
    tag: impl Fn(Error) -> Error + Send + Sync + 'static,
) -> futures_core::stream::BoxStream<'static, Result<Message>> {
    struct State<F> {
        body: ByteStream,
        decoder: MessageDecoder,
        tag: F,
        done: bool,
    }
    let state = State {
        body,
        decoder: MessageDecoder::new(),
        tag,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            match s.decoder.next_message() {
                Ok(Some(message)) => return Some((Ok(message), s)),
                Ok(None) => {}
                Err(e) => {
                    s.done = true;
                    let e = (s.tag)(e);
                    return Some((Err(e), s));
                }
            }
            match s.body.next().await {
                Some(Ok(chunk)) => s.decoder.push(&chunk),
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                None => {
                    s.done = true;
                    let e = s.decoder.finish().err()?;
                    let e = (s.tag)(e);
                    return Some((Err(e), s));
                }
            }
        }
    });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// protocols.md §7.4: a PayloadPart frame validated against botocore.
    const HELLO: &str = "0000006e000000595197ff150b3a6576656e742d7479706507000b5061796c6f6164506172740d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d0d3a6d6573736167652d747970650700056576656e7468656c6c6f29738ab4";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hello() -> Message {
        Message::new("hello")
            .with_string_header(":event-type", "PayloadPart")
            .with_string_header(":content-type", "application/octet-stream")
            .with_string_header(":message-type", "event")
    }

    #[test]
    fn the_reference_frame_round_trips() {
        let wire = unhex(HELLO);
        assert_eq!(encode_message(&hello()).unwrap().as_ref(), wire.as_slice());
        let m = decode_message(Bytes::from(wire)).unwrap();
        assert_eq!(m, hello());
        assert_eq!(m.string_header(":event-type"), Some("PayloadPart"));
    }

    #[test]
    fn messages_say_their_kind() {
        assert_eq!(
            hello().kind(),
            MessageKind::Event {
                event_type: "PayloadPart"
            }
        );
        let exception = Message::new("{}")
            .with_string_header(":message-type", "exception")
            .with_string_header(":exception-type", "throttlingException");
        assert_eq!(
            exception.kind(),
            MessageKind::Exception {
                exception_type: "throttlingException"
            }
        );
        let error = Message::new("")
            .with_string_header(":message-type", "error")
            .with_string_header(":error-code", "InternalFailure");
        assert_eq!(
            error.kind(),
            MessageKind::Error {
                code: "InternalFailure",
                message: ""
            }
        );
    }

    #[tokio::test]
    async fn a_body_becomes_messages_and_a_truncated_one_ends_in_an_error() {
        let one = encode_message(&hello()).unwrap();
        let wire: Vec<u8> = [one.as_ref(), one.as_ref()].concat();
        let chunks: Vec<Result<Bytes>> = wire
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let got: Vec<Result<Message>> =
            messages(Box::pin(futures_util::stream::iter(chunks)), |e| e)
                .collect()
                .await;
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|m| m.as_ref().unwrap() == &hello()));
        let cut = vec![Ok(Bytes::copy_from_slice(&wire[..40]))];
        let got: Vec<Result<Message>> = messages(Box::pin(futures_util::stream::iter(cut)), |e| {
            e.with_context("tagged", "yes")
        })
        .collect()
        .await;
        let e = got.last().unwrap().as_ref().unwrap_err();
        assert_eq!(
            (e.kind(), e.context("tagged")),
            (ErrorKind::Protocol, Some("yes"))
        );
    }

    #[test]
    fn every_header_type_round_trips() {
        let m = Message::new(vec![0u8, 1, 2])
            .with_header("t", HeaderValue::Bool(true))
            .with_header("f", HeaderValue::Bool(false))
            .with_header("b", HeaderValue::Byte(-3))
            .with_header("s", HeaderValue::Int16(-300))
            .with_header("i", HeaderValue::Int32(70_000))
            .with_header("l", HeaderValue::Int64(-5_000_000_000))
            .with_header("y", HeaderValue::Bytes(Bytes::from_static(b"\x00\xff")))
            .with_header("str", HeaderValue::String("ü".into()))
            .with_header("ts", HeaderValue::Timestamp(1_700_000_000_000))
            .with_header("u", HeaderValue::Uuid([7; 16]));
        let wire = encode_message(&m).unwrap();
        assert_eq!(decode_message(wire).unwrap(), m);
    }

    #[test]
    fn corrupted_frames_are_protocol_errors() {
        let good = unhex(HELLO);
        // Prelude CRC.
        let mut bad = good.clone();
        bad[9] ^= 1;
        let e = decode_message(Bytes::from(bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("prelude CRC32"), "{e}");
        // Message CRC (a payload byte flipped).
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 6] ^= 0x20;
        let e = decode_message(Bytes::from(bad)).unwrap_err();
        assert!(e.message().contains("message CRC32"), "{e}");
        // Truncated.
        let e = decode_message(Bytes::from(good[..20].to_vec())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        // Unknown header type, with valid CRCs around it.
        let mut m = encode_message(&Message::new("x").with_header("h", HeaderValue::Bool(true)))
            .unwrap()
            .to_vec();
        m[PRELUDE_LEN + 2] = 42;
        let n = m.len();
        let crc = crc32fast::hash(&m[..n - 4]);
        m[n - 4..].copy_from_slice(&crc.to_be_bytes());
        let e = decode_message(Bytes::from(m)).unwrap_err();
        assert!(e.message().contains("unknown value type 42"), "{e}");
    }

    #[test]
    fn the_decoder_reassembles_arbitrary_chunks() {
        let one = encode_message(&hello()).unwrap();
        let two = encode_message(&Message::new("world")).unwrap();
        let stream: Vec<u8> = [one.as_ref(), two.as_ref()].concat();
        for cut in [1, 5, 12, 13, 50, stream.len() - 1] {
            let mut d = MessageDecoder::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(cut) {
                d.push(chunk);
                while let Some(m) = d.next_message().unwrap() {
                    got.push(m.payload);
                }
            }
            d.finish().unwrap();
            assert_eq!(
                got,
                vec![Bytes::from("hello"), Bytes::from("world")],
                "{cut}"
            );
        }
        let mut d = MessageDecoder::new();
        d.push(&stream[..30]);
        assert!(d.next_message().unwrap().is_none());
        assert_eq!(d.finish().unwrap_err().kind(), ErrorKind::Protocol);
    }

    #[test]
    fn a_bad_prelude_fails_before_its_claimed_length_arrives() {
        let mut d = MessageDecoder::new();
        // Claims 4 GiB; the prelude CRC is right for it.
        let mut prelude = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        let crc = crc32fast::hash(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());
        d.push(&prelude);
        let e = d.next_message().unwrap_err();
        assert!(e.message().contains("total length"), "{e}");
    }
}
