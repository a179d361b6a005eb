//! [`TritonFactory`]: connectors from resolutions.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink::transport::TransportConfig;
use inferlink::{ConnectorFactory, InferenceConnector, Resolution, Result};

use crate::client::{TritonClient, TritonConnector, VENDOR};
use crate::config::{TensorMode, TritonConfig};

/// Record products this factory serves.
pub const PRODUCTS: &[&str] = &[
    "triton",
    "nvidia-triton",
    "triton-inference-server",
    "tritonserver",
    "nvidia-triton-inference-server",
];
/// Service resources this factory serves (when no product matches).
pub const RESOURCES: &[&str] = &["triton", "triton-inference"];

/// Builds [`TritonConnector`]s from resolutions.
#[derive(Debug, Clone)]
pub struct TritonFactory {
    transport: TransportConfig,
    tensor_mode: TensorMode,
}

impl Default for TritonFactory {
    fn default() -> Self {
        TritonFactory::new()
    }
}

impl TritonFactory {
    /// The factory with Triton's defaults (binary tensors from 4096 bytes,
    /// no request compression, the OIP transport defaults: gzip responses off).
    pub fn new() -> Self {
        TritonFactory {
            transport: inferlink_oip::config::default_transport(),
            tensor_mode: TritonConfig::new("http://unused.invalid").tensor_mode,
        }
    }

    /// Transport settings used where a record is silent.
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// The tensor mode used where a record sets neither
    /// `binary_threshold_bytes` nor `tensor_encoding`.
    pub fn with_tensor_mode(mut self, mode: TensorMode) -> Self {
        self.tensor_mode = mode;
        self
    }

    /// The configuration a resolution yields under this factory's defaults.
    pub fn config_for(&self, resolution: &Resolution) -> Result<TritonConfig> {
        let mut base = TritonConfig::new(resolution.endpoint().url.clone());
        base.oip.transport = self.transport.clone();
        base.tensor_mode = self.tensor_mode;
        base.apply_resolution(resolution)
    }
}

#[async_trait]
impl ConnectorFactory for TritonFactory {
    fn vendor(&self) -> &str {
        VENDOR
    }

    fn products(&self) -> &[&str] {
        PRODUCTS
    }

    fn resources(&self) -> &[&str] {
        RESOURCES
    }

    async fn connect(&self, resolution: &Resolution) -> Result<Arc<dyn InferenceConnector>> {
        let config = self.config_for(resolution)?;
        Ok(Arc::new(TritonConnector::new(TritonClient::new(config)?)))
    }
}
