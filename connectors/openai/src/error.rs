//! The API's error envelope `{"error": {"message", "type", "code", "param"}}`
//! → [`ErrorKind`], with the server's message kept apart.
//!
//! | answer | kind | retried |
//! |---|---|---|
//! | 400 (`context_length_exceeded` too) | `InvalidInput` | no |
//! | any error whose envelope says the input exceeds the context (window or length) | `InvalidInput` | no |
//! | 401 / 403 | `Unauthenticated` / `PermissionDenied` | no |
//! | 404 with the envelope (an unknown model or deployment) | `NotFound` | no |
//! | 404 without it, or OpenAI's `Invalid URL (…)` (no such endpoint: FastAPI's `{"detail":"Not Found"}`, an empty body) | `Unsupported` | no |
//! | 429 | `RateLimited` | yes, after `Retry-After` |
//! | 429 `insufficient_quota` | `RateLimited` | no (waiting does not help) |
//! | 500 `server_error` | `Unavailable` | if idempotent |
//! | other statuses | the transport's table | |
//!
//! Every error keeps the envelope's `type`, `code` and `param` as context
//! (`error_type`, `vendor_code`, `param`), and a throttled answer's
//! `Retry-After`, `retry-after-ms` and `x-ratelimit-*` headers (`retry_after`,
//! `ratelimit_remaining_requests`, …), so a caller can pace itself.
//!
//! The same envelope inside a stream (`data: {"error": …}`, or an
//! `event: error`) becomes an error by its `code` or `type`
//! ([`stream_error`]).

use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier, StatusCode};
use inferlink_core::{Error, ErrorKind};
use serde::Deserialize;
use serde_json::Value;

/// The headers kept as context on an error, under these context keys.
const KEPT_HEADERS: &[(&str, &str)] = &[
    ("retry-after", "retry_after"),
    ("retry-after-ms", "retry_after_ms"),
    ("x-ratelimit-limit-requests", "ratelimit_limit_requests"),
    (
        "x-ratelimit-remaining-requests",
        "ratelimit_remaining_requests",
    ),
    ("x-ratelimit-reset-requests", "ratelimit_reset_requests"),
    ("x-ratelimit-limit-tokens", "ratelimit_limit_tokens"),
    ("x-ratelimit-remaining-tokens", "ratelimit_remaining_tokens"),
    ("x-ratelimit-reset-tokens", "ratelimit_reset_tokens"),
];

/// The envelope's fields (`code` may be a string, a number or null).
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    /// The human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// The error type (`invalid_request_error`, `server_error`, …).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The code (`context_length_exceeded`, `model_not_found`, 429, …).
    #[serde(default)]
    pub code: Option<Value>,
    /// The request field at fault.
    #[serde(default)]
    pub param: Option<Value>,
}

impl Envelope {
    /// The envelope of an error body `{"error": {…}}` (or `{"error": "text"}`),
    /// if it is one.
    pub fn parse(body: &[u8]) -> Option<Envelope> {
        #[derive(Deserialize)]
        struct Outer {
            error: Value,
        }
        match serde_json::from_slice::<Outer>(body).ok()?.error {
            Value::String(message) => Some(Envelope {
                message: Some(message),
                ..Envelope::default()
            }),
            inner @ Value::Object(_) => serde_json::from_value(inner).ok(),
            _ => None,
        }
    }

    /// OpenAI's answer for a path it does not serve (`Invalid URL (POST /v1/rerank)`).
    fn is_unknown_url(&self) -> bool {
        self.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Invalid URL"))
    }

    /// The input did not fit the model's context: OpenAI's code
    /// `context_length_exceeded`, or a message about the context window or
    /// length (llama-cpp-python answers an over-long embedding input with a
    /// 500 saying `Requested tokens (…) exceed context window of …`).
    fn context_exceeded(&self) -> bool {
        let message = self
            .message
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.code().as_deref() == Some("context_length_exceeded")
            || message.contains("context window")
            || message.contains("context length")
    }

    /// The code as text (a number written out).
    pub fn code(&self) -> Option<String> {
        text(self.code.as_ref()?)
    }

    /// Adds type, code and param as context, and the message as the vendor message.
    fn annotate(&self, mut error: Error) -> Error {
        if let Some(kind) = &self.kind {
            error = error.with_context("error_type", kind.clone());
        }
        if let Some(code) = self
            .code()
            .filter(|_| error.context("vendor_code").is_none())
        {
            error = error.with_context("vendor_code", code);
        }
        if let Some(param) = self.param.as_ref().and_then(text) {
            error = error.with_context("param", param);
        }
        match &self.message {
            Some(message) => error.with_vendor_message(message.clone()),
            None => error,
        }
    }

    /// The kind this envelope means, without a status (inside a stream).
    fn kind(&self) -> ErrorKind {
        let code = self.code();
        if let Some(status) = code.as_deref().and_then(|c| c.parse::<u16>().ok())
            && let Ok(status) = StatusCode::from_u16(status)
            && (status.is_client_error() || status.is_server_error())
        {
            return ErrorClass::for_status(status).kind;
        }
        if self.context_exceeded() {
            return ErrorKind::InvalidInput;
        }
        match (code.as_deref(), self.kind.as_deref()) {
            (Some("invalid_value" | "invalid_prompt"), _) => ErrorKind::InvalidInput,
            (Some("rate_limit_exceeded"), _) | (_, Some("rate_limit_error" | "tokens")) => {
                ErrorKind::RateLimited
            }
            (Some("model_not_found"), _) => ErrorKind::NotFound,
            (_, Some("invalid_request_error" | "BadRequestError")) => ErrorKind::InvalidInput,
            (_, Some("authentication_error")) => ErrorKind::Unauthenticated,
            (_, Some("server_error" | "overloaded_error")) => ErrorKind::Unavailable,
            _ => ErrorKind::ModelError,
        }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The transport classifier of the API's error answers (module table).
#[derive(Debug)]
pub struct OpenAiClassifier;

impl ResponseClassifier for OpenAiClassifier {
    fn classify(&self, response: &ErrorResponse<'_>) -> Option<ErrorClass> {
        let envelope = Envelope::parse(response.body);
        let code = envelope.as_ref().and_then(Envelope::code);
        let kind = envelope.as_ref().and_then(|e| e.kind.as_deref());
        match (response.status.as_u16(), code.as_deref(), kind) {
            (400.., _, _) if envelope.as_ref().is_some_and(Envelope::context_exceeded) => {
                Some(ErrorClass::fatal(ErrorKind::InvalidInput))
            }
            (404, _, _) if envelope.as_ref().is_none_or(Envelope::is_unknown_url) => {
                Some(ErrorClass::fatal(ErrorKind::Unsupported))
            }
            (429, Some("insufficient_quota"), _) | (429, _, Some("insufficient_quota")) => {
                Some(ErrorClass::fatal(ErrorKind::RateLimited))
            }
            (500, _, Some("server_error")) => {
                Some(ErrorClass::retry_if_idempotent(ErrorKind::Unavailable))
            }
            _ => None,
        }
    }

    fn annotate(&self, response: &ErrorResponse<'_>, mut error: Error) -> Error {
        for (header, key) in KEPT_HEADERS {
            if let Some(value) = response.headers.get(*header).and_then(|v| v.to_str().ok()) {
                error = error.with_context(key, value.to_owned());
            }
        }
        if response.status.as_u16() == 404 && error.kind() == ErrorKind::Unsupported {
            return error.with_vendor_message(
                "the server has no such endpoint (a 404 without an OpenAI error envelope)",
            );
        }
        match Envelope::parse(response.body) {
            Some(envelope) => envelope.annotate(error),
            None => error,
        }
    }
}

/// The error an event of a stream carries: `data: {"error": …}` (or an
/// `event: error` whose data is that, or plain text); `None` for an event
/// that is not an error.
pub fn stream_error(event_name: Option<&str>, data: &str) -> Option<Error> {
    let envelope = Envelope::parse(data.as_bytes());
    if envelope.is_none() && event_name != Some("error") {
        return None;
    }
    let envelope = envelope.unwrap_or_else(|| Envelope {
        message: Some(data.to_owned()),
        ..Envelope::default()
    });
    let error = Error::new(
        envelope.kind(),
        "the server reported an error in the middle of the stream",
    );
    Some(envelope.annotate(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_errors_take_their_kind_from_code_or_type() {
        let e = stream_error(
            None,
            r#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded","param":"messages"}}"#,
        )
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.vendor_message(), Some("too long"));
        assert_eq!(e.context("param"), Some("messages"));
        assert_eq!(e.context("vendor_code"), Some("context_length_exceeded"));
        let numeric = stream_error(None, r#"{"error":{"message":"busy","code":503}}"#).unwrap();
        assert_eq!(numeric.kind(), ErrorKind::Unavailable);
        assert!(numeric.is_retryable());
        let window = r#"{"error":{"message":"Requested tokens (600) exceed context window of 512","type":"internal_server_error","code":null}}"#;
        assert_eq!(
            stream_error(None, window).unwrap().kind(),
            ErrorKind::InvalidInput
        );
        let server = stream_error(None, r#"{"error":{"message":"x","type":"server_error"}}"#);
        assert_eq!(server.unwrap().kind(), ErrorKind::Unavailable);
        let plain = stream_error(Some("error"), "worker died").unwrap();
        assert_eq!(
            (plain.kind(), plain.vendor_message()),
            (ErrorKind::ModelError, Some("worker died"))
        );
        assert!(stream_error(None, r#"{"choices":[]}"#).is_none());
        let flat = stream_error(None, r#"{"error":"flat"}"#).unwrap();
        assert_eq!(flat.vendor_message(), Some("flat"));
    }
}
