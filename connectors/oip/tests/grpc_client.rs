//! The gRPC client against an in-process test server on 127.0.0.1 (the
//! testkit's `grpc_server`, over the crate's own messages), answering the
//! way Triton does: raw outputs only, NOT_FOUND for unknown models,
//! INVALID_ARGUMENT for size mismatches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use inferlink::kit::ConnectorConfig;
use inferlink::resolve::ConfigValue;
use inferlink::{DataType, ErrorKind, InferRequest, ModelRef, Tensor};
use inferlink_oip::grpc::paths;
use inferlink_oip::proto as msg;
use inferlink_oip::{OipClient, OipConfig, Protocol};
use inferlink_testkit::grpc_server::{GrpcRouter, GrpcServer};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Status};

#[derive(Default)]
struct Doubler {
    infer_calls: AtomicUsize,
    /// Answer UNAVAILABLE this many times first.
    unavailable: AtomicUsize,
    /// Require this `authorization` metadata, when set.
    token: Option<String>,
    /// What ServerReady answers.
    ready: bool,
}

impl Doubler {
    fn check(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        match &self.token {
            Some(t) => {
                let got = metadata.get("authorization").and_then(|v| v.to_str().ok());
                if got == Some(t.as_str()) {
                    Ok(())
                } else {
                    Err(Status::unauthenticated("missing or wrong token"))
                }
            }
            None => Ok(()),
        }
    }
}

/// The methods the test server routes.
impl Doubler {
    async fn server_live(
        self: Arc<Self>,
        r: Request<msg::ServerLiveRequest>,
    ) -> Result<msg::ServerLiveResponse, Status> {
        self.check(r.metadata())?;
        Ok(msg::ServerLiveResponse { live: true })
    }

    async fn server_ready(
        self: Arc<Self>,
        r: Request<msg::ServerReadyRequest>,
    ) -> Result<msg::ServerReadyResponse, Status> {
        self.check(r.metadata())?;
        Ok(msg::ServerReadyResponse { ready: self.ready })
    }

    async fn model_ready(
        self: Arc<Self>,
        r: Request<msg::ModelReadyRequest>,
    ) -> Result<msg::ModelReadyResponse, Status> {
        self.check(r.metadata())?;
        let r = r.into_inner();
        if r.name != "doubler" {
            return Err(Status::not_found(format!(
                "Request for unknown model: '{}' is not found",
                r.name
            )));
        }
        Ok(msg::ModelReadyResponse {
            ready: r.version.is_empty() || r.version == "1",
        })
    }

    async fn server_metadata(
        self: Arc<Self>,
        _: Request<msg::ServerMetadataRequest>,
    ) -> Result<msg::ServerMetadataResponse, Status> {
        Ok(msg::ServerMetadataResponse {
            name: "triton".into(),
            version: "2.51.0".into(),
            extensions: vec!["binary_tensor_data".into()],
        })
    }

    async fn model_metadata(
        self: Arc<Self>,
        r: Request<msg::ModelMetadataRequest>,
    ) -> Result<msg::ModelMetadataResponse, Status> {
        self.check(r.metadata())?;
        let name = r.into_inner().name;
        if name != "doubler" {
            return Err(Status::not_found(format!(
                "Request for unknown model: '{name}' is not found"
            )));
        }
        let spec = |name: &str| msg::model_metadata_response::TensorMetadata {
            name: name.into(),
            datatype: "FP32".into(),
            shape: vec![-1, -1],
            parameters: Default::default(),
        };
        Ok(msg::ModelMetadataResponse {
            name: "doubler".into(),
            versions: vec!["1".into()],
            platform: "python".into(),
            inputs: vec![spec("INPUT_1")],
            outputs: vec![spec("OUTPUT_1")],
            properties: vec![],
        })
    }

    async fn model_infer(
        self: Arc<Self>,
        r: Request<msg::ModelInferRequest>,
    ) -> Result<msg::ModelInferResponse, Status> {
        self.check(r.metadata())?;
        self.infer_calls.fetch_add(1, Ordering::SeqCst);
        if self
            .unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Status::unavailable("not serving yet"));
        }
        let r = r.into_inner();
        if r.model_name != "doubler" {
            return Err(Status::not_found(format!(
                "Request for unknown model: '{}' is not found",
                r.model_name
            )));
        }
        let input = &r.inputs[0];
        if input.datatype != "FP32" {
            return Err(Status::invalid_argument(format!(
                "inference input '{}' data-type is '{}', but model 'doubler' expects 'FP32'",
                input.name, input.datatype
            )));
        }
        if input.contents.is_some() || r.raw_input_contents.len() != r.inputs.len() {
            return Err(Status::invalid_argument("expected raw_input_contents"));
        }
        let raw = &r.raw_input_contents[0];
        let count: i64 = input.shape.iter().product();
        if raw.len() as i64 != count * 4 {
            return Err(Status::invalid_argument(format!(
                "input byte size mismatch for input '{}'. Expected {}, got {}",
                input.name,
                count * 4,
                raw.len()
            )));
        }
        let doubled: Vec<u8> = raw
            .chunks_exact(4)
            .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * 2.0).to_le_bytes())
            .collect();
        let mut parameters = std::collections::HashMap::new();
        parameters.insert(
            "sequence_id".to_owned(),
            msg::InferParameter {
                parameter_choice: Some(msg::infer_parameter::ParameterChoice::Uint64Param(7)),
            },
        );
        Ok(msg::ModelInferResponse {
            model_name: "doubler".into(),
            model_version: "1".into(),
            id: r.id,
            parameters,
            outputs: vec![msg::model_infer_response::InferOutputTensor {
                name: "OUTPUT_1".into(),
                datatype: "FP32".into(),
                shape: input.shape.clone(),
                parameters: Default::default(),
                contents: None,
            }],
            raw_output_contents: vec![Bytes::from(doubled)],
        })
    }
}

async fn serve(service: Doubler) -> GrpcServer<Doubler> {
    serve_accepting(service, None).await
}

/// A server that takes requests compressed with `accepts` (and identity).
async fn serve_accepting(
    service: Doubler,
    accepts: Option<CompressionEncoding>,
) -> GrpcServer<Doubler> {
    let mut router = GrpcRouter::new(Arc::new(service))
        .unary(paths::SERVER_LIVE, Doubler::server_live)
        .unary(paths::SERVER_READY, Doubler::server_ready)
        .unary(paths::MODEL_READY, Doubler::model_ready)
        .unary(paths::SERVER_METADATA, Doubler::server_metadata)
        .unary(paths::MODEL_METADATA, Doubler::model_metadata)
        .unary(paths::MODEL_INFER, Doubler::model_infer);
    if let Some(encoding) = accepts {
        router = router.accept_compressed(encoding);
    }
    router.serve().await.unwrap()
}

fn client(url: &str, pairs: &[(&str, &str)]) -> OipClient {
    let config = OipConfig::new(url)
        .apply_values(inferlink_testkit::live::fake_server_values(pairs))
        .unwrap();
    OipClient::with_vendor(config, "triton").unwrap()
}

#[tokio::test]
async fn health_and_metadata_over_grpc() {
    let s = serve(Doubler::default()).await;
    let c = client(s.url(), &[]);
    assert_eq!(c.protocol(), Protocol::Grpc);
    let h = c.health().await.unwrap();
    assert!(h.live && !h.ready);
    let m = c.server_metadata().await.unwrap();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("triton", "2.51.0"));
    let md = c.model_metadata(&ModelRef::new("doubler")).await.unwrap();
    assert_eq!(md.versions, vec!["1"]);
    assert_eq!(md.inputs[0].datatype, DataType::Fp32);
    assert!(
        c.model_ready(&ModelRef::new("doubler").with_version("1"))
            .await
            .unwrap()
    );
    assert!(
        !c.model_ready(&ModelRef::new("doubler").with_version("2"))
            .await
            .unwrap()
    );
    let e = c.model_ready(&ModelRef::new("nope")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("'nope' is not found"), "{e}");
    assert_eq!(
        e.vendor_message(),
        Some("Request for unknown model: 'nope' is not found")
    );
    assert_eq!(e.context("vendor"), Some("triton"));
    assert_eq!(e.context("model"), Some("nope"));
}

#[tokio::test]
async fn infer_sends_raw_inputs_and_reads_raw_outputs() {
    let s = serve(Doubler::default()).await;
    let c = client(s.url(), &[]);
    let x = Tensor::new("INPUT_1", vec![2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let r = c
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(x).with_id("r1"),
        )
        .await
        .unwrap();
    assert_eq!(r.model_name, "doubler");
    assert_eq!(r.model_version.as_deref(), Some("1"));
    assert_eq!(r.id.as_deref(), Some("r1"));
    assert_eq!(r.parameters["sequence_id"], inferlink::Parameter::Uint(7));
    let y = r.require_output("OUTPUT_1").unwrap();
    assert!(y.is_raw());
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        vec![2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    );
}

#[tokio::test]
async fn large_tensors_pass_the_default_message_limits() {
    let s = serve(Doubler::default()).await;
    let c = client(s.url(), &[]);
    let n = 1_500_000; // 6 MB each way, above gRPC's usual 4 MiB default
    let x = Tensor::new("INPUT_1", vec![1, n], vec![0.5f32; n]).unwrap();
    let r = c
        .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x))
        .await
        .unwrap();
    let y = r
        .require_output("OUTPUT_1")
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(y.len(), n);
    assert!(y.iter().all(|&v| v == 1.0));
}

#[tokio::test]
async fn grpc_status_codes_become_error_kinds() {
    let s = serve(Doubler::default()).await;
    let c = client(s.url(), &[]);
    let x =
        || InferRequest::new().with_input(Tensor::new("INPUT_1", vec![1], vec![1.0f32]).unwrap());
    let e = c.infer(&ModelRef::new("nope"), x()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let mut wrong = x();
    wrong.inputs[0] = Tensor::new("INPUT_1", vec![2], vec![1i32, 2]).unwrap();
    let e = c.infer(&ModelRef::new("doubler"), wrong).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("expects 'FP32'"), "{e}");
    // Declared FP32, but the bytes do not fit the shape the server sees.
    let mut short = x();
    short.inputs[0] = Tensor::from_raw(
        "INPUT_1",
        DataType::Fp32,
        vec![2],
        Bytes::from(vec![0u8; 8]),
    )
    .unwrap();
    let r = c.infer(&ModelRef::new("doubler"), short).await.unwrap();
    assert_eq!(r.outputs[0].shape(), &[2]);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn unavailable_is_retried_through_the_shared_loop() {
    let s = serve(Doubler {
        unavailable: AtomicUsize::new(2),
        ..Default::default()
    })
    .await;
    let c = client(s.url(), &[]);
    let x = Tensor::new("INPUT_1", vec![1], vec![1.0f32]).unwrap();
    let r = c
        .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x))
        .await
        .unwrap();
    assert_eq!(r.outputs[0].to_vec::<f32>().unwrap(), vec![2.0]);
    assert_eq!(s.state().infer_calls.load(Ordering::SeqCst), 3);

    let s = serve(Doubler {
        unavailable: AtomicUsize::new(5),
        ..Default::default()
    })
    .await;
    let c = client(s.url(), &[("retry_max_attempts", "2")]);
    let x = Tensor::new("INPUT_1", vec![1], vec![1.0f32]).unwrap();
    let e = c
        .infer(&ModelRef::new("doubler"), InferRequest::new().with_input(x))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.context("attempts"), Some("2"));
    assert_eq!(s.state().infer_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn auth_from_configuration_travels_as_metadata() {
    let s = serve(Doubler {
        token: Some("Bearer t0ken".into()),
        ..Default::default()
    })
    .await;
    let e = client(s.url(), &[]).server_live().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    let c = client(s.url(), &[("auth_bearer_token", "t0ken")]);
    assert!(c.server_live().await.unwrap());
    assert!(!format!("{c:?}").contains("t0ken"));
}

#[tokio::test]
async fn a_closed_port_is_unavailable_within_the_deadline() {
    let closed = inferlink_testkit::fault::RefusedPort::new().unwrap();
    let url = format!("grpc://{}", closed.addr());
    let c = client(
        &url,
        &[("retry_max_attempts", "2"), ("deadline_ms", "3000")],
    );
    let e = c.server_live().await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert_eq!(e.context("vendor"), Some("triton"));
}

#[tokio::test]
async fn the_connector_conformance_suite_passes_over_grpc() {
    use inferlink_testkit::connector::{
        AuthCheck, ConformanceSpec, Expect, run_connector_conformance,
    };
    let s = serve(Doubler {
        token: Some("Bearer good-token".into()),
        ready: true,
        ..Default::default()
    })
    .await;
    let connector: inferlink_oip::OipConnector =
        client(s.url(), &[("auth_bearer_token", "good-token")]);
    let url = s.url().to_owned();
    let fp32 = inferlink_testkit::live::doubled("doubler", "INPUT_1", DataType::Fp32, &[2, 3]);
    let spec = ConformanceSpec::new()
        // This test server, like KServe's custom models, accepts any shape.
        .bad_input(fp32.wrong_shape().expect(Expect::Succeeds))
        .bad_input(fp32.wrong_datatype())
        .round_trip(fp32)
        .auth(
            AuthCheck::new(move || {
                let url = url.clone();
                async move {
                    let c = client(&url, &[("auth_bearer_token", "bad-token")]);
                    Ok(std::sync::Arc::new(c) as std::sync::Arc<dyn inferlink::InferenceConnector>)
                }
            })
            .secret("bad-token"),
        )
        .secret("good-token");
    let report = run_connector_conformance(&connector, &spec).await;
    report.assert_passed();
}

#[tokio::test]
async fn tls_channels_build_and_fail_cleanly_without_a_server() {
    let closed = inferlink_testkit::fault::RefusedPort::new().unwrap();
    let url = format!("grpcs://{}", closed.addr());
    let c = client(&url, &[("retry_max_attempts", "1")]);
    assert_eq!(c.info().endpoint, url.replace("grpcs://", "https://"));
    let e = c.server_live().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let config = OipConfig::new(url)
        .apply_values([(
            "tls_insecure_skip_verify",
            ConfigValue::Plain("true".into()),
        )])
        .unwrap();
    let e = OipClient::new(config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(e.path(), Some("tls_insecure_skip_verify"));
}

#[tokio::test]
async fn the_endpoint_policy_applies_to_grpc_targets() {
    let mut transport = inferlink::transport::TransportConfig::default();
    transport.endpoint_policy = Some(inferlink::transport::EndpointPolicy::new().allow_loopback());
    let mut allowed = OipConfig::new("grpc://127.0.0.1:8001");
    allowed.transport = transport.clone();
    assert!(OipClient::new(allowed).is_ok());
    let mut denied = OipConfig::new("grpc://192.0.2.7:8001");
    denied.transport = transport;
    let e = OipClient::new(denied).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.message().contains("192.0.2.7"), "{e}");
}

/// `grpc_compression` compresses request messages: a server that takes only
/// identity refuses them (`UNIMPLEMENTED`, naming the encoding), one that
/// accepts the encoding answers.
#[tokio::test]
async fn request_messages_are_compressed_as_configured() {
    for (encoding, name) in [
        (CompressionEncoding::Gzip, "gzip"),
        (CompressionEncoding::Deflate, "deflate"),
    ] {
        let compressed_client = |url: &str| {
            let mut config = OipConfig::new(url)
                .apply_values([("deadline_ms", ConfigValue::Plain("10000".to_owned()))])
                .unwrap();
            config.grpc_compression = Some(encoding);
            OipClient::with_vendor(config, "triton").unwrap()
        };
        let x = || {
            InferRequest::new().with_input(
                Tensor::new("INPUT_1", vec![1, 4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap(),
            )
        };
        let plain = serve(Doubler::default()).await;
        let e = compressed_client(plain.url())
            .infer(&ModelRef::new("doubler"), x())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{encoding:?}: {e}");
        assert!(e.to_string().contains(name), "{encoding:?}: {e}");
        let accepting = serve_accepting(Doubler::default(), Some(encoding)).await;
        let r = compressed_client(accepting.url())
            .infer(&ModelRef::new("doubler"), x())
            .await
            .unwrap();
        assert_eq!(
            r.require_output("OUTPUT_1")
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![2.0, 4.0, 6.0, 8.0]
        );
    }
}
