//! The one public error type of inferlink.
//!
//! Every fallible operation in the library returns [`Error`]. An error has a
//! [`ErrorKind`] that callers match on, a human-readable message, an optional
//! *path* naming where in the input the problem is (for example
//! `services[1].endpoints[0].url`), optional key/value context (store, record,
//! vendor, endpoint, model) and an optional source error.
//!
//! Errors never carry secret values: messages are built from ids, keys and
//! positions, never from credential values.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input (a record, selector, step file, request) is malformed or violates a rule.
    InvalidInput,
    /// The named record, service, model or resource does not exist.
    NotFound,
    /// A selector matched no candidate; the message says which filter removed the last ones.
    NoMatch,
    /// A create-only write found the item already present.
    AlreadyExists,
    /// A compare-and-set write or delete found a different revision than expected.
    Conflict,
    /// The remote side rejected the credentials (or none were given).
    Unauthenticated,
    /// The credentials are valid but not allowed to do this.
    PermissionDenied,
    /// The remote side throttled the request.
    RateLimited,
    /// The remote side or the store is temporarily unavailable.
    Unavailable,
    /// A deadline or timeout expired.
    Timeout,
    /// The remote side answered something that does not follow its protocol.
    Protocol,
    /// The model itself failed while serving the request.
    ModelError,
    /// The operation is not supported by this store, connector, model or server.
    Unsupported,
    /// Configuration is missing or invalid (a bad key, an unusable path).
    Config,
    /// The storage backend failed (I/O, database error, corrupt data).
    Storage,
    /// A bug or an unexpected state inside inferlink.
    Internal,
}

impl ErrorKind {
    /// A short lowercase name of the kind, used in messages and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::NotFound => "not found",
            ErrorKind::NoMatch => "no match",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::ModelError => "model error",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Config => "configuration error",
            ErrorKind::Storage => "storage error",
            ErrorKind::Internal => "internal error",
        }
    }

    /// Whether errors of this kind are worth retrying by default.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Unavailable | ErrorKind::Timeout
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The context key of [`Error::with_vendor`].
const CONTEXT_VENDOR: &str = "vendor";
/// The context key of [`Error::with_endpoint`].
const CONTEXT_ENDPOINT: &str = "endpoint";
/// The context key of [`Error::with_model`].
const CONTEXT_MODEL: &str = "model";
/// The context key of [`Error::with_vendor_message`] (shown apart from the others).
const CONTEXT_VENDOR_MESSAGE: &str = "vendor_message";

/// Longest message kept in an error, in bytes.
const MAX_MESSAGE_LEN: usize = 2048;
/// Longest path kept in an error, in bytes.
const MAX_PATH_LEN: usize = 512;
/// Longest context value kept in an error, in bytes.
const MAX_CONTEXT_LEN: usize = 256;
/// Longest vendor message kept in an error, in bytes.
const MAX_VENDOR_MESSAGE_LEN: usize = 1024;

/// Makes text safe to show: control characters become `\u{..}` escapes, and
/// text longer than `max` bytes is cut on a character boundary with a note of
/// its full length.
pub fn printable(text: String, max: usize) -> String {
    if text.len() <= max && !text.chars().any(char::is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len().min(max) + 32);
    for c in text.chars() {
        if out.len() >= max {
            out.push_str(&format!("… ({} bytes in all)", text.len()));
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The error type of every inferlink operation.
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<String>,
    context: Vec<(&'static str, String)>,
    retryable: Option<bool>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The result type used throughout inferlink.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message.
    ///
    /// Control characters are escaped and very long messages shortened, so an
    /// error quoting hostile input stays one readable, bounded line.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: printable(message.into(), MAX_MESSAGE_LEN),
            path: None,
            context: Vec::new(),
            retryable: None,
            source: None,
        }
    }

    /// An [`ErrorKind::InvalidInput`] error located at `path` in the input.
    pub fn invalid_at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message).with_path(path)
    }

    /// An [`ErrorKind::InvalidInput`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// An [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// An [`ErrorKind::Storage`] error wrapping a backend error.
    pub fn storage(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::new(ErrorKind::Storage, message).with_source(source)
    }

    /// The same error under another kind, keeping its message, path,
    /// context (vendor, endpoint, model, attempts, gRPC status, vendor
    /// message …) and source. Retryability follows the new kind unless it
    /// was set explicitly. For a connector that knows better than the
    /// transport what a status means (a 500 that is really bad input).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// A copy with the same kind, message and path, without context or
    /// source (for an error kept once and returned to several callers).
    pub fn detached_copy(&self) -> Error {
        let mut copy = Error::new(self.kind(), self.message());
        if let Some(path) = self.path() {
            copy = copy.with_path(path);
        }
        copy
    }

    /// Sets (or prefixes) the input path this error refers to.
    ///
    /// Calling it again nests: `with_path("services[0]")` on an error at
    /// `url` gives `services[0].url`.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let outer = printable(path.into(), MAX_PATH_LEN);
        self.path = Some(match self.path.take() {
            None => outer,
            Some(inner) if inner.starts_with('[') => format!("{outer}{inner}"),
            Some(inner) => format!("{outer}.{inner}"),
        });
        self
    }

    /// Adds a key/value pair of context (store, record, vendor, endpoint, model …).
    ///
    /// Never pass a secret value here.
    pub fn with_context(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.context
            .push((key, printable(value.into(), MAX_CONTEXT_LEN)));
        self
    }

    /// Adds a context entry unless one with this key is present already:
    /// the layer closest to the failure knows best.
    fn with_context_once(self, key: &'static str, value: impl FnOnce() -> String) -> Self {
        if self.context(key).is_some() {
            self
        } else {
            self.with_context(key, value())
        }
    }

    /// Names the vendor or platform that failed (`"triton"`, `"sagemaker"` …).
    ///
    /// Keeps a vendor set earlier, so a connector can tag every error on its
    /// way out without overwriting what an inner layer said.
    pub fn with_vendor(self, vendor: impl Into<String>) -> Self {
        self.with_context_once(CONTEXT_VENDOR, || vendor.into())
    }

    /// Names the endpoint that failed (a URL without user info, or `host:port`).
    ///
    /// Keeps an endpoint set earlier (see [`Error::with_vendor`]). Never pass
    /// a URL that carries credentials.
    pub fn with_endpoint(self, endpoint: impl Into<String>) -> Self {
        self.with_context_once(CONTEXT_ENDPOINT, || endpoint.into())
    }

    /// Names the model the failed call was for (`name` or `name@version`).
    ///
    /// Keeps a model set earlier (see [`Error::with_vendor`]).
    pub fn with_model(self, model: impl fmt::Display) -> Self {
        self.with_context_once(CONTEXT_MODEL, || model.to_string())
    }

    /// Keeps the remote side's own error text (e.g. Triton's
    /// `Request for unknown model: 'nope' is not found`) next to the message.
    ///
    /// The text is escaped and capped like the message; an empty text is
    /// ignored and a second call replaces the first. Never pass request
    /// headers or anything else that may echo credentials.
    pub fn with_vendor_message(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        let text = text.trim();
        if !text.is_empty() {
            let text = printable(text.to_owned(), MAX_VENDOR_MESSAGE_LEN);
            self.context.retain(|(k, _)| *k != CONTEXT_VENDOR_MESSAGE);
            self.context.push((CONTEXT_VENDOR_MESSAGE, text));
        }
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Overrides whether this particular error is retryable.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without path or context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the input the problem is, for input errors (e.g. `services[1].endpoints[0].url`).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The value of a context entry, if present.
    pub fn context(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The vendor context entry (see [`Error::with_vendor`]).
    pub fn vendor(&self) -> Option<&str> {
        self.context(CONTEXT_VENDOR)
    }

    /// The endpoint context entry (see [`Error::with_endpoint`]).
    pub fn endpoint(&self) -> Option<&str> {
        self.context(CONTEXT_ENDPOINT)
    }

    /// The model context entry (see [`Error::with_model`]).
    pub fn model(&self) -> Option<&str> {
        self.context(CONTEXT_MODEL)
    }

    /// The remote side's own error text, when kept (see [`Error::with_vendor_message`]).
    pub fn vendor_message(&self) -> Option<&str> {
        self.context(CONTEXT_VENDOR_MESSAGE)
    }

    /// Whether retrying the same operation may succeed.
    ///
    /// This says the *condition* may pass (throttling, an unavailable or slow
    /// server). Whether resending a request that may have reached the server
    /// is *safe* is a separate question: see [`crate::InferRequest::idempotent`]
    /// and `docs/errors.md`.
    pub fn is_retryable(&self) -> bool {
        self.retryable.unwrap_or_else(|| self.kind.is_retryable())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(text) = self.vendor_message() {
            write!(f, "; the server said: {text}")?;
        }
        let mut context = self
            .context
            .iter()
            .filter(|(k, _)| *k != CONTEXT_VENDOR_MESSAGE)
            .peekable();
        if context.peek().is_some() {
            f.write_str(" (")?;
            for (i, (k, v)) in context.enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}: {v}")?;
            }
            f.write_str(")")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(path) = &self.path {
            d.field("path", path);
        }
        if !self.context.is_empty() {
            d.field("context", &self.context);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_outward() {
        let e = Error::invalid_at("url", "not absolute")
            .with_path("endpoints[0]")
            .with_path("services[1]");
        assert_eq!(e.path(), Some("services[1].endpoints[0].url"));
        assert_eq!(e.to_string(), "services[1].endpoints[0].url: not absolute");
    }

    #[test]
    fn index_paths_join_without_dot() {
        let e = Error::invalid_at("[2]", "bad").with_path("projects");
        assert_eq!(e.path(), Some("projects[2]"));
    }

    #[test]
    fn retryability_follows_kind_unless_overridden() {
        assert!(Error::new(ErrorKind::Unavailable, "x").is_retryable());
        assert!(!Error::new(ErrorKind::Conflict, "x").is_retryable());
        assert!(
            Error::new(ErrorKind::Storage, "busy")
                .with_retryable(true)
                .is_retryable()
        );
    }

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        let e = Error::invalid_at("key\u{1b}[2J", "bad \u{7}value\nhere");
        assert_eq!(e.path(), Some("key\\u{1b}[2J"));
        assert_eq!(e.message(), "bad \\u{7}value\\u{a}here");
        let long = Error::invalid("x".repeat(10_000_000));
        assert!(long.message().len() < MAX_MESSAGE_LEN + 64);
        assert!(long.message().ends_with("(10000000 bytes in all)"));
    }

    #[test]
    fn connector_context_keeps_the_innermost_value() {
        let e = Error::new(ErrorKind::NotFound, "model not found")
            .with_vendor_message("  Request for unknown model: 'nope' is not found\n")
            .with_model("nope")
            .with_endpoint("http://127.0.0.1:8000/v2/models/nope/infer")
            .with_vendor("triton")
            // An outer layer tags again: the inner values stay.
            .with_endpoint("http://127.0.0.1:8000")
            .with_model("other")
            .with_vendor("oip");
        assert_eq!(e.vendor(), Some("triton"));
        assert_eq!(
            e.endpoint(),
            Some("http://127.0.0.1:8000/v2/models/nope/infer")
        );
        assert_eq!(e.model(), Some("nope"));
        assert_eq!(
            e.vendor_message(),
            Some("Request for unknown model: 'nope' is not found")
        );
        assert_eq!(
            e.to_string(),
            "model not found; the server said: Request for unknown model: 'nope' is not found \
             (model: nope, endpoint: http://127.0.0.1:8000/v2/models/nope/infer, vendor: triton)"
        );
        assert!(format!("{e:?}").contains("vendor_message"));
        // Empty vendor text is ignored; hostile text is escaped and capped.
        let e = Error::new(ErrorKind::ModelError, "failed").with_vendor_message("   ");
        assert_eq!(e.vendor_message(), None);
        let e = Error::new(ErrorKind::ModelError, "failed")
            .with_vendor_message(format!("\u{1b}[2J{}", "t".repeat(100_000)));
        let text = e.vendor_message().unwrap();
        assert!(text.starts_with("\\u{1b}[2J"), "{text}");
        assert!(text.len() < MAX_VENDOR_MESSAGE_LEN + 64, "{}", text.len());
    }

    #[test]
    fn context_is_displayed() {
        let e = Error::not_found("record \"a\" not found").with_context("store", "memory");
        assert_eq!(e.to_string(), "record \"a\" not found (store: memory)");
        assert_eq!(e.context("store"), Some("memory"));
    }
}
