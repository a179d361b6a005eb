//! # inferlink-oip
//!
//! The Open Inference Protocol ("KServe V2", "Predict Protocol v2") client
//! of [inferlink]: one [`OipConnector`] for every server that
//! speaks it — NVIDIA Triton, KServe's model server, Seldon MLServer and
//! Seldon Core v2, TorchServe's OIP endpoint — over REST (JSON, or the
//! binary tensor data extension) or gRPC.
//!
//! * [`OipClient`] (also named [`OipConnector`]) implements
//!   [`inferlink_core::InferenceConnector`]: health, model listing (REST),
//!   model metadata, per-model readiness, tensor inference and (REST) raw
//!   invocation. With the vendor name injectable, it is also the wire client
//!   the Triton, KServe and Seldon crates build on.
//! * [`factory()`] builds connectors from targets (refusing unknown keys);
//!   register it with [`inferlink_core::Connectors`].
//! * [`codec`] converts between the REST wire format and tensors; [`grpc`]
//!   between the gRPC messages and tensors.
//!
//! Configuration keys (`protocol`, `grpc_url`, `tensor_encoding`,
//! `grpc_authority`: [`config::KEYS`]; and the shared transport's timeouts,
//! retries, TLS and authentication keys) are listed in [`config`] and in
//! `docs/connectors/oip.md`.
//!
//! ```no_run
//! use inferlink_core::{Connectors, InferRequest, ModelRef, Tensor};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_oip::factory());
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
pub mod grpc;
/// The messages generated from `proto/inference.proto` (for
/// vendor crates that make further RPCs with them, e.g. Triton's
/// `ModelStreamInfer`).
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
#[rustfmt::skip]
pub mod proto;

pub use client::{DEFAULT_VENDOR, OipClient, OipConnector, decode_http_infer, model_spec};
pub use codec::{ServerMetadata, TensorEncoding};
pub use config::{KEYS, ModelHeader, OipConfig, PRODUCTS, Protocol, RESOURCES, factory};
