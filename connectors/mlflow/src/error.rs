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

use std::sync::Arc;

use inferlink_core::error::printable;
use inferlink_core::transport::{ErrorClass, ErrorResponse, ResponseClassifier};
use inferlink_core::{Error, ErrorKind};
use serde::Deserialize;

/// Longest piece of a stack trace kept (its last line), in bytes.
const MAX_TRACE_LINE: usize = 300;

/// The error body of the scoring server.
#[derive(Debug, Deserialize)]
struct Envelope {
    error_code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    stack_trace: Option<String>,
}

impl Envelope {
    fn parse(body: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(body).ok()
    }

    /// The model's own text when the model raised: the trace's last line.
    fn raised(&self) -> Option<&str> {
        if self.error_code != "BAD_REQUEST" || self.message.starts_with("Failed to parse input") {
            return None;
        }
        let trace = self.stack_trace.as_deref()?;
        trace.lines().map(str::trim).rfind(|l| !l.is_empty())
    }
}

/// The classifier of the scoring server's error answers (module table).
#[derive(Debug)]
struct MlflowClassifier;

impl ResponseClassifier for MlflowClassifier {
    fn classify(&self, response: &ErrorResponse<'_>) -> Option<ErrorClass> {
        let raised = response.status == 400 && Envelope::parse(response.body)?.raised().is_some();
        raised.then(|| ErrorClass::fatal(ErrorKind::ModelError))
    }

    fn annotate(&self, response: &ErrorResponse<'_>, error: Error) -> Error {
        let Some(envelope) = Envelope::parse(response.body) else {
            return error;
        };
        let text = match envelope.raised() {
            Some(line) => format!(
                "{} (the model raised: {})",
                envelope.message,
                printable(line.to_owned(), MAX_TRACE_LINE)
            ),
            None => envelope.message.clone(),
        };
        error.with_vendor_message(text)
    }
}

/// The transport classifier for MLflow's scoring server.
pub fn classifier() -> Arc<dyn ResponseClassifier> {
    Arc::new(MlflowClassifier)
}
