//! Portable selection (seed 002, requirement 7; issue 5 "Cross-cutting"): one
//! selector, `service_category: prediction-serving`, resolves to Seldon on
//! one registry and to KServe on another, and the same `infer` call works on
//! both real servers.
//!
//! The Seldon installation is MLServer through `inferlink-seldon`; the KServe
//! one is KServe's python model server through `inferlink-kserve` (its record
//! names product `kserve`; the connector discovers V2). The host registers
//! every connector crate, as the CLI does; the record picks one. Both serve a
//! `doubler` taking `input-0`.

use inferlink::{
    Connectors, Consumer, InferRequest, MemoryStore, ModelRef, Registry, Selector, Tensor,
};
use inferlink_testkit::live;
use inferlink_testkit::servers::ServerKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_selector_finds_seldon_here_and_kserve_there() {
    let Some(mlserver) = live::shared_server(ServerKind::MlServer).await else {
        return;
    };
    let Some(kserve) = live::shared_server(ServerKind::KServe).await else {
        return;
    };
    let installations = [
        (
            "seldon",
            format!(
                "id: seldon-core-dev\nproduct: seldon\nversion: \"2.8.0\"\nservices:\n  - id: API\n    \
                 resource: seldon-core-api\n    category: prediction-serving\n    endpoints:\n      \
                 - url: {}\n",
                mlserver.http_url()
            ),
        ),
        (
            "kserve",
            format!(
                "id: kserve-dev\nproduct: kserve\nversion: \"0.21.0\"\nservices:\n  - id: API\n    \
                 resource: inference-v2\n    category: prediction-serving\n    endpoints:\n      \
                 - url: {}\n",
                kserve.http_url()
            ),
        ),
    ];
    // The host's one set of connectors and its one selector.
    let connectors = Connectors::new()
        .with(inferlink_oip::factory())
        .with(inferlink_kserve::factory())
        .with(inferlink_seldon::factory());
    let selector = Selector::category("prediction-serving");
    for (vendor, record) in installations {
        let registry = Registry::open(MemoryStore::new()).await.unwrap();
        registry.register_yaml(&record).await.unwrap();
        let resolution = registry.resolve(&selector, &Consumer::anywhere()).unwrap();
        let connector = connectors.connect(&resolution).await.unwrap();
        assert_eq!(connector.info().vendor, vendor);
        let x = Tensor::new("input-0", vec![3], vec![1.0f32, 2.5, -4.0]).unwrap();
        let reply = connector
            .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x))
            .await
            .unwrap();
        let doubled: Vec<f32> = reply.require_output("output-0").unwrap().to_vec().unwrap();
        assert_eq!(doubled, vec![2.0, 5.0, -8.0], "{vendor}");
    }
}
