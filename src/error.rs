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

/// Longest message kept in an error, in bytes.
const MAX_MESSAGE_LEN: usize = 2048;
/// Longest path kept in an error, in bytes.
const MAX_PATH_LEN: usize = 512;
/// Longest context value kept in an error, in bytes.
const MAX_CONTEXT_LEN: usize = 256;

/// Makes text safe to show: control characters become `\u{..}` escapes, and
/// text longer than `max` bytes is cut on a character boundary with a note of
/// its full length.
pub(crate) fn printable(text: String, max: usize) -> String {
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

    /// Whether retrying the same operation may succeed.
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
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
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
    fn context_is_displayed() {
        let e = Error::not_found("record \"a\" not found").with_context("store", "memory");
        assert_eq!(e.to_string(), "record \"a\" not found (store: memory)");
        assert_eq!(e.context("store"), Some("memory"));
    }
}
