//! [`raw_request_spec`]: a [`RawRequest`] put on an HTTP request, the same
//! way for every connector whose raw invocation is one HTTP call.

use crate::connector::RawRequest;
use crate::transport::RequestSpec;

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
    use crate::transport::{Idempotency, Method};

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
