//! Tests of the suite itself, over `SuiteTestDouble`: an in-memory test
//! double of a connector. It talks to no server and speaks no protocol; each
//! test bends one of its behaviours to make one check pass or fail, so these
//! tests show that the suite reports what it should, under the right name.

use std::sync::Arc;
use std::time::Duration;

use inferlink::connector::{unsupported, with_error_context};
use inferlink::{
    ConnectorInfo, DataType, Error, ErrorKind, Health, InferRequest, InferResponse,
    InferenceConnector, ModelDescription, ModelInfo, ModelListing, ModelMetadata, ModelReadiness,
    ModelRef, Result, Tensor, TensorInference, TensorSpec, async_trait,
};

use super::*;

const GOOD_TOKEN: &str = "good-token-5f2a";
const BAD_TOKEN: &str = "bad-token-9c1e";

/// A test double of a connector (see the module documentation).
#[derive(Clone)]
struct SuiteTestDouble {
    info: ConnectorInfo,
    token: String,
    /// What an unknown model answers.
    unknown_kind: ErrorKind,
    /// Adds 1 to the first number of every numeric output.
    off_by_one: bool,
    /// Puts the token into error messages.
    leak_token: bool,
    /// Health never answers.
    hang_health: bool,
    /// Tags errors with vendor and model.
    tag: bool,
    /// Answers `models` with Unsupported whatever the capabilities say.
    refuse_models: bool,
}

impl std::fmt::Debug for SuiteTestDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SuiteTestDouble({})", self.info.endpoint)
    }
}

impl SuiteTestDouble {
    fn new() -> Self {
        SuiteTestDouble {
            info: ConnectorInfo::new("double", "in-memory", "memory://suite"),
            token: GOOD_TOKEN.to_owned(),
            unknown_kind: ErrorKind::NotFound,
            off_by_one: false,
            leak_token: false,
            hang_health: false,
            tag: true,
            refuse_models: false,
        }
    }

    /// The models: name, transform, and the declared input (validated when present).
    fn model(name: &str) -> Option<(Transform, Option<TensorSpec>)> {
        match name {
            "doubler" => Some((Transform::Double, None)),
            "echo" => Some((Transform::Identity, None)),
            "upper" => Some((Transform::Uppercase, None)),
            "strict" => Some((
                Transform::Double,
                Some(TensorSpec::new("x", DataType::Fp32, vec![-1, -1])),
            )),
            _ => None,
        }
    }

    fn fail(&self, model: &ModelRef, e: Error) -> Error {
        let e = if self.leak_token {
            Error::new(e.kind(), format!("{} (token {})", e.message(), self.token))
        } else {
            e
        };
        if self.tag {
            self.info.tag(e.with_model(model))
        } else {
            e
        }
    }

    fn answer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        if self.token != GOOD_TOKEN {
            return Err(Error::new(ErrorKind::Unauthenticated, "token rejected"));
        }
        let Some((transform, declared)) = SuiteTestDouble::model(&model.name) else {
            return Err(Error::new(
                self.unknown_kind,
                format!("model {} not found", model.name),
            ));
        };
        let [input] = request.inputs.as_slice() else {
            return Err(Error::invalid("one input expected"));
        };
        if let Some(spec) = declared {
            spec.check(input)?;
        }
        let mut output = transform.apply(input)?.with_name("out");
        if self.off_by_one && output.datatype() != DataType::Bytes {
            let mut values = output.to_f64_lossy()?;
            values[0] += 1.0;
            output = Tensor::new("out", output.shape().to_vec(), values)?
                .cast_float(output.datatype())?;
        }
        if input.is_raw() {
            output = Tensor::from_raw(
                "out",
                output.datatype(),
                output.shape().to_vec(),
                output.to_raw()?,
            )?;
        }
        Ok(InferResponse {
            model_name: model.name.clone(),
            id: request.id,
            outputs: vec![output],
            ..InferResponse::default()
        })
    }
}

#[async_trait]
impl InferenceConnector for SuiteTestDouble {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    async fn health(&self) -> Result<Health> {
        if self.hang_health {
            std::future::pending::<()>().await;
        }
        Ok(Health::SERVING)
    }

    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        Some(self)
    }

    fn as_model_listing(&self) -> Option<&dyn ModelListing> {
        Some(self)
    }

    fn as_model_description(&self) -> Option<&dyn ModelDescription> {
        Some(self)
    }

    fn as_model_readiness(&self) -> Option<&dyn ModelReadiness> {
        Some(self)
    }
}

#[async_trait]
impl TensorInference for SuiteTestDouble {
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.answer(model, request).map_err(|e| self.fail(model, e))
    }
}

#[async_trait]
impl ModelListing for SuiteTestDouble {
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        if self.refuse_models {
            return Err(unsupported(&self.info, "listing models"));
        }
        Ok(["doubler", "echo", "strict", "upper"]
            .map(|name| ModelInfo {
                name: name.into(),
                version: None,
                state: Some("READY".into()),
            })
            .into())
    }
}

#[async_trait]
impl ModelDescription for SuiteTestDouble {
    async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        let Some((_, declared)) = SuiteTestDouble::model(&model.name) else {
            let e = Error::not_found(format!("model {} not found", model.name));
            return Err(self.fail(model, e));
        };
        Ok(ModelMetadata {
            name: model.name.clone(),
            inputs: declared.into_iter().collect(),
            ..ModelMetadata::default()
        })
    }
}

#[async_trait]
impl ModelReadiness for SuiteTestDouble {
    async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        Ok(SuiteTestDouble::model(&model.name).is_some())
    }
}

fn spec() -> ConformanceSpec {
    let mut spec = ConformanceSpec::new();
    for dt in DataType::ALL {
        spec = spec.round_trip(RoundTrip::sample(
            "doubler",
            "x",
            dt,
            vec![2, 3],
            Transform::Double,
        ));
    }
    let strict = RoundTrip::sample("strict", "x", DataType::Fp32, vec![2, 2], Transform::Double);
    let loose = RoundTrip::sample("doubler", "x", DataType::Int64, vec![4], Transform::Double)
        .label("doubler/1d");
    spec.round_trip(RoundTrip::sample(
        "echo",
        "x",
        DataType::Bool,
        vec![3],
        Transform::Identity,
    ))
    .round_trip(RoundTrip::sample(
        "echo",
        "x",
        DataType::Bytes,
        vec![1, 2],
        Transform::Identity,
    ))
    .round_trip(RoundTrip::sample(
        "upper",
        "x",
        DataType::Bytes,
        vec![2, 1],
        Transform::Uppercase,
    ))
    .bad_input(strict.wrong_shape())
    .bad_input(strict.wrong_datatype())
    .bad_input(loose.wrong_shape().expect(Expect::Succeeds))
    .round_trip(strict)
    .auth(
        AuthCheck::new(|| async {
            let mut bad = SuiteTestDouble::new();
            bad.token = BAD_TOKEN.to_owned();
            Ok(Arc::new(bad) as Arc<dyn InferenceConnector>)
        })
        .secret(BAD_TOKEN),
    )
    .secret(GOOD_TOKEN)
}

fn failure(report: &ConformanceReport, name: &str) -> String {
    match report.status(name) {
        Some(CheckStatus::Failed(why)) => why.clone(),
        other => panic!("expected {name} to fail, got {other:?}\n{report}"),
    }
}

fn passed(report: &ConformanceReport, name: &str) {
    assert_eq!(
        report.status(name),
        Some(&CheckStatus::Passed),
        "{name}\n{report}"
    );
}

#[tokio::test]
async fn a_well_behaved_connector_passes_every_check() {
    let report = run_connector_conformance(&SuiteTestDouble::new(), &spec()).await;
    report.assert_passed();
    for name in [
        "info",
        "health",
        "models",
        "model_metadata",
        "model_metadata/unknown_model",
        "model_ready",
        "model_ready/unknown_model",
        "infer/doubler/FP16/typed",
        "infer/doubler/FP16/raw",
        "infer/doubler/BF16/raw",
        "infer/doubler/UINT64/typed",
        "infer/echo/BOOL/raw",
        "infer/echo/BYTES/raw",
        "infer/upper/BYTES/typed",
        "infer/strict/FP32/typed",
        "unknown_model",
        "error_context",
        "bad_input/strict/FP32/wrong_shape",
        "bad_input/strict/FP32/wrong_datatype",
        "bad_input/doubler/1d/wrong_shape",
        "auth/bad_credentials",
        "invoke",
        "secrets_in_errors",
    ] {
        passed(&report, name);
    }
    // 14 doubler datatypes + 2 echo + upper + strict, typed and raw.
    let infers = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("infer/"))
        .count();
    assert_eq!(infers, 2 * 18);
    assert!(
        report.to_string().contains("0 failed, 0 skipped"),
        "{report}"
    );
}

#[tokio::test]
async fn the_wrong_kind_for_an_unknown_model_fails_that_check() {
    let mut double = SuiteTestDouble::new();
    double.unknown_kind = ErrorKind::Unavailable;
    let report = run_connector_conformance(&double, &spec()).await;
    let why = failure(&report, "unknown_model");
    assert!(why.contains("expected NotFound, got Unavailable"), "{why}");
    assert_eq!(report.failures().count(), 1, "{report}");
    passed(&report, "health");
    assert!(report.to_string().contains("FAIL  unknown_model: "));
}

#[tokio::test]
async fn wrong_output_values_fail_naming_the_element() {
    let mut double = SuiteTestDouble::new();
    double.off_by_one = true;
    let report = run_connector_conformance(&double, &spec()).await;
    let why = failure(&report, "infer/doubler/FP32/typed");
    assert!(
        why.contains("output \"out\" element 0 is 1.5, expected 0.5"),
        "{why}"
    );
    failure(&report, "infer/doubler/INT8/raw");
    // BYTES outputs are untouched by this fault.
    passed(&report, "infer/upper/BYTES/raw");
}

#[tokio::test]
async fn accepted_bad_credentials_fail_the_auth_check() {
    let spec = spec().auth(AuthCheck::new(|| async {
        Ok(Arc::new(SuiteTestDouble::new()) as Arc<dyn InferenceConnector>)
    }));
    let report = run_connector_conformance(&SuiteTestDouble::new(), &spec).await;
    let why = failure(&report, "auth/bad_credentials");
    assert!(why.contains("succeeded with bad credentials"), "{why}");
    // Expecting another kind fails too.
    let spec = self::spec().auth(
        AuthCheck::new(|| async {
            let mut bad = SuiteTestDouble::new();
            bad.token = BAD_TOKEN.to_owned();
            Ok(Arc::new(bad) as Arc<dyn InferenceConnector>)
        })
        .expect(vec![ErrorKind::PermissionDenied]),
    );
    let report = run_connector_conformance(&SuiteTestDouble::new(), &spec).await;
    let why = failure(&report, "auth/bad_credentials");
    assert!(
        why.contains("expected PermissionDenied, got Unauthenticated"),
        "{why}"
    );
    // Refusing at connect time counts.
    let spec = self::spec().auth(AuthCheck::new(|| async {
        Err(Error::new(ErrorKind::Unauthenticated, "refused at connect"))
    }));
    let report = run_connector_conformance(&SuiteTestDouble::new(), &spec).await;
    passed(&report, "auth/bad_credentials");
    // No auth in the spec: skipped, not failed.
    let mut spec = self::spec();
    spec.auth = None;
    let report = run_connector_conformance(&SuiteTestDouble::new(), &spec).await;
    assert!(matches!(
        report.status("auth/bad_credentials"),
        Some(CheckStatus::Skipped(_))
    ));
}

#[tokio::test]
async fn a_leaked_secret_fails_without_being_shown() {
    let mut double = SuiteTestDouble::new();
    double.leak_token = true;
    let report = run_connector_conformance(&double, &spec()).await;
    let why = failure(&report, "secrets_in_errors");
    assert!(why.contains("secret #0 shows in"), "{why}");
    // The report and the spec's Debug name secrets by number, never by value.
    let shown = format!("{:?}", spec());
    assert!(shown.contains("<1 hidden>"), "{shown}");
    assert!(
        !shown.contains(GOOD_TOKEN) && !shown.contains(BAD_TOKEN),
        "{shown}"
    );
    assert!(!report.to_string().contains(GOOD_TOKEN), "{report}");
    assert!(!report.to_string().contains(BAD_TOKEN), "{report}");
}

#[tokio::test]
async fn a_hanging_call_fails_its_check_instead_of_hanging() {
    let mut double = SuiteTestDouble::new();
    double.hang_health = true;
    let spec = spec().call_timeout(Duration::from_millis(50));
    let report = run_connector_conformance(&double, &spec).await;
    let why = failure(&report, "health");
    assert!(why.contains("no answer within 50ms"), "{why}");
}

#[tokio::test]
async fn capabilities_must_match_behaviour() {
    // Claims listing, refuses it.
    let mut double = SuiteTestDouble::new();
    double.refuse_models = true;
    let report = run_connector_conformance(&double, &spec()).await;
    let why = failure(&report, "models");
    assert!(why.contains("Unsupported"), "{why}");
    // (Listing without having the family cannot be written any more: the
    // capabilities are the families a connector returns from its accessors.)
    // No metadata family: the answer through the common API (Unsupported) passes.
    let double = SuiteTestDouble::new();
    let report = run_connector_conformance(&NoMetadata(double), &spec()).await;
    passed(&report, "model_metadata");
    assert!(report.status("model_metadata/unknown_model").is_none());
}

/// Has every family of [`SuiteTestDouble`] but model metadata.
#[derive(Debug)]
struct NoMetadata(SuiteTestDouble);

#[async_trait]
impl InferenceConnector for NoMetadata {
    fn info(&self) -> &ConnectorInfo {
        &self.0.info
    }
    async fn health(&self) -> Result<Health> {
        self.0.health().await
    }

    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        Some(self)
    }

    fn as_model_listing(&self) -> Option<&dyn ModelListing> {
        Some(self)
    }

    fn as_model_readiness(&self) -> Option<&dyn ModelReadiness> {
        Some(self)
    }
}

#[async_trait]
impl TensorInference for NoMetadata {
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.0.infer(model, request).await
    }
}

#[async_trait]
impl ModelListing for NoMetadata {
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        self.0.models().await
    }
}

#[async_trait]
impl ModelReadiness for NoMetadata {
    async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        self.0.model_ready(model).await
    }
}

#[tokio::test]
async fn a_server_that_does_not_validate_must_be_declared() {
    let loose = RoundTrip::sample("doubler", "x", DataType::Fp32, vec![2], Transform::Double);
    let spec = ConformanceSpec::new()
        .bad_input(loose.wrong_shape())
        .bad_input(loose.wrong_datatype().expect(Expect::Succeeds))
        .round_trip(loose);
    let report = run_connector_conformance(&SuiteTestDouble::new(), &spec).await;
    let why = failure(&report, "bad_input/doubler/FP32/wrong_shape");
    assert!(
        why.contains("the request was accepted; expected InvalidInput"),
        "{why}"
    );
    passed(&report, "bad_input/doubler/FP32/wrong_datatype");
}

#[tokio::test]
async fn errors_without_context_fail_until_wrapped() {
    let mut double = SuiteTestDouble::new();
    double.tag = false;
    let report = run_connector_conformance(&double, &spec()).await;
    let why = failure(&report, "error_context");
    assert!(why.contains("vendor context is None"), "{why}");
    passed(&report, "unknown_model");
    // The wrapper Connectors::connect applies adds the context.
    let wrapped = with_error_context(Arc::new(double));
    let report = run_connector_conformance(wrapped.as_ref(), &spec()).await;
    report.assert_passed();
}

#[tokio::test]
async fn metadata_that_rejects_a_round_trip_input_fails() {
    // The strict model declares FP32 [-1, -1]; a 1-D round trip does not fit.
    let spec = ConformanceSpec::new().round_trip(RoundTrip::sample(
        "strict",
        "x",
        DataType::Fp32,
        vec![4],
        Transform::Double,
    ));
    let report = run_connector_conformance(&SuiteTestDouble::new(), &spec).await;
    let why = failure(&report, "model_metadata");
    assert!(
        why.contains("does not accept round trip strict/FP32"),
        "{why}"
    );
    // And the server refuses it too.
    failure(&report, "infer/strict/FP32/typed");
}

#[tokio::test]
#[should_panic(expected = "FAIL  unknown_model")]
async fn assert_passed_panics_with_the_report() {
    let mut double = SuiteTestDouble::new();
    double.unknown_kind = ErrorKind::Internal;
    run_connector_conformance(&double, &spec())
        .await
        .assert_passed();
}

#[test]
fn transforms_compute_expected_outputs() {
    let t = sample_tensor("x", DataType::Fp16, vec![4]).unwrap();
    let doubled = Transform::Double.apply(&t).unwrap();
    assert_eq!(doubled.to_f32_lossy().unwrap(), vec![0.5, -1.0, 1.5, -2.0]);
    // Integers wrap like numpy; BOOL is negated; BYTES upper-cased in ASCII.
    let wrapped = Transform::Double
        .apply(&Tensor::from_vec("x", vec![100i8, 200u8 as i8]))
        .unwrap();
    assert_eq!(wrapped.to_vec::<i8>().unwrap(), vec![-56, -112]);
    let negated = Transform::Double
        .apply(&Tensor::from_vec("b", vec![true, false]))
        .unwrap();
    assert_eq!(negated.to_vec::<bool>().unwrap(), vec![false, true]);
    let text = sample_tensor("t", DataType::Bytes, vec![2]).unwrap();
    let ascii = Transform::Double.apply(&text).unwrap();
    assert_eq!(ascii.to_strings().unwrap(), vec!["ELEM-0-ü", "ELEM-1-ü"]);
    let upper = Transform::Uppercase.apply(&text).unwrap();
    assert_eq!(upper.to_strings().unwrap(), vec!["ELEM-0-Ü", "ELEM-1-Ü"]);
    let custom = Transform::custom(|t| Ok(t.clone().with_name("renamed")));
    assert_eq!(custom.apply(&text).unwrap().name(), "renamed");
    assert!(sample_tensor("x", DataType::Fp32, vec![1 << 20, 1 << 20]).is_err());
}

#[test]
fn tensors_compare_by_datatype_shape_and_values() {
    let a = Tensor::from_vec("a", vec![1.0f32, 2.0]);
    assert!(compare_tensors(&a, &a, 0.0).is_ok());
    let b = Tensor::from_vec("b", vec![1.0f32, 2.001]);
    let why = compare_tensors(&a, &b, 0.0).unwrap_err();
    assert!(why.contains("element 1"), "{why}");
    assert!(compare_tensors(&a, &b, 0.01).is_ok());
    let c = Tensor::from_vec("c", vec![1.0f64, 2.0]);
    assert!(
        compare_tensors(&a, &c, 0.0)
            .unwrap_err()
            .contains("is FP64, expected FP32")
    );
    let d = a.clone().reshape(vec![1, 2]).unwrap();
    assert!(
        compare_tensors(&a, &d, 0.0)
            .unwrap_err()
            .contains("has shape [1, 2]")
    );
    let nan = Tensor::from_vec("n", vec![f32::NAN, 2.0]);
    assert!(compare_tensors(&nan, &nan, 0.0).is_ok());
    assert!(compare_tensors(&a, &nan, 0.0).is_err());
    let s = Tensor::from_strings("s", vec![2], ["a", "b"]).unwrap();
    let t = Tensor::from_strings("t", vec![2], ["a", "c"]).unwrap();
    assert!(
        compare_tensors(&s, &t, 0.0)
            .unwrap_err()
            .contains("element 1 is \"c\"")
    );
}
