//! The [`InferenceConnector`] conformance suite.
//!
//! Every connector crate runs this suite against each real server its
//! connector speaks to. A [`ConformanceSpec`] says what the server offers:
//! which models to call, how each transforms its input (a doubler doubles,
//! an identity model echoes), which datatypes round-trip, what the server
//! answers to bad input, and how to build a connector with bad credentials.
//! [`run_connector_conformance`] runs every check and returns a
//! [`ConformanceReport`] with one named result per check, so a failing test
//! says which check failed and why:
//!
//! ```no_run
//! use inferlink::{DataType, ErrorKind};
//! use inferlink_testkit::connector::{
//!     run_connector_conformance, ConformanceSpec, Expect, RoundTrip, Transform,
//! };
//!
//! # async fn demo(connector: std::sync::Arc<dyn inferlink::InferenceConnector>) {
//! let fp32 = RoundTrip::sample("doubler", "INPUT_1", DataType::Fp32, vec![2, 3], Transform::Double);
//! let spec = ConformanceSpec::new()
//!     .bad_input(fp32.wrong_shape())
//!     .bad_input(fp32.wrong_datatype())
//!     .round_trip(fp32)
//!     .round_trip(RoundTrip::sample("upper", "TEXT", DataType::Bytes, vec![2, 1], Transform::Uppercase));
//! let report = run_connector_conformance(connector.as_ref(), &spec).await;
//! report.assert_passed(); // panics listing every failed check
//! # }
//! ```
//!
//! # Checks
//!
//! | name | passes when |
//! |---|---|
//! | `info` | vendor, protocol and endpoint are set; the endpoint shows no user info |
//! | `health` | the server is live and ready |
//! | `models` | with the capability: every spec model is listed; without: `Unsupported` |
//! | `model_metadata` | with the capability: each model's metadata names it, and declared inputs accept the round-trip inputs; without: `Unsupported` |
//! | `model_metadata/unknown_model` | with the capability: `NotFound` for the unknown model |
//! | `model_ready` | with the capability: each model is ready; without: `Unsupported` |
//! | `model_ready/unknown_model` | with the capability: `false` or `NotFound` for the unknown model |
//! | `infer/<label>/typed`, `infer/<label>/raw` | the round trip's output matches the expected one, with the input held typed and as raw bytes |
//! | `infer` | only without the infer capability: `infer` answers `Unsupported` |
//! | `unknown_model` | infer on an unknown model is `NotFound`, not retryable, and the error names the model |
//! | `error_context` | that error carries the connector's vendor and the model as context |
//! | `bad_input/<label>` | the server's answer to a bad request is the one the spec expects |
//! | `auth/bad_credentials` | a connector with bad credentials gets the expected kind (`Unauthenticated` by default) |
//! | `invoke` | with the capability: the spec's invoke case passes; without: `Unsupported` |
//! | `secrets_in_errors` | no error of the run, nor the connector's `Debug` or info, contains a spec secret |
//!
//! The typed text families (`embed`, `rerank`, `generate`, `stream_generate`)
//! have checks of their own, listed in the `typed` module's table
//! ([`EmbedCase`], [`RerankCase`], [`GenerateCase`]).
//!
//! Every call is bounded by [`ConformanceSpec::call_timeout`]: a connector
//! that hangs fails the check instead of hanging the test. The suite needs a
//! Tokio runtime with the time driver (`#[tokio::test]` has one).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use inferlink::tensor::{Element, bf16, f16};
use inferlink::{
    DataType, Error, ErrorKind, InferRequest, InferenceConnector, ModelRef, RawRequest,
    RawResponse, Result, Tensor,
};

/// How long one connector call may take by default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The model name the suite uses for "a model the server does not have".
pub const UNKNOWN_MODEL: &str = "inferlink-conformance-no-such-model";

/// A function from a round trip's input to the output the model should give.
pub type ExpectFn = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// How a model turns its input into its output.
#[derive(Clone)]
pub enum Transform {
    /// The output equals the input (datatype, shape and values).
    Identity,
    /// The doubler of the real-server harness's test models: numbers doubled
    /// in their own type (integers wrap around, as numpy does: `INT8` 100
    /// gives -56), `BOOL` negated, `BYTES` upper-cased in ASCII only
    /// (`"wörld"` gives `"WöRLD"`). Datatype and shape are kept.
    Double,
    /// Every `BYTES` element upper-cased as Unicode text (`"wörld"` gives
    /// `"WÖRLD"`, as Python's `str.upper`).
    Uppercase,
    /// Any other model: the function returns the expected output.
    Custom(ExpectFn),
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transform::Identity => "Identity",
            Transform::Double => "Double",
            Transform::Uppercase => "Uppercase",
            Transform::Custom(_) => "Custom(..)",
        })
    }
}

impl Transform {
    /// A custom transform.
    pub fn custom(f: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Self {
        Transform::Custom(Arc::new(f))
    }

    /// The output the model should give for `input` (its name is the input's;
    /// names are not compared).
    pub fn apply(&self, input: &Tensor) -> Result<Tensor> {
        match self {
            Transform::Identity => Ok(input.clone()),
            Transform::Double => double(input),
            Transform::Uppercase => {
                let upper: Vec<String> = input
                    .to_strings()?
                    .iter()
                    .map(|s| s.to_uppercase())
                    .collect();
                Tensor::from_strings(input.name(), input.shape().to_vec(), upper)
            }
            Transform::Custom(f) => f(input),
        }
    }
}

/// Doubles every number (wrapping), negates `BOOL`s, upper-cases `BYTES` in ASCII.
fn double(input: &Tensor) -> Result<Tensor> {
    fn each<T: Element>(input: &Tensor, f: impl Fn(T) -> T) -> Result<Tensor> {
        let values: Vec<T> = input.to_vec::<T>()?.into_iter().map(f).collect();
        Tensor::new(input.name(), input.shape().to_vec(), values)
    }
    match input.datatype() {
        DataType::Bool => each(input, |v: bool| !v),
        DataType::Uint8 => each(input, |v: u8| v.wrapping_mul(2)),
        DataType::Uint16 => each(input, |v: u16| v.wrapping_mul(2)),
        DataType::Uint32 => each(input, |v: u32| v.wrapping_mul(2)),
        DataType::Uint64 => each(input, |v: u64| v.wrapping_mul(2)),
        DataType::Int8 => each(input, |v: i8| v.wrapping_mul(2)),
        DataType::Int16 => each(input, |v: i16| v.wrapping_mul(2)),
        DataType::Int32 => each(input, |v: i32| v.wrapping_mul(2)),
        DataType::Int64 => each(input, |v: i64| v.wrapping_mul(2)),
        DataType::Fp16 => each(input, |v: f16| f16::from_f32(v.to_f32() * 2.0)),
        DataType::Bf16 => each(input, |v: bf16| bf16::from_f32(v.to_f32() * 2.0)),
        DataType::Fp32 => each(input, |v: f32| v * 2.0),
        DataType::Fp64 => each(input, |v: f64| v * 2.0),
        DataType::Bytes => {
            let elements = input.to_byte_elements()?;
            let upper = elements.iter().map(|e| e.to_ascii_uppercase());
            Tensor::from_byte_elements(input.name(), input.shape().to_vec(), upper)
        }
    }
}

/// A deterministic sample tensor: small numbers that survive doubling in
/// every datatype (exact in `FP16` and `BF16`), alternating `BOOL`s, and
/// `BYTES` elements with non-ASCII text (`elem-0-ü`, …).
pub fn sample_tensor(name: &str, datatype: DataType, shape: Vec<usize>) -> Result<Tensor> {
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= 1 << 24)
        .ok_or_else(|| Error::invalid(format!("sample shape {shape:?} is too large")))?;
    // 1..=50, negative for odd positions where the type is signed.
    let k = |i: usize| (i % 50 + 1) as i64;
    let signed = |i: usize| if i % 2 == 1 { -k(i) } else { k(i) };
    let float = |i: usize| signed(i) as f64 * 0.25;
    match datatype {
        DataType::Bool => Tensor::new(name, shape, (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>()),
        DataType::Uint8 => Tensor::new(name, shape, (0..n).map(|i| k(i) as u8).collect::<Vec<_>>()),
        DataType::Uint16 => {
            Tensor::new(name, shape, (0..n).map(|i| k(i) as u16).collect::<Vec<_>>())
        }
        DataType::Uint32 => {
            Tensor::new(name, shape, (0..n).map(|i| k(i) as u32).collect::<Vec<_>>())
        }
        DataType::Uint64 => {
            Tensor::new(name, shape, (0..n).map(|i| k(i) as u64).collect::<Vec<_>>())
        }
        DataType::Int8 => Tensor::new(
            name,
            shape,
            (0..n).map(|i| signed(i) as i8).collect::<Vec<_>>(),
        ),
        DataType::Int16 => Tensor::new(
            name,
            shape,
            (0..n).map(|i| signed(i) as i16).collect::<Vec<_>>(),
        ),
        DataType::Int32 => Tensor::new(
            name,
            shape,
            (0..n).map(|i| signed(i) as i32).collect::<Vec<_>>(),
        ),
        DataType::Int64 => Tensor::new(name, shape, (0..n).map(signed).collect::<Vec<_>>()),
        DataType::Fp16 => Tensor::new(
            name,
            shape,
            (0..n).map(|i| f16::from_f64(float(i))).collect::<Vec<_>>(),
        ),
        DataType::Bf16 => Tensor::new(
            name,
            shape,
            (0..n).map(|i| bf16::from_f64(float(i))).collect::<Vec<_>>(),
        ),
        DataType::Fp32 => Tensor::new(
            name,
            shape,
            (0..n).map(|i| float(i) as f32).collect::<Vec<_>>(),
        ),
        DataType::Fp64 => Tensor::new(name, shape, (0..n).map(float).collect::<Vec<_>>()),
        DataType::Bytes => Tensor::from_strings(name, shape, (0..n).map(|i| format!("elem-{i}-ü"))),
    }
}

/// One inference round trip: a model, an input, and how the model transforms it.
#[derive(Clone, Debug)]
pub struct RoundTrip {
    /// Names the checks `infer/<label>/typed` and `infer/<label>/raw`;
    /// `<model>/<DATATYPE>` unless set.
    pub label: String,
    /// The model to call.
    pub model: ModelRef,
    /// The input (held typed; the suite also sends it as raw bytes).
    pub input: Tensor,
    /// The output to read; `None`: the response must have exactly one output.
    pub output: Option<String>,
    /// How the model transforms the input.
    pub transform: Transform,
    /// Largest absolute difference accepted per number (0: exact).
    pub tolerance: f64,
}

impl RoundTrip {
    /// A round trip with this input.
    pub fn new(model: impl Into<ModelRef>, input: Tensor, transform: Transform) -> Self {
        let model = model.into();
        RoundTrip {
            label: format!("{model}/{}", input.datatype()),
            model,
            input,
            output: None,
            transform,
            tolerance: 0.0,
        }
    }

    /// A round trip with a [`sample_tensor`] input.
    ///
    /// # Panics
    ///
    /// When the shape has more than 2^24 elements (a mistake in the spec).
    pub fn sample(
        model: impl Into<ModelRef>,
        input_name: &str,
        datatype: DataType,
        shape: Vec<usize>,
        transform: Transform,
    ) -> Self {
        let input = sample_tensor(input_name, datatype, shape)
            .unwrap_or_else(|e| panic!("invalid conformance spec: {e}"));
        RoundTrip::new(model, input, transform)
    }

    /// Reads the output with this name (for models with several outputs).
    pub fn output(mut self, name: impl Into<String>) -> Self {
        self.output = Some(name.into());
        self
    }

    /// Renames the checks of this round trip.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Accepts numbers within `tolerance` of the expected ones.
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The same input with an extra leading dimension of 1 (rank + 1),
    /// expected to fail with [`ErrorKind::InvalidInput`]; use
    /// [`BadInput::expect`] for servers that answer otherwise.
    pub fn wrong_shape(&self) -> BadInput {
        let mut shape = vec![1];
        shape.extend_from_slice(self.input.shape());
        let input = self
            .input
            .clone()
            .reshape(shape)
            .unwrap_or_else(|e| panic!("invalid conformance spec: {e}"));
        BadInput::new(
            format!("{}/wrong_shape", self.label),
            self.model.clone(),
            InferRequest::new().with_input(input),
            Expect::fails(ErrorKind::InvalidInput),
        )
    }

    /// The input's name and shape with another datatype (`INT32`, or `FP32`
    /// for an `INT32` input), expected to fail with
    /// [`ErrorKind::InvalidInput`]; use [`BadInput::expect`] for servers that
    /// answer otherwise.
    pub fn wrong_datatype(&self) -> BadInput {
        let other = if self.input.datatype() == DataType::Int32 {
            DataType::Fp32
        } else {
            DataType::Int32
        };
        let input = sample_tensor(self.input.name(), other, self.input.shape().to_vec())
            .unwrap_or_else(|e| panic!("invalid conformance spec: {e}"));
        BadInput::new(
            format!("{}/wrong_datatype", self.label),
            self.model.clone(),
            InferRequest::new().with_input(input),
            Expect::fails(ErrorKind::InvalidInput),
        )
    }
}

/// What a server answers to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// An error of one of these kinds, not retryable.
    Fails(Vec<ErrorKind>),
    /// A successful answer (for servers that do not validate this input).
    Succeeds,
}

impl Expect {
    /// An error of this kind.
    pub fn fails(kind: ErrorKind) -> Self {
        Expect::Fails(vec![kind])
    }
}

/// A request a model should refuse, and how the server refuses it.
#[derive(Clone, Debug)]
pub struct BadInput {
    /// Names the check `bad_input/<label>`.
    pub label: String,
    /// The model to call.
    pub model: ModelRef,
    /// The request.
    pub request: InferRequest,
    /// The expected answer.
    pub expect: Expect,
}

impl BadInput {
    /// A bad-input case.
    pub fn new(
        label: impl Into<String>,
        model: impl Into<ModelRef>,
        request: InferRequest,
        expect: Expect,
    ) -> Self {
        BadInput {
            label: label.into(),
            model: model.into(),
            request,
            expect,
        }
    }

    /// Replaces the expected answer, e.g. `Expect::fails(ErrorKind::ModelError)`
    /// for a KServe custom model whose code raises on a wrong shape (HTTP 500),
    /// or [`Expect::Succeeds`] for a model that accepts any shape.
    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }
}

/// Builds a connector to the same server with bad credentials.
pub type ConnectFn =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn InferenceConnector>>> + Send + Sync>;

/// The call a bad-credentials connector makes.
#[derive(Clone, Debug)]
pub enum Probe {
    /// [`InferenceConnector::health`] (for servers that guard health too).
    Health,
    /// [`InferenceConnector::models`].
    Models,
    /// [`InferenceConnector::infer`] with this request.
    Infer(ModelRef, InferRequest),
}

/// The bad-credentials check, for servers with authentication.
#[derive(Clone)]
pub struct AuthCheck {
    /// Builds a connector with bad credentials (e.g. a resolution whose
    /// token is wrong, through the connector's factory).
    pub connect: ConnectFn,
    /// The call that must be refused; `None`: the first round trip's infer
    /// (or `Health` when the spec has no round trip).
    pub probe: Option<Probe>,
    /// Accepted kinds; by default `Unauthenticated`.
    pub expect: Vec<ErrorKind>,
    /// The bad credential's value, which no error may contain.
    pub secret: Option<String>,
}

impl fmt::Debug for AuthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthCheck")
            .field("probe", &self.probe)
            .field("expect", &self.expect)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish_non_exhaustive()
    }
}

impl AuthCheck {
    /// A check whose connector comes from `connect`.
    pub fn new<F, Fut>(connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn InferenceConnector>>> + Send + 'static,
    {
        AuthCheck {
            connect: Arc::new(move || Box::pin(connect())),
            probe: None,
            expect: vec![ErrorKind::Unauthenticated],
            secret: None,
        }
    }

    /// Sets the refused call.
    pub fn probe(mut self, probe: Probe) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Sets the accepted kinds.
    pub fn expect(mut self, kinds: Vec<ErrorKind>) -> Self {
        self.expect = kinds;
        self
    }

    /// Names the bad credential's value, so the suite checks no error shows it.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }
}

/// Checks an invoke answer; `Err` says what is wrong.
pub type InvokeCheckFn = Arc<dyn Fn(&RawResponse) -> std::result::Result<(), String> + Send + Sync>;

/// An opaque invocation and a check of its answer.
#[derive(Clone)]
pub struct InvokeCase {
    /// The model to invoke.
    pub model: ModelRef,
    /// The request.
    pub request: RawRequest,
    /// The check of the answer.
    pub check: InvokeCheckFn,
}

impl fmt::Debug for InvokeCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokeCase")
            .field("model", &self.model)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl InvokeCase {
    /// An invoke case.
    pub fn new(
        model: impl Into<ModelRef>,
        request: RawRequest,
        check: impl Fn(&RawResponse) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        InvokeCase {
            model: model.into(),
            request,
            check: Arc::new(check),
        }
    }
}

/// What the server under test offers, and what it answers.
///
/// `Debug` shows how many secrets the spec holds, never their values.
#[derive(Clone)]
pub struct ConformanceSpec {
    /// Inference round trips, one per model and datatype worth checking.
    pub round_trips: Vec<RoundTrip>,
    /// Requests the server should refuse.
    pub bad_inputs: Vec<BadInput>,
    /// A model the server does not have ([`UNKNOWN_MODEL`] by default).
    pub unknown_model: ModelRef,
    /// The bad-credentials check; `None` for servers without authentication.
    pub auth: Option<AuthCheck>,
    /// The invoke case, for connectors with the invoke capability (also
    /// sent through `invoke_stream` when the connector streams invocations
    /// and no [`ConformanceSpec::stream_invoke`] case is given).
    pub invoke: Option<InvokeCase>,
    /// The streamed-inference case, required when the connector has
    /// [`inferlink::StreamingInference`].
    pub stream_infer: Option<StreamInferCase>,
    /// The streamed-invocation case, for connectors with
    /// [`inferlink::StreamingInvocation`] (else the invoke case is used).
    pub stream_invoke: Option<InvokeCase>,
    /// The embed case, required when the connector has [`inferlink::Embedding`].
    pub embed: Option<EmbedCase>,
    /// The rerank case, required when the connector has [`inferlink::Reranking`].
    pub rerank: Option<RerankCase>,
    /// The generate case, required when the connector has
    /// [`inferlink::Generation`] or [`inferlink::StreamingGeneration`].
    pub generate: Option<GenerateCase>,
    /// Credential values of the connector under test, which no error may show.
    pub secrets: Vec<String>,
    /// How long one call may take ([`DEFAULT_CALL_TIMEOUT`] by default).
    pub call_timeout: Duration,
}

impl fmt::Debug for ConformanceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConformanceSpec")
            .field("round_trips", &self.round_trips)
            .field("bad_inputs", &self.bad_inputs)
            .field("unknown_model", &self.unknown_model)
            .field("auth", &self.auth)
            .field("invoke", &self.invoke)
            .field("stream_infer", &self.stream_infer)
            .field("stream_invoke", &self.stream_invoke)
            .field("embed", &self.embed)
            .field("rerank", &self.rerank)
            .field("generate", &self.generate)
            .field("secrets", &format_args!("<{} hidden>", self.secrets.len()))
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl Default for ConformanceSpec {
    fn default() -> Self {
        ConformanceSpec {
            round_trips: Vec::new(),
            bad_inputs: Vec::new(),
            unknown_model: ModelRef::new(UNKNOWN_MODEL),
            auth: None,
            invoke: None,
            stream_infer: None,
            stream_invoke: None,
            embed: None,
            rerank: None,
            generate: None,
            secrets: Vec::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

impl ConformanceSpec {
    /// An empty spec: health, info and capability checks only.
    pub fn new() -> Self {
        ConformanceSpec::default()
    }

    /// Adds a round trip.
    pub fn round_trip(mut self, round_trip: RoundTrip) -> Self {
        self.round_trips.push(round_trip);
        self
    }

    /// Adds a bad-input case.
    pub fn bad_input(mut self, bad_input: BadInput) -> Self {
        self.bad_inputs.push(bad_input);
        self
    }

    /// Sets the unknown model.
    pub fn unknown_model(mut self, model: impl Into<ModelRef>) -> Self {
        self.unknown_model = model.into();
        self
    }

    /// Sets the bad-credentials check.
    pub fn auth(mut self, auth: AuthCheck) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sets the invoke case.
    pub fn invoke(mut self, invoke: InvokeCase) -> Self {
        self.invoke = Some(invoke);
        self
    }

    /// Sets the streamed-inference case.
    pub fn stream_infer(mut self, case: StreamInferCase) -> Self {
        self.stream_infer = Some(case);
        self
    }

    /// Sets the streamed-invocation case (default: the invoke case, streamed).
    pub fn stream_invoke(mut self, case: InvokeCase) -> Self {
        self.stream_invoke = Some(case);
        self
    }

    /// Sets the embed case.
    pub fn embed(mut self, case: EmbedCase) -> Self {
        self.embed = Some(case);
        self
    }

    /// Sets the rerank case.
    pub fn rerank(mut self, case: RerankCase) -> Self {
        self.rerank = Some(case);
        self
    }

    /// Sets the generate case (also streamed, for `stream_generate`).
    pub fn generate(mut self, case: GenerateCase) -> Self {
        self.generate = Some(case);
        self
    }

    /// Adds a credential value no error may contain.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Sets the per-call timeout.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The models the spec names, in first-mention order, without repeats.
    pub fn models(&self) -> Vec<ModelRef> {
        let mut models: Vec<ModelRef> = Vec::new();
        let named = self
            .round_trips
            .iter()
            .map(|r| &r.model)
            .chain(self.bad_inputs.iter().map(|b| &b.model))
            .chain(self.invoke.iter().map(|i| &i.model))
            .chain(self.stream_infer.iter().map(|c| &c.model))
            .chain(self.stream_invoke.iter().map(|c| &c.model))
            .chain(self.embed.iter().map(|c| &c.model))
            .chain(self.rerank.iter().map(|c| &c.model))
            .chain(self.generate.iter().map(|c| &c.model));
        for model in named {
            if !models.contains(model) {
                models.push(model.clone());
            }
        }
        models
    }
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    /// The connector did what the check expects.
    Passed,
    /// It did not; the text says what happened.
    Failed(String),
    /// The check does not apply (the text says why).
    Skipped(String),
}

/// One named check and its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name (see the module documentation).
    pub name: String,
    /// Its result.
    pub status: CheckStatus,
}

/// Every check of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConformanceReport {
    /// The connector under test: vendor, protocol and endpoint.
    pub connector: String,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckResult>,
}

impl ConformanceReport {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Failed(_)))
    }

    /// The result of the check with this name.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The status of the check with this name.
    pub fn status(&self, name: &str) -> Option<&CheckStatus> {
        self.check(name).map(|c| &c.status)
    }

    /// Panics with the whole report when a check failed.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "connector conformance failed:\n{self}");
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count =
            |want: fn(&CheckStatus) -> bool| self.checks.iter().filter(|c| want(&c.status)).count();
        writeln!(
            f,
            "{}: {} passed, {} failed, {} skipped",
            self.connector,
            count(|s| *s == CheckStatus::Passed),
            count(|s| matches!(s, CheckStatus::Failed(_))),
            count(|s| matches!(s, CheckStatus::Skipped(_))),
        )?;
        for c in &self.checks {
            match &c.status {
                CheckStatus::Passed => writeln!(f, "  ok    {}", c.name)?,
                CheckStatus::Failed(why) => writeln!(f, "  FAIL  {}: {why}", c.name)?,
                CheckStatus::Skipped(why) => writeln!(f, "  skip  {}: {why}", c.name)?,
            }
        }
        Ok(())
    }
}

/// Runs every check against `connector` (see the module documentation).
pub async fn run_connector_conformance(
    connector: &dyn InferenceConnector,
    spec: &ConformanceSpec,
) -> ConformanceReport {
    let info = connector.info();
    let mut run = Run {
        spec,
        connector,
        errors: Vec::new(),
        report: ConformanceReport {
            connector: format!("{} ({}) at {}", info.vendor, info.protocol, info.endpoint),
            checks: Vec::new(),
        },
    };
    run.info();
    run.health().await;
    run.models().await;
    run.model_metadata().await;
    run.model_ready().await;
    run.infer().await;
    run.unknown_model().await;
    run.bad_inputs().await;
    run.auth().await;
    run.invoke().await;
    run.stream_infer().await;
    run.stream_invoke().await;
    run.embed().await;
    run.rerank().await;
    run.generate().await;
    run.stream_generate().await;
    run.secrets();
    run.report
}

/// A connector call's outcome within the time limit.
enum Answer<T> {
    Ok(T),
    Err(Error),
    Hung,
}

struct Run<'a> {
    spec: &'a ConformanceSpec,
    connector: &'a dyn InferenceConnector,
    /// Display and Debug of every error seen, for the secrets check.
    errors: Vec<String>,
    report: ConformanceReport,
}

type Verdict = std::result::Result<(), String>;

impl Run<'_> {
    fn record(&mut self, name: impl Into<String>, status: CheckStatus) {
        self.report.checks.push(CheckResult {
            name: name.into(),
            status,
        });
    }

    fn verdict(&mut self, name: impl Into<String>, verdict: Verdict) {
        let status = match verdict {
            Ok(()) => CheckStatus::Passed,
            Err(why) => CheckStatus::Failed(why),
        };
        self.record(name, status);
    }

    fn skip(&mut self, name: impl Into<String>, why: impl Into<String>) {
        self.record(name, CheckStatus::Skipped(why.into()));
    }

    async fn ask<T>(&mut self, call: impl Future<Output = Result<T>>) -> Answer<T> {
        match tokio::time::timeout(self.spec.call_timeout, call).await {
            Ok(Ok(value)) => Answer::Ok(value),
            Ok(Err(e)) => {
                self.errors.push(format!("{e}"));
                self.errors.push(format!("{e:?}"));
                Answer::Err(e)
            }
            Err(_) => Answer::Hung,
        }
    }

    fn hung(&self) -> String {
        format!("no answer within {:?}", self.spec.call_timeout)
    }

    /// Passes when the answer is `Unsupported` (for a capability the connector lacks).
    fn unsupported<T>(&self, capability: &str, answer: Answer<T>) -> Verdict {
        match answer {
            Answer::Err(e) if e.kind() == ErrorKind::Unsupported => Ok(()),
            Answer::Err(e) => Err(format!(
                "the capabilities say no {capability}, so the answer must be Unsupported; got {}",
                describe(&e)
            )),
            Answer::Ok(_) => Err(format!(
                "the capabilities say no {capability}, but the call succeeded (declare the capability)"
            )),
            Answer::Hung => Err(self.hung()),
        }
    }

    fn first_model(&self) -> ModelRef {
        self.spec
            .models()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.spec.unknown_model.clone())
    }

    fn info(&mut self) {
        let info = self.connector.info();
        let mut problems = Vec::new();
        for (field, value) in [
            ("vendor", &info.vendor),
            ("protocol", &info.protocol),
            ("endpoint", &info.endpoint),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{field} is empty"));
            }
        }
        let authority = info
            .endpoint
            .split_once("://")
            .map_or(info.endpoint.as_str(), |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority.contains('@') {
            problems.push("the endpoint shows user info; strip credentials from it".to_owned());
        }
        let verdict = if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        };
        self.verdict("info", verdict);
    }

    async fn health(&mut self) {
        let verdict = match self.ask(self.connector.health()).await {
            Answer::Ok(h) if h.is_serving() => Ok(()),
            Answer::Ok(h) => Err(format!(
                "the server is not serving (live: {}, ready: {})",
                h.live, h.ready
            )),
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict("health", verdict);
    }

    async fn models(&mut self) {
        let answer = self.ask(self.connector.models()).await;
        let verdict = if !self.connector.capabilities().list_models {
            self.unsupported("model listing", answer)
        } else {
            match answer {
                Answer::Ok(listed) => {
                    let missing: Vec<String> = self
                        .spec
                        .models()
                        .iter()
                        .filter(|m| !listed.iter().any(|l| l.name == m.name))
                        .map(|m| m.name.clone())
                        .collect();
                    if missing.is_empty() {
                        Ok(())
                    } else {
                        let names: Vec<&str> =
                            listed.iter().take(20).map(|l| l.name.as_str()).collect();
                        Err(format!(
                            "models [{}] are not listed; listed: [{}]",
                            missing.join(", "),
                            names.join(", ")
                        ))
                    }
                }
                Answer::Err(e) => Err(describe(&e)),
                Answer::Hung => Err(self.hung()),
            }
        };
        self.verdict("models", verdict);
    }

    async fn model_metadata(&mut self) {
        if !self.connector.capabilities().model_metadata {
            let model = self.first_model();
            let answer = self.ask(self.connector.model_metadata(&model)).await;
            let verdict = self.unsupported("model metadata", answer);
            self.verdict("model_metadata", verdict);
            return;
        }
        let mut problems = Vec::new();
        for model in self.spec.models() {
            match self.ask(self.connector.model_metadata(&model)).await {
                Answer::Ok(md) => {
                    if md.name != model.name {
                        problems.push(format!(
                            "{model}: metadata names \"{}\" instead of \"{}\"",
                            md.name, model.name
                        ));
                    }
                    for rt in self.spec.round_trips.iter().filter(|r| r.model == model) {
                        if let Some(declared) = md.input(rt.input.name())
                            && let Err(e) = declared.check(&rt.input)
                        {
                            problems.push(format!(
                                "{model}: the declared input {:?} {:?} does not accept round trip {}: {}",
                                declared.datatype,
                                declared.shape,
                                rt.label,
                                e.message()
                            ));
                        }
                    }
                }
                Answer::Err(e) => problems.push(format!("{model}: {}", describe(&e))),
                Answer::Hung => problems.push(format!("{model}: {}", self.hung())),
            }
        }
        let verdict = if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        };
        self.verdict("model_metadata", verdict);

        let unknown = self.spec.unknown_model.clone();
        let verdict = match self.ask(self.connector.model_metadata(&unknown)).await {
            Answer::Err(e) => expect_kind(&e, &[ErrorKind::NotFound]),
            Answer::Ok(_) => Err(format!(
                "metadata for {unknown} came back; expected NotFound"
            )),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict("model_metadata/unknown_model", verdict);
    }

    async fn model_ready(&mut self) {
        if !self.connector.capabilities().model_ready {
            let model = self.first_model();
            let answer = self.ask(self.connector.model_ready(&model)).await;
            let verdict = self.unsupported("per-model readiness", answer);
            self.verdict("model_ready", verdict);
            return;
        }
        let mut problems = Vec::new();
        for model in self.spec.models() {
            match self.ask(self.connector.model_ready(&model)).await {
                Answer::Ok(true) => {}
                Answer::Ok(false) => problems.push(format!("{model} is not ready")),
                Answer::Err(e) => problems.push(format!("{model}: {}", describe(&e))),
                Answer::Hung => problems.push(format!("{model}: {}", self.hung())),
            }
        }
        let verdict = if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        };
        self.verdict("model_ready", verdict);

        let unknown = self.spec.unknown_model.clone();
        let verdict = match self.ask(self.connector.model_ready(&unknown)).await {
            Answer::Ok(false) => Ok(()),
            Answer::Ok(true) => Err(format!("{unknown} is reported ready")),
            Answer::Err(e) => expect_kind(&e, &[ErrorKind::NotFound]),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict("model_ready/unknown_model", verdict);
    }

    async fn infer(&mut self) {
        if !self.connector.capabilities().infer {
            let model = self.first_model();
            let answer = self
                .ask(self.connector.infer(&model, InferRequest::new()))
                .await;
            let mut verdict = self.unsupported("tensor inference", answer);
            if verdict.is_ok() && !self.spec.round_trips.is_empty() {
                verdict = Err(
                    "the spec lists round trips, but the capabilities say no tensor inference"
                        .to_owned(),
                );
            }
            self.verdict("infer", verdict);
            return;
        }
        let spec = self.spec;
        for (n, rt) in spec.round_trips.iter().enumerate() {
            let expected = match rt.transform.apply(&rt.input) {
                Ok(t) => t,
                Err(e) => {
                    let why = format!("the spec's expected output cannot be computed: {e}");
                    self.verdict(format!("infer/{}/typed", rt.label), Err(why.clone()));
                    self.verdict(format!("infer/{}/raw", rt.label), Err(why));
                    continue;
                }
            };
            let raw = rt.input.to_raw().and_then(|bytes| {
                Tensor::from_raw(
                    rt.input.name(),
                    rt.input.datatype(),
                    rt.input.shape().to_vec(),
                    bytes,
                )
                .map(|t| t.with_parameters(rt.input.parameters().clone()))
            });
            let forms = [("typed", Ok(rt.input.clone())), ("raw", raw)];
            for (form, input) in forms {
                let name = format!("infer/{}/{form}", rt.label);
                let input = match input {
                    Ok(t) => t,
                    Err(e) => {
                        self.verdict(name, Err(format!("cannot build the input: {e}")));
                        continue;
                    }
                };
                let id = format!("conformance-{n}-{form}");
                let mut request = InferRequest::new().with_id(id.clone()).with_input(input);
                if let Some(output) = &rt.output {
                    request = request.with_output(output.clone());
                }
                let verdict = match self.ask(self.connector.infer(&rt.model, request)).await {
                    Answer::Ok(response) => check_response(&response, &id, rt, &expected),
                    Answer::Err(e) => Err(describe(&e)),
                    Answer::Hung => Err(self.hung()),
                };
                self.verdict(name, verdict);
            }
        }
    }

    async fn unknown_model(&mut self) {
        if !self.connector.capabilities().infer {
            self.skip("unknown_model", "the connector has no tensor inference");
            self.skip("error_context", "the connector has no tensor inference");
            return;
        }
        let unknown = self.spec.unknown_model.clone();
        let input = self
            .spec
            .round_trips
            .first()
            .map(|r| r.input.clone())
            .unwrap_or_else(|| Tensor::from_vec("input-0", vec![1.0f32]));
        let request = InferRequest::new().with_input(input);
        let answer = self.ask(self.connector.infer(&unknown, request)).await;
        let (verdict, context) = match answer {
            Answer::Err(e) => {
                let mut verdict = expect_kind(&e, &[ErrorKind::NotFound]);
                if verdict.is_ok() && !e.to_string().contains(&unknown.name) {
                    verdict = Err(format!("the error does not name the model: {e}"));
                }
                let vendor = &self.connector.info().vendor;
                let context = if e.vendor() != Some(vendor.as_str()) {
                    Err(format!(
                        "vendor context is {:?}, expected {vendor:?} (tag errors with ConnectorInfo::tag, \
                         or obtain the connector through Connectors::connect)",
                        e.vendor()
                    ))
                } else if e.model() != Some(unknown.to_string().as_str()) {
                    Err(format!(
                        "model context is {:?}, expected {:?}",
                        e.model(),
                        unknown.to_string()
                    ))
                } else {
                    Ok(())
                };
                (verdict, context)
            }
            Answer::Ok(_) => (
                Err(format!("infer on {unknown} succeeded; expected NotFound")),
                Err("no error to inspect".to_owned()),
            ),
            Answer::Hung => (Err(self.hung()), Err("no error to inspect".to_owned())),
        };
        self.verdict("unknown_model", verdict);
        self.verdict("error_context", context);
    }

    async fn bad_inputs(&mut self) {
        let spec = self.spec;
        for case in &spec.bad_inputs {
            let name = format!("bad_input/{}", case.label);
            let answer = self
                .ask(self.connector.infer(&case.model, case.request.clone()))
                .await;
            let verdict = match (&case.expect, answer) {
                (_, Answer::Hung) => Err(self.hung()),
                (Expect::Succeeds, Answer::Ok(_)) => Ok(()),
                (Expect::Succeeds, Answer::Err(e)) => Err(format!(
                    "the spec says this server accepts the request; got {}",
                    describe(&e)
                )),
                (Expect::Fails(kinds), Answer::Ok(_)) => Err(format!(
                    "the request was accepted; expected {}",
                    kind_list(kinds)
                )),
                (Expect::Fails(kinds), Answer::Err(e)) => expect_kind(&e, kinds).and_then(|()| {
                    if e.is_retryable() {
                        Err(format!(
                            "a bad request must not be retryable: {}",
                            describe(&e)
                        ))
                    } else {
                        Ok(())
                    }
                }),
            };
            self.verdict(name, verdict);
        }
    }

    async fn auth(&mut self) {
        const NAME: &str = "auth/bad_credentials";
        let spec = self.spec;
        let Some(auth) = &spec.auth else {
            self.skip(NAME, "the spec has no authentication check");
            return;
        };
        let connector = match self.ask((auth.connect)()).await {
            Answer::Ok(c) => c,
            // Refusing bad credentials while connecting is fine too.
            Answer::Err(e) => {
                let verdict = expect_kind(&e, &auth.expect);
                self.verdict(NAME, verdict);
                return;
            }
            Answer::Hung => {
                let why = self.hung();
                self.verdict(NAME, Err(why));
                return;
            }
        };
        let probe = auth
            .probe
            .clone()
            .unwrap_or_else(|| match self.spec.round_trips.first() {
                Some(rt) => Probe::Infer(
                    rt.model.clone(),
                    InferRequest::new().with_input(rt.input.clone()),
                ),
                None => Probe::Health,
            });
        let answer = match &probe {
            Probe::Health => self.ask(connector.health()).await.map(drop),
            Probe::Models => self.ask(connector.models()).await.map(drop),
            Probe::Infer(model, request) => self
                .ask(connector.infer(model, request.clone()))
                .await
                .map(drop),
        };
        let mut verdict = match answer {
            Answer::Err(e) => expect_kind(&e, &auth.expect),
            Answer::Ok(()) => Err(format!(
                "{probe:?} succeeded with bad credentials; expected {}",
                kind_list(&auth.expect)
            )),
            Answer::Hung => Err(self.hung()),
        };
        if let Some(secret) = auth.secret.as_deref().filter(|s| !s.is_empty()) {
            let shown = format!("{connector:?} {}", connector.info().endpoint);
            if verdict.is_ok() && shown.contains(secret) {
                verdict =
                    Err("the bad credential shows in the connector's Debug or endpoint".to_owned());
            }
        }
        self.verdict(NAME, verdict);
    }

    async fn invoke(&mut self) {
        if !self.connector.capabilities().invoke {
            let model = self.first_model();
            let answer = self
                .ask(self.connector.invoke(&model, RawRequest::json("{}")))
                .await;
            let verdict = self.unsupported("raw invocation", answer);
            self.verdict("invoke", verdict);
            return;
        }
        let spec = self.spec;
        let Some(case) = &spec.invoke else {
            self.skip(
                "invoke",
                "the connector can invoke, but the spec has no invoke case",
            );
            return;
        };
        let verdict = match self
            .ask(self.connector.invoke(&case.model, case.request.clone()))
            .await
        {
            Answer::Ok(response) => (case.check)(&response),
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict("invoke", verdict);
    }

    fn secrets(&mut self) {
        const NAME: &str = "secrets_in_errors";
        let secrets: Vec<&str> = self
            .spec
            .secrets
            .iter()
            .map(String::as_str)
            .chain(self.spec.auth.iter().filter_map(|a| a.secret.as_deref()))
            .filter(|s| !s.is_empty())
            .collect();
        if secrets.is_empty() {
            self.skip(NAME, "the spec names no secrets");
            return;
        }
        let shown = format!("{:?} {}", self.connector, self.connector.info().endpoint);
        let mut problems = Vec::new();
        for (k, secret) in secrets.iter().enumerate() {
            if shown.contains(secret) {
                problems.push(format!(
                    "secret #{k} shows in the connector's Debug or endpoint"
                ));
            }
            let leaks = self.errors.iter().filter(|e| e.contains(secret)).count();
            if leaks > 0 {
                problems.push(format!("secret #{k} shows in {leaks} error rendering(s)"));
            }
        }
        let verdict = if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        };
        self.verdict(NAME, verdict);
    }
}

impl<T> Answer<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Ok(v) => Answer::Ok(f(v)),
            Answer::Err(e) => Answer::Err(e),
            Answer::Hung => Answer::Hung,
        }
    }
}

/// Compares a round trip's response with the expected output.
fn check_response(
    response: &inferlink::InferResponse,
    id: &str,
    rt: &RoundTrip,
    expected: &Tensor,
) -> Verdict {
    if let Some(echoed) = &response.id
        && echoed != id
    {
        return Err(format!(
            "the response id is {echoed:?}, the request's was {id:?}"
        ));
    }
    let names = || {
        response
            .outputs
            .iter()
            .map(|t| t.name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let actual = match &rt.output {
        Some(name) => response
            .output(name)
            .ok_or_else(|| format!("no output \"{name}\"; outputs: [{}]", names()))?,
        None if response.outputs.len() == 1 => &response.outputs[0],
        None => {
            return Err(format!(
                "expected exactly one output, got {}: [{}] (name the output in the round trip)",
                response.outputs.len(),
                names()
            ));
        }
    };
    compare_tensors(expected, actual, rt.tolerance)
}

/// Compares datatype, shape and values (numbers within `tolerance`).
pub fn compare_tensors(expected: &Tensor, actual: &Tensor, tolerance: f64) -> Verdict {
    if actual.datatype() != expected.datatype() {
        return Err(format!(
            "output \"{}\" is {}, expected {}",
            actual.name(),
            actual.datatype(),
            expected.datatype()
        ));
    }
    if actual.shape() != expected.shape() {
        return Err(format!(
            "output \"{}\" has shape {:?}, expected {:?}",
            actual.name(),
            actual.shape(),
            expected.shape()
        ));
    }
    if expected.datatype() == DataType::Bytes {
        let want = expected.to_byte_elements().map_err(|e| e.to_string())?;
        let have = actual.to_byte_elements().map_err(|e| e.to_string())?;
        if let Some(i) = (0..want.len()).find(|&i| want[i] != have[i]) {
            return Err(format!(
                "output \"{}\" element {i} is {:?}, expected {:?}",
                actual.name(),
                String::from_utf8_lossy(&have[i][..have[i].len().min(64)]),
                String::from_utf8_lossy(&want[i][..want[i].len().min(64)]),
            ));
        }
        return Ok(());
    }
    let want = expected.to_f64_lossy().map_err(|e| e.to_string())?;
    let have = actual.to_f64_lossy().map_err(|e| e.to_string())?;
    let differs = |a: f64, b: f64| {
        if a.is_nan() || b.is_nan() {
            a.is_nan() != b.is_nan()
        } else {
            a != b && (a - b).abs() > tolerance
        }
    };
    if let Some(i) = (0..want.len()).find(|&i| differs(want[i], have[i])) {
        return Err(format!(
            "output \"{}\" element {i} is {}, expected {} (tolerance {tolerance})",
            actual.name(),
            have[i],
            want[i]
        ));
    }
    Ok(())
}

fn describe(e: &Error) -> String {
    format!("{:?} error: {e}", e.kind())
}

fn kind_list(kinds: &[ErrorKind]) -> String {
    let names: Vec<String> = kinds.iter().map(|k| format!("{k:?}")).collect();
    names.join(" or ")
}

fn expect_kind(e: &Error, kinds: &[ErrorKind]) -> Verdict {
    if kinds.contains(&e.kind()) {
        Ok(())
    } else {
        Err(format!(
            "expected {}, got {}",
            kind_list(kinds),
            describe(e)
        ))
    }
}

#[cfg(test)]
mod tests;

mod streaming;
pub use streaming::{StreamInferCase, StreamInferCheckFn};

mod typed;
pub use typed::{EmbedCase, GenerateCase, RerankCase};
