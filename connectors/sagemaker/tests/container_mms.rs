//! The SageMaker container protocol (`GET /ping`, `POST /invocations`) of
//! multi-model-server (`ServerKind::Mms`, the engine behind
//! `sagemaker-inference`), reached through the endpoint URL with `api:
//! container`: the connector conformance suite with every datatype through
//! the JSON payload, raw bytes through `invoke`, and a failing handler.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use inferlink::{
    DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest, Tensor,
};
use inferlink_testkit::connector::{
    CheckStatus, ConformanceSpec, InvokeCase, RoundTrip, Transform, run_connector_conformance,
};
use inferlink_testkit::servers::{ALL_DATATYPES, RunningServer, ServerKind};

async fn mms() -> Option<&'static RunningServer> {
    support::server(ServerKind::Mms).await
}

async fn connector(server: &RunningServer, extra: &[(&str, &str)]) -> Arc<dyn InferenceConnector> {
    let mut config = vec![("api", "container")];
    config.extend_from_slice(extra);
    support::connect(&server.http_url(), &config, &[])
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_the_container_protocol() {
    let Some(server) = mms().await else {
        return;
    };
    let connector = connector(server, &[]).await;
    assert_eq!(connector.info().protocol, "sagemaker-container");
    assert!(!inferlink::connector::capabilities_of(&*connector).stream_invoke);
    let mut spec = ConformanceSpec::new();
    let doubler = ServerKind::Mms.model("doubler").unwrap();
    for dt in doubler.datatypes(inferlink_testkit::servers::WireFormat::RestJson) {
        let datatype: DataType = dt.parse().unwrap();
        spec = spec.round_trip(
            RoundTrip::sample("doubler", "x", datatype, vec![2, 3], Transform::Double)
                .output("predictions"),
        );
    }
    // The second model takes the other JSON key.
    spec = spec.invoke(InvokeCase::new(
        "doubler2",
        RawRequest::new(Bytes::from_static(b"1,2\n3,4\n"), "text/csv"),
        |r| {
            if &r.body[..] == b"1,2\n3,4\n" && r.content_type.as_deref() == Some("text/csv") {
                Ok(())
            } else {
                Err(format!("the CSV did not come back as sent: {r:?}"))
            }
        },
    ));
    let report = run_connector_conformance(connector.as_ref(), &spec).await;
    report.assert_passed();
    let passed = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Passed)
        .count();
    assert!(passed >= ALL_DATATYPES.len() * 2 + 5, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_key_and_several_inputs() {
    let Some(server) = mms().await else {
        return;
    };
    let connector = connector(server, &[("infer_json_key", "inputs")]).await;
    let a = Tensor::new("a", vec![2], vec![1i32, -3]).unwrap();
    let b = Tensor::from_strings("b", vec![2], ["x", "y"]).unwrap();
    let reply = connector
        .infer(
            &ModelRef::new("doubler2"),
            InferRequest::new().with_input(a).with_input(b),
        )
        .await
        .unwrap();
    // Columns in, columns out: {"predictions": {"a": [2, -6], "b": ["X", "Y"]}}.
    assert_eq!(
        reply.require_output("a").unwrap().to_vec::<i32>().unwrap(),
        vec![2, -6]
    );
    assert_eq!(
        reply.require_output("b").unwrap().to_strings().unwrap(),
        vec!["X", "Y"]
    );
    let rows = connector_rows(server).await;
    let a = Tensor::new("a", vec![2], vec![1.5f64, 2.5]).unwrap();
    let b = Tensor::new("b", vec![2], vec![true, false]).unwrap();
    let reply = rows
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(a).with_input(b),
        )
        .await
        .unwrap();
    // Rows in, rows out: [{"a": 3.0, "b": false}, {"a": 5.0, "b": true}].
    assert_eq!(
        reply.require_output("a").unwrap().to_vec::<f64>().unwrap(),
        vec![3.0, 5.0]
    );
    assert_eq!(
        reply.require_output("b").unwrap().to_vec::<bool>().unwrap(),
        vec![false, true]
    );
}

async fn connector_rows(server: &RunningServer) -> Arc<dyn InferenceConnector> {
    connector(server, &[("infer_json_key", "instances")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_a_model_error_sent_once() {
    let Some(server) = mms().await else {
        return;
    };
    let connector = connector(server, &[]).await;
    let e = connector
        .invoke(
            &ModelRef::new("doubler"),
            RawRequest::json(r#"{"fail": "boom"}"#),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError, "{e}");
    assert_eq!(e.context("status"), Some("503"));
    assert_eq!(e.context("vendor_code"), Some("InternalServerException"));
    assert_eq!(e.context("attempts"), Some("1"));
    assert_eq!(e.model(), Some("doubler"));
    let health = connector.health().await.unwrap();
    assert!(health.live && health.ready);
}
