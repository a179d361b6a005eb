//! The Seldon connector against the real servers of the harness
//! (`scripts/servers`): the Seldon Core v1 python microservice 1.18.2
//! (`seldon-core`, model `doubler`) over the Seldon protocol, directly and
//! through a loopback stand-in for the Istio/Ambassador ingress, and Seldon
//! MLServer 1.7.1 (`mlserver`, with the scikit-learn model `tiny-sklearn`
//! trained when the server starts) over V2 REST and gRPC. The connector
//! conformance suite runs on each; every quirk real-servers.md §3 lists for
//! these servers has a test here (named after it).
//!
//! A server whose venv is not installed skips the test with a visible line,
//! or fails it under `INFERLINK_REQUIRE_LIVE=1` (what `scripts/test` sets).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use inferlink::{
    Connectors, DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest, Tensor,
};
use inferlink_seldon::{Feedback, SeldonConfig, SeldonConnector, SeldonMessage, SeldonProtocol};
use inferlink_testkit::connector::{
    BadInput, CheckStatus, ConformanceReport, ConformanceSpec, Expect, InvokeCase, RoundTrip,
    Transform, run_connector_conformance,
};
use inferlink_testkit::live::{
    self, TestRecord, expect_final_error, sample_round_trips, with_round_trips,
};
use inferlink_testkit::servers::{self, RunningServer, ServerKind};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A connector from a record through `Connectors::connect`, as a host gets it.
async fn connect(
    product: &str,
    version: &str,
    url: &str,
    settings: &[(&str, &str)],
) -> Arc<dyn InferenceConnector> {
    let record = TestRecord::new("live-seldon", product, version, "seldon-core-api");
    record
        .settings(settings)
        .setting("deadline_ms", "60000")
        .endpoint(url)
        .connect(Connectors::new().with(inferlink_seldon::factory()))
        .await
}

/// The shared server of `kind` and a connector to its HTTP port from a
/// `product`/`version` record with `settings`; `None` when skipped.
async fn live(
    kind: ServerKind,
    product: &str,
    version: &str,
    settings: &[(&str, &str)],
) -> Option<(&'static RunningServer, Arc<dyn InferenceConnector>)> {
    let server = live::shared_server(kind).await?;
    Some((
        server,
        connect(product, version, &server.http_url(), settings).await,
    ))
}

/// The Seldon Core v1 microservice and a `seldon` 1.18.2 connector to it.
async fn seldon_core(
    settings: &[(&str, &str)],
) -> Option<(&'static RunningServer, Arc<dyn InferenceConnector>)> {
    live(ServerKind::SeldonCore, "seldon", "1.18.2", settings).await
}

/// MLServer and a `mlserver` 1.7.1 connector to its REST port.
async fn mlserver(
    settings: &[(&str, &str)],
) -> Option<(&'static RunningServer, Arc<dyn InferenceConnector>)> {
    live(ServerKind::MlServer, "mlserver", "1.7.1", settings).await
}

/// A connector built from a URL alone (the protocol falls back to `protocol`;
/// a `grpc://` URL means v2 over gRPC).
fn direct(url: &str, protocol: SeldonProtocol) -> SeldonConnector {
    let none: [(&str, inferlink::resolve::ConfigValue); 0] = [];
    let config = SeldonConfig::from_values(
        url,
        protocol,
        none,
        inferlink::transport::TransportConfig::default(),
    )
    .unwrap();
    SeldonConnector::new(config).unwrap()
}

/// Runs the conformance suite against `c`, which must speak `protocol`;
/// every check must pass and at least ten must run.
async fn conformance(
    c: &dyn InferenceConnector,
    protocol: &str,
    spec: &ConformanceSpec,
) -> ConformanceReport {
    assert_eq!(c.info().protocol, protocol);
    let report = run_connector_conformance(c, spec).await;
    live::assert_conformance(protocol, &report, &[], 10);
    report
}

// ---------------------------------------------------------------------------
// Seldon Core v1 (the python microservice)
// ---------------------------------------------------------------------------

/// The v1 spec: FP64 and INT64 doubled through `data.ndarray`, a model
/// exception for strings, any shape accepted, and a raw SeldonMessage.
fn v1_spec(model: &str) -> ConformanceSpec {
    let [fp64, ints] = <[RoundTrip; 2]>::try_from(sample_round_trips(
        model,
        Transform::Double,
        &[
            ("input", DataType::Fp64, &[2, 3]),
            ("ints", DataType::Int64, &[3, 2]),
        ],
    ))
    .unwrap();
    let strings = Tensor::from_strings("input", vec![1, 2], ["a", "b"]).unwrap();
    ConformanceSpec::new()
        // The doubler takes any shape (numpy), so a rank + 1 input is fine.
        .bad_input(fp64.wrong_shape().expect(Expect::Succeeds))
        // numpy cannot double strings: 500 MICROSERVICE_INTERNAL_ERROR.
        .bad_input(BadInput::new(
            "strings",
            model,
            InferRequest::new().with_input(strings),
            Expect::fails(ErrorKind::ModelError),
        ))
        .round_trip(fp64)
        .round_trip(ints)
        .invoke(InvokeCase::new(
            model,
            RawRequest::json(r#"{"data":{"ndarray":[[1,2]]}}"#),
            |r| {
                let v: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
                if v["data"]["ndarray"] == json!([[2, 4]]) {
                    Ok(())
                } else {
                    Err(format!("unexpected answer {v}"))
                }
            },
        ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seldon_core_v1_conformance_direct() {
    let Some((_, c)) = seldon_core(&[("deployment", "doubler")]).await else {
        return;
    };
    let report = conformance(c.as_ref(), "seldon-v1", &v1_spec("doubler")).await;
    assert_eq!(
        report.status("models"),
        Some(&CheckStatus::Passed),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seldon_core_v1_conformance_tensor_form() {
    let settings = [("deployment", "doubler"), ("v1_tensor_form", "tensor")];
    let Some((_, c)) = live(ServerKind::SeldonCore, "seldon-core", "1.18.2", &settings).await
    else {
        return;
    };
    // data.tensor carries doubles: integers come back FP64.
    let fp64 = live::doubled("doubler", "input", DataType::Fp64, &[2, 2]);
    let spec = ConformanceSpec::new().round_trip(fp64);
    conformance(c.as_ref(), "seldon-v1", &spec).await;
}

/// A stand-in for the Istio/Ambassador ingress on 127.0.0.1: forwards
/// `/seldon/<namespace>/<deployment>/<rest>` to the deployment's upstream as
/// `/<rest>`, answers 404 for unknown deployments, and records what it saw.
struct Ingress {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Ingress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn ingress(
    namespace: &'static str,
    deployment: &'static str,
    upstream: SocketAddr,
) -> Ingress {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let _ = forward(client, namespace, deployment, upstream, log).await;
            });
        }
    });
    Ingress { url, seen, task }
}

/// One request per connection (the answer closes it), bounded to 16 MiB.
async fn forward(
    mut client: tokio::net::TcpStream,
    namespace: &str,
    deployment: &str,
    upstream: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
        .min(16 << 20);
    while buf.len() < head_end + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    log.lock().unwrap().push(format!("{method} {target}"));
    let prefix = format!("/seldon/{namespace}/{deployment}/");
    let Some(rest) = target.strip_prefix(&prefix) else {
        client
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await?;
        return Ok(());
    };
    let mut out = format!("{method} /{rest} HTTP/1.1\r\n");
    for l in lines.filter(|l| !l.is_empty()) {
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name != "connection" && name != "host" {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("host: {upstream}\r\nconnection: close\r\n\r\n"));
    let mut up = tokio::net::TcpStream::connect(upstream).await?;
    up.write_all(out.as_bytes()).await?;
    up.write_all(&buf[head_end..]).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    client.write_all(&answer).await?;
    client.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seldon_core_v1_conformance_through_the_ingress_path() {
    let Some(server) = live::shared_server(ServerKind::SeldonCore).await else {
        return;
    };
    let gateway = ingress("models", "doubler", server.http_addr()).await;
    // Only the namespace: the model names the deployment, and the ingress
    // answers 404 for a deployment it does not know.
    let c = connect("seldon", "1.18.2", &gateway.url, &[("namespace", "models")]).await;
    conformance(c.as_ref(), "seldon-v1", &v1_spec("doubler")).await;
    let seen = gateway.seen.lock().unwrap().clone();
    assert!(
        seen.contains(&"POST /seldon/models/doubler/api/v1.0/predictions".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.contains("/seldon/models/inferlink-conformance-no-such-model/")),
        "{seen:?}"
    );

    // Namespace and deployment from configuration (seed 004's shape).
    let c = connect(
        "seldon",
        "1.11.0",
        &gateway.url,
        &[("namespace", "models"), ("deployment", "doubler")],
    )
    .await;
    assert!(c.health().await.unwrap().is_serving());
    let x = Tensor::new("x", vec![1, 2], vec![1.5f64, 2.5]).unwrap();
    let r = c
        .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x))
        .await
        .unwrap();
    assert_eq!(
        r.into_single_output().unwrap().to_vec::<f64>().unwrap(),
        vec![3.0, 5.0]
    );
    let seen = gateway.seen.lock().unwrap().clone();
    assert!(
        seen.contains(&"GET /seldon/models/doubler/api/v1.0/health/status".to_owned()),
        "{seen:?}"
    );
}

/// Quirk (3b): the tensor form echoes `meta.puid` but replaces `names` with `t:0`, `t:1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_seldon_core_echoes_puid_and_replaces_names() {
    let Some((_, c)) = seldon_core(&[("v1_tensor_form", "tensor")]).await else {
        return;
    };
    let x = Tensor::new("x", vec![2, 2], vec![1.0f64, 2.0, 3.0, 4.0]).unwrap();
    let r = c
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new()
                .with_id("abc")
                .with_parameter("names", "a,b")
                .with_input(x),
        )
        .await
        .unwrap();
    assert_eq!(r.id.as_deref(), Some("abc"));
    assert_eq!(
        r.parameters.get("model"),
        Some(&inferlink::Parameter::String("doubler".into()))
    );
    let out = r.into_single_output().unwrap();
    assert_eq!(out.shape(), &[2, 2]);
    assert_eq!(out.to_vec::<f64>().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
    assert_eq!(
        out.parameters().get("names"),
        Some(&inferlink::Parameter::String(r#"["t:0","t:1"]"#.into()))
    );
}

/// strData, binData and jsonData payloads through `infer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seldon_core_str_bin_and_json_payloads() {
    let Some((_, c)) = seldon_core(&[]).await else {
        return;
    };
    let m = ModelRef::new("doubler");
    let one = |name: &str, bytes: &[u8]| {
        InferRequest::new().with_input(
            Tensor::from_byte_elements(name, vec![1], [Bytes::copy_from_slice(bytes)]).unwrap(),
        )
    };
    let r = c
        .infer(&m, one("strData", "héllo".as_bytes()))
        .await
        .unwrap();
    assert_eq!(r.outputs[0].name(), "strData");
    assert_eq!(r.outputs[0].to_strings().unwrap(), ["HÉLLO"]);
    let r = c.infer(&m, one("binData", &[0, 1, 2, 255])).await.unwrap();
    assert_eq!(
        r.outputs[0].to_byte_elements().unwrap()[0].as_ref(),
        &[255, 2, 1, 0]
    );
    let r = c
        .infer(&m, one("jsonData", br#"{"a":[1,2.5],"b":"x"}"#))
        .await
        .unwrap();
    let text = r.outputs[0].to_strings().unwrap().remove(0);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"a":[2,5.0],"b":"x"})
    );
    let bools = Tensor::new("b", vec![2], vec![true, false]).unwrap();
    // numpy doubles booleans into integers.
    let r = c
        .infer(&m, InferRequest::new().with_input(bools))
        .await
        .unwrap();
    assert_eq!(r.outputs[0].to_vec::<i64>().unwrap(), vec![2, 0]);
}

/// Quirks (3b): the error envelope (`status` as a number), bad data 400,
/// model exception 500, unknown route 500 "404 Not Found", no validation of
/// `data`, form-encoded bodies, feedback, metadata, `/ready` missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_seldon_core_errors_and_routes() {
    let Some((server, c)) = seldon_core(&[]).await else {
        return;
    };
    let m = ModelRef::new("doubler");

    // Empty body: 400 MICROSERVICE_BAD_DATA.
    let empty = c.invoke(&m, RawRequest::json("")).await;
    expect_final_error(empty, &[ErrorKind::InvalidInput], "MICROSERVICE_BAD_DATA");

    // A model exception: 500 MICROSERVICE_INTERNAL_ERROR with numpy's words.
    let strings = Tensor::from_strings("x", vec![1], ["a"]).unwrap();
    let r = c.infer(&m, InferRequest::new().with_input(strings)).await;
    expect_final_error(r, &[ErrorKind::ModelError], "MICROSERVICE_INTERNAL_ERROR");

    // An unknown route is a 500 whose info says 404: NotFound, not ModelError.
    let v1 = direct(&server.http_url(), SeldonProtocol::V1);
    let e = v1
        .v1()
        .unwrap()
        .metadata(&ModelRef::new("component-x"))
        .await;
    // No deployment configured: the graph metadata answers for any name.
    assert_eq!(e.unwrap().name, "doubler");
    let c2 = connect(
        "seldon",
        "1.18.2",
        &server.http_url(),
        &[("deployment", "doubler")],
    )
    .await;
    let e = c2
        .model_metadata(&ModelRef::new("component-x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("404 Not Found"), "{e}");
    let md = c2.model_metadata(&m).await.unwrap();
    assert_eq!(md.name, "doubler");
    assert_eq!(md.platform, "inferlink-test");
    assert_eq!(
        md.properties.get("author").map(String::as_str),
        Some("inferlink")
    );

    // No validation: `data` without ndarray/tensor answers an empty ndarray.
    let raw = c
        .invoke(&m, RawRequest::json(r#"{"data":{"foo":1}}"#))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(v["data"]["ndarray"], json!([]));

    // A form-encoded `json=<msg>` body is accepted too.
    let form = RawRequest::new(
        "json=%7B%22data%22%3A%7B%22ndarray%22%3A%5B%5B3%5D%5D%7D%7D",
        "application/x-www-form-urlencoded",
    );
    let raw = c.invoke(&m, form).await.unwrap();
    let v: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(v["data"]["ndarray"], json!([[6]]));

    // Feedback answers 200 with a SeldonMessage.
    let feedback = Feedback {
        request: Some(
            serde_json::from_value::<SeldonMessage>(json!({"data":{"ndarray":[[1]]}})).unwrap(),
        ),
        reward: 1.0,
        ..Feedback::default()
    };
    v1.v1().unwrap().feedback(&m, &feedback).await.unwrap();

    // `/ready` and `/live` do not exist in 1.18 (500); health uses health/status.
    assert_eq!(server.get_status("/ready").unwrap(), 500);
    let h = c.health().await.unwrap();
    assert!(h.is_serving());
    assert!(c.model_ready(&m).await.unwrap());
    let status = v1.v1().unwrap().health_status(&m).await.unwrap();
    assert_eq!(
        status.json_data.as_ref().and_then(|j| j.get("status")),
        Some(&json!("ok"))
    );
}

/// Quirk (3b): binds 0.0.0.0 unless patched (launch.py rewrites it), and
/// leaves gRPC workers behind unless the whole process group is stopped.
#[test]
fn quirk_seldon_core_listens_on_loopback_and_stops_as_a_group() {
    let Some(server) = servers::start_or_skip(ServerKind::SeldonCore) else {
        return;
    };
    for port in [
        server.http_port(),
        server.grpc_port(),
        server.metrics_port(),
    ] {
        live::assert_listens_on_loopback_only(port);
    }
    assert_eq!(server.get_status("/health/ping").unwrap(), 200);
    let (pgid, http, grpc) = (server.pgid(), server.http_addr(), server.grpc_addr());
    server.stop().unwrap();
    assert!(!servers::process_group_alive(pgid));
    assert!(!servers::port_open(http));
    assert!(!servers::port_open(grpc));
}

// ---------------------------------------------------------------------------
// MLServer (V2 REST and gRPC)
// ---------------------------------------------------------------------------

/// The scikit-learn LogisticRegression trained when MLServer starts:
/// `[[0.2, 0.1], [2.5, 2.5]]` → classes `[0, 1]` (INT64 `[2, 1]`).
fn sklearn_round_trip() -> RoundTrip {
    let x = Tensor::new("predict", vec![2, 2], vec![0.2f64, 0.1, 2.5, 2.5]).unwrap();
    RoundTrip::new(
        "tiny-sklearn",
        x,
        Transform::custom(|_| Tensor::new("predict", vec![2, 1], vec![0i64, 1])),
    )
    .label("tiny-sklearn/classes")
}

fn mlserver_spec() -> ConformanceSpec {
    let doubled = sample_round_trips(
        "doubler",
        Transform::Double,
        &[
            ("input-0", DataType::Fp32, &[4]),
            ("input-1", DataType::Bytes, &[3]),
            ("input-2", DataType::Int64, &[2, 3]),
        ],
    );
    // Three features where the model was trained on two: the exception
    // inside the model is a bare 500 (REST) / UNKNOWN (gRPC).
    let wrong = Tensor::new("predict", vec![1, 3], vec![1.0f64, 2.0, 3.0]).unwrap();
    with_round_trips(
        ConformanceSpec::new().round_trip(sklearn_round_trip()),
        doubled,
    )
    .bad_input(BadInput::new(
        "tiny-sklearn/three_features",
        "tiny-sklearn",
        InferRequest::new().with_input(wrong),
        Expect::Fails(vec![ErrorKind::ModelError, ErrorKind::InvalidInput]),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlserver_v2_rest_conformance() {
    let Some((_, c)) = mlserver(&[("seldon_model", "tiny-sklearn")]).await else {
        return;
    };

    // Idempotent: it follows the model exception of the bad input, after
    // which MLServer drops the pooled connection (see the quirk test below).
    let mut request = RawRequest::json(
        r#"{"inputs":[{"name":"predict","shape":[1,2],"datatype":"FP64","data":[3.0,3.0]}]}"#,
    );
    request.idempotent = true;
    let invoke = InvokeCase::new("tiny-sklearn", request, |r| {
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
        (v["outputs"][0]["data"] == json!([1]))
            .then_some(())
            .ok_or(format!("unexpected {v}"))
    });
    let report = conformance(c.as_ref(), "oip-rest", &mlserver_spec().invoke(invoke)).await;
    assert_eq!(
        report.status("models"),
        Some(&CheckStatus::Passed),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlserver_v2_grpc_conformance() {
    let Some(server) = live::shared_server(ServerKind::MlServer).await else {
        return;
    };
    let [_, grpc] = live::rest_and_grpc_urls(server);
    let settings = [("seldon_model", "tiny-sklearn")];
    let c = connect("seldon-core", "2.8.0", &grpc, &settings).await;
    conformance(c.as_ref(), "oip-grpc", &mlserver_spec()).await;
}

/// Quirk (3a): the scikit-learn runtime answers `predict_proba` when asked
/// for that output, on `/versions/v1`; server metadata names mlserver 1.7.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_mlserver_sklearn_outputs_and_versions() {
    let Some(server) = live::shared_server(ServerKind::MlServer).await else {
        return;
    };
    for url in live::rest_and_grpc_urls(server) {
        let c = connect("mlserver", "1.7.1", &url, &[]).await;
        let x = Tensor::new("predict", vec![2, 2], vec![0.2f64, 0.1, 2.5, 2.5]).unwrap();
        let r = c
            .infer(
                &ModelRef::new("tiny-sklearn").with_version("v1"),
                InferRequest::new()
                    .with_input(x)
                    .with_output("predict_proba"),
            )
            .await
            .unwrap();
        let p = r.require_output("predict_proba").unwrap();
        assert_eq!(p.datatype(), DataType::Fp64, "{url}");
        assert_eq!(p.shape(), &[2, 2], "{url}");
        let p = p.to_vec::<f64>().unwrap();
        assert!(p[0] > 0.5 && p[3] > 0.5, "{url}: {p:?}");
        assert!((p[0] + p[1] - 1.0).abs() < 1e-9, "{url}: {p:?}");
        let connector = direct(&url, SeldonProtocol::V2);
        let meta = connector.oip().unwrap().server_metadata().await.unwrap();
        assert_eq!(
            (meta.name.as_str(), meta.version.as_str()),
            ("mlserver", "1.7.1")
        );
    }
}

/// Quirk (3a): a request-level `content_type: pd` makes each input a
/// DataFrame column; without it the numpy codec refuses two inputs. And
/// `str` reaches MLServer on BYTES inputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_mlserver_content_types_decide_the_codec() {
    let Some(server) = live::shared_server(ServerKind::MlServer).await else {
        return;
    };
    let columns = || {
        InferRequest::new()
            .with_input(Tensor::new("a", vec![2], vec![0.2f64, 2.5]).unwrap())
            .with_input(Tensor::new("b", vec![2], vec![0.1f64, 2.5]).unwrap())
    };
    for url in live::rest_and_grpc_urls(server) {
        let pd = connect(
            "mlserver",
            "1.7.1",
            &url,
            &[("mlserver_request_content_type", "pd")],
        )
        .await;
        let r = pd
            .infer(&ModelRef::new("tiny-sklearn"), columns())
            .await
            .unwrap();
        let classes = r.into_single_output().unwrap().to_vec::<i64>().unwrap();
        assert_eq!(classes, vec![0, 1], "{url}");
        let np = connect("mlserver", "1.7.1", &url, &[]).await;
        let e = np
            .infer(&ModelRef::new("tiny-sklearn"), columns())
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::ModelError | ErrorKind::InvalidInput),
            "{url}: {e}"
        );
        let text = Tensor::from_strings("input-0", vec![2], ["ab", "cd"]).unwrap();
        let r = np
            .infer(
                &ModelRef::new("doubler"),
                InferRequest::new().with_input(text),
            )
            .await
            .unwrap();
        assert_eq!(
            r.into_single_output().unwrap().to_strings().unwrap(),
            ["AB", "CD"],
            "{url}"
        );
    }
}

/// Quirks (3a): no binary tensor extension (a bare 500, final and typed),
/// FastAPI 422 for bad JSON and for an unknown datatype.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_mlserver_refusals() {
    let Some((server, c)) = mlserver(&[("tensor_encoding", "binary")]).await else {
        return;
    };
    let x = Tensor::new("input-0", vec![2], vec![1.0f32, 2.0]).unwrap();
    let e = c
        .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x))
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::ModelError | ErrorKind::InvalidInput),
        "{e}"
    );
    assert!(!e.is_retryable());
    let c = connect("mlserver", "1.7.1", &server.http_url(), &[]).await;
    let e = c
        .invoke(&ModelRef::new("doubler"), RawRequest::json("{"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let bad = r#"{"inputs":[{"name":"input-0","shape":[1],"datatype":"FP99","data":[1]}]}"#;
    let e = c
        .invoke(&ModelRef::new("doubler"), RawRequest::json(bad))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.to_string().contains("BYTES"),
        "the pydantic enum message: {e}"
    );
}

/// Quirk (3a, found here): after an exception inside a model MLServer
/// answers a bare `500 Internal Server Error` and then closes the keep-alive
/// connection without `Connection: close`. The next request on that pooled
/// connection meets a reset; an idempotent request is retried on a new
/// connection and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_mlserver_drops_the_connection_after_a_model_exception() {
    let Some((_, c)) = mlserver(&[("pool_max_idle_per_host", "1")]).await else {
        return;
    };
    let m = ModelRef::new("tiny-sklearn");
    for _ in 0..3 {
        let wrong = Tensor::new("predict", vec![1, 3], vec![1.0f64, 2.0, 3.0]).unwrap();
        let r = c.infer(&m, InferRequest::new().with_input(wrong)).await;
        expect_final_error(r, &[ErrorKind::ModelError], "Internal Server Error");
        let good = Tensor::new("predict", vec![1, 2], vec![3.0f64, 3.0]).unwrap();
        let r = c
            .infer(&m, InferRequest::new().with_input(good).idempotent())
            .await
            .unwrap();
        assert_eq!(
            r.into_single_output().unwrap().to_vec::<i64>().unwrap(),
            vec![1]
        );
    }
}

/// Quirk (3a): MLServer's infer answers carry CloudEvents headers; `invoke`
/// keeps them (`RawResponse::headers`), so a host can log `ce-id` /
/// `ce-requestid` next to its own request ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_mlserver_cloudevents_headers_are_kept() {
    let Some((_, c)) = mlserver(&[]).await else {
        return;
    };
    let body =
        r#"{"id":"ce-1","inputs":[{"name":"input-0","shape":[2],"datatype":"FP32","data":[1,2]}]}"#;
    let raw = c
        .invoke(&ModelRef::new("doubler"), RawRequest::json(body))
        .await
        .unwrap();
    let header = |name: &str| {
        raw.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("ce-specversion"), Some("0.3"), "{:?}", raw.headers);
    assert_eq!(
        header("ce-type"),
        Some("io.seldon.serving.inference.response"),
        "{:?}",
        raw.headers
    );
    assert_eq!(
        header("ce-source"),
        Some("io.seldon.serving.deployment.mlserver"),
        "{:?}",
        raw.headers
    );
    assert_eq!(header("ce-modelid"), Some("doubler"), "{:?}", raw.headers);
    assert!(
        header("ce-id").is_some_and(|v| !v.is_empty()),
        "{:?}",
        raw.headers
    );
    // Only protocol headers are kept, not the whole header map.
    assert!(
        raw.headers
            .iter()
            .all(|(k, _)| k.starts_with("ce-") || k == "inference-header-content-length"),
        "{:?}",
        raw.headers
    );
    let v: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(v["outputs"][0]["data"], json!([2.0, 4.0]));
}

/// Quirk (3b): the microservice also answers `POST /predict` (an alias of
/// `/api/v1.0/predictions`). The connector always uses the canonical path,
/// the one the ingress exposes as `/seldon/<ns>/<deployment>/api/v1.0/…`;
/// this checks that both paths give the same answer, so a record pointing at
/// the microservice directly loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirk_seldon_core_predict_alias_answers_like_predictions() {
    use inferlink::transport::{HttpTransport, Method, RequestSpec};
    let Some(server) = live::shared_server(ServerKind::SeldonCore).await else {
        return;
    };
    let http = HttpTransport::builder(server.http_url()).build().unwrap();
    let body = r#"{"data":{"ndarray":[[1,2]]}}"#;
    let mut answers = Vec::new();
    for path in ["/predict", "/api/v1.0/predictions"] {
        let resp = http
            .send(
                RequestSpec::new(Method::POST, path)
                    .content_type("application/json")
                    .body(body),
            )
            .await
            .unwrap();
        let message: SeldonMessage = serde_json::from_slice(resp.body()).unwrap();
        answers.push(serde_json::to_value(message.data).unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1]["ndarray"], json!([[2, 4]]));
    // And the connector's own call goes to the canonical path.
    let c = connect("seldon", "1.18.2", &server.http_url(), &[]).await;
    let raw = c
        .invoke(&ModelRef::new("doubler"), RawRequest::json(body))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(v["data"]["ndarray"], json!([[2, 4]]));
}
