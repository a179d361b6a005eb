//! TorchServe errors → [`inferlink_core::Error`].
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

use std::sync::Arc;

use inferlink_core::transport::grpc::{self, GrpcClassifier};
use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink_core::{Error, ErrorKind};
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

/// How TorchServe's gRPC answers refine the shared transport's classes: a
/// token failure (`PERMISSION_DENIED` with the InvalidKeyException text) is
/// `Unauthenticated`; `INTERNAL "Model not found: …"` is `NotFound`;
/// `INTERNAL "Prediction failed"` is `ModelError`. Only the first line of a
/// message is kept (TorchServe appends the Java exception class).
#[derive(Debug, Clone, Copy, Default)]
pub struct TorchServeGrpcClassifier;

impl GrpcClassifier for TorchServeGrpcClassifier {
    fn classify(&self, status: &tonic::Status) -> Option<ErrorClass> {
        let message = status.message();
        if message.contains(TOKEN_FAILED) || message.contains(INVALID_KEY) {
            return Some(ErrorClass::fatal(ErrorKind::Unauthenticated));
        }
        if !matches!(status.code(), Code::Internal | Code::Unknown) {
            return None;
        }
        if message.contains("ModelNotFoundException")
            || message.contains("ModelVersionNotFoundException")
            || message.starts_with("Model not found")
            || message.starts_with("Model version not found")
        {
            Some(ErrorClass::fatal(ErrorKind::NotFound))
        } else if message.contains("Prediction failed") {
            Some(ErrorClass::fatal(ErrorKind::ModelError))
        } else {
            None
        }
    }

    fn vendor_message(&self, status: &tonic::Status) -> String {
        first_line(status.message()).to_owned()
    }
}

/// The [`inferlink_core::Error`] of a failed gRPC call, classified by
/// [`TorchServeGrpcClassifier`]; the server's first line is kept.
pub fn from_grpc_status(status: &tonic::Status) -> Error {
    grpc::status_error(status, Some(&TorchServeGrpcClassifier))
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
