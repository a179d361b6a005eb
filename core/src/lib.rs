//! # inferlink-core
//!
//! The light core every inferlink connector builds on, without the
//! registry, the stores or their dependencies:
//!
//! * the error model ([`Error`], [`ErrorKind`]) and [`Secret`] values;
//! * the tensor model ([`Tensor`], [`InferRequest`], [`InferResponse`]);
//! * the connector API ([`InferenceConnector`], [`ConnectorFactory`],
//!   [`Connectors`]) and what a connector is built from ([`ConnectTarget`]);
//! * the shared HTTP and gRPC transport ([`transport`], features `http`
//!   and `grpc`).
//!
//! Hosts normally depend on `inferlink`, which re-exports all of this next
//! to the registry; connector crates depend on this crate only.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod connector;
pub mod error;
pub mod kit;
mod model_ref;
pub mod secret;
pub mod target;
pub mod tensor;
#[cfg(feature = "http")]
pub mod transport;

/// The attribute macro connector crates put on their `InferenceConnector`
/// and `ConnectorFactory` impls (re-exported from `async-trait`, so they need
/// not depend on it themselves).
pub use async_trait::async_trait;
pub use connector::{
    ByteStream, Capabilities, ConnectorFactory, ConnectorInfo, Connectors, Health, InferStream,
    InferenceConnector, InferenceConnectorExt, ModelDescription, ModelInfo, ModelListing,
    ModelMetadata, ModelReadiness, ModelRef, RawInvocation, RawRequest, RawResponse, RawStream,
    StreamingInference, StreamingInvocation, TensorInference, TensorSpec,
};
pub use connector::{
    ChatMessage, ChatRole, EmbedRequest, EmbedResponse, Embedding, FinishReason, GenerateDelta,
    GenerateInput, GenerateOptions, GenerateRequest, GenerateResponse, GenerateStream, Generation,
    RerankHit, RerankRequest, RerankResponse, Reranking, StreamingGeneration, Usage,
};
pub use error::{Error, ErrorKind, Result};
pub use secret::{HIDDEN, Secret};
pub use target::{ConfigValue, ConnectTarget, ToConnectTarget};
pub use tensor::{
    DataType, InferRequest, InferResponse, Parameter, Parameters, Tensor, TensorData,
};

/// The traits a caller needs in scope to call connectors of a concrete type
/// (`use inferlink_core::prelude::*;`): the capability families and
/// [`InferenceConnectorExt`]. Calls through `dyn InferenceConnector` need none.
pub mod prelude {
    pub use crate::connector::{
        Embedding, Generation, InferenceConnector, InferenceConnectorExt, ModelDescription,
        ModelListing, ModelReadiness, RawInvocation, Reranking, StreamingGeneration,
        StreamingInference, StreamingInvocation, TensorInference,
    };
    #[cfg(feature = "http")]
    pub use crate::kit::ConnectorConfig;
}
