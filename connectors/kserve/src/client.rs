//! [`KServeClient`] (also named [`KServeConnector`]): V1 calls here, V2
//! through `inferlink-oip`, and the [`InferenceConnector`] families.

use std::sync::Arc;

use inferlink_core::kit;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::transport::{HttpResponse, HttpTransport, Method, RequestSpec, redact_url};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, Error, ErrorKind, Health, InferRequest, InferResponse, ModelInfo,
    ModelMetadata, ModelRef, RawRequest, RawResponse, Result,
};
use inferlink_oip::{OipClient, Protocol, ServerMetadata};
use serde_json::Value;

use crate::codec::{self, DecodeOptions};
use crate::config::{KServeConfig, KServeProtocol, ProtocolChoice};
use crate::error::{ingress_hint, rest_classifier};

/// The vendor name in [`ConnectorInfo`] and errors.
pub const VENDOR: &str = "kserve";
/// [`ConnectorInfo::protocol`] of a V1 connector (V2 ones say `oip-rest` or `oip-grpc`).
pub const V1_PROTOCOL_NAME: &str = "kserve-v1";

/// A KServe data-plane client: V1 over REST, or V2 (Open Inference
/// Protocol) over REST or gRPC, optionally through an ingress that routes
/// by virtual host.
///
/// Cheap to clone. Build it with [`KServeClient::connect`] (which
/// discovers the protocol when the configuration says `auto`) or
/// [`KServeClient::new`] (a fixed protocol, nothing sent).
#[derive(Debug, Clone)]
pub struct KServeClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ConnectorInfo,
    protocol: KServeProtocol,
    /// V1 calls (also `predict`/`explain` beside V2 when the endpoint is HTTP).
    v1: Option<HttpTransport>,
    /// V2 calls.
    v2: Option<OipClient>,
    host: Option<String>,
    output_name: String,
    output_datatype: Option<inferlink_core::DataType>,
}

impl KServeClient {
    /// A client for a fixed protocol; nothing is sent until the first call.
    ///
    /// Errors: [`ErrorKind::Config`] for unusable settings, including
    /// `protocol: auto` (use [`KServeClient::connect`]);
    /// [`ErrorKind::PermissionDenied`] when the endpoint policy refuses the endpoint.
    pub fn new(config: KServeConfig) -> Result<Self> {
        match config.protocol {
            ProtocolChoice::Fixed(p) => KServeClient::with_protocol(config, p),
            ProtocolChoice::Auto => Err(kit::config_error(
                crate::config::keys::PROTOCOL,
                "auto needs the server: build the client with KServeClient::connect",
            )),
        }
    }

    /// A client for the configuration, asking the server which protocol it
    /// speaks when the configuration says `auto` ([`KServeClient::discover`]).
    pub async fn connect(config: KServeConfig) -> Result<Self> {
        let protocol = match config.protocol {
            ProtocolChoice::Fixed(p) => p,
            ProtocolChoice::Auto => KServeClient::discover(&config).await?,
        };
        KServeClient::with_protocol(config, protocol)
    }

    /// A client for the target's endpoint and configuration.
    pub async fn from_target(target: &ConnectTarget) -> Result<Self> {
        KServeClient::connect(KServeConfig::from_target(target)?).await
    }

    /// Which protocol the server at the configured URL (and host) speaks:
    /// `GET /v2/health/ready` answered with anything but 404, 405 or 501
    /// means V2 (REST); else `GET /v1/models` answered 2xx means V1; else
    /// an error — `NotFound` naming the host when an ingress does not route
    /// it, the transport's `Unavailable`/`Timeout` when nothing answers.
    pub async fn discover(config: &KServeConfig) -> Result<KServeProtocol> {
        let http = v1_transport(config)?;
        let host = config.ingress_host.as_deref();
        let v2 = http
            .send(RequestSpec::get("v2/health/ready").any_status())
            .await
            .map_err(|e| ingress_hint(e, host))?;
        if !matches!(v2.status().as_u16(), 404 | 405 | 501) {
            return Ok(KServeProtocol::V2Rest);
        }
        let v1 = http
            .send(RequestSpec::get("v1/models").any_status())
            .await
            .map_err(|e| ingress_hint(e, host))?;
        if v1.status().is_success() {
            return Ok(KServeProtocol::V1);
        }
        let error = Error::new(
            ErrorKind::NotFound,
            format!(
                "neither GET /v2/health/ready (HTTP {}) nor GET /v1/models (HTTP {}) answered \
                 like a KServe model server; set protocol: v1, v2 or v2-grpc to skip discovery",
                v2.status().as_u16(),
                v1.status().as_u16()
            ),
        )
        .with_context("status", v1.status().as_u16().to_string());
        Err(ingress_hint(v1.decorate(error), host))
    }

    fn with_protocol(config: KServeConfig, protocol: KServeProtocol) -> Result<Self> {
        let http_url = matches!(
            kit::urls::scheme(config.url()).as_deref(),
            Some("http" | "https")
        );
        let v1 = match protocol {
            KServeProtocol::V1 => Some(v1_transport(&config)?),
            // predict/explain beside V2 when the endpoint is HTTP.
            _ if http_url => Some(v1_transport(&config)?),
            _ => None,
        };
        let (info, v2) = match protocol {
            KServeProtocol::V1 => {
                let http = v1.as_ref().expect("built above");
                let info =
                    ConnectorInfo::new(VENDOR, V1_PROTOCOL_NAME, redact_url(http.base_url()));
                (info, None)
            }
            KServeProtocol::V2Rest | KServeProtocol::V2Grpc => {
                let mut oip = config.oip.clone();
                oip.protocol = Some(if protocol == KServeProtocol::V2Rest {
                    Protocol::Rest
                } else {
                    Protocol::Grpc
                });
                let client = OipClient::with_vendor(oip, VENDOR)?;
                (client.info().clone(), Some(client))
            }
        };
        Ok(KServeClient {
            inner: Arc::new(Inner {
                info,
                protocol,
                v1,
                v2,
                host: config.ingress_host.clone(),
                output_name: config.v1_output_name.clone(),
                output_datatype: config.v1_output_datatype,
            }),
        })
    }

    /// Vendor, protocol and endpoint.
    pub fn info(&self) -> &ConnectorInfo {
        &self.inner.info
    }

    /// The protocol in use (after discovery).
    pub fn protocol(&self) -> KServeProtocol {
        self.inner.protocol
    }

    /// The virtual host requests are routed by (`Host`, gRPC `:authority`), if any.
    pub fn ingress_host(&self) -> Option<&str> {
        self.inner.host.as_deref()
    }

    /// The V2 client underneath (`None` for V1), for calls beyond the
    /// connector trait.
    pub fn oip(&self) -> Option<&OipClient> {
        self.inner.v2.as_ref()
    }

    fn hint(&self, error: Error) -> Error {
        ingress_hint(self.inner.info.tag(error), self.inner.host.as_deref())
    }

    fn v1(&self, what: &str) -> Result<&HttpTransport> {
        self.inner.v1.as_ref().ok_or_else(|| {
            inferlink_core::connector::unsupported(
                &self.inner.info,
                &format!("{what} (V1 REST needs an http:// or https:// endpoint URL)"),
            )
        })
    }

    fn v2(&self) -> Option<&OipClient> {
        self.inner.v2.as_ref()
    }

    /// Live and ready. V2: the OIP health calls. V1 (which defines no
    /// server health): live when `GET /` answers 2xx (KServe's
    /// `{"status":"alive"}`), ready when `GET /v1/models` answers 2xx.
    pub async fn health(&self) -> Result<Health> {
        if let Some(v2) = self.v2() {
            return v2.health().await.map_err(|e| self.hint(e));
        }
        let http = self.v1("health")?;
        let live = self.probe(http, RequestSpec::get("")).await?;
        let ready = live && self.probe(http, RequestSpec::get("v1/models")).await?;
        Ok(Health { live, ready })
    }

    /// A status-code probe: 2xx true; 400, 409, 429 and 5xx false; others errors.
    async fn probe(&self, http: &HttpTransport, spec: RequestSpec) -> Result<bool> {
        let resp = http
            .send(spec.any_status())
            .await
            .map_err(|e| self.hint(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(true);
        }
        match status.as_u16() {
            400 | 409 | 429 | 500 | 502 | 503 | 504 => Ok(false),
            _ => Err(self.hint(status_error(&resp))),
        }
    }

    /// The served models: V2 `GET /v2/models`, V1 `GET /v1/models`
    /// (`{"models": [name, …]}`); gRPC has no listing call (`Unsupported`).
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        if let Some(v2) = self.v2() {
            return v2.models().await.map_err(|e| self.hint(e));
        }
        let http = self.v1("listing models")?;
        let resp = http
            .send(RequestSpec::get("v1/models"))
            .await
            .map_err(|e| self.hint(e))?;
        inferlink_oip::codec::decode_model_list(resp.body())
            .map_err(|e| self.hint(resp.decorate(e)))
    }

    /// A model's declared tensors (V2 only; V1 has no metadata: `Unsupported`).
    pub async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        match self.v2() {
            Some(v2) => v2.model_metadata(model).await.map_err(|e| self.hint(e)),
            None => Err(inferlink_core::connector::unsupported(
                &self.inner.info,
                "model metadata (V1 has none; use protocol v2)",
            )),
        }
    }

    /// Whether a model is ready. V1: `GET /v1/models/NAME` — 2xx yes, 503
    /// (KServe's "not ready") no, 404 `NotFound`.
    pub async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        if let Some(v2) = self.v2() {
            return v2.model_ready(model).await.map_err(|e| self.hint(e));
        }
        let http = self.v1("per-model readiness")?;
        let spec = v1_spec(Method::GET, model, None)?;
        self.probe(http, spec)
            .await
            .map_err(|e| e.with_model(model))
    }

    /// Runs inference on tensors: V2 through `inferlink-oip`; V1 maps the
    /// inputs to `instances` and the `predictions` back to tensors
    /// ([`crate::codec`]).
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        if let Some(v2) = self.v2() {
            return v2.infer(model, request).await.map_err(|e| self.hint(e));
        }
        let http = self.v1("inference")?;
        let tag = |e: Error| self.hint(e).with_model(model);
        let body = codec::encode_instances(&request).map_err(tag)?;
        let mut spec = v1_spec(Method::POST, model, Some("predict"))
            .map_err(tag)?
            .content_type(codec::JSON)
            .body(body);
        if request.idempotent {
            spec = spec.idempotent();
        }
        let resp = http.send(spec).await.map_err(tag)?;
        let inputs: Vec<(&str, inferlink_core::DataType)> = request
            .inputs
            .iter()
            .map(|t| (t.name(), t.datatype()))
            .collect();
        let options = DecodeOptions {
            output_name: &self.inner.output_name,
            datatype: self.inner.output_datatype,
            inputs: &inputs,
        };
        let mut outputs =
            codec::decode_predictions(resp.body(), &options).map_err(|e| tag(resp.decorate(e)))?;
        if !request.outputs.is_empty() {
            let names: Vec<String> = outputs.iter().map(|t| t.name().to_owned()).collect();
            if let Some(missing) = request.outputs.iter().find(|o| !names.contains(&o.name)) {
                return Err(tag(Error::invalid(format!(
                    "the V1 answer has no output \"{}\"; it has [{}]",
                    missing.name.escape_debug(),
                    names.join(", ")
                ))));
            }
            outputs.retain(|t| request.outputs.iter().any(|o| o.name == t.name()));
        }
        Ok(InferResponse {
            model_name: model.name.clone(),
            model_version: None,
            id: None,
            outputs,
            parameters: Default::default(),
        })
    }

    /// Sends a pre-encoded body: V1 to `:predict`, V2 REST to `/infer`
    /// (gRPC: `Unsupported`). The answer comes back as it is.
    pub async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        if let Some(v2) = self.v2() {
            return v2.invoke(model, request).await.map_err(|e| self.hint(e));
        }
        self.v1_raw(model, "predict", request).await
    }

    /// V1 `:predict` with your own JSON body (`{"instances": …}` or
    /// whatever the model takes); the answer as JSON. Works beside V2 too
    /// (KServe serves both on one port) when the endpoint URL is HTTP.
    pub async fn predict(&self, model: &ModelRef, body: &Value) -> Result<Value> {
        self.v1_json(model, "predict", body).await
    }

    /// V1 `:explain` with your own JSON body; the explanation as JSON
    /// (its shape is the explainer's). A model without an explainer answers
    /// 501 or 404 on KServe (`Unsupported` / `NotFound`).
    pub async fn explain(&self, model: &ModelRef, body: &Value) -> Result<Value> {
        self.v1_json(model, "explain", body).await
    }

    /// V1 `:explain` with a pre-encoded body; the answer as it is.
    pub async fn explain_raw(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.v1_raw(model, "explain", request).await
    }

    /// The server's name, version and extensions (V2 only: `GET /v2`,
    /// `ServerMetadata`; V1: `Unsupported`).
    pub async fn server_metadata(&self) -> Result<ServerMetadata> {
        match self.v2() {
            Some(v2) => v2.server_metadata().await.map_err(|e| self.hint(e)),
            None => Err(inferlink_core::connector::unsupported(
                &self.inner.info,
                "server metadata (a V2 call)",
            )),
        }
    }

    async fn v1_json(&self, model: &ModelRef, verb: &str, body: &Value) -> Result<Value> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::invalid(format!("the body cannot be written as JSON ({e})")))?;
        let raw = self.v1_raw(model, verb, RawRequest::json(bytes)).await?;
        serde_json::from_slice(&raw.body).map_err(|e| {
            self.hint(Error::new(
                ErrorKind::Protocol,
                format!("the :{verb} answer is not JSON ({e})"),
            ))
            .with_model(model)
        })
    }

    async fn v1_raw(
        &self,
        model: &ModelRef,
        verb: &str,
        request: RawRequest,
    ) -> Result<RawResponse> {
        let tag = |e: Error| self.hint(e).with_model(model);
        let http = self.v1(&format!(":{verb}")).map_err(tag)?;
        let spec = kit::raw_request_spec(
            v1_spec(Method::POST, model, Some(verb)).map_err(tag)?,
            request,
        );
        let resp = http.send(spec).await.map_err(tag)?;
        Ok(RawResponse {
            content_type: resp.content_type().map(str::to_owned),
            headers: Vec::new(),
            body: resp.into_body(),
        })
    }
}

/// The V1 transport: the endpoint URL (http/https) with KServe's classifier.
fn v1_transport(config: &KServeConfig) -> Result<HttpTransport> {
    let url = config.url();
    if !matches!(kit::urls::scheme(url).as_deref(), Some("http" | "https")) {
        return Err(kit::config_error(
            "url",
            "V1 and protocol discovery need an http:// or https:// endpoint URL (for gRPC set \
             protocol: v2-grpc)",
        ));
    }
    HttpTransport::builder(url)
        .vendor(VENDOR)
        .config(config.oip.transport.clone())
        .classifier(rest_classifier())
        .build()
}

/// `v1/models/NAME[:verb]`; V1 has no versions.
fn v1_spec(method: Method, model: &ModelRef, verb: Option<&str>) -> Result<RequestSpec> {
    if model.version.is_some() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "KServe V1 has no model versions (leave the version out, or use protocol v2)",
        ));
    }
    let last = match verb {
        Some(v) => format!("{}:{v}", model.name),
        None => model.name.clone(),
    };
    Ok(RequestSpec::segments(method, &["v1", "models", &last]).model(model.to_string()))
}

fn status_error(resp: &HttpResponse) -> Error {
    let status = resp.status();
    let class = inferlink_core::transport::ErrorClass::for_status(status);
    let mut error = Error::new(class.kind, format!("HTTP {status}"))
        .with_context("status", status.as_u16().to_string());
    if let Some(v) = inferlink_core::transport::VendorMessage::parse(resp.headers(), resp.body()) {
        error = error.with_vendor_message(v.to_string());
    }
    resp.decorate(error)
}

/// The [`InferenceConnector`] of a KServe model server: the client itself
/// (the families are implemented on [`KServeClient`], whose further methods
/// are `predict`, `explain`, `server_metadata`, …).
pub type KServeConnector = KServeClient;

inferlink_core::connector_families! {
    impl KServeClient {
        TensorInference(inherent),
        /// V1 and V2 over REST (a raw body needs an HTTP request).
        RawInvocation(inherent) if |c| c.protocol() != KServeProtocol::V2Grpc,
        /// V1 (`GET /v1/models`) and V2 over REST; OIP's gRPC has no index.
        ModelListing(inherent) if |c| c.protocol() != KServeProtocol::V2Grpc,
        /// V2 only: V1 has no metadata call.
        ModelDescription(inherent) if |c| c.protocol() != KServeProtocol::V1,
        ModelReadiness(inherent),
    }
}
