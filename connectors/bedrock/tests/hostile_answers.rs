//! Bedrock's error answers and hostile answers, served by a stand-in for
//! Bedrock (a scripted loopback server) in the shapes AWS documents: the
//! error type in `x-amzn-ErrorType` (`Name:namespace`) with the status the
//! botocore model gives it and `{"message": …}`; answers that are not the
//! expected JSON, too large, or broken event streams. Every one is a typed
//! error with the documented kind and retry rule, counted at the server.
//! Records connect through the factory (keys checked, credentials read by
//! `inferlink-aws`).

use std::sync::Arc;

use futures_util::StreamExt as _;
use inferlink::{
    ConnectTarget, Connectors, EmbedRequest, ErrorKind, GenerateRequest, InferenceConnector,
    ModelRef, RawRequest, RerankRequest,
};
use inferlink_bedrock::eventstream::{Message, encode_message};
use inferlink_testkit::fault::{Fault, FaultOptions, FaultServer};
use serde_json::json;

const TITAN: &str = "amazon.titan-embed-text-v2:0";
const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn target(url: &str) -> ConnectTarget {
    ConnectTarget::new("bedrock", url)
        .with_plain("region", "us-east-1")
        .with_secret("aws_access_key_id", "AKIDEXAMPLE")
        .with_secret("aws_secret_access_key", "secret-planted-example")
        .with_plain("retry_max_attempts", "2")
        .with_plain("retry_backoff_base_ms", "1")
        .with_plain("retry_backoff_max_ms", "2")
        .with_plain("response_max_bytes", "4096")
}

async fn connect(target: &ConnectTarget) -> inferlink::Result<Arc<dyn InferenceConnector>> {
    Connectors::new()
        .with(inferlink_bedrock::factory())
        .connect(target)
        .await
}

async fn stand_in(answer: Fault) -> FaultServer {
    let options = FaultOptions {
        fallback: answer,
        ..FaultOptions::default()
    };
    FaultServer::start_with(Vec::new(), options).await.unwrap()
}

/// A Bedrock error answer: its type in `x-amzn-ErrorType`, a request id.
fn aws_error(status: u16, error_type: &str, body: serde_json::Value) -> Fault {
    Fault::json(status, &body.to_string())
        .header(
            "x-amzn-ErrorType",
            &format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .header("x-amzn-RequestId", "req-1234")
}

#[tokio::test]
async fn every_documented_error_type_has_its_kind_and_retry_rule() {
    use ErrorKind as K;
    // (type, status from botocore's model, kind, requests made with 2 attempts
    // for an idempotent embed call)
    for (error_type, status, kind, requests) in [
        ("ValidationException", 400, K::InvalidInput, 1),
        ("AccessDeniedException", 403, K::PermissionDenied, 1),
        ("ResourceNotFoundException", 404, K::NotFound, 1),
        ("ThrottlingException", 429, K::RateLimited, 2),
        ("ServiceQuotaExceededException", 400, K::RateLimited, 1),
        ("ModelNotReadyException", 429, K::Unavailable, 2),
        ("ModelTimeoutException", 408, K::Timeout, 2),
        ("ModelErrorException", 424, K::ModelError, 1),
        ("InternalServerException", 500, K::Unavailable, 2),
        ("ServiceUnavailableException", 503, K::Unavailable, 2),
        ("UnrecognizedClientException", 403, K::Unauthenticated, 1),
    ] {
        let body = json!({"message": format!("{error_type} said so")});
        let server = stand_in(aws_error(status, error_type, body)).await;
        let bedrock = connect(&target(&server.url())).await.unwrap();
        let e = bedrock
            .embed(&ModelRef::new(TITAN), EmbedRequest::new(["x"]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{error_type}: {e}");
        assert_eq!(server.requests(), requests, "{error_type}: requests made");
        assert_eq!(e.context("vendor_code"), Some(error_type), "{e}");
        assert_eq!(e.context("request_id"), Some("req-1234"), "{e}");
        assert!(
            e.to_string().contains(&format!("{error_type} said so")),
            "{e}"
        );
        assert!(!format!("{e:?}").contains("secret-planted"), "{e:?}");
    }
}

#[tokio::test]
async fn generation_is_not_resent_after_it_may_have_run() {
    let body = json!({"message": "internal"});
    let server = stand_in(aws_error(500, "InternalServerException", body)).await;
    let bedrock = connect(&target(&server.url())).await.unwrap();
    let e = bedrock
        .generate(&ModelRef::new(CLAUDE), GenerateRequest::prompt("hi"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(server.requests(), 1, "Converse is not idempotent");
    // A throttled call did no work: resent whatever the idempotency.
    let throttled = aws_error(429, "ThrottlingException", json!({"message": "slow"}));
    let server = stand_in(throttled).await;
    let bedrock = connect(&target(&server.url())).await.unwrap();
    let e = bedrock
        .generate(&ModelRef::new(CLAUDE), GenerateRequest::prompt("hi"))
        .await
        .unwrap_err();
    assert_eq!((e.kind(), server.requests()), (ErrorKind::RateLimited, 2));
}

#[tokio::test]
async fn a_model_error_keeps_the_models_status_and_name() {
    let body = json!({
        "message": "Received server error (500) from model",
        "originalStatusCode": 500,
        "resourceName": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint",
    });
    let server = stand_in(aws_error(424, "ModelErrorException", body)).await;
    let bedrock = connect(&target(&server.url())).await.unwrap();
    let e = bedrock
        .invoke(&ModelRef::new(CLAUDE), RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(e.context("original_status"), Some("500"));
    assert!(e.context("resource_name").unwrap().ends_with("my-endpoint"));
}

#[tokio::test]
async fn answers_that_are_not_what_bedrock_sends_are_protocol_errors() {
    let model = ModelRef::new(CLAUDE);
    for answer in [
        Fault::malformed_json(),
        Fault::json(200, r#"{"output": {"message": {"content": "text"}}}"#),
        Fault::json(200, "[]"),
        Fault::oversized(64 * 1024),
    ] {
        let server = stand_in(answer).await;
        let bedrock = connect(&target(&server.url())).await.unwrap();
        let e = bedrock
            .generate(&model, GenerateRequest::prompt("hi"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    }
    let server = stand_in(Fault::json(
        200,
        r#"{"results":[{"index":7,"relevanceScore":1}]}"#,
    ))
    .await;
    let bedrock = connect(&target(&server.url())).await.unwrap();
    let e = rerank_error(bedrock.as_ref()).await;
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    let server = stand_in(Fault::json(200, r#"{"embeddings":[[1,2]]}"#)).await;
    let bedrock = connect(&target(&server.url())).await.unwrap();
    let e = bedrock
        .embed(
            &ModelRef::new("cohere.embed-english-v3"),
            EmbedRequest::new(["a", "b"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
}

/// The error of a one-document rerank.
async fn rerank_error(bedrock: &dyn InferenceConnector) -> inferlink::Error {
    let model = ModelRef::new("amazon.rerank-v1:0");
    let answer = bedrock.rerank(&model, RerankRequest::new("q", ["a"])).await;
    answer.unwrap_err()
}

fn frame(message: Message) -> Vec<u8> {
    encode_message(&message).unwrap().to_vec()
}

fn event(event_type: &str, payload: &str) -> Vec<u8> {
    frame(Message::json_event(event_type, payload.to_owned()))
}

fn stream(bytes: Vec<u8>) -> Fault {
    Fault::with_body(200, "application/vnd.amazon.eventstream", bytes).chunked()
}

#[tokio::test]
async fn broken_event_streams_end_in_typed_errors() {
    let hello = event("chunk", r#"{"bytes":"aGVsbG8="}"#);
    // A prelude claiming 4 GiB (its CRC right): refused at once, nothing buffered.
    let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    let crc = crc32(&huge);
    huge.extend_from_slice(&crc.to_be_bytes());
    let model_failed = frame(Message::json_exception(
        "modelStreamErrorException",
        r#"{"message":"model failed","originalStatusCode":500}"#,
    ));
    for (bytes, kind, says) in [
        (
            [hello.clone(), huge].concat(),
            ErrorKind::Protocol,
            "total length",
        ),
        (
            [hello.clone(), hello[..20].to_vec()].concat(),
            ErrorKind::Protocol,
            "ended inside",
        ),
        (
            [hello.clone(), event("chunk", r#"{"bytes":"***"}"#)].concat(),
            ErrorKind::Protocol,
            "base64",
        ),
        (
            [hello.clone(), model_failed].concat(),
            ErrorKind::ModelError,
            "modelStreamErrorException",
        ),
    ] {
        let server = stand_in(stream(bytes)).await;
        let bedrock = connect(&target(&server.url())).await.unwrap();
        let answer = bedrock
            .invoke_stream(&ModelRef::new(CLAUDE), RawRequest::json("{}"))
            .await
            .unwrap();
        let items: Vec<_> = answer.body.collect().await;
        assert_eq!(items[0].as_ref().unwrap().as_ref(), b"hello");
        let e = items.last().unwrap().as_ref().unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert_eq!(e.model(), Some(CLAUDE));
    }
    // Not an event stream at all.
    let server = stand_in(Fault::with_body(200, "text/html", b"<html>".to_vec())).await;
    let bedrock = connect(&target(&server.url())).await.unwrap();
    let e = bedrock
        .generate_stream(&ModelRef::new(CLAUDE), GenerateRequest::prompt("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
}

/// CRC32 (IEEE), bitwise: enough for one 8-byte prelude in a test.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn records_with_typos_or_without_credentials_are_refused() {
    let typo = target("http://127.0.0.1:1").with_plain("guardrail_identifer", "g1");
    let e = connect(&typo).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        e.message()
            .contains("did you mean \"guardrail_identifier\""),
        "{e}"
    );
    let no_region = ConnectTarget::new("bedrock", "http://127.0.0.1:1")
        .with_plain("auth", "sigv4")
        .with_secret("aws_access_key_id", "AKIDEXAMPLE")
        .with_secret("aws_secret_access_key", "secret-planted-example");
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        let e = connect(&no_region).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.path()),
            (ErrorKind::Config, Some("region")),
            "{e}"
        );
    }
    let clear = ConnectTarget::new("bedrock", "http://bedrock.example.internal")
        .with_secret("api_key", "bedrock-key-planted");
    let e = connect(&clear).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::Config, Some("api_key")),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("planted"));
    // An API key is sent as a bearer token; rerank then is refused (SigV4 only).
    let server = stand_in(Fault::json(
        200,
        r#"{"embedding":[1.0],"inputTextTokenCount":1}"#,
    ))
    .await;
    let keyed = ConnectTarget::new("bedrock", server.url())
        .with_plain("region", "us-east-1")
        .with_secret("api_key", "bedrock-key-planted");
    let bedrock = connect(&keyed).await.unwrap();
    assert!(!format!("{bedrock:?}").contains("planted"));
    bedrock
        .embed(&ModelRef::new(TITAN), EmbedRequest::new(["x"]))
        .await
        .unwrap();
    assert_eq!(
        server.recorded()[0].header("authorization"),
        Some("Bearer bedrock-key-planted")
    );
    let e = rerank_error(bedrock.as_ref()).await;
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}
