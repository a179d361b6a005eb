//! TensorFlow Serving errors → [`inferlink::Error`].
//!
//! * **REST**: the body is `{"error": "<message>"}` and the status comes from
//!   the server's status code (INVALID_ARGUMENT 400, NOT_FOUND 404,
//!   FAILED_PRECONDITION 400, UNAVAILABLE 503, …). The shared transport maps
//!   the status ([`inferlink::transport::ErrorClass::for_status`]) and keeps
//!   the message; [`rest_classifier`] adds TF Serving's own codes:
//!   499 (CANCELLED) is `Unavailable` and retried only when idempotent.
//! * **gRPC**: the status code decides the kind ([`grpc_kind`]). One
//!   refinement: pythie-serving answers every failure with `UNKNOWN`, so an
//!   `UNKNOWN` naming an unknown model ("Unknown model: …") is `NotFound`.

use std::error::Error as StdError;
use std::sync::Arc;

use inferlink::transport::{ErrorClass, ErrorResponse, ResponseClassifier, RetryRule};
use inferlink::{Error, ErrorKind};
use tonic::Code;

/// The error kind of a gRPC status code.
///
/// | code | kind |
/// |---|---|
/// | `INVALID_ARGUMENT`, `OUT_OF_RANGE`, `FAILED_PRECONDITION` | `InvalidInput` |
/// | `NOT_FOUND` | `NotFound` |
/// | `ALREADY_EXISTS` | `AlreadyExists` |
/// | `ABORTED` | `Conflict` |
/// | `UNAUTHENTICATED` | `Unauthenticated` |
/// | `PERMISSION_DENIED` | `PermissionDenied` |
/// | `RESOURCE_EXHAUSTED` | `RateLimited` |
/// | `UNAVAILABLE`, `CANCELLED` | `Unavailable` |
/// | `DEADLINE_EXCEEDED` | `Timeout` |
/// | `UNIMPLEMENTED` | `Unsupported` |
/// | `INTERNAL`, `UNKNOWN`, `DATA_LOSS` | `ModelError` |
///
/// FAILED_PRECONDITION is `InvalidInput` because TF Serving's REST mapping
/// answers it with 400 (a request the model cannot take as is).
pub fn grpc_kind(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            ErrorKind::InvalidInput
        }
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::Aborted => ErrorKind::Conflict,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::ResourceExhausted => ErrorKind::RateLimited,
        Code::Unavailable | Code::Cancelled => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::Timeout,
        Code::Unimplemented => ErrorKind::Unsupported,
        Code::Internal | Code::Unknown | Code::DataLoss => ErrorKind::ModelError,
        Code::Ok => ErrorKind::Internal,
    }
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
    let mut kind = grpc_kind(status.code());
    if status.code() == Code::Unknown && status.message().contains("Unknown model") {
        kind = ErrorKind::NotFound;
    }
    let rule = match status.code() {
        Code::ResourceExhausted => RetryRule::Always,
        Code::Unavailable if status.source().is_none() => RetryRule::Always,
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => RetryRule::IfIdempotent,
        _ => RetryRule::Never,
    };
    (kind, rule)
}

/// The [`inferlink::Error`] of a failed gRPC call: kind from the code, the
/// server's text as vendor message, the numeric code as context `grpc_status`.
pub fn from_grpc_status(status: &tonic::Status) -> Error {
    let (kind, rule) = grpc_class(status);
    let code = status.code();
    Error::new(kind, format!("gRPC status {}", code.description()))
        .with_vendor_message(status.message())
        .with_context("grpc_status", format!("{}", code as i32))
        .with_retryable(rule != RetryRule::Never)
}

/// Refines the transport's status mapping with TF Serving's codes.
pub fn rest_classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(|r: &ErrorResponse<'_>| -> Option<ErrorClass> {
        match r.status.as_u16() {
            499 => Some(ErrorClass::retry_if_idempotent(ErrorKind::Unavailable)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds_and_keep_the_message() {
        for (code, kind) in [
            (Code::NotFound, ErrorKind::NotFound),
            (Code::InvalidArgument, ErrorKind::InvalidInput),
            (Code::FailedPrecondition, ErrorKind::InvalidInput),
            (Code::Unimplemented, ErrorKind::Unsupported),
            (Code::Unknown, ErrorKind::ModelError),
            (Code::Unavailable, ErrorKind::Unavailable),
            (Code::ResourceExhausted, ErrorKind::RateLimited),
        ] {
            let e = from_grpc_status(&tonic::Status::new(code, "the server's words"));
            assert_eq!(e.kind(), kind, "{code:?}");
            assert_eq!(e.vendor_message(), Some("the server's words"));
        }
        let e = from_grpc_status(&tonic::Status::unknown(
            "Exception calling application: Unknown model: nope. This pythie-serving instance…",
        ));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(!e.is_retryable());
        assert!(from_grpc_status(&tonic::Status::unavailable("x")).is_retryable());
    }
}
