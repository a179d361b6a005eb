//! From an HTTP error response to an [`Error`]: the status mapping, the
//! vendor's own message, and the hook a connector uses to refine both.

use std::fmt;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::{Error, ErrorKind};

use super::retry::RetryRule;

/// Longest vendor message kept, in characters.
const MAX_VENDOR_MESSAGE: usize = 1024;

/// How an error response is treated: its kind, and whether to retry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorClass {
    /// The error kind the caller sees.
    pub kind: ErrorKind,
    /// Whether the retry loop may try again.
    pub retry: RetryRule,
}

impl ErrorClass {
    /// An error that is never retried.
    pub fn fatal(kind: ErrorKind) -> Self {
        ErrorClass {
            kind,
            retry: RetryRule::Never,
        }
    }

    /// An error the server returned without doing the work (throttling,
    /// overload): retried whatever the request's idempotency.
    pub fn rejected(kind: ErrorKind) -> Self {
        ErrorClass {
            kind,
            retry: RetryRule::Always,
        }
    }

    /// An error after which the server may have done the work: retried only
    /// for safe or idempotent requests.
    pub fn retry_if_idempotent(kind: ErrorKind) -> Self {
        ErrorClass {
            kind,
            retry: RetryRule::IfIdempotent,
        }
    }

    /// The default treatment of an HTTP status (the table in `docs/transport.md`).
    pub fn for_status(status: StatusCode) -> Self {
        use ErrorKind as K;
        match status.as_u16() {
            400 | 413 | 415 | 422 => ErrorClass::fatal(K::InvalidInput),
            401 => ErrorClass::fatal(K::Unauthenticated),
            403 => ErrorClass::fatal(K::PermissionDenied),
            404 => ErrorClass::fatal(K::NotFound),
            405 | 501 => ErrorClass::fatal(K::Unsupported),
            408 => ErrorClass::rejected(K::Timeout),
            409 => ErrorClass::fatal(K::Conflict),
            424 => ErrorClass::fatal(K::ModelError),
            429 => ErrorClass::rejected(K::RateLimited),
            500 => ErrorClass::fatal(K::ModelError),
            502 => ErrorClass::retry_if_idempotent(K::Unavailable),
            503 => ErrorClass::rejected(K::Unavailable),
            504 => ErrorClass::retry_if_idempotent(K::Timeout),
            300..=399 => ErrorClass::fatal(K::Config),
            400..=499 => ErrorClass::fatal(K::InvalidInput),
            _ => ErrorClass::fatal(K::Unavailable),
        }
    }
}

/// A non-success response, as a [`ResponseClassifier`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct ErrorResponse<'a> {
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: &'a HeaderMap,
    /// The first bytes of the body (at most 64 KiB).
    pub body: &'a [u8],
    /// The vendor's message and code, as extracted from the body.
    pub vendor: Option<&'a VendorMessage>,
}

/// Refines how error responses are classified, for vendors whose status
/// codes say less than their bodies (SageMaker's `ThrottlingException` in a
/// 400, TorchServe's `InvalidKeyException` in a 400, …).
///
/// Return `None` to keep the default ([`ErrorClass::for_status`]). Closures
/// `Fn(&ErrorResponse<'_>) -> Option<ErrorClass>` implement it.
pub trait ResponseClassifier: Send + Sync {
    /// The class of this error response, or `None` for the default.
    fn classify(&self, response: &ErrorResponse<'_>) -> Option<ErrorClass>;

    /// Adds what the body says beyond kind and message to the error the
    /// transport built for this response (e.g. SageMaker's
    /// `OriginalStatusCode` of a `ModelError` as context). The default
    /// returns the error unchanged.
    fn annotate(&self, response: &ErrorResponse<'_>, error: Error) -> Error {
        let _ = response;
        error
    }
}

impl<F> ResponseClassifier for F
where
    F: Fn(&ErrorResponse<'_>) -> Option<ErrorClass> + Send + Sync,
{
    fn classify(&self, response: &ErrorResponse<'_>) -> Option<ErrorClass> {
        self(response)
    }
}

/// The message (and code, where the envelope has one) a vendor put in an error body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VendorMessage {
    /// A machine-readable code: TorchServe's `type`, MLflow's `error_code`,
    /// Seldon's `reason`, AWS's `Code` or `x-amzn-ErrorType`.
    pub code: Option<String>,
    /// The human-readable message, bounded in length.
    pub message: String,
}

impl fmt::Display for VendorMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) if !self.message.is_empty() => write!(f, "{code}: {}", self.message),
            Some(code) => f.write_str(code),
            None => f.write_str(&self.message),
        }
    }
}

impl VendorMessage {
    /// Extracts the vendor's message from an error body, whatever the
    /// envelope: `{"error": …}` (KServe, Triton, MLServer, TF Serving),
    /// FastAPI `{"detail": […]}`, `{"code","type","message"}` (TorchServe),
    /// `{"error_code","message"}` (MLflow), Seldon `{"status":{…}}`, AWS
    /// JSON (`message`/`Message`, `__type`, header `x-amzn-ErrorType`), XML
    /// `<ErrorResponse>…<Code>…<Message>…`, or plain text. The content type
    /// is not trusted (Triton sends JSON as text/plain).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Option<VendorMessage> {
        let mut found = parse_body(body);
        if let Some(amz) = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).trim())
            .filter(|v| !v.is_empty())
        {
            let m = found.get_or_insert_with(VendorMessage::default);
            if m.code.is_none() {
                m.code = Some(amz.to_owned());
            }
        }
        found.map(|mut m| {
            m.message = bounded(&m.message);
            m.code = m.code.map(|c| bounded(&c));
            m
        })
    }
}

fn bounded(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MAX_VENDOR_MESSAGE {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(MAX_VENDOR_MESSAGE).collect();
    cut.push('…');
    cut
}

fn parse_body(body: &[u8]) -> Option<VendorMessage> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str::<Value>(trimmed)
        && let Some(m) = from_json(&value)
    {
        return Some(m);
    }
    if trimmed.starts_with('<')
        && let Some(m) = from_xml(trimmed)
    {
        return Some(m);
    }
    Some(VendorMessage {
        code: None,
        message: trimmed.to_owned(),
    })
}

fn str_field<'a>(obj: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| obj.get(*n).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

fn from_json(value: &Value) -> Option<VendorMessage> {
    let obj = value.as_object()?;
    // {"error": "..."} or {"error": {"message", "code"/"type"}}
    match obj.get("error") {
        Some(Value::String(s)) => {
            return Some(VendorMessage {
                code: str_field(obj, &["error_code", "type", "code"]).map(str::to_owned),
                message: s.clone(),
            });
        }
        Some(Value::Object(inner)) => {
            if let Some(m) = str_field(inner, &["message", "Message", "msg"]) {
                return Some(VendorMessage {
                    code: str_field(inner, &["code", "type", "Code"]).map(str::to_owned),
                    message: m.to_owned(),
                });
            }
        }
        _ => {}
    }
    // FastAPI {"detail": [...]} or {"detail": "..."}
    match obj.get("detail") {
        Some(Value::String(s)) => {
            return Some(VendorMessage {
                code: None,
                message: s.clone(),
            });
        }
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items
                .iter()
                .take(8)
                .map(|item| match item.as_object() {
                    Some(o) => {
                        let msg = o.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                        match o.get("loc").and_then(Value::as_array) {
                            Some(loc) => {
                                let at: Vec<String> = loc
                                    .iter()
                                    .map(|l| match l {
                                        Value::String(s) => s.clone(),
                                        other => other.to_string(),
                                    })
                                    .collect();
                                format!("{}: {msg}", at.join("."))
                            }
                            None => msg.to_owned(),
                        }
                    }
                    None => item.to_string(),
                })
                .collect();
            let code = items
                .first()
                .and_then(Value::as_object)
                .and_then(|o| str_field(o, &["type"]))
                .map(str::to_owned);
            return Some(VendorMessage {
                code,
                message: parts.join("; "),
            });
        }
        _ => {}
    }
    // Seldon {"status": {"code", "info", "reason", "status"}}
    if let Some(Value::Object(status)) = obj.get("status") {
        let info = str_field(status, &["info"]);
        let reason = str_field(status, &["reason"]);
        if info.is_some() || reason.is_some() {
            return Some(VendorMessage {
                code: reason.map(str::to_owned),
                message: info.unwrap_or_default().to_owned(),
            });
        }
    }
    // TorchServe {"code","type","message"}, MLflow {"error_code","message"}, AWS JSON.
    if let Some(m) = str_field(obj, &["message", "Message", "msg"]) {
        return Some(VendorMessage {
            code: str_field(obj, &["type", "error_code", "__type", "Code", "code"])
                .map(|c| c.rsplit('#').next().unwrap_or(c).to_owned()),
            message: m.to_owned(),
        });
    }
    None
}

fn xml_element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    Some(text[start..start + len].trim())
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn from_xml(text: &str) -> Option<VendorMessage> {
    let code = xml_element(text, "Code").map(xml_unescape);
    let message = xml_element(text, "Message").map(xml_unescape);
    if code.is_none() && message.is_none() {
        // HTML or other markup: keep the text without tags.
        let mut out = String::new();
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    out.push(' ');
                }
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
        return (!out.is_empty()).then_some(VendorMessage {
            code: None,
            message: out,
        });
    }
    Some(VendorMessage {
        code,
        message: message.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> VendorMessage {
        VendorMessage::parse(&HeaderMap::new(), body.as_bytes()).unwrap()
    }

    #[test]
    fn every_envelope_gives_its_message() {
        let m = parse(r#"{"error":"Model with name nope does not exist."}"#);
        assert_eq!(m.to_string(), "Model with name nope does not exist.");
        let m = parse(
            r#"{"detail":[{"type":"json_invalid","loc":["body",11],"msg":"JSON decode error","input":{}}]}"#,
        );
        assert_eq!(m.message, "body.11: JSON decode error");
        assert_eq!(m.code.as_deref(), Some("json_invalid"));
        assert_eq!(
            parse("Internal Server Error").message,
            "Internal Server Error"
        );
        let m = parse(
            r#"{"code":404,"type":"ModelNotFoundException","message":"Model not found: nope"}"#,
        );
        assert_eq!(
            m.to_string(),
            "ModelNotFoundException: Model not found: nope"
        );
        let m = parse(
            r#"{"status":{"code":-1,"info":"cannot reshape array","reason":"MICROSERVICE_INTERNAL_ERROR","status":1}}"#,
        );
        assert_eq!(
            m.to_string(),
            "MICROSERVICE_INTERNAL_ERROR: cannot reshape array"
        );
        let m = parse(
            "<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match &amp; more</Message><Type>Sender</Type></Error></Errors></ErrorResponse>",
        );
        assert_eq!(m.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(
            m.message,
            "The request signature we calculated does not match & more"
        );
        let m = parse(
            r#"{"error_code":"BAD_REQUEST","message":"The input must be a JSON dictionary"}"#,
        );
        assert_eq!(
            m.to_string(),
            "BAD_REQUEST: The input must be a JSON dictionary"
        );
    }

    #[test]
    fn aws_error_type_header_gives_the_code() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-ErrorType",
            "ThrottlingException:http://internal.amazon.com/"
                .parse()
                .unwrap(),
        );
        let m = VendorMessage::parse(&h, br#"{"message":"Rate exceeded"}"#).unwrap();
        assert_eq!(m.to_string(), "ThrottlingException: Rate exceeded");
    }

    #[test]
    fn long_messages_are_bounded() {
        let m = parse(&format!(r#"{{"error":"{}"}}"#, "x".repeat(100_000)));
        assert!(m.message.chars().count() <= MAX_VENDOR_MESSAGE + 1);
    }

    #[test]
    fn status_table() {
        let k = |s: u16| ErrorClass::for_status(StatusCode::from_u16(s).unwrap());
        assert_eq!(k(400).kind, ErrorKind::InvalidInput);
        assert_eq!(k(401).kind, ErrorKind::Unauthenticated);
        assert_eq!(k(403).kind, ErrorKind::PermissionDenied);
        assert_eq!(k(404).kind, ErrorKind::NotFound);
        assert_eq!(k(408).kind, ErrorKind::Timeout);
        assert_eq!(k(409).kind, ErrorKind::Conflict);
        assert_eq!(k(413).kind, ErrorKind::InvalidInput);
        assert_eq!(k(422).kind, ErrorKind::InvalidInput);
        assert_eq!(k(429), ErrorClass::rejected(ErrorKind::RateLimited));
        assert_eq!(k(500), ErrorClass::fatal(ErrorKind::ModelError));
        assert_eq!(k(501).kind, ErrorKind::Unsupported);
        assert_eq!(
            k(502),
            ErrorClass::retry_if_idempotent(ErrorKind::Unavailable)
        );
        assert_eq!(k(503), ErrorClass::rejected(ErrorKind::Unavailable));
        assert_eq!(k(504), ErrorClass::retry_if_idempotent(ErrorKind::Timeout));
        assert_eq!(k(530).kind, ErrorKind::Unavailable);
    }
}
