//! The capability families: one trait per optional part of a platform's
//! API, and the calls on `dyn InferenceConnector` that dispatch to them.
//!
//! A connector implements a family and returns `Some(self)` from the
//! matching `as_*` accessor of [`InferenceConnector`]; that is the only way
//! to have a capability, so [`InferenceConnector::capabilities`] cannot
//! claim a call that is not implemented. Calling a family the connector
//! lacks through `dyn InferenceConnector` answers [`ErrorKind::Unsupported`].

use async_trait::async_trait;

use super::typed::{
    EmbedRequest, EmbedResponse, GenerateRequest, GenerateResponse, GenerateStream, RerankRequest,
    RerankResponse,
};
use super::{
    Capabilities, InferStream, InferenceConnector, ModelInfo, ModelMetadata, ModelRef, RawRequest,
    RawResponse, RawStream, unsupported,
};
use crate::error::Result;
use crate::tensor::{InferRequest, InferResponse};

/// Inference on tensors.
#[async_trait]
pub trait TensorInference: Send + Sync {
    /// Runs inference on tensors.
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse>;
}

/// Opaque, model-defined payloads (bytes and a content type).
#[async_trait]
pub trait RawInvocation: Send + Sync {
    /// Sends an opaque payload and returns the server's answer.
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse>;
}

/// Listing the models a server serves.
#[async_trait]
pub trait ModelListing: Send + Sync {
    /// Lists the models the server serves.
    async fn models(&self) -> Result<Vec<ModelInfo>>;
}

/// Describing a model's inputs and outputs.
#[async_trait]
pub trait ModelDescription: Send + Sync {
    /// Describes a model's inputs and outputs.
    async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata>;
}

/// Readiness per model.
#[async_trait]
pub trait ModelReadiness: Send + Sync {
    /// Whether one model is ready to serve.
    async fn model_ready(&self, model: &ModelRef) -> Result<bool>;
}

/// Inference whose responses arrive as the server sends them.
#[async_trait]
pub trait StreamingInference: Send + Sync {
    /// Runs inference and yields each response as the server sends it
    /// (decoupled models, `generate_stream`, token streams). Errors before
    /// the first response (bad input, unknown model) are returned here; later
    /// ones arrive as stream items.
    async fn infer_stream(&self, model: &ModelRef, request: InferRequest) -> Result<InferStream>;
}

/// Opaque payloads whose answer body arrives chunk by chunk.
#[async_trait]
pub trait StreamingInvocation: Send + Sync {
    /// Sends an opaque payload and yields the response body as it arrives
    /// (chunked HTTP responses, event streams).
    async fn invoke_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream>;
}

/// Defines, for one family, the call on `dyn InferenceConnector` and a
/// crate-internal function that does the same for any connector type. The
/// `Unsupported` answer for a missing family names the model of per-model
/// calls, like every other error of a connector.
macro_rules! family_call {
    ($(#[$doc:meta])* $name:ident, $via:ident, $as:ident, $what:literal,
     (model: &ModelRef $(, $arg:ident: $ty:ty)*) -> $out:ty) => {
        pub(crate) async fn $via<C: InferenceConnector + ?Sized>(
            connector: &C,
            model: &ModelRef,
            $($arg: $ty),*
        ) -> Result<$out> {
            match connector.$as() {
                Some(family) => family.$name(model, $($arg),*).await,
                None => Err(unsupported(connector.info(), $what).with_model(model)),
            }
        }

        impl<'a> dyn InferenceConnector + 'a {
            $(#[$doc])*
            pub async fn $name(&self, model: &ModelRef, $($arg: $ty),*) -> Result<$out> {
                $via(self, model, $($arg),*).await
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $via:ident, $as:ident, $what:literal, () -> $out:ty) => {
        pub(crate) async fn $via<C: InferenceConnector + ?Sized>(connector: &C) -> Result<$out> {
            match connector.$as() {
                Some(family) => family.$name().await,
                None => Err(unsupported(connector.info(), $what)),
            }
        }

        impl<'a> dyn InferenceConnector + 'a {
            $(#[$doc])*
            pub async fn $name(&self) -> Result<$out> {
                $via(self).await
            }
        }
    };
}

family_call!(
    /// Runs inference on tensors ([`TensorInference`]; `Unsupported` without it).
    infer, infer_via, as_tensor_inference, "tensor inference",
    (model: &ModelRef, request: InferRequest) -> InferResponse
);
family_call!(
    /// Sends an opaque payload ([`RawInvocation`]; `Unsupported` without it).
    invoke, invoke_via, as_raw_invocation, "raw invocation",
    (model: &ModelRef, request: RawRequest) -> RawResponse
);
family_call!(
    /// Lists the served models ([`ModelListing`]; `Unsupported` without it).
    models, models_via, as_model_listing, "listing models",
    () -> Vec<ModelInfo>
);
family_call!(
    /// Describes a model ([`ModelDescription`]; `Unsupported` without it).
    model_metadata, model_metadata_via, as_model_description, "model metadata",
    (model: &ModelRef) -> ModelMetadata
);
family_call!(
    /// Whether one model is ready ([`ModelReadiness`]; `Unsupported` without it).
    model_ready, model_ready_via, as_model_readiness, "per-model readiness",
    (model: &ModelRef) -> bool
);
family_call!(
    /// Streamed inference ([`StreamingInference`]; `Unsupported` without it).
    infer_stream, infer_stream_via, as_streaming_inference, "streaming inference",
    (model: &ModelRef, request: InferRequest) -> InferStream
);
family_call!(
    /// Streamed invocation ([`StreamingInvocation`]; `Unsupported` without it).
    invoke_stream, invoke_stream_via, as_streaming_invocation, "streamed raw invocation",
    (model: &ModelRef, request: RawRequest) -> RawStream
);

family_call!(
    /// Texts to vectors ([`Embedding`](super::Embedding); `Unsupported` without it).
    embed, embed_via, as_embedding, "embeddings",
    (model: &ModelRef, request: EmbedRequest) -> EmbedResponse
);
family_call!(
    /// Documents scored against a query, best first ([`Reranking`](super::Reranking);
    /// `Unsupported` without it).
    rerank, rerank_via, as_reranking, "reranking",
    (model: &ModelRef, request: RerankRequest) -> RerankResponse
);
family_call!(
    /// Generated text ([`Generation`](super::Generation); `Unsupported` without it).
    generate, generate_via, as_generation, "text generation",
    (model: &ModelRef, request: GenerateRequest) -> GenerateResponse
);
family_call!(
    /// Generated text piece by piece ([`StreamingGeneration`](super::StreamingGeneration);
    /// `Unsupported` without it).
    generate_stream, generate_stream_via, as_streaming_generation, "streamed text generation",
    (model: &ModelRef, request: GenerateRequest) -> GenerateStream
);

impl<'a> dyn InferenceConnector + 'a {
    /// What this connector can do, derived from the families it implements.
    pub fn capabilities(&self) -> Capabilities {
        capabilities_of(self)
    }
}

/// [`Capabilities`] of any connector type, derived from its `as_*` accessors.
pub fn capabilities_of<C: InferenceConnector + ?Sized>(connector: &C) -> Capabilities {
    Capabilities {
        list_models: connector.as_model_listing().is_some(),
        model_metadata: connector.as_model_description().is_some(),
        model_ready: connector.as_model_readiness().is_some(),
        infer: connector.as_tensor_inference().is_some(),
        invoke: connector.as_raw_invocation().is_some(),
        binary_tensors: connector.info().binary_tensors,
        stream_infer: connector.as_streaming_inference().is_some(),
        stream_invoke: connector.as_streaming_invocation().is_some(),
        embed: connector.as_embedding().is_some(),
        rerank: connector.as_reranking().is_some(),
        generate: connector.as_generation().is_some(),
        stream_generate: connector.as_streaming_generation().is_some(),
    }
}
