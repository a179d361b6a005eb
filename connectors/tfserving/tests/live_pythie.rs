//! The gRPC side against pythie-serving 3.4.3, a real third-party server
//! that implements TensorFlow Serving's `PredictionService/Predict` with TF
//! Serving's own protos (real-servers.md §6), started by the real-server
//! harness (`scripts/servers start pythie`). pythie has no metadata, status,
//! Classify or Regress; the connector is configured with
//! `metadata_api: false` so it declares exactly what the server offers.
//!
//! A missing venv skips with a visible line, or fails under
//! `INFERLINK_REQUIRE_LIVE=1` (what `scripts/test` sets).

use std::sync::Arc;

use inferlink::{
    Connectors, DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef, Tensor,
};
use inferlink_testkit::connector::{
    ConformanceSpec, Expect, RoundTrip, Transform, run_connector_conformance,
};
use inferlink_testkit::live::{self, TestRecord, expect_error};
use inferlink_testkit::servers::{RunningServer, ServerKind};

async fn server() -> Option<&'static RunningServer> {
    live::shared_server(ServerKind::Pythie).await
}

async fn connect(server: &RunningServer, settings: &[(&str, &str)]) -> Arc<dyn InferenceConnector> {
    connect_with(server, settings, false).await
}

async fn connect_with(
    server: &RunningServer,
    settings: &[(&str, &str)],
    metadata_api: bool,
) -> Arc<dyn InferenceConnector> {
    TestRecord::new("pythie", "pythie-serving", "3.4.3", "tfserving")
        .service_id("predict")
        .setting("metadata_api", if metadata_api { "true" } else { "false" })
        .setting("deadline_ms", "30000")
        .settings(settings)
        .endpoint(&live::grpc_url(server))
        .connect(Connectors::new().with(inferlink_tfserving::factory()))
        .await
}

/// `[n, 1]` in, `[n]` INT32 out: the table model's lookup.
fn lookup(f: fn(&Tensor) -> Vec<i32>) -> Transform {
    Transform::custom(move |input: &Tensor| {
        let n = input.shape()[0];
        Tensor::new("predictions", vec![n], f(input))
    })
}

fn doubled(t: &Tensor) -> Vec<i32> {
    match t.datatype() {
        DataType::Int64 => t
            .to_vec::<i64>()
            .unwrap()
            .iter()
            .map(|v| (2 * v) as i32)
            .collect(),
        _ => t.to_vec::<i32>().unwrap().iter().map(|v| 2 * v).collect(),
    }
}

fn lengths(t: &Tensor) -> Vec<i32> {
    t.to_byte_elements()
        .unwrap()
        .iter()
        .map(|b| b.len() as i32)
        .collect()
}

fn spec(typed: bool) -> ConformanceSpec {
    let mut spec = ConformanceSpec::new();
    let mut dtypes = vec![DataType::Int32];
    if !typed {
        // pythie reads typed DT_INT64 from int_val (a bug), so INT64 only as tensor_content.
        dtypes.push(DataType::Int64);
    }
    for dt in dtypes {
        let rt = RoundTrip::sample("doubler", "x", dt, vec![4, 1], lookup(doubled))
            .output("predictions");
        if dt == DataType::Int32 {
            // pythie validates ranks only: a rank-3 input fails inside the model (UNKNOWN).
            spec = spec.bad_input(
                rt.wrong_shape()
                    .expect(Expect::fails(ErrorKind::ModelError)),
            );
        }
        spec = spec.round_trip(rt);
    }
    let words =
        Tensor::from_byte_elements("s", vec![3, 1], ["word-1", "word-22", "word-7"]).unwrap();
    spec.round_trip(RoundTrip::new("length", words, lookup(lengths)).output("predictions"))
}

#[tokio::test]
async fn conformance_over_grpc_tensor_content_and_typed() {
    let Some(server) = server().await else { return };
    for (encoding, typed) in [("content", false), ("typed", true)] {
        let connector = connect(server, &[("grpc_tensor_encoding", encoding)]).await;
        assert_eq!(connector.info().protocol, "tfserving-grpc");
        assert!(!inferlink::connector::capabilities_of(&*connector).model_metadata);
        let report = run_connector_conformance(connector.as_ref(), &spec(typed)).await;
        eprintln!("{report}");
        report.assert_passed();
    }
}

#[tokio::test]
async fn several_inputs_and_pythie_errors() {
    let Some(server) = server().await else { return };
    let connector = connect(server, &[]).await;
    let a = Tensor::new("a", vec![3, 1], vec![1i32, 5, 19]).unwrap();
    let b = Tensor::new("b", vec![3, 1], vec![2i32, 5, 0]).unwrap();
    let r = connector
        .infer(
            &ModelRef::new("sum"),
            InferRequest::new().with_input(a.clone()).with_input(b),
        )
        .await
        .unwrap();
    assert_eq!(r.model_name, "sum");
    let p = r.into_single_output().unwrap();
    assert_eq!(p.name(), "predictions");
    assert_eq!(p.shape(), &[3]);
    // The reply arrives as tensor_content: kept raw, not copied element by element.
    assert!(p.is_raw());
    assert_eq!(p.to_vec::<i32>().unwrap(), vec![3, 10, 19]);

    // A missing feature is the model's failure (pythie answers UNKNOWN).
    let e = expect_error(
        connector
            .infer(&ModelRef::new("sum"), InferRequest::new().with_input(a))
            .await,
        ErrorKind::ModelError,
        "Features names mismatch",
    );
    assert_eq!(e.vendor(), Some("tfserving"));

    // No metadata API: the family is absent, so the common API answers
    // Unsupported without a call; the client's own method says why.
    assert!(!inferlink::connector::capabilities_of(&*connector).model_metadata);
    expect_error(
        connector.model_metadata(&ModelRef::new("sum")).await,
        ErrorKind::Unsupported,
        "",
    );
    let client = inferlink_tfserving::TfServingClient::from_target(
        &inferlink::ConnectTarget::new("pythie-serving", format!("grpc://{}", server.grpc_addr()))
            .with_plain("metadata_api", "false"),
    )
    .unwrap();
    let e = expect_error(
        client.model_metadata(&ModelRef::new("sum")).await,
        ErrorKind::Unsupported,
        "",
    );
    assert!(e.message().contains("metadata_api: false"), "{e}");
}

#[tokio::test]
async fn without_the_metadata_flag_the_server_answers_unimplemented() {
    let Some(server) = server().await else { return };
    let connector = connect_with(server, &[], true).await;
    assert!(inferlink::connector::capabilities_of(&*connector).model_metadata);
    let e = expect_error(
        connector.model_metadata(&ModelRef::new("sum")).await,
        ErrorKind::Unsupported,
        "",
    );
    assert_eq!(e.context("grpc_status"), Some("12"));
    // Health: the server answered (UNIMPLEMENTED for ModelService), so it serves.
    assert!(connector.health().await.unwrap().is_serving());
}
