//! Plumbing of the peer-comparison benches (`scripts/bench-peer`): where the
//! server is (the addresses the script passes, or a server the bench starts
//! itself), the runtime, the bounded closed-loop load a case sends, and the
//! `RESULT …` line the script parses.
//!
//! A bench's `main` names its server, builds one connector per wire and
//! calls [`run_case`] per (size, concurrency); what it measures (which
//! connector, model, tensors and counts) stays in the bench.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inferlink::{InferRequest, InferenceConnector, ModelRef, Tensor};

use crate::servers::{RunningServer, ServerKind};

/// The peer server's addresses; keeps a server the bench started itself
/// running until dropped.
#[derive(Debug)]
pub struct PeerServer {
    /// The HTTP base URL (`http://127.0.0.1:<port>`).
    pub http_url: String,
    /// The gRPC address (`127.0.0.1:<port>`).
    pub grpc_addr: String,
    _started: Option<RunningServer>,
}

impl PeerServer {
    /// The addresses in `INFERLINK_PEER_HTTP_URL` and
    /// `INFERLINK_PEER_GRPC_ADDR` when both are set (the script started the
    /// server); otherwise starts `kind` through the harness. When that fails
    /// it prints `skipped: cannot start the real <kind> server: …` and
    /// returns `None` (benches only need to compile in CI).
    pub fn from_env_or_start(kind: ServerKind) -> Option<PeerServer> {
        let env_http = std::env::var("INFERLINK_PEER_HTTP_URL").ok();
        let env_grpc = std::env::var("INFERLINK_PEER_GRPC_ADDR").ok();
        if let (Some(http_url), Some(grpc_addr)) = (env_http, env_grpc) {
            return Some(PeerServer {
                http_url,
                grpc_addr,
                _started: None,
            });
        }
        let server = start_or_report(kind)?;
        Some(PeerServer {
            http_url: server.http_url(),
            grpc_addr: server.grpc_addr().to_string(),
            _started: Some(server),
        })
    }

    /// The gRPC address as a connector URL (`grpc://127.0.0.1:<port>`).
    pub fn grpc_url(&self) -> String {
        format!("grpc://{}", self.grpc_addr)
    }
}

/// Starts `kind` through the harness, or prints `skipped: cannot start the
/// real <kind> server: …` and returns `None`.
pub fn start_or_report(kind: ServerKind) -> Option<RunningServer> {
    match RunningServer::start(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipped: cannot start the real {} server: {e}", kind.name());
            None
        }
    }
}

/// The benches' runtime: multi-threaded with two workers (the machine's
/// cores), timers and I/O on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A request with one FP32 input `input` of `n` elements `0, 1, 2, …`.
pub fn ramp_request(input: &str, n: usize) -> InferRequest {
    let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
    InferRequest::new().with_input(Tensor::new(input, vec![n], values).expect("tensor"))
}

/// What a peer bench sends, apart from the sizes: a ramp of FP32 elements
/// in `input` to `model`, checked in `output`, at each `concurrency`.
#[derive(Debug, Clone)]
pub struct PeerLoad {
    /// The model every request goes to.
    pub model: &'static str,
    /// The request's one FP32 input.
    pub input: &'static str,
    /// The output every answer must carry with the input's shape.
    pub output: &'static str,
    /// Concurrency levels (requests in flight), one case each.
    pub concurrency: &'static [usize],
    /// Requests sent before each case, not counted.
    pub warmup: usize,
    /// Longest time one case may take.
    pub budget: Duration,
}

impl PeerLoad {
    /// The peer benches' common load: the `identity` model, FP32 `input`
    /// echoed in `output`, concurrency 1 and 16, 20 warm-up requests, at
    /// most `budget` per case.
    pub const fn identity(input: &'static str, output: &'static str, budget: Duration) -> Self {
        PeerLoad {
            model: "identity",
            input,
            output,
            concurrency: &[1, 16],
            warmup: 20,
            budget,
        }
    }

    /// Runs one case per concurrency level with `elements` per request and
    /// at most `count` requests through `conn`, printing a `RESULT` line
    /// labelled `wire` for each.
    pub fn measure(
        &self,
        rt: &tokio::runtime::Runtime,
        conn: &Arc<dyn InferenceConnector>,
        wire: &str,
        elements: usize,
        count: usize,
    ) {
        let request = ramp_request(self.input, elements);
        for &concurrency in self.concurrency {
            let case = LoadCase {
                model: ModelRef::new(self.model),
                output: self.output,
                elements,
                concurrency,
                count,
                warmup: self.warmup,
                budget: self.budget,
            };
            let (done, secs) = rt.block_on(run_case(conn.clone(), request.clone(), &case));
            print_result(wire, &case, done, secs);
        }
    }
}

/// One case of a closed-loop load: which model, which output to check, and
/// the bounds.
#[derive(Debug, Clone)]
pub struct LoadCase {
    /// The model every request goes to.
    pub model: ModelRef,
    /// The output every answer must carry, with shape `[elements]`.
    pub output: &'static str,
    /// Elements of the request's (and the output's) tensor.
    pub elements: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Requests sent at most (after the warm-up).
    pub count: usize,
    /// Requests sent first, not counted (at most `count`).
    pub warmup: usize,
    /// Longest time the counted part may take.
    pub budget: Duration,
}

/// Sends `case.warmup` requests, then up to `case.count` with
/// `case.concurrency` in flight, stopping at `case.budget`; every answer's
/// `case.output` must have shape `[case.elements]`. Returns the requests
/// completed and the seconds taken.
pub async fn run_case(
    conn: Arc<dyn InferenceConnector>,
    request: InferRequest,
    case: &LoadCase,
) -> (usize, f64) {
    for _ in 0..case.warmup.min(case.count) {
        conn.infer(&case.model, request.clone())
            .await
            .expect("warm-up infer");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(case.concurrency);
    for _ in 0..case.concurrency {
        let (conn, request, model) = (conn.clone(), request.clone(), case.model.clone());
        let (next, done) = (next.clone(), done.clone());
        let (count, budget, output, n) = (case.count, case.budget, case.output, case.elements);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count && start.elapsed() < budget {
                let r = conn.infer(&model, request.clone()).await.expect("infer");
                assert_eq!(r.require_output(output).expect(output).shape(), &[n]);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

/// Prints the line `scripts/bench-peer` parses:
/// `RESULT client=inferlink wire=… elements=… concurrency=… requests=… seconds=… rps=…`.
pub fn print_result(wire: &str, case: &LoadCase, done: usize, secs: f64) {
    println!(
        "RESULT client=inferlink wire={wire} elements={} concurrency={} \
         requests={done} seconds={secs:.3} rps={:.1}",
        case.elements,
        case.concurrency,
        done as f64 / secs
    );
}
