//! HTTP helpers of the kit: [`raw_request_spec`] (a [`RawRequest`] put on
//! an HTTP request, the same way for every connector whose raw invocation
//! is one HTTP call) and [`phrase_class`] (an error status refined by the
//! words of the vendor's message).

use crate::connector::RawRequest;
use crate::error::ErrorKind;
use crate::transport::{ErrorClass, ErrorResponse, RequestSpec};

/// The class of an error answer with status `status` whose vendor message
/// contains one of `phrases`: `kind`, not retried; `None` for any other
/// answer (the transport's status mapping then applies). For servers that
/// answer a malformed request with a 500 and say so only in words
/// (Triton's "Unable to parse", KServe's "cannot reshape array").
///
/// ```
/// use std::sync::Arc;
/// use inferlink_core::ErrorKind;
/// use inferlink_core::kit::phrase_class;
/// use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
///
/// const INPUT_PHRASES: &[&str] = &["cannot reshape array"];
/// let classifier: Arc<dyn ResponseClassifier> = Arc::new(|r: &ErrorResponse<'_>| {
///     phrase_class(r, 500, INPUT_PHRASES, ErrorKind::InvalidInput)
/// });
/// # let _ = classifier;
/// ```
pub fn phrase_class(
    response: &ErrorResponse<'_>,
    status: u16,
    phrases: &[&str],
    kind: ErrorKind,
) -> Option<ErrorClass> {
    if response.status.as_u16() != status {
        return None;
    }
    let message = &response.vendor?.message;
    phrases
        .iter()
        .any(|p| message.contains(p))
        .then(|| ErrorClass::fatal(kind))
}

/// `spec` carrying `request`: its body and content type, its `accept`
/// (when set), its extra headers (checked for control characters when
/// sent), and its idempotency (a raw request is resent after a failure
/// only when marked idempotent).
///
/// ```
/// use inferlink_core::RawRequest;
/// use inferlink_core::kit::raw_request_spec;
/// use inferlink_core::transport::{Method, RequestSpec};
///
/// let mut raw = RawRequest::new("a,b\n1,2\n", "text/csv");
/// raw.accept = Some("application/json".into());
/// raw.headers.push(("x-tenant".into(), "alpha".into()));
/// let spec = raw_request_spec(RequestSpec::new(Method::POST, "invocations"), raw);
/// assert_eq!(spec.body_len(), 8);
/// ```
pub fn raw_request_spec(spec: RequestSpec, request: RawRequest) -> RequestSpec {
    let mut spec = spec.content_type(&request.content_type).body(request.body);
    if let Some(accept) = &request.accept {
        spec = spec.header("accept", accept);
    }
    for (name, value) in &request.headers {
        spec = spec.header(name, value);
    }
    if request.idempotent {
        spec = spec.idempotent();
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{HeaderMap, Idempotency, Method, RetryRule, StatusCode, VendorMessage};

    #[test]
    fn phrases_refine_only_their_status() {
        let headers = HeaderMap::new();
        let body = br#"{"error": "cannot reshape array of size 3"}"#;
        let vendor = VendorMessage::parse(&headers, body).expect("a vendor message");
        let answer = |status: u16| ErrorResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: &headers,
            body,
            vendor: Some(&vendor),
        };
        let phrases = &["cannot reshape array"];
        let class = phrase_class(&answer(500), 500, phrases, ErrorKind::InvalidInput).unwrap();
        assert_eq!(class.kind, ErrorKind::InvalidInput);
        assert_eq!(class.retry, RetryRule::Never);
        assert!(phrase_class(&answer(503), 500, phrases, ErrorKind::InvalidInput).is_none());
        assert!(
            phrase_class(&answer(500), 500, &["other words"], ErrorKind::InvalidInput).is_none()
        );
        let silent = ErrorResponse {
            vendor: None,
            ..answer(500)
        };
        assert!(phrase_class(&silent, 500, phrases, ErrorKind::InvalidInput).is_none());
    }

    #[test]
    fn every_part_of_the_raw_request_is_carried() {
        let mut raw = RawRequest::new("{}", "application/json");
        raw.accept = Some("text/csv".into());
        raw.headers.push(("x-tenant".into(), "alpha".into()));
        raw.idempotent = true;
        let spec = raw_request_spec(RequestSpec::new(Method::POST, "invoke"), raw);
        assert_eq!(&spec.body_bytes()[..], b"{}");
        let shown = format!("{spec:?}");
        for name in ["content-type", "accept", "x-tenant"] {
            assert!(shown.contains(&format!("\"{name}\"")), "{name}: {shown}");
        }
        assert_eq!(spec.idempotency_of(), Idempotency::Safe);
        let plain = raw_request_spec(
            RequestSpec::new(Method::POST, "invoke"),
            RawRequest::new("x", "text/plain"),
        );
        assert!(!format!("{plain:?}").contains("\"accept\""));
        assert_eq!(plain.idempotency_of(), Idempotency::Unsafe);
    }
}
