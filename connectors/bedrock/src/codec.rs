//! Bedrock's JSON bodies ⇄ the typed calls (pure functions, total on any
//! input: a body that is not the expected JSON is an
//! [`ErrorKind::Protocol`] error saying where).
//!
//! * embeddings through InvokeModel: Titan Text Embeddings
//!   (`{inputText, dimensions, normalize}` → `{embedding, inputTextTokenCount}`)
//!   and Cohere Embed v3 (`{texts, input_type, truncate}` →
//!   `{embeddings: [[…]] | {float: [[…]]}}`);
//! * Converse and ConverseStream (`messages`, `system`, `inferenceConfig`,
//!   `guardrailConfig`, … → `output.message.content[].text`, `stopReason`,
//!   `usage`; stream events `contentBlockDelta`, `messageStop`, `metadata`);
//! * InvokeModelWithResponseStream's `chunk` events (`{"bytes": base64}`);
//! * the agent runtime's Rerank (`queries`, `sources`,
//!   `rerankingConfiguration` → `results[].{index, relevanceScore}`).

use base64::Engine as _;
use inferlink_core::kit::json::decode;
use inferlink_core::{
    ChatRole, EmbedRequest, EmbedResponse, Error, ErrorKind, FinishReason, GenerateDelta,
    GenerateInput, GenerateRequest, GenerateResponse, RerankHit, RerankRequest, RerankResponse,
    Result, Usage,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{BedrockConfig, EmbedFormat};

fn protocol(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, why)
}

/// Bedrock's token counts (`inputTokens`, `outputTokens`, `totalTokens`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
}

impl From<TokenUsage> for Usage {
    fn from(u: TokenUsage) -> Usage {
        let mut usage = Usage::default();
        (usage.prompt_tokens, usage.completion_tokens) = (u.input_tokens, u.output_tokens);
        usage.total_tokens = u.total_tokens;
        usage
    }
}

// ------------------------------------------------------------------ embeddings

/// The InvokeModel body embedding `request`'s texts in `format` (Titan
/// takes exactly one text).
pub fn embed_body(format: EmbedFormat, request: &EmbedRequest, config: &BedrockConfig) -> Value {
    match format {
        EmbedFormat::Cohere => {
            let mut body = json!({
                "texts": request.texts,
                "input_type": config.input_type.as_str(),
            });
            if let Some(truncate) = config.truncate {
                body["truncate"] = json!(truncate.as_str().to_ascii_uppercase());
            }
            body
        }
        EmbedFormat::Titan | EmbedFormat::Auto => {
            let text = request.texts.first().map_or("", String::as_str);
            let mut body = json!({ "inputText": text });
            if let Some(dimensions) = request.dimensions {
                body["dimensions"] = json!(dimensions);
            }
            if let Some(normalize) = request.normalize {
                body["normalize"] = json!(normalize);
            }
            body
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanAnswer {
    embedding: Vec<f32>,
    input_text_token_count: Option<u64>,
}

#[derive(Deserialize)]
struct CohereAnswer {
    embeddings: CohereEmbeddings,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType { float: Vec<Vec<f32>> },
}

/// The vectors of an embedding answer in `format` for `texts` texts;
/// `normalize: Some(true)` scales Cohere's vectors to unit length here
/// (Titan normalises itself when asked).
pub fn decode_embeddings(
    format: EmbedFormat,
    body: &[u8],
    texts: usize,
    normalize: Option<bool>,
) -> Result<EmbedResponse> {
    let (mut vectors, usage) = match format {
        EmbedFormat::Cohere => {
            let answer: CohereAnswer = decode(body, "the Cohere embed answer")?;
            let vectors = match answer.embeddings {
                CohereEmbeddings::Floats(v) | CohereEmbeddings::ByType { float: v } => v,
            };
            (vectors, None)
        }
        EmbedFormat::Titan | EmbedFormat::Auto => {
            let answer: TitanAnswer = decode(body, "the Titan embed answer")?;
            let usage = answer.input_text_token_count.map(|n| Usage {
                prompt_tokens: Some(n),
                total_tokens: Some(n),
                ..Usage::default()
            });
            (vec![answer.embedding], usage)
        }
    };
    if vectors.len() != texts {
        return Err(protocol(format!(
            "{} embeddings for {texts} texts",
            vectors.len()
        )));
    }
    if let Some(i) = vectors
        .iter()
        .position(|v| v.iter().any(|x| !x.is_finite()))
    {
        let why = format!("embedding {i} has a number that is not a finite f32");
        return Err(protocol(why));
    }
    let scaled = normalize == Some(true) && format == EmbedFormat::Cohere;
    if scaled {
        vectors.iter_mut().for_each(|v| unit_length(v));
    }
    let normalized = match format {
        EmbedFormat::Cohere => scaled.then_some(true),
        _ => normalize,
    };
    Ok(EmbedResponse::new(vectors)?
        .with_usage(usage)
        .with_normalized(normalized))
}

fn unit_length(vector: &mut [f32]) {
    let norm = vector
        .iter()
        .map(|x| f64::from(*x).powi(2))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        vector
            .iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
}

// ------------------------------------------------------------------ Converse

/// The Converse (and ConverseStream) body of a generation: the chat's
/// system messages as `system`, the others as `messages`, a prompt as one
/// user message; the options as `inferenceConfig`; `extra` as
/// `additionalModelRequestFields`; the record's guardrail, latency and tier.
pub fn converse_body(request: &GenerateRequest, config: &BedrockConfig) -> Result<Value> {
    let options = &request.options;
    options.check(&[])?;
    if options.seed.is_some() {
        let why = "Converse has no seed; pass it in extra for a model whose own request takes one";
        return Err(Error::invalid_at("seed", why));
    }
    let text_block = |text: &str| json!([{ "text": text }]);
    let (mut system, mut messages) = (Vec::new(), Vec::new());
    match &request.input {
        GenerateInput::Prompt(prompt) => {
            messages.push(json!({"role": "user", "content": text_block(prompt)}));
        }
        GenerateInput::Chat(chat) => {
            for (i, message) in chat.iter().enumerate() {
                let role = match message.role {
                    ChatRole::System => {
                        system.push(json!({ "text": message.content }));
                        continue;
                    }
                    ChatRole::User => "user",
                    ChatRole::Assistant => "assistant",
                    ChatRole::Tool => {
                        let why = "Converse takes tool results only as toolResult blocks, \
                                   which this call does not write";
                        return Err(Error::invalid_at(format!("messages[{i}].role"), why));
                    }
                };
                messages.push(json!({"role": role, "content": text_block(&message.content)}));
            }
        }
    }
    if messages.is_empty() {
        let why = "a chat needs at least one user or assistant message";
        return Err(Error::invalid_at("messages", why));
    }
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    let typed = [
        ("maxTokens", options.max_tokens.map(Value::from)),
        ("temperature", options.temperature.map(Value::from)),
        ("topP", options.top_p.map(Value::from)),
        (
            "stopSequences",
            (!options.stop.is_empty()).then(|| Value::from(options.stop.clone())),
        ),
    ];
    for (name, value) in typed {
        if let Some(value) = value {
            inference.insert(name.into(), value);
        }
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(guardrail) = &config.guardrail {
        let mut g = json!({
            "guardrailIdentifier": guardrail.identifier,
            "guardrailVersion": guardrail.version,
        });
        if let Some(trace) = guardrail.trace {
            g["trace"] = json!(trace.as_str());
        }
        body.insert("guardrailConfig".into(), g);
    }
    if !options.extra.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(options.extra.clone()),
        );
    }
    if let Some(latency) = config.latency {
        body.insert(
            "performanceConfig".into(),
            json!({"latency": latency.as_str()}),
        );
    }
    if let Some(tier) = config.service_tier {
        body.insert("serviceTier".into(), json!({"type": tier.as_str()}));
    }
    Ok(Value::Object(body))
}

/// The finish reason of a Converse `stopReason`.
pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        "tool_use" => FinishReason::ToolCalls,
        other => FinishReason::from_word(other),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseAnswer {
    output: ConverseOutput,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ConverseOutput {
    message: ConverseMessage,
}

#[derive(Deserialize)]
struct ConverseMessage {
    #[serde(default)]
    content: Vec<ContentBlock>,
}

#[derive(Deserialize)]
struct ContentBlock {
    text: Option<String>,
}

/// The text of a Converse answer: its text blocks joined (other blocks,
/// such as reasoning, are left out), the stop reason and the usage.
pub fn decode_converse(body: &[u8]) -> Result<GenerateResponse> {
    let answer: ConverseAnswer = decode(body, "the Converse answer")?;
    let text: String = answer
        .output
        .message
        .content
        .into_iter()
        .filter_map(|block| block.text)
        .collect();
    Ok(GenerateResponse::new(
        text,
        answer.stop_reason.as_deref().map(finish_reason),
        answer.usage.map(Usage::from),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    delta: DeltaText,
}

#[derive(Deserialize)]
struct DeltaText {
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: String,
}

#[derive(Deserialize)]
struct StreamMetadata {
    usage: TokenUsage,
}

/// What one ConverseStream event (by its `:event-type`) adds: the text of
/// a `contentBlockDelta`, the finish reason of `messageStop`, the usage of
/// `metadata`; `None` for the other events (`messageStart`,
/// `contentBlockStart`, `contentBlockStop`, and any later addition) and for
/// deltas without text (tool use, reasoning).
pub fn decode_stream_event(event_type: &str, payload: &[u8]) -> Result<Option<GenerateDelta>> {
    Ok(match event_type {
        "contentBlockDelta" => {
            let event: BlockDelta = decode(payload, "a contentBlockDelta event")?;
            let text = event.delta.text.filter(|t| !t.is_empty());
            text.map(|t| GenerateDelta::new(t, None, None))
        }
        "messageStop" => {
            let event: MessageStop = decode(payload, "a messageStop event")?;
            let reason = finish_reason(&event.stop_reason);
            Some(GenerateDelta::new("", Some(reason), None))
        }
        "metadata" => {
            let event: StreamMetadata = decode(payload, "a metadata event")?;
            Some(GenerateDelta::new("", None, Some(event.usage.into())))
        }
        _ => None,
    })
}

/// The bytes an InvokeModelWithResponseStream `chunk` event carries
/// (`{"bytes": base64}`).
pub fn decode_chunk(payload: &[u8]) -> Result<bytes::Bytes> {
    #[derive(Deserialize)]
    struct Chunk {
        bytes: String,
    }
    let chunk: Chunk = decode(payload, "a chunk event")?;
    base64::engine::general_purpose::STANDARD
        .decode(chunk.bytes.trim())
        .map(bytes::Bytes::from)
        .map_err(|e| protocol(format!("a chunk's bytes are not base64 ({e})")))
}

// ------------------------------------------------------------------ Rerank

/// The agent runtime's Rerank body: the query, the documents inline as
/// text, the model by ARN, and `numberOfResults` when `top_n` cuts.
pub fn rerank_body(model_arn: &str, request: &RerankRequest) -> Value {
    let sources: Vec<Value> = request
        .documents
        .iter()
        .map(|d| {
            json!({
                "type": "INLINE",
                "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": d}},
            })
        })
        .collect();
    let mut configuration = json!({"modelConfiguration": {"modelArn": model_arn}});
    if let Some(n) = request.top_n {
        configuration["numberOfResults"] = json!(n.clamp(1, request.documents.len().max(1)));
    }
    json!({
        "queries": [{"type": "TEXT", "textQuery": {"text": request.query}}],
        "sources": sources,
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": configuration,
        },
    })
}

#[derive(Deserialize)]
struct RerankAnswer {
    results: Vec<RerankResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RerankResult {
    index: usize,
    relevance_score: f64,
}

/// The hits of a Rerank answer for `documents` documents, best first.
pub fn decode_rerank(
    body: &[u8],
    documents: usize,
    top_n: Option<usize>,
) -> Result<RerankResponse> {
    let answer: RerankAnswer = decode(body, "the Rerank answer")?;
    let mut seen = vec![false; documents];
    for hit in &answer.results {
        match seen.get_mut(hit.index) {
            Some(s @ false) => *s = true,
            _ => {
                let why = format!("rerank index {} is out of range or repeated", hit.index);
                return Err(protocol(why));
            }
        }
    }
    let hits = answer.results.into_iter().map(|h| RerankHit {
        index: h.index,
        score: h.relevance_score,
    });
    Ok(RerankResponse::new(hits.collect(), top_n))
}

#[cfg(test)]
mod tests {
    use inferlink_core::ChatMessage;

    use super::*;
    use crate::config::{Guardrail, GuardrailTrace, Latency, ServiceTier};

    #[test]
    fn titan_and_cohere_bodies_and_answers() {
        let config = BedrockConfig::default();
        let request = EmbedRequest::new(["a"]).dimensions(256).normalize(true);
        assert_eq!(
            embed_body(EmbedFormat::Titan, &request, &config),
            json!({"inputText": "a", "dimensions": 256, "normalize": true})
        );
        let r = decode_embeddings(
            EmbedFormat::Titan,
            br#"{"embedding":[0.6,0.8],"inputTextTokenCount":3}"#,
            1,
            Some(true),
        )
        .unwrap();
        assert_eq!(r.vectors, vec![vec![0.6, 0.8]]);
        assert_eq!(r.usage.unwrap().prompt_tokens, Some(3));
        let cohere = embed_body(EmbedFormat::Cohere, &EmbedRequest::new(["a", "b"]), &config);
        assert_eq!(
            cohere,
            json!({"texts": ["a", "b"], "input_type": "search_document"})
        );
        for body in [
            r#"{"embeddings":[[3,4],[1,0]],"id":"x","response_type":"embeddings_floats"}"#,
            r#"{"embeddings":{"float":[[3,4],[1,0]]},"response_type":"embeddings_by_type"}"#,
        ] {
            let r = decode_embeddings(EmbedFormat::Cohere, body.as_bytes(), 2, Some(true));
            let r = r.unwrap();
            assert_eq!(r.vectors, vec![vec![0.6, 0.8], vec![1.0, 0.0]]);
            assert_eq!(r.normalized, Some(true));
        }
    }

    #[test]
    fn hostile_embedding_answers_are_protocol_errors() {
        for (format, body) in [
            (EmbedFormat::Titan, "{}"),
            (EmbedFormat::Titan, r#"{"embedding":"nope"}"#),
            (EmbedFormat::Titan, r#"{"embedding":[1e39]}"#),
            (EmbedFormat::Cohere, r#"{"embeddings":[[1]]}"#),
            (EmbedFormat::Cohere, r#"{"embeddings":[[1,2],[1]]}"#),
            (EmbedFormat::Cohere, r#"{"embeddings":{"int8":[[1]]}}"#),
            (EmbedFormat::Cohere, "[1,"),
        ] {
            let texts = if format == EmbedFormat::Titan { 1 } else { 2 };
            let e = decode_embeddings(format, body.as_bytes(), texts, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{body}: {e}");
        }
    }

    #[test]
    fn converse_bodies_carry_options_guardrail_and_tier() {
        let config = BedrockConfig {
            guardrail: Some(Guardrail {
                identifier: "gr1".into(),
                version: "2".into(),
                trace: Some(GuardrailTrace::Enabled),
            }),
            latency: Some(Latency::Optimized),
            service_tier: Some(ServiceTier::Priority),
            ..BedrockConfig::default()
        };
        let chat = GenerateRequest::chat([
            ChatMessage::system("be brief"),
            ChatMessage::user("hi"),
            ChatMessage::assistant("hello"),
            ChatMessage::user("again"),
        ])
        .max_tokens(8)
        .temperature(0.5)
        .stop("\n")
        .extra("top_k", json!(20));
        let body = converse_body(&chat, &config).unwrap();
        assert_eq!(body["system"], json!([{"text": "be brief"}]));
        assert_eq!(body["messages"].as_array().unwrap().len(), 3);
        assert_eq!(body["messages"][1]["role"], "assistant");
        assert_eq!(
            body["inferenceConfig"],
            json!({"maxTokens": 8, "temperature": 0.5, "stopSequences": ["\n"]})
        );
        assert_eq!(
            body["guardrailConfig"],
            json!({"guardrailIdentifier": "gr1", "guardrailVersion": "2", "trace": "enabled"})
        );
        assert_eq!(body["additionalModelRequestFields"], json!({"top_k": 20}));
        assert_eq!(body["performanceConfig"], json!({"latency": "optimized"}));
        assert_eq!(body["serviceTier"], json!({"type": "priority"}));
        let prompt = converse_body(&GenerateRequest::prompt("x"), &BedrockConfig::default());
        assert_eq!(
            prompt.unwrap(),
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]})
        );
        for bad in [
            GenerateRequest::prompt("x").seed(1),
            GenerateRequest::chat([ChatMessage::system("only")]),
            GenerateRequest::chat([ChatMessage::new(ChatRole::Tool, "r")]),
            GenerateRequest::prompt("x").top_p(2.0),
        ] {
            let e = converse_body(&bad, &BedrockConfig::default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        }
    }

    #[test]
    fn converse_answers_and_stream_events_decode() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Par"},{"reasoningContent":{}},{"text":"is"}]}},"stopReason":"max_tokens","usage":{"inputTokens":5,"outputTokens":2,"totalTokens":7},"metrics":{"latencyMs":10}}"#;
        let r = decode_converse(body).unwrap();
        assert_eq!(r.text, "Paris");
        assert_eq!(r.finish_reason, Some(FinishReason::Length));
        assert_eq!(r.usage.unwrap().total_tokens, Some(7));
        assert_eq!(
            decode_converse(b"{}").unwrap_err().kind(),
            ErrorKind::Protocol
        );
        let delta = decode_stream_event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abc"}"#,
        );
        assert_eq!(delta.unwrap().unwrap().text, "Hi");
        let stop = decode_stream_event("messageStop", br#"{"stopReason":"guardrail_intervened"}"#);
        assert_eq!(
            stop.unwrap().unwrap().finish_reason,
            Some(FinishReason::ContentFilter)
        );
        let meta = decode_stream_event(
            "metadata",
            br#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3},"metrics":{"latencyMs":1}}"#,
        );
        assert_eq!(
            meta.unwrap().unwrap().usage.unwrap().completion_tokens,
            Some(2)
        );
        assert_eq!(
            decode_stream_event("messageStart", b"{\"role\":\"assistant\"}").unwrap(),
            None
        );
        let bad = decode_stream_event("contentBlockDelta", b"{\"delta\":1}").unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn chunks_and_rerank_answers_decode() {
        assert_eq!(
            decode_chunk(br#"{"bytes":"aGk="}"#).unwrap().as_ref(),
            b"hi"
        );
        assert_eq!(
            decode_chunk(br#"{"bytes":"!!"}"#).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        let r = decode_rerank(
            br#"{"results":[{"index":1,"relevanceScore":0.9},{"index":0,"relevanceScore":0.1}]}"#,
            2,
            Some(1),
        )
        .unwrap();
        assert_eq!(
            r.results,
            vec![RerankHit {
                index: 1,
                score: 0.9
            }]
        );
        for bad in [
            r#"{"results":[{"index":2,"relevanceScore":1}]}"#,
            r#"{"results":[{"index":0,"relevanceScore":1},{"index":0,"relevanceScore":1}]}"#,
            r#"{"results":[{"index":0}]}"#,
        ] {
            let e = decode_rerank(bad.as_bytes(), 2, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{bad}");
        }
        let body = rerank_body("arn:m", &RerankRequest::new("q", ["a", "b"]).top_n(5));
        assert_eq!(
            body["rerankingConfiguration"]["bedrockRerankingConfiguration"]["numberOfResults"],
            2
        );
    }
}
