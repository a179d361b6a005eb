//! Cross-checks against botocore, the AWS SDK for Python (from the `moto`
//! venv of the harness), for every Bedrock call — including the ones moto
//! does not serve (Converse, the streams, Rerank):
//!
//! * Requests: our connector and botocore's own `bedrock-runtime` /
//!   `bedrock-agent-runtime` client perform the same operation on the same
//!   inputs against a recording loopback server (botocore's params are the
//!   body we wrote, so botocore's model validation checks our field names
//!   and types). Method, path, JSON body, protocol headers and signed
//!   header names must agree, and botocore's `SigV4Auth` over our exact
//!   request must produce our `Authorization` header.
//! * Answers: both decode the same canned answer (JSON, or an AWS event
//!   stream with `chunk`/`contentBlockDelta`/`messageStop`/`metadata`
//!   events and exceptions) and must find the same texts, vectors, scores,
//!   stop reasons, usage and error codes; a corrupted CRC is botocore's
//!   error and our `Protocol` error.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use futures_util::StreamExt as _;
use inferlink::prelude::*;
use inferlink::transport::TransportConfig;
use inferlink::{
    ChatMessage, EmbedRequest, ErrorKind, GenerateRequest, ModelRef, RawRequest, RerankRequest,
};
use inferlink_aws::{AwsCredentials, SigV4Signer};
use inferlink_bedrock::eventstream::{Message, encode_message};
use inferlink_bedrock::{Access, BedrockConfig, BedrockConnector, codec};
use inferlink_testkit::fault::{Fault, FaultOptions, FaultServer, RecordedRequest};
use inferlink_testkit::peer::{AwsKeys, botocore_authorization};
use inferlink_testkit::servers::ServerKind;
use serde_json::{Value, json};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "SESSIONTOKENEXAMPLE";
const REGION: &str = "us-east-1";
const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const TITAN: &str = "amazon.titan-embed-text-v2:0";

fn python() -> Option<PathBuf> {
    inferlink_testkit::peer::venv_python(ServerKind::Moto)
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/bedrock_peer.py")
}

fn signed(token: Option<&str>) -> Access {
    let mut creds = AwsCredentials::new(AKID, SECRET);
    if let Some(t) = token {
        creds = creds.with_session_token(t);
    }
    let signer = SigV4Signer::new(creds, REGION)
        .with_signing_name("bedrock")
        .with_fixed_time(UNIX_EPOCH + Duration::from_secs(1_440_938_160));
    Access::Sigv4(signer)
}

fn connector(url: &str, config: BedrockConfig, access: Access) -> BedrockConnector {
    let mut transport = TransportConfig::default();
    transport.gzip = false;
    transport.retry.max_attempts = 1;
    BedrockConnector::with_access(url, transport, config, access).unwrap()
}

/// A recording server answering every request with `answer`.
async fn server(answer: Fault) -> FaultServer {
    let options = FaultOptions {
        fallback: answer,
        ..FaultOptions::default()
    };
    FaultServer::start_with(Vec::new(), options).await.unwrap()
}

/// botocore's client performs `operation` against `url` (on Tokio's
/// blocking pool); its parsed answer.
async fn botocore(url: &str, service: &str, operation: &str, params: Value, auth: &Value) -> Value {
    let mut request = json!({
        "service": service,
        "operation": operation,
        "params": params,
        "endpoint_url": url,
        "region": REGION,
    });
    for (k, v) in auth.as_object().unwrap() {
        request[k] = v.clone();
    }
    let python = python().unwrap();
    tokio::task::spawn_blocking(move || {
        inferlink_testkit::peer::run_json(&python, &script(), "call", &request)
    })
    .await
    .unwrap()
}

/// botocore's `converse_stream` of the body we write for `request`.
async fn botocore_converse_stream(
    url: &str,
    request: &GenerateRequest,
    config: &BedrockConfig,
) -> Value {
    let mut params = codec::converse_body(request, config).unwrap();
    params["modelId"] = json!(CLAUDE);
    botocore(
        url,
        "bedrock-runtime",
        "converse_stream",
        params,
        &keys(None),
    )
    .await
}

fn keys(token: Option<&str>) -> Value {
    let mut auth = json!({"access_key": AKID, "secret_key": SECRET});
    if let Some(t) = token {
        auth["token"] = json!(t);
    }
    auth
}

fn signed_headers(r: &RecordedRequest) -> Vec<String> {
    let auth = r.header("authorization").unwrap_or_default();
    let list = auth.split("SignedHeaders=").nth(1).unwrap_or_default();
    let list = list.split(',').next().unwrap_or_default();
    list.split(';').map(str::to_owned).collect()
}

/// Our request and botocore's for the same operation agree; botocore's
/// SigV4Auth over ours gives our signature.
fn same_request(url: &str, ours: &RecordedRequest, theirs: &RecordedRequest, token: Option<&str>) {
    assert_eq!(
        (&ours.method, &ours.target),
        (&theirs.method, &theirs.target)
    );
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    match (json(&ours.body), json(&theirs.body)) {
        (Some(a), Some(b)) => assert_eq!(a, b, "the JSON bodies"),
        _ => assert_eq!(ours.body, theirs.body, "the bodies"),
    }
    for (name, _) in ours.headers.iter().chain(&theirs.headers) {
        // reqwest sends `accept: */*` when a request names no media type; botocore none.
        let default_accept = name == "accept" && theirs.header(name).is_none();
        if name == "content-type"
            || (name == "accept" && !default_accept)
            || name.starts_with("x-amzn-bedrock-")
        {
            assert_eq!(ours.header(name), theirs.header(name), "header {name}");
        }
    }
    assert_eq!(
        signed_headers(ours),
        signed_headers(theirs),
        "signed header names"
    );
    let keys = AwsKeys {
        access_key: AKID,
        secret_key: SECRET,
        token,
    };
    let python = python().unwrap();
    let botocore = botocore_authorization(&python, &script(), url, ours, REGION, "bedrock", keys);
    assert_eq!(
        botocore.as_deref(),
        ours.header("authorization"),
        "botocore's SigV4Auth over our request"
    );
}

fn event(event_type: &str, payload: Value) -> Vec<u8> {
    let message = Message::json_event(event_type, payload.to_string());
    encode_message(&message).unwrap().to_vec()
}

fn exception(exception_type: &str, payload: Value) -> Vec<u8> {
    let message = Message::json_exception(exception_type, payload.to_string());
    encode_message(&message).unwrap().to_vec()
}

fn event_stream(frames: &[Vec<u8>]) -> Fault {
    Fault::with_body(200, "application/vnd.amazon.eventstream", frames.concat()).chunked()
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    let hex = v["hex"].as_str().expect("bytes as hex");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn converse_requests_and_answers_match_botocore() {
    if python().is_none() {
        return;
    }
    let answer = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "Par"}, {"text": "is"}]}},
        "stopReason": "max_tokens",
        "usage": {"inputTokens": 12, "outputTokens": 2, "totalTokens": 14},
        "metrics": {"latencyMs": 40},
    });
    let config = BedrockConfig::from_target(
        &inferlink::ConnectTarget::new("bedrock", "http://127.0.0.1:1")
            .with_plain("guardrail_identifier", "gr1abc")
            .with_plain("guardrail_version", "3")
            .with_plain("guardrail_trace", "enabled")
            .with_plain("performance_latency", "optimized")
            .with_plain("service_tier", "priority"),
    )
    .unwrap();
    let request = GenerateRequest::chat([
        ChatMessage::system("Answer in one word."),
        ChatMessage::user("Capital of France?"),
    ])
    .max_tokens(16)
    .temperature(0.25)
    .top_p(0.5)
    .stop("\n\n")
    .extra("top_k", json!(40));
    for token in [None, Some(TOKEN)] {
        let server = server(Fault::json(200, &answer.to_string())).await;
        let url = server.url();
        let ours = connector(&url, config.clone(), signed(token))
            .generate(&ModelRef::new(CLAUDE), request.clone())
            .await
            .unwrap();
        let mut params = codec::converse_body(&request, &config).unwrap();
        params["modelId"] = json!(CLAUDE);
        let theirs = botocore(&url, "bedrock-runtime", "converse", params, &keys(token)).await;
        assert_eq!(theirs["ok"], true, "{theirs}");
        let recorded = server.recorded();
        assert_eq!(recorded.len(), 2);
        assert_eq!(
            recorded[0].target,
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        );
        same_request(&url, &recorded[0], &recorded[1], token);
        let result = &theirs["result"];
        let text: String = result["output"]["message"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect();
        assert_eq!(ours.text, text);
        let stop = result["stopReason"].as_str().unwrap();
        assert_eq!(ours.finish_reason, Some(codec::finish_reason(stop)));
        let usage = ours.usage.unwrap();
        assert_eq!(usage.prompt_tokens, result["usage"]["inputTokens"].as_u64());
        assert_eq!(
            usage.completion_tokens,
            result["usage"]["outputTokens"].as_u64()
        );
        assert_eq!(usage.total_tokens, result["usage"]["totalTokens"].as_u64());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn converse_streams_decode_like_botocore() {
    if python().is_none() {
        return;
    }
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 9}}),
        ),
    ];
    let server = server(event_stream(&frames)).await;
    let url = server.url();
    let request = GenerateRequest::prompt("Say hello").max_tokens(5);
    let config = BedrockConfig::default();
    let stream = connector(&url, config.clone(), signed(None))
        .generate_stream(&ModelRef::new(CLAUDE), request.clone())
        .await
        .unwrap();
    let pieces: Vec<_> = stream.collect().await;
    let pieces: Vec<_> = pieces.into_iter().map(Result::unwrap).collect();
    let theirs = botocore_converse_stream(&url, &request, &config).await;
    assert_eq!(theirs["ok"], true, "{theirs}");
    let recorded = server.recorded();
    assert_eq!(
        recorded[0].target,
        format!("/model/{}/converse-stream", CLAUDE.replace(':', "%3A"))
    );
    same_request(&url, &recorded[0], &recorded[1], None);
    let events = theirs["result"]["stream"].as_array().unwrap();
    assert_eq!(events.len(), 6);
    let their_text: String = events
        .iter()
        .filter_map(|e| e["contentBlockDelta"]["delta"]["text"].as_str())
        .collect();
    let our_text: String = pieces.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(our_text, their_text);
    let stop = events
        .iter()
        .find_map(|e| e["messageStop"]["stopReason"].as_str())
        .unwrap();
    let reasons: Vec<_> = pieces
        .iter()
        .filter_map(|p| p.finish_reason.clone())
        .collect();
    assert_eq!(reasons, vec![codec::finish_reason(stop)]);
    let usage = pieces.iter().find_map(|p| p.usage).unwrap();
    let theirs_usage =
        &events.iter().find(|e| e.get("metadata").is_some()).unwrap()["metadata"]["usage"];
    assert_eq!(usage.total_tokens, theirs_usage["totalTokens"].as_u64());
    assert_eq!(usage.prompt_tokens, theirs_usage["inputTokens"].as_u64());
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_exceptions_and_bad_frames_fail_both_the_same_way() {
    if python().is_none() {
        return;
    }
    let delta = event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
    );
    let throttled = exception(
        "throttlingException",
        json!({"message": "Too many tokens, slow down"}),
    );
    let mut corrupted = event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "x"}}),
    );
    let n = corrupted.len();
    corrupted[n - 6] ^= 0x20;
    for (frames, our_kind, their_error) in [
        (
            vec![delta.clone(), throttled],
            ErrorKind::RateLimited,
            "throttlingException",
        ),
        (
            vec![delta.clone(), corrupted],
            ErrorKind::Protocol,
            "ChecksumMismatch",
        ),
        (vec![delta.clone()], ErrorKind::Protocol, ""),
    ] {
        let server = server(event_stream(&frames)).await;
        let url = server.url();
        let request = GenerateRequest::prompt("hi");
        let stream = connector(&url, BedrockConfig::default(), signed(None))
            .generate_stream(&ModelRef::new(CLAUDE), request.clone())
            .await
            .unwrap();
        let pieces: Vec<_> = stream.collect().await;
        assert_eq!(pieces[0].as_ref().unwrap().text, "Hi");
        let e = pieces.last().unwrap().as_ref().unwrap_err();
        assert_eq!(e.kind(), our_kind, "{e}");
        assert!(!e.is_retryable());
        let theirs = botocore_converse_stream(&url, &request, &BedrockConfig::default()).await;
        if their_error.is_empty() {
            // botocore ends quietly where the events stop; we say messageStop never came.
            assert_eq!(theirs["ok"], true, "{theirs}");
            assert!(e.message().contains("messageStop"), "{e}");
            continue;
        }
        assert_eq!(theirs["ok"], false, "{theirs}");
        let said = format!("{} {}", theirs["error"], theirs["code"]);
        assert!(said.contains(their_error), "botocore: {theirs}");
        if our_kind == ErrorKind::RateLimited {
            assert_eq!(e.context("vendor_code"), theirs["code"].as_str());
            assert_eq!(e.vendor_message(), Some("Too many tokens, slow down"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_model_and_its_stream_match_botocore() {
    if python().is_none() {
        return;
    }
    let config = BedrockConfig::from_target(
        &inferlink::ConnectTarget::new("bedrock", "http://127.0.0.1:1")
            .with_plain("guardrail_identifier", "gr1abc")
            .with_plain("guardrail_version", "DRAFT")
            .with_plain("guardrail_trace", "enabled_full")
            .with_plain("service_tier", "flex"),
    )
    .unwrap();
    let body = r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;
    let boto_params = |accept_key: &str| {
        let mut p = json!({
            "modelId": CLAUDE,
            "body_text": body,
            "contentType": "application/json",
            "guardrailIdentifier": "gr1abc",
            "guardrailVersion": "DRAFT",
            "trace": "ENABLED_FULL",
            "serviceTier": "flex",
        });
        p[accept_key] = json!("application/json");
        p
    };
    let mut raw = RawRequest::new(body, "application/json");
    raw.accept = Some("application/json".into());
    // InvokeModel.
    let answer = r#"{"content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn"}"#;
    let first =
        server(Fault::json(200, answer).header("x-amzn-bedrock-service-tier", "flex")).await;
    let url = first.url();
    let ours = connector(&url, config.clone(), signed(Some(TOKEN)))
        .invoke(&ModelRef::new(CLAUDE), raw.clone())
        .await
        .unwrap();
    let theirs = botocore(
        &url,
        "bedrock-runtime",
        "invoke_model",
        boto_params("accept"),
        &keys(Some(TOKEN)),
    )
    .await;
    assert_eq!(theirs["ok"], true, "{theirs}");
    let recorded = first.recorded();
    assert!(recorded[0].target.ends_with("/invoke"));
    same_request(&url, &recorded[0], &recorded[1], Some(TOKEN));
    assert_eq!(
        ours.body.as_ref(),
        hex_bytes(&theirs["result"]["body"]).as_slice()
    );
    assert_eq!(
        ours.content_type.as_deref(),
        theirs["result"]["contentType"].as_str()
    );
    assert!(
        ours.headers
            .contains(&("x-amzn-bedrock-service-tier".into(), "flex".into()))
    );
    // InvokeModelWithResponseStream.
    let parts = ["{\"delta\":\"Hel", "lo\"}"];
    let frames: Vec<Vec<u8>> = parts
        .iter()
        .map(|p| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(p);
            event("chunk", json!({"bytes": b64}))
        })
        .collect();
    let server =
        server(event_stream(&frames).header("x-amzn-bedrock-content-type", "application/json"))
            .await;
    let url = server.url();
    let stream = connector(&url, config.clone(), signed(None))
        .invoke_stream(&ModelRef::new(CLAUDE), raw)
        .await
        .unwrap();
    assert_eq!(stream.content_type.as_deref(), Some("application/json"));
    let chunks: Vec<_> = stream.body.map(Result::unwrap).collect().await;
    let theirs = botocore(
        &url,
        "bedrock-runtime",
        "invoke_model_with_response_stream",
        boto_params("accept"),
        &keys(None),
    )
    .await;
    assert_eq!(theirs["ok"], true, "{theirs}");
    let recorded = server.recorded();
    assert!(recorded[0].target.ends_with("/invoke-with-response-stream"));
    assert_eq!(
        recorded[0].header("x-amzn-bedrock-accept"),
        Some("application/json")
    );
    same_request(&url, &recorded[0], &recorded[1], None);
    let their_chunks: Vec<Vec<u8>> = theirs["result"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| hex_bytes(&e["chunk"]["bytes"]))
        .collect();
    let our_chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
    assert_eq!(our_chunks, their_chunks);
    assert_eq!(our_chunks.concat(), parts.concat().as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn titan_embeddings_and_bearer_keys_match_botocore() {
    if python().is_none() {
        return;
    }
    let answer = r#"{"embedding":[0.6,0.8],"inputTextTokenCount":4}"#;
    let server = server(Fault::json(200, answer)).await;
    let url = server.url();
    let access = Access::Bearer {
        key: inferlink::Secret::new("ABSKbedrock-api-key-example"),
        region: Some(REGION.into()),
    };
    let ours = connector(&url, BedrockConfig::default(), access)
        .embed(
            &ModelRef::new(TITAN),
            EmbedRequest::new(["hello world"]).dimensions(256),
        )
        .await
        .unwrap();
    assert_eq!(ours.vectors, vec![vec![0.6, 0.8]]);
    let request = EmbedRequest::new(["hello world"]).dimensions(256);
    let body = codec::embed_body(
        inferlink_bedrock::config::EmbedFormat::Titan,
        &request,
        &BedrockConfig::default(),
    );
    let params = json!({
        "modelId": TITAN,
        "body_text": body.to_string(),
        "contentType": "application/json",
        "accept": "application/json",
    });
    let auth = json!({"bearer": "ABSKbedrock-api-key-example"});
    let theirs = botocore(&url, "bedrock-runtime", "invoke_model", params, &auth).await;
    assert_eq!(theirs["ok"], true, "{theirs}");
    let recorded = server.recorded();
    let (ours, theirs_req) = (&recorded[0], &recorded[1]);
    assert_eq!(ours.target, theirs_req.target);
    assert_eq!(
        ours.header("authorization"),
        Some("Bearer ABSKbedrock-api-key-example")
    );
    assert_eq!(
        ours.header("authorization"),
        theirs_req.header("authorization")
    );
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
    assert_eq!(parse(&ours.body), parse(&theirs_req.body));
    let their_vector: Value =
        serde_json::from_slice(&hex_bytes(&theirs["result"]["body"])).unwrap();
    assert_eq!(their_vector["embedding"], json!([0.6, 0.8]));
}

#[tokio::test(flavor = "multi_thread")]
async fn rerank_requests_and_answers_match_botocore() {
    if python().is_none() {
        return;
    }
    let answer = json!({"results": [
        {"index": 2, "relevanceScore": 0.91},
        {"index": 0, "relevanceScore": 0.42},
    ]});
    let server = server(Fault::json(200, &answer.to_string())).await;
    let url = server.url();
    let request =
        RerankRequest::new("what is bedrock?", ["a cat", "a dog", "a managed service"]).top_n(2);
    let model = "amazon.rerank-v1:0";
    let ours = connector(&url, BedrockConfig::default(), signed(None))
        .rerank(&ModelRef::new(model), request.clone())
        .await
        .unwrap();
    let arn = format!("arn:aws:bedrock:{REGION}::foundation-model/{model}");
    let params = codec::rerank_body(&arn, &request);
    let theirs = botocore(&url, "bedrock-agent-runtime", "rerank", params, &keys(None)).await;
    assert_eq!(theirs["ok"], true, "{theirs}");
    let recorded = server.recorded();
    assert_eq!(recorded[0].target, "/rerank");
    same_request(&url, &recorded[0], &recorded[1], None);
    let theirs: Vec<(usize, f64)> = theirs["result"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap() as usize,
                r["relevanceScore"].as_f64().unwrap(),
            )
        })
        .collect();
    let ours: Vec<(usize, f64)> = ours.results.iter().map(|h| (h.index, h.score)).collect();
    assert_eq!(ours, theirs);
}
