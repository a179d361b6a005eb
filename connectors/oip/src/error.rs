//! Open Inference Protocol errors → [`inferlink_core::Error`].
//!
//! * **gRPC**: the shared transport maps the status code
//!   ([`inferlink_core::transport::grpc::code_kind`]) and decides on retries from
//!   the code and whether the request reached the server;
//!   [`OipGrpcClassifier`] refines what OIP servers say in their messages.
//! * **REST**: the shared transport maps statuses and the `{"error": …}`
//!   envelope; [`rest_classifier`] refines the cases where OIP servers use a
//!   status that says less than their message (Triton answers some input
//!   errors with 500).

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::transport::grpc::{self, GrpcClassifier};
use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink_core::{Error, ErrorKind};
use tonic::Code;

/// How OIP servers' gRPC answers refine the shared transport's classes
/// ([`inferlink_core::transport::grpc::default_class`]): MLServer answers an
/// unknown model with `UNKNOWN "Unexpected <class
/// 'mlserver.errors.ModelNotFound'>: …"` ([`ErrorKind::NotFound`]); Triton
/// refuses a restricted protocol group (repository, statistics, … without
/// `triton-grpc-protocol-<key>` metadata) with `UNAVAILABLE "This protocol
/// is restricted, expecting header '…'"`, a permission answer no retry
/// changes ([`ErrorKind::PermissionDenied`]); an `INTERNAL` or `UNKNOWN`
/// whose message says the request did not fit (MLServer's "unpack requires a
/// buffer of 36 bytes" for raw contents shorter than the shape) is
/// [`ErrorKind::InvalidInput`]. KServe's generic `INTERNAL "Internal server
/// error"` says nothing more and stays [`ErrorKind::ModelError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OipGrpcClassifier;

impl GrpcClassifier for OipGrpcClassifier {
    fn classify(&self, status: &tonic::Status) -> Option<ErrorClass> {
        let message = status.message();
        match status.code() {
            Code::Unknown | Code::Internal if message.contains("ModelNotFound") => {
                Some(ErrorClass::fatal(ErrorKind::NotFound))
            }
            Code::Unknown | Code::Internal if INPUT_PHRASES.iter().any(|p| message.contains(p)) => {
                Some(ErrorClass::fatal(ErrorKind::InvalidInput))
            }
            Code::Unavailable if message.contains("is restricted, expecting header") => {
                Some(ErrorClass::fatal(ErrorKind::PermissionDenied))
            }
            _ => None,
        }
    }
}

/// The [`inferlink_core::Error`] of a failed OIP gRPC call: the kind from the
/// code (refined by [`OipGrpcClassifier`]), the server's own text kept as
/// the vendor message ([`Error::vendor_message`]), the numeric code as
/// context `grpc_status`.
pub fn from_grpc_status(status: &tonic::Status) -> Error {
    grpc::status_error(status, Some(&OipGrpcClassifier))
}

/// Phrases in OIP servers' 500 (REST) and `INTERNAL`/`UNKNOWN` (gRPC)
/// answers that mean the request was wrong.
const INPUT_PHRASES: &[&str] = &[
    "Unable to parse",
    "failed to parse the request",
    "does not match",
    "byte size mismatch",
    "unexpected inference input",
    "data-type is",
    "cannot reshape",
    // MLServer's gRPC answer to raw contents that do not fit the shape.
    "unpack requires a buffer",
];

/// Refines the transport's status mapping for OIP servers: a 500 whose
/// message says the request was malformed (Triton's "Unable to parse 'data':
/// Shape does not match…", KServe's "cannot reshape array…") is
/// [`ErrorKind::InvalidInput`], not a model failure.
pub fn rest_classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(|r: &ErrorResponse<'_>| -> Option<ErrorClass> {
        kit::phrase_class(r, 500, INPUT_PHRASES, ErrorKind::InvalidInput)
    })
}

/// An [`ErrorKind::Protocol`] error: the server answered something the protocol does not allow.
pub(crate) fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::transport::RetryRule;
    use inferlink_core::transport::grpc::GrpcFailure;

    /// Kind and retry rule, as the transport's retry loop sees them.
    fn grpc_class(status: &tonic::Status) -> (ErrorKind, RetryRule) {
        let class = match GrpcFailure::of(status) {
            GrpcFailure::Answered => OipGrpcClassifier.classify(status),
            _ => None,
        }
        .unwrap_or_else(|| grpc::default_class(status));
        (class.kind, class.retry)
    }

    /// Without the phrases OIP servers use, every code keeps the transport's
    /// kind (the code table itself is tested in `inferlink-core`).
    #[test]
    fn plain_statuses_keep_the_default_kind_and_the_words() {
        for code in (0..=16).map(Code::from) {
            let status = tonic::Status::new(code, "the server's words");
            let e = from_grpc_status(&status);
            assert_eq!(
                e.kind(),
                grpc::status_error(&status, None).kind(),
                "{code:?}"
            );
            assert_eq!(e.vendor_message(), Some("the server's words"));
        }
    }

    /// Triton's restricted-protocol answer is PermissionDenied; an internal
    /// answer naming the request is InvalidInput; both final.
    #[test]
    fn answers_read_by_their_words_are_final() {
        for (status, kind) in [
            (
                tonic::Status::unavailable(
                    "This protocol is restricted, expecting header 'triton-grpc-protocol-triton-access-token'",
                ),
                ErrorKind::PermissionDenied,
            ),
            (
                tonic::Status::internal("unpack requires a buffer of 36 bytes"),
                ErrorKind::InvalidInput,
            ),
        ] {
            let e = from_grpc_status(&status);
            assert_eq!(e.kind(), kind, "{status:?}");
            assert!(!e.is_retryable(), "{status:?}");
        }
    }

    #[test]
    fn other_internal_answers_are_model_errors() {
        let e = from_grpc_status(&tonic::Status::internal("Internal server error"));
        assert_eq!(e.kind(), ErrorKind::ModelError);
    }

    #[test]
    fn messages_name_the_code() {
        let e = from_grpc_status(&tonic::Status::not_found(
            "Model nope with version  not found",
        ));
        assert_eq!(e.message(), "gRPC status NOT_FOUND");
        assert_eq!(e.context("grpc_status"), Some("5"));
        assert!(e.to_string().contains("Model nope"), "{e}");
        let e = from_grpc_status(&tonic::Status::internal(""));
        assert_eq!(e.vendor_message(), None);
    }

    #[test]
    fn retry_follows_who_failed() {
        let server = tonic::Status::unavailable("not serving");
        assert_eq!(grpc_class(&server).1, RetryRule::Always);
        assert!(from_grpc_status(&server).is_retryable());
        let bad = tonic::Status::invalid_argument("shape");
        assert_eq!(grpc_class(&bad).1, RetryRule::Never);
        assert!(!from_grpc_status(&bad).is_retryable());
        let busy = tonic::Status::resource_exhausted("busy");
        assert_eq!(grpc_class(&busy).1, RetryRule::Always);
        let connect = tonic::Status::from_error(Box::new(tonic::ConnectError(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        )));
        assert_eq!(connect.code(), Code::Unavailable);
        assert_eq!(
            grpc_class(&connect),
            (ErrorKind::Unavailable, RetryRule::Always)
        );
        let mlserver = tonic::Status::unknown(
            "Unexpected <class 'mlserver.errors.ModelNotFound'>: Model x with version  not found",
        );
        assert_eq!(
            grpc_class(&mlserver),
            (ErrorKind::NotFound, RetryRule::Never)
        );
        let timeout = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(
            grpc_class(&timeout),
            (ErrorKind::Timeout, RetryRule::IfIdempotent)
        );
    }
}
