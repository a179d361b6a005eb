//! The OMI client against an in-process test server on 127.0.0.1 (the
//! testkit's `grpc_server`, over the crate's own messages,
//! `inferlink_omi::proto`), scripted to reproduce what the live chassis
//! server cannot be made to do on demand: a `Status` that fails
//! first, a server that forgets its model, wrong output counts, non-200
//! status codes, `UNIMPLEMENTED`, and a connection that drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use inferlink::kit::ConnectorConfig;
use inferlink::{ErrorKind, InferRequest, ModelRef, Tensor};
use inferlink_omi::proto as msg;
use inferlink_omi::{Files, OmiClient, OmiConfig, OmiConnector, RunOptions, ShutdownOutcome};
use inferlink_testkit::grpc_server::{GrpcRouter, GrpcServer};
use inferlink_testkit::live::expect_error;
use tokio::sync::Mutex;
use tonic::{Request, Status};

/// Upper-cases `text` files, like the live `textops` model, with switches.
#[derive(Default)]
struct Fake {
    status_calls: AtomicUsize,
    run_calls: AtomicUsize,
    shutdown_calls: AtomicUsize,
    /// The model is loaded (a Status call loads it unless `fail_status` > 0).
    loaded: AtomicBool,
    /// Answer Status with 500 this many times first.
    fail_status: AtomicUsize,
    /// Answer Run with this many fewer outputs than inputs.
    drop_outputs: AtomicUsize,
    /// Answer Run with this status_code instead of 200.
    run_code: AtomicUsize,
    /// Every Status answers UNIMPLEMENTED (not an OMI server).
    unimplemented: bool,
    /// Require this `authorization` metadata.
    token: Option<String>,
    /// The last RunRequest's (detect_drift, explain).
    flags: Mutex<Option<(bool, bool)>>,
}

impl Fake {
    fn check(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        match &self.token {
            Some(t) if metadata.get("authorization").and_then(|v| v.to_str().ok()) != Some(t) => {
                Err(Status::unauthenticated("missing or wrong token"))
            }
            _ => Ok(()),
        }
    }
}

fn status_response(code: i32, message: &str) -> msg::StatusResponse {
    msg::StatusResponse {
        status_code: code,
        status: if code == 200 {
            "OK"
        } else {
            "Internal Server Error"
        }
        .into(),
        message: message.into(),
        model_info: Some(msg::ModelInfo {
            model_name: "textops".into(),
            model_version: "1.0.0".into(),
            ..Default::default()
        }),
        inputs: vec![msg::ModelInput {
            filename: "text".into(),
            accepted_media_types: vec!["text/plain".into()],
            ..Default::default()
        }],
        outputs: vec![msg::ModelOutput {
            filename: "upper.txt".into(),
            media_type: "text/plain".into(),
            ..Default::default()
        }],
        features: Some(msg::ModelFeatures {
            batch_size: 1,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The methods the test server routes.
impl Fake {
    async fn status(
        self: Arc<Self>,
        r: Request<msg::StatusRequest>,
    ) -> Result<msg::StatusResponse, Status> {
        self.check(r.metadata())?;
        if self.unimplemented {
            return Err(Status::unimplemented("Method not found"));
        }
        self.status_calls.fetch_add(1, Ordering::SeqCst);
        // Slow enough that concurrent first callers overlap.
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        if self
            .fail_status
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(status_response(500, "Model Failed to Initialize."));
        }
        let was = self.loaded.swap(true, Ordering::SeqCst);
        let message = if was {
            "Model Already Initialized."
        } else {
            "Model Initialized Successfully."
        };
        Ok(status_response(200, message))
    }

    async fn run(self: Arc<Self>, r: Request<msg::RunRequest>) -> Result<msg::RunResponse, Status> {
        self.check(r.metadata())?;
        self.run_calls.fetch_add(1, Ordering::SeqCst);
        if !self.loaded.load(Ordering::SeqCst) {
            // What chassis answers for a Run before Status.
            return Err(Status::unknown("Internal Server Error"));
        }
        let r = r.into_inner();
        *self.flags.lock().await = Some((r.detect_drift, r.explain));
        let keep = r
            .inputs
            .len()
            .saturating_sub(self.drop_outputs.load(Ordering::SeqCst));
        let outputs = r
            .inputs
            .into_iter()
            .take(keep)
            .map(|item| {
                let text = item.input.get("text").cloned().unwrap_or_default();
                let text = String::from_utf8_lossy(&text).into_owned();
                if text.contains("fail") {
                    msg::OutputItem {
                        output: [("error".to_owned(), Bytes::from("refused"))].into(),
                        success: false,
                    }
                } else {
                    msg::OutputItem {
                        output: [("upper.txt".to_owned(), Bytes::from(text.to_uppercase()))].into(),
                        success: true,
                    }
                }
            })
            .collect();
        let code = match self.run_code.load(Ordering::SeqCst) {
            0 => 200,
            c => c as i32,
        };
        Ok(msg::RunResponse {
            status_code: code,
            status: "OK".into(),
            message: "Inference executed".into(),
            outputs,
        })
    }

    async fn shutdown(
        self: Arc<Self>,
        _: Request<msg::ShutdownRequest>,
    ) -> Result<msg::ShutdownResponse, Status> {
        self.shutdown_calls.fetch_add(1, Ordering::SeqCst);
        Ok(msg::ShutdownResponse {
            status_code: 200,
            status: "OK".into(),
            message: "Model Shutdown Successfully.".into(),
        })
    }
}

async fn serve(fake: Fake) -> GrpcServer<Fake> {
    GrpcRouter::new(Arc::new(fake))
        .unary("/ModzyModel/Status", Fake::status)
        .unary("/ModzyModel/Run", Fake::run)
        .unary("/ModzyModel/Shutdown", Fake::shutdown)
        .serve()
        .await
        .unwrap()
}

/// A fake whose `Status` answers "failed to initialize" `failures` times.
async fn serve_failing_status(failures: usize) -> GrpcServer<Fake> {
    serve(Fake {
        fail_status: AtomicUsize::new(failures),
        ..Fake::default()
    })
    .await
}

fn config(url: &str, pairs: &[(&str, &str)]) -> OmiConfig {
    OmiConfig::new(url)
        .apply_values(inferlink_testkit::live::fake_server_values(pairs))
        .unwrap()
}

fn client(url: &str) -> OmiClient {
    OmiClient::new(config(url, &[])).unwrap()
}

fn text(values: &[&str]) -> InferRequest {
    InferRequest::new().with_input(
        Tensor::from_strings("text", vec![values.len()], values.iter().copied()).unwrap(),
    )
}

#[tokio::test]
async fn concurrent_first_calls_share_one_status() {
    let s = serve(Fake::default()).await;
    let c = client(s.url());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.infer(&"textops".into(), text(&[&format!("x{i}")])).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.state().status_calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.state().run_calls.load(Ordering::SeqCst), 16);
    assert!(c.cached_status().await.is_some());
}

#[tokio::test]
async fn a_server_that_forgot_its_model_is_reloaded_once() {
    let s = serve(Fake::default()).await;
    let c = client(s.url());
    c.infer(&"textops".into(), text(&["a"])).await.unwrap();
    // The server restarts behind the same address: no model loaded.
    s.state().loaded.store(false, Ordering::SeqCst);
    let r = c.infer(&"textops".into(), text(&["b"])).await.unwrap();
    assert_eq!(r.outputs[0].to_strings().unwrap(), ["B"]);
    assert_eq!(s.state().status_calls.load(Ordering::SeqCst), 2);
    assert_eq!(s.state().run_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failed_status_is_reported_and_not_kept() {
    let s = serve_failing_status(1).await;
    let c = client(s.url());
    let e = c.infer(&"textops".into(), text(&["a"])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert!(!e.is_retryable());
    assert_eq!(e.context("omi_status_code"), Some("500"));
    assert!(e.to_string().contains("Model Failed to Initialize."), "{e}");
    assert_eq!(e.model(), Some("textops"));
    assert_eq!(s.state().run_calls.load(Ordering::SeqCst), 0);
    // Nothing kept: the next call asks again and succeeds.
    assert!(c.cached_status().await.is_none());
    c.infer(&"textops".into(), text(&["a"])).await.unwrap();
    assert_eq!(s.state().status_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn health_reports_a_model_that_failed_to_load_as_not_ready() {
    let s = serve_failing_status(2).await;
    let connector: OmiConnector = client(s.url());
    let h = connector.health().await.unwrap();
    assert!(h.live && !h.ready);
    assert!(!connector.model_ready(&"textops".into()).await.unwrap());
    let h = connector.health().await.unwrap();
    assert!(h.is_serving());
}

#[tokio::test]
async fn output_count_and_status_codes_are_checked() {
    let s = serve(Fake::default()).await;
    let c = client(s.url());
    s.state().drop_outputs.store(1, Ordering::SeqCst);
    expect_error(
        c.infer(&"textops".into(), text(&["a", "b"])).await,
        ErrorKind::ModelError,
        "1 output item(s) for 2",
    );
    s.state().drop_outputs.store(0, Ordering::SeqCst);
    s.state().run_code.store(503, Ordering::SeqCst);
    let e = expect_error(
        c.run(
            vec![Files::from([("text".to_owned(), Bytes::from("a"))])],
            &RunOptions::new(),
        )
        .await,
        ErrorKind::Unavailable,
        "",
    );
    assert!(e.is_retryable());
    assert_eq!(e.context("omi_status_code"), Some("503"));
    s.state().run_code.store(0, Ordering::SeqCst);
    // success=false items are failures with the model's message.
    let outcome = c
        .run(
            vec![
                Files::from([("text".to_owned(), Bytes::from("fail"))]),
                Files::from([("text".to_owned(), Bytes::from("ok"))]),
            ],
            &RunOptions::new(),
        )
        .await
        .unwrap();
    let e = outcome.items[0].as_ref().unwrap_err();
    assert_eq!(
        (e.index, e.message.as_str(), e.success_flag),
        (0, "refused", false)
    );
    assert!(outcome.items[1].is_ok());
}

#[tokio::test]
async fn run_flags_follow_configuration_and_options() {
    let s = serve(Fake::default()).await;
    let c = OmiClient::new(config(s.url(), &[("detect_drift", "true")])).unwrap();
    let item = || vec![Files::from([("text".to_owned(), Bytes::from("a"))])];
    c.run(item(), &RunOptions::new()).await.unwrap();
    assert_eq!(*s.state().flags.lock().await, Some((true, false)));
    c.run(item(), &RunOptions::new().detect_drift(false).explain(true))
        .await
        .unwrap();
    assert_eq!(*s.state().flags.lock().await, Some((false, true)));
    let e = c.run(Vec::new(), &RunOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn model_names_are_checked_unless_switched_off() {
    let s = serve(Fake::default()).await;
    let c = client(s.url());
    let e = c.infer(&"other".into(), text(&["a"])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.model(), Some("other"));
    expect_error(
        c.model_metadata(&ModelRef::new("textops").with_version("2"))
            .await,
        ErrorKind::NotFound,
        "",
    );
    assert_eq!(s.state().run_calls.load(Ordering::SeqCst), 0);
    let open = OmiClient::new(config(s.url(), &[("check_model_name", "false")])).unwrap();
    let r = open.infer(&"anything".into(), text(&["a"])).await.unwrap();
    assert_eq!(r.model_name, "textops");
}

#[tokio::test]
async fn not_an_omi_server_is_unsupported() {
    let s = serve(Fake {
        unimplemented: true,
        ..Fake::default()
    })
    .await;
    let e = client(s.url()).health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.vendor_message(), Some("Method not found"));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn auth_metadata_is_sent_and_never_shown() {
    let token = "omi-secret-token-42";
    let s = serve(Fake {
        token: Some(format!("Bearer {token}")),
        ..Fake::default()
    })
    .await;
    let good = OmiClient::new(config(s.url(), &[("auth_bearer_token", token)])).unwrap();
    good.infer(&"textops".into(), text(&["a"])).await.unwrap();
    assert!(!format!("{good:?}").contains(token));
    let bad = OmiClient::new(config(s.url(), &[("auth_bearer_token", "wrong-token-7")])).unwrap();
    let e = expect_error(
        bad.infer(&"textops".into(), text(&["a"])).await,
        ErrorKind::Unauthenticated,
        "",
    );
    assert!(!format!("{e} {e:?}").contains("wrong-token-7"));
}

#[tokio::test]
async fn shutdown_answered_or_dropped_is_success_and_unreachable_is_not() {
    let s = serve(Fake::default()).await;
    let c = client(s.url());
    c.status().await.unwrap();
    let outcome = c.shutdown().await.unwrap();
    assert_eq!(
        outcome,
        ShutdownOutcome::Acknowledged {
            status_code: 200,
            message: "Model Shutdown Successfully.".into()
        }
    );
    assert_eq!(s.state().shutdown_calls.load(Ordering::SeqCst), 1);
    assert!(c.cached_status().await.is_none());

    // A peer that accepts the connection and closes it at once: the drop a
    // server stopping itself causes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closer = tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            drop(socket);
        }
    });
    let dropped = client(&format!("grpc://{addr}")).shutdown().await.unwrap();
    assert_eq!(dropped, ShutdownOutcome::ConnectionDropped);
    closer.abort();

    // Nobody listening: nothing was sent, so this is an error.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = expect_error(
        client(&format!("grpc://127.0.0.1:{port}")).shutdown().await,
        ErrorKind::Unavailable,
        "",
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn the_factory_refuses_a_typoed_key_with_a_suggestion() {
    let target = |drift_key: &str| {
        inferlink::ConnectTarget::new("omi", "grpc://127.0.0.1:1")
            .with_plain(drift_key, "true")
            .with_plain("timeout_request_ms", "100")
    };
    inferlink_testkit::live::assert_factory_refuses_typo(
        &inferlink_omi::factory(),
        target,
        ("detect_drfit", "detect_drift"),
        "AWS_REGION",
    )
    .await;
}
