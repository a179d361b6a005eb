//! The connector: health from `/ping`, tensors and raw bodies to `/invocations`.

use inferlink_core::transport::{
    HttpResponse, HttpTransport, HttpTransportBuilder, RequestSpec, TransportConfig, redact_url,
};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, Error, ErrorKind, Health, InferRequest, InferResponse,
    InferenceConnector, ModelRef, RawInvocation, RawRequest, RawResponse, Result, TensorInference,
    async_trait,
};

use crate::config::MlflowConfig;
use crate::{PROTOCOL, VENDOR, codec, error};

/// A connector to one MLflow scoring server (one model). Cheap to share.
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
            .classifier(error::classifier())
            .build()?;
        let info = ConnectorInfo::new(VENDOR, PROTOCOL, redact_url(http.base_url()));
        Ok(MlflowConnector { http, config, info })
    }

    /// The configuration.
    pub fn config(&self) -> &MlflowConfig {
        &self.config
    }

    /// The MLflow version the server runs (`GET /version`, bare text).
    pub async fn server_version(&self) -> Result<String> {
        let response = self.send(RequestSpec::get("version"), None).await?;
        let text = response.text()?.trim();
        Ok(inferlink_core::error::printable(text.to_owned(), 64))
    }

    /// `NotFound` unless `model` is the one the configuration names (any
    /// name when `model_name` is unset; a version only when `model_version`
    /// is set and equal): the server cannot route by model.
    fn check_model(&self, model: &ModelRef) -> Result<()> {
        let name_ok = self
            .config
            .model_name
            .as_ref()
            .is_none_or(|n| *n == model.name);
        let version_ok = model.version.is_none() || model.version == self.config.model_version;
        if name_ok && version_ok {
            return Ok(());
        }
        let served = match (&self.config.model_name, &self.config.model_version) {
            (Some(n), Some(v)) => format!("\"{n}@{v}\""),
            (Some(n), None) => format!("\"{n}\" (no versions)"),
            (None, _) => "one model, without versions".to_owned(),
        };
        Err(self
            .info
            .tag(Error::not_found(format!(
                "model \"{model}\" is not served here: this MLflow scoring server serves {served}"
            )))
            .with_model(model))
    }

    async fn send(&self, spec: RequestSpec, model: Option<&ModelRef>) -> Result<HttpResponse> {
        let tag = |e: Error| match model {
            Some(m) => self.info.tag(e).with_model(m),
            None => self.info.tag(e),
        };
        let spec = match model {
            Some(m) => spec.model(m.to_string()),
            None => spec,
        };
        self.http.send(spec).await.map_err(tag)
    }
}

#[async_trait]
impl InferenceConnector for MlflowConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// `GET /ping`: 200 is live and ready; another status is live, not ready.
    async fn health(&self) -> Result<Health> {
        match self.send(RequestSpec::get("ping"), None).await {
            Ok(_) => Ok(Health::SERVING),
            Err(e) if e.context("status").is_some() => Ok(Health {
                live: true,
                ready: false,
            }),
            Err(e) => Err(e),
        }
    }

    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        Some(self)
    }

    fn as_raw_invocation(&self) -> Option<&dyn RawInvocation> {
        Some(self)
    }
}

#[async_trait]
impl TensorInference for MlflowConnector {
    /// Tensors to `/invocations` in the configured form, `params` from the
    /// request's parameters; the predictions back as tensors (only the
    /// requested outputs when the request names some).
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.check_model(model)?;
        let tag = |e: Error| self.info.tag(e).with_model(model);
        let body = codec::encode_request(&request, self.config.input_format).map_err(tag)?;
        let mut spec = RequestSpec::post("invocations", body).content_type("application/json");
        if request.idempotent {
            spec = spec.idempotent();
        }
        let response = self.send(spec, Some(model)).await?;
        let mut outputs = codec::decode_response(response.body(), &self.config)
            .map_err(|e| tag(response.decorate(e)))?;
        if let Some(missing) = request
            .outputs
            .iter()
            .find(|o| !outputs.iter().any(|t| t.name() == o.name))
        {
            let names: Vec<&str> = outputs.iter().map(|t| t.name()).collect();
            return Err(tag(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the model gave no output \"{}\"; it gave [{}]",
                    missing.name,
                    names.join(", ")
                ),
            )));
        }
        if !request.outputs.is_empty() {
            outputs.retain(|t| request.outputs.iter().any(|o| o.name == t.name()));
        }
        Ok(InferResponse {
            model_name: model.name.clone(),
            outputs,
            ..InferResponse::default()
        })
    }
}

#[async_trait]
impl RawInvocation for MlflowConnector {
    /// The body as is to `/invocations` with its content type (required:
    /// the server answers 500 without one, 415 for a type it does not read).
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.check_model(model)?;
        if request.content_type.trim().is_empty() {
            let e = Error::invalid("the MLflow scoring server needs a content type");
            return Err(self.info.tag(e).with_model(model));
        }
        let mut spec =
            RequestSpec::post("invocations", request.body).content_type(&request.content_type);
        if let Some(accept) = &request.accept {
            spec = spec.header("accept", accept);
        }
        for (name, value) in &request.headers {
            spec = spec.header(name, value);
        }
        if request.idempotent {
            spec = spec.idempotent();
        }
        let response = self.send(spec, Some(model)).await?;
        Ok(RawResponse {
            content_type: response.content_type().map(str::to_owned),
            headers: Vec::new(),
            body: response.into_body(),
        })
    }
}
