//! The inferlink side of the KServe peer comparison (`scripts/bench-peer
//! kserve`): the same requests as `benches/peer/kserve_client_bench.py`
//! sends through kserve's Python clients, here through `KServeConnector`
//! built from a record (`product: kserve`): V1 (`instances` rows), V2 REST
//! with binary tensors, V2 gRPC; FP32 tensors to the `identity` model, at
//! concurrency 1 and 16, bounded by count and time.
//!
//! `scripts/bench-peer kserve` starts KServe and passes its addresses in
//! `INFERLINK_PEER_HTTP_URL` and `INFERLINK_PEER_GRPC_ADDR`. Without them
//! this bench starts KServe itself through the harness (or prints
//! `skipped: …` and exits 0). Output: one
//! `RESULT client=inferlink wire=… elements=… concurrency=… requests=… seconds=… rps=…`
//! line per case on stdout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inferlink::{
    Connectors, Consumer, InferRequest, InferenceConnector, MemoryStore, ModelRef, Registry,
    Selector, Tensor,
};
use inferlink_testkit::servers::{RunningServer, ServerKind};

/// (wire, elements, requests at most): the Python side's list.
const CASES: [(&str, usize, usize); 8] = [
    ("v1", 1, 1000),
    ("v1", 1_000, 1000),
    ("rest", 1, 1000),
    ("rest", 1_000, 1000),
    ("rest", 100_000, 200),
    ("grpc", 1, 1000),
    ("grpc", 1_000, 1000),
    ("grpc", 100_000, 200),
];
const CONCURRENCY: [usize; 2] = [1, 16];
const WARMUP: usize = 20;
const CASE_BUDGET: Duration = Duration::from_secs(15);

fn main() {
    let env_http = std::env::var("INFERLINK_PEER_HTTP_URL").ok();
    let env_grpc = std::env::var("INFERLINK_PEER_GRPC_ADDR").ok();
    let mut _server: Option<RunningServer> = None;
    let (http_url, grpc_addr) = match (env_http, env_grpc) {
        (Some(h), Some(g)) => (h, g),
        _ => match RunningServer::start(ServerKind::KServe) {
            Ok(s) => {
                let addrs = (s.http_url(), s.grpc_addr().to_string());
                _server = Some(s);
                addrs
            }
            Err(e) => {
                eprintln!("skipped: cannot start the real KServe server: {e}");
                return;
            }
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    for (wire, n, count) in CASES {
        let conn = rt.block_on(connector(&http_url, &grpc_addr, wire));
        let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let request = InferRequest::new()
            .with_input(Tensor::new("input-0", vec![n], values).expect("tensor"));
        let output = if wire == "v1" {
            "predictions"
        } else {
            "output-0"
        };
        for c in CONCURRENCY {
            let (done, secs) =
                rt.block_on(run_case(conn.clone(), request.clone(), output, n, c, count));
            println!(
                "RESULT client=inferlink wire={wire} elements={n} concurrency={c} \
                 requests={done} seconds={secs:.3} rps={:.1}",
                done as f64 / secs
            );
        }
    }
}

/// A connector from a `product: kserve` record for one wire.
async fn connector(http_url: &str, grpc_addr: &str, wire: &str) -> Arc<dyn InferenceConnector> {
    let (url, settings) = match wire {
        "v1" => (http_url.to_owned(), "protocol: v1"),
        "rest" => (
            http_url.to_owned(),
            "protocol: v2\n      tensor_encoding: binary",
        ),
        _ => (format!("grpc://{grpc_addr}"), "protocol: v2-grpc"),
    };
    let registry = Registry::open(MemoryStore::new()).await.expect("registry");
    registry
        .register_yaml(&format!(
            r#"
id: bench-kserve
product: kserve
version: "0.21.0"
services:
  - id: predictor
    resource: kserve-predictor
    category: prediction-serving
    configuration:
      {settings}
      deadline_ms: "120000"
    endpoints:
      - url: {url}
"#
        ))
        .await
        .expect("register the bench record");
    let resolution = registry
        .resolve(
            &Selector::category("prediction-serving"),
            &Consumer::anywhere(),
        )
        .expect("resolve");
    Connectors::new()
        .with(inferlink_kserve::factory())
        .connect(&resolution)
        .await
        .expect("connect")
}

/// Sends up to `count` requests with `concurrency` in flight (stopping at
/// [`CASE_BUDGET`]); returns the requests completed and the seconds taken.
async fn run_case(
    conn: Arc<dyn InferenceConnector>,
    request: InferRequest,
    output: &'static str,
    n: usize,
    concurrency: usize,
    count: usize,
) -> (usize, f64) {
    let model = ModelRef::new("identity");
    for _ in 0..WARMUP.min(count) {
        conn.infer(&model, request.clone())
            .await
            .expect("warm-up infer");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (conn, request, model) = (conn.clone(), request.clone(), model.clone());
        let (next, done) = (next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count && start.elapsed() < CASE_BUDGET {
                let r = conn.infer(&model, request.clone()).await.expect("infer");
                assert_eq!(r.require_output(output).expect("output").shape(), &[n]);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}
