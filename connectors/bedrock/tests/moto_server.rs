//! inferlink-bedrock against the harness's moto 5.2.5 server
//! (`ServerKind::Moto`), which checks every SigV4 signature and the IAM
//! policy of the signing user. moto serves Bedrock Runtime's `InvokeModel`
//! (answering `{}` and echoing the latency and tier headers); it lacks
//! Converse, the streams and Rerank (those are checked against botocore in
//! `botocore_peer.rs`). The launcher's user `inferlink-test` may not call
//! Bedrock; its role `inferlink-role` may (`bedrock:*`), so the calls that
//! succeed are signed with credentials the credential chain of
//! `inferlink-aws` obtained from moto's STS (`AssumeRole` with the user's
//! keys, configured in the record).
//!
//! Records are connected through the factory, so region and credentials are
//! read from the record by `inferlink-aws`.

use std::sync::Arc;

use inferlink::{
    ConnectTarget, Connectors, DataType, EmbedRequest, ErrorKind, InferRequest, InferenceConnector,
    ModelRef, RawRequest, Tensor,
};
use inferlink_testkit::live::shared_server;
use inferlink_testkit::servers::{RunningServer, ServerKind};
use serde_json::Value;

const TITAN: &str = "amazon.titan-embed-text-v2:0";

/// The user's key pair (no Bedrock) and the role's ARN (Bedrock allowed).
fn moto_identities(server: &RunningServer) -> (String, String, String) {
    let path = server.instance_dir().join("credentials.json");
    let creds: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let field = |k: &str| creds[k].as_str().expect(k).to_owned();
    (
        field("access_key_id"),
        field("secret_access_key"),
        field("role_arn"),
    )
}

/// A Bedrock record for moto signed with the user's keys, or with the role's
/// credentials (`AssumeRole` through moto's STS) when `role` is given.
async fn connect(
    url: &str,
    key_id: &str,
    secret: &str,
    role: Option<&str>,
) -> Arc<dyn InferenceConnector> {
    let mut target = ConnectTarget::new("bedrock", url)
        .with_plain("region", "us-east-1")
        .with_plain("auth", "sigv4")
        .with_plain("performance_latency", "optimized")
        .with_secret("aws_access_key_id", key_id)
        .with_secret("aws_secret_access_key", secret)
        .with_plain("retry_max_attempts", "1");
    if let Some(arn) = role {
        target = target
            .with_plain("aws_credential_source", "assume_role")
            .with_plain("aws_role_arn", arn)
            .with_plain("aws_role_session_name", "inferlink-bedrock-test")
            .with_plain("aws_sts_endpoint_url", url);
    }
    Connectors::new()
        .with(inferlink_bedrock::factory())
        .connect(&target)
        .await
        .expect("the Bedrock record connects")
}

#[tokio::test]
async fn moto_answers_signed_invoke_model_calls() {
    let Some(server) = shared_server(ServerKind::Moto).await else {
        return;
    };
    let (key_id, secret, role) = moto_identities(server);
    let bedrock = connect(&server.http_url(), &key_id, &secret, Some(&role)).await;
    let model = ModelRef::new(TITAN);
    let mut raw = RawRequest::json(r#"{"inputText": "hello"}"#);
    raw.accept = Some("application/json".into());
    let answer = bedrock.invoke(&model, raw).await.unwrap();
    assert_eq!(answer.body.as_ref(), b"{}");
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    // moto read our latency header and echoes it; the tier is its default.
    let header = |name: &str| {
        answer
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("x-amzn-bedrock-performanceconfig-latency"),
        Some("optimized")
    );
    assert_eq!(header("x-amzn-bedrock-service-tier"), Some("default"));
    // moto's `{}` is no Titan answer: a typed Protocol error, through embed and infer.
    let e = bedrock
        .embed(&model, EmbedRequest::new(["hello"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.message().contains("embedding"), "{e}");
    let texts = Tensor::from_byte_elements("text", vec![1], vec!["hello"]).unwrap();
    assert_eq!(texts.datatype(), DataType::Bytes);
    let e = bedrock
        .infer(&model, InferRequest::new().with_input(texts))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
}

#[tokio::test]
async fn moto_refuses_a_user_without_bedrock_and_a_wrong_signature() {
    let Some(server) = shared_server(ServerKind::Moto).await else {
        return;
    };
    let model = ModelRef::new(TITAN);
    let (key_id, secret, _) = moto_identities(server);
    let not_allowed = connect(&server.http_url(), &key_id, &secret, None).await;
    let e = not_allowed
        .invoke(&model, RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(e.context("vendor_code"), Some("AccessDenied"), "{e}");
    assert!(e.to_string().contains("bedrock:InvokeModel"), "{e}");
    let wrong = "wrong-secret-planted-1234567890";
    let forged = connect(&server.http_url(), &key_id, wrong, None).await;
    let e = forged
        .invoke(&model, RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(
        e.context("vendor_code"),
        Some("SignatureDoesNotMatch"),
        "{e}"
    );
    for shown in [format!("{e} {e:?}"), format!("{forged:?}")] {
        assert!(!shown.contains(wrong), "{shown}");
    }
}
