//! The API's JSON bodies ⇄ the typed calls (pure functions, total on any
//! input: a body that is not the expected JSON is an
//! [`ErrorKind::Protocol`] error saying where).

use base64::Engine as _;
use inferlink_core::{
    ChatRole, EmbedRequest, EmbedResponse, Error, ErrorKind, FinishReason, GenerateDelta,
    GenerateInput, GenerateRequest, GenerateResponse, ModelInfo, RerankHit, RerankRequest,
    RerankResponse, Result, Usage,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{EmbeddingEncoding, RerankApi};

/// Body fields the connector writes itself; `extra` options may not set them.
pub const RESERVED: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "stream",
    "stream_options",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
];

fn protocol(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, why)
}

/// Decodes JSON, naming the path of the first mismatch (the kit's decoder).
pub use inferlink_core::kit::json::decode;

/// The token counts of a `usage` object.
#[derive(Debug, Default, Deserialize)]
pub struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        let mut usage = Usage::default();
        (usage.prompt_tokens, usage.completion_tokens) = (u.prompt_tokens, u.completion_tokens);
        usage.total_tokens = u.total_tokens;
        usage
    }
}

/// The `/embeddings` body for one part of a request.
pub fn embed_body(model: &str, request: &EmbedRequest, encoding: EmbeddingEncoding) -> Value {
    let mut body = json!({
        "model": model,
        "input": request.texts,
        "encoding_format": encoding.as_str(),
    });
    if let Some(dimensions) = request.dimensions {
        body["dimensions"] = json!(dimensions);
    }
    body
}

#[derive(Deserialize)]
struct EmbedAnswer {
    data: Vec<EmbedItem>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct EmbedItem {
    index: Option<usize>,
    embedding: Vector,
}

/// A vector as JSON numbers, or as base64 of little-endian `f32`s.
#[derive(Deserialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

/// The floats of a base64 vector: its length must be a multiple of 4 bytes.
pub fn decode_base64_f32(text: &str) -> Result<Vec<f32>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| protocol(format!("a base64 embedding does not decode ({e})")))?;
    if bytes.len() % 4 != 0 {
        let why = format!(
            "a base64 embedding has {} bytes, not whole f32s",
            bytes.len()
        );
        return Err(protocol(why));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The vectors of an `/embeddings` answer for `texts` texts, in input
/// order (by `index`; every index once). `normalize: Some(true)` scales
/// each vector to unit length here (the API has no such option).
pub fn decode_embeddings(
    body: &[u8],
    texts: usize,
    normalize: Option<bool>,
) -> Result<EmbedResponse> {
    let answer: EmbedAnswer = decode(body, "the embeddings answer")?;
    if answer.data.len() != texts {
        let why = format!("{} embeddings for {texts} texts", answer.data.len());
        return Err(protocol(why));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; texts];
    for (position, item) in answer.data.into_iter().enumerate() {
        let index = item.index.unwrap_or(position);
        let vector = match item.embedding {
            Vector::Floats(v) => v,
            Vector::Base64(text) => {
                decode_base64_f32(&text).map_err(|e| e.with_path(format!("data[{position}]")))?
            }
        };
        if vector.iter().any(|x| !x.is_finite()) {
            let why = format!("embedding {index} has a number that is not a finite f32");
            return Err(protocol(why));
        }
        match slots.get_mut(index) {
            Some(slot @ None) => *slot = Some(vector),
            _ => {
                return Err(protocol(format!(
                    "embedding index {index} is out of range or repeated"
                )));
            }
        }
    }
    let mut vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();
    if normalize == Some(true) {
        for v in &mut vectors {
            let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            if norm > 0.0 {
                v.iter_mut()
                    .for_each(|x| *x = (f64::from(*x) / norm) as f32);
            }
        }
    }
    Ok(EmbedResponse::new(vectors)?
        .with_usage(answer.usage.map(Usage::from))
        .with_normalized(normalize.filter(|n| *n)))
}

/// The body of a rerank request in the configured shape.
pub fn rerank_body(model: &str, request: &RerankRequest, api: RerankApi) -> Value {
    match api {
        RerankApi::Cohere => {
            let mut body =
                json!({"model": model, "query": request.query, "documents": request.documents});
            if let Some(n) = request.top_n {
                body["top_n"] = json!(n);
            }
            body
        }
        RerankApi::Score => {
            json!({"model": model, "text_1": request.query, "text_2": request.documents})
        }
        RerankApi::Tei => json!({"query": request.query, "texts": request.documents}),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RerankAnswer {
    Bare(Vec<Hit>),
    Results {
        results: Vec<Hit>,
        usage: Option<WireUsage>,
    },
    Data {
        data: Vec<Hit>,
        usage: Option<WireUsage>,
    },
}

#[derive(Deserialize)]
struct Hit {
    index: usize,
    #[serde(alias = "relevance_score")]
    score: f64,
}

/// The hits of a rerank or score answer for `documents` documents, best first.
pub fn decode_rerank(
    body: &[u8],
    documents: usize,
    top_n: Option<usize>,
) -> Result<RerankResponse> {
    let (hits, usage) = match decode(body, "the rerank answer")? {
        RerankAnswer::Bare(hits) => (hits, None),
        RerankAnswer::Results { results, usage }
        | RerankAnswer::Data {
            data: results,
            usage,
        } => (results, usage),
    };
    let mut seen = vec![false; documents];
    for hit in &hits {
        match seen.get_mut(hit.index) {
            Some(s @ false) => *s = true,
            _ => {
                return Err(protocol(format!(
                    "rerank index {} is out of range or repeated",
                    hit.index
                )));
            }
        }
    }
    let hits = hits.into_iter().map(|h| RerankHit {
        index: h.index,
        score: h.score,
    });
    Ok(RerankResponse::new(hits.collect(), top_n).with_usage(usage.map(Usage::from)))
}

/// The `/chat/completions` or `/completions` body.
pub fn generate_body(
    model: &str,
    request: &GenerateRequest,
    stream: bool,
    stream_usage: bool,
) -> Result<Value> {
    let options = &request.options;
    options.check(RESERVED)?;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    match &request.input {
        GenerateInput::Prompt(prompt) => body.insert("prompt".into(), json!(prompt)),
        GenerateInput::Chat(messages) if messages.is_empty() => {
            return Err(Error::invalid_at(
                "messages",
                "a chat needs at least one message",
            ));
        }
        GenerateInput::Chat(messages) => {
            let messages: Vec<Value> = messages
                .iter()
                .map(|m| json!({"role": role(m.role), "content": m.content}))
                .collect();
            body.insert("messages".into(), Value::Array(messages))
        }
    };
    body.extend(
        options
            .wire_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    body.extend(options.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    if stream {
        body.insert("stream".into(), Value::Bool(true));
        if stream_usage {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    Ok(Value::Object(body))
}

fn role(role: ChatRole) -> &'static str {
    match role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    }
}

/// A choice of a completion or a stream chunk (chat or text).
#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    message: Option<Content>,
    delta: Option<Content>,
    text: Option<String>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

impl Choice {
    fn text(self) -> (String, Option<FinishReason>) {
        let text = self
            .message
            .or(self.delta)
            .and_then(|c| c.content)
            .or(self.text)
            .unwrap_or_default();
        (
            text,
            self.finish_reason.as_deref().map(FinishReason::from_word),
        )
    }
}

/// The text of a (non-streamed) completion: its first choice.
pub fn decode_completion(body: &[u8]) -> Result<GenerateResponse> {
    let answer: Completion = decode(body, "the completion")?;
    let usage = answer.usage.map(Usage::from);
    let first = answer.choices.into_iter().find(|c| c.index == 0);
    let choice = first.ok_or_else(|| protocol("the completion has no choice"))?;
    let (text, finish) = choice.text();
    Ok(GenerateResponse::new(text, finish, usage))
}

/// The piece one stream chunk carries (choice 0's text, finish reason, and
/// usage); `None` for a chunk with nothing (the first, role-only one).
pub fn decode_chunk(data: &str) -> Result<Option<GenerateDelta>> {
    let chunk: Completion = decode(data.as_bytes(), "a stream chunk")?;
    let usage = chunk.usage.map(Usage::from);
    let (text, finish) = match chunk.choices.into_iter().find(|c| c.index == 0) {
        Some(choice) => choice.text(),
        None => (String::new(), None),
    };
    let empty = text.is_empty() && finish.is_none() && usage.is_none();
    Ok((!empty).then(|| GenerateDelta::new(text, finish, usage)))
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ListedModel>,
}

#[derive(Deserialize)]
struct ListedModel {
    id: String,
}

/// The models of a `/models` answer.
pub fn decode_models(body: &[u8]) -> Result<Vec<ModelInfo>> {
    let list: ModelList = decode(body, "the model list")?;
    Ok(list
        .data
        .into_iter()
        .map(|m| ModelInfo {
            name: m.id,
            version: None,
            state: None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use inferlink_core::ChatMessage;

    use super::*;

    #[test]
    fn float_and_base64_vectors_decode_in_index_order() {
        let one = base64::engine::general_purpose::STANDARD.encode(
            [1.5f32, -2.0]
                .iter()
                .flat_map(|f| f.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        let body = format!(
            r#"{{"data":[{{"index":1,"embedding":"{one}"}},{{"index":0,"embedding":[0.5,0.25]}}],
               "usage":{{"prompt_tokens":7,"total_tokens":7}}}}"#
        );
        let r = decode_embeddings(body.as_bytes(), 2, None).unwrap();
        assert_eq!(r.vectors, vec![vec![0.5, 0.25], vec![1.5, -2.0]]);
        assert_eq!(r.usage.unwrap().prompt_tokens, Some(7));
        let unit = decode_embeddings(br#"{"data":[{"embedding":[3,4]}]}"#, 1, Some(true)).unwrap();
        assert_eq!(
            (unit.vectors[0].clone(), unit.normalized),
            (vec![0.6, 0.8], Some(true))
        );
    }

    #[test]
    fn hostile_embedding_answers_are_protocol_errors() {
        for body in [
            r#"{"data":[{"index":0,"embedding":"AAA="}]}"#,
            r#"{"data":[{"index":0,"embedding":[1e39]},{"index":1,"embedding":[1]}]}"#,
            r#"{"data":[{"index":0,"embedding":"AACAfw=="},{"index":1,"embedding":[1]}]}"#,
            r#"{"data":[{"index":0,"embedding":"not base64!"}]}"#,
            r#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#,
            r#"{"data":[{"index":5,"embedding":[1]},{"index":0,"embedding":[2]}]}"#,
            r#"{"data":[{"index":0,"embedding":[1]}]}"#,
            r#"{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1]}]}"#,
            r#"{"data":[{"index":0,"embedding":[[1,2]]},{"index":1,"embedding":[1]}]}"#,
            r#"{"object":"list"}"#,
            "[1,",
        ] {
            let e = decode_embeddings(body.as_bytes(), 2, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{body}: {e}");
        }
    }

    #[test]
    fn rerank_answers_of_every_shape() {
        for body in [
            r#"{"results":[{"index":0,"relevance_score":0.1},{"index":1,"relevance_score":0.9}]}"#,
            r#"{"data":[{"index":0,"score":0.1},{"index":1,"score":0.9}],"usage":{"total_tokens":3}}"#,
            r#"[{"index":1,"score":0.9},{"index":0,"score":0.1}]"#,
        ] {
            let r = decode_rerank(body.as_bytes(), 2, None).unwrap();
            assert_eq!(
                r.results.iter().map(|h| h.index).collect::<Vec<_>>(),
                vec![1, 0]
            );
        }
        let e = decode_rerank(br#"[{"index":2,"score":1}]"#, 2, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        let e = decode_rerank(br#"[{"index":0,"score":1},{"index":0,"score":2}]"#, 2, None);
        assert_eq!(e.unwrap_err().kind(), ErrorKind::Protocol);
    }

    #[test]
    fn rerank_bodies_of_every_shape() {
        let request = RerankRequest::new("q", ["a", "b"]).top_n(1);
        let cohere = rerank_body("m", &request, RerankApi::Cohere);
        assert_eq!(
            cohere,
            json!({"model": "m", "query": "q", "documents": ["a", "b"], "top_n": 1})
        );
        let score = rerank_body("m", &request, RerankApi::Score);
        assert_eq!(
            score,
            json!({"model": "m", "text_1": "q", "text_2": ["a", "b"]})
        );
        let tei = rerank_body("m", &request, RerankApi::Tei);
        assert_eq!(tei, json!({"query": "q", "texts": ["a", "b"]}));
    }

    #[test]
    fn generate_bodies_carry_options_and_refuse_reserved_extras() {
        let chat =
            GenerateRequest::chat([ChatMessage::system("be brief"), ChatMessage::user("hi")])
                .max_tokens(8)
                .stop("\n")
                .extra("top_k", json!(20));
        let body = generate_body("m", &chat, true, true).unwrap();
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(
            (body["max_tokens"].clone(), body["top_k"].clone()),
            (json!(8), json!(20))
        );
        assert_eq!(body["stream_options"]["include_usage"], true);
        let prompt = generate_body("m", &GenerateRequest::prompt("x"), false, true).unwrap();
        assert!(prompt.get("stream").is_none() && prompt["prompt"] == "x");
        let sneaky = GenerateRequest::prompt("x").extra("stream", json!(false));
        assert_eq!(
            generate_body("m", &sneaky, true, false).unwrap_err().path(),
            Some("extra.stream")
        );
        let empty = GenerateRequest::chat([]);
        assert_eq!(
            generate_body("m", &empty, false, false).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn completions_and_chunks_decode() {
        let chat = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;
        let r = decode_completion(chat).unwrap();
        assert_eq!(
            (r.text.as_str(), r.finish_reason),
            ("Paris", Some(FinishReason::Stop))
        );
        let text = br#"{"choices":[{"index":0,"text":" there","finish_reason":"length"}]}"#;
        assert_eq!(
            decode_completion(text).unwrap().finish_reason,
            Some(FinishReason::Length)
        );
        assert_eq!(
            decode_completion(br#"{"choices":[]}"#).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            decode_chunk(r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#).unwrap(),
            None
        );
        let piece = decode_chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
        );
        assert_eq!(piece.unwrap().unwrap().text, "Hi");
        let usage = decode_chunk(r#"{"choices":[],"usage":{"total_tokens":9}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(usage.usage.unwrap().total_tokens, Some(9));
        assert_eq!(
            decode_chunk("{nope").unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn model_lists_decode() {
        let models =
            decode_models(br#"{"object":"list","data":[{"id":"a","object":"model"},{"id":"b"}]}"#)
                .unwrap();
        assert_eq!(
            models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert_eq!(
            decode_models(br#"{"data":[{}]}"#).unwrap_err().path(),
            Some("data[0]")
        );
    }
}
