//! SageMaker's error answers (as the service sends them: JSON bodies and
//! `x-amzn-ErrorType`) mapped to kinds and retries, on a loopback server;
//! checks made before sending; configuration errors at connect time.

mod support;

use inferlink::{ErrorKind, InferRequest, ModelRef, RawRequest, Tensor};
use inferlink_sagemaker::MAX_PAYLOAD_BYTES;
use inferlink_testkit::fault::{Fault, FaultServer};
use inferlink_testkit::live::expect_error;

const CREDS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    ),
];

fn aws_error(status: u16, kind: &str, body: &str) -> Fault {
    Fault::json(status, body)
        .header(
            "x-amzn-ErrorType",
            &format!("{kind}:http://internal.amazon.com/"),
        )
        .header("x-amzn-RequestId", "req-1234")
}

async fn connector(server: &FaultServer) -> std::sync::Arc<dyn inferlink::InferenceConnector> {
    support::connect(
        &server.url(),
        &[
            ("region", "us-east-1"),
            ("retry_backoff_base_ms", "1"),
            ("retry_backoff_max_ms", "5"),
        ],
        CREDS,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn model_error_keeps_the_original_status_and_message() {
    let server = FaultServer::start(vec![aws_error(
        424,
        "ModelError",
        r#"{"Message":"Received client error (400) from primary with message \"bad shape\". See https://us-east-1.console.aws.amazon.com/cloudwatch/home for more information.","OriginalStatusCode":400,"OriginalMessage":"bad shape","LogStreamArn":"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep"}"#,
    )])
    .await
    .unwrap();
    let e = connector(&server)
        .await
        .invoke(&ModelRef::new("ep"), RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(e.context("status"), Some("424"));
    assert_eq!(e.context("original_status"), Some("400"));
    assert_eq!(e.vendor_message(), Some("bad shape"));
    assert_eq!(e.context("vendor_code"), Some("ModelError"));
    assert_eq!(e.context("request_id"), Some("req-1234"));
    assert!(
        e.context("log_stream_arn")
            .unwrap()
            .starts_with("arn:aws:logs:")
    );
    assert!(e.to_string().contains("Received client error (400)"), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn each_error_type_has_its_kind_and_retry() {
    // (answer, kind, requests made for a non-idempotent invoke with 3 attempts)
    let cases = [
        (
            aws_error(400, "ValidationError", r#"{"message":"Invalid input."}"#),
            ErrorKind::InvalidInput,
            1,
        ),
        (
            aws_error(
                400,
                "ValidationError",
                r#"{"message":"Endpoint ep of account 123456789012 not found."}"#,
            ),
            ErrorKind::NotFound,
            1,
        ),
        (
            aws_error(400, "ThrottlingException", r#"{"message":"Rate exceeded"}"#),
            ErrorKind::RateLimited,
            3,
        ),
        (
            aws_error(
                429,
                "ModelNotReadyException",
                r#"{"Message":"Model is loading"}"#,
            ),
            ErrorKind::Unavailable,
            3,
        ),
        (
            aws_error(503, "ServiceUnavailable", r#"{"Message":"try later"}"#),
            ErrorKind::Unavailable,
            3,
        ),
        // AWS-side failures after the request was accepted: retried only when idempotent.
        (
            aws_error(500, "InternalFailure", r#"{"Message":"oops"}"#),
            ErrorKind::Unavailable,
            1,
        ),
        (
            aws_error(
                530,
                "InternalDependencyException",
                r#"{"Message":"dependency failed"}"#,
            ),
            ErrorKind::Unavailable,
            1,
        ),
        (
            aws_error(
                400,
                "UnrecognizedClientException",
                r#"{"message":"The security token included in the request is invalid."}"#,
            ),
            ErrorKind::Unauthenticated,
            1,
        ),
        (
            aws_error(400, "AccessDeniedException", r#"{"message":"not allowed"}"#),
            ErrorKind::PermissionDenied,
            1,
        ),
    ];
    for (fault, kind, requests) in cases {
        let script = vec![fault.clone(), fault.clone(), fault];
        let server = FaultServer::start(script).await.unwrap();
        let e = connector(&server)
            .await
            .invoke(&ModelRef::new("ep"), RawRequest::json("{}"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(server.requests(), requests, "{e}");
        assert_eq!(e.context("request_id"), Some("req-1234"));
    }
    // An idempotent request is retried after InternalFailure too.
    let fault = aws_error(500, "InternalFailure", r#"{"Message":"oops"}"#);
    let server = FaultServer::start(vec![fault.clone(), fault])
        .await
        .unwrap();
    let mut request = RawRequest::json("{}");
    request.idempotent = true;
    let answer = connector(&server)
        .await
        .invoke(&ModelRef::new("ep"), request)
        .await
        .unwrap();
    assert_eq!(&answer.body[..], br#"{"ok":true}"#);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn oversized_payloads_and_bad_names_never_leave() {
    let server = FaultServer::start(Vec::new()).await.unwrap();
    let c = connector(&server).await;
    let big = vec![b'x'; MAX_PAYLOAD_BYTES + 1];
    let e = expect_error(
        c.invoke(
            &ModelRef::new("ep"),
            RawRequest::new(big, "application/octet-stream"),
        )
        .await,
        ErrorKind::InvalidInput,
        "",
    );
    assert!(e.message().contains("6 MiB"), "{e}");
    let e = c
        .invoke_stream(
            &ModelRef::new("ep"),
            RawRequest::new(vec![0u8; MAX_PAYLOAD_BYTES + 1], "a/b"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = c
        .invoke(&ModelRef::new("not_an/endpoint"), RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let mut request = RawRequest::json("{}");
    request.headers.push((
        "X-Amzn-SageMaker-Target-Variant".into(),
        "bad variant!".into(),
    ));
    let e = c.invoke(&ModelRef::new("ep"), request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("target-variant"), "{e}");
    let nan = Tensor::from_vec("x", vec![f32::NAN]);
    expect_error(
        c.infer(&ModelRef::new("ep"), InferRequest::from(nan)).await,
        ErrorKind::InvalidInput,
        "",
    );
    assert_eq!(server.requests(), 0, "nothing may be sent");
    // Exactly 6 MiB is allowed.
    let ok = c
        .invoke(
            &ModelRef::new("ep"),
            RawRequest::new(vec![b'x'; MAX_PAYLOAD_BYTES], "application/octet-stream"),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(server.recorded()[0].body.len(), MAX_PAYLOAD_BYTES);
}

#[tokio::test]
async fn configuration_is_checked_when_connecting() {
    // Runtime API without a region anywhere.
    let result = support::connect("http://127.0.0.1:9", &[], CREDS).await;
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert_eq!(e.path(), Some("region"));
    }
    let e = expect_error(
        support::connect(
            "http://127.0.0.1:9",
            &[("region", "us-east-1")],
            &[("AWS_ACCESS_KEY_ID", "AKID")],
        )
        .await,
        ErrorKind::Config,
        "",
    );
    assert_eq!(e.path(), Some("AWS_SECRET_ACCESS_KEY"));
    let e = support::connect("http://127.0.0.1:9", &[("api", "grpc")], CREDS)
        .await
        .unwrap_err();
    assert_eq!(e.path(), Some("api"));
    let e = support::connect("http://127.0.0.1:9", &[("infer_json_key", "rows")], CREDS)
        .await
        .unwrap_err();
    assert_eq!(e.path(), Some("infer_json_key"));
    // The region comes from a SageMaker host name.
    let c = support::connect(
        "https://runtime.sagemaker.eu-west-1.amazonaws.com",
        &[],
        CREDS,
    )
    .await
    .unwrap();
    assert_eq!(c.info().protocol, "sagemaker-runtime");
    assert_eq!(c.info().vendor, "sagemaker");
    assert!(!format!("{c:?}").contains("EXAMPLEKEY"));
    // A container needs neither region nor credentials.
    let c = support::connect("http://127.0.0.1:9", &[("api", "container")], &[])
        .await
        .unwrap();
    assert!(
        inferlink::connector::capabilities_of(&*c).invoke
            && inferlink::connector::capabilities_of(&*c).infer
    );
}

#[tokio::test]
async fn a_typoed_key_is_refused_and_seed_style_keys_pass() {
    // A seed-style record: upper-case AWS_* credentials (also read by
    // workflow environments), the connector's own lower-case keys, an
    // environment variable nobody here reads, and a user key.
    let configuration = [
        ("region", "eu-west-1"),
        ("sign", "true"),
        ("infer_json_key", "inputs"),
        ("output_datatype", "FP32"),
        ("MLFLOW_TRACKING_URI", "http://mlflow.example"),
        ("x_owner", "fraud-team"),
    ];
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("aws_secret_access_key", "typo-test-secret-planted"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ];
    let connector = support::connect("http://127.0.0.1:9", &configuration, &credentials)
        .await
        .unwrap();
    assert_eq!(connector.info().vendor, "sagemaker");

    let mut typo = configuration.to_vec();
    typo[2] = ("infer_json_kye", "inputs");
    let e = support::connect("http://127.0.0.1:9", &typo, &credentials)
        .await
        .unwrap_err();
    inferlink_testkit::live::assert_suggests_key(&e, "infer_json_kye", "infer_json_key");
    assert!(!e.to_string().contains("typo-test-secret-planted"), "{e}");
}
