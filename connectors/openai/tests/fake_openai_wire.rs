//! Wire tests against a stand-in written from the OpenAI and Azure OpenAI
//! API references, for what the real llama-cpp-python server of the
//! harness cannot show: Azure's deployment paths, `api-version` and
//! `api-key` header, OpenAI's organisation/project headers, throttling
//! answers with `Retry-After` and `x-ratelimit-*` headers, quota and
//! context-length errors, an error in the middle of a stream, streams cut
//! anywhere or cut short, base64 vectors, and the rerank endpoint (no real
//! rerank server in the harness).
//!
//! The stand-in is `inferlink_testkit::fault::FaultServer` on 127.0.0.1:
//! it answers each request with the next canned answer of a script and
//! records what it received. The canned bodies are written from the API
//! references (`platform.openai.com/docs/api-reference`,
//! `learn.microsoft.com/azure/ai-services/openai/reference`), not captured
//! from a server.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use inferlink::{
    ChatMessage, ConnectTarget, Connectors, EmbedRequest, ErrorKind, FinishReason, GenerateRequest,
    InferenceConnector, ModelRef, RerankRequest,
};
use inferlink_testkit::fault::{Fault, FaultServer};

const KEY: &str = "sk-standin-4f1d9c";

async fn connect(target: ConnectTarget) -> Arc<dyn InferenceConnector> {
    let connectors = Connectors::new().with(inferlink_openai::factory());
    connectors.connect(&target).await.expect("connects")
}

fn target(product: &str, server: &FaultServer) -> ConnectTarget {
    ConnectTarget::new(product, server.url())
        .with_secret("api_key", KEY)
        .with_plain("retry_max_attempts", "1")
}

fn chat() -> GenerateRequest {
    GenerateRequest::chat([ChatMessage::user("What is the capital of France?")]).max_tokens(8)
}

fn sse(events: &[&str]) -> Vec<u8> {
    events
        .iter()
        .map(|e| format!("data: {e}\n\n"))
        .collect::<String>()
        .into_bytes()
}

const COMPLETION: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":2,"total_tokens":16}}"#;

fn embeddings(vectors: &[&str]) -> String {
    let data: Vec<String> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| format!(r#"{{"object":"embedding","index":{i},"embedding":{v}}}"#))
        .collect();
    format!(
        r#"{{"object":"list","data":[{}],"usage":{{"prompt_tokens":3,"total_tokens":3}}}}"#,
        data.join(",")
    )
}

#[tokio::test]
async fn azure_uses_deployment_paths_api_version_and_the_api_key_header() {
    let server = FaultServer::start([
        Fault::json(200, COMPLETION),
        Fault::json(200, &embeddings(&["[0.5,0.5]"])),
    ])
    .await
    .unwrap();
    let azure =
        connect(target("azure-openai", &server).with_plain("api_version", "2025-01-01")).await;
    assert_eq!(azure.info().protocol, "azure-openai");
    assert!(!azure.capabilities().list_models && !azure.capabilities().rerank);
    let model = ModelRef::new("gpt 4o/mini");
    let answer = azure.generate(&model, chat()).await.unwrap();
    assert_eq!(
        (answer.text.as_str(), answer.finish_reason),
        ("Paris.", Some(FinishReason::Stop))
    );
    azure.embed(&model, EmbedRequest::new(["x"])).await.unwrap();
    let sent = server.recorded();
    assert_eq!(
        sent[0].target,
        "/openai/deployments/gpt%204o%2Fmini/chat/completions?api-version=2025-01-01"
    );
    assert_eq!(
        sent[1].target,
        "/openai/deployments/gpt%204o%2Fmini/embeddings?api-version=2025-01-01"
    );
    assert_eq!(sent[0].header("api-key"), Some(KEY));
    assert_eq!(sent[0].header("authorization"), None);
    assert!(!format!("{azure:?}").contains(KEY));
}

#[tokio::test]
async fn openai_sends_bearer_organization_and_project_under_v1() {
    let server = FaultServer::start([Fault::json(200, &embeddings(&["[1,0]", "[0,1]"]))])
        .await
        .unwrap();
    let t = target("openai", &server)
        .with_plain("organization", "org-42")
        .with_plain("project", "proj_7");
    let openai = connect(t).await;
    let answer = openai
        .embed(
            &ModelRef::new("text-embedding-3-small"),
            EmbedRequest::new(["a", "b"]).dimensions(2),
        )
        .await
        .unwrap();
    assert_eq!(answer.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    assert_eq!(answer.usage.unwrap().prompt_tokens, Some(3));
    let sent = &server.recorded()[0];
    assert_eq!(sent.target, "/v1/embeddings");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        (
            sent.header("openai-organization"),
            sent.header("openai-project")
        ),
        (Some("org-42"), Some("proj_7"))
    );
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["input"], serde_json::json!(["a", "b"]));
    assert_eq!(
        (body["dimensions"].clone(), body["encoding_format"].clone()),
        (2.into(), "float".into())
    );
}

#[tokio::test]
async fn base64_vectors_are_asked_for_and_decoded() {
    // 1.0f32 and -0.5f32, little-endian, as the reference's base64 format.
    let server = FaultServer::start([Fault::json(200, &embeddings(&[r#""AACAPwAAAL8=""#]))])
        .await
        .unwrap();
    let c = connect(target("openai", &server).with_plain("embedding_encoding", "base64")).await;
    let answer = c
        .embed(&ModelRef::new("m"), EmbedRequest::new(["x"]))
        .await
        .unwrap();
    assert_eq!(answer.vectors, vec![vec![1.0, -0.5]]);
    let body: serde_json::Value = serde_json::from_slice(&server.recorded()[0].body).unwrap();
    assert_eq!(body["encoding_format"], "base64");
}

#[tokio::test]
async fn throttling_keeps_retry_after_and_rate_limit_headers() {
    let throttled = Fault::json(429, r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#)
        .header("Retry-After", "0")
        .header("x-ratelimit-remaining-requests", "0")
        .header("x-ratelimit-reset-requests", "1s")
        .header("x-ratelimit-limit-tokens", "40000");
    let server = FaultServer::start([throttled.clone(), throttled, Fault::json(200, COMPLETION)])
        .await
        .unwrap();
    let once = connect(target("openai", &server)).await;
    let e = once
        .generate(&ModelRef::new("gpt"), chat())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.context("retry_after"), Some("0"));
    assert_eq!(e.context("ratelimit_remaining_requests"), Some("0"));
    assert_eq!(e.context("ratelimit_reset_requests"), Some("1s"));
    assert_eq!(e.context("ratelimit_limit_tokens"), Some("40000"));
    assert_eq!(e.context("vendor_code"), Some("rate_limit_exceeded"));
    assert_eq!(e.vendor_message(), Some("Rate limit reached for requests"));
    assert!(!format!("{e:?} {e}").contains(KEY));
    // With retries, the throttled answer is waited out (Retry-After: 0) and resent.
    let retrying = connect(target("openai", &server).with_plain("retry_max_attempts", "3")).await;
    assert_eq!(
        retrying
            .generate(&ModelRef::new("gpt"), chat())
            .await
            .unwrap()
            .text,
        "Paris."
    );
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn exhausted_quota_is_not_retried() {
    let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let server = FaultServer::start([Fault::json(429, quota).header("Retry-After", "0")])
        .await
        .unwrap();
    let c = connect(target("openai", &server).with_plain("retry_max_attempts", "3")).await;
    let e = c
        .embed(&ModelRef::new("m"), EmbedRequest::new(["x"]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.is_retryable()),
        (ErrorKind::RateLimited, false)
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn error_statuses_map_to_kinds_with_the_vendor_message_apart() {
    let envelope = |message: &str, kind: &str, code: &str| {
        format!(
            r#"{{"error":{{"message":"{message}","type":"{kind}","param":"messages","code":"{code}"}}}}"#
        )
    };
    let too_long = envelope(
        "This model's maximum context length is 2048 tokens",
        "invalid_request_error",
        "context_length_exceeded",
    );
    let server = FaultServer::start([
        Fault::json(400, &too_long),
        Fault::json(401, &envelope("Incorrect API key provided", "invalid_request_error", "invalid_api_key")),
        Fault::json(403, &envelope("Project does not have access", "invalid_request_error", "model_not_allowed")),
        Fault::json(404, &envelope("The model `nope` does not exist", "invalid_request_error", "model_not_found")),
        Fault::json(404, r#"{"detail":"Not Found"}"#),
        Fault::json(500, r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#),
        // llama-cpp-python's answer to an over-long embedding input.
        Fault::json(500, r#"{"error":{"message":"Requested tokens (600) exceed context window of 512","type":"internal_server_error","param":null,"code":null}}"#),
    ])
    .await
    .unwrap();
    let c = connect(target("openai", &server)).await;
    let model = ModelRef::new("gpt");
    let kinds = [
        ErrorKind::InvalidInput,
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::NotFound,
        ErrorKind::Unsupported,
        ErrorKind::Unavailable,
        ErrorKind::InvalidInput,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let e = c.generate(&model, chat()).await.unwrap_err();
        assert_eq!(e.kind(), kind, "answer {i}: {e}");
        assert_eq!(e.model(), Some("gpt"));
        assert!(!format!("{e:?} {e}").contains(KEY));
        if i == 0 {
            assert_eq!(
                e.vendor_message(),
                Some("This model's maximum context length is 2048 tokens")
            );
            assert_eq!(
                (e.context("vendor_code"), e.context("param")),
                (Some("context_length_exceeded"), Some("messages"))
            );
            assert_eq!(e.context("error_type"), Some("invalid_request_error"));
        }
    }
}

#[tokio::test]
async fn streams_cut_anywhere_with_keepalives_decode_to_pieces() {
    let mut body = b": keepalive\r\n\r\n".to_vec();
    body.extend(sse(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"Pa"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"ris ✓"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":14,"completion_tokens":3,"total_tokens":17}}"#,
        "[DONE]",
    ]));
    // Seven bytes per write: lines, `\r\n` and the UTF-8 of ✓ are split.
    let drip = Fault::SlowDrip {
        body,
        chunk: 7,
        interval: Duration::from_millis(1),
    };
    let server = FaultServer::start([drip]).await.unwrap();
    let c = connect(target("vllm", &server)).await;
    let stream = c
        .generate_stream(&ModelRef::new("m"), chat())
        .await
        .unwrap();
    let pieces: Vec<_> = stream.collect().await;
    let pieces: Vec<_> = pieces.into_iter().map(Result::unwrap).collect();
    let text: String = pieces.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(text, "Paris ✓");
    assert_eq!(pieces[2].finish_reason, Some(FinishReason::Stop));
    assert_eq!(pieces[3].usage.unwrap().total_tokens, Some(17));
    let sent: serde_json::Value = serde_json::from_slice(&server.recorded()[0].body).unwrap();
    assert_eq!(
        (
            sent["stream"].clone(),
            sent["stream_options"]["include_usage"].clone()
        ),
        (true.into(), true.into())
    );
}

#[tokio::test]
async fn an_error_in_the_middle_of_a_stream_is_a_typed_item() {
    let body = sse(&[
        r#"{"choices":[{"index":0,"text":"Once","finish_reason":null}]}"#,
        r#"{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":null}}"#,
        r#"{"choices":[{"index":0,"text":" never","finish_reason":null}]}"#,
    ]);
    let server = FaultServer::start([Fault::with_body(200, "text/event-stream", body)])
        .await
        .unwrap();
    let c = connect(target("llama-cpp", &server)).await;
    let items: Vec<_> = c
        .generate_stream(&ModelRef::new("m"), GenerateRequest::prompt("Once"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().text, "Once");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        (e.vendor_message(), e.model()),
        (Some("The server is overloaded"), Some("m"))
    );
    assert_eq!(server.recorded()[0].target, "/v1/completions");
}

#[tokio::test]
async fn short_streams_and_oversized_events_are_protocol_errors() {
    let cut = sse(&[r#"{"choices":[{"index":0,"delta":{"content":"Hal"},"finish_reason":null}]}"#]);
    let huge = format!("data: {}\n\n", "x".repeat(200)).into_bytes();
    let server = FaultServer::start([
        Fault::with_body(200, "text/event-stream", cut),
        Fault::with_body(200, "text/event-stream", huge),
    ])
    .await
    .unwrap();
    let c = connect(target("ollama", &server).with_plain("stream_max_event_bytes", "128")).await;
    for expected_pieces in [1, 0] {
        let items: Vec<_> = c
            .generate_stream(&ModelRef::new("m"), chat())
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(items.len(), expected_pieces + 1, "{items:?}");
        let e = items.last().unwrap().as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    }
}

#[tokio::test]
async fn rerank_splits_documents_and_merges_hits() {
    // Two parts of two documents and one of one (embed_max_items: 2).
    let server = FaultServer::start([
        Fault::json(200, r#"{"id":"r1","results":[{"index":1,"relevance_score":0.2},{"index":0,"relevance_score":0.1}],"usage":{"total_tokens":5}}"#),
        Fault::json(200, r#"{"id":"r2","results":[{"index":0,"relevance_score":0.9},{"index":1,"relevance_score":0.3}],"usage":{"total_tokens":6}}"#),
        Fault::json(200, r#"{"id":"r3","results":[{"index":0,"relevance_score":0.5}],"usage":{"total_tokens":4}}"#),
    ])
    .await
    .unwrap();
    let t = target("vllm", &server)
        .with_plain("embed_max_items", "2")
        .with_plain("embed_concurrency", "1");
    let c = connect(t).await;
    let request = RerankRequest::new("capital of France", ["a", "b", "Paris", "c", "d"]).top_n(3);
    let answer = c
        .rerank(&ModelRef::new("bge-reranker"), request)
        .await
        .unwrap();
    let order: Vec<usize> = answer.results.iter().map(|h| h.index).collect();
    assert_eq!(order, vec![2, 4, 3]);
    assert_eq!(answer.usage.unwrap().total_tokens, Some(15));
    let sent = server.recorded();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|r| r.target == "/v1/rerank"));
    let body: serde_json::Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(body["documents"], serde_json::json!(["Paris", "c"]));
    assert_eq!(
        (body["query"].clone(), body["top_n"].clone()),
        ("capital of France".into(), 3.into())
    );
}

#[tokio::test]
async fn a_server_without_the_rerank_endpoint_answers_unsupported() {
    let server = FaultServer::start([Fault::json(404, r#"{"detail":"Not Found"}"#)])
        .await
        .unwrap();
    let c = connect(target("tei", &server)).await;
    let e = c
        .rerank(&ModelRef::new("m"), RerankRequest::new("q", ["d"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(server.recorded()[0].target, "/rerank");
    let body: serde_json::Value = serde_json::from_slice(&server.recorded()[0].body).unwrap();
    assert_eq!(body["texts"], serde_json::json!(["d"]));
    // Without a rerank path the family is absent.
    let plain = connect(target("llama-cpp", &server)).await;
    assert!(!plain.capabilities().rerank);
}

#[tokio::test]
async fn hostile_calls_fail_before_sending() {
    let server = FaultServer::start([]).await.unwrap();
    let c = connect(target("openai", &server)).await;
    let versioned = ModelRef::new("gpt").with_version("2");
    assert_eq!(
        c.generate(&versioned, chat()).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let reserved = chat().extra("model", "other".into());
    assert_eq!(
        c.generate(&ModelRef::new("gpt"), reserved)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let empty = c
        .embed(&ModelRef::new("m"), EmbedRequest::new(Vec::<String>::new()))
        .await;
    assert_eq!(empty.unwrap_err().kind(), ErrorKind::InvalidInput);
    // An Azure deployment name that would leave its path segment.
    let azure = connect(target("azure-openai", &server)).await;
    for name in ["..", "."] {
        let e = azure
            .embed(&ModelRef::new(name), EmbedRequest::new(["x"]))
            .await;
        assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidInput, "{name}");
    }
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_typo_in_a_key_is_refused_with_a_suggestion() {
    let connectors = Connectors::new().with(inferlink_openai::factory());
    let typo =
        ConnectTarget::new("openai", "http://127.0.0.1:1").with_plain("organisation", "org-1");
    let e = connectors.connect(&typo).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::Config, Some("organisation"))
    );
    assert!(e.message().contains("did you mean \"organization\""), "{e}");
    let split_typo =
        ConnectTarget::new("vllm", "http://127.0.0.1:1").with_plain("embed_max_item", "4");
    let e = connectors.connect(&split_typo).await.unwrap_err();
    assert!(
        e.message().contains("did you mean \"embed_max_items\""),
        "{e}"
    );
}

#[tokio::test]
async fn tasks_choose_the_families_a_record_offers() {
    let server = FaultServer::start([Fault::json(200, r#"[{"index":0,"score":0.5}]"#)])
        .await
        .unwrap();
    let t = target("llama-cpp", &server)
        .with_plain("tasks", "embed rerank")
        .with_plain("rerank_path", "/rerank")
        .with_plain("rerank_api", "tei");
    let c = connect(t).await;
    let caps = c.capabilities();
    assert!(caps.embed && caps.rerank && !caps.generate && !caps.stream_generate);
    let e = c.generate(&ModelRef::new("m"), chat()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let hits = c
        .rerank(&ModelRef::new("m"), RerankRequest::new("q", ["d"]))
        .await
        .unwrap();
    assert_eq!(hits.results.len(), 1);
    assert_eq!(server.recorded()[0].target, "/rerank");
}
