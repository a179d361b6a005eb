//! # inferlink-seldon
//!
//! The Seldon connector of [inferlink], for the three ways Seldon
//! serves models:
//!
//! * **Seldon Core v1** — the Seldon protocol: `SeldonMessage` JSON to
//!   `/api/v1.0/predictions` (and `feedback`, `metadata`, `health/status`),
//!   directly to a python microservice or executor, or through the ingress
//!   path `/seldon/<namespace>/<deployment>/…` built from configuration.
//!   Tensors map to `data.ndarray` or `data.tensor`, and one-element `BYTES`
//!   tensors named `strData`, `binData`, `jsonData` to those payloads
//!   ([`codec`]); Seldon's error envelope maps to typed errors ([`error`]).
//! * **Seldon Core v2** and **MLServer** — the Open Inference Protocol
//!   through [`inferlink_oip`], over REST or gRPC, with the `Seldon-Model`
//!   routing header (gRPC metadata `seldon-model`) from configuration and
//!   MLServer `content_type` parameters (`str`, `np`) on inputs.
//!
//! [`SeldonConnector`] implements [`inferlink_core::InferenceConnector`];
//! [`factory()`] registers it with [`inferlink_core::Connectors`] for the products
//! in [`PRODUCTS`], refusing unknown configuration keys; [`SeldonConfig`] is
//! its typed configuration (keys in [`KEYS`], [`config`] and
//! `docs/connectors/seldon.md`).
//!
//! ```no_run
//! use inferlink_core::{Connectors, InferRequest, ModelRef, Tensor};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_seldon::factory());
//! let connector = connectors.connect(&target).await?;
//! let x = Tensor::new("x", vec![1, 2], vec![1.0f64, 2.0])?;
//! let reply = connector
//!     .infer(&ModelRef::new("iris"), InferRequest::new().with_input(x))
//!     .await?;
//! let doubled: Vec<f64> = reply.into_single_output()?.to_vec()?;
//! # let _ = doubled; Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod codec;
pub mod config;
pub mod error;

pub use client::{CONTENT_TYPE, SeldonConnector, SeldonV1Client, VENDOR, add_content_types};
pub use codec::{Feedback, SeldonMessage};
pub use config::{
    KEYS, PRODUCTS, RESOURCES, SeldonConfig, SeldonProtocol, V1TensorForm, default_protocol,
    factory,
};
