//! Authentication: static schemes from configuration ([`Auth`]) and a hook
//! for per-request signing ([`RequestSigner`], e.g. AWS SigV4).

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::error::{Error, ErrorKind, Result, printable};
use crate::secret::Secret;

use super::config::{config_error, keys};

/// How requests authenticate. Secret parts never show in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// No authentication header.
    #[default]
    None,
    /// `Authorization: Bearer <token>` (key `auth_bearer_token`).
    Bearer(Secret),
    /// `Authorization: Basic base64(user:password)` (keys `auth_basic_username`, `auth_basic_password`).
    Basic {
        /// The user name (kept secret too: it may come from credentials).
        username: Secret,
        /// The password.
        password: Secret,
    },
    /// A custom header such as `X-Api-Key: <value>` (keys `auth_header_name`, `auth_header_value`).
    Header {
        /// The header name.
        name: String,
        /// The header value.
        value: Secret,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
            Auth::Basic { .. } => f.write_str("Basic(<hidden>)"),
            Auth::Header { name, .. } => write!(f, "Header({name}: <hidden>)"),
        }
    }
}

impl Auth {
    /// The header this scheme sends, marked sensitive (kept out of debug
    /// output by the HTTP stack). A gRPC client sends the same pair as
    /// metadata (lower-case the name).
    pub fn header(&self) -> Result<Option<(HeaderName, HeaderValue)>> {
        let (key, name, value) = match self {
            Auth::None => return Ok(None),
            Auth::Bearer(token) => (
                keys::AUTH_BEARER_TOKEN,
                AUTHORIZATION,
                Secret::new(format!("Bearer {}", token.expose())),
            ),
            Auth::Basic { username, password } => {
                if username.expose().contains(':') {
                    return Err(config_error(
                        keys::AUTH_BASIC_USERNAME,
                        "must not contain ':' (HTTP basic authentication)",
                    ));
                }
                let pair = Secret::new(format!("{}:{}", username.expose(), password.expose()));
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair.expose());
                (
                    keys::AUTH_BASIC_PASSWORD,
                    AUTHORIZATION,
                    Secret::new(format!("Basic {encoded}")),
                )
            }
            Auth::Header { name, value } => {
                let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    config_error(keys::AUTH_HEADER_NAME, "is not a valid HTTP header name")
                })?;
                (keys::AUTH_HEADER_VALUE, header, value.clone())
            }
        };
        check_value(value.expose()).map_err(|why| config_error(key, why))?;
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|_| config_error(key, "is not a valid HTTP header value"))?;
        value.set_sensitive(true);
        Ok(Some((name, value)))
    }

    /// Checks that the header can be built; a transport calls this when it is built.
    pub fn validate(&self) -> Result<()> {
        self.header().map(|_| ())
    }
}

/// Why a header value is unusable, without quoting it.
fn check_value(value: &str) -> std::result::Result<(), &'static str> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("the value contains CR, LF or NUL, which HTTP headers must not carry");
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err("the value contains control characters");
    }
    if !value.is_ascii() {
        return Err("the value contains non-ASCII characters");
    }
    Ok(())
}

/// Checks a header name and value; the reason never quotes the value.
pub(crate) fn check_header(name: &str, value: &str) -> std::result::Result<(), String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!(
            "`{}` is not a valid HTTP header name",
            printable(name.to_owned(), 64)
        )
    })?;
    check_value(value).map_err(str::to_owned)
}

/// A validated header pair for a request; an [`ErrorKind::InvalidInput`]
/// naming the header (never its value) otherwise.
pub(crate) fn header_pair(
    name: &str,
    value: &str,
    sensitive: bool,
) -> Result<(HeaderName, HeaderValue)> {
    let shown = printable(name.to_owned(), 64);
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("`{shown}` is not a valid HTTP header name"),
        )
    })?;
    check_value(value)
        .map_err(|why| Error::new(ErrorKind::InvalidInput, format!("header `{shown}`: {why}")))?;
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("header `{shown}`: not a valid HTTP header value"),
        )
    })?;
    v.set_sensitive(sensitive);
    Ok((header, v))
}

/// The request a [`RequestSigner`] signs: everything but the connection.
#[derive(Debug)]
#[non_exhaustive]
pub struct SigningRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The full URL (scheme, host, port, path, query) the request goes to.
    pub url: &'a Url,
    /// The headers as they will be sent; the signer adds its own (e.g.
    /// `Authorization`, `X-Amz-Date`). Mark secret ones sensitive.
    pub headers: &'a mut HeaderMap,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// Signs each attempt of a request (AWS SigV4 for SageMaker is the intended
/// implementation). Called once per attempt, after every other header is
/// set, so retries carry fresh signatures.
///
/// ```
/// use inferlink_core::transport::{RequestSigner, SigningRequest, HeaderValue};
///
/// #[derive(Debug)]
/// struct Stamp;
///
/// #[async_trait::async_trait]
/// impl RequestSigner for Stamp {
///     async fn sign(&self, request: &mut SigningRequest<'_>) -> inferlink_core::Result<()> {
///         let len = request.body.len().to_string();
///         request.headers.insert("x-signed-length", HeaderValue::from_str(&len).unwrap());
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait RequestSigner: Send + Sync + fmt::Debug {
    /// Adds the signature headers to `request`. An error fails the call
    /// without sending (and without retrying).
    async fn sign(&self, request: &mut SigningRequest<'_>) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_sensitive_and_debug_hides_secrets() {
        let a = Auth::Bearer(Secret::new("tok-planted"));
        let (name, value) = a.header().unwrap().unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Bearer tok-planted");
        assert!(!format!("{a:?}").contains("planted"));
        assert!(!format!("{value:?}").contains("planted"));

        let b = Auth::Basic {
            username: Secret::new("aladdin"),
            password: Secret::new("opensesame"),
        };
        let (_, value) = b.header().unwrap().unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
        assert!(!format!("{b:?}").contains("opensesame"));
    }

    #[test]
    fn bad_request_headers_name_the_header_not_the_value() {
        let e = header_pair("X-Trace", "abc\r\nSet-Cookie: planted", false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("X-Trace"));
        assert!(!e.to_string().contains("planted"));
        let e = header_pair("Bad Name\n", "v", false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(header_pair("X-Null", "a\0b", false).is_err());
    }
}
