//! The inferlink side of the MLServer peer comparison (`scripts/bench-peer
//! mlserver`): the same inference requests `benches/peer/tritonclient_bench.py
//! --server mlserver` sends through the Python `tritonclient` (from the
//! mlserver venv), here through inferlink-seldon's `SeldonConnector` built
//! from a `product: mlserver` record — REST (JSON: MLServer has no binary
//! tensor extension) and gRPC — to MLServer's `identity` model, FP32 tensors
//! of 1, 1 000 and 100 000 elements, at concurrency 1 and 16, bounded by
//! count and time.
//!
//! `scripts/bench-peer mlserver` starts MLServer and passes its addresses in
//! `INFERLINK_PEER_HTTP_URL` and `INFERLINK_PEER_GRPC_ADDR`; without them this
//! bench starts MLServer itself through the harness (or prints `skipped: …`
//! and exits 0). Output: one `RESULT client=inferlink wire=… elements=…
//! concurrency=… requests=… seconds=… rps=…` line per case.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inferlink::{
    Connectors, Consumer, InferRequest, InferenceConnector, MemoryStore, ModelRef, Registry,
    Selector, Tensor,
};
use inferlink_testkit::servers::{RunningServer, ServerKind};

/// Elements per request and how many requests a case sends at most.
const SIZES: [(usize, usize); 3] = [(1, 2000), (1_000, 2000), (100_000, 50)];
/// Concurrency levels (requests in flight).
const CONCURRENCY: [usize; 2] = [1, 16];
/// Requests sent before each case, not counted.
const WARMUP: usize = 20;
/// Longest time one case may take.
const CASE_BUDGET: Duration = Duration::from_secs(20);

async fn connector(url: &str) -> Arc<dyn InferenceConnector> {
    let registry = Registry::open(MemoryStore::new()).await.expect("registry");
    registry
        .register_yaml(&format!(
            "id: bench-mlserver\nproduct: mlserver\nversion: \"1.7.1\"\nservices:\n  - id: infer\n    \
             resource: mlserver\n    category: prediction-serving\n    configuration:\n      \
             deadline_ms: \"120000\"\n    endpoints:\n      - url: {url}\n"
        ))
        .await
        .expect("register the bench record");
    let resolution = registry
        .resolve(&Selector::resource("mlserver"), &Consumer::anywhere())
        .expect("resolve");
    Connectors::new()
        .with(inferlink_seldon::factory())
        .connect(&resolution)
        .await
        .expect("connect")
}

fn main() {
    let env_http = std::env::var("INFERLINK_PEER_HTTP_URL").ok();
    let env_grpc = std::env::var("INFERLINK_PEER_GRPC_ADDR").ok();
    let mut _server: Option<RunningServer> = None;
    let (http_url, grpc_addr) = match (env_http, env_grpc) {
        (Some(h), Some(g)) => (h, g),
        _ => match RunningServer::start(ServerKind::MlServer) {
            Ok(s) => {
                let addrs = (s.http_url(), s.grpc_addr().to_string());
                _server = Some(s);
                addrs
            }
            Err(e) => {
                eprintln!("skipped: cannot start the real MLServer: {e}");
                return;
            }
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    for (wire, url) in [
        ("http", http_url.clone()),
        ("grpc", format!("grpc://{grpc_addr}")),
    ] {
        let conn = rt.block_on(connector(&url));
        for (n, count) in SIZES {
            let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let request = InferRequest::new()
                .with_input(Tensor::new("input-0", vec![n], values).expect("tensor"));
            for c in CONCURRENCY {
                let (done, secs) =
                    rt.block_on(run_case(conn.clone(), request.clone(), n, c, count));
                println!(
                    "RESULT client=inferlink wire={wire} elements={n} concurrency={c} \
                     requests={done} seconds={secs:.3} rps={:.1}",
                    done as f64 / secs
                );
            }
        }
    }
}

/// Sends up to `count` requests with `concurrency` in flight (stopping at
/// [`CASE_BUDGET`]); returns the requests completed and the seconds taken.
async fn run_case(
    conn: Arc<dyn InferenceConnector>,
    request: InferRequest,
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
                assert_eq!(
                    r.require_output("output-0").expect("output-0").shape(),
                    &[n]
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}
