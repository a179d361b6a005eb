//! `inferlink-kserve` against the testkit's scripted loopback server (no real
//! KServe needed): what goes on the wire for V1, discovery falling back to
//! V1 on a V1-only server, the `Host` header, dispatch by product and
//! resource, and configuration errors at connect time.

use bytes::Bytes;
use inferlink::kit::ConnectorConfig;
use inferlink::{
    ConnectorFactory, Connectors, DataType, ErrorKind, InferRequest, Resolution, Selector, Tensor,
};
use inferlink_kserve::{KServeClient, KServeConfig, KServeProtocol};
use inferlink_testkit::fault::{Fault, FaultServer};
use inferlink_testkit::live::resolve_record;

async fn resolution(product: &str, resource: &str, url: &str, settings: &[&str]) -> Resolution {
    let mut config = String::from("retry_max_attempts: \"1\"");
    for s in settings {
        config.push_str("\n      ");
        config.push_str(s);
    }
    let record = format!(
        r#"
id: scripted
product: {product}
version: "1"
services:
  - id: predictor
    resource: {resource}
    category: prediction-serving
    configuration:
      {config}
    endpoints:
      - url: {url}
"#
    );
    resolve_record(&record, &Selector::category("prediction-serving")).await
}

/// A V1-only server: `/v2/health/ready` is 404, `/v1/models` answers, so
/// `auto` picks V1; the `instances` body and the `Host` header are exactly
/// as documented, and the `predictions` come back in the input's datatype.
#[tokio::test]
async fn discovery_falls_back_to_v1_and_v1_bytes_are_exact() {
    let server = FaultServer::start([
        Fault::status(404),
        Fault::json(200, r#"{"models":["m"]}"#),
        Fault::json(200, r#"{"predictions":[[2.0,4.0],[6.0,8.0]]}"#),
    ])
    .await
    .unwrap();
    let r = resolution(
        "KServe",
        "kserve-predictor",
        &server.url(),
        &[
            "isvc_name: m",
            "isvc_namespace: team-a",
            "isvc_domain: models.corp",
        ],
    )
    .await;
    let conn = Connectors::new()
        .with(inferlink_kserve::factory())
        .connect(&r)
        .await
        .unwrap();
    assert_eq!(conn.info().protocol, "kserve-v1");
    assert_eq!(conn.info().vendor, "kserve");
    let x = Tensor::from_rows("x", &[vec![1.0f32, 2.0], vec![3.0, 4.0]]).unwrap();
    let out = conn
        .infer(&"m".into(), InferRequest::from(x))
        .await
        .unwrap()
        .into_single_output()
        .unwrap();
    assert_eq!(out.name(), "predictions");
    assert_eq!(out.datatype(), DataType::Fp32);
    assert_eq!(
        out.to_f32_rows().unwrap(),
        vec![vec![2.0, 4.0], vec![6.0, 8.0]]
    );

    let seen = server.recorded();
    let targets: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        ["/v2/health/ready", "/v1/models", "/v1/models/m:predict"]
    );
    assert!(
        seen.iter()
            .all(|r| r.header("host") == Some("m.team-a.models.corp")),
        "{seen:?}"
    );
    assert_eq!(seen[2].method, "POST");
    assert_eq!(seen[2].header("content-type"), Some("application/json"));
    assert_eq!(seen[2].body, br#"{"instances":[[1.0,2.0],[3.0,4.0]]}"#);
}

/// Discovery: a 503 from `/v2/health/ready` (models still loading) means
/// V2; a server that knows neither route is a `NotFound` naming both
/// statuses and the host.
#[tokio::test]
async fn discovery_outcomes() {
    let server = FaultServer::start([Fault::status(503)]).await.unwrap();
    let p = KServeClient::discover(&KServeConfig::new(server.url()))
        .await
        .unwrap();
    assert_eq!(p, KServeProtocol::V2Rest);

    let server = FaultServer::start([Fault::status(404), Fault::status(404)])
        .await
        .unwrap();
    let mut config = KServeConfig::new(server.url());
    config.set_ingress_host("a.b.example.com").unwrap();
    let e = KServeClient::discover(&config).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("HTTP 404"), "{e}");
    assert!(
        e.to_string()
            .contains("no route for host \"a.b.example.com\""),
        "{e}"
    );
}

/// Products `kserve` and `kfserving` and the predictor resources reach the
/// KServe factory; bad keys fail at connect with the key named, before any
/// request.
#[tokio::test]
async fn dispatch_and_config_errors_at_connect() {
    let f = inferlink_kserve::factory();
    assert_eq!(f.vendor(), "kserve");
    assert!(f.products().contains(&"kfserving"));
    let connectors = Connectors::new()
        .with(inferlink_oip::factory())
        .with(inferlink_kserve::factory());
    for (product, resource) in [("kfserving", "x"), ("other", "kserve-predictor")] {
        let r = resolution(product, resource, "http://127.0.0.1:9", &["protocol: v1"]).await;
        let conn = connectors.connect(&r).await.unwrap();
        assert_eq!(conn.info().vendor, "kserve", "{product}/{resource}");
    }
    let server = FaultServer::start([]).await.unwrap();
    for (settings, key) in [
        (&["protocol: v3"][..], "protocol"),
        (&["isvc_name: m"][..], "isvc_namespace"),
        (&["ingress_host: a b"][..], "ingress_host"),
        (
            &["protocol: v1", "v1_output_datatype: STRING"][..],
            "v1_output_datatype",
        ),
        (
            &["protocol: v2", "tensor_encoding: xml"][..],
            "tensor_encoding",
        ),
        (
            &["protocol: v2", "timeout_request_ms: 0"][..],
            "timeout_request_ms",
        ),
    ] {
        let r = resolution("kserve", "x", &server.url(), settings).await;
        let e = connectors.connect(&r).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{settings:?}: {e}");
        assert_eq!(e.path(), Some(key), "{settings:?}: {e}");
        assert_eq!(e.vendor(), Some("kserve"));
    }
    // A typo'd key is refused with the nearest key; environment-style and
    // `x_` keys, OIP's wire keys and the transport's pass.
    let r = resolution("kserve", "x", &server.url(), &["isvc_namespce: ns"]).await;
    let e = connectors.connect(&r).await.unwrap_err();
    inferlink_testkit::live::assert_suggests_key(&e, "isvc_namespce", "isvc_namespace");
    let fine = [
        "protocol: v2-grpc",
        "grpc_authority: m.ns.example.com",
        "tensor_encoding: binary",
        "deadline_ms: \"5000\"",
        "STORAGE_URI: s3://models/m",
        "x_owner: team",
    ];
    let r = resolution("kserve", "x", "grpc://127.0.0.1:9", &fine).await;
    assert_eq!(
        connectors.connect(&r).await.unwrap().info().protocol,
        "oip-grpc"
    );
    // V1 needs an HTTP URL.
    let r = resolution("kserve", "x", "grpc://127.0.0.1:9", &["protocol: v1"]).await;
    let e = connectors.connect(&r).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(server.requests(), 0);
}

/// V1 `invoke` and `predict` send the caller's bytes as they are; a
/// `predictions` answer that breaks the mapping is a `Protocol` error with
/// the place, not a panic.
#[tokio::test]
async fn v1_raw_calls_and_bad_answers() {
    let server = FaultServer::start([
        Fault::json(200, r#"{"predictions":[1]}"#),
        Fault::json(200, r#"{"predictions":[[1,2],[3]]}"#),
        Fault::json(200, r#"{"result":1}"#),
    ])
    .await
    .unwrap();
    let mut config = KServeConfig::new(server.url());
    config.protocol = inferlink_kserve::ProtocolChoice::Fixed(KServeProtocol::V1);
    let client = KServeClient::new(config).unwrap();
    let raw = client
        .invoke(
            &"m".into(),
            inferlink::RawRequest::new(Bytes::from_static(b"a,b\n1,2\n"), "text/csv"),
        )
        .await
        .unwrap();
    assert_eq!(&raw.body[..], br#"{"predictions":[1]}"#);
    let e = client
        .infer(
            &"m".into(),
            InferRequest::from(Tensor::from_vec("x", vec![1i32, 2])),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert_eq!(e.path(), Some("predictions[1]"));
    assert_eq!(e.model(), Some("m"));
    let v = client
        .predict(&"m".into(), &serde_json::json!({"instances": [1]}))
        .await
        .unwrap();
    assert_eq!(v, serde_json::json!({"result": 1}));
    let seen = server.recorded();
    assert_eq!(seen[0].header("content-type"), Some("text/csv"));
    assert_eq!(seen[0].body, b"a,b\n1,2\n");
    assert_eq!(seen[2].body, br#"{"instances":[1]}"#);
}

/// A client for the fault server with a fixed protocol and room for
/// retries, so that a request sent once was sent once by choice.
fn retrying_client(server: &FaultServer, protocol: KServeProtocol) -> KServeClient {
    let config = KServeConfig::new(server.url())
        .apply_values(
            [
                ("retry_max_attempts", "5"),
                ("retry_backoff_base_ms", "10"),
                ("retry_backoff_max_ms", "50"),
            ]
            .map(|(k, v)| (k, inferlink::resolve::ConfigValue::Plain(v.to_owned()))),
        )
        .unwrap();
    let mut config = config;
    config.protocol = inferlink_kserve::ProtocolChoice::Fixed(protocol);
    KServeClient::new(config).unwrap()
}

/// Issue 14: the KServe connector used to resend a POST on its own after a
/// 500 when the next call "failed before a response arrived" — but over
/// HTTP/1.1 that failure also happens after the server read the request.
/// Now the transport's one retry loop decides: a non-idempotent inference
/// that the server read and then reset is sent exactly once (V1 and V2),
/// and the error says it may be retried only by a caller who knows it is safe.
#[tokio::test]
async fn non_idempotent_infer_reset_after_being_written_is_sent_exactly_once() {
    for protocol in [KServeProtocol::V1, KServeProtocol::V2Rest] {
        let server = FaultServer::start([
            Fault::json(500, r#"{"error":"ValueError : model raised"}"#),
            Fault::ResetAfterRead,
        ])
        .await
        .unwrap();
        let client = retrying_client(&server, protocol);
        let request = || InferRequest::from(Tensor::from_vec("x", vec![1.0f32, 2.0]));
        let e = client.infer(&"m".into(), request()).await.unwrap_err();
        assert_eq!(e.context("status"), Some("500"), "{protocol:?}: {e}");
        // The call right after a 500 (the old trigger of the resend).
        let e = client.infer(&"m".into(), request()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{protocol:?}: {e}");
        assert_eq!(e.context("attempts"), Some("1"), "{protocol:?}: {e}");
        assert_eq!(
            server.requests(),
            2,
            "{protocol:?}: the reset inference must reach the server once"
        );
        let posts = server
            .recorded()
            .iter()
            .filter(|r| r.method == "POST")
            .count();
        assert_eq!(posts, 2, "{protocol:?}");
    }
}

/// What the transport does retry still is retried through the KServe
/// connector: an inference marked idempotent after a reset, and a
/// non-idempotent one whose connection was refused (nothing was sent).
#[tokio::test]
async fn idempotent_and_connect_failures_are_still_retried_by_the_transport() {
    for protocol in [KServeProtocol::V1, KServeProtocol::V2Rest] {
        let answer = match protocol {
            KServeProtocol::V1 => r#"{"predictions":[2.0,4.0]}"#,
            _ => {
                r#"{"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[2.0,4.0]}]}"#
            }
        };
        let server = FaultServer::start([Fault::ResetAfterRead, Fault::json(200, answer)])
            .await
            .unwrap();
        let client = retrying_client(&server, protocol);
        let request = InferRequest::from(Tensor::from_vec("x", vec![1.0f32, 2.0])).idempotent();
        let out = client.infer(&"m".into(), request).await.unwrap();
        assert_eq!(
            out.outputs[0].to_f32_lossy().unwrap(),
            vec![2.0, 4.0],
            "{protocol:?}"
        );
        assert_eq!(server.requests(), 2, "{protocol:?}: one reset, one answer");

        // Refused connections: the first attempts provably sent nothing.
        let server = FaultServer::start_with(
            [Fault::json(200, answer)],
            inferlink_testkit::fault::FaultOptions {
                refuse_for: std::time::Duration::from_millis(300),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut config = KServeConfig::new(server.url())
            .apply_values(
                [
                    ("retry_max_attempts", "100"),
                    ("retry_backoff_base_ms", "50"),
                    ("retry_backoff_max_ms", "100"),
                ]
                .map(|(k, v)| (k, inferlink::resolve::ConfigValue::Plain(v.to_owned()))),
            )
            .unwrap();
        config.protocol = inferlink_kserve::ProtocolChoice::Fixed(protocol);
        let client = KServeClient::new(config).unwrap();
        let request = InferRequest::from(Tensor::from_vec("x", vec![1.0f32, 2.0]));
        client.infer(&"m".into(), request).await.unwrap();
        assert_eq!(
            server.requests(),
            1,
            "{protocol:?}: only the attempt after the refusals reached the server"
        );
    }
}
