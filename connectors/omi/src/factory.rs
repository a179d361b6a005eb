//! [`OmiFactory`]: connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

use crate::client::{DEFAULT_VENDOR, OmiClient, OmiConnector};
use crate::config::OmiConfig;

/// Record products the factory serves (compared case-insensitively).
///
/// `chassis`/`chassisml`: containers built by chassis serve OMI unless they
/// were built with its KServe interface; register those under a KServe product.
/// The Modzy platform's own REST API is not OMI and is not listed.
pub const PRODUCTS: &[&str] = &[
    "omi",
    "open-model-interface",
    "openmodelinterface",
    "chassis",
    "chassisml",
];

/// Service resources the factory serves when no product matches.
pub const RESOURCES: &[&str] = &["omi", "open-model-interface", "modzy-model"];

/// Builds [`OmiConnector`]s from targets.
///
/// A host passes its transport defaults (for example an endpoint policy)
/// with [`OmiFactory::with_transport_defaults`]; the record's keys override
/// them. Configuration is read and validated in `connect`: a bad key is a
/// [`Config`](inferlink_core::ErrorKind::Config) error naming it, before any call.
#[derive(Debug, Clone)]
pub struct OmiFactory {
    transport: TransportConfig,
}

impl Default for OmiFactory {
    fn default() -> Self {
        OmiFactory::new()
    }
}

impl OmiFactory {
    /// The factory with the shared transport's defaults.
    pub fn new() -> Self {
        OmiFactory {
            transport: TransportConfig::default(),
        }
    }

    /// Transport settings used where a record is silent.
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<OmiConfig> {
        let mut base = OmiConfig::new(target.url.clone());
        base.transport = self.transport.clone();
        let config = base.apply_target(target)?;
        config.validate()?;
        Ok(config)
    }

    /// A connector (the concrete type, for [`OmiConnector::client`]).
    pub fn connector(&self, target: &ConnectTarget) -> Result<OmiConnector> {
        Ok(OmiConnector::new(OmiClient::with_vendor(
            self.config_for(target)?,
            DEFAULT_VENDOR,
        )?))
    }
}

#[async_trait]
impl ConnectorFactory for OmiFactory {
    fn vendor(&self) -> &str {
        DEFAULT_VENDOR
    }

    fn products(&self) -> &[&str] {
        PRODUCTS
    }

    fn resources(&self) -> &[&str] {
        RESOURCES
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        Ok(Arc::new(self.connector(target)?))
    }
}
