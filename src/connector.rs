//! The inference connector API: one trait for every model-serving platform.
//!
//! A host resolves a selector to a [`Resolution`], asks [`Connectors`] for a
//! connector for it, and calls [`InferenceConnector::infer`] (tensors) or
//! [`InferenceConnector::invoke`] (opaque bytes), whatever platform serves
//! the model. Vendor crates (`inferlink-oip`, `inferlink-triton`, …) each
//! provide a [`ConnectorFactory`].
//!
//! The required part of the trait is small: [`InferenceConnector::info`],
//! [`InferenceConnector::health`] and [`InferenceConnector::infer`]. Every
//! other method has a default that answers [`ErrorKind::Unsupported`], so a
//! connector only implements what its platform offers, and never fakes the
//! rest.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};
use crate::resolve::Resolution;
use crate::tensor::{DataType, InferRequest, InferResponse, Parameters};

/// What a connector can do; fixed for its lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`InferenceConnector::models`] lists the served models.
    pub list_models: bool,
    /// [`InferenceConnector::model_metadata`] describes a model's tensors.
    pub model_metadata: bool,
    /// [`InferenceConnector::model_ready`] answers per model.
    pub model_ready: bool,
    /// [`InferenceConnector::infer`] takes tensors.
    pub infer: bool,
    /// [`InferenceConnector::invoke`] takes opaque bytes.
    pub invoke: bool,
    /// Tensors travel as raw binary (no JSON number formatting).
    pub binary_tensors: bool,
}

impl Capabilities {
    /// No capabilities; set fields with struct update syntax or the `with_*` methods.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Sets every field (useful as a starting point for full protocols).
    pub fn all() -> Self {
        Capabilities {
            list_models: true,
            model_metadata: true,
            model_ready: true,
            infer: true,
            invoke: true,
            binary_tensors: true,
        }
    }
}

/// Who a connector talks to and how; shown in logs and errors (never secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// The vendor or platform, e.g. `"triton"`, `"kserve"`, `"sagemaker"`.
    pub vendor: String,
    /// The wire protocol, e.g. `"oip-rest"`, `"oip-grpc"`, `"seldon-v1"`.
    pub protocol: String,
    /// The endpoint, without user info or query secrets.
    pub endpoint: String,
    /// What this connector supports.
    pub capabilities: Capabilities,
}

/// Server health: the answer to "can I send requests now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The server process is up.
    pub live: bool,
    /// The server is ready to serve inference.
    pub ready: bool,
}

/// A model on a server, optionally at one version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    /// The model name.
    pub name: String,
    /// A version; `None` lets the server pick by its own policy.
    pub version: Option<String>,
}

impl ModelRef {
    /// A model by name, any version.
    pub fn new(name: impl Into<String>) -> Self {
        ModelRef {
            name: name.into(),
            version: None,
        }
    }

    /// A model at one version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl From<&str> for ModelRef {
    fn from(name: &str) -> Self {
        ModelRef::new(name)
    }
}

/// A model as listed by a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The model name.
    pub name: String,
    /// The version, when the server lists versions.
    pub version: Option<String>,
    /// The server's state word for the model (`"READY"`, `"UNAVAILABLE"`, …), when given.
    pub state: Option<String>,
}

/// The declared name, datatype and shape of one model input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// The tensor name.
    pub name: String,
    /// The datatype.
    pub datatype: DataType,
    /// The shape; `-1` marks a variable dimension.
    pub shape: Vec<i64>,
    /// Vendor parameters (e.g. MLServer's `content_type`).
    pub parameters: Parameters,
}

/// What a server says about a model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelMetadata {
    /// The model name.
    pub name: String,
    /// Available versions (empty when the server does not say).
    pub versions: Vec<String>,
    /// The serving platform or framework, informational (`"onnx_onnxv1"`, …).
    pub platform: String,
    /// Inputs.
    pub inputs: Vec<TensorSpec>,
    /// Outputs.
    pub outputs: Vec<TensorSpec>,
    /// Further vendor properties.
    pub properties: BTreeMap<String, String>,
}

/// An opaque request: bytes and a content type, for model-defined payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRequest {
    /// The body, shared without copies.
    pub body: Bytes,
    /// The body's media type, e.g. `application/json`, `text/csv`.
    pub content_type: String,
    /// The media type wanted back, when the platform lets the caller choose.
    pub accept: Option<String>,
    /// Extra protocol headers (e.g. SageMaker custom attributes); names and
    /// values are checked for control characters before sending.
    pub headers: Vec<(String, String)>,
    /// True when safe to send twice (see [`InferRequest::idempotent`]).
    pub idempotent: bool,
}

impl RawRequest {
    /// A request with a body and its content type.
    pub fn new(body: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        RawRequest {
            body: body.into(),
            content_type: content_type.into(),
            accept: None,
            headers: Vec::new(),
            idempotent: false,
        }
    }

    /// A JSON body.
    pub fn json(body: impl Into<Bytes>) -> Self {
        RawRequest::new(body, "application/json")
    }
}

/// The answer to a [`RawRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawResponse {
    /// The body.
    pub body: Bytes,
    /// Its media type, when the server says.
    pub content_type: Option<String>,
    /// Protocol headers worth keeping (e.g. the invoked production variant).
    pub headers: Vec<(String, String)>,
}

/// One model-serving platform behind a common API.
///
/// Object safe: hosts hold `Arc<dyn InferenceConnector>`. Methods a platform
/// lacks answer [`ErrorKind::Unsupported`] (the defaults do).
#[async_trait]
pub trait InferenceConnector: Send + Sync + fmt::Debug {
    /// Vendor, protocol, endpoint and capabilities.
    fn info(&self) -> &ConnectorInfo;

    /// Whether the server is live and ready.
    async fn health(&self) -> Result<Health>;

    /// Runs inference on tensors.
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse>;

    /// Lists the models the server serves.
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        Err(unsupported(self.info(), "listing models"))
    }

    /// Describes a model's inputs and outputs.
    async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        let _ = model;
        Err(unsupported(self.info(), "model metadata"))
    }

    /// Whether one model is ready to serve.
    async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        let _ = model;
        Err(unsupported(self.info(), "per-model readiness"))
    }

    /// Sends an opaque, model-defined payload.
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let _ = (model, request);
        Err(unsupported(self.info(), "raw invocation"))
    }
}

/// The [`ErrorKind::Unsupported`] error a connector returns for a capability it lacks.
pub fn unsupported(info: &ConnectorInfo, what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "{} ({}) does not support {what}",
            info.vendor, info.protocol
        ),
    )
    .with_context("vendor", info.vendor.clone())
    .with_context("endpoint", info.endpoint.clone())
}

/// Builds connectors of one vendor from resolutions.
#[async_trait]
pub trait ConnectorFactory: Send + Sync + fmt::Debug {
    /// The vendor name, e.g. `"triton"`.
    fn vendor(&self) -> &str;

    /// Record `product` values this factory serves (compared case-insensitively).
    fn products(&self) -> &[&str];

    /// Service `resource` values this factory serves, used when no product matches
    /// (e.g. `"oip"` for any Open Inference Protocol server).
    fn resources(&self) -> &[&str] {
        &[]
    }

    /// A connector for the resolved service, endpoint and credentials.
    ///
    /// Configuration is read and validated here: a bad key fails now with
    /// [`ErrorKind::Config`], not at the first request.
    async fn connect(&self, resolution: &Resolution) -> Result<Arc<dyn InferenceConnector>>;
}

/// Maps products and resources to connector factories.
///
/// Dispatch: first a factory whose [`ConnectorFactory::products`] lists the
/// record's product; otherwise one whose [`ConnectorFactory::resources`]
/// lists the service's resource; otherwise an [`ErrorKind::Unsupported`]
/// error naming the products and resources known. Later registrations win
/// over earlier ones for the same name.
#[derive(Debug, Default, Clone)]
pub struct Connectors {
    by_product: BTreeMap<String, Arc<dyn ConnectorFactory>>,
    by_resource: BTreeMap<String, Arc<dyn ConnectorFactory>>,
}

impl Connectors {
    /// An empty set.
    pub fn new() -> Self {
        Connectors::default()
    }

    /// Adds a factory under its products and resources.
    pub fn register(&mut self, factory: impl ConnectorFactory + 'static) -> &mut Self {
        self.register_shared(Arc::new(factory))
    }

    /// Adds a shared factory under its products and resources.
    pub fn register_shared(&mut self, factory: Arc<dyn ConnectorFactory>) -> &mut Self {
        for p in factory.products() {
            self.by_product
                .insert(p.to_ascii_lowercase(), Arc::clone(&factory));
        }
        for r in factory.resources() {
            self.by_resource
                .insert(r.to_ascii_lowercase(), Arc::clone(&factory));
        }
        self
    }

    /// Adds a factory (builder style).
    pub fn with(mut self, factory: impl ConnectorFactory + 'static) -> Self {
        self.register(factory);
        self
    }

    /// Products with a registered factory, sorted.
    pub fn products(&self) -> Vec<&str> {
        self.by_product.keys().map(String::as_str).collect()
    }

    /// Resources with a registered factory, sorted.
    pub fn resources(&self) -> Vec<&str> {
        self.by_resource.keys().map(String::as_str).collect()
    }

    /// The factory that serves this resolution, if any.
    pub fn factory_for(&self, resolution: &Resolution) -> Option<&Arc<dyn ConnectorFactory>> {
        let product = resolution.record().product.to_ascii_lowercase();
        let resource = resolution.service().resource.to_ascii_lowercase();
        self.by_product
            .get(&product)
            .or_else(|| self.by_resource.get(&resource))
    }

    /// A connector for the resolution (see the type's dispatch rules).
    pub async fn connect(&self, resolution: &Resolution) -> Result<Arc<dyn InferenceConnector>> {
        match self.factory_for(resolution) {
            Some(factory) => factory.connect(resolution).await,
            None => Err(self.no_factory(resolution)),
        }
    }

    fn no_factory(&self, resolution: &Resolution) -> Error {
        let record = resolution.record();
        let service = resolution.service();
        let list = |names: Vec<&str>| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "no connector for product \"{}\" (service \"{}\", resource \"{}\"); \
                 known products: {}; known resources: {}",
                record.product,
                service.id,
                service.resource,
                list(self.products()),
                list(self.resources()),
            ),
        )
        .with_context("record", record.id.clone())
    }
}
