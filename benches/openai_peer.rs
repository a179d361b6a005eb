//! The inferlink side of the OpenAI-compatible peer comparison
//! (`scripts/bench-openai`; method and figures in `docs/performance.md`,
//! "Embeddings and generation: inferlink-openai vs the openai Python client").
//!
//! Through an `inferlink-openai` connector built from a registered
//! `product: llama-cpp` record, as a host gets it. `INFERLINK_PEER_MODE` picks
//! what runs:
//!
//! * `measure` (the default): `loopback`, then against the real
//!   llama-cpp-python servers (URLs in `INFERLINK_PEER_EMBED_URL` and
//!   `INFERLINK_PEER_GENERATE_URL`; without them the harness's llama-cpp kind
//!   is started here, or `skipped: …` printed):
//!   - `overhead`: one request of `INFERLINK_PEER_BATCH` texts at a time, the
//!     connector's `embed` and a bare `reqwest` POST of the same body
//!     alternating (and alternating which goes first); p50/p99 of each, their
//!     ratio, and the median of the per-pair ratios.
//!   - `ttft`: time to the first streamed text, `generate_stream` vs a raw
//!     `reqwest` reader of the *same request bytes* (captured from the
//!     connector by the loopback stand-in), `INFERLINK_PEER_TTFT_SAMPLES`
//!     pairs (default 200), alternating; p50 of each, their difference, and
//!     the p50 of the paired differences.
//! * `loopback`: the same time-to-first-token comparison against a
//!   hand-written stand-in on 127.0.0.1 that answers at once with a canned
//!   event stream (`benches/peer/canned_sse.rs`), so what is measured is the
//!   client alone; each side's time is split at the stand-in's own clock into
//!   "until the request had arrived" and "after the first text was written".
//! * `worker`: the inferlink side of the interleaved embed comparison, driven
//!   by `benches/peer/openai_interleave.py`: after a warm-up it prints `READY`,
//!   then for each stdin line `embed CONCURRENCY START END` sends texts
//!   `START..END` in requests of `INFERLINK_PEER_BATCH` texts with
//!   `CONCURRENCY` in flight (tasks sharing one connector on a 2-worker
//!   runtime), bounded by [`ROUND_BUDGET`], and prints one `RESULT` line with
//!   the seconds and this process's CPU time (user + system, `getrusage`).
//!
//! Output: `RESULT …` lines on stdout.

#[path = "peer/canned_sse.rs"]
mod canned_sse;

use std::future::Future;
use std::io::BufRead as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use canned_sse::CannedSse;
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
/// Warm-up requests before the worker's first round.
const WARMUP: usize = 3;
/// Longest one worker round may run.
const ROUND_BUDGET: Duration = Duration::from_secs(300);
/// Pairs in the overhead loop, unless `INFERLINK_PEER_OVERHEAD_SAMPLES` says.
const OVERHEAD_SAMPLES: usize = 40;
/// Pairs in the real time-to-first-token loop, unless
/// `INFERLINK_PEER_TTFT_SAMPLES` says.
const TTFT_SAMPLES: usize = 200;
/// Pairs in the loopback time-to-first-token loop.
const LOOPBACK_SAMPLES: usize = 2_000;
/// Longest any one alternating loop may run.
const LOOP_BUDGET: Duration = Duration::from_secs(180);
/// The prompt of the time-to-first-token loops.
const PROMPT: &str = "Name one colour.";

/// The i-th short text of the corpus: the Python side builds the same.
fn text(i: usize) -> String {
    format!(
        "Document {i} is a short note about topic {} and item {}.",
        i % 97,
        i % 13
    )
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() {
    let batch = env_count("INFERLINK_PEER_BATCH", DEFAULT_BATCH);
    let mode = std::env::var("INFERLINK_PEER_MODE").unwrap_or_else(|_| "measure".into());
    let rt = peer_bench::runtime();
    match mode.as_str() {
        "worker" => {
            let url = std::env::var("INFERLINK_PEER_EMBED_URL")
                .expect("INFERLINK_PEER_EMBED_URL for the worker");
            worker(&rt, &url, batch);
        }
        "loopback" => {
            rt.block_on(loopback_ttft());
        }
        "measure" => {
            let body = rt.block_on(loopback_ttft());
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
            let embedder = rt.block_on(connector(&embed_url, "embed"));
            let generator = rt.block_on(connector(&generate_url, "generate"));
            let texts: Vec<String> = (0..batch).map(text).collect();
            rt.block_on(overhead(&embedder, &embed_url, &texts));
            rt.block_on(ttft(&generator, &generate_url, &body));
        }
        other => panic!("INFERLINK_PEER_MODE must be measure, loopback or worker, not {other}"),
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
    // The same per-request timeout as the Python side (`AsyncOpenAI(timeout=300.0)`): with
    // the transport's default of 60 s per attempt, a request queued behind others on a loaded
    // server was cut off and sent again while the server still computed the first copy.
    .settings(&[
        ("tasks", task),
        ("deadline_ms", "300000"),
        ("timeout_request_ms", "300000"),
    ])
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

/// The inferlink side of the interleaved comparison: rounds read from stdin.
fn worker(rt: &tokio::runtime::Runtime, url: &str, batch: usize) {
    let embedder = rt.block_on(connector(url, "embed"));
    rt.block_on(async {
        for _ in 0..WARMUP {
            embed(&embedder, (0..batch).map(text).collect()).await;
        }
    });
    println!("READY");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["embed", concurrency, start, end] = words.as_slice() else {
            if line.trim() == "quit" {
                return;
            }
            panic!("worker: expected `embed CONCURRENCY START END`, got {line:?}");
        };
        let (c, start, end): (usize, usize, usize) = (
            concurrency.parse().expect("concurrency"),
            start.parse().expect("start"),
            end.parse().expect("end"),
        );
        let requests: Vec<Vec<String>> = (start..end)
            .map(text)
            .collect::<Vec<_>>()
            .chunks(batch)
            .map(<[String]>::to_vec)
            .collect();
        let cpu_before = cpu_seconds();
        let (done, secs) = rt.block_on(throughput(embedder.clone(), requests.clone(), c));
        let cpu = cpu_seconds() - cpu_before;
        let sent: usize = requests.iter().take(done).map(Vec::len).sum();
        println!(
            "RESULT client=inferlink case=embed batch={batch} concurrency={c} start={start} \
             requests={done} texts={sent} seconds={secs:.4} cpu_s={cpu:.4}"
        );
    }
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
                if i >= requests.len() || start.elapsed() >= ROUND_BUDGET {
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
        ms(started.elapsed())
    };
    let connector_call = || async {
        let request = texts.to_vec();
        let started = Instant::now();
        embed(connector, request).await;
        ms(started.elapsed())
    };
    let samples = env_count("INFERLINK_PEER_OVERHEAD_SAMPLES", OVERHEAD_SAMPLES);
    let pairs = alternate(samples, connector_call, raw_call).await;
    let ours: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let theirs: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let ratios: Vec<f64> = pairs.iter().map(|(a, b)| a / b).collect();
    let (p50, raw50) = (percentile(&ours, 50), percentile(&theirs, 50));
    let (p99, raw99) = (percentile(&ours, 99), percentile(&theirs, 99));
    println!(
        "RESULT client=inferlink case=overhead batch={} samples={} connector_p50_ms={p50:.3} \
         raw_p50_ms={raw50:.3} ratio_p50={:.4} paired_ratio_p50={:.4} connector_p99_ms={p99:.3} \
         raw_p99_ms={raw99:.3} ratio_p99={:.4}",
        texts.len(),
        pairs.len(),
        p50 / raw50,
        percentile(&ratios, 50),
        p99 / raw99
    );
}

/// One time-to-first-token sample: the whole time and, on the loopback
/// stand-in, its two parts at the stand-in's clock.
#[derive(Debug, Clone, Copy)]
struct FirstToken {
    /// From the call to the first text (ms).
    total: f64,
    /// From the call until the stand-in had the whole request (ms).
    request: f64,
    /// From the stand-in's write of the first text to the client seeing it (ms).
    response: f64,
}

/// The chat of the time-to-first-token loops.
fn ttft_request() -> GenerateRequest {
    GenerateRequest::chat([ChatMessage::user(PROMPT)])
        .max_tokens(4)
        .temperature(0.0)
}

/// `generate_stream` until the first delta with text, then to the end;
/// (time to that delta, time to the stream's head).
async fn connector_first_token(connector: &Arc<dyn InferenceConnector>) -> (Instant, Instant) {
    let model = ModelRef::new(LLAMA_CPP_GENERATION_MODEL);
    let mut stream = connector
        .generate_stream(&model, ttft_request())
        .await
        .expect("generate_stream");
    let head = Instant::now();
    let mut first = None;
    while let Some(delta) = stream.next().await {
        let delta = delta.expect("delta");
        if first.is_none() && !delta.text.is_empty() {
            first = Some(Instant::now());
        }
    }
    (first.expect("a delta with text"), head)
}

/// A raw reqwest POST of `body` read until the first complete event with
/// text, then to the end; the instant that event was complete.
async fn raw_first_token(client: &reqwest::Client, endpoint: &str, body: &[u8]) -> Instant {
    let mut response = raw_post(client, endpoint, body).await;
    let mut seen = Vec::new();
    let mut first = None;
    while let Some(chunk) = response.chunk().await.expect("raw chunk") {
        seen.extend_from_slice(&chunk);
        if first.is_none() && has_text_event(&seen) {
            first = Some(Instant::now());
        }
    }
    first.expect("an event with text")
}

/// Time to the first streamed text against the loopback stand-in, the
/// connector vs a raw reader of the same bytes; returns the connector's
/// request body, for the raw client of the real-server loop.
async fn loopback_ttft() -> Vec<u8> {
    let canned = CannedSse::start();
    let generator = connector(&canned.url, "generate").await;
    connector_first_token(&generator).await;
    let body = canned.request_body(0).expect("the connector's request");
    let head = canned.request_head(0).unwrap_or_default();
    println!(
        "INFO connector request head: {}",
        head.replace("\r\n", " | ")
    );
    println!(
        "INFO connector request body: {}",
        String::from_utf8_lossy(&body)
    );
    let raw = reqwest::Client::new();
    let endpoint = format!("{}/v1/chat/completions", canned.url);
    let split = |started: Instant, first: Instant| {
        let times = canned.take_times().expect("the stand-in's times");
        FirstToken {
            total: ms(first - started),
            request: ms(times.request_read - started),
            response: ms(first.saturating_duration_since(times.text_written)),
        }
    };
    let connector_call = || async {
        let started = Instant::now();
        let (first, _) = connector_first_token(&generator).await;
        split(started, first)
    };
    let raw_call = || async {
        let started = Instant::now();
        let first = raw_first_token(&raw, &endpoint, &body).await;
        split(started, first)
    };
    let connections_before = canned.connections();
    let pairs = alternate(LOOPBACK_SAMPLES, connector_call, raw_call).await;
    println!(
        "INFO loopback: {} connections opened for {} pairs (a few when both clients keep theirs alive)",
        canned.connections() - connections_before,
        pairs.len()
    );
    let part = |pick: fn(&FirstToken) -> f64| {
        let ours: Vec<f64> = pairs.iter().map(|p| pick(&p.0)).collect();
        let theirs: Vec<f64> = pairs.iter().map(|p| pick(&p.1)).collect();
        let diffs: Vec<f64> = pairs.iter().map(|p| pick(&p.0) - pick(&p.1)).collect();
        (
            percentile(&ours, 50),
            percentile(&theirs, 50),
            percentile(&diffs, 50),
        )
    };
    let total_diffs: Vec<f64> = pairs.iter().map(|p| p.0.total - p.1.total).collect();
    let (total, raw_total, added) = part(|s| s.total);
    let (request, raw_request, added_request) = part(|s| s.request);
    let (response, raw_response, added_response) = part(|s| s.response);
    println!(
        "RESULT client=inferlink case=ttft-loopback samples={} connector_p50_ms={total:.4} \
         raw_p50_ms={raw_total:.4} paired_added_p50_ms={added:.4} paired_added_p50_ci95_ms={} \
         connector_request_p50_ms={request:.4} raw_request_p50_ms={raw_request:.4} \
         paired_added_request_p50_ms={added_request:.4} connector_response_p50_ms={response:.4} \
         raw_response_p50_ms={raw_response:.4} paired_added_response_p50_ms={added_response:.4}",
        pairs.len(),
        ci_text(&total_diffs),
    );
    body
}

/// Time to the first streamed text against the real server: the connector
/// vs a raw reader posting `body` (the connector's own request bytes).
async fn ttft(connector: &Arc<dyn InferenceConnector>, url: &str, body: &[u8]) {
    let raw = reqwest::Client::new();
    let endpoint = format!("{}/v1/chat/completions", url.trim_end_matches('/'));
    let raw_call = || async {
        let started = Instant::now();
        ms(raw_first_token(&raw, &endpoint, body).await - started)
    };
    let connector_call = || async {
        let started = Instant::now();
        ms(connector_first_token(connector).await.0 - started)
    };
    let samples = env_count("INFERLINK_PEER_TTFT_SAMPLES", TTFT_SAMPLES);
    let pairs = alternate(samples, connector_call, raw_call).await;
    let ours: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let theirs: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let diffs: Vec<f64> = pairs.iter().map(|(a, b)| a - b).collect();
    let (p50, raw50) = (percentile(&ours, 50), percentile(&theirs, 50));
    println!(
        "RESULT client=inferlink case=ttft samples={} connector_p50_ms={p50:.3} \
         raw_p50_ms={raw50:.3} added_p50_ms={:.3} paired_added_p25_ms={:.3} \
         paired_added_p50_ms={:.3} paired_added_p50_ci95_ms={} paired_added_p75_ms={:.3}",
        pairs.len(),
        p50 - raw50,
        percentile(&diffs, 25),
        percentile(&diffs, 50),
        ci_text(&diffs),
        percentile(&diffs, 75),
    );
}

/// Whether the bytes read so far hold a complete `data:` event whose
/// `choices[0].delta.content` is non-empty.
fn has_text_event(seen: &[u8]) -> bool {
    let text = String::from_utf8_lossy(seen);
    let complete = text.rfind("\n\n").map_or("", |end| &text[..end]);
    complete.split("\n\n").any(|event| {
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

/// One warm-up call of each, then up to `samples` pairs (connector, raw),
/// alternating which goes first so load drift hits both, within
/// [`LOOP_BUDGET`].
async fn alternate<T, F, G, FutF, FutG>(
    samples: usize,
    connector_call: F,
    raw_call: G,
) -> Vec<(T, T)>
where
    F: Fn() -> FutF,
    G: Fn() -> FutG,
    FutF: Future<Output = T>,
    FutG: Future<Output = T>,
{
    raw_call().await;
    connector_call().await;
    let mut pairs = Vec::with_capacity(samples);
    let begun = Instant::now();
    for i in 0..samples {
        if begun.elapsed() >= LOOP_BUDGET {
            break;
        }
        if i % 2 == 0 {
            let ours = connector_call().await;
            pairs.push((ours, raw_call().await));
        } else {
            let theirs = raw_call().await;
            pairs.push((connector_call().await, theirs));
        }
    }
    pairs
}

/// A distribution-free 95 % confidence interval for the median of
/// `samples` (order statistics n/2 ± 0.98·√n, 1-based), or `None` under 10.
fn median_ci95(samples: &[f64]) -> Option<(f64, f64)> {
    let n = samples.len();
    if n < 10 {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let half = 0.98 * (n as f64).sqrt();
    let lo = ((n as f64 / 2.0 - half).floor() as usize).max(1);
    let hi = ((n as f64 / 2.0 + half).ceil() as usize + 1).min(n);
    Some((sorted[lo - 1], sorted[hi - 1]))
}

/// `lo..hi` of [`median_ci95`], or `n/a`.
fn ci_text(samples: &[f64]) -> String {
    median_ci95(samples).map_or("n/a".into(), |(lo, hi)| format!("{lo:.3}..{hi:.3}"))
}

/// Nearest-rank percentile.
fn percentile(samples: &[f64], p: usize) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
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
