//! The `llama-cpp` kind, spoken to with a raw HTTP client (reqwest, no
//! connector): what llama-cpp-python's OpenAI-compatible server answers, so
//! that the connector's tests can rely on it and a change of server version
//! that moves any of it fails here first. docs/testing.md ("llama-cpp") lists
//! the same facts.
//!
//! Without the venv these tests print `skipped: …` and pass, unless
//! `INFERLINK_REQUIRE_LIVE=1` makes that a failure.

use std::time::Duration;

use inferlink_testkit::servers::{
    self, LLAMA_CPP_EMBEDDING_CONTEXT, LLAMA_CPP_EMBEDDING_DIMENSIONS, LLAMA_CPP_EMBEDDING_MODEL,
    LLAMA_CPP_GENERATION_CONTEXT, LLAMA_CPP_GENERATION_MODEL, RunningServer, ServerKind,
};
use serde_json::{Value, json};

/// The shared server of this test binary, started off the async workers.
async fn server() -> Option<&'static RunningServer> {
    tokio::task::spawn_blocking(|| servers::shared_or_skip(ServerKind::LlamaCpp))
        .await
        .expect("the start task")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("a reqwest client")
}

/// POSTs `body` as JSON and returns the status and the parsed answer.
async fn post(url: &str, body: &Value) -> (u16, Value) {
    let reply = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = reply.status().as_u16();
    let bytes = reply.bytes().await.expect("the answer body");
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "POST {url}: {status} answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

async fn get(url: &str) -> (u16, String) {
    let reply = client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = reply.status().as_u16();
    (status, reply.text().await.unwrap_or_default())
}

fn embedding_url(server: &RunningServer) -> String {
    server
        .embedding_url()
        .expect("llama-cpp has an embedding server")
}

/// The vectors of `texts`, checked for shape and usage on the way.
async fn embed(server: &RunningServer, texts: &[&str]) -> Vec<Vec<f32>> {
    let url = format!("{}/v1/embeddings", embedding_url(server));
    let (status, body) = post(
        &url,
        &json!({"model": LLAMA_CPP_EMBEDDING_MODEL, "input": texts}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list", "{body}");
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), texts.len(), "one vector per input: {body}");
    assert!(
        body["usage"]["prompt_tokens"].as_u64().unwrap_or(0) >= texts.len() as u64,
        "usage.prompt_tokens: {}",
        body["usage"]
    );
    data.iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["index"], i, "answers in input order: {item}");
            assert_eq!(item["object"], "embedding");
            let vector: Vec<f32> = item["embedding"]
                .as_array()
                .expect("a flat list of floats, not per-token lists")
                .iter()
                .map(|v| v.as_f64().expect("a float") as f32)
                .collect();
            assert_eq!(vector.len(), LLAMA_CPP_EMBEDDING_DIMENSIONS);
            assert!(vector.iter().all(|v| v.is_finite()));
            vector
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test]
async fn models_lists_each_servers_model() {
    let Some(server) = server().await else {
        return;
    };
    for (base, id) in [
        (server.http_url(), LLAMA_CPP_GENERATION_MODEL),
        (embedding_url(server), LLAMA_CPP_EMBEDDING_MODEL),
    ] {
        let (status, text) = get(&format!("{base}/v1/models")).await;
        assert_eq!(status, 200, "{text}");
        let body: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(body["object"], "list", "{body}");
        let ids: Vec<&str> = body["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids, [id], "{body}");
        assert_eq!(body["data"][0]["object"], "model");
    }
}

/// One vector per input, in order, with `usage.prompt_tokens` counting the
/// `[CLS]` and `[SEP]` the tokenizer adds. The vectors are mean-pooled but
/// **not** L2-normalised (llama-cpp-python's `create_embedding` does not
/// normalise): a client that needs unit vectors normalises them itself.
#[tokio::test]
async fn embeddings_one_unnormalised_vector_per_input_with_usage() {
    let Some(server) = server().await else {
        return;
    };
    let texts = [
        "The cat sits on the mat.",
        "Stock markets fell sharply today.",
        "a",
    ];
    let vectors = embed(server, &texts).await;
    for v in &vectors {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((2.0..20.0).contains(&norm), "not normalised: norm {norm}");
    }
    // A single string (not a list) is one input too; "hello" is [CLS] hello [SEP].
    let url = format!("{}/v1/embeddings", embedding_url(server));
    let (status, body) = post(
        &url,
        &json!({"model": LLAMA_CPP_EMBEDDING_MODEL, "input": "hello"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["usage"]["prompt_tokens"], 3, "{body}");
    assert_eq!(body["usage"]["total_tokens"], 3, "{body}");
    assert_eq!(body["model"], LLAMA_CPP_EMBEDDING_MODEL, "{body}");
}

/// The model is real: a paraphrase pair is much closer than an unrelated
/// pair, and the server is deterministic (the same text, alone or in another
/// batch, gives the same vector).
#[tokio::test]
async fn paraphrases_are_closer_than_unrelated_texts_and_calls_agree() {
    let Some(server) = server().await else {
        return;
    };
    let texts = [
        "A man is playing a guitar.",
        "Someone is strumming a guitar.",
        "The quarterly tax report is due on Friday.",
    ];
    let first = embed(server, &texts).await;
    let paraphrase = cosine(&first[0], &first[1]);
    let unrelated = cosine(&first[0], &first[2]);
    assert!(
        paraphrase > unrelated + 0.3,
        "paraphrase {paraphrase} vs unrelated {unrelated}"
    );
    assert!(paraphrase > 0.6, "paraphrase similarity {paraphrase}");
    assert!(unrelated < 0.3, "unrelated similarity {unrelated}");

    // The same batch again: the same numbers.
    let again = embed(server, &texts).await;
    assert_eq!(first, again, "the same batch gave other vectors");
    // The same text in another batch: the batch's layout moves the last
    // digits (about 1e-4 seen), not the vector.
    let alone = embed(server, &texts[2..]).await;
    let drift = first[2]
        .iter()
        .zip(&alone[0])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(drift < 1e-2, "vectors differ by {drift} between batches");
    assert!(cosine(&first[2], &alone[0]) > 0.9999);
}

#[tokio::test]
async fn chat_completion_returns_text_with_usage() {
    let Some(server) = server().await else {
        return;
    };
    let url = format!("{}/v1/chat/completions", server.http_url());
    let (status, body) = post(
        &url,
        &json!({
            "model": LLAMA_CPP_GENERATION_MODEL,
            "messages": [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
            "max_tokens": 16,
            "temperature": 0,
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion", "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant", "{body}");
    let text = choice["message"]["content"].as_str().unwrap_or_default();
    assert!(!text.trim().is_empty(), "empty answer: {body}");
    assert!(
        matches!(choice["finish_reason"].as_str(), Some("stop" | "length")),
        "{body}"
    );
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap_or(0) > 0, "{body}");
    assert!(
        usage["completion_tokens"].as_u64().unwrap_or(0) > 0,
        "{body}"
    );
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );

    // The legacy completions endpoint answers on the same server.
    let url = format!("{}/v1/completions", server.http_url());
    let (status, body) = post(
        &url,
        &json!({"model": LLAMA_CPP_GENERATION_MODEL, "prompt": "The sky is", "max_tokens": 8, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion", "{body}");
    assert!(body["choices"][0]["text"].as_str().is_some(), "{body}");
}

/// `stream: true`: server-sent events, `data: {json}` lines, the first chunk
/// carrying only the role, text in `delta.content`, a last chunk with a
/// finish reason, then `data: [DONE]`.
#[tokio::test]
async fn a_streamed_chat_ends_with_done() {
    let Some(server) = server().await else {
        return;
    };
    let url = format!("{}/v1/chat/completions", server.http_url());
    let body = json!({
        "model": LLAMA_CPP_GENERATION_MODEL,
        "messages": [{"role": "user", "content": "Count from one to five."}],
        "max_tokens": 24,
        "temperature": 0,
        "stream": true,
    });
    let mut reply = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the request");
    assert_eq!(reply.status(), 200);
    let content_type = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut raw = Vec::new();
    while let Some(chunk) = reply.chunk().await.expect("a chunk") {
        raw.extend_from_slice(&chunk);
        assert!(raw.len() < 1 << 20, "an unbounded stream");
    }
    let text = String::from_utf8(raw).expect("UTF-8 events");
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect();
    assert!(chunks.len() >= 3, "{text}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
    }
    let first = &chunks[0]["choices"][0];
    assert_eq!(first["delta"]["role"], "assistant", "{first}");
    assert!(first["delta"].get("content").is_none(), "{first}");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!streamed.trim().is_empty(), "{text}");
    let last = &chunks[chunks.len() - 1]["choices"][0];
    assert!(
        matches!(last["finish_reason"].as_str(), Some("stop" | "length")),
        "{last}"
    );
}

/// What the server does with requests an OpenAI client might send but this
/// server does not handle as OpenAI does (docs/testing.md lists them; the
/// connector must not rely on the OpenAI behaviour here).
#[tokio::test]
async fn quirks_of_llama_cpp_python_server() {
    let Some(server) = server().await else {
        return;
    };
    let generation = server.http_url();
    let embeddings = embedding_url(server);

    // No rerank or score route on either server: FastAPI's plain 404.
    for base in [&generation, &embeddings] {
        for path in ["/v1/rerank", "/v1/score"] {
            let (status, body) = post(
                &format!("{base}{path}"),
                &json!({"model": LLAMA_CPP_EMBEDDING_MODEL, "query": "q", "documents": ["a", "b"]}),
            )
            .await;
            assert_eq!(
                (status, body.clone()),
                (404, json!({"detail": "Not Found"})),
                "{path}"
            );
        }
    }

    // A prompt longer than the context: 400 with OpenAI's error envelope.
    let long = "word ".repeat(LLAMA_CPP_GENERATION_CONTEXT + 500);
    let (status, body) = post(
        &format!("{generation}/v1/chat/completions"),
        &json!({"model": LLAMA_CPP_GENERATION_MODEL, "messages": [{"role": "user", "content": long}], "max_tokens": 8}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error = &body["error"];
    assert_eq!(error["type"], "invalid_request_error", "{body}");
    assert_eq!(error["code"], "context_length_exceeded", "{body}");
    assert_eq!(error["param"], "messages", "{body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "maximum context length is {LLAMA_CPP_GENERATION_CONTEXT} tokens"
        )),
        "{body}"
    );

    // An over-long embedding input is cut to the batch size, not refused.
    let long = "word ".repeat(LLAMA_CPP_EMBEDDING_CONTEXT * 2);
    let (status, body) = post(
        &format!("{embeddings}/v1/embeddings"),
        &json!({"model": LLAMA_CPP_EMBEDDING_MODEL, "input": [long]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["usage"]["prompt_tokens"].as_u64(),
        Some(LLAMA_CPP_EMBEDDING_CONTEXT as u64),
        "{}",
        body["usage"]
    );

    // An unknown model name is served by the loaded model, the name echoed back.
    let (status, body) = post(
        &format!("{generation}/v1/chat/completions"),
        &json!({"model": "no-such-model", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "no-such-model", "{body}");

    // `encoding_format: "base64"` is ignored: floats come back.
    let (status, body) = post(
        &format!("{embeddings}/v1/embeddings"),
        &json!({"model": LLAMA_CPP_EMBEDDING_MODEL, "input": ["hello"], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let vector = &body["data"][0]["embedding"];
    assert_eq!(
        vector.as_array().map(Vec::len),
        Some(LLAMA_CPP_EMBEDDING_DIMENSIONS),
        "{body}"
    );

    // A body that fails validation is a 500 (not OpenAI's 400) in the same envelope.
    let (status, body) = post(
        &format!("{generation}/v1/chat/completions"),
        &json!({"model": LLAMA_CPP_GENERATION_MODEL, "messages": "not a list"}),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["type"], "internal_server_error", "{body}");
    assert!(body["error"]["code"].is_null(), "{body}");

    // Embeddings asked of the generation server: 500 too.
    let (status, body) = post(
        &format!("{generation}/v1/embeddings"),
        &json!({"input": "x"}),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["type"], "internal_server_error", "{body}");

    // A body that is not JSON: 500 with a plain-text body.
    let reply = client()
        .post(format!("{generation}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .expect("the request");
    assert_eq!(reply.status(), 500);
    assert!(
        reply
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{:?}",
        reply.headers()
    );
}
