//! [`TorchServeFactory`]: connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

use crate::client::{TorchServeClient, TorchServeConnector, VENDOR};
use crate::config::TorchServeConfig;
use crate::keys::TokenKeys;

/// Record products the factory serves (compared case-insensitively).
pub const PRODUCTS: &[&str] = &[
    "torchserve",
    "pytorch-serve",
    "pytorch-torchserve",
    "torch-serve",
];
/// Service resources the factory serves when no product matches.
pub const RESOURCES: &[&str] = &["torchserve", "torchserve-inference"];

/// Builds [`TorchServeConnector`]s from targets.
///
/// The configuration is read and checked in `connect` (a bad key is a
/// `Config` error naming it). A host passes its transport defaults (for
/// example an endpoint policy) with [`TorchServeFactory::with_transport_defaults`];
/// the record's keys override them.
#[derive(Debug, Clone)]
pub struct TorchServeFactory {
    transport: TransportConfig,
}

impl Default for TorchServeFactory {
    fn default() -> Self {
        TorchServeFactory::new()
    }
}

impl TorchServeFactory {
    /// The factory with the shared transport's defaults.
    pub fn new() -> Self {
        TorchServeFactory {
            transport: TransportConfig::default(),
        }
    }

    /// Transport settings used where a record is silent.
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<TorchServeConfig> {
        let mut base = TorchServeConfig::new(target.url.clone());
        base.transport = self.transport.clone();
        let config = base.apply_target(target)?;
        config.validate()?;
        Ok(config)
    }

    /// The concrete connector (with [`TorchServeConnector::keys`] and
    /// [`TorchServeConnector::client`]), where [`ConnectorFactory::connect`]
    /// returns a trait object.
    pub fn build(&self, target: &ConnectTarget) -> Result<TorchServeConnector> {
        let config = self.config_for(target)?;
        Ok(TorchServeConnector::new(TorchServeClient::new(config)?))
    }

    /// A connector reading its tokens from `keys`, a handle the caller keeps
    /// updating (the keys in the target seed it only when `seed` is true).
    pub fn build_with_keys(
        &self,
        target: &ConnectTarget,
        keys: TokenKeys,
        seed: bool,
    ) -> Result<TorchServeConnector> {
        let config = self.config_for(target)?;
        if seed {
            keys.set_inference(config.inference_key.clone());
            keys.set_management(config.management_key.clone());
        }
        Ok(TorchServeConnector::new(TorchServeClient::with_keys(
            config, keys,
        )?))
    }
}

#[async_trait]
impl ConnectorFactory for TorchServeFactory {
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
        Ok(Arc::new(self.build(target)?))
    }
}
