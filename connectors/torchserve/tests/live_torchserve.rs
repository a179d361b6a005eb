//! inferlink-torchserve against a real TorchServe 0.12 (the harness's
//! `torchserve` and `torchserve-kserve` servers: loopback, torch stub, token
//! authorization ON, keys read from the key file the server wrote).
//!
//! Connectors come from records through `Connectors::connect` (or the
//! factory's `build` where a test needs the concrete type), with the tokens
//! in the record's credentials. A server whose venv is not installed skips
//! with a visible line, or fails under `INFERLINK_REQUIRE_LIVE=1`.

use inferlink::prelude::*;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use inferlink::{
    Connectors, Consumer, DataType, ErrorKind, InferRequest, InferenceConnector, MemoryStore,
    ModelRef, RawRequest, Registry, Resolution, Selector, Tensor, format,
};
use inferlink_testkit::connector::{
    AuthCheck, BadInput, CheckStatus, ConformanceReport, ConformanceSpec, Expect, InvokeCase,
    Probe, RoundTrip, Transform, run_connector_conformance,
};
use inferlink_testkit::live::{self, TestRecord};
use inferlink_testkit::servers::{self, RunningServer, ServerKind, WireFormat};
use inferlink_testkit::torchserve::{KeyFile, read_key_file};
use inferlink_torchserve::{RegisterOptions, ScaleOptions, TorchServeConnector};

async fn server(kind: ServerKind) -> Option<&'static RunningServer> {
    live::shared_server(kind).await
}

/// Sends `request()` until it is no longer refused as `Unauthenticated`
/// (the connector picked up a rotated key), every 20 ms for at most 10 s;
/// any other error fails the test.
async fn until_the_new_key_is_used(
    connector: &TorchServeConnector,
    model: &ModelRef,
    request: impl Fn() -> InferRequest,
) -> inferlink::InferResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match connector.infer(model, request()).await {
            Ok(out) => return out,
            Err(e) if e.kind() == ErrorKind::Unauthenticated => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the new key was never used"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn keys(server: &RunningServer) -> KeyFile {
    read_key_file(server.field("key_file").expect("key_file field")).expect("key file")
}

/// Record settings: which URL, protocol and inference API, and the keys.
struct Record<'a> {
    server: &'a RunningServer,
    grpc: bool,
    api: &'a str,
    inference_key: String,
    management_key: String,
}

impl<'a> Record<'a> {
    fn new(server: &'a RunningServer) -> Self {
        let k = keys(server);
        Record {
            server,
            grpc: false,
            api: "predictions",
            inference_key: k.inference,
            management_key: k.management,
        }
    }

    fn grpc(mut self) -> Self {
        self.grpc = true;
        self
    }

    fn api(mut self, api: &'a str) -> Self {
        self.api = api;
        self
    }

    fn inference_key(mut self, key: &str) -> Self {
        self.inference_key = key.to_owned();
        self
    }

    fn management_key(mut self, key: &str) -> Self {
        self.management_key = key.to_owned();
        self
    }

    fn yaml(&self) -> String {
        let url = if self.grpc {
            live::grpc_url(self.server)
        } else {
            self.server.http_url()
        };
        let management_url = self.server.field("management_url").expect("management_url");
        TestRecord::new("torchserve-live", "torchserve", "0.12.0", "torchserve")
            .service_id("infer")
            .setting("management_url", management_url)
            .setting("inference_api", self.api)
            .setting("deadline_ms", "60000")
            .credential(
                "tokens",
                Some("global"),
                &[
                    ("inference_key", &self.inference_key),
                    ("management_key", &self.management_key),
                ],
            )
            .endpoint(&url)
            .yaml()
    }

    async fn registry(&self) -> Registry {
        let registry = Registry::open(MemoryStore::new()).await.unwrap();
        registry.register_yaml(&self.yaml()).await.unwrap();
        registry
    }

    async fn resolution(&self) -> Resolution {
        self.registry()
            .await
            .resolve(&Selector::resource("torchserve"), &Consumer::anywhere())
            .unwrap()
    }

    /// Through `Connectors::connect`, as a host gets it.
    async fn connect(&self) -> Arc<dyn InferenceConnector> {
        Connectors::new()
            .with(inferlink_torchserve::factory())
            .connect(&self.resolution().await)
            .await
            .unwrap()
    }

    /// The concrete connector (management calls, keys).
    async fn build(&self) -> TorchServeConnector {
        TorchServeConnector::from_target(&self.resolution().await.target()).unwrap()
    }
}

fn doubled_json(
    expected: serde_json::Value,
) -> impl Fn(&inferlink::RawResponse) -> Result<(), String> {
    move |response| {
        let got: serde_json::Value =
            serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
        if got == expected {
            Ok(())
        } else {
            Err(format!("unexpected answer: {got}"))
        }
    }
}

/// The suite passed, and really ran the checks that matter here.
fn assert_complete(report: &ConformanceReport) {
    report.assert_passed();
    for check in [
        "infer/doubler/FP16/typed",
        "infer/doubler/BYTES/raw",
        "infer/doubler/UINT64/typed",
        "unknown_model",
        "bad_input/nan",
        "auth/bad_credentials",
        "invoke",
        "stream_invoke",
        "models",
        "model_ready",
        "secrets_in_errors",
    ] {
        assert_eq!(report.status(check), Some(&CheckStatus::Passed), "{check}");
    }
}

fn spec(server: &'static RunningServer, wire: WireFormat, grpc: bool) -> ConformanceSpec {
    let k = keys(server);
    let doubler = ServerKind::TorchServe.model("doubler").unwrap();
    let mut spec = ConformanceSpec::new();
    for dt in doubler.datatypes(wire) {
        let datatype: DataType = dt.parse().unwrap();
        spec = spec.round_trip(
            RoundTrip::sample(
                "doubler",
                "input-0",
                datatype,
                vec![2, 3],
                Transform::Double,
            )
            .output("output-0"),
        );
    }
    let nan = Tensor::from_vec("input-0", vec![1.0f32, f32::NAN]);
    spec.bad_input(BadInput::new(
        "nan",
        "doubler",
        InferRequest::new().with_input(nan),
        Expect::fails(ErrorKind::InvalidInput),
    ))
    .invoke(InvokeCase::new(
        "doubler",
        RawRequest::json("[1, 2.5, true]"),
        doubled_json(serde_json::json!([2, 5.0, false])),
    ))
    // Streamed invocations go to the streaming handler: over gRPC,
    // StreamPredictions to the plain `doubler` handler makes TorchServe's
    // worker die (INTERNAL "Worker died."), which also takes the model's
    // readiness down for the other tests on the shared server.
    .stream_invoke(InvokeCase::new(
        "streamer",
        RawRequest::json(r#"{"n": 2, "word": "c"}"#),
        |response| match std::str::from_utf8(&response.body) {
            Ok("c-0\nc-1\ndone\n") => Ok(()),
            other => Err(format!("unexpected streamed answer: {other:?}")),
        },
    ))
    .auth(
        AuthCheck::new(move || async move {
            let record = Record::new(server).inference_key("wrongkey");
            let record = if grpc { record.grpc() } else { record };
            Ok(record.connect().await)
        })
        .probe(Probe::Health)
        .secret("wrongkey"),
    )
    .secret(k.inference)
    .secret(k.management)
    .call_timeout(Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_rest() {
    let Some(server) = server(ServerKind::TorchServe).await else {
        return;
    };
    let connector = Record::new(server).connect().await;
    assert_eq!(connector.info().protocol, "torchserve-rest");
    let report = run_connector_conformance(
        connector.as_ref(),
        &spec(server, WireFormat::RestJson, false),
    )
    .await;
    assert_complete(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_grpc() {
    let Some(server) = server(ServerKind::TorchServe).await else {
        return;
    };
    let connector = Record::new(server).grpc().connect().await;
    assert_eq!(connector.info().protocol, "torchserve-grpc");
    let report =
        run_connector_conformance(connector.as_ref(), &spec(server, WireFormat::Grpc, true)).await;
    assert_complete(&report);
}

async fn collect(stream: inferlink::RawStream) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut body = stream.body;
    while let Some(chunk) = body.next().await {
        chunks.push(chunk.expect("a chunk"));
        assert!(chunks.len() < 1000, "the stream does not end");
    }
    chunks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_predictions_over_rest_and_grpc() {
    let Some(server) = server(ServerKind::TorchServe).await else {
        return;
    };
    let request = RawRequest::json(r#"{"n": 4, "word": "tok"}"#);
    let expected = "tok-0\ntok-1\ntok-2\ntok-3\ndone\n";

    let rest = Record::new(server).connect().await;
    assert!(inferlink::connector::capabilities_of(&*rest).stream_invoke);
    let stream = rest
        .invoke_stream(&ModelRef::new("streamer"), request.clone())
        .await
        .unwrap();
    assert!(
        stream.headers.iter().any(|(k, _)| k == "x-request-id"),
        "{:?}",
        stream.headers
    );
    let chunks = collect(stream).await;
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(text, expected);

    // gRPC keeps message boundaries: one message per intermediate result.
    let grpc = Record::new(server).grpc().connect().await;
    let stream = grpc
        .invoke_stream(&ModelRef::new("streamer"), request.clone())
        .await
        .unwrap();
    let chunks = collect(stream).await;
    let parts: Vec<&str> = chunks
        .iter()
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    assert_eq!(
        parts,
        ["tok-0\n", "tok-1\n", "tok-2\n", "tok-3\n", "done\n"]
    );

    // An unknown model fails the call itself, before any chunk.
    for connector in [&rest, &grpc] {
        let e = connector
            .invoke_stream(&ModelRef::new("no-such-model"), request.clone())
            .await
            .expect_err("unknown model");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_flow() {
    let Some(server) = server(ServerKind::TorchServe).await else {
        return;
    };
    let connector = Record::new(server).build().await;
    let client = &connector;
    let name = "mgmt-flow";

    // Register version 1.0 with parameters, then version 2.0 from another archive.
    let status = client
        .register_model(
            &RegisterOptions::new("doubler.mar")
                .model_name(name)
                .batch_size(2)
                .max_batch_delay_ms(20)
                .initial_workers(1)
                .synchronous(true),
        )
        .await
        .unwrap();
    assert!(status.status.contains("registered"), "{}", status.status);
    client
        .register_model(
            &RegisterOptions::new("doubler_v2.mar")
                .model_name(name)
                .initial_workers(1),
        )
        .await
        .unwrap();
    let all = client
        .describe_model(&ModelRef::new(name).with_version("all"))
        .await
        .unwrap();
    let mut versions: Vec<String> = all.iter().filter_map(|d| d.model_version.clone()).collect();
    versions.sort();
    assert_eq!(versions, ["1.0", "2.0"]);
    let v1 = all
        .iter()
        .find(|d| d.model_version.as_deref() == Some("1.0"))
        .unwrap();
    assert_eq!(v1.batch_size, Some(2));
    assert_eq!(v1.max_batch_delay, Some(20));
    assert!(v1.has_ready_worker());

    // Set the default to 2.0 and call both versions.
    client.set_default_version(name, "2.0").await.unwrap();
    let default = client.describe_model(&ModelRef::new(name)).await.unwrap();
    assert_eq!(default[0].model_version.as_deref(), Some("2.0"));
    for model in [ModelRef::new(name), ModelRef::new(name).with_version("1.0")] {
        let out = connector
            .infer(
                &model,
                InferRequest::new().with_input(Tensor::from_vec("x", vec![3i64, 4])),
            )
            .await
            .unwrap();
        assert_eq!(
            out.outputs[0].to_vec::<i64>().unwrap(),
            vec![6, 8],
            "{model}"
        );
    }
    assert!(connector.model_ready(&ModelRef::new(name)).await.unwrap());

    // Scale version 1.0 to two workers.
    client
        .scale_workers(
            &ModelRef::new(name).with_version("1.0"),
            &ScaleOptions::workers(2),
        )
        .await
        .unwrap();
    let v1 = client
        .describe_model(&ModelRef::new(name).with_version("1.0"))
        .await
        .unwrap();
    assert_eq!((v1[0].min_workers, v1[0].max_workers), (Some(2), Some(2)));
    assert_eq!(v1[0].workers.len(), 2, "{:?}", v1[0].workers);

    // Paginated listing: one model per page, every page followed.
    let first = client.list_models(1, None).await.unwrap();
    assert_eq!(first.models.len(), 1);
    assert!(first.next_page_token.is_some());
    let listed = inferlink_testkit::live::model_names(&connector).await;
    for want in ["doubler", "streamer", name] {
        assert!(listed.iter().any(|m| m == want), "{want} not in {listed:?}");
    }

    // Unregister both versions; the model is gone.
    client
        .unregister_model(&ModelRef::new(name).with_version("1.0"))
        .await
        .unwrap();
    client
        .unregister_model(&ModelRef::new(name).with_version("2.0"))
        .await
        .unwrap();
    let e = client
        .describe_model(&ModelRef::new(name))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = connector
        .model_ready(&ModelRef::new(name))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_unauthenticated_everywhere() {
    let Some(server) = server(ServerKind::TorchServe).await else {
        return;
    };
    let k = keys(server);
    let doubler = ModelRef::new("doubler");
    let input = || InferRequest::new().with_input(Tensor::from_vec("x", vec![1i64]));

    // The real TorchServe answers 400 InvalidKeyException; the connector says Unauthenticated.
    for record in [
        Record::new(server).inference_key("wrongkey"),
        Record::new(server).inference_key("wrongkey").grpc(),
    ] {
        let c = record.connect().await;
        let e = c.infer(&doubler, input()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        assert!(!e.is_retryable());
        assert!(!e.to_string().contains("wrongkey"), "{e}");
        assert_eq!(
            c.health().await.unwrap_err().kind(),
            ErrorKind::Unauthenticated
        );
    }
    // The inference key does not open the management API.
    let c = Record::new(server)
        .management_key(&k.inference)
        .build()
        .await;
    let e = c.list_models(10, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(e.context("vendor_code"), Some("InvalidKeyException"));
    // No key at all is refused too.
    let c = Record::new(server).inference_key("").connect().await;
    assert_eq!(
        c.health().await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_in_the_registry_is_used_from_the_next_request() {
    let Some(server) = server(ServerKind::TorchServe).await else {
        return;
    };
    let k = keys(server);
    // The record starts with a stale key; the operator then puts the current one in.
    let stale = Record::new(server).inference_key("stalekey");
    let registry = stale.registry().await;
    let selector = Selector::resource("torchserve");
    let mut live = registry
        .watch_resolution(selector.clone(), Consumer::anywhere())
        .unwrap();
    let first = live.next().await.unwrap().unwrap();
    let connector = TorchServeConnector::from_target(&first.target()).unwrap();
    let doubler = ModelRef::new("doubler");
    let request = || InferRequest::new().with_input(Tensor::from_vec("x", vec![5i64]));
    let e = connector.infer(&doubler, request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");

    let keys = connector.keys();
    let follower = tokio::spawn(async move { keys.follow(live.into_stream()).await });
    let fresh = Record::new(server).inference_key(&k.inference).yaml();
    let record = format::parse_records(&fresh).unwrap().remove(0);
    registry.upsert(record).await.unwrap();

    // The same connector, not rebuilt: the next request carries the new key.
    let out = until_the_new_key_is_used(&connector, &doubler, request).await;
    assert_eq!(out.outputs[0].to_vec::<i64>().unwrap(), vec![10]);
    drop(registry);
    tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("follow ends with the registry")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explanations_errors_and_the_kserve_v1_route() {
    let Some(server) = server(ServerKind::TorchServe).await else {
        return;
    };
    let connector = Record::new(server).build().await;
    let doubler = ModelRef::new("doubler");
    // /explanations reaches the model's handler (the test handler answers it like a prediction).
    let out = connector
        .explain(&doubler, RawRequest::json("[1, 2]"))
        .await
        .unwrap();
    let got: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(got, serde_json::json!([2, 4]));
    // A handler that raises: TorchServe's 503 "Prediction failed" is a model error, not retried.
    let e = connector
        .invoke(&doubler, RawRequest::json("not json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(e.context("attempts"), Some("1"));
    // A version that does not exist.
    let e = connector
        .invoke(
            &doubler.clone().with_version("9.9"),
            RawRequest::json("[1]"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // With the default envelope, /v1/models/NAME:predict hands the whole body to the
    // handler, which answers without "predictions": the connector says so.
    let v1 = Record::new(server).api("kserve-v1").connect().await;
    let e = v1
        .infer(
            &doubler,
            InferRequest::new().with_input(Tensor::from_vec("x", vec![1i64, 2])),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.message().contains("predictions"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_v2_mode_and_a_disabled_model_api() {
    let Some(server) = server(ServerKind::TorchServeKServe).await else {
        return;
    };
    let connector = Record::new(server).api("kserve-v2").build().await;
    assert_eq!(connector.info().protocol, "torchserve-rest+kserve-v2");
    assert!(connector.health().await.unwrap().is_serving());
    let input = Tensor::new("input-0", vec![2, 2], vec![1i64, -2, 3, 4]).unwrap();
    let out = connector
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(input),
        )
        .await
        .unwrap();
    assert_eq!(out.model_name, "doubler");
    assert_eq!(out.model_version.as_deref(), Some("1.0"));
    let t = out.require_output("input-0").unwrap();
    // TorchServe's envelope flattens the output and lets numpy pick the datatype.
    assert_eq!((t.datatype(), t.shape()), (DataType::Int64, &[4usize][..]));
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![2, -4, 6, 8]);
    let flags = Tensor::from_vec("input-0", vec![true, false]);
    let out = connector
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(flags),
        )
        .await
        .unwrap();
    assert_eq!(out.outputs[0].to_vec::<bool>().unwrap(), vec![false, true]);

    // This server runs without --enable-model-api: register answers 405.
    let e = connector
        .register_model(&RegisterOptions::new("doubler.mar").model_name("nope"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("--enable-model-api"), "{e}");
    let e = connector
        .unregister_model(&ModelRef::new("doubler"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    // Reading stays allowed.
    assert!(
        connector
            .model_ready(&ModelRef::new("doubler"))
            .await
            .unwrap()
    );
}

/// The server regenerates its inference key (TorchServe's token API, with the
/// API key); requests with the old key are refused until the operator puts the
/// new key in the registry, and from then on the same connector works. Uses a
/// server of its own: the shared one's keys must not change under other tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_regenerated_by_the_server_and_rotated_in_the_registry() {
    let Some(server) =
        tokio::task::spawn_blocking(|| servers::start_or_skip(ServerKind::TorchServe))
            .await
            .unwrap()
    else {
        return;
    };
    let old = keys(&server);
    let registry = Record::new(&server).registry().await;
    let mut live = registry
        .watch_resolution(Selector::resource("torchserve"), Consumer::anywhere())
        .unwrap();
    let first = live.next().await.unwrap().unwrap();
    let connector = TorchServeConnector::from_target(&first.target()).unwrap();
    let keys_handle = connector.keys();
    let follower = tokio::spawn(async move { keys_handle.follow(live.into_stream()).await });
    let doubler = ModelRef::new("doubler");
    let request = || InferRequest::new().with_input(Tensor::from_vec("x", vec![7i64]));
    assert!(connector.infer(&doubler, request()).await.is_ok());

    // GET /token?type=inference with the API key: a new inference key, written to the key file.
    let management =
        inferlink::transport::HttpTransport::builder(server.field("management_url").unwrap())
            .build()
            .unwrap();
    management
        .send(
            inferlink::transport::RequestSpec::get("token")
                .query("type", "inference")
                .secret_header(
                    "authorization",
                    &inferlink::Secret::new(format!("Bearer {}", old.api)),
                ),
        )
        .await
        .unwrap();
    let new = keys(&server);
    assert_ne!(new.inference, old.inference);
    let e = connector.infer(&doubler, request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.to_string().contains(&old.inference), "{e}");

    // The operator rotates the key in the registry; the connector is not rebuilt.
    let rotated = Record::new(&server).inference_key(&new.inference).yaml();
    registry
        .upsert(format::parse_records(&rotated).unwrap().remove(0))
        .await
        .unwrap();
    let out = until_the_new_key_is_used(&connector, &doubler, request).await;
    assert_eq!(out.outputs[0].to_vec::<i64>().unwrap(), vec![14]);
    // From now on every request succeeds.
    for _ in 0..20 {
        connector.infer(&doubler, request()).await.unwrap();
    }
    drop(registry);
    tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("follow ends with the registry")
        .unwrap();
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap()
        .unwrap();
}
