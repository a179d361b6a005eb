//! # inferlink-omi
//!
//! The Open Model Interface (OMI) connector of `inferlink`: the
//! gRPC service `ModzyModel` that Modzy / chassis model containers serve
//! (`/ModzyModel/Status`, `/ModzyModel/Run`, `/ModzyModel/Shutdown`; the
//! proto has no package).
//!
//! * [`OmiClient`] (also named [`OmiConnector`]) implements
//!   [`inferlink_core::InferenceConnector`]: health
//!   and model metadata from `Status`, tensor inference and raw invocation
//!   through `Run` (files as `BYTES` tensors, see [`codec`]).
//!   Its wire calls: [`OmiClient::status`] (typed
//!   [`OmiStatus`], asked once per client before the first run),
//!   [`OmiClient::run`] (a batch of named input files with per-item results,
//!   [`RunOutcome`]), and the administrative [`OmiClient::shutdown`].
//! * [`factory()`] builds connectors from targets for the products in
//!   [`PRODUCTS`] and resources in [`RESOURCES`]; it refuses configuration
//!   keys neither [`KEYS`] nor the transport reads.
//!
//! A failed batch item is never an empty output: [`OmiClient::run`] gives
//! it as an [`ItemError`], and the trait methods turn it into an
//! [`ErrorKind::ModelError`](inferlink_core::ErrorKind::ModelError) naming the
//! items (context `failed_items`).
//!
//! ```no_run
//! use inferlink_core::{Connectors, InferRequest, ModelRef, Tensor};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_omi::factory());
//! let connector = connectors.connect(&target).await?;
//! // Two batch items, each one `text` input file.
//! let text = Tensor::from_strings("text", vec![2], ["hello", "world"])?;
//! let reply = connector
//!     .infer(&ModelRef::new("textops"), InferRequest::new().with_input(text))
//!     .await?;
//! let upper = reply.require_output("upper.txt")?.to_strings()?;
//! assert_eq!(upper, ["HELLO", "WORLD"]);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod codec;
pub mod config;
pub mod error;
/// The generated wire messages of `proto/model.proto`; public so that test
/// servers reuse them instead of generating a second copy (not a stable API).
#[doc(hidden)]
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
#[rustfmt::skip]
pub mod proto;

pub use client::{
    DEFAULT_VENDOR, HEADER_INPUT_FILE, HEADER_OUTPUT_FILE, OmiClient, OmiConnector, PROTOCOL,
    RunOptions, ShutdownOutcome,
};
pub use codec::{
    Files, ItemError, ItemResult, OmiDescription, OmiFeatures, OmiInput, OmiModelInfo, OmiOutput,
    OmiResources, OmiStatus, OmiTimeouts, RunOutcome,
};
pub use config::{DEFAULT_PORT, KEYS, OmiConfig};

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::transport::config::KEY_SET;

/// Record products the factory serves (compared case-insensitively).
///
/// `chassis`/`chassisml`: containers built by chassis serve OMI unless they
/// were built with its KServe interface; register those under a KServe product.
/// The Modzy platform's own REST API is not OMI and is not listed.
pub const PRODUCTS: &[&str] = &[
    "omi",
    "open-model-interface",
    "openmodelinterface",
    "chassis",
    "chassisml",
];

/// Service resources the factory serves when no product matches.
pub const RESOURCES: &[&str] = &["omi", "open-model-interface", "modzy-model"];

/// The factory for Open Model Interface servers: refuses unknown keys,
/// then builds an [`OmiClient`] (nothing connects before the first call).
pub fn factory() -> kit::Factory {
    kit::Factory::new(
        DEFAULT_VENDOR,
        PRODUCTS,
        RESOURCES,
        &[KEYS, KEY_SET],
        |target| Ok(Arc::new(OmiClient::from_target(target)?)),
    )
}
