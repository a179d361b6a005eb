//! [`TfServingClient`]: the wire calls, REST or gRPC, and the
//! [`InferenceConnector`] families over them ([`TfServingConnector`] is the same type).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use inferlink_core::kit;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::transport::{HttpResponse, HttpTransport, Method, RequestSpec, redact_url};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, DataType, Error, ErrorKind, Health, InferRequest, InferResponse,
    ModelMetadata, ModelRef, Parameter, RawRequest, RawResponse, Result, TensorInference,
};

use crate::codec::{self, Class, Examples, ModelState, TfModelMetadata, VersionStatus};
use crate::config::{GrpcTensorEncoding, Protocol, RequestFormat, TfServingConfig, VersionChoice};
use crate::error::rest_classifier;
use crate::grpc::{self, GrpcWire};

/// The vendor name in [`ConnectorInfo::vendor`] and error contexts.
pub const VENDOR: &str = "tfserving";

/// The request parameter that overrides the configured signature for one call.
pub const SIGNATURE_PARAMETER: &str = "signature_name";

/// The model name `health` asks about when no `health_model` is configured.
const PROBE_MODEL: &str = "inferlink-health-probe";

type HintKey = (String, VersionChoice, Option<String>);

/// A TensorFlow Serving client over REST or gRPC. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TfServingClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ConnectorInfo,
    wire: Wire,
    signature: Option<String>,
    version: VersionChoice,
    format: RequestFormat,
    encoding: GrpcTensorEncoding,
    health_model: Option<String>,
    metadata_api: bool,
    /// Output datatypes per model, version and signature (REST decoding hints).
    hints: Mutex<HashMap<HintKey, Arc<BTreeMap<String, DataType>>>>,
}

#[derive(Debug)]
enum Wire {
    Rest(HttpTransport),
    Grpc(Box<GrpcWire>),
}

/// An example call (`classify`, `regress`) half done: the REST answer, or
/// the gRPC wire and the model spec to call it with.
enum ExamplesCall<'a> {
    Rest(HttpResponse),
    Grpc(&'a GrpcWire, crate::proto::tensorflow::serving::ModelSpec),
}

/// `v1/models/NAME[/versions/N|/labels/L]`, each segment encoded, plus `:verb` or `/tail`.
fn rest_path(
    model: &ModelRef,
    version: &VersionChoice,
    verb: Option<&str>,
    tail: Option<&str>,
) -> Result<String> {
    if model.name.is_empty() || model.name.contains(':') {
        return Err(Error::invalid(format!(
            "model name \"{}\" must be non-empty and without ':'",
            model.name.escape_debug()
        ))
        .with_model(model));
    }
    let number;
    let mut segments = vec!["v1", "models", model.name.as_str()];
    match version {
        VersionChoice::Latest => {}
        VersionChoice::Number(n) => {
            number = n.to_string();
            segments.extend(["versions", number.as_str()]);
        }
        VersionChoice::Label(l) => segments.extend(["labels", l.as_str()]),
    }
    if let Some(t) = tail {
        segments.push(t);
    }
    let mut path = RequestSpec::segments(Method::GET, &segments)
        .path()
        .to_owned();
    if let Some(v) = verb {
        path.push(':');
        path.push_str(v);
    }
    Ok(path)
}

impl TfServingClient {
    /// A client for `config`. Nothing connects yet; bad settings fail now
    /// with [`ErrorKind::Config`] naming the key.
    pub fn new(config: TfServingConfig) -> Result<Self> {
        config.validate()?;
        let protocol = config.protocol();
        let (wire, endpoint, binary_tensors) = match protocol {
            Protocol::Rest => {
                let http = HttpTransport::builder(config.rest_url()?)
                    .vendor(VENDOR)
                    .config(config.transport.clone())
                    .classifier(rest_classifier())
                    .build()?;
                let endpoint = redact_url(http.base_url());
                (Wire::Rest(http), endpoint, false)
            }
            Protocol::Grpc => {
                let target = config.grpc_target()?;
                let wire = GrpcWire::new(&target, &config.transport, VENDOR)?;
                let binary = config.grpc_tensor_encoding == GrpcTensorEncoding::Content;
                let endpoint = wire.transport.endpoint().to_owned();
                (Wire::Grpc(Box::new(wire)), endpoint, binary)
            }
        };
        Ok(TfServingClient {
            inner: Arc::new(Inner {
                info: ConnectorInfo::new(
                    VENDOR,
                    protocol.info_name(crate::config::INFO_NAMES),
                    endpoint,
                )
                .with_binary_tensors(binary_tensors),
                wire,
                signature: config.signature_name,
                version: config.version,
                format: config.request_format,
                encoding: config.grpc_tensor_encoding,
                health_model: config.health_model,
                metadata_api: config.metadata_api,
                hints: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A client for the target's endpoint and configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        TfServingClient::new(TfServingConfig::from_target(target)?)
    }

    /// Vendor, protocol and endpoint.
    pub fn info(&self) -> &ConnectorInfo {
        &self.inner.info
    }

    /// Whether the server's metadata and model-status API is used (`metadata_api`).
    pub fn has_metadata_api(&self) -> bool {
        self.inner.metadata_api
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> Protocol {
        match self.inner.wire {
            Wire::Rest(_) => Protocol::Rest,
            Wire::Grpc(_) => Protocol::Grpc,
        }
    }

    fn tag(&self, e: Error, model: Option<&ModelRef>) -> Error {
        let e = self.inner.info.tag(e);
        match model {
            Some(m) => e.with_model(m),
            None => e,
        }
    }

    fn version(&self, model: &ModelRef) -> Result<VersionChoice> {
        VersionChoice::for_model(model, &self.inner.version).map_err(|e| self.tag(e, Some(model)))
    }

    fn signature_of(&self, request: Option<&InferRequest>) -> Result<Option<String>> {
        match request.and_then(|r| r.parameters.get(SIGNATURE_PARAMETER)) {
            None => Ok(self.inner.signature.clone()),
            Some(Parameter::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid_at(
                format!("parameters.{SIGNATURE_PARAMETER}"),
                "the signature name must be a non-empty string",
            )),
        }
    }

    async fn rest_get(
        &self,
        http: &HttpTransport,
        model: &ModelRef,
        path: String,
    ) -> Result<HttpResponse> {
        http.send(RequestSpec::get(path).model(model.to_string()))
            .await
    }

    /// The status of a model's versions (`GET /v1/models/NAME[/versions/N]`,
    /// `ModelService/GetModelStatus`). An unknown model is [`ErrorKind::NotFound`].
    pub async fn model_status(&self, model: &ModelRef) -> Result<Vec<VersionStatus>> {
        self.require_metadata_api("model version status")?;
        self.status_call(model).await
    }

    fn require_metadata_api(&self, what: &str) -> Result<()> {
        if self.inner.metadata_api {
            Ok(())
        } else {
            Err(inferlink_core::connector::unsupported(
                &self.inner.info,
                &format!("{what} (configured with metadata_api: false)"),
            ))
        }
    }

    async fn status_call(&self, model: &ModelRef) -> Result<Vec<VersionStatus>> {
        let version = self.version(model)?;
        match &self.inner.wire {
            Wire::Rest(http) => {
                let resp = self
                    .rest_get(http, model, rest_path(model, &version, None, None)?)
                    .await?;
                codec::decode_status(resp.body()).map_err(|e| resp.decorate(e).with_model(model))
            }
            Wire::Grpc(g) => {
                g.status(model, grpc::model_spec(model, &version, None))
                    .await
            }
        }
    }

    /// Every signature of a model (`GET …/metadata`, `GetModelMetadata`).
    pub async fn signatures(&self, model: &ModelRef) -> Result<TfModelMetadata> {
        self.require_metadata_api("model metadata")?;
        let version = self.version(model)?;
        match &self.inner.wire {
            Wire::Rest(http) => {
                let path = rest_path(model, &version, None, Some("metadata"))?;
                let resp = self.rest_get(http, model, path).await?;
                codec::decode_metadata(resp.body()).map_err(|e| resp.decorate(e).with_model(model))
            }
            Wire::Grpc(g) => {
                g.metadata(model, grpc::model_spec(model, &version, None))
                    .await
            }
        }
    }

    /// The configured signature's inputs and outputs as common metadata.
    pub async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        let md = self.signatures(model).await?;
        let mut common = md
            .to_common(self.inner.signature.as_deref())
            .map_err(|e| self.tag(e, Some(model)))?;
        if common.name.is_empty() {
            common.name = model.name.clone();
        }
        Ok(common)
    }

    /// True when a version of the model (the addressed one) is `AVAILABLE`.
    pub async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        let status = self.model_status(model).await?;
        Ok(status.iter().any(|s| s.state == ModelState::Available))
    }

    /// Live and ready (see `docs/connectors/tfserving.md`, "Health"): TF
    /// Serving has no health call, so this asks for the status of
    /// `health_model` (ready: a version is `AVAILABLE`) or, without one, of a
    /// model that does not exist (any answer from the server means serving).
    pub async fn health(&self) -> Result<Health> {
        let (model, configured) = match &self.inner.health_model {
            Some(m) => (ModelRef::new(m.clone()), true),
            None => (ModelRef::new(PROBE_MODEL), false),
        };
        // Health asks even when metadata_api is false: any answer proves liveness.
        match self.status_call(&model).await {
            Ok(status) => Ok(Health {
                live: true,
                ready: !configured || status.iter().any(|s| s.state == ModelState::Available),
            }),
            Err(e) => match e.kind() {
                ErrorKind::NotFound => Ok(Health {
                    live: true,
                    ready: !configured,
                }),
                // The server answered but has no ModelService (pythie-serving)
                // or fails the call itself: it is up; readiness cannot be asked.
                ErrorKind::Unsupported | ErrorKind::ModelError | ErrorKind::InvalidInput => {
                    Ok(Health::SERVING)
                }
                ErrorKind::Unavailable if !e.is_retryable() => Ok(Health {
                    live: true,
                    ready: false,
                }),
                _ => Err(e),
            },
        }
    }

    async fn output_hints(
        &self,
        model: &ModelRef,
        version: &VersionChoice,
        signature: Option<&str>,
    ) -> Arc<BTreeMap<String, DataType>> {
        let key = (
            model.name.clone(),
            version.clone(),
            signature.map(str::to_owned),
        );
        if let Some(h) = self
            .inner
            .hints
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return h;
        }
        let hints = match self.signatures(model).await {
            Ok(md) => md.output_types(signature),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::RateLimited
                ) =>
            {
                // Transient: decode by value this time, ask again next time.
                return Arc::new(BTreeMap::new());
            }
            Err(_) => BTreeMap::new(),
        };
        let hints = Arc::new(hints);
        if let Ok(mut m) = self.inner.hints.lock() {
            if m.len() > 1024 {
                m.clear();
            }
            m.insert(key, Arc::clone(&hints));
        }
        hints
    }

    /// Runs `Predict` (REST `:predict` or gRPC) with the configured signature
    /// (or the request parameter `signature_name`).
    pub async fn predict(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let version = self.version(model)?;
        let signature = self
            .signature_of(Some(&request))
            .map_err(|e| self.tag(e, Some(model)))?;
        let mut response = match &self.inner.wire {
            Wire::Rest(http) => {
                let body = codec::encode_predict_request(
                    &request,
                    self.inner.format,
                    signature.as_deref(),
                )
                .map_err(|e| self.tag(e, Some(model)))?;
                let mut spec =
                    RequestSpec::post(rest_path(model, &version, Some("predict"), None)?, body)
                        .content_type(codec::JSON)
                        .model(model.to_string());
                if request.idempotent {
                    spec = spec.idempotent();
                }
                let resp = http.send(spec).await?;
                let hints = self
                    .output_hints(model, &version, signature.as_deref())
                    .await;
                codec::decode_predict_response(resp.body(), &hints, &request)
                    .map_err(|e| resp.decorate(e).with_model(model))?
            }
            Wire::Grpc(g) => {
                let outputs: Vec<String> = request.outputs.iter().map(|o| o.name.clone()).collect();
                let message = grpc::predict_request(
                    grpc::model_spec(model, &version, signature.as_deref()),
                    &request.inputs,
                    &outputs,
                    self.inner.encoding,
                )
                .map_err(|e| self.tag(e, Some(model)))?;
                let idempotency = Idempotency::marked(request.idempotent);
                let r = g.predict(model, message, idempotency).await?;
                let (outputs, version) =
                    grpc::predict_outputs(r).map_err(|e| self.tag(e, Some(model)))?;
                InferResponse {
                    model_version: version.map(|v| v.to_string()),
                    outputs,
                    ..InferResponse::default()
                }
            }
        };
        response.model_name = model.name.clone();
        Ok(response)
    }

    /// Classifies examples (`:classify`, `Classify`): per example, its classes.
    pub async fn classify(&self, model: &ModelRef, examples: &Examples) -> Result<Vec<Vec<Class>>> {
        match self.send_examples(model, "classify", examples).await? {
            ExamplesCall::Rest(resp) => codec::decode_classify_response(resp.body())
                .map_err(|e| resp.decorate(e).with_model(model)),
            ExamplesCall::Grpc(g, spec) => g.classify(model, spec, examples).await,
        }
    }

    /// Regresses examples (`:regress`, `Regress`): one value per example.
    pub async fn regress(&self, model: &ModelRef, examples: &Examples) -> Result<Vec<f32>> {
        match self.send_examples(model, "regress", examples).await? {
            ExamplesCall::Rest(resp) => codec::decode_regress_response(resp.body())
                .map_err(|e| resp.decorate(e).with_model(model)),
            ExamplesCall::Grpc(g, spec) => g.regress(model, spec, examples).await,
        }
    }

    /// What `classify` and `regress` share: the version choice and the
    /// examples' check, then over REST the `:<verb>` request sent, over gRPC
    /// the model spec the call names (the call itself is the verb's own).
    async fn send_examples(
        &self,
        model: &ModelRef,
        verb: &str,
        examples: &Examples,
    ) -> Result<ExamplesCall<'_>> {
        let version = self.version(model)?;
        examples.check().map_err(|e| self.tag(e, Some(model)))?;
        let signature = self.inner.signature.as_deref();
        match &self.inner.wire {
            Wire::Rest(http) => {
                let body = codec::encode_examples(examples, signature)
                    .map_err(|e| self.tag(e, Some(model)))?;
                let spec = RequestSpec::post(rest_path(model, &version, Some(verb), None)?, body)
                    .content_type(codec::JSON)
                    .model(model.to_string())
                    .idempotent();
                Ok(ExamplesCall::Rest(http.send(spec).await?))
            }
            Wire::Grpc(g) => Ok(ExamplesCall::Grpc(
                g,
                grpc::model_spec(model, &version, signature),
            )),
        }
    }

    /// Sends a pre-encoded JSON body to the model's REST `:predict` URL
    /// (REST only) and returns the answer as is.
    pub async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let Wire::Rest(http) = &self.inner.wire else {
            return Err(inferlink_core::connector::unsupported(
                &self.inner.info,
                "raw invocation over gRPC (use infer)",
            ));
        };
        let version = self.version(model)?;
        let path = rest_path(model, &version, Some("predict"), None)?;
        let spec = RequestSpec::new(Method::POST, path).model(model.to_string());
        let spec = kit::raw_request_spec(spec, request);
        let resp = http.send(spec).await?;
        Ok(RawResponse {
            content_type: resp.content_type().map(str::to_owned),
            headers: Vec::new(),
            body: resp.into_body(),
        })
    }
}

/// The [`InferenceConnector`] of a TensorFlow Serving server: the client
/// itself implements the capability families.
pub type TfServingConnector = TfServingClient;

inferlink_core::connector_families! {
    impl TfServingClient {
        TensorInference,
        /// REST only (a raw body needs an HTTP request).
        RawInvocation(inherent) if |c| c.protocol() == Protocol::Rest,
        /// Unless the record says the server has no metadata API (`metadata_api: false`).
        ModelDescription(inherent) if |c| c.has_metadata_api(),
        /// Model status is part of the metadata API (`metadata_api: false` turns both off).
        ModelReadiness(inherent) if |c| c.has_metadata_api(),
    }
}

#[async_trait]
impl TensorInference for TfServingClient {
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.predict(model, request).await
    }
}
