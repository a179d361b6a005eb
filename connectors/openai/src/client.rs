//! The connector: the typed text calls over the OpenAI-compatible HTTP API.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::{self, BoxStream};
use inferlink_core::connector::split::{split_embed, split_rerank};
use inferlink_core::transport::{Auth, HttpResponse, HttpTransport, HttpTransportBuilder};
use inferlink_core::transport::{Method, RequestSpec, TransportConfig, redact_url};
use inferlink_core::{ConnectTarget, ConnectorInfo, EmbedRequest, EmbedResponse, Embedding};
use inferlink_core::{Error, ErrorKind, GenerateDelta, GenerateInput, GenerateRequest};
use inferlink_core::{GenerateResponse, GenerateStream, Generation, Health};
use inferlink_core::{ModelInfo, ModelListing, ModelRef, RerankRequest, RerankResponse};
use inferlink_core::{Reranking, Result, StreamingGeneration, async_trait};
use serde_json::Value;

use crate::config::{ApiVariant, OpenAiConfig};
use crate::sse::{SseDecoder, SseEvent};
use crate::{VENDOR, codec, error};

/// A connector to one OpenAI-compatible server (or one Azure OpenAI resource).
///
/// `Debug` shows the configuration with the API key hidden.
#[derive(Debug)]
pub struct OpenAiConnector {
    http: HttpTransport,
    config: OpenAiConfig,
    info: ConnectorInfo,
    /// Put before the standard paths: `v1/` when the URL is the server's
    /// root, `openai/` for an Azure resource URL, else nothing.
    prefix: &'static str,
}

impl OpenAiConnector {
    /// A connector for the target's URL and configuration (nothing is sent
    /// yet). Errors: `Config` naming the key for a bad setting or URL.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let config = OpenAiConfig::from_target(target)?;
        let mut defaults = TransportConfig::default();
        if let Some(key) = &config.api_key {
            defaults.auth = match config.variant {
                ApiVariant::Openai => Auth::Bearer(key.clone()),
                ApiVariant::Azure => Auth::Header {
                    name: "api-key".to_owned(),
                    value: key.clone(),
                },
            };
        }
        let http = HttpTransportBuilder::for_target(target, defaults)?
            .vendor(VENDOR)
            .classifier(Arc::new(error::OpenAiClassifier))
            .build()?;
        let path = http.base_url().path();
        let prefix = match config.variant {
            ApiVariant::Openai if path == "/" => "v1/",
            ApiVariant::Azure if !path.ends_with("/openai/") => "openai/",
            _ => "",
        };
        let protocol = match config.variant {
            ApiVariant::Openai => "openai",
            ApiVariant::Azure => "azure-openai",
        };
        let info = ConnectorInfo::new(VENDOR, protocol, redact_url(http.base_url()));
        Ok(OpenAiConnector {
            http,
            config,
            info,
            prefix,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// Tags an error with vendor, endpoint and model.
    fn tag(&self, model: &ModelRef, e: Error) -> Error {
        self.info.tag(e).with_model(model)
    }

    /// A request for `path` with the organisation and project headers.
    fn spec(&self, method: Method, path: String) -> RequestSpec {
        self.headers(RequestSpec::new(method, path))
    }

    /// `spec` with the organisation and project headers.
    fn headers(&self, mut spec: RequestSpec) -> RequestSpec {
        if let Some(organization) = &self.config.organization {
            spec = spec.header("OpenAI-Organization", organization);
        }
        if let Some(project) = &self.config.project {
            spec = spec.header("OpenAI-Project", project);
        }
        spec
    }

    /// The POST of `body` to `endpoint` (`embeddings`, `chat/completions`, …)
    /// for `model`: under the API base, or under Azure's deployment path.
    /// Model versions do not exist here: one is `NotFound`, sent nowhere.
    fn post(&self, model: &ModelRef, endpoint: &str, body: &Value) -> Result<RequestSpec> {
        check_model(model)?;
        let spec = match self.config.variant {
            ApiVariant::Openai => self.spec(Method::POST, format!("{}{endpoint}", self.prefix)),
            ApiVariant::Azure => {
                let mut segments: Vec<&str> =
                    self.prefix.split('/').filter(|s| !s.is_empty()).collect();
                segments.extend(["deployments", model.name.as_str()]);
                segments.extend(endpoint.split('/'));
                // A deployment name such as `..` makes the spec refuse to send.
                let spec = RequestSpec::segments(Method::POST, &segments);
                self.headers(spec)
                    .query("api-version", &self.config.api_version)
            }
        };
        Ok(spec.json_body(body).model(model.to_string()))
    }

    /// Where the rerank endpoint is: `/…` under the URL as registered, else under the API base.
    fn rerank_endpoint(&self) -> String {
        let path = &self.config.rerank_path;
        match path.strip_prefix('/') {
            Some(rooted) => rooted.to_owned(),
            None => format!("{}{path}", self.prefix),
        }
    }

    /// `GET models` (Azure: `GET openai/models?api-version=…`).
    async fn list(&self) -> Result<HttpResponse> {
        let mut spec = self.spec(Method::GET, format!("{}models", self.prefix));
        if self.config.variant == ApiVariant::Azure {
            spec = spec.query("api-version", &self.config.api_version);
        }
        self.http.send(spec).await
    }

    /// The request of a generation: a chat to `chat/completions`, a prompt
    /// to `completions`, streamed or not.
    fn generate_spec(
        &self,
        model: &ModelRef,
        request: &GenerateRequest,
        stream: bool,
    ) -> Result<RequestSpec> {
        let usage = stream && self.config.stream_usage;
        let body = codec::generate_body(&model.name, request, stream, usage)?;
        let endpoint = match request.input {
            GenerateInput::Prompt(_) => "completions",
            GenerateInput::Chat(_) => "chat/completions",
        };
        self.post(model, endpoint, &body)
    }
}

impl OpenAiConnector {
    /// What this connector is.
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// `GET /v1/models` (the API has no health path): an answer is serving,
    /// a 503 is live but not ready, any other failure is the error.
    pub async fn health(&self) -> Result<Health> {
        match self.list().await {
            Ok(_) => Ok(Health::SERVING),
            Err(e) if e.context("status") == Some("503") => Ok(Health {
                live: true,
                ready: false,
            }),
            Err(e) => Err(self.info.tag(e)),
        }
    }
}

inferlink_core::connector_families! {
    impl OpenAiConnector {
        /// Azure's data plane lists the resource's base models, not the
        /// deployments a call names: no listing there.
        ModelListing if |c| c.config.variant == ApiVariant::Openai,
        /// When the record's `tasks` include embed.
        Embedding if |c| c.config.embeds,
        /// When the record's `tasks` include rerank.
        Reranking if |c| c.config.reranks,
        /// When the record's `tasks` include generate.
        Generation if |c| c.config.generates,
        /// Whenever it generates.
        StreamingGeneration if |c| c.config.generates,
    }
}

#[async_trait]
impl ModelListing for OpenAiConnector {
    /// `GET /v1/models`: each `id` as a model name.
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        let response = self.list().await.map_err(|e| self.info.tag(e))?;
        codec::decode_models(response.body()).map_err(|e| self.info.tag(response.decorate(e)))
    }
}

#[async_trait]
impl Embedding for OpenAiConnector {
    /// `POST /v1/embeddings` per part of the input (`embed_max_items`,
    /// `embed_max_bytes`, `embed_concurrency`), vectors in the configured
    /// encoding; resent on a retryable failure (embedding twice is harmless).
    async fn embed(&self, model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
        let normalize = request.normalize;
        let encoding = self.config.embedding_encoding;
        let answer = split_embed(self.config.split, request, |part| async move {
            let body = codec::embed_body(&model.name, &part, encoding);
            let spec = self.post(model, "embeddings", &body)?.idempotent();
            let response = self.http.send(spec).await?;
            let decoded = codec::decode_embeddings(response.body(), part.texts.len(), normalize);
            decoded.map_err(|e| response.decorate(e))
        });
        answer.await.map_err(|e| self.tag(model, e))
    }
}

#[async_trait]
impl Reranking for OpenAiConnector {
    /// `POST` to `rerank_path` in the `rerank_api` shape, per part of the
    /// documents; hits merged best first, `top_n` applied after the merge.
    async fn rerank(&self, model: &ModelRef, request: RerankRequest) -> Result<RerankResponse> {
        let endpoint = self.rerank_endpoint();
        let api = self.config.rerank_api;
        let answer = split_rerank(self.config.split, request, |part| {
            let endpoint = &endpoint;
            async move {
                let body = codec::rerank_body(&model.name, &part, api);
                check_model(model)?;
                let spec = self.spec(Method::POST, endpoint.clone()).json_body(&body);
                let response = self
                    .http
                    .send(spec.model(model.to_string()).idempotent())
                    .await?;
                let decoded =
                    codec::decode_rerank(response.body(), part.documents.len(), part.top_n);
                decoded.map_err(|e| response.decorate(e))
            }
        });
        answer.await.map_err(|e| self.tag(model, e))
    }
}

#[async_trait]
impl Generation for OpenAiConnector {
    /// `POST /v1/chat/completions` for a chat, `/v1/completions` for a
    /// prompt; the first choice's text. Not resent after it may have
    /// reached the server (generation costs, and differs, each time).
    async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse> {
        let tag = |e: Error| self.tag(model, e);
        let spec = self.generate_spec(model, &request, false).map_err(tag)?;
        let response = self.http.send(spec).await.map_err(tag)?;
        codec::decode_completion(response.body()).map_err(|e| tag(response.decorate(e)))
    }
}

#[async_trait]
impl StreamingGeneration for OpenAiConnector {
    /// The same request with `"stream": true` (and `stream_options` when
    /// `stream_usage`); the server-sent events become pieces as they
    /// arrive, up to `data: [DONE]`. An error event is a typed error item
    /// that ends the stream; a body that ends before `[DONE]` and before a
    /// finish reason is a `Protocol` error item.
    async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateStream> {
        let tag = |e: Error| self.tag(model, e);
        let spec = self.generate_spec(model, &request, true).map_err(tag)?;
        let spec = spec.header("Accept", "text/event-stream");
        let response = self.http.send_streaming(spec).await.map_err(tag)?;
        let (info, model) = (self.info.clone(), model.clone());
        let state = Pieces {
            body: response.into_body(),
            decoder: SseDecoder::new(self.config.max_event_bytes)
                .with_limit_name(crate::config::STREAM_MAX_EVENT_BYTES),
            ready: VecDeque::new(),
            ended: false,
            finished: false,
            done: false,
        };
        let pieces = stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        });
        Ok(pieces
            .map(move |item| item.map_err(|e| info.tag(e).with_model(&model)))
            .boxed())
    }
}

/// Model versions do not exist here: one is `NotFound`, sent nowhere; an
/// empty name is `InvalidInput`.
fn check_model(model: &ModelRef) -> Result<()> {
    if let Some(version) = &model.version {
        let why = format!("OpenAI-compatible servers have no model versions (asked for {version})");
        return Err(Error::not_found(why));
    }
    if model.name.trim().is_empty() {
        return Err(Error::invalid_at("model", "the model name is empty"));
    }
    Ok(())
}

/// The state of a streamed generation between pieces.
struct Pieces {
    body: BoxStream<'static, Result<bytes::Bytes>>,
    decoder: SseDecoder,
    /// Pieces decoded and not yet handed out.
    ready: VecDeque<Result<GenerateDelta>>,
    /// Nothing more is read: `[DONE]`, an error, or the body's end.
    ended: bool,
    /// A finish reason came.
    finished: bool,
    /// `data: [DONE]` came and the body's end has not been read yet.
    done: bool,
}

/// How long, after `data: [DONE]`, the body's end (the chunked terminator,
/// which servers write a moment later) is awaited. Read to its end, the
/// connection goes back to the pool; dropped early, it is closed and the
/// next call opens a new one (measured: a new connection on nearly every
/// streamed call). A server that keeps the body open after `[DONE]` delays
/// the stream's end by this much at most.
const DRAIN_LIMIT: Duration = Duration::from_millis(50);
/// Most bytes read and dropped after `data: [DONE]`.
const DRAIN_MAX_BYTES: usize = 64 * 1024;

/// Reads the body to its end, within [`DRAIN_LIMIT`] and
/// [`DRAIN_MAX_BYTES`]; whatever comes is dropped.
async fn drain(body: &mut BoxStream<'static, Result<bytes::Bytes>>) {
    let mut left = DRAIN_MAX_BYTES;
    let read_to_end = async {
        while let Some(Ok(chunk)) = body.next().await {
            left = left.saturating_sub(chunk.len());
            if left == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_LIMIT, read_to_end).await;
}

impl Pieces {
    /// The next piece, reading the body as needed; `None` at the end.
    async fn next(&mut self) -> Option<Result<GenerateDelta>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            if self.ended {
                if std::mem::take(&mut self.done) {
                    drain(&mut self.body).await;
                }
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    let events = self.decoder.feed(&chunk);
                    self.take(events);
                }
                Some(Err(e)) => self.fail(e),
                None => {
                    let last = self
                        .decoder
                        .finish()
                        .map(|event| event.into_iter().collect());
                    self.take(last);
                    if !self.ended && !self.finished {
                        let why = "the stream ended before [DONE] and before a finish reason";
                        self.fail(Error::new(ErrorKind::Protocol, why));
                    }
                    self.ended = true;
                }
            }
        }
    }

    fn fail(&mut self, e: Error) {
        self.ready.push_back(Err(e));
        self.ended = true;
    }

    fn take(&mut self, events: Result<Vec<SseEvent>>) {
        let events = match events {
            Ok(events) => events,
            Err(e) => return self.fail(e),
        };
        for event in events {
            if self.ended {
                return;
            }
            if event.data.trim() == "[DONE]" {
                self.ended = true;
                self.done = true;
            } else if let Some(e) = error::stream_error(event.name.as_deref(), &event.data) {
                self.fail(e);
            } else {
                match codec::decode_chunk(&event.data) {
                    Ok(Some(piece)) => {
                        self.finished |= piece.finish_reason.is_some();
                        self.ready.push_back(Ok(piece));
                    }
                    Ok(None) => {}
                    Err(e) => self.fail(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Pieces over `chunks`, then `rest` (which notes when it is read to its end).
    fn pieces(chunks: &[&'static str], rest: BoxStream<'static, Result<bytes::Bytes>>) -> Pieces {
        let head = stream::iter(
            chunks
                .iter()
                .map(|c| Ok(bytes::Bytes::from_static(c.as_bytes())))
                .collect::<Vec<_>>(),
        );
        Pieces {
            body: head.chain(rest).boxed(),
            decoder: SseDecoder::new(1024),
            ready: VecDeque::new(),
            ended: false,
            finished: false,
            done: false,
        }
    }

    const TEXT: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Red\"},\
                        \"finish_reason\":null}]}\n\n";

    #[tokio::test]
    async fn the_body_is_read_to_its_end_after_done_so_the_connection_is_kept() {
        let ended = Arc::new(AtomicBool::new(false));
        let noted = ended.clone();
        // What follows `[DONE]` on the wire: more bytes, then the end.
        let rest = stream::iter([Ok(bytes::Bytes::from_static(b"\n"))])
            .chain(stream::poll_fn(move |_| {
                noted.store(true, Ordering::SeqCst);
                std::task::Poll::Ready(None)
            }))
            .boxed();
        let mut p = pieces(&[TEXT, "data: [DONE]\n\n"], rest);
        assert_eq!(p.next().await.unwrap().unwrap().text, "Red");
        assert!(p.next().await.is_none());
        assert!(ended.load(Ordering::SeqCst), "the body's end was not read");
        assert!(p.next().await.is_none());
    }

    #[tokio::test]
    async fn a_body_left_open_after_done_still_ends_the_stream() {
        let mut p = pieces(&[TEXT, "data: [DONE]\n\n"], stream::pending().boxed());
        assert_eq!(p.next().await.unwrap().unwrap().text, "Red");
        // Bounded by DRAIN_LIMIT; the outer timeout only guards against a hang.
        let end = tokio::time::timeout(Duration::from_secs(10), p.next()).await;
        assert!(matches!(end, Ok(None)), "the stream did not end");
    }
}
