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
use futures_core::stream::BoxStream;

use crate::error::{Error, ErrorKind, Result};
use crate::target::{ConfigValue, ConnectTarget, ToConnectTarget};
use crate::tensor::{DataType, InferResponse, Parameters, Tensor};

mod capability;
mod context;
mod ext;
mod layer;
pub mod split;
mod typed;

pub use crate::model_ref::ModelRef;
pub use capability::{
    ModelDescription, ModelListing, ModelReadiness, RawInvocation, StreamingInference,
    StreamingInvocation, TensorInference, capabilities_of,
};
pub use context::with_error_context;
pub use ext::InferenceConnectorExt;
pub use layer::{ConnectorLayer, RequireCapabilities};
pub use split::SplitLimits;
pub use typed::{
    ChatMessage, ChatRole, EmbedRequest, EmbedResponse, Embedding, FinishReason, GenerateDelta,
    GenerateInput, GenerateOptions, GenerateRequest, GenerateResponse, GenerateStream, Generation,
    RerankHit, RerankRequest, RerankResponse, Reranking, StreamingGeneration, Usage,
};

/// What a connector can do, derived from the capability families it
/// implements (see [`InferenceConnector::capabilities`]); never declared by
/// hand, so it cannot claim a call the connector does not implement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`ModelListing`]: `models` lists the served models.
    pub list_models: bool,
    /// [`ModelDescription`]: `model_metadata` describes a model's tensors.
    pub model_metadata: bool,
    /// [`ModelReadiness`]: `model_ready` answers per model.
    pub model_ready: bool,
    /// [`TensorInference`]: `infer` takes tensors.
    pub infer: bool,
    /// [`RawInvocation`]: `invoke` takes opaque bytes.
    pub invoke: bool,
    /// Tensors travel as raw binary (no JSON number formatting): a property
    /// of the wire encoding the configuration chose ([`ConnectorInfo::binary_tensors`]).
    pub binary_tensors: bool,
    /// [`StreamingInference`]: `infer_stream` yields responses as the server
    /// sends them (decoupled models, token streams).
    pub stream_infer: bool,
    /// [`StreamingInvocation`]: `invoke_stream` yields the response body in
    /// chunks as the server sends them.
    pub stream_invoke: bool,
    /// [`Embedding`]: `embed` turns texts into vectors.
    pub embed: bool,
    /// [`Reranking`]: `rerank` scores documents against a query.
    pub rerank: bool,
    /// [`Generation`]: `generate` produces text from a prompt or a chat.
    pub generate: bool,
    /// [`StreamingGeneration`]: `generate_stream` yields the text as it is produced.
    pub stream_generate: bool,
}

impl Capabilities {
    /// The capability letters used in the docs' connector table
    /// (`I V M L R S B E K G`), for listings: I infer, V invoke, M metadata,
    /// L list models, R readiness, S streaming (any streamed family),
    /// B binary tensors, E embed, K rerank, G generate.
    pub fn letters(&self) -> String {
        [
            (self.infer, 'I'),
            (self.invoke, 'V'),
            (self.model_metadata, 'M'),
            (self.list_models, 'L'),
            (self.model_ready, 'R'),
            (
                self.stream_infer || self.stream_invoke || self.stream_generate,
                'S',
            ),
            (self.binary_tensors, 'B'),
            (self.embed, 'E'),
            (self.rerank, 'K'),
            (self.generate, 'G'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, letter)| *letter)
        .collect()
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
    /// Tensors travel as raw binary (the configured encoding says so).
    pub binary_tensors: bool,
}

impl ConnectorInfo {
    /// Describes a connector (tensors as JSON unless [`ConnectorInfo::with_binary_tensors`]).
    pub fn new(
        vendor: impl Into<String>,
        protocol: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> Self {
        ConnectorInfo {
            vendor: vendor.into(),
            protocol: protocol.into(),
            endpoint: endpoint.into(),
            binary_tensors: false,
        }
    }

    /// Says whether tensors travel as raw binary with this configuration.
    pub fn with_binary_tensors(mut self, binary: bool) -> Self {
        self.binary_tensors = binary;
        self
    }

    /// Tags an error with this connector's vendor and endpoint (values an
    /// inner layer set already are kept; see [`Error::with_vendor`]).
    pub fn tag(&self, error: Error) -> Error {
        error
            .with_vendor(self.vendor.as_str())
            .with_endpoint(self.endpoint.as_str())
    }
}

/// Server health: the answer to "can I send requests now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The server process is up.
    pub live: bool,
    /// The server is ready to serve inference.
    pub ready: bool,
}

impl Health {
    /// Live and ready.
    pub const SERVING: Health = Health {
        live: true,
        ready: true,
    };

    /// Live and ready: requests can be sent now.
    pub fn is_serving(&self) -> bool {
        self.live && self.ready
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

impl TensorSpec {
    /// A spec without parameters; `-1` in `shape` marks a variable dimension.
    pub fn new(name: impl Into<String>, datatype: DataType, shape: Vec<i64>) -> Self {
        TensorSpec {
            name: name.into(),
            datatype,
            shape,
            parameters: Parameters::new(),
        }
    }

    /// Whether `tensor` fits this spec: same datatype, same rank, and every
    /// fixed dimension equal (negative dimensions match any size).
    ///
    /// The error is [`ErrorKind::InvalidInput`] and names the tensor. Names
    /// are not compared here (see [`ModelMetadata::validate_inputs`]).
    pub fn check(&self, tensor: &Tensor) -> Result<()> {
        let fail = |what: String| {
            Error::invalid(format!(
                "input \"{}\" {what}",
                crate::error::printable(tensor.name().to_owned(), 128)
            ))
            .with_context("tensor", tensor.name())
        };
        if tensor.datatype() != self.datatype {
            return Err(fail(format!(
                "is {} but the model expects {}",
                tensor.datatype(),
                self.datatype
            )));
        }
        let fits = tensor.shape().len() == self.shape.len()
            && tensor
                .shape()
                .iter()
                .zip(&self.shape)
                .all(|(&have, &want)| want < 0 || usize::try_from(want) == Ok(have));
        if !fits {
            return Err(fail(format!(
                "has shape {:?} but the model expects {:?} (-1: any size)",
                tensor.shape(),
                self.shape
            )));
        }
        Ok(())
    }
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

impl ModelMetadata {
    /// The declared input with this name.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|s| s.name == name)
    }

    /// The declared output with this name.
    pub fn output(&self, name: &str) -> Option<&TensorSpec> {
        self.outputs.iter().find(|s| s.name == name)
    }

    /// Checks request inputs against the declared inputs.
    ///
    /// Every input must be declared and fit its spec ([`TensorSpec::check`]),
    /// no input may appear twice, and every declared input must be present.
    /// A model that declares no inputs at all (KServe custom models answer
    /// empty metadata) accepts anything. Errors are
    /// [`ErrorKind::InvalidInput`] naming the input and the model.
    pub fn validate_inputs(&self, inputs: &[Tensor]) -> Result<()> {
        if self.inputs.is_empty() {
            return Ok(());
        }
        let tag = |e: Error| e.with_model(&self.name);
        for (i, tensor) in inputs.iter().enumerate() {
            if inputs[..i].iter().any(|t| t.name() == tensor.name()) {
                return Err(tag(Error::invalid(format!(
                    "input \"{}\" is given twice",
                    crate::error::printable(tensor.name().to_owned(), 128)
                ))));
            }
            let Some(spec) = self.input(tensor.name()) else {
                let names: Vec<&str> = self.inputs.iter().map(|s| s.name.as_str()).collect();
                return Err(tag(Error::invalid(format!(
                    "model \"{}\" has no input \"{}\"; its inputs: [{}]",
                    self.name,
                    crate::error::printable(tensor.name().to_owned(), 128),
                    names.join(", ")
                ))
                .with_context("tensor", tensor.name())));
            };
            spec.check(tensor).map_err(tag)?;
        }
        let missing: Vec<&str> = self
            .inputs
            .iter()
            .filter(|s| !inputs.iter().any(|t| t.name() == s.name))
            .map(|s| s.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(tag(Error::invalid(format!(
                "model \"{}\" needs input(s) [{}] that the request lacks",
                self.name,
                missing.join(", ")
            ))));
        }
        Ok(())
    }
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

/// Responses of one streaming inference call, in the order the server sends
/// them. The stream ends when the server marks the last response (or closes
/// the stream); an `Err` item ends it too.
pub type InferStream = BoxStream<'static, Result<InferResponse>>;

/// A response body delivered chunk by chunk as it arrives.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// The answer to a [`RawRequest`] sent with [`InferenceConnector::invoke_stream`]:
/// the head at once, the body as it arrives.
pub struct RawStream {
    /// The body's media type, when the server says.
    pub content_type: Option<String>,
    /// Protocol headers worth keeping.
    pub headers: Vec<(String, String)>,
    /// The body, chunk by chunk; chunk boundaries are the server's (or the
    /// protocol's, e.g. one event-stream payload part per chunk).
    pub body: ByteStream,
}

impl fmt::Debug for RawStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawStream")
            .field("content_type", &self.content_type)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// One model-serving platform behind a common API.
///
/// Object safe: hosts hold `Arc<dyn InferenceConnector>`. The required part
/// is small: [`InferenceConnector::info`] and [`InferenceConnector::health`].
/// Everything else is a **capability family**, a trait of its own
/// ([`TensorInference`], [`RawInvocation`], [`ModelListing`],
/// [`ModelDescription`], [`ModelReadiness`], [`StreamingInference`],
/// [`StreamingInvocation`], and for text models [`Embedding`], [`Reranking`],
/// [`Generation`], [`StreamingGeneration`]). A connector implements the families its
/// platform offers and returns itself from the matching `as_*` accessor;
/// [`InferenceConnector::capabilities`] is derived from those accessors, and
/// the calls on `dyn InferenceConnector` (`connector.infer(…)`,
/// `connector.models()`, …) answer [`ErrorKind::Unsupported`] for a family
/// the connector does not have. Nothing is declared by hand.
#[async_trait]
pub trait InferenceConnector: Send + Sync + fmt::Debug {
    /// Vendor, protocol and endpoint.
    fn info(&self) -> &ConnectorInfo;

    /// Whether the server is live and ready.
    async fn health(&self) -> Result<Health>;

    /// Tensor inference (`infer`), when the connector has it.
    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        None
    }

    /// Opaque payloads (`invoke`), when the connector has them.
    fn as_raw_invocation(&self) -> Option<&dyn RawInvocation> {
        None
    }

    /// Model listing (`models`), when the connector has it.
    fn as_model_listing(&self) -> Option<&dyn ModelListing> {
        None
    }

    /// Model metadata (`model_metadata`), when the connector has it.
    fn as_model_description(&self) -> Option<&dyn ModelDescription> {
        None
    }

    /// Per-model readiness (`model_ready`), when the connector has it.
    fn as_model_readiness(&self) -> Option<&dyn ModelReadiness> {
        None
    }

    /// Streamed inference (`infer_stream`), when the connector has it.
    fn as_streaming_inference(&self) -> Option<&dyn StreamingInference> {
        None
    }

    /// Streamed invocation (`invoke_stream`), when the connector has it.
    fn as_streaming_invocation(&self) -> Option<&dyn StreamingInvocation> {
        None
    }

    /// Embeddings (`embed`), when the connector has them.
    fn as_embedding(&self) -> Option<&dyn Embedding> {
        None
    }

    /// Reranking (`rerank`), when the connector has it.
    fn as_reranking(&self) -> Option<&dyn Reranking> {
        None
    }

    /// Text generation (`generate`), when the connector has it.
    fn as_generation(&self) -> Option<&dyn Generation> {
        None
    }

    /// Streamed text generation (`generate_stream`), when the connector has it.
    fn as_streaming_generation(&self) -> Option<&dyn StreamingGeneration> {
        None
    }
}

/// The [`ErrorKind::Unsupported`] error a connector returns for a capability it lacks.
pub fn unsupported(info: &ConnectorInfo, what: &str) -> Error {
    info.tag(Error::new(
        ErrorKind::Unsupported,
        format!(
            "{} ({}) does not support {what}",
            info.vendor, info.protocol
        ),
    ))
}

/// Builds connectors of one vendor from [`ConnectTarget`]s.
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

    /// A connector for the target's endpoint, configuration and credentials.
    ///
    /// Configuration is read and validated here: a bad key fails now with
    /// [`ErrorKind::Config`], not at the first request.
    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>>;

    /// Checks the target's configuration without building anything (no
    /// file is read, nothing is sent): the same key checks `connect` starts
    /// with (unknown keys, a blueprint's templates). A registry runs it when
    /// a record is registered. The default accepts every target.
    fn check(&self, target: &ConnectTarget) -> Result<()> {
        let _ = target;
        Ok(())
    }
}

/// Maps products and resources to connector factories.
///
/// Dispatch: first a factory whose [`ConnectorFactory::products`] lists the
/// record's product; otherwise one whose [`ConnectorFactory::resources`]
/// lists the service's resource; otherwise an [`ErrorKind::Unsupported`]
/// error naming the products and resources known. Names compare
/// case-insensitively. Later registrations win over earlier ones for the
/// same name.
///
/// A host resolves a selector, connects, and calls the model. The factory
/// below is a stand-in that echoes its inputs (real ones come from connector
/// crates such as `inferlink-oip`):
///
/// ```
/// use std::sync::Arc;
/// use inferlink_core::{
///     async_trait, ConnectTarget, ConnectorFactory, ConnectorInfo, Connectors, Health,
///     InferRequest, InferResponse, InferenceConnector, InferenceConnectorExt, ModelRef, Result,
///     Tensor, TensorInference,
/// };
///
/// /// Echoes every input back as an output: an example, not a real server.
/// #[derive(Debug)]
/// struct Echo(ConnectorInfo);
///
/// #[async_trait]
/// impl InferenceConnector for Echo {
///     fn info(&self) -> &ConnectorInfo {
///         &self.0
///     }
///     async fn health(&self) -> Result<Health> {
///         Ok(Health::SERVING)
///     }
///     fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
///         Some(self)
///     }
/// }
///
/// #[async_trait]
/// impl TensorInference for Echo {
///     async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
///         Ok(InferResponse {
///             model_name: model.name.clone(),
///             outputs: request.inputs,
///             ..InferResponse::default()
///         })
///     }
/// }
///
/// #[derive(Debug)]
/// struct EchoFactory;
///
/// #[async_trait]
/// impl ConnectorFactory for EchoFactory {
///     fn vendor(&self) -> &str {
///         "echo"
///     }
///     fn products(&self) -> &[&str] {
///         &["echo-server"]
///     }
///     fn resources(&self) -> &[&str] {
///         &["oip"]
///     }
///     async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
///         let info = ConnectorInfo::new("echo", "in-process", &target.url);
///         Ok(Arc::new(Echo(info)))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // A registry resolution is a target too (`inferlink::Resolution`); here one built by hand.
/// let target = ConnectTarget::new("Echo-Server", "http://127.0.0.1:8000").with_resource("oip");
/// let connectors = Connectors::new().with(EchoFactory);
/// let connector = connectors.connect(&target).await?;
/// assert_eq!(connector.info().endpoint, "http://127.0.0.1:8000");
/// // Capabilities follow from the families implemented: tensors only.
/// assert!(connector.capabilities().infer && !connector.capabilities().invoke);
///
/// let output = connector
///     .infer_one(&ModelRef::new("doubler"), Tensor::from_vec("x", vec![1.0f32, 2.0]))
///     .await?;
/// assert_eq!(output.to_vec::<f32>()?, vec![1.0, 2.0]);
///
/// // No factory for a product or resource: the error names what is known.
/// let e = Connectors::new().connect(&target).await.unwrap_err();
/// assert_eq!(e.kind(), inferlink_core::ErrorKind::Unsupported);
/// assert!(e.message().contains("known products: none"));
/// # Ok::<(), inferlink_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default, Clone)]
pub struct Connectors {
    by_product: BTreeMap<String, Arc<dyn ConnectorFactory>>,
    by_resource: BTreeMap<String, Arc<dyn ConnectorFactory>>,
    /// The host's settings: configuration entries under every record's.
    host: BTreeMap<String, ConfigValue>,
    /// The host's transport settings no record can set.
    #[cfg(feature = "http")]
    host_transport: Option<Arc<crate::transport::HostTransportSettings>>,
    /// Layers applied to every connector built, in order.
    layers: Vec<Arc<dyn ConnectorLayer>>,
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

    /// Sets a host setting: a configuration entry every target gets unless
    /// its record sets the same key (the layers are the connector's own
    /// defaults < the host's settings < the record's configuration). Same
    /// keys and checks as in records, e.g. `("timeout_request_ms", "5000")`.
    pub fn with_setting(mut self, key: impl Into<String>, value: ConfigValue) -> Self {
        self.host.insert(key.into(), value);
        self
    }

    /// Sets the host's transport settings that no record can set (an
    /// endpoint policy, directories `*_file` keys may read): every target
    /// carries them to its connector's transport
    /// ([`TransportConfig::apply_target`](crate::transport::TransportConfig::apply_target)).
    #[cfg(feature = "http")]
    pub fn with_host_transport(mut self, host: crate::transport::HostTransportSettings) -> Self {
        self.host_transport = (!host.is_empty()).then(|| Arc::new(host));
        self
    }

    /// Adds a layer applied to every connector this set builds, after the
    /// layers added before it (the error-context wrapper stays outermost).
    pub fn with_layer(mut self, layer: impl ConnectorLayer + 'static) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// The host's settings ([`Connectors::with_setting`]).
    pub fn settings(&self) -> &BTreeMap<String, ConfigValue> {
        &self.host
    }

    /// The target a factory receives: `target` over the host's settings.
    pub fn layered(&self, target: &ConnectTarget) -> ConnectTarget {
        let mut layered = target.clone();
        #[cfg(feature = "http")]
        if layered.host_transport.is_none() {
            layered.host_transport.clone_from(&self.host_transport);
        }
        for (key, value) in &self.host {
            layered
                .configuration
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        layered
    }

    /// Products with a registered factory, sorted.
    pub fn products(&self) -> Vec<&str> {
        self.by_product.keys().map(String::as_str).collect()
    }

    /// Resources with a registered factory, sorted.
    pub fn resources(&self) -> Vec<&str> {
        self.by_resource.keys().map(String::as_str).collect()
    }

    /// The factory that serves this target, if any.
    pub fn factory_for(&self, target: &ConnectTarget) -> Option<&Arc<dyn ConnectorFactory>> {
        let product = target.product.to_ascii_lowercase();
        let resource = target.resource.to_ascii_lowercase();
        self.by_product
            .get(&product)
            .or_else(|| self.by_resource.get(&resource))
    }

    /// A connector for the target (see the type's dispatch rules): a
    /// [`ConnectTarget`], or in `inferlink` a registry `Resolution`.
    ///
    /// The connector returned tags every error it returns with its vendor,
    /// endpoint and (for per-model calls) model, so hosts always see where a
    /// failure came from ([`with_error_context`]). A factory's own error is
    /// returned as is, tagged with the factory's vendor and the target's origin.
    pub async fn connect(
        &self,
        target: &(impl ToConnectTarget + ?Sized),
    ) -> Result<Arc<dyn InferenceConnector>> {
        let target = target.to_connect_target();
        self.connect_target(&target).await
    }

    /// [`Connectors::connect`] for a target already built.
    pub async fn connect_target(
        &self,
        target: &ConnectTarget,
    ) -> Result<Arc<dyn InferenceConnector>> {
        let layered = self.layered(target);
        let target = &layered;
        let tag_origin = |e: Error| {
            if target.origin.is_empty() {
                e
            } else {
                e.with_context("record", target.origin.clone())
            }
        };
        match self.factory_for(target) {
            Some(factory) => match factory.connect(target).await {
                Ok(connector) => {
                    let layered = self
                        .layers
                        .iter()
                        .try_fold(connector, |c, layer| layer.layer(c))
                        .map_err(tag_origin)?;
                    Ok(with_error_context(layered))
                }
                Err(e) => Err(tag_origin(e.with_vendor(factory.vendor()))),
            },
            None => Err(tag_origin(self.no_factory(target))),
        }
    }

    /// Checks a target against the factory that serves it
    /// ([`ConnectorFactory::check`]) without connecting; a target no
    /// factory serves (an S3 store, a tracking server) passes. A refusal is
    /// tagged with the factory's vendor and the target's origin.
    pub fn check_target(&self, target: &ConnectTarget) -> Result<()> {
        let layered = self.layered(target);
        let Some(factory) = self.factory_for(&layered) else {
            return Ok(());
        };
        factory.check(&layered).map_err(|e| {
            let e = e.with_vendor(factory.vendor());
            if layered.origin.is_empty() {
                e
            } else {
                e.with_context("record", layered.origin.clone())
            }
        })
    }

    fn no_factory(&self, target: &ConnectTarget) -> Error {
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
                crate::error::printable(target.product.clone(), 100),
                crate::error::printable(target.service.clone(), 100),
                crate::error::printable(target.resource.clone(), 100),
                list(self.products()),
                list(self.resources()),
            ),
        )
    }
}
