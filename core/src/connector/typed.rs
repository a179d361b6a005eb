//! Typed calls for text models: embeddings, reranking and generation.
//!
//! Search engines call these models through APIs that speak text, not
//! tensors (OpenAI-compatible servers, TEI, Triton's generate extension).
//! Each call is a capability family of its own, like the tensor families
//! ([`Embedding`], [`Reranking`], [`Generation`], [`StreamingGeneration`]):
//! a connector implements the ones its API offers and returns itself from
//! the matching `as_*` accessor of [`InferenceConnector`](super::InferenceConnector);
//! the calls on `dyn InferenceConnector` answer [`ErrorKind::Unsupported`]
//! for a family the connector lacks.
//!
//! Inputs larger than a server accepts are cut into requests by
//! [`super::split`].

use std::fmt;

use async_trait::async_trait;
use futures_core::stream::BoxStream;
use serde_json::{Map, Value};

use super::ModelRef;
use crate::error::{Error, ErrorKind, Result};

/// Tokens a call consumed, as far as the server reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the input (texts, prompt, query and documents).
    pub prompt_tokens: Option<u64>,
    /// Tokens generated.
    pub completion_tokens: Option<u64>,
    /// Both together.
    pub total_tokens: Option<u64>,
}

impl Usage {
    /// The sum of two reports: a count is known when either side knows it
    /// (saturating; an unknown count adds nothing).
    pub fn plus(self, other: Usage) -> Usage {
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
        Usage {
            prompt_tokens: add(self.prompt_tokens, other.prompt_tokens),
            completion_tokens: add(self.completion_tokens, other.completion_tokens),
            total_tokens: add(self.total_tokens, other.total_tokens),
        }
    }

    /// Sums optional reports: `None` when no part reported usage.
    pub fn sum(reports: impl IntoIterator<Item = Option<Usage>>) -> Option<Usage> {
        reports
            .into_iter()
            .flatten()
            .reduce(|total, part| total.plus(part))
    }
}

/// Texts to turn into vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmbedRequest {
    /// The texts, one vector each, in this order.
    pub texts: Vec<String>,
    /// The vector length wanted, for models that can shorten their vectors.
    pub dimensions: Option<u32>,
    /// Whether vectors should have unit length, for servers that let the caller choose.
    pub normalize: Option<bool>,
}

impl EmbedRequest {
    /// A request for these texts, with the server's default length and normalisation.
    pub fn new<S: Into<String>>(texts: impl IntoIterator<Item = S>) -> Self {
        EmbedRequest {
            texts: texts.into_iter().map(Into::into).collect(),
            dimensions: None,
            normalize: None,
        }
    }

    /// Asks for vectors of this length.
    pub fn dimensions(mut self, dimensions: u32) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// Asks for unit-length vectors (or raw ones with `false`).
    pub fn normalize(mut self, normalize: bool) -> Self {
        self.normalize = Some(normalize);
        self
    }

    /// The same settings for other texts (a part of a split request).
    pub fn with_texts(&self, texts: Vec<String>) -> Self {
        EmbedRequest {
            texts,
            dimensions: self.dimensions,
            normalize: self.normalize,
        }
    }
}

/// One vector per text of an [`EmbedRequest`], in its order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EmbedResponse {
    /// The vectors, one per text, all of [`EmbedResponse::dimensions`] numbers.
    pub vectors: Vec<Vec<f32>>,
    /// The length of every vector (0 for no vector).
    pub dimensions: usize,
    /// Whether the vectors have unit length, when the server says.
    pub normalized: Option<bool>,
    /// Tokens consumed, when the server reports them.
    pub usage: Option<Usage>,
}

impl EmbedResponse {
    /// The response holding `vectors`; an [`ErrorKind::Protocol`] error
    /// naming the first vector whose length differs from the first's.
    pub fn new(vectors: Vec<Vec<f32>>) -> Result<Self> {
        let dimensions = vectors.first().map_or(0, Vec::len);
        if let Some(i) = vectors.iter().position(|v| v.len() != dimensions) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "vector {i} has {} numbers, vector 0 has {dimensions}",
                    vectors[i].len()
                ),
            ));
        }
        Ok(EmbedResponse {
            vectors,
            dimensions,
            normalized: None,
            usage: None,
        })
    }

    /// Sets the usage reported.
    pub fn with_usage(mut self, usage: Option<Usage>) -> Self {
        self.usage = usage;
        self
    }

    /// Says whether the vectors have unit length.
    pub fn with_normalized(mut self, normalized: Option<bool>) -> Self {
        self.normalized = normalized;
        self
    }
}

/// A query and documents to order by relevance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RerankRequest {
    /// The query.
    pub query: String,
    /// The documents to score against the query.
    pub documents: Vec<String>,
    /// Keep only the best `top_n` hits; `None`: all.
    pub top_n: Option<usize>,
}

impl RerankRequest {
    /// A request scoring every document.
    pub fn new<S: Into<String>>(
        query: impl Into<String>,
        documents: impl IntoIterator<Item = S>,
    ) -> Self {
        RerankRequest {
            query: query.into(),
            documents: documents.into_iter().map(Into::into).collect(),
            top_n: None,
        }
    }

    /// Keeps only the best `top_n` hits.
    pub fn top_n(mut self, top_n: usize) -> Self {
        self.top_n = Some(top_n);
        self
    }

    /// The same query and `top_n` for other documents (a part of a split request).
    pub fn with_documents(&self, documents: Vec<String>) -> Self {
        RerankRequest {
            query: self.query.clone(),
            documents,
            top_n: self.top_n,
        }
    }
}

/// One scored document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankHit {
    /// The document's position in [`RerankRequest::documents`].
    pub index: usize,
    /// Its relevance; higher is more relevant (the scale is the model's).
    pub score: f64,
}

/// Scored documents, best first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RerankResponse {
    /// The hits, by falling score (ties by index).
    pub results: Vec<RerankHit>,
    /// Tokens consumed, when the server reports them.
    pub usage: Option<Usage>,
}

impl RerankResponse {
    /// The hits ordered best first (ties by index; a NaN score last), cut to `top_n`.
    pub fn new(mut results: Vec<RerankHit>, top_n: Option<usize>) -> Self {
        results.sort_by(|a, b| {
            let rank = |s: f64| if s.is_nan() { f64::NEG_INFINITY } else { s };
            rank(b.score)
                .total_cmp(&rank(a.score))
                .then(a.index.cmp(&b.index))
        });
        if let Some(n) = top_n {
            results.truncate(n);
        }
        RerankResponse {
            results,
            usage: None,
        }
    }

    /// Sets the usage reported.
    pub fn with_usage(mut self, usage: Option<Usage>) -> Self {
        self.usage = usage;
        self
    }
}

crate::config_words! {
    /// Who speaks a chat message.
    pub enum ChatRole for "role" {
        /// Instructions for the model.
        System = "system" | "developer",
        /// The user.
        User = "user",
        /// The model's earlier answers.
        Assistant = "assistant",
        /// A tool's result.
        Tool = "tool",
    }
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: ChatRole,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message of `role`.
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage::new(ChatRole::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage::new(ChatRole::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage::new(ChatRole::Assistant, content)
    }
}

/// What the model continues: a bare prompt or a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateInput {
    /// Text to complete.
    Prompt(String),
    /// Messages to answer.
    Chat(Vec<ChatMessage>),
}

/// How text is generated. Every setting is optional (the server's default).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling temperature (0: greedy).
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, in (0, 1].
    pub top_p: Option<f32>,
    /// Texts that end generation when produced.
    pub stop: Vec<String>,
    /// Seed for reproducible sampling, where the server supports it.
    pub seed: Option<u64>,
    /// Vendor parameters sent as given (e.g. `top_k`, `repeat_penalty`);
    /// names the connector sets itself are refused ([`GenerateOptions::check`]).
    pub extra: Map<String, Value>,
}

impl GenerateOptions {
    /// The typed settings that are set, as JSON values under the names
    /// OpenAI-style APIs give them (`max_tokens`, `temperature`, `top_p`,
    /// `seed`, `stop`), in that order; `extra` is not included.
    pub fn wire_fields(&self) -> Vec<(&'static str, Value)> {
        let stop = (!self.stop.is_empty()).then(|| Value::from(self.stop.clone()));
        [
            ("max_tokens", self.max_tokens.map(Value::from)),
            ("temperature", self.temperature.map(Value::from)),
            ("top_p", self.top_p.map(Value::from)),
            ("seed", self.seed.map(Value::from)),
            ("stop", stop),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }

    /// Checks the settings: finite temperature ≥ 0, `top_p` in (0, 1], no
    /// empty stop text, and no extra parameter named in `reserved` (the
    /// fields a connector writes itself, such as `model` or `stream`).
    /// Errors are [`ErrorKind::InvalidInput`] naming the setting.
    pub fn check(&self, reserved: &[&str]) -> Result<()> {
        if let Some(t) = self.temperature
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(Error::invalid_at(
                "temperature",
                "must be a finite number ≥ 0",
            ));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(Error::invalid_at("top_p", "must be in (0, 1]"));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(Error::invalid_at("stop", "a stop text must not be empty"));
        }
        if let Some(name) = self.extra.keys().find(|k| reserved.contains(&k.as_str())) {
            return Err(Error::invalid_at(
                format!("extra.{name}"),
                "this parameter is set by the connector; use the typed option",
            ));
        }
        Ok(())
    }
}

/// A generation request: the input and the options.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GenerateRequest {
    /// What the model continues.
    pub input: GenerateInput,
    /// How.
    pub options: GenerateOptions,
}

impl GenerateRequest {
    /// Completes a bare prompt.
    pub fn prompt(text: impl Into<String>) -> Self {
        GenerateRequest {
            input: GenerateInput::Prompt(text.into()),
            options: GenerateOptions::default(),
        }
    }

    /// Answers a chat.
    pub fn chat(messages: impl IntoIterator<Item = ChatMessage>) -> Self {
        GenerateRequest {
            input: GenerateInput::Chat(messages.into_iter().collect()),
            options: GenerateOptions::default(),
        }
    }

    /// Caps the tokens generated.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.options.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.options.temperature = Some(temperature);
        self
    }

    /// Sets the nucleus sampling mass.
    pub fn top_p(mut self, top_p: f32) -> Self {
        self.options.top_p = Some(top_p);
        self
    }

    /// Adds a stop text.
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.options.stop.push(stop.into());
        self
    }

    /// Sets the sampling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = Some(seed);
        self
    }

    /// Adds a vendor parameter.
    pub fn extra(mut self, name: impl Into<String>, value: Value) -> Self {
        self.options.extra.insert(name.into(), value);
        self
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinishReason {
    /// The model ended its answer or produced a stop text.
    Stop,
    /// The token limit was reached.
    Length,
    /// A content filter cut the answer.
    ContentFilter,
    /// The model called tools.
    ToolCalls,
    /// Another reason, as the server named it.
    Other(String),
}

impl FinishReason {
    /// The reason for a server's word (`stop`, `length`, `content_filter`,
    /// `tool_calls`/`function_call`; `eos` and `stop_sequence` mean stop;
    /// others are kept as [`FinishReason::Other`], bounded).
    pub fn from_word(word: &str) -> FinishReason {
        match word {
            "stop" | "eos" | "end_turn" | "stop_sequence" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            other => FinishReason::Other(crate::error::printable(other.to_owned(), 64)),
        }
    }

    /// The word for this reason.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(word) => word,
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Generated text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenerateResponse {
    /// The text.
    pub text: String,
    /// Why generation stopped, when the server says.
    pub finish_reason: Option<FinishReason>,
    /// Tokens consumed, when the server reports them.
    pub usage: Option<Usage>,
}

impl GenerateResponse {
    /// A response with this text.
    pub fn new(
        text: impl Into<String>,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> Self {
        GenerateResponse {
            text: text.into(),
            finish_reason,
            usage,
        }
    }
}

/// One piece of a streamed generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenerateDelta {
    /// Text produced since the previous piece (may be empty).
    pub text: String,
    /// Why generation stopped, on the last piece.
    pub finish_reason: Option<FinishReason>,
    /// Tokens consumed, on the piece that reports them (usually the last).
    pub usage: Option<Usage>,
}

impl GenerateDelta {
    /// A piece of text.
    pub fn new(
        text: impl Into<String>,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> Self {
        GenerateDelta {
            text: text.into(),
            finish_reason,
            usage,
        }
    }
}

/// The pieces of a streamed generation, in order; an `Err` item ends it.
pub type GenerateStream = BoxStream<'static, Result<GenerateDelta>>;

/// Texts to vectors.
#[async_trait]
pub trait Embedding: Send + Sync {
    /// One vector per text, in order.
    async fn embed(&self, model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse>;
}

/// Ordering documents by relevance to a query.
#[async_trait]
pub trait Reranking: Send + Sync {
    /// The documents' scores, best first.
    async fn rerank(&self, model: &ModelRef, request: RerankRequest) -> Result<RerankResponse>;
}

/// Generating text from a prompt or a chat.
#[async_trait]
pub trait Generation: Send + Sync {
    /// The whole generated text at once.
    async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse>;
}

/// Generating text that arrives piece by piece.
#[async_trait]
pub trait StreamingGeneration: Send + Sync {
    /// Yields the text as the server produces it. Errors before the first
    /// piece (bad input, unknown model) are returned here; later ones
    /// arrive as stream items.
    async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateStream>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connector::ConnectorLayer as _;
    use crate::connector::{
        ConnectorInfo, Health, InferenceConnector, RequireCapabilities, with_error_context,
    };

    /// Embeds only: every text's vector is its length.
    #[derive(Debug)]
    struct Lengths(ConnectorInfo);

    #[async_trait]
    impl InferenceConnector for Lengths {
        fn info(&self) -> &ConnectorInfo {
            &self.0
        }
        async fn health(&self) -> Result<Health> {
            Ok(Health::SERVING)
        }
        fn as_embedding(&self) -> Option<&dyn Embedding> {
            Some(self)
        }
    }

    #[async_trait]
    impl Embedding for Lengths {
        async fn embed(&self, _: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
            if request.texts.iter().any(String::is_empty) {
                return Err(Error::invalid("empty text"));
            }
            EmbedResponse::new(request.texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
    }

    #[tokio::test]
    async fn families_dispatch_on_dyn_and_missing_ones_are_unsupported() {
        let info = ConnectorInfo::new("lengths", "in-process", "http://127.0.0.1:1");
        let connector = with_error_context(Arc::new(Lengths(info)));
        let caps = connector.capabilities();
        assert!(caps.embed && !caps.rerank && !caps.generate && !caps.stream_generate);
        assert!(caps.letters().contains('E') && !caps.letters().contains('G'));
        let model = ModelRef::new("m");
        let answer = connector
            .embed(&model, EmbedRequest::new(["ab", "abc"]))
            .await;
        assert_eq!(answer.unwrap().vectors, vec![vec![2.0], vec![3.0]]);
        // The wrapper tags a family's errors with vendor and model.
        let e = connector
            .embed(&model, EmbedRequest::new([""]))
            .await
            .unwrap_err();
        assert_eq!((e.vendor(), e.model()), (Some("lengths"), Some("m")));
        let e = connector
            .rerank(&model, RerankRequest::new("q", ["d"]))
            .await
            .unwrap_err();
        assert_eq!((e.kind(), e.model()), (ErrorKind::Unsupported, Some("m")));
        let e = connector
            .generate(&model, GenerateRequest::prompt("p"))
            .await;
        assert_eq!(e.unwrap_err().kind(), ErrorKind::Unsupported);
        let e = connector
            .generate_stream(&model, GenerateRequest::prompt("p"))
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let needs = RequireCapabilities::new().embed().generate();
        let e = needs.layer(Arc::clone(&connector)).unwrap_err();
        assert!(e.message().contains("text generation") && !e.message().contains("embeddings"));
        assert!(RequireCapabilities::new().embed().layer(connector).is_ok());
    }

    #[test]
    fn usage_sums_known_counts() {
        let a = Usage {
            prompt_tokens: Some(3),
            ..Usage::default()
        };
        let b = Usage {
            prompt_tokens: Some(4),
            total_tokens: Some(u64::MAX),
            ..Usage::default()
        };
        let sum = Usage::sum([Some(a), None, Some(b), Some(b)]).unwrap();
        assert_eq!(sum.prompt_tokens, Some(11));
        assert_eq!(sum.completion_tokens, None);
        assert_eq!(sum.total_tokens, Some(u64::MAX));
        assert_eq!(Usage::sum([None, None]), None);
    }

    #[test]
    fn ragged_vectors_are_a_protocol_error() {
        let e = EmbedResponse::new(vec![vec![1.0, 2.0], vec![1.0]]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("vector 1"), "{e}");
        assert_eq!(EmbedResponse::new(Vec::new()).unwrap().dimensions, 0);
    }

    #[test]
    fn hits_sort_best_first_with_nan_last_and_cut() {
        let hit = |index, score| RerankHit { index, score };
        let r = RerankResponse::new(
            vec![hit(0, 0.5), hit(1, f64::NAN), hit(2, 0.9), hit(3, 0.5)],
            Some(3),
        );
        let order: Vec<usize> = r.results.iter().map(|h| h.index).collect();
        assert_eq!(order, vec![2, 0, 3]);
    }

    #[test]
    fn options_are_checked() {
        let ok = GenerateRequest::prompt("hi").temperature(0.0).top_p(1.0);
        assert!(ok.options.check(&["model"]).is_ok());
        let hot = GenerateRequest::prompt("hi").temperature(f32::NAN);
        assert_eq!(
            hot.options.check(&[]).unwrap_err().path(),
            Some("temperature")
        );
        let p = GenerateRequest::prompt("hi").top_p(0.0);
        assert_eq!(p.options.check(&[]).unwrap_err().path(), Some("top_p"));
        let stop = GenerateRequest::prompt("hi").stop("");
        assert!(stop.options.check(&[]).is_err());
        let sneaky = GenerateRequest::prompt("hi").extra("model", Value::from("other"));
        let e = sneaky.options.check(&["model", "stream"]).unwrap_err();
        assert_eq!(e.path(), Some("extra.model"));
    }

    #[test]
    fn finish_reasons_from_words() {
        assert_eq!(FinishReason::from_word("stop"), FinishReason::Stop);
        assert_eq!(FinishReason::from_word("length"), FinishReason::Length);
        assert_eq!(
            FinishReason::from_word("tool_calls"),
            FinishReason::ToolCalls
        );
        let odd = FinishReason::from_word("weird\nword");
        assert!(matches!(&odd, FinishReason::Other(w) if !w.contains('\n')));
    }
}
