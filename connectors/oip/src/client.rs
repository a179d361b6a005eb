//! [`OipClient`] (also named [`OipConnector`]): the wire calls, REST or
//! gRPC, and the [`InferenceConnector`] families over them.
//!
//! Every REST request goes through the shared [`HttpTransport`] (timeouts,
//! the one retry loop, TLS, authentication, error mapping) by way of one
//! method, `RestWire::send`; every gRPC call through the same retry loop
//! ([`inferlink_core::transport::retry::run`]).

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::transport::grpc::CallMetadata;
use inferlink_core::transport::{
    ErrorClass, GrpcTransport, HttpResponse, HttpTransport, Method, RequestSpec, VendorMessage,
    redact_url,
};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, Error, Health, InferRequest, InferResponse, ModelInfo,
    ModelMetadata, ModelRef, RawRequest, RawResponse, Result,
};

use crate::codec::{
    self, HEADER_CONTENT_LENGTH, ServerMetadata, TensorEncoding, decode_infer_response,
    parse_header_length,
};
use crate::config::{ModelHeader, OipConfig, Protocol};
use crate::error::{OipGrpcClassifier, rest_classifier};
use crate::grpc::GrpcWire;

/// The vendor name used when none is given.
pub const DEFAULT_VENDOR: &str = "oip";

/// An Open Inference Protocol client over REST or gRPC.
///
/// Cheap to clone (connections are shared). Vendor crates (Triton, KServe,
/// Seldon) build one with their own vendor name, which then appears in
/// [`ConnectorInfo::vendor`] and in every error's `vendor` context.
#[derive(Debug, Clone)]
pub struct OipClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ConnectorInfo,
    wire: Wire,
}

#[derive(Debug)]
enum Wire {
    Rest(RestWire),
    Grpc(Box<GrpcWire>),
}

impl OipClient {
    /// A client for `config`, vendor [`DEFAULT_VENDOR`].
    pub fn new(config: OipConfig) -> Result<Self> {
        OipClient::with_vendor(config, DEFAULT_VENDOR)
    }

    /// A client for the target's endpoint and configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        OipClient::new(OipConfig::from_target(target)?)
    }

    /// A client that names `vendor` in its info and errors.
    ///
    /// Nothing connects yet: the first call does. Errors:
    /// [`ErrorKind::Config`](inferlink_core::ErrorKind::Config) naming the key for unusable settings;
    /// [`ErrorKind::PermissionDenied`](inferlink_core::ErrorKind::PermissionDenied) when the endpoint policy refuses the endpoint.
    pub fn with_vendor(config: OipConfig, vendor: &str) -> Result<Self> {
        let protocol = config.protocol();
        let (wire, endpoint, binary_tensors) = match protocol {
            Protocol::Rest => {
                let http = HttpTransport::builder(config.rest_url()?)
                    .vendor(vendor)
                    .config(config.transport.clone())
                    .classifier(rest_classifier())
                    .build()?;
                let endpoint = redact_url(http.base_url());
                let binary = config.tensor_encoding != TensorEncoding::Json;
                let wire = RestWire {
                    http,
                    encoding: config.tensor_encoding,
                    model_header: config.model_header.clone(),
                };
                (Wire::Rest(wire), endpoint, binary)
            }
            Protocol::Grpc => {
                let target = config.grpc_target()?;
                let mut builder = GrpcTransport::builder(&target, config.transport.clone())
                    .vendor(vendor)
                    .classifier(Arc::new(OipGrpcClassifier))
                    .send_compressed(config.grpc_compression);
                if let Some(header) = &config.model_header {
                    builder = builder.call_metadata(Arc::new(ModelMetadataHeader::new(header)?));
                }
                if let Some(authority) = &config.grpc_authority {
                    builder = builder.authority(authority);
                }
                let wire = GrpcWire {
                    transport: builder.build()?,
                };
                // gRPC tensors travel as raw bytes (`raw_input_contents`).
                (Wire::Grpc(Box::new(wire)), target, true)
            }
        };
        Ok(OipClient {
            inner: Arc::new(Inner {
                info: ConnectorInfo {
                    vendor: vendor.to_owned(),
                    protocol: protocol.info_name(crate::config::INFO_NAMES).to_owned(),
                    endpoint,
                    binary_tensors,
                },
                wire,
            }),
        })
    }

    /// Vendor, protocol and endpoint.
    pub fn info(&self) -> &ConnectorInfo {
        &self.inner.info
    }

    /// True when this client speaks REST (listing and raw invocation need it).
    pub fn is_rest(&self) -> bool {
        matches!(self.inner.wire, Wire::Rest(_))
    }

    /// The REST transport, when this client speaks REST (for vendor crates'
    /// further endpoints: they share its pool, retries, TLS and auth).
    pub fn http(&self) -> Option<&HttpTransport> {
        match &self.inner.wire {
            Wire::Rest(r) => Some(&r.http),
            Wire::Grpc(_) => None,
        }
    }

    /// The gRPC channel, when this client speaks gRPC (for vendor crates'
    /// further RPCs on the same connection).
    pub fn grpc(&self) -> Option<&GrpcTransport> {
        match &self.inner.wire {
            Wire::Rest(_) => None,
            Wire::Grpc(g) => Some(&g.transport),
        }
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> Protocol {
        match self.inner.wire {
            Wire::Rest(_) => Protocol::Rest,
            Wire::Grpc(_) => Protocol::Grpc,
        }
    }

    /// Whether the server is live. REST: any 2xx status means yes, whatever
    /// the body (empty for Triton and MLServer, JSON for KServe).
    pub async fn server_live(&self) -> Result<bool> {
        match &self.inner.wire {
            Wire::Rest(r) => r.probe(RequestSpec::get("v2/health/live")).await,
            Wire::Grpc(g) => g.server_live().await,
        }
    }

    /// Whether the server is ready for inference (REST: by status code).
    pub async fn server_ready(&self) -> Result<bool> {
        match &self.inner.wire {
            Wire::Rest(r) => r.probe(RequestSpec::get("v2/health/ready")).await,
            Wire::Grpc(g) => g.server_ready().await,
        }
    }

    /// Live and ready; readiness is asked only when the server is live.
    pub async fn health(&self) -> Result<Health> {
        let live = self.server_live().await?;
        let ready = live && self.server_ready().await?;
        Ok(Health { live, ready })
    }

    /// The server's name, version and extensions (`GET /v2`, `ServerMetadata`).
    pub async fn server_metadata(&self) -> Result<ServerMetadata> {
        match &self.inner.wire {
            Wire::Rest(r) => {
                let resp = r.send(RequestSpec::get("v2")).await?;
                codec::decode_server_metadata(resp.body()).map_err(|e| resp.decorate(e))
            }
            Wire::Grpc(g) => g.server_metadata().await,
        }
    }

    /// A model's versions, platform, inputs and outputs.
    pub async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        match &self.inner.wire {
            Wire::Rest(r) => {
                let resp = r.send(r.model_spec(Method::GET, model, None)).await?;
                codec::decode_model_metadata(resp.body()).map_err(|e| resp.decorate(e))
            }
            Wire::Grpc(g) => g.model_metadata(model).await,
        }
    }

    /// Whether one model is ready. REST: 2xx means yes; 400 and 503 (what
    /// Triton and KServe answer for "not ready") mean no; 404 is
    /// [`ErrorKind::NotFound`](inferlink_core::ErrorKind::NotFound).
    pub async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        match &self.inner.wire {
            Wire::Rest(r) => {
                r.probe(r.model_spec(Method::GET, model, Some("ready")))
                    .await
            }
            Wire::Grpc(g) => g.model_ready(model).await,
        }
    }

    /// The models the server serves.
    ///
    /// REST: `GET /v2/models` (KServe), else the repository index
    /// `POST /v2/repository/index` (Triton, MLServer), else
    /// [`ErrorKind::Unsupported`](inferlink_core::ErrorKind::Unsupported). gRPC: the OIP service has no listing RPC,
    /// so always [`ErrorKind::Unsupported`](inferlink_core::ErrorKind::Unsupported).
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        match &self.inner.wire {
            Wire::Rest(r) => r.models(&self.inner.info).await,
            Wire::Grpc(_) => Err(inferlink_core::connector::unsupported(
                &self.inner.info,
                "listing models (the OIP gRPC service has no listing call)",
            )),
        }
    }

    /// Runs inference.
    ///
    /// REST encodes tensors per the `tensor_encoding` setting; gRPC sends
    /// every input as raw contents. Binary and raw outputs come back as raw
    /// tensors sharing the response buffer; JSON outputs come back typed.
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let mut response = match &self.inner.wire {
            Wire::Rest(r) => r.infer(model, request).await?,
            Wire::Grpc(g) => g.infer(model, request).await?,
        };
        if response.model_name.is_empty() {
            response.model_name = model.name.clone();
        }
        Ok(response)
    }

    /// Sends a pre-encoded body to the model's REST inference URL and
    /// returns the raw answer (REST only). Headers such as
    /// `Inference-Header-Content-Length` pass through both ways; the answer's
    /// CloudEvents headers (`ce-*`, MLServer's) are kept in
    /// [`RawResponse::headers`].
    pub async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        match &self.inner.wire {
            Wire::Rest(r) => r.invoke(model, request).await,
            Wire::Grpc(_) => Err(inferlink_core::connector::unsupported(
                &self.inner.info,
                "raw invocation over gRPC (use infer)",
            )),
        }
    }
}

/// A request about `model` at `v2/models/{name}[/versions/{version}][/{tail}]`,
/// each segment encoded (also Triton's extension paths: `stats`, `config`,
/// `generate`).
pub fn model_spec(method: Method, model: &ModelRef, tail: Option<&str>) -> RequestSpec {
    let mut segments = vec!["v2", "models", model.name.as_str()];
    if let Some(v) = &model.version {
        segments.push("versions");
        segments.push(v);
    }
    if let Some(t) = tail {
        segments.push(t);
    }
    RequestSpec::segments(method, &segments).model(model.to_string())
}

/// Decodes a REST infer answer: the JSON header's length when the answer
/// carries binary tensors (header [`HEADER_CONTENT_LENGTH`]), then the
/// outputs; errors carry the response's context.
pub fn decode_http_infer(resp: &HttpResponse) -> Result<InferResponse> {
    let json_len = parse_header_length(
        resp.headers()
            .get(HEADER_CONTENT_LENGTH)
            .map(|v| v.as_bytes()),
    )
    .map_err(|e| resp.decorate(e))?;
    decode_infer_response(resp.body().clone(), json_len).map_err(|e| resp.decorate(e))
}

/// The REST side: one shared transport.
#[derive(Debug)]
struct RestWire {
    http: HttpTransport,
    encoding: TensorEncoding,
    model_header: Option<ModelHeader>,
}

impl RestWire {
    /// A request about `model` (`/v2/models/NAME[/versions/V][/TAIL]`),
    /// with the configured model header.
    fn model_spec(&self, method: Method, model: &ModelRef, tail: Option<&str>) -> RequestSpec {
        let spec = model_spec(method, model, tail);
        match &self.model_header {
            Some(h) => spec.header(&h.name, &h.value_for(model)),
            None => spec,
        }
    }

    /// The one place HTTP requests leave the client.
    async fn send(&self, spec: RequestSpec) -> Result<HttpResponse> {
        self.http.send(spec).await
    }

    fn decorate(&self, error: Error, model: Option<&ModelRef>) -> Error {
        let error = error
            .with_vendor(self.http.vendor())
            .with_endpoint(redact_url(self.http.base_url()));
        match model {
            Some(m) => error.with_model(m),
            None => error,
        }
    }

    /// A health-style probe: the status code is the answer.
    async fn probe(&self, spec: RequestSpec) -> Result<bool> {
        let resp = self.send(spec.any_status()).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(true);
        }
        match status.as_u16() {
            // The server is up and says "no" (Triton 400, KServe 503, …).
            400 | 409 | 500 | 502 | 503 | 504 | 429 => Ok(false),
            _ => Err(self.status_error(&resp)),
        }
    }

    /// The error for a non-success response read with `any_status`.
    fn status_error(&self, resp: &HttpResponse) -> Error {
        let status = resp.status();
        let class = ErrorClass::for_status(status);
        let mut message = format!("HTTP {status}");
        if let Some(v) = VendorMessage::parse(resp.headers(), resp.body()) {
            message.push_str(&format!(": {v}"));
        }
        resp.decorate(
            Error::new(class.kind, message).with_context("status", status.as_u16().to_string()),
        )
    }

    async fn models(&self, info: &ConnectorInfo) -> Result<Vec<ModelInfo>> {
        let listed = self
            .send(RequestSpec::get("v2/models").any_status())
            .await?;
        if listed.status().is_success() {
            return codec::decode_model_list(listed.body()).map_err(|e| listed.decorate(e));
        }
        if !matches!(listed.status().as_u16(), 404 | 405 | 501) {
            return Err(self.status_error(&listed));
        }
        let index = self
            .send(
                RequestSpec::post("v2/repository/index", "{}")
                    .content_type(codec::JSON)
                    .idempotent()
                    .any_status(),
            )
            .await?;
        if index.status().is_success() {
            return codec::decode_model_list(index.body()).map_err(|e| index.decorate(e));
        }
        if matches!(index.status().as_u16(), 404 | 405 | 501) {
            return Err(inferlink_core::connector::unsupported(
                info,
                "listing models (the server has neither GET /v2/models nor the repository index)",
            ));
        }
        Err(self.status_error(&index))
    }

    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let idempotent = request.idempotent;
        let encoded = codec::encode_infer_request_owned(request, self.encoding)
            .map_err(|e| self.decorate(e, Some(model)))?;
        let mut spec = self
            .model_spec(Method::POST, model, Some("infer"))
            .content_type(encoded.content_type());
        if let Some(n) = encoded.json_len {
            spec = spec.header(HEADER_CONTENT_LENGTH, &n.to_string());
        }
        spec = spec.body_parts(encoded.into_parts());
        if idempotent {
            spec = spec.idempotent();
        }
        let resp = self.send(spec).await?;
        decode_http_infer(&resp)
    }

    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let spec =
            kit::raw_request_spec(self.model_spec(Method::POST, model, Some("infer")), request);
        let resp = self.send(spec).await?;
        let headers = kept_headers(resp.headers());
        Ok(RawResponse {
            content_type: resp.content_type().map(str::to_owned),
            headers,
            body: resp.into_body(),
        })
    }
}

/// The configured model header as gRPC metadata on every call about a model.
struct ModelMetadataHeader {
    key: tonic::metadata::AsciiMetadataKey,
    header: ModelHeader,
}

impl ModelMetadataHeader {
    fn new(header: &ModelHeader) -> Result<Self> {
        let key = tonic::metadata::AsciiMetadataKey::from_bytes(
            header.name.to_ascii_lowercase().as_bytes(),
        )
        .map_err(|_| {
            Error::new(
                inferlink_core::ErrorKind::Config,
                format!("`{}` is not a valid gRPC metadata name", header.name),
            )
        })?;
        Ok(ModelMetadataHeader {
            key,
            header: header.clone(),
        })
    }
}

impl CallMetadata for ModelMetadataHeader {
    fn apply(
        &self,
        metadata: &mut tonic::metadata::MetadataMap,
        model: Option<&ModelRef>,
    ) -> Result<()> {
        let Some(model) = model else { return Ok(()) };
        let value = tonic::metadata::AsciiMetadataValue::try_from(self.header.value_for(model))
            .map_err(|_| {
                Error::invalid(format!(
                    "the model name `{}` cannot travel in the {} metadata",
                    model.name,
                    self.key.as_str()
                ))
            })?;
        metadata.insert(self.key.clone(), value);
        Ok(())
    }
}

/// The response headers an [`OipClient::invoke`] keeps: the binary
/// extension's `inference-header-content-length`, and the CloudEvents
/// headers (`ce-specversion`, `ce-id`, `ce-modelid`, …) with which MLServer
/// (and KServe with CloudEvents on) identifies each inference, in the order
/// received. Values that are not visible text are left out.
fn kept_headers(headers: &inferlink_core::transport::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name == HEADER_CONTENT_LENGTH || name.starts_with("ce-")
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// The [`InferenceConnector`] of an Open Inference Protocol server: the
/// client itself (the families are implemented on [`OipClient`]).
pub type OipConnector = OipClient;

inferlink_core::connector_families! {
    impl OipClient {
        TensorInference(inherent),
        /// REST only: a raw body needs an HTTP request.
        RawInvocation(inherent) if |c| c.is_rest(),
        /// REST only: OIP's gRPC service has no repository index.
        ModelListing(inherent) if |c| c.is_rest(),
        ModelDescription(inherent),
        ModelReadiness(inherent),
    }
}
