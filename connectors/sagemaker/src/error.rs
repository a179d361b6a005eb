//! SageMaker errors → [`inferlink_core::Error`].
//!
//! The shared transport reads the error type (header `x-amzn-ErrorType`,
//! else the body's `__type`/`code`, or moto's XML `Code`) and the message;
//! [`classifier`] turns the type into a kind and a retry rule:
//!
//! | error type | HTTP | kind | retried |
//! |---|---|---|---|
//! | `ModelError` | 424 | `ModelError`; context `original_status`, `log_stream_arn`; the container's `OriginalMessage` as vendor message | no |
//! | `ValidationError` | 400 | `InvalidInput` (`NotFound` when it says the endpoint was not found) | no |
//! | `ThrottlingException` and other throttling codes | 400/429 | `RateLimited` | yes |
//! | `ModelNotReadyException` | 429 | `Unavailable` (serverless provisioning, a multi-model endpoint loading) | yes |
//! | `ServiceUnavailable` | 503 | `Unavailable` | yes |
//! | `InternalFailure` | 500 | `Unavailable` (AWS's side, not the model) | idempotent requests |
//! | `InternalDependencyException` | 530 | `Unavailable` | idempotent requests |
//! | `UnrecognizedClientException`, `InvalidSignatureException`, `SignatureDoesNotMatch`, `InvalidClientTokenId`, `IncompleteSignature`, `ExpiredToken`, `MissingAuthenticationToken`, … | 400/403 | `Unauthenticated` | no |
//! | `AccessDeniedException` | 400/403 | `PermissionDenied` | no |
//!
//! Every error also gets the `x-amzn-RequestId` as context `request_id`.
//! In a response stream, [`stream_exception`] maps `ModelStreamError`
//! (`Timeout` for `ModelInvocationTimeExceeded`, else `ModelError`) and
//! `InternalStreamFailure` (`Unavailable`).

use std::sync::Arc;

use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier, sigv4};
use inferlink_core::{Error, ErrorKind};
use serde_json::Value;

use crate::eventstream::{Message, MessageKind};

pub use inferlink_core::transport::sigv4::{AUTH_CODES, THROTTLING_CODES};

/// The class of a SageMaker error type, if it is one this connector knows.
pub fn class_of(code: &str, message: &str) -> Option<ErrorClass> {
    let code = code.rsplit('#').next().unwrap_or(code);
    let code = code.split(':').next().unwrap_or(code).trim();
    Some(match code {
        "ModelError" => ErrorClass::fatal(ErrorKind::ModelError),
        "ValidationError" | "ValidationException" => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("endpoint") && lower.contains("not found") {
                ErrorClass::fatal(ErrorKind::NotFound)
            } else {
                ErrorClass::fatal(ErrorKind::InvalidInput)
            }
        }
        "ModelNotReadyException" => ErrorClass::rejected(ErrorKind::Unavailable),
        "InternalDependencyException" => ErrorClass::retry_if_idempotent(ErrorKind::Unavailable),
        // multi-model-server and TorchServe name a failed handler this way (with 503).
        "InternalServerException" => ErrorClass::fatal(ErrorKind::ModelError),
        "ModelNotFoundException" => ErrorClass::fatal(ErrorKind::NotFound),
        other => return sigv4::aws_error_class(other),
    })
}

/// The response classifier of SageMaker connectors (see the [module docs](self)).
pub fn classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(SageMakerClassifier)
}

struct SageMakerClassifier;

impl ResponseClassifier for SageMakerClassifier {
    fn classify(&self, response: &ErrorResponse<'_>) -> Option<ErrorClass> {
        let vendor = response.vendor?;
        class_of(vendor.code.as_deref()?, &vendor.message)
    }

    fn annotate(&self, response: &ErrorResponse<'_>, mut error: Error) -> Error {
        if let Some(id) = response
            .headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
        {
            error = error.with_context("request_id", id.to_owned());
        }
        let is_model_error = response
            .vendor
            .and_then(|v| v.code.as_deref())
            .is_some_and(|c| c == "ModelError");
        if !is_model_error {
            return error;
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(response.body) else {
            return error;
        };
        if let Some(status) = body.get("OriginalStatusCode").and_then(Value::as_u64) {
            error = error.with_context("original_status", status.to_string());
        }
        if let Some(arn) = body.get("LogStreamArn").and_then(Value::as_str) {
            error = error.with_context("log_stream_arn", arn.to_owned());
        }
        if let Some(message) = body
            .get("OriginalMessage")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            error = error.with_vendor_message(message);
        }
        error
    }
}

/// The error an in-stream `exception` or `error` message stands for
/// (`None` for an `event`).
pub fn stream_exception(message: &Message) -> Option<Error> {
    match message.kind() {
        MessageKind::Exception {
            exception_type: kind_name,
        } => {
            let body: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            let text = body
                .get("Message")
                .or_else(|| body.get("message"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let code = body.get("ErrorCode").and_then(Value::as_str);
            let kind = match (kind_name, code) {
                ("ModelStreamError", Some("ModelInvocationTimeExceeded")) => ErrorKind::Timeout,
                ("ModelStreamError", _) => ErrorKind::ModelError,
                ("InternalStreamFailure", _) => ErrorKind::Unavailable,
                (other, _) => class_of(other, &text).map_or(ErrorKind::ModelError, |c| c.kind),
            };
            let mut error = Error::new(kind, format!("the response stream failed: {kind_name}"))
                .with_context("vendor_code", kind_name.to_owned())
                .with_retryable(false);
            if let Some(code) = code {
                error = error.with_context("error_code", code.to_owned());
            }
            if !text.is_empty() {
                error = error.with_vendor_message(text);
            }
            Some(error)
        }
        MessageKind::Error {
            code,
            message: text,
        } => {
            let kind = class_of(code, text).map_or(ErrorKind::Unavailable, |c| c.kind);
            let mut error = Error::new(kind, format!("the response stream failed: {code}"))
                .with_context("vendor_code", code.to_owned())
                .with_retryable(false);
            if !text.is_empty() {
                error = error.with_vendor_message(text);
            }
            Some(error)
        }
        MessageKind::Event { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::transport::RetryRule;

    #[test]
    fn every_listed_type_has_its_class() {
        let cases = [
            ("ModelError", ErrorKind::ModelError, RetryRule::Never),
            ("ValidationError", ErrorKind::InvalidInput, RetryRule::Never),
            (
                "ThrottlingException",
                ErrorKind::RateLimited,
                RetryRule::Always,
            ),
            (
                "ModelNotReadyException",
                ErrorKind::Unavailable,
                RetryRule::Always,
            ),
            (
                "ServiceUnavailable",
                ErrorKind::Unavailable,
                RetryRule::Always,
            ),
            (
                "InternalFailure",
                ErrorKind::Unavailable,
                RetryRule::IfIdempotent,
            ),
            (
                "InternalDependencyException",
                ErrorKind::Unavailable,
                RetryRule::IfIdempotent,
            ),
            (
                "SignatureDoesNotMatch",
                ErrorKind::Unauthenticated,
                RetryRule::Never,
            ),
            (
                "InvalidClientTokenId",
                ErrorKind::Unauthenticated,
                RetryRule::Never,
            ),
            (
                "AccessDeniedException",
                ErrorKind::PermissionDenied,
                RetryRule::Never,
            ),
            (
                "com.amazonaws.sagemakerruntime#ModelError",
                ErrorKind::ModelError,
                RetryRule::Never,
            ),
        ];
        for (code, kind, retry) in cases {
            let c = class_of(code, "m").unwrap();
            assert_eq!((c.kind, c.retry), (kind, retry), "{code}");
        }
        assert_eq!(
            class_of("ValidationError", "Endpoint nope of account 1 not found.")
                .unwrap()
                .kind,
            ErrorKind::NotFound
        );
        assert!(class_of("SomethingElse", "m").is_none());
    }

    #[test]
    fn stream_exceptions_are_mapped() {
        let m = Message::new(
            r#"{"Message":"took too long","ErrorCode":"ModelInvocationTimeExceeded"}"#,
        )
        .with_string_header(":message-type", "exception")
        .with_string_header(":exception-type", "ModelStreamError");
        let e = stream_exception(&m).unwrap();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.vendor_message(), Some("took too long"));
        assert_eq!(e.context("error_code"), Some("ModelInvocationTimeExceeded"));
        let m = Message::new(r#"{"Message":"broken","ErrorCode":"StreamBroken"}"#)
            .with_string_header(":message-type", "exception")
            .with_string_header(":exception-type", "ModelStreamError");
        assert_eq!(stream_exception(&m).unwrap().kind(), ErrorKind::ModelError);
        let m = Message::new(r#"{"Message":"oops"}"#)
            .with_string_header(":message-type", "exception")
            .with_string_header(":exception-type", "InternalStreamFailure");
        assert_eq!(stream_exception(&m).unwrap().kind(), ErrorKind::Unavailable);
        let m = Message::new("")
            .with_string_header(":message-type", "error")
            .with_string_header(":error-code", "ThrottlingException")
            .with_string_header(":error-message", "slow down");
        let e = stream_exception(&m).unwrap();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.vendor_message(), Some("slow down"));
        let event = Message::new("x").with_string_header(":message-type", "event");
        assert!(stream_exception(&event).is_none());
    }
}
