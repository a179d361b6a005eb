//! Safety by construction: injection attempts through texts and model
//! names, templates naming unknown parameters or keys, secrets, and hostile
//! answers — against `inferlink_testkit::fault::FaultServer` on 127.0.0.1,
//! which records what it received and answers with canned bodies.

use std::sync::Arc;

use inferlink::{
    ChatMessage, ConnectTarget, Connectors, EmbedRequest, ErrorKind, GenerateRequest,
    InferenceConnector, ModelRef, RerankRequest,
};
use inferlink_testkit::fault::{Fault, FaultServer};
use serde_json::{Value, json};

const KEY: &str = "sk-blueprint-secret-93c1e7";

/// A small blueprint written inline, as a record would carry it.
const INLINE: &str = r#"
name: inline-demo
documentation: https://example.invalid/api
config:
  api_key: {doc: "the key", secret: true}
  tenant: {doc: "the tenant", default: alpha}
actions:
  embed:
    path: v1/embed/${model}
    headers:
      Authorization: "Bearer ${credentials.api_key}"
      X-Tenant: "${config.tenant}"
    body:
      model: "${model}"
      input: "${texts}"
      tenant: "${config.tenant}"
      fixed: {kind: "float"}
    response:
      vectors: "data[*].embedding"
      index: "data[*].index"
      total_tokens: usage.total_tokens
  rerank:
    path: v1/rerank
    headers: {Authorization: "Bearer ${credentials.api_key}"}
    body: {model: "${model}", query: "${query}", documents: "${documents}", top_n: "${top_n}"}
    response: {index: "results[*].index", scores: "results[*].relevance_score"}
  chat:
    path: v1/chat
    headers: {Authorization: "Bearer ${credentials.api_key}"}
    body: {model: "${model}", messages: "${messages}", max_tokens: "${max_tokens}"}
    response: {text: "output.text", finish_reason: "output.reason"}
  invoke:
    path: v1/raw/${model}
    headers: {Authorization: "Bearer ${credentials.api_key}"}
"#;

fn target(server: &FaultServer, blueprint: &str) -> ConnectTarget {
    ConnectTarget::new("http", server.url())
        .with_plain("blueprint", blueprint)
        .with_secret("api_key", KEY)
        .with_plain("retry_max_attempts", "1")
}

async fn connect(target: &ConnectTarget) -> inferlink::Result<Arc<dyn InferenceConnector>> {
    Connectors::new()
        .with(inferlink_blueprint::factory())
        .connect(target)
        .await
}

fn embeddings(n: usize) -> String {
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"index": i, "embedding": [i as f32, 1.0]}))
        .collect();
    json!({"data": data, "usage": {"total_tokens": 7}}).to_string()
}

/// Embeds `texts` through the inline blueprint and returns the JSON body
/// and target the server received.
async fn sent_for(texts: &[&str], model: &str) -> (Value, String) {
    let server = FaultServer::start([Fault::json(200, &embeddings(texts.len()))])
        .await
        .unwrap();
    let connector = connect(&target(&server, INLINE)).await.unwrap();
    let answer = connector
        .embed(
            &ModelRef::new(model),
            EmbedRequest::new(texts.iter().copied()),
        )
        .await
        .unwrap();
    assert_eq!(answer.vectors.len(), texts.len());
    let request = server.recorded().pop().expect("one request");
    let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
    (body, request.target)
}

/// The body has exactly the template's members, the texts as one array of
/// strings equal to the input.
fn assert_structure(body: &Value, texts: &[&str]) {
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["fixed", "input", "model", "tenant"], "{body}");
    assert_eq!(body["input"], json!(texts), "{body}");
    assert_eq!(body["tenant"], json!("alpha"));
    assert_eq!(body["fixed"], json!({"kind": "float"}));
}

#[tokio::test]
async fn texts_with_quotes_stay_one_json_string_each() {
    let texts = [
        r#"he said "stop", "model": "evil""#,
        r#"\" , "tenant": "beta"#,
        "'\n\t\\",
    ];
    let (body, _) = sent_for(&texts, "m").await;
    assert_structure(&body, &texts);
    assert_eq!(body["model"], json!("m"));
}

#[tokio::test]
async fn texts_with_braces_cannot_open_or_close_objects() {
    let texts = [
        r#"}], "model": "evil", "x": [{"#,
        "{{{{",
        r#"{"$each": "${texts}"}"#,
    ];
    let (body, _) = sent_for(&texts, "m").await;
    assert_structure(&body, &texts);
}

#[tokio::test]
async fn texts_and_names_holding_placeholders_are_not_expanded() {
    let texts = [
        "${credentials.api_key}",
        "${config.tenant}",
        "${model}",
        "$${texts}",
    ];
    let (body, target) = sent_for(&texts, "${credentials.api_key}").await;
    assert_structure(&body, &texts);
    assert_eq!(body["model"], json!("${credentials.api_key}"));
    assert!(!body.to_string().contains(KEY), "{body}");
    // In the path the name is one percent-encoded segment, not expanded either.
    assert_eq!(target, "/v1/embed/%24%7Bcredentials.api_key%7D");
}

#[tokio::test]
async fn model_names_cannot_leave_their_path_segment() {
    let (_, sent_to) = sent_for(&["a"], "../../admin?x=1#frag").await;
    assert_eq!(sent_to, "/v1/embed/..%2F..%2Fadmin%3Fx%3D1%23frag");
    let server = FaultServer::start([]).await.unwrap();
    let connector = connect(&target(&server, INLINE)).await.unwrap();
    let e = connector
        .embed(&ModelRef::new(".."), EmbedRequest::new(["a"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn unknown_parameters_and_keys_are_refused_with_their_path() {
    let server = FaultServer::start([]).await.unwrap();
    let cases = [
        (
            r#"input: "${texts}""#,
            r#"input: "${txts}""#,
            "blueprint.actions.embed.body.input",
        ),
        (
            r#"tenant: "${config.tenant}""#,
            r#"tenant: "${config.tenant_id}""#,
            "blueprint.actions.embed.body.tenant",
        ),
        (
            r#"X-Tenant: "${config.tenant}""#,
            r#"X-Tenant: "${query}""#,
            "blueprint.actions.embed.headers.X-Tenant",
        ),
        (
            "path: v1/rerank",
            "path: v1/${texts}",
            "blueprint.actions.rerank.path",
        ),
        (
            r#"tenant: "${config.tenant}""#,
            r#"tenant: "${credentials.api_key}""#,
            "blueprint.actions.embed.body.tenant",
        ),
        (
            r#"text: "output.text""#,
            r#"txt: "output.text""#,
            "blueprint.actions.chat.response.txt",
        ),
    ];
    for (from, to, path) in cases {
        assert!(INLINE.contains(from), "{from}");
        let text = INLINE.replacen(from, to, 1);
        let e = connect(&target(&server, &text)).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.path()),
            (ErrorKind::Config, Some(path)),
            "{to}: {e}"
        );
    }
    // A record key the blueprint does not declare: refused, with a suggestion.
    let typo = target(&server, INLINE).with_plain("tenent", "beta");
    let e = connect(&typo).await.unwrap_err();
    assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some("tenent")));
    assert!(e.message().contains("did you mean \"tenant\""), "{e}");
    // A key the blueprint needs and the record lacks.
    let bare = ConnectTarget::new("http", server.url()).with_plain("blueprint", INLINE);
    let e = connect(&bare).await.unwrap_err();
    assert_eq!(e.path(), Some("api_key"), "{e}");
    // A blueprint that is no blueprint, and a name nobody ships.
    for (value, path) in [
        ("{\"name\": 5}", "blueprint"),
        ("no-such-blueprint", "blueprint"),
    ] {
        let e = connect(&target(&server, value)).await.unwrap_err();
        assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some(path)), "{e}");
    }
    assert_eq!(server.requests(), 0, "nothing is sent for a refused record");
}

#[tokio::test]
async fn secrets_are_sent_in_headers_only_and_shown_nowhere() {
    let server = FaultServer::start([
        Fault::json(200, &embeddings(1)),
        Fault::json(401, r#"{"message": "bad key"}"#),
    ])
    .await
    .unwrap();
    let connector = connect(&target(&server, INLINE)).await.unwrap();
    let shown = format!("{connector:?}");
    assert!(
        !shown.contains(KEY) && shown.contains("<hidden>"),
        "{shown}"
    );
    let model = ModelRef::new("m");
    connector
        .embed(&model, EmbedRequest::new(["a"]))
        .await
        .unwrap();
    let e = connector
        .embed(&model, EmbedRequest::new(["a"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(KEY), "{text}");
    }
    let sent = server.recorded();
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent[0].header("x-tenant"), Some("alpha"));
    assert!(!String::from_utf8_lossy(&sent[0].body).contains(KEY));
    // A key from credentials that the blueprint declares plain is refused.
    let plain_secret = target(&server, INLINE).with_secret("tenant", "from-credentials");
    let e = connect(&plain_secret).await.unwrap_err();
    assert_eq!(e.path(), Some("tenant"), "{e}");
    assert!(!e.to_string().contains("from-credentials"));
}

/// An OpenAI-shaped answer of (index, embedding) pairs, both as JSON text.
fn data(items: &[(&str, &str)]) -> Fault {
    let items: Vec<String> = items
        .iter()
        .map(|(index, embedding)| format!(r#"{{"index": {index}, "embedding": {embedding}}}"#))
        .collect();
    Fault::json(200, &format!(r#"{{"data": [{}]}}"#, items.join(", ")))
}

/// Embeds two texts against `answer` and returns the error.
async fn embed_error(answer: Fault) -> inferlink::Error {
    let server = FaultServer::start([answer]).await.unwrap();
    let t = target(&server, INLINE).with_plain("response_max_bytes", "65536");
    let connector = connect(&t).await.unwrap();
    connector
        .embed(&ModelRef::new("m"), EmbedRequest::new(["a", "b"]))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn hostile_answers_are_typed_errors() {
    let huge = json!({"data": vec![json!({"index": 0, "embedding": [1.0]}); 20_000]}).to_string();
    let mut deep = String::new();
    for _ in 0..5000 {
        deep.push('[');
    }
    let cases: Vec<(&str, Fault)> = vec![
        ("missing path", Fault::json(200, r#"{"result": []}"#)),
        ("wrong type", Fault::json(200, r#"{"data": "vectors"}"#)),
        (
            "vector of texts",
            data(&[("0", r#"["a"]"#), ("1", r#"["b"]"#)]),
        ),
        ("too few vectors", Fault::json(200, &embeddings(1))),
        ("repeated index", data(&[("0", "[1]"), ("0", "[2]")])),
        ("index out of range", data(&[("0", "[1]"), ("9", "[2]")])),
        ("ragged vectors", data(&[("0", "[1]"), ("1", "[2, 3]")])),
        ("number too large", data(&[("0", "[1e300]"), ("1", "[2]")])),
        ("not JSON", Fault::text(200, "<html>oops</html>")),
        ("nested deep", Fault::json(200, &deep)),
        ("huge array", Fault::json(200, &huge)),
    ];
    for (what, fault) in cases {
        let e = embed_error(fault).await;
        assert_eq!(e.kind(), ErrorKind::Protocol, "{what}: {e}");
        assert_eq!(e.vendor(), Some("blueprint"), "{what}");
    }
    // Over the response size limit: refused by the transport, not read whole.
    let e = embed_error(Fault::oversized(200_000)).await;
    assert!(e.kind() != ErrorKind::Internal, "{e}");
}

#[tokio::test]
async fn rerank_and_chat_map_their_answers() {
    let rerank = r#"{"results": [{"index": 2, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]}"#;
    let chat = r#"{"output": {"text": "Paris", "reason": "stop"}}"#;
    let server = FaultServer::start([
        Fault::json(200, rerank),
        Fault::json(200, chat),
        Fault::json(200, r#"{"results": [{"index": 7, "relevance_score": 1}]}"#),
    ])
    .await
    .unwrap();
    let connector = connect(&target(&server, INLINE)).await.unwrap();
    let model = ModelRef::new("m");
    let hits = connector
        .rerank(&model, RerankRequest::new("q", ["a", "b", "c"]).top_n(2))
        .await
        .unwrap();
    let order: Vec<usize> = hits.results.iter().map(|h| h.index).collect();
    assert_eq!(order, [2, 0]);
    let answer = connector
        .generate(
            &model,
            GenerateRequest::chat([ChatMessage::user("Capital of France?")]).max_tokens(4),
        )
        .await
        .unwrap();
    assert_eq!(answer.text, "Paris");
    let sent = server.recorded();
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        body,
        json!({"model": "m", "query": "q", "documents": ["a", "b", "c"], "top_n": 2})
    );
    let body: Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Capital of France?"}])
    );
    assert_eq!(body["max_tokens"], json!(4));
    let e = connector
        .rerank(&model, RerankRequest::new("q", ["a", "b"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    // No generate action and no infer action: a prompt goes to chat, infer is unsupported.
    assert!(connector.capabilities().generate && !connector.capabilities().infer);
}

#[tokio::test]
async fn raw_invocations_carry_the_body_as_given() {
    let csv = "a,b\n1,\"}{\"\n";
    let answer = Fault::with_body(200, "text/csv", b"p\n0.5\n".to_vec());
    let server = FaultServer::start([answer]).await.unwrap();
    let connector = connect(&target(&server, INLINE)).await.unwrap();
    let mut raw = inferlink::RawRequest::new(csv, "text/csv");
    raw.accept = Some("text/csv".into());
    let got = connector
        .invoke(&ModelRef::new("scorer"), raw)
        .await
        .unwrap();
    assert_eq!(
        (&got.body[..], got.content_type.as_deref()),
        (&b"p\n0.5\n"[..], Some("text/csv"))
    );
    let sent = server.recorded().pop().unwrap();
    assert_eq!(
        (sent.target.as_str(), &sent.body[..]),
        ("/v1/raw/scorer", csv.as_bytes())
    );
    assert_eq!(sent.header("content-type"), Some("text/csv"));
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    // An invoke action takes no body template.
    let templated = INLINE.replace(
        "    path: v1/raw/${model}\n",
        "    path: v1/raw/${model}\n    body: {x: 1}\n",
    );
    let e = connect(&target(&server, &templated)).await.unwrap_err();
    assert_eq!(e.path(), Some("blueprint.actions.invoke.body"), "{e}");
}

/// Open Inference Protocol answers whose output shape does not fit its
/// data: `Protocol` errors naming the shape's path, never a panic.
#[tokio::test]
async fn v2_outputs_with_a_bad_shape_are_protocol_errors() {
    let output = |shape: Value, data: Value| {
        let answer = json!({"model_name": "m", "outputs": [
            {"name": "output-0", "datatype": "FP64", "shape": shape, "data": data}]});
        Fault::json(200, &answer.to_string())
    };
    let bad = [
        output(json!([2, 2]), json!([1.0, 2.0, 3.0])),
        output(json!("two"), json!([1.0])),
        output(json!([-1]), json!([1.0])),
        output(json!([u64::MAX, u64::MAX]), json!([1.0])),
        output(json!(vec![1; 40]), json!([1.0])),
    ];
    let count = bad.len();
    let server = FaultServer::start(bad).await.unwrap();
    let target = ConnectTarget::new("http", server.url())
        .with_plain("blueprint", "mlserver-v2")
        .with_plain("retry_max_attempts", "1");
    let c = connect(&target).await.unwrap();
    let input = inferlink::Tensor::new("input-0", vec![3], vec![1.0f64, 2.0, 3.0]).unwrap();
    for case in 0..count {
        let e = c
            .infer(
                &ModelRef::new("m"),
                inferlink::InferRequest::from(input.clone()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "case {case}: {e}");
        assert_eq!(e.path(), Some("outputs[0].shape"), "case {case}: {e}");
    }
    // What was sent: one V2 tensor, data flat, with its name, shape and type.
    let sent: Value = serde_json::from_slice(&server.recorded()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"inputs": [{"name": "input-0", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]})
    );
}
