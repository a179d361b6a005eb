//! The OpenAI-compatible connector against the real-server harness's
//! `llama-cpp` kind: llama-cpp-python 0.3.36's `llama_cpp.server`, one
//! process serving SmolLM2-135M-Instruct (generation) and one serving
//! all-MiniLM-L6-v2 (embeddings, 384 dimensions), both on 127.0.0.1. A
//! missing venv skips with a visible line, or fails under
//! `INFERLINK_REQUIRE_LIVE=1`.
//!
//! The connectors come from registered records, as a host gets them (product
//! `llama-cpp`, one service per server, `tasks` saying which calls each
//! answers). What this server cannot show (Azure, throttling headers, errors
//! in the middle of a stream, rerank) is in `fake_openai_wire.rs`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use inferlink::{
    ChatMessage, Connectors, EmbedRequest, ErrorKind, GenerateRequest, InferenceConnector,
    ModelRef, RerankRequest, Selector,
};
use inferlink_testkit::connector::{
    CheckStatus, ConformanceSpec, EmbedCase, GenerateCase, run_connector_conformance,
};
use inferlink_testkit::live;
use inferlink_testkit::servers::{
    self, LLAMA_CPP_EMBEDDING_DIMENSIONS, LLAMA_CPP_EMBEDDING_MODEL, LLAMA_CPP_GENERATION_MODEL,
    RunningServer, ServerKind,
};

/// Sent as a bearer token; the harness's servers run without `--api_key`, so
/// they ignore it, and the suite checks that it shows nowhere.
const API_KEY: &str = "sk-live-llama-7e41b2";

async fn server() -> Option<&'static RunningServer> {
    tokio::task::spawn_blocking(|| servers::shared_or_skip(ServerKind::LlamaCpp))
        .await
        .expect("starting llama-cpp")
}

/// A connector for one service of a registered `llama-cpp` record: `embed`
/// (the embedding server, `tasks: embed`) or `generate` (the generation
/// server, `tasks: generate`), with `settings` added to its configuration.
async fn connect(
    server: &RunningServer,
    task: &str,
    settings: &str,
) -> Arc<dyn InferenceConnector> {
    connect_as(server, task, task, settings).await
}

/// [`connect`] to the server of `task` with the record saying `tasks`.
async fn connect_as(
    server: &RunningServer,
    task: &str,
    tasks: &str,
    settings: &str,
) -> Arc<dyn InferenceConnector> {
    let url = match task {
        "embed" => server.embedding_url().expect("the embedding server's URL"),
        _ => server.http_url(),
    };
    let record = format!(
        r#"
id: llama-cpp-0001
product: llama-cpp
version: "0.3.36"
services:
  - id: {task}
    resource: openai-compatible
    category: text-{task}
    configuration:
      tasks: {tasks}
      deadline_ms: "120000"
      timeout_request_ms: "120000"
{settings}
    credentials:
      - id: key
        scope: global
        configuration:
          api_key: {API_KEY}
    endpoints:
      - url: {url}/v1
"#
    );
    let category = format!("text-{task}");
    let resolution = live::resolve_record(&record, &Selector::category(&category)).await;
    Connectors::new()
        .with(inferlink_openai::factory())
        .connect(&resolution)
        .await
        .unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn embedder() -> ModelRef {
    ModelRef::new(LLAMA_CPP_EMBEDDING_MODEL)
}

fn generator() -> ModelRef {
    ModelRef::new(LLAMA_CPP_GENERATION_MODEL)
}

fn capital_question() -> GenerateRequest {
    GenerateRequest::chat([ChatMessage::user(
        "What is the capital of France? Answer in one word.",
    )])
    .max_tokens(16)
    .temperature(0.0)
}

/// Runs the conformance suite on one server's connector with `spec` (plus
/// the key as a secret) and checks that the named checks ran and passed.
async fn conformance(
    connector: Arc<dyn InferenceConnector>,
    spec: ConformanceSpec,
    names: &[&str],
) {
    let spec = spec.secret(API_KEY).call_timeout(Duration::from_secs(120));
    let report = run_connector_conformance(connector.as_ref(), &spec).await;
    println!("{report}");
    report.assert_passed();
    for name in names.iter().chain(&["models", "secrets_in_errors"]) {
        assert_eq!(
            report.status(name),
            Some(&CheckStatus::Passed),
            "{name}\n{report}"
        );
    }
}

#[tokio::test]
async fn conformance_of_the_embedding_server() {
    let Some(server) = server().await else { return };
    let case = EmbedCase::new(embedder()).dimensions(LLAMA_CPP_EMBEDDING_DIMENSIONS);
    let names = [
        "embed",
        "embed/similarity",
        "embed/empty",
        "rerank",
        "generate",
    ];
    conformance(
        connect(server, "embed", "").await,
        ConformanceSpec::new().embed(case),
        &names,
    )
    .await;
}

#[tokio::test]
async fn conformance_of_the_generation_server() {
    let Some(server) = server().await else { return };
    let case = GenerateCase::new(generator(), capital_question());
    let names = ["generate", "stream_generate", "embed", "rerank"];
    let spec = ConformanceSpec::new().generate(case);
    conformance(connect(server, "generate", "").await, spec, &names).await;
}

#[tokio::test]
async fn embeddings_split_into_parts_come_back_in_order() {
    let Some(server) = server().await else { return };
    let texts: Vec<String> = (0..7)
        .map(|i| format!("Document number {i} talks about topic {}.", i * 7 % 5))
        .collect();
    let whole = connect(server, "embed", "").await;
    let at_once = whole
        .embed(&embedder(), EmbedRequest::new(texts.clone()))
        .await
        .unwrap();
    let split = connect(
        server,
        "embed",
        "      embed_max_items: \"2\"\n      embed_concurrency: \"2\"",
    )
    .await;
    let parts = split
        .embed(&embedder(), EmbedRequest::new(texts.clone()))
        .await
        .unwrap();
    assert_eq!(parts.vectors.len(), 7);
    assert_eq!(parts.dimensions, LLAMA_CPP_EMBEDDING_DIMENSIONS);
    // The same text in another batch differs in the 4th decimal on this
    // server (batch layout), so compare directions, and the order is what
    // the split could get wrong: each part's vector must match its own text
    // better than any other's.
    for (i, a) in parts.vectors.iter().enumerate() {
        let scores: Vec<f32> = at_once.vectors.iter().map(|b| cosine(a, b)).collect();
        assert!(scores[i] > 0.9999, "vector {i}: {scores:?}");
        let best = (0..7).max_by(|&x, &y| scores[x].total_cmp(&scores[y]));
        assert_eq!(
            best,
            Some(i),
            "vector {i} matches text {best:?}: {scores:?}"
        );
    }
    // Usage is summed over the four parts and equals the one-request count
    // (the server counts [CLS] and [SEP] per text).
    let (one, summed) = (at_once.usage.unwrap(), parts.usage.unwrap());
    assert!(one.prompt_tokens.unwrap_or(0) > 0, "{one:?}");
    assert_eq!(one.prompt_tokens, summed.prompt_tokens);
}

/// The server's vectors are not normalised (norms about 5); `normalize`
/// makes them unit length on the client.
#[tokio::test]
async fn normalised_vectors_have_unit_length() {
    let Some(server) = server().await else { return };
    let c = connect(server, "embed", "").await;
    let text = "A short sentence about rivers.";
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let raw = c
        .embed(&embedder(), EmbedRequest::new([text]))
        .await
        .unwrap();
    assert!(
        norm(&raw.vectors[0]) > 1.5,
        "the server normalises now: {}",
        norm(&raw.vectors[0])
    );
    assert_eq!(raw.normalized, None);
    let unit = c
        .embed(&embedder(), EmbedRequest::new([text]).normalize(true))
        .await
        .unwrap();
    assert!((norm(&unit.vectors[0]) - 1.0).abs() < 1e-4);
    assert_eq!(unit.normalized, Some(true));
    assert!(cosine(&raw.vectors[0], &unit.vectors[0]) > 0.9999);
}

#[tokio::test]
async fn a_text_over_the_byte_limit_is_refused_before_sending() {
    let Some(server) = server().await else { return };
    let c = connect(server, "embed", "      embed_max_bytes: \"64\"").await;
    let texts = ["short".to_owned(), "long ".repeat(20)];
    let e = c
        .embed(&embedder(), EmbedRequest::new(texts))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.context("items")),
        (ErrorKind::InvalidInput, Some("1"))
    );
}

#[tokio::test]
async fn a_chat_over_the_context_is_invalid_input_with_the_servers_words() {
    let Some(server) = server().await else { return };
    let c = connect(server, "generate", "").await;
    // SmolLM2 runs with a 2048-token context; 3000 words do not fit.
    let long = GenerateRequest::chat([ChatMessage::user("word ".repeat(3000))]).max_tokens(8);
    let e = c.generate(&generator(), long).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.context("vendor_code"),
        Some("context_length_exceeded"),
        "{e}"
    );
    assert_eq!(e.context("param"), Some("messages"), "{e}");
    let said = e.vendor_message().unwrap_or_default();
    assert!(said.contains("maximum context length is 2048"), "{e}");
    assert_eq!(
        (e.vendor(), e.model()),
        (Some("openai"), Some(LLAMA_CPP_GENERATION_MODEL))
    );
    // Streamed, this server answers 200 and an event stream that ends with
    // no event at all (the error stays in its log): one Protocol item.
    let long = GenerateRequest::chat([ChatMessage::user("word ".repeat(3000))]).max_tokens(8);
    let stream = c.generate_stream(&generator(), long).await.unwrap();
    let items: Vec<_> = stream.take(10).collect().await;
    assert_eq!(items.len(), 1, "{items:?}");
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.message().contains("before [DONE]"), "{e}");
}

#[tokio::test]
async fn chat_and_prompt_generation_answer_with_usage() {
    let Some(server) = server().await else { return };
    let c = connect(server, "generate", "").await;
    let answer = c.generate(&generator(), capital_question()).await.unwrap();
    assert!(answer.text.contains("Paris"), "{answer:?}");
    assert!(answer.finish_reason.is_some(), "{answer:?}");
    let usage = answer.usage.unwrap();
    assert!(usage.prompt_tokens.unwrap_or(0) > 0 && usage.completion_tokens.unwrap_or(0) > 0);
    let prompt = GenerateRequest::prompt("The capital of France is")
        .max_tokens(4)
        .temperature(0.0);
    let completed = c.generate(&generator(), prompt).await.unwrap();
    assert!(!completed.text.is_empty(), "{completed:?}");
    assert_eq!(
        completed.finish_reason,
        Some(inferlink::FinishReason::Length)
    );
}

#[tokio::test]
async fn a_streamed_chat_arrives_in_pieces_and_joins_to_the_answer() {
    let Some(server) = server().await else { return };
    let c = connect(server, "generate", "").await;
    let stream = c
        .generate_stream(&generator(), capital_question())
        .await
        .unwrap();
    let pieces: Vec<_> = stream.take(1000).collect().await;
    let pieces: Vec<_> = pieces.into_iter().map(|p| p.unwrap()).collect();
    assert!(pieces.len() >= 2, "{pieces:?}");
    let text: String = pieces.iter().map(|p| p.text.as_str()).collect();
    assert!(text.contains("Paris"), "{text:?}");
    assert!(pieces.last().unwrap().finish_reason.is_some(), "{pieces:?}");
}

#[tokio::test]
async fn the_server_quirks() {
    let Some(server) = server().await else { return };
    let generation = connect(server, "generate", "").await;
    // /v1/models lists the one alias each server was started with.
    let models = generation.models().await.unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [LLAMA_CPP_GENERATION_MODEL]);
    // This server has no rerank endpoint: a record that says it reranks gets
    // the 404 (FastAPI's, no OpenAI envelope) as Unsupported.
    let rerank = connect_as(server, "generate", "rerank", "").await;
    let e = rerank
        .rerank(&generator(), RerankRequest::new("q", ["a document"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    // An option it does not know is refused when it collides with ours, before sending.
    let sneaky = capital_question().extra("stream", true.into());
    let e = generation.generate(&generator(), sneaky).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
