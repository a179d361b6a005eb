//! [`TorchServeClient`]: the wire calls (inference over REST or gRPC,
//! management over REST) and the [`InferenceConnector`] families over them
//! ([`TorchServeConnector`] is the same type).
//!
//! Every REST request goes through the shared [`HttpTransport`] (timeouts,
//! the one retry loop, TLS, error mapping) with the TorchServe
//! [`classifier`](crate::error::classifier); the `Authorization: Bearer`
//! header is added per request from the shared [`TokenKeys`], so a rotated
//! key is used from the next request on.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use inferlink_core::kit;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::transport::{HttpResponse, HttpTransport, Method, RequestSpec, redact_url};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, Error, ErrorKind, Health, InferRequest, InferResponse, ModelInfo,
    ModelRef, RawInvocation, RawRequest, RawResponse, RawStream, Result, Secret,
    StreamingInvocation,
};

use crate::codec;
use crate::config::{InferenceApi, Protocol, TorchServeConfig};
use crate::error::{classifier, explain_method_not_allowed};
use crate::grpc::GrpcWire;
use crate::keys::TokenKeys;
use crate::management::{
    ModelDescription, ModelPage, RegisterOptions, ScaleOptions, StatusMessage,
};

/// The vendor name in [`ConnectorInfo::vendor`] and error context.
pub const VENDOR: &str = "torchserve";

/// Pages [`TorchServeClient::list_all_models`] follows at most.
const MAX_PAGES: usize = 10_000;
/// Models per page when listing everything.
const PAGE_SIZE: u32 = 100;
/// Response headers kept in [`RawResponse::headers`].
const KEPT_HEADERS: &[&str] = &["x-request-id"];

/// A TorchServe client: inference (REST or gRPC), explanations and
/// KServe-mode routes (REST), and the management API (REST, when
/// `management_url` is configured).
///
/// Cheap to clone (connections and keys are shared).
#[derive(Debug, Clone)]
pub struct TorchServeClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ConnectorInfo,
    keys: TokenKeys,
    api: InferenceApi,
    inference: Wire,
    management: Option<HttpTransport>,
}

#[derive(Debug)]
enum Wire {
    Rest(HttpTransport),
    Grpc(Box<GrpcWire>),
}

impl TorchServeClient {
    /// A client for `config`, with its own key handle holding the configured keys.
    pub fn new(config: TorchServeConfig) -> Result<Self> {
        let keys = TokenKeys::new(config.inference_key.clone(), config.management_key.clone());
        TorchServeClient::with_keys(config, keys)
    }

    /// A client for the target's endpoint and configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        TorchServeClient::new(TorchServeConfig::from_target(target)?)
    }

    /// A client that reads its tokens from `keys` (shared with the caller;
    /// the keys in `config` are ignored).
    ///
    /// Nothing connects yet. Errors: [`ErrorKind::Config`] naming the key
    /// for unusable settings; [`ErrorKind::PermissionDenied`] when the
    /// endpoint policy refuses an endpoint.
    pub fn with_keys(config: TorchServeConfig, keys: TokenKeys) -> Result<Self> {
        config.validate()?;
        let protocol = config.protocol();
        let (inference, endpoint) = match protocol {
            Protocol::Rest => {
                let http = transport(&config.url, &config)?;
                let endpoint = redact_url(http.base_url());
                (Wire::Rest(http), endpoint)
            }
            Protocol::Grpc => {
                let target = config.grpc_target()?;
                let wire = GrpcWire::new(&target, &config.transport, VENDOR, keys.clone())?;
                let endpoint = wire.transport.endpoint().to_owned();
                (Wire::Grpc(Box::new(wire)), endpoint)
            }
        };
        let management = match &config.management_url {
            Some(url) => Some(transport(url, &config)?),
            None => None,
        };
        let protocol_name = match (protocol, config.inference_api) {
            (Protocol::Grpc, _) => "torchserve-grpc",
            (Protocol::Rest, InferenceApi::Predictions) => "torchserve-rest",
            (Protocol::Rest, InferenceApi::KServeV1) => "torchserve-rest+kserve-v1",
            (Protocol::Rest, InferenceApi::KServeV2) => "torchserve-rest+kserve-v2",
        };
        Ok(TorchServeClient {
            inner: Arc::new(Inner {
                info: ConnectorInfo::new(VENDOR, protocol_name, endpoint),
                keys,
                api: config.inference_api,
                inference,
                management,
            }),
        })
    }

    /// Vendor, protocol and endpoint.
    pub fn info(&self) -> &ConnectorInfo {
        &self.inner.info
    }

    /// Whether a management API is configured (`management_url`).
    pub fn has_management(&self) -> bool {
        self.inner.management.is_some()
    }

    /// The token handle this client reads on every request (update it to rotate keys).
    pub fn keys(&self) -> TokenKeys {
        self.inner.keys.clone()
    }

    /// The inference protocol.
    pub fn protocol(&self) -> Protocol {
        match self.inner.inference {
            Wire::Rest(_) => Protocol::Rest,
            Wire::Grpc(_) => Protocol::Grpc,
        }
    }

    fn rest(&self, what: &str) -> Result<&HttpTransport> {
        match &self.inner.inference {
            Wire::Rest(http) => Ok(http),
            Wire::Grpc(_) => Err(inferlink_core::connector::unsupported(
                &self.inner.info,
                &format!("{what} over gRPC (TorchServe offers it over REST only)"),
            )),
        }
    }

    fn management(&self, what: &str) -> Result<&HttpTransport> {
        self.inner.management.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{what} needs the management API: set management_url (e.g. \
                     http://host:8081) in the record's configuration"
                ),
            )
            .with_path(crate::config::keys::MANAGEMENT_URL)
            .with_vendor(VENDOR)
            .with_endpoint(self.inner.info.endpoint.clone())
        })
    }

    fn with_key(spec: RequestSpec, key: Option<Secret>) -> RequestSpec {
        match key {
            Some(k) => spec.secret_header(
                "authorization",
                &Secret::new(format!("Bearer {}", k.expose())),
            ),
            None => spec,
        }
    }

    async fn send_inference(
        &self,
        http: &HttpTransport,
        spec: RequestSpec,
    ) -> Result<HttpResponse> {
        http.send(Self::with_key(spec, self.inner.keys.inference()))
            .await
    }

    async fn send_management(&self, what: &str, spec: RequestSpec) -> Result<HttpResponse> {
        let http = self.management(what)?;
        http.send(Self::with_key(spec, self.inner.keys.management()))
            .await
            .map_err(|e| explain_method_not_allowed(e, what))
    }

    // ------------------------------------------------------------ inference

    /// `GET /ping` (gRPC `Ping`): 200 `Healthy` is live and ready; 500
    /// `Unhealthy` (a model has fewer workers than it needs) is live, not
    /// ready. A rejected token is [`ErrorKind::Unauthenticated`].
    pub async fn health(&self) -> Result<Health> {
        match &self.inner.inference {
            Wire::Rest(http) => match self.send_inference(http, RequestSpec::get("ping")).await {
                Ok(_) => Ok(Health::SERVING),
                Err(e) if e.context("status") == Some("500") => Ok(Health {
                    live: true,
                    ready: false,
                }),
                Err(e) => Err(e),
            },
            Wire::Grpc(g) => g.ping().await,
        }
    }

    /// Sends a raw payload to `POST /predictions/MODEL[/VERSION]` (gRPC:
    /// `Predictions` with the body as the `data` input) and returns the
    /// handler's answer as is.
    pub async fn predict(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        match &self.inner.inference {
            Wire::Rest(http) => {
                let spec = raw_spec(model_path("predictions", model), model, request);
                let resp = self.send_inference(http, spec).await?;
                Ok(raw_response(resp))
            }
            Wire::Grpc(g) => {
                let body = g.predict(model, request.body, request.idempotent).await?;
                Ok(RawResponse {
                    body,
                    content_type: None,
                    headers: Vec::new(),
                })
            }
        }
    }

    /// Sends a raw payload and returns the answer as it streams: one chunk
    /// per intermediate result of a streaming handler (REST: the chunks of a
    /// `Transfer-Encoding: chunked` answer; gRPC: `StreamPredictions`).
    pub async fn predict_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream> {
        match &self.inner.inference {
            Wire::Rest(http) => {
                let spec = raw_spec(model_path("predictions", model), model, request);
                let stream = http
                    .send_streaming(Self::with_key(spec, self.inner.keys.inference()))
                    .await?;
                let content_type = stream.content_type().map(str::to_owned);
                let headers = kept_headers(|n| stream.header(n));
                Ok(RawStream {
                    content_type,
                    headers,
                    body: stream.into_body(),
                })
            }
            Wire::Grpc(g) => {
                let body = g
                    .predict_stream(model, request.body, request.idempotent)
                    .await?;
                Ok(RawStream {
                    content_type: None,
                    headers: Vec::new(),
                    body,
                })
            }
        }
    }

    /// `POST /explanations/MODEL[/VERSION]` (REST only): the handler's
    /// explanation (Captum attributions for the stock handlers).
    pub async fn explain(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let http = self.rest("explanations")?;
        let spec = raw_spec(model_path("explanations", model), model, request);
        let resp = self.send_inference(http, spec).await?;
        Ok(raw_response(resp))
    }

    /// Tensor inference through the configured route (see [`crate::codec`]
    /// for the `/predictions` JSON mapping; `kserve-v2` uses the Open
    /// Inference Protocol JSON of `inferlink-oip`).
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let tag = |e: Error| self.inner.info.tag(e).with_model(model);
        let mut response = match (&self.inner.inference, self.inner.api) {
            (Wire::Grpc(g), _) => {
                let body = codec::encode_predictions(&request).map_err(tag)?;
                let answer = g.predict(model, body, request.idempotent).await?;
                codec::decode_predictions(&answer, &request).map_err(tag)?
            }
            (Wire::Rest(http), InferenceApi::Predictions) => {
                let body = codec::encode_predictions(&request).map_err(tag)?;
                let resp = self
                    .send_inference(
                        http,
                        json_spec(
                            model_path("predictions", model),
                            model,
                            body,
                            request.idempotent,
                        ),
                    )
                    .await?;
                codec::decode_predictions(resp.body(), &request).map_err(|e| resp.decorate(e))?
            }
            (Wire::Rest(http), InferenceApi::KServeV1) => {
                let body = codec::encode_kserve_v1(&request).map_err(tag)?;
                let path = vec![
                    "v1".to_owned(),
                    "models".to_owned(),
                    format!("{}:predict", model.name),
                ];
                let resp = self
                    .send_inference(http, json_spec(path, model, body, request.idempotent))
                    .await?;
                codec::decode_kserve_v1(resp.body(), &request).map_err(|e| resp.decorate(e))?
            }
            (Wire::Rest(http), InferenceApi::KServeV2) => {
                let encoded = inferlink_oip::codec::encode_infer_request(
                    &request,
                    inferlink_oip::TensorEncoding::Json,
                )
                .map_err(tag)?;
                let mut path = vec!["v2".to_owned(), "models".to_owned(), model.name.clone()];
                if let Some(v) = &model.version {
                    path.push("versions".to_owned());
                    path.push(v.clone());
                }
                path.push("infer".to_owned());
                let resp = self
                    .send_inference(
                        http,
                        json_spec(path, model, encoded.to_bytes(), request.idempotent),
                    )
                    .await?;
                inferlink_oip::codec::decode_infer_response(resp.body().clone(), None)
                    .map_err(|e| resp.decorate(e))?
            }
        };
        if response.model_name.is_empty() {
            response.model_name = model.name.clone();
        }
        Ok(response)
    }

    // ------------------------------------------------------------ management

    /// One page of `GET /models` (`limit` per page, 1–1000 server-side;
    /// `next_page_token` from the previous page).
    pub async fn list_models(
        &self,
        limit: u32,
        next_page_token: Option<&str>,
    ) -> Result<ModelPage> {
        let mut spec = RequestSpec::get("models").query("limit", limit.to_string());
        if let Some(t) = next_page_token {
            spec = spec.query("next_page_token", t);
        }
        let resp = self.send_management("listing models", spec).await?;
        resp.json()
    }

    /// Every registered model, following the pages (bounded).
    pub async fn list_all_models(&self) -> Result<Vec<crate::management::ListedModel>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list_models(PAGE_SIZE, token.as_deref()).await?;
            all.extend(page.models);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                _ => return Ok(all),
            }
        }
        Err(self.inner.info.tag(crate::error::protocol(format!(
            "the model list did not end after {MAX_PAGES} pages"
        ))))
    }

    /// `GET /models/NAME[/VERSION]`: the model's versions (one, or every
    /// version with `version: "all"`) with their workers.
    pub async fn describe_model(&self, model: &ModelRef) -> Result<Vec<ModelDescription>> {
        let spec = RequestSpec::segments(Method::GET, &as_strs(&model_path("models", model)))
            .model(model.to_string());
        let resp = self.send_management("describing a model", spec).await?;
        resp.json()
    }

    /// `POST /models?url=…`: registers a model archive. Needs the server's
    /// model API (`--enable-model-api`); without it the answer is
    /// [`ErrorKind::Unsupported`] saying so.
    pub async fn register_model(&self, options: &RegisterOptions) -> Result<StatusMessage> {
        let mut spec = RequestSpec::new(Method::POST, "models");
        for (k, v) in options.query() {
            spec = spec.query(k, v);
        }
        if let Some(name) = &options.model_name {
            spec = spec.model(name.clone());
        }
        let resp = self.send_management("registering a model", spec).await?;
        status_message(&resp)
    }

    /// `PUT /models/NAME[/VERSION]?min_worker=…`: scales a model's workers.
    pub async fn scale_workers(
        &self,
        model: &ModelRef,
        options: &ScaleOptions,
    ) -> Result<StatusMessage> {
        let mut spec = RequestSpec::segments(Method::PUT, &as_strs(&model_path("models", model)))
            .model(model.to_string());
        for (k, v) in options.query() {
            spec = spec.query(k, v);
        }
        let resp = self.send_management("scaling workers", spec).await?;
        status_message(&resp)
    }

    /// `PUT /models/NAME/VERSION/set-default`: makes `version` the one served
    /// when a request names no version.
    pub async fn set_default_version(&self, model: &str, version: &str) -> Result<StatusMessage> {
        let spec = RequestSpec::segments(Method::PUT, &["models", model, version, "set-default"])
            .model(format!("{model}@{version}"));
        let resp = self
            .send_management("setting the default version", spec)
            .await?;
        status_message(&resp)
    }

    /// `DELETE /models/NAME[/VERSION]`: unregisters a model (needs the model API).
    pub async fn unregister_model(&self, model: &ModelRef) -> Result<StatusMessage> {
        let spec = RequestSpec::segments(Method::DELETE, &as_strs(&model_path("models", model)))
            .model(model.to_string());
        let resp = self.send_management("unregistering a model", spec).await?;
        status_message(&resp)
    }

    /// Whether a model has a `READY` worker (from [`describe_model`](Self::describe_model)).
    pub async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        let versions = self.describe_model(model).await?;
        Ok(versions.iter().any(ModelDescription::has_ready_worker))
    }

    /// The models as [`ModelInfo`]s (name and registration URL's model; no state).
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        Ok(self
            .list_all_models()
            .await?
            .into_iter()
            .map(|m| ModelInfo {
                name: m.model_name,
                version: None,
                state: None,
            })
            .collect())
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `[prefix, name, version?]`.
fn model_path(prefix: &str, model: &ModelRef) -> Vec<String> {
    let mut v = vec![prefix.to_owned(), model.name.clone()];
    if let Some(version) = &model.version {
        v.push(version.clone());
    }
    v
}

fn raw_spec(path: Vec<String>, model: &ModelRef, request: RawRequest) -> RequestSpec {
    let spec = RequestSpec::segments(Method::POST, &as_strs(&path)).model(model.to_string());
    kit::raw_request_spec(spec, request)
}

fn json_spec(path: Vec<String>, model: &ModelRef, body: Bytes, idempotent: bool) -> RequestSpec {
    let mut spec = RequestSpec::segments(Method::POST, &as_strs(&path))
        .model(model.to_string())
        .content_type("application/json")
        .body(body);
    if idempotent {
        spec = spec.idempotent();
    }
    spec
}

fn kept_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|n| get(n).map(|v| ((*n).to_owned(), v.to_owned())))
        .collect()
}

fn raw_response(resp: HttpResponse) -> RawResponse {
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|n| resp.header(n).map(|v| ((*n).to_owned(), v.to_owned())))
        .collect();
    RawResponse {
        content_type: resp.content_type().map(str::to_owned),
        headers,
        body: resp.into_body(),
    }
}

fn status_message(resp: &HttpResponse) -> Result<StatusMessage> {
    if resp.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(StatusMessage {
            status: String::new(),
        });
    }
    resp.json()
}

fn transport(url: &str, config: &TorchServeConfig) -> Result<HttpTransport> {
    HttpTransport::builder(url)
        .vendor(VENDOR)
        .config(config.transport.clone())
        .classifier(classifier())
        .build()
}

/// The [`InferenceConnector`] of a TorchServe server: the client itself
/// implements the capability families.
///
/// | trait method | TorchServe call |
/// |---|---|
/// | `health` | `GET /ping` (gRPC `Ping`) |
/// | `models` | management `GET /models`, all pages (needs `management_url`) |
/// | `model_ready` | management `GET /models/NAME`: a worker is `READY` (needs `management_url`) |
/// | `infer` | `/predictions` with the JSON mapping of [`crate::codec`], or the KServe routes |
/// | `invoke` | `POST /predictions/MODEL[/VERSION]`, raw (gRPC `Predictions`) |
/// | `invoke_stream` | the same, streamed (gRPC `StreamPredictions`) |
/// | `model_metadata`, `infer_stream` | `Unsupported`: TorchServe declares no tensors |
///
/// Management and explanations are the client's own methods.
pub type TorchServeConnector = TorchServeClient;

inferlink_core::connector_families! {
    impl TorchServeClient {
        TensorInference(inherent),
        RawInvocation,
        /// Through the management API: only with `management_url`.
        ModelListing(inherent) if |c| c.has_management(),
        /// Through the management API: only with `management_url`.
        ModelReadiness(inherent) if |c| c.has_management(),
        StreamingInvocation,
    }
}

#[async_trait]
impl RawInvocation for TorchServeClient {
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.predict(model, request).await
    }
}

#[async_trait]
impl StreamingInvocation for TorchServeClient {
    async fn invoke_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream> {
        self.predict_stream(model, request).await
    }
}
