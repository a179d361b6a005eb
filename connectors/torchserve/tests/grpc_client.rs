//! The gRPC inference client against an in-process test server on 127.0.0.1
//! (the testkit's `grpc_server`, over the crate's messages), answering the
//! way TorchServe 0.12 does: `PERMISSION_DENIED` with the
//! InvalidKeyException text for a bad token, `INTERNAL "Model not found: …"`
//! for an unknown model.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use inferlink::kit::ConnectorConfig;
use inferlink::{ErrorKind, InferRequest, ModelRef, RawRequest, Secret, Tensor};
use inferlink_testkit::grpc_server::{GrpcRouter, GrpcServer};
use inferlink_testkit::live::expect_error;
use inferlink_torchserve::proto as msg;
use inferlink_torchserve::{Protocol, TorchServeClient, TorchServeConfig};
use tonic::{Request, Status};

const TOKEN_FAILED: &str =
    "Token Authorization failed. Token either incorrect, expired, or not provided correctly";

/// A TorchServe stand-in: `doubler` doubles JSON numbers, `streamer` streams.
struct Fake {
    key: Mutex<String>,
    seen: Mutex<Vec<(String, String)>>,
}

impl Fake {
    fn check<T>(&self, r: &Request<T>) -> Result<(), Status> {
        let got = r
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let want = format!("Bearer {}", self.key.lock().unwrap());
        self.seen
            .lock()
            .unwrap()
            .push(("authorization".into(), got.clone()));
        if got == want {
            Ok(())
        } else {
            Err(Status::permission_denied(TOKEN_FAILED))
        }
    }
}

fn not_found(name: &str) -> Status {
    Status::internal(format!(
        "Model not found: {name}\norg.pytorch.serve.archive.model.ModelNotFoundException"
    ))
}

/// The methods the test server routes.
impl Fake {
    async fn ping(
        self: Arc<Self>,
        r: Request<()>,
    ) -> Result<msg::TorchServeHealthResponse, Status> {
        self.check(&r)?;
        Ok(msg::TorchServeHealthResponse {
            health: "{\n  \"status\": \"Healthy\"\n}".into(),
        })
    }

    async fn predictions(
        self: Arc<Self>,
        r: Request<msg::PredictionsRequest>,
    ) -> Result<msg::PredictionResponse, Status> {
        self.check(&r)?;
        let req = r.into_inner();
        if req.model_name != "doubler" {
            return Err(not_found(&req.model_name));
        }
        let data = req.input.get("data").cloned().unwrap_or_default();
        let values: Vec<f64> =
            serde_json::from_slice(&data).map_err(|_| Status::internal("Prediction failed"))?;
        let doubled: Vec<f64> = values.iter().map(|v| v * 2.0).collect();
        Ok(msg::PredictionResponse {
            prediction: Bytes::from(serde_json::to_vec(&doubled).unwrap()),
            sequence_id: None,
            status: None,
        })
    }

    async fn stream_predictions(
        self: Arc<Self>,
        r: Request<msg::PredictionsRequest>,
    ) -> Result<BoxStream<'static, Result<msg::PredictionResponse, Status>>, Status> {
        self.check(&r)?;
        let req = r.into_inner();
        if req.model_name != "streamer" {
            return Err(not_found(&req.model_name));
        }
        let mut items: Vec<Result<msg::PredictionResponse, Status>> = ["a", "b", "done"]
            .into_iter()
            .map(|p| {
                Ok(msg::PredictionResponse {
                    prediction: Bytes::from(p),
                    sequence_id: None,
                    status: Some(msg::RpcStatus {
                        code: 200,
                        message: String::new(),
                    }),
                })
            })
            .collect();
        if req.model_version == "broken" {
            items.truncate(1);
            items.push(Err(Status::internal("Prediction failed")));
        }
        Ok(futures_util::stream::iter(items).boxed())
    }
}

async fn serve() -> GrpcServer<Fake> {
    // StreamPredictions2 (bidirectional, unused by the connector) is not
    // routed: it answers UNIMPLEMENTED.
    GrpcRouter::new(Arc::new(Fake {
        key: Mutex::new("key-1".into()),
        seen: Mutex::new(Vec::new()),
    }))
    .unary(
        "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Ping",
        Fake::ping,
    )
    .unary(
        "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions",
        Fake::predictions,
    )
    .server_streaming(
        "/org.pytorch.serve.grpc.inference.InferenceAPIsService/StreamPredictions",
        Fake::stream_predictions,
    )
    .serve()
    .await
    .unwrap()
}

fn client(url: &str) -> TorchServeClient {
    let config = TorchServeConfig::new(url)
        .apply_values(inferlink_testkit::live::fake_server_values(&[]))
        .unwrap()
        .with_keys(Some(Secret::new("key-1")), None);
    TorchServeClient::new(config).unwrap()
}

#[tokio::test]
async fn ping_predict_and_infer_over_grpc() {
    let s = serve().await;
    let c = client(s.url());
    assert_eq!(c.protocol(), Protocol::Grpc);
    assert_eq!(c.info().protocol, "torchserve-grpc");
    assert!(c.health().await.unwrap().is_serving());
    let out = c
        .predict(&ModelRef::new("doubler"), RawRequest::json("[1, 2.5]"))
        .await
        .unwrap();
    assert_eq!(&out.body[..], b"[2.0,5.0]");
    let out = c
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(Tensor::from_vec("x", vec![1.5f32, -2.0])),
        )
        .await
        .unwrap();
    assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), vec![3.0, -4.0]);
    let e = expect_error(
        c.predict(&ModelRef::new("nope"), RawRequest::json("[1]"))
            .await,
        ErrorKind::NotFound,
        "",
    );
    assert_eq!(e.vendor_message(), Some("Model not found: nope"));
    expect_error(
        c.predict(&ModelRef::new("doubler"), RawRequest::json("oops"))
            .await,
        ErrorKind::ModelError,
        "",
    );
    // Explanations exist only over REST.
    expect_error(
        c.explain(&ModelRef::new("doubler"), RawRequest::json("[1]"))
            .await,
        ErrorKind::Unsupported,
        "",
    );
}

#[tokio::test]
async fn tokens_are_read_per_call_and_failures_are_unauthenticated() {
    let s = serve().await;
    let c = client(s.url());
    assert!(c.health().await.unwrap().is_serving());
    // The server rotates its key: refused, not retried.
    *s.state().key.lock().unwrap() = "key-2".into();
    let before = s.state().seen.lock().unwrap().len();
    let e = c.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(s.state().seen.lock().unwrap().len(), before + 1);
    // The same client picks up the new key on its next call.
    c.keys().set_inference(Some(Secret::new("key-2")));
    assert!(c.health().await.unwrap().is_serving());
    let seen = s.state().seen.lock().unwrap().clone();
    assert_eq!(seen.last().unwrap().1, "Bearer key-2");
}

#[tokio::test]
async fn streamed_predictions_keep_message_boundaries() {
    let s = serve().await;
    let c = client(s.url());
    let stream = c
        .predict_stream(&ModelRef::new("streamer"), RawRequest::json("{}"))
        .await
        .unwrap();
    let parts: Vec<Bytes> = stream.body.map(|r| r.unwrap()).collect().await;
    assert_eq!(parts, ["a", "b", "done"]);
    // A failure mid-stream is the last item.
    let stream = c
        .predict_stream(
            &ModelRef::new("streamer").with_version("broken"),
            RawRequest::json("{}"),
        )
        .await
        .unwrap();
    let items: Vec<_> = stream.body.collect().await;
    assert_eq!(items.len(), 2);
    assert_eq!(&items[0].as_ref().unwrap()[..], b"a");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(e.model(), Some("streamer@broken"));
    // An unknown model fails the call itself.
    let e = c
        .predict_stream(&ModelRef::new("nope"), RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}
