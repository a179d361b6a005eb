//! The connector: Bedrock Runtime's InvokeModel (raw, streamed, and the
//! typed embeddings), Converse and ConverseStream (typed generation), and
//! the agent runtime's Rerank.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use inferlink_core::connector::split::{SplitLimits, split_embed, split_rerank};
use inferlink_core::connector::{ByteStream, RawStream};
use inferlink_core::kit::eventstream::{self, Message, MessageKind};
use inferlink_core::transport::{
    Auth, HttpTransport, Method, RequestSpec, TransportConfig, redact_url,
};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, DataType, EmbedRequest, EmbedResponse, Embedding, Error,
    ErrorKind, GenerateRequest, GenerateResponse, GenerateStream, Generation, Health, InferRequest,
    InferResponse, ModelRef, RawInvocation, RawRequest, RawResponse, RerankRequest, RerankResponse,
    Reranking, Result, StreamingGeneration, StreamingInvocation, Tensor, async_trait,
};

use crate::auth::{self, Access};
use crate::config::{BedrockConfig, EmbedFormat, MAX_COHERE_TEXTS, MAX_RERANK_SOURCES, keys};
use crate::{VENDOR, codec, error};

/// The HTTP headers of the Bedrock Runtime API (lower case, as sent).
pub mod headers {
    /// InvokeModelWithResponseStream: the media type wanted back.
    pub const BEDROCK_ACCEPT: &str = "x-amzn-bedrock-accept";
    /// InvokeModelWithResponseStream answer: the model output's media type.
    pub const BEDROCK_CONTENT_TYPE: &str = "x-amzn-bedrock-content-type";
    /// InvokeModel: the guardrail trace (`ENABLED`, `DISABLED`, `ENABLED_FULL`).
    pub const TRACE: &str = "x-amzn-bedrock-trace";
    /// InvokeModel: the guardrail's id or ARN.
    pub const GUARDRAIL_IDENTIFIER: &str = "x-amzn-bedrock-guardrailidentifier";
    /// InvokeModel: the guardrail's version.
    pub const GUARDRAIL_VERSION: &str = "x-amzn-bedrock-guardrailversion";
    /// InvokeModel (request and answer): the latency profile.
    pub const PERFORMANCE_LATENCY: &str = "x-amzn-bedrock-performanceconfig-latency";
    /// InvokeModel (request and answer): the service tier.
    pub const SERVICE_TIER: &str = "x-amzn-bedrock-service-tier";
}

/// The largest InvokeModel body the API takes (25 000 000 bytes).
pub const MAX_BODY_BYTES: usize = 25_000_000;

/// The answer headers kept on raw responses and streams.
const KEPT_HEADERS: &[&str] = &[headers::PERFORMANCE_LATENCY, headers::SERVICE_TIER];

/// The name of the output tensor of `infer` (the vectors of an embedding model).
pub const EMBEDDING_OUTPUT: &str = "embedding";

/// The transport defaults of Bedrock connectors (under host settings and
/// the record's keys): a 120 s attempt timeout (long generations) and a
/// 300 s deadline.
pub fn default_transport() -> TransportConfig {
    let mut config = TransportConfig::default();
    config.timeout_request = Duration::from_secs(120);
    config.deadline = Duration::from_secs(300);
    config
}

/// A connector to Amazon Bedrock in one region (one runtime endpoint and
/// its agent runtime).
///
/// `Debug` shows the configuration with every secret hidden.
#[derive(Debug)]
pub struct BedrockConnector {
    runtime: HttpTransport,
    agent: HttpTransport,
    config: BedrockConfig,
    access: Access,
    info: ConnectorInfo,
}

impl BedrockConnector {
    /// A connector for the target (nothing is sent yet). Errors: `Config`
    /// naming the key for a bad setting, a bad URL, no region or no
    /// credentials ([`Access::for_target`]).
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let config = BedrockConfig::from_target(target)?;
        let access = Access::for_target(target, &config)?;
        let transport = default_transport().apply_target(target)?;
        BedrockConnector::with_access(&target.url, transport, config, access)
    }

    /// A connector to the runtime at `url` with `transport` settings that
    /// authenticates with `access` (e.g. a signer with a fixed time, for
    /// tests). Errors: `Config` for a bad URL or setting.
    pub fn with_access(
        url: &str,
        mut transport: TransportConfig,
        config: BedrockConfig,
        access: Access,
    ) -> Result<Self> {
        if let Access::Bearer { key, .. } = &access {
            check_bearer_url(url)?;
            transport.auth = Auth::Bearer(key.clone());
        }
        let mut builder = HttpTransport::builder(url)
            .vendor(VENDOR)
            .config(transport)
            .classifier(error::classifier());
        if let Access::Sigv4(signer) = &access {
            builder = builder.signer(Arc::new(signer.clone()));
        }
        let runtime = builder.build()?;
        let agent_url = match &config.agent_runtime_url {
            Some(url) => url.clone(),
            None => auth::agent_runtime_url(runtime.base_url().as_str()),
        };
        let mut agent = HttpTransport::builder(agent_url)
            .vendor(VENDOR)
            .config(runtime.config().clone())
            .classifier(error::classifier());
        if let Access::Sigv4(signer) = &access {
            agent = agent.signer(Arc::new(signer.clone()));
        }
        let agent = agent.build()?;
        let protocol = match access {
            Access::Sigv4(_) => "bedrock-runtime (SigV4)",
            Access::Bearer { .. } => "bedrock-runtime (API key)",
        };
        let info = ConnectorInfo::new(VENDOR, protocol, redact_url(runtime.base_url()));
        Ok(BedrockConnector {
            runtime,
            agent,
            config,
            access,
            info,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &BedrockConfig {
        &self.config
    }

    /// How requests are authenticated.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// What this connector is.
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// The Bedrock Runtime has no health call (the control plane's
    /// `GetFoundationModel` says whether a model is active): `Unsupported`.
    pub async fn health(&self) -> Result<Health> {
        Err(inferlink_core::connector::unsupported(
            &self.info,
            "health (the Bedrock Runtime API has no health call)",
        ))
    }

    fn tag(&self, model: &ModelRef, e: Error) -> Error {
        self.info.tag(e).with_model(model)
    }

    /// `POST /model/{modelId}/{operation}` with the model id as one
    /// segment, every byte but letters, digits and `-._~` percent-encoded
    /// (as AWS's SDKs encode a path label: `:` and `/` of ARNs too).
    fn model_spec(&self, model: &ModelRef, operation: &str) -> Result<RequestSpec> {
        check_model(model)?;
        let path = format!("model/{}/{operation}", path_label(&model.name));
        Ok(RequestSpec::new(Method::POST, path).model(model.name.clone()))
    }

    /// The Converse (or ConverseStream) request of a generation.
    fn converse_spec(
        &self,
        model: &ModelRef,
        request: &GenerateRequest,
        operation: &str,
    ) -> Result<RequestSpec> {
        let body = codec::converse_body(request, &self.config)?;
        Ok(self.model_spec(model, operation)?.json_body(&body))
    }

    /// The headers the record's settings add to InvokeModel calls (the
    /// guardrail only where `guardrail` is set), unless `present` already
    /// has them.
    fn setting_headers(
        &self,
        mut spec: RequestSpec,
        guardrail: bool,
        present: &[(String, String)],
    ) -> RequestSpec {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(g) = self.config.guardrail.as_ref().filter(|_| guardrail) {
            pairs.push((headers::GUARDRAIL_IDENTIFIER, &g.identifier));
            pairs.push((headers::GUARDRAIL_VERSION, &g.version));
            if let Some(trace) = g.trace {
                pairs.push((headers::TRACE, trace.header_value()));
            }
        }
        if let Some(latency) = self.config.latency {
            pairs.push((headers::PERFORMANCE_LATENCY, latency.as_str()));
        }
        if let Some(tier) = self.config.service_tier {
            pairs.push((headers::SERVICE_TIER, tier.as_str()));
        }
        for (name, value) in pairs {
            if !present.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                spec = spec.header(name, value);
            }
        }
        spec
    }

    /// The InvokeModel (or stream) request of a raw request.
    fn invoke_spec(
        &self,
        model: &ModelRef,
        request: RawRequest,
        stream: bool,
    ) -> Result<RequestSpec> {
        check_body(request.body.len())?;
        let operation = if stream {
            "invoke-with-response-stream"
        } else {
            "invoke"
        };
        let mut spec = self.model_spec(model, operation)?;
        spec = self.setting_headers(spec, true, &request.headers);
        if !request.content_type.is_empty() {
            spec = spec.content_type(&request.content_type);
        }
        if let Some(accept) = &request.accept {
            let name = if stream {
                headers::BEDROCK_ACCEPT
            } else {
                "accept"
            };
            spec = spec.header(name, accept);
        }
        for (name, value) in &request.headers {
            spec = spec.header(name, value);
        }
        if request.idempotent {
            spec = spec.idempotent();
        }
        Ok(spec.body(request.body))
    }

    /// One InvokeModel call embedding `part` in `format`.
    async fn embed_part(
        &self,
        model: &ModelRef,
        format: EmbedFormat,
        part: EmbedRequest,
    ) -> Result<EmbedResponse> {
        let body = codec::embed_body(format, &part, &self.config);
        let spec = self.model_spec(model, "invoke")?;
        let spec = self
            .setting_headers(spec, false, &[])
            .header("accept", "application/json")
            .json_body(&body)
            .idempotent();
        let response = self.runtime.send(spec).await?;
        let decoded =
            codec::decode_embeddings(format, response.body(), part.texts.len(), part.normalize);
        decoded.map_err(|e| response.decorate(e))
    }

    /// Opens an event stream: the request, the answer's head checked to be
    /// an event stream, its kept headers and model content type, and its
    /// messages.
    async fn open_stream(&self, model: &ModelRef, spec: RequestSpec) -> Result<OpenStream> {
        let response = self.runtime.send_streaming(spec).await?;
        if let Some(ct) = response.content_type()
            && !ct
                .to_ascii_lowercase()
                .starts_with(eventstream::CONTENT_TYPE)
        {
            let why = format!(
                "the stream has content type {ct:?}, not {}",
                eventstream::CONTENT_TYPE
            );
            return Err(response.decorate(Error::new(ErrorKind::Protocol, why)));
        }
        let (info, model) = (self.info.clone(), model.clone());
        let tag = move |e: Error| info.tag(e).with_model(&model);
        Ok(OpenStream {
            headers: kept_headers(|n| response.header(n).map(str::to_owned)),
            content_type: response
                .header(headers::BEDROCK_CONTENT_TYPE)
                .map(str::to_owned),
            messages: eventstream::messages(response.into_body(), tag),
        })
    }
}

/// An event stream whose head has arrived.
struct OpenStream {
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    messages: Messages,
}

/// The messages of a response stream.
type Messages = BoxStream<'static, Result<Message>>;

/// Model ids are 1 to 2048 visible characters; versions are part of the id
/// (`amazon.titan-embed-text-v2:0`), so a separate version is `NotFound`.
fn check_model(model: &ModelRef) -> Result<()> {
    if let Some(version) = &model.version {
        let why = format!(
            "Bedrock model ids carry their version (amazon.titan-embed-text-v2:0); \
             asked for version {version} apart"
        );
        return Err(Error::not_found(why));
    }
    let id = &model.name;
    let dots = id == "." || id == "..";
    if dots || id.is_empty() || id.len() > 2048 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        let why = "a Bedrock model id, ARN or inference profile is 1 to 2048 visible characters";
        return Err(Error::invalid_at("model", why));
    }
    Ok(())
}

/// A Bedrock API key travels in clear text in its header: like AWS's SDKs,
/// only over HTTPS (or to a loopback address, for local servers).
fn check_bearer_url(url: &str) -> Result<()> {
    let parsed = url::Url::parse(url.trim()).ok();
    let loopback = parsed.as_ref().is_some_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    });
    if parsed.is_some_and(|u| u.scheme() == "https") || loopback {
        return Ok(());
    }
    let why = "a Bedrock API key is sent only over https (or to a loopback address)";
    Err(inferlink_core::kit::config_error(keys::API_KEY, why))
}

/// `label` with every byte but ASCII letters, digits and `-._~` written as
/// `%XX`.
fn path_label(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for byte in label.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// InvokeModel's body limit (25 000 000 bytes), checked before sending.
fn check_body(len: usize) -> Result<()> {
    if len > MAX_BODY_BYTES {
        let why = format!("the body is {len} bytes; InvokeModel takes at most {MAX_BODY_BYTES}");
        return Err(Error::invalid(why).with_context("body_bytes", len.to_string()));
    }
    Ok(())
}

/// The kept headers of an answer, as `(name, value)` pairs.
fn kept_headers(header: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), header(name)?)))
        .collect()
}

inferlink_core::connector_families! {
    impl BedrockConnector {
        TensorInference(inherent),
        RawInvocation,
        StreamingInvocation,
        Embedding,
        /// Rerank goes to the agent runtime, which takes SigV4 only.
        Reranking if |c| matches!(c.access, Access::Sigv4(_)),
        Generation,
        StreamingGeneration,
    }
}

impl BedrockConnector {
    /// Tensor inference for embedding models: one `BYTES` input of texts
    /// (shape `[n]` or `[n, 1]`) becomes a typed embed call; the output is
    /// `embedding`, `FP32` of shape `[n, dimensions]`.
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let input = match request.inputs.as_slice() {
            [one] if one.datatype() == DataType::Bytes => one,
            _ => {
                let why = "Bedrock infers with embedding models only: one BYTES input of texts";
                return Err(self.tag(model, Error::invalid_at("inputs", why)));
            }
        };
        let shape = input.shape();
        if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
            let why = format!("the texts must have shape [n] or [n, 1], not {shape:?}");
            return Err(self.tag(model, Error::invalid_at("inputs[0].shape", why)));
        }
        let texts = input
            .to_byte_elements()?
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                String::from_utf8(b.to_vec())
                    .map_err(|_| Error::invalid_at(format!("inputs[0][{i}]"), "is not UTF-8 text"))
            })
            .collect::<Result<Vec<String>>>()
            .map_err(|e| self.tag(model, e))?;
        let embedded = self.embed(model, EmbedRequest::new(texts)).await?;
        let rows = embedded.vectors.len();
        let flat: Vec<f32> = embedded.vectors.into_iter().flatten().collect();
        let output = Tensor::new(EMBEDDING_OUTPUT, vec![rows, embedded.dimensions], flat)?;
        Ok(InferResponse {
            model_name: model.name.clone(),
            id: request.id,
            outputs: vec![output],
            ..InferResponse::default()
        })
    }
}

#[async_trait]
impl RawInvocation for BedrockConnector {
    /// `InvokeModel`: the body as it is, the record's guardrail, latency and
    /// tier as headers (the request's own headers win).
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let spec = self
            .invoke_spec(model, request, false)
            .map_err(|e| self.tag(model, e))?;
        let response = self
            .runtime
            .send(spec)
            .await
            .map_err(|e| self.tag(model, e))?;
        Ok(RawResponse {
            headers: kept_headers(|n| response.header(n).map(str::to_owned)),
            content_type: response.content_type().map(str::to_owned),
            body: response.into_body(),
        })
    }
}

#[async_trait]
impl StreamingInvocation for BedrockConnector {
    /// `InvokeModelWithResponseStream`: each `chunk` event's decoded bytes
    /// as one item; an exception event, a framing error or a truncated
    /// stream is an `Err` item that ends it.
    async fn invoke_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream> {
        let tag = |e: Error| self.tag(model, e);
        let spec = self.invoke_spec(model, request, true).map_err(tag)?;
        let open = self.open_stream(model, spec).await.map_err(tag)?;
        let (info, name) = (self.info.clone(), model.clone());
        let body: ByteStream = Box::pin(until_error(open.messages, move |message| {
            let tag = |e: Error| info.tag(e).with_model(&name);
            if let Some(e) = error::stream_error(&message) {
                return Some(Err(tag(e)));
            }
            match message.kind() {
                MessageKind::Event {
                    event_type: "chunk",
                } => Some(codec::decode_chunk(&message.payload).map_err(tag)),
                _ => None,
            }
        }));
        Ok(RawStream {
            headers: open.headers,
            content_type: open.content_type,
            body,
        })
    }
}

#[async_trait]
impl Embedding for BedrockConnector {
    /// InvokeModel with the model family's body (`embed_format`): Titan one
    /// text per request, Cohere up to 96 (and `embed_max_items`); resent on
    /// a retryable failure (embedding twice is harmless).
    async fn embed(&self, model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
        let Some(format) = self.config.embed_format.for_model(&model.name) else {
            let why = "cannot tell the embedding family from the model id; set embed_format \
                       to titan or cohere";
            return Err(self.tag(
                model,
                inferlink_core::kit::config_error(keys::EMBED_FORMAT, why),
            ));
        };
        let most = match format {
            EmbedFormat::Cohere => MAX_COHERE_TEXTS,
            _ => 1,
        };
        let limits = SplitLimits {
            max_items: self.config.split.max_items.min(most),
            ..self.config.split
        };
        let answer = split_embed(limits, request, |part| self.embed_part(model, format, part));
        answer.await.map_err(|e| self.tag(model, e))
    }
}

#[async_trait]
impl Reranking for BedrockConnector {
    /// The agent runtime's `POST /rerank`: the documents inline as text
    /// (1 000 per request at most), the model by ARN (a model id becomes a
    /// foundation-model ARN of the region).
    async fn rerank(&self, model: &ModelRef, request: RerankRequest) -> Result<RerankResponse> {
        let tag = |e: Error| self.tag(model, e);
        if !matches!(self.access, Access::Sigv4(_)) {
            let why = "rerank with an API key (the agent runtime's Rerank takes SigV4 only)";
            return Err(inferlink_core::connector::unsupported(&self.info, why).with_model(model));
        }
        check_model(model).map_err(tag)?;
        let arn = auth::model_arn(&model.name, self.access.region()).map_err(tag)?;
        let limits = SplitLimits {
            max_items: self.config.split.max_items.min(MAX_RERANK_SOURCES),
            ..self.config.split
        };
        let answer = split_rerank(limits, request, |part| {
            let arn = &arn;
            async move {
                let body = codec::rerank_body(arn, &part);
                let spec = RequestSpec::new(Method::POST, "rerank")
                    .json_body(&body)
                    .model(model.name.clone())
                    .idempotent();
                let response = self.agent.send(spec).await?;
                let decoded =
                    codec::decode_rerank(response.body(), part.documents.len(), part.top_n);
                decoded.map_err(|e| response.decorate(e))
            }
        });
        answer.await.map_err(tag)
    }
}

#[async_trait]
impl Generation for BedrockConnector {
    /// `Converse`: the text blocks of the answer, its stop reason and usage.
    /// Not resent after it may have reached the server.
    async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse> {
        let tag = |e: Error| self.tag(model, e);
        let spec = self
            .converse_spec(model, &request, "converse")
            .map_err(tag)?;
        let response = self.runtime.send(spec).await.map_err(tag)?;
        codec::decode_converse(response.body()).map_err(|e| tag(response.decorate(e)))
    }
}

#[async_trait]
impl StreamingGeneration for BedrockConnector {
    /// `ConverseStream`: each `contentBlockDelta`'s text as a piece, the
    /// `messageStop` reason and the `metadata` usage as pieces of their own.
    /// An exception event is a typed error item; a stream that ends before
    /// `messageStop` is a `Protocol` error item.
    async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateStream> {
        let tag = |e: Error| self.tag(model, e);
        let spec = self
            .converse_spec(model, &request, "converse-stream")
            .map_err(tag)?;
        let open = self.open_stream(model, spec).await.map_err(tag)?;
        let (info, name) = (self.info.clone(), model.clone());
        let pieces = until_error(open.messages, move |message| {
            let tag = |e: Error| info.tag(e).with_model(&name);
            if let Some(e) = error::stream_error(&message) {
                return Some(Err(tag(e)));
            }
            let MessageKind::Event { event_type } = message.kind() else {
                return None;
            };
            codec::decode_stream_event(event_type, &message.payload)
                .map_err(tag)
                .transpose()
        });
        Ok(require_stop(pieces, self.info.clone(), model.clone()))
    }
}

/// The items `map` makes of the messages (skipping `None`), up to and
/// including the first error.
fn until_error<T: Send + 'static>(
    messages: Messages,
    map: impl Fn(Message) -> Option<Result<T>> + Send + Sync + 'static,
) -> BoxStream<'static, Result<T>> {
    let state = Some((messages, map));
    let items = futures_util::stream::unfold(state, |state| async move {
        let (mut messages, map) = state?;
        loop {
            let item = match messages.next().await? {
                Ok(message) => map(message),
                Err(e) => Some(Err(e)),
            };
            match item {
                Some(Err(e)) => return Some((Err(e), None)),
                Some(ok) => return Some((ok, Some((messages, map)))),
                None => continue,
            }
        }
    });
    Box::pin(items)
}

/// `pieces`, with a `Protocol` error at the end when no piece carried a
/// finish reason and no error ended the stream.
fn require_stop(pieces: GenerateStream, info: ConnectorInfo, model: ModelRef) -> GenerateStream {
    let state = Some((pieces, false));
    let checked = futures_util::stream::unfold(state, move |state| {
        let (info, model) = (info.clone(), model.clone());
        async move {
            let (mut pieces, stopped) = state?;
            match pieces.next().await {
                Some(Ok(piece)) => {
                    let stopped = stopped || piece.finish_reason.is_some();
                    Some((Ok(piece), Some((pieces, stopped))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None if stopped => None,
                None => {
                    let why = "the stream ended before messageStop";
                    let e = info
                        .tag(Error::new(ErrorKind::Protocol, why))
                        .with_model(&model);
                    Some((Err(e), None))
                }
            }
        }
    });
    Box::pin(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_encoded_as_aws_sdks_encode_them() {
        assert_eq!(
            path_label("amazon.titan-embed-text-v2:0"),
            "amazon.titan-embed-text-v2%3A0"
        );
        assert_eq!(
            path_label("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x"
        );
        for bad in [".", "..", "", "a b", &"m".repeat(2049)] {
            assert!(check_model(&ModelRef::new(bad)).is_err(), "{bad}");
        }
        let versioned = ModelRef::new("m").with_version("1");
        assert_eq!(
            check_model(&versioned).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn api_keys_travel_over_https_or_loopback_only() {
        check_bearer_url("https://bedrock-runtime.us-east-1.amazonaws.com").unwrap();
        check_bearer_url("http://127.0.0.1:8080").unwrap();
        check_bearer_url("http://[::1]:8080").unwrap();
        let e = check_bearer_url("http://bedrock.internal.example").unwrap_err();
        assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some("api_key")));
        assert!(check_body(MAX_BODY_BYTES).is_ok());
        assert_eq!(
            check_body(MAX_BODY_BYTES + 1).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
