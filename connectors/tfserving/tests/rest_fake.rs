//! The REST side against `tfserving_rest_fake` (testkit), a stand-in written
//! from TF Serving's REST documentation: no TF Serving binary is available
//! from any registry this project reaches, so these tests prove the client
//! against the documented behaviour, not against the real server
//! (docs/connectors/tfserving.md, "What is proven where").

use std::sync::Arc;

use bytes::Bytes;
use inferlink::kit::ConnectorConfig;
use inferlink::{
    Connectors, DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest, Tensor,
};
use inferlink_testkit::connector::{
    BadInput, ConformanceSpec, Expect, InvokeCase, RoundTrip, Transform, run_connector_conformance,
};
use inferlink_testkit::live::{TestRecord, expect_error};
use inferlink_testkit::tfserving_rest_fake::TfServingRestFake;
use inferlink_tfserving::{Examples, Feature, ModelState, TfServingClient, TfServingConfig};

async fn connect(url: &str, settings: &[(&str, &str)]) -> Arc<dyn InferenceConnector> {
    TestRecord::new("tf-fake", "TensorFlow-Serving", "2.19.0", "tfserving")
        .service_id("predict")
        .setting("deadline_ms", "20000")
        .settings(settings)
        .endpoint(url)
        .credential("token", None, &[("auth_bearer_token", SECRET)])
        .connect(Connectors::new().with(inferlink_tfserving::factory()))
        .await
}

fn client(url: &str, pairs: &[(&str, &str)]) -> TfServingClient {
    let config = TfServingConfig::new(url)
        .apply_values(
            pairs
                .iter()
                .map(|(k, v)| (*k, inferlink::resolve::ConfigValue::Plain((*v).to_owned()))),
        )
        .unwrap();
    TfServingClient::new(config).unwrap()
}

/// A bearer token the fake ignores; no error or Debug output may show it.
const SECRET: &str = "tfs-token-5f2a9c";

fn spec() -> ConformanceSpec {
    let mut spec = ConformanceSpec::new().secret(SECRET);
    for (model, dt) in [
        ("doubler-float", DataType::Fp32),
        ("doubler-double", DataType::Fp64),
        ("doubler-half", DataType::Fp16),
        ("doubler-bfloat16", DataType::Bf16),
        ("doubler-int8", DataType::Int8),
        ("doubler-int16", DataType::Int16),
        ("doubler-int32", DataType::Int32),
        ("doubler-int64", DataType::Int64),
        ("doubler-uint8", DataType::Uint8),
        ("doubler-uint16", DataType::Uint16),
        ("doubler-uint32", DataType::Uint32),
        ("doubler-uint64", DataType::Uint64),
        ("doubler-bool", DataType::Bool),
        ("doubler-string", DataType::Bytes),
    ] {
        spec = spec.round_trip(RoundTrip::sample(
            model,
            "x",
            dt,
            vec![2, 3],
            Transform::Double,
        ));
    }
    let body = r#"{"inputs": {"x": [1.5, 2.5]}}"#;
    spec.bad_input(BadInput::new(
        "unknown_input",
        "doubler-float",
        InferRequest::new().with_input(Tensor::from_vec("z", vec![1.0f32])),
        Expect::fails(ErrorKind::InvalidInput),
    ))
    .invoke(InvokeCase::new(
        "doubler-float",
        RawRequest::json(Bytes::from_static(body.as_bytes())),
        |r| {
            let text = std::str::from_utf8(&r.body).map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            if v["outputs"] == serde_json::json!([3.0, 5.0]) {
                Ok(())
            } else {
                Err(format!("unexpected answer {text}"))
            }
        },
    ))
}

#[tokio::test]
async fn conformance_columnar_and_row() {
    let fake = TfServingRestFake::start().await.unwrap();
    for format in ["columnar", "row"] {
        let connector = connect(&fake.url(), &[("request_format", format)]).await;
        assert_eq!(connector.info().protocol, "tfserving-rest");
        let report = run_connector_conformance(connector.as_ref(), &spec()).await;
        eprintln!("{report}");
        report.assert_passed();
    }
}

#[tokio::test]
async fn row_and_columnar_bodies_follow_the_documented_forms() {
    let fake = TfServingRestFake::start().await.unwrap();
    let x = Tensor::new("a", vec![2], vec![1.0f32, 2.0]).unwrap();
    let y = Tensor::new("b", vec![2], vec![3.0f32, 4.0]).unwrap();
    let request = InferRequest::new().with_input(x).with_input(y);
    for format in ["row", "columnar"] {
        let c = client(
            &fake.url(),
            &[
                ("request_format", format),
                ("signature_name", "serving_default"),
            ],
        );
        let r = c
            .predict(&ModelRef::new("pair"), request.clone())
            .await
            .unwrap();
        assert_eq!(r.model_name, "pair");
        assert_eq!(
            r.require_output("sum").unwrap().to_vec::<f32>().unwrap(),
            vec![4.0, 6.0]
        );
        assert_eq!(
            r.require_output("product")
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![3.0, 8.0]
        );
    }
    let sent = fake.requests().await;
    let bodies: Vec<&str> = sent
        .iter()
        .filter(|r| r.1.ends_with(":predict"))
        .map(|r| r.2.as_str())
        .collect();
    assert_eq!(
        bodies[0],
        r#"{"signature_name":"serving_default","instances":[{"a":1.0,"b":3.0},{"a":2.0,"b":4.0}]}"#
    );
    assert_eq!(
        bodies[1],
        r#"{"signature_name":"serving_default","inputs":{"a":[1.0,2.0],"b":[3.0,4.0]}}"#
    );

    // Requested outputs filter the answer (REST cannot select outputs).
    let c = client(&fake.url(), &[]);
    let r = c
        .predict(&ModelRef::new("pair"), request.clone().with_output("sum"))
        .await
        .unwrap();
    assert_eq!(r.outputs.len(), 1);

    // Row form needs a shared first dimension.
    let c = client(&fake.url(), &[("request_format", "row")]);
    let short = InferRequest::new()
        .with_input(Tensor::new("a", vec![1], vec![1.0f32]).unwrap())
        .with_input(Tensor::new("b", vec![2], vec![1.0f32, 2.0]).unwrap());
    let e = c.predict(&ModelRef::new("pair"), short).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("share the first dimension"), "{e}");
    let scalar = InferRequest::new().with_input(Tensor::scalar("x", 1.0f32));
    let e = c
        .predict(&ModelRef::new("half_plus_two"), scalar)
        .await
        .unwrap_err();
    assert!(e.message().contains("scalar"), "{e}");
}

#[tokio::test]
async fn non_finite_floats_and_b64_round_trip() {
    let fake = TfServingRestFake::start().await.unwrap();
    let c = client(&fake.url(), &[]);
    let x = Tensor::new("x", vec![3], vec![f32::NAN, f32::INFINITY, 1.0]).unwrap();
    let r = c
        .predict(&ModelRef::new("half_plus_two"), InferRequest::from(x))
        .await
        .unwrap();
    let y = r.require_output("y").unwrap().to_vec::<f32>().unwrap();
    assert!(y[0].is_nan());
    assert_eq!(y[1], f32::INFINITY);
    assert_eq!(y[2], 2.5);
    let sent = fake.requests().await;
    let predict = |sent: &[(String, String, String)]| {
        sent.iter()
            .rev()
            .find(|r| r.1.ends_with(":predict"))
            .unwrap()
            .2
            .clone()
    };
    assert!(predict(&sent).contains("[NaN,Infinity,1.0]"), "{sent:?}");

    // Binary input goes as {"b64"}; the `_bytes` output comes back as b64.
    let raw = Bytes::from_static(&[0xff, 0x00, 0x10]);
    let images =
        Tensor::from_byte_elements("image_bytes", vec![2], [raw.clone(), Bytes::from("ok")])
            .unwrap();
    let r = c
        .predict(&ModelRef::new("images"), InferRequest::from(images))
        .await
        .unwrap();
    assert_eq!(
        r.require_output("echo_bytes")
            .unwrap()
            .to_byte_elements()
            .unwrap(),
        vec![raw, Bytes::from("ok")]
    );
    let len = r.require_output("length").unwrap();
    assert_eq!(len.datatype(), DataType::Int64);
    assert_eq!(len.to_vec::<i64>().unwrap(), vec![3, 2]);
    assert!(predict(&fake.requests().await).contains(r#"{"b64":"/wAQ"}"#));
}

#[tokio::test]
async fn status_versions_labels_and_metadata() {
    let fake = TfServingRestFake::start().await.unwrap();
    let c = client(&fake.url(), &[]);
    let all = c
        .model_status(&ModelRef::new("half_plus_two"))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|s| s.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert!(
        all.iter()
            .all(|s| s.state == ModelState::Available && s.error_code == "OK")
    );
    let one = c
        .model_status(&ModelRef::new("half_plus_two").with_version("1"))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let canary = c
        .model_status(&ModelRef::new("half_plus_two").with_version("canary"))
        .await
        .unwrap();
    assert_eq!(canary[0].version, 2);
    expect_error(
        c.model_status(&ModelRef::new("half_plus_two").with_version("9"))
            .await,
        ErrorKind::NotFound,
        "Servable not found",
    );

    // The configured label applies when the model names no version.
    let labelled = client(&fake.url(), &[("model_version_label", "stable")]);
    let r = labelled
        .predict(
            &ModelRef::new("half_plus_two"),
            InferRequest::from(Tensor::from_vec("x", vec![2.0f32])),
        )
        .await
        .unwrap();
    assert_eq!(r.outputs[0].to_vec::<f32>().unwrap(), vec![3.0]);
    assert!(
        fake.requests()
            .await
            .iter()
            .any(|r| r.1 == "/v1/models/half_plus_two/labels/stable:predict")
    );

    let md = c.signatures(&ModelRef::new("half_plus_two")).await.unwrap();
    assert_eq!(md.version, Some(2));
    assert_eq!(md.signatures.len(), 3);
    let common = c
        .model_metadata(&ModelRef::new("half_plus_two"))
        .await
        .unwrap();
    assert_eq!(common.inputs[0].name, "x");
    assert_eq!(common.inputs[0].datatype, DataType::Fp32);
    assert_eq!(common.inputs[0].shape, vec![-1]);
    assert_eq!(
        common.properties["method_name"],
        "tensorflow/serving/predict"
    );
    let other = client(&fake.url(), &[("signature_name", "nope")]);
    let e = expect_error(
        other.model_metadata(&ModelRef::new("half_plus_two")).await,
        ErrorKind::NotFound,
        "",
    );
    assert!(e.message().contains("classify_x_to_y"), "{e}");
    // A wrong signature on predict is the server's 400.
    expect_error(
        other
            .predict(
                &ModelRef::new("half_plus_two"),
                InferRequest::from(Tensor::from_vec("x", vec![2.0f32])),
            )
            .await,
        ErrorKind::InvalidInput,
        "not found in signature def",
    );
}

#[tokio::test]
async fn classify_and_regress() {
    let fake = TfServingRestFake::start().await.unwrap();
    let model = ModelRef::new("half_plus_two");
    let ex = |x: f32| {
        [("x".to_owned(), Feature::Float(vec![x]))]
            .into_iter()
            .collect()
    };
    let examples = Examples::new(vec![ex(1.0), ex(3.0)]);
    let c = client(&fake.url(), &[("signature_name", "classify_x_to_y")]);
    let classes = c.classify(&model, &examples).await.unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0][0].label, "");
    assert_eq!(classes[1][0].score, 3.5);
    let body = &fake.requests().await.last().unwrap().2.clone();
    assert_eq!(
        body,
        r#"{"signature_name":"classify_x_to_y","examples":[{"x":1.0},{"x":3.0}]}"#
    );

    let r = client(&fake.url(), &[("signature_name", "regress_x_to_y")]);
    assert_eq!(r.regress(&model, &examples).await.unwrap(), vec![2.5, 3.5]);
    // Context features are shared and must not repeat.
    let with_ctx = Examples::new(vec![Default::default()]).with_context(ex(5.0));
    assert_eq!(r.regress(&model, &with_ctx).await.unwrap(), vec![4.5]);
    let clash = Examples::new(vec![ex(1.0)]).with_context(ex(5.0));
    let e = r.regress(&model, &clash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // The predict signature cannot regress: the server's 400.
    expect_error(
        client(&fake.url(), &[]).regress(&model, &examples).await,
        ErrorKind::InvalidInput,
        "",
    );
}

#[tokio::test]
async fn health_follows_the_configured_model() {
    let fake = TfServingRestFake::start().await.unwrap();
    let c = client(&fake.url(), &[("health_model", "half_plus_two")]);
    assert!(c.health().await.unwrap().is_serving());
    let c = client(&fake.url(), &[("health_model", "missing")]);
    let h = c.health().await.unwrap();
    assert!(h.live && !h.ready);
    // Nothing listening: an error, not a guess.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = client(
        &format!("http://127.0.0.1:{port}"),
        &[("retry_max_attempts", "1")],
    );
    let e = down.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    // TF Serving has no model listing: the family is absent, and the call
    // through the common API says so.
    let connector: &dyn InferenceConnector = &down;
    assert!(!connector.capabilities().list_models);
    let e = connector.models().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn the_factory_refuses_a_typoed_key_with_a_suggestion() {
    let target = |format_key: &str| {
        inferlink::ConnectTarget::new("tfserving", "http://127.0.0.1:1")
            .with_plain(format_key, "row")
            .with_plain("retry_max_attempts", "1")
            // The kit's shared keys (`kit::WIRE_KEYS`) are read too.
            .with_plain("protocol", "rest")
            .with_plain("grpc_url", "grpc://127.0.0.1:2")
    };
    inferlink_testkit::live::assert_factory_refuses_typo(
        &inferlink_tfserving::factory(),
        target,
        ("request_fromat", "request_format"),
        "TF_CPP_MIN_LOG_LEVEL",
    )
    .await;
}
