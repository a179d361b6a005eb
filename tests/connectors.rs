//! `Connectors` dispatch, the error context it adds, and the
//! `InferenceConnectorExt` conveniences.
//!
//! Everything here runs over `ScriptedConnector`, a test double of a
//! connector whose every answer is scripted by the test. It talks to no
//! server and fakes no protocol: it exists to exercise the dispatch and
//! convenience logic, which is independent of any wire format. Connectors
//! against real servers are tested in their own crates.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use inferlink::{
    ConnectTarget, ConnectorFactory, ConnectorInfo, Connectors, Consumer, DataType, Error,
    ErrorKind, Health, InferRequest, InferResponse, InferenceConnector, InferenceConnectorExt,
    MemoryStore, ModelDescription, ModelMetadata, ModelReadiness, ModelRef, Registry, Resolution,
    Result, Selector, StreamingInference, Tensor, TensorInference, TensorSpec, async_trait,
};

/// Which optional families a [`ScriptedConnector`] has besides tensor inference.
#[derive(Debug, Default, Clone, Copy)]
struct Families {
    model_metadata: bool,
    model_ready: bool,
}

impl Families {
    fn with_model_metadata(mut self, yes: bool) -> Self {
        self.model_metadata = yes;
        self
    }

    fn with_model_ready(mut self, yes: bool) -> Self {
        self.model_ready = yes;
        self
    }
}

type Script<T> = Box<dyn Fn(usize) -> Result<T> + Send + Sync>;

/// A test double of a connector (no server, no protocol): every answer comes
/// from a closure of the call number, so tests can script sequences such as
/// "unavailable twice, then ready".
struct ScriptedConnector {
    info: ConnectorInfo,
    caps: Families,
    health: Script<Health>,
    model_ready: Script<bool>,
    metadata: Script<ModelMetadata>,
    infer: Script<InferResponse>,
    health_calls: AtomicUsize,
    ready_calls: AtomicUsize,
    metadata_calls: AtomicUsize,
    infer_calls: AtomicUsize,
}

impl std::fmt::Debug for ScriptedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScriptedConnector({})", self.info.vendor)
    }
}

impl ScriptedConnector {
    fn new(vendor: &str, endpoint: &str, caps: Families) -> Self {
        ScriptedConnector {
            info: ConnectorInfo::new(vendor, "scripted", endpoint),
            caps,
            health: Box::new(|_| Ok(Health::SERVING)),
            model_ready: Box::new(|_| Ok(true)),
            metadata: Box::new(|_| Ok(ModelMetadata::default())),
            infer: Box::new(|_| Ok(InferResponse::default())),
            health_calls: AtomicUsize::new(0),
            ready_calls: AtomicUsize::new(0),
            metadata_calls: AtomicUsize::new(0),
            infer_calls: AtomicUsize::new(0),
        }
    }

    fn caps() -> Families {
        Families::default()
    }

    fn health(mut self, f: impl Fn(usize) -> Result<Health> + Send + Sync + 'static) -> Self {
        self.health = Box::new(f);
        self
    }

    fn model_ready(mut self, f: impl Fn(usize) -> Result<bool> + Send + Sync + 'static) -> Self {
        self.model_ready = Box::new(f);
        self
    }

    fn metadata(
        mut self,
        f: impl Fn(usize) -> Result<ModelMetadata> + Send + Sync + 'static,
    ) -> Self {
        self.metadata = Box::new(f);
        self
    }

    fn infer(mut self, f: impl Fn(usize) -> Result<InferResponse> + Send + Sync + 'static) -> Self {
        self.infer = Box::new(f);
        self
    }
}

#[async_trait]
impl InferenceConnector for ScriptedConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    async fn health(&self) -> Result<Health> {
        (self.health)(self.health_calls.fetch_add(1, Ordering::SeqCst))
    }

    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        Some(self)
    }

    fn as_model_description(&self) -> Option<&dyn ModelDescription> {
        self.caps.model_metadata.then_some(self as _)
    }

    fn as_model_readiness(&self) -> Option<&dyn ModelReadiness> {
        self.caps.model_ready.then_some(self as _)
    }
}

#[async_trait]
impl TensorInference for ScriptedConnector {
    async fn infer(&self, _model: &ModelRef, _request: InferRequest) -> Result<InferResponse> {
        (self.infer)(self.infer_calls.fetch_add(1, Ordering::SeqCst))
    }
}

#[async_trait]
impl ModelDescription for ScriptedConnector {
    async fn model_metadata(&self, _model: &ModelRef) -> Result<ModelMetadata> {
        if !self.caps.model_metadata {
            return Err(inferlink::connector::unsupported(
                &self.info,
                "model metadata",
            ));
        }
        (self.metadata)(self.metadata_calls.fetch_add(1, Ordering::SeqCst))
    }
}

#[async_trait]
impl ModelReadiness for ScriptedConnector {
    async fn model_ready(&self, _model: &ModelRef) -> Result<bool> {
        if !self.caps.model_ready {
            return Err(inferlink::connector::unsupported(
                &self.info,
                "model readiness",
            ));
        }
        (self.model_ready)(self.ready_calls.fetch_add(1, Ordering::SeqCst))
    }
}

/// A factory for the dispatch tests: builds a [`ScriptedConnector`] labelled
/// with the factory's name, or fails with a scripted error.
#[derive(Debug)]
struct TestFactory {
    name: &'static str,
    products: &'static [&'static str],
    resources: &'static [&'static str],
    fail: Option<ErrorKind>,
}

impl TestFactory {
    fn new(name: &'static str, products: &'static [&'static str]) -> Self {
        TestFactory {
            name,
            products,
            resources: &[],
            fail: None,
        }
    }

    fn resources(mut self, resources: &'static [&'static str]) -> Self {
        self.resources = resources;
        self
    }
}

#[async_trait]
impl ConnectorFactory for TestFactory {
    fn vendor(&self) -> &str {
        self.name
    }

    fn products(&self) -> &[&str] {
        self.products
    }

    fn resources(&self) -> &[&str] {
        self.resources
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        if let Some(kind) = self.fail {
            return Err(Error::new(kind, "key \"timeout_ms\" is not a number"));
        }
        let connector = ScriptedConnector::new(self.name, &target.url, ScriptedConnector::caps())
            .infer(|_| Err(Error::not_found("no such model")));
        Ok(Arc::new(connector))
    }
}

const RECORDS: &str = r#"
id: gpu-triton
product: TRITON
version: "2.51.0"
services:
  - id: v2
    resource: OIP
    category: triton-serving
    endpoints:
      - url: http://127.0.0.1:18000
        type: external
---
id: custom-model
product: home-grown
version: "1.0.0"
services:
  - id: v2
    resource: Oip
    category: custom-serving
    endpoints:
      - url: http://127.0.0.1:18080
        type: external
---
id: odd-one
product: mystery-server
version: "1.0.0"
services:
  - id: api
    resource: mystery-protocol
    category: odd-serving
    endpoints:
      - url: http://127.0.0.1:18999
        type: external
"#;

async fn resolution(category: &str) -> Resolution {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry.register_yaml(RECORDS).await.unwrap();
    registry
        .resolve(&Selector::category(category), &Consumer::anywhere())
        .unwrap()
}

async fn vendor_for(connectors: &Connectors, category: &str) -> String {
    let r = resolution(category).await;
    connectors.connect(&r).await.unwrap().info().vendor.clone()
}

#[tokio::test]
async fn dispatch_by_product_ignores_case() {
    let connectors = Connectors::new().with(TestFactory::new("triton-factory", &["Triton"]));
    assert_eq!(connectors.products(), vec!["triton"]);
    assert_eq!(
        vendor_for(&connectors, "triton-serving").await,
        "triton-factory"
    );
}

#[tokio::test]
async fn resource_is_the_fallback_and_product_wins_over_it() {
    let connectors = Connectors::new()
        .with(TestFactory::new("oip-factory", &[]).resources(&["oip"]))
        .with(TestFactory::new("triton-factory", &["triton"]));
    assert_eq!(connectors.resources(), vec!["oip"]);
    // "home-grown" has no factory; its resource "Oip" has one.
    assert_eq!(
        vendor_for(&connectors, "custom-serving").await,
        "oip-factory"
    );
    // TRITON's service is also "OIP", but its product has a factory.
    assert_eq!(
        vendor_for(&connectors, "triton-serving").await,
        "triton-factory"
    );
    let r = resolution("custom-serving").await;
    assert_eq!(
        connectors.factory_for(&r.target()).unwrap().vendor(),
        "oip-factory"
    );
}

#[tokio::test]
async fn later_registration_wins() {
    let mut connectors = Connectors::new();
    connectors
        .register(TestFactory::new("first", &["triton"]).resources(&["oip"]))
        .register(TestFactory::new("second", &["TRITON"]));
    assert_eq!(vendor_for(&connectors, "triton-serving").await, "second");
    // The first factory still serves the resource nobody replaced.
    assert_eq!(vendor_for(&connectors, "custom-serving").await, "first");
    // A shared factory registers the same way.
    let shared: Arc<dyn ConnectorFactory> = Arc::new(TestFactory::new("third", &["triton"]));
    connectors.register_shared(Arc::clone(&shared));
    assert_eq!(vendor_for(&connectors, "triton-serving").await, "third");
}

#[tokio::test]
async fn no_connector_error_names_what_is_known() {
    let connectors = Connectors::new()
        .with(TestFactory::new("a", &["triton", "KServe"]).resources(&["oip"]))
        .with(TestFactory::new("b", &["seldon"]).resources(&["seldon-v1"]));
    let r = resolution("odd-serving").await;
    assert!(connectors.factory_for(&r.target()).is_none());
    let e = connectors.connect(&r).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(!e.is_retryable());
    let m = e.message();
    assert!(
        m.contains("no connector for product \"mystery-server\""),
        "{m}"
    );
    assert!(m.contains("service \"api\""), "{m}");
    assert!(m.contains("resource \"mystery-protocol\""), "{m}");
    assert!(m.contains("known products: kserve, seldon, triton"), "{m}");
    assert!(m.contains("known resources: oip, seldon-v1"), "{m}");
    assert_eq!(e.context("record"), Some("odd-one"));
}

#[tokio::test]
async fn a_factory_config_error_propagates() {
    let mut failing = TestFactory::new("strict", &["triton"]);
    failing.fail = Some(ErrorKind::Config);
    let connectors = Connectors::new().with(failing);
    let e = connectors
        .connect(&resolution("triton-serving").await)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(e.message(), "key \"timeout_ms\" is not a number");
    assert_eq!(e.vendor(), Some("strict"));
    assert_eq!(e.context("record"), Some("gpu-triton"));
}

#[tokio::test]
async fn connected_connectors_tag_their_errors() {
    let connectors = Connectors::new().with(TestFactory::new("tagging", &["triton"]));
    let connector = connectors
        .connect(&resolution("triton-serving").await)
        .await
        .unwrap();
    // Debug is the connector's own, not the wrapper's.
    assert_eq!(format!("{connector:?}"), "ScriptedConnector(tagging)");
    let model = ModelRef::new("doubler").with_version("3");
    let e = connector
        .infer(&model, InferRequest::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.vendor(), Some("tagging"));
    assert_eq!(e.endpoint(), Some("http://127.0.0.1:18000"));
    assert_eq!(e.model(), Some("doubler@3"));
    // Capabilities the connector lacks answer Unsupported, tagged too.
    let e = connector.models().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.vendor(), Some("tagging"));
    let e = connector
        .invoke(&model, inferlink::RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.model()),
        (ErrorKind::Unsupported, Some("doubler@3"))
    );
    // Context the connector set itself is kept.
    let inner = ScriptedConnector::new("outer", "http://x", ScriptedConnector::caps())
        .health(|_| Err(Error::new(ErrorKind::Unavailable, "down").with_vendor("inner")));
    let wrapped = inferlink::connector::with_error_context(Arc::new(inner));
    let e = wrapped.health().await.unwrap_err();
    assert_eq!(
        (e.vendor(), e.endpoint()),
        (Some("inner"), Some("http://x"))
    );
}

fn response(outputs: Vec<Tensor>) -> InferResponse {
    InferResponse {
        model_name: "m".into(),
        outputs,
        ..InferResponse::default()
    }
}

#[tokio::test]
async fn infer_one_wants_exactly_one_output() {
    let one = ScriptedConnector::new("v", "e", ScriptedConnector::caps())
        .infer(|_| Ok(response(vec![Tensor::from_vec("out", vec![2.0f32])])));
    let model = ModelRef::new("m");
    let out = one
        .infer_one(&model, Tensor::from_vec("in", vec![1.0f32]))
        .await
        .unwrap();
    assert_eq!(out.name(), "out");

    let two = ScriptedConnector::new("v", "e", ScriptedConnector::caps()).infer(|_| {
        Ok(response(vec![
            Tensor::from_vec("a", vec![1u8]),
            Tensor::from_vec("b", vec![1u8]),
        ]))
    });
    // Through a trait object, as hosts hold connectors.
    let dynamic: Arc<dyn InferenceConnector> = Arc::new(two);
    let e = dynamic
        .infer_one(&model, Tensor::from_vec("in", vec![1u8]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("got 2: [a, b]"), "{e}");

    let none =
        ScriptedConnector::new("v", "e", ScriptedConnector::caps()).infer(|_| Ok(response(vec![])));
    let e = none
        .infer_one(&model, Tensor::from_vec("in", vec![1u8]))
        .await
        .unwrap_err();
    assert!(e.message().contains("got 0: []"), "{e}");
}

fn doubler_metadata() -> ModelMetadata {
    ModelMetadata {
        name: "doubler".into(),
        inputs: vec![
            TensorSpec::new("INPUT_1", DataType::Fp32, vec![-1, 2]),
            TensorSpec::new("MASK", DataType::Bool, vec![-1]),
        ],
        outputs: vec![TensorSpec::new("OUTPUT_1", DataType::Fp32, vec![-1, 2])],
        ..ModelMetadata::default()
    }
}

fn checked_connector(metadata: ModelMetadata) -> ScriptedConnector {
    let caps = ScriptedConnector::caps().with_model_metadata(true);
    ScriptedConnector::new("v", "e", caps)
        .metadata(move |_| Ok(metadata.clone()))
        .infer(|_| Ok(response(vec![])))
}

#[tokio::test]
async fn infer_checked_validates_before_sending() {
    let model = ModelRef::new("doubler");
    let input = Tensor::new("INPUT_1", vec![3, 2], vec![0.0f32; 6]).unwrap();
    let mask = Tensor::from_vec("MASK", vec![true, false, true]);
    let good = InferRequest::new()
        .with_input(input.clone())
        .with_input(mask.clone())
        .with_output("OUTPUT_1");
    let c = checked_connector(doubler_metadata());
    c.infer_checked(&model, good).await.unwrap();
    assert_eq!(c.infer_calls.load(Ordering::SeqCst), 1);

    let cases: Vec<(InferRequest, &str)> = vec![
        (
            InferRequest::new()
                .with_input(input.clone().with_name("INPUT_2"))
                .with_input(mask.clone()),
            "model \"doubler\" has no input \"INPUT_2\"; its inputs: [INPUT_1, MASK]",
        ),
        (
            InferRequest::new()
                .with_input(Tensor::new("INPUT_1", vec![3, 2], vec![0i32; 6]).unwrap())
                .with_input(mask.clone()),
            "input \"INPUT_1\" is INT32 but the model expects FP32",
        ),
        (
            InferRequest::new()
                .with_input(input.clone().reshape(vec![2, 3]).unwrap())
                .with_input(mask.clone()),
            "input \"INPUT_1\" has shape [2, 3] but the model expects [-1, 2]",
        ),
        (
            InferRequest::new()
                .with_input(input.clone().reshape(vec![6]).unwrap())
                .with_input(mask.clone()),
            "input \"INPUT_1\" has shape [6] but the model expects [-1, 2]",
        ),
        (
            InferRequest::new().with_input(input.clone()),
            "model \"doubler\" needs input(s) [MASK] that the request lacks",
        ),
        (
            InferRequest::new()
                .with_input(input.clone())
                .with_input(mask.clone())
                .with_input(mask.clone()),
            "input \"MASK\" is given twice",
        ),
        (
            InferRequest::new()
                .with_input(input.clone())
                .with_input(mask.clone())
                .with_output("PROBS"),
            "model \"doubler\" has no output \"PROBS\"; its outputs: [OUTPUT_1]",
        ),
    ];
    for (request, want) in cases {
        let e = c.infer_checked(&model, request).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains(want), "want {want:?} in {e}");
        assert_eq!(e.model(), Some("doubler"));
    }
    assert_eq!(
        c.infer_calls.load(Ordering::SeqCst),
        1,
        "rejected requests are never sent"
    );
}

#[tokio::test]
async fn infer_checked_skips_what_it_cannot_check() {
    let model = ModelRef::new("custom");
    let anything = InferRequest::new().with_input(Tensor::from_vec("whatever", vec![1u8]));
    // Empty metadata (KServe custom models): nothing declared, nothing checked.
    let empty = checked_connector(ModelMetadata {
        name: "custom".into(),
        ..ModelMetadata::default()
    });
    empty.infer_checked(&model, anything.clone()).await.unwrap();
    assert_eq!(empty.infer_calls.load(Ordering::SeqCst), 1);
    // No metadata capability: sent without a metadata call.
    let plain = ScriptedConnector::new("v", "e", ScriptedConnector::caps())
        .metadata(|_| panic!("metadata must not be called"));
    plain.infer_checked(&model, anything.clone()).await.unwrap();
    assert_eq!(plain.infer_calls.load(Ordering::SeqCst), 1);
    // A metadata failure is the answer (nothing sent).
    let failing = ScriptedConnector::new(
        "v",
        "e",
        ScriptedConnector::caps().with_model_metadata(true),
    )
    .metadata(|_| Err(Error::not_found("model custom not found")));
    let e = failing.infer_checked(&model, anything).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(failing.infer_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn wait_ready_polls_through_startup() {
    let c = ScriptedConnector::new("v", "e", ScriptedConnector::caps()).health(|n| match n {
        0 | 1 => Err(Error::new(ErrorKind::Unavailable, "connection refused")),
        2 => Ok(Health {
            live: true,
            ready: false,
        }),
        _ => Ok(Health::SERVING),
    });
    let health = c.wait_ready(Duration::from_secs(30)).await.unwrap();
    assert!(health.is_serving());
    assert_eq!(c.health_calls.load(Ordering::SeqCst), 4);
    c.check_serving().await.unwrap();
}

#[tokio::test]
async fn wait_ready_gives_up_on_errors_that_will_not_pass() {
    let c = ScriptedConnector::new("v", "e", ScriptedConnector::caps())
        .health(|_| Err(Error::new(ErrorKind::Unauthenticated, "bad token")));
    let e = c.wait_ready(Duration::from_secs(30)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(c.health_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn wait_ready_times_out_with_the_last_state() {
    let c = ScriptedConnector::new("v", "e", ScriptedConnector::caps()).health(|_| {
        Ok(Health {
            live: true,
            ready: false,
        })
    });
    let e = c.wait_ready(Duration::from_millis(120)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(
        e.message().contains("last poll: live: true, ready: false"),
        "{e}"
    );
    let polls = c.health_calls.load(Ordering::SeqCst);
    assert!(polls >= 2, "polled {polls} times");
    let e = c.check_serving().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);

    let down = ScriptedConnector::new("v", "e", ScriptedConnector::caps())
        .health(|_| Err(Error::new(ErrorKind::Unavailable, "connection refused")));
    let e = down
        .wait_ready(Duration::from_millis(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let source = std::error::Error::source(&e).expect("the last error is the source");
    assert!(source.to_string().contains("connection refused"));
}

#[tokio::test]
async fn wait_model_ready_uses_what_the_connector_offers() {
    let model = ModelRef::new("doubler");
    // Per-model readiness: NotFound and false mean "not yet".
    let c = ScriptedConnector::new("v", "e", ScriptedConnector::caps().with_model_ready(true))
        .model_ready(|n| match n {
            0 => Err(Error::not_found("model doubler not found")),
            1 => Ok(false),
            _ => Ok(true),
        });
    c.wait_model_ready(&model, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(c.ready_calls.load(Ordering::SeqCst), 3);
    assert_eq!(c.health_calls.load(Ordering::SeqCst), 0);

    // Metadata only: server health first, then metadata until it answers.
    let c = ScriptedConnector::new(
        "v",
        "e",
        ScriptedConnector::caps().with_model_metadata(true),
    )
    .metadata(|n| match n {
        0 => Err(Error::not_found("model doubler not found")),
        _ => Ok(doubler_metadata()),
    });
    c.wait_model_ready(&model, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(c.health_calls.load(Ordering::SeqCst), 1);
    assert_eq!(c.metadata_calls.load(Ordering::SeqCst), 2);

    // Neither: server health is all there is.
    let c = ScriptedConnector::new("v", "e", ScriptedConnector::caps());
    c.wait_model_ready(&model, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(c.health_calls.load(Ordering::SeqCst), 1);

    // A lasting error ends the wait at once and names the model.
    let c = ScriptedConnector::new("v", "e", ScriptedConnector::caps().with_model_ready(true))
        .model_ready(|_| Err(Error::new(ErrorKind::PermissionDenied, "restricted")));
    let e = c
        .wait_model_ready(&model, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.model()),
        (ErrorKind::PermissionDenied, Some("doubler"))
    );

    // A model that never becomes ready: Timeout naming it.
    let c = ScriptedConnector::new("v", "e", ScriptedConnector::caps().with_model_ready(true))
        .model_ready(|_| Ok(false));
    let e = c
        .wait_model_ready(&model, Duration::from_millis(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("model doubler is not ready"), "{e}");
    assert_eq!(e.model(), Some("doubler"));
}

#[test]
fn tensor_spec_checks_datatype_rank_and_fixed_dimensions() {
    let spec = TensorSpec::new("x", DataType::Fp32, vec![-1, 3]);
    let fits = |shape: Vec<usize>| {
        let n = shape.iter().product();
        spec.check(&Tensor::new("x", shape, vec![0.0f32; n]).unwrap())
    };
    assert!(fits(vec![1, 3]).is_ok());
    assert!(fits(vec![0, 3]).is_ok());
    assert!(fits(vec![100, 3]).is_ok());
    assert!(fits(vec![1, 4]).is_err());
    assert!(fits(vec![3]).is_err());
    assert!(fits(vec![1, 1, 3]).is_err());
    let scalar = TensorSpec::new("s", DataType::Int64, vec![]);
    assert!(scalar.check(&Tensor::scalar("s", 1i64)).is_ok());
    assert!(scalar.check(&Tensor::from_vec("s", vec![1i64])).is_err());
}

/// Yields one response, then an error without any context.
#[derive(Debug)]
struct Streamer {
    info: ConnectorInfo,
}

#[async_trait]
impl InferenceConnector for Streamer {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    async fn health(&self) -> Result<Health> {
        Ok(Health::SERVING)
    }

    fn as_streaming_inference(&self) -> Option<&dyn StreamingInference> {
        Some(self)
    }
}

#[async_trait]
impl StreamingInference for Streamer {
    async fn infer_stream(
        &self,
        _model: &ModelRef,
        _request: InferRequest,
    ) -> Result<inferlink::InferStream> {
        let items = vec![
            Ok(response(vec![
                Tensor::new("OUT", vec![1], vec![1.0f32]).unwrap(),
            ])),
            Err(Error::new(ErrorKind::Unavailable, "stream broke")),
        ];
        Ok(Box::pin(futures_util::stream::iter(items)))
    }
}

#[tokio::test]
async fn streaming_defaults_to_unsupported_and_stream_items_are_tagged() {
    use futures_util::StreamExt as _;
    let model = ModelRef::new("gen");
    // A connector without streaming answers Unsupported, tagged like any call.
    let plain = inferlink::connector::with_error_context(Arc::new(ScriptedConnector::new(
        "plain",
        "http://127.0.0.1:1",
        ScriptedConnector::caps(),
    )));
    let e = plain
        .infer_stream(&model, InferRequest::new())
        .await
        .err()
        .expect("no streaming");
    assert_eq!(
        (e.kind(), e.vendor(), e.model()),
        (ErrorKind::Unsupported, Some("plain"), Some("gen"))
    );
    let e = plain
        .invoke_stream(&model, inferlink::RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("streamed raw invocation"), "{e}");

    // Errors that arrive inside a stream get the same context as the others.
    let streamer = inferlink::connector::with_error_context(Arc::new(Streamer {
        info: ConnectorInfo::new("streamer", "test", "http://127.0.0.1:2"),
    }));
    // The wrapper has exactly the families of the connector it wraps.
    let caps = streamer.capabilities();
    assert!(caps.stream_infer && !caps.infer && !caps.invoke && !caps.stream_invoke);
    let mut stream = streamer
        .infer_stream(&model, InferRequest::new())
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.outputs.len(), 1);
    let e = stream.next().await.unwrap().unwrap_err();
    assert_eq!(
        (e.kind(), e.vendor(), e.model(), e.endpoint()),
        (
            ErrorKind::Unavailable,
            Some("streamer"),
            Some("gen"),
            Some("http://127.0.0.1:2")
        )
    );
    assert!(stream.next().await.is_none());
}

/// Remembers the last target it was asked to connect to.
#[derive(Debug, Default)]
struct RecordingFactory {
    seen: std::sync::Mutex<Option<ConnectTarget>>,
}

#[async_trait]
impl ConnectorFactory for RecordingFactory {
    fn vendor(&self) -> &str {
        "recording"
    }

    fn products(&self) -> &[&str] {
        &["triton"]
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        *self.seen.lock().unwrap() = Some(target.clone());
        Ok(Arc::new(ScriptedConnector::new(
            "recording",
            &target.url,
            ScriptedConnector::caps(),
        )))
    }
}

#[tokio::test]
async fn host_settings_sit_under_the_record_and_layers_check_capabilities() {
    let factory = Arc::new(RecordingFactory::default());
    let shared: Arc<dyn ConnectorFactory> = factory.clone();
    let mut connectors = Connectors::new()
        .with_setting(
            "timeout_request_ms",
            inferlink::ConfigValue::Plain("5000".into()),
        )
        .with_setting(
            "tensor_encoding",
            inferlink::ConfigValue::Plain("json".into()),
        );
    connectors.register_shared(shared);
    let target = resolution("triton-serving")
        .await
        .target()
        .with_plain("tensor_encoding", "binary");
    connectors.connect(&target).await.unwrap();
    let seen = factory.seen.lock().unwrap().clone().unwrap();
    // The host's setting fills a key the record leaves unset...
    assert_eq!(seen.value("timeout_request_ms").unwrap().expose(), "5000");
    // ...and the record wins where both set one.
    assert_eq!(seen.value("tensor_encoding").unwrap().expose(), "binary");

    // A layer that needs model metadata refuses the connector at connect time.
    let strict = connectors.clone().with_layer(
        inferlink::connector::RequireCapabilities::new()
            .infer()
            .model_metadata(),
    );
    let e = strict.connect(&target).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("model metadata"), "{e}");
    assert!(!e.message().contains("tensor inference"), "{e}");
    assert_eq!(e.context("record"), Some("gpu-triton"));
    // Asking only for what it has passes, and capabilities stay derived.
    let fine = connectors.with_layer(inferlink::connector::RequireCapabilities::new().infer());
    let connector = fine.connect(&target).await.unwrap();
    assert!(connector.capabilities().infer && !connector.capabilities().model_metadata);
}
