//! TorchServe errors → [`inferlink::Error`].
//!
//! TorchServe answers errors as `{"code": <status>, "type": "<Java exception>",
//! "message": "…"}`; the shared transport parses that envelope (message kept,
//! `type` as the `vendor_code` context) and maps the status. [`classifier`]
//! refines the statuses whose meaning depends on the exception type:
//!
//! | status | `type` | kind | retried |
//! |---|---|---|---|
//! | 400 | `InvalidKeyException` (missing, wrong or expired token) | `Unauthenticated` | no |
//! | 503 | `InternalServerException` ("Prediction failed": the handler raised) | `ModelError` | no |
//! | 503 | anything else (no worker free, model loading) | `Unavailable` | yes |
//! | 405 | `MethodNotAllowedException` (e.g. the model API is disabled) | `Unsupported` | no |
//! | 507 | `OutOfMemoryError` | `Unavailable` | no |
//!
//! gRPC: TorchServe answers a bad or missing token with `PERMISSION_DENIED`
//! and the same InvalidKeyException text (that is `Unauthenticated` too), and
//! an unknown model with `INTERNAL "Model not found: …"` (that is `NotFound`);
//! see [`from_grpc_status`].

use std::error::Error as StdError;
use std::sync::Arc;

use inferlink::transport::retry::RetryRule;
use inferlink::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink::{Error, ErrorKind};
use tonic::Code;

/// The exception type of a rejected token.
pub const INVALID_KEY: &str = "InvalidKeyException";
/// The exception type of a handler failure.
pub const INTERNAL_SERVER: &str = "InternalServerException";
/// The exception type of a disabled or unknown method.
pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowedException";

/// The phrase TorchServe puts in every token failure, whatever the transport.
const TOKEN_FAILED: &str = "Token Authorization failed";

/// Refines the transport's status mapping for TorchServe (see the module docs).
pub fn classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(|r: &ErrorResponse<'_>| -> Option<ErrorClass> {
        let vendor = r.vendor?;
        let code = vendor.code.as_deref().unwrap_or_default();
        match r.status.as_u16() {
            400 if code == INVALID_KEY || vendor.message.contains(TOKEN_FAILED) => {
                Some(ErrorClass::fatal(ErrorKind::Unauthenticated))
            }
            503 if code == INTERNAL_SERVER => Some(ErrorClass::fatal(ErrorKind::ModelError)),
            507 => Some(ErrorClass::fatal(ErrorKind::Unavailable)),
            _ => None,
        }
    })
}

/// The [`inferlink::Error`] of a failed gRPC call: the code decides the kind,
/// refined for TorchServe's habits (token failures are `Unauthenticated`,
/// "Model not found" is `NotFound`); the server's text is kept.
pub fn from_grpc_status(status: &tonic::Status) -> Error {
    let (kind, rule) = grpc_class(status);
    Error::new(kind, format!("gRPC status {:?}", status.code()))
        .with_vendor_message(first_line(status.message()))
        .with_context("grpc_status", format!("{}", status.code() as i32))
        .with_retryable(rule != RetryRule::Never)
}

/// Kind and retry rule of a failed gRPC call.
pub(crate) fn grpc_class(status: &tonic::Status) -> (ErrorKind, RetryRule) {
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            // Nothing reached the server.
            return (ErrorKind::Unavailable, RetryRule::Always);
        }
        if e.is::<tonic::TimeoutExpired>() {
            return (ErrorKind::Timeout, RetryRule::IfIdempotent);
        }
        source = e.source();
    }
    let message = status.message();
    let mut kind = inferlink_oip::error::grpc_kind(status.code());
    if message.contains(TOKEN_FAILED) || message.contains(INVALID_KEY) {
        return (ErrorKind::Unauthenticated, RetryRule::Never);
    }
    if matches!(status.code(), Code::Internal | Code::Unknown) {
        if message.contains("ModelNotFoundException")
            || message.contains("ModelVersionNotFoundException")
            || message.starts_with("Model not found")
            || message.starts_with("Model version not found")
        {
            kind = ErrorKind::NotFound;
        } else if message.contains("Prediction failed") {
            kind = ErrorKind::ModelError;
        }
    }
    let rule = match status.code() {
        Code::ResourceExhausted => RetryRule::Always,
        Code::Unavailable if status.source().is_none() => RetryRule::Always,
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => RetryRule::IfIdempotent,
        _ => RetryRule::Never,
    };
    (kind, rule)
}

/// TorchServe appends the Java exception class on a second line; keep the first.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default().trim()
}

/// The error for a management call the server refuses with 405: the model
/// API (register, unregister) is off unless TorchServe runs with
/// `--enable-model-api`.
pub(crate) fn explain_method_not_allowed(error: Error, what: &str) -> Error {
    if error.kind() != ErrorKind::Unsupported {
        return error;
    }
    let message = format!(
        "{what}: the server refuses the call (405); its model API is disabled unless TorchServe \
         runs with --enable-model-api (or enable_model_api=true): {}",
        error.message()
    );
    let mut out = Error::new(ErrorKind::Unsupported, message);
    for key in ["status", "vendor_code", "attempts"] {
        if let Some(v) = error.context(key) {
            let key: &'static str = match key {
                "status" => "status",
                "vendor_code" => "vendor_code",
                _ => "attempts",
            };
            out = out.with_context(key, v.to_owned());
        }
    }
    if let Some(v) = error.vendor() {
        out = out.with_vendor(v.to_owned());
    }
    if let Some(v) = error.endpoint() {
        out = out.with_endpoint(v.to_owned());
    }
    if let Some(v) = error.model() {
        out = out.with_model(v.to_owned());
    }
    out
}

/// An [`ErrorKind::Protocol`] error: the server answered something unusable.
pub(crate) fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_statuses_follow_torchserve_habits() {
        let token = tonic::Status::permission_denied(
            "Token Authorization failed. Token either incorrect, expired, or not provided correctly",
        );
        let e = from_grpc_status(&token);
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(!e.is_retryable());
        let missing = tonic::Status::internal(
            "Model not found: nope\norg.pytorch.serve.archive.model.ModelNotFoundException",
        );
        let e = from_grpc_status(&missing);
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.vendor_message(), Some("Model not found: nope"));
        let failed = tonic::Status::internal("Prediction failed");
        assert_eq!(from_grpc_status(&failed).kind(), ErrorKind::ModelError);
        let busy = tonic::Status::unavailable("no worker");
        assert!(from_grpc_status(&busy).is_retryable());
    }

    #[test]
    fn disabled_model_api_is_explained() {
        let e = Error::new(
            ErrorKind::Unsupported,
            "HTTP 405: MethodNotAllowedException: Requested method is not allowed",
        )
        .with_context("status", "405");
        let e = explain_method_not_allowed(e, "registering a model");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("--enable-model-api"), "{e}");
        assert_eq!(e.context("status"), Some("405"));
        let other = explain_method_not_allowed(Error::not_found("x"), "y");
        assert_eq!(other.kind(), ErrorKind::NotFound);
    }
}
