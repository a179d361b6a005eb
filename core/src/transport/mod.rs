//! The shared HTTP transport under every inference connector (feature `http`).
//!
//! A connector builds one [`HttpTransport`] from its [`Resolution`] and sends
//! every request through [`HttpTransport::send`]. The transport owns what
//! every connector needs and none should rewrite:
//!
//! * **timeouts** with units in their names: connect, per attempt, and an
//!   overall deadline that covers every attempt and wait;
//! * **one retry loop** ([`retry::run`]): 429/503 (and connection failures
//!   before anything was sent) are retried for every request; 502/504,
//!   resets and attempt timeouts only for [`Idempotency::Safe`] requests;
//!   full-jitter exponential backoff; `Retry-After` honoured (seconds or an
//!   HTTP date) but never past the deadline;
//! * **errors** in the crate's one [`Error`] type: status → [`ErrorKind`]
//!   ([`ErrorClass::for_status`]), the vendor's own message from any known
//!   error envelope ([`VendorMessage`]), and context `vendor`, `endpoint`
//!   (no user info, no query), `model`, `status`, `attempts`; a connector
//!   refines the mapping with a [`ResponseClassifier`];
//! * **TLS** from configuration (custom CA, client certificate for mutual
//!   TLS, explicit opt-in to skip verification), **auth** (bearer, basic,
//!   custom header, or a per-attempt [`RequestSigner`] such as SigV4),
//!   a **response size limit** enforced while reading, **gzip**, checked
//!   headers, an optional [`EndpointPolicy`], and `tracing` spans
//!   (`inferlink.http` per call with vendor/endpoint/model/method,
//!   `inferlink.attempt` per attempt) that never carry secrets.
//!
//! Redirects are not followed and environment proxy variables are not read:
//! the request goes to the registered endpoint or fails.
//!
//! ```no_run
//! use inferlink_core::transport::{HttpTransport, RequestSpec};
//!
//! # async fn demo(target: &inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let transport = HttpTransport::from_target(target)?;
//! let ready = transport.send(RequestSpec::get("v2/health/ready")).await?;
//! assert!(ready.status().is_success());
//! let reply = transport
//!     .send(
//!         RequestSpec::segments(inferlink_core::transport::Method::POST, &["v2", "models", "m", "infer"])
//!             .json_body(&serde_json::json!({"inputs": []}))
//!             .model("m"),
//!     )
//!     .await?;
//! let value: serde_json::Value = reply.json()?;
//! # let _ = value; Ok(()) }
//! ```
//!
//! **gRPC.** The settings are protocol-neutral: with the `grpc` feature,
//! `GrpcTransport` (module `grpc`) builds a tonic channel from the same
//! [`TransportConfig`] — connect timeout, per-attempt timeout and deadline
//! through [`retry::run`], TLS, [`Auth::header`] and static headers as
//! metadata, the [`EndpointPolicy`] before connecting.
//!
//! Configuration keys, defaults and units: [`config::keys`] and `docs/transport.md`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument as _;

use crate::error::{Error, ErrorKind, Result, printable};
use crate::secret::Secret;
use crate::target::ConnectTarget;

mod auth;
mod classify;
pub mod config;
#[cfg(feature = "grpc")]
pub mod grpc;
mod policy;
pub mod retry;
#[cfg(feature = "sigv4")]
pub mod sigv4;
mod tls;

pub use auth::{Auth, RequestSigner, SigningRequest};
pub use classify::{ErrorClass, ErrorResponse, ResponseClassifier, VendorMessage};
pub use config::{PoolConfig, RetryPolicy, StaticHeader, TransportConfig};
#[cfg(feature = "grpc")]
pub use grpc::{GrpcClassifier, GrpcTransport, GrpcTransportBuilder};
pub use policy::{EndpointPolicy, HostTransportSettings};
pub use retry::{AttemptError, Attempted, CallLimits, Idempotency, RetryRule};
pub use tls::{PEM_FILE_MAX_BYTES, TlsConfig};

pub use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
pub use reqwest::{Method, StatusCode, Url};

/// At most this many bytes of an error response are read (for its message).
const ERROR_BODY_MAX: usize = 64 * 1024;

/// The `User-Agent` sent unless a `header_User-Agent` key overrides it.
const USER_AGENT: &str = concat!("inferlink/", env!("CARGO_PKG_VERSION"));

/// Walks an error's sources, looking inside `std::io::Error` wrappers too.
pub(crate) fn error_chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| {
        let e: &'a (dyn StdError + 'static) = *e;
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            return Some(inner as &(dyn StdError + 'static));
        }
        e.source()
    })
    .take(32)
}

/// A URL fit for logs and errors: no user info, no query, no fragment.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    text
}

/// The vendor/endpoint/model a call's errors are tagged with.
#[derive(Debug, Clone)]
struct CallContext {
    vendor: Arc<str>,
    endpoint: String,
    model: Option<String>,
}

impl CallContext {
    fn decorate(&self, error: Error) -> Error {
        let mut error = error
            .with_context("vendor", self.vendor.to_string())
            .with_context("endpoint", self.endpoint.clone());
        if let Some(model) = &self.model {
            error = error.with_context("model", model.clone());
        }
        error
    }
}

/// What one call asks for: method, path under the endpoint, headers, body,
/// and how it may be retried.
///
/// Builder methods never fail; a bad header or path is reported by
/// [`HttpTransport::send`] as [`ErrorKind::InvalidInput`] before anything is
/// sent. `Debug` shows header names and the body length only.
#[derive(Clone)]
pub struct RequestSpec {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    /// Parts sent after `body`, without joining them (see [`RequestSpec::body_parts`]).
    more_body: Vec<Bytes>,
    idempotency: Idempotency,
    model: Option<String>,
    deadline: Option<Duration>,
    timeout: Option<Duration>,
    max_attempts: Option<u32>,
    any_status: bool,
    invalid: Option<Arc<Error>>,
}

impl fmt::Debug for RequestSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSpec")
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "query_keys",
                &self.query.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body_len())
            .field("idempotency", &self.idempotency)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl RequestSpec {
    /// A request for `path`, relative to the endpoint URL (a leading `/` is
    /// ignored: `v2/models` and `/v2/models` both go under the endpoint's
    /// path). `path` must already be percent-encoded; use
    /// [`RequestSpec::segments`] to build it from raw names. Idempotency
    /// follows the method ([`Idempotency::for_method`]).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        RequestSpec {
            idempotency: Idempotency::for_method(&method),
            method,
            path: path.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            more_body: Vec::new(),
            model: None,
            deadline: None,
            timeout: None,
            max_attempts: None,
            any_status: false,
            invalid: None,
        }
    }

    /// A request whose path is `segments`, each percent-encoded (so a model
    /// name with `/`, `?` or spaces stays one segment). `.` and `..` and
    /// empty segments are refused.
    pub fn segments(method: Method, segments: &[&str]) -> Self {
        let mut scratch = Url::parse("http://segments.invalid/").expect("static URL");
        let mut bad = None;
        if let Ok(mut path) = scratch.path_segments_mut() {
            path.pop_if_empty();
            for (i, s) in segments.iter().enumerate() {
                if s.is_empty() || *s == "." || *s == ".." {
                    bad = Some(i);
                    break;
                }
                path.push(s);
            }
        }
        let mut spec = RequestSpec::new(method, scratch.path().trim_start_matches('/'));
        if let Some(i) = bad {
            spec.invalid = Some(Arc::new(Error::invalid_at(
                format!("path[{i}]"),
                "a path segment must not be empty, `.` or `..`",
            )));
        }
        spec
    }

    /// A GET request (safe to retry).
    pub fn get(path: impl Into<String>) -> Self {
        RequestSpec::new(Method::GET, path)
    }

    /// A POST request with a body (retried only when it provably did not
    /// reach the server, unless marked [`RequestSpec::idempotent`]).
    pub fn post(path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        RequestSpec::new(Method::POST, path).body(body)
    }

    fn fail(mut self, error: Error) -> Self {
        if self.invalid.is_none() {
            self.invalid = Some(Arc::new(error));
        }
        self
    }

    /// Adds a query parameter (encoded when sent).
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a header. CR, LF, NUL, other control characters or non-ASCII in
    /// the value, or an invalid name, fail the call with
    /// [`ErrorKind::InvalidInput`] naming the header (never quoting the value).
    pub fn header(self, name: &str, value: &str) -> Self {
        self.add_header(name, value, false)
    }

    /// Adds a header whose value is secret: sent marked sensitive, never shown.
    pub fn secret_header(self, name: &str, value: &Secret) -> Self {
        self.add_header(name, value.expose(), true)
    }

    fn add_header(mut self, name: &str, value: &str, sensitive: bool) -> Self {
        match auth::header_pair(name, value, sensitive) {
            Ok((n, v)) => {
                self.headers.append(n, v);
                self
            }
            Err(e) => self.fail(e),
        }
    }

    /// Sets the `Content-Type` header.
    pub fn content_type(self, value: &str) -> Self {
        self.header(header::CONTENT_TYPE.as_str(), value)
    }

    /// Sets the body (shared, not copied).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.more_body.clear();
        self
    }

    /// Sets a body made of parts sent back to back, never joined into one
    /// buffer (e.g. a JSON header followed by large binary tensors). The
    /// `Content-Length` is their total. A [`RequestSigner`] sees the parts
    /// joined, since signatures cover the whole body.
    pub fn body_parts(mut self, parts: impl IntoIterator<Item = Bytes>) -> Self {
        let mut parts = parts.into_iter().filter(|p| !p.is_empty());
        self.body = parts.next().unwrap_or_default();
        self.more_body = parts.collect();
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json_body<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => self.body(bytes).content_type("application/json"),
            Err(e) => self.fail(Error::invalid(format!(
                "request body cannot be written as JSON: {e}"
            ))),
        }
    }

    /// Marks the request as safe to repeat (e.g. an inference the caller
    /// knows has no side effects), so every transient failure is retried.
    pub fn idempotent(mut self) -> Self {
        self.idempotency = Idempotency::Safe;
        self
    }

    /// Sets the idempotency explicitly.
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Names the model the call is about (error context and tracing).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Overrides the configured overall deadline for this call.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Overrides the configured per-attempt timeout for this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the configured number of attempts for this call (1 = no retry).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Returns every complete response as an [`HttpResponse`], whatever its
    /// status, without retrying on status (for health probes that read
    /// readiness from the status code). Connection failures still retry.
    pub fn any_status(mut self) -> Self {
        self.any_status = true;
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The (encoded) path relative to the endpoint.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The whole body (parts set with [`RequestSpec::body_parts`] joined; shared, not copied, when there is one).
    pub fn body_bytes(&self) -> Bytes {
        if self.more_body.is_empty() {
            return self.body.clone();
        }
        let mut joined = BytesMut::with_capacity(self.body_len());
        joined.extend_from_slice(&self.body);
        for part in &self.more_body {
            joined.extend_from_slice(part);
        }
        joined.freeze()
    }

    /// The body's length in bytes, all parts included.
    pub fn body_len(&self) -> usize {
        self.body.len() + self.more_body.iter().map(Bytes::len).sum::<usize>()
    }

    /// The idempotency the retry loop will use.
    pub fn idempotency_of(&self) -> Idempotency {
        self.idempotency
    }
}

/// A complete response: status, headers and the whole body.
#[derive(Clone)]
pub struct HttpResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    attempts: u32,
    context: CallContext,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("attempts", &self.attempts)
            .field("endpoint", &self.context.endpoint)
            .finish()
    }
}

impl HttpResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type`, if any (TorchServe and KServe sometimes send none).
    pub fn content_type(&self) -> Option<&str> {
        self.header(header::CONTENT_TYPE.as_str())
    }

    /// The body (decompressed if it was gzip-encoded).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body, without copying.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// How many attempts the call took.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Decodes the body as JSON. A body that is not the expected JSON is an
    /// [`ErrorKind::Protocol`] error whose path names where (e.g.
    /// `outputs[0].data`) and whose message gives line and column.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let mut err = Error::new(
                ErrorKind::Protocol,
                format!("response body is not the expected JSON: {}", e.into_inner()),
            );
            if path != "." && !path.is_empty() {
                err = err.with_path(path);
            }
            self.decorate(err)
        })
    }

    /// The body as UTF-8 text; an [`ErrorKind::Protocol`] error otherwise.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|e| {
            self.decorate(Error::new(
                ErrorKind::Protocol,
                format!("response body is not UTF-8 text ({e})"),
            ))
        })
    }

    /// Tags an error (e.g. from decoding this response) with the call's
    /// vendor, endpoint and model.
    pub fn decorate(&self, error: Error) -> Error {
        self.context.decorate(error)
    }
}

/// A response whose body arrives as a stream ([`HttpTransport::send_streaming`]).
pub struct HttpStream {
    status: StatusCode,
    headers: HeaderMap,
    attempts: u32,
    context: CallContext,
    body: futures_core::stream::BoxStream<'static, Result<Bytes>>,
}

impl fmt::Debug for HttpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStream")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("attempts", &self.attempts)
            .field("endpoint", &self.context.endpoint)
            .finish_non_exhaustive()
    }
}

impl HttpStream {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type`, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.header(header::CONTENT_TYPE.as_str())
    }

    /// How many attempts it took to get the head.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Tags an error (e.g. from decoding a chunk) with the call's vendor,
    /// endpoint and model.
    pub fn decorate(&self, error: Error) -> Error {
        self.context.decorate(error)
    }

    /// The body, chunk by chunk as the server sends it; errors are already
    /// tagged with the call's context.
    pub fn into_body(self) -> futures_core::stream::BoxStream<'static, Result<Bytes>> {
        self.body
    }
}

/// Builds an [`HttpTransport`].
pub struct HttpTransportBuilder {
    base: String,
    vendor: String,
    config: TransportConfig,
    signer: Option<Arc<dyn RequestSigner>>,
    classifier: Option<Arc<dyn ResponseClassifier>>,
}

impl fmt::Debug for HttpTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransportBuilder")
            .field("vendor", &self.vendor)
            .field("config", &self.config)
            .field("signer", &self.signer)
            .field("classifier", &self.classifier.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpTransportBuilder {
    /// A builder for the target's endpoint, vendor = the target's product,
    /// settings = `defaults` overlaid with the target's configuration (pass
    /// the vendor's or host's defaults here; [`TransportConfig::default`]
    /// otherwise).
    pub fn for_target(target: &ConnectTarget, defaults: TransportConfig) -> Result<Self> {
        Ok(HttpTransportBuilder {
            base: target.url.clone(),
            vendor: target.product.clone(),
            config: defaults.apply_target(target)?,
            signer: None,
            classifier: None,
        })
    }

    /// Names the vendor (error context and tracing), e.g. `triton`.
    pub fn vendor(mut self, vendor: impl Into<String>) -> Self {
        self.vendor = vendor.into();
        self
    }

    /// Replaces the settings.
    pub fn config(mut self, config: TransportConfig) -> Self {
        self.config = config;
        self
    }

    /// Signs every attempt (e.g. SigV4).
    pub fn signer(mut self, signer: Arc<dyn RequestSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Refines how error responses are classified.
    pub fn classifier(mut self, classifier: Arc<dyn ResponseClassifier>) -> Self {
        self.classifier = Some(classifier);
        self
    }

    /// Checks everything and builds the client. Errors: [`ErrorKind::Config`]
    /// naming the key for bad settings or endpoint URL;
    /// [`ErrorKind::PermissionDenied`] when the endpoint policy refuses the
    /// endpoint.
    pub fn build(self) -> Result<HttpTransport> {
        let cfg = self.config;
        cfg.validate()?;
        let base = parse_base(&self.base)?;
        if let Some(policy) = &cfg.endpoint_policy {
            policy
                .check_url(&base)
                .map_err(|e| e.with_context("endpoint", redact_url(&base)))?;
        }

        let mut headers = HeaderMap::new();
        for h in &cfg.headers {
            let (name, value) = auth::header_pair(&h.name, h.value.expose(), h.value.is_secret())
                .map_err(|e| {
                config::config_error(
                    &format!("{}{}", config::keys::HEADER_PREFIX, h.name),
                    e.message(),
                )
            })?;
            headers.append(name, value);
        }
        if let Some((name, value)) = cfg.auth.header()? {
            headers.insert(name, value);
        }

        let mut client = reqwest::Client::builder()
            .connect_timeout(cfg.timeout_connect)
            .pool_idle_timeout(cfg.pool.idle_timeout)
            .pool_max_idle_per_host(cfg.pool.max_idle_per_host)
            .gzip(cfg.gzip)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT);
        client = cfg.tls.apply(client)?;
        if let Some(policy) = &cfg.endpoint_policy {
            client =
                client.dns_resolver(Arc::new(policy::PolicyResolver(Arc::new(policy.clone()))));
        }
        let client = client.build().map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot build the HTTP client: {e}"),
            )
        })?;

        let endpoint = redact_url(&base);
        Ok(HttpTransport {
            inner: Arc::new(Inner {
                client,
                in_flight: cfg.pool.max_in_flight.map(|n| Arc::new(Semaphore::new(n))),
                base,
                endpoint,
                vendor: Arc::from(self.vendor.as_str()),
                config: cfg,
                headers,
                signer: self.signer,
                classifier: self.classifier,
            }),
        })
    }
}

fn parse_base(url: &str) -> Result<Url> {
    let bad =
        |why: &str| Error::new(ErrorKind::Config, format!("endpoint URL: {why}")).with_path("url");
    let mut base = Url::parse(url.trim()).map_err(|e| bad(&format!("not a valid URL ({e})")))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(bad(
            "credentials in the URL are not allowed; use the auth_* keys",
        ));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(bad(
            "a query or fragment is not allowed in the endpoint URL",
        ));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

struct Inner {
    client: reqwest::Client,
    base: Url,
    endpoint: String,
    vendor: Arc<str>,
    config: TransportConfig,
    headers: HeaderMap,
    signer: Option<Arc<dyn RequestSigner>>,
    classifier: Option<Arc<dyn ResponseClassifier>>,
    in_flight: Option<Arc<Semaphore>>,
}

/// The HTTP client every connector sends through. Cheap to clone (one
/// shared connection pool); see the [module docs](self).
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("vendor", &self.inner.vendor)
            .field("endpoint", &self.inner.endpoint)
            .field("config", &self.inner.config)
            .field("signer", &self.inner.signer)
            .field("classifier", &self.inner.classifier.is_some())
            .finish()
    }
}

/// What one attempt produced.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// A response head, its body not read yet.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    response: reqwest::Response,
    permit: Option<OwnedSemaphorePermit>,
}

/// What [`HttpTransport::prepare`] sets up for one call.
struct Prepared {
    context: CallContext,
    url: Url,
    limits: CallLimits,
    span: tracing::Span,
}

impl HttpTransport {
    /// A builder for an endpoint URL (the base every request path is joined to).
    pub fn builder(base_url: impl Into<String>) -> HttpTransportBuilder {
        HttpTransportBuilder {
            base: base_url.into(),
            vendor: "http".to_owned(),
            config: TransportConfig::default(),
            signer: None,
            classifier: None,
        }
    }

    /// A transport for a target with default settings overlaid by its
    /// configuration; see [`HttpTransportBuilder::for_target`] to add
    /// vendor defaults, a signer or a classifier.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        HttpTransportBuilder::for_target(target, TransportConfig::default())?.build()
    }

    /// The endpoint URL requests are joined to (always ending in `/`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The vendor name used in errors and traces.
    pub fn vendor(&self) -> &str {
        &self.inner.vendor
    }

    /// The settings.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    /// The URL a request for `spec` goes to; [`ErrorKind::InvalidInput`] if
    /// its path is malformed or would leave the endpoint's base path.
    pub fn url_for(&self, spec: &RequestSpec) -> Result<Url> {
        let rel = spec.path.trim_start_matches('/');
        if rel
            .chars()
            .any(|c| c.is_control() || c == '\\' || c == '#' || c == '?' || c == ' ')
        {
            return Err(Error::invalid_at(
                "path",
                "the request path must be percent-encoded and carry no query or fragment \
                 (use RequestSpec::query)",
            ));
        }
        let dot_segment = rel.split('/').any(|seg| {
            let seg = seg.to_ascii_lowercase().replace("%2e", ".");
            seg == "." || seg == ".."
        });
        if dot_segment {
            return Err(Error::invalid_at(
                "path",
                "the request path must not contain `.` or `..` segments",
            ));
        }
        let base = &self.inner.base;
        let mut url = Url::parse(&format!("{}{rel}", base.as_str()))
            .map_err(|e| Error::invalid_at("path", format!("not a valid URL path ({e})")))?;
        if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
            return Err(Error::invalid_at(
                "path",
                "the request path leaves the endpoint's base path",
            ));
        }
        if !spec.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&spec.query);
        }
        Ok(url)
    }

    /// Sends a request through the retry loop and returns the complete
    /// response; a non-success status is an error unless
    /// [`RequestSpec::any_status`] was set.
    pub async fn send(&self, spec: RequestSpec) -> Result<HttpResponse> {
        let call = self.prepare(&spec)?;
        let outcome = retry::run(
            &self.inner.config.retry,
            call.limits,
            spec.idempotency,
            |_| self.attempt(&spec, &call.url),
        )
        .instrument(call.span.clone())
        .await;
        match outcome {
            Ok(done) => {
                call.span.record("attempts", done.attempts);
                call.span.record("status", done.value.status.as_u16());
                Ok(HttpResponse {
                    status: done.value.status,
                    headers: done.value.headers,
                    body: done.value.body,
                    attempts: done.attempts,
                    context: call.context,
                })
            }
            Err(e) => Err(call.context.decorate(e)),
        }
    }

    /// Sends a request and returns as soon as the response head arrives, with
    /// the body as a stream of chunks (chunked HTTP, server-sent events).
    ///
    /// Retries follow the same rules as [`HttpTransport::send`] but happen
    /// only before the head: once the stream is handed out nothing is sent
    /// again. The per-attempt timeout and the deadline cover the head; after
    /// that each chunk must arrive within `timeout_request` of the previous
    /// one, or the stream yields an [`ErrorKind::Timeout`] error and ends.
    /// The response size limit does not apply to a stream (the consumer sees
    /// each chunk as it comes). A request slot (`pool_max_in_flight`) is held
    /// until the stream is dropped.
    pub async fn send_streaming(&self, spec: RequestSpec) -> Result<HttpStream> {
        let call = self.prepare(&spec)?;
        let outcome = retry::run(
            &self.inner.config.retry,
            call.limits,
            spec.idempotency,
            |_| self.attempt_head(&spec, &call.url),
        )
        .instrument(call.span.clone())
        .await;
        let done = outcome.map_err(|e| call.context.decorate(e))?;
        call.span.record("attempts", done.attempts);
        call.span.record("status", done.value.status.as_u16());
        let Head {
            status,
            headers,
            response,
            permit,
        } = done.value;
        let body = body_stream(
            response,
            permit,
            self.inner.config.timeout_request,
            call.context.clone(),
        );
        Ok(HttpStream {
            status,
            headers,
            attempts: done.attempts,
            context: call.context,
            body,
        })
    }

    /// Checks a request and sets up what every call needs: its context for
    /// errors, the URL, the limits and the tracing span.
    fn prepare(&self, spec: &RequestSpec) -> Result<Prepared> {
        let mut context = CallContext {
            vendor: Arc::clone(&self.inner.vendor),
            endpoint: self.inner.endpoint.clone(),
            model: spec.model.clone(),
        };
        if let Some(invalid) = &spec.invalid {
            return Err(context.decorate(invalid.detached_copy()));
        }
        let url = self.url_for(spec).map_err(|e| context.decorate(e))?;
        context.endpoint = redact_url(&url);
        if let Some(policy) = &self.inner.config.endpoint_policy {
            policy.check_url(&url).map_err(|e| context.decorate(e))?;
        }
        let cfg = &self.inner.config;
        let limits = CallLimits {
            deadline: spec.deadline.unwrap_or(cfg.deadline),
            attempt_timeout: spec.timeout.unwrap_or(cfg.timeout_request),
            max_attempts: spec.max_attempts.unwrap_or(cfg.retry.max_attempts),
        };
        let span = tracing::debug_span!(
            "inferlink.http",
            vendor = %context.vendor,
            endpoint = %context.endpoint,
            model = %context.model.as_deref().unwrap_or(""),
            method = %spec.method,
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        Ok(Prepared {
            context,
            url,
            limits,
            span,
        })
    }

    async fn attempt(
        &self,
        spec: &RequestSpec,
        url: &Url,
    ) -> std::result::Result<Reply, AttemptError> {
        let head = self.attempt_head(spec, url).await?;
        let body = read_limited(head.response, self.inner.config.response_max_bytes).await?;
        Ok(Reply {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// One attempt up to a successful response head (or any head, with
    /// [`RequestSpec::any_status`]); an error status becomes the attempt's error.
    async fn attempt_head(
        &self,
        spec: &RequestSpec,
        url: &Url,
    ) -> std::result::Result<Head, AttemptError> {
        let permit = match &self.inner.in_flight {
            Some(slots) => Some(Arc::clone(slots).acquire_owned().await.map_err(|_| {
                AttemptError::fatal(Error::new(ErrorKind::Internal, "request slots closed"))
            })?),
            None => None,
        };
        let mut headers = self.inner.headers.clone();
        for name in spec.headers.keys() {
            headers.remove(name);
        }
        for (name, value) in &spec.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(signer) = &self.inner.signer {
            let joined;
            let body: &[u8] = if spec.more_body.is_empty() {
                &spec.body
            } else {
                joined = spec.body_bytes();
                &joined
            };
            let mut request = SigningRequest {
                method: &spec.method,
                url,
                headers: &mut headers,
                body,
            };
            signer
                .sign(&mut request)
                .await
                .map_err(AttemptError::fatal)?;
        }
        let mut request = self
            .inner
            .client
            .request(spec.method.clone(), url.clone())
            .headers(headers);
        if !spec.more_body.is_empty() {
            request = request.body(reqwest::Body::wrap(PartsBody::new(spec)));
        } else if !spec.body.is_empty() || !matches!(spec.method, Method::GET | Method::HEAD) {
            request = request.body(spec.body.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| send_error(e, url, &self.inner.config))?;
        let status = response.status();
        tracing::debug!(status = status.as_u16(), "response");
        if status.is_success() || spec.any_status {
            return Ok(Head {
                status,
                headers: response.headers().clone(),
                response,
                permit,
            });
        }
        Err(self.status_error(response).await)
    }

    async fn status_error(&self, mut response: reqwest::Response) -> AttemptError {
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = BytesMut::new();
        while body.len() < ERROR_BODY_MAX {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = ERROR_BODY_MAX - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                _ => break,
            }
        }
        let vendor = VendorMessage::parse(&headers, &body);
        let seen = ErrorResponse {
            status,
            headers: &headers,
            body: &body,
            vendor: vendor.as_ref(),
        };
        let class = self
            .inner
            .classifier
            .as_ref()
            .and_then(|c| c.classify(&seen))
            .unwrap_or_else(|| ErrorClass::for_status(status));
        let mut message = format!("HTTP {status}");
        if status.is_redirection() {
            let target = headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| self.inner.base.join(l).ok())
                .map_or_else(|| "another URL".to_owned(), |u| redact_url(&u));
            message.push_str(&format!(
                ": the endpoint redirects to {target}; redirects are not followed, register the \
                 final URL"
            ));
        } else if let Some(v) = &vendor {
            message.push_str(&format!(": {v}"));
        }
        let mut error = Error::new(class.kind, message)
            .with_context("status", status.as_u16().to_string())
            .with_retryable(class.retry != RetryRule::Never);
        if let Some(code) = vendor.as_ref().and_then(|v| v.code.clone()) {
            error = error.with_context("vendor_code", code);
        }
        if let Some(classifier) = &self.inner.classifier {
            error = classifier.annotate(&seen, error);
        }
        let retry_after = (class.retry != RetryRule::Never)
            .then(|| headers.get(header::RETRY_AFTER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        AttemptError {
            error,
            retry: class.retry,
            retry_after,
        }
    }
}

fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let last = error_chain(err).last().unwrap_or(err);
    printable(last.to_string(), 256)
}

fn send_error(err: reqwest::Error, url: &Url, cfg: &TransportConfig) -> AttemptError {
    let err = err.without_url();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("?")),
        None => url.host_str().unwrap_or("?").to_owned(),
    };
    if let Some(denied) = error_chain(&err).find_map(|e| e.downcast_ref::<policy::PolicyDenied>()) {
        return AttemptError::fatal(Error::new(ErrorKind::PermissionDenied, denied.to_string()));
    }
    if let Some(tls) = tls::classify_tls(&err, &host) {
        return AttemptError::fatal(tls.with_source(err));
    }
    let cause = root_cause(&err);
    if err.is_connect() {
        let error = if err.is_timeout() || cause.contains("timed out") {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "connecting to {host} timed out after {} ms",
                    cfg.timeout_connect.as_millis()
                ),
            )
        } else {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot connect to {host}: {cause}"),
            )
        };
        // Nothing was sent: every request may be retried.
        return AttemptError::new(error.with_source(err), RetryRule::Always);
    }
    AttemptError::new(
        Error::new(
            ErrorKind::Unavailable,
            format!("the connection to {host} failed before a response arrived: {cause}"),
        )
        .with_source(err),
        RetryRule::IfIdempotent,
    )
}

fn too_large(limit: u64, declared: Option<u64>) -> AttemptError {
    let size = declared.map_or_else(String::new, |d| format!(" (it declares {d} bytes)"));
    AttemptError::fatal(Error::new(
        ErrorKind::Protocol,
        format!(
            "the response body exceeds the limit of {limit} bytes{size}; raise `{}` if this is expected",
            config::keys::RESPONSE_MAX_BYTES
        ),
    ))
}

/// Reads the whole body, failing as soon as it exceeds `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
) -> std::result::Result<Bytes, AttemptError> {
    let declared = response.content_length();
    if let Some(len) = declared
        && len > limit
    {
        return Err(too_large(limit, Some(len)));
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total: u64 = 0;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                total += chunk.len() as u64;
                if total > limit {
                    return Err(too_large(limit, declared));
                }
                match (&mut joined, first.take()) {
                    (Some(buf), _) => buf.extend_from_slice(&chunk),
                    (None, None) => first = Some(chunk),
                    (None, Some(head)) => {
                        let hint = declared.unwrap_or(0).min(limit) as usize;
                        let mut buf = BytesMut::with_capacity(hint.max(head.len() + chunk.len()));
                        buf.extend_from_slice(&head);
                        buf.extend_from_slice(&chunk);
                        joined = Some(buf);
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return Err(body_error(e, total, declared)),
        }
    }
    Ok(match joined {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// A request body sent as several buffers with an exact length, so the
/// parts are written one after another and never joined.
struct PartsBody {
    parts: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl PartsBody {
    fn new(spec: &RequestSpec) -> Self {
        let parts: std::collections::VecDeque<Bytes> = std::iter::once(spec.body.clone())
            .chain(spec.more_body.iter().cloned())
            .collect();
        PartsBody {
            remaining: parts.iter().map(|p| p.len() as u64).sum(),
            parts,
        }
    }
}

impl http_body::Body for PartsBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = self.parts.pop_front().map(|part| {
            self.remaining -= part.len() as u64;
            Ok(http_body::Frame::data(part))
        });
        std::task::Poll::Ready(next)
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// The body of a streamed response: chunks as they arrive, each within
/// `idle` of the previous one. The request slot is released when the stream
/// ends or is dropped.
fn body_stream(
    response: reqwest::Response,
    permit: Option<OwnedSemaphorePermit>,
    idle: Duration,
    context: CallContext,
) -> futures_core::stream::BoxStream<'static, Result<Bytes>> {
    struct State {
        response: reqwest::Response,
        _permit: Option<OwnedSemaphorePermit>,
        context: CallContext,
        got: u64,
    }
    let declared = response.content_length();
    let state = State {
        response,
        _permit: permit,
        context,
        got: 0,
    };
    let stream = futures_util::stream::unfold(Some(state), move |state| async move {
        let mut state = state?;
        match tokio::time::timeout(idle, state.response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                state.got += chunk.len() as u64;
                Some((Ok(chunk), Some(state)))
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                let error = body_error(e, state.got, declared).error;
                Some((Err(state.context.decorate(error)), None))
            }
            Err(_) => {
                let error = Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the streamed response sent nothing for {} ms (after {} bytes)",
                        idle.as_millis(),
                        state.got
                    ),
                )
                .with_retryable(false);
                Some((Err(state.context.decorate(error)), None))
            }
        }
    });
    Box::pin(stream)
}

fn body_error(err: reqwest::Error, got: u64, declared: Option<u64>) -> AttemptError {
    let err = err.without_url();
    let reset = error_chain(&err).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        })
    });
    let cause = root_cause(&err);
    if reset {
        return AttemptError::new(
            Error::new(
                ErrorKind::Unavailable,
                format!("the connection was reset while reading the response body, after {got} bytes: {cause}"),
            )
            .with_source(err),
            RetryRule::IfIdempotent,
        );
    }
    let of = declared.map_or_else(String::new, |d| format!(" of {d}"));
    let truncated = error_chain(&err).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
    }) || cause.contains("end of file")
        || cause.contains("incomplete");
    if truncated {
        // The connection closed before the body was complete (a server
        // killed or restarted mid-answer): a connection failure like the
        // reset above, not an answer the protocol forbids. Safe requests
        // may go again, here or (under a router) to another candidate.
        return AttemptError::new(
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the response body is truncated: got {got}{of} bytes before the connection ended: {cause}"
                ),
            )
            .with_source(err),
            RetryRule::IfIdempotent,
        );
    }
    AttemptError::fatal(
        Error::new(
            ErrorKind::Protocol,
            format!(
                "the response body could not be decoded: got {got}{of} bytes before the connection ended: {cause}"
            ),
        )
        .with_source(err),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(base: &str) -> HttpTransport {
        HttpTransport::builder(base).build().unwrap()
    }

    #[test]
    fn paths_join_under_the_base() {
        let t = transport("http://127.0.0.1:9/seldon/ns/model");
        let u = t.url_for(&RequestSpec::get("/v2/models")).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/seldon/ns/model/v2/models");
        let u = t
            .url_for(&RequestSpec::segments(
                Method::GET,
                &["v2", "models", "a b/c?d", "ready"],
            ))
            .unwrap();
        assert_eq!(u.path(), "/seldon/ns/model/v2/models/a%20b%2Fc%3Fd/ready");
        let u = t
            .url_for(&RequestSpec::get("models").query("url", "a&b=c"))
            .unwrap();
        assert_eq!(u.query(), Some("url=a%26b%3Dc"));
        for bad in [
            "../../etc",
            "v2/%2e%2e/%2e%2e/x",
            "a/./b",
            "a?b=1",
            "a#f",
            "a\r\nb",
            "a\\b",
        ] {
            let e = t.url_for(&RequestSpec::get(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        // A leading `//` cannot name another host: the path stays under the base.
        let u = t.url_for(&RequestSpec::get("//evil.example/x")).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/seldon/ns/model/evil.example/x"
        );
    }

    #[test]
    fn bad_endpoints_are_config_errors() {
        for url in [
            "ftp://x/",
            "http://user:pw@host/",
            "not a url",
            "http://h/?token=1",
        ] {
            let e = HttpTransport::builder(url).build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        let u = Url::parse("https://u:p@h.example:8443/a/b?api_key=zzz#f").unwrap();
        assert_eq!(redact_url(&u), "https://h.example:8443/a/b?…");
    }

    #[test]
    fn debug_shows_no_secrets() {
        let cfg = TransportConfig {
            auth: Auth::Bearer(Secret::new("tok-planted")),
            ..Default::default()
        };
        let t = HttpTransport::builder("http://127.0.0.1:9/")
            .config(cfg)
            .build()
            .unwrap();
        assert!(!format!("{t:?}").contains("tok-planted"));
        let spec = RequestSpec::get("x").secret_header("X-Key", &Secret::new("key-planted"));
        assert!(!format!("{spec:?}").contains("key-planted"));
    }
}
