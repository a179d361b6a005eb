//! `inferlink-triton` against the real Triton of the harness (PyTriton,
//! `scripts/servers`): the connector conformance suite over REST and gRPC,
//! BYTES, streaming (decoupled model over gRPC `ModelStreamInfer` and
//! `generate_stream`), `generate`, a stateful sequence, repository
//! index/load/unload, statistics, model configuration, classification,
//! binary-above-threshold both ways, request compression, and every Triton
//! quirk of real-servers.md §2 that a client sees.
//!
//! Connectors come from records through `Connectors::connect`. Without the
//! server's venv the tests print `skipped: …`; under
//! `INFERLINK_REQUIRE_LIVE=1` (`scripts/test`) they fail.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use inferlink::kit::ConnectorConfig;
use inferlink::tensor::TensorData;
use inferlink::{Capabilities, ConnectorInfo};
use inferlink::{
    Connectors, DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest, Tensor,
};
use inferlink_testkit::connector::{
    ConformanceSpec, InvokeCase, RoundTrip, StreamInferCase, Transform, run_connector_conformance,
};
use inferlink_testkit::live::{self, TestRecord, expect_error, expect_final_error};
use inferlink_testkit::servers::{self, RunningServer, ServerKind, WireFormat};
use inferlink_triton::{GenerateRequest, Sequence, TritonClient, TritonConfig, classification};

/// The shared server (started on first use, off the async runtime).
async fn server() -> Option<&'static RunningServer> {
    live::shared_server(ServerKind::Triton).await
}

/// The per-run token PyTriton guards its restricted APIs with (written by
/// testkit/servers/triton/server.py next to the log).
fn token(server: &RunningServer) -> String {
    let path = server.log_path().parent().unwrap().join("access_token");
    let t = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!t.trim().is_empty(), "PyTriton wrote an empty token");
    t.trim().to_owned()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    Rest,
    Grpc,
}

/// A connector from a `product: triton` record; `settings` are extra
/// service configuration keys; the token (if any) comes from credentials.
async fn connect(
    server: &RunningServer,
    wire: Wire,
    settings: &[(&str, &str)],
    with_token: bool,
) -> Arc<dyn InferenceConnector> {
    let mut record = TestRecord::new("live-triton", "triton", "2.51.0", "triton")
        .service_id("infer")
        .auth_required(with_token)
        .setting("deadline_ms", "60000")
        .settings(settings)
        .endpoint(&url_for(server, wire));
    if with_token {
        record = record.credential("token", None, &[("access_token", &token(server))]);
    }
    let connectors = Connectors::new()
        .with(inferlink_oip::factory())
        .with(inferlink_triton::factory());
    record.connect(connectors).await
}

/// The server's URL for `wire` (`grpc://…` for gRPC).
fn url_for(server: &RunningServer, wire: Wire) -> String {
    match wire {
        Wire::Rest => server.http_url(),
        Wire::Grpc => format!("grpc://{}", server.grpc_addr()),
    }
}

/// The Triton client under a connector built by [`connect`].
fn client(server: &RunningServer, wire: Wire, with_token: bool) -> TritonClient {
    let mut c = TritonConfig::new(url_for(server, wire));
    if with_token {
        c.access_token = Some(inferlink::Secret::new(token(server)));
    }
    TritonClient::new(c).unwrap()
}

fn conformance_spec(server: &RunningServer, wire: WireFormat) -> ConformanceSpec {
    let fp32 = live::doubled("doubler", "INPUT_1", DataType::Fp32, &[2, 3]);
    let mut spec = ConformanceSpec::new()
        .bad_input(fp32.wrong_shape())
        .bad_input(fp32.wrong_datatype())
        .round_trip(fp32)
        .round_trip(
            RoundTrip::sample(
                "text",
                "text_input",
                DataType::Bytes,
                vec![3],
                Transform::Double,
            )
            .output("text_output"),
        )
        .secret(token(server))
        // The decoupled `tokens` model sends one response per word, over
        // gRPC `ModelStreamInfer` and REST `generate_stream` alike.
        .stream_infer(StreamInferCase::new(
            "tokens",
            InferRequest::from(
                Tensor::from_strings("text_input", vec![1], vec!["a bb ccc"]).unwrap(),
            ),
            |responses| {
                let words: Vec<String> = responses
                    .iter()
                    .map(|r| {
                        r.require_output("text_output")
                            .and_then(|t| t.to_strings())
                            .map(|w| w.concat())
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<_, _>>()?;
                if words == ["a", "bb", "ccc"] {
                    Ok(())
                } else {
                    Err(format!("streamed words {words:?}, expected [a, bb, ccc]"))
                }
            },
        ));
    let dtypes = ServerKind::Triton.model("dtypes").unwrap();
    for dt in dtypes.datatypes(wire) {
        spec = spec.round_trip(RoundTrip::sample(
            "dtypes",
            &format!("IN_{dt}"),
            dt.parse().unwrap(),
            vec![3],
            Transform::Double,
        ));
    }
    if wire != WireFormat::Grpc {
        let body =
            r#"{"inputs":[{"name":"INPUT_1","shape":[1,2],"datatype":"FP32","data":[1.5,2.5]}]}"#;
        spec = spec.invoke(InvokeCase::new(
            "doubler",
            RawRequest::json(Bytes::from(body)),
            |response| {
                let json: serde_json::Value =
                    serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
                if json["outputs"][0]["data"] == serde_json::json!([3.0, 5.0]) {
                    Ok(())
                } else {
                    Err(format!("unexpected answer {json}"))
                }
            },
        ));
    }
    spec
}

/// Extra service configuration keys of a record.
type Settings = &'static [(&'static str, &'static str)];

/// What a conformance case's connector must say about itself.
type SelfCheck = fn(&ConnectorInfo, &Capabilities) -> bool;

/// The conformance cases: a name, the record's wire and extra settings, the
/// wire format the spec's datatypes are chosen for, and a self check.
const CONFORMANCE_CASES: [(&str, Wire, Settings, WireFormat, SelfCheck); 6] = [
    // FP16 goes binary by itself; everything small goes JSON.
    (
        "rest, default binary threshold",
        Wire::Rest,
        &[],
        WireFormat::RestBinary,
        |info, caps| info.vendor == "triton" && caps.stream_infer && caps.binary_tensors,
    ),
    (
        "rest, binary always, gzip requests",
        Wire::Rest,
        &[
            ("binary_threshold_bytes", "0"),
            ("request_compression", "gzip"),
        ],
        WireFormat::RestBinary,
        |_, _| true,
    ),
    (
        "rest, json, deflate requests",
        Wire::Rest,
        &[
            ("tensor_encoding", "json"),
            ("request_compression", "deflate"),
        ],
        WireFormat::RestJson,
        |_, caps| !caps.binary_tensors,
    ),
    ("grpc", Wire::Grpc, &[], WireFormat::Grpc, |info, caps| {
        info.protocol.ends_with("grpc") && !caps.invoke
    }),
    // `request_compression` applies to gRPC too (`grpc-encoding`): Triton
    // takes gzip and deflate messages; the whole suite passes compressed.
    (
        "grpc, gzip",
        Wire::Grpc,
        &[("request_compression", "gzip")],
        WireFormat::Grpc,
        |_, _| true,
    ),
    (
        "grpc, deflate",
        Wire::Grpc,
        &[("request_compression", "deflate")],
        WireFormat::Grpc,
        |_, _| true,
    ),
];

/// The whole conformance suite passes on every wire and compression of
/// [`CONFORMANCE_CASES`]; a failure names its case.
#[tokio::test]
async fn conformance_on_every_wire() {
    let Some(server) = server().await else { return };
    for (name, wire, settings, format, self_check) in CONFORMANCE_CASES {
        let c = connect(server, wire, settings, true).await;
        let (info, caps) = (c.info(), inferlink::connector::capabilities_of(&*c));
        assert!(self_check(info, &caps), "{name}: {info:?} {caps:?}");
        let report = run_connector_conformance(c.as_ref(), &conformance_spec(server, format)).await;
        assert!(report.passed(), "{name}: conformance failed:\n{report}");
    }
}

#[tokio::test]
async fn large_tensors_travel_binary_both_ways_small_ones_json() {
    let Some(server) = server().await else { return };
    for settings in [
        &[][..],
        &[("request_compression", "gzip")][..],
        &[("request_compression", "deflate")][..],
    ] {
        let c = connect(server, Wire::Rest, settings, false).await;
        let big: Vec<f32> = (0..5000).map(|i| i as f32 * 0.5).collect();
        let reply = c
            .infer(
                &ModelRef::new("identity"),
                Tensor::from_vec("INPUT", big.clone()).into(),
            )
            .await
            .unwrap();
        let out = reply.require_output("OUTPUT").unwrap();
        assert!(
            matches!(out.data(), TensorData::Raw(_)),
            "large output not binary ({settings:?})"
        );
        assert_eq!(out.to_vec::<f32>().unwrap(), big);
        let reply = c
            .infer(
                &ModelRef::new("identity"),
                Tensor::from_vec("INPUT", vec![1.0f32, 2.0]).into(),
            )
            .await
            .unwrap();
        let out = reply.require_output("OUTPUT").unwrap();
        assert!(
            !matches!(out.data(), TensorData::Raw(_)),
            "small output not JSON"
        );
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    }
    // A large BYTES tensor goes binary too (Triton's BYTES framing).
    let c = connect(
        server,
        Wire::Rest,
        &[("binary_threshold_bytes", "64")],
        false,
    )
    .await;
    let words: Vec<String> = (0..50).map(|i| format!("wörd-{i}")).collect();
    let reply = c
        .infer(
            &ModelRef::new("text"),
            Tensor::from_strings("text_input", vec![50], words.clone())
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let out = reply.require_output("text_output").unwrap();
    assert!(matches!(out.data(), TensorData::Raw(_)));
    let expect: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    assert_eq!(out.to_strings().unwrap(), expect);
}

async fn collect(
    stream: inferlink::InferStream,
) -> Vec<inferlink::Result<inferlink::InferResponse>> {
    tokio::time::timeout(Duration::from_secs(60), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ended")
}

fn words(responses: &[inferlink::Result<inferlink::InferResponse>]) -> Vec<String> {
    responses
        .iter()
        .map(|r| {
            let r = r.as_ref().expect("stream item");
            r.require_output("text_output")
                .unwrap()
                .to_strings()
                .unwrap()
                .join("")
        })
        .collect()
}

#[tokio::test]
async fn decoupled_model_streams_over_grpc_and_generate_stream() {
    let Some(server) = server().await else { return };
    for wire in [Wire::Grpc, Wire::Rest] {
        let c = connect(server, wire, &[], false).await;
        let request = || {
            InferRequest::from(
                Tensor::from_strings("text_input", vec![1], vec!["a bb ccc"]).unwrap(),
            )
        };
        let items = collect(
            c.infer_stream(&ModelRef::new("tokens"), request())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(words(&items), vec!["a", "bb", "ccc"], "{wire:?}");
        let index: Vec<i64> = items
            .iter()
            .map(|r| {
                r.as_ref()
                    .unwrap()
                    .require_output("INDEX")
                    .unwrap()
                    .to_f64_lossy()
                    .unwrap()[0] as i64
            })
            .collect();
        assert_eq!(index, vec![0, 1, 2]);
        // No words: a decoupled model may send no response at all.
        let empty =
            InferRequest::from(Tensor::from_strings("text_input", vec![1], vec![""]).unwrap());
        let items = collect(
            c.infer_stream(&ModelRef::new("tokens"), empty)
                .await
                .unwrap(),
        )
        .await;
        assert!(items.is_empty(), "{wire:?}: {items:?}");
        // A model that is not decoupled streams its one response.
        let items = collect(
            c.infer_stream(
                &ModelRef::new("text"),
                Tensor::from_strings("text_input", vec![1], vec!["one"])
                    .unwrap()
                    .into(),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(words(&items), vec!["ONE"]);
        // An unknown model fails the call itself.
        let err = c
            .infer_stream(&ModelRef::new("nope"), request())
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{wire:?}: {err}");
        assert_eq!(err.vendor(), Some("triton"));
    }
    // Quirk: plain HTTP infer refuses decoupled models.
    let c = connect(server, Wire::Rest, &[], false).await;
    let a = Tensor::from_strings("text_input", vec![1], vec!["a"]).unwrap();
    let refused = c.infer(&ModelRef::new("tokens"), a.into()).await;
    expect_final_error(refused, &[ErrorKind::Unsupported], "decoupled");
}

#[tokio::test]
async fn generate_and_generate_stream() {
    let Some(server) = server().await else { return };
    let rest = client(server, Wire::Rest, false);
    let one = rest
        .generate(&ModelRef::new("text"), GenerateRequest::text("hello world"))
        .await
        .unwrap();
    assert_eq!(one.text_output(), Some("HELLO WORLD"));
    assert_eq!(one.model_name, "text");
    let events: Vec<_> = rest
        .generate_stream(&ModelRef::new("tokens"), GenerateRequest::text("x yy"))
        .await
        .unwrap()
        .collect()
        .await;
    let texts: Vec<String> = events
        .iter()
        .map(|e| e.as_ref().unwrap().text_output().unwrap().to_owned())
        .collect();
    assert_eq!(texts, vec!["x", "yy"]);
    expect_error(
        rest.generate(&ModelRef::new("nope"), GenerateRequest::text("x"))
            .await,
        ErrorKind::NotFound,
        "",
    );
    // The model raising inside generation.
    expect_error(
        rest.generate(&ModelRef::new("text"), GenerateRequest::text("!raise"))
            .await,
        ErrorKind::ModelError,
        "",
    );
    // HTTP only.
    let grpc = client(server, Wire::Grpc, false);
    expect_error(
        grpc.generate(&ModelRef::new("text"), GenerateRequest::text("x"))
            .await,
        ErrorKind::Unsupported,
        "",
    );
}

#[tokio::test]
async fn stateful_sequences_keep_their_own_state() {
    let Some(server) = server().await else { return };
    for (wire, base) in [(Wire::Rest, 1000u64), (Wire::Grpc, 2000u64)] {
        let c = connect(server, wire, &[], false).await;
        let m = ModelRef::new("accumulate");
        let value = |v: i64| InferRequest::from(Tensor::from_vec("VALUE", vec![v]));
        let sum = |r: inferlink::InferResponse| {
            r.require_output("SUM").unwrap().to_vec::<i64>().unwrap()[0]
        };
        let a = base + 1;
        let b = base + 2;
        // (step, value, running sum expected); the last step is a new
        // sequence under an old id, which starts from zero.
        let steps = [
            (Sequence::new(a).start(), 5, 5),
            (Sequence::new(b).start(), 100, 100),
            (Sequence::new(a), 7, 12),
            (Sequence::new(b).end(), 1, 101),
            (Sequence::new(a).end(), 1, 13),
            (Sequence::new(a).start().end(), 2, 2),
        ];
        for (i, (step, v, expected)) in steps.into_iter().enumerate() {
            let r = c.infer(&m, step.apply(value(v))).await.unwrap();
            assert_eq!(sum(r), expected, "{wire:?}: step {i} of the sequences");
        }
        // Quirk: a stateful model refuses a request outside any sequence.
        let err = c.infer(&m, value(3)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{wire:?}: {err}");
        assert!(err.to_string().contains("correlation ID"), "{err}");
    }
}

#[tokio::test]
async fn repository_index_load_unload() {
    // A server of its own: while a model is unloaded Triton's readiness and
    // index change, which the other tests on the shared server must not see.
    let Some(own) = tokio::task::spawn_blocking(|| servers::start_or_skip(ServerKind::Triton))
        .await
        .unwrap()
    else {
        return;
    };
    let server = &own;
    for wire in [Wire::Rest, Wire::Grpc] {
        // Quirk: PyTriton restricts the repository API to its token.
        let anonymous = client(server, wire, false);
        let err = anonymous.repository_index(false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{wire:?}: {err}");
        let err = anonymous
            .load_model("repo_identity", None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{wire:?}: {err}");

        let c = client(server, wire, true);
        let index = c.repository_index(false).await.unwrap();
        assert!(index.iter().any(|m| m.name == "repo_identity"), "{index:?}");
        // Quirk: PyTriton's own models are not in its repository index.
        assert!(!index.iter().any(|m| m.name == "doubler"), "{index:?}");

        c.load_model("repo_identity", None).await.unwrap();
        let m = ModelRef::new("repo_identity");
        assert!(c.model_ready(&m).await.unwrap());
        let ready = c.repository_index(true).await.unwrap();
        assert!(
            ready
                .iter()
                .any(|e| e.name == "repo_identity" && e.state.as_deref() == Some("READY")),
            "{ready:?}"
        );
        let reply = c
            .infer(&m, Tensor::from_vec("INPUT", vec![1.5f32, -2.0]).into())
            .await
            .unwrap();
        assert_eq!(
            reply
                .require_output("OUTPUT")
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![1.5, -2.0]
        );

        c.unload_model("repo_identity", false).await.unwrap();
        let mut unloaded = false;
        for _ in 0..100 {
            if !c.model_ready(&m).await.unwrap_or(false) {
                unloaded = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(unloaded, "{wire:?}: repo_identity still ready after unload");
        // Loading a model the repository does not have.
        let err = c.load_model("not-in-repo", None).await.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::ModelError
            ),
            "{err}"
        );
    }
    tokio::task::spawn_blocking(move || own.stop())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn models_merge_index_and_statistics() {
    let Some(server) = server().await else { return };
    for wire in [Wire::Rest, Wire::Grpc] {
        let c = connect(server, wire, &[], true).await;
        let models = c.models().await.unwrap();
        for name in [
            "doubler",
            "identity",
            "dtypes",
            "text",
            "tokens",
            "accumulate",
            "repo_identity",
        ] {
            assert!(
                models.iter().any(|m| m.name == name),
                "{wire:?}: {name} not in {models:?}"
            );
        }
        let doubler = models.iter().find(|m| m.name == "doubler").unwrap();
        assert_eq!(doubler.state.as_deref(), Some("READY"));
        let anonymous = connect(server, wire, &[], false).await;
        assert_eq!(
            anonymous.models().await.unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
    }
}

#[tokio::test]
async fn statistics_count_inferences() {
    let Some(server) = server().await else { return };
    for wire in [Wire::Rest, Wire::Grpc] {
        let c = client(server, wire, true);
        let m = ModelRef::new("identity");
        let before = c.model_statistics(Some(&m)).await.unwrap();
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].name, "identity");
        c.infer(&m, Tensor::from_vec("INPUT", vec![1.0f32]).into())
            .await
            .unwrap();
        // Counted when Triton releases the request, which can trail the
        // answer: read again for up to 5 s (50 reads).
        let mut after = c.model_statistics(Some(&m)).await.unwrap();
        for _ in 0..50 {
            if after[0].inference_stats.success.count > before[0].inference_stats.success.count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = c.model_statistics(Some(&m)).await.unwrap();
        }
        assert!(after[0].inference_count > before[0].inference_count);
        assert!(after[0].inference_stats.success.count > before[0].inference_stats.success.count);
        assert!(after[0].last_inference > 0);
        let all = c.model_statistics(None).await.unwrap();
        assert!(all.iter().any(|s| s.name == "doubler"));
        expect_error(
            client(server, wire, false).model_statistics(None).await,
            ErrorKind::PermissionDenied,
            "",
        );
        let err = c
            .model_statistics(Some(&ModelRef::new("nope")))
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput),
            "{err}"
        );
    }
}

#[tokio::test]
async fn model_configuration_over_both_protocols() {
    let Some(server) = server().await else { return };
    let rest = client(server, Wire::Rest, false);
    let grpc = client(server, Wire::Grpc, false);
    for c in [&rest, &grpc] {
        let d = c.model_config(&ModelRef::new("doubler")).await.unwrap();
        assert_eq!(d.name, "doubler");
        assert_eq!(d.backend, "python");
        assert_eq!(d.max_batch_size, 8);
        assert_eq!(d.inputs[0].name, "INPUT_1");
        assert_eq!(d.inputs[0].data_type, "TYPE_FP32");
        assert_eq!(d.inputs[0].dims, vec![-1]);
        assert_eq!(d.outputs[0].name, "OUTPUT_1");
        assert!(!d.decoupled);
        assert_eq!(d.stateful, Some(false));
        let t = c.model_config(&ModelRef::new("tokens")).await.unwrap();
        assert!(t.decoupled);
        assert_eq!(t.inputs[0].data_type, "TYPE_STRING");
        let a = c.model_config(&ModelRef::new("accumulate")).await.unwrap();
        assert_eq!(a.stateful, Some(true));
        let err = c.model_config(&ModelRef::new("nope")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    let full = rest
        .model_config(&ModelRef::new("doubler"))
        .await
        .unwrap()
        .json
        .unwrap();
    assert!(full["dynamic_batching"].is_object(), "{full}");
}

#[tokio::test]
async fn classification_returns_top_k() {
    let Some(server) = server().await else { return };
    for wire in [Wire::Rest, Wire::Grpc] {
        let c = connect(server, wire, &[], false).await;
        let input = Tensor::new("INPUT_1", vec![1, 4], vec![1.1f32, 3.3, 0.5, 2.4]).unwrap();
        let reply = c
            .infer(
                &ModelRef::new("doubler"),
                classification(input.into(), "OUTPUT_1", 2),
            )
            .await
            .unwrap();
        let out = reply.require_output("OUTPUT_1").unwrap();
        assert_eq!(out.datatype(), DataType::Bytes);
        assert_eq!(out.shape(), &[1, 2]);
        let classes = out.to_strings().unwrap();
        assert!(
            classes[0].ends_with(":1") && classes[0].starts_with("6.6"),
            "{classes:?}"
        );
        assert!(
            classes[1].ends_with(":3") && classes[1].starts_with("4.8"),
            "{classes:?}"
        );
    }
}

#[tokio::test]
async fn triton_error_answers_map_to_kinds() {
    let Some(server) = server().await else { return };
    let c = connect(server, Wire::Rest, &[], false).await;
    let doubler = ModelRef::new("doubler");
    // Batch 9 > max_batch_size 8: 400.
    let nine = Tensor::new("INPUT_1", vec![9, 1], vec![1.0f32; 9]).unwrap();
    let err = c.infer(&doubler, nine.into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // Wrong input name: 400.
    let wrong = Tensor::new("WRONG", vec![1, 1], vec![1.0f32]).unwrap();
    let err = c.infer(&doubler, wrong.into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // Malformed JSON: Triton says 500, it is the request's fault.
    let err = c
        .invoke(
            &doubler,
            RawRequest::json(Bytes::from_static(b"{\"inputs\": [")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // An Inference-Header-Content-Length beyond the body: 400.
    let mut raw = RawRequest::json(Bytes::from_static(b"{}"));
    raw.headers
        .push(("Inference-Header-Content-Length".into(), "9999".into()));
    let err = c.invoke(&doubler, raw).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // The model's own exception: 500 → ModelError, not retried.
    let raise = Tensor::from_strings("text_input", vec![1], vec!["!raise"]).unwrap();
    let raised = c.infer(&ModelRef::new("text"), raise.into()).await;
    expect_final_error(raised, &[ErrorKind::ModelError], "");
    // Unknown model readiness: Triton says 400, the connector says "not ready".
    assert!(!c.model_ready(&ModelRef::new("nope")).await.unwrap());
    // Health: 200 with empty bodies.
    let h = c.health().await.unwrap();
    assert!(h.live && h.ready);
}

#[tokio::test]
async fn an_error_inside_a_stream_ends_it_after_the_responses_before() {
    let Some(server) = server().await else { return };
    for wire in [Wire::Grpc, Wire::Rest] {
        let c = connect(server, wire, &[], false).await;
        let request = InferRequest::from(
            Tensor::from_strings("text_input", vec![1], vec!["one two !raise four"]).unwrap(),
        );
        let items = collect(
            c.infer_stream(&ModelRef::new("tokens"), request)
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(items.len(), 3, "{wire:?}: {items:?}");
        assert_eq!(words(&items[..2]), vec!["one", "two"]);
        let err = items[2].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ModelError, "{wire:?}: {err}");
        assert!(err.to_string().contains("asked to raise"), "{err}");
        assert_eq!(err.vendor(), Some("triton"));
        assert_eq!(err.model(), Some("tokens"));
        // An error before the first response is the call's error.
        let first = InferRequest::from(
            Tensor::from_strings("text_input", vec![1], vec!["!raise"]).unwrap(),
        );
        let err = c
            .infer_stream(&ModelRef::new("tokens"), first)
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ModelError, "{wire:?}: {err}");
    }
}

#[tokio::test]
async fn server_metadata_and_versioned_calls() {
    let Some(server) = server().await else { return };
    for wire in [Wire::Rest, Wire::Grpc] {
        let c = client(server, wire, false);
        let meta = c.server_metadata().await.unwrap();
        assert_eq!(meta.name, "triton");
        for ext in [
            "classification",
            "sequence",
            "model_repository",
            "model_configuration",
            "binary_tensor_data",
            "statistics",
        ] {
            assert!(
                meta.extensions.iter().any(|e| e == ext),
                "{wire:?}: {ext} not in {:?}",
                meta.extensions
            );
        }
        // `/versions/1/…` and the gRPC version field.
        let v1 = ModelRef::new("doubler").with_version("1");
        let reply = c
            .infer(
                &v1,
                Tensor::new("INPUT_1", vec![1, 2], vec![1.0f32, 2.0])
                    .unwrap()
                    .into(),
            )
            .await
            .unwrap();
        assert_eq!(reply.model_version.as_deref(), Some("1"));
        assert_eq!(
            reply
                .require_output("OUTPUT_1")
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![2.0, 4.0]
        );
        let err = c
            .infer(
                &ModelRef::new("doubler").with_version("7"),
                Tensor::new("INPUT_1", vec![1, 1], vec![1.0f32])
                    .unwrap()
                    .into(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput),
            "{wire:?}: {err}"
        );
        assert_eq!(c.model_config(&v1).await.unwrap().name, "doubler");
    }
}

/// real-servers.md §2: metrics are on the metrics port; `/metrics` on the
/// HTTP port is 404. With `metrics_url` (read from configuration, over gRPC
/// too) the client reads and parses them; without it the call is
/// `Unsupported` and names the key.
#[tokio::test]
async fn metrics_come_from_the_metrics_port() {
    let Some(server) = server().await else { return };
    assert_eq!(server.get_status("/metrics").unwrap(), 404);

    expect_error(
        client(server, Wire::Rest, false).metrics().await,
        ErrorKind::Unsupported,
        "metrics_url",
    );

    let metrics_url = format!("http://127.0.0.1:{}", server.metrics_port());
    for wire in [Wire::Rest, Wire::Grpc] {
        let url = match wire {
            Wire::Rest => server.http_url(),
            Wire::Grpc => format!("grpc://{}", server.grpc_addr()),
        };
        let config = TritonConfig::new(url)
            .apply_values([(
                "metrics_url",
                inferlink::resolve::ConfigValue::Plain(metrics_url.clone()),
            )])
            .unwrap();
        let c = TritonClient::new(config).unwrap();
        let successes = |samples: &[inferlink_triton::MetricSample]| {
            samples
                .iter()
                .find(|s| {
                    s.name == "nv_inference_request_success" && s.label("model") == Some("identity")
                })
                .map(|s| s.value)
                .expect("a success counter for `identity`")
        };
        let before = successes(&c.metrics().await.unwrap());
        c.infer(
            &ModelRef::new("identity"),
            Tensor::from_vec("INPUT", vec![1.0f32]).into(),
        )
        .await
        .unwrap();
        // Triton counts a request when it releases it, which can be just
        // after the answer reached us: read again for up to 5 s (50 reads).
        // Other tests share the server, so "at least ours" is the check.
        let mut samples = c.metrics().await.unwrap();
        for _ in 0..50 {
            if successes(&samples) >= before + 1.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            samples = c.metrics().await.unwrap();
        }
        assert!(
            successes(&samples) >= before + 1.0,
            "{wire:?}: {before} before, {} after",
            successes(&samples)
        );
        assert!(
            samples
                .iter()
                .any(|s| s.name == "nv_inference_count" && s.label("version") == Some("1")),
            "{wire:?}"
        );
    }
}
