//! [`SeldonFactory`]: Seldon connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

use crate::client::{SeldonConnector, VENDOR};
use crate::config::{SeldonConfig, default_protocol};

/// Record products served (seed 004 names Seldon Core `seldon`).
pub const PRODUCTS: &[&str] = &[
    "seldon",
    "seldon-core",
    "seldoncore",
    "seldon-core-v1",
    "seldon-core-v2",
    "seldon-v2",
    "mlserver",
    "seldon-mlserver",
];

/// Service resources served when no factory claims the product (seed 004's
/// Seldon service is `seldon-core-api`).
pub const RESOURCES: &[&str] = &["seldon-core-api", "seldon", "seldon-api", "mlserver"];

/// Builds [`SeldonConnector`]s from targets.
///
/// The protocol comes from the record's `protocol` key, else a `grpc://`
/// endpoint means `v2-grpc`, else the product and version decide
/// ([`default_protocol`]: MLServer and Seldon Core 2.x speak v2, older
/// Seldon Core v1). Configuration is checked here, so a bad key fails at
/// `connect`, not at the first call.
#[derive(Debug, Clone)]
pub struct SeldonFactory {
    transport: TransportConfig,
}

impl Default for SeldonFactory {
    fn default() -> Self {
        SeldonFactory::new()
    }
}

impl SeldonFactory {
    /// A factory with the OIP transport defaults (`gzip` off).
    pub fn new() -> Self {
        SeldonFactory {
            transport: inferlink_oip::config::default_transport(),
        }
    }

    /// Transport settings used where a record is silent (timeouts, retries,
    /// an endpoint policy, …).
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<SeldonConfig> {
        SeldonConfig::from_values(
            &target.url,
            default_protocol(&target.product, &target.version),
            target.values(),
            self.transport.clone(),
        )
    }
}

#[async_trait]
impl ConnectorFactory for SeldonFactory {
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
        Ok(Arc::new(SeldonConnector::new(config)?))
    }
}
