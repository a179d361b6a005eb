//! # inferlink-openai
//!
//! The connector for servers that speak the OpenAI-compatible HTTP API:
//! OpenAI itself, Azure OpenAI, vLLM, llama.cpp and llama-cpp-python,
//! Ollama's `/v1`, Hugging Face TEI, SGLang, LiteLLM and DeepSeek. It gives
//! the typed text calls of `inferlink-core`, written on the kit alone:
//!
//! * [`Embedding`](inferlink_core::Embedding): `POST /v1/embeddings`
//!   (vectors as JSON floats or base64), inputs split by the
//!   `embed_max_*` keys;
//! * [`Generation`](inferlink_core::Generation) and
//!   [`StreamingGeneration`](inferlink_core::StreamingGeneration):
//!   `/v1/chat/completions` for a chat, `/v1/completions` for a prompt,
//!   streamed as server-sent events;
//! * [`Reranking`](inferlink_core::Reranking): the de-facto `/v1/rerank`,
//!   vLLM's `/score` or TEI's `/rerank`, where the record's `tasks` (or the
//!   product) say the server reranks;
//! * [`ModelListing`](inferlink_core::ModelListing): `GET /v1/models`.
//!
//! [`factory()`] serves the products in [`PRODUCTS`]; the product picks
//! defaults (`azure-openai` speaks Azure's dialect, `tei` reranks at
//! `/rerank` and does not generate, …). It refuses configuration keys that
//! neither [`KEYS`], the splitter nor the transport reads.
//! `docs/connectors/openai.md` describes keys, endpoints and errors.
//!
//! ```no_run
//! use inferlink_core::{ConnectTarget, Connectors, EmbedRequest, ModelRef};
//!
//! # async fn demo() -> inferlink_core::Result<()> {
//! let target = ConnectTarget::new("vllm", "http://127.0.0.1:8000/v1")
//!     .with_secret("api_key", "token-from-credentials");
//! let connector = Connectors::new().with(inferlink_openai::factory()).connect(&target).await?;
//! let model = ModelRef::new("intfloat/e5-small-v2");
//! let answer = connector.embed(&model, EmbedRequest::new(["a query", "a passage"])).await?;
//! assert_eq!(answer.vectors.len(), 2);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

use std::sync::Arc;

use inferlink_core::connector::split;
use inferlink_core::kit::{self, Key, KeySet};
use inferlink_core::transport::config::KEY_SET;

use crate::config::{API_KEY, API_VERSION, ApiVariant, EmbeddingEncoding, ORGANIZATION, PROJECT};
use crate::config::{RERANK_PATH, RerankApi, STREAM_MAX_EVENT_BYTES, STREAM_USAGE, TASKS};

mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod sse;

pub use client::OpenAiConnector;
pub use config::OpenAiConfig;

/// The vendor name in connector info and errors.
pub const VENDOR: &str = "openai";

/// Record products served: one factory, the product picks the defaults
/// ([`OpenAiConfig::for_product`]).
pub const PRODUCTS: &[&str] = &[
    "openai",
    "azure-openai",
    "vllm",
    "llama-cpp",
    "ollama",
    "tei",
    "sglang",
    "litellm",
    "deepseek",
];

/// Service resources served when no product matches (any other server of
/// the API, with OpenAI's defaults).
pub const RESOURCES: &[&str] = &["openai-compatible", "openai-api"];

/// The configuration keys of this connector (the transport's are in
/// `transport::config::KEY_SET`, the splitter's in `connector::split::KEYS`).
pub const KEYS: KeySet = KeySet {
    owner: VENDOR,
    keys: &[
        Key::new(
            API_KEY,
            "the API key, from credentials: a bearer token (Azure: the api-key header)",
        ),
        Key::new(
            ApiVariant::KEY,
            "openai or azure (default: azure for azure-openai)",
        ),
        Key::new(
            API_VERSION,
            "Azure's api-version query (default 2024-10-21)",
        ),
        Key::new(ORGANIZATION, "sent as the OpenAI-Organization header"),
        Key::new(PROJECT, "sent as the OpenAI-Project header"),
        Key::new(EmbeddingEncoding::KEY, "float or base64 (default float)"),
        Key::new(
            TASKS,
            "the calls the server answers: embed, rerank, generate (default by product)",
        ),
        Key::new(
            RERANK_PATH,
            "the rerank endpoint: under the API base, or under the URL with a leading / \
             (default rerank; tei: /rerank)",
        ),
        Key::new(
            RerankApi::KEY,
            "cohere (query, documents), score (vLLM text_1, text_2) or tei (query, texts)",
        ),
        Key::new(
            STREAM_USAGE,
            "ask streams for a usage report (default true for openai, azure-openai, vllm)",
        ),
        Key::new(
            STREAM_MAX_EVENT_BYTES,
            "largest server-sent-event line or event, bytes (default 1048576)",
        ),
    ],
    prefixes: &[],
};

/// The OpenAI-compatible connector factory.
pub fn factory() -> kit::Factory {
    kit::Factory::new(
        VENDOR,
        PRODUCTS,
        RESOURCES,
        &[KEYS, split::KEYS, KEY_SET],
        |target| Ok(Arc::new(OpenAiConnector::from_target(target)?)),
    )
}
