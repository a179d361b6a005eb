//! [`OmiClient`]: the three OMI calls on the shared
//! [`GrpcTransport`](inferlink_core::transport::GrpcTransport), and the
//! [`InferenceConnector`] families over them ([`OmiConnector`] is the same type).
//!
//! # `Status` before the first `Run`
//!
//! The reference server (chassis) loads its model in the first `Status` call
//! and answers a `Run` that comes before it with `UNKNOWN "Internal Server
//! Error"`. The client therefore calls `Status` once per client, lazily,
//! before its first `Run` (and before metadata questions), and keeps the
//! answer: concurrent first calls wait for the one `Status` in flight instead
//! of sending their own. A failed `Status` is not kept, so the next call
//! tries again. [`OmiClient::refresh_status`] asks again explicitly;
//! [`OmiClient::health`] always asks the server.
//!
//! If a `Run` still gets `UNKNOWN "Internal Server Error"` (the server was
//! restarted behind the same address and has not loaded its model), the
//! client calls `Status` again and repeats the `Run` once: that answer means
//! the server returned before running anything.

use std::sync::Arc;

use inferlink_core::kit::ConnectorConfig;
use inferlink_core::transport::GrpcTransport;
use inferlink_core::transport::grpc::GrpcFailure;
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::{
    ConnectTarget, ConnectorInfo, Error, ErrorKind, Health, InferRequest, InferResponse, ModelInfo,
    ModelMetadata, ModelRef, RawRequest, RawResponse, Result,
};
use tokio::sync::{Mutex, RwLock};
use tonic::Code;

use crate::codec::{self, Files, OmiStatus, RunOutcome};
use crate::config::OmiConfig;
use crate::error::{is_success, status_code_error};
use crate::proto;

/// The vendor name used when none is given.
pub const DEFAULT_VENDOR: &str = "omi";

/// The protocol name in [`ConnectorInfo::protocol`].
pub const PROTOCOL: &str = "omi-grpc";

/// [`RawRequest::headers`] entry naming the input file of an
/// [`invoke`](inferlink_core::RawInvocation::invoke) (default: the model's only
/// declared input file).
pub const HEADER_INPUT_FILE: &str = "omi-input-file";

/// [`RawRequest::headers`] entry naming the output file an
/// [`invoke`](inferlink_core::RawInvocation::invoke) returns (default: the item's only
/// output file); echoed in [`RawResponse::headers`].
pub const HEADER_OUTPUT_FILE: &str = "omi-output-file";

/// The method paths of the `ModzyModel` service (no package).
pub(crate) mod paths {
    /// `Status`.
    pub(crate) const STATUS: &str = "/ModzyModel/Status";
    /// `Run`.
    pub(crate) const RUN: &str = "/ModzyModel/Run";
    /// `Shutdown`.
    pub(crate) const SHUTDOWN: &str = "/ModzyModel/Shutdown";
}

/// Options of one [`OmiClient::run`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// `RunRequest.detect_drift`; `None`: the configuration's `detect_drift`.
    pub detect_drift: Option<bool>,
    /// `RunRequest.explain`; `None`: the configuration's `explain`.
    pub explain: Option<bool>,
    /// The run is safe to send twice, so the retry loop may repeat it after
    /// it may have reached the server.
    pub idempotent: bool,
}

impl RunOptions {
    /// The defaults: the configuration's flags, not idempotent.
    pub fn new() -> Self {
        RunOptions::default()
    }

    /// Sets `detect_drift` for this run.
    pub fn detect_drift(mut self, yes: bool) -> Self {
        self.detect_drift = Some(yes);
        self
    }

    /// Sets `explain` for this run.
    pub fn explain(mut self, yes: bool) -> Self {
        self.explain = Some(yes);
        self
    }

    /// Marks the run safe to repeat.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

/// How a [`OmiClient::shutdown`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// The server answered (chassis: 200 "Model Shutdown Successfully.")
    /// before going away.
    Acknowledged {
        /// `status_code` of the answer.
        status_code: i32,
        /// `message` of the answer.
        message: String,
    },
    /// The connection dropped before an answer arrived: what a server that
    /// stops itself looks like, and counted as success.
    ConnectionDropped,
}

/// An Open Model Interface client: `Status`, `Run` and `Shutdown` over gRPC.
///
/// Cheap to clone (the channel and the cached `Status` are shared).
#[derive(Debug, Clone)]
pub struct OmiClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ConnectorInfo,
    transport: GrpcTransport,
    detect_drift: bool,
    explain: bool,
    check_model_name: bool,
    /// The kept `Status` answer (ready models only).
    status: RwLock<Option<Arc<OmiStatus>>>,
    /// Held while the first `Status` is in flight, so only one is sent.
    loading: Mutex<()>,
}

impl OmiClient {
    /// A client for `config`, vendor [`DEFAULT_VENDOR`].
    pub fn new(config: OmiConfig) -> Result<Self> {
        OmiClient::with_vendor(config, DEFAULT_VENDOR)
    }

    /// A client for the target's endpoint and configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        OmiClient::new(OmiConfig::from_target(target)?)
    }

    /// A client that names `vendor` in its info and errors.
    ///
    /// Nothing connects yet: the first call does. Errors:
    /// [`ErrorKind::Config`] naming the key for unusable settings;
    /// [`ErrorKind::PermissionDenied`] when the endpoint policy refuses the endpoint.
    pub fn with_vendor(config: OmiConfig, vendor: &str) -> Result<Self> {
        config.validate()?;
        let target = config.grpc_target()?;
        let transport = GrpcTransport::builder(&target, config.transport.clone())
            .vendor(vendor)
            .target_key("url")
            .build()?;
        Ok(OmiClient {
            inner: Arc::new(Inner {
                info: ConnectorInfo::new(vendor, PROTOCOL, target),
                transport,
                detect_drift: config.detect_drift,
                explain: config.explain,
                check_model_name: config.check_model_name,
                status: RwLock::new(None),
                loading: Mutex::new(()),
            }),
        })
    }

    /// Vendor, protocol (`omi-grpc`) and endpoint.
    pub fn info(&self) -> &ConnectorInfo {
        &self.inner.info
    }

    fn tag(&self, error: Error, model: Option<&ModelRef>) -> Error {
        let error = self.inner.info.tag(error);
        match model {
            Some(m) => error.with_model(m),
            None => error,
        }
    }

    /// Calls `Status` now (through the retry loop) and keeps a ready answer.
    async fn fetch_status(&self) -> Result<Arc<OmiStatus>> {
        let r: proto::StatusResponse = self
            .inner
            .transport
            .unary(
                paths::STATUS,
                proto::StatusRequest {},
                Idempotency::Safe,
                None,
            )
            .await
            .map_err(|e| self.tag(e, None))?;
        let status = Arc::new(OmiStatus::from(r));
        if status.is_ready() {
            *self.inner.status.write().await = Some(Arc::clone(&status));
        } else {
            *self.inner.status.write().await = None;
        }
        Ok(status)
    }

    /// The server's `Status`, asked once and kept (see the module
    /// documentation); concurrent first callers share one call.
    ///
    /// Errors: the call's error, or — when the server says the model is not
    /// loaded (`status_code` not 2xx; chassis: 500 "Model Failed to
    /// Initialize.") — an error of the kind
    /// [`status_code_kind`](crate::error::status_code_kind) gives.
    pub async fn status(&self) -> Result<Arc<OmiStatus>> {
        if let Some(s) = self.inner.status.read().await.as_ref() {
            return Ok(Arc::clone(s));
        }
        let _loading = self.inner.loading.lock().await;
        if let Some(s) = self.inner.status.read().await.as_ref() {
            return Ok(Arc::clone(s));
        }
        let status = self.fetch_status().await?;
        match status.error() {
            Some(e) => Err(self.tag(e, None)),
            None => Ok(status),
        }
    }

    /// Calls `Status` now, whatever is kept, and keeps the new answer when
    /// the model is ready. Unlike [`OmiClient::status`] a not-ready answer
    /// is returned, not turned into an error.
    pub async fn refresh_status(&self) -> Result<Arc<OmiStatus>> {
        let _loading = self.inner.loading.lock().await;
        self.fetch_status().await
    }

    /// The kept `Status` answer, if any (no call).
    pub async fn cached_status(&self) -> Option<Arc<OmiStatus>> {
        self.inner.status.read().await.clone()
    }

    /// Live and ready: one `Status` call (OMI has no separate health call).
    /// Live when the server answers; ready when its `status_code` is 2xx.
    pub async fn health(&self) -> Result<Health> {
        let status = self.refresh_status().await?;
        Ok(Health {
            live: true,
            ready: status.is_ready(),
        })
    }

    /// `NotFound` unless `model` names the served model (see
    /// [`OmiConfig::check_model_name`]).
    fn check_model(&self, model: &ModelRef, status: &OmiStatus) -> Result<()> {
        if !self.inner.check_model_name {
            return Ok(());
        }
        let served = &status.model;
        let name_ok = served.name.is_empty() || served.name == model.name;
        let version_ok = match &model.version {
            Some(v) => served.version.is_empty() || served.version == *v,
            None => true,
        };
        if name_ok && version_ok {
            return Ok(());
        }
        let serves = if served.version.is_empty() {
            format!("\"{}\"", served.name)
        } else {
            format!("\"{}\" version {}", served.name, served.version)
        };
        Err(self.tag(
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "model \"{}\" is not served here: this OMI server serves {serves} \
                     (one model per server; set check_model_name: false to skip this check)",
                    model.to_string().escape_debug()
                ),
            )
            .with_retryable(false),
            Some(model),
        ))
    }

    /// The `Status` for a call on `model`: kept or fetched, and the name checked.
    async fn status_for(&self, model: &ModelRef) -> Result<Arc<OmiStatus>> {
        let status = self.status().await.map_err(|e| e.with_model(model))?;
        self.check_model(model, &status)?;
        Ok(status)
    }

    /// Runs a batch: one [`Files`] map per item (input file name → bytes).
    ///
    /// Calls `Status` first if this client has not yet. The answer has one
    /// result per item, in order: a failed item is an `Err(ItemError)` in
    /// [`RunOutcome::items`], never an empty success;
    /// [`RunOutcome::into_files`] turns any failure into one error.
    ///
    /// Errors of the whole call: [`ErrorKind::InvalidInput`] for an empty
    /// batch; the gRPC error; a non-2xx `status_code`;
    /// [`ErrorKind::ModelError`] when the number of outputs differs from the
    /// number of inputs.
    pub async fn run(&self, items: Vec<Files>, options: &RunOptions) -> Result<RunOutcome> {
        if items.is_empty() {
            return Err(self.tag(
                Error::invalid("an OMI run needs at least one batch item"),
                None,
            ));
        }
        self.status().await?;
        self.run_loaded(items, options, None).await
    }

    async fn run_loaded(
        &self,
        items: Vec<Files>,
        options: &RunOptions,
        model: Option<&ModelRef>,
    ) -> Result<RunOutcome> {
        let n = items.len();
        let message = codec::run_request(
            items,
            options.detect_drift.unwrap_or(self.inner.detect_drift),
            options.explain.unwrap_or(self.inner.explain),
        );
        let idempotency = Idempotency::marked(options.idempotent);
        let send = || {
            self.inner.transport.unary::<_, proto::RunResponse>(
                paths::RUN,
                message.clone(),
                idempotency,
                model,
            )
        };
        let response = match send().await {
            Err(e) if is_model_not_loaded(&e) => {
                // The server answered before running anything: it has no model
                // loaded (restarted since our Status). Load it and try once more.
                tracing::debug!("OMI Run before Status on the server side; calling Status again");
                let status = self
                    .refresh_status()
                    .await
                    .map_err(|e| self.tag(e, model))?;
                if let Some(e) = status.error() {
                    return Err(self.tag(e, model));
                }
                send().await
            }
            other => other,
        }
        .map_err(|e| self.tag(e, model))?;
        codec::decode_run(response, n).map_err(|e| self.tag(e, model))
    }

    /// Runs the tensor request as a batch (see [`crate::codec`]); any failed
    /// item makes the whole call an [`ErrorKind::ModelError`] (use
    /// [`OmiClient::run`] for per-item results).
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        let status = self.status_for(model).await?;
        let items =
            codec::items_from_request(&request, &status).map_err(|e| self.tag(e, Some(model)))?;
        let mut options = RunOptions::new();
        options.idempotent = request.idempotent;
        let outcome = self.run_loaded(items, &options, Some(model)).await?;
        let files = outcome.into_files().map_err(|e| self.tag(e, Some(model)))?;
        codec::response_from_items(model, &status, &request, files)
            .map_err(|e| self.tag(e, Some(model)))
    }

    /// One item with one input file: the body is the file, named by the
    /// request header [`HEADER_INPUT_FILE`] or else the model's only
    /// declared input; the answer is one output file, named by
    /// [`HEADER_OUTPUT_FILE`] or else the item's only output. A failed item
    /// is an [`ErrorKind::ModelError`] with the model's message.
    pub async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        let status = self.status_for(model).await?;
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let fail = |e: Error| self.tag(e, Some(model));
        let input = match header(HEADER_INPUT_FILE) {
            Some(name) => name,
            None => match status.inputs.as_slice() {
                [only] => only.filename.clone(),
                declared => {
                    let names: Vec<&str> = declared.iter().map(|i| i.filename.as_str()).collect();
                    return Err(fail(Error::invalid(format!(
                        "model \"{}\" declares {} input files [{}]; name one with the request \
                         header {HEADER_INPUT_FILE}",
                        status.model.name,
                        names.len(),
                        names.join(", ")
                    ))));
                }
            },
        };
        let mut files = Files::new();
        files.insert(input, request.body.clone());
        let mut options = RunOptions::new();
        options.idempotent = request.idempotent;
        let outcome = self.run_loaded(vec![files], &options, Some(model)).await?;
        let mut items = outcome.into_files().map_err(fail)?;
        let mut item = items.pop().unwrap_or_default();
        let output = match header(HEADER_OUTPUT_FILE) {
            Some(name) => name,
            None if item.len() == 1 => item.keys().next().cloned().unwrap_or_default(),
            None => {
                let names: Vec<&str> = item.keys().map(String::as_str).collect();
                return Err(fail(Error::invalid(format!(
                    "the model gave {} output files [{}]; name the one to return with the \
                     request header {HEADER_OUTPUT_FILE} (or use OmiClient::run)",
                    names.len(),
                    names.join(", ")
                ))));
            }
        };
        let Some(body) = item.remove(&output) else {
            let names: Vec<&str> = item.keys().map(String::as_str).collect();
            return Err(fail(
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "the model gave no output file \"{}\"; it gave [{}]",
                        output.escape_debug(),
                        names.join(", ")
                    ),
                )
                .with_retryable(false),
            ));
        };
        let content_type = status
            .output(&output)
            .map(|o| o.media_type.clone())
            .filter(|m| !m.is_empty());
        Ok(RawResponse {
            body,
            content_type,
            headers: vec![(HEADER_OUTPUT_FILE.to_owned(), output)],
        })
    }

    /// The served model's metadata (from the kept `Status`).
    pub async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        let status = self.status_for(model).await?;
        Ok(status.to_model_metadata())
    }

    /// The one model the server serves, with state `READY`.
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        let status = self.status().await?;
        Ok(vec![ModelInfo {
            name: status.model.name.clone(),
            version: (!status.model.version.is_empty()).then(|| status.model.version.clone()),
            state: Some("READY".to_owned()),
        }])
    }

    /// Whether `model` is the served model and loaded. An unknown model is
    /// [`ErrorKind::NotFound`]; a model that failed to load is `false`.
    pub async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        let status = match self.status().await {
            Ok(s) => s,
            Err(e) if e.context("omi_status_code").is_some() => return Ok(false),
            Err(e) => return Err(e.with_model(model)),
        };
        self.check_model(model, &status)?;
        Ok(status.is_ready())
    }

    /// Asks the server to shut down (`Shutdown`), an administrative call:
    /// never retried, and never sent by any other method.
    ///
    /// The reference server answers and then stops its own process, so
    /// either an answer or a dropped connection is success
    /// ([`ShutdownOutcome`]). The kept `Status` is forgotten. Errors: the
    /// server cannot be reached ([`ErrorKind::Unavailable`]: nothing was
    /// sent), it refuses (for example `UNIMPLEMENTED`), or it answers a
    /// non-2xx `status_code`.
    pub async fn shutdown(&self) -> Result<ShutdownOutcome> {
        *self.inner.status.write().await = None;
        let call = self
            .inner
            .transport
            .unary_once::<_, proto::ShutdownResponse>(paths::SHUTDOWN, proto::ShutdownRequest {});
        let timeout = self.inner.transport.limits().attempt_timeout;
        let answer = match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer.map_err(|e| self.tag(e, None))?,
            Err(_) => {
                return Err(self.tag(
                    Error::new(ErrorKind::Timeout, "OMI Shutdown got no answer in time")
                        .with_retryable(false),
                    None,
                ));
            }
        };
        match answer {
            Ok(r) => {
                if is_success(r.status_code) {
                    Ok(ShutdownOutcome::Acknowledged {
                        status_code: r.status_code,
                        message: r.message,
                    })
                } else {
                    Err(self.tag(
                        status_code_error("Shutdown", r.status_code, &r.status, &r.message),
                        None,
                    ))
                }
            }
            Err(status) if GrpcFailure::of(&status) == GrpcFailure::Dropped => {
                Ok(ShutdownOutcome::ConnectionDropped)
            }
            // A server that goes away while answering may close the stream
            // without trailers or reset it; tonic reports that as UNKNOWN or
            // UNAVAILABLE or CANCELLED without a server message.
            Err(status)
                if GrpcFailure::of(&status) == GrpcFailure::Answered
                    && matches!(
                        status.code(),
                        Code::Unavailable | Code::Cancelled | Code::Unknown
                    )
                    && is_connection_loss(status.message()) =>
            {
                Ok(ShutdownOutcome::ConnectionDropped)
            }
            Err(status) => Err(self
                .inner
                .transport
                .status_error(&status, None)
                .with_retryable(false)),
        }
    }
}

/// Messages tonic and h2 give a stream cut by the peer's exit.
fn is_connection_loss(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection",
        "broken pipe",
        "stream no longer needed",
        "reset",
        "eof",
        "closed",
        "transport error",
        "h2 protocol error",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Chassis' answer to a `Run` it has no loaded model for.
fn is_model_not_loaded(e: &Error) -> bool {
    e.context("grpc_status") == Some("2") && e.vendor_message() == Some("Internal Server Error")
}

/// The [`InferenceConnector`] of an Open Model Interface server: the
/// client itself implements the capability families.
///
/// | method | OMI call | notes |
/// |---|---|---|
/// | `health` | `Status` | live = answered, ready = `status_code` 2xx |
/// | `models` | `Status` (kept) | the one served model |
/// | `model_metadata`, `model_ready` | `Status` (kept) | `NotFound` for another model name |
/// | `infer` | `Run` | `BYTES [batch]` tensors as files; a failed item fails the call |
/// | `invoke` | `Run` | one item, one input file, one output file |
///
/// `Shutdown` is not part of the trait: call [`OmiClient::shutdown`].
pub type OmiConnector = OmiClient;

inferlink_core::connector_families! {
    impl OmiClient {
        TensorInference(inherent),
        RawInvocation(inherent),
        ModelListing(inherent),
        ModelDescription(inherent),
        ModelReadiness(inherent),
    }
}
