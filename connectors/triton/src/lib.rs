//! # inferlink-triton
//!
//! The NVIDIA Triton Inference Server connector of [inferlink]:
//! the Open Inference Protocol (through [`inferlink_oip`], REST or gRPC)
//! plus Triton's extensions.
//!
//! * [`TritonClient`] (also named [`TritonConnector`]) implements
//!   [`inferlink_core::InferenceConnector`]:
//!   health, models (repository index merged with statistics), metadata,
//!   readiness, inference (REST: binary tensors above a size threshold,
//!   optional gzip/deflate request bodies), raw invocation (REST) and
//!   **streaming** (`infer_stream`: gRPC `ModelStreamInfer`, REST
//!   `generate_stream`).
//! * It adds Triton's calls: [`TritonClient::repository_index`],
//!   [`TritonClient::load_model`], [`TritonClient::unload_model`],
//!   [`TritonClient::model_statistics`], [`TritonClient::model_config`],
//!   [`TritonClient::generate`], [`TritonClient::generate_stream`].
//! * [`Sequence`] sets the sequence parameters of stateful models;
//!   [`classification`] asks for an output as top-k classes.
//! * [`factory()`] serves the products in [`PRODUCTS`], refusing unknown
//!   configuration keys.
//!
//! Configuration keys are in [`config`] ([`config::KEYS`], plus OIP's and
//! the transport's) and `docs/connectors/triton.md`.
//!
//! ```no_run
//! use inferlink_core::{Connectors, InferRequest, ModelRef, Tensor};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_triton::factory());
//! let connector = connectors.connect(&target).await?;
//! let input = Tensor::new("INPUT_1", vec![1, 3], vec![1.0f32, 2.0, 3.0])?;
//! let reply = connector
//!     .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(input))
//!     .await?;
//! let doubled: Vec<f32> = reply.require_output("OUTPUT_1")?.to_vec()?;
//! # let _ = doubled; Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod codec;
pub mod config;
pub mod error;
#[allow(missing_docs, unreachable_pub)]
mod proto;

pub use client::{Sequence, SequenceId, TritonClient, TritonConnector, VENDOR, classification};
pub use codec::{
    ConfigTensor, DurationStat, GenerateRequest, GenerateResponse, InferStats, MetricSample,
    ModelConfig, ModelStatistics, RepositoryModel,
};
pub use config::{Compression, KEYS, PRODUCTS, RESOURCES, TensorMode, TritonConfig, factory};
