//! Layers a host stacks on [`Connectors`](super::Connectors): each wraps
//! (or checks) every connector `connect` returns, in the order added, before
//! the error-context wrapper that is always outermost.

use std::fmt;
use std::sync::Arc;

use super::{Capabilities, InferenceConnector, capabilities_of};
use crate::error::{Error, ErrorKind, Result};

/// Wraps or checks the connectors a [`Connectors`](super::Connectors) builds.
pub trait ConnectorLayer: Send + Sync + fmt::Debug {
    /// The connector to hand out instead of `connector` (or an error that
    /// refuses it).
    fn layer(&self, connector: Arc<dyn InferenceConnector>) -> Result<Arc<dyn InferenceConnector>>;
}

/// A layer that refuses, at connect time, a connector lacking capabilities
/// the host needs: an [`ErrorKind::Unsupported`] error naming the missing
/// ones, instead of the same error at the first call.
///
/// ```
/// use inferlink_core::connector::RequireCapabilities;
/// let needs = RequireCapabilities::new().infer().model_metadata();
/// # let _ = needs;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RequireCapabilities {
    wanted: Capabilities,
}

impl RequireCapabilities {
    /// Requires nothing yet.
    pub fn new() -> Self {
        RequireCapabilities::default()
    }

    /// Requires [`TensorInference`](super::TensorInference).
    pub fn infer(mut self) -> Self {
        self.wanted.infer = true;
        self
    }

    /// Requires [`RawInvocation`](super::RawInvocation).
    pub fn invoke(mut self) -> Self {
        self.wanted.invoke = true;
        self
    }

    /// Requires [`ModelDescription`](super::ModelDescription).
    pub fn model_metadata(mut self) -> Self {
        self.wanted.model_metadata = true;
        self
    }

    /// Requires [`ModelListing`](super::ModelListing).
    pub fn list_models(mut self) -> Self {
        self.wanted.list_models = true;
        self
    }

    /// Requires [`StreamingInference`](super::StreamingInference).
    pub fn stream_infer(mut self) -> Self {
        self.wanted.stream_infer = true;
        self
    }

    /// Requires [`Embedding`](super::Embedding).
    pub fn embed(mut self) -> Self {
        self.wanted.embed = true;
        self
    }

    /// Requires [`Reranking`](super::Reranking).
    pub fn rerank(mut self) -> Self {
        self.wanted.rerank = true;
        self
    }

    /// Requires [`Generation`](super::Generation).
    pub fn generate(mut self) -> Self {
        self.wanted.generate = true;
        self
    }

    /// Requires [`StreamingGeneration`](super::StreamingGeneration).
    pub fn stream_generate(mut self) -> Self {
        self.wanted.stream_generate = true;
        self
    }
}

impl ConnectorLayer for RequireCapabilities {
    fn layer(&self, connector: Arc<dyn InferenceConnector>) -> Result<Arc<dyn InferenceConnector>> {
        let have = capabilities_of(connector.as_ref());
        let missing: Vec<&str> = [
            (self.wanted.infer, have.infer, "tensor inference"),
            (self.wanted.invoke, have.invoke, "raw invocation"),
            (
                self.wanted.model_metadata,
                have.model_metadata,
                "model metadata",
            ),
            (self.wanted.list_models, have.list_models, "model listing"),
            (
                self.wanted.stream_infer,
                have.stream_infer,
                "streaming inference",
            ),
            (self.wanted.embed, have.embed, "embeddings"),
            (self.wanted.rerank, have.rerank, "reranking"),
            (self.wanted.generate, have.generate, "text generation"),
            (
                self.wanted.stream_generate,
                have.stream_generate,
                "streamed text generation",
            ),
        ]
        .into_iter()
        .filter(|(wanted, has, _)| *wanted && !*has)
        .map(|(_, _, name)| name)
        .collect();
        if missing.is_empty() {
            return Ok(connector);
        }
        let info = connector.info();
        Err(info.tag(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{} ({}) lacks what this host requires: {}",
                info.vendor,
                info.protocol,
                missing.join(", ")
            ),
        )))
    }
}
