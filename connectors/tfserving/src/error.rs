//! TensorFlow Serving errors → [`inferlink_core::Error`].
//!
//! * **REST**: the body is `{"error": "<message>"}` and the status comes from
//!   the server's status code (INVALID_ARGUMENT 400, NOT_FOUND 404,
//!   FAILED_PRECONDITION 400, UNAVAILABLE 503, …). The shared transport maps
//!   the status ([`inferlink_core::transport::ErrorClass::for_status`]) and keeps
//!   the message; [`rest_classifier`] adds TF Serving's own codes:
//!   499 (CANCELLED) is `Unavailable` and retried only when idempotent.
//! * **gRPC**: the shared transport maps the status code
//!   ([`inferlink_core::transport::grpc::code_kind`]); [`TfServingGrpcClassifier`]
//!   refines it for TF Serving (`FAILED_PRECONDITION`) and pythie-serving
//!   (an `UNKNOWN` naming an unknown model is `NotFound`).

use std::sync::Arc;

use inferlink_core::transport::grpc::{self, GrpcClassifier};
use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink_core::{Error, ErrorKind};
use tonic::Code;

/// How TF Serving's gRPC answers refine the shared transport's classes
/// ([`inferlink_core::transport::grpc::default_class`]):
///
/// | status | kind |
/// |---|---|
/// | `FAILED_PRECONDITION` | `InvalidInput` (TF Serving's REST mapping answers it with 400: a request the model cannot take as is) |
/// | `UNKNOWN` "… Unknown model: …" (pythie-serving answers every failure with `UNKNOWN`) | `NotFound` |
#[derive(Debug, Clone, Copy, Default)]
pub struct TfServingGrpcClassifier;

impl GrpcClassifier for TfServingGrpcClassifier {
    fn classify(&self, status: &tonic::Status) -> Option<ErrorClass> {
        match status.code() {
            Code::FailedPrecondition => Some(ErrorClass::fatal(ErrorKind::InvalidInput)),
            Code::Unknown if status.message().contains("Unknown model") => {
                Some(ErrorClass::fatal(ErrorKind::NotFound))
            }
            _ => None,
        }
    }
}

/// The [`inferlink_core::Error`] of a failed gRPC call, classified by
/// [`TfServingGrpcClassifier`]: the server's text as vendor message, the
/// numeric code as context `grpc_status`.
pub fn from_grpc_status(status: &tonic::Status) -> Error {
    grpc::status_error(status, Some(&TfServingGrpcClassifier))
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
