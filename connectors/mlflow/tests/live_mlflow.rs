//! The MLflow connector against the real scoring server, `mlflow models
//! serve` (mlflow-skinny 3.17.2) with the harness's `doubler` pyfunc model
//! (every value times `params.factor`, default 2; a `fail` column or named
//! tensor raises), started by the real-server harness. A missing venv skips
//! with a visible line, or fails under `INFERLINK_REQUIRE_LIVE=1`.
//!
//! Answers the real server cannot be made to give (deep nesting, ragged
//! arrays, bare NaN at will, oversized bodies) come from testkit's scripted
//! loopback fault server, a stand-in named as such in each test (`stand_in_*`).

use std::sync::Arc;

use inferlink::prelude::*;
use inferlink::{
    ConnectTarget, Connectors, DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef,
    RawRequest, Tensor,
};
use inferlink_mlflow::MlflowConnector;
use inferlink_testkit::connector::{
    BadInput, ConformanceSpec, Expect, InvokeCase, run_connector_conformance,
};
use inferlink_testkit::fault::{Fault, FaultServer};
use inferlink_testkit::live::{self, TestRecord};
use inferlink_testkit::servers::{RunningServer, ServerKind};
use serde_json::{Value, json};

const TOKEN: &str = "mlflow-test-token-5c1d9e";

async fn server() -> Option<&'static RunningServer> {
    live::shared_server(ServerKind::Mlflow).await
}

/// A connector from a registered record, as a host gets one: product
/// `mlflow` with a service of resource `mlflow-scoring` (dispatch by resource),
/// the bearer token in a global credential, and extra `settings`.
async fn connect(server: &RunningServer, settings: &[(&str, &str)]) -> Arc<dyn InferenceConnector> {
    TestRecord::new("mlflow-scoring-0001", "mlflow", "3.17.2", "mlflow-scoring")
        .service_id("scoring")
        .settings(&[("model_name", "doubler"), ("deadline_ms", "30000")])
        .settings(settings)
        .credential("token", Some("global"), &[("auth_bearer_token", TOKEN)])
        .endpoint(&server.http_url())
        .connect(Connectors::new().with(inferlink_mlflow::factory()))
        .await
}

/// The one output of `c`'s answer to `request` for the doubler.
async fn infer_one(c: &Arc<dyn InferenceConnector>, request: InferRequest) -> Tensor {
    let reply = c.infer(&doubler(), request).await.unwrap();
    reply.into_single_output().unwrap()
}

fn doubler() -> ModelRef {
    ModelRef::new("doubler")
}

fn tensor<T: inferlink::tensor::Element>(name: &str, shape: Vec<usize>, v: Vec<T>) -> Tensor {
    Tensor::new(name, shape, v).unwrap()
}

#[tokio::test]
async fn conformance_against_mlflow_models_serve() {
    let Some(server) = server().await else { return };
    let connector = connect(server, &[]).await;
    let int64 = live::doubled("doubler", "x", DataType::Int64, &[2, 3]);
    let fp64 = live::doubled("doubler", "x", DataType::Fp64, &[3, 2, 2]);
    let scalar = live::doubled("doubler", "x", DataType::Int64, &[]).label("doubler/INT64/0-d");
    let with = |label: &str, request: InferRequest, expect: Expect| {
        BadInput::new(label, "doubler", request, expect)
    };
    let one = || InferRequest::new().with_input(tensor("x", vec![2], vec![1i64, 2]));
    let spec = ConformanceSpec::new()
        // The server checks neither shape nor datatype: the doubler doubles anything numeric.
        .bad_input(int64.wrong_shape().expect(Expect::Succeeds))
        .bad_input(int64.wrong_datatype().expect(Expect::Succeeds))
        .bad_input(with(
            "params/factor_not_a_long",
            one().with_parameter("factor", "x"),
            Expect::fails(ErrorKind::InvalidInput),
        ))
        .bad_input(with(
            "params/factor_a_float",
            one().with_parameter("factor", 2.5),
            Expect::fails(ErrorKind::InvalidInput),
        ))
        .bad_input(with(
            "model_raises",
            one().with_input(Tensor::from_strings("fail", vec![1], ["boom"]).unwrap()),
            Expect::fails(ErrorKind::ModelError),
        ))
        .bad_input(with(
            "no_inputs",
            InferRequest::new(),
            Expect::fails(ErrorKind::InvalidInput),
        ))
        .round_trip(int64)
        .round_trip(fp64)
        .round_trip(scalar)
        .invoke(InvokeCase::new(
            "doubler",
            RawRequest::new("a,b\n1,2\n3,4\n", "text/csv"),
            |r| {
                let v: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
                let want = json!({"predictions": [{"a": 2, "b": 4}, {"a": 6, "b": 8}]});
                (v == want).then_some(()).ok_or(format!("got {v}"))
            },
        ))
        .secret(TOKEN);
    let report = run_connector_conformance(connector.as_ref(), &spec).await;
    println!("{report}");
    report.assert_passed();
    // Capabilities by construction: no listing, no metadata, no readiness, no streams.
    let caps = connector.capabilities();
    assert_eq!(caps.letters(), "IV", "{caps:?}");
    assert_eq!(
        report.status("unknown_model"),
        Some(&inferlink_testkit::connector::CheckStatus::Passed)
    );
}

#[tokio::test]
async fn params_reach_the_model() {
    let Some(server) = server().await else { return };
    let connector = connect(server, &[]).await;
    let request = InferRequest::new()
        .with_input(tensor("x", vec![3], vec![1i64, 2, 3]))
        .with_parameter("factor", 3i64);
    let out = infer_one(&connector, request).await;
    assert_eq!(out.name(), "predictions");
    assert_eq!(out.to_vec::<i64>().unwrap(), [3, 6, 9]);
}

/// The input forms the server reads, and the answers this connector
/// refuses: the doubler answers several named inputs with a dict and a
/// DataFrame with records, which are not one tensor (read them with invoke).
#[tokio::test]
async fn input_formats_and_answers_that_are_not_one_tensor() {
    let Some(server) = server().await else { return };
    let two = || {
        InferRequest::new()
            .with_input(tensor("a", vec![2], vec![1i64, 2]))
            .with_input(tensor("b", vec![2, 1], vec![3.5f64, 4.0]))
    };
    let not_one_tensor = |e: inferlink::Error| {
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(e.message().contains("invalid type: map"), "{e}");
    };
    // inputs: a dict of arrays in, a dict of arrays out (the server scored it).
    let inputs = connect(server, &[]).await;
    not_one_tensor(inputs.infer(&doubler(), two()).await.unwrap_err());
    let raw = r#"{"inputs": {"a": [1, 2], "b": [[3.5], [4]]}}"#;
    let body = inputs
        .invoke(&doubler(), RawRequest::json(raw))
        .await
        .unwrap()
        .body;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"predictions": {"a": [2, 4], "b": [[7.0], [8.0]]}})
    );

    // instances: one tensor; several are refused before sending.
    let instances = connect(server, &[("input_format", "instances")]).await;
    let one = InferRequest::new().with_input(tensor("x", vec![1, 2], vec![5i64, 6]));
    let out = infer_one(&instances, one).await;
    assert_eq!(
        (out.shape(), out.to_vec::<i64>().unwrap()),
        (&[1usize, 2][..], vec![10, 12])
    );
    let e = instances.infer(&doubler(), two()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // dataframe_split: the server builds the DataFrame (a `fail` column makes the
    // model raise), and the doubler answers records.
    let frame = connect(server, &[("input_format", "dataframe_split")]).await;
    not_one_tensor(frame.infer(&doubler(), two()).await.unwrap_err());
    let failing = two().with_input(Tensor::from_strings("fail", vec![2], ["x", "y"]).unwrap());
    let e = frame.infer(&doubler(), failing).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError, "{e}");
    assert!(
        e.vendor_message()
            .unwrap_or_default()
            .contains("asked to fail: x"),
        "{e:?}"
    );
    let square = InferRequest::new().with_input(tensor("m", vec![2, 2], vec![1i64, 2, 3, 4]));
    let e = frame.infer(&doubler(), square).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.context("status")),
        (ErrorKind::InvalidInput, None),
        "{e}"
    );

    // output_datatype fp64 types integers as FP64; output_name names the output.
    let floats = connect(server, &[("output_datatype", "fp64"), ("output_name", "y")]).await;
    let one = InferRequest::new().with_input(tensor("x", vec![2], vec![1i64, 2]));
    let out = infer_one(&floats, one).await;
    assert_eq!(
        (out.name(), out.to_vec::<f64>().unwrap()),
        ("y", vec![2.0, 4.0])
    );
}

#[tokio::test]
async fn errors_map_with_the_vendor_message_apart() {
    let Some(server) = server().await else { return };
    let connector = connect(server, &[]).await;
    // The model raises: 400 BAD_REQUEST with a stack trace → ModelError, the model's text kept.
    let raising = InferRequest::new()
        .with_input(tensor("a", vec![1], vec![1i64]))
        .with_input(Tensor::from_strings("fail", vec![1], ["boom"]).unwrap());
    let e = connector.infer(&doubler(), raising).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError, "{e}");
    assert!(!e.is_retryable());
    let vendor = e.vendor_message().unwrap_or_default();
    assert!(vendor.contains("asked to fail"), "{vendor}");
    assert!(
        vendor.starts_with("Encountered an unexpected error"),
        "{vendor}"
    );
    assert!(
        !vendor.contains("Traceback") && !vendor.contains(".py"),
        "{vendor}"
    );
    assert_eq!(e.context("vendor_code"), Some("BAD_REQUEST"));
    assert_eq!((e.vendor(), e.model()), (Some("mlflow"), Some("doubler")));

    // The same through raw invocation of a DataFrame.
    let frame = r#"{"dataframe_split": {"columns": ["a", "fail"], "data": [[1, "boom"]]}}"#;
    let e = connector
        .invoke(&doubler(), RawRequest::json(frame))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError, "{e}");

    // A parameter of the wrong type: INVALID_PARAMETER_VALUE → InvalidInput.
    let bad = InferRequest::new()
        .with_input(tensor("x", vec![1], vec![1i64]))
        .with_parameter("factor", "x");
    let e = connector.infer(&doubler(), bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(e.context("vendor_code"), Some("INVALID_PARAMETER_VALUE"));
    assert!(
        e.vendor_message()
            .unwrap_or_default()
            .contains("Can not safely convert"),
        "{e:?}"
    );

    // Bodies the server refuses: not JSON (BAD_REQUEST, no trace), a CSV that does not parse.
    for (body, ct) in [("{\"inputs\": [1, 2", "application/json"), ("", "text/csv")] {
        let e = connector
            .invoke(&doubler(), RawRequest::new(body, ct))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{ct} {body:?}: {e}");
        assert!(e.vendor_message().is_some_and(|m| m.len() <= 1024), "{e:?}");
    }
    // 415: a type it does not read, and content types compared case-sensitively.
    for ct in ["application/xml", "APPLICATION/JSON"] {
        let e = connector
            .invoke(&doubler(), RawRequest::new("{}", ct))
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.context("status")),
            (ErrorKind::InvalidInput, Some("415")),
            "{e}"
        );
    }
    // No content type would be a 500 from the server: refused before sending.
    let e = connector
        .invoke(&doubler(), RawRequest::new("{}", ""))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.context("status")),
        (ErrorKind::InvalidInput, None),
        "{e}"
    );
}

#[tokio::test]
async fn one_model_per_server() {
    let Some(server) = server().await else { return };
    let connector = connect(server, &[]).await;
    let x = || InferRequest::new().with_input(tensor("x", vec![1], vec![1i64]));
    for model in [ModelRef::new("other"), doubler().with_version("1")] {
        let e = connector.infer(&model, x()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(e.model(), Some(model.to_string().as_str()));
    }
    // Without model_name any name reaches the one model (the server ignores names).
    let target = ConnectTarget::new("mlflow-serving", server.http_url());
    let any = MlflowConnector::from_target(&target).unwrap();
    let out = any.infer(&ModelRef::new("whatever"), x()).await.unwrap();
    assert_eq!(
        out.into_single_output().unwrap().to_vec::<i64>().unwrap(),
        [2]
    );
    assert!(any.health().await.unwrap().is_serving());
}

#[tokio::test]
async fn factory_refuses_a_typo_and_leaves_the_tracking_server_alone() {
    let connectors = Connectors::new().with(inferlink_mlflow::factory());
    let typo = ConnectTarget::new("mlflow-serving", "http://127.0.0.1:1")
        .with_plain("input_fromat", "inputs");
    let e = connectors.connect(&typo).await.unwrap_err();
    live::assert_suggests_key(&e, "input_fromat", "input_format");
    let word = ConnectTarget::new("mlflow-serving", "http://127.0.0.1:1")
        .with_plain("output_datatype", "int32");
    let e = connectors.connect(&word).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::Config, Some("output_datatype")),
        "{e}"
    );
    // The seed's MLflow records are tracking servers: not this connector's.
    let tracking = ConnectTarget::new("mlflow", "http://mlflow.mlflow")
        .with_resource("mlflow-tracking")
        .with_plain("MLFLOW_TRACKING_URI", "http://mlflow.mlflow");
    let e = connectors.connect(&tracking).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

/// A connector to the stand-in (testkit's fault server) playing `body` as a 200 JSON answer.
async fn stand_in(
    body: &[u8],
    settings: &[(&str, &str)],
) -> (FaultServer, Arc<dyn InferenceConnector>) {
    let fault = Fault::with_body(200, "application/json", body.to_vec());
    let server = FaultServer::start([fault]).await.unwrap();
    let target = settings.iter().fold(
        ConnectTarget::new("mlflow-serving", server.url()).with_plain("retry_max_attempts", "1"),
        |t, (k, v)| t.with_plain(*k, *v),
    );
    let connector = Connectors::new()
        .with(inferlink_mlflow::factory())
        .connect(&target)
        .await
        .unwrap();
    (server, connector)
}

async fn stand_in_answer(body: &[u8], settings: &[(&str, &str)]) -> inferlink::Result<Vec<Tensor>> {
    let (_server, connector) = stand_in(body, settings).await;
    let request = InferRequest::new().with_input(tensor("x", vec![1], vec![1i64]));
    connector
        .infer(&doubler(), request)
        .await
        .map(|r| r.outputs)
}

/// Configuration keys and values of a stand-in connector.
type Settings = &'static [(&'static str, &'static str)];

#[tokio::test]
async fn stand_in_hostile_answers_are_protocol_errors() {
    let deep = format!(
        "{{\"predictions\": {}1{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let cases: Vec<(&str, Vec<u8>, Settings)> = vec![
        ("deep nesting", deep.into_bytes(), &[]),
        ("ragged", br#"{"predictions": [[1, 2], [3]]}"#.to_vec(), &[]),
        ("ragged rank", br#"{"predictions": [[1], 2]}"#.to_vec(), &[]),
        (
            "ragged empty",
            br#"{"predictions": [[], [1]]}"#.to_vec(),
            &[],
        ),
        ("strings", br#"{"predictions": ["a", "b"]}"#.to_vec(), &[]),
        ("booleans", br#"{"predictions": [true]}"#.to_vec(), &[]),
        ("null", br#"{"predictions": [1, null]}"#.to_vec(), &[]),
        (
            "records missing a column",
            br#"{"predictions": [{"a": 1, "b": 2}, {"a": 3}]}"#.to_vec(),
            &[],
        ),
        (
            "records mixed with numbers",
            br#"{"predictions": [{"a": 1}, 2]}"#.to_vec(),
            &[],
        ),
        (
            "beyond INT64",
            br#"{"predictions": [18446744073709551615]}"#.to_vec(),
            &[],
        ),
        ("no predictions", br#"{"outputs": [1]}"#.to_vec(), &[]),
        ("not an object", b"[1, 2]".to_vec(), &[]),
        ("trailing bytes", br#"{"predictions": [1]} x"#.to_vec(), &[]),
        (
            "a fraction under int64",
            br#"{"predictions": [1.5]}"#.to_vec(),
            &[("output_datatype", "int64")],
        ),
        (
            "NaN under int64",
            br#"{"predictions": [NaN]}"#.to_vec(),
            &[("output_datatype", "int64")],
        ),
        ("bare word", br#"{"predictions": [NaNa]}"#.to_vec(), &[]),
        (
            "over the size limit",
            format!("{{\"predictions\": [{}1]}}", "1,".repeat(4096)).into_bytes(),
            &[("response_max_bytes", "4096")],
        ),
    ];
    for (label, body, settings) in cases {
        let e = stand_in_answer(&body, settings).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{label}: {e}");
        assert!(
            e.to_string().len() < 4096,
            "{label}: the error is not bounded"
        );
        assert_eq!(e.vendor(), Some("mlflow"), "{label}");
    }
}

#[tokio::test]
async fn stand_in_bare_nan_is_refused_with_a_hint() {
    for body in [
        &br#"{"predictions": [3.0, NaN]}"#[..],
        br#"{"predictions": [-Infinity]}"#,
    ] {
        let e = stand_in_answer(body, &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(
            e.message().contains("bare NaN or Infinity") && e.message().contains("invoke"),
            "{e}"
        );
    }
    // The same answer through invoke: the bytes as the server sent them.
    let (_server, connector) = stand_in(br#"{"predictions": [NaN]}"#, &[]).await;
    let raw = connector
        .invoke(&doubler(), RawRequest::json("{}"))
        .await
        .unwrap();
    assert_eq!(&raw.body[..], br#"{"predictions": [NaN]}"#);
}

#[tokio::test]
async fn stand_in_empty_scalar_and_wide_answers_decode() {
    let out = stand_in_answer(br#"{"predictions": [[], []], "extra": {"NaN": [1]}}"#, &[])
        .await
        .unwrap();
    assert_eq!(
        (out[0].shape(), out[0].datatype()),
        (&[2usize, 0][..], DataType::Int64)
    );
    let out = stand_in_answer(br#"{"predictions": 7}"#, &[("output_name", "y")])
        .await
        .unwrap();
    assert_eq!((out[0].name(), out[0].shape()), ("y", &[][..]));
    let out = stand_in_answer(br#"{"predictions": [1, 2.5]}"#, &[])
        .await
        .unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), [1.0, 2.5]);
    let big = stand_in_answer(br#"{"predictions": [-9223372036854775808]}"#, &[])
        .await
        .unwrap();
    assert_eq!(big[0].to_vec::<i64>().unwrap(), [i64::MIN]);
    // Many empty rows: the shape is large, the data empty, nothing allocated for it.
    let wide = format!("{{\"predictions\": [{}[]]}}", "[],".repeat(200_000));
    let out = stand_in_answer(wide.as_bytes(), &[]).await.unwrap();
    assert_eq!(
        (out[0].shape(), out[0].element_count()),
        (&[200_001usize, 0][..], 0)
    );
}

#[tokio::test]
async fn stand_in_sees_the_request_bodies() {
    let (server, connector) = stand_in(br#"{"predictions": [0]}"#, &[]).await;
    let request = InferRequest::new()
        .with_input(tensor(
            "x",
            vec![2, 2],
            vec![1.5f32, f32::NAN, -0.25, f32::INFINITY],
        ))
        .with_parameter("factor", 3i64);
    connector.infer(&doubler(), request).await.unwrap();
    let sent = &server.recorded()[0];
    assert_eq!(
        (sent.method.as_str(), sent.target.as_str()),
        ("POST", "/invocations")
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        String::from_utf8_lossy(&sent.body),
        r#"{"inputs":[[1.5,NaN],[-0.25,Infinity]],"params":{"factor":3}}"#
    );
    // dataframe_split: inputs as columns, rows interleaved; an array answer decodes.
    let settings = [("input_format", "dataframe_split")];
    let (server, connector) = stand_in(br#"{"predictions": [0.5, 1]}"#, &settings).await;
    let request = InferRequest::new()
        .with_input(tensor("a", vec![2], vec![1i64, 2]))
        .with_input(Tensor::from_strings("s", vec![2, 1], ["x", "\"y\""]).unwrap())
        .with_input(tensor("t", vec![2], vec![true, false]));
    let out = infer_one(&connector, request).await;
    assert_eq!(
        (out.datatype(), out.to_vec::<f64>().unwrap()),
        (DataType::Fp64, vec![0.5, 1.0])
    );
    assert_eq!(
        String::from_utf8_lossy(&server.recorded()[0].body),
        r#"{"dataframe_split":{"columns":["a","s","t"],"data":[[1,"x",true],[2,"\"y\"",false]]}}"#
    );
    // A 0-d tensor is a bare value; named inputs an object; small ints stay integers.
    let (server, connector) = stand_in(br#"{"predictions": 1}"#, &[]).await;
    let request = InferRequest::new()
        .with_input(Tensor::new("k", vec![], vec![7u8]).unwrap())
        .with_input(tensor("e", vec![0, 2], Vec::<i32>::new()));
    connector.infer(&doubler(), request).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&server.recorded()[0].body),
        r#"{"inputs":{"k":7,"e":[]}}"#
    );
}
