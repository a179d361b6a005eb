//! The gRPC calls pythie-serving lacks (GetModelMetadata, ModelService's
//! GetModelStatus, Classify, Regress) and the typed `*_val` response forms,
//! against an in-process test server on 127.0.0.1 (the testkit's
//! `grpc_server`, routing the crate's method paths to handlers over its own
//! messages, `inferlink_tfserving::proto`).
//! It answers the way TF Serving's API describes (NOT_FOUND "Servable not
//! found…" for unknown models, the signature map packed in an `Any`), but it
//! is our own stand-in, not TF Serving: docs/connectors/tfserving.md says
//! which behaviours are proven against which server.

use std::sync::{Arc, Mutex};

use inferlink::kit::ConnectorConfig;
use inferlink::resolve::ConfigValue;
use inferlink::{DataType, ErrorKind, InferRequest, ModelRef, Tensor};
use inferlink_testkit::connector::{
    ConformanceSpec, RoundTrip, Transform, run_connector_conformance,
};
use inferlink_testkit::grpc_server::{GrpcRouter, GrpcServer};
use inferlink_testkit::live::expect_error;
use inferlink_tfserving::grpc::paths;
use inferlink_tfserving::proto::tensorflow as tf;
use inferlink_tfserving::proto::tensorflow::serving as tfs;
use inferlink_tfserving::{
    Examples, Feature, ModelState, TfServingClient, TfServingConfig, TfServingConnector,
};
use prost::Message as _;
use tonic::{Request, Status};

#[derive(Default)]
struct HalfPlusTwo {
    predicts: Mutex<Vec<tfs::PredictRequest>>,
}

fn check_model(spec: &Option<tfs::ModelSpec>) -> Result<tfs::ModelSpec, Status> {
    let spec = spec.clone().unwrap_or_default();
    if spec.name != "half_plus_two" {
        return Err(Status::not_found(format!(
            "Servable not found for request: Latest({})",
            spec.name
        )));
    }
    Ok(spec)
}

fn x_values(p: &tf::TensorProto) -> Vec<f32> {
    if p.tensor_content.is_empty() {
        p.float_val.clone()
    } else {
        p.tensor_content
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

fn feature_x(ex: &tf::Example) -> f32 {
    match ex
        .features
        .as_ref()
        .and_then(|f| f.feature.get("x"))
        .and_then(|f| f.kind.clone())
    {
        Some(tf::feature::Kind::FloatList(l)) => l.value[0],
        _ => f32::NAN,
    }
}

fn examples_of(input: Option<tfs::Input>) -> Vec<f32> {
    match input.and_then(|i| i.kind) {
        Some(tfs::input::Kind::ExampleList(l)) => l.examples.iter().map(feature_x).collect(),
        Some(tfs::input::Kind::ExampleListWithContext(l)) => {
            let ctx = l.context.as_ref().map(feature_x).unwrap_or(f32::NAN);
            l.examples
                .iter()
                .map(|e| {
                    if feature_x(e).is_nan() {
                        ctx
                    } else {
                        feature_x(e)
                    }
                })
                .collect()
        }
        None => Vec::new(),
    }
}

fn info(dtype: tf::DataType, dims: &[i64]) -> tf::TensorInfo {
    tf::TensorInfo {
        name: "t:0".into(),
        dtype: dtype as i32,
        tensor_shape: Some(inferlink_tfserving::grpc::dims_proto(dims.iter().copied())),
    }
}

/// PredictionService's methods.
impl HalfPlusTwo {
    async fn classify(
        self: Arc<Self>,
        request: Request<tfs::ClassificationRequest>,
    ) -> Result<tfs::ClassificationResponse, Status> {
        let r = request.into_inner();
        let spec = check_model(&r.model_spec)?;
        let classifications = examples_of(r.input)
            .into_iter()
            .map(|x| tfs::Classifications {
                classes: vec![tfs::Class {
                    label: "y".into(),
                    score: 0.5 * x + 2.0,
                }],
            })
            .collect();
        Ok(tfs::ClassificationResponse {
            result: Some(tfs::ClassificationResult { classifications }),
            model_spec: Some(spec),
        })
    }

    async fn regress(
        self: Arc<Self>,
        request: Request<tfs::RegressionRequest>,
    ) -> Result<tfs::RegressionResponse, Status> {
        let r = request.into_inner();
        let spec = check_model(&r.model_spec)?;
        let regressions = examples_of(r.input)
            .into_iter()
            .map(|x| tfs::Regression {
                value: 0.5 * x + 2.0,
            })
            .collect();
        Ok(tfs::RegressionResponse {
            result: Some(tfs::RegressionResult { regressions }),
            model_spec: Some(spec),
        })
    }

    async fn predict(
        self: Arc<Self>,
        request: Request<tfs::PredictRequest>,
    ) -> Result<tfs::PredictResponse, Status> {
        let r = request.into_inner();
        self.predicts.lock().unwrap().push(r.clone());
        let mut spec = check_model(&r.model_spec)?;
        let Some(x) = r.inputs.get("x") else {
            return Err(Status::invalid_argument(
                "input tensor alias not found in signature: x",
            ));
        };
        if x.dtype != tf::DataType::DtFloat as i32 {
            return Err(Status::invalid_argument("Expects arg[0] to be float"));
        }
        let y: Vec<f32> = x_values(x).into_iter().map(|v| 0.5 * v + 2.0).collect();
        // Typed float_val, as TF Serving's own encoder does for small tensors.
        let out = tf::TensorProto {
            dtype: tf::DataType::DtFloat as i32,
            tensor_shape: x.tensor_shape.clone(),
            float_val: y,
            ..Default::default()
        };
        let seven = tf::TensorProto {
            dtype: tf::DataType::DtInt64 as i32,
            tensor_shape: Some(inferlink_tfserving::grpc::dims_proto([3])),
            int64_val: vec![7],
            ..Default::default()
        };
        let mut outputs =
            std::collections::HashMap::from([("y".to_owned(), out), ("sevens".to_owned(), seven)]);
        if !r.output_filter.is_empty() {
            outputs.retain(|k, _| r.output_filter.contains(k));
        }
        spec.version_choice = Some(tfs::model_spec::VersionChoice::Version(tfs::Int64Value {
            value: 2,
        }));
        Ok(tfs::PredictResponse {
            outputs,
            model_spec: Some(spec),
        })
    }

    async fn get_model_metadata(
        self: Arc<Self>,
        request: Request<tfs::GetModelMetadataRequest>,
    ) -> Result<tfs::GetModelMetadataResponse, Status> {
        let r = request.into_inner();
        let spec = check_model(&r.model_spec)?;
        if r.metadata_field != ["signature_def"] {
            return Err(Status::invalid_argument("Metadata field not supported"));
        }
        let sig = tf::SignatureDef {
            inputs: [("x".to_owned(), info(tf::DataType::DtFloat, &[-1]))].into(),
            outputs: [
                ("y".to_owned(), info(tf::DataType::DtFloat, &[-1])),
                ("sevens".to_owned(), info(tf::DataType::DtInt64, &[3])),
            ]
            .into(),
            method_name: "tensorflow/serving/predict".into(),
        };
        let map = tfs::SignatureDefMap {
            signature_def: [("serving_default".to_owned(), sig)].into(),
        };
        let any = tfs::Any {
            type_url: "type.googleapis.com/tensorflow.serving.SignatureDefMap".into(),
            value: map.encode_to_vec().into(),
        };
        Ok(tfs::GetModelMetadataResponse {
            model_spec: Some(tfs::ModelSpec {
                version_choice: Some(tfs::model_spec::VersionChoice::Version(tfs::Int64Value {
                    value: 2,
                })),
                ..spec
            }),
            metadata: [("signature_def".to_owned(), any)].into(),
        })
    }
}

/// ModelService's method.
impl HalfPlusTwo {
    async fn get_model_status(
        self: Arc<Self>,
        request: Request<tfs::GetModelStatusRequest>,
    ) -> Result<tfs::GetModelStatusResponse, Status> {
        let spec = check_model(&request.into_inner().model_spec)?;
        let all = [(2, 30), (1, 50)];
        let wanted: Vec<(i64, i32)> = match spec.version_choice {
            Some(tfs::model_spec::VersionChoice::Version(v)) => {
                all.into_iter().filter(|(n, _)| *n == v.value).collect()
            }
            Some(tfs::model_spec::VersionChoice::VersionLabel(l)) if l == "stable" => vec![all[0]],
            Some(tfs::model_spec::VersionChoice::VersionLabel(l)) => {
                return Err(Status::not_found(format!(
                    "Unrecognized servable version label: {l}"
                )));
            }
            None => all.to_vec(),
        };
        Ok(tfs::GetModelStatusResponse {
            model_version_status: wanted
                .into_iter()
                .map(|(version, state)| tfs::ModelVersionStatus {
                    version,
                    state,
                    status: Some(tfs::StatusProto {
                        error_code: 0,
                        error_message: String::new(),
                    }),
                })
                .collect(),
        })
    }
}

async fn serve() -> GrpcServer<HalfPlusTwo> {
    GrpcRouter::new(Arc::new(HalfPlusTwo::default()))
        .unary(paths::CLASSIFY, HalfPlusTwo::classify)
        .unary(paths::REGRESS, HalfPlusTwo::regress)
        .unary(paths::PREDICT, HalfPlusTwo::predict)
        .unary(paths::GET_MODEL_METADATA, HalfPlusTwo::get_model_metadata)
        .unary(paths::GET_MODEL_STATUS, HalfPlusTwo::get_model_status)
        .serve()
        .await
        .unwrap()
}

fn client(url: &str, pairs: &[(&str, &str)]) -> TfServingClient {
    let config = TfServingConfig::new(url)
        .apply_values(
            [("retry_max_attempts", "1"), ("deadline_ms", "10000")]
                .iter()
                .chain(pairs)
                .map(|(k, v)| (*k, ConfigValue::Plain((*v).to_owned()))),
        )
        .unwrap();
    TfServingClient::new(config).unwrap()
}

#[tokio::test]
async fn conformance_with_metadata_and_status() {
    let served = serve().await;
    let connector: TfServingConnector = client(served.url(), &[("health_model", "half_plus_two")]);
    let half = Transform::custom(|t: &Tensor| {
        let y: Vec<f32> = t.to_vec::<f32>()?.iter().map(|v| 0.5 * v + 2.0).collect();
        Tensor::new("y", t.shape().to_vec(), y)
    });
    let spec = ConformanceSpec::new().round_trip(
        RoundTrip::sample("half_plus_two", "x", DataType::Fp32, vec![4], half).output("y"),
    );
    let report = run_connector_conformance(&connector, &spec).await;
    eprintln!("{report}");
    report.assert_passed();
}

#[tokio::test]
async fn requests_carry_version_label_signature_and_encoding() {
    let served = serve().await;
    let x = Tensor::new("x", vec![2], vec![2.0f32, 4.0]).unwrap();
    let c = client(
        served.url(),
        &[
            ("signature_name", "serving_default"),
            ("model_version_label", "stable"),
        ],
    );
    let r = c
        .predict(
            &ModelRef::new("half_plus_two"),
            InferRequest::from(x.clone()).with_output("y"),
        )
        .await
        .unwrap();
    assert_eq!(r.model_version.as_deref(), Some("2"));
    assert_eq!(r.outputs.len(), 1);
    let y = r.require_output("y").unwrap();
    assert!(!y.is_raw(), "float_val decodes typed");
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![3.0, 4.0]);

    let typed = client(
        served.url(),
        &[("grpc_tensor_encoding", "typed"), ("model_version", "2")],
    );
    let r = typed
        .predict(&ModelRef::new("half_plus_two"), InferRequest::from(x))
        .await
        .unwrap();
    // A single int64_val value fills the declared shape.
    assert_eq!(
        r.require_output("sevens").unwrap().to_vec::<i64>().unwrap(),
        vec![7, 7, 7]
    );

    let sent = served.state().predicts.lock().unwrap().clone();
    let spec = sent[0].model_spec.clone().unwrap();
    assert_eq!(spec.signature_name, "serving_default");
    assert_eq!(
        spec.version_choice,
        Some(tfs::model_spec::VersionChoice::VersionLabel(
            "stable".into()
        ))
    );
    assert_eq!(sent[0].output_filter, vec!["y".to_owned()]);
    assert_eq!(sent[0].inputs["x"].tensor_content.len(), 8);
    assert!(sent[0].inputs["x"].float_val.is_empty());
    assert_eq!(sent[1].inputs["x"].float_val, vec![2.0, 4.0]);
    assert!(sent[1].inputs["x"].tensor_content.is_empty());
    assert_eq!(
        sent[1].model_spec.clone().unwrap().version_choice,
        Some(tfs::model_spec::VersionChoice::Version(tfs::Int64Value {
            value: 2
        }))
    );

    // The server's INVALID_ARGUMENT is InvalidInput, not retried.
    let ints = Tensor::new("x", vec![1], vec![1i32]).unwrap();
    let e = expect_error(
        c.predict(&ModelRef::new("half_plus_two"), InferRequest::from(ints))
            .await,
        ErrorKind::InvalidInput,
        "",
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn status_metadata_classify_regress() {
    let served = serve().await;
    let c = client(served.url(), &[]);
    let model = ModelRef::new("half_plus_two");
    let status = c.model_status(&model).await.unwrap();
    assert_eq!(status.len(), 2);
    assert_eq!(status[0].state, ModelState::Available);
    assert_eq!(status[1].state, ModelState::End);
    assert!(
        c.model_ready(&model.clone().with_version("2"))
            .await
            .unwrap()
    );
    assert!(
        !c.model_ready(&model.clone().with_version("1"))
            .await
            .unwrap()
    );
    expect_error(
        c.model_status(&model.clone().with_version("nightly")).await,
        ErrorKind::NotFound,
        "",
    );

    let md = c.model_metadata(&model).await.unwrap();
    assert_eq!(md.versions, vec!["2".to_owned()]);
    assert_eq!(md.output("sevens").unwrap().datatype, DataType::Int64);
    assert_eq!(md.input("x").unwrap().shape, vec![-1]);
    let e = c.model_metadata(&ModelRef::new("other")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let ex = |x: f32| {
        [("x".to_owned(), Feature::Float(vec![x]))]
            .into_iter()
            .collect()
    };
    let classes = c
        .classify(&model, &Examples::new(vec![ex(2.0), ex(6.0)]))
        .await
        .unwrap();
    assert_eq!(classes[1][0].label, "y");
    assert_eq!(classes[1][0].score, 5.0);
    let with_ctx = Examples::new(vec![Default::default()]).with_context(ex(4.0));
    assert_eq!(c.regress(&model, &with_ctx).await.unwrap(), vec![4.0]);
    let e = c.regress(&model, &Examples::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
