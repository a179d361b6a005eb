//! Bedrock's error types → [`ErrorKind`], with retryability.
//!
//! The transport reads the type (header `x-amzn-ErrorType`, else the body's
//! `__type`/`code`) and the body's `message`; [`class_of`] maps it (the
//! types every AWS service shares come from
//! [`inferlink_core::transport::sigv4::aws_error_class`]):
//!
//! | error type | HTTP | kind | retried |
//! |---|---|---|---|
//! | `ValidationException` | 400 | `InvalidInput` | no |
//! | `AccessDeniedException` | 403 | `PermissionDenied` | no |
//! | `ResourceNotFoundException` | 404 | `NotFound` | no |
//! | `ThrottlingException` | 429 | `RateLimited` | yes |
//! | `ServiceQuotaExceededException` | 400 | `RateLimited` | no (a quota, not a burst) |
//! | `ModelNotReadyException` | 429 | `Unavailable` | yes (the model is being loaded) |
//! | `ModelTimeoutException` | 408 | `Timeout` | if idempotent |
//! | `ModelErrorException`, `ModelStreamErrorException` | 424 | `ModelError`; context `original_status`, `resource_name` | no |
//! | `InternalServerException` | 500 | `Unavailable` | if idempotent |
//! | `ServiceUnavailableException` | 503 | `Unavailable` | yes |
//! | `DependencyFailedException` (Rerank) | 424 | `Unavailable` | if idempotent |
//! | `BadGatewayException` (Rerank) | 502 | `Unavailable` | if idempotent |
//! | `ConflictException` (Rerank) | 409 | `Conflict` | no |
//! | refused credentials or signature (`UnrecognizedClientException`, `InvalidSignatureException`, `SignatureDoesNotMatch`, `ExpiredTokenException`, …) | 400/403 | `Unauthenticated` | no |
//!
//! Every error keeps `x-amzn-RequestId` as context `request_id`. Inside a
//! stream, an `exception` message (`:exception-type` such as
//! `throttlingException`, `modelStreamErrorException`) is mapped the same
//! way by [`stream_error`], never retried (part of the answer has arrived).

use std::sync::Arc;

use inferlink_core::kit::eventstream::{Message, MessageKind};
use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier, sigv4};
use inferlink_core::{Error, ErrorKind};
use serde_json::Value;

/// The class of a Bedrock error type (`prefix#Name` and `Name:detail`
/// forms are cut to the name; a stream's lower-camel member name such as
/// `throttlingException` is read as its type).
pub fn class_of(code: &str) -> Option<ErrorClass> {
    let code = code.rsplit('#').next().unwrap_or(code);
    let code = code.split(':').next().unwrap_or(code).trim();
    let mut named = code.to_owned();
    if let Some(first) = named.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    Some(match named.as_str() {
        "ModelNotReadyException" => ErrorClass::rejected(ErrorKind::Unavailable),
        "ModelTimeoutException" => ErrorClass::retry_if_idempotent(ErrorKind::Timeout),
        "ModelErrorException" | "ModelStreamErrorException" => {
            ErrorClass::fatal(ErrorKind::ModelError)
        }
        "DependencyFailedException" => ErrorClass::retry_if_idempotent(ErrorKind::Unavailable),
        other => return sigv4::aws_error_class(other),
    })
}

/// The response classifier of Bedrock connectors (see the [module docs](self)).
pub fn classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(BedrockClassifier)
}

struct BedrockClassifier;

impl ResponseClassifier for BedrockClassifier {
    fn classify(&self, response: &ErrorResponse<'_>) -> Option<ErrorClass> {
        class_of(response.vendor?.code.as_deref()?)
    }

    fn annotate(&self, response: &ErrorResponse<'_>, error: Error) -> Error {
        let id = response.headers.get("x-amzn-requestid");
        let error = match id.and_then(|v| v.to_str().ok()) {
            Some(id) if !id.is_empty() && id.len() <= 128 => error.with_context("request_id", id),
            _ => error,
        };
        match serde_json::from_slice::<Value>(response.body) {
            Ok(body) => model_details(&body, error),
            Err(_) => error,
        }
    }
}

/// Adds a model error's `originalStatusCode`, `resourceName` and
/// `originalMessage` (as the vendor message) to `error`.
fn model_details(body: &Value, mut error: Error) -> Error {
    if let Some(status) = body.get("originalStatusCode").and_then(Value::as_u64) {
        error = error.with_context("original_status", status.to_string());
    }
    if let Some(name) = body.get("resourceName").and_then(Value::as_str) {
        error = error.with_context("resource_name", name.to_owned());
    }
    match body.get("originalMessage").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => error.with_vendor_message(message),
        _ => error,
    }
}

/// The error an `exception` or `error` message of a response stream stands
/// for (`None` for an event), never retryable.
pub fn stream_error(message: &Message) -> Option<Error> {
    let (code, text, body) = match message.kind() {
        MessageKind::Event { .. } => return None,
        MessageKind::Exception { exception_type } => {
            let body: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            let text = ["message", "Message"]
                .iter()
                .find_map(|k| body.get(*k).and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned();
            (exception_type, text, body)
        }
        MessageKind::Error { code, message } => (code, message.to_owned(), Value::Null),
    };
    let kind = class_of(code).map_or(ErrorKind::ModelError, |c| c.kind);
    let mut error = Error::new(kind, format!("the response stream failed: {code}"))
        .with_context("vendor_code", code.to_owned())
        .with_retryable(false);
    if !text.is_empty() {
        error = error.with_vendor_message(text);
    }
    Some(model_details(&body, error))
}

#[cfg(test)]
mod tests {
    use inferlink_core::transport::RetryRule;

    use super::*;

    #[test]
    fn every_documented_type_has_its_class() {
        use ErrorKind as K;
        use RetryRule as R;
        for (code, kind, retry) in [
            ("ValidationException", K::InvalidInput, R::Never),
            ("AccessDeniedException", K::PermissionDenied, R::Never),
            ("ResourceNotFoundException", K::NotFound, R::Never),
            ("ThrottlingException", K::RateLimited, R::Always),
            ("ServiceQuotaExceededException", K::RateLimited, R::Never),
            ("ModelNotReadyException", K::Unavailable, R::Always),
            ("ModelTimeoutException", K::Timeout, R::IfIdempotent),
            ("ModelErrorException", K::ModelError, R::Never),
            ("ModelStreamErrorException", K::ModelError, R::Never),
            ("InternalServerException", K::Unavailable, R::IfIdempotent),
            ("ServiceUnavailableException", K::Unavailable, R::Always),
            ("DependencyFailedException", K::Unavailable, R::IfIdempotent),
            ("BadGatewayException", K::Unavailable, R::IfIdempotent),
            ("ConflictException", K::Conflict, R::Never),
            ("UnrecognizedClientException", K::Unauthenticated, R::Never),
            ("ExpiredTokenException", K::Unauthenticated, R::Never),
            ("throttlingException", K::RateLimited, R::Always),
            ("modelStreamErrorException", K::ModelError, R::Never),
            (
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                K::InvalidInput,
                R::Never,
            ),
        ] {
            let class = class_of(code).unwrap_or_else(|| panic!("{code} has no class"));
            assert_eq!((class.kind, class.retry), (kind, retry), "{code}");
        }
        assert!(class_of("SomethingNew").is_none());
        assert!(class_of("").is_none());
    }

    #[test]
    fn stream_exceptions_keep_the_model_details() {
        let m = Message::new(
            r#"{"message":"model failed","originalStatusCode":500,"originalMessage":"CUDA out of memory"}"#,
        )
        .with_string_header(":message-type", "exception")
        .with_string_header(":exception-type", "modelStreamErrorException");
        let e = stream_error(&m).unwrap();
        assert_eq!(e.kind(), ErrorKind::ModelError);
        assert!(!e.is_retryable());
        assert_eq!(e.context("original_status"), Some("500"));
        assert_eq!(e.vendor_message(), Some("CUDA out of memory"));
        let m = Message::new(r#"{"message":"slow down"}"#)
            .with_string_header(":message-type", "exception")
            .with_string_header(":exception-type", "throttlingException");
        let e = stream_error(&m).unwrap();
        assert_eq!(
            (e.kind(), e.is_retryable()),
            (ErrorKind::RateLimited, false)
        );
        assert_eq!(e.vendor_message(), Some("slow down"));
        let m = Message::new("")
            .with_string_header(":message-type", "error")
            .with_string_header(":error-code", "InternalFailure")
            .with_string_header(":error-message", "boom");
        assert_eq!(stream_error(&m).unwrap().kind(), ErrorKind::Unavailable);
        let event = Message::new("{}").with_string_header(":message-type", "event");
        assert!(stream_error(&event).is_none());
    }
}
