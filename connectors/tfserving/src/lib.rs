//! # inferlink-tfserving
//!
//! The TensorFlow Serving client of `inferlink`, over REST
//! (`/v1/models/…`, port 8501 in the official image) or gRPC
//! (`tensorflow.serving.PredictionService` and `ModelService`, port 8500).
//!
//! * [`TfServingClient`] (also named [`TfServingConnector`]) implements
//!   [`inferlink_core::InferenceConnector`]:
//!   health, model metadata (one signature), per-model readiness (version
//!   status), tensor inference (`Predict`) and, over REST, raw invocation of
//!   `:predict`. TF Serving has no model listing call.
//!   Its own methods add what the trait does not cover: Classify and
//!   Regress over `tf.Example`s ([`Examples`]), the status of every version
//!   ([`TfServingClient::model_status`]) and every signature
//!   ([`TfServingClient::signatures`]).
//! * [`factory()`] builds connectors from targets for the products in
//!   [`PRODUCTS`]; it refuses configuration keys neither [`KEYS`] nor the
//!   transport reads.
//! * [`codec`] holds the REST JSON mapping (row and columnar forms, `b64`
//!   values, NaN/Infinity tolerated); [`grpc`] the TensorProto mapping.
//!
//! Configuration keys are in [`config`] and `docs/connectors/tfserving.md`.
//!
//! ```no_run
//! use inferlink_core::{Connectors, InferRequest, ModelRef, Tensor};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_tfserving::factory());
//! let connector = connectors.connect(&target).await?;
//! let x = Tensor::new("x", vec![3], vec![1.0f32, 2.0, 5.0])?;
//! let reply = connector
//!     .infer(&ModelRef::new("half_plus_two"), InferRequest::new().with_input(x))
//!     .await?;
//! let y: Vec<f32> = reply.into_single_output()?.to_vec()?;
//! # let _ = y; Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod grpc;
/// The generated protobuf messages (`tensorflow`,
/// `tensorflow::serving`), from `proto/*.proto`.
#[allow(missing_docs, clippy::all, unreachable_pub, missing_debug_implementations)]
#[rustfmt::skip]
pub mod proto;

pub use client::{SIGNATURE_PARAMETER, TfServingClient, TfServingConnector, VENDOR};
pub use codec::{
    Class, Example, Examples, Feature, ModelState, Signature, TfModelMetadata, TfTensorInfo,
    VersionStatus,
};
pub use config::{
    GrpcTensorEncoding, KEYS, Protocol, RequestFormat, TfServingConfig, VersionChoice,
};

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::transport::config::KEY_SET;

/// Record products the factory serves (compared case-insensitively): the
/// names the project's seeds use ("Tensorflow Serving", "TFServing") in
/// their usual spellings, and pythie-serving (a TF-Serving-compatible
/// gRPC server).
pub const PRODUCTS: &[&str] = &[
    "tensorflow-serving",
    "tensorflow_serving",
    "tensorflow serving",
    "tfserving",
    "tf-serving",
    "tf_serving",
    "pythie-serving",
];

/// Service resources the factory serves when no product matches.
pub const RESOURCES: &[&str] = &["tfserving", "tensorflow-serving", "tf-serving"];

/// The TensorFlow Serving factory: refuses unknown keys, then builds a
/// [`TfServingClient`] (nothing connects before the first call).
pub fn factory() -> kit::Factory {
    kit::Factory::new(VENDOR, PRODUCTS, RESOURCES, KEY_SETS, |target| {
        Ok(Arc::new(TfServingClient::from_target(target)?))
    })
}

/// Every key set a TF Serving record may use: [`KEYS`], the kit's `protocol` and
/// `grpc_url` ([`kit::WIRE_KEYS`]) and the transport's.
pub const KEY_SETS: &[kit::KeySet] = &[KEYS, kit::WIRE_KEYS, KEY_SET];
