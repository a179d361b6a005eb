//! Against moto's server standing in for the SageMaker Runtime with SigV4
//! verification on (`ServerKind::Moto`; real-servers.md §5a): moto recomputes
//! every signature with botocore from the IAM user's secret, so a request is
//! answered only when our signature is right.
//!
//! * a request signed with the user's key is accepted, and the canned answer
//!   comes back with its content type and response headers;
//! * a wrong secret is `Unauthenticated` (`SignatureDoesNotMatch`), an unknown
//!   key id too (`InvalidClientTokenId`), and neither error shows the secret;
//! * tensors go out as `{"instances": …}` and the canned `predictions` come
//!   back as a tensor;
//! * the conformance suite's invoke, auth and secrets checks.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use inferlink::transport::{HttpTransport, RequestSpec};
use inferlink::{
    DataType, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest, Tensor,
};
use inferlink_testkit::connector::{
    AuthCheck, CheckStatus, ConformanceSpec, InvokeCase, Probe, run_connector_conformance,
};
use inferlink_testkit::servers::{RunningServer, ServerKind};
use serde_json::{Value, json};

struct Moto {
    server: &'static RunningServer,
    key_id: String,
    secret: String,
}

/// moto keeps one queue of canned answers for every endpoint: tests that
/// queue answers take turns.
static QUEUE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One canned InvokeEndpoint answer for moto's queue.
fn canned(body: &str, content_type: &str, variant: &str, custom_attributes: &str) -> Value {
    json!({
        "Body": body,
        "ContentType": content_type,
        "InvokedProductionVariant": variant,
        "CustomAttributes": custom_attributes,
    })
}

async fn moto() -> Option<Moto> {
    let server = support::server(ServerKind::Moto).await?;
    let (key_id, secret, region) = server.aws_credentials().expect("moto's credentials.json");
    assert_eq!(region, "us-east-1");
    Some(Moto {
        server,
        key_id,
        secret,
    })
}

impl Moto {
    async fn connector(&self, secret: &str) -> Arc<dyn InferenceConnector> {
        self.connector_for(&self.key_id, secret).await
    }

    async fn connector_for(&self, key_id: &str, secret: &str) -> Arc<dyn InferenceConnector> {
        support::connect(
            &self.server.http_url(),
            &[("region", "us-east-1"), ("retry_max_attempts", "1")],
            &[
                ("AWS_ACCESS_KEY_ID", key_id),
                ("AWS_SECRET_ACCESS_KEY", secret),
            ],
        )
        .await
        .unwrap()
    }

    /// Takes the queue's turn and queues canned InvokeEndpoint answers;
    /// hold the returned turn until the answers were consumed.
    async fn queue_in_turn(
        &self,
        results: serde_json::Value,
    ) -> tokio::sync::MutexGuard<'static, ()> {
        let turn = QUEUE.lock().await;
        self.queue(results).await;
        turn
    }

    /// Queues canned InvokeEndpoint answers (moto's unauthenticated test API).
    async fn queue(&self, results: serde_json::Value) {
        let http = HttpTransport::builder(self.server.http_url())
            .build()
            .unwrap();
        let body = json!({"account_id": "123456789012", "region": "us-east-1", "results": results});
        let resp = http
            .send(
                RequestSpec::post("moto-api/static/sagemaker/endpoint-results", Vec::new())
                    .json_body(&body),
            )
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_signature_is_accepted_and_headers_come_back() {
    let Some(moto) = moto().await else {
        return;
    };
    let answer = canned(
        "{\"predictions\": [[2, 4]]}",
        "application/json",
        "AllTraffic",
        "c=1",
    );
    let _turn = moto.queue_in_turn(json!([answer])).await;
    let connector = moto.connector(&moto.secret).await;
    let mut request = RawRequest::json(r#"{"instances": [[1, 2]]}"#);
    request.headers.push((
        "X-Amzn-SageMaker-Custom-Attributes".into(),
        "trace=good".into(),
    ));
    let answer = connector
        .invoke(&ModelRef::new("good-signature"), request)
        .await
        .unwrap();
    assert_eq!(&answer.body[..], br#"{"predictions": [[2, 4]]}"#);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert!(
        answer.headers.contains(&(
            "x-amzn-invoked-production-variant".into(),
            "AllTraffic".into()
        )),
        "{:?}",
        answer.headers
    );
    assert!(
        answer
            .headers
            .contains(&("x-amzn-sagemaker-custom-attributes".into(), "c=1".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_unauthenticated() {
    let Some(moto) = moto().await else {
        return;
    };
    let wrong = "wrong-secret-planted-1234567890";
    let connector = moto.connector(wrong).await;
    let e = connector
        .invoke(&ModelRef::new("wrong-secret"), RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(e.context("status"), Some("403"));
    assert_eq!(e.context("vendor_code"), Some("SignatureDoesNotMatch"));
    assert!(!e.is_retryable());
    assert!(!format!("{e} {e:?}").contains(wrong));
    assert!(!format!("{e} {e:?}").contains(&moto.secret));

    let stranger = moto
        .connector_for("AKIAIOSFODNN7EXAMPLE", &moto.secret)
        .await;
    let e = stranger
        .invoke(&ModelRef::new("unknown-key"), RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(e.context("vendor_code"), Some("InvalidClientTokenId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tensors_travel_as_instances_and_predictions_come_back() {
    let Some(moto) = moto().await else {
        return;
    };
    let answer = canned(
        "{\"predictions\": [[0.5, 1.5], [2.5, 3.5]]}",
        "application/json",
        "variant-a",
        "",
    );
    let _turn = moto.queue_in_turn(json!([answer])).await;
    let connector = moto.connector(&moto.secret).await;
    let input = Tensor::from_rows("x", &[vec![0.25f32, 0.75], vec![1.25, 1.75]]).unwrap();
    let reply = connector
        .infer(&ModelRef::new("tensor-endpoint"), InferRequest::from(input))
        .await
        .unwrap();
    let out = reply.require_output("predictions").unwrap();
    assert_eq!(out.datatype(), DataType::Fp32);
    assert_eq!(out.shape(), &[2, 2]);
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![0.5, 1.5, 2.5, 3.5]);
    assert_eq!(reply.model_name, "tensor-endpoint");
    assert_eq!(
        reply.parameters.get("invoked_production_variant"),
        Some(&"variant-a".to_owned().into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_invoke_auth_and_secrets() {
    let Some(moto) = moto().await else {
        return;
    };
    // The unknown-model probe takes the first answer, the invoke case the second.
    let pong = canned("pong", "text/plain", "AllTraffic", "");
    let _turn = moto.queue_in_turn(json!([pong.clone(), pong])).await;
    let connector = moto.connector(&moto.secret).await;
    let key_id = moto.key_id.clone();
    let url = moto.server.http_url();
    let wrong = "conformance-wrong-secret-planted";
    let spec = ConformanceSpec::new()
        .invoke(InvokeCase::new(
            "conformance-endpoint",
            RawRequest::new(Bytes::from_static(b"ping"), "text/plain"),
            |r| {
                if &r.body[..] == b"pong" && r.content_type.as_deref() == Some("text/plain") {
                    Ok(())
                } else {
                    Err(format!("unexpected answer {r:?}"))
                }
            },
        ))
        .auth(
            AuthCheck::new(move || {
                let url = url.clone();
                let key_id = key_id.clone();
                async move {
                    support::connect(
                        &url,
                        &[("region", "us-east-1")],
                        &[
                            ("AWS_ACCESS_KEY_ID", &key_id),
                            ("AWS_SECRET_ACCESS_KEY", wrong),
                        ],
                    )
                    .await
                }
            })
            .probe(Probe::Infer(
                ModelRef::new("conformance-endpoint"),
                InferRequest::from(Tensor::from_vec("x", vec![1.0f32])),
            ))
            .secret(wrong),
        )
        .secret(moto.secret.clone());
    let report = run_connector_conformance(connector.as_ref(), &spec).await;
    // The SageMaker Runtime has no health call (Unsupported by design),
    // moto answers any endpoint name, so it cannot say "not found", and moto
    // 5.2.5 has no route for InvokeEndpointWithResponseStream (the suite sends
    // the invoke case through invoke_stream; the stream itself is proven with
    // moto's encoder in botocore_peer.rs).
    let allowed = ["health", "unknown_model", "error_context", "stream_invoke"];
    let unexpected: Vec<_> = report
        .checks
        .iter()
        .filter(|c| {
            matches!(c.status, CheckStatus::Failed(_)) && !allowed.contains(&c.name.as_str())
        })
        .collect();
    assert!(unexpected.is_empty(), "{report:?}");
    for name in [
        "invoke",
        "auth/bad_credentials",
        "secrets_in_errors",
        "info",
    ] {
        assert_eq!(
            report.status(name),
            Some(&CheckStatus::Passed),
            "{name}: {report:?}"
        );
    }
    let health = report.check("health").unwrap();
    assert!(
        matches!(&health.status, CheckStatus::Failed(why) if why.contains("Unsupported")),
        "{health:?}"
    );
    // The streamed call reached moto at the operation's path and was
    // refused there: the request was right, the server lacks the operation.
    let stream = report.check("stream_invoke").unwrap();
    assert!(
        matches!(&stream.status, CheckStatus::Failed(why)
            if why.contains("NotFound")
                && why.contains("/endpoints/conformance-endpoint/invocations-response-stream")),
        "{stream:?}"
    );
}
