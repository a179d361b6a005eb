//! The gRPC inference side (`org.pytorch.serve.grpc.inference.InferenceAPIsService`,
//! port 7070): a tonic channel configured from the shared transport settings,
//! the calls through the transport's one retry loop, and the token taken
//! from the shared [`TokenKeys`] on every call.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use inferlink::transport::TransportConfig;
use inferlink::transport::retry::{self, AttemptError, CallLimits, Idempotency};
use inferlink::{ByteStream, Error, ErrorKind, Health, ModelRef, Result};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::config_error;
use crate::error::{from_grpc_status, grpc_class, protocol};
use crate::keys::TokenKeys;
use crate::proto::inference_ap_is_service_client::InferenceApIsServiceClient;
use crate::proto::{PredictionResponse, PredictionsRequest};

type Client = InferenceApIsServiceClient<InterceptedService<Channel, Metadata>>;

/// Adds static headers and the current inference token to every call.
#[derive(Clone)]
pub(crate) struct Metadata {
    fixed: Arc<Vec<(AsciiMetadataKey, AsciiMetadataValue)>>,
    keys: TokenKeys,
}

impl Interceptor for Metadata {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        let map = request.metadata_mut();
        for (k, v) in self.fixed.iter() {
            map.insert(k.clone(), v.clone());
        }
        if let Some(key) = self.keys.inference() {
            let mut value = AsciiMetadataValue::try_from(format!("Bearer {}", key.expose()))
                .map_err(|_| tonic::Status::invalid_argument("the inference key is not ASCII"))?;
            value.set_sensitive(true);
            map.insert("authorization", value);
        }
        Ok(request)
    }
}

/// A lazy gRPC connection (nothing connects until the first call).
#[derive(Clone)]
pub(crate) struct GrpcWire {
    client: Client,
    retry: inferlink::transport::RetryPolicy,
    limits: CallLimits,
    vendor: Arc<str>,
    endpoint: Arc<str>,
}

impl std::fmt::Debug for GrpcWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcWire")
            .field("endpoint", &self.endpoint)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl GrpcWire {
    /// A channel to `target` (an `http`/`https` URL) with the transport's
    /// timeouts, TLS and static headers; the token comes from `keys`.
    pub(crate) fn new(
        target: &str,
        cfg: &TransportConfig,
        vendor: &str,
        keys: TokenKeys,
    ) -> Result<GrpcWire> {
        cfg.validate()?;
        let url = url::Url::parse(target).map_err(|e| config_error("grpc_url", e))?;
        if let Some(policy) = &cfg.endpoint_policy {
            let allowed = match url.host() {
                Some(url::Host::Ipv4(ip)) => policy.allows_ip(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => policy.allows_ip(IpAddr::V6(ip)),
                Some(url::Host::Domain(d)) => policy.allows_host_name(d),
                None => false,
            };
            if !allowed {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "the endpoint policy does not allow gRPC connections to {}",
                        url.host_str().unwrap_or("a URL without host")
                    ),
                )
                .with_context("endpoint", target.to_owned()));
            }
        }
        let mut endpoint = Endpoint::from_shared(target.to_owned())
            .map_err(|e| config_error("grpc_url", format!("not a usable gRPC URL ({e})")))?
            .connect_timeout(cfg.timeout_connect)
            .tcp_nodelay(true);
        if url.scheme() == "https" {
            if cfg.tls.insecure_skip_verify {
                return Err(config_error(
                    inferlink::transport::config::keys::TLS_INSECURE_SKIP_VERIFY,
                    "skipping certificate verification is not available for gRPC; trust the \
                     server's CA with tls_ca_pem instead",
                ));
            }
            let mut tls = ClientTlsConfig::new();
            tls = match cfg.tls.ca_pem_bytes() {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
                None => tls.with_native_roots(),
            };
            if let Some((cert, key)) = cfg.tls.client_identity_pem() {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::new(ErrorKind::Config, format!("gRPC TLS settings: {e}")))?;
        }
        let channel = endpoint.connect_lazy();
        let mut fixed = Vec::new();
        for h in &cfg.headers {
            let key = format!(
                "{}{}",
                inferlink::transport::config::keys::HEADER_PREFIX,
                h.name
            );
            fixed.push(metadata_pair(
                &h.name,
                h.value.expose(),
                h.value.is_secret(),
                &key,
            )?);
        }
        if let Some((name, value)) = cfg.auth.header()? {
            let text = value
                .to_str()
                .map_err(|_| config_error("auth", "not a valid gRPC metadata value"))?;
            fixed.push(metadata_pair(name.as_str(), text, true, "auth")?);
        }
        let limit = usize::try_from(cfg.response_max_bytes).unwrap_or(usize::MAX);
        let client = InferenceApIsServiceClient::with_interceptor(
            channel,
            Metadata {
                fixed: Arc::new(fixed),
                keys,
            },
        )
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
        Ok(GrpcWire {
            client,
            retry: cfg.retry.clone(),
            limits: CallLimits {
                deadline: cfg.deadline,
                attempt_timeout: cfg.timeout_request,
                max_attempts: cfg.retry.max_attempts,
            },
            vendor: Arc::from(vendor),
            endpoint: Arc::from(target),
        })
    }

    /// The endpoint shown in info and errors.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn call<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        model: Option<&ModelRef>,
        mut rpc: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let span = tracing::debug_span!(
            "inferlink.grpc",
            vendor = %self.vendor,
            endpoint = %self.endpoint,
            model = %model.map(ToString::to_string).unwrap_or_default(),
        );
        let outcome = tracing::Instrument::instrument(
            retry::run(&self.retry, self.limits, idempotency, |_| {
                let call = rpc(self.client.clone());
                async move {
                    call.await
                        .map(tonic::Response::into_inner)
                        .map_err(|status| {
                            let (_, rule) = grpc_class(&status);
                            AttemptError::new(from_grpc_status(&status), rule)
                        })
                }
            }),
            span,
        )
        .await;
        outcome
            .map(|done| done.value)
            .map_err(|e| self.decorate(e, model))
    }

    pub(crate) fn decorate(&self, error: Error, model: Option<&ModelRef>) -> Error {
        let error = error
            .with_vendor(self.vendor.as_ref())
            .with_endpoint(self.endpoint.as_ref());
        match model {
            Some(m) => error.with_model(m),
            None => error,
        }
    }

    /// `Ping`: the health JSON's `status` decides (`Healthy` = serving).
    pub(crate) async fn ping(&self) -> Result<Health> {
        let r = self
            .call(
                Idempotency::Safe,
                None,
                |mut c| async move { c.ping(()).await },
            )
            .await?;
        health_from_text(&r.health).map_err(|e| self.decorate(e, None))
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
        let idempotency = if idempotent {
            Idempotency::Safe
        } else {
            Idempotency::Unsafe
        };
        let message = Self::request(model, "data", body);
        let r = self
            .call(idempotency, Some(model), |mut c| {
                let message = message.clone();
                async move { c.predictions(message).await }
            })
            .await?;
        check_status(&r).map_err(|e| self.decorate(e, Some(model)))?;
        Ok(r.prediction)
    }

    /// `StreamPredictions`: each response's prediction is one chunk.
    pub(crate) async fn predict_stream(
        &self,
        model: &ModelRef,
        body: Bytes,
        idempotent: bool,
    ) -> Result<ByteStream> {
        let idempotency = if idempotent {
            Idempotency::Safe
        } else {
            Idempotency::Unsafe
        };
        let message = Self::request(model, "data", body);
        let stream = self
            .call(idempotency, Some(model), |mut c| {
                let message = message.clone();
                async move { c.stream_predictions(message).await }
            })
            .await?;
        let wire = self.clone();
        let model = model.clone();
        let timeout = self.limits.attempt_timeout;
        let body = futures_util::stream::unfold(
            (Some(stream), wire, model),
            move |(stream, wire, model)| async move {
                let mut stream = stream?;
                let next = tokio::time::timeout(timeout, stream.next()).await;
                let item = match next {
                    Err(_) => Err(wire.decorate(
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
                        Err(e) => Err(wire.decorate(e, Some(&model))),
                    },
                    Ok(Some(Err(status))) => {
                        Err(wire.decorate(from_grpc_status(&status), Some(&model)))
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

fn metadata_pair(
    name: &str,
    value: &str,
    sensitive: bool,
    key: &str,
) -> Result<(AsciiMetadataKey, AsciiMetadataValue)> {
    let k = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| config_error(key, "is not a valid gRPC metadata name"))?;
    if value.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err(config_error(
            key,
            "the value must be visible ASCII without CR/LF",
        ));
    }
    let mut v = AsciiMetadataValue::try_from(value)
        .map_err(|_| config_error(key, "is not a valid gRPC metadata value"))?;
    v.set_sensitive(sensitive);
    Ok((k, v))
}
