//! The `bedrock-titan-embed` blueprint's SigV4 path against the harness's
//! moto 5.2.5 server (`ServerKind::Moto`, signatures verified): moto takes
//! Bedrock Runtime's `POST /model/{modelId}/invoke` signed for `bedrock`
//! and checks the signature. The harness's IAM user may only call
//! `sagemaker:*` and `s3:*` (testkit/servers/moto/launch.py), so a
//! correctly signed call is *authenticated* — moto names the user — and
//! then refused by policy (`AccessDenied` for `bedrock:InvokeModel`), while
//! a wrongly signed one is refused as `SignatureDoesNotMatch`. What Titan
//! answers is checked against a stand-in below, written from
//! https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
//! (`embedding`, `inputTextTokenCount`), which also records the signature.

use std::sync::Arc;

use inferlink::{ConnectTarget, Connectors, EmbedRequest, ErrorKind, InferenceConnector, ModelRef};
use inferlink_testkit::fault::{Fault, FaultServer};
use inferlink_testkit::live::shared_server;
use inferlink_testkit::servers::ServerKind;
use serde_json::{Value, json};

const TITAN: &str = "amazon.titan-embed-text-v2:0";

async fn titan(url: &str, key_id: &str, secret: &str) -> Arc<dyn InferenceConnector> {
    let target = ConnectTarget::new("bedrock-titan-embed", url)
        .with_plain("region", "us-east-1")
        .with_secret("aws_access_key_id", key_id)
        .with_secret("aws_secret_access_key", secret)
        .with_plain("retry_max_attempts", "1");
    let connectors = Connectors::new().with(inferlink_blueprint::factory());
    connectors
        .connect(&target)
        .await
        .expect("the Titan record connects")
}

#[tokio::test]
async fn moto_accepts_the_signature_and_refuses_a_wrong_one() {
    let Some(server) = shared_server(ServerKind::Moto).await else {
        return;
    };
    let (key_id, secret, region) = server.aws_credentials().expect("moto's credentials");
    assert_eq!(region, "us-east-1");
    let model = ModelRef::new(TITAN);
    let signed = titan(&server.http_url(), &key_id, &secret).await;
    let e = signed
        .embed(&model, EmbedRequest::new(["a text"]))
        .await
        .unwrap_err();
    // The signature identifies the user; the policy then refuses the action.
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(e.context("vendor_code"), Some("AccessDenied"), "{e}");
    let said = e.to_string();
    assert!(
        said.contains("user/inferlink-test") && said.contains("bedrock:InvokeModel"),
        "{e}"
    );
    let wrong = "wrong-secret-planted-0987654321";
    let forged = titan(&server.http_url(), &key_id, wrong).await;
    let e = forged
        .embed(&model, EmbedRequest::new(["a text"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(
        e.context("vendor_code"),
        Some("SignatureDoesNotMatch"),
        "{e}"
    );
    for shown in [format!("{e} {e:?}"), format!("{forged:?}")] {
        assert!(
            !shown.contains(wrong) && !shown.contains(&secret),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn titan_requests_carry_one_text_each_and_a_sigv4_signature() {
    let answer = |n: f32| json!({"embedding": [n, 0.5], "inputTextTokenCount": 3}).to_string();
    let server = FaultServer::start([
        Fault::json(200, &answer(1.0)),
        Fault::json(200, &answer(2.0)),
    ])
    .await
    .unwrap();
    let c = titan(&server.url(), "AKIDEXAMPLE", "secret-example-key").await;
    let got = c
        .embed(
            &ModelRef::new(TITAN),
            EmbedRequest::new(["first", "second"]).dimensions(256),
        )
        .await
        .unwrap();
    assert_eq!(got.vectors, vec![vec![1.0, 0.5], vec![2.0, 0.5]]);
    assert_eq!(got.usage.unwrap().prompt_tokens, Some(6));
    let sent = server.recorded();
    assert_eq!(sent.len(), 2, "one text per request");
    assert_eq!(
        sent[0].target,
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    let auth = sent[0].header("authorization").unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    assert!(sent[0].header("x-amz-date").is_some());
    let body: Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(body, json!({"inputText": "second", "dimensions": 256}));
}
