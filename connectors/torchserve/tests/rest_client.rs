//! The REST client against the testkit's scripted loopback server answering
//! what TorchServe answers (bodies and statuses observed on TorchServe 0.12):
//! what is sent (paths, query, the token per request), and how answers and
//! errors map. The real server is exercised in `live_torchserve.rs`.

use inferlink::prelude::*;
use inferlink::resolve::ConfigValue;
use inferlink::{
    Connectors, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest, Secret, Tensor,
};
use inferlink_testkit::fault::{Fault, FaultServer, envelope};
use inferlink_testkit::live::{TestRecord, expect_error};
use inferlink_torchserve::{RegisterOptions, ScaleOptions, TorchServeClient, TorchServeConfig};

fn config(inference: &FaultServer, management: Option<&FaultServer>) -> TorchServeConfig {
    let mut values = vec![
        ("retry_max_attempts", "3".to_owned()),
        ("retry_backoff_base_ms", "1".to_owned()),
        ("deadline_ms", "10000".to_owned()),
        ("timeout_request_ms", "5000".to_owned()),
    ];
    if let Some(m) = management {
        values.push(("management_url", m.url()));
    }
    TorchServeConfig::new(inference.url())
        .apply_values(values.into_iter().map(|(k, v)| (k, ConfigValue::Plain(v))))
        .unwrap()
        .with_keys(
            Some(Secret::new("inf-key-1")),
            Some(Secret::new("mgmt-key-1")),
        )
}

fn client(inference: &FaultServer, management: Option<&FaultServer>) -> TorchServeClient {
    TorchServeClient::new(config(inference, management)).unwrap()
}

#[tokio::test]
async fn predictions_carry_the_token_and_the_raw_body() {
    let server = FaultServer::start([
        // TorchServe answers predictions without a Content-Type, pretty-printed.
        Fault::Respond(inferlink_testkit::fault::Canned {
            status: 200,
            headers: vec![("x-request-id".into(), "r-1".into())],
            body: b"[\n  2,\n  4\n]".to_vec(),
            chunked: false,
        }),
    ])
    .await
    .unwrap();
    let c = client(&server, None);
    let out = c
        .predict(
            &ModelRef::new("doubler").with_version("1.0"),
            RawRequest::new(&b"\x00\x01"[..], "application/octet-stream"),
        )
        .await
        .unwrap();
    assert_eq!(&out.body[..], b"[\n  2,\n  4\n]");
    assert_eq!(out.content_type, None);
    assert_eq!(
        out.headers,
        vec![("x-request-id".to_owned(), "r-1".to_owned())]
    );
    let seen = &server.recorded()[0];
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("POST", "/predictions/doubler/1.0")
    );
    assert_eq!(seen.header("authorization"), Some("Bearer inf-key-1"));
    assert_eq!(
        seen.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(seen.body, b"\x00\x01");
}

#[tokio::test]
async fn infer_uses_the_json_mapping_and_keeps_the_datatype() {
    let server = FaultServer::start([Fault::Respond(inferlink_testkit::fault::Canned {
        status: 200,
        headers: Vec::new(),
        body: b"[[2, 4], [6, 8]]".to_vec(),
        chunked: false,
    })])
    .await
    .unwrap();
    let c = client(&server, None);
    let input = Tensor::new("x", vec![2, 2], vec![1i32, 2, 3, 4]).unwrap();
    let out = c
        .infer(&ModelRef::new("m"), InferRequest::new().with_input(input))
        .await
        .unwrap();
    assert_eq!(out.model_name, "m");
    let t = out.require_output("output-0").unwrap();
    assert_eq!(t.shape(), &[2, 2]);
    assert_eq!(t.to_vec::<i32>().unwrap(), vec![2, 4, 6, 8]);
    assert_eq!(server.recorded()[0].body, b"[[1,2],[3,4]]");
    assert_eq!(
        server.recorded()[0].header("content-type"),
        Some("application/json")
    );
}

#[tokio::test]
async fn a_rotated_key_is_sent_from_the_next_request_on() {
    let server = FaultServer::start([
        envelope::torchserve_invalid_key(),
        Fault::json(200, r#"{"status": "Healthy"}"#),
    ])
    .await
    .unwrap();
    let c = client(&server, None);
    let e = c.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(server.requests(), 1, "a token failure is not retried");
    c.keys().set_inference(Some(Secret::new("inf-key-2")));
    assert!(c.health().await.unwrap().is_serving());
    let seen = server.recorded();
    assert_eq!(seen[0].header("authorization"), Some("Bearer inf-key-1"));
    assert_eq!(seen[1].header("authorization"), Some("Bearer inf-key-2"));
    assert_eq!(seen[1].target, "/ping");
    // Debug never shows a key.
    let shown = format!("{c:?}");
    assert!(!shown.contains("inf-key"), "{shown}");
}

#[tokio::test]
async fn ping_500_is_live_but_not_ready() {
    let server = FaultServer::start([Fault::json(500, r#"{"status": "Unhealthy"}"#)])
        .await
        .unwrap();
    let h = client(&server, None).health().await.unwrap();
    assert!(h.live && !h.ready);
}

#[tokio::test]
async fn handler_failures_are_model_errors_and_busy_servers_are_retried() {
    let server = FaultServer::start([
        Fault::json(
            503,
            r#"{"code": 503, "type": "InternalServerException", "message": "Prediction failed"}"#,
        ),
        Fault::json(
            503,
            r#"{"code": 503, "type": "ServiceUnavailableException", "message": "Model \"m\" has no worker to serve inference request. Please use scale workers API to add workers."}"#,
        ),
        Fault::json(200, "[1]"),
    ])
    .await
    .unwrap();
    let c = client(&server, None);
    let e = expect_error(
        c.predict(&ModelRef::new("m"), RawRequest::json("[1]"))
            .await,
        ErrorKind::ModelError,
        "",
    );
    assert_eq!(e.context("vendor_code"), Some("InternalServerException"));
    assert!(e.to_string().contains("Prediction failed"), "{e}");
    assert_eq!(server.requests(), 1);
    // No worker: the server refused the work, so even a POST is retried.
    let out = c
        .predict(&ModelRef::new("m"), RawRequest::json("[1]"))
        .await
        .unwrap();
    assert_eq!(&out.body[..], b"[1]");
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn unknown_models_are_not_found_with_context() {
    let server = FaultServer::start([envelope::torchserve_not_found()])
        .await
        .unwrap();
    let c = client(&server, None);
    let e = expect_error(
        c.invoke(&ModelRef::new("nope"), RawRequest::json("[]"))
            .await,
        ErrorKind::NotFound,
        "",
    );
    assert_eq!(e.vendor(), Some("torchserve"));
    assert_eq!(e.model(), Some("nope"));
    assert_eq!(e.context("vendor_code"), Some("ModelNotFoundException"));
}

#[tokio::test]
async fn management_calls_use_their_own_url_and_key() {
    let inference = FaultServer::start([]).await.unwrap();
    let management = FaultServer::start([
        Fault::json(
            200,
            r#"{"nextPageToken": "1", "models": [{"modelName": "a", "modelUrl": "a.mar"}]}"#,
        ),
        Fault::json(200, r#"{"models": [{"modelName": "b", "modelUrl": "b.mar"}]}"#),
        Fault::json(200, r#"{"status": "Model \"d2\" Version: 1.0 registered with 1 initial workers"}"#),
        Fault::json(200, r#"{"status": "Processing worker updates..."}"#),
        Fault::json(200, r#"{"status": "Default version successfully updated for model \"d2\" to \"2.0\""}"#),
        Fault::json(200, r#"{"status": "Model \"d2\" unregistered"}"#),
        Fault::json(
            200,
            r#"[{"modelName": "d2", "modelVersion": "2.0", "workers": [{"id": "9001", "status": "UNLOADING"}]}]"#,
        ),
    ])
    .await
    .unwrap();
    let c = client(&inference, Some(&management));
    assert!(
        inferlink::connector::capabilities_of(&c).list_models
            && inferlink::connector::capabilities_of(&c).model_ready
    );
    let names = inferlink_testkit::live::model_names(&c).await;
    assert_eq!(names, ["a", "b"]);
    let client = &c;
    let status = client
        .register_model(
            &RegisterOptions::new("https://example.invalid/d 2.mar")
                .model_name("d2")
                .batch_size(4)
                .max_batch_delay_ms(50)
                .initial_workers(1),
        )
        .await
        .unwrap();
    assert!(status.status.contains("registered"));
    client
        .scale_workers(
            &ModelRef::new("d2").with_version("1.0"),
            &ScaleOptions::range(1, 3),
        )
        .await
        .unwrap();
    client.set_default_version("d2", "2.0").await.unwrap();
    client.unregister_model(&ModelRef::new("d2")).await.unwrap();
    assert!(!c.model_ready(&ModelRef::new("d2")).await.unwrap());

    let seen = management.recorded();
    let targets: Vec<(&str, &str)> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            ("GET", "/models?limit=100"),
            ("GET", "/models?limit=100&next_page_token=1"),
            (
                "POST",
                "/models?url=https%3A%2F%2Fexample.invalid%2Fd+2.mar&model_name=d2&batch_size=4&max_batch_delay=50&initial_workers=1&synchronous=true"
            ),
            (
                "PUT",
                "/models/d2/1.0?min_worker=1&max_worker=3&synchronous=true"
            ),
            ("PUT", "/models/d2/2.0/set-default"),
            ("DELETE", "/models/d2"),
            ("GET", "/models/d2"),
        ]
    );
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some("Bearer mgmt-key-1"))
    );
    assert_eq!(inference.requests(), 0);
}

#[tokio::test]
async fn a_disabled_model_api_is_unsupported_and_says_how_to_enable_it() {
    let inference = FaultServer::start([]).await.unwrap();
    let management = FaultServer::start([Fault::json(
        405,
        r#"{"code": 405, "type": "MethodNotAllowedException", "message": "Requested method is not allowed, please refer to API document."}"#,
    )])
    .await
    .unwrap();
    let c = client(&inference, Some(&management));
    let e = expect_error(
        c.register_model(&RegisterOptions::new("x.mar")).await,
        ErrorKind::Unsupported,
        "",
    );
    assert!(e.message().contains("--enable-model-api"), "{e}");
    assert_eq!(e.context("status"), Some("405"));
    assert_eq!(e.vendor(), Some("torchserve"));
}

#[tokio::test]
async fn without_management_url_management_is_unsupported() {
    let inference = FaultServer::start([]).await.unwrap();
    let c = client(&inference, None);
    assert!(!inferlink::connector::capabilities_of(&c).list_models);
    assert_eq!(c.models().await.unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(
        c.model_ready(&ModelRef::new("m")).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let e = c.list_models(10, None).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::Unsupported, Some("management_url"))
    );
    let dynamic: &dyn InferenceConnector = &c;
    assert_eq!(
        dynamic
            .model_metadata(&ModelRef::new("m"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(inference.requests(), 0);
}

#[tokio::test]
async fn streamed_answers_arrive_chunk_by_chunk() {
    let server =
        FaultServer::start([
            Fault::with_body(200, "text/plain", b"a-0\na-1\ndone\n".to_vec()).chunked(),
        ])
        .await
        .unwrap();
    let c = client(&server, None);
    let stream = c
        .predict_stream(&ModelRef::new("s"), RawRequest::json(r#"{"n": 2}"#))
        .await
        .unwrap();
    assert_eq!(stream.content_type.as_deref(), Some("text/plain"));
    let mut body = stream.body;
    let mut text = Vec::new();
    use futures_util::StreamExt;
    while let Some(chunk) = body.next().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(text, b"a-0\na-1\ndone\n");
    assert_eq!(
        server.recorded()[0].header("authorization"),
        Some("Bearer inf-key-1")
    );
}

#[tokio::test]
async fn kserve_routes_and_their_bodies() {
    let server = FaultServer::start([
        Fault::json(200, r#"{"predictions": [[2, 4]]}"#),
        Fault::json(
            200,
            r#"{"id": "1", "model_name": "m", "model_version": "1.0", "outputs": [{"name": "x", "datatype": "INT64", "shape": [2], "data": [2, 4]}]}"#,
        ),
    ])
    .await
    .unwrap();
    let input =
        || InferRequest::new().with_input(Tensor::new("x", vec![1, 2], vec![1i64, 2]).unwrap());
    let v1 = TorchServeClient::new(
        config(&server, None)
            .apply_values([("inference_api", ConfigValue::Plain("kserve-v1".into()))])
            .unwrap(),
    )
    .unwrap();
    let out = v1.infer(&ModelRef::new("m"), input()).await.unwrap();
    assert_eq!(out.outputs[0].to_vec::<i64>().unwrap(), vec![2, 4]);
    let v2 = TorchServeClient::new(
        config(&server, None)
            .apply_values([("inference_api", ConfigValue::Plain("kserve-v2".into()))])
            .unwrap(),
    )
    .unwrap();
    let out = v2.infer(&ModelRef::new("m"), input()).await.unwrap();
    assert_eq!(out.model_version.as_deref(), Some("1.0"));
    let seen = server.recorded();
    assert_eq!(seen[0].target, "/v1/models/m:predict");
    assert_eq!(seen[0].body, br#"{"instances":[[1,2]]}"#);
    assert_eq!(seen[1].target, "/v2/models/m/infer");
    let sent: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(sent["inputs"][0]["data"], serde_json::json!([1, 2]));
}

#[tokio::test]
async fn the_factory_serves_torchserve_records_and_checks_keys_at_connect() {
    let e = TestRecord::new("ts", "TorchServe", "0.12.0", "torchserve")
        .service_id("infer")
        .setting("management_url", "not a url")
        .endpoint("http://127.0.0.1:9")
        .try_connect(Connectors::new().with(inferlink_torchserve::factory()))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::Config, Some("management_url"))
    );
    assert_eq!(e.vendor(), Some("torchserve"));
}

#[tokio::test]
async fn the_factory_refuses_a_typoed_key_with_a_suggestion() {
    // Credentials hold the token keys; upper-case keys are left for environments.
    let target = |api_key: &str| {
        inferlink::ConnectTarget::new("torchserve", "http://127.0.0.1:1")
            .with_plain(api_key, "kserve-v2")
            .with_plain("management_url", "http://127.0.0.1:2")
            // The kit's shared keys (`kit::WIRE_KEYS`) are read too.
            .with_plain("protocol", "rest")
            .with_plain("grpc_url", "grpc://127.0.0.1:3")
            .with_secret("inference_key", "abcd1234")
            .with_secret("management_key", "efgh5678")
    };
    let (e, c) = inferlink_testkit::live::assert_factory_refuses_typo(
        &inferlink_torchserve::factory(),
        target,
        ("inference_apl", "inference_api"),
        "TS_CONFIG_FILE",
    )
    .await;
    assert!(!e.to_string().contains("abcd1234"), "{e}");
    assert_eq!(c.info().protocol, "torchserve-rest+kserve-v2");
}
