//! The inferlink side of the OpenAI-compatible peer comparison
//! (`scripts/bench-openai`; figures in `docs/performance.md`, "Embeddings
//! and generation: inferlink-openai vs the openai Python client").
//!
//! Against the harness's real llama-cpp-python server (all-MiniLM-L6-v2 for
//! embeddings, SmolLM2-135M-Instruct for generation), through an
//! `inferlink-openai` connector built from a registered record, as a host
//! gets it:
//!
//! * `embed`: `INFERLINK_PEER_TEXTS` short texts (default 2 000) in requests
//!   of `INFERLINK_PEER_BATCH` texts (default 32), at concurrency 1, 8 and 32 (tasks sharing one
//!   connector on a 2-worker runtime), each case bounded by count and
//!   [`CASE_BUDGET`]; throughput and the process's CPU time (user + system,
//!   `getrusage(RUSAGE_SELF)`) per request. The Python side
//!   (`benches/peer/openai_client_bench.py`) sends the same requests through
//!   `AsyncOpenAI`.
//! * `overhead`: one request at a time, connector and a bare `reqwest`
//!   POST of the same pre-encoded body alternating (and alternating which
//!   goes first); p50 and p99 of single calls and their ratio. The raw client
//!   only reads the body; the connector also decodes and checks the vectors.
//! * `ttft`: time to the first streamed text through `generate_stream`, and
//!   time to the first server-sent event carrying text read by a raw
//!   `reqwest` client from the same chat request; alternating; p50 and the
//!   difference.
//!
//! `scripts/bench-openai` passes the two servers' URLs in
//! `INFERLINK_PEER_EMBED_URL` and `INFERLINK_PEER_GENERATE_URL`; without them
//! this bench starts the llama-cpp kind itself through the harness (or prints
//! `skipped: …` and exits 0). Output: `RESULT …` lines on stdout.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use inferlink::{
    ChatMessage, Connectors, EmbedRequest, GenerateRequest, InferenceConnector, ModelRef,
};
use inferlink_testkit::live::TestRecord;
use inferlink_testkit::peer_bench;
use inferlink_testkit::servers::{
    LLAMA_CPP_EMBEDDING_MODEL, LLAMA_CPP_GENERATION_MODEL, RunningServer, ServerKind,
};

/// Texts per request, on both sides, unless `INFERLINK_PEER_BATCH` says.
const DEFAULT_BATCH: usize = 32;
/// Requests in flight.
const CONCURRENCY: [usize; 3] = [1, 8, 32];
/// Warm-up requests before each client's first case.
const WARMUP: usize = 3;
/// Longest a throughput case may run.
const CASE_BUDGET: Duration = Duration::from_secs(120);
/// Samples of each side in the overhead and time-to-first-token loops.
const SAMPLES: usize = 40;
/// Longest the overhead or time-to-first-token loop may run.
const LOOP_BUDGET: Duration = Duration::from_secs(150);
/// The prompt of the time-to-first-token loop.
const PROMPT: &str = "Name one colour.";

/// The i-th short text of the corpus: the Python side builds the same.
fn text(i: usize) -> String {
    format!(
        "Document {i} is a short note about topic {} and item {}.",
        i % 97,
        i % 13
    )
}

fn main() {
    let texts: usize = std::env::var("INFERLINK_PEER_TEXTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let batch: usize = std::env::var("INFERLINK_PEER_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&b| b > 0)
        .unwrap_or(DEFAULT_BATCH);
    let mut _server: Option<RunningServer> = None;
    let (embed_url, generate_url) = match (
        std::env::var("INFERLINK_PEER_EMBED_URL"),
        std::env::var("INFERLINK_PEER_GENERATE_URL"),
    ) {
        (Ok(e), Ok(g)) => (e, g),
        _ => {
            let Some(server) = peer_bench::start_or_report(ServerKind::LlamaCpp) else {
                return;
            };
            let urls = (
                server.embedding_url().expect("embedding server"),
                server.http_url(),
            );
            _server = Some(server);
            urls
        }
    };
    let rt = peer_bench::runtime();
    let embedder = rt.block_on(connector(&embed_url, "embed"));
    let generator = rt.block_on(connector(&generate_url, "generate"));
    let requests: Vec<Vec<String>> = (0..texts)
        .map(text)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(<[String]>::to_vec)
        .collect();

    rt.block_on(overhead(&embedder, &embed_url, &requests[0]));
    rt.block_on(ttft(&generator, &generate_url));
    rt.block_on(async {
        for batch in requests.iter().take(WARMUP) {
            embed(&embedder, batch.clone()).await;
        }
    });
    for c in CONCURRENCY {
        let cpu_before = cpu_seconds();
        let (done, secs) = rt.block_on(throughput(embedder.clone(), requests.clone(), c));
        let cpu = cpu_seconds() - cpu_before;
        let sent: usize = requests.iter().take(done).map(Vec::len).sum();
        println!(
            "RESULT client=inferlink case=embed batch={batch} concurrency={c} requests={done} \
             texts={sent} seconds={secs:.3} rps={:.2} texts_per_s={:.1} cpu_s={cpu:.3} cpu_ms_per_request={:.3}",
            done as f64 / secs,
            sent as f64 / secs,
            cpu * 1e3 / done.max(1) as f64
        );
    }
}

/// A connector from an OpenAI-compatible `product: llama-cpp` record.
async fn connector(url: &str, task: &str) -> Arc<dyn InferenceConnector> {
    TestRecord::new(
        &format!("bench-{task}"),
        "llama-cpp",
        "0.3.36",
        "openai-compatible",
    )
    .service_id(task)
    .settings(&[("tasks", task), ("deadline_ms", "300000")])
    .endpoint(url)
    .connect(Connectors::new().with(inferlink_openai::factory()))
    .await
}

/// One embed call, checked: one vector per text.
async fn embed(connector: &Arc<dyn InferenceConnector>, texts: Vec<String>) {
    let count = texts.len();
    let model = ModelRef::new(LLAMA_CPP_EMBEDDING_MODEL);
    let answer = connector
        .embed(&model, EmbedRequest::new(texts))
        .await
        .expect("embed");
    assert_eq!(answer.vectors.len(), count);
}

/// Every request once, `concurrency` in flight; (requests done, seconds).
async fn throughput(
    connector: Arc<dyn InferenceConnector>,
    requests: Vec<Vec<String>>,
    concurrency: usize,
) -> (usize, f64) {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (connector, requests) = (connector.clone(), requests.clone());
        let (next, done) = (next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests.len() || start.elapsed() >= CASE_BUDGET {
                    break;
                }
                embed(&connector, requests[i].clone()).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

/// Connector vs a bare reqwest POST of the same body, one call at a time.
async fn overhead(connector: &Arc<dyn InferenceConnector>, url: &str, texts: &[String]) {
    let raw = reqwest::Client::new();
    let endpoint = format!("{}/v1/embeddings", url.trim_end_matches('/'));
    let body = serde_json::to_vec(&serde_json::json!({
        "model": LLAMA_CPP_EMBEDDING_MODEL,
        "input": texts,
        "encoding_format": "float",
    }))
    .expect("body");
    let raw_call = || async {
        let started = Instant::now();
        let response = raw_post(&raw, &endpoint, &body).await;
        let bytes = response.bytes().await.expect("raw body");
        assert!(!bytes.is_empty());
        started.elapsed()
    };
    let connector_call = || async {
        let request = texts.to_vec();
        let started = Instant::now();
        embed(connector, request).await;
        started.elapsed()
    };
    let (mut ours, mut theirs) = alternate(connector_call, raw_call).await;
    let (p50, raw50) = (percentile(&mut ours, 50), percentile(&mut theirs, 50));
    let (p99, raw99) = (percentile(&mut ours, 99), percentile(&mut theirs, 99));
    println!(
        "RESULT client=inferlink case=overhead batch={} samples={} connector_p50_ms={:.3} \
         raw_p50_ms={:.3} ratio_p50={:.4} connector_p99_ms={:.3} raw_p99_ms={:.3} ratio_p99={:.4}",
        texts.len(),
        ours.len(),
        ms(p50),
        ms(raw50),
        ms(p50) / ms(raw50),
        ms(p99),
        ms(raw99),
        ms(p99) / ms(raw99)
    );
}

/// Time to the first streamed text: `generate_stream` vs a raw SSE reader.
async fn ttft(connector: &Arc<dyn InferenceConnector>, url: &str) {
    let raw = reqwest::Client::new();
    let endpoint = format!("{}/v1/chat/completions", url.trim_end_matches('/'));
    let body = serde_json::to_vec(&serde_json::json!({
        "model": LLAMA_CPP_GENERATION_MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 4,
        "temperature": 0.0,
        "stream": true,
    }))
    .expect("body");
    let raw_call = || async {
        let started = Instant::now();
        let mut response = raw_post(&raw, &endpoint, &body).await;
        let mut seen = Vec::new();
        let mut first = None;
        while let Some(chunk) = response.chunk().await.expect("raw chunk") {
            seen.extend_from_slice(&chunk);
            if first.is_none() && has_text_event(&seen) {
                first = Some(started.elapsed());
            }
        }
        first.expect("an event with text")
    };
    let connector_call = || async {
        let model = ModelRef::new(LLAMA_CPP_GENERATION_MODEL);
        let request = GenerateRequest::chat([ChatMessage::user(PROMPT)])
            .max_tokens(4)
            .temperature(0.0);
        let started = Instant::now();
        let mut stream = connector
            .generate_stream(&model, request)
            .await
            .expect("generate_stream");
        let mut first = None;
        while let Some(delta) = stream.next().await {
            let delta = delta.expect("delta");
            if first.is_none() && !delta.text.is_empty() {
                first = Some(started.elapsed());
            }
        }
        first.expect("a delta with text")
    };
    let (mut ours, mut theirs) = alternate(connector_call, raw_call).await;
    let (p50, raw50) = (percentile(&mut ours, 50), percentile(&mut theirs, 50));
    println!(
        "RESULT client=inferlink case=ttft samples={} connector_p50_ms={:.3} raw_p50_ms={:.3} \
         added_p50_ms={:.3}",
        ours.len(),
        ms(p50),
        ms(raw50),
        ms(p50) - ms(raw50)
    );
}

/// Whether the bytes read so far hold a complete `data:` event whose
/// `choices[0].delta.content` is non-empty.
fn has_text_event(seen: &[u8]) -> bool {
    let text = String::from_utf8_lossy(seen);
    text.split("\n\n").any(|event| {
        event.lines().any(|line| {
            line.strip_prefix("data:")
                .map(str::trim)
                .filter(|data| *data != "[DONE]")
                .and_then(|data| serde_json::from_str::<serde_json::Value>(data).ok())
                .and_then(|v| {
                    v["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(|s| !s.is_empty())
                })
                .unwrap_or(false)
        })
    })
}

/// A bare POST of a prepared JSON body; asserts success.
async fn raw_post(client: &reqwest::Client, endpoint: &str, body: &[u8]) -> reqwest::Response {
    let response = client
        .post(endpoint)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("raw POST");
    assert!(response.status().is_success());
    response
}

/// One warm-up call of each, then up to [`SAMPLES`] timed calls of each,
/// alternating (and alternating which goes first, so load drift hits both),
/// within [`LOOP_BUDGET`]: (connector times, raw times).
async fn alternate<F, G, FutF, FutG>(
    connector_call: F,
    raw_call: G,
) -> (Vec<Duration>, Vec<Duration>)
where
    F: Fn() -> FutF,
    G: Fn() -> FutG,
    FutF: Future<Output = Duration>,
    FutG: Future<Output = Duration>,
{
    raw_call().await;
    connector_call().await;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let begun = Instant::now();
    for i in 0..SAMPLES {
        if begun.elapsed() >= LOOP_BUDGET {
            break;
        }
        if i % 2 == 0 {
            ours.push(connector_call().await);
            theirs.push(raw_call().await);
        } else {
            theirs.push(raw_call().await);
            ours.push(connector_call().await);
        }
    }
    (ours, theirs)
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    let rank = (p * samples.len()).div_ceil(100).max(1);
    samples[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
