//! [`SeldonConnector`] (the [`InferenceConnector`]) over either
//! [`SeldonV1Client`] (Seldon Core v1, SeldonMessage REST) or an
//! [`OipClient`] (Seldon Core v2 and MLServer, REST or gRPC).

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::kit;
use inferlink_core::transport::{HttpResponse, HttpTransport, Method, RequestSpec, redact_url};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, DataType, Error, ErrorKind, Health, InferRequest, InferResponse,
    ModelDescription, ModelInfo, ModelListing, ModelMetadata, ModelReadiness, ModelRef, Parameter,
    RawInvocation, RawRequest, RawResponse, Result, TensorInference,
};
use inferlink_oip::OipClient;

use crate::codec::{self, Feedback, SeldonMessage};
use crate::config::{SeldonConfig, SeldonProtocol};
use crate::error::{status_error, v1_classifier};

/// The vendor name in [`ConnectorInfo::vendor`] and in errors.
pub const VENDOR: &str = "seldon";

/// The MLServer parameter that names a codec.
pub const CONTENT_TYPE: &str = "content_type";

/// A Seldon Core v1 client: SeldonMessage JSON over the shared transport.
///
/// Paths are `[/seldon/<namespace>/<deployment>]/api/v1.0/<call>`; see
/// [`SeldonConfig::v1_prefix`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SeldonV1Client {
    http: HttpTransport,
    config: Arc<SeldonConfig>,
}

impl SeldonV1Client {
    /// A client for `config` (its protocol must be v1).
    pub fn new(config: SeldonConfig) -> Result<Self> {
        let http = HttpTransport::builder(config.url.clone())
            .vendor(VENDOR)
            .config(config.transport.clone())
            .classifier(v1_classifier())
            .build()?;
        Ok(SeldonV1Client {
            http,
            config: Arc::new(config),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SeldonConfig {
        &self.config
    }

    /// The endpoint, credentials removed.
    pub fn endpoint(&self) -> String {
        redact_url(self.http.base_url())
    }

    fn tag(&self, e: Error, model: Option<&ModelRef>) -> Error {
        let e = e.with_vendor(VENDOR).with_endpoint(self.endpoint());
        match model {
            Some(m) => e.with_model(m),
            None => e,
        }
    }

    /// `NotFound` when a deployment is configured and `model` names another.
    fn check_model(&self, model: &ModelRef) -> Result<()> {
        match &self.config.deployment {
            Some(dep) if *dep != model.name => Err(self.tag(
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "model \"{}\" is not served here: this connector talks to Seldon \
                         deployment \"{dep}\" (configuration key deployment)",
                        model.name
                    ),
                ),
                Some(model),
            )),
            _ => Ok(()),
        }
    }

    fn spec(&self, method: Method, model: &ModelRef, tail: &[&str]) -> RequestSpec {
        let mut segments = self.config.v1_prefix(&model.name);
        segments.extend_from_slice(&["api", "v1.0"]);
        segments.extend_from_slice(tail);
        RequestSpec::segments(method, &segments).model(model.to_string())
    }

    fn decode(&self, resp: &HttpResponse, model: &ModelRef) -> Result<SeldonMessage> {
        let message = codec::decode_message(resp.body()).map_err(|e| resp.decorate(e))?;
        if let Some(status) = &message.status
            && status.is_failure()
        {
            return Err(self.tag(
                status_error(status, Some(resp.status().as_u16())),
                Some(model),
            ));
        }
        Ok(message)
    }

    /// `POST …/api/v1.0/predictions` with a SeldonMessage.
    pub async fn predict(
        &self,
        model: &ModelRef,
        message: &SeldonMessage,
        idempotent: bool,
    ) -> Result<SeldonMessage> {
        self.check_model(model)?;
        let body = codec::to_body(message).map_err(|e| self.tag(e, Some(model)))?;
        let mut spec = self
            .spec(Method::POST, model, &["predictions"])
            .content_type("application/json")
            .body(body);
        if let Some(puid) = message.meta.as_ref().and_then(|m| m.puid.as_deref())
            && !puid.is_empty()
            && puid.chars().all(|c| c.is_ascii_graphic())
        {
            spec = spec.header("Seldon-Puid", puid);
        }
        if idempotent {
            spec = spec.idempotent();
        }
        let resp = self.http.send(spec).await?;
        self.decode(&resp, model)
    }

    /// `POST …/api/v1.0/feedback` (reward and truth for a past prediction).
    pub async fn feedback(&self, model: &ModelRef, feedback: &Feedback) -> Result<SeldonMessage> {
        self.check_model(model)?;
        let body = serde_json::to_vec(feedback)
            .map_err(|e| self.tag(codec::invalid(e.to_string()), Some(model)))?;
        let spec = self
            .spec(Method::POST, model, &["feedback"])
            .content_type("application/json")
            .body(body);
        let resp = self.http.send(spec).await?;
        self.decode(&resp, model)
    }

    /// `GET …/api/v1.0/health/status`: the model's own health answer.
    pub async fn health_status(&self, model: &ModelRef) -> Result<SeldonMessage> {
        self.check_model(model)?;
        let resp = self
            .http
            .send(self.spec(Method::GET, model, &["health", "status"]))
            .await?;
        self.decode(&resp, model)
    }

    /// Metadata: of the deployment's graph (`GET …/api/v1.0/metadata`) when
    /// `model` is the deployment (or none is configured), else of one model
    /// of the graph (`GET …/api/v1.0/metadata/<model>`, the executor's route).
    pub async fn metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        let whole = self
            .config
            .deployment
            .as_ref()
            .is_none_or(|d| *d == model.name);
        let spec = if whole {
            self.spec(Method::GET, model, &["metadata"])
        } else {
            self.spec(Method::GET, model, &["metadata", &model.name])
        };
        let resp = self.http.send(spec).await?;
        let raw: codec::RawMetadata = serde_json::from_slice(resp.body())
            .map_err(|e| resp.decorate(codec::protocol(format!("not Seldon metadata: {e}"))))?;
        Ok(codec::metadata_from(raw, &model.name))
    }

    /// Health: `GET …/api/v1.0/health/status` of the configured deployment
    /// (any answer means live, a 2xx without `FAILURE` means ready). With
    /// only a namespace configured there is no one deployment to ask: any
    /// HTTP answer of the ingress means live and ready.
    pub async fn health(&self) -> Result<Health> {
        let spec = match (&self.config.namespace, &self.config.deployment) {
            (Some(_), None) => RequestSpec::get(""),
            (_, dep) => {
                let model = ModelRef::new(dep.clone().unwrap_or_default());
                self.spec(Method::GET, &model, &["health", "status"])
            }
        };
        let resp = self.http.send(spec.any_status()).await?;
        if self.config.namespace.is_some() && self.config.deployment.is_none() {
            return Ok(Health::SERVING);
        }
        let ready = resp.status().is_success()
            && codec::decode_message(resp.body())
                .map(|m| !m.status.is_some_and(|s| s.is_failure()))
                .unwrap_or(true);
        Ok(Health { live: true, ready })
    }

    /// Whether `model` (a deployment) answers its health status.
    pub async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        match self.health_status(model).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(e),
            Err(e)
                if matches!(e.kind(), ErrorKind::ModelError | ErrorKind::Unavailable)
                    && e.context("status").is_some() =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Tensor inference through the SeldonMessage mapping (`crate::codec`).
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.check_model(model)?;
        let message = codec::encode_request(&request, self.config.v1_tensor_form)
            .map_err(|e| self.tag(e, Some(model)))?;
        let answer = self.predict(model, &message, request.idempotent).await?;
        let mut response = codec::decode_response(answer).map_err(|e| self.tag(e, Some(model)))?;
        response.model_name = model.name.clone();
        Ok(response)
    }

    /// A raw body (normally SeldonMessage JSON) to `…/api/v1.0/predictions`.
    pub async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.check_model(model)?;
        let spec = kit::raw_request_spec(self.spec(Method::POST, model, &["predictions"]), request);
        let resp = self.http.send(spec).await?;
        let headers = resp
            .header("seldon-puid")
            .map(|v| vec![("seldon-puid".to_owned(), v.to_owned())])
            .unwrap_or_default();
        Ok(RawResponse {
            content_type: resp.content_type().map(str::to_owned),
            headers,
            body: resp.into_body(),
        })
    }
}

/// MLServer `content_type` parameters for a V2 request (see
/// `docs/connectors/seldon.md`). With `per_input`, every input without one
/// gets `str` when it is `BYTES` of UTF-8 text, and `np` when it is numeric
/// or `BOOL` unless a request-level content type decodes the request as a
/// whole (e.g. `pd`, where each input is a column). The request gets
/// `request_content_type` when given and it has none.
pub fn add_content_types(
    request: &mut InferRequest,
    per_input: bool,
    request_content_type: Option<&str>,
) {
    let whole = request_content_type.is_some() || request.parameters.contains_key(CONTENT_TYPE);
    if let Some(ct) = request_content_type
        && !request.parameters.contains_key(CONTENT_TYPE)
    {
        request
            .parameters
            .insert(CONTENT_TYPE.to_owned(), Parameter::String(ct.to_owned()));
    }
    if !per_input {
        return;
    }
    for input in &mut request.inputs {
        if input.parameters().contains_key(CONTENT_TYPE) {
            continue;
        }
        let codec = if input.datatype() == DataType::Bytes {
            match input.to_byte_elements() {
                Ok(elements) if elements.iter().all(|e| std::str::from_utf8(e).is_ok()) => "str",
                _ => continue,
            }
        } else if whole {
            continue;
        } else {
            "np"
        };
        let tensor = std::mem::replace(
            input,
            inferlink_core::Tensor::from_vec("", Vec::<u8>::new()),
        );
        *input = tensor.with_parameter(CONTENT_TYPE, codec);
    }
}

#[derive(Debug)]
enum Wire {
    V1(SeldonV1Client),
    V2 {
        oip: OipClient,
        content_types: bool,
        request_content_type: Option<String>,
    },
}

/// The [`InferenceConnector`] of a Seldon deployment, Seldon Core v2 or MLServer.
///
/// Capabilities — v1: health, model metadata, per-model readiness (the
/// deployment's health status), tensor `infer`, raw `invoke`; no model
/// listing. v2 REST: everything `inferlink-oip` offers over REST (listing
/// through MLServer's repository index); v2 gRPC: the same without listing
/// and invoke.
#[derive(Debug, Clone)]
pub struct SeldonConnector {
    info: ConnectorInfo,
    wire: Arc<Wire>,
}

impl SeldonConnector {
    /// A connector for `config`. Nothing connects yet.
    pub fn new(config: SeldonConfig) -> Result<Self> {
        let protocol = config.protocol;
        let (wire, endpoint, binary_tensors) = match protocol {
            SeldonProtocol::V1 => {
                let client = SeldonV1Client::new(config)?;
                let endpoint = client.endpoint();
                (Wire::V1(client), endpoint, false)
            }
            SeldonProtocol::V2 | SeldonProtocol::V2Grpc => {
                let content_types = config.mlserver_content_types;
                let request_content_type = config.mlserver_request_content_type.clone();
                let oip = OipClient::with_vendor(config.oip, VENDOR)?;
                let info = oip.info().clone();
                (
                    Wire::V2 {
                        oip,
                        content_types,
                        request_content_type,
                    },
                    info.endpoint,
                    info.binary_tensors,
                )
            }
        };
        Ok(SeldonConnector {
            info: ConnectorInfo {
                vendor: VENDOR.to_owned(),
                protocol: protocol.info_name().to_owned(),
                endpoint,
                binary_tensors,
            },
            wire: Arc::new(wire),
        })
    }

    /// A connector for a target (protocol defaulting by product and version).
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        SeldonConnector::new(SeldonConfig::from_target(target)?)
    }

    /// The Seldon v1 client, when the protocol is v1 (feedback, raw
    /// SeldonMessages, health status).
    pub fn v1(&self) -> Option<&SeldonV1Client> {
        match self.wire.as_ref() {
            Wire::V1(c) => Some(c),
            Wire::V2 { .. } => None,
        }
    }

    /// The Open Inference Protocol client, when the protocol is v2
    /// (server metadata and the other OIP calls).
    pub fn oip(&self) -> Option<&OipClient> {
        match self.wire.as_ref() {
            Wire::V1(_) => None,
            Wire::V2 { oip, .. } => Some(oip),
        }
    }
}

impl SeldonConnector {
    /// Who this connector is (vendor, protocol, endpoint).
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// The health of the Seldon v1 deployment or the OIP server.
    pub async fn health(&self) -> Result<Health> {
        match self.wire.as_ref() {
            Wire::V1(c) => c.health().await,
            Wire::V2 { oip, .. } => oip.health().await,
        }
    }

    /// Seldon v1, or OIP over REST (a raw body needs an HTTP request).
    fn speaks_http(&self) -> bool {
        match self.wire.as_ref() {
            Wire::V1(_) => true,
            Wire::V2 { oip, .. } => oip.is_rest(),
        }
    }

    /// OIP over REST (Seldon v1 has no model index; OIP's gRPC neither).
    fn has_model_index(&self) -> bool {
        matches!(self.wire.as_ref(), Wire::V2 { oip, .. } if oip.is_rest())
    }
}

inferlink_core::connector_families! {
    impl SeldonConnector {
        TensorInference,
        /// Seldon v1, or OIP over REST (a raw body needs an HTTP request).
        RawInvocation if |c| c.speaks_http(),
        /// OIP over REST only (Seldon v1 has no model index; OIP's gRPC neither).
        ModelListing if |c| c.has_model_index(),
        ModelDescription,
        ModelReadiness,
    }
}

#[async_trait]
impl TensorInference for SeldonConnector {
    async fn infer(&self, model: &ModelRef, mut request: InferRequest) -> Result<InferResponse> {
        match self.wire.as_ref() {
            Wire::V1(c) => c.infer(model, request).await,
            Wire::V2 {
                oip,
                content_types,
                request_content_type,
            } => {
                add_content_types(
                    &mut request,
                    *content_types,
                    request_content_type.as_deref(),
                );
                oip.infer(model, request).await
            }
        }
    }
}

#[async_trait]
impl RawInvocation for SeldonConnector {
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        match self.wire.as_ref() {
            Wire::V1(c) => c.invoke(model, request).await,
            Wire::V2 { oip, .. } => oip.invoke(model, request).await,
        }
    }
}

#[async_trait]
impl ModelListing for SeldonConnector {
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        match self.wire.as_ref() {
            Wire::V1(_) => Err(inferlink_core::connector::unsupported(
                &self.info,
                "listing models (a Seldon Core v1 deployment serves one graph; name it with \
                 the deployment key)",
            )),
            Wire::V2 { oip, .. } => oip.models().await,
        }
    }
}

#[async_trait]
impl ModelDescription for SeldonConnector {
    async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        match self.wire.as_ref() {
            Wire::V1(c) => c.metadata(model).await,
            Wire::V2 { oip, .. } => oip.model_metadata(model).await,
        }
    }
}

#[async_trait]
impl ModelReadiness for SeldonConnector {
    async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        match self.wire.as_ref() {
            Wire::V1(c) => c.model_ready(model).await,
            Wire::V2 { oip, .. } => oip.model_ready(model).await,
        }
    }
}
