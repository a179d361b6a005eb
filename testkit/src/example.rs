//! The start every connector example shares, written once: a host
//! application's steps from one extension record to a connector.

use std::sync::Arc;

use inferlink::{
    ConnectorFactory, Connectors, Consumer, InferenceConnector, MemoryStore, Registry, Resolution,
    Result, Selector,
};

/// What [`connect_record`] set up: the registry holding the record, the
/// record's resolution, and the connector built from it.
#[derive(Debug)]
pub struct ExampleConnection {
    /// An in-memory registry holding the example's record.
    pub registry: Registry,
    /// The resolution of the example's selector.
    pub resolution: Resolution,
    /// The connector the factory built from the resolution.
    pub connector: Arc<dyn InferenceConnector>,
}

/// Does what a host application does with a record: registers
/// `record_yaml` in an in-memory registry, resolves `selector` for any
/// consumer, connects through `factory`, and prints which vendor, protocol
/// and endpoint it connected to.
pub async fn connect_record(
    record_yaml: &str,
    selector: &Selector,
    factory: impl ConnectorFactory + 'static,
) -> Result<ExampleConnection> {
    let registry = Registry::open(MemoryStore::new()).await?;
    registry.register_yaml(record_yaml).await?;
    let resolution = registry.resolve(selector, &Consumer::anywhere())?;
    let connector = Connectors::new().with(factory).connect(&resolution).await?;
    let info = connector.info();
    println!(
        "connected: {} over {} at {}",
        info.vendor, info.protocol, info.endpoint
    );
    Ok(ExampleConnection {
        registry,
        resolution,
        connector,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink::{ConnectTarget, ConnectorInfo, Health, async_trait};

    /// A factory whose connectors answer `health` only (nothing to serve).
    #[derive(Debug)]
    struct ProbeFactory;

    #[derive(Debug)]
    struct Probe(ConnectorInfo);

    #[async_trait]
    impl InferenceConnector for Probe {
        fn info(&self) -> &ConnectorInfo {
            &self.0
        }

        async fn health(&self) -> Result<Health> {
            Ok(Health::SERVING)
        }
    }

    #[async_trait]
    impl ConnectorFactory for ProbeFactory {
        fn vendor(&self) -> &str {
            "probe"
        }

        fn products(&self) -> &[&str] {
            &["probe"]
        }

        async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
            Ok(Arc::new(Probe(ConnectorInfo::new(
                "probe",
                "none",
                &target.url,
            ))))
        }
    }

    #[tokio::test]
    async fn a_record_becomes_a_connector() {
        let yaml = r#"
id: probe-example
product: probe
version: "1"
services:
  - id: api
    resource: probe
    category: prediction-serving
    endpoints:
      - url: http://127.0.0.1:9
"#;
        let c = connect_record(
            yaml,
            &Selector::category("prediction-serving"),
            ProbeFactory,
        )
        .await
        .unwrap();
        assert_eq!(c.connector.info().vendor, "probe");
        assert_eq!(c.connector.info().endpoint, "http://127.0.0.1:9");
        assert_eq!(c.resolution.target().url, "http://127.0.0.1:9");
        assert!(c.registry.get("probe-example").is_some());
        let missing = connect_record(yaml, &Selector::category("nothing-here"), ProbeFactory).await;
        assert!(missing.is_err());
    }
}
