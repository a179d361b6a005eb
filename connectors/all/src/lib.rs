//! Every connector crate of inferlink in one [`Connectors`] set.
//!
//! The `inferlink` CLI and the Ballista executors (`inferlink-ballista`)
//! call through the same connectors; this crate is the one list of them, so
//! a new connector crate is added here once and reaches both.
//!
//! ```
//! let products = inferlink_connectors::all().products().join(" ");
//! for product in ["kserve", "triton", "sagemaker", "openai", "bedrock"] {
//!     assert!(products.split(' ').any(|p| p == product), "{product}");
//! }
//! ```
#![deny(missing_docs)]

use inferlink_core::Connectors;
use inferlink_core::Result;
use inferlink_core::transport::HostTransportSettings;

/// Every connector factory. A record's product picks the vendor crate; the
/// generic Open Inference Protocol connector serves any other record whose
/// service resource is an OIP one (`inference-v2`, …).
pub fn all() -> Connectors {
    Connectors::new()
        .with(inferlink_oip::factory())
        .with(inferlink_triton::factory())
        .with(inferlink_kserve::factory())
        .with(inferlink_seldon::factory())
        .with(inferlink_torchserve::factory())
        .with(inferlink_tfserving::factory())
        .with(inferlink_sagemaker::factory())
        .with(inferlink_omi::factory())
        .with(inferlink_mlflow::factory())
        .with(inferlink_openai::factory())
        .with(inferlink_blueprint::factory())
        .with(inferlink_bedrock::factory())
}

/// [`all`] with the operator's host-only transport settings from the
/// environment ([`HostTransportSettings::from_env`]:
/// `INFERLINK_ENDPOINT_POLICY`, `INFERLINK_ALLOW_FILE_DIRS`).
///
/// Errors: a malformed policy or directory list in the environment
/// ([`inferlink_core::ErrorKind::Config`]).
pub fn from_env() -> Result<Connectors> {
    Ok(all().with_host_transport(HostTransportSettings::from_env()?))
}
