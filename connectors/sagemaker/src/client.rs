//! [`SageMakerClient`]: the SageMaker Runtime operations and the container
//! protocol, and the [`InferenceConnector`] families over them
//! ([`SageMakerConnector`] is the same type).
//!
//! Every request goes through the shared [`HttpTransport`]: timeouts, the
//! one retry loop, TLS, the SageMaker error mapping ([`crate::error`]) and,
//! per attempt, SigV4 signing ([`crate::sigv4::SigV4Signer`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use inferlink_core::connector::{ByteStream, RawStream};
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::transport::{HttpResponse, HttpTransport, Method, RequestSpec, redact_url};
use inferlink_core::{
    ConnectTarget, ConnectorInfo, Error, ErrorKind, Health, InferRequest, InferResponse, ModelRef,
    RawInvocation, RawRequest, RawResponse, Result, StreamingInvocation,
};
use serde::Deserialize;

use crate::codec;
use crate::config::{Api, MAX_PAYLOAD_BYTES, SageMakerConfig, config_error};
use crate::error::{classifier, stream_exception};
use crate::eventstream;
use crate::sigv4::SigV4Signer;

/// The vendor name in [`ConnectorInfo::vendor`] and error context.
pub const VENDOR: &str = "sagemaker";

/// The HTTP headers of the SageMaker Runtime API (lower case, as sent).
pub mod headers {
    /// `InvokeEndpoint`: the body's media type.
    pub const CONTENT_TYPE: &str = "content-type";
    /// `InvokeEndpoint`: the media type wanted back.
    pub const ACCEPT: &str = "accept";
    /// Opaque attributes forwarded to (and back from) the model.
    pub const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
    /// Multi-model endpoints: the model artifact to use.
    pub const TARGET_MODEL: &str = "x-amzn-sagemaker-target-model";
    /// The production variant to send the request to.
    pub const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
    /// Multi-container endpoints: the container to invoke.
    pub const TARGET_CONTAINER_HOSTNAME: &str = "x-amzn-sagemaker-target-container-hostname";
    /// An id recorded with data capture.
    pub const INFERENCE_ID: &str = "x-amzn-sagemaker-inference-id";
    /// A JMESPath expression overriding Clarify's `EnableExplanations`.
    pub const ENABLE_EXPLANATIONS: &str = "x-amzn-sagemaker-enable-explanations";
    /// The inference component to invoke.
    pub const INFERENCE_COMPONENT: &str = "x-amzn-sagemaker-inference-component";
    /// A stateful session: `NEW_SESSION` or an existing session's id.
    pub const SESSION_ID: &str = "x-amzn-sagemaker-session-id";
    /// Response: the production variant that served the request.
    pub const INVOKED_PRODUCTION_VARIANT: &str = "x-amzn-invoked-production-variant";
    /// Response: the session a `NEW_SESSION` request opened (`<id>; Expires=…`).
    pub const NEW_SESSION_ID: &str = "x-amzn-sagemaker-new-session-id";
    /// Response: the session the request closed.
    pub const CLOSED_SESSION_ID: &str = "x-amzn-sagemaker-closed-session-id";
    /// Async and stream requests: the body's media type.
    pub const SAGEMAKER_CONTENT_TYPE: &str = "x-amzn-sagemaker-content-type";
    /// Async and stream requests: the media type wanted back.
    pub const SAGEMAKER_ACCEPT: &str = "x-amzn-sagemaker-accept";
    /// `InvokeEndpointAsync`: where the input is (`s3://` or `https://`).
    pub const INPUT_LOCATION: &str = "x-amzn-sagemaker-inputlocation";
    /// `InvokeEndpointAsync`: seconds the request may wait in the queue.
    pub const REQUEST_TTL_SECONDS: &str = "x-amzn-sagemaker-requestttlseconds";
    /// `InvokeEndpointAsync`: seconds the model may take.
    pub const INVOCATION_TIMEOUT_SECONDS: &str = "x-amzn-sagemaker-invocationtimeoutseconds";
    /// `InvokeEndpointAsync` response: where the output will be.
    pub const OUTPUT_LOCATION: &str = "x-amzn-sagemaker-outputlocation";
    /// `InvokeEndpointAsync` response: where a failure will be reported.
    pub const FAILURE_LOCATION: &str = "x-amzn-sagemaker-failurelocation";
}

/// The media type of a response stream.
pub const EVENT_STREAM: &str = eventstream::CONTENT_TYPE;

/// An `InvokeEndpoint` request: the body as it is, and every header of the API.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct InvokeEndpointRequest {
    /// The payload, sent as it is (at most 6 MiB).
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Accept`.
    pub accept: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`.
    pub custom_attributes: Option<String>,
    /// `X-Amzn-SageMaker-Target-Model`.
    pub target_model: Option<String>,
    /// `X-Amzn-SageMaker-Target-Variant`.
    pub target_variant: Option<String>,
    /// `X-Amzn-SageMaker-Target-Container-Hostname`.
    pub target_container_hostname: Option<String>,
    /// `X-Amzn-SageMaker-Inference-Id`.
    pub inference_id: Option<String>,
    /// `X-Amzn-SageMaker-Enable-Explanations`.
    pub enable_explanations: Option<String>,
    /// `X-Amzn-SageMaker-Inference-Component`.
    pub inference_component: Option<String>,
    /// `X-Amzn-SageMaker-Session-Id`.
    pub session_id: Option<String>,
    /// Other headers, sent as they are (SageMaker drops headers outside its API).
    pub extra_headers: Vec<(String, String)>,
    /// True when the request is safe to send twice (see [`InferRequest::idempotent`]).
    pub idempotent: bool,
}

impl InvokeEndpointRequest {
    /// A request with a body and its media type.
    pub fn new(body: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        InvokeEndpointRequest {
            body: body.into(),
            content_type: Some(content_type.into()),
            ..Default::default()
        }
    }

    inferlink_core::option_setters! {
        /// Sets `Accept`.
        with_accept(accept: into String),
        /// Sets the custom attributes.
        with_custom_attributes(custom_attributes: into String),
        /// Sets the target model (multi-model endpoints).
        with_target_model(target_model: into String),
        /// Sets the target production variant.
        with_target_variant(target_variant: into String),
        /// Sets the target container hostname.
        with_target_container_hostname(target_container_hostname: into String),
        /// Sets the inference id.
        with_inference_id(inference_id: into String),
        /// Sets the explanations expression.
        with_enable_explanations(enable_explanations: into String),
        /// Sets the inference component.
        with_inference_component(inference_component: into String),
        /// Sets the session id (`NEW_SESSION` opens one).
        with_session_id(session_id: into String),
    }

    /// Marks the request safe to send twice.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The request a [`RawRequest`] stands for: body, content type, accept;
    /// its headers named as the API's headers (any case) fill the matching
    /// fields, others go to [`InvokeEndpointRequest::extra_headers`].
    pub fn from_raw(raw: RawRequest) -> Self {
        let mut request = InvokeEndpointRequest {
            body: raw.body,
            content_type: Some(raw.content_type).filter(|c| !c.is_empty()),
            accept: raw.accept,
            idempotent: raw.idempotent,
            ..Default::default()
        };
        for (name, value) in raw.headers {
            // The content type comes from `raw.content_type`, never from a header.
            let field = INVOKE_HEADERS
                .iter()
                .find(|f| f.name != headers::CONTENT_TYPE && name.eq_ignore_ascii_case(f.name));
            match field {
                Some(field) => *(field.get_mut)(&mut request) = Some(value),
                None => request.extra_headers.push((name, value)),
            }
        }
        request
    }
}

/// The answer to an [`InvokeEndpointRequest`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct InvokeEndpointResponse {
    /// The model's output.
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `x-Amzn-Invoked-Production-Variant`.
    pub invoked_production_variant: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes` (what the model set; may be empty).
    pub custom_attributes: Option<String>,
    /// `X-Amzn-SageMaker-New-Session-Id` (`<id>; Expires=…`).
    pub new_session_id: Option<String>,
    /// `X-Amzn-SageMaker-Closed-Session-Id`.
    pub closed_session_id: Option<String>,
}

impl InvokeEndpointResponse {
    /// The protocol headers present, as `(lower-case name, value)` pairs
    /// (what [`RawResponse::headers`] carries).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        header_pairs(RESPONSE_HEADERS, self)
    }
}

/// An `InvokeEndpointAsync` request: the input is already in S3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvokeEndpointAsyncRequest {
    /// `X-Amzn-SageMaker-InputLocation`: an `s3://` or `https://` URI.
    pub input_location: String,
    /// `X-Amzn-SageMaker-Content-Type`.
    pub content_type: Option<String>,
    /// `X-Amzn-SageMaker-Accept`.
    pub accept: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`.
    pub custom_attributes: Option<String>,
    /// `X-Amzn-SageMaker-Inference-Id`.
    pub inference_id: Option<String>,
    /// `X-Amzn-SageMaker-RequestTTLSeconds` (60–21600; AWS's default 21600).
    pub request_ttl_seconds: Option<u32>,
    /// `X-Amzn-SageMaker-InvocationTimeoutSeconds` (1–3600; AWS's default 900).
    pub invocation_timeout_seconds: Option<u32>,
}

impl InvokeEndpointAsyncRequest {
    /// A request for the input at `input_location`.
    pub fn new(input_location: impl Into<String>) -> Self {
        InvokeEndpointAsyncRequest {
            input_location: input_location.into(),
            ..Default::default()
        }
    }

    inferlink_core::option_setters! {
        /// Sets the input's media type.
        with_content_type(content_type: into String),
        /// Sets the media type wanted back.
        with_accept(accept: into String),
        /// Sets the custom attributes.
        with_custom_attributes(custom_attributes: into String),
        /// Sets the inference id.
        with_inference_id(inference_id: into String),
        /// Sets the queue time limit.
        with_request_ttl_seconds(request_ttl_seconds: u32),
        /// Sets the model time limit.
        with_invocation_timeout_seconds(invocation_timeout_seconds: u32),
    }
}

/// The answer to an [`InvokeEndpointAsyncRequest`] (HTTP 202): where to poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvokeEndpointAsyncResponse {
    /// The id SageMaker gave the request.
    pub inference_id: Option<String>,
    /// Where the output will be written.
    pub output_location: Option<String>,
    /// Where a failure will be reported.
    pub failure_location: Option<String>,
}

/// An `InvokeEndpointWithResponseStream` request.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct InvokeStreamRequest {
    /// The payload (at most 6 MiB).
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `X-Amzn-SageMaker-Accept` (streams use this, not `Accept`).
    pub accept: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`.
    pub custom_attributes: Option<String>,
    /// `X-Amzn-SageMaker-Target-Variant`.
    pub target_variant: Option<String>,
    /// `X-Amzn-SageMaker-Target-Container-Hostname`.
    pub target_container_hostname: Option<String>,
    /// `X-Amzn-SageMaker-Inference-Id`.
    pub inference_id: Option<String>,
    /// `X-Amzn-SageMaker-Inference-Component`.
    pub inference_component: Option<String>,
    /// `X-Amzn-SageMaker-Session-Id` (an existing session only).
    pub session_id: Option<String>,
    /// True when the request is safe to send twice.
    pub idempotent: bool,
}

impl InvokeStreamRequest {
    /// A request with a body and its media type.
    pub fn new(body: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        InvokeStreamRequest {
            body: body.into(),
            content_type: Some(content_type.into()),
            ..Default::default()
        }
    }

    /// The stream request a [`RawRequest`] stands for (as
    /// [`InvokeEndpointRequest::from_raw`]; `accept` becomes
    /// `X-Amzn-SageMaker-Accept`). Headers the streaming API lacks (target
    /// model, explanations) are refused.
    pub fn from_raw(raw: RawRequest) -> Result<Self> {
        let r = InvokeEndpointRequest::from_raw(raw);
        if r.target_model.is_some() || r.enable_explanations.is_some() {
            return Err(Error::invalid(
                "InvokeEndpointWithResponseStream has no target-model or enable-explanations header",
            ));
        }
        Ok(InvokeStreamRequest {
            body: r.body,
            content_type: r.content_type,
            accept: r.accept,
            custom_attributes: r.custom_attributes,
            target_variant: r.target_variant,
            target_container_hostname: r.target_container_hostname,
            inference_id: r.inference_id,
            inference_component: r.inference_component,
            session_id: r.session_id,
            idempotent: r.idempotent,
        })
    }
}

/// The answer to an [`InvokeStreamRequest`]: the head at once, the payload
/// parts as they arrive.
#[non_exhaustive]
pub struct ResponseStream {
    /// `X-Amzn-SageMaker-Content-Type`: the model output's media type.
    pub content_type: Option<String>,
    /// `x-Amzn-Invoked-Production-Variant`.
    pub invoked_production_variant: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`.
    pub custom_attributes: Option<String>,
    /// One item per `PayloadPart` (arbitrary slices of the model's output);
    /// a `ModelStreamError` or `InternalStreamFailure`, a CRC mismatch or a
    /// truncated frame is an `Err` item that ends the stream.
    pub body: ByteStream,
}

impl ResponseStream {
    /// The protocol headers present, as `(lower-case name, value)` pairs
    /// (what [`RawStream::headers`] carries).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        header_pairs(STREAM_RESPONSE_HEADERS, self)
    }
}

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("content_type", &self.content_type)
            .field(
                "invoked_production_variant",
                &self.invoked_production_variant,
            )
            .field("custom_attributes", &self.custom_attributes)
            .finish_non_exhaustive()
    }
}

/// A SageMaker Runtime (or container protocol) client.
///
/// Cheap to clone (one connection pool). Nothing connects until the first call.
#[derive(Debug, Clone)]
pub struct SageMakerClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ConnectorInfo,
    http: HttpTransport,
    config: SageMakerConfig,
    signer: Option<SigV4Signer>,
}

impl SageMakerClient {
    /// A client for `config`: signing (when on) with its region and its
    /// credentials or the process environment's.
    ///
    /// Errors ([`ErrorKind::Config`], naming the key): no region or no
    /// credentials while signing; a bad endpoint URL or transport key;
    /// [`ErrorKind::PermissionDenied`] when the endpoint policy refuses the URL.
    pub fn new(config: SageMakerConfig) -> Result<Self> {
        let signer = if config.signs() {
            let region = config.effective_region().ok_or_else(|| {
                config_error(
                    inferlink_aws::keys::REGION,
                    "is needed to sign requests: set `region` (or AWS_REGION), or use a \
                     runtime.sagemaker.<region>.amazonaws.com endpoint URL",
                )
            })?;
            Some(config.aws.signer(crate::sigv4::SIGNING_NAME, &region)?)
        } else {
            None
        };
        SageMakerClient::with_signer(config, signer)
    }

    /// A client for the target's endpoint and configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        SageMakerClient::new(SageMakerConfig::from_target(target)?)
    }

    /// A client that signs with `signer` (or not at all), whatever the
    /// configuration says (e.g. a signer with a fixed time, for tests).
    pub fn with_signer(config: SageMakerConfig, signer: Option<SigV4Signer>) -> Result<Self> {
        let mut builder = HttpTransport::builder(config.url.clone())
            .vendor(VENDOR)
            .config(config.transport.clone())
            .classifier(classifier());
        if let Some(s) = &signer {
            builder = builder.signer(Arc::new(s.clone()));
        }
        let http = builder.build()?;
        let info = ConnectorInfo::new(VENDOR, config.api.info_name(), redact_url(http.base_url()));
        Ok(SageMakerClient {
            inner: Arc::new(Inner {
                info,
                http,
                config,
                signer,
            }),
        })
    }

    /// Vendor, protocol and endpoint.
    pub fn info(&self) -> &ConnectorInfo {
        &self.inner.info
    }

    /// The configuration in effect.
    pub fn config(&self) -> &SageMakerConfig {
        &self.inner.config
    }

    /// The signer, when requests are signed.
    pub fn signer(&self) -> Option<&SigV4Signer> {
        self.inner.signer.as_ref()
    }

    fn tag(&self, error: Error, endpoint: &str) -> Error {
        self.inner.info.tag(error).with_model(endpoint)
    }

    fn unsupported(&self, what: &str) -> Error {
        inferlink_core::connector::unsupported(&self.inner.info, what)
    }

    /// `InvokeEndpoint`: sends the body as it is to endpoint `endpoint_name`
    /// (runtime API), or to `/invocations` with the name as target model
    /// (container API: header `X-Amzn-SageMaker-Target-Model` and query
    /// parameter `model_name`; an empty name sends neither).
    ///
    /// Checked before sending ([`ErrorKind::InvalidInput`]): the endpoint
    /// name, every header's length and characters, and the 6 MiB payload
    /// limit (runtime API).
    pub async fn invoke_endpoint(
        &self,
        endpoint_name: &str,
        request: InvokeEndpointRequest,
    ) -> Result<InvokeEndpointResponse> {
        let spec = self
            .invoke_spec(endpoint_name, &request)
            .map_err(|e| self.tag(e, endpoint_name))?;
        let resp = self.inner.http.send(spec).await?;
        Ok(invoke_response(resp))
    }

    fn invoke_spec(&self, endpoint: &str, r: &InvokeEndpointRequest) -> Result<RequestSpec> {
        let container = self.inner.config.api == Api::Container;
        let with_target;
        let (r, mut spec) = if container {
            let r = if r.target_model.is_none() && !endpoint.is_empty() {
                with_target = InvokeEndpointRequest {
                    target_model: Some(endpoint.to_owned()),
                    ..r.clone()
                };
                &with_target
            } else {
                r
            };
            let spec = RequestSpec::new(Method::POST, "invocations");
            // multi-model-server and TorchServe pick the model by `model_name` (they ignore
            // the SageMaker header); SageMaker's own front end uses the header.
            match &r.target_model {
                Some(m) => (r, spec.query("model_name", m)),
                None => (r, spec),
            }
        } else {
            check_endpoint_name(endpoint)?;
            check_payload(r.body.len())?;
            let spec = RequestSpec::segments(Method::POST, &["endpoints", endpoint, "invocations"]);
            (r, spec)
        };
        spec = spec.model(endpoint).body(r.body.clone());
        if r.idempotent {
            spec = spec.idempotent();
        }
        let mut spec = put_headers(spec, INVOKE_HEADERS, r)?;
        for (name, value) in &r.extra_headers {
            spec = spec.header(name, value);
        }
        Ok(spec)
    }

    /// `InvokeEndpointAsync` (runtime API): queues a request whose input is
    /// in S3 and returns where its output will be (HTTP 202).
    pub async fn invoke_endpoint_async(
        &self,
        endpoint_name: &str,
        request: InvokeEndpointAsyncRequest,
    ) -> Result<InvokeEndpointAsyncResponse> {
        if self.inner.config.api != Api::Runtime {
            return Err(self.unsupported("InvokeEndpointAsync (a container has no async API)"));
        }
        let spec = async_spec(endpoint_name, &request).map_err(|e| self.tag(e, endpoint_name))?;
        let resp = self.inner.http.send(spec).await?;
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "InferenceId")]
            inference_id: Option<String>,
        }
        let body: Body = if resp.body().iter().all(u8::is_ascii_whitespace) {
            Body { inference_id: None }
        } else {
            resp.json()?
        };
        Ok(InvokeEndpointAsyncResponse {
            inference_id: body.inference_id,
            output_location: header(&resp, headers::OUTPUT_LOCATION),
            failure_location: header(&resp, headers::FAILURE_LOCATION),
        })
    }

    /// `InvokeEndpointWithResponseStream` (runtime API): returns once the
    /// response head arrives; the body yields each `PayloadPart`'s bytes
    /// after checking the event-stream framing (both CRCs, every header).
    pub async fn invoke_endpoint_with_response_stream(
        &self,
        endpoint_name: &str,
        request: InvokeStreamRequest,
    ) -> Result<ResponseStream> {
        if self.inner.config.api != Api::Runtime {
            return Err(self.unsupported("InvokeEndpointWithResponseStream (use the runtime API)"));
        }
        let spec = stream_spec(endpoint_name, &request).map_err(|e| self.tag(e, endpoint_name))?;
        let resp = self.inner.http.send_streaming(spec).await?;
        if let Some(ct) = resp.content_type()
            && !ct.to_ascii_lowercase().starts_with(EVENT_STREAM)
        {
            return Err(resp.decorate(Error::new(
                ErrorKind::Protocol,
                format!("the response stream has content type {ct:?}, not {EVENT_STREAM}"),
            )));
        }
        let mut stream = ResponseStream {
            content_type: resp
                .header(headers::SAGEMAKER_CONTENT_TYPE)
                .map(str::to_owned),
            invoked_production_variant: None,
            custom_attributes: None,
            body: Box::pin(futures_util::stream::empty()),
        };
        read_headers(STREAM_RESPONSE_HEADERS, &mut stream, |name| {
            resp.header(name)
        });
        let info = self.inner.info.clone();
        let model = endpoint_name.to_owned();
        let tag = move |e: Error| info.tag(e).with_model(&model);
        stream.body = payload_parts(resp.into_body(), tag);
        Ok(stream)
    }

    /// Container API: `GET /ping`; 200 means live and ready, any other
    /// status live but not ready. Runtime API: [`ErrorKind::Unsupported`]
    /// (the SageMaker Runtime has no health call; the control plane's
    /// `DescribeEndpoint` says whether an endpoint is `InService`).
    pub async fn health(&self) -> Result<Health> {
        if self.inner.config.api == Api::Runtime {
            return Err(self.unsupported(
                "health (the SageMaker Runtime API has no health call; DescribeEndpoint in the \
                 control plane reports an endpoint's status)",
            ));
        }
        let resp = self
            .inner
            .http
            .send(RequestSpec::get("ping").any_status())
            .await?;
        Ok(Health {
            live: true,
            ready: resp.status().is_success(),
        })
    }

    /// Tensor inference through a JSON payload (see [`crate::codec`]).
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let body = codec::encode_infer_request(&request, self.inner.config.infer_json_key)
            .map_err(|e| self.tag(e, &model.name))?;
        let mut invoke = InvokeEndpointRequest::new(body, codec::JSON).with_accept(codec::JSON);
        invoke.idempotent = request.idempotent;
        let answer = self.invoke_endpoint(&model.name, invoke).await?;
        let hint = request.inputs.first().map(inferlink_core::Tensor::datatype);
        let mut response =
            codec::decode_infer_response(&answer.body, hint, self.inner.config.output_datatype)
                .map_err(|e| self.tag(e, &model.name))?;
        if !request.outputs.is_empty() {
            response
                .outputs
                .retain(|t| request.outputs.iter().any(|o| o.name == t.name()));
        }
        response.model_name = model.name.clone();
        response.id = request.id;
        if let Some(variant) = answer.invoked_production_variant {
            response
                .parameters
                .insert("invoked_production_variant".to_owned(), variant.into());
        }
        Ok(response)
    }
}

/// Header checks of the API: length and allowed characters.
#[derive(Clone, Copy)]
struct Limit {
    max: usize,
    name_chars: bool,
}

impl Limit {
    /// Visible ASCII (and spaces), 1..=max characters.
    const fn text(max: usize) -> Self {
        Limit {
            max,
            name_chars: false,
        }
    }

    /// `[a-zA-Z0-9-]`, 1..=max characters.
    const fn name(max: usize) -> Self {
        Limit {
            max,
            name_chars: true,
        }
    }

    fn check(self, header: &str, value: &str) -> Result<()> {
        let bad = |why: String| {
            Error::new(ErrorKind::InvalidInput, format!("header `{header}`: {why}"))
                .with_path(header.to_owned())
        };
        if value.is_empty() || value.len() > self.max {
            return Err(bad(format!(
                "must be 1 to {} characters, is {}",
                self.max,
                value.len()
            )));
        }
        if self.name_chars {
            if !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(bad("may hold only letters, digits and `-`".to_owned()));
            }
        } else if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(bad("may hold only printable ASCII".to_owned()));
        }
        Ok(())
    }
}

/// One protocol header and the optional field of `T` that holds its value:
/// the one place a header is tied to a field, for building requests and
/// for reading (and listing) responses.
struct HeaderField<T> {
    name: &'static str,
    get: fn(&T) -> &Option<String>,
    get_mut: fn(&mut T) -> &mut Option<String>,
}

/// `HeaderField { name: headers::NAME, .. }` over the field `field`.
macro_rules! header_field {
    ($name:ident => $field:ident) => {
        HeaderField {
            name: headers::$name,
            get: |r| &r.$field,
            get_mut: |r| &mut r.$field,
        }
    };
}

/// `InvokeEndpoint`'s optional headers; also what
/// [`InvokeEndpointRequest::from_raw`] recognises (all but the content type).
const INVOKE_HEADERS: &[HeaderField<InvokeEndpointRequest>] = &[
    header_field!(CONTENT_TYPE => content_type),
    header_field!(ACCEPT => accept),
    header_field!(CUSTOM_ATTRIBUTES => custom_attributes),
    header_field!(TARGET_MODEL => target_model),
    header_field!(TARGET_VARIANT => target_variant),
    header_field!(TARGET_CONTAINER_HOSTNAME => target_container_hostname),
    header_field!(INFERENCE_ID => inference_id),
    header_field!(ENABLE_EXPLANATIONS => enable_explanations),
    header_field!(INFERENCE_COMPONENT => inference_component),
    header_field!(SESSION_ID => session_id),
];

/// `InvokeEndpointAsync`'s optional text headers (the input location and the
/// two time limits are checked on their own).
const ASYNC_HEADERS: &[HeaderField<InvokeEndpointAsyncRequest>] = &[
    header_field!(SAGEMAKER_CONTENT_TYPE => content_type),
    header_field!(SAGEMAKER_ACCEPT => accept),
    header_field!(CUSTOM_ATTRIBUTES => custom_attributes),
    header_field!(INFERENCE_ID => inference_id),
];

/// `InvokeEndpointWithResponseStream`'s optional headers.
const STREAM_HEADERS: &[HeaderField<InvokeStreamRequest>] = &[
    header_field!(CONTENT_TYPE => content_type),
    header_field!(SAGEMAKER_ACCEPT => accept),
    header_field!(CUSTOM_ATTRIBUTES => custom_attributes),
    header_field!(TARGET_VARIANT => target_variant),
    header_field!(TARGET_CONTAINER_HOSTNAME => target_container_hostname),
    header_field!(INFERENCE_ID => inference_id),
    header_field!(INFERENCE_COMPONENT => inference_component),
    header_field!(SESSION_ID => session_id),
];

/// A request header's limit as the API reference gives it; a header has the
/// same limit in every operation that takes it.
fn request_header_limit(name: &str) -> Limit {
    match name {
        headers::TARGET_VARIANT
        | headers::TARGET_CONTAINER_HOSTNAME
        | headers::INFERENCE_COMPONENT => Limit::name(63),
        headers::INFERENCE_ID | headers::ENABLE_EXPLANATIONS => Limit::text(64),
        headers::SESSION_ID => Limit::text(256),
        headers::REQUEST_TTL_SECONDS | headers::INVOCATION_TIMEOUT_SECONDS => Limit::text(8),
        // The content types, accept, custom attributes, target model and
        // input location.
        _ => Limit::text(1024),
    }
}

/// The protocol headers of an `InvokeEndpoint` answer.
const RESPONSE_HEADERS: &[HeaderField<InvokeEndpointResponse>] = &[
    header_field!(INVOKED_PRODUCTION_VARIANT => invoked_production_variant),
    header_field!(CUSTOM_ATTRIBUTES => custom_attributes),
    header_field!(NEW_SESSION_ID => new_session_id),
    header_field!(CLOSED_SESSION_ID => closed_session_id),
];

/// The protocol headers of a response stream's head (beside its content type).
const STREAM_RESPONSE_HEADERS: &[HeaderField<ResponseStream>] = &[
    header_field!(INVOKED_PRODUCTION_VARIANT => invoked_production_variant),
    header_field!(CUSTOM_ATTRIBUTES => custom_attributes),
];

/// Checks one header against its limit and adds it.
fn put_header(spec: RequestSpec, name: &str, value: &str) -> Result<RequestSpec> {
    request_header_limit(name).check(name, value)?;
    Ok(spec.header(name, value))
}

/// Checks and adds every header of `table` that `request` sets.
fn put_headers<T>(
    mut spec: RequestSpec,
    table: &[HeaderField<T>],
    request: &T,
) -> Result<RequestSpec> {
    for field in table {
        if let Some(value) = (field.get)(request) {
            spec = put_header(spec, field.name, value)?;
        }
    }
    Ok(spec)
}

/// Fills the fields of `table` from the headers `header` finds.
fn read_headers<'a, T>(
    table: &[HeaderField<T>],
    into: &mut T,
    header: impl Fn(&str) -> Option<&'a str>,
) {
    for field in table {
        *(field.get_mut)(into) = header(field.name).map(str::to_owned);
    }
}

/// The headers of `table` that `from` holds, as `(name, value)` pairs.
fn header_pairs<T>(table: &[HeaderField<T>], from: &T) -> Vec<(String, String)> {
    table
        .iter()
        .filter_map(|f| {
            (f.get)(from)
                .as_ref()
                .map(|v| (f.name.to_owned(), v.clone()))
        })
        .collect()
}

/// Checks an endpoint name: 1–63 characters, `^[a-zA-Z0-9](-*[a-zA-Z0-9])*$`.
pub fn check_endpoint_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "\"{}\" is not a SageMaker endpoint name (1 to 63 letters, digits and inner `-`)",
                name.chars().take(80).collect::<String>().escape_debug()
            ),
        )
        .with_path("endpoint_name"))
    }
}

/// Checks the 6 MiB limit of synchronous payloads.
pub fn check_payload(len: usize) -> Result<()> {
    if len > MAX_PAYLOAD_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the payload is {len} bytes; SageMaker's synchronous APIs take at most \
                 {MAX_PAYLOAD_BYTES} bytes (6 MiB): put larger inputs in S3 and use \
                 InvokeEndpointAsync"
            ),
        )
        .with_context("payload_bytes", len.to_string()));
    }
    Ok(())
}

fn async_spec(endpoint: &str, r: &InvokeEndpointAsyncRequest) -> Result<RequestSpec> {
    check_endpoint_name(endpoint)?;
    let loc = r.input_location.trim();
    let lower = loc.to_ascii_lowercase();
    if !(lower.starts_with("s3://") || lower.starts_with("https://")) {
        return Err(Error::invalid_at(
            "input_location",
            "must be an s3:// or https:// URI",
        ));
    }
    let spec = RequestSpec::segments(Method::POST, &["endpoints", endpoint, "async-invocations"])
        .model(endpoint);
    let spec = put_header(spec, headers::INPUT_LOCATION, loc)?;
    let mut spec = put_headers(spec, ASYNC_HEADERS, r)?;
    let seconds = [
        (
            headers::REQUEST_TTL_SECONDS,
            "request_ttl_seconds",
            r.request_ttl_seconds,
            60..=21_600,
        ),
        (
            headers::INVOCATION_TIMEOUT_SECONDS,
            "invocation_timeout_seconds",
            r.invocation_timeout_seconds,
            1..=3_600,
        ),
    ];
    for (header, field, value, range) in seconds {
        let Some(n) = value else { continue };
        if !range.contains(&n) {
            return Err(Error::invalid_at(
                field,
                format!("{n} is outside {}..={} seconds", range.start(), range.end()),
            ));
        }
        spec = put_header(spec, header, &n.to_string())?;
    }
    Ok(spec)
}

fn stream_spec(endpoint: &str, r: &InvokeStreamRequest) -> Result<RequestSpec> {
    check_endpoint_name(endpoint)?;
    check_payload(r.body.len())?;
    let mut spec = RequestSpec::segments(
        Method::POST,
        &["endpoints", endpoint, "invocations-response-stream"],
    )
    .model(endpoint)
    .body(r.body.clone());
    if r.idempotent {
        spec = spec.idempotent();
    }
    put_headers(spec, STREAM_HEADERS, r)
}

fn header(resp: &HttpResponse, name: &str) -> Option<String> {
    resp.header(name).map(str::to_owned)
}

fn invoke_response(resp: HttpResponse) -> InvokeEndpointResponse {
    let mut answer = InvokeEndpointResponse {
        content_type: resp.content_type().map(str::to_owned),
        ..Default::default()
    };
    read_headers(RESPONSE_HEADERS, &mut answer, |name| resp.header(name));
    answer.body = resp.into_body();
    answer
}

/// Decodes an event stream into `PayloadPart` bytes; the first error ends it.
pub fn payload_parts(
    body: ByteStream,
    tag: impl Fn(Error) -> Error + Send + Sync + 'static,
) -> ByteStream {
    let tag = Arc::new(tag);
    let framing_tag = Arc::clone(&tag);
    let messages = eventstream::messages(body, move |e| framing_tag(e));
    let parts = futures_util::stream::unfold(Some((messages, tag)), |state| async move {
        let (mut messages, tag) = state?;
        loop {
            let message = match messages.next().await? {
                Ok(message) => message,
                Err(e) => return Some((Err(e), None)),
            };
            if let Some(e) = stream_exception(&message) {
                return Some((Err(tag(e)), None));
            }
            // Other events (none are defined today) and empty parts are skipped.
            let part = message.string_header(":event-type") == Some("PayloadPart");
            if part && !message.payload.is_empty() {
                return Some((Ok(message.payload), Some((messages, tag))));
            }
        }
    });
    Box::pin(parts)
}

/// The [`InferenceConnector`] of a SageMaker endpoint (or container): the
/// client itself implements the capability families.
///
/// The model name is the SageMaker endpoint name (runtime API) or the
/// target model (container API).
pub type SageMakerConnector = SageMakerClient;

inferlink_core::connector_families! {
    impl SageMakerClient {
        TensorInference(inherent),
        RawInvocation,
        /// The runtime API only (`InvokeEndpointWithResponseStream`); the
        /// container protocol has no streamed call.
        StreamingInvocation if |c| c.config().api == Api::Runtime,
    }
}

#[async_trait]
impl RawInvocation for SageMakerClient {
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let answer = self
            .invoke_endpoint(&model.name, InvokeEndpointRequest::from_raw(request))
            .await?;
        Ok(RawResponse {
            headers: answer.header_pairs(),
            content_type: answer.content_type,
            body: answer.body,
        })
    }
}

#[async_trait]
impl StreamingInvocation for SageMakerClient {
    async fn invoke_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream> {
        if self.config().api != Api::Runtime {
            return Err(self.unsupported(
                "streamed raw invocation (InvokeEndpointWithResponseStream needs the runtime API)",
            ));
        }
        let request =
            InvokeStreamRequest::from_raw(request).map_err(|e| self.tag(e, &model.name))?;
        let stream = self
            .invoke_endpoint_with_response_stream(&model.name, request)
            .await?;
        Ok(RawStream {
            headers: stream.header_pairs(),
            content_type: stream.content_type,
            body: stream.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_follow_the_api_pattern() {
        for good in ["a", "my-endpoint", "A1--b", &"x".repeat(63)] {
            check_endpoint_name(good).unwrap();
        }
        for bad in ["", "-a", "a-", "a_b", "a/b", "a b", &"x".repeat(64)] {
            let e = check_endpoint_name(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn the_payload_limit_is_6_mib() {
        check_payload(MAX_PAYLOAD_BYTES).unwrap();
        let e = check_payload(MAX_PAYLOAD_BYTES + 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("6291457"), "{e}");
        assert!(e.message().contains("InvokeEndpointAsync"), "{e}");
    }

    #[test]
    fn raw_headers_fill_the_api_fields() {
        let raw = RawRequest {
            headers: vec![
                ("X-Amzn-SageMaker-Custom-Attributes".into(), "c=1".into()),
                ("x-amzn-sagemaker-target-variant".into(), "v1".into()),
                ("X-Other".into(), "o".into()),
            ],
            accept: Some("text/csv".into()),
            ..RawRequest::json("{}")
        };
        let r = InvokeEndpointRequest::from_raw(raw);
        assert_eq!(r.custom_attributes.as_deref(), Some("c=1"));
        assert_eq!(r.target_variant.as_deref(), Some("v1"));
        assert_eq!(r.accept.as_deref(), Some("text/csv"));
        assert_eq!(
            r.extra_headers,
            vec![("X-Other".to_owned(), "o".to_owned())]
        );
        let raw = RawRequest {
            headers: vec![("X-Amzn-SageMaker-Target-Model".into(), "m".into())],
            ..RawRequest::json("{}")
        };
        assert!(InvokeStreamRequest::from_raw(raw).is_err());
    }

    #[test]
    fn header_limits_are_checked() {
        Limit::name(63).check("h", "ok-1").unwrap();
        assert!(Limit::name(63).check("h", "no_underscore").is_err());
        assert!(Limit::name(3).check("h", "long").is_err());
        assert!(Limit::text(10).check("h", "").is_err());
        assert!(Limit::text(10).check("h", "tab\there").is_err());
        let e = async_spec("e", &InvokeEndpointAsyncRequest::new("ftp://x")).unwrap_err();
        assert_eq!(e.path(), Some("input_location"));
        let e = async_spec(
            "e",
            &InvokeEndpointAsyncRequest::new("s3://b/k").with_request_ttl_seconds(30),
        )
        .unwrap_err();
        assert_eq!(e.path(), Some("request_ttl_seconds"));
    }
}
