//! MLflow's error envelope, `{"error_code", "message", "stack_trace"?}`,
//! mapped to error kinds through the transport's classifier hook.
//!
//! | answer | kind |
//! |---|---|
//! | 400 `BAD_REQUEST` with a `stack_trace` (the model raised) | `ModelError` |
//! | the same, message `Failed to parse input …` (a CSV body that does not parse) | `InvalidInput` |
//! | 400 `BAD_REQUEST` / `INVALID_PARAMETER_VALUE` without a stack trace | `InvalidInput` |
//! | 415 (content type refused), other statuses | the transport's table (415 `InvalidInput`, 404 `NotFound`, 500 `ModelError`, 503 `Unavailable`, …) |
//!
//! The envelope's `message` becomes the error's vendor message; for a model
//! that raised, the last line of the stack trace (the model's own text, e.g.
//! `ValueError: asked to fail: boom`) is added to it, bounded. The rest of
//! the trace (server file paths) is never kept.

use inferlink_core::error::printable;
use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink_core::{Error, ErrorKind};
use serde::Deserialize;

/// Longest piece of a stack trace kept (its last line), in bytes.
const MAX_TRACE_LINE: usize = 300;

/// The error body of the scoring server.
#[derive(Deserialize)]
struct Envelope {
    error_code: String,
    message: String,
    stack_trace: Option<String>,
}

/// The envelope's message, and the model's own text when the model raised
/// (the trace's last line); `None` for a body that is not the envelope.
fn parse(body: &[u8]) -> Option<(String, Option<String>)> {
    let e: Envelope = serde_json::from_slice(body).ok()?;
    let input = e.error_code != "BAD_REQUEST" || e.message.starts_with("Failed to parse input");
    let trace = e.stack_trace.filter(|_| !input).unwrap_or_default();
    let last = trace.lines().map(str::trim).rfind(|l| !l.is_empty());
    Some((
        e.message,
        last.map(|l| printable(l.to_owned(), MAX_TRACE_LINE)),
    ))
}

/// The transport classifier of the scoring server's error answers (module table).
#[derive(Debug)]
pub struct MlflowClassifier;

impl ResponseClassifier for MlflowClassifier {
    fn classify(&self, response: &ErrorResponse<'_>) -> Option<ErrorClass> {
        let raised = response.status == 400 && parse(response.body)?.1.is_some();
        raised.then(|| ErrorClass::fatal(ErrorKind::ModelError))
    }

    fn annotate(&self, response: &ErrorResponse<'_>, error: Error) -> Error {
        match parse(response.body) {
            Some((message, Some(raised))) => {
                error.with_vendor_message(format!("{message} (the model raised: {raised})"))
            }
            Some((message, None)) => error.with_vendor_message(message),
            None => error,
        }
    }
}
