//! What the connector puts on the wire and how it reads Seldon's answers,
//! against the testkit's scripted HTTP server (REST) and its gRPC test
//! server over the OIP messages (gRPC), all on 127.0.0.1: the ingress
//! path, `Seldon-Puid`, the `Seldon-Model` header and `seldon-model`
//! metadata, MLServer `content_type` parameters, the error envelope, and the
//! factory on seed 004's Seldon record.

use std::sync::{Arc, Mutex};

use inferlink::{
    Connectors, Consumer, ErrorKind, InferRequest, InferenceConnector, MemoryStore, ModelRef,
    RawRequest, Registry, Selector, Tensor,
};
use inferlink_oip::grpc::paths;
use inferlink_oip::proto as msg;
use inferlink_seldon::{Feedback, SeldonMessage};
use inferlink_testkit::fault::{Fault, FaultServer, envelope};
use inferlink_testkit::grpc_server::{GrpcRouter, GrpcServer};
use inferlink_testkit::live::{TestRecord, expect_error, resolve_record};
use serde_json::{Value, json};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// A connector from a one-service record with this product, version and configuration.
async fn connect(
    product: &str,
    version: &str,
    url: &str,
    settings: &[(&str, &str)],
) -> inferlink::Result<Arc<dyn InferenceConnector>> {
    TestRecord::new("seldon-test", product, version, "seldon-core-api")
        .settings(settings)
        .setting("retry_max_attempts", "1")
        .endpoint(url)
        .try_connect(Connectors::new().with(inferlink_seldon::factory()))
        .await
}

/// A scripted server answering `answer` twice, and a `seldon-core` 2.8.0
/// (V2 REST) connector to it with this `seldon_model`.
async fn v2_twice(answer: &str, seldon_model: &str) -> (FaultServer, Arc<dyn InferenceConnector>) {
    let server = FaultServer::start([Fault::json(200, answer), Fault::json(200, answer)])
        .await
        .unwrap();
    let settings = [("seldon_model", seldon_model)];
    let c = connect("seldon-core", "2.8.0", &server.url(), &settings).await;
    (server, c.unwrap())
}

fn body_json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn v1_requests_use_the_ingress_path_and_the_seldon_message() {
    let answer = r#"{"data":{"names":["t:0","t:1"],"ndarray":[[2.5,4]]},"meta":{"puid":"req-7","tags":{"model":"iris"}}}"#;
    let server = FaultServer::start([Fault::json(200, answer)])
        .await
        .unwrap();
    let c = connect(
        "seldon",
        "1.18.2",
        &server.url(),
        &[("namespace", "prj_hys568"), ("deployment", "iris")],
    )
    .await
    .unwrap();
    assert_eq!(c.info().protocol, "seldon-v1");
    let x = Tensor::new("x", vec![1, 2], vec![1.25f64, 2.0]).unwrap();
    let r = c
        .infer(
            &ModelRef::new("iris"),
            InferRequest::new()
                .with_id("req-7")
                .with_parameter("names", "a,b")
                .with_input(x),
        )
        .await
        .unwrap();
    assert_eq!(r.id.as_deref(), Some("req-7"));
    assert_eq!(r.model_name, "iris");
    let out = r.into_single_output().unwrap();
    assert_eq!(out.shape(), &[1, 2]);
    assert_eq!(out.to_vec::<f64>().unwrap(), vec![2.5, 4.0]);

    let seen = &server.recorded()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/seldon/prj_hys568/iris/api/v1.0/predictions");
    assert_eq!(seen.header("seldon-puid"), Some("req-7"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        body_json(&seen.body),
        json!({"data":{"names":["a","b"],"ndarray":[[1.25,2.0]]},"meta":{"puid":"req-7"}})
    );

    // Another model than the configured deployment is refused before any request.
    expect_error(
        c.infer(
            &ModelRef::new("other"),
            InferRequest::new().with_input(Tensor::from_vec("x", vec![1.0f64])),
        )
        .await,
        ErrorKind::NotFound,
        "iris",
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn v1_namespace_alone_takes_the_deployment_from_the_model() {
    let server = FaultServer::start([
        Fault::json(200, r#"{"strData":"OK"}"#),
        Fault::json(200, r#"{"data":{"ndarray":[]}}"#),
        Fault::json(200, r#"{"name":"m","inputs":[],"outputs":[]}"#),
    ])
    .await
    .unwrap();
    let c = connect(
        "seldon-core",
        "1.11.0",
        &server.url(),
        &[("namespace", "ns1")],
    )
    .await
    .unwrap();
    let text = Tensor::from_strings("strData", vec![1], ["ok"]).unwrap();
    let r = c
        .infer(
            &ModelRef::new("model-a"),
            InferRequest::new().with_input(text),
        )
        .await
        .unwrap();
    assert_eq!(r.outputs[0].name(), "strData");
    assert_eq!(r.outputs[0].to_strings().unwrap(), ["OK"]);
    let seldon = inferlink_seldon::SeldonConnector::new(
        inferlink_seldon::SeldonConfig::from_values(
            &server.url(),
            inferlink_seldon::SeldonProtocol::V1,
            [(
                "namespace",
                inferlink::resolve::ConfigValue::Plain("ns1".into()),
            )],
            inferlink::transport::TransportConfig::default(),
        )
        .unwrap(),
    )
    .unwrap();
    let feedback = Feedback {
        request: Some(SeldonMessage::default()),
        reward: 1.0,
        ..Feedback::default()
    };
    seldon
        .v1()
        .unwrap()
        .feedback(&ModelRef::new("model-b"), &feedback)
        .await
        .unwrap();
    let md = c.model_metadata(&ModelRef::new("m")).await.unwrap();
    assert_eq!(md.name, "m");
    let targets: Vec<String> = server.recorded().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        [
            "/seldon/ns1/model-a/api/v1.0/predictions",
            "/seldon/ns1/model-b/api/v1.0/feedback",
            "/seldon/ns1/m/api/v1.0/metadata",
        ]
    );
    assert_eq!(
        body_json(&server.recorded()[0].body),
        json!({"strData": "ok"})
    );
    assert_eq!(
        body_json(&server.recorded()[1].body),
        json!({"request": {}, "reward": 1.0})
    );
}

#[tokio::test]
async fn v1_error_envelopes_become_typed_errors() {
    let server = FaultServer::start([
        envelope::seldon_internal(),
        Fault::json(
            400,
            r#"{"status":{"code":-1,"info":"Can't find JSON in data","reason":"MICROSERVICE_BAD_DATA","status":1}}"#,
        ),
        Fault::json(
            500,
            r#"{"status":{"code":-1,"info":"404 Not Found: The requested URL was not found on the server.","reason":"MICROSERVICE_INTERNAL_ERROR","status":1}}"#,
        ),
        // The executor's form: status as a name, code 500.
        Fault::json(
            500,
            r#"{"status":{"code":500,"info":"dial tcp 10.0.0.1:9000: connect: connection refused","status":"FAILURE"}}"#,
        ),
        // FAILURE inside a 200.
        Fault::json(200, r#"{"status":{"code":400,"info":"bad features","status":"FAILURE"}}"#),
        Fault::status(404),
    ])
    .await
    .unwrap();
    let c = connect("seldon", "1.18.2", &server.url(), &[])
        .await
        .unwrap();
    let m = ModelRef::new("doubler");
    let x = || InferRequest::new().with_input(Tensor::from_vec("x", vec![1.0f64, 2.0]));
    let e = c.infer(&m, x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("cannot reshape array"), "{e}");
    assert!(e.to_string().contains("MICROSERVICE_INTERNAL_ERROR"), "{e}");
    assert_eq!(e.vendor(), Some("seldon"));
    assert_eq!(e.model(), Some("doubler"));
    let e = c.infer(&m, x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = c.infer(&m, x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    expect_error(
        c.infer(&m, x()).await,
        ErrorKind::ModelError,
        "connection refused",
    );
    expect_error(
        c.infer(&m, x()).await,
        ErrorKind::InvalidInput,
        "bad features",
    );
    let e = c.infer(&m, x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn v2_rest_sends_seldon_model_and_mlserver_content_types() {
    let answer = r#"{"model_name":"iris","outputs":[{"name":"o","shape":[1],"datatype":"BYTES","parameters":{"content_type":"str"},"data":["X"]}]}"#;
    let (server, c) = v2_twice(answer, "iris.pipeline").await;
    assert_eq!(c.info().protocol, "oip-rest");
    assert_eq!(c.info().vendor, "seldon");
    let text = Tensor::from_strings("t", vec![1], ["x"]).unwrap();
    let nums = Tensor::new("n", vec![2], vec![1.0f32, 2.0]).unwrap();
    let mine = Tensor::new("p", vec![1], vec![1i64])
        .unwrap()
        .with_parameter("content_type", "pd");
    let r = c
        .infer(
            &ModelRef::new("iris"),
            InferRequest::new()
                .with_input(text)
                .with_input(nums)
                .with_input(mine),
        )
        .await
        .unwrap();
    assert_eq!(r.outputs[0].to_strings().unwrap(), ["X"]);
    let seen = &server.recorded()[0];
    assert_eq!(seen.target, "/v2/models/iris/infer");
    assert_eq!(seen.header("seldon-model"), Some("iris.pipeline"));
    let body = body_json(&seen.body);
    let ct = |i: usize| body["inputs"][i]["parameters"]["content_type"].clone();
    assert_eq!(ct(0), json!("str"));
    assert_eq!(ct(1), json!("np"));
    assert_eq!(ct(2), json!("pd"), "a caller's content type is kept");

    // Off, with a request-level content type.
    let c = connect(
        "mlserver",
        "1.7.1",
        &server.url(),
        &[
            ("mlserver_content_types", "off"),
            ("mlserver_request_content_type", "pd"),
        ],
    )
    .await
    .unwrap();
    let nums = Tensor::new("n", vec![2], vec![1.0f32, 2.0]).unwrap();
    c.infer(&ModelRef::new("iris"), InferRequest::new().with_input(nums))
        .await
        .unwrap();
    let seen = &server.recorded()[1];
    assert_eq!(seen.header("seldon-model"), None);
    let body = body_json(&seen.body);
    assert_eq!(body["parameters"]["content_type"], json!("pd"));
    assert!(
        body["inputs"][0]["parameters"]["content_type"].is_null(),
        "{body}"
    );
}

#[tokio::test]
async fn v1_invoke_sends_the_body_as_is() {
    let server = FaultServer::start([Fault::json(200, r#"{"data":{"ndarray":[[2]]}}"#)])
        .await
        .unwrap();
    let c = connect("seldon", "1.18.2", &server.url(), &[("deployment", "d")])
        .await
        .unwrap();
    let raw = c
        .invoke(
            &ModelRef::new("d"),
            RawRequest::json(r#"{"data":{"ndarray":[[1]]}}"#),
        )
        .await
        .unwrap();
    assert_eq!(body_json(&raw.body), json!({"data":{"ndarray":[[2]]}}));
    let seen = &server.recorded()[0];
    assert_eq!(seen.target, "/api/v1.0/predictions");
    assert_eq!(seen.body, br#"{"data":{"ndarray":[[1]]}}"#);
}

/// Records the `seldon-model` metadata of every call; answers ModelInfer by
/// echoing, the other methods with fixed answers.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Option<String>>>,
}

impl Recorder {
    fn note(&self, metadata: &MetadataMap) {
        let v = metadata
            .get("seldon-model")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.seen.lock().unwrap().push(v);
    }

    async fn model_infer(
        self: Arc<Self>,
        r: Request<msg::ModelInferRequest>,
    ) -> Result<msg::ModelInferResponse, Status> {
        let r = r.into_inner();
        let content_type = r.inputs[0]
            .parameters
            .get("content_type")
            .and_then(|p| match &p.parameter_choice {
                Some(msg::infer_parameter::ParameterChoice::StringParam(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        Ok(msg::ModelInferResponse {
            model_name: r.model_name,
            model_version: String::new(),
            id: r.id,
            parameters: Default::default(),
            outputs: vec![msg::model_infer_response::InferOutputTensor {
                name: content_type,
                datatype: r.inputs[0].datatype.clone(),
                shape: r.inputs[0].shape.clone(),
                parameters: Default::default(),
                contents: None,
            }],
            raw_output_contents: r.raw_input_contents,
        })
    }
}

/// A [`Recorder`] serving on a free loopback port.
async fn serve_recorder() -> GrpcServer<Recorder> {
    GrpcRouter::new(Arc::new(Recorder::default()))
        .on_request(Recorder::note)
        .answer(
            paths::SERVER_LIVE,
            Ok(msg::ServerLiveResponse { live: true }),
        )
        .answer(
            paths::SERVER_READY,
            Ok(msg::ServerReadyResponse { ready: true }),
        )
        .answer(
            paths::MODEL_READY,
            Ok(msg::ModelReadyResponse { ready: true }),
        )
        .answer(
            paths::SERVER_METADATA,
            Err::<msg::ServerMetadataResponse, _>(Status::unimplemented("not here")),
        )
        .answer(
            paths::MODEL_METADATA,
            Err::<msg::ModelMetadataResponse, _>(Status::not_found("no metadata")),
        )
        .unary(paths::MODEL_INFER, Recorder::model_infer)
        .serve()
        .await
        .unwrap()
}

#[tokio::test]
async fn v2_grpc_sends_seldon_model_metadata() {
    let recorder = serve_recorder().await;
    let c = connect(
        "seldon-core",
        "2.8.0",
        recorder.url(),
        &[("seldon_model", "iris")],
    )
    .await
    .unwrap();
    assert_eq!(c.info().protocol, "oip-grpc");
    assert!(c.health().await.unwrap().is_serving());
    let x = Tensor::new("x", vec![2], vec![1.0f32, 2.0]).unwrap();
    let r = c
        .infer(&ModelRef::new("iris"), InferRequest::new().with_input(x))
        .await
        .unwrap();
    // The echo names its output after the input's content_type parameter.
    assert_eq!(r.outputs[0].name(), "np");
    assert_eq!(r.outputs[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    let e = c.model_metadata(&ModelRef::new("iris")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let seen = recorder.state().seen.lock().unwrap().clone();
    assert!(seen.len() >= 4, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.as_deref() == Some("iris")),
        "{seen:?}"
    );
}

/// `seldon_model: "{model}.pipeline"`: the header follows each call's model
/// (one connector for many models behind Seldon Core 2), over REST and gRPC;
/// server-level calls carry none.
#[tokio::test]
async fn a_seldon_model_template_names_each_calls_model() {
    let answer =
        r#"{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"FP32","data":[1]}]}"#;
    let (server, c) = v2_twice(answer, "{model}.pipeline").await;
    let x = || InferRequest::new().with_input(Tensor::new("x", vec![1], vec![1.0f32]).unwrap());
    c.infer(&ModelRef::new("iris"), x()).await.unwrap();
    c.infer(&ModelRef::new("wine"), x()).await.unwrap();
    let seen = server.recorded();
    assert_eq!(seen[0].header("seldon-model"), Some("iris.pipeline"));
    assert_eq!(seen[1].header("seldon-model"), Some("wine.pipeline"));

    let recorder = serve_recorder().await;
    let c = connect(
        "seldon-core",
        "2.8.0",
        recorder.url(),
        &[("seldon_model", "{model}")],
    )
    .await
    .unwrap();
    c.infer(&ModelRef::new("iris"), x()).await.unwrap();
    assert!(c.model_ready(&ModelRef::new("wine")).await.unwrap());
    assert!(c.health().await.unwrap().is_serving());
    let seen = recorder.state().seen.lock().unwrap().clone();
    assert_eq!(seen[0].as_deref(), Some("iris"), "{seen:?}");
    assert_eq!(seen[1].as_deref(), Some("wine"), "{seen:?}");
    assert!(seen[2..].iter().all(Option::is_none), "{seen:?}");
}

#[tokio::test]
async fn the_factory_serves_seed_004s_seldon_record() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/seed004/seldon-core-production.yaml"
    ))
    .unwrap();
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry.register_yaml(&yaml).await.unwrap();
    let alpha = Consumer::anywhere().with_project("alpha");
    let resolution = registry
        .resolve(&Selector::category("prediction-serving"), &alpha)
        .unwrap();
    let connectors = Connectors::new()
        .with(inferlink_oip::factory())
        .with(inferlink_seldon::factory());
    assert_eq!(
        connectors
            .factory_for(&resolution.target())
            .unwrap()
            .vendor(),
        "seldon"
    );
    // The seed's certificates are truncated placeholders: building the
    // transport fails on them, naming the key and never its value.
    let e = connectors.connect(&resolution).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.path().is_some_and(|p| p.contains("CERT")), "{e}");
    assert!(!e.to_string().contains("LS0t"), "{e}");

    // The same record without credentials: v1 through the ingress path of
    // its namespace (product seldon, version 1.11.0).
    let plain = yaml.split("    credentials:").next().unwrap().to_owned()
        + &yaml[yaml.find("    endpoints:").unwrap()..];
    let resolution = resolve_record(&plain, &Selector::category("prediction-serving")).await;
    let config = inferlink_seldon::SeldonConfig::from_target(&resolution.target()).unwrap();
    assert_eq!(config.protocol, inferlink_seldon::SeldonProtocol::V1);
    assert_eq!(config.v1_prefix("iris"), ["seldon", "prj_hys568", "iris"]);
    let c = connectors.connect(&resolution).await.unwrap();
    assert_eq!(c.info().protocol, "seldon-v1");
    assert_eq!(c.info().vendor, "seldon");

    // A typo'd key in the same record is refused with the nearest key.
    let typo = plain.replace("namespace: prj_hys568", "namespce: prj_hys568");
    assert_ne!(typo, plain);
    let resolution = resolve_record(&typo, &Selector::category("prediction-serving")).await;
    let e = connectors.connect(&resolution).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some("namespce"));
    assert!(e.message().contains("did you mean \"namespace\""), "{e}");
    assert_eq!(e.vendor(), Some("seldon"));
}
