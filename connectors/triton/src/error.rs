//! Triton's errors → `inferlink_core::Error`.
//!
//! Status codes and the `{"error": …}` envelope are mapped by the OIP
//! connector's classifier (shared transport); gRPC statuses by
//! `inferlink_oip::error`. What this module adds: the kind of an error that
//! arrives **in-band** — a `generate_stream` event with `error`, a
//! `ModelStreamInfer` message with `error_message` — where no status code
//! says it, read from Triton's wording.

use inferlink_core::{Error, ErrorKind};

/// The kind of an in-band Triton error message.
pub fn kind_of_message(message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    if m.contains("unknown model") || m.contains("is not found") {
        ErrorKind::NotFound
    } else if m.contains("restricted") && m.contains("expecting header") {
        ErrorKind::PermissionDenied
    } else if m.contains("unexpected inference input")
        || m.contains("data-type is")
        || m.contains("byte size mismatch")
        || m.contains("batch-size must be")
        || m.contains("unable to parse")
        || m.contains("failed to parse")
        || m.contains("must specify a non-zero or non-empty correlation id")
        || m.contains("expected")
            && (m.contains("inputs") || m.contains("input"))
            && m.contains("got")
    {
        ErrorKind::InvalidInput
    } else if m.contains("doesn't support models with decoupled")
        || m.contains("does not support")
        || m.contains("not supported")
    {
        ErrorKind::Unsupported
    } else {
        ErrorKind::ModelError
    }
}

/// An in-band error with the server's text kept as the vendor message.
pub fn in_band(message: &str, what: &str) -> Error {
    Error::new(kind_of_message(message), what.to_owned()).with_vendor_message(message.to_owned())
}

/// A REST error refined by Triton's words: a decoupled model on the plain
/// HTTP `infer` endpoint is refused with a 400 saying "HTTP end point
/// doesn't support models with decoupled transaction policy", which is
/// [`ErrorKind::Unsupported`] (use `infer_stream`) rather than bad input.
///
/// And `generate` answers a model's own exception ("Failed to process the
/// request(s) for model …") with 400, and `generate_stream` with a 400 whose
/// body is an event `data: {"error": "Traceback …"}`: both are
/// [`ErrorKind::ModelError`].
pub fn refine(error: Error) -> Error {
    let said = |phrase: &str| {
        error.message().contains(phrase)
            || error.vendor_message().is_some_and(|m| m.contains(phrase))
    };
    if said("decoupled transaction policy") {
        return error.with_kind(ErrorKind::Unsupported).with_context(
            "hint",
            "the model is decoupled (0..n responses per request): use infer_stream \
             (gRPC ModelStreamInfer or generate_stream)",
        );
    }
    if error.kind() == ErrorKind::InvalidInput
        && (said("Failed to process the request(s) for model")
            || said("Traceback (most recent call last)"))
    {
        return error.with_kind(ErrorKind::ModelError);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refine_re_kinds_keeping_the_context() {
        let decoupled = Error::new(ErrorKind::InvalidInput, "HTTP 400 Bad Request")
            .with_vendor_message(
                "HTTP end point doesn't support models with decoupled transaction policy",
            )
            .with_vendor("triton")
            .with_model("tokens")
            .with_context("status", "400");
        let e = refine(decoupled);
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.message(), "HTTP 400 Bad Request");
        assert_eq!((e.vendor(), e.model()), (Some("triton"), Some("tokens")));
        assert_eq!(e.context("status"), Some("400"));
        assert!(e.to_string().contains("use infer_stream"), "{e}");

        let raised = Error::new(ErrorKind::InvalidInput, "HTTP 400")
            .with_vendor_message("Failed to process the request(s) for model 'upper'");
        assert_eq!(refine(raised).kind(), ErrorKind::ModelError);
        let bad = Error::new(ErrorKind::InvalidInput, "HTTP 400").with_vendor_message("shape");
        assert_eq!(refine(bad).kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn in_band_words_map_to_kinds() {
        assert_eq!(
            kind_of_message("Request for unknown model: 'nope' is not found"),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind_of_message(
                "inference request to model 'accumulate' must specify a non-zero or non-empty correlation ID"
            ),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind_of_message(
                "Failed to process the request(s) for model 'upper_0_0', message: TritonModelException"
            ),
            ErrorKind::ModelError
        );
        assert_eq!(
            kind_of_message(
                "HTTP end point doesn't support models with decoupled transaction policy"
            ),
            ErrorKind::Unsupported
        );
    }
}
