//! The shipped `openai-compatible` blueprint against the real-server
//! harness's `llama-cpp` kind (llama-cpp-python's OpenAI-compatible server:
//! SmolLM2-135M-Instruct for generation, all-MiniLM-L6-v2 for embeddings,
//! both on 127.0.0.1), side by side with the typed `inferlink-openai`
//! connector on the same servers: the answers must be identical. A missing
//! venv skips with a visible line, or fails under `INFERLINK_REQUIRE_LIVE=1`.
//!
//! Both connectors come from registered records, as a host gets them: the
//! blueprint's with product `http` and `blueprint: openai-compatible`.

use std::sync::Arc;

use inferlink::{ChatMessage, Connectors, EmbedRequest, ErrorKind, GenerateRequest};
use inferlink::{InferenceConnector, ModelRef};
use inferlink_testkit::live::{TestRecord, shared_server};
use inferlink_testkit::servers::{LLAMA_CPP_EMBEDDING_DIMENSIONS, LLAMA_CPP_EMBEDDING_MODEL};
use inferlink_testkit::servers::{LLAMA_CPP_GENERATION_MODEL, RunningServer, ServerKind};

/// Sent as a bearer token (the harness's servers ignore it).
const API_KEY: &str = "sk-live-blueprint-51d0aa";

/// The blueprint connector and the typed connector for the server of
/// `task` (`embed` or `generate`), each from a registered record.
async fn both(server: &RunningServer, task: &str) -> [Arc<dyn InferenceConnector>; 2] {
    let url = match task {
        "embed" => server.embedding_url().expect("the embedding server's URL"),
        _ => server.http_url(),
    };
    let connectors = Connectors::new()
        .with(inferlink_blueprint::factory())
        .with(inferlink_openai::factory());
    let record = |product: &str| {
        TestRecord::new(
            &format!("{product}-{task}-0001"),
            product,
            "0.3.36",
            "openai-compatible",
        )
        .settings(&[("deadline_ms", "120000"), ("timeout_request_ms", "120000")])
        .credential("key", Some("global"), &[("api_key", API_KEY)])
        .endpoint(&format!("{url}/v1"))
    };
    let blueprint = record("http").setting("blueprint", "openai-compatible");
    [
        blueprint.connect(connectors.clone()).await,
        record("llama-cpp").connect(connectors).await,
    ]
}

#[tokio::test]
async fn embeddings_through_the_blueprint_equal_the_typed_connectors() {
    let Some(server) = shared_server(ServerKind::LlamaCpp).await else {
        return;
    };
    let [blueprint, typed] = both(server, "embed").await;
    assert_eq!(blueprint.info().vendor, "blueprint");
    assert_eq!(blueprint.info().protocol, "openai-compatible");
    let model = ModelRef::new(LLAMA_CPP_EMBEDDING_MODEL);
    let texts: Vec<String> = (0..70)
        .map(|i| {
            format!(
                "Passage {i}: \"quoted\" {{braces}} ${{model}} about topic {}.",
                i % 9
            )
        })
        .collect();
    let request = EmbedRequest::new(texts.clone());
    let ours = blueprint.embed(&model, request.clone()).await.unwrap();
    let theirs = typed.embed(&model, request).await.unwrap();
    // 70 texts: two requests each (64 + 6), the same parts, the same bodies.
    assert_eq!(ours.vectors.len(), 70);
    assert_eq!(ours.dimensions, LLAMA_CPP_EMBEDDING_DIMENSIONS);
    assert_eq!(ours.vectors, theirs.vectors, "vectors differ");
    assert_eq!(ours.usage, theirs.usage);
    assert!(ours.usage.and_then(|u| u.prompt_tokens).unwrap_or(0) > 0);
    // Client-side unit length, as the typed connector does it.
    let unit = EmbedRequest::new(texts[..3].to_vec()).normalize(true);
    let ours = blueprint.embed(&model, unit.clone()).await.unwrap();
    let theirs = typed.embed(&model, unit).await.unwrap();
    assert_eq!(ours.normalized, Some(true));
    for (a, b) in ours.vectors.iter().zip(&theirs.vectors) {
        let gap = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(gap < 1e-6, "unit vectors differ by {gap}");
    }
}

/// A chat with one short, deterministic answer.
fn capital_question() -> GenerateRequest {
    GenerateRequest::chat([
        ChatMessage::system("Answer briefly."),
        ChatMessage::user("What is the capital of France? Answer in one word."),
    ])
    .max_tokens(16)
    .temperature(0.0)
    .seed(7)
}

#[tokio::test]
async fn generation_through_the_blueprint_equals_the_typed_connectors() {
    let Some(server) = shared_server(ServerKind::LlamaCpp).await else {
        return;
    };
    let [blueprint, typed] = both(server, "generate").await;
    let model = ModelRef::new(LLAMA_CPP_GENERATION_MODEL);
    let chat = capital_question();
    let ours = blueprint.generate(&model, chat.clone()).await.unwrap();
    let theirs = typed.generate(&model, chat).await.unwrap();
    assert!(ours.text.contains("Paris"), "{ours:?}");
    assert_eq!(ours, theirs);
    let prompt = GenerateRequest::prompt("The capital of France is")
        .max_tokens(6)
        .temperature(0.0)
        .stop("\n");
    let ours = blueprint.generate(&model, prompt.clone()).await.unwrap();
    let theirs = typed.generate(&model, prompt).await.unwrap();
    assert!(!ours.text.is_empty());
    assert_eq!(ours, theirs);
    // The server's own error, the same for both: a chat over the context.
    let long = GenerateRequest::chat([ChatMessage::user("word ".repeat(3000))]).max_tokens(8);
    let e = blueprint.generate(&model, long).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!e.to_string().contains(API_KEY));
    assert_eq!(e.model(), Some(LLAMA_CPP_GENERATION_MODEL));
}

/// The pieces of a stream (at most 1 000), every one an answer.
async fn streamed(
    connector: &Arc<dyn InferenceConnector>,
    request: GenerateRequest,
) -> Vec<inferlink::GenerateDelta> {
    use futures_util::StreamExt;
    let model = ModelRef::new(LLAMA_CPP_GENERATION_MODEL);
    let stream = connector.generate_stream(&model, request).await.unwrap();
    let items: Vec<_> = stream.take(1000).collect().await;
    items.into_iter().map(|item| item.unwrap()).collect()
}

fn joined(pieces: &[inferlink::GenerateDelta]) -> String {
    pieces.iter().map(|p| p.text.as_str()).collect()
}

#[tokio::test]
async fn streamed_generation_through_the_blueprint_equals_the_typed_connectors() {
    let Some(server) = shared_server(ServerKind::LlamaCpp).await else {
        return;
    };
    let [blueprint, typed] = both(server, "generate").await;
    assert!(blueprint.as_streaming_generation().is_some());
    let chat = capital_question();
    let ours = streamed(&blueprint, chat.clone()).await;
    let theirs = streamed(&typed, chat).await;
    println!(
        "chat: {} pieces through the blueprint, {} through inferlink-openai: {:?}",
        ours.len(),
        theirs.len(),
        joined(&ours)
    );
    assert!(ours.len() >= 2, "{ours:?}");
    assert!(joined(&ours).contains("Paris"), "{ours:?}");
    assert_eq!(joined(&ours), joined(&theirs));
    let finish = |pieces: &[inferlink::GenerateDelta]| {
        pieces.iter().rev().find_map(|p| p.finish_reason.clone())
    };
    assert!(finish(&ours).is_some(), "{ours:?}");
    assert_eq!(finish(&ours), finish(&theirs));
    let prompt = GenerateRequest::prompt("The capital of France is")
        .max_tokens(6)
        .temperature(0.0)
        .stop("\n");
    let ours = streamed(&blueprint, prompt.clone()).await;
    let theirs = streamed(&typed, prompt).await;
    println!(
        "prompt: {} pieces through the blueprint: {:?}",
        ours.len(),
        joined(&ours)
    );
    assert!(!joined(&ours).is_empty());
    assert_eq!(joined(&ours), joined(&theirs));
    assert_eq!(finish(&ours), finish(&theirs));
    // Over the context, this server answers 200 and a stream with no event:
    // one Protocol item, as through the typed connector.
    use futures_util::StreamExt;
    let long = GenerateRequest::chat([ChatMessage::user("word ".repeat(3000))]).max_tokens(8);
    let model = ModelRef::new(LLAMA_CPP_GENERATION_MODEL);
    let stream = blueprint.generate_stream(&model, long).await.unwrap();
    let items: Vec<_> = stream.take(10).collect().await;
    assert_eq!(items.len(), 1, "{items:?}");
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert_eq!(e.model(), Some(LLAMA_CPP_GENERATION_MODEL));
}
