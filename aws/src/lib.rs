//! # inferlink-aws
//!
//! What inferlink's AWS connectors (SageMaker, Bedrock) share about AWS
//! authentication: the region and credential configuration keys, read the
//! same way by each, and the SigV4 signer built from them.
//!
//! ## Public API
//!
//! * [`KEYS`] (owner `"aws"`, names in [`keys`]): `region` (aliases
//!   `AWS_REGION`, `AWS_DEFAULT_REGION`, `aws_region`), `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (each also in lower case).
//!   A connector's factory lists it beside its own key set and the
//!   transport's: `kit::Factory::new(VENDOR, PRODUCTS, RESOURCES,
//!   &[KEYS, inferlink_aws::KEYS, KEY_SET], build)`.
//! * [`AwsAuthConfig`]: a field of the connector's config. In its
//!   `read_keys`, the connector calls [`AwsAuthConfig::read_key`] for each
//!   pair (it answers whether the key was an AWS one) and
//!   [`AwsAuthConfig::finish`] after the loop (or
//!   [`AwsAuthConfig::read_keys`] for both). Its client takes the region
//!   with [`AwsAuthConfig::region_or_env`] (giving the region it finds in
//!   its endpoint URL, if any) and the signer with
//!   [`AwsAuthConfig::signer`]`(signing_name, region)`, e.g. `"bedrock"`;
//!   the [`SigV4Signer`] goes to the transport as
//!   `HttpTransport::builder(url).signer(Arc::new(signer))`.
//! * [`check_region`]: the region-name check, for regions found elsewhere.
//! * Re-exported from `inferlink_core::transport::sigv4`: [`SigV4Signer`],
//!   [`AwsCredentials`], [`SigningOptions`], and the error classes of AWS
//!   services ([`aws_error_class`], [`aws_classifier`]).
//!
//! Errors are [`inferlink_core::ErrorKind::Config`] naming the key, never
//! a credential; `Debug` of everything here hides every credential.
//!
//! ```
//! use inferlink_aws::AwsAuthConfig;
//! use inferlink_core::ConfigValue;
//!
//! let mut aws = AwsAuthConfig::new();
//! for (key, value) in [("region", "us-west-2"), ("aws_access_key_id", "AKIDEXAMPLE"),
//!                      ("aws_secret_access_key", "example-secret")] {
//!     assert!(aws.read_key(key, &ConfigValue::Plain(value.into()))?);
//! }
//! aws.finish()?;
//! let region = aws.region_or_env(None).unwrap();
//! let signer = aws.signer("bedrock", &region)?;
//! assert_eq!(signer.region(), "us-west-2");
//! # Ok::<(), inferlink_core::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod cache;
#[cfg(feature = "chain")]
pub mod chain;
pub mod config;
pub mod endpoint;

pub use cache::{CachedCredentials, FetchCredentials, FetchedCredentials};
#[cfg(feature = "chain")]
pub use chain::ChainProvider;
pub use config::{AwsAuthConfig, CredentialSource, KEYS, REGION_ENV, check_region, keys};
pub use inferlink_core::transport::sigv4::{
    AwsCredentials, CredentialsProvider, SigV4Signer, SigningOptions, aws_classifier,
    aws_error_class,
};
