//! What a blueprint costs over the typed connector: `embed` of 1 000 texts
//! through the shipped `openai-compatible` blueprint and through
//! `inferlink-openai`, on the same server, alternating, medians.
//!
//! 1. Against a loopback stand-in (`FaultServer`) that answers every
//!    request at once with 50 vectors of 384 numbers: what remains is the
//!    client's work (template rendering, JSON, response mapping, transport).
//! 2. Against the harness's real llama-cpp-python embedding server
//!    (all-MiniLM-L6-v2), when it is installed: the server sets the pace.
//!
//! Run: `cargo bench -p inferlink-blueprint --bench blueprint_vs_openai`
//! (`BLUEPRINT_BENCH_ROUNDS`, default 30, for the stand-in;
//! `BLUEPRINT_BENCH_SERVER_ROUNDS`, default 3, against the server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use inferlink::{ConnectTarget, Connectors, EmbedRequest, InferenceConnector, ModelRef};
use inferlink_testkit::fault::{Fault, FaultOptions, FaultServer};
use inferlink_testkit::servers::{self, LLAMA_CPP_EMBEDDING_MODEL, ServerKind};

const TEXTS: usize = 1000;

fn texts() -> Vec<String> {
    (0..TEXTS)
        .map(|i| {
            format!(
                "Passage {i} about the topic number {} and a few more words.",
                i % 37
            )
        })
        .collect()
}

/// The blueprint's and the typed connector's records for `url` (the API base, with /v1).
async fn pair(url: &str, settings: &[(&str, &str)]) -> [Arc<dyn InferenceConnector>; 2] {
    let connectors = Connectors::new()
        .with(inferlink_blueprint::factory())
        .with(inferlink_openai::factory());
    let mut blueprint =
        ConnectTarget::new("http", url).with_plain("blueprint", "openai-compatible");
    let mut typed = ConnectTarget::new("llama-cpp", url);
    for (key, value) in settings {
        blueprint = blueprint.with_plain(*key, *value);
        typed = typed.with_plain(*key, *value);
    }
    [
        connectors
            .connect(&blueprint)
            .await
            .expect("blueprint connects"),
        connectors.connect(&typed).await.expect("typed connects"),
    ]
}

/// Median and 90th percentile of `samples`.
fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

/// Runs `rounds` alternating embeds of the texts and prints the comparison.
async fn compare(
    label: &str,
    connectors: &[Arc<dyn InferenceConnector>; 2],
    model: &ModelRef,
    rounds: usize,
) {
    let texts = texts();
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Alternate who goes first, so drift in the machine's load is shared.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let started = Instant::now();
            let answer = connectors[which]
                .embed(model, EmbedRequest::new(texts.clone()))
                .await
                .expect("embed");
            times[which].push(started.elapsed());
            assert_eq!(answer.vectors.len(), TEXTS);
        }
    }
    let [blueprint, typed] = times;
    let (b50, b90) = summary(blueprint);
    let (t50, t90) = summary(typed);
    let ratio = b50.as_secs_f64() / t50.as_secs_f64();
    println!(
        "| {label} | {rounds} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:+.1} % |",
        t50.as_secs_f64() * 1e3,
        t90.as_secs_f64() * 1e3,
        b50.as_secs_f64() * 1e3,
        b90.as_secs_f64() * 1e3,
        (ratio - 1.0) * 100.0
    );
}

fn answer_of(vectors: usize, dimensions: usize) -> String {
    let vector: Vec<String> = (0..dimensions)
        .map(|d| format!("{:.7}", (d as f32 * 0.37).sin() * 0.1))
        .collect();
    let vector = vector.join(",");
    let data: Vec<String> = (0..vectors)
        .map(|i| format!(r#"{{"object":"embedding","index":{i},"embedding":[{vector}]}}"#))
        .collect();
    let tokens = vectors * 12;
    format!(
        r#"{{"object":"list","model":"m","data":[{}],"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}"#,
        data.join(","),
    )
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("BLUEPRINT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    println!(
        "| server | rounds | typed p50 | typed p90 | blueprint p50 | blueprint p90 | blueprint over typed (p50) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let options = FaultOptions {
        fallback: Fault::json(200, &answer_of(50, 384)),
        ..FaultOptions::default()
    };
    let stand_in = FaultServer::start_with([], options)
        .await
        .expect("stand-in");
    let url = format!("{}/v1", stand_in.url());
    let settings = [("embed_max_items", "50"), ("embed_concurrency", "4")];
    let connectors = pair(&url, &settings).await;
    let model = ModelRef::new("m");
    compare(
        "stand-in (instant answers, 20 requests of 50)",
        &connectors,
        &model,
        3,
    )
    .await;
    compare(
        "stand-in (instant answers, 20 requests of 50)",
        &connectors,
        &model,
        rounds,
    )
    .await;
    drop(stand_in);

    let server = tokio::task::spawn_blocking(|| servers::shared_or_skip(ServerKind::LlamaCpp))
        .await
        .expect("starting llama-cpp");
    let Some(server) = server else {
        println!("(llama-cpp is not installed: no real-server row)");
        return;
    };
    let url = format!("{}/v1", server.embedding_url().expect("embedding URL"));
    let settings = [("timeout_request_ms", "300000"), ("deadline_ms", "600000")];
    let connectors = pair(&url, &settings).await;
    let model = ModelRef::new(LLAMA_CPP_EMBEDDING_MODEL);
    let server_rounds: usize = std::env::var("BLUEPRINT_BENCH_SERVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let label = "llama-cpp-python 0.3.36, all-MiniLM-L6-v2";
    compare(label, &connectors, &model, server_rounds).await;
}
