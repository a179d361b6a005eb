//! Seldon's error envelope, `{"status": {"code", "info", "reason", "status"}}`,
//! mapped to [`inferlink_core::Error`] kinds.
//!
//! | answer | kind |
//! |---|---|
//! | `reason: MICROSERVICE_BAD_DATA` (python wrapper, 400) | `InvalidInput` |
//! | 500 whose `info` starts `404 Not Found` (the python wrapper answers unknown routes so) | `NotFound` |
//! | 500 whose `info` starts `405 Method Not Allowed` | `Unsupported` |
//! | `reason: MICROSERVICE_INTERNAL_ERROR` (500), executor `FAILURE` (500) | `ModelError` |
//! | other statuses | the transport's table (`docs/transport.md`): 404 `NotFound`, 503 `Unavailable`, … |
//! | `status: FAILURE` inside a 2xx answer | by its `code` when that is an HTTP status, else `ModelError` |
//!
//! The `status.status` field is accepted as a name (`"FAILURE"`, the executor)
//! or a number (`1`, the python wrapper).

use std::sync::Arc;

use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink_core::{Error, ErrorKind};

use crate::codec::Status;

/// The reason the python wrapper gives for a request it cannot read.
pub const BAD_DATA: &str = "MICROSERVICE_BAD_DATA";
/// The reason the python wrapper gives for an exception in the model.
pub const INTERNAL_ERROR: &str = "MICROSERVICE_INTERNAL_ERROR";

/// The kind of an error answer with Seldon's envelope (`None`: keep the
/// transport's default for the status).
pub fn classify(status: u16, reason: Option<&str>, info: &str) -> Option<ErrorKind> {
    if reason == Some(BAD_DATA) {
        return Some(ErrorKind::InvalidInput);
    }
    if status == 500 || reason == Some(INTERNAL_ERROR) {
        let info = info.trim_start();
        if info.starts_with("404 Not Found") {
            return Some(ErrorKind::NotFound);
        }
        if info.starts_with("405 Method Not Allowed") {
            return Some(ErrorKind::Unsupported);
        }
    }
    None
}

/// The transport classifier of Seldon v1 answers (see the module table).
pub fn v1_classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(|r: &ErrorResponse<'_>| -> Option<ErrorClass> {
        let vendor = r.vendor?;
        classify(r.status.as_u16(), vendor.code.as_deref(), &vendor.message).map(ErrorClass::fatal)
    })
}

/// The error of a `status` envelope with `FAILURE` found in a successful
/// answer (`http_status` when known).
pub fn status_error(status: &Status, http_status: Option<u16>) -> Error {
    let info = status.info.clone().unwrap_or_default();
    let code = status
        .code
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .or(http_status);
    let kind = classify(code.unwrap_or(500), status.reason.as_deref(), &info).unwrap_or_else(
        || match code {
            Some(c) => {
                inferlink_core::transport::ErrorClass::for_status(
                    inferlink_core::transport::StatusCode::from_u16(c)
                        .unwrap_or(inferlink_core::transport::StatusCode::INTERNAL_SERVER_ERROR),
                )
                .kind
            }
            None => ErrorKind::ModelError,
        },
    );
    let vendor = match &status.reason {
        Some(r) if !info.is_empty() => format!("{r}: {info}"),
        Some(r) => r.clone(),
        None => info,
    };
    let mut e = Error::new(kind, "the Seldon answer reports FAILURE");
    if !vendor.is_empty() {
        e = e.with_vendor_message(vendor);
    }
    if let Some(c) = status.code {
        e = e.with_context("seldon_code", c.to_string());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_reasons_map_to_kinds() {
        assert_eq!(
            classify(400, Some(BAD_DATA), "Can't find JSON in data"),
            Some(ErrorKind::InvalidInput)
        );
        assert_eq!(
            classify(
                500,
                Some(INTERNAL_ERROR),
                "404 Not Found: The requested URL was not found"
            ),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            classify(500, Some(INTERNAL_ERROR), "405 Method Not Allowed: nope"),
            Some(ErrorKind::Unsupported)
        );
        assert_eq!(
            classify(500, Some(INTERNAL_ERROR), "cannot reshape array"),
            None
        );
        assert_eq!(classify(503, None, "no healthy upstream"), None);
    }

    #[test]
    fn failure_inside_a_success_is_an_error() {
        let s: Status =
            serde_json::from_str(r#"{"code":500,"info":"upstream failed","status":"FAILURE"}"#)
                .unwrap();
        assert!(s.is_failure());
        let e = status_error(&s, None);
        assert_eq!(e.kind(), ErrorKind::ModelError);
        assert!(e.to_string().contains("upstream failed"), "{e}");
        let s: Status = serde_json::from_str(
            r#"{"code":-1,"info":"bad","reason":"MICROSERVICE_BAD_DATA","status":1}"#,
        )
        .unwrap();
        assert!(s.is_failure());
        assert_eq!(status_error(&s, None).kind(), ErrorKind::InvalidInput);
        let s: Status = serde_json::from_str(r#"{"code":404,"info":"x","status":1}"#).unwrap();
        assert_eq!(status_error(&s, None).kind(), ErrorKind::NotFound);
        let ok: Status = serde_json::from_str(r#"{"status":"SUCCESS"}"#).unwrap();
        assert!(!ok.is_failure());
        let ok: Status = serde_json::from_str(r#"{"status":0}"#).unwrap();
        assert!(!ok.is_failure());
    }
}
