//! `LiveConnector`: a connector obtained for a selector follows registry
//! changes (endpoint moved, credential rotated, record removed) on the next
//! call, while calls in flight finish on the connector they started with.
//!
//! The connectors here are test doubles that answer with what they were built
//! from (endpoint URL and token); no protocol is involved. The same behaviour
//! against a real server is proven in the CLI's and connectors' live tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use inferlink::connector::LiveConnector;
use inferlink::{
    ConnectTarget, ConnectorFactory, ConnectorInfo, Connectors, Consumer, ErrorKind, Health,
    InferRequest, InferResponse, InferenceConnector, MemoryStore, ModelRef, Registry, Result,
    Selector, Tensor, TensorInference, async_trait,
};

/// Answers `infer` with one BYTES output "endpoint|token"; a call for model
/// `slow` waits until the test releases it.
#[derive(Debug)]
struct Echo {
    info: ConnectorInfo,
    token: inferlink::Secret,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl InferenceConnector for Echo {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    async fn health(&self) -> Result<Health> {
        Ok(Health::SERVING)
    }

    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        Some(self)
    }
}

#[async_trait]
impl TensorInference for Echo {
    async fn infer(&self, model: &ModelRef, _request: InferRequest) -> Result<InferResponse> {
        if model.name == "slow" {
            let _pass = self.gate.acquire().await.expect("gate open");
        }
        let answer = format!("{}|{}", self.info.endpoint, self.token.expose());
        let mut response = InferResponse::default();
        response
            .outputs
            .push(Tensor::from_byte_elements("OUT", vec![1], vec![answer]).unwrap());
        Ok(response)
    }
}

#[derive(Debug)]
struct EchoFactory {
    built: AtomicUsize,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl ConnectorFactory for EchoFactory {
    fn vendor(&self) -> &str {
        "echo"
    }

    fn products(&self) -> &[&str] {
        &["echo-server"]
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        self.built.fetch_add(1, Ordering::SeqCst);
        let token = target
            .value("TOKEN")
            .map(|v| inferlink::Secret::new(v.expose()))
            .unwrap_or_else(|| inferlink::Secret::new(""));
        Ok(Arc::new(Echo {
            info: ConnectorInfo::new("echo", "test", &target.url),
            token,
            gate: Arc::clone(&self.gate),
        }))
    }
}

fn record(url: &str, token: &str, description: &str) -> inferlink::ExtensionRecord {
    let yaml = format!(
        r#"
id: echo
product: echo-server
version: "1.0.0"
description: {description}
services:
  - id: api
    resource: echo
    category: prediction-serving
    endpoints:
      - url: {url}
        type: external
    credentials:
      - id: main
        scope: global
        configuration:
          TOKEN: {token}
"#
    );
    inferlink::format::parse_records(&yaml)
        .unwrap()
        .pop()
        .unwrap()
}

async fn answer(live: &LiveConnector, model: &str) -> Result<String> {
    let response = live
        .infer(&ModelRef::new(model), InferRequest::new())
        .await?;
    let out = response.require_output("OUT")?.to_byte_elements()?;
    Ok(String::from_utf8(out[0].to_vec()).unwrap())
}

#[tokio::test]
async fn the_next_call_follows_the_registry_and_in_flight_calls_finish_on_the_old_one() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry
        .register(record("http://127.0.0.1:9001", "t1", "one"))
        .await
        .unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let factory = Arc::new(EchoFactory {
        built: AtomicUsize::new(0),
        gate: Arc::clone(&gate),
    });
    let mut connectors = Connectors::new();
    connectors.register_shared(factory.clone());
    let live = LiveConnector::connect(
        &registry,
        Arc::new(connectors),
        Selector::category("prediction-serving"),
        Consumer::anywhere(),
    )
    .await
    .unwrap();
    assert_eq!(
        answer(&live, "m").await.unwrap(),
        "http://127.0.0.1:9001|t1"
    );
    assert_eq!(factory.built.load(Ordering::SeqCst), 1);

    // A call in flight when the token rotates...
    let slow = {
        let live = live.clone();
        tokio::spawn(async move { answer(&live, "slow").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    registry
        .upsert(record("http://127.0.0.1:9001", "t2", "one"))
        .await
        .unwrap();
    // ...does not hold back the next call, which uses the new token.
    assert_eq!(
        answer(&live, "m").await.unwrap(),
        "http://127.0.0.1:9001|t2"
    );
    assert_eq!(live.rebuilds(), 1);
    gate.add_permits(1);
    assert_eq!(
        slow.await.unwrap().unwrap(),
        "http://127.0.0.1:9001|t1",
        "the in-flight call finishes on the connector it started with"
    );

    // The endpoint moves.
    registry
        .upsert(record("http://127.0.0.1:9002", "t2", "one"))
        .await
        .unwrap();
    assert_eq!(
        answer(&live, "m").await.unwrap(),
        "http://127.0.0.1:9002|t2"
    );
    assert_eq!(
        live.current_info().await.unwrap().endpoint,
        "http://127.0.0.1:9002"
    );
    assert_eq!(
        live.info().endpoint,
        "http://127.0.0.1:9001",
        "info() is the first connector's"
    );
    assert_eq!(live.rebuilds(), 2);

    // A change that does not alter the choice keeps the connector.
    registry
        .upsert(record("http://127.0.0.1:9002", "t2", "two"))
        .await
        .unwrap();
    assert_eq!(
        answer(&live, "m").await.unwrap(),
        "http://127.0.0.1:9002|t2"
    );
    assert_eq!(live.rebuilds(), 2);
    assert_eq!(factory.built.load(Ordering::SeqCst), 3);

    // The record goes away: calls fail as the resolver does; it comes back: calls work.
    registry.unregister("echo").await.unwrap();
    let e = answer(&live, "m").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatch);
    assert_eq!(
        live.resolution().await.unwrap_err().kind(),
        ErrorKind::NoMatch
    );
    registry
        .register(record("http://127.0.0.1:9003", "t3", "back"))
        .await
        .unwrap();
    assert_eq!(
        answer(&live, "m").await.unwrap(),
        "http://127.0.0.1:9003|t3"
    );
    let shown = format!("{live:?}");
    assert!(!shown.contains("t3"), "Debug shows no secret: {shown}");
}

#[tokio::test]
async fn a_selector_that_does_not_resolve_now_is_an_error_at_connect() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    let e = LiveConnector::connect(
        &registry,
        Arc::new(Connectors::new()),
        Selector::category("prediction-serving"),
        Consumer::anywhere(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatch);
}
