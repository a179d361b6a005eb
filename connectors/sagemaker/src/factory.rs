//! [`SageMakerFactory`]: connectors from targets.

use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, ConnectorFactory, InferenceConnector, Result};

use crate::client::{SageMakerClient, SageMakerConnector, VENDOR};
use crate::config::{SageMakerConfig, default_transport};

/// Record products this factory serves ("Amazon SageMaker hosting services").
pub const PRODUCTS: &[&str] = &[
    "sagemaker",
    "amazon-sagemaker",
    "aws-sagemaker",
    "sagemaker-runtime",
    "amazon-sagemaker-runtime",
    "sagemaker-endpoint",
];

/// Service resources this factory serves when no product matches.
pub const RESOURCES: &[&str] = &["sagemaker", "sagemaker-runtime", "sagemaker-endpoint"];

/// Builds [`SageMakerConnector`]s from targets.
///
/// The configuration ([`SageMakerConfig`], `docs/connectors/sagemaker.md`)
/// is read and checked in `connect`: a bad key, a missing region or missing
/// credentials while signing fail there with [`inferlink_core::ErrorKind::Config`]
/// naming the key, not at the first request. A host passes its transport
/// defaults (for example an endpoint policy) with
/// [`SageMakerFactory::with_transport_defaults`]; the record's keys override them.
#[derive(Debug, Clone)]
pub struct SageMakerFactory {
    transport: TransportConfig,
}

impl Default for SageMakerFactory {
    fn default() -> Self {
        SageMakerFactory::new()
    }
}

impl SageMakerFactory {
    /// The factory with SageMaker's transport defaults.
    pub fn new() -> Self {
        SageMakerFactory {
            transport: default_transport(),
        }
    }

    /// Transport settings used where a record is silent.
    pub fn with_transport_defaults(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// The configuration a target yields under this factory's defaults.
    pub fn config_for(&self, target: &ConnectTarget) -> Result<SageMakerConfig> {
        let mut base = SageMakerConfig::new(target.url.clone());
        base.transport = self.transport.clone();
        base.apply_target(target)
    }
}

#[async_trait]
impl ConnectorFactory for SageMakerFactory {
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
        let client = SageMakerClient::new(self.config_for(target)?)?;
        Ok(Arc::new(SageMakerConnector::new(client)))
    }
}
