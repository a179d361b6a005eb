//! The gRPC inference side (`org.pytorch.serve.grpc.inference.InferenceAPIsService`,
//! port 7070): the calls, made on the shared [`GrpcTransport`] (channel,
//! retries and limits from the transport settings), with the token taken
//! from the shared [`TokenKeys`] on every attempt.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use inferlink_core::transport::grpc::CallMetadata;
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::transport::{GrpcTransport, TransportConfig};
use inferlink_core::{ByteStream, Error, ErrorKind, Health, ModelRef, Result};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::error::{TorchServeGrpcClassifier, protocol};
use crate::keys::TokenKeys;
use crate::proto::{PredictionResponse, PredictionsRequest, TorchServeHealthResponse};

/// The method paths of `org.pytorch.serve.grpc.inference.InferenceAPIsService`.
pub(crate) mod paths {
    /// `Ping`.
    pub(crate) const PING: &str = "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Ping";
    /// `Predictions`.
    pub(crate) const PREDICTIONS: &str =
        "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions";
    /// `StreamPredictions` (server streaming).
    pub(crate) const STREAM_PREDICTIONS: &str =
        "/org.pytorch.serve.grpc.inference.InferenceAPIsService/StreamPredictions";
}

/// The inference key of the moment as `authorization: Bearer …`, read again
/// for every attempt (a key rotated in the registry is used at once).
struct InferenceToken(TokenKeys);

impl CallMetadata for InferenceToken {
    fn apply(&self, metadata: &mut MetadataMap, _model: Option<&ModelRef>) -> Result<()> {
        if let Some(key) = self.0.inference() {
            let mut value = AsciiMetadataValue::try_from(format!("Bearer {}", key.expose()))
                .map_err(|_| Error::new(ErrorKind::Config, "the inference key is not ASCII"))?;
            value.set_sensitive(true);
            metadata.insert("authorization", value);
        }
        Ok(())
    }
}

/// The TorchServe gRPC calls, made on the shared gRPC transport.
#[derive(Clone, Debug)]
pub(crate) struct GrpcWire {
    pub(crate) transport: GrpcTransport,
}

impl GrpcWire {
    /// A lazy channel to `target` (an `http`/`https` URL) with the
    /// transport's settings; the token comes from `keys` on every call.
    pub(crate) fn new(
        target: &str,
        cfg: &TransportConfig,
        vendor: &str,
        keys: TokenKeys,
    ) -> Result<GrpcWire> {
        let transport = GrpcTransport::builder(target, cfg.clone())
            .vendor(vendor)
            .classifier(Arc::new(TorchServeGrpcClassifier))
            .call_metadata(Arc::new(InferenceToken(keys)))
            .build()?;
        Ok(GrpcWire { transport })
    }

    /// `Ping`: the health JSON's `status` decides (`Healthy` = serving).
    pub(crate) async fn ping(&self) -> Result<Health> {
        let r: TorchServeHealthResponse = self
            .transport
            .unary(paths::PING, (), Idempotency::Safe, None)
            .await?;
        health_from_text(&r.health).map_err(|e| self.transport.decorate(e, None))
    }

    fn request(model: &ModelRef, input: &str, body: Bytes) -> PredictionsRequest {
        PredictionsRequest {
            model_name: model.name.clone(),
            model_version: model.version.clone().unwrap_or_default(),
            input: [(input.to_owned(), body)].into_iter().collect(),
            sequence_id: None,
        }
    }

    /// `Predictions` with the body as the handler's `data` field.
    pub(crate) async fn predict(
        &self,
        model: &ModelRef,
        body: Bytes,
        idempotent: bool,
    ) -> Result<Bytes> {
        let idempotency = Idempotency::marked(idempotent);
        let message = Self::request(model, "data", body);
        let r: PredictionResponse = self
            .transport
            .unary(paths::PREDICTIONS, message, idempotency, Some(model))
            .await?;
        check_status(&r).map_err(|e| self.transport.decorate(e, Some(model)))?;
        Ok(r.prediction)
    }

    /// `StreamPredictions`: each response's prediction is one chunk.
    pub(crate) async fn predict_stream(
        &self,
        model: &ModelRef,
        body: Bytes,
        idempotent: bool,
    ) -> Result<ByteStream> {
        let idempotency = Idempotency::marked(idempotent);
        let message = Self::request(model, "data", body);
        let stream = self
            .transport
            .server_streaming::<_, PredictionResponse>(
                paths::STREAM_PREDICTIONS,
                message,
                idempotency,
                Some(model),
            )
            .await?;
        let wire = self.clone();
        let model = model.clone();
        let timeout = self.transport.limits().attempt_timeout;
        let body = futures_util::stream::unfold(
            (Some(stream), wire, model),
            move |(stream, wire, model)| async move {
                let mut stream = stream?;
                let next = tokio::time::timeout(timeout, stream.next()).await;
                let item = match next {
                    Err(_) => Err(wire.transport.decorate(
                        Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "no streamed prediction within {} ms of the previous one",
                                timeout.as_millis()
                            ),
                        ),
                        Some(&model),
                    )),
                    Ok(None) => return None,
                    Ok(Some(Ok(r))) => match check_status(&r) {
                        Ok(()) => Ok(r.prediction),
                        Err(e) => Err(wire.transport.decorate(e, Some(&model))),
                    },
                    Ok(Some(Err(status))) => {
                        Err(wire.transport.status_error(&status, Some(&model)))
                    }
                };
                let rest = item.is_ok().then_some(stream);
                Some((item, (rest, wire, model)))
            },
        );
        Ok(body.boxed())
    }
}

/// A response's embedded status: absent, 0 or 200 (what TorchServe sends)
/// is success; anything else is an error with the server's message.
fn check_status(r: &PredictionResponse) -> Result<()> {
    match &r.status {
        None => Ok(()),
        Some(s) if s.code == 0 || s.code == 200 => Ok(()),
        Some(s) => {
            let kind = match s.code {
                400 => ErrorKind::InvalidInput,
                404 => ErrorKind::NotFound,
                503 => ErrorKind::Unavailable,
                _ => ErrorKind::ModelError,
            };
            Err(Error::new(
                kind,
                format!("the streamed prediction failed with status {}", s.code),
            )
            .with_vendor_message(s.message.clone()))
        }
    }
}

/// The health of a `Ping` answer (the JSON text of `GET /ping`).
pub(crate) fn health_from_text(text: &str) -> Result<Health> {
    #[derive(serde::Deserialize)]
    struct Ping {
        status: String,
    }
    let ping: Ping = serde_json::from_str(text).map_err(|e| {
        protocol(format!(
            "the Ping answer is not TorchServe's health JSON: {e}"
        ))
    })?;
    Ok(Health {
        live: true,
        ready: ping.status.eq_ignore_ascii_case("healthy"),
    })
}
