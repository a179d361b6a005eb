//! Open Inference Protocol errors → [`inferlink::Error`].
//!
//! * **gRPC**: the status code decides the kind ([`grpc_kind`]); the
//!   server's message is kept; whether the shared retry loop may try again
//!   follows the code and whether the request reached the server.
//! * **REST**: the shared transport maps statuses and the `{"error": …}`
//!   envelope; [`rest_classifier`] refines the cases where OIP servers use a
//!   status that says less than their message (Triton answers some input
//!   errors with 500).

use std::error::Error as StdError;
use std::sync::Arc;

use inferlink::transport::{ErrorClass, ErrorResponse, ResponseClassifier, RetryRule};
use inferlink::{Error, ErrorKind};
use tonic::Code;

/// The error kind of a gRPC status code.
///
/// | code | kind |
/// |---|---|
/// | `INVALID_ARGUMENT`, `OUT_OF_RANGE` | `InvalidInput` |
/// | `NOT_FOUND` | `NotFound` |
/// | `ALREADY_EXISTS` | `AlreadyExists` |
/// | `ABORTED` | `Conflict` |
/// | `UNAUTHENTICATED` | `Unauthenticated` |
/// | `PERMISSION_DENIED` | `PermissionDenied` |
/// | `RESOURCE_EXHAUSTED` | `RateLimited` |
/// | `UNAVAILABLE`, `CANCELLED`, `FAILED_PRECONDITION` | `Unavailable` |
/// | `DEADLINE_EXCEEDED` | `Timeout` |
/// | `UNIMPLEMENTED` | `Unsupported` |
/// | `INTERNAL`, `UNKNOWN`, `DATA_LOSS` | `ModelError` |
///
/// (One refinement happens in the call path: an `UNKNOWN` or `INTERNAL`
/// status naming MLServer's `ModelNotFound` is `NotFound`.)
pub fn grpc_kind(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidInput,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::Aborted => ErrorKind::Conflict,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::ResourceExhausted => ErrorKind::RateLimited,
        Code::Unavailable | Code::Cancelled | Code::FailedPrecondition => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::Timeout,
        Code::Unimplemented => ErrorKind::Unsupported,
        Code::Internal | Code::Unknown | Code::DataLoss => ErrorKind::ModelError,
        Code::Ok => ErrorKind::Internal,
    }
}

/// How a failed gRPC call is classified: kind and retry rule.
pub(crate) fn grpc_class(status: &tonic::Status) -> (ErrorKind, RetryRule) {
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    let mut connect = false;
    let mut timed_out = false;
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            connect = true;
        }
        if e.is::<tonic::TimeoutExpired>() {
            timed_out = true;
        }
        source = e.source();
    }
    if connect {
        // Nothing reached the server.
        return (ErrorKind::Unavailable, RetryRule::Always);
    }
    if timed_out {
        return (ErrorKind::Timeout, RetryRule::IfIdempotent);
    }
    let mut kind = grpc_kind(status.code());
    // MLServer answers ModelReady for an unknown model with UNKNOWN
    // "Unexpected <class 'mlserver.errors.ModelNotFound'>: …".
    if matches!(status.code(), Code::Unknown | Code::Internal)
        && status.message().contains("ModelNotFound")
    {
        kind = ErrorKind::NotFound;
    }
    // Triton refuses a restricted protocol group (repository, statistics, …
    // without `triton-grpc-protocol-<key>` metadata) with UNAVAILABLE "This
    // protocol is restricted, expecting header '…'": a permission answer,
    // which no retry changes.
    if status.code() == Code::Unavailable
        && status.message().contains("is restricted, expecting header")
    {
        return (ErrorKind::PermissionDenied, RetryRule::Never);
    }
    let rule = match status.code() {
        // The server refused the work (overload, not serving yet).
        Code::ResourceExhausted => RetryRule::Always,
        // From the server: it did not serve the call; from the client side
        // (a reset stream, a broken connection) it may have.
        Code::Unavailable if status.source().is_none() => RetryRule::Always,
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => RetryRule::IfIdempotent,
        _ => RetryRule::Never,
    };
    (kind, rule)
}

/// The [`inferlink::Error`] of a failed gRPC call: the kind from the code,
/// the server's own text kept as the vendor message
/// ([`Error::vendor_message`]), the numeric code as context `grpc_status`.
pub fn from_grpc_status(status: &tonic::Status) -> Error {
    let (kind, rule) = grpc_class(status);
    let code = status.code();
    Error::new(kind, format!("gRPC status {}", code_name(code)))
        .with_vendor_message(status.message())
        .with_context("grpc_status", format!("{}", code as i32))
        .with_retryable(rule != RetryRule::Never)
}

/// The protocol's name of a status code (`NOT_FOUND`, …).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Phrases in OIP servers' 500 answers that mean the request was wrong.
const INPUT_PHRASES: &[&str] = &[
    "Unable to parse",
    "failed to parse the request",
    "does not match",
    "byte size mismatch",
    "unexpected inference input",
    "data-type is",
    "cannot reshape",
];

/// Refines the transport's status mapping for OIP servers: a 500 whose
/// message says the request was malformed (Triton's "Unable to parse 'data':
/// Shape does not match…", KServe's "cannot reshape array…") is
/// [`ErrorKind::InvalidInput`], not a model failure.
pub fn rest_classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(|r: &ErrorResponse<'_>| -> Option<ErrorClass> {
        if r.status.as_u16() != 500 {
            return None;
        }
        let message = &r.vendor?.message;
        INPUT_PHRASES
            .iter()
            .any(|p| message.contains(p))
            .then(|| ErrorClass::fatal(ErrorKind::InvalidInput))
    })
}

/// An [`ErrorKind::Protocol`] error: the server answered something the protocol does not allow.
pub(crate) fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_code_has_a_kind() {
        let cases = [
            (Code::NotFound, ErrorKind::NotFound),
            (Code::InvalidArgument, ErrorKind::InvalidInput),
            (Code::Unavailable, ErrorKind::Unavailable),
            (Code::DeadlineExceeded, ErrorKind::Timeout),
            (Code::Unauthenticated, ErrorKind::Unauthenticated),
            (Code::PermissionDenied, ErrorKind::PermissionDenied),
            (Code::ResourceExhausted, ErrorKind::RateLimited),
            (Code::Unimplemented, ErrorKind::Unsupported),
            (Code::Internal, ErrorKind::ModelError),
            (Code::Unknown, ErrorKind::ModelError),
        ];
        for (code, kind) in cases {
            let e = from_grpc_status(&tonic::Status::new(code, "the server's words"));
            assert_eq!(e.kind(), kind, "{code:?}");
            assert_eq!(e.vendor_message(), Some("the server's words"));
            assert!(e.to_string().contains("the server's words"), "{e}");
        }
    }

    #[test]
    fn tritons_restricted_protocol_answer_is_permission_denied() {
        let e = from_grpc_status(&tonic::Status::unavailable(
            "This protocol is restricted, expecting header 'triton-grpc-protocol-triton-access-token'",
        ));
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(!e.is_retryable());
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
