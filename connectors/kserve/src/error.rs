//! KServe errors → [`inferlink_core::Error`].
//!
//! * **V2** errors come from `inferlink-oip` as they are (its REST status
//!   and gRPC code tables, `docs/connectors/oip.md`).
//! * **V1** answers go through the shared transport's status mapping
//!   (KServe: 400 invalid input, 404 unknown model, 503 not ready, 501 not
//!   implemented, 500 model failure; FastAPI's 422 `{"detail": …}` for
//!   malformed JSON is `InvalidInput`), refined by [`rest_classifier`]:
//!   a 500 whose message shows the *request* was wrong is `InvalidInput`.
//! * **Ingress**: an ingress answers a request for a host it does not route
//!   with a bare 404 (HTTP) or an HTTP 404 that gRPC reports as
//!   `UNIMPLEMENTED`. When the connector routes by a configured host,
//!   [`ingress_hint`] turns those into a `NotFound` error that names the
//!   host and the keys that build it.

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink_core::{Error, ErrorKind};

/// Phrases in KServe's 500 answers that mean the request was malformed:
/// a V1 body without `instances` (`KeyError : 'instances'`), ragged
/// instances numpy cannot stack, and the OIP connector's list (shape
/// mismatches, `cannot reshape`).
const INPUT_PHRASES: &[&str] = &[
    "KeyError : 'instances'",
    "inhomogeneous shape",
    "cannot reshape",
    "setting an array element with a sequence",
];

/// The response classifier of the V1 wire: OIP's, plus its own input phrases.
pub fn rest_classifier() -> Arc<dyn ResponseClassifier> {
    let oip = inferlink_oip::error::rest_classifier();
    Arc::new(move |r: &ErrorResponse<'_>| -> Option<ErrorClass> {
        oip.classify(r)
            .or_else(|| kit::phrase_class(r, 500, INPUT_PHRASES, ErrorKind::InvalidInput))
    })
}

/// KServe's own answer for an unknown model (`Model with name X does not exist.`).
fn is_kserve_not_found(error: &Error) -> bool {
    error
        .vendor_message()
        .is_some_and(|m| m.contains("does not exist") || m.contains("not found"))
}

/// Whether `error` looks like an ingress refusing an unknown virtual host:
/// a 404 without KServe's own message, or gRPC `UNIMPLEMENTED` mapped from
/// an HTTP 404 (what tonic reports when a proxy answers a gRPC call with a
/// plain 404).
pub fn is_ingress_miss(error: &Error) -> bool {
    match error.kind() {
        ErrorKind::NotFound => !is_kserve_not_found(error),
        ErrorKind::Unsupported => error
            .vendor_message()
            .is_some_and(|m| m.contains("HTTP status code 404")),
        _ => false,
    }
}

/// Adds the routing host to every error and, for an ingress miss
/// ([`is_ingress_miss`]), makes it a `NotFound` error that says so.
pub fn ingress_hint(error: Error, host: Option<&str>) -> Error {
    let Some(host) = host else {
        return error;
    };
    if error.context("host").is_some() {
        return error;
    }
    if !is_ingress_miss(&error) {
        return error.with_context("host", host);
    }
    error
        .with_kind(ErrorKind::NotFound)
        .with_retryable(false)
        .with_context("host", host)
        .with_context(
            "hint",
            format!(
                "the ingress has no route for host \"{host}\" (check isvc_name, isvc_namespace \
                 and isvc_domain, or ingress_host)"
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_misses_become_not_found_with_the_host() {
        let bare = Error::new(ErrorKind::NotFound, "HTTP 404 Not Found")
            .with_context("vendor", "kserve")
            .with_context("status", "404");
        let e = ingress_hint(bare, Some("m.ns.example.com"));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.message(), "HTTP 404 Not Found");
        assert!(
            e.to_string()
                .contains("no route for host \"m.ns.example.com\""),
            "{e}"
        );
        assert_eq!(e.context("host"), Some("m.ns.example.com"));
        assert_eq!(e.vendor(), Some("kserve"));
        assert_eq!(e.context("status"), Some("404"));
        assert!(!e.is_retryable());

        let grpc = Error::new(ErrorKind::Unsupported, "gRPC status UNIMPLEMENTED")
            .with_vendor_message("grpc-status header missing, mapped from HTTP status code 404");
        let e = ingress_hint(grpc, Some("h"));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("HTTP status code 404"), "{e}");

        // KServe's own unknown-model answer stays as it is.
        let model = Error::new(ErrorKind::NotFound, "HTTP 404")
            .with_vendor_message("Model with name nope does not exist.");
        let e = ingress_hint(model, Some("h"));
        assert!(!e.to_string().contains("no route"), "{e}");
        assert_eq!(e.context("host"), Some("h"));

        // Without a configured host nothing changes.
        let e = ingress_hint(Error::new(ErrorKind::NotFound, "x"), None);
        assert_eq!(e.message(), "x");
        assert_eq!(e.context("host"), None);
    }
}
