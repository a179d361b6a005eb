//! [`TritonFactory`]: connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

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

/// Builds [`TritonConnector`]s from targets.
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

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<TritonConfig> {
        let mut base = TritonConfig::new(target.url.clone());
        base.oip.transport = self.transport.clone();
        base.tensor_mode = self.tensor_mode;
        base.apply_target(target)
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

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        let config = self.config_for(target)?;
        Ok(Arc::new(TritonConnector::new(TritonClient::new(config)?)))
    }
}
