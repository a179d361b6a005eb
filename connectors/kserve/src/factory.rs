//! [`KServeFactory`]: KServe connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

use crate::client::{KServeClient, KServeConnector, VENDOR};
use crate::config::KServeConfig;

/// Record products served: KServe and its former name KFServing (the
/// seeds' records say `product: kserve`).
pub const PRODUCTS: &[&str] = &["kserve", "kfserving"];
/// Service resources served when no factory claims the product: a KServe
/// predictor's data plane. (`kserve-api` / `kfserve-api` in the seeds name
/// the Kubernetes control-plane API, which is not an inference endpoint.)
pub const RESOURCES: &[&str] = &["kserve-predictor", "kserve-inference", "inference-v1"];

/// Builds [`KServeConnector`]s from targets.
///
/// `connect` reads and checks the configuration ([`KServeConfig`]); with
/// `protocol: auto` (the default for `http(s)://` endpoints) it also asks
/// the server which protocol it speaks, so it fails with the transport's
/// error when the server cannot be reached.
#[derive(Debug, Clone)]
pub struct KServeFactory {
    transport: TransportConfig,
}

impl Default for KServeFactory {
    fn default() -> Self {
        KServeFactory::new()
    }
}

impl KServeFactory {
    /// The factory with OIP's transport defaults.
    pub fn new() -> Self {
        KServeFactory {
            transport: inferlink_oip::config::default_transport(),
        }
    }

    /// Transport settings used where a record is silent (timeouts, an
    /// endpoint policy, …).
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<KServeConfig> {
        let mut base = KServeConfig::new(target.url.clone());
        base.oip.transport = self.transport.clone();
        base.apply_values(target.values())
    }
}

#[async_trait]
impl ConnectorFactory for KServeFactory {
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
        let client = KServeClient::connect(config).await?;
        Ok(Arc::new(KServeConnector::new(client)))
    }
}
