//! # inferlink-sagemaker
//!
//! The Amazon SageMaker Runtime client of `inferlink`: one
//! [`SageMakerClient`] for SageMaker endpoints (the runtime API, signed
//! with SigV4 through the `aws-sigv4` crate) and for SageMaker model
//! containers reached directly (`/ping`, `/invocations`).
//!
//! * [`SageMakerClient`] (also named [`SageMakerConnector`]) implements
//!   [`inferlink_core::InferenceConnector`]:
//!   `invoke` (`InvokeEndpoint`, bytes as they are), `infer` (tensors as a
//!   JSON payload, [`codec`]), `invoke_stream`
//!   (`InvokeEndpointWithResponseStream`, one chunk per `PayloadPart`), and
//!   `health` for containers.
//!   It has the typed operations besides, with every header of the
//!   API: [`SageMakerClient::invoke_endpoint`],
//!   [`SageMakerClient::invoke_endpoint_async`],
//!   [`SageMakerClient::invoke_endpoint_with_response_stream`].
//! * [`sigv4`] signs each attempt through the transport's `RequestSigner`
//!   hook; [`eventstream`] (shared in `inferlink-core`) decodes (and encodes)
//!   the response-stream framing;
//!   [`error`] maps SageMaker's error types.
//! * [`factory()`] builds connectors from targets (register it with
//!   [`inferlink_core::Connectors`]); it refuses lower-case configuration
//!   keys neither [`KEYS`] nor the transport reads.
//!
//! Configuration keys (`region`, `endpoint_url`, `api`, the `AWS_*`
//! credentials, `infer_json_key`, …) are listed in [`config`] and in
//! `docs/connectors/sagemaker.md`.
//!
//! ```no_run
//! use inferlink_core::{Connectors, ModelRef, RawRequest};
//!
//! # async fn demo(target: inferlink_core::ConnectTarget) -> inferlink_core::Result<()> {
//! let connectors = Connectors::new().with(inferlink_sagemaker::factory());
//! let endpoint = connectors.connect(&target).await?;
//! let answer = endpoint
//!     .invoke(&ModelRef::new("my-endpoint"), RawRequest::json(r#"{"instances": [[1.0, 2.0]]}"#))
//!     .await?;
//! println!("{}", String::from_utf8_lossy(&answer.body));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod client;
pub mod codec;
pub mod config;
pub mod error;

pub use client::{
    EVENT_STREAM, InvokeEndpointAsyncRequest, InvokeEndpointAsyncResponse, InvokeEndpointRequest,
    InvokeEndpointResponse, InvokeStreamRequest, ResponseStream, SageMakerClient,
    SageMakerConnector, VENDOR, check_endpoint_name, check_payload, headers, payload_parts,
};
pub use config::{Api, JsonKey, KEYS, MAX_PAYLOAD_BYTES, SageMakerConfig};
/// The AWS event-stream framing, shared in `inferlink-core` (feature
/// `eventstream`) since Bedrock's streams use it too.
pub use inferlink_core::kit::eventstream;
/// SigV4 signing, shared in `inferlink-core` (feature `sigv4`) since blueprints sign too.
pub use inferlink_core::transport::sigv4;
pub use sigv4::{AwsCredentials, SigV4Signer, SigningOptions};

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::transport::config::KEY_SET;

/// Record products this factory serves ("Amazon SageMaker hosting services").
pub const PRODUCTS: &[&str] = &[
    "sagemaker",
    "amazon-sagemaker",
    "aws-sagemaker",
    "sagemaker-runtime",
    "amazon-sagemaker-runtime",
    "sagemaker-endpoint",
];

/// Service resources this factory serves when no product matches.
pub const RESOURCES: &[&str] = &["sagemaker", "sagemaker-runtime", "sagemaker-endpoint"];

/// The factory for SageMaker records: refuses unknown keys, then builds a
/// [`SageMakerClient`] with SageMaker's transport defaults
/// ([`config::default_transport`]) under the record's keys. A missing
/// region or missing credentials while signing fail here (`Config`, naming
/// the key), not at the first request; credentials the record lacks come
/// from the process environment.
pub fn factory() -> kit::Factory {
    let sets = &[KEYS, inferlink_aws::KEYS, KEY_SET];
    kit::Factory::new(VENDOR, PRODUCTS, RESOURCES, sets, |target| {
        Ok(Arc::new(SageMakerClient::from_target(target)?))
    })
}
