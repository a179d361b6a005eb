//! The connector conformance suite against the real servers of the harness
//! (`scripts/servers`): KServe's model server, Seldon MLServer and NVIDIA
//! Triton (through PyTriton), each over REST JSON, REST binary (not
//! MLServer: it has no binary extension) and gRPC, with every datatype the
//! server's test models round-trip.
//!
//! The connectors come from records through `Connectors::connect`, as a host
//! gets them. A server whose venv is not installed skips the test with a
//! visible line, or fails it under `INFERLINK_REQUIRE_LIVE=1` (what
//! `scripts/test` sets).

use std::sync::Arc;

use bytes::Bytes;
use inferlink::{
    Connectors, DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest, Tensor,
};
use inferlink_testkit::connector::{ConformanceSpec, InvokeCase, run_connector_conformance};
use inferlink_testkit::live::{self, TestRecord};
use inferlink_testkit::servers::{RunningServer, ServerKind, TensorNames, WireFormat};

/// A connector for `server` over `wire`, built from a record through the factory.
async fn connector(server: &RunningServer, wire: WireFormat) -> Arc<dyn InferenceConnector> {
    let (url, setting) = match wire {
        WireFormat::RestJson => (server.http_url(), ("tensor_encoding", "json")),
        WireFormat::RestBinary => (server.http_url(), ("tensor_encoding", "binary")),
        WireFormat::Grpc => (live::grpc_url(server), ("protocol", "grpc")),
    };
    let id = format!("live-{}", server.kind().name());
    TestRecord::new(&id, "oip", "1", "inference-v2")
        .service_id("infer")
        .settings(&[setting, ("deadline_ms", "60000")])
        .endpoint(&url)
        .connect(Connectors::new().with(inferlink_oip::factory()))
        .await
}

/// Round trips for every datatype the server's doubling models take over `wire`.
fn spec(kind: ServerKind, wire: WireFormat) -> ConformanceSpec {
    let mut spec = ConformanceSpec::new();
    match kind {
        ServerKind::KServe | ServerKind::MlServer => {
            spec = live::with_round_trips(spec, live::doubler_round_trips(kind, wire));
        }
        ServerKind::Pythie => {
            unreachable!("pythie-serving does not speak the Open Inference Protocol")
        }
        ServerKind::Triton => {
            let fp32 = live::doubled("doubler", "INPUT_1", DataType::Fp32, &[2, 3]);
            spec = spec
                .bad_input(fp32.wrong_shape())
                .bad_input(fp32.wrong_datatype())
                .round_trip(fp32);
            let dtypes = kind.model("dtypes").expect("dtypes");
            assert_eq!(dtypes.names, TensorNames::PerDatatype);
            for dt in dtypes.datatypes(wire) {
                let datatype: DataType = dt.parse().unwrap();
                spec =
                    spec.round_trip(live::doubled("dtypes", &format!("IN_{dt}"), datatype, &[3]));
            }
        }
        other => panic!("{other} does not speak the Open Inference Protocol"),
    }
    if wire != WireFormat::Grpc {
        spec = spec.invoke(invoke_case(kind));
    }
    spec
}

/// A pre-encoded JSON request to the FP32 doubler, through `invoke`.
fn invoke_case(kind: ServerKind) -> InvokeCase {
    let input = match kind {
        ServerKind::Triton => {
            r#"{"name":"INPUT_1","shape":[1,2],"datatype":"FP32","data":[1.5,2.5]}"#
        }
        _ => r#"{"name":"input-0","shape":[2],"datatype":"FP32","data":[1.5,2.5]}"#,
    };
    let body = format!(r#"{{"inputs":[{input}]}}"#);
    InvokeCase::new("doubler", RawRequest::json(Bytes::from(body)), |response| {
        let text = std::str::from_utf8(&response.body).map_err(|e| e.to_string())?;
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let data = &json["outputs"][0]["data"];
        if *data == serde_json::json!([3.0, 5.0]) {
            Ok(())
        } else {
            Err(format!("unexpected answer: {text}"))
        }
    })
}

/// Every server and wire the conformance suite runs on.
const CONFORMANCE_CASES: [(ServerKind, WireFormat); 8] = [
    (ServerKind::KServe, WireFormat::RestJson),
    (ServerKind::KServe, WireFormat::RestBinary),
    (ServerKind::KServe, WireFormat::Grpc),
    (ServerKind::MlServer, WireFormat::RestJson),
    (ServerKind::MlServer, WireFormat::Grpc),
    (ServerKind::Triton, WireFormat::RestJson),
    (ServerKind::Triton, WireFormat::RestBinary),
    (ServerKind::Triton, WireFormat::Grpc),
];

/// The conformance suite on every case of [`CONFORMANCE_CASES`]; at least
/// eight checks pass in each, and a failure names its server and wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_every_server_and_wire() {
    for (kind, wire) in CONFORMANCE_CASES {
        let Some(server) = live::shared_server(kind).await else {
            continue;
        };
        let connector = connector(server, wire).await;
        let report = run_connector_conformance(connector.as_ref(), &spec(kind, wire)).await;
        // PyTriton guards the repository API with a per-run token, so model
        // listing over REST is refused (403 → PermissionDenied) by configuration.
        let allowed: &[(&str, &str)] = if kind == ServerKind::Triton && wire != WireFormat::Grpc {
            &[("models", "PermissionDenied")]
        } else {
            &[]
        };
        live::assert_conformance(&format!("{kind} over {wire:?}"), &report, allowed, 8);
    }
}

/// MLServer has no binary tensor data extension: a binary request is refused
/// (a bare `500 Internal Server Error`) with a typed, final error, not a hang
/// or a protocol error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlserver_refuses_binary_requests_cleanly() {
    let Some(server) = live::shared_server(ServerKind::MlServer).await else {
        return;
    };
    let connector = connector(server, WireFormat::RestBinary).await;
    let x = Tensor::new("input-0", vec![2], vec![1.0f32, 2.0]).unwrap();
    let refused = connector
        .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x))
        .await;
    let kinds = [ErrorKind::InvalidInput, ErrorKind::ModelError];
    let e = live::expect_final_error(refused, &kinds, "");
    assert_eq!(e.model(), Some("doubler"));
}

/// 1M FP32 through Triton's identity model over binary REST and gRPC: the
/// answer is raw bytes sliced from the response, equal to what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tensors_round_trip_through_triton() {
    let Some(server) = live::shared_server(ServerKind::Triton).await else {
        return;
    };
    let n = 1_000_000;
    let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    for wire in [WireFormat::RestBinary, WireFormat::Grpc] {
        let connector = connector(server, wire).await;
        let x = Tensor::new("INPUT", vec![n], values.clone()).unwrap();
        let r = connector
            .infer(
                &ModelRef::new("identity"),
                InferRequest::new().with_input(x),
            )
            .await
            .unwrap();
        let out = r.require_output("OUTPUT").unwrap();
        assert!(out.is_raw(), "{wire:?}");
        assert_eq!(out.shape(), &[n]);
        assert_eq!(out.to_vec::<f32>().unwrap(), values, "{wire:?}");
    }
}

/// What the connector reads from each server beyond the suite: server
/// metadata, and KServe's `versions: null` model metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_metadata_and_nulls() {
    for (kind, name) in [
        (ServerKind::KServe, "kserve"),
        (ServerKind::MlServer, "mlserver"),
        (ServerKind::Triton, "triton"),
    ] {
        let Some(server) = live::shared_server(kind).await else {
            continue;
        };
        for url in live::rest_and_grpc_urls(server) {
            let client =
                inferlink_oip::OipClient::new(inferlink_oip::OipConfig::new(url.clone())).unwrap();
            let meta = client.server_metadata().await.unwrap();
            assert_eq!(meta.name, name, "{url}");
            assert!(!meta.version.is_empty(), "{url}");
            let md = client
                .model_metadata(&ModelRef::new("doubler"))
                .await
                .unwrap();
            assert_eq!(md.name, "doubler", "{url}");
        }
    }
}

/// A `ModelInfer` whose raw contents (16 bytes) do not fill the declared
/// shape (3×3 FP32 = 36 bytes), sent as it is through the connector's own
/// gRPC transport (the tensor model refuses to build such a request).
async fn short_raw_contents(server: &RunningServer) -> inferlink::Error {
    let mut config = inferlink_oip::OipConfig::new(format!("grpc://{}", server.grpc_addr()));
    config.protocol = Some(inferlink_oip::Protocol::Grpc);
    let client = inferlink_oip::OipClient::new(config).unwrap();
    let request = inferlink_oip::proto::ModelInferRequest {
        model_name: "doubler".to_owned(),
        inputs: vec![
            inferlink_oip::proto::model_infer_request::InferInputTensor {
                name: "input-0".to_owned(),
                datatype: "FP32".to_owned(),
                shape: vec![3, 3],
                ..Default::default()
            },
        ],
        raw_input_contents: vec![Bytes::from(vec![0u8; 16])],
        ..Default::default()
    };
    client
        .grpc()
        .expect("a gRPC client")
        .unary::<_, inferlink_oip::proto::ModelInferResponse>(
            inferlink_oip::grpc::paths::MODEL_INFER,
            request,
            inferlink::transport::Idempotency::Unsafe,
            Some(&ModelRef::new("doubler")),
        )
        .await
        .expect_err("contents shorter than the shape")
}

/// [`short_raw_contents`] against the shared `kind` server: a final error of
/// `expected` kind carrying gRPC status 13 (`INTERNAL`); `None` when skipped.
async fn byte_size_mismatch(kind: ServerKind, expected: ErrorKind) -> Option<inferlink::Error> {
    let server = live::shared_server(kind).await?;
    let e = short_raw_contents(server).await;
    assert_eq!(e.kind(), expected, "{kind}: {e}");
    assert_eq!(e.context("grpc_status"), Some("13"), "{kind}: {e}");
    assert!(!e.is_retryable(), "{kind}: {e}");
    Some(e)
}

/// real-servers.md §3a: MLServer answers raw contents that do not fit the
/// shape with `INTERNAL "unpack requires a buffer of 36 bytes"`, which says
/// the request was wrong: `InvalidInput`, never retried, the words kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlserver_grpc_byte_size_mismatch_is_invalid_input() {
    let Some(e) = byte_size_mismatch(ServerKind::MlServer, ErrorKind::InvalidInput).await else {
        return;
    };
    assert!(
        e.vendor_message()
            .is_some_and(|m| m.contains("unpack requires a buffer of 36 bytes")),
        "{e}"
    );
    assert_eq!(e.model(), Some("doubler"));
}

/// real-servers.md §1: KServe answers the same request with a generic
/// `INTERNAL "Internal server error"`: nothing says whose fault it is, so it
/// stays the model's (`ModelError`), not retried, the server's words kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_grpc_byte_size_mismatch_is_a_generic_internal_error() {
    let Some(e) = byte_size_mismatch(ServerKind::KServe, ErrorKind::ModelError).await else {
        return;
    };
    assert_eq!(e.vendor_message(), Some("Internal server error"), "{e}");
}
