//! The REST client against scripted loopback servers (the testkit's fault
//! server) answering what KServe, Triton and MLServer answer: requests go
//! through the real shared transport, responses carry the real servers'
//! quirks (empty vs JSON health bodies, `versions: null`, explicit nulls,
//! binary answers without Content-Type and chunked).

use bytes::Bytes;
use inferlink::kit::ConnectorConfig;
use inferlink::resolve::ConfigValue;
use inferlink::{Connectors, ErrorKind, InferRequest, ModelRef, RawRequest, Selector, Tensor};
use inferlink_oip::{OipClient, OipConfig, Protocol};
use inferlink_testkit::fault::{Fault, FaultServer};
use inferlink_testkit::live::{expect_error, resolve_record};
use serde_json::{Value, json};

fn client(server: &FaultServer, pairs: &[(&str, &str)]) -> OipClient {
    let mut values = std::collections::BTreeMap::from([
        ("retry_max_attempts", "1"),
        ("deadline_ms", "10000"),
        ("timeout_request_ms", "5000"),
    ]);
    values.extend(pairs.iter().copied());
    let config = OipConfig::new(server.url())
        .apply_values(
            values
                .into_iter()
                .map(|(k, v)| (k, ConfigValue::Plain(v.to_owned()))),
        )
        .unwrap();
    OipClient::new(config).unwrap()
}

fn empty(status: u16) -> Fault {
    Fault::status(status)
}

#[tokio::test]
async fn health_is_decided_by_status_code_whatever_the_body() {
    // Triton/MLServer: empty bodies. KServe: JSON bodies. Then "not ready" answers.
    let server = FaultServer::start([
        empty(200).header("Content-Type", "text/plain"),
        empty(200),
        Fault::json(200, r#"{"live":true}"#),
        Fault::json(200, r#"{"ready":true}"#),
        empty(200),
        empty(400),
        empty(200),
        Fault::json(503, r#"{"error":"Server not ready"}"#),
    ])
    .await
    .unwrap();
    let c = client(&server, &[]);
    for _ in 0..2 {
        let h = c.health().await.unwrap();
        assert!(h.live && h.ready);
    }
    for _ in 0..2 {
        let h = c.health().await.unwrap();
        assert!(h.live && !h.ready);
    }
    let paths: Vec<String> = server.recorded().into_iter().map(|r| r.target).collect();
    assert_eq!(paths[0], "/v2/health/live");
    assert_eq!(paths[1], "/v2/health/ready");
    assert_eq!(server.requests(), 8, "no retries of a 'not ready' answer");
}

#[tokio::test]
async fn health_of_a_dead_server_is_not_live_and_no_ready_probe() {
    let server = FaultServer::start([empty(503)]).await.unwrap();
    let h = client(&server, &[]).health().await.unwrap();
    assert!(!h.live && !h.ready);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn health_errors_that_are_not_a_no() {
    let server = FaultServer::start([
        Fault::json(401, r#"{"error":"who are you"}"#),
        Fault::json(404, r#"{"error":"no such route"}"#),
    ])
    .await
    .unwrap();
    let c = client(&server, &[]);
    expect_error(c.health().await, ErrorKind::Unauthenticated, "who are you");
    let e = c.server_ready().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("vendor"), Some("oip"));
}

#[tokio::test]
async fn model_ready_by_status() {
    let server = FaultServer::start([
        empty(200),
        Fault::json(200, r#"{"name":"doubler","ready":true}"#),
        Fault::json(400, r#"{"error":"Model version not ready"}"#),
        Fault::json(404, r#"{"error":"Model with name nope does not exist."}"#),
    ])
    .await
    .unwrap();
    let c = client(&server, &[]);
    assert!(c.model_ready(&ModelRef::new("doubler")).await.unwrap());
    assert!(
        c.model_ready(&ModelRef::new("doubler").with_version("1"))
            .await
            .unwrap()
    );
    assert!(!c.model_ready(&ModelRef::new("doubler")).await.unwrap());
    let e = expect_error(
        c.model_ready(&ModelRef::new("nope")).await,
        ErrorKind::NotFound,
        "does not exist",
    );
    assert_eq!(e.context("model"), Some("nope"));
    let paths: Vec<String> = server.recorded().into_iter().map(|r| r.target).collect();
    assert_eq!(paths[1], "/v2/models/doubler/versions/1/ready");
}

#[tokio::test]
async fn metadata_tolerates_kserve_nulls_and_reads_triton() {
    let server = FaultServer::start([
        Fault::json(
            200,
            r#"{"name":"doubler","versions":null,"platform":"","inputs":[],"outputs":[]}"#,
        ),
        Fault::json(
            200,
            r#"{"name":"doubler","versions":["1"],"platform":"python","inputs":[{"name":"INPUT_1","datatype":"FP32","shape":[-1,-1]}],"outputs":[{"name":"OUTPUT_1","datatype":"FP32","shape":[-1,-1]}]}"#,
        ),
        Fault::json(
            200,
            r#"{"name":"triton","version":"2.51.0","extensions":["binary_tensor_data"]}"#,
        ),
        Fault::json(200, r#"{"name":"x","inputs":[{"name":"a""#),
    ])
    .await
    .unwrap();
    let c = client(&server, &[]);
    let m = c.model_metadata(&ModelRef::new("doubler")).await.unwrap();
    assert!(m.versions.is_empty() && m.inputs.is_empty());
    let m = c.model_metadata(&ModelRef::new("doubler")).await.unwrap();
    assert_eq!(m.inputs[0].name, "INPUT_1");
    assert_eq!(m.inputs[0].shape, vec![-1, -1]);
    let s = c.server_metadata().await.unwrap();
    assert_eq!(s.name, "triton");
    let e = c.model_metadata(&ModelRef::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert_eq!(e.context("model"), Some("x"));
    let paths: Vec<String> = server.recorded().into_iter().map(|r| r.target).collect();
    assert_eq!(paths[2], "/v2");
}

#[tokio::test]
async fn json_infer_sends_flat_json_and_reads_explicit_nulls() {
    let server = FaultServer::start([Fault::json(
        200,
        r#"{"model_name":"doubler","model_version":null,"id":"abc","parameters":null,"outputs":[{"name":"output-0","shape":[2,2],"datatype":"FP32","parameters":null,"data":[2.0,4.0,6.0,8.0]}]}"#,
    )])
    .await
    .unwrap();
    let c = client(&server, &[]);
    let input = Tensor::new("input-0", vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let r = c
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(input).with_id("abc"),
        )
        .await
        .unwrap();
    assert_eq!(r.id.as_deref(), Some("abc"));
    assert_eq!(r.model_version, None);
    assert_eq!(
        r.require_output("output-0")
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![2.0, 4.0, 6.0, 8.0]
    );
    let sent = &server.recorded()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/v2/models/doubler/infer");
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("inference-header-content-length"), None);
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"id":"abc","inputs":[{"name":"input-0","shape":[2,2],"datatype":"FP32","data":[1.0,2.0,3.0,4.0]}]})
    );
}

#[tokio::test]
async fn binary_infer_both_ways_with_kserve_quirks() {
    // KServe's binary answer: no Content-Type, chunked, lower-case header name.
    let header = br#"{"model_name":"doubler","outputs":[{"name":"output-0","datatype":"FP32","shape":[2,2],"parameters":{"binary_data_size":16}}]}"#;
    let mut body = header.to_vec();
    for f in [2.0f32, 4.0, 6.0, 8.0] {
        body.extend_from_slice(&f.to_le_bytes());
    }
    let reply = Fault::Respond(inferlink_testkit::fault::Canned {
        status: 200,
        headers: vec![(
            "inference-header-content-length".into(),
            header.len().to_string(),
        )],
        body,
        chunked: true,
    });
    let server = FaultServer::start([reply]).await.unwrap();
    let c = client(&server, &[("tensor_encoding", "binary")]);
    assert!(c.info().binary_tensors);
    let input = Tensor::new("input-0", vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let r = c
        .infer(
            &ModelRef::new("doubler").with_version("1"),
            InferRequest::new()
                .with_input(input)
                .with_output("output-0"),
        )
        .await
        .unwrap();
    let out = r.require_output("output-0").unwrap();
    assert!(out.is_raw());
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);

    let sent = &server.recorded()[0];
    assert_eq!(sent.target, "/v2/models/doubler/versions/1/infer");
    assert_eq!(
        sent.header("content-type"),
        Some("application/octet-stream")
    );
    let n: usize = sent
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let json: Value = serde_json::from_slice(&sent.body[..n]).unwrap();
    assert_eq!(json["parameters"]["binary_data_output"], true);
    assert_eq!(json["outputs"][0]["parameters"]["binary_data"], true);
    assert_eq!(json["inputs"][0]["parameters"]["binary_data_size"], 16);
    assert_eq!(sent.body.len(), n + 16);
}

#[tokio::test]
async fn truncated_binary_answer_is_a_protocol_error_naming_the_output() {
    let header = br#"{"outputs":[{"name":"y","datatype":"FP32","shape":[4],"parameters":{"binary_data_size":16}}]}"#;
    let mut body = header.to_vec();
    body.extend_from_slice(&[0; 8]);
    let reply = Fault::with_body(200, "application/octet-stream", body)
        .header("Inference-Header-Content-Length", &header.len().to_string());
    let server = FaultServer::start([reply]).await.unwrap();
    let c = client(&server, &[]);
    let x = Tensor::new("x", vec![1], vec![1.0f32]).unwrap();
    let e = expect_error(
        c.infer(&ModelRef::new("m"), InferRequest::new().with_input(x))
            .await,
        ErrorKind::Protocol,
        "",
    );
    assert_eq!(e.context("output"), Some("y"));
    assert_eq!(e.context("model"), Some("m"));
}

#[tokio::test]
async fn vendor_errors_map_to_kinds_with_their_messages() {
    let server = FaultServer::start([
        Fault::json(
            404,
            r#"{"error":"Request for unknown model: 'nope' is not found"}"#,
        ),
        // Triton answers a data/shape mismatch with 500.
        Fault::json(
            500,
            r#"{"error":"Unable to parse 'data': Shape does not match true shape of 'data' field"}"#,
        ),
        Fault::json(
            400,
            r#"{"error":"[request id: <id_unknown>] inference input 'INPUT_1' data-type is 'INT32', but model 'doubler' expects 'FP32'"}"#,
        ),
        Fault::text(500, "Internal Server Error"),
    ])
    .await
    .unwrap();
    let c = client(&server, &[]);
    let x = || InferRequest::new().with_input(Tensor::new("x", vec![1], vec![1.0f32]).unwrap());
    let e = c.infer(&ModelRef::new("nope"), x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("unknown model"), "{e}");
    let e = c.infer(&ModelRef::new("doubler"), x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = c.infer(&ModelRef::new("doubler"), x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("expects 'FP32'"), "{e}");
    let e = c.infer(&ModelRef::new("doubler"), x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(server.requests(), 4, "inference is not retried after a 500");
}

#[tokio::test]
async fn json_mode_refuses_non_utf8_bytes_before_sending() {
    let server = FaultServer::start([]).await.unwrap();
    let c = client(&server, &[]);
    let h = Tensor::from_byte_elements("s", vec![1], [vec![0xffu8]]).unwrap();
    let e = expect_error(
        c.infer(&ModelRef::new("m"), InferRequest::new().with_input(h))
            .await,
        ErrorKind::InvalidInput,
        "",
    );
    assert!(e.message().contains("tensor_encoding: binary"), "{e}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn models_from_v2_models_or_the_repository_index() {
    let server = FaultServer::start([
        Fault::json(200, r#"{"models":["doubler"]}"#),
        Fault::json(404, r#"{"error":"Not Found"}"#),
        Fault::json(
            200,
            r#"[{"name":"doubler","state":"READY","reason":""},{"name":"tiny-sklearn","version":"v1","state":"READY","reason":""}]"#,
        ),
        Fault::json(404, r#"{"error":"Not Found"}"#),
        Fault::json(404, r#"{"error":"Not Found"}"#),
        Fault::json(404, r#"{"error":"Not Found"}"#),
        Fault::json(
            403,
            r#"{"error":"This API is restricted, expecting header 'triton-access-token'"}"#,
        ),
    ])
    .await
    .unwrap();
    let c = client(&server, &[]);
    let m = c.models().await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].name, "doubler");
    let m = c.models().await.unwrap();
    assert_eq!(m[1].version.as_deref(), Some("v1"));
    assert_eq!(m[1].state.as_deref(), Some("READY"));
    let e = c.models().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    expect_error(
        c.models().await,
        ErrorKind::PermissionDenied,
        "triton-access-token",
    );
    let sent = server.recorded();
    assert_eq!(
        (sent[2].method.as_str(), sent[2].target.as_str()),
        ("POST", "/v2/repository/index")
    );
    assert_eq!(sent[2].body, b"{}");
}

#[tokio::test]
async fn model_names_are_path_encoded() {
    let server = FaultServer::start([empty(200)]).await.unwrap();
    let c = client(&server, &[]);
    assert!(c.model_ready(&ModelRef::new("a b/c?d")).await.unwrap());
    assert_eq!(
        server.recorded()[0].target,
        "/v2/models/a%20b%2Fc%3Fd/ready"
    );
    let e = c.model_ready(&ModelRef::new("..")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn invoke_passes_a_pre_encoded_body_through() {
    let server = FaultServer::start([Fault::json(200, r#"{"outputs":[]}"#)])
        .await
        .unwrap();
    let c = client(&server, &[]);
    let r = c
        .invoke(
            &ModelRef::new("m"),
            RawRequest::json(Bytes::from_static(br#"{"inputs":[]}"#)),
        )
        .await
        .unwrap();
    assert_eq!(&r.body[..], br#"{"outputs":[]}"#);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(server.recorded()[0].body, br#"{"inputs":[]}"#);
}

#[tokio::test]
async fn factory_builds_from_a_record_with_credentials_as_auth() {
    let server = FaultServer::start([empty(200), empty(200)]).await.unwrap();
    let record = format!(
        r#"
id: triton-local
product: oip
version: "2.51.0"
services:
  - id: infer
    resource: inference-v2
    category: prediction-serving
    configuration:
      retry_max_attempts: "1"
    endpoints:
      - url: {url}
    credentials:
      - id: token
        configuration:
          auth_bearer_token: s3cr3t-token
"#,
        url = server.url()
    );
    let resolution = resolve_record(&record, &Selector::resource("inference-v2")).await;
    let connectors = Connectors::new().with(inferlink_oip::factory());
    let connector = connectors.connect(&resolution).await.unwrap();
    let info = connector.info();
    assert_eq!(
        (info.vendor.as_str(), info.protocol.as_str()),
        ("oip", "oip-rest")
    );
    assert!(connector.health().await.unwrap().ready);
    let sent = server.recorded();
    assert_eq!(sent[0].header("authorization"), Some("Bearer s3cr3t-token"));
    assert!(!format!("{connector:?}").contains("s3cr3t"));
}

/// A typo'd key is refused at connect with the nearest key named; OIP's,
/// the transport's, environment-style and `x_` keys pass.
#[tokio::test]
async fn the_factory_refuses_an_unknown_key_with_a_suggestion() {
    use inferlink::ConnectorFactory as _;
    let target = |key: &str| {
        inferlink::ConnectTarget::new("oip", "http://127.0.0.1:1").with_plain(key, "binary")
    };
    let e = inferlink_oip::factory()
        .connect(&target("tensor_encodng"))
        .await
        .unwrap_err();
    inferlink_testkit::live::assert_suggests_key(&e, "tensor_encodng", "tensor_encoding");
    let ok = target("tensor_encoding")
        .with_plain("grpc_authority", "m.example.com")
        .with_plain("protocol", "rest")
        .with_plain("grpc_url", "grpc://127.0.0.1:2")
        .with_plain("timeout_request_ms", "500")
        .with_plain("MODEL_NAME", "doubler")
        .with_plain("x_owner", "team-a");
    let c = inferlink_oip::factory().connect(&ok).await.unwrap();
    assert!(c.info().binary_tensors);
}

#[tokio::test]
async fn grpc_is_chosen_by_key_or_scheme() {
    let config = OipConfig::new("http://127.0.0.1:1")
        .apply_values([
            ("protocol", ConfigValue::Plain("grpc".into())),
            ("grpc_url", ConfigValue::Plain("grpc://127.0.0.1:2".into())),
        ])
        .unwrap();
    let c = OipClient::with_vendor(config, "triton").unwrap();
    assert_eq!(c.protocol(), Protocol::Grpc);
    assert_eq!(c.info().protocol, "oip-grpc");
    assert_eq!(c.info().vendor, "triton");
    assert_eq!(c.info().endpoint, "http://127.0.0.1:2");
    assert!(!c.is_rest());
    let e = c.models().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let c = OipClient::new(OipConfig::new("grpc://127.0.0.1:3")).unwrap();
    assert_eq!(c.protocol(), Protocol::Grpc);
    expect_error(
        c.invoke(&ModelRef::new("m"), RawRequest::json(Bytes::new()))
            .await,
        ErrorKind::Unsupported,
        "",
    );
}
