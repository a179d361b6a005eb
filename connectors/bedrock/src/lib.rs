//! # inferlink-bedrock
//!
//! The Amazon Bedrock connector, written on the connector kit:
//!
//! * [`Embedding`](inferlink_core::Embedding): `InvokeModel` with Titan
//!   Text Embeddings (`amazon.titan-embed-text-v2:0`, one text per request)
//!   or Cohere Embed v3 (`cohere.embed-english-v3`, up to 96 texts) bodies;
//! * [`Generation`](inferlink_core::Generation) and
//!   [`StreamingGeneration`](inferlink_core::StreamingGeneration): `Converse`
//!   and `ConverseStream` (Claude, Nova, Llama, Mistral, … — any model
//!   Converse serves), the stream an AWS event stream;
//! * [`Reranking`](inferlink_core::Reranking): the agent runtime's `Rerank`
//!   (`amazon.rerank-v1:0`, `cohere.rerank-v3-5:0`);
//! * [`RawInvocation`](inferlink_core::RawInvocation) and
//!   [`StreamingInvocation`](inferlink_core::StreamingInvocation):
//!   `InvokeModel` and `InvokeModelWithResponseStream` with the body as it
//!   is; [`TensorInference`](inferlink_core::TensorInference): texts in a
//!   `BYTES` tensor to an embedding model, vectors back as `FP32`.
//!
//! Requests are signed with SigV4 (signing name `bedrock`; region and
//! credentials read by `inferlink-aws`) or carry a Bedrock API key as
//! `Authorization: Bearer` ([`auth`]). Guardrails, the latency profile and
//! the service tier are record keys ([`KEYS`]); inference profiles and ARNs
//! are model ids. [`error`] maps every documented error type.
//! `docs/connectors/bedrock.md` has the keys, shapes and errors.
//!
//! ```no_run
//! use inferlink_core::{ConnectTarget, Connectors, EmbedRequest, ModelRef};
//!
//! # async fn demo() -> inferlink_core::Result<()> {
//! let target = ConnectTarget::new("bedrock", "https://bedrock-runtime.us-east-1.amazonaws.com");
//! let connector = Connectors::new().with(inferlink_bedrock::factory()).connect(&target).await?;
//! let model = ModelRef::new("amazon.titan-embed-text-v2:0");
//! let answer = connector.embed(&model, EmbedRequest::new(["a query"])).await?;
//! assert_eq!(answer.vectors.len(), 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

use std::sync::Arc;

use inferlink_core::connector::split;
use inferlink_core::kit;
use inferlink_core::transport::config::KEY_SET;

pub mod auth;
mod client;
pub mod codec;
pub mod config;
pub mod error;

pub use auth::Access;
pub use client::{BedrockConnector, EMBEDDING_OUTPUT, MAX_BODY_BYTES, default_transport, headers};
pub use config::{BedrockConfig, KEYS, keys};
/// The AWS event-stream framing, shared in `inferlink-core` (feature
/// `eventstream`) with SageMaker.
pub use inferlink_core::kit::eventstream;

/// The vendor name in connector info and errors.
pub const VENDOR: &str = "bedrock";

/// Record products served.
pub const PRODUCTS: &[&str] = &[
    "bedrock",
    "amazon-bedrock",
    "aws-bedrock",
    "bedrock-runtime",
];

/// Service resources served when no product matches.
pub const RESOURCES: &[&str] = &["bedrock-runtime", "amazon-bedrock"];

/// The Bedrock connector factory: it refuses lower-case keys that neither
/// [`KEYS`], `inferlink-aws`'s keys, the splitter nor the transport reads,
/// then builds a [`BedrockConnector`] (a missing region or missing
/// credentials fail here, naming the key).
pub fn factory() -> kit::Factory {
    kit::Factory::new(
        VENDOR,
        PRODUCTS,
        RESOURCES,
        &[KEYS, inferlink_aws::KEYS, split::KEYS, KEY_SET],
        |target| Ok(Arc::new(BedrockConnector::from_target(target)?)),
    )
}
