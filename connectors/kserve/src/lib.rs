//! # inferlink-kserve
//!
//! The [KServe](https://kserve.github.io) connector of
//! [inferlink]: one [`KServeConnector`] for a KServe model
//! server (an InferenceService's predictor), speaking
//!
//! * **V1** — `GET /v1/models/NAME` (readiness), `POST …:predict`,
//!   `POST …:explain`; tensor `infer` maps inputs to `instances` rows and
//!   `predictions` back to tensors ([`codec`]);
//! * **V2** — the Open Inference Protocol, over REST (JSON or binary
//!   tensors) or gRPC, through [`inferlink_oip`];
//!
//! chosen by the `protocol` key or discovered at connect time
//! (`/v2/health/ready` first, then `/v1/models`). Through an ingress, the
//! connector connects to the ingress URL and routes by the virtual host
//! KServe gives the InferenceService, `<isvc>.<namespace>.<domain>`: the
//! `Host` header over REST, the `:authority` over gRPC ([`config`]).
//!
//! ```no_run
//! use inferlink_core::{Connectors, InferenceConnectorExt, ModelRef, Tensor};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_kserve::factory());
//! let connector = connectors.connect(&target).await?; // product: kserve
//! let rows = Tensor::from_rows("input-0", &[vec![1.0f32, 2.0], vec![3.0, 4.0]])?;
//! let doubled = connector.infer_one(&ModelRef::new("doubler"), rows).await?;
//! assert_eq!(doubled.to_f32_rows()?, vec![vec![2.0, 4.0], vec![6.0, 8.0]]);
//! # Ok(()) }
//! ```
//!
//! Configuration keys ([`config::KEYS`], OIP's wire keys and the
//! transport's; the factory refuses any other lower-case key), capabilities
//! per protocol and examples: `docs/connectors/kserve.md`.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod codec;
pub mod config;
pub mod error;

pub use client::{KServeClient, KServeConnector, V1_PROTOCOL_NAME, VENDOR};
pub use config::{
    KEYS, KServeConfig, KServeFactory, KServeProtocol, PRODUCTS, ProtocolChoice, RESOURCES, factory,
};
