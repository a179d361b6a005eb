//! One place that puts vendor, endpoint and model context on every error a
//! connector returns.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use futures_util::StreamExt;

use super::typed::{
    EmbedRequest, EmbedResponse, Embedding, GenerateRequest, GenerateResponse, GenerateStream,
    Generation, RerankRequest, RerankResponse, Reranking, StreamingGeneration,
};
use super::{
    ConnectorInfo, Health, InferStream, InferenceConnector, ModelDescription, ModelInfo,
    ModelListing, ModelMetadata, ModelReadiness, ModelRef, RawInvocation, RawRequest, RawResponse,
    RawStream, StreamingInference, StreamingInvocation, TensorInference,
};
use crate::error::Result;
use crate::tensor::{InferRequest, InferResponse};

/// Wraps a connector so that every error it returns names its vendor and
/// endpoint (from [`InferenceConnector::info`]) and, for per-model calls,
/// the model.
///
/// Context the connector set itself is kept (the innermost value wins, see
/// [`crate::Error::with_vendor`]). [`super::Connectors::connect`] applies
/// this to every connector it returns; wrapping twice is harmless. Successful
/// answers pass through untouched, and the wrapper's `Debug` is the inner
/// connector's.
pub fn with_error_context(connector: Arc<dyn InferenceConnector>) -> Arc<dyn InferenceConnector> {
    Arc::new(WithContext { inner: connector })
}

struct WithContext {
    inner: Arc<dyn InferenceConnector>,
}

impl fmt::Debug for WithContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl WithContext {
    fn tag<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| self.inner.info().tag(e))
    }

    fn tag_model<T>(&self, model: &ModelRef, result: Result<T>) -> Result<T> {
        result.map_err(|e| self.inner.info().tag(e.with_model(model)))
    }

    /// Tags the errors a stream yields later, not only the ones before it starts.
    fn tag_items<T: Send + 'static>(
        &self,
        model: &ModelRef,
        stream: futures_core::stream::BoxStream<'static, Result<T>>,
    ) -> futures_core::stream::BoxStream<'static, Result<T>> {
        let info = self.inner.info().clone();
        let model = model.clone();
        stream
            .map(move |item| item.map_err(|e| info.tag(e.with_model(&model))))
            .boxed()
    }
}

#[async_trait]
impl InferenceConnector for WithContext {
    fn info(&self) -> &ConnectorInfo {
        self.inner.info()
    }

    async fn health(&self) -> Result<Health> {
        self.tag(self.inner.health().await)
    }

    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        self.inner.as_tensor_inference().map(|_| self as _)
    }

    fn as_raw_invocation(&self) -> Option<&dyn RawInvocation> {
        self.inner.as_raw_invocation().map(|_| self as _)
    }

    fn as_model_listing(&self) -> Option<&dyn ModelListing> {
        self.inner.as_model_listing().map(|_| self as _)
    }

    fn as_model_description(&self) -> Option<&dyn ModelDescription> {
        self.inner.as_model_description().map(|_| self as _)
    }

    fn as_model_readiness(&self) -> Option<&dyn ModelReadiness> {
        self.inner.as_model_readiness().map(|_| self as _)
    }

    fn as_streaming_inference(&self) -> Option<&dyn StreamingInference> {
        self.inner.as_streaming_inference().map(|_| self as _)
    }

    fn as_streaming_invocation(&self) -> Option<&dyn StreamingInvocation> {
        self.inner.as_streaming_invocation().map(|_| self as _)
    }

    fn as_embedding(&self) -> Option<&dyn Embedding> {
        self.inner.as_embedding().map(|_| self as _)
    }

    fn as_reranking(&self) -> Option<&dyn Reranking> {
        self.inner.as_reranking().map(|_| self as _)
    }

    fn as_generation(&self) -> Option<&dyn Generation> {
        self.inner.as_generation().map(|_| self as _)
    }

    fn as_streaming_generation(&self) -> Option<&dyn StreamingGeneration> {
        self.inner.as_streaming_generation().map(|_| self as _)
    }
}

#[async_trait]
impl TensorInference for WithContext {
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.tag_model(model, self.inner.infer(model, request).await)
    }
}

#[async_trait]
impl ModelListing for WithContext {
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        self.tag(self.inner.models().await)
    }
}

#[async_trait]
impl ModelDescription for WithContext {
    async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        self.tag_model(model, self.inner.model_metadata(model).await)
    }
}

#[async_trait]
impl ModelReadiness for WithContext {
    async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        self.tag_model(model, self.inner.model_ready(model).await)
    }
}

#[async_trait]
impl RawInvocation for WithContext {
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.tag_model(model, self.inner.invoke(model, request).await)
    }
}

#[async_trait]
impl StreamingInference for WithContext {
    async fn infer_stream(&self, model: &ModelRef, request: InferRequest) -> Result<InferStream> {
        let stream = self.tag_model(model, self.inner.infer_stream(model, request).await)?;
        Ok(self.tag_items(model, stream))
    }
}

#[async_trait]
impl StreamingInvocation for WithContext {
    async fn invoke_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream> {
        let mut raw = self.tag_model(model, self.inner.invoke_stream(model, request).await)?;
        raw.body = self.tag_items(model, raw.body);
        Ok(raw)
    }
}

#[async_trait]
impl Embedding for WithContext {
    async fn embed(&self, model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
        self.tag_model(model, self.inner.embed(model, request).await)
    }
}

#[async_trait]
impl Reranking for WithContext {
    async fn rerank(&self, model: &ModelRef, request: RerankRequest) -> Result<RerankResponse> {
        self.tag_model(model, self.inner.rerank(model, request).await)
    }
}

#[async_trait]
impl Generation for WithContext {
    async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse> {
        self.tag_model(model, self.inner.generate(model, request).await)
    }
}

#[async_trait]
impl StreamingGeneration for WithContext {
    async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateStream> {
        let stream = self.tag_model(model, self.inner.generate_stream(model, request).await)?;
        Ok(self.tag_items(model, stream))
    }
}
