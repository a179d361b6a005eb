//! The inferlink side of the peer comparison (`scripts/bench-peer`): the
//! same inference requests as `benches/peer/tritonclient_bench.py` sends
//! through NVIDIA's Python `tritonclient`, here through `OipConnector`
//! (REST binary and gRPC), at concurrency 1 and 16, bounded by count and time.
//!
//! Run by `scripts/bench-peer`, which starts Triton and passes its addresses
//! in `INFERLINK_PEER_HTTP_URL` and `INFERLINK_PEER_GRPC_ADDR`. Without them
//! this bench starts Triton itself through the harness (or prints
//! `skipped: …` and exits 0 when it cannot). Output: one
//! `RESULT client=… wire=… elements=… concurrency=… requests=… seconds=… rps=…`
//! line per case on stdout. `INFERLINK_PEER_GZIP=1` turns on the REST
//! transport's `gzip` key (off here: tritonclient does not ask for gzip).

#[path = "support/live.rs"]
mod live;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inferlink::{InferRequest, InferenceConnector, ModelRef, Tensor};
use live::Wire;

/// Elements per request and how many requests a case sends at most.
const SIZES: [(usize, usize); 3] = [(1, 2000), (1_000, 2000), (1_000_000, 100)];
/// Concurrency levels (requests in flight).
const CONCURRENCY: [usize; 2] = [1, 16];
/// Requests sent before each case, not counted.
const WARMUP: usize = 20;
/// Longest time one case may take.
const CASE_BUDGET: Duration = Duration::from_secs(20);

fn main() {
    let env_http = std::env::var("INFERLINK_PEER_HTTP_URL").ok();
    let env_grpc = std::env::var("INFERLINK_PEER_GRPC_ADDR").ok();
    let gzip = std::env::var("INFERLINK_PEER_GZIP").is_ok_and(|v| v == "1");
    let mut _server = None;
    let (http_url, grpc_addr) = match (env_http, env_grpc) {
        (Some(h), Some(g)) => (h, g),
        _ => {
            let Some(s) = live::start_triton() else {
                return;
            };
            let addrs = (s.http_url(), s.grpc_addr().to_string());
            _server = Some(s);
            addrs
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    for wire in [Wire::RestBinary { gzip }, Wire::Grpc] {
        let conn = rt.block_on(live::connector(&http_url, &grpc_addr, wire));
        let wire_name = match wire {
            Wire::RestBinary { .. } => "http",
            Wire::Grpc => "grpc",
        };
        for (n, count) in SIZES {
            let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let request = InferRequest::new()
                .with_input(Tensor::new("INPUT", vec![n], values).expect("tensor"));
            for c in CONCURRENCY {
                let (done, secs) =
                    rt.block_on(run_case(conn.clone(), request.clone(), n, c, count));
                println!(
                    "RESULT client=inferlink wire={wire_name} elements={n} concurrency={c} \
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
                assert_eq!(r.require_output("OUTPUT").expect("OUTPUT").shape(), &[n]);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}
