//! [`OipFactory`]: connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

use crate::client::{DEFAULT_VENDOR, OipClient, OipConnector};
use crate::codec::TensorEncoding;
use crate::config::OipConfig;

/// Record products the generic factory serves.
pub const PRODUCTS: &[&str] = &[
    "oip",
    "open-inference",
    "open-inference-protocol",
    "kserve-v2",
];
/// Service resources the generic factory serves (when no product matches).
pub const RESOURCES: &[&str] = &["oip", "inference-v2", "v2-inference", "open-inference"];

/// Builds [`OipConnector`]s from targets.
///
/// The generic factory ([`OipFactory::new`]) serves the products and
/// resources in [`PRODUCTS`] and [`RESOURCES`]; vendor crates build their
/// own with [`OipFactory::for_vendor`]. A host passes its transport
/// defaults (for example an endpoint policy) with
/// [`OipFactory::with_transport_defaults`]; the record's keys override them.
#[derive(Debug, Clone)]
pub struct OipFactory {
    vendor: &'static str,
    products: &'static [&'static str],
    resources: &'static [&'static str],
    tensor_encoding: TensorEncoding,
    transport: TransportConfig,
}

impl Default for OipFactory {
    fn default() -> Self {
        OipFactory::new()
    }
}

impl OipFactory {
    /// The generic factory: vendor `oip`, JSON tensors by default.
    pub fn new() -> Self {
        OipFactory::for_vendor(DEFAULT_VENDOR, PRODUCTS, RESOURCES)
    }

    /// A factory under another vendor name, products and resources (for
    /// the Triton, KServe and Seldon crates).
    pub fn for_vendor(
        vendor: &'static str,
        products: &'static [&'static str],
        resources: &'static [&'static str],
    ) -> Self {
        OipFactory {
            vendor,
            products,
            resources,
            tensor_encoding: TensorEncoding::Json,
            transport: crate::config::default_transport(),
        }
    }

    /// The tensor encoding used when a record does not set `tensor_encoding`.
    pub fn with_tensor_encoding(mut self, encoding: TensorEncoding) -> Self {
        self.tensor_encoding = encoding;
        self
    }

    /// Transport settings used where a record is silent (timeouts, retries,
    /// an endpoint policy, …).
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<OipConfig> {
        let mut base = OipConfig::new(target.url.clone());
        base.tensor_encoding = self.tensor_encoding;
        base.transport = self.transport.clone();
        base.apply_target(target)
    }
}

#[async_trait]
impl ConnectorFactory for OipFactory {
    fn vendor(&self) -> &str {
        self.vendor
    }

    fn products(&self) -> &[&str] {
        self.products
    }

    fn resources(&self) -> &[&str] {
        self.resources
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        let config = self.config_for(target)?;
        let client = OipClient::with_vendor(config, self.vendor)?;
        Ok(Arc::new(OipConnector::new(client)))
    }
}
