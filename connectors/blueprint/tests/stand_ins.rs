//! The shipped vendor blueprints against stand-ins: no server of these
//! APIs installs here, so `inferlink_testkit::fault::FaultServer` on
//! 127.0.0.1 answers with bodies written from each vendor's documentation
//! (URL per test) and records what it received. Each test checks the
//! request the blueprint sends (path, headers, body) and what it makes of
//! the documented answer.

use std::sync::Arc;

use inferlink::{
    ChatMessage, ConnectTarget, Connectors, EmbedRequest, GenerateRequest, InferenceConnector,
    ModelRef, RerankRequest,
};
use inferlink_testkit::fault::{Fault, FaultServer, RecordedRequest};
use serde_json::{Value, json};

/// A stand-in answering `answers` in order, and a connector for `product`
/// with `settings` pointing at it.
async fn stand_in(
    product: &str,
    settings: &[(&str, &str)],
    answers: Vec<Value>,
) -> (FaultServer, Arc<dyn InferenceConnector>) {
    let faults = answers.iter().map(|a| Fault::json(200, &a.to_string()));
    let server = FaultServer::start(faults).await.unwrap();
    let mut target = ConnectTarget::new(product, server.url());
    for (key, value) in settings {
        target = match *key {
            "api_key" | "access_token" => target.with_secret(*key, *value),
            _ => target.with_plain(*key, *value),
        };
    }
    let connectors = Connectors::new().with(inferlink_blueprint::factory());
    let connected = connectors.connect(&target).await;
    (
        server,
        connected.expect("the record of the stand-in connects"),
    )
}

/// The documents' indices, best first.
fn indices(hits: &inferlink::RerankResponse) -> Vec<usize> {
    hits.results.iter().map(|hit| hit.index).collect()
}

/// The request's JSON body.
fn body(request: &RecordedRequest) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

/// Cohere v2 Embed and Rerank: https://docs.cohere.com/reference/embed,
/// https://docs.cohere.com/reference/rerank.
#[tokio::test]
async fn cohere_embed_and_rerank() {
    let embed = json!({
        "id": "e-1", "texts": ["a", "b"],
        "embeddings": {"float": [[0.25, 0.5], [0.75, 1.0]]},
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 4}}
    });
    let rerank = json!({
        "id": "r-1",
        "results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.2}],
        "meta": {"billed_units": {"search_units": 1}}
    });
    let settings = [("api_key", "co-key-1"), ("input_type", "search_query")];
    let (server, c) = stand_in("cohere", &settings, vec![embed, rerank]).await;
    let model = ModelRef::new("embed-english-v3.0");
    let answer = c
        .embed(&model, EmbedRequest::new(["a", "b"]))
        .await
        .unwrap();
    assert_eq!(answer.vectors, vec![vec![0.25, 0.5], vec![0.75, 1.0]]);
    assert_eq!(answer.usage.unwrap().prompt_tokens, Some(4));
    let hits = c
        .rerank(
            &ModelRef::new("rerank-v3.5"),
            RerankRequest::new("q", ["x", "y"]),
        )
        .await
        .unwrap();
    assert_eq!((hits.results[0].index, hits.results[0].score), (1, 0.9));
    let sent = server.recorded();
    assert_eq!(
        (sent[0].target.as_str(), sent[1].target.as_str()),
        ("/v2/embed", "/v2/rerank")
    );
    assert_eq!(sent[0].header("authorization"), Some("Bearer co-key-1"));
    let want = json!({"model": "embed-english-v3.0", "texts": ["a", "b"],
        "input_type": "search_query", "truncate": "END", "embedding_types": ["float"]});
    assert_eq!(body(&sent[0]), want);
    assert_eq!(
        body(&sent[1]),
        json!({"model": "rerank-v3.5", "query": "q", "documents": ["x", "y"]})
    );
}

/// Hugging Face TEI's native routes: the OpenAPI document at
/// https://huggingface.github.io/text-embeddings-inference/ (`/embed`
/// answers an array of vectors, `/rerank` an array of `{index, score}`).
#[tokio::test]
async fn tei_native_embed_and_rerank() {
    let embed = json!([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]);
    let rerank =
        json!([{"index": 0, "score": 0.1}, {"index": 2, "score": 0.8}, {"index": 1, "score": 0.5}]);
    let (server, c) = stand_in("tei-native", &[], vec![embed, rerank]).await;
    let model = ModelRef::new("bge-small");
    let answer = c
        .embed(&model, EmbedRequest::new(["a", "b"]).normalize(true))
        .await
        .unwrap();
    assert_eq!(answer.dimensions, 3);
    let hits = c
        .rerank(&model, RerankRequest::new("q", ["x", "y", "z"]).top_n(2))
        .await
        .unwrap();
    assert_eq!(indices(&hits), [2, 1]);
    let sent = server.recorded();
    assert_eq!(
        body(&sent[0]),
        json!({"inputs": ["a", "b"], "normalize": true})
    );
    assert_eq!(
        body(&sent[1]),
        json!({"query": "q", "texts": ["x", "y", "z"], "return_text": false})
    );
    assert_eq!(
        (sent[0].target.as_str(), sent[1].target.as_str()),
        ("/embed", "/rerank")
    );
}

/// Jina AI: https://jina.ai/embeddings/ and https://jina.ai/reranker/
/// (OpenAI-shaped embeddings; Cohere-shaped rerank results).
#[tokio::test]
async fn jina_embeddings_and_reranker() {
    let embed = json!({
        "model": "jina-embeddings-v3", "object": "list",
        "usage": {"total_tokens": 6, "prompt_tokens": 6},
        "data": [{"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
                 {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}]
    });
    let rerank = json!({"model": "jina-reranker-v2-base-multilingual", "usage": {"total_tokens": 9},
        "results": [{"index": 0, "relevance_score": 0.7}]});
    let (server, c) = stand_in("jina", &[("api_key", "jina-k")], vec![embed, rerank]).await;
    let request = EmbedRequest::new(["first", "second"]).dimensions(2);
    let answer = c.embed(&ModelRef::new("jina-embeddings-v3"), request).await;
    let answer = answer.unwrap();
    // Put back in input order by the answer's indices.
    assert_eq!(answer.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    let hits = c
        .rerank(
            &ModelRef::new("jina-reranker-v2-base-multilingual"),
            RerankRequest::new("q", ["d"]),
        )
        .await
        .unwrap();
    assert_eq!(hits.usage.unwrap().total_tokens, Some(9));
    let sent = server.recorded();
    assert_eq!(sent[0].target, "/v1/embeddings");
    assert_eq!(body(&sent[0])["task"], json!("retrieval.passage"));
    assert_eq!(body(&sent[0])["dimensions"], json!(2));
    assert_eq!(body(&sent[1])["return_documents"], json!(false));
}

/// Vertex AI text embeddings:
/// https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
/// (one instance object per text; predictions[].embeddings.values).
#[tokio::test]
async fn vertex_text_embeddings() {
    let answer = json!({"predictions": [
        {"embeddings": {"values": [0.5, 0.5], "statistics": {"token_count": 3, "truncated": false}}},
        {"embeddings": {"values": [0.1, 0.9], "statistics": {"token_count": 2, "truncated": false}}}
    ], "metadata": {"billableCharacterCount": 12}});
    let settings = [
        ("access_token", "ya29.token"),
        ("project", "my-project"),
        ("location", "europe-west4"),
    ];
    let (server, c) = stand_in("vertex-embeddings", &settings, vec![answer]).await;
    let got = c
        .embed(
            &ModelRef::new("text-embedding-005"),
            EmbedRequest::new(["a \"q\"", "b"]),
        )
        .await
        .unwrap();
    assert_eq!(got.vectors[1], vec![0.1, 0.9]);
    let sent = &server.recorded()[0];
    let path = "/v1/projects/my-project/locations/europe-west4/publishers/google/models/text-embedding-005:predict";
    assert_eq!(sent.target, path);
    assert_eq!(sent.header("authorization"), Some("Bearer ya29.token"));
    let want = json!({
        "instances": [{"content": "a \"q\"", "task_type": "RETRIEVAL_DOCUMENT"},
                      {"content": "b", "task_type": "RETRIEVAL_DOCUMENT"}],
        "parameters": {"autoTruncate": true}
    });
    assert_eq!(body(sent), want);
}

/// Ollama's native API: https://github.com/ollama/ollama/blob/main/docs/api.md
/// (`/api/embed`, `/api/generate` and `/api/chat` with `stream: false`).
#[tokio::test]
async fn ollama_native_embed_generate_and_chat() {
    let embed = json!({"model": "all-minilm", "embeddings": [[0.1, 0.2]], "total_duration": 14143917,
        "load_duration": 1019500, "prompt_eval_count": 8});
    let generate = json!({"model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z",
        "response": "Paris", "done": true, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 2});
    let chat = json!({"model": "llama3.2", "message": {"role": "assistant", "content": "Paris."},
        "done": true, "done_reason": "length", "prompt_eval_count": 30, "eval_count": 4});
    let (server, c) = stand_in("ollama-native", &[], vec![embed, generate, chat]).await;
    let got = c
        .embed(&ModelRef::new("all-minilm"), EmbedRequest::new(["x"]))
        .await
        .unwrap();
    assert_eq!(got.usage.unwrap().prompt_tokens, Some(8));
    let model = ModelRef::new("llama3.2");
    let prompt = GenerateRequest::prompt("Capital of France?")
        .max_tokens(5)
        .temperature(0.0);
    let text = c.generate(&model, prompt).await.unwrap();
    assert_eq!(
        (text.text.as_str(), text.usage.unwrap().completion_tokens),
        ("Paris", Some(2))
    );
    let talk = GenerateRequest::chat([ChatMessage::user("Capital of France?")]).seed(3);
    let answer = c.generate(&model, talk).await.unwrap();
    assert_eq!(answer.finish_reason, Some(inferlink::FinishReason::Length));
    let sent = server.recorded();
    let targets: Vec<&str> = sent.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/api/embed", "/api/generate", "/api/chat"]);
    let want = json!({"model": "llama3.2", "prompt": "Capital of France?", "stream": false,
        "keep_alive": "5m", "options": {"num_predict": 5, "temperature": 0.0}});
    assert_eq!(body(&sent[1]), want);
    assert_eq!(body(&sent[2])["options"], json!({"seed": 3}));
    assert_eq!(
        body(&sent[2])["messages"],
        json!([{"role": "user", "content": "Capital of France?"}])
    );
}

/// The text of a stream's pieces joined, and the pieces (all answers).
fn joined(
    items: Vec<inferlink::Result<inferlink::GenerateDelta>>,
) -> (String, Vec<inferlink::GenerateDelta>) {
    let pieces: Vec<_> = items.into_iter().map(Result::unwrap).collect();
    (pieces.iter().map(|p| p.text.as_str()).collect(), pieces)
}

/// Lines of JSON, one object a line, as Ollama streams them.
fn ndjson(lines: &[Value]) -> Vec<u8> {
    lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Ollama's native streams, newline-delimited JSON: a stand-in written from
/// https://github.com/ollama/ollama/blob/main/docs/api.md ("Generate a
/// completion" and "Generate a chat completion", streaming responses: one
/// object a line with `response` or `message.content`, the last with
/// `"done": true`, `done_reason` and the counts; an error mid-stream is an
/// object with an `error` member).
#[tokio::test]
async fn ollama_native_streams_generate_and_chat_as_ndjson() {
    use futures_util::StreamExt;
    let piece = |text: &str| {
        json!({"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00",
            "response": text, "done": false})
    };
    let generate = ndjson(&[
        piece("The"),
        piece(" capital"),
        piece(" is Paris."),
        json!({"model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z", "response": "",
            "done": true, "done_reason": "stop", "context": [1, 2, 3], "total_duration": 10706818083u64,
            "prompt_eval_count": 26, "eval_count": 3}),
    ]);
    let said = |text: &str, done: bool| {
        json!({"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00",
            "message": {"role": "assistant", "content": text}, "done": done})
    };
    let mut last = said("", true);
    last["done_reason"] = json!("length");
    last["eval_count"] = json!(2);
    let chat = ndjson(&[said("Par", false), said("is", false), last]);
    let failing = ndjson(&[
        piece("The"),
        json!({"error": "an error was encountered while running the model"}),
    ]);
    let ndjson_answer = |body: Vec<u8>| Fault::with_body(200, "application/x-ndjson", body);
    let server = FaultServer::start([
        ndjson_answer(generate),
        ndjson_answer(chat),
        ndjson_answer(failing),
        ndjson_answer(ndjson(&[piece("cut off")])),
    ])
    .await
    .unwrap();
    let target = ConnectTarget::new("ollama-native", server.url());
    let c = Connectors::new()
        .with(inferlink_blueprint::factory())
        .connect(&target)
        .await
        .unwrap();
    let model = ModelRef::new("llama3.2");
    let collect = |request: GenerateRequest| {
        let c = c.clone();
        let model = model.clone();
        async move {
            let stream = c.generate_stream(&model, request).await.unwrap();
            stream.take(100).collect::<Vec<_>>().await
        }
    };
    let prompt = GenerateRequest::prompt("Capital of France?").max_tokens(5);
    let (text, pieces) = joined(collect(prompt).await);
    assert_eq!(text, "The capital is Paris.");
    assert_eq!(pieces.len(), 4);
    let end = pieces.last().unwrap();
    assert_eq!(end.finish_reason, Some(inferlink::FinishReason::Stop));
    assert_eq!(
        end.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((Some(26), Some(3)))
    );
    let talk = GenerateRequest::chat([ChatMessage::user("Capital of France?")]);
    let (text, pieces) = joined(collect(talk).await);
    assert_eq!(text, "Paris");
    assert_eq!(
        pieces.last().unwrap().finish_reason,
        Some(inferlink::FinishReason::Length)
    );
    // An error object mid-stream: the piece before it, then one ModelError item.
    let items = collect(GenerateRequest::prompt("x")).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), inferlink::ErrorKind::ModelError, "{e}");
    assert!(
        e.vendor_message()
            .unwrap_or_default()
            .contains("running the model")
    );
    assert_eq!(e.model(), Some("llama3.2"));
    // A body that stops before `"done": true`: a Protocol item after the piece.
    let items = collect(GenerateRequest::prompt("x")).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[1].as_ref().unwrap_err().kind(),
        inferlink::ErrorKind::Protocol
    );
    // What was sent: the native routes, `stream: true` over the body's `false`.
    let sent = server.recorded();
    let targets: Vec<&str> = sent.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/api/generate",
            "/api/chat",
            "/api/generate",
            "/api/generate"
        ]
    );
    assert_eq!(body(&sent[0])["stream"], json!(true));
    assert_eq!(body(&sent[0])["options"], json!({"num_predict": 5}));
    assert_eq!(body(&sent[1])["stream"], json!(true));
}
