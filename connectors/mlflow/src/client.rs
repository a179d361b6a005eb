//! The connector: health from `/ping`, tensors and raw bodies to `/invocations`.

use std::sync::Arc;

use inferlink_core::transport::{HttpResponse, HttpTransport, HttpTransportBuilder, RequestSpec};
use inferlink_core::transport::{Idempotency, TransportConfig, redact_url};
use inferlink_core::{ConnectTarget, ConnectorInfo, Error, Health, InferRequest, InferResponse};
use inferlink_core::{ModelRef, RawInvocation, RawRequest, RawResponse};
use inferlink_core::{Result, TensorInference, async_trait};

use crate::config::MlflowConfig;
use crate::{PROTOCOL, VENDOR, codec, error};

/// A connector to one MLflow scoring server (one model).
#[derive(Debug)]
pub struct MlflowConnector {
    http: HttpTransport,
    config: MlflowConfig,
    info: ConnectorInfo,
}

impl MlflowConnector {
    /// A connector for the target's URL and configuration (nothing is sent
    /// yet). Errors: `Config` naming the key for a bad setting or URL.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let config = MlflowConfig::from_target(target)?;
        let http = HttpTransportBuilder::for_target(target, TransportConfig::default())?
            .vendor(VENDOR)
            .classifier(Arc::new(error::MlflowClassifier))
            .build()?;
        let info = ConnectorInfo::new(VENDOR, PROTOCOL, redact_url(http.base_url()));
        Ok(MlflowConnector { http, config, info })
    }

    /// Sends `spec` to `/invocations` for `model`. The server cannot route
    /// by model: a name other than `model_name`, or any version, is
    /// `NotFound` here, without a request.
    async fn call(&self, model: &ModelRef, spec: RequestSpec, safe: bool) -> Result<HttpResponse> {
        let tag = |e: Error| self.info.tag(e).with_model(model);
        let named = self.config.model_name.as_deref();
        if model.version.is_some() || named.is_some_and(|n| n != model.name) {
            let served = named.unwrap_or("one model");
            let why = format!("no model \"{model}\" here: it serves {served}, unversioned");
            return Err(tag(Error::not_found(why)));
        }
        let idempotency = Idempotency::marked(safe);
        let spec = spec.model(model.to_string()).idempotency(idempotency);
        self.http.send(spec).await.map_err(tag)
    }
}

impl MlflowConnector {
    /// Who this connector is (vendor, protocol, endpoint).
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// `GET /ping`: 200 is live and ready; another status is live, not ready.
    pub async fn health(&self) -> Result<Health> {
        match self.http.send(RequestSpec::get("ping")).await {
            Ok(_) => Ok(Health::SERVING),
            Err(e) if e.context("status").is_some() => Ok(Health {
                live: true,
                ready: false,
            }),
            Err(e) => Err(self.info.tag(e)),
        }
    }
}

inferlink_core::connector_families! {
    impl MlflowConnector {
        TensorInference,
        RawInvocation,
    }
}

#[async_trait]
impl TensorInference for MlflowConnector {
    /// Tensors to `/invocations` in the configured form, `params` from the
    /// request's parameters; the predictions back as one tensor (named
    /// `output_name`; the request's requested outputs are not sent, the
    /// server has no such field).
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let tag = |e: Error| self.info.tag(e).with_model(model);
        let body = codec::encode_request(&request, self.config.input_format).map_err(tag)?;
        let spec = RequestSpec::post("invocations", body).content_type("application/json");
        let response = self.call(model, spec, request.idempotent).await?;
        let decoded = codec::decode_response(response.body(), &self.config);
        let output = decoded.map_err(|e| tag(response.decorate(e)))?;
        let mut answer = InferResponse::default();
        (answer.model_name, answer.outputs) = (model.name.clone(), vec![output]);
        Ok(answer)
    }
}

#[async_trait]
impl RawInvocation for MlflowConnector {
    /// The body as is to `/invocations` with its content type (required:
    /// the server answers 500 without one, 415 for a type it does not read)
    /// and extra headers; `accept` is not sent (the server answers JSON).
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        if request.content_type.trim().is_empty() {
            let e = Error::invalid("the MLflow scoring server needs a content type");
            return Err(self.info.tag(e).with_model(model));
        }
        let mut spec = RequestSpec::post("invocations", request.body);
        spec = spec.content_type(&request.content_type);
        for (name, value) in &request.headers {
            spec = spec.header(name, value);
        }
        let response = self.call(model, spec, request.idempotent).await?;
        let content_type = response.content_type().map(str::to_owned);
        Ok(RawResponse {
            body: response.into_body(),
            content_type,
            headers: Vec::new(),
        })
    }
}
