//! The router as an [`InferenceConnector`]: every capability family a
//! candidate offers, each call routed by [`Router`].

use async_trait::async_trait;
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::{
    ConnectorInfo, EmbedRequest, EmbedResponse, Embedding, GenerateRequest, GenerateResponse,
    GenerateStream, Generation, Health, InferRequest, InferResponse, InferStream,
    InferenceConnector, ModelDescription, ModelInfo, ModelListing, ModelMetadata, ModelReadiness,
    ModelRef, RawInvocation, RawRequest, RawResponse, RawStream, RerankRequest, RerankResponse,
    Reranking, Result, StreamingGeneration, StreamingInference, StreamingInvocation,
    TensorInference, Usage,
};

use crate::router::Router;

fn no_usage<T>(_: &T) -> Option<Usage> {
    None
}

/// One accessor per family: `Some(self)` when a candidate has it.
macro_rules! accessor {
    ($name:ident, $family:ident) => {
        fn $name(&self) -> Option<&dyn $family> {
            self.any_has(|c| c.$name().is_some()).then_some(self as _)
        }
    };
}

#[async_trait]
impl InferenceConnector for Router {
    fn info(&self) -> &ConnectorInfo {
        self.info_ref()
    }

    async fn health(&self) -> Result<Health> {
        self.first_health().await
    }

    accessor!(as_tensor_inference, TensorInference);
    accessor!(as_raw_invocation, RawInvocation);
    accessor!(as_model_listing, ModelListing);
    accessor!(as_model_description, ModelDescription);
    accessor!(as_model_readiness, ModelReadiness);
    accessor!(as_streaming_inference, StreamingInference);
    accessor!(as_streaming_invocation, StreamingInvocation);
    accessor!(as_embedding, Embedding);
    accessor!(as_reranking, Reranking);
    accessor!(as_generation, Generation);
    accessor!(as_streaming_generation, StreamingGeneration);
}

#[async_trait]
impl TensorInference for Router {
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let idempotency = Idempotency::marked(request.idempotent);
        self.dispatch(
            Some(model),
            idempotency,
            |c| c.as_tensor_inference().is_some(),
            no_usage,
            |c| {
                let request = request.clone();
                async move { c.infer(model, request).await }
            },
        )
        .await
    }
}

#[async_trait]
impl RawInvocation for Router {
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let idempotency = Idempotency::marked(request.idempotent);
        self.dispatch(
            Some(model),
            idempotency,
            |c| c.as_raw_invocation().is_some(),
            no_usage,
            |c| {
                let request = request.clone();
                async move { c.invoke(model, request).await }
            },
        )
        .await
    }
}

#[async_trait]
impl ModelListing for Router {
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        self.dispatch(
            None,
            Idempotency::Safe,
            |c| c.as_model_listing().is_some(),
            no_usage,
            |c| async move { c.models().await },
        )
        .await
    }
}

#[async_trait]
impl ModelDescription for Router {
    async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        self.dispatch(
            Some(model),
            Idempotency::Safe,
            |c| c.as_model_description().is_some(),
            no_usage,
            |c| async move { c.model_metadata(model).await },
        )
        .await
    }
}

#[async_trait]
impl ModelReadiness for Router {
    async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        self.dispatch(
            Some(model),
            Idempotency::Safe,
            |c| c.as_model_readiness().is_some(),
            no_usage,
            |c| async move { c.model_ready(model).await },
        )
        .await
    }
}

#[async_trait]
impl StreamingInference for Router {
    async fn infer_stream(&self, model: &ModelRef, request: InferRequest) -> Result<InferStream> {
        let idempotency = Idempotency::marked(request.idempotent);
        self.dispatch(
            Some(model),
            idempotency,
            |c| c.as_streaming_inference().is_some(),
            no_usage,
            |c| {
                let request = request.clone();
                async move { c.infer_stream(model, request).await }
            },
        )
        .await
    }
}

#[async_trait]
impl StreamingInvocation for Router {
    async fn invoke_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream> {
        let idempotency = Idempotency::marked(request.idempotent);
        self.dispatch(
            Some(model),
            idempotency,
            |c| c.as_streaming_invocation().is_some(),
            no_usage,
            |c| {
                let request = request.clone();
                async move { c.invoke_stream(model, request).await }
            },
        )
        .await
    }
}

#[async_trait]
impl Embedding for Router {
    async fn embed(&self, model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
        self.dispatch(
            Some(model),
            Idempotency::Safe,
            |c| c.as_embedding().is_some(),
            |r: &EmbedResponse| r.usage,
            |c| {
                let request = request.clone();
                async move { c.embed(model, request).await }
            },
        )
        .await
    }
}

#[async_trait]
impl Reranking for Router {
    async fn rerank(&self, model: &ModelRef, request: RerankRequest) -> Result<RerankResponse> {
        self.dispatch(
            Some(model),
            Idempotency::Safe,
            |c| c.as_reranking().is_some(),
            |r: &RerankResponse| r.usage,
            |c| {
                let request = request.clone();
                async move { c.rerank(model, request).await }
            },
        )
        .await
    }
}

#[async_trait]
impl Generation for Router {
    async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse> {
        self.dispatch(
            Some(model),
            Idempotency::Unsafe,
            |c| c.as_generation().is_some(),
            |r: &GenerateResponse| r.usage,
            |c| {
                let request = request.clone();
                async move { c.generate(model, request).await }
            },
        )
        .await
    }
}

#[async_trait]
impl StreamingGeneration for Router {
    async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateStream> {
        self.dispatch(
            Some(model),
            Idempotency::Unsafe,
            |c| c.as_streaming_generation().is_some(),
            no_usage,
            |c| {
                let request = request.clone();
                async move { c.generate_stream(model, request).await }
            },
        )
        .await
    }
}
