//! # inferlink-torchserve
//!
//! The [TorchServe](https://pytorch.org/serve) connector of
//! [inferlink]: inference, explanations, streamed predictions and
//! the KServe-mode routes over REST, inference over gRPC, the management API,
//! and TorchServe's token authorization with keys that can be rotated while
//! the connector runs.
//!
//! * [`TorchServeConnector`] implements [`inferlink_core::InferenceConnector`]:
//!   health (`/ping`), raw `invoke` and streamed `invoke_stream` on
//!   `/predictions`, tensor `infer` through the JSON mapping of [`codec`]
//!   (or KServe V1/V2 routes), models and per-model readiness through the
//!   management API.
//! * [`TorchServeClient`] has every call, including management
//!   ([`TorchServeClient::register_model`], [`TorchServeClient::scale_workers`],
//!   …) and [`TorchServeClient::explain`].
//! * [`TokenKeys`] holds the inference and management tokens, read on every
//!   request; [`TokenKeys::follow`] keeps them in step with the registry.
//! * [`TorchServeFactory`] (also [`factory()`]) builds connectors from
//!   targets for the products in [`PRODUCTS`].
//!
//! Configuration keys are listed in [`config`] and in `docs/connectors/torchserve.md`.
//!
//! ```no_run
//! use inferlink_core::{Connectors, ModelRef, RawRequest};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_torchserve::factory());
//! let connector = connectors.connect(&target).await?;
//! let answer = connector
//!     .invoke(&ModelRef::new("doubler"), RawRequest::json("[1, 2, 3]"))
//!     .await?;
//! assert_eq!(serde_json::from_slice::<Vec<i64>>(&answer.body).unwrap(), vec![2, 4, 6]);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod codec;
pub mod config;
pub mod error;
mod factory;
mod grpc;
mod keys;
pub mod management;
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
#[rustfmt::skip]
mod proto;

pub use client::{TorchServeClient, TorchServeConnector, VENDOR};
pub use config::{InferenceApi, Protocol, TorchServeConfig};
pub use factory::{PRODUCTS, RESOURCES, TorchServeFactory};
pub use keys::TokenKeys;
pub use management::{
    ListedModel, ModelDescription, ModelPage, RegisterOptions, ScaleOptions, StatusMessage,
    WorkerInfo,
};

/// The TorchServe connector factory (see [`TorchServeFactory::new`]).
pub fn factory() -> TorchServeFactory {
    TorchServeFactory::new()
}
