//! The gRPC side of the shared transport (feature `grpc`).
//!
//! [`GrpcTransport`] is to gRPC connectors what [`HttpTransport`](super::HttpTransport)
//! is to HTTP ones: one lazily connected tonic channel built from the same
//! [`TransportConfig`] (connect timeout, TLS with a custom CA and client
//! identity, static headers and authentication as metadata, the endpoint
//! policy, the response size limit), and every call made through the one
//! retry loop ([`retry::run`]) with the same deadline, attempt timeout and
//! idempotency rules, inside an `inferlink.grpc` tracing span.
//!
//! Connector crates keep only their messages and method paths: they call
//! [`GrpcTransport::unary`], [`GrpcTransport::server_streaming`] or
//! [`GrpcTransport::streaming`] with a `/package.Service/Method` path and
//! prost messages, and refine how a vendor's statuses map to error kinds with
//! a [`GrpcClassifier`].
//!
//! # How failed calls are classified
//!
//! | where it failed ([`GrpcFailure`]) | kind | retried |
//! |---|---|---|
//! | no connection was made | `Unavailable` | always (nothing was sent) |
//! | the attempt's time ran out | `Timeout` | when idempotent |
//! | the connection broke during the call | `Unavailable` | when idempotent |
//! | the server answered a status | [`code_kind`] (or the vendor classifier) | `RESOURCE_EXHAUSTED`, `UNAVAILABLE`: always; `CANCELLED`, `DEADLINE_EXCEEDED`: when idempotent; others never |

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tracing::Instrument as _;

use super::classify::ErrorClass;
use super::config::{TransportConfig, config_error, keys};
use super::retry::{self, AttemptError, CallLimits, Idempotency, RetryRule};
use crate::error::{Error, ErrorKind, Result};
use crate::model_ref::ModelRef;

/// Where a failed gRPC call failed, as far as the client can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcFailure {
    /// No connection was made: nothing reached the server.
    Connect,
    /// The attempt's time ran out (tonic's own timeout).
    TimedOut,
    /// The connection broke after the request may have been sent (a reset
    /// stream, a closed connection): the status was made on this side.
    Dropped,
    /// The server answered with this status.
    Answered,
}

impl GrpcFailure {
    /// Where `status` comes from: a status made by the client carries the
    /// transport error as its source, a server's own status has none.
    pub fn of(status: &tonic::Status) -> GrpcFailure {
        let mut source: Option<&(dyn StdError + 'static)> = status.source();
        let mut from_transport = false;
        while let Some(e) = source {
            if e.is::<tonic::ConnectError>() {
                return GrpcFailure::Connect;
            }
            if e.is::<tonic::TimeoutExpired>() {
                return GrpcFailure::TimedOut;
            }
            from_transport = true;
            source = e.source();
        }
        if from_transport {
            GrpcFailure::Dropped
        } else {
            GrpcFailure::Answered
        }
    }
}

/// The error kind of a status code a server answered with.
///
/// | code | kind |
/// |---|---|
/// | `INVALID_ARGUMENT`, `OUT_OF_RANGE` | `InvalidInput` |
/// | `NOT_FOUND` | `NotFound` |
/// | `ALREADY_EXISTS` | `AlreadyExists` |
/// | `ABORTED` | `Conflict` |
/// | `UNAUTHENTICATED` | `Unauthenticated` |
/// | `PERMISSION_DENIED` | `PermissionDenied` |
/// | `RESOURCE_EXHAUSTED` | `RateLimited` |
/// | `UNAVAILABLE`, `CANCELLED`, `FAILED_PRECONDITION` | `Unavailable` |
/// | `DEADLINE_EXCEEDED` | `Timeout` |
/// | `UNIMPLEMENTED` | `Unsupported` |
/// | `INTERNAL`, `UNKNOWN`, `DATA_LOSS` | `ModelError` |
pub fn code_kind(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidInput,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::Aborted => ErrorKind::Conflict,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::ResourceExhausted => ErrorKind::RateLimited,
        Code::Unavailable | Code::Cancelled | Code::FailedPrecondition => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::Timeout,
        Code::Unimplemented => ErrorKind::Unsupported,
        Code::Internal | Code::Unknown | Code::DataLoss => ErrorKind::ModelError,
        Code::Ok => ErrorKind::Internal,
    }
}

/// The canonical upper-case name of a status code (`UNAVAILABLE`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The default class of a failed call (the table in the module docs).
pub fn default_class(status: &tonic::Status) -> ErrorClass {
    let (kind, retry) = match GrpcFailure::of(status) {
        GrpcFailure::Connect => (ErrorKind::Unavailable, RetryRule::Always),
        GrpcFailure::TimedOut => (ErrorKind::Timeout, RetryRule::IfIdempotent),
        GrpcFailure::Dropped => (ErrorKind::Unavailable, RetryRule::IfIdempotent),
        GrpcFailure::Answered => (code_kind(status.code()), answered_rule(status.code())),
    };
    ErrorClass { kind, retry }
}

/// The retry rule of a status the server answered with.
fn answered_rule(code: Code) -> RetryRule {
    match code {
        // The server refused the work (overload, not serving yet).
        Code::ResourceExhausted | Code::Unavailable => RetryRule::Always,
        Code::Cancelled | Code::DeadlineExceeded => RetryRule::IfIdempotent,
        _ => RetryRule::Never,
    }
}

/// A vendor's refinement of how the statuses its server answers with are
/// classified: servers put the real reason in the message more often than
/// in the code (MLServer's `UNKNOWN "…ModelNotFound…"`, TorchServe's token
/// failures). Consulted only for [`GrpcFailure::Answered`] statuses.
///
/// Return `None` to keep [`default_class`]. Closures
/// `Fn(&tonic::Status) -> Option<ErrorClass>` implement it.
pub trait GrpcClassifier: Send + Sync {
    /// The class of this answered status, or `None` for the default.
    fn classify(&self, status: &tonic::Status) -> Option<ErrorClass>;

    /// The server's message as kept in the error (the default keeps it
    /// whole; a vendor whose messages carry stack traces keeps a line).
    fn vendor_message(&self, status: &tonic::Status) -> String {
        status.message().to_owned()
    }
}

impl<F> GrpcClassifier for F
where
    F: Fn(&tonic::Status) -> Option<ErrorClass> + Send + Sync,
{
    fn classify(&self, status: &tonic::Status) -> Option<ErrorClass> {
        self(status)
    }
}

/// Adds metadata that can change between calls (a key rotated in the
/// registry, the called model's name) to every request, after the
/// configured static metadata.
pub trait CallMetadata: Send + Sync {
    /// Inserts this call's entries (`model`: the model the call is about,
    /// if any); an error fails the call before sending.
    fn apply(&self, metadata: &mut MetadataMap, model: Option<&ModelRef>) -> Result<()>;
}

/// The error of a failed call, classified with `classifier` (or the
/// default), with the server's message kept and the code as the
/// `grpc_status` context. Not yet tagged with vendor or endpoint (see
/// [`GrpcTransport::status_error`]).
pub fn status_error(status: &tonic::Status, classifier: Option<&dyn GrpcClassifier>) -> Error {
    classified(status, classifier).0
}

/// The error of a failed call and whether the retry loop may repeat it.
fn classified(
    status: &tonic::Status,
    classifier: Option<&dyn GrpcClassifier>,
) -> (Error, RetryRule) {
    if let Some(denied) =
        super::error_chain(status).find_map(|e| e.downcast_ref::<super::policy::PolicyDenied>())
    {
        let error =
            Error::new(ErrorKind::PermissionDenied, denied.to_string()).with_retryable(false);
        return (error, RetryRule::Never);
    }
    let failure = GrpcFailure::of(status);
    let class = match (failure, classifier) {
        (GrpcFailure::Answered, Some(c)) => c.classify(status),
        _ => None,
    }
    .unwrap_or_else(|| default_class(status));
    let code = status.code();
    let what = match failure {
        GrpcFailure::Connect => "cannot connect to the gRPC server".to_owned(),
        GrpcFailure::TimedOut => "the gRPC call timed out".to_owned(),
        GrpcFailure::Dropped => format!(
            "the connection broke during the call (gRPC {})",
            code_name(code)
        ),
        GrpcFailure::Answered => format!("gRPC status {}", code_name(code)),
    };
    let message = match classifier {
        Some(c) => c.vendor_message(status),
        None => status.message().to_owned(),
    };
    let error = Error::new(class.kind, what)
        .with_vendor_message(message)
        .with_context("grpc_status", format!("{}", code as i32))
        .with_retryable(class.retry != RetryRule::Never);
    (error, class.retry)
}

/// Builds a [`GrpcTransport`].
pub struct GrpcTransportBuilder {
    target: String,
    target_key: &'static str,
    authority: Option<String>,
    vendor: String,
    config: TransportConfig,
    classifier: Option<Arc<dyn GrpcClassifier>>,
    call_metadata: Option<Arc<dyn CallMetadata>>,
    send_compressed: Option<CompressionEncoding>,
}

impl fmt::Debug for GrpcTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcTransportBuilder")
            .field("target", &self.target)
            .field("authority", &self.authority)
            .field("vendor", &self.vendor)
            .field("config", &self.config)
            .field("classifier", &self.classifier.is_some())
            .field("call_metadata", &self.call_metadata.is_some())
            .field("send_compressed", &self.send_compressed)
            .finish_non_exhaustive()
    }
}

impl GrpcTransportBuilder {
    /// Names the vendor (error context and tracing), e.g. `triton`.
    pub fn vendor(mut self, vendor: impl Into<String>) -> Self {
        self.vendor = vendor.into();
        self
    }

    /// The configuration key the target came from, named in errors about
    /// it (default `grpc_url`).
    pub fn target_key(mut self, key: &'static str) -> Self {
        self.target_key = key;
        self
    }

    /// Sends `authority` (`host[:port]`) as every request's `:authority`
    /// while connecting to the target (an ingress that routes by host); over
    /// TLS it is also the server name verified.
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    /// Replaces the settings.
    pub fn config(mut self, config: TransportConfig) -> Self {
        self.config = config;
        self
    }

    /// Refines how the server's statuses are classified.
    pub fn classifier(mut self, classifier: Arc<dyn GrpcClassifier>) -> Self {
        self.classifier = Some(classifier);
        self
    }

    /// Compresses every request message (`grpc-encoding: gzip` or
    /// `deflate`); the server must accept that encoding (Triton does).
    /// Compressed answers are accepted in either encoding regardless.
    pub fn send_compressed(mut self, encoding: Option<CompressionEncoding>) -> Self {
        self.send_compressed = encoding;
        self
    }

    /// Adds per-call metadata (read again for every attempt).
    pub fn call_metadata(mut self, source: Arc<dyn CallMetadata>) -> Self {
        self.call_metadata = Some(source);
        self
    }

    /// Checks everything and builds the (lazy) channel: nothing connects
    /// until the first call. Errors: [`ErrorKind::Config`] naming the key
    /// for bad settings, target or authority; [`ErrorKind::PermissionDenied`]
    /// when the endpoint policy refuses the target.
    pub fn build(self) -> Result<GrpcTransport> {
        let cfg = self.config;
        let key = self.target_key;
        cfg.validate()?;
        let url = url::Url::parse(&self.target).map_err(|e| config_error(key, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config_error(
                key,
                format!("the scheme must be http or https, not {}", url.scheme()),
            ));
        }
        // A name the policy does not allow outright is resolved when the
        // channel connects, and only its allowed addresses are dialled.
        let mut resolve_by_policy = None;
        if let Some(policy) = &cfg.endpoint_policy {
            match policy.check_url(&url) {
                Ok(true) => {}
                Ok(false) => resolve_by_policy = Some(Arc::new(policy.clone())),
                Err(e) => return Err(e.with_context("endpoint", self.target.clone())),
            }
        }
        let mut endpoint = Endpoint::from_shared(self.target.clone())
            .map_err(|e| config_error(key, format!("not a usable gRPC URL ({e})")))?
            .connect_timeout(cfg.timeout_connect)
            .tcp_nodelay(true);
        if url.scheme() == "https" {
            if cfg.tls.insecure_skip_verify {
                return Err(config_error(
                    keys::TLS_INSECURE_SKIP_VERIFY,
                    "skipping certificate verification is not available for gRPC; trust the \
                     server's CA with tls_ca_pem instead",
                ));
            }
            let mut tls = ClientTlsConfig::new();
            if let Some(authority) = &self.authority {
                tls = tls.domain_name(authority_host(authority));
            }
            tls = match cfg.tls.ca_pem_bytes() {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
                None => tls.with_native_roots(),
            };
            if let Some((cert, key)) = cfg.tls.client_identity_pem() {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::new(ErrorKind::Config, format!("gRPC TLS settings: {e}")))?;
        }
        if let Some(authority) = &self.authority {
            let origin = format!("{}://{authority}", url.scheme())
                .parse::<tonic::codegen::http::Uri>()
                .map_err(|e| {
                    config_error("grpc_authority", format!("not a usable authority ({e})"))
                })?;
            endpoint = endpoint.origin(origin);
        }
        let channel = match resolve_by_policy {
            None => endpoint.connect_lazy(),
            Some(policy) => {
                let mut http =
                    hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(
                        super::policy::GrpcPolicyResolver(policy),
                    );
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(cfg.timeout_connect));
                endpoint.connect_with_connector_lazy(http)
            }
        };

        let mut metadata = Vec::new();
        for h in &cfg.headers {
            let key = format!("{}{}", keys::HEADER_PREFIX, h.name);
            metadata.push(metadata_pair(
                &h.name,
                h.value.expose(),
                h.value.is_secret(),
                &key,
            )?);
        }
        if let Some((name, value)) = cfg.auth.header()? {
            let text = value
                .to_str()
                .map_err(|_| config_error("auth", "not a valid gRPC metadata value"))?;
            metadata.push(metadata_pair(name.as_str(), text, true, "auth")?);
        }
        Ok(GrpcTransport {
            inner: Arc::new(Inner {
                channel,
                metadata,
                call_metadata: self.call_metadata,
                classifier: self.classifier,
                send_compressed: self.send_compressed,
                decode_limit: usize::try_from(cfg.response_max_bytes).unwrap_or(usize::MAX),
                retry: cfg.retry.clone(),
                limits: CallLimits {
                    deadline: cfg.deadline,
                    attempt_timeout: cfg.timeout_request,
                    max_attempts: cfg.retry.max_attempts,
                },
                vendor: Arc::from(self.vendor),
                endpoint: Arc::from(self.target),
            }),
        })
    }
}

/// The host part of `host[:port]` (brackets of an IPv6 literal removed).
fn authority_host(authority: &str) -> &str {
    let host = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
        .map_or(authority, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A checked metadata entry; `key` names the configuration key in errors.
fn metadata_pair(
    name: &str,
    value: &str,
    sensitive: bool,
    key: &str,
) -> Result<(AsciiMetadataKey, AsciiMetadataValue)> {
    let k = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| config_error(key, "is not a valid gRPC metadata name"))?;
    if value.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err(config_error(
            key,
            "the value must be visible ASCII without CR/LF",
        ));
    }
    let mut v = AsciiMetadataValue::try_from(value)
        .map_err(|_| config_error(key, "is not a valid gRPC metadata value"))?;
    v.set_sensitive(sensitive);
    Ok((k, v))
}

struct Inner {
    channel: Channel,
    metadata: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    call_metadata: Option<Arc<dyn CallMetadata>>,
    classifier: Option<Arc<dyn GrpcClassifier>>,
    send_compressed: Option<CompressionEncoding>,
    decode_limit: usize,
    retry: super::RetryPolicy,
    limits: CallLimits,
    vendor: Arc<str>,
    endpoint: Arc<str>,
}

/// A gRPC connection with the shared transport's settings; cheap to clone
/// (clones share the channel).
#[derive(Clone)]
pub struct GrpcTransport {
    inner: Arc<Inner>,
}

impl fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Metadata by name only: values may be credentials.
        f.debug_struct("GrpcTransport")
            .field("vendor", &self.inner.vendor)
            .field("endpoint", &self.inner.endpoint)
            .field(
                "metadata",
                &self
                    .inner
                    .metadata
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A builder for `target` (an `http`/`https` URL), vendor `grpc` until
    /// named, with `config`'s settings.
    pub fn builder(target: impl Into<String>, config: TransportConfig) -> GrpcTransportBuilder {
        GrpcTransportBuilder {
            target: target.into(),
            target_key: "grpc_url",
            authority: None,
            vendor: "grpc".to_owned(),
            config,
            classifier: None,
            call_metadata: None,
            send_compressed: None,
        }
    }

    /// The endpoint shown in info and errors.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The vendor named in errors and spans.
    pub fn vendor(&self) -> &str {
        &self.inner.vendor
    }

    /// Deadline, attempt timeout and attempts of every call.
    pub fn limits(&self) -> CallLimits {
        self.inner.limits
    }

    /// Tags an error with vendor and endpoint, and the model when given.
    pub fn decorate(&self, error: Error, model: Option<&ModelRef>) -> Error {
        let error = error
            .with_vendor(self.inner.vendor.as_ref())
            .with_endpoint(self.inner.endpoint.as_ref());
        match model {
            Some(m) => error.with_model(m),
            None => error,
        }
    }

    /// The error of a failed call (met in a stream, or from
    /// [`GrpcTransport::unary_once`]), classified and tagged like every other.
    pub fn status_error(&self, status: &tonic::Status, model: Option<&ModelRef>) -> Error {
        self.decorate(
            status_error(status, self.inner.classifier.as_deref()),
            model,
        )
    }

    /// A request carrying `message` and the configured and per-call metadata.
    fn request<M>(
        &self,
        message: M,
        model: Option<&ModelRef>,
    ) -> std::result::Result<tonic::Request<M>, Error> {
        let mut request = tonic::Request::new(message);
        let map = request.metadata_mut();
        for (k, v) in &self.inner.metadata {
            map.insert(k.clone(), v.clone());
        }
        if let Some(source) = &self.inner.call_metadata {
            source.apply(map, model)?;
        }
        Ok(request)
    }

    fn client(&self) -> tonic::client::Grpc<Channel> {
        let mut grpc = tonic::client::Grpc::new(self.inner.channel.clone())
            .max_decoding_message_size(self.inner.decode_limit)
            .max_encoding_message_size(usize::MAX)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Deflate);
        if let Some(encoding) = self.inner.send_compressed {
            grpc = grpc.send_compressed(encoding);
        }
        grpc
    }

    fn span(&self, path: &'static str, model: Option<&ModelRef>) -> tracing::Span {
        tracing::debug_span!(
            "inferlink.grpc",
            vendor = %self.inner.vendor,
            endpoint = %self.inner.endpoint,
            path,
            model = %model.map(ToString::to_string).unwrap_or_default(),
        )
    }

    /// Runs one call through the shared retry loop: each attempt sends a
    /// fresh copy of `request` (with its metadata) through `call`.
    async fn with_retries<Req, T, C, CallFut>(
        &self,
        path: &'static str,
        request: &Req,
        idempotency: Idempotency,
        model: Option<&ModelRef>,
        call: C,
    ) -> Result<T>
    where
        Req: Clone,
        C: Fn(tonic::client::Grpc<Channel>, tonic::Request<Req>) -> CallFut,
        CallFut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let classifier = self.inner.classifier.clone();
        let outcome = retry::run(&self.inner.retry, self.inner.limits, idempotency, |_| {
            let attempt = self
                .request(request.clone(), model)
                .map(|request| call(self.client(), request));
            let classifier = classifier.clone();
            async move {
                match attempt {
                    Ok(answer) => answer.await.map_err(|status| {
                        let (error, rule) = classified(&status, classifier.as_deref());
                        AttemptError::new(error, rule)
                    }),
                    Err(error) => Err(AttemptError::new(error, RetryRule::Never)),
                }
            }
        })
        .instrument(self.span(path, model))
        .await;
        outcome
            .map(|done| done.value)
            .map_err(|e| self.decorate(e, model))
    }

    /// A unary call to `path` (`/package.Service/Method`), through the
    /// retry loop. Errors are classified and tagged with vendor, endpoint
    /// and model.
    pub async fn unary<Req, Resp>(
        &self,
        path: &'static str,
        request: Req,
        idempotency: Idempotency,
        model: Option<&ModelRef>,
    ) -> Result<Resp>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.with_retries(path, &request, idempotency, model, |grpc, request| {
            unary_call(grpc, request, path)
        })
        .await
    }

    /// One unary attempt at `path`: no retries and no timeout (the caller
    /// bounds it), the status returned as it is for calls whose failures
    /// mean something (a `Shutdown` that drops the connection).
    pub async fn unary_once<Req, Resp>(
        &self,
        path: &'static str,
        request: Req,
    ) -> Result<std::result::Result<Resp, tonic::Status>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let request = self
            .request(request, None)
            .map_err(|e| self.decorate(e, None))?;
        Ok(unary_call(self.client(), request, path)
            .instrument(self.span(path, None))
            .await)
    }

    /// A server-streaming call to `path`: the stream opens through the retry
    /// loop (until the response head arrives); its messages are read by the
    /// caller, who maps a status met there with
    /// [`GrpcTransport::status_error`].
    pub async fn server_streaming<Req, Resp>(
        &self,
        path: &'static str,
        request: Req,
        idempotency: Idempotency,
        model: Option<&ModelRef>,
    ) -> Result<tonic::Streaming<Resp>>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.with_retries(
            path,
            &request,
            idempotency,
            model,
            |mut grpc, request| async move {
                ready(&mut grpc).await?;
                grpc.server_streaming(
                    request,
                    PathAndQuery::from_static(path),
                    tonic_prost::ProstCodec::<Req, Resp>::default(),
                )
                .await
                .map(tonic::Response::into_inner)
            },
        )
        .await
    }

    /// A bidirectional stream at `path`: sends `requests` as they come and
    /// returns the server's message stream once its head arrives (one
    /// attempt: a stream cannot be replayed; bounded by the attempt
    /// timeout). `metadata` adds entries to this call only.
    pub async fn streaming<Req, Resp, S>(
        &self,
        path: &'static str,
        requests: S,
        metadata: &[(&'static str, &str)],
        model: Option<&ModelRef>,
    ) -> Result<tonic::Streaming<Resp>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        S: futures_core::Stream<Item = Req> + Send + 'static,
    {
        let mut request = self
            .request(requests, model)
            .map_err(|e| self.decorate(e, model))?;
        for (k, v) in metadata {
            let value = AsciiMetadataValue::try_from(*v).map_err(|_| {
                self.decorate(
                    Error::invalid(format!("metadata {k}: not a valid gRPC metadata value")),
                    model,
                )
            })?;
            request.metadata_mut().insert(*k, value);
        }
        let mut grpc = self.client();
        let open = async move {
            ready(&mut grpc).await?;
            grpc.streaming(
                request,
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<Req, Resp>::default(),
            )
            .await
        };
        let limits = self.inner.limits;
        let timeout = limits.attempt_timeout.min(limits.deadline);
        match tokio::time::timeout(timeout, open.instrument(self.span(path, model))).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.status_error(&status, model)),
            Err(_) => Err(self.decorate(
                Error::new(
                    ErrorKind::Timeout,
                    format!("the stream did not open within {} ms", timeout.as_millis()),
                ),
                model,
            )),
        }
    }
}

/// One unary exchange at `path` once the channel is ready.
async fn unary_call<Req, Resp>(
    mut grpc: tonic::client::Grpc<Channel>,
    request: tonic::Request<Req>,
    path: &'static str,
) -> std::result::Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    ready(&mut grpc).await?;
    grpc.unary(
        request,
        PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::<Req, Resp>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// Waits until the channel can take a call.
async fn ready(grpc: &mut tonic::client::Grpc<Channel>) -> std::result::Result<(), tonic::Status> {
    // The channel's own error (a connect failure) stays the source, so
    // that [`GrpcFailure::of`] can tell nothing was sent.
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::from_error(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_codes_map_to_kinds_and_rules() {
        let s = tonic::Status::unavailable("loading");
        let c = default_class(&s);
        assert_eq!(c.kind, ErrorKind::Unavailable);
        assert_eq!(c.retry, RetryRule::Always);
        let s = tonic::Status::invalid_argument("bad shape");
        let c = default_class(&s);
        assert_eq!(c.kind, ErrorKind::InvalidInput);
        assert_eq!(c.retry, RetryRule::Never);
        let e = status_error(&s, None);
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.context("grpc_status"), Some("3"));
        assert_eq!(e.vendor_message(), Some("bad shape"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn every_answered_code_has_a_kind_and_keeps_the_words() {
        let cases = [
            (Code::NotFound, ErrorKind::NotFound),
            (Code::InvalidArgument, ErrorKind::InvalidInput),
            (Code::Unavailable, ErrorKind::Unavailable),
            (Code::DeadlineExceeded, ErrorKind::Timeout),
            (Code::Unauthenticated, ErrorKind::Unauthenticated),
            (Code::PermissionDenied, ErrorKind::PermissionDenied),
            (Code::ResourceExhausted, ErrorKind::RateLimited),
            (Code::Unimplemented, ErrorKind::Unsupported),
            (Code::Internal, ErrorKind::ModelError),
            (Code::Unknown, ErrorKind::ModelError),
        ];
        for (code, kind) in cases {
            let e = status_error(&tonic::Status::new(code, "the server's words"), None);
            assert_eq!(e.kind(), kind, "{code:?}");
            assert_eq!(e.vendor_message(), Some("the server's words"));
            assert!(e.to_string().contains("the server's words"), "{e}");
        }
    }

    #[test]
    fn a_vendor_classifier_refines_answered_statuses_only() {
        let classifier = |s: &tonic::Status| {
            s.message()
                .contains("ModelNotFound")
                .then(|| ErrorClass::fatal(ErrorKind::NotFound))
        };
        let s = tonic::Status::unknown("Unexpected ModelNotFound: x");
        assert_eq!(
            status_error(&s, Some(&classifier)).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(status_error(&s, None).kind(), ErrorKind::ModelError);
    }

    #[test]
    fn who_failed_decides_kind_and_retry() {
        let connect = tonic::Status::from_error(Box::new(tonic::ConnectError(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        )));
        assert_eq!(GrpcFailure::of(&connect), GrpcFailure::Connect);
        let c = default_class(&connect);
        assert_eq!(
            (c.kind, c.retry),
            (ErrorKind::Unavailable, RetryRule::Always)
        );
        let timeout = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(GrpcFailure::of(&timeout), GrpcFailure::TimedOut);
        let c = default_class(&timeout);
        assert_eq!(
            (c.kind, c.retry),
            (ErrorKind::Timeout, RetryRule::IfIdempotent)
        );
        let dropped = tonic::Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(GrpcFailure::of(&dropped), GrpcFailure::Dropped);
        let c = default_class(&dropped);
        assert_eq!(
            (c.kind, c.retry),
            (ErrorKind::Unavailable, RetryRule::IfIdempotent)
        );
        // A classifier is not asked about failures the server did not answer.
        let everything_is_not_found =
            |_: &tonic::Status| Some(ErrorClass::fatal(ErrorKind::NotFound));
        let e = status_error(&dropped, Some(&everything_is_not_found));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("connection broke"), "{e}");
        assert_eq!(
            GrpcFailure::of(&tonic::Status::unknown("x")),
            GrpcFailure::Answered
        );
    }

    #[tokio::test]
    async fn credentials_stay_out_of_debug_and_errors() {
        const PLANTED: &str = "PLANTED-grpc-7f1c2e9a";
        let mut cfg = TransportConfig {
            auth: super::super::Auth::Bearer(crate::Secret::new(PLANTED)),
            deadline: std::time::Duration::from_secs(5),
            ..TransportConfig::default()
        };
        cfg.retry.max_attempts = 2;
        cfg.headers.push(super::super::StaticHeader {
            name: "x-api-key".to_owned(),
            value: crate::target::ConfigValue::Secret(crate::Secret::new(PLANTED)),
        });
        // Port 1 on loopback: nothing listens, the connection is refused.
        let builder = GrpcTransport::builder("http://127.0.0.1:1", cfg).vendor("test");
        assert!(!format!("{builder:?}").contains(PLANTED));
        let transport = builder.build().unwrap();
        let shown = format!("{transport:?}");
        assert!(!shown.contains(PLANTED), "{shown}");
        assert!(
            shown.contains("authorization") && shown.contains("x-api-key"),
            "{shown}"
        );
        let e = transport
            .unary::<(), ()>("/test.Service/Call", (), Idempotency::Safe, None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert_eq!(e.context("attempts"), Some("2"), "{e}");
        assert!(!format!("{e} {e:?}").contains(PLANTED));
    }

    #[test]
    fn authority_hosts() {
        assert_eq!(authority_host("a.b.example.com:443"), "a.b.example.com");
        assert_eq!(authority_host("a.b.example.com"), "a.b.example.com");
        assert_eq!(authority_host("[::1]:8443"), "::1");
        assert_eq!(authority_host("[::1]"), "::1");
    }

    #[test]
    fn bad_targets_and_headers_are_config_errors() {
        let e = GrpcTransport::builder("ftp://127.0.0.1:1", TransportConfig::default())
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("grpc_url"), "{e}");
        let e = GrpcTransport::builder("not a url", TransportConfig::default())
            .target_key("url")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
    }
}
