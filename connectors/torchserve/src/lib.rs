//! # inferlink-torchserve
//!
//! The [TorchServe](https://pytorch.org/serve) connector of
//! `inferlink`: inference, explanations, streamed predictions and
//! the KServe-mode routes over REST, inference over gRPC, the management API,
//! and TorchServe's token authorization with keys that can be rotated while
//! the connector runs.
//!
//! * [`TorchServeClient`] (also named [`TorchServeConnector`]) implements
//!   [`inferlink_core::InferenceConnector`]:
//!   health (`/ping`), raw `invoke` and streamed `invoke_stream` on
//!   `/predictions`, tensor `infer` through the JSON mapping of [`codec`]
//!   (or KServe V1/V2 routes), models and per-model readiness through the
//!   management API.
//!   It has every call besides, including management
//!   ([`TorchServeClient::register_model`], [`TorchServeClient::scale_workers`],
//!   …) and [`TorchServeClient::explain`].
//! * [`TokenKeys`] holds the inference and management tokens, read on every
//!   request; [`TokenKeys::follow`] keeps them in step with the registry.
//! * [`factory()`] builds connectors from targets for the products in
//!   [`PRODUCTS`]; it refuses configuration keys neither [`KEYS`] nor the
//!   transport reads.
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
mod grpc;
mod keys;
pub mod management;
/// The generated wire messages of `proto/inference.proto`; public so that
/// test servers reuse them instead of generating a second copy (not a stable API).
#[doc(hidden)]
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
#[rustfmt::skip]
pub mod proto;

pub use client::{TorchServeClient, TorchServeConnector, VENDOR};
pub use config::{InferenceApi, KEYS, Protocol, TorchServeConfig};
pub use keys::TokenKeys;
pub use management::{
    ListedModel, ModelDescription, ModelPage, RegisterOptions, ScaleOptions, StatusMessage,
    WorkerInfo,
};

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::transport::config::KEY_SET;

/// Record products the factory serves (compared case-insensitively).
pub const PRODUCTS: &[&str] = &[
    "torchserve",
    "pytorch-serve",
    "pytorch-torchserve",
    "torch-serve",
];
/// Service resources the factory serves when no product matches.
pub const RESOURCES: &[&str] = &["torchserve", "torchserve-inference"];

/// The TorchServe connector factory: refuses unknown keys, then builds a
/// [`TorchServeClient`] (nothing connects before the first call).
pub fn factory() -> kit::Factory {
    kit::Factory::new(VENDOR, PRODUCTS, RESOURCES, KEY_SETS, |target| {
        Ok(Arc::new(TorchServeClient::from_target(target)?))
    })
}

/// Every key set a TorchServe record may use: [`KEYS`], the kit's `protocol` and
/// `grpc_url` ([`kit::WIRE_KEYS`]) and the transport's.
pub const KEY_SETS: &[kit::KeySet] = &[KEYS, kit::WIRE_KEYS, KEY_SET];
