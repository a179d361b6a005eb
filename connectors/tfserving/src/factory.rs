//! [`TfServingFactory`]: connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

use crate::client::{TfServingClient, TfServingConnector, VENDOR};
use crate::config::TfServingConfig;

/// Record products the factory serves (compared case-insensitively): the
/// names the project's seeds use ("Tensorflow Serving", "TFServing") in
/// their usual spellings, and pythie-serving (a TF-Serving-compatible
/// gRPC server).
pub const PRODUCTS: &[&str] = &[
    "tensorflow-serving",
    "tensorflow_serving",
    "tensorflow serving",
    "tfserving",
    "tf-serving",
    "tf_serving",
    "pythie-serving",
];

/// Service resources the factory serves when no product matches.
pub const RESOURCES: &[&str] = &["tfserving", "tensorflow-serving", "tf-serving"];

/// Builds [`TfServingConnector`]s from targets.
#[derive(Debug, Clone, Default)]
pub struct TfServingFactory {
    transport: Option<TransportConfig>,
}

impl TfServingFactory {
    /// The factory with the shared transport's defaults.
    pub fn new() -> Self {
        TfServingFactory::default()
    }

    /// Transport settings used where a record is silent.
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<TfServingConfig> {
        let mut base = TfServingConfig::new(target.url.clone());
        if let Some(t) = &self.transport {
            base.transport = t.clone();
        }
        base.apply_values(target.values())
    }
}

#[async_trait]
impl ConnectorFactory for TfServingFactory {
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
        let client = TfServingClient::new(self.config_for(target)?)?;
        Ok(Arc::new(TfServingConnector::new(client)))
    }
}
