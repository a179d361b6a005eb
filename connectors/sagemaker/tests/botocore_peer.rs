//! Cross-checks against botocore, the AWS SDK for Python (and moto's
//! event-stream encoder), run from the `moto` venv:
//!
//! * SigV4: the same SageMaker operations performed by our client and by
//!   botocore's own `sagemaker-runtime` client, at the same time with the
//!   same credentials, land on a recording loopback server; the requests
//!   must sign the same headers with the same values, and botocore's
//!   `SigV4Auth` given our request must produce our `Authorization` header.
//! * Event streams: frames we encode are parsed by botocore's
//!   `EventStreamBuffer`; frames moto's `EventStreamEncoder` writes are parsed
//!   by our decoder, also through `invoke_stream` over HTTP; a corrupted CRC
//!   is botocore's `ChecksumMismatch` and our `Protocol` error.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt as _;
use inferlink::{ErrorKind, ModelRef, RawRequest};
use inferlink_sagemaker::eventstream::{self, HeaderValue, Message, MessageDecoder};
use inferlink_sagemaker::{
    AwsCredentials, InvokeEndpointAsyncRequest, InvokeEndpointRequest, InvokeStreamRequest,
    SageMakerClient, SageMakerConfig, SigV4Signer,
};
use inferlink_testkit::fault::{Fault, FaultServer, RecordedRequest};
use inferlink_testkit::peer::{AwsKeys, botocore_authorization};
use serde_json::{Value, json};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "SESSIONTOKENEXAMPLE";

fn client(url: &str, token: Option<&str>) -> SageMakerClient {
    let mut creds = AwsCredentials::new(AKID, SECRET);
    if let Some(t) = token {
        creds = creds.with_session_token(t);
    }
    let signer = SigV4Signer::new(creds, "us-east-1")
        .with_fixed_time(UNIX_EPOCH + Duration::from_secs(1_440_938_160));
    let mut config = SageMakerConfig::new(url);
    config.transport.gzip = false;
    config.transport.retry.max_attempts = 1;
    SageMakerClient::with_signer(config, Some(signer)).unwrap()
}

fn signed_headers(r: &RecordedRequest) -> Vec<String> {
    let auth = r.header("authorization").expect("an Authorization header");
    let list = auth
        .split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    list.split(';').map(str::to_owned).collect()
}

/// Compares our request with botocore's for the same operation, then has
/// botocore sign ours.
fn cross_check(
    python: &std::path::Path,
    url: &str,
    ours: &RecordedRequest,
    theirs: &RecordedRequest,
    token: Option<&str>,
) {
    assert_eq!(ours.method, theirs.method);
    assert_eq!(ours.target, theirs.target);
    assert_eq!(ours.body, theirs.body);
    let mine = signed_headers(ours);
    assert_eq!(mine, signed_headers(theirs), "signed header names");
    for name in &mine {
        assert_eq!(
            ours.header(name),
            theirs.header(name),
            "value of the signed header {name}"
        );
    }
    // Same time, same credentials, same signed headers: the same signature.
    assert_eq!(ours.header("authorization"), theirs.header("authorization"));
    // botocore's SigV4Auth over exactly what we sent and signed.
    let keys = AwsKeys {
        access_key: AKID,
        secret_key: SECRET,
        token,
    };
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/aws_peer.py");
    let botocore =
        botocore_authorization(python, &script, url, ours, "us-east-1", "sagemaker", keys);
    assert_eq!(
        botocore.as_deref(),
        ours.header("authorization"),
        "botocore's SigV4Auth over our request"
    );
    assert_eq!(ours.header("x-amz-date"), Some("20150830T123600Z"));
    if let Some(t) = token {
        assert_eq!(ours.header("x-amz-security-token"), Some(t));
    }
}

/// Has botocore (the peer, on Tokio's blocking pool) send `operation`
/// with `params` to `url`, signed with the test keys and `token`.
async fn boto_call(
    python: &std::path::Path,
    url: &str,
    token: Option<&'static str>,
    operation: &'static str,
    params: Value,
) {
    let mut request = json!({
        "endpoint_url": url,
        "region": "us-east-1",
        "access_key": AKID,
        "secret_key": SECRET,
        "operation": operation,
        "params": params,
    });
    if let Some(t) = token {
        request["token"] = json!(t);
    }
    let python = python.to_owned();
    tokio::task::spawn_blocking(move || support::peer(&python, "client", &request))
        .await
        .unwrap();
}

#[tokio::test]
async fn invoke_endpoint_signs_like_botocore() {
    let Some(python) = support::peer_python() else {
        return;
    };
    for token in [None, Some(TOKEN)] {
        let server = FaultServer::start(Vec::new()).await.unwrap();
        let url = server.url();
        let body = r#"{"instances": [[1.0, 2.0]]}"#;
        let request = InvokeEndpointRequest::new(body, "application/json")
            .with_accept("application/json")
            .with_custom_attributes("c=1; trace=abc")
            .with_target_model("model-a.tar.gz")
            .with_target_variant("variant-1")
            .with_target_container_hostname("container-1")
            .with_inference_id("inference-42")
            .with_enable_explanations("`true`")
            .with_inference_component("component-1")
            .with_session_id("NEW_SESSION");
        client(&url, token)
            .invoke_endpoint("my-endpoint", request)
            .await
            .unwrap();
        boto_call(
            &python,
            &url,
            token,
            "invoke_endpoint",
            json!({
                "EndpointName": "my-endpoint",
                "Body": body,
                "ContentType": "application/json",
                "Accept": "application/json",
                "CustomAttributes": "c=1; trace=abc",
                "TargetModel": "model-a.tar.gz",
                "TargetVariant": "variant-1",
                "TargetContainerHostname": "container-1",
                "InferenceId": "inference-42",
                "EnableExplanations": "`true`",
                "InferenceComponentName": "component-1",
                "SessionId": "NEW_SESSION",
            }),
        )
        .await;
        let recorded = server.recorded();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].target, "/endpoints/my-endpoint/invocations");
        // Every header of the API went out under its own name.
        for h in [
            "x-amzn-sagemaker-custom-attributes",
            "x-amzn-sagemaker-target-model",
            "x-amzn-sagemaker-target-variant",
            "x-amzn-sagemaker-target-container-hostname",
            "x-amzn-sagemaker-inference-id",
            "x-amzn-sagemaker-enable-explanations",
            "x-amzn-sagemaker-inference-component",
            "x-amzn-sagemaker-session-id",
        ] {
            assert!(recorded[0].header(h).is_some(), "{h} missing");
        }
        let py = python.clone();
        let url2 = url.clone();
        tokio::task::spawn_blocking(move || {
            cross_check(&py, &url2, &recorded[0], &recorded[1], token)
        })
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn async_and_stream_requests_sign_like_botocore() {
    let Some(python) = support::peer_python() else {
        return;
    };
    let server = FaultServer::start(vec![
        Fault::json(202, r#"{"InferenceId":"abc"}"#)
            .header("X-Amzn-SageMaker-OutputLocation", "s3://bucket/out/abc.out")
            .header(
                "X-Amzn-SageMaker-FailureLocation",
                "s3://bucket/failures/abc.out",
            ),
    ])
    .await
    .unwrap();
    let url = server.url();
    let c = client(&url, Some(TOKEN));
    let answer = c
        .invoke_endpoint_async(
            "async-endpoint",
            InvokeEndpointAsyncRequest::new("s3://bucket/in/input.json")
                .with_content_type("application/json")
                .with_accept("application/json")
                .with_custom_attributes("k=v")
                .with_inference_id("inf-1")
                .with_request_ttl_seconds(600)
                .with_invocation_timeout_seconds(120),
        )
        .await
        .unwrap();
    assert_eq!(answer.inference_id.as_deref(), Some("abc"));
    assert_eq!(
        answer.output_location.as_deref(),
        Some("s3://bucket/out/abc.out")
    );
    assert_eq!(
        answer.failure_location.as_deref(),
        Some("s3://bucket/failures/abc.out")
    );
    boto_call(
        &python,
        &url,
        Some(TOKEN),
        "invoke_endpoint_async",
        json!({
            "EndpointName": "async-endpoint",
            "InputLocation": "s3://bucket/in/input.json",
            "ContentType": "application/json",
            "Accept": "application/json",
            "CustomAttributes": "k=v",
            "InferenceId": "inf-1",
            "RequestTTLSeconds": 600,
            "InvocationTimeoutSeconds": 120,
        }),
    )
    .await;
    // The stream request: our client reads the answer as an event stream and
    // fails on the recording server's JSON, after the request was recorded.
    let stream = c
        .invoke_endpoint_with_response_stream(
            "stream-endpoint",
            InvokeStreamRequest::new(r#"{"inputs":"hi"}"#, "application/json"),
        )
        .await;
    assert_eq!(stream.unwrap_err().kind(), ErrorKind::Protocol);
    boto_call(
        &python,
        &url,
        Some(TOKEN),
        "invoke_endpoint_with_response_stream",
        json!({
            "EndpointName": "stream-endpoint",
            "Body": r#"{"inputs":"hi"}"#,
            "ContentType": "application/json",
        }),
    )
    .await;
    let recorded = server.recorded();
    assert_eq!(recorded.len(), 4);
    assert_eq!(
        recorded[0].target,
        "/endpoints/async-endpoint/async-invocations"
    );
    assert_eq!(
        recorded[0].header("x-amzn-sagemaker-inputlocation"),
        Some("s3://bucket/in/input.json")
    );
    assert_eq!(
        recorded[2].target,
        "/endpoints/stream-endpoint/invocations-response-stream"
    );
    let url2 = url.clone();
    tokio::task::spawn_blocking(move || {
        cross_check(&python, &url2, &recorded[0], &recorded[1], Some(TOKEN));
        cross_check(&python, &url2, &recorded[2], &recorded[3], Some(TOKEN));
    })
    .await
    .unwrap();
}

fn sample_messages() -> Vec<Message> {
    vec![
        Message::new("hello")
            .with_string_header(":event-type", "PayloadPart")
            .with_string_header(":content-type", "application/octet-stream")
            .with_string_header(":message-type", "event"),
        Message::new(vec![0u8, 159, 146, 150, 255])
            .with_header("bool-true", HeaderValue::Bool(true))
            .with_header("bool-false", HeaderValue::Bool(false))
            .with_header("byte", HeaderValue::Byte(-7))
            .with_header("short", HeaderValue::Int16(-1234))
            .with_header("int", HeaderValue::Int32(123_456_789))
            .with_header("long", HeaderValue::Int64(-9_000_000_000))
            .with_header("bytes", HeaderValue::Bytes(Bytes::from_static(b"\x01\x02")))
            .with_header("string", HeaderValue::String("ünïcode".into()))
            .with_header("timestamp", HeaderValue::Timestamp(1_440_938_160_000))
            .with_header("uuid", HeaderValue::Uuid(*b"0123456789abcdef")),
        Message::new(r#"{"Message":"took too long","ErrorCode":"ModelInvocationTimeExceeded"}"#)
            .with_string_header(":message-type", "exception")
            .with_string_header(":exception-type", "ModelStreamError")
            .with_string_header(":content-type", "application/json"),
        Message::new(Bytes::new()),
    ]
}

fn expected_boto_value(v: &HeaderValue) -> Value {
    match v {
        HeaderValue::Bool(b) => json!(b),
        HeaderValue::Byte(n) => json!(n),
        HeaderValue::Int16(n) => json!(n),
        HeaderValue::Int32(n) => json!(n),
        HeaderValue::Int64(n) | HeaderValue::Timestamp(n) => json!(n),
        HeaderValue::Bytes(b) => json!(support::hex(b)),
        HeaderValue::String(s) => json!(s),
        HeaderValue::Uuid(u) => json!(support::hex(u)),
    }
}

#[test]
fn botocore_parses_the_frames_we_encode() {
    let Some(python) = support::peer_python() else {
        return;
    };
    let messages = sample_messages();
    let wire: Vec<u8> = messages
        .iter()
        .flat_map(|m| eventstream::encode_message(m).unwrap().to_vec())
        .collect();
    let parsed = support::peer(&python, "decode", &json!({"hex": support::hex(&wire)}));
    assert!(parsed.get("error").is_none(), "{parsed}");
    let got = parsed["messages"].as_array().unwrap();
    assert_eq!(got.len(), messages.len());
    for (m, g) in messages.iter().zip(got) {
        assert_eq!(g["payload_hex"], support::hex(&m.payload));
        let headers = g["headers"].as_object().unwrap();
        assert_eq!(headers.len(), m.headers.len());
        for (name, value) in &m.headers {
            assert_eq!(headers[name], expected_boto_value(value), "header {name}");
        }
    }

    // A corrupted message CRC, then a corrupted prelude CRC: botocore refuses
    // both, and so do we.
    let one = eventstream::encode_message(&messages[0]).unwrap().to_vec();
    for at in [one.len() - 1, 9] {
        let mut bad = one.clone();
        bad[at] ^= 0x01;
        let parsed = support::peer(&python, "decode", &json!({"hex": support::hex(&bad)}));
        assert_eq!(parsed["error"], "ChecksumMismatch", "byte {at}: {parsed}");
        let e = eventstream::decode_message(Bytes::from(bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("CRC32"), "{e}");
    }
}

fn moto_encoded(python: &std::path::Path, messages: Value) -> Vec<u8> {
    let out = support::peer(python, "encode", &json!({ "messages": messages }));
    support::unhex(out["hex"].as_str().unwrap())
}

fn parts() -> Value {
    json!([
        {"headers": {":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                     ":message-type": "event"},
         "payload_hex": support::hex(b"{\"token\": \"Hel")},
        {"headers": {":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                     ":message-type": "event"},
         "payload_hex": support::hex(b"lo\"}\n{\"token\": \"!\"}\n")},
        {"headers": {":message-type": "exception", ":exception-type": "ModelStreamError",
                     ":content-type": "application/json"},
         "payload_hex": support::hex(br#"{"Message":"the model stopped","ErrorCode":"StreamBroken"}"#)},
    ])
}

#[test]
fn we_parse_the_frames_moto_encodes() {
    let Some(python) = support::peer_python() else {
        return;
    };
    let wire = moto_encoded(&python, parts());
    // Cut everywhere: the decoder must not care where chunks end.
    for cut in [1, 7, 12, 16, 33, wire.len()] {
        let mut d = MessageDecoder::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(cut) {
            d.push(chunk);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        d.finish().unwrap();
        assert_eq!(got.len(), 3, "cut {cut}");
        assert_eq!(got[0].string_header(":event-type"), Some("PayloadPart"));
        assert_eq!(&got[1].payload[..], b"lo\"}\n{\"token\": \"!\"}\n");
        assert_eq!(
            got[2].string_header(":exception-type"),
            Some("ModelStreamError")
        );
    }
}

async fn stream_connector(url: &str) -> std::sync::Arc<dyn inferlink::InferenceConnector> {
    support::connect(
        url,
        &[("region", "us-east-1")],
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn invoke_stream_yields_payload_parts_then_the_stream_error() {
    let Some(python) = support::peer_python() else {
        return;
    };
    let py = python.clone();
    let wire = tokio::task::spawn_blocking(move || moto_encoded(&py, parts()))
        .await
        .unwrap();
    let server = FaultServer::start(vec![
        Fault::with_body(200, "application/vnd.amazon.eventstream", wire)
            .header("X-Amzn-SageMaker-Content-Type", "application/jsonlines")
            .header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
            .header("X-Amzn-SageMaker-Custom-Attributes", "c=2")
            .chunked(),
    ])
    .await
    .unwrap();
    let connector = stream_connector(&server.url()).await;
    assert!(inferlink::connector::capabilities_of(&*connector).stream_invoke);
    let stream = connector
        .invoke_stream(
            &ModelRef::new("llm"),
            RawRequest::json(r#"{"inputs": "Hi", "parameters": {"max_new_tokens": 5}}"#),
        )
        .await
        .unwrap();
    assert_eq!(
        stream.content_type.as_deref(),
        Some("application/jsonlines")
    );
    assert!(stream.headers.contains(&(
        "x-amzn-invoked-production-variant".into(),
        "AllTraffic".into()
    )));
    let items: Vec<_> = stream.body.collect().await;
    assert_eq!(items.len(), 3, "{items:?}");
    let text: Vec<u8> = items[..2]
        .iter()
        .flat_map(|i| i.as_ref().unwrap().to_vec())
        .collect();
    assert_eq!(text, b"{\"token\": \"Hello\"}\n{\"token\": \"!\"}\n");
    let e = items[2].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(e.vendor_message(), Some("the model stopped"));
    assert_eq!(e.context("error_code"), Some("StreamBroken"));
    assert_eq!(e.vendor(), Some("sagemaker"));
    assert_eq!(e.model(), Some("llm"));
    let recorded = server.recorded();
    assert_eq!(
        recorded[0].target,
        "/endpoints/llm/invocations-response-stream"
    );
    assert!(recorded[0].header("authorization").is_some());
}

#[tokio::test]
async fn a_corrupted_frame_in_a_stream_is_a_protocol_error() {
    let Some(python) = support::peer_python() else {
        return;
    };
    let py = python.clone();
    let mut wire = tokio::task::spawn_blocking(move || moto_encoded(&py, parts()))
        .await
        .unwrap();
    // Flip a payload byte of the second message: its message CRC no longer matches.
    let first_len = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize;
    wire[first_len + 30] ^= 0x40;
    let server = FaultServer::start(vec![
        Fault::with_body(200, "application/vnd.amazon.eventstream", wire).chunked(),
    ])
    .await
    .unwrap();
    let connector = stream_connector(&server.url()).await;
    let stream = connector
        .invoke_stream(&ModelRef::new("llm"), RawRequest::json("{}"))
        .await
        .unwrap();
    let items: Vec<_> = stream.body.collect().await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(&items[0].as_ref().unwrap()[..], b"{\"token\": \"Hel");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("message CRC32 mismatch"), "{e}");
    assert_eq!(e.vendor(), Some("sagemaker"));
}
