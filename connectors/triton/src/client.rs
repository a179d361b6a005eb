//! [`TritonClient`] (also named [`TritonConnector`]): OIP plus Triton's
//! extensions, REST or gRPC, and the [`InferenceConnector`] families.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_core::stream::BoxStream;
use futures_util::StreamExt as _;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::transport::GrpcTransport;
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::transport::{HttpTransport, Method, RequestSpec};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, Error, ErrorKind, Health, InferRequest, InferResponse,
    InferStream, ModelInfo, ModelMetadata, ModelRef, Parameter, RawRequest, RawResponse, Result,
};
use inferlink_oip::codec::HEADER_CONTENT_LENGTH;
use inferlink_oip::grpc::{infer_request_to_proto, infer_response_from_proto};
use inferlink_oip::proto::{InferParameter, infer_parameter::ParameterChoice};
use inferlink_oip::{OipClient, Protocol, ServerMetadata, TensorEncoding, model_spec};

use crate::codec::{
    self, GenerateRequest, GenerateResponse, MetricSample, ModelConfig, ModelStatistics,
    RepositoryModel, SseParser, parse_metrics,
};
use crate::config::{Compression, TensorMode, TritonConfig};
use crate::error::{in_band, refine};
use crate::proto::{self, path};

/// The vendor name in [`ConnectorInfo`] and errors.
pub const VENDOR: &str = "triton";

/// A Triton client over REST or gRPC: the OIP calls of
/// [`inferlink_oip::OipClient`] plus the repository, statistics, model
/// configuration, streaming and generate extensions.
///
/// Cheap to clone (connections are shared).
#[derive(Debug, Clone)]
pub struct TritonClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    oip: OipClient,
    info: ConnectorInfo,
    mode: TensorMode,
    compression: Compression,
    idle: Duration,
    /// The metrics port's transport (`metrics_url`), if configured.
    metrics: Option<HttpTransport>,
}

impl TritonClient {
    /// A client for `config`. Nothing connects yet.
    ///
    /// Errors: [`ErrorKind::Config`] naming the key for unusable settings.
    pub fn new(config: TritonConfig) -> Result<Self> {
        let oip = OipClient::with_vendor(config.oip_with_token(), VENDOR)?;
        let mut info = oip.info().clone();
        if oip.protocol() == Protocol::Rest {
            info.binary_tensors = config.tensor_mode != TensorMode::Fixed(TensorEncoding::Json);
        }
        let metrics = match &config.metrics_url {
            Some(url) => Some(
                HttpTransport::builder(url.clone())
                    .vendor(VENDOR)
                    .config(config.oip.transport.clone())
                    .build()?,
            ),
            None => None,
        };
        Ok(TritonClient {
            inner: Arc::new(Inner {
                oip,
                info,
                mode: config.tensor_mode,
                compression: config.compression,
                idle: config.oip.transport.timeout_request,
                metrics,
            }),
        })
    }

    /// A client for the target's endpoint and configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        TritonClient::new(TritonConfig::from_target(target)?)
    }

    /// Vendor (`triton`), protocol and endpoint.
    pub fn info(&self) -> &ConnectorInfo {
        &self.inner.info
    }

    /// Triton's Prometheus metrics (`GET /metrics` on the metrics port,
    /// `metrics_url`): inference counts and durations per model and version
    /// (`nv_inference_request_success{model=…,version=…}`, …), parsed with
    /// [`crate::codec::parse_metrics`].
    ///
    /// Triton serves them on their own port (8002 by default), not on the
    /// HTTP port (which answers 404), so this needs `metrics_url`; without it
    /// the error is [`ErrorKind::Unsupported`](inferlink_core::ErrorKind::Unsupported)
    /// naming the key. Metrics are not restricted: the access token is not
    /// sent there.
    pub async fn metrics(&self) -> Result<Vec<MetricSample>> {
        let Some(http) = &self.inner.metrics else {
            return Err(self.unsupported(
                "metrics without metrics_url (Triton serves /metrics on its metrics port, \
                 8002 by default; set metrics_url to it)",
            ));
        };
        let resp = http
            .send(
                RequestSpec::new(Method::GET, "/metrics")
                    .header("accept", "text/plain")
                    .idempotent(),
            )
            .await?;
        let text = std::str::from_utf8(resp.body()).map_err(|_| {
            resp.decorate(inferlink_core::Error::new(
                inferlink_core::ErrorKind::Protocol,
                "the metrics answer is not UTF-8 text",
            ))
        })?;
        parse_metrics(text).map_err(|e| resp.decorate(e))
    }

    /// The OIP client underneath.
    pub fn oip(&self) -> &OipClient {
        &self.inner.oip
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> Protocol {
        self.inner.oip.protocol()
    }

    fn unsupported(&self, what: &str) -> Error {
        inferlink_core::connector::unsupported(&self.inner.info, what)
    }

    fn http(&self, what: &str) -> Result<&HttpTransport> {
        self.inner
            .oip
            .http()
            .ok_or_else(|| self.unsupported(&format!("{what} over gRPC (HTTP only)")))
    }

    /// Live and ready.
    pub async fn health(&self) -> Result<Health> {
        self.inner.oip.health().await
    }

    /// Server name, version and extensions.
    pub async fn server_metadata(&self) -> Result<ServerMetadata> {
        self.inner.oip.server_metadata().await
    }

    /// A model's declared inputs and outputs.
    pub async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        self.inner.oip.model_metadata(model).await
    }

    /// Whether one model is ready (Triton answers 400 for "not ready" and
    /// for unknown models over REST: `false`).
    pub async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        self.inner.oip.model_ready(model).await
    }

    /// Runs inference. REST: inputs of at least `binary_threshold_bytes`
    /// go binary (outputs then come back binary), the rest JSON; the body is
    /// compressed per `request_compression`. gRPC: raw contents.
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let result = match self.inner.oip.http() {
            Some(http) => self.rest_infer(http, model, &request).await,
            None => self.inner.oip.infer(model, request).await,
        };
        result.map_err(refine)
    }

    async fn rest_infer(
        &self,
        http: &HttpTransport,
        model: &ModelRef,
        request: &InferRequest,
    ) -> Result<InferResponse> {
        let encoded = codec::encode_infer_request(request, self.inner.mode)
            .map_err(|e| self.inner.info.tag(e).with_model(model))?;
        let content_type = encoded.content_type();
        let mut spec = model_spec(Method::POST, model, Some("infer")).content_type(content_type);
        if let Some(n) = encoded.json_len {
            spec = spec.header(HEADER_CONTENT_LENGTH, &n.to_string());
        }
        // Uncompressed, the JSON header and binary tensors go out as separate
        // parts, never joined into one buffer.
        match codec::compress_parts(&encoded, self.inner.compression)? {
            Some(body) => {
                spec = spec
                    .header("content-encoding", self.inner.compression.as_str())
                    .body(body)
            }
            None => spec = spec.body_parts(encoded.into_parts()),
        }
        if request.idempotent {
            spec = spec.idempotent();
        }
        let resp = http.send(spec).await?;
        let mut out = inferlink_oip::decode_http_infer(&resp)?;
        if out.model_name.is_empty() {
            out.model_name = model.name.clone();
        }
        Ok(out)
    }

    /// Raw invocation of `POST …/infer` (REST only).
    pub async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.inner.oip.invoke(model, request).await.map_err(refine)
    }

    /// Streaming inference: every response as the server sends it.
    ///
    /// gRPC: one request on `ModelStreamInfer` (decoupled models answer
    /// 0..n times; others once); the stream ends at Triton's final-response
    /// flag. REST: the request goes to `generate_stream` in its
    /// [`GenerateRequest::from_infer`] form and each event comes back as a
    /// response ([`GenerateResponse::into_infer_response`]).
    pub async fn infer_stream(
        &self,
        model: &ModelRef,
        request: InferRequest,
    ) -> Result<InferStream> {
        match self.inner.oip.grpc() {
            Some(g) => self.grpc_stream(g, model, request).await,
            None => {
                let body = GenerateRequest::from_infer(&request)
                    .map_err(|e| self.inner.info.tag(e).with_model(model))?;
                let events = self.generate_stream(model, body).await?;
                Ok(events
                    .map(|item| item.and_then(GenerateResponse::into_infer_response))
                    .boxed())
            }
        }
    }

    async fn grpc_stream(
        &self,
        wire: &GrpcTransport,
        model: &ModelRef,
        request: InferRequest,
    ) -> Result<InferStream> {
        let mut message =
            infer_request_to_proto(model, &request).map_err(|e| wire.decorate(e, Some(model)))?;
        message.parameters.insert(
            "triton_enable_empty_final_response".into(),
            InferParameter {
                parameter_choice: Some(ParameterChoice::BoolParam(true)),
            },
        );
        // The request side stays open until the final response arrives (or
        // the consumer drops the stream), then half-closes.
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        let requests = futures_util::stream::once(async move { Some(message) })
            .chain(futures_util::stream::once(async move {
                let _ = closed.await;
                None
            }))
            .filter_map(|m| async move { m });
        let incoming = wire
            .streaming::<_, proto::ModelStreamInferResponse, _>(
                path::STREAM_INFER,
                requests,
                &[("triton_grpc_error", "true")],
                Some(model),
            )
            .await?;
        let state = GrpcStream {
            incoming,
            close: Some(close),
            wire: wire.clone(),
            model: model.clone(),
            idle: self.inner.idle,
        };
        let stream = futures_util::stream::unfold(state, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        });
        prime(stream.boxed()).await
    }

    // ---------------------------------------------------------------- generate

    /// The HTTP transport and the JSON `POST /v2/models/{m}/{route}` of a
    /// generate call (`generate` or `generate_stream`; REST only).
    fn generate_call(
        &self,
        model: &ModelRef,
        request: &GenerateRequest,
        route: &str,
    ) -> Result<(&HttpTransport, RequestSpec)> {
        let http = self.http(route)?;
        let body = request
            .to_json()
            .map_err(|e| self.inner.info.tag(e).with_model(model))?;
        let spec = model_spec(Method::POST, model, Some(route))
            .content_type(inferlink_oip::codec::JSON)
            .body(body);
        Ok((http, spec))
    }

    /// `POST /v2/models/{m}/generate`: one JSON answer (REST only).
    pub async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse> {
        let (http, spec) = self.generate_call(model, &request, "generate")?;
        let resp = http.send(spec).await.map_err(refine)?;
        GenerateResponse::from_json(resp.body()).map_err(|e| resp.decorate(e))
    }

    /// `POST /v2/models/{m}/generate_stream`: the server-sent events as
    /// they come (REST only). An error before the first event is the
    /// call's error; an `error` event later is an `Err` item that ends the
    /// stream.
    pub async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<BoxStream<'static, Result<GenerateResponse>>> {
        let (http, spec) = self.generate_call(model, &request, "generate_stream")?;
        let spec = spec.header("accept", "text/event-stream");
        let head = http.send_streaming(spec).await.map_err(refine)?;
        let tag = {
            let info = self.inner.info.clone();
            let model = model.clone();
            move |e: Error| info.tag(e).with_model(&model)
        };
        let state = SseStream {
            body: head.into_body(),
            parser: SseParser::new(),
            queue: std::collections::VecDeque::new(),
            ended: false,
        };
        let stream = futures_util::stream::unfold(state, move |mut s| {
            let tag = tag.clone();
            async move {
                let event = s.next().await?;
                let item = event.and_then(|data| GenerateResponse::from_json(&data).map_err(tag));
                Some((item, s))
            }
        });
        prime(stream.boxed()).await
    }

    // -------------------------------------------------------------- repository

    /// The models in the server's repository (`POST /v2/repository/index`,
    /// `RepositoryIndex`); `ready_only` lists only the loaded ones. A
    /// restricted API on PyTriton and secured servers: set `access_token`.
    pub async fn repository_index(&self, ready_only: bool) -> Result<Vec<RepositoryModel>> {
        match self.inner.oip.grpc() {
            Some(g) => {
                let r: proto::RepositoryIndexResponse = g
                    .unary(
                        path::REPOSITORY_INDEX,
                        proto::RepositoryIndexRequest {
                            repository_name: String::new(),
                            ready: ready_only,
                        },
                        Idempotency::Safe,
                        None,
                    )
                    .await?;
                Ok(r.models
                    .into_iter()
                    .map(|m| RepositoryModel {
                        name: m.name,
                        version: non_empty(m.version),
                        state: non_empty(m.state),
                        reason: non_empty(m.reason),
                    })
                    .collect())
            }
            None => {
                let http = self.http("repository index")?;
                let body = serde_json::json!({ "ready": ready_only }).to_string();
                let resp = http
                    .send(
                        RequestSpec::post("v2/repository/index", body)
                            .content_type(inferlink_oip::codec::JSON)
                            .idempotent(),
                    )
                    .await?;
                codec::decode_repository_index(resp.body()).map_err(|e| resp.decorate(e))
            }
        }
    }

    /// Loads (or reloads) a model from the repository; `config` (JSON of a
    /// Triton model configuration) overrides the repository's.
    pub async fn load_model(&self, name: &str, config: Option<&str>) -> Result<()> {
        let parameter = config.map(|c| ("config", RepositoryParameter::Text(c)));
        self.repository_action(name, RepositoryAction::Load, parameter)
            .await
    }

    /// Unloads a model; `unload_dependents` also unloads the models that
    /// depend on it (ensembles).
    pub async fn unload_model(&self, name: &str, unload_dependents: bool) -> Result<()> {
        let parameter = (
            "unload_dependents",
            RepositoryParameter::Flag(unload_dependents),
        );
        self.repository_action(name, RepositoryAction::Unload, Some(parameter))
            .await
    }

    /// A repository load or unload of model `name` with at most one
    /// parameter, over gRPC (`RepositoryModelLoad`/`Unload`) or REST
    /// (`POST v2/repository/models/<name>/load|unload`).
    async fn repository_action(
        &self,
        name: &str,
        action: RepositoryAction,
        parameter: Option<(&str, RepositoryParameter<'_>)>,
    ) -> Result<()> {
        let model = ModelRef::new(name);
        match self.inner.oip.grpc() {
            Some(g) => {
                let parameters = parameter
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value.to_proto()))
                    .collect();
                let request = proto::RepositoryModelRequest {
                    repository_name: String::new(),
                    model_name: name.to_owned(),
                    parameters,
                };
                let _: proto::Empty = g
                    .unary(action.grpc_path(), request, Idempotency::Safe, Some(&model))
                    .await?;
            }
            None => {
                let http = self.http(action.what())?;
                let body = match parameter {
                    Some((key, value)) => {
                        serde_json::json!({ "parameters": { key: value.to_json() } })
                    }
                    None => serde_json::json!({}),
                };
                let segments = ["v2", "repository", "models", name, action.rest_verb()];
                http.send(
                    RequestSpec::segments(Method::POST, &segments)
                        .model(name)
                        .content_type(inferlink_oip::codec::JSON)
                        .body(body.to_string())
                        .idempotent(),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Inference statistics of one model (every version, or the one named)
    /// or, with `None`, of every loaded model. Restricted on PyTriton.
    pub async fn model_statistics(&self, model: Option<&ModelRef>) -> Result<Vec<ModelStatistics>> {
        match self.inner.oip.grpc() {
            Some(g) => {
                let request = proto::ModelStatisticsRequest {
                    name: model.map(|m| m.name.clone()).unwrap_or_default(),
                    version: model.and_then(|m| m.version.clone()).unwrap_or_default(),
                };
                let r: proto::ModelStatisticsResponse = g
                    .unary(path::MODEL_STATISTICS, request, Idempotency::Safe, model)
                    .await?;
                Ok(r.model_stats.into_iter().map(stats_from_proto).collect())
            }
            None => {
                let http = self.http("statistics")?;
                let spec = match model {
                    Some(m) => model_spec(Method::GET, m, Some("stats")),
                    None => RequestSpec::get("v2/models/stats"),
                };
                let resp = http.send(spec).await?;
                codec::decode_statistics(resp.body()).map_err(|e| resp.decorate(e))
            }
        }
    }

    /// A model's Triton configuration: the summary over both protocols, the
    /// full JSON over REST.
    pub async fn model_config(&self, model: &ModelRef) -> Result<ModelConfig> {
        match self.inner.oip.grpc() {
            Some(g) => {
                let request = proto::ModelConfigRequest {
                    name: model.name.clone(),
                    version: model.version.clone().unwrap_or_default(),
                };
                let r: proto::ModelConfigResponse = g
                    .unary(path::MODEL_CONFIG, request, Idempotency::Safe, Some(model))
                    .await?;
                let c = r.config.unwrap_or_default();
                let tensor = |name: String, dt: i32, dims: Vec<i64>| codec::ConfigTensor {
                    name,
                    data_type: proto::data_type_name(dt),
                    dims,
                };
                Ok(ModelConfig {
                    name: c.name,
                    platform: c.platform,
                    backend: c.backend,
                    max_batch_size: i64::from(c.max_batch_size),
                    inputs: c
                        .input
                        .into_iter()
                        .map(|i| tensor(i.name, i.data_type, i.dims))
                        .collect(),
                    outputs: c
                        .output
                        .into_iter()
                        .map(|o| tensor(o.name, o.data_type, o.dims))
                        .collect(),
                    decoupled: c.model_transaction_policy.is_some_and(|p| p.decoupled),
                    stateful: Some(c.sequence_batching.is_some()),
                    json: None,
                })
            }
            None => {
                let http = self.http("model configuration")?;
                let resp = http
                    .send(model_spec(Method::GET, model, Some("config")))
                    .await?;
                codec::decode_model_config(resp.body()).map_err(|e| resp.decorate(e))
            }
        }
    }

    /// The models the server has: the repository index merged with the
    /// statistics of every loaded model (PyTriton loads its models through
    /// the repository API with their files inline, so its index does not
    /// list them; statistics do). Both are restricted APIs on PyTriton.
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        let index = self.repository_index(false).await?;
        let stats = self.model_statistics(None).await?;
        let mut merged: BTreeMap<(String, Option<String>), Option<String>> = BTreeMap::new();
        for m in index {
            if m.version.is_none() && merged.keys().any(|(n, _)| *n == m.name) {
                continue;
            }
            merged.insert((m.name, m.version), m.state);
        }
        for s in stats {
            let version = non_empty(s.version);
            merged.remove(&(s.name.clone(), None));
            merged
                .entry((s.name, version))
                .or_insert_with(|| Some("READY".to_owned()));
        }
        Ok(merged
            .into_iter()
            .map(|((name, version), state)| ModelInfo {
                name,
                version,
                state,
            })
            .collect())
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn stats_from_proto(s: proto::ModelStatistics) -> ModelStatistics {
    let d = |x: Option<proto::StatisticDuration>| {
        let x = x.unwrap_or_default();
        codec::DurationStat {
            count: x.count,
            ns: x.ns,
        }
    };
    let i = s.inference_stats.unwrap_or_default();
    ModelStatistics {
        name: s.name,
        version: s.version,
        last_inference: s.last_inference,
        inference_count: s.inference_count,
        execution_count: s.execution_count,
        inference_stats: codec::InferStats {
            success: d(i.success),
            fail: d(i.fail),
            queue: d(i.queue),
            compute_input: d(i.compute_input),
            compute_infer: d(i.compute_infer),
            compute_output: d(i.compute_output),
            cache_hit: d(i.cache_hit),
            cache_miss: d(i.cache_miss),
        },
    }
}

/// Reads the first item: an error there is the call's error; otherwise the
/// stream (first item included) ends after its first `Err` item.
async fn prime<T: Send + 'static>(
    mut stream: BoxStream<'static, Result<T>>,
) -> Result<BoxStream<'static, Result<T>>> {
    let first = match stream.next().await {
        None => return Ok(futures_util::stream::empty().boxed()),
        Some(Err(e)) => return Err(e),
        Some(Ok(v)) => v,
    };
    let rest = futures_util::stream::once(async move { Ok(first) }).chain(stream);
    Ok(rest
        .scan(false, |failed, item| {
            let out = if *failed {
                None
            } else {
                *failed = item.is_err();
                Some(item)
            };
            async move { out }
        })
        .boxed())
}

struct GrpcStream {
    incoming: tonic::Streaming<proto::ModelStreamInferResponse>,
    close: Option<tokio::sync::oneshot::Sender<()>>,
    wire: GrpcTransport,
    model: ModelRef,
    idle: Duration,
}

impl GrpcStream {
    /// The next response; `None` after the final one.
    async fn next(&mut self) -> Option<Result<InferResponse>> {
        loop {
            self.close.as_ref()?;
            let message = match tokio::time::timeout(self.idle, self.incoming.message()).await {
                Err(_) => {
                    self.close = None;
                    return Some(Err(self.wire.decorate(
                        Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "no stream response within {} ms (timeout_request_ms)",
                                self.idle.as_millis()
                            ),
                        ),
                        Some(&self.model),
                    )));
                }
                Ok(Err(status)) => {
                    self.close = None;
                    return Some(Err(self.wire.status_error(&status, Some(&self.model))));
                }
                Ok(Ok(None)) => {
                    self.close = None;
                    return None;
                }
                Ok(Ok(Some(m))) => m,
            };
            if !message.error_message.is_empty() {
                self.close = None;
                return Some(Err(self.wire.decorate(
                    in_band(
                        &message.error_message,
                        "the server reported an error in the stream",
                    ),
                    Some(&self.model),
                )));
            }
            let Some(response) = message.infer_response else {
                continue;
            };
            let is_final = response
                .parameters
                .get("triton_final_response")
                .and_then(|p| p.parameter_choice.as_ref())
                .is_some_and(|c| matches!(c, ParameterChoice::BoolParam(true)));
            if is_final {
                // Half-close the request side: the call is over.
                self.close = None;
                if response.outputs.is_empty() && response.raw_output_contents.is_empty() {
                    return None;
                }
            }
            let mut out = match infer_response_from_proto(response) {
                Ok(r) => r,
                Err(e) => {
                    self.close = None;
                    return Some(Err(self.wire.decorate(e, Some(&self.model))));
                }
            };
            out.parameters.remove("triton_final_response");
            if out.model_name.is_empty() {
                out.model_name = self.model.name.clone();
            }
            return Some(Ok(out));
        }
    }
}

struct SseStream {
    body: BoxStream<'static, Result<bytes::Bytes>>,
    parser: SseParser,
    queue: std::collections::VecDeque<bytes::Bytes>,
    ended: bool,
}

impl SseStream {
    async fn next(&mut self) -> Option<Result<bytes::Bytes>> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(Ok(e));
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => match self.parser.push(&chunk) {
                    Ok(events) => self.queue.extend(events),
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                },
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(e));
                }
                None => {
                    self.ended = true;
                    self.queue.extend(self.parser.finish());
                }
            }
        }
    }
}

/// The [`InferenceConnector`] of a Triton server: the client itself (the
/// families are implemented on [`TritonClient`], whose further methods are
/// Triton's calls beyond the trait).
pub type TritonConnector = TritonClient;

inferlink_core::connector_families! {
    impl TritonClient {
        TensorInference(inherent),
        /// REST only (a raw body needs an HTTP request).
        RawInvocation(inherent) if |c| c.protocol() == Protocol::Rest,
        ModelListing(inherent),
        ModelDescription(inherent),
        ModelReadiness(inherent),
        StreamingInference(inherent),
    }
}

/// Sets Triton's sequence parameters on a request (stateful models).
///
/// ```
/// use inferlink_core::{InferRequest, Tensor};
/// use inferlink_triton::Sequence;
///
/// let first = Sequence::new(42).start()
///     .apply(InferRequest::from(Tensor::from_vec("VALUE", vec![5i64])));
/// let last = Sequence::new(42).end()
///     .apply(InferRequest::from(Tensor::from_vec("VALUE", vec![1i64])));
/// # let _ = (first, last);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    id: SequenceId,
    start: bool,
    end: bool,
}

/// A sequence's correlation id: a number (not 0) or, where the server
/// advertises `sequence(string_id)`, a string (not empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceId {
    /// A numeric id.
    Number(u64),
    /// A string id.
    Text(String),
}

impl Sequence {
    /// A request in sequence `id` (neither start nor end).
    pub fn new(id: u64) -> Self {
        Sequence {
            id: SequenceId::Number(id),
            start: false,
            end: false,
        }
    }

    /// A request in the sequence with a string id.
    pub fn named(id: impl Into<String>) -> Self {
        Sequence {
            id: SequenceId::Text(id.into()),
            start: false,
            end: false,
        }
    }

    /// Marks the first request of the sequence (`sequence_start`).
    pub fn start(mut self) -> Self {
        self.start = true;
        self
    }

    /// Marks the last request of the sequence (`sequence_end`).
    pub fn end(mut self) -> Self {
        self.end = true;
        self
    }

    /// The request with `sequence_id`, `sequence_start`, `sequence_end` set.
    pub fn apply(&self, request: InferRequest) -> InferRequest {
        let id = match &self.id {
            SequenceId::Number(n) => match i64::try_from(*n) {
                Ok(i) => Parameter::Int(i),
                Err(_) => Parameter::Uint(*n),
            },
            SequenceId::Text(s) => Parameter::String(s.clone()),
        };
        request
            .with_parameter("sequence_id", id)
            .with_parameter("sequence_start", self.start)
            .with_parameter("sequence_end", self.end)
    }
}

/// Asks for `output` as Triton's classification of its top `k` values:
/// a BYTES tensor of `"<value>:<index>[:<label>]"` strings, highest first.
pub fn classification(request: InferRequest, output: &str, k: u32) -> InferRequest {
    let mut request = request;
    request.outputs.retain(|o| o.name != output);
    let mut out = inferlink_core::tensor::RequestedOutput::named(output);
    out.parameters
        .insert("classification".into(), Parameter::Int(i64::from(k)));
    request.outputs.push(out);
    request
}

/// The two repository actions on one model.
#[derive(Clone, Copy)]
enum RepositoryAction {
    Load,
    Unload,
}

impl RepositoryAction {
    fn grpc_path(self) -> &'static str {
        match self {
            RepositoryAction::Load => path::REPOSITORY_LOAD,
            RepositoryAction::Unload => path::REPOSITORY_UNLOAD,
        }
    }

    /// The last segment of the REST path.
    fn rest_verb(self) -> &'static str {
        match self {
            RepositoryAction::Load => "load",
            RepositoryAction::Unload => "unload",
        }
    }

    /// What the call is, for errors.
    fn what(self) -> &'static str {
        match self {
            RepositoryAction::Load => "model loading",
            RepositoryAction::Unload => "model unloading",
        }
    }
}

/// A repository request parameter, as both wires carry it.
#[derive(Clone, Copy)]
enum RepositoryParameter<'a> {
    Text(&'a str),
    Flag(bool),
}

impl RepositoryParameter<'_> {
    fn to_proto(self) -> proto::ModelRepositoryParameter {
        let choice = match self {
            RepositoryParameter::Text(text) => {
                proto::RepositoryParameterChoice::StringParam(text.to_owned())
            }
            RepositoryParameter::Flag(flag) => proto::RepositoryParameterChoice::BoolParam(flag),
        };
        proto::ModelRepositoryParameter {
            parameter_choice: Some(choice),
        }
    }

    fn to_json(self) -> serde_json::Value {
        match self {
            RepositoryParameter::Text(text) => text.into(),
            RepositoryParameter::Flag(flag) => flag.into(),
        }
    }
}
