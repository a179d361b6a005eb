//! Open Model Interface errors → [`inferlink_core::Error`].
//!
//! OMI reports failures on three levels, each mapped here:
//!
//! 1. **gRPC status** of the call (connection refused, deadline, an unknown
//!    method, chassis' `UNKNOWN "Internal Server Error"` for a `Run` the
//!    model was not loaded for): [`from_grpc_status`], kinds by the shared
//!    transport's [`inferlink_core::transport::grpc::code_kind`].
//! 2. **`status_code` inside a response** (HTTP-like, with the gRPC status
//!    OK): [`status_code_kind`], e.g. `Status` answering 500 "Model Failed to
//!    Initialize.".
//! 3. **Per batch item** (`OutputItem.success` false, or an `error` file):
//!    not an error of the call; see [`crate::RunOutcome`] and
//!    [`crate::ItemError`]. The trait methods turn a failed item into a
//!    [`ErrorKind::ModelError`] ([`crate::RunOutcome::into_files`]).

use inferlink_core::transport::grpc;
use inferlink_core::{Error, ErrorKind};

/// The [`inferlink_core::Error`] of a failed gRPC call, classified by the shared
/// transport ([`inferlink_core::transport::grpc::default_class`]: OMI servers say
/// nothing beyond the code): the server's text as vendor message, the
/// numeric code as context `grpc_status`.
pub fn from_grpc_status(status: &tonic::Status) -> Error {
    grpc::status_error(status, None)
}

/// The error kind of a non-200 `status_code` inside an OMI response.
///
/// | code | kind | retryable |
/// |---|---|---|
/// | 400, 413, 415, 422 | `InvalidInput` | no |
/// | 401 | `Unauthenticated` | no |
/// | 403 | `PermissionDenied` | no |
/// | 404 | `NotFound` | no |
/// | 408, 504 | `Timeout` | yes |
/// | 429 | `RateLimited` | yes |
/// | 503 | `Unavailable` | yes |
/// | other 5xx (chassis: 500 "Model Failed to Initialize.") | `ModelError` | no |
/// | anything else that is not 2xx | `Protocol` | no |
pub fn status_code_kind(code: i32) -> (ErrorKind, bool) {
    match code {
        400 | 413 | 415 | 422 => (ErrorKind::InvalidInput, false),
        401 => (ErrorKind::Unauthenticated, false),
        403 => (ErrorKind::PermissionDenied, false),
        404 => (ErrorKind::NotFound, false),
        408 | 504 => (ErrorKind::Timeout, true),
        429 => (ErrorKind::RateLimited, true),
        503 => (ErrorKind::Unavailable, true),
        500..=599 => (ErrorKind::ModelError, false),
        _ => (ErrorKind::Protocol, false),
    }
}

/// True for the `status_code` values OMI uses for success (chassis: 200).
pub(crate) fn is_success(code: i32) -> bool {
    (200..300).contains(&code)
}

/// The error for a response whose `status_code` is not a success.
pub(crate) fn status_code_error(rpc: &str, code: i32, status: &str, message: &str) -> Error {
    let (kind, retryable) = status_code_kind(code);
    let mut vendor = status.trim().to_owned();
    if !message.trim().is_empty() {
        if !vendor.is_empty() {
            vendor.push_str(": ");
        }
        vendor.push_str(message.trim());
    }
    Error::new(kind, format!("OMI {rpc} answered status_code {code}"))
        .with_vendor_message(vendor)
        .with_context("omi_status_code", code.to_string())
        .with_retryable(retryable)
}

/// An [`ErrorKind::Protocol`] error: the server answered something OMI does not allow.
pub(crate) fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    /// OMI keeps the transport's code table (tested in `inferlink-core`):
    /// the server's words and the status code travel with the error.
    #[test]
    fn grpc_statuses_keep_the_words_and_the_code() {
        let e = from_grpc_status(&tonic::Status::new(Code::NotFound, "the server's words"));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.vendor_message(), Some("the server's words"));
        let e = from_grpc_status(&tonic::Status::unknown("Internal Server Error"));
        assert_eq!(e.context("grpc_status"), Some("2"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn retry_follows_who_failed() {
        assert!(from_grpc_status(&tonic::Status::unavailable("busy")).is_retryable());
        assert!(!from_grpc_status(&tonic::Status::invalid_argument("x")).is_retryable());
        let dropped = tonic::Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        let e = from_grpc_status(&dropped);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("connection broke"), "{e}");
    }

    #[test]
    fn status_codes_inside_messages() {
        assert_eq!(status_code_kind(500), (ErrorKind::ModelError, false));
        assert_eq!(status_code_kind(503), (ErrorKind::Unavailable, true));
        assert_eq!(status_code_kind(429), (ErrorKind::RateLimited, true));
        assert_eq!(status_code_kind(400), (ErrorKind::InvalidInput, false));
        assert_eq!(status_code_kind(0), (ErrorKind::Protocol, false));
        assert!(is_success(200) && !is_success(0) && !is_success(500));
        let e = status_code_error(
            "Status",
            500,
            "Internal Server Error",
            "Model Failed to Initialize.",
        );
        assert_eq!(e.kind(), ErrorKind::ModelError);
        assert_eq!(
            e.vendor_message(),
            Some("Internal Server Error: Model Failed to Initialize.")
        );
        assert_eq!(e.context("omi_status_code"), Some("500"));
        assert!(e.message().contains("Status"));
    }
}
