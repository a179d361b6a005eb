//! # inferlink-mlflow
//!
//! The connector for MLflow model serving: the scoring server that
//! `mlflow models serve` (and the images MLflow builds) runs, with `GET /ping`
//! for health and `POST /invocations` for predictions. One server serves one
//! model; no path carries a model name.
//!
//! It is the example connector of the kit (`inferlink_core::kit`): it
//! depends on `inferlink-core` alone.
//!
//! * [`MlflowConnector`] has [`TensorInference`](inferlink_core::TensorInference)
//!   (tensors as `{"inputs": …}`, `{"instances": …}` or `{"dataframe_split": …}`;
//!   the `{"predictions": …}` answer back as one tensor) and
//!   [`RawInvocation`](inferlink_core::RawInvocation) (any body and content
//!   type, e.g. CSV, or answers that are not one tensor). The server has no
//!   model listing, metadata or readiness API, so the connector has none.
//! * [`factory()`] builds connectors for the products in [`PRODUCTS`] and
//!   the resources in [`RESOURCES`]; it refuses configuration keys that
//!   neither [`KEYS`] nor the transport reads.
//!
//! `docs/connectors/mlflow.md` describes keys, mapping and errors.
//!
//! ```no_run
//! use inferlink_core::{ConnectTarget, Connectors, InferRequest, ModelRef, Tensor};
//!
//! # async fn demo() -> inferlink_core::Result<()> {
//! let target = ConnectTarget::new("mlflow-serving", "http://127.0.0.1:5000")
//!     .with_plain("model_name", "doubler");
//! let connector = Connectors::new().with(inferlink_mlflow::factory()).connect(&target).await?;
//! let x = Tensor::new("x", vec![2, 2], vec![1.0f64, 2.0, 3.0, 4.0])?;
//! let reply = connector.infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x)).await?;
//! let predictions: Vec<f64> = reply.into_single_output()?.to_vec()?;
//! # let _ = predictions; Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

use std::sync::Arc;

use inferlink_core::kit::{self, Key, KeySet};
use inferlink_core::transport::config::KEY_SET;

use crate::config::{MODEL_NAME, OUTPUT_NAME};

mod client;
pub mod codec;
pub mod config;
pub mod error;

pub use client::MlflowConnector;
pub use config::{InputFormat, MlflowConfig, OutputDatatype};

/// The vendor name in connector info and errors.
pub const VENDOR: &str = "mlflow";
/// The wire protocol in connector info.
pub const PROTOCOL: &str = "mlflow-scoring";

/// Record products served. Not `mlflow`: records of that product describe
/// the tracking server (resource `mlflow-tracking`), which does not score.
pub const PRODUCTS: &[&str] = &["mlflow-serving", "mlflow-scoring-server"];
/// Service resources served when no product matches, e.g. a scoring service
/// inside a record of product `mlflow`.
pub const RESOURCES: &[&str] = &["mlflow-scoring"];

/// The configuration keys of this connector (the transport's are in
/// `transport::config::KEY_SET`).
pub const KEYS: KeySet = KeySet {
    owner: VENDOR,
    keys: &[
        Key::new(InputFormat::KEY, "inputs, instances or dataframe_split"),
        Key::new(OUTPUT_NAME, "the answer's output name (predictions)"),
        Key::new(OutputDatatype::KEY, "auto, int64 or fp64"),
        Key::new(MODEL_NAME, "the one model served (unset: any)"),
    ],
    prefixes: &[],
};

/// The MLflow scoring server's connector factory.
pub fn factory() -> kit::Factory {
    kit::Factory::new(VENDOR, PRODUCTS, RESOURCES, &[KEYS, KEY_SET], |target| {
        Ok(Arc::new(MlflowConnector::from_target(target)?))
    })
}
